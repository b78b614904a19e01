//! [`Options`]: where a map lives and how big it is, for every way of opening one.

use crate::backing::Backing;
use crate::error::{Error, Result};
use crate::layout::ShardTag;
use crate::variant::Variant;
use std::ffi::CString;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// How to open a map: where it lives and, when it is created, how big it is and
/// whether it has an LRU bound and a TTL.
///
/// A map is created by the first open and attached to by every later one, from any
/// process. Sizing, LRU and TTL options only matter when the map is created: an
/// existing map keeps the geometry and options it was created with (its key and value
/// types must match, see [`Map::open`](crate::Map::open)).
///
/// ```
/// use hashmap_shared::{Bytes, Map, Options};
///
/// // Anonymous (shared with children forked later), room for 10_000 entries, an LRU
/// // bound of 5_000 entries with 10% of promotions skipped, entries expiring after 60 s.
/// let m: Map<Bytes, Bytes> = Map::open(&Options::new(10_000).lru(5_000, 10).ttl(60))?;
/// assert!(m.has_lru() && m.has_ttl());
/// assert!(m.stats().max_entries >= 10_000);
/// # Ok::<(), hashmap_shared::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Options {
    /// The variant (the typed API sets it from its key and value types).
    pub(crate) variant: Option<Variant>,
    /// Backing kind.
    pub(crate) backing: Backing,
    /// File: the path (a shard set: the prefix); Memfd: the name (None = "hashmap").
    pub(crate) path: Option<CString>,
    /// The path or name given contained a NUL byte: opening fails with this message.
    pub(crate) bad_path: Option<&'static str>,
    /// Fd backing: the descriptor to duplicate (the caller keeps its own).
    pub(crate) fd: RawFd,
    /// A shard set of this many shards (files `path.0`, `path.1`, ...).
    pub(crate) shards: Option<u64>,
    /// Sizing hint: the map guarantees at least this many entries (up to 2^31*7/8).
    pub(crate) max_entries: u64,
    /// LRU bound (0 = no LRU).
    pub(crate) max_size: u64,
    /// Default TTL in seconds (0 = no TTL support at all).
    pub(crate) ttl: u64,
    /// Percentage (0..=99) of LRU promotions skipped.
    pub(crate) lru_skip: u64,
    /// Arena bytes (0 = 128 per requested entry); clamped to 4096..=2^32-1.
    pub(crate) arena_cap: u64,
    /// Permission bits of a newly created file (default 0600).
    pub(crate) file_mode: u32,
    /// Set by shard.rs for the files of a shard set: the index, count and routing
    /// seed a newly created shard file records (None: a plain map, shard 0 of 1).
    pub(crate) shard: Option<ShardTag>,
}

impl Options {
    /// An anonymous map with room for at least `max_entries` entries: shared memory
    /// that only this process and the children it forks afterwards see. Call
    /// [`file`](Options::file), [`sharded`](Options::sharded) or
    /// [`memfd`](Options::memfd) to put it somewhere else.
    ///
    /// Up to 1_879_048_192 entries (2^31 * 7/8); larger values fail at open.
    pub fn new(max_entries: u64) -> Options {
        Options {
            variant: None,
            backing: Backing::Anon,
            path: None,
            bad_path: None,
            fd: -1,
            shards: None,
            max_entries,
            max_size: 0,
            ttl: 0,
            lru_skip: 0,
            arena_cap: 0,
            file_mode: 0o600,
            shard: None,
        }
    }

    /// A map of `variant` (the untyped layer: the typed API sets the variant itself).
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn of(variant: Variant, max_entries: u64) -> Options {
        Options::new(max_entries).with_variant(variant)
    }

    /// The same options for `variant`.
    pub(crate) fn with_variant(mut self, variant: Variant) -> Options {
        self.variant = Some(variant);
        self
    }

    /// Backed by the file at `path`, created if missing (with mode
    /// [`file_mode`](Options::file_mode)), attached to otherwise. Perl opens the same
    /// file with `Data::HashMap::Shared::<CLASS>->new($path, ...)`.
    pub fn file(mut self, path: impl AsRef<Path>) -> Options {
        self.backing = Backing::File;
        self.shards = None;
        self.set_path(path.as_ref().as_os_str().as_bytes(), "path contains a NUL byte");
        self
    }

    /// A shard set: `shards` independent maps in the files `PREFIX.0`, `PREFIX.1`, ...
    /// behind one handle, each sized by these options (so the set holds about `shards`
    /// times `max_entries`). A key always lives in the same shard, and operations on
    /// one key lock only its shard, so writers of different shards do not wait for each
    /// other. `shards` is rounded up to a power of two (0 counts as 1), at most 4096;
    /// every open of a set must use the same count (a different one is refused). Perl:
    /// `Data::HashMap::Shared::<CLASS>->new_sharded($prefix, $shards, ...)`.
    pub fn sharded(mut self, prefix: impl AsRef<Path>, shards: u64) -> Options {
        self.backing = Backing::File;
        self.shards = Some(shards);
        self.set_path(prefix.as_ref().as_os_str().as_bytes(), "path contains a NUL byte");
        self
    }

    /// Backed by a new memfd named `name` (the name only shows in `/proc/PID/fd`). Its
    /// descriptor ([`Map::memfd`](crate::Map::memfd)) can be inherited by children or
    /// sent over a Unix socket; the receiver attaches with
    /// [`Map::from_fd`](crate::Map::from_fd).
    pub fn memfd(mut self, name: &str) -> Options {
        self.backing = Backing::Memfd;
        self.shards = None;
        self.set_path(name.as_bytes(), "memfd name contains a NUL byte");
        self
    }

    /// Attached through a duplicate of descriptor `fd` (the untyped layer; the typed
    /// API takes a `BorrowedFd`).
    pub(crate) fn fd(mut self, fd: RawFd) -> Options {
        self.backing = Backing::Fd;
        self.shards = None;
        self.fd = fd;
        self
    }

    /// Attached through a duplicate of descriptor `fd`, which must stay open until the
    /// map is opened (the untyped layer, for the C ABI and the tests).
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn from_fd(self, fd: RawFd) -> Options {
        self.fd(fd)
    }

    /// The backing and path as the C ABI passes them.
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn backing(mut self, backing: Backing, path: Option<CString>, fd: RawFd) -> Options {
        self.backing = backing;
        self.path = path;
        self.bad_path = None;
        self.fd = fd;
        self
    }

    /// The path (a shard set's prefix, a memfd's name) as given, if any.
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn path_cstr(&self) -> Option<&std::ffi::CStr> {
        self.path.as_deref()
    }

    fn set_path(&mut self, bytes: &[u8], nul: &'static str) {
        match CString::new(bytes) {
            Ok(p) => {
                self.path = Some(p);
                self.bad_path = None;
            }
            Err(_) => {
                self.path = None;
                self.bad_path = Some(nul);
            }
        }
    }

    /// An LRU cache: at most `max_size` entries; inserting a new key into a full map
    /// evicts the least recently used entry first (second chance: an entry read since
    /// it was last passed over gets one more round), and so does a write that finds the
    /// string space full. `lru_skip` (0..=99) is the
    /// percentage of promotions skipped on reads, which saves writes to shared memory on
    /// hot keys at the cost of a less exact order.
    pub fn lru(mut self, max_size: u64, lru_skip: u64) -> Options {
        self.max_size = max_size;
        self.lru_skip = lru_skip;
        self
    }

    /// Entries expire `secs` seconds after they are written (unless written with their
    /// own TTL); `0` means no TTL support at all. Expired entries read as absent and
    /// are reclaimed lazily (or by [`Map::flush_expired`](crate::Map::flush_expired)).
    pub fn ttl(mut self, secs: u64) -> Options {
        self.ttl = secs;
        self
    }

    /// Bytes for strings longer than 7 bytes (shorter ones live in the slot): 0, the
    /// default, means 128 per entry of `max_entries`; clamped to 4096..=2^32-1.
    pub fn arena_cap(mut self, bytes: u64) -> Options {
        self.arena_cap = bytes;
        self
    }

    /// Permission bits of a newly created file (default `0o600`), applied exactly,
    /// whatever the umask.
    pub fn file_mode(mut self, mode: u32) -> Options {
        self.file_mode = mode;
        self
    }

    /// The variant, or the error of options that cannot be opened (a NUL in the path).
    pub(crate) fn check(&self) -> Result<Variant> {
        if let Some(msg) = self.bad_path {
            return Err(Error::arg(msg));
        }
        self.variant.ok_or_else(|| Error::arg("no variant given"))
    }
}
