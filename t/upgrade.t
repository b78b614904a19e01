#!/usr/bin/perl
# Data::HashMap::Shared->upgrade_file and bin/hashmap-shared-upgrade on real files
# written by the C implementation (../shared/fixtures/c-format, read from there: the
# fixtures are not ours to ship, so they are never copied into the repository).
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use File::Copy qw(copy);
use JSON::PP ();
use Data::HashMap::Shared;
use Data::HashMap::Shared::II;   # loads every class

my ($fixtures) = grep { -d } map { "$_/shared/fixtures/c-format" } '..', '../..', '/work';
plan skip_all => 'the C-format fixtures (../shared/fixtures/c-format) are not here (as in the tarball)'
    unless $fixtures;

my $json = JSON::PP->new->allow_bignum;

sub slurp { my $f = shift; open my $fh, '<:raw', $f or die "$f: $!"; local $/; scalar <$fh> }

# A stored key or value as "flag:hex" (strings) or its decimal text (ints), so that
# bytes, UTF-8 flag and exact 64-bit integers are all compared.
sub repr_got {
    my ($v, $is_str) = @_;
    return "$v" unless $is_str;
    my $flag = utf8::is_utf8($v) ? 1 : 0;
    utf8::encode($v) if $flag;
    return "$flag:" . unpack('H*', $v);
}
sub repr_want {
    my $v = shift;
    return ($v->{utf8} ? 1 : 0) . ":$v->{hex}" if ref $v eq 'HASH';
    return "$v";
}

# A manifest string ({hex, utf8}) as a Perl string with that flag.
sub unpack_str {
    my $h = shift;
    my $s = pack('H*', $h->{hex});
    utf8::decode($s) if $h->{utf8};
    return $s;
}

sub contents {
    my ($map, $key_str, $val_str) = @_;
    my @items = $map->items;
    my %h;
    while (my ($k, $v) = splice @items, 0, 2) {
        $h{ repr_got($k, $key_str) } = repr_got($v, $val_str);
    }
    return \%h;
}
sub want_contents { +{ map { repr_want($_->[0]) => repr_want($_->[1]) } @{ $_[0] } } }

for my $ver (qw(v9 v10)) {
    my $manifest = $json->decode(slurp("$fixtures/$ver/MANIFEST.json"));
    for my $fx (@{ $manifest->{fixtures} }) {
        my $name  = $fx->{name};
        my $class = "Data::HashMap::Shared::$fx->{variant}";
        my ($ks, $vs) = map { $_ eq 'str' ? 1 : 0 } @{$fx}{qw(key_type value_type)};
        my $dir = tempdir(CLEANUP => 1);
        for my $file (@{ $fx->{files} }) {
            copy("$fixtures/$ver/$file", "$dir/$file") or die "copy $file: $!";
            chmod 0644, "$dir/$file";
        }
        subtest "$ver/$name" => sub {
            for my $file (@{ $fx->{files} }) {
                is(Data::HashMap::Shared->upgrade_file("$dir/$file"), 1, "$file converted");
                is(Data::HashMap::Shared->upgrade_file("$dir/$file"), 0, "$file: a second upgrade finds it current");
                is((stat "$dir/$file")[2] & 07777, 0644, "$file keeps its mode");
                ok(!-e "$dir/$file.upgrade-tmp", "$file: no temporary file left");
            }
            if ($fx->{shard_entries}) {
                for my $file (sort keys %{ $fx->{shard_entries} }) {
                    my $m = $class->new("$dir/$file", 0);
                    is_deeply(contents($m, $ks, $vs), want_contents($fx->{shard_entries}{$file}),
                        "$file holds exactly its entries");
                }
                # The upgraded shards reopen as a set that routes like the C version did.
                my $n = $fx->{constructor}{named}{shards};
                my $prefix = "$dir/$fx->{constructor}{named}{prefix}";
                # Before the first open the files do not know the count: one that does not
                # match the files present is refused (and records nothing).
                ok(!eval { $class->new_sharded($prefix, $n * 2, 0); 1 }, 'first open with too many shards refused');
                like($@, qr/\Q$prefix\E\.$n: missing from a shard set upgraded from the C implementation/,
                    '... naming the missing file');
                ok(!eval { $class->new_sharded($prefix, $n / 2, 0); 1 }, 'first open with too few shards refused');
                like($@, qr/\Q$prefix\E\.@{[$n \/ 2]} exists: this shard set upgraded from the C implementation has more than/,
                    '... naming the extra file');
                my $set = $class->new_sharded($prefix, $n, 0);
                is($set->size, scalar @{ $fx->{entries} }, "new_sharded($n) sees every entry");
                my $found = 0;
                for my $e (@{ $fx->{entries} }) {
                    my ($k, $v) = map { ref $_ ? unpack_str($_) : $_ } @$e;
                    my $got = $set->get($k);
                    $found++ if defined $got && repr_got($got, $vs) eq repr_want($e->[1]);
                }
                is($found, scalar @{ $fx->{entries} }, 'get finds every entry through the C routing');
                undef $set;
                for my $wrong ($n / 2, $n * 2) {
                    ok(!eval { $class->new_sharded($prefix, $wrong, 0); 1 }, "reopening with $wrong shards refused");
                    like($@, qr/\Q$prefix\E\.0: shard set has $n shards, opened with $wrong/,
                        '... naming both counts');
                }
                $set = $class->new_sharded($prefix, $n, 0);
                is($set->size, scalar @{ $fx->{entries} }, 'the adopted set reopens');
                return;
            }
            my $m = $class->new("$dir/$fx->{files}[0]", 0);
            my $got  = contents($m, $ks, $vs);
            my $want = want_contents($fx->{entries});
            if ($fx->{ttl_entries}) {
                # Expiries are boot-relative in the C format: a TTL entry may have expired
                # on this boot. The permanent entries must all be there; any extra one
                # must be one of the TTL entries with its value.
                my %ttl = map { repr_want($_->{key}) => repr_want($_->{value}) } @{ $fx->{ttl_entries} };
                for my $k (sort keys %$got) {
                    next if exists $want->{$k};
                    is($got->{$k}, $ttl{$k}, "extra entry $k is a TTL entry of the source");
                }
                is($got->{$_}, $want->{$_}, "permanent entry $_") for sort keys %$want;
            }
            else {
                is_deeply($got, $want, 'every entry with its exact bytes and UTF-8 flags');
            }
            is($m->max_size, $fx->{max_size}, 'max_size carried over');
            is($m->ttl, $fx->{ttl}, 'ttl carried over');
            is($m->stat_evictions, $fx->{stat_evictions}, 'stat_evictions carried over');
            cmp_ok($m->stat_expired, '>=', $fx->{stat_expired}, 'stat_expired carried over');
            cmp_ok($m->max_entries, '>=', $fx->{size}, 'room for every entry');
            if ($fx->{pop_order}) {
                my @order;
                while (my ($k, $v) = $m->pop) { push @order, [repr_got($k, $ks), repr_got($v, $vs)] }
                is_deeply(\@order, [map { [repr_want($_->[0]), repr_want($_->[1])] } @{ $fx->{pop_order} }],
                    'pop returns the LRU order of the source');
            }
        };
    }
}

subtest 'refusals leave the file untouched' => sub {
    my $dir = tempdir(CLEANUP => 1);
    my $src = "$fixtures/v10/ss-mixed.shm";
    my $bytes = slurp($src);

    my %cases = (
        truncated => substr($bytes, 0, length($bytes) - 100),
        tiny      => substr($bytes, 0, 40),
        version   => do { my $b = $bytes; substr($b, 4, 4) = pack('V', 8); $b },
        magic     => do { my $b = $bytes; substr($b, 0, 4) = 'XXXX'; $b },
    );
    my %words = (truncated => qr/size mismatch/, tiny => qr/too small/,
                 version => qr/unsupported source version 8 \(migrates 9 -> 10 only\)/,
                 magic => qr/bad magic/);
    for my $case (sort keys %cases) {
        my $f = "$dir/$case.shm";
        open my $fh, '>:raw', $f or die $!; print $fh $cases{$case}; close $fh;
        ok(!eval { Data::HashMap::Shared->upgrade_file($f); 1 }, "$case refused");
        like($@, qr/^Data::HashMap::Shared->upgrade_file: .*$words{$case}/, "$case: says why");
        is(slurp($f), $cases{$case}, "$case: file unchanged");
        ok(!-e "$f.upgrade-tmp", "$case: no temporary file left");
    }
    ok(!eval { Data::HashMap::Shared->upgrade_file("$dir/missing.shm"); 1 }, 'missing file refused');
    like($@, qr/open .*No such file/, 'missing file: says so');
    ok(!eval { Data::HashMap::Shared->upgrade_file(undef); 1 }, 'undef path refused');
    like($@, qr/^Data::HashMap::Shared->upgrade_file: path is required/, 'undef path: says so');

    copy($src, "$dir/c.shm") or die $!;
    my $m = eval { Data::HashMap::Shared::SS->new("$dir/c.shm", 100) };
    ok(!$m, 'new refuses a C-format file');
    like($@, qr/upgrade_file/, '... and names upgrade_file');
};

subtest 'bin/hashmap-shared-upgrade' => sub {
    my $dir = tempdir(CLEANUP => 1);
    copy("$fixtures/v9/ii-plain.shm", "$dir/a.shm") or die $!;
    copy("$fixtures/v10/ss-mixed.shm", "$dir/b.shm") or die $!;
    open my $fh, '>:raw', "$dir/bad.shm" or die $!; print $fh "x" x 10; close $fh;
    my @perl = ($^X, (map { "-I$_" } grep { !ref } @INC), 'bin/hashmap-shared-upgrade');
    my $run = sub {
        my $out = `@perl @_ 2>$dir/err`;
        return ($? >> 8, $out, slurp("$dir/err"));
    };
    my ($rc, $out) = $run->();
    is($rc, 1, 'no arguments: exit 1');
    like($out, qr/^Usage: hashmap-shared-upgrade FILE/, 'no arguments: usage on stdout');
    ($rc, $out) = $run->('--help');
    is($rc, 0, '--help: exit 0');
    like($out, qr/^Usage:/, '--help: usage');
    my $err;
    ($rc, $out, $err) = $run->("$dir/a.shm", "$dir/b.shm", "$dir/bad.shm");
    is($rc, 1, 'an error: exit 1');
    like($out, qr/^  upgraded \Q$dir\E\/a\.shm$/m, 'per-file line for a converted file');
    like($err, qr/^  ERROR    \Q$dir\E\/bad\.shm: .*too small/m, 'per-file error line on stderr');
    unlike($err, qr/ at \S+ line \d+/, 'error line has no at-line suffix');
    like($out, qr/^2 upgraded, 0 already current, 1 error\(s\)$/m, 'summary line');
    ($rc, $out) = $run->("$dir/a.shm");
    is($rc, 0, 'all current: exit 0');
    like($out, qr/^  current  \Q$dir\E\/a\.shm \(unchanged\)$/m, 'current line');
    like($out, qr/^0 upgraded, 1 already current, 0 error\(s\)$/m, 'summary when current');
};

done_testing;
