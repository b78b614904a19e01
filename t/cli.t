# bin/hashmap-shared: every command, its --help, its exit status and its errors.
use strict;
use warnings;
use Test::More;
use File::Temp ();
use JSON::PP ();
use POSIX ();
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
    like $err, qr/\Ahashmap-shared get: expected 2 arguments, got 1\n/, '... says what is missing, after the prefix once';
    ($rc, $out, $err) = run('stat', '--frob', "$dir/x");
    is $rc, 2, 'unknown option: exit 2';
    like $err, qr/\Ahashmap-shared stat: Unknown option: frob\n/, '... named after the prefix once';

    ($rc, $out, $err) = run('--version');
    is $rc, 0, '--version exits 0';
    is $out, "hashmap-shared (Data::HashMap::Shared) $Data::HashMap::Shared::VERSION\n",
        '... and prints the version of the distribution';
}

# --- the manual: EXIT STATUS and DIAGNOSTICS ------------------------------------------
{
    my $pod = slurp('bin/hashmap-shared');
    my ($exit) = $pod =~ /^=head1 EXIT STATUS\n(.*?)^=head1/ms;
    ok $exit, 'the manual has an EXIT STATUS section';
    like $exit, qr/^=item C<$_>$/m, "... which explains exit status $_" for 0 .. 2;
    like $pod, qr/^=head1 DIAGNOSTICS$/m, '... and a DIAGNOSTICS section (t/diagnostics.t checks it)';
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
    is $st{'Format version'}, 2, 'format version';
    like $st{Load}, qr/^\d+\.\d% of capacity$/, 'load';

    is $st{Lock}, 'free', 'an idle map: the lock is free';

    # the lock word (u32 at offset 256: bit 31 held, bits 10-29 the holder's tag, 0-9
    # its reader slot; the slot at 4096 + 64 * slot records pid, depth, tag), as a writer
    # that died or one that is running would leave it
    my $hold = sub {
        my ($pid) = @_;
        open my $fh, '+<:raw', $f or die;
        for my $i (0 .. 1023) {
            sysseek $fh, 4096 + 64 * $i, 0;
            sysread $fh, my $s, 12;
            my ($p, undef, $tag) = unpack 'V V V', $s;
            next unless $p == $pid;
            sysseek $fh, 256, 0;
            syswrite $fh, pack('V', 0x8000_0000 | ($tag & 0xFFFFF) << 10 | $i);
            return $i;
        }
        die "no slot of pid $pid";
    };
    my $open_and = sub {    # a child that opens the map (claiming a slot), then runs $then
        my ($then) = @_;
        pipe my $r, my $w or die;
        my $pid = fork // die;
        if (!$pid) {
            close $r;
            my $m = Data::HashMap::Shared::SI->new($f, 1000);
            syswrite $w, "x";
            $then->();
            POSIX::_exit(0);
        }
        close $w;
        sysread $r, my $x, 1;
        return $pid;
    };
    my $dead = $open_and->(sub { POSIX::_exit(0) });    # dies with its slot taken
    waitpid $dead, 0;
    my $slot = $hold->($dead);
    (undef, $out) = run('stat', $f);
    like $out, qr/^Lock:\s+held for writing by pid $dead \(slot $slot, not running: the next writer takes over\)$/m,
        'a dead holder is reported as not running';
    ($rc) = run('put', $f, 'after', 1);
    is $rc, 0, 'a put takes the lock over from the dead writer';
    (undef, $out) = run('stat', $f);
    like $out, qr/^Lock:\s+free$/m, '... which is free afterwards';
    like $out, qr/^Recoveries:\s+1$/m, '... and counted as a recovery';

    my $live = $open_and->(sub { sleep 60 });
    $slot = $hold->($live);
    (undef, $out) = run('stat', $f);
    like $out, qr/^Lock:\s+held for writing by pid $live \(slot $slot, running\)$/m, 'a live holder is reported as running';
    kill 'KILL', $live;
    waitpid $live, 0;

    my $ii = Data::HashMap::Shared::II->new("$dir/stat-ii.shm", 100);
    (undef, $out) = run('stat', "$dir/stat-ii.shm");
    like $out, qr/^Arena:\s+none \(integer keys and values\)$/m, 'integer maps have no arena';
    like $out, qr/^LRU:\s+off$/m, 'LRU off';
    like $out, qr/^Default TTL:\s+off$/m, 'TTL off';
}

# --- stat --json, stat -p: every field, and the processes attached --------------------
{
    my $f = "$dir/json.shm";
    my $m = Data::HashMap::Shared::SS->new($f, 1000, 300, 60, 10);
    $m->put("k$_", "v$_") for 1 .. 20;
    $m->remove('k1');
    # a process holding the map open (a slot: it opened the map itself), one that
    # only inherited a handle (mapped, no slot before its first locked read)
    pipe my $r, my $w or die;
    my $opener = fork // die;
    if (!$opener) {
        close $w;
        my $own = Data::HashMap::Shared::SS->new($f, 1);
        my $other = Data::HashMap::Shared::SS->new($f, 1);
        sysread $r, my $buf, 1;
        POSIX::_exit(0);
    }
    my $heir = fork // die;
    if (!$heir) { close $w; sysread $r, my $buf, 1; POSIX::_exit(0) }
    close $r;
    for (1 .. 100) { last if slots_of($f, $opener) == 2; select undef, undef, undef, 0.1 }

    my ($rc, $out, $err) = run('stat', '--json', $f);
    is $rc, 0, 'stat --json exits 0' or diag $err;
    like $out, qr/\A\{.*\}\n\z/, '... one JSON object on one line';
    my $j = JSON::PP->new->decode($out);
    my $st = $m->stats;
    for my $field (qw(size max_entries capacity tombstones mmap_size arena_used arena_cap max_size ttl
                      evictions expired recoveries)) {
        is $j->{$field}, $st->{$field}, "stat --json $field is stats()'s";
        like $out, qr/"$field":\d+[,}]/, '... a JSON number';
    }
    is_deeply [map { $j->{$_} } qw(variant class key_type value_type format_version lru_skip shard_index shard_count)],
        ['SS', 'Data::HashMap::Shared::SS', 'string', 'string', 2, 10, 0, 1], 'the header\'s fields';
    like $j->{engine_version}, qr/^\d+\.\d+\.\d+$/, 'engine_version';
    ok JSON::PP::is_bool($j->{frozen}) && !$j->{frozen}, 'frozen: a JSON false';
    ok JSON::PP::is_bool($j->{shard_set}) && !$j->{shard_set}, 'shard_set: a JSON false';
    is $j->{load}, 0 + sprintf('%.4f', $st->{size} / $st->{capacity}), 'load: size / capacity';
    is_deeply $j->{lock}, { held => JSON::PP::false, pid => undef, slot => undef, running => undef,
        repair_pending => JSON::PP::false }, 'lock: free, null pid';
    my %p = map { $_->{pid} => $_ } @{ $j->{processes} };
    is $p{$opener}{handles}, 2, 'a process with two handles of its own: 2 handles';
    ok $p{$opener}{mapped} && $p{$opener}{running}, '... mapped, running';
    is $p{$opener}{pid_namespace}, 'same', '... in our PID namespace';
    ok $p{$heir} && $p{$heir}{mapped}, 'a child that inherited a handle: listed as mapping the file';
    ok $p{$$} && $p{$$}{handles} == 1, 'this test process: its handle';

    ($rc, $out) = run('stat', $f);
    like $out, qr/^Processes:\s+\d+ \(pids .*\b$opener\b.*; stat -p lists them\)$/m, 'stat names the processes';
    ($rc, $out) = run('stat', '-p', $f);
    like $out, qr/^Pid\s+Mapped\s+Handles\s+Read locks\s+State$/m, 'stat -p: a table of processes';
    like $out, qr/^$opener\s+yes\s+2\s+0\s+running$/m, '... with a line per process';

    close $w;
    waitpid $_, 0 for $opener, $heir;
    # gone without closing (_exit): their slots stay until reclaimed, reported so
    ($rc, $out) = run('stat', '--json', $f);
    %p = map { $_->{pid} => $_ } @{ JSON::PP->new->decode($out)->{processes} };
    ok $p{$opener} && !$p{$opener}{running} && !$p{$opener}{mapped}, 'a process that died holding its slots: not running';
    ok !$p{$heir}, 'one that died with no slot: not listed';

    # the lock as a dead writer left it: the writer word names the reader slot (and its
    # tag) of the process that opened the map above and died
    my ($dslot, $dtag);
    open my $fh, '+<:raw', $f or die;
    for my $i (0 .. 1023) {
        sysseek $fh, 4096 + 64 * $i, 0;
        sysread $fh, my $s, 12;
        my ($p, undef, $tag) = unpack 'V3', $s;
        ($dslot, $dtag) = ($i, $tag) if $p == $opener;
    }
    sysseek $fh, 256, 0;
    syswrite $fh, pack('V', 0x8000_0000 | ($dtag & 0xFFFFF) << 10 | $dslot);
    close $fh;
    ($rc, $out) = run('stat', '--json', $f);
    $j = JSON::PP->new->decode($out);
    is_deeply $j->{lock}, { held => JSON::PP::true, pid => $opener, slot => $dslot, running => JSON::PP::false,
        repair_pending => JSON::PP::false }, 'lock: held by a dead process';
    $m->put('take over', 1);

    # a shard set: totals, each shard, processes with their shards
    my $set = Data::HashMap::Shared::SI->new_sharded("$dir/jset", 4, 100);
    $set->put("k$_", $_) for 1 .. 40;
    ($rc, $out) = run('stat', '--json', "$dir/jset");
    $j = JSON::PP->new->decode($out);
    ok $j->{shard_set} && $j->{shards} == 4, 'a set: shard_set true, shards 4';
    is $j->{size}, 40, '... size is the total';
    is scalar @{ $j->{per_shard} }, 4, '... per_shard has each shard';
    is_deeply [map { $_->{index} } @{ $j->{per_shard} }], [0 .. 3], '... in order';
    my $sum = 0;
    $sum += $_->{size} for @{ $j->{per_shard} };
    is $sum, 40, "... whose sizes add up";
    is $j->{per_shard}[2]{file}, "$dir/jset.2", '... with its file';
    %p = map { $_->{pid} => $_ } @{ $j->{processes} };
    is_deeply $p{$$}{shards}, [0 .. 3], 'this process has every shard open';
    is $p{$$}{handles}, 4, '... one handle per shard';
}

# the reader slots of $pid in $file (through stat --json)
sub slots_of {
    my ($file, $pid) = @_;
    my (undef, $out) = run('stat', '--json', $file);
    my ($p) = grep { $_->{pid} == $pid } @{ JSON::PP->new->decode($out)->{processes} };
    return $p ? $p->{handles} : 0;
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
    my $canonical = JSON::PP->new->ascii->canonical;
    my @lines = split /\n/, $out;
    is_deeply \@lines, [map { $canonical->encode($json->decode($_)) } @lines],
        'each line is what JSON::PP writes (ASCII, keys in order)';
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
    # the same but for remaining TTLs, which may have ticked between the two dumps
    my $no_ttl = sub { $_[0] =~ s/"ttl":[1-9]\d*/"ttl":N/gr };
    is $no_ttl->(slurp($dump)), $no_ttl->($out), '... writes the same dump';
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

    # lines that are not JSON: named by their line, in JSON::PP's words without the
    # program's own file and line
    open $fh, '>', "$dir/badjson.dump" or die;
    print $fh $json->encode({ format => 'hashmap-shared-dump', version => 1, variant => 'II' }), "\n",
        qq({"k":1,"v":2}\n{"k":2,"v":\n);
    close $fh;
    ($rc, $out, $err) = run('load', '-i', "$dir/badjson.dump", "$dir/badjson.shm");
    is $rc, 2, 'a line that is not JSON: exit 2';
    like $err, qr/^hashmap-shared: line 3: not valid JSON: .*character offset \d+/, '... names the line and the offset';
    unlike $err, qr/ line \d+\.$|bin\/hashmap-shared/m, '... without "at .../bin/hashmap-shared line N."';
    is scalar(() = $err =~ /\n/g), 1, '... on one line';
    ($rc, $out, $err) = hs("$dir/badjson.dump", 'load', "$dir/badjson2.shm");    # from stdin too
    like $err, qr/^hashmap-shared: line 3: not valid JSON/, '... from standard input too';
    open $fh, '>', "$dir/badhead.dump" or die;
    print $fh qq({"format":"hashmap-shared-dump",\n);
    close $fh;
    ($rc, $out, $err) = run('load', '-i', "$dir/badhead.dump", "$dir/badhead.shm");
    like $err, qr/^hashmap-shared: line 1: not a dump header: not valid JSON: [^\n]*\n\z/,
        'a header that is not JSON: named, on one line';
    unlike $err, qr/ line \d+\.$/m, '... without the program\'s line';

    # a map too small for the dump
    ($rc, $out, $err) = run('load', '-i', "$dir/ii.dump", '--max-entries', 10, "$dir/small.shm");
    is $rc, 2, 'a dump larger than the map: exit 2';
    like $err, qr/line \d+: the map is full after \d+ entries/, '... says where it stopped';
}

# --- dump streams -------------------------------------------------------------------
# It reads the map an entry at a time as it writes: a dump whose reader stops reading
# holds no lock (a writer goes on), and what is removed meanwhile is not dumped (a
# snapshot would have everything).
{
    my $f = "$dir/stream.shm";
    my $m = Data::HashMap::Shared::SS->new($f, 30000);
    $m->put(sprintf('key %05d', $_), 'value ' . ('x' x 30)) for 1 .. 20000;
    my $pid = open my $from, '-|', $^X, '-Mblib', 'bin/hashmap-shared', 'dump', $f or die "dump: $!";
    my $head = <$from>;
    like $head, qr/"format":"hashmap-shared-dump"/, 'the dump started';
    # the dump now waits for us: the pipe is full
    my $wrote = eval {
        local $SIG{ALRM} = sub { die "stalled\n" };
        alarm 20;
        $m->put('written during the dump', 'yes') or die "put failed\n";
        $m->clear;
        alarm 0;
        1;
    };
    ok $wrote, 'a writer puts and clears while the dump is blocked in the middle' or diag $@;
    my $n = 0;
    $n++ while <$from>;
    close $from;
    is $?, 0, 'the dump ends with exit 0';
    cmp_ok $n, '<', 20000, "entries removed during the dump are not in it ($n of 20000 dumped)";
    cmp_ok $n, '>', 0, '... those read before are';
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
{
    my $f = "$dir/verify.shm";
    my $m = Data::HashMap::Shared::SS->new($f, 1000);
    $m->put("key $_", "value $_" x 3) for 1 .. 200;
    $m->remove("key $_") for 1 .. 50;
    undef $m;
    my ($rc, $out) = run('verify', $f);
    is $rc, 0, 'verify of a sound map exits 0';
    is $out, "$f: ok\n", '... and says ok';

    # break the live-entry count (u32 at offset 264 of the header page)
    open my $fh, '+<:raw', $f or die;
    sysseek $fh, 264, 0;
    sysread $fh, my $buf, 4;
    sysseek $fh, 264, 0;
    syswrite $fh, pack('V', unpack('V', $buf) + 7);
    close $fh;
    ($rc, $out) = run('verify', $f);
    is $rc, 1, 'verify of a damaged map exits 1';
    like $out, qr/problems? found/, '... and lists what it found';
}

# Adds $by to the live-entry count (u32 at offset 264 of the header page): a damage
# that verify reports as "size is N, the table holds M entries".
sub break_count {
    my ($f, $by) = @_;
    open my $fh, '+<:raw', $f or die "$f: $!";
    sysseek $fh, 264, 0;
    sysread $fh, my $buf, 4;
    sysseek $fh, 264, 0;
    syswrite $fh, pack('V', unpack('V', $buf) + $by);
    close $fh;
}

# --- frozen maps --------------------------------------------------------------------
{
    my $f = "$dir/frozen.shm";
    my $m = Data::HashMap::Shared::SI->new($f, 100);
    $m->put("k$_", $_) for 1 .. 5;
    $m->freeze;
    undef $m;
    my ($rc, $out, $err) = run('stat', $f);
    is $rc, 0, 'stat of a frozen map exits 0 (opened read-only)' or diag $err;
    like $out, qr/^Frozen:\s+yes$/m, '... and says it is frozen';
    like $out, qr/^Entries:\s+5$/m, '... with its entries';
    ($rc, $out) = run('get', $f, 'k3');
    is $out, "3\n", 'get on a frozen map';
    ($rc, $out) = run('verify', $f);
    is $out, "$f: ok\n", 'verify on a frozen map';
    ($rc, $out) = run('dump', $f);
    is scalar(() = $out =~ /\n/g), 6, 'dump of a frozen map: header and 5 entries';
    ($rc, $out, $err) = run('put', $f, 'new', 1);
    is $rc, 2, 'put on a frozen map: exit 2';
    like $err, qr/map is frozen \(read-only\)/, "... with the engine's words";
    ($rc, $out, $err) = run('remove', $f, 'k1');
    is $rc, 2, 'remove on a frozen map: exit 2';
    like $err, qr/map is frozen \(read-only\)/, '... likewise';
}

# --- sharded sets -------------------------------------------------------------------
{
    my $p = "$dir/set";
    my $m = Data::HashMap::Shared::SS->new_sharded($p, 4, 200, 0, 600);
    $m->put("key$_", "value$_") for 1 .. 60;
    $m->put("caf\x{e9}\x{263a}", "wide \x{263a}");
    $m->remove('key1');
    ok !-e $p && -e "$p.0" && -e "$p.3", 'a set of 4 files, no file named by the prefix';
    my @per = map { Data::HashMap::Shared::SS->new("$p.$_", 1)->size } 0 .. 3;

    my ($rc, $out, $err) = run('stat', $p);
    is $rc, 0, 'stat of a set prefix exits 0' or diag $err;
    my %st = $out =~ /^([^:\n]+):\s+(.*)$/mg;
    is $st{Shard}, 'set of 4 shards', 'the set is recognised, with its count';
    is $st{Entries}, 60, 'Entries is the total';
    is $st{'Max entries'}, $m->max_entries, 'Max entries: the total, as stats() of the set';
    is $st{Capacity}, $m->capacity . ' slots', 'Capacity: the total';
    is $st{Lock}, 'free (every shard)', 'every lock is free';
    for my $i (0 .. 3) {
        like $out, qr/^$i\s+$per[$i]\s/m, "a line for shard $i with its $per[$i] entries";
    }
    like $out, qr/^total\s+60\s+${\ $m->capacity }\s/m, 'a total line';

    ($rc, $out) = run('stat', "$p.2");
    like $out, qr/^Shard:\s+2 of 4$/m, 'one shard file by its name: shard 2 of 4';
    like $out, qr/^Entries:\s+$per[2]$/m, '... with its own entries';

    # get, put, remove go to the key's shard
    ($rc, $out) = run('get', $p, 'key7');
    is $out, "value7\n", 'get on a set';
    ($rc) = run('put', $p, 'added', 'yes');
    is $rc, 0, 'put on a set';
    is $m->get('added'), 'yes', '... stores where new_sharded finds it';
    ($rc) = run('remove', $p, 'key2');
    is $rc, 0, 'remove on a set';
    ok !$m->exists('key2'), '... removes it';
    ($rc, $out, $err) = run('get', $p, 'key2');
    is $rc, 1, 'get of a removed key on a set: exit 1';

    # dump records the shard count; load rebuilds a set from it
    ($rc, $out) = run('dump', '-o', "$dir/set.dump", $p);
    is $rc, 0, 'dump of a set';
    my ($head, @recs) = lines(slurp("$dir/set.dump"));
    is $head->{shards}, 4, 'the dump header records the shard count';
    is $head->{ttl}, 600, '... and the options';
    is scalar @recs, 60, 'every entry of every shard';
    ($rc, $out) = run('load', '-i', "$dir/set.dump", "$dir/copy");
    is $out, "loaded 60 entries into the shard set $dir/copy (4 shards)\n", 'load makes a set like the dump';
    my $c = Data::HashMap::Shared::SS->new_sharded("$dir/copy", 4, 1);
    is_deeply $c->to_hash, $m->to_hash, '... with the same entries';
    ($rc, $out, $err) = run('load', '--shards', 2, '-i', "$dir/set.dump", "$dir/copy");
    is $rc, 2, 'load into an existing set with another --shards: exit 2';
    like $err, qr/is a shard set of 4 shards, --shards says 2/, '... says so';
    ($rc, $out, $err) = run('load', '--shards', 3, '-i', "$dir/set.dump", "$dir/copy");
    is $rc, 0, '--shards 3 matches a set of 4 (rounded up as new_sharded does)' or diag $err;
    ($rc, $out) = run('load', '--shards', 5, '-i', "$dir/set.dump", "$dir/copy8");
    is $out, "loaded 60 entries into the shard set $dir/copy8 (8 shards)\n", 'load --shards 5 makes 8 shards';
    ok -e "$dir/copy8.7" && !-e "$dir/copy8.8", '... the files .0 to .7';
    ($rc, $out, $err) = run('load', '--shards', 4, '-i', "$dir/set.dump", "$dir/ss.shm");
    is $rc, 2, 'load --shards N into an existing single map: exit 2';
    like $err, qr/ss\.shm is a single map file, not a shard set \(--shards 4\)/, '... says so';
    my $c8 = Data::HashMap::Shared::SS->new_sharded("$dir/copy8", 8, 1);
    is_deeply $c8->to_hash, $m->to_hash, '... reshards every entry';
    ($rc, $out) = run('load', '--shards', 0, '-i', "$dir/set.dump", "$dir/one.shm");
    is $out, "loaded 60 entries into $dir/one.shm\n", 'load --shards 0: one file';
    is_deeply(Data::HashMap::Shared::SS->new("$dir/one.shm", 1)->to_hash, $m->to_hash, '... with every entry');
    ($rc) = run('load', '--shards', 2, '-i', "$dir/ss.dump", "$dir/from-one");
    ok -e "$dir/from-one.1" && !-e "$dir/from-one.2", 'a dump of one map loads into a new set of 2';

    # verify every shard; a damaged shard is named
    ($rc, $out) = run('verify', $p);
    is $rc, 0, 'verify of a sound set exits 0';
    is $out, "$p: ok\n", '... and says ok';
    undef $c;
    break_count("$dir/copy.3", 5);
    ($rc, $out) = run('verify', "$dir/copy");
    is $rc, 1, 'verify of a set with a damaged shard exits 1';
    like $out, qr/^\Q$dir\E\/copy: shard 3: size is \d+, the table holds \d+ entries$/m,
        '... and names the shard, as verify of a new_sharded handle does';
    unlike $out, qr/shard [012]:/, '... and no other shard';

    # a set with a shard file missing or out of place is refused
    rename "$dir/copy8.5", "$dir/copy8.5.away" or die;
    ($rc, $out, $err) = run('stat', "$dir/copy8");
    is $rc, 2, 'a set with a shard file missing: exit 2';
    like $err, qr/copy8\.5: missing from the shard set \(\S+copy8\.0 says it has 8 shards\)/, '... names it';
    rename "$dir/copy8.5.away", "$dir/copy8.5" or die;
    rename "$dir/copy8.6", "$dir/copy8.6.keep" or die;
    require File::Copy;
    File::Copy::copy("$dir/copy8.7", "$dir/copy8.6") or die;
    ($rc, $out, $err) = run('get', "$dir/copy8", 'key7');
    is $rc, 2, 'a shard file in the wrong place: exit 2';
    like $err, qr/copy8\.6: is shard 7 of 8, expected shard 6 of 8/, '... says which it is';

    # a frozen set: read commands work, writes are refused
    $m->freeze;
    ($rc, $out, $err) = run('stat', $p);
    like $out, qr/^Frozen:\s+yes$/m, 'stat of a frozen set';
    ($rc, $out) = run('get', $p, 'key7');
    is $out, "value7\n", 'get on a frozen set (each shard asked)';
    ($rc, $out) = run('verify', $p);
    is $out, "$p: ok\n", 'verify on a frozen set';
    ($rc, $out, $err) = run('put', $p, 'x', 'y');
    is $rc, 2, 'put on a frozen set: exit 2';
    like $err, qr/shard set is frozen \(read-only\)/, '... says so';
}

done_testing;
