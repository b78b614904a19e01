use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Variants;
use Scalar::Util qw(blessed reftype);
use Data::HashMap::Shared;
use RedisServer;

# Both backends: anonymous maps, and maps in a private redis-server (when installed;
# CI requires it). What differs on Redis is listed where it is tested (the POD's
# "Differences on Redis"): the sizing accessors, path and unlink.
my ($srv, @BACKENDS) = RedisServer->backends;

# Every operation of api.md 6.1-6.4, 6.6 (clear), 6.7 (no cursors), 6.8 and 6.9
# (no freeze) on every variant, called as a method and as a plain function
# (api.md 2.3), with the return value and context rules of api.md 5.2 / 5.3.

# call($mode, $map, $op, @args): a method call or a plain function call of
# Class::op, in the caller's context.
sub call {
    my ($mode, $m, $op, @a) = @_;
    return $m->$op(@a) if $mode eq 'method';
    no strict 'refs';
    my $class = blessed($m) // die 'not an object';
    return &{"${class}::$op"}($m, @a);
}

sub same_value {
    my ($v, $got, $want, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    if (!defined $want) { return is($got, undef, $name) }
    if ($v->{val} eq 'int') {
        return ok(defined $got && "$got" eq "$want" && $got == $want, $name)
            || diag('got ' . ($got // 'undef') . ", want $want");
    }
    return is($got, $want, $name);
}

for my $b (@BACKENDS) {
    for my $v (@VARIANTS) {
        for my $mode (qw(method function)) {
            subtest "$v->{name} ($mode, $b)" => guard { scenario($v, $mode, $b) };
        }
    }
}

sub scenario {
    my ($v, $mode, $b) = @_;
    my $class = $v->{class};
    my $redis = $b eq 'redis';
    # a new map of this backend
    my $new = sub { $redis ? $class->new($srv->url, @_) : $class->new(undef, @_) };
    my ($k0, $k1, $k2, $k3) = @{ $v->{keys} };
    my ($v0, $v1, $v2, $v3) = @{ $v->{vals} };
    my $miss = $v->{missing};
    my $c  = sub { my $r = call($mode, @_); $r };    # scalar context
    my $cl = sub { my @r = call($mode, @_); @r };    # list context

    my $m = $new->(100);
    isa_ok($m, $class);
    is(reftype($m), 'SCALAR', 'object is a reference to a scalar');

    # --- empty map
    is($c->($m, 'size'), 0, 'size 0 on a new map');
    is($c->($m, 'get', $k0), undef, 'get missing -> undef');
    is_false($c->($m, 'exists', $k0), 'exists missing -> false');
    is_false($c->($m, 'remove', $k0), 'remove missing -> false');
    is($c->($m, 'take', $k0), undef, 'take missing -> undef');

    # --- put / get / exists
    is_true($c->($m, 'put', $k0, $v0), 'put new -> true');
    same_value($v, $c->($m, 'get', $k0), $v0, 'get after put');
    is_true($c->($m, 'exists', $k0), 'exists after put');
    is($c->($m, 'size'), 1, 'size 1');
    is_true($c->($m, 'put', $k0, $v1), 'put overwrite -> true');
    same_value($v, $c->($m, 'get', $k0), $v1, 'get after overwrite');
    is($c->($m, 'size'), 1, 'overwrite keeps size');
    my @l = $cl->($m, 'get', $k0);
    is(scalar @l, 1, 'get in list context returns one element');
    @l = $c->($m, 'get', $miss);
    is_deeply(\@l, [undef], 'get missing in list context -> (undef)');

    # returned strings are independent copies
    if ($v->{val} eq 'str') {
        my $got = $c->($m, 'get', $k0);
        $got .= 'changed';
        same_value($v, $c->($m, 'get', $k0), $v1, 'mutating a returned value does not touch the map');
    }

    # --- add
    is_false($c->($m, 'add', $k0, $v2), 'add existing -> false');
    same_value($v, $c->($m, 'get', $k0), $v1, '... value untouched');
    is_true($c->($m, 'add', $k1, $v2), 'add new -> true');
    same_value($v, $c->($m, 'get', $k1), $v2, 'get after add');

    # --- update
    is_false($c->($m, 'update', $k2, $v0), 'update missing -> false');
    is_false($c->($m, 'exists', $k2), '... and does not insert');
    is_true($c->($m, 'update', $k1, $v3), 'update existing -> true');
    same_value($v, $c->($m, 'get', $k1), $v3, 'get after update');

    # --- swap
    is($c->($m, 'swap', $k2, $v0), undef, 'swap absent -> undef');
    same_value($v, $c->($m, 'get', $k2), $v0, '... and inserts');
    same_value($v, $c->($m, 'swap', $k2, $v1), $v0, 'swap present -> old value');
    same_value($v, $c->($m, 'get', $k2), $v1, '... and stores the new one');

    # --- take
    same_value($v, $c->($m, 'take', $k2), $v1, 'take -> value');
    is_false($c->($m, 'exists', $k2), '... and removes it');
    is($c->($m, 'take', $k2), undef, 'take again -> undef');

    # --- get_or_set
    same_value($v, $c->($m, 'get_or_set', $k3, $v0), $v0, 'get_or_set absent -> default');
    same_value($v, $c->($m, 'get', $k3), $v0, '... and inserts it');
    same_value($v, $c->($m, 'get_or_set', $k3, $v1), $v0, 'get_or_set present -> stored value');
    same_value($v, $c->($m, 'get', $k3), $v0, '... unchanged');

    # --- cas / cas_take
    is_false($c->($m, 'cas', $k3, $v1, $v2), 'cas mismatch -> false');
    same_value($v, $c->($m, 'get', $k3), $v0, '... unchanged');
    is_true($c->($m, 'cas', $k3, $v0, $v2), 'cas match -> true');
    same_value($v, $c->($m, 'get', $k3), $v2, '... stores desired');
    is_false($c->($m, 'cas', $miss, $v0, $v1), 'cas missing -> false');
    is_false($c->($m, 'exists', $miss), '... and does not insert');
    is($c->($m, 'cas_take', $k3, $v0), undef, 'cas_take mismatch -> undef');
    is_true($c->($m, 'exists', $k3), '... entry kept');
    same_value($v, $c->($m, 'cas_take', $k3, $v2), $v2, 'cas_take match -> removed value');
    is_false($c->($m, 'exists', $k3), '... entry removed');
    is($c->($m, 'cas_take', $miss, $v0), undef, 'cas_take missing -> undef');

    # --- remove
    is_true($c->($m, 'remove', $k0), 'remove present -> true');
    is_false($c->($m, 'remove', $k0), 'remove again -> false');
    is($c->($m, 'get', $k0), undef, 'get after remove -> undef');

    # --- counters
    if ($v->{counters}) {
        my ($ca, $cb) = ($k0, $k2);
        is($c->($m, 'incr', $ca), 1, 'incr missing -> 1');
        is($c->($m, 'incr', $ca), 2, 'incr -> 2');
        is($c->($m, 'decr', $ca), 1, 'decr -> 1');
        is($c->($m, 'decr', $cb), -1, 'decr missing -> -1');
        is($c->($m, 'incr_by', $ca, 10), 11, 'incr_by 10 -> 11');
        is($c->($m, 'incr_by', $ca, -20), -9, 'incr_by -20 -> -9');
        is($c->($m, 'incr_by', $miss, 5), 5, 'incr_by missing -> delta');
        is($c->($m, 'get', $ca), -9, 'counter value visible through get');
        is($c->($m, 'max', $ca, 100), 100, 'max raises -> 100');
        is($c->($m, 'max', $ca, 50), 100, 'max lower desired -> keeps 100');
        is($c->($m, 'min', $ca, 7), 7, 'min lowers -> 7');
        is($c->($m, 'min', $ca, 20), 7, 'min higher desired -> keeps 7');
        is($c->($m, 'get', $ca), 7, 'stored value after max/min');
        ok($c->($m, 'remove', $miss), 'cleanup');
        is($c->($m, 'max', $miss, 3), 3, 'max missing -> inserts desired');
        ok($c->($m, 'remove', $miss), 'cleanup');
        is($c->($m, 'min', $miss, -3), -3, 'min missing -> inserts desired');
        ok($c->($m, 'remove', $miss), 'cleanup');
        ok($c->($m, 'remove', $ca) && $c->($m, 'remove', $cb), 'cleanup counters');
    }
    else {
        for my $op (qw(incr decr incr_by max min)) {
            ok(!$class->can($op), "$class has no $op method");
            no strict 'refs';
            ok(!defined &{"${class}::$op"}, "$class has no ${op} function");
        }
        my $ok = eval { $m->incr($k0); 1 };
        ok(!$ok, 'incr on a string-value map dies');
        like($@, qr/Can't locate object method "incr" via package "\Q$class\E"/, '... as a missing method');
    }

    # state now: only k1 => v3
    is($c->($m, 'size'), 1, 'one entry left');

    # --- batch
    is($c->($m, 'set_multi', $k0, $v0, $k2, $v2), 2, 'set_multi 2 pairs -> 2');
    same_value($v, $c->($m, 'get', $k2), $v2, 'set_multi stored');
    is($c->($m, 'set_multi'), 0, 'set_multi() -> 0');
    dies_like(sub { $c->($m, 'set_multi', $k3, $v3, $miss) },
        qr/set_multi requires even number of arguments \(key, value pairs\)/, 'set_multi odd -> croak');
    is_false($c->($m, 'exists', $k3), '... nothing stored');
    my @g = $cl->($m, 'get_multi', $k0, $miss, $k1);
    is(scalar @g, 3, 'get_multi: one element per key');
    same_value($v, $g[0], $v0, 'get_multi [0]');
    is($g[1], undef, 'get_multi missing -> undef');
    same_value($v, $g[2], $v3, 'get_multi [2]');
    same_value($v, scalar($c->($m, 'get_multi', $k0, $k1)), $v3, 'get_multi in scalar context -> last element');
    is(scalar($c->($m, 'get_multi', $k1, $miss)), undef, 'get_multi scalar, last missing -> undef');
    my @e = $cl->($m, 'get_multi');
    is(scalar @e, 0, 'get_multi() -> empty list');
    is(scalar($c->($m, 'get_multi')), undef, 'get_multi() scalar -> undef');
    is($c->($m, 'remove_multi', $k0, $miss, $k2), 2, 'remove_multi -> removed count');
    is($c->($m, 'remove_multi'), 0, 'remove_multi() -> 0');
    is($c->($m, 'size'), 1, 'only k1 left');

    # --- keys / values / items / to_hash / each
    $c->($m, 'put', $_->[0], $_->[1]) for [$k0, $v0], [$k2, $v2];
    my %want = ($k0 => $v0, $k1 => $v3, $k2 => $v2);
    my @k = $cl->($m, 'keys');
    my @vals = $cl->($m, 'values');
    my @it = $cl->($m, 'items');
    is(scalar @k, 3, 'keys: 3');
    is(scalar @vals, 3, 'values: 3');
    is(scalar @it, 6, 'items: flat list of 6');
    is_deeply([sort @k], [sort keys %want], 'keys are the stored keys');
    is_deeply([sort @vals], [sort values %want], 'values are the stored values');
    my %fromitems = @it;
    is_deeply(\%fromitems, \%want, 'items pairs match');
    is_deeply([ @it[ grep { !($_ % 2) } 0..$#it ] ], \@k, 'items keys in keys order');
    is_deeply([ @it[ grep { $_ % 2 } 0..$#it ] ], \@vals, 'items values in values order');
    is(scalar($c->($m, 'keys')), $k[-1], 'keys in scalar context -> last key (not a count)');
    is(scalar($c->($m, 'values')), $vals[-1], 'values in scalar context -> last value');
    is(scalar($c->($m, 'items')), $it[-1], 'items in scalar context -> last element');
    my $h = $c->($m, 'to_hash');
    is(ref $h, 'HASH', 'to_hash -> hashref');
    is_deeply($h, \%want, 'to_hash contents');

    my (%seen, $n);
    while (my ($ek, $ev) = $cl->($m, 'each')) {
        $seen{$ek} = $ev;
        last if ++$n > 10;
    }
    is_deeply(\%seen, \%want, 'each visits every entry once');
    my @after = $cl->($m, 'each');
    is(scalar @after, 2, 'each auto-reset after the end: next call starts over');
    my @r = $cl->($m, 'iter_reset');
    is(scalar @r, 0, 'iter_reset returns nothing');
    my $sv = $c->($m, 'each');
    ok(defined $sv && grep({ defined $_ && $_ eq $sv } values %want), 'each in scalar context -> the value (last element)');
    $c->($m, 'iter_reset');

    # --- accessors
    is($c->($m, 'size'), 3, 'size 3');
    is($c->($m, 'max_entries'), 112, 'max_entries for 100 requested -> 112');
    is($c->($m, 'max_size'), 0, 'max_size 0 (no LRU)');
    is($c->($m, 'ttl'), 0, 'ttl 0 (no TTL)');
    if ($redis) {
        # Differences on Redis: no table, mapping or arena
        is($c->($m, 'capacity'), 128, 'Redis: capacity = the largest table of a file map of that size');
        is($c->($m, 'tombstones'), 0, 'Redis: tombstones 0');
        is($c->($m, 'mmap_size'), 0, 'Redis: mmap_size 0');
        is($c->($m, 'arena_cap'), 0, 'Redis: arena_cap 0');
        is($c->($m, 'arena_used'), 0, 'Redis: arena_used 0');
    }
    else {
    is($c->($m, 'capacity'), 16, 'capacity 16');
    my $tomb = $c->($m, 'tombstones');
    ok(defined $tomb && $tomb >= 0 && $tomb <= 16, 'tombstones is a small count');
    ok($c->($m, 'mmap_size') > 4096, 'mmap_size covers at least the header page');
    }
    if ($redis) {}
    elsif ($v->{arena}) {
        is($c->($m, 'arena_cap'), 12800, 'arena_cap = 100 * 128');
        my $want_arena = 0;
        for my $wk (keys %want) {
            $want_arena += block(length $wk) if $v->{key} eq 'str';
            $want_arena += block(length $want{$wk}) if $v->{val} eq 'str';
        }
        is($c->($m, 'arena_used'), $want_arena, "arena_used is the blocks of the stored strings ($want_arena)");
    }
    else {
        is($c->($m, 'arena_cap'), 0, 'arena_cap 0 for int-only');
        is($c->($m, 'arena_used'), 0, 'arena_used 0 for int-only');
    }
    is($c->($m, 'stat_evictions'), 0, 'stat_evictions 0');
    is($c->($m, 'stat_expired'), 0, 'stat_expired 0');
    is($c->($m, 'stat_recoveries'), 0, 'stat_recoveries 0');
    is_true($c->($m, 'reserve', 50), 'reserve 50 -> true');
    ok($c->($m, 'capacity') * 7 / 8 >= 50, 'reserve grew the table for 50 entries');
    is_true($c->($m, 'reserve', 0), 'reserve 0 -> true');

    my $st = $c->($m, 'stats');
    is(ref $st, 'HASH', 'stats -> hashref');
    is_deeply([sort keys %$st],
        [sort qw(size capacity max_entries tombstones mmap_size arena_used arena_cap
                 evictions expired recoveries max_size ttl frozen readonly)], 'stats has the 14 keys');
    my %acc = (size => 'size', capacity => 'capacity', max_entries => 'max_entries',
        tombstones => 'tombstones', mmap_size => 'mmap_size', arena_used => 'arena_used',
        arena_cap => 'arena_cap', evictions => 'stat_evictions', expired => 'stat_expired',
        recoveries => 'stat_recoveries', max_size => 'max_size', ttl => 'ttl',
        );
    for my $sk (sort keys %acc) {
        is($st->{$sk}, $c->($m, $acc{$sk}), "stats{$sk} equals $acc{$sk}()");
    }

    # --- path / memfd / sync / unlink on an anonymous map
    if ($redis) {
        like($c->($m, 'path'), qr{^redis\+unix://}, 'Redis: path is the URL');
    }
    else {
    is($c->($m, 'path'), undef, 'path undef for anonymous');
    }
    is($c->($m, 'memfd'), -1, 'memfd -1 for anonymous');
    lives(sub { $c->($m, 'sync') }, 'sync on anonymous map succeeds');
    # (Redis: unlink deletes the map for every handle: tested at the end)
    is_false($c->($m, 'unlink'), 'unlink on anonymous -> false') unless $redis;

    # --- clear
    my @cr = $cl->($m, 'clear');
    is(scalar @cr, 0, 'clear returns nothing');
    is($c->($m, 'size'), 0, 'size 0 after clear');
    is($c->($m, 'capacity'), $redis ? 128 : 16, 'capacity 16 after clear (Redis: unchanged)');
    is($c->($m, 'tombstones'), 0, 'tombstones 0 after clear');
    is($c->($m, 'arena_used'), 0, 'arena_used 0 after clear');
    is($c->($m, 'get', $k1), undef, 'entries gone after clear');
    my @ek = $cl->($m, 'keys');
    is(scalar @ek, 0, 'keys on empty map -> ()');
    is(scalar($c->($m, 'keys')), undef, 'keys on empty map in scalar context -> undef');
    my @ee = $cl->($m, 'each');
    is(scalar @ee, 0, 'each on empty map -> ()');
    is_deeply($c->($m, 'to_hash'), {}, 'to_hash on empty map -> {}');
    is_true($c->($m, 'put', $k1, $v1), 'usable after clear');

    # --- soft failure when the table is full (max_entries guaranteed, then false)
    my $small = $new->(14);
    is($c->($small, 'max_entries'), 14, 'max_entries for 14 requested -> 14');
    my @fk = fill_keys($v, 15);
    my $okc = 0;
    $okc += $c->($small, 'put', $fk[$_], $v0) ? 1 : 0 for 0 .. 13;
    is($okc, 14, 'max_entries() inserts succeed');
    is_false($c->($small, 'put', $fk[14], $v0), 'put past max_entries -> false');
    is_false($c->($small, 'add', $fk[14], $v0), 'add past max_entries -> false');
    is($c->($small, 'swap', $fk[14], $v0), undef, 'swap past max_entries -> undef');
    is($c->($small, 'get_or_set', $fk[14], $v0), undef, 'get_or_set past max_entries -> undef');
    same_value($v, $c->($small, 'get_or_set', $fk[0], $v1), $v0, 'get_or_set of an existing key works on a full map');
    is_true($c->($small, 'put', $fk[0], $v1), 'overwrite works on a full map');
    is($c->($small, 'set_multi', $fk[1], $v2, $fk[14], $v2), 1, 'set_multi on a full map counts only stored pairs');
    same_value($v, $c->($small, 'get', $fk[1]), $v2, '... the existing key was updated');
    is($c->($small, 'size'), 14, 'size stays 14');
    if ($v->{counters}) {
        dies_like(sub { $c->($small, 'incr', $fk[14]) },    qr/^\Q$class\E: increment failed/, 'incr new key on full map croaks');
        dies_like(sub { $c->($small, 'decr', $fk[14]) },    qr/^\Q$class\E: decrement failed/, 'decr new key on full map croaks');
        dies_like(sub { $c->($small, 'incr_by', $fk[14], 3) }, qr/^\Q$class\E: incr_by failed/, 'incr_by new key on full map croaks');
        dies_like(sub { $c->($small, 'max', $fk[14], 3) },  qr/^\Q$class\E: max failed/, 'max new key on full map croaks');
        dies_like(sub { $c->($small, 'min', $fk[14], 3) },  qr/^\Q$class\E: min failed/, 'min new key on full map croaks');
        is($c->($small, 'incr', $fk[2]), $v0 + 1, 'incr of an existing key works on a full map');
    }
    is_true($c->($small, 'remove', $fk[3]), 'remove one');
    is_true($c->($small, 'put', $fk[14], $v0), 'then the insert succeeds');
    if ($redis) {
        is_true($c->($small, 'unlink'), 'Redis: unlink deletes the map');
        dies_like(sub { $c->($small, 'put', $fk[1], $v0) }, qr/map no longer exists/, 'Redis: ... for every handle');
    }
}

# api.md 5.2: integers come back as numbers (IVs), not strings
subtest 'integer results are numbers' => guard {
    require B;
    my $num = sub { my $f = B::svref_2object(\$_[0])->FLAGS; ($f & B::SVf_IOK()) && !($f & B::SVf_POK()) };
    for my $v (variants_where(sub { $_[0]{key} eq 'int' || $_[0]{val} eq 'int' })) {
        my $m = $v->{class}->new(undef, 100);
        my ($k, $x) = ($v->{keys}[1], $v->{vals}[1]);
        $m->put($k, $x);
        if ($v->{val} eq 'int') {
            ok($num->($m->get($k)), "$v->{name}: get returns an IV");
            ok($num->(($m->values)[0]), "$v->{name}: values returns IVs");
            ok($num->($m->incr($k)), "$v->{name}: incr returns an IV");
            ok($num->(($m->get_multi($k))[0]), "$v->{name}: get_multi returns IVs");
        }
        if ($v->{key} eq 'int') {
            ok($num->(($m->keys)[0]), "$v->{name}: keys returns IVs");
            ok($num->(($m->each)[0]), "$v->{name}: each returns an IV key");
            $m->iter_reset;
        }
        ok($num->($m->size), "$v->{name}: size is a number");
    }
};

# frozen / readonly (api.md 6.8): integers 1/0; 0 and 0 for a plain read-write map
for my $v (@VARIANTS) {
    for my $mode (qw(method function)) {
        subtest "$v->{name} frozen/readonly ($mode)" => guard {
            my $m = $v->{class}->new(undef, 10);
            my $f = call($mode, $m, 'frozen');
            ok(defined $f && "$f" eq '0', 'frozen -> 0');
            my $r = call($mode, $m, 'readonly');
            ok(defined $r && "$r" eq '0', 'readonly -> 0');
            my $st = $m->stats;
            is($st->{frozen}, $f, 'stats{frozen} equals frozen()');
            is($st->{readonly}, $r, 'stats{readonly} equals readonly()');
        };
    }
}

# arena bytes a string of $n bytes takes: none when inline (<= 7), else next_pow2 >= 16
sub block { my $n = shift; return 0 if $n <= 7; my $b = 16; $b *= 2 while $b < $n; $b }

# $n distinct keys of the variant's key kind
sub fill_keys {
    my ($v, $n) = @_;
    return map { $v->{key} eq 'int' ? 1000 + $_ : "fill-$_" } 1 .. $n;
}

done_testing;
