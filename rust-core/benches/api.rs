//! The typed Rust API against in-process peers and against Perl on the same map.
//!
//! `cargo bench -p hashmap-shared --bench api`
//!
//! Single-thread figures are CPU time per operation (the thread's own clock: the time
//! it waited for a CPU on a busy machine is left out); the two-thread figure is
//! wall-clock time. Peers, in one process and one run (so the ratios are comparable): the typed
//! [`Map`], `std::collections::HashMap` behind a `std::sync::Mutex` (what a program
//! shares between threads with the standard library alone) and `dashmap::DashMap` (the
//! usual concurrent map crate: sharded `RwLock`s). They are in-process maps: the
//! comparison shows what sharing between processes costs over sharing between
//! threads. HM_BENCH_N keys (default 100_000; integer keys 0..N, looked up in a random
//! order), best of HM_BENCH_ROUNDS (default 5) passes of N operations each:
//!
//! - II insert into an empty map sized for N (`put` / `insert`);
//! - II get, every key present;
//! - II incr of existing keys (`incr` / `*get_mut() += 1`);
//! - SS get of 12-byte keys with 20-byte values, lent without a copy (`get_ref` /
//!   `get().len()`), and `Map::get` copying into an owned `Bytes`;
//! - two threads incrementing the same N keys at once (each thread its own `Map` handle
//!   on one memfd map; the peers shared through an `Arc`); ns per increment of
//!   wall-clock time (throughput, not latency).
//!
//! Then Perl on the same map file (when the Perl module is built: `perl Makefile.PL &&
//! make` at the top of the distribution, whose `blib` this finds; HM_BENCH_PERL=0
//! skips it): the keyword API (`shm_ii_get` / `shm_ii_incr` / `shm_ii_put`, a Perl loop
//! around each) and Rust's get / incr / put on the same file, same keys, same order
//! kind.

use dashmap::DashMap;
use hashmap_shared::{Bytes, Map, Options};
use std::collections::HashMap;
use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// 0..n in a random order.
fn shuffled(n: usize, seed: u64) -> Vec<i64> {
    let mut v: Vec<i64> = (0..n as i64).collect();
    let mut s = seed;
    for i in (1..n).rev() {
        s = splitmix(s);
        v.swap(i, (s % (i as u64 + 1)) as usize);
    }
    v
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|s| s.replace('_', "").parse().ok()).unwrap_or(default)
}

/// This thread's CPU time in ns: on a shared machine it leaves out the time the
/// thread waited for a CPU, which wall-clock time would count.
fn cpu_ns() -> u128 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec we pass, a valid out pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128
}

/// Best (lowest) CPU ns per op of `rounds` runs of `f`, which does `ops` operations
/// on this thread.
fn best(rounds: usize, ops: usize, mut f: impl FnMut()) -> f64 {
    let mut b = f64::MAX;
    for _ in 0..rounds {
        let t = cpu_ns();
        f();
        b = b.min((cpu_ns() - t) as f64 / ops as f64);
    }
    b
}

/// Best (lowest) wall-clock ns per op of `rounds` runs of `f`, which does `ops`
/// operations (on several threads: their throughput).
fn best_wall(rounds: usize, ops: usize, mut f: impl FnMut()) -> f64 {
    let mut b = f64::MAX;
    for _ in 0..rounds {
        let t = Instant::now();
        f();
        b = b.min(t.elapsed().as_nanos() as f64 / ops as f64);
    }
    b
}

/// One row: our time and the peers', with the ratios (peer / ours: above 1, we are
/// faster).
fn row(what: &str, ours: f64, mutex: f64, dash: f64) {
    println!(
        "  {what:<34} {ours:7.1} ns   Mutex<HashMap> {mutex:7.1} ns ({:5.2}x)   DashMap {dash:7.1} ns ({:5.2}x)",
        mutex / ours,
        dash / ours
    );
}

fn ss_key(i: i64) -> String {
    format!("key-{i:08}")
}

fn ss_val(i: i64) -> String {
    format!("value-{i:014}")
}

/// Two threads each running `f(thread)` at once; ns per op of wall-clock time for
/// `2 * ops` operations, best of `rounds`.
fn two_threads(rounds: usize, ops: usize, f: impl Fn(usize) + Sync) -> f64 {
    best_wall(rounds, 2 * ops, || {
        std::thread::scope(|s| {
            for t in 0..2 {
                let f = &f;
                s.spawn(move || f(t));
            }
        })
    })
}

fn main() {
    let n = env_usize("HM_BENCH_N", 100_000);
    let rounds = env_usize("HM_BENCH_ROUNDS", 5);
    let order = shuffled(n, 1);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("typed API vs in-process peers: N = {n}, best of {rounds}; load average {}", load.trim());

    // -- integer keys ------------------------------------------------------------------
    let opts = Options::new(n as u64);
    let ins_ours = best(rounds, n, || {
        let mut m: Map<i64, i64> = Map::open(&opts).unwrap();
        for &k in &order {
            m.put(k, k).unwrap();
        }
    });
    let ins_mutex = best(rounds, n, || {
        let m = Mutex::new(HashMap::with_capacity(n));
        for &k in &order {
            m.lock().unwrap().insert(k, k);
        }
        black_box(&m);
    });
    let ins_dash = best(rounds, n, || {
        let m = DashMap::with_capacity(n);
        for &k in &order {
            m.insert(k, k);
        }
        black_box(&m);
    });
    row("II insert (sized for N)", ins_ours, ins_mutex, ins_dash);

    let mut ours: Map<i64, i64> = Map::open(&Options::new(n as u64).memfd("bench-ii")).unwrap();
    let mutex = Mutex::new(HashMap::with_capacity(n));
    let dash = DashMap::with_capacity(n);
    for k in 0..n as i64 {
        ours.put(k, k).unwrap();
        mutex.lock().unwrap().insert(k, k);
        dash.insert(k, k);
    }
    let get_ours = best(rounds, n, || {
        let mut s = 0;
        for &k in &order {
            s += ours.get(k).unwrap().unwrap();
        }
        black_box(s);
    });
    let get_mutex = best(rounds, n, || {
        let mut s = 0;
        for &k in &order {
            s += *mutex.lock().unwrap().get(&k).unwrap();
        }
        black_box(s);
    });
    let get_dash = best(rounds, n, || {
        let mut s = 0;
        for &k in &order {
            s += *dash.get(&k).unwrap();
        }
        black_box(s);
    });
    row("II get (hit)", get_ours, get_mutex, get_dash);

    let incr_ours = best(rounds, n, || {
        for &k in &order {
            ours.incr(k, 1).unwrap();
        }
    });
    let incr_mutex = best(rounds, n, || {
        for &k in &order {
            *mutex.lock().unwrap().get_mut(&k).unwrap() += 1;
        }
    });
    let incr_dash = best(rounds, n, || {
        for &k in &order {
            *dash.get_mut(&k).unwrap() += 1;
        }
    });
    row("II incr (existing key)", incr_ours, incr_mutex, incr_dash);

    // Two threads, each with its own handle on the same memfd map.
    let fd = ours.memfd().unwrap().try_clone_to_owned().unwrap();
    let orders = [shuffled(n, 2), shuffled(n, 3)];
    let par_ours = two_threads(rounds, n, |t| {
        let mut m: Map<i64, i64> = Map::from_fd(std::os::fd::AsFd::as_fd(&fd)).unwrap();
        for &k in &orders[t] {
            m.incr(k, 1).unwrap();
        }
    });
    let par_mutex = two_threads(rounds, n, |t| {
        for &k in &orders[t] {
            *mutex.lock().unwrap().get_mut(&k).unwrap() += 1;
        }
    });
    let par_dash = two_threads(rounds, n, |t| {
        for &k in &orders[t] {
            *dash.get_mut(&k).unwrap() += 1;
        }
    });
    row("II incr, 2 threads (throughput)", par_ours, par_mutex, par_dash);
    // Every increment counted: key 0 started at 0 and got rounds * (1 + 2) increments.
    let want = rounds as i64 * 3;
    assert_eq!(ours.get(0).unwrap(), Some(want));
    assert_eq!(*mutex.lock().unwrap().get(&0).unwrap(), want);
    drop((mutex, dash));

    // -- string keys ---------------------------------------------------------------------
    // The keys in lookup order, allocated in that order: reading them is sequential,
    // so the cache misses measured are the maps' own.
    let lookups: Vec<String> = order.iter().map(|&i| ss_key(i)).collect();
    let mut ss: Map<Bytes, Bytes> = Map::open(&Options::new(n as u64)).unwrap();
    let smutex: Mutex<HashMap<Vec<u8>, Vec<u8>>> = Mutex::new(HashMap::with_capacity(n));
    let sdash: DashMap<Vec<u8>, Vec<u8>> = DashMap::with_capacity(n);
    for i in 0..n as i64 {
        let (k, v) = (ss_key(i), ss_val(i));
        ss.put(k.as_bytes(), v.as_bytes()).unwrap();
        smutex.lock().unwrap().insert(k.clone().into_bytes(), v.clone().into_bytes());
        sdash.insert(k.into_bytes(), v.into_bytes());
    }
    let sget_ours = best(rounds, n, || {
        let mut s = 0;
        for k in &lookups {
            s += ss.get_ref(k.as_bytes()).unwrap().unwrap().len();
        }
        black_box(s);
    });
    let sget_owned = best(rounds, n, || {
        let mut s = 0;
        for k in &lookups {
            s += ss.get(k.as_bytes()).unwrap().unwrap().len();
        }
        black_box(s);
    });
    let sget_mutex = best(rounds, n, || {
        let mut s = 0;
        for k in &lookups {
            s += smutex.lock().unwrap().get(k.as_bytes()).unwrap().len();
        }
        black_box(s);
    });
    let sget_dash = best(rounds, n, || {
        let mut s = 0;
        for k in &lookups {
            s += sdash.get(k.as_bytes()).unwrap().len();
        }
        black_box(s);
    });
    row("SS get (hit, lent: get_ref)", sget_ours, sget_mutex, sget_dash);
    row("SS get (hit, owned copy: get)", sget_owned, sget_mutex, sget_dash);

    perl_side(n, rounds, &order);
}

/// Perl's keyword API and Rust's typed API on one map file, in this run.
fn perl_side(n: usize, rounds: usize, order: &[i64]) {
    let top = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let blib = top.join("blib");
    if std::env::var("HM_BENCH_PERL").as_deref() == Ok("0") {
        return;
    }
    if !blib.join("arch").is_dir() {
        println!("Perl on the same map: skipped ({} not built: perl Makefile.PL && make)", blib.display());
        return;
    }
    let path = std::env::temp_dir().join(format!("hm-api-bench-{}.shm", std::process::id()));
    let mut m: Map<i64, i64> = Map::open(&Options::new(n as u64).file(&path)).unwrap();
    for k in 0..n as i64 {
        m.put(k, k).unwrap();
    }
    let rust_get = best(rounds, n, || {
        let mut s = 0;
        for &k in order {
            s += m.get(k).unwrap().unwrap();
        }
        black_box(s);
    });
    let rust_incr = best(rounds, n, || {
        for &k in order {
            m.incr(k, 1).unwrap();
        }
    });
    let rust_put = best(rounds, n, || {
        for &k in order {
            m.put(k, k).unwrap();
        }
    });
    // The same three loops in Perl, best of the same number of rounds, on the file
    // Rust filled (keys in a random order of Perl's own).
    let script = r#"
        use strict; use warnings;
        use Time::HiRes qw(clock_gettime CLOCK_PROCESS_CPUTIME_ID);
        sub cpu { clock_gettime(CLOCK_PROCESS_CPUTIME_ID) }
        use List::Util qw(shuffle min);
        use Data::HashMap::Shared::II;
        my ($path, $n, $rounds) = @ARGV;
        my $m = Data::HashMap::Shared::II->new($path, $n);
        my @order = shuffle(0 .. $n - 1);
        sub best { my ($f) = @_; min(map { my $t = cpu(); $f->(); (cpu() - $t) * 1e9 / $n } 1 .. $rounds) }
        my $s = 0;
        printf "%.1f %.1f %.1f\n",
            best(sub { $s += shm_ii_get $m, $_ for @order }),
            best(sub { shm_ii_incr $m, $_ for @order }),
            best(sub { shm_ii_put $m, $_, $_ for @order });
    "#;
    let out = Command::new("perl")
        .arg(format!("-I{}", blib.join("lib").display()))
        .arg(format!("-I{}", blib.join("arch").display()))
        .args(["-e", script, &path.display().to_string(), &n.to_string(), &rounds.to_string()])
        .output();
    m.unlink();
    let out = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        Ok(o) => return println!("Perl on the same map: failed: {}", String::from_utf8_lossy(&o.stderr).trim()),
        Err(e) => return println!("Perl on the same map: cannot run perl: {e}"),
    };
    let p: Vec<f64> = out.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    if p.len() != 3 {
        return println!("Perl on the same map: unexpected output {out:?}");
    }
    println!("Perl keyword API vs typed Rust API, one II map file, N = {n}:");
    for (what, perl, rust) in [("get (hit)", p[0], rust_get), ("incr", p[1], rust_incr), ("put (overwrite)", p[2], rust_put)] {
        println!("  {what:<34} Perl {perl:7.1} ns   Rust {rust:7.1} ns   ({:5.2}x)", perl / rust);
    }
}
