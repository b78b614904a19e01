use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Variants;
use Data::HashMap::Shared;
use RedisServer;

# set_multi / get_multi / remove_multi (api.md 6.4). Batch calls evaluate every
# argument before touching the map: an argument whose magic dies stores / removes
# nothing, the user's exception comes through unchanged, and the map stays usable.
#
# Both backends: anonymous maps, and maps in a private redis-server (CI requires
# it). The one difference, listed where it is tested (POD "Differences on Redis",
# sizing accessors): a Redis map has no table, so it never shrinks.
my ($srv, @BACKENDS) = RedisServer->backends;

{
    package DieTie;
    sub TIESCALAR { my ($c, $err) = @_; bless { err => $err }, $c }
    sub FETCH { die $_[0]{err} }
    sub STORE { }
}
{
    package DieOverload;
    use overload '""' => sub { die $_[0]{err} }, '0+' => sub { die $_[0]{err} }, fallback => 1;
    sub new { bless { err => $_[1] }, $_[0] }
}

sub other_process_can_write {
    my ($m, $k, $val) = @_;
    my $pid = in_child(sub { alarm 20; $m->put($k, $val) ? 'ok' : 'failed' });
    my ($out, $err) = child_result($pid);
    return !defined $err && $out eq 'ok';
}

for my $b (@BACKENDS) {
for my $v (@VARIANTS) {
    subtest "batch operations of $v->{name} ($b)" => guard {
        my $class = $v->{class};
        my $redis = $b eq 'redis';
        my $new = sub { $redis ? $class->new($srv->url, @_) : $class->new(undef, @_) };
        my ($k0, $k1, $k2, $k3) = @{ $v->{keys} };
        my ($v0, $v1, $v2, $v3) = @{ $v->{vals} };
        my $m = $new->(100);
        my $same = sub { my ($g, $w) = @_; defined $g && "$g" eq "$w" };

        is($m->set_multi($k0, $v0, $k0, $v1), 2, 'duplicate key in one batch: both pairs count');
        ok($same->($m->get($k0), $v1), '... the later value wins');
        is($m->set_multi($k1, $v1, $k2, $v2, $k3, $v3), 3, 'three pairs');
        my @g = $m->get_multi($k3, $k2, $k1, $k0, $k3);
        is(scalar @g, 5, 'get_multi with a repeated key: one element per key');
        ok($same->($g[0], $v3) && $same->($g[1], $v2) && $same->($g[2], $v1) && $same->($g[3], $v1) && $same->($g[4], $v3),
            'get_multi values in argument order');
        is($m->remove_multi($k1, $k1, $v->{missing}), 1, 'remove_multi counts a repeated key once');
        is($m->size, 3, 'size 3');

        # dying argument magic in any position: nothing stored, exception unchanged
        for my $pos (0 .. 3) {
            for my $kind (qw(tie overload)) {
                my $before = $m->to_hash;
                my @args = ($v->{missing}, $v0, $k1, $v1);
                my $err = "boom at $pos\n";
                if ($kind eq 'tie') { tie $args[$pos], 'DieTie', $err }
                else { $args[$pos] = DieOverload->new($err) }
                my $ok = eval { $m->set_multi(@args); 1 };
                ok(!$ok, "set_multi dies when argument $pos ($kind) dies");
                is($@, $err, '... with the user\'s exception unchanged');
                is_deeply($m->to_hash, $before, '... and stores nothing');
                untie $args[$pos] if $kind eq 'tie';
            }
        }
        my $obj = { code => 42 };
        tie my $t, 'DieTie', $obj;
        my $ok = eval { $m->set_multi($k1, $v1, $t, $v2); 1 };
        ok(!$ok && ref $@ && $@ == $obj, 'an exception object comes through as the same reference');
        untie $t;

        for my $pos (0 .. 2) {
            my @keys = ($k0, $k2, $k3);
            my $before = $m->to_hash;
            tie $keys[$pos], 'DieTie', "rm $pos\n";
            my $ok2 = eval { $m->remove_multi(@keys); 1 };
            ok(!$ok2 && $@ eq "rm $pos\n", "remove_multi dies with argument $pos");
            is_deeply($m->to_hash, $before, '... and removes nothing');
            untie $keys[$pos];
        }
        {
            my @keys = ($k0, $k2);
            tie $keys[1], 'DieTie', "gm\n";
            my $ok3 = eval { my @x = $m->get_multi(@keys); 1 };
            ok(!$ok3 && $@ eq "gm\n", 'get_multi propagates the exception');
            untie $keys[1];
        }
        ok($m->put($k1, $v1), 'the map is usable afterwards');
        ok(other_process_can_write($m, $k3, $v0), 'another process can write (no lock left held)');

        # a batch larger than the table: failures are skipped and not counted,
        # later pairs are still attempted
        my $small = $new->(14);
        my @keys = map { $v->{key} eq 'int' ? 500 + $_ : "batch key $_" } 1 .. 20;
        my @pairs = map { ($keys[$_], $v0) } 0 .. 19;
        push @pairs, $keys[0], $v1;     # an existing key at the end
        is($small->set_multi(@pairs), 15, 'set_multi past max_entries: 14 stored + 1 update');
        is($small->size, 14, 'size 14');
        ok($same->($small->get($keys[0]), $v1), 'the pair after the failures was applied');
        my @all = $small->get_multi(@keys);
        is(scalar(grep { defined } @all), 14, 'get_multi over stored and missing keys');
        is($small->remove_multi(@keys), 14, 'remove_multi removes every stored key');
        is($small->size, 0, 'empty');
        is($small->capacity, 16, 'capacity 16');

        # a big batch
        my $big = $new->(2000);
        my @bk = map { $v->{key} eq 'int' ? $_ - 1000 : "big key $_" } 1 .. 1500;
        my $bv = $v->{val} eq 'int' ? 3 : 'a value that lives in the arena';
        is($big->set_multi(map { ($_, $bv) } @bk), 1500, 'set_multi of 1500 pairs');
        is($big->size, 1500, 'size 1500');
        my @bg = $big->get_multi(@bk);
        is(scalar(grep { defined && "$_" eq "$bv" } @bg), 1500, 'get_multi of 1500 keys');
        is($big->remove_multi(@bk[0 .. 999]), 1000, 'remove_multi of 1000 keys');
        is($big->size, 500, '500 left');
        if ($redis) {
            # (difference: no table to shrink; capacity stays what a file map of
            # max_entries 2000 would have at most)
            is($big->capacity, 4096, 'Redis: capacity is fixed (no table shrinks)');
        }
        else {
            ok($big->capacity <= 1024 && $big->capacity * 7 / 8 >= 500, 'remove_multi shrank the table: ' . $big->capacity);
        }
    };
}
}

done_testing;
