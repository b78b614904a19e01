use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Variants;
use RedisServer;
use Data::HashMap::Shared::SI;
use Data::HashMap::Shared::SS;
use Data::HashMap::Shared::II;

# Maps in Redis through the Perl API: the constructors take URLs with today's
# arguments; keywords, methods, batches, iteration, freeze and the error words work as
# on files; several processes count exactly. (t/methods.t runs its scenarios on both
# backends; rust-core/tests/remote*.rs test the engine side in depth.)

my $srv = RedisServer->start or plan skip_all => $RedisServer::WHY;

subtest 'keywords and methods on a URL' => guard {
    my $m = Data::HashMap::Shared::SI->new($srv->url('hits'), 1000);
    shm_si_incr $m, '/index.html' for 1 .. 3;
    is(shm_si_get($m, '/index.html'), 3, 'incr keyword');
    is((shm_si_incr_by $m, '/index.html', -10), -7, 'incr_by keyword');
    is($m->path, $srv->url('hits'), 'path is the URL');
    is($m->memfd, -1, 'no descriptor');
    ok($m->put('b', 2), 'put');
    is_deeply([ sort $m->keys ], [ '/index.html', 'b' ], 'keys');
    is_deeply($m->to_hash, { '/index.html' => -7, b => 2 }, 'to_hash');
    is_deeply([ $m->get_multi('b', 'nope', '/index.html') ], [ 2, undef, -7 ], 'get_multi');
    is($m->set_multi(c => 3, d => 4), 2, 'set_multi');
    is($m->remove_multi('c', 'd', 'e'), 2, 'remove_multi');
    my %seen;
    while (my ($k, $v) = $m->each) { $seen{$k} = $v }
    is_deeply(\%seen, { '/index.html' => -7, b => 2 }, 'each');
    my $c = $m->cursor;
    my $n = 0;
    $n++ while my ($k, $v) = $c->next;
    is($n, 2, 'cursor');
    ok($c->seek('b'), 'cursor seek');
    is(($c->next)[0], 'b', '... next returns the sought key');
    is($m->size, 2, 'size');
    my $st = $m->stats;
    is($st->{size}, 2, 'stats size');
    is($st->{mmap_size}, 0, 'no mapping');
    eval { $m->put_ttl('x', 1, 5) };
    like($@, qr/TTL-enabled/, 'TTL-only op on a map without TTL: the file words');
    eval { Data::HashMap::Shared::SS->new($srv->url('hits'), 10) };
    like($@, qr/variant mismatch \(file=9, expected=10\)/, 'variant mismatch');
    ok($m->unlink, 'unlink');
};

subtest 'strings keep their UTF-8 flags' => guard {
    my $m = Data::HashMap::Shared::SS->new($srv->url, 100, 50, 60);
    my $k = "caf\x{e9}";
    utf8::upgrade($k);
    ok($m->put($k, "\x{20ac}"), 'put utf8');
    my $v = $m->get($k);
    is($v, "\x{20ac}", 'value');
    ok(utf8::is_utf8($v), 'value flag kept');
    my ($pk) = $m->keys;
    ok(utf8::is_utf8($pk), 'key flag kept');
    is($m->ttl_remaining($k), 60, 'default TTL');
    my ($pk2, $pv) = $m->pop;
    is($pk2, $k, 'pop the LRU tail');
};

subtest 'sharded, frozen, read-only' => guard {
    my $url = $srv->url('set');
    my $s = Data::HashMap::Shared::II->new_sharded($url, 3, 1000);
    $s->put($_, $_ * 2) for 1 .. 100;
    is($s->size, 100, 'sharded size');
    my $again = eval { Data::HashMap::Shared::II->new_sharded($url, 8, 1000) };
    like($@, qr/shard set has 4 shards, opened with 8/, 'shape remembered');
    eval { Data::HashMap::Shared::II->new_readonly($url) };
    like($@, qr/not frozen/, 'new_readonly refuses a map that is not frozen');
    $s->freeze;
    is($s->readonly, 1, 'the freezing handle is read-only');
    eval { $s->put(1, 1) };
    like($@, qr/map is frozen \(read-only\)/, 'mutators refused');
    eval { Data::HashMap::Shared::II->new($url, 10) };
    like($@, qr/shard set has 4 shards, opened with 1/, 'a set is not a plain map');
    my $ro = Data::HashMap::Shared::II->new_readonly($url);
    is($ro->get(50), 100, 'read-only handle reads');
    is($ro->frozen, 1, 'frozen');
    ok($ro->unlink, 'unlink');
};

subtest 'several processes count exactly' => guard {
    my $url = $srv->url('count');
    my $m = Data::HashMap::Shared::SI->new($url, 1000);
    $m->incr('parent');
    my @pids;
    for my $c (1 .. 4) {
        my $pid = fork // die;
        if (!$pid) {
            my $ok = eval { $m->incr('total') for 1 .. 500; 1 };
            POSIX::_exit($ok ? 0 : 1);
        }
        push @pids, $pid;
    }
    for (@pids) { waitpid $_, 0; is($?, 0, 'child counted') }
    is($m->get('total'), 2000, 'exact total');
    is($m->incr('parent'), 2, "the parent's connection survived the children");
};

subtest 'no password in any output' => guard {
    my $m = Data::HashMap::Shared::SI->new($srv->url('pw'), 10);
    my $url = 'redis://:topsecret@127.0.0.1:1/x?connect_timeout=0.2';
    eval { Data::HashMap::Shared::SI->new($url, 10) };
    like($@, qr/redis: 127\.0\.0\.1:1: /, 'a connection error names the server');
    unlike($@, qr/topsecret/, '... not the password');
};

subtest 'the command-line tool moves a map between a file and Redis' => guard {
    my $dir  = tmpdir();
    my $file = "$dir/src.shm";
    my $m = Data::HashMap::Shared::SS->new($file, 100, 0, 3600);
    $m->put(a => 1);
    $m->put_ttl(b => 2, 100);
    my $v = "\x{20ac}";
    $m->put(c => $v);
    my $cli = "$^X -Mblib $FindBin::Bin/../bin/hashmap-shared";
    my $url = $srv->url('moved');
    like(`$cli dump $file | $cli load '$url' 2>&1`, qr/loaded 3 entries/, 'dump FILE | load URL');
    my $r = Data::HashMap::Shared::SS->new($url, 1);
    is($r->get('a'), 1, 'entry moved');
    is($r->get('c'), $v, 'UTF-8 value moved with its flag');
    my $left = $r->ttl_remaining('b');
    ok($left > 90 && $left <= 100, "remaining TTL moved ($left)");
    like(`$cli stat '$url'`, qr/Variant:\s+SS .*Entries:\s+3/s, 'stat URL');
    is(`$cli get '$url' a`, "1\n", 'get URL');
    like(`$cli verify '$url'`, qr/: ok$/, 'verify URL');
    my $back = "$dir/back.shm";
    like(`$cli dump '$url' | $cli load $back 2>&1`, qr/loaded 3 entries/, 'dump URL | load FILE');
    my $b = Data::HashMap::Shared::SS->new($back, 1);
    is($b->get('c'), $v, '... and back');
    my $pw = 'redis://:hunter2@127.0.0.1:1/x?connect_timeout=0.2';
    my $out = `$cli stat '$pw' 2>&1`;
    unlike($out, qr/hunter2/, 'no password in the tool\'s output');
};

done_testing;
