//! The Rust API of shard sets, cursors and frozen maps (the Perl suite covers the
//! user-visible behaviour in depth: t/sharded.t, t/cursor.t, t/freeze.t).

use hashmap_shared::{raw::{Cursor, In, Map, Out, ShardSet, Variant}, ErrorKind, Options};
use std::ffi::CString;
use std::path::PathBuf;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hm-shards-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn cs(p: &std::path::Path) -> CString {
    CString::new(p.as_os_str().as_encoded_bytes()).unwrap()
}

#[test]
fn set_routes_every_key_to_one_shard_and_remembers_its_shape() {
    let d = dir("shape");
    let prefix = d.join("s");
    let o = Options::of(Variant::II, 1000);
    let mut set = ShardSet::open(&cs(&prefix), 3, &o).unwrap();
    assert_eq!(set.maps().len(), 4, "3 rounds up to 4");
    for k in 0..2000i64 {
        let i = set.route(In::Int(k));
        assert!(set.maps_mut()[i].put(In::Int(k), In::Int(k * 2)).unwrap());
    }
    let sizes: Vec<u64> = set.maps().iter().map(|m| m.len()).collect();
    assert_eq!(sizes.iter().sum::<u64>(), 2000);
    assert!(sizes.iter().all(|&n| n > 350), "keys spread over every shard: {sizes:?}");
    // A cursor chains the shards in order and sees every entry once.
    let mut c = Cursor::new();
    let mut n = 0;
    let mut last_shard_order = Vec::new();
    while let Some((k, _)) = c.next(set.maps_mut()) {
        let Out::Int(k) = k else { panic!("int key") };
        last_shard_order.push(k);
        n += 1;
    }
    assert_eq!(n, 2000);
    let shards: Vec<usize> = last_shard_order.iter().map(|&k| set.route(In::Int(k))).collect();
    assert!(shards.windows(2).all(|w| w[0] <= w[1]), "shard 0 first, then 1, 2, 3");
    assert!(c.exhausted());
    c.reset(set.maps_mut());
    drop(set);
    let err = ShardSet::open(&cs(&prefix), 8, &o).err().unwrap();
    assert_eq!(err.message(), format!("{}.0: shard set has 4 shards, opened with 8", prefix.display()));
    let err = ShardSet::open(&cs(&prefix), 5000, &o).err().unwrap();
    assert_eq!(err.message(), "num_shards 5000 exceeds the maximum of 4096");
}

#[test]
fn frozen_map_refuses_writes_and_opens_read_only() {
    let d = dir("frozen");
    let p = d.join("f.shm");
    let mut m = Map::open(&Options::of(Variant::SS, 100).file(&p)).unwrap();
    m.put(In::Str(b"k", false), In::Str(b"v", false)).unwrap();
    let mut other = Map::open(&Options::of(Variant::SS, 100).file(&p)).unwrap();
    assert!(Map::open_readonly(&cs(&p), Variant::SS).is_err(), "not frozen yet");
    m.freeze().unwrap();
    assert!(m.frozen() && m.readonly());
    assert!(other.frozen() && !other.readonly());
    let e = other.put(In::Str(b"x", false), In::Str(b"y", false)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Frozen);
    assert_eq!(e.message(), "map is frozen (read-only)");
    assert_eq!(m.freeze().unwrap_err().message(), "cannot freeze a read-only handle");
    let mut r = Map::open_readonly(&cs(&p), Variant::SS).unwrap();
    assert!(matches!(r.get(In::Str(b"k", false)).unwrap(), Some(Out::Str(b"v", false))));
    assert_eq!(r.stats().readonly, 1);
    assert_eq!(r.clear().unwrap_err().kind(), ErrorKind::Frozen);
}
