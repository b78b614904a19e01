#!/usr/bin/perl
# bench/lru-ttl.pl [N] -- the cost of LRU and TTL: get / put / incr on a plain II
# map next to an LRU map, a TTL map and an LRU+TTL map, all in the same run.
#
#   perl -Mblib bench/lru-ttl.pl            # N = 100000 keys
#   BENCH_MIN_TIME=1 BENCH_REPS=5 perl -Mblib bench/lru-ttl.pl 200000
#
# Columns (keyword API, ns per operation, best of BENCH_REPS timings of at least
# BENCH_MIN_TIME seconds each; whole passes over the N keys):
#   get      lookup hits (LRU maps: sets the accessed bit)
#   put      overwrite of existing keys (LRU: promotion; TTL: expiry refresh)
#   incr     counter hits (plain maps: read lock + atomic add; LRU/TTL: write lock)
#   insert   put of N new keys into an empty map (timed per pass, map re-created)
#   evict    put of new keys into a full LRU map (one eviction per put)
# A map kind the build does not support (e.g. LRU/TTL before issue 3) prints n/a.
# The plain map must not get slower when LRU/TTL exist: compare its row across runs.

use strict;
use warnings;
use Time::HiRes qw(time);
use Data::HashMap::Shared::II;

my $N     = shift // 100_000;
my $MIN_T = $ENV{BENCH_MIN_TIME} // 0.5;
my $REPS  = $ENV{BENCH_REPS} // 3;

my @keys = map { $_ * 7919 + 13 } 1 .. $N;
my @new  = map { -($_ * 7919 + 13) } 1 .. $N;    # never present in the filled maps

# name => constructor arguments after ($path, $max_entries)
my @kinds = (
    [ plain     => [] ],
    [ lru       => [ $N ] ],            # max_size = N: the filled map is exactly full
    [ ttl       => [ 0, 3600 ] ],       # nothing expires during the run
    [ 'lru+ttl' => [ $N, 3600 ] ],
);

sub make {
    my ($args) = @_;
    my $m = eval { Data::HashMap::Shared::II->new(undef, $N, @$args) };
    return $m;
}

# ns per op: best of $REPS timings of >= $MIN_T s; $pass->() does one pass and
# returns the number of operations it did and the seconds to count.
sub measure {
    my ($pass) = @_;
    my $best;
    for (1 .. $REPS) {
        my ($el, $ops) = (0, 0);
        while ($el < $MIN_T) {
            my ($n, $t) = $pass->();
            $el += $t;
            $ops += $n;
        }
        my $ns = $el / $ops * 1e9;
        $best = $ns if !defined $best || $ns < $best;
    }
    return $best;
}

sub timed(&) { my $t0 = time; $_[0]->(); return time - $t0 }

my @cols = qw(get put incr insert evict);
printf "%-9s %9s %9s %9s %9s %9s   (ns/op, N=%d, perl %s)\n", 'map', @cols, $N, $^V;
for my $kind (@kinds) {
    my ($name, $args) = @$kind;
    my $m = make($args);
    unless ($m) {
        (my $e = $@) =~ s/ at .*//s;
        printf "%-9s %9s %9s %9s %9s %9s   (%s)\n", $name, ('n/a') x 5, $e;
        next;
    }
    shm_ii_put $m, $_, 1 for @keys;
    die "$name: size " . (shm_ii_size $m) . " after filling\n" unless (shm_ii_size $m) == $N;
    my %r;
    $r{get} = measure(sub {
        my $h = 0;
        my $t = timed { for my $k (@keys) { $h++ if defined(shm_ii_get $m, $k) } };
        die "$name: $h hits\n" unless $h == $N;
        return ($N, $t);
    });
    $r{put}  = measure(sub { my $t = timed { shm_ii_put $m, $_, 2 for @keys }; ($N, $t) });
    $r{incr} = measure(sub { my $t = timed { shm_ii_incr $m, $_ for @keys }; ($N, $t) });
    die "$name: size changed\n" unless (shm_ii_size $m) == $N;
    $r{insert} = measure(sub {
        my $e = make($args);
        my $t = timed { shm_ii_put $e, $_, 1 for @keys };
        ($N, $t);
    });
    if (@$args && $args->[0]) {            # LRU: the filled map is full, new keys evict
        my $ev0 = shm_ii_stat_evictions $m;
        $r{evict} = measure(sub {
            my $t = timed { shm_ii_put $m, $_, 1 for @new };
            my $t2 = timed { shm_ii_put $m, $_, 1 for @keys };   # and back
            (2 * $N, $t + $t2);
        });
        die "$name: size above max_size\n" if (shm_ii_size $m) > $N;
        die "$name: no evictions\n" unless (shm_ii_stat_evictions $m) > $ev0;
    }
    printf "%-9s %s\n", $name, join ' ', map { defined $r{$_} ? sprintf('%9.1f', $r{$_}) : sprintf('%9s', '-') } @cols;
}
