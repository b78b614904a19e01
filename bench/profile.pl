#!/usr/bin/perl
# bench/profile.pl -- instructions per operation, counted by valgrind's callgrind
# (exact and immune to the machine's load, unlike timings).
#
#   perl -Mblib bench/profile.pl                    # every case, table of Ir per op
#   perl -Mblib bench/profile.pl ii_get ss_long_get # some cases
#   perl -Mblib bench/profile.pl --run ii_get 100000  # one case, no valgrind (used by
#                                                     # the driver; also for perf etc.)
#
# Each case runs the same loop as bench/vs.pl (N = 25000 keys, whole passes) under
#   valgrind --tool=callgrind perl -Mblib bench/profile.pl --run CASE OPS
# for OPS = 50000 and 250000; Ir per op = (Ir(250000) - Ir(50000)) / 200000, so the
# start-up and set-up cost cancels out. The larger run's profile is kept in
# $PROFILE_DIR (default /tmp/hms-profile) as callgrind.CASE.out: read it with
#   callgrind_annotate --inclusive=yes /tmp/hms-profile/callgrind.CASE.out
# "loop" is the empty loop (the Perl loop with no call), to subtract from the others.
# The *_remove cases count one remove plus one put (the refill) per key: Ir of the pair.
# Function names need only the symbol table, which every build keeps; for costs per
# source line (callgrind_annotate --auto=yes, perf annotate) build with debug
# information, which the installed Shared.so leaves out:
#   HMS_DEBUG_INFO=1 perl Makefile.PL && make

use strict;
use warnings;
use Time::HiRes qw(time);
use Data::HashMap::Shared::II;
use Data::HashMap::Shared::IS;
use Data::HashMap::Shared::SI;
use Data::HashMap::Shared::SS;

my %have;
BEGIN {
    for my $mod (qw(Hash::SharedMem LMDB_File)) { $have{$mod} = eval "require $mod; 1" ? 1 : 0 }
    Hash::SharedMem->import(qw(shash_open shash_set shash_get)) if $have{'Hash::SharedMem'};
}
{ no warnings "once"; $LMDB_File::die_on_err = 0 if $have{LMDB_File} }

my $N = 25000;
my $DIR = $ENV{PROFILE_DIR} // '/tmp/hms-profile';

sub keys_ii { [ map { $_ * 7919 + 13 } 1 .. $N ] }
sub keys_short { srand 12345; my %s; my @k; while (@k < $N) { my $k = join '', map { ('a' .. 'z', 0 .. 9)[ rand 36 ] } 1 .. 3 + int rand 5; push @k, $k unless $s{$k}++ } \@k }
sub keys_long { [ map { "long key $_ " . ('k' x (40 + $_ % 51)) } 1 .. $N ] }
sub vals_long { [ map { "long value $_ " . ('v' x (38 + $_ % 51)) } 1 .. $N ] }
sub keys_mid { [ map { sprintf('key%07d', $_) . ('k' x ($_ % 14)) } 1 .. $N ] }    # 10-23 bytes, as vs.pl
sub vals_mid { [ map { sprintf('val%07d', $_) . ('v' x ($_ % 14)) } 1 .. $N ] }

sub lmdb {
    my ($k, $v) = @_;
    my $p = "$DIR/lmdb-$$";
    system('rm', '-rf', $p);
    mkdir $p or die "$p: $!";
    my $env = LMDB::Env->new($p, { mapsize => 1 << 30, flags => LMDB_File::MDB_WRITEMAP() | LMDB_File::MDB_NOSYNC() | LMDB_File::MDB_NOMETASYNC() | LMDB_File::MDB_NORDAHEAD() });
    my $t = $env->BeginTxn;
    my $dbi = $t->open(undef, LMDB_File::MDB_CREATE());
    $t->put($dbi, $k->[$_], $v->[$_]) for 0 .. $#$k;
    $t->commit;
    return ($env, $dbi, $p);
}

# case => sub ($ops): set up, then run $ops operations in whole passes of the vs.pl loop
my %case = (
    loop => sub {
        my ($ops) = @_;
        my $k = keys_ii();
        my $h = 0;
        for (1 .. $ops / $N) { for my $x (@$k) { $h++ if defined($x) } }
    },
    ii_get => sub {
        my ($ops) = @_;
        my $k = keys_ii();
        my $m = Data::HashMap::Shared::II->new(undef, $N);
        shm_ii_put $m, $_, $_ for @$k;
        my $h = 0;
        for (1 .. $ops / $N) { for my $x (@$k) { $h++ if defined(shm_ii_get $m, $x) } }
    },
    ii_get_method => sub {    # the method form: entersub + invocant check + the same op
        my ($ops) = @_;
        my $k = keys_ii();
        my $m = Data::HashMap::Shared::II->new(undef, $N);
        shm_ii_put $m, $_, $_ for @$k;
        my $h = 0;
        for (1 .. $ops / $N) { for my $x (@$k) { $h++ if defined($m->get($x)) } }
    },
    ii_miss => sub {
        my ($ops) = @_;
        my $k = keys_ii();
        my $m = Data::HashMap::Shared::II->new(undef, $N);
        shm_ii_put $m, $_, $_ for @$k;
        my @miss = map { -$_ } @$k;
        my $h = 0;
        for (1 .. $ops / $N) { for my $x (@miss) { $h++ if defined(shm_ii_get $m, $x) } }
    },
    ii_put => sub {    # overwrite existing keys
        my ($ops) = @_;
        my $k = keys_ii();
        my $m = Data::HashMap::Shared::II->new(undef, $N);
        shm_ii_put $m, $_, $_ for @$k;
        for (1 .. $ops / $N) { for my $i (0 .. $#$k) { shm_ii_put $m, $k->[$i], $i } }
    },
    ii_insert => sub {    # new keys into a fresh map (growth included)
        my ($ops) = @_;
        my $k = keys_ii();
        for (1 .. $ops / $N) { my $m = Data::HashMap::Shared::II->new(undef, $N); for my $i (0 .. $#$k) { shm_ii_put $m, $k->[$i], $i } }
    },
    ii_incr => sub {
        my ($ops) = @_;
        my $k = keys_ii();
        my $m = Data::HashMap::Shared::II->new(undef, $N);
        shm_ii_put $m, $_, $_ for @$k;
        for (1 .. $ops / $N) { for my $x (@$k) { shm_ii_incr $m, $x } }
    },
    ii_remove => sub {    # remove every key, then put them back: Ir of the pair (remove = pair - insert)
        my ($ops) = @_;
        my $k = keys_ii();
        my $m = Data::HashMap::Shared::II->new(undef, $N);
        shm_ii_put $m, $_, $_ for @$k;
        for (1 .. $ops / $N) { for my $x (@$k) { shm_ii_remove $m, $x } for my $i (0 .. $#$k) { shm_ii_put $m, $k->[$i], $i } }
    },
    is_put => sub {    # overwrite, values of 10-23 bytes (arena)
        my ($ops) = @_;
        my $k = keys_ii();
        my $v = vals_mid();
        my $m = Data::HashMap::Shared::IS->new(undef, $N);
        shm_is_put $m, $_, 'x' for @$k;
        for (1 .. $ops / $N) { for my $i (0 .. $#$k) { shm_is_put $m, $k->[$i], $v->[$i] } }
    },
    si_put => sub {    # overwrite, keys of 10-23 bytes
        my ($ops) = @_;
        my $k = keys_mid();
        my $m = Data::HashMap::Shared::SI->new(undef, $N);
        shm_si_put $m, $_, 1 for @$k;
        for (1 .. $ops / $N) { for my $i (0 .. $#$k) { shm_si_put $m, $k->[$i], $i } }
    },
    is_insert => sub {    # new keys into a fresh map, values of 10-23 bytes
        my ($ops) = @_;
        my $k = keys_ii();
        my $v = vals_mid();
        for (1 .. $ops / $N) { my $m = Data::HashMap::Shared::IS->new(undef, $N); for my $i (0 .. $#$k) { shm_is_put $m, $k->[$i], $v->[$i] } }
    },
    is_remove => sub {    # remove + put back, as ii_remove
        my ($ops) = @_;
        my $k = keys_ii();
        my $v = vals_mid();
        my $m = Data::HashMap::Shared::IS->new(undef, $N);
        shm_is_put $m, $k->[$_], $v->[$_] for 0 .. $#$k;
        for (1 .. $ops / $N) { for my $x (@$k) { shm_is_remove $m, $x } for my $i (0 .. $#$k) { shm_is_put $m, $k->[$i], $v->[$i] } }
    },
    si_incr => sub {
        my ($ops) = @_;
        my $k = keys_mid();
        my $m = Data::HashMap::Shared::SI->new(undef, $N);
        shm_si_put $m, $_, 1 for @$k;
        for (1 .. $ops / $N) { for my $x (@$k) { shm_si_incr $m, $x } }
    },
    si_insert => sub {    # new keys into a fresh map
        my ($ops) = @_;
        my $k = keys_mid();
        for (1 .. $ops / $N) { my $m = Data::HashMap::Shared::SI->new(undef, $N); for my $i (0 .. $#$k) { shm_si_put $m, $k->[$i], $i } }
    },
    si_remove => sub {    # remove + put back, as ii_remove
        my ($ops) = @_;
        my $k = keys_mid();
        my $m = Data::HashMap::Shared::SI->new(undef, $N);
        shm_si_put $m, $k->[$_], $_ for 0 .. $#$k;
        for (1 .. $ops / $N) { for my $x (@$k) { shm_si_remove $m, $x } for my $i (0 .. $#$k) { shm_si_put $m, $k->[$i], $i } }
    },
    ss_short_insert => sub {    # new keys into a fresh map
        my ($ops) = @_;
        my $k = keys_short();
        for (1 .. $ops / $N) { my $m = Data::HashMap::Shared::SS->new(undef, $N); for my $i (0 .. $#$k) { shm_ss_put $m, $k->[$i], $k->[$i] } }
    },
    ss_short_remove => sub {    # remove + put back, as ii_remove
        my ($ops) = @_;
        my $k = keys_short();
        my $m = Data::HashMap::Shared::SS->new(undef, $N);
        shm_ss_put $m, $_, $_ for @$k;
        for (1 .. $ops / $N) { for my $x (@$k) { shm_ss_remove $m, $x } for my $x (@$k) { shm_ss_put $m, $x, $x } }
    },
    ss_long_put => sub {    # overwrite, 50-100 byte keys and values
        my ($ops) = @_;
        my ($k, $v) = (keys_long(), vals_long());
        my $m = Data::HashMap::Shared::SS->new(undef, $N, 0, 0, 0, $N * 256 + (1 << 20));
        shm_ss_put $m, $k->[$_], $v->[$_] for 0 .. $#$k;
        my @v2 = reverse @$v;
        for (1 .. $ops / $N) { for my $i (0 .. $#$k) { shm_ss_put $m, $k->[$i], $v2[$i] } }
    },
    ss_long_insert => sub {    # new keys into a fresh map
        my ($ops) = @_;
        my ($k, $v) = (keys_long(), vals_long());
        for (1 .. $ops / $N) { my $m = Data::HashMap::Shared::SS->new(undef, $N, 0, 0, 0, $N * 256 + (1 << 20)); for my $i (0 .. $#$k) { shm_ss_put $m, $k->[$i], $v->[$i] } }
    },
    ss_long_remove => sub {    # remove + put back, as ii_remove
        my ($ops) = @_;
        my ($k, $v) = (keys_long(), vals_long());
        my $m = Data::HashMap::Shared::SS->new(undef, $N, 0, 0, 0, $N * 256 + (1 << 20));
        shm_ss_put $m, $k->[$_], $v->[$_] for 0 .. $#$k;
        for (1 .. $ops / $N) { for my $x (@$k) { shm_ss_remove $m, $x } for my $i (0 .. $#$k) { shm_ss_put $m, $k->[$i], $v->[$i] } }
    },
    hash_get => sub {
        my ($ops) = @_;
        my $k = [ map {"$_"} @{ keys_ii() } ];
        my $m = {};
        $m->{$_} = $_ for @$k;
        my $h = 0;
        for (1 .. $ops / $N) { for my $x (@$k) { $h++ if defined $m->{$x} } }
    },
    ss_short_get => sub {
        my ($ops) = @_;
        my $k = keys_short();
        my $m = Data::HashMap::Shared::SS->new(undef, $N);
        shm_ss_put $m, $_, substr("v$_", 0, 7) for @$k;
        my $h = 0;
        for (1 .. $ops / $N) { for my $x (@$k) { $h++ if defined(shm_ss_get $m, $x) } }
    },
    ss_long_get => sub {
        my ($ops) = @_;
        my ($k, $v) = (keys_long(), vals_long());
        my $m = Data::HashMap::Shared::SS->new(undef, $N, 0, 0, 0, $N * 256 + (1 << 20));
        shm_ss_put $m, $k->[$_], $v->[$_] for 0 .. $#$k;
        my $h = 0;
        for (1 .. $ops / $N) { for my $x (@$k) { $h++ if defined(shm_ss_get $m, $x) } }
    },
    ss_short_put => sub {    # overwrite existing keys
        my ($ops) = @_;
        my $k = keys_short();
        my $m = Data::HashMap::Shared::SS->new(undef, $N);
        shm_ss_put $m, $_, $_ for @$k;
        for (1 .. $ops / $N) { for my $i (0 .. $#$k) { shm_ss_put $m, $k->[$i], "w$i" } }
    },
    ($have{'Hash::SharedMem'} ? (
    shash_ii_get => sub {
        my ($ops) = @_;
        my $k = [ map {"$_"} @{ keys_ii() } ];
        mkdir $DIR;
        my $s = shash_open("$DIR/shash-$$", 'rwc');
        shash_set($s, $_, $_) for @$k;
        my $h = 0;
        for (1 .. $ops / $N) { for my $x (@$k) { $h++ if defined shash_get($s, $x) } }
        system('rm', '-rf', "$DIR/shash-$$");
    },
    shash_short_get => sub {
        my ($ops) = @_;
        my $k = keys_short();
        mkdir $DIR;
        my $s = shash_open("$DIR/shash-$$", 'rwc');
        shash_set($s, $_, substr("v$_", 0, 7)) for @$k;
        my $h = 0;
        for (1 .. $ops / $N) { for my $x (@$k) { $h++ if defined shash_get($s, $x) } }
        system('rm', '-rf', "$DIR/shash-$$");
    },
    shash_long_get => sub {
        my ($ops) = @_;
        my ($k, $v) = (keys_long(), vals_long());
        mkdir $DIR;
        my $s = shash_open("$DIR/shash-$$", 'rwc');
        shash_set($s, $k->[$_], $v->[$_]) for 0 .. $#$k;
        my $h = 0;
        for (1 .. $ops / $N) { for my $x (@$k) { $h++ if defined shash_get($s, $x) } }
        system('rm', '-rf', "$DIR/shash-$$");
    },
    shash_short_set => sub {
        my ($ops) = @_;
        my $k = keys_short();
        mkdir $DIR;
        my $s = shash_open("$DIR/shash-$$", 'rwc');
        shash_set($s, $_, $_) for @$k;
        for (1 .. $ops / $N) { for my $i (0 .. $#$k) { shash_set($s, $k->[$i], "w$i") } }
        system('rm', '-rf', "$DIR/shash-$$");
    },
    ) : ()),
    ($have{LMDB_File} ? (
    lmdb_get => sub {    # one fresh snapshot per read (renew, get, reset)
        my ($ops) = @_;
        my $k = [ map {"$_"} @{ keys_ii() } ];
        mkdir $DIR;
        my ($env, $dbi, $p) = lmdb($k, $k);
        my $r = $env->BeginTxn(LMDB_File::MDB_RDONLY());
        $r->reset;
        my $h = 0;
        for (1 .. $ops / $N) { for my $x (@$k) { $r->renew; $r->get($dbi, $x, my $v); $r->reset; $h++ if defined $v } }
        $r->abort;
        system('rm', '-rf', $p);
    },
    lmdb_put => sub {    # one write txn per put
        my ($ops) = @_;
        my $k = [ map {"$_"} @{ keys_ii() } ];
        mkdir $DIR;
        my ($env, $dbi, $p) = lmdb($k, $k);
        for (1 .. $ops / $N) { for my $i (0 .. $#$k) { my $t = $env->BeginTxn; $t->put($dbi, $k->[$i], $i); $t->commit } }
        system('rm', '-rf', $p);
    },
    ) : ()),
);

if (@ARGV && $ARGV[0] eq '--run') {
    my (undef, $c, $ops) = @ARGV;
    $case{$c} or die "no case $c\n";
    $case{$c}->($ops);
    exit 0;
}

my @cases = @ARGV ? @ARGV : sort keys %case;
@cases = ('loop', grep { $_ ne 'loop' } @cases);    # the loop first: the others subtract it
mkdir $DIR;
my ($lo, $hi) = (50_000, 250_000);
my $blib = grep({ /blib/ } @INC) ? '-Mblib' : '';
printf "%-18s %12s   (callgrind, Ir = instructions executed; profiles in %s)\n", 'case', 'Ir per op', $DIR;
my %ir;
for my $c (@cases) {
    $case{$c} or die "no case $c\n";
    my @ir;
    for my $ops ($lo, $hi) {
        my $out = "$DIR/callgrind.$c" . ($ops == $hi ? '' : '.small') . '.out';
        system("valgrind --tool=callgrind --callgrind-out-file=$out perl $blib $0 --run $c $ops >/dev/null 2>&1") == 0
            or die "valgrind failed for $c\n";
        open my $fh, '<', $out or die "$out: $!";
        my $total;
        while (<$fh>) { $total = $1 if /^(?:summary|totals):\s+(\d+)/ }
        push @ir, $total;
    }
    $ir{$c} = ($ir[1] - $ir[0]) / ($hi - $lo);
    printf "%-18s %12.0f%s\n", $c, $ir{$c}, $c ne 'loop' && $ir{loop} ? sprintf('   (%.0f without the loop)', $ir{$c} - $ir{loop}) : '';
}
