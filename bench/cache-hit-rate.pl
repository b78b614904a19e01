#!/usr/bin/perl
# bench/cache-hit-rate.pl [requests] [pages] -- the hit rate of an LRU page cache
# (issue 15): requests for `pages` pages of 1000 bytes, Zipf-distributed (s = 1), go
# through a cache; a miss "renders" the page and puts it. A hit rate, not a time: the
# figures do not depend on the machine's load. Positional constructor arguments only,
# so that an older build (perl -Iblib/lib -Iblib/arch of another tree) runs it too.
#   perl -Mblib bench/cache-hit-rate.pl 200000 5000
use strict;
use warnings;
use Data::HashMap::Shared::SS;

my $requests = shift // 200_000;
my $pages    = shift // 5000;
my $PAGE     = 1000;

# Zipf(1) over ranks 1..$pages: rank r is requested with probability (1/r) / H.
my @cdf;
my $h = 0;
$h += 1 / $_ for 1 .. $pages;
my $acc = 0;
push @cdf, ($acc += 1 / $_ / $h) for 1 .. $pages;
sub draw {
    my $x = rand;
    my ($lo, $hi) = (0, $#cdf);
    while ($lo < $hi) {
        my $mid = ($lo + $hi) >> 1;
        if ($cdf[$mid] < $x) { $lo = $mid + 1 } else { $hi = $mid }
    }
    return $lo + 1;
}

# steady: page r is rank r throughout. drift: popularity moves, every 1/10 of the
# run the ranks shift by a tenth of the pages (yesterday's hot pages cool down).
sub page_of {
    my ($rank, $i, $pattern) = @_;
    return $rank if $pattern eq 'steady';
    my $shift = int($i / ($requests / 10)) * int($pages / 10);
    return ($rank + $shift - 1) % $pages + 1;
}

# The share of requests an ideal cache holding the K most popular pages would hit.
sub top_k_share { my $k = shift; $k < 1 ? 0 : $cdf[ $k > $pages ? $pages - 1 : $k - 1 ] }

my @caches = (
    [ 'SS->new($p, 1000, 1000, 0)           (the issue: default string space)' => [ 1000, 1000, 0 ] ],
    # a byte budget: the count bound is the whole catalogue, the string space holds
    # about 1000 pages (the named form: { max_entries => 5000, lru => 1, string_space => '1m' })
    [ 'SS->new($p, 5000, 5000, 0, 0, 1<<20) (1 MiB of pages)'                  => [ 5000, 5000, 0, 0, 1 << 20 ] ],
);
printf "%d requests, %d pages of %d bytes, Zipf(1); hit rate after the first 10%% (warm-up)\n\n",
    $requests, $pages, $PAGE;
for my $pattern (qw(steady drift)) {
    for my $c (@caches) {
        my ($name, $args) = @$c;
        srand(42);
        my $m = Data::HashMap::Shared::SS->new(undef, @$args);
        my ($hits, $counted, $failed) = (0, 0, 0);
        for my $i (0 .. $requests - 1) {
            my $key = '/page/' . page_of(draw(), $i, $pattern);
            my $got = shm_ss_get $m, $key;
            my $warm = $i >= $requests / 10;
            $counted++ if $warm;
            if (defined $got) { $hits++ if $warm; next }
            my $body = "$key:" . ('x' x ($PAGE - length($key) - 1));
            $failed++ unless shm_ss_put $m, $key, $body;
        }
        my $held = $m->size;
        printf "%-6s %s\n       hit rate %5.1f%%  (ideal static top-%d: %5.1f%%)  pages held %4d  puts refused %6d  evictions %6d\n",
            $pattern, $name, 100 * $hits / $counted, $held, 100 * top_k_share($held), $held, $failed, $m->stat_evictions;
    }
}
