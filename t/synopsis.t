# The SYNOPSIS of every module compiles: each is compiled as the body of a sub that is
# never called, so nothing runs, but every keyword, method call and variable must parse.
use strict;
use warnings;
use Test::More;
use File::Find ();

my @pm;
File::Find::find(sub { push @pm, $File::Find::name if /\.pm\z/ }, 'lib');
@pm = sort @pm;
cmp_ok scalar @pm, '>=', 11, 'found the modules';

for my $file (@pm) {
    open my $fh, '<', $file or die "$file: $!";
    my $pod = do { local $/; <$fh> };
    my ($syn) = $pod =~ /^=head1 SYNOPSIS\n(.*?)^=head1 /ms;
    ok defined $syn, "$file has a SYNOPSIS" or next;
    # the verbatim (indented) lines are the code
    my $code = join "\n", map { s/^    //r } grep { /^(?: |\s*$)/ } split /\n/, $syn;
    # the CHI driver's SYNOPSIS uses CHI, which this distribution does not require
    my $uses = $file =~ m{^lib/CHI/} ? 'CHI' : 'Data::HashMap::Shared';
    like $code, qr/\buse \Q$uses\E\b/, "$file: the SYNOPSIS loads a module";
    if ($uses eq 'CHI' && !eval { require CHI; 1 }) {
        SKIP: { skip "$file: CHI is not installed", 1 }
        next;
    }
    my $ok = eval "no strict; no warnings; sub {\n#line 1 \"$file SYNOPSIS\"\n$code\n}; 1";
    ok $ok, "$file: the SYNOPSIS compiles" or diag $@;
}

# the Cookbook's recipes compile too
{
    my $file = 'lib/Data/HashMap/Shared/Cookbook.pod';
    open my $fh, '<', $file or die "$file: $!";
    my $pod = do { local $/; <$fh> };
    my ($recipes) = $pod =~ /^=head1 RECIPES\n(.*?)^=head1 /ms;
    my (@blocks, $cur);
    for my $para (split /\n\s*\n/, $recipes) {
        if ($para =~ /^ /) { $cur .= "$para\n\n" }
        else               { push @blocks, $cur if defined $cur; undef $cur }
    }
    push @blocks, $cur if defined $cur;
    my @perl = grep { /^\s*use Data::HashMap::Shared::/m } @blocks;
    cmp_ok scalar @perl, '>=', 12, 'the Cookbook has its Perl recipes';
    for my $code (@perl) {
        my ($name) = $code =~ /^\s*use (Data::HashMap::Shared::\w+)/m;
        my $ok = eval "no strict; no warnings; sub {\n$code\n}; 1";
        ok $ok, "Cookbook recipe using $name compiles" or diag "$@\n$code";
    }
}

done_testing;
