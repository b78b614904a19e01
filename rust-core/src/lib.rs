//! Typed hash maps in mmap'd shared memory: the engine of Data::HashMap::Shared.
//!
//! A map lives in a file, a memfd or an anonymous shared mapping and is used by many
//! processes at once through their own [`Map`] handles. Lookups are lock-free
//! (seqlock), counters update in place under a shared lock, everything else takes a
//! cross-process write lock. See `doc/DESIGN.md` for the file format, the lock
//! protocol and the C ABI ([`ffi`]), which the Perl XS glue uses.
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

// Everything public is documented, except the internal layers below, which are
// documented where they are specified: the file format and the lock protocol in
// doc/DESIGN.md, the C ABI in include/hashmap_shared.h.
#![warn(missing_docs)]

pub mod arena;
pub mod backing;
#[allow(missing_docs)]
pub mod cformat;
pub mod ctrl;
pub mod cursor;
pub mod error;
#[allow(missing_docs)]
pub mod ffi;
pub mod hash;
#[allow(missing_docs)]
pub mod layout;
#[allow(missing_docs)]
pub mod lock;
pub mod lru;
pub mod map;
#[cfg(feature = "redis")]
pub mod remote;
pub mod shard;
pub mod strref;
pub mod table;
pub mod ttl;
pub mod upgrade;
pub mod variant;

pub use backing::Backing;
pub use error::{Error, ErrorKind, Result};
pub use cursor::Cursor;
pub use map::{In, Map, Options, Out, Stats, Value};
pub use shard::ShardSet;
#[cfg(feature = "redis")]
pub use remote::{Remote, RemoteCursor};
pub use variant::{Kind, Variant};
