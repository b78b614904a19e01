//! An LRU cache with expiring entries, shared by worker threads through a memfd (the
//! same works across processes: pass the descriptor to a child, or use a file).
//!
//!     cargo run --release --example lru_cache
//!
//! Each worker renders "pages" through the cache: `get_or_insert_with` renders a page
//! only when it is not cached, with one lookup, and no other worker can insert the
//! same page in between. The cache holds at most 100 pages: the least recently used
//! ones are evicted, and every page expires 60 seconds after it was rendered.

use hashmap_shared::{Bytes, Map, Options};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};

static RENDERED: AtomicU64 = AtomicU64::new(0);

fn render(page: u64) -> Bytes {
    RENDERED.fetch_add(1, Ordering::Relaxed);
    Bytes::from(format!("<html><body>page {page}, rendered once</body></html>"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut cache: Map<i64, Bytes> = Map::open(&Options::new(1000).memfd("page-cache").lru(100, 0).ttl(60))?;
    // Workers attach through the descriptor (a duplicate of it: the cache keeps its own).
    let fd = cache.memfd().expect("a memfd map has a descriptor").try_clone_to_owned()?;

    let workers: Vec<_> = (0..4u64)
        .map(|w| {
            let fd = fd.try_clone().expect("dup");
            std::thread::spawn(move || -> hashmap_shared::Result<usize> {
                let mut cache: Map<i64, Bytes> = Map::from_fd(fd.as_fd())?;
                let mut bytes = 0;
                // Mostly popular pages (0..50), sometimes one of 1000 others.
                let mut x = w.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                for _ in 0..20_000 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let page = if x % 10 < 8 { x % 50 } else { 50 + x % 1000 };
                    bytes += cache.get_or_insert_with(page as i64, || render(page))?.len();
                }
                Ok(bytes)
            })
        })
        .collect();
    let mut served = 0;
    for w in workers {
        served += w.join().expect("a worker panicked")?;
    }

    let st = cache.stats();
    println!("served 80000 requests ({served} bytes), rendered {} pages", RENDERED.load(Ordering::Relaxed));
    println!("cache: {} pages (bound {}), {} evictions", st.size, st.max_size, st.evictions);
    assert!(st.size <= 100);
    // A popular page stays cached: it is used far more often than it could be evicted.
    assert_eq!(cache.ttl_remaining(1)?.map(|s| s > 0), Some(true));
    Ok(())
}
