use strict;
use warnings;
use Test::More;
use FindBin;
use File::Temp ();
use Cwd ();

# Runs Perl test files under valgrind memcheck (doc/TESTING.md). A file passes when
# memcheck reports no error in it or in any process it forks (forked children stay
# under valgrind; exec'd programs do not). Perl's own known reports are suppressed by
# valgrind.supp at the top of the distribution. Leak checking is off: perl does not
# free its memory at exit, so t/leaks.t measures leaks instead.
#
#   prove -b xt/valgrind.t                         # the representative subset below
#   HMS_VALGRIND_FILES='t/strings.t t/batch.t' prove -b xt/valgrind.t
#   HMS_VALGRIND_FILES=all prove -b xt/valgrind.t  # every t/*.t (an hour or more)
#
# The test files' own results are reported too (a file whose checks fail under
# valgrind's slowness is listed, but only memcheck errors fail this test unless
# HMS_VALGRIND_STRICT=1).

my $vg = `sh -c 'command -v valgrind'`;
chomp $vg;
plan skip_all => 'valgrind not installed (apt-get install valgrind)' unless $vg;

my $top = Cwd::abs_path("$FindBin::Bin/..");
my $supp = "$top/valgrind.supp";
my @files = split ' ', $ENV{HMS_VALGRIND_FILES} // join ' ', map { "t/$_.t" } qw(
    00-load methods strings integers batch iteration keywords invocant files processes
    hostile-args hostile-files leaks);
@files = glob "$top/t/*.t" if "@files" eq 'all';
my $dir = File::Temp::tempdir('hms-vg-XXXXXX', TMPDIR => 1, CLEANUP => 1);

# slower under valgrind: fewer rounds / cases, longer alarms
local $ENV{HMS_TEST_TIMEOUT}  = 7200;
local $ENV{HMS_CHILD_TIMEOUT} = 1800;
local $ENV{HMS_FUZZ_TIMEOUT}  = 300;
local $ENV{HMS_FUZZ_CASES}    = $ENV{HMS_FUZZ_CASES} // 150;
local $ENV{HMS_LEAK_ROUNDS}   = $ENV{HMS_LEAK_ROUNDS} // 300;

for my $f (@files) {
    my $path = $f =~ m{^/} ? $f : "$top/$f";
    (my $tag = $f) =~ s{.*/}{};
    my $logs = "$dir/$tag";
    mkdir $logs;
    my $t0 = time;
    my @cmd = ($vg, '--quiet', '--error-exitcode=99', "--suppressions=$supp", '--num-callers=30',
        '--leak-check=no', "--log-file=$logs/vg.%p.log", $^X, "-I$top/blib/lib", "-I$top/blib/arch", $path);
    my $out = `cd $top && @cmd 2>&1`;
    my $rc = $? >> 8;
    my @errs;
    for my $log (glob "$logs/vg.*.log") {
        open my $fh, '<', $log or next;
        local $/;
        my $text = <$fh>;
        push @errs, $text if $text =~ /\S/;
    }
    my $failed = $out =~ /^not ok/m || ($rc && $rc != 99);
    ok(!@errs, sprintf '%s: no memcheck errors (%d s%s)', $f, time - $t0, $failed ? ', some of its own checks failed' : '')
        or diag substr(join("\n", @errs), 0, 20000);
    if ($failed) {
        my @not = grep { /^not ok/ } split /\n/, $out;
        if ($ENV{HMS_VALGRIND_STRICT}) { fail("$f passes under valgrind") }
        diag "$f under valgrind: exit $rc; " . (@not ? join('; ', @not[0 .. ($#not < 4 ? $#not : 4)]) : 'no "not ok" line');
    }
}

done_testing;
