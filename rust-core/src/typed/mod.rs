//! The typed API: [`Map<K, V>`], a thin layer over the engine's [`Handle`] that fixes
//! the key and value types at compile time.
//!
//! Every method converts its arguments to the engine's untyped ones and the results
//! back; which backend serves the handle (one map, a shard set) is the handle's
//! business, so each of them gets the whole typed API.

mod iter;
mod types;

pub use self::iter::{Iter, Keys, Values};
pub use self::types::{Arg, Bytes, BytesRef, Int, Storable};

use crate::error::{Error, ErrorKind, Result};
use crate::handle::Handle;
use crate::map::{Change, Stats, Upserted};
use crate::options::Options;
use crate::value::{In, Out};
use crate::variant::{Kind, Variant};
use std::ffi::{CString, OsStr};
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The variant of a key kind and a value kind (the ten pairs are the ten variants).
const fn variant_of(k: Kind, v: Kind) -> Variant {
    match (k, v) {
        (Kind::I16, Kind::I16) => Variant::I16,
        (Kind::I32, Kind::I32) => Variant::I32,
        (Kind::I64, Kind::I64) => Variant::II,
        (Kind::I16, Kind::Str) => Variant::I16S,
        (Kind::I32, Kind::Str) => Variant::I32S,
        (Kind::I64, Kind::Str) => Variant::IS,
        (Kind::Str, Kind::I16) => Variant::SI16,
        (Kind::Str, Kind::I32) => Variant::SI32,
        (Kind::Str, Kind::I64) => Variant::SI,
        (Kind::Str, Kind::Str) => Variant::SS,
        // Mixed integer widths: no such variant.
        _ => panic!("integer keys and values of different widths have no variant: use i16/i16, i32/i32 or i64/i64"),
    }
}

/// The Perl class of each variant, in id order.
const PERL_CLASSES: [&str; 10] = [
    "Data::HashMap::Shared::I16",
    "Data::HashMap::Shared::I32",
    "Data::HashMap::Shared::II",
    "Data::HashMap::Shared::I16S",
    "Data::HashMap::Shared::I32S",
    "Data::HashMap::Shared::IS",
    "Data::HashMap::Shared::SI16",
    "Data::HashMap::Shared::SI32",
    "Data::HashMap::Shared::SI",
    "Data::HashMap::Shared::SS",
];

/// The error of a write that found no room (the counters' words).
fn full() -> Error {
    Error::new(ErrorKind::Full, "the map is full")
}

fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::arg("path contains a NUL byte"))
}

/// A hash map in shared memory with keys of type `K` and values of type `V`, each one
/// of [`i16`], [`i32`], [`i64`] or [`Bytes`] (integer keys and values have the same
/// width).
///
/// A `Map` is a handle: any number of handles, in this process or others, use one
/// map at the same time, and every one sees the others' writes at once. Lookups take
/// no lock, counters update in place under a shared lock, other writes take the map's
/// write lock for a moment. Methods take `&mut self` because a handle has its own
/// buffers and cursors: give each thread its own handle (opening a map again is
/// cheap), rather than one handle behind a mutex.
///
/// The module docs of the crate are a guide; the types match Perl's classes as
/// [`perl_class`](Map::perl_class) says.
///
/// ```
/// use hashmap_shared::{Bytes, Map, Options};
///
/// let path = std::env::temp_dir().join(format!("hm-doc-map-{}.shm", std::process::id()));
/// let opts = Options::new(1000).file(&path);
///
/// let mut names: Map<i64, Bytes> = Map::open(&opts)?;
/// names.put(1, "Ada")?;
/// names.put(2, b"\xff\xfe raw bytes")?;
///
/// // Another handle (any process, usually) sees the entries.
/// let mut other: Map<i64, Bytes> = Map::open(&opts)?;
/// assert_eq!(other.get(1)?.unwrap(), "Ada");
/// assert_eq!(other.len(), 2);
///
/// // The file holds an i64 -> bytes map: other types are refused.
/// let err = Map::<Bytes, Bytes>::open(&opts).unwrap_err();
/// assert_eq!(err.to_string(), format!("{}: variant mismatch (file=6, expected=10)", path.display()));
/// names.unlink();
/// # Ok::<(), hashmap_shared::Error>(())
/// ```
pub struct Map<K: Storable, V: Storable> {
    h: Handle,
    _t: PhantomData<fn(K, V)>,
}

impl<K: Storable, V: Storable> Map<K, V> {
    /// The variant these types make (a compile-time error for mixed integer widths).
    const VARIANT: Variant = variant_of(K::KIND, V::KIND);

    fn wrap(h: Handle) -> Self {
        Map { h, _t: PhantomData }
    }

    /// Opens the map `options` describes, creating it if it does not exist yet.
    ///
    /// Attaching to an existing map checks that it holds these key and value types; a
    /// map of other types is refused with "PATH: variant mismatch (file=F,
    /// expected=E)" ([`ErrorKind::Format`]; the numbers are the variant ids of
    /// [`perl_class`](Map::perl_class)'s table). Files that are not maps, damaged
    /// headers and files written by the C implementation (see
    /// [`upgrade_file`](crate::upgrade_file)) are refused with the messages Perl
    /// shows. See [`Options`] for where a map can live.
    pub fn open(options: &Options) -> Result<Self> {
        let o = options.clone().with_variant(Self::VARIANT);
        o.check()?;
        let h = match o.shards {
            Some(n) => {
                let prefix = o.path.clone().ok_or_else(|| Error::arg("a shard set needs a path prefix"))?;
                Handle::open_sharded(&prefix, n, &o)?
            }
            None => Handle::open(&o)?,
        };
        Ok(Self::wrap(h))
    }

    /// Opens the frozen map file at `path` read-only: mapped read-only, no lock ever
    /// taken, nothing ever written, so any number of readers can share it (and the
    /// file may belong to another user and be mode 0444). A map that is not frozen is
    /// refused; a producer freezes it with [`freeze`](Map::freeze). Writes return
    /// [`ErrorKind::Frozen`]. Only single files (each shard of a set can be opened on
    /// its own).
    pub fn open_readonly(path: impl AsRef<Path>) -> Result<Self> {
        Ok(Self::wrap(Handle::open_readonly(&c_path(path.as_ref())?, Self::VARIANT)?))
    }

    /// Attaches to the map in `fd` (a memfd from [`Options::memfd`], received from
    /// another process, or a regular file holding a map), through a duplicate of the
    /// descriptor: the caller keeps `fd`.
    ///
    /// ```
    /// use hashmap_shared::{Map, Options};
    /// use std::os::fd::AsFd;
    ///
    /// let mut a: Map<i64, i64> = Map::open(&Options::new(100).memfd("example"))?;
    /// a.put(1, 10)?;
    /// // The descriptor could also be inherited by a child or sent over a Unix socket.
    /// let fd = a.memfd().unwrap().try_clone_to_owned().unwrap();
    /// let mut b: Map<i64, i64> = Map::from_fd(fd.as_fd())?;
    /// assert_eq!(b.get(1)?, Some(10));
    /// # Ok::<(), hashmap_shared::Error>(())
    /// ```
    pub fn from_fd(fd: BorrowedFd<'_>) -> Result<Self> {
        let o = Options::new(0).with_variant(Self::VARIANT).fd(fd.as_raw_fd());
        Ok(Self::wrap(Handle::open(&o)?))
    }

    /// The Perl class that opens the same maps: `Map<Bytes, i64>` is
    /// `"Data::HashMap::Shared::SI"`.
    ///
    /// | `K` \ `V` | `i16`  | `i32`  | `i64` | `Bytes` |
    /// |-----------|--------|--------|-------|---------|
    /// | `i16`     | I16 (1) |       |       | I16S (4) |
    /// | `i32`     |        | I32 (2) |      | I32S (5) |
    /// | `i64`     |        |        | II (3) | IS (6) |
    /// | `Bytes`   | SI16 (7) | SI32 (8) | SI (9) | SS (10) |
    ///
    /// (The numbers are the ids that "variant mismatch" messages show.)
    pub fn perl_class() -> &'static str {
        PERL_CLASSES[Self::VARIANT.id() as usize - 1]
    }

    // -- reads -------------------------------------------------------------------------

    /// The value of `key`, or None. Takes no lock. Expired entries read as absent; on
    /// an LRU map a hit marks the entry as recently used.
    #[inline]
    pub fn get(&mut self, key: impl Arg<K>) -> Result<Option<V>> {
        if K::KIND.is_int() && V::KIND.is_int() {
            // The integer fast path (no untyped values at all).
            let k = match key.arg() {
                In::Int(k) => k,
                In::Str(..) => unreachable!("integer keys"),
            };
            return Ok(self.h.get_int(k)?.map(|v| V::from_out(Out::Int(v))));
        }
        Ok(self.h.get(key.arg())?.map(V::from_out))
    }

    /// [`get`](Map::get) lending the value instead of copying it into an owned `V`:
    /// for [`Bytes`] values a [`BytesRef`] into this handle's buffer, valid until the
    /// handle is used again.
    ///
    /// ```
    /// use hashmap_shared::{Bytes, Map, Options};
    ///
    /// let mut m: Map<Bytes, Bytes> = Map::open(&Options::new(100))?;
    /// m.put("greeting", "grüß dich")?;
    /// let v = m.get_ref("greeting")?.unwrap();
    /// assert_eq!(v.to_str(), Ok("grüß dich"));
    /// assert!(v.utf8_flag()); // stored from a str: Perl reads characters
    /// # Ok::<(), hashmap_shared::Error>(())
    /// ```
    #[inline]
    pub fn get_ref(&mut self, key: impl Arg<K>) -> Result<Option<V::Ref<'_>>> {
        Ok(self.h.get(key.arg())?.map(V::ref_from_out))
    }

    /// Is `key` present (and not expired)? Takes no lock and does not count as a use
    /// (LRU).
    pub fn contains_key(&mut self, key: impl Arg<K>) -> Result<bool> {
        self.h.exists(key.arg())
    }

    /// The values of `keys`, in order (None for missing ones), read under one read
    /// lock (a consistent snapshot; on a shard set, per key). Does not count as a use
    /// (LRU).
    pub fn get_many<A: Arg<K>>(&mut self, keys: &[A]) -> Result<Vec<Option<V>>> {
        let ins: Vec<In<'_>> = keys.iter().map(Arg::arg).collect();
        let mut out = Vec::with_capacity(keys.len());
        self.h.get_multi_with(&ins, |_, v| out.push(v.map(V::from_out)))?;
        Ok(out)
    }

    // -- writes ------------------------------------------------------------------------

    /// Inserts or overwrites. An overwrite counts as a use (LRU) and resets the entry's
    /// expiry to the default unless it is permanent (TTL); on an LRU map at its bound a
    /// new key evicts the least recently used entry first.
    ///
    /// Fails with [`ErrorKind::Full`] when there is no room: a new key in a map that
    /// holds `max_entries` entries (plain maps; LRU maps evict instead), or a string
    /// that does not fit in the arena (an overwritten value is then kept).
    #[inline]
    pub fn put(&mut self, key: impl Arg<K>, value: impl Arg<V>) -> Result<()> {
        if self.h.put(key.arg(), value.arg())? {
            Ok(())
        } else {
            Err(full())
        }
    }

    /// Inserts only when `key` is absent (an expired entry counts as absent): true
    /// when it inserted. False when the key is present, and also when there was no
    /// room for it (as [`put`](Map::put) would fail).
    pub fn add(&mut self, key: impl Arg<K>, value: impl Arg<V>) -> Result<bool> {
        self.h.add(key.arg(), value.arg())
    }

    /// Overwrites only when `key` is present (and not expired): true when it did.
    /// False when the key is absent, and also when a new string value did not fit (the
    /// old one is kept). Counts as a use like [`put`](Map::put).
    pub fn update(&mut self, key: impl Arg<K>, value: impl Arg<V>) -> Result<bool> {
        self.h.update(key.arg(), value.arg())
    }

    /// [`put`](Map::put) returning the value it replaced: None for a new key (and when
    /// nothing could be stored).
    pub fn swap(&mut self, key: impl Arg<K>, value: impl Arg<V>) -> Result<Option<V>> {
        Ok(self.h.swap(key.arg(), value.arg())?.map(V::from_out))
    }

    /// Removes `key` and returns its value (None when it was absent or expired).
    pub fn remove(&mut self, key: impl Arg<K>) -> Result<Option<V>> {
        Ok(self.h.take(key.arg())?.map(V::from_out))
    }

    /// Removes `key` without reading its value: true when it was present (expired or
    /// not).
    pub fn delete(&mut self, key: impl Arg<K>) -> Result<bool> {
        self.h.remove(key.arg())
    }

    /// Sets the value to `desired` if it equals `expected` (strings by their bytes;
    /// the stored UTF-8 flag becomes `desired`'s): true when it did. Counts as a use
    /// like [`put`](Map::put).
    ///
    /// ```
    /// use hashmap_shared::{Bytes, Map, Options};
    ///
    /// let mut jobs: Map<i64, Bytes> = Map::open(&Options::new(100))?;
    /// jobs.put(1, "idle")?;
    /// assert!(jobs.cas(1, "idle", "busy")?);  // this worker claimed job 1...
    /// assert!(!jobs.cas(1, "idle", "busy")?); // ...and no other can
    /// assert_eq!(jobs.get(1)?.unwrap(), "busy");
    /// # Ok::<(), hashmap_shared::Error>(())
    /// ```
    pub fn cas(&mut self, key: impl Arg<K>, expected: impl Arg<V>, desired: impl Arg<V>) -> Result<bool> {
        self.h.cas(key.arg(), expected.arg(), desired.arg())
    }

    /// Removes the entry if its value equals `expected` (strings by their bytes);
    /// returns the removed value.
    pub fn remove_if_eq(&mut self, key: impl Arg<K>, expected: impl Arg<V>) -> Result<Option<V>> {
        Ok(self.h.cas_take(key.arg(), expected.arg())?.map(V::from_out))
    }

    /// The value of `key`, after inserting `value` when it was absent. A present entry
    /// counts as a use (LRU) and gets its expiry reset (TTL). Fails with
    /// [`ErrorKind::Full`] when a new key finds no room.
    pub fn get_or_insert(&mut self, key: impl Arg<K>, value: impl Arg<V>) -> Result<V> {
        self.h.get_or_set(key.arg(), value.arg())?.map(V::from_out).ok_or_else(full)
    }

    /// [`get_or_insert`](Map::get_or_insert) computing the value only when the key is
    /// absent, with one lookup under the write lock (no other process can insert the
    /// key in between). `f` runs under the map's write lock: keep it short.
    ///
    /// ```
    /// use hashmap_shared::{Bytes, Map, Options};
    ///
    /// let mut cache: Map<Bytes, Bytes> = Map::open(&Options::new(100))?;
    /// let v = cache.get_or_insert_with("/about", || Bytes::from("<h1>About</h1>"))?;
    /// assert_eq!(v, "<h1>About</h1>");
    /// let again = cache.get_or_insert_with("/about", || unreachable!("cached"))?;
    /// assert_eq!(again, v);
    /// # Ok::<(), hashmap_shared::Error>(())
    /// ```
    pub fn get_or_insert_with(&mut self, key: impl Arg<K>, f: impl FnOnce() -> V) -> Result<V> {
        let (done, v) = self.h.upsert_with(key.arg(), |cur| match cur {
            Some(_) => Change::Keep,
            None => Change::Set(f().into_value()),
        })?;
        match (done, v) {
            (Upserted::Full, _) | (_, None) => Err(full()),
            (_, Some(v)) => Ok(V::from_value(v)),
        }
    }

    /// Updates the value of `key` in place: `f` gets the current value and returns the
    /// new one, with one lookup under the write lock, so no write of another handle or
    /// process can slip in between (nothing is lost). Returns the new value, or None
    /// when the key is absent (`f` is not called). Fails with [`ErrorKind::Full`] when
    /// a new string value does not fit (the old one is kept). `f` runs under the map's
    /// write lock: keep it short.
    ///
    /// ```
    /// use hashmap_shared::{Bytes, Map, Options};
    ///
    /// let mut log: Map<i64, Bytes> = Map::open(&Options::new(100))?;
    /// log.put(7, "started")?;
    /// let v = log.update_with(7, |old| {
    ///     let mut s = old.to_bytes().into_vec();
    ///     s.extend_from_slice(b", done");
    ///     Bytes::from(s)
    /// })?;
    /// assert_eq!(v.unwrap(), "started, done");
    /// assert_eq!(log.update_with(8, |_| unreachable!("absent"))?, None);
    /// # Ok::<(), hashmap_shared::Error>(())
    /// ```
    pub fn update_with(&mut self, key: impl Arg<K>, f: impl FnOnce(V::Ref<'_>) -> V) -> Result<Option<V>> {
        let (done, v) = self.h.upsert_with(key.arg(), |cur| match cur {
            Some(o) => Change::Set(f(V::ref_from_out(o)).into_value()),
            None => Change::Keep,
        })?;
        match done {
            Upserted::Full => Err(full()),
            _ => Ok(v.map(V::from_value)),
        }
    }

    /// The general read-modify-write of one key: `f` gets the current value (None when
    /// absent) and returns the value to store, or None to remove the entry (or leave
    /// it absent). One lookup under the write lock, like
    /// [`update_with`](Map::update_with). Returns the value now stored. Fails with
    /// [`ErrorKind::Full`] when the new value finds no room.
    ///
    /// ```
    /// use hashmap_shared::{Bytes, Map, Options};
    ///
    /// let mut stock: Map<Bytes, i32> = Map::open(&Options::new(100))?;
    /// stock.put("apples", 1)?;
    /// // Take one; the entry goes when none is left.
    /// let take = |n: Option<i32>| n.filter(|&n| n > 1).map(|n| n - 1);
    /// assert_eq!(stock.alter("apples", take)?, None);
    /// assert!(!stock.contains_key("apples")?);
    /// # Ok::<(), hashmap_shared::Error>(())
    /// ```
    pub fn alter(&mut self, key: impl Arg<K>, f: impl FnOnce(Option<V::Ref<'_>>) -> Option<V>) -> Result<Option<V>> {
        let (done, v) = self.h.upsert_with(key.arg(), |cur| match f(cur.map(V::ref_from_out)) {
            Some(v) => Change::Set(v.into_value()),
            None => Change::Remove,
        })?;
        match done {
            Upserted::Full => Err(full()),
            _ => Ok(v.map(V::from_value)),
        }
    }

    /// Puts every pair (one write lock for a single map, per key on a shard set: not
    /// atomic across shards); returns how many were stored (the others found no room).
    pub fn put_many<A: Arg<K>, B: Arg<V>>(&mut self, pairs: &[(A, B)]) -> Result<u64> {
        let ins: Vec<(In<'_>, In<'_>)> = pairs.iter().map(|(k, v)| (k.arg(), v.arg())).collect();
        self.h.set_multi(&ins)
    }

    /// Removes every key in `keys` (one write lock for a single map, per key on a
    /// shard set); returns how many were present.
    pub fn delete_many<A: Arg<K>>(&mut self, keys: &[A]) -> Result<u64> {
        let ins: Vec<In<'_>> = keys.iter().map(Arg::arg).collect();
        self.h.remove_multi(&ins)
    }

    // -- TTL ---------------------------------------------------------------------------

    /// [`put`](Map::put) with this entry's own TTL in seconds (`0`: it never expires),
    /// new entry or not. Values from 4294967294 on count as 4294967293. Fails with
    /// [`ErrorKind::Unsupported`] on a map created without a TTL
    /// ([`Options::ttl`]).
    ///
    /// ```
    /// use hashmap_shared::{Bytes, Map, Options};
    ///
    /// let mut sessions: Map<Bytes, i64> = Map::open(&Options::new(100).ttl(60))?;
    /// sessions.put("default", 1)?;            // expires in 60 s
    /// sessions.put_ttl("short", 2, 5)?;       // in 5 s
    /// sessions.put_ttl("forever", 3, 0)?;     // never
    /// assert_eq!(sessions.ttl_remaining("short")?, Some(5));
    /// assert_eq!(sessions.ttl_remaining("forever")?, Some(0));
    /// assert_eq!(sessions.get_with_ttl("default")?, Some((1, Some(60))));
    /// # Ok::<(), hashmap_shared::Error>(())
    /// ```
    pub fn put_ttl(&mut self, key: impl Arg<K>, value: impl Arg<V>, secs: u32) -> Result<()> {
        if self.h.put_ttl(key.arg(), value.arg(), secs)? {
            Ok(())
        } else {
            Err(full())
        }
    }

    /// [`add`](Map::add) with a TTL in seconds for the new entry (`0`: never expires).
    /// Fails on a map without TTL, as [`put_ttl`](Map::put_ttl).
    pub fn add_ttl(&mut self, key: impl Arg<K>, value: impl Arg<V>, secs: u32) -> Result<bool> {
        self.h.add_ttl(key.arg(), value.arg(), secs)
    }

    /// [`update`](Map::update) that also sets the entry's TTL (`0`: never expires).
    /// Fails on a map without TTL, as [`put_ttl`](Map::put_ttl).
    pub fn update_ttl(&mut self, key: impl Arg<K>, value: impl Arg<V>, secs: u32) -> Result<bool> {
        self.h.update_ttl(key.arg(), value.arg(), secs)
    }

    /// Seconds until `key` expires: `Some(0)` when it never does; None when it is
    /// missing or expired, or the map has no TTL. Changes nothing.
    pub fn ttl_remaining(&mut self, key: impl Arg<K>) -> Result<Option<u32>> {
        self.h.ttl_remaining(key.arg())
    }

    /// The value and the seconds it has left, as one consistent read: `Some(0)` for a
    /// permanent entry, None on a map without TTL. Counts as a use like
    /// [`get`](Map::get).
    pub fn get_with_ttl(&mut self, key: impl Arg<K>) -> Result<Option<(V, Option<u32>)>> {
        Ok(self.h.get_with_ttl(key.arg())?.map(|(v, t)| (V::from_out(v), t)))
    }

    /// Marks `key` as just used (LRU) and restarts its expiry at the default TTL
    /// unless it is permanent (TTL): true, or false when it is missing or expired, and
    /// always on a map with neither LRU nor TTL.
    pub fn touch(&mut self, key: impl Arg<K>) -> Result<bool> {
        self.h.touch(key.arg())
    }

    /// Makes `key` permanent: true, or false when it is missing or expired, or the map
    /// has no TTL.
    pub fn persist(&mut self, key: impl Arg<K>) -> Result<bool> {
        self.h.persist(key.arg())
    }

    /// Makes `key` expire `secs` seconds from now (`0`: never), keeping its value and
    /// LRU position: true, or false when it is missing or expired, or the map has no
    /// TTL.
    pub fn set_ttl(&mut self, key: impl Arg<K>, secs: u32) -> Result<bool> {
        self.h.set_ttl(key.arg(), secs)
    }

    /// Removes every expired entry now, in one pass under the write lock; returns how
    /// many (0 on a map without TTL). Expired entries are otherwise reclaimed when a
    /// write meets them.
    pub fn flush_expired(&mut self) -> Result<u64> {
        self.h.flush_expired()
    }

    /// One bounded step of [`flush_expired`](Map::flush_expired): looks at the next
    /// `slots` slots from a position all handles share, so that a background task can
    /// spread the work. Returns how many entries it removed, and whether the pass
    /// reached the end of the table (the next step starts over).
    pub fn flush_expired_partial(&mut self, slots: u32) -> Result<(u64, bool)> {
        self.h.flush_expired_partial(slots)
    }

    // -- taking entries out -----------------------------------------------------------

    /// Removes and returns the least recently used entry of an LRU map (a queue, when
    /// nothing is read: the oldest write); on other maps the entry in the lowest slot,
    /// an arbitrary one. A shard set takes from its shards in turn. None when empty.
    ///
    /// ```
    /// use hashmap_shared::{Map, Options};
    ///
    /// let mut queue: Map<i64, i64> = Map::open(&Options::new(100).lru(100, 0))?;
    /// for job in [7, 8, 9] {
    ///     queue.put(job, job * 100)?;
    /// }
    /// assert_eq!(queue.pop_oldest()?, Some((7, 700)));
    /// assert_eq!(queue.pop_newest()?, Some((9, 900)));
    /// assert_eq!(queue.drain(10)?, vec![(8, 800)]);
    /// # Ok::<(), hashmap_shared::Error>(())
    /// ```
    pub fn pop_oldest(&mut self) -> Result<Option<(K, V)>> {
        Ok(self.h.take_one(false)?.map(|(k, v)| (K::from_out(k), V::from_out(v))))
    }

    /// The other end from [`pop_oldest`](Map::pop_oldest): the most recently used
    /// entry of an LRU map, else the one in the highest slot.
    pub fn pop_newest(&mut self) -> Result<Option<(K, V)>> {
        Ok(self.h.take_one(true)?.map(|(k, v)| (K::from_out(k), V::from_out(v))))
    }

    /// Removes and returns up to `n` entries in [`pop_oldest`](Map::pop_oldest) order,
    /// under one write lock (per shard on a set).
    pub fn drain(&mut self, n: u64) -> Result<Vec<(K, V)>> {
        let mut v = Vec::new();
        self.h.drain_with(n, |k, x| v.push((K::from_out(k), V::from_out(x))))?;
        Ok(v)
    }

    /// Removes every entry (the table shrinks back to its minimum, string space and
    /// memory pages are released). Statistics are kept.
    pub fn clear(&mut self) -> Result<()> {
        self.h.clear()
    }

    // -- iteration ---------------------------------------------------------------------

    /// An iterator over the entries, in slot order: a cursor that takes the read lock
    /// for each step. See [`Iter`] for what it returns while other handles write.
    pub fn iter(&mut self) -> Iter<'_, K, V> {
        Iter::new(&mut self.h)
    }

    /// The keys, as [`iter`](Map::iter) walks them.
    pub fn keys(&mut self) -> Keys<'_, K, V> {
        Keys(self.iter())
    }

    /// The values, as [`iter`](Map::iter) walks them.
    pub fn values(&mut self) -> Values<'_, K, V> {
        Values(self.iter())
    }

    /// Calls `f` with every live entry, lent from shared memory without building owned
    /// keys and values, in slot order, under one read lock per shard: a consistent
    /// snapshot of each shard. Writers wait meanwhile, so `f` should be quick.
    ///
    /// ```
    /// use hashmap_shared::{Bytes, Map, Options};
    ///
    /// let mut hits: Map<Bytes, i64> = Map::open(&Options::new(100))?;
    /// hits.incr("/", 3)?;
    /// hits.incr("/about", 1)?;
    /// let mut total = 0;
    /// hits.for_each(|_page, n| total += n)?;
    /// assert_eq!(total, 4);
    /// # Ok::<(), hashmap_shared::Error>(())
    /// ```
    pub fn for_each(&mut self, mut f: impl FnMut(K::Ref<'_>, V::Ref<'_>)) -> Result<()> {
        self.h.for_each(true, true, |k, v| f(K::ref_from_out(k), V::ref_from_out(v)))
    }

    /// Every entry, owned, as [`for_each`](Map::for_each) sees them.
    pub fn to_vec(&mut self) -> Result<Vec<(K, V)>> {
        let mut v = Vec::new();
        self.h.for_each(true, true, |k, x| v.push((K::from_out(k), V::from_out(x))))?;
        Ok(v)
    }

    // -- the map as a whole -------------------------------------------------------------

    /// Live entries (expired ones not yet reclaimed included).
    ///
    /// # Panics
    /// On a map in Redis whose server cannot be reached (the statistics come from the
    /// server); [`try_len`](Map::try_len) returns that error instead.
    pub fn len(&self) -> usize {
        self.stats().size as usize
    }

    /// [`len`](Map::len), with the error of a map in Redis whose server cannot be
    /// reached (a local map never fails).
    pub fn try_len(&self) -> Result<usize> {
        Ok(self.try_stats()?.size as usize)
    }

    /// No entries? (Panics as [`len`](Map::len) does.)
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counters and geometry (summed over the shards of a set). On a map in Redis the
    /// geometry figures (`capacity`, arena, mapping) describe no memory of this
    /// process: see [`try_stats`](Map::try_stats).
    ///
    /// # Panics
    /// On a map in Redis whose server cannot be reached; use
    /// [`try_stats`](Map::try_stats) there.
    pub fn stats(&self) -> Stats {
        match self.try_stats() {
            Ok(s) => s,
            Err(e) => panic!("stats of a map in Redis: {e} (use try_stats to handle this)"),
        }
    }

    /// [`stats`](Map::stats), with the error of a map in Redis whose server cannot be
    /// reached (a local map never fails). On Redis `capacity` is the number of entries
    /// the map may hold, `tombstones`, `mmap_size` and the arena figures are 0.
    pub fn try_stats(&self) -> Result<Stats> {
        self.h.stats()
    }

    /// Is it an LRU map ([`Options::lru`])? (Asks nothing of a server.)
    pub fn has_lru(&self) -> bool {
        self.h.max_size() > 0
    }

    /// Is it a TTL map ([`Options::ttl`])? (Asks nothing of a server.)
    pub fn has_ttl(&self) -> bool {
        self.h.default_ttl() > 0
    }

    /// Grows the table ahead of time so that `n` entries fit (per shard on a set)
    /// without resizing later. False when that is beyond what the map was created for.
    pub fn reserve(&mut self, n: u64) -> Result<bool> {
        self.h.reserve(n)
    }

    /// Flushes the map to its file (msync). Nothing needs it for sharing: every
    /// process sees every write at once. It only makes the file on disk current (for
    /// a backup, or against a machine crash).
    pub fn sync(&mut self) -> Result<()> {
        self.h.sync()
    }

    /// Deletes the file(s) (every shard of a set): true when every one was removed.
    /// Handles that have the map open keep using it. False for maps without a file.
    pub fn unlink(&mut self) -> bool {
        self.h.unlink()
    }

    /// Seals the map for good: every handle's writes fail with [`ErrorKind::Frozen`]
    /// from now on, and this handle becomes read-only. Readers can then open the file
    /// with [`open_readonly`](Map::open_readonly), which takes no locks at all.
    pub fn freeze(&mut self) -> Result<()> {
        self.h.freeze()
    }

    /// Has the map been frozen (by any handle)?
    pub fn is_frozen(&self) -> bool {
        self.stats().frozen != 0
    }

    /// Is this handle read-only (opened with [`open_readonly`](Map::open_readonly), or
    /// it froze the map)?
    pub fn is_readonly(&self) -> bool {
        self.h.readonly()
    }

    /// Walks the whole structure and describes every inconsistency found (on a shard
    /// set prefixed "shard N: "); empty when the map is sound. A diagnostic (tests,
    /// after a crash).
    pub fn verify(&self) -> Vec<String> {
        self.h.verify()
    }

    /// The file's path, or a shard set's prefix; None for anonymous and memfd maps.
    pub fn path(&self) -> Option<&Path> {
        self.h.path().map(|p| Path::new(OsStr::from_bytes(p.to_bytes())))
    }

    /// The descriptor of a memfd map or of one attached with
    /// [`from_fd`](Map::from_fd), which another process can attach to; None for other
    /// maps. The handle owns it.
    pub fn memfd(&self) -> Option<BorrowedFd<'_>> {
        let fd = self.h.memfd();
        // SAFETY: a non-negative descriptor here is the one the handle's mapping keeps
        // open (backing.rs `Mapping::fd`) until the handle is dropped, which the
        // borrow of `self` outlives.
        (fd >= 0).then(|| unsafe { BorrowedFd::borrow_raw(fd) })
    }
}

/// Counters: maps with integer values.
impl<K: Storable, V: Int> Map<K, V> {
    /// Adds `delta` to the value of `key` and returns the new value; a missing key is
    /// inserted with value `delta`. Atomic: increments of every handle and process add
    /// up exactly (an existing key is updated in place under the shared lock). Wraps
    /// around at the width of `V` (two's complement: `i16::MAX + 1 == i16::MIN`).
    /// Fails with [`ErrorKind::Full`] when a new key finds no room.
    ///
    /// ```
    /// use hashmap_shared::{Bytes, Map, Options};
    ///
    /// let mut hits: Map<Bytes, i32> = Map::open(&Options::new(100))?;
    /// assert_eq!(hits.incr("/index.html", 1)?, 1);
    /// assert_eq!(hits.incr("/index.html", 10)?, 11);
    /// assert_eq!(hits.incr("/index.html", i32::MAX)?, i32::MIN + 10); // wraps
    /// assert_eq!(hits.incr("/index.html", -1)?, i32::MIN + 9);
    /// # Ok::<(), hashmap_shared::Error>(())
    /// ```
    #[inline]
    pub fn incr(&mut self, key: impl Arg<K>, delta: V) -> Result<V> {
        Ok(V::from_i64(self.h.incr_by(key.arg(), delta.to_i64())?))
    }

    /// Stores the larger of the current value and `v` (a missing key gets `v`) and
    /// returns it; atomic like [`incr`](Map::incr).
    pub fn store_max(&mut self, key: impl Arg<K>, v: V) -> Result<V> {
        Ok(V::from_i64(self.h.max(key.arg(), v.to_i64())?))
    }

    /// Stores the smaller of the current value and `v` (a missing key gets `v`) and
    /// returns it; atomic like [`incr`](Map::incr).
    pub fn store_min(&mut self, key: impl Arg<K>, v: V) -> Result<V> {
        Ok(V::from_i64(self.h.min(key.arg(), v.to_i64())?))
    }
}

impl<'m, K: Storable, V: Storable> IntoIterator for &'m mut Map<K, V> {
    type Item = (K, V);
    type IntoIter = Iter<'m, K, V>;
    fn into_iter(self) -> Iter<'m, K, V> {
        self.iter()
    }
}

impl<K: Storable, V: Storable> std::fmt::Debug for Map<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Map")
            .field("class", &Self::perl_class())
            .field("path", &self.path())
            .field("len", &self.len())
            .finish()
    }
}

/// The untyped handle behind a typed map, for the engine's own tests.
#[cfg(feature = "internals")]
impl<K: Storable, V: Storable> Map<K, V> {
    #[doc(hidden)]
    pub fn handle(&mut self) -> &mut Handle {
        &mut self.h
    }
}
