use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Variants;
use POSIX ();
use Data::HashMap::Shared;

# Resource leaks (issue 5): creating and destroying many handles of every kind --
# file (create and attach), anonymous, memfd, new_from_fd -- and failing
# constructors must leave the process's descriptors, mappings and memory where they
# were. Each scenario runs 1,000 warm-up rounds, measures, runs to 10,000 and
# measures again: descriptors (/proc/self/fd) and mappings (/proc/self/maps lines)
# must not grow at all (a little slack for the allocator's own mappings), anonymous
# memory (RssAnon, /proc/self/status) by less than 1 MiB (a leak of 100 bytes per
# handle would be 900 KB). Plus: memfds are close-on-exec.
#
# HMS_LEAK_ROUNDS (default 10000) changes the number of rounds.

plan skip_all => 'needs /proc' unless -r '/proc/self/status' && -d '/proc/self/fd';

my $ROUNDS = $ENV{HMS_LEAK_ROUNDS} // 10000;
my $WARM   = int($ROUNDS / 10) || 1;

sub fds  { opendir my $d, '/proc/self/fd' or die $!; my @f = grep { /^\d+$/ } readdir $d; closedir $d; scalar @f - 1 }
sub maps { open my $f, '<', '/proc/self/maps' or die $!; my @l = <$f>; scalar @l }
sub status_kb {
    my $k = shift;
    open my $f, '<', '/proc/self/status' or die $!;
    while (<$f>) { return $1 if /^\Q$k\E:\s+(\d+)/ }
    return 0;
}
sub statm_rss { open my $f, '<', '/proc/self/statm' or die $!; my @s = split ' ', <$f>; $s[1] * 4 }
sub measure { { fds => fds(), maps => maps(), anon => status_kb('RssAnon'), rss => statm_rss() } }

# Runs $code $ROUNDS times; compares the counts after the warm-up with the end.
sub flat {
    my ($name, $code) = @_;
    subtest $name => guard {
        local $SIG{__WARN__} = sub { };
        my $t0 = time;
        $code->($_) for 1 .. $WARM;
        my $a = measure();
        $code->($_) for $WARM + 1 .. $ROUNDS;
        my $b = measure();
        is($b->{fds}, $a->{fds}, "open descriptors stay at $a->{fds}");
        cmp_ok($b->{maps} - $a->{maps}, '<=', 2, "mappings: $a->{maps} -> $b->{maps}");
        cmp_ok($b->{anon} - $a->{anon}, '<', 1024, "anonymous memory: $a->{anon} kB -> $b->{anon} kB");
        note("RSS (statm) $a->{rss} kB -> $b->{rss} kB, " . (time - $t0) . ' s');
    };
}

my $dir = tmpdir();

flat('file maps: create, use, destroy, unlink' => sub {
    my $i = shift;
    my $p = "$dir/leak-create.shm";
    my $m = Data::HashMap::Shared::SS->new($p, 10);
    $m->put("k$i", 'a value longer than seven bytes');
    my @k = $m->keys;
    $m->unlink;
});

{
    my $p = "$dir/leak-attach.shm";
    my $keep = Data::HashMap::Shared::SI->new($p, 100);
    $keep->put('x', 1);
    flat('file maps: attach, read lock, write, destroy' => sub {
        my $m = Data::HashMap::Shared::SI->new($p, 100);
        $m->incr('x');
        my @k = $m->items;          # read lock: claims a reader slot
        my $c = $m->get('x');
    });
    cmp_ok($keep->get('x'), '>=', $ROUNDS, 'all the attached handles wrote to one map');
    # the map's shared resources come back too: reader slots (1024 per map) of closed
    # handles are freed (layout.rs: slots at 4096, 64 bytes each, pid first)
    my @keys = $keep->items;    # the kept handle holds one
    open my $f, '<:raw', $p or die $!;
    sysread $f, my $b, 4096 + 1024 * 64;
    my $mine = grep { unpack('V', substr($b, 4096 + 64 * $_, 4)) == $$ } 0 .. 1023;
    cmp_ok($mine, '<=', 1, "reader slots of destroyed handles are released ($mine held by this process)");
    is($keep->stat_recoveries, 0, 'no lock recoveries');
}

flat('anonymous maps' => sub {
    my $m = Data::HashMap::Shared::II->new(undef, 10);
    $m->put($_[0], 1);
    my @k = $m->keys;
});

flat('memfd maps' => sub {
    my $m = Data::HashMap::Shared::IS->new_memfd("leak", 10);
    $m->put(1, 'a value longer than seven bytes');
});

{
    my $src = Data::HashMap::Shared::IS->new_memfd('leak-src', 10);
    $src->put(7, 'seven');
    my $fd = $src->memfd;
    flat('new_from_fd handles' => sub {
        my $m = Data::HashMap::Shared::IS->new_from_fd($fd);
        $m->get(7) eq 'seven' or die "wrong value\n";
        my @v = $m->values;
    });
}

{
    my $bad = "$dir/leak-bad.shm";
    open my $f, '>:raw', $bad or die $!;
    print $f 'x' x 8192;
    close $f;
    my $ok = "$dir/leak-ok.shm";
    Data::HashMap::Shared::II->new($ok, 10);
    open my $rdonly, '<', $ok or die $!;
    flat('failing constructors' => sub {
        eval { Data::HashMap::Shared::II->new($bad, 10) };            # bad magic
        eval { Data::HashMap::Shared::SS->new($ok, 10) };             # variant mismatch
        eval { Data::HashMap::Shared::II->new("$dir/no/such/dir/x", 10) };
        eval { Data::HashMap::Shared::II->new_from_fd(fileno $rdonly) }; # mmap: EACCES
        eval { Data::HashMap::Shared::II->new_from_fd(987654) };     # EBADF
        eval { Data::HashMap::Shared::II->new(undef, 2**40) };       # range check
    });
}

subtest 'memfds are close-on-exec' => guard {
    my $m = Data::HashMap::Shared::SS->new_memfd('cloexec', 10);
    my $fd = $m->memfd;
    cmp_ok($fd, '>=', 0, 'memfd has a descriptor');
    my $m2 = Data::HashMap::Shared::SS->new_from_fd($fd);
    my $fd2 = $m2->memfd;
    isnt($fd2, $fd, 'new_from_fd holds its own duplicate');
    for my $d ($fd, $fd2) {
        open my $fi, '<', "/proc/self/fdinfo/$d" or die $!;
        my ($flags) = map { /^flags:\s+([0-7]+)/ ? oct $1 : () } <$fi>;
        ok(defined $flags && ($flags & 02000000), "fd $d has O_CLOEXEC in /proc/self/fdinfo")
            or diag sprintf 'flags %o', $flags // 0;
    }
    # an exec'd program sees neither
    my $out = `$^X -e 'print join " ", grep { -e "/proc/self/fd/\$_" } \@ARGV' $fd $fd2`;
    is($out, '', "an exec'd child does not inherit fds $fd, $fd2");
    # while a dup without FD_CLOEXEC is inherited (the check itself works)
    my $dup = POSIX::dup($fd);
    my $out2 = `$^X -e 'print join " ", grep { -e "/proc/self/fd/\$_" } \@ARGV' $dup`;
    POSIX::close($dup);
    is($out2, $dup, "a plain dup ($dup) is inherited");
    # each file / anonymous map keeps one descriptor (its own file description, which
    # holds its liveness lock): close-on-exec too, and closed with the handle
    my $before = fds();
    my %had = map { $_ => 1 } grep { -e "/proc/self/fd/$_" } 0 .. 1023;
    my @m = map { Data::HashMap::Shared::II->new(undef, 10) } 1 .. 5;
    push @m, map { Data::HashMap::Shared::II->new("$dir/cloexec-$_.shm", 10) } 1 .. 5;
    is(fds(), $before + 10, 'anonymous and file maps hold one descriptor each');
    is(scalar(grep { $_->memfd != -1 } @m), 0, '... which memfd() does not expose');
    my @new = grep { !$had{$_} && -e "/proc/self/fd/$_" } 0 .. 1023;
    my $out3 = `$^X -e 'print join " ", grep { -e "/proc/self/fd/\$_" } \@ARGV' @new`;
    is($out3, '', "an exec'd child does not inherit them (@new)");
    @m = ();
    is(fds(), $before, 'and they are closed with the handles');
};

done_testing;
