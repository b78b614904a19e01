use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Variants;

# Keyword scoping and parsing rules: api.md 2.1, 2.2 and decisions.md 14.
# This file deliberately does not `use v5.36` (that would disable indirect
# object syntax, which is what a keyword outside its scope falls back to).

use Data::HashMap::Shared;

my $ii = Data::HashMap::Shared::II->new(undef, 100);
my $si = Data::HashMap::Shared::SI->new(undef, 100);
my $ss = Data::HashMap::Shared::SS->new(undef, 100);
$ii->put(42, 100);

{
    package Key;
    sub new { bless { k => $_[1] }, $_[0] }
    sub key { $_[0]{k} }
}

{
    use Data::HashMap::Shared::II;
    use Data::HashMap::Shared::SI;
    use Data::HashMap::Shared::SS;

    # fixed arity: extra items stay in the surrounding list
    is(shm_ii_get $ii, 42, 100, 'is(shm_ii_get $m, 42, 100, name) passes three args to is');
    my @args = (shm_ii_get $ii, 42, 100, 'name');
    is_deeply(\@args, [100, 100, 'name'], 'the keyword takes exactly two arguments from the list');
    my @two = (shm_ii_put $ii, 1, 2, 'tail');
    is_deeply(\@two, [1, 'tail'], 'put takes exactly three arguments');

    # low-precedence or / and / not apply to the whole call
    my $died = 0;
    eval { shm_ii_put $ii, 5, 6 or die "put failed\n"; 1 } or $died = 1;
    is($died, 0, 'shm_ii_put $m, 1, 2 or die: put succeeded, die not reached');
    is($ii->get(5), 6, '... stored');
    my $full = Data::HashMap::Shared::II->new(undef, 14);
    $full->put($_, $_) for 1 .. 14;
    my $hit = 0;
    shm_ii_put $full, 99, 1 or $hit = 1;
    is($hit, 1, 'or applies to the whole keyword call (failed put)');
    my $flag = 0;
    shm_ii_exists $ii, 42 and $flag = 1;
    is($flag, 1, 'and applies to the whole keyword call');
    my $neg = not shm_ii_exists $ii, 4242;
    ok($neg, 'not applies to the whole keyword call');

    # argument expressions down to assignment precedence
    my ($x1, $y1, $z1) = (10, 3, 1);
    shm_ii_put $ii, $x1 + 1, $y1 * 2;
    is($ii->get(11), 6, 'arithmetic arguments');
    shm_ii_put $ii, $z1 ? 20 : 30, $z1 ? 200 : 300;
    is($ii->get(20), 200, 'ternary arguments');
    my $obj = Key->new(42);
    is(shm_ii_get $ii, $obj->key, 100, 'method call argument');
    shm_ii_put $ii, my $k = 77, 78;
    is($k, 77, 'assignment inside an argument');
    is($ii->get(77), 78, '... used as the key');
    my $r = shm_ii_get $ii, 11;
    is($r, 6, 'scalar assignment of a keyword result');
    my @l = (shm_ii_get $ii, 11);
    is_deeply(\@l, [6], 'list of a keyword result');
    my $sum = (shm_ii_get $ii, 11) + (shm_ii_get $ii, 20);
    is($sum, 206, 'wrapped calls in an expression');

    # parentheses (decisions.md 14) and the wrapped form. Compiled by string evals
    # so that a parse failure is one failing test, not a file that does not compile.
    my @paren = (
        [ q{ shm_ii_put($ii, 1, 2) },              1,    'shm_ii_put($m, 1, 2) works' ],
        [ q{ shm_ii_get($ii, 1) },                 2,    'shm_ii_get($m, 1) works' ],
        [ q{ shm_ss_size($ss) },                   0,    'one-argument keyword with parentheses' ],
        [ q{ (shm_si_max $si, "k", 50) },          50,   '(shm_si_max $m, "k", 50) works' ],
        [ q{ shm_si_max($si, "k", 70) },           70,   'shm_si_max($m, "k", 70) works' ],
        [ q{ shm_si_get($si, "k") },               70,   '... stored' ],
        [ q{ join ',', (shm_ii_get($ii, 1), 'x') }, '2,x', 'parenthesised call ends at the closing paren' ],
        [ q{ shm_ss_put($ss, "a", "b") && shm_ss_get($ss, "a") }, 'b', 'parenthesised calls combine with &&' ],
        [ q{ join ',', shm_ii_get($ii, 1), 100 },  '2,100', 'items after the parenthesised call stay in the list' ],
    );
    for my $t (@paren) {
        my ($code, $want, $name) = @$t;
        my $got = eval $code;
        is($got, $want, $name) or diag "code: $code\nerror: $@";
    }

    # string eval compiled inside the scope sees the keywords
    my $v = eval q{ shm_ii_get $ii, 42 };
    is($v, 100, 'string eval inside the scope sees the keyword') or diag $@;

    # each variant needs its own use: I16 was not imported here
    my $i16 = Data::HashMap::Shared::I16->new(undef, 10);
    my $ok = eval q{ my $x = shm_i16_size $i16; 1 };
    ok(!$ok, 'a variant whose module was not used has no keywords');
    like($@, qr/Can't locate object method "shm_i16_size" via package "Data::HashMap::Shared::I16"/,
        '... parsed as an indirect method call');

    # there is no unimport: `no Class` leaves the keywords on
    {
        no Data::HashMap::Shared::II;
        my $v2 = eval q{ shm_ii_get $ii, 42 };
        is($v2, 100, 'no Class does not disable the keywords') or diag $@;
    }
}

# Outside the scope of the use: indirect method call that dies at run time.
{
    my $ok = eval q{ no warnings; my $x = shm_ii_get $ii, 42; 1 };
    ok(!$ok, 'outside the use scope the keyword is not recognised');
    like($@, qr/Can't locate object method "shm_ii_get" via package "Data::HashMap::Shared::II"/,
        '... shm_ii_get $m, 1 is an indirect method call and dies');
}

# use Class () enables nothing
{
    my $ok = eval q{
        use Data::HashMap::Shared::II ();
        no warnings; my $x = shm_ii_get $ii, 42;
        1;
    };
    ok(!$ok, 'use Class () enables no keyword');
    like($@, qr/Can't locate object method "shm_ii_get"/, '... indirect method call');
}

# import ignores arguments
{
    my $v = eval q{
        use Data::HashMap::Shared::II qw(whatever ignored);
        shm_ii_get $ii, 42;
    };
    is($v, 100, 'use Class LIST ignores the list and enables the keywords') or diag $@;
}

# keywords enabled in one file scope do not leak into another package's eval
{
    my $v = eval q{
        package Other;
        use Data::HashMap::Shared::II;
        shm_ii_get $ii, 42;
    };
    is($v, 100, 'keywords work in any package once used there') or diag $@;
}

done_testing;
