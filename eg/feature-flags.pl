#!/usr/bin/perl
# eg/feature-flags.pl [readers] -- feature flags published with freeze: a producer
# builds the flag map, freezes it and renames it into place; reader processes open it
# with new_readonly (no locks, no writes) and cannot change it. A new version is
# published by building, freezing and renaming another file over it.
#   perl -Mblib eg/feature-flags.pl 4
use strict;
use warnings;
use File::Temp ();
use Data::HashMap::Shared::SI;

my $readers = shift // 4;
my $dir     = File::Temp::tempdir(CLEANUP => 1);

# Builds a flag file from a hash and publishes it atomically under $dir/flags.
sub publish {
    my (%enabled) = @_;
    my $new   = "$dir/flags.new";
    my $flags = Data::HashMap::Shared::SI->new($new, 1000);
    shm_si_put $flags, $_, $enabled{$_} for keys %enabled;
    $flags->freeze;                     # sealed: every handle's writes croak from now on
    rename $new, "$dir/flags" or die "rename: $!";
}

publish('new-checkout' => 1, 'dark-mode' => 0, 'beta-search' => 1);

# Readers: each opens the published file read-only and reports what it sees.
my @pids;
for my $r (1 .. $readers) {
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        my $flags = Data::HashMap::Shared::SI->new_readonly("$dir/flags");
        my $ok = (shm_si_get $flags, 'new-checkout') == 1
              && (shm_si_get $flags, 'dark-mode') == 0
              && !defined(shm_si_get $flags, 'no-such-flag')
              && $flags->readonly;
        my $wrote = eval { shm_si_put $flags, 'dark-mode', 1; 1 };    # must croak
        exit($ok && !$wrote && $@ =~ /map is frozen/ ? 0 : 1);
    }
    push @pids, $pid;
}
my $good = 0;
for (@pids) { waitpid $_, 0; $good++ if $? == 0 }
print "$good of $readers readers saw version 1 and could not change it\n";

# Version 2: a handle opened before keeps the old file; reopening sees the new one.
my $old = Data::HashMap::Shared::SI->new_readonly("$dir/flags");
publish('new-checkout' => 1, 'dark-mode' => 1);
my $new = Data::HashMap::Shared::SI->new_readonly("$dir/flags");
printf "dark-mode: old handle %d, reopened %d; beta-search now %s\n",
    shm_si_get($old, 'dark-mode'), shm_si_get($new, 'dark-mode'),
    defined(shm_si_get $new, 'beta-search') ? 'on' : 'gone';

# new() refuses a frozen file instead of opening it for writing
my $refused = !eval { Data::HashMap::Shared::SI->new("$dir/flags", 1000); 1 };
print "new() on the frozen file: ", ($refused ? "refused" : "opened!"), "\n";

die "flags went wrong\n"
    unless $good == $readers && shm_si_get($old, 'dark-mode') == 0
        && shm_si_get($new, 'dark-mode') == 1 && !defined(shm_si_get $new, 'beta-search')
        && $refused;
