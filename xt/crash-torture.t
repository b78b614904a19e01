use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use Torture;

# The long kill torture (issue 5): HMS_TORTURE_ROUNDS rounds (default 300) of
# t/crash-torture.t's workload, 4 workers.
#
#   prove -b xt/crash-torture.t
my $rounds = $ENV{HMS_TORTURE_ROUNDS} || 300;
# As root, workers 0 and 1 run in PID namespaces of their own (each kill ends one).
my $ns = Torture::can_unshare() ? 2 : 0;
my $r = Torture::run(dir => tempdir(CLEANUP => 1), workers => 4, rounds => $rounds, keys => 20000, ns => $ns);
is_deeply $r->{bad}, [], "$r->{kills} kills, $r->{acks} acknowledged writes over $r->{keys} keys: all present, map verifies clean"
    or diag explain [ @{ $r->{bad} }[ 0 .. ($#{ $r->{bad} } < 20 ? $#{ $r->{bad} } : 20) ] ];
diag "$r->{in_lock} of $r->{kills} kills hit a write-lock holder ($r->{ns_kills} kills ended a PID namespace); recoveries counted: $r->{recoveries}";
cmp_ok $r->{recoveries}, '>=', $r->{in_lock}, 'every death inside the write lock was recovered and counted';
cmp_ok $r->{in_lock}, '>', 0, 'some kills landed inside the write lock';
done_testing;
