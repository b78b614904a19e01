#!/usr/bin/perl
# freeze / frozen / readonly / new_readonly (api.md 3.5, 6.9, 7.9).
use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Variants;
use OpTable;
use POSIX ();
use Digest::MD5 ();
use Data::HashMap::Shared::II;   # loads every class

sub md5_of { my $f = shift; open my $fh, '<:raw', $f or die "$f: $!"; Digest::MD5->new->addfile($fh)->hexdigest }

# Every mutator with arguments that would change the map (api.md 7.9 lists them).
sub mutators {
    my $v = shift;
    my ($k, $x) = ($v->{keys}[0], $v->{vals}[0]);
    my %m = (
        put => [$k, $x], add => [$v->{missing}, $x], update => [$k, $x], swap => [$k, $x],
        take => [$k], remove => [$k], get_or_set => [$v->{missing}, $x], cas => [$k, $x, $x],
        cas_take => [$k, $x], put_ttl => [$k, $x, 5], add_ttl => [$v->{missing}, $x, 5],
        update_ttl => [$k, $x, 5], touch => [$k], persist => [$k], set_ttl => [$k, 5],
        flush_expired => [], flush_expired_partial => [10], pop => [], shift => [], drain => [1],
        clear => [], reserve => [1000], set_multi => [$k, $x], remove_multi => [$k],
    );
    if ($v->{counters}) {
        $m{$_} = [$k] for qw(incr decr);
        $m{$_} = [$k, 5] for qw(incr_by max min);
    }
    return \%m;
}

for my $v (@VARIANTS) {
    subtest "$v->{name}: a frozen map refuses every mutator, reads go on" => guard {
        for my $mode (qw(method kw)) {
            my $op = OpTable::ops($v, $mode);
            # A plain map: TTL-only mutators must say "frozen", not "TTL-enabled".
            my $m = $v->{class}->new(tmppath('fz'), 100);
            $m->put($v->{keys}[$_], $v->{vals}[$_]) for 0 .. 3;
            is($m->frozen, 0, 'frozen: 0 before');
            is($m->readonly, 0, 'readonly: 0 before');
            my @items = $m->items;
            lives(sub { $m->freeze }, 'freeze');
            is($m->frozen, 1, 'frozen: 1');
            is($m->readonly, 1, 'the freezing handle is read-only');
            my $muts = mutators($v);
            for my $name (sort keys %$muts) {
                my $call = ($op->{$name} && $mode eq 'kw') ? $op->{$name} : sub { my $x = shift; $x->$name(@_) };
                dies_like(sub { $call->($m, @{ $muts->{$name} }) },
                    qr/^\Q$v->{class}\E: map is frozen \(read-only\) at /, "$mode $name croaks");
            }
            is_deeply([$m->items], \@items, 'nothing changed');
            is($op->{get}->($m, $v->{keys}[1]), $v->{vals}[1], 'get works');
            ok($m->exists($v->{keys}[2]), 'exists works');
            is($m->size, 4, 'size works');
            my @e = $m->each;
            is(scalar @e, 2, 'each works');
            $m->iter_reset;
            is(scalar(() = $m->cursor->next), 2, 'cursors work');
            is($m->stats->{frozen}, 1, 'stats frozen');
            is($m->stats->{readonly}, 1, 'stats readonly');
            lives(sub { $m->sync }, 'sync is a no-op');
            dies_like(sub { $m->freeze }, qr/^\Q$v->{class}\E->freeze: cannot freeze a read-only handle/,
                'freeze again croaks');
        }
    };
}

subtest 'the seal is seen by a handle opened before the freeze, in another process' => guard {
    my $path = tmppath('fz');
    my $m = Data::HashMap::Shared::SS->new($path, 100, 0, 60);
    $m->put(a => 1);
    my $pid = in_child(sub {
        my $c = Data::HashMap::Shared::SS->new($path, 100, 0, 60);
        $c->put(b => 2);
        $c->freeze;
        return $c->readonly;
    });
    my ($out, $err) = child_result($pid);
    is($err, undef, 'child froze the map');
    is($out, 1, 'child handle is read-only now');
    is($m->frozen, 1, 'our older handle sees frozen');
    is($m->readonly, 0, 'but is not itself read-only');
    dies_like(sub { $m->put(c => 3) }, qr/^Data::HashMap::Shared::SS: map is frozen \(read-only\)/, 'put croaks');
    dies_like(sub { $m->touch('a') }, qr/map is frozen/, 'touch croaks');
    dies_like(sub { $m->incr('a') }, qr/Can't locate object method "incr"/, 'SS has no counters anyway');
    is($m->get('b'), 2, 'reads see the last write');
    dies_like(sub { $m->freeze }, qr/^Data::HashMap::Shared::SS->freeze: cannot freeze a read-only handle/,
        'freeze of an already sealed map croaks');
    dies_like(sub { Data::HashMap::Shared::SS->new($path, 100) },
        qr/^Data::HashMap::Shared::SS: \Q$path\E is frozen \(read-only\); open it with new_readonly/,
        'new refuses to attach');
    my $ii = Data::HashMap::Shared::II->new(tmppath('fz'), 100);
    $ii->put(1, 1);
    my $pid2 = in_child(sub { Data::HashMap::Shared::II->new($ii->path, 100)->freeze; 'ok' });
    child_result($pid2);
    dies_like(sub { $ii->incr(1) }, qr/^Data::HashMap::Shared::II: map is frozen/,
        'an in-place counter (read-lock path) is refused too');
};

subtest 'a shrink deferred before the freeze does not run after it' => guard {
    my $path = tmppath('fzd');
    my $m = Data::HashMap::Shared::II->new($path, 10_000);
    $m->put($_, $_) for 1 .. 1000;
    my @e = $m->each;                      # an active each defers shrinks
    $m->remove($_) for 1 .. 999;
    my $cap = $m->capacity;
    cmp_ok($cap, '>', 16, 'the shrink is pending');
    my ($out, $err) = child_result(in_child(sub { Data::HashMap::Shared::II->new($path, 10)->freeze; 'frozen' }));
    is($out, 'frozen', 'another process froze the map');
    $m->iter_reset;
    is($m->capacity, $cap, 'ending the iteration did not shrink the frozen map');
};

subtest 'new_readonly' => guard {
    my $path = tmppath('ro');
    my $m = Data::HashMap::Shared::SI->new($path, 1000, 100, 0);   # an LRU map
    $m->put("k$_", $_) for 1 .. 50;
    dies_like(sub { Data::HashMap::Shared::SI->new_readonly($path) },
        qr/^Data::HashMap::Shared::SI: \Q$path\E is not frozen: call ->freeze on the producer before opening read-only/,
        'refuses a map that is not frozen');
    dies_like(sub { Data::HashMap::Shared::SI->new_readonly(undef) },
        qr/^Data::HashMap::Shared::SI->new_readonly: path is required/, 'path required');
    dies_like(sub { Data::HashMap::Shared::SI->new_readonly(tmpdir() . '/nope') }, qr/open\(.*nope\): No such file/,
        'missing file');
    dies_like(sub { Data::HashMap::Shared::II->new_readonly($path) }, qr/variant mismatch \(file=9, expected=3\)/,
        'variant checked');
    $m->freeze;
    undef $m;
    chmod 0444, $path or die $!;
    my $before = md5_of($path);
    my $check = sub {
        my $r = Data::HashMap::Shared::SI->new_readonly($path);
        my @k = sort $r->keys;
        my $n = 0;
        $n++ while my @e = $r->each;
        my $c = $r->cursor;
        my $cn = 0;
        $cn++ while my @x = $c->next;
        return join ',', $r->get('k7'), scalar(@k), $n, $cn, $r->size, $r->readonly, $r->frozen,
            ($r->get_multi('k1', 'nope'))[0], scalar(() = $r->items);
    };
    my $want = '7,50,50,50,50,1,1,1,100';
    is($check->(), $want, 'reads, each, cursor, get_multi, items on a 0444 file');
    if ($> == 0) {
        # as a user who does not own the file and cannot write it
        chmod 0755, tmpdir();
        my $pid = in_child(sub {
            POSIX::setgid(65534);
            POSIX::setuid(65534);
            die "still root\n" if $> == 0;
            die "can write\n" if open my $fh, '+<', $path;
            return $check->();
        });
        my ($out, $err) = child_result($pid);
        is($err, undef, 'a non-owner opened it');
        is($out, $want, 'and read everything');
    }
    else {
        note 'not root: cannot switch to another user; the 0444 file was read above by its owner';
    }
    is(md5_of($path), $before, 'the file was not written (no locks, clock bits, reader slots)');
    my $r = Data::HashMap::Shared::SI->new_readonly($path);
    dies_like(sub { $r->put(x => 1) }, qr/^Data::HashMap::Shared::SI: map is frozen \(read-only\)/, 'mutators croak');
    dies_like(sub { $r->freeze }, qr/cannot freeze a read-only handle/, 'freeze croaks');
    lives(sub { $r->sync }, 'sync: no-op');
    ok(!eval { Data::HashMap::Shared::SI->new_readonly(tmpdir()); 1 }, 'a directory is refused');
};

subtest 'anonymous and memfd maps freeze' => guard {
    my $a = Data::HashMap::Shared::II->new(undef, 100);
    $a->put(1, 2);
    my $pid = in_child(sub { sleep 1 while !$a->frozen; eval { $a->put(3, 4) }; $@ =~ /frozen/ ? 'refused' : 'accepted' });
    $a->freeze;
    my ($out, $err) = child_result($pid);
    is($out, 'refused', 'a forked child sees the seal of an anonymous map');
    my $f = Data::HashMap::Shared::II->new_memfd('fz', 100);
    $f->freeze;
    dies_like(sub { Data::HashMap::Shared::II->new_from_fd($f->memfd) },
        qr/this map is frozen \(read-only\); open it with new_readonly/, 'new_from_fd refuses a frozen memfd');
};

subtest 'a writer killed holding the lock of a frozen map does not stop read-only readers' => guard {
    my $path = tmppath('ro-odd');
    my $m = Data::HashMap::Shared::II->new($path, 1000);
    $m->put($_, $_ * 10) for 1 .. 20;
    $m->freeze;
    undef $m;
    my $r = Data::HashMap::Shared::II->new_readonly($path);
    # what a mutator killed right after taking the write lock (before it saw the seal)
    # leaves behind, after this reader opened: a dead holder and an odd seq
    my $dead = fork // die; POSIX::_exit(0) unless $dead; waitpid $dead, 0;
    open my $fh, '+<:raw', $path or die;
    # writer word: held by slot 9 under tag 1 (nobody holds that slot); seq (u32 at 260) odd
    sysseek $fh, 256, 0; syswrite $fh, pack 'V V', 0x80000000 | 1 << 10 | 9, 7;
    close $fh;
    is_deeply [ map { $r->get($_) } 1, 7, 20, 21 ], [ 10, 70, 200, undef ], 'gets answer (the seqlock does not fall back to a lock it cannot write)';
    ok $r->exists(3), 'exists too';
    is scalar(() = $r->keys), 20, 'keys (no lock on read-only handles)';
};

done_testing;
