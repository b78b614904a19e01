#!/usr/bin/perl
# bench/contention.pl -- P processes putting overlapping short keys into one SS map
# as fast as they can (issue 12's contention figure): total puts per second and each
# process's voluntary / involuntary context switches (from /proc/self/status).
#
#   perl -Mblib bench/contention.pl [PROCS [SECONDS [REPS]]]        # default 2 2 3
#   HMS_SPIN_US=5 perl -Mblib bench/contention.pl                  # another spin budget
#   perl -I../other/blib/lib -I../other/blib/arch bench/contention.pl  # another build
#
# Keys: 1000 random strings of 3..7 bytes, shared by all processes (every put
# overwrites one of them), values of 3..7 bytes; the map lives in /dev/shm when it is
# writable. Prints the best of REPS runs and the context switches of that run. Also,
# with --stopped: a writer is SIGSTOPped inside the lock and the CPU time the other
# process burns while it waits for 2 s is printed (it should be about the spin budget,
# not 2 s: a stopped holder costs no CPU after the spin).
use strict;
use warnings;
use Time::HiRes qw(time sleep);
use POSIX ();
use Data::HashMap::Shared::SS;

my $stopped = grep { $_ eq '--stopped' } @ARGV;
@ARGV = grep { $_ ne '--stopped' } @ARGV;
my ($P, $T, $REPS) = (@ARGV, 2, 2, 3)[ 0 .. 2 ];
my $dir = -w '/dev/shm' ? '/dev/shm' : '/tmp';
my $path = "$dir/hms-contention-$$.shm";

srand 4242;
my @k = map { join '', map { ('a' .. 'z')[ rand 26 ] } 1 .. 3 + int rand 5 } 1 .. 1000;

sub ctx {
    open my $f, '<', '/proc/self/status' or return (0, 0);
    my %s = map { /^(\w+):\s+(\d+)/ ? ($1, $2) : () } <$f>;
    return ($s{voluntary_ctxt_switches} // 0, $s{nonvoluntary_ctxt_switches} // 0);
}

sub run_once {
    unlink $path;
    Data::HashMap::Shared::SS->new($path, 10000);
    my @kids;
    for my $p (1 .. $P) {
        pipe my $r, my $w or die;
        my $pid = fork // die;
        if (!$pid) {
            close $r;
            my $m = Data::HashMap::Shared::SS->new($path, 10000);
            my ($v0, $n0) = ctx();
            my $n = 0;
            my $i = $p * 7919;
            my $end = time + $T;
            while (1) {
                for (1 .. 256) { shm_ss_put $m, $k[ $i++ % 1000 ], $k[ ($i * 31) % 1000 ] }
                $n += 256;
                last if time >= $end;
            }
            my ($v1, $n1) = ctx();
            syswrite $w, join(' ', $n, $v1 - $v0, $n1 - $n0) . "\n";
            POSIX::_exit(0);
        }
        close $w;
        push @kids, [ $pid, $r ];
    }
    my ($total, @cs);
    for (@kids) {
        my ($pid, $r) = @$_;
        my $line = <$r>;
        waitpid $pid, 0;
        my ($n, $v, $nv) = split ' ', $line;
        $total += $n;
        push @cs, "$v/$nv";
    }
    unlink $path;
    return ($total / $T, \@cs);
}

if ($stopped) {
    unlink $path;
    my $m = Data::HashMap::Shared::SS->new($path, 10000);
    my $holder = fork // die;
    if (!$holder) {
        my $h = Data::HashMap::Shared::SS->new($path, 10000);
        $h->set_multi(map { ("k$_", "v$_") } 1 .. 200000) while 1;    # long critical sections
    }
    sleep 0.3;
    # stop it inside the lock (the writer word names it)
    my $until = time + 5;
    while (time < $until) {
        kill 'STOP', $holder;
        open my $fh, '<:raw', $path or die;
        sysread $fh, my $b, 260;
        last if unpack('V', substr($b, 256, 4)) & 0x80000000;
        kill 'CONT', $holder;
        sleep 0.001;
    }
    my ($u0, $s0) = (times)[ 0, 1 ];
    my $t0 = time;
    my $waiter = fork // die;
    if (!$waiter) { $m->put('x', 'y'); POSIX::_exit(0) }
    sleep 2;
    # CPU time in ns (first field of schedstat), since the waiter was forked
    my ($ns) = do { open my $f, '<', "/proc/$waiter/schedstat" or die; split ' ', <$f> };
    my @st = do { open my $f, '<', "/proc/$waiter/status" or die; grep { /ctxt_switches/ } <$f> };
    chomp @st;
    printf "a waiter blocked 2 s by a stopped holder used %.3f ms of CPU (%s)\n", $ns / 1e6, join ', ', map { s/\s+/ /gr } @st;
    kill 'CONT', $holder;
    kill 'KILL', $holder;
    waitpid $holder, 0;
    waitpid $waiter, 0;
    unlink $path;
    exit 0;
}

my ($best, $cs) = (0, []);
for (1 .. $REPS) {
    my ($r, $c) = run_once();
    ($best, $cs) = ($r, $c) if $r > $best;
}
printf "%d processes, %s s: %.2fM puts/s (best of %d); context switches voluntary/involuntary per process: %s%s\n",
    $P, $T, $best / 1e6, $REPS, join(', ', @$cs), defined $ENV{HMS_SPIN_US} ? " (HMS_SPIN_US=$ENV{HMS_SPIN_US})" : '';
