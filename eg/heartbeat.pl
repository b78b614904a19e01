#!/usr/bin/perl
# eg/heartbeat.pl -- a liveness map: each worker writes its pid with a TTL of 3 s and
# keeps refreshing it; a worker that stops (or dies) vanishes from the map by itself.
# Takes about 4 seconds.  perl -Mblib eg/heartbeat.pl
use strict;
use warnings;
use Time::HiRes qw(sleep time);
use Data::HashMap::Shared::II;

my $TTL = 3;    # an entry written with TTL 3 lives between 2 and 3 seconds

my $alive = Data::HashMap::Shared::II->new(undef, 100, 0, $TTL);

my (@pids, $quitter);
for my $w (1 .. 3) {
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        while (1) {
            shm_ii_put $alive, $$, int time;    # a put refreshes the expiry
            exit 0 if $w == 2;                  # this one beats once and quits
            sleep 0.2;
        }
    }
    push @pids, $pid;
    $quitter = $pid if $w == 2;
}
waitpid $quitter, 0;    # its last beat is behind us now
sleep $TTL + 0.5;       # ... and older than the TTL after this
my %seen = map { $_ => 1 } shm_ii_keys $alive;
for my $pid (@pids) {
    printf "worker %d: %s\n", $pid, $seen{$pid} ? "alive (last beat at " . (shm_ii_get $alive, $pid) . ")" : 'gone';
}
kill 'TERM', grep { $_ != $quitter } @pids;
waitpid $_, 0 for grep { $_ != $quitter } @pids;
die "the quitter is still listed\n" if $seen{$quitter};
die "a live worker is missing\n" unless keys %seen == 2;
