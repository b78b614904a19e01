# README is generated from the POD (tools/readme.pl): it must be regenerated when the
# POD changes. Checked in a git checkout, where README is edited; a tarball ships the
# README it was made with (and another Pod::Text version could wrap lines differently).
use strict;
use warnings;
use Test::More;

plan skip_all => 'not a git checkout (README was generated when the tarball was made)'
    unless -e '.git';
system($^X, 'tools/readme.pl', '--check');
is $?, 0, 'README is what tools/readme.pl makes from the POD'
    or diag 'regenerate it with: perl tools/readme.pl';
open my $fh, '<', 'README' or die "README: $!";
my $readme = do { local $/; <$fh> };
like $readme, qr/\A\QData::HashMap::Shared\E\n=+\n/, 'README starts with the title';
like $readme, qr{^    bash \.ci/setup\n.*^    bash \.ci/test\n}ms, 'the two set-up commands come first';
done_testing;
