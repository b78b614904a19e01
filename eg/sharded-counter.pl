#!/usr/bin/perl
# eg/sharded-counter.pl [workers] [events] [shards] -- a counter map split over shard
# files, each with its own lock, so workers that count different keys rarely wait for
# each other. The parent checks the totals, shows how keys spread over the shards, and
# that the set refuses to be reopened with another shard count.
#   perl -Mblib eg/sharded-counter.pl 4 10000 8
use strict;
use warnings;
use File::Temp ();
use Data::HashMap::Shared::SI;

my $workers = shift // 4;
my $events  = shift // 10_000;
my $shards  = shift // 8;
my $dir     = File::Temp::tempdir(CLEANUP => 1);
my $prefix  = "$dir/hits";              # files $prefix.0 .. $prefix.N-1

# sizes are per shard: 1000 entries in each of $shards files
my $hits = Data::HashMap::Shared::SI->new_sharded($prefix, $shards, 1000);

my @pids;
for my $w (1 .. $workers) {
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        # a worker opens the set by its prefix, as an unrelated process would
        my $h = Data::HashMap::Shared::SI->new_sharded($prefix, $shards, 1000);
        shm_si_incr $h, 'page' . ($_ % 100) for 1 .. $events;    # locks one shard
        exit 0;
    }
    push @pids, $pid;
}
waitpid $_, 0 for @pids;

my $total = 0;
$total += $_ for values %{ shm_si_to_hash $hits };    # to_hash visits every shard
my $want = $workers * $events;
printf "%d keys, total %d of %d events\n", shm_si_size($hits), $total, $want;

# each shard file is a map of its own
my @per = map { Data::HashMap::Shared::SI->new("$prefix.$_", 1000)->size } 0 .. $shards - 1;
print "keys per shard: @per\n";
my $sum = 0;
$sum += $_ for @per;

my $err = eval { Data::HashMap::Shared::SI->new_sharded($prefix, $shards * 2, 1000); '' } // $@;
print "reopening with ", $shards * 2, " shards: ", ($err =~ /(shard set has \d+ shards, opened with \d+)/ ? $1 : "not refused!"), "\n";

die "sharded counting went wrong\n"
    unless $total == $want && shm_si_size($hits) == 100 && $sum == 100 && $err =~ /shard set has/;
