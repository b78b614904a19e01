#!/usr/bin/perl
# eg/aggregator.pl [workers] [lines] -- aggregate metrics from many processes: workers
# add to counters; a collector periodically drains the map (takes and removes every
# counter at once) and adds what it took to its own totals, so the map stays small and
# nothing is counted twice or lost.  perl -Mblib eg/aggregator.pl 4 5000
use strict;
use warnings;
use Data::HashMap::Shared::SI;

my $workers = shift // 4;
my $lines   = shift // 5000;
my @words   = qw(alpha beta gamma delta epsilon zeta eta theta);

my $metrics = Data::HashMap::Shared::SI->new(undef, 1000);

my @pids;
for my $w (1 .. $workers) {
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        for my $i (1 .. $lines) {
            my $word = $words[ ($i * $w) % @words ];
            shm_si_incr_by $metrics, "words:$word", 1;
            shm_si_incr_by $metrics, 'chars', length $word;
        }
        exit 0;
    }
    push @pids, $pid;
}

my (%total, $drains);
my $collect = sub {
    my %got = shm_si_drain $metrics, -1;    # -1: everything there is
    $total{$_} += $got{$_} for keys %got;
    $drains++;
};
my $running = @pids;
while ($running) {
    $collect->();
    select undef, undef, undef, 0.01;
    $running = grep { waitpid($_, 1) == 0 } @pids;    # WNOHANG
}
waitpid $_, 0 for @pids;
$collect->();

my (%want, $chars);
for my $w (1 .. $workers) {
    for my $i (1 .. $lines) {
        my $word = $words[ ($i * $w) % @words ];
        $want{"words:$word"}++;
        $chars += length $word;
    }
}
$want{chars} = $chars;
printf "%-14s %8d\n", $_, $total{$_} for sort keys %total;
print "collected in $drains drains; map size now ", shm_si_size $metrics, "\n";
for (keys %want) { die "$_: $total{$_} != $want{$_}\n" unless ($total{$_} // 0) == $want{$_} }
