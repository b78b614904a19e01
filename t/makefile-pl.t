# Makefile.PL on machines it cannot build on: without cargo, or with a Rust older
# than the engine crate's rust-version, it says "NA: ..." and exits 0 without writing
# a Makefile (what CPAN testers read as "not applicable"). Real runs of Makefile.PL in
# a copy of the distribution, with fake cargo programs that print a version. Also:
# what `make` builds (the engine, not the interop test program) and that the built
# Shared.so carries no debug information unless HMS_DEBUG_INFO asked for it.
use strict;
use warnings;
use Test::More;
use Config;
use File::Temp ();
use ExtUtils::Manifest ();

my $tmp  = File::Temp::tempdir(CLEANUP => 1);
my $dist = "$tmp/dist";
my $bin  = "$tmp/bin";
mkdir $bin or die "$bin: $!";

# a copy of what the tarball holds
{
    my $files = ExtUtils::Manifest::maniread();
    local $ExtUtils::Manifest::Quiet = 1;
    ExtUtils::Manifest::manicopy($files, $dist, 'cp');
}
ok -f "$dist/Makefile.PL" && -f "$dist/rust-core/Cargo.toml", 'a copy of the distribution';

open my $fh, '<', 'rust-core/Cargo.toml' or die "rust-core/Cargo.toml: $!";
my ($need) = join('', <$fh>) =~ /^rust-version\s*=\s*"([\d.]+)"/m;
ok $need, "the engine crate declares rust-version $need";

# A program that answers --version like cargo does.
sub fake_cargo {
    my ($name, $version) = @_;
    my $path = "$bin/$name";
    open my $fh, '>', $path or die "$path: $!";
    print $fh "#!/bin/sh\necho 'cargo $version (0123456789 2020-01-01)'\n";
    close $fh;
    chmod 0755, $path or die;
    return $path;
}

# Runs Makefile.PL in the copy with %env; returns (exit status, output).
sub makefile_pl {
    my (%env) = @_;
    unlink "$dist/Makefile";
    local %ENV = %ENV;
    delete $ENV{$_} for qw(CARGO HMS_DEBUG_INFO);
    @ENV{ keys %env } = values %env;
    my $out = qx{cd '$dist' && '$^X' Makefile.PL 2>&1};
    return ($? >> 8, $out);
}

# the version one below the required one ("1.77" -> "1.76.0")
my @v = split /\./, $need;
$v[-1]--;
my $older = join('.', @v, (0) x (3 - @v));

{
    # no cargo at all: PATH holds only a directory without one
    my $empty = "$tmp/empty";
    mkdir $empty;
    my ($rc, $out) = makefile_pl(PATH => $empty);
    is $rc, 0, 'without cargo: exit 0';
    like $out, qr/^NA: Data::HashMap::Shared needs Rust >= \Q$need\E \(cargo not found/m,
        '... says NA, the Rust version it needs and that cargo is missing';
    ok !-e "$dist/Makefile", '... and writes no Makefile';

    ($rc, $out) = makefile_pl(CARGO => "$tmp/no-such-cargo");
    like $out, qr/^NA: .*needs Rust >= \Q$need\E \(cargo not found/m, 'CARGO naming nothing: NA likewise';
    ok !-e "$dist/Makefile", '... no Makefile';

    my $old = fake_cargo('old-cargo', $older);
    ($rc, $out) = makefile_pl(CARGO => $old);
    is $rc, 0, "cargo $older: exit 0";
    like $out, qr/^NA: Data::HashMap::Shared needs Rust >= \Q$need\E \(cargo \Q$older\E found/m,
        '... says NA with both versions';
    ok !-e "$dist/Makefile", '... and writes no Makefile';

    # the one on PATH is the one asked when CARGO is not set
    fake_cargo('cargo', $older);
    ($rc, $out) = makefile_pl(PATH => "$bin:$ENV{PATH}");
    like $out, qr/^NA: .*\(cargo \Q$older\E found/m, 'an old cargo on PATH: NA';
    unlink "$bin/cargo";

    my $failing = "$bin/broken-cargo";
    open my $fh, '>', $failing or die;
    print $fh "#!/bin/sh\necho 'error: no default toolchain configured' >&2\nexit 1\n";
    close $fh;
    chmod 0755, $failing;
    ($rc, $out) = makefile_pl(CARGO => $failing);
    like $out, qr/^NA: .*needs Rust >= \Q$need\E \(cargo: .* did not give a version/m,
        'a cargo that fails (rustup without a toolchain): NA';
    ok !-e "$dist/Makefile", '... no Makefile';
}

# The requirement is read from the crate, not written into Makefile.PL.
{
    my $toml = "$dist/rust-core/Cargo.toml";
    open my $in, '<', $toml or die;
    my $text = do { local $/; <$in> };
    close $in;
    (my $raised = $text) =~ s/^rust-version\s*=\s*"[\d.]+"/rust-version = "9.99"/m or die;
    open my $out, '>', $toml or die;
    print $out $raised;
    close $out;
    my $new = fake_cargo('new-cargo', '9.98.5');
    my ($rc, $msg) = makefile_pl(CARGO => $new);
    like $msg, qr/^NA: .*needs Rust >= 9\.99 \(cargo 9\.98\.5 found/m,
        "rust-version raised in the copy's Cargo.toml: Makefile.PL asks for that";
    open $out, '>', $toml or die;
    print $out $text;
    close $out;
}

# Exactly the required version is enough: a Makefile is written, whose `make` builds
# the engine only; the interop test program has a target of its own.
SKIP: {
    my $ok = fake_cargo('ok-cargo', "$need.0");
    my ($rc, $out) = makefile_pl(CARGO => $ok);
    is $rc, 0, "cargo $need.0: exit 0" or diag $out;
    unlike $out, qr/^NA:/m, '... no NA';
    skip 'Makefile.PL stopped for another reason: ' . ($out =~ /^(NA:.*|OS unsupported.*)$/m)[0], 6
        if $out =~ /^(?:NA|OS unsupported)/m;
    ok -f "$dist/Makefile", '... and a Makefile';
    my $make = $ENV{MAKE} || $Config{make};
    my $plan = qx{cd '$dist' && $make -n 2>&1};
    like $plan, qr/^\S*ok-cargo build --release\b.* -p hashmap-shared\b/m, 'make builds the engine with that cargo';
    unlike $plan, qr/interop/, '... and not the interop program';
    my $interop = qx{cd '$dist' && $make -n hm_interop 2>&1};
    like $interop, qr/^\S*ok-cargo build .*-p hashmap-shared-interop\b/m, 'make hm_interop builds it (for t/rust-interop.t)';
    like slurp("$dist/Makefile"), qr/^OTHERLDFLAGS = .*-Wl,--strip-debug/m, 'the module is linked without debug information';
    makefile_pl(CARGO => $ok, HMS_DEBUG_INFO => 1);
    unlike slurp("$dist/Makefile"), qr/--strip-debug/, '... unless HMS_DEBUG_INFO=1 asked to keep it';
}

# The Shared.so this build made: debug sections present exactly when the Makefile
# keeps them.
SKIP: {
    my ($so) = grep { -f } "blib/arch/auto/Data/HashMap/Shared/Shared.$Config{dlext}";
    skip 'no built Shared.so in blib', 2 unless $so && -f 'Makefile';
    my $stripping = slurp('Makefile') =~ /^OTHERLDFLAGS = .*--strip-debug/m;
    my @debug = grep { /^\.debug_/ } elf_sections($so);
    ok scalar(grep { $_ eq '.symtab' } elf_sections($so)), "$so keeps its symbol table (profilers name functions)";
    if ($stripping) {
        is_deeply \@debug, [], "$so has no debug sections";
    }
    else {
        ok scalar(@debug), "$so has debug sections (built with HMS_DEBUG_INFO=1)";
    }
}

sub slurp { open my $fh, '<', $_[0] or die "$_[0]: $!"; local $/; scalar <$fh> }

# The section names of an ELF64 little-endian file.
sub elf_sections {
    my ($file) = @_;
    open my $fh, '<:raw', $file or die "$file: $!";
    my $read = sub { my ($off, $len) = @_; sysseek $fh, $off, 0; sysread($fh, my $b, $len) == $len or die "$file: short read"; $b };
    die "$file: not an ELF64 little-endian file" unless $read->(0, 6) eq "\x7fELF\x02\x01";
    my ($shoff) = unpack 'Q<', $read->(0x28, 8);
    my ($shentsize, $shnum, $shstrndx) = unpack 'v3', $read->(0x3A, 6);
    my @sh = map { [unpack 'V x4 x8 x8 Q< Q<', $read->($shoff + $_ * $shentsize, 0x28)] } 0 .. $shnum - 1;
    my $strtab = $read->($sh[$shstrndx][1], $sh[$shstrndx][2]);
    return map { unpack 'Z*', substr($strtab, $_->[0]) } @sh;
}

done_testing;
