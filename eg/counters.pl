#!/usr/bin/perl
# eg/counters.pl [workers] [events] -- shared counters: forked workers count events
# into one map with atomic increments; the parent checks that none was lost.
#   perl -Mblib eg/counters.pl 4 10000
use strict;
use warnings;
use Data::HashMap::Shared::SI;

my $workers = shift // 4;
my $events  = shift // 10_000;

# Anonymous: shared with the children forked below. A path would share it with any
# process that opens the same file.
my $hits = Data::HashMap::Shared::SI->new(undef, 1000);

my @pages = qw(/ /about /blog /contact /login);
my @pids;
for my $w (1 .. $workers) {
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        for my $i (1 .. $events) {
            shm_si_incr $hits, $pages[ $i % @pages ];    # one atomic add, no lock held
            shm_si_incr_by $hits, 'bytes', 512;
        }
        exit 0;
    }
    push @pids, $pid;
}
waitpid $_, 0 for @pids;

my $total = 0;
for my $page (@pages) {
    my $n = shm_si_get $hits, $page;
    printf "%-10s %8d\n", $page, $n;
    $total += $n;
}
printf "%-10s %8d\n", 'bytes', shm_si_get $hits, 'bytes';
my $want = $workers * $events;
print "total $total of $want events\n";
die "lost increments\n" unless $total == $want && (shm_si_get $hits, 'bytes') == 512 * $want;
