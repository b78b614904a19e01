//! The cost of the C ABI layer: II lookups through `hm_get` (what the XS glue calls)
//! next to the engine's `Handle::get` on the same map.
//!
//! `cargo bench -p hashmap-shared-ffi --bench abi` (`HMS_BENCH_N`, `HMS_BENCH_REPS`).

use hashmap_shared::{raw::{Handle, In, Out, Variant}, Options};
use hashmap_shared_ffi::*;
use std::time::Instant;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let n = env_usize("HMS_BENCH_N", 25_000);
    let reps = env_usize("HMS_BENCH_REPS", 5_000_000);
    let o = HmOpen {
        variant: Variant::II.id(),
        backing: HM_BACK_ANON,
        path: std::ptr::null(),
        fd: -1,
        max_entries: n as u64,
        max_size: 0,
        ttl: 0,
        lru_skip: 0,
        arena_cap: 0,
        file_mode: 0o600,
    };
    // SAFETY: valid arguments; the handle is closed at the end of the block.
    unsafe {
        let h = hm_open(&o);
        assert!(!h.is_null());
        for i in 0..n as i64 {
            let k = HmIn { ival: i, ptr: std::ptr::null(), len: 0, utf8: 0 };
            hm_put(h, &k, &k);
        }
        let mut out = HmOut { ival: 0, ptr: std::ptr::null(), len: 0, utf8: 0 };
        let t = Instant::now();
        let mut sum = 0i64;
        for r in 0..reps {
            let k = HmIn { ival: (r % n) as i64, ptr: std::ptr::null(), len: 0, utf8: 0 };
            if hm_get(h, &k, &mut out) == 1 {
                sum = sum.wrapping_add(out.ival);
            }
        }
        std::hint::black_box(sum);
        println!("hm_get (C ABI), II, {n} entries: {:.1} ns", t.elapsed().as_nanos() as f64 / reps as f64);
        hm_close(h);
    }
    let mut m = Handle::open(&Options::of(Variant::II, n as u64)).expect("open");
    for i in 0..n as i64 {
        m.put(In::Int(i), In::Int(i)).expect("put");
    }
    let t = Instant::now();
    let mut sum = 0i64;
    for r in 0..reps {
        if let Some(Out::Int(v)) = m.get(In::Int((r % n) as i64)).expect("get") {
            sum = sum.wrapping_add(v);
        }
    }
    std::hint::black_box(sum);
    println!("Handle::get, II, {n} entries: {:.1} ns", t.elapsed().as_nanos() as f64 / reps as f64);
}
