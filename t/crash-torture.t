use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use FindBin;
use lib "$FindBin::Bin/lib";
use Torture;

# Workers SIGKILLed at random moments in the middle of puts, removes, increments,
# resizes and arena allocations: every acknowledged write survives, the structure
# verifies clean, and the takeovers are counted. xt/crash-torture.t runs 300 rounds.
# As root (CI), worker 0 runs in a PID namespace of its own, which each kill ends.
my $rounds = $ENV{HMS_TORTURE_ROUNDS} || 25;
my $ns = Torture::can_unshare() ? 1 : 0;
diag 'not root or no unshare(1): no worker runs in a PID namespace' unless $ns;
my $r = Torture::run(dir => tempdir(CLEANUP => 1), workers => 3, rounds => $rounds, keys => 12000, ns => $ns);
is_deeply $r->{bad}, [], "$r->{kills} kills, $r->{acks} acknowledged writes over $r->{keys} keys: all present, map verifies clean"
    or diag explain [ @{ $r->{bad} }[ 0 .. ($#{ $r->{bad} } < 20 ? $#{ $r->{bad} } : 20) ] ];
cmp_ok $r->{acks}, '>', $rounds * 10, 'the workers got work done between kills';
diag "$r->{in_lock} of $r->{kills} kills hit a write-lock holder ($r->{ns_kills} kills ended a PID namespace); recoveries counted: $r->{recoveries}";
cmp_ok $r->{recoveries}, '>=', $r->{in_lock}, 'every death inside the write lock was recovered and counted';
done_testing;
