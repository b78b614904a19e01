//! Hash maps in shared memory that many processes use at once, with keys and values
//! typed at compile time; the same files the Perl module Data::HashMap::Shared opens,
//! so a Rust service and Perl workers can share one map.
//!
//! ```
//! use hashmap_shared::{Bytes, Map, Options};
//!
//! let path = std::env::temp_dir().join(format!("hm-doc-{}.shm", std::process::id()));
//! let opts = Options::new(100_000).file(&path);
//!
//! // One handle counts...
//! let mut hits: Map<Bytes, i64> = Map::open(&opts)?;
//! hits.incr("/index.html", 1)?;
//! hits.incr("/index.html", 41)?;
//!
//! // ...and any other handle, in this process or another one, sees the result at once.
//! let mut reader: Map<Bytes, i64> = Map::open(&opts)?;
//! assert_eq!(reader.get("/index.html")?, Some(42));
//! assert!(hits.unlink());
//! # Ok::<(), hashmap_shared::Error>(())
//! ```
//!
//! A map lives in a file (usually on a tmpfs such as `/dev/shm`), an anonymous
//! mapping shared with forked children, or a memfd passed between processes. It has a
//! fixed maximum number of entries chosen when it is created, and optionally an LRU
//! bound (a cache that evicts) and a default time-to-live (entries that expire).
//! Lookups take no lock; counters update in place under a shared lock; other writes
//! take the map's write lock for the duration of one operation. A process killed at any
//! point, even while holding the lock, leaves a map that the next writer repairs.
//!
//! # Keys and values
//!
//! [`Map<K, V>`](Map) takes its key and value types from [`i16`], [`i32`], [`i64`] and
//! [`Bytes`] (the sealed trait [`Storable`]); integer keys and values have the same
//! width, which makes the ten pairs of the file format (Perl's ten classes):
//!
//! | `K` \ `V` | `i16`  | `i32`  | `i64` | `Bytes` |
//! |-----------|--------|--------|-------|---------|
//! | `i16`     | I16    |        |       | I16S    |
//! | `i32`     |        | I32    |       | I32S    |
//! | `i64`     |        |        | II    | IS      |
//! | `Bytes`   | SI16   | SI32   | SI    | SS      |
//!
//! The types are part of the file: opening a file that holds other types fails with
//! "PATH: variant mismatch (file=3, expected=10)", and a mixed-width pair such as
//! `Map<i16, i64>` does not compile.
//!
//! **Byte strings.** [`Bytes`] is an owned byte string; arguments can be any string or
//! byte string ([`Arg`]): `"text"`, `String`, `b"bytes"`, `&[u8]`, `Vec<u8>`. Keys are
//! identified by their bytes. Results come back owned ([`Map::get`]) or lent from the
//! handle's buffer without a copy ([`Map::get_ref`], [`Map::for_each`]). Strings up to
//! 7 bytes live in the slot; longer ones in the map's string arena
//! ([`Options::arena_cap`]), up to 1 GiB each.
//!
//! **Perl's UTF-8 flag.** Perl marks each string as characters or bytes, and the map
//! stores that flag with every string key and value. Rust code rarely needs it: a `str`
//! argument is stored as characters, a byte slice as bytes, so Perl reads what Rust
//! meant; and a string Perl stored comes back as [`Bytes`] whose bytes are its UTF-8
//! encoding (for characters) or its raw bytes, with the flag in
//! [`Bytes::utf8_flag`]. Passing a [`Bytes`] or [`BytesRef`] stores its flag as it is,
//! so values copied from one map to another keep what Perl wrote. The flag never
//! affects comparisons.
//!
//! **Integers** are stored at the width of their type. Counters ([`Map::incr`]) wrap
//! around at that width (two's complement: adding 1 to `i16::MAX` gives `i16::MIN`).
//! Perl passes wider numbers and the map keeps their low bits (70000 stored in a 16-bit
//! field reads 4464), so a Rust reader always sees a value of its type.
//!
//! # Where a map lives
//!
//! [`Options`] says where and how big: [`Options::new`] an anonymous map (shared with
//! children forked afterwards), then [`file`](Options::file) for a file,
//! [`memfd`](Options::memfd) for a memfd whose descriptor can be passed on
//! ([`Map::memfd`], [`Map::from_fd`]), or [`sharded`](Options::sharded) for a shard
//! set. Creating is the first open; every later open, from any process, attaches to the
//! same map (its size and options are those it was created with). A frozen file can be
//! opened read-only by anyone ([`Map::freeze`], [`Map::open_readonly`]).
//!
//! # Handles, threads and processes
//!
//! A [`Map`] is a handle on a map; methods take `&mut self` because a handle has its
//! own buffers and cursors. A handle is [`Send`]: give each thread its own (opening a
//! map again is cheap and shares the same memory) rather than one handle behind a
//! mutex. Every write is visible to every handle at once; writes of one key are
//! ordered (they take the lock), and a read never sees half a write.
//!
//! # Reading and writing
//!
//! [`get`](Map::get), [`contains_key`](Map::contains_key), [`put`](Map::put),
//! [`remove`](Map::remove) do what a `HashMap` does. A map has a fixed size, so a write
//! can find no room: [`put`](Map::put) and the other inserting calls then fail with
//! [`ErrorKind::Full`]. Conditional writes return whether they wrote
//! ([`add`](Map::add): only a new key; [`update`](Map::update): only an existing one;
//! [`cas`](Map::cas): only when the value is the expected one).
//!
//! Read-modify-write without a lost update and with one lookup:
//! [`incr`](Map::incr), [`store_max`](Map::store_max) and [`store_min`](Map::store_min)
//! for integer values (atomic, in place), and for any value
//! [`get_or_insert_with`](Map::get_or_insert_with), [`update_with`](Map::update_with)
//! and [`alter`](Map::alter), whose closure sees the current value under the write
//! lock.
//!
//! # LRU caches
//!
//! [`Options::lru`] bounds the number of entries: inserting a new key into a full map
//! first evicts the least recently used entry (with a second chance for entries read
//! since they were last passed over). Reads mark entries as used without a lock; writes
//! move them to the front. [`Map::pop_oldest`] takes the least recently used entry, so
//! an LRU map also works as a queue. [`Stats::evictions`] counts evictions.
//!
//! ```
//! use hashmap_shared::{Bytes, Map, Options};
//!
//! let mut cache: Map<Bytes, Bytes> = Map::open(&Options::new(1000).lru(2, 0))?;
//! cache.put("a", "1")?;
//! cache.put("b", "2")?;
//! cache.get("a")?;             // "a" was used: "b" is now the oldest
//! cache.put("c", "3")?;        // the map holds 2 entries: "b" goes
//! assert!(cache.contains_key("a")? && !cache.contains_key("b")?);
//! assert_eq!(cache.stats().evictions, 1);
//! # Ok::<(), hashmap_shared::Error>(())
//! ```
//!
//! # Expiring entries (TTL)
//!
//! [`Options::ttl`] gives every new entry a lifetime in seconds; an entry can also get
//! its own ([`put_ttl`](Map::put_ttl), [`set_ttl`](Map::set_ttl), 0 meaning never).
//! Expiry is by the wall clock in whole seconds, and lazy: an expired entry reads as
//! absent at once and is reclaimed by the next write that meets it, by
//! [`flush_expired`](Map::flush_expired), or in bounded steps by
//! [`flush_expired_partial`](Map::flush_expired_partial). Overwriting an entry, or
//! counting on it, restarts its lifetime at the default (a sliding expiry) unless it
//! is permanent. LRU and TTL combine.
//!
//! # Sharding
//!
//! One map has one write lock. [`Options::sharded`] spreads the keys over `N`
//! independent maps (files `PREFIX.0` to `PREFIX.N-1`) behind one handle: a key always
//! goes to the same shard, so operations on one key lock only its shard and writers of
//! different shards run in parallel. Everything else works across the set: iteration
//! walks the shards in order, [`clear`](Map::clear) and [`flush_expired`](Map::flush_expired)
//! apply to each, [`stats`](Map::stats) sums them. Batches ([`put_many`](Map::put_many)
//! and friends) are atomic per shard only.
//!
//! ```
//! use hashmap_shared::{Bytes, Map, Options};
//!
//! let prefix = std::env::temp_dir().join(format!("hm-doc-shards-{}", std::process::id()));
//! let mut seen: Map<Bytes, i64> = Map::open(&Options::new(10_000).sharded(&prefix, 8))?;
//! for user in ["ada", "grace", "barbara"] {
//!     seen.put(user, 1)?;
//! }
//! assert_eq!(seen.len(), 3);
//! assert_eq!(seen.stats().max_entries, 8 * Map::<Bytes, i64>::open(&Options::new(10_000))?.stats().max_entries);
//! assert!(seen.unlink()); // all eight files
//! # Ok::<(), hashmap_shared::Error>(())
//! ```
//!
//! # Iterating
//!
//! [`Map::iter`], [`keys`](Map::keys) and [`values`](Map::values) are iterators (a
//! cursor taking the read lock for each step, so writers are never held up for long);
//! other handles may write meanwhile, and [`Iter`] says what that means for the
//! entries returned: removals never make it skip or repeat an entry, but a resize of
//! the table restarts the walk of the shard (entries may come twice).
//! [`for_each`](Map::for_each) and [`to_vec`](Map::to_vec) read each shard under one
//! read lock instead: a consistent snapshot.
//!
//! # Errors
//!
//! Every operation returns a [`Result`]. An [`Error`] has a coarse [`ErrorKind`], the
//! message the Perl module shows for the same failure ([`Error::message`]), and for a
//! failed system call the [`std::io::Error`] behind it ([`std::error::Error::source`],
//! [`Error::raw_os_error`]).
//!
//! # Crash safety and durability
//!
//! Every write publishes its change with a single store after the data it points to,
//! so a process killed at any point loses at most the write in progress; the next
//! writer finds the dead writer's lock, repairs what it left half-done and counts it in
//! [`Stats::recoveries`]. Writes reach other processes at once through the shared
//! memory and reach the disk when the kernel writes the pages back, or at
//! [`Map::sync`].
//!
//! # Sharing a map with Perl
//!
//! Perl opens the file with the class [`Map::perl_class`] names:
//!
//! ```perl
//! use Data::HashMap::Shared::SI;
//! my $hits = Data::HashMap::Shared::SI->new('/dev/shm/hits', 100_000);
//! $hits->incr('/index.html');
//! ```
//!
//! and the Rust side `Map::<Bytes, i64>::open(&Options::new(100_000).file("/dev/shm/hits"))`.
//! Both ends see each other's writes at once and count exactly. Whoever opens the file
//! first creates it with its sizing; files written by the C implementation of the Perl
//! module must first be converted with [`upgrade_file`].
//!
//! # Maps in Redis
//!
//! With the cargo feature `redis`, a path that is a Redis URL opens a map that lives in
//! Redis (or a shard set spread over a Redis Cluster's masters), so processes on
//! several machines share it; `Data::HashMap::Shared::SI->new('redis://...', ...)` opens
//! the same map from Perl. Every operation works the same, each one atomic on the
//! server and one round trip:
//!
//! ```no_run
//! use hashmap_shared::{Bytes, ErrorKind, Map, Options};
//!
//! // redis://[user:pass@]host:port[,host:port...]/NAME[?options],
//! // redis+unix:///path/to/redis.sock?name=NAME, rediss:// (feature redis-tls).
//! let opts = Options::new(100_000).file("redis://10.0.0.1:6379/hits");
//! let mut hits: Map<Bytes, i64> = Map::open(&opts)?;     // on every machine: one map
//! hits.incr("/index.html", 1)?;
//! assert!(hits.try_len()? >= 1);                          // len() panics if Redis is down
//!
//! // The closure of update_with / alter runs here, between a read and a conditional
//! // write: when another handle changed the entry meanwhile, nothing is written.
//! match hits.update_with("/index.html", |n| n * 2) {
//!     Err(e) if e.kind() == ErrorKind::Conflict => { /* read again and retry */ }
//!     r => { r?; }
//! }
//!
//! // A shard set over a cluster's masters.
//! let seeds = "redis://10.0.0.1:7000,10.0.0.2:7000,10.0.0.3:7000/big";
//! let mut big: Map<i64, i64> = Map::open(&Options::new(1_000_000).sharded(seeds, 16))?;
//! big.put(1, 2)?;
//! # Ok::<(), hashmap_shared::Error>(())
//! ```
//!
//! What differs from a local map (statistics that can fail, hence [`Map::try_stats`]
//! and [`Iter::take_error`]; iteration order; sizing figures; durability across a
//! failover) is listed in the Perl documentation under "Differences on Redis".
//!
//! # Names
//!
//! The map is [`Map<K, V>`](Map), like `std`'s `HashMap<K, V>`, because that is what it
//! is to a Rust program; the Perl class names (SI, SS, ...) are in
//! [`Map::perl_class`] for those who share with Perl. The string type is [`Bytes`]
//! because what a map stores is bytes (Perl strings are not always UTF-8), with
//! conversions to text. Where an operation means what `std` means the name is `std`'s
//! ([`get`](Map::get), [`remove`](Map::remove) returning the value,
//! [`contains_key`](Map::contains_key), [`iter`](Map::iter)); where a map in shared
//! memory differs the name says how ([`put`](Map::put), which can fail for lack of
//! room, rather than `insert`, which cannot; [`pop_oldest`](Map::pop_oldest)).
//!
//! `examples/` in the crate has three complete programs: a counter shared with Perl,
//! an LRU cache, and a sharded set.

// Everything public is documented; the internal layers are documented where they are
// specified: the file format and the lock protocol in doc/DESIGN.md and their modules, the
// C ABI in rust-core/ffi.
#![warn(missing_docs)]
// Helpers of the internal layers that only the tests and the C ABI crate call (through
// `internals`) look unused in a build without the feature; the build with it (CI, the
// Perl module) still reports code that nothing uses.
#![cfg_attr(not(feature = "internals"), allow(dead_code))]

/// A function that is `pub` (hidden from the docs) with the `internals` feature and
/// `pub(crate)` without it: what the C ABI crate and the engine's tests need of a type
/// of the public API, without making it part of the API.
macro_rules! internal_pub {
    ($(#[$m:meta])* fn $name:ident $($rest:tt)*) => {
        #[cfg(feature = "internals")]
        #[doc(hidden)]
        $(#[$m])*
        pub fn $name $($rest)*
        #[cfg(not(feature = "internals"))]
        $(#[$m])*
        pub(crate) fn $name $($rest)*
    };
}

/// Declares the engine's internal layers: public (hidden from the docs) with the
/// `internals` feature, which the C ABI crate and the engine's own tests and benches turn
/// on; private otherwise, so that they are not part of the API.
macro_rules! internal_mods {
    ($($m:ident),* $(,)?) => {$(
        #[cfg(feature = "internals")]
        #[doc(hidden)]
        pub mod $m;
        #[cfg(not(feature = "internals"))]
        mod $m;
    )*};
}

internal_mods! {
    arena, backing, cformat, ctrl, cursor, handle, hash, layout, liveness, lock, lru, map, shard,
    strref, table, ttl, upgrade, value, variant,
}
// Only macros, exported at the crate root (declared outside `internal_mods!`: exported
// macros from a macro-expanded module cannot be named by path).
mod ops;
mod error;
mod options;
mod typed;
/// Maps in Redis / Redis Cluster (cargo feature `redis`): what opens them and the
/// handle type behind a [`Map`] on a Redis URL. Internal like the other layers.
#[cfg(all(feature = "redis", feature = "internals"))]
#[doc(hidden)]
pub mod remote;
#[cfg(all(feature = "redis", not(feature = "internals")))]
mod remote;

pub use error::{Error, ErrorKind, Result};
pub use map::Stats;
pub use options::Options;
pub use typed::{Arg, Bytes, BytesRef, Int, Iter, Keys, Map, Storable, Values};
pub use upgrade::upgrade_file;

/// The untyped layer under [`Map`]: keys and values as [`In`](raw::In) /
/// [`Out`](raw::Out), the variant chosen at run time. For the C ABI crate and the
/// engine's own tests; not part of the API.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod raw {
    pub use crate::backing::Backing;
    pub use crate::cursor::Cursor;
    pub use crate::handle::{Handle, Target};
    pub use crate::map::{Change, Map, Upserted};
    pub use crate::shard::ShardSet;
    pub use crate::value::{In, Out, Value};
    pub use crate::variant::{Kind, Variant};
    #[cfg(feature = "redis")]
    pub use crate::remote::{Remote, RemoteCursor};
}
