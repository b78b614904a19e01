//! Typed hash maps in mmap'd shared memory: the engine of Data::HashMap::Shared.
//!
//! A map lives in a file, a memfd or an anonymous shared mapping and is used by many
//! processes at once through their own [`Map`] handles. Lookups are lock-free
//! (seqlock), counters update in place under a shared lock, everything else takes a
//! cross-process write lock. See `doc/DESIGN.md` for the file format, the lock
//! protocol and the C ABI (the crate in `rust-core/ffi`), which the Perl XS glue uses.
//!
//! # The Rust API
//!
//! [`Options`] says which map to open (one of the ten [`Variant`]s, how many entries,
//! where it lives, LRU and TTL options); [`Map::open`] creates it or attaches to an
//! existing one. Keys and values go in as [`In`] (an integer, or bytes with Perl's
//! UTF-8 flag) and come out as [`Out`], which borrows the handle's buffer until the
//! next call, or as an owned [`Value`]. Every operation returns a [`Result`]; errors
//! carry an [`ErrorKind`] and the message Perl users see.
//!
//! The files are the ones the Perl module uses, so a Rust program and Perl workers
//! can share one map: `Data::HashMap::Shared::SI->new($path, ...)` in Perl and
//! `Map::open(&Options::new(Variant::SI, ...).file(path))` here open the same map.
//! Operations take `&mut self` (a handle has its own output buffers and `each`
//! iterator): give each thread its own handle (opening the same file again is cheap)
//! rather than sharing one behind a mutex.
//!
//! ```
//! use hashmap_shared::{In, Map, Options, Out, Variant};
//!
//! let path = std::env::temp_dir().join(format!("hm-doc-{}.shm", std::process::id()));
//! let opts = Options::new(Variant::SI, 1000).file(&path);
//!
//! // One handle counts...
//! let mut writer = Map::open(&opts)?;
//! writer.incr_by(In::Str(b"hits", false), 1)?;
//! writer.incr_by(In::Str(b"hits", false), 41)?;
//!
//! // ...and another (in this process here; any process in practice) sees the result.
//! let mut reader = Map::open(&opts)?;
//! assert_eq!(reader.get(In::Str(b"hits", false))?, Some(Out::Int(42)));
//!
//! assert!(writer.unlink());
//! # Ok::<(), hashmap_shared::Error>(())
//! ```
//!
//! `rust-core/interop/src/main.rs` is a complete program that writes maps Perl reads
//! and reads maps Perl writes (the test `t/rust-interop.t` drives it).

// Everything public is documented; the internal layers are documented where they are
// specified: the file format and the lock protocol in doc/DESIGN.md and their modules, the
// C ABI in rust-core/ffi.
#![warn(missing_docs)]
// Helpers of the internal layers that only the tests and the C ABI crate call (through
// `internals`) look unused in a build without the feature; the build with it (CI, the
// Perl module) still reports code that nothing uses.
#![cfg_attr(not(feature = "internals"), allow(dead_code))]

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
    arena, backing, cformat, ctrl, cursor, handle, hash, layout, liveness, lock, lru, map, shard, strref,
    table, ttl, upgrade,
}
// Only macros, exported at the crate root (declared outside `internal_mods!`: exported
// macros from a macro-expanded module cannot be named by path).
mod ops;
pub mod error;
pub mod variant;

pub use backing::Backing;
pub use cursor::Cursor;
pub use error::{Error, ErrorKind, Result};
pub use handle::{Handle, Target};
pub use map::{In, Map, Options, Out, Stats, Value};
pub use shard::ShardSet;
pub use upgrade::upgrade_file;
pub use variant::{Kind, Variant};
