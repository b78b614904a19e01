//! Map operations, composed from the table, the arena and the lock; per-handle state.
//!
//! Locking (DESIGN.md "Concurrency"):
//! - `get`, `exists`: optimistic (seqlock) on every variant; the value is copied into
//!   this handle's buffer with relaxed atomic loads, and every offset, length and
//!   capacity read from the mapping is bounds-checked, so a torn read is harmless and
//!   simply retried by [`Lock::optimistic`].
//! - counters (`incr_by`, `max`, `min`) on an existing key: the read lock (which
//!   excludes resizes and every other writer) plus an atomic RMW on the value field; a
//!   missing key falls back to the write lock and inserts.
//! - `each`, `for_each` (keys/values/items), `get_multi`: the read lock.
//! - everything else: the write lock (which also makes the seqlock odd while held).
//!
//! LRU and TTL (api.md 7.3, 7.4). A map created with `max_size > 0` keeps a recency
//! list ([`crate::lru`]), one with `ttl > 0` an expiry per slot ([`crate::ttl`]). A
//! plain map has neither array, and its operations pay one predictable test of
//! `Shared::extra` (LRU or TTL on) for them. On LRU/TTL maps:
//! - `get` stays optimistic: expired entries read as absent, and on LRU maps a hit
//!   marks the entry accessed with a relaxed byte store (no lock, no reordering).
//! - counters take the write lock (they promote and refresh the expiry).
//! - expiry is lazy: readers skip expired entries; writers that meet one reclaim it
//!   (counted in `stat_expired`), or revive it in place (`put`, `put_ttl`, `set_multi`).
//! - every insert of a new key into an LRU map at `max_size` evicts one entry first,
//!   and a write that finds no string space evicts until its strings fit
//!   ([`evict`]: decisions 17).

mod evict;
pub(crate) mod format;
mod repair;
mod upsert;

use self::format::{Info, MapFormat};
use crate::arena::Arena;
use crate::backing::{self, Backing, Mapping, Spec};
use crate::ctrl::Ctrl;
use crate::error::{Error, ErrorKind, Result};
use crate::hash::{hash_bytes, hash_int};
use crate::layout::{self, off, Layout, Params};
use crate::lock::{HotLine, Liveness, Lock, LockSide, ReadGuard, ReaderBitmap, ReaderSlot, WriteGuard};
use crate::lru::{Lru, Skipper};
use crate::strref::{StrRef, MAX_INLINE, MAX_LEN};
use crate::table::{Journal, Probe, Relocate, Table};
use crate::ttl::{self, Clock, Ttl};
use crate::variant::{Kind, Variant};
use std::ffi::{CStr, CString};
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering::{Relaxed, Release}};
use std::sync::Arc;

pub use crate::options::Options;
pub use crate::value::{In, Out, Value};
pub use self::upsert::{Change, Upserted};

/// Counters and geometry (api.md 6.8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Live entries.
    pub size: u64,
    /// Current table capacity (slots).
    pub capacity: u64,
    /// Entries the map guarantees to hold.
    pub max_entries: u64,
    /// Tombstones in the table.
    pub tombstones: u64,
    /// Bytes mapped (the file size).
    pub mmap_size: u64,
    /// Arena bytes currently allocated.
    pub arena_used: u64,
    /// Arena capacity (0 for int-only variants).
    pub arena_cap: u64,
    /// LRU evictions.
    pub evictions: u64,
    /// Expired entries reclaimed.
    pub expired: u64,
    /// Dead-writer recoveries.
    pub recoveries: u64,
    /// LRU bound.
    pub max_size: u64,
    /// Default TTL.
    pub ttl: u64,
    /// 1 if the map is sealed.
    pub frozen: u64,
    /// 1 if this handle is read-only.
    pub readonly: u64,
}

/// A prepared key: narrowed int, or bytes (with the identity word of inline strings).
#[derive(Clone, Copy)]
enum K<'a> {
    Int(i64),
    Short(u64, &'a [u8], bool),
    Long(&'a [u8], bool),
}

/// A prepared value.
#[derive(Clone, Copy)]
enum V<'a> {
    Int(i64),
    Str(&'a [u8], bool),
}

/// Where an output landed: an int, or bytes in a buffer with this flag.
#[derive(Clone, Copy)]
enum Got {
    Int(i64),
    Str(bool),
}

/// How a write that hits an existing entry changes its expiry (api.md 7.4).
#[derive(Clone, Copy)]
enum Exp {
    /// Reset to now + default TTL, unless the entry is permanent (new entries: default).
    Default,
    /// Set to this expiry (0 = permanent).
    Set(u32),
}

struct Shared {
    // Field order matters: the lock points into the mapping and is dropped first.
    lock: Lock,
    map: Mapping,
    /// The table regions of `map`, at capacity 0: every table view is this one at the
    /// header's capacity ([`Shared::current`]). Never handed out with a lifetime longer
    /// than a borrow of `self`, so never used after `map` is unmapped.
    tab: Table<'static>,
    lay: Layout,
    seed: u64,
    kk: Kind,
    vk: Kind,
    path: Option<CString>,
    backing: Backing,
    /// LRU or TTL is on: the operations take their feature-aware paths.
    extra: bool,
    /// The field width (2, 4, 8) of a plain integer-key, integer-value map (II, I32,
    /// I16 without LRU or TTL), whose int operations take the monomorphic path
    /// ([`Map::put_int`] ...); 0 for every other map.
    lean: u8,
    lru_on: bool,
    ttl_on: bool,
    /// The header's ttl epoch (wall-clock seconds): expiries count from it.
    epoch: u64,
    /// None = the system's coarse real-time clock.
    clock: Option<Arc<dyn Clock>>,
    /// A read-only handle (new_readonly, or this handle froze the map): it never
    /// locks and never writes the mapping (api.md 7.9).
    ro: bool,
}

#[derive(Default)]
struct State {
    kbuf: Vec<u8>,
    vbuf: Vec<u8>,
    each_active: bool,
    each_pos: usize,
    each_gen: u32,
    /// A shrink was skipped while `each` or a cursor was active; run it when the
    /// iteration ends.
    deferred: bool,
    /// Cursors of this handle sitting on this map's table (cursor.rs): while any is,
    /// shrink and compaction are deferred like for `each`.
    cursors: u32,
    /// The entry the last `scan` copied into kbuf / vbuf.
    scanned: Option<(Got, Got)>,
    /// Which LRU promotions lru_skip skips.
    skip: Skipper,
}

impl Default for Skipper {
    fn default() -> Skipper {
        Skipper::new(0)
    }
}

/// A handle on a shared map. Each handle has its own `each` iterator and output
/// buffers; any number of handles, in any number of processes, can use one map.
pub struct Map {
    sh: Shared,
    st: State,
}

fn out<'a>(g: Got, buf: &'a [u8]) -> Out<'a> {
    match g {
        Got::Int(v) => Out::Int(v),
        Got::Str(u) => Out::Str(buf, u),
    }
}

impl Map {
    /// Opens (creates or attaches) a map.
    ///
    /// Creating a file map writes its header; attaching to an existing file takes the
    /// variant, geometry and options from the file and ignores those of `o`, except
    /// the variant, which must match. Errors are those the Perl constructors report:
    ///
    /// ```
    /// use hashmap_shared::{raw::{Map, Variant}, ErrorKind, Options};
    ///
    /// let path = std::env::temp_dir().join(format!("hm-doc-open-{}.shm", std::process::id()));
    /// let m = Map::open(&Options::of(Variant::II, 100).file(&path))?;
    /// let err = Map::open(&Options::of(Variant::SS, 100).file(&path)).err().unwrap();
    /// assert_eq!(err.kind(), ErrorKind::Format);
    /// assert_eq!(err.to_string(), format!("{}: variant mismatch (file=3, expected=10)", path.display()));
    /// m.unlink();
    /// # Ok::<(), hashmap_shared::Error>(())
    /// ```
    pub fn open(o: &Options) -> Result<Map> {
        let variant = o.check()?;
        let spec = Spec { backing: o.backing, path: o.path.clone(), fd: o.fd, file_mode: o.file_mode };
        let params = Params {
            variant,
            max_entries: o.max_entries,
            max_size: o.max_size,
            ttl: o.ttl,
            lru_skip: o.lru_skip,
            arena_cap: o.arena_cap,
        };
        let opened = backing::open(&spec, &MapFormat::new(params, o.shard)?)?;
        let path = if o.backing == Backing::File { o.path.clone() } else { None };
        Map::from_opened(opened, o.backing, path, false)
    }

    /// Opens the frozen map file at `path` read-only (api.md 3.5): mapped PROT_READ,
    /// no lock is ever taken and nothing is ever written. Refuses a map that is not
    /// frozen.
    pub fn open_readonly(path: &CStr, variant: Variant) -> Result<Map> {
        let opened = backing::open_readonly(path, &MapFormat::existing(variant))?;
        Map::from_opened(opened, Backing::File, Some(path.to_owned()), true)
    }

    fn from_opened((map, info): (Mapping, Info), backing: Backing, path: Option<CString>, ro: bool) -> Result<Map> {
        let base = map.base();
        let l = info.layout;
        let what = || match &path {
            Some(p) => p.to_string_lossy().into_owned(),
            None => "map".to_string(),
        };
        // Read-only handles never write the mapping, not even a reader slot, and never
        // lock: they need no liveness. A read-write handle's own description (the one it
        // mapped through) carries the byte lock of its reader slot (liveness.rs).
        let live = match (ro, map.fd()) {
            (true, _) => Liveness::none(),
            (false, Some(fd)) => Liveness::new(fd, base, map.len(), l.readers_off as u64)
                .map_err(|e| Error::io(format!("{}: fstat", what()), e))?,
            // backing.rs keeps a descriptor for every read-write mapping
            (false, None) => unreachable!("a read-write mapping without its descriptor"),
        };
        // SAFETY: the four regions lie inside the mapping at the offsets fixed by the
        // format (validated header), are 64-byte aligned, and live as long as the
        // mapping, which outlives the lock (field order in Shared; release_slot in Drop).
        let mut lock = unsafe {
            Lock::new(
                base.add(off::LOCK) as *const HotLine,
                base.add(off::LOCK_SIDE) as *const LockSide,
                base.add(l.readers_off) as *const ReaderSlot,
                base.add(l.readers_bitmap_off) as *const ReaderBitmap,
                live,
            )
        };
        let epoch = map.u64(off::TTL_EPOCH).load(Relaxed);
        // A different promotion-skip sequence per handle (seeded from the map, the
        // process and the time), so that handles do not skip in lockstep.
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64);
        let skip_seed = info.seed ^ ((std::process::id() as u64) << 32) ^ t.unwrap_or(0) ^ (base as u64);
        if ro {
            lock.set_readonly();
        } else {
            // Claims this handle's reader slot now: every reason it cannot use the map is
            // reported by the open.
            lock.attach().map_err(|e| Error::format(format!("{}: {e}", what())))?;
        }
        // SAFETY: the view lives in Shared next to the mapping and is only handed out as
        // Table<'_> borrowed from Shared (current, table_at), so never used after unmap.
        let tab = unsafe { Table::detached(&map, &l) };
        let m = Map {
            sh: Shared {
                lock,
                map,
                tab,
                lay: l,
                seed: info.seed,
                kk: l.variant.key_kind(),
                vk: l.variant.val_kind(),
                path,
                backing,
                extra: l.has_lru() || l.has_ttl(),
                lean: match (l.variant.key_kind(), l.variant.val_kind(), l.has_lru() || l.has_ttl()) {
                    (Kind::I64, Kind::I64, false) => 8,
                    (Kind::I32, Kind::I32, false) => 4,
                    (Kind::I16, Kind::I16, false) => 2,
                    _ => 0,
                },
                lru_on: l.has_lru(),
                ttl_on: l.has_ttl(),
                epoch,
                clock: None,
                ro,
            },
            st: State { skip: Skipper::new(skip_seed), ..State::default() },
        };
        if !ro && !m.sh.sealed() {
            m.sh.adopt_reservation()?;
        }
        Ok(m)
    }

    /// Uses `clock` instead of the system's coarse real-time clock for this handle's
    /// expiry decisions (tests, simulations). Expiries stay absolute wall-clock times:
    /// other handles with the real clock see them as such.
    pub fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.sh.clock = Some(clock);
    }

    /// The map's ttl epoch: the wall-clock second it was created, from which expiry
    /// times are counted.
    pub fn ttl_epoch(&self) -> u64 {
        self.sh.epoch
    }

    /// Is this an LRU map (max_size > 0)?
    pub fn has_lru(&self) -> bool {
        self.sh.lru_on
    }
    /// Is this a TTL map (default ttl > 0)?
    pub fn has_ttl(&self) -> bool {
        self.sh.ttl_on
    }

    /// The variant.
    pub fn variant(&self) -> Variant {
        self.sh.lay.variant
    }
    /// The backing file's path (file maps only).
    pub fn path(&self) -> Option<&CStr> {
        self.sh.path.as_deref()
    }
    /// The descriptor kept by memfd / fd maps, else -1.
    pub fn memfd(&self) -> i32 {
        self.sh.map.public_fd().unwrap_or(-1)
    }
    /// How the map is backed.
    pub fn backing(&self) -> Backing {
        self.sh.backing
    }
    /// The layout (geometry and offsets) from the header.
    pub fn layout(&self) -> &Layout {
        &self.sh.lay
    }

    /// The value of `key`, or None. Expired entries read as absent; on LRU maps a hit
    /// marks the entry accessed (no lock taken either way).
    ///
    /// ```
    /// use hashmap_shared::{raw::{In, Map, Out, Variant}, Options};
    ///
    /// let mut m = Map::open(&Options::of(Variant::SS, 100))?;
    /// m.put(In::Str(b"caf\xc3\xa9", true), In::Str(b"bytes \xff", false))?;
    /// // Out borrows the handle's buffer; to_value() makes an owned copy.
    /// assert_eq!(m.get(In::Str(b"caf\xc3\xa9", true))?, Some(Out::Str(b"bytes \xff", false)));
    /// // Keys are their bytes: the UTF-8 flag is stored, but not part of the identity.
    /// assert!(m.get(In::Str(b"caf\xc3\xa9", false))?.is_some());
    /// assert_eq!(m.get(In::Str(b"missing", false))?, None);
    /// # Ok::<(), hashmap_shared::Error>(())
    /// ```
    pub fn get(&mut self, key: In<'_>) -> Result<Option<Out<'_>>> {
        let (k, h) = self.sh.key(key)?;
        let sh = &self.sh;
        let buf = &mut self.st.vbuf;
        let (tag, v) = if sh.extra {
            let r = sh.get_extra(h, &k, buf, true);
            (r.tag, r.v)
        } else {
            // The closure returns a (tag, int) pair, which travels in registers (a
            // 16-byte enum would go through memory and stall store forwarding on this
            // hot path).
            sh.lock.optimistic(|| {
                let Some(t) = sh.current() else { return (0u8, 0i64) };
                let Some(i) = sh.find(&t, h, &k) else { return (0, 0) };
                match sh.read_val(&t, i, buf) {
                    Got::Int(v) => (1, v),
                    Got::Str(u) => (2 + u as u8, 0),
                }
            })
        };
        Ok(match tag {
            0 => None,
            1 => Some(Out::Int(v)),
            t => Some(Out::Str(&self.st.vbuf, t == 3)),
        })
    }

    /// [`Map::get`] copying a string value straight to `dst` when it fits in `cap`
    /// bytes (rounded down to whole words): then the returned slice is `dst` itself
    /// (one copy instead of two: arena -> handle buffer -> caller). Otherwise, and for
    /// integer or LRU/TTL values, as `get`. A copy made by an attempt
    /// of the optimistic read is only returned once the seqlock validated it; a
    /// discarded (possibly torn) attempt may have written `dst`.
    ///
    /// # Safety
    /// `dst` must be valid for writes of `cap` bytes, not overlap the map or this
    /// handle, and stay valid while the returned value is used.
    pub unsafe fn get_to(&mut self, key: In<'_>, dst: *mut u8, cap: usize) -> Result<Option<Out<'_>>> {
        if self.sh.extra || self.sh.vk.is_int() || dst.is_null() {
            return self.get(key);
        }
        let (k, h) = self.sh.key(key)?;
        let sh = &self.sh;
        let buf = &mut self.st.vbuf;
        let fit = cap & !7;
        // (tag, len) in registers: 0 missing, 2/3 in buf (utf8 off/on), 4/5 in dst.
        let (tag, len) = sh.lock.optimistic(|| {
            let Some(t) = sh.current() else { return (0u8, 0usize) };
            let Some(i) = sh.find(&t, h, &k) else { return (0, 0) };
            let r = StrRef(t.val_word(i));
            if r.is_inline() {
                if fit >= 8 {
                    // SAFETY: 8 <= fit <= cap bytes are writable at dst (contract above).
                    unsafe { dst.cast::<[u8; 8]>().write_unaligned(r.inline_bytes()) };
                    return (4 + r.utf8() as u8, r.len());
                }
            // SAFETY: r.len() <= fit, a multiple of 8 within dst's cap bytes, so
            // r.len().div_ceil(8) * 8 <= cap (contract above).
            } else if r.len() <= fit && unsafe { sh.arena().read_to(r.offset(), r.len(), dst) } {
                return (4 + r.utf8() as u8, r.len());
            }
            match sh.read_str(r, buf) {
                Got::Str(u) => (2 + u as u8, 0),
                Got::Int(_) => (0, 0),
            }
        });
        Ok(match tag {
            0 => None,
            // SAFETY: the validated copy wrote len initialised bytes at dst (above),
            // which stays valid while the result is used (contract).
            4 | 5 => Some(Out::Str(unsafe { std::slice::from_raw_parts(dst, len) }, tag == 5)),
            t => Some(Out::Str(&self.st.vbuf, t == 3)),
        })
    }

    /// [`Map::get`] for an integer-key, integer-value variant (II, I16, I32), with no
    /// key or value conversion: the hot path of the II lookup keyword. `None` for a
    /// missing key; an error for a variant with string keys or values.
    #[inline]
    pub fn get_int(&mut self, key: i64) -> Result<Option<i64>> {
        let sh = &self.sh;
        if !sh.kk.is_int() || !sh.vk.is_int() {
            return Err(Error::arg("get_int needs an integer-key, integer-value variant"));
        }
        if sh.extra {
            // LRU/TTL bookkeeping: the general path.
            return Ok(match self.get(In::Int(key))? {
                Some(Out::Int(v)) => Some(v),
                _ => None,
            });
        }
        let k = sh.kk.narrow(key);
        let h = hash_int(k, sh.seed);
        // (found, value) travels in registers, as in `get`.
        let (hit, v) = sh.lock.optimistic(|| {
            let Some(t) = sh.current() else { return (false, 0) };
            match t.find(h, |i| t.key_int(i) == k) {
                Some(i) => (true, t.val_int(i)),
                None => (false, 0),
            }
        });
        Ok(if hit { Some(v) } else { None })
    }

    /// [`Map::put`] of an integer key and value: the hot path of the II put keyword,
    /// with no key or value conversion and one probe loop compiled for the variant's
    /// field width. LRU/TTL maps and string variants take the general path (whose
    /// errors they get: "this variant has string keys" ...).
    #[inline]
    pub fn put_int(&mut self, key: i64, val: i64) -> Result<bool> {
        match self.sh.lean {
            8 => self.upsert_int::<8>(key, val, Upsert::Put),
            4 => self.upsert_int::<4>(key, val, Upsert::Put),
            2 => self.upsert_int::<2>(key, val, Upsert::Put),
            _ => self.put(In::Int(key), In::Int(val)),
        }
    }

    /// [`Map::add`] of an integer key and value (see [`Map::put_int`]).
    #[inline]
    pub fn add_int(&mut self, key: i64, val: i64) -> Result<bool> {
        match self.sh.lean {
            8 => self.upsert_int::<8>(key, val, Upsert::Add),
            4 => self.upsert_int::<4>(key, val, Upsert::Add),
            2 => self.upsert_int::<2>(key, val, Upsert::Add),
            _ => self.add(In::Int(key), In::Int(val)),
        }
    }

    /// [`Map::update`] of an integer key and value (see [`Map::put_int`]).
    #[inline]
    pub fn update_int(&mut self, key: i64, val: i64) -> Result<bool> {
        match self.sh.lean {
            8 => self.upsert_int::<8>(key, val, Upsert::Update),
            4 => self.upsert_int::<4>(key, val, Upsert::Update),
            2 => self.upsert_int::<2>(key, val, Upsert::Update),
            _ => self.update(In::Int(key), In::Int(val)),
        }
    }

    /// [`Map::remove`] of an integer key (any integer-key variant: string values are
    /// freed by the general path, as on LRU/TTL maps).
    #[inline]
    pub fn remove_int(&mut self, key: i64) -> Result<bool> {
        match self.sh.lean {
            8 => self.remove_int_w::<8>(key),
            4 => self.remove_int_w::<4>(key),
            2 => self.remove_int_w::<2>(key),
            _ => self.remove(In::Int(key)),
        }
    }

    /// [`Map::incr_by`] of an integer key (see [`Map::put_int`]).
    #[inline]
    pub fn incr_int(&mut self, key: i64, delta: i64) -> Result<i64> {
        match self.sh.lean {
            8 => self.incr_int_w::<8>(key, delta),
            4 => self.incr_int_w::<4>(key, delta),
            2 => self.incr_int_w::<2>(key, delta),
            _ => self.incr_by(In::Int(key), delta),
        }
    }

    /// put / add / update on a plain integer map whose fields are `W` bytes wide.
    #[inline(always)]
    fn upsert_int<const W: usize>(&mut self, key: i64, val: i64, how: Upsert) -> Result<bool> {
        let (sh, st) = (&self.sh, &self.st);
        sh.writable()?;
        let (k, v) = (narrow_w::<W>(key), narrow_w::<W>(val));
        let h = hash_int(k, sh.seed);
        let _g = sh.write_mut()?;
        let t = sh.table()?;
        Ok(match t.probe(h, |i| t.key_int_w::<W>(i) == k) {
            Probe::Found(i) => {
                if how != Upsert::Add {
                    t.set_val_int_w::<W>(i, v);
                }
                how != Upsert::Add
            }
            Probe::Vacant(slot) if how != Upsert::Update => sh.insert_int::<W>(st, t, slot, h, k, v),
            _ => false,
        })
    }

    #[inline(always)]
    fn remove_int_w<const W: usize>(&mut self, key: i64) -> Result<bool> {
        let (sh, st) = (&self.sh, &mut self.st);
        sh.writable()?;
        let k = narrow_w::<W>(key);
        let h = hash_int(k, sh.seed);
        let _g = sh.write_mut()?;
        let t = sh.table()?;
        let Some(i) = t.find(h, |i| t.key_int_w::<W>(i) == k) else { return Ok(false) };
        let tomb = t.erase(i);
        // Relaxed load/store pairs under the write lock (see h32).
        let s = sh.h32(off::SIZE);
        let size = s.load(Relaxed).saturating_sub(1);
        s.store(size, Relaxed);
        if tomb {
            let tb = sh.h32(off::TOMBS);
            tb.store(tb.load(Relaxed) + 1, Relaxed);
        }
        if t.cap > layout::MIN_CAP as usize && (size as usize) < t.cap / 4 {
            sh.maybe_shrink(st);
        }
        Ok(true)
    }

    #[inline(always)]
    fn incr_int_w<const W: usize>(&mut self, key: i64, delta: i64) -> Result<i64> {
        let sh = &self.sh;
        // Before the read lock: a read-only handle must not take it (its mapping is
        // PROT_READ); checked again under the lock for a freeze in between.
        sh.writable()?;
        let (k, d) = (narrow_w::<W>(key), narrow_w::<W>(delta));
        let h = hash_int(k, sh.seed);
        {
            let _r = sh.lock.read();
            // Under the read lock freeze (a writer) cannot run: the seal is settled.
            sh.writable()?;
            if let Some(t) = sh.current() {
                if let Some(i) = t.find(h, |i| t.key_int_w::<W>(i) == k) {
                    return Ok(t.val_fetch_add(i, d));
                }
            }
        }
        let _g = sh.write_mut()?;
        let t = sh.table()?;
        match t.probe(h, |i| t.key_int_w::<W>(i) == k) {
            Probe::Found(i) => Ok(t.val_fetch_add(i, d)),
            Probe::Vacant(slot) if sh.insert_int::<W>(&self.st, t, slot, h, k, d) => Ok(d),
            _ => Err(Error::new(ErrorKind::Full, "the map is full")),
        }
    }

    /// The value of `key` and its remaining TTL in seconds (Some(0) for a permanent
    /// entry; None on a map without TTL), as one consistent read. Marks the entry
    /// accessed like [`Map::get`].
    pub fn get_with_ttl(&mut self, key: In<'_>) -> Result<Option<(Out<'_>, Option<u32>)>> {
        let (k, h) = self.sh.key(key)?;
        let sh = &self.sh;
        let r = sh.get_extra(h, &k, &mut self.st.vbuf, true);
        let left = if sh.ttl_on { ttl::remaining(r.exp, r.now) } else { None };
        Ok(match r.tag {
            0 => None,
            1 => Some((Out::Int(r.v), left)),
            t => Some((Out::Str(&self.st.vbuf, t == 3), left)),
        })
    }

    /// Seconds until `key` expires: Some(0) for a permanent entry; None when the map
    /// has no TTL or the key is missing or expired. Changes nothing.
    pub fn ttl_remaining(&mut self, key: In<'_>) -> Result<Option<u32>> {
        if !self.sh.ttl_on {
            return Ok(None);
        }
        let (k, h) = self.sh.key(key)?;
        let sh = &self.sh;
        let now = sh.now();
        let x = sh.ttl_view();
        let e = sh.lock.optimistic(|| {
            let t = sh.current()?;
            let i = sh.find(&t, h, &k)?;
            Some(x.map_or(0, |x| x.get(i)))
        });
        Ok(e.and_then(|e| ttl::remaining(e, now)))
    }

    /// Is `key` present (and not expired)? Does not mark it accessed.
    pub fn exists(&mut self, key: In<'_>) -> Result<bool> {
        let (k, h) = self.sh.key(key)?;
        let sh = &self.sh;
        if sh.ttl_on {
            let now = sh.now();
            let x = sh.ttl_view();
            return Ok(sh.lock.optimistic(|| {
                let Some(t) = sh.current() else { return false };
                sh.find(&t, h, &k).is_some_and(|i| !ttl::is_expired(x.map_or(0, |x| x.get(i)), now))
            }));
        }
        Ok(sh.lock.optimistic(|| sh.current().and_then(|t| sh.find(&t, h, &k)).is_some()))
    }

    /// Inserts or overwrites. False when a new key finds the table or the arena full,
    /// or an overwrite finds no arena room (the old value is kept); on an LRU map a
    /// full arena evicts least recently used entries instead, and only a write whose
    /// strings could not fit even in an empty map (or, rarely, beyond the eviction
    /// bound of a very large write: map/evict.rs) fails. An overwrite
    /// promotes (LRU) and resets a non-permanent expiry to the default (TTL); an
    /// expired entry is revived.
    ///
    /// ```
    /// use hashmap_shared::{raw::{In, Map, Out, Variant}, Options};
    ///
    /// let mut m = Map::open(&Options::of(Variant::I16, 100))?;
    /// assert!(m.put(In::Int(70_000), In::Int(-1))?);   // keys narrow to 16 bits
    /// assert_eq!(m.get(In::Int(4464))?, Some(Out::Int(-1)));
    /// # Ok::<(), hashmap_shared::Error>(())
    /// ```
    pub fn put(&mut self, key: In<'_>, val: In<'_>) -> Result<bool> {
        self.sh.writable()?;
        let (k, h) = self.sh.key(key)?;
        let v = self.sh.val(val, "value")?;
        let (sh, st) = (&self.sh, &mut self.st);
        let now = sh.now();
        let _g = sh.write_mut()?;
        sh.put_locked(st, &k, h, &v, Exp::Default, now)
    }

    /// Put with an explicit TTL (0 = permanent) for this entry, new or not. Values of
    /// 4294967294 and more are clamped to 4294967293. Errors on a map without TTL.
    ///
    /// ```
    /// use hashmap_shared::{raw::{In, Map, Out, Variant}, Options};
    ///
    /// let mut m = Map::open(&Options::of(Variant::SI, 100).ttl(60))?;
    /// m.put(In::Str(b"default", false), In::Int(1))?;          // expires in 60 s
    /// m.put_ttl(In::Str(b"short", false), In::Int(2), 5)?;     // in 5 s
    /// m.put_ttl(In::Str(b"forever", false), In::Int(3), 0)?;   // never
    /// assert_eq!(m.ttl_remaining(In::Str(b"short", false))?, Some(5));
    /// assert_eq!(m.ttl_remaining(In::Str(b"forever", false))?, Some(0));
    /// let (v, ttl) = m.get_with_ttl(In::Str(b"default", false))?.unwrap();
    /// assert_eq!((v, ttl), (Out::Int(1), Some(60)));
    /// # Ok::<(), hashmap_shared::Error>(())
    /// ```
    pub fn put_ttl(&mut self, key: In<'_>, val: In<'_>, ttl_secs: u32) -> Result<bool> {
        self.sh.writable()?;
        self.sh.need_ttl()?;
        let (k, h) = self.sh.key(key)?;
        let v = self.sh.val(val, "value")?;
        let (sh, st) = (&self.sh, &mut self.st);
        let now = sh.now();
        let e = Exp::Set(ttl::expiry(now, ttl_secs.min(ttl::MAX_TTL_ARG)));
        let _g = sh.write_mut()?;
        sh.put_locked(st, &k, h, &v, e, now)
    }

    /// Inserts only if absent (an expired entry counts as absent: it is reclaimed).
    pub fn add(&mut self, key: In<'_>, val: In<'_>) -> Result<bool> {
        self.sh.writable()?;
        self.add_exp(key, val, None)
    }

    /// [`Map::add`] with an explicit TTL for the new entry (0 = permanent; clamped as
    /// in put_ttl). Errors on a map without TTL.
    pub fn add_ttl(&mut self, key: In<'_>, val: In<'_>, ttl_secs: u32) -> Result<bool> {
        self.sh.writable()?;
        self.sh.need_ttl()?;
        self.add_exp(key, val, Some(ttl_secs.min(ttl::MAX_TTL_ARG)))
    }

    fn add_exp(&mut self, key: In<'_>, val: In<'_>, ttl_secs: Option<u32>) -> Result<bool> {
        let (k, h) = self.sh.key(key)?;
        let v = self.sh.val(val, "value")?;
        let (sh, st) = (&self.sh, &mut self.st);
        let now = sh.now();
        let e = ttl_secs.map_or(Exp::Default, |s| Exp::Set(ttl::expiry(now, s)));
        let _g = sh.write_mut()?;
        let t = sh.table()?;
        Ok(match sh.probe_live(&t, h, &k, now) {
            Probe::Vacant(s) => sh.insert_new(st, t, s, &k, h, &v, e, now).is_some(),
            _ => false,
        })
    }

    /// Overwrites only if present (and not expired: an expired entry is reclaimed).
    pub fn update(&mut self, key: In<'_>, val: In<'_>) -> Result<bool> {
        self.sh.writable()?;
        self.update_exp(key, val, None)
    }

    /// [`Map::update`] that also sets the entry's TTL (0 = permanent; clamped as in
    /// put_ttl). Errors on a map without TTL.
    pub fn update_ttl(&mut self, key: In<'_>, val: In<'_>, ttl_secs: u32) -> Result<bool> {
        self.sh.writable()?;
        self.sh.need_ttl()?;
        self.update_exp(key, val, Some(ttl_secs.min(ttl::MAX_TTL_ARG)))
    }

    fn update_exp(&mut self, key: In<'_>, val: In<'_>, ttl_secs: Option<u32>) -> Result<bool> {
        let (k, h) = self.sh.key(key)?;
        let v = self.sh.val(val, "value")?;
        let (sh, st) = (&self.sh, &mut self.st);
        let now = sh.now();
        let e = ttl_secs.map_or(Exp::Default, |s| Exp::Set(ttl::expiry(now, s)));
        let _g = sh.write_mut()?;
        let t = sh.table()?;
        Ok(match sh.find_live(&t, h, &k, now) {
            Some(i) if sh.replace_val(&t, i, &v, now) => {
                sh.hit(st, i, e, now);
                true
            }
            _ => false,
        })
    }

    /// Put that returns the previous value (None: the key was new or expired, or
    /// nothing could be stored).
    pub fn swap(&mut self, key: In<'_>, val: In<'_>) -> Result<Option<Out<'_>>> {
        self.sh.writable()?;
        let (k, h) = self.sh.key(key)?;
        let v = self.sh.val(val, "value")?;
        let (sh, st) = (&self.sh, &mut self.st);
        let now = sh.now();
        let _g = sh.write_mut()?;
        let t = sh.table()?;
        let got = match sh.probe_live(&t, h, &k, now) {
            Probe::Found(i) => {
                let old = sh.read_val(&t, i, &mut st.vbuf);
                let ok = sh.replace_val(&t, i, &v, now);
                if ok {
                    sh.hit(st, i, Exp::Default, now);
                }
                ok.then_some(old)
            }
            Probe::Vacant(s) => {
                sh.insert_new(st, t, s, &k, h, &v, Exp::Default, now);
                None
            }
            Probe::NoRoom => None,
        };
        drop(_g);
        Ok(got.map(|g| out(g, &self.st.vbuf)))
    }

    /// Removes `key` and returns its value (None if missing or expired; an expired
    /// entry is reclaimed).
    pub fn take(&mut self, key: In<'_>) -> Result<Option<Out<'_>>> {
        self.sh.writable()?;
        let (k, h) = self.sh.key(key)?;
        let (sh, st) = (&self.sh, &mut self.st);
        let now = sh.now();
        let _g = sh.write_mut()?;
        let t = sh.table()?;
        let got = sh.find_live(&t, h, &k, now).map(|i| {
            let g = sh.read_val(&t, i, &mut st.vbuf);
            sh.remove_at(&t, i);
            g
        });
        if got.is_some() || sh.ttl_on {
            sh.maybe_shrink(st);
        }
        drop(_g);
        Ok(got.map(|g| out(g, &self.st.vbuf)))
    }

    /// Removes `key`; true if it was present (expired or not: an expired entry is
    /// removed without counting it as expired).
    pub fn remove(&mut self, key: In<'_>) -> Result<bool> {
        self.sh.writable()?;
        let (k, h) = self.sh.key(key)?;
        let (sh, st) = (&self.sh, &mut self.st);
        let _g = sh.write_mut()?;
        let t = sh.table()?;
        match sh.find(&t, h, &k) {
            Some(i) => {
                sh.remove_at(&t, i);
                sh.maybe_shrink(st);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// The stored value (promoted, expiry refreshed), or `dflt` after inserting it;
    /// None if it could not be inserted.
    pub fn get_or_set(&mut self, key: In<'_>, dflt: In<'_>) -> Result<Option<Out<'_>>> {
        self.sh.writable()?;
        let (k, h) = self.sh.key(key)?;
        let v = self.sh.val(dflt, "value")?;
        let (sh, st) = (&self.sh, &mut self.st);
        let now = sh.now();
        let _g = sh.write_mut()?;
        let t = sh.table()?;
        let got = match sh.probe_live(&t, h, &k, now) {
            Probe::Found(i) => {
                sh.hit(st, i, Exp::Default, now);
                Some(sh.read_val(&t, i, &mut st.vbuf))
            }
            Probe::Vacant(s) => sh.insert_new(st, t, s, &k, h, &v, Exp::Default, now).map(|_| match v {
                V::Int(x) => Got::Int(x),
                V::Str(b, u) => {
                    st.vbuf.clear();
                    st.vbuf.extend_from_slice(b);
                    Got::Str(u)
                }
            }),
            Probe::NoRoom => None,
        };
        drop(_g);
        Ok(got.map(|g| out(g, &self.st.vbuf)))
    }

    /// Stores `desired` if the value equals `expected` (ints after narrowing; strings
    /// by bytes, the flag of `expected` ignored; the stored flag becomes `desired`'s).
    ///
    /// ```
    /// use hashmap_shared::{raw::{In, Map, Out, Variant}, Options};
    ///
    /// let mut m = Map::open(&Options::of(Variant::IS, 100))?;
    /// m.put(In::Int(1), In::Str(b"idle", false))?;
    /// assert!(m.cas(In::Int(1), In::Str(b"idle", false), In::Str(b"busy", false))?);
    /// assert!(!m.cas(In::Int(1), In::Str(b"idle", false), In::Str(b"busy", false))?);
    /// assert_eq!(m.get(In::Int(1))?, Some(Out::Str(b"busy", false)));
    /// # Ok::<(), hashmap_shared::Error>(())
    /// ```
    pub fn cas(&mut self, key: In<'_>, expected: In<'_>, desired: In<'_>) -> Result<bool> {
        self.sh.writable()?;
        let (k, h) = self.sh.key(key)?;
        let e = self.sh.val(expected, "expected value")?;
        let d = self.sh.val(desired, "desired value")?;
        let (sh, st) = (&self.sh, &mut self.st);
        let now = sh.now();
        let _g = sh.write_mut()?;
        let t = sh.table()?;
        Ok(match sh.find_live(&t, h, &k, now) {
            Some(i) if sh.val_eq(&t, i, &e) && sh.replace_val(&t, i, &d, now) => {
                sh.hit(st, i, Exp::Default, now);
                true
            }
            _ => false,
        })
    }

    /// Removes the entry if its value equals `expected`; returns the removed value.
    pub fn cas_take(&mut self, key: In<'_>, expected: In<'_>) -> Result<Option<Out<'_>>> {
        self.sh.writable()?;
        let (k, h) = self.sh.key(key)?;
        let e = self.sh.val(expected, "expected value")?;
        let (sh, st) = (&self.sh, &mut self.st);
        let now = sh.now();
        let _g = sh.write_mut()?;
        let t = sh.table()?;
        let got = match sh.find_live(&t, h, &k, now) {
            Some(i) if sh.val_eq(&t, i, &e) => {
                let g = sh.read_val(&t, i, &mut st.vbuf);
                sh.remove_at(&t, i);
                Some(g)
            }
            _ => None,
        };
        if got.is_some() || sh.ttl_on {
            sh.maybe_shrink(st);
        }
        drop(_g);
        Ok(got.map(|g| out(g, &self.st.vbuf)))
    }

    /// Adds `delta` (narrowed) to the value, wrapping at the variant width; a missing
    /// key is inserted with value `delta`. Returns the new value. Error kind `Full`
    /// when a new key cannot be inserted.
    ///
    /// ```
    /// use hashmap_shared::{raw::{In, Map, Variant}, Options};
    ///
    /// let mut m = Map::open(&Options::of(Variant::SI32, 100))?;
    /// let k = In::Str(b"requests", false);
    /// assert_eq!(m.incr_by(k, 1)?, 1);
    /// assert_eq!(m.incr_by(k, 10)?, 11);
    /// assert_eq!(m.incr_by(k, i32::MAX as i64)?, i32::MIN as i64 + 10);   // wraps at 32 bits
    /// assert_eq!(m.max(In::Str(b"best", false), 7)?, 7);
    /// assert_eq!(m.max(In::Str(b"best", false), 3)?, 7);
    /// # Ok::<(), hashmap_shared::Error>(())
    /// ```
    pub fn incr_by(&mut self, key: In<'_>, delta: i64) -> Result<i64> {
        self.sh.writable()?;
        let d = self.sh.counter_kind()?.narrow(delta);
        self.counter(key, d, move |t, i| t.val_fetch_add(i, d))
    }

    /// Stores max(current, v) (a missing key gets `v`); returns the resulting value.
    pub fn max(&mut self, key: In<'_>, v: i64) -> Result<i64> {
        self.sh.writable()?;
        let v = self.sh.counter_kind()?.narrow(v);
        self.counter(key, v, move |t, i| t.val_update(i, |c| c.max(v)))
    }

    /// Stores min(current, v) (a missing key gets `v`); returns the resulting value.
    pub fn min(&mut self, key: In<'_>, v: i64) -> Result<i64> {
        self.sh.writable()?;
        let v = self.sh.counter_kind()?.narrow(v);
        self.counter(key, v, move |t, i| t.val_update(i, |c| c.min(v)))
    }

    /// Counter skeleton: on a plain map, `apply` on an existing key under the read
    /// lock; otherwise (a missing key, or an LRU/TTL map, where a hit promotes and
    /// refreshes the expiry) under the write lock, a missing key inserted with `init`.
    fn counter(&mut self, key: In<'_>, init: i64, apply: impl Fn(&Table, usize) -> i64) -> Result<i64> {
        let (k, h) = self.sh.key(key)?;
        let (sh, st) = (&self.sh, &mut self.st);
        if !sh.extra {
            let _r = sh.lock.read();
            // Under the read lock freeze (a writer) cannot run: the seal is settled.
            sh.writable()?;
            if let Some(t) = sh.current() {
                if let Some(i) = sh.find(&t, h, &k) {
                    return Ok(apply(&t, i));
                }
            }
        }
        let now = sh.now();
        let _g = sh.write_mut()?;
        let t = sh.table()?;
        match sh.probe_live(&t, h, &k, now) {
            Probe::Found(i) => {
                let r = apply(&t, i);
                if sh.extra {
                    sh.hit(st, i, Exp::Default, now);
                }
                Ok(r)
            }
            Probe::Vacant(s) if sh.insert_new(st, t, s, &k, h, &V::Int(init), Exp::Default, now).is_some() => Ok(init),
            _ => Err(Error::new(ErrorKind::Full, "the map is full")),
        }
    }

    /// Puts every pair under one write lock; returns how many were stored.
    ///
    /// ```
    /// use hashmap_shared::{raw::{In, Map, Value, Variant}, Options};
    ///
    /// let mut m = Map::open(&Options::of(Variant::II, 100))?;
    /// assert_eq!(m.set_multi(&[(In::Int(1), In::Int(10)), (In::Int(2), In::Int(20))])?, 2);
    /// assert_eq!(m.get_multi(&[In::Int(2), In::Int(3)])?, vec![Some(Value::Int(20)), None]);
    /// assert_eq!(m.remove_multi(&[In::Int(1), In::Int(3)])?, 1);
    /// # Ok::<(), hashmap_shared::Error>(())
    /// ```
    pub fn set_multi(&mut self, pairs: &[(In<'_>, In<'_>)]) -> Result<u64> {
        self.sh.writable()?;
        let mut prep = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            let (k, h) = self.sh.key(*k)?;
            prep.push((k, h, self.sh.val(*v, "value")?));
        }
        let (sh, st) = (&self.sh, &mut self.st);
        let now = sh.now();
        let _g = sh.write_mut()?;
        let mut n = 0;
        for (k, h, v) in &prep {
            if sh.put_locked(st, k, *h, v, Exp::Default, now)? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Removes every listed key under one write lock (one shrink check at the end);
    /// returns how many were removed (expired entries included).
    pub fn remove_multi(&mut self, keys: &[In<'_>]) -> Result<u64> {
        self.sh.writable()?;
        let prep = keys.iter().map(|k| self.sh.key(*k)).collect::<Result<Vec<_>>>()?;
        let (sh, st) = (&self.sh, &mut self.st);
        let _g = sh.write_mut()?;
        let t = sh.table()?;
        let mut n = 0;
        for (k, h) in &prep {
            if let Some(i) = sh.find(&t, *h, k) {
                sh.remove_at(&t, i);
                n += 1;
            }
        }
        if n > 0 {
            sh.maybe_shrink(st);
        }
        Ok(n)
    }

    /// Looks every key up under one read lock (a consistent snapshot); calls
    /// `sink(index, value)` for each, in order. Expired entries are None; no entry is
    /// marked accessed.
    pub fn get_multi_with(&mut self, keys: &[In<'_>], mut sink: impl FnMut(usize, Option<Out<'_>>)) -> Result<()> {
        let prep = keys.iter().map(|k| self.sh.key(*k)).collect::<Result<Vec<_>>>()?;
        let (sh, st) = (&self.sh, &mut self.st);
        let now = sh.now();
        let _r = sh.read_lock();
        let t = sh.current();
        for (n, (k, h)) in prep.iter().enumerate() {
            match t.as_ref().and_then(|t| sh.find(t, *h, k).map(|i| (t, i))) {
                Some((t, i)) if !sh.expired(i, now) => {
                    let g = sh.read_val(t, i, &mut st.vbuf);
                    sink(n, Some(out(g, &st.vbuf)));
                }
                _ => sink(n, None),
            }
        }
        Ok(())
    }

    /// [`Map::get_multi_with`] collecting owned values.
    pub fn get_multi(&mut self, keys: &[In<'_>]) -> Result<Vec<Option<Value>>> {
        let mut v = Vec::with_capacity(keys.len());
        self.get_multi_with(keys, |_, o| v.push(o.map(Out::to_value)))?;
        Ok(v)
    }

    /// Promotes `key` (LRU, lru_skip applies) and resets its expiry to now + the
    /// default TTL unless it is permanent (TTL). False when missing or expired (an
    /// expired entry is reclaimed), and always on a map with neither LRU nor TTL.
    pub fn touch(&mut self, key: In<'_>) -> Result<bool> {
        self.sh.writable()?;
        if !self.sh.extra {
            return Ok(false);
        }
        let (k, h) = self.sh.key(key)?;
        let (sh, st) = (&self.sh, &mut self.st);
        let now = sh.now();
        let _g = sh.write_mut()?;
        let t = sh.table()?;
        Ok(match sh.find_live(&t, h, &k, now) {
            Some(i) => {
                sh.hit(st, i, Exp::Default, now);
                true
            }
            None => false,
        })
    }

    /// Makes `key` permanent. False when missing or expired (reclaimed), and on a map
    /// without TTL.
    pub fn persist(&mut self, key: In<'_>) -> Result<bool> {
        self.sh.writable()?;
        self.set_expiry(key, None)
    }

    /// Sets `key` to expire `ttl_secs` from now (0 = permanent); the value and the LRU
    /// position are unchanged. False when missing or expired (reclaimed), and on a map
    /// without TTL.
    pub fn set_ttl(&mut self, key: In<'_>, ttl_secs: u32) -> Result<bool> {
        self.sh.writable()?;
        self.set_expiry(key, Some(ttl_secs))
    }

    fn set_expiry(&mut self, key: In<'_>, ttl_secs: Option<u32>) -> Result<bool> {
        if !self.sh.ttl_on {
            return Ok(false);
        }
        let (k, h) = self.sh.key(key)?;
        let sh = &self.sh;
        let now = sh.now();
        let _g = sh.write_mut()?;
        let t = sh.table()?;
        Ok(match (sh.find_live(&t, h, &k, now), sh.ttl_view()) {
            (Some(i), Some(x)) => {
                x.set(i, ttl_secs.map_or(0, |s| ttl::expiry(now, s)));
                true
            }
            _ => false,
        })
    }

    /// Removes every expired entry in one write-locked pass; returns how many (each
    /// counted in `stat_expired`). 0 on a map without TTL.
    pub fn flush_expired(&mut self) -> Result<u64> {
        self.sh.writable()?;
        if !self.sh.ttl_on {
            return Ok(0);
        }
        let (sh, st) = (&self.sh, &mut self.st);
        let now = sh.now();
        let _g = sh.write_mut()?;
        let t = sh.table()?;
        let n = sh.flush_range(&t, 0, t.cap, now);
        if n > 0 {
            sh.maybe_shrink(st);
        }
        Ok(n)
    }

    /// Scans the next `limit` slots (at least 1, at most the capacity) from the scan
    /// cursor in the header (shared by every handle), removing expired entries.
    /// Returns (removed, done): done when the scan reached the end of the table (the
    /// cursor then restarts at 0, and the table may shrink). (0, true) without TTL.
    pub fn flush_expired_partial(&mut self, limit: u32) -> Result<(u64, bool)> {
        self.sh.writable()?;
        if !self.sh.ttl_on {
            return Ok((0, true));
        }
        let (sh, st) = (&self.sh, &mut self.st);
        let now = sh.now();
        let _g = sh.write_mut()?;
        let t = sh.table()?;
        // Relaxed load/store under the write lock (see h32).
        let cur = sh.h32(off::FLUSH_CURSOR);
        let start = cur.load(Relaxed) as usize;
        let start = if start >= t.cap { 0 } else { start };
        let end = (start + (limit.max(1) as usize).min(t.cap)).min(t.cap);
        let n = sh.flush_range(&t, start, end, now);
        let done = end >= t.cap;
        cur.store(if done { 0 } else { end as u32 }, Relaxed);
        if done {
            sh.maybe_shrink(st);
        }
        Ok((n, done))
    }

    /// Removes and returns one entry: the least recently used (LRU tail) on LRU maps,
    /// else the one in the lowest slot (the order of `keys` / `each`). Expired entries
    /// met first are reclaimed and skipped. None when empty.
    ///
    /// ```
    /// use hashmap_shared::{raw::{In, Map, Out, Value, Variant}, Options};
    ///
    /// // On an LRU map, pop takes the least recently used entry: a FIFO queue.
    /// let mut q = Map::open(&Options::of(Variant::II, 100).lru(100, 0))?;
    /// for job in [7, 8, 9] {
    ///     q.put(In::Int(job), In::Int(job * 100))?;
    /// }
    /// assert_eq!(q.pop()?, Some((Out::Int(7), Out::Int(700))));
    /// assert_eq!(q.drain(10)?, vec![(Value::Int(8), Value::Int(800)), (Value::Int(9), Value::Int(900))]);
    /// assert_eq!(q.pop()?, None);
    /// # Ok::<(), hashmap_shared::Error>(())
    /// ```
    pub fn pop(&mut self) -> Result<Option<(Out<'_>, Out<'_>)>> {
        self.sh.writable()?;
        self.take_one(false)
    }

    /// The other end from [`Map::pop`]: the most recently used entry (LRU head), else
    /// the one in the highest slot.
    pub fn shift(&mut self) -> Result<Option<(Out<'_>, Out<'_>)>> {
        self.sh.writable()?;
        self.take_one(true)
    }

    fn take_one(&mut self, shift: bool) -> Result<Option<(Out<'_>, Out<'_>)>> {
        Ok(if self.take_one_raw(shift)? { self.scanned() } else { None })
    }

    /// pop (`shift` false) / shift; true when an entry was removed, which
    /// [`Map::scanned`] then returns (shard.rs tries several shards in a row).
    pub(crate) fn take_one_raw(&mut self, shift: bool) -> Result<bool> {
        self.sh.writable()?;
        let (sh, st) = (&self.sh, &mut self.st);
        let now = sh.now();
        let _g = sh.write_mut()?;
        let t = sh.table()?;
        let mut pos = if shift { t.cap } else { 0 };
        let got = sh.take_end(st, &t, shift, &mut pos, now);
        sh.maybe_shrink(st);
        st.scanned = got;
        Ok(got.is_some())
    }

    /// Removes up to `n` entries in pop order (`n` clamped to the size first), calling
    /// `sink(key, value)` for each (under the write lock: the sink must not use the
    /// map). Expired entries are reclaimed and skipped. Returns how many were removed.
    pub fn drain_with(&mut self, n: u64, mut sink: impl FnMut(Out<'_>, Out<'_>)) -> Result<u64> {
        self.sh.writable()?;
        let (sh, st) = (&self.sh, &mut self.st);
        let now = sh.now();
        let _g = sh.write_mut()?;
        let t = sh.table()?;
        // Relaxed: under the write lock (see h32).
        let n = n.min(sh.h32(off::SIZE).load(Relaxed) as u64);
        let mut pos = 0;
        let mut got = 0;
        while got < n {
            let Some((k, v)) = sh.take_end(st, &t, false, &mut pos, now) else { break };
            sink(out(k, &st.kbuf), out(v, &st.vbuf));
            got += 1;
        }
        sh.maybe_shrink(st);
        Ok(got)
    }

    /// [`Map::drain_with`] collecting owned pairs.
    pub fn drain(&mut self, n: u64) -> Result<Vec<(Value, Value)>> {
        let mut v = Vec::new();
        self.drain_with(n, |k, x| v.push((k.to_value(), x.to_value())))?;
        Ok(v)
    }

    /// Keys from the most to the least recently used (LRU maps; empty otherwise), under
    /// the read lock. A diagnostic: it walks the whole list.
    pub fn lru_keys(&mut self) -> Result<Vec<Value>> {
        let (sh, st) = (&self.sh, &mut self.st);
        let mut v = Vec::new();
        let _r = sh.read_lock();
        let (Some(l), Some(t)) = (sh.lru_view(), sh.current()) else { return Ok(v) };
        let mut cur = l.head();
        while let Some(i) = cur {
            if i >= t.cap || v.len() > t.cap {
                break;
            }
            v.push(out(sh.read_key(&t, i, &mut st.kbuf), &st.kbuf).to_value());
            cur = l.older(i);
        }
        Ok(v)
    }

    /// Removes every entry: table back to 16 slots, arena emptied, LRU list emptied,
    /// pages released, iterators of all handles restart. Statistics are kept.
    pub fn clear(&mut self) -> Result<()> {
        self.sh.writable()?;
        let (sh, st) = (&self.sh, &mut self.st);
        let _g = sh.write_mut()?;
        let old = sh.current().map(|t| t.cap).unwrap_or(sh.lay.max_cap as usize);
        let t = sh.table_at(layout::MIN_CAP as usize);
        for i in 0..layout::MIN_CAP as usize {
            t.set_ctrl(i, Ctrl::EMPTY);
        }
        // Relaxed stores under the write lock: see Shared::h32.
        sh.h32(off::CAP).store(layout::MIN_CAP, Relaxed);
        sh.h32(off::SIZE).store(0, Relaxed);
        sh.h32(off::TOMBS).store(0, Relaxed);
        sh.h32(off::FLUSH_CURSOR).store(0, Relaxed);
        if let Some(l) = sh.lru_view() {
            l.clear();
        }
        sh.bump_generation();
        sh.unreserve_table(layout::MIN_CAP as usize);
        sh.release_tail(layout::MIN_CAP as usize, old);
        // A failure leaves an empty map whose arena lacks some free blocks until the
        // next clear or repair: report it.
        sh.arena().reset().map_err(|e| sh.nospace(e))?;
        st.each_active = false;
        st.each_pos = 0;
        st.deferred = false;
        Ok(())
    }
    /// Grows the table so that `n` entries fit under the 7/8 load (capacity
    /// next_pow2(ceil(n * 8 / 7))). False if that is beyond the maximum capacity.
    pub fn reserve(&mut self, n: u64) -> Result<bool> {
        self.sh.writable()?;
        let need = (n as u128 * 8).div_ceil(7).max(layout::MIN_CAP as u128).next_power_of_two();
        if need > self.sh.lay.max_cap as u128 {
            return Ok(false);
        }
        let sh = &self.sh;
        let _g = sh.write_mut()?;
        let t = sh.table()?;
        if t.cap < need as usize {
            sh.reserve_table(need as usize).map_err(|e| sh.nospace(e))?;
            sh.resize(t, need as usize);
        }
        Ok(true)
    }

    /// msync(MS_SYNC) of the whole map (nothing to do for anonymous maps, but harmless).
    pub fn sync(&self) -> Result<()> {
        // Read-only handles: nothing of ours to flush (api.md 6.9: a silent no-op).
        if self.sh.ro {
            return Ok(());
        }
        self.sh.map.sync().map_err(|e| Error::os(crate::error::strerror(e), e))
    }

    /// Removes the backing file (file maps); true on success. Never fails otherwise.
    pub fn unlink(&self) -> bool {
        match &self.sh.path {
            // SAFETY: p is NUL-terminated.
            Some(p) => unsafe { libc::unlink(p.as_ptr()) == 0 },
            None => false,
        }
    }

    /// Next entry of this handle's built-in iterator (slot order); None at the end,
    /// which also resets it. Restarts from the first slot after any resize.
    pub fn each(&mut self) -> Result<Option<(Out<'_>, Out<'_>)>> {
        Ok(if self.each_raw() { self.scanned() } else { None })
    }

    /// `each`: true when it found an entry, which [`Map::scanned`] then returns.
    pub(crate) fn each_raw(&mut self) -> bool {
        let (sh, st) = (&self.sh, &mut self.st);
        let now = sh.now();
        let found = {
            let _r = sh.read_lock();
            // Relaxed: we hold the read lock, which orders us after the last resize.
            let gen = sh.h32(off::GENERATION).load(Relaxed);
            if !st.each_active || st.each_gen != gen {
                st.each_active = true;
                st.each_pos = 0;
                st.each_gen = gen;
            }
            let t = sh.current();
            let mut next = t.and_then(|t| t.next_full(st.each_pos).map(|i| (t, i)));
            // Expired entries are skipped (not removed).
            while let Some((t, i)) = next.filter(|&(_, i)| sh.expired(i, now)) {
                next = t.next_full(i + 1).map(|j| (t, j));
            }
            match next {
                Some((t, i)) => {
                    st.each_pos = i + 1;
                    Some((sh.read_key(&t, i, &mut st.kbuf), sh.read_val(&t, i, &mut st.vbuf)))
                }
                None => None,
            }
        };
        self.st.scanned = found;
        if found.is_none() {
            self.iter_reset();
        }
        found.is_some()
    }

    /// Resets this handle's iterator and runs any shrink deferred while it was active.
    pub fn iter_reset(&mut self) {
        self.st.each_active = false;
        self.st.each_pos = 0;
        self.run_deferred();
    }

    /// Runs a shrink deferred while this handle iterated, once no iteration (`each`,
    /// cursor) of this handle sits on the table any more.
    pub(crate) fn run_deferred(&mut self) {
        let (sh, st) = (&self.sh, &mut self.st);
        if st.deferred && !st.each_active && st.cursors == 0 && !sh.ro {
            st.deferred = false;
            // Not on a map sealed meanwhile (by another handle): it must not change.
            if let Ok(_g) = sh.write_mut() {
                sh.maybe_shrink(st);
            }
        }
    }

    /// Calls `f(key, value)` for every live (unexpired) entry, in slot order, under one
    /// read lock (a consistent snapshot). `keys` / `vals` false skip copying that side (an empty
    /// string / 0 is passed instead).
    ///
    /// ```
    /// use hashmap_shared::{raw::{In, Map, Out, Variant}, Options};
    ///
    /// let mut m = Map::open(&Options::of(Variant::SI, 100))?;
    /// m.put(In::Str(b"a", false), In::Int(1))?;
    /// m.put(In::Str(b"b", false), In::Int(2))?;
    /// let mut sum = 0;
    /// m.for_each(false, true, |_, v| if let Out::Int(n) = v { sum += n })?;
    /// assert_eq!(sum, 3);
    /// // each() walks entry by entry with the handle's own iterator
    /// let mut n = 0;
    /// while m.each()?.is_some() {
    ///     n += 1;
    /// }
    /// assert_eq!(n, 2);
    /// # Ok::<(), hashmap_shared::Error>(())
    /// ```
    pub fn for_each(&mut self, keys: bool, vals: bool, mut f: impl FnMut(Out<'_>, Out<'_>)) -> Result<()> {
        let (sh, st) = (&self.sh, &mut self.st);
        let now = sh.now();
        let _r = sh.read_lock();
        let Some(t) = sh.current() else { return Ok(()) };
        let mut i = 0;
        while let Some(j) = t.next_full(i) {
            if sh.expired(j, now) {
                i = j + 1;
                continue;
            }
            let gk = if keys { sh.read_key(&t, j, &mut st.kbuf) } else { Got::Int(0) };
            let gv = if vals { sh.read_val(&t, j, &mut st.vbuf) } else { Got::Int(0) };
            f(out(gk, &st.kbuf), out(gv, &st.vbuf));
            i = j + 1;
        }
        Ok(())
    }

    /// All entries (owned), in slot order.
    pub fn items(&mut self) -> Result<Vec<(Value, Value)>> {
        let mut v = Vec::new();
        self.for_each(true, true, |k, x| v.push((k.to_value(), x.to_value())))?;
        Ok(v)
    }

    /// Walks the whole structure under the read lock and describes every inconsistency
    /// found: counts, probe chains, string references, the arena's lists and counters,
    /// the LRU list, an unfinished resize. Empty when the map is sound.
    pub fn verify(&self) -> Vec<String> {
        self.sh.verify()
    }

    /// Statistics and geometry.
    ///
    /// ```
    /// use hashmap_shared::{raw::{In, Map, Variant}, Options};
    ///
    /// let mut m = Map::open(&Options::of(Variant::SS, 1000))?;
    /// m.put(In::Str(b"a key longer than seven bytes", false), In::Str(b"v", false))?;
    /// let st = m.stats();
    /// assert_eq!(st.size, 1);
    /// assert!(st.max_entries >= 1000 && st.capacity >= 16);
    /// assert!(st.arena_used > 0);   // long strings live in the arena
    /// # Ok::<(), hashmap_shared::Error>(())
    /// ```
    pub fn stats(&self) -> Stats {
        let sh = &self.sh;
        let l = &sh.lay;
        // Relaxed loads: independent counters reported as-is (no consistency between
        // them is promised).
        let r32 = |o| sh.h32(o).load(Relaxed) as u64;
        let r64 = |o| sh.h64(o).load(Relaxed);
        Stats {
            size: r32(off::SIZE),
            capacity: r32(off::CAP),
            max_entries: l.max_entries as u64,
            tombstones: r32(off::TOMBS),
            mmap_size: l.total_size as u64,
            arena_used: if l.arena_cap > 0 { r64(off::ARENA_USED) } else { 0 },
            arena_cap: l.arena_cap,
            evictions: r64(off::EVICTIONS),
            expired: r64(off::EXPIRED),
            recoveries: r64(off::RECOVERIES),
            max_size: l.max_size as u64,
            ttl: l.ttl as u64,
            frozen: sh.sealed() as u64,
            readonly: sh.ro as u64,
        }
    }

    /// Seals the map for good (api.md 6.9): every handle's mutators refuse from now
    /// on, and this handle becomes read-only (it gives up its reader slot). Flushes
    /// the mapping (msync) afterwards. Errors: "cannot freeze a read-only handle" (this
    /// handle is read-only or the map is already sealed), "msync: STRERROR".
    pub fn freeze(&mut self) -> Result<()> {
        let refused = || Error::new(ErrorKind::Frozen, "cannot freeze a read-only handle");
        if self.sh.ro || self.sh.sealed() {
            return Err(refused());
        }
        {
            let _g = self.sh.write_mut().map_err(|_| refused())?;
            // Relaxed: published by the lock release; every mutator re-reads it after
            // acquiring the lock (write_mut), readers need not see it at once.
            self.sh.map.u32(off::SEALED).store(1, Relaxed);
        }
        self.st.deferred = false;
        self.sh.lock.release_slot();
        self.sh.ro = true;
        self.sh.map.sync().map_err(|e| Error::io("msync", e))
    }

    /// Runs `f` while holding this map's write lock (refused like a mutator on a frozen
    /// map). A testing aid: it lets a test prove that a process holding one shard's
    /// lock does not block writers of another shard.
    #[doc(hidden)]
    pub fn with_write_lock<R>(&self, f: impl FnOnce() -> R) -> Result<R> {
        self.sh.writable()?;
        let _g = self.sh.write_mut()?;
        Ok(f())
    }

    /// Err("map is frozen (read-only)") on a frozen map or a read-only handle.
    pub(crate) fn writable_check(&self) -> Result<()> {
        self.sh.writable()
    }

    /// Is the map sealed (by any handle)?
    pub fn frozen(&self) -> bool {
        self.sh.sealed()
    }

    /// Is this handle read-only (opened with [`Map::open_readonly`], or it froze the map)?
    pub fn readonly(&self) -> bool {
        self.sh.ro
    }

    /// What the header says about the shard set this file belongs to: (index, count,
    /// C routing, seed). A plain map is shard 0 of 1; an upgraded C file has count 0
    /// (not known yet) and C routing (shard.rs).
    pub(crate) fn shard_header(&self) -> (u32, u32, bool, u64) {
        // Relaxed: static header fields, written before the map was published.
        let r = |o| self.sh.map.u32(o).load(Relaxed);
        (r(off::SHARD_INDEX), r(off::SHARD_COUNT), r(off::FLAGS) & layout::FLAG_C_ROUTING != 0, self.sh.seed)
    }

    /// One step of a cursor (cursor.rs): the first live entry at or after slot `from`
    /// of the table of generation `gen` (None: not started), from slot 0 if the table
    /// was resized since (the generation differs). Returns the current generation and
    /// the entry with its slot; None at the end of the table. Each step takes the read
    /// lock on its own (none on read-only handles). The entry is then available from
    /// [`Map::scanned`].
    pub(crate) fn scan(&mut self, from: usize, gen: Option<u32>) -> (u32, Option<usize>) {
        let (sh, st) = (&self.sh, &mut self.st);
        let now = sh.now();
        let (g, found) = {
            let _r = sh.read_lock();
            // Relaxed: the read lock orders us after the last resize (read-only handles:
            // nothing changes any more).
            let g = sh.h32(off::GENERATION).load(Relaxed);
            let from = if gen == Some(g) { from } else { 0 };
            let t = sh.current();
            let mut next = t.and_then(|t| t.next_full(from).map(|i| (t, i)));
            // Expired entries are skipped (not removed).
            while let Some((t, i)) = next.filter(|&(_, i)| sh.expired(i, now)) {
                next = t.next_full(i + 1).map(|j| (t, j));
            }
            (g, next.map(|(t, i)| (i, sh.read_key(&t, i, &mut st.kbuf), sh.read_val(&t, i, &mut st.vbuf))))
        };
        st.scanned = found.map(|(_, k, v)| (k, v));
        (g, found.map(|(i, _, _)| i))
    }

    /// The entry the last successful [`Map::scan`] found.
    pub(crate) fn scanned(&self) -> Option<(Out<'_>, Out<'_>)> {
        self.st.scanned.map(|(k, v)| (out(k, &self.st.kbuf), out(v, &self.st.vbuf)))
    }

    /// The slot of live `key` and the table generation it was found in (cursor seek).
    pub(crate) fn slot_of(&mut self, key: In<'_>) -> Result<Option<(usize, u32)>> {
        let (k, h) = self.sh.key(key)?;
        let sh = &self.sh;
        let now = sh.now();
        let _r = sh.read_lock();
        // Relaxed: as in scan.
        let g = sh.h32(off::GENERATION).load(Relaxed);
        let Some(t) = sh.current() else { return Ok(None) };
        Ok(sh.find(&t, h, &k).filter(|&i| !sh.expired(i, now)).map(|i| (i, g)))
    }

    /// A cursor of this handle starts sitting on this table: defer shrinks.
    pub(crate) fn cursor_enter(&mut self) {
        self.st.cursors += 1;
    }

    /// A cursor left this table (exhausted, reset, moved away, dropped): run a shrink
    /// deferred for it once no iteration of this handle is left on the table.
    pub(crate) fn cursor_leave(&mut self) {
        self.st.cursors = self.st.cursors.saturating_sub(1);
        self.run_deferred();
    }

    /// Live entries.
    pub fn len(&self) -> u64 {
        self.stats().size
    }
    /// No entries?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        // A read-only handle never claimed a slot (and may not write the mapping).
        if !self.sh.ro {
            self.sh.lock.release_slot();
        }
    }
}

impl Shared {
    #[inline]
    fn h32(&self, o: usize) -> &AtomicU32 {
        // Header counters (cap, size, tombstones, generation, journal) are written only
        // by the write-lock holder with Relaxed load/store pairs (no lost updates: one
        // writer), and read Relaxed by readers whom the lock / seqlock orders.
        self.map.u32(o)
    }
    #[inline]
    fn h64(&self, o: usize) -> &AtomicU64 {
        self.map.u64(o)
    }
    #[inline]
    fn arena(&self) -> Arena<'_> {
        Arena::new(&self.map, &self.lay)
    }

    /// Is the seal (freeze, api.md 7.9) set in the shared header? Any handle may have
    /// set it.
    #[inline(always)]
    fn sealed(&self) -> bool {
        // Relaxed: a one-way flag. Mutators re-check it under the write lock (whose
        // acquisition orders them after the freeze's release), so a stale false here
        // only delays the refusal to that check.
        self.map.u32(off::SEALED).load(Relaxed) != 0
    }

    /// The refusal of mutators on frozen maps and read-only handles, checked before a
    /// mutator does anything (so before the TTL-enabled check, api.md 7.9).
    #[inline(always)]
    fn writable(&self) -> Result<()> {
        if self.ro || self.sealed() {
            return Err(frozen());
        }
        Ok(())
    }

    /// The write lock for a mutator: refused when the map was sealed before we got it
    /// (freeze holds the write lock while it sets the seal).
    #[inline(always)]
    fn write_mut(&self) -> Result<WriteGuard<'_>> {
        let g = self.write();
        if self.sealed() {
            return Err(frozen());
        }
        Ok(g)
    }

    /// The read lock, except on read-only handles: they never lock (a sealed map has
    /// no writers left, so there is nothing to exclude) and may not write their reader
    /// slot into a read-only mapping.
    #[inline]
    fn read_lock(&self) -> Option<ReadGuard<'_>> {
        if self.ro {
            None
        } else {
            Some(self.lock.read())
        }
    }

    /// Takes the write lock; when the previous holder had died, repairs what it may have
    /// left half-done (repair.rs) and counts a recovery.
    #[inline(always)]
    fn write(&self) -> WriteGuard<'_> {
        let g = self.lock.write();
        if g.recovered() {
            self.recovered();
        }
        g
    }

    #[cold]
    #[inline(never)]
    fn recovered(&self) {
        self.repair();
        // Relaxed: under the write lock (see h32).
        let r = self.h64(off::RECOVERIES);
        r.store(r.load(Relaxed) + 1, Relaxed);
    }

    /// Rebuilds the LRU list (in slot order) unless it is consistent with the table
    /// (write-lock holder only).
    fn repair_lru(&self) {
        let (Some(l), Some(t)) = (self.lru_view(), self.current()) else { return };
        // Relaxed: under the write lock (see h32).
        let size = self.h32(off::SIZE).load(Relaxed) as usize;
        if !l.check(t.cap, size, |i| t.ctrl(i).is_full()) {
            let mut i = 0;
            l.rebuild(std::iter::from_fn(|| {
                let j = t.next_full(i)?;
                i = j + 1;
                Some(j)
            }));
        }
    }

    /// This handle's clock, as seconds after the map's ttl epoch (0 without TTL: the
    /// clock is not even read).
    #[inline(always)]
    fn now(&self) -> u64 {
        if !self.ttl_on {
            return 0;
        }
        let abs = match &self.clock {
            None => ttl::wall_now(),
            Some(c) => c.now(),
        };
        ttl::rel(abs, self.epoch)
    }

    /// The error of TTL-only operations on a map without TTL (api.md 6.5).
    fn need_ttl(&self) -> Result<()> {
        if self.ttl_on {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::Unsupported,
                "operation requires a TTL-enabled map (pass ttl > 0 to constructor)",
            ))
        }
    }

    #[inline]
    fn lru_view(&self) -> Option<Lru<'_>> {
        if self.lru_on {
            Lru::new(&self.map, &self.lay)
        } else {
            None
        }
    }

    #[inline]
    fn ttl_view(&self) -> Option<Ttl<'_>> {
        if self.ttl_on {
            Ttl::new(&self.map, &self.lay)
        } else {
            None
        }
    }

    /// Has the entry of slot `i` expired at `now`? (Always false without TTL.)
    #[inline]
    fn expired(&self, i: usize, now: u64) -> bool {
        self.ttl_on && self.ttl_view().is_some_and(|x| ttl::is_expired(x.get(i), now))
    }

    /// The optimistic lookup of LRU/TTL maps: expired entries read as absent; a hit is
    /// marked accessed (LRU, when `mark`) once the read validated.
    #[inline(never)]
    fn get_extra(&self, h: u64, k: &K, buf: &mut Vec<u8>, mark: bool) -> Looked {
        let now = self.now();
        let x = self.ttl_view();
        let l = if mark && !self.ro { self.lru_view() } else { None };
        let (mut slot, mut exp) = (0usize, 0u32);
        // (tag, int) travel in registers; the slot and expiry of a hit go to locals.
        let (tag, v) = self.lock.optimistic(|| {
            let Some(t) = self.current() else { return (0u8, 0i64) };
            // The side data of the key's home group, loaded while the slots are (the
            // usual hit is in that group): one memory latency instead of two.
            let home = h as usize & (t.cap - 1);
            if let Some(x) = x {
                x.prefetch(home);
            }
            if let Some(l) = l {
                l.prefetch_acc(home);
            }
            let Some(i) = self.find(&t, h, k) else { return (0, 0) };
            let e = match x {
                Some(x) => x.get(i),
                None => 0,
            };
            if ttl::is_expired(e, now) {
                return (0, 0);
            }
            slot = i;
            exp = e;
            match self.read_val(&t, i, buf) {
                Got::Int(v) => (1, v),
                Got::Str(u) => (2 + u as u8, 0),
            }
        });
        if tag != 0 {
            if let Some(l) = l {
                l.mark(slot);
            }
        }
        Looked { tag, v, exp, now }
    }

    /// Probe for a write: an expired entry found is reclaimed (counted) and the key
    /// probed again, so callers see it as absent.
    #[inline]
    fn probe_live(&self, t: &Table, h: u64, k: &K, now: u64) -> Probe {
        let p = self.probe(t, h, k);
        if let Probe::Found(i) = p {
            if self.expired(i, now) {
                self.reclaim(t, i);
                return self.probe(t, h, k);
            }
        }
        p
    }

    /// Lookup for a write: an expired entry found is reclaimed (counted): None.
    #[inline]
    fn find_live(&self, t: &Table, h: u64, k: &K, now: u64) -> Option<usize> {
        let i = self.find(t, h, k)?;
        if self.expired(i, now) {
            self.reclaim(t, i);
            return None;
        }
        Some(i)
    }

    /// Removes the expired entry of slot `i`, counting it in stat_expired.
    fn reclaim(&self, t: &Table, i: usize) {
        self.remove_at(t, i);
        // Relaxed load/store under the write lock (see h32).
        let e = self.h64(off::EXPIRED);
        e.store(e.load(Relaxed) + 1, Relaxed);
    }

    /// A write hit slot `i`: promote it (LRU, lru_skip applies) and set its expiry as
    /// `e` says (TTL). Nothing on plain maps.
    #[inline]
    fn hit(&self, st: &mut State, i: usize, e: Exp, now: u64) {
        if !self.extra {
            return;
        }
        if let Some(l) = self.lru_view() {
            l.promote(i, self.lay.lru_skip, &mut st.skip);
        }
        if let Some(x) = self.ttl_view() {
            match e {
                Exp::Default => {
                    if x.get(i) != 0 {
                        x.set(i, ttl::expiry(now, self.lay.ttl));
                    }
                }
                Exp::Set(v) => x.set(i, v),
            }
        }
    }

    /// Reclaims the expired entries of slots start..end; returns how many.
    fn flush_range(&self, t: &Table, start: usize, end: usize, now: u64) -> u64 {
        let mut n = 0;
        let mut i = start;
        while let Some(j) = t.next_full(i) {
            if j >= end {
                break;
            }
            if self.expired(j, now) {
                self.reclaim(t, j);
                n += 1;
            }
            i = j + 1;
        }
        n
    }

    /// Removes the entry at one end, copying its key to `st.kbuf` and its value to
    /// `st.vbuf`: LRU maps: the tail (pop) or head (shift), ignoring accessed bytes;
    /// plain maps: the lowest slot at or above `*pos` (pop) or the highest below it
    /// (shift). Expired entries met are reclaimed and skipped.
    fn take_end(&self, st: &mut State, t: &Table, shift: bool, pos: &mut usize, now: u64) -> Option<(Got, Got)> {
        let lru = self.lru_view();
        let mut repaired = false;
        loop {
            let i = match lru {
                Some(l) => {
                    let i = if shift { l.head()? } else { l.tail()? };
                    if i >= t.cap || !t.ctrl(i).is_full() {
                        if repaired {
                            return None;
                        }
                        self.repair_lru();
                        repaired = true;
                        continue;
                    }
                    i
                }
                None if shift => {
                    let i = t.prev_full(*pos)?;
                    *pos = i;
                    i
                }
                None => {
                    let i = t.next_full(*pos)?;
                    *pos = i + 1;
                    i
                }
            };
            if self.expired(i, now) {
                self.reclaim(t, i);
                continue;
            }
            let gk = self.read_key(t, i, &mut st.kbuf);
            let gv = self.read_val(t, i, &mut st.vbuf);
            self.remove_at(t, i);
            return Some((gk, gv));
        }
    }

    /// The table under the write lock; an out-of-range capacity is a damaged map.
    #[inline(always)]
    fn table(&self) -> Result<Table<'_>> {
        match self.current() {
            Some(t) => Ok(t),
            None => Err(corrupt_cap()),
        }
    }

    /// The table at the capacity the header records (see [`Table::at_current`]).
    #[inline(always)]
    fn current(&self) -> Option<Table<'_>> {
        self.tab.at_current(&self.map)
    }

    /// The table at capacity `cap` (not checked).
    #[inline(always)]
    fn table_at(&self, cap: usize) -> Table<'_> {
        self.tab.at_cap(cap)
    }

    /// The error of an operation whose space could not be reserved: "PATH: No space
    /// left on device" (the backing's name for maps without a path).
    #[cold]
    fn nospace(&self, errno: i32) -> Error {
        let what = match (&self.path, self.backing) {
            (Some(p), _) => p.to_string_lossy().into_owned(),
            (None, Backing::Anon) => "anonymous map".into(),
            (None, _) => "memfd map".into(),
        };
        Error::io(what, errno)
    }

    /// Brings a file written before space reservation existed under its invariants
    /// (decisions 19), once, under the write lock: reserves the header and reader
    /// slots and the arena bitmap (pages a later write may touch for the first time)
    /// and gives the arena's free blocks their sparse marks (arena.rs). The table is
    /// covered by its mark, 0 in such a file: the next grow reserves it whole.
    fn adopt_reservation(&self) -> Result<()> {
        // Relaxed: a hint; checked again under the lock.
        if self.map.u32(off::ARENA_SPARSE_AWARE).load(Relaxed) != 0 {
            return Ok(());
        }
        let _g = self.write();
        if self.map.u32(off::ARENA_SPARSE_AWARE).load(Relaxed) == 0 {
            let l = &self.lay;
            self.map.reserve(0, l.ctrl_off).map_err(|e| self.nospace(e))?;
            if l.arena_cap > 0 {
                self.map.reserve(l.arena_bitmap_off, l.arena_bitmap_len).map_err(|e| self.nospace(e))?;
                self.arena().mark_all_sparse();
            }
            self.map.u32(off::ARENA_SPARSE_AWARE).store(1, Relaxed);
        }
        Ok(())
    }

    fn counter_kind(&self) -> Result<Kind> {
        if self.vk.is_int() {
            Ok(self.vk)
        } else {
            Err(Error::new(ErrorKind::Unsupported, "counters need an integer-value variant"))
        }
    }

    #[inline(always)]
    fn key<'a>(&self, k: In<'a>) -> Result<(K<'a>, u64)> {
        match (self.kk, k) {
            (Kind::Str, In::Str(b, u)) => {
                if b.len() > MAX_LEN {
                    return Err(Error::new(ErrorKind::TooLong, "key too long (max 1GB)"));
                }
                let h = hash_bytes(b, self.seed);
                if b.len() <= MAX_INLINE {
                    Ok((K::Short(StrRef::inline(b, false).identity(), b, u), h))
                } else {
                    Ok((K::Long(b, u), h))
                }
            }
            (Kind::Str, In::Int(_)) => Err(Error::arg("this variant has string keys")),
            (kk, In::Int(v)) => {
                let v = kk.narrow(v);
                Ok((K::Int(v), hash_int(v, self.seed)))
            }
            (_, In::Str(..)) => Err(Error::arg("this variant has integer keys")),
        }
    }

    #[inline(always)]
    fn val<'a>(&self, v: In<'a>, role: &str) -> Result<V<'a>> {
        match (self.vk, v) {
            (Kind::Str, In::Str(b, u)) => {
                if b.len() > MAX_LEN {
                    return Err(Error::new(ErrorKind::TooLong, format!("{role} too long (max 1GB)")));
                }
                Ok(V::Str(b, u))
            }
            (Kind::Str, In::Int(_)) => Err(Error::arg("this variant has string values")),
            (vk, In::Int(x)) => Ok(V::Int(vk.narrow(x))),
            (_, In::Str(..)) => Err(Error::arg("this variant has integer values")),
        }
    }

    /// Looks a prepared key up (one monomorphic probe loop per key kind).
    #[inline(always)]
    fn find(&self, t: &Table, h: u64, k: &K) -> Option<usize> {
        match *k {
            K::Int(v) => t.find(h, |i| t.key_int(i) == v),
            K::Short(w, ..) => t.find(h, |i| StrRef(t.key_word(i)).identity() == w),
            K::Long(b, _) => {
                let a = self.arena();
                t.find(h, |i| {
                    let r = StrRef(t.key_word(i));
                    !r.is_inline() && r.len() == b.len() && a.eq(r.offset(), b)
                })
            }
        }
    }

    #[inline(always)]
    fn probe(&self, t: &Table, h: u64, k: &K) -> Probe {
        match *k {
            K::Int(v) => t.probe(h, |i| t.key_int(i) == v),
            K::Short(w, ..) => t.probe(h, |i| StrRef(t.key_word(i)).identity() == w),
            K::Long(b, _) => {
                let a = self.arena();
                t.probe(h, |i| {
                    let r = StrRef(t.key_word(i));
                    !r.is_inline() && r.len() == b.len() && a.eq(r.offset(), b)
                })
            }
        }
    }

    /// Copies a string field into `buf` (bounded; damaged references read as "").
    fn read_str(&self, r: StrRef, buf: &mut Vec<u8>) -> Got {
        if r.is_inline() {
            buf.clear();
            buf.extend_from_slice(&r.inline_bytes()[..r.len()]);
        } else {
            self.arena().read_into(r.offset(), r.len(), buf);
        }
        Got::Str(r.utf8())
    }

    #[inline(always)]
    fn read_val(&self, t: &Table, i: usize, buf: &mut Vec<u8>) -> Got {
        if self.vk.is_int() {
            Got::Int(t.val_int(i))
        } else {
            self.read_str(StrRef(t.val_word(i)), buf)
        }
    }

    fn read_key(&self, t: &Table, i: usize, buf: &mut Vec<u8>) -> Got {
        if self.kk.is_int() {
            Got::Int(t.key_int(i))
        } else {
            self.read_str(StrRef(t.key_word(i)), buf)
        }
    }

    /// Does slot `i`'s value equal `e`? (strings by bytes only)
    fn val_eq(&self, t: &Table, i: usize, e: &V) -> bool {
        match *e {
            V::Int(x) => t.val_int(i) == x,
            V::Str(b, _) => {
                let r = StrRef(t.val_word(i));
                if b.len() <= MAX_INLINE {
                    r.identity() == StrRef::inline(b, false).identity()
                } else {
                    !r.is_inline() && r.len() == b.len() && self.arena().eq(r.offset(), b)
                }
            }
        }
    }

    /// Stores the strings of one write (an entry's key and / or value): inline, or in
    /// new arena blocks, which on an LRU map may evict other entries to make room
    /// (evict.rs; `keep`: the slot an overwrite writes). The references come back in
    /// the same positions (`StrRef(0)` for an absent string). None when there is no
    /// room: nothing was stored then.
    #[inline(always)]
    fn store_strs(&self, t: &Table, strs: [Option<(&[u8], bool)>; 2], keep: Option<usize>, now: u64) -> Option<[StrRef; 2]> {
        let long = |s: Option<(&[u8], bool)>| s.map_or(0, |(b, _)| if b.len() > MAX_INLINE { b.len() } else { 0 });
        let lens = [long(strs[0]), long(strs[1])];
        let offs = if lens == [0, 0] { [0; 2] } else { self.alloc_evicting(t, lens, keep, now)? };
        let a = self.arena();
        let mut refs = [StrRef(0); 2];
        for i in 0..2 {
            let Some((b, u)) = strs[i] else { continue };
            refs[i] = if lens[i] == 0 {
                StrRef::inline(b, u)
            } else {
                a.write(offs[i], b);
                StrRef::arena(offs[i], b.len(), u)
            };
        }
        Some(refs)
    }

    #[inline(always)]
    fn free_str(&self, r: StrRef) {
        if !r.is_inline() {
            self.arena().free(r.offset(), r.len());
        }
    }

    /// Overwrites slot `i`'s value; false (old value kept) when there is no string
    /// space for it (on an LRU map: not even after evicting, evict.rs).
    #[inline(always)]
    fn replace_val(&self, t: &Table, i: usize, v: &V, now: u64) -> bool {
        match *v {
            V::Int(x) => t.set_val_word(i, x as u64),
            V::Str(b, u) => {
                let old = StrRef(t.val_word(i));
                let Some([_, new]) = self.store_strs(t, [None, Some((b, u))], Some(i), now) else { return false };
                // Crash order (repair.rs): the new string is written before the slot
                // points to it, and the old one is freed only once nothing points to it.
                fence(Release);
                t.set_val_word(i, new.0);
                fence(Release);
                self.free_str(old);
            }
        }
        true
    }

    /// Put under the write lock. A hit (expired or not: put revives) is overwritten,
    /// promoted, and its expiry set per `e`.
    ///
    /// Inlined into its callers (issue 12): out of line, the key, the value and the
    /// table view went through memory between five calls; inline, the probe and the
    /// overwrite are compiled for the caller's key and value kinds.
    #[inline(always)]
    fn put_locked(&self, st: &mut State, k: &K, h: u64, v: &V, e: Exp, now: u64) -> Result<bool> {
        let t = self.table()?;
        Ok(match self.probe(&t, h, k) {
            Probe::Found(i) => {
                let ok = self.replace_val(&t, i, v, now);
                if ok && self.extra {
                    self.hit(st, i, e, now);
                }
                ok
            }
            Probe::Vacant(s) => self.insert_new(st, t, s, k, h, v, e, now).is_some(),
            Probe::NoRoom => false,
        })
    }

    /// [`Shared::insert_new`] for a plain integer map with `W`-byte fields (no LRU, no
    /// TTL, no strings): false when the map holds max_entries already.
    #[inline(always)]
    fn insert_int<const W: usize>(&self, st: &State, t: Table, vacant: usize, h: u64, k: i64, v: i64) -> bool {
        // Relaxed loads/stores under the write lock (see h32).
        let (size_w, tombs_w) = (self.h32(off::SIZE), self.h32(off::TOMBS));
        let size = size_w.load(Relaxed);
        if size >= self.lay.max_entries {
            return false;
        }
        let (mut t, mut slot) = (t, vacant);
        let mut c = t.ctrl(slot);
        if c == Ctrl::EMPTY && size as usize + tombs_w.load(Relaxed) as usize + 1 > layout::load_limit(t.cap as u32) as usize {
            let Some(nt) = self.make_room(st, t, size as usize) else { return false };
            t = nt;
            let Some(s) = t.find_insert_slot(h) else { return false };
            slot = s;
            c = t.ctrl(slot);
        }
        t.set_key_int_w::<W>(slot, k);
        t.set_val_int_w::<W>(slot, v);
        // Crash order (repair.rs): the entry's data is complete before the control byte
        // publishes it (see insert_new).
        fence(Release);
        t.set_ctrl(slot, Ctrl::full(h));
        // make_room recounts the size: read it again.
        size_w.store(size_w.load(Relaxed) + 1, Relaxed);
        if c == Ctrl::DELETED {
            tombs_w.store(tombs_w.load(Relaxed).saturating_sub(1), Relaxed);
        }
        true
    }

    /// Inserts an absent key whose probe found `vacant`: on an LRU map at max_size one
    /// entry is evicted first; grows or compacts when needed. The new entry goes to the
    /// LRU head with expiry `e` (Default: the default TTL). None when the map holds
    /// max_entries already or there is no string space (on an LRU map: not even after
    /// evicting, evict.rs).
    #[allow(clippy::too_many_arguments)]
    fn insert_new(&self, st: &State, t: Table, vacant: usize, k: &K, h: u64, v: &V, e: Exp, now: u64) -> Option<usize> {
        // Relaxed loads under the write lock (see h32).
        if self.lru_on && self.h32(off::SIZE).load(Relaxed) >= self.lay.max_size {
            // The vacant slot stays valid: removing an entry never puts an EMPTY byte
            // into a group that had none (table.rs), so no probe stops earlier.
            self.evict_one(&t, now);
        }
        let size = self.h32(off::SIZE).load(Relaxed);
        if size >= self.lay.max_entries {
            return None;
        }
        let tombs = self.h32(off::TOMBS).load(Relaxed);
        let (mut t, mut slot) = (t, vacant);
        if t.ctrl(slot) == Ctrl::EMPTY && size as usize + tombs as usize + 1 > layout::load_limit(t.cap as u32) as usize {
            t = self.make_room(st, t, size as usize)?;
            slot = t.find_insert_slot(h)?;
        }
        let ks = match *k {
            K::Short(_, b, u) | K::Long(b, u) => Some((b, u)),
            K::Int(_) => None,
        };
        let vs = match *v {
            V::Str(b, u) => Some((b, u)),
            V::Int(_) => None,
        };
        // On an LRU map this may evict (evict.rs); `slot` stays a valid place for the
        // key, as for evict_one above.
        let [kr, vr] = self.store_strs(&t, [ks, vs], None, now)?;
        let kw = match *k {
            K::Int(x) => x as u64,
            _ => kr.0,
        };
        let vw = match *v {
            V::Int(x) => x as u64,
            V::Str(..) => vr.0,
        };
        t.set_key_word(slot, kw);
        t.set_val_word(slot, vw);
        if self.extra {
            if let Some(l) = self.lru_view() {
                l.push_head(slot);
            }
            if let Some(x) = self.ttl_view() {
                x.set(
                    slot,
                    match e {
                        Exp::Default => ttl::expiry(now, self.lay.ttl),
                        Exp::Set(v) => v,
                    },
                );
            }
        }
        let was_tomb = t.ctrl(slot) == Ctrl::DELETED;
        // Crash order (repair.rs): the entry's data is complete before the control byte
        // publishes it. Free on x86 (a compiler barrier); orders the stores elsewhere.
        fence(Release);
        t.set_ctrl(slot, Ctrl::full(h));
        // Relaxed load/store pairs under the write lock (see h32).
        let size = self.h32(off::SIZE).load(Relaxed); // may have changed in make_room
        self.h32(off::SIZE).store(size + 1, Relaxed);
        if was_tomb {
            let tb = self.h32(off::TOMBS);
            tb.store(tb.load(Relaxed).saturating_sub(1), Relaxed);
        }
        Some(slot)
    }

    /// Grows (doubling) when the live entries need it, or when this handle iterates
    /// (compaction is deferred then), else compacts tombstones in place. None when the
    /// space of a grown table cannot be reserved (the table is unchanged).
    #[cold]
    #[inline(never)]
    fn make_room<'a>(&'a self, st: &State, t: Table<'a>, size: usize) -> Option<Table<'a>> {
        let cap = t.cap;
        let bigger = size + 1 > layout::load_limit(cap as u32) as usize / 2 || st.each_active || st.cursors > 0;
        let new_cap = if bigger && cap < self.lay.max_cap as usize { cap * 2 } else { cap };
        self.reserve_table(new_cap).ok()?;
        Some(self.resize(t, new_cap))
    }

    /// Reserves the file space of a table of `cap` slots before a grow touches it
    /// (decisions 19; write-lock holder only). Err(errno) when the file system is full.
    fn reserve_table(&self, cap: usize) -> std::result::Result<(), i32> {
        // Relaxed load/store under the write lock (see h32). Stored only after the space
        // is reserved, so a crash in between leaves a mark that is too low (re-reserved
        // later, harmless), never one that is too high.
        let r = self.h32(off::TABLE_RESERVED);
        let have = r.load(Relaxed) as usize;
        if cap <= have {
            return Ok(());
        }
        format::reserve_table(&self.map, &self.lay, have, cap)?;
        r.store(cap as u32, Relaxed);
        Ok(())
    }

    /// Lowers the reservation mark to `cap` before the pages above it are released
    /// (write-lock holder only): a mark too high would let a later grow skip
    /// reserving punched pages.
    fn unreserve_table(&self, cap: usize) {
        // Relaxed load/store under the write lock (see h32).
        let r = self.h32(off::TABLE_RESERVED);
        if r.load(Relaxed) as usize > cap {
            r.store(cap as u32, Relaxed);
        }
    }

    /// Removes the entry at slot `i` (frees its strings, unlinks it from the LRU list,
    /// leaves EMPTY or a tombstone).
    #[inline(always)]
    fn remove_at(&self, t: &Table, i: usize) {
        if self.lru_on {
            if let Some(l) = self.lru_view() {
                l.unlink(i);
            }
        }
        let (kw, vw) = (t.key_word(i), t.val_word(i));
        // Unpublish first, free after: a writer killed in between leaves two unreferenced
        // blocks, which the repair's arena rebuild reclaims. Freed first, a kill would
        // leave a live entry pointing into a free block (whose list links overwrite the
        // start of the string).
        let tomb = t.erase(i);
        fence(Release); // the erase before the frees, also for the compiler
        if !self.kk.is_int() {
            self.free_str(StrRef(kw));
        }
        if !self.vk.is_int() {
            self.free_str(StrRef(vw));
        }
        // Relaxed load/store pairs under the write lock (see h32).
        let s = self.h32(off::SIZE);
        s.store(s.load(Relaxed).saturating_sub(1), Relaxed);
        if tomb {
            let tb = self.h32(off::TOMBS);
            tb.store(tb.load(Relaxed) + 1, Relaxed);
        }
    }

    /// Shrinks when size < cap / 4 (to the smallest capacity keeping that false, at
    /// least 16); deferred while this handle's `each` is active. The test is inline (it
    /// runs after every removal), the shrink out of line.
    #[inline(always)]
    fn maybe_shrink(&self, st: &mut State) {
        // Relaxed: under the write lock (see h32).
        let (cap, size) = (self.h32(off::CAP).load(Relaxed), self.h32(off::SIZE).load(Relaxed));
        if cap > layout::MIN_CAP && size < cap / 4 {
            self.shrink(st);
        }
    }

    #[inline(never)]
    fn shrink(&self, st: &mut State) {
        let Some(t) = self.current() else { return };
        // Relaxed: under the write lock (see h32).
        let size = self.h32(off::SIZE).load(Relaxed) as usize;
        if t.cap <= layout::MIN_CAP as usize || size >= t.cap / 4 {
            return;
        }
        if st.each_active || st.cursors > 0 {
            st.deferred = true;
            return;
        }
        let mut target = t.cap;
        while target > layout::MIN_CAP as usize && size < target / 4 {
            target /= 2;
        }
        self.resize(t, target);
    }

    /// Hash of the key stored at slot `i` (write-lock holder only).
    fn hash_slot(&self, t: &Table, i: usize) -> u64 {
        if self.kk.is_int() {
            return hash_int(t.key_int(i), self.seed);
        }
        let r = StrRef(t.key_word(i));
        if r.is_inline() {
            hash_bytes(&r.inline_bytes()[..r.len()], self.seed)
        } else {
            hash_bytes(self.arena().slice_locked(r.offset(), r.len()).unwrap_or(&[]), self.seed)
        }
    }

    /// Rehashes in place to `new_cap` (write-lock holder only), records it in the
    /// header (capacity, size, no tombstones, new generation) and releases the pages
    /// a shrink freed.
    fn resize<'a>(&'a self, t: Table<'a>, new_cap: usize) -> Table<'a> {
        let old = t.cap;
        let j = Journal::new(&self.map);
        let mut side = Side { lru: self.lru_view(), ttl: self.ttl_view() };
        let (nt, placed) = t.rehash(new_cap, |nt, i| self.hash_slot(nt, i), &mut side, &j);
        // Relaxed stores under the write lock (see h32); readers that could see a
        // mix of old and new values are optimistic ones, which the seqlock retries.
        // Before the journal closes: a crash up to `done` is resumed by the repair.
        self.h32(off::CAP).store(new_cap as u32, Relaxed);
        self.h32(off::SIZE).store(placed as u32, Relaxed);
        self.h32(off::TOMBS).store(0, Relaxed);
        self.bump_generation();
        j.done();
        if new_cap < old {
            self.unreserve_table(new_cap);
            self.release_tail(new_cap, old);
        }
        nt
    }

    fn bump_generation(&self) {
        // Relaxed load/store under the write lock (see h32).
        let g = self.h32(off::GENERATION);
        g.store(g.load(Relaxed).wrapping_add(1), Relaxed);
    }

    /// Gives back the pages of control bytes and slots between capacities `from` and
    /// `to` (decisions 7). They are never read before a grow rewrites them.
    fn release_tail(&self, from: usize, to: usize) {
        if to <= from {
            return;
        }
        let l = &self.lay;
        self.map.release(l.ctrl_off + from, to - from);
        let ss = l.slot_size as usize;
        self.map.release(l.slots_off + from * ss, (to - from) * ss);
        if l.has_lru() {
            self.map.release(l.lru_prev_off() + from * 4, (to - from) * 4);
            self.map.release(l.lru_next_off() + from * 4, (to - from) * 4);
            self.map.release(l.lru_acc_off() + from, to - from);
        }
        if l.has_ttl() {
            self.map.release(l.ttl_off + from * 4, (to - from) * 4);
        }
    }
}

/// Which of put / add / update a lean integer write is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Upsert {
    Put,
    Add,
    Update,
}

/// `v` narrowed to a `W`-byte field (two's complement, sign-extended back).
#[inline(always)]
fn narrow_w<const W: usize>(v: i64) -> i64 {
    match W {
        2 => v as i16 as i64,
        4 => v as i32 as i64,
        _ => v,
    }
}

/// A header capacity that cannot be (damage).
#[cold]
fn corrupt_cap() -> Error {
    Error::format("corrupt table state (capacity)")
}

/// The error of every mutator on a frozen map (the glue prefixes "Class: ").
#[cold]
fn frozen() -> Error {
    Error::new(ErrorKind::Frozen, "map is frozen (read-only)")
}

/// What the optimistic lookup of an LRU/TTL map found: `tag` 0 = absent, 1 = int value
/// `v`, 2/3 = string value in the buffer (3: UTF-8); the expiry and the clock reading.
struct Looked {
    tag: u8,
    v: i64,
    exp: u32,
    now: u64,
}

/// The per-slot side arrays that follow entries through an in-place rehash.
struct Side<'a> {
    lru: Option<Lru<'a>>,
    ttl: Option<Ttl<'a>>,
}

/// The LRU links follow entries through `moved`/`swapped` (a repair rebuilds them after
/// a crash); the expiry is the payload the rehash journals with the slot.
impl Relocate for Side<'_> {
    fn moved(&mut self, from: usize, to: usize) {
        if let Some(l) = &self.lru {
            l.moved(from, to);
        }
    }
    fn swapped(&mut self, a: usize, b: usize) {
        if let Some(l) = &self.lru {
            l.swapped(a, b);
        }
    }
    fn payload(&self, i: usize) -> u32 {
        self.ttl.as_ref().map_or(0, |x| x.get(i))
    }
    fn set_payload(&mut self, i: usize, v: u32) {
        if let Some(x) = &self.ttl {
            x.set(i, v);
        }
    }
    fn dropped(&mut self, i: usize) {
        if let Some(l) = &self.lru {
            l.unlink(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(b: &[u8]) -> In<'_> {
        In::Str(b, false)
    }

    #[test]
    fn basic_ss() {
        let mut m = Map::open(&Options::of(Variant::SS, 100)).unwrap();
        assert!(m.put(s(b"a"), s(b"1")).unwrap());
        assert!(m.put(s(b"long key here"), In::Str(b"long value here!", true)).unwrap());
        assert_eq!(m.get(s(b"a")).unwrap(), Some(Out::Str(b"1", false)));
        assert_eq!(m.get(s(b"long key here")).unwrap(), Some(Out::Str(b"long value here!", true)));
        assert!(m.get(In::Str(b"long key here", true)).unwrap().is_some());
        assert_eq!(m.get(s(b"b")).unwrap(), None);
        assert!(!m.add(s(b"a"), s(b"2")).unwrap());
        assert!(m.update(s(b"a"), s(b"22222222222")).unwrap());
        assert_eq!(m.swap(s(b"a"), s(b"3")).unwrap(), Some(Out::Str(b"22222222222", false)));
        assert!(m.cas(s(b"a"), In::Str(b"3", true), In::Str(b"4", true)).unwrap());
        assert!(!m.cas(s(b"a"), s(b"3"), s(b"5")).unwrap());
        assert_eq!(m.cas_take(s(b"a"), s(b"4")).unwrap(), Some(Out::Str(b"4", true)));
        assert_eq!(m.len(), 1);
        assert_eq!(m.take(s(b"long key here")).unwrap(), Some(Out::Str(b"long value here!", true)));
        assert_eq!(m.stats().arena_used, 0);
        assert!(m.incr_by(s(b"x"), 1).is_err());
    }

    #[test]
    fn get_int_matches_get() {
        for v in [Variant::II, Variant::I16, Variant::I32] {
            for o in [Options::of(v, 100), Options::of(v, 100).lru(50, 0), Options::of(v, 100).ttl(60)] {
                let mut m = Map::open(&o).unwrap();
                for k in [0i64, -5, 7, 70000, i64::MIN] {
                    assert!(m.put(In::Int(k), In::Int(k ^ 3)).unwrap());
                }
                for k in [0i64, -5, 7, 70000, i64::MIN, 8, 40000, 1 << 40] {
                    let want = match m.get(In::Int(k)).unwrap() {
                        Some(Out::Int(x)) => Some(x),
                        None => None,
                        Some(o) => panic!("{o:?}"),
                    };
                    assert_eq!(m.get_int(k).unwrap(), want, "{v:?} key {k}");
                }
                assert_eq!(m.get_int(8).unwrap(), None);
                assert_eq!(m.get_int(7).unwrap(), Some(4));
            }
        }
        for v in [Variant::IS, Variant::SI, Variant::SS] {
            let mut m = Map::open(&Options::of(v, 100)).unwrap();
            assert!(m.get_int(1).is_err());
        }
    }

    #[test]
    fn int_writes_match_the_general_path() {
        // The lean integer path (plain II/I32/I16) and the general one (LRU/TTL maps,
        // which put_int & co. route to it) must agree on every result, including the
        // narrowing of keys and values, growth and shrink.
        for v in [Variant::II, Variant::I16, Variant::I32] {
            for o in [Options::of(v, 3000), Options::of(v, 3000).lru(3000, 0), Options::of(v, 3000).ttl(60)] {
                let mut a = Map::open(&o).unwrap();
                let mut b = Map::open(&Options { ..o.clone() }).unwrap();
                let mut x = 0x9E37_79B9_7F4A_7C15u64;
                for n in 0..20_000 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let k = (x % 2500) as i64 - 1200 + if n % 97 == 0 { 1 << 40 } else { 0 };
                    let val = (x >> 20) as i64 - (1 << 40);
                    let (ra, rb) = match x % 6 {
                        0 => (a.put_int(k, val).unwrap() as i64, b.put(In::Int(k), In::Int(val)).unwrap() as i64),
                        1 => (a.add_int(k, val).unwrap() as i64, b.add(In::Int(k), In::Int(val)).unwrap() as i64),
                        2 => (a.update_int(k, val).unwrap() as i64, b.update(In::Int(k), In::Int(val)).unwrap() as i64),
                        3 => (a.incr_int(k, val).unwrap(), b.incr_by(In::Int(k), val).unwrap()),
                        _ => (a.remove_int(k).unwrap() as i64, b.remove(In::Int(k)).unwrap() as i64),
                    };
                    assert_eq!(ra, rb, "{v:?} op {} key {k} (step {n})", x % 6);
                }
                assert_eq!(a.len(), b.len());
                let mut items = a.items().unwrap();
                let mut want = b.items().unwrap();
                items.sort_by_key(|p| format!("{p:?}"));
                want.sort_by_key(|p| format!("{p:?}"));
                assert_eq!(items, want);
                assert!(a.verify().is_empty(), "{:?}", a.verify());
            }
        }
        // Full map: put_int false, incr_int Full; frozen: refused; string variants: the
        // general path's error.
        let mut m = Map::open(&Options::of(Variant::II, 10)).unwrap();
        for i in 0..14 {
            assert!(m.put_int(i, i).unwrap());
        }
        assert!(!m.put_int(100, 1).unwrap());
        assert!(!m.add_int(100, 1).unwrap());
        assert_eq!(m.incr_int(100, 1).unwrap_err().kind(), ErrorKind::Full);
        assert!(m.update_int(3, 33).unwrap());
        assert_eq!(m.get_int(3).unwrap(), Some(33));
        m.freeze().unwrap();
        for e in [m.put_int(1, 1).unwrap_err(), m.remove_int(1).unwrap_err(), m.incr_int(1, 1).unwrap_err()] {
            assert_eq!(e.kind(), ErrorKind::Frozen);
        }
        let mut s = Map::open(&Options::of(Variant::SS, 10)).unwrap();
        assert_eq!(s.put_int(1, 1).unwrap_err().to_string(), "this variant has string keys");
        let mut is = Map::open(&Options::of(Variant::IS, 10)).unwrap();
        assert!(is.put(In::Int(5), In::Str(b"a string in the arena", false)).unwrap());
        assert!(is.remove_int(5).unwrap());
        assert!(!is.remove_int(5).unwrap());
        assert_eq!(is.stats().arena_used, 0);
    }

    #[test]
    fn counters_wrap() {
        let mut m = Map::open(&Options::of(Variant::I16, 100)).unwrap();
        assert_eq!(m.incr_by(In::Int(70000), 1).unwrap(), 1);
        assert_eq!(m.get(In::Int(4464)).unwrap(), Some(Out::Int(1)));
        assert!(m.put(In::Int(1), In::Int(32767)).unwrap());
        assert_eq!(m.incr_by(In::Int(1), 1).unwrap(), -32768);
        assert_eq!(m.incr_by(In::Int(1), 70000).unwrap(), -32768 + 4464);
        assert_eq!(m.max(In::Int(2), 5).unwrap(), 5);
        assert_eq!(m.max(In::Int(2), 3).unwrap(), 5);
        assert_eq!(m.min(In::Int(2), 3).unwrap(), 3);
        let mut ii = Map::open(&Options::of(Variant::II, 100)).unwrap();
        ii.put(In::Int(0), In::Int(i64::MAX)).unwrap();
        assert_eq!(ii.incr_by(In::Int(0), 1).unwrap(), i64::MIN);
    }

    #[test]
    fn full_table_and_each() {
        let mut m = Map::open(&Options::of(Variant::II, 10)).unwrap();
        let max = m.stats().max_entries as i64;
        assert_eq!(max, 14);
        for i in 0..max {
            assert!(m.put(In::Int(i), In::Int(i)).unwrap());
        }
        assert!(!m.put(In::Int(100), In::Int(0)).unwrap());
        assert_eq!(m.incr_by(In::Int(100), 1).unwrap_err().kind(), ErrorKind::Full);
        assert!(m.put(In::Int(3), In::Int(33)).unwrap());
        let mut seen = 0;
        while let Some((k, v)) = m.each().unwrap() {
            let (Out::Int(k), Out::Int(v)) = (k, v) else { panic!() };
            assert_eq!(v, if k == 3 { 33 } else { k });
            seen += 1;
        }
        assert_eq!(seen, max);
        assert!(m.each().unwrap().is_some(), "restarts after the end");
    }
}
