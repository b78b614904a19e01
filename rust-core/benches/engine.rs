//! Engine-level benchmark (no Perl): II lookups on a map far larger than the CPU caches
//! against one dependent random memory read over a shared mapping of the same size,
//! measured in the same run (decisions "Targets": an II hit at most 1.3x one read).
//!
//! `cargo bench -p hashmap-shared --bench engine` (HM_BENCH_N = entries, default 10M).

use hashmap_shared::{In, Map, Options, Out, Variant};
use std::time::Instant;

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A random cyclic permutation of 0..n (Sattolo).
fn cycle(n: usize, seed: u64) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut s = seed;
    for i in (1..n).rev() {
        s = splitmix(s);
        let j = (s % i as u64) as usize;
        order.swap(i, j);
    }
    let mut next = vec![0u32; n];
    for w in 0..n {
        next[order[w] as usize] = order[(w + 1) % n];
    }
    next
}

/// A MAP_SHARED memfd mapping of `bytes` (the kind of memory the map lives in).
fn shared_buf(bytes: usize) -> &'static mut [u64] {
    // SAFETY: memfd_create with a NUL-terminated name.
    let fd = unsafe { libc::memfd_create(c"bench".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0);
    // SAFETY: sizing and mapping our own memfd; the mapping is leaked for the program's life.
    unsafe {
        assert_eq!(libc::ftruncate(fd, bytes as libc::off_t), 0);
        let p = libc::mmap(std::ptr::null_mut(), bytes, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0);
        assert_ne!(p, libc::MAP_FAILED);
        libc::close(fd);
        std::slice::from_raw_parts_mut(p.cast(), bytes / 8)
    }
}

fn main() {
    let n: usize = std::env::var("HM_BENCH_N").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000_000);
    let steps = 5_000_000usize;
    let mut m = Map::open(&Options::new(Variant::II, n as u64)).unwrap();
    let keys: Vec<i64> = (0..n as u64).map(|i| splitmix(i ^ 0x5555) as i64).collect();
    let next = cycle(n, 42);
    let t = Instant::now();
    for i in 0..n {
        assert!(m.put(In::Int(keys[i]), In::Int(keys[next[i] as usize])).unwrap());
    }
    let ins = t.elapsed().as_nanos() as f64 / n as f64;
    let st = m.stats();
    let region = st.capacity as usize * 16;
    println!("II map: {} entries, capacity {}, mmap_size {} bytes", st.size, st.capacity, st.mmap_size);
    println!("insert (with growth): {ins:.1} ns/op");

    // Baseline: dependent random reads over a shared mapping as large as the slots.
    let buf = shared_buf(region);
    let words = buf.len();
    let bnext = cycle(words, 7);
    for (i, w) in buf.iter_mut().enumerate() {
        *w = bnext[i] as u64;
    }
    drop(bnext);
    let mut s = 99u64;
    let probe: Vec<i64> = (0..steps)
        .map(|_| {
            s = splitmix(s);
            keys[(s % n as u64) as usize]
        })
        .collect();
    let mut best_read = f64::MAX;
    let mut best_chain = f64::MAX;
    let mut best_indep = f64::MAX;
    for _round in 0..3 {
        let t = Instant::now();
        let mut p = 0usize;
        for _ in 0..steps {
            // SAFETY: p < words always (values are indices).
            p = unsafe { *buf.get_unchecked(p) } as usize;
        }
        std::hint::black_box(p);
        best_read = best_read.min(t.elapsed().as_nanos() as f64 / steps as f64);

        // Dependent lookups: the next key is the value found.
        let t = Instant::now();
        let mut k = keys[0];
        for _ in 0..steps {
            k = match m.get(In::Int(k)).unwrap() {
                Some(Out::Int(v)) => v,
                _ => panic!("miss"),
            };
        }
        std::hint::black_box(k);
        best_chain = best_chain.min(t.elapsed().as_nanos() as f64 / steps as f64);

        // Independent lookups of random keys (what a loop of gets does).
        let t = Instant::now();
        let mut sum = 0i64;
        for &k in &probe {
            if let Some(Out::Int(v)) = m.get(In::Int(k)).unwrap() {
                sum = sum.wrapping_add(v);
            }
        }
        std::hint::black_box(sum);
        best_indep = best_indep.min(t.elapsed().as_nanos() as f64 / steps as f64);
    }
    println!("dependent random read ({} MiB shared mapping): {best_read:.1} ns", region >> 20);
    println!("II hit, dependent chain:  {best_chain:.1} ns  ({:.2}x one read)", best_chain / best_read);
    println!("II hit, independent keys: {best_indep:.1} ns  ({:.2}x one read)", best_indep / best_read);
    let t = Instant::now();
    let mut hits = 0;
    for i in 0..steps {
        if m.get(In::Int(!(keys[i % n]))).unwrap().is_some() {
            hits += 1;
        }
    }
    println!("II miss: {:.1} ns ({hits} false hits)", t.elapsed().as_nanos() as f64 / steps as f64);
    drop(m);
    small_maps();
}

/// Lookups on maps that fit in the caches: the engine's own cost per call.
fn small_maps() {
    let n = 1000usize;
    let reps = 20_000_000usize;
    let mut ii = Map::open(&Options::new(Variant::II, n as u64)).unwrap();
    let mut ss = Map::open(&Options::new(Variant::SS, n as u64)).unwrap();
    let skeys: Vec<Vec<u8>> = (0..n).map(|i| format!("k{i}").into_bytes()).collect();
    let lkeys: Vec<Vec<u8>> = (0..n).map(|i| format!("a longer key of some {i} bytes").into_bytes()).collect();
    for i in 0..n {
        ii.put(In::Int(i as i64), In::Int(i as i64)).unwrap();
        ss.put(In::Str(&skeys[i], false), In::Str(b"value", false)).unwrap();
        ss.put(In::Str(&lkeys[i], false), In::Str(b"a longer value of 30 bytes....", false)).unwrap();
    }
    let t = Instant::now();
    let mut sum = 0i64;
    for r in 0..reps {
        if let Some(Out::Int(v)) = ii.get(In::Int((r % n) as i64)).unwrap() {
            sum = sum.wrapping_add(v);
        }
    }
    std::hint::black_box(sum);
    println!("II get, 1000 entries (in cache): {:.1} ns", t.elapsed().as_nanos() as f64 / reps as f64);
    let t = Instant::now();
    let mut len = 0usize;
    for r in 0..reps {
        if let Some(Out::Str(b, _)) = ss.get(In::Str(&skeys[r % n], false)).unwrap() {
            len += b.len();
        }
    }
    std::hint::black_box(len);
    println!("SS get, short strings: {:.1} ns", t.elapsed().as_nanos() as f64 / reps as f64);
    let t = Instant::now();
    for r in 0..reps {
        if let Some(Out::Str(b, _)) = ss.get(In::Str(&lkeys[r % n], false)).unwrap() {
            len += b.len();
        }
    }
    std::hint::black_box(len);
    println!("SS get, ~25-byte keys / 30-byte values: {:.1} ns", t.elapsed().as_nanos() as f64 / reps as f64);
    // The same lookups through the C ABI (what the XS glue calls).
    {
        use hashmap_shared::ffi::*;
        let o = HmOpen {
            variant: 3,
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
            println!("hm_get (C ABI), II, 1000 entries: {:.1} ns", t.elapsed().as_nanos() as f64 / reps as f64);
            hm_close(h);
        }
    }
    let t = Instant::now();
    for r in 0..reps {
        ii.incr_by(In::Int((r % n) as i64), 1).unwrap();
    }
    println!("II incr (read lock + fetch_add): {:.1} ns", t.elapsed().as_nanos() as f64 / reps as f64);
    let t = Instant::now();
    for r in 0..reps {
        ii.put(In::Int((r % n) as i64), In::Int(r as i64)).unwrap();
    }
    println!("II put (overwrite, write lock): {:.1} ns", t.elapsed().as_nanos() as f64 / reps as f64);
}
