use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Variants;
use Torture ();
use POSIX ();
use Time::HiRes qw(sleep);
use Mono qw(time);
use Data::HashMap::Shared::SS;

# Writers SIGKILLed in the middle of evicting for string space (every put into this
# small LRU map evicts, often several entries): the next writer repairs the map, which
# verifies clean, holds only whole values of their own keys, stays within its string
# space and keeps accepting writes; every death inside the write lock is counted.

my $ROUNDS = $ENV{HMS_TORTURE_ROUNDS} || 30;
my $W      = 3;
my $path   = tmppath('evict-crash');
my $m      = Data::HashMap::Shared::SS->new($path, { max_entries => 4000, lru => 1, string_space => '64k' });

sub value_for { my ($k, $n) = @_; "$k:" . ('.' x $n) }

sub worker {
    my ($w) = @_;
    srand($$ ^ (time * 1000));
    my $c = Data::HashMap::Shared::SS->new($path, 1);
    while (1) {
        my $k = "w$w/" . int rand 2000;
        # 100 bytes to 6 kB: block sizes from 128 to 8192, so that a put often has to
        # evict several entries, or finds its own key to overwrite.
        my $v = value_for($k, 100 + int rand 6000);
        if (rand() < 0.8) { $c->put($k, $v) } else { $c->get($k) }
    }
}

my %pid_of;
my $spawn = sub {
    my ($w) = @_;
    my $pid = fork // die "fork: $!";
    if (!$pid) { worker($w); POSIX::_exit(0) }
    $pid_of{$w} = $pid;
};
$spawn->($_) for 1 .. $W;

my ($kills, $in_lock) = (0, 0);
for my $round (1 .. $ROUNDS) {
    sleep(0.005 + rand 0.02);
    my $w = 1 + int rand $W;
    if ($round % 2) {    # aim at a moment when the victim holds the write lock
        my $until = time + 0.2;
        1 until Torture::holds_lock($path, $pid_of{$w}) || time > $until;
    }
    kill 'KILL', $pid_of{$w};
    waitpid $pid_of{$w}, 0;
    $kills++;
    if (Torture::holds_lock($path, $pid_of{$w})) {
        $in_lock++;
        # Take over and repair now, from a process that is never killed: otherwise the
        # next kill may hit the worker that is repairing this death, and one recovery
        # (counted when a repair completes) would stand for two deaths.
        $m->put('probe', 'after the kills');
    }
    $spawn->($w);
}
kill 'KILL', values %pid_of;
waitpid $_, 0 for values %pid_of;

ok($m->put('probe', 'after the kills'), 'a put after the kills succeeds (and repairs, if needed)');
is_deeply([ $m->verify ], [], "verify is clean after $kills kills ($in_lock inside the write lock)");
my @bad = grep { my $v = $m->get($_); defined $v && $_ ne 'probe' && $v !~ /\A\Q$_\E:\.+\z/ } $m->keys;
is_deeply(\@bad, [], 'every value is a whole value of its own key');
cmp_ok($m->arena_used, '<=', $m->arena_cap, 'within the string space');
cmp_ok($m->stat_evictions, '>', $kills, 'the workers were evicting: ' . $m->stat_evictions);
cmp_ok($m->stat_recoveries, '>=', $in_lock, 'every death inside the write lock was recovered and counted');
diag "$in_lock of $kills kills hit a write-lock holder; recoveries: " . $m->stat_recoveries;
my $failed = grep { !$m->put("after $_", value_for("after $_", 1000)) } 1 .. 200;
is($failed, 0, 'and it keeps caching');
is_deeply([ $m->verify ], [], 'verify is clean at the end');
done_testing;
