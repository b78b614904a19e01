use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Mono ();
use Variants;
use Time::HiRes ();
use Data::HashMap::Shared::SS;
use Data::HashMap::Shared::II;

# Several processes use one LRU map as a cache at once (api.md 7.3, 7.10): the size
# never passes max_size, every insert is either still there or counted as an
# eviction, the recency list stays consistent with the table, values are never
# mixed up, and an entry written after the others stopped inserting is there.

my $NPROC = 4;
my $MAX   = 300;

# A barrier in a plain shared map: count in, then wait for everybody.
sub barrier {
    my ($sync, $name, $n) = @_;
    shm_ii_incr $sync, $name;
    my $t0 = Mono::now();
    until ((shm_ii_get $sync, $name) >= $n) {
        die "barrier $name timed out\n" if Mono::now() - $t0 > 60;
        Time::HiRes::sleep(0.001);
    }
}

sub value_of { "value of $_[0]" . ('.' x (length($_[0]) % 13)) }

for my $backing (qw(anonymous file)) {
    subtest "$NPROC processes share one LRU cache ($backing)" => guard {
        my $path = $backing eq 'file' ? tmppath('lru-procs') : undef;
        my $m = Data::HashMap::Shared::SS->new($path, 2000, $MAX);
        my $sync = Data::HashMap::Shared::II->new(undef, 10);
        my @pids;
        for my $p (1 .. $NPROC) {
            push @pids, in_child(sub {
                my $c = $path ? Data::HashMap::Shared::SS->new($path, 1) : $m;
                srand($p * 7919);
                my ($inserted, $over, $bad, $hits) = (0, 0, 0, 0);
                for my $i (1 .. 4000) {
                    # a cache: mostly a shared key space larger than the bound, some
                    # keys of this process only
                    my $key = rand() < 0.7 ? 'shared ' . int(rand 600) : "p$p " . int(rand 300);
                    my $got = shm_ss_get $c, $key;
                    if (defined $got) {
                        $hits++;
                        $bad++ unless $got eq value_of($key);
                    }
                    elsif (shm_ss_add $c, $key, value_of($key)) {
                        $inserted++;
                    }
                    else {
                        # another process added it meanwhile: overwrite it if it is still
                        # there (update never inserts, so every insert is counted above;
                        # a put could insert it again once evicted, uncounted)
                        $c->update($key, value_of($key));
                    }
                    $over++ if (shm_ss_size $c) > $MAX;
                    shm_ss_touch $c, "p$p 0" if $i % 50 == 0;
                }
                barrier($sync, 1, $NPROC);
                # Nobody inserts any more: this process adds one entry; then it and the
                # entries of the others must all be there.
                $inserted++ if shm_ss_add $c, "final $p", value_of("final $p");
                barrier($sync, 2, $NPROC);
                my $missing = grep { !defined(shm_ss_get $c, "final $_") } 1 .. $NPROC;
                return join ',', $inserted, $over, $bad, $hits, $missing;
            });
        }
        my ($inserted, $hits) = (0, 0);
        for my $r (wait_all(@pids)) {
            my ($out, $err) = @$r;
            ok(!$err, 'child finished') or diag $err;
            next if $err;
            my ($ins, $over, $bad, $h, $missing) = split /,/, $out;
            is($over, 0, 'the size was never above max_size');
            is($bad, 0, 'every value read belongs to its key');
            is($missing, 0, 'the final entries of every process are there');
            $inserted += $ins;
            $hits += $h;
        }
        is($m->size, $MAX, 'the cache is full');
        is($inserted, $m->size + $m->stat_evictions, 'inserted = present + evicted: nothing lost uncounted');
        cmp_ok($hits, '>', 0, 'cache hits');
        is($m->stat_expired, 0, 'nothing expired (no TTL)');
        my %items = @{ [ $m->items ] };
        is(scalar(keys %items), $MAX, 'items: one per entry');
        is(scalar(grep { $items{$_} ne value_of($_) } keys %items), 0, 'every value is its own');
        my @drained = $m->drain(-1);
        is(scalar(@drained), 2 * $MAX, 'the recency list holds exactly the entries');
        my %seen;
        $seen{ $drained[ 2 * $_ ] }++ for 0 .. $MAX - 1;
        is(scalar(keys %seen), $MAX, '... each once');
        is($m->size, 0, 'drained');
        is($m->arena_used, 0, 'no string left behind in the arena');
        $m->unlink if $path;
    };
}

# One process reads (marks) its working set while another inserts: the accessed bits
# set by the reader give the hot keys their second chance in the writer's evictions.
# The writer waits for a fresh pass of the reader every 20 inserts, so that every hot
# key is read again before it can travel from the head to the tail (90 inserts).
subtest 'accessed bits set by another process protect hot keys' => guard {
    my $m = Data::HashMap::Shared::II->new(undef, 1000, 100);
    my $sync = Data::HashMap::Shared::II->new(undef, 10);
    shm_ii_put $m, $_, $_ for 1 .. 10;    # hot keys
    my $reader = in_child(sub {
        my $misses = 0;
        until (shm_ii_get $sync, 2) {
            for (1 .. 10) { $misses++ unless defined(shm_ii_get $m, $_) }
            shm_ii_incr $sync, 1;           # passes done
        }
        return $misses;
    });
    my $writer = in_child(sub {
        my $t0 = Mono::now();
        for my $i (1 .. 5000) {
            shm_ii_put $m, 1000 + $i, $i;
            next if $i % 20;
            my $p = shm_ii_get $sync, 1;
            until (((shm_ii_get $sync, 1) // 0) > ($p // 0) + 1) {
                die "reader stalled\n" if Mono::now() - $t0 > 60;
                Time::HiRes::sleep(0.0002);
            }
        }
        shm_ii_incr $sync, 2;
        return 'ok';
    });
    my ($w, $r) = wait_all($writer, $reader);
    ok(!$w->[1], 'writer finished') or diag $w->[1];
    ok(!$r->[1], 'reader finished') or diag $r->[1];
    is($r->[0], 0, 'the reader never missed a hot key');
    my $kept = grep { defined(shm_ii_get $m, $_) } 1 .. 10;
    is($kept, 10, 'every hot key survived 5000 inserts into 100 entries');
    is($m->stat_evictions, 5000 + 10 - 100, 'evictions');
    is($m->size, 100, 'full');
};

done_testing;
