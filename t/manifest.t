# MANIFEST is exactly the files git tracks, plus MANIFEST itself, sorted (common.md).
# Only a git checkout can say what that is; a tarball is checked by `make distcheck`.
use strict;
use warnings;
use Test::More;

plan skip_all => 'not a git checkout (the tarball ships the MANIFEST it was made with)'
    unless -e '.git';
my @git = `git ls-files 2>/dev/null`;
plan skip_all => 'git is not available to list the tracked files' if $? != 0 || !@git;
chomp @git;

open my $fh, '<', 'MANIFEST' or die "MANIFEST: $!";
my @manifest = map { s/\s.*//sr } grep { /\S/ && !/^#/ } <$fh>;
close $fh;

my %want = map { $_ => 1 } @git, 'MANIFEST';
my %have = map { $_ => 1 } @manifest;
my @missing = grep { !$have{$_} } sort keys %want;
my @extra   = grep { !$want{$_} } sort keys %have;
is_deeply \@missing, [], 'every tracked file is in MANIFEST'
    or diag "regenerate with: (git ls-files; echo MANIFEST) | sort -u > MANIFEST";
is_deeply \@extra, [], 'MANIFEST lists no file that git does not track';
is_deeply \@manifest, [sort @manifest], 'MANIFEST is sorted';
my %seen;
is_deeply [grep { $seen{$_}++ } @manifest], [], 'MANIFEST has no duplicates';

# the skip list must not hide a tracked file from make dist / distcheck
require ExtUtils::Manifest;
my $skip = ExtUtils::Manifest::maniskip();
is_deeply [grep { $skip->($_) } sort keys %want], [], 'MANIFEST.SKIP skips no tracked file';

done_testing;
