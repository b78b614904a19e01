use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Variants;
use Config;
use Scalar::Util qw(weaken);
use Data::HashMap::Shared;

# Forged and overwritten handle objects (issue 14, item 6). A map or cursor object is
# a blessed scalar whose engine pointer lives in ext magic that only the constructor
# attaches, not in the scalar's value. So assigning to $$m changes nothing, and a
# blessed integer, a copy of the scalar, a dclone, or another variant's handle
# reblessed into the class croak "not a valid CLASS object" in the method and the
# keyword form, instead of dereferencing an address Perl code made up. Every case
# runs in a forked child, so that a crash shows as a signal; each asserts the exact
# croak and that the process is still sound afterwards (a new map works).

local $ENV{HMS_CHILD_TIMEOUT} = 30;

# Runs $code in a child; the test passes when the child neither crashed nor died and
# returned $want (a string, or a regexp).
sub staged {
    my ($name, $want, $code) = @_;
    my $pid = in_child(sub {
        my $r = $code->();
        # the process is still sound: a new map works
        my $n = Data::HashMap::Shared::II->new(undef, 10);
        $n->put(1, 2) && $n->get(1) == 2 or die "a new map does not work any more\n";
        return $r;
    });
    my ($out, $err) = child_result($pid);
    is($err, undef, "$name: no crash") or return;
    ref $want ? like($out, $want, "$name: $want") : is($out, $want, $name);
}

# the croak of $code (the message up to " at FILE line N."), or "lived: RESULT"
sub croak_of {
    my $code = shift;
    my $r = eval { $code->() };
    return 'lived: ' . ($r // 'undef') unless $@;
    (my $e = $@) =~ s/ at (?:\S+|\(eval \d+\)) line \d+\.\n\z//;
    return $e;
}

# keyword form of get for a variant: sub { shm_V_get $_[0], $_[1] }
sub kw_get {
    my $v = shift;
    my $sub = eval "package KW::$v->{name}; use $v->{class}; sub { shm_$v->{prefix}_get \$_[0], \$_[1] }"
        or die "compiling the keyword: $@";
    return $sub;
}

for my $v (@VARIANTS) {
    my ($class, $k, $val) = ($v->{class}, $v->{keys}[1], $v->{vals}[1]);
    my $invalid = "not a valid $class object";
    my $kw = kw_get($v);
    my $fresh = sub { my $m = $class->new(undef, 10); $m->put($k, $val) or die "put failed\n"; $m };
    my $same = sub { my $got = shift; defined $got && $got eq $val ? 'same' : 'got ' . ($got // 'undef') };

    subtest "$v->{name}: the scalar's value is not the handle" => sub {
        for my $new ([ 'an address-like integer', 12345678 ], [ 'zero', 0 ], [ 'undef', undef ],
                     [ 'a string', 'x' ], [ 'a reference', [] ]) {
            my ($what, $x) = @$new;
            staged("\$\$m = $what, then get", 'same;same;same', sub {
                my $m = $fresh->();
                $$m = $x;
                my @r = ($same->($m->get($k)), $same->($kw->($m, $k)));
                my $c = $m->cursor;
                my @kv = $c->next;
                push @r, $same->($kv[1]);
                return join ';', @r;
            });
        }
        staged('$$m overwritten, then DESTROY and use', "Attempted to use a destroyed $class object", sub {
            my $m = $fresh->();
            $$m = 99;
            $m->DESTROY;
            return croak_of(sub { $m->get($k) });
        });
    };

    subtest "$v->{name}: objects no constructor made" => sub {
        my %forged = (
            'a blessed integer'            => sub { bless \(my $x = 12345678), $class },
            'a blessed zero'               => sub { bless \(my $x = 0), $class },
            'a blessed undef'              => sub { bless \(my $x), $class },
            'a blessed string'             => sub { bless \(my $x = 'not a map'), $class },
            'a blessed integer, subclass'  => sub { no strict 'refs'; @{"Sub::$v->{name}::ISA"} = ($class); bless \(my $x = 1), "Sub::$v->{name}" },
            'a copy of a live map scalar'  => sub { my $m = $fresh->(); bless \(my $x = $$m), $class },
            'a copy after the original was freed' => sub {
                my $m = $fresh->();
                my $copy = \(my $x = $$m);
                undef $m;
                bless $copy, $class;
            },
            'a dclone of a live map'       => sub { require Storable; Storable::dclone($fresh->()) },
            'a blessed hash'               => sub { bless {}, $class },
            'another variant reblessed'    => sub {
                my $o = variant($v->{name} eq 'SS' ? 'II' : 'SS');
                bless $o->{class}->new(undef, 10), $class;
            },
        );
        for my $what (sort keys %forged) {
            staged("$what as the map, method", $invalid, sub { my $f = $forged{$what}->(); croak_of(sub { $f->get($k) }) });
            staged("$what as the map, keyword", $invalid, sub { my $f = $forged{$what}->(); croak_of(sub { $kw->($f, $k) }) });
            staged("$what as the map, put, keys, stats, cursor", "$invalid|$invalid|$invalid|$invalid", sub {
                my $f = $forged{$what}->();
                join '|', map { croak_of($_) } sub { $f->put($k, $val) }, sub { $f->keys }, sub { $f->stats },
                    sub { $f->cursor };
            });
            staged("$what: DESTROY ignores it", 'lived: 1', sub {
                my $f = $forged{$what}->();
                no strict 'refs';
                croak_of(sub { &{"${class}::DESTROY"}($f); 1 });
            });
        }
    };

    subtest "$v->{name}: handles that are not first in the magic chain" => sub {
        staged('a weakened reference (back-reference magic comes first)', 'same;same;same', sub {
            my $m = $fresh->();
            weaken(my $w = $m);
            my @r = ($same->($m->get($k)), $same->($kw->($m, $k)), $same->($w->get($k)));
            return join ';', @r;
        });
    };

    subtest "$v->{name}: cursors" => sub {
        my $cclass = "${class}::Cursor";
        my $cinvalid = "not a valid $cclass object";
        my $kwnext = eval "package KW::$v->{name}; use $class; sub { my \@r = shm_$v->{prefix}_cursor_next \$_[0]; \$r[1] }"
            or die $@;
        staged('$$cursor overwritten, then next', 'same;same', sub {
            my $m = $fresh->();
            my $c = $m->cursor;
            $$c = 12345678;
            my @kv = $c->next;
            $c->reset;
            return join ';', $same->($kv[1]), $same->($kwnext->($c));
        });
        my %forged = (
            'a blessed integer' => sub { bless \(my $x = 12345678), $cclass },
            'a copy of a live cursor scalar' => sub { my $m = $fresh->(); my $c = $m->cursor; bless \(my $x = $$c), $cclass },
            'a map object reblessed as a cursor' => sub { bless $fresh->(), $cclass },
        );
        for my $what (sort keys %forged) {
            staged("$what as a cursor: next, reset, seek (method); next (keyword)", join('|', ($cinvalid) x 4), sub {
                my $f = $forged{$what}->();
                join '|', map { croak_of($_) } sub { $f->next }, sub { $f->reset }, sub { $f->seek($k) },
                    sub { $kwnext->($f) };
            });
            staged("$what: cursor DESTROY ignores it", 'lived: 1', sub {
                my $f = $forged{$what}->();
                croak_of(sub { $f->DESTROY; 1 });
            });
        }
        staged('a destroyed cursor', "Attempted to use a destroyed $cclass cursor", sub {
            my $c = $fresh->()->cursor;
            $c->DESTROY;
            croak_of(sub { $c->next });
        });
    };
}

# A map object reblessed into a class without our DESTROY is still released when it
# is freed (the magic's free hook), so no mapping leaks.
subtest 'a map reblessed into a foreign class is released when freed' => guard {
    my $p = tmppath('rebless');
    my $m = Data::HashMap::Shared::II->new($p, 100);
    my $mapped = sub { open my $f, '<', '/proc/self/maps' or die $!; scalar grep { index($_, $p) >= 0 } <$f> };
    ok($mapped->() >= 1, 'the file is mapped');
    bless $m, 'Some::Foreign::Class';
    undef $m;
    is($mapped->(), 0, 'freeing the reblessed object unmapped the file');
};

# A subclass whose CLONE_SKIP lets threads clone its objects: the clone must not
# share the parent's handle (both would close it); it is a destroyed object.
subtest 'threads: a clone that CLONE_SKIP did not stop is a destroyed object' => guard {
    plan skip_all => 'perl without ithreads' unless $Config{useithreads};
    require threads;
    @Cloned::II::ISA = ('Data::HashMap::Shared::II');
    no warnings 'once';
    *Cloned::II::CLONE_SKIP = sub { 0 };
    my $pid = in_child(sub {
        my $m = Cloned::II->new(undef, 10);
        $m->put(1, 2);
        my $in = threads->create(sub { croak_of(sub { $m->get(1) }) })->join;
        return join ';', $in, $m->get(1);
    });
    my ($out, $err) = child_result($pid);
    is($err, undef, 'no crash');
    is($out, 'Attempted to use a destroyed Data::HashMap::Shared::II object;2',
        'the thread sees a destroyed object; the parent\'s still works after the thread ended');
};

done_testing;
