use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Variants;
use Data::HashMap::Shared;

# api.md 7.2: binary-safe strings, UTF-8 flag handling, inline (<= 7 bytes) and
# arena strings; decisions.md 7 / the brief: arena_used is the bytes currently
# allocated (power-of-two blocks >= 16), and the arena never fragments into failure.

my $ALL = join '', map chr, 0 .. 255;

sub flagged   { my $s = shift; utf8::upgrade($s); $s }
sub unflagged { my $s = shift; utf8::downgrade($s); $s }

# a string of exactly $n bytes, distinct per $tag
sub str_of { my ($n, $tag) = @_; my $s = "$tag:" . ('x' x $n); substr($s, 0, $n) }

# block bytes a string of $n bytes takes in the arena
sub block { my $n = shift; return 0 if $n <= 7; my $b = 16; $b *= 2 while $b < $n; $b }

for my $v (variants_where(sub { $_[0]{key} eq 'str' })) {
    subtest "binary string keys of $v->{name}" => guard {
        my $m = $v->{class}->new(undef, 1000);
        my $val = $v->{vals}[1];
        my @keys = ("", "\0", "\0\0", "a", "a\0", "\0a", "a\0b", $ALL, "\xff" x 7, "\xff" x 8,
            (map { chr } 0 .. 255));
        my %uniq; $uniq{$_} = 1 for @keys;
        ok($m->put($_, $val), 'put ' . length($_) . '-byte key') for grep { length > 1 } @keys;
        $m->put($_, $val) for keys %uniq;
        is($m->size, scalar(keys %uniq), 'every distinct byte string is its own key');
        for my $k (sort keys %uniq) {
            ok($m->exists($k), 'exists ' . join(' ', map { sprintf '%02x', ord } split //, substr($k, 0, 9)))
                or last;
        }
        my @got = $m->keys;
        is_deeply([sort @got], [sort keys %uniq], 'keys returns every byte string exactly');
        ok(!$m->exists("\0\0\0"), 'a missing NUL-string is missing');
        ok($m->remove(""), 'remove the empty key');
        ok(!$m->exists(""), 'empty key removed');
        ok($m->exists("\0"), '"\0" is still there');
    };
}

for my $v (variants_where(sub { $_[0]{val} eq 'str' })) {
    subtest "binary string values of $v->{name}" => guard {
        my $m = $v->{class}->new(undef, 1000);
        my $k = $v->{keys}[0];
        for my $val ("", "\0", "a\0b", "\0\0\0\0\0\0\0", "\0" x 8, $ALL, $ALL x 3, "\xff\xfe", (map { chr } 0 .. 255)) {
            $m->put($k, $val);
            my $got = $m->get($k);
            ok(defined $got && $got eq $val && !utf8::is_utf8($got),
                'round trip of a ' . length($val) . '-byte value') or last;
        }
        $m->put($k, "");
        ok(defined $m->get($k) && $m->get($k) eq '', 'empty value is defined and empty');
        ok($m->exists($k), 'a key with an empty value exists');
        is_deeply([$m->get_multi($k)], [""], 'get_multi returns the empty string, not undef');
    };
}

subtest 'UTF-8 flag of values round-trips' => guard {
    for my $v (variants_where(sub { $_[0]{val} eq 'str' })) {
        my $m = $v->{class}->new(undef, 100);
        my $k = $v->{keys}[1];
        my $smile = "smile \x{263A} and caf\x{e9}";            # wide characters: stored as UTF-8
        $m->put($k, $smile);
        my $got = $m->get($k);
        ok(utf8::is_utf8($got) && $got eq $smile, "$v->{name}: wide string comes back flagged and equal");
        my $latin = unflagged("caf\xe9");
        $m->put($k, $latin);
        $got = $m->get($k);
        ok(!utf8::is_utf8($got) && $got eq $latin, "$v->{name}: latin-1 bytes come back unflagged");
        my $up = flagged("abc");
        $m->put($k, $up);
        ok(utf8::is_utf8($m->get($k)), "$v->{name}: a flagged ASCII value keeps its flag (inline)");
        my $uplong = flagged("abcdefghijkl");
        $m->put($k, $uplong);
        ok(utf8::is_utf8($m->get($k)), "$v->{name}: a flagged ASCII value keeps its flag (arena)");
        $m->put($k, "plain");
        ok(!utf8::is_utf8($m->get($k)), "$v->{name}: ... and loses it when overwritten unflagged");
        # flag survives every read path
        $m->put($k, $smile);
        ok(utf8::is_utf8(($m->values)[0]), "$v->{name}: values keeps the flag");
        ok(utf8::is_utf8(($m->get_multi($k))[0]), "$v->{name}: get_multi keeps the flag");
        ok(utf8::is_utf8(($m->items)[1]), "$v->{name}: items keeps the flag");
        ok(utf8::is_utf8($m->to_hash->{ ($m->keys)[0] }), "$v->{name}: to_hash keeps the flag");
        my ($ek, $ev) = $m->each; $m->iter_reset;
        ok(utf8::is_utf8($ev), "$v->{name}: each keeps the flag");
        ok(utf8::is_utf8($m->swap($k, $smile)), "$v->{name}: swap returns the flag");
        ok(utf8::is_utf8($m->take($k)), "$v->{name}: take returns the flag");
        $m->put($k, $smile);
        # cas: expected compared by bytes, flag ignored; stored flag becomes desired's
        my $bytes = $smile; utf8::encode($bytes);
        ok($m->cas($k, $bytes, unflagged("new")), "$v->{name}: cas expected compared by bytes (flag ignored)");
        ok(!utf8::is_utf8($m->get($k)), "$v->{name}: stored flag is desired's flag");
        $m->put($k, "abc");
        ok($m->cas($k, flagged("abc"), flagged("def")), "$v->{name}: cas with a flagged ASCII expected matches");
        ok(utf8::is_utf8($m->get($k)), "$v->{name}: ... desired's flag stored");
        $m->put($k, $smile);
        my $ct = $m->cas_take($k, $bytes);
        ok(defined $ct && utf8::is_utf8($ct) && $ct eq $smile, "$v->{name}: cas_take compares bytes and returns the stored flag");
        $m->put($k, $smile);
        ok(utf8::is_utf8($m->get_or_set($k, "x")), "$v->{name}: get_or_set returns the stored flag");
    }
};

for my $v (variants_where(sub { $_[0]{key} eq 'str' })) {
    subtest "UTF-8 keys of $v->{name}" => guard {
        my $m = $v->{class}->new(undef, 100);
        my $val = $v->{vals}[0];
        my $val2 = $v->{vals}[3];
        # the flag is not part of identity for ASCII keys
        for my $ascii ("abc", "a longer ascii key", "", "1234567", "12345678") {
            $m->clear;
            ok($m->put(unflagged($ascii), $val), "put unflagged '$ascii'");
            ok($m->exists(flagged($ascii)), 'exists with the flag toggled');
            is("" . $m->get(flagged($ascii)), "$val", 'get with the flag toggled');
            ok(!$m->add(flagged($ascii), $val2), 'add with the flag toggled is rejected');
            ok($m->put(flagged($ascii), $val2), 'put with the flag toggled ...');
            is($m->size, 1, '... updates the same entry');
            ok($m->update(flagged($ascii), $val), 'update with the flag toggled hits');
            ok($m->cas(unflagged($ascii), $val, $val2), 'cas with the flag toggled hits');
            is("" . $m->take(flagged($ascii)), "$val2", 'take with the flag toggled hits');
            is($m->size, 0, '... and removes it');
            $m->put(flagged($ascii), $val);
            ok($m->remove(unflagged($ascii)), 'remove with the flag toggled hits');
            is(scalar($m->get_multi(unflagged($ascii))), undef, 'gone');
        }
        # non-ASCII: latin-1 bytes and UTF-8 bytes are different keys
        $m->clear;
        my $latin = unflagged("caf\xe9");
        my $utf = flagged("caf\xe9");      # same Perl string, stored as the bytes "caf\xc3\xa9"
        ok($m->put($latin, $val), 'put latin-1 key');
        ok(!$m->exists($utf), 'the UTF-8 encoding of the same text is a different key');
        ok($m->put($utf, $val2), 'put UTF-8 key');
        is($m->size, 2, 'two keys');
        my $encoded = "caf\xc3\xa9";
        ok($m->exists($encoded), 'the UTF-8 key is identified by its bytes (unflagged bytes hit it)');
        my @k = $m->keys;
        my ($kf) = grep { utf8::is_utf8($_) } @k;
        my ($ku) = grep { !utf8::is_utf8($_) } @k;
        ok(defined $kf && $kf eq $utf, 'keys returns the flagged key with its flag');
        ok(defined $ku && $ku eq $latin, 'keys returns the latin-1 key without a flag');
        my $h = $m->to_hash;
        is(scalar keys %$h, 1, 'to_hash: both keys are the Perl string "caf\xe9" (UTF-8 hash key)')
            ;
        my $wide = "\x{263A}\x{1F600}";
        ok($m->put($wide, $val), 'put a key with wide characters');
        ok($m->exists($wide), 'exists');
        my ($kw) = grep { $_ eq $wide } $m->keys;
        ok(defined $kw && utf8::is_utf8($kw), 'the wide key comes back flagged and equal');
        my %th = %{ $m->to_hash };
        ok(exists $th{$wide}, 'to_hash has the wide key as a character key');
        my ($ek) = grep { $_ eq $wide } do { my @e; while (my ($k) = $m->each) { push @e, $k } @e };
        ok(defined $ek && utf8::is_utf8($ek), 'each returns the flagged key');
    };
}

# Inline (<= 7 bytes) strings use no arena; longer strings take next_pow2(len)
# (minimum 16) and give it back when removed.
for my $v (variants_where(sub { $_[0]{arena} })) {
    subtest "arena accounting of $v->{name}" => guard {
        my $m = $v->{class}->new(undef, 1000, 0, 0, 0, 1 << 20);
        is($m->arena_used, 0, 'arena_used starts at 0');
        is($m->arena_cap, 1 << 20, 'arena_cap as requested');
        my $skey = $v->{key} eq 'str';
        my $sval = $v->{val} eq 'str';
        my $ikey = $v->{key} eq 'int' ? -1 : 'ik';
        my $ival = $v->{val} eq 'int' ? 5 : 'v';
        my $used = 0;
        my $i = 0;
        for my $len (0 .. 20, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 1000, 3000, 4096, 4097, 65536) {
            $i++;
            my $k = $skey ? str_of($len, "k$i") : $i;
            my $val = $sval ? str_of($len, "v$i") : $i;
            ok($m->put($k, $val), "put a $len-byte string") or next;
            $used += ($skey ? block($len) : 0) + ($sval ? block($len) : 0);
            is($m->arena_used, $used, "arena_used after a $len-byte string: $used");
            my $got = $m->get($k);
            is(defined $got ? length($got) : -1, $sval ? $len : length("$i"), "$len-byte value reads back");
            if ($skey) { ok(scalar(grep { $_ eq $k } $m->keys), "$len-byte key listed") }
        }
        # overwrite with a shorter / longer value changes the value's block
        if ($sval) {
            my $base = $m->arena_used;
            $m->put($ikey, 'z' x 100);
            is($m->arena_used, $base + 128, '100-byte value takes 128');
            $m->put($ikey, 'z' x 8);
            is($m->arena_used, $base + 16, 'overwritten with 8 bytes: 16');
            $m->put($ikey, 'z' x 7);
            is($m->arena_used, $base, 'overwritten with an inline value: nothing');
            $m->remove($ikey);
        }
        # remove everything: back to 0
        my @all = $m->keys;
        $m->remove($_) for @all;
        is($m->size, 0, 'all removed');
        is($m->arena_used, 0, 'arena_used back to 0 after removing every string');
        # take / cas / swap free the old blocks too
        my $k = $skey ? str_of(40, 'key') : 7;
        $m->put($k, $sval ? str_of(40, 'val') : 1);
        ok($m->arena_used > 0, 'arena in use');
        $m->take($k);
        is($m->arena_used, 0, 'take frees the key and value blocks');
        $m->put($k, $sval ? str_of(40, 'val') : 1);
        $m->clear;
        is($m->arena_used, 0, 'clear frees everything');
    };
}

# Arena full: soft failure, old value kept; a counter inserting a new string key
# croaks; after removing every entry any string that fits can be stored again.
for my $v (variants_where(sub { $_[0]{arena} })) {
    subtest "arena full on $v->{name}" => guard {
        my $m = $v->{class}->new(undef, 10000, 0, 0, 0, 4096);
        is($m->arena_cap, 4096, 'arena_cap 4096');
        my $skey = $v->{key} eq 'str';
        my $sval = $v->{val} eq 'str';
        my $mk = sub { my $i = shift; $skey ? sprintf('key-%012d', $i) : $i };     # 16-byte keys
        my $mv = sub { my $i = shift; $sval ? sprintf('val-%012d', $i) : $i };     # 16-byte values
        my ($stored, $i) = (0, 0);
        while ($i < 5000) {
            $i++;
            last unless $m->put($mk->($i), $mv->($i));
            $stored++;
        }
        ok($stored > 0 && $stored < 5000, "the arena filled after $stored 16-byte strings");
        ok($m->arena_used <= $m->arena_cap, 'arena_used within arena_cap');
        ok(!$m->exists($mk->($i)), 'the failed insert stored nothing');
        is($m->size, $stored, 'size is what was stored');
        ok(!$m->add($mk->($i), $mv->($i)), 'add fails softly');
        is($m->swap($mk->($i), $mv->($i)), undef, 'swap fails softly');
        is($m->get_or_set($mk->($i), $mv->($i)), undef, 'get_or_set fails softly');
        if ($sval) {
            my $old = $m->get($mk->(1));
            ok(!$m->put($mk->(1), 'y' x 2000), 'overwrite with a value that does not fit fails');
            is($m->get($mk->(1)), $old, '... old value kept');
            ok(!$m->update($mk->(1), 'y' x 2000), 'update that does not fit fails');
            is($m->get($mk->(1)), $old, '... old value kept');
            ok(!$m->cas($mk->(1), $old, 'y' x 2000), 'cas whose desired does not fit fails');
            is($m->get($mk->(1)), $old, '... old value kept');
            ok($m->put($mk->(1), 'short'), 'overwrite with an inline value works');
        }
        if ($v->{counters} && $skey) {
            dies_like(sub { $m->incr('a new long key that needs arena space') },
                qr/^\Q$v->{class}\E: increment failed/, 'incr of a new long key croaks when the arena is full');
            is($m->incr('inl'), 1, 'incr of a new inline key works');
        }
        # fragment: remove every other entry, then all of them
        $m->remove($mk->($_)) for grep { $_ % 2 } 1 .. $stored;
        $m->remove($_) for $m->keys;
        is($m->size, 0, 'empty again');
        is($m->arena_used, 0, 'arena_used 0');
        # the largest string that fits an empty arena of this map
        my $fresh = $v->{class}->new(undef, 10000, 0, 0, 0, 4096);
        my $fit = 0;
        for my $len (map { 1 << $_ } 3 .. 12) {
            my $ok = $skey ? $fresh->put('x' x $len, $sval ? 'v' : 1) : $fresh->put(1, 'x' x $len);
            $fresh->clear;
            $fit = $len if $ok;
        }
        ok($fit >= 2048, "a fresh 4096-byte arena holds a $fit-byte string");
        my $ok = $skey ? $m->put('x' x $fit, $sval ? 'v' : 1) : $m->put(1, 'x' x $fit);
        ok($ok, "after filling and emptying, a $fit-byte string fits again (no fragmentation)");
        # and again after a clear
        $m->clear;
        $m->put($mk->($_), $mv->($_)) for 1 .. 50;
        $m->clear;
        $ok = $skey ? $m->put('x' x $fit, $sval ? 'v' : 1) : $m->put(1, 'x' x $fit);
        ok($ok, "after clear, a $fit-byte string fits");
    };
}

# Big strings (up to several MiB, beyond the 512 KiB block size) keep their exact
# bytes while other blocks are freed, coalesced, given back to the OS and reused.
subtest 'large strings survive frees, page release and reuse' => guard {
    my $m = Data::HashMap::Shared::SS->new(undef, 1000, 0, 0, 0, 32 << 20);
    my $pat = sub { my ($tag, $len) = @_; my $s = pack('N*', map { ($_ * 2654435761 + $tag) & 0xffffffff } 0 .. $len / 4); substr($s, 0, $len) };
    my %want;
    my @sizes = (100_000, 600_000, 1 << 20, 3_000_000, 40_000, 2_000_000, 513 * 1024, 70_000);
    my ($i, $stored) = (0, 0);
    for my $round (1 .. 4) {
        for my $len (@sizes) {
            $i++;
            my $k = "big $i";
            my $v = $pat->($i, $len + $round);
            if ($m->put($k, $v)) { $want{$k} = $v; $stored++ }
        }
        # free most of them (drives the arena far below its peak: pages are released)
        my @k = sort keys %want;
        for my $j (0 .. $#k) { next if $j % 3 == 0; $m->remove($k[$j]); delete $want{ $k[$j] } }
        my $bad = grep { ($m->get($_) // '') ne $want{$_} } keys %want;
        is($bad, 0, "round $round: the " . scalar(keys %want) . ' surviving big strings are intact');
    }
    is($stored, 4 * @sizes, "every big string fitted the arena when stored ($stored)");
    $m->remove($_) for keys %want;
    is($m->arena_used, 0, 'arena empty');
    ok($m->put('huge', $pat->(99, 16 << 20)), 'a 16 MiB string fits the emptied 32 MiB arena');
    is($m->get('huge'), $pat->(99, 16 << 20), '... intact');
};

subtest 'get keyword: long values copied into the op target' => guard {
    # The keyword copies a long value straight into its TARG's buffer when it fits:
    # the same op, called with values of growing and shrinking lengths, UTF-8 on and
    # off, and with its own previous result as the key, returns each value intact.
    require Data::HashMap::Shared::SS;
    my $m = Data::HashMap::Shared::SS->new(undef, 1000);
    my @len = (8, 9, 15, 16, 17, 100, 40, 1000, 8, 64, 63, 65, 3, 0, 2000, 7);
    my %want;
    for my $i (0 .. $#len) {
        my $v = join '', map { chr(65 + ($i + $_) % 26) } 1 .. $len[$i];
        $v = "\x{263a}" . $v if $i % 3 == 1;
        $want{"k$i"} = $v;
        $m->put("k$i", $v);
    }
    my @got = eval q{
        use Data::HashMap::Shared::SS;
        my @g;
        for my $round (1 .. 2) {
            for my $i (0 .. $#len, reverse 0 .. $#len) { push @g, [ "k$i", shm_ss_get $m, "k$i" ] }
        }
        push @g, [ 'missing', shm_ss_get $m, 'missing' ];
        @g;
    } or die $@;
    my $bad = grep { !(defined $_->[1] ? exists $want{ $_->[0] } && $_->[1] eq $want{ $_->[0] } && (utf8::is_utf8($_->[1]) ? 1 : 0) == ($want{ $_->[0] } =~ /\x{263a}/ ? 1 : 0) : $_->[0] eq 'missing') } @got;
    is($bad, 0, scalar(@got) . ' gets through one op: values and UTF-8 flags intact');
    # a chain where each key is the op's previous result (the key may live in the TARG)
    my $a = 'a' x 40; my $b = 'b' x 50;
    $m->put($a, $b); $m->put($b, $a);
    my @chain = eval q{
        use Data::HashMap::Shared::SS;
        my ($k, @c) = ($a);
        for (1 .. 6) { my $r = \(shm_ss_get $m, $k); $k = $$r; push @c, $$r }
        @c;
    } or die $@;
    is_deeply(\@chain, [ ($b, $a) x 3 ], 'a key read from the previous result of the same op');
};

subtest 'arena_cap sizing' => guard {
    for my $v (@VARIANTS) {
        my @cases = $v->{arena}
            ? ([100, 0, 12800], [4, 0, 4096], [0, 0, 4096], [100, 65536, 65536], [100, 100, 4096],
               [1000, 0, 128000], [10, 5000, 5000])
            : ([100, 0, 0], [100, 65536, 0]);
        for my $c (@cases) {
            my ($me, $ac, $want) = @$c;
            my $m = $v->{class}->new(undef, $me, 0, 0, 0, $ac);
            is($m->arena_cap, $want, "$v->{name} new(undef, $me, 0, 0, 0, $ac) arena_cap $want");
        }
    }
};

done_testing;
