#!/usr/bin/perl
# eg/lru-cache.pl [inserts] -- a bounded cache: at most 100 entries, the least
# recently used evicted first; entries read since the last sweep get a second chance.
#   perl -Mblib eg/lru-cache.pl 1000
use strict;
use warnings;
use Data::HashMap::Shared::SS;

my $inserts = shift // 1000;
my $size    = 100;

# max_entries (room in the table) and max_size (the LRU bound)
my $cache = Data::HashMap::Shared::SS->new(undef, $size, $size);

my @hot = map { "hot:$_" } 1 .. 5;
shm_ss_put $cache, $_, "precious $_" for @hot;
for my $i (1 .. $inserts) {
    shm_ss_put $cache, "page:$i", "body of page $i";    # evicts one entry when full
    shm_ss_get $cache, $_ for @hot;                       # reads mark them "accessed"
}

my $live = grep { defined(shm_ss_get $cache, $_) } @hot;
printf "size %d (max_size %d), %d evictions, %d of %d hot keys still cached\n",
    shm_ss_size $cache, shm_ss_max_size $cache, shm_ss_stat_evictions $cache, $live, scalar @hot;
my ($k, $v) = shm_ss_pop $cache;    # the least recently used entry
print "least recently used: $k\n";
die "over the bound\n" unless shm_ss_size($cache) <= $size;
die "a hot key was evicted\n" unless $live == @hot;
die "wrong eviction count\n" unless shm_ss_stat_evictions($cache) == $inserts + @hot - $size;
