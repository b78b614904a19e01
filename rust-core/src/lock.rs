//! Cross-process reader-writer lock and seqlock over words that live in the shared mapping.
//!
//! Many processes map the same file; each map handle owns a [`Lock`], a process-local view
//! over four shared things: the lock line ([`LockWords`], header offset 256), the seqlock line
//! ([`SeqWord`], offset 320), one [`ReaderSlot`] per reading handle (one cache line each, so
//! readers never write a line another reader writes) and the [`ReaderBitmap`] of occupied slots.
//!
//! # States
//!
//! Writer word (`LockWords::writer`):
//!
//! | value                           | meaning                                                     |
//! |---------------------------------|-------------------------------------------------------------|
//! | `0`                             | free                                                        |
//! | `HELD \| pid`                   | held by process `pid`: a writer, or a slotless reader       |
//! | `HELD \| WRITER_PARKED \| pid`  | held, and someone may sleep on the word: release must wake  |
//!
//! `HELD` is bit 31 (so the value is `0x8000_0000 | pid`, as in the C implementation),
//! `WRITER_PARKED` bit 30, the pid bits 0..29 (Linux pids are < 2^22).
//!
//! Reader slot depth word (`ReaderSlot::depth`):
//!
//! | bits            | meaning                                                                 |
//! |-----------------|-------------------------------------------------------------------------|
//! | 0..15  `HOLD`   | read locks granted through this slot (nesting, and threads of a handle) |
//! | 16..30 `TRY`    | readers between their increment and their look at the writer word       |
//! | 31 `SLOT_PARKED`| the writer sleeps on this word: whoever empties bits 0..30 must wake it |
//!
//! Reader slot pid word (`ReaderSlot::pid`): `0` free; `pid` owned by a handle of process `pid`;
//! `REAPING | pid` being cleared by process `pid`, which found the owner dead.
//!
//! Seq word: even = no write in progress; odd = a writer is inside its critical section.
//!
//! `LockWords::recover` (in the lock line's padding): `1` = a reader took over a dead writer
//! and could not repair the map; the next [`Lock::write`] reports [`WriteGuard::recovered`].
//!
//! # Protocol
//!
//! Read lock: `depth += TRY; fence(SeqCst); writer == 0 ?` then `depth += HOLD - TRY`.
//! Write lock: `CAS writer 0 -> HELD|pid; fence(SeqCst)`, then for every bit of the bitmap wait
//! until that slot's depth has no `HOLD`/`TRY` bits, then make `seq` odd. The two fences make
//! this Dekker's algorithm: the fences are totally ordered, so either the writer's loads (after
//! its fence) see the reader's increment and bitmap bit (stored before the reader's fence), or
//! the reader's load sees the writer's CAS. A reader that sees the writer backs off
//! (`depth -= TRY`), waits for the writer word to clear, and retries: writers are preferred
//! over new readers.
//!
//! Refinements of the plain protocol of DESIGN.md ("Concurrency"):
//! - Recursion under a waiting writer. With plain counting, a thread that holds a read lock
//!   and reads again while a writer drains would back off and wait for the writer, which waits
//!   for it: deadlock. So a reader that sees the writer may still proceed if its slot already
//!   had a *granted* hold (`HOLD` bits: provably no writer is inside its critical section and
//!   none can enter while that hold lasts) and this thread holds a read guard (thread-local
//!   count, so that fresh threads sharing a handle cannot starve writers). That is why a
//!   pending reader counts in `TRY` and only a granted one in `HOLD`: the cost is one more
//!   RMW on a line this handle owns.
//! - No fence on release. Sleepers announce themselves with a bit in the very word they sleep
//!   on (`WRITER_PARKED`, `SLOT_PARKED`), so the releasing RMW returns whether a wake-up is
//!   needed; a separate `parked_*` counter would need a second Dekker fence on every release.
//!   `parked_writers`/`parked_readers` are kept as advisory counts of sleepers (diagnostics;
//!   a process killed while asleep leaves them one too high).
//! - Slotless readers. When all [`READER_SLOTS`] are owned by live handles, a handle reads by
//!   holding the writer word (without touching `seq`, without draining readers): slower but
//!   correct, and a dead slotless reader is recovered like a dead writer.
//!
//! Seqlock ([`Lock::optimistic`]): `s1 = seq (Acquire); if even { f(); fence(Acquire);
//! seq (Relaxed) == s1 }`. The writer makes seq odd then `fence(Release)` before touching
//! data, and even with a Release store after. If `f` read anything the writer stored after its
//! odd bump, the reader's acquire fence synchronises with the writer's release fence, so the
//! second load sees the odd value (or later) and the result is discarded (Boehm, "Can
//! seqlocks get along with programming language memory models?", 2012).
//!
//! # Waiting and dead holders
//!
//! Waiters spin (`spin_loop` only, no system call: decisions 9), then `FUTEX_WAIT` on the word
//! they need to change, shared futexes since the waker is usually another process, with a
//! timeout: 5 ms the first time, then 50 ms, so a dead holder is usually noticed within
//! ~5 ms and at worst ~50 ms (decisions 9). After a timeout (or every 50 ms of wake-ups) a
//! waiter checks the holder: `kill(pid, 0) == ESRCH`, or `/proc/PID/stat` state `Z`/`X`
//! (a zombie still answers `kill`), means dead. A dead holder's writer word is taken over by a
//! CAS from exactly the value naming it, keeping `WRITER_PARKED` so sleepers still get their
//! wake-up. A writer that takes over steps `seq` over the dead writer's odd value and reports
//! `recovered()`. A reader that takes over (it cannot repair the map) makes `seq` even, sets
//! `recover`, and releases; the next writer reports `recovered()` (the map code can poll
//! [`Lock::repair_pending`] on read paths to repair sooner). A writer waiting on a slot
//! whose owner is dead clears the slot (depth 0, bitmap bit off, pid 0). A claimer that finds
//! no free slot reaps slots of dead processes the same way.
//!
//! Values no live holder can have written are taken over the same way: a writer word
//! without `HELD`, or naming pid 0 or a pid beyond `PID_MAX_LIMIT` (damage); our own pid
//! while this thread holds no writer word and the process has one thread (left by a dead
//! process that had our pid: pid reuse, or a file kept across a reboot); a reader slot in
//! the bitmap with pid 0, or with our pid but another incarnation's nonce. A free slot's
//! stale counts are reset by its next claimer.
//!
//! PID namespaces: every slot records its owner's namespace, and [`Lock::attach`] (at
//! open) refuses a map that a handle of another namespace has open, so a pid is never
//! judged in the wrong namespace; a slot of a foreign namespace is never taken for dead.
//!
//! Remaining limits: a dead holder whose pid was reused by a live process looks alive; its
//! waiters wait until that process exits. Counts written by damage into a reader slot of
//! this very process are only recognised as damage when the process has one thread (then
//! nothing of it can hold a read lock while it writes or overflows its own slot); in a
//! multi-threaded process a read then panics ("nested more than 65535 deep").
//!
//! # Fork
//!
//! A `pthread_atfork` child handler bumps a process-wide generation and refreshes the cached
//! pid. Each handle's slot is tagged with the generation it was claimed in, so a child claims
//! its own slot on its first read instead of sharing its parent's (checked with one relaxed
//! load, no `getpid()` per call). Guards remember their generation too: a guard inherited
//! across fork is dropped in the child without touching the parent's lock.
//!
//! # Rules for callers
//!
//! Not reentrant for writers: `write()`, `read()` or `optimistic()` while this thread holds
//! the write lock deadlocks, and so does `write()` while this thread holds a read lock (through
//! any handle on the same map). Nested reads through one handle are fine; nested reads through
//! two handles of the same map can deadlock against a waiting writer. Call
//! [`Lock::release_slot`] when the handle closes.
//!
//! # Tests
//!
//! ```text
//! cargo test -p hashmap-shared --release lock          # unit tests here + tests/lock_*.rs (fork)
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p hashmap-shared --release --lib lock::loom   # model checking, ~10 s
//! ```
//!
//! Under loom the atomics are loom's, [`READER_SLOTS`] is 4, there is no spinning, and a
//! futex is a table of parked threads checked under a lock (as the kernel does): a lost
//! wake-up is then reported as a deadlock instead of being hidden by a timeout. The models
//! were checked against deliberate bugs (each fence removed, each wake-up removed, the
//! TRY/HOLD split or the nesting rule removed, a non-exclusive write): each one fails.

use core::cell::Cell;
use core::marker::PhantomData;
use core::ptr;
use core::time::Duration;

use self::sync::{fence, AtomicU32, AtomicU64, Ordering::*};

/// The atomics and the blocking primitives, swapped for loom's under `--cfg loom`.
mod sync {
    #[cfg(loom)]
    pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
    #[cfg(not(loom))]
    pub(crate) use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

    use core::time::Duration;

    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub(crate) enum Wait {
        /// Woken, interrupted, or the word no longer held the expected value.
        Woken,
        #[cfg_attr(loom, allow(dead_code))] // loom's futex has no timeouts
        TimedOut,
    }

    #[inline]
    pub(crate) fn spin_hint() {
        #[cfg(not(loom))]
        core::hint::spin_loop();
        // Loom must be told a thread is waiting for another, or it explores the spin forever.
        #[cfg(loom)]
        loom::thread::yield_now();
    }

    /// Sleeps while `*word == expected`, at most `timeout`.
    #[cfg(not(loom))]
    #[cold]
    pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) -> Wait {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: `word` is a live, aligned u32 for the duration of the call and FUTEX_WAIT
        // only reads it; `ts` outlives the call. No FUTEX_PRIVATE_FLAG: the waker is usually
        // another process mapping the same file, which only a shared futex can reach.
        let r = unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT,
                expected,
                &ts as *const libc::timespec,
                ptr::null::<u32>(),
                0u32,
            )
        };
        if r == -1 && errno() == libc::ETIMEDOUT {
            Wait::TimedOut
        } else {
            Wait::Woken
        }
    }

    /// Wakes every sleeper on `word`, in any process.
    #[cfg(not(loom))]
    #[cold]
    pub(crate) fn futex_wake_all(word: &AtomicU32) {
        // SAFETY: FUTEX_WAKE only uses the address as a key; it is a live, aligned u32.
        // Shared (no private flag) for the same reason as in `futex_wait`.
        unsafe {
            libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX);
        }
    }

    // Under loom a futex is a table of sleeping threads. The value check and the enqueue
    // happen under the table lock, as under the kernel's hash-bucket lock, so a wake-up
    // cannot slip between them; a lost wake-up shows up as a loom deadlock. There are no
    // timeouts: the real code's timeouts would only hide such a bug.
    #[cfg(loom)]
    loom::lazy_static! {
        static ref SLEEPERS: loom::sync::Mutex<Vec<(usize, loom::thread::Thread)>> =
            loom::sync::Mutex::new(Vec::new());
    }

    #[cfg(loom)]
    pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, _timeout: Duration) -> Wait {
        let mut sleepers = SLEEPERS.lock().unwrap();
        if word.load(Ordering::Relaxed) != expected {
            return Wait::Woken;
        }
        sleepers.push((word as *const AtomicU32 as usize, loom::thread::current()));
        drop(sleepers);
        loom::thread::park();
        Wait::Woken
    }

    #[cfg(loom)]
    pub(crate) fn futex_wake_all(word: &AtomicU32) {
        let addr = word as *const AtomicU32 as usize;
        SLEEPERS.lock().unwrap().retain(|(a, t)| {
            if *a == addr {
                t.unpark();
            }
            *a != addr
        });
    }

    #[cfg(not(loom))]
    use core::ptr;

    #[cfg(not(loom))]
    pub(crate) fn errno() -> i32 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    }
}

/// Number of reader slots in a map (header field at offset 76).
#[cfg(not(loom))]
pub const READER_SLOTS: usize = 1024;
/// Loom models get a handful of slots: every atomic is a branch point.
#[cfg(loom)]
pub const READER_SLOTS: usize = 4;

const BITMAP_WORDS: usize = READER_SLOTS.div_ceil(64);

/// Lives in the mapping at header offset 256 (one cache line).
#[repr(C, align(64))]
pub struct LockWords {
    /// 0 = free, else `0x8000_0000 | holder pid` (+ bit 30 when someone sleeps on it).
    pub writer: AtomicU32,
    /// Advisory: writers asleep (on the writer word or on a reader slot).
    pub parked_writers: AtomicU32,
    /// Advisory: readers asleep on the writer word.
    pub parked_readers: AtomicU32,
    /// Freeze seal, owned by the map code; this module never touches it.
    pub sealed: AtomicU32,
    /// 1 = a reader took over a dead writer; the next writer reports `recovered()`.
    recover: AtomicU32,
}

/// At header offset 320, on its own line: readers only read it, writers bump it.
#[repr(C, align(64))]
pub struct SeqWord {
    pub seq: AtomicU64,
}

/// One per reading handle, one cache line each (decisions 12).
#[repr(C, align(64))]
pub struct ReaderSlot {
    pub pid: AtomicU32,
    pub depth: AtomicU32,
    /// The owner's PID namespace (low 32 bits of its inode; 0 = unknown): a pid is only
    /// meaningful, and a liveness check only valid, inside one namespace.
    pub ns: AtomicU32,
    /// The owner process's incarnation nonce: tells a slot this process owns from one a
    /// dead process with the same pid left (pid reuse, or a file kept across a reboot).
    pub nonce: AtomicU32,
}

/// Occupancy bitmap of the reader slots: bit `i` set while slot `i` may be in use.
#[repr(C, align(64))]
pub struct ReaderBitmap {
    pub words: [AtomicU64; BITMAP_WORDS],
}

// The file format fixes these sizes (DESIGN.md, "File format").
#[cfg(not(loom))]
const _: () = {
    assert!(core::mem::size_of::<LockWords>() == 64);
    assert!(core::mem::size_of::<SeqWord>() == 64);
    assert!(core::mem::size_of::<ReaderSlot>() == 64);
    assert!(core::mem::size_of::<ReaderBitmap>() == 128);
    assert!(core::mem::align_of::<ReaderBitmap>() == 64);
};

const HELD: u32 = 1 << 31;
const WRITER_PARKED: u32 = 1 << 30;
const PID_MASK: u32 = WRITER_PARKED - 1;

const HOLD: u32 = 1;
const HOLD_MASK: u32 = 0xFFFF;
const TRY: u32 = 1 << 16;
const SLOT_PARKED: u32 = 1 << 31;
const COUNT_MASK: u32 = !SLOT_PARKED;

const REAPING: u32 = 1 << 31;

/// Linux pids never exceed 2^22 (PID_MAX_LIMIT); a larger pid field is damage.
const PID_MAX_LIMIT: u32 = 1 << 22;

/// Handle slot state (process-local `Lock::slot`): fork generation in the high half,
/// `index + 1`, `NO_SLOT` or `SLOTLESS` in the low half.
const NO_SLOT: u32 = 0;
const SLOTLESS: u32 = u32::MAX;

#[cfg(not(loom))]
const SPIN_ROUNDS: u32 = 6; // 2 + 4 + ... + 64 = 126 pauses, a few microseconds
/// Loom goes straight to the (modelled) futex: it deprioritises a thread that yields, which
/// would hide the interleavings where a waiter sleeps while the holder still holds.
#[cfg(loom)]
const SPIN_ROUNDS: u32 = 0;
/// First sleep is short so that a dead holder is usually noticed within milliseconds.
const FIRST_PARK: Duration = Duration::from_millis(5);
/// Later sleeps; also the longest a waiter goes without checking the holder (decisions 9).
const PARK: Duration = Duration::from_millis(50);
#[cfg(not(loom))]
const OPTIMISTIC_TRIES: u32 = 128;
#[cfg(loom)]
const OPTIMISTIC_TRIES: u32 = 2;

// ---------------------------------------------------------------------------------------
// Process-wide state
// ---------------------------------------------------------------------------------------

/// Bumped in every forked child (pthread_atfork). std atomics even under loom: one process.
static FORK_GEN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
/// getpid(), cached; refreshed in forked children.
static PID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
static ATFORK: std::sync::Once = std::sync::Once::new();

/// This process incarnation's nonce (see [`ReaderSlot::nonce`]); 0 = not drawn yet.
static NONCE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
/// PID namespace id of this process (low 32 bits of the inode of /proc/self/ns/pid), or
/// `u32::MAX` before the first look. 0 when /proc is not mounted: treated as "unknown".
static PIDNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(u32::MAX);

extern "C" fn atfork_child() {
    // Relaxed: the child runs this single-threaded, before fork() returns to anything that
    // could read these; later threads are ordered after it by their own creation.
    NONCE.store(0, std::sync::atomic::Ordering::Relaxed);
    PIDNS.store(u32::MAX, std::sync::atomic::Ordering::Relaxed);
    FORK_GEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // SAFETY: getpid is async-signal-safe and cannot fail.
    PID.store(
        unsafe { libc::getpid() } as u32,
        std::sync::atomic::Ordering::Relaxed,
    );
}

fn register_atfork() {
    ATFORK.call_once(|| {
        // SAFETY: registers a plain extern "C" fn with no state. glibc ties the handler to
        // this DSO, so unloading it unregisters the handler.
        let r = unsafe { libc::pthread_atfork(None, None, Some(atfork_child)) };
        assert_eq!(r, 0, "pthread_atfork failed");
    });
}

#[inline]
fn fork_gen() -> u32 {
    // Relaxed: only ever changed by the atfork child handler, before any other code runs.
    FORK_GEN.load(std::sync::atomic::Ordering::Relaxed)
}

#[inline]
fn my_pid() -> u32 {
    // Relaxed: a cache of getpid(); every thread computes the same value.
    let p = PID.load(std::sync::atomic::Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    // A cached pid must be refreshed in forked children.
    register_atfork();
    // SAFETY: getpid cannot fail.
    let p = unsafe { libc::getpid() } as u32;
    debug_assert!(p != 0 && p <= PID_MASK);
    PID.store(p, std::sync::atomic::Ordering::Relaxed);
    p
}

/// This process incarnation's nonce, drawn on first use (and anew in forked children).
fn my_nonce() -> u32 {
    use std::sync::atomic::Ordering::Relaxed as R;
    let n = NONCE.load(R);
    if n != 0 {
        return n;
    }
    // Not secret, only distinct between incarnations that share a pid: the time, the
    // pid and a stack address through SipHash's per-process random keys.
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(my_pid());
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    h.write_u128(t.map_or(0, |d| d.as_nanos()));
    h.write_usize(&n as *const u32 as usize);
    let n = (h.finish() as u32).max(1);
    // Relaxed: a process-local value; the CAS makes every racing thread use the first.
    match NONCE.compare_exchange(0, n, R, R) {
        Ok(_) => n,
        Err(x) => x,
    }
}

/// This process's PID namespace id (0 = unknown).
#[cfg(not(loom))]
pub(crate) fn my_pidns() -> u32 {
    use std::os::unix::fs::MetadataExt;
    use std::sync::atomic::Ordering::Relaxed as R;
    let v = PIDNS.load(R);
    if v != u32::MAX {
        return v;
    }
    let ns = std::fs::metadata("/proc/self/ns/pid").map_or(0, |m| m.ino() as u32);
    let ns = if ns == u32::MAX { 0 } else { ns };
    // Relaxed: a cache; every thread computes the same value.
    PIDNS.store(ns, R);
    ns
}

#[cfg(loom)]
pub(crate) fn my_pidns() -> u32 {
    0
}

/// True if namespace ids `a` and `b` may name different namespaces.
#[inline]
fn foreign_ns(a: u32, b: u32) -> bool {
    a != 0 && b != 0 && a != b
}

// Writer words this thread took (writes and slotless reads): lets a waiter that finds its
// own pid in a writer word tell a hold of its own from one left by a dead process that had
// the same pid. Counts may drift when a slotless hold is released on another thread; they
// then err towards "held", which only means waiting.
#[cfg(not(loom))]
std::thread_local!(static WRITES_HELD: Cell<u32> = const { Cell::new(0) });
#[cfg(loom)]
::loom::thread_local!(static WRITES_HELD: Cell<u32> = Cell::new(0));

#[inline]
fn writes_held_add(d: i32) {
    WRITES_HELD.with(|c| c.set(c.get().wrapping_add(d as u32)));
}

// Read guards this thread holds, on any Lock: lets a nested read pass a waiting writer
// (see `read_contended`). A guard is !Send, so it is dropped on the thread that counted it.
#[cfg(not(loom))]
std::thread_local!(static READS_HELD: Cell<u32> = const { Cell::new(0) });
#[cfg(loom)]
::loom::thread_local!(static READS_HELD: Cell<u32> = Cell::new(0));

#[inline]
fn reads_held_add(d: i32) {
    READS_HELD.with(|c| c.set(c.get().wrapping_add(d as u32)));
}

// ---------------------------------------------------------------------------------------
// The per-handle lock
// ---------------------------------------------------------------------------------------

/// Per-handle view of a map's lock (not in shared memory).
pub struct Lock {
    words: *const LockWords,
    seq: *const SeqWord,
    slots: *const ReaderSlot,
    bitmap: *const ReaderBitmap,
    /// `(fork generation << 32) | index + 1 / NO_SLOT / SLOTLESS`.
    slot: AtomicU64,
    /// `(fork generation << 32) | slotless read holds of this handle`; the count is nonzero
    /// only while this handle holds the writer word (in that generation).
    slotless: AtomicU64,
    /// A read-only handle on a frozen map (mapped PROT_READ): it must never write a lock
    /// word, and needs no lock, since a frozen map has no writers.
    readonly: bool,
}

// SAFETY: the pointers refer to shared memory that `new`'s contract keeps alive for the
// Lock's lifetime, and every access through them is atomic; the process-local state is
// atomic too. Nothing is tied to the creating thread.
unsafe impl Send for Lock {}
// SAFETY: as above: `&Lock` only ever performs atomic operations.
unsafe impl Sync for Lock {}

impl Lock {
    /// Creates a handle's view of the lock.
    ///
    /// # Safety
    ///
    /// The pointers stay valid (mapping alive) for the Lock's lifetime, are suitably aligned,
    /// `slots` points to [`READER_SLOTS`] slots, and the memory was zero-initialised when
    /// the map was created.
    pub unsafe fn new(
        words: *const LockWords,
        seq: *const SeqWord,
        slots: *const ReaderSlot,
        bitmap: *const ReaderBitmap,
    ) -> Lock {
        register_atfork();
        Lock {
            words,
            seq,
            slots,
            bitmap,
            slot: AtomicU64::new(0),
            slotless: AtomicU64::new(0),
            readonly: false,
        }
    }

    /// Marks this view as belonging to a read-only handle of a frozen map: the seqlock
    /// read never falls back to the read lock (whose slot it could not write). Sound
    /// because a frozen map's data no longer changes: a seq left odd by a process killed
    /// while it held the write lock (a mutator that found the seal and backed off)
    /// guards nothing.
    pub fn set_readonly(&mut self) {
        self.readonly = true;
    }

    #[inline]
    fn words(&self) -> &LockWords {
        // SAFETY: valid and aligned for our lifetime (contract of `new`).
        unsafe { &*self.words }
    }

    #[inline]
    fn seq(&self) -> &AtomicU64 {
        // SAFETY: valid and aligned for our lifetime (contract of `new`).
        unsafe { &(*self.seq).seq }
    }

    #[inline]
    fn slot_at(&self, i: usize) -> &ReaderSlot {
        debug_assert!(i < READER_SLOTS);
        // SAFETY: `slots` points to READER_SLOTS slots valid for our lifetime, i is in range.
        unsafe { &*self.slots.add(i) }
    }

    #[inline]
    fn bitmap(&self) -> &ReaderBitmap {
        // SAFETY: valid and aligned for our lifetime (contract of `new`).
        unsafe { &*self.bitmap }
    }

    /// True if a reader took over a dead writer and the map still awaits a writer's repair
    /// (the next [`write`](Self::write) reports `recovered()` and clears it).
    pub fn repair_pending(&self) -> bool {
        // Relaxed: a hint; the authoritative hand-over happens under the writer word.
        self.words().recover.load(Relaxed) != 0
    }

    // ----- write lock -------------------------------------------------------------------

    /// Exclusive lock. While the guard lives `seq` is odd (optimistic readers retry); dropping
    /// it makes `seq` even again (Release) and releases the writer word, waking waiters.
    #[inline]
    pub fn write(&self) -> WriteGuard<'_> {
        let me = HELD | my_pid();
        let words = self.words();
        // Acquire: pairs with the previous holder's Release swap, so its data and seq are ours.
        let recovered = match words.writer.compare_exchange(0, me, Acquire, Relaxed) {
            Ok(_) => false,
            Err(_) => self.write_contended(me),
        };
        writes_held_add(1);
        // SeqCst: the writer half of the Dekker handshake with `read` (module docs): our CAS
        // is ordered before our loads of the bitmap and of the depth words.
        fence(SeqCst);
        self.drain_readers();
        // Relaxed: a reader that set it did so before its Release of the writer word, which
        // our Acquire CAS read from (or a later value of that word).
        let recovered = recovered | (words.recover.load(Relaxed) != 0 && self.take_recover());
        let seq = self.seq();
        // Relaxed: only the writer-word holder writes seq, and we acquired that word.
        let mut s = seq.load(Relaxed);
        if s & 1 != 0 {
            // A dead writer's unfinished write: step over it to even, then odd below.
            s = s.wrapping_add(1);
        }
        let odd = s.wrapping_add(1);
        // Relaxed + Release fence: the fence orders this odd store before every data store of
        // the critical section, which is what an optimistic reader's Acquire fence needs.
        seq.store(odd, Relaxed);
        fence(Release);
        WriteGuard {
            lock: self,
            odd,
            gen: fork_gen(),
            recovered,
            _not_send: PhantomData,
        }
    }

    #[cold]
    fn take_recover(&self) -> bool {
        // Relaxed: we hold the writer word; nobody else touches `recover` until we release it.
        self.words().recover.swap(0, Relaxed) != 0
    }

    /// Takes the writer word from a live or dead holder; returns true if it was taken over.
    #[cold]
    fn write_contended(&self, me: u32) -> bool {
        let words = self.words();
        let mut backoff = Backoff::new();
        loop {
            // Relaxed: just a look; the CAS below carries the Acquire.
            let v = words.writer.load(Relaxed);
            if v == 0 {
                // Acquire: as in `write`.
                if words
                    .writer
                    .compare_exchange_weak(0, me, Acquire, Relaxed)
                    .is_ok()
                {
                    return false;
                }
                continue;
            }
            if backoff.spin() {
                continue;
            }
            if self.park_on_writer(v, &mut backoff, &words.parked_writers) && self.seize(v, me) {
                return true;
            }
        }
    }

    /// Calls `f(i, slot)` for every slot whose bitmap bit is set, loading each bitmap
    /// word with `order`, until `f` returns false.
    #[inline(always)]
    fn for_each_occupied(&self, order: sync::Ordering, mut f: impl FnMut(usize, &ReaderSlot) -> bool) {
        for (w, word) in self.bitmap().words.iter().enumerate() {
            let mut bits = word.load(order);
            while bits != 0 {
                let i = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if i >= READER_SLOTS || !f(i, self.slot_at(i)) {
                    return;
                }
            }
        }
    }

    /// Waits for every slot in the bitmap to hold no read lock.
    fn drain_readers(&self) {
        // Relaxed: ordered after our SeqCst fence, which is all Dekker needs (a reader sets
        // its bit before its own fence).
        self.for_each_occupied(Relaxed, |i, slot| {
            // Acquire: pairs with the Release decrement of the last reader to leave, so
            // everything it read happens before what we are about to write.
            if slot.depth.load(Acquire) & COUNT_MASK != 0 {
                self.wait_for_slot(slot, i);
            }
            true
        });
    }

    /// Waits until `slot` holds no read lock (or its owner turns out dead and is cleared).
    #[cold]
    fn wait_for_slot(&self, slot: &ReaderSlot, i: usize) {
        let mut backoff = Backoff::new();
        loop {
            // Acquire: as in `drain_readers`.
            let v = slot.depth.load(Acquire);
            if v & COUNT_MASK == 0 {
                if v & SLOT_PARKED != 0 {
                    // Relaxed: just stops readers from making useless wake calls.
                    slot.depth.fetch_and(!SLOT_PARKED, Relaxed);
                }
                return;
            }
            if backoff.spin() {
                continue;
            }
            // Relaxed: the bit only has to be in the word the reader's decrement reads; the
            // futex compares against this exact value, so a change in between is not lost.
            if v & SLOT_PARKED == 0
                && slot
                    .depth
                    .compare_exchange(v, v | SLOT_PARKED, Relaxed, Relaxed)
                    .is_err()
            {
                continue;
            }
            let due = backoff.park(&slot.depth, v | SLOT_PARKED, &self.words().parked_writers);
            if due && (self.reap_if_dead(slot, i) || self.reset_own_damaged(slot)) {
                return;
            }
        }
    }

    /// A slot of this very process holds counts while nothing of this process can hold a
    /// read lock (we are the only thread, and we are writing): the counts are damage, so
    /// clear them. True if cleared.
    #[cold]
    fn reset_own_damaged(&self, slot: &ReaderSlot) -> bool {
        // Relaxed: hints; the depth CAS decides.
        let v = slot.depth.load(Relaxed);
        if slot.pid.load(Relaxed) != my_pid()
            || slot.nonce.load(Relaxed) != my_nonce()
            || v & COUNT_MASK == 0
            || !own_counts_are_damage()
        {
            return false;
        }
        // Relaxed: no reader of ours exists to synchronise with.
        slot.depth.compare_exchange(v, 0, Relaxed, Relaxed).is_ok()
    }

    // ----- read lock --------------------------------------------------------------------

    /// Shared lock: excludes writers, not other readers. Uses this handle's reader slot,
    /// claimed on first use (and anew in a forked child). Recursive.
    #[inline]
    pub fn read(&self) -> ReadGuard<'_> {
        let gen = fork_gen();
        // Acquire: pairs with the Release that published the slot in `read_slow`, so another
        // thread's claim (pid, bitmap bit) happens before our increment.
        let state = self.slot.load(Acquire);
        let s = state as u32;
        if (state >> 32) as u32 == gen && s != NO_SLOT && s != SLOTLESS {
            return self.read_in(self.slot_at(s as usize - 1), gen);
        }
        self.read_slow(gen)
    }

    #[inline]
    fn read_in<'a>(&'a self, slot: &'a ReaderSlot, gen: u32) -> ReadGuard<'a> {
        // Relaxed: the fence below orders it before our look at the writer word.
        let prev = slot.depth.fetch_add(TRY, Relaxed);
        // SeqCst: the reader half of the Dekker handshake with `write`.
        fence(SeqCst);
        // Acquire: seeing 0 stored by a writer's release makes its writes visible to us.
        if prev & HOLD_MASK != HOLD_MASK && self.words().writer.load(Acquire) == 0 {
            // Release: a nested reader that passes a waiting writer because of this hold
            // (read_contended) must see what we saw.
            slot.depth.fetch_add(HOLD.wrapping_sub(TRY), Release);
            return ReadGuard::new(self, slot, gen);
        }
        self.read_contended(slot, prev, gen)
    }

    /// We hold a TRY unit in `slot` and the writer word was held (or HOLD would overflow).
    #[cold]
    fn read_contended<'a>(
        &'a self,
        slot: &'a ReaderSlot,
        mut prev: u32,
        gen: u32,
    ) -> ReadGuard<'a> {
        let words = self.words();
        loop {
            if prev & HOLD_MASK == HOLD_MASK {
                if own_counts_are_damage() {
                    // Nothing of this process holds a read lock, so the counts in our
                    // slot were written by damage: restart from our own pending unit.
                    // Relaxed: our slot, and the protocol is redone from here.
                    if slot.depth.swap(TRY, Relaxed) & SLOT_PARKED != 0 {
                        sync::futex_wake_all(&slot.depth);
                    }
                    prev = 0;
                    continue;
                }
                slot.depth.fetch_sub(TRY, Relaxed);
                panic!("read lock nested more than {} deep", HOLD_MASK);
            }
            // A granted hold in this slot proves no writer is in its critical section and
            // none can enter while it lasts (it waits for this slot), so passing is safe; we
            // only do it when this thread holds a read guard, i.e. may be nested, because
            // backing off then could wait for a writer that waits for us.
            if prev & HOLD_MASK != 0 && READS_HELD.with(|c| c.get()) > 0 {
                // Release: as in `read_in`.
                slot.depth.fetch_add(HOLD.wrapping_sub(TRY), Release);
                return ReadGuard::new(self, slot, gen);
            }
            // Relaxed: we read nothing under this unit, so there is nothing to publish.
            let prev_back = slot.depth.fetch_sub(TRY, Relaxed);
            if prev_back == SLOT_PARKED | TRY {
                sync::futex_wake_all(&slot.depth);
            }
            // This handle may hold the writer word as a slotless reader (mode switch).
            if let Some(g) = self.slotless_join(gen) {
                return g;
            }
            self.wait_writer_free();
            // Same steps and orderings as `read_in`.
            prev = slot.depth.fetch_add(TRY, Relaxed);
            fence(SeqCst);
            if prev & HOLD_MASK != HOLD_MASK && words.writer.load(Acquire) == 0 {
                slot.depth.fetch_add(HOLD.wrapping_sub(TRY), Release);
                return ReadGuard::new(self, slot, gen);
            }
        }
    }

    /// No slot in this fork generation yet, or slotless.
    #[cold]
    fn read_slow(&self, gen: u32) -> ReadGuard<'_> {
        loop {
            // Acquire: as in `read`.
            let state = self.slot.load(Acquire);
            let s = state as u32;
            let current = (state >> 32) as u32 == gen;
            if current && s != NO_SLOT && s != SLOTLESS {
                return self.read_in(self.slot_at(s as usize - 1), gen);
            }
            if current && s == SLOTLESS {
                if let Some(g) = self.slotless_join(gen) {
                    return g;
                }
            }
            // Full reaping pass only on the first claim of a generation: it costs a system
            // call per occupied slot.
            let claimed = self.claim_slot(!(current && s == SLOTLESS));
            if claimed.is_none() && current && s == SLOTLESS {
                return self.slotless_read(gen);
            }
            let new = (gen as u64) << 32 | claimed.map_or(SLOTLESS, |i| i as u32 + 1) as u64;
            // Release: publishes the claim (pid, bitmap bit) to the other threads of this
            // handle, which Acquire-load the state in `read`.
            if self
                .slot
                .compare_exchange(state, new, Release, Relaxed)
                .is_err()
            {
                if let Some(i) = claimed {
                    self.free_slot(i); // another thread of this handle claimed first
                }
            }
        }
    }

    /// Claims a free slot for this process; with `reap`, clears dead processes' slots when
    /// none is free.
    fn claim_slot(&self, reap: bool) -> Option<usize> {
        let me = my_pid();
        for pass in 0..2 {
            for (w, word) in self.bitmap().words.iter().enumerate() {
                // Relaxed: a hint; the pid CAS decides.
                let mut free = !word.load(Relaxed);
                while free != 0 {
                    let b = free.trailing_zeros();
                    free &= free - 1;
                    let i = w * 64 + b as usize;
                    if i >= READER_SLOTS {
                        break;
                    }
                    // Acquire: pairs with the Release of the previous owner's (or reaper's)
                    // pid store, so its depth reset is visible before we count in it.
                    let slot = self.slot_at(i);
                    if slot.pid.compare_exchange(0, me, Acquire, Relaxed).is_ok() {
                        // A free slot carries no counts, unless the file was damaged or a
                        // reaper died mid-way: start from zero rather than inherit them.
                        // Relaxed: the slot is ours and not yet in the bitmap.
                        if slot.depth.swap(0, Relaxed) & SLOT_PARKED != 0 {
                            sync::futex_wake_all(&slot.depth);
                        }
                        // Relaxed: published by the Release bitmap update below.
                        slot.ns.store(my_pidns(), Relaxed);
                        slot.nonce.store(my_nonce(), Relaxed);
                        // Release: whoever Acquire-loads the bit sees ns and nonce. Our
                        // first read's increment and SeqCst fence come after this, which
                        // carries the bit to a writer (Dekker).
                        word.fetch_or(1 << b, Release);
                        return Some(i);
                    }
                }
            }
            if pass == 1 || !reap {
                break;
            }
            self.reap_dead_slots();
        }
        None
    }

    /// Gives a slot claimed by `claim_slot` back (its depth is 0).
    fn free_slot(&self, i: usize) {
        // Relaxed: the Release pid store below publishes it.
        self.bitmap().words[i / 64].fetch_and(!(1u64 << (i % 64)), Relaxed);
        // Release: the next claimer's Acquire CAS sees the bit cleared and depth 0.
        self.slot_at(i).pid.store(0, Release);
    }

    #[cold]
    fn reap_dead_slots(&self) {
        for i in 0..READER_SLOTS {
            // Relaxed: reap re-checks with a CAS.
            let pid = self.slot_at(i).pid.load(Relaxed);
            if pid != 0 {
                self.reap_if_dead(self.slot_at(i), i);
            }
        }
    }

    /// Clears slot `i` if its owner (or a reaper that died mid-way) is dead, or if the
    /// slot is damaged; true if the slot no longer holds a read lock to wait for.
    #[cold]
    fn reap_if_dead(&self, slot: &ReaderSlot, i: usize) -> bool {
        // Relaxed: checked again by the CAS.
        let pid = slot.pid.load(Relaxed);
        // Acquire: pairs with the claimer's Release bitmap update, so ns and nonce are the
        // claimer's when the bit is set.
        let in_bitmap = self.bitmap().words[i / 64].load(Acquire) & (1 << (i % 64)) != 0;
        if pid == 0 && !in_bitmap {
            return true; // free: its counts (damage) are nobody's, the next claimer resets them
        }
        if !slot_dead(slot, pid, in_bitmap) {
            return false;
        }
        // Acquire: we are about to rewrite the slot; see the dead owner's last stores.
        if slot
            .pid
            .compare_exchange(pid, REAPING | my_pid(), Acquire, Relaxed)
            .is_err()
        {
            return false;
        }
        // Relaxed: the dead owner's counts published nothing; the next claimer sees the 0
        // through the Release pid store below.
        let old = slot.depth.swap(0, Relaxed);
        if old & SLOT_PARKED != 0 {
            sync::futex_wake_all(&slot.depth);
        }
        // Relaxed: published by the Release pid store below.
        self.bitmap().words[i / 64].fetch_and(!(1u64 << (i % 64)), Relaxed);
        // Release: a claimer's Acquire CAS sees depth 0 and the bit cleared before it sets it.
        slot.pid.store(0, Release);
        true
    }

    // ----- slotless reads ---------------------------------------------------------------

    /// Joins this handle's slotless read hold, if it has one. A count left by an older
    /// generation is our parent's hold, not ours.
    fn slotless_join(&self, gen: u32) -> Option<ReadGuard<'_>> {
        // Relaxed: the CAS carries the Acquire.
        let mut c = self.slotless.load(Relaxed);
        while (c >> 32) as u32 == gen && c as u32 > 0 {
            // Acquire: pairs with the Release increment of the thread that took the writer
            // word, whose Acquire CAS saw the last writer's release.
            match self
                .slotless
                .compare_exchange_weak(c, c + 1, Acquire, Relaxed)
            {
                Ok(_) => return Some(ReadGuard::new(self, ptr::null(), gen)),
                Err(x) => c = x,
            }
        }
        None
    }

    /// Reads by holding the writer word: excludes writers; other readers back off.
    #[cold]
    fn slotless_read(&self, gen: u32) -> ReadGuard<'_> {
        let me = HELD | my_pid();
        let words = self.words();
        let mut backoff = Backoff::new();
        loop {
            if let Some(g) = self.slotless_join(gen) {
                return g;
            }
            // Relaxed: the CAS carries the Acquire.
            let v = words.writer.load(Relaxed);
            if v == 0 {
                // Acquire: pairs with the last writer's Release; no fence: we do not drain.
                if words
                    .writer
                    .compare_exchange_weak(0, me, Acquire, Relaxed)
                    .is_ok()
                {
                    // Release: pairs with the Acquire of `slotless_join`. A plain store: holding
                    // the word, no other thread of this handle can hold a count of this
                    // generation (the last one out released the word after its decrement).
                    self.slotless.store((gen as u64) << 32 | 1, Release);
                    writes_held_add(1);
                    return ReadGuard::new(self, ptr::null(), gen);
                }
                continue;
            }
            if backoff.spin() {
                continue;
            }
            if self.park_on_writer(v, &mut backoff, &words.parked_readers) {
                self.reader_takeover(v);
            }
        }
    }

    #[cold]
    fn slotless_release(&self) {
        // Release: orders our reads before the word's release; the last one out releases it.
        if self.slotless.fetch_sub(1, Release) as u32 == 1 {
            writes_held_add(-1);
            self.release_writer_word();
        }
    }

    // ----- waiting on the writer word ---------------------------------------------------

    /// Waits until the writer word is 0, taking over a dead holder (as a reader).
    #[cold]
    fn wait_writer_free(&self) {
        let words = self.words();
        let mut backoff = Backoff::new();
        loop {
            // Relaxed: the caller redoes the whole read protocol afterwards.
            let v = words.writer.load(Relaxed);
            if v == 0 {
                return;
            }
            if backoff.spin() {
                continue;
            }
            if self.park_on_writer(v, &mut backoff, &words.parked_readers) {
                self.reader_takeover(v);
            }
        }
    }

    /// Sleeps while the writer word holds `v`; true if the holder named by `v` is dead.
    fn park_on_writer(&self, v: u32, backoff: &mut Backoff, parked: &AtomicU32) -> bool {
        let writer = &self.words().writer;
        let expected = v | WRITER_PARKED;
        // Relaxed: the bit only needs to be in the word the release swaps out; the futex
        // compares against the exact value, so a release in between is not lost.
        if v & WRITER_PARKED == 0
            && writer
                .compare_exchange(v, expected, Relaxed, Relaxed)
                .is_err()
        {
            return false;
        }
        backoff.park(writer, expected, parked) && writer_dead(v)
    }

    /// Replaces a dead holder's value with ours; false if someone else changed it first.
    fn seize(&self, dead: u32, me: u32) -> bool {
        let writer = &self.words().writer;
        // Relaxed: the CAS decides.
        let cur = writer.load(Relaxed);
        if cur & !WRITER_PARKED != dead & !WRITER_PARKED {
            return false;
        }
        // Acquire: what the dead holder's predecessors released is ours. WRITER_PARKED
        // stays: sleepers still need the wake-up of our release.
        writer
            .compare_exchange(cur, me | (cur & WRITER_PARKED), Acquire, Relaxed)
            .is_ok()
    }

    /// A reader found the holder `dead`: make the lock usable, leave the repair to a writer.
    #[cold]
    fn reader_takeover(&self, dead: u32) {
        if !self.seize(dead, HELD | my_pid()) {
            return;
        }
        let seq = self.seq();
        // Relaxed: we hold the writer word, so nobody else writes seq.
        let s = seq.load(Relaxed);
        if s & 1 != 0 {
            // Release: optimistic readers that see the even value see it after our seize.
            seq.store(s.wrapping_add(1), Release);
        }
        // Relaxed: published by the Release swap in `release_writer_word`.
        self.words().recover.store(1, Relaxed);
        self.release_writer_word();
    }

    #[inline]
    fn release_writer_word(&self) {
        let writer = &self.words().writer;
        // Release: pairs with the Acquire of the next holder's CAS and of readers' loads.
        let v = writer.swap(0, Release);
        if v & WRITER_PARKED != 0 {
            sync::futex_wake_all(writer);
        }
    }

    // ----- seqlock ----------------------------------------------------------------------

    /// Seqlock read: runs `f` until it ran with no writer in between. `f` may see torn data
    /// and must only copy. After a bounded number of failed attempts, runs `f` once under
    /// [`read`](Self::read) so that readers cannot starve.
    #[inline]
    pub fn optimistic<R>(&self, mut f: impl FnMut() -> R) -> R {
        let seq = self.seq();
        for _ in 0..OPTIMISTIC_TRIES {
            // Acquire: the data `f` reads is at least as new as the write that made s1.
            let s1 = seq.load(Acquire);
            if s1 & 1 == 0 {
                let r = f();
                // Acquire fence: if `f` saw any store of a writer that came after its odd
                // bump, this fence synchronises with the writer's Release fence and the load
                // below sees that odd value (or later).
                fence(Acquire);
                // Relaxed: ordered by the fence above.
                if seq.load(Relaxed) == s1 {
                    return r;
                }
            } else {
                sync::spin_hint();
            }
        }
        self.optimistic_locked(f)
    }

    #[cold]
    #[inline(never)]
    fn optimistic_locked<R>(&self, mut f: impl FnMut() -> R) -> R {
        if self.readonly {
            return f();
        }
        let _g = self.read();
        f()
    }

    /// Registers this handle with the map: claims its reader slot now (not at its first
    /// read), then checks that no handle of another PID namespace has one. Pids, and so
    /// every liveness check, only mean something inside one namespace, so a map is never
    /// shared across namespaces: returns the pid of such a handle (this handle's slot is
    /// then given back). Two handles registering at once from two namespaces cannot both
    /// miss each other: each stores its slot before a SeqCst fence and scans after it
    /// (Dekker, as for the read lock). A handle that found every slot taken reads
    /// slotless and is not checked.
    pub fn attach(&self) -> Result<(), u32> {
        // Claim without reading: opening a map must not wait for a writer (nor take a
        // dead one over: tools that inspect the lock open the map too).
        let gen = fork_gen();
        // Acquire: as in `read`.
        let state = self.slot.load(Acquire);
        if (state >> 32) as u32 != gen || state as u32 == NO_SLOT {
            let claimed = self.claim_slot(true);
            let new = (gen as u64) << 32 | claimed.map_or(SLOTLESS, |i| i as u32 + 1) as u64;
            // Release: as in `read_slow`.
            if self.slot.compare_exchange(state, new, Release, Relaxed).is_err() {
                if let Some(i) = claimed {
                    self.free_slot(i);
                }
            }
        }
        let me = my_pidns();
        if me == 0 {
            return Ok(());
        }
        fence(SeqCst);
        let mut foreign = None;
        // Acquire: pairs with the claimer's Release, so its ns store is visible.
        self.for_each_occupied(Acquire, |_, slot| {
            // Relaxed: ordered by the Acquire bitmap load.
            let pid = slot.pid.load(Relaxed) & PID_MASK;
            if pid != 0 && foreign_ns(slot.ns.load(Relaxed), me) {
                foreign = Some(pid);
            }
            foreign.is_none()
        });
        match foreign {
            Some(pid) => {
                self.release_slot();
                Err(pid)
            }
            None => Ok(()),
        }
    }

    /// Gives back this handle's reader slot (when the handle closes; no guard may be alive
    /// and no other thread may use the handle concurrently). Idempotent; the next `read`
    /// claims a slot again. A no-op in a forked child for the parent's slot.
    pub fn release_slot(&self) {
        // Acquire: as in `read`.
        let state = self.slot.load(Acquire);
        let s = state as u32;
        if (state >> 32) as u32 != fork_gen() || s == NO_SLOT {
            return;
        }
        if s != SLOTLESS {
            // Relaxed: same-thread bookkeeping; a live hold means misuse: keep the slot
            // rather than free it under a reader (it is reaped when the process dies).
            if self.slot_at(s as usize - 1).depth.load(Relaxed) & COUNT_MASK != 0 {
                debug_assert!(false, "release_slot with a read lock held");
                return;
            }
        }
        // Relaxed: the state is process-local and the caller guarantees no concurrent use.
        if self
            .slot
            .compare_exchange(state, state & !0xFFFF_FFFF, Relaxed, Relaxed)
            .is_ok()
            && s != SLOTLESS
        {
            self.free_slot(s as usize - 1);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Guards
// ---------------------------------------------------------------------------------------

/// Holds the write lock; `seq` is odd while it lives.
#[must_use = "the lock is released when the guard is dropped"]
pub struct WriteGuard<'a> {
    lock: &'a Lock,
    odd: u64,
    gen: u32,
    recovered: bool,
    _not_send: PhantomData<*const ()>,
}

impl WriteGuard<'_> {
    /// True if the previous holder was found dead and this guard took over (or a reader
    /// took over since the last writer): the map must be checked and repaired.
    pub fn recovered(&self) -> bool {
        self.recovered
    }
}

impl Drop for WriteGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        writes_held_add(-1);
        if fork_gen() != self.gen {
            return; // inherited across fork: the lock is our parent's to release
        }
        // Release: everything written under the guard happens before an optimistic read
        // that Acquire-loads this even value.
        self.lock.seq().store(self.odd.wrapping_add(1), Release);
        self.lock.release_writer_word();
    }
}

/// Holds a read lock.
#[must_use = "the lock is released when the guard is dropped"]
pub struct ReadGuard<'a> {
    lock: &'a Lock,
    /// Null for a slotless hold (this handle holds the writer word).
    slot: *const ReaderSlot,
    gen: u32,
    /// !Send: the thread-local READS_HELD count must be decremented where it was incremented.
    _not_send: PhantomData<*const ()>,
}

impl<'a> ReadGuard<'a> {
    #[inline]
    fn new(lock: &'a Lock, slot: *const ReaderSlot, gen: u32) -> Self {
        reads_held_add(1);
        ReadGuard {
            lock,
            slot,
            gen,
            _not_send: PhantomData,
        }
    }
}

impl Drop for ReadGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        reads_held_add(-1);
        if fork_gen() != self.gen {
            return; // inherited across fork: the hold is our parent's
        }
        if self.slot.is_null() {
            self.lock.slotless_release();
            return;
        }
        // SAFETY: the slot is in the mapping, which outlives the Lock we borrow.
        let slot = unsafe { &*self.slot };
        // Release: our reads happen before the writer's writes (its Acquire load of depth).
        let prev = slot.depth.fetch_sub(HOLD, Release);
        if prev == SLOT_PARKED | HOLD {
            sync::futex_wake_all(&slot.depth);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Waiting and liveness
// ---------------------------------------------------------------------------------------

/// Spin, then park with timeouts; says when it is time to check the holder.
struct Backoff {
    spins: u32,
    parks: u32,
    #[cfg(not(loom))]
    last_check: Option<std::time::Instant>,
}

impl Backoff {
    fn new() -> Self {
        Backoff {
            spins: 0,
            parks: 0,
            #[cfg(not(loom))]
            last_check: None,
        }
    }

    /// One round of spinning; false once the spin budget is used up.
    #[inline]
    #[allow(clippy::absurd_extreme_comparisons)] // SPIN_ROUNDS is 0 under loom
    fn spin(&mut self) -> bool {
        if self.spins >= SPIN_ROUNDS {
            return false;
        }
        self.spins += 1;
        #[cfg(not(loom))]
        for _ in 0..1u32 << self.spins {
            sync::spin_hint();
        }
        #[cfg(loom)]
        sync::spin_hint();
        true
    }

    /// Sleeps on `word` while it equals `expected`; true if the holder should be checked now.
    #[cold]
    fn park(&mut self, word: &AtomicU32, expected: u32, parked: &AtomicU32) -> bool {
        let timeout = if self.parks == 0 { FIRST_PARK } else { PARK };
        self.parks += 1;
        // Relaxed: advisory counts, nothing is ordered by them.
        parked.fetch_add(1, Relaxed);
        let r = sync::futex_wait(word, expected, timeout);
        parked.fetch_sub(1, Relaxed);
        #[cfg(loom)]
        {
            let _ = r;
            false // no processes to die under loom
        }
        #[cfg(not(loom))]
        {
            // Also check when wake-ups keep us from ever timing out.
            let now = std::time::Instant::now();
            let last = *self.last_check.get_or_insert(now);
            let due = r == sync::Wait::TimedOut || now.duration_since(last) >= PARK;
            if due {
                self.last_check = Some(now);
            }
            due
        }
    }
}

/// True if the writer word value `v` names no live holder: a dead process, or a value no
/// holder writes (no HELD bit, pid 0 or beyond PID_MAX_LIMIT, damage), or our own pid
/// when this process cannot be holding it (left by a dead process that had our pid).
#[cfg(not(loom))]
#[cold]
fn writer_dead(v: u32) -> bool {
    if v & HELD == 0 {
        return true;
    }
    let pid = v & PID_MASK;
    if pid == 0 || pid >= PID_MAX_LIMIT {
        return true;
    }
    if pid == my_pid() {
        return own_pid_stale();
    }
    process_dead(pid)
}

#[cfg(loom)]
fn writer_dead(_v: u32) -> bool {
    false // every loom thread has our pid, and none dies
}

/// Our pid is in a writer word that we are waiting for: ours only if this thread took a
/// writer word, or another thread of this process may have (we cannot tell which).
#[cfg(not(loom))]
fn own_pid_stale() -> bool {
    WRITES_HELD.with(|c| c.get()) == 0 && threads_in_process() == Some(1)
}

/// True when no read lock of this process can be held or pending: this thread holds no
/// read guard and is the process's only thread.
#[cfg(not(loom))]
#[cold]
fn own_counts_are_damage() -> bool {
    READS_HELD.with(|c| c.get()) == 0 && threads_in_process() == Some(1)
}

#[cfg(loom)]
fn own_counts_are_damage() -> bool {
    false
}

/// Number of threads of this process, from /proc/self/stat (field 20).
#[cfg(not(loom))]
fn threads_in_process() -> Option<u32> {
    let s = std::fs::read("/proc/self/stat").ok()?;
    // "pid (comm) S ppid ...": comm may contain ')' and spaces, nothing after it does.
    let i = s.iter().rposition(|&c| c == b')')?;
    let rest = std::str::from_utf8(&s[i + 1..]).ok()?;
    rest.split_ascii_whitespace().nth(17)?.parse().ok()
}

/// True if reader slot `slot` (pid word `pid`) belongs to nobody alive: a dead owner or
/// reaper, damage (pid 0 or out of range while in the bitmap), or our pid with another
/// incarnation's nonce. Never true for an owner in another PID namespace: its pid means
/// nothing here.
#[cfg(not(loom))]
#[cold]
fn slot_dead(slot: &ReaderSlot, pid: u32, in_bitmap: bool) -> bool {
    let p = pid & PID_MASK;
    if p == 0 || p >= PID_MAX_LIMIT {
        return in_bitmap || pid & REAPING != 0;
    }
    // Relaxed: valid when the bit is set (Acquire above); otherwise a hint we re-check.
    if foreign_ns(slot.ns.load(Relaxed), my_pidns()) {
        return false;
    }
    if p == my_pid() {
        if pid & REAPING != 0 {
            return own_pid_stale(); // a reaper of ours is mid-way only on another thread
        }
        // Relaxed: as above. Our current slots carry our nonce.
        return in_bitmap && slot.nonce.load(Relaxed) != my_nonce();
    }
    process_dead(p)
}

#[cfg(loom)]
fn slot_dead(_slot: &ReaderSlot, _pid: u32, _in_bitmap: bool) -> bool {
    false
}

/// True if process `pid` has exited (gone, or a zombie). Never true for ourselves.
#[cfg(not(loom))]
#[cold]
fn process_dead(pid: u32) -> bool {
    if pid == 0 || pid == my_pid() {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists and that we may signal it.
    if unsafe { libc::kill(pid as libc::pid_t, 0) } == -1 && sync::errno() == libc::ESRCH {
        return true;
    }
    is_zombie(pid) // a zombie still answers kill() until its parent reaps it
}

#[cfg(loom)]
fn process_dead(_pid: u32) -> bool {
    false
}

/// Reads the state letter of /proc/PID/stat without allocating.
#[cfg(not(loom))]
fn is_zombie(pid: u32) -> bool {
    let mut path = [0u8; 32];
    path[..6].copy_from_slice(b"/proc/");
    let mut n = 6;
    let mut digits = [0u8; 10];
    let (mut d, mut p) = (0, pid);
    loop {
        digits[d] = b'0' + (p % 10) as u8;
        d += 1;
        p /= 10;
        if p == 0 {
            break;
        }
    }
    while d > 0 {
        d -= 1;
        path[n] = digits[d];
        n += 1;
    }
    path[n..n + 5].copy_from_slice(b"/stat"); // NUL follows: the buffer was zeroed
                                              // SAFETY: `path` is NUL-terminated and outlives the call.
    let fd = unsafe { libc::open(path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return false; // gone since kill(): the next check sees ESRCH
    }
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is writable for its length; `fd` is ours and closed right after.
    let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    // SAFETY: closing the descriptor we opened above.
    unsafe { libc::close(fd) };
    if r <= 0 {
        return false;
    }
    let line = &buf[..r as usize];
    // "pid (comm) S ...": comm may contain ')' and spaces, nothing after it does.
    match line.iter().rposition(|&c| c == b')') {
        Some(i) if i + 2 < line.len() => matches!(line[i + 2], b'Z' | b'X'),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// Zeroed shared memory laid out like a map header's lock parts, plus a data pair.
    pub(super) struct Region {
        base: *mut u8,
        len: usize,
    }

    // SAFETY: the region is plain shared memory used only through atomics.
    unsafe impl Send for Region {}
    // SAFETY: as above.
    unsafe impl Sync for Region {}

    const OFF_SEQ: usize = 64;
    const OFF_BITMAP: usize = 128;
    const OFF_SLOTS: usize = 256;
    const OFF_DATA: usize = OFF_SLOTS + READER_SLOTS * 64;

    impl Region {
        pub(super) fn new() -> Region {
            let len = (OFF_DATA + 4096 + 4095) & !4095;
            // SAFETY: anonymous shared mapping, checked for failure; zero-filled by the kernel.
            let base = unsafe {
                libc::mmap(
                    ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            assert_ne!(base, libc::MAP_FAILED);
            Region {
                base: base.cast(),
                len,
            }
        }
        fn at<T>(&self, off: usize) -> &T {
            // SAFETY: offsets are in range and 64-aligned; all-zero is valid for these types.
            unsafe { &*self.base.add(off).cast::<T>() }
        }
        pub(super) fn words(&self) -> &LockWords {
            self.at(0)
        }
        pub(super) fn seq(&self) -> u64 {
            self.at::<SeqWord>(OFF_SEQ).seq.load(Relaxed)
        }
        pub(super) fn bitmap(&self) -> &ReaderBitmap {
            self.at(OFF_BITMAP)
        }
        pub(super) fn slot(&self, i: usize) -> &ReaderSlot {
            self.at(OFF_SLOTS + i * 64)
        }
        pub(super) fn data(&self, i: usize) -> &AtomicU64 {
            self.at(OFF_DATA + i * 8)
        }
        pub(super) fn lock(&self) -> Lock {
            // SAFETY: the region outlives every Lock of these tests (leaked or joined).
            unsafe {
                Lock::new(
                    self.at(0),
                    self.at(OFF_SEQ),
                    self.at(OFF_SLOTS),
                    self.at(OFF_BITMAP),
                )
            }
        }
        /// Slots currently owned by `pid`.
        pub(super) fn slots_of(&self, pid: u32) -> Vec<usize> {
            (0..READER_SLOTS)
                .filter(|&i| self.slot(i).pid.load(Relaxed) == pid)
                .collect()
        }
        pub(super) fn bit(&self, i: usize) -> bool {
            self.bitmap().words[i / 64].load(Relaxed) & (1 << (i % 64)) != 0
        }
    }

    impl Drop for Region {
        fn drop(&mut self) {
            // SAFETY: unmapping our own mapping; no Lock outlives the Region in these tests.
            unsafe { libc::munmap(self.base.cast(), self.len) };
        }
    }

    /// A pid that just died (reaped), for faking dead holders.
    fn dead_pid() -> u32 {
        // SAFETY: the child only calls _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(0) };
        }
        let mut st = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut st, 0) };
        pid as u32
    }

    fn me() -> u32 {
        my_pid()
    }

    #[test]
    fn lock_layout_offsets() {
        let r = Region::new();
        let w = r.words();
        let base = w as *const LockWords as usize;
        assert_eq!(&w.writer as *const _ as usize - base, 0);
        assert_eq!(&w.parked_writers as *const _ as usize - base, 4);
        assert_eq!(&w.parked_readers as *const _ as usize - base, 8);
        assert_eq!(&w.sealed as *const _ as usize - base, 12);
        assert_eq!(&w.recover as *const _ as usize - base, 16);
        let s = r.slot(0);
        assert_eq!(
            &s.depth as *const _ as usize - &s.pid as *const _ as usize,
            4
        );
    }

    #[test]
    fn lock_basic_states() {
        let r = Region::new();
        let l = r.lock();
        {
            let g = l.write();
            assert!(!g.recovered());
            assert_eq!(r.words().writer.load(Relaxed), HELD | me());
            assert_eq!(r.seq() & 1, 1);
        }
        assert_eq!(r.words().writer.load(Relaxed), 0);
        assert_eq!(r.seq(), 2);
        {
            let _a = l.read();
            let _b = l.read();
            let i = r.slots_of(me())[0];
            assert_eq!(r.slot(i).depth.load(Relaxed), 2 * HOLD);
            assert!(r.bit(i));
        }
        let i = r.slots_of(me())[0];
        assert_eq!(r.slot(i).depth.load(Relaxed), 0);
        assert_eq!(l.optimistic(|| 7), 7);
        l.release_slot();
        assert_eq!(r.slot(i).pid.load(Relaxed), 0);
        assert!(!r.bit(i));
        l.release_slot(); // idempotent
        drop(l.read()); // claims again
        assert_eq!(r.slots_of(me()).len(), 1);
        l.release_slot();
    }

    /// Threads sharing one Lock plus threads with their own Locks over the same memory.
    #[test]
    fn lock_threads_count_exactly() {
        let r = Arc::new(Region::new());
        let shared = Arc::new(r.lock());
        let iters = 20_000u64;
        let mut ts = Vec::new();
        for t in 0..4 {
            let r = r.clone();
            let shared = shared.clone();
            ts.push(std::thread::spawn(move || {
                let own = r.lock();
                let l: &Lock = if t % 2 == 0 { &shared } else { &own };
                for i in 0..iters {
                    {
                        let _g = l.write();
                        let a = r.data(0).load(Relaxed);
                        let b = r.data(1).load(Relaxed);
                        assert_eq!(a, b);
                        r.data(0).store(a + 1, Relaxed);
                        std::hint::spin_loop();
                        r.data(1).store(b + 1, Relaxed);
                    }
                    if i % 3 == 0 {
                        let _g = l.read();
                        let _g2 = l.read();
                        assert_eq!(r.data(0).load(Relaxed), r.data(1).load(Relaxed));
                    } else {
                        let (a, b) =
                            l.optimistic(|| (r.data(0).load(Relaxed), r.data(1).load(Relaxed)));
                        assert_eq!(a, b);
                    }
                }
                own.release_slot();
            }));
        }
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(r.data(0).load(Relaxed), 4 * iters);
        assert_eq!(r.data(1).load(Relaxed), 4 * iters);
        assert_eq!(r.seq(), 2 * 4 * iters);
    }

    /// A thread holding a read lock reads again while a writer drains: must not deadlock.
    #[test]
    fn lock_nested_read_passes_waiting_writer() {
        let r = Arc::new(Region::new());
        let l = Arc::new(r.lock());
        let outer = l.read();
        let done = Arc::new(AtomicBool::new(false));
        let (r2, d2) = (r.clone(), done.clone());
        let w = std::thread::spawn(move || {
            let l2 = r2.lock();
            let _g = l2.write();
            d2.store(true, Relaxed);
        });
        // Wait until the writer holds the word (it is now draining our slot).
        while r.words().writer.load(Relaxed) == 0 {
            std::thread::yield_now();
        }
        std::thread::sleep(Duration::from_millis(20));
        {
            let _inner = l.read(); // would deadlock without the HOLD/TRY split
            assert!(!done.load(Relaxed));
        }
        assert!(!done.load(Relaxed));
        // A fresh thread (holding nothing) sharing the handle must wait for the writer.
        let (l3, d3) = (l.clone(), done.clone());
        let fresh = std::thread::spawn(move || {
            let _g = l3.read();
            assert!(d3.load(Relaxed), "fresh reader overtook a waiting writer");
        });
        std::thread::sleep(Duration::from_millis(20));
        drop(outer);
        w.join().unwrap();
        fresh.join().unwrap();
        assert!(done.load(Relaxed));
    }

    /// Writers wait for readers, readers for writers, across two handles, with sleeping.
    #[test]
    fn lock_parks_and_wakes() {
        fn until(what: &str, f: impl Fn() -> bool) {
            let start = Instant::now();
            while !f() {
                assert!(start.elapsed() < Duration::from_secs(10), "never: {what}");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let r = Arc::new(Region::new());
        let l = r.lock();
        let g = l.read();
        let done = Arc::new(AtomicBool::new(false));
        let (r2, d2) = (r.clone(), done.clone());
        let t = std::thread::spawn(move || {
            let l2 = r2.lock();
            let _w = l2.write();
            d2.store(true, Relaxed);
        });
        until("writer asleep on our slot", || {
            r.words().parked_writers.load(Relaxed) == 1
        });
        let i = r.slots_of(me())[0];
        assert_eq!(r.slot(i).depth.load(Relaxed), SLOT_PARKED | HOLD);
        assert!(!done.load(Relaxed));
        drop(g); // must wake it (its timeout is 5 ms, so only "not stuck" is observable)
        t.join().unwrap();
        assert!(done.load(Relaxed));
        assert_eq!(r.words().parked_writers.load(Relaxed), 0);
        assert_eq!(r.slot(i).depth.load(Relaxed), 0); // the parked bit was cleared

        let w = l.write();
        let r3 = r.clone();
        let t = std::thread::spawn(move || {
            let l3 = r3.lock();
            let g = l3.read();
            let v = l3.optimistic(|| r3.data(0).load(Relaxed));
            drop(g);
            l3.release_slot();
            v
        });
        until("reader asleep on the writer word", || {
            r.words().parked_readers.load(Relaxed) == 1
        });
        assert_eq!(r.words().writer.load(Relaxed), HELD | WRITER_PARKED | me());
        r.data(0).store(42, Relaxed);
        drop(w);
        assert_eq!(t.join().unwrap(), 42);
    }

    #[test]
    fn lock_dead_writer_taken_over() {
        let r = Region::new();
        let dead = dead_pid();
        r.words().writer.store(HELD | dead, Relaxed);
        r.at::<SeqWord>(OFF_SEQ).seq.store(5, Relaxed); // died mid-write
        let l = r.lock();
        let start = Instant::now();
        let g = l.write();
        assert!(g.recovered());
        assert!(start.elapsed() < Duration::from_secs(2));
        assert_eq!(r.seq(), 7);
        drop(g);
        assert_eq!(r.seq(), 8);
        assert!(!l.write().recovered());
    }

    #[test]
    fn lock_dead_writer_reader_takeover_flags_repair() {
        let r = Region::new();
        let dead = dead_pid();
        r.words().writer.store(HELD | dead, Relaxed);
        r.at::<SeqWord>(OFF_SEQ).seq.store(3, Relaxed);
        let l = r.lock();
        let start = Instant::now();
        assert_eq!(l.optimistic(|| 1), 1);
        assert!(start.elapsed() < Duration::from_secs(2));
        assert_eq!(r.seq(), 4);
        assert!(l.repair_pending());
        assert_eq!(r.words().writer.load(Relaxed), 0);
        let g = l.write();
        assert!(g.recovered());
        assert!(!l.repair_pending());
        drop(g);
        assert!(!l.write().recovered());
    }

    #[test]
    fn lock_dead_reader_slot_cleared_by_writer() {
        let r = Region::new();
        let dead = dead_pid();
        r.slot(5).pid.store(dead, Relaxed);
        r.slot(5).depth.store(3 * HOLD, Relaxed);
        r.bitmap().words[0].store(1 << 5, Relaxed);
        let l = r.lock();
        let start = Instant::now();
        drop(l.write());
        assert!(start.elapsed() < Duration::from_secs(2));
        assert_eq!(r.slot(5).pid.load(Relaxed), 0);
        assert_eq!(r.slot(5).depth.load(Relaxed), 0);
        assert!(!r.bit(5));
    }

    /// All slots owned by live processes: reads go through the writer word, still recursive
    /// and still exclusive with writers.
    #[test]
    fn lock_slotless_when_full() {
        let r = Arc::new(Region::new());
        for i in 0..READER_SLOTS {
            r.slot(i).pid.store(1, Relaxed); // init: alive, not ours
        }
        for w in &r.bitmap().words {
            w.store(!0, Relaxed);
        }
        let l = Arc::new(r.lock());
        {
            let _a = l.read();
            let _b = l.read();
            assert_eq!(r.words().writer.load(Relaxed), HELD | me());
            assert!(r.slots_of(me()).is_empty());
        }
        assert_eq!(r.words().writer.load(Relaxed), 0);
        let mut ts = Vec::new();
        for t in 0..3 {
            let (r, l) = (r.clone(), l.clone());
            ts.push(std::thread::spawn(move || {
                let own = r.lock();
                for _ in 0..5000 {
                    if t == 0 {
                        let _g = own.write();
                        let a = r.data(0).load(Relaxed);
                        r.data(0).store(a + 1, Relaxed);
                        r.data(1).store(a + 1, Relaxed);
                    } else {
                        let _g = l.read();
                        let _g2 = l.read();
                        assert_eq!(r.data(0).load(Relaxed), r.data(1).load(Relaxed));
                    }
                }
            }));
        }
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(r.data(0).load(Relaxed), 5000);
        // A slot frees up: the handle moves back to slotted reads.
        r.slot(9).pid.store(0, Relaxed);
        r.bitmap().words[0].fetch_and(!(1 << 9), Relaxed);
        drop(l.read());
        assert_eq!(r.slots_of(me()), vec![9]);
    }

    #[test]
    fn lock_full_of_dead_slots_is_reaped_on_claim() {
        let r = Region::new();
        let dead = dead_pid();
        for i in 0..READER_SLOTS {
            r.slot(i).pid.store(dead, Relaxed);
            r.slot(i).depth.store(HOLD, Relaxed);
        }
        for w in &r.bitmap().words {
            w.store(!0, Relaxed);
        }
        let l = r.lock();
        drop(l.read());
        let mine = r.slots_of(me());
        assert_eq!(mine.len(), 1);
        assert_eq!(r.slots_of(dead).len(), 0);
        assert_eq!(r.words().writer.load(Relaxed), 0);
    }

    #[test]
    fn lock_zombie_is_dead() {
        // SAFETY: the child only calls _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: ends the child at once.
            unsafe { libc::_exit(0) };
        }
        let start = Instant::now();
        while !process_dead(pid as u32) {
            assert!(start.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut st = 0;
        // SAFETY: reaping our own child.
        unsafe { libc::waitpid(pid, &mut st, 0) };
        assert!(process_dead(pid as u32));
        assert!(!process_dead(me()));
        assert!(!process_dead(1));
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use ::loom::cell::UnsafeCell;
    use ::loom::sync::Arc;
    use ::loom::thread;

    struct Shared {
        words: LockWords,
        seq: SeqWord,
        slots: Vec<ReaderSlot>,
        bitmap: ReaderBitmap,
        a: AtomicU64,
        b: AtomicU64,
        cell: UnsafeCell<(u64, u64)>,
    }

    // SAFETY: `cell` is only touched under the lock being tested; loom checks exactly that.
    unsafe impl Sync for Shared {}
    // SAFETY: as above.
    unsafe impl Send for Shared {}

    impl Shared {
        fn new() -> Arc<Shared> {
            Arc::new(Shared {
                words: LockWords {
                    writer: AtomicU32::new(0),
                    parked_writers: AtomicU32::new(0),
                    parked_readers: AtomicU32::new(0),
                    sealed: AtomicU32::new(0),
                    recover: AtomicU32::new(0),
                },
                seq: SeqWord {
                    seq: AtomicU64::new(0),
                },
                slots: (0..READER_SLOTS)
                    .map(|_| ReaderSlot {
                        pid: AtomicU32::new(0),
                        depth: AtomicU32::new(0),
                        ns: AtomicU32::new(0),
                        nonce: AtomicU32::new(0),
                    })
                    .collect(),
                bitmap: ReaderBitmap {
                    words: core::array::from_fn(|_| AtomicU64::new(0)),
                },
                a: AtomicU64::new(0),
                b: AtomicU64::new(0),
                cell: UnsafeCell::new((0, 0)),
            })
        }
        fn lock(&self) -> Lock {
            // SAFETY: every Lock is dropped before the Arc that owns this memory.
            unsafe { Lock::new(&self.words, &self.seq, self.slots.as_ptr(), &self.bitmap) }
        }
        fn bump(&self) {
            // SAFETY: called under the write lock; loom reports any overlap.
            self.cell.with_mut(|p| unsafe {
                (*p).0 += 1;
                (*p).1 += 1;
            });
        }
        fn check(&self) -> u64 {
            // SAFETY: called under a read lock; loom reports overlap with a writer.
            self.cell.with(|p| unsafe {
                assert_eq!((*p).0, (*p).1);
                (*p).0
            })
        }
    }

    fn model(f: impl Fn() + Sync + Send + 'static) {
        model_bound(3, f)
    }

    /// Three-thread models use bound 2 (seconds); 3 makes them take minutes.
    fn model_bound(bound: usize, f: impl Fn() + Sync + Send + 'static) {
        let mut b = ::loom::model::Builder::new();
        b.preemption_bound = Some(bound);
        b.check(f);
    }

    #[test]
    fn loom_write_excludes_read() {
        model(|| {
            let sh = Shared::new();
            let s2 = sh.clone();
            let t = thread::spawn(move || {
                let l = s2.lock();
                let _g = l.write();
                s2.bump();
            });
            let l = sh.lock();
            {
                let _g = l.read();
                sh.check();
            }
            t.join().unwrap();
            let _g = l.read();
            assert_eq!(sh.check(), 1);
        });
    }

    #[test]
    fn loom_writers_exclude_each_other() {
        model(|| {
            let sh = Shared::new();
            let s2 = sh.clone();
            let t = thread::spawn(move || {
                let l = s2.lock();
                let _g = l.write();
                s2.bump();
            });
            let l = sh.lock();
            drop({
                let g = l.write();
                sh.bump();
                g
            });
            t.join().unwrap();
            let _g = l.write();
            assert_eq!(sh.check(), 2);
        });
    }

    #[test]
    fn loom_seqlock_never_torn() {
        model(|| {
            let sh = Shared::new();
            let s2 = sh.clone();
            let t = thread::spawn(move || {
                let l = s2.lock();
                for v in 1..=2 {
                    let _g = l.write();
                    s2.a.store(v, Relaxed);
                    s2.b.store(v, Relaxed);
                }
            });
            let l = sh.lock();
            let (a, b) = l.optimistic(|| (sh.a.load(Relaxed), sh.b.load(Relaxed)));
            assert_eq!(a, b);
            t.join().unwrap();
        });
    }

    /// A thread already holding a read lock on another map reads through a handle shared
    /// with a second reader while a writer works: the second reader's pending (TRY) unit must
    /// not count as a granted hold that lets the first pass the writer.
    #[test]
    fn loom_pending_reader_is_not_a_hold() {
        model_bound(2, || {
            let sh = Shared::new();
            let other = Shared::new();
            let l = Arc::new(sh.lock());
            let (s2, l2) = (sh.clone(), l.clone());
            let reader = thread::spawn(move || {
                let lo = other.lock();
                let _o = lo.read();
                let _g = l2.read();
                s2.check();
            });
            let s3 = sh.clone();
            let writer = thread::spawn(move || {
                let l = s3.lock();
                let _g = l.write();
                s3.bump();
            });
            {
                let _g = l.read();
                sh.check();
            }
            reader.join().unwrap();
            writer.join().unwrap();
        });
    }

    /// Two threads share one handle (one slot) against a writer on another handle; one of
    /// them nests. Exclusion holds and nothing deadlocks (loom fails a model that spins forever).
    #[test]
    fn loom_shared_slot_and_nesting() {
        model_bound(2, || {
            let sh = Shared::new();
            let l = Arc::new(sh.lock());
            let (s2, l2) = (sh.clone(), l.clone());
            let reader = thread::spawn(move || {
                let _g = l2.read();
                s2.check();
            });
            let s3 = sh.clone();
            let writer = thread::spawn(move || {
                let l = s3.lock();
                let _g = l.write();
                s3.bump();
            });
            {
                let _g = l.read();
                let _n = l.read();
                sh.check();
            }
            reader.join().unwrap();
            writer.join().unwrap();
        });
    }
}
