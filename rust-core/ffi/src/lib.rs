//! The C ABI of the hashmap-shared engine, used by the Perl XS glue (Data::HashMap::Shared).
//!
//! A thin layer over [`Handle`]: it converts C arguments to the engine's and results
//! back, and catches every panic. The per-key entry points are generated from the one
//! operation list of the engine ([`hashmap_shared::keyed_ops!`]); the rest are written out
//! below.
//!
//! Conventions: every function catches panics; failures return `HM_ERR` (or NULL)
//! with a message in [`hm_last_error`] (thread-local, valid until the next failing
//! call on the thread). Non-negative returns are results (0 = false / not found,
//! 1 = true / found). String results (`HmOut.ptr`, `HmList` items) point into buffers
//! owned by the handle, valid until the next call on that handle.
//! `include/hashmap_shared.h` is generated from this file by cbindgen, plus the
//! prototypes of the generated entry points ([`KEYED_PROTOTYPES`]);
//! `HM_BLESS=1 cargo test -p hashmap-shared-ffi --release --test header_fresh` rewrites it.

use hashmap_shared::strref::MAX_LEN;
use hashmap_shared::raw::{Backing, Cursor, Handle, In, Kind, Out, Variant};
use hashmap_shared::{Error, ErrorKind, Options, Result};
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

/// Opaque map handle: one map, a shard set (shard.rs), ...: an engine [`Handle`].
pub struct HmMap {
    h: Handle,
    list: ListBuf,
}

/// A cursor (cursor.rs); it is used with the handle it was made for.
pub struct HmCursor {
    c: Cursor,
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

/// An invalid-argument error.
fn bad(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidArgument, msg)
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
    unsafe { m.as_mut() }.ok_or_else(|| bad("NULL map handle"))
}

/// The engine handle behind `m` (see [`handle`]).
///
/// # Safety
/// As [`handle`].
#[inline(always)]
unsafe fn engine<'a>(m: *mut HmMap) -> Result<&'a mut Handle> {
    // SAFETY: forwarded contract.
    Ok(&mut unsafe { handle(m) }?.h)
}

/// Converts an HmIn of kind `kind`; `role` names it in errors ("key", "value", ...).
///
/// # Safety
/// `p` must be NULL or point to a valid HmIn whose `ptr` addresses `len` readable bytes
/// that stay valid and unmodified for the duration of the call.
#[inline(always)]
unsafe fn arg<'a>(p: *const HmIn, kind: Kind, role: &str) -> Result<In<'a>> {
    // SAFETY: per this function's contract.
    let a = unsafe { p.as_ref() }.ok_or_else(|| bad(format!("NULL {role}")))?;
    if kind.is_int() {
        return Ok(In::Int(a.ival));
    }
    if a.len > MAX_LEN {
        return Err(Error::new(ErrorKind::TooLong, format!("{role} too long (max 1GB)")));
    }
    let b: &[u8] = if a.len == 0 {
        &[]
    } else if a.ptr.is_null() {
        return Err(bad(format!("NULL {role} bytes")));
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

/// Writes `v` to `dst` unless `dst` is NULL.
///
/// # Safety
/// `dst` must be NULL or valid for writing a `T`.
#[inline(always)]
unsafe fn put<T>(dst: *mut T, v: T) {
    if !dst.is_null() {
        // SAFETY: dst is valid for writes (contract above).
        unsafe { dst.write(v) };
    }
}

/// Writes a found (key, value) pair to `key` / `val`: 1, or 0 when there is none.
///
/// # Safety
/// As [`put`], for both destinations.
unsafe fn put_pair(key: *mut HmOut, val: *mut HmOut, got: Option<(Out<'_>, Out<'_>)>) -> i32 {
    match got {
        Some((k, v)) => {
            // SAFETY: forwarded contract.
            unsafe {
                put(key, to_out(k));
                put(val, to_out(v));
            }
            1
        }
        None => 0,
    }
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

/// Fills the handle's list with what `fill` pushes and writes it to `out`: 1.
///
/// # Safety
/// `m` a live handle; `out` NULL or writable.
unsafe fn list_result(m: *mut HmMap, out: *mut HmList, fill: impl FnOnce(&mut Handle, &mut ListBuf) -> Result<()>) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract.
        let HmMap { h, list } = unsafe { handle(m) }?;
        list.begin();
        fill(h, list)?;
        // SAFETY: per the contract.
        unsafe { put(out, list.end()) };
        Ok(1)
    })
}

// -- per-key operations, generated from the engine's list (ops.rs) -------------------

/// The C type of an argument tag (hashmap_shared::ops).
macro_rules! c_arg {
    (In) => { *const HmIn };
    (I64) => { i64 };
    (Ttl) => { u64 };
}

/// Converts an argument of the given tag for `h` (C value -> engine value).
macro_rules! conv {
    ($h:ident, $a:ident, In $role:literal) => { arg($a, $h.val_kind(), $role)? };
    ($h:ident, $a:ident, I64) => { $a };
    // TTL arguments are truncated to 32 bits (api.md 5.1); put/add/update_ttl clamp
    // 4294967294 and more to 4294967293 (the engine does).
    ($h:ident, $a:ident, Ttl) => { $a as u32 };
}

/// The C text of an argument / of a result's out parameters, for the prototypes.
macro_rules! c_arg_text {
    (In $a:ident) => { concat!(", const struct HmIn *", stringify!($a)) };
    (I64 $a:ident) => { concat!(", int64_t ", stringify!($a)) };
    (Ttl $a:ident) => { concat!(", uint64_t ", stringify!($a)) };
}
macro_rules! c_out_text {
    (Bool) => { "" };
    (Val) => { ", struct HmOut *out" };
    (Count) => { ", int64_t *result" };
    (Secs) => { ", uint64_t *secs" };
    (ValTtl) => { ", struct HmOut *out, int64_t *out_ttl" };
}

/// One generated entry point; the result tag picks its out parameters and how the
/// result is written (table in hashmap_shared::ops).
macro_rules! keyed_entry_point {
    (@fn [$($doc:literal)*] $name:ident $c:ident [$( $arg:ident $tag:ident $($role:literal)? ),*]
     [$( $out:ident : $oty:ty ),*] |$r:ident| $finish:expr) => {
        $(#[doc = $doc])*
        ///
        /// # Safety
        /// `m` a live handle; `key` and every `HmIn` argument valid; out parameters NULL or
        /// writable.
        #[no_mangle]
        pub unsafe extern "C" fn $c(m: *mut HmMap, key: *const HmIn, $( $arg: c_arg!($tag), )* $( $out: $oty ),*) -> i32 {
            guard(HM_ERR, || {
                // SAFETY: per the contract (for every unsafe call in this closure).
                unsafe {
                    let h = engine(m)?;
                    let k = arg(key, h.key_kind(), "key")?;
                    $( let $arg = conv!(h, $arg, $tag $($role)?); )*
                    let $r = h.$name(k, $($arg),*);
                    $finish
                }
            })
        }
    };
    ([$($doc:literal)*] $name:ident $c:ident $args:tt Bool) => {
        keyed_entry_point!(@fn [$($doc)*] $name $c $args [] |r| Ok(r? as i32));
    };
    ([$($doc:literal)*] $name:ident $c:ident $args:tt Val) => {
        keyed_entry_point!(@fn [$($doc)*] $name $c $args [out: *mut HmOut] |r| Ok(match r? {
            Some(o) => {
                put(out, to_out(o));
                1
            }
            None => 0,
        }));
    };
    ([$($doc:literal)*] $name:ident $c:ident $args:tt Count) => {
        keyed_entry_point!(@fn [$($doc)*] $name $c $args [result: *mut i64] |r| match r {
            Ok(v) => {
                put(result, v);
                Ok(1)
            }
            Err(e) if e.kind() == ErrorKind::Full => {
                set_error(e.message());
                Ok(HM_FULL)
            }
            Err(e) => Err(e),
        });
    };
    ([$($doc:literal)*] $name:ident $c:ident $args:tt Secs) => {
        keyed_entry_point!(@fn [$($doc)*] $name $c $args [secs: *mut u64] |r| Ok(match r? {
            Some(s) => {
                put(secs, s as u64);
                1
            }
            None => 0,
        }));
    };
    ([$($doc:literal)*] $name:ident $c:ident $args:tt ValTtl) => {
        keyed_entry_point!(@fn [$($doc)*] $name $c $args [out: *mut HmOut, out_ttl: *mut i64] |r| Ok(match r? {
            Some((o, left)) => {
                put(out, to_out(o));
                put(out_ttl, left.map_or(-1, |s| s as i64));
                1
            }
            None => 0,
        }));
    };
}

/// Every per-key entry point, and their C prototypes.
macro_rules! keyed_entry_points {
    ($( $(#[doc = $doc:literal])* $name:ident => $c:ident ( $( $arg:ident : $tag:ident $($role:literal)? ),* ) -> $ret:ident ; )*) => {
        $( keyed_entry_point!([$($doc)*] $name $c [$( $arg $tag $($role)? ),*] $ret); )*

        /// The C prototypes of the generated entry points (cbindgen does not expand
        /// macros): tests/header_fresh.rs puts them into the header.
        pub const KEYED_PROTOTYPES: &str = concat!(
            "// Per-key operations (generated from hashmap_shared::keyed_ops!). Each returns\n",
            "// HM_ERR on error; `key` and the HmIn arguments must be valid, out parameters NULL\n",
            "// or writable.\n\n",
            $(
                $( "//", $doc, "\n", )*
                "int32_t ", stringify!($c), "(struct HmMap *m, const struct HmIn *key",
                $( c_arg_text!($tag $arg), )* c_out_text!($ret), ");\n\n",
            )*
        );
    };
}
hashmap_shared::keyed_ops!(keyed_entry_points);

// -- opening and closing ------------------------------------------------------------------

/// Opens (creates or attaches) a map. NULL + hm_last_error() on failure.
///
/// # Safety
/// `args` must point to a valid HmOpen; `path`, when not NULL, to a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn hm_open(args: *const HmOpen) -> *mut HmMap {
    guard(ptr::null_mut(), || {
        // SAFETY: per the contract.
        let a = unsafe { args.as_ref() }.ok_or_else(|| bad("NULL arguments"))?;
        let backing = match a.backing {
            HM_BACK_FILE => Backing::File,
            HM_BACK_ANON => Backing::Anon,
            HM_BACK_MEMFD => Backing::Memfd,
            HM_BACK_FD => Backing::Fd,
            b => return Err(bad(format!("unknown backing {b}"))),
        };
        // SAFETY: per the contract.
        let o = unsafe { options(a) }?;
        if backing == Backing::File && o.path_cstr().is_none() {
            return Err(bad("a path is required"));
        }
        let path = o.path_cstr().map(CStr::to_owned);
        Ok(boxed(Handle::open(&o.backing(backing, path, a.fd))?))
    })
}

/// The variant, sizing and path of `a` (backing: file).
///
/// # Safety
/// `a.path` NULL or NUL-terminated.
unsafe fn options(a: &HmOpen) -> Result<Options> {
    let variant = Variant::from_id(a.variant).ok_or_else(|| bad(format!("unknown variant {}", a.variant)))?;
    let path = if a.path.is_null() {
        None
    } else {
        // SAFETY: a non-NULL path is NUL-terminated (contract).
        Some(unsafe { CStr::from_ptr(a.path) }.to_owned())
    };
    Ok(Options::of(variant, a.max_entries)
        .file_mode(a.file_mode)
        .lru(a.max_size, a.lru_skip)
        .ttl(a.ttl)
        .arena_cap(a.arena_cap)
        .backing(Backing::File, path, -1))
}

fn boxed(h: Handle) -> *mut HmMap {
    Box::into_raw(Box::new(HmMap { h, list: ListBuf::default() }))
}

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
        let a = unsafe { args.as_ref() }.ok_or_else(|| bad("NULL arguments"))?;
        // SAFETY: per the contract.
        let o = unsafe { options(a) }?;
        let prefix = o.path_cstr().map(CStr::to_owned).ok_or_else(|| bad("new_sharded requires a path_prefix"))?;
        Ok(boxed(Handle::open_sharded(&prefix, shards, &o)?))
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
        let v = Variant::from_id(variant).ok_or_else(|| bad(format!("unknown variant {variant}")))?;
        if path.is_null() {
            return Err(bad("path is required"));
        }
        // SAFETY: NUL-terminated (contract).
        let p = unsafe { CStr::from_ptr(path) };
        Ok(boxed(Handle::open_readonly(p, v)?))
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
            // SAFETY: m came from Box::into_raw in boxed() and is closed only once.
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

/// What kind of error the calling thread's last error was (HM_EK_*).
#[no_mangle]
pub extern "C" fn hm_last_error_kind() -> u32 {
    LAST_KIND.with(|k| k.get())
}

/// Variant id (1..10), 0 for NULL.
///
/// # Safety
/// `m` must be NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn hm_variant(m: *const HmMap) -> u32 {
    // SAFETY: per the contract.
    guard(0, || Ok(unsafe { m.as_ref() }.map_or(0, |h| h.h.variant().id())))
}

/// Backing path (a shard set's prefix), NULL when none (anonymous, memfd, fd maps).
/// Owned by the handle.
///
/// # Safety
/// `m` must be NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn hm_path(m: *const HmMap) -> *const c_char {
    // SAFETY: per the contract.
    guard(ptr::null(), || Ok(unsafe { m.as_ref() }.and_then(|h| h.h.path()).map_or(ptr::null(), |p| p.as_ptr())))
}

/// Descriptor kept by memfd / fd maps, -1 when none.
///
/// # Safety
/// `m` must be NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn hm_memfd(m: *const HmMap) -> i32 {
    // SAFETY: per the contract.
    guard(-1, || Ok(unsafe { m.as_ref() }.map_or(-1, |h| h.h.memfd())))
}

// -- lookups with a fast path --------------------------------------------------------------

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
            let h = engine(m)?;
            let k = arg(key, h.key_kind(), "key")?;
            Ok(match h.get_to(k, dst, cap)? {
                Some(o) => {
                    put(val, to_out(o));
                    1
                }
                None => 0,
            })
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
            Ok(match engine(m)?.get_int(key)? {
                Some(v) => {
                    put(val, v);
                    1
                }
                None => 0,
            })
        }
    })
}

// -- integer writes with a fast path -------------------------------------------------------

/// hm_put for an integer-key, integer-value variant (II, I32, I16) without HmIn: 1
/// stored, 0 not (full), HM_ERR (a string variant gets hm_put's error). The put
/// keyword's fast path; LRU/TTL maps and shard sets are served too (general path).
///
/// # Safety
/// `m` a live handle.
#[no_mangle]
pub unsafe extern "C" fn hm_put_int(m: *mut HmMap, key: i64, val: i64) -> i32 {
    // SAFETY: per the contract.
    guard(HM_ERR, || Ok(unsafe { engine(m) }?.put_int(key, val)? as i32))
}

/// hm_add of an integer key and value (see hm_put_int): 1 inserted, 0 not.
///
/// # Safety
/// `m` a live handle.
#[no_mangle]
pub unsafe extern "C" fn hm_add_int(m: *mut HmMap, key: i64, val: i64) -> i32 {
    // SAFETY: per the contract.
    guard(HM_ERR, || Ok(unsafe { engine(m) }?.add_int(key, val)? as i32))
}

/// hm_update of an integer key and value (see hm_put_int): 1 updated, 0 absent.
///
/// # Safety
/// `m` a live handle.
#[no_mangle]
pub unsafe extern "C" fn hm_update_int(m: *mut HmMap, key: i64, val: i64) -> i32 {
    // SAFETY: per the contract.
    guard(HM_ERR, || Ok(unsafe { engine(m) }?.update_int(key, val)? as i32))
}

/// hm_remove of an integer key, for every integer-key variant: 1 removed, 0 absent.
///
/// # Safety
/// `m` a live handle.
#[no_mangle]
pub unsafe extern "C" fn hm_remove_int(m: *mut HmMap, key: i64) -> i32 {
    // SAFETY: per the contract.
    guard(HM_ERR, || Ok(unsafe { engine(m) }?.remove_int(key)? as i32))
}

/// hm_incr_by of an integer key (integer-value variants): 1 and `*result` set,
/// HM_FULL when a new key does not fit, HM_ERR.
///
/// # Safety
/// `m` a live handle; `result` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hm_incr_int(m: *mut HmMap, key: i64, delta: i64, result: *mut i64) -> i32 {
    guard(HM_ERR, || {
        // SAFETY: per the contract (both calls).
        match unsafe { engine(m) }?.incr_int(key, delta) {
            Ok(v) => {
                unsafe { put(result, v) };
                Ok(1)
            }
            Err(e) if e.kind() == ErrorKind::Full => {
                set_error(e.message());
                Ok(HM_FULL)
            }
            Err(e) => Err(e),
        }
    })
}

// -- batches (api.md 2.3, 7.7) -------------------------------------------------------------

/// Slice of `n` HmIns (empty when n is 0).
///
/// # Safety
/// `p` must address `n` valid HmIns when n > 0.
unsafe fn ins<'a>(p: *const HmIn, n: usize) -> Result<&'a [HmIn]> {
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(bad("NULL argument array"));
    }
    // SAFETY: p addresses n HmIns (contract).
    Ok(unsafe { std::slice::from_raw_parts(p, n) })
}

/// The `n` keys at `keys`, converted.
///
/// # Safety
/// `keys` addresses n valid HmIns.
unsafe fn keys_of<'a>(h: &Handle, keys: *const HmIn, n: usize) -> Result<Vec<In<'a>>> {
    // SAFETY: forwarded contract.
    unsafe { ins(keys, n)?.iter().map(|k| arg(k, h.key_kind(), "key")).collect() }
}

/// Puts `npairs` pairs (`kv[2i]` = key, `kv[2i+1]` = value) under one write lock (per
/// key on a shard set); returns the number stored.
///
/// # Safety
/// `m` a live handle; `kv` addresses 2 * npairs valid HmIns.
#[no_mangle]
pub unsafe extern "C" fn hm_set_multi(m: *mut HmMap, kv: *const HmIn, npairs: usize) -> i64 {
    guard(HM_ERR as i64, || {
        // SAFETY: per the contract.
        unsafe {
            let h = engine(m)?;
            let n2 = npairs.checked_mul(2).ok_or_else(|| bad("too many pairs"))?;
            let pairs = ins(kv, n2)?
                .chunks_exact(2)
                .map(|p| Ok((arg(&p[0], h.key_kind(), "key")?, arg(&p[1], h.val_kind(), "value")?)))
                .collect::<Result<Vec<_>>>()?;
            Ok(h.set_multi(&pairs)? as i64)
        }
    })
}

/// Looks `n` keys up under one read lock (per key on a shard set); `*out` lists one
/// item per key (key echoed, `found` 0 for missing keys).
///
/// # Safety
/// `m` a live handle; `keys` addresses n valid HmIns; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn hm_get_multi(m: *mut HmMap, keys: *const HmIn, n: usize, out: *mut HmList) -> i32 {
    // SAFETY: per the contract.
    unsafe {
        list_result(m, out, |h, list| {
            let kk = h.key_kind();
            let ks = keys_of(h, keys, n)?;
            h.get_multi_with(&ks, |i, v| {
                let echo = match ks[i] {
                    In::Int(x) => Out::Int(kk.narrow(x)),
                    In::Str(b, u) => Out::Str(b, u),
                };
                let found = v.is_some();
                list.push(Some(echo), v, found);
            })
        })
    }
}

/// Removes `n` keys under one write lock (per key on a shard set); returns how many
/// were removed.
///
/// # Safety
/// `m` a live handle; `keys` addresses n valid HmIns.
#[no_mangle]
pub unsafe extern "C" fn hm_remove_multi(m: *mut HmMap, keys: *const HmIn, n: usize) -> i64 {
    guard(HM_ERR as i64, || {
        // SAFETY: per the contract.
        unsafe {
            let h = engine(m)?;
            let ks = keys_of(h, keys, n)?;
            Ok(h.remove_multi(&ks)? as i64)
        }
    })
}

// -- whole map (api.md 6.6 - 6.9) -----------------------------------------------------------

/// Removes everything (table back to 16 slots, arena emptied, pages released). 0.
///
/// # Safety
/// `m` a live handle.
#[no_mangle]
pub unsafe extern "C" fn hm_clear(m: *mut HmMap) -> i32 {
    // SAFETY: per the contract.
    guard(HM_ERR, || unsafe { engine(m) }?.clear().map(|()| 0))
}

/// Pre-grows so that `n` (truncated to 32 bits, api.md 5.1) entries fit: 1, or 0 when
/// beyond the maximum capacity.
///
/// # Safety
/// `m` a live handle.
#[no_mangle]
pub unsafe extern "C" fn hm_reserve(m: *mut HmMap, n: u64) -> i32 {
    // SAFETY: per the contract.
    guard(HM_ERR, || Ok(unsafe { engine(m) }?.reserve(n as u32 as u64)? as i32))
}

/// msync(MS_SYNC) of the whole map: 0, or HM_ERR with the strerror text.
///
/// # Safety
/// `m` a live handle.
#[no_mangle]
pub unsafe extern "C" fn hm_sync(m: *mut HmMap) -> i32 {
    // SAFETY: per the contract.
    guard(HM_ERR, || unsafe { engine(m) }?.sync().map(|()| 0))
}

/// Removes the backing file: 1 removed, 0 not (no path, already gone, no permission).
///
/// # Safety
/// `m` a live handle.
#[no_mangle]
pub unsafe extern "C" fn hm_unlink(m: *mut HmMap) -> i32 {
    // SAFETY: per the contract.
    guard(0, || Ok(unsafe { engine(m) }?.unlink() as i32))
}

/// This handle's iterator: 1 and `*key`/`*val` set, or 0 at the end (which resets it).
///
/// # Safety
/// `m` a live handle; `key`, `val` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hm_each(m: *mut HmMap, key: *mut HmOut, val: *mut HmOut) -> i32 {
    // SAFETY: per the contract.
    guard(HM_ERR, || unsafe { Ok(put_pair(key, val, engine(m)?.each()?)) })
}

/// Resets this handle's iterator (and runs a shrink deferred while it was active).
///
/// # Safety
/// `m` a live handle.
#[no_mangle]
pub unsafe extern "C" fn hm_iter_reset(m: *mut HmMap) {
    // SAFETY: per the contract.
    guard((), || Ok(unsafe { engine(m) }?.iter_reset()))
}

/// Snapshot of every entry under one read lock per shard (HM_KEYS, HM_VALUES or
/// HM_ITEMS).
///
/// # Safety
/// `m` a live handle; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn hm_list(m: *mut HmMap, what: u32, out: *mut HmList) -> i32 {
    // SAFETY: per the contract.
    unsafe {
        list_result(m, out, |h, list| {
            if !(HM_KEYS..=HM_ITEMS).contains(&what) {
                return Err(bad(format!("unknown list kind {what}")));
            }
            let (wk, wv) = (what & HM_KEYS != 0, what & HM_VALUES != 0);
            h.for_each(wk, wv, |k, v| list.push(wk.then_some(k), wv.then_some(v), true))
        })
    }
}

/// Walks the whole map (read lock; every shard of a set, messages prefixed "shard N: ")
/// and lists every inconsistency found, one message per item key (a string); returns
/// how many (0: the map is sound).
///
/// # Safety
/// `m` a live handle; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn hm_verify(m: *mut HmMap, out: *mut HmList) -> i32 {
    let mut n = 0;
    // SAFETY: per the contract.
    let r = unsafe {
        list_result(m, out, |h, list| {
            let problems = h.verify();
            n = problems.len() as i32;
            for p in &problems {
                list.push(Some(Out::Str(p.as_bytes(), false)), None, true);
            }
            Ok(())
        })
    };
    if r < 0 {
        r
    } else {
        n
    }
}

fn stats_of(h: &mut Handle) -> Result<HmStats> {
    let s = h.stats()?;
    Ok(HmStats {
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
    })
}

/// Fills `*out` with the statistics: 0, or HM_ERR (a map in Redis that cannot be
/// reached).
///
/// # Safety
/// `m` a live handle; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn hm_stats(m: *mut HmMap, out: *mut HmStats) -> i32 {
    // SAFETY: per the contract.
    guard(HM_ERR, || unsafe { Ok(put(out, stats_of(engine(m)?)?)) }.map(|()| 0))
}

/// One statistic (HM_ST_*; 0 for an unknown one, values above 2^63-1 saturate), or
/// HM_ERR (a map in Redis that cannot be reached).
///
/// # Safety
/// `m` a live handle.
#[no_mangle]
pub unsafe extern "C" fn hm_stat(m: *mut HmMap, which: u32) -> i64 {
    guard(HM_ERR as i64, || {
        // SAFETY: per the contract.
        let s = stats_of(unsafe { engine(m)? })?;
        let v = match which {
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
        };
        Ok(v.min(i64::MAX as u64) as i64)
    })
}

/// Removes every expired entry; returns how many (0 on a map without TTL).
///
/// # Safety
/// `m` a live handle.
#[no_mangle]
pub unsafe extern "C" fn hm_flush_expired(m: *mut HmMap) -> i64 {
    // SAFETY: per the contract.
    guard(HM_ERR as i64, || Ok(unsafe { engine(m) }?.flush_expired()? as i64))
}

/// Scans `limit` (truncated to 32 bits; at least 1) slots from the shared cursor,
/// removing expired entries; returns how many, `*done` = 1 when the scan reached the
/// end of the table (0 otherwise; a shard set: the same scan on every shard, done when
/// every shard is). (0, done 1) on a map without TTL.
///
/// # Safety
/// `m` a live handle; `done` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hm_flush_expired_partial(m: *mut HmMap, limit: u64, done: *mut i32) -> i64 {
    guard(HM_ERR as i64, || {
        // SAFETY: per the contract.
        unsafe {
            let (n, d) = engine(m)?.flush_expired_partial(limit as u32)?;
            put(done, d as i32);
            Ok(n as i64)
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
    // SAFETY: per the contract.
    guard(HM_ERR, || unsafe { Ok(put_pair(key, val, engine(m)?.take_one(false)?)) })
}

/// Removes the LRU head (LRU maps) or the highest-slot entry; as hm_pop.
///
/// # Safety
/// As hm_pop.
#[no_mangle]
pub unsafe extern "C" fn hm_shift(m: *mut HmMap, key: *mut HmOut, val: *mut HmOut) -> i32 {
    // SAFETY: per the contract.
    guard(HM_ERR, || unsafe { Ok(put_pair(key, val, engine(m)?.take_one(true)?)) })
}

/// Removes up to `n` entries (clamped to the size) in pop order; `*out` lists them
/// (key and value per item). 1.
///
/// # Safety
/// `m` a live handle; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn hm_drain(m: *mut HmMap, n: u64, out: *mut HmList) -> i32 {
    // SAFETY: per the contract.
    unsafe {
        list_result(m, out, |h, list| h.drain_with(n, |k, v| list.push(Some(k), Some(v), true)).map(|_| ()))
    }
}

/// Seals the map (every shard) for good; this handle becomes read-only. 0, or HM_ERR
/// ("cannot freeze a read-only handle", "msync: ...").
///
/// # Safety
/// `m` a live handle.
#[no_mangle]
pub unsafe extern "C" fn hm_freeze(m: *mut HmMap) -> i32 {
    // SAFETY: per the contract.
    guard(HM_ERR, || unsafe { engine(m) }?.freeze().map(|()| 0))
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
        if path.is_null() {
            return Err(bad("path is required"));
        }
        // SAFETY: per the contract, `path` is a valid NUL-terminated string.
        let p = unsafe { CStr::from_ptr(path) };
        let path = std::path::Path::new(std::ffi::OsStr::from_bytes(p.to_bytes()));
        Ok(hashmap_shared::upgrade_file(path)? as i32)
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
            h.h.cursor_release(&mut cur.c);
        }
        Ok(())
    })
}

/// The cursor behind `c`.
///
/// # Safety
/// `c` NULL or a live cursor.
unsafe fn cursor<'a>(c: *mut HmCursor) -> Result<&'a mut Cursor> {
    // SAFETY: per the contract.
    Ok(&mut unsafe { c.as_mut() }.ok_or_else(|| bad("NULL cursor"))?.c)
}

/// The cursor's next entry: 1 and `*key`, `*val` set, or 0 (exhausted; it stays so
/// until reset or seek).
///
/// # Safety
/// `m` a live handle, `c` a live cursor made for it; `key`, `val` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hm_cursor_next(m: *mut HmMap, c: *mut HmCursor, key: *mut HmOut, val: *mut HmOut) -> i32 {
    // SAFETY: per the contract.
    guard(HM_ERR, || unsafe { Ok(put_pair(key, val, engine(m)?.cursor_next(cursor(c)?)?)) })
}

/// Back before the first entry of shard 0.
///
/// # Safety
/// As hm_cursor_next.
#[no_mangle]
pub unsafe extern "C" fn hm_cursor_reset(m: *mut HmMap, c: *mut HmCursor) -> i32 {
    // SAFETY: per the contract.
    guard(HM_ERR, || unsafe { Ok(engine(m)?.cursor_reset(cursor(c)?)) }.map(|()| 0))
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
            let h = engine(m)?;
            let k = arg(key, h.key_kind(), "key")?;
            Ok(h.cursor_seek(cursor(c)?, k)? as i32)
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
        let h = unsafe { engine(m)? };
        // SAFETY: per the contract.
        let k = unsafe { arg(key, h.key_kind(), "key")? };
        h.with_write_lock(k, || {
            let b = [1u8];
            // SAFETY: writing one byte from a valid buffer to whatever fd the caller gave.
            unsafe { libc::write(signal_fd, b.as_ptr().cast(), 1) };
            let mut r = [0u8];
            loop {
                // SAFETY: reading one byte into a valid buffer.
                let n = unsafe { libc::read(wait_fd, r.as_mut_ptr().cast(), 1) };
                if n >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                    break;
                }
            }
        })?;
        Ok(1)
    })
}
