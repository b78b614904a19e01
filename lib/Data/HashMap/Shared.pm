package Data::HashMap::Shared;
use strict;
use warnings;

our $VERSION = '1.00';

require Carp;
require XSLoader;
XSLoader::load('Data::HashMap::Shared', $VERSION);

# Called by the import of each variant module: put that variant's keyword hint keys
# into %^H, so its keywords are enabled in the lexical scope being compiled.
sub _enable_keywords {
    my ($class) = @_;
    $^H{$_} = 1 for _hint_keys($class);
    return;
}

# Convert a file written by the C implementation into our format (api.md 6.10). A
# class method of this package only, as in the C implementation.
sub upgrade_file {
    my ($class, $path) = @_;
    Carp::croak('Data::HashMap::Shared->upgrade_file: path is required') unless defined $path;
    my $rc = eval { _upgrade_file($path) };
    if (!defined $rc) {
        (my $msg = $@) =~ s/ at \S+ line \d+\.?\n\z//;
        Carp::croak($msg);
    }
    return $rc;
}

# B::Deparse support for the keywords' custom ops (named "shm_OP", variant id in
# op_private): they deparse to the parenthesised keyword form, shm_ii_get($m, $k).
# What a map in Redis is, without creating or changing anything: its variant, whether
# it is frozen and how many shards it has (the CLI uses it; the words it parses are the
# constructors' own).
my @VARIANT_NAMES = qw(I16 I32 II I16S I32S IS SI16 SI32 SI SS);
sub remote_info {
    my ($class, $url) = @_;
    Carp::croak('Data::HashMap::Shared->remote_info: URL is required') unless defined $url;
    my $clean = sub { (my $m = shift) =~ s/ at \S+ line \d+\.?\n\z//; $m };
    my $v = 'II';
    my $ro = eval { "Data::HashMap::Shared::$v"->new_readonly($url) };
    if (!$ro && $@ =~ /variant mismatch \(file=(\d+), expected=\d+\)/) {
        $v = $VARIANT_NAMES[ $1 - 1 ] // Carp::croak("Data::HashMap::Shared->remote_info: $url: unknown variant $1");
        $ro = eval { "Data::HashMap::Shared::$v"->new_readonly($url) };
    }
    my %i = (variant => $v, frozen => $ro ? 1 : 0, shards => 1);
    if (!$ro) {
        Carp::croak('Data::HashMap::Shared->remote_info: ' . $clean->($@)) unless $@ =~ /is not frozen/;
        # Attaching never creates an existing map; a set names its shard count.
        my $m = eval { "Data::HashMap::Shared::$v"->new($url, 1) };
        if (!$m) {
            $@ =~ /shard set has (\d+) shards/ or Carp::croak('Data::HashMap::Shared->remote_info: ' . $clean->($@));
            $i{shards} = $1;
        }
    }
    return \%i;
}

{
    my @prefix = _variant_prefixes();
    for my $op (_keyword_ops()) {
        no strict 'refs';
        *{"B::Deparse::pp_shm_$op"} = sub {
            my ($self, $o, $cx) = @_;
            my @args;
            for (my $kid = $o->first; $$kid; $kid = $kid->sibling) {
                push @args, $self->deparse($kid, 6);
            }
            my $p = $prefix[ $o->private ] // 'UNKNOWN';
            return "shm_${p}_$op(" . join(', ', @args) . ')';
        };
    }
}

1;
__END__

=encoding utf8

=head1 NAME

Data::HashMap::Shared - Type-specialized shared-memory hash maps for multiprocess access

=head1 VERSION

1.00. It implements the user-visible API of Data::HashMap::Shared 0.17 (the
C/XS distribution) with a new engine written in Rust.

=head1 SYNOPSIS

    use Data::HashMap::Shared::II;

    # Create or open a shared map (file-backed mmap)
    my $map = Data::HashMap::Shared::II->new('/tmp/mymap.shm', 100000);

    # Keyword API (fastest): each keyword compiles to a single op
    shm_ii_put $map, 42, 100;
    my $val = shm_ii_get $map, 42;
    shm_ii_put($map, 43, 101);           # parentheses work too

    # Method API
    $map->put(42, 100);
    my $v = $map->get(42);

    # Atomic counters
    shm_ii_incr $map, 1;
    shm_ii_incr_by $map, 1, 10;

    # Anonymous map shared with forked children
    my $anon = Data::HashMap::Shared::II->new(undef, 1000);
    if (fork() == 0) {
        shm_ii_incr $anon, 1;            # visible to the parent
        exit;
    }
    wait;

    # Iteration
    while (my ($k, $v) = shm_ii_each $map) { ... }
    my %copy = %{ shm_ii_to_hash $map };
    my $cur = $map->cursor;                  # independent, nestable iterators
    while (my ($k, $v) = shm_ii_cursor_next $cur) { ... }

    # 8 shard files behind one handle: writers of different shards run in parallel
    my $big = Data::HashMap::Shared::II->new_sharded('/dev/shm/big', 8, 1_000_000);

    # Publish a read-only snapshot; readers need no write access and take no locks
    $map->freeze;
    my $ro = Data::HashMap::Shared::II->new_readonly('/tmp/mymap.shm');

    # An LRU cache of at most 10000 entries whose entries expire after 60 s
    use Data::HashMap::Shared::SS;
    my $cache = Data::HashMap::Shared::SS->new('/dev/shm/cache', 10000, 10000, 60);
    shm_ss_put $cache, $url, $body;             # evicts the least recently used if full
    my $pages = Data::HashMap::Shared::SS->new('/dev/shm/pages',
        { string_space => '64m', lru => 1 });   # or sized in bytes: 64 MiB of pages
    my $hit = shm_ss_get $cache, $url;          # undef once expired (or evicted)
    shm_ss_put_ttl $cache, 'session', $s, 3600; # a TTL of its own (0 = permanent)
    my $left = shm_ss_ttl_remaining $cache, 'session';
    my ($k, $v) = shm_ss_pop $cache;            # remove the least recently used

=head1 DESCRIPTION

Data::HashMap::Shared provides hash maps with fixed key and value types, stored in
memory-mapped files (C<mmap(MAP_SHARED)>), so that any number of processes can use
one map at once. Readers take no lock; writers take a cross-process lock in the
mapping; counters update values in place with atomic instructions.

The engine is a Rust library (included in the distribution, built with cargo);
this module is a thin XS layer over its C interface. Each keyword (C<shm_ii_get>
and friends) compiles to one custom Perl op that calls the engine directly, with no
sub call and no method lookup.

Linux only; needs a Perl with 64-bit integers on a little-endian machine.

=head2 Variants

Each variant is its own class with its own keywords. C<use> the variant modules
you need; loading any of them (or this base module) makes all ten classes and
their methods available, but keywords only for the variants you C<use>.

    Class                           key      value    keywords
    Data::HashMap::Shared::I16      int16    int16    shm_i16_*
    Data::HashMap::Shared::I32      int32    int32    shm_i32_*
    Data::HashMap::Shared::II       int64    int64    shm_ii_*
    Data::HashMap::Shared::I16S     int16    string   shm_i16s_*
    Data::HashMap::Shared::I32S     int32    string   shm_i32s_*
    Data::HashMap::Shared::IS       int64    string   shm_is_*
    Data::HashMap::Shared::SI16     string   int16    shm_si16_*
    Data::HashMap::Shared::SI32     string   int32    shm_si32_*
    Data::HashMap::Shared::SI       string   int64    shm_si_*
    Data::HashMap::Shared::SS       string   string   shm_ss_*

The counter operations (C<incr>, C<decr>, C<incr_by>, C<max>, C<min>) exist only
in the six variants with integer values. Calling one on a string-value class dies
with Perl's "Can't locate object method"; the keyword does not exist.

Integers are narrowed to the variant's width (two's complement, low bits kept):
on I16, key 70000 is key 4464, and counters wrap at the width.

=head1 KEYWORDS

=head2 Enabling

C<use Data::HashMap::Shared::II;> enables the C<shm_ii_*> keywords in the
lexical scope (block or file) of the C<use>. They are compile-time hints in
C<%^H>, one per keyword (C<"Data::HashMap::Shared::II/shm_ii_get"> etc.), so:

=over

=item * keywords are lexically scoped; a string C<eval> compiled outside the scope
does not see them;

=item * C<use Data::HashMap::Shared::II ();> loads the class but enables no
keyword; C<use Data::HashMap::Shared;> enables none either;

=item * C<import> ignores its arguments, and there is no C<unimport>;

=item * outside their scope, C<shm_ii_get $m, 1> is an indirect method call that
dies at run time with "Can't locate object method "shm_ii_get"".

=back

=head2 Syntax

Every keyword takes a fixed number of arguments (the map first), separated by
commas. Each argument is a term expression: anything down to assignment
precedence (arithmetic, the ternary operator, assignments, method calls), but not
a comma and not the low-precedence C<and>, C<or>, C<not>, and it is evaluated in
scalar context. So

    shm_ii_put $m, 1, 2 or die "full";    # or applies to the whole call
    is(shm_ii_get $m, 42, 100, 'name');    # is() gets (value, 100, 'name')

Parentheses straight after the keyword are also accepted, for every keyword:

    shm_ii_put($m, 1, 2);
    my $n = shm_ii_get($m, 1) + 5;         # the call ends at the ")"

The parenthesised form is recognised when the parentheses hold exactly as many
comma-separated items as the keyword takes. A single parenthesised expression
followed by a comma is the first argument of the bare form, as before:
C<shm_ii_get ($m), 1>.

=head2 Custom ops and context

A keyword compiles to one op of its own (shown by B::Concise as C<shm_get>,
C<shm_put>, ...; B::Deparse shows the parenthesised keyword form). Keywords
therefore always call the class's own implementation: subclass overrides of a
method are bypassed by the keyword, while objects of subclasses are accepted.

C<shm_*_keys>, C<shm_*_values>, C<shm_*_items> and C<shm_*_each> always compute
their whole list; in scalar context they yield its last element (or undef), like
the methods do. All other keywords run in the caller's context: in scalar
context C<shm_*_pop>, C<shm_*_shift> and C<shm_*_drain> yield the (last) value
and C<shm_*_flush_expired_partial> the C<done> flag, as the methods do.

=head2 Keyword list

With C<v> the variant prefix; the arity includes the map.

    shm_v_put $m, $k, $v          shm_v_get $m, $k
    shm_v_remove $m, $k           shm_v_exists $m, $k
    shm_v_add $m, $k, $v          shm_v_update $m, $k, $v
    shm_v_swap $m, $k, $v         shm_v_take $m, $k
    shm_v_get_or_set $m, $k, $d   shm_v_cas $m, $k, $expected, $desired
    shm_v_cas_take $m, $k, $expected
    shm_v_incr $m, $k             shm_v_decr $m, $k          (int values only)
    shm_v_incr_by $m, $k, $delta  shm_v_max $m, $k, $v       (int values only)
    shm_v_min $m, $k, $v                                     (int values only)
    shm_v_put_ttl $m, $k, $v, $ttl
    shm_v_add_ttl $m, $k, $v, $ttl
    shm_v_update_ttl $m, $k, $v, $ttl
    shm_v_ttl_remaining $m, $k    shm_v_touch $m, $k
    shm_v_persist $m, $k          shm_v_set_ttl $m, $k, $ttl
    shm_v_flush_expired $m        shm_v_flush_expired_partial $m, $limit
    shm_v_pop $m                  shm_v_shift $m
    shm_v_drain $m, $n
    shm_v_clear $m                shm_v_to_hash $m
    shm_v_keys $m                 shm_v_values $m
    shm_v_items $m                shm_v_each $m
    shm_v_iter_reset $m           shm_v_reserve $m, $n
    shm_v_size $m                 shm_v_max_entries $m
    shm_v_max_size $m             shm_v_ttl $m
    shm_v_capacity $m             shm_v_tombstones $m
    shm_v_mmap_size $m            shm_v_arena_used $m
    shm_v_arena_cap $m            shm_v_stat_evictions $m
    shm_v_stat_expired $m         shm_v_stat_recoveries $m
    shm_v_cursor $m               shm_v_cursor_next $c       (list context)
    shm_v_cursor_reset $c         shm_v_cursor_seek $c, $k

Each keyword has a method of the same name (the three C<shm_v_cursor_*> keywords
call the cursor methods C<next>, C<reset> and C<seek> of C<Class::Cursor>), and
every method can also be called as a plain function
(C<Data::HashMap::Shared::II::get($m, $k)>). The methods C<new>, C<new_sharded>,
C<new_memfd>, C<new_from_fd>, C<new_readonly>, C<set_multi>, C<get_multi>,
C<remove_multi>, C<get_with_ttl>, C<stats>, C<verify>, C<freeze>, C<frozen>,
C<readonly>, C<path>, C<memfd>, C<sync> and C<unlink> have no keyword.

=head1 CONSTRUCTORS

All constructors are class methods, bless the object into the invocant class (so
subclasses work) and croak on failure with a message
"Data::HashMap::Shared::II: DETAIL". The object is a reference to a blessed
scalar; the engine's handle is attached to that scalar where Perl code cannot
reach it (ext magic), not stored as its value. Assigning to C<$$m> changes
nothing, and a scalar no constructor made (a blessed integer, a copy of C<$$m>, a
C<Storable::dclone>, a map of another variant reblessed into the class) is
refused by every method and keyword with "not a valid Data::HashMap::Shared::II
object" instead of being taken for an address (see
L</ARGUMENTS AND RETURN VALUES>).

Paths must name regular files. A FIFO, a socket, a directory or a device is
refused at once, without waiting (opening a FIFO would wait for a writer
forever) and without touching it: "PATH: not a regular file (a FIFO)"; the same
for each shard file of C<new_sharded>, and for C<new_readonly> and
C<upgrade_file>. A path, prefix or memfd name containing a NUL byte croaks
C<< Data::HashMap::Shared::II->new: path contains a NUL byte: "x\0evil" >> (likewise
C<new_sharded>'s C<path_prefix>, C<new_memfd>'s C<name>, C<new_readonly>,
C<upgrade_file> and C<< Class->unlink >>): the system calls would see the path
cut at the NUL, so Perl's own C<open> refuses such paths too.

=head2 new

    my $m = Class->new($path, $max_entries);
    my $m = Class->new($path, $max_entries, $max_size, $ttl, $lru_skip,
                       $arena_cap, $file_mode);
    my $m = Class->new($path, { string_space => '64m', lru => 1, ttl => 60 });
    my $m = Class->new($path, $max_entries, { max_size => 5000 });

Creates the map file C<$path>, or attaches to it if it exists. C<$path> undef
makes an anonymous map: shared memory that has no name and is shared only with
processes forked after its creation. The sizing arguments come by position, or
by name in a hash reference as the last argument (see L</Named options>), which
gives those the positions before it did not. L</SIZING A MAP> says how much memory
and disk a map takes.

=over

=item C<$max_entries>

How many entries the map must hold. The table starts small and grows up to the
capacity this implies; C<max_entries> reports the number of entries the map
guarantees, which is at least this.

=item C<$max_size>

LRU bound: when an insert finds C<$max_size> entries, the least recently used
one is evicted first (see L</LRU>). 0 (default) disables LRU.

=item C<$ttl>

Default TTL in seconds: new entries expire that long after they are written
(see L</TTL>). 0 (default) disables TTL support entirely: the map has no expiry
storage and the per-key TTL operations croak.

=item C<$lru_skip>

The percentage (0-99) of LRU promotions to skip, to save write traffic on hot
keys (see L</LRU>); 0 (default) promotes on every write hit.

=item C<$arena_cap>

Bytes for string storage (string variants), the "string space": keys and values
of 8 bytes or more live there. 0 (default) sizes it from C<$max_entries>, 128
bytes per entry; see L</SIZING A MAP>. Values beyond 4294967295 are clamped to it
(the named option C<string_space> croaks instead).

=item C<$file_mode>

Permission bits of a newly created file, applied exactly (the umask does not
narrow them); default 0600.

=back

When attaching to an existing file, every argument but C<$path> is ignored: the
file's header wins. A file of another variant, of another format or a corrupt one
is refused with a message that says why ("variant mismatch (file=3, expected=10)",
"bad magic", "version mismatch", "corrupt header", "file too small"). Numeric
arguments are read as unsigned integers: values above 4294967295 (including
negative numbers) croak "max_entries N exceeds the maximum of 4294967295" (or
C<lru_max>, C<ttl_default>, C<lru_skip>).

=head2 Named options

C<new>, C<new_memfd> and C<new_sharded> accept, as their last argument, a hash
reference of named options. It gives the sizing arguments that no position before
it gave; an undef value means the default.

=over

=item C<max_entries>, C<max_size>, C<ttl>, C<lru_skip>, C<file_mode>

As the positional arguments of the same meaning (C<file_mode>: not for
C<new_memfd>).

=item C<string_space>

The positional C<$arena_cap>: bytes for keys and values, as a number or as a
number followed by C<k>, C<m> or C<g> (KiB, MiB, GiB): C<'64m'>. At most
4294967295, at least 4096 (smaller values are raised to it). Without
C<max_entries>, it implies one entry per 128 bytes (C<'64m'>: 524288 entries),
the inverse of the default string space; integer-only variants ignore it.

=item C<lru>

True: an LRU map bounded at C<max_entries> entries (C<max_size> set to it), so
that the string space is the bound that matters for large values. Give either
C<lru> or C<max_size>.

=back

For example a cache of 256 MiB of pages, evicting the least recently used when
full, whatever the number of pages:

    my $cache = Data::HashMap::Shared::SS->new('/dev/shm/pages',
        { string_space => '256m', lru => 1 });

These croak, naming the problem: an unknown option ("unknown option 'colour'
(known: max_entries, max_size, lru, ttl, lru_skip, string_space, file_mode)"), an
option also given by position ("max_entries given twice (by position and by
name)"), a value that is not a non-negative number ("option ttl: 'soon' is not a
non-negative integer", "option string_space: '4t' is not a size (bytes, or a
number followed by k, m or g)", "option max_size: -1 is negative"), a value out
of range ("string_space 4294967296 exceeds the maximum of 4294967295"; file_mode
at most 07777), no size at all ("max_entries is required (or string_space, ...)")
and both C<lru> and C<max_size>. A blessed hash reference is not taken for
options.

=head2 new_memfd

    my $m = Class->new_memfd($name, $max_entries, $max_size, $ttl, $lru_skip, $arena_cap);
    my $m = Class->new_memfd($name, { string_space => '16m', lru => 1 });

A map in a memfd (C<memfd_create>, name C<$name> or "hashmap" when undef). The
descriptor (C<< $m->memfd >>) can be inherited by C<fork>, passed over a Unix
socket or, after clearing close-on-exec, to an exec'd program, which opens the
same map with C<new_from_fd>. The memfd is sealed against growing and shrinking.

=head2 new_from_fd

    my $m = Class->new_from_fd($fd);

Opens the map in descriptor C<$fd> (a memfd from C<new_memfd>, or a map file
opened read-write). The descriptor is duplicated; the caller keeps its own. A
descriptor of anything but a regular file (memfds are regular files) croaks
"fd: not a regular file (a socket)" (or C<a FIFO>, C<a directory>, ...).

=head2 new_sharded

    my $m = Class->new_sharded($prefix, $shards, $max_entries);
    my $m = Class->new_sharded($prefix, $shards, $max_entries, $max_size, $ttl,
                               $lru_skip, $arena_cap, $file_mode);
    my $m = Class->new_sharded($prefix, $shards, { string_space => '1g', lru => 1 });

A set of C<$shards> independent maps in the files C<$prefix.0>, C<$prefix.1>, ...
behind one handle; every operation works on it as on a single map. Each key lives
in one shard, chosen by bits of its (seeded) hash that are independent of the
bits that choose its slot, so per-key operations lock only that shard and writes
to different shards run in parallel in different processes. C<$shards> 0 means 1;
other values are rounded up to a power of two, at most 4096 ("num_shards N
exceeds the maximum of 4096"). The sizing arguments apply to each shard (total
capacity is about C<$shards> times that). C<$prefix> undef croaks "new_sharded
requires a path_prefix"; a shard path longer than 4095 bytes croaks "shard path
too long". Each file is created or attached like with L</new>; a failure on any
shard croaks with that shard's message.

Every shard file records its index, the shard count and the set's hash seed, so
a set cannot be reopened with another count or with files that do not belong to
it: "PREFIX.0: shard set has 4 shards, opened with 8", "PREFIX.1: is shard 2 of
its set, expected shard 1", "PREFIX.1: belongs to another shard set (routing
differs from PREFIX.0)". Each shard file is also a map of its own: C<new> (or,
when frozen, C<new_readonly>) opens it alone.

Whole-map operations visit every shard: C<keys>, C<values>, C<items>,
C<to_hash>, C<each> and cursors go through shards 0, 1, ... in order; C<clear>,
C<flush_expired>, C<flush_expired_partial> (done when every shard is done),
C<reserve> (true if every shard could), C<sync>, C<freeze> and C<unlink> (true if
every file was removed) apply to each. C<pop>, C<shift> and C<drain> rotate: they
start at a per-handle shard pointer that moves on to the next shard after each
successful C<pop>/C<shift> and after each C<drain>. C<set_multi>, C<get_multi> and
C<remove_multi> work key by key (not atomic across shards). Statistics add up
(C<size> saturates at 4294967295), except C<ttl>, C<frozen> and C<readonly>, which
are shard 0's. C<path> returns C<$prefix>, C<memfd> -1.

=head2 new_readonly

    my $m = Class->new_readonly($path);

Opens the frozen map file C<$path> (see L</freeze>) read-only: the file is
opened C<O_RDONLY> and mapped read-only, and the handle never takes a lock and
never writes anything to the map (no reader slot, no LRU accessed bits, no
reclaiming of expired entries). So it works on a file of mode 0444, owned by
another user, or on a read-only file system, and any number of readers cost the
map nothing. Reads, C<each>, cursors, accessors and C<stats> work; mutators croak
"Class: map is frozen (read-only)"; C<sync> does nothing; C<frozen> and
C<readonly> are 1. A map that is not frozen is refused ("PATH is not frozen: call
->freeze on the producer before opening read-only"); an undef C<$path> croaks
"Class->new_readonly: path is required". One file only: open the shards of a
frozen set one by one.

=head1 OPERATIONS

In the descriptions, "true" and "false" are Perl's canonical booleans (1 and the
empty string). Values come back as new scalars (changing them never changes the
map). Every mutator croaks on engine errors, e.g. "key too long (max 1GB)".

=head2 Single keys

=over

=item put($key, $value) → bool

Insert or overwrite. False only when a new key does not fit (table at its maximum
capacity, or string space full) or an overwrite's value does not fit (the old
value is kept). An overwrite promotes the entry (LRU) and resets its expiry to
now + the default TTL unless it is permanent; an expired entry is revived. On an
LRU map a new key at C<$max_size> evicts one entry first, and a full string space
evicts until the strings fit (see L</LRU>, L</SIZING A MAP>).

=item get($key) → value | undef

Lock-free read. Expired entries read as undef; on LRU maps a hit marks the entry
"accessed" (no lock, no reordering).

=item exists($key) → bool

True for a live (unexpired) entry. Does not mark it accessed.

=item remove($key) → bool

True if the key was there (an expired entry too, which is not counted in
C<stat_expired>).

=item add($key, $value) → bool

Insert only if absent (an expired entry counts as absent).

=item update($key, $value) → bool

Overwrite only if present and live.

=item swap($key, $value) → old value | undef

Like put, returning the previous value (undef for a new or expired key).

=item take($key) → value | undef

Remove and return.

=item get_or_set($key, $default) → value | undef

Atomic lookup-or-insert: the stored value (promoted, expiry refreshed), or
C<$default> after inserting it; undef only if the insert was impossible.

=item cas($key, $expected, $desired) → bool

Compare-and-swap: stores C<$desired> if the current value equals C<$expected>.
String values compare bytes (the UTF-8 flag of C<$expected> is ignored).

=item cas_take($key, $expected) → value | undef

Removes the entry if its value equals C<$expected>, returning the value.

=back

Operations that meet an expired entry treat it as absent; writers reclaim it on
the way (counted in C<stat_expired>), see L</TTL>.

=head2 Counters (integer-value variants)

=over

=item incr($key), decr($key), incr_by($key, $delta) → new value

Atomic add; a missing key is created with value 0 first (C<incr> of a new key
returns 1). The result wraps at the variant's width. On maps with neither LRU
nor TTL this takes only a shared lock and adds atomically in place; on LRU/TTL
maps it takes the write lock, promotes the entry and refreshes its expiry (so a
counter on a TTL map has a sliding expiry, see L</TTL>).

=item max($key, $value), min($key, $value) → resulting value

Atomically store the larger/smaller of the current value and C<$value>; a missing
key is inserted as C<$value>.

=back

If a new key cannot be inserted, counters croak "Data::HashMap::Shared::II:
increment failed" (C<decrement failed>, C<incr_by failed>, C<max failed>,
C<min failed>).

=head2 Batches (methods only)

=over

=item set_multi($k1, $v1, $k2, $v2, ...) → count

Puts every pair under one write lock and returns how many were stored. An odd
number of arguments croaks "set_multi requires even number of arguments (key,
value pairs)" before anything is stored.

=item get_multi($k1, $k2, ...) → list of values

One value (or undef) per key, read as one consistent snapshot. Does not mark
entries accessed.

=item remove_multi($k1, $k2, ...) → count

=back

All arguments of a batch are converted before the engine is called, so an
argument whose magic dies (a tied variable, an overloaded object) stores or
removes nothing; see L</DIFFERENCES FROM THE C IMPLEMENTATION>.

=head2 The whole map

=over

=item clear

Removes every entry (and empties the LRU list); returns nothing. Statistics
counters are kept.

=item keys, values, items → list

A snapshot of the live entries, in the table's order; C<items> is flat (k1, v1, k2, v2, ...). Integer
keys come back as numbers, strings with their stored UTF-8 flag. In scalar
context these return the last element of the list (use C<size> for the count).

=item to_hash → hashref

A new Perl hash with the map's contents (integer keys as decimal strings,
UTF-8-flagged keys as UTF-8 hash keys).

=item each → ($key, $value) | ()

The handle's built-in iterator: the next live entry, or the empty list at the
end, after which it starts over. Removing entries while iterating is safe. If the table is
resized meanwhile, the iteration restarts from the beginning.

=item iter_reset

Restarts C<each> (and runs a table shrink deferred while it was active).

=back

=head2 Cursors

    my $c = $m->cursor;
    while (my ($k, $v) = $c->next) { ... }
    $c->seek($key) and my ($k, $v) = $c->next;   # that entry, then on from there
    $c->reset;

    my $c = shm_ii_cursor $m;                     # keywords
    while (my ($k, $v) = shm_ii_cursor_next $c) { ... }
    shm_ii_cursor_seek $c, $key;
    shm_ii_cursor_reset $c;

A cursor (class C<Class::Cursor>) is an iterator of its own: any number of them,
nested or interleaved, and none disturbs C<each>. It holds a reference to its
map, which stays open as long as the cursor exists.

=over

=item next → ($key, $value) | ()

The next live entry in the table's order (on sharded maps: shard 0's entries,
then shard 1's, ...). Expired entries are skipped. Once at the end it stays
there (returns the empty list even if entries are added) until C<reset> or
C<seek>. In scalar context: the value. Removing entries (through any handle)
while iterating is safe: no entry is skipped or returned twice. If the table is
resized meanwhile, the cursor restarts at the first slot of the shard it is on,
so entries may come again.

=item reset

Back before the first entry (of shard 0).

=item seek($key) → bool

If C<$key> is live, positions the cursor so that the next C<next> returns it, and
iteration goes on from there in table order (on a sharded map, the cursor moves
to that key's shard: earlier shards are skipped). False for a missing or expired
key, and the cursor stays where it was, except on a sharded map when the key
belongs to another shard than the cursor's: it then moves to the start of that
shard. Works after exhaustion.

=back

While a cursor is inside a table (started and not yet at its end), shrinking and
compacting that table through the cursor's handle wait until the cursor is
exhausted, reset, moved to another shard or destroyed (growth always happens). Other
handles may still resize the table, which restarts the cursor as described.

Errors: "Expected a Class::Cursor object", "Attempted to use a destroyed
Class::Cursor cursor" (after an explicit C<DESTROY>), "Attempted to use a
destroyed Class object" (its map was destroyed explicitly).

=head2 Accessors

C<size> (entries, including expired ones not reclaimed yet), C<max_entries>
(entries guaranteed), C<capacity> (current table slots), C<tombstones>,
C<mmap_size> (bytes mapped), C<arena_used>, C<arena_cap> (string arena bytes; 0
for integer-only variants), C<max_size> (LRU bound, 0 = no LRU), C<ttl> (default
TTL, 0 = no TTL), C<stat_evictions> (LRU evictions), C<stat_expired> (expired
entries reclaimed), C<stat_recoveries> return unsigned integers. The statistics
live in the map, so they count what every process did, and survive reopening.

=over

=item reserve($n) → bool

Grows the table so that C<$n> entries fit; false if C<$n> is beyond the map's
maximum. C<$n> is truncated to 32 bits.

=item stats → hashref

All diagnostics at once: C<size capacity max_entries tombstones mmap_size
arena_used arena_cap evictions expired recoveries max_size ttl frozen readonly>.

=item verify → list of strings

Walks the whole structure under the read lock and returns one message per
inconsistency found: entry and tombstone counts against the table, every key
findable by a lookup, string references inside the arena and not overlapping,
the arena's free lists and byte counts, the LRU list, an interrupted resize. An
empty list means the map is sound; in scalar context, the number of problems.
On a sharded map every shard is checked, and each message starts with
C<shard N: >.
Nothing is changed (see L</CRASH SAFETY> for what repairs a map). Also
C<hashmap-shared verify FILE>.

=item path → string | undef

The backing file, undef for anonymous, memfd and descriptor maps.

=item memfd → fd | -1

The map's own descriptor for C<new_memfd> / C<new_from_fd> maps.

=item frozen, readonly → 1 | 0

Whether the map is sealed (by any handle, in any process; shard 0 for sharded
maps) / this handle is read-only (opened with C<new_readonly>, or it froze the
map).

=back

=head2 Files and lifetime

=over

=item sync

C<msync> of the whole mapping (durability only: other processes see every write
at once). Croaks "Data::HashMap::Shared::II sync: ERROR" on failure; returns
nothing.

=item unlink → bool

=item Class->unlink($path) → bool

Removes the backing file (the mapping stays valid) / the file C<$path>. False on
failure, never dies for file system reasons; the class form croaks
"Usage: Class->unlink($path)" without a path and returns false (with a warning)
for undef.

=item freeze

Seals the map for good: takes the write lock, sets a seal in the map's header,
releases, and flushes the mapping (msync). From then on every mutator of every
handle, in every process, including handles opened before the freeze, croaks
"Class: map is frozen (read-only)" (put, add, update, swap, take, remove,
get_or_set, cas, cas_take, the counters, the TTL operations, flush_expired,
pop, shift, drain, clear, reserve, set_multi, remove_multi); reads, iteration,
cursors, accessors, C<sync>, C<unlink> and C<path> go on. The freezing handle
becomes read-only (it takes no locks any more); other handles keep C<readonly>
0. C<new> and C<new_from_fd> refuse a frozen map ("PATH is frozen (read-only);
open it with new_readonly"); open it with L</new_readonly>. Croaks
"Class->freeze: cannot freeze a read-only handle" on a read-only handle or an
already frozen map, "Class->freeze: msync: ERROR" if the flush fails. There is no
unfreeze. A frozen file is a native-endian memory image: ship it by copying, read
it on the same architecture. Sharded maps: every shard.

=item DESTROY

Unmaps the map and closes its descriptor; ignores anything that is not an object
of the class. Handles are not cloned into new threads (C<CLONE_SKIP> returns 1):
a thread sees a reference to undef.

=back

=head1 LRU

A map created with C<$max_size> E<gt> 0 holds at most that many entries, and no
more than its string space holds: it is a cache, whose writes make room by
evicting instead of failing. It keeps the entries in a recency list (most
recently inserted or written first) plus one "accessed" bit per entry, and
evicts with the clock (second chance) algorithm:

=over

=item * Inserting a new key into a map that holds C<$max_size> entries evicts
exactly one entry first: starting from the least recent end, an entry whose
accessed bit is set gets a second chance (bit cleared, moved to the most recent
end); the first entry without the bit is evicted (counted in
C<stat_evictions>, or in C<stat_expired> if it had expired anyway). Every
inserting operation does this: C<put>, C<put_ttl>, C<add>, C<add_ttl>, C<swap>,
C<get_or_set>, C<set_multi>, the counters. If C<$max_size> is larger than the
table can hold, inserts simply fail once the table is full.

=item * A write whose key or value (8 bytes or more) finds no room in the string
space evicts the same way, one entry at a time, until the string fits: inserts,
overwrites (C<put>, C<update>, C<swap>, C<cas>, ...) and counters with a new long
key alike. An overwrite never evicts the entry it writes. A string that could
not fit even if the map held nothing else is refused at once, evicting nothing;
and one call evicts at most 32 entries, or beyond that entries worth 8 times the
bytes it needs: see L</SIZING A MAP> for what that bound means.

=item * C<get> and C<get_with_ttl> set the accessed bit, without a lock and
without moving the entry, so LRU lookups stay as cheap as plain ones.
C<exists>, C<get_multi>, C<keys>/C<values>/C<items>/C<to_hash> and C<each> do
not set it.

=item * Write hits move the entry to the most recent end ("promotion"): C<put>,
C<put_ttl>, C<update>, C<update_ttl>, C<swap>, a successful C<cas>,
C<get_or_set>, the counters and C<touch>. New entries start there too.

=item * C<$lru_skip> (0-99) is the percentage of promotions that are skipped:
with 50, about half of the write hits leave the entry where it is, which saves
the writes to the list for hot keys. Every value counts (each promotion is
skipped with that probability, per handle); the least recent entry is always
promoted, and promoting the most recent one does nothing.

=item * C<pop> and C<shift> take the least / most recent entry, ignoring
accessed bits (see L</POP, SHIFT, DRAIN>).

=item * The order and the accessed bits are kept when the table grows, shrinks or
is compacted.

=back

=head1 TTL

A map created with C<$ttl> E<gt> 0 stores an expiry time per entry. New entries
expire C<$ttl> seconds after they are written, unless given their own TTL
(C<put_ttl>, C<add_ttl>, C<update_ttl>, C<set_ttl>; 0 means "permanent").

=over

=item * B<Wall-clock expiry.> Expiry times are absolute wall-clock times (whole
seconds of C<CLOCK_REALTIME_COARSE>), like Redis: they survive a reboot, a copy
of the file to another machine and any time the map spends closed, and an
entry put with a TTL of an hour has about an hour left after reopening the map
a minute later. Setting the system clock forward expires entries early (and
back, late). An entry put with TTL I<t> lives between I<t>-1 and I<t> seconds
(C<ttl_remaining> right after the put says I<t>).

=item * B<Lazy expiry.> Expired entries stay in the table, and in C<size>,
until something reclaims them. Readers (C<get>, C<exists>, C<get_with_ttl>,
C<get_multi>, C<ttl_remaining>, iteration) treat them as absent without removing
them. Writers that meet one reclaim it and count it in C<stat_expired>: C<add>,
C<update>, C<swap>, C<take>, C<cas>, C<cas_take>, C<get_or_set>, the counters,
C<touch>, C<persist>, C<set_ttl>, C<pop>/C<shift>/C<drain>, LRU eviction, and the
sweeps C<flush_expired> and C<flush_expired_partial>. C<put>, C<put_ttl> and
C<set_multi> overwrite an expired entry in place (reviving it, not counted);
C<remove> deletes it without counting it.

=item * B<What a write does to an existing entry's expiry:>

    operation                        entry with a TTL       permanent entry  new entry
    put, set_multi, swap, update,    now + default TTL      stays permanent  default TTL
      get_or_set (hit), counters,
      cas (success)
    put_ttl, update_ttl              from the argument      from the argument
    add, add_ttl (fail on existing)  unchanged              unchanged        default / argument
    touch                            now + default TTL      stays permanent  -
    persist                          permanent              permanent        -
    set_ttl                          from the argument      from the argument
    readers, cas/cas_take failure    unchanged              unchanged        -

The refresh always uses the map's default TTL, not the TTL the entry was given.
B<Consequence: a sliding window.> An entry that keeps being written keeps living:
a counter bumped with C<incr> on a TTL map expires C<$ttl> seconds after its
I<last> increment, not after its first. For a fixed window, put the window in
the key (C<"hits:$minute">), so that each window's counter expires on its own.

=back

TTL operations (the TTL and limit arguments are read as unsigned integers and
truncated to 32 bits: 2**32 is 0, 2**32+5 is 5; for C<put_ttl>, C<add_ttl> and
C<update_ttl> values of 4294967294 and more mean 4294967293):

=over

=item put_ttl($key, $value, $ttl) → bool

Like C<put>, but the entry's expiry comes from C<$ttl> (0 = permanent), new or
not. Croaks "operation requires a TTL-enabled map (pass ttl > 0 to constructor)"
on a map without TTL, as do C<add_ttl> and C<update_ttl>.

=item add_ttl($key, $value, $ttl) → bool

Like C<add>, with the new entry's TTL.

=item update_ttl($key, $value, $ttl) → bool

Like C<update>, also setting the TTL.

=item ttl_remaining($key) → seconds | 0 | undef

Seconds left (at least 1); 0 for a permanent entry; undef when the key is
missing or expired, or the map has no TTL. Changes nothing.

=item get_with_ttl($key) → ($value, $ttl) | ()

Value and remaining TTL in one consistent read (C<$ttl> is 0 for a permanent
entry and undef on a map without TTL); the empty list when missing or expired.
Marks the entry accessed like C<get>. Method only; in scalar context it returns
the TTL.

=item touch($key) → bool

Promotes the entry (LRU; C<$lru_skip> applies) and resets its expiry to now +
the default TTL unless it is permanent. False when missing or expired, and always
on a map with neither LRU nor TTL.

=item persist($key) → bool

Makes the entry permanent. False when missing or expired, or without TTL.

=item set_ttl($key, $ttl) → bool

Sets the expiry to now + C<$ttl> (0 = permanent) without changing the value or
the LRU position. False when missing or expired, or without TTL (no croak).

=item flush_expired → count

Removes every expired entry in one pass; returns how many. 0 without TTL.

=item flush_expired_partial($limit) → ($removed, $done)

Scans the next C<$limit> table slots (at least 1) from a cursor kept in the map
(shared by all processes), removing expired entries. C<$done> is 1 when the scan
reached the end of the table (the cursor then starts over, and the table may
shrink), else 0. In scalar context: C<$done>. Without TTL: (0, 1). Call it
periodically to bound the work per call:

    1 until (shm_ss_flush_expired_partial $cache, 1000);

=back

=head1 POP, SHIFT, DRAIN

=over

=item pop → ($key, $value) | ()

Removes and returns one entry: on LRU maps the least recently used (ignoring
accessed bits), otherwise the one in the lowest slot (the first of C<keys>).
Expired entries met on the way are reclaimed (counted) and skipped. The empty
list when the map is empty; in scalar context the value.

=item shift → ($key, $value) | ()

The other end: the most recently used entry, or the one in the highest slot.

=item drain($n) → ($k1, $v1, $k2, $v2, ...)

Removes up to C<$n> entries in C<pop> order and returns them flat. C<$n> is
clamped to C<size> (so -1 drains everything); 0 or an empty map give the empty
list. In scalar context: the last value.

=back

=head1 CRASH SAFETY

Maps are meant for pre-forking servers whose workers get killed at any moment.
The promise: when a process dies, however it dies, the others go on, and every
write whose call had returned is kept.

=over

=item * B<Dead lock holders.> Whether a lock holder is alive is the kernel's
answer, not a guess from a pid: every read-write handle holds an open file
description lock on a byte of the map file that stands for its reader slot, and
the kernel releases it when the process dies, however it dies and in whatever PID
namespace it runs. A process that waits for a lock spins briefly (no system
call), then sleeps on it with a timeout (5 ms, then 50 ms) and asks the kernel
whether the holder's lock is still held; a dead holder's lock is taken over,
about 5 ms after the waiter started waiting in the usual case and within 50 ms
plus scheduling delays at worst. A pid reused by another process changes
nothing. Lock words that no live handle can have written (damage) are taken over
the same way.

=item * B<Repair.> The writer that takes over from a dead writer first repairs
what it may have left half-done, then counts it in C<stat_recoveries>: a resize
(grow, shrink or compaction in place) is finished from a journal kept in the
header, which records every step; entry and tombstone counts are recounted; the
string arena's free lists and byte counts are rebuilt from the strings in use, so
no space leaks; the LRU list is checked and rebuilt (in slot order) if it was
being relinked. Every write makes its entry visible with one store after the data
it points to, so a killed writer loses at most its own unfinished write. Readers
that find a dead writer make the lock usable and leave the repair to the next
writer. C<verify> checks the result.

=item * B<PID namespaces.> Processes in different PID namespaces (containers)
share a map like any others: liveness does not depend on pids. A writer killed
inside the lock in a container that then goes away is taken over like any dead
writer.

=item * B<Interrupted create.> A file left all zero by a creator that was killed
is initialised by the next C<new>; a half-written header is refused with a
message.

=item * B<Hostile files.> Every offset read from a file is bounds-checked: a map
file that was scribbled over makes C<new> croak or makes operations return wrong
but safe answers, never a crash or an endless loop.

=item * B<Stopped writers.> A writer that is stopped inside the lock (C<SIGSTOP>,
a debugger, swapped out, or descheduled on a busy machine) is alive, so nobody
takes its lock over: other writers wait for it, and so do plain C<get> readers.
Readers take no lock and never wait for each other, but a read that finds a write
in progress retries, and after a bounded number of tries (so that a stream of
writes cannot starve it) waits for the write lock like a read lock does.
"Lock-free" means that readers take no lock, not that a writer can never delay
them. The stall ends when the writer continues (or dies: then its lock is taken
over as above).

=item * B<Truncated files.> A map file is memory-mapped. If another process
truncates it while it is mapped, the next access to the cut pages raises SIGBUS
in every program using the map: that is how C<mmap> works, and no library can
catch it for the program. Only those who may write the file can do it, so
protect map files with permissions: create them with a C<$file_mode> that lets
only the programs sharing the map write (the default 0600: the owner; 0660 and a
common group for several users), in a directory only they can write (a directory
of your own under F</dev/shm>, mode 0700 or 0770, rather than F</dev/shm>
itself), so that nobody else can truncate the file or put another file in its
place for the next C<new>. Maps made by C<new_memfd> are sealed against shrinking
and growing, so even a process that has their descriptor cannot cut them;
anonymous maps have no name anyone could open.

=item * B<When C<verify> reports problems.> A crash does not leave problems for
C<verify> once a writer has run: the writer that takes over from a dead one
repairs the map before its own write. Right after a writer was killed, while
only readers have used the map, C<verify> may report what the next writer
repairs (an interrupted resize, counts that disagree with the table): do one
write (any C<put>) and verify again. A problem that remains means the file was
damaged from outside (another program wrote into it, a storage or memory fault)
or a bug: the map goes on working without crashing, but lookups may miss
entries or find wrong ones. Stop the programs that use the map, save what can be
read (C<hashmap-shared dump -o saved.jsonl FILE>), move the damaged file aside
(keep it to report the problem), create the map anew from the dump
(C<hashmap-shared load -i saved.jsonl FILE>), and start the programs again.
If nothing outside the library can have touched the file, please report it
with the C<verify> output.

=back

The limits: the map file must be on a file system with open file description
locks (local file systems and tmpfs; C<new> croaks naming C<F_OFD_SETLK>
otherwise), and no other code may take C<fcntl> record locks on map files. A
forked child gets descriptions of its own (through F</proc/self/fd>); if that
fails (no F</proc>, or out of descriptors), the child's handle croaks when it
would lock, and waiters wait for the child as long as it lives if its parent
dies holding the lock. Closing a handle's descriptor behind its back (a daemon
closing every descriptor) does not make it look dead, but stops it from telling
dead holders from live ones. The distribution's F<doc/TESTING.md> (see L</FILES IN THE
DISTRIBUTION>) describes the kill torture (F<t/crash-torture.t>, 300 rounds in
F<xt/crash-torture.t>), the corruption fuzzers, and how to run the suite
under valgrind and the engine under AddressSanitizer.

=head1 FORK AND PREFORKING SERVERS

A handle opened before C<fork> works in the child. This holds for every kind of
map: file-backed (C<new>, C<new_sharded>, C<new_readonly>), memfd and
anonymous. The mapping is shared (C<MAP_SHARED>), so the parent and all its
children use the same map, not copies; the engine notices the fork (a
C<pthread_atfork> handler) and the child takes a reader slot of its own the
first time it takes the read lock (lookups take none). Locks are not inherited: the engine holds a lock only inside a
call, never while Perl code runs, and the child tells its copy of the parent's
lock state apart from its own.

So in a preforking server (Starman, Apache with mod_perl's prefork MPM,
Parallel::ForkManager, a plain C<fork> loop) either way works:

=over

=item * open the map in the parent before the workers are forked (at load
time, e.g. in the app's startup code or C<PerlPostConfigRequire>): every worker
inherits it, opening costs nothing per worker, and an anonymous or memfd map
can only be shared this way;

=item * or open it in each worker after the fork (lazily, on first use): each
worker then has its own descriptor and mapping of the same file.

=back

What a child must not do:

=over

=item * B<Expect its handle's iteration state to be shared.> The position of
C<each>, the cursors and a sharded handle's C<pop>/C<shift> rotation are
per process and copied at the fork: a child that calls C<each> on an inherited
handle continues from where the parent was, independently of it. To split work
between processes use C<pop>, C<shift> or C<drain> (each entry goes to one
process), or give each worker its own keys.

=item * B<Remove or freeze the map by accident.> C<unlink>, C<freeze> and
C<clear> act on the shared map, for every process: a worker that calls
C<< $map->unlink >> in its cleanup code removes the file for the whole server
(the open handles keep working, but the next C<new> creates a new, empty map).
Leave that to the parent, at shutdown. A child's exit is harmless, however it
exits (C<exit>, C<POSIX::_exit>, a signal): it closes the child's handles
only, and never touches the parent's reader slot or locks.

=item * B<Use the handle after C<exec>.> A program started with C<exec> has
no mapping and no handle; it opens the map by its path, or, for a memfd map,
through the descriptor: clear its close-on-exec flag before the C<exec> and
call C<new_from_fd> in the new program (see L</new_memfd>).

=item * B<Fork without the C library.> Children made by Perl's C<fork>
(C<fork(2)> through the C library) are handled. A child made by a raw
C<clone> system call (C<syscall(SYS_clone, ...)>) skips the C<pthread_atfork>
handlers, would share its parent's reader slot and identity, and must not use
inherited handles.

=back

Threads are another matter: handles are not cloned into new Perl threads
(C<CLONE_SKIP>), so each thread opens its own (see L</DESTROY>).

=head1 ARGUMENTS AND RETURN VALUES

Integer arguments are converted as Perl does: undef is 0 and "12abc" is 12 (with
the usual warnings), 1.9 is 1, values above the IV range wrap. String arguments
are the scalar's bytes plus its UTF-8 flag: undef is "" (with a warning), numbers
and references are stringified. All argument magic (ties, overloading, C<$1>)
runs before the engine is called, never while it holds a lock.

If an argument's magic destroys or replaces the map object during the call, the
call croaks "Data::HashMap::Shared::II object replaced or destroyed during the
call" instead of touching a released map. A wrong invocant croaks "Expected a
Data::HashMap::Shared::II object"; an object of the class that no constructor
made (a blessed integer or hash, a copy of the object's scalar, a clone, another
variant's map reblessed) croaks "not a valid Data::HashMap::Shared::II object";
one that was explicitly destroyed croaks "Attempted to use a destroyed
Data::HashMap::Shared::II object". Cursors say the same with their class
(C<Data::HashMap::Shared::II::Cursor>). The check costs about four machine
instructions per call (the handle is the first magic of the object's scalar).

Methods that return lists return the last element in scalar context (or undef),
as XS methods do: C<< my $x = $m->keys >> is a key, not a count.

=head1 STRINGS AND UTF-8

String keys are identified by their bytes only. The UTF-8 flag is stored with the
key and value and returned with them, but ASCII keys with and without the flag
are the same key, while "caf\xe9" (Latin-1) and "café" (UTF-8 bytes) are two
different keys: normalise (e.g. C<Encode::encode_utf8>) if your input mixes
encodings. Strings may contain any bytes, NUL included; each may be up to
1073741823 bytes. Strings of up to 7 bytes are stored inside the table slot;
longer ones in the string arena.

=head2 Storing Perl data structures

Values are strings or integers, never references: a hash or array reference
stored as a value would be stored as its address ("HASH(0x...)"), meaningless in
another process. Serialise the structure into an SS (or IS, SI...) map and
thaw it on the way out:

    use Storable qw(nfreeze thaw);
    $map->put($user_id, nfreeze({ name => 'Ann', roles => [qw(admin ops)] }));
    my $user = thaw($map->get($user_id));

C<nfreeze> (network order) keeps the bytes readable on another architecture;
L<JSON::PP> (core) suits maps that programs in other languages read too. The
Cookbook's "Storing Perl data structures" recipe shows both, with the
caveats (a serialised value is copied whole on every get and put: keep values
small, or split a large structure over several keys).

=head1 INSTALLATION

    cpanm Data::HashMap::Shared        # or: cpan Data::HashMap::Shared

It needs Linux, a Perl 5.22 or later with 64-bit integers on a little-endian
machine, L<XS::Parse::Keyword> 0.33 or later (installed by C<cpanm>; Debian 12:
C<apt-get install libxs-parse-keyword-perl>) and, to build the engine, Rust 1.77
or later with cargo: install it with rustup (L<https://rustup.rs>; Debian 12's
own rustc, 1.63, is too old). Where one of these is missing, C<perl
Makefile.PL> says so in a line that starts with "NA:" (or "OS unsupported"),
e.g.

    NA: Data::HashMap::Shared needs Rust >= 1.77 (cargo not found: install Rust ...)

and stops without writing a Makefile, so that installers and CPAN testers
report the distribution as not applicable to the machine rather than broken.
A cargo that is not the one on the C<PATH> is named in C<CARGO>:
C<CARGO=$HOME/.cargo/bin/cargo cpanm Data::HashMap::Shared>.

By hand, from the unpacked tarball:

    perl Makefile.PL
    make
    make test
    make install
    perl -Mblib eg/demo.pl        # before installing: workers counting into one map

The release tarball carries the Rust crates the engine needs, so the build makes
no network access (cargo runs with C<--offline>). The installed F<Shared.so>
carries no debug information (about 2 MB); C<HMS_DEBUG_INFO=1 perl
Makefile.PL> keeps it (about 8 MB), for profilers that attribute costs to
source lines (callgrind, C<perf annotate>). The engine's own Rust test suite
(C<cargo test --release --locked>) runs from a git checkout, which has the test
dependencies.

=head1 SIZING A MAP

A map is one file (or memfd, or anonymous mapping) whose size is fixed when it is
created, from C<max_entries>, the string space and the options. The file is
sparse: memory and disk are used only where entries have been written, so a map
sized for the worst case costs little until it fills (its size on disk, C<du>,
grows with use; C<ls> shows the full size from the start).

=head2 The table: max_entries

The table has a power-of-two number of slots (its capacity) and holds at most 7/8
of them. C<$max_entries> is rounded up so that the largest table holds at least
that many: the capacity is the smallest power of two of at least C<$max_entries>
* 8/7 (and at least 16), and C<max_entries> reports 7/8 of it. So
C<new($path, 10_000)> guarantees 14336 entries (16384 slots), 100_000 gives 114688
(131072 slots) and 1_000_000 gives 1835008 (2097152 slots). The table starts at
16 slots, doubles as entries arrive and shrinks when most are removed.

=head2 Bytes per entry

Every slot of the largest table is reserved in the file, whether the table has
grown to it or not:

    variant                      bytes per slot   + LRU   + TTL
    I16                          5                +9      +4
    I32                          9                +9      +4
    II                           17               +9      +4
    I16S I32S IS SI16 SI32 SI SS 17               +9      +4

(a slot's key and value, and one control byte). Per guaranteed entry that is
8/7 of it: 19.4 bytes for II or a string variant, plus 10.3 for LRU, 4.6 for TTL;
per I<requested> entry up to twice that, from the rounding to a power of two.
String variants add the string space.

=head2 The string space

Keys and values of 8 bytes and more (in string variants) live in the string
space (the C<arena_cap> accessor; shorter strings are kept in the slot). A string
of C<n> bytes takes a block of the next power of two (at least 16 bytes): 100
bytes take 128, 1000 take 1024, 3000 take 4096. Freed blocks are reused, and
freeing every string gives the whole space back in one piece. The space also has
a bitmap of 1 bit per 16 bytes (1/128 of it).

Its default is 128 bytes per I<requested> entry (C<new($path, 10_000)>: 1,280,000
bytes), at least 4096: room, per requested entry, for a key and a value of up to
64 bytes each. For larger
strings, size it in bytes: C<$arena_cap> by position or C<string_space> by name
(see L</Named options>), up to 4294967295 bytes. Think of it as
L<Cache::FastMmap>'s C<cache_size>: a cache of 1 kB pages needs about 1 kB per
page it should hold (C<< { string_space => '64m', lru => 1 } >> keeps about
64,000 pages of 1000 bytes).

=head2 File sizes

C<mmap_size> (the file's size), measured for maps created with C<new($path, N)>
and the default string space:

    N          II, plain / LRU / TTL     string variants, plain / LRU / TTL
    10,000     0.34 / 0.48 / 0.40 MiB    1.57 / 1.71 / 1.63 MiB
    100,000    2.20 / 3.32 / 2.70 MiB    14.50 / 15.62 / 15.00 MiB
    1,000,000  34.07 / 52.07 / 42.07 MiB 157.10 / 175.10 / 165.10 MiB

I16 takes 10.07 MiB and I32 18.07 MiB at 1,000,000 (plain). With LRU and TTL
both, add both increments. The string variants' figures are mostly string space
(122 MiB of the 157 at 1,000,000). What the files use on disk, measured: an empty
map takes 20-70 KiB whatever its size; an II map of 1,000,000 entries 34 MiB; an
SS map of 1,000,000 entries with keys and values of 9 to 20 bytes 80 MiB of its
157.

=head2 When a map is full

"Full" means one of two things: the table holds C<max_entries> entries (or an
LRU map holds C<$max_size>), or the string space has no free block large enough
for a string being written. What then happens:

=over

=item * B<Maps without LRU> refuse the write and change nothing: C<put>, C<add>,
C<update>, C<cas> return false, C<swap> and C<get_or_set> undef, C<set_multi>
counts only what it stored, and the counters croak ("increment failed") for a
new key. An overwrite whose new value does not fit keeps the old one. Reads,
removes and counters on existing keys work as always.

=item * B<LRU maps> make room: an insert at C<$max_size> entries evicts one
entry, and a write that finds no room for its strings evicts entries from the
least recently used end until they fit (see L</LRU>), counting each in
C<stat_evictions>. Such a write fails only when its strings could not fit even in
an empty map (the string is larger than the whole space, or, for an overwrite,
does not fit beside the entry's own key and old value): it is then refused at
once, evicting nothing. A table that holds C<max_entries> entries (possible only
when C<$max_size> is larger) refuses inserts as a plain map does.

=back

One write evicts at most 32 entries, or beyond that entries worth 8 times the
bytes it needs, so that its cost is proportional to what it writes, never to the
size of the map. In a cache whose values are of similar sizes, one or two
evictions make room. The bound matters only for a value far larger than the
entries around it, in a string space fragmented by them: a free block of 256 KiB
needs every small string inside those 256 KiB gone, and least recently used is
not the same as nearby. Such a write can fail (like a write to a full plain map)
although an empty map would hold it; the entries it evicted stay evicted, so a
retry finds more room. A write succeeds as soon as it has evicted a string at
least as large as its own, and an insert into a map of up to 32 entries succeeds
whenever an empty map would hold it. If your values vary that much, give the
large ones a map of their own.

=head1 LIMITS

=over

=item * Entries: the table has at most 2**31 slots and never fills past 7/8 of
them, so one map holds at most 1879048192 entries; C<max_entries> reports what a
given map guarantees. The size arguments of the constructors must be at most
4294967295.

=item * Strings: each key or value up to 1073741823 bytes; all of a map's long
strings (8 bytes and more) share its string space of at most 4294967295 bytes
(C<arena_cap>, see L</SIZING A MAP>).

=item * TTL: up to 4294967293 seconds per entry; expiry has a resolution of one
second. C<lru_skip>: 0-99.

=item * Handles: at most 1024 read-write handles (in any number of processes)
can have one map open at a time; opening one more croaks "all 1024 reader slots
are held by live handles". Read-only handles (C<new_readonly>) do not count.

=item * Descriptors: every read-write handle keeps one file descriptor (its own
open file description of the map, which holds its liveness lock); C<new_memfd>
and C<new_from_fd> handles keep two (the one C<memfd> returns, and their own).
A sharded set keeps one per shard: a set of 1024 shards needs more than the
usual limit of 1024 open files (C<ulimit -n>).

=item * Platform: Linux, 64-bit little-endian Perl. The files are not portable to
big-endian machines.

=item * Stopped writers: a writer stopped inside the lock delays the other
writers and the readers of that map (or shard) until it continues; see
L</CRASH SAFETY>.

=item * Mapped files: truncating a map file under running programs raises SIGBUS
in them; permissions are the protection, and C<new_memfd> maps are sealed against
it (see L</CRASH SAFETY>).

=item * Paths: regular files only (no FIFOs, sockets, directories or devices),
and no NUL bytes in paths or memfd names.

=back

=head1 EXAMPLES AND RECIPES

L<Data::HashMap::Shared::Cookbook> has recipes (shared counters, memoize across
workers, LRU cache, rate limiter, work queue, heartbeat map, leaderboard, memfd
hand-off, aggregator, feature flags with freeze, sharded counter, cursor walk,
inspection from the shell, a Rust program sharing a map with Perl); the
distribution's F<eg/> directory (see L</FILES IN THE DISTRIBUTION>) has one
runnable script per Perl recipe, and F<eg/demo.pl> a first demonstration:

    perl -Mblib eg/demo.pl 4 20000

=head1 COMMAND-LINE TOOL

L<hashmap-shared> inspects and edits map files from the shell, in the manner of
LMDB's mdb_stat, mdb_dump and mdb_load:

    hashmap-shared stat FILE          # variant, geometry, options, counters, lock
    hashmap-shared stat --json FILE   # the same and more, one JSON object (monitoring)
    hashmap-shared stat -p FILE       # also the processes attached to the map
    hashmap-shared dump FILE > F.jsonl
    hashmap-shared load --max-entries 1000000 NEWFILE < F.jsonl
    hashmap-shared get FILE KEY       # also put, remove, verify
    hashmap-shared dump FILE | hashmap-shared load redis://host:6379/NAME   # to Redis

Dumps are JSON lines that keep every byte and UTF-8 flag and the remaining TTLs.
A dump streams: its memory does not grow with the map and writers are never
held up for more than the read of one entry (it is not a snapshot of one
instant: see C<dump> in L<hashmap-shared>). Given the prefix of a shard set
(the files F<PREFIX.0>, F<PREFIX.1>, ...) every command works on the whole set
(C<stat> adds one line per shard, C<load --shards N> creates a set); frozen
maps are opened read-only. Every command also takes a Redis URL (L</MAPS IN
REDIS>), so C<dump> and C<load> move a map between machines and between files
and Redis. Exit status 0 means success, 1 "not found" (or
problems found by C<verify>), 2 an error.

=head1 RUST API

The engine is a Rust crate (F<rust-core/>, crate C<hashmap-shared>) with a
typed, documented Rust API on the same files, so a Rust service and Perl
workers can share one map. A Rust program chooses the key and value types at
compile time; each pair is one of the ten classes (C<< Map<Bytes, i64> >> is SI,
C<< Map<i64, Bytes> >> is IS, C<< Map<Bytes, Bytes> >> is SS, ...), and a file of
another class is refused with the same "variant mismatch" words as C<new>:

    use hashmap_shared::{Bytes, Map, Options};
    let mut hits: Map<Bytes, i64> =
        Map::open(&Options::new(100_000).file("/dev/shm/hits"))?;
    hits.incr("/index.html", 1)?;    // Perl: $hits->incr('/index.html')

Strings cross over with their UTF-8 flag: a Rust C<&str> arrives in Perl as a
character string, a byte slice as a byte string, and a string Perl stored comes
back to Rust as its bytes with the flag beside them. Counters, LRU and TTL
maps, shard sets (C<Options::sharded>), memfds and frozen maps work the same
from both languages.

In the distribution (see L</FILES IN THE DISTRIBUTION>), C<cargo doc --no-deps
-p hashmap-shared --open> shows the documentation (a
guide to variants, LRU, TTL, sharding and sharing with Perl, with examples
that run as tests); F<rust-core/examples/> has a counter shared with Perl, an
LRU cache and a sharded set. F<rust-core/interop/src/main.rs> is a complete
program; F<t/rust-interop.t> has it write maps that Perl reads, read and copy
maps that Perl writes (every UTF-8 flag kept), and count into one map together
with Perl. C<cargo bench -p hashmap-shared --bench api> compares the Rust API
with Rust's own concurrent maps and with Perl on the same map.

With the crate's C<redis> feature (which the Perl build turns on), the same
C<Options> open a map in Redis when the path is a Redis URL, as a typed
C<< Map<K, V> >> with every operation:
C<Options::new(100_000).file("redis://10.0.0.1:6379/hits")>, or
C<.sharded("redis://10.0.0.1:7000,10.0.0.2:7000/big", 16)> for a set spread
over a cluster.

=head1 BENCHMARKS

The benchmarks are in the distribution (see L</FILES IN THE DISTRIBUTION>).
F<bench/vs.pl> measures throughput at the Perl level against a Perl hash,
Hash::SharedMem, LMDB_File, BerkeleyDB and Cache::FastMmap (those that are
installed), in one run on one machine, so that the ratios are comparable:

    perl -Mblib bench/vs.pl            # every section, about 7 minutes
    perl -Mblib bench/vs.pl 25000 ii_lookup   # one section

Sections cover inserts, lookups (hits and misses), deletes and increments for
the II, IS, SI and SS families, several processes at once, an LRU cache with
Zipf-distributed keys, a TTL map, and 25 thousand to 10 million entries with
file size and memory per entry. F<bench/shards.pl> compares two writers on one
shard and on eight; F<bench/profile.pl> counts instructions per operation under
callgrind. The engine alone (no Perl), next to one dependent random memory read
and Rust's own HashMap: C<cargo bench -p hashmap-shared --bench engine>.
F<bench/RESULTS.md> has the latest figures, the machine and the commands.

=head1 MIGRATING FROM THE C IMPLEMENTATION

Files written by the C implementation (on-disk formats v9 and v10, its releases
0.09 to 0.17) are not opened by C<new>: it croaks with a message that names
C<upgrade_file>. Convert them once, with no process using them:

    Data::HashMap::Shared->upgrade_file($path);   # 1 converted, 0 already ours

    hashmap-shared-upgrade /var/cache/app/*.shm   # the same, from the shell

C<upgrade_file> is a class method of C<Data::HashMap::Shared> only. It reads the
old file (never writing to it), builds a map of the same variant in
C<$path.upgrade-tmp> in the same directory, fsyncs it and renames it over
C<$path>, keeping the file's mode and group. Every live entry is carried over
with its exact bytes and UTF-8 flags, together with C<max_size>, C<ttl>,
C<lru_skip>, C<arena_cap>, the LRU order and accessed marks and the statistics
counters. C<max_entries> becomes at least what the old map reported. The old
file stores expiries in seconds of the writing machine's monotonic clock; they
are read against this boot's clock (remaining = expiry - now), so convert files
on the machine and boot that wrote them: an entry whose time is up is dropped
and counted in C<stat_expired>.

A sharded set is converted one shard file at a time (pass every C<PREFIX.N>
file), then opened with C<new_sharded> and B<the same shard count as before>:

    Data::HashMap::Shared->upgrade_file("/data/cache.$_") for 0 .. 3;
    my $m = Data::HashMap::Shared::SS->new_sharded('/data/cache', 4, $n);

The C implementation chose a key's shard with an unseeded hash and its files do
not say which shard of how many they are, so a converted file is marked "routed
like the C implementation, shard count not known yet". The first C<new_sharded>
records the index and the count in each file (checking that C<PREFIX.0> to
C<PREFIX.N-1> exist and C<PREFIX.N> does not: "PREFIX.4: missing from a shard set
upgraded from the C implementation", "PREFIX.2 exists: this shard set upgraded
from the C implementation has more than 2 shards"); from then on the set behaves
like one made by C<new_sharded> (another count croaks with both numbers), and it
keeps routing keys as the C implementation did, so every entry is found in the
file it was in. The slots inside each shard use a seeded hash, as in every map.
Such a set cannot grow shard files it does not have.

Files written by this distribution's 0.17_01 development release (file format
version 1, which kept the lock words on five cache lines and named lock holders by
pid) are converted by the same C<upgrade_file> (and C<new> names it in its
message, "file was written by format version 1 (0.17_01)"): the map is rebuilt
with every entry, its remaining TTL, the LRU order, the statistics, the seal, the
hash seed and the shard fields, after repairing what a writer killed in it may
have left half done. It is refused while a process has the file open ("in use by
process N").

It croaks with C<< Data::HashMap::Shared->upgrade_file: PATH: ... >> and leaves
the file untouched for a missing, foreign, truncated or corrupt file, an
unknown format version ("unsupported source version 8 (migrates 9 -> 10
only)..."), or a file whose lock is held ("locked by a live writer (pid N)") or
that a process still has open. C<hashmap-shared-upgrade FILE...> prints one
line per file ("  upgraded FILE", "  current  FILE (unchanged)", or
"  ERROR    FILE: ..." on stderr), a summary line, and exits 1 if any file
failed.

=head1 MAPS IN REDIS

When one machine is not enough, the same classes, keywords and methods work on a
map that lives in L<Redis|https://redis.io> or a Redis Cluster: give a URL where a
path goes, with the constructors' usual arguments.

    my $hits  = Data::HashMap::Shared::SI->new('redis://127.0.0.1:6379/hits', 100_000);
    my $cache = Data::HashMap::Shared::SS->new('redis://user:secret@cache.lan:6379/pages',
                                               100_000, 10_000, 60);
    my $big   = Data::HashMap::Shared::II->new_sharded(
                    'redis://10.0.0.1:7000,10.0.0.2:7000,10.0.0.3:7000/big', 16, 1_000_000);
    my $local = Data::HashMap::Shared::SI->new('redis+unix:///run/redis.sock?name=hits', 1000);
    shm_si_incr $hits, '/index.html';          # the same custom ops

=over 4

=item URLs

C<redis://[user:pass@]host:port[,host:port...]/NAME[?options]>: NAME names the map
(its Redis keys carry it); several hosts are the seeds of a cluster (one host is
asked at connect whether it is one). C<redis+unix:///path/to/redis.sock?name=NAME>
for a local socket; C<rediss://> for TLS (the server's certificate is checked
against the system's CA store, or the CAs of the C<tls_ca=FILE> option). Options:
C<timeout> (seconds to wait for a reply, default 5), C<connect_timeout> (default
1), C<failover_timeout> (how long a cluster call keeps trying while a replica
takes over, default 15), C<prefix> (of every Redis key, default C<hms:>), C<db>
(standalone servers), C<cluster=0|1> (instead of asking). The user and password
(for C<AUTH>, ACL users included) never appear in C<path>, in error messages, in
C<stats> or in the command-line tool's output: C<path> returns the URL without
the password. A local file whose name starts like a URL is opened as
F<./redis://...>.

=item Constructors

C<new>, C<new_sharded> and C<new_readonly> take URLs with the arguments they take
for files (max_entries, max_size, ttl, lru_skip; arena_cap and file_mode are
ignored). The first C<new> creates the map (its options recorded in Redis); later
ones attach to it, ignore their sizing arguments and croak with the file words
when the variant or the shard shape differs ("variant mismatch (file=9,
expected=10)", "shard set has 4 shards, opened with 8"); a frozen map needs
C<new_readonly>. A sharded map's shards spread over a cluster's masters (each
shard lives in one hash slot, chosen so that an evenly split cluster gets its
share). C<new_memfd>, C<new_from_fd> and anonymous maps have no Redis form.

=item Behaviour

Every operation is one call of a Lua function (or one command) on the server
holding the key's shard: atomic there and one round trip, and it answers as a local map does
for the same calls: the same narrowing and wrap-around of integers (64-bit values
never pass through Lua's doubles), the same UTF-8 flags, TTL and LRU rules
(default TTL, put_ttl family, lazy expiry, second-chance eviction at max_size,
pop/shift/drain in LRU order), return values and error words. C<get_multi>,
C<set_multi> and C<remove_multi> send one call per shard, pipelined (one round
trip per server).

The functions are a Redis Functions library named C<hms_>I<TAG> (I<TAG> a hash
of its code, so that two versions of the module share a server without
replacing each other's), which the module loads (C<FUNCTION LOAD>) on each
master the first time it finds it missing there: after a restart without
persistence, a C<FUNCTION FLUSH>, on a node added to a cluster. So the servers
must be Redis 7.0 or later (or Valkey), and an ACL user needs C<FCALL> and
C<FUNCTION LOAD> (C<+@scripting>) besides the hash, sorted set and set commands
(C<+@hash +@sortedset +@set +@keyspace>).

=item Connections and failures

One connection per server per process, made at first use and shared by the
process's maps. After C<fork> a child makes its own (it never uses nor shuts its
parent's). A server that restarted is reconnected on the next call: a connection
unused for a millisecond or more is checked before a call is sent on it (a busier
one is not, which saves a system call per call; a server that closes a connection
within a millisecond of its last reply makes the next call fail as a broken
connection does, below). A reply that
does not come within C<timeout> croaks "redis: HOST:PORT: timed out after N s" and
the connection is dropped, so a late reply never answers a later call. A call
whose effect is not known (the connection broke after it was sent) is repeated
when that changes nothing (get, put, put_ttl, set_ttl, persist, max, min,
set_multi, reads), and otherwise croaks with "outcome unknown: the call may or
may not have been applied" (incr, remove, take, add, cas, pop, ...). On a cluster,
MOVED and ASK redirections are followed, and when a master dies calls wait and
retry (up to C<failover_timeout>) until a replica has taken over. Every other
server error croaks "redis: MESSAGE". Redis refusing a write at C<maxmemory> is
the soft failure of a full map: C<put> and friends return false, counters croak
"increment failed".

=back

C<< Data::HashMap::Shared->remote_info($url) >> says what a map in Redis is without
creating or changing anything: C<< { variant => 'SI', shards => 4, frozen => 0 } >>
(it croaks "no such map" when there is none); the command-line tool opens URLs
with it.

=head2 Differences on Redis

Everything not listed here behaves as on a file. Each difference, and what happens
instead:

=over 4

=item *

B<Iteration order> (C<keys>, C<values>, C<items>, C<each>, cursors) is Redis' hash
order, not slot order. C<keys>, C<values>, C<items> and C<to_hash> are a snapshot
of each shard only up to 10,000 entries per shard; larger shards are listed in
scan steps (every entry present throughout is listed, one changed meanwhile may
or may not be). C<each> and cursors walk in scan steps: an entry may come twice,
entries added or removed meanwhile may or may not come.

=item *

B<Cursor C<seek>> returns the sought entry next and then continues where the
cursor was (a scan cannot be positioned at a key), instead of going on in slot
order from the key. A cursor that was exhausted, or that sat in another shard,
starts its walk over at the beginning of the key's shard, so the sought entry
comes a second time there.

=item *

B<C<pop> and C<shift> on maps without LRU> remove an entry of Redis' choosing
(the first of a scan), not the lowest or highest slot. On LRU maps they take the
LRU tail and head as on files.

=item *

B<Eviction> examines at most 100,000 second-chance entries per insert (then the
tail goes regardless); a file map walks the whole list.

=item *

B<Expiry> counts whole seconds of the server's clock (one clock for every client),
not the client's.

=item *

B<C<flush_expired_partial($limit)>> removes up to C<$limit> expired entries per
shard (not C<$limit> slots scanned); C<done> is 1 once no shard has an expired
entry left.

=item *

B<Sizing accessors.> C<max_entries> is recorded and enforced (an insert beyond it
fails softly, as on files), but there is no table: C<capacity> reports the
largest table a file map of that size would have, C<tombstones>, C<mmap_size>,
C<arena_used> and C<arena_cap> are 0, C<reserve($n)> only says whether C<$n> <=
C<max_entries>. Strings are limited by Redis (512 MB per value by default), not by
an arena: a string map is never "arena full", only full at Redis' C<maxmemory>.

=item *

B<Durability.> C<sync> does nothing: durability is the server's persistence
(RDB/AOF) and replication. Replication is asynchronous: a write acknowledged by a
master that dies before its replica has it is lost in the failover. No dead
writer can leave a map half-written (every call is one function call), so
C<stat_recoveries> stays 0.

=item *

B<C<freeze>> is enforced by our functions: other Redis clients can still write the
keys (use ACLs to stop them).

=item *

B<C<unlink>> deletes the map for everyone at once; handles still open on it then
croak "map no longer exists (unlinked)" (an unlinked file stays usable through
existing mappings).

=item *

B<Every call can fail> with a network or server error ("redis: ..."), and a
non-repeatable call whose connection broke croaks "outcome unknown" (see above);
file maps never do either.

=item *

B<Speed.> Every call is a network round trip (tens of microseconds on one
machine, more across a network) instead of tens of nanoseconds.

=back

The keys of a map named NAME are C<hms:{NAME}:m> (its options and counters),
C<hms:{NAME}:d> (a hash: the entries; integers as decimal strings, string values
behind one flag byte C<0> or C<1>), and C<:x>, C<:l>, C<:a>, C<:u> for TTL, LRU and
UTF-8-key bookkeeping; shard I of a set uses the tag C<{NAME.I.J}>. Redis' own
eviction must not touch them: use C<maxmemory-policy noeviction> (or a
C<volatile-*> policy) on servers that hold maps.

=head1 DIFFERENCES FROM THE C IMPLEMENTATION

Programs written for the C/XS Data::HashMap::Shared keep working: the API, return
values, context rules and error messages are the same. These are the places where
this implementation deliberately differs.

=over

=item * B<A cache stays a cache.> On an LRU map, a full string space evicts
from the LRU tail like a full map does (see L</SIZING A MAP>); the C version
refuses the write and evicts nothing. Maps can be sized in bytes
(C<string_space>, named constructor options).

=item * B<Own file format.> Files have their own magic and format version and
record the variant, geometry, options and the engine version that created them.
Files written by the C implementation cannot be opened (a message says so); a map
cannot be shared by a C process and a Rust process at once.

=item * B<Seeded hashing.> Each map has a random 64-bit hash seed chosen at
creation, so whoever controls the keys cannot force long probe chains.

=item * B<Bounded probing.> The table never fills past its load limit, so lookups
of missing keys stay fast at full size. C<max_entries> reports the number of
entries the map guarantees, which is at least what was requested (the C version
reports 3/4 of the table's maximum capacity and lets the table fill completely).

=item * B<Memory comes back.> After C<clear>, mass removal or a shrink, unused
pages are returned to the system (hole punching / C<MADV_REMOVE>). The string
arena is a buddy allocator that cannot fragment into failure. C<arena_used>
reports the bytes currently allocated, not a high-water mark. Pages freed by
removals are released at most once per second while the map keeps being
refilled in between (a release costs about a microsecond per page, which a
workload that empties and refills a map over and over would otherwise pay on
every pass); a removal that goes on without refills releases right away.

=item * B<No SIGBUS from a full file system.> Creating a map where there is no
room for it croaks at C<new>. After that, the map reserves the file space of
every page before it first writes it (C<fallocate>: table pages before the
table grows, string arena pages as strings need them, released pages before
they are used again), so memory still grows with use, and a file system that
fills up later never kills a writer with SIGBUS: a write that needs space that
cannot be had fails like a write into a full map (C<put>, C<add>, C<set> and
the like return false; counters croak "CLASS: increment failed"), C<clear> and
C<reserve> croak naming the file and "No space left on device", and the map
stays consistent. Anonymous maps reserve through the memfd they are made of.
A file system that cannot reserve space (no C<fallocate>) is used as before.

=item * B<Per-process state on its own cache line> (reader slots), so readers do
not slow each other down.

=item * B<Keywords compile to custom ops> that call the engine directly: no
C<entersub>, no argument list, no method lookup.

=item * B<Keywords accept parentheses>: C<shm_ii_put($m, 1, 2)> works (the C
version only accepts them for one-argument keywords), and C<shm_ii_get($m, 1) + 5>
adds 5 to the value. The bare form means what it always meant.

=item * B<Keyword arguments are evaluated in scalar context>, since each one is
one value of a fixed-arity call (C<shm_ii_get $m, @a> looks up the number of
elements of C<@a>). The C version passed them to a sub call in list context, where
such an argument would have been flattened into the argument list.

=item * B<List keywords in scalar context> (C<keys>, C<values>, C<items>,
C<each>) yield the last element of their list, like in the C version, but do
not leave the other elements on Perl's stack.

=item * B<Expiry is wall-clock time.> Expiry times are stored as absolute
wall-clock seconds (C<CLOCK_REALTIME_COARSE>), not seconds of a monotonic clock
that restarts at boot: entries in a file that survives a reboot or is copied to
another machine expire when they should (the C version's timeline restarts and
such entries live longer than intended). The price: changing the system clock
moves expiries with it.

=item * B<C<lru_skip> is an exact percentage.> Every value 0-99 skips that
share of promotions (the C version rounds to a power-of-two interval, so 1-49
have no effect and 75 skips 3 of 4).

=item * B<LRU order and accessed bits survive resizes.> Growing, shrinking and
compacting the table keep the recency order and the accessed bits.

=item * B<Arguments are converted before anything is stored.> No Perl code runs
while the engine holds a lock; batch operations convert all their arguments
first, so an argument that dies in C<set_multi> or C<remove_multi> stores or
removes nothing (the C version keeps the pairs processed before the exception).

=item * B<Migration path.> C<< Data::HashMap::Shared->upgrade_file >> and the
F<hashmap-shared-upgrade> script convert files of the C implementation (formats
v9 and v10) into this format, keeping entries, UTF-8 flags, remaining TTLs, LRU
order and statistics (see L</MIGRATING FROM THE C IMPLEMENTATION>).

=item * B<Dead lock holders are found fast, cheaply and for sure>: a waiter
notices that the holder of a lock died within about 5 ms typically and 50 ms at
most (plus scheduling), without a system call per spin, and the kernel proves it
(a lock of the holder's open file description), so a reused pid never keeps a
dead holder alive (see L</CRASH SAFETY>).

=item * B<Crashes lose nothing committed.> A process killed at any instruction,
even in the middle of a resize, an arena allocation or an LRU relink, leaves a map
the next writer repairs completely: every write that had returned is kept, the
counts are consistent and no arena space leaks.

=item * B<PID namespaces.> Processes in different PID namespaces share a map
safely: a live process in another namespace is never taken for a dead one, and a
dead one is never taken for alive.

=item * B<One hot cache line.> The write lock, the seqlock and every counter a
write touches share one cache line of the header, so two processes writing one
map pass one line back and forth instead of five (file format version 2; files
of the 0.17_01 development release are converted by C<upgrade_file>).

=item * B<A Rust API too.> The engine is a Rust library with a safe, documented
API on the same files, so Rust programs and Perl workers share maps (see
L</RUST API>).

=item * B<Sharded sets remember their shape.> Every shard file records its index,
the shard count and the set's hash seed; reopening with another count, or with a
file of another set, croaks with both numbers instead of silently routing keys to
the wrong files. The shard of a key comes from seeded hash bits independent of
the bits that pick its slot (the C version uses the low bits of the same unseeded
hash for both). C<each> chains the shards from shard 0 with a pointer of its own
(the C version shares it with C<pop>/C<shift>, so mixing them perturbs C<each>).

=item * B<Handles cannot be forged.> The engine pointer lives in magic that only
the constructors attach, not in the object's scalar: overwriting C<$$m>, blessing
an integer, or using a copy of the scalar after the original was freed croaks
"not a valid Data::HashMap::Shared::II object" instead of using whatever number
the scalar holds as an address.

=item * B<Only regular files, only whole paths.> A FIFO, socket, directory or
device where a map file is expected is refused at once instead of being
opened (a FIFO would block the open forever), and a NUL byte in a path croaks
instead of silently cutting the path (C<new("x\0evil")> would create C<x>).

=item * B<Read-only handles really are read-only.> C<new_readonly> maps the file
read-only and never locks or writes, so it works on files the process cannot
write.

=back

=head1 DIAGNOSTICS

Errors are exceptions (C<croak>), with the caller's file and line appended by
Perl; this module emits no warnings of its own. In the messages below
I<Class> is the class the call was made on (C<Data::HashMap::Shared::SS>),
I<PATH> the map file (for a shard, C<PREFIX.N>; C<fd> for C<new_from_fd>), and
I<ERROR> the system's description of a failed system call ("No such file or
directory", "Permission denied", "No space left on device": C<$!>'s words).
Constructors put "I<Class>: " before the engine's messages; other methods croak
with the engine's message as it is, except "I<Class>: map is frozen
(read-only)". Code that matches messages can rely on the words that api.md
keeps stable: C<variant mismatch>, C<version mismatch>, C<bad magic>,
C<TTL-enabled>, C<even number>, C<increment failed>, C<frozen>, C<read-only>,
C<required>, C<num_shards>, C<max_entries>.

=head2 Opening and creating a map

=over

=item I<Class>: create(I<PATH>): I<ERROR>

C<new> could not create the file: its directory does not exist ("No such file or
directory"), is not writable ("Permission denied"), or is on a read-only file
system. Create the directory or choose another path (F</dev/shm> for maps that
need not survive a reboot).

=item I<Class>: I<PATH>: not a regular file (I<KIND>)

=item I<Class>: fd: not a regular file (I<KIND>)

The path (or the descriptor given to C<new_from_fd>) names a FIFO, a socket, a
directory or a device, not a map file. Maps live in regular files (or memfds);
the path is opened without blocking, so a FIFO is refused at once instead of
waiting for a writer. Give the path of a map file.

=item I<Class>->I<method>: path contains a NUL byte: I<PATH>

A path (or memfd name) with a NUL byte in it: the system would act on the part
before the NUL, a different file, so it is refused, as Perl's own C<open> does.

=item not a valid I<Class> object

The object is not a map (or cursor) made by this module's constructors: a
blessed integer, string or hash, a copy of a map's inner scalar, a C<dclone>, or
another class's map reblessed. Handles cannot be forged or copied; pass the
object a constructor returned (copies of the I<reference> are fine).

=item I<Class>: open(I<PATH>): I<ERROR>

The file exists but cannot be opened for reading and writing: its mode or owner
does not let this process write it ("Permission denied"), or it is a symbolic
link (refused, "Too many levels of symbolic links": give the real path). A map
file that must be shared with another user needs a C<$file_mode> that lets that
user write (C<0660> and a common group); a frozen map can be read by anyone with
C<new_readonly>.

=item I<Class>: open(I<PATH>): create/attach kept racing

For 100 rounds, the file was removed between this process's attempt to create
it and its attempt to open it. Something keeps deleting and re-creating the
file: find it (a cleanup job, another program's C<unlink>) and retry.

=item I<Class>: fchmod(I<PATH>): I<ERROR>

=item I<Class>: I<PATH>: fchmod: I<ERROR>

Setting the mode of a new file (C<$file_mode>) failed; rare, on file systems
that do not support permissions. The second form comes from re-initialising a
file that a killed creator left empty.

=item I<Class>: flock(I<PATH>): I<ERROR>

=item I<Class>: fstat(I<PATH>): I<ERROR>

=item I<Class>: read(I<PATH>): I<ERROR>

=item I<Class>: dup(I<PATH>): I<ERROR>

A system call on the open file failed: usually a file system that does not
support C<flock> (some network file systems), an I/O error, or for C<dup> "Too
many open files" (each open map keeps one descriptor: raise C<ulimit -n>). Put maps on a
local file system (tmpfs, ext4, xfs).

=item I<Class>: ftruncate(I<PATH>, I<N>): I<ERROR>

=item I<Class>: I<PATH>: not enough space for the map (need I<N> bytes, I<M> available)

The file system has no room for a new map of that size. The map is refused
when it is created, instead of killing a process with SIGBUS later. Free space
or enlarge the file system (for F</dev/shm>: C<mount -o remount,size=...>), or
ask for a smaller map (C<$max_entries>, C<$arena_cap>).

=item I<Class>: mmap(I<PATH>): I<ERROR>

=item I<Class>: mmap(anon): I<ERROR>

Mapping the map into memory failed, usually "Cannot allocate memory": the
process's address space is limited (C<ulimit -v>) or exhausted, or the system
limit of mappings per process (C<vm.max_map_count>) is reached by a process
that opens very many maps.

=item I<Class>: I<PATH>: refusing to initialize file not owned by us

An empty file owned by another user is in the way. A map is never built in a
file someone else created (they could keep write access to it). Remove the file,
or create the map as the user that owns it.

=item I<Class>: I<PATH>: incomplete map file left by an interrupted create; remove it and retry

A process was killed while it created this map, after writing part of the
header. An all-zero file is re-initialised by the next C<new>; this one is not
all zero, so it is refused rather than guessed at. Remove it; nothing in it was
ever visible to another process.

=item I<Class>: I<PATH>: file too small (I<N> bytes, need 4096)

=item I<Class>: I<PATH>: bad magic (not a HashMap::Shared file)

=item I<Class>: I<PATH>: version mismatch (file=I<X>, expected=2)

=item I<Class>: I<PATH>: corrupt header

The file is not a map of this implementation: another program's file, a
truncated copy, a file damaged by something writing into it, or a map of a
future format version. A file of the C implementation is named as such (see
the next entry). Check the path; a damaged map must be rebuilt (C<hashmap-shared
dump> can still read what it can of a map that opens).

=item I<Class>: I<PATH>: file was written by the C implementation (format vI<N>); convert it with Data::HashMap::Shared->upgrade_file(I<PATH>)

See L</MIGRATING FROM THE C IMPLEMENTATION>: convert the file once, while no
process uses it, with C<< Data::HashMap::Shared->upgrade_file >> or
L<hashmap-shared-upgrade>.

=item I<Class>: I<PATH>: file was written by format version 1 (0.17_01); convert it with Data::HashMap::Shared->upgrade_file(I<PATH>)

The file was written by the 0.17_01 development release, whose file format
(version 1) this release replaced. Convert it once, while no process uses it, as
a file of the C implementation (see L</MIGRATING FROM THE C IMPLEMENTATION>).

=item I<Class>: I<PATH>: variant mismatch (file=I<X>, expected=I<Y>)

The file holds a map of another variant (the numbers are variant ids: 1 I16, 2
I32, 3 II, 4 I16S, 5 I32S, 6 IS, 7 SI16, 8 SI32, 9 SI, 10 SS). Open it with its
own class; C<hashmap-shared stat FILE> names it.

=item I<Class>: max_entries I<N> exceeds the maximum of 4294967295

A size argument of the constructor (C<max_entries>, C<lru_max> for
C<$max_size>, C<ttl_default> for C<$ttl>, C<lru_skip>) is above 2**32-1, or
negative. Pass a smaller number.

=item I<Class>: I<PATH> is frozen (read-only); open it with new_readonly

=item I<Class>: this map is frozen (read-only); open it with new_readonly

The map was sealed with C<freeze>; C<new> and C<new_from_fd> open maps for
writing, which a frozen map refuses. Use C<new_readonly>.

=item I<Class>: I<PATH> is not frozen: call ->freeze on the producer before opening read-only

C<new_readonly> opens only frozen maps, whose contents can no longer change (a
read-only handle takes no locks, so it could not read a map being written
safely). Freeze the map where it is produced, or open it with C<new>.

=item I<Class>: I<PATH>: file too small for header

=item I<Class>: I<PATH>: corrupt header (a write in progress in a frozen map)

C<new_readonly> found a file that is not a complete frozen map: truncated, or
damaged after it was frozen. Copy or produce it again.

=item I<Class>->new_readonly: path is required

C<new_readonly> was called with C<undef>: there is no anonymous read-only map.

=item I<Class>: I<PATH>: all 1024 reader slots are held by live handles (at most 1024 read-write handles can have one map open at a time)

Every read-write handle owns one of the map's 1024 reader slots while it is
open (its lock on the slot proves it alive to the others, see L</CRASH
SAFETY>), and 1024 live handles have them. Close handles you do not need (each
process usually needs one per map), or open the map with C<new_readonly> where
it is frozen. Slots of processes that died are taken back by the next open.

=item I<Class>: I<PATH>: cannot lock a byte of the map file (fcntl F_OFD_SETLK: I<ERROR>); maps need a file system with open file description locks

The map file's file system refused an open file description lock (some network
and FUSE file systems do): a handle could not prove itself alive to the
others. Put maps on a local file system or tmpfs (F</dev/shm>).

=item internal error: cannot lock the map in this forked child: reopening its file failed (I<ERROR>)

A child process forked while its parent had the map open could not get a file
description of its own of the map (through F</proc/self/fd>: F</proc> not
mounted, or no descriptor left), so it cannot take the map's locks: every
operation that locks croaks this (lock-free reads still work). Mount F</proc>,
raise the descriptor limit, or open the map anew in the child. (A forked child
that finds all 1024 reader slots taken croaks "internal error: all 1024 reader
slots are held by live handles ..." the same way, at its first locking
operation.)

=item I<Class>: memfd: opening a description of our own through /proc/self/fd: I<ERROR>

=item I<Class>: fd: opening a description of our own through /proc/self/fd: I<ERROR>

A memfd or descriptor map is mapped and locked through a file description of
the handle's own, opened through F</proc/self/fd> (a descriptor the caller can
pass on must never carry the handle's locks). Mount F</proc>, or raise the
descriptor limit.

=item I<Class>: memfd_create: I<ERROR>

=item I<Class>: ftruncate(anon, I<N>): I<ERROR>

=item I<Class>: ftruncate: I<ERROR>

Creating an anonymous or memfd map failed: usually "Cannot allocate memory" or
"No space left on device" (the memory is accounted like F</dev/shm>), or the
process's limit of open files ("Too many open files").

=item I<Class>: fcntl: I<ERROR>

=item I<Class>: fstat: I<ERROR>

=item I<Class>: fd: read: I<ERROR>

=item I<Class>: mmap: I<ERROR>

C<new_from_fd> could not use the descriptor: it is not open ("Bad file
descriptor"), not open for reading and writing, or not a map. Pass a descriptor
of a memfd from C<new_memfd>, or of a map file opened read-write.

=item I<NAME> is not a Data::HashMap::Shared variant class

The internal function that enables a variant's keywords
(C<Data::HashMap::Shared::_enable_keywords>) was called with another class.
Enable keywords with C<use> of a variant class (C<use
Data::HashMap::Shared::SS;>).

=back

=head2 Shard sets

=over

=item I<Class>: new_sharded requires a path_prefix

C<new_sharded> was called with C<undef>: a shard set lives in files.

=item I<Class>: num_shards I<N> exceeds the maximum of 4096

=item I<Class>: num_shards I<N> exceeds the maximum of 4294967295

At most 4096 shards (each one a file and a mapping).

=item I<Class>: shard path too long

C<PREFIX.N> is longer than 4095 bytes. Use a shorter prefix.

=item I<Class>: I<PREFIX.0>: shard set has I<M> shards, opened with I<N>

=item I<Class>: I<PREFIX.N>: is shard I<I> of its set, expected shard I<N>

=item I<Class>: I<PREFIX.N>: belongs to another shard set (routing differs from I<PREFIX>.0)

The files do not form the set this call describes: another shard count than the
set was made with (open it with that count: C<hashmap-shared stat PREFIX> shows
it), or a file renamed or copied in from another set. Keys are routed by the
count and the set's seed, so a set is opened only as it was made; to reshard,
C<hashmap-shared dump> it and C<load --shards N> a new set.

=item I<Class>: I<PREFIX.N>: missing from a shard set upgraded from the C implementation (upgrade every I<PREFIX>.N file, then open the set with their number)

=item I<Class>: I<PREFIX.N>: missing from a shard set upgraded from the C implementation (upgrade every I<PREFIX>.N file, then open the set)

=item I<Class>: I<PREFIX.N> exists: this shard set upgraded from the C implementation has more than I<N> shards; open it with its own count

A set converted from the C implementation is opened for the first time: its
files do not record their count, so the count given must match the files
present. Convert every C<PREFIX.N> file, then open the set with their number.

=item I<Class>: I<PREFIX.N>: cannot record its shard index: I<ERROR>

Opening a converted set for the first time writes each file's index and count;
this file could not be written. Check its permissions and free space.

=back

=head2 Operations

=over

=item I<Class>: map is frozen (read-only)

A mutator (put, remove, the counters, clear, ...) was called on a frozen map
(sealed by C<freeze> in any process) or a read-only handle. Frozen is for
good: write to a new map.

=item operation requires a TTL-enabled map (pass ttl > 0 to constructor)

C<put_ttl>, C<add_ttl> or C<update_ttl> on a map created without a default
TTL, which has no expiry storage. Create the map with C<$ttl> E<gt> 0 (an entry
can still be made permanent with a TTL of 0).

=item I<Class>: increment failed

=item I<Class>: decrement failed

=item I<Class>: incr_by failed

=item I<Class>: max failed

=item I<Class>: min failed

=item I<Class>: I<OP> failed

A counter could not insert its key: the map is full (the table at its maximum,
see C<max_entries>) or, on string-key maps, the string arena is full. Other
inserting operations return false instead. Make the map larger, remove entries,
or use LRU (C<$max_size>) or TTL so that old entries make room.

=item key too long (max 1GB)

=item value too long (max 1GB)

A key or value (for C<cas>: "expected value", "desired value") is longer than
1073741823 bytes.

=item set_multi requires even number of arguments (key, value pairs)

C<set_multi> takes keys and values in pairs; nothing was stored.

=item I<Class> sync: I<ERROR>

=item I<Class>->freeze: msync: I<ERROR>

Flushing the map to its file failed (C<msync>): an I/O error of the device or
file system. The map in memory is intact; its file may not be.

=item I<Class>->freeze: cannot freeze a read-only handle

C<freeze> on a handle from C<new_readonly>, or on a map that is already frozen.

=item corrupt table state (capacity)

The map's table header is damaged (something wrote into the file). The call
did nothing. C<< $map->verify >> lists what is wrong; rebuild the map from a
dump or from its source.

=item internal error: I<WHAT>

A bug in the engine (a Rust panic), turned into this exception instead of
aborting the process. Please report it, with the message and what the program
was doing (see L</AUTHOR>), and check the map with C<verify>.

=item unknown error

The engine failed without a message: a bug; please report it.

=back

=head2 Objects and arguments

=over

=item I<Class>: option I<NAME>: I<N> is negative

=item I<Class>: option I<NAME>: I<N> is not a non-negative number

=item I<Class>: option I<NAME>: 'I<VALUE>' is not a size (bytes, or a number followed by k, m or g)

A named constructor option (L</Named options>) has a value that is not a count
(or, for C<string_space>, a size such as C<65536>, C<'64k'>, C<'64m'>,
C<'1g'>). Pass a non-negative integer or such a size string.

=item I<Class>: unknown option 'I<NAME>' (known: max_entries, max_size, lru, ttl, lru_skip, string_space, ...)

The option hash has a key the constructor does not know (a typo, or
C<file_mode> given to C<new_memfd>). The message lists the known ones.

=item I<Class>: I<NAME> given twice (by position and by name)

An argument was passed positionally and again in the option hash. Give it once.

=item I<Class>: max_entries is required (or string_space, which implies 1 entry per 128 bytes)

The option hash names neither C<max_entries> nor (for a variant with strings)
C<string_space>, from which C<max_entries> is derived.

=item I<Class>: options lru and max_size both given: lru => 1 means max_size => max_entries

C<< lru => 1 >> bounds the LRU at C<max_entries>; give either it or an explicit
C<max_size>, not both.

=item HashMap::Shared set failed: I<N> bytes do not fit in the string space of I<PATH> (I<M> bytes)

From L<CHI::Driver::HashMap::Shared>: a value (key and serialised data) larger
than the namespace's whole string space cannot be cached even after evicting
everything. Give the cache a larger C<string_space> (its C<cache_size>), or cache
smaller values.

=item Expected a I<Class> object

A method was called on something that is not a map of that class (a plain
string, an unblessed reference, a map of another variant), or as a plain function
with a wrong first argument.

=item Attempted to use a destroyed I<Class> object

The map object was destroyed explicitly (C<< $map->DESTROY >>) and then used.

=item I<Class> object replaced or destroyed during the call

An argument's magic (a tie, an overloaded operator, C<local> of the variable
holding the map) destroyed or replaced the map while its arguments were being
read. The call is abandoned before touching the map. Evaluate such arguments
into plain scalars first.

=item Expected a I<Class>::Cursor object

=item Attempted to use a destroyed I<Class>::Cursor cursor

=item I<Class>::Cursor cursor replaced or destroyed during the call

=item Failed to allocate cursor

The same for cursors (C<< $map->cursor >>); the last is an out-of-memory
condition.

=item Usage: I<Class>->unlink($path)

The class form of C<unlink> needs the path.

=item Usage: I<Class>::I<method>(I<arguments>)

Perl's message for a method called with the wrong number of arguments: see the
method's description.

=item Data::HashMap::Shared->upgrade_file: path is required

=item Data::HashMap::Shared->upgrade_file: I<PATH>: ...

See L</Converting files of the C implementation> below.

=back

=head2 Keywords (at compile time)

These are compile errors of a keyword (C<shm_ii_get> and friends) written with
the wrong arguments; the program does not start.

=over

=item Not enough arguments for I<KEYWORD> (it takes I<N>)

=item Too many arguments for I<KEYWORD> (it takes I<N>)

=item Expected ',' in I<KEYWORD> (it takes I<N> arguments)

=item Expected an expression as argument I<N> of I<KEYWORD>

=item Expected ')' after the arguments of I<KEYWORD>

Each keyword takes a fixed number of comma-separated arguments, the map first
(see L</Syntax>). A list in parentheses after the keyword must hold exactly
that many. The I<N> includes the map.

=item Can't locate object method "shm_ii_get" via package ...

Not this module's message, but the usual sign of a keyword used outside the
scope of its C<use Data::HashMap::Shared::II> (see L</Enabling>).

=back

=head2 Converting files of the C implementation

C<< Data::HashMap::Shared->upgrade_file >> croaks with
"Data::HashMap::Shared->upgrade_file: " before these, and leaves the file as it
was; F<hashmap-shared-upgrade> prints them after "ERROR I<FILE>: ".

=over

=item open I<PATH>: I<ERROR>

=item fstat I<PATH>: I<ERROR>

=item dup I<PATH>: I<ERROR>

=item read I<PATH>: I<ERROR>

=item write I<PATH>: I<ERROR>

=item I<PATH>: not a regular file

The file cannot be read (its name, its permissions), or is a directory, device
or pipe. Give the path of a map file.

=item I<PATH>: too small to be a HashMap file (I<N> bytes)

=item I<PATH>: bad magic (not a HashMap::Shared file)

=item I<PATH>: size mismatch (file=I<N>, header=I<M>)

=item I<PATH>: reader-slot region out of range (corrupt header)

=item I<PATH>: unexpected vI<N> layout; refusing to migrate

=item I<PATH>: corrupt header (table capacity)

=item I<PATH>: corrupt header (size and tombstones exceed the capacity)

=item I<PATH>: corrupt header (I<N> live entries, more than max_size I<M>)

=item I<PATH>: corrupt entry in slot I<I> (key: I<DETAIL>)

=item I<PATH>: corrupt entry in slot I<I> (value: I<DETAIL>)

=item I<PATH>: corrupt table (size I<N>, but I<M> live slots)

=item I<PATH>: corrupt table (duplicate keys: I<N> live slots, I<M> distinct keys)

The file is not a sound map of the C implementation: another file, truncated,
or damaged. Nothing is converted from a file that does not check out; if the C
implementation still opens it, dump its entries with that and load them into a
new map.

=item I<PATH>: unsupported source version I<N> (migrates 9 -> 10 only); only files of the C implementation's formats 9 and 10 (releases 0.09 to 0.17) can be converted

Files of C releases before 0.09 (formats up to 8) are not converted: open them
with the release that wrote them, and copy the entries over.

=item I<PATH>: locked by a live writer (pid I<N>); stop every process using the map and retry

=item I<PATH>: in use by process I<N> (reader slot I<I>); close every handle on the map and retry

A process still has the map open (it would keep writing to the old file).
Convert files while nothing uses them.

=item I<PATH>: damaged version 1 map: I<PROBLEMS>

A file of the 0.17_01 development release does not verify even after the repair
its last writer may have needed: it is not converted. If that release still
opens it, dump its entries with it and load them into a new map.

=item I<PATH>: holds a stale write lock from pid I<N>, which is gone. Open it once with the C implementation that wrote it (any write recovers the lock), then retry

The C implementation's writer died holding its lock, and what it was doing may
be half-done: only the C code knows how to finish it.

=item create I<PATH>.upgrade-tmp: I<ERROR>

=item create I<PATH>.upgrade-tmp: File exists (left by an interrupted upgrade, or another upgrade is running: remove it and retry)

The new map is built next to the old file, in the same directory, which must
be writable. A temporary file left by an upgrade that was killed is never
reused: remove it (when no upgrade runs).

=item read I<TMP>: I<ERROR>

=item fstat I<TMP>: I<ERROR>

=item fchmod I<TMP>: I<ERROR>

=item fsync I<TMP>: I<ERROR>

=item ftruncate I<TMP>: I<ERROR>

=item rename I<TMP> -> I<PATH>: I<ERROR>

Writing or installing the converted file failed (disk full, I/O error); the
old file is still in place and the temporary file removed.

=item I<PATH>: I<N> entries do not fit in a new map (arena capacity I<M>)

The old map's strings do not fit the largest string arena of a new map (4 GB).

=item I<PATH>: changed while it was being upgraded; nothing was replaced, retry

=item I<TMP>: replaced while the upgrade was running; retry

Another process wrote the old file, or replaced the temporary file, during the
conversion. Stop it and retry.

=back

=head2 Maps in Redis

In these messages I<URL> is the map's URL without its password (what C<path>
returns), I<HOST:PORT> the server concerned (or the path of its socket).

=over

=item not a Redis URL

=item unknown URL scheme I<SCHEME>://

=item bad host:port 'I<TEXT>' in a Redis URL

=item bad %-escape in the I<PART> of a Redis URL

=item the I<PART> of a Redis URL is not UTF-8

=item a Redis URL must be UTF-8

=item a Redis URL may not contain a NUL byte

=item a Redis URL needs a host (redis://host:port/NAME)

=item a Redis URL needs a map name (redis://host:port/NAME or ?name=NAME)

=item a Redis URL names its map once: in the path or as name=, not both

=item redis+unix:// needs an absolute socket path (redis+unix:///path/to/redis.sock?name=NAME)

=item a Redis map name or prefix may not contain { or } (they delimit Redis Cluster hash tags)

=item several hosts in a Redis URL are the seeds of a cluster (cluster=0 takes one host)

=item Redis Cluster has only db 0

=item unknown Redis URL option 'I<NAME>'

=item give the Redis password in the URL's user:pass@ part, not as an option

The URL cannot be read: see L</MAPS IN REDIS> for its form. A password with
C<@>, C<:> or C</> in it is written with %-escapes (C<%40>, C<%3A>, C<%2F>).

=item Redis URL option I<NAME>=I<VALUE>: not a number of seconds

=item Redis URL option I<NAME>=I<VALUE>: out of range

=item Redis URL option db=I<VALUE>: not a number

=item Redis URL option cluster=I<VALUE>: use 0 or 1

=item Redis URL option tls_ca needs rediss://

An option of the URL has a value it cannot take (timeouts are seconds,
fractions allowed, up to a day), or C<tls_ca> was given for a connection
without TLS.

=item rediss:// (TLS) needs the engine built with its redis-tls feature; use redis:// through a TLS tunnel (stunnel, spiped) or a unix socket

This build has Redis support without TLS (built with C<HMS_NO_TLS=1>).
Rebuild without it, or reach the server through a tunnel.

=item I<Class>: I<URL>: no such map

=item Data::HashMap::Shared->remote_info: URL is required

=item Data::HashMap::Shared->remote_info: I<URL>: unknown variant I<N>

C<new_readonly> or C<remote_info> found no map of that name on the server
(C<new> would have created it), or C<remote_info> was called without a URL,
or found a map of a variant this version does not know (written by a newer
one).

=item I<URL>.I<N>: shard missing from the set

=item I<URL>: map no longer exists (unlinked)

The map's keys are gone from Redis: another handle called C<unlink> (or the
keys were deleted or evicted: a server whose C<maxmemory-policy> is
C<allkeys-*> may evict a whole map). Create it again with C<new>.

=item redis: I<HOST:PORT>: I<WHAT>

The connection to a server failed or the server answered with an error:
I<WHAT> is "Connection refused", "timed out after I<T> s", "connection closed by
the server", "connection set-up refused: I<ERROR>" (a wrong password or user),
"TLS: I<ERROR>" (the certificate does not match), or the server's own error
(C<redis: BUSY ...>, C<redis: NOPERM ...>). The call was not applied when the
message does not say "outcome unknown". The next call connects again.

=item I<MESSAGE>; outcome unknown: the call may or may not have been applied

=item redis: connection lost during a batch (I<URL>); outcome unknown: the call may or may not have been applied

The connection broke after the call was sent and before its answer came: the
server may have applied it. Calls that change nothing when repeated (C<get>,
C<put>, C<set_ttl>, C<set_multi>, ...) are repeated and never show this; the
others (C<incr>, C<add>, C<remove>, C<take>, C<pop>, ...) croak with it. Check
the entry before retrying (a counter may have counted).

=item redis: no cluster node serves slot I<SLOT> (I<URL>)

On a cluster no master has served the slot of the map's shard for
C<failover_timeout> seconds (the master died and no replica took over, or the
slot is not assigned).

=item redis: unexpected reply to I<WHAT>

=item redis: FUNCTION LOAD: I<ERROR>

The server answered something the module did not expect or refused its
function library: a server older than 7.0 (no Redis Functions), an ACL user
without C<FUNCTION LOAD> (C<+@scripting>), or a proxy that does not pass
functions through.

=back

=head1 FILES IN THE DISTRIBUTION

Some files named in this documentation come with the distribution but are not
installed: the example scripts (F<eg/>, one per Cookbook recipe), the
benchmarks and their latest results (F<bench/>, F<bench/RESULTS.md>), the
design and testing notes (F<doc/DESIGN.md>, F<doc/TESTING.md>), the test
suites (F<t/>, F<xt/>) and the engine's Rust sources (F<rust-core/>). They are
in the release tarball (C<cpanm --look Data::HashMap::Shared> downloads and
unpacks it and opens a shell there; L<https://metacpan.org/dist/Data-HashMap-Shared/source>
shows it on the web) and in the repository,
L<https://github.com/vividsnow/perl5-data-hashmap-shared>.

=head1 SEE ALSO

The variant classes L<Data::HashMap::Shared::II> and siblings;
L<Data::HashMap::Shared::Cookbook>; the command-line tools L<hashmap-shared> and
L<hashmap-shared-upgrade>; L<XS::Parse::Keyword>.

=head2 Alternatives, and when each is the better choice

This module is a typed hash map in shared memory for the processes of one
machine: integer or string keys and values, counters and compare-and-swap,
LRU and TTL, tens of nanoseconds per operation with no system call, and a map
that survives any process being killed. Other tools fit other needs:

=over

=item L<Cache::FastMmap>

A cache of Perl data in a shared mmap'd file, sized in bytes: values are
serialised for you (any data structure, with L<Storable> by default), the
least recently used entries are evicted when a page of the file is full, and
callbacks can read through to and write back into a slower store
(C<read_cb>/C<write_cb>). Better when the values are structures rather than
strings or numbers, when the cache should be bounded by bytes rather than
entries, or when you want its read-through API; its locks are per page
(C<fcntl> locks, a system call each), and it has no counters or
compare-and-swap.

=item L<Hash::SharedMem>

A shared hash of string keys and values in a directory of files whose readers
and writers never lock: every write makes a new version of the changed part of
a persistent tree, and any process can take a consistent snapshot of the whole
hash (C<shash_snapshot>) and read it at leisure. Better when readers need
consistent views of many keys at once, or when the data has no size bound known
in advance (it grows, with no maximum to choose); no LRU, TTL or counters.

=item L<LMDB_File>

The Perl binding of LMDB, a transactional key-value database in a memory-mapped
file: ACID transactions over many keys, keys kept sorted (range scans and
ordered iteration), several named databases per file, data larger than memory,
and durability on disk (C<fsync> at commit). Better when the data must survive
a power failure or a crash of the machine, when several keys must change
together or not at all, or when you need ordered keys; one writer at a time,
and a transaction per operation costs more than a map update.

=item L<Redis> (or L<Redis::Fast>)

A server: its data is shared by processes on many machines, with lists, sets,
sorted sets, streams, pub/sub, replication and persistence. Better as soon as
the processes that share the data are not on one machine, or when you need its
data types; every operation is a network round trip (tens of microseconds
even on localhost, against well under a microsecond here).

=item L<CHI>

A caching interface with many drivers (memory, files, FastMmap, Memcached,
Redis, ...), namespaces, expiry, serialisation and size limits, and layered
caches (a small fast L1 before a larger L2). Better when code should cache
through one API whatever the store is, or switch stores without changing code;
it adds a method call and serialisation to each access.

=back

=head1 AUTHOR

vividsnow (API and the original C implementation); this implementation by the
Data::HashMap::Shared Rust port developers.

Bugs, questions and patches: L<https://github.com/vividsnow/perl5-data-hashmap-shared/issues>;
the source: L<https://github.com/vividsnow/perl5-data-hashmap-shared>.

=head1 LICENSE

This is free software; you can redistribute it and/or modify it under the same
terms as Perl itself: either the GNU General Public License, version 1 or (at
your option) any later version, or the Artistic License 1.0. The full texts are
in the file F<LICENSE> of the distribution.

=cut
