package Mono;
# `use Mono qw(time);` replaces time() in the caller with Mono::now, seconds (fractional)
# from CLOCK_MONOTONIC: for durations and deadlines, which a step of the wall clock (a
# virtual machine's clock being corrected while a test runs) must not stretch, shrink
# or turn negative. Wall-clock time stays what TTLs are measured in (OpTable.pm).
use strict;
use warnings;
use Time::HiRes qw(clock_gettime CLOCK_MONOTONIC);

sub now () { clock_gettime(CLOCK_MONOTONIC) }

sub import {
    my ($class, @names) = @_;
    my $caller = caller;
    for my $name (@names) {
        die "Mono exports only time\n" unless $name eq 'time';
        no strict 'refs';
        *{"${caller}::time"} = \&now;
    }
}

1;
