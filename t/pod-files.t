# The installed documentation (lib/, bin/) may name files that are not installed
# (eg/, bench/, doc/, t/, xt/, rust-core/, tools/) only if they exist in the
# distribution and the document says where to find them: the section FILES IN THE
# DISTRIBUTION of Data::HashMap::Shared, or a link to it.
use strict;
use warnings;
use Test::More;
use File::Find ();

sub slurp { open my $fh, '<:raw', $_[0] or die "$_[0]: $!"; local $/; scalar <$fh> }

my @docs = glob('bin/*');
File::Find::find(sub { push @docs, $File::Find::name if /\.(?:pm|pod)\z/ }, 'lib');

my $DIRS = qr/(?:eg|bench|doc|t|xt|rust-core|tools)/;
my $checked = 0;
for my $doc (sort @docs) {
    my $text = slurp($doc);
    my ($pod) = $text =~ /^(=(?:head1|encoding|pod)\b.*)/ms or next;
    my %refs;
    $refs{$1} = 1 while $pod =~ /F<($DIRS\/[^>]*)>/g;                        # F<eg/counters.pl>
    $refs{$1} = 1 while $pod =~ /^[ \t]+perl\b.*?\s($DIRS\/[\w.\/-]+)/mg;   # perl -Mblib eg/demo.pl
    next unless %refs;
    for my $ref (sort keys %refs) {
        (my $path = $ref) =~ s{/\z}{};
        ok -e $path, "$doc names $ref, which is in the distribution";
        $checked++;
    }
    like $pod, qr/FILES IN THE\s+DISTRIBUTION/, "$doc says where the files it names are (FILES IN THE DISTRIBUTION)";
}
cmp_ok $checked, '>', 10, "references checked: $checked";

done_testing;
