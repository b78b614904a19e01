//! Several processes, each with its own handle on one file, incrementing shared
//! counters (read-lock fast path and write-lock inserts) while others insert enough
//! keys to force resizes: the totals must be exact and no insert may be lost.

use hashmap_shared::{raw::{In, Map, Out, Variant}, Options};

const CHILDREN: usize = 4;
const ROUNDS: i64 = 20_000;
const KEYS: usize = 8;

fn key(i: usize) -> Vec<u8> {
    if i % 2 == 0 {
        format!("k{i}").into_bytes()
    } else {
        format!("a counter key long enough for the arena {i}").into_bytes()
    }
}

fn child(path: &std::path::Path, ii_path: &std::path::Path, c: usize) -> bool {
    let Ok(mut m) = Map::open(&Options::of(Variant::SI, 0).file(path)) else { return false };
    let Ok(mut ii) = Map::open(&Options::of(Variant::II, 0).file(ii_path)) else { return false };
    for r in 0..ROUNDS {
        for i in 0..KEYS {
            if m.incr_by(In::Str(&key(i), false), 1).is_err() {
                return false;
            }
        }
        if ii.incr_by(In::Int(r % 7), 2).is_err() {
            return false;
        }
        // Unique inserts: grow the tables while others count.
        let u = format!("child {c} entry {r}");
        if !m.put(In::Str(u.as_bytes(), false), In::Int(r)).unwrap_or(false) {
            return false;
        }
        if !ii.put(In::Int(1_000_000 * (c as i64 + 1) + r), In::Int(r)).unwrap_or(false) {
            return false;
        }
        // And a read that must never see a torn or missing value.
        match m.get(In::Str(u.as_bytes(), false)) {
            Ok(Some(Out::Int(v))) if v == r => {}
            _ => return false,
        }
    }
    true
}

#[test]
fn forked_children_count_exactly() {
    let dir = std::env::temp_dir();
    let path = dir.join(format!("hm-mp-{}.shm", std::process::id()));
    let ii_path = dir.join(format!("hm-mp-ii-{}.shm", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(&ii_path);
    let mut m = Map::open(&Options::of(Variant::SI, 100_000).file(&path)).unwrap();
    let mut ii = Map::open(&Options::of(Variant::II, 100_000).file(&ii_path)).unwrap();
    // Start barrier: children block reading the pipe until the parent closes it.
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two descriptors to fill.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let mut pids = Vec::new();
    for c in 0..CHILDREN {
        // SAFETY: the child only opens its own handles, works, and _exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let mut b = 0u8;
            // SAFETY: closing our copy of the write end, then blocking until EOF.
            unsafe {
                libc::close(fds[1]);
                libc::read(fds[0], (&mut b as *mut u8).cast(), 1);
            }
            let ok = child(&path, &ii_path, c);
            // SAFETY: leave the forked child without running the test harness.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        pids.push(pid);
    }
    // SAFETY: closing both ends in the parent releases the children at once.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    for pid in pids {
        let mut status = 0;
        // SAFETY: waiting for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child failed: {status}");
    }
    for i in 0..KEYS {
        assert_eq!(m.get(In::Str(&key(i), false)).unwrap(), Some(Out::Int(CHILDREN as i64 * ROUNDS)));
    }
    let mut total = 0;
    for r in 0..7 {
        if let Some(Out::Int(v)) = ii.get(In::Int(r)).unwrap() {
            total += v;
        }
    }
    assert_eq!(total, 2 * CHILDREN as i64 * ROUNDS);
    assert_eq!(m.len(), (KEYS + CHILDREN * ROUNDS as usize) as u64);
    assert_eq!(ii.len(), 7 + (CHILDREN * ROUNDS as usize) as u64);
    for c in 0..CHILDREN {
        for r in 0..ROUNDS {
            let u = format!("child {c} entry {r}");
            assert_eq!(m.get(In::Str(u.as_bytes(), false)).unwrap(), Some(Out::Int(r)));
            assert_eq!(ii.get(In::Int(1_000_000 * (c as i64 + 1) + r)).unwrap(), Some(Out::Int(r)));
        }
    }
    drop(m);
    drop(ii);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(&ii_path);
}
