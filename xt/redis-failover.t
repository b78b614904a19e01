use strict;
use warnings;
use Test::More;
use FindBin;

# Failover of a Redis Cluster master under load (3 masters + 3 replicas the test
# starts): kill -9 and SIGSTOP of the master serving a counter while a client
# increments it. Runs the engine's ignored Rust tests, which print the figures
# (errors, seconds until calls resumed, acknowledged increments lost):
#
#   prove -bv xt/redis-failover.t

system('redis-server --version >/dev/null 2>&1') == 0
    or plan skip_all => 'redis-server not installed';
my $dir = "$FindBin::Bin/../rust-core";
my @cmd = ('cargo', 'test', '--release', '--locked', '--features', 'redis', '--test', 'remote_failover',
    '--', '--ignored', '--nocapture', '--test-threads', '1');
my $out = `cd '$dir' && @cmd 2>&1`;
is($?, 0, 'failover tests pass') or diag($out);
note($_) for grep { /^failover / } split /\n/, $out;
like($out, qr/failover kill: .*calls resumed/, 'kill -9 figures');
like($out, qr/failover stop: .*calls resumed/, 'SIGSTOP figures');
done_testing;
