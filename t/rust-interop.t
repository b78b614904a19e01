# A Rust program (rust-core/interop, built by make with the engine's typed Rust API)
# and Perl share map files: Rust writes and Perl reads, Perl writes and Rust reads,
# Rust copies what Perl wrote (every UTF-8 flag kept), and both increment one counter
# while both have the map open.
use strict;
use warnings;
use Test::More;
use Config;
use File::Temp ();
use Data::HashMap::Shared::II;
use Data::HashMap::Shared::SS;
use Data::HashMap::Shared::SI;

# Users do not need the program, so `make` does not build it: its Makefile target
# does, with the cargo and flags Makefile.PL chose (offline in the tarball).
my $bin = 'target/release/hashmap-shared-interop';
{
    my $make = $ENV{MAKE} || $Config{make};
    my $log = qx{$make hm_interop 2>&1};
    is $?, 0, "make hm_interop builds $bin" or diag $log;
    ok -x $bin, "$bin is there" or BAIL_OUT("$bin is missing");
}
my $dir = File::Temp::tempdir(CLEANUP => 1);

sub rust {
    my $out = qx{$bin @_ 2>&1};
    is $?, 0, "hashmap-shared-interop $_[0] exits 0" or diag $out;
    return $out;
}

# Rust writes, Perl reads
{
    my $f = "$dir/rust-ii.shm";
    is rust('write', $f, 'II', 300), "wrote 300\n", 'Rust wrote an II map';
    my $m = Data::HashMap::Shared::II->new($f, 1);
    is $m->size, 300, 'Perl sees every entry';
    is_deeply $m->to_hash, { map { $_ => $_ * 3 } 1 .. 300 }, '... with the values Rust stored';

    my $s = "$dir/rust-ss.shm";
    rust('write', $s, 'SS', 20);
    my $ss = Data::HashMap::Shared::SS->new($s, 1);
    is $ss->size, 21, 'Rust wrote an SS map';
    my $v = $ss->get('key-7');
    is $v, "v\x{e4}lue-7", 'a Rust str value reads as characters';
    ok utf8::is_utf8($v), '... with the UTF-8 flag on';
    my ($k) = grep { /^key-7$/ } $ss->keys;
    ok !utf8::is_utf8($k), '... and its Rust byte-string key without the flag';
    my $text_key = "\x{43a}\x{43b}\x{44e}\x{447}";
    my $raw = $ss->get($text_key);
    is $raw, "\xff\x00raw", 'a Rust byte-string value reads as those bytes';
    ok !utf8::is_utf8($raw), '... without the flag';
    my ($tk) = grep { utf8::is_utf8($_) } $ss->keys;
    is $tk, $text_key, 'the Rust str key reads as characters, flag on';
}

# Perl writes, Rust reads
{
    my $f = "$dir/perl-ss.shm";
    my $m = Data::HashMap::Shared::SS->new($f, 100);
    $m->put("b$_", "bytes $_") for 1 .. 3;
    $m->put('flagged', "\x{263a} smile");
    $m->put("caf\x{e9}\x{263a}", "\xe9");    # a character key, a Latin-1 byte value
    my $out = rust('read', $f, 'SS');
    my $want = join '', map("b$_\tbytes $_\t--\n", 1 .. 3), "caf\xc3\xa9\xe2\x98\xba\t\\xe9\tu-\n",
        "flagged\t\xe2\x98\xba smile\t-u\n", "size 5\n";
    is $out, $want, 'Rust reads every entry, bytes and UTF-8 flags as Perl stored them';

    my $copy = "$dir/rust-copy.shm";
    is rust('copy', $f, $copy), "copied 5\n", 'Rust copied the map Perl wrote';
    my $c = Data::HashMap::Shared::SS->new($copy, 1);
    my %orig = map { ($_ => $m->get($_)) } $m->keys;
    is_deeply(+{ map { ($_ => $c->get($_)) } $c->keys }, \%orig, '... every key and value');
    for my $key (sort keys %orig) {
        my $name = sprintf '%vd', $key;    # the ords: test names stay ASCII
        my ($ck) = grep { $_ eq $key } $c->keys;
        my ($ok) = grep { $_ eq $key } $m->keys;
        is utf8::is_utf8($ck) ? 1 : 0, utf8::is_utf8($ok) ? 1 : 0, "... the key flag of $name kept";
        is utf8::is_utf8($c->get($key)) ? 1 : 0, utf8::is_utf8($orig{$key}) ? 1 : 0,
            "... the value flag of $name kept";
    }

    my $i = "$dir/perl-ii.shm";
    my $n = Data::HashMap::Shared::II->new($i, 100);
    $n->put($_, -$_) for -2 .. 2;
    is rust('read', $i, 'II'), join('', map("$_\t" . -$_ . "\t--\n", -2 .. 2), "size 5\n"),
        'Rust reads the integers Perl stored';
}

# both at once, one counter
{
    my $f = "$dir/shared-si.shm";
    my $m = Data::HashMap::Shared::SI->new($f, 100);
    my $pid = open my $fh, '-|', $bin, 'incr', $f, 'hits', 20000;
    shm_si_incr $m, 'hits' for 1 .. 20000;
    my $last = <$fh>;
    close $fh;
    is $?, 0, 'Rust incremented while Perl did';
    like $last, qr/^\d+$/, '... and printed its last value';
    is $m->get('hits'), 40000, 'no increment was lost between the two languages';
}

done_testing;
