use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Variants;
use Data::HashMap::Shared;

# Every in-scope keyword (api.md 2.4) on every variant. The test code is written
# once as a template with PFX for the variant prefix and compiled per variant by a
# string eval that starts with `use CLASS;`, so the keywords are enabled exactly in
# the scope of that eval (api.md 2.1).

my $COMMON = <<'EOT';
use CLASS;
sub {
    my ($m, $K, $V, $miss) = @_;
    my ($k0, $k1, $k2, $k3) = @$K;
    my ($v0, $v1, $v2, $v3) = @$V;

    is(shm_PFX_size $m, 0, 'size 0');
    is(shm_PFX_get $m, $k0, undef, 'get missing -> undef');
    is_false(shm_PFX_exists $m, $k0, 'exists missing -> false');
    is_true(shm_PFX_put $m, $k0, $v0, 'put -> true');
    same(shm_PFX_get $m, $k0, $v0, 'get after put');
    is_true(shm_PFX_exists $m, $k0, 'exists -> true');
    is_false(shm_PFX_add $m, $k0, $v1, 'add existing -> false');
    is_true(shm_PFX_add $m, $k1, $v1, 'add new -> true');
    is_false(shm_PFX_update $m, $k2, $v2, 'update missing -> false');
    is_true(shm_PFX_update $m, $k1, $v2, 'update existing -> true');
    same(shm_PFX_get $m, $k1, $v2, 'updated value');
    is(shm_PFX_swap $m, $k2, $v0, undef, 'swap absent -> undef');
    same(shm_PFX_swap $m, $k2, $v3, $v0, 'swap present -> old value');
    same(shm_PFX_take $m, $k2, $v3, 'take -> value');
    is(shm_PFX_take $m, $k2, undef, 'take missing -> undef');
    same(shm_PFX_get_or_set $m, $k3, $v1, $v1, 'get_or_set absent -> default');
    same(shm_PFX_get_or_set $m, $k3, $v2, $v1, 'get_or_set present -> stored');
    is_false(shm_PFX_cas $m, $k3, $v0, $v2, 'cas mismatch -> false');
    is_true(shm_PFX_cas $m, $k3, $v1, $v2, 'cas match -> true');
    same(shm_PFX_get $m, $k3, $v2, 'cas stored desired');
    is(shm_PFX_cas_take $m, $k3, $v0, undef, 'cas_take mismatch -> undef');
    same(shm_PFX_cas_take $m, $k3, $v2, $v2, 'cas_take match -> value');
    is_false(shm_PFX_exists $m, $k3, 'cas_take removed it');
    is_true(shm_PFX_remove $m, $k1, 'remove -> true');
    is_false(shm_PFX_remove $m, $k1, 'remove missing -> false');
    is(shm_PFX_size $m, 1, 'size 1');

    shm_PFX_put $m, $k1, $v1;
    shm_PFX_put $m, $k2, $v2;
    my %want = ($k0 => $v0, $k1 => $v1, $k2 => $v2);
    my @k = shm_PFX_keys $m;
    my @v = shm_PFX_values $m;
    my @i = shm_PFX_items $m;
    is_deeply([sort @k], [sort keys %want], 'keys');
    is_deeply([sort @v], [sort values %want], 'values');
    is_deeply({@i}, \%want, 'items');
    # forced list context: a scalar assignment still gets the last element
    my $lastk = shm_PFX_keys $m;
    is($lastk, $k[-1], 'keys keyword in scalar assignment -> last key');
    my $lastv = shm_PFX_values $m;
    is($lastv, $v[-1], 'values keyword in scalar assignment -> last value');
    my $lasti = shm_PFX_items $m;
    is($lasti, $i[-1], 'items keyword in scalar assignment -> last element');
    is_deeply(shm_PFX_to_hash $m, \%want, 'to_hash');

    my %seen;
    my $guard = 0;
    while (my ($ek, $ev) = shm_PFX_each $m) { $seen{$ek} = $ev; last if ++$guard > 10 }
    is_deeply(\%seen, \%want, 'each visits all');
    my $first = shm_PFX_each $m;
    ok(defined $first && grep({ $_ eq $first } values %want), 'each keyword in scalar assignment -> the value');
    my @rr = shm_PFX_iter_reset $m;
    is(scalar @rr, 0, 'iter_reset returns nothing');
    my @again = shm_PFX_each $m;
    is(scalar @again, 2, 'each after iter_reset starts over');
    shm_PFX_iter_reset $m;

    is(shm_PFX_max_entries $m, 112, 'max_entries');
    is(shm_PFX_max_size $m, 0, 'max_size');
    is(shm_PFX_ttl $m, 0, 'ttl');
    is(shm_PFX_capacity $m, 16, 'capacity');
    is(shm_PFX_tombstones $m, $m->tombstones, 'tombstones');
    is(shm_PFX_mmap_size $m, $m->mmap_size, 'mmap_size');
    is(shm_PFX_arena_used $m, $m->arena_used, 'arena_used');
    is(shm_PFX_arena_cap $m, $m->arena_cap, 'arena_cap');
    is(shm_PFX_stat_evictions $m, 0, 'stat_evictions');
    is(shm_PFX_stat_expired $m, 0, 'stat_expired');
    is(shm_PFX_stat_recoveries $m, 0, 'stat_recoveries');
    is_true(shm_PFX_reserve $m, 60, 'reserve -> true');
    is(shm_PFX_capacity $m, $m->capacity, 'capacity after reserve');
    ok((shm_PFX_capacity $m) >= 64, 'reserve 60 grew the table');
    my @cr = shm_PFX_clear $m;
    is(scalar @cr, 0, 'clear returns nothing');
    is(shm_PFX_size $m, 0, 'size 0 after clear');
    is(shm_PFX_capacity $m, 16, 'capacity 16 after clear');
    my @none = shm_PFX_keys $m;
    is(scalar @none, 0, 'keys on empty map');

    # the keyword calls the XS function directly: a subclass override is bypassed
    {
        no strict 'refs';
        @{"My::Sub::PFX::ISA"} = ('CLASS');
        *{"My::Sub::PFX::get"} = sub { 'overridden' };
    }
    my $sub = My::Sub::PFX->new(undef, 10);
    shm_PFX_put $sub, $k0, $v0;
    same(shm_PFX_get $sub, $k0, $v0, 'keyword bypasses a subclass override');
    is($sub->get($k0), 'overridden', 'method call sees the override');
    1;
}
EOT

my $COUNTERS = <<'EOT';
use CLASS;
sub {
    my ($m, $K) = @_;
    my ($k0, $k1) = @$K;
    is(shm_PFX_incr $m, $k0, 1, 'incr missing -> 1');
    is(shm_PFX_incr $m, $k0, 2, 'incr -> 2');
    is(shm_PFX_decr $m, $k0, 1, 'decr -> 1');
    is(shm_PFX_decr $m, $k1, -1, 'decr missing -> -1');
    is(shm_PFX_incr_by $m, $k0, 41, 42, 'incr_by 41 -> 42');
    is(shm_PFX_incr_by $m, $k0, -2, 40, 'incr_by -2 -> 40');
    is(shm_PFX_max $m, $k0, 100, 100, 'max raises');
    is(shm_PFX_max $m, $k0, 5, 100, 'max keeps');
    is(shm_PFX_min $m, $k0, 9, 9, 'min lowers');
    is(shm_PFX_min $m, $k0, 50, 9, 'min keeps');
    is(shm_PFX_get $m, $k0, 9, 'stored');
    1;
}
EOT

sub same {
    my ($got, $want, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is(defined $got ? "$got" : undef, defined $want ? "$want" : undef, $name);
}

for my $v (@VARIANTS) {
    subtest "keywords of $v->{name}" => guard {
        my $code = $COMMON;
        $code =~ s/PFX/$v->{prefix}/g;
        $code =~ s/CLASS/$v->{class}/g;
        my $sub = eval $code or do { fail("template compiles for $v->{name}"); diag $@; return };
        $sub->($v->{class}->new(undef, 100), $v->{keys}, $v->{vals}, $v->{missing});

        if ($v->{counters}) {
            my $c = $COUNTERS;
            $c =~ s/PFX/$v->{prefix}/g;
            $c =~ s/CLASS/$v->{class}/g;
            my $csub = eval $c or do { fail("counter template compiles for $v->{name}"); diag $@; return };
            $csub->($v->{class}->new(undef, 100), $v->{keys});
        }
        else {
            # no counter keywords on string-value variants: an indirect method call
            my $m = $v->{class}->new(undef, 10);
            for my $op (qw(incr decr)) {
                my $kw = "shm_$v->{prefix}_$op";
                my $ok = eval "use $v->{class}; no warnings; my \$r = $kw \$m, 1; 1";
                ok(!$ok, "$kw is not a keyword");
                like($@, qr/Can't locate object method "$kw" via package "\Q$v->{class}\E"/, "... $kw parses as a method call");
            }
        }
    };
}

# decisions.md 13: a keyword compiles to a custom op that calls the engine
# directly: no entersub, no method lookup in the compiled code.
{
    require B;
    my $op_names = sub {
        my @names;
        my $walk;
        $walk = sub {
            my $o = shift;
            return unless $$o;
            push @names, $o->name;
            if ($o->flags & B::OPf_KIDS()) { for (my $k = $o->first; $$k; $k = $k->sibling) { $walk->($k) } }
        };
        $walk->(B::svref_2object(shift)->ROOT);
        return @names;
    };
    my %arity = (put => 3, get => 2, remove => 2, exists => 2, add => 3, update => 3, swap => 3, take => 2,
        get_or_set => 3, cas => 4, cas_take => 3, clear => 1, keys => 1, values => 1, items => 1, each => 1,
        iter_reset => 1, to_hash => 1, size => 1, max_entries => 1, max_size => 1, ttl => 1, capacity => 1,
        tombstones => 1, mmap_size => 1, arena_used => 1, arena_cap => 1, reserve => 2, stat_evictions => 1,
        stat_expired => 1, stat_recoveries => 1);
    my %counter = (incr => 2, decr => 2, incr_by => 3, max => 3, min => 3);
    for my $v (@VARIANTS) {
        subtest "keywords of $v->{name} compile to custom ops" => guard {
            my %kw = (%arity, $v->{counters} ? %counter : ());
            for my $op (sort keys %kw) {
                my $args = join ', ', '$m', map { '$a' . $_ } 1 .. $kw{$op} - 1;
                my $code = "use $v->{class}; sub { my (\$m, \$a1, \$a2, \$a3) = \@_; my \@r = (shm_$v->{prefix}_$op $args); }";
                my $sub = eval $code or do { fail("shm_$v->{prefix}_$op compiles"); diag $@; next };
                my @n = $op_names->($sub);
                my @calls = grep { /^(?:entersub|method|method_named|method_super|method_redir)/ } @n;
                ok(!@calls, "shm_$v->{prefix}_$op has no sub or method call") or diag "ops: @n";
            }
        };
    }
}

done_testing;
