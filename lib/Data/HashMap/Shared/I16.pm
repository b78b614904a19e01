package Data::HashMap::Shared::I16;
use strict;
use warnings;

use Data::HashMap::Shared ();

our $VERSION = '1.00';

# Enable this variant's keywords (shm_i16_*) in the scope that says "use ...::I16".
sub import { Data::HashMap::Shared::_enable_keywords(__PACKAGE__) }

1;
__END__

=head1 NAME

Data::HashMap::Shared::I16 - shared-memory hash map from int16 keys to int16 values

=head1 SYNOPSIS

    use Data::HashMap::Shared::I16;

    my $map = Data::HashMap::Shared::I16->new('/tmp/example-i16.shm', 10000);
    # or anonymous, shared with forked children:
    my $anon = Data::HashMap::Shared::I16->new(undef, 10000);

    shm_i16_put $map, 42, 100;
    my $v = shm_i16_get $map, 42;
    shm_i16_put($map, 7, 200);          # parentheses work too
    shm_i16_remove $map, 42 if shm_i16_exists $map, 42;

    # Atomic counters (integer values only)
    my $n = shm_i16_incr $map, 7;
    shm_i16_incr_by $map, 7, 10;
    shm_i16_max $map, 7, 50;

    # Methods
    $map->put(42, 100);
    my @values = $map->get_multi(42, 7);
    while (my ($k, $val) = shm_i16_each $map) { }
    my $copy = shm_i16_to_hash $map;

    $map->unlink;

=head1 DESCRIPTION

A hash map from int16 keys to int16 values in shared memory, usable by many
processes at once. Integer keys are stored as int16: out-of-range keys are
narrowed to their low bits (two's complement). Integer values are stored as
int16 and wrap at that width, counters included.

C<use Data::HashMap::Shared::I16;> enables the C<shm_i16_*> keywords in the
enclosing lexical scope; C<use Data::HashMap::Shared::I16 ();> loads the class
without them. The constructors, every operation (cursors, sharded and frozen maps
included) and the rules for arguments and return values are documented in
L<Data::HashMap::Shared>.

=head1 KEYWORDS

    shm_i16_put $m, $k, $v        shm_i16_get $m, $k
    shm_i16_remove $m, $k         shm_i16_exists $m, $k
    shm_i16_add $m, $k, $v        shm_i16_update $m, $k, $v
    shm_i16_swap $m, $k, $v       shm_i16_take $m, $k
    shm_i16_get_or_set $m, $k, $d shm_i16_cas $m, $k, $old, $new
    shm_i16_cas_take $m, $k, $old
    shm_i16_incr $m, $k          shm_i16_decr $m, $k
    shm_i16_incr_by $m, $k, $d   shm_i16_max $m, $k, $v
    shm_i16_min $m, $k, $v
    shm_i16_put_ttl $m, $k, $v, $ttl
    shm_i16_add_ttl $m, $k, $v, $ttl
    shm_i16_update_ttl $m, $k, $v, $ttl
    shm_i16_ttl_remaining $m, $k
    shm_i16_touch $m, $k
    shm_i16_persist $m, $k
    shm_i16_set_ttl $m, $k, $ttl
    shm_i16_flush_expired $m
    shm_i16_flush_expired_partial $m, $limit
    shm_i16_pop $m
    shm_i16_shift $m
    shm_i16_drain $m, $n
    shm_i16_clear $m             shm_i16_to_hash $m
    shm_i16_keys $m              shm_i16_values $m
    shm_i16_items $m             shm_i16_each $m
    shm_i16_iter_reset $m        shm_i16_reserve $m, $n
    shm_i16_size $m              shm_i16_max_entries $m
    shm_i16_max_size $m          shm_i16_ttl $m
    shm_i16_capacity $m          shm_i16_tombstones $m
    shm_i16_mmap_size $m         shm_i16_arena_used $m
    shm_i16_arena_cap $m         shm_i16_stat_evictions $m
    shm_i16_stat_expired $m      shm_i16_stat_recoveries $m
    shm_i16_cursor $m            shm_i16_cursor_next $c
    shm_i16_cursor_reset $c      shm_i16_cursor_seek $c, $k

The cursor keywords call the methods C<next>, C<reset> and C<seek> of
C<Data::HashMap::Shared::I16::Cursor> (the class of C<< $m->cursor >>).

Methods without a keyword: C<new>, C<new_sharded>, C<new_memfd>, C<new_from_fd>,
C<new_readonly>, C<set_multi>, C<get_multi>, C<remove_multi>, C<get_with_ttl>,
C<stats>, C<verify>, C<freeze>, C<frozen>, C<readonly>, C<path>, C<memfd>,
C<sync>, C<unlink>.

=head1 FORK

A handle opened before C<fork> works in the child: see L<Data::HashMap::Shared/FORK AND PREFORKING SERVERS>
for what a child must not do.

=head1 DIAGNOSTICS

The messages of every variant are listed, with what they mean and what to do,
in L<Data::HashMap::Shared/DIAGNOSTICS>; in them, I<Class> is C<Data::HashMap::Shared::I16>.

=head1 SEE ALSO

L<Data::HashMap::Shared>, whose SEE ALSO also compares the alternatives
(Cache::FastMmap, Hash::SharedMem, LMDB_File, Redis, CHI).

=head1 AUTHOR

See L<Data::HashMap::Shared/AUTHOR>.

=head1 LICENSE

This is free software; you can redistribute it and/or modify it under the same
terms as Perl itself.

=cut
