//! Optimistic readers against a writer that keeps rewriting values, growing,
//! shrinking and compacting the table: a reader must never see a torn value, a value
//! that was never stored, or miss a key that is always present.

use hashmap_shared::{raw::{In, Map, Out, Variant}, Options};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The value stored for generation `g`: its length and every byte derive from `g`.
fn value(g: u64) -> Vec<u8> {
    let b = (g % 251) as u8;
    vec![b; (b as usize * 13) % 600]
}

fn consistent(v: &[u8]) -> bool {
    match v.first() {
        None => true, // generation with length 0
        Some(&b) => v.len() == (b as usize * 13) % 600 && v.iter().all(|&x| x == b),
    }
}

#[test]
fn readers_never_see_torn_values() {
    let mut w = Map::open(&Options::of(Variant::SS, 50_000).memfd("concurrent")).unwrap();
    let fd = w.memfd();
    let stable: Vec<Vec<u8>> = (0..64).map(|i| format!("stable key {i}").into_bytes()).collect();
    for (i, k) in stable.iter().enumerate() {
        assert!(w.put(In::Str(k, false), In::Str(&value(i as u64), false)).unwrap());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for r in 0..2 {
        let stop = stop.clone();
        let stable = stable.clone();
        let mut m = Map::open(&Options::of(Variant::SS, 0).from_fd(fd)).unwrap();
        readers.push(std::thread::spawn(move || {
            let mut n = 0u64;
            // Relaxed: a stop flag; nothing else is published through it.
            while !stop.load(Ordering::Relaxed) {
                for k in &stable {
                    match m.get(In::Str(k, false)).unwrap() {
                        Some(Out::Str(v, _)) => assert!(consistent(v), "torn value of len {}", v.len()),
                        other => panic!("reader {r}: stable key missing: {other:?}"),
                    }
                    n += 1;
                }
            }
            n
        }));
    }
    let t = Instant::now();
    let mut g = 64u64;
    while t.elapsed() < Duration::from_millis(1500) {
        // Rewrite stable values (arena blocks freed and reused under the readers).
        for k in &stable {
            g += 1;
            assert!(w.put(In::Str(k, false), In::Str(&value(g), false)).unwrap());
        }
        // Grow, then shrink: churn keys force resizes and compactions.
        for i in 0..3000u64 {
            w.put(In::Str(format!("churn {g} {i}").as_bytes(), false), In::Str(&value(i), false)).unwrap();
        }
        for i in 0..3000u64 {
            assert!(w.remove(In::Str(format!("churn {g} {i}").as_bytes(), false)).unwrap());
        }
    }
    // Relaxed: see the readers.
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        let n = r.join().unwrap();
        assert!(n > 1000, "reader made progress ({n})");
    }
    assert_eq!(w.len(), 64);
}

#[test]
fn counters_from_threads_are_exact() {
    let m = Map::open(&Options::of(Variant::I32, 1000).memfd("counters")).unwrap();
    let fd = m.memfd();
    let threads: Vec<_> = (0..3)
        .map(|t| {
            let mut h = Map::open(&Options::of(Variant::I32, 0).from_fd(fd)).unwrap();
            std::thread::spawn(move || {
                for i in 0..100_000 {
                    h.incr_by(In::Int(i % 10), 1).unwrap();
                    if i % 1000 == 0 {
                        // Inserts under the write lock while others count under the read lock.
                        h.put(In::Int(1000 + t * 1000 + i / 1000), In::Int(0)).unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut m = m;
    for k in 0..10 {
        assert_eq!(m.get(In::Int(k)).unwrap(), Some(Out::Int(30_000)));
    }
    assert_eq!(m.len(), 10 + 300);
}
