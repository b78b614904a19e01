package CHI::Driver::HashMap::Shared;
use strict;
use warnings;

use Carp ();
use File::Path ();
use File::Spec ();
use Moo;
use Data::HashMap::Shared::SS ();

our $VERSION = '1.00';

extends 'CHI::Driver';

# The maps' default TTL, for entries that other tools write with put: the largest
# (136 years). The driver gives every entry its own (put_ttl: 0 = permanent).
my $NEVER = 4294967293;

# One LRU map of the SS variant per namespace, in root_dir; with TTL support, for
# CHI's expires_on_backend.
has root_dir => (
    is      => 'ro',
    default => sub { File::Spec->catdir(File::Spec->tmpdir, 'chi-driver-hashmap-shared') },
);
has dir_create_mode => (is => 'ro', default => sub { oct 775 });
has file_mode       => (is => 'ro', default => sub { oct 600 });
# Sizing of a namespace's map when this handle creates it (an existing file keeps its
# own): string_space in bytes (or with k/m/g), max_entries by default 1 per 128 bytes.
has string_space => (is => 'ro', default => sub { '16m' });
has max_entries  => (is => 'ro');
has lru_skip     => (is => 'ro', default => sub { 0 });

sub BUILD {
    my ($self) = @_;
    my $dir = $self->root_dir;
    File::Path::mkpath($dir, 0, $self->dir_create_mode) unless -d $dir;
    $self->{map} = Data::HashMap::Shared::SS->new($self->path_for_namespace($self->namespace), {
        string_space => $self->string_space,
        (defined $self->max_entries ? (max_entries => $self->max_entries) : ()),
        lru       => 1,
        lru_skip  => $self->lru_skip,
        ttl       => $NEVER,
        file_mode => $self->file_mode,
    });
    return;
}

# The file of a namespace: its name escaped as CHI's file-based drivers do.
sub path_for_namespace {
    my ($self, $namespace) = @_;
    return File::Spec->catfile($self->root_dir, $self->escape_for_filename($namespace) . '.shm');
}

# The Data::HashMap::Shared::SS map of this handle's namespace.
sub hms_map { $_[0]{map} }

# Keys are bytes in the map: CHI gives keys with characters above 0xFF already
# encoded, so every key has a byte form (downgrade); the same key with or without the
# UTF-8 flag is then the same entry.
sub _bytes {
    my ($key) = @_;
    return $key unless utf8::is_utf8($key);
    utf8::downgrade($key, 1) or utf8::encode($key);
    return $key;
}

sub fetch {
    my ($self, $key) = @_;
    return $self->{map}->get(_bytes($key));
}

# One lock-free get per key rather than get_multi (one read lock for all): get marks
# each hit as used, which the map's LRU eviction needs to know.
sub fetch_multi_hashref {
    my ($self, $keys) = @_;
    my $m = $self->{map};
    return { map { ($_ => $m->get(_bytes($_))) } @$keys };
}

# $expires_in: only with CHI's expires_on_backend (seconds, maybe fractional or
# already past: the map expires an entry at the earliest one second after the write).
sub store {
    my ($self, $key, $data, $expires_in) = @_;
    my $ttl = 0;
    if (defined $expires_in) {
        $ttl = int $expires_in;
        $ttl++ if $ttl < $expires_in;
        $ttl = 1 if $ttl < 1;
        $ttl = $NEVER if $ttl > $NEVER;
    }
    return 1 if $self->{map}->put_ttl(_bytes($key), $data, $ttl);
    my ($len, $path, $space) =
        (length $data, $self->path_for_namespace($self->namespace), $self->{map}->arena_cap);
    Carp::croak("HashMap::Shared set failed: $len bytes do not fit in the string space of $path ($space bytes)");
}

sub remove {
    my ($self, $key) = @_;
    $self->{map}->remove(_bytes($key));
    return;
}

sub clear {
    my ($self) = @_;
    $self->{map}->clear;
    return;
}

sub get_keys {
    my ($self) = @_;
    my @keys = $self->{map}->keys;    # a list (CHI counts it in scalar context)
    return @keys;
}

sub get_namespaces {
    my ($self) = @_;
    opendir my $dh, $self->root_dir or return ();
    my @ns = map { $self->unescape_for_filename(substr $_, 0, -4) } grep { /\.shm\z/ } readdir $dh;
    closedir $dh;
    return @ns;
}

1;
__END__

=encoding utf8

=head1 NAME

CHI::Driver::HashMap::Shared - CHI driver for Data::HashMap::Shared maps

=head1 SYNOPSIS

    use CHI;

    my $cache = CHI->new(
        driver       => 'HashMap::Shared',
        root_dir     => '/dev/shm/myapp-cache',
        string_space => '64m',       # per namespace
    );
    $cache->set($url, { status => 200, body => $html }, '10 minutes');
    my $page = $cache->get($url);

=head1 DESCRIPTION

A L<CHI> driver that stores each namespace in a L<Data::HashMap::Shared::SS> map
file, so that every process on the machine that opens the same C<root_dir> shares the
cache: reads take no lock, writes take the map's short write lock, and a process
killed at any point leaves the map usable (see L<Data::HashMap::Shared/CRASH SAFETY>).

Each map is an LRU map: when its string space is full, a write evicts the least
recently used entries until the new one fits (see
L<Data::HashMap::Shared/SIZING A MAP>), so the cache never stops caching and never
grows past its budget. CHI's own size awareness (C<max_size>, C<discard_policy>) works
on top of that, as with any driver.

CHI serializes values (and keys that are references) itself; the driver stores the
serialized bytes under the key's bytes. Keys with characters above 0xFF are encoded
by CHI before they reach the driver; a key stored with and without Perl's UTF-8 flag
is the same entry. Expiry is CHI's: an expired entry is dropped when it is read, or
evicted like any other. With CHI's C<expires_on_backend>, the map also expires
entries itself (whole seconds, rounded up): they then disappear from C<get_keys> and
are reclaimed first.

This module ships with Data::HashMap::Shared and needs L<CHI> (Debian:
libchi-perl), which is not a prerequisite of the distribution.

=head1 CONSTRUCTOR OPTIONS

=over

=item root_dir

Directory of the map files, one per namespace (C<NAMESPACE.shm>, the name escaped as
CHI's File driver does). Created (with C<dir_create_mode>, default 0775) if missing.
Default: F<chi-driver-hashmap-shared> in the system's temporary directory. Put it on
a tmpfs (F</dev/shm>) for a cache that lives in memory only.

=item string_space

Bytes for keys and values in each namespace's map: a number, or a number followed by
C<k>, C<m> or C<g>; default C<16m>, at most 4294967295. The file is sparse: it takes
memory and disk only for what is stored.

=item max_entries

Entries in each namespace's map; default one per 128 bytes of C<string_space>
(131072 for the default). A cache of small values wants more.

=item lru_skip

See L<Data::HashMap::Shared/LRU>; default 0.

=item file_mode

Permission bits of a newly created map file; default 0600.

=back

The sizing options apply when a namespace's file is created: a process that opens an
existing file uses it as it was made. Remove the files (or the C<root_dir>) to resize.

=head1 METHODS

=over

=item hms_map

The L<Data::HashMap::Shared::SS> map of this handle's namespace, e.g. for its
statistics (C<< $cache->hms_map->stat_evictions >>).

=item path_for_namespace($namespace)

The file of a namespace.

=back

=head1 SEE ALSO

L<CHI>, L<CHI::Driver::FastMmap>, L<Data::HashMap::Shared>.

=cut
