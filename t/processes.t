use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Variants;
use Data::HashMap::Shared;

# Many processes on one map (api.md 7.10): exact final state after concurrent
# put/get/incr/cas/remove, exactly one winner of racing add/cas/take, and readers
# that never see a torn value or a missing key while a writer rewrites and resizes.

my $II = 'Data::HashMap::Shared::II';
my $SS = 'Data::HashMap::Shared::SS';
my $SI = 'Data::HashMap::Shared::SI';

# All children block on a pipe until the parent closes it, so they start together.
sub barrier { pipe(my $r, my $w) or die "pipe: $!"; return ($r, $w) }
sub wait_barrier { my ($r, $w) = @_; close $w; sysread($r, my $buf, 1); close $r }

subtest 'workers hammer one map; the final state is exact' => guard {
    my $N = 4;
    my $I = 4500;
    for my $backing ('anonymous', 'file') {
        my $m = $II->new($backing eq 'file' ? tmppath('hammer') : undef, 20000);
        my ($br, $bw) = barrier();
        my @pids = map {
            my $w = $_;
            in_child(sub {
                wait_barrier($br, $bw);
                my $h = $backing eq 'file' ? $II->new($m->path, 20000) : $m;
                my $bad = 0;
                for my $i (1 .. $I) {
                    my $own = $w * 1_000_000 + $i;
                    $h->incr(0);
                    $h->incr_by(2, $w + 1);
                    $h->put($own, $i * 7) or $bad++;
                    $bad++ unless ($h->get($own) // -1) == $i * 7;
                    $h->remove($own) or $bad++ if $i % 3 == 0;
                    $h->max(3, $w * $I + $i);
                    $h->min(4, -($w * $I + $i));
                    if ($i % 4 == 0) {
                        # counter through a cas loop
                        my $tries = 0;
                        while (1) {
                            my $cur = $h->get(1) // 0;
                            if (!defined $h->get(1)) { last if $h->add(1, 1); next }
                            last if $h->cas(1, $cur, $cur + 1);
                            die "cas livelock\n" if ++$tries > 100000;
                        }
                    }
                    if ($i % 5 == 0) {
                        my $o = $w * 1_000_000 + $i - 1;
                        $bad++ unless ($h->get($o) // -1) == ($i - 1) * 7 || ($i - 1) % 3 == 0;
                    }
                }
                return $bad;
            });
        } 1 .. $N;
        close $bw;
        close $br;
        for my $r (wait_all(@pids)) {
            is($r->[1], undef, "$backing: worker finished");
            is($r->[0], 0, "$backing: worker saw only its own consistent values");
        }
        is($m->get(0), $N * $I, "$backing: incr total");
        is($m->get(1), $N * $I / 4, "$backing: cas-loop total");
        my $deltas = 0;
        $deltas += $_ + 1 for 1 .. $N;
        is($m->get(2), $I * $deltas, "$backing: incr_by total");
        is($m->get(3), $N * $I + $I, "$backing: max");
        is($m->get(4), -($N * $I + $I), "$backing: min");
        my $expect_own = $N * ($I - int($I / 3));
        is($m->size, 5 + $expect_own, "$backing: size");
        my $wrong = 0;
        for my $w (1 .. $N) {
            for my $i (1 .. $I) {
                my $got = $m->get($w * 1_000_000 + $i);
                if ($i % 3 == 0) { $wrong++ if defined $got }
                else { $wrong++ unless defined $got && $got == $i * 7 }
            }
        }
        is($wrong, 0, "$backing: every worker's own entries are exactly right");
        is(scalar(() = $m->keys), $m->size, "$backing: keys agrees with size");
    }
};

subtest 'string map hammered by workers' => guard {
    my $N = 3;
    my $I = 3000;
    my $m = $SS->new(tmppath('sshammer'), 10000);
    my ($br, $bw) = barrier();
    my @pids = map {
        my $w = $_;
        in_child(sub {
            wait_barrier($br, $bw);
            my $bad = 0;
            for my $i (1 .. $I) {
                my $k = "w$w key $i";
                my $val = "value of $k " . ('x' x ($i % 50));
                $m->put($k, $val) or $bad++;
                $bad++ unless ($m->get($k) // '') eq $val;
                $m->remove($k) or $bad++ if $i % 2;
                # shared counter kept as a decimal string, updated with cas
                while (1) {
                    my $cur = $m->get('count');
                    if (!defined $cur) { last if $m->add('count', '1'); next }
                    last if $m->cas('count', $cur, $cur + 1);
                }
            }
            return $bad;
        });
    } 1 .. $N;
    close $bw;
    close $br;
    for my $r (wait_all(@pids)) {
        is($r->[1], undef, 'worker finished');
        is($r->[0], 0, 'worker saw its own values');
    }
    is($m->get('count'), $N * $I, 'cas-loop string counter is exact');
    is($m->size, 1 + $N * $I / 2, 'size');
    my $wrong = 0;
    for my $w (1 .. $N) {
        for my $i (grep { !($_ % 2) } 1 .. $I) {
            my $k = "w$w key $i";
            $wrong++ unless ($m->get($k) // '') eq "value of $k " . ('x' x ($i % 50));
        }
    }
    is($wrong, 0, 'all surviving values exact');
};

subtest 'exactly one winner of racing add / cas / take / cas_take / get_or_set' => guard {
    my $N = 6;
    my $K = 1000;
    for my $class ($II, $SI) {
        my $key = sub { $class eq $II ? $_[0] : "race key $_[0]" };
        my $m = $class->new(undef, 5 * $K);
        $m->put($key->($K + $_), 0) for 1 .. $K;              # for cas
        $m->put($key->(2 * $K + $_), 77) for 1 .. $K;          # for take
        $m->put($key->(3 * $K + $_), 55) for 1 .. $K;          # for cas_take
        my ($br, $bw) = barrier();
        my @pids = map {
            my $id = $_;
            in_child(sub {
                wait_barrier($br, $bw);
                my (@add, @cas, @take, @ctake, @gos);
                for my $k (1 .. $K) {
                    push @add, $k if $m->add($key->($k), $id);
                    push @cas, $k if $m->cas($key->($K + $k), 0, $id);
                    my $t = $m->take($key->(2 * $K + $k));
                    push @take, $k if defined $t && $t == 77;
                    my $ct = $m->cas_take($key->(3 * $K + $k), 55);
                    push @ctake, $k if defined $ct && $ct == 55;
                    push @gos, $m->get_or_set($key->(4 * $K + $k), $id);
                    $m->incr($key->(5 * $K + $k));          # racing inserts of new counters
                }
                return join ';', map { join ',', @$_ } \@add, \@cas, \@take, \@ctake, \@gos;
            });
        } 1 .. $N;
        close $bw;
        close $br;
        my (%add, %cas, %take, %ctake, %gos_seen);
        my $id = 0;
        for my $r (wait_all(@pids)) {
            $id++;
            is($r->[1], undef, "racer $id finished") or next;
            my @parts = split /;/, $r->[0], -1;
            $add{$_}   .= "$id " for split /,/, $parts[0];
            $cas{$_}   .= "$id " for split /,/, $parts[1];
            $take{$_}++ for split /,/, $parts[2];
            $ctake{$_}++ for split /,/, $parts[3];
            my @g = split /,/, $parts[4];
            push @{ $gos_seen{$_} }, $g[ $_ - 1 ] for 1 .. $K;
        }
        my ($add_bad, $cas_bad, $take_bad, $ctake_bad, $gos_bad, $incr_bad) = (0) x 6;
        for my $k (1 .. $K) {
            my @aw = split ' ', $add{$k} // '';
            $add_bad++ unless @aw == 1 && $m->get($key->($k)) == $aw[0];
            my @cw = split ' ', $cas{$k} // '';
            $cas_bad++ unless @cw == 1 && $m->get($key->($K + $k)) == $cw[0];
            $take_bad++ unless ($take{$k} // 0) == 1;
            $ctake_bad++ unless ($ctake{$k} // 0) == 1;
            my %vals = map { $_ => 1 } @{ $gos_seen{$k} || [] };
            my $stored = $m->get($key->(4 * $K + $k));
            $gos_bad++ unless keys(%vals) == 1 && defined $stored && exists $vals{$stored};
            $incr_bad++ unless ($m->get($key->(5 * $K + $k)) // 0) == $N;
        }
        (my $cn = $class) =~ s/.*:://;
        is($add_bad, 0, "$cn: every add race has exactly one winner, whose value is stored");
        is($cas_bad, 0, "$cn: every cas race has exactly one winner, whose value is stored");
        is($take_bad, 0, "$cn: every take race has exactly one winner");
        is($ctake_bad, 0, "$cn: every cas_take race has exactly one winner");
        is($gos_bad, 0, "$cn: every get_or_set race returns one value to everyone");
        is($incr_bad, 0, "$cn: racing incr of new keys: every increment counted once");
        is($m->size, 4 * $K, "$cn: size");
    }
};

subtest 'readers never see a torn value (SS, different lengths, with resizes)' => guard {
    my $m = $SS->new(tmppath('torn'), 5000);
    my @vals = ('A' x 1000, 'B' x 37, 'C' x 5, "D\0" x 300, '');
    my %ok = map { $_ => 1 } @vals;
    $m->put('x', $vals[0]);
    my $W = 150000;
    my $writer = in_child(sub {
        my $fill = 0;
        for my $i (1 .. $W) {
            $m->put('x', $vals[ $i % @vals ]) or die "put failed\n";
            if ($i % 4 == 0) { $m->put('filler ' . $fill++, 'f' x ($i % 40)) }
            if ($fill >= 1500) { $m->remove('filler ' . $_) for 0 .. $fill - 1; $fill = 0 }
        }
        $m->put('done', 1);
        return 'ok';
    });
    my @readers = map {
        in_child(sub {
            my ($reads, $torn, $missing) = (0, 0, 0);
            my $r = $SS->new($m->path, 10);
            while (!$r->exists('done')) {
                my $v = $r->get('x');
                $reads++;
                if (!defined $v) { $missing++ }
                elsif (!$ok{$v}) { $torn++ }
                if ($reads % 64 == 0) {
                    my ($g) = $r->get_multi('x');
                    $torn++ unless defined $g && $ok{$g};
                }
                die "reader runaway\n" if $reads > 50_000_000;
                die "the writer died\n" if $reads % 4096 == 0 && !kill(0, $writer) && !$m->exists('done');
            }
            return "$reads,$torn,$missing";
        });
    } 1 .. 2;
    my ($wout, $werr) = child_result($writer);
    is($werr, undef, 'writer finished');
    for my $r (wait_all(@readers)) {
        is($r->[1], undef, 'reader finished') or next;
        my ($reads, $torn, $missing) = split /,/, $r->[0];
        ok($reads > 0, "reader made $reads reads");
        is($torn, 0, 'no torn value');
        is($missing, 0, 'the key never disappeared during resizes');
    }
};

subtest 'readers never see a torn value (II pairs, with resizes)' => guard {
    my $m = $II->new(undef, 5000);
    $m->put(1, (1 << 32) | 1);
    $m->put(2, -1);
    my $W = 200000;
    my $writer = in_child(sub {
        my $fill = 10;
        for my $i (1 .. $W) {
            my $half = ($i * 2654435761) & 0x7fffffff;
            $m->put(1, ($half << 32) | $half) or die "put failed\n";
            $m->incr(2) if $i % 2;                 # lock-free counter path in parallel
            $m->put(-$i, $i) if $i % 3 == 0;
            if ($i % 3000 == 0) { $m->remove(-$_) for grep { $_ % 3 == 0 } $i - 2999 .. $i }
        }
        $m->put(3, 1);
        return 'ok';
    });
    my @readers = map {
        in_child(sub {
            my ($reads, $torn, $missing, $back) = (0, 0, 0, 0);
            my $last = -1;
            until ($m->exists(3)) {
                my $v = $m->get(1);
                $reads++;
                if (!defined $v) { $missing++; next }
                my ($hi, $lo) = (($v >> 32) & 0xffffffff, $v & 0xffffffff);
                $torn++ if $hi != $lo;
                my $c = $m->get(2);
                if (!defined $c) { $missing++ }
                else { $back++ if $c < $last; $last = $c }
                die "reader runaway\n" if $reads > 50_000_000;
                die "the writer died\n" if $reads % 4096 == 0 && !kill(0, $writer) && !$m->exists(3);
            }
            return "$reads,$torn,$missing,$back";
        });
    } 1 .. 2;
    my ($wout, $werr) = child_result($writer);
    is($werr, undef, 'writer finished');
    for my $r (wait_all(@readers)) {
        is($r->[1], undef, 'reader finished') or next;
        my ($reads, $torn, $missing, $back) = split /,/, $r->[0];
        ok($reads > 0, "reader made $reads reads");
        is($torn, 0, 'no torn 64-bit value');
        is($missing, 0, 'keys never disappeared during resizes');
        is($back, 0, 'a counter never goes backwards');
    }
    is($m->get(2), $W / 2 - 1, 'counter total');
};

subtest 'batches are atomic: get_multi and items never see half of a set_multi' => guard {
    my $m = $II->new(undef, 5000);
    $m->set_multi(10, 0, 11, 0, 12, 0);
    my $W = 60000;
    my $writer = in_child(sub {
        for my $i (1 .. $W) {
            $m->set_multi(10, $i, 11, $i, 12, $i) == 3 or die "set_multi failed\n";
            $m->put(-$i, $i) if $i % 2;
            $m->remove_multi(map { -$_ } $i - 1999 .. $i) if $i % 2000 == 0;     # resizes
        }
        $m->put(3, 1);
        return 'ok';
    });
    my @readers = map {
        my $how = $_;
        in_child(sub {
            my ($reads, $split, $back, $last) = (0, 0, 0, 0);
            until ($m->exists(3)) {
                my @v;
                if ($how eq 'get_multi') { @v = $m->get_multi(10, 11, 12) }
                else { my %h = $m->items; @v = @h{10, 11, 12} }
                $reads++;
                $split++ if grep { !defined $_ || $_ != $v[0] } @v;
                $back++ if defined $v[0] && $v[0] < $last;
                $last = $v[0] // $last;
                die "reader runaway\n" if $reads > 50_000_000;
                die "the writer died\n" if $reads % 4096 == 0 && !kill(0, $writer) && !$m->exists(3);
            }
            return "$reads,$split,$back";
        });
    } qw(get_multi items);
    my ($wout, $werr) = child_result($writer);
    is($werr, undef, 'writer finished');
    my @names = qw(get_multi items);
    for my $r (wait_all(@readers)) {
        my $how = shift @names;
        is($r->[1], undef, "$how reader finished") or next;
        my ($reads, $split, $back) = split /,/, $r->[0];
        ok($reads > 0, "$how reader made $reads reads");
        is($split, 0, "$how never saw a half-applied set_multi");
        is($back, 0, "$how never went back in time");
    }
};

subtest 'each in one process while another resizes the table' => guard {
    my $m = $SS->new(undef, 20000);
    $m->put("stable $_", "s$_") for 1 .. 100;
    my $writer = in_child(sub {
        for my $round (1 .. 30) {
            $m->put("churn $_", 'c' x ($_ % 30)) for 1 .. 3000;    # grows
            $m->remove("churn $_") for 1 .. 3000;                  # shrinks
        }
        $m->put('done', 1);
        return 'ok';
    });
    my $reader = in_child(sub {
        my ($passes, $incomplete, $bad) = (0, 0, 0);
        my $finished = 0;
        while (1) {
            $finished = 1 if $m->exists('done');
            my (%seen, $steps);
            while (my ($k, $v) = $m->each) {
                $seen{$k} = $v;
                die "each runaway\n" if ++$steps > 10_000_000;
            }
            $passes++;
            $incomplete++ if grep { !exists $seen{"stable $_"} } 1 .. 100;
            $bad++ if grep { exists $seen{"stable $_"} && $seen{"stable $_"} ne "s$_" } 1 .. 100;
            last if $finished;
        }
        return "$passes,$incomplete,$bad";
    });
    my ($wout, $werr) = child_result($writer);
    is($werr, undef, 'writer finished');
    my ($rout, $rerr) = child_result($reader);
    is($rerr, undef, 'reader finished');
    my ($passes, $incomplete, $bad) = split /,/, $rout // '0,-1,-1';
    ok($passes > 0, "reader completed $passes each passes");
    is($incomplete, 0, 'every pass saw every stable entry (iterations restart after a resize)');
    is($bad, 0, 'with the right values');
};

subtest 'threads of one process, each with its own handle' => guard {
    require Config;
    plan skip_all => 'perl without ithreads' unless $Config::Config{useithreads};
    require threads;
    my $p = tmppath('threads');
    $II->new($p, 10000);
    my @t = map {
        my $id = $_;
        threads->create(sub {
            my $m = $II->new($p, 10000);
            my $listed = 0;
            for my $i (1 .. 5000) {
                $m->incr(0);
                $m->put($id * 100000 + $i % 500, $i);
                my @g = $m->get_multi(0, 1);
                $m->incr(1000 + $i % 7);
                $listed += () = $m->keys if $i % 500 == 0;
                $m->remove($id * 100000 + ($i + 250) % 500);
            }
            return $listed;
        });
    } 1 .. 4;
    my @r = map { $_->join } @t;
    is(scalar(grep { defined && $_ > 0 } @r), 4, 'all threads finished');
    my $m = $II->new($p, 10000);
    is($m->get(0), 20000, 'incr from four threads adds up');
    my $sum = 0;
    $sum += $m->get($_) // 0 for 1000 .. 1006;
    is($sum, 20000, 'incr of shared keys adds up');
    is($m->size, 1 + 7 + 4 * 250, 'size: key 0, seven counters, 250 own keys per thread');
};

done_testing;
