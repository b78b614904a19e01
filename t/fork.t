# What the POD's FORK AND PREFORKING SERVERS says, checked with real forks: a
# file-backed handle opened before fork works in the child, which takes a reader
# slot of its own; per-handle iteration state is copied, not shared; a child's exit
# (however it exits) leaves the parent's handle and the lock working; a child's
# unlink removes the file for every process.
use strict;
use warnings;
use Test::More;
use File::Temp ();
use JSON::PP ();
use POSIX ();
use Data::HashMap::Shared::SI;
use Data::HashMap::Shared::SS;

my $dir = File::Temp::tempdir(CLEANUP => 1);

# Runs $code in a child; returns its exit status.
sub in_child {
    my ($code) = @_;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        my $ok = eval { $code->(); 1 };
        print STDERR $@ unless $ok;
        POSIX::_exit($ok ? 0 : 1);
    }
    waitpid $pid, 0;
    return $?;
}

# The processes attached to $file, as hashmap-shared stat --json sees them.
sub attached {
    my ($file) = @_;
    my $out = qx{$^X -Mblib bin/hashmap-shared stat --json $file};
    return { map { $_->{pid} => $_ } @{ JSON::PP->new->decode($out)->{processes} } };
}

# a file-backed handle opened before fork
{
    my $f = "$dir/counts.shm";
    my $m = Data::HashMap::Shared::SI->new($f, 1000);
    $m->put('parent', 1);
    my @kids = map {
        my $n = $_;
        my $pid = fork // die;
        if (!$pid) {
            my $ok = $m->get('parent') == 1;               # reads what the parent wrote
            $m->incr('hits') for 1 .. 1000;                # and writes, with counters
            $m->put("child $n", $$);
            POSIX::_exit($ok ? 0 : 1);
        }
        $pid;
    } 1 .. 4;
    waitpid $_, 0 for @kids;
    is $m->get('hits'), 4000, 'four children incremented through the handle they inherited';
    is_deeply [map { $m->get("child $_") } 1 .. 4], \@kids, '... and each one\'s put is seen by the parent';

    # the child maps the same file, and takes a reader slot of its own at its first
    # read under the read lock (a lookup takes no lock)
    pipe my $r, my $w or die;
    pipe my $r2, my $w2 or die;
    my $kid = fork // die;
    if (!$kid) {
        close $r; close $w2;
        $m->get('parent');
        syswrite $w, "got\n";
        sysread $r2, my $buf, 1;    # until the parent has looked
        my @k = $m->keys;
        syswrite $w, "keys\n";
        sysread $r2, $buf, 1;
        POSIX::_exit(0);
    }
    close $w;
    sysread $r, my $buf, 4;
    my $who = attached($f);
    ok $who->{$kid} && $who->{$kid}{mapped}, 'a child with the inherited handle is listed as mapping the map';
    is $who->{$kid}{handles}, 0, '... without a reader slot before it takes the read lock';
    ok $who->{$$}{mapped} && $who->{$$}{handles} == 1, '... next to the parent, with its slot';
    syswrite $w2, 'x';
    sysread $r, $buf, 5;
    $who = attached($f);
    is $who->{$kid}{handles}, 1, 'after a read under the read lock (keys) the child has a slot of its own';
    is $who->{$$}{handles}, 1, '... and the parent still its own';
    close $w2;
    waitpid $kid, 0;
    $who = attached($f);
    ok $who->{$kid} && !$who->{$kid}{running} && !$who->{$kid}{mapped},
        'a child gone with _exit (its handle never closed) is listed as not running, its slot left to reclaim';
    ok $who->{$$}, '... and the parent is listed';

    my $closing = fork // die;
    if (!$closing) { my @k = $m->keys; exit 0 }    # exit destroys the handle: it closes
    waitpid $closing, 0;
    ok !attached($f)->{$closing}, 'a child that exits normally gives its slot back: not listed';
}

# the position of each is per process: copied at the fork, then independent
{
    my $m = Data::HashMap::Shared::SI->new("$dir/each.shm", 100);
    $m->put("k$_", $_) for 1 .. 10;
    my @order = map { ($m->each)[0] } 1 .. 10;
    $m->iter_reset;
    my @first = map { ($m->each)[0] } 1 .. 3;
    pipe my $r, my $w or die;
    my $rc = in_child(sub {
        close $r;
        my @rest;
        while (my ($k) = $m->each) { push @rest, $k }
        print $w join(',', @rest), "\n";
        close $w;    # before _exit, which flushes nothing
    });
    close $w;
    chomp(my $child_rest = <$r>);
    is $rc, 0, 'the child iterated';
    is $child_rest, join(',', @order[3 .. 9]), 'the child continues from where the parent was';
    my @rest;
    while (my ($k) = $m->each) { push @rest, $k }
    is_deeply \@rest, [@order[3 .. 9]], '... and so does the parent: the child did not move its position';
}

# a child's exit, however it exits, leaves the parent's handle and lock working
{
    my $f = "$dir/exits.shm";
    my $m = Data::HashMap::Shared::SS->new($f, 1000);
    $m->put('k', 'v');
    for my $how (qw(exit _exit SIGKILL)) {
        my $pid = fork // die;
        if (!$pid) {
            $m->get('k');
            $m->put("by $how", 1);
            if ($how eq 'exit') { exit 0 }
            if ($how eq '_exit') { POSIX::_exit(0) }
            kill 'KILL', $$;
        }
        waitpid $pid, 0;
        ok $m->put("after $how", 'x'), "after a child's $how the parent writes";
        is $m->get("by $how"), 1, '... and reads what the child wrote';
    }
    my $other = Data::HashMap::Shared::SS->new($f, 1);
    ok $other->put('another handle', 1), '... and a new handle writes too';
    is_deeply [$m->verify], [], 'the map is sound';
}

# unlink in a child removes the file for every process
{
    my $f = "$dir/gone.shm";
    my $m = Data::HashMap::Shared::SS->new($f, 100);
    $m->put('k', 'v');
    is in_child(sub { $m->unlink or die "unlink failed\n" }), 0, 'a child unlinks the map';
    ok !-e $f, '... the file is gone for the parent too';
    is $m->get('k'), 'v', '... whose handle keeps working';
    my $new = Data::HashMap::Shared::SS->new($f, 100);
    is $new->size, 0, '... and the next new() creates an empty map';
}

done_testing;
