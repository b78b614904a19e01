use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Variants;
use Data::HashMap::Shared;

# api.md 5.1 and 7.1: two's complement narrowing of keys and values to the variant
# width, wrapping counters, Perl's numeric / string coercions with their warnings.

my %OUT_OF_RANGE = (
    16 => [ [ 70000, 4464 ], [ 40000, -25536 ], [ -40000, 25536 ], [ 65536, 0 ] ],
    32 => [ [ 4294967301, 5 ], [ 2147483648, -2147483648 ], [ -2147483649, 2147483647 ] ],
    64 => [ [ 18446744073709551615, -1 ], [ 9223372036854775808, -9223372036854775808 ],
            [ 18446744073709551614, -2 ] ],
);
my %LIMITS = (
    16 => [ -32768, 32767 ],
    32 => [ -2147483648, 2147483647 ],
    64 => [ -9223372036854775808, 9223372036854775807 ],
);

sub sval { my $v = shift; defined $v ? "$v" : 'undef' }

for my $v (variants_where(sub { $_[0]{key} eq 'int' })) {
    subtest "int keys of $v->{name}" => guard {
        my $m = $v->{class}->new(undef, 100);
        my $val = $v->{vals}[0];
        for my $case (@{ $OUT_OF_RANGE{ $v->{kbits} } }) {
            my ($in, $want) = @$case;
            is(narrow($v->{kbits}, $in), $want, "helper narrows $in to $want") if $v->{kbits} < 64;
            $m->clear;
            my @w = warnings_of(sub { ok($m->put($in, $val), "put key $in") });
            is(scalar @w, 0, 'no warning for an out-of-range key') or diag @w;
            ok($m->exists($want), "key $in is stored as $want");
            is(sval($m->get($in)), sval($val), "get($in) hits the narrowed entry");
            is_deeply([ map "$_", $m->keys ], ["$want"], "keys returns $want");
            ok($m->put($want, $val), "put($want)");
            is($m->size, 1, "$in and $want are one key");
            is_deeply([ map "$_", keys %{ $m->to_hash } ], ["$want"], 'to_hash key is the narrowed decimal');
            ok($m->remove($in), "remove($in) removes $want");
            is($m->size, 0, 'gone');
        }
        # floats truncate
        $m->clear;
        $m->put(1.9, $val);
        ok($m->exists(1), 'key 1.9 -> 1');
        $m->put(-1.9, $val);
        ok($m->exists(-1), 'key -1.9 -> -1');
        is($m->size, 2, 'two keys');
        # numeric strings
        $m->put("  17", $val);
        ok($m->exists(17), 'key "  17" -> 17');
    };
}

for my $v (variants_where(sub { $_[0]{val} eq 'int' })) {
    subtest "int values and counters of $v->{name}" => guard {
        my $m = $v->{class}->new(undef, 100);
        my $k = $v->{keys}[0];
        my $bits = $v->{vbits};
        my ($min, $max) = @{ $LIMITS{$bits} };

        for my $case (@{ $OUT_OF_RANGE{$bits} }) {
            my ($in, $want) = @$case;
            my @w = warnings_of(sub { $m->put($k, $in) });
            is(scalar @w, 0, "no warning storing $in");
            is(sval($m->get($k)), "$want", "value $in stored as $want");
            is(sval($m->swap($k, 1)), "$want", 'swap returns the narrowed value');
            $m->put($k, $in);
            ok($m->cas($k, $in, 3), "cas compares after narrowing ($in vs stored $want)");
            is(sval($m->get($k)), '3', 'cas stored');
            $m->put($k, $want);
            is(sval($m->cas_take($k, $in)), "$want", 'cas_take compares after narrowing');
        }
        $m->put($k, 1.9);
        is(sval($m->get($k)), '1', 'value 1.9 -> 1');
        $m->put($k, -1.9);
        is(sval($m->get($k)), '-1', 'value -1.9 -> -1');

        # wrapping counters
        $m->put($k, $max);
        is(sval($m->incr($k)), "$min", "incr at $max wraps to $min");
        is(sval($m->get($k)), "$min", '... stored');
        is(sval($m->decr($k)), "$max", "decr at $min wraps to $max");
        is(sval($m->incr_by($k, 2)), sval($min + 1), 'incr_by wraps');
        $m->put($k, $min);
        is(sval($m->incr_by($k, -1)), "$max", 'incr_by -1 at min wraps to max');
        if ($bits == 16) {
            $m->put($k, 0);
            is(sval($m->incr_by($k, 70000)), '4464', 'I16 incr_by 70000 adds 4464');
            $m->put($k, 0);
            is(sval($m->max($k, 70000)), '4464', 'max narrows desired (70000 -> 4464)');
            is(sval($m->min($k, 40000)), '-25536', 'min narrows desired (40000 -> -25536)');
        }
        elsif ($bits == 32) {
            $m->put($k, 0);
            is(sval($m->incr_by($k, 4294967301)), '5', 'I32 incr_by 2**32+5 adds 5');
        }
        else {
            $m->put($k, 10);
            is(sval($m->incr_by($k, 18446744073709551615)), '9', 'II incr_by 2**64-1 adds -1');
            is(sval($m->max($k, 9223372036854775808)), '9', 'max: 2**63 narrows to the minimum, 9 kept');
        }
        # a new counter key starts from the narrowed delta
        $m->remove($k);
        is(sval($m->incr_by($k, $max)), "$max", 'incr_by on a missing key inserts the delta');
        is(sval($m->incr($k)), "$min", '... and wraps from there');
    };
}

# Coercion warnings (api.md 5.1)
subtest 'integer coercions warn like Perl' => guard {
    my $m = Data::HashMap::Shared::II->new(undef, 100);
    my @w = warnings_of(sub { $m->put(undef, 5) });
    ok(scalar(grep /Use of uninitialized value/, @w), 'undef key warns "Use of uninitialized value"');
    is($m->get(0), 5, 'undef key -> 0');
    @w = warnings_of(sub { $m->put("12abc", 6) });
    ok(scalar(grep /isn't numeric/, @w), '"12abc" warns "isn\'t numeric"');
    is($m->get(12), 6, '"12abc" -> 12');
    @w = warnings_of(sub { $m->put(1, undef) });
    ok(scalar(grep /Use of uninitialized value/, @w), 'undef value warns');
    is($m->get(1), 0, 'undef value -> 0');
    @w = warnings_of(sub { $m->put(2, "7xyz") });
    ok(scalar(grep /isn't numeric/, @w), 'non-numeric value warns');
    is($m->get(2), 7, '"7xyz" -> 7');
    @w = warnings_of(sub { $m->incr_by(2, "3 apples") });
    ok(scalar(grep /isn't numeric/, @w), 'non-numeric delta warns');
    is($m->get(2), 10, 'delta "3 apples" -> 3');
    @w = warnings_of(sub { no warnings; $m->put("99z", 1); $m->put(undef, 1) });
    is(scalar @w, 0, 'no warning under no warnings (lexical warnings of the caller)');
    @w = warnings_of(sub { $m->put("0 but true", 4) });
    is(scalar @w, 0, '"0 but true" does not warn');
    is($m->get(0), 4, '... and is 0');
};

subtest 'string coercions' => guard {
    my $m = Data::HashMap::Shared::SS->new(undef, 100);
    my @w = warnings_of(sub { $m->put(undef, "u") });
    ok(scalar(grep /Use of uninitialized value/, @w), 'undef string key warns');
    is($m->get(""), "u", 'undef key -> ""');
    @w = warnings_of(sub { $m->put("k", undef) });
    ok(scalar(grep /Use of uninitialized value/, @w), 'undef string value warns');
    is($m->get("k"), "", 'undef value -> ""');
    ok(defined $m->get("k"), '... defined');
    my $ref = [1];
    $m->put($ref, "arr");
    is($m->get("$ref"), "arr", 'a reference key is stringified');
    ok(scalar(grep { /^ARRAY\(0x[0-9a-f]+\)$/ } $m->keys), 'keys returns the stringified reference');
    $m->put(1.5, 15);
    is($m->get("1.5"), "15", 'number key stringified, number value stringified');
    $m->put(10, 0.25);
    is($m->get("10"), "0.25", 'numeric value stored as its string');
    my $si = Data::HashMap::Shared::SI->new(undef, 100);
    $si->put(42, 1);
    ok($si->exists("42"), 'SI: numeric key 42 is the string "42"');
    @w = warnings_of(sub { $si->cas("42", undef, 5) });
    ok(scalar(grep /Use of uninitialized value/, @w), 'undef expected on an int value warns');
    my $is = Data::HashMap::Shared::IS->new(undef, 100);
    $is->put(1, "");
    @w = warnings_of(sub { ok($is->cas(1, undef, "x"), 'string cas with undef expected means ""') });
    ok(scalar(grep /Use of uninitialized value/, @w), '... with a warning');
    is($is->get(1), "x", '... stored');
};

done_testing;
