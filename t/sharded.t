#!/usr/bin/perl
# new_sharded (api.md 3.2, 6.8, 7.7; decisions 2 and 4): the same answers as a single
# map for every operation, routing over all shards, recorded shape, parallel writes
# on different shards, cursors and each chaining shards, freeze of a set.
use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Variants;
use OpTable;
use Data::HashMap::Shared::II;   # loads every class

# A key of the variant from a number (distinct numbers give distinct keys).
sub key_of { my ($v, $i) = @_; $v->{key} eq 'int' ? narrow($v->{kbits}, $i * 7919) : "key-$i" . ('x' x ($i % 11)) }
sub val_of { my ($v, $i) = @_; $v->{val} eq 'int' ? narrow($v->{vbits}, $i * 31 - 500) : "val-$i" . ('y' x ($i % 13)) }

sub sorted_pairs {
    my @l = @_;
    my @p;
    while (my ($k, $x) = splice @l, 0, 2) { push @p, "$k\0$x" }
    return [sort @p];
}

# Same answers from a sharded map and a single map for the same operations.
for my $v (@VARIANTS) {
    for my $mode (qw(method kw)) {
        subtest "$v->{name} ($mode): every operation answers like a single map" => guard {
            my $op = OpTable::ops($v, $mode);
            my $one = $v->{class}->new(undef, 400, 0, 100);
            my $set = $v->{class}->new_sharded(tmppath('set'), 4, 400, 0, 100);
            my @both = ($one, $set);
            my $same = sub {
                my ($what, $name, @args) = @_;
                my $f = $op->{$name} // sub { my $m = shift; $m->$name(@_) };
                my @r = map { my $m = $_; [ $f->($m, @args) ] } @both;
                # a remaining TTL is whole seconds counted from two clocks reads (the put
                # and the read of each map): a second boundary between the two maps' calls
                # makes them one apart
                my $ttl_at = { ttl_remaining => 0, get_with_ttl => 1 }->{$name};
                if (defined $ttl_at && @{ $r[0] } > $ttl_at && @{ $r[1] } > $ttl_at
                    && defined $r[0][$ttl_at] && defined $r[1][$ttl_at] && abs($r[1][$ttl_at] - $r[0][$ttl_at]) <= 1) {
                    $r[1][$ttl_at] = $r[0][$ttl_at];
                }
                is_deeply($r[1], $r[0], "$what: $name(@{[ map { defined ? $_ : 'undef' } @args ]})");
            };
            my @keys = map { key_of($v, $_) } 1 .. 150;
            for my $i (0 .. $#keys) {
                $same->('insert', 'put', $keys[$i], val_of($v, $i)) if $i % 3;
                $same->('insert', 'add', $keys[$i], val_of($v, $i + 1)) if $i % 2;
            }
            for my $i (0 .. $#keys) {
                my $k = $keys[$i];
                $same->('read', $_, $k) for qw(get exists ttl_remaining);
                next if $i % 5;
                $same->('write', 'update', $k, val_of($v, $i + 7));
                $same->('write', 'swap', $k, val_of($v, $i + 8));
                $same->('write', 'cas', $k, val_of($v, $i + 8), val_of($v, $i + 9));
                $same->('write', 'get_or_set', $k, val_of($v, 1));
                $same->('write', 'put_ttl', $k, val_of($v, $i), 50);
                $same->('write', 'set_ttl', $k, 0);
                $same->('write', 'touch', $k);
                $same->('write', 'persist', $k);
                if ($v->{counters}) {
                    $same->('counter', $_, $k) for qw(incr decr);
                    $same->('counter', $_, $k, 1234) for qw(incr_by max min);
                }
                $same->('remove', 'cas_take', $k, val_of($v, 99_999)) if $i % 10;
                $same->('remove', 'take', $k) if $i % 20 == 0;
                $same->('remove', 'remove', $k) if $i % 15 == 0;
            }
            $same->('batch', 'set_multi', map { ($keys[$_], val_of($v, $_ * 3)) } 100 .. 120);
            $same->('batch', 'get_multi', @keys[90 .. 130]);
            $same->('batch', 'remove_multi', @keys[95 .. 105]);
            $same->('batch', 'get_with_ttl', $keys[1]);
            $same->('size', $_) for qw(size ttl flush_expired max_size stat_evictions stat_expired);
            $same->('scan', 'flush_expired_partial', 100_000);
            $same->('reserve', 'reserve', 300);
            $same->('reserve', 'reserve', 100_000);
            my @each = map {
                my $m = $_;
                my @all;
                while (my ($k, $x) = $m->each) { push @all, $k, $x }
                $m->iter_reset;
                sorted_pairs(@all);
            } @both;
            is_deeply($each[1], $each[0], 'each: same entries');
            is_deeply(sorted_pairs($op->{items}->($set)), sorted_pairs($op->{items}->($one)), 'items: same entries');
            is_deeply([sort map { "$_" } $op->{keys}->($set)], [sort map { "$_" } $op->{keys}->($one)], 'keys');
            is_deeply([sort map { "$_" } $op->{values}->($set)], [sort map { "$_" } $op->{values}->($one)], 'values');
            is_deeply($set->to_hash, $one->to_hash, 'to_hash');
            # pop / shift / drain remove entries in another order: each removed entry
            # must be one the single map holds, with the same value.
            for my $name (qw(pop shift)) {
                my ($k, $x) = $op->{$name}->($set);
                is($op->{take}->($one, $k), $x, "$name: an entry of the map, with its value");
            }
            my @d = $op->{drain}->($set, 7);
            is(scalar @d, 14, 'drain 7');
            while (my ($k, $x) = splice @d, 0, 2) { is($one->take($k), $x, "drained $k") }
            is($set->size, $one->size, 'same size after removals');
            $same->('clear', 'clear');
            is($set->size, 0, 'clear empties every shard');
            my @none = $op->{pop}->($set);
            is(scalar @none, 0, 'pop on an empty set');
        };
    }
}

subtest 'routing spreads keys over every shard; each shard file is a map of its own' => guard {
    my $prefix = tmppath('spread');
    my $set = Data::HashMap::Shared::II->new_sharded($prefix, 8, 1000);
    $set->put($_, $_) for 1 .. 4000;
    my $sum = 0;
    for my $i (0 .. 7) {
        my $m = Data::HashMap::Shared::II->new("$prefix.$i", 1000);
        cmp_ok($m->size, '>', 250, "shard $i holds its share");
        $sum += $m->size;
        my @k = $m->keys;
        is(scalar(grep { $set->get($_) != $_ } @k), 0, "shard $i: its keys are found through the set");
    }
    is($sum, 4000, 'every key in exactly one shard');
    is($set->size, 4000, 'size sums the shards');
    ok(!-e "$prefix.8", 'no ninth file');
    is($set->path, $prefix, 'path is the prefix');
    is($set->memfd, -1, 'memfd is -1');
};

subtest 'shard counts, aggregated statistics, errors' => guard {
    my $prefix = tmppath('count');
    my $set = Data::HashMap::Shared::SS->new_sharded($prefix, 3, 100, 0, 30);
    ok(-e "$prefix.$_", "file $_") for 0 .. 3;
    ok(!-e "$prefix.4", '3 rounds up to 4 shards');
    my $one = Data::HashMap::Shared::SS->new("$prefix.0", 100);
    is($set->max_entries, 4 * $one->max_entries, 'max_entries sums');
    is($set->mmap_size, 4 * $one->mmap_size, 'mmap_size sums');
    is($set->capacity, 4 * 16, 'capacity sums');
    is($set->arena_cap, 4 * $one->arena_cap, 'arena_cap sums');
    is($set->ttl, 30, 'ttl is shard 0\'s');
    is($set->stats->{max_entries}, $set->max_entries, 'stats agree');
    is(scalar(keys %{ $set->stats }), 14, 'fourteen stats keys');
    undef $set;
    undef $one;
    my $z = Data::HashMap::Shared::II->new_sharded(tmppath('zero'), 0, 10);
    is($z->capacity, 16, '0 shards means 1');
    dies_like(sub { Data::HashMap::Shared::SS->new_sharded($prefix, 8, 100) },
        qr/^Data::HashMap::Shared::SS: \Q$prefix\E\.0: shard set has 4 shards, opened with 8 at /,
        'reopening with another count croaks with both numbers');
    dies_like(sub { Data::HashMap::Shared::SS->new_sharded($prefix, 2, 100) },
        qr/\Q$prefix\E\.0: shard set has 4 shards, opened with 2/, '... fewer too');
    ok(!-e "$prefix.4", 'and created no files');
    rename "$prefix.1", "$prefix.tmp";
    rename "$prefix.2", "$prefix.1";
    rename "$prefix.tmp", "$prefix.2";
    dies_like(sub { Data::HashMap::Shared::SS->new_sharded($prefix, 4, 100) },
        qr/\Q$prefix\E\.1: is shard 2 of its set, expected shard 1/, 'swapped files are noticed');
    my $other = tmppath('other');
    Data::HashMap::Shared::SS->new_sharded($other, 4, 100);
    rename "$prefix.1", "$prefix.x";
    rename "$other.1", "$prefix.1";
    dies_like(sub { Data::HashMap::Shared::SS->new_sharded($prefix, 4, 100) },
        qr/\Q$prefix\E\.1: belongs to another shard set \(routing differs from \Q$prefix\E\.0\)/,
        'a file of another set is noticed');
    dies_like(sub { Data::HashMap::Shared::SS->new_sharded(undef, 4, 100) },
        qr/^Data::HashMap::Shared::SS: new_sharded requires a path_prefix/, 'undef prefix');
    dies_like(sub { Data::HashMap::Shared::SS->new_sharded(tmppath('big'), 5000, 100) },
        qr/^Data::HashMap::Shared::SS: num_shards 5000 exceeds the maximum of 4096/, 'more than 4096 shards');
    dies_like(sub { Data::HashMap::Shared::SS->new_sharded(tmppath('big'), 2**33, 100) },
        qr/num_shards 8589934592 exceeds the maximum of 4294967295/, 'beyond 32 bits');
    dies_like(sub { Data::HashMap::Shared::SS->new_sharded(tmpdir() . '/' . ('p' x 4094), 2, 100) },
        qr/shard path too long/, 'shard path too long');
    dies_like(sub { Data::HashMap::Shared::SS->new_sharded(tmppath('u'), 2) },
        qr/Usage: Data::HashMap::Shared::SS::new_sharded\(class, path_prefix, num_shards, max_entries/, 'usage');
};

subtest 'cursors and each chain the shards; seek moves to the key\'s shard' => guard {
    my $prefix = tmppath('chain');
    my $set = Data::HashMap::Shared::II->new_sharded($prefix, 4, 1000);
    $set->put($_, $_ * 2) for 1 .. 400;
    my @shard_keys = map { [ Data::HashMap::Shared::II->new("$prefix.$_", 1000)->keys ] } 0 .. 3;
    my @want = map { @$_ } @shard_keys;
    my $c = $set->cursor;
    my @got;
    while (my ($k) = $c->next) { push @got, $k }
    is_deeply(\@got, \@want, 'cursor: shard 0 first, then 1, 2, 3, each in slot order');
    my @e;
    while (my ($k) = $set->each) { push @e, $k }
    is_deeply(\@e, \@want, 'each: the same chain');
    my @again;
    while (my ($k) = $set->each) { push @again, $k }
    is(scalar @again, 400, 'each starts over after its end');
    my $target = $shard_keys[2][5];
    $c = $set->cursor;
    is_true($c->seek($target), 'seek into shard 2');
    my @rest;
    while (my ($k) = $c->next) { push @rest, $k }
    is_deeply(\@rest, [ @{ $shard_keys[2] }[5 .. $#{ $shard_keys[2] }], @{ $shard_keys[3] } ],
        'iteration continues from there through the following shards');
    $c->reset;
    my ($first) = $c->next;
    is($first, $want[0], 'reset: back to the first entry of shard 0');
    is_false($c->seek(999_999), 'seek to a missing key: false');
    # removal during a chained iteration
    my $n = 0;
    $c->reset;
    while (my ($k) = $c->next) { $set->remove($k); $n++ }
    is($n, 400, 'removing while iterating across shards sees every entry once');
    is($set->size, 0, 'all gone');
};

subtest 'pop / shift rotate across shards' => guard {
    my $set = Data::HashMap::Shared::II->new_sharded(tmppath('rot'), 4, 1000);
    $set->put($_, $_) for 1 .. 400;
    my @order;
    for (1 .. 8) {
        my $before = [ map { Data::HashMap::Shared::II->new($set->path . ".$_", 1000)->size } 0 .. 3 ];
        my ($k) = $set->pop;
        my $after = [ map { Data::HashMap::Shared::II->new($set->path . ".$_", 1000)->size } 0 .. 3 ];
        push @order, grep { $before->[$_] != $after->[$_] } 0 .. 3;
    }
    is_deeply(\@order, [0, 1, 2, 3, 0, 1, 2, 3], 'successive pops take from shards 0, 1, 2, 3, 0, ...');
    my @d = $set->drain(1000);
    is(scalar @d, 2 * 392, 'drain collects from every shard (clamped to the size)');
    is($set->size, 0, 'empty');
};

subtest 'writes to different shards proceed in parallel' => guard {
    my $prefix = tmppath('par');
    my $set = Data::HashMap::Shared::II->new_sharded($prefix, 8, 1000);
    my %shard_of;
    $set->put($_, 0) for 1 .. 200;
    for my $i (0 .. 7) { $shard_of{$_} = $i for Data::HashMap::Shared::II->new("$prefix.$i", 1000)->keys }
    my ($ka) = grep { $shard_of{$_} == 0 } sort { $a <=> $b } keys %shard_of;
    my ($kb) = grep { $shard_of{$_} == 5 } sort { $a <=> $b } keys %shard_of;
    # holds shard 0's lock until told
    my $holder = hold_write_lock(sub { Data::HashMap::Shared::II->new_sharded($prefix, 8, 1000) }, $ka);
    # The holder now owns shard 0's write lock. A writer of shard 5 must finish; a
    # writer of shard 0 must wait.
    my $wa = in_child(sub { Data::HashMap::Shared::II->new_sharded($prefix, 8, 1000)->put($ka, 111); 'a' });
    my $wb = in_child(sub { Data::HashMap::Shared::II->new_sharded($prefix, 8, 1000)->put($kb, 222); 'b' });
    my ($out, $err) = child_result($wb);   # a deadlock here is caught by the test timeout
    is($out, 'b', 'a write to shard 5 completed while shard 0 was locked by another process');
    is($set->get($kb), 222, '... and is visible');
    is(waitpid($wa, POSIX::WNOHANG()), 0, 'the write to shard 0 is still waiting for the lock');
    release_write_lock($holder);
    waitpid($holder->{pid}, 0);
    ($out, $err) = child_result($wa);
    is($out, 'a', 'once released, the shard 0 write completes');
    is($set->get($ka), 111, '... and is visible');
};

subtest 'LRU and TTL options apply per shard' => guard {
    my $set = Data::HashMap::Shared::SS->new_sharded(tmppath('lru'), 4, 100, 10, 60);
    is($set->max_size, 40, 'max_size sums the shards');
    is($set->ttl, 60, 'ttl');
    $set->put("k$_", "v$_") for 1 .. 200;
    cmp_ok($set->size, '<=', 40, 'each shard evicts within its own bound');
    cmp_ok($set->size, '>', 30, '... and every shard is used');
    is($set->stat_evictions, 200 - $set->size, 'evictions add up');
    my $left = $set->ttl_remaining(($set->keys)[0]);
    ok($left >= 59 && $left <= 60, 'entries carry the default TTL');
    my $size = $set->size;
    my $n = 0;
    $n++ while my @p = $set->pop;
    is($n, $size, 'pop takes every entry, from every shard');
    is($set->size, 0, 'empty');
};

subtest 'freeze a set' => guard {
    my $prefix = tmppath('fzset');
    my $set = Data::HashMap::Shared::SS->new_sharded($prefix, 4, 100);
    $set->put("k$_", "v$_") for 1 .. 40;
    $set->freeze;
    is($set->frozen, 1, 'frozen');
    is($set->readonly, 1, 'read-only');
    dies_like(sub { $set->put(a => 1) }, qr/^Data::HashMap::Shared::SS: map is frozen \(read-only\)/, 'put croaks');
    dies_like(sub { $set->clear }, qr/map is frozen/, 'clear croaks');
    dies_like(sub { $set->freeze }, qr/->freeze: cannot freeze a read-only handle/, 'freeze again croaks');
    is($set->get('k7'), 'v7', 'reads work');
    my $total = 0;
    for my $i (0 .. 3) {
        my $r = Data::HashMap::Shared::SS->new_readonly("$prefix.$i");
        $total += $r->size;
    }
    is($total, 40, 'each frozen shard file opens with new_readonly');
    dies_like(sub { Data::HashMap::Shared::SS->new_sharded($prefix, 4, 100) }, qr/\Q$prefix\E\.0 is frozen/,
        'new_sharded refuses a frozen set');
    ok($set->unlink, 'unlink removes every shard file');
    ok(!-e "$prefix.$_", "file $_ gone") for 0 .. 3;
};

done_testing;
