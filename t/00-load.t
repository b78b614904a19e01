use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Variants;

# Loading the base module alone loads the single XS object and with it all ten
# classes (api.md 1), but enables no keyword (api.md 2.1).
use Data::HashMap::Shared;

ok(defined $Data::HashMap::Shared::VERSION, 'base module has a $VERSION');
my $version = $Data::HashMap::Shared::VERSION;

for my $v (@VARIANTS) {
    my $c = $v->{class};
    ok($c->can('new'), "$c loaded by the base module (can new)");
    ok($c->can('get') && $c->can('put'), "$c has get/put without its own use");
}

# Every variant module exists as a file, loads, and carries the same $VERSION.
for my $v (@VARIANTS) {
    (my $file = "$v->{class}.pm") =~ s{::}{/}g;
    ok(eval { require $file; 1 }, "require $file") or diag $@;
    no strict 'refs';
    is(${"$v->{class}::VERSION"}, $version, "$v->{class} \$VERSION matches the base module");
}

# The base module enables no keyword: outside any `use Class` scope a keyword is
# an indirect method call and dies at run time.
{
    my $m = Data::HashMap::Shared::II->new(undef, 10);
    my $ok = eval q{ my $x = shm_ii_size $m; 1 };
    ok(!$ok, 'shm_ii_size is not a keyword after use Data::HashMap::Shared');
    like($@, qr/Can't locate object method "shm_ii_size" via package "Data::HashMap::Shared::II"/,
        '... it is parsed as an indirect method call');
}

# Loading any one variant module loads all ten classes (api.md 1).
for my $v ('SS', 'I16') {
    my $code = qq{use Data::HashMap::Shared::$v; print join ',', map { "Data::HashMap::Shared::\$_"->can('get') ? 1 : 0 } qw(I16 I32 II I16S I32S IS SI16 SI32 SI SS)};
    open(my $ph, '-|', $^X, (map { "-I$_" } grep { !ref } @INC), '-e', $code) or die "fork: $!";
    my $out = do { local $/; <$ph> };
    close $ph;
    is($out, join(',', (1) x 10), "use Data::HashMap::Shared::$v alone loads every class");
}

# The first entry of Changes names this version.
SKIP: {
    my $changes = "$FindBin::Bin/../Changes";
    skip 'no Changes file', 1 unless -f $changes;
    open my $fh, '<', $changes or die $!;
    my ($first) = grep { /^\d/ } <$fh>;
    my ($cv) = ($first // '') =~ /^(\S+)/;
    is($cv, $version, 'Changes starts with the module version');
}

done_testing;
