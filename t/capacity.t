use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Variants;
use Data::HashMap::Shared;

# Sizing, growth, shrink, tombstones, reserve and clear (api.md 3.8, 6.8, 7.5 as
# amended by decisions.md 3 and doc/DESIGN.md "Table": max capacity =
# next_pow2(ceil(req * 8 / 7)), min 16; max_entries = max_cap * 7 / 8; the table
# starts at 16 slots, doubles, never fills past 7/8, halves when size < cap / 4).

sub next_pow2 { my $n = shift; my $p = 1; $p *= 2 while $p < $n; $p }
sub max_cap_for { my $req = shift; my $c = next_pow2(int(($req * 8 + 6) / 7)); $c < 16 ? 16 : $c }

subtest 'max_entries' => guard {
    my %want = (0 => 14, 1 => 14, 7 => 14, 14 => 14, 15 => 28, 28 => 28, 29 => 56, 100 => 112,
                112 => 112, 113 => 224, 1000 => 1792, 100000 => 114688);
    for my $req (sort { $a <=> $b } keys %want) {
        is(max_cap_for($req) * 7 / 8, $want{$req}, "formula for $req") ;
        for my $v (variant('II'), variant('SS'), variant('I16'), variant('SI32')) {
            my $m = $v->{class}->new(undef, $req);
            is($m->max_entries, $want{$req}, "$v->{name} new(undef, $req)->max_entries == $want{$req}");
        }
    }
    # I16 can't have more than 65536 distinct keys, but sizing follows the request
    my $m = Data::HashMap::Shared::I16->new(undef, 1000);
    is($m->max_entries, 1792, 'I16 sizing follows the same rule');
};

subtest 'exactly max_entries inserts succeed, then false' => guard {
    for my $req (0, 14, 15, 50, 100, 300) {
        for my $v (variant('II'), variant('SS'), variant('I32S')) {
            my $m = $v->{class}->new(undef, $req);
            my $me = $m->max_entries;
            ok($me >= $req, "$v->{name}/$req: max_entries $me >= requested");
            my $ok = 0;
            my $key = sub { $v->{key} eq 'int' ? $_[0] * 7 - 1000 : "key number $_[0]" };
            my $val = $v->{val} eq 'int' ? 1 : 'val';
            for my $i (1 .. $me) { $ok++ if $m->put($key->($i), $val) }
            is($ok, $me, "$v->{name}/$req: $me inserts succeed");
            is($m->size, $me, 'size == max_entries');
            ok(!$m->put($key->($me + 1), $val), 'the next insert fails softly');
            ok(!$m->add($key->($me + 2), $val), 'add fails softly');
            ok($m->capacity * 7 / 8 >= $m->size, 'the table is at most 7/8 full');
            is($m->capacity, max_cap_for($req), 'capacity reached the maximum');
            # every key is still readable at full load, missing keys still missing
            my $bad = grep { !$m->exists($key->($_)) } 1 .. $me;
            is($bad, 0, 'all entries readable at full load');
            ok(!$m->exists($key->($me + 1)), 'a missing key is missing at full load');
        }
    }
};

subtest 'growth by doubling and shrink when size < capacity / 4' => guard {
    my $m = Data::HashMap::Shared::II->new(undef, 1000);
    is($m->capacity, 16, 'starts at 16');
    my @caps;
    for my $i (1 .. 1792) {
        $m->put($i, $i);
        my $c = $m->capacity;
        push @caps, $c unless @caps && $caps[-1] == $c;
        if ($c * 7 / 8 < $m->size) { fail("size $i over 7/8 of capacity $c"); last }
    }
    is_deeply(\@caps, [16, 32, 64, 128, 256, 512, 1024, 2048], 'capacity doubles from 16 to the maximum');
    # the exact growth point: the table grows when it would pass 7/8
    my $g = Data::HashMap::Shared::II->new(undef, 1000);
    $g->put($_, $_) for 1 .. 14;
    is($g->capacity, 16, '14 entries fit 16 slots');
    $g->put(15, 15);
    is($g->capacity, 32, 'the 15th grows the table to 32');
    # shrink
    my @down;
    for my $i (reverse 1 .. 1792) {
        $m->remove($i);
        my $c = $m->capacity;
        push @down, $c unless @down && $down[-1] == $c;
        my $size = $m->size;
        if ($c > 16 && $size < $c / 8) { fail("capacity $c not shrunk at size $size"); last }
    }
    is($m->size, 0, 'all removed');
    is($m->capacity, 16, 'back to 16');
    ok(@down > 4, 'shrank in steps: ' . join(',', @down));
    is_deeply([ sort { $b <=> $a } @down ], \@down, 'capacity only goes down while removing');
    # shrink threshold: halves once size < capacity / 4
    my $s = Data::HashMap::Shared::II->new(undef, 1000);
    $s->put($_, $_) for 1 .. 200;
    is($s->capacity, 256, '200 entries in 256 slots');
    $s->remove($_) for 1 .. 136;    # size 64 = 256 / 4
    is($s->capacity, 256, 'size 64 (== capacity/4): not shrunk');
    $s->remove(137);                # size 63
    is($s->capacity, 128, 'size 63 (< capacity/4): halved to 128');
    is($s->size, 63, 'entries kept');
    my $missing = grep { !defined $s->get($_) } 138 .. 200;
    is($missing, 0, 'all remaining entries readable after the shrink');
};

subtest 'tombstones and churn at maximum capacity' => guard {
    for my $v (variant('II'), variant('SS')) {
        my $m = $v->{class}->new(undef, 14);
        my $key = sub { $v->{key} eq 'int' ? $_[0] : "k$_[0]" };
        my $val = $v->{val} eq 'int' ? 5 : 'value that is long enough for the arena';
        $m->put($key->($_), $val) for 1 .. 14;
        my $fails = 0;
        my $next = 15;
        for my $round (1 .. 3000) {
            my $victim = $next - 14;
            $m->remove($key->($victim)) or $fails++;
            $m->put($key->($next), $val) or $fails++;
            $next++;
            my $t = $m->tombstones;
            if ($t + $m->size > $m->capacity) { fail("tombstones $t + size over capacity"); last }
        }
        is($fails, 0, "$v->{name}: 3000 remove/insert rounds at maximum capacity never fail");
        is($m->size, 14, 'size stays 14');
        is($m->capacity, 16, 'capacity stays at the maximum');
        ok($m->capacity * 7 / 8 >= $m->size + 0, 'load stays at most 7/8');
        my $bad = grep { !$m->exists($key->($_)) } ($next - 14) .. ($next - 1);
        is($bad, 0, 'the live window is intact');
        is(scalar(() = $m->keys), 14, 'keys lists exactly the live entries');
    }
    # a bigger table with random churn keeps tombstones bounded
    my $m = Data::HashMap::Shared::II->new(undef, 1000);
    srand(42);
    my %h;
    for (1 .. 20000) {
        my $k = int rand 5000;
        if (exists $h{$k}) { $m->remove($k); delete $h{$k} }
        elsif (keys %h < 700) { $m->put($k, 1) or fail('put failed'); $h{$k} = 1 }
        if ($m->tombstones > $m->capacity) { fail('tombstones exceed capacity'); last }
    }
    is($m->size, scalar(keys %h), 'size after churn');
    ok($m->size + $m->tombstones <= $m->capacity * 7 / 8 + 1, 'size + tombstones within the load limit');
};

subtest 'the whole int16 key space' => guard {
    for my $class (qw(Data::HashMap::Shared::I16 Data::HashMap::Shared::I16S)) {
        my $m = $class->new(undef, 65536);
        ok($m->max_entries >= 65536, "$class: max_entries covers every int16 key");
        my $val = $class =~ /S$/ ? 'v' : 1;
        my $fails = 0;
        $m->put($_, $val) or $fails++ for -32768 .. 32767;
        is($fails, 0, "$class: all 65536 keys inserted");
        is($m->size, 65536, 'size 65536');
        $m->put(32768, $val);            # narrows to -32768: an existing key
        is($m->size, 65536, 'an out-of-range key narrows onto an existing one');
        my @k = $m->keys;
        my %u = map { $_ => 1 } @k;
        is(scalar(keys %u), 65536, 'keys lists 65536 distinct keys');
        is(scalar(grep { $_ < -32768 || $_ > 32767 } @k), 0, '... all in range');
        $m->remove($_) for -32768 .. 32767;
        is($m->size, 0, 'all removed');
        is($m->capacity, 16, 'back to 16 slots');
    }
};

subtest 'the largest sizes are capped, not wrapped' => guard {
    # 4294967295 requested: 2^31 slots at most (api.md 3.8), so 2^31 * 7/8 entries;
    # arena_cap clamps to 4294967295. The mapping is large but sparse; a clean
    # croak (no memory for it on this machine) is acceptable too.
    my $pid = in_child(sub {
        my @out;
        for my $c (qw(II SS)) {
            my $m = eval { "Data::HashMap::Shared::$c"->new(undef, 4294967295, 0, 0, 0, 2**40) };
            if (!$m) { die $@ unless $@ =~ /^Data::HashMap::Shared::$c: /; push @out, "$c:croak"; next }
            $m->put(1, 2) or die "put failed\n";
            push @out, join ':', $c, $m->max_entries, $m->arena_cap, $m->get(1);
        }
        return join ',', @out;
    });
    my ($out, $err) = child_result($pid);
    is($err, undef, 'no crash');
    my %r = map { (split /:/, $_, 2) } split /,/, $out // '';
    for my $c (qw(II SS)) {
        next if ($r{$c} // '') eq 'croak';
        my ($me, $ac, $g) = split /:/, $r{$c} // '';
        is($me, 1879048192, "$c: max_entries capped at 2^31 slots * 7/8");
        is($ac, $c eq 'SS' ? 4294967295 : 0, "$c: arena_cap clamped");
        is($g, 2, "$c: usable");
    }
};

subtest 'reserve' => guard {
    my $m = Data::HashMap::Shared::II->new(undef, 1000);
    is_true($m->reserve(0), 'reserve(0) -> true');
    is($m->capacity, 16, '... no growth');
    is_true($m->reserve(14), 'reserve(14) -> true');
    is($m->capacity, 16, '... 14 fit in 16');
    is_true($m->reserve(100), 'reserve(100) -> true');
    is($m->capacity, 128, '... grew to 128 (100 <= 112)');
    $m->put($_, $_) for 1 .. 100;
    is($m->capacity, 128, 'inserting the reserved 100 does not grow further');
    is_true($m->reserve(50), 'reserve below the current capacity -> true');
    is($m->capacity, 128, '... no change');
    is_true($m->reserve($m->max_entries), 'reserve(max_entries) -> true');
    is($m->capacity, 2048, '... grew to the maximum capacity');
    is_false($m->reserve($m->max_entries + 1), 'reserve(max_entries + 1) -> false');
    is_true($m->reserve(2**40), 'reserve(2**40) truncates to 0 -> true');
    is_false($m->reserve(2**32 - 1), 'reserve(2**32 - 1) -> false');
    is($m->size, 100, 'entries kept');
    my $missing = grep { $m->get($_) != $_ } 1 .. 100;
    is($missing, 0, 'entries readable after reserve');
    my $s = Data::HashMap::Shared::SS->new(undef, 100);
    is_true($s->reserve(112), 'SS reserve(112) on new(100)');
    is($s->capacity, 128, '... capacity 128');
};

subtest 'clear' => guard {
    my $p = tmppath('clear');
    my $m = Data::HashMap::Shared::SS->new($p, 1000);
    my $other = Data::HashMap::Shared::SS->new($p, 1000);
    $m->put("key $_", "a value longer than seven $_") for 1 .. 500;
    ok($m->capacity > 16 && $m->arena_used > 0, 'filled');
    $m->clear;
    is($m->size, 0, 'size 0');
    is($other->size, 0, 'the other handle sees the clear');
    is($m->capacity, 16, 'capacity 16');
    is($m->tombstones, 0, 'tombstones 0');
    is($m->arena_used, 0, 'arena_used 0');
    is($m->max_entries, 1792, 'max_entries unchanged');
    is($m->stat_evictions + $m->stat_expired + $m->stat_recoveries, 0, 'statistics untouched');
    ok($other->put('again', 'x' x 100), 'usable from the other handle');
    is($m->get('again'), 'x' x 100, 'and visible');
    $m->put("key $_", "value $_") for 1 .. 1000;
    is($m->size, 1001, 'refilled past the previous size');
};

subtest 'file size targets (decisions.md: no larger than the C version)' => guard {
    my $ii = Data::HashMap::Shared::II->new(undef, 100000);
    ok($ii->mmap_size <= 4.27 * 1024 * 1024, sprintf('II 100000: %.2f MiB <= 4.27 MiB', $ii->mmap_size / 1048576));
    my $ss = Data::HashMap::Shared::SS->new(undef, 100000);
    ok($ss->mmap_size <= 16.47 * 1024 * 1024, sprintf('SS 100000: %.2f MiB <= 16.47 MiB', $ss->mmap_size / 1048576));
    my $p = tmppath('size');
    my $f = Data::HashMap::Shared::II->new($p, 100000);
    is(-s $p, $f->mmap_size, 'file size == mmap_size');
};

done_testing;
