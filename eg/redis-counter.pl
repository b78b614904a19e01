#!/usr/bin/perl
# eg/redis-counter.pl [workers] [events] [URL] -- a counter map outgrows one machine:
# workers count into a local file map, the counts move to a map in Redis (one
# set_multi), and the workers (stand-ins for several machines) go on counting there
# with the same code: only the constructor's first argument changed.
# Without a URL it starts a private redis-server on a unix socket for the demo.
#   perl -Mblib eg/redis-counter.pl 4 10000
#   perl -Mblib eg/redis-counter.pl 4 10000 redis://10.0.0.1:6379/hits
use strict;
use warnings;
use File::Temp ();
use Data::HashMap::Shared::SI;

my $workers = shift // 4;
my $events  = shift // 10_000;
my $url     = shift;
my $dir     = File::Temp::tempdir(CLEANUP => 1);
my $server;
if (!defined $url) {
    if (system('redis-server --version >/dev/null 2>&1') != 0) {
        print "no redis-server: skipped\n";
        exit 0;
    }
    $server = fork // die "fork: $!";
    if (!$server) {
        open STDOUT, '>', '/dev/null';
        exec 'redis-server', '--port', '0', '--unixsocket', "$dir/redis.sock", '--save', '', '--dir', $dir;
        die "exec redis-server: $!";
    }
    select undef, undef, undef, 0.05 until -S "$dir/redis.sock";
    $url = "redis+unix://$dir/redis.sock?name=hits";
}

# count($where): every worker counts $events hits over 100 pages into the map at $where
sub count {
    my ($where) = @_;
    my @pids;
    for my $w (1 .. $workers) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            my $hits = Data::HashMap::Shared::SI->new($where, 100_000);   # the only line that knows where
            shm_si_incr $hits, 'page' . ($_ % 100) for 1 .. $events;
            exit 0;
        }
        push @pids, $pid;
    }
    waitpid $_, 0 for @pids;
}

sub total { my $t = 0; $t += $_ for values %{ $_[0]->to_hash }; $t }

# 1. one machine: a file
my $file = "$dir/hits.shm";
count($file);
my $local = Data::HashMap::Shared::SI->new($file, 100_000);
printf "on one machine: total %d of %d events\n", total($local), $workers * $events;

# 2. the move: every count into Redis in one call (hashmap-shared dump FILE |
#    hashmap-shared load URL does the same from the shell)
my $remote = Data::HashMap::Shared::SI->new($url, 100_000);
$remote->clear;
my $moved = $remote->set_multi($local->items);

# 3. several machines: the same workers, the URL instead of the path
count($url);
my $want = 2 * $workers * $events;
my $got  = total($remote);
printf "moved %d counters; total %d of %d events on Redis (%s)\n", $moved, $got, $want, $remote->path;

if ($server) { kill 'TERM', $server; waitpid $server, 0 }
die "counting went wrong\n" unless $got == $want && $moved == 100;
