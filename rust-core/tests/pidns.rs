//! Maps are never shared across PID namespaces (issue 5): a pid in a lock word or reader
//! slot only means something in its own namespace, so a process of another namespace could
//! be taken for dead (and its lock stolen). Opening a map that a handle of another
//! namespace has open is refused; using a map one namespace after the other is fine.
//!
//! Needs CAP_SYS_ADMIN or an unprivileged user namespace to create a PID namespace; CI
//! runs as root. Children report through their exit code and leave with `_exit`.
#![cfg(not(loom))]

use hashmap_shared::{raw::{In, Map, Out, Variant}, Options};
use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("hms-pidns-{}-{name}.shm", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// Runs `f` in a grandchild that lives in a new PID namespace; returns its exit code, or
/// None when this machine does not let us create a PID namespace.
fn in_new_pidns(f: impl FnOnce() -> i32) -> Option<i32> {
    // SAFETY: the test process forks; the child only calls async-signal-safe functions
    // until it forks again, and the grandchild runs `f` then `_exit`s without unwinding.
    unsafe {
        let child = libc::fork();
        assert!(child >= 0);
        if child == 0 {
            if libc::unshare(libc::CLONE_NEWPID) != 0
                && (libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWPID) != 0)
            {
                libc::_exit(99);
            }
            let gc = libc::fork();
            if gc == 0 {
                let rc = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(98);
                libc::_exit(rc);
            }
            let mut st = 0;
            libc::waitpid(gc, &mut st, 0);
            libc::_exit(if libc::WIFEXITED(st) { libc::WEXITSTATUS(st) } else { 97 });
        }
        let mut st = 0;
        libc::waitpid(child, &mut st, 0);
        assert!(libc::WIFEXITED(st));
        match libc::WEXITSTATUS(st) {
            99 => None,
            rc => Some(rc),
        }
    }
}

fn open(p: &Path) -> hashmap_shared::Result<Map> {
    Map::open(&Options::of(Variant::II, 100).file(p))
}

#[test]
fn open_is_refused_while_another_namespace_has_the_map_open() {
    let p = tmp("busy");
    let mut m = open(&p).unwrap();
    m.put(In::Int(1), In::Int(10)).unwrap();
    let q = p.clone();
    let rc = in_new_pidns(move || match open(&q) {
        Ok(_) => 1,
        Err(e) if e.message().contains("another PID namespace") => 0,
        Err(_) => 2,
    });
    let Some(rc) = rc else {
        eprintln!("cannot create a PID namespace here (needs root or user namespaces)");
        return;
    };
    assert_eq!(rc, 0, "a handle from another PID namespace was let in (1) or refused with another error (2)");
    // the refused open left nothing behind: our handle still writes and reads
    m.put(In::Int(2), In::Int(20)).unwrap();
    assert!(matches!(m.get(In::Int(1)).unwrap(), Some(Out::Int(10))));
    drop(m);
    let _ = std::fs::remove_file(&p);
}

#[test]
fn a_map_passes_between_namespaces_when_nobody_else_has_it_open() {
    let p = tmp("idle");
    {
        let mut m = open(&p).unwrap();
        m.put(In::Int(1), In::Int(10)).unwrap();
    }
    let q = p.clone();
    let rc = in_new_pidns(move || {
        let Ok(mut m) = open(&q) else { return 1 };
        if !matches!(m.get(In::Int(1)), Ok(Some(Out::Int(10)))) {
            return 2;
        }
        if m.put(In::Int(2), In::Int(20)).is_err() {
            return 3;
        }
        0
    });
    let Some(rc) = rc else {
        eprintln!("cannot create a PID namespace here (needs root or user namespaces)");
        return;
    };
    assert_eq!(rc, 0);
    // and back: the other namespace's handle is gone, so we may open it again
    let mut m = open(&p).unwrap();
    assert!(matches!(m.get(In::Int(2)).unwrap(), Some(Out::Int(20))));
    drop(m);
    let _ = std::fs::remove_file(&p);
}
