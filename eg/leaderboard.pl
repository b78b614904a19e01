#!/usr/bin/perl
# eg/leaderboard.pl [workers] [rounds] -- a leaderboard kept with atomic max and min:
# game servers report every finished round; each player's best score and fastest time
# are kept without a lock.  perl -Mblib eg/leaderboard.pl 4 1000
use strict;
use warnings;
use Data::HashMap::Shared::SI;

my $workers = shift // 4;
my $rounds  = shift // 1000;
my @players = qw(ada brian grace ken linus margaret);

my $board = Data::HashMap::Shared::SI->new(undef, 100);

# each server's rounds are a repeatable pseudo-random sequence, so the parent can
# work out the right answer afterwards
sub rounds_of {
    my ($w) = @_;
    my $x = $w * 7919;
    return map {
        $x = ($x * 1103515245 + 12345) % 2**31;
        [ $players[ $x % @players ], $x % 10_000, 30 + $x % 600 ];    # player, score, seconds
    } 1 .. $rounds;
}

my @pids;
for my $w (1 .. $workers) {
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        for (rounds_of($w)) {
            my ($p, $score, $secs) = @$_;
            shm_si_max $board, "best:$p", $score;
            shm_si_min $board, "fastest:$p", $secs;
            shm_si_incr $board, "played:$p";
        }
        exit 0;
    }
    push @pids, $pid;
}
waitpid $_, 0 for @pids;

my (%best, %fastest);
for my $w (1 .. $workers) {
    for (rounds_of($w)) {
        my ($p, $score, $secs) = @$_;
        $best{$p}    = $score if !defined $best{$p}    || $score > $best{$p};
        $fastest{$p} = $secs  if !defined $fastest{$p} || $secs < $fastest{$p};
    }
}
my @ranked = sort { (shm_si_get $board, "best:$b") <=> (shm_si_get $board, "best:$a") } keys %best;
printf "%-9s %6s %8s %7s\n", qw(player best fastest rounds);
for my $p (@ranked) {
    printf "%-9s %6d %7ds %7d\n", $p, shm_si_get($board, "best:$p"), shm_si_get($board, "fastest:$p"),
        shm_si_get($board, "played:$p");
    die "wrong best score for $p\n"   unless shm_si_get($board, "best:$p") == $best{$p};
    die "wrong fastest time for $p\n" unless shm_si_get($board, "fastest:$p") == $fastest{$p};
}
