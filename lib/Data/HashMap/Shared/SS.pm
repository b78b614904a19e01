package Data::HashMap::Shared::SS;
use strict;
use warnings;

use Data::HashMap::Shared ();

our $VERSION = '1.00';

# Enable this variant's keywords (shm_ss_*) in the scope that says "use ...::SS".
sub import { Data::HashMap::Shared::_enable_keywords(__PACKAGE__) }

1;
__END__

=head1 NAME

Data::HashMap::Shared::SS - shared-memory hash map from string keys to string values

=head1 SYNOPSIS

    use Data::HashMap::Shared::SS;

    my $map = Data::HashMap::Shared::SS->new('/tmp/example-ss.shm', 10000);
    # or anonymous, shared with forked children:
    my $anon = Data::HashMap::Shared::SS->new(undef, 10000);

    shm_ss_put $map, 'alice', 'hello';
    my $v = shm_ss_get $map, 'alice';
    shm_ss_put($map, 'bob', 'world');          # parentheses work too
    shm_ss_remove $map, 'alice' if shm_ss_exists $map, 'alice';

    # Methods
    $map->put('alice', 'hello');
    my @values = $map->get_multi('alice', 'bob');
    while (my ($k, $val) = shm_ss_each $map) { }
    my $copy = shm_ss_to_hash $map;

    $map->unlink;

=head1 DESCRIPTION

A hash map from string keys to string values in shared memory, usable by many
processes at once. String keys are identified by their bytes; their UTF-8 flag
is stored and returned but is not part of the key. String values keep their
UTF-8 flag.

This class has no counter operations (C<incr>, C<decr>, C<incr_by>, C<max>,
C<min>): its values are strings.

C<use Data::HashMap::Shared::SS;> enables the C<shm_ss_*> keywords in the
enclosing lexical scope; C<use Data::HashMap::Shared::SS ();> loads the class
without them. The constructors, every operation (cursors, sharded and frozen maps
included) and the rules for arguments and return values are documented in
L<Data::HashMap::Shared>.

=head1 KEYWORDS

    shm_ss_put $m, $k, $v        shm_ss_get $m, $k
    shm_ss_remove $m, $k         shm_ss_exists $m, $k
    shm_ss_add $m, $k, $v        shm_ss_update $m, $k, $v
    shm_ss_swap $m, $k, $v       shm_ss_take $m, $k
    shm_ss_get_or_set $m, $k, $d shm_ss_cas $m, $k, $old, $new
    shm_ss_cas_take $m, $k, $old
    shm_ss_put_ttl $m, $k, $v, $ttl
    shm_ss_add_ttl $m, $k, $v, $ttl
    shm_ss_update_ttl $m, $k, $v, $ttl
    shm_ss_ttl_remaining $m, $k
    shm_ss_touch $m, $k
    shm_ss_persist $m, $k
    shm_ss_set_ttl $m, $k, $ttl
    shm_ss_flush_expired $m
    shm_ss_flush_expired_partial $m, $limit
    shm_ss_pop $m
    shm_ss_shift $m
    shm_ss_drain $m, $n
    shm_ss_clear $m             shm_ss_to_hash $m
    shm_ss_keys $m              shm_ss_values $m
    shm_ss_items $m             shm_ss_each $m
    shm_ss_iter_reset $m        shm_ss_reserve $m, $n
    shm_ss_size $m              shm_ss_max_entries $m
    shm_ss_max_size $m          shm_ss_ttl $m
    shm_ss_capacity $m          shm_ss_tombstones $m
    shm_ss_mmap_size $m         shm_ss_arena_used $m
    shm_ss_arena_cap $m         shm_ss_stat_evictions $m
    shm_ss_stat_expired $m      shm_ss_stat_recoveries $m
    shm_ss_cursor $m            shm_ss_cursor_next $c
    shm_ss_cursor_reset $c      shm_ss_cursor_seek $c, $k

The cursor keywords call the methods C<next>, C<reset> and C<seek> of
C<Data::HashMap::Shared::SS::Cursor> (the class of C<< $m->cursor >>).

Methods without a keyword: C<new>, C<new_sharded>, C<new_memfd>, C<new_from_fd>,
C<new_readonly>, C<set_multi>, C<get_multi>, C<remove_multi>, C<get_with_ttl>,
C<stats>, C<verify>, C<freeze>, C<frozen>, C<readonly>, C<path>, C<memfd>,
C<sync>, C<unlink>.

=head1 FORK

A handle opened before C<fork> works in the child: see L<Data::HashMap::Shared/FORK AND PREFORKING SERVERS>
for what a child must not do.

=head1 DIAGNOSTICS

The messages of every variant are listed, with what they mean and what to do,
in L<Data::HashMap::Shared/DIAGNOSTICS>; in them, I<Class> is C<Data::HashMap::Shared::SS>.

=head1 SEE ALSO

L<Data::HashMap::Shared>, whose SEE ALSO also compares the alternatives
(Cache::FastMmap, Hash::SharedMem, LMDB_File, Redis, CHI).

=head1 AUTHOR

See L<Data::HashMap::Shared/AUTHOR>.

=head1 LICENSE

This is free software; you can redistribute it and/or modify it under the same
terms as Perl itself.

=cut
