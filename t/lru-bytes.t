use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Variants;
use Data::HashMap::Shared::SS;
use Data::HashMap::Shared::II;

# An LRU map whose string space is full evicts from the LRU tail instead of refusing
# writes (decisions 17, POD "SIZING A MAP"): puts keep succeeding, stat_evictions
# counts, the structure verifies clean and the memory used stays within the budget;
# a value that could not fit even in an empty map is refused without evicting.

sub page { my ($key, $n) = @_; my $v = "$key:"; $v . ('.' x (($n // 1000) - length $v)) }
# 900 to 1099 bytes, from the key alone
sub kpage { page($_[0], 900 + unpack('%32C*', $_[0]) % 200) }

subtest 'the page cache of the issue keeps caching' => guard {
    my $path = tmppath('pages');
    my $m = Data::HashMap::Shared::SS->new($path, 1000, 1000, 0);
    is($m->arena_cap, 128_000, 'default string space: 128 bytes per entry');
    my $failed = 0;
    for my $i (1 .. 5000) {
        $failed++ unless shm_ss_put $m, "/page/$i", page("/page/$i");
    }
    is($failed, 0, 'every put of 5000 1 kB pages succeeded');
    cmp_ok($m->stat_evictions, '>=', 4800, 'older pages were evicted: ' . $m->stat_evictions);
    cmp_ok($m->size, '<=', 125, 'the size is what the string space holds: ' . $m->size);
    cmp_ok($m->arena_used, '<=', $m->arena_cap, 'within the string space');
    is($m->get("/page/$_"), page("/page/$_"), "recent page $_ is there") for 4995 .. 5000;
    ok(!defined $m->get('/page/1'), 'the oldest page is gone');
    is_deeply([ $m->verify ], [], 'verify is clean');
    is($m->mmap_size, -s $path, 'the file did not grow');
};

subtest 'several processes fill one LRU map with 1 kB values' => guard {
    for my $backing (qw(file anonymous)) {
        my $path = $backing eq 'file' ? tmppath('lru-bytes') : undef;
        my $m = Data::HashMap::Shared::SS->new($path, { max_entries => 2000, max_size => 2000, string_space => '256k' });
        my $size0 = $m->mmap_size;
        my @pids = map {
            my $p = $_;
            in_child(sub {
                my $c = $path ? Data::HashMap::Shared::SS->new($path, 1) : $m;
                my ($failed, $bad, $hits, $max_size) = (0, 0, 0, 0);
                for my $i (1 .. 3000) {
                    my $k = "p$p/" . ($i % 2 ? $i : int rand 400);    # new keys and re-reads
                    my $got = shm_ss_get $c, $k;
                    if (defined $got) {
                        $hits++;
                        $bad++ unless $got eq kpage($k);
                        next;
                    }
                    $failed++ unless shm_ss_put $c, $k, kpage($k);
                    my $s = shm_ss_size $c;
                    $max_size = $s if $s > $max_size;
                }
                return join ',', $failed, $bad, $hits, $max_size;
            });
        } 1 .. 4;
        for my $r (wait_all(@pids)) {
            my ($out, $err) = @$r;
            ok(!$err, "$backing: child finished") or diag $err;
            next if $err;
            my ($failed, $bad, $hits, $max_size) = split /,/, $out;
            is($failed, 0, "$backing: every put succeeded");
            is($bad, 0, "$backing: every value read belongs to its key");
            cmp_ok($max_size, '<=', 256, "$backing: the size stayed within what 256 KiB holds ($max_size)");
        }
        cmp_ok($m->stat_evictions, '>', 4000, "$backing: evictions counted: " . $m->stat_evictions);
        cmp_ok($m->arena_used, '<=', 256 * 1024, "$backing: arena_used within the budget");
        is($m->mmap_size, $size0, "$backing: mmap_size unchanged");
        is_deeply([ $m->verify ], [], "$backing: verify is clean");
        ok($m->put("after", page("after")), "$backing: a put after them succeeds");
        if ($path) {
            my $blocks = (stat $path)[12] * 512;
            cmp_ok($blocks, '<=', $m->mmap_size, "$backing: the file uses no more than its size on disk ($blocks)");
        }
    }
};

subtest 'a value that cannot fit even in an empty map is refused, nothing evicted' => guard {
    my $m = Data::HashMap::Shared::SS->new(undef, { max_entries => 100, lru => 1, string_space => '16k' });
    $m->put("key $_", page("key $_")) for 1 .. 10;
    my $ev = $m->stat_evictions;
    my $huge = 'x' x 20_000;
    ok(!$m->put('a long key here', $huge), 'put: false');
    ok(!$m->add('a long key here', $huge), 'add: false');
    ok(!defined $m->swap('a long key here', $huge), 'swap: undef');
    ok(!defined $m->get_or_set('a long key here', $huge), 'get_or_set: undef');
    is($m->set_multi('a long key here', $huge), 0, 'set_multi: 0 stored');
    ok(!$m->put('key 10', $huge), 'an overwrite: false');
    is($m->get('key 10'), page('key 10'), 'the old value is kept');
    is($m->stat_evictions, $ev, 'nothing was evicted');
    is($m->size, 10, 'every entry is still there');
    ok($m->put('big', 'y' x 16_384), 'a value as large as the whole string space fits (short key)');
    is($m->size, 1, 'after evicting everything else');
    is($m->stat_evictions, $ev + 10, 'counted');
    is_deeply([ $m->verify ], [], 'verify is clean');
};

subtest 'maps without LRU still refuse writes when the string space is full' => guard {
    my $m = Data::HashMap::Shared::SS->new(undef, { max_entries => 1000, string_space => '16k' });
    my $stored = grep { $m->put("key $_", page("key $_")) } 1 .. 100;
    cmp_ok($stored, '<', 20, "only $stored stored");
    is($m->size, $stored, 'size');
    is($m->stat_evictions, 0, 'nothing evicted');
    ok(!$m->put('key 1', 'z' x 9000), 'an overwrite that does not fit: false');
    is($m->get('key 1'), page('key 1'), 'old value kept');
};

subtest 'every variant with strings evicts for space' => guard {
    for my $v (variants_where(sub { $_[0]{arena} })) {
        my $cls = $v->{class};
        eval "require $cls" or die $@;
        my $m = $cls->new(undef, { max_entries => 5000, lru => 1, string_space => '8k' });
        my $mk = sub { $v->{key} eq 'str' ? "a key long enough for the arena $_[0]" : $_[0] };
        my $mv = sub { $v->{val} eq 'str' ? page("value $_[0]", 100) : $_[0] };
        my $failed = grep { !$m->put($mk->($_), $mv->($_)) } 1 .. 1000;
        is($failed, 0, "$v->{name}: every put succeeded");
        cmp_ok($m->stat_evictions, '>', 500, "$v->{name}: evictions");
        is_deeply($m->get($mk->(1000)), $mv->(1000), "$v->{name}: the last entry is there");
        is_deeply([ $m->verify ], [], "$v->{name}: verify is clean");
    }
};

subtest 'sharded LRU maps evict per shard' => guard {
    my $prefix = tmppath('sharded-lru');
    my $m = Data::HashMap::Shared::SS->new_sharded($prefix, 4, { max_entries => 1000, lru => 1, string_space => '64k' });
    is($m->arena_cap, 4 * 65536, 'string space per shard');
    my $failed = grep { !$m->put("/page/$_", page("/page/$_")) } 1 .. 2000;
    is($failed, 0, 'every put succeeded');
    cmp_ok($m->stat_evictions, '>', 1500, 'evictions counted');
    is($m->get('/page/2000'), page('/page/2000'), 'the last page is there');
    is_deeply([ $m->verify ], [], 'verify is clean');
    $m->unlink;
};

done_testing;
