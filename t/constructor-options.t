use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Variants;

# The named options of new, new_memfd and new_sharded (POD "CONSTRUCTORS"): a hash
# reference as the last argument gives the sizing arguments that the positions before
# it did not; string_space sizes the string storage in bytes (k/m/g suffixes); lru => 1
# makes an LRU map bounded at max_entries; the positional forms are unchanged.

require Data::HashMap::Shared::SS;
require Data::HashMap::Shared::II;
require Data::HashMap::Shared::SI;
my $SS = 'Data::HashMap::Shared::SS';

# Every constructor that takes sizing arguments, as (name, code taking the arguments
# after the path / name / shard count).
my @CTORS = (
    [ new          => sub { $SS->new(undef, @_) } ],
    [ 'new (file)' => sub { $SS->new(tmppath('opts'), @_) } ],
    [ new_memfd    => sub { $SS->new_memfd('opts', @_) } ],
    [ new_sharded  => sub { $SS->new_sharded(tmppath('opts-sharded'), 1, @_) } ],
);

for my $c (@CTORS) {
    my ($name, $make) = @$c;
    subtest "$name: named options" => guard {
        my $m = $make->({ max_entries => 1000, max_size => 500, ttl => 60, lru_skip => 10, string_space => '1m' });
        is($m->max_entries, 1792, 'max_entries (rounded up as positional)');
        is($m->max_size, 500, 'max_size');
        is($m->ttl, 60, 'ttl');
        is($m->arena_cap, 1 << 20, "string_space '1m' is 1 MiB");

        $m = $make->(1000, { string_space => 65536 });
        is($m->max_entries, 1792, 'max_entries by position, the rest by name');
        is($m->arena_cap, 65536, 'string_space in bytes');
        is($m->max_size, 0, 'no LRU unless asked');

        $m = $make->({ string_space => '2m', lru => 1 });
        is($m->arena_cap, 2 << 20, 'string_space alone');
        is($m->max_size, 16384, 'lru => 1: bounded at max_entries, which string_space implies (2m / 128)');
        cmp_ok($m->max_entries, '>=', 16384, 'max_entries from string_space');

        $m = $make->({ max_entries => 100, ttl => undef, string_space => undef, lru => 0 });
        is($m->ttl, 0, 'undef means the default');
        is($m->arena_cap, 12800, 'default string space: 128 bytes per entry');
        is($m->max_size, 0, 'lru => 0');

        is($make->({ max_entries => 100, string_space => '8k' })->arena_cap, 8192, 'k suffix');
        is($make->({ max_entries => 100, string_space => '1G' })->arena_cap, 1 << 30, 'G suffix (the file is sparse)');
        is($make->({ max_entries => 100, string_space => 100 })->arena_cap, 4096, 'at least 4096 bytes');

        $m = $make->(100, 100, 0, 0, 0);
        is($m->max_size, 100, 'the positional form still works');
    };

    subtest "$name: bad options croak, naming the problem" => guard {
        my $cls = qr/^Data::HashMap::Shared::SS: /;
        dies_like(sub { $make->({ max_entries => 10, colour => 1 }) },
            qr/${cls}unknown option 'colour' \(known: max_entries, max_size, lru, ttl, lru_skip, string_space/, 'unknown option');
        dies_like(sub { $make->(10, { max_entries => 10 }) }, qr/${cls}max_entries given twice/, 'given twice');
        dies_like(sub { $make->({ ttl => 5 }) }, qr/${cls}max_entries is required \(or string_space/, 'no size at all');
        dies_like(sub { $make->({ max_entries => 'many' }) }, qr/${cls}option max_entries: 'many' is not a non-negative integer/, 'not a number');
        dies_like(sub { $make->({ max_entries => -1 }) }, qr/${cls}option max_entries: -1 is negative/, 'negative');
        dies_like(sub { $make->({ max_entries => 2**32 }) }, qr/${cls}max_entries 4294967296 exceeds the maximum of 4294967295/, 'too large');
        dies_like(sub { $make->({ max_entries => 10, string_space => '4t' }) },
            qr/${cls}option string_space: '4t' is not a size \(bytes, or a number followed by k, m or g\)/, 'bad size suffix');
        dies_like(sub { $make->({ max_entries => 10, string_space => '4g' }) },
            qr/${cls}string_space 4294967296 exceeds the maximum of 4294967295/, 'string space above 4 GiB - 1');
        dies_like(sub { $make->({ max_entries => 10, lru => 1, max_size => 5 }) },
            qr/${cls}options lru and max_size both given/, 'lru and max_size');
    };
}

subtest 'file_mode: by name for files, unknown for memfds' => guard {
    my $path = tmppath('mode');
    $SS->new($path, { max_entries => 10, file_mode => 0640 });
    is((stat $path)[2] & 07777, 0640, 'file_mode by name');
    dies_like(sub { $SS->new_memfd('m', { max_entries => 10, file_mode => 0600 }) },
        qr/unknown option 'file_mode' \(known: max_entries, max_size, lru, ttl, lru_skip, string_space\)/, 'not for new_memfd');
    dies_like(sub { $SS->new(undef, { max_entries => 10, file_mode => 010000 }) },
        qr/file_mode 4096 exceeds the maximum of 4095/, 'not a permission mode');
};

subtest 'attaching ignores the options, as it ignores positional sizes' => guard {
    my $path = tmppath('attach');
    my $a = $SS->new($path, { max_entries => 100, string_space => '64k', lru => 1 });
    my $b = $SS->new($path, { max_entries => 5, string_space => '1m' });
    is($b->arena_cap, 65536, 'the header wins');
    is($b->max_size, 100, 'LRU as created');
};

subtest 'integer variants ignore string_space; it implies no max_entries there' => guard {
    my $m = Data::HashMap::Shared::II->new(undef, { max_entries => 100, string_space => '1m' });
    is($m->arena_cap, 0, 'no string space');
    dies_like(sub { Data::HashMap::Shared::II->new(undef, { string_space => '1m' }) },
        qr/^Data::HashMap::Shared::II: max_entries is required at /, 'max_entries is required');
    is(Data::HashMap::Shared::SI->new(undef, { string_space => '64k' })->arena_cap, 65536, 'SI has string keys');
};

subtest 'a blessed hash is not an options hash' => guard {
    my $obj = bless {}, 'Some::Object';
    dies_like(sub { no warnings; $SS->new(undef, $obj) }, qr/max_entries \d+ exceeds the maximum/, 'read as a number, as before');
};

done_testing;
