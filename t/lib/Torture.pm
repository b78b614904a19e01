package Torture;
# The kill torture of issue 5, shared by t/crash-torture.t (a few rounds) and
# xt/crash-torture.t (hundreds).
#
# W workers run a mixed workload on two maps (SS: puts of strings of many sizes and
# removes, forcing grows, shrinks and arena churn; SI: incr) and report through a pipe,
# one line per step: "I ..." (intent) before the call and "A ..." (acknowledged) after it
# returned. Worker w only touches keys k with k % W == w, so each key's writes are
# sequential and the pipe (lines are single atomic writes) orders them. The parent
# SIGKILLs a random worker at a random moment (every other round: a moment when it holds
# a write lock), restarts it, and at the end checks that
# every key holds its last acknowledged value, or the value of the one write that was in
# flight when its writer was killed; that nothing else is in the map; that verify()
# finds no inconsistency; and that stat_recoveries counted the takeovers.
#
# With ns => N (and root, and unshare(1)), workers 0 .. N-1 run as pid 1 of a PID
# namespace of their own (`unshare --pid --fork --kill-child --mount-proc`): a kill ends
# the namespace, and the others must take the dead worker's lock over all the same
# (issue 14: liveness the kernel proves, valid across namespaces).
use strict;
use warnings;
use POSIX ();
use Time::HiRes qw(sleep);
use Mono qw(time);
use Data::HashMap::Shared::SS;
use Data::HashMap::Shared::SI;

# Big enough for most values, small enough that a put sometimes finds the arena full
# (it then returns false and changes nothing).
our $ARENA = 4 << 20;
my %fh_of;    # holds_lock: one read handle per map file

sub run {
    my (%o) = @_;
    my ($dir, $W, $R, $KEYS) = @o{qw(dir workers rounds keys)};
    my $NS = $o{ns} // 0;
    my $ss_path = "$dir/torture-ss.shm";
    my $si_path = "$dir/torture-si.shm";
    unlink $ss_path, $si_path;
    # The parent's own handles (it is never killed): they repair deaths inside the lock
    # during the run and check the maps at the end.
    my %map_of;
    @map_of{ $ss_path, $si_path } = open_maps($ss_path, $si_path, $KEYS);

    # One pipe per worker: a batch's lines go in one write (more time under the lock,
    # less in system calls), which may exceed PIPE_BUF, so pipes are not shared.
    my (%pid_of, %rd_of, %buf_of, %ns_of);
    my $spawn = sub {
        my ($w, $gen) = @_;
        pipe(my $rd, my $wr) or die "pipe: $!";
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            close $rd;
            if ($w < $NS) {    # pid 1 of a new PID namespace; SIGKILL to unshare kills it
                fcntl($wr, POSIX::F_SETFD(), 0) or die "fcntl: $!";    # inherited by exec
                # unshare 2.38 complains ("sigprocmask unblock failed") when its child is
                # SIGKILLed; the worker reports through the pipe, not stderr
                open STDERR, '>', '/dev/null';
                { no warnings 'exec'; exec 'unshare', '--pid', '--fork', '--kill-child', '--mount-proc', $^X,
                    (map { "-I$_" } @INC), '-MTorture', '-e', 'Torture::worker_fd(@ARGV)',
                    $w, $gen, $W, $KEYS, $ss_path, $si_path, fileno $wr; }
                POSIX::_exit(127);
            }
            worker($w, $gen, $W, $KEYS, $ss_path, $si_path, $wr);
            POSIX::_exit(0);
        }
        delete $ns_of{$w};
        close $wr;
        ($pid_of{$w}, $rd_of{$w}, $buf_of{$w}) = ($pid, $rd, '');
    };
    $spawn->($_, 0) for 0 .. $W - 1;

    # Per key: the acknowledged value and, while writes are in flight, their values.
    my (%ss, %ss_flight, %si, %si_flight);
    my ($acks, $kills, $in_lock, $ns_kills) = (0, 0, 0, 0);
    my $line = sub {
        my ($kind, $map, $k, $v) = split / /, $_[0], 4;
        return $ns_of{ $_[1] } = $k if $kind eq 'N';    # a namespaced worker's namespace
        my ($acked, $flight) = $map eq 'S' ? (\%ss, \%ss_flight) : (\%si, \%si_flight);
        $v = undef if defined $v && $v eq '-';
        if ($kind eq 'F') {
            # refused (arena full): this write changed nothing, but the writes of killed
            # generations still in flight for the key may have landed: drop only its own
            my $f = $flight->{$k} || [];
            for my $i (reverse 0 .. $#$f) {
                next unless defined $f->[$i] && $f->[$i] eq $v;
                splice @$f, $i, 1;
                last;
            }
            delete $flight->{$k} unless @$f;
        } elsif ($kind eq 'K') {    # maybe stored: keep both candidates
        } elsif ($kind eq 'I') {
            $v = ($acked->{$k} // 0) + 1 if $map eq 'C';    # an incr in flight
            push @{ $flight->{$k} }, $v;
        } else {
            $acked->{$k} = $v;
            delete $flight->{$k};
            $acks++;
        }
    };
    # Reads whatever the workers wrote within $timeout s; with $eof_of, reads that
    # (dead) worker's pipe to its end and drops a line cut by the kill (its call had
    # not started: the line is written before the call).
    my $drain = sub {
        my ($timeout, $eof_of) = @_;
        my $until = time + $timeout;
        while (1) {
            my $rin = '';
            vec($rin, fileno($rd_of{$_}), 1) = 1 for keys %rd_of;
            my $left = defined $eof_of ? 1 : $until - time;
            $left = 0 if $left < 0;    # still take what is ready now
            last unless select(my $rout = $rin, undef, undef, $left);
            my $eof;
            for my $w (keys %rd_of) {
                next unless vec($rout, fileno($rd_of{$w}), 1);
                my $n = sysread($rd_of{$w}, $buf_of{$w}, 1 << 20, length $buf_of{$w});
                my @l = split /\n/, $buf_of{$w}, -1;
                $buf_of{$w} = pop(@l) // '';    # an unfinished line waits for its end
                $line->($_, $w) for @l;
                $eof = 1 if !$n && defined $eof_of && $w == $eof_of;
            }
            last if $eof;
            last if !defined $eof_of && time >= $until;    # busy writers never run dry
        }
    };

    for my $round (1 .. $R) {
        $drain->(0.005 + rand(0.03));
        my $w = int rand $W;
        if ($round % 2) {
            # aim: wait (up to 200 ms) until the victim holds a write lock, then kill
            my $until = time + 0.2;
            my $path = $ss_path;
            my $polls = 0;
            # keep reading the pipes: a worker blocked on a full pipe never locks
            until (holds_lock($path, $pid_of{$w}, $ns_of{$w}) || time > $until) {
                $drain->(0) unless ++$polls % 50;
            }
        }
        # a namespaced worker is unshare's child: kill it, not unshare (whose --kill-child
        # would only ask the kernel to kill it later)
        kill 'KILL', $w < $NS ? child_of($pid_of{$w}) // $pid_of{$w} : $pid_of{$w};
        waitpid $pid_of{$w}, 0;
        $kills++;
        if (my @held = grep { holds_lock($_, $pid_of{$w}, $ns_of{$w}) } $ss_path, $si_path) {
            $in_lock++;
            # Take over and repair now, from a process that is never killed: otherwise the
            # next kill may hit the worker that is repairing this death, and one recovery
            # (counted when a repair completes) would stand for two deaths.
            for my $p (@held) {
                $map_of{$p}->put('probe', 1);
                $map_of{$p}->remove('probe');
            }
        }
        $ns_kills++ if $w < $NS;
        $drain->(0, $w);
        close $rd_of{$w};
        $spawn->($w, $round);
    }
    $drain->(0.05);
    kill 'KILL', values %pid_of;
    for my $w (keys %pid_of) {
        waitpid $pid_of{$w}, 0;
        $drain->(0, $w);
        close delete $rd_of{$w};
    }

    my ($ss, $si) = @map_of{ $ss_path, $si_path };
    # A write takes the lock: if the last worker died holding it, this one repairs.
    $ss->put('probe', 1); $ss->remove('probe');
    $si->put('probe', 1); $si->remove('probe');

    my @bad;
    push @bad, map "SS verify: $_", $ss->verify;
    push @bad, map "SI verify: $_", $si->verify;
    my $check = sub {
        my ($m, $name, $acked, $flight) = @_;
        my %seen;
        for my $k (keys %$acked, keys %$flight) {
            next if $seen{$k}++;
            my $got = $m->get($k);
            my @ok = ($acked->{$k}, @{ $flight->{$k} || [] });
            next if grep { (defined $_ ? $_ : "\0undef") eq (defined $got ? $got : "\0undef") } @ok;
            push @bad, sprintf "%s key %s: got %s, expected %s", $name, $k,
                defined $got ? "'" . substr($got, 0, 40) . "'" : 'undef',
                join ' or ', map { defined $_ ? "'" . substr($_, 0, 40) . "'" : 'undef' } @ok;
        }
        my %want = map { $_ => 1 } grep { defined $acked->{$_} || grep defined, @{ $flight->{$_} || [] } } keys %seen;
        for my $k ($m->keys) {
            push @bad, "$name: key $k was never written" unless $want{$k};
        }
    };
    $check->($ss, 'SS', \%ss, \%ss_flight);
    $check->($si, 'SI', \%si, \%si_flight);
    my $recoveries = $ss->stat_recoveries + $si->stat_recoveries;
    if (@bad && $ENV{HMS_TORTURE_KEEP}) {    # keep the evidence for a post-mortem
        require File::Copy;
        File::Copy::copy($_, "$ENV{HMS_TORTURE_KEEP}/" . ($_ =~ s{.*/}{}r) . ".$$") for $ss_path, $si_path;
    }
    unlink $ss_path, $si_path;
    %fh_of = ();
    return {
        bad => \@bad, acks => $acks, kills => $kills, recoveries => $recoveries, in_lock => $in_lock, ns_kills => $ns_kills,
        keys => scalar(keys %ss) + scalar(keys %si),
    };
}

# The two maps of a run: SS (strings in an arena of $ARENA bytes) and SI (counters).
sub open_maps {
    my ($ss_path, $si_path, $keys) = @_;
    return (Data::HashMap::Shared::SS->new($ss_path, $keys, 0, 0, 0, $ARENA), Data::HashMap::Shared::SI->new($si_path, $keys));
}

# Does process $pid (or, with $ns, the process of PID namespace $ns) hold the write
# lock of the map in $path? (the writer word at header offset 256: HELD bit 31, bit 30
# "someone sleeps", the holder's tag in bits 10..29 and its reader slot in bits 0..9;
# the slot, at 4096 + 64 * slot, records the owner's pid at 0 and its PID namespace id,
# the low 32 bits of the namespace's inode, at 12)

sub holds_lock {
    my ($path, $pid, $ns) = @_;
    my $fh = $fh_of{$path} ||= do { open my $f, '<:raw', $path or return 0; $f };
    sysseek $fh, 256, 0;
    sysread($fh, my $b, 4) == 4 or return 0;
    my $w = unpack 'V', $b;
    return 0 unless $w & 0x80000000;
    sysseek $fh, 4096 + 64 * ($w & 0x3FF), 0;
    sysread($fh, $b, 16) == 16 or return 0;
    my ($p, undef, undef, $n) = unpack 'V4', $b;
    return defined $ns ? $n == ($ns & 0xFFFFFFFF) : $p == $pid;
}

# The (first) child of process $pid, or undef.
sub child_of {
    my ($pid) = @_;
    open my $f, '<', "/proc/$pid/task/$pid/children" or return undef;
    my ($c) = split ' ', <$f> // '';
    return $c;
}

# Can this process run workers in PID namespaces of their own (root, unshare(1))?
sub can_unshare {
    return 0 if $> != 0;
    return system('unshare --pid --fork --kill-child --mount-proc true >/dev/null 2>&1') == 0;
}

# A namespaced worker: the exec'd perl, pid 1 of its namespace, writing to descriptor
# $fd. Says which namespace it is in first.
sub worker_fd {
    my ($w, $gen, $W, $KEYS, $ss_path, $si_path, $fd) = @_;
    open my $wr, '>&=', $fd or die "fd $fd: $!";
    my $ino = (stat '/proc/self/ns/pid')[1];
    syswrite $wr, "N - $ino\n";
    worker($w, $gen, $W, $KEYS, $ss_path, $si_path, $wr);
}

# The workload of worker $w: mostly SS puts (values 0..400 bytes: inline and arena
# strings) and removes in waves that grow and shrink the table, plus SI increments.
sub worker {
    my ($w, $gen, $W, $KEYS, $ss_path, $si_path, $wr) = @_;
    srand($$ ^ time);
    my ($ss, $si) = open_maps($ss_path, $si_path, $KEYS);
    my $mine = int($KEYS / $W);
    my $seq = 0;
    my @out;
    my $say = sub { push @out, join(' ', @_) . "\n" };
    # Lines reach the parent before the call they announce starts, and right after it.
    my $flush = sub { my $b = join '', @out; @out = (); while (length $b) { my $n = syswrite $wr, $b; die "pipe: $!" unless $n; substr($b, 0, $n) = '' } };
    while (1) {
        my $grow = rand() < 0.5;    # a wave of puts, then a wave of removes
        for (1 .. 20 + int rand 80) {
            my $op = rand();
            if ($op < 0.25) {
                # a batch under one write lock: long critical sections, resizes inside
                my @k = map { "k" . ($w + $W * int rand $mine) } 1 .. 20 + int rand 3000;
                my %seen;
                @k = grep { !$seen{$_}++ } @k;
                if ($grow || rand() < 0.3) {
                    my @kv = map { ($_, "$w.$gen." . $seq++ . '.' . ('y' x int rand 300)) } @k;
                    my %v = @kv;
                    $say->('I', 'S', $_, $v{$_}) for @k;
                    $flush->();
                    my $n = $ss->set_multi(@kv);
                    # fewer stored only when the arena filled: which ones is unknown, so
                    # those keys stay "either" until their next write
                    $say->($n == @k ? 'A' : 'K', 'S', $_, $v{$_}) for @k;
                    $flush->();
                } else {
                    $say->('I', 'S', $_, '-') for @k;
                    $flush->();
                    $ss->remove_multi(@k);
                    $say->('A', 'S', $_, '-') for @k;
                    $flush->();
                }
                next;
            }
            my $k = $w + $W * int rand $mine;
            if ($op < 0.4) {
                $say->('I', 'C', "c$k");
                $flush->();
                my $n = $si->incr("c$k");
                $say->('A', 'C', "c$k", $n);
                $flush->();
            } elsif ($grow ? $op < 0.9 : $op < 0.5) {
                my $v = "$w.$gen." . $seq++ . '.' . ('x' x int rand 400);
                $say->('I', 'S', "k$k", $v);
                $flush->();
                $say->($ss->put("k$k", $v) ? 'A' : 'F', 'S', "k$k", $v);
                $flush->();
            } else {
                $say->('I', 'S', "k$k", '-');
                $flush->();
                $ss->remove("k$k");
                $say->('A', 'S', "k$k", '-');
                $flush->();
            }
        }
    }
}

1;
