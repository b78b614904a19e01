use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Variants;
use Data::HashMap::Shared;
use RedisServer;

# each / iter_reset semantics and keys / values / items / to_hash (api.md 6.7,
# 7.5, 7.6; cursors are not in this release).
#
# On both backends: anonymous (or file) maps, and maps in a private redis-server (CI
# requires it). Listed exceptions on Redis (POD "Differences on Redis": iteration
# order is Redis' hash order, each walks in scan steps): no table, so nothing about
# resizes and deferred shrinks; the order is not seeded per map; an each already
# under way does not see another handle's clear (its current scan step was read
# before).
my ($srv, @BACKENDS) = RedisServer->backends;
sub newmap { RedisServer::new_map($srv, @_) }

for my $b (@BACKENDS) {
for my $v (variant('II'), variant('SS'), variant('I16S'), variant('SI32')) {
    my $key = sub { $v->{key} eq 'int' ? $_[0] * 3 - 100 : "key $_[0]" };
    my $val = sub { $v->{val} eq 'int' ? $_[0] * 2 : "value $_[0] " . ('v' x ($_[0] % 20)) };
    my %want = map { $key->($_) => $val->($_) } 1 .. 100;

    subtest "$v->{name}: keys, values, items, to_hash agree ($b)" => guard {
        my $m = newmap($b, $v->{class}, 1000);
        $m->put($key->($_), $val->($_)) for 1 .. 100;
        my @k = $m->keys;
        my @vv = $m->values;
        my @it = $m->items;
        is(scalar @k, 100, '100 keys');
        is_deeply([sort @k], [sort keys %want], 'the keys');
        is_deeply([ map { $want{ $k[$_] } } 0 .. $#k ], \@vv, 'values in the same order as keys');
        is_deeply(\@it, [ map { ($k[$_], $vv[$_]) } 0 .. $#k ], 'items = keys/values interleaved, same order');
        is_deeply($m->to_hash, \%want, 'to_hash');
        if ($v->{key} eq 'int') {
            my @neg = grep { $_ < 0 } @k;
            ok(scalar(@neg) && !grep({ $_ !~ /^-\d+$/ } @neg), 'int keys come back as numbers (negative ones too)');
        }
        my @each;
        while (my ($ek, $ev) = $m->each) { push @each, $ek, $ev; last if @each > 400 }
        is_deeply(\@each, \@it, 'each walks the same slot order as items');
    };

    subtest "$v->{name}: each ($b)" => guard {
        my $m = newmap($b, $v->{class}, 1000);
        $m->put($key->($_), $val->($_)) for 1 .. 100;
        my %seen;
        my $n = 0;
        while (my ($ek, $ev) = $m->each) { $seen{$ek}++; is($ev, $want{$ek}, "value of $ek") unless $ev eq $want{$ek}; last if ++$n > 200 }
        is($n, 100, 'each returned 100 entries');
        is(scalar(grep { $_ != 1 } values %seen), 0, 'each entry exactly once');
        my @again = $m->each;
        is(scalar @again, 2, 'after the end each auto-resets and starts over');
        $m->iter_reset;

        # keys (and other snapshots) do not disturb the position
        my @first;
        push @first, ($m->each)[0] for 1 .. 10;
        my @k = $m->keys;
        my @vals = $m->values;
        my $h = $m->to_hash;
        my @rest;
        while (my ($ek) = $m->each) { push @rest, $ek }
        is(scalar(@first) + scalar(@rest), 100, 'keys/values/to_hash in the middle of each do not disturb it');
        is_deeply([sort @first, @rest], [sort keys %want], '... every key once');

        # iter_reset in the middle
        $m->each for 1 .. 30;
        $m->iter_reset;
        my $count = 0;
        $count++ while $m->each;
        is($count, 100, 'iter_reset restarts from the beginning');

        return if $b eq 'redis';    # (no table: no deferred shrink)

        # removals during a partial each: the shrink waits for iter_reset
        my $big = $v->{class}->new(undef, 1000);
        $big->put($key->($_), $val->($_)) for 1 .. 200;
        is($big->capacity, 256, '200 entries in 256 slots');
        my @got;
        for (1 .. 10) { my ($ek) = $big->each; push @got, $ek }
        my %seen10 = map { $_ => 1 } @got;
        my @unseen = grep { !$seen10{$_} } map { $key->($_) } 1 .. 200;
        my %keep = (%seen10, map { $unseen[$_] => 1 } grep { $_ % 19 == 0 } 0 .. $#unseen);
        $big->remove($_) for grep { !$keep{$_} } @unseen;
        is($big->size, scalar(keys %keep), (200 - keys %keep) . ' removed while each is active');
        is($big->capacity, 256, 'no shrink while this handle iterates');
        my ($next) = $big->each;
        ok(defined $next && $keep{$next} && !$seen10{$next}, 'each continues with a kept entry not seen yet');
        $big->iter_reset;
        ok($big->capacity < 256, 'iter_reset runs the deferred shrink (capacity ' . $big->capacity . ')');
        my $left = grep { defined $big->get($_) } keys %keep;
        is($left, scalar(keys %keep), 'the kept entries survive the shrink');

        # clear resets this handle's each
        $m->each for 1 .. 5;
        $m->clear;
        $m->put($key->(1), $val->(1));
        my @e = $m->each;
        is_deeply([ map "$_", @e ], [ "" . $key->(1), "" . $val->(1) ], 'after clear each starts at the first entry');
        my @end = $m->each;
        is(scalar @end, 0, '... then ends');
    };

    next if $b eq 'redis';    # (no table: resizes and shrinks are of files)
    subtest "$v->{name}: removal during each" => guard {
        my $m = $v->{class}->new(undef, 1000);
        $m->put($key->($_), $val->($_)) for 1 .. 300;
        my $cap = $m->capacity;
        my (%seen, $n);
        while (my ($ek, $ev) = $m->each) {
            $seen{$ek}++;
            ok($m->remove($ek), "remove $ek during each") or last;
            last if ++$n > 1000;
        }
        is($n, 300, 'each saw every entry once while removing them all');
        is(scalar(grep { $_ != 1 } values %seen), 0, 'no entry repeated or skipped');
        is($m->size, 0, 'all removed');
        is($m->capacity, 16, 'the deferred shrink ran when the iteration ended');

        # remove other entries (not the current one) during each
        $m->put($key->($_), $val->($_)) for 1 .. 200;
        my (%gone, %seen_now, @seen);
        my $i = 0;
        my @pool = map { $key->($_) } reverse 1 .. 200;
        while (my ($ek) = $m->each) {
            push @seen, $ek;
            $seen_now{$ek} = 1;
            if ($i++ % 3 == 0) {
                # remove some entry that has not been seen yet, if any
                my ($victim) = grep { !$gone{$_} && !$seen_now{$_} } @pool;
                if (defined $victim) { $m->remove($victim); $gone{$victim} = 1 }
            }
            last if $i > 1000;
        }
        my %s; $s{$_}++ for @seen;
        is(scalar(grep { $_ > 1 } values %s), 0, 'no entry seen twice');
        is(scalar(grep { $gone{$_} } @seen), 0, 'removed entries are not returned');
        is(scalar(@seen) + scalar(keys %gone), 200, 'every entry either seen or removed before being reached');
        is($m->size, 200 - keys %gone, 'size');
    };

    subtest "$v->{name}: growth during each restarts the iteration" => guard {
        my $m = $v->{class}->new(undef, 1000);
        $m->put($key->($_), $val->($_)) for 1 .. 10;
        my %seen;
        my ($ek) = $m->each;
        $seen{$ek} = 1;
        $m->put($key->($_), $val->($_)) for 11 .. 200;      # grows 16 -> 256
        ok($m->capacity > 16, 'the table grew while iterating');
        my $n = 0;
        while (my ($k2) = $m->each) { $seen{$k2} = 1; last if ++$n > 1000 }
        ok($n <= 201, 'the iteration ended');
        my @missing = grep { !$seen{$_} } map { $key->($_) } 1 .. 200;
        is(scalar @missing, 0, 'after a resize every entry is still visited (the iteration restarted)');
    };
}

}

for my $b (@BACKENDS) {
subtest "each is per handle ($b)" => guard {
    my $p = $b eq 'redis' ? $srv->url : tmppath('each');
    my $h1 = Data::HashMap::Shared::II->new($p, 100);
    my $h2 = Data::HashMap::Shared::II->new($p, 100);
    $h1->put($_, $_) for 1 .. 10;
    my @a = map { ($h1->each)[0] } 1 .. 3;
    my @b = map { ($h2->each)[0] } 1 .. 10;
    is_deeply([ @b[0 .. 2] ], \@a, 'a second handle starts its own iteration from the beginning');
    my @rest;
    while (my ($k) = $h1->each) { push @rest, $k }
    is(scalar(@a) + scalar(@rest), 10, 'the first handle continues where it was');
    return if $b eq 'redis';    # (no table: no resize through another handle)
    # deferral of shrink is per handle: removing through another handle shrinks, which
    # restarts this handle's iteration (entries may be seen again, none is lost)
    my $big = Data::HashMap::Shared::II->new(tmppath('each'), 1000);
    my $other = Data::HashMap::Shared::II->new($big->path, 1000);
    $big->put($_, $_) for 1 .. 200;
    my %seen;
    my ($first) = $big->each;
    $seen{$first} = 1;
    $other->remove($_) for 51 .. 200;        # shrinks through the other handle
    ok($other->capacity < 256, 'the other handle shrank the table');
    my $n = 0;
    while (my ($k) = $big->each) { $seen{$k} = 1; last if ++$n > 1000 }
    my @lost = grep { !$seen{$_} } 1 .. 50;
    is(scalar @lost, 0, 'every surviving entry visited after the other handle resized the table');
};
}

subtest 'clear through another handle restarts this handle\'s each' => guard {
    my $p = tmppath('each-clear');
    my $h1 = Data::HashMap::Shared::SS->new($p, 1000);
    my $h2 = Data::HashMap::Shared::SS->new($p, 1000);
    $h1->put("old $_", "value $_ " . ('x' x $_)) for 1 .. 100;
    my @first = map { ($h1->each)[0] } 1 .. 30;
    $h2->clear;
    $h2->put("new $_", "n$_") for 1 .. 10;
    my %seen;
    my $n = 0;
    while (my ($k, $v) = $h1->each) { $seen{$k} = $v; last if ++$n > 1000 }
    is_deeply([ sort keys %seen ], [ sort map { "new $_" } 1 .. 10 ], 'after the other handle\'s clear, each returns exactly the new entries');
    is(scalar(grep { $seen{"new $_"} ne "n$_" } 1 .. 10), 0, '... with their values');
};

subtest 'seeded hashing: two maps order the same keys differently' => guard {
    my @orders;
    for (1 .. 3) {
        my $m = Data::HashMap::Shared::SS->new(undef, 1000);
        $m->put("key $_", 1) for 1 .. 100;
        push @orders, join ',', $m->keys;
    }
    ok($orders[0] ne $orders[1] || $orders[1] ne $orders[2],
        'iteration order differs between maps (each map has its own hash seed)');
    my @iorders;
    for (1 .. 3) {
        my $m = Data::HashMap::Shared::II->new(undef, 1000);
        $m->put($_, 1) for 1 .. 100;
        push @iorders, join ',', $m->keys;
    }
    ok($iorders[0] ne $iorders[1] || $iorders[1] ne $iorders[2], 'int keys too');
};

done_testing;
