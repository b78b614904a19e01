//! An LRU map stays a cache when its string space is full (decisions 17, map/evict.rs):
//! writes evict from the LRU tail until their strings fit, within a bound
//! proportional to the write; a write whose strings could not fit even in an empty map
//! evicts nothing; maps without LRU never evict.

use hashmap_shared::{In, Map, Options, Out, Variant};

fn s(b: &[u8]) -> In<'_> {
    In::Str(b, false)
}

/// The bound of map/evict.rs: EVICT_MIN entries, or EVICT_FACTOR times the needed
/// bytes with each entry charged at least EVICT_CHARGE.
fn most_evictions(need_bytes: u64) -> u64 {
    32.max(8 * need_bytes / 64)
}

fn page(i: u64) -> Vec<u8> {
    let mut v = format!("page {i} ").into_bytes();
    v.resize(1000, b'.');
    v
}

fn lru_ss(entries: u64, max_size: u64, arena: u64) -> Map {
    Map::open(&Options::new(Variant::SS, entries).lru(max_size, 0).arena_cap(arena)).unwrap()
}

#[test]
fn a_full_arena_evicts_instead_of_failing() {
    // The page cache: 1000 entries, 1 kB values, default string space.
    let mut m = lru_ss(1000, 1000, 0);
    let cap = m.stats().arena_cap;
    for i in 0..5000u64 {
        let k = format!("/page/{i}");
        assert!(m.put(s(k.as_bytes()), s(&page(i))).unwrap(), "put {i}");
        assert_eq!(m.get(s(k.as_bytes())).unwrap(), Some(Out::Str(&page(i), false)), "the new page is there");
    }
    let st = m.stats();
    assert!(st.evictions >= 4000, "evicted {}", st.evictions);
    assert!(st.arena_used <= cap);
    assert!(st.size > 100 && st.size < 130, "as many pages as the arena holds: {}", st.size);
    assert_eq!(m.verify(), Vec::<String>::new());
    // The survivors are the most recent pages.
    for i in 4990..5000u64 {
        assert!(m.get(s(format!("/page/{i}").as_bytes())).unwrap().is_some(), "recent page {i}");
    }
    assert!(m.get(s(b"/page/0")).unwrap().is_none());
}

#[test]
fn second_chance_keeps_read_entries() {
    let mut m = lru_ss(1000, 1000, 64 * 1024);
    let hot = b"a hot key, read all the time";
    m.put(s(hot), s(&page(0))).unwrap();
    for i in 1..2000u64 {
        assert!(m.get(s(hot)).unwrap().is_some(), "hot entry survives round {i}");
        assert!(m.put(s(format!("cold {i}").as_bytes()), s(&page(i))).unwrap());
    }
    assert!(m.stats().evictions > 1900);
    assert_eq!(m.verify(), Vec::<String>::new());
}

#[test]
fn a_value_too_large_for_an_empty_map_evicts_nothing() {
    let mut m = lru_ss(100, 100, 16 * 1024);
    for i in 0..10u64 {
        m.put(s(format!("key {i}").as_bytes()), s(&page(i))).unwrap();
    }
    let before = m.stats();
    // 16 KiB of arena: a 10,000-byte value needs a 16 KiB block, plus the key's.
    let big = vec![b'x'; 10_000];
    assert!(!m.put(s(b"a key of more than 7 bytes"), s(&big)).unwrap());
    assert!(!m.put(s(b"short"), s(&vec![b'x'; 16 * 1024 + 1])).unwrap());
    assert_eq!(m.stats().evictions, before.evictions, "nothing evicted");
    assert_eq!(m.stats().size, 10, "every entry is still there");
    // A key short enough to be inline leaves the whole arena to the value: it fits,
    // after evicting everything else.
    assert!(m.put(s(b"short"), s(&vec![b'y'; 16 * 1024])).unwrap());
    assert_eq!(m.stats().size, 1);
    assert_eq!(m.stats().evictions, before.evictions + 10);
    assert_eq!(m.verify(), Vec::<String>::new());
}

#[test]
fn small_maps_keep_the_promise_in_a_fragmented_arena() {
    // Small strings everywhere, then a value needing half the arena: it fits once
    // enough of them are gone, whatever the order they go in.
    for seed in 0..20u64 {
        let mut m = lru_ss(64, 30, 8 * 1024);
        for i in 0..30u64 {
            let v = vec![b'a' + (i % 26) as u8; 20 + ((i * 7919 + seed * 31) % 200) as usize];
            assert!(m.put(s(format!("k{i}").as_bytes()), s(&v)).unwrap());
        }
        let size = m.stats().size;
        assert!(m.put(s(b"big"), s(&vec![b'z'; 4000])).unwrap(), "seed {seed}: fits after evicting");
        assert!(m.stats().evictions <= size);
        assert_eq!(m.get(s(b"big")).unwrap(), Some(Out::Str(&vec![b'z'; 4000], false)));
        assert_eq!(m.verify(), Vec::<String>::new());
    }
}

#[test]
fn one_call_evicts_within_its_bound() {
    // A large map of small strings whose LRU order is unrelated to their addresses, and
    // a value much larger than them: freeing a block that large would take nearly
    // every entry, so the call gives up within its bound instead of walking the map.
    let mut m = lru_ss(200_000, 200_000, 4 << 20);
    let mut n = 0u64;
    while m.put(s(format!("k{n}").as_bytes()), s(&[b'v'; 24])).unwrap() && m.stats().evictions == 0 {
        n += 1;
    }
    let size = m.stats().size;
    assert!(size > 100_000, "a large map: {size}");
    // Promote every entry in a scrambled order (an odd multiplier permutes 0..2^k).
    let span = (n + 1).next_power_of_two();
    for i in 0..span {
        let k = (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 7) % span;
        m.touch(s(format!("k{k}").as_bytes())).unwrap();
    }
    let before = m.stats();
    let ok = m.put(s(b"k"), s(&vec![b'x'; 256 * 1024])).unwrap();
    let evicted = m.stats().evictions - before.evictions;
    assert!(!ok, "no 256 KiB block after {evicted} evictions");
    assert!(evicted >= 32 && evicted <= most_evictions(256 * 1024), "evicted {evicted} of {size}");
    assert_eq!(m.verify(), Vec::<String>::new());
    // An ordinary write right after succeeds, evicting little.
    let before = m.stats().evictions;
    assert!(m.put(s(b"another key"), s(&[b'w'; 24])).unwrap());
    assert!(m.stats().evictions - before <= 2);
}

#[test]
fn an_overwrite_evicts_others_never_itself() {
    let mut m = lru_ss(100, 100, 8 * 1024);
    for i in 0..7u64 {
        m.put(s(format!("key {i}").as_bytes()), s(&page(i))).unwrap();
    }
    // key 0 is the LRU tail; growing its value must evict others, not key 0.
    let v = vec![b'g'; 2000];
    assert!(m.put(s(b"key 0"), s(&v)).unwrap());
    assert_eq!(m.get(s(b"key 0")).unwrap(), Some(Out::Str(&v, false)));
    assert!(m.stats().evictions >= 1);
    // The largest value that fits beside its own key and old value: 4096 beside 2048
    // + 16 in 8 KiB; 8192 never does, and then nothing is evicted.
    let before = m.stats();
    assert!(!m.put(s(b"key 0"), s(&vec![b'h'; 5000])).unwrap());
    assert_eq!(m.stats().evictions, before.evictions);
    assert_eq!(m.get(s(b"key 0")).unwrap(), Some(Out::Str(&v, false)), "old value kept");
    assert!(m.put(s(b"key 0"), s(&vec![b'i'; 4000])).unwrap());
    assert_eq!(m.stats().size, 1, "everything else went");
    assert_eq!(m.verify(), Vec::<String>::new());
}

#[test]
fn every_inserting_operation_evicts_for_space() {
    let big = vec![b'b'; 3000];
    for op in ["put", "add", "swap", "get_or_set", "set_multi", "update", "cas"] {
        // 12 KiB: two 4 KiB values (inline keys) and the entry written, whose two
        // 16-byte strings leave no 4 KiB block free.
        let mut m = lru_ss(100, 100, 12 * 1024);
        m.put(s(b"fill1"), s(&big)).unwrap();
        m.put(s(b"fill2"), s(&big)).unwrap();
        m.put(s(b"existing key"), s(b"old value, long")).unwrap();
        assert_eq!(m.stats().evictions, 0);
        let k = if op == "update" || op == "cas" { &b"existing key"[..] } else { &b"new key here"[..] };
        let ok = match op {
            "put" => m.put(s(k), s(&big)).unwrap(),
            "add" => m.add(s(k), s(&big)).unwrap(),
            "swap" => {
                m.swap(s(k), s(&big)).unwrap();
                true
            }
            "get_or_set" => m.get_or_set(s(k), s(&big)).unwrap().is_some(),
            "set_multi" => m.set_multi(&[(s(k), s(&big))]).unwrap() == 1,
            "update" => m.update(s(k), s(&big)).unwrap(),
            "cas" => m.cas(s(k), s(b"old value, long"), s(&big)).unwrap(),
            _ => unreachable!(),
        };
        assert!(ok, "{op}");
        assert_eq!(m.get(s(k)).unwrap(), Some(Out::Str(&big, false)), "{op}");
        assert!(m.stats().evictions >= 1, "{op} evicted");
        assert_eq!(m.verify(), Vec::<String>::new(), "{op}");
    }
    // A counter with a long new key (SI).
    let mut m = Map::open(&Options::new(Variant::SI, 1000).lru(1000, 0).arena_cap(4096)).unwrap();
    for i in 0..500 {
        assert_eq!(m.incr_by(s(format!("a long counter name {i}").as_bytes()), 1).unwrap(), 1);
    }
    assert!(m.stats().evictions > 300);
    assert_eq!(m.verify(), Vec::<String>::new());
}

#[test]
fn maps_without_lru_never_evict() {
    let mut m = Map::open(&Options::new(Variant::SS, 1000).arena_cap(16 * 1024)).unwrap();
    let mut stored = 0;
    for i in 0..100u64 {
        if m.put(s(format!("key {i}").as_bytes()), s(&page(i))).unwrap() {
            stored += 1;
        }
    }
    assert!(stored < 20);
    assert_eq!(m.stats().size, stored);
    assert_eq!(m.stats().evictions, 0);
}

#[test]
fn expired_victims_count_as_expired() {
    use hashmap_shared::ttl::ManualClock;
    use std::sync::Arc;
    let mut m = Map::open(&Options::new(Variant::SS, 100).lru(100, 0).ttl(10).arena_cap(8 * 1024)).unwrap();
    let c = Arc::new(ManualClock::new(m.ttl_epoch() + 10));
    m.set_clock(c.clone());
    for i in 0..7u64 {
        m.put(s(format!("key {i}").as_bytes()), s(&page(i))).unwrap();
    }
    c.advance(11);
    assert!(m.put(s(b"fresh key!"), s(&page(99))).unwrap());
    let st = m.stats();
    assert!(st.expired >= 1);
    assert_eq!(st.evictions, 0, "the victims had expired");
}
