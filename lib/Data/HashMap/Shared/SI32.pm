package Data::HashMap::Shared::SI32;
use strict;
use warnings;

use Data::HashMap::Shared ();

our $VERSION = '1.00';

# Enable this variant's keywords (shm_si32_*) in the scope that says "use ...::SI32".
sub import { Data::HashMap::Shared::_enable_keywords(__PACKAGE__) }

1;
__END__

=head1 NAME

Data::HashMap::Shared::SI32 - shared-memory hash map from string keys to int32 values

=head1 SYNOPSIS

    use Data::HashMap::Shared::SI32;

    my $map = Data::HashMap::Shared::SI32->new('/tmp/example-si32.shm', 10000);
    # or anonymous, shared with forked children:
    my $anon = Data::HashMap::Shared::SI32->new(undef, 10000);

    shm_si32_put $map, 'alice', 100;
    my $v = shm_si32_get $map, 'alice';
    shm_si32_put($map, 'bob', 200);          # parentheses work too
    shm_si32_remove $map, 'alice' if shm_si32_exists $map, 'alice';

    # Atomic counters (integer values only)
    my $n = shm_si32_incr $map, 'bob';
    shm_si32_incr_by $map, 'bob', 10;
    shm_si32_max $map, 'bob', 50;

    # Methods
    $map->put('alice', 100);
    my @values = $map->get_multi('alice', 'bob');
    while (my ($k, $val) = shm_si32_each $map) { }
    my $copy = shm_si32_to_hash $map;

    $map->unlink;

=head1 DESCRIPTION

A hash map from string keys to int32 values in shared memory, usable by many
processes at once. Integer values are stored as int32 and wrap at that width,
counters included. String keys are identified by their bytes; their UTF-8 flag
is stored and returned but is not part of the key.

C<use Data::HashMap::Shared::SI32;> enables the C<shm_si32_*> keywords in the
enclosing lexical scope; C<use Data::HashMap::Shared::SI32 ();> loads the class
without them. The constructors, every operation (cursors, sharded and frozen maps
included) and the rules for arguments and return values are documented in
L<Data::HashMap::Shared>.

=head1 KEYWORDS

    shm_si32_put $m, $k, $v        shm_si32_get $m, $k
    shm_si32_remove $m, $k         shm_si32_exists $m, $k
    shm_si32_add $m, $k, $v        shm_si32_update $m, $k, $v
    shm_si32_swap $m, $k, $v       shm_si32_take $m, $k
    shm_si32_get_or_set $m, $k, $d shm_si32_cas $m, $k, $old, $new
    shm_si32_cas_take $m, $k, $old
    shm_si32_incr $m, $k          shm_si32_decr $m, $k
    shm_si32_incr_by $m, $k, $d   shm_si32_max $m, $k, $v
    shm_si32_min $m, $k, $v
    shm_si32_put_ttl $m, $k, $v, $ttl
    shm_si32_add_ttl $m, $k, $v, $ttl
    shm_si32_update_ttl $m, $k, $v, $ttl
    shm_si32_ttl_remaining $m, $k
    shm_si32_touch $m, $k
    shm_si32_persist $m, $k
    shm_si32_set_ttl $m, $k, $ttl
    shm_si32_flush_expired $m
    shm_si32_flush_expired_partial $m, $limit
    shm_si32_pop $m
    shm_si32_shift $m
    shm_si32_drain $m, $n
    shm_si32_clear $m             shm_si32_to_hash $m
    shm_si32_keys $m              shm_si32_values $m
    shm_si32_items $m             shm_si32_each $m
    shm_si32_iter_reset $m        shm_si32_reserve $m, $n
    shm_si32_size $m              shm_si32_max_entries $m
    shm_si32_max_size $m          shm_si32_ttl $m
    shm_si32_capacity $m          shm_si32_tombstones $m
    shm_si32_mmap_size $m         shm_si32_arena_used $m
    shm_si32_arena_cap $m         shm_si32_stat_evictions $m
    shm_si32_stat_expired $m      shm_si32_stat_recoveries $m
    shm_si32_cursor $m            shm_si32_cursor_next $c
    shm_si32_cursor_reset $c      shm_si32_cursor_seek $c, $k

The cursor keywords call the methods C<next>, C<reset> and C<seek> of
C<Data::HashMap::Shared::SI32::Cursor> (the class of C<< $m->cursor >>).

Methods without a keyword: C<new>, C<new_sharded>, C<new_memfd>, C<new_from_fd>,
C<new_readonly>, C<set_multi>, C<get_multi>, C<remove_multi>, C<get_with_ttl>,
C<stats>, C<verify>, C<freeze>, C<frozen>, C<readonly>, C<path>, C<memfd>,
C<sync>, C<unlink>.

=head1 FORK

A handle opened before C<fork> works in the child: see L<Data::HashMap::Shared/FORK AND PREFORKING SERVERS>
for what a child must not do.

=head1 DIAGNOSTICS

The messages of every variant are listed, with what they mean and what to do,
in L<Data::HashMap::Shared/DIAGNOSTICS>; in them, I<Class> is C<Data::HashMap::Shared::SI32>.

=head1 SEE ALSO

L<Data::HashMap::Shared>, whose SEE ALSO also compares the alternatives
(Cache::FastMmap, Hash::SharedMem, LMDB_File, Redis, CHI).

=head1 AUTHOR

See L<Data::HashMap::Shared/AUTHOR>.

=head1 LICENSE

This is free software; you can redistribute it and/or modify it under the same
terms as Perl itself.

=cut
