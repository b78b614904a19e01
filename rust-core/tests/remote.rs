//! The Redis backend against real redis-server processes (started and stopped by pid
//! by the tests): the same answers as a local map for the same calls, and what the
//! network adds (several processes, fork, restarts, timeouts, script cache flushes,
//! maxmemory).
#![cfg(feature = "redis")]

mod redis_server;

use hashmap_shared::raw::{In, Map, Out, Remote, RemoteCursor, Value, Variant};
use hashmap_shared::{ErrorKind, Options};
use redis_server::Server;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn ov(o: Option<Out<'_>>) -> Option<Value> {
    o.map(Out::to_value)
}
fn op(o: Option<(Out<'_>, Out<'_>)>) -> Option<(Value, Value)> {
    o.map(|(k, v)| (k.to_value(), v.to_value()))
}

const STRS: [(&[u8], bool); 8] = [
    (b"a", false),
    (b"b", true),
    (b"caf\xc3\xa9", true),
    (b"caf\xc3\xa9", false),
    (b"", false),
    (b"a key longer than seven bytes", false),
    (b"nul\0byte", false),
    (b"\xff\xfe binary", false),
];

fn rand_key(r: &mut Rng, v: Variant) -> Value {
    if v.key_kind().is_int() {
        let k = r.below(40) as i64;
        // Some keys beyond the width (narrowed to the same entry as a small one).
        Value::Int(if r.below(8) == 0 { k + 65536 } else { k })
    } else if r.below(3) == 0 {
        let (b, u) = STRS[r.below(STRS.len() as u64) as usize];
        Value::Str(b.to_vec(), u)
    } else {
        Value::Str(format!("k{}", r.below(30)).into_bytes(), r.below(5) == 0)
    }
}

fn rand_val(r: &mut Rng, v: Variant) -> Value {
    if v.val_kind().is_int() {
        Value::Int(match r.below(10) {
            0 => i64::MAX - r.below(3) as i64,
            1 => i64::MIN + r.below(3) as i64,
            2 => 32767,
            3 => -32768,
            4 => i32::MAX as i64,
            _ => r.below(200) as i64 - 100,
        })
    } else {
        let (b, u) = STRS[r.below(STRS.len() as u64) as usize];
        Value::Str(b.to_vec(), u)
    }
}

/// Runs the same random calls on a local map and a Redis map and compares every answer.
pub fn compare(url: &str, name: &str, o: &Options, seed: u64, steps: usize) {
    let mut local = Map::open(o).unwrap();
    let mut remote = Remote::open(url, o).unwrap();
    let v = local.variant();
    let mut r = Rng(seed);
    let lru = local.stats().max_size > 0;
    for step in 0..steps {
        let k = rand_key(&mut r, v);
        let x = rand_val(&mut r, v);
        let (k, x) = (k.as_in(), x.as_in());
        let what = r.below(24);
        let ctx = format!("{name} step {step} op {what} key {k:?} val {x:?}");
        match what {
            0 | 1 => assert_eq!(local.put(k, x).unwrap(), remote.put(k, x).unwrap(), "{ctx}"),
            2 | 3 => assert_eq!(ov(local.get(k).unwrap()), ov(remote.get(k).unwrap()), "{ctx}"),
            4 => assert_eq!(local.exists(k).unwrap(), remote.exists(k).unwrap(), "{ctx}"),
            5 => assert_eq!(local.add(k, x).unwrap(), remote.add(k, x).unwrap(), "{ctx}"),
            6 => assert_eq!(local.update(k, x).unwrap(), remote.update(k, x).unwrap(), "{ctx}"),
            7 => assert_eq!(ov(local.swap(k, x).unwrap()), ov(remote.swap(k, x).unwrap()), "{ctx}"),
            8 => assert_eq!(ov(local.take(k).unwrap()), ov(remote.take(k).unwrap()), "{ctx}"),
            9 => assert_eq!(local.remove(k).unwrap(), remote.remove(k).unwrap(), "{ctx}"),
            10 => assert_eq!(ov(local.get_or_set(k, x).unwrap()), ov(remote.get_or_set(k, x).unwrap()), "{ctx}"),
            11 => {
                // Expect the current value half of the time.
                let cur = ov(local.get(k).unwrap());
                let _ = remote.get(k).unwrap();
                let e = match (&cur, r.below(2)) {
                    (Some(c), 0) => c.clone(),
                    _ => rand_val(&mut r, v),
                };
                assert_eq!(local.cas(k, e.as_in(), x).unwrap(), remote.cas(k, e.as_in(), x).unwrap(), "{ctx} cas {e:?}");
            }
            12 => {
                let cur = ov(local.get(k).unwrap());
                let _ = remote.get(k).unwrap();
                let e = cur.unwrap_or_else(|| rand_val(&mut r, v));
                assert_eq!(ov(local.cas_take(k, e.as_in()).unwrap()), ov(remote.cas_take(k, e.as_in()).unwrap()), "{ctx}");
            }
            13 | 14 if v.val_kind().is_int() => {
                let Value::Int(d) = x.into_owned() else { unreachable!() };
                let a = local.incr_by(k, d).map_err(|e| e.kind());
                let b = remote.incr_by(k, d).map_err(|e| e.kind());
                assert_eq!(a, b, "{ctx}");
            }
            15 if v.val_kind().is_int() => {
                let Value::Int(d) = x.into_owned() else { unreachable!() };
                assert_eq!(local.max(k, d).map_err(|e| e.kind()), remote.max(k, d).map_err(|e| e.kind()), "{ctx}");
            }
            16 if v.val_kind().is_int() => {
                let Value::Int(d) = x.into_owned() else { unreachable!() };
                assert_eq!(local.min(k, d).map_err(|e| e.kind()), remote.min(k, d).map_err(|e| e.kind()), "{ctx}");
            }
            17 => assert_eq!(local.touch(k).unwrap(), remote.touch(k).unwrap(), "{ctx}"),
            18 => {
                let pairs: Vec<(Value, Value)> = (0..3).map(|_| (rand_key(&mut r, v), rand_val(&mut r, v))).collect();
                let p: Vec<(In, In)> = pairs.iter().map(|(a, b)| (a.as_in(), b.as_in())).collect();
                assert_eq!(local.set_multi(&p).unwrap(), remote.set_multi(&p).unwrap(), "{ctx}");
            }
            19 => {
                let ks: Vec<Value> = (0..4).map(|_| rand_key(&mut r, v)).collect();
                let ki: Vec<In> = ks.iter().map(Value::as_in).collect();
                assert_eq!(local.get_multi(&ki).unwrap(), remote.get_multi(&ki).unwrap(), "{ctx}");
            }
            20 => {
                let ks: Vec<Value> = (0..2).map(|_| rand_key(&mut r, v)).collect();
                let ki: Vec<In> = ks.iter().map(Value::as_in).collect();
                assert_eq!(local.remove_multi(&ki).unwrap(), remote.remove_multi(&ki).unwrap(), "{ctx}");
            }
            // pop / shift / drain order is the LRU order on LRU maps (hash order otherwise).
            21 if lru => assert_eq!(op(local.pop().unwrap()), op(remote.pop().unwrap()), "{ctx}"),
            22 if lru => assert_eq!(op(local.shift().unwrap()), op(remote.shift().unwrap()), "{ctx}"),
            23 if lru && r.below(10) == 0 => assert_eq!(local.drain(3).unwrap(), remote.drain(3).unwrap(), "{ctx}"),
            _ => {}
        }
        if step % 50 == 0 {
            let (a, b) = (local.stats(), remote.stats().unwrap());
            assert_eq!((a.size, a.evictions, a.expired), (b.size, b.evictions, b.expired), "{ctx} stats");
        }
    }
    let mut a = local.items().unwrap();
    let mut b = remote.items().unwrap();
    a.sort_by(|x, y| format!("{x:?}").cmp(&format!("{y:?}")));
    b.sort_by(|x, y| format!("{x:?}").cmp(&format!("{y:?}")));
    assert_eq!(a, b, "{name}: final contents");
    let (a, b) = (local.stats(), remote.stats().unwrap());
    assert_eq!((a.size, a.max_entries, a.evictions, a.expired, a.max_size, a.ttl), (b.size, b.max_entries, b.evictions, b.expired, b.max_size, b.ttl));
    assert!(remote.verify().is_empty(), "{:?}", remote.verify());
}

trait Owned {
    fn into_owned(self) -> Value;
}
impl Owned for In<'_> {
    fn into_owned(self) -> Value {
        match self {
            In::Int(v) => Value::Int(v),
            In::Str(b, u) => Value::Str(b.to_vec(), u),
        }
    }
}

#[test]
fn every_operation_answers_as_a_local_map() {
    let Some(srv) = Server::unix(&[]) else { return };
    for (i, v) in [Variant::II, Variant::I16, Variant::I32, Variant::SI, Variant::SI16, Variant::SS, Variant::IS, Variant::I16S]
        .into_iter()
        .enumerate()
    {
        // Small enough that inserts meet the max_entries limit (28 entries).
        compare(&srv.unix_url(&format!("plain{i}"), ""), &format!("plain{i}"), &Options::of(v, 20), 1 + i as u64, 3000);
        compare(&srv.unix_url(&format!("lru{i}"), ""), &format!("lru{i}"), &Options::of(v, 100).lru(12, 0), 100 + i as u64, 3000);
        compare(&srv.unix_url(&format!("ttl{i}"), ""), &format!("ttl{i}"), &Options::of(v, 100).ttl(3600), 200 + i as u64, 1500);
        compare(&srv.unix_url(&format!("both{i}"), ""), &format!("both{i}"), &Options::of(v, 100).lru(10, 0).ttl(3600), 300 + i as u64, 1500);
    }
}

#[test]
fn every_operation_answers_as_a_local_map_on_a_cluster_too() {
    let Some(c) = redis_server::Cluster::start(3, 0) else { return };
    for (i, v) in [Variant::SI, Variant::SS].into_iter().enumerate() {
        compare(&c.url(&format!("both{i}"), ""), "cluster", &Options::of(v, 100).lru(10, 0).ttl(3600), 400 + i as u64, 1500);
    }
}

#[test]
fn int64_counters_wrap_exactly_and_never_pass_through_a_double() {
    let Some(srv) = Server::unix(&[]) else { return };
    let mut m = Remote::open(&srv.unix_url("wrap", ""), &Options::of(Variant::II, 100)).unwrap();
    let k = In::Int(1);
    assert!(m.put(k, In::Int(9_007_199_254_740_993)).unwrap());
    assert_eq!(m.get(k).unwrap(), Some(Out::Int(9_007_199_254_740_993)), "2^53 + 1 survives");
    assert_eq!(m.incr_by(k, 2).unwrap(), 9_007_199_254_740_995);
    assert!(m.put(k, In::Int(i64::MAX - 1)).unwrap());
    assert_eq!(m.incr_by(k, 1).unwrap(), i64::MAX);
    assert_eq!(m.incr_by(k, 1).unwrap(), i64::MIN, "wraps up");
    assert_eq!(m.incr_by(k, -1).unwrap(), i64::MAX, "wraps down");
    assert!(m.put(k, In::Int(i64::MIN)).unwrap());
    assert_eq!(m.incr_by(k, i64::MIN).unwrap(), 0);
    assert_eq!(m.incr_by(k, i64::MAX).unwrap(), i64::MAX);
    assert_eq!(m.incr_by(k, i64::MAX).unwrap(), -2);
    assert_eq!(m.max(k, 9_007_199_254_740_993).unwrap(), 9_007_199_254_740_993);
    assert_eq!(m.max(k, 9_007_199_254_740_992).unwrap(), 9_007_199_254_740_993, "compared exactly");
    assert_eq!(m.min(k, -9_007_199_254_740_993).unwrap(), -9_007_199_254_740_993);
    assert_eq!(m.min(k, -9_007_199_254_740_992).unwrap(), -9_007_199_254_740_993);
    assert!(m.cas(k, In::Int(-9_007_199_254_740_993), In::Int(7)).unwrap());
    assert!(!m.cas(k, In::Int(-9_007_199_254_740_992), In::Int(8)).unwrap());
    let mut s = Remote::open(&srv.unix_url("wrap16", ""), &Options::of(Variant::SI16, 100)).unwrap();
    assert_eq!(s.incr_by(In::Str(b"c", false), 32767).unwrap(), 32767);
    assert_eq!(s.incr_by(In::Str(b"c", false), 1).unwrap(), -32768);
    assert_eq!(s.incr_by(In::Str(b"c", false), 70000).unwrap(), -32768 + 4464, "delta narrowed");
    let mut s32 = Remote::open(&srv.unix_url("wrap32", ""), &Options::of(Variant::I32, 100)).unwrap();
    assert_eq!(s32.incr_by(In::Int(1), i32::MAX as i64).unwrap(), i32::MAX as i64);
    assert_eq!(s32.incr_by(In::Int(1), 2).unwrap(), i32::MIN as i64 + 1);
}

#[test]
fn utf8_flags_round_trip_on_keys_and_values() {
    let Some(srv) = Server::unix(&[]) else { return };
    let mut m = Remote::open(&srv.unix_url("utf8", ""), &Options::of(Variant::SS, 100).lru(50, 0)).unwrap();
    assert!(m.put(In::Str(b"caf\xc3\xa9", true), In::Str(b"\xe2\x82\xac", true)).unwrap());
    assert!(m.put(In::Str(b"plain", false), In::Str(b"bytes \xff", false)).unwrap());
    // The key's identity is its bytes: the flag of a later put does not change it.
    assert!(m.put(In::Str(b"caf\xc3\xa9", false), In::Str(b"\xe2\x82\xac", true)).unwrap());
    let mut items = m.items().unwrap();
    items.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    let mut want = vec![
        (Value::Str(b"caf\xc3\xa9".to_vec(), true), Value::Str(b"\xe2\x82\xac".to_vec(), true)),
        (Value::Str(b"plain".to_vec(), false), Value::Str(b"bytes \xff".to_vec(), false)),
    ];
    want.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    assert_eq!(items, want);
    let mut seen = Vec::new();
    while let Some((k, v)) = m.each().unwrap() {
        seen.push((k.to_value(), v.to_value()));
    }
    assert_eq!(seen.len(), 2, "each visits both, then resets");
    // The second put promoted the first key: "plain" is the LRU tail now.
    assert_eq!(op(m.pop().unwrap()), Some((Value::Str(b"plain".to_vec(), false), Value::Str(b"bytes \xff".to_vec(), false))));
    assert_eq!(op(m.pop().unwrap()), Some((Value::Str(b"caf\xc3\xa9".to_vec(), true), Value::Str(b"\xe2\x82\xac".to_vec(), true))));
}

#[test]
fn reopening_checks_variant_and_shape_with_the_file_words() {
    let Some(srv) = Server::unix(&[]) else { return };
    let url = srv.unix_url("shape", "");
    let mut a = Remote::open(&url, &Options::of(Variant::II, 1000).ttl(60)).unwrap();
    a.put(In::Int(1), In::Int(2)).unwrap();
    let e = Remote::open(&url, &Options::of(Variant::SS, 1000)).err().unwrap();
    assert_eq!(e.to_string(), format!("{url}: variant mismatch (file=3, expected=10)"));
    // Attaching ignores the sizing arguments: the stored ones win.
    let mut b = Remote::open(&url, &Options::of(Variant::II, 5)).unwrap();
    assert_eq!(b.stats().unwrap().ttl, 60);
    assert_eq!(b.get(In::Int(1)).unwrap(), Some(Out::Int(2)));
    let e = Remote::open_sharded(&url, 4, &Options::of(Variant::II, 10)).err().unwrap();
    assert_eq!(e.to_string(), format!("{url}: shard set has 1 shards, opened with 4"));
    let surl = srv.unix_url("set", "");
    let mut s = Remote::open_sharded(&surl, 3, &Options::of(Variant::SI, 100)).unwrap();
    assert_eq!(s.shard_count(), 4);
    for i in 0..200 {
        assert_eq!(s.incr_by(In::Str(format!("k{i}").as_bytes(), false), i).unwrap(), i);
    }
    let e = Remote::open_sharded(&surl, 8, &Options::of(Variant::SI, 100)).err().unwrap();
    assert_eq!(e.to_string(), format!("{surl}: shard set has 4 shards, opened with 8"));
    let mut s2 = Remote::open_sharded(&surl, 4, &Options::of(Variant::SI, 100)).unwrap();
    assert_eq!(s2.get(In::Str(b"k77", false)).unwrap(), Some(Out::Int(77)), "same routing seed");
    assert_eq!(s2.len().unwrap(), 200);
    let e = Remote::open_readonly(&url, Variant::II).err().unwrap();
    assert!(e.to_string().contains("is not frozen: call ->freeze"), "{e}");
    a.freeze().unwrap();
    assert!(a.readonly());
    assert_eq!(b.put(In::Int(3), In::Int(3)).unwrap_err().kind(), ErrorKind::Frozen, "every handle refuses");
    assert_eq!(b.freeze().unwrap_err().to_string(), "cannot freeze a read-only handle");
    let e = Remote::open(&url, &Options::of(Variant::II, 5)).err().unwrap();
    assert!(e.to_string().ends_with("is frozen (read-only); open it with new_readonly"), "{e}");
    let mut ro = Remote::open_readonly(&url, Variant::II).unwrap();
    assert_eq!(ro.get(In::Int(1)).unwrap(), Some(Out::Int(2)));
    assert!(ro.frozen().unwrap() && ro.readonly());
    assert!(ro.unlink());
    let e = b.get_or_set(In::Int(9), In::Int(9)).unwrap_err();
    assert!(e.to_string().contains("map no longer exists"), "{e}");
}

#[test]
fn cursors_and_each_visit_every_entry_across_shards() {
    let Some(srv) = Server::unix(&[]) else { return };
    let mut s = Remote::open_sharded(&srv.unix_url("walk", ""), 4, &Options::of(Variant::II, 10_000)).unwrap();
    let pairs: Vec<(In, In)> = (0..1000).map(|i| (In::Int(i), In::Int(i * 3))).collect();
    assert_eq!(s.set_multi(&pairs).unwrap(), 1000);
    let mut c = RemoteCursor::default();
    let mut seen = std::collections::HashSet::new();
    while let Some((k, v)) = s.cursor_next(&mut c).unwrap() {
        let (Out::Int(k), Out::Int(v)) = (k, v) else { panic!() };
        assert_eq!(v, k * 3);
        seen.insert(k);
    }
    assert_eq!(seen.len(), 1000);
    assert!(s.cursor_next(&mut c).unwrap().is_none(), "stays exhausted");
    assert!(s.cursor_seek(&mut c, In::Int(500)).unwrap());
    assert_eq!(s.cursor_next(&mut c).unwrap(), Some((Out::Int(500), Out::Int(1500))), "seek works after exhaustion");
    assert!(!s.cursor_seek(&mut c, In::Int(5000)).unwrap());
    let mut n = 0;
    while s.each().unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, 1000);
    assert_eq!(s.items().unwrap().len(), 1000);
    assert_eq!(s.get_multi(&[In::Int(1), In::Int(2000), In::Int(999)]).unwrap(), vec![Some(Value::Int(3)), None, Some(Value::Int(2997))]);
    assert_eq!(s.remove_multi(&[In::Int(1), In::Int(2000), In::Int(999)]).unwrap(), 2);
    let drained = s.drain(10).unwrap();
    assert_eq!(drained.len(), 10);
    s.clear().unwrap();
    assert_eq!(s.len().unwrap(), 0);
}

#[test]
fn the_typed_api_opens_a_redis_url_with_every_operation() {
    use hashmap_shared::{Bytes, Map as TypedMap};
    let Some(srv) = Server::unix(&[]) else { return };
    let url = srv.unix_url("typed", "");
    let opts = Options::new(1000).file(&url);
    let mut hits: TypedMap<Bytes, i64> = TypedMap::open(&opts).unwrap();
    assert_eq!(hits.incr("/index.html", 1).unwrap(), 1);
    assert_eq!(hits.incr("/index.html", 41).unwrap(), 42);
    // Another handle on the same URL sees it, as another process on another machine would.
    let mut other: TypedMap<Bytes, i64> = TypedMap::open(&opts).unwrap();
    assert_eq!(other.get("/index.html").unwrap(), Some(42));
    assert_eq!(other.len(), 1);
    assert_eq!(other.try_len().unwrap(), 1);
    assert!(!other.has_lru() && !other.has_ttl() && !other.is_frozen() && !other.is_readonly());
    // The variant recorded in Redis is checked with the file words.
    let err = TypedMap::<i64, i64>::open(&opts).unwrap_err();
    assert_eq!(err.to_string(), format!("{}: variant mismatch (file=9, expected=3)", url));
    // Read-modify-write with closures.
    assert_eq!(hits.update_with("/index.html", |n| n * 2).unwrap(), Some(84));
    assert_eq!(hits.update_with("/missing", |_| unreachable!("absent")).unwrap(), None);
    assert_eq!(hits.get_or_insert_with("/about", || 7).unwrap(), 7);
    assert_eq!(hits.get_or_insert_with("/about", || unreachable!("present")).unwrap(), 7);
    assert_eq!(hits.alter("/about", |n| n.filter(|&n| n > 7)).unwrap(), None);
    assert!(!hits.contains_key("/about").unwrap());
    // A write by another handle between the read and the write is a conflict: nothing
    // written, the other handle's value kept.
    let err = hits
        .update_with("/index.html", |n| {
            other.put("/index.html", 1000).unwrap();
            n + 1
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(hits.get("/index.html").unwrap(), Some(1000));
    // Iteration, batches, removal.
    assert_eq!(hits.put_many(&[("a", 1), ("b", 2), ("c", 3)]).unwrap(), 3);
    let mut all: Vec<(Bytes, i64)> = hits.iter().collect();
    all.sort();
    assert_eq!(all.len(), 4);
    assert_eq!(all[0], (Bytes::from("/index.html"), 1000));
    let mut it = hits.iter();
    assert_eq!(it.by_ref().count(), 4);
    assert!(it.take_error().is_none(), "a complete walk");
    drop(it);
    assert_eq!(hits.delete_many(&["a", "b", "zz"]).unwrap(), 2);
    assert_eq!(hits.len(), 2);
    // A sharded set in Redis through Options::sharded.
    let mut set: TypedMap<i64, Bytes> = TypedMap::open(&Options::new(100).sharded(srv.unix_url("typedset", ""), 4)).unwrap();
    for i in 0..50 {
        set.put(i, format!("v{i}")).unwrap();
    }
    assert_eq!(set.len(), 50);
    assert_eq!(set.get(17).unwrap().unwrap(), "v17");
    assert!(set.unlink() && hits.unlink());
    // A server that cannot be reached: try_len says so, an iteration ends with the error.
    let mut gone: TypedMap<i64, i64> = TypedMap::open(&Options::new(10).file(srv.unix_url("gone", ""))).unwrap();
    gone.put(1, 1).unwrap();
    drop(srv);
    assert_eq!(gone.try_len().unwrap_err().kind(), ErrorKind::Io);
    let mut it = gone.iter();
    assert_eq!(it.next(), None);
    assert_eq!(it.take_error().map(|e| e.kind()), Some(ErrorKind::Io));
}

/// The URL of a new SI map `name` on `srv`, and two handles on it.
fn two_si_handles(srv: &Server, name: &str) -> (String, Remote, Remote) {
    let url = srv.unix_url(name, "");
    let a = Remote::open(&url, &Options::of(Variant::SI, 100)).unwrap();
    let b = Remote::open(&url, &Options::of(Variant::SI, 100)).unwrap();
    (url, a, b)
}

#[test]
fn a_map_without_a_write_token_takes_the_full_check_on_every_write() {
    // Maps made before the write token (meta field `w`, deleted by freeze) existed:
    // every mutator reads id and frozen instead, with the same answers.
    let Some(srv) = Server::unix(&[]) else { return };
    let (_, mut a, mut b) = two_si_handles(&srv, "token");
    a.put(In::Str(b"k", false), In::Int(1)).unwrap();
    let metas: Vec<String> = srv.cli(&["--scan", "--pattern", "*token*"]).lines().filter(|k| k.ends_with(":m")).map(String::from).collect();
    assert_eq!(metas.len(), 1, "{metas:?}");
    assert_eq!(srv.cli(&["HEXISTS", &metas[0], "w"]).trim(), "1", "a new map carries the token");
    srv.cli(&["HDEL", &metas[0], "w"]);
    assert!(a.put(In::Str(b"k", false), In::Int(2)).unwrap());
    assert_eq!(a.incr_by(In::Str(b"n", false), 5).unwrap(), 5);
    assert_eq!(b.get(In::Str(b"k", false)).unwrap(), Some(Out::Int(2)));
    a.freeze().unwrap();
    assert_eq!(b.put(In::Str(b"k", false), In::Int(3)).unwrap_err().kind(), ErrorKind::Frozen);
    assert_eq!(b.incr_by(In::Str(b"n", false), 1).unwrap_err().kind(), ErrorKind::Frozen);
    assert_eq!(srv.cli(&["HEXISTS", &metas[0], "w"]).trim(), "0");
}

#[test]
fn a_frozen_map_refuses_every_writer_that_held_the_token() {
    let Some(srv) = Server::unix(&[]) else { return };
    let (url, mut a, mut b) = two_si_handles(&srv, "frozen-token");
    assert!(b.put(In::Str(b"k", false), In::Int(1)).unwrap());
    assert_eq!(b.incr_by(In::Str(b"n", false), 1).unwrap(), 1);
    a.freeze().unwrap();
    // b opened (and wrote) before the freeze: its plain put and incr are refused too.
    assert_eq!(b.put(In::Str(b"k", false), In::Int(2)).unwrap_err().kind(), ErrorKind::Frozen);
    assert_eq!(b.incr_by(In::Str(b"n", false), 1).unwrap_err().kind(), ErrorKind::Frozen);
    assert_eq!(b.get(In::Str(b"k", false)).unwrap(), Some(Out::Int(1)));
    // unlinked and made anew: the old handle's writes find another id, not a token
    let mut ro = Remote::open_readonly(&url, Variant::SI).unwrap();
    assert!(ro.unlink());
    let mut c = Remote::open(&url, &Options::of(Variant::SI, 100)).unwrap();
    assert!(c.put(In::Str(b"k", false), In::Int(7)).unwrap());
    let e = b.incr_by(In::Str(b"k", false), 1).unwrap_err();
    assert!(e.to_string().contains("map no longer exists"), "{e}");
}
