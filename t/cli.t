# bin/hashmap-shared: every command, its --help, its exit status and its errors.
use strict;
use warnings;
use Test::More;
use File::Temp ();
use JSON::PP ();
use Data::HashMap::Shared::II;
use Data::HashMap::Shared::SS;
use Data::HashMap::Shared::SI;

my $dir = File::Temp::tempdir(CLEANUP => 1);

# Runs the script; returns (exit status, stdout, stderr).
sub hs {
    my ($stdin, @args) = @_;
    my ($out, $err) = ("$dir/out", "$dir/err");
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDIN, '<', $stdin // '/dev/null' or die;
        open STDOUT, '>', $out or die;
        open STDERR, '>', $err or die;
        exec $^X, '-Mblib', 'bin/hashmap-shared', @args;
        exit 127;
    }
    waitpid $pid, 0;
    return ($? >> 8, slurp($out), slurp($err));
}
sub run { hs(undef, @_) }
sub slurp { open my $fh, '<:raw', $_[0] or die "$_[0]: $!"; local $/; scalar <$fh> }

# --- help -------------------------------------------------------------------------
for my $cmd (qw(stat dump load verify get put remove)) {
    my ($rc, $out) = run($cmd, '--help');
    is $rc, 0, "$cmd --help exits 0";
    like $out, qr/hashmap-shared $cmd\b/, "$cmd --help shows its usage";
    my ($rc2, $out2) = run('help', $cmd);
    is $out2, $out, "help $cmd is the same text";
}
{
    my ($rc, $out, $err) = run();
    is $rc, 2, 'no command: exit 2';
    like $err, qr/Usage:.*hashmap-shared stat/s, '... with the usage on stderr';
    ($rc, $out) = run('--help');
    is $rc, 0, '--help exits 0';
    like $out, qr/hashmap-shared load/, '... and lists the commands';
    ($rc, $out, $err) = run('frobnicate');
    is $rc, 2, 'unknown command: exit 2';
    like $err, qr/unknown command 'frobnicate'/, '... named';
    ($rc, $out, $err) = run('get', "$dir/x");
    is $rc, 2, 'missing argument: exit 2';
    like $err, qr/expected 2 arguments, got 1/, '... says what is missing';
}

# --- files that are not maps ------------------------------------------------------
{
    my ($rc, $out, $err) = run('stat', "$dir/none.shm");
    is $rc, 2, 'stat of a missing file: exit 2';
    like $err, qr/none\.shm: No such file/, '... with the system error';
    ok !-e "$dir/none.shm", '... and no file is created';

    open my $fh, '>:raw', "$dir/c.shm" or die;
    print $fh pack('V', 0x5348_4D31), "\0" x 4092;
    close $fh;
    ($rc, $out, $err) = run('stat', "$dir/c.shm");
    is $rc, 2, 'a file of the C implementation: exit 2';
    like $err, qr/written by the C implementation.*hashmap-shared-upgrade/, '... names the converter';

    open $fh, '>:raw', "$dir/junk" or die;
    print $fh "x" x 4096;
    close $fh;
    ($rc, $out, $err) = run('dump', "$dir/junk");
    is $rc, 2, 'a foreign file: exit 2';
    like $err, qr/not a Data::HashMap::Shared map file \(bad magic\)/, '... says so';

    open $fh, '>:raw', "$dir/tiny" or die;
    print $fh "HMSH";
    close $fh;
    ($rc, $out, $err) = run('stat', "$dir/tiny");
    like $err, qr/too small to be a map file \(4 bytes\)/, 'a truncated file is named as such';
}

# --- stat ---------------------------------------------------------------------------
{
    my $f = "$dir/stat.shm";
    my $m = Data::HashMap::Shared::SI->new($f, 1000, 500, 30, 25);
    $m->put("k$_", $_) for 1 .. 10;
    $m->remove('k1');
    my ($rc, $out) = run('stat', $f);
    is $rc, 0, 'stat exits 0';
    my %st = $out =~ /^([^:]+):\s+(.*)$/mg;
    is $st{Variant}, 'SI (string keys, int64 values), Data::HashMap::Shared::SI', 'variant';
    is $st{Entries}, 9, 'entries';
    is $st{'Max entries'}, $m->max_entries, 'max entries';
    is $st{Capacity}, $m->capacity . ' slots', 'capacity';
    is $st{Tombstones}, $m->tombstones, 'tombstones';
    is $st{'Mapped size'}, $m->mmap_size . ' bytes', 'mapped size';
    is $st{LRU}, 'at most 500 entries, 25% of promotions skipped', 'LRU options (lru_skip from the header)';
    is $st{'Default TTL'}, '30 s', 'TTL';
    is $st{Arena}, $m->arena_used . ' of ' . $m->arena_cap . ' bytes used', 'arena';
    is $st{Shard}, 'not sharded', 'shard';
    is $st{'Format version'}, 1, 'format version';
    like $st{Load}, qr/^\d+\.\d% of capacity$/, 'load';

    is $st{Lock}, 'free', 'an idle map: the lock is free';

    # the lock word (u32 at offset 256: bit 31 held, low bits the holder's pid), as a
    # writer that died or one that is running would leave it
    my $hold = sub {
        my ($pid) = @_;
        open my $fh, '+<:raw', $f or die;
        sysseek $fh, 256, 0;
        syswrite $fh, pack('V', 0x8000_0000 | $pid);
    };
    my $dead = fork // die;
    exit 0 unless $dead;
    waitpid $dead, 0;
    $hold->($dead);
    (undef, $out) = run('stat', $f);
    like $out, qr/^Lock:\s+held for writing by pid $dead \(not running: the next writer takes over\)$/m,
        'a dead holder is reported as not running';
    ($rc) = run('put', $f, 'after', 1);
    is $rc, 0, 'a put takes the lock over from the dead writer';
    (undef, $out) = run('stat', $f);
    like $out, qr/^Lock:\s+free$/m, '... which is free afterwards';
    like $out, qr/^Recoveries:\s+1$/m, '... and counted as a recovery';

    my $live = fork // die;
    if (!$live) { sleep 60; exit 0 }
    $hold->($live);
    (undef, $out) = run('stat', $f);
    like $out, qr/^Lock:\s+held for writing by pid $live \(running\)$/m, 'a live holder is reported as running';
    kill 'KILL', $live;
    waitpid $live, 0;

    my $ii = Data::HashMap::Shared::II->new("$dir/stat-ii.shm", 100);
    (undef, $out) = run('stat', "$dir/stat-ii.shm");
    like $out, qr/^Arena:\s+none \(integer keys and values\)$/m, 'integer maps have no arena';
    like $out, qr/^LRU:\s+off$/m, 'LRU off';
    like $out, qr/^Default TTL:\s+off$/m, 'TTL off';
}

# --- dump and load ------------------------------------------------------------------
my $json = JSON::PP->new;
sub lines { map { $json->decode($_) } split /\n/, $_[0] }
{
    my $f = "$dir/ss.shm";
    my $m = Data::HashMap::Shared::SS->new($f, 100, 0, 600);
    my %data = (
        "plain"          => "value",
        "caf\xe9"        => "latin-1 bytes \0\xff",
        "caf\x{e9}\x{263a}" => "wide \x{263a}",
        ""               => "empty key",
        "long " x 20     => "long " x 50,
    );
    $m->put($_, $data{$_}) for keys %data;
    $m->put_ttl('permanent', 'p', 0);
    my ($rc, $out) = run('dump', $f);
    is $rc, 0, 'dump exits 0';
    my ($head, @recs) = lines($out);
    is_deeply $head, { format => 'hashmap-shared-dump', version => 1, variant => 'SS',
        max_entries => $m->max_entries, max_size => 0, ttl => 600, lru_skip => 0,
        arena_cap => $m->arena_cap }, 'dump header';
    is scalar @recs, 6, 'one line per entry';
    unlike $out, qr/[^\x0a\x20-\x7e]/, 'the dump is printable ASCII';
    my %rec = map { $_->{k} => $_ } @recs;
    is $rec{"caf\x{e9}\x{263a}"}{ku}, 1, 'UTF-8 flag of a key recorded';
    is $rec{"caf\x{e9}\x{263a}"}{vu}, 1, 'UTF-8 flag of a value recorded';
    ok !exists $rec{"caf\xe9"}{ku}, 'a byte string has no flag';
    is $rec{"caf\xe9"}{v}, "latin-1 bytes \0\xff", 'bytes are kept, NUL and \xff included';
    is $rec{permanent}{ttl}, 0, 'a permanent entry has ttl 0';
    cmp_ok $rec{plain}{ttl}, '>', 590, 'an entry with a TTL has its remaining seconds';

    # load it into a new file: same entries, bytes, flags and TTLs
    my $dump = "$dir/ss.dump";
    ($rc) = run('dump', '-o', $dump, $f);
    is $rc, 0, 'dump -o';
    is slurp($dump), $out, '... writes the same dump';
    my $g = "$dir/ss-copy.shm";
    ($rc, $out) = run('load', '-i', $dump, $g);
    is $rc, 0, 'load exits 0';
    is $out, "loaded 6 entries into $g\n", '... and says how many';
    my $c = Data::HashMap::Shared::SS->new($g, 1);
    is $c->size, 6, 'the copy has every entry';
    is $c->max_entries, $m->max_entries, 'max_entries from the dump header';
    is $c->ttl, 600, 'ttl from the dump header';
    for my $k (keys %data) {
        my $v = $c->get($k);
        is $v, $data{$k}, "value of " . ($k =~ /[^\x20-\x7e]/ ? 'a non-ASCII key' : "'$k'");
        is !!utf8::is_utf8($v), !!utf8::is_utf8($data{$k}), '... with its UTF-8 flag';
    }
    my %keys = map { $_ => utf8::is_utf8($_) ? 1 : 0 } $c->keys;
    is $keys{"caf\x{e9}\x{263a}"}, 1, 'a key keeps its UTF-8 flag';
    is $keys{"caf\xe9"}, 0, 'a byte key stays bytes';
    is $c->ttl_remaining('permanent'), 0, 'a permanent entry stays permanent';
    cmp_ok $c->ttl_remaining('plain'), '>', 590, 'TTLs are carried over';

    # loading into an existing map of another variant is refused
    Data::HashMap::Shared::II->new("$dir/other.shm", 10);
    my $err;
    ($rc, $out, $err) = run('load', '-i', $dump, "$dir/other.shm");
    is $rc, 2, 'load into a map of another variant: exit 2';
    like $err, qr/is a II map, the dump is for SS/, '... says which';
}
{
    # II through stdin, with options overridden on the command line
    my $m = Data::HashMap::Shared::II->new("$dir/ii.shm", 100);
    $m->put($_, -$_ * 1_000_000_007) for 1 .. 50;
    $m->put(-9223372036854775807 - 1, 9223372036854775807);
    my ($rc, $out) = run('dump', "$dir/ii.shm");
    open my $fh, '>', "$dir/ii.dump" or die;
    print $fh $out;
    close $fh;
    ($rc, $out) = hs("$dir/ii.dump", 'load', '--max-entries', 1000, '--max-size', 200,
        '--ttl', 5, '--mode', '0640', "$dir/ii-copy.shm");
    is $rc, 0, 'load from stdin with options';
    my $c = Data::HashMap::Shared::II->new("$dir/ii-copy.shm", 1);
    is_deeply $c->to_hash, $m->to_hash, 'every integer, the extremes included';
    cmp_ok $c->max_entries, '>=', 1000, '--max-entries';
    is $c->max_size, 200, '--max-size';
    is $c->ttl, 5, '--ttl';
    is((stat "$dir/ii-copy.shm")[2] & 07777, 0640, '--mode');

    # bad input is named by its line
    open $fh, '>', "$dir/bad.dump" or die;
    print $fh $json->encode({ format => 'hashmap-shared-dump', version => 1, variant => 'II' }), "\n",
        qq({"k":1,"v":2}\n{"k":"x","v":3}\n);
    close $fh;
    my $err;
    ($rc, $out, $err) = run('load', '-i', "$dir/bad.dump", "$dir/bad.shm");
    is $rc, 2, 'a bad entry: exit 2';
    like $err, qr/line 3: key 'x' is not an integer/, '... names the line';
    ($rc, $out, $err) = hs('/dev/null', 'load', "$dir/empty.shm");
    like $err, qr/empty input/, 'empty input is refused';
    ok !-e "$dir/empty.shm", '... before creating the file';
    open $fh, '>', "$dir/nohead.dump" or die;
    print $fh qq({"k":1,"v":2}\n);
    close $fh;
    ($rc, $out, $err) = run('load', '-i', "$dir/nohead.dump", "$dir/nohead.shm");
    like $err, qr/line 1: not a dump header/, 'a dump without its header is refused';

    # a map too small for the dump
    ($rc, $out, $err) = run('load', '-i', "$dir/ii.dump", '--max-entries', 10, "$dir/small.shm");
    is $rc, 2, 'a dump larger than the map: exit 2';
    like $err, qr/line \d+: the map is full after \d+ entries/, '... says where it stopped';
}

# --- get, put, remove ---------------------------------------------------------------
{
    my $f = "$dir/kv.shm";
    my $m = Data::HashMap::Shared::SS->new($f, 100, 0, 100);
    my ($rc, $out, $err) = run('put', $f, 'greeting', 'hello world');
    is $rc, 0, 'put exits 0';
    is $m->get('greeting'), 'hello world', '... and stores the value';
    ($rc, $out) = run('get', $f, 'greeting');
    is $rc, 0, 'get exits 0';
    is $out, "hello world\n", '... and prints the value';
    ($rc, $out, $err) = run('get', $f, 'nothing');
    is $rc, 1, 'get of a missing key: exit 1';
    like $err, qr/nothing: not found/, '... says so';

    ($rc) = run('put', '-u', $f, "caf\xc3\xa9", "\xe2\x98\xba");
    is $rc, 0, 'put -u';
    my $cafe = "caf\x{e9}";
    utf8::upgrade($cafe);    # keys are their bytes: the UTF-8 encoding here
    is $m->get($cafe), "\x{263a}", "... stores characters";
    ok utf8::is_utf8($m->get($cafe)), "... with the UTF-8 flag";
    ($rc, $out) = run('get', $f, "caf\xc3\xa9");
    is $out, "\xe2\x98\xba\n", 'get prints a flagged value UTF-8 encoded';
    ($rc) = run('put', $f, "bytes\xe9", "v");
    is $m->get("bytes\xe9"), 'v', 'without -u arguments are bytes';

    ($rc) = run('put', '--ttl', 0, $f, 'forever', 1);
    is $m->ttl_remaining('forever'), 0, 'put --ttl 0: permanent';
    ($rc) = run('put', '--ttl', 50, $f, 'soon', 1);
    cmp_ok $m->ttl_remaining('soon'), '<=', 50, 'put --ttl 50';
    cmp_ok $m->ttl_remaining('soon'), '>', 40, '... sets that TTL';

    ($rc) = run('remove', $f, 'greeting');
    is $rc, 0, 'remove exits 0';
    ok !$m->exists('greeting'), '... and removes';
    ($rc, $out, $err) = run('remove', $f, 'greeting');
    is $rc, 1, 'remove of a missing key: exit 1';

    my $i = "$dir/kv-ii.shm";
    my $n = Data::HashMap::Shared::II->new($i, 100);
    ($rc) = run('put', $i, -5, 12345678901);
    is $n->get(-5), 12345678901, 'put on an integer map';
    ($rc, $out) = run('get', $i, -5);
    is $out, "12345678901\n", 'get on an integer map';
    ($rc, $out, $err) = run('put', $i, 'abc', 1);
    is $rc, 2, 'a non-integer key: exit 2';
    like $err, qr/key 'abc' is not an integer/, '... named';
    ($rc, $out, $err) = run('put', '--ttl', 5, $i, 1, 1);
    is $rc, 2, 'put --ttl on a map without TTL: exit 2';
    like $err, qr/requires a TTL-enabled map/, "... with the engine's words";
}

# --- verify -------------------------------------------------------------------------
SKIP: {
    skip 'Data::HashMap::Shared::II->can("verify") is false: the verify engine walk is not in this build', 4
        unless Data::HashMap::Shared::II->can('verify');
    my $f = "$dir/verify.shm";
    my $m = Data::HashMap::Shared::SS->new($f, 1000);
    $m->put("key $_", "value $_" x 3) for 1 .. 200;
    $m->remove("key $_") for 1 .. 50;
    undef $m;
    my ($rc, $out) = run('verify', $f);
    is $rc, 0, 'verify of a sound map exits 0';
    is $out, "$f: ok\n", '... and says ok';

    # break the live-entry count (u32 at offset 388 of the header page)
    open my $fh, '+<:raw', $f or die;
    sysseek $fh, 388, 0;
    sysread $fh, my $buf, 4;
    sysseek $fh, 388, 0;
    syswrite $fh, pack('V', unpack('V', $buf) + 7);
    close $fh;
    ($rc, $out) = run('verify', $f);
    is $rc, 1, 'verify of a damaged map exits 1';
    like $out, qr/problems? found/, '... and lists what it found';
}

done_testing;
