use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Variants;
use POSIX ();
use Data::HashMap::Shared;

# Anonymous maps shared with forked children (api.md 3.6), memfd maps and
# descriptor passing (api.md 3.3, 3.4, 7.8).

my $II = 'Data::HashMap::Shared::II';
my $SS = 'Data::HashMap::Shared::SS';
use constant { F_GET_SEALS => 1034, F_SEAL_SHRINK => 2, F_SEAL_GROW => 4 };

# Inspect descriptors without wrapping them in Perl handles (closing such a handle
# would close the map's descriptor).
sub fd_open { my $fd = shift; -e "/proc/self/fd/$fd" }
sub cloexec {
    my $fd = shift;
    open my $fi, '<', "/proc/self/fdinfo/$fd" or return undef;
    while (<$fi>) { return((oct($1) & 02000000) ? 1 : 0) if /^flags:\s+([0-7]+)/ }
    return undef;
}
sub seals {
    my $fd = shift;
    open(my $dup, '<&', $fd) or return undef;    # a duplicate: seals belong to the file
    my $s = fcntl($dup, F_GET_SEALS, 0);
    close $dup;
    return $s;
}

subtest 'anonymous map shared with forked children' => guard {
    my $m = $SS->new(undef, 1000);
    is($m->path, undef, 'path undef');
    is($m->memfd, -1, 'memfd -1');
    $m->put('parent', 'hello');
    my @pids = map {
        my $n = $_;
        in_child(sub {
            my $seen = $m->get('parent') // 'undef';
            $m->put("child $n", "from $$") or die "put failed\n";
            $m->put("long child $n", 'x' x (100 + $n)) or die "long put failed\n";
            return $seen;
        });
    } 1 .. 3;
    for my $r (wait_all(@pids)) {
        my ($out, $err) = @$r;
        is($err, undef, 'child ran');
        is($out, 'hello', 'child saw the parent\'s entry');
    }
    is($m->size, 7, 'parent sees the children\'s entries');
    ok(defined $m->get("child $_") && $m->get("child $_") =~ /^from \d+$/, "entry of child $_") for 1 .. 3;
    is(length($m->get("long child $_") // ''), 100 + $_, "arena entry of child $_") for 1 .. 3;

    my $ii = $II->new(undef, 100);
    my @c = map { in_child(sub { $ii->incr(7) for 1 .. 1000; 1 }) } 1 .. 2;
    is($_->[1], undef, 'counter child ran') for wait_all(@c);
    is($ii->get(7), 2000, 'counters from two children add up');
};

subtest 'new_memfd' => guard {
    my $m = $II->new_memfd('hms-test', 100);
    isa_ok($m, $II);
    my $fd = $m->memfd;
    ok(defined $fd && $fd >= 0, "memfd returns a descriptor ($fd)");
    is($m->path, undef, 'path undef');
    is_false($m->unlink, 'unlink -> false');
    like(readlink("/proc/self/fd/$fd") // '', qr/memfd:hms-test/, 'it is a memfd with the given name');
    is(cloexec($fd), 1, 'close-on-exec is set');
    my $seals = seals($fd);
    ok(defined $seals && ($seals & F_SEAL_SHRINK) && ($seals & F_SEAL_GROW), 'sealed against shrink and grow');
    is($m->mmap_size, -s "/proc/self/fd/$fd", 'mmap_size is the memfd size');
    is($m->max_entries, 112, 'sized like new');
    $m->put(1, 10);
    is($m->get(1), 10, 'usable');
    my $anon = $SS->new_memfd(undef, 10);
    like(readlink('/proc/self/fd/' . $anon->memfd) // '', qr/memfd:hashmap/, 'undef name -> "hashmap"');
    dies_like(sub { $II->new_memfd('x', 10, 0, 0, 0, 0, 0600) }, qr/Usage: \Q$II\E::new_memfd\(/,
        'new_memfd takes no file_mode (7 args -> usage error)');
    my $ssm = $SS->new_memfd('s', 100, 0, 0, 0, 65536);
    is($ssm->arena_cap, 65536, 'new_memfd honours arena_cap');
};

subtest 'new_from_fd in the same process' => guard {
    my $m = $SS->new_memfd('share', 100);
    $m->put('a', 'A' x 20);
    my $fd = $m->memfd;
    my $n = $SS->new_from_fd($fd);
    isa_ok($n, $SS);
    ok($n->memfd >= 0 && $n->memfd != $fd, 'the new handle owns a duplicate descriptor');
    is(cloexec($n->memfd), 1, 'the duplicate is close-on-exec');
    is($n->path, undef, 'path undef');
    is($n->get('a'), 'A' x 20, 'sees the data');
    $n->put('b', 'B');
    is($m->get('b'), 'B', 'writes are shared');
    undef $m;
    ok(!fd_open($fd), 'DESTROY of the memfd map closes its descriptor');
    is($n->get('b'), 'B', 'the second handle works after the first is gone');

    # the caller keeps ownership of the fd it passes
    my $p = tmppath('fromfd');
    { $SS->new($p, 10)->put('f', 'file') }
    open my $fh, '+<', $p or die $!;
    my $ff = $SS->new_from_fd(fileno $fh);
    ok(fd_open(fileno $fh), 'the caller\'s fd stays open');
    close $fh;
    is($ff->get('f'), 'file', 'regular file opened through a fd; works after the caller closed it');
    ok($ff->memfd >= 0, 'memfd returns the duplicate for a new_from_fd handle');

    open my $ro, '<', $p or die $!;
    dies_like(sub { $SS->new_from_fd(fileno $ro) }, qr/^\Q$SS\E: mmap: Permission denied/, 'a read-only fd cannot be mapped');
    dies_like(sub { $SS->new_from_fd(987) }, qr/^\Q$SS\E: (?:fstat|fcntl): Bad file descriptor/, 'a closed fd');
    dies_like(sub { $II->new_from_fd($n->memfd) }, qr/^\Q$II\E: fd: variant mismatch \(file=10, expected=3\)/,
        'a memfd of another variant');
};

subtest 'memfd handed to a forked child' => guard {
    my $m = $II->new_memfd('fork', 1000);
    my $fd = $m->memfd;
    my $pid = in_child(sub {
        my $c = $II->new_from_fd($fd);
        $c->put($_, $_ * 2) for 1 .. 100;
        my $n = $c->size;
        $m->incr(1000);        # the inherited handle works as well
        return $n;
    });
    my ($out, $err) = child_result($pid);
    is($err, undef, 'child ran');
    is($out, 100, 'child saw its own writes');
    is($m->size, 101, 'parent sees the child\'s writes');
    is($m->get(50), 100, 'values');
    is($m->get(1000), 1, 'counter');
};

subtest 'memfd handed to an exec\'d program' => guard {
    my $m = $SS->new_memfd('exec', 100);
    $m->put('from parent', 'p');
    my $dup = POSIX::dup($m->memfd);
    ok(defined $dup, 'dup without close-on-exec');
    my $code = q{
        use Data::HashMap::Shared;
        my $c = Data::HashMap::Shared::SS->new_from_fd($ARGV[0]);
        $c->put('from child', 'c:' . ($c->get('from parent') // 'undef'));
        exit 0;
    };
    my $rc = system($^X, (map { "-I$_" } grep { !ref } @INC), '-e', $code, $dup);
    POSIX::close($dup);
    is($rc, 0, 'child program ran');
    is($m->get('from child'), 'c:p', 'the exec\'d program read and wrote the map');
};

done_testing;
