//! A set of "seen" ids spread over eight shard files, filled by several threads at
//! once: which of them saw an id first is decided by the map.
//!
//!     cargo run --release --example sharded_set [PREFIX]
//!
//! A shard set is eight independent maps (files PREFIX.0 .. PREFIX.7) behind one
//! handle; a key always lives in the same shard, so writers of different shards do not
//! wait for each other. `add` inserts only absent keys and says whether it did: across
//! all threads (or processes) exactly one `add` of each id returns true.

use hashmap_shared::{Bytes, Map, Options};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let prefix = std::env::args()
        .nth(1)
        .unwrap_or_else(|| std::env::temp_dir().join(format!("seen-{}", std::process::id())).display().to_string());
    // A set is a map whose values do not matter: the smallest value type will do.
    let opts = Options::new(50_000).sharded(&prefix, 8);
    let mut seen: Map<Bytes, i16> = Map::open(&opts)?;

    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let opts = opts.clone();
            std::thread::spawn(move || -> hashmap_shared::Result<u64> {
                let mut seen: Map<Bytes, i16> = Map::open(&opts)?;
                let mut first = 0;
                // Every thread sees ids 0..100_000 in its own order; each id 4 times.
                for i in 0..100_000u64 {
                    let id = (i * 7919 + t * 25_000) % 100_000;
                    if seen.add(format!("user-{id}"), 1)? {
                        first += 1;
                    }
                }
                Ok(first)
            })
        })
        .collect();
    let firsts: Vec<u64> = threads.into_iter().map(|t| t.join().expect("a thread panicked")).collect::<Result<_, _>>()?;

    println!("first sightings per thread: {firsts:?}");
    println!("distinct ids: {} in {} shards ({}.0 ..)", seen.len(), 8, prefix);
    assert_eq!(firsts.iter().sum::<u64>(), 100_000, "every id was first seen exactly once");
    assert_eq!(seen.len(), 100_000);
    assert!(seen.contains_key("user-4242")?);
    assert!(seen.unlink());
    Ok(())
}
