package Data::HashMap::Shared::SI;
use strict;
use warnings;

use Data::HashMap::Shared ();

our $VERSION = '1.00';

# Enable this variant's keywords (shm_si_*) in the scope that says "use ...::SI".
sub import { Data::HashMap::Shared::_enable_keywords(__PACKAGE__) }

1;
__END__

=head1 NAME

Data::HashMap::Shared::SI - shared-memory hash map from string keys to int64 values

=head1 SYNOPSIS

    use Data::HashMap::Shared::SI;

    my $map = Data::HashMap::Shared::SI->new('/tmp/example-si.shm', 10000);
    # or anonymous, shared with forked children:
    my $anon = Data::HashMap::Shared::SI->new(undef, 10000);

    shm_si_put $map, 'alice', 100;
    my $v = shm_si_get $map, 'alice';
    shm_si_put($map, 'bob', 200);          # parentheses work too
    shm_si_remove $map, 'alice' if shm_si_exists $map, 'alice';

    # Atomic counters (integer values only)
    my $n = shm_si_incr $map, 'bob';
    shm_si_incr_by $map, 'bob', 10;
    shm_si_max $map, 'bob', 50;

    # Methods
    $map->put('alice', 100);
    my @values = $map->get_multi('alice', 'bob');
    while (my ($k, $val) = shm_si_each $map) { }
    my $copy = shm_si_to_hash $map;

    $map->unlink;

=head1 DESCRIPTION

A hash map from string keys to int64 values in shared memory, usable by many
processes at once. Integer values are stored as int64 and wrap at that width,
counters included. String keys are identified by their bytes; their UTF-8 flag
is stored and returned but is not part of the key.

C<use Data::HashMap::Shared::SI;> enables the C<shm_si_*> keywords in the
enclosing lexical scope; C<use Data::HashMap::Shared::SI ();> loads the class
without them. The constructors, every operation (cursors, sharded and frozen maps
included) and the rules for arguments and return values are documented in
L<Data::HashMap::Shared>.

=head1 KEYWORDS

    shm_si_put $m, $k, $v        shm_si_get $m, $k
    shm_si_remove $m, $k         shm_si_exists $m, $k
    shm_si_add $m, $k, $v        shm_si_update $m, $k, $v
    shm_si_swap $m, $k, $v       shm_si_take $m, $k
    shm_si_get_or_set $m, $k, $d shm_si_cas $m, $k, $old, $new
    shm_si_cas_take $m, $k, $old
    shm_si_incr $m, $k          shm_si_decr $m, $k
    shm_si_incr_by $m, $k, $d   shm_si_max $m, $k, $v
    shm_si_min $m, $k, $v
    shm_si_put_ttl $m, $k, $v, $ttl
    shm_si_add_ttl $m, $k, $v, $ttl
    shm_si_update_ttl $m, $k, $v, $ttl
    shm_si_ttl_remaining $m, $k
    shm_si_touch $m, $k
    shm_si_persist $m, $k
    shm_si_set_ttl $m, $k, $ttl
    shm_si_flush_expired $m
    shm_si_flush_expired_partial $m, $limit
    shm_si_pop $m
    shm_si_shift $m
    shm_si_drain $m, $n
    shm_si_clear $m             shm_si_to_hash $m
    shm_si_keys $m              shm_si_values $m
    shm_si_items $m             shm_si_each $m
    shm_si_iter_reset $m        shm_si_reserve $m, $n
    shm_si_size $m              shm_si_max_entries $m
    shm_si_max_size $m          shm_si_ttl $m
    shm_si_capacity $m          shm_si_tombstones $m
    shm_si_mmap_size $m         shm_si_arena_used $m
    shm_si_arena_cap $m         shm_si_stat_evictions $m
    shm_si_stat_expired $m      shm_si_stat_recoveries $m
    shm_si_cursor $m            shm_si_cursor_next $c
    shm_si_cursor_reset $c      shm_si_cursor_seek $c, $k

The cursor keywords call the methods C<next>, C<reset> and C<seek> of
C<Data::HashMap::Shared::SI::Cursor> (the class of C<< $m->cursor >>).

Methods without a keyword: C<new>, C<new_sharded>, C<new_memfd>, C<new_from_fd>,
C<new_readonly>, C<set_multi>, C<get_multi>, C<remove_multi>, C<get_with_ttl>,
C<stats>, C<verify>, C<freeze>, C<frozen>, C<readonly>, C<path>, C<memfd>,
C<sync>, C<unlink>.

=head1 FORK

A handle opened before C<fork> works in the child: see L<Data::HashMap::Shared/FORK AND PREFORKING SERVERS>
for what a child must not do.

=head1 DIAGNOSTICS

The messages of every variant are listed, with what they mean and what to do,
in L<Data::HashMap::Shared/DIAGNOSTICS>; in them, I<Class> is C<Data::HashMap::Shared::SI>.

=head1 SEE ALSO

L<Data::HashMap::Shared>, whose SEE ALSO also compares the alternatives
(Cache::FastMmap, Hash::SharedMem, LMDB_File, Redis, CHI).

=head1 AUTHOR

See L<Data::HashMap::Shared/AUTHOR>.

=head1 LICENSE

This is free software; you can redistribute it and/or modify it under the same
terms as Perl itself.

=cut
