#!/usr/bin/perl
# bench/shards.pl [N] -- two-process write throughput on a 1-shard and an 8-shard
# map (new_sharded), measured in the same run (with one-process rows for reference).
#
#   perl -Mblib bench/shards.pl               # N = 200000 writes per process
#   BENCH_REPS=5 perl -Mblib bench/shards.pl 500000
#
# Each process overwrites keys of its own (prefilled, so no resize happens), all
# processes started together through a pipe, with the keyword shm_ii_put (int key,
# int value). On a 1-shard map every put takes the one write lock; on an 8-shard map the two
# processes mostly take different shards' locks and run in parallel. Reported:
# puts per second of all processes together (best of BENCH_REPS runs, the kinds
# interleaved), and the 8-shard / 1-shard ratio of the two-process runs. The
# one-process rows show what one writer does alone: two writers can only beat it
# when two cores are free for them, so on a machine busy with other work (see the
# load average printed at the end) compare ratios of one run only. The "cores"
# column is the CPU time the writers got divided by the wall time: two writers
# that got about 1.0 core between them could not run in parallel.

use strict;
use warnings;
use Time::HiRes qw(time);
use File::Temp qw(tempdir);
use POSIX ();
use Data::HashMap::Shared::II;

my $N    = shift // 200_000;
my $REPS = $ENV{BENCH_REPS} // 3;
my $dir  = tempdir('hms-bench-shards-XXXXXX', TMPDIR => 1, CLEANUP => 1);

my %kinds = (
    'II' => {
        open  => sub { Data::HashMap::Shared::II->new_sharded($_[0], $_[1], $_[2]) },
        key   => sub { $_[0] },
        loop  => sub { my ($m, $lo, $hi) = @_; shm_ii_put $m, $_, $_ for $lo .. $hi },
        n     => $N,
    },
);

# One run: a fresh set of $shards shards, $procs writers; returns puts per second.
sub run {
    my ($kind, $shards, $procs, $rep) = @_;
    my $k = $kinds{$kind};
    my $n = $k->{n};
    my $prefix = "$dir/" . ($kind =~ s/\W/_/gr) . "-$shards-$procs-$rep";
    my $per = int(2 * $n / $shards * 1.2) + 1000;
    my $set = $k->{open}->($prefix, $shards, $per);
    $k->{loop}->($set, 1, 2 * $n);          # prefill: the timed puts are overwrites
    pipe(my $go_r, my $go_w) or die "pipe: $!";
    my @pids;
    for my $p (0 .. $procs - 1) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            close $go_w;
            my $m = $k->{open}->($prefix, $shards, $per);
            sysread($go_r, my $b, 1);     # EOF when the parent closes: start
            $k->{loop}->($m, $p * $n + 1, ($p + 1) * $n);
            POSIX::_exit(0);
        }
        push @pids, $pid;
    }
    close $go_r;
    select(undef, undef, undef, 0.2);      # the children are waiting on the pipe
    my (undef, undef, $cu0, $cs0) = times;
    my $t0 = time;
    close $go_w;
    my $failed = 0;
    for (@pids) { waitpid($_, 0); $failed++ if $? }
    my $dt = time - $t0;
    my (undef, undef, $cu1, $cs1) = times;
    my $cpus = ($cu1 + $cs1 - $cu0 - $cs0) / $dt;   # cores the writers actually got
    die "a writer failed\n" if $failed;
    die "writes missing\n" unless defined $set->get($k->{key}->($n));
    $set->unlink;
    return ($procs * $n / $dt, $cpus);
}

my %best;
for my $rep (1 .. $REPS) {
    for my $kind (sort keys %kinds) {
        for my $procs (2, 1) {
            for my $shards (1, 8) {
                my ($r, $cpus) = run($kind, $shards, $procs, $rep);
                my $key = "$kind/$shards/$procs";
                $best{$key} = [$r, $cpus] if $r > ($best{$key}[0] // 0);
            }
        }
    }
}
printf "keyword put, overwrites of each process's own keys, best of %d runs\n", $REPS;
printf "%-9s %8s %7s %10s %14s %6s\n", 'map', 'puts', 'shards', 'processes', 'puts/s (all)', 'cores';
for my $kind (sort keys %kinds) {
    for my $procs (2, 1) {
        printf "%-9s %8d %7d %10d %14.0f %6.2f\n", $kind, $kinds{$kind}{n}, $_, $procs, @{ $best{"$kind/$_/$procs"} }
            for 1, 8;
    }
    printf "%-9s two processes, 8-shard / 1-shard: %.2fx\n", $kind, $best{"$kind/8/2"}[0] / $best{"$kind/1/2"}[0];
}
printf "load average: %s", (eval { open my $fh, '<', '/proc/loadavg'; scalar <$fh> } // "?\n");
