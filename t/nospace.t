use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Variants;
use File::Temp ();
use POSIX ();
use Data::HashMap::Shared;

# decisions.md 19 (issue 14 item 1): once `new` has returned, no operation faults for
# lack of space. A map reserves file space before it first touches it (table pages
# before a grow, arena pages as strings need them, released pages before they are
# used again), so when the file system fills up after `new`, a write fails softly
# (put false, a counter's "failed" croak) or croaks naming the file and "No space
# left on device"; it is never killed by SIGBUS, and the map stays sound.
#
# Staged for real: a small file system is mounted (tmpfs; ext4 in a loop-mounted
# image when the tools are there), a map is created on it, then a filler file takes
# every free block, and the map is driven in a child process (so that a SIGBUS would
# show as the child's signal, not kill the test).

plan skip_all => 'mounting a small file system needs root' if $> != 0;

my @mounts;
END { system('umount', '-l', $_) for reverse @mounts }

sub mount_tmpfs {
    my ($size) = @_;
    my $dir = File::Temp::tempdir(CLEANUP => 1);
    system('mount', '-t', 'tmpfs', '-o', "size=$size,mode=0700", 'hms-nospace', $dir) == 0 or return;
    push @mounts, $dir;
    return $dir;
}

sub mount_ext4 {
    my ($mb) = @_;
    for my $tool (qw(mkfs.ext4 losetup)) { return unless grep { -x "$_/$tool" } qw(/sbin /usr/sbin /bin /usr/bin) }
    my $img = File::Temp->new(SUFFIX => '.img');
    truncate $img, $mb << 20 or return;
    system("mkfs.ext4 -q -F -m 0 $img >/dev/null 2>&1") == 0 or return;
    my $dir = File::Temp::tempdir(CLEANUP => 1);
    system("mount -o loop $img $dir >/dev/null 2>&1") == 0 or return;
    push @mounts, $dir;
    return ($dir, $img);
}

# Takes every free block of the file system of $dir; returns the filler's path.
sub fill_fs {
    my ($dir) = @_;
    my $p = "$dir/filler";
    open my $fh, '>>', $p or die "$p: $!";
    my $buf = 'F' x 65536;
    while (1) { my $n = syswrite($fh, $buf); last unless $n }
    my $small = 'F' x 512;
    while (1) { my $n = syswrite($fh, $small); last unless $n }
    close $fh;
    return $p;
}

# What a write does when the file system is full: true, false, or a croak that must
# name the file and ENOSPC.
sub attempt {
    my ($what, $path, $code) = @_;
    my $r = eval { $code->() };
    return $r ? 'stored' : 'false' unless $@;
    (my $e = $@) =~ s/\s+\z//;
    local $@ = $e;
    return "croak naming the file: $@" if $@ =~ /\Q$path\E.*No space left on device/ || $@ =~ /failed/;
    return "unexpected croak: $@";
}

sub scenario {
    my ($fs, $dir, $name, %s) = @_;
    subtest "$fs: $name" => sub {
        my $p = "$dir/$name.shm";
        unlink $p;
        my $m = $s{new}->($p);
        $s{before}->($m) if $s{before};
        my $filler = fill_fs($dir);
        # In a child, so that a SIGBUS would be the child's signal.
        my ($out, $err) = child_result(in_child(sub {
            my $mm = $s{attach} ? $s{attach}->($p) : $m;
            my ($ok, $first_fail) = (0, undef);
            for my $i (1 .. $s{n}) {
                my $r = attempt($name, $p, sub { $s{write}->($mm, $i) });
                if ($r eq 'stored') { $ok++; next }
                $first_fail = "$i: $r";
                last;
            }
            return "$ok\t" . ($first_fail // 'none');
        }));
        is($err, undef, 'no signal (no SIGBUS) in the writer, no error');
        my ($stored, $fail) = split /\t/, $out // '', 2;
        ok(defined $fail && $fail ne 'none', 'the full file system stopped the writes: ' . ($fail // '?'));
        unlike($fail // '', qr/unexpected|died/, 'a soft failure or a croak naming the file and the reason');
        is(scalar($m->verify), 0, 'verify clean') or diag(explain [ $m->verify ]);
        $s{check}->($m, $stored) if $s{check};
        unlink $filler;
        ok($s{write}->($m, $s{n} + 1), 'writes work again once there is room');
        is(scalar($m->verify), 0, 'verify clean afterwards');
        undef $m;
        unlink $p;
    };
}

sub run_all {
    my ($fs, $dir) = @_;
    scenario($fs, $dir, 'ii-grow',
        new   => sub { Data::HashMap::Shared::II->new($_[0], 500_000) },
        write => sub { $_[0]->put($_[1], -$_[1]) },
        n     => 500_000,
        check => sub {
            my ($m, $n) = @_;
            my $bad = grep { ($m->get($_) // 0) != -$_ } 1 .. $n;
            is($bad, 0, "the $n entries stored read back");
        });
    scenario($fs, $dir, 'ss-strings',
        new   => sub { Data::HashMap::Shared::SS->new($_[0], 100_000, 0, 0, 0, 8 << 20) },
        write => sub { $_[0]->put("key $_[1] " . ('k' x 60), "value $_[1] " . ('v' x 200)) },
        n     => 300_000);
    scenario($fs, $dir, 'incr-grow',
        new   => sub { Data::HashMap::Shared::SI->new($_[0], 300_000, 0, 0, 0, 4 << 20) },
        write => sub { $_[0]->incr("counter $_[1]") },
        n     => 2_000_000);
    scenario($fs, $dir, 'after-clear',
        new    => sub { Data::HashMap::Shared::SS->new($_[0], 200_000, 0, 0, 0, 8 << 20) },
        before => sub { my $m = shift; $m->put("k$_", 'x' x 300) for 1 .. 20_000; $m->clear },
        write  => sub { $_[0]->put("k$_[1]", 'y' x 300) },
        n      => 300_000);
    scenario($fs, $dir, 'after-shrink',
        new    => sub { Data::HashMap::Shared::II->new($_[0], 500_000) },
        before => sub { my $m = shift; $m->put($_, $_) for 1 .. 300_000; $m->remove($_) for 1 .. 300_000 },
        write  => sub { $_[0]->put($_[1], $_[1]) },
        n      => 500_000);
    scenario($fs, $dir, 'other-process',
        new    => sub { Data::HashMap::Shared::SS->new($_[0], 100_000, 0, 0, 0, 8 << 20) },
        attach => sub { Data::HashMap::Shared::SS->new($_[0], 100_000) },
        write  => sub { $_[0]->put("key $_[1]", 'w' x 500) },
        n      => 300_000);
}

{
    my $dir = mount_tmpfs('48m');
    if ($dir) { run_all('tmpfs', $dir) }
    else      { diag('cannot mount a tmpfs here: tmpfs cases not run') }
}
SKIP: {
    my ($dir) = mount_ext4(64);
    skip 'no mkfs.ext4/losetup or loop devices: ext4 cases not run', 1 unless $dir;
    run_all('ext4', $dir);
}

subtest 'anonymous maps reserve through their memfd' => sub {
    # No file system to fill here: the point is that the descriptor is kept (not
    # exposed) and the map works as before.
    my $m = Data::HashMap::Shared::SS->new(undef, 10_000);
    is($m->memfd, -1, 'an anonymous map exposes no descriptor');
    $m->put("k$_", 'v' x 100) for 1 .. 5000;
    is($m->size, 5000, 'filled');
    is(scalar($m->verify), 0, 'verify clean');
};

done_testing;
