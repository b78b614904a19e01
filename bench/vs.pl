#!/usr/bin/perl
# bench/vs.pl [N] [section] -- Data::HashMap::Shared against other shared / on-disk
# key-value stores and a plain Perl hash, single process, all in the same run.
#
#   perl -Mblib bench/vs.pl                 # N = 25000, every section
#   perl -Mblib bench/vs.pl 100000 ii       # only sections whose name matches /ii/
#
# Sections: ii_insert, ii_lookup (int key -> int value), ss_short_insert,
# ss_short_lookup (keys and values <= 7 bytes, stored inline), ss_long_insert,
# ss_long_lookup (keys and values of 50-100 bytes). Lookups are hits.
# Every figure is the best of 3 timings of at least 0.5 s each (whole passes over
# the N keys; inserts start each pass from an empty store, set up untimed).
# Peers that are not installed are skipped: Hash::SharedMem, LMDB_File (with
# MDB_WRITEMAP|MDB_NOSYNC|MDB_NOMETASYNC|MDB_NORDAHEAD, one transaction per pass),
# BerkeleyDB (DB_PRIVATE environment, 128 MB cache), Cache::FastMmap (no
# serializer). Our module is driven through its keyword API.

use strict;
use warnings;
use Time::HiRes qw(time);
use File::Temp ();
use File::Path qw(remove_tree);
use Data::HashMap::Shared::II;
use Data::HashMap::Shared::SS;

my $N      = shift // 25000;
my $FILTER = shift // '';
my $MIN_T  = $ENV{BENCH_MIN_TIME} // 0.5;
my $REPS   = $ENV{BENCH_REPS} // 3;

my $base = -d '/dev/shm' && -w '/dev/shm' ? '/dev/shm' : File::Temp::tempdir(CLEANUP => 1);
my $DIR  = File::Temp::tempdir('hms-bench-XXXXXX', DIR => $base, CLEANUP => 1);
my $seq  = 0;
my @garbage;
sub fresh_path { my $tag = shift; my $p = "$DIR/$tag-" . ++$seq; push @garbage, $p; return $p }
sub collect_garbage { remove_tree(splice @garbage) if @garbage }

# Peers are loaded at compile time so that their functions are known when the
# loops below are compiled (Hash::SharedMem turns known calls into ops).
my %have;
BEGIN {
    for my $mod (qw(Hash::SharedMem LMDB_File BerkeleyDB Cache::FastMmap)) {
        $have{$mod} = eval "require $mod; 1" ? 1 : 0;
    }
    Hash::SharedMem->import(qw(shash_open shash_set shash_get)) if $have{'Hash::SharedMem'};
}

# ---- data sets -------------------------------------------------------------
srand(12345);
my @ii_k = map { $_ * 7919 + 13 } 1 .. $N;
my @ii_v = map { $_ * 3 } 1 .. $N;
my %seen;
my @ss_short_k;
while (@ss_short_k < $N) {
    my $k = join '', map { ('a' .. 'z', 0 .. 9)[ rand 36 ] } 1 .. 3 + int rand 5;    # 3..7 bytes
    push @ss_short_k, $k unless $seen{$k}++;
}
my @ss_short_v = map { substr("v$_", 0, 7) } 1 .. $N;
my @ss_long_k = map { "long key $_ " . ('k' x (40 + $_ % 51)) } 1 .. $N;            # 50..100 bytes
my @ss_long_v = map { "long value $_ " . ('v' x (38 + $_ % 51)) } 1 .. $N;
my @ii_ks = map { "$_" } @ii_k;    # string forms for peers that store strings
my @ii_vs = map { "$_" } @ii_v;

# ---- implementations ------------------------------------------------------
# each: name => { open => sub (returns a store), insert => sub ($s, \@k, \@v),
#                 lookup => sub ($s, \@k) returns the number of hits }

my %impl;

$impl{'Shared::II'} = {
    kind   => 'ii',
    open   => sub { Data::HashMap::Shared::II->new(fresh_path('ii'), $N) },
    insert => sub { my ($m, $k, $v) = @_; for my $i (0 .. $#$k) { shm_ii_put $m, $k->[$i], $v->[$i] } },
    lookup => sub { my ($m, $k) = @_; my $h = 0; for my $x (@$k) { $h++ if defined(shm_ii_get $m, $x) } $h },
};
$impl{'Shared::SS'} = {
    kind   => 'ss',
    # arena for keys and values of up to 100 bytes (128-byte blocks each)
    open   => sub { Data::HashMap::Shared::SS->new(fresh_path('ss'), $N, 0, 0, 0, $N * 256 + 65536) },
    insert => sub { my ($m, $k, $v) = @_; for my $i (0 .. $#$k) { shm_ss_put $m, $k->[$i], $v->[$i] } },
    lookup => sub { my ($m, $k) = @_; my $h = 0; for my $x (@$k) { $h++ if defined(shm_ss_get $m, $x) } $h },
};
$impl{'perl hash'} = {
    kind   => 'any',
    open   => sub { {} },
    insert => sub { my ($h, $k, $v) = @_; for my $i (0 .. $#$k) { $h->{ $k->[$i] } = $v->[$i] } },
    lookup => sub { my ($h, $k) = @_; my $n = 0; for my $x (@$k) { $n++ if defined $h->{$x} } $n },
};
if ($have{'Hash::SharedMem'}) {
    $impl{'Hash::SharedMem'} = {
        kind   => 'any',
        open   => sub { shash_open(fresh_path('shash'), 'rwc') },
        insert => sub { my ($s, $k, $v) = @_; for my $i (0 .. $#$k) { shash_set($s, $k->[$i], $v->[$i]) } },
        lookup => sub { my ($s, $k) = @_; my $n = 0; for my $x (@$k) { $n++ if defined shash_get($s, $x) } $n },
    };
}
if ($have{LMDB_File}) {
    my $flags = LMDB_File::MDB_WRITEMAP() | LMDB_File::MDB_NOSYNC() | LMDB_File::MDB_NOMETASYNC() | LMDB_File::MDB_NORDAHEAD();
    $impl{LMDB_File} = {
        kind => 'any',
        open => sub {
            my $p = fresh_path('lmdb');
            mkdir $p or die "$p: $!";
            my $env = LMDB::Env->new($p, { mapsize => 1 << 30, flags => $flags });
            return { env => $env };
        },
        insert => sub {
            my ($s, $k, $v) = @_;
            my $txn = $s->{env}->BeginTxn;
            my $db = $txn->OpenDB({ flags => LMDB_File::MDB_CREATE() });
            for my $i (0 .. $#$k) { $db->put($k->[$i], $v->[$i]) }
            $txn->commit;
        },
        lookup => sub {
            my ($s, $k) = @_;
            my $txn = $s->{env}->BeginTxn(LMDB_File::MDB_RDONLY());
            my $db = $txn->OpenDB;
            my $n = 0;
            for my $x (@$k) { $n++ if defined $db->get($x) }
            $txn->abort;
            return $n;
        },
    };
}
if ($have{BerkeleyDB}) {
    $impl{BerkeleyDB} = {
        kind => 'any',
        open => sub {
            my $p = fresh_path('bdb');
            mkdir $p or die "$p: $!";
            my $env = BerkeleyDB::Env->new(
                -Home => $p, -Cachesize => 128 * 1024 * 1024,
                -Flags => BerkeleyDB::DB_CREATE() | BerkeleyDB::DB_INIT_MPOOL() | BerkeleyDB::DB_PRIVATE(),
            ) or die "BerkeleyDB env: $BerkeleyDB::Error";
            my $db = BerkeleyDB::Hash->new(-Filename => 'db', -Flags => BerkeleyDB::DB_CREATE(), -Env => $env)
                or die "BerkeleyDB: $BerkeleyDB::Error";
            return { env => $env, db => $db };
        },
        insert => sub { my ($s, $k, $v) = @_; my $db = $s->{db}; for my $i (0 .. $#$k) { $db->db_put($k->[$i], $v->[$i]) } },
        lookup => sub {
            my ($s, $k) = @_;
            my $db = $s->{db};
            my $n = 0;
            my $val;
            for my $x (@$k) { $n++ if $db->db_get($x, $val) == 0 }
            return $n;
        },
    };
}
if ($have{'Cache::FastMmap'}) {
    $impl{'Cache::FastMmap'} = {
        kind => 'any',
        open => sub {
            Cache::FastMmap->new(share_file => fresh_path('fastmmap'), init_file => 1, serializer => '',
                cache_size => '256m', unlink_on_exit => 1);
        },
        insert => sub { my ($c, $k, $v) = @_; for my $i (0 .. $#$k) { $c->set($k->[$i], $v->[$i]) } },
        lookup => sub { my ($c, $k) = @_; my $n = 0; for my $x (@$k) { $n++ if defined $c->get($x) } $n },
    };
}

# ---- sections ---------------------------------------------------------------
my @sections = (
    [ ii_insert       => 'insert', 'ii', \@ii_k,       \@ii_v,       \@ii_ks, \@ii_vs ],
    [ ii_lookup       => 'lookup', 'ii', \@ii_k,       \@ii_v,       \@ii_ks, \@ii_vs ],
    [ ss_short_insert => 'insert', 'ss', \@ss_short_k, \@ss_short_v ],
    [ ss_short_lookup => 'lookup', 'ss', \@ss_short_k, \@ss_short_v ],
    [ ss_long_insert  => 'insert', 'ss', \@ss_long_k,  \@ss_long_v ],
    [ ss_long_lookup  => 'lookup', 'ss', \@ss_long_k,  \@ss_long_v ],
);

# ops/s of one implementation in one section: best of $REPS timings of >= $MIN_T s
sub measure {
    my ($im, $what, $k, $v) = @_;
    my $best = 0;
    my $store;
    if ($what eq 'lookup') {
        $store = $im->{open}->();
        $im->{insert}->($store, $k, $v);
        my $hits = $im->{lookup}->($store, $k);
        die "lookup found $hits of " . scalar(@$k) . "\n" unless $hits == @$k;
    }
    for (1 .. $REPS) {
        my ($elapsed, $ops) = (0, 0);
        while ($elapsed < $MIN_T) {
            if ($what eq 'insert') {
                my $s = $im->{open}->();
                my $t0 = time;
                $im->{insert}->($s, $k, $v);
                $elapsed += time - $t0;
                if (!$ops) {    # check once that every insert landed (untimed)
                    my $hits = $im->{lookup}->($s, $k);
                    die "insert stored $hits of " . scalar(@$k) . "\n" unless $hits == @$k;
                }
                undef $s;
                collect_garbage();
            }
            else {
                my $t0 = time;
                $im->{lookup}->($store, $k);
                $elapsed += time - $t0;
            }
            $ops += @$k;
        }
        my $rate = $ops / $elapsed;
        $best = $rate if $rate > $best;
    }
    undef $store;
    collect_garbage();
    return $best;
}

printf "Data::HashMap::Shared %s, N = %d, best of %d x >= %.1f s, perl %s\n", $Data::HashMap::Shared::VERSION, $N, $REPS, $MIN_T, $^V;
printf "peers: %s\n", join(', ', map { "$_ " . ($have{$_} ? 'yes' : 'not installed') } sort keys %have);
printf "%-16s %-16s %14s %10s %10s\n", 'section', 'implementation', 'ops/s', 'vs best', 'vs hash';

my %all;    # section => { implementation => ops/s }
for my $sec (@sections) {
    my ($name, $what, $kind, $k, $v, $ks, $vs) = @$sec;
    next if length $FILTER && $name !~ /$FILTER/;
    my %rate;
    $all{$name} = \%rate;
    my $ours = $kind eq 'ii' ? 'Shared::II' : 'Shared::SS';
    for my $iname ($ours, 'perl hash', grep { $impl{$_} } 'Hash::SharedMem', 'LMDB_File', 'BerkeleyDB', 'Cache::FastMmap') {
        my $im = $impl{$iname};
        my ($kk, $vv) = ($iname =~ /^Shared::/ || !$ks) ? ($k, $v) : ($ks, $vs);
        my $r = eval { measure($im, $what, $kk, $vv) };
        if (!defined $r) { printf "%-16s %-16s %14s  (%s)\n", $name, $iname, 'failed', ($@ =~ s/\s+$//r); next }
        $rate{$iname} = $r;
    }
    my ($best_peer) = sort { $rate{$b} <=> $rate{$a} } grep { $_ ne $ours && $_ ne 'perl hash' } keys %rate;
    for my $iname (sort { $rate{$b} <=> $rate{$a} } keys %rate) {
        printf "%-16s %-16s %14.0f %10s %10s\n", $name, $iname, $rate{$iname},
            $best_peer && $iname eq $ours ? sprintf('%.2fx', $rate{$ours} / $rate{$best_peer}) : '',
            $rate{'perl hash'} ? sprintf('%.2fx', $rate{$iname} / $rate{'perl hash'}) : '';
    }
    printf "%-16s %s is %.2fx the best peer (%s)\n", $name, $ours, $rate{$ours} / $rate{$best_peer}, $best_peer
        if $best_peer && $rate{$ours};
    print "\n";
}

# The throughput targets of decisions.md that these sections measure.
my @targets = (
    [ ii_lookup       => 'Shared::II', 'perl hash',       1.5 ],
    [ ii_lookup       => 'Shared::II', 'LMDB_File',       20 ],
    [ ii_insert       => 'Shared::II', 'LMDB_File',       15 ],
    [ ss_short_lookup => 'Shared::SS', 'Hash::SharedMem', 2.5 ],
    [ ss_long_lookup  => 'Shared::SS', 'Hash::SharedMem', 3 ],
);
my @lines;
for my $t (@targets) {
    my ($sec, $ours, $peer, $want) = @$t;
    my $r = $all{$sec} or next;
    next unless $r->{$ours} && $r->{$peer};
    my $got = $r->{$ours} / $r->{$peer};
    push @lines, sprintf "  %-16s %s vs %-16s %6.2fx (target %gx) %s", $sec, $ours, $peer, $got, $want, $got >= $want ? 'met' : 'NOT MET';
}
print "targets (decisions.md):\n", map { "$_\n" } @lines if @lines;

remove_tree($DIR);
