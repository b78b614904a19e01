use strict;
use warnings;
use Test::More;
use FindBin;
use lib "$FindBin::Bin/lib";
use Variants;
use Data::HashMap::Shared;

# Key / value length limit (api.md 5.1, 8): strings longer than 1073741823 bytes
# croak. One 1 GiB string (2**30 bytes, one over the limit) is built once and
# passed by alias (no copy), so this costs about 1 GiB of memory for a moment.
# Set HMS_SKIP_BIG=1 to skip on a small machine.

plan skip_all => 'HMS_SKIP_BIG set' if $ENV{HMS_SKIP_BIG};

my $big = 'x' x (2**30);
is(length $big, 1073741824, 'a string one byte over the limit');

my $ss = Data::HashMap::Shared::SS->new(undef, 100);
my $is = Data::HashMap::Shared::IS->new(undef, 100);
my $si = Data::HashMap::Shared::SI->new(undef, 100);
$ss->put('k', 'v');
$is->put(1, 'v');

my @cases = (
    [ 'SS put key',          sub { $ss->put($big, 'v') },            qr/key too long \(max 1GB\)/ ],
    [ 'SS put value',        sub { $ss->put('k', $big) },            qr/value too long \(max 1GB\)/ ],
    [ 'SS get key',          sub { $ss->get($big) },                 qr/key too long \(max 1GB\)/ ],
    [ 'SS exists key',       sub { $ss->exists($big) },              qr/key too long \(max 1GB\)/ ],
    [ 'SS add value',        sub { $ss->add('new', $big) },          qr/value too long \(max 1GB\)/ ],
    [ 'SS swap value',       sub { $ss->swap('k', $big) },           qr/value too long \(max 1GB\)/ ],
    [ 'SS get_or_set value', sub { $ss->get_or_set('new', $big) },   qr/value too long \(max 1GB\)/ ],
    [ 'SS cas expected',     sub { $ss->cas('k', $big, 'w') },       qr/expected value too long \(max 1GB\)/ ],
    [ 'SS cas desired',      sub { $ss->cas('k', 'v', $big) },       qr/desired value too long \(max 1GB\)/ ],
    [ 'SS cas_take expected', sub { $ss->cas_take('k', $big) },      qr/expected value too long \(max 1GB\)/ ],
    [ 'SS set_multi value',  sub { $ss->set_multi('a', 'b', 'k', $big) }, qr/value too long \(max 1GB\)/ ],
    [ 'IS put value',        sub { $is->put(1, $big) },              qr/value too long \(max 1GB\)/ ],
    [ 'IS update value',     sub { $is->update(1, $big) },           qr/value too long \(max 1GB\)/ ],
    [ 'SI put key',          sub { $si->put($big, 1) },              qr/key too long \(max 1GB\)/ ],
    [ 'SI incr key',         sub { $si->incr($big) },                qr/key too long \(max 1GB\)/ ],
);
for my $c (@cases) {
    my ($name, $code, $re) = @$c;
    dies_like($code, $re, "$name over 1GB croaks");
}
is($ss->get('k'), 'v', 'the map is unchanged');
is($ss->size, 1, 'nothing was stored (set_multi included)');
is($is->get(1), 'v', 'IS unchanged');
is($si->size, 0, 'SI unchanged');

done_testing;
