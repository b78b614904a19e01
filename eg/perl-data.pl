#!/usr/bin/perl
# eg/perl-data.pl [workers] [records] -- Perl data structures in a shared map: values
# are serialized with Storable (in the core) into the bytes an SS map stores, and
# thawed back by whoever reads them, in any process.
#   perl -Mblib eg/perl-data.pl 3 200
use strict;
use warnings;
use Storable ();
use Data::HashMap::Shared::SS;

my $workers = shift // 3;
my $records = shift // 200;

# An LRU cache sized in bytes: when 1 MiB of keys and values is used, the least
# recently used records make room for new ones.
my $map = Data::HashMap::Shared::SS->new(undef, { string_space => '1m', lru => 1 });

# Storable's freeze gives bytes (never a string with UTF-8 characters), so any data
# goes in, UTF-8 text and binary alike; thaw gives back an equal structure.
sub put_data { my ($m, $key, $data) = @_; shm_ss_put $m, $key, Storable::freeze($data) }
sub get_data {
    my ($m, $key) = @_;
    my $bytes = shm_ss_get $m, $key;
    return defined $bytes ? Storable::thaw($bytes) : undef;
}

sub record {
    my ($w, $i) = @_;
    return {
        id      => "$w.$i",
        name    => "caf\x{e9} \x{263a} #$i",                       # text, wide characters
        tags    => [ map { "tag$_" } 1 .. $i % 5 ],
        scores  => { min => -$i, max => $i * 1.5 },
        blob    => pack('N*', $i .. $i + 3) . "\0\xff",            # binary bytes
        nothing => undef,
    };
}

my @pids;
for my $w (1 .. $workers) {
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        put_data($map, "user:$w:$_", record($w, $_)) or die "put failed\n" for 1 .. $records;
        exit 0;
    }
    push @pids, $pid;
}
for my $pid (@pids) {
    waitpid $pid, 0;
    die "a worker failed\n" if $?;
}

# Compare through a canonical freeze: equal structures give equal bytes.
local $Storable::canonical = 1;
my ($same, $missing) = (0, 0);
for my $w (1 .. $workers) {
    for my $i (1 .. $records) {
        my $got = get_data($map, "user:$w:$i");
        if (!defined $got) { $missing++; next }    # evicted (not with these sizes)
        $same++ if Storable::freeze($got) eq Storable::freeze(record($w, $i));
    }
}
my $n = $workers * $records;
printf "%d records from %d workers round-tripped: %d equal, %d evicted\n", $n, $workers, $same, $missing;
my $r = get_data($map, 'user:1:1');
print 'user:1:1 name: ', (!$r ? 'evicted' : $r->{name} eq "caf\x{e9} \x{263a} #1" ? 'the same text' : 'DIFFERENT'), "\n";
die "records differ\n" unless $same + $missing == $n && $same > 0;
die "records were evicted from a map big enough for them\n" if $missing && $n * 300 < 1 << 20;
