#!/usr/bin/perl
# eg/memfd.pl -- hand a map to another program: a map in a memfd has no name in the
# file system; its descriptor is inherited by an exec'd program (after clearing
# close-on-exec), which opens the same map with new_from_fd.
#   perl -Mblib eg/memfd.pl
use strict;
use warnings;
use Fcntl qw(F_GETFD F_SETFD FD_CLOEXEC);
use Data::HashMap::Shared::SS;

my $map = Data::HashMap::Shared::SS->new_memfd('config', 100);
shm_ss_put $map, 'greeting', 'hello from the parent';

my $fd = $map->memfd;
open my $fh, '<&=', $fd or die "fdopen $fd: $!";
fcntl $fh, F_SETFD, fcntl($fh, F_GETFD, 0) & ~FD_CLOEXEC or die "fcntl: $!";

# The other program: here another perl, given the descriptor number.
my $child = <<'CHILD';
use Data::HashMap::Shared::SS;
my $m = Data::HashMap::Shared::SS->new_from_fd($ARGV[0]);
print "child read: ", $m->get('greeting'), "\n";
$m->put('reply', "hello from pid $$");
CHILD
system($^X, (map { "-I$_" } @INC), '-e', $child, $fd) == 0 or die "child failed\n";

my $reply = shm_ss_get $map, 'reply';
print "parent read: $reply\n";
die "no reply\n" unless defined $reply && $reply =~ /^hello from pid \d+$/;
