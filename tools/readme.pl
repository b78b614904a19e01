#!/usr/bin/perl
# tools/readme.pl [--check] -- writes README: what the module is, how to install and
# use it, the development set-up commands, then the POD of lib/Data/HashMap/Shared.pm
# as text, then where things are in the distribution.
# With --check, writes nothing and exits 1 if README is not what it would write
# (t/readme.t runs that in a git checkout).
use strict;
use warnings;
use Pod::Text ();

my $check = @ARGV && $ARGV[0] eq '--check';

sub slurp { open my $fh, '<:raw', $_[0] or die "$_[0]: $!\n"; local $/; scalar <$fh> }

# Facts stated once elsewhere: the Rust version the engine needs, and the Debian
# packages .ci/setup installs.
my ($rust) = slurp('rust-core/Cargo.toml') =~ /^rust-version\s*=\s*"([\d.]+)"/m
    or die "tools/readme.pl: no rust-version in rust-core/Cargo.toml\n";
my ($apt) = slurp('.ci/setup') =~ /apt-get install ((?:[^\n]*\\\n)*[^\n]*)/
    or die "tools/readme.pl: no apt-get install line in .ci/setup\n";
my @packages = grep { !/^-/ && !/^\$/ } split ' ', $apt =~ s/\\\n/ /gr;
# the install command, wrapped at 80 columns with shell continuations
my $packages = '';
{
    my $line = '    apt-get update && apt-get install -y';
    for my $p (@packages) {
        if (length($line) + 1 + length($p) > 78) { $packages .= "$line \\\n"; $line = '      ' . $p }
        else                                     { $line .= " $p" }
    }
    $packages .= "$line \\";
}

# What a CPAN user reads first: what it is, how to install it, how to use it; then
# the development set-up; then the POD.
my $head = <<"TEXT";
Data::HashMap::Shared
=====================

Hash maps with fixed key and value types (integers, strings) in shared
memory, used by many processes at once: counters, caches with LRU and TTL,
queues and lookup tables for preforking servers and worker pools. Linux.

Installing
----------

    cpanm Data::HashMap::Shared

Building needs Rust $rust or later with cargo (https://rustup.rs) and
XS::Parse::Keyword 0.33 or later; without them `perl Makefile.PL` says "NA:"
and what is missing (see INSTALLATION below). From an unpacked tarball, which
carries the Rust crates it needs (no network is used):

    perl Makefile.PL && make && make test && make install

Using
-----

    use Data::HashMap::Shared::SI;

    # one map of string keys and integer values, shared by every process
    # that opens the file
    my \$hits = Data::HashMap::Shared::SI->new('/dev/shm/hits', 100_000);
    shm_si_incr \$hits, '/index.html';         # atomic, from any process
    my \$n = shm_si_get \$hits, '/index.html';

The documentation follows: perldoc Data::HashMap::Shared (and the variant
classes), recipes in perldoc Data::HashMap::Shared::Cookbook, the
command-line tool in perldoc hashmap-shared.

Development
-----------

From a git checkout, on a fresh Debian 12 machine with Rust (rustup), as
root, from the top of the source tree:

    # 1. install what is missing, build, and run the demo
    bash .ci/setup

    # 2. run every test (the Perl suite and the engine's Rust tests)
    bash .ci/test

.ci/setup is

$packages
      && perl Makefile.PL && make && perl -Mblib eg/demo.pl

and .ci/test is

    make test && cargo test --release --locked

(.ci/run, which CI runs, is the two of them in a row, then the offline build
and test of the release tarball.)

The rest of this file is the module's documentation, generated from its POD
by tools/readme.pl.

TEXT

my $tail = <<'TEXT';
LAYOUT OF THE DISTRIBUTION
    lib/          the Perl modules, their POD and the Cookbook
    Shared.xs xs/ the XS glue: custom ops, keywords, argument conversion
    rust-core/    the engine (file format, locking, table, arena) and its
                  Rust API; rust-core/interop/ a Rust program sharing maps
                  with Perl
    bin/          hashmap-shared (inspect, dump, load, verify, edit maps) and
                  hashmap-shared-upgrade (convert files of the C version)
    eg/           one runnable script per Cookbook recipe; eg/demo.pl
    t/            the Perl test suite (t/lib/Variants.pm is the variant table)
    bench/        benchmarks: vs.pl (against other shared-memory stores),
                  shards.pl, lru-ttl.pl, dump.pl (what hashmap-shared dump
                  costs), profile.pl (callgrind); RESULTS.md holds the latest
                  figures and the exact commands
    doc/DESIGN.md how it is built
    tools/        maintainer scripts: README, vendoring for make dist
TEXT

my $pod = Pod::Text->new(width => 78, indent => 4, sentence => 0);
my $text;
$pod->output_string(\$text);
$pod->parse_file('lib/Data/HashMap/Shared.pm');
die "tools/readme.pl: no POD rendered\n" unless length($text // '') > 1000;
my $readme = $head . $text . "\n" . $tail;
utf8::encode($readme);    # the POD is UTF-8 (=encoding utf8): so is README

if ($check) {
    open my $fh, '<:raw', 'README' or die "README: $!\n";
    my $have = do { local $/; <$fh> };
    exit($have eq $readme ? 0 : 1);
}
open my $fh, '>:raw', 'README' or die "README: $!\n";
print $fh $readme;
close $fh or die "README: $!\n";
