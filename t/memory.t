use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Variants;
use Config;
use Data::HashMap::Shared;

# decisions.md 7 "Memory comes back": after clear, a mass removal or a shrink the
# pages the map no longer needs are given back (hole punching for files,
# MADV_REMOVE for anonymous / memfd maps), so the file's allocated size and the
# shared memory resident in the process drop.

sub allocated { my $p = shift; return (stat $p)[12] * 512 }
sub rss_shmem {
    open my $f, '<', '/proc/self/status' or return undef;
    while (<$f>) { return $1 * 1024 if /^RssShmem:\s+(\d+)/ }
    return undef;
}

# Can this filesystem punch holes at all? (fallocate(FALLOC_FL_PUNCH_HOLE|KEEP_SIZE))
sub can_punch {
    my $dir = shift;
    my $nr = eval { require 'syscall.ph'; &SYS_fallocate() } // ($Config{archname} =~ /^x86_64/ ? 285 : undef);
    return 0 unless defined $nr;
    my $p = "$dir/punch-probe-$$";
    open my $fh, '+>', $p or return 0;
    print $fh "x" x (1 << 20);
    close $fh;
    open $fh, '+<', $p or return 0;
    my $before = allocated($p);
    my $r = syscall($nr, fileno($fh), 3, 0, 1 << 20);
    close $fh;
    my $after = allocated($p);
    unlink $p;
    return $r == 0 && $after < $before;
}

my $KiB = 1024;
my $MiB = 1024 * 1024;

subtest 'file-backed map gives pages back' => guard {
    plan skip_all => 'the temporary directory\'s filesystem cannot punch holes' unless can_punch(tmpdir());
    my $p = tmppath('mem');
    my $m = Data::HashMap::Shared::SS->new($p, 100000);
    my $fresh = allocated($p);
    my $n = 0;
    for my $i (1 .. 60000) { $m->put("key $i", "value $i " . ('x' x 90)) or last; $n++ }
    is($n, 60000, 'filled with 60000 arena strings');
    my $peak = allocated($p);
    ok($peak > $fresh + 8 * $MiB, sprintf('allocated grew from %d KiB to %d KiB', $fresh / $KiB, $peak / $KiB));
    $m->remove("key $_") for 1 .. $n;
    my $after_rm = allocated($p);
    ok($after_rm <= $fresh + ($peak - $fresh) / 4,
        sprintf('removing every entry gives most pages back: %d KiB (fresh %d, peak %d)', $after_rm / $KiB, $fresh / $KiB, $peak / $KiB));
    $m->put("key $_", "value $_ " . ('x' x 90)) for 1 .. $n;
    ok(allocated($p) > $fresh + 8 * $MiB, 'refilled');
    $m->clear;
    my $after_clear = allocated($p);
    ok($after_clear <= $fresh + 256 * $KiB,
        sprintf('clear gives everything back: %d KiB (fresh %d KiB)', $after_clear / $KiB, $fresh / $KiB));
    is($m->size, 0, 'empty');
    ok($m->put('k', 'v' x 100) && $m->get('k') eq 'v' x 100, 'usable after the pages were released');

    my $q = tmppath('mem-ii');
    my $ii = Data::HashMap::Shared::II->new($q, 200000);
    my $f2 = allocated($q);
    $ii->put($_, $_) for 1 .. 150000;
    my $p2 = allocated($q);
    ok($p2 > $f2 + 2 * $MiB, sprintf('II table grew to %d KiB', $p2 / $KiB));
    $ii->remove($_) for 1 .. 150000;
    is($ii->capacity, 16, 'shrunk to 16 slots');
    my $a2 = allocated($q);
    ok($a2 <= $f2 + 256 * $KiB, sprintf('the released table tail is given back: %d KiB (fresh %d KiB)', $a2 / $KiB, $f2 / $KiB));
    $ii->put($_, -$_) for 1 .. 1000;
    my $bad = grep { $ii->get($_) != -$_ } 1 .. 1000;
    is($bad, 0, 'the table works after its pages were released');
};

subtest 'anonymous map gives shared memory back' => guard {
    my $r0 = rss_shmem();
    plan skip_all => 'no RssShmem in /proc/self/status' unless defined $r0;
    my $m = Data::HashMap::Shared::SS->new(undef, 200000);
    my $fresh = rss_shmem();
    $m->put("k$_", 'x' x 100) for 1 .. 100000;
    my $peak = rss_shmem();
    ok($peak > $fresh + 10 * $MiB, sprintf('resident shared memory grew to %d KiB', $peak / $KiB));
    $m->clear;
    my $after = rss_shmem();
    ok($after <= $fresh + 512 * $KiB, sprintf('clear gives it back: %d KiB (fresh %d KiB)', $after / $KiB, $fresh / $KiB));
    $m->put("k$_", 'x' x 100) for 1 .. 100000;
    $m->remove("k$_") for 1 .. 100000;
    my $after_rm = rss_shmem();
    ok($after_rm <= $fresh + ($peak - $fresh) / 4, sprintf('removing every entry gives most of it back: %d KiB', $after_rm / $KiB));
    ok($m->put('again', 'y' x 1000) && $m->get('again') eq 'y' x 1000, 'usable afterwards');
};

done_testing;
