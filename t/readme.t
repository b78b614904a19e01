# README is generated from the POD (tools/readme.pl): it must be regenerated when the
# POD changes. Checked in a git checkout, where README is edited; a tarball ships the
# README it was made with (and another Pod::Text version could wrap lines differently).
use strict;
use warnings;
use Test::More;
use File::Temp ();

plan skip_all => 'not a git checkout (README was generated when the tarball was made)'
    unless -e '.git';
system($^X, 'tools/readme.pl', '--check');
is $?, 0, 'README is what tools/readme.pl makes from the POD'
    or diag 'regenerate it with: perl tools/readme.pl';
open my $fh, '<', 'README' or die "README: $!";
my $readme = do { local $/; <$fh> };
like $readme, qr/\A\QData::HashMap::Shared\E\n=+\n/, 'README starts with the title';

# a CPAN user reads how to install and use it first, then the development set-up,
# still near the top
my @lines = split /\n/, $readme;
my ($install) = grep { $lines[$_] =~ /^    cpanm Data::HashMap::Shared$/ } 0 .. $#lines;
my ($use)     = grep { $lines[$_] =~ /^    use Data::HashMap::Shared::\w+;$/ } 0 .. $#lines;
my ($setup)   = grep { $lines[$_] eq '    bash .ci/setup' } 0 .. $#lines;
my ($test)    = grep { $lines[$_] eq '    bash .ci/test' } 0 .. $#lines;
ok defined $install && defined $use && defined $setup && defined $test,
    'README shows installing, using, and the two set-up commands';
ok $install < $use && $use < $setup && $setup < $test, '... in that order';
cmp_ok $test, '<', 60, '... the set-up commands still near the top (line ' . ($test + 1) . ')';

# the example of "Using" compiles: its keywords are those of the class it uses
my ($example) = $readme =~ /^Using\n-+\n\n((?:    .*\n|\n)+)/m;
$example =~ s/^    //mg;
ok $example =~ /shm_\w+/, 'README has an example with keywords';
my $tmp = File::Temp->new(SUFFIX => '.pl');
print $tmp $example;
close $tmp;
my $out = qx{$^X -Mblib -c $tmp 2>&1};
like $out, qr/syntax OK/, '... which compiles' or diag $out;
done_testing;
