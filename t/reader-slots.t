use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use POSIX ();
use Data::HashMap::Shared::II;

# Every read-write handle owns one of a map's 1024 reader slots, whose byte lock proves
# it alive (rust-core/src/lock.rs): the 1025th live handle is refused at open with the
# reason, and the slots of a killed process are taken back by the next opens.
my $dir = tempdir(CLEANUP => 1);
my $p = "$dir/slots.shm";
Data::HashMap::Shared::II->new($p, 100)->put(1, 10);

# Two processes open 512 handles each (within the usual limit of 1024 descriptors).
my @kids;
for my $k (1 .. 2) {
    pipe my $r, my $w or die;
    my $pid = fork // die;
    if (!$pid) {
        close $r;
        my @h = eval { map { Data::HashMap::Shared::II->new($p, 100) } 1 .. 512 };
        syswrite $w, @h == 512 ? "ok\n" : "failed: $@\n";
        sleep 60;
        POSIX::_exit(0);
    }
    close $w;
    my $got = <$r>;
    is $got, "ok\n", "process $k opened 512 handles";
    push @kids, $pid;
}

my $e = do { local $@; eval { Data::HashMap::Shared::II->new($p, 100) }; $@ };
like $e, qr/^Data::HashMap::Shared::II: \Q$p\E: all 1024 reader slots are held by live handles \(at most 1024 read-write handles can have one map open at a time\)/,
    'the 1025th read-write handle is refused, with the reason';

kill 'KILL', $kids[0];
waitpid $kids[0], 0;
my $m = eval { Data::HashMap::Shared::II->new($p, 100) };
ok $m, 'once a process holding 512 of them is killed, opening works again' or diag $@;
is $m && $m->get(1), 10, '... and the handle reads';
ok $m && $m->put(2, 20), '... and writes';
my @more = eval { map { Data::HashMap::Shared::II->new($p, 100) } 1 .. 100 };
is scalar @more, 100, 'the dead process\'s other slots are taken back too';
kill 'KILL', $kids[1];
waitpid $kids[1], 0;
is_deeply [ $m->verify ], [], 'the map verifies clean';

done_testing;
