#!/usr/bin/perl
# bench/redis-rounds.pl [ROUNDS] [CALLS] -- put and incr on a Redis map against
# Redis::Fast HSET / HINCRBY on the same server, in interleaved rounds: each round
# times CALLS calls of ours, then CALLS of Redis::Fast, and the figure is the median
# of the per-round ratios (Redis::Fast time / our time: above 1 is faster than it).
#
#   perl -Mblib bench/redis-rounds.pl            # 15 rounds of 10,000 calls
#   cd OTHER_BUILD && perl -Mblib /path/to/bench/redis-rounds.pl   # another build
#
# Why besides bench/vs.pl's redis sections (best of 3 timings per side): on this
# shared 2-CPU VM a timing moves by +-10% with the neighbours' load, and both sides
# of one round see the same load; the median of many rounds shows the ratio with
# less of it. Client and server are pinned to CPU 0, as in vs.pl (a wake-up across
# the VM's CPUs costs ~80-100 us). The map is a plain SI map (no TTL, no LRU) holding
# the CALLS keys; Redis::Fast works on one hash holding the same keys.

use strict;
use warnings;
use Time::HiRes qw(time);
use File::Temp ();
use FindBin ();
use lib "$FindBin::Bin/lib";
use BenchRedis ();
use Redis::Fast;
use Data::HashMap::Shared::SI;

my $ROUNDS = shift // 15;
my $N = shift // 10_000;
my $dir = File::Temp::tempdir(CLEANUP => 1);
my ($srv, $sock) = BenchRedis::start($dir);
my @k = map { "key$_" } 1 .. $N;
my $m = Data::HashMap::Shared::SI->new("redis+unix://$sock?name=bench", 2 * $N);
my $r = Redis::Fast->new(sock => $sock);
$m->put($_, 1) for @k;
$r->hset('peer', $_, 1) for @k;
my %case = (
    put => [ sub { my $i = 0; $m->put($_, $i++) for @k }, sub { my $i = 0; $r->hset('peer', $_, $i++) for @k } ],
    incr => [ sub { $m->incr($_) for @k }, sub { $r->hincrby('peer', $_, 1) for @k } ],
);
printf "load %s\n", (split ' ', do { open my $f, '<', '/proc/loadavg'; <$f> })[0];
for my $c (qw(put incr)) {
    my @ratio;
    for (1 .. $ROUNDS) {
        my @dt;
        for my $side (@{ $case{$c} }) { my $t = time; $side->(); push @dt, time - $t }
        push @ratio, $dt[1] / $dt[0];
    }
    @ratio = sort { $a <=> $b } @ratio;
    printf "%-5s %.2fx of Redis::Fast (median of %d rounds of %d calls a side; min %.2fx, max %.2fx)\n",
        $c, $ratio[$#ratio / 2], $ROUNDS, $N, $ratio[0], $ratio[-1];
}
BenchRedis::stop($srv);
