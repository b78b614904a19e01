#!/usr/bin/perl
# bench/dump.pl -- what `hashmap-shared dump` costs: its own peak memory, and the
# longest a writer of the same map waits while it runs.
#
#   perl -Mblib bench/dump.pl rss 300000       # peak RSS (kB) of a dump of an N-entry map
#   perl -Mblib bench/dump.pl stall 1000000    # longest put of a concurrent writer,
#                                              # without and during a dump
#   HS=/tmp/old-hashmap-shared perl -Mblib bench/dump.pl rss 300000   # another CLI
#
# The map is an SS map in /dev/shm with keys "key N" and 40-byte values. rss samples
# the dump's /proc/PID/status: its peak resident set, split into private memory
# (what a streaming dump keeps flat) and the map's shared pages it has read (which
# grow with the map, and are the map's memory, not the dump's). stall forks a writer that puts in a loop (overwriting 1000 keys,
# so the map does not grow) and records the longest single put; it runs for the
# same time once without a dump (the machine's own noise: scheduling on a busy
# machine) and once while the dump runs. Run it on an otherwise idle machine.
use strict;
use warnings;
use Time::HiRes qw(time sleep);
use Data::HashMap::Shared::SS;

my ($mode, $n) = @ARGV;
$n //= 300_000;
die "usage: $0 rss|stall [ENTRIES]\n" unless ($mode // '') =~ /^(rss|stall)\z/;
my $hs   = $ENV{HS} // 'bin/hashmap-shared';
my $file = "/dev/shm/hms-bench-dump-$$.shm";
END { unlink $file if defined $file }

my $m = Data::HashMap::Shared::SS->new($file, int($n * 1.1));
$m->put("key $_", sprintf('value %-34d', $_)) for 1 .. $n;
printf "%s: %d entries, %.1f MB mapped; dump by %s\n", $file, $m->size, $m->mmap_size / 2**20, $hs;
my @dump = ($^X, '-Mblib', $hs, 'dump', '-o', '/dev/null', $file);

if ($mode eq 'rss') {
    # the peak resident set (the kernel's VmHWM, read as the dump exits), and the
    # largest private (RssAnon) and shared-map (RssShmem: the map's pages it read)
    # parts seen by sampling /proc every 10 ms
    my $t0 = time;
    my $pid = fork // die "fork: $!";
    if (!$pid) { exec @dump or die "exec: $!" }
    my %max = (VmHWM => 0, RssAnon => 0, RssShmem => 0);
    while (waitpid($pid, 1) == 0) {    # WNOHANG
        if (open my $fh, '<', "/proc/$pid/status") {
            while (<$fh>) {
                $max{$1} = $2 if /^(VmHWM|RssAnon|RssShmem):\s+(\d+) kB/ && $2 > $max{$1};
            }
        }
        sleep 0.01;
    }
    $? == 0 or die "dump failed\n";
    printf "dump: %.2f s; peak RSS %.1f MB: private (RssAnon) %.1f MB, map pages (RssShmem) %.1f MB\n",
        time - $t0, map { $max{$_} / 1024 } qw(VmHWM RssAnon RssShmem);
    exit 0;
}

# put times counted (seconds): a put that waits for the dump's read lock is slow; on
# a busy machine scheduling alone makes a few puts slow too
our @SLOW = (0.001, 0.01, 0.05, 0.1);

# stall: the longest put of a writer over $secs seconds, with $during run meanwhile
sub longest_put {
    my ($during) = @_;
    pipe my $r, my $w or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        close $r;
        my $stop = 0;
        local $SIG{TERM} = sub { $stop = 1 };
        my $w8 = Data::HashMap::Shared::SS->new($file, 1);
        my ($max, $ops, $i) = (0, 0, 0);
        my @slow = (0) x @SLOW;    # puts slower than each of @SLOW
        until ($stop) {
            my $t = time;
            $w8->put('key ' . (1 + $i++ % 1000), 'written by the writer');
            my $dt = time - $t;
            $max = $dt if $dt > $max;
            $dt > $SLOW[$_] and $slow[$_]++ for 0 .. $#SLOW;
            $ops++;
        }
        print $w "$max $ops @slow\n";
        close $w;
        exit 0;
    }
    close $w;
    sleep 0.5;    # the writer is running
    my $t0 = time;
    my $what = $during->();
    my $took = time - $t0;
    sleep 0.5;
    kill 'TERM', $pid;
    my ($max, $ops, @slow) = split ' ', scalar <$r>;
    waitpid $pid, 0;
    return ($max, $ops, $took, \@slow);
}

my ($dump_max, $dump_ops, $dump_took, $dump_slow) = longest_put(sub { system(@dump) == 0 or die "dump failed\n" });
my ($idle_max, $idle_ops, undef, $idle_slow) = longest_put(sub { sleep $dump_took });
my $slow = sub { join ', ', map { "$_[0][$_] > " . $SLOW[$_] * 1000 . ' ms' } 0 .. $#SLOW };
printf "writer alone for %.1f s:  longest put %.2f ms (%d puts: %s)\n", $dump_took + 1, $idle_max * 1000,
    $idle_ops, $slow->($idle_slow);
printf "writer during the dump:  longest put %.2f ms (%d puts: %s); the dump took %.1f s\n",
    $dump_max * 1000, $dump_ops, $slow->($dump_slow), $dump_took;
