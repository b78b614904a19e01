use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Variants;
use File::Copy qw(copy);
use Data::HashMap::Shared;

# Header validation on attach (api.md 3.1 / 9 with decisions.md 1 and the
# 4096-byte header of doc/DESIGN.md): too small, bad magic, version and variant
# mismatch, corrupt header, and files written by the C implementation.

sub write_file { my ($p, $bytes) = @_; open my $fh, '>:raw', $p or die "$p: $!"; print $fh $bytes; close $fh }
sub read_file  { my $p = shift; open my $fh, '<:raw', $p or die "$p: $!"; local $/; my $b = <$fh>; $b }
sub patch      { my ($p, $off, $bytes) = @_; my $b = read_file($p); substr($b, $off, length $bytes) = $bytes; write_file($p, $b) }

# a valid II file with a few entries, and a pristine copy of it
my $good = tmppath('good');
{
    my $m = Data::HashMap::Shared::II->new($good, 100);
    $m->put($_, $_ * 10) for 1 .. 20;
}
my $good_bytes = read_file($good);
my $fresh = sub { my $p = tmppath('hdr'); write_file($p, $good_bytes); chmod 0600, $p; $p };

subtest 'variant mismatch' => guard {
    for my $v (@VARIANTS) {
        next if $v->{name} eq 'II';
        my $p = $fresh->();
        dies_like(sub { $v->{class}->new($p, 100) },
            qr/^\Q$v->{class}\E: \Q$p\E: variant mismatch \(file=3, expected=$v->{id}\)/,
            "$v->{name} refuses an II file");
    }
    my $ss = tmppath('ss');
    Data::HashMap::Shared::SS->new($ss, 10);
    dies_like(sub { Data::HashMap::Shared::II->new($ss, 10) },
        qr/variant mismatch \(file=10, expected=3\)/, 'II refuses an SS file');
    my $m = Data::HashMap::Shared::II->new($good, 10);
    is($m->get(20), 200, 'the good file still opens as II');
};

subtest 'file too small' => guard {
    for my $n (1, 100, 4095) {
        my $p = tmppath('small');
        write_file($p, substr($good_bytes, 0, $n));
        dies_like(sub { Data::HashMap::Shared::II->new($p, 100) },
            qr/^Data::HashMap::Shared::II: \Q$p\E: file too small \($n bytes, need 4096\)/, "$n-byte file");
    }
    my $p = tmppath('small');
    write_file($p, "\0" x 4095);
    dies_like(sub { Data::HashMap::Shared::II->new($p, 100) }, qr/file too small \(4095 bytes, need 4096\)/,
        '4095 zero bytes');
};

subtest 'truncated or extended file' => guard {
    my $p = $fresh->();
    truncate($p, 8192) or die $!;
    dies_like(sub { Data::HashMap::Shared::II->new($p, 100) }, qr/^Data::HashMap::Shared::II: \Q$p\E: corrupt header/,
        'a file cut short of its recorded size');
    $p = $fresh->();
    open my $fh, '>>:raw', $p or die; print $fh "\0" x 4096; close $fh;
    dies_like(sub { Data::HashMap::Shared::II->new($p, 100) }, qr/corrupt header/,
        'a file longer than its recorded size');
};

subtest 'garbage' => guard {
    my $p = tmppath('garbage');
    srand(7);
    write_file($p, join '', map { chr int rand 256 } 1 .. 16384);
    dies_like(sub { Data::HashMap::Shared::II->new($p, 100) },
        qr/^Data::HashMap::Shared::II: \Q$p\E: bad magic \(not a HashMap::Shared file\)/, 'random bytes');
    $p = tmppath('text');
    write_file($p, "hello world\n" x 1000);
    dies_like(sub { Data::HashMap::Shared::SS->new($p, 100) }, qr/bad magic \(not a HashMap::Shared file\)/,
        'a text file');
    is(-s $p, 12000, 'the refused file is left alone');
};

# The following patch fields at the offsets of doc/DESIGN.md "File format".
subtest 'version mismatch' => guard {
    for my $ver (3, 0, 99) {
        my $p = $fresh->();
        patch($p, 8, pack('V', $ver));
        dies_like(sub { Data::HashMap::Shared::II->new($p, 100) },
            qr/^Data::HashMap::Shared::II: \Q$p\E: version mismatch \(file=$ver, expected=2\)/, "format version $ver");
    }
    # version 1 (our 0.17_01 development release): the message names the conversion
    my $p = $fresh->();
    patch($p, 8, pack('V', 1));
    dies_like(sub { Data::HashMap::Shared::II->new($p, 100) },
        qr/^Data::HashMap::Shared::II: \Q$p\E: file was written by format version 1 \(0\.17_01\); convert it with Data::HashMap::Shared->upgrade_file\(\Q$p\E\)/,
        'format version 1 names upgrade_file');
};

subtest 'corrupt header' => guard {
    my $p = $fresh->();
    patch($p, 48, pack('V', 1 << 20));       # max capacity
    dies_like(sub { Data::HashMap::Shared::II->new($p, 100) }, qr/corrupt header/, 'changed max capacity');
    $p = $fresh->();
    patch($p, 33, "\x5a");                   # a byte of the hash seed
    dies_like(sub { Data::HashMap::Shared::II->new($p, 100) }, qr/corrupt header/, 'changed hash seed (checksum)');
    $p = $fresh->();
    patch($p, 12, pack('V', 77));
    dies_like(sub { Data::HashMap::Shared::II->new($p, 100) }, qr/variant mismatch \(file=77, expected=3\)/,
        'unknown variant id reported as a mismatch');
};

subtest 'files written by the C implementation' => guard {
    my $dir = fixture_dir('v10');
    plan skip_all => 'fixtures ../shared/fixtures/c-format not found (set HMS_SHARED_DIR)' unless $dir;
    my %class_of = ('ii-plain' => 'II', 'ss-mixed' => 'SS', 'i16-plain' => 'I16', 'si-counters' => 'SI');
    for my $ver ('v10', 'v9') {
        my $d = fixture_dir($ver) or next;
        for my $name (sort keys %class_of) {
            my $src = "$d/$name.shm";
            next unless -f $src;
            my $p = tmppath("c-$ver-$name");
            copy($src, $p) or die "copy $src: $!";
            chmod 0600, $p;
            is(substr(read_file($p), 0, 4), "\x31\x4D\x48\x53", "$ver/$name starts with the C magic");
            my $class = "Data::HashMap::Shared::$class_of{$name}";
            dies_like(sub { $class->new($p, 100) },
                qr/^\Q$class\E: .*\bC\b.*upgrade_file/s, "$ver/$name: croak names upgrade_file");
            unlike($@ // '', qr/bad magic/, '... not a bare "bad magic"');
            is(read_file($p), read_file($src), '... and the file is left unchanged');
        }
    }
    # the wrong class on a C file also says to upgrade (magic is checked before variant)
    my $p = tmppath('c-wrong');
    copy("$dir/ii-plain.shm", $p) or die;
    dies_like(sub { Data::HashMap::Shared::SS->new($p, 100) }, qr/upgrade_file/, 'C file opened as another variant');
};

subtest 'new_from_fd validates with the fd prefix' => guard {
    my $p = $fresh->();
    open my $fh, '+<', $p or die $!;
    dies_like(sub { Data::HashMap::Shared::SS->new_from_fd(fileno $fh) },
        qr/^Data::HashMap::Shared::SS: fd: variant mismatch \(file=3, expected=10\)/, 'fd: variant mismatch');
    my $g = tmppath('fdgarbage');
    write_file($g, "x" x 8192);
    open my $gh, '+<', $g or die $!;
    dies_like(sub { Data::HashMap::Shared::II->new_from_fd(fileno $gh) }, qr/fd: bad magic/, 'fd: bad magic');
    my $s = tmppath('fdsmall');
    write_file($s, "x" x 100);
    open my $sh, '+<', $s or die $!;
    dies_like(sub { Data::HashMap::Shared::II->new_from_fd(fileno $sh) }, qr/fd: file too small/, 'fd: file too small');
    my $m = Data::HashMap::Shared::II->new_from_fd(fileno $fh);
    is($m->get(20), 200, 'a valid file opens through its fd');
};

# api.md 3.1 "interrupted-create recovery": a file whose magic is 0, of exactly the
# size the requested geometry needs, owned by us and all zero, is initialised; the
# same with other bytes is refused; a zero file of another size is not a map.
subtest 'interrupted create' => guard {
    my $ref = tmppath('zref');
    Data::HashMap::Shared::SS->new($ref, 100);
    my $S = -s $ref;
    my $mk = sub {
        my ($n, $poke) = @_;
        my $p = tmppath('zero');
        my $b = "\0" x $n;
        substr($b, $poke, 1) = 'x' if defined $poke;
        write_file($p, $b);
        chmod 0644, $p;
        return $p;
    };
    my $p = $mk->($S);
    my $m = eval { Data::HashMap::Shared::SS->new($p, 100, 0, 0, 0, 0, 0640) };
    ok($m, 'an all-zero file of the exact size is initialised') or diag $@;
    is(sprintf('%04o', (stat $p)[2] & 07777), '0640', '... and file_mode is applied');
    ok($m && $m->put('k', 'v' x 20) && $m->get('k') eq 'v' x 20, '... and it works');
    $p = $mk->($S, 5000);
    dies_like(sub { Data::HashMap::Shared::SS->new($p, 100) },
        qr/^Data::HashMap::Shared::SS: \Q$p\E: incomplete map file left by an interrupted create; remove it and retry/,
        'the same with a non-zero byte is refused');
    $p = $mk->($S + 4096);
    dies_like(sub { Data::HashMap::Shared::SS->new($p, 100) }, qr/bad magic/, 'a zero file of another size is not a map');
    $p = $mk->($S);
    dies_like(sub { Data::HashMap::Shared::SS->new($p, 1000) }, qr/bad magic/,
        'a zero file sized for another geometry is not a map');
};

done_testing;
