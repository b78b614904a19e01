//! Typed hash maps in mmap'd shared memory: the engine of Data::HashMap::Shared.
//!
//! A map lives in a file, a memfd or an anonymous shared mapping and is used by many
//! processes at once through their own [`Map`] handles. Lookups are lock-free
//! (seqlock), counters update in place under a shared lock, everything else takes a
//! cross-process write lock. See `doc/DESIGN.md` for the file format, the lock
//! protocol and the C ABI ([`ffi`]), which the Perl XS glue uses.
//!
//! ```no_run
//! use hashmap_shared::{In, Map, Options, Out, Variant};
//! let mut m = Map::open(&Options::new(Variant::SI, 1000).file("/tmp/counters.shm")).unwrap();
//! m.incr_by(In::Str(b"hits", false), 1).unwrap();
//! assert!(matches!(m.get(In::Str(b"hits", false)).unwrap(), Some(Out::Int(_))));
//! ```

pub mod arena;
pub mod backing;
pub mod cformat;
pub mod ctrl;
pub mod cursor;
pub mod error;
pub mod ffi;
pub mod hash;
pub mod layout;
pub mod lock;
pub mod lru;
pub mod map;
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
pub use variant::{Kind, Variant};
