use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Variants;
use Fcntl qw(:flock :mode);
use POSIX ();
use Data::HashMap::Shared;

# File-backed maps: create-or-attach security (api.md 3.1), file_mode, attach
# ignoring sizing arguments, path / unlink / sync / mmap_size (api.md 6.8, 6.9).

my $II = 'Data::HashMap::Shared::II';
my $SS = 'Data::HashMap::Shared::SS';
my $dir = tmpdir();
chmod 0755, $dir;    # so that a child running as nobody can reach files in it

sub mode_of { (stat $_[0])[2] & 07777 }
sub open_fds { opendir my $d, '/proc/self/fd' or return -1; my @f = grep { /^\d+$/ } readdir $d; scalar @f }

subtest 'file_mode is applied exactly, whatever the umask' => guard {
    my $old = umask;
    for my $case ([undef, 0, 0600], [undef, 077, 0600], [0644, 077, 0644], [0666, 022, 0666],
                  [0640, 0, 0640], [0600, 0777, 0600], [0660, 027, 0660]) {
        my ($mode, $mask, $want) = @$case;
        umask $mask;
        my $p = tmppath('mode');
        my @args = defined $mode ? ($p, 10, 0, 0, 0, 0, $mode) : ($p, 10);
        my $m = $II->new(@args);
        umask $old;
        is(sprintf('%04o', mode_of($p)), sprintf('%04o', $want),
            sprintf('file_mode %s with umask %04o -> %04o', defined $mode ? sprintf('%04o', $mode) : 'default', $mask, $want));
        # attaching never changes the permissions
        my $again = $II->new($p, 10, 0, 0, 0, 0, 0666);
        is(sprintf('%04o', mode_of($p)), sprintf('%04o', $want), '... attach with another file_mode leaves it');
    }
    umask $old;
    my $p = tmppath('mode');
    my $m = $SS->new($p, 10, 0, 0, 0, 0, 0604);
    is(sprintf('%04o', mode_of($p)), '0604', 'file_mode works for a string variant too');
};

subtest 'symlinks are refused' => guard {
    my $target = tmppath('target');
    my $m = $II->new($target, 10);
    $m->put(1, 1);
    my $link = "$dir/link-to-map-$$";
    symlink($target, $link) or die "symlink: $!";
    dies_like(sub { $II->new($link, 10) }, qr/^\Q$II\E: .*\Q$link\E.*(?:Too many levels of symbolic links|ELOOP)/,
        'a symlink to a valid map is refused (ELOOP)');
    my $dangling = "$dir/dangling-$$";
    my $nowhere = "$dir/nowhere-$$.shm";
    symlink($nowhere, $dangling) or die "symlink: $!";
    dies_like(sub { $II->new($dangling, 10) }, qr/^\Q$II\E: /, 'a dangling symlink is refused');
    ok(!-e $nowhere, '... and its target is not created');
};

subtest 'bad paths' => guard {
    dies_like(sub { $II->new('', 10) }, qr/^\Q$II\E: .*No such file or directory/, 'empty path -> ENOENT');
    dies_like(sub { $II->new("$dir/no/such/dir/x.shm", 10) }, qr/No such file or directory/, 'missing directory -> ENOENT');
    dies_like(sub { $II->new($dir, 10) }, qr/^\Q$II\E: \Q$dir\E: not a regular file \(a directory\)/,
        'a directory is refused as such (t/special-paths.t has FIFOs, sockets, devices)');
};

subtest 'an empty file of ours is initialised' => guard {
    my $p = tmppath('empty');
    open my $fh, '>', $p or die; close $fh;
    chmod 0640, $p;
    my $m = $II->new($p, 100);
    ok($m->put(1, 2), 'usable');
    ok(-s $p > 4096, 'file sized');
    is($m->max_entries, 112, 'sized from the arguments');
};

subtest 'read-only file -> EACCES' => guard {
    my $p = tmppath('ro');
    { my $m = $II->new($p, 10); $m->put(1, 1) }
    chmod 0444, $p;
    if ($> == 0) {
        # root ignores permission bits: try as nobody in a child
        my $nobody = getpwnam('nobody');
        plan skip_all => 'no user nobody' unless defined $nobody;
        my $pid = in_child(sub {
            POSIX::setgid(65534); POSIX::setuid($nobody);
            die "still root\n" if $> == 0;
            my $ok = eval { $II->new($p, 10); 1 };
            return $ok ? 'opened' : $@;
        });
        my ($out, $err) = child_result($pid);
        is($err, undef, 'child ran');
        like($out // '', qr/^\Q$II\E: .*Permission denied/, 'a read-only file is refused with EACCES (as nobody)');
    }
    else {
        dies_like(sub { $II->new($p, 10) }, qr/Permission denied/, 'a read-only file is refused with EACCES');
    }
};

subtest 'foreign-owned empty file' => guard {
    plan skip_all => 'needs root to chown a file to another user' unless $> == 0;
    my $nobody = getpwnam('nobody');
    plan skip_all => 'no user nobody' unless defined $nobody;
    my $p = tmppath('foreign');
    open my $fh, '>', $p or die; close $fh;
    chown $nobody, 65534, $p or die "chown: $!";
    dies_like(sub { $II->new($p, 10) }, qr/^\Q$II\E: \Q$p\E: refusing to initialize file not owned by us/,
        'an empty file owned by someone else is not initialised');
    is(-s $p, 0, '... and stays empty');
    # a valid map owned by someone else is attached normally
    my $q = tmppath('foreign-valid');
    { my $m = $II->new($q, 10); $m->put(5, 6) }
    chown $nobody, 65534, $q or die;
    my $m = $II->new($q, 10);
    is($m->get(5), 6, 'a valid map owned by another user attaches');
};

subtest 'attach ignores sizing arguments' => guard {
    my $p = tmppath('attach');
    my $h1 = $SS->new($p, 100, 0, 0, 0, 8192);
    $h1->put('k', 'v');
    my $size = -s $p;
    my $h2 = $SS->new($p, 5000, 0, 0, 0, 1 << 20);
    is($h2->max_entries, 112, 'max_entries from the header');
    is($h2->arena_cap, 8192, 'arena_cap from the header');
    is($h2->mmap_size, $h1->mmap_size, 'same mmap_size');
    is(-s $p, $size, 'file size unchanged');
    is($h2->get('k'), 'v', 'sees the data');
    $h2->put('k2', 'v2');
    is($h1->get('k2'), 'v2', 'two handles in one process share the map');
    my $i = $II->new(tmppath('attach'), 0);
    my $j = $II->new($i->path, 100000);
    is($j->max_entries, 14, 'II attach: max_entries from the header (0 requested at creation -> 14)');
};

subtest 'path, mmap_size, sync, persistence' => guard {
    my $p = tmppath('persist');
    my $m = $SS->new($p, 1000);
    is($m->path, $p, 'path returns the path');
    is($m->memfd, -1, 'memfd -1 for a file-backed map');
    is($m->mmap_size, -s $p, 'mmap_size is the file size');
    $m->put("key $_", "value $_ " . ('x' x $_)) for 1 .. 200;
    lives(sub { $m->sync }, 'sync on a file-backed map');
    is($m->mmap_size, -s $p, 'mmap_size does not change');
    undef $m;
    my $again = $SS->new($p, 10);
    is($again->size, 200, 'entries persist after every handle is gone');
    is($again->get("key 77"), "value 77 " . ('x' x 77), 'values persist');
};

# Each read-write handle keeps its own open file description of the map, which holds
# the lock that proves it alive (rust-core/src/liveness.rs); a memfd map also keeps the
# public memfd it returns.
subtest 'descriptors: one per read-write handle, two for memfd maps' => guard {
    my $before = open_fds();
    my @maps = map { $II->new(tmppath('fd'), 10) } 1 .. 5;
    push @maps, map { $SS->new(undef, 10) } 1 .. 3;
    is(open_fds(), $before + 8, 'one descriptor per file-backed or anonymous map');
    is(scalar(grep { $_->memfd != -1 } @maps), 0, 'memfd is -1 for them');
    my $mf = $II->new_memfd('x', 10);
    is(open_fds(), $before + 10, 'a memfd map keeps two (the public one and its own)');
    undef $mf;
    @maps = ();
    is(open_fds(), $before, 'DESTROY closes them');
    $II->new(tmppath('fd'), 10)->put(1, 1) for 1 .. 20;
    is(open_fds(), $before, 'handles opened and dropped leave nothing open');
};

subtest 'unlink' => guard {
    my $p = tmppath('unlink');
    my $m = $II->new($p, 10);
    $m->put(1, 11);
    is_true($m->unlink, 'unlink -> true');
    ok(!-e $p, 'file removed');
    is($m->get(1), 11, 'mapping still valid after unlink');
    ok($m->put(2, 22), 'and writable');
    is_false($m->unlink, 'second unlink -> false (never dies)');
    is($m->path, $p, 'path still reports the path');

    my $q = tmppath('unlink-class');
    { $II->new($q, 10) }
    is_true($II->unlink($q), 'Class->unlink($path) -> true');
    ok(!-e $q, 'file removed');
    is_false($II->unlink($q), 'Class->unlink of a missing file -> false');
    dies_like(sub { $II->unlink }, qr/Usage: \Q$II\E->unlink\(\$path\)/, 'Class->unlink without path croaks');
    my @w = warnings_of(sub { is_false($II->unlink(undef), 'Class->unlink(undef) -> false') });
    ok(scalar(@w), '... with a warning');
    my $r = $SS->new(tmppath('unlink'), 10);
    open my $keep, '>', "$dir/not-a-map-$$" or die; close $keep;
    is_true($SS->unlink("$dir/not-a-map-$$"), 'class form unlinks exactly the path given');
};

subtest 'a flock held by another process makes new wait' => guard {
    my $p = tmppath('flock');
    { $II->new($p, 10) }
    my $released = "$dir/released-$$";
    pipe(my $r, my $w) or die;
    my $pid = fork // die;
    if (!$pid) {
        close $r;
        open my $fh, '<', $p or POSIX::_exit(1);
        flock($fh, LOCK_EX) or POSIX::_exit(1);
        syswrite $w, "L";
        close $w;
        select(undef, undef, undef, 1.0);
        open my $mk, '>', $released; close $mk;
        flock($fh, LOCK_UN);
        POSIX::_exit(0);
    }
    close $w;
    sysread $r, my $buf, 1;
    is($buf, 'L', 'child holds the flock');
    my $m = $II->new($p, 10);
    ok(-e $released, 'new returned only after the other process released its flock');
    waitpid $pid, 0;
};

subtest 'processes racing to create the same file' => guard {
    for my $round (1 .. 5) {
        my $p = tmppath('race');
        pipe(my $r, my $w) or die;
        my @pids = map {
            my $id = $_;
            in_child(sub {
                close $w;
                sysread($r, my $x, 1);       # all start together
                my $m = $II->new($p, 1000);
                $m->put($id, $id) or die "put failed\n";
                return $m->max_entries;
            });
        } 1 .. 6;
        close $w;
        close $r;
        my @res = wait_all(@pids);
        is(scalar(grep { !defined $_->[1] && $_->[0] == 1792 } @res), 6, "round $round: six racing creators all opened the map");
        my $m = $II->new($p, 10);
        is($m->size, 6, "round $round: one map holds every process's entry");
        is(sprintf('%04o', mode_of($p)), '0600', "round $round: created once with the default mode");
    }
};

done_testing;
