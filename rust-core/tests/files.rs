//! Backings and header validation: create-or-attach, modes, zero-length files,
//! interrupted creates, every header error, C-format files, memfd / fd / anonymous
//! maps, sync, unlink, page release.

use hashmap_shared::{raw::{Backing, In, Map, Out, Variant}, ErrorKind, Options};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hm-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    p
}

fn open_err(o: &Options) -> String {
    match Map::open(o) {
        Ok(_) => panic!("open succeeded"),
        Err(e) => e.to_string(),
    }
}

fn s(b: &[u8]) -> In<'_> {
    In::Str(b, false)
}

#[test]
fn create_then_attach_ignores_sizing() {
    let p = tmp("attach.shm");
    {
        let mut m = Map::open(&Options::of(Variant::SS, 1000).file(&p)).unwrap();
        assert_eq!(m.backing(), Backing::File);
        assert_eq!(m.memfd(), -1);
        assert_eq!(m.path().unwrap().to_bytes(), p.as_os_str().as_encoded_bytes());
        assert!(m.put(s(b"k"), s(b"a value longer than seven")).unwrap());
    }
    let mut m = Map::open(&Options::of(Variant::SS, 5).file(&p).arena_cap(1 << 20)).unwrap();
    let st = m.stats();
    assert_eq!(st.max_entries, 1792);
    assert_eq!(st.arena_cap, 128_000);
    assert_eq!(st.mmap_size, std::fs::metadata(&p).unwrap().len());
    assert_eq!(m.get(s(b"k")).unwrap(), Some(Out::Str(b"a value longer than seven", false)));
    // Two handles in one process see each other's writes.
    let mut m2 = Map::open(&Options::of(Variant::SS, 0).file(&p)).unwrap();
    assert!(m2.put(s(b"k2"), s(b"v2")).unwrap());
    assert_eq!(m.get(s(b"k2")).unwrap(), Some(Out::Str(b"v2", false)));
    assert!(m.unlink());
    assert!(!m2.unlink());
    // The mapping stays valid after unlink.
    assert!(m2.get(s(b"k")).unwrap().is_some());
}

#[test]
fn file_mode_is_exact() {
    // SAFETY: umask only affects this process's file creation mode mask.
    let old = unsafe { libc::umask(0o077) };
    let p = tmp("mode.shm");
    drop(Map::open(&Options::of(Variant::II, 10).file(&p).file_mode(0o640)).unwrap());
    assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777, 0o640);
    // Attaching never changes the mode.
    drop(Map::open(&Options::of(Variant::II, 10).file(&p).file_mode(0o666)).unwrap());
    assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777, 0o640);
    let p2 = tmp("mode-default.shm");
    drop(Map::open(&Options::of(Variant::II, 10).file(&p2)).unwrap());
    assert_eq!(std::fs::metadata(&p2).unwrap().permissions().mode() & 0o7777, 0o600);
    // SAFETY: restores the mask.
    unsafe { libc::umask(old) };
}

#[test]
fn zero_length_file_is_initialised() {
    let p = tmp("empty.shm");
    std::fs::File::create(&p).unwrap();
    let mut m = Map::open(&Options::of(Variant::II, 100).file(&p)).unwrap();
    assert!(m.put(In::Int(1), In::Int(2)).unwrap());
    assert_eq!(m.stats().max_entries, 112);
}

#[test]
fn foreign_empty_file_is_refused() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return; // needs root to give a file away
    }
    let p = tmp("foreign.shm");
    std::fs::File::create(&p).unwrap();
    std::os::unix::fs::chown(&p, Some(4242), None).unwrap();
    let e = open_err(&Options::of(Variant::II, 100).file(&p));
    assert_eq!(e, format!("{}: refusing to initialize file not owned by us", p.display()));
}

#[test]
fn header_errors() {
    let p = tmp("hdr.shm");
    let pd = p.display().to_string();
    drop(Map::open(&Options::of(Variant::SS, 100).file(&p)).unwrap());
    let good = std::fs::read(&p).unwrap();
    let o = |v| Options::of(v, 100).file(&p);

    assert_eq!(open_err(&o(Variant::II)), format!("{pd}: variant mismatch (file=10, expected=3)"));

    let mut b = good.clone();
    b[8] = 3;
    std::fs::write(&p, &b).unwrap();
    assert_eq!(open_err(&o(Variant::SS)), format!("{pd}: version mismatch (file=3, expected=2)"));

    // A version 1 file (our 0.17_01 development release) names the conversion.
    let mut b = good.clone();
    b[8] = 1;
    std::fs::write(&p, &b).unwrap();
    assert_eq!(
        open_err(&o(Variant::SS)),
        format!("{pd}: file was written by format version 1 (0.17_01); convert it with Data::HashMap::Shared->upgrade_file({pd})")
    );

    let mut b = good.clone();
    b[100] ^= 0x40;
    std::fs::write(&p, &b).unwrap();
    assert_eq!(open_err(&o(Variant::SS)), format!("{pd}: corrupt header"));

    let mut b = good.clone();
    b.extend_from_slice(&[0u8; 4096]);
    std::fs::write(&p, &b).unwrap();
    assert_eq!(open_err(&o(Variant::SS)), format!("{pd}: corrupt header"));

    std::fs::write(&p, &good[..100]).unwrap();
    assert_eq!(open_err(&o(Variant::SS)), format!("{pd}: file too small (100 bytes, need 4096)"));

    let garbage: Vec<u8> = (0..20000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 | 1).collect();
    std::fs::write(&p, &garbage).unwrap();
    assert_eq!(open_err(&o(Variant::SS)), format!("{pd}: bad magic (not a HashMap::Shared file)"));

    let mut c = vec![0u8; 8192];
    c[..8].copy_from_slice(&[0x31, 0x4D, 0x48, 0x53, 9, 0, 0, 0]);
    std::fs::write(&p, &c).unwrap();
    assert_eq!(
        open_err(&o(Variant::SS)),
        format!(
            "{pd}: file was written by the C implementation (format v9); convert it with \
             Data::HashMap::Shared->upgrade_file({pd})"
        )
    );
    let e = Map::open(&o(Variant::SS)).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Format);

    // Validation also covers fd-attached maps, with the "fd" prefix.
    let f = std::fs::OpenOptions::new().read(true).write(true).open(&p).unwrap();
    use std::os::fd::AsRawFd;
    let e = open_err(&Options::of(Variant::SS, 0).from_fd(f.as_raw_fd()));
    assert!(e.starts_with("fd: file was written by the C implementation (format v9)"), "{e}");
    std::fs::write(&p, &good).unwrap();
    let e = open_err(&Options::of(Variant::II, 0).from_fd(f.as_raw_fd()));
    assert_eq!(e, "fd: variant mismatch (file=10, expected=3)");
}

#[test]
fn real_c_fixture_files_are_recognised() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/c-format");
    for (ver, file) in [("v10", "ii-plain.shm"), ("v9", "ss-mixed.shm")] {
        let p = dir.join(ver).join(file);
        if !p.exists() {
            continue;
        }
        // Open a copy: attaching takes an exclusive flock and needs write access.
        let q = tmp(&format!("c-{ver}-{file}"));
        std::fs::copy(&p, &q).unwrap();
        let e = open_err(&Options::of(Variant::II, 0).file(&q));
        let n = &ver[1..];
        assert_eq!(
            e,
            format!(
                "{0}: file was written by the C implementation (format v{n}); convert it with \
                 Data::HashMap::Shared->upgrade_file({0})",
                q.display()
            )
        );
    }
}

#[test]
fn interrupted_create_recovery() {
    let p = tmp("interrupted.shm");
    let o = Options::of(Variant::IS, 500).file(&p);
    let size = {
        let m = Map::open(&o).unwrap();
        m.stats().mmap_size
    };
    // All zero, exact size: silently re-initialised.
    std::fs::remove_file(&p).unwrap();
    std::fs::File::create(&p).unwrap().set_len(size).unwrap();
    let mut m = Map::open(&o).unwrap();
    assert!(m.put(In::Int(5), s(b"five")).unwrap());
    drop(m);
    // Zero magic but some header written: refused.
    let mut b = std::fs::read(&p).unwrap();
    b[..8].fill(0);
    std::fs::write(&p, &b).unwrap();
    assert_eq!(
        open_err(&o),
        format!("{}: incomplete map file left by an interrupted create; remove it and retry", p.display())
    );
    // Zero magic, another size: bad magic.
    std::fs::write(&p, vec![0u8; 8192]).unwrap();
    assert_eq!(open_err(&o), format!("{}: bad magic (not a HashMap::Shared file)", p.display()));
}

/// A FIFO, a socket or a device at a map path, or their descriptors: refused at once
/// with what they are. Opening a FIFO read-only would block until a writer comes, so
/// each open runs in a thread and must finish within seconds.
#[test]
fn special_files_are_refused_without_blocking() {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let fifo = tmp("special.fifo");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: c is NUL-terminated.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let sock = tmp("special.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let null = PathBuf::from("/dev/null");
    let within = |what: String, f: Box<dyn FnOnce() -> String + Send>| -> String {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(f()).unwrap());
        rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap_or_else(|_| panic!("{what} blocked"))
    };
    for (p, kind) in [(&fifo, "a FIFO"), (&sock, "a socket"), (&null, "a character device")] {
        let want = format!("{}: not a regular file ({kind})", p.display());
        let q = p.clone();
        let e = within(format!("open {kind}"), Box::new(move || open_err(&Options::of(Variant::II, 10).file(&q))));
        assert_eq!(e, want);
        let q = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        let e = within(
            format!("open_readonly {kind}"),
            Box::new(move || Map::open_readonly(&q, Variant::II).err().expect("opened").to_string()),
        );
        assert_eq!(e, want);
    }
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "the FIFO is left alone");
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    let e = open_err(&Options::of(Variant::II, 10).from_fd(a.as_raw_fd()));
    assert_eq!(e, "fd: not a regular file (a socket)");
    let f = std::fs::OpenOptions::new().read(true).write(true).custom_flags(libc::O_NONBLOCK).open(&fifo).unwrap();
    let e = open_err(&Options::of(Variant::II, 10).from_fd(f.as_raw_fd()));
    assert_eq!(e, "fd: not a regular file (a FIFO)");
}

#[test]
fn open_errors() {
    let p = tmp("link.shm");
    let target = tmp("link-target.shm");
    drop(Map::open(&Options::of(Variant::II, 10).file(&target)).unwrap());
    std::os::unix::fs::symlink(&target, &p).unwrap();
    let e = open_err(&Options::of(Variant::II, 10).file(&p));
    assert_eq!(e, format!("open({}): Too many levels of symbolic links", p.display()));
    let d = tmp("a-dir");
    std::fs::create_dir_all(&d).unwrap();
    let e = open_err(&Options::of(Variant::II, 10).file(&d));
    assert_eq!(e, format!("{}: not a regular file (a directory)", d.display()));
    let e = open_err(&Options::of(Variant::II, 10).file("/nonexistent-dir/x.shm"));
    assert_eq!(e, "create(/nonexistent-dir/x.shm): No such file or directory");
    let e = open_err(&Options::of(Variant::II, 10).file(""));
    assert_eq!(e, "create(): No such file or directory");
}

#[test]
fn argument_checks() {
    let o = Options::of(Variant::SS, 4_294_967_296);
    assert_eq!(open_err(&o), "max_entries 4294967296 exceeds the maximum of 4294967295");
    let o = Options::of(Variant::SS, 10);
    assert_eq!(open_err(&o.clone().lru(u64::MAX, 0)), "lru_max 18446744073709551615 exceeds the maximum of 4294967295");
    assert_eq!(open_err(&o.clone().ttl(1 << 33)), "ttl_default 8589934592 exceeds the maximum of 4294967295");
    assert_eq!(open_err(&o.clone().lru(0, 1 << 32)), "lru_skip 4294967296 exceeds the maximum of 4294967295");
    let m = Map::open(&o.lru(10, 0).ttl(60)).expect("LRU + TTL map");
    assert!(m.has_lru() && m.has_ttl());
    assert_eq!((m.stats().max_size, m.stats().ttl), (10, 60));
}

#[test]
fn not_enough_space() {
    let dir = PathBuf::from("/dev/shm");
    if !dir.is_dir() {
        return;
    }
    let p = dir.join(format!("hm-space-{}.shm", std::process::id()));
    let _ = std::fs::remove_file(&p);
    let e = open_err(&Options::of(Variant::SS, 4_294_967_295).file(&p));
    let _ = std::fs::remove_file(&p);
    assert!(e.starts_with(&format!("{}: not enough space for the map (need ", p.display())), "{e}");
    assert!(e.ends_with(" available)"), "{e}");
}

#[test]
fn memfd_and_fd() {
    let mut m = Map::open(&Options::of(Variant::SI, 100).memfd("test-map")).unwrap();
    let fd = m.memfd();
    assert!(fd >= 0);
    assert!(m.path().is_none());
    assert!(!m.unlink());
    assert_eq!(m.incr_by(s(b"hits"), 5).unwrap(), 5);
    // SAFETY: F_GETFD on a descriptor we own.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    assert!(flags & libc::FD_CLOEXEC != 0);
    // SAFETY: F_GET_SEALS on our memfd.
    let seals = unsafe { libc::fcntl(fd, libc::F_GET_SEALS) };
    assert_eq!(seals & (libc::F_SEAL_SHRINK | libc::F_SEAL_GROW), libc::F_SEAL_SHRINK | libc::F_SEAL_GROW);
    let mut m2 = Map::open(&Options::of(Variant::SI, 0).from_fd(fd)).unwrap();
    assert_ne!(m2.memfd(), fd);
    assert!(m2.memfd() >= 0);
    assert_eq!(m2.incr_by(s(b"hits"), 1).unwrap(), 6);
    assert_eq!(m.get(s(b"hits")).unwrap(), Some(Out::Int(6)));
    let e = open_err(&Options::of(Variant::SS, 0).from_fd(fd));
    assert_eq!(e, "fd: variant mismatch (file=9, expected=10)");
    assert_eq!(open_err(&Options::of(Variant::SS, 0).from_fd(-1)), "fcntl: Bad file descriptor");
    // An empty memfd is no map.
    // SAFETY: memfd_create with a NUL-terminated name.
    let raw = unsafe { libc::memfd_create(c"empty".as_ptr(), libc::MFD_CLOEXEC) };
    assert_eq!(open_err(&Options::of(Variant::SS, 0).from_fd(raw)), "fd: file too small (0 bytes, need 4096)");
    // SAFETY: closing the descriptor we created.
    unsafe { libc::close(raw) };
    m.sync().unwrap();
}

#[test]
fn anonymous_map_is_shared_with_forked_children() {
    let mut m = Map::open(&Options::of(Variant::II, 1000)).unwrap();
    assert!(m.path().is_none());
    assert_eq!(m.memfd(), -1);
    m.put(In::Int(1), In::Int(10)).unwrap();
    // SAFETY: the child only uses the map and then _exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let ok = m.incr_by(In::Int(1), 5).is_ok() && m.put(In::Int(2), In::Int(20)).unwrap_or(false);
        // SAFETY: terminating the forked child without running the parent's destructors.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waiting for our child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(status, 0);
    assert_eq!(m.get(In::Int(1)).unwrap(), Some(Out::Int(15)));
    assert_eq!(m.get(In::Int(2)).unwrap(), Some(Out::Int(20)));
    m.sync().unwrap();
}

#[test]
fn pages_are_released() {
    let p = tmp("release.shm");
    let mut m = Map::open(&Options::of(Variant::SS, 20_000).file(&p).arena_cap(128 << 20)).unwrap();
    let blocks = || std::fs::metadata(&p).unwrap().blocks() * 512;
    let base = blocks();
    let big = vec![b'x'; 3000];
    for i in 0..20_000u32 {
        assert!(m.put(In::Str(format!("key {i}").as_bytes(), false), In::Str(&big, false)).unwrap());
    }
    let full = blocks();
    assert!(full > base + 40_000_000, "{base} -> {full}");
    // Remove everything but a few: the table shrinks, freed arena blocks coalesce.
    for i in 10..20_000u32 {
        assert!(m.remove(In::Str(format!("key {i}").as_bytes(), false)).unwrap());
    }
    let after = blocks();
    assert!(after < full / 4, "after mass removal: {full} -> {after}");
    assert!(m.stats().capacity <= 64);
    m.clear().unwrap();
    let cleared = blocks();
    assert!(cleared <= base + 256 * 1024, "after clear: {base} -> {cleared}");
    // Still fully usable.
    for i in 0..1000u32 {
        assert!(m.put(In::Str(format!("key {i}").as_bytes(), false), In::Str(&big, false)).unwrap());
    }
    assert_eq!(m.len(), 1000);
    drop(m);
    let _ = std::fs::remove_file(&p);
}

#[test]
fn string_sizes_and_arena_full() {
    let mut m = Map::open(&Options::of(Variant::SS, 10).arena_cap(4096)).unwrap();
    assert_eq!(m.stats().arena_cap, 4096);
    assert!(m.put(s(b""), s(b"")).unwrap());
    assert_eq!(m.get(s(b"")).unwrap(), Some(Out::Str(b"", false)));
    let all: Vec<u8> = (0..=255u8).collect();
    assert!(m.put(s(&all), s(&all[..7])).unwrap());
    assert_eq!(m.get(s(&all)).unwrap(), Some(Out::Str(&all[..7], false)));
    let huge = vec![1u8; 4096];
    assert!(!m.put(s(b"big"), s(&huge)).unwrap(), "does not fit next to the 256-byte key");
    assert!(m.remove(s(&all)).unwrap());
    assert_eq!(m.stats().arena_used, 0);
    assert!(m.put(s(b"big"), s(&huge)).unwrap(), "a 4096-byte arena holds a 4096-byte string");
    assert!(!m.put(s(b"big"), s(&huge[..100])).unwrap(), "update needs room: old value kept");
    assert_eq!(m.get(s(b"big")).unwrap(), Some(Out::Str(&huge[..], false)));
    let mut f = std::io::sink();
    f.write_all(b"").unwrap();
}

#[test]
fn failed_create_leaves_no_file() {
    let dir = PathBuf::from("/dev/shm");
    if !dir.is_dir() {
        return;
    }
    let p = dir.join(format!("hm-nofile-{}.shm", std::process::id()));
    let _ = std::fs::remove_file(&p);
    assert!(Map::open(&Options::of(Variant::SS, 4_294_967_295).file(&p)).is_err());
    assert!(!p.exists());
}
