use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Variants;
use POSIX ();
use Time::HiRes qw(sleep);
use Data::HashMap::Shared;

# What CRASH SAFETY and LIMITS promise about a writer that is stopped (not dead)
# inside the write lock, and about a map file truncated under a running program.
#
# A stopped writer (SIGSTOP here; being swapped out or descheduled is the same) is
# alive, so nobody takes its lock over: writers wait for it, and so do plain `get`
# readers, whose lock-free read sees the write in progress (odd seqlock), retries a
# bounded number of times and then waits for the lock like a read lock does. Once
# the writer continues, everyone proceeds and reads the right value.
#
# Truncating a map file under a running program makes the next access of the cut
# pages raise SIGBUS (what mmap does; no library can catch it for the process), while
# the memfd of a new_memfd map is sealed against shrinking, so nobody can cut it.

my $II = 'Data::HashMap::Shared::II';

subtest 'a writer stopped inside the lock stalls readers and writers until it continues' => guard {
    my $p = tmppath('stopped');
    my $m = $II->new($p, 1000);
    $m->put(1, 100);
    my $h = hold_write_lock(sub { $II->new($p, 1000) }, 1);
    my $holder = $h->{pid};
    kill 'STOP', $holder or die "SIGSTOP: $!";
    release_write_lock($h);    # it would release the lock now, but it is stopped
    my $reader = in_child(sub { $II->new($p, 1000)->get(1) });
    my $writer = in_child(sub { $II->new($p, 1000)->put(2, 200) ? 'put' : 'full' });
    sleep 1.5;
    is(waitpid($reader, POSIX::WNOHANG()), 0, 'a get waits while the writer is stopped inside the lock');
    is(waitpid($writer, POSIX::WNOHANG()), 0, 'so does a put');
    kill 'CONT', $holder or die "SIGCONT: $!";
    my ($out, $err) = child_result($reader);
    is($out, 100, 'once the writer continues, the get returns the value');
    ($out, $err) = child_result($writer);
    is($out, 'put', 'and the put completes');
    waitpid($holder, 0);
    is($m->get(2), 200, 'the put is visible');
    is(scalar $m->verify, 0, 'verify finds nothing wrong');
};

subtest 'truncating a map file under a running program raises SIGBUS; a memfd map cannot be cut' => guard {
    my $p = tmppath('truncated');
    my $pid = in_child(sub {
        my $m = $II->new($p, 100_000);
        $m->put($_, $_) for 1 .. 50_000;
        truncate($p, 4096) or die "truncate: $!";    # as another process could
        my $n = 0;
        $n += $m->get($_) // 0 for 1 .. 50_000;
        return "read $n";
    });
    my ($out, $err) = child_result($pid);
    is($err, 'child killed by signal ' . POSIX::SIGBUS(), 'the program touching the cut pages gets SIGBUS');

    my $m = $II->new_memfd('sealed', 100_000);
    $m->put($_, $_) for 1 .. 1000;
    my $size = (stat "/proc/self/fd/" . $m->memfd)[7];
    open(my $fh, '+<&', $m->memfd) or die "dup: $!";    # a duplicate of the map's descriptor
    ok(!truncate($fh, 4096), 'a new_memfd map cannot be shrunk');
    is($! + 0, POSIX::EPERM(), '... the seal refuses it (EPERM)');
    is((stat "/proc/self/fd/" . $m->memfd)[7], $size, '... and its size is unchanged');
    is($m->get(1000), 1000, '... and it works on');
};

done_testing;
