# Every message the distribution can croak, die or warn with has an entry in a
# DIAGNOSTICS section: the module's (lib/Data/HashMap/Shared.pm) for the XS glue,
# the Perl modules and the engine's errors, each program's own for bin/*. The
# messages are read from the sources, so a new croak without its entry fails here:
#
#   Shared.xs, xs/*.h          croak("...")
#   lib/**/*.pm                croak / Carp::croak / die / warn "..."
#   bin/*                      fail("...") / die / warn "..."
#   rust-core/**/src/**/*.rs   Error::arg/format/io/new(...), and the message
#                              helpers (bad, fmt_err, io_err, corrupt, set_error)
#
# A message is split at its variable parts (%s, {name}, $var); the literal pieces
# with words in them must appear, in order, in the heading (=item) of one entry,
# whose variable parts are written in capitals or I<>: "=item I<PATH>: file too
# small for header" covers format!("{p}: file too small for header").
#
#   HMS_DIAG_LIST=1 prove -b t/diagnostics.t    # lists every message and its entry
use strict;
use warnings;
use Test::More;
use File::Find ();

sub slurp { open my $fh, '<:raw', $_[0] or die "$_[0]: $!"; local $/; scalar <$fh> }

# Messages the engine has that cannot reach Perl, each with why: what the glue never
# passes, or operations it never calls with those arguments.
my %UNREACHABLE = (
    'NULL map handle'      => 'the glue never passes a NULL handle',
    'NULL {role}'          => 'the glue never passes a NULL key or value',
    'NULL {role} bytes'    => 'the glue never passes a NULL buffer with a length',
    'NULL arguments'       => 'the glue always passes its argument struct',
    'NULL argument array'  => 'the glue always passes its argument array',
    'NULL cursor'          => 'the glue never passes a NULL cursor',
    'too many pairs'       => 'a Perl list cannot hold 2**63 pairs',
    'unknown variant {}'   => 'the glue passes the id of its own class',
    'unknown variant {variant}' => 'the glue passes the id of its own class',
    'unknown backing {b}'  => 'the glue passes one of its three backings',
    'unknown list kind {what}' => 'the glue passes one of its list kinds',
    'a path is required'   => 'the glue passes undef as an anonymous map, never a file map without a path',
    'path is required'     => 'new_readonly croaks "Class->new_readonly: path is required" before the engine is called',
    'get_int needs an integer-key, integer-value variant' => 'the glue calls it only for II, I16 and I32 maps',
    'counters need an integer-value variant' => 'counter methods exist only in integer-value classes',
    'this variant has string keys'    => 'the glue converts keys to the variant\'s type',
    'this variant has integer keys'   => 'the glue converts keys to the variant\'s type',
    'this variant has string values'  => 'the glue converts values to the variant\'s type',
    'this variant has integer values' => 'the glue converts values to the variant\'s type',
    'the map is full'      => 'the counters croak "Class: increment failed" and the others return false instead',
    'bad variant $v'       => 'hashmap-shared: kinds() gets only variant names read from a checked header',
    'shard path contains a NUL byte' => 'the glue reads paths as C strings, which end at the first NUL',
    '{}: path contains a NUL byte' => 'the glue reads paths as C strings, which end at the first NUL',
    'no variant given'     => 'Rust API only: the glue always names its variant',
    'no write lock on a Redis map' => 'Rust tests only: with_write_lock is a testing aid the glue never calls',
    'the entry changed while the closure ran (a map in Redis): nothing was written' => 'Rust API only: update_with / alter (ErrorKind::Conflict)',
    'a shard set needs a path prefix' => 'Rust API only (typed Options::shards): the glue checks its shard arguments first',
);

# Messages that are only variable parts around the text of another message, each
# with where that text is documented.
my %COMPOSED = (
    '%s: %s'          => 'XS: "Class: " before an engine message',
    '%s'              => 'XS: an engine message as it is',
    '%s%s: %s'        => 'XS: "Class->freeze: ", "Class sync: " before an engine message',
    '{what}: {}'      => 'engine: "OPERATION: system error" (each OPERATION is an entry)',
    '{}: {e}'         => 'engine: "PATH: " before a reader-slot claim refusal (lock.rs; each is an entry)',
    '  ERROR    $file: $msg\n' => 'hashmap-shared-upgrade: the upgrade_file message after the file name',
    '$file: $!'        => 'hashmap-shared: "hashmap-shared: FILE: ERROR"',
    '$o->{output}: $!' => 'hashmap-shared: "hashmap-shared: FILE: ERROR" (dump -o)',
    '$o->{input}: $!'  => 'hashmap-shared: "hashmap-shared: FILE: ERROR" (load -i)',
    'Data::HashMap::Shared->remote_info: ' => 'remote_info: before a constructor\'s message (its entries)',
    '$file: '          => 'hashmap-shared: "hashmap-shared: FILE: ERROR" with a message of opening the map',
);

# --- the messages --------------------------------------------------------------------

my @messages;    # [source file, line, message text as written, [fragments]]

# The text of a call's arguments: from just after "(" to its matching ")", skipping
# string literals (and Perl's single-quoted ones with $perl).
sub call_args {
    my ($text, $pos, $perl) = @_;
    my $depth = 1;
    my $start = $pos;
    while ($pos < length $text) {
        my $c = substr($text, $pos, 1);
        if ($c eq '"' || ($perl && $c eq "'")) {
            $pos++;
            $pos += substr($text, $pos, 1) eq '\\' ? 2 : 1 while $pos < length $text && substr($text, $pos, 1) ne $c;
        }
        elsif ($c eq '(') { $depth++ }
        elsif ($c eq ')') { return substr($text, $start, $pos - $start) if --$depth == 0 }
        $pos++;
    }
    return substr($text, $start);
}

sub line_of { my ($text, $pos) = @_; 1 + (() = substr($text, 0, $pos) =~ /\n/g) }

# C: the format of croak("..." MACRO "...", args): string pieces joined, a macro
# (SVf, IVdf) after a "%" completes that conversion.
for my $file ('Shared.xs', glob('xs/*.h')) {
    my $text = slurp($file);
    $text =~ s{/\*.*?\*/}{ }gs;
    $text =~ s{//[^\n]*}{}g;
    while ($text =~ /\bcroak\s*\(/g) {
        my $args = call_args($text, pos $text);
        my ($fmt) = $args =~ /^\s*((?:"(?:[^"\\]|\\.)*"\s*(?:\w+\s*)?)+)/ or next;
        # a macro is the rest of a conversion: "%" SVf is a %s
        my $joined = join '', map { /^"/ ? substr($_, 1, -1) : 's' } $fmt =~ /("(?:[^"\\]|\\.)*"|\w+)/g;
        push @messages, [$file, line_of($text, pos $text), $joined,
            [split /%[-+ #0]*\d*(?:\.\d+)?(?:hh|h|ll|l|z|j)?[diouxXcsp%]/, $joined]];
    }
}

# Rust: the first string literal of each format!(...) in the arguments of the error
# constructors and message helpers, or the first literal when there is no format!.
my @rust;
File::Find::find(sub {
    $File::Find::prune = 1 if -d && /^(?:tests|benches|fuzz|interop|examples|target)$/;
    push @rust, $File::Find::name if -f && /\.rs\z/;
}, 'rust-core');
my $ERR = qr/\b(?:Error::(?:arg|format|io|new|os)|bad|fmt_err|io_err|corrupt|set_error|m\.push_str)\s*\(|\blet\s+mut\s+m\s*=\s*format!\(/;
for my $file (sort @rust) {
    my $text = slurp($file);
    $text =~ s/^\s*#\[cfg\(test\)\]\s*\n\s*mod\s.*//ms;    # the unit tests at the end
    $text =~ s{^\s*//[^\n]*}{}mg;
    while ($text =~ /$ERR/g) {
        my $after = pos $text;
        my $args = call_args($text, $after);
        my @lits = $args =~ /format!\(\s*("(?:[^"\\]|\\.)*")/gs;
        @lits = $args =~ /^\s*(?:[\w:]+,\s*)?("(?:[^"\\]|\\.)*")/ unless @lits;
        for my $lit (@lits) {
            (my $msg = substr($lit, 1, -1)) =~ s/\\\n\s*//g;    # "...\<newline>   ..." continues
            $msg =~ s/\\"/"/g;
            push @messages, [$file, line_of($text, $after), $msg, [split /\{[^{}]*\}/, $msg]];
        }
    }
}

# Perl: the string literals of croak / die / warn / fail, with their interpolations
# as variable parts.
my @perl;
File::Find::find(sub { push @perl, $File::Find::name if -f && /\.pm\z/ }, 'lib');
for my $file (sort(@perl), glob('bin/*')) {
    my $text = slurp($file);
    $text =~ s/^__END__\n.*//ms;
    $text =~ s/^\s*#[^\n]*//mg;             # comments (a "#" after code is followed by a space)
    $text =~ s/(?<=[;,{}()\s])\s+# [^\n]*//g;
    while ($text =~ /(?<![\$\w>:])(Carp::croak|croak|die|warn|fail)\b\s*(\(?)/g) {
        my $at = pos $text;
        # the call's arguments: to the ")" with parentheses, else to the end of the
        # statement or a statement modifier
        my ($expr) = $2 ? call_args($text, $at, 1)
            : substr($text, $at) =~ /^((?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|(?!\b(?:if|unless|or|and)\b)[^;"'])*)/s;
        my @lits = $expr =~ /("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')/g or next;
        my ($msg, @frag) = ('');
        for my $lit (@lits) {
            my $body = substr($lit, 1, -1);
            $msg .= $body;
            if ($lit =~ /^"/) {
                $body =~ s/\\([\\"\$\@])/$1/g;
                push @frag, split /\$(?:\{\\?[^}]*\}|\w+(?:->)?(?:\{[^}]*\}|\[[^\]]*\])*|[!@])|\@\{\[.*?\]\}|\@\w+/, $body;
            }
            else { push @frag, $body }
        }
        push @messages, [$file, line_of($text, $at), $msg, \@frag];
    }
}

# --- the entries ---------------------------------------------------------------------

# The =item headings of the DIAGNOSTICS section of $file, as plain text.
sub headings {
    my ($file) = @_;
    my ($section) = slurp($file) =~ /^=head1 DIAGNOSTICS\n(.*?)(?=^=head1 |\z)/ms or return;
    my @h;
    for my $item ($section =~ /^=item (.+?)\n\n/msg) {
        1 while $item =~ s/[IBCFS]<<+ (.*?) >>+/$1/gs || $item =~ s/[IBCFS]<([^<>]*)>/$1/gs;
        $item =~ s/E<gt>/>/g;
        $item =~ s/E<lt>/</g;
        $item =~ s/\s+/ /g;
        push @h, $item;
    }
    return @h;
}

my %headings = map { $_ => [headings($_)] } 'lib/Data/HashMap/Shared.pm', glob('bin/*');
for my $file (sort keys %headings) {
    ok scalar @{ $headings{$file} }, "$file has a DIAGNOSTICS section with entries";
}

sub covered_by {
    my ($frags, @heads) = @_;
    my @need = grep { /[A-Za-z]{2}/ } map { s/\\n//gr =~ s/\\t/ /gr =~ s/\s+/ /gr =~ s/^ | $//gr } @$frags;
    return undef unless @need;
    HEAD: for my $h (@heads) {
        my $pos = 0;
        for my $f (@need) {
            my $i = index($h, $f, $pos);
            next HEAD if $i < 0;
            $pos = $i + length $f;
        }
        return $h;
    }
    return '';
}

my (%seen, @missing);
for my $m (@messages) {
    my ($file, $line, $msg, $frags) = @$m;
    next if $seen{"$file\0$msg"}++;
    next if exists $UNREACHABLE{$msg};
    next if exists $COMPOSED{$msg} && defined $COMPOSED{$msg};
    my @heads = @{ $headings{'lib/Data/HashMap/Shared.pm'} };
    unshift @heads, @{ $headings{$file} || [] } if $file =~ m{^bin/};
    my $entry = covered_by($frags, @heads);
    if (!defined $entry) {
        push @missing, "$file:$line: \"$msg\" has no words of its own: list it in %COMPOSED with where its text is documented";
    }
    elsif ($entry eq '') {
        push @missing, "$file:$line: \"$msg\"";
    }
    elsif ($ENV{HMS_DIAG_LIST}) {
        diag "$file:$line: \"$msg\"\n    => $entry";
    }
}
cmp_ok scalar(@messages), '>', 100, 'the sources give their messages (' . scalar(@messages) . ')';
ok !@missing, 'every message has its entry in DIAGNOSTICS'
    or diag join("\n", 'without an entry:', @missing,
        "add an =item for each (the module's DIAGNOSTICS, or the program's for bin/*)");

# the lists above stay true: every message they name is still in the sources
my %in_sources = map { $_->[2] => 1 } @messages;
is_deeply [grep { !$in_sources{$_} } sort keys %UNREACHABLE, keys %COMPOSED], [],
    'every message listed as unreachable or composed still exists';

done_testing;
