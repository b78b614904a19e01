//! The C ABI used by the XS glue (the only module with `extern "C"`).
//!
//! Conventions: every function catches panics; failures return `HM_ERR` (or NULL)
//! with a message in [`hm_last_error`] (thread-local, valid until the next failing
//! call on the thread). Non-negative returns are results (0 = false / not found,
//! 1 = true / found). String results (`HmOut.ptr`, `HmList` items) point into buffers
//! owned by the handle, valid until the next call on that handle.
//! `include/hashmap_shared.h` is generated from this file by cbindgen
//! (`HM_BLESS=1 cargo test --test header_fresh` rewrites it).

use crate::error::{Error, ErrorKind, Result};
use crate::cursor::Cursor;
use crate::map::{In, Map, Options, Out};
use crate::shard::ShardSet;
use crate::strref::MAX_LEN;
use crate::variant::{Kind, Variant};
use crate::Backing;
use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

/// Error: the message is in hm_last_error().
pub const HM_ERR: i32 = -1;
/// A counter could not insert a new key (table or arena full).
pub const HM_FULL: i32 = -2;

/// Backing: file at HmOpen.path (create or attach).
pub const HM_BACK_FILE: u32 = 0;
/// Backing: anonymous shared memory (inherited by forked children).
pub const HM_BACK_ANON: u32 = 1;
/// Backing: new memfd named HmOpen.path (NULL = "hashmap").
pub const HM_BACK_MEMFD: u32 = 2;
/// Backing: duplicate of descriptor HmOpen.fd.
pub const HM_BACK_FD: u32 = 3;

/// hm_list: keys only.
pub const HM_KEYS: u32 = 1;
/// hm_list: values only.
pub const HM_VALUES: u32 = 2;
/// hm_list: keys and values.
pub const HM_ITEMS: u32 = 3;

/// hm_stat: HmStats.size
pub const HM_ST_SIZE: u32 = 0;
/// hm_stat: HmStats.capacity
pub const HM_ST_CAPACITY: u32 = 1;
/// hm_stat: HmStats.max_entries
pub const HM_ST_MAX_ENTRIES: u32 = 2;
/// hm_stat: HmStats.tombstones
pub const HM_ST_TOMBSTONES: u32 = 3;
/// hm_stat: HmStats.mmap_size
pub const HM_ST_MMAP_SIZE: u32 = 4;
/// hm_stat: HmStats.arena_used
pub const HM_ST_ARENA_USED: u32 = 5;
/// hm_stat: HmStats.arena_cap
pub const HM_ST_ARENA_CAP: u32 = 6;
/// hm_stat: HmStats.evictions
pub const HM_ST_EVICTIONS: u32 = 7;
/// hm_stat: HmStats.expired
pub const HM_ST_EXPIRED: u32 = 8;
/// hm_stat: HmStats.recoveries
pub const HM_ST_RECOVERIES: u32 = 9;
/// hm_stat: HmStats.max_size
pub const HM_ST_MAX_SIZE: u32 = 10;
/// hm_stat: HmStats.ttl
pub const HM_ST_TTL: u32 = 11;
/// hm_stat: HmStats.frozen
pub const HM_ST_FROZEN: u32 = 12;
/// hm_stat: HmStats.readonly
pub const HM_ST_READONLY: u32 = 13;

/// A key or value passed in: `ival` for integer kinds, `ptr`/`len`/`utf8` for strings
/// (`ptr` may be NULL when `len` is 0).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct HmIn {
    pub ival: i64,
    pub ptr: *const u8,
    pub len: usize,
    pub utf8: u8,
}

/// A key or value returned: `ival` for integer kinds, `ptr`/`len`/`utf8` for strings
/// (pointing into the handle's buffers, valid until the next call on the handle).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct HmOut {
    pub ival: i64,
    pub ptr: *const u8,
    pub len: usize,
    pub utf8: u8,
}

/// One entry of a list result; `found` is 0 for a missing key of hm_get_multi.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct HmItem {
    pub key: HmOut,
    pub val: HmOut,
    pub found: u8,
}

/// A list result, owned by the handle (valid until the next call on it).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct HmList {
    pub items: *const HmItem,
    pub len: usize,
}

/// Statistics (api.md 6.8).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct HmStats {
    pub size: u64,
    pub capacity: u64,
    pub max_entries: u64,
    pub tombstones: u64,
    pub mmap_size: u64,
    pub arena_used: u64,
    pub arena_cap: u64,
    pub evictions: u64,
    pub expired: u64,
    pub recoveries: u64,
    pub max_size: u64,
    pub ttl: u64,
    pub frozen: u64,
    pub readonly: u64,
}

/// Arguments of hm_open.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct HmOpen {
    /// 1..10 (api.md 1.1).
    pub variant: u32,
    /// HM_BACK_*.
    pub backing: u32,
    /// FILE: path (NUL-terminated); MEMFD: name or NULL.
    pub path: *const c_char,
    /// FD: descriptor to duplicate.
    pub fd: i32,
    pub max_entries: u64,
    pub max_size: u64,
    pub ttl: u64,
    pub lru_skip: u64,
    pub arena_cap: u64,
    pub file_mode: u32,
}

/// Opaque map handle: one map, or a shard set (shard.rs).
pub struct HmMap {
    t: Target,
    kk: Kind,
    vk: Kind,
    list: ListBuf,
}

/// What a handle serves. Per-key operations pay one (predictable) branch on it.
// The single map is inline on purpose: per-key calls reach it without another
// indirection; the handle is allocated once, so its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Target {
    One(Map),
    Set(ShardSet),
}

/// A cursor (cursor.rs); it is used with the handle it was made for.
pub struct HmCursor {
    c: Cursor,
}

impl HmMap {
    fn new(t: Target) -> HmMap {
        let v = match &t {
            Target::One(m) => m.variant(),
            Target::Set(s) => s.maps()[0].variant(),
        };
        HmMap { t, kk: v.key_kind(), vk: v.val_kind(), list: ListBuf::default() }
    }

    /// The key converted from `p`, and the map that holds it.
    ///
    /// # Safety
    /// As [`arg`].
    #[inline(always)]
    unsafe fn keyed<'k>(&mut self, p: *const HmIn) -> Result<(&mut Map, In<'k>)> {
        // SAFETY: forwarded contract.
        let k = unsafe { arg(p, self.kk, "key") }?;
        let m = match &mut self.t {
            Target::One(m) => m,
            Target::Set(s) => s.route_mut(k),
        };
        Ok((m, k))
    }

    /// The shard of a converted key (0 for a plain map).
    fn shard_of(&self, k: In<'_>) -> usize {
        match &self.t {
            Target::One(_) => 0,
            Target::Set(s) => s.route(k),
        }
    }

    /// Every map (one, or every shard in order).
    fn maps(&mut self) -> &mut [Map] {
        match &mut self.t {
            Target::One(m) => std::slice::from_mut(m),
            Target::Set(s) => s.maps_mut(),
        }
    }

    fn first(&self) -> &Map {
        match &self.t {
            Target::One(m) => m,
            Target::Set(s) => &s.maps()[0],
        }
    }
}

/// A handle's list result storage (hm_list, hm_get_multi).
#[derive(Default)]
struct ListBuf {
    items: Vec<HmItem>,
    bytes: Vec<u8>,
    /// (item index, key offset, val offset) of string parts to point into `bytes`.
    fix: Vec<(usize, Option<usize>, Option<usize>)>,
}

/// hm_last_error_kind: any other error.
pub const HM_EK_OTHER: u32 = 0;
/// hm_last_error_kind: a mutator on a frozen map or read-only handle (the glue croaks
/// "Class: map is frozen (read-only)").
pub const HM_EK_FROZEN: u32 = 1;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
    static LAST_KIND: std::cell::Cell<u32> = const { std::cell::Cell::new(HM_EK_OTHER) };
}

fn set_error(msg: &str) {
    let c = CString::new(msg.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
    LAST_KIND.with(|k| k.set(HM_EK_OTHER));
}

fn set_error_of(e: &Error) {
    set_error(e.message());
    if e.kind() == ErrorKind::Frozen {
        LAST_KIND.with(|k| k.set(HM_EK_FROZEN));
    }
}

/// Runs `f`, turning an error or a panic into `err` plus a message.
#[inline(always)]
fn guard<R>(err: R, f: impl FnOnce() -> Result<R>) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            set_error_of(&e);
            err
        }
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_error(&format!("internal error: {what}"));
            err
        }
    }
}

/// The handle behind `m`.
///
/// # Safety
/// `m` must be NULL or a live pointer from hm_open, not used concurrently.
#[inline(always)]
unsafe fn handle<'a>(m: *mut HmMap) -> Result<&'a mut HmMap> {
    // SAFETY: per this function's contract.
    unsafe { m.as_mut() }.ok_or_else(|| Error::arg("NULL map handle"))
}

/// Converts an HmIn of kind `kind`; `role` names it in errors ("key", "value", ...).
///
/// # Safety
/// `p` must be NULL or point to a valid HmIn whose `ptr` addresses `len` readable bytes
/// that stay valid and unmodified for the duration of the call.
#[inline(always)]
unsafe fn arg<'a>(p: *const HmIn, kind: Kind, role: &str) -> Result<In<'a>> {
    // SAFETY: per this function's contract.
    let a = unsafe { p.as_ref() }.ok_or_else(|| Error::arg(format!("NULL {role}")))?;
    if kind.is_int() {
        return Ok(In::Int(a.ival));
    }
    if a.len > MAX_LEN {
        return Err(Error::new(ErrorKind::TooLong, format!("{role} too long (max 1GB)")));
    }
    let b: &[u8] = if a.len == 0 {
        &[]
    } else if a.ptr.is_null() {
        return Err(Error::arg(format!("NULL {role} bytes")));
    } else {
        // SAFETY: ptr addresses len (<= 1 GiB) readable bytes (contract above).
        unsafe { std::slice::from_raw_parts(a.ptr, a.len) }
    };
    Ok(In::Str(b, a.utf8 != 0))
}

#[inline(always)]
fn to_out(o: Out<'_>) -> HmOut {
    match o {
        Out::Int(v) => HmOut { ival: v, ptr: ptr::null(), len: 0, utf8: 0 },
        Out::Str(b, u) => HmOut { ival: 0, ptr: b.as_ptr(), len: b.len(), utf8: u as u8 },
    }
}

/// Writes `o` to `dst` unless `dst` is NULL.
///
/// # Safety
/// `dst` must be NULL or valid for writing an HmOut.
#[inline(always)]
unsafe fn put_out(dst: *mut HmOut, o: Out<'_>) {
    if !dst.is_null() {
        // SAFETY: dst is valid for writes (contract above).
        unsafe { dst.write(to_out(o)) };
    }
}

/// Writes a found (key, value) pair to `key` / `val`: 1, or 0 when there is none.
///
/// # Safety
/// As [`put_out`], for both destinations.
unsafe fn put_pair(key: *mut HmOut, val: *mut HmOut, got: Option<(Out<'_>, Out<'_>)>) -> i32 {
    match got {
        Some((k, v)) => {
            // SAFETY: forwarded contract.
            unsafe {
                put_out(key, k);
                put_out(val, v);
            }
            1
        }
        None => 0,
    }
}

#[inline(always)]
fn kinds(h: &HmMap) -> (Kind, Kind) {
    (h.kk, h.vk)
}

impl ListBuf {
    fn begin(&mut self) {
        self.items.clear();
        self.bytes.clear();
        self.fix.clear();
    }
    /// Appends one item, copying string bytes into the handle's storage.
    fn push(&mut self, k: Option<Out<'_>>, v: Option<Out<'_>>, found: bool) {
        let zero = HmOut { ival: 0, ptr: ptr::null(), len: 0, utf8: 0 };
        let store = |o: Option<Out<'_>>, bytes: &mut Vec<u8>| -> (HmOut, Option<usize>) {
            match o {
                None => (zero, None),
                Some(Out::Int(x)) => (HmOut { ival: x, ..zero }, None),
                Some(Out::Str(b, u)) => {
                    let at = bytes.len();
                    bytes.extend_from_slice(b);
                    (HmOut { ival: 0, ptr: ptr::null(), len: b.len(), utf8: u as u8 }, Some(at))
                }
            }
        };
        let (key, ko) = store(k, &mut self.bytes);
        let (val, vo) = store(v, &mut self.bytes);
        if ko.is_some() || vo.is_some() {
            self.fix.push((self.items.len(), ko, vo));
        }
        self.items.push(HmItem { key, val, found: found as u8 });
    }
    /// Points string parts into the (now final) byte storage and describes the list.
    fn end(&mut self) -> HmList {
        let base = self.bytes.as_ptr();
        for &(i, ko, vo) in &self.fix {
            // SAFETY: every recorded offset is within `bytes` (it was its length before
            // the string was appended), so the pointer stays in (or one past) the buffer.
            unsafe {
                if let Some(o) = ko {
                    self.items[i].key.ptr = base.add(o);
                }
                if let Some(o) = vo {
                    self.items[i].val.ptr = base.add(o);
                }
            }
        }
        HmList { items: self.items.as_ptr(), len: self.items.len() }
    }
}

/// Opens (creates or attaches) a map. NULL + hm_last_error() on failure.
///
/// # Safety
/// `args` must point to a valid HmOpen; `path`, when not NULL, to a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn hm_open(args: *const HmOpen) -> *mut HmMap {
    guard(ptr::null_mut(), || {
        // SAFETY: per the contract.
        let a = unsafe { args.as_ref() }.ok_or_else(|| Error::arg("NULL arguments"))?;
        let variant =
            Variant::from_id(a.variant).ok_or_else(|| Error::arg(format!("unknown variant {}", a.variant)))?;
        let backing = match a.backing {
            HM_BACK_FILE => Backing::File,
            HM_BACK_ANON => Backing::Anon,
            HM_BACK_MEMFD => Backing::Memfd,
            HM_BACK_FD => Backing::Fd,
            b => return Err(Error::arg(format!("unknown backing {b}"))),
        };
        let path = if a.path.is_null() {
            None
        } else {
            // SAFETY: a non-NULL path is NUL-terminated (contract).
            Some(unsafe { CStr::from_ptr(a.path) }.to_owned())
        };
        if backing == Backing::File && path.is_none() {
            return Err(Error::arg("a path is required"));
        }
        let o = Options {
            variant,
            backing,
            path,
            fd: a.fd,
            max_entries: a.max_entries,
            max_size: a.max_size,
            ttl: a.ttl,
            lru_skip: a.lru_skip,
            arena_cap: a.arena_cap,
            file_mode: a.file_mode,
            shard: None,
        };
        Ok(Box::into_raw(Box::new(HmMap::new(Target::One(Map::open(&o)?)))))
    })
}

/// Closes a handle: releases its reader slot, unmaps, closes a kept descriptor.
///
/// # Safety
/// `m` must be NULL or a pointer from hm_open not closed before; it is invalid afterwards.
#[no_mangle]
pub unsafe extern "C" fn hm_close(m: *mut HmMap) {
    guard((), || {
        if !m.is_null() {
            // SAFETY: m came from Box::into_raw in hm_open and is closed only once.
            drop(unsafe { Box::from_raw(m) });
        }
        Ok(())
    })
}

/// The calling thread's last error message ("" if none).
#[no_mangle]
pub extern "C" fn hm_last_error() -> *const c_char {
    guard(ptr::null(), || Ok(LAST_ERROR.with(|e| e.borrow().as_ptr())))
}

/// Variant id (1..10), 0 for NULL.
///
/// # Safety
/// `m` must be NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn hm_variant(m: *const HmMap) -> u32 {
    // SAFETY: per the contract.
    guard(0, || Ok(unsafe { m.as_ref() }.map(|h| h.first().variant().id()).unwrap_or(0)))
}

/// Backing path, NULL when none (anonymous, memfd, fd maps). Owned by the handle.
///
/// # Safety
/// `m` must be NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn hm_path(m: *const HmMap) -> *const c_char {
    guard(ptr::null(), || {
        // SAFETY: per the contract.
        Ok(unsafe { m.as_ref() }
            .and_then(|h| match &h.t {
                Target::One(m) => m.path(),
                Target::Set(s) => Some(s.prefix()),
            })
            .map(|p| p.as_ptr())
            .unwrap_or(ptr::null()))
    })
}

/// Descriptor kept by memfd / fd maps, -1 when none.
///
/// # Safety
/// `m` must be NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn hm_memfd(m: *const HmMap) -> i32 {
    // SAFETY: per the contract.
    guard(-1, || {
        // SAFETY: per the contract.
        let h = unsafe { m.as_ref() };
        Ok(h.and_then(|h| if let Target::One(m) = &h.t { Some(m.memfd()) } else { None }).unwrap_or(-1))
    })
}

/// 1 and `*val` set when found, 0 when not.
///
/// # Safety
/// `m` a live handle; `key` a valid HmIn; `val` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hm_get(m: *mut HmMap, key: *const HmIn, val: *mut HmOut) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract (for all unsafe calls in this closure).
        unsafe {
            let h = handle(m)?;
            let (mm, k) = h.keyed(key)?;
            match mm.get(k)? {
                Some(o) => {
                    put_out(val, o);
                    Ok(1)
                }
                None => Ok(0),
            }
        }
    })
}

/// hm_get that copies a string value straight to `dst` when it fits in `cap` bytes
/// (whole words: up to 7 bytes past the value's length may be written within `cap`):
/// then `val->ptr == dst`. Otherwise `val` is as for hm_get. Returns as hm_get.
///
/// # Safety
/// As hm_get; `dst` NULL or writable for `cap` bytes, not overlapping the map.
#[no_mangle]
pub unsafe extern "C" fn hm_get_to(m: *mut HmMap, key: *const HmIn, dst: *mut u8, cap: usize, val: *mut HmOut) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract (for all unsafe calls in this closure).
        unsafe {
            let h = handle(m)?;
            let (mm, k) = h.keyed(key)?;
            match mm.get_to(k, dst, cap)? {
                Some(o) => {
                    put_out(val, o);
                    Ok(1)
                }
                None => Ok(0),
            }
        }
    })
}

/// hm_get for an integer-key, integer-value variant (II, I16, I32), without HmIn/HmOut:
/// 1 and `*val` set when found, 0 when not (the lookup keyword's fast path).
///
/// # Safety
/// `m` a live handle; `val` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hm_get_int(m: *mut HmMap, key: i64, val: *mut i64) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract (for all unsafe calls in this closure).
        unsafe {
            let h = handle(m)?;
            let mm = match &mut h.t {
                Target::One(m) => m,
                Target::Set(s) => s.route_mut(In::Int(key)),
            };
            match mm.get_int(key)? {
                Some(v) => {
                    if !val.is_null() {
                        val.write(v);
                    }
                    Ok(1)
                }
                None => Ok(0),
            }
        }
    })
}

/// 1 if present, 0 if not.
///
/// # Safety
/// `m` a live handle; `key` a valid HmIn.
#[no_mangle]
pub unsafe extern "C" fn hm_exists(m: *mut HmMap, key: *const HmIn) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract.
        unsafe {
            let h = handle(m)?;
            let (mm, k) = h.keyed(key)?;
            Ok(mm.exists(k)? as i32)
        }
    })
}

/// Insert or overwrite: 1 stored, 0 not (table or arena full).
///
/// # Safety
/// `m` a live handle; `key`, `val` valid HmIns.
#[no_mangle]
pub unsafe extern "C" fn hm_put(m: *mut HmMap, key: *const HmIn, val: *const HmIn) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract.
        unsafe {
            let h = handle(m)?;
            let vk = h.vk;
            let (mm, k) = h.keyed(key)?;
            Ok(mm.put(k, arg(val, vk, "value")?)? as i32)
        }
    })
}

/// Insert if absent: 1 inserted, 0 not.
///
/// # Safety
/// `m` a live handle; `key`, `val` valid HmIns.
#[no_mangle]
pub unsafe extern "C" fn hm_add(m: *mut HmMap, key: *const HmIn, val: *const HmIn) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract.
        unsafe {
            let h = handle(m)?;
            let vk = h.vk;
            let (mm, k) = h.keyed(key)?;
            Ok(mm.add(k, arg(val, vk, "value")?)? as i32)
        }
    })
}

/// Overwrite if present: 1 updated, 0 not.
///
/// # Safety
/// `m` a live handle; `key`, `val` valid HmIns.
#[no_mangle]
pub unsafe extern "C" fn hm_update(m: *mut HmMap, key: *const HmIn, val: *const HmIn) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract.
        unsafe {
            let h = handle(m)?;
            let vk = h.vk;
            let (mm, k) = h.keyed(key)?;
            Ok(mm.update(k, arg(val, vk, "value")?)? as i32)
        }
    })
}

/// Put returning the previous value: 1 and `*old` set when the key existed and was
/// overwritten, 0 otherwise (fresh insert or failure).
///
/// # Safety
/// `m` a live handle; `key`, `val` valid HmIns; `old` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hm_swap(m: *mut HmMap, key: *const HmIn, val: *const HmIn, old: *mut HmOut) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract.
        unsafe {
            let h = handle(m)?;
            let vk = h.vk;
            let (mm, k) = h.keyed(key)?;
            match mm.swap(k, arg(val, vk, "value")?)? {
                Some(o) => {
                    put_out(old, o);
                    Ok(1)
                }
                None => Ok(0),
            }
        }
    })
}

/// Remove and return: 1 and `*val` set, 0 when absent.
///
/// # Safety
/// `m` a live handle; `key` a valid HmIn; `val` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hm_take(m: *mut HmMap, key: *const HmIn, val: *mut HmOut) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract.
        unsafe {
            let h = handle(m)?;
            let (mm, k) = h.keyed(key)?;
            match mm.take(k)? {
                Some(o) => {
                    put_out(val, o);
                    Ok(1)
                }
                None => Ok(0),
            }
        }
    })
}

/// Remove: 1 removed, 0 absent.
///
/// # Safety
/// `m` a live handle; `key` a valid HmIn.
#[no_mangle]
pub unsafe extern "C" fn hm_remove(m: *mut HmMap, key: *const HmIn) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract.
        unsafe {
            let h = handle(m)?;
            let (mm, k) = h.keyed(key)?;
            Ok(mm.remove(k)? as i32)
        }
    })
}

/// Lookup-or-insert: 1 and `*val` = stored or inserted value; 0 when it could not be
/// inserted.
///
/// # Safety
/// `m` a live handle; `key`, `dflt` valid HmIns; `val` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hm_get_or_set(m: *mut HmMap, key: *const HmIn, dflt: *const HmIn, val: *mut HmOut) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract.
        unsafe {
            let h = handle(m)?;
            let vk = h.vk;
            let (mm, k) = h.keyed(key)?;
            match mm.get_or_set(k, arg(dflt, vk, "value")?)? {
                Some(o) => {
                    put_out(val, o);
                    Ok(1)
                }
                None => Ok(0),
            }
        }
    })
}

/// Compare-and-swap: 1 swapped, 0 not.
///
/// # Safety
/// `m` a live handle; `key`, `expected`, `desired` valid HmIns.
#[no_mangle]
pub unsafe extern "C" fn hm_cas(m: *mut HmMap, key: *const HmIn, expected: *const HmIn, desired: *const HmIn) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract.
        unsafe {
            let h = handle(m)?;
            let vk = h.vk;
            let (mm, k) = h.keyed(key)?;
            let e = arg(expected, vk, "expected value")?;
            let d = arg(desired, vk, "desired value")?;
            Ok(mm.cas(k, e, d)? as i32)
        }
    })
}

/// Compare-and-remove: 1 and `*val` = removed value, 0 not.
///
/// # Safety
/// `m` a live handle; `key`, `expected` valid HmIns; `val` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hm_cas_take(m: *mut HmMap, key: *const HmIn, expected: *const HmIn, val: *mut HmOut) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract.
        unsafe {
            let h = handle(m)?;
            let vk = h.vk;
            let (mm, k) = h.keyed(key)?;
            match mm.cas_take(k, arg(expected, vk, "expected value")?)? {
                Some(o) => {
                    put_out(val, o);
                    Ok(1)
                }
                None => Ok(0),
            }
        }
    })
}

/// Shared tail of the counter entry points.
///
/// # Safety
/// As for hm_incr_by.
unsafe fn counter(
    m: *mut HmMap,
    key: *const HmIn,
    result: *mut i64,
    f: impl FnOnce(&mut Map, In<'_>) -> Result<i64>,
) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract of the calling entry point.
        unsafe {
            let h = handle(m)?;
            let (mm, k) = h.keyed(key)?;
            match f(mm, k) {
                Ok(v) => {
                    if !result.is_null() {
                        result.write(v);
                    }
                    Ok(1)
                }
                Err(e) if e.kind() == ErrorKind::Full => {
                    set_error(e.message());
                    Ok(HM_FULL)
                }
                Err(e) => Err(e),
            }
        }
    })
}

/// Adds `delta` (narrowed; wrapping); a missing key is inserted with `delta`.
/// 1 and `*result` = new value; HM_FULL when a new key cannot be inserted.
///
/// # Safety
/// `m` a live handle; `key` a valid HmIn; `result` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hm_incr_by(m: *mut HmMap, key: *const HmIn, delta: i64, result: *mut i64) -> i32 {
    // SAFETY: forwarded contract.
    unsafe { counter(m, key, result, |map, k| map.incr_by(k, delta)) }
}

/// Stores max(current, v); 1 and `*result` = resulting value; HM_FULL as hm_incr_by.
///
/// # Safety
/// As hm_incr_by.
#[no_mangle]
pub unsafe extern "C" fn hm_max(m: *mut HmMap, key: *const HmIn, v: i64, result: *mut i64) -> i32 {
    // SAFETY: forwarded contract.
    unsafe { counter(m, key, result, |map, k| map.max(k, v)) }
}

/// Stores min(current, v); 1 and `*result` = resulting value; HM_FULL as hm_incr_by.
///
/// # Safety
/// As hm_incr_by.
#[no_mangle]
pub unsafe extern "C" fn hm_min(m: *mut HmMap, key: *const HmIn, v: i64, result: *mut i64) -> i32 {
    // SAFETY: forwarded contract.
    unsafe { counter(m, key, result, |map, k| map.min(k, v)) }
}

/// Slice of `n` HmIns (empty when n is 0).
///
/// # Safety
/// `p` must address `n` valid HmIns when n > 0.
unsafe fn ins<'a>(p: *const HmIn, n: usize) -> Result<&'a [HmIn]> {
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Error::arg("NULL argument array"));
    }
    // SAFETY: p addresses n HmIns (contract).
    Ok(unsafe { std::slice::from_raw_parts(p, n) })
}

/// Puts `npairs` pairs (`kv[2i]` = key, `kv[2i+1]` = value) under one write lock; returns
/// the number stored.
///
/// # Safety
/// `m` a live handle; `kv` addresses 2 * npairs valid HmIns.
#[no_mangle]
pub unsafe extern "C" fn hm_set_multi(m: *mut HmMap, kv: *const HmIn, npairs: usize) -> i64 {
    guard(HM_ERR as i64, || {
        // SAFETY: per the contract.
        unsafe {
            let h = handle(m)?;
            let (kk, vk) = kinds(h);
            let n2 = npairs.checked_mul(2).ok_or_else(|| Error::arg("too many pairs"))?;
            let a = ins(kv, n2)?;
            let mut pairs = Vec::with_capacity(npairs);
            for p in a.chunks_exact(2) {
                pairs.push((arg(&p[0], kk, "key")?, arg(&p[1], vk, "value")?));
            }
            if let Target::One(mm) = &mut h.t {
                return Ok(mm.set_multi(&pairs)? as i64);
            }
            // Sharded: per key, not atomic across shards (api.md 7.7).
            let mut n = 0;
            for &(k, v) in &pairs {
                if let Target::Set(s) = &mut h.t {
                    n += s.route_mut(k).put(k, v)? as i64;
                }
            }
            Ok(n)
        }
    })
}

/// Looks `n` keys up under one read lock; `*out` lists one item per key (key echoed,
/// `found` 0 for missing keys).
///
/// # Safety
/// `m` a live handle; `keys` addresses n valid HmIns; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn hm_get_multi(m: *mut HmMap, keys: *const HmIn, n: usize, out: *mut HmList) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract.
        unsafe {
            let h = handle(m)?;
            let kk = kinds(h).0;
            let ks = ins(keys, n)?.iter().map(|k| arg(k, kk, "key")).collect::<Result<Vec<_>>>()?;
            let HmMap { t, list, .. } = h;
            list.begin();
            fn echo(kk: Kind, k: In<'_>) -> Out<'_> {
                match k {
                    In::Int(x) => Out::Int(kk.narrow(x)),
                    In::Str(b, u) => Out::Str(b, u),
                }
            }
            match t {
                Target::One(map) => map.get_multi_with(&ks, |i, v| {
                    let found = v.is_some();
                    list.push(Some(echo(kk, ks[i])), v, found);
                })?,
                // Sharded: per key (api.md 7.7).
                Target::Set(s) => {
                    for &k in &ks {
                        let i = s.route(k);
                        s.maps_mut()[i].get_multi_with(&[k], |_, v| {
                            let found = v.is_some();
                            list.push(Some(echo(kk, k)), v, found);
                        })?;
                    }
                }
            }
            let list = list.end();
            if !out.is_null() {
                out.write(list);
            }
            Ok(1)
        }
    })
}

/// Removes `n` keys under one write lock; returns how many were removed.
///
/// # Safety
/// `m` a live handle; `keys` addresses n valid HmIns.
#[no_mangle]
pub unsafe extern "C" fn hm_remove_multi(m: *mut HmMap, keys: *const HmIn, n: usize) -> i64 {
    guard(HM_ERR as i64, || {
        // SAFETY: per the contract.
        unsafe {
            let h = handle(m)?;
            let kk = kinds(h).0;
            let ks = ins(keys, n)?.iter().map(|k| arg(k, kk, "key")).collect::<Result<Vec<_>>>()?;
            if let Target::One(mm) = &mut h.t {
                return Ok(mm.remove_multi(&ks)? as i64);
            }
            let mut n = 0;
            for &k in &ks {
                let i = h.shard_of(k);
                n += h.maps()[i].remove(k)? as i64;
            }
            Ok(n)
        }
    })
}

/// Removes everything (table back to 16 slots, arena emptied, pages released). 0.
///
/// # Safety
/// `m` a live handle.
#[no_mangle]
pub unsafe extern "C" fn hm_clear(m: *mut HmMap) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract.
        for mm in unsafe { handle(m)? }.maps() {
            mm.clear()?;
        }
        Ok(0)
    })
}

/// Pre-grows so that `n` (truncated to 32 bits, api.md 5.1) entries fit: 1, or 0 when
/// beyond the maximum capacity.
///
/// # Safety
/// `m` a live handle.
#[no_mangle]
pub unsafe extern "C" fn hm_reserve(m: *mut HmMap, n: u64) -> i32 {
    guard(HM_ERR, || {
        let mut all = true;
        // SAFETY: per the contract.
        for mm in unsafe { handle(m)? }.maps() {
            all &= mm.reserve(n as u32 as u64)?;
        }
        Ok(all as i32)
    })
}

/// msync(MS_SYNC) of the whole map: 0, or HM_ERR with the strerror text.
///
/// # Safety
/// `m` a live handle.
#[no_mangle]
pub unsafe extern "C" fn hm_sync(m: *mut HmMap) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract.
        for mm in unsafe { handle(m)? }.maps() {
            mm.sync()?;
        }
        Ok(0)
    })
}

/// Removes the backing file: 1 removed, 0 not (no path, already gone, no permission).
///
/// # Safety
/// `m` a live handle.
#[no_mangle]
pub unsafe extern "C" fn hm_unlink(m: *mut HmMap) -> i32 {
    // SAFETY: per the contract.
    guard(0, || {
        let mut all = true;
        // SAFETY: per the contract.
        for mm in unsafe { handle(m)? }.maps() {
            all &= mm.unlink();
        }
        Ok(all as i32)
    })
}

/// This handle's iterator: 1 and `*key`/`*val` set, or 0 at the end (which resets it).
///
/// # Safety
/// `m` a live handle; `key`, `val` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hm_each(m: *mut HmMap, key: *mut HmOut, val: *mut HmOut) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract.
        unsafe {
            let h = handle(m)?;
            let got = match &mut h.t {
                Target::One(mm) => mm.each()?,
                Target::Set(s) => s.each(),
            };
            Ok(put_pair(key, val, got))
        }
    })
}

/// Resets this handle's iterator (and runs a shrink deferred while it was active).
///
/// # Safety
/// `m` a live handle.
#[no_mangle]
pub unsafe extern "C" fn hm_iter_reset(m: *mut HmMap) {
    guard((), || {
        // SAFETY: per the contract.
        match &mut unsafe { handle(m)? }.t {
            Target::One(mm) => mm.iter_reset(),
            Target::Set(s) => s.iter_reset(),
        }
        Ok(())
    })
}

/// Snapshot of every entry under one read lock (HM_KEYS, HM_VALUES or HM_ITEMS).
///
/// # Safety
/// `m` a live handle; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn hm_list(m: *mut HmMap, what: u32, out: *mut HmList) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract.
        unsafe {
            let h = handle(m)?;
            if !(HM_KEYS..=HM_ITEMS).contains(&what) {
                return Err(Error::arg(format!("unknown list kind {what}")));
            }
            let (wk, wv) = (what & HM_KEYS != 0, what & HM_VALUES != 0);
            let HmMap { t, list, .. } = h;
            list.begin();
            let maps = match t {
                Target::One(m) => std::slice::from_mut(m),
                Target::Set(s) => s.maps_mut(),
            };
            for map in maps {
                map.for_each(wk, wv, |k, v| list.push(wk.then_some(k), wv.then_some(v), true))?;
            }
            let list = list.end();
            if !out.is_null() {
                out.write(list);
            }
            Ok(1)
        }
    })
}

/// Walks the whole map (read lock; every shard of a set, messages prefixed "shard N: ")
/// and lists every inconsistency found, one message per item key (a string); an empty
/// list means the map is sound.
///
/// # Safety
/// `m` a live handle; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn hm_verify(m: *mut HmMap, out: *mut HmList) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract.
        unsafe {
            let HmMap { t, list, .. } = handle(m)?;
            let problems: Vec<String> = match t {
                Target::One(m) => m.verify(),
                Target::Set(s) => s
                    .maps()
                    .iter()
                    .enumerate()
                    .flat_map(|(i, m)| m.verify().into_iter().map(move |p| format!("shard {i}: {p}")))
                    .collect(),
            };
            list.begin();
            for p in &problems {
                list.push(Some(Out::Str(p.as_bytes(), false)), None, true);
            }
            let l = list.end();
            if !out.is_null() {
                out.write(l);
            }
            Ok(problems.len() as i32)
        }
    })
}

fn stats_of(h: &HmMap) -> HmStats {
    let s = crate::shard::aggregate(match &h.t {
        Target::One(m) => std::slice::from_ref(m),
        Target::Set(s) => s.maps(),
    });
    HmStats {
        size: s.size,
        capacity: s.capacity,
        max_entries: s.max_entries,
        tombstones: s.tombstones,
        mmap_size: s.mmap_size,
        arena_used: s.arena_used,
        arena_cap: s.arena_cap,
        evictions: s.evictions,
        expired: s.expired,
        recoveries: s.recoveries,
        max_size: s.max_size,
        ttl: s.ttl,
        frozen: s.frozen,
        readonly: s.readonly,
    }
}

/// Fills `*out` with the statistics.
///
/// # Safety
/// `m` a live handle; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn hm_stats(m: *mut HmMap, out: *mut HmStats) {
    guard((), || {
        // SAFETY: per the contract.
        unsafe {
            let s = stats_of(handle(m)?);
            if !out.is_null() {
                out.write(s);
            }
        }
        Ok(())
    })
}

/// One statistic (HM_ST_*); 0 for an unknown one.
///
/// # Safety
/// `m` a live handle.
#[no_mangle]
pub unsafe extern "C" fn hm_stat(m: *mut HmMap, which: u32) -> u64 {
    guard(0, || {
        // SAFETY: per the contract.
        let s = stats_of(unsafe { handle(m)? });
        Ok(match which {
            HM_ST_SIZE => s.size,
            HM_ST_CAPACITY => s.capacity,
            HM_ST_MAX_ENTRIES => s.max_entries,
            HM_ST_TOMBSTONES => s.tombstones,
            HM_ST_MMAP_SIZE => s.mmap_size,
            HM_ST_ARENA_USED => s.arena_used,
            HM_ST_ARENA_CAP => s.arena_cap,
            HM_ST_EVICTIONS => s.evictions,
            HM_ST_EXPIRED => s.expired,
            HM_ST_RECOVERIES => s.recoveries,
            HM_ST_MAX_SIZE => s.max_size,
            HM_ST_TTL => s.ttl,
            HM_ST_FROZEN => s.frozen,
            HM_ST_READONLY => s.readonly,
            _ => 0,
        })
    })
}

// -- TTL (api.md 6.5) ---------------------------------------------------------------
// TTL arguments are truncated to 32 bits here (api.md 5.1); put/add/update_ttl clamp
// values of 4294967294 and more to 4294967293 (the engine does).

/// Put with a per-entry TTL (0 = permanent): 1 stored, 0 not; HM_ERR on a map without
/// TTL ("operation requires a TTL-enabled map ...").
///
/// # Safety
/// `m` a live handle; `key`, `val` valid HmIns.
#[no_mangle]
pub unsafe extern "C" fn hm_put_ttl(m: *mut HmMap, key: *const HmIn, val: *const HmIn, ttl: u64) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract.
        unsafe {
            let h = handle(m)?;
            let vk = h.vk;
            let (mm, k) = h.keyed(key)?;
            Ok(mm.put_ttl(k, arg(val, vk, "value")?, ttl as u32)? as i32)
        }
    })
}

/// Insert-if-absent with a TTL for the new entry: 1 inserted, 0 not; HM_ERR on a map
/// without TTL.
///
/// # Safety
/// `m` a live handle; `key`, `val` valid HmIns.
#[no_mangle]
pub unsafe extern "C" fn hm_add_ttl(m: *mut HmMap, key: *const HmIn, val: *const HmIn, ttl: u64) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract.
        unsafe {
            let h = handle(m)?;
            let vk = h.vk;
            let (mm, k) = h.keyed(key)?;
            Ok(mm.add_ttl(k, arg(val, vk, "value")?, ttl as u32)? as i32)
        }
    })
}

/// Overwrite-if-present that also sets the TTL: 1 updated, 0 not; HM_ERR on a map
/// without TTL.
///
/// # Safety
/// `m` a live handle; `key`, `val` valid HmIns.
#[no_mangle]
pub unsafe extern "C" fn hm_update_ttl(m: *mut HmMap, key: *const HmIn, val: *const HmIn, ttl: u64) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract.
        unsafe {
            let h = handle(m)?;
            let vk = h.vk;
            let (mm, k) = h.keyed(key)?;
            Ok(mm.update_ttl(k, arg(val, vk, "value")?, ttl as u32)? as i32)
        }
    })
}

/// Seconds left: 1 and `*secs` set (0 = permanent); 0 when the map has no TTL or the
/// key is missing or expired.
///
/// # Safety
/// `m` a live handle; `key` a valid HmIn; `secs` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hm_ttl_remaining(m: *mut HmMap, key: *const HmIn, secs: *mut u64) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract.
        unsafe {
            let h = handle(m)?;
            let (mm, k) = h.keyed(key)?;
            match mm.ttl_remaining(k)? {
                Some(s) => {
                    if !secs.is_null() {
                        secs.write(s as u64);
                    }
                    Ok(1)
                }
                None => Ok(0),
            }
        }
    })
}

/// Value and TTL in one consistent read: 1 and `*val`, `*ttl` set (`*ttl` = seconds
/// left, 0 for a permanent entry, -1 on a map without TTL); 0 when missing or expired.
/// Marks the entry accessed (LRU) like hm_get.
///
/// # Safety
/// `m` a live handle; `key` a valid HmIn; `val`, `ttl` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hm_get_with_ttl(m: *mut HmMap, key: *const HmIn, val: *mut HmOut, ttl: *mut i64) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract.
        unsafe {
            let h = handle(m)?;
            let (mm, k) = h.keyed(key)?;
            match mm.get_with_ttl(k)? {
                Some((o, left)) => {
                    put_out(val, o);
                    if !ttl.is_null() {
                        ttl.write(left.map_or(-1, |s| s as i64));
                    }
                    Ok(1)
                }
                None => Ok(0),
            }
        }
    })
}

/// Promote (LRU) and refresh the expiry to the default unless permanent (TTL): 1 done,
/// 0 missing / expired / map with neither LRU nor TTL.
///
/// # Safety
/// `m` a live handle; `key` a valid HmIn.
#[no_mangle]
pub unsafe extern "C" fn hm_touch(m: *mut HmMap, key: *const HmIn) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract.
        unsafe {
            let h = handle(m)?;
            let (mm, k) = h.keyed(key)?;
            Ok(mm.touch(k)? as i32)
        }
    })
}

/// Make permanent: 1 done, 0 missing / expired / map without TTL.
///
/// # Safety
/// `m` a live handle; `key` a valid HmIn.
#[no_mangle]
pub unsafe extern "C" fn hm_persist(m: *mut HmMap, key: *const HmIn) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract.
        unsafe {
            let h = handle(m)?;
            let (mm, k) = h.keyed(key)?;
            Ok(mm.persist(k)? as i32)
        }
    })
}

/// Expire `ttl` (truncated to 32 bits; 0 = permanent) seconds from now: 1 done, 0
/// missing / expired / map without TTL.
///
/// # Safety
/// `m` a live handle; `key` a valid HmIn.
#[no_mangle]
pub unsafe extern "C" fn hm_set_ttl(m: *mut HmMap, key: *const HmIn, ttl: u64) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract.
        unsafe {
            let h = handle(m)?;
            let (mm, k) = h.keyed(key)?;
            Ok(mm.set_ttl(k, ttl as u32)? as i32)
        }
    })
}

/// Removes every expired entry; returns how many (0 on a map without TTL).
///
/// # Safety
/// `m` a live handle.
#[no_mangle]
pub unsafe extern "C" fn hm_flush_expired(m: *mut HmMap) -> i64 {
    guard(HM_ERR as i64, || {
        let mut n = 0;
        // SAFETY: per the contract.
        for mm in unsafe { handle(m)? }.maps() {
            n += mm.flush_expired()?;
        }
        Ok(n as i64)
    })
}

/// Scans `limit` (truncated to 32 bits; at least 1) slots from the shared cursor,
/// removing expired entries; returns how many, `*done` = 1 when the scan reached the
/// end of the table (0 otherwise). (0, done 1) on a map without TTL.
///
/// # Safety
/// `m` a live handle; `done` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hm_flush_expired_partial(m: *mut HmMap, limit: u64, done: *mut i32) -> i64 {
    guard(HM_ERR as i64, || {
        // SAFETY: per the contract.
        unsafe {
            // Sharded: the same scan on every shard; done when every shard is.
            let (mut n, mut d) = (0, true);
            for mm in handle(m)?.maps() {
                let (k, dk) = mm.flush_expired_partial(limit as u32)?;
                n += k;
                d &= dk;
            }
            if !done.is_null() {
                done.write(d as i32);
            }
            Ok(n as i64)
        }
    })
}

// -- pop / shift / drain (api.md 6.6) ---------------------------------------------------

/// Shared body of hm_pop / hm_shift.
///
/// # Safety
/// As hm_pop.
unsafe fn take_end(m: *mut HmMap, key: *mut HmOut, val: *mut HmOut, shift: bool) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract of the calling entry point.
        unsafe {
            let h = handle(m)?;
            let got = match &mut h.t {
                Target::One(mm) if shift => mm.shift()?,
                Target::One(mm) => mm.pop()?,
                Target::Set(s) => s.take_one(shift)?,
            };
            Ok(put_pair(key, val, got))
        }
    })
}

/// Removes the LRU tail (LRU maps) or the lowest-slot entry: 1 and `*key`, `*val` set;
/// 0 when the map is empty. Expired entries met first are reclaimed and skipped.
///
/// # Safety
/// `m` a live handle; `key`, `val` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hm_pop(m: *mut HmMap, key: *mut HmOut, val: *mut HmOut) -> i32 {
    // SAFETY: forwarded contract.
    unsafe { take_end(m, key, val, false) }
}

/// Removes the LRU head (LRU maps) or the highest-slot entry; as hm_pop.
///
/// # Safety
/// As hm_pop.
#[no_mangle]
pub unsafe extern "C" fn hm_shift(m: *mut HmMap, key: *mut HmOut, val: *mut HmOut) -> i32 {
    // SAFETY: forwarded contract.
    unsafe { take_end(m, key, val, true) }
}

/// Removes up to `n` entries (clamped to the size) in pop order; `*out` lists them
/// (key and value per item). 1.
///
/// # Safety
/// `m` a live handle; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn hm_drain(m: *mut HmMap, n: u64, out: *mut HmList) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract.
        unsafe {
            let HmMap { t, list, .. } = handle(m)?;
            list.begin();
            match t {
                Target::One(map) => map.drain_with(n, |k, v| list.push(Some(k), Some(v), true))?,
                Target::Set(s) => s.drain_with(n, |k, v| list.push(Some(k), Some(v), true))?,
            };
            let list = list.end();
            if !out.is_null() {
                out.write(list);
            }
            Ok(1)
        }
    })
}

/// Convert a file written by the C implementation (formats v9 and v10) into ours, in
/// place and atomically (api.md 6.10): 1 converted, 0 already ours, HM_ERR with the
/// reason (the source is then unchanged).
///
/// # Safety
/// `path` a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn hm_upgrade_file(path: *const c_char) -> i32 {
    guard(HM_ERR, || {
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: per the contract, `path` is a valid NUL-terminated string.
        let p = unsafe { CStr::from_ptr(path) };
        let path = std::path::Path::new(std::ffi::OsStr::from_bytes(p.to_bytes()));
        Ok(crate::upgrade::upgrade_file(path)? as i32)
    })
}

/// What kind of error the calling thread's last error was (HM_EK_*).
#[no_mangle]
pub extern "C" fn hm_last_error_kind() -> u32 {
    LAST_KIND.with(|k| k.get())
}

// -- shard sets, frozen maps (api.md 3.2, 3.5, 6.9) ---------------------------------------

/// Opens (creating what is missing) the shard set `args.path` (the prefix: files
/// PREFIX.0 ..) of `shards` shards (0 -> 1, rounded up to a power of two, <= 4096),
/// each sized by `args`. NULL + hm_last_error() on failure.
///
/// # Safety
/// `args` must point to a valid HmOpen whose `path` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn hm_open_sharded(args: *const HmOpen, shards: u64) -> *mut HmMap {
    guard(ptr::null_mut(), || {
        // SAFETY: per the contract.
        let a = unsafe { args.as_ref() }.ok_or_else(|| Error::arg("NULL arguments"))?;
        let variant =
            Variant::from_id(a.variant).ok_or_else(|| Error::arg(format!("unknown variant {}", a.variant)))?;
        if a.path.is_null() {
            return Err(Error::arg("new_sharded requires a path_prefix"));
        }
        // SAFETY: a non-NULL path is NUL-terminated (contract).
        let prefix = unsafe { CStr::from_ptr(a.path) };
        let mut o = Options::new(variant, a.max_entries).file_mode(a.file_mode);
        o.max_size = a.max_size;
        o.ttl = a.ttl;
        o.lru_skip = a.lru_skip;
        o.arena_cap = a.arena_cap;
        let set = ShardSet::open(prefix, shards, &o)?;
        Ok(Box::into_raw(Box::new(HmMap::new(Target::Set(set)))))
    })
}

/// Opens the frozen map file `path` read-only (no locks, no writes; api.md 3.5).
/// NULL + hm_last_error() on failure.
///
/// # Safety
/// `path` must be a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn hm_open_readonly(variant: u32, path: *const c_char) -> *mut HmMap {
    guard(ptr::null_mut(), || {
        let v = Variant::from_id(variant).ok_or_else(|| Error::arg(format!("unknown variant {variant}")))?;
        if path.is_null() {
            return Err(Error::arg("path is required"));
        }
        // SAFETY: NUL-terminated (contract).
        let p = unsafe { CStr::from_ptr(path) };
        Ok(Box::into_raw(Box::new(HmMap::new(Target::One(Map::open_readonly(p, v)?)))))
    })
}

/// Seals the map (every shard) for good; this handle becomes read-only. 0, or HM_ERR
/// ("cannot freeze a read-only handle", "msync: ...").
///
/// # Safety
/// `m` a live handle.
#[no_mangle]
pub unsafe extern "C" fn hm_freeze(m: *mut HmMap) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract.
        let h = unsafe { handle(m)? };
        if h.first().readonly() || h.first().frozen() {
            return Err(Error::new(ErrorKind::Frozen, "cannot freeze a read-only handle"));
        }
        for mm in h.maps() {
            if !mm.frozen() {
                mm.freeze()?;
            }
        }
        Ok(0)
    })
}

// -- cursors (api.md 6.7) ------------------------------------------------------------------

/// A new cursor before the first entry (shard 0). Free it with hm_cursor_free.
#[no_mangle]
pub extern "C" fn hm_cursor_new() -> *mut HmCursor {
    guard(ptr::null_mut(), || Ok(Box::into_raw(Box::new(HmCursor { c: Cursor::new() }))))
}

/// Frees a cursor; `m` is the handle it was made for, or NULL when that is closed
/// already (then there is nothing to unregister from).
///
/// # Safety
/// `c` NULL or a cursor from hm_cursor_new not freed before; `m` NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn hm_cursor_free(m: *mut HmMap, c: *mut HmCursor) {
    guard((), || {
        if c.is_null() {
            return Ok(());
        }
        // SAFETY: c came from Box::into_raw in hm_cursor_new and is freed only once.
        let mut cur = unsafe { Box::from_raw(c) };
        // SAFETY: per the contract.
        if let Some(h) = unsafe { m.as_mut() } {
            cur.c.release(h.maps());
        }
        Ok(())
    })
}

/// The cursor's next entry: 1 and `*key`, `*val` set, or 0 (exhausted; it stays so
/// until reset or seek).
///
/// # Safety
/// `m` a live handle, `c` a live cursor made for it; `key`, `val` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hm_cursor_next(m: *mut HmMap, c: *mut HmCursor, key: *mut HmOut, val: *mut HmOut) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract.
        unsafe {
            let h = handle(m)?;
            let cur = c.as_mut().ok_or_else(|| Error::arg("NULL cursor"))?;
            Ok(put_pair(key, val, cur.c.next(h.maps())))
        }
    })
}

/// Back before the first entry of shard 0.
///
/// # Safety
/// As hm_cursor_next.
#[no_mangle]
pub unsafe extern "C" fn hm_cursor_reset(m: *mut HmMap, c: *mut HmCursor) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract.
        unsafe {
            let h = handle(m)?;
            let cur = c.as_mut().ok_or_else(|| Error::arg("NULL cursor"))?;
            cur.c.reset(h.maps());
            Ok(0)
        }
    })
}

/// Positions the cursor at live `key` (the next hm_cursor_next returns it): 1, or 0
/// when missing or expired (api.md 6.7 says where the cursor is then).
///
/// # Safety
/// As hm_cursor_next; `key` a valid HmIn.
#[no_mangle]
pub unsafe extern "C" fn hm_cursor_seek(m: *mut HmMap, c: *mut HmCursor, key: *const HmIn) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract.
        unsafe {
            let h = handle(m)?;
            let cur = c.as_mut().ok_or_else(|| Error::arg("NULL cursor"))?;
            let k = arg(key, h.kk, "key")?;
            let target = h.shard_of(k);
            Ok(cur.c.seek(h.maps(), target, k)? as i32)
        }
    })
}

/// A testing aid (t/sharded.t): takes the write lock of the map holding `key` (its
/// shard), writes one byte to `signal_fd`, waits until one byte can be read from
/// `wait_fd` (or it is closed), then releases the lock. 1, or HM_ERR.
///
/// # Safety
/// `m` a live handle; `key` a valid HmIn.
#[no_mangle]
pub unsafe extern "C" fn hm_test_hold_write(m: *mut HmMap, key: *const HmIn, signal_fd: i32, wait_fd: i32) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract.
        let h = unsafe { handle(m)? };
        // SAFETY: per the contract.
        let (mm, _) = unsafe { h.keyed(key)? };
        {
            mm.with_write_lock(|| {
                let b = [1u8];
                // SAFETY: writing one byte from a valid buffer to whatever fd the caller gave.
                unsafe { libc::write(signal_fd, b.as_ptr().cast(), 1) };
                let mut r = [0u8];
                loop {
                    // SAFETY: reading one byte into a valid buffer.
                    let n = unsafe { libc::read(wait_fd, r.as_mut_ptr().cast(), 1) };
                    if n >= 0 || crate::error::errno() != libc::EINTR {
                        break;
                    }
                }
            })?;
            Ok(1)
        }
    })
}
