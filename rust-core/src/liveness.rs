//! Liveness the kernel proves: each read-write handle's own open file description of
//! the map file, the byte locks it holds on it, and its renewal in forked children.
//!
//! A handle owns reader slot `i` of its map (lock.rs) and holds an open-file-description
//! lock (`F_OFD_SETLK`, `F_WRLCK`) on byte [`Liveness::byte`]`(i)`: the first byte of
//! that slot in the file. The kernel drops such a lock when the last reference to the
//! description goes away, which happens when the owning process dies, however it dies
//! and in whatever PID namespace it runs; a pid that is reused, or the same pid in
//! another namespace, has nothing to do with it. So "is the owner of slot `i` alive?"
//! is answered by `F_OFD_GETLK` on that byte from another description ([`Liveness::test`]),
//! and slots change hands only while the byte is held exclusively ([`Liveness::try_lock`]):
//! a claimer or a reaper that gets the byte knows the previous owner is gone.
//!
//! Why this mechanism (decisions 18): robust futexes are per thread and glibc owns the
//! one robust list a thread may register (set_robust_list), so a library cannot add its
//! own without breaking glibc's robust mutexes; a pidfd names a pid, which means nothing
//! in another namespace and can already name a reused pid when it is opened; flock
//! locks are per file, not per byte (one per handle would need a file per slot); POSIX
//! (`F_SETLK`) record locks belong to the process and are dropped when *any* of its
//! descriptors of the file closes. OFD locks belong to the description: one per handle.
//!
//! Invariants this module keeps:
//! - **One description per handle, referenced only by that handle.** The description is
//!   opened for the handle (never a descriptor the caller passes or can see), is
//!   close-on-exec, and the map is mapped through it: the mapping holds a reference to
//!   the description, so the lock lives exactly as long as the handle's mapping, and
//!   code that closes the handle's descriptor behind its back (a daemon closing every
//!   descriptor) does not make a live handle look dead. (It does stop this handle from
//!   testing others: [`Liveness::test`] then says "alive", it never guesses "dead" from
//!   a descriptor that is no longer the map's: see `is_ours`.)
//! - **A forked child never keeps its parent's description.** fork() copies both the
//!   descriptor and the mapping, each a reference to the parent's description, which
//!   would keep the parent's locks held after the parent dies. A `pthread_atfork` child
//!   handler gives every registered handle a fresh description of the same file
//!   (`open("/proc/self/fd/N")`), maps it over the old mapping at the same address
//!   (`MAP_FIXED`: same pages, pointers stay valid) and `dup3`s it onto the same
//!   descriptor number. The child's handle holds no lock until it claims a slot of its
//!   own (lock.rs, on first use). If that renewal fails (no /proc, out of descriptors),
//!   the child's handle is marked broken: it cannot lock (lock.rs reports why), and
//!   the parent's locks stay held while the child lives (waiters wait for it): the one
//!   case where the mechanism does not apply.
//! - **Lock operations of one handle are serialised** (`op` below): two threads of one
//!   handle share its description, and OFD locks of one description never conflict, so
//!   two of them could otherwise both "win" the same byte.
//!
//! Cost: one descriptor per read-write handle (two for memfd and descriptor-backed
//! maps, whose public descriptor is another description: a descriptor the caller can
//! see or pass on must never hold our locks), a system call to claim or give back a
//! slot, and one per liveness test (only after a waiter has waited ~5 ms); nothing on
//! the lock fast paths. Under loom there are no descriptors: [`Liveness::none`].

use crate::backing::fstat;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering::*};

/// What [`Liveness::test`] found about a byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    /// Another description holds a lock on it: its owner is alive.
    Yes,
    /// Nobody else holds it: whoever held it has let go or died.
    No,
    /// Could not tell (no descriptor, or the descriptor is no longer the map's).
    Unknown,
}

struct Inner {
    /// Descriptor of this handle's own description.
    fd: i32,
    /// Closed with the Liveness (tests); otherwise the mapping layer owns it and closes
    /// it after the handle is gone.
    owned: bool,
    /// The file's identity, to recognise our descriptor.
    dev: u64,
    ino: u64,
    /// The mapping made through this description (renewed at fork).
    base: usize,
    len: usize,
    /// File offset of byte 0 of the lock bytes (reader slot 0).
    lock_base: u64,
    /// errno of a failed renewal in a forked child (0 = fine).
    broken: AtomicI32,
}

/// A handle's own open file description, for kernel-proved liveness.
pub struct Liveness {
    inner: Option<Box<Inner>>,
    /// Serialises this handle's lock operations (see the module docs): the fork
    /// generation of the holder + 1, 0 = free, so that a child never waits for a holder
    /// that only existed in its parent.
    op: AtomicU32,
}

impl Liveness {
    /// No descriptor: claims always succeed and tests say [`Held::Unknown`] (loom models).
    pub fn none() -> Liveness {
        Liveness { inner: None, op: AtomicU32::new(0) }
    }

    /// The liveness of a handle whose own description is `fd` (open read-write on the
    /// map file; the caller keeps it open for the Liveness' lifetime) and which mapped
    /// `len` bytes of it at `base`; slot `i`'s lock byte is at `lock_base + 64 * i`.
    /// Registers it for renewal in forked children.
    pub fn new(fd: i32, base: *mut u8, len: usize, lock_base: u64) -> std::result::Result<Liveness, i32> {
        Liveness::make(fd, false, base, len, lock_base)
    }

    /// [`Liveness::new`] on a description of its own of the file behind `fd`, closed
    /// with the Liveness (tests that map a region themselves).
    pub fn reopened(fd: i32, base: *mut u8, len: usize, lock_base: u64) -> std::result::Result<Liveness, i32> {
        let own = reopen(fd)?;
        Liveness::make(own, true, base, len, lock_base).inspect_err(|_| {
            // SAFETY: closing the descriptor we just opened.
            unsafe { libc::close(own) };
        })
    }

    fn make(fd: i32, owned: bool, base: *mut u8, len: usize, lock_base: u64) -> std::result::Result<Liveness, i32> {
        let st = fstat(fd)?;
        let inner = Box::new(Inner {
            fd,
            owned,
            dev: st.st_dev,
            ino: st.st_ino,
            base: base as usize,
            len,
            lock_base,
            broken: AtomicI32::new(0),
        });
        registry::add(&inner);
        Ok(Liveness { inner: Some(inner), op: AtomicU32::new(0) })
    }

    /// Has this handle a description (false only for [`Liveness::none`])?
    pub fn real(&self) -> bool {
        self.inner.is_some()
    }

    /// File offset of slot `i`'s lock byte.
    pub fn byte(&self, i: usize) -> u64 {
        self.inner.as_ref().map_or(0, |n| n.lock_base + 64 * i as u64)
    }

    /// errno of this handle's failed renewal after fork, if it failed.
    pub fn broken(&self) -> Option<i32> {
        // Relaxed: written by the atfork child handler before anything else runs.
        self.inner.as_ref().map(|n| n.broken.load(Relaxed)).filter(|&e| e != 0)
    }

    /// Runs `f` with this handle's lock operations serialised: every sequence of
    /// [`try_lock`](Self::try_lock), [`unlock`](Self::unlock), [`test`](Self::test) and
    /// the slot changes made under a byte runs inside one call. Not reentrant.
    pub fn serial<R>(&self, f: impl FnOnce() -> R) -> R {
        if self.inner.is_none() {
            return f(); // loom: no descriptor, nothing to serialise (std atomics would
                        // also spin outside loom's scheduler)
        }
        let me = crate::lock::fork_generation().wrapping_add(1).max(1);
        loop {
            // Relaxed: a look; the CAS carries the Acquire.
            let cur = self.op.load(Relaxed);
            // A holder of another generation existed only in our parent.
            let free = cur != me;
            // Acquire: the previous holder's lock operations and slot stores are done.
            if free && self.op.compare_exchange(cur, me, Acquire, Relaxed).is_ok() {
                break;
            }
            std::thread::yield_now();
        }
        struct Unserial<'a>(&'a AtomicU32);
        impl Drop for Unserial<'_> {
            fn drop(&mut self) {
                // Release: pairs with the Acquire above (also when `f` panics).
                self.0.store(0, std::sync::atomic::Ordering::Release);
            }
        }
        let _r = Unserial(&self.op);
        f()
    }

    /// Takes byte `i` exclusively; Ok(true) if taken, Ok(false) if another description
    /// holds it (a live owner, or a claimer or reaper at work), Err(errno) if the file
    /// system refused. Never call it for a byte this handle already holds. Inside
    /// [`serial`](Self::serial).
    pub fn try_lock(&self, i: usize) -> std::result::Result<bool, i32> {
        match &self.inner {
            Some(n) => setlk(n.fd, libc::F_WRLCK, self.byte(i)),
            None => Ok(true),
        }
    }

    /// Gives byte `i` back. Inside [`serial`](Self::serial).
    pub fn unlock(&self, i: usize) {
        if let Some(n) = &self.inner {
            let _ = setlk(n.fd, libc::F_UNLCK, self.byte(i));
        }
    }

    /// Does another description hold byte `i`? Only a byte this handle does not hold
    /// may be asked about: OFD locks of one description never conflict with each other,
    /// so our own byte always reads as free. Inside [`serial`](Self::serial).
    pub fn test(&self, i: usize) -> Held {
        let Some(n) = &self.inner else { return Held::Unknown };
        let mut fl = flock(libc::F_WRLCK, self.byte(i));
        // SAFETY: fcntl on our descriptor with a valid struct flock it fills in.
        if unsafe { libc::fcntl(n.fd, libc::F_OFD_GETLK, &mut fl) } != 0 {
            return Held::Unknown;
        }
        if fl.l_type == libc::F_UNLCK as libc::c_short {
            // "Nobody holds it" is only trusted from the map's own description: a
            // descriptor closed and reused behind our back would answer for another file.
            if is_ours(n) {
                Held::No
            } else {
                Held::Unknown
            }
        } else {
            Held::Yes
        }
    }
}

impl Drop for Liveness {
    fn drop(&mut self) {
        if let Some(n) = &self.inner {
            registry::remove(n);
            if n.owned {
                // SAFETY: our own descriptor, no longer registered or used.
                unsafe { libc::close(n.fd) };
            }
        }
    }
}

fn flock(kind: i32, off: u64) -> libc::flock {
    // SAFETY: an all-zero struct flock is valid; l_pid must be 0 for OFD locks.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = off as libc::off_t;
    fl.l_len = 1;
    fl
}

fn setlk(fd: i32, kind: i32, off: u64) -> std::result::Result<bool, i32> {
    let fl = flock(kind, off);
    loop {
        // SAFETY: fcntl on our descriptor with a valid struct flock.
        if unsafe { libc::fcntl(fd, libc::F_OFD_SETLK, &fl) } == 0 {
            return Ok(true);
        }
        match crate::error::errno() {
            libc::EINTR => continue,
            libc::EAGAIN | libc::EACCES => return Ok(false),
            e => return Err(e),
        }
    }
}


/// Is `n.fd` still a descriptor of the map's file?
fn is_ours(n: &Inner) -> bool {
    fstat(n.fd).is_ok_and(|st| st.st_dev == n.dev && st.st_ino == n.ino)
}

/// Opens a description of our own of the file behind `fd` (`/proc/self/fd/N`), close-
/// on-exec, read-write. A descriptor the caller passes or can see must never be the one
/// that holds our locks (module docs).
pub fn reopen(fd: i32) -> std::result::Result<i32, i32> {
    let mut path = [0u8; 32];
    let n = proc_fd_path(fd, &mut path);
    debug_assert!(n < path.len());
    loop {
        // SAFETY: `path` is NUL-terminated (zeroed beyond `n`).
        let r = unsafe { libc::open(path.as_ptr().cast(), libc::O_RDWR | libc::O_CLOEXEC) };
        if r >= 0 {
            return Ok(r);
        }
        let e = crate::error::errno();
        if e != libc::EINTR {
            return Err(e);
        }
    }
}

/// Writes "/proc/self/fd/N" into `buf` without allocating (the atfork child handler
/// uses it); returns its length.
fn proc_fd_path(fd: i32, buf: &mut [u8; 32]) -> usize {
    const P: &[u8] = b"/proc/self/fd/";
    buf[..P.len()].copy_from_slice(P);
    let mut n = P.len();
    let mut digits = [0u8; 10];
    let (mut d, mut v) = (0, fd.max(0) as u32);
    loop {
        digits[d] = b'0' + (v % 10) as u8;
        d += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    while d > 0 {
        d -= 1;
        buf[n] = digits[d];
        n += 1;
    }
    n
}

/// Gives the registered handle `n` a description of its own in a forked child (module
/// docs). Runs in the atfork child handler: the child is single-threaded and nothing
/// else runs, so only system calls, no allocation, no locks.
fn renew_in_child(n: &Inner) {
    let fail = |e: i32| n.broken.store(e.max(1), Relaxed);
    let new = match reopen(n.fd) {
        Ok(fd) => fd,
        Err(e) => return fail(e),
    };
    let close_new = || {
        // SAFETY: closing the descriptor we just opened.
        unsafe { libc::close(new) };
    };
    match fstat(new) {
        Ok(st) if st.st_dev == n.dev && st.st_ino == n.ino => {}
        Ok(_) => {
            close_new();
            return fail(libc::ESTALE); // our descriptor number now names another file
        }
        Err(e) => {
            close_new();
            return fail(e);
        }
    }
    // SAFETY: replaces our own mapping [base, base + len) with a mapping of the same
    // file (checked above) at the same address, same protection and sharing: every
    // pointer into it stays valid and sees the same shared pages.
    let p = unsafe {
        libc::mmap(
            n.base as *mut libc::c_void,
            n.len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_FIXED,
            new,
            0,
        )
    };
    if p == libc::MAP_FAILED || p as usize != n.base {
        let e = crate::error::errno();
        close_new();
        return fail(e);
    }
    // SAFETY: dup3 onto our own descriptor number (closing the inherited reference to
    // the parent's description), close-on-exec as before; then drop the temporary.
    if unsafe { libc::dup3(new, n.fd, libc::O_CLOEXEC) } < 0 {
        let e = crate::error::errno();
        close_new();
        return fail(e);
    }
    close_new();
}

/// The handles of this process, for the atfork child handler.
mod registry {
    use super::Inner;
    use std::sync::atomic::{AtomicBool, Ordering::*};

    struct List(std::cell::UnsafeCell<Vec<usize>>);
    // SAFETY: the Vec is only touched while BUSY is held (or in the single-threaded
    // forked child, whose BUSY was taken by the forking thread in `prepare`).
    unsafe impl Sync for List {}

    static BUSY: AtomicBool = AtomicBool::new(false);
    static LIST: List = List(std::cell::UnsafeCell::new(Vec::new()));
    static ONCE: std::sync::Once = std::sync::Once::new();

    fn lock() {
        // Acquire: the previous holder's changes to the list are visible.
        while BUSY.compare_exchange_weak(false, true, Acquire, Relaxed).is_err() {
            std::hint::spin_loop();
        }
    }
    fn unlock() {
        // Release: our changes are visible to the next holder.
        BUSY.store(false, Release);
    }

    extern "C" fn prepare() {
        lock(); // no handle is half-registered while the process forks
    }
    extern "C" fn parent() {
        unlock();
    }
    extern "C" fn child() {
        // SAFETY: we hold BUSY (taken in `prepare` by the thread that forked, which is
        // this one in the child); the entries are live Inners (removed before drop).
        let list = unsafe { &*LIST.0.get() };
        for &p in list {
            // SAFETY: as above.
            super::renew_in_child(unsafe { &*(p as *const Inner) });
        }
        unlock();
    }

    pub(super) fn add(n: &Inner) {
        ONCE.call_once(|| {
            // SAFETY: registers plain extern "C" functions without state. Nothing in
            // them depends on the order of the lock module's own child handler.
            let r = unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
            assert_eq!(r, 0, "pthread_atfork failed");
        });
        lock();
        // SAFETY: BUSY held.
        unsafe { (*LIST.0.get()).push(n as *const Inner as usize) };
        unlock();
    }

    pub(super) fn remove(n: &Inner) {
        lock();
        // SAFETY: BUSY held.
        let list = unsafe { &mut *LIST.0.get() };
        if let Some(i) = list.iter().position(|&p| p == n as *const Inner as usize) {
            list.swap_remove(i);
        }
        unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_fd_paths() {
        let mut b = [0u8; 32];
        let n = proc_fd_path(0, &mut b);
        assert_eq!(&b[..n], b"/proc/self/fd/0");
        let mut b = [0u8; 32];
        let n = proc_fd_path(1234567, &mut b);
        assert_eq!(&b[..n], b"/proc/self/fd/1234567");
    }
}
