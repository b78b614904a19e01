#!/usr/bin/perl
# eg/work-queue.pl [jobs] [workers] -- a work queue: the producer fills a map with
# jobs; workers take them with pop (one at a time) or drain (a batch at a time). Each
# job is removed by exactly one worker.  perl -Mblib eg/work-queue.pl 2000 4
use strict;
use warnings;
use Data::HashMap::Shared::IS;
use Data::HashMap::Shared::II;

my $jobs    = shift // 2000;
my $workers = shift // 4;

my $queue = Data::HashMap::Shared::IS->new(undef, $jobs);    # job id => payload
my $done  = Data::HashMap::Shared::II->new(undef, $jobs);    # job id => times done
shm_is_put $queue, $_, "payload $_" for 1 .. $jobs;

my @pids;
for my $w (1 .. $workers) {
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        while (1) {
            my @batch;
            if ($w % 2) {                                  # odd workers: one job at a time
                my ($id, $payload) = shm_is_pop $queue;
                @batch = ($id, $payload) if defined $id;
            }
            else {                                         # even workers: up to 10 at once
                @batch = shm_is_drain $queue, 10;
            }
            last unless @batch;
            while (my ($id, $payload) = splice @batch, 0, 2) {
                exit 1 unless $payload eq "payload $id";
                shm_ii_incr $done, $id;
            }
        }
        exit 0;
    }
    push @pids, $pid;
}
for (@pids) { waitpid $_, 0; die "a worker failed\n" if $? }
my @twice = grep { (shm_ii_get $done, $_) != 1 } 1 .. $jobs;
printf "%d jobs done by %d workers; queue left: %d; done twice or never: %d\n",
    shm_ii_size $done, $workers, shm_is_size $queue, scalar @twice;
die "jobs lost or repeated\n" if @twice || shm_is_size $queue;
