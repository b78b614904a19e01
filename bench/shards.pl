#!/usr/bin/perl
# bench/shards.pl [N] -- two-process write throughput on a 1-shard and an 8-shard
# map (new_sharded), measured in the same run (with one-process rows for reference).
#
#   perl -Mblib bench/shards.pl               # N = 200000 writes per process
#   BENCH_REPS=5 perl -Mblib bench/shards.pl 500000
#
# Both processes overwrite keys of their own (prefilled, so no resize happens) with
# the keyword shm_ii_put, started together through a pipe. On a 1-shard map every
# put takes the one write lock; on an 8-shard map the two processes mostly take
# different shards' locks and run in parallel. Reported: total puts per second of
# the processes together (best of BENCH_REPS runs, the kinds alternating), and the
# 8-shard / 1-shard ratio of the two-process runs. The one-process rows show what
# one writer does alone: two writers can only beat it when two cores are free for
# them, so on a machine busy with other work the two-process numbers say little
# about locking (look at the load average printed at the end).

use strict;
use warnings;
use Time::HiRes qw(time);
use File::Temp qw(tempdir);
use POSIX ();
use Data::HashMap::Shared::II;

my $N    = shift // 200_000;
my $REPS = $ENV{BENCH_REPS} // 3;
my $dir  = tempdir('hms-bench-shards-XXXXXX', TMPDIR => 1, CLEANUP => 1);

# One run: a fresh set of $shards shards, $procs writers; returns puts per second.
sub run {
    my ($shards, $procs, $rep) = @_;
    my $prefix = "$dir/s$shards-$procs-$rep";
    my $set = Data::HashMap::Shared::II->new_sharded($prefix, $shards, 4 * $N / $shards + 1000);
    $set->put($_, 0) for 1 .. 2 * $N;     # prefill: the timed puts are overwrites
    pipe(my $go_r, my $go_w) or die "pipe: $!";
    my @pids;
    for my $p (0 .. $procs - 1) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            close $go_w;
            my $m = Data::HashMap::Shared::II->new_sharded($prefix, $shards, 4 * $N / $shards + 1000);
            my ($lo, $hi) = ($p * $N + 1, ($p + 1) * $N);
            sysread($go_r, my $b, 1);     # EOF when the parent closes: start
            write_loop($m, $lo, $hi);
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    close $go_r;
    select(undef, undef, undef, 0.2);      # both children are waiting on the pipe
    my $t0 = time;
    close $go_w;
    my $failed = 0;
    for (@pids) { waitpid($_, 0); $failed++ if $? }
    my $dt = time - $t0;
    die "a writer failed\n" if $failed;
    my $check = $set->get($N);
    die "writes missing\n" unless defined $check && $check == $N;
    $set->unlink;
    return $procs * $N / $dt;
}

sub write_loop {
    my ($m, $lo, $hi) = @_;
    for my $k ($lo .. $hi) {
        shm_ii_put $m, $k, $k;
    }
}

my %best;
for my $rep (1 .. $REPS) {
    for my $procs (2, 1) {
        for my $shards (1, 8) {
            my $r = run($shards, $procs, $rep);
            $best{"$shards/$procs"} = $r if $r > ($best{"$shards/$procs"} // 0);
        }
    }
}
printf "%d puts per process (II, keyword shm_ii_put, overwrites), best of %d\n", $N, $REPS;
printf "%-8s %-10s %14s\n", 'shards', 'processes', 'puts/s (all)';
for my $procs (2, 1) {
    printf "%-8d %-10d %14.0f\n", $_, $procs, $best{"$_/$procs"} for 1, 8;
}
printf "two processes, 8-shard / 1-shard: %.2fx\n", $best{'8/2'} / $best{'1/2'};
printf "load average: %s", (eval { open my $fh, '<', '/proc/loadavg'; scalar <$fh> } // "?\n");
