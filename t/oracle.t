use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Variants;
use Data::HashMap::Shared;

# Randomized oracle: thousands of random operations on a map and on a Perl hash
# side by side, through growth and shrink. Replay a failure with
#   HMS_SEED=<seed> prove -b t/oracle.t

my $SEED = $ENV{HMS_SEED} // (time ^ ($$ << 8)) & 0x7fffffff;
diag "oracle seed: $SEED (replay with HMS_SEED=$SEED)";
my $OPS = $ENV{HMS_ORACLE_OPS} // 18000;

# Modes: 'roomy' (anonymous map with room to spare: grows and shrinks), 'two handles'
# (a file map used through two handles, a random one per operation), 'tight' (at
# most max_entries entries: inserts of new keys fail softly, counters croak, the
# table churns at its maximum capacity).
for my $name (qw(II IS SI SS I16)) {
    my $v = variant($name);
    subtest "oracle $name" => guard { run_oracle($v, $SEED, 'roomy') };
}
for my $name (qw(II SS)) {
    my $v = variant($name);
    subtest "oracle $name, two handles on one file" => guard { run_oracle($v, $SEED + 100, 'two handles') };
}
for my $name (qw(II SS I16S SI16)) {
    my $v = variant($name);
    subtest "oracle $name, tight" => guard { run_oracle($v, $SEED + 200, 'tight') };
}

sub run_oracle {
    my ($v, $seed, $mode) = @_;
    srand($seed + $v->{id});
    my $tight = $mode eq 'tight';
    my @handles;
    if ($mode eq 'two handles') {
        my $p = tmppath('oracle');
        @handles = map { $v->{class}->new($p, 1000) } 1 .. 2;
    }
    elsif ($tight) { @handles = ($v->{class}->new(undef, 100, 0, 0, 0, 1 << 20)) }
    else           { @handles = ($v->{class}->new(undef, 1000)) }
    my $m = $handles[0];
    my $ME = $m->max_entries;
    my %h;
    my @hist;
    my $failed = 0;
    my $DOMAIN = $tight ? 170 : 900;
    # may a new key be inserted now?
    my $room = sub { !$tight || keys(%h) < $ME };
    my $intval = $v->{val} eq 'int';
    my $vb = $v->{vbits};
    my $lim = $vb == 16 ? 30000 : 1 << 40;

    my $key_of = sub {
        my $n = shift;
        return ($n * 37) % 65536 - 32768 if $v->{key} eq 'int' && $v->{kbits} == 16;
        return $n * 1000003 - 450000000 if $v->{key} eq 'int';
        my $s = ($n % 7 == 0 ? "\0" : '') . "k$n" . ('x' x ($n % 11));
        $s .= "\xff\xfe" if $n % 13 == 0;
        return $s;
    };
    my $rkey = sub { $key_of->(int rand $DOMAIN) };
    my $rval = sub {
        return int(rand(2 * $lim)) - $lim if $intval;
        my $len = int rand 60;
        my $s = join '', map { chr int rand 256 } 1 .. $len;
        if (rand() < 0.1) { $s = "\x{263A}" . substr($s, 0, 5) . "\x{e9}"; }    # a flagged value
        return $s;
    };
    my $same = sub {
        my ($got, $want) = @_;
        return !defined $got if !defined $want;
        return 0 unless defined $got;
        return "$got" eq "$want" if $intval;
        return $got eq $want && (utf8::is_utf8($got) ? 1 : 0) == (utf8::is_utf8($want) ? 1 : 0);
    };
    my $show = sub { my $x = shift; return 'undef' unless defined $x; my $s = "$x"; $s =~ s/([^\x20-\x7e])/sprintf '\\x{%x}', ord $1/ge; length $s > 40 ? substr($s, 0, 40) . '...' : $s };
    my $check = sub {
        my ($ok, $what, $got, $want) = @_;
        return 1 if $ok;
        $failed++;
        fail("op " . scalar(@hist) . ": $what");
        diag('got ' . $show->($got) . ', want ' . $show->($want));
        diag("last ops:\n" . join "\n", @hist[ ($#hist > 12 ? $#hist - 12 : 0) .. $#hist ]);
        return 0;
    };
    my $narrow = sub { $intval ? narrow($vb, $_[0]) : $_[0] };

    my @ops = (
        [ put => 10, sub {
            my ($k, $x) = ($rkey->(), $rval->());
            push @hist, "put " . $show->($k);
            my $ok = exists $h{$k} || $room->();
            my $r = $m->put($k, $x);
            $h{$k} = $x if $ok;
            $check->(!!$r == $ok, 'put returns true iff there is room', $r, $ok);
        } ],
        [ get => 10, sub {
            my $k = $rkey->();
            push @hist, "get " . $show->($k);
            my $r = $m->get($k);
            $check->($same->($r, $h{$k}), 'get', $r, $h{$k});
        } ],
        [ exists => 4, sub {
            my $k = $rkey->();
            push @hist, "exists " . $show->($k);
            my $r = $m->exists($k);
            $check->(!!$r == exists $h{$k}, 'exists', $r, exists $h{$k} ? 1 : '');
        } ],
        [ remove => 6, sub {
            my $k = $rkey->();
            push @hist, "remove " . $show->($k);
            my $r = $m->remove($k);
            my $e = exists $h{$k};
            delete $h{$k};
            $check->(!!$r == $e, 'remove', $r, $e);
        } ],
        [ add => 4, sub {
            my ($k, $x) = ($rkey->(), $rval->());
            push @hist, "add " . $show->($k);
            my $e = exists $h{$k};
            my $ok = !$e && $room->();
            my $r = $m->add($k, $x);
            $h{$k} = $x if $ok;
            $check->(!!$r == $ok, 'add', $r, $ok);
        } ],
        [ update => 3, sub {
            my ($k, $x) = ($rkey->(), $rval->());
            push @hist, "update " . $show->($k);
            my $e = exists $h{$k};
            my $r = $m->update($k, $x);
            $h{$k} = $x if $e;
            $check->(!!$r == $e, 'update', $r, $e);
        } ],
        [ swap => 3, sub {
            my ($k, $x) = ($rkey->(), $rval->());
            push @hist, "swap " . $show->($k);
            my $old = $h{$k};
            my $ok = exists $h{$k} || $room->();
            my $r = $m->swap($k, $x);
            $h{$k} = $x if $ok;
            $check->($same->($r, $old), 'swap', $r, $old);
        } ],
        [ take => 3, sub {
            my $k = $rkey->();
            push @hist, "take " . $show->($k);
            my $old = delete $h{$k};
            my $r = $m->take($k);
            $check->($same->($r, $old), 'take', $r, $old);
        } ],
        [ get_or_set => 3, sub {
            my ($k, $x) = ($rkey->(), $rval->());
            push @hist, "get_or_set " . $show->($k);
            $h{$k} = $x if !exists $h{$k} && $room->();
            my $r = $m->get_or_set($k, $x);
            $check->($same->($r, $h{$k}), 'get_or_set', $r, $h{$k});
        } ],
        [ cas => 4, sub {
            my ($k, $d) = ($rkey->(), $rval->());
            my $exp = (exists $h{$k} && rand() < 0.6) ? $h{$k} : $rval->();
            push @hist, "cas " . $show->($k);
            my $hit = exists $h{$k} && ($intval ? $h{$k} == $exp : $h{$k} eq $exp);
            my $r = $m->cas($k, $exp, $d);
            $h{$k} = $d if $hit;
            $check->(!!$r == !!$hit, 'cas', $r, $hit);
        } ],
        [ cas_take => 2, sub {
            my $k = $rkey->();
            my $exp = (exists $h{$k} && rand() < 0.6) ? $h{$k} : $rval->();
            push @hist, "cas_take " . $show->($k);
            my $hit = exists $h{$k} && ($intval ? $h{$k} == $exp : $h{$k} eq $exp);
            my $want = $hit ? delete $h{$k} : undef;
            my $r = $m->cas_take($k, $exp);
            $check->($same->($r, $want), 'cas_take', $r, $want);
        } ],
        ($intval ? (
            [ incr_by => 5, sub {
                my $k = $rkey->();
                my $op = (qw(incr decr incr_by))[ int rand 3 ];
                my $d = $op eq 'incr' ? 1 : $op eq 'decr' ? -1 : int(rand 2001) - 1000;
                push @hist, "$op " . $show->($k);
                my $ok = exists $h{$k} || $room->();
                my $r = eval { $op eq 'incr_by' ? $m->incr_by($k, $d) : $m->$op($k) };
                my $err = $@;
                if (!$ok) {
                    my $word = { incr => 'increment', decr => 'decrement', incr_by => 'incr_by' }->{$op};
                    return $check->($err =~ /\Q$v->{class}\E: $word failed/, "$op of a new key on a full map croaks", $err, "$word failed");
                }
                $h{$k} = $narrow->(($h{$k} // 0) + $d);
                $check->(!$err && $same->($r, $h{$k}), $op . ($err ? " died: $err" : ''), $r, $h{$k});
            } ],
            [ maxmin => 3, sub {
                my ($k, $x) = ($rkey->(), $rval->());
                my $op = rand() < 0.5 ? 'max' : 'min';
                push @hist, "$op " . $show->($k);
                my $ok = exists $h{$k} || $room->();
                my $r = eval { $m->$op($k, $x) };
                my $err = $@;
                if (!$ok) {
                    return $check->($err =~ /\Q$v->{class}\E: $op failed/, "$op of a new key on a full map croaks", $err, "$op failed");
                }
                return $check->(0, "$op died: $err", $err, '') if $err;
                if (!exists $h{$k}) { $h{$k} = $x }
                elsif ($op eq 'max') { $h{$k} = $x if $x > $h{$k} }
                else { $h{$k} = $x if $x < $h{$k} }
                $check->($same->($r, $h{$k}), $op, $r, $h{$k});
            } ],
        ) : ()),
        [ set_multi => 2, sub {
            my @p = map { ($rkey->(), $rval->()) } 1 .. 1 + int rand 8;
            push @hist, "set_multi " . (@p / 2);
            my $r = $m->set_multi(@p);
            my $stored = 0;
            for (my $i = 0; $i < @p; $i += 2) {
                next unless exists $h{ $p[$i] } || $room->();
                $h{ $p[$i] } = $p[ $i + 1 ];
                $stored++;
            }
            $check->($r == $stored, 'set_multi count', $r, $stored);
        } ],
        [ get_multi => 2, sub {
            my @k = map { $rkey->() } 1 .. int rand 10;
            push @hist, "get_multi " . scalar @k;
            my @r = $m->get_multi(@k);
            my $ok = @r == @k;
            for my $i (0 .. $#k) { $ok &&= $same->($r[$i], $h{ $k[$i] }) }
            $check->($ok, 'get_multi', join(',', map { $show->($_) } @r), join(',', map { $show->($h{$_}) } @k));
        } ],
        [ remove_multi => 2, sub {
            my @k = map { $rkey->() } 1 .. int rand 10;
            push @hist, "remove_multi " . scalar @k;
            my %u = map { $_ => 1 } grep { exists $h{$_} } @k;
            delete $h{$_} for @k;
            my $r = $m->remove_multi(@k);
            $check->($r == keys %u, 'remove_multi count', $r, scalar keys %u);
        } ],
    );

    my $full_check = sub {
        my $tag = shift;
        my $th = $m->to_hash;
        my %want = map { $_ => $h{$_} } keys %h;
        my $ok = keys %$th == keys %want;
        for (keys %want) { $ok &&= $same->($th->{$_}, $want{$_}) || 0 }
        $check->($ok, "to_hash matches ($tag)", scalar keys %$th, scalar keys %want);
        my @k = $m->keys;
        $check->(join("\0", sort @k) eq join("\0", sort keys %h), "keys match ($tag)", scalar @k, scalar keys %h);
        my %seen;
        my $n = 0;
        while (my ($k, $x) = $m->each) { $seen{$k}++; $n++; last if $n > 5000 }
        $check->($n == keys %h && !grep({ $_ != 1 } values %seen), "each visits every entry once ($tag)", $n, scalar keys %h);
        my ($cap, $size) = ($m->capacity, $m->size);
        $check->($cap >= 16 && ($cap & ($cap - 1)) == 0 && $size <= $cap * 7 / 8,
            "capacity $cap is a power of two holding $size at <= 7/8 ($tag)", $cap, $size);
        $check->($m->tombstones + $size <= $cap, "tombstones bounded ($tag)", $m->tombstones, $cap - $size);
        $check->($size <= $ME, "size within max_entries ($tag)", $size, $ME);
    };

    # phases: grow (insert-heavy), churn, shrink (remove-heavy)
    my @phase = ([ grow => { remove => 1, take => 1, remove_multi => 0, cas_take => 0 } ],
                 [ churn => {} ],
                 [ shrink => { put => 1, add => 1, set_multi => 0, get_or_set => 0, swap => 1, incr_by => 1, maxmin => 0,
                               remove => 30, take => 10, remove_multi => 8, cas_take => 6 } ]);
    my ($maxcap, $full_seen) = (0, 0);
    for my $p (@phase) {
        my ($pname, $override) = @$p;
        my @table = map { [ $_->[0], $override->{ $_->[0] } // $_->[1], $_->[2] ] } @ops;
        my $total = 0;
        $total += $_->[1] for @table;
        for my $i (1 .. $OPS / 3) {
            $m = $handles[ rand @handles ];
            my $r = rand $total;
            for my $op (@table) { if (($r -= $op->[1]) < 0) { $op->[2]->(); last } }
            $check->($m->size == keys %h, "size after $hist[-1]", $m->size, scalar keys %h) or last;
            last if $failed;
            $maxcap = $m->capacity if $m->capacity > $maxcap;
            $full_seen++ if keys(%h) == $ME;
            $full_check->("$pname $i") if $i % 500 == 0;
            last if $failed;
        }
        $full_check->("end of $pname") unless $failed;
        last if $failed;
        if ($pname eq 'churn') { note("$v->{name}: size " . $m->size . ", capacity " . $m->capacity . " after churn") }
    }
    ok(!$failed, "$v->{name} ($mode): " . scalar(@hist) . " operations agree with a Perl hash");
    if ($tight) {
        ok($full_seen, "$v->{name}: the map was full ($full_seen times)");
    }
    else {
        ok($maxcap >= 512, "$v->{name}: the table grew (max capacity seen $maxcap)");
        ok($m->capacity < $maxcap, "$v->{name}: and shrank again (capacity now " . $m->capacity . ')');
    }
    # clear and a last round
    $m->clear;
    %h = ();
    is($m->size, 0, 'clear');
    $ops[0][2]->() for 1 .. 200;
    is($m->size, scalar keys %h, 'usable after clear');
}

done_testing;
