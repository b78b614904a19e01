# A Rust program (rust-core/interop, written with the engine's Rust API) and Perl
# share map files: Rust writes and Perl reads, Perl writes and Rust reads, and both
# increment one counter while both have the map open.
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
    my $v = $ss->get('key-7');
    is $v, "v\x{e4}lue-7", 'a string Rust stored with the UTF-8 flag';
    ok utf8::is_utf8($v), '... comes back flagged';
    my ($k) = grep { /^key-7$/ } $ss->keys;
    ok !utf8::is_utf8($k), '... and its byte key without the flag';
}

# Perl writes, Rust reads
{
    my $f = "$dir/perl-ss.shm";
    my $m = Data::HashMap::Shared::SS->new($f, 100);
    $m->put("b$_", "bytes $_") for 1 .. 3;
    $m->put('flagged', "\x{263a} smile");
    my $out = rust('read', $f, 'SS');
    my $want = join '', map("b$_\tbytes $_\t-\n", 1 .. 3), "flagged\t\xe2\x98\xba smile\tu\n", "size 4\n";
    is $out, $want, 'Rust reads every entry, bytes and UTF-8 flags as Perl stored them';

    my $i = "$dir/perl-ii.shm";
    my $n = Data::HashMap::Shared::II->new($i, 100);
    $n->put($_, -$_) for -2 .. 2;
    is rust('read', $i, 'II'), join('', map("$_\t" . -$_ . "\t-\n", -2 .. 2), "size 5\n"),
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
