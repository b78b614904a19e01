//! Engine-level benchmark (no Perl), plain harness.
//!
//! `cargo bench -p hashmap-shared --bench engine`
//!
//! For each size (HM_BENCH_SIZES, default "25000,1000000,10000000" entries; the older
//! HM_BENCH_N=<one size> still works) it builds an II map (anonymous shared mapping,
//! the same memory the Perl module uses) and a `std::collections::HashMap<i64, i64>`
//! (default SipHash hasher) with the same keys, and measures, best of HM_BENCH_ROUNDS
//! (default 5) timings of HM_BENCH_STEPS (default 2,000,000) operations each (the
//! lookups are interleaved: each round runs every lookup measurement once, so that a
//! burst of load from other processes hits them alike):
//!
//! * one dependent random read: a pointer chase through a random cyclic permutation
//!   over a MAP_SHARED memfd mapping as large as the II table (control bytes + slots at
//!   its current capacity). Every read depends on the one before, so this is the
//!   latency of one memory access at that working-set size: the physical limit of a
//!   hash lookup (one cache miss);
//! * two parallel reads per step: per step one read in a region of 1 byte per slot and
//!   one in a region of 16 bytes per slot at addresses from the same index (the next
//!   index depends on both): the access pattern of a lookup in a table whose control
//!   bytes and slots are separate regions, i.e. the floor of this layout; and the
//!   same two reads issued as the engine issues them (prefetch of the group's slot
//!   lines, load of the group's control word, then the slot load that depends on it);
//! * II get hit, dependent chain: each key is the value found by the previous get (the
//!   map holds a random cycle), so lookups cannot overlap: the figure to set next to
//!   one dependent read (decisions.md target: at most 1.3x at 10M entries; judged on
//!   the median over the rounds of the ratio within one round, since the best-of
//!   figures of the two may come from rounds under different loads);
//! * II get hit / miss on independent random keys (what a loop of gets costs: the CPU
//!   overlaps several lookups);
//! * II put overwriting existing keys (write lock + seqlock), II insert into an empty
//!   map (table growth included) and into a map reserved for the size;
//! * the same gets and inserts on std's HashMap.
//!
//! Then, on small maps that fit in the caches: the engine's own cost per call (II, SS
//! short and long strings, through the C ABI the XS glue calls, incr, put).

use hashmap_shared::{raw::{In, Map, Out, Variant}, Options};
use std::collections::HashMap;
use std::time::Instant;

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A random cyclic permutation of 0..n (Sattolo): next[i] is the successor of i.
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

/// A MAP_SHARED memfd mapping of `bytes` (the kind of memory the map lives in),
/// unmapped on drop.
struct SharedBuf {
    p: *mut u64,
    words: usize,
}

impl SharedBuf {
    fn new(bytes: usize) -> SharedBuf {
        let bytes = bytes.max(4096).next_multiple_of(4096);
        // SAFETY: memfd_create with a NUL-terminated name.
        let fd = unsafe { libc::memfd_create(c"bench".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0);
        // SAFETY: sizing and mapping our own memfd; the mapping lives until drop.
        unsafe {
            assert_eq!(libc::ftruncate(fd, bytes as libc::off_t), 0);
            let p = libc::mmap(std::ptr::null_mut(), bytes, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0);
            assert_ne!(p, libc::MAP_FAILED);
            libc::close(fd);
            SharedBuf { p: p.cast(), words: bytes / 8 }
        }
    }
    fn slice(&mut self) -> &mut [u64] {
        // SAFETY: p points to `words` u64 of our mapping, borrowed mutably through self.
        unsafe { std::slice::from_raw_parts_mut(self.p, self.words) }
    }
}

impl Drop for SharedBuf {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping created in new.
        unsafe { libc::munmap(self.p.cast(), self.words * 8) };
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|s| s.replace('_', "").parse().ok()).unwrap_or(default)
}

/// Best (lowest) ns per op of `rounds` runs of `f`, which does `ops` operations.
fn best(rounds: usize, ops: usize, mut f: impl FnMut()) -> f64 {
    let mut b = f64::MAX;
    for _ in 0..rounds {
        let t = Instant::now();
        f();
        b = b.min(t.elapsed().as_nanos() as f64 / ops as f64);
    }
    b
}

fn line(what: &str, ns: f64, read: f64, extra: &str) {
    println!("  {what:<60} {ns:8.1} ns  {:6.2}x one read{extra}", ns / read);
}

fn main() {
    let sizes: Vec<usize> = match std::env::var("HM_BENCH_SIZES") {
        Ok(s) => s.split(',').filter_map(|x| x.trim().replace('_', "").parse().ok()).collect(),
        Err(_) => match std::env::var("HM_BENCH_N") {
            Ok(n) => vec![n.parse().expect("HM_BENCH_N")],
            Err(_) => vec![25_000, 1_000_000, 10_000_000],
        },
    };
    let steps = env_usize("HM_BENCH_STEPS", 2_000_000);
    let rounds = env_usize("HM_BENCH_ROUNDS", 5);
    println!("engine benchmark: best of {rounds} x {steps} operations; ns per operation");
    let mut summary = Vec::new();
    for &n in &sizes {
        summary.push(at_size(n, steps, rounds));
    }
    println!();
    println!("summary (ratios of this run)");
    println!(
        "  {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>12} {:>12} {:>14}",
        "entries", "table MiB", "1 read", "2 reads", "II dep.", "II/read", "II/2 reads", "std dep.", "II/std dep.", "II/read median"
    );
    for s in &summary {
        println!(
            "  {:>10} {:>10.1} {:>8.1}ns {:>8.1}ns {:>8.1}ns {:>9.2}x {:>9.2}x {:>10.1}ns {:>11.2}x {:>13.2}x",
            s.n,
            s.mib,
            s.read,
            s.read2,
            s.chain,
            s.chain / s.read,
            s.chain / s.read2,
            s.std_chain,
            s.chain / s.std_chain,
            s.median
        );
    }
    if let Some(s) = summary.iter().find(|s| s.n >= 10_000_000) {
        // The median of the per-round ratios: best-of figures of the two measurements
        // may come from different rounds, i.e. from different loads of the machine.
        let r = s.median;
        println!(
            "target (decisions.md): II hit on a {}-entry map at most 1.3x one dependent read: {r:.2}x \
             (median of per-round ratios; best-of ratio {:.2}x), {}",
            s.n,
            s.chain / s.read,
            if r <= 1.3 { "met" } else { "NOT MET" }
        );
    }
    println!();
    small_maps();
}

struct Summary {
    n: usize,
    mib: f64,
    read: f64,
    read2: f64,
    chain: f64,
    std_chain: f64,
    /// Median over the rounds of (chain / read) of the same round.
    median: f64,
}

fn at_size(n: usize, steps: usize, rounds: usize) -> Summary {
    let keys: Vec<i64> = (0..n as u64).map(|i| splitmix(i ^ 0x5555) as i64).collect();
    let next = cycle(n, 42);
    let mut s = 99u64;
    let probe: Vec<u32> = (0..steps)
        .map(|_| {
            s = splitmix(s);
            (s % n as u64) as u32
        })
        .collect();
    // Inserts are slow to repeat at 10M: fewer rounds there.
    let ins_rounds = if n >= 5_000_000 { 1 } else { rounds };

    // -- II inserts: empty map (growth), reserved map ---------------------------------
    let mut m = None;
    let ins = best(ins_rounds, n, || {
        let mut x = Map::open(&Options::of(Variant::II, n as u64)).unwrap();
        for i in 0..n {
            assert!(x.put(In::Int(keys[i]), In::Int(keys[next[i] as usize])).unwrap());
        }
        m = Some(x);
    });
    let ins_res = best(ins_rounds, n, || {
        let mut x = Map::open(&Options::of(Variant::II, n as u64)).unwrap();
        assert!(x.reserve(n as u64).unwrap());
        for i in 0..n {
            assert!(x.put(In::Int(keys[i]), In::Int(keys[next[i] as usize])).unwrap());
        }
    });
    let mut m = m.unwrap();
    let st = m.stats();
    assert_eq!(st.size, n as u64);
    let table = st.capacity as usize * 17; // one ctrl byte + a 16-byte slot per slot
    println!();
    println!(
        "== {n} entries: II capacity {}, table (ctrl + slots) {:.1} MiB, mmap_size {:.1} MiB",
        st.capacity,
        table as f64 / 1048576.0,
        st.mmap_size as f64 / 1048576.0
    );

    // -- std HashMap ----------------------------------------------------------------
    let mut hm = None;
    let std_ins = best(ins_rounds, n, || {
        let mut h: HashMap<i64, i64> = HashMap::new();
        for i in 0..n {
            h.insert(keys[i], keys[next[i] as usize]);
        }
        hm = Some(h);
    });
    let hm = hm.unwrap();

    // -- baseline: dependent random reads over a shared mapping of the table's size --
    let mut buf = SharedBuf::new(table);
    {
        let b = buf.slice();
        let bnext = cycle(b.len(), 7);
        for (i, w) in b.iter_mut().enumerate() {
            *w = bnext[i] as u64;
        }
    }
    let b = buf.slice();

    // -- second baseline: the access pattern of a lookup in this layout. Per step two
    // independent reads at addresses given by the same index, one in a region of one
    // byte per slot (like the control bytes) and one in a region of 16 bytes per slot
    // (like the slots); the next index depends on both. The floor for a table whose
    // control bytes and slots live in separate regions (two cache lines, two pages).
    let cap = st.capacity as usize;
    let mut slots2 = SharedBuf::new(cap * 16);
    let ctrl2 = SharedBuf::new(cap);
    {
        let sl = slots2.slice();
        let c2 = cycle(cap, 11);
        for i in 0..cap {
            sl[2 * i] = c2[i] as u64;
        }
    }
    let sl = slots2.slice();
    // SAFETY: the ctrl2 mapping holds at least cap bytes and lives until the end of this fn.
    let cb = unsafe { std::slice::from_raw_parts(ctrl2.p as *const u8, cap) };
    let zero = std::hint::black_box(0usize);

    // -- the lookups, interleaved: every round runs each measurement once and each
    // keeps its best, so a burst of load from other processes hits them alike ---------
    let ns = |t: Instant| t.elapsed().as_nanos() as f64 / steps as f64;
    let mut readp = f64::MAX;
    let (mut read, mut read2, mut chain, mut indep, mut miss, mut put, mut std_chain, mut std_indep) =
        (f64::MAX, f64::MAX, f64::MAX, f64::MAX, f64::MAX, f64::MAX, f64::MAX, f64::MAX);
    let mut false_hits = 0;
    let mut round_ratio = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        // one dependent random read per step
        let t = Instant::now();
        let mut p = 0usize;
        for _ in 0..steps {
            // SAFETY: every word holds an index < len.
            p = unsafe { *b.get_unchecked(p) } as usize;
        }
        std::hint::black_box(p);
        let read_now = ns(t);
        read = read.min(read_now);

        // two parallel reads per step (ctrl-like + slot-like regions)
        let t = Instant::now();
        let mut p = 0usize;
        for _ in 0..steps {
            // SAFETY: p < cap always (slot words hold indices < cap; zero is 0).
            p = unsafe { *sl.get_unchecked(2 * p) as usize + (*cb.get_unchecked(p) as usize & zero) };
        }
        std::hint::black_box(p);
        read2 = read2.min(ns(t));

        // the same two reads issued the way the engine issues them: prefetch the slot
        // lines of the index's group of 8, load the group's 8 control bytes, then load
        // the slot (its address depends on the control word, as after an h2 match)
        let t = Instant::now();
        let mut p = 0usize;
        for _ in 0..steps {
            // SAFETY: p < cap; group starts are within both regions; prefetch never faults.
            unsafe {
                let g = p & !7;
                #[cfg(target_arch = "x86_64")]
                {
                    use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                    let start = sl.as_ptr().add(2 * g) as *const i8;
                    _mm_prefetch::<_MM_HINT_T0>(start);
                    _mm_prefetch::<_MM_HINT_T0>(start.add(64));
                }
                let w = std::ptr::read_volatile(cb.as_ptr().add(g) as *const u64);
                p = *sl.get_unchecked(2 * (p + (w as usize & zero))) as usize;
            }
        }
        std::hint::black_box(p);
        readp = readp.min(ns(t));

        // II get, dependent chain: the next key is the value found
        let t = Instant::now();
        let mut k = keys[0];
        for _ in 0..steps {
            k = match m.get(In::Int(k)).unwrap() {
                Some(Out::Int(v)) => v,
                _ => panic!("miss"),
            };
        }
        std::hint::black_box(k);
        let chain_now = ns(t);
        chain = chain.min(chain_now);
        // The ratio of this round: the read and the chain ran back to back, so a burst
        // of load from other processes (this machine is shared) hits both alike.
        round_ratio.push(chain_now / read_now);

        // std HashMap get, dependent chain
        let t = Instant::now();
        let mut k = keys[0];
        for _ in 0..steps {
            k = hm[&k];
        }
        std::hint::black_box(k);
        std_chain = std_chain.min(ns(t));

        // II get, independent random keys
        let t = Instant::now();
        let mut sum = 0i64;
        for &i in &probe {
            if let Some(Out::Int(v)) = m.get(In::Int(keys[i as usize])).unwrap() {
                sum = sum.wrapping_add(v);
            }
        }
        std::hint::black_box(sum);
        indep = indep.min(ns(t));

        // std HashMap get, independent random keys
        let t = Instant::now();
        let mut sum = 0i64;
        for &i in &probe {
            if let Some(v) = hm.get(&keys[i as usize]) {
                sum = sum.wrapping_add(*v);
            }
        }
        std::hint::black_box(sum);
        std_indep = std_indep.min(ns(t));

        // II get miss
        let t = Instant::now();
        for &i in &probe {
            if m.get(In::Int(!keys[i as usize])).unwrap().is_some() {
                false_hits += 1;
            }
        }
        miss = miss.min(ns(t));

        // II put overwriting existing keys (same values: the chain stays intact)
        let t = Instant::now();
        for &i in &probe {
            m.put(In::Int(keys[i as usize]), In::Int(keys[next[i as usize] as usize])).unwrap();
        }
        put = put.min(ns(t));
    }

    let pct = |a: f64, b: f64| format!("  ({:.2}x std)", a / b);
    line(&format!("one dependent random read ({:.1} MiB shared mapping)", table as f64 / 1048576.0), read, read, "");
    line("two parallel reads per step (1 B/slot + 16 B/slot regions)", read2, read, "");
    line("same, as the engine issues them (prefetch slots, ctrl, slot)", readp, read, "");
    line("II get hit, dependent chain", chain, read, &pct(chain, std_chain));
    line("II get hit, independent random keys", indep, read, &pct(indep, std_indep));
    line("II get miss, independent random keys", miss, read, &format!("  ({false_hits} false hits)"));
    line("II put, overwrite, random keys", put, read, "");
    line("II insert into an empty map (growth included)", ins, read, &pct(ins, std_ins));
    line("II insert into a reserved map", ins_res, read, "");
    line("std HashMap get hit, dependent chain", std_chain, read, "");
    line("std HashMap get hit, independent random keys", std_indep, read, "");
    line("std HashMap insert (growth included)", std_ins, read, "");
    round_ratio.sort_by(f64::total_cmp);
    let median = round_ratio[round_ratio.len() / 2];
    println!(
        "  II get hit, dependent chain / one read, per round: {} (median {median:.2}x)",
        round_ratio.iter().map(|r| format!("{r:.2}x")).collect::<Vec<_>>().join(" ")
    );
    Summary { n, mib: table as f64 / 1048576.0, read, read2, chain, std_chain, median }
}

/// Lookups on maps that fit in the caches: the engine's own cost per call.
fn small_maps() {
    let n = 1000usize;
    let reps = 20_000_000usize;
    println!("small maps ({n} entries, in cache), {reps} calls each:");
    let mut ii = Map::open(&Options::of(Variant::II, n as u64)).unwrap();
    let mut ss = Map::open(&Options::of(Variant::SS, n as u64)).unwrap();
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
    println!("  II get: {:.1} ns", t.elapsed().as_nanos() as f64 / reps as f64);
    let t = Instant::now();
    let mut len = 0usize;
    for r in 0..reps {
        if let Some(Out::Str(b, _)) = ss.get(In::Str(&skeys[r % n], false)).unwrap() {
            len += b.len();
        }
    }
    std::hint::black_box(len);
    println!("  SS get, short strings (inline): {:.1} ns", t.elapsed().as_nanos() as f64 / reps as f64);
    let t = Instant::now();
    for r in 0..reps {
        if let Some(Out::Str(b, _)) = ss.get(In::Str(&lkeys[r % n], false)).unwrap() {
            len += b.len();
        }
    }
    std::hint::black_box(len);
    println!("  SS get, ~25-byte keys / 30-byte values: {:.1} ns", t.elapsed().as_nanos() as f64 / reps as f64);
    // The same lookups through the C ABI: rust-core/ffi/benches/abi.rs.
    let t = Instant::now();
    for r in 0..reps {
        ii.incr_by(In::Int((r % n) as i64), 1).unwrap();
    }
    println!("  II incr (read lock + fetch_add): {:.1} ns", t.elapsed().as_nanos() as f64 / reps as f64);
    let t = Instant::now();
    for r in 0..reps {
        ii.put(In::Int((r % n) as i64), In::Int(r as i64)).unwrap();
    }
    println!("  II put (overwrite, write lock): {:.1} ns", t.elapsed().as_nanos() as f64 / reps as f64);
    let mut h: HashMap<i64, i64> = (0..n as i64).map(|i| (i, i)).collect();
    let t = Instant::now();
    let mut sum = 0i64;
    for r in 0..reps {
        sum = sum.wrapping_add(h[&((r % n) as i64)]);
    }
    std::hint::black_box(sum);
    println!("  std HashMap get: {:.1} ns", t.elapsed().as_nanos() as f64 / reps as f64);
    let t = Instant::now();
    for r in 0..reps {
        h.insert((r % n) as i64, r as i64);
    }
    std::hint::black_box(&h);
    println!("  std HashMap insert (overwrite): {:.1} ns", t.elapsed().as_nanos() as f64 / reps as f64);
}
