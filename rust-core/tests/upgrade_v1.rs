//! upgrade_file on format version 1 files (our 0.17_01 development release): opening one
//! croaks naming upgrade_file; upgrade_file rebuilds it as version 2 keeping entries,
//! expiries, LRU order, statistics, the seal and the shard fields; a file in use is
//! refused and left as it was.
//!
//! The version 1 files are made by a small writer here (`to_v1`): version 1 and 2 share
//! the static header and every region, and differ only in where the header keeps the
//! lock, seqlock, table, arena and LRU words (layout.rs `off` for version 2, the
//! `V1_*` offsets below for version 1, as main's layout.rs at 7b5a238 has them) and in
//! what a reader slot holds. So a version 2 map, written by this engine and moved back
//! to the version 1 places, is byte for byte what the 0.17_01 engine would have left
//! for the same contents (checked by hand against files written by that engine).

use hashmap_shared::layout::{self, off, rd32, rd64, wr32, wr64};
use hashmap_shared::upgrade::{tmp_path, upgrade, upgrade_file, Outcome};
use hashmap_shared::{raw::{In, Map, Out, Variant}, Options};
use std::path::{Path, PathBuf};

// Version 1 header offsets of the words version 2 moved to the hot line.
const V1_WRITER: usize = 256;
const V1_SEALED: usize = 268;
const V1_SEQ: usize = 320; // u64
const V1_CAP: usize = 384;
const V1_SIZE: usize = 388;
const V1_TOMBS: usize = 392;
const V1_GENERATION: usize = 396;
const V1_ARENA_USED: usize = 512; // u64
const V1_ARENA_FREE: usize = 520; // u64
const V1_LRU_HEAD: usize = 704;
const V1_LRU_TAIL: usize = 708;


/// A version 2 file (no handle open) rewritten as version 1.
fn to_v1(p: &Path) {
    let mut b = std::fs::read(p).unwrap();
    let (cap, size, tombs, gen) = (rd32(&b, off::CAP), rd32(&b, off::SIZE), rd32(&b, off::TOMBS), rd32(&b, off::GENERATION));
    let (used, free) = (rd64(&b, off::ARENA_USED), rd64(&b, off::ARENA_FREE));
    let (head, tail, sealed) = (rd32(&b, off::LRU_HEAD), rd32(&b, off::LRU_TAIL), rd32(&b, off::SEALED));
    b[256..400].fill(0);
    wr32(&mut b, V1_SEALED, sealed);
    wr64(&mut b, V1_SEQ, 2 * 12345);
    wr32(&mut b, V1_CAP, cap);
    wr32(&mut b, V1_SIZE, size);
    wr32(&mut b, V1_TOMBS, tombs);
    wr32(&mut b, V1_GENERATION, gen);
    wr64(&mut b, V1_ARENA_USED, used);
    wr64(&mut b, V1_ARENA_FREE, free);
    wr32(&mut b, V1_LRU_HEAD, head);
    wr32(&mut b, V1_LRU_TAIL, tail);
    // version 1 reader slots: pid, depth, PID namespace, nonce; none in use
    b[4096..4096 + 1024 * 64 + 128].fill(0);
    wr32(&mut b, off::VERSION, 1);
    let check = layout::header_check(&b);
    wr64(&mut b, off::HDR_CHECK, check);
    std::fs::write(p, &b).unwrap();
}

fn workdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hm-upgrade-v1-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(x: &str) -> In<'_> {
    In::Str(x.as_bytes(), false)
}

#[test]
fn v1_files_are_refused_then_converted_with_everything() {
    let dir = workdir("full");
    let p = dir.join("lru-ttl.shm");
    let opts = Options::of(Variant::SS, 2000).file(&p).lru(500, 10).ttl(3600).arena_cap(1 << 20);
    let (want_order, want_items, stats) = {
        let mut m = Map::open(&opts).unwrap();
        for i in 0..700 {
            // 700 puts into an LRU of 500: 200 evictions; long and short strings
            let v = format!("value {i} {}", "x".repeat(i % 90));
            m.put(s(&format!("key{i}")), s(&v)).unwrap();
        }
        m.put_ttl(s("key650"), s("short-lived"), 5).unwrap();
        m.put_ttl(s("key651"), s("permanent"), 0).unwrap();
        m.remove(s("key699")).unwrap();
        m.get(s("key300")).unwrap(); // a hit (clock bit; no reordering)
        let order = m.lru_keys().unwrap();
        let mut items = m.items().unwrap();
        items.sort_by_key(|kv| format!("{kv:?}"));
        (order, items, m.stats())
    };
    assert!(stats.evictions >= 200);
    to_v1(&p);
    let before = std::fs::read(&p).unwrap();

    let e = Map::open(&opts).err().expect("a version 1 file must be refused").to_string();
    assert_eq!(
        e,
        format!(
            "{}: file was written by format version 1 (0.17_01); convert it with Data::HashMap::Shared->upgrade_file({})",
            p.display(),
            p.display()
        )
    );
    assert_eq!(std::fs::read(&p).unwrap(), before, "the refused file is left alone");

    match upgrade(&p).unwrap() {
        Outcome::Converted(r) => {
            assert_eq!(r.source_version, 1);
            assert_eq!(r.entries, want_items.len() as u64);
            assert_eq!(r.expired, 0);
        }
        Outcome::Current => panic!("not converted"),
    }
    assert!(!tmp_path(&p).exists());
    let mut m = Map::open(&opts).unwrap();
    assert!(m.verify().is_empty(), "{:?}", m.verify());
    let mut items = m.items().unwrap();
    items.sort_by_key(|kv| format!("{kv:?}"));
    assert_eq!(items, want_items, "every entry, byte for byte");
    assert_eq!(m.lru_keys().unwrap(), want_order, "the LRU order");
    let st = m.stats();
    assert_eq!((st.evictions, st.expired, st.recoveries), (stats.evictions, stats.expired, stats.recoveries));
    assert_eq!((st.max_size, st.ttl, st.arena_cap), (stats.max_size, stats.ttl, stats.arena_cap));
    assert_eq!(st.max_entries, stats.max_entries);
    let left = |m: &mut Map, k: &str| m.ttl_remaining(s(k)).unwrap();
    assert!(matches!(left(&mut m, "key650"), Some(4..=5)), "a short TTL keeps its remaining time");
    assert_eq!(left(&mut m, "key651"), Some(0), "a permanent entry stays permanent");
    assert!(matches!(left(&mut m, "key10"), None | Some(3590..=3600)));
    assert!(!upgrade_file(&p).unwrap(), "a version 2 file is current");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A version 1 writer that died inside the lock (writer word naming a dead pid, seq odd,
/// counts not yet updated): the conversion repairs first and counts the recovery.
#[test]
fn v1_file_left_mid_write_is_repaired() {
    let dir = workdir("midwrite");
    let p = dir.join("ii.shm");
    let opts = Options::of(Variant::II, 1000).file(&p);
    {
        let mut m = Map::open(&opts).unwrap();
        for i in 0..300 {
            m.put(In::Int(i), In::Int(i * 2)).unwrap();
        }
    }
    to_v1(&p);
    let mut b = std::fs::read(&p).unwrap();
    let dead = {
        // SAFETY: the child only calls _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: ends the child.
            unsafe { libc::_exit(0) };
        }
        // SAFETY: reaping our own child.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
        pid as u32
    };
    wr32(&mut b, V1_WRITER, 0x8000_0000 | dead);
    wr64(&mut b, V1_SEQ, 77);
    wr32(&mut b, V1_SIZE, 290); // an insert's count update not done
    std::fs::write(&p, &b).unwrap();
    assert!(upgrade_file(&p).unwrap());
    let mut m = Map::open(&opts).unwrap();
    assert!(m.verify().is_empty(), "{:?}", m.verify());
    assert_eq!(m.len(), 300);
    assert_eq!(m.get(In::Int(299)).unwrap(), Some(Out::Int(598)));
    assert_eq!(m.stats().recoveries, 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A version 1 file that a live process has open (its reader slot, or the writer word)
/// is refused, and left as it was.
#[test]
fn v1_file_in_use_is_refused() {
    let dir = workdir("inuse");
    let p = dir.join("si.shm");
    let opts = Options::of(Variant::SI, 100).file(&p);
    {
        let mut m = Map::open(&opts).unwrap();
        m.put(s("a"), In::Int(1)).unwrap();
        m.freeze().unwrap();
    }
    to_v1(&p);
    let good = std::fs::read(&p).unwrap();
    let me = std::process::id();
    let pd = p.display();
    for (what, at, v, want) in [
        (
            "reader slot",
            4096 + 3 * 64,
            me,
            format!("{pd}: in use by process {me} (reader slot 3); close every handle on the map and retry"),
        ),
        (
            "writer word",
            V1_WRITER,
            0x8000_0000 | me,
            format!("{pd}: locked by a live writer (pid {me}); stop every process using the map and retry"),
        ),
    ] {
        let mut b = good.clone();
        wr32(&mut b, at, v);
        if what == "reader slot" {
            b[4096 + 1024 * 64] = 1 << 3; // its bitmap bit
        }
        std::fs::write(&p, &b).unwrap();
        let e = upgrade_file(&p).unwrap_err().to_string();
        assert_eq!(e, want, "{what}");
        assert_eq!(std::fs::read(&p).unwrap(), b, "{what}: the file is left as it was");
        assert!(!tmp_path(&p).exists());
    }
    // A frozen version 1 map converts and stays frozen.
    std::fs::write(&p, &good).unwrap();
    assert!(upgrade_file(&p).unwrap());
    let e = Map::open(&opts).err().expect("frozen").to_string();
    assert!(e.contains("frozen"), "{e}");
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    let mut r = Map::open_readonly(&c, Variant::SI).unwrap();
    assert_eq!(r.get(s("a")).unwrap(), Some(Out::Int(1)));
    let _ = std::fs::remove_dir_all(&dir);
}
