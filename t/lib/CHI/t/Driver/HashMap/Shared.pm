package CHI::t::Driver::HashMap::Shared;
# CHI's driver conformance suite (CHI::t::Driver) run on CHI::Driver::HashMap::Shared,
# the way CHI runs it on its own drivers (CHI::t::Driver::FastMmap), plus the tests of
# what this driver adds: one LRU map per namespace that keeps caching when full.
use strict;
use warnings;
use CHI::Test;
use File::Temp qw(tempdir);
use base qw(CHI::t::Driver);

my $root_dir;

sub testing_driver_class { 'CHI::Driver::HashMap::Shared' }

# The maps expire entries themselves (put_ttl) when CHI passes expires_on_backend.
sub supports_expires_on_backend { 1 }

sub new_cache_options {
    my $self = shift;
    $root_dir ||= tempdir('chi-driver-hms-XXXX', TMPDIR => 1, CLEANUP => 1);
    return ($self->SUPER::new_cache_options(), root_dir => $root_dir);
}

sub test_one_lru_map_per_namespace : Tests {
    my ($self) = @_;
    my $dir = tempdir('chi-driver-hms-XXXX', TMPDIR => 1, CLEANUP => 1);
    my $a = $self->new_cache(root_dir => $dir, namespace => 'pages/a b', string_space => '64k', max_entries => 1000);
    my $b = $self->new_cache(root_dir => $dir, namespace => 'Other');
    ok(-f "$dir/pages+2fa+20b.shm", 'the namespace names its file');
    isa_ok($a->hms_map, 'Data::HashMap::Shared::SS');
    is($a->hms_map->arena_cap, 65536, 'string_space is passed to the map');
    is($a->hms_map->max_size, 1000, 'an LRU map bounded at max_entries');
    is($b->hms_map->arena_cap, 16 << 20, 'default string space: 16 MiB');
    $a->set(k => 'in a');
    $b->set(k => 'in b');
    is($a->get('k'), 'in a', 'namespaces do not collide');
    cmp_set([ $a->get_namespaces ], [ 'pages/a b', 'Other' ], 'get_namespaces lists the files');
    my $again = $self->new_cache(root_dir => $dir, namespace => 'pages/a b', string_space => '1m');
    is($again->hms_map->arena_cap, 65536, 'an existing file keeps its size');
    is($again->get('k'), 'in a', 'and its entries');
}

sub test_keeps_caching_when_full : Tests {
    my ($self) = @_;
    my $cache = $self->new_cache(
        root_dir     => tempdir('chi-driver-hms-XXXX', TMPDIR => 1, CLEANUP => 1),
        string_space => '64k',
    );
    my $page = 'x' x 1000;
    my $failed = grep { !eval { $cache->set("/page/$_", { n => $_, body => $page }); 1 } } 1 .. 2000;
    is($failed, 0, 'every set succeeded');
    cmp_ok($cache->hms_map->stat_evictions, '>', 1800, 'older entries were evicted');
    cmp_deeply($cache->get('/page/2000'), { n => 2000, body => $page }, 'the latest entry is there');
    ok(!defined $cache->get('/page/1'), 'the oldest is gone');
    is_deeply([ $cache->hms_map->verify ], [], 'the map verifies clean');
}

sub test_value_too_large : Tests {
    my ($self) = @_;
    my $cache = $self->new_cache(
        root_dir     => tempdir('chi-driver-hms-XXXX', TMPDIR => 1, CLEANUP => 1),
        string_space => '16k',
        on_set_error => 'die',
    );
    $cache->set(small => 'x' x 3000);
    is($cache->get('small'), 'x' x 3000, 'got small');
    throws_ok { $cache->set(large => 'x' x 20_000) }
        qr/error during cache set.*HashMap::Shared set failed: \d+ bytes do not fit in the string space/;
    is($cache->get('small'), 'x' x 3000, 'nothing was evicted for it');
}

sub test_shared_between_processes : Tests {
    my ($self) = @_;
    my $cache = $self->new_cleared_cache();
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        my $child = $self->new_cache();
        $child->set("from child", [ $$, 'a value' ]);
        require POSIX;
        POSIX::_exit(0);
    }
    waitpid $pid, 0;
    cmp_deeply($cache->get('from child'), [ $pid, 'a value' ], 'a value set by another process');
}

1;
