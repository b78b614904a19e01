//! Engine-level cost of LRU and TTL (no Perl): get / put (overwrite) / incr hits on a
//! plain II map next to an LRU, a TTL and an LRU+TTL map of the same size, measured in
//! the same run, rounds interleaved so that machine noise hits every kind alike.
//!
//! `cargo bench -p hashmap-shared --bench lru_ttl` (HM_BENCH_N = entries, default 100k;
//! HM_BENCH_ROUNDS = rounds, default 7; the best round is reported; HM_BENCH_KINDS =
//! a comma-separated subset of plain,lru,ttl,lru+ttl).

use hashmap_shared::{raw::{In, Map, Variant}, Options};
use std::time::Instant;

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn main() {
    let n: usize = std::env::var("HM_BENCH_N").ok().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let rounds: usize = std::env::var("HM_BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(7);
    let keys: Vec<i64> = (0..n as u64).map(|i| splitmix(i) as i64).collect();
    // The same keys in a shuffled order for the timed passes.
    let mut order = keys.clone();
    let mut s = 7u64;
    for i in (1..n).rev() {
        s = splitmix(s);
        order.swap(i, (s % (i as u64 + 1)) as usize);
    }
    let kinds: Vec<(&str, Options)> = vec![
        ("plain", Options::of(Variant::II, n as u64)),
        ("lru", Options::of(Variant::II, n as u64).lru(n as u64, 0)),
        ("ttl", Options::of(Variant::II, n as u64).ttl(3600)),
        ("lru+ttl", Options::of(Variant::II, n as u64).lru(n as u64, 0).ttl(3600)),
    ];
    let only = std::env::var("HM_BENCH_KINDS").ok();
    let mut maps: Vec<(&str, Map)> = kinds
        .into_iter()
        .filter(|(name, _)| only.as_deref().map_or(true, |o| o.split(',').any(|x| x == *name)))
        .map(|(name, o)| {
            let mut m = Map::open(&o).unwrap();
            for &k in &keys {
                assert!(m.put(In::Int(k), In::Int(1)).unwrap());
            }
            (name, m)
        })
        .collect();
    let ops = ["get", "put", "incr"];
    let mut best = vec![[f64::MAX; 3]; maps.len()];
    for _ in 0..rounds {
        for (mi, (_, m)) in maps.iter_mut().enumerate() {
            for (oi, op) in ops.iter().enumerate() {
                let t = Instant::now();
                let mut acc = 0i64;
                match *op {
                    "get" => {
                        for &k in &order {
                            if let Some(hashmap_shared::raw::Out::Int(v)) = m.get(In::Int(k)).unwrap() {
                                acc += v;
                            }
                        }
                        assert!(acc >= n as i64);
                    }
                    "put" => {
                        for &k in &order {
                            m.put(In::Int(k), In::Int(2)).unwrap();
                        }
                    }
                    _ => {
                        for &k in &order {
                            acc ^= m.incr_by(In::Int(k), 1).unwrap();
                        }
                    }
                }
                std::hint::black_box(acc);
                let ns = t.elapsed().as_nanos() as f64 / n as f64;
                best[mi][oi] = best[mi][oi].min(ns);
            }
        }
    }
    println!("{:<9} {:>8} {:>8} {:>8}   (ns/op, II, {n} entries, best of {rounds} rounds)", "map", "get", "put", "incr");
    for (mi, (name, m)) in maps.iter().enumerate() {
        assert_eq!(m.len(), n as u64);
        println!("{:<9} {:>8.1} {:>8.1} {:>8.1}", name, best[mi][0], best[mi][1], best[mi][2]);
    }
}
