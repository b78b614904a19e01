use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Variants;
use OpTable;
use Data::HashMap::Shared;
use RedisServer;

# TTL (api.md 6.5, 7.4): every row of the table "effect of each operation on an
# existing entry's expiry", for an int-value (II) and a string-value (SS) variant,
# by method and by keyword; lazy expiry and reclaiming; TTL-only operations on maps
# without TTL; argument truncation; expiry across reopening. Expiry needs the clock
# to move: all expired-entry checks share one wait for the next second (~0.5 s).

my $DEFAULT = 100;

# Every scenario runs on both backends: anonymous (or file) maps, and maps in a
# private redis-server (CI requires it), whose expiry counts the server's clock (the
# same machine's here). Listed exception (POD "Differences on Redis"):
# flush_expired_partial($limit) removes up to $limit expired entries per shard, so
# its done flag says "no expired entry left" rather than "the scan reached the end
# of the table".
my ($srv, @BACKENDS) = RedisServer->backends;
sub newmap { RedisServer::new_map($srv, @_) }

# Seconds left, allowing for one second boundary passed since the write.
sub left_is {
    my ($got, $want, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    if (!defined $want) { return is($got, undef, $name) }
    if ($want == 0)     { return is($got, 0, $name) }
    ok(defined $got && ($got == $want || $got == $want - 1), $name)
        or diag('got ' . ($got // 'undef') . ", want $want (or " . ($want - 1) . ')');
}

my %KEYS = (
    II => { t => 1, p => 2, n => 3, x => 10, y => 20 },
    SS => { t => 'k1', p => 'a longer key two', n => 'k3', x => 'x', y => 'a longer value y' },
);

# The expired-entry scenarios, set up before the one wait and checked after it.
my @after_wait;

for my $b (@BACKENDS) {
for my $vn (qw(II SS)) {
    my $v = variant($vn);
    my ($kt, $kp, $kn, $x, $y) = @{ $KEYS{$vn} }{qw(t p n x y)};
    for my $mode (qw(method kw)) {
        my $op = OpTable::ops($v, $mode);
        subtest "expiry table, $vn by $mode ($b)" => guard {
            my $m = newmap($b, $v->{class}, 100, 0, $DEFAULT);
            is($op->{ttl}->($m), $DEFAULT, 'ttl accessor');
            my $reset = sub {
                $op->{clear}->($m);
                is_true($op->{put_ttl}->($m, $kt, $x, 30), 'put_ttl with a TTL');
                is_true($op->{put_ttl}->($m, $kp, $x, 0), 'put_ttl 0: permanent');
            };
            my $check = sub {
                my ($name, $wt, $wp, $wn) = @_;
                left_is($op->{ttl_remaining}->($m, $kt), $wt, "$name: entry with a TTL");
                left_is($op->{ttl_remaining}->($m, $kp), $wp, "$name: permanent entry");
                left_is($op->{ttl_remaining}->($m, $kn), $wn, "$name: new entry") if @_ > 3;
            };
            $reset->();
            $check->('after put_ttl', 30, 0, undef);

            # put, set_multi, swap: reset to now + default / stays permanent / default
            for my $w (qw(put set_multi swap)) {
                $reset->();
                for my $k ($kt, $kp, $kn) {
                    if    ($w eq 'put')       { is_true($op->{put}->($m, $k, $y), "put") }
                    elsif ($w eq 'set_multi') { is($op->{set_multi}->($m, $k, $y), 1, 'set_multi') }
                    else                      { $op->{swap}->($m, $k, $y) }
                }
                $check->($w, $DEFAULT, 0, $DEFAULT);
            }
            # update: reset / stays / no insert
            $reset->();
            is_true($op->{update}->($m, $kt, $y), 'update with a TTL');
            is_true($op->{update}->($m, $kp, $y), 'update permanent');
            is_false($op->{update}->($m, $kn, $y), 'update missing');
            $check->('update', $DEFAULT, 0, undef);
            # put_ttl, update_ttl: from the argument (0 = permanent)
            $reset->();
            is_true($op->{put_ttl}->($m, $_->[0], $y, $_->[1]), "put_ttl $_->[1]") for [$kt, 0], [$kp, 7], [$kn, 9];
            $check->('put_ttl', 0, 7, 9);
            $reset->();
            is_true($op->{update_ttl}->($m, $kt, $y, 0), 'update_ttl 0');
            is_true($op->{update_ttl}->($m, $kp, $y, 7), 'update_ttl 7');
            is_false($op->{update_ttl}->($m, $kn, $y, 9), 'update_ttl missing');
            $check->('update_ttl', 0, 7, undef);
            # add / add_ttl: existing untouched (false); new gets default / argument
            $reset->();
            is_false($op->{add}->($m, $kt, $y), 'add existing');
            is_false($op->{add}->($m, $kp, $y), 'add existing permanent');
            is_true($op->{add}->($m, $kn, $y), 'add new');
            $check->('add', 30, 0, $DEFAULT);
            is($op->{get}->($m, $kt), $x, '... value untouched');
            $reset->();
            is_false($op->{add_ttl}->($m, $kt, $y, 5), 'add_ttl existing');
            is_false($op->{add_ttl}->($m, $kp, $y, 5), 'add_ttl existing permanent');
            is_true($op->{add_ttl}->($m, $kn, $y, 5), 'add_ttl new');
            $check->('add_ttl', 30, 0, 5);
            # get_or_set hit: reset / stays; new: default
            $reset->();
            is($op->{get_or_set}->($m, $_, $y), $_ eq $kn ? $y : $x, 'get_or_set') for $kt, $kp, $kn;
            $check->('get_or_set', $DEFAULT, 0, $DEFAULT);
            # counters (hit: reset / stays; new: default), max/min refresh even unchanged
            if ($v->{counters}) {
                for my $c ([incr => []], [decr => []], [incr_by => [5]], [max => [-100]], [min => [100]]) {
                    my ($name, $extra) = @$c;
                    $reset->();
                    $op->{$name}->($m, $_, @$extra) for $kt, $kp, $kn;
                    $check->($name, $DEFAULT, 0, $DEFAULT);
                }
            }
            # cas success: reset / stays; cas and cas_take failures: unchanged
            $reset->();
            is_true($op->{cas}->($m, $kt, $x, $y), 'cas success');
            is_true($op->{cas}->($m, $kp, $x, $y), 'cas success on permanent');
            $check->('cas success', $DEFAULT, 0);
            $reset->();
            is_false($op->{cas}->($m, $kt, $y, $x), 'cas failure');
            is($op->{cas_take}->($m, $kt, $y), undef, 'cas_take failure');
            is_false($op->{cas}->($m, $kn, $x, $y), 'cas missing');
            $check->('cas / cas_take failure', 30, 0, undef);
            # touch: reset to the default (per-key TTL discarded), permanent stays
            $reset->();
            is_true($op->{touch}->($m, $kt), 'touch');
            is_true($op->{touch}->($m, $kp), 'touch permanent');
            is_false($op->{touch}->($m, $kn), 'touch missing');
            $check->('touch', $DEFAULT, 0, undef);
            # persist
            $reset->();
            is_true($op->{persist}->($m, $kt), 'persist');
            is_true($op->{persist}->($m, $kp), 'persist permanent');
            is_false($op->{persist}->($m, $kn), 'persist missing');
            $check->('persist', 0, 0, undef);
            # set_ttl: from the argument; 0 keeps / makes permanent; 2**32 truncates to 0
            $reset->();
            is_true($op->{set_ttl}->($m, $kt, 3), 'set_ttl');
            is_true($op->{set_ttl}->($m, $kp, 4), 'set_ttl on permanent');
            is_false($op->{set_ttl}->($m, $kn, 5), 'set_ttl missing');
            $check->('set_ttl', 3, 4, undef);
            is_true($op->{set_ttl}->($m, $kp, 2**32), 'set_ttl 2**32');
            left_is($op->{ttl_remaining}->($m, $kp), 0, '... truncated to 0: permanent');
            is_true($op->{set_ttl}->($m, $kp, 2**32 + 5), 'set_ttl 2**32+5');
            left_is($op->{ttl_remaining}->($m, $kp), 5, '... truncated to 5');
            # readers: unchanged
            $reset->();
            $op->{get}->($m, $kt);
            $op->{exists}->($m, $kt);
            my @g = $op->{get_with_ttl}->($m, $kt);
            is($g[0], $x, 'get_with_ttl value');
            left_is($g[1], 30, 'get_with_ttl ttl');
            my @gp = $op->{get_with_ttl}->($m, $kp);
            is($gp[1], 0, 'get_with_ttl of a permanent entry: 0');
            left_is(scalar($op->{get_with_ttl_scalar}->($m, $kt)), 30, 'get_with_ttl in scalar context: the ttl');
            is_deeply([ $op->{get_with_ttl}->($m, $kn) ], [], 'get_with_ttl missing: empty list');
            my @k = $op->{keys}->($m);
            is(scalar(@k), 2, 'keys');
            1 while $m->each;
            $check->('readers', 30, 0, undef);

            # clamping (api 6.5): values >= 4294967294 become 4294967293; the expiry
            # saturates, so the entry lives ~136 years
            $reset->();
            is_true($op->{put_ttl}->($m, $kn, $y, 2**32 - 1), 'put_ttl 2**32-1');
            cmp_ok($op->{ttl_remaining}->($m, $kn), '>', 4_000_000_000, '... clamped, far in the future');
            is_true($op->{put_ttl}->($m, $kn, $y, 2**32 + 7), 'put_ttl 2**32+7');
            left_is($op->{ttl_remaining}->($m, $kn), 7, '... truncated to 7');
            is_true($op->{put_ttl}->($m, $kn, $y, -1), 'put_ttl -1 (huge unsigned)');
            cmp_ok($op->{ttl_remaining}->($m, $kn), '>', 4_000_000_000, '... clamped');
            is($op->{stat_expired}->($m), 0, 'nothing expired in this subtest');

            push @after_wait, expired_setup($v, $mode, $op, $b);
        };
    }
}
}

# Expired entries: one map per variant and mode, one key per scenario, all with a
# TTL of 1 second; checked after the wait.
sub expired_setup {
    my ($v, $mode, $op, $b) = @_;
    my $m = newmap($b, $v->{class}, 200, 0, $DEFAULT);
    my $lru = newmap($b, $v->{class}, 200, 2, $DEFAULT);      # LRU + TTL: expired victims
    my $str = $v->{key} eq 'str';
    my $val = $v->{val} eq 'str' ? sub { "value $_[0]" } : sub { $_[0] + 0 };
    my @scen = qw(get exists ttl_remaining get_with_ttl keys remove put put_ttl set_multi add add_ttl
        update update_ttl swap take cas cas_take get_or_set touch persist set_ttl);
    push @scen, qw(incr decr incr_by max min) if $v->{counters};
    my %key;
    my $i = 0;
    for my $s (@scen) {
        my $k = $str ? "key $s" : 1000 + $i++;
        $key{$s} = $k;
        $op->{put_ttl}->($m, $k, $val->(1), 1);
    }
    $op->{put}->($m, $str ? 'a permanent one' : 5, $val->(5));
    $op->{persist}->($m, $str ? 'a permanent one' : 5);
    $op->{put_ttl}->($lru, $str ? 'old' : 1, $val->(1), 1);
    $op->{put}->($lru, $str ? 'live' : 2, $val->(2));
    # a TTL map for the flush operations
    my $f = newmap($b, $v->{class}, 200, 0, $DEFAULT);
    $op->{put_ttl}->($f, $str ? "f$_" : $_, $val->($_), $_ % 2 ? 1 : 0) for 1 .. 40;
    return sub {
        subtest "expired entries, $v->{name} by $mode ($b)" => guard {
            my $n = @scen + 1;
            is($op->{size}->($m), $n, 'size counts expired entries until reclaimed');
            my $exp = 0;
            my $is_expired_count = sub {
                my ($want, $name) = @_;
                local $Test::Builder::Level = $Test::Builder::Level + 1;
                is($op->{stat_expired}->($m), $want, $name);
            };
            # readers: invisible, not reclaimed
            is($op->{get}->($m, $key{get}), undef, 'get: invisible');
            is_false($op->{exists}->($m, $key{exists}), 'exists: false');
            is($op->{ttl_remaining}->($m, $key{ttl_remaining}), undef, 'ttl_remaining: undef');
            is_deeply([ $op->{get_with_ttl}->($m, $key{get_with_ttl}) ], [], 'get_with_ttl: ()');
            is(scalar(my @k = $op->{keys}->($m)), 1, 'keys: only the live entry');
            $is_expired_count->(0, 'readers reclaim nothing');
            is($op->{size}->($m), $n, '... size unchanged');
            # remove: true, not counted
            is_true($op->{remove}->($m, $key{remove}), 'remove of an expired entry: true');
            $is_expired_count->(0, '... not counted');
            $n--;
            # put / put_ttl / set_multi revive in place, not counted
            is_true($op->{put}->($m, $key{put}, $val->(7)), 'put revives');
            left_is($op->{ttl_remaining}->($m, $key{put}), $DEFAULT, '... with a fresh default expiry');
            is_true($op->{put_ttl}->($m, $key{put_ttl}, $val->(7), 50), 'put_ttl revives');
            left_is($op->{ttl_remaining}->($m, $key{put_ttl}), 50, '... with the given expiry');
            is($op->{set_multi}->($m, $key{set_multi}, $val->(7)), 1, 'set_multi revives');
            is($op->{get}->($m, $key{set_multi}), $val->(7), '... readable again');
            $is_expired_count->(0, 'reviving is not expiring');
            is($op->{size}->($m), $n, 'size unchanged by revivals');
            # the others reclaim (and count) it first
            my %want = (
                add => [1, 1], add_ttl => [1, 1], update => [0, 0], update_ttl => [0, 0],
                swap => [undef, 1], take => [undef, 0], cas => [0, 0], cas_take => [undef, 0],
                get_or_set => [$val->(9), 1], touch => [0, 0], persist => [0, 0], set_ttl => [0, 0],
                incr => [1, 1], decr => [-1, 1], incr_by => [9, 1], max => [9, 1], min => [9, 1],
            );
            for my $s (grep { exists $want{$_} } @scen) {
                my $k = $key{$s};
                my @args = $s =~ /^(add|update|swap|get_or_set)$/ ? ($val->(9))
                         : $s =~ /_ttl$/ && $s ne 'set_ttl'        ? ($val->(9), 60)
                         : $s eq 'set_ttl'                         ? (60)
                         : $s =~ /^cas/                            ? ($val->(1), $s eq 'cas' ? ($val->(9)) : ())
                         : $s =~ /^(incr_by|max|min)$/             ? (9)
                         :                                          ();
                my $r = $op->{$s}->($m, $k, @args);
                my ($wr, $inserted) = @{ $want{$s} };
                if ($s =~ /^(add|add_ttl|update|update_ttl|cas|touch|persist|set_ttl)$/) {
                    $wr ? is_true($r, "$s: true (inserted anew)") : is_false($r, "$s: false");
                }
                else {
                    is($r, $wr, "$s: " . ($wr // 'undef'));
                }
                $exp++;
                $is_expired_count->($exp, "$s reclaims and counts the expired entry");
                $n += $inserted - 1;
                is($op->{size}->($m), $n, "$s: size");
            }
            is($op->{get}->($m, $key{add}), $val->(9), 'add inserted the new value');
            left_is($op->{ttl_remaining}->($m, $key{add}), $DEFAULT, '... with the default TTL');
            left_is($op->{ttl_remaining}->($m, $key{add_ttl}), 60, 'add_ttl: the given TTL');
            # LRU + TTL: an expired victim counts as expired, not evicted
            $op->{put}->($lru, $str ? 'new' : 3, $val->(3));
            is($op->{stat_expired}->($lru), 1, 'expired LRU victim: stat_expired');
            is($op->{stat_evictions}->($lru), 0, '... not stat_evictions');
            is($op->{size}->($lru), 2, '... size');
            $op->{put}->($lru, $str ? 'newer' : 4, $val->(4));
            is($op->{stat_evictions}->($lru), 1, 'a live victim: stat_evictions');
            # flush_expired_partial / flush_expired
            is($op->{size}->($f), 40, 'flush map: 40 entries, 20 expired');
            my @r = $op->{flush_expired_partial}->($f, 0);
            is(scalar(@r), 2, 'flush_expired_partial returns (removed, done)');
            is($r[1], 0, 'limit 0 scans one slot (Redis: removes one entry): not done');
            my $before = $op->{stat_expired}->($f);
            my $scalar = $op->{flush_expired_partial_scalar}->($f, 10);
            is($scalar, 0, 'scalar context: the done flag');
            my ($got, $done, $calls) = ($r[0] + $op->{stat_expired}->($f) - $before, 0, 1);
            while (!$done) {
                my ($rm, $d) = $op->{flush_expired_partial}->($f, 7);
                $got += $rm;
                $done = $d;
                last if ++$calls > 1000;
            }
            is($done, 1, 'done at the end of the table');
            my $rest = $op->{flush_expired}->($f);
            is($got + $rest, 20, 'partial flushes + a full flush removed every expired entry');
            is($op->{stat_expired}->($f), 20, 'every expired entry flushed once');
            is($op->{size}->($f), 20, 'live entries stay');
            is($op->{flush_expired}->($f), 0, 'nothing left to flush');
            if ($b eq 'redis') {
                # (difference: done means no expired entry is left)
                is_deeply([ $op->{flush_expired_partial}->($f, 2**32 + 3) ], [0, 1], 'Redis: nothing left: done');
            }
            else {
                is_deeply([ $op->{flush_expired_partial}->($f, 2**32 + 3) ], [0, 0], 'limit truncated to 32 bits (3)');
            }
        };
    };
}

OpTable::wait_next_second();
$_->() for @after_wait;

# TTL-only operations on maps without TTL (api.md 7.4 first bullet)
for my $b (@BACKENDS) {
for my $vn (qw(II SS)) {
    my $v = variant($vn);
    my ($kt, $x) = @{ $KEYS{$vn} }{qw(t x)};
    for my $mode (qw(method kw)) {
        my $op = OpTable::ops($v, $mode);
        subtest "no TTL: $vn by $mode ($b)" => guard {
            for my $args ([0, 0], [10, 0]) {    # plain, and LRU without TTL
                my $m = newmap($b, $v->{class}, 10, @$args);
                $op->{put}->($m, $kt, $x);
                for my $w (qw(put_ttl add_ttl update_ttl)) {
                    dies_like(sub { $op->{$w}->($m, $kt, $x, 5) },
                        qr/^operation requires a TTL-enabled map \(pass ttl > 0 to constructor\)/, "$w croaks");
                }
                is_false($op->{persist}->($m, $kt), 'persist: false');
                is_false($op->{set_ttl}->($m, $kt, 5), 'set_ttl: false');
                is($op->{ttl_remaining}->($m, $kt), undef, 'ttl_remaining: undef');
                my @g = $op->{get_with_ttl}->($m, $kt);
                is_deeply(\@g, [$x, undef], 'get_with_ttl: (value, undef)');
                is(scalar($op->{get_with_ttl_scalar}->($m, $kt)), undef, '... scalar: undef');
                is($op->{flush_expired}->($m), 0, 'flush_expired: 0');
                is_deeply([ $op->{flush_expired_partial}->($m, 10) ], [0, 1], 'flush_expired_partial: (0, 1)');
                is($op->{ttl}->($m), 0, 'ttl accessor 0');
                if ($args->[0]) { is_true($op->{touch}->($m, $kt), 'touch on an LRU map: true') }
                else            { is_false($op->{touch}->($m, $kt), 'touch on a plain map: false') }
            }
        };
    }
}
}

for my $b (@BACKENDS) {
subtest "expiry survives reopening (wall-clock expiry) ($b)" => guard {
    my $p = $b eq 'redis' ? $srv->url : tmppath('ttl-reopen');
    {
        my $m = Data::HashMap::Shared::SS->new($p, 100, 0, 60);
        ok($m->put_ttl('hour', 'v', 3600), 'put_ttl 3600');
        ok($m->put('default', 'v'), 'put with the default');
        ok($m->put_ttl('forever', 'v', 0), 'permanent');
    }
    my $m = Data::HashMap::Shared::SS->new($p, 5);
    is($m->ttl, 60, 'the header keeps the default TTL');
    cmp_ok($m->ttl_remaining('hour'), '>=', 3598, 'about an hour left after reopening');
    cmp_ok($m->ttl_remaining('hour'), '<=', 3600, '... not more');
    cmp_ok($m->ttl_remaining('default'), '>=', 58, 'default expiry kept');
    is($m->ttl_remaining('forever'), 0, 'permanent stays permanent');
    $m->unlink;
};

subtest "sliding expiry of counters ($b)" => guard {
    my $m = newmap($b, 'Data::HashMap::Shared::SI', 10, 0, 50);
    $m->put_ttl('hits', 0, 5);
    $m->incr('hits');
    left_is($m->ttl_remaining('hits'), 50, 'incr pushes the expiry to now + default');
};
}

done_testing;
