package BenchRedis;
# A redis-server of a benchmark's own (bench/vs.pl's redis sections,
# bench/redis-rounds.pl): unix socket in DIR, no persistence, pinned to CPU 0 together
# with the calling process (a wake-up across this VM's CPUs costs ~80-100 us and would
# drown what is measured). start(DIR) returns (pid, socket path) once it listens;
# stop(PID) ends it.
use strict;
use warnings;
use POSIX ();
use Time::HiRes ();

sub start {
    my ($dir) = @_;
    system("taskset -p -c 0 $$ >/dev/null 2>&1") == 0 or print "(taskset failed: client not pinned)\n";
    my $sock = "$dir/redis.sock";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDOUT, '>', '/dev/null';
        { no warnings 'exec'; exec 'taskset', '-c', '0', 'redis-server', '--port', '0', '--unixsocket', $sock, '--save', '', '--appendonly', 'no', '--dir', $dir; }
        POSIX::_exit(127);
    }
    my $t0 = Time::HiRes::time();
    until (-S $sock) {
        die "redis-server did not start\n" if Time::HiRes::time() - $t0 > 10 || waitpid($pid, POSIX::WNOHANG()) == $pid;
        Time::HiRes::sleep(0.01);
    }
    return ($pid, $sock);
}

sub stop {
    my ($pid) = @_;
    kill 'TERM', $pid;
    waitpid $pid, 0;
}

1;
