use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Variants;
use Data::HashMap::Shared;

# Constructor arguments (api.md 3.1, 3.8): usage errors, range checks, coercion,
# LRU and TTL arguments accepted.

for my $v (@VARIANTS) {
    my $c = $v->{class};
    subtest "new of $v->{name}" => guard {
        dies_like(sub { $c->new() }, qr/^Usage: \Q$c\E::new\(class, path_sv, max_entries/, 'no arguments -> usage');
        dies_like(sub { $c->new(undef) }, qr/^Usage: \Q$c\E::new\(/, 'no max_entries -> usage');
        dies_like(sub { $c->new(undef, 10, 0, 0, 0, 0, 0600, 'extra') }, qr/^Usage: \Q$c\E::new\(/, 'too many -> usage');
        dies_like(sub { $c->new(undef, 4294967296) },
            qr/^\Q$c\E: max_entries 4294967296 exceeds the maximum of 4294967295/, 'max_entries 2**32 -> range croak');
        dies_like(sub { $c->new(undef, -1) },
            qr/^\Q$c\E: max_entries 18446744073709551615 exceeds the maximum of 4294967295/, 'negative max_entries reads as unsigned');
        dies_like(sub { $c->new(undef, 10, 0, 0, 4294967296) },
            qr/^\Q$c\E: lru_skip 4294967296 exceeds the maximum of 4294967295/, 'lru_skip 2**32 -> range croak');
        dies_like(sub { $c->new(undef, 10, 4294967296) },
            qr/^\Q$c\E: (?:lru_max 4294967296 exceeds the maximum of 4294967295|.*not supported)/, 'max_size 2**32 refused');
        dies_like(sub { $c->new(undef, 10, 0, 4294967296) },
            qr/^\Q$c\E: (?:ttl_default 4294967296 exceeds the maximum of 4294967295|.*not supported)/, 'ttl 2**32 refused');
        is($c->new(undef, 10, 100)->max_size, 100, 'LRU (max_size > 0) is accepted');
        is($c->new(undef, 10, 0, 60)->ttl, 60, 'TTL (ttl > 0) is accepted');
        is($c->new_memfd('x', 10, 100)->max_size, 100, 'new_memfd with LRU too');
        is($c->new_memfd('x', 10, 0, 60)->ttl, 60, 'new_memfd with TTL too');

        my $m = $c->new(undef, 100.9);
        is($m->max_entries, 112, 'a float max_entries truncates (100.9 -> 100)');
        my @w = warnings_of(sub { $m = $c->new(undef, undef) });
        ok(scalar(grep /uninitialized/, @w), 'undef max_entries warns');
        is($m->max_entries, 14, '... and reads as 0');
        my $nonnum = "100abc";    # a fresh SV per variant: Perl warns once per SV
        @w = warnings_of(sub { $m = $c->new(undef, $nonnum) });
        ok(scalar(grep /isn't numeric/, @w), 'non-numeric max_entries warns');
        is($m->max_entries, 112, '... and reads as 100');
        $m = $c->new(undef, "0 but true");
        is($m->max_entries, 14, '"0 but true"');
        my $n = $c->new(undef, 10, 0, 0, 0);
        is($n->max_size, 0, 'explicit zeros are the defaults');
        is($n->ttl, 0, 'ttl 0');
        ok($c->new(undef, 10, 0, 0, 50), 'lru_skip without LRU is accepted');

        dies_like(sub { $c->new_from_fd() }, qr/^Usage: \Q$c\E::new_from_fd\(/, 'new_from_fd() -> usage');
        dies_like(sub { $c->new_memfd() }, qr/^Usage: \Q$c\E::new_memfd\(/, 'new_memfd() -> usage');
    };
}

# a constructor called through a subclass blesses into it (also new_memfd / new_from_fd)
{
    no strict 'refs';
    @{'My::SS::ISA'} = ('Data::HashMap::Shared::SS');
}
my $s = My::SS->new(undef, 10);
is(ref $s, 'My::SS', 'new blesses into the invocant class');
my $mf = My::SS->new_memfd('sub', 10);
is(ref $mf, 'My::SS', 'new_memfd blesses into the invocant class');
is(ref(My::SS->new_from_fd($mf->memfd)), 'My::SS', 'new_from_fd blesses into the invocant class');

done_testing;
