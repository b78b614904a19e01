//! The typed API (`Map<K, V>`) as a user of the crate sees it: only the public items
//! (no `raw::`), on files, memfds and shard sets.

use hashmap_shared::{Bytes, BytesRef, ErrorKind, Map, Options};
use std::collections::{HashMap, HashSet};
use std::error::Error as _;
use std::os::fd::AsFd;
use std::path::PathBuf;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hm-typed-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn anon<K: hashmap_shared::Storable, V: hashmap_shared::Storable>(n: u64) -> Map<K, V> {
    Map::open(&Options::new(n)).unwrap()
}

#[test]
fn every_type_pair_is_its_perl_class_and_refuses_the_others() {
    let d = dir("variants");
    macro_rules! class {
        ($k:ty, $v:ty, $name:literal, $id:literal) => {{
            let p = d.join($name);
            let m: Map<$k, $v> = Map::open(&Options::new(10).file(&p)).unwrap();
            assert_eq!(Map::<$k, $v>::perl_class(), concat!("Data::HashMap::Shared::", $name));
            assert_eq!(m.path(), Some(p.as_path()));
            // A map of other types is refused with the words Perl users see.
            let other = if $id == 10 { 9 } else { 10 };
            let e = if $id == 10 {
                Map::<Bytes, i64>::open(&Options::new(10).file(&p)).unwrap_err()
            } else {
                Map::<Bytes, Bytes>::open(&Options::new(10).file(&p)).unwrap_err()
            };
            assert_eq!(e.kind(), ErrorKind::Format);
            assert_eq!(e.to_string(), format!("{}: variant mismatch (file={}, expected={other})", p.display(), $id));
        }};
    }
    class!(i16, i16, "I16", 1);
    class!(i32, i32, "I32", 2);
    class!(i64, i64, "II", 3);
    class!(i16, Bytes, "I16S", 4);
    class!(i32, Bytes, "I32S", 5);
    class!(i64, Bytes, "IS", 6);
    class!(Bytes, i16, "SI16", 7);
    class!(Bytes, i32, "SI32", 8);
    class!(Bytes, i64, "SI", 9);
    class!(Bytes, Bytes, "SS", 10);
}

#[test]
fn strings_go_in_as_text_or_bytes_and_come_out_with_their_flag() {
    let mut m: Map<Bytes, Bytes> = anon(100);
    m.put("text key", "välue").unwrap();
    m.put(b"byte key", b"\xff\xfe").unwrap();
    m.put(Bytes::with_utf8_flag("flagged bytes", true), BytesRef::with_utf8_flag(b"plain", false)).unwrap();
    let v = m.get("text key").unwrap().unwrap();
    assert_eq!((v.as_bytes(), v.utf8_flag()), ("välue".as_bytes(), true));
    assert_eq!(v.to_str(), Ok("välue"));
    let v = m.get_ref(b"byte key").unwrap().unwrap();
    assert_eq!((v.as_bytes(), v.utf8_flag()), (&b"\xff\xfe"[..], false));
    assert!(v.to_str().is_err());
    // Keys are their bytes: the flag is no part of the identity.
    assert!(m.contains_key(b"text key").unwrap());
    assert!(m.contains_key(BytesRef::with_utf8_flag(b"flagged bytes", false)).unwrap());
    // Every key keeps the flag it was stored with.
    let mut keys: Vec<(Vec<u8>, bool)> = m.keys().map(|k| (k.as_bytes().to_vec(), k.utf8_flag())).collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![(b"byte key".to_vec(), false), (b"flagged bytes".to_vec(), true), (b"text key".to_vec(), true)]
    );
    // Owned String and Vec<u8> arguments, empty and NUL-laden strings.
    m.put(String::from("s"), vec![0u8, 0, 1]).unwrap();
    m.put("", "").unwrap();
    assert_eq!(m.get(String::from("s")).unwrap().unwrap(), &b"\0\0\x01"[..]);
    assert_eq!(m.get("").unwrap().unwrap(), "");
}

#[test]
fn integers_keep_their_width_and_counters_wrap() {
    let mut m: Map<i16, i16> = anon(100);
    m.put(-1, i16::MAX).unwrap();
    assert_eq!(m.incr(-1, 1).unwrap(), i16::MIN, "two's complement at 16 bits");
    assert_eq!(m.incr(7, -3).unwrap(), -3, "a missing key starts at delta");
    assert_eq!(m.store_max(7, 5).unwrap(), 5);
    assert_eq!(m.store_max(7, 1).unwrap(), 5);
    assert_eq!(m.store_min(7, -9).unwrap(), -9);
    let mut w: Map<i64, i64> = anon(100);
    w.put(i64::MIN, i64::MAX).unwrap();
    assert_eq!(w.incr(i64::MIN, 1).unwrap(), i64::MIN);
    assert_eq!(w.get(i64::MIN).unwrap(), Some(i64::MIN));
    let mut s: Map<Bytes, i32> = anon(100);
    assert_eq!(s.incr("n", i32::MAX).unwrap(), i32::MAX);
    assert_eq!(s.incr("n", 2).unwrap(), i32::MIN + 1);
}

#[test]
fn conditional_writes_and_their_results() {
    let mut m: Map<i32, Bytes> = anon(100);
    assert!(m.add(1, "one").unwrap());
    assert!(!m.add(1, "uno").unwrap(), "present: not added");
    assert!(m.update(1, "uno").unwrap());
    assert!(!m.update(2, "two").unwrap(), "absent: not updated");
    assert_eq!(m.swap(1, "eins").unwrap().unwrap(), "uno");
    assert_eq!(m.swap(2, "zwei").unwrap(), None, "a new key has no old value");
    assert!(m.cas(2, "zwei", "deux").unwrap());
    assert!(!m.cas(2, "zwei", "due").unwrap());
    assert_eq!(m.remove_if_eq(2, "nope").unwrap(), None);
    assert_eq!(m.remove_if_eq(2, "deux").unwrap().unwrap(), "deux");
    assert_eq!(m.get_or_insert(3, "drei").unwrap(), "drei");
    assert_eq!(m.get_or_insert(3, "trois").unwrap(), "drei");
    assert_eq!(m.remove(3).unwrap().unwrap(), "drei");
    assert_eq!(m.remove(3).unwrap(), None);
    assert!(m.delete(1).unwrap());
    assert!(!m.delete(1).unwrap());
    assert!(m.is_empty());
    assert_eq!(m.put_many(&[(4, "vier"), (5, "fünf")]).unwrap(), 2);
    let got = m.get_many(&[5, 6, 4]).unwrap();
    assert_eq!(got, vec![Some(Bytes::from("fünf")), None, Some(Bytes::from("vier"))]);
    assert_eq!(m.delete_many(&[4, 6]).unwrap(), 1);
    assert_eq!(m.len(), 1);
}

#[test]
fn a_full_map_says_so() {
    let mut m: Map<i64, i64> = anon(10);
    let max = m.stats().max_entries as i64;
    for i in 0..max {
        m.put(i, i).unwrap();
    }
    let e = m.put(max, 0).unwrap_err();
    assert_eq!((e.kind(), e.message()), (ErrorKind::Full, "the map is full"));
    assert_eq!(m.incr(max, 1).unwrap_err().kind(), ErrorKind::Full);
    assert_eq!(m.get_or_insert(max, 1).unwrap_err().kind(), ErrorKind::Full);
    assert_eq!(m.get_or_insert_with(max, || 1).unwrap_err().kind(), ErrorKind::Full);
    assert_eq!(m.alter(max, |_| Some(1)).unwrap_err().kind(), ErrorKind::Full);
    assert!(!m.add(max, 0).unwrap());
    m.put(0, 42).unwrap(); // an overwrite needs no room
    assert_eq!(m.len() as i64, max);
    // A string that does not fit in the arena: put fails, update_with keeps the old value.
    let mut s: Map<i64, Bytes> = Map::open(&Options::new(10).arena_cap(4096)).unwrap();
    s.put(1, "a value longer than seven bytes").unwrap();
    let big = vec![b'x'; 8192];
    assert_eq!(s.put(2, &big).unwrap_err().kind(), ErrorKind::Full);
    assert_eq!(s.update_with(1, |_| Bytes::new(big.clone())).unwrap_err().kind(), ErrorKind::Full);
    assert_eq!(s.get(1).unwrap().unwrap(), "a value longer than seven bytes");
}

#[test]
fn closures_read_modify_write_with_one_lookup() {
    let mut m: Map<Bytes, Bytes> = anon(100);
    let mut calls = 0;
    let v = m.get_or_insert_with("k", || {
        calls += 1;
        Bytes::from("first")
    });
    assert_eq!(v.unwrap(), "first");
    assert_eq!(m.get_or_insert_with("k", || unreachable!("present")).unwrap(), "first");
    assert_eq!(calls, 1);
    let v = m.update_with("k", |old| {
        assert!(old.utf8_flag());
        Bytes::from(format!("{}+", old.to_str().unwrap()))
    });
    assert_eq!(v.unwrap().unwrap(), "first+");
    assert_eq!(m.update_with("absent", |_| unreachable!()).unwrap(), None);
    assert!(!m.contains_key("absent").unwrap());
    // alter: insert, change, remove.
    assert_eq!(m.alter("a", |cur| { assert!(cur.is_none()); Some(Bytes::from("1")) }).unwrap().unwrap(), "1");
    assert_eq!(m.alter("a", |cur| cur.map(|c| Bytes::from(format!("{}1", c.to_str().unwrap())))).unwrap().unwrap(), "11");
    assert_eq!(m.alter("a", |_| None).unwrap(), None);
    assert!(!m.contains_key("a").unwrap());
    assert_eq!(m.alter("never", |_| None).unwrap(), None);
}

#[test]
fn update_with_loses_no_update_between_handles() {
    // Four threads, each with its own handle on one memfd map, append to one string
    // value: every append must be in the final value.
    let m: Map<Bytes, Bytes> = Map::open(&Options::new(100).memfd("typed-rmw")).unwrap();
    let fd = m.memfd().unwrap().try_clone_to_owned().unwrap();
    let mut m = m;
    m.put("log", "").unwrap();
    std::thread::scope(|s| {
        for t in 0..4u8 {
            let fd = &fd;
            s.spawn(move || {
                let mut h: Map<Bytes, Bytes> = Map::from_fd(fd.as_fd()).unwrap();
                for _ in 0..500 {
                    h.update_with("log", |old| {
                        let mut v = old.as_bytes().to_vec();
                        v.push(b'a' + t);
                        Bytes::new(v)
                    })
                    .unwrap();
                }
            });
        }
    });
    let log = m.get("log").unwrap().unwrap();
    assert_eq!(log.len(), 2000);
    for t in 0..4u8 {
        assert_eq!(log.iter().filter(|&&b| b == b'a' + t).count(), 500);
    }
}

#[test]
fn iterators_cursors_and_snapshots() {
    let mut m: Map<i64, Bytes> = anon(1000);
    for i in 0..300 {
        m.put(i, format!("v{i}")).unwrap();
    }
    let all: HashMap<i64, Bytes> = m.iter().collect();
    assert_eq!(all.len(), 300);
    assert_eq!(all[&42], "v42");
    assert_eq!(m.keys().collect::<HashSet<_>>(), (0..300).collect());
    assert_eq!(m.values().filter(|v| v.starts_with(b"v1")).count(), 111);
    let mut snap = m.to_vec().unwrap();
    snap.sort();
    assert_eq!(snap.len(), 300);
    assert_eq!(snap[7], (7, Bytes::from("v7")));
    let mut total = 0;
    m.for_each(|k, v| total += k as usize + v.len()).unwrap();
    assert_eq!(total, (0..300).sum::<usize>() + snap.iter().map(|(_, v)| v.len()).sum::<usize>());
    // for ... in &mut map
    let mut n = 0;
    for (_k, _v) in &mut m {
        n += 1;
    }
    assert_eq!(n, 300);
    // A cursor stays exhausted until reset; seek starts at a key.
    let mut it = m.iter();
    assert_eq!(it.by_ref().count(), 300);
    assert!(it.is_exhausted());
    assert_eq!(it.next(), None);
    it.reset();
    assert_eq!(it.by_ref().count(), 300);
    assert!(it.seek(150).unwrap());
    assert_eq!(it.next().map(|(k, _)| k), Some(150));
    assert!(!it.seek(100_000).unwrap());
}

#[test]
fn iteration_during_removals_by_another_handle_misses_nothing_that_stays() {
    let d = dir("iter-removals");
    let p = d.join("m.shm");
    let opts = Options::new(10_000).file(&p);
    let mut m: Map<i64, i64> = Map::open(&opts).unwrap();
    for i in 0..4000 {
        m.put(i, i).unwrap();
    }
    // 4000 entries in 8192 slots: removing up to 1000 leaves the table more than a
    // quarter full, so no shrink (a resize) restarts the walk.
    assert_eq!(m.stats().capacity, 8192);
    let mut other: Map<i64, i64> = Map::open(&opts).unwrap();
    let mut seen = Vec::new();
    for (i, (k, _)) in m.iter().enumerate() {
        seen.push(k);
        if i % 4 == 0 {
            // Another handle removes an odd key the cursor may or may not have passed.
            other.delete(((i as i64 * 7) % 4000) | 1).unwrap();
        }
    }
    assert_eq!(m.stats().capacity, 8192, "no resize happened");
    assert!(m.len() < 4000, "the other handle removed entries meanwhile");
    let unique: HashSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no entry returned twice");
    for k in (0..4000).step_by(2) {
        assert!(unique.contains(&k), "even key {k}, never removed, was returned");
    }
}

#[test]
fn pop_drain_and_the_lru_queue() {
    let mut q: Map<i64, Bytes> = Map::open(&Options::new(100).lru(3, 0)).unwrap();
    for i in 1..=3 {
        q.put(i, format!("job {i}")).unwrap();
    }
    assert_eq!(q.get(1).unwrap().unwrap(), "job 1"); // used: 2 is now the oldest
    q.put(4, "job 4").unwrap(); // at the bound: one goes
    assert_eq!(q.stats().evictions, 1);
    assert!(q.has_lru() && !q.has_ttl());
    let (k, _) = q.pop_oldest().unwrap().unwrap();
    assert_eq!(k, 3);
    assert_eq!(q.pop_newest().unwrap().unwrap().0, 4);
    assert_eq!(q.drain(10).unwrap(), vec![(1, Bytes::from("job 1"))]);
    assert_eq!(q.pop_oldest().unwrap(), None);
}

#[test]
fn ttl_operations() {
    let mut m: Map<Bytes, i64> = Map::open(&Options::new(100).ttl(60)).unwrap();
    m.put("d", 1).unwrap();
    m.put_ttl("p", 2, 0).unwrap();
    assert!(m.add_ttl("s", 3, 5).unwrap());
    assert_eq!(m.ttl_remaining("d").unwrap(), Some(60));
    assert_eq!(m.ttl_remaining("p").unwrap(), Some(0));
    assert_eq!(m.get_with_ttl("s").unwrap(), Some((3, Some(5))));
    assert!(m.update_ttl("s", 4, 9).unwrap());
    assert_eq!(m.ttl_remaining("s").unwrap(), Some(9));
    assert!(m.set_ttl("d", 7).unwrap());
    assert!(m.persist("s").unwrap());
    assert!(m.touch("d").unwrap());
    assert_eq!(m.ttl_remaining("d").unwrap(), Some(60), "touch restarts at the default");
    assert_eq!(m.ttl_remaining("missing").unwrap(), None);
    assert_eq!(m.flush_expired().unwrap(), 0);
    // A map without TTL refuses per-entry TTLs.
    let mut plain: Map<Bytes, i64> = anon(10);
    let e = plain.put_ttl("x", 1, 5).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert_eq!(e.message(), "operation requires a TTL-enabled map (pass ttl > 0 to constructor)");
    assert_eq!(plain.ttl_remaining("x").unwrap(), None);
}

#[test]
fn shard_sets_behind_one_handle() {
    let d = dir("shards");
    let prefix = d.join("set");
    let opts = Options::new(1000).sharded(&prefix, 3);
    let mut m: Map<Bytes, i64> = Map::open(&opts).unwrap();
    assert_eq!(m.path(), Some(prefix.as_path()));
    for i in 0..2000 {
        m.incr(format!("k{i}"), i).unwrap();
    }
    for i in 0..4 {
        assert!(d.join(format!("set.{i}")).exists(), "3 rounds up to 4 shards");
    }
    let mut again: Map<Bytes, i64> = Map::open(&opts).unwrap();
    assert_eq!(again.get("k1999").unwrap(), Some(1999));
    assert_eq!(again.iter().count(), 2000);
    assert_eq!(again.len(), 2000);
    let e = Map::<Bytes, i64>::open(&Options::new(1000).sharded(&prefix, 8)).unwrap_err();
    assert_eq!(e.message(), format!("{}.0: shard set has 4 shards, opened with 8", prefix.display()));
    let e = Map::<Bytes, Bytes>::open(&opts).unwrap_err();
    assert_eq!(e.message(), format!("{}.0: variant mismatch (file=9, expected=10)", prefix.display()));
    m.clear().unwrap();
    assert!(again.is_empty());
    assert!(m.unlink());
    assert!(!d.join("set.0").exists());
}

#[test]
fn memfd_and_descriptors() {
    let mut a: Map<i32, i32> = Map::open(&Options::new(100).memfd("typed")).unwrap();
    assert_eq!(a.path(), None);
    a.put(1, 2).unwrap();
    let fd = a.memfd().expect("a memfd map keeps its descriptor");
    let mut b: Map<i32, i32> = Map::from_fd(fd).unwrap();
    assert_eq!(b.get(1).unwrap(), Some(2));
    // The descriptor is checked like a file.
    let e = Map::<i64, i64>::from_fd(fd).unwrap_err();
    assert_eq!(e.message(), "fd: variant mismatch (file=2, expected=3)");
    let anon: Map<i32, i32> = anon(10);
    assert!(anon.memfd().is_none());
}

#[test]
fn frozen_maps_open_read_only_without_locks() {
    let d = dir("frozen");
    let p = d.join("f.shm");
    let mut m: Map<Bytes, Bytes> = Map::open(&Options::new(100).file(&p)).unwrap();
    m.put("k", "v").unwrap();
    assert_eq!(Map::<Bytes, Bytes>::open_readonly(&p).unwrap_err().message(), format!(
        "{} is not frozen: call ->freeze on the producer before opening read-only",
        p.display()
    ));
    m.freeze().unwrap();
    assert!(m.is_frozen() && m.is_readonly());
    let mut r = Map::<Bytes, Bytes>::open_readonly(&p).unwrap();
    assert_eq!(r.get("k").unwrap().unwrap(), "v");
    let e = r.put("k", "w").unwrap_err();
    assert_eq!((e.kind(), e.message()), (ErrorKind::Frozen, "map is frozen (read-only)"));
}

#[test]
fn errors_carry_the_system_error() {
    let e = Map::<i64, i64>::open(&Options::new(10).file("/nonexistent-dir/x.shm")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io);
    assert_eq!(e.message(), "create(/nonexistent-dir/x.shm): No such file or directory");
    assert_eq!(e.raw_os_error(), Some(2)); // ENOENT
    let io = e.source().unwrap().downcast_ref::<std::io::Error>().unwrap();
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    let io: std::io::Error = e.clone().into();
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    // Errors without a system call behind them have no source.
    let e = Map::<i64, i64>::open(&Options::new(10).file("a\0b")).unwrap_err();
    assert_eq!((e.kind(), e.message()), (ErrorKind::InvalidArgument, "path contains a NUL byte"));
    assert!(e.source().is_none() && e.raw_os_error().is_none());
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<hashmap_shared::Error>();
}

#[test]
fn handles_move_between_threads() {
    fn send<T: Send>() {}
    send::<Map<Bytes, Bytes>>();
    send::<Map<i16, i16>>();
    let mut m: Map<i64, i64> = anon(10);
    m.put(1, 1).unwrap();
    let m = std::thread::spawn(move || {
        m.incr(1, 1).unwrap();
        m
    })
    .join()
    .unwrap();
    assert_eq!(m.len(), 1);
}
