use strict;
use warnings;
use FindBin;

# Long run of t/hostile-files.t: thousands of corrupt-file cases (default 20000, about
# 3 minutes). HMS_FUZZ_CASES / HMS_FUZZ_BASE / HMS_FUZZ_TIMEOUT as there; set
# HMS_FUZZ_BASE to explore other seeds (the short test uses 1..1000).
#
#   prove -b xt/corrupt-fuzz.t
#   HMS_FUZZ_CASES=100000 HMS_FUZZ_BASE=500000 prove -b xt/corrupt-fuzz.t

$ENV{HMS_FUZZ_CASES} //= 20000;
$ENV{HMS_FUZZ_BASE}  //= 100000;
$ENV{HMS_TEST_TIMEOUT} //= 3600;
unshift @INC, "$FindBin::Bin/../t/lib";
my $file = "$FindBin::Bin/../t/hostile-files.t";
my $ok = do $file;
die $@ if $@;
