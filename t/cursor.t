#!/usr/bin/perl
# Cursors (api.md 6.7, 7.5, 7.6): independent, nestable iterators; removal during
# iteration; seek; exhaustion without auto-reset; restart after a resize; shrink
# deferred while a cursor sits on the table; a cursor keeps its map alive; keywords.
use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Variants;
use OpTable;
use Data::HashMap::Shared::II;   # loads every class
use RedisServer;

# The behaviour of cursors runs on both backends: anonymous (or file) maps, and maps
# in a private redis-server (CI requires it). Resizes and the deferred shrink are of
# the file format only. Listed exceptions on Redis (POD "Differences on Redis"):
# seek returns the sought entry next and then continues where the cursor was (after
# exhaustion: from the start, the sought entry coming again).
my ($srv, @BACKENDS) = RedisServer->backends;
sub newmap { RedisServer::new_map($srv, @_) }

# Drains a cursor into "key=value" strings.
sub drain_cursor {
    my $c = shift;
    my @seen;
    while (my ($k, $v) = $c->next) {
        push @seen, "$k=$v";
        die 'cursor does not end' if @seen > 100_000;
    }
    return @seen;
}

sub items_of {
    my $m = shift;
    my @i = $m->items;
    my @s;
    while (my ($k, $v) = splice @i, 0, 2) { push @s, "$k=$v" }
    return @s;
}

for my $b (@BACKENDS) {
for my $v (@VARIANTS) {
    subtest "$v->{name}: every entry once, in the order of items ($b)" => guard {
        my $m = newmap($b, $v->{class}, 100);
        $m->put($v->{keys}[$_], $v->{vals}[$_]) for 0 .. 3;
        my $c = $m->cursor;
        isa_ok($c, "$v->{class}::Cursor");
        my @seen = drain_cursor($c);
        is_deeply(\@seen, [items_of($m)], 'cursor order = items order (slot order)');
        is(scalar @seen, 4, 'four entries');
        my @again = $c->next;
        is(scalar @again, 0, 'exhausted: empty list');
        $m->put($v->{missing}, $v->{vals}[0]);
        @again = $c->next;
        is(scalar @again, 0, 'stays exhausted after an insert (no auto-reset)');
        $c->reset;
        is(scalar(drain_cursor($c)), 5, 'reset: starts over and sees the new entry');
        my $scalar = do { $c->reset; $c->next };
        my ($k0, $v0) = do { $c->reset; $c->next };
        is($scalar, $v0, 'scalar context: the value');
    };
}

subtest "independent and nestable ($b)" => guard {
    my $m = newmap($b, 'Data::HashMap::Shared::II', 1000);
    $m->put($_, -$_) for 1 .. 50;
    my ($a, $b) = ($m->cursor, $m->cursor);
    my @a1 = map { scalar $a->next } 1 .. 10;
    my @b = drain_cursor($b);
    is(scalar @b, 50, 'a second cursor runs through while the first is mid-way');
    my @a2 = drain_cursor($a);
    is(10 + @a2, 50, 'the first one continues where it was');
    my $pairs = 0;
    my $outer = $m->cursor;
    while (my ($k) = $outer->next) {
        my $inner = $m->cursor;
        $pairs++ while my @x = $inner->next;
    }
    is($pairs, 50 * 50, 'nested cursors: 50 x 50 pairs');
    my @e = $m->each;
    my @c = $m->cursor->next;
    is_deeply(\@c, \@e, 'cursors and each are independent (both start at the first entry)');
    $m->iter_reset;
};
}

subtest 'removal during iteration: no entry skipped or repeated, shrink deferred' => guard {
    my $m = Data::HashMap::Shared::II->new(undef, 10_000);
    $m->put($_, $_) for 1 .. 2000;
    my $cap = $m->capacity;
    my $c = $m->cursor;
    my (%seen, %ahead);
    while (my ($k) = $c->next) {
        $seen{$k}++;
        $m->remove($k);
        # remove one entry that may still be ahead of the cursor
        $ahead{ $k + 1000 } = 1 if $k <= 1000 && $m->remove($k + 1000);
    }
    is(scalar(grep { $_ > 1 } values %seen), 0, 'no entry seen twice');
    my @wrong = grep { !!$seen{$_} == !!$ahead{$_} } 1 .. 2000;
    is(scalar @wrong, 0, 'every entry seen, except exactly those removed before the cursor got there')
        or diag("wrong: @wrong[0 .. 9]");
    cmp_ok(scalar(keys %ahead), '>', 0, 'some entries were removed ahead of the cursor');
    is($m->size, 0, 'all removed');
    is($m->capacity, 16, 'the deferred shrink ran once the cursor was exhausted');
    cmp_ok($cap, '>', 16, 'the table had grown');
};

subtest 'shrink deferred while the cursor sits on the table; runs on reset / destroy' => guard {
    my $m = Data::HashMap::Shared::II->new(undef, 10_000);
    $m->put($_, $_) for 1 .. 1000;
    my $cap = $m->capacity;
    my $c = $m->cursor;
    my @first = $c->next;
    $m->remove($_) for 1 .. 1000;
    is($m->capacity, $cap, 'no shrink while a cursor is mid-table');
    $c->reset;
    is($m->capacity, 16, 'reset runs the deferred shrink');
    $m->put($_, $_) for 1 .. 1000;
    $c = $m->cursor;
    $c->next;
    $m->remove($_) for 1 .. 1000;
    is($m->capacity, $cap, 'deferred again');
    undef $c;
    is($m->capacity, 16, 'destroying the cursor runs it');
    my $fresh = $m->cursor;
    $m->put($_, $_) for 1 .. 1000;
    $m->remove($_) for 1 .. 1000;
    is($m->capacity, 16, 'a cursor that has not started does not defer');
};

subtest 'resize during iteration restarts at the first slot' => guard {
    my $m = Data::HashMap::Shared::II->new(undef, 100_000);
    $m->put($_, $_) for 1 .. 10;
    my $c = $m->cursor;
    my %seen;
    my ($k) = $c->next;
    $seen{$k}++;
    my $cap = $m->capacity;
    $m->put($_, $_) for 1000 .. 3000;   # grows the table (growth is never deferred)
    cmp_ok($m->capacity, '>', $cap, 'the table grew');
    my $n = 1;
    while (my ($k2) = $c->next) { $seen{$k2}++; $n++ }
    is($n, 1 + 2011, 'after the resize the cursor ran through the whole new table');
    is($seen{$k}, 2, 'the entry before the resize is seen again (restart)');
    is(scalar(keys %seen), 2011, 'every entry seen');
};

for my $b (@BACKENDS) {
subtest "seek ($b)" => guard {
    for my $v (variant('II'), variant('SS')) {
        my $m = newmap($b, $v->{class}, 100);
        $m->put($v->{keys}[$_], $v->{vals}[$_]) for 0 .. 3;
        my @order = map { (split /=/, $_, 2)[0] } items_of($m);
        my $c = $m->cursor;
        is_true($c->seek($order[2]), "$v->{name}: seek to the third entry");
        my ($k) = $c->next;
        is($k, $order[2], 'next returns it');
        ($k) = $c->next;
        if ($b eq 'redis') {
            # (difference: the walk continues where the cursor was, here the start)
            is($k, $order[0], 'Redis: then the walk goes on where the cursor was');
            is_false($c->seek($v->{missing}), 'seek to a missing key: false');
            my @rest = map { (split /=/, $_, 2)[0] } drain_cursor($c);
            is_deeply(\@rest, [@order[1 .. 3]], '... and the cursor stayed where it was');
            is_true($c->seek($order[0]), 'seek works after exhaustion');
            my @again = map { (split /=/, $_, 2)[0] } drain_cursor($c);
            is_deeply(\@again, [@order[0, 0 .. 3]], '... the sought entry, then the walk starts over (it comes again)');
            next;
        }
        is($k, $order[3], 'and iteration continues forward in slot order');
        is_false($c->seek($v->{missing}), 'seek to a missing key: false');
        my @rest = $c->next;
        is(scalar @rest, 0, '... and the cursor stayed where it was (at the end)');
        @rest = $c->next;
        is_true($c->seek($order[0]), 'seek works after exhaustion');
        is(scalar(drain_cursor($c)), 4, '... and the cursor runs again');
    }
};

subtest "seek skips expired entries ($b)" => guard {
    my $m = newmap($b, 'Data::HashMap::Shared::II', 100, 0, 100);
    $m->put_ttl(1, 1, 1);
    $m->put(2, 2);
    OpTable::wait_next_second();
    my $c = $m->cursor;
    is_false($c->seek(1), 'an expired key is not found');
    is_true($c->seek(2), 'a live one is');
    $c->reset;
    my @all;
    while (my ($k) = $c->next) { push @all, $k }
    is_deeply(\@all, [2], 'next skips the expired entry');
    is($m->size, 2, '... without removing it');
};

subtest "a cursor keeps its map alive ($b)" => guard {
    my $c = do {
        my $m = newmap($b, 'Data::HashMap::Shared::SS', 100);
        $m->put("k$_", "v$_") for 1 .. 5;
        $m->cursor;
    };
    is(scalar(drain_cursor($c)), 5, 'the map outlives its variable through the cursor');
};

subtest "keywords ($b)" => guard {
    my $m = newmap($b, 'Data::HashMap::Shared::SI', 100);
    $m->put("k$_", $_) for 1 .. 3;
    my $code = q{
        use Data::HashMap::Shared::SI;
        sub {
            my $m = shift;
            my $c = shm_si_cursor $m;
            my @all;
            while (my @e = shm_si_cursor_next $c) { push @all, @e }
            my $ok = shm_si_cursor_seek $c, 'k2';
            my ($k) = shm_si_cursor_next $c;
            shm_si_cursor_reset $c;
            my $last = shm_si_cursor_next $c;
            my @paren = shm_si_cursor_next($c);
            return (ref $c, scalar(@all), $ok, $k, defined $last ? 1 : 0, scalar @paren);
        }
    };
    my $sub = eval $code or die $@;
    my @r = $sub->($m);
    is_deeply(\@r, ['Data::HashMap::Shared::SI::Cursor', 6, 1, 'k2', 1, 2],
        'shm_si_cursor, _next (list context forced), _seek, _reset');
};
}

subtest 'a cursor keeps its map alive' => guard {
    my $c = do {
        my $m = Data::HashMap::Shared::SS->new(undef, 100);
        $m->put("k$_", "v$_") for 1 .. 5;
        $m->cursor;
    };
    is(scalar(drain_cursor($c)), 5, 'the map outlives its variable through the cursor');
    my $m = Data::HashMap::Shared::II->new(undef, 100);
    my $c2 = $m->cursor;
    $m->DESTROY;
    dies_like(sub { $c2->next }, qr/Attempted to use a destroyed Data::HashMap::Shared::II object/,
        'a cursor of an explicitly destroyed map croaks');
    lives(sub { undef $c2 }, 'and can still be freed');
};

subtest 'errors' => guard {
    my $m = Data::HashMap::Shared::II->new(undef, 100);
    my $c = $m->cursor;
    dies_like(sub { Data::HashMap::Shared::II::Cursor::next($m) },
        qr/^Expected a Data::HashMap::Shared::II::Cursor object/, 'a map is not a cursor');
    dies_like(sub { Data::HashMap::Shared::SS::Cursor::next($c) },
        qr/^Expected a Data::HashMap::Shared::SS::Cursor object/, 'a cursor of another class is not one');
    $c->DESTROY;
    dies_like(sub { $c->next }, qr/^Attempted to use a destroyed Data::HashMap::Shared::II::Cursor cursor/,
        'destroyed cursor');
    lives(sub { Data::HashMap::Shared::II::Cursor::DESTROY(42) }, 'DESTROY ignores foreign invocants');
    is(Data::HashMap::Shared::II::Cursor->CLONE_SKIP, 1, 'cursors are not cloned into threads');
    dies_like(sub { $m->cursor->seek }, qr/Usage: Data::HashMap::Shared::II::Cursor::seek\(self, key\)/, 'usage');
};

for my $b (@BACKENDS) {
subtest "a cursor on a frozen map and on a read-only handle ($b)" => guard {
    my $path = $b eq 'redis' ? $srv->url : tmppath('cur');
    my $m = Data::HashMap::Shared::II->new($path, 100);
    $m->put($_, $_) for 1 .. 20;
    $m->freeze;
    is(scalar(drain_cursor($m->cursor)), 20, 'the freezing (now read-only) handle iterates');
    my $r = Data::HashMap::Shared::II->new_readonly($path);
    my $c = $r->cursor;
    is(scalar(drain_cursor($c)), 20, 'a new_readonly handle iterates');
    is_true($c->seek(7), 'and seeks');
};
}

done_testing;
