#!/usr/bin/perl
# eg/rate-limit.pl [workers] [requests] -- a fixed-window rate limiter shared by many
# processes: at most LIMIT requests per client per minute. The window is part of the
# key, so each window's counter expires on its own (TTL 120 s).
#   perl -Mblib eg/rate-limit.pl 4 100
use strict;
use warnings;
use Data::HashMap::Shared::SI;

my $workers  = shift // 4;
my $requests = shift // 100;
my $LIMIT    = 60;

my $counts = Data::HashMap::Shared::SI->new(undef, 10_000, 0, 120);

sub allow {
    my ($client, $window) = @_;
    return (shm_si_incr $counts, "$client:$window") <= $LIMIT;
}

# one window for the whole demo, so that its result does not depend on the clock
my $window = int(time / 60);
pipe my $r, my $w or die "pipe: $!";
my @pids;
for my $worker (1 .. $workers) {
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        close $r;
        my %allowed;
        for my $i (1 .. $requests) {
            my $client = "client" . ($i % 3);
            $allowed{$client}++ if allow($client, $window);
        }
        print {$w} "$_ $allowed{$_}\n" for keys %allowed;
        exit 0;
    }
    push @pids, $pid;
}
close $w;
my %allowed;
while (<$r>) { my ($c, $n) = split; $allowed{$c} += $n }
waitpid $_, 0 for @pids;
for my $c (sort keys %allowed) {
    my $asked = shm_si_get $counts, "$c:$window";
    printf "%s: %d requests, %d allowed, ttl %ds\n", $c, $asked, $allowed{$c},
        shm_si_ttl_remaining $counts, "$c:$window";
    my $want = $asked < $LIMIT ? $asked : $LIMIT;
    die "$c: allowed $allowed{$c}, expected $want\n" unless $allowed{$c} == $want;
}
