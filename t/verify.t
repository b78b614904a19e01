use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use Data::HashMap::Shared::SS;
use Data::HashMap::Shared::II;

# verify() walks the whole structure: nothing to report on a sound map (after puts,
# removes, grows and shrinks), and each planted inconsistency is named.
my $dir = tempdir(CLEANUP => 1);

sub poke32 {
    my ($path, $off, $v) = @_;
    open my $fh, '+<:raw', $path or die "$path: $!";
    sysseek $fh, $off, 0;
    syswrite $fh, pack 'V', $v;
    close $fh;
}

my $p = "$dir/ss.shm";
{
    my $m = Data::HashMap::Shared::SS->new($p, 5000);
    $m->put("key$_", 'v' x ($_ % 300)) for 1 .. 4000;
    $m->remove("key$_") for grep { $_ % 3 } 1 .. 4000;
    is_deeply [ $m->verify ], [], 'a sound SS map (inline and arena strings, after grows, removes and a shrink) verifies clean';
    is scalar($m->verify), 0, 'scalar context: the number of problems';
    my $i = Data::HashMap::Shared::II->new(undef, 1000);
    $i->put($_, $_) for 1 .. 900;
    is_deeply [ $i->verify ], [], 'a sound II map verifies clean';
}

poke32($p, 264, 12345);    # size
my @p = Data::HashMap::Shared::SS->new($p, 5000)->verify;
ok scalar(grep /^size is 12345, the table holds \d+ entries$/, @p), 'a wrong size is reported' or diag explain \@p;

poke32($p, 264, 0);
{
    my $m = Data::HashMap::Shared::SS->new($p, 5000);
    # put the size back: count the entries as iteration sees them
    my $n = () = $m->keys;
    poke32($p, 264, $n);
    is_deeply [ $m->verify ], [], 'restored size verifies clean again';
}

poke32($p, 288, 7);    # arena bytes in use (u64 at 288: low word)
@p = Data::HashMap::Shared::SS->new($p, 5000)->verify;
ok scalar(grep /^arena: 7 bytes counted in use, strings hold \d+$/, @p), 'wrong arena accounting is reported' or diag explain \@p;

done_testing;
