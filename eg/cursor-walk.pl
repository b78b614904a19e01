#!/usr/bin/perl
# eg/cursor-walk.pl [sessions] -- cursors: walk a session map, removing stale sessions
# while walking; a nested cursor inside the walk; seek to resume a walk at a key.
#   perl -Mblib eg/cursor-walk.pl 1000
use strict;
use warnings;
use Data::HashMap::Shared::SS;

my $n   = shift // 1000;
my $map = Data::HashMap::Shared::SS->new(undef, $n);
shm_ss_put $map, "session$_", ($_ % 3 ? 'active' : 'stale') for 1 .. $n;
my $stale = int($n / 3);

# 1. remove while walking: every entry is returned once, none is skipped
my ($seen, $removed) = (0, 0);
my $cur = shm_ss_cursor $map;
while (my ($k, $v) = shm_ss_cursor_next $cur) {
    $seen++;
    $removed++ if $v eq 'stale' && shm_ss_remove $map, $k;
}
printf "walked %d sessions, removed %d stale, %d left\n", $seen, $removed, shm_ss_size($map);

# 2. cursors are independent: a nested walk per outer entry, and each() untouched
shm_ss_each $map;    # start the built-in iterator
my ($outer, $pairs) = (0, 0);
my $outer_cur = shm_ss_cursor $map;
while ((my ($k) = shm_ss_cursor_next $outer_cur) && $outer < 5) {
    $outer++;
    my $inner = $map->cursor;
    while (my ($k2) = $inner->next) { $pairs++ }
}
my $each_left = 1;
$each_left++ while shm_ss_each $map;    # each() goes on from where it was
printf "nested: %d outer entries x %d inner = %d pairs; each() still had %d to go\n",
    $outer, shm_ss_size($map), $pairs, $each_left;

# 3. seek: resume a walk at a remembered key (e.g. after a batch of work)
my @order;
$cur->reset;
while (my ($k) = shm_ss_cursor_next $cur) { push @order, $k }
my $from = $order[ @order / 2 ];
my $ok   = shm_ss_cursor_seek $cur, $from;
my @rest;
while (my ($k) = shm_ss_cursor_next $cur) { push @rest, $k }
printf "seek to %s: %d of %d entries from there on\n", $from, scalar @rest, scalar @order;

die "the cursor walk went wrong\n"
    unless $seen == $n && $removed == $stale && shm_ss_size($map) == $n - $stale
        && $pairs == 5 * ($n - $stale) && $each_left == $n - $stale
        && $ok && "@rest" eq "@order[@order/2 .. $#order]";
