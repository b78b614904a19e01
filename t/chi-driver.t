use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;

# CHI's driver conformance suite on CHI::Driver::HashMap::Shared (t/lib/CHI/t/Driver/
# HashMap/Shared.pm), run as CHI runs it on its own drivers. CHI and the suite's
# modules are optional for users; .ci/setup installs them, so CI always runs this.
BEGIN {
    # CHI::Test first: it installs Log::Any's test adapter before CHI loads (the
    # statistics test reads the log through it).
    for my $m (qw(Test::Class Test::Deep Test::Exception Test::Warn CHI::Test CHI::t::Driver)) {
        eval "require $m; 1" or plan skip_all => "CHI's driver suite needs $m (Debian: libchi-perl, libtest-class-perl, "
            . 'libtest-deep-perl, libtest-exception-perl, libtest-warn-perl)';
    }
}
use CHI::t::Driver::HashMap::Shared;
# The whole suite, including what CHI runs for authors only (several writers at once,
# the statistics log).
local $ENV{AUTHOR_TESTING} = 1;
CHI::t::Driver::HashMap::Shared->runtests;
