use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Variants;
use POSIX ();
use Time::HiRes ();
use Data::HashMap::Shared;

# Hostile map files (issue 5; api.md 7.10 "Corrupt records never cause out-of-bounds
# reads"; decisions 10). A map file is writable by every process that shares it, so
# its bytes are hostile input. Copies of populated maps (II, IS, SI, SS; plain and
# LRU+TTL; inline and arena strings; tombstones; freed arena blocks; expired entries)
# get seeded mutations -- bit flips, random ranges, interesting words in the header's
# lock / table / arena / LRU fields, truncation, growth -- written either before the
# map is opened or through the file while it is mapped. Each case runs in a forked
# child under alarm and calls every method. Pass: the constructor croaks, or every
# call returns or croaks. Fail: a signal (SIGSEGV, SIGBUS, ...), a hang (alarm), an
# endless iteration. A failure prints the seed and the mutations; re-run one case with
#
#   HMS_FUZZ_SEED=<seed> prove -b t/hostile-files.t
#
# HMS_FUZZ_CASES (default 1000) and HMS_FUZZ_BASE (first seed, default 1) scale it:
# xt/corrupt-fuzz.t runs thousands of cases. HMS_FUZZ_LOCKWORDS=1 also runs the cases
# whose lock words name pid 0 or a live process (see rust-core/tests/corrupt.rs,
# lock_words_naming_impossible_or_live_pids: they hang until the alarm).

my $CASES    = $ENV{HMS_FUZZ_CASES} // 1000;
my $BASE     = $ENV{HMS_FUZZ_BASE} // 1;
my $TIMEOUT  = $ENV{HMS_FUZZ_TIMEOUT} // 10;
my $ONE      = $ENV{HMS_FUZZ_SEED};
my $LOCKWORDS = $ENV{HMS_FUZZ_LOCKWORDS};
our %INTERNAL;    # engine panics seen by a child (croaked as "internal error: ...")

# Header offsets (rust-core/src/layout.rs `off`).
my %OFF = (
    MAX_CAP => 48, SLOT_SIZE => 28, CTRL => 80, SLOTS => 88, LRU => 96, TTL => 104,
    READERS => 112, ARENA => 120, STATIC_END => 160,
);
my @HDR32 = (256, 260, 264, 268, 272, 276, 280, 284, 304, 308, 312, 320, 324, 400, 404, 408, 412, 416,
    map { 528 + 4 * $_ } 0 .. 31);
my @HDR64 = (288, 296, 448, 456, 464, 656);
my $READERS = 4096;
my $BITMAP  = 4096 + 1024 * 64;

sub rd32 { unpack 'V', substr($_[0], $_[1], 4) }
sub rd64 { unpack 'Q<', substr($_[0], $_[1], 8) }

sub slurp { my $p = shift; open my $f, '<:raw', $p or die "$p: $!"; local $/; my $b = <$f>; close $f; $b }
sub spew  { my ($p, $b) = @_; open my $f, '>:raw', $p or die "$p: $!"; print $f $b; close $f or die "$p: $!" }

# ---- templates ------------------------------------------------------------------------

my @TEMPLATES;
{
    my $dir = tmpdir();
    my $t0 = Time::HiRes::time();
    for my $name (qw(II IS SI SS)) {
        for my $lt (0, 1) {
            my $v = variant($name);
            my $p = "$dir/template-$name-$lt.shm";
            my $m = $v->{class}->new($p, 200, $lt ? (190, 3600) : ());
            my (@keys, @vals);
            for my $i (0 .. 199) {
                my $k = $v->{key} eq 'int' ? $i * 7919 - 3000 : ($i % 3 ? "k$i" : "a longer key number $i" . ('x' x ($i % 40)));
                my $x = $v->{val} eq 'int' ? $i * 1_000_003 : ($i % 2 ? "v$i" : "a longer value $i" . ('y' x ($i % 300)));
                if ($lt && $i % 5 == 1)    { $m->put_ttl($k, $x, 1) }    # expired when the cases run
                elsif ($lt && $i % 5 == 2) { $m->put_ttl($k, $x, 0) }    # permanent
                else                       { $m->put($k, $x) }
                push @keys, $k;
                push @vals, $x;
            }
            if ($v->{arena}) {
                if ($v->{key} eq 'int') { $m->put(999_999, 'L' x 3000) } else { $m->put('L' x 3000, $vals[0]) }
            }
            $m->remove($keys[$_]) for grep { $_ % 4 == 0 } 0 .. 199;     # tombstones, freed blocks
            $m->get($keys[3]) if $lt;                                     # an accessed bit
            undef $m;
            push @TEMPLATES, { name => "$name" . ($lt ? '+lru+ttl' : ''), v => $v, bytes => slurp($p),
                keys => \@keys, vals => \@vals, lt => $lt };
            unlink $p;
        }
    }
    # let the 1-second TTL entries expire
    my $left = 2.1 - (Time::HiRes::time() - $t0);
    Time::HiRes::sleep($left) if $left > 0;
}

# ---- mutations -------------------------------------------------------------------------

sub rnd { int rand $_[0] }

sub interesting {
    my $t = shift;
    my $cap = rd32($t->{bytes}, $OFF{MAX_CAP});
    my @v = (0, 1, 2, 3, 7, 8, 15, 16, 17, 31, 32, 0x7F, 0x80, 0xFF, 0xFFFF, $cap - 1, $cap, $cap + 1,
        $cap * 2, int($cap / 2) + 3, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF, 2**32,
        18446744073709551615, 18446744073709551614, length $t->{bytes}, rnd(2**32), rnd(65536));
    return $v[rnd(scalar @v)];
}

sub pick_off {
    my $t = shift;
    my $b = $t->{bytes};
    my $len = length $b;
    my ($ctrl, $slots, $cap, $ssz) = (rd64($b, $OFF{CTRL}), rd64($b, $OFF{SLOTS}), rd32($b, $OFF{MAX_CAP}), rd32($b, $OFF{SLOT_SIZE}));
    my ($lru, $ttl, $arena) = (rd64($b, $OFF{LRU}), rd64($b, $OFF{TTL}), rd64($b, $OFF{ARENA}));
    my $r = rnd(100);
    my ($base, $span);
    if    ($r < 5)  { ($base, $span) = (0, $OFF{STATIC_END}) }
    elsif ($r < 35) { ($base, $span) = (256, 512) }
    elsif ($r < 40) { ($base, $span) = ($READERS, 512) }
    elsif ($r < 42) { ($base, $span) = ($BITMAP, 128) }
    elsif ($r < 57) { ($base, $span) = ($ctrl, $cap) }
    elsif ($r < 75) { ($base, $span) = ($slots, $cap * $ssz) }
    elsif ($r < 85 && $lru) { ($base, $span) = ($lru, ($ttl || $arena || $len) - $lru) }
    elsif ($r < 90 && $ttl) { ($base, $span) = ($ttl, $cap * 4) }
    elsif ($r < 97 && $arena) { ($base, $span) = ($arena, $len - $arena) }
    else { ($base, $span) = (0, $len) }
    my $o = $base + rnd($span > 0 ? $span : 1);
    return $o < $len ? $o : $len - 1;
}

# A case: [ template index, after_open, [ mutations ] ]; a mutation is
# [ 'flip', off, mask ] | [ 'write', off, bytes ] | [ 'word', off, width, value ]
# | [ 'truncate', len ] | [ 'grow', n ]
sub gen_case {
    my $seed = shift;
    srand($seed);
    my $ti = rnd(scalar @TEMPLATES);
    my $t = $TEMPLATES[$ti];
    my $len = length $t->{bytes};
    my $after = rnd(100) < 30 ? 1 : 0;
    my $n = 1 + rnd(rnd(100) < 20 ? 24 : 4);
    my @m;
    for (1 .. $n) {
        my $r = rnd(100);
        if ($r < 30) { push @m, [ flip => pick_off($t), 1 << rnd(8) ] }
        elsif ($r < 40) { push @m, [ flip => pick_off($t), rnd(256) | 1 ] }
        elsif ($r < 55) {
            my $o = pick_off($t);
            my $l = 1 + rnd((8, 64, 512, 8192)[rnd(4)]);
            $l = $len - $o if $o + $l > $len;
            my $k = rnd(4);
            my $bytes = $k == 0 ? "\0" x $l : $k == 1 ? "\xff" x $l : $k == 2 ? chr(rnd(256)) x $l
                : join '', map { chr rnd 256 } 1 .. $l;
            push @m, [ write => $o, $bytes ];
        }
        elsif ($r < 80) {
            my $o = rnd(100) < 70 ? (rnd(100) < 70 ? $HDR32[rnd(scalar @HDR32)] : $HDR64[rnd(scalar @HDR64)])
                : pick_off($t) & ~3;
            my $w = (grep { $_ == $o } @HDR64) ? 8 : 4;
            $o = ($len - $w) if $o + $w > $len;
            push @m, [ word => $o & ~($w - 1), $w, interesting($t) ];
        }
        elsif ($r < 90 && !$after) {
            my $k = rnd(4);
            push @m, [ truncate => $k == 0 ? rnd(4096) : $k == 1 ? rnd($len) : $k == 2 ? $len - 1 - rnd(64) : $len - 4096 ];
        }
        elsif ($r < 95 && !$after) { push @m, [ grow => 1 + rnd(8192) ] }
        else { push @m, [ flip => pick_off($t), 0x80 ] }
    }
    return { seed => $seed, ti => $ti, after => $after, muts => \@m, via_fd => rnd(100) < 20 ? 1 : 0 };
}

sub apply {
    my ($b, $muts) = @_;
    for my $m (@$muts) {
        my ($k, @a) = @$m;
        if ($k eq 'flip') { substr($b, $a[0], 1) = chr(ord(substr($b, $a[0], 1)) ^ $a[1]) if $a[0] < length $b }
        elsif ($k eq 'write') { substr($b, $a[0], length $a[1]) = $a[1] if $a[0] + length($a[1]) <= length $b }
        elsif ($k eq 'word') {
            my $bytes = $a[1] == 8 ? pack('Q<', $a[2]) : pack('V', $a[2] & 0xFFFFFFFF);
            substr($b, $a[0], $a[1]) = $bytes if $a[0] + $a[1] <= length $b;
        }
        elsif ($k eq 'truncate') { substr($b, $a[0]) = '' if $a[0] < length $b }
        elsif ($k eq 'grow') { $b .= "\0" x $a[0] }
    }
    return $b;
}

sub describe {
    my $c = shift;
    my @d;
    for my $m (@{ $c->{muts} }) {
        my ($k, @a) = @$m;
        if ($k eq 'write') {
            my $hex = unpack('H*', substr($a[1], 0, 8));
            push @d, sprintf 'write %d bytes at %d (starting %s)', length $a[1], $a[0], $hex;
        }
        elsif ($k eq 'word') { push @d, sprintf 'u%d at %d = 0x%x', $a[1] * 8, $a[0], $a[2] }
        elsif ($k eq 'flip') { push @d, sprintf 'flip byte %d ^= 0x%02x', @a }
        else { push @d, "$k @a" }
    }
    return sprintf 'seed %d, template %s, %s%s: %s', $c->{seed}, $TEMPLATES[ $c->{ti} ]{name},
        $c->{after} ? 'written while mapped' : 'before open', $c->{via_fd} ? ', new_from_fd' : '', join '; ', @d;
}

# The hang no lock code can avoid (rust-core/tests/corrupt.rs): a lock word naming a
# live holder. Liveness is a byte lock of the holder's own file description, and the
# only live handle of a case is the case's own, whose identity is chosen when it opens
# (never the one the file's writer word names for its slot): no file content blocks.
sub blocking_lock_state { undef }

# ---- exercising ------------------------------------------------------------------------

sub pick { $_[0][ rnd(scalar @{ $_[0] }) ] }

# Every method, each in eval (croaking is fine). Dies with "ENDLESS" on an endless
# iteration.
sub exercise {
    my ($m, $t, $seed) = @_;
    srand($seed ^ 0xABCD);
    my $v = $t->{v};
    my @k = @{ $t->{keys} };
    my @x = @{ $t->{vals} };
    my $key = sub { rnd(100) < 70 ? pick(\@k) : $v->{key} eq 'int' ? rnd(2**40) - 2**39 : 'rnd' . rnd(1e6) . ('z' x rnd(30)) };
    my $val = sub { rnd(100) < 50 ? pick(\@x) : $v->{val} eq 'int' ? rnd(2**40) : 'val' . ('w' x rnd(100)) };
    my $bound = 2 * 256 + 16;
    local $SIG{__WARN__} = sub { };
    # engine panics come back as "internal error: ..." croaks: safe, but counted
    local $SIG{__DIE__} = sub { $INTERNAL{ $1 // $_[0] }++ if $_[0] =~ /internal error: (.{0,80})/ };
    my $acc = '';
    # reads first
    for my $kk (@k) {
        my $g = eval { $m->get($kk) };
        $acc .= $g if defined $g;
        eval { $m->exists($kk) };
    }
    my $n = 0;
    while (my @e = eval { $m->each }) {
        die "ENDLESS each returned more than $bound entries\n" if ++$n > $bound;
    }
    for my $meth (qw(keys values items)) {
        my @l = eval { $m->$meth };
        die "ENDLESS $meth returned " . scalar(@l) . " elements\n" if @l > 2 * $bound;
    }
    eval { my $h = $m->to_hash; 1 };
    eval { my @g = $m->get_multi(map { $key->() } 1 .. 8) };
    eval { my %s = %{ $m->stats } };
    eval { $m->$_ } for qw(size capacity max_entries tombstones mmap_size arena_used arena_cap
        stat_evictions stat_expired stat_recoveries max_size ttl path memfd frozen readonly);
    if ($t->{lt}) {
        eval { my @g = $m->get_with_ttl($key->()) };
        eval { $m->ttl_remaining($key->()) };
    }
    # writes
    my @ops = (
        sub { $m->put($key->(), $val->()) },
        sub { $m->add($key->(), $val->()) },
        sub { $m->update($key->(), $val->()) },
        sub { $m->swap($key->(), $val->()) },
        sub { $m->take($key->()) },
        sub { $m->remove($key->()) },
        sub { $m->get_or_set($key->(), $val->()) },
        sub { $m->cas($key->(), $val->(), $val->()) },
        sub { $m->cas_take($key->(), $val->()) },
        sub { $m->set_multi($key->(), $val->(), $key->(), $val->()) },
        sub { $m->remove_multi($key->(), $key->()) },
        sub { my @l = $m->pop },
        sub { my @l = $m->shift },
        sub { my @l = $m->drain(1 + rnd(5)) },
        sub { $m->reserve(rnd(300)) },
        sub { $m->get($key->()) },
        sub { my @e = $m->each },
        sub { $m->iter_reset },
        sub { $m->flush_expired },
        sub { my @l = $m->flush_expired_partial(1 + rnd(64)) },
        sub { $m->touch($key->()) },
        sub { $m->persist($key->()) },
        sub { $m->set_ttl($key->(), rnd(100)) },
        ($t->{lt} ? (
            sub { $m->put_ttl($key->(), $val->(), rnd(100)) },
            sub { $m->add_ttl($key->(), $val->(), rnd(100)) },
            sub { $m->update_ttl($key->(), $val->(), rnd(100)) },
        ) : ()),
        ($v->{counters} ? (
            sub { $m->incr($key->()) },
            sub { $m->decr($key->()) },
            sub { $m->incr_by($key->(), rnd(200) - 100) },
            sub { $m->max($key->(), rnd(2**40)) },
            sub { $m->min($key->(), rnd(2**40)) },
        ) : ()),
    );
    for (1 .. 80) { eval { pick(\@ops)->(); 1 } }
    eval { my @l = $m->items };
    eval { $m->reserve(150) };
    $n = 0;
    while (my @e = eval { $m->each }) {
        die "ENDLESS each (after writes) returned more than $bound entries\n" if ++$n > $bound;
    }
    eval { $m->clear };
    for my $i (1 .. 40) {
        my ($kk, $vv) = ($key->(), $val->());
        eval { $m->put($kk, $vv); $m->get($kk) };
    }
    eval { my @l = $m->drain(-1) };
    eval { $m->sync };
    return length $acc;
}

# In the child: write the file, open it, run everything. Returns "opened" / "refused"
# (plus the engine panics seen, tab-separated).
sub run_case {
    my ($c, $path) = @_;
    my $t = $TEMPLATES[ $c->{ti} ];
    my $class = $t->{v}{class};
    my $mutated = apply($t->{bytes}, $c->{muts});
    spew($path, $c->{after} ? $t->{bytes} : $mutated);
    my $m;
    if ($c->{via_fd}) {
        open my $fh, '+<:raw', $path or die "$path: $!";
        $m = eval { $class->new_from_fd(fileno $fh) };
        close $fh;
    }
    else {
        $m = eval { $class->new($path, 10) };
    }
    return 'refused' unless $m;
    if ($c->{after}) {
        # a hostile peer writes the file while it is mapped (same length: no SIGBUS)
        open my $fh, '+<:raw', $path or die "$path: $!";
        print $fh substr($mutated, 0, length $t->{bytes});
        close $fh;
    }
    exercise($m, $t, $c->{seed});
    undef $m;
    return join "\t", 'opened', map { "$_ x$INTERNAL{$_}" } sort keys %INTERNAL;
}

# ---- run -------------------------------------------------------------------------------

local $ENV{HMS_CHILD_TIMEOUT} = $TIMEOUT;
my $dir = tmpdir();

subtest 'templates are valid maps' => guard {
    for my $t (@TEMPLATES) {
        my $p = "$dir/check.shm";
        spew($p, $t->{bytes});
        my $m = $t->{v}{class}->new($p, 10);
        cmp_ok($m->size, '>', 100, "$t->{name}: populated");
        cmp_ok($m->arena_used, '>', 16, "$t->{name}: arena in use") if $t->{v}{arena};
        undef $m;
        unlink $p;
    }
    ok((grep { rd32($_->{bytes}, 268) > 0 } @TEMPLATES), 'some template has tombstones');
};

if (defined $ONE) {
    my $c = gen_case($ONE);
    diag describe($c);
    my $r = run_case($c, "$dir/one.shm");    # in this process: for a debugger / valgrind
    pass("seed $ONE: $r");
    done_testing;
    exit;
}

my ($opened, $refused, $skipped, %panics, @fail) = (0, 0, 0);
my $t0 = time;
for my $seed ($BASE .. $BASE + $CASES - 1) {
    my $c = gen_case($seed);
    if (!$LOCKWORDS && blocking_lock_state(apply($TEMPLATES[ $c->{ti} ]{bytes}, $c->{muts}))) {
        $skipped++;
        next;
    }
    my $path = "$dir/case-$seed.shm";
    my $pid = in_child(sub { run_case($c, $path) });
    my ($out, $err) = child_result($pid);
    unlink $path;
    if (defined $err) {
        $err = "HANG (alarm after $TIMEOUT s)" if $err =~ /signal 14\b/;
        push @fail, "$err: " . describe($c);
        diag "FAIL $err: " . describe($c);
        next;
    }
    my ($what, @panics) = split /\t/, $out;
    $what eq 'opened' ? $opened++ : $refused++;
    $panics{$_}++ for map { s/ x\d+$//r } @panics;
}
note("engine panic (croaked as internal error) in $panics{$_} cases: $_") for sort keys %panics;
is(scalar @fail, 0, sprintf '%d corrupt-file cases (seeds %d..%d): %d opened, %d refused, %d skipped (lock word names a live process), %d failed, %d s',
    $CASES, $BASE, $BASE + $CASES - 1, $opened, $refused, $skipped, scalar @fail, time - $t0);
cmp_ok($opened, '>', $CASES / 10, 'a good share of the corrupt files were opened and exercised');

done_testing;
