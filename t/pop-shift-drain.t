use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Variants;
use OpTable;
use Data::HashMap::Shared;
use RedisServer;

# pop, shift, drain (api.md 6.6, 5.3): LRU maps take from the tail / head ignoring
# accessed bits; other maps from the lowest / highest slot (the order of keys);
# expired entries are skipped, reclaimed and counted; drain clamps its limit to the
# size; list returns give the last element in scalar context. Every variant, by
# method and by keyword.
#
# Both backends: anonymous maps, and maps in a private redis-server (CI requires
# it). On Redis a map without LRU pops "an entry of Redis' choosing, the first of
# a scan" (POD "Differences on Redis"); for a map this small that is the first of
# the order keys() lists, so the same assertions hold (a larger map would not be
# listed in scan order by keys()).

my ($srv, @BACKENDS) = RedisServer->backends;

my @after_wait;

for my $b (@BACKENDS) {
for my $v (@VARIANTS) {
    my @k = @{ $v->{keys} };
    my @val = @{ $v->{vals} };
    my $new = sub { $b eq 'redis' ? $v->{class}->new($srv->url, @_) : $v->{class}->new(undef, @_) };
    for my $mode (qw(method kw)) {
        my $op = OpTable::ops($v, $mode);
        subtest "$v->{name} by $mode ($b)" => guard {
            # an empty map
            my $e = $new->(10);
            is_deeply([ $op->{pop}->($e) ], [], 'pop on an empty map: ()');
            is_deeply([ $op->{shift}->($e) ], [], 'shift on an empty map: ()');
            is_deeply([ $op->{drain}->($e, 5) ], [], 'drain on an empty map: ()');
            is($op->{pop_scalar}->($e), undef, 'pop in scalar context on an empty map: undef');
            is($op->{drain_scalar}->($e, 5), undef, 'drain in scalar context on an empty map: undef');

            # LRU: tail / head, ignoring accessed bits
            my $m = $new->(10, 10);
            $op->{put}->($m, $k[$_], $val[$_]) for 0 .. 3;      # head: k3 k2 k1 k0 :tail
            $op->{get}->($m, $k[0]);                             # marked: pop ignores it
            is_deeply([ $op->{pop}->($m) ], [ $k[0], $val[0] ], 'pop: the LRU tail');
            is_deeply([ $op->{shift}->($m) ], [ $k[3], $val[3] ], 'shift: the LRU head');
            $op->{put}->($m, $k[1], $val[2]);                    # promote k1: head k1 k2
            is($op->{pop_scalar}->($m), $val[2], 'pop in scalar context: the value');
            is($op->{size}->($m), 1, 'size');
            is($op->{shift_scalar}->($m), $val[2], 'shift in scalar context: the value');
            is($op->{size}->($m), 0, 'empty again');
            $op->{put}->($m, $k[$_], $val[$_]) for 0 .. 3;
            is_deeply([ $op->{drain}->($m, 3) ], [ map { ($k[$_], $val[$_]) } 0 .. 2 ], 'drain: in pop order, flat');
            is_deeply([ $op->{drain}->($m, 0) ], [], 'drain 0: ()');
            $op->{put}->($m, $k[$_], $val[$_]) for 0 .. 2;      # head: k2 k1 k0 k3 :tail
            is($op->{drain_scalar}->($m, 2), $val[0], 'drain in scalar context: the last value');
            is_deeply([ $op->{drain}->($m, -1) ], [ map { ($k[$_], $val[$_]) } 1 .. 2 ], 'drain -1 (huge): everything');
            is($op->{size}->($m), 0, 'drained');
            is($op->{stat_evictions}->($m), 0, 'pop/shift/drain are not evictions');
            is($op->{arena_used}->($m), 0, 'strings freed') if $v->{arena};

            # no LRU: lowest / highest slot, the order of keys
            my $p = $new->(10);
            $op->{put}->($p, $k[$_], $val[$_]) for 0 .. 3;
            my @order = $op->{keys}->($p);
            my %val = map { ($k[$_] => $val[$_]) } 0 .. 3;
            is_deeply([ $op->{pop}->($p) ], [ $order[0], $val{ $order[0] } ], 'pop: lowest slot');
            is_deeply([ $op->{shift}->($p) ], [ $order[-1], $val{ $order[-1] } ], 'shift: highest slot');
            is_deeply([ $op->{drain}->($p, 10) ], [ map { ($_, $val{$_}) } @order[1, 2] ], 'drain clamps to the size');
            is_deeply([ $op->{pop}->($p) ], [], 'empty');

            push @after_wait, expired_case($v, $mode, $op, $new, $b);
        };
    }
}
}

# Expired entries met by pop/shift/drain are reclaimed (counted) and skipped.
sub expired_case {
    my ($v, $mode, $op, $new, $b) = @_;
    my @k = @{ $v->{keys} };
    my @val = @{ $v->{vals} };
    my $l = $new->(10, 10, 100);    # LRU + TTL
    $op->{put_ttl}->($l, $k[0], $val[0], 1);          # tail: will expire
    $op->{put}->($l, $k[1], $val[1]);
    $op->{put}->($l, $k[2], $val[2]);
    $op->{put_ttl}->($l, $k[3], $val[3], 1);          # head: will expire
    my $t = $new->(10, 0, 100);     # TTL only
    $op->{put_ttl}->($t, $k[$_], $val[$_], $_ % 2 ? 1 : 0) for 0 .. 3;
    my $d = $new->(10, 10, 100);
    $op->{put_ttl}->($d, $k[$_], $val[$_], $_ == 2 ? 0 : 1) for 0 .. 3;
    return sub {
        subtest "expired entries, $v->{name} by $mode ($b)" => guard {
            is($op->{size}->($l), 4, 'size counts the expired entries');
            is_deeply([ $op->{pop}->($l) ], [ $k[1], $val[1] ], 'pop skips the expired tail');
            is($op->{stat_expired}->($l), 1, '... reclaimed and counted');
            is_deeply([ $op->{shift}->($l) ], [ $k[2], $val[2] ], 'shift skips the expired head');
            is($op->{stat_expired}->($l), 2, '... reclaimed and counted');
            is_deeply([ $op->{pop}->($l) ], [], 'empty');
            is($op->{size}->($l), 0, 'size 0');

            my @got;
            while (my @e = $op->{pop}->($t)) { push @got, $e[0] }
            is_deeply([ sort @got ], [ sort @k[0, 2] ], 'TTL map: pop returns only live entries');
            is($op->{stat_expired}->($t), 2, '... the expired ones reclaimed and counted');

            # drain(n): n clamped to the size (expired included); expired ones skipped
            is_deeply([ $op->{drain}->($d, 2) ], [ $k[2], $val[2] ], 'drain skips expired entries');
            is($op->{size}->($d), 0, 'everything reclaimed on the way');
            is($op->{stat_expired}->($d), 3, '... and counted');
        };
    };
}

OpTable::wait_next_second();
$_->() for @after_wait;

done_testing;
