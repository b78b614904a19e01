package Data::HashMap::Shared::IS;
use strict;
use warnings;

use Data::HashMap::Shared ();

our $VERSION = '1.00';

# Enable this variant's keywords (shm_is_*) in the scope that says "use ...::IS".
sub import { Data::HashMap::Shared::_enable_keywords(__PACKAGE__) }

1;
__END__

=head1 NAME

Data::HashMap::Shared::IS - shared-memory hash map from int64 keys to string values

=head1 SYNOPSIS

    use Data::HashMap::Shared::IS;

    my $map = Data::HashMap::Shared::IS->new('/tmp/example-is.shm', 10000);
    # or anonymous, shared with forked children:
    my $anon = Data::HashMap::Shared::IS->new(undef, 10000);

    shm_is_put $map, 42, 'hello';
    my $v = shm_is_get $map, 42;
    shm_is_put($map, 7, 'world');          # parentheses work too
    shm_is_remove $map, 42 if shm_is_exists $map, 42;

    # Methods
    $map->put(42, 'hello');
    my @values = $map->get_multi(42, 7);
    while (my ($k, $val) = shm_is_each $map) { }
    my $copy = shm_is_to_hash $map;

    $map->unlink;

=head1 DESCRIPTION

A hash map from int64 keys to string values in shared memory, usable by many
processes at once. Integer keys are stored as int64: out-of-range keys are
narrowed to their low bits (two's complement). String values keep their UTF-8
flag.

This class has no counter operations (C<incr>, C<decr>, C<incr_by>, C<max>,
C<min>): its values are strings.

C<use Data::HashMap::Shared::IS;> enables the C<shm_is_*> keywords in the
enclosing lexical scope; C<use Data::HashMap::Shared::IS ();> loads the class
without them. The constructors, every operation (cursors, sharded and frozen maps
included) and the rules for arguments and return values are documented in
L<Data::HashMap::Shared>.

=head1 KEYWORDS

    shm_is_put $m, $k, $v        shm_is_get $m, $k
    shm_is_remove $m, $k         shm_is_exists $m, $k
    shm_is_add $m, $k, $v        shm_is_update $m, $k, $v
    shm_is_swap $m, $k, $v       shm_is_take $m, $k
    shm_is_get_or_set $m, $k, $d shm_is_cas $m, $k, $old, $new
    shm_is_cas_take $m, $k, $old
    shm_is_put_ttl $m, $k, $v, $ttl
    shm_is_add_ttl $m, $k, $v, $ttl
    shm_is_update_ttl $m, $k, $v, $ttl
    shm_is_ttl_remaining $m, $k
    shm_is_touch $m, $k
    shm_is_persist $m, $k
    shm_is_set_ttl $m, $k, $ttl
    shm_is_flush_expired $m
    shm_is_flush_expired_partial $m, $limit
    shm_is_pop $m
    shm_is_shift $m
    shm_is_drain $m, $n
    shm_is_clear $m             shm_is_to_hash $m
    shm_is_keys $m              shm_is_values $m
    shm_is_items $m             shm_is_each $m
    shm_is_iter_reset $m        shm_is_reserve $m, $n
    shm_is_size $m              shm_is_max_entries $m
    shm_is_max_size $m          shm_is_ttl $m
    shm_is_capacity $m          shm_is_tombstones $m
    shm_is_mmap_size $m         shm_is_arena_used $m
    shm_is_arena_cap $m         shm_is_stat_evictions $m
    shm_is_stat_expired $m      shm_is_stat_recoveries $m
    shm_is_cursor $m            shm_is_cursor_next $c
    shm_is_cursor_reset $c      shm_is_cursor_seek $c, $k

The cursor keywords call the methods C<next>, C<reset> and C<seek> of
C<Data::HashMap::Shared::IS::Cursor> (the class of C<< $m->cursor >>).

Methods without a keyword: C<new>, C<new_sharded>, C<new_memfd>, C<new_from_fd>,
C<new_readonly>, C<set_multi>, C<get_multi>, C<remove_multi>, C<get_with_ttl>,
C<stats>, C<verify>, C<freeze>, C<frozen>, C<readonly>, C<path>, C<memfd>,
C<sync>, C<unlink>.

=head1 FORK

A handle opened before C<fork> works in the child: see L<Data::HashMap::Shared/FORK AND PREFORKING SERVERS>
for what a child must not do.

=head1 DIAGNOSTICS

The messages of every variant are listed, with what they mean and what to do,
in L<Data::HashMap::Shared/DIAGNOSTICS>; in them, I<Class> is C<Data::HashMap::Shared::IS>.

=head1 SEE ALSO

L<Data::HashMap::Shared>, whose SEE ALSO also compares the alternatives
(Cache::FastMmap, Hash::SharedMem, LMDB_File, Redis, CHI).

=head1 AUTHOR

See L<Data::HashMap::Shared/AUTHOR>.

=head1 LICENSE

This is free software; you can redistribute it and/or modify it under the same
terms as Perl itself.

=cut
