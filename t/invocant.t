use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Variants;
use Config;
use Data::HashMap::Shared;

# Invocant checks (api.md 4, 9), argument magic that destroys or replaces the map
# in the middle of a call, DESTROY rules and CLONE_SKIP (api.md 1).

use Evil;    # Evil (overloaded) and EvilTie (tied) arguments that run code

for my $v (@VARIANTS) {
    subtest "invocant checks of $v->{name}" => guard {
        my $class = $v->{class};
        my ($k, $val) = ($v->{keys}[0], $v->{vals}[0]);
        my $other = ($v->{name} eq 'SS' ? variant('II') : variant('SS'))->{class}->new(undef, 10);
        my @bad = (
            [ 'a string',          'not an object' ],
            [ 'the class name',    $class ],
            [ 'undef',             undef ],
            [ 'an unblessed ref',  \my $x ],
            [ 'a hash object',     bless({}, $class) ],
            [ 'another variant',   $other ],
            [ 'a foreign object',  bless(\my $y, 'Some::Other') ],
        );
        no strict 'refs';
        for my $case (@bad) {
            my ($what, $inv) = @$case;
            for my $op ([get => $k], [put => $k, $val], ['size'], ['keys'], [set_multi => $k, $val], ['stats']) {
                my ($name, @args) = @$op;
                my $ok = eval { &{"${class}::$name"}($inv, @args); 1 };
                # an object of the class that no constructor made (t/forged.t has more)
                my $re = $what eq 'a hash object'
                    ? qr/^not a valid \Q$class\E object at /
                    : qr/^Expected a \Q$class\E object at /;
                ok(!$ok && $@ =~ $re, "$name with $what as invocant croaks")
                    or diag($ok ? 'lived' : $@);
            }
        }
        my $m = $class->new(undef, 10);
        $m->put($k, $val);
        my $sub = do { @{"My::${class}::ISA"} = ($class); "My::${class}" };
        my $sm = $sub->new(undef, 10);
        isa_ok($sm, $sub, 'a subclass constructor blesses into the subclass');
        ok($sm->put($k, $val), 'a subclass object is accepted');
        ok(&{"${class}::exists"}($sm, $k), 'also by the plain function');

        $m->DESTROY;
        for my $op ([get => $k], [put => $k, $val], ['size'], ['keys'], ['clear'], ['stats'], ['sync']) {
            my ($name, @args) = @$op;
            my $ok = eval { $m->$name(@args); 1 };
            ok(!$ok && $@ =~ /Attempted to use a destroyed \Q$class\E object/, "$name on a destroyed object croaks")
                or diag($ok ? 'lived' : $@);
        }
        ok(eval { $m->DESTROY; 1 }, 'DESTROY twice is harmless');
        ok(eval { &{"${class}::DESTROY"}('not an object'); &{"${class}::DESTROY"}(undef); &{"${class}::DESTROY"}([]); 1 },
            'DESTROY ignores foreign invocants') or diag $@;
        &{"${class}::DESTROY"}($other);
        ok(eval { $other->size; 1 }, 'DESTROY of another variant\'s object through this class does nothing')
            or diag $@;
        is(&{"${class}::CLONE_SKIP"}($class), 1, 'CLONE_SKIP returns 1');
        is($class->CLONE_SKIP, 1, 'CLONE_SKIP as a class method');
    };
}

# Argument magic that destroys or replaces the invocant mid-call. Each case runs
# in a child so that a crash is reported as a failure of that case.
my @how = (
    [ 'DESTROY', sub { my $r = shift; $$r->DESTROY } ],
    [ 'undef',   sub { my $r = shift; undef $$r } ],
    [ 'replace', sub { my $r = shift; $$r = ref($$r)->new(undef, 10) } ],
);
for my $v (variant('II'), variant('SS'), variant('SI'), variant('IS')) {
    my $class = $v->{class};
    my ($k, $val) = ($v->{keys}[1], $v->{vals}[1]);
    my $num = $v->{key} eq 'int' ? $k : 0;
    for my $h (@how) {
        my ($hname, $kill) = @$h;
        # the closures use $_[0] (an alias of the caller's variable), so that
        # undef / replace of that variable really frees the object mid-call
        my @ops = (
            [ 'put (key)',      sub { $_[0]->put($_[1], $val) },   'key' ],
            [ 'put (value)',    sub { $_[0]->put($k, $_[1]) },     'val' ],
            [ 'get',            sub { $_[0]->get($_[1]) },         'key' ],
            [ 'exists',         sub { $_[0]->exists($_[1]) },      'key' ],
            [ 'cas (desired)',  sub { $_[0]->cas($k, $val, $_[1]) }, 'val' ],
            [ 'set_multi',      sub { $_[0]->set_multi($k, $val, $_[1], $val) }, 'key' ],
            [ 'get_multi',      sub { $_[0]->get_multi($k, $_[1]) }, 'key' ],
            [ 'remove_multi',   sub { $_[0]->remove_multi($k, $_[1]) }, 'key' ],
            [ 'function get',   sub { no strict 'refs'; &{"${class}::get"}($_[0], $_[1]) }, 'key' ],
            ($v->{counters} ? ([ 'incr_by (delta)', sub { $_[0]->incr_by($k, $_[1]) }, 'num' ]) : ()),
        );
        for my $op (@ops) {
            my ($oname, $call, $kind) = @$op;
            for my $magic (qw(overload tie)) {
                my $pid = in_child(sub {
                    my $m = $class->new(undef, 10);
                    $m->put($k, $val);
                    my $ref = \$m;
                    my $fired = 0;
                    my $code = sub { $kill->($ref) unless $fired++ };
                    my ($sv, $nv);
                    if    ($kind eq 'num') { ($sv, $nv) = ('1', 1) }
                    elsif ($kind eq 'key') { ($sv, $nv) = ("$k",   $v->{key} eq 'int' ? $k : 0) }
                    else                   { ($sv, $nv) = ("$val", $v->{val} eq 'int' ? $val : 0) }
                    my $is_int = $kind eq 'num' || $v->{$kind} eq 'int';
                    my $arg;
                    if ($magic eq 'overload') { $arg = Evil->new($code, $sv, $nv) }
                    else { tie $arg, 'EvilTie', $code, $is_int ? $nv : $sv }
                    my $ok = eval { $call->($m, $arg); 1 };
                    my $err = $ok ? 'lived' : $@;
                    # the process must still be sane: a new map works
                    my $n = $class->new(undef, 10);
                    $n->put($k, $val) or die "new map unusable\n";
                    return "fired=$fired;$err";
                });
                my ($out, $err) = child_result($pid);
                is($err, undef, "$v->{name} $oname, $magic argument does $hname: no crash") or next;
                like($out, qr/^fired=1;.*\Q$class\E object (?:replaced or destroyed|was replaced) during the call/,
                    "$v->{name} $oname, $magic argument does $hname: croaks cleanly");
            }
        }
    }
}

subtest 'keyword form with a destroying argument' => guard {
    my $pid = in_child(sub {
        my $code = q{
            use Data::HashMap::Shared::II;
            my $m = Data::HashMap::Shared::II->new(undef, 10);
            my $r = \$m;
            my $e = Evil->new(sub { $$r->DESTROY }, '1', 1);
            my $ok = eval { my $x = shm_ii_get $m, $e; 1 };
            $ok ? 'lived' : $@;
        };
        my $res = eval $code;
        defined $res ? $res : "compile: $@";
    });
    my ($out, $err) = child_result($pid);
    is($err, undef, 'no crash');
    like($out // '', qr/object (?:replaced or destroyed|was replaced) during the call/, 'croaks cleanly');
};

subtest 'threads: handles are not cloned (CLONE_SKIP)' => guard {
    plan skip_all => 'perl without ithreads' unless $Config{useithreads};
    require threads;
    my $m = Data::HashMap::Shared::SS->new(undef, 100);
    $m->put('k', 'v');
    my $ii = Data::HashMap::Shared::II->new(tmppath('thr'), 100);
    $ii->put(1, 2);
    my $res = threads->create(sub {
        require Scalar::Util;
        my $blessed = Scalar::Util::blessed($m) // '';
        my $inner = ref $m eq 'SCALAR' && !defined $$m ? 'undef' : 'defined';
        # a map created inside the thread works there
        my $t = Data::HashMap::Shared::II->new(undef, 10);
        $t->put(3, 4);
        return join ',', $blessed, $inner, $t->get(3);
    })->join;
    is($res, ',undef,4', 'in the thread the handle arrives as an unblessed undef; new maps work');
    is($m->get('k'), 'v', 'the parent\'s map still works after the thread ended');
    is($ii->get(1), 2, 'file map too');
};

done_testing;
