# Every script in eg/ runs (with small sizes) and checks its own result: each one
# exits non-zero when what it demonstrates did not happen.
use strict;
use warnings;
use Test::More;

# script => [arguments, a line its output must have]
my %run = (
    'demo.pl'        => [[2, 500],  qr/^total 1000, expected 1000: ok$/m],
    'counters.pl'    => [[3, 500],  qr/^total 1500 of 1500 events$/m],
    'memoize.pl'     => [[3, 20],   qr/^3 workers asked for 20 keys each: slow\(\) ran \d+ times/m],
    'lru-cache.pl'   => [[300],     qr/^size 100 \(max_size 100\), 205 evictions, 5 of 5 hot keys/m],
    'rate-limit.pl'  => [[3, 50],   qr/^client0: 48 requests, 48 allowed/m],
    'work-queue.pl'  => [[300, 3],  qr/^300 jobs done by 3 workers; queue left: 0; done twice or never: 0$/m],
    'heartbeat.pl'   => [[],       qr/^worker \d+: gone$/m],
    'leaderboard.pl' => [[2, 200],  qr/^player\s+best\s+fastest\s+rounds$/m],
    'memfd.pl'       => [[],        qr/^child read: hello from the parent\nparent read: hello from pid \d+$/m],
    'aggregator.pl'  => [[2, 500],  qr/^collected in \d+ drains; map size now 0$/m],
    'feature-flags.pl'   => [[3],        qr/^3 of 3 readers saw version 1 and could not change it\ndark-mode: old handle 0, reopened 1; beta-search now gone$/m],
    'sharded-counter.pl' => [[3, 500, 4], qr/^100 keys, total 1500 of 1500 events$/m],
    'cursor-walk.pl'     => [[300],       qr/^walked 300 sessions, removed 100 stale, 200 left$/m],
    'perl-data.pl'       => [[3, 200],    qr/^600 records from 3 workers round-tripped: 600 equal, 0 evicted\nuser:1:1 name: the same text$/m],
);

opendir my $dh, 'eg' or die "eg: $!";
my @scripts = sort grep { /\.pl\z/ } readdir $dh;
is_deeply \@scripts, [sort keys %run], 'every script in eg/ is run by this test';

for my $script (@scripts) {
    my ($args, $expect) = @{ $run{$script} || next };
    my $out = qx{$^X -Mblib eg/$script @$args 2>&1};
    is $?, 0, "eg/$script @$args exits 0" or diag $out;
    like $out, $expect, "eg/$script prints what it should";
}

done_testing;
