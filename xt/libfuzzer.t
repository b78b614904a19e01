use strict;
use warnings;
use Test::More;
use FindBin;
use Cwd qw(abs_path);

# The coverage-guided fuzzer (rust-core/fuzz, libFuzzer through libfuzzer-sys) run for a
# fixed time over arbitrary map files and operation sequences, under AddressSanitizer.
# -rss_limit_mb=0: libFuzzer's RSS monitor is a thread, and the engine repairs damage in
# its own process's reader slot only when the process is single-threaded (lock.rs);
# -malloc_limit_mb still bounds allocations.
# Needs the network once (the fuzz crate's own dependencies) or a warm cargo cache.
#
#   prove -b xt/libfuzzer.t                        # 300 s
#   HMS_LIBFUZZER_SECONDS=3600 prove -b xt/libfuzzer.t
my $secs = $ENV{HMS_LIBFUZZER_SECONDS} || 300;
my $dir  = abs_path("$FindBin::Bin/../rust-core/fuzz");
my $flags = join ' ', '-Cpasses=sancov-module', map("-Cllvm-args=-sanitizer-coverage-$_",
    'level=4', 'inline-8bit-counters', 'pc-table', 'trace-compares'), '-Zsanitizer=address', '--cfg fuzzing';
local $ENV{RUSTC_BOOTSTRAP} = 1;    # stable 1.95 accepts the nightly flags cargo-fuzz also uses
local $ENV{RUSTFLAGS} = $flags;
is system("cd '$dir' && cargo build -q --release --target x86_64-unknown-linux-gnu"), 0, 'the fuzz target builds';
mkdir "$dir/corpus"; mkdir "$dir/corpus/corrupt_file"; mkdir "$dir/artifacts"; mkdir "$dir/artifacts/corrupt_file";
my $bin = "$dir/target/x86_64-unknown-linux-gnu/release/corrupt_file";
my $out = `cd '$dir' && '$bin' corpus/corrupt_file -artifact_prefix=artifacts/corrupt_file/ -timeout=10 -rss_limit_mb=0 -malloc_limit_mb=2048 -max_len=4096 -max_total_time=$secs -print_final_stats=1 2>&1`;
my $rc = $? >> 8;
my ($runs) = $out =~ /stat::number_of_executed_units:\s*(\d+)/;
is $rc, 0, "no crash, hang or sanitizer report in $secs s" or diag substr($out, -4000);
ok $runs, "executed " . ($runs // 0) . " cases";
diag "libFuzzer: " . ($runs // 0) . " cases in $secs s";
done_testing;
