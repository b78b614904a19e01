use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Variants;
use POSIX ();
use Fcntl qw(O_RDONLY O_RDWR O_NONBLOCK);
use IO::Socket::UNIX ();
use Socket qw(AF_UNIX SOCK_STREAM PF_UNSPEC);
use Data::HashMap::Shared;

# Paths that are no map file (issue 14, items 5 and 7).
#
# A FIFO, a socket, a directory or a device at a map path: every constructor that
# opens a path (new, new_sharded, new_readonly, upgrade_file) and new_from_fd with a
# descriptor of such a file must croak at once naming the path and what it is, never
# wait (opening a FIFO for reading waits for a writer) and never touch the file. Each
# case runs in a forked child with an alarm, so a hang shows as SIGALRM and a crash
# as its signal.
#
# A NUL byte in a path or memfd name: the engine takes C strings, which end at the
# NUL, so "x\0evil" would be "x". Every entry point that takes a path croaks instead
# (as Perl's own open refuses such paths), and creates or removes nothing.

local $ENV{HMS_CHILD_TIMEOUT} = 10;    # a blocked open is killed by SIGALRM and reported

my $II  = 'Data::HashMap::Shared::II';
my $dir = tmpdir();

# the special files, made for real
my %special;
{
    my $fifo = "$dir/a-fifo";
    POSIX::mkfifo($fifo, 0600) or die "mkfifo: $!";
    $special{FIFO} = [ $fifo, 'a FIFO' ];

    my $sock = "$dir/a-socket";
    my $listener = IO::Socket::UNIX->new(Local => $sock, Listen => 1) or die "socket: $!";
    $special{socket} = [ $sock, 'a socket', $listener ];

    mkdir "$dir/a-directory" or die "mkdir: $!";
    $special{directory} = [ "$dir/a-directory", 'a directory' ];

    $special{'character device'} = [ '/dev/null', 'a character device' ] if -c '/dev/null';
}

# $code in a child: the croak it raised (without " at FILE line N."), or "lived"
sub staged {
    my ($code) = @_;
    my $pid = in_child(sub {
        my $ok = eval { $code->(); 1 };
        return 'lived' if $ok;
        (my $e = $@) =~ s/ at \S+ line \d+\.\n\z//;
        return $e;
    });
    return child_result($pid);
}

sub file_type { my $p = shift; -p $p ? 'p' : -S $p ? 'S' : -d $p ? 'd' : -c $p ? 'c' : -f $p ? 'f' : -e $p ? '?' : '-' }

for my $kind (sort keys %special) {
    my ($path, $what) = @{ $special{$kind} };
    my $type = file_type($path);
    my %ctor = (
        new           => [ sub { $II->new($path, 100) },  "$II: $path: not a regular file ($what)" ],
        new_readonly  => [ sub { $II->new_readonly($path) }, "$II: $path: not a regular file ($what)" ],
        upgrade_file  => [ sub { Data::HashMap::Shared->upgrade_file($path) },
                           "Data::HashMap::Shared->upgrade_file: $path: not a regular file ($what)" ],
    );
    for my $name (sort keys %ctor) {
        my ($code, $want) = @{ $ctor{$name} };
        my ($out, $err) = staged($code);
        is($err, undef, "$name on $what: returns (no hang, no crash)");
        is($out, $want, "$name on $what: croaks naming the path and what it is");
        is(file_type($path), $type, "$name on $what: the file is left as it was");
    }
    ok(!-e "$path.upgrade-tmp", "upgrade_file on $what left no temporary file");
}

# new_sharded: the special file is one of the shard files
for my $kind (sort keys %special) {
    my ($path, $what) = @{ $special{$kind} };
    next unless $kind eq 'FIFO' || $kind eq 'directory';    # a FIFO or a directory can be named PREFIX.N
    for my $i (0, 1) {
        my $prefix = "$dir/sharded-$kind-$i";
        my $shard = "$prefix.$i";
        $kind eq 'FIFO' ? POSIX::mkfifo($shard, 0600) : mkdir($shard) or die "$shard: $!";
        my ($out, $err) = staged(sub { $II->new_sharded($prefix, 2, 100) });
        is($err, undef, "new_sharded with $what as shard $i: returns");
        is($out, "$II: $shard: not a regular file ($what)", "new_sharded with $what as shard $i: croaks with its path");
        is(file_type($shard), $kind eq 'FIFO' ? 'p' : 'd', "new_sharded with $what as shard $i: left as it was");
    }
}

# new_from_fd with descriptors of special files
{
    my @fd;
    sysopen(my $f, $special{FIFO}[0], O_RDWR | O_NONBLOCK) or die "fifo: $!";
    push @fd, [ 'a named FIFO', fileno($f), 'a FIFO' ];
    pipe(my $r, my $w) or die "pipe: $!";
    push @fd, [ 'a pipe', fileno($r), 'a FIFO' ];
    socketpair(my $s1, my $s2, AF_UNIX, SOCK_STREAM, PF_UNSPEC) or die "socketpair: $!";
    push @fd, [ 'a socket', fileno($s1), 'a socket' ];
    my $d = POSIX::open($special{directory}[0], O_RDONLY) // die "open dir: $!";
    push @fd, [ 'a directory', $d, 'a directory' ];
    if ($special{'character device'}) {
        open(my $n, '+<', '/dev/null') or die "/dev/null: $!";
        push @fd, [ '/dev/null', fileno($n), 'a character device', $n ];
    }
    for my $c (@fd) {
        my ($label, $n, $what) = @$c;
        my ($out, $err) = staged(sub { $II->new_from_fd($n) });
        is($err, undef, "new_from_fd on $label: returns");
        is($out, "$II: fd: not a regular file ($what)", "new_from_fd on $label: croaks saying what it is");
    }
}

# the command-line tool opens map files too
{
    my ($fifo) = @{ $special{FIFO} };
    my ($out, $err) = staged(sub {
        my $pid = open(my $p, '-|') // die "fork: $!";
        if (!$pid) {
            open STDERR, '>&', \*STDOUT or die;
            { exec $^X, '-Mblib', "$FindBin::Bin/../bin/hashmap-shared", 'stat', $fifo }
            POSIX::_exit(127);
        }
        local $/;
        my $o = <$p>;
        close $p;
        die $o;
    });
    is($err, undef, 'hashmap-shared stat FIFO returns');
    like($out, qr/^hashmap-shared: \Q$fifo\E: not a regular file$/m, 'and says it is no regular file');
}

# --- NUL bytes in paths ------------------------------------------------------------

{
    my $x = "$dir/nul";
    my $evil = "$x\0evil";
    (my $shown = $evil) =~ s/\0/\\0/;
    my %entry = (
        new          => [ sub { $II->new($evil, 10) },              "$II->new: path" ],
        new_sharded  => [ sub { $II->new_sharded($evil, 2, 10) },   "$II->new_sharded: path_prefix" ],
        new_readonly => [ sub { $II->new_readonly($evil) },         "$II->new_readonly: path" ],
        new_memfd    => [ sub { $II->new_memfd("name\0evil", 10) }, "$II->new_memfd: name" ],
        upgrade_file => [ sub { Data::HashMap::Shared->upgrade_file($evil) }, 'Data::HashMap::Shared->upgrade_file: path' ],
        unlink       => [ sub { $II->unlink($evil) },               "$II->unlink: path" ],
    );
    for my $name (sort keys %entry) {
        my ($code, $what) = @{ $entry{$name} };
        my $arg = $name eq 'new_memfd' ? '"name\0evil"' : "\"$shown\"";
        my ($out, $err) = staged($code);
        is($err, undef, "$name with a NUL in the path: no crash");
        is($out, "$what contains a NUL byte: $arg", "$name with a NUL in the path croaks");
        ok(!-e $x && !-e "$x.0" && !-e "$x.1", "$name created nothing at the path cut at the NUL");
    }
    # unlink must not remove the file the path would be cut to
    open my $f, '>', $x or die "$x: $!";
    close $f;
    staged(sub { $II->unlink($evil) });
    ok(-e $x, 'unlink with a NUL in the path left the file named by its first part alone');
    # the instance form of unlink takes no path; a NUL-free path still works
    ok($II->unlink($x), 'unlink of a plain path still works');
    # and a map at a plain path (the same bytes before the NUL) is created normally
    my $m = $II->new($x, 10);
    ok($m->put(1, 2), 'a plain path still works');
}

done_testing;
