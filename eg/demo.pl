#!/usr/bin/perl
# eg/demo.pl [workers] [increments] [anon|file]
#
# Forks workers that count into one shared map, then prints the totals and the
# map's statistics. Run from a build tree with:  perl -Mblib eg/demo.pl
use strict;
use warnings;
use File::Temp ();
use Data::HashMap::Shared::SI;

my $workers = shift // 4;
my $per     = shift // 20000;
my $mode    = shift // 'anon';
die "usage: $0 [workers] [increments] [anon|file]\n" unless $mode =~ /^(anon|file)$/;

my $dir  = $mode eq 'file' ? File::Temp::tempdir(CLEANUP => 1) : undef;
my $path = $mode eq 'file' ? "$dir/demo.shm" : undef;

# Anonymous maps are shared with children forked after they are created;
# file-backed maps can be opened by any process by path.
my $map = Data::HashMap::Shared::SI->new($path, 1000);

my @pids;
for my $w (1 .. $workers) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $m = $mode eq 'file' ? Data::HashMap::Shared::SI->new($path, 1000) : $map;
        for my $i (1 .. $per) {
            shm_si_incr $m, 'total';
            shm_si_incr $m, "worker $w";
            shm_si_incr_by $m, 'bucket ' . ($i % 8), 2;
            shm_si_max $m, 'highest', $w * $per + $i;
        }
        exit 0;
    }
    push @pids, $pid;
}
waitpid($_, 0) for @pids;

printf "%d workers x %d increments into %s map\n\n", $workers, $per, $mode eq 'file' ? "a file-backed ($path)" : "an anonymous";
my $h = shm_si_to_hash $map;
printf "  %-10s %10d\n", $_, $h->{$_} for sort keys %$h;

my $total = (shm_si_get $map, "total") // 0;
my $want  = $workers * $per;
printf "\ntotal %d, expected %d: %s\n", $total, $want, $total == $want ? 'ok' : 'MISMATCH';

print "\nstats:\n";
my $st = $map->stats;
printf "  %-12s %s\n", $_, $st->{$_} for sort keys %$st;

exit($total == $want ? 0 : 1);
