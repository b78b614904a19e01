package Data::HashMap::Shared;
use strict;
use warnings;

our $VERSION = '0.17_01';

require XSLoader;
XSLoader::load('Data::HashMap::Shared', $VERSION);

# Called by the import of each variant module: put that variant's keyword hint keys
# into %^H, so its keywords are enabled in the lexical scope being compiled.
sub _enable_keywords {
    my ($class) = @_;
    $^H{$_} = 1 for _hint_keys($class);
    return;
}

# B::Deparse support for the keywords' custom ops (named "shm_OP", variant id in
# op_private): they deparse to the parenthesised keyword form, shm_ii_get($m, $k).
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

0.17_01, a development release. It implements the user-visible API of
Data::HashMap::Shared 0.17 (the C/XS distribution) with a new engine written in
Rust, minus the features listed in L</NOT YET IMPLEMENTED IN THIS RELEASE>, which
come in later releases.

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
the methods do. All other keywords run in the caller's context.

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

Each keyword has a method of the same name, and every method can also be called as
a plain function (C<Data::HashMap::Shared::II::get($m, $k)>). The methods
C<new>, C<new_memfd>, C<new_from_fd>, C<set_multi>, C<get_multi>,
C<remove_multi>, C<stats>, C<frozen>, C<readonly>, C<path>, C<memfd>, C<sync>
and C<unlink> have no keyword.

=head1 CONSTRUCTORS

All constructors are class methods, bless the object into the invocant class (so
subclasses work) and croak on failure with a message
"Data::HashMap::Shared::II: DETAIL". The object is a reference to a scalar that
holds the engine's handle.

=head2 new

    my $m = Class->new($path, $max_entries);
    my $m = Class->new($path, $max_entries, $max_size, $ttl, $lru_skip,
                       $arena_cap, $file_mode);

Creates the map file C<$path>, or attaches to it if it exists. C<$path> undef
makes an anonymous map: shared memory that has no name and is shared only with
processes forked after its creation.

=over

=item C<$max_entries>

How many entries the map must hold. The table starts small and grows up to the
capacity this implies; C<max_entries> reports the number of entries the map
guarantees, which is at least this.

=item C<$max_size>, C<$ttl>, C<$lru_skip>

LRU bound, default TTL in seconds and LRU promotion-skip percentage (0-99), all
0 by default. This release has neither LRU nor TTL: a non-zero C<$max_size> or
C<$ttl> croaks ("... is not supported yet"); see
L</NOT YET IMPLEMENTED IN THIS RELEASE>.

=item C<$arena_cap>

Bytes for string storage (string variants); 0 (default) sizes it from
C<$max_entries>.

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

=head2 new_memfd

    my $m = Class->new_memfd($name, $max_entries, $max_size, $ttl, $lru_skip, $arena_cap);

A map in a memfd (C<memfd_create>, name C<$name> or "hashmap" when undef). The
descriptor (C<< $m->memfd >>) can be inherited by C<fork>, passed over a Unix
socket or, after clearing close-on-exec, to an exec'd program, which opens the
same map with C<new_from_fd>. The memfd is sealed against growing and shrinking.

=head2 new_from_fd

    my $m = Class->new_from_fd($fd);

Opens the map in descriptor C<$fd> (a memfd from C<new_memfd>, or a map file
opened read-write). The descriptor is duplicated; the caller keeps its own.

=head1 OPERATIONS

In the descriptions, "true" and "false" are Perl's canonical booleans (1 and the
empty string). Values come back as new scalars (changing them never changes the
map). Every mutator croaks on engine errors, e.g. "key too long (max 1GB)".

=head2 Single keys

=over

=item put($key, $value) → bool

Insert or overwrite. False only when a new key does not fit (table at its maximum
capacity, or string arena full).

=item get($key) → value | undef

Lock-free read.

=item exists($key) → bool

=item remove($key) → bool

True if the key was there.

=item add($key, $value) → bool

Insert only if absent.

=item update($key, $value) → bool

Overwrite only if present.

=item swap($key, $value) → old value | undef

Like put, returning the previous value (undef for a new key).

=item take($key) → value | undef

Remove and return.

=item get_or_set($key, $default) → value | undef

Atomic lookup-or-insert: the stored value, or C<$default> after inserting it;
undef only if the insert was impossible.

=item cas($key, $expected, $desired) → bool

Compare-and-swap: stores C<$desired> if the current value equals C<$expected>.
String values compare bytes (the UTF-8 flag of C<$expected> is ignored).

=item cas_take($key, $expected) → value | undef

Removes the entry if its value equals C<$expected>, returning the value.

=back

=head2 Counters (integer-value variants)

=over

=item incr($key), decr($key), incr_by($key, $delta) → new value

Atomic add; a missing key is created with value 0 first (C<incr> of a new key
returns 1). The result wraps at the variant's width.

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

One value (or undef) per key, read as one consistent snapshot.

=item remove_multi($k1, $k2, ...) → count

=back

All arguments of a batch are converted before the engine is called, so an
argument whose magic dies (a tied variable, an overloaded object) stores or
removes nothing; see L</DIFFERENCES FROM THE C IMPLEMENTATION>.

=head2 The whole map

=over

=item clear

Removes every entry; returns nothing. Statistics counters are kept.

=item keys, values, items → list

A snapshot, in the table's order; C<items> is flat (k1, v1, k2, v2, ...). Integer
keys come back as numbers, strings with their stored UTF-8 flag. In scalar
context these return the last element of the list (use C<size> for the count).

=item to_hash → hashref

A new Perl hash with the map's contents (integer keys as decimal strings,
UTF-8-flagged keys as UTF-8 hash keys).

=item each → ($key, $value) | ()

The handle's built-in iterator: the next entry, or the empty list at the end, after
which it starts over. Removing entries while iterating is safe. If the table is
resized meanwhile, the iteration restarts from the beginning.

=item iter_reset

Restarts C<each>.

=back

=head2 Accessors

C<size> (entries), C<max_entries> (entries guaranteed), C<capacity> (current table
slots), C<tombstones>, C<mmap_size> (bytes mapped), C<arena_used>, C<arena_cap>
(string arena bytes; 0 for integer-only variants), C<max_size>, C<ttl>,
C<stat_evictions>, C<stat_expired>, C<stat_recoveries> return unsigned integers.

=over

=item reserve($n) → bool

Grows the table so that C<$n> entries fit; false if C<$n> is beyond the map's
maximum. C<$n> is truncated to 32 bits.

=item stats → hashref

All diagnostics at once: C<size capacity max_entries tombstones mmap_size
arena_used arena_cap evictions expired recoveries max_size ttl frozen readonly>.

=item path → string | undef

The backing file, undef for anonymous, memfd and descriptor maps.

=item memfd → fd | -1

The map's own descriptor for C<new_memfd> / C<new_from_fd> maps.

=item frozen, readonly → 1 | 0

Whether the map is sealed / this handle is read-only. Always 0 in this release,
which cannot freeze maps yet.

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

=item DESTROY

Unmaps the map and closes its descriptor; ignores anything that is not an object
of the class. Handles are not cloned into new threads (C<CLONE_SKIP> returns 1):
a thread sees a reference to undef.

=back

=head1 ARGUMENTS AND RETURN VALUES

Integer arguments are converted as Perl does: undef is 0 and "12abc" is 12 (with
the usual warnings), 1.9 is 1, values above the IV range wrap. String arguments
are the scalar's bytes plus its UTF-8 flag: undef is "" (with a warning), numbers
and references are stringified. All argument magic (ties, overloading, C<$1>)
runs before the engine is called, never while it holds a lock.

If an argument's magic destroys or replaces the map object during the call, the
call croaks "Data::HashMap::Shared::II object replaced or destroyed during the
call" instead of touching a released map. A wrong invocant croaks "Expected a
Data::HashMap::Shared::II object"; one that was explicitly destroyed croaks
"Attempted to use a destroyed Data::HashMap::Shared::II object".

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

=head1 NOT YET IMPLEMENTED IN THIS RELEASE

This release has the core map. The following parts of the 0.17 API come in later
releases; until then they do not exist (calling them dies with "Can't locate
object method", their keywords are not defined):

=over

=item * LRU eviction and TTL expiry, and their operations: C<put_ttl>,
C<add_ttl>, C<update_ttl>, C<ttl_remaining>, C<get_with_ttl>, C<touch>,
C<persist>, C<set_ttl>, C<flush_expired>, C<flush_expired_partial>. The
constructors take the C<$max_size>, C<$ttl> and C<$lru_skip> arguments, but
croak "Data::HashMap::Shared::II: LRU (max_size) is not supported yet" (or
"TTL is not supported yet") when C<$max_size> or C<$ttl> is not 0, rather than
make a map that silently never evicts or expires. The accessors C<max_size> and
C<ttl> exist (and return 0).

=item * C<pop>, C<shift>, C<drain>.

=item * Cursors (C<cursor>, C<cursor_next>, C<cursor_reset>, C<cursor_seek>).

=item * Sharded maps (C<new_sharded>).

=item * Read-only maps: C<freeze> and C<new_readonly> (C<frozen>, C<readonly>
and the C<stats> keys of the same names exist and are always 0).

=item * Migration of files written by the C implementation
(C<< Data::HashMap::Shared->upgrade_file >>, C<hashmap-shared-upgrade>).

=back

=head1 DIFFERENCES FROM THE C IMPLEMENTATION

Programs written for the C/XS Data::HashMap::Shared keep working: the API, return
values, context rules and error messages are the same. These are the places where
this implementation deliberately differs.

=head2 In this release

=over

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
reports the bytes currently allocated, not a high-water mark.

=item * B<No SIGBUS from a full file system.> Creating a map where there is no
room for it croaks at C<new>.

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

=item * B<Arguments are converted before anything is stored.> No Perl code runs
while the engine holds a lock; batch operations convert all their arguments
first, so an argument that dies in C<set_multi> or C<remove_multi> stores or
removes nothing (the C version keeps the pairs processed before the exception).

=back

=head2 In later releases

Sharded sets that record their shape and refuse to be reopened with another shard
count; expiry stored as wall-clock time (survives reboots and copies);
C<lru_skip> as an exact percentage; dead lock holders detected quickly and
cheaply; crashes that lose no committed write; safe handling of PID namespaces;
migration of C-format files with C<upgrade_file>; the engine as a Rust library of
its own.

=head1 SEE ALSO

The variant classes L<Data::HashMap::Shared::II> and siblings;
L<XS::Parse::Keyword>.

=head1 AUTHOR

vividsnow (API and the original C implementation); this implementation by the
Data::HashMap::Shared Rust port developers.

=head1 LICENSE

This is free software; you can redistribute it and/or modify it under the same
terms as Perl itself.

=cut
