#!/usr/bin/perl
# bench/reserve.pl [--baseline DIR] [SIZES] -- what reserving file space before first
# touch costs (decisions 19): create a map of S entries in /dev/shm and fill it, for
# II (int -> int) and SS (11-17 byte keys, 10-16 byte values, both in the arena).
#
#   perl -Mblib bench/reserve.pl                       # S = 1M and 10M (~6 GB at 10M)
#   perl -Mblib bench/reserve.pl 1000000
#   perl -Mblib bench/reserve.pl --baseline ../main 1000000 10000000
#                                # this build and another built tree, alternating
#
# Each figure: best of BENCH_REPS (3) runs, each in a fresh process: seconds for new()
# plus S puts (the table grows from 16 slots), the allocated size of the file
# afterwards, and the fallocate calls made (counted with strace -c when strace is
# installed, in a separate untimed run).

use strict;
use warnings;
use Time::HiRes qw(time);
use POSIX ();

my $BASELINE;
if (@ARGV && $ARGV[0] eq '--baseline') { shift; $BASELINE = shift // die "--baseline needs a directory\n" }
my @SIZES = @ARGV ? @ARGV : (1_000_000, 10_000_000);
my $REPS = $ENV{BENCH_REPS} // 3;
my $dir = -w '/dev/shm' ? '/dev/shm' : '/tmp';

if (($ENV{HMS_RESERVE_CHILD} // '') =~ /^(\w+):(\d+)$/) {    # one run: print "secs alloc"
    my ($fam, $S) = ($1, $2);
    my $p = "$dir/hms-reserve-$$.shm";
    unlink $p;
    my $t0 = time;
    if ($fam eq 'II') {
        require Data::HashMap::Shared::II;
        my $m = Data::HashMap::Shared::II->new($p, $S);
        for my $i (1 .. $S) { $m->put($i * 7919, $i) or die "put $i failed\n" }
    }
    else {
        require Data::HashMap::Shared::SS;
        my $m = Data::HashMap::Shared::SS->new($p, $S);
        for my $i (1 .. $S) { $m->put(sprintf('key%08d', $i) . ('k' x ($i % 7)), sprintf('val%07d', $i) . ('v' x ($i % 7))) or die "put $i failed\n" }
    }
    my $t = time - $t0;
    my $alloc = (stat $p)[12] * 512;
    unlink $p;
    print "$t $alloc\n";
    exit 0;
}

my %inc = (this => ['-Mblib'], ($BASELINE ? (baseline => [ "-I$BASELINE/blib/lib", "-I$BASELINE/blib/arch" ]) : ()));
my @builds = $BASELINE ? qw(this baseline) : qw(this);
my $strace = grep { -x "$_/strace" } split /:/, $ENV{PATH};
sub run1 {
    my ($b, $fam, $S, $trace) = @_;
    local $ENV{HMS_RESERVE_CHILD} = "$fam:$S";
    my @cmd = ($^X, @{ $inc{$b} }, $0);
    if ($trace) {
        # strace -c: % time, seconds, usecs/call, calls, [errors,] syscall
        my $out = `strace -f -c -e trace=fallocate @cmd 2>&1 >/dev/null`;
        my ($secs, $calls) = $out =~ /^\s*[\d.]+\s+([\d.]+)\s+\d+\s+(\d+)\s+(?:\d+\s+)?fallocate\s*$/m;
        return ($calls // 0, $secs // 0);
    }
    my $out = `@cmd`;
    die "$b $fam $S: run failed\n" unless $out =~ /^([\d.]+) (\d+)/;
    return ($1, $2);
}
printf "%-9s %-3s %10s %10s %12s %14s %14s  %s\n", 'build', 'map', 'entries', 'seconds', 'ns/entry', 'allocated MiB', 'fallocate calls', 'in fallocate';
for my $S (@SIZES) {
    for my $fam (qw(II SS)) {
        my %best;
        for my $r (1 .. $REPS) {
            for my $b ($r % 2 ? @builds : reverse @builds) {
                my ($t, $a) = run1($b, $fam, $S);
                $best{$b} = [ $t, $a ] if !$best{$b} || $t < $best{$b}[0];
            }
        }
        for my $b (@builds) {
            my ($calls, $secs) = $strace ? run1($b, $fam, $S, 1) : ('?', '?');
            printf "%-9s %-3s %10d %10.2f %12.0f %14.1f %14s  %s\n", $b, $fam, $S, $best{$b}[0], 1e9 * $best{$b}[0] / $S,
                $best{$b}[1] / 1048576, $calls, $secs eq '?' ? '' : sprintf('%.3f s (strace)', $secs);
        }
    }
}
open my $l, '<', '/proc/loadavg';
printf "load %s", scalar <$l>;
