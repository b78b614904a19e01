#!/usr/bin/perl
# tools/dist-vendor.pl DISTDIR -- run by `make distdir` (so by make dist, disttest):
# puts the crates the engine needs into DISTDIR/vendor and points cargo at them with
# DISTDIR/.cargo/config.toml, so that the tarball builds with no network and an empty
# cargo home (Makefile.PL adds --offline when it finds both).
#
# Cargo resolves the whole lock file, dev-dependencies and other platforms' crates
# included, before it builds anything, so every locked crate must be present. Only
# the ones `make` compiles (the engine's normal and build dependencies) are vendored
# whole; the others (proptest, cbindgen, loom, windows-sys, ...: used by the Rust test
# suite, which runs from a git checkout) are reduced to their manifest and an empty
# lib.rs: enough to resolve, 100 MB less to ship.
use strict;
use warnings;
use File::Path qw(make_path remove_tree);
use JSON::PP ();

my $dist = shift or die "usage: $0 DISTDIR\n";
-d $dist or die "$0: $dist is not a directory\n";
my $cargo = $ENV{CARGO} || 'cargo';
my @pkgs  = qw(hashmap-shared hashmap-shared-ffi hashmap-shared-interop);

my $vendor = "$dist/vendor";
remove_tree($vendor);
system($cargo, 'vendor', '--locked', '--versioned-dirs', '--quiet', $vendor) == 0
    or die "$0: cargo vendor failed\n";

# name-version of every crate that `make` compiles
my %keep;
open my $tree, '-|', $cargo, 'tree', '--locked', '-e', 'normal,build', '--prefix', 'none',
    map({ ('-p', $_) } @pkgs)
    or die "$0: cargo tree: $!\n";
while (<$tree>) {
    $keep{"$1-$2"} = 1 if /^(\S+) v(\S+)/;
}
close $tree or die "$0: cargo tree failed\n";

my $json = JSON::PP->new->canonical;
opendir my $dh, $vendor or die "$0: $vendor: $!\n";
for my $crate (sort grep { !/^\./ } readdir $dh) {
    next if $keep{$crate};
    my $dir = "$vendor/$crate";
    my $sum = $json->decode(slurp("$dir/.cargo-checksum.json"));
    my $manifest = slurp("$dir/Cargo.toml");
    remove_tree($dir);
    make_path("$dir/src");
    spew("$dir/Cargo.toml", $manifest);
    # the lib target named in the manifest, or the default one, must exist
    my ($lib) = $manifest =~ /^\[lib\][^\[]*?^path\s*=\s*"([^"]+)"/ms;
    for my $rs ('src/lib.rs', $lib // ()) {
        make_path("$dir/" . ($rs =~ s{/[^/]*\z}{}r)) if $rs =~ m{/};
        spew("$dir/$rs", "// reduced by tools/dist-vendor.pl: not compiled by the Perl build\n");
    }
    # the package checksum (checked against Cargo.lock) stays; no file list to check
    spew("$dir/.cargo-checksum.json", $json->encode({ files => {}, package => $sum->{package} }));
}
closedir $dh;

make_path("$dist/.cargo");
spew("$dist/.cargo/config.toml", <<'TOML');
# Written by tools/dist-vendor.pl into the tarball only: build from vendor/.
[source.crates-io]
replace-with = "vendored-sources"

[source.vendored-sources]
directory = "vendor"
TOML

# list what was added in the tarball's MANIFEST
my @added = ('.cargo/config.toml');
my @dirs  = ($vendor);
while (my $d = shift @dirs) {
    opendir my $h, $d or die "$0: $d: $!\n";
    for my $e (sort grep { $_ ne '.' && $_ ne '..' } readdir $h) {
        my $p = "$d/$e";
        if (-d $p) { push @dirs, $p } else { push @added, substr($p, length($dist) + 1) }
    }
}
my %manifest = map { $_ => 1 } grep { length } split /\n/, slurp("$dist/MANIFEST");
$manifest{ $_ =~ / / ? "'$_'" : $_ } = 1 for @added;
spew("$dist/MANIFEST", join('', map { "$_\n" } sort keys %manifest));
printf "vendored %d crates (%d reduced to their manifest) into %s\n",
    scalar(keys %keep) - scalar(grep { /^hashmap-shared/ } keys %keep),
    scalar(grep { !$keep{$_} } map { m{^vendor/([^/]+)/Cargo\.toml$} ? $1 : () } @added), $vendor;

sub slurp { my ($f) = @_; open my $fh, '<:raw', $f or die "$0: $f: $!\n"; local $/; <$fh> }
sub spew  { my ($f, $s) = @_; open my $fh, '>:raw', $f or die "$0: $f: $!\n"; print $fh $s; close $fh or die "$0: $f: $!\n" }
