//! LRU and TTL behaviour that the randomised oracle (tests/oracle.rs) does not pin
//! down: lru_skip fractions, order and clock bits across resizes, expiry across
//! reopening, the partial flush cursor, pop/shift on maps without LRU, eviction under
//! concurrent handles, the memory layout of plain maps. Expiry is driven by an
//! injected clock: nothing here sleeps.

use hashmap_shared::ttl::{Clock, ManualClock};
use hashmap_shared::{raw::{In, Map, Out, Value, Variant}, Options};
use std::sync::Arc;

fn ii(n: i64) -> In<'static> {
    In::Int(n)
}

fn keys(m: &mut Map) -> Vec<i64> {
    m.lru_keys()
        .unwrap()
        .into_iter()
        .map(|v| match v {
            Value::Int(x) => x,
            _ => panic!("int keys"),
        })
        .collect()
}

fn with_clock(m: &mut Map) -> Arc<ManualClock> {
    let c = Arc::new(ManualClock::new(m.ttl_epoch() + 10));
    m.set_clock(c.clone());
    c
}

/// lru_skip p: a write hit on a middle entry is promoted (1 - p) of the time.
#[test]
fn lru_skip_fractions() {
    for pct in [0u64, 50, 99] {
        let mut m = Map::open(&Options::of(Variant::II, 100).lru(100, pct)).unwrap();
        let n = 20_000;
        let mut skipped = 0;
        for _ in 0..n {
            m.clear().unwrap();
            for k in 1..=3 {
                m.put(ii(k), ii(k)).unwrap();
            }
            assert_eq!(keys(&mut m), [3, 2, 1]);
            m.put(ii(2), ii(20)).unwrap(); // a middle entry: promotion may be skipped
            match keys(&mut m).as_slice() {
                [2, 3, 1] => {}
                [3, 2, 1] => skipped += 1,
                other => panic!("order {other:?}"),
            }
            // The tail is never skipped, the head never moves.
            m.put(ii(1), ii(10)).unwrap();
            assert_eq!(keys(&mut m)[0], 1, "tail promotion is never skipped (pct {pct})");
        }
        let frac = skipped as f64 / n as f64;
        assert!((frac - pct as f64 / 100.0).abs() < 0.02, "lru_skip {pct}: skipped {frac}");
    }
}

/// Every percentage counts (decisions 6), 1..=49 included.
#[test]
fn lru_skip_low_values_matter() {
    let mut m = Map::open(&Options::of(Variant::II, 100).lru(100, 10)).unwrap();
    let mut skipped = 0;
    let n = 20_000;
    for _ in 0..n {
        m.clear().unwrap();
        for k in 1..=3 {
            m.put(ii(k), ii(k)).unwrap();
        }
        m.touch(ii(2)).unwrap();
        skipped += (keys(&mut m)[0] != 2) as u32;
    }
    let frac = skipped as f64 / n as f64;
    assert!((frac - 0.10).abs() < 0.02, "lru_skip 10: skipped {frac}");
}

#[test]
fn eviction_order_and_second_chance() {
    let mut m = Map::open(&Options::of(Variant::II, 100).lru(4, 0)).unwrap();
    for k in 1..=4 {
        assert!(m.put(ii(k), ii(k)).unwrap());
    }
    // without access bits: the oldest goes
    assert!(m.put(ii(5), ii(5)).unwrap());
    assert_eq!(keys(&mut m), [5, 4, 3, 2]);
    assert_eq!(m.stats().evictions, 1);
    // get marks 2 (the tail): it gets a second chance, 3 goes
    assert_eq!(m.get(ii(2)).unwrap(), Some(Out::Int(2)));
    assert!(m.put(ii(6), ii(6)).unwrap());
    assert_eq!(keys(&mut m), [6, 2, 5, 4]);
    // exists, get_multi, iteration do not mark: 4 goes
    assert!(m.exists(ii(4)).unwrap());
    m.get_multi(&[ii(4)]).unwrap();
    m.items().unwrap();
    assert!(m.put(ii(7), ii(7)).unwrap());
    assert_eq!(keys(&mut m), [7, 6, 2, 5]);
    // get_with_ttl marks like get
    assert!(m.get_with_ttl(ii(5)).unwrap().is_some());
    assert!(m.add(ii(8), ii(8)).unwrap());
    assert_eq!(keys(&mut m), [8, 5, 7, 6]);
    assert_eq!(m.stats().evictions, 4);
    assert_eq!(m.len(), 4);
    // every inserting operation evicts
    m.incr_by(ii(9), 1).unwrap();
    m.swap(ii(10), ii(1)).unwrap();
    m.get_or_set(ii(11), ii(1)).unwrap();
    m.max(ii(12), 3).unwrap();
    m.min(ii(13), 3).unwrap();
    m.set_multi(&[(ii(14), ii(1)), (ii(15), ii(1))]).unwrap();
    assert_eq!(keys(&mut m), [15, 14, 13, 12]);
    assert_eq!(m.stats().evictions, 11);
    assert_eq!(m.len(), 4);
}

#[test]
fn expired_victims_count_as_expired() {
    let mut m = Map::open(&Options::of(Variant::SS, 100).lru(2, 0).ttl(10)).unwrap();
    let c = with_clock(&mut m);
    let s = |x: &'static str| In::Str(x.as_bytes(), false);
    m.put_ttl(s("a"), s("1"), 1).unwrap();
    m.put(s("b"), s("2")).unwrap();
    c.advance(1); // a has expired
    m.put(s("c"), s("3")).unwrap();
    let st = m.stats();
    assert_eq!((st.evictions, st.expired, st.size), (0, 1, 2));
    m.put(s("d"), s("4")).unwrap(); // b is live: an eviction
    let st = m.stats();
    assert_eq!((st.evictions, st.expired, st.size), (1, 1, 2));
}

/// A large LRU map through grows, compactions and shrinks: the recency order and the
/// clock bits of the survivors are exactly what they were.
#[test]
fn resizes_keep_order_and_bits() {
    let n = 3000i64;
    let mut m = Map::open(&Options::of(Variant::SI, 20_000).lru(20_000, 0).ttl(1000)).unwrap();
    let c = with_clock(&mut m);
    let key = |i: i64| format!("key {i:05} with a tail").into_bytes();
    for i in 0..n {
        let k = key(i);
        m.put_ttl(In::Str(&k, false), ii(i), (i % 50) as u32 + 100).unwrap();
        if i % 7 == 0 {
            m.get(In::Str(&key(i / 2), false)).unwrap(); // marks (pop ignores them)
        }
    }
    let cap0 = m.stats().capacity;
    let order = |m: &mut Map| -> Vec<Vec<u8>> {
        m.lru_keys()
            .unwrap()
            .into_iter()
            .map(|v| match v {
                Value::Str(b, _) => b,
                _ => unreachable!(),
            })
            .collect()
    };
    let before = order(&mut m);
    assert_eq!(before.len(), n as usize);
    assert!(m.reserve(15_000).unwrap());
    assert!(m.stats().capacity > cap0, "grew");
    assert_eq!(order(&mut m), before, "grow keeps the order");
    // remove 90%: tombstones, then shrinks
    let mut survivors = Vec::new();
    for (j, k) in before.iter().enumerate() {
        if j % 10 == 0 {
            survivors.push(k.clone());
        } else {
            assert!(m.remove(In::Str(k, false)).unwrap());
        }
    }
    assert!(m.stats().capacity < cap0, "shrank");
    assert_eq!(order(&mut m), survivors, "shrink keeps the order");
    for (j, k) in survivors.iter().enumerate() {
        let i: i64 = String::from_utf8_lossy(&k[4..9]).parse().unwrap();
        assert_eq!(m.ttl_remaining(In::Str(k, false)).unwrap(), Some((i % 50) as u32 + 100), "expiry followed {j}");
    }
    // pop takes from the tail: the survivors in reverse
    let mut popped = Vec::new();
    while let Some((k, _)) = m.pop().unwrap() {
        let Out::Str(k, _) = k else { unreachable!() };
        popped.push(k.to_vec());
    }
    survivors.reverse();
    assert_eq!(popped, survivors);
    assert_eq!(c.now() - m.ttl_epoch(), 10, "(the clock never moved)");
}

/// Clock bits survive rehashes: mark a few entries, force a grow, a compaction and a
/// shrink, then evict.
#[test]
fn clock_bits_survive_rehashes() {
    let mut m = Map::open(&Options::of(Variant::II, 1000).lru(12, 0)).unwrap();
    for k in 0..12 {
        m.put(ii(k), ii(k)).unwrap();
    }
    for k in [0, 1, 2] {
        m.get(ii(k)).unwrap();
    }
    let cap = m.stats().capacity;
    assert!(m.reserve(500).unwrap());
    assert!(m.stats().capacity > cap);
    m.put(ii(100), ii(0)).unwrap();
    // 0, 1, 2 (the oldest) were marked: second chance; 3 is evicted
    assert!(m.get(ii(3)).unwrap().is_none());
    assert_eq!(keys(&mut m)[..4], [100, 2, 1, 0]);
    // mark 4 and 5 (now the oldest), then shrink the table by removing entries
    m.get(ii(4)).unwrap();
    m.get(ii(5)).unwrap();
    let cap = m.stats().capacity;
    for k in [7, 8, 9, 10, 11] {
        assert!(m.remove(ii(k)).unwrap());
    }
    assert!(m.stats().capacity < cap, "shrank");
    assert_eq!(keys(&mut m), [100, 2, 1, 0, 6, 5, 4]);
    for k in 200..205 {
        m.put(ii(k), ii(0)).unwrap();
    }
    assert_eq!(m.len(), 12);
    m.put(ii(300), ii(0)).unwrap();
    // 4 and 5 get their second chance, 6 is evicted
    assert!(m.get(ii(6)).unwrap().is_none());
    assert!(m.exists(ii(4)).unwrap() && m.exists(ii(5)).unwrap());
}

#[test]
fn expiry_survives_reopening() {
    let dir = std::env::temp_dir().join(format!("hm-lru-ttl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("reopen.shm");
    let _ = std::fs::remove_file(&p);
    {
        let mut m = Map::open(&Options::of(Variant::II, 100).ttl(60).file(&p)).unwrap();
        assert!(m.put_ttl(ii(1), ii(1), 3600).unwrap());
        assert!(m.put(ii(2), ii(2)).unwrap());
        assert!(m.put_ttl(ii(3), ii(3), 0).unwrap());
    }
    let mut m = Map::open(&Options::of(Variant::II, 0).file(&p)).unwrap();
    assert_eq!(m.stats().ttl, 60, "the header wins");
    let left = m.ttl_remaining(ii(1)).unwrap().unwrap();
    assert!((3598..=3600).contains(&left), "about an hour left after reopening: {left}");
    assert!((58..=60).contains(&m.ttl_remaining(ii(2)).unwrap().unwrap()));
    assert_eq!(m.ttl_remaining(ii(3)).unwrap(), Some(0));
    // Expiry is absolute wall-clock time: a handle whose clock is an hour ahead sees
    // key 1 expired and key 3 still permanent.
    let c = Arc::new(ManualClock::starting_now());
    c.advance(3601);
    m.set_clock(c.clone());
    assert_eq!(m.get(ii(1)).unwrap(), None);
    assert_eq!(m.get(ii(3)).unwrap(), Some(Out::Int(3)));
    assert!(c.now() > m.ttl_epoch());
    drop(m);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn flush_expired_partial_cursor() {
    let mut m = Map::open(&Options::of(Variant::II, 1000).ttl(100)).unwrap();
    let c = with_clock(&mut m);
    for k in 0..200 {
        m.put_ttl(ii(k), ii(k), if k % 2 == 0 { 5 } else { 0 }).unwrap();
    }
    let cap = m.stats().capacity as u32;
    assert_eq!(cap, 256);
    assert_eq!(m.flush_expired_partial(10).unwrap(), (0, false), "nothing expired yet");
    c.advance(5);
    assert_eq!(m.len(), 200, "expired entries count in size until reclaimed");
    assert_eq!(m.items().unwrap().len(), 100, "but iteration skips them");
    // A second handle shares the cursor (it lives in the header).
    let mut total = 0;
    let mut calls = 0;
    loop {
        let (n, done) = m.flush_expired_partial(60).unwrap();
        total += n;
        calls += 1;
        if done {
            break;
        }
    }
    // the cursor started at 10: 246 slots left = 5 calls of 60 (the last reaching the end)
    assert_eq!(calls, 5);
    assert!(total <= 100);
    let rest = m.flush_expired().unwrap();
    assert_eq!(total + rest, 100);
    assert_eq!(m.stats().expired, 100);
    assert_eq!(m.len(), 100);
    // limit 0 counts as 1; a huge limit is one whole pass
    assert_eq!(m.flush_expired_partial(0).unwrap(), (0, false));
    assert_eq!(m.flush_expired_partial(u32::MAX).unwrap(), (0, true));
    // a full cycle shrinks the table
    for k in 0..200 {
        m.put_ttl(ii(k), ii(k), 1).unwrap();
    }
    c.advance(1);
    assert_eq!(m.flush_expired_partial(u32::MAX).unwrap(), (200, true));
    assert_eq!(m.len(), 0);
    assert_eq!(m.stats().capacity, 16);
    // a map without TTL
    let mut p = Map::open(&Options::of(Variant::II, 10)).unwrap();
    assert_eq!(p.flush_expired_partial(5).unwrap(), (0, true));
    assert_eq!(p.flush_expired().unwrap(), 0);
}

#[test]
fn pop_shift_without_lru() {
    let mut m = Map::open(&Options::of(Variant::II, 1000).ttl(100)).unwrap();
    let c = with_clock(&mut m);
    for k in 0..50 {
        m.put_ttl(ii(k), ii(k * 10), if k % 3 == 0 { 1 } else { 0 }).unwrap();
    }
    let slot_order: Vec<i64> = m.items().unwrap().into_iter().map(|(k, _)| if let Value::Int(k) = k { k } else { 0 }).collect();
    c.advance(1);
    let live: Vec<i64> = slot_order.iter().copied().filter(|k| k % 3 != 0).collect();
    // pop: lowest slot first, skipping (reclaiming) expired entries
    let (k, v) = m.pop().unwrap().unwrap();
    assert_eq!((k, v), (Out::Int(live[0]), Out::Int(live[0] * 10)));
    let expired_before_first = slot_order.iter().take_while(|&&k| k != live[0]).count() as u64;
    assert_eq!(m.stats().expired, expired_before_first);
    // shift: highest slot first
    let (k, _) = m.shift().unwrap().unwrap();
    assert_eq!(k, Out::Int(*live.last().unwrap()));
    // drain the rest in slot order
    let rest: Vec<i64> = m.drain(u64::MAX).unwrap().into_iter().map(|(k, _)| if let Value::Int(k) = k { k } else { 0 }).collect();
    assert_eq!(rest, live[1..live.len() - 1]);
    assert_eq!(m.len(), 0);
    assert_eq!(m.stats().expired, slot_order.len() as u64 - live.len() as u64);
    assert!(m.pop().unwrap().is_none());
    assert!(m.drain(5).unwrap().is_empty());
}

#[test]
fn pop_shift_drain_lru() {
    let mut m = Map::open(&Options::of(Variant::IS, 100).lru(10, 0)).unwrap();
    for k in 1..=6 {
        m.put(ii(k), In::Str(format!("value {k} long enough").as_bytes(), k % 2 == 0)).unwrap();
    }
    m.get(ii(1)).unwrap(); // accessed bits are ignored by pop
    assert_eq!(m.pop().unwrap().map(|(k, v)| (k.to_value(), v.to_value())), Some((Value::Int(1), Value::Str(b"value 1 long enough".to_vec(), false))));
    assert_eq!(m.shift().unwrap().map(|(k, _)| k.to_value()), Some(Value::Int(6)));
    let d = m.drain(2).unwrap();
    assert_eq!(d.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(), [Value::Int(2), Value::Int(3)]);
    assert_eq!(d[0].1, Value::Str(b"value 2 long enough".to_vec(), true));
    assert_eq!(keys(&mut m), [5, 4]);
    assert_eq!(m.stats().arena_used, 2 * 32);
    assert_eq!(m.drain(u64::MAX).unwrap().len(), 2);
    assert_eq!(m.stats().arena_used, 0);
    assert_eq!(m.stats().evictions, 0);
}

#[test]
fn ttl_table_int_and_string() {
    // api.md 7.4, one row at a time, for an int-value and a string-value variant
    for v in [Variant::II, Variant::SS] {
        let mut m = Map::open(&Options::of(v, 100).ttl(100)).unwrap();
        let c = with_clock(&mut m);
        let (k, x, y) = if v == Variant::II {
            (vec![In::Int(1), In::Int(2), In::Int(3)], In::Int(10), In::Int(20))
        } else {
            (
                vec![In::Str(b"k1", false), In::Str(b"a longer key two", false), In::Str(b"k3", true)],
                In::Str(b"x", false),
                In::Str(b"a longer value y", true),
            )
        };
        let (kt, kp, kn) = (k[0], k[1], k[2]); // with a TTL, permanent, new
        let reset = |m: &mut Map| {
            m.clear().unwrap();
            m.put_ttl(kt, x, 30).unwrap();
            m.put_ttl(kp, x, 0).unwrap();
        };
        let rem = |m: &mut Map, key| m.ttl_remaining(key).unwrap();
        let later = |c: &ManualClock| c.advance(10);
        // put / set_multi / swap: reset to default, permanent stays, new gets default
        for op in 0..3 {
            reset(&mut m);
            later(&c);
            let w = |m: &mut Map, key| match op {
                0 => assert!(m.put(key, y).unwrap()),
                1 => assert_eq!(m.set_multi(&[(key, y)]).unwrap(), 1),
                _ => {
                    m.swap(key, y).unwrap();
                }
            };
            w(&mut m, kt);
            w(&mut m, kp);
            w(&mut m, kn);
            assert_eq!((rem(&mut m, kt), rem(&mut m, kp), rem(&mut m, kn)), (Some(100), Some(0), Some(100)), "{v:?} op {op}");
        }
        // update: reset / stays / no insert
        reset(&mut m);
        later(&c);
        assert!(m.update(kt, y).unwrap() && m.update(kp, y).unwrap() && !m.update(kn, y).unwrap());
        assert_eq!((rem(&mut m, kt), rem(&mut m, kp), rem(&mut m, kn)), (Some(100), Some(0), None));
        // put_ttl / update_ttl: from the argument, 0 = permanent
        reset(&mut m);
        assert!(m.put_ttl(kt, y, 0).unwrap() && m.put_ttl(kp, y, 7).unwrap() && m.put_ttl(kn, y, 9).unwrap());
        assert_eq!((rem(&mut m, kt), rem(&mut m, kp), rem(&mut m, kn)), (Some(0), Some(7), Some(9)));
        reset(&mut m);
        assert!(m.update_ttl(kt, y, 0).unwrap() && m.update_ttl(kp, y, 7).unwrap() && !m.update_ttl(kn, y, 9).unwrap());
        assert_eq!((rem(&mut m, kt), rem(&mut m, kp), rem(&mut m, kn)), (Some(0), Some(7), None));
        // add / add_ttl: unchanged on existing keys; default / argument for new ones
        reset(&mut m);
        later(&c);
        assert!(!m.add(kt, y).unwrap() && !m.add(kp, y).unwrap() && m.add(kn, y).unwrap());
        assert_eq!((rem(&mut m, kt), rem(&mut m, kp), rem(&mut m, kn)), (Some(20), Some(0), Some(100)));
        reset(&mut m);
        later(&c);
        assert!(!m.add_ttl(kt, y, 5).unwrap() && !m.add_ttl(kp, y, 5).unwrap() && m.add_ttl(kn, y, 5).unwrap());
        assert_eq!((rem(&mut m, kt), rem(&mut m, kp), rem(&mut m, kn)), (Some(20), Some(0), Some(5)));
        // get_or_set hit: reset / stays; new: default
        reset(&mut m);
        later(&c);
        for key in [kt, kp, kn] {
            m.get_or_set(key, y).unwrap();
        }
        assert_eq!((rem(&mut m, kt), rem(&mut m, kp), rem(&mut m, kn)), (Some(100), Some(0), Some(100)));
        // counters (int values)
        if v == Variant::II {
            for op in 0..5 {
                reset(&mut m);
                later(&c);
                for key in [kt, kp, kn] {
                    match op {
                        0 => m.incr_by(key, 1).map(|_| ()).unwrap(),
                        1 => m.incr_by(key, -1).map(|_| ()).unwrap(),
                        2 => m.incr_by(key, 5).map(|_| ()).unwrap(),
                        3 => m.max(key, -100).map(|_| ()).unwrap(), // unchanged value: still refreshed
                        _ => m.min(key, 100).map(|_| ()).unwrap(),
                    }
                }
                assert_eq!((rem(&mut m, kt), rem(&mut m, kp), rem(&mut m, kn)), (Some(100), Some(0), Some(100)), "counter {op}");
            }
        }
        // cas success: reset / stays; failure: unchanged; cas_take failure: unchanged
        reset(&mut m);
        later(&c);
        assert!(m.cas(kt, x, y).unwrap() && m.cas(kp, x, y).unwrap());
        assert_eq!((rem(&mut m, kt), rem(&mut m, kp)), (Some(100), Some(0)));
        reset(&mut m);
        later(&c);
        assert!(!m.cas(kt, y, x).unwrap() && m.cas_take(kt, y).unwrap().is_none());
        assert_eq!(rem(&mut m, kt), Some(20));
        // touch: reset to the default (per-key TTL discarded), permanent stays
        reset(&mut m);
        later(&c);
        assert!(m.touch(kt).unwrap() && m.touch(kp).unwrap() && !m.touch(kn).unwrap());
        assert_eq!((rem(&mut m, kt), rem(&mut m, kp)), (Some(100), Some(0)));
        // persist, set_ttl
        reset(&mut m);
        assert!(m.persist(kt).unwrap() && m.persist(kp).unwrap() && !m.persist(kn).unwrap());
        assert_eq!((rem(&mut m, kt), rem(&mut m, kp)), (Some(0), Some(0)));
        reset(&mut m);
        assert!(m.set_ttl(kt, 3).unwrap() && m.set_ttl(kp, 4).unwrap() && !m.set_ttl(kn, 5).unwrap());
        assert_eq!((rem(&mut m, kt), rem(&mut m, kp)), (Some(3), Some(4)));
        assert!(m.set_ttl(kp, 0).unwrap());
        assert_eq!(rem(&mut m, kp), Some(0));
        // readers change nothing
        reset(&mut m);
        later(&c);
        m.get(kt).unwrap();
        m.exists(kt).unwrap();
        m.get_with_ttl(kt).unwrap();
        m.items().unwrap();
        while m.each().unwrap().is_some() {}
        assert_eq!(rem(&mut m, kt), Some(20));
        // expired entries: invisible to readers, counted in size, reclaimed by writers
        reset(&mut m);
        c.advance(30);
        assert_eq!(m.get(kt).unwrap(), None);
        assert!(!m.exists(kt).unwrap());
        assert_eq!(m.ttl_remaining(kt).unwrap(), None);
        assert!(m.get_with_ttl(kt).unwrap().is_none());
        assert_eq!(m.len(), 2);
        let e0 = m.stats().expired;
        assert!(m.remove(kt).unwrap(), "remove deletes an expired entry");
        assert_eq!(m.stats().expired, e0, "... without counting it");
        reset(&mut m);
        c.advance(30);
        assert!(m.put(kt, y).unwrap(), "put revives");
        assert_eq!((rem(&mut m, kt), m.stats().expired), (Some(100), e0));
        for (n, op) in ["add", "update", "swap", "take", "cas", "cas_take", "get_or_set", "touch", "persist", "set_ttl"].iter().enumerate() {
            reset(&mut m);
            c.advance(30);
            let before = m.stats().expired;
            let r = match *op {
                "add" => m.add(kt, y).unwrap(),
                "update" => m.update(kt, y).unwrap(),
                "swap" => m.swap(kt, y).unwrap().is_some(),
                "take" => m.take(kt).unwrap().is_some(),
                "cas" => m.cas(kt, x, y).unwrap(),
                "cas_take" => m.cas_take(kt, x).unwrap().is_some(),
                "get_or_set" => m.get_or_set(kt, y).unwrap().map(|o| o.to_value()) != Some(y_value(y)),
                "touch" => m.touch(kt).unwrap(),
                "persist" => m.persist(kt).unwrap(),
                _ => m.set_ttl(kt, 5).unwrap(),
            };
            let inserted = matches!(*op, "add" | "swap" | "get_or_set");
            assert_eq!(r, *op == "add", "{op} on an expired entry ({n})");
            assert_eq!(m.stats().expired, before + 1, "{op} reclaims and counts");
            assert_eq!(m.len(), 1 + inserted as u64, "{op}");
        }
    }
}

fn y_value(y: In<'_>) -> Value {
    match y {
        In::Int(v) => Value::Int(v),
        In::Str(b, u) => Value::Str(b.to_vec(), u),
    }
}

#[test]
fn ttl_only_operations_on_plain_maps() {
    let mut m = Map::open(&Options::of(Variant::SS, 10)).unwrap();
    let k = In::Str(b"k", false);
    m.put(k, k).unwrap();
    let msg = "operation requires a TTL-enabled map (pass ttl > 0 to constructor)";
    assert_eq!(m.put_ttl(k, k, 1).unwrap_err().message(), msg);
    assert_eq!(m.add_ttl(k, k, 1).unwrap_err().message(), msg);
    assert_eq!(m.update_ttl(k, k, 1).unwrap_err().message(), msg);
    assert!(!m.touch(k).unwrap());
    assert!(!m.persist(k).unwrap());
    assert!(!m.set_ttl(k, 5).unwrap());
    assert_eq!(m.ttl_remaining(k).unwrap(), None);
    assert_eq!(m.get_with_ttl(k).unwrap().map(|(_, t)| t), Some(None));
    // touch works on an LRU map without TTL
    let mut l = Map::open(&Options::of(Variant::SS, 10).lru(5, 0)).unwrap();
    l.put(k, k).unwrap();
    assert!(l.touch(k).unwrap());
    assert!(!l.persist(k).unwrap());
}

#[test]
fn ttl_argument_clamping() {
    let mut m = Map::open(&Options::of(Variant::II, 10).ttl(5)).unwrap();
    let c = with_clock(&mut m);
    m.put_ttl(ii(1), ii(1), u32::MAX).unwrap();
    m.put_ttl(ii(2), ii(1), u32::MAX - 1).unwrap();
    m.put_ttl(ii(3), ii(1), 4_294_967_293).unwrap();
    // the expiry saturates at u32 seconds after the epoch
    let now = c.now() - m.ttl_epoch();
    let sat = (u32::MAX as u64 - now) as u32;
    for k in 1..=3 {
        assert_eq!(m.ttl_remaining(ii(k)).unwrap(), Some(sat), "key {k}");
    }
    m.set_ttl(ii(1), u32::MAX).unwrap();
    assert_eq!(m.ttl_remaining(ii(1)).unwrap(), Some(sat));
}

/// Several handles on one LRU map at once (threads here; processes in
/// t/lru-processes.t): the size never passes max_size, and every insert is either
/// still there or was counted as an eviction.
#[test]
fn concurrent_handles_share_one_lru() {
    let max = 500u64;
    let m0 = Map::open(&Options::of(Variant::II, 10_000).lru(max, 0).memfd("lru")).unwrap();
    let fd = m0.memfd();
    let threads: Vec<_> = (0..4i64)
        .map(|t| {
            let mut m = Map::open(&Options::of(Variant::II, 0).from_fd(fd)).unwrap();
            std::thread::spawn(move || {
                let mut inserted = 0u64;
                for i in 0..20_000i64 {
                    let k = t * 1_000_000 + i % 3000;
                    if i % 3 == 0 {
                        m.get(ii(k - 1)).unwrap();
                    } else if m.add(ii(k), ii(i)).unwrap() {
                        inserted += 1;
                    } else {
                        m.put(ii(k), ii(i)).unwrap();
                    }
                    if i % 1000 == 0 {
                        assert!(m.len() <= max, "size {} above max_size", m.len());
                    }
                }
                // The key this handle wrote last is the LRU head unless others wrote
                // since: it is present right after the write.
                assert!(m.add(ii(-1 - t), ii(t)).unwrap());
                assert_eq!(m.get(ii(-1 - t)).unwrap(), Some(Out::Int(t)));
                (inserted + 1, m)
            })
        })
        .collect();
    let mut inserted = 0;
    for t in threads {
        inserted += t.join().unwrap().0;
    }
    let mut m = m0;
    let st = m.stats();
    assert_eq!(st.size, max, "full");
    assert_eq!(inserted, st.size + st.evictions, "every insert is either there or was evicted");
    assert_eq!(m.lru_keys().unwrap().len() as u64, st.size, "list and table agree");
    assert_eq!(m.items().unwrap().len() as u64, st.size);
}

/// Plain maps allocate no LRU or TTL memory; LRU and TTL maps add exactly their arrays.
#[test]
fn plain_maps_have_no_side_arrays() {
    let plain = Map::open(&Options::of(Variant::II, 100_000)).unwrap();
    let lru = Map::open(&Options::of(Variant::II, 100_000).lru(10, 0)).unwrap();
    let ttl = Map::open(&Options::of(Variant::II, 100_000).ttl(10)).unwrap();
    let both = Map::open(&Options::of(Variant::II, 100_000).lru(10, 0).ttl(10)).unwrap();
    let (p, l, t, b) = (plain.layout(), lru.layout(), ttl.layout(), both.layout());
    assert_eq!((p.lru_off, p.ttl_off, p.flags), (0, 0, 0));
    assert!(!plain.has_lru() && !plain.has_ttl());
    let cap = p.max_cap as usize;
    assert_eq!(cap, 131_072);
    assert_eq!(l.total_size - p.total_size, 2 * cap * 4 + cap, "LRU: prev, next, accessed");
    assert_eq!(t.total_size - p.total_size, cap * 4, "TTL: expiry");
    assert_eq!(b.total_size - p.total_size, 2 * cap * 4 + cap + cap * 4);
    assert!(l.lru_off >= l.slots_off + cap * 16 && l.lru_off % 4096 == 0);
    assert!(t.ttl_off % 4096 == 0 && b.ttl_off > b.lru_off);
}

/// A get through one handle marks the entry for the evictions another handle does.
#[test]
fn marks_from_other_handles() {
    let mut w = Map::open(&Options::of(Variant::II, 1000).lru(4, 0).memfd("x")).unwrap();
    let mut r = Map::open(&Options::of(Variant::II, 0).from_fd(w.memfd())).unwrap();
    for k in 1..=4 {
        w.put(ii(k), ii(k)).unwrap();
    }
    r.get(ii(1)).unwrap();
    w.put(ii(5), ii(5)).unwrap();
    assert_eq!(keys(&mut w), [5, 1, 4, 3]);
    for i in 0..50 {
        r.get(ii(1)).unwrap();
        w.put(ii(100 + i), ii(0)).unwrap();
    }
    assert_eq!(keys(&mut w), [149, 148, 147, 1], "key 1 read by the other handle survives");
}

/// Optimistic readers of an LRU+TTL map never see a value that belongs to another key
/// or a torn one, while a writer evicts, expires, rehashes and rewrites.
#[test]
fn readers_never_see_mixed_values_under_eviction() {
    fn value(k: u64, gen: u64) -> Vec<u8> {
        let b = (k % 251) as u8;
        let mut v = vec![b; ((k * 7 + gen) % 90) as usize];
        v.extend_from_slice(&k.to_le_bytes());
        v
    }
    fn consistent(k: u64, v: &[u8]) -> bool {
        v.len() >= 8 && v[v.len() - 8..] == k.to_le_bytes() && v[..v.len() - 8].iter().all(|&x| x == (k % 251) as u8)
    }
    let mut w = Map::open(&Options::of(Variant::SS, 20_000).lru(3000, 30).ttl(2).memfd("mixed")).unwrap();
    let c = with_clock(&mut w);
    let fd = w.memfd();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2u64)
        .map(|r| {
            let stop = stop.clone();
            let mut m = Map::open(&Options::of(Variant::SS, 0).from_fd(fd)).unwrap();
            std::thread::spawn(move || {
                let (mut n, mut hits) = (0u64, 0u64);
                // Relaxed: a stop flag only.
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let k = (n * 7919 + r) % 10_000;
                    let key = format!("key {k}");
                    if let Some(Out::Str(v, _)) = m.get(In::Str(key.as_bytes(), false)).unwrap() {
                        assert!(consistent(k, v), "key {k}: wrong or torn value of len {}", v.len());
                        hits += 1;
                    }
                    if let Some((Out::Str(v, _), _)) = m.get_with_ttl(In::Str(key.as_bytes(), false)).unwrap() {
                        assert!(consistent(k, v), "get_with_ttl {k}");
                    }
                    n += 1;
                }
                (n, hits)
            })
        })
        .collect();
    for round in 0..40_000u64 {
        let k = round * 31 % 10_000;
        let key = format!("key {k}");
        let v = value(k, round);
        if round % 5 == 0 {
            w.put_ttl(In::Str(key.as_bytes(), false), In::Str(&v, false), 1).unwrap();
        } else {
            w.put(In::Str(key.as_bytes(), false), In::Str(&v, false)).unwrap();
        }
        if round % 4000 == 0 {
            c.advance(1);
            w.flush_expired_partial(500).unwrap();
        }
        if round % 9000 == 0 {
            w.remove_multi(&[In::Str(b"key 1", false), In::Str(b"key 2", false)]).unwrap();
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut hits = 0;
    for r in readers {
        hits += r.join().unwrap().1;
    }
    assert!(hits > 0, "the readers found entries");
    assert!(w.len() <= 3000);
    assert!(w.stats().evictions > 0);
}
