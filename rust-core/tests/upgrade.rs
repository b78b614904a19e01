//! upgrade_file against real files written by the C implementation
//! (`shared/fixtures/c-format/{v9,v10}`, described by their MANIFEST.json): every fixture
//! is copied to a temporary directory (the fixtures are read-only and never copied
//! into the repository), upgraded, reopened with our engine and compared with the
//! manifest; damaged, locked and otherwise unacceptable copies are refused with the
//! right message and left byte-identical.
//!
//! The fixture folder is found through $HM_C_FIXTURES, else `../../shared/fixtures/
//! c-format` from this crate (the layout of a checkout with shared/ beside it), else
//! /work/shared/fixtures/c-format. When it is absent the tests print why and pass.

use hashmap_shared::cformat;
use hashmap_shared::upgrade::{tmp_path, upgrade, upgrade_file, Outcome};
use hashmap_shared::{In, Map, Options, Out, ShardSet, Value, Variant};
use serde_json::Value as J;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

fn fixtures_root() -> Option<PathBuf> {
    let cands = [
        std::env::var_os("HM_C_FIXTURES").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/c-format")),
        Some(PathBuf::from("/work/shared/fixtures/c-format")),
    ];
    cands.into_iter().flatten().find(|p| p.join("v10/MANIFEST.json").is_file() && p.join("v9/MANIFEST.json").is_file())
}

macro_rules! fixtures_or_skip {
    () => {
        match fixtures_root() {
            Some(r) => r,
            None => {
                eprintln!(
                    "SKIP: C-format fixtures not found (set HM_C_FIXTURES, or put shared/fixtures/c-format \
                     beside the checkout)"
                );
                return;
            }
        }
    };
}

fn workdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hm-upgrade-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn manifest(root: &Path, ver: &str) -> J {
    let s = std::fs::read_to_string(root.join(ver).join("MANIFEST.json")).unwrap();
    serde_json::from_str(&s).unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// A manifest key or value: a JSON integer (exact) or {"hex", "utf8"}.
fn jval(j: &J) -> Value {
    match j {
        J::Number(n) => Value::Int(n.as_i64().unwrap_or_else(|| panic!("not an i64: {n}"))),
        J::Object(o) => Value::Str(hex(o["hex"].as_str().unwrap()), o["utf8"].as_bool().unwrap()),
        _ => panic!("bad manifest value {j}"),
    }
}

fn jpairs(j: &J) -> Vec<(Value, Value)> {
    j.as_array().unwrap().iter().map(|p| (jval(&p[0]), jval(&p[1]))).collect()
}

fn order(a: &Value) -> (i64, Vec<u8>) {
    match a {
        Value::Int(i) => (*i, Vec::new()),
        Value::Str(b, _) => (0, b.clone()),
    }
}

fn sorted(mut v: Vec<(Value, Value)>) -> Vec<(Value, Value)> {
    v.sort_by_key(|a| order(&a.0));
    v
}

fn variant_named(name: &str) -> Variant {
    hashmap_shared::variant::ALL.iter().copied().find(|v| v.name() == name).unwrap()
}

fn u(j: &J) -> u64 {
    j.as_u64().unwrap_or_else(|| panic!("not a u64: {j}"))
}

fn no_tmp(p: &Path) {
    assert!(!tmp_path(p).exists(), "{} left behind", tmp_path(p).display());
}

/// Minimal SHA-256 (FIPS 180-4), to check the fixtures against their manifest.
fn sha256(data: &[u8]) -> String {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
        0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
        0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
        0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
        0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
        0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
        0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] =
        [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for chunk in msg.chunks(64) {
        let mut w = [0u32; 64];
        for i in 0..16 {
            w[i] = u32::from_be_bytes(chunk[4 * i..4 * i + 4].try_into().unwrap());
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
        }
        let mut v = h;
        for i in 0..64 {
            let s1 = v[4].rotate_right(6) ^ v[4].rotate_right(11) ^ v[4].rotate_right(25);
            let ch = (v[4] & v[5]) ^ (!v[4] & v[6]);
            let t1 = v[7].wrapping_add(s1).wrapping_add(ch).wrapping_add(K[i]).wrapping_add(w[i]);
            let s0 = v[0].rotate_right(2) ^ v[0].rotate_right(13) ^ v[0].rotate_right(22);
            let maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
            let t2 = s0.wrapping_add(maj);
            v = [t1.wrapping_add(t2), v[0], v[1], v[2], v[3].wrapping_add(t1), v[4], v[5], v[6]];
        }
        for i in 0..8 {
            h[i] = h[i].wrapping_add(v[i]);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

#[test]
fn sha256_works() {
    assert_eq!(sha256(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_eq!(sha256(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/// The reader alone (no engine): every fixture's entries, per-entry expiry, LRU order
/// and clock bits, options and counters, as the manifest says.
#[test]
fn reader_matches_manifests() {
    let root = fixtures_or_skip!();
    for ver in ["v9", "v10"] {
        let m = manifest(&root, ver);
        let fv = u(&m["format_version"]) as u32;
        for f in m["fixtures"].as_array().unwrap() {
            let name = f["name"].as_str().unwrap();
            let variant = variant_named(f["variant"].as_str().unwrap());
            let mut all = Vec::new();
            for fi in f["file_info"].as_array().unwrap() {
                let fname = fi["name"].as_str().unwrap();
                let bytes = std::fs::read(root.join(ver).join(fname)).unwrap();
                assert_eq!(sha256(&bytes), fi["sha256"].as_str().unwrap(), "{ver}/{fname} differs from its manifest");
                let c = cformat::parse(&bytes, fname).unwrap_or_else(|e| panic!("{ver}/{fname}: {e}"));
                let h = &fi["header"];
                assert_eq!(c.variant, variant);
                assert_eq!(c.header.version, fv);
                assert_eq!(c.header.size as u64, u(&h["size"]));
                assert_eq!(c.header.max_size as u64, u(&h["max_size"]));
                assert_eq!(c.header.default_ttl as u64, u(&h["default_ttl"]));
                assert_eq!(c.header.arena_cap, u(&h["arena_cap"]));
                assert_eq!(c.header.stat_evictions, u(&h["stat_evictions"]));
                assert_eq!(c.header.stat_expired, u(&h["stat_expired"]));
                assert_eq!(c.header.stat_recoveries as u64, u(&h["stat_recoveries"]));
                assert_eq!(c.header.lru_skip_mask as u64, u(&h["lru_skip_mask"]));
                assert_eq!(c.layout.arena_off, u(&h["arena_off"]));
                assert_eq!(
                    c.reported_max_entries() * f["files"].as_array().unwrap().len() as u64,
                    u(&f["max_entries"])
                );
                assert!(c.lru_intact);
                let got: Vec<(Value, Value)> = c.entries.iter().map(|e| (e.key.clone(), e.value.clone())).collect();
                if let Some(se) = f.get("shard_entries") {
                    assert_eq!(sorted(got.clone()), sorted(jpairs(&se[fname])), "{ver}/{fname}");
                }
                all.extend(c.entries.clone());
                if name == "ss-lru" {
                    // Tail first = the order pop returns.
                    assert_eq!(got, jpairs(&f["pop_order"]), "{ver}/{fname} LRU order");
                    let set: Vec<Vec<u8>> = c
                        .entries
                        .iter()
                        .filter(|e| e.accessed)
                        .map(|e| match &e.key {
                            Value::Str(b, _) => b.clone(),
                            _ => unreachable!(),
                        })
                        .collect();
                    let mut set = set;
                    set.sort();
                    assert_eq!(set, [b"key-03".to_vec(), b"key-25".to_vec(), b"key-29".to_vec()]);
                }
            }
            let permanent: Vec<(Value, Value)> =
                all.iter().filter(|e| e.expiry == 0).map(|e| (e.key.clone(), e.value.clone())).collect();
            assert_eq!(sorted(permanent), sorted(jpairs(&f["entries"])), "{ver}/{name}");
            let with_expiry: Vec<_> = all.iter().filter(|e| e.expiry != 0).collect();
            match f.get("ttl_entries") {
                Some(t) => {
                    let t = t.as_array().unwrap();
                    assert_eq!(with_expiry.len(), t.len());
                    for te in t {
                        let e = with_expiry.iter().find(|e| e.key == jval(&te["key"])).unwrap();
                        assert_eq!(e.value, jval(&te["value"]));
                        let r = &te["expiry_monotonic_s_range"];
                        assert!((u(&r[0])..=u(&r[1])).contains(&(e.expiry as u64)), "{ver}/{name} expiry");
                    }
                }
                None => assert!(with_expiry.is_empty()),
            }
        }
    }
}

/// Upgrades a copy of every fixture and compares the result with the manifest.
#[test]
fn upgrade_every_fixture() {
    let root = fixtures_or_skip!();
    let mut converted = 0;
    for ver in ["v9", "v10"] {
        let m = manifest(&root, ver);
        for f in m["fixtures"].as_array().unwrap() {
            let name = f["name"].as_str().unwrap();
            let dir = workdir(&format!("{ver}-{name}"));
            let variant = variant_named(f["variant"].as_str().unwrap());
            let files = f["file_info"].as_array().unwrap();
            let mut all: Vec<(Value, Value)> = Vec::new();
            for fi in files {
                let fname = fi["name"].as_str().unwrap();
                let h = &fi["header"];
                let p = dir.join(fname);
                let orig = std::fs::read(root.join(ver).join(fname)).unwrap();
                std::fs::write(&p, &orig).unwrap();
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
                let gid = std::fs::metadata(&p).unwrap().gid();
                let c = cformat::parse(&orig, fname).unwrap();
                let mono_before = cformat::now_monotonic_coarse();
                let r = upgrade(&p);
                let mono_after = cformat::now_monotonic_coarse();
                let rep = match r {
                    Ok(Outcome::Converted(rep)) => rep,
                    other => panic!("{ver}/{fname}: {other:?}"),
                };
                converted += 1;
                assert_eq!(rep.source_version, u(&h["version"]) as u32);
                assert_eq!(rep.variant, variant);
                no_tmp(&p);
                let md = std::fs::metadata(&p).unwrap();
                assert_eq!(md.mode() & 0o7777, 0o640, "{ver}/{fname}: mode kept");
                assert_eq!(md.gid(), gid);
                let after = std::fs::read(&p).unwrap();
                assert_eq!(&after[..8], b"HMSHRUST");

                // A second upgrade: already current, nothing touched.
                assert!(!upgrade_file(&p).unwrap());
                assert_eq!(std::fs::read(&p).unwrap(), after);

                if name == "ss-lru" {
                    // Before the gets below, which set every clock bit.
                    check_lru(&p, f, &dir);
                }
                let mut map =
                    Map::open(&Options::new(variant, 1).file(&p)).unwrap_or_else(|e| panic!("{ver}/{fname}: {e}"));
                let items = map.items().unwrap();
                let st = map.stats();
                let ttl_map = u(&h["default_ttl"]) > 0;
                if let Some(se) = f.get("shard_entries") {
                    assert_eq!(sorted(items.clone()), sorted(jpairs(&se[fname])), "{ver}/{fname}");
                }
                if !ttl_map {
                    assert_eq!(st.size, u(&h["size"]), "{ver}/{fname}");
                    assert_eq!(st.expired, u(&h["stat_expired"]));
                } else {
                    // Entries whose C expiry has passed on this boot were dropped and counted.
                    assert_eq!(st.size + rep.expired, u(&h["size"]));
                    assert_eq!(st.expired, u(&h["stat_expired"]) + rep.expired);
                }
                assert_eq!(st.size, items.len() as u64);
                assert_eq!(st.tombstones, 0);
                assert_eq!(st.max_size, u(&h["max_size"]));
                assert_eq!(st.ttl, u(&h["default_ttl"]));
                assert_eq!(st.evictions, u(&h["stat_evictions"]));
                assert_eq!(st.recoveries, u(&h["stat_recoveries"]));
                assert_eq!(st.arena_cap, u(&h["arena_cap"]), "{ver}/{fname}: arena_cap kept");
                assert_eq!(rep.arena_cap, u(&h["arena_cap"]));
                assert!(st.max_entries >= u(&h["max_table_cap"]) / 4 * 3, "{ver}/{fname}: max_entries");
                // Every entry reads back with get, bytes and flag exact.
                for (k, v) in &items {
                    let got = map.get(k.as_in()).unwrap().map(Out::to_value);
                    assert_eq!(got.as_ref(), Some(v));
                }
                if ttl_map {
                    check_ttl_entries(&mut map, &c, mono_before, mono_after, &rep);
                }
                all.extend(items);
                drop(map);
            }
            if files.iter().any(|fi| u(&fi["header"]["default_ttl"]) > 0) {
                // Only the permanent entries are certain (ttl_entries depend on the boot).
                for e in jpairs(&f["entries"]) {
                    assert!(all.contains(&e), "{ver}/{name}: {e:?} missing");
                }
            } else {
                assert_eq!(sorted(all.clone()), sorted(jpairs(&f["entries"])), "{ver}/{name}");
                assert_eq!(all.len() as u64, u(&f["size"]));
                assert_eq!(all.len() as u64, u(&f["entry_count"]));
            }
            if f.get("shard_entries").is_some() {
                // The converted files reopen as a shard set that routes every key to
                // the file the C implementation put it in (shard.rs).
                let named = &f["constructor"]["named"];
                let prefix = dir.join(named["prefix"].as_str().unwrap());
                let n = u(&named["shards"]);
                let cprefix = std::ffi::CString::new(prefix.as_os_str().as_encoded_bytes()).unwrap();
                let mut set = ShardSet::open(&cprefix, n, &Options::new(variant, 0)).unwrap();
                for (k, v) in jpairs(&f["entries"]) {
                    let got = set.route_mut(k.as_in()).get(k.as_in()).unwrap().map(Out::to_value);
                    assert_eq!(got.as_ref(), Some(&v), "{ver}/{name}: {k:?} through the C routing");
                }
                drop(set);
                let e = ShardSet::open(&cprefix, n * 2, &Options::new(variant, 0)).err().unwrap();
                assert_eq!(e.message(), format!("{}.0: shard set has {n} shards, opened with {}", prefix.display(), n * 2));
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    assert_eq!(converted, 2 * 18, "converted {converted} files");
}

/// Every entry that still had an expiry: gone (and counted) if its C expiry had passed
/// on this boot's monotonic clock, else present with the same remaining time.
fn check_ttl_entries(
    map: &mut Map,
    c: &cformat::CFile,
    before: u64,
    after: u64,
    rep: &hashmap_shared::upgrade::Report,
) {
    let mut dropped = 0;
    for e in c.entries.iter().filter(|e| e.expiry != 0) {
        let exp = e.expiry as u64;
        let left = map.ttl_remaining(e.key.as_in()).unwrap();
        if exp <= before {
            assert_eq!(left, None, "{:?} had expired", e.key);
            dropped += 1;
        } else if exp > after + 1 {
            let left = left.expect("live entry kept") as u64;
            // remaining = expiry - now (monotonic), give or take the seconds the
            // conversion and this check took.
            assert!(
                left + 2 >= exp - after && left <= exp - before,
                "{:?}: {left} s left, expiry {exp}, now {before}..{after}",
                e.key
            );
            assert_eq!(map.get(e.key.as_in()).unwrap().map(Out::to_value), Some(e.value.clone()));
        } else if left.is_none() {
            dropped += 1; // expired during the conversion: either outcome is right
        }
    }
    for e in c.entries.iter().filter(|e| e.expiry == 0) {
        assert_eq!(map.ttl_remaining(e.key.as_in()).unwrap(), Some(0), "{:?} stays permanent", e.key);
    }
    assert_eq!(rep.expired, dropped);
}

/// The LRU fixture: recency order, pop/shift order and the clock bits (eviction probe)
/// as the C implementation produced them.
fn check_lru(p: &Path, f: &J, dir: &Path) {
    let pop = jpairs(&f["pop_order"]);
    let mut m = Map::open(&Options::new(Variant::SS, 1).file(p)).unwrap();
    let head_first: Vec<Value> = pop.iter().rev().map(|(k, _)| k.clone()).collect();
    assert_eq!(m.lru_keys().unwrap(), head_first, "LRU order");
    drop(m);
    let copy = |n: &str| {
        let q = dir.join(n);
        std::fs::copy(p, &q).unwrap();
        Map::open(&Options::new(Variant::SS, 1).file(&q)).unwrap()
    };
    let mut m = copy("pop.shm");
    let mut got = Vec::new();
    while let Some((k, v)) = m.pop().unwrap() {
        got.push((k.to_value(), v.to_value()));
    }
    assert_eq!(got, pop, "pop order");
    let mut m = copy("shift.shm");
    let mut got = Vec::new();
    while let Some((k, v)) = m.shift().unwrap() {
        got.push((k.to_value(), v.to_value()));
    }
    assert_eq!(got, jpairs(&f["shift_order"]), "shift order");
    // Clock bits: fresh keys evict in the order the C map did.
    let mut m = copy("probe.shm");
    let want: Vec<(u64, Value)> = f["eviction_probe"]["evictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (u(&e["evicted_by_probe"]), jval(&e["key"])))
        .collect();
    let mut keys: Vec<Value> = m.items().unwrap().into_iter().map(|(k, _)| k).collect();
    let mut got = Vec::new();
    let last = want.last().unwrap().0;
    for n in 1..=last {
        let probe = format!("probe-{n:03}");
        assert!(m.put(In::Str(probe.as_bytes(), false), In::Str(b"p", false)).unwrap());
        let now: Vec<Value> = m.items().unwrap().into_iter().map(|(k, _)| k).collect();
        for k in keys.iter().filter(|k| !now.contains(k)) {
            if !matches!(k, Value::Str(b, _) if b.starts_with(b"probe-")) {
                got.push((n, k.clone()));
            }
        }
        keys = now;
    }
    assert_eq!(got, want, "eviction probe (clock bits)");
}

fn put32(b: &mut [u8], o: usize, x: u32) {
    b[o..o + 4].copy_from_slice(&x.to_le_bytes());
}
fn put64(b: &mut [u8], o: usize, x: u64) {
    b[o..o + 8].copy_from_slice(&x.to_le_bytes());
}
fn get64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// A pid that existed and has exited.
fn dead_pid() -> u32 {
    let mut c = std::process::Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

/// Writes `bytes` to `p`, upgrades, expects an error containing `want` (after the path
/// prefix) and checks the file is byte-identical and no temporary file is left.
fn refused(p: &Path, bytes: &[u8], want: &str) -> String {
    std::fs::write(p, bytes).unwrap();
    let e = upgrade_file(p).expect_err(want).to_string();
    let full = format!("{}: {want}", p.display());
    assert!(e.contains(&full), "got {e:?}, want {full:?}");
    assert!(std::fs::read(p).unwrap() == bytes, "source modified");
    no_tmp(p);
    e
}

#[test]
fn damaged_and_locked_copies_are_refused() {
    let root = fixtures_or_skip!();
    use cformat::hoff;
    for (ver, name) in [("v10", "ss-mixed.shm"), ("v9", "ss-mixed.shm"), ("v10", "ii-plain.shm"), ("v9", "si16.shm")] {
        let dir = workdir(&format!("refuse-{ver}-{name}"));
        let p = dir.join(name);
        let good = std::fs::read(root.join(ver).join(name)).unwrap();
        let n = good.len();
        let v: u32 = if ver == "v10" { 10 } else { 9 };
        refused(&p, &good[..n - 1], &format!("size mismatch (file={}, header={n})", n - 1));
        let mut b = good.clone();
        b.push(0);
        refused(&p, &b, &format!("size mismatch (file={}, header={n})", n + 1));
        refused(&p, &good[..255], "too small to be a HashMap file (255 bytes)");
        refused(&p, &good[..1000], "size mismatch (file=1000");
        refused(&p, &[], "too small to be a HashMap file (0 bytes)");
        let mut b = good.clone();
        b[1] ^= 0x40;
        refused(&p, &b, "bad magic (not a HashMap::Shared file)");
        for bad in [7u32, 8, 11, 0xFFFF_FFFF] {
            let mut b = good.clone();
            put32(&mut b, hoff::VERSION, bad);
            let e = refused(&p, &b, &format!("unsupported source version {bad} (migrates 9 -> 10 only)"));
            assert!(e.contains("formats 9 and 10"), "{e}");
        }
        let mut b = good.clone();
        put32(&mut b, hoff::VERSION, 19 - v); // 9 <-> 10: the layout no longer adds up
        refused(&p, &b, &format!("unexpected v{} layout; refusing to migrate", 19 - v));
        let mut b = good.clone();
        put64(&mut b, hoff::TOTAL_SIZE, n as u64 + 8);
        refused(&p, &b, &format!("size mismatch (file={n}, header={})", n + 8));
        let mut b = good.clone();
        put64(&mut b, hoff::READER_SLOTS_OFF, n as u64 - 100);
        refused(&p, &b, "reader-slot region out of range (corrupt header)");
        let mut b = good.clone();
        put64(&mut b, hoff::READER_SLOTS_OFF, u64::MAX - 8);
        refused(&p, &b, "reader-slot region out of range (corrupt header)");
        for (field, delta) in [(hoff::STATES_OFF, 8u64), (hoff::ARENA_OFF, 8), (hoff::NODES_OFF, 8)] {
            let mut b = good.clone();
            let x = get64(&b, field);
            put64(&mut b, field, x + delta);
            refused(&p, &b, &format!("unexpected v{v} layout; refusing to migrate"));
        }
        for (field, x) in [(hoff::VARIANT, 0u32), (hoff::VARIANT, 11), (hoff::NODE_SIZE, 24), (hoff::MAX_TABLE_CAP, 3)]
        {
            let mut b = good.clone();
            put32(&mut b, field, x);
            refused(&p, &b, &format!("unexpected v{v} layout; refusing to migrate"));
        }
        let mut b = good.clone();
        put32(&mut b, hoff::TABLE_CAP, 1 << 20);
        refused(&p, &b, "corrupt header (table capacity)");
        let mut b = good.clone();
        let size = u32::from_le_bytes(b[hoff::SIZE..hoff::SIZE + 4].try_into().unwrap());
        put32(&mut b, hoff::SIZE, size + 1);
        refused(&p, &b, &format!("corrupt table (size {}, but {size} live slots)", size + 1));

        // Writer lock word held by a live process (us), then by a dead one.
        let me = std::process::id();
        let mut b = good.clone();
        put32(&mut b, hoff::WLOCK, 0x8000_0000 | me);
        refused(&p, &b, &format!("locked by a live writer (pid {me}); "));
        let dead = dead_pid();
        put32(&mut b, hoff::WLOCK, 0x8000_0000 | dead);
        refused(&p, &b, &format!("holds a stale write lock from pid {dead}, which is gone. "));
        // A live process in a reader slot still has the map open.
        let mut b = good.clone();
        let rs = get64(&b, hoff::READER_SLOTS_OFF) as usize;
        put32(&mut b, rs + 16 * 3, me);
        refused(&p, &b, &format!("in use by process {me} (reader slot 3)"));
        put32(&mut b, rs + 16 * 3, dead);
        std::fs::write(&p, &b).unwrap();
        assert!(upgrade_file(&p).unwrap(), "a dead reader's slot does not block");

        // A string reference pointing outside the arena.
        if name.starts_with("ss") || name.starts_with("si") {
            let c = cformat::parse(&good, "x").unwrap();
            let e = c.entries.iter().find(|e| matches!(&e.key, Value::Str(k, _) if k.len() > 7)).unwrap();
            let node = c.layout.nodes_off as usize + e.slot as usize * c.layout.node_size as usize;
            let mut b = good.clone();
            put32(&mut b, node, (c.header.arena_cap - 4) as u32);
            refused(&p, &b, &format!("corrupt entry in slot {} (key: string at arena offset", e.slot));
            let mut b = good.clone();
            put32(&mut b, node + 4, 0x4000_0000 | 7 << 24 | 0xFFFFFF); // inline, 7 bytes: fine
            std::fs::write(&p, &b).unwrap();
            let _ = upgrade_file(&p); // may collide with another key: either way no panic
            no_tmp(&p);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn paths_that_are_not_c_files() {
    let root = fixtures_or_skip!();
    let dir = workdir("paths");
    let missing = dir.join("missing.shm");
    let e = upgrade_file(&missing).unwrap_err().to_string();
    assert_eq!(e, format!("open {}: No such file or directory", missing.display()));
    // A symlink is not followed.
    let target = dir.join("target.shm");
    std::fs::write(&target, std::fs::read(root.join("v10/ii-plain.shm")).unwrap()).unwrap();
    let link = dir.join("link.shm");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let e = upgrade_file(&link).unwrap_err().to_string();
    assert_eq!(e, format!("open {}: Too many levels of symbolic links", link.display()));
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    // Not regular files.
    let e = upgrade_file(&dir).unwrap_err().to_string();
    assert_eq!(e, format!("{}: not a regular file (a directory)", dir.display()));
    let fifo = dir.join("fifo");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: c is NUL-terminated.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let e = upgrade_file(&fifo).unwrap_err().to_string();
    assert_eq!(e, format!("{}: not a regular file (a FIFO)", fifo.display()));
    // Our own format: already current, untouched.
    let ours = dir.join("ours.shm");
    {
        let mut m = Map::open(&Options::new(Variant::SS, 10).file(&ours)).unwrap();
        m.put(In::Str(b"k", false), In::Str(b"v", true)).unwrap();
    }
    let before = std::fs::read(&ours).unwrap();
    assert!(!upgrade_file(&ours).unwrap());
    assert_eq!(std::fs::read(&ours).unwrap(), before);
    // An existing temporary file is neither reused nor removed.
    std::fs::write(tmp_path(&target), b"someone else's").unwrap();
    let before = std::fs::read(&target).unwrap();
    let e = upgrade_file(&target).unwrap_err().to_string();
    assert!(e.starts_with(&format!("create {}: File exists", tmp_path(&target).display())), "{e}");
    assert_eq!(std::fs::read(&target).unwrap(), before);
    assert_eq!(std::fs::read(tmp_path(&target)).unwrap(), b"someone else's");
    std::fs::remove_file(tmp_path(&target)).unwrap();
    assert!(upgrade_file(&target).unwrap());
    // The symlink now points at a converted file; upgrading through it is still refused.
    assert!(upgrade_file(&link).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn frozen_source_stays_frozen() {
    let root = fixtures_or_skip!();
    let dir = workdir("frozen");
    let p = dir.join("f.shm");
    let mut b = std::fs::read(root.join("v10/is-values.shm")).unwrap();
    b[cformat::hoff::SEALED] = 1;
    std::fs::write(&p, &b).unwrap();
    assert!(upgrade_file(&p).unwrap());
    let e = Map::open(&Options::new(Variant::IS, 1).file(&p)).err().expect("frozen").to_string();
    assert!(e.contains("frozen"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Random damage to a copy: never a panic; a refusal leaves the copy as it was; a
/// conversion gives a file our engine opens.
#[test]
fn random_damage() {
    let root = fixtures_or_skip!();
    let dir = workdir("fuzz");
    let mut x: u64 = 0x2545_F491_4F6C_DD1D ^ std::process::id() as u64;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let srcs = ["v10/ss-mixed.shm", "v9/ss-mixed.shm", "v10/si16.shm", "v9/ii-plain.shm", "v10/ss-lru.shm"];
    let (mut ok, mut err) = (0, 0);
    for i in 0..300 {
        let src = srcs[i % srcs.len()];
        let good = std::fs::read(root.join(src)).unwrap();
        let mut b = good.clone();
        for _ in 0..1 + rnd() % 3 {
            let at = match rnd() % 3 {
                0 => (rnd() % 256) as usize,
                1 => (rnd() % 4096) as usize % b.len(),
                _ => (rnd() % b.len() as u64) as usize,
            };
            b[at] = rnd() as u8;
        }
        let p = dir.join(format!("z{i}.shm"));
        std::fs::write(&p, &b).unwrap();
        match upgrade_file(&p) {
            Ok(true) => {
                ok += 1;
                let vid = u32::from_le_bytes(b[8..12].try_into().unwrap());
                let v = Variant::from_id(vid).unwrap();
                match Map::open(&Options::new(v, 1).file(&p)) {
                    Ok(mut m) => {
                        m.items().unwrap();
                    }
                    // The damage may have set the C seal byte: the seal is carried over.
                    Err(e) => assert!(b[cformat::hoff::SEALED] != 0 && e.message().contains("frozen"), "{e}"),
                }
            }
            Ok(false) => panic!("damaged C file reported as current"),
            Err(_) => {
                err += 1;
                assert!(std::fs::read(&p).unwrap() == b, "source modified on failure");
            }
        }
        no_tmp(&p);
        let _ = std::fs::remove_file(&p);
    }
    eprintln!("random damage: {ok} converted, {err} refused");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Expiries on this boot's monotonic clock: passed ones are dropped and counted in
/// stat_expired, future ones keep their remaining time, 0 stays permanent.
#[test]
fn ttl_expiries_are_carried_over() {
    let root = fixtures_or_skip!();
    for ver in ["v9", "v10"] {
        let dir = workdir(&format!("ttl-{ver}"));
        let p = dir.join("t.shm");
        let mut b = std::fs::read(root.join(ver).join("ii-ttl.shm")).unwrap();
        let c = cformat::parse(&b, "x").unwrap();
        let now = cformat::now_monotonic_coarse();
        let ttl_off = c.layout.ttl_off as usize;
        let mut with_exp: Vec<&cformat::CEntry> = c.entries.iter().filter(|e| e.expiry != 0).collect();
        with_exp.sort_by_key(|e| e.slot);
        assert_eq!(with_exp.len(), 4);
        let plan = [1u64, now.saturating_sub(5).max(1), now + 100, now + 1_000_000];
        for (e, x) in with_exp.iter().zip(plan) {
            put32(&mut b, ttl_off + 4 * e.slot as usize, x as u32);
        }
        std::fs::write(&p, &b).unwrap();
        let rep = match upgrade(&p).unwrap() {
            Outcome::Converted(r) => r,
            o => panic!("{o:?}"),
        };
        assert_eq!(rep.expired, 2);
        assert_eq!(rep.entries, c.entries.len() as u64 - 2);
        let mut m = Map::open(&Options::new(Variant::II, 1).file(&p)).unwrap();
        let st = m.stats();
        assert_eq!(st.expired, c.header.stat_expired + 2);
        assert_eq!(st.size, c.entries.len() as u64 - 2);
        assert_eq!(st.ttl, 3600);
        for (e, x) in with_exp.iter().zip(plan) {
            let left = m.ttl_remaining(e.key.as_in()).unwrap();
            if x <= now {
                assert_eq!(left, None);
                assert_eq!(m.get(e.key.as_in()).unwrap(), None);
            } else {
                let left = left.unwrap() as u64;
                assert!(left <= x - now && left + 3 >= x - now, "{left} vs {}", x - now);
                assert_eq!(m.get(e.key.as_in()).unwrap().map(Out::to_value), Some(e.value.clone()));
            }
        }
        for e in c.entries.iter().filter(|e| e.expiry == 0) {
            assert_eq!(m.ttl_remaining(e.key.as_in()).unwrap(), Some(0));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The stored promotion interval comes back as the percentage that skips the same
/// share of promotions.
#[test]
fn lru_skip_is_converted() {
    let root = fixtures_or_skip!();
    let dir = workdir("skip");
    for (mask, pct) in [(0u32, 0u32), (1, 50), (3, 75), (15, 94), (127, 99)] {
        let p = dir.join(format!("s{mask}.shm"));
        let mut b = std::fs::read(root.join("v10/ss-lru.shm")).unwrap();
        put32(&mut b, cformat::hoff::LRU_SKIP_MASK, mask);
        std::fs::write(&p, &b).unwrap();
        assert!(upgrade_file(&p).unwrap());
        let m = Map::open(&Options::new(Variant::SS, 1).file(&p)).unwrap();
        assert_eq!(m.layout().lru_skip, pct, "mask {mask}");
        assert_eq!(m.stats().max_size, 16);
        assert_eq!(m.stats().evictions, 24);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn more_entries_than_max_size_is_refused() {
    let root = fixtures_or_skip!();
    let dir = workdir("maxsize");
    let p = dir.join("m.shm");
    let mut b = std::fs::read(root.join("v9/ss-lru.shm")).unwrap();
    put32(&mut b, cformat::hoff::MAX_SIZE, 8);
    refused(&p, &b, "corrupt header (16 live entries, more than max_size 8)");
    let _ = std::fs::remove_dir_all(&dir);
}
