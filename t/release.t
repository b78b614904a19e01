# What CPAN and a new user see of the distribution: one stable version everywhere
# it is written, a LICENSE file with the terms the dist declares, and META that
# indexes every package (provides), lists each no_index directory once and names
# an author with a contact point.
use strict;
use warnings;
use Test::More;
use JSON::PP ();
use Data::HashMap::Shared;

sub slurp { open my $fh, '<:raw', $_[0] or die "$_[0]: $!"; local $/; scalar <$fh> }

my $version = $Data::HashMap::Shared::VERSION;
like $version, qr/^\d+\.\d\d\z/, "\$VERSION $version is a stable X.YY version (no _NN)";
cmp_ok $version, '>', 0.17, '... above the C implementation\'s last release (0.17), so installers pick it';

# every module of lib/ carries it
{
    my @pm;
    require File::Find;
    File::Find::find(sub { push @pm, $File::Find::name if /\.pm\z/ }, 'lib');
    for my $pm (sort @pm) {
        my ($v) = slurp($pm) =~ /^our \$VERSION = '([^']+)';/m;
        is $v, $version, "$pm: \$VERSION";
    }
}

# the POD's VERSION section and the top entry of Changes name it
{
    my ($section) = slurp('lib/Data/HashMap/Shared.pm') =~ /^=head1 VERSION\n\n(.*?)\n\n/ms;
    like $section, qr/^\Q$version\E\b/, 'the POD VERSION section starts with it';
    my ($top) = slurp('Changes') =~ /^(\d\S*)\s/m;
    is $top, $version, 'the top entry of Changes is that version';
}

# the Rust version INSTALLATION names is the engine crate's rust-version (which
# Makefile.PL and README read from the crate)
{
    my ($need) = slurp('rust-core/Cargo.toml') =~ /^rust-version\s*=\s*"([\d.]+)"/m;
    my ($install) = slurp('lib/Data/HashMap/Shared.pm') =~ /^=head1 INSTALLATION\n(.*?)^=head1/ms;
    my @named = $install =~ /\bRust (\d+\.\d+)/g;
    ok @named, 'INSTALLATION names the Rust version it needs';
    is_deeply [grep { $_ ne $need } @named], [], "... $need, the engine crate's rust-version";
}

# LICENSE: Perl 5's terms, both texts in full
{
    ok -f 'LICENSE', 'a LICENSE file';
    my $l = slurp('LICENSE');
    like $l, qr/same\s+terms as the Perl 5 programming language system itself/, '... with the terms of Perl 5';
    like $l, qr/GNU GENERAL PUBLIC LICENSE\s+Version 1, February 1989/, '... the GPL, version 1 (or later)';
    like $l, qr/The "Artistic License"/, '... and the Artistic License 1.0';
}

# META as Makefile.PL writes it (MYMETA.json; make dist copies it into META.json)
SKIP: {
    skip 'run perl Makefile.PL first: no MYMETA.json', 7 unless -f 'MYMETA.json';
    my $meta = JSON::PP->new->decode(slurp('MYMETA.json'));
    is $meta->{version}, $version, 'META version';
    is_deeply $meta->{license}, ['perl_5'], 'META license perl_5';
    my %seen;
    my @dups = grep { $seen{$_}++ } @{ $meta->{no_index}{directory} };
    is_deeply \@dups, [], 'no directory is listed twice in no_index';
    ok $seen{'rust-core'} && $seen{t}, '... which keeps rust-core/ and t/ out of the index';
    like $meta->{author}[0], qr/^\S.* <\S+>\z/, "an author with a contact point ($meta->{author}[0])";

    my $provides = $meta->{provides} || {};
    my %want;
    require File::Find;
    File::Find::find(sub {
        return unless /\.pm\z/;
        my $file = $File::Find::name;
        $want{$1} = $file for slurp($_) =~ /^package\s+([\w:]+)\s*;/mg;
    }, 'lib');
    is_deeply [sort keys %$provides], [sort keys %want], 'provides lists every package of lib/';
    my @wrong = grep { $provides->{$_}{file} ne $want{$_} || $provides->{$_}{version} ne $version } keys %want;
    is_deeply \@wrong, [], '... each with its file and the version';
}

done_testing;
