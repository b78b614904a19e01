//! The C ABI, called the way the XS glue calls it.

use hashmap_shared_ffi::*;
use std::ffi::{CStr, CString};
use std::ptr;

fn open(variant: u32, backing: u32, path: Option<&CStr>, max: u64) -> *mut HmMap {
    let o = HmOpen {
        variant,
        backing,
        path: path.map_or(ptr::null(), |p| p.as_ptr()),
        fd: -1,
        max_entries: max,
        max_size: 0,
        ttl: 0,
        lru_skip: 0,
        arena_cap: 0,
        file_mode: 0o600,
    };
    // SAFETY: o is a valid HmOpen with a NUL-terminated path or NULL.
    unsafe { hm_open(&o) }
}

fn last_error() -> String {
    // SAFETY: hm_last_error returns a NUL-terminated thread-local string.
    unsafe { CStr::from_ptr(hm_last_error()) }.to_string_lossy().into_owned()
}

fn sin(b: &[u8]) -> HmIn {
    HmIn { ival: 0, ptr: b.as_ptr(), len: b.len(), utf8: 0 }
}
fn iin(v: i64) -> HmIn {
    HmIn { ival: v, ptr: ptr::null(), len: 0, utf8: 0 }
}
fn zero() -> HmOut {
    HmOut { ival: 0, ptr: ptr::null(), len: 0, utf8: 0 }
}
/// Bytes of an HmOut.
///
/// # Safety
/// `o` must come from the engine and the handle must not have been called since.
unsafe fn bytes(o: &HmOut) -> Vec<u8> {
    if o.len == 0 {
        return Vec::new();
    }
    // SAFETY: per the contract above.
    unsafe { std::slice::from_raw_parts(o.ptr, o.len) }.to_vec()
}

#[test]
fn open_errors_and_null_handles() {
    assert!(open(11, HM_BACK_ANON, None, 10).is_null());
    assert_eq!(last_error(), "unknown variant 11");
    assert!(open(3, 9, None, 10).is_null());
    assert_eq!(last_error(), "unknown backing 9");
    assert!(open(3, HM_BACK_FILE, None, 10).is_null());
    assert_eq!(last_error(), "a path is required");
    assert!(open(3, HM_BACK_ANON, None, 1 << 32).is_null());
    assert_eq!(last_error(), "max_entries 4294967296 exceeds the maximum of 4294967295");
    // SAFETY: NULL handles are accepted everywhere.
    unsafe {
        hm_close(ptr::null_mut());
        assert_eq!(hm_variant(ptr::null()), 0);
        assert_eq!(hm_memfd(ptr::null()), -1);
        assert!(hm_path(ptr::null()).is_null());
        assert_eq!(hm_get(ptr::null_mut(), &iin(1), ptr::null_mut()), HM_ERR);
        assert_eq!(last_error(), "NULL map handle");
        assert_eq!(hm_stat(ptr::null_mut(), HM_ST_SIZE), 0);
        assert!(hm_open(ptr::null()).is_null());
    }
}

#[test]
fn string_map_roundtrip() {
    let m = open(10, HM_BACK_MEMFD, Some(c"ffi-test"), 100);
    assert!(!m.is_null());
    // SAFETY: m is a live handle; every HmIn points to live bytes.
    unsafe {
        assert_eq!(hm_variant(m), 10);
        assert!(hm_memfd(m) >= 0);
        assert!(hm_path(m).is_null());
        let v = "välue longer than 7".as_bytes();
        let mut vin = sin(v);
        vin.utf8 = 1;
        assert_eq!(hm_put(m, &sin(b"key"), &vin), 1);
        let mut out = zero();
        assert_eq!(hm_get(m, &sin(b"key"), &mut out), 1);
        assert_eq!((bytes(&out), out.utf8), (v.to_vec(), 1));
        assert_eq!(hm_get(m, &sin(b"nope"), &mut out), 0);
        assert_eq!(hm_exists(m, &sin(b"key")), 1);
        // Empty string with a NULL pointer.
        let empty = HmIn { ival: 0, ptr: ptr::null(), len: 0, utf8: 0 };
        assert_eq!(hm_put(m, &empty, &empty), 1);
        assert_eq!(hm_get(m, &empty, &mut out), 1);
        assert_eq!(out.len, 0);
        // Too long: refused before touching the bytes.
        let huge = HmIn { ival: 0, ptr: b"x".as_ptr(), len: 1 << 30, utf8: 0 };
        assert_eq!(hm_put(m, &huge, &sin(b"v")), HM_ERR);
        assert_eq!(last_error(), "key too long (max 1GB)");
        assert_eq!(hm_put(m, &sin(b"k"), &huge), HM_ERR);
        assert_eq!(last_error(), "value too long (max 1GB)");
        assert_eq!(hm_cas(m, &sin(b"k"), &huge, &sin(b"v")), HM_ERR);
        assert_eq!(last_error(), "expected value too long (max 1GB)");
        assert_eq!(hm_cas(m, &sin(b"k"), &sin(b"v"), &huge), HM_ERR);
        assert_eq!(last_error(), "desired value too long (max 1GB)");
        // Counters are not for string values.
        let mut r = 0i64;
        assert_eq!(hm_incr_by(m, &sin(b"k"), 1, &mut r), HM_ERR);
        // swap / take / get_or_set / cas_take
        assert_eq!(hm_swap(m, &sin(b"key"), &sin(b"short"), &mut out), 1);
        assert_eq!(bytes(&out), v);
        assert_eq!(hm_swap(m, &sin(b"new"), &sin(b"x"), &mut out), 0);
        assert_eq!(hm_get_or_set(m, &sin(b"gos"), &sin(b"default value!"), &mut out), 1);
        assert_eq!(bytes(&out), b"default value!");
        assert_eq!(hm_cas_take(m, &sin(b"gos"), &sin(b"default value!"), &mut out), 1);
        assert_eq!(hm_take(m, &sin(b"new"), &mut out), 1);
        assert_eq!(bytes(&out), b"x");
        // Batches.
        let owned: Vec<(Vec<u8>, Vec<u8>)> =
            (0..20).map(|i| (format!("batch key {i}").into_bytes(), format!("v{i}").into_bytes())).collect();
        let kv2: Vec<HmIn> = owned.iter().flat_map(|(k, v)| [sin(k), sin(v)]).collect();
        assert_eq!(hm_set_multi(m, ptr::null(), 20), HM_ERR as i64);
        assert_eq!(last_error(), "NULL argument array");
        assert_eq!(hm_set_multi(m, kv2.as_ptr(), 20), 20);
        let keys: Vec<HmIn> = owned.iter().map(|(k, _)| sin(k)).chain([sin(b"missing")]).collect();
        let mut l = HmList { items: ptr::null(), len: 0 };
        assert_eq!(hm_get_multi(m, keys.as_ptr(), keys.len(), &mut l), 1);
        assert_eq!(l.len, 21);
        let items = std::slice::from_raw_parts(l.items, l.len);
        for (i, it) in items.iter().enumerate().take(20) {
            assert_eq!(it.found, 1);
            assert_eq!(bytes(&it.key), owned[i].0);
            assert_eq!(bytes(&it.val), owned[i].1);
        }
        assert_eq!(items[20].found, 0);
        assert_eq!(hm_list(m, HM_ITEMS, &mut l), 1);
        assert_eq!(l.len, 22);
        let items = std::slice::from_raw_parts(l.items, l.len);
        let mut seen: Vec<Vec<u8>> = items.iter().map(|it| bytes(&it.key)).collect();
        seen.sort();
        assert!(seen.contains(&b"key".to_vec()) && seen.contains(&Vec::new()));
        assert_eq!(hm_list(m, HM_VALUES, &mut l), 1);
        assert_eq!(hm_list(m, 7, &mut l), HM_ERR);
        let mut n = 0;
        let (mut k, mut val) = (zero(), zero());
        while hm_each(m, &mut k, &mut val) == 1 {
            n += 1;
        }
        assert_eq!(n, 22);
        hm_iter_reset(m);
        assert_eq!(hm_remove_multi(m, keys.as_ptr(), keys.len()), 20);
        assert_eq!(hm_remove_multi(m, ptr::null(), 0), 0);
        assert_eq!(hm_stat(m, HM_ST_SIZE), 2);
        let mut st = HmStats::default();
        hm_stats(m, &mut st);
        assert_eq!((st.size, st.capacity, st.max_entries, st.arena_cap), (2, 16, 112, 12800));
        assert_eq!(hm_stat(m, 99), 0);
        assert_eq!(hm_reserve(m, 1000), 0);
        assert_eq!(hm_reserve(m, 100), 1);
        assert_eq!(hm_reserve(m, 1 << 40), 1, "truncated to 32 bits: reserve(0)");
        assert_eq!(hm_stat(m, HM_ST_CAPACITY), 128);
        assert_eq!(hm_clear(m), 0);
        assert_eq!(hm_stat(m, HM_ST_SIZE), 0);
        assert_eq!(hm_sync(m), 0);
        assert_eq!(hm_unlink(m), 0);
        hm_close(m);
    }
}

#[test]
fn int_map_counters_and_full() {
    let dir = std::env::temp_dir().join(format!("hm-ffi-{}.shm", std::process::id()));
    let _ = std::fs::remove_file(&dir);
    let path = CString::new(dir.to_str().unwrap()).unwrap();
    let m = open(1, HM_BACK_FILE, Some(&path), 4);
    assert!(!m.is_null(), "{}", last_error());
    // SAFETY: m is a live handle.
    unsafe {
        assert_eq!(CStr::from_ptr(hm_path(m)), path.as_c_str());
        let mut r = 0i64;
        assert_eq!(hm_incr_by(m, &iin(70000), 32767, &mut r), 1);
        assert_eq!(r, 32767);
        assert_eq!(hm_incr_by(m, &iin(4464), 1, &mut r), 1);
        assert_eq!(r, -32768);
        assert_eq!(hm_max(m, &iin(1), 5, &mut r), 1);
        assert_eq!(hm_min(m, &iin(1), 3, &mut r), 1);
        assert_eq!(r, 3);
        let max = hm_stat(m, HM_ST_MAX_ENTRIES) as i64;
        for i in 0..max {
            hm_put(m, &iin(100 + i), &iin(i));
        }
        assert_eq!(hm_stat(m, HM_ST_SIZE) as i64, max);
        assert_eq!(hm_incr_by(m, &iin(-5), 1, &mut r), HM_FULL);
        assert_eq!(hm_put(m, &iin(-5), &iin(1)), 0);
        let mut out = zero();
        assert_eq!(hm_get_or_set(m, &iin(-5), &iin(1), &mut out), 0);
        assert_eq!(hm_get_or_set(m, &iin(1), &iin(9), &mut out), 1);
        assert_eq!(out.ival, 3);
        assert_eq!(hm_cas(m, &iin(1), &iin(3 + 65536), &iin(4)), 1, "compared after narrowing");
        assert_eq!(hm_unlink(m), 1);
        assert_eq!(hm_unlink(m), 0);
        hm_close(m);
    }
}
