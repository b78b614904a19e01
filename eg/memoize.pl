#!/usr/bin/perl
# eg/memoize.pl [workers] [keys] -- memoize across processes: a slow function's
# results are cached in a shared map, so a value computed by one worker is reused by
# every other one.  perl -Mblib eg/memoize.pl 4 50
use strict;
use warnings;
use Data::HashMap::Shared::SS;
use Data::HashMap::Shared::SI;

my $workers = shift // 4;
my $keys    = shift // 50;

my $cache = Data::HashMap::Shared::SS->new(undef, $keys);
my $calls = Data::HashMap::Shared::SI->new(undef, 10);    # how often slow() really ran

sub slow {
    my ($n) = @_;
    shm_si_incr $calls, 'slow';
    select undef, undef, undef, 0.002;    # pretend this is expensive
    return join ',', map { $_ * $_ } 1 .. $n % 10;
}

sub memoized {
    my ($n) = @_;
    my $v = shm_ss_get $cache, $n;
    return $v if defined $v;
    # get_or_set stores our result unless another worker stored one meanwhile, and
    # returns whichever is stored: every worker ends up with the same value.
    return shm_ss_get_or_set $cache, $n, slow($n);
}

my @pids;
for my $w (1 .. $workers) {
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        for my $n (map { ($_ * 7 + $w) % $keys } 1 .. $keys) {
            my $v = memoized($n);
            exit 1 unless $v eq join ',', map { $_ * $_ } 1 .. $n % 10;
        }
        exit 0;
    }
    push @pids, $pid;
}
my $bad = 0;
for (@pids) { waitpid $_, 0; $bad++ if $? }
my $ran = shm_si_get $calls, 'slow';
printf "%d workers asked for %d keys each: slow() ran %d times (%d without the cache)\n",
    $workers, $keys, $ran, $workers * $keys;
die "a worker got a wrong value\n" if $bad;
die "the cache lost values\n" unless shm_ss_size($cache) == $keys;
