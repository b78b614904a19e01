package Data::HashMap::Shared::II;
use strict;
use warnings;

use Data::HashMap::Shared ();

our $VERSION = '1.00';

# Enable this variant's keywords (shm_ii_*) in the scope that says "use ...::II".
sub import { Data::HashMap::Shared::_enable_keywords(__PACKAGE__) }

1;
__END__

=head1 NAME

Data::HashMap::Shared::II - shared-memory hash map from int64 keys to int64 values

=head1 SYNOPSIS

    use Data::HashMap::Shared::II;

    my $map = Data::HashMap::Shared::II->new('/tmp/example-ii.shm', 10000);
    # or anonymous, shared with forked children:
    my $anon = Data::HashMap::Shared::II->new(undef, 10000);

    shm_ii_put $map, 42, 100;
    my $v = shm_ii_get $map, 42;
    shm_ii_put($map, 7, 200);          # parentheses work too
    shm_ii_remove $map, 42 if shm_ii_exists $map, 42;

    # Atomic counters (integer values only)
    my $n = shm_ii_incr $map, 7;
    shm_ii_incr_by $map, 7, 10;
    shm_ii_max $map, 7, 50;

    # Methods
    $map->put(42, 100);
    my @values = $map->get_multi(42, 7);
    while (my ($k, $val) = shm_ii_each $map) { }
    my $copy = shm_ii_to_hash $map;

    $map->unlink;

=head1 DESCRIPTION

A hash map from int64 keys to int64 values in shared memory, usable by many
processes at once. Integer keys are stored as int64: out-of-range keys are
narrowed to their low bits (two's complement). Integer values are stored as
int64 and wrap at that width, counters included.

C<use Data::HashMap::Shared::II;> enables the C<shm_ii_*> keywords in the
enclosing lexical scope; C<use Data::HashMap::Shared::II ();> loads the class
without them. The constructors, every operation (cursors, sharded and frozen maps
included) and the rules for arguments and return values are documented in
L<Data::HashMap::Shared>.

=head1 KEYWORDS

    shm_ii_put $m, $k, $v        shm_ii_get $m, $k
    shm_ii_remove $m, $k         shm_ii_exists $m, $k
    shm_ii_add $m, $k, $v        shm_ii_update $m, $k, $v
    shm_ii_swap $m, $k, $v       shm_ii_take $m, $k
    shm_ii_get_or_set $m, $k, $d shm_ii_cas $m, $k, $old, $new
    shm_ii_cas_take $m, $k, $old
    shm_ii_incr $m, $k          shm_ii_decr $m, $k
    shm_ii_incr_by $m, $k, $d   shm_ii_max $m, $k, $v
    shm_ii_min $m, $k, $v
    shm_ii_put_ttl $m, $k, $v, $ttl
    shm_ii_add_ttl $m, $k, $v, $ttl
    shm_ii_update_ttl $m, $k, $v, $ttl
    shm_ii_ttl_remaining $m, $k
    shm_ii_touch $m, $k
    shm_ii_persist $m, $k
    shm_ii_set_ttl $m, $k, $ttl
    shm_ii_flush_expired $m
    shm_ii_flush_expired_partial $m, $limit
    shm_ii_pop $m
    shm_ii_shift $m
    shm_ii_drain $m, $n
    shm_ii_clear $m             shm_ii_to_hash $m
    shm_ii_keys $m              shm_ii_values $m
    shm_ii_items $m             shm_ii_each $m
    shm_ii_iter_reset $m        shm_ii_reserve $m, $n
    shm_ii_size $m              shm_ii_max_entries $m
    shm_ii_max_size $m          shm_ii_ttl $m
    shm_ii_capacity $m          shm_ii_tombstones $m
    shm_ii_mmap_size $m         shm_ii_arena_used $m
    shm_ii_arena_cap $m         shm_ii_stat_evictions $m
    shm_ii_stat_expired $m      shm_ii_stat_recoveries $m
    shm_ii_cursor $m            shm_ii_cursor_next $c
    shm_ii_cursor_reset $c      shm_ii_cursor_seek $c, $k

The cursor keywords call the methods C<next>, C<reset> and C<seek> of
C<Data::HashMap::Shared::II::Cursor> (the class of C<< $m->cursor >>).

Methods without a keyword: C<new>, C<new_sharded>, C<new_memfd>, C<new_from_fd>,
C<new_readonly>, C<set_multi>, C<get_multi>, C<remove_multi>, C<get_with_ttl>,
C<stats>, C<verify>, C<freeze>, C<frozen>, C<readonly>, C<path>, C<memfd>,
C<sync>, C<unlink>.

=head1 FORK

A handle opened before C<fork> works in the child: see L<Data::HashMap::Shared/FORK AND PREFORKING SERVERS>
for what a child must not do.

=head1 DIAGNOSTICS

The messages of every variant are listed, with what they mean and what to do,
in L<Data::HashMap::Shared/DIAGNOSTICS>; in them, I<Class> is C<Data::HashMap::Shared::II>.

=head1 SEE ALSO

L<Data::HashMap::Shared>, whose SEE ALSO also compares the alternatives
(Cache::FastMmap, Hash::SharedMem, LMDB_File, Redis, CHI).

=head1 AUTHOR

See L<Data::HashMap::Shared/AUTHOR>.

=head1 LICENSE

This is free software; you can redistribute it and/or modify it under the same
terms as Perl itself.

=cut
