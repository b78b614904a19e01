package Variants;

# The one table of the ten variants that every test file drives from, plus a
# few small helpers shared by the tests (temporary files, forking, booleans).

use strict;
use warnings;
use Exporter 'import';
use File::Temp ();
use POSIX ();
use Test::More ();

our @EXPORT = qw(
    @VARIANTS variant variants_where
    narrow tmpdir tmppath
    is_true is_false warnings_of dies_like lives
    in_child child_result wait_all
    hold_write_lock release_write_lock
    fixture_dir guard
);

# name, variant id, key kind, key bits, value kind, value bits
my @TABLE = (
    [ I16  =>  1, int => 16, int => 16 ],
    [ I32  =>  2, int => 32, int => 32 ],
    [ II   =>  3, int => 64, int => 64 ],
    [ I16S =>  4, int => 16, str => 0  ],
    [ I32S =>  5, int => 32, str => 0  ],
    [ IS   =>  6, int => 64, str => 0  ],
    [ SI16 =>  7, str => 0,  int => 16 ],
    [ SI32 =>  8, str => 0,  int => 32 ],
    [ SI   =>  9, str => 0,  int => 64 ],
    [ SS   => 10, str => 0,  str => 0  ],
);

# Four distinct sample keys / values per kind. Int samples fit the narrowest width
# of their kind so they round-trip unchanged; string samples mix inline (<= 7
# bytes), arena (> 7 bytes), empty and NUL-containing strings.
my %SAMPLE_KEYS = (
    int16 => [ 1, -2, 300, 12345 ],
    int32 => [ 1, -2, 300, 123456789 ],
    int64 => [ 1, -2, 300, 1099511627776 ],
    str   => [ 'k', 'a key longer than seven bytes', '', "n\0ul" ],
);
my %SAMPLE_VALS = (
    int16 => [ 7, -8, 1000, 32000 ],
    int32 => [ 7, -8, 100000, -2000000000 ],
    int64 => [ 7, -8, 1099511627776, -1125899906842624 ],
    str   => [ 'v', 'a value longer than seven bytes', '', "x\0y" ],
);

# A hung test file must fail rather than stall the run: every file that loads this
# module is killed by SIGALRM after HMS_TEST_TIMEOUT seconds (default 300).
alarm($ENV{HMS_TEST_TIMEOUT} // 300);

our @VARIANTS;
for my $row (@TABLE) {
    my ($name, $id, $kk, $kb, $vk, $vb) = @$row;
    my $ksample = $kk eq 'int' ? "int$kb" : 'str';
    my $vsample = $vk eq 'int' ? "int$vb" : 'str';
    push @VARIANTS, {
        name     => $name,
        class    => "Data::HashMap::Shared::$name",
        prefix   => lc $name,
        id       => $id,
        key      => $kk,          # 'int' | 'str'
        kbits    => $kb,          # 16 | 32 | 64 (0 for strings)
        val      => $vk,          # 'int' | 'str'
        vbits    => $vb,
        counters => $vk eq 'int' ? 1 : 0,
        arena    => ($kk eq 'str' || $vk eq 'str') ? 1 : 0,
        keys     => [ @{ $SAMPLE_KEYS{$ksample} } ],
        vals     => [ @{ $SAMPLE_VALS{$vsample} } ],
        missing  => $kk eq 'int' ? 4242 : 'no such key',
    };
}

# subtest NAME => guard { ... }: an exception in the body fails that subtest
# (with the message) instead of ending the whole test file.
sub guard(&) {
    my $code = shift;
    return sub {
        my @a = @_;
        my $ok = eval { $code->(@a); 1 };
        return if $ok;
        my $err = $@;
        Test::More::fail('subtest body died');
        Test::More::diag("died: $err");
    };
}

sub variant { my $n = shift; my ($v) = grep { $_->{name} eq $n } @VARIANTS; die "no variant $n" unless $v; $v }

sub variants_where { my $cb = shift; grep { $cb->($_) } @VARIANTS }

# Two's complement narrowing to $bits (16, 32, 64), as the engine does.
sub narrow {
    my ($bits, $n) = @_;
    use integer;
    return $n + 0 if $bits == 64;
    my $mod  = 1 << $bits;
    my $v    = $n & ($mod - 1);
    $v -= $mod if $v >= ($mod >> 1);
    return $v;
}

my $TMPDIR;
sub tmpdir {
    $TMPDIR //= File::Temp::tempdir('hms-test-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    return $TMPDIR;
}
my $seq = 0;
sub tmppath { my $tag = shift // 'map'; return tmpdir() . "/$tag-" . $$ . '-' . ++$seq . '.shm' }

# Canonical booleans: true is 1, false is "" and numifies to 0 without a warning
# (Perl's PL_sv_yes / PL_sv_no).
sub is_true {
    my ($got, $name) = @_;
    my $tb = Test::More->builder;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $ok = defined $got && !ref $got && $got eq '1';
    $tb->ok($ok, $name) or $tb->diag('expected canonical true (1), got ' . (defined $got ? "'$got'" : 'undef'));
}
sub is_false {
    my ($got, $name) = @_;
    my $tb = Test::More->builder;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $warned = 0;
    my $num;
    if (defined $got) {
        local $SIG{__WARN__} = sub { $warned++ };
        use warnings;
        $num = $got + 0;
    }
    my $ok = defined $got && !ref $got && $got eq '' && !$warned && $num == 0;
    $tb->ok($ok, $name)
        or $tb->diag('expected canonical false (""/0 dualvar), got '
            . (defined $got ? "'$got'" . ($warned ? ' (not numeric without warning)' : '') : 'undef'));
}

# Collect warnings raised by a code block.
sub warnings_of {
    my $code = shift;
    my @w;
    local $SIG{__WARN__} = sub { push @w, $_[0] };
    $code->();
    return @w;
}

sub dies_like {
    my ($code, $re, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $ok = eval { $code->(); 1 };
    my $err = $@;
    if ($ok) {
        Test::More::fail($name);
        Test::More::diag("expected to die matching $re, but it lived");
        return;
    }
    Test::More::like($err, $re, $name);
}

sub lives {
    my ($code, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $ok = eval { $code->(); 1 };
    Test::More::ok($ok, $name) or Test::More::diag("died: $@");
    return $ok;
}

# Run $code in a forked child. The child's return value (a string) or its
# exception is sent back through a pipe; the child leaves with _exit so no END
# block, DESTROY of temp dirs or Test::More bookkeeping runs there.
# Returns a pid; collect with child_result($pid).
my %PIPES;
sub in_child {
    my $code = shift;
    pipe(my $r, my $w) or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        close $r;
        alarm($ENV{HMS_CHILD_TIMEOUT} // 120);    # a stuck child is killed, and reported as such
        my $out = eval { my $x = $code->(); defined $x ? "OK:$x" : 'OK:' };
        $out = 'DIED:' . $@ unless defined $out;
        syswrite $w, $out;
        close $w;
        POSIX::_exit(0);
    }
    close $w;
    $PIPES{$pid} = $r;
    return $pid;
}

# Waits for the child; returns ($result_string, $error) where $error describes
# a crash, a non-zero exit or an exception thrown by the child's code.
sub child_result {
    my $pid = shift;
    my $r = delete $PIPES{$pid};
    local $/;
    my $out = <$r> // '';
    close $r;
    waitpid($pid, 0);
    my $st = $?;
    return (undef, 'child killed by signal ' . ($st & 127)) if $st & 127;
    return (undef, 'child exited with ' . ($st >> 8)) if $st >> 8;
    return (undef, 'child produced no result') if $out eq '';
    return (undef, 'child died: ' . substr($out, 5)) if $out =~ /^DIED:/;
    return (substr($out, 3), undef);
}

sub wait_all {
    my @res;
    for my $pid (@_) {
        my ($out, $err) = child_result($pid);
        push @res, [ $out, $err ];
    }
    return @res;
}

# Forks a process that opens a map with $open->() and holds the write lock (of the
# shard of $key) until release_write_lock; returns once it holds it. The holder's
# pid is $h->{pid}; reap it with waitpid after the release.
sub hold_write_lock {
    my ($open, $key) = @_;
    pipe(my $held_r, my $held_w) or die "pipe: $!";
    pipe(my $go_r, my $go_w) or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        close $held_r;
        close $go_w;
        $open->()->_hold_write_lock($key, fileno($held_w), fileno($go_r));
        POSIX::_exit(0);
    }
    close $held_w;
    close $go_r;
    sysread($held_r, my $byte, 1) == 1 or die "the holder did not take the lock\n";
    return { pid => $pid, go => $go_w };
}

# Tells the holder to release the lock (it does so as soon as it runs).
sub release_write_lock {
    my $h = shift;
    syswrite $h->{go}, 'x';
    close $h->{go};
}

# The C implementation's sample files (read-only fixtures beside the repository).
sub fixture_dir {
    my $sub = shift // 'v10';
    require FindBin;
    for my $base ($ENV{HMS_SHARED_DIR}, "$FindBin::Bin/../../shared", "$FindBin::Bin/../../../shared") {
        next unless defined $base;
        my $d = "$base/fixtures/c-format/$sub";
        return $d if -d $d;
    }
    return undef;
}

1;
