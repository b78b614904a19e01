use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Variants;
use POSIX ();
use Data::HashMap::Shared;

# Hostile arguments (issue 5; api.md 4, 7.10). t/invocant.t covers bad invocants and
# arguments that destroy / replace the map for put, get, exists, cas, the batch calls
# and incr_by. Here: EVERY method that takes an argument, EVERY argument position, for
# arguments whose conversion (overload or tie) runs code that
#   die      - throws,
#   DESTROY  - calls $map->DESTROY,
#   undef    - undefs the variable holding the map,
#   replace  - stores another map in that variable,
#   reenter  - uses the same map (put, keys, each, clear) in the middle of the call,
#   stack    - grows the Perl argument stack (it may move),
# and checks, in a forked child per case: no crash; the call croaks with the
# argument's error or "... object replaced or destroyed during the call" (reenter and
# stack: it completes); no lock is left held (the header's writer word is 0, the
# seqlock even, every reader slot's count 0) and another process can write the map at
# once. Also: dying arguments of constructors (no descriptor leak), keyword forms,
# tied invocants, and an argument whose magic frees another argument of the same call.

use Evil;    # Evil (overloaded) and EvilTie (tied) arguments that run code

local $ENV{HMS_CHILD_TIMEOUT} = 20;

# method => argument kinds: k key, v value, n integer (delta / bound), u unsigned (ttl /
# limit / target). Int-value-only methods are marked with a leading '+'.
my @METHODS = (
    [ get => 'k' ], [ exists => 'k' ], [ remove => 'k' ], [ put => 'kv' ], [ add => 'kv' ],
    [ update => 'kv' ], [ swap => 'kv' ], [ take => 'k' ], [ get_or_set => 'kv' ],
    [ cas => 'kvv' ], [ cas_take => 'kv' ],
    [ '+incr' => 'k' ], [ '+decr' => 'k' ], [ '+incr_by' => 'kn' ], [ '+max' => 'kn' ], [ '+min' => 'kn' ],
    [ put_ttl => 'kvu' ], [ add_ttl => 'kvu' ], [ update_ttl => 'kvu' ], [ ttl_remaining => 'k' ],
    [ get_with_ttl => 'k' ], [ touch => 'k' ], [ persist => 'k' ], [ set_ttl => 'ku' ],
    [ flush_expired_partial => 'u' ], [ drain => 'u' ], [ reserve => 'u' ],
    [ set_multi => 'kvkvkv' ], [ get_multi => 'kkk' ], [ remove_multi => 'kkk' ],
);

my %KILL = (
    die     => sub { die "boom from an argument\n" },
    DESTROY => sub { my $r = shift; $$r->DESTROY },
    undef   => sub { my $r = shift; undef $$r },
    replace => sub { my ($r, $p) = @_; $$r = ref($$r)->new("$p.other", 100, 0, 3600) },
    reenter => sub {
        my $r = shift;
        my $m = $$r;
        my $v = ref($m) =~ /::(\w+)$/ ? $1 : '';
        $m->put($v =~ /^I/ ? 5 : 'k5', $v =~ /S$/ ? 'v5' : 5);
        my @k = $m->keys;
        my @e = $m->each;
        $m->iter_reset;
        $m->clear;
    },
    stack   => sub { my @x = (1) x 200_000; my $n = () = (@x, @x) },
);
my @KILLS = qw(die DESTROY undef replace reenter stack);

sub sample {
    my ($v, $kind, $i) = @_;
    return $i if $kind eq 'n' || $kind eq 'u';
    my $int = $kind eq 'k' ? $v->{key} eq 'int' : $v->{val} eq 'int';
    return $int ? $i : ($kind eq 'k' ? "k$i" : "v$i");
}

# The lock words in the file: '' when no lock is held, else a description.
sub lock_state {
    my $p = shift;
    open my $f, '<:raw', $p or return "open: $!";
    sysread $f, my $b, 4096 + 1024 * 64;
    my ($w, $seq) = unpack 'V V', substr($b, 256, 8);    # writer word, seq (the hot line)
    my @held = grep { unpack('V', substr($b, 4096 + 64 * $_ + 4, 4)) & 0x7FFFFFFF } 0 .. 1023;
    my @bad;
    push @bad, sprintf('writer word 0x%x', $w) if $w;
    push @bad, "seq $seq is odd" if $seq & 1;
    push @bad, "reader slots @held hold read locks" if @held;
    return join ', ', @bad;
}

# Another process opens the map and writes (bounded by an alarm).
sub other_process_writes {
    my ($class, $p, $k, $x) = @_;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        alarm 5;
        my $ok = eval { my $o = $class->new($p, 100, 0, 3600); $o->put($k, $x) && $o->remove($k) };
        POSIX::_exit($ok ? 0 : 1);
    }
    waitpid $pid, 0;
    return $? == 0 ? '' : $? & 127 ? 'another process blocked (signal ' . ($? & 127) . ')' : 'another process failed to write';
}

sub one_case {
    my ($v, $meth, $kinds, $pos, $magic, $kill) = @_;
    my $class = $v->{class};
    my $p = tmppath('args');
    my $m = $class->new($p, 100, 0, 3600);
    $m->put(sample($v, 'k', $_), sample($v, 'v', $_)) for 1 .. 4;
    my $ref = \$m;
    my $fired = 0;
    my $code = sub { $KILL{$kill}->($ref, $p) unless $fired++ };
    my @kinds = split //, $kinds;
    my @args = map { sample($v, $kinds[$_], $_ + 1) } 0 .. $#kinds;
    my $plain = $args[$pos];
    # the tied element itself goes on the stack (a copy would FETCH here, too early)
    if ($magic eq 'overload') { $args[$pos] = Evil->new($code, "$plain", $plain =~ /^-?\d+$/ ? $plain : 0) }
    else { tie $args[$pos], 'EvilTie', $code, $plain }
    local $SIG{__WARN__} = sub { };
    my $ok = eval { my @r = $m->$meth(@args); 1 };
    my $err = $ok ? '' : $@;
    my @bad;
    push @bad, "lock: $_" for grep { length } lock_state($p);
    # (another process writing costs a fork: only after the calls that end early)
    push @bad, $_ for grep { length } ($kill eq 'die' || $kill eq 'DESTROY')
        ? other_process_writes($class, $p, sample($v, 'k', 99), sample($v, 'v', 99)) : ();
    # and this process can still use the map through a new handle
    my $n = eval { $class->new($p, 100)->put(sample($v, 'k', 98), sample($v, 'v', 98)) };
    push @bad, 'a new handle cannot write' unless $n;
    unlink $p, "$p.other";
    return join '|', "fired=$fired", ($ok ? 'lived' : "died=$err"), @bad;
}

my $VARIANTS = [ variant('SS'), variant('SI'), variant('II') ];
my ($cases, $t0) = (0, time);
for my $v (@$VARIANTS) {
    subtest "argument magic in every method of $v->{name}" => guard {
        for my $row (@METHODS) {
            my ($meth, $kinds) = @$row;
            next if $meth =~ s/^\+// && !$v->{counters};
            for my $pos (0 .. length($kinds) - 1) {
                for my $kill (@KILLS) {
                    for my $magic (qw(overload tie)) {
                        # the second magic kind only for the kills that end the call
                        next if $magic eq 'tie' && ($kill eq 'reenter' || $kill eq 'stack' || $pos > 1);
                        $cases++;
                        my $pid = in_child(sub { one_case($v, $meth, $kinds, $pos, $magic, $kill) });
                        my ($out, $err) = child_result($pid);
                        my $name = "$v->{name} $meth arg " . ($pos + 1) . " ($magic) does $kill";
                        if (defined $err) { fail("$name: $err"); next }
                        my ($fired, $res, @bad) = split /\|/, $out, -1;
                        my $want = $kill eq 'die' ? qr/^died=boom from an argument/
                            : ($kill eq 'reenter' || $kill eq 'stack') ? qr/^lived$/
                            : qr/^died=\Q$v->{class}\E object (?:replaced or destroyed|was replaced) during the call/;
                        ok($fired eq 'fired=1' && $res =~ $want && !@bad, $name)
                            or diag("$fired; $res; @bad");
                    }
                }
            }
        }
    };
}
note("$cases method cases in " . (time - $t0) . ' s');

subtest 'a dying batch argument: nothing half-locked, earlier pairs' => guard {
    my $pid = in_child(sub {
        my $p = tmppath('batch');
        my $m = Data::HashMap::Shared::SS->new($p, 1000);
        my $n = 0;
        my @args = map { ("k$_", "v$_") } 1 .. 100;
        $args[101] = Evil->new(sub { die "boom at pair 51\n" if ++$n }, 'x', 0);
        my $ok = eval { $m->set_multi(@args); 1 };
        my $err = $@;
        my $size = $m->size;
        my $lock = lock_state($p);
        my $other = other_process_writes('Data::HashMap::Shared::SS', $p, 'zz', 'yy');
        my @g = eval { $m->get_multi(map { "k$_" } 1 .. 100, Evil->new(sub { die "boom in get_multi\n" }, 'x', 0)) };
        my $err2 = $@;
        my $lock2 = lock_state($p);
        my @r = eval { $m->remove_multi('k1', Evil->new(sub { die "boom in remove_multi\n" }, 'x', 0)) };
        my $err3 = $@;
        my $lock3 = lock_state($p);
        return join '|', $ok ? 'lived' : $err, $size, $lock, $other, $err2, $lock2, $err3, $lock3, $m->size;
    });
    my ($out, $err) = child_result($pid);
    is($err, undef, 'no crash') or return;
    my ($e1, $size, $l1, $o1, $e2, $l2, $e3, $l3, $size2) = split /\|/, $out, -1;
    like($e1, qr/^boom at pair 51/, 'set_multi croaks with the argument\'s error');
    ok($size == 0 || $size == 50, "pairs before the bad one: none or all stored ($size)");
    is($l1, '', 'no lock left after set_multi');
    is($o1, '', 'another process writes at once');
    like($e2, qr/^boom in get_multi/, 'get_multi croaks');
    is($l2, '', 'no read lock left after get_multi');
    like($e3, qr/^boom in remove_multi/, 'remove_multi croaks');
    is($l3, '', 'no lock left after remove_multi');
    ok($size2 == $size || $size2 == $size - 1, 'remove_multi removed nothing or the pair before the bad key');
};

subtest 'constructors with dying arguments leak nothing' => guard {
    my $pid = in_child(sub {
        my $fds = sub { opendir my $d, '/proc/self/fd' or die $!; my $n = grep { /^\d+$/ } readdir $d; $n };
        my $before = $fds->();
        my $dir = tmpdir();
        my @err;
        for my $i (1 .. 200) {
            my $boom = Evil->new(sub { die "boom $i\n" }, "$dir/c$i.shm", 10);
            tie my $tboom, 'EvilTie', sub { die "tie boom $i\n" }, 10;
            push @err, eval { Data::HashMap::Shared::SS->new($boom, 10); 1 } ? 'lived' : $@;
            push @err, eval { Data::HashMap::Shared::SS->new("$dir/c$i.shm", $tboom); 1 } ? 'lived' : $@;
            push @err, eval { Data::HashMap::Shared::SS->new("$dir/c$i.shm", 10, 0, 0, 0, 0, $boom); 1 } ? 'lived' : $@;
            push @err, eval { Data::HashMap::Shared::SS->new_memfd($boom, 10); 1 } ? 'lived' : $@;
            push @err, eval { Data::HashMap::Shared::SS->new_memfd('x', $tboom); 1 } ? 'lived' : $@;
            push @err, eval { Data::HashMap::Shared::SS->new_from_fd($tboom); 1 } ? 'lived' : $@;
            unlink "$dir/c$i.shm";
        }
        my @bad = grep { !/boom/ } @err;
        return join '|', $fds->() - $before, scalar(@bad), $bad[0] // '';
    });
    my ($out, $err) = child_result($pid);
    is($err, undef, 'no crash') or return;
    my ($dfd, $nbad, $first) = split /\|/, $out, -1;
    is($dfd, 0, 'no descriptor left open by 1200 failed constructor calls');
    is($nbad, 0, 'every call croaked with the argument\'s error') or diag $first;
};

subtest 'keyword forms' => guard {
    my @kw = (
        [ SS => 'shm_ss_put $m, $e, "v"' ], [ SS => 'shm_ss_put $m, "k", $e' ],
        [ SS => 'my $x = shm_ss_get $m, $e' ], [ SS => 'shm_ss_cas $m, "k", "v", $e' ],
        [ SS => 'my $x = shm_ss_get_or_set $m, "k", $e' ], [ SS => 'shm_ss_put_ttl $m, "k", "v", $e' ],
        [ SI => 'my $x = shm_si_incr_by $m, "k", $e' ], [ SI => 'my $x = shm_si_max $m, $e, 5' ],
        [ II => 'my @x = shm_ii_drain $m, $e' ], [ II => 'shm_ii_reserve $m, $e' ],
        [ II => 'my $x = shm_ii_take $m, $e' ], [ IS => 'shm_is_set_ttl $m, 1, $e' ],
    );
    for my $case (@kw) {
        my ($vn, $stmt) = @$case;
        for my $kill (qw(die DESTROY undef replace)) {
            my $pid = in_child(sub {
                my $class = "Data::HashMap::Shared::$vn";
                my $p = tmppath('kw');
                my $code = "use $class; sub { my (\$m, \$e) = \@_; $stmt; 1 }";
                my $f = eval $code or die "compile: $@";
                my $m = $class->new($p, 100, 0, 3600);
                my $ref = \$m;
                my $fired = 0;
                my $e = Evil->new(sub { $KILL{$kill}->($ref, $p) unless $fired++ }, '1', 1);
                local $SIG{__WARN__} = sub { };
                # $_[0] inside the sub aliases $m: the kill reaches the keyword's operand
                my $ok = eval { $f->($m, $e) };
                my $err = $ok ? 'lived' : $@;
                my $lock = lock_state($p);
                unlink $p, "$p.other";
                return "$fired|$err|$lock";
            });
            my ($out, $err) = child_result($pid);
            my $name = "$stmt: argument does $kill";
            if (defined $err) { fail("$name: $err"); next }
            my ($fired, $res, $lock) = split /\|/, $out, -1;
            my $want = $kill eq 'die' ? qr/^boom from an argument/
                : qr/object (?:replaced or destroyed|was replaced) during the call|^lived$/;
            ok($fired == 1 && $res =~ $want && $lock eq '', $name) or diag "fired=$fired; $res; $lock";
        }
    }
};

subtest 'tied invocants' => guard {
    {
        package TieInv;
        sub TIESCALAR { my ($c, @m) = @_; bless { m => \@m, n => 0 }, $c }
        sub FETCH { my $s = shift; my $i = $s->{n}++; die "invocant FETCH dies\n" if $s->{m}[$i] eq 'die'; $s->{m}[$i] }
        sub STORE { }
    }
    my $pid = in_child(sub {
        my $p = tmppath('tinv');
        my $a = Data::HashMap::Shared::SS->new($p, 100);
        my $b = Data::HashMap::Shared::SS->new(undef, 100);
        my @res;
        # FETCH returns a map for method lookup, then dies
        tie my $t1, 'TieInv', $a, 'die', 'die';
        push @res, eval { $t1->put('k', 'v'); 'lived' } // $@;
        # FETCH returns a different map each time
        tie my $t2, 'TieInv', $a, $b, $a, $b;
        push @res, eval { $t2->put('k2', 'v2'); 'lived' } // $@;
        # FETCH returns a non-object the second time
        tie my $t3, 'TieInv', $a, 'not an object', 'x';
        push @res, eval { $t3->put('k3', 'v3'); 'lived' } // $@;
        push @res, lock_state($p);
        return join '|', @res;
    });
    my ($out, $err) = child_result($pid);
    is($err, undef, 'no crash') or return;
    my @r = split /\|/, $out, -1;
    like($r[0], qr/^invocant FETCH dies/, 'a dying FETCH of the invocant croaks');
    like($r[1], qr/^lived$/, 'an invocant that changes between FETCHes: the call goes to one of them');
    like($r[2], qr/Expected a Data::HashMap::Shared::SS object/, 'an invocant that turns into a string croaks');
    is($r[3], '', 'no lock left');
};

# Perl's argument stack does not own references (before 5.40's refcounted stack), so
# code run by one argument can free another argument of the same call: here the
# key is an array element and the value's magic empties the array. The glue must not
# read freed memory (it may croak, or use any value for the key).
subtest 'an argument that frees another argument' => guard {
    for my $vn (qw(SS SI IS)) {
        for my $meth (qw(put cas get_or_set set_multi)) {
            my $pid = in_child(sub {
                my $class = "Data::HashMap::Shared::$vn";
                my $m = $class->new(undef, 100);
                my $v = variant($vn);
                my @a = (sample($v, 'k', 1) . ('x' x 40), sample($v, 'v', 1) . ('y' x 40));
                my $e = Evil->new(sub { @a = (); my @junk = map { "z" x 48 } 1 .. 100 }, 'w' x 20, 3);
                local $SIG{__WARN__} = sub { };
                my $ok = eval {
                    if    ($meth eq 'put')        { $m->put($a[0], $e) }
                    elsif ($meth eq 'cas')        { $m->cas($a[0], $a[1], $e) }
                    elsif ($meth eq 'get_or_set') { $m->get_or_set($a[0], $e) }
                    else                          { $m->set_multi($a[0], $e, $a[1], $e) }
                    1;
                };
                my @k = $m->keys;
                return ($ok ? 'lived' : "died: $@") . '|' . scalar(@k);
            });
            my ($out, $err) = child_result($pid);
            is($err, undef, "$vn $meth: freeing an earlier argument does not crash") or diag $err;
        }
    }
};

done_testing;
