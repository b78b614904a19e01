package RedisServer;

# A private redis-server for a test file: started on a unix socket in a temp dir,
# stopped by pid when the file ends. When redis-server is missing, `start` returns
# undef (the caller skips with the reason in $RedisServer::WHY), unless
# HMS_REQUIRE_REDIS=1 (CI), which makes that a failure.

use strict;
use warnings;
use File::Temp ();
use POSIX ();
use Time::HiRes ();

our $WHY;
my @servers;

sub start {
    my ($class, @extra) = @_;
    my $have = system('redis-server --version >/dev/null 2>&1') == 0;
    unless ($have) {
        $WHY = 'redis-server not installed (apt-get install redis-server)';
        die "HMS_REQUIRE_REDIS=1 but $WHY\n" if $ENV{HMS_REQUIRE_REDIS};
        return undef;
    }
    my $dir  = File::Temp::tempdir('hms-redis-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $sock = "$dir/redis.sock";
    my $pid  = fork // die "fork: $!";
    if (!$pid) {
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', '/dev/null';
        { exec 'redis-server', '--port', '0', '--unixsocket', $sock, '--save', '', '--appendonly', 'no',
            '--dir', $dir, '--enable-debug-command', 'yes', @extra; }
        POSIX::_exit(127);
    }
    my $self = bless { pid => $pid, dir => $dir, sock => $sock, n => 0, owner => $$ }, $class;
    push @servers, $self;
    for (1 .. 500) {
        return $self if -S $sock && $self->cli('PING') =~ /PONG/;
        Time::HiRes::sleep(0.01);
    }
    die "redis-server did not start\n";
}

# What a behaviour test that runs on both backends needs: the private server (undef
# when there is none, with the reason shown) and the backends ('file': anonymous
# maps; 'redis': maps in that server).
sub backends {
    my ($class) = @_;
    my $srv = $class->start;
    Test::More::diag("maps in Redis not tested: $WHY") unless $srv;
    return ($srv, 'file', $srv ? 'redis' : ());
}

# A new map of $class on backend $b: anonymous, or a fresh map in the server $srv.
sub new_map {
    my ($srv, $b, $class, @args) = @_;
    return $b eq 'redis' ? $class->new($srv->url, @args) : $class->new(undef, @args);
}

# A URL for a fresh map name on this server (options appended).
sub url {
    my ($self, $name, $opts) = @_;
    $name //= 'm' . ++$self->{n};
    return "redis+unix://$self->{sock}?name=$name" . ($opts ? "&$opts" : '');
}

sub cli {
    my ($self, @args) = @_;
    my $q = join ' ', map { my $a = $_; $a =~ s/'/'\\''/g; "'$a'" } @args;
    return scalar `redis-cli -s '$self->{sock}' $q 2>/dev/null`;
}

sub stop {
    my ($self) = @_;
    return unless $self->{pid};
    local $?;    # waitpid would set the exit status of the test file (from END)
    kill 'KILL', $self->{pid};
    waitpid $self->{pid}, 0;
    $self->{pid} = 0;
}

END {
    # Only the process that started them (a forked child must not stop its parent's).
    for my $s (@servers) { $s->stop if $s->{pid} && $s->{owner} == $$ }
}

1;
