//! Cross-process reader-writer lock and seqlock over words that live in the shared mapping.
//!
//! Many processes map the same file; each map handle owns a [`Lock`], a process-local view
//! over the shared parts: the header's hot line ([`HotLine`], offset 256: the writer word
//! and the seqlock word share it with every counter a write touches), the lock side line
//! ([`LockSide`]: advisory counts), one [`ReaderSlot`] per read-write handle (one cache
//! line each, so readers never write a line another reader writes), the [`ReaderBitmap`]
//! of occupied slots, and the handle's own open file description of the map file
//! ([`Liveness`]), on which it holds a lock that the kernel drops when the process dies.
//!
//! # States
//!
//! Writer word (`HotLine::writer`):
//!
//! | value                                  | meaning                                         |
//! |----------------------------------------|-------------------------------------------------|
//! | `0`                                    | free                                            |
//! | `HELD \| tag << 10 \| i`               | held by the handle owning reader slot `i`, in its incarnation `tag` |
//! | `HELD \| WRITER_PARKED \| tag << 10 \| i` | held, and someone may sleep on the word: release must wake |
//!
//! `HELD` is bit 31, `WRITER_PARKED` bit 30, the tag (low 20 bits of the slot's
//! incarnation counter) bits 10..29, the slot index bits 0..9. A handle's identity, the
//! value it writes, is fixed when it claims its slot.
//!
//! Reader slot (`ReaderSlot`, one per read-write handle):
//!
//! | field   | meaning                                                                       |
//! |---------|-------------------------------------------------------------------------------|
//! | `pid`   | 0 = free, else the owner's pid as the owner sees it (for display; liveness never looks at it) |
//! | `depth` | bits 0..15 `HOLD`: read locks granted through this slot (nesting, and threads of a handle); bits 16..30 `TRY`: readers between their increment and their look at the writer word; bit 31 `SLOT_PARKED`: the writer sleeps on this word, whoever empties bits 0..30 must wake it |
//! | `tag`   | incarnation: bumped by every claim, so that a writer word left by an earlier owner of the slot is never taken for the current owner's |
//! | `ns`    | the owner's PID namespace id (display only) |
//!
//! Slot `i`'s *byte* is byte `slots_offset + 64 * i` of the map file: its owner holds an
//! open-file-description lock (`F_OFD_SETLK`, `F_WRLCK`) on it for as long as it owns the
//! slot (liveness.rs). The slot changes hands only while its byte is held: a claimer or
//! reaper that gets the byte knows the previous owner is gone.
//!
//! Seq word (`HotLine::seq`, u32): even = no write in progress; odd = a writer is inside.
//!
//! `HotLine::recover`: `1` = a reader took over a dead writer and could not repair the
//! map; the next [`Lock::write`] reports [`WriteGuard::recovered`].
//!
//! `HotLine::slots_hw`: the number of bitmap words a writer scans (at least 1): every
//! claimer raises it to cover its slot before setting its bit; it never shrinks.
//!
//! # Protocol
//!
//! Read lock: `depth += TRY (SeqCst); writer == 0 (SeqCst) ?` then `depth += HOLD - TRY`.
//! Write lock: `CAS writer 0 -> identity (SeqCst)`, then for every bit of the bitmap
//! words below `slots_hw` (all loaded SeqCst) wait until that slot's depth (SeqCst) has no
//! `HOLD`/`TRY` bits, then make `seq` odd. This is Dekker's algorithm: either the writer's
//! loads see the reader's increment and bitmap bit, or the reader's load sees the writer's
//! CAS (proof below). A reader that sees the writer backs off (`depth -= TRY`), waits for
//! the writer word to clear, and retries: writers are preferred over new readers.
//!
//! **Why one SeqCst CAS is enough (no fence).** C++20 [atomics.order] p4, which Rust's
//! atomics follow: there is one total order S of all SeqCst operations, consistent with
//! "strongly happens before" (so with program order between SeqCst operations of one
//! thread), and if a SeqCst operation A is coherence-ordered before a SeqCst operation B
//! on the same object, A precedes B in S (p4.1). Suppose both miss each other: the
//! reader's load R of the writer word reads a value from before the writer's CAS C (R is
//! coherence-ordered before C, so R <S C), and the writer's load L of the reader's depth
//! reads a value from before the reader's increment D (L <S D). Program order gives
//! D <S R and C <S L. Then D < R < C < L < D in S: a cycle, impossible. The claimer's
//! `slots_hw` raise H and bitmap bit set B are SeqCst RMWs program-ordered before its
//! first D, so a writer load of either that misses it gives L <S H <S D < R < C < L: the
//! same cycle. On x86-64 the SeqCst loads are plain `mov`s and a SeqCst RMW is the same
//! `lock cmpxchg`/`lock xadd` as an Acquire one: the acquire path costs one serialising
//! instruction (the CAS), where Acquire CAS + `fence(SeqCst)` cost two (issue 12).
//! Under loom the models use the older, fenced form of the same handshake
//! (`dekker_fence`: `fence(SeqCst)` after the RMW on both sides): loom models SeqCst
//! RMWs and loads as AcqRel/Acquire and would report a race the C++ model excludes. The
//! fenced form is proven by the fences' total order (either the writer's loads after its
//! fence see what the reader stored before its fence, or the reader's load after its
//! fence sees the writer's CAS); the fence-free form by the argument above.
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
//!   `parked_writers`/`parked_readers` ([`LockSide`], off the hot line) are advisory counts
//!   of sleepers (diagnostics; a process killed while asleep leaves them one too high).
//! - Every read-write handle has a slot, claimed when it opens the map (and anew in a
//!   forked child, on first use). When all [`READER_SLOTS`] are owned by live handles,
//!   opening one more read-write handle is refused ("all 1024 reader slots are held by
//!   live handles"): a handle's identity in the writer word must name something whose
//!   liveness the kernel can prove, and the slot is that thing. Read-only handles
//!   (`new_readonly`) take no slot and never lock.
//!
//! Seqlock ([`Lock::optimistic`]): `s1 = seq (Acquire); if even { f(); fence(Acquire);
//! seq (Relaxed) == s1 }`. The writer makes seq odd then `fence(Release)` before touching
//! data, and even with a Release store after. If `f` read anything the writer stored after its
//! odd bump, the reader's acquire fence synchronises with the writer's release fence, so the
//! second load sees the odd value (or later) and the result is discarded (Boehm, "Can
//! seqlocks get along with programming language memory models?", 2012). The counter is 32
//! bits: a reader is fooled only if exactly 2^31 writes (minutes of writing) happen
//! during one attempt of `f` and the data it read is torn.
//!
//! # Waiting and dead holders
//!
//! Waiters spin first: `spin_loop` pauses, 2 to 8 between looks at the word, for at most
//! [`SPIN_TIME`] (about 200 critical sections of a put; a wake-up across CPUs costs 80-100
//! us on the VMs we measured, so parking early loses hundreds of hand-overs), with no
//! system call (decisions 9): the clock is read through the vDSO. Then `FUTEX_WAIT` on the word they need to change, shared
//! futexes since the waker is usually another process, with a timeout: 5 ms the first
//! time, then 50 ms. After a timeout (or every 50 ms of wake-ups) a waiter tests the
//! holder:
//!
//! - writer word `HELD | tag << 10 | i`: the holder is alive if another description
//!   holds slot `i`'s byte (`F_OFD_GETLK`, liveness.rs) *and* slot `i` still carries `tag`
//!   (a slot claimed anew since carries another tag: its byte proves the new owner alive,
//!   not the holder). Our own identity is alive (a thread of this handle holds the word,
//!   or this thread: a deadlock by contract); our own slot under another tag is an
//!   earlier owner's, dead. A word without `HELD` is damage: dead.
//! - a reader slot in the bitmap: its owner is alive while its byte is held; a waiting
//!   writer that gets the byte (`F_OFD_SETLK`) has proved the owner gone and clears the
//!   slot (depth 0, bitmap bit off, pid 0) before giving the byte back.
//!
//! The kernel releases a byte when the owning process dies, in any PID namespace, and a
//! reused pid has nothing to do with it (decisions 18); so there is no pid-reuse stall and
//! a map is shared across PID namespaces. The first test comes ~5 ms after the spin, later
//! ones every 50 ms: a dead holder is taken over after ~5 ms typically, 50 ms at most plus
//! scheduling (decisions 9). A dead holder's writer word is taken over by a CAS from
//! exactly the value naming it, keeping `WRITER_PARKED` so sleepers still get their
//! wake-up. A writer that takes over steps `seq` over the dead writer's odd value and
//! reports `recovered()`. A reader that takes over (it cannot repair the map) makes `seq`
//! even, sets `recover`, and releases; the next writer reports `recovered()` (the map code
//! can poll [`Lock::repair_pending`] on read paths to repair sooner).
//!
//! Tags are 20 bits in the writer word: a dead holder is mistaken for a live one only if
//! its slot is claimed again exactly 2^20 times (each claim opens the map: minutes)
//! between two tests of one waiter. A claimer never takes a tag that the current writer
//! word names for its slot, so a word left over in a damaged or copied file never names a
//! live handle's identity by accident of its claim.
//!
//! Damage: counts written into a reader slot of this very handle are only recognised as
//! damage when the process has one thread (then nothing of it can hold a read lock while
//! it writes or overflows its own slot); in a multi-threaded process a read then panics
//! ("nested more than 65535 deep"). A writer word naming a slot held by a live handle
//! under that handle's own tag looks like that handle's hold: waiters wait for it.
//!
//! Release stays an RMW (`swap`), not the plain store write-path.md 3.7 proposes: with a
//! load-then-store release, a waiter that sets `WRITER_PARKED` between the two and enters
//! FUTEX_WAIT before the store lands is not woken until its timeout (5 ms). That is
//! bounded, but it turns a lost race into a 5 ms stall of a writer, and loom cannot check
//! the window without modelling timeouts; the spin before parking already makes parking
//! rare under contention. Not done.
//!
//! # Fork
//!
//! A `pthread_atfork` child handler bumps a process-wide generation and refreshes the
//! cached pid; liveness.rs's gives every handle a fresh file description (the child must
//! not keep its parent's description, whose locks would then outlive the parent). A
//! handle's state is tagged with the generation it claimed its slot in, so a child claims
//! its own slot on its first lock operation instead of sharing its parent's (checked with
//! one relaxed load). Guards remember their generation too: a guard inherited across fork
//! is dropped in the child without touching the parent's lock. If the child could not get
//! a description of its own, its first lock operation panics with the reason (the C ABI
//! turns it into an error).
//!
//! # Rules for callers
//!
//! Not reentrant for writers: `write()`, `read()` or `optimistic()` while this thread holds
//! the write lock deadlocks, and so does `write()` while this thread holds a read lock (through
//! any handle on the same map). Nested reads through one handle are fine; nested reads through
//! two handles of the same map can deadlock against a waiting writer. Call
//! [`Lock::release_slot`] when the handle closes. Do not take fcntl record locks on a map
//! file yourself: they would look like holders of the slot bytes.
//!
//! # Tests
//!
//! ```text
//! cargo test -p hashmap-shared --release lock          # unit tests here + tests/lock_*.rs (fork)
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p hashmap-shared --release --lib lock::loom   # model checking, ~10 s
//! ```
//!
//! Under loom the atomics are loom's, [`READER_SLOTS`] is 4, there is no spinning, no file
//! description (claims are exclusive through the slot's pid CAS, nobody dies), and a futex
//! is a table of parked threads checked under a lock (as the kernel does): a lost wake-up
//! is then reported as a deadlock instead of being hidden by a timeout. The models were
//! checked against deliberate bugs (each fence removed, each wake-up removed, the TRY/HOLD
//! split or the nesting rule removed, a non-exclusive write): each one fails.

use core::cell::Cell;
use core::marker::PhantomData;
use core::time::Duration;

pub use crate::liveness::Liveness;
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

/// The header's hot line (offset 256, one cache line): the lock's words and every header
/// counter a write touches, so that a write lock handed to another core moves one line.
/// This module owns `writer`, `seq`, `recover` and `slots_hw`; the other fields belong to
/// the map code (layout.rs `off::*`), which this module never touches.
#[repr(C, align(64))]
pub struct HotLine {
    /// 0 = free, else `HELD | tag << 10 | slot` (+ `WRITER_PARKED` when someone sleeps on it).
    pub writer: AtomicU32,
    /// Seqlock: odd while a writer is inside.
    pub seq: AtomicU32,
    /// Map code: live entries, tombstones, capacity, generation.
    pub size: AtomicU32,
    pub tombs: AtomicU32,
    pub cap: AtomicU32,
    pub generation: AtomicU32,
    /// Freeze seal, owned by the map code.
    pub sealed: AtomicU32,
    /// 1 = a reader took over a dead writer; the next writer reports `recovered()`.
    recover: AtomicU32,
    /// Map code: arena bytes used and free.
    pub arena_used: AtomicU64,
    pub arena_free: AtomicU64,
    /// Map code: LRU list head and tail.
    pub lru_head: AtomicU32,
    pub lru_tail: AtomicU32,
    /// Bitmap words a writer drains (raised by claimers, never lowered).
    slots_hw: AtomicU32,
    _spare: AtomicU32,
}

/// The lock side line (header offset 320): what waiters touch, off the hot line.
#[repr(C, align(64))]
pub struct LockSide {
    /// Advisory: writers asleep (on the writer word or on a reader slot).
    pub parked_writers: AtomicU32,
    /// Advisory: readers asleep on the writer word.
    pub parked_readers: AtomicU32,
}

/// One per read-write handle, one cache line each (decisions 12).
#[repr(C, align(64))]
pub struct ReaderSlot {
    /// 0 = free; else the owner's pid (display only).
    pub pid: AtomicU32,
    pub depth: AtomicU32,
    /// Incarnation counter, bumped by every claim.
    pub tag: AtomicU32,
    /// The owner's PID namespace (low 32 bits of its inode; display only).
    pub ns: AtomicU32,
}

/// Occupancy bitmap of the reader slots: bit `i` set while slot `i` may be in use.
#[repr(C, align(64))]
pub struct ReaderBitmap {
    pub words: [AtomicU64; BITMAP_WORDS],
}

// The file format fixes these sizes and offsets (layout.rs `off`, DESIGN.md "File format").
#[cfg(not(loom))]
const _: () = {
    use crate::layout::off;
    use core::mem::{offset_of, size_of};
    assert!(size_of::<HotLine>() == 64);
    assert!(size_of::<LockSide>() == 64);
    assert!(size_of::<ReaderSlot>() == 64);
    assert!(size_of::<ReaderBitmap>() == 128);
    assert!(core::mem::align_of::<ReaderBitmap>() == 64);
    assert!(off::LOCK + offset_of!(HotLine, writer) == off::WRITER);
    assert!(off::LOCK + offset_of!(HotLine, seq) == off::SEQ);
    assert!(off::LOCK + offset_of!(HotLine, size) == off::SIZE);
    assert!(off::LOCK + offset_of!(HotLine, tombs) == off::TOMBS);
    assert!(off::LOCK + offset_of!(HotLine, cap) == off::CAP);
    assert!(off::LOCK + offset_of!(HotLine, generation) == off::GENERATION);
    assert!(off::LOCK + offset_of!(HotLine, sealed) == off::SEALED);
    assert!(off::LOCK + offset_of!(HotLine, recover) == off::RECOVER);
    assert!(off::LOCK + offset_of!(HotLine, arena_used) == off::ARENA_USED);
    assert!(off::LOCK + offset_of!(HotLine, arena_free) == off::ARENA_FREE);
    assert!(off::LOCK + offset_of!(HotLine, lru_head) == off::LRU_HEAD);
    assert!(off::LOCK + offset_of!(HotLine, lru_tail) == off::LRU_TAIL);
    assert!(off::LOCK + offset_of!(HotLine, slots_hw) == off::SLOTS_HW);
    assert!(off::LOCK + size_of::<HotLine>() == off::HOT_END);
};

const HELD: u32 = 1 << 31;
const WRITER_PARKED: u32 = 1 << 30;
const IDX_BITS: u32 = 10;
const IDX_MASK: u32 = (1 << IDX_BITS) - 1;
const TAG_MASK: u32 = (1 << 20) - 1;

const HOLD: u32 = 1;
const HOLD_MASK: u32 = 0xFFFF;
const TRY: u32 = 1 << 16;
const SLOT_PARKED: u32 = 1 << 31;
const COUNT_MASK: u32 = !SLOT_PARKED;

/// The identity a handle owning slot `i` under `tag` writes into the writer word.
#[inline]
fn identity(i: usize, tag: u32) -> u32 {
    HELD | (tag & TAG_MASK) << IDX_BITS | i as u32
}

/// Longest a waiter spins (pause hints, no system call) before it parks: covers a
/// normal critical section (~100 ns for a put) hundreds of times over and stays well
/// below what a futex wake-up across CPUs costs (80-100 us measured); a holder stopped
/// or descheduled inside the lock costs each waiter this much CPU once, then nothing.
/// `HMS_SPIN_US` overrides it (benchmarks only; read once).
#[cfg(not(loom))]
pub const SPIN_TIME: Duration = Duration::from_micros(20);
/// First sleep is short so that a dead holder is usually noticed within milliseconds.
const FIRST_PARK: Duration = Duration::from_millis(5);
/// Later sleeps; also the longest a waiter goes without checking the holder (decisions 9).
const PARK: Duration = Duration::from_millis(50);
#[cfg(not(loom))]
const OPTIMISTIC_TRIES: u32 = 128;
#[cfg(loom)]
const OPTIMISTIC_TRIES: u32 = 2;

/// The Dekker handshake's fence: none in real builds (the RMW and loads around it are
/// SeqCst: module docs), `fence(SeqCst)` under loom, which models SeqCst RMWs as AcqRel.
#[inline(always)]
fn dekker_fence() {
    #[cfg(loom)]
    fence(SeqCst);
}

// ---------------------------------------------------------------------------------------
// Process-wide state
// ---------------------------------------------------------------------------------------

/// Bumped in every forked child (pthread_atfork). std atomics even under loom: one process.
static FORK_GEN: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
/// getpid(), cached; refreshed in forked children.
static PID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
static ATFORK: std::sync::Once = std::sync::Once::new();
/// PID namespace id of this process (low 32 bits of the inode of /proc/self/ns/pid), or
/// `u32::MAX` before the first look. 0 when /proc is not mounted: "unknown". Display only.
static PIDNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(u32::MAX);

extern "C" fn atfork_child() {
    // Relaxed: the child runs this single-threaded, before fork() returns to anything that
    // could read these; later threads are ordered after it by their own creation.
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

/// The fork generation of this process, its handler registered first (liveness.rs tags
/// its own state with it; remote/conn.rs tells a parent's connection by it, made maybe
/// before any map was opened, without a getpid per call).
pub(crate) fn fork_generation() -> u32 {
    register_atfork();
    fork_gen()
}

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
    PID.store(p, std::sync::atomic::Ordering::Relaxed);
    p
}

/// This process's PID namespace id (0 = unknown). Display only.
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
    hot: *const HotLine,
    side: *const LockSide,
    slots: *const ReaderSlot,
    bitmap: *const ReaderBitmap,
    /// `(fork generation << 32) | identity` once this handle owns a slot in that
    /// generation, else `(generation << 32) | 0`.
    state: AtomicU64,
    /// This handle's own file description and its byte locks.
    live: Liveness,
    /// A read-only handle on a frozen map (mapped PROT_READ): it must never write a lock
    /// word, and needs no lock, since a frozen map has no writers.
    readonly: bool,
}

// SAFETY: the pointers refer to shared memory that `new`'s contract keeps alive for the
// Lock's lifetime, and every access through them is atomic; the process-local state is
// atomic too, and the liveness descriptor is only used through serialised system calls.
// Nothing is tied to the creating thread.
unsafe impl Send for Lock {}
// SAFETY: as above: `&Lock` only ever performs atomic operations and system calls.
unsafe impl Sync for Lock {}

/// Slot index of an identity.
#[inline]
fn idx_of(me: u32) -> usize {
    (me & IDX_MASK) as usize
}

impl Lock {
    /// Creates a handle's view of the lock; `live` is the handle's own file description
    /// of the map (slot `i`'s byte at `live.byte(i)`).
    ///
    /// # Safety
    ///
    /// The pointers stay valid (mapping alive) for the Lock's lifetime, are suitably aligned,
    /// `slots` points to [`READER_SLOTS`] slots, and the memory was zero-initialised when
    /// the map was created.
    pub unsafe fn new(
        hot: *const HotLine,
        side: *const LockSide,
        slots: *const ReaderSlot,
        bitmap: *const ReaderBitmap,
        live: Liveness,
    ) -> Lock {
        register_atfork();
        Lock {
            hot,
            side,
            slots,
            bitmap,
            state: AtomicU64::new((fork_gen() as u64) << 32),
            live,
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
    fn hot(&self) -> &HotLine {
        // SAFETY: valid and aligned for our lifetime (contract of `new`).
        unsafe { &*self.hot }
    }

    #[inline]
    fn side(&self) -> &LockSide {
        // SAFETY: valid and aligned for our lifetime (contract of `new`).
        unsafe { &*self.side }
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
        self.hot().recover.load(Relaxed) != 0
    }

    /// This handle's identity in generation `gen`, claiming a slot first if it has none.
    /// Panics (with the reason) when no slot can be had: every slot held by a live
    /// handle, or a forked child that could not get a file description of its own.
    #[inline(always)]
    fn me(&self, gen: u32) -> u32 {
        // Acquire: pairs with the Release publication of the claim (another thread of
        // this handle may have claimed), so the slot's fields are visible.
        let st = self.state.load(Acquire);
        if (st >> 32) as u32 == gen && st as u32 != 0 {
            return st as u32;
        }
        match self.claim(gen) {
            Ok(me) => me,
            Err(e) => panic!("{e}"),
        }
    }

    // ----- write lock -------------------------------------------------------------------

    /// Exclusive lock. While the guard lives `seq` is odd (optimistic readers retry); dropping
    /// it makes `seq` even again (Release) and releases the writer word, waking waiters.
    /// Always inlined (issue 12, write-path.md 3.3): out of line, the guard came back
    /// through memory and was copied field by field into the caller's frame, reloaded
    /// with wider loads (store-forwarding stalls worth more than the call itself); the
    /// slow parts (claim, contention, draining a busy slot, recovery) stay out of line.
    #[inline(always)]
    pub fn write(&self) -> WriteGuard<'_> {
        let gen = fork_gen();
        let me = self.me(gen);
        let hot = self.hot();
        // SeqCst: the writer half of the Dekker handshake with `read` (module docs); it
        // includes the Acquire that pairs with the previous holder's Release swap.
        let recovered = match hot.writer.compare_exchange(0, me, SeqCst, Relaxed) {
            Ok(_) => false,
            Err(_) => self.write_contended(me),
        };
        dekker_fence();
        self.drain_readers();
        // Relaxed: a reader that set it did so before its Release of the writer word, which
        // our Acquire CAS read from (or a later value of that word).
        let recovered = recovered | (hot.recover.load(Relaxed) != 0 && self.take_recover());
        // Relaxed: only the writer-word holder writes seq, and we acquired that word.
        let mut s = hot.seq.load(Relaxed);
        if s & 1 != 0 {
            // A dead writer's unfinished write: step over it to even, then odd below.
            s = s.wrapping_add(1);
        }
        let odd = s.wrapping_add(1);
        // Relaxed + Release fence: the fence orders this odd store before every data store of
        // the critical section, which is what an optimistic reader's Acquire fence needs.
        hot.seq.store(odd, Relaxed);
        fence(Release);
        WriteGuard {
            lock: self,
            odd,
            gen,
            recovered,
            _not_send: PhantomData,
        }
    }

    #[cold]
    fn take_recover(&self) -> bool {
        // Relaxed: we hold the writer word; nobody else touches `recover` until we release it.
        self.hot().recover.swap(0, Relaxed) != 0
    }

    /// Takes the writer word from a live or dead holder; returns true if it was taken over.
    #[cold]
    fn write_contended(&self, me: u32) -> bool {
        let hot = self.hot();
        let mut backoff = Backoff::new();
        loop {
            // Relaxed: just a look; the CAS below carries the ordering.
            let v = hot.writer.load(Relaxed);
            if v == 0 {
                // SeqCst: as in `write`.
                if hot
                    .writer
                    .compare_exchange_weak(0, me, SeqCst, Relaxed)
                    .is_ok()
                {
                    return false;
                }
                continue;
            }
            if backoff.spin() {
                continue;
            }
            if self.park_on_writer(v, &mut backoff, &self.side().parked_writers) && self.seize(v, me) {
                return true;
            }
        }
    }

    /// Waits for every slot in the bitmap to hold no read lock. Only the words below
    /// `slots_hw` can have bits (claimers raise it first): one word in the common case
    /// of at most 64 handles, as slots are claimed lowest first.
    #[inline(always)]
    fn drain_readers(&self) {
        // SeqCst (this load, the bitmap loads, the depth loads): the Dekker handshake
        // without a fence (module docs); on x86-64 these are plain loads.
        let hw = (self.hot().slots_hw.load(SeqCst) as usize).clamp(1, BITMAP_WORDS);
        for w in 0..hw {
            let mut bits = self.bitmap().words[w].load(SeqCst);
            while bits != 0 {
                let i = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if i >= READER_SLOTS {
                    break;
                }
                let slot = self.slot_at(i);
                // SeqCst includes the Acquire that pairs with the Release decrement of the
                // last reader to leave, so everything it read happens before our writes.
                if slot.depth.load(SeqCst) & COUNT_MASK != 0 {
                    self.wait_for_slot(slot, i);
                }
            }
        }
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
            let due = backoff.park(&slot.depth, v | SLOT_PARKED, &self.side().parked_writers);
            if due && (self.reap_if_dead(i) || self.reset_own_damaged(slot, i)) {
                return;
            }
        }
    }

    /// A slot of this very handle holds counts while nothing of this process can hold a
    /// read lock (we are the only thread, and we are writing): the counts are damage, so
    /// clear them. True if cleared.
    #[cold]
    fn reset_own_damaged(&self, slot: &ReaderSlot, i: usize) -> bool {
        // Relaxed: hints; the depth CAS decides.
        let v = slot.depth.load(Relaxed);
        let st = self.state.load(Relaxed);
        if (st >> 32) as u32 != fork_gen()
            || st as u32 == 0
            || idx_of(st as u32) != i
            || v & COUNT_MASK == 0
            || !own_counts_are_damage()
        {
            return false;
        }
        // Relaxed: no reader of ours exists to synchronise with.
        slot.depth.compare_exchange(v, 0, Relaxed, Relaxed).is_ok()
    }

    // ----- read lock --------------------------------------------------------------------

    /// Shared lock: excludes writers, not other readers. Uses this handle's reader slot
    /// (claimed anew in a forked child). Recursive.
    #[inline]
    pub fn read(&self) -> ReadGuard<'_> {
        let gen = fork_gen();
        let me = self.me(gen);
        self.read_in(self.slot_at(idx_of(me)), gen)
    }

    #[inline]
    fn read_in<'a>(&'a self, slot: &'a ReaderSlot, gen: u32) -> ReadGuard<'a> {
        // SeqCst: the reader half of the Dekker handshake with `write` (module docs).
        let prev = slot.depth.fetch_add(TRY, SeqCst);
        dekker_fence();
        // SeqCst: as above; it includes the Acquire that makes a writer's writes visible
        // once we see the 0 its release stored.
        if prev & HOLD_MASK != HOLD_MASK && self.hot().writer.load(SeqCst) == 0 {
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
        let hot = self.hot();
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
            self.wait_writer_free();
            // Same steps and orderings as `read_in`.
            prev = slot.depth.fetch_add(TRY, SeqCst);
            dekker_fence();
            if prev & HOLD_MASK != HOLD_MASK && hot.writer.load(SeqCst) == 0 {
                slot.depth.fetch_add(HOLD.wrapping_sub(TRY), Release);
                return ReadGuard::new(self, slot, gen);
            }
        }
    }

    // ----- slots ------------------------------------------------------------------------

    /// Claims a slot for this handle in generation `gen` and publishes it; returns the
    /// identity (another thread of this handle may have claimed first: then its).
    #[cold]
    fn claim(&self, gen: u32) -> Result<u32, String> {
        self.live.serial(|| {
            // Acquire: as in `me`.
            let st = self.state.load(Acquire);
            if (st >> 32) as u32 == gen && st as u32 != 0 {
                return Ok(st as u32);
            }
            let (i, me) = self.claim_slot()?;
            // Release: publishes the claim (slot fields, bitmap bit) to the other threads
            // of this handle, which Acquire-load the state in `me`. A CAS, not a store: under
            // loom claims of one handle are not serialised (no descriptor).
            match self.state.compare_exchange(st, (gen as u64) << 32 | me as u64, Release, Acquire) {
                Ok(_) => Ok(me),
                Err(cur) => {
                    self.free_slot(i);
                    Ok(cur as u32)
                }
            }
        })
    }

    /// Claims a free slot (or one whose owner is gone, clearing it first): takes its byte,
    /// then fills it in and sets its bitmap bit. Runs serialised (`Liveness::serial`).
    fn claim_slot(&self) -> Result<(usize, u32), String> {
        if let Some(e) = self.live.broken() {
            return Err(format!(
                "cannot lock the map in this forked child: reopening its file failed ({})",
                crate::error::strerror(e)
            ));
        }
        let real = self.live.real();
        // Pass 0: slots whose bit is clear (free, usually); pass 1: every slot, to find
        // owners that died without giving their slot back.
        for pass in 0..2 {
            if pass == 1 && !real {
                break; // nobody dies under loom
            }
            for i in 0..READER_SLOTS {
                // Relaxed: a hint; the byte lock and the pid CAS decide.
                let bit = self.bitmap().words[i / 64].load(Relaxed) & (1 << (i % 64)) != 0;
                if pass == 0 && bit {
                    continue;
                }
                let slot = self.slot_at(i);
                // Relaxed: a hint, as above.
                if !real && slot.pid.load(Relaxed) != 0 {
                    continue;
                }
                match self.live.try_lock(i) {
                    Ok(true) => {}
                    Ok(false) => continue, // a live owner, or a claimer or reaper at work
                    Err(e) => {
                        return Err(format!(
                            "cannot lock a byte of the map file (fcntl F_OFD_SETLK: {}); maps \
                             need a file system with open file description locks",
                            crate::error::strerror(e)
                        ))
                    }
                }
                // We hold the byte: whoever owned the slot before is gone.
                // Acquire: the previous owner's (or reaper's) last stores are visible.
                if real && (slot.pid.load(Acquire) != 0 || bit) {
                    self.clear_slot(i);
                }
                // Acquire: pairs with the Release of the previous owner's (or reaper's) pid
                // store, so its depth reset is visible before we count in it. With the byte
                // held this cannot fail except under loom (no bytes: the CAS decides).
                if slot.pid.compare_exchange(0, my_pid(), Acquire, Relaxed).is_err() {
                    self.live.unlock(i);
                    continue;
                }
                // A free slot carries no counts, unless the file was damaged or a reaper
                // died mid-way: start from zero rather than inherit them.
                // Relaxed: the slot is ours and not yet in the bitmap.
                if slot.depth.swap(0, Relaxed) & SLOT_PARKED != 0 {
                    sync::futex_wake_all(&slot.depth);
                }
                // A new incarnation, never the one the writer word names for this slot
                // (a word left by damage or a copied file must not look like ours).
                // Relaxed: published by the SeqCst bitmap update below.
                let w = self.hot().writer.load(Relaxed);
                let mut tag = slot.tag.load(Relaxed).wrapping_add(1);
                if w & HELD != 0 && idx_of(w) == i && (w >> IDX_BITS) & TAG_MASK == tag & TAG_MASK {
                    tag = tag.wrapping_add(1);
                }
                slot.tag.store(tag, Relaxed);
                slot.ns.store(my_pidns(), Relaxed);
                // SeqCst (both): a writer that misses the raise or the bit is seen by our
                // first read (Dekker, module docs); they also publish pid, tag and ns.
                self.hot().slots_hw.fetch_max((i / 64 + 1) as u32, SeqCst);
                self.bitmap().words[i / 64].fetch_or(1 << (i % 64), SeqCst);
                return Ok((i, identity(i, tag)));
            }
        }
        Err(format!(
            "all {READER_SLOTS} reader slots are held by live handles (at most {READER_SLOTS} \
             read-write handles can have one map open at a time)"
        ))
    }

    /// Gives slot `i` (claimed by this handle, depth 0) back.
    fn free_slot(&self, i: usize) {
        // Relaxed: the Release pid store below publishes it.
        self.bitmap().words[i / 64].fetch_and(!(1u64 << (i % 64)), Relaxed);
        // Release: the next claimer's Acquire sees the bit cleared and depth 0.
        self.slot_at(i).pid.store(0, Release);
        self.live.unlock(i);
    }

    /// Clears slot `i`, whose byte we hold and whose owner is gone: its counts, its bit,
    /// its pid; wakes a writer parked on it.
    fn clear_slot(&self, i: usize) {
        let slot = self.slot_at(i);
        // Relaxed: the dead owner's counts published nothing; the next claimer sees the 0
        // through the Release pid store below.
        if slot.depth.swap(0, Relaxed) & SLOT_PARKED != 0 {
            sync::futex_wake_all(&slot.depth);
        }
        // Relaxed: published by the Release pid store below.
        self.bitmap().words[i / 64].fetch_and(!(1u64 << (i % 64)), Relaxed);
        // Release: a claimer's Acquire sees depth 0 and the bit cleared.
        slot.pid.store(0, Release);
    }

    /// Clears slot `i` if its owner is gone (its byte can be taken); true if the slot no
    /// longer holds a read lock to wait for. Never for this handle's own slot.
    #[cold]
    fn reap_if_dead(&self, i: usize) -> bool {
        if !self.live.real() {
            return false;
        }
        let st = self.state.load(Relaxed);
        if (st >> 32) as u32 == fork_gen() && st as u32 != 0 && idx_of(st as u32) == i {
            return false; // ours: our description holds its byte, the test would say free
        }
        self.live.serial(|| match self.live.try_lock(i) {
            Ok(true) => {
                self.clear_slot(i);
                self.live.unlock(i);
                true
            }
            _ => false,
        })
    }

    /// Registers this handle with the map: claims its reader slot now (not at its first
    /// lock operation), so that an open reports every reason it cannot use the map
    /// (every slot held by a live handle, a file system without open file description
    /// locks). Opening does not wait for the write lock, nor take a dead holder over.
    pub fn attach(&self) -> Result<(), String> {
        self.claim(fork_gen()).map(|_| ())
    }

    /// Gives back this handle's reader slot (when the handle closes; no guard may be alive
    /// and no other thread may use the handle concurrently). Idempotent; the next `read`
    /// claims a slot again. A no-op in a forked child for the parent's slot.
    pub fn release_slot(&self) {
        // Acquire: as in `me`.
        let st = self.state.load(Acquire);
        let gen = fork_gen();
        if (st >> 32) as u32 != gen || st as u32 == 0 {
            return;
        }
        let i = idx_of(st as u32);
        // Relaxed: same-thread bookkeeping; a live hold means misuse: keep the slot
        // rather than free it under a reader (it is reaped when the process dies).
        if self.slot_at(i).depth.load(Relaxed) & COUNT_MASK != 0 {
            debug_assert!(false, "release_slot with a read lock held");
            return;
        }
        self.live.serial(|| {
            // Relaxed: the state is process-local and the caller guarantees no concurrent use.
            if self
                .state
                .compare_exchange(st, (gen as u64) << 32, Relaxed, Relaxed)
                .is_ok()
            {
                self.free_slot(i);
            }
        });
    }

    /// What the writer word says, for display: `None` when free, else the holder's slot,
    /// the pid it records and whether the holder is alive (the kernel's answer, from this
    /// handle's description; `None` when it cannot tell).
    pub fn holder(&self) -> Option<(usize, u32, Option<bool>)> {
        // Relaxed: a snapshot for a human.
        let v = self.hot().writer.load(Relaxed);
        if v == 0 {
            return None;
        }
        let i = idx_of(v);
        let pid = if i < READER_SLOTS { self.slot_at(i).pid.load(Relaxed) } else { 0 };
        #[cfg(not(loom))]
        let alive = if i >= READER_SLOTS || v & HELD == 0 {
            Some(false)
        } else {
            self.holder_alive(v)
        };
        #[cfg(loom)]
        let alive = None;
        Some((i, pid, alive))
    }

    // ----- waiting on the writer word ---------------------------------------------------

    /// Waits until the writer word is 0, taking over a dead holder (as a reader).
    #[cold]
    fn wait_writer_free(&self) {
        let hot = self.hot();
        let mut backoff = Backoff::new();
        loop {
            // Relaxed: the caller redoes the whole read protocol afterwards.
            let v = hot.writer.load(Relaxed);
            if v == 0 {
                return;
            }
            if backoff.spin() {
                continue;
            }
            if self.park_on_writer(v, &mut backoff, &self.side().parked_readers) {
                self.reader_takeover(v);
            }
        }
    }

    /// Sleeps while the writer word holds `v`; true if the holder named by `v` is dead.
    fn park_on_writer(&self, v: u32, backoff: &mut Backoff, parked: &AtomicU32) -> bool {
        let writer = &self.hot().writer;
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
        backoff.park(writer, expected, parked) && self.holder_dead(v)
    }

    /// Is the holder named by writer word `v` gone? (Module docs, "Waiting and dead
    /// holders".)
    #[cold]
    fn holder_dead(&self, v: u32) -> bool {
        if v & HELD == 0 || idx_of(v) >= READER_SLOTS {
            return true; // no holder writes this: damage
        }
        #[cfg(not(loom))]
        {
            self.holder_alive(v) == Some(false)
        }
        #[cfg(loom)]
        {
            false // nobody dies under loom
        }
    }

    /// Some(true/false) if the kernel (or our own state) says whether the holder named by
    /// `v` (HELD, slot in range) is alive; None when it cannot tell.
    #[cfg(not(loom))]
    fn holder_alive(&self, v: u32) -> Option<bool> {
        let i = idx_of(v);
        let tag = (v >> IDX_BITS) & TAG_MASK;
        // Acquire: as in `me`.
        let st = self.state.load(Acquire);
        if (st >> 32) as u32 == fork_gen() && st as u32 != 0 {
            let mine = st as u32;
            if mine == v & !WRITER_PARKED {
                return Some(true); // a thread of this handle holds it (or this thread)
            }
            if idx_of(mine) == i {
                return Some(false); // our slot: an earlier owner's hold
            }
        }
        self.live.serial(|| match self.live.test(i) {
            crate::liveness::Held::No => Some(false),
            crate::liveness::Held::Unknown => None,
            // Acquire: a claimer's tag store precedes its bitmap RMW; a holder whose slot
            // was claimed again is gone.
            crate::liveness::Held::Yes => Some(self.slot_at(i).tag.load(Acquire) & TAG_MASK == tag),
        })
    }

    /// Replaces a dead holder's value with ours; false if someone else changed it first.
    fn seize(&self, dead: u32, me: u32) -> bool {
        let writer = &self.hot().writer;
        // Relaxed: the CAS decides.
        let cur = writer.load(Relaxed);
        if cur & !WRITER_PARKED != dead & !WRITER_PARKED {
            return false;
        }
        // SeqCst: the word was held all along, so no reader passed it; SeqCst keeps the
        // takeover a plain instance of the acquire in `write` (Acquire: what the dead
        // holder's predecessors released is ours). WRITER_PARKED stays: sleepers still
        // need the wake-up of our release.
        writer
            .compare_exchange(cur, me | (cur & WRITER_PARKED), SeqCst, Relaxed)
            .is_ok()
    }

    /// A reader found the holder `dead`: make the lock usable, leave the repair to a writer.
    #[cold]
    fn reader_takeover(&self, dead: u32) {
        let me = self.me(fork_gen());
        if !self.seize(dead, me) {
            return;
        }
        let seq = &self.hot().seq;
        // Relaxed: we hold the writer word, so nobody else writes seq.
        let s = seq.load(Relaxed);
        if s & 1 != 0 {
            // Release: optimistic readers that see the even value see it after our seize.
            seq.store(s.wrapping_add(1), Release);
        }
        // Relaxed: published by the Release swap in `release_writer_word`.
        self.hot().recover.store(1, Relaxed);
        self.release_writer_word();
    }

    #[inline(always)]
    fn release_writer_word(&self) {
        let writer = &self.hot().writer;
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
    ///
    /// The first attempt is inlined into the caller, closure included (the common case:
    /// no writer in between); the retries are out of line. Out of line, the closure's
    /// captures and result went through memory on every lookup (issue 12).
    #[inline(always)]
    pub fn optimistic<R>(&self, mut f: impl FnMut() -> R) -> R {
        match Self::attempt(&self.hot().seq, &mut f) {
            Some(r) => r,
            None => self.optimistic_retry(f),
        }
    }

    /// One seqlock attempt: `f`'s result when no write overlapped it.
    #[inline(always)]
    fn attempt<R>(seq: &AtomicU32, f: &mut impl FnMut() -> R) -> Option<R> {
        // Acquire: the data `f` reads is at least as new as the write that made s1.
        let s1 = seq.load(Acquire);
        if s1 & 1 != 0 {
            return None;
        }
        let r = f();
        // Acquire fence: if `f` saw any store of a writer that came after its odd bump,
        // this fence synchronises with the writer's Release fence and the load below
        // sees that odd value (or later).
        fence(Acquire);
        // Relaxed: ordered by the fence above.
        (seq.load(Relaxed) == s1).then_some(r)
    }

    /// The attempts after the first of [`optimistic`](Self::optimistic).
    #[cold]
    #[inline(never)]
    fn optimistic_retry<R>(&self, mut f: impl FnMut() -> R) -> R {
        let seq = &self.hot().seq;
        for _ in 1..OPTIMISTIC_TRIES {
            // a writer is inside (or was): pause before looking again
            sync::spin_hint();
            if let Some(r) = Self::attempt(seq, &mut f) {
                return r;
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
}

// ---------------------------------------------------------------------------------------
// Guards
// ---------------------------------------------------------------------------------------

/// Holds the write lock; `seq` is odd while it lives.
#[must_use = "the lock is released when the guard is dropped"]
pub struct WriteGuard<'a> {
    lock: &'a Lock,
    odd: u32,
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
    #[inline(always)]
    fn drop(&mut self) {
        if fork_gen() != self.gen {
            return; // inherited across fork: the lock is our parent's to release
        }
        // Release: everything written under the guard happens before an optimistic read
        // that Acquire-loads this even value.
        self.lock.hot().seq.store(self.odd.wrapping_add(1), Release);
        self.lock.release_writer_word();
    }
}

/// Holds a read lock.
#[must_use = "the lock is released when the guard is dropped"]
pub struct ReadGuard<'a> {
    slot: &'a ReaderSlot,
    gen: u32,
    /// !Send: the thread-local READS_HELD count must be decremented where it was incremented.
    _not_send: PhantomData<*const ()>,
}

impl<'a> ReadGuard<'a> {
    #[inline]
    fn new(_lock: &'a Lock, slot: &'a ReaderSlot, gen: u32) -> Self {
        reads_held_add(1);
        ReadGuard {
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
        // Release: our reads happen before the writer's writes (its Acquire load of depth).
        let prev = self.slot.depth.fetch_sub(HOLD, Release);
        if prev == SLOT_PARKED | HOLD {
            sync::futex_wake_all(&self.slot.depth);
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
    spin_start: Option<std::time::Instant>,
    #[cfg(not(loom))]
    last_check: Option<std::time::Instant>,
}

/// The spin budget: [`SPIN_TIME`], or `HMS_SPIN_US` microseconds (read once).
#[cfg(not(loom))]
fn spin_time() -> Duration {
    static NS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(u64::MAX);
    // Relaxed: a cache; every thread computes the same value.
    let v = NS.load(std::sync::atomic::Ordering::Relaxed);
    if v != u64::MAX {
        return Duration::from_nanos(v);
    }
    let d = std::env::var("HMS_SPIN_US")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(SPIN_TIME, Duration::from_micros);
    NS.store(d.as_nanos() as u64, std::sync::atomic::Ordering::Relaxed);
    d
}

impl Backoff {
    fn new() -> Self {
        Backoff {
            spins: 0,
            parks: 0,
            #[cfg(not(loom))]
            spin_start: None,
            #[cfg(not(loom))]
            last_check: None,
        }
    }

    /// One round of spinning; false once the spin budget is used up. Rounds pause 2, 4,
    /// 8 times, then 8 each (~0.3 us): a waiter must look often enough to catch a
    /// release between two critical sections of a busy holder (~100 ns apart), but each
    /// look takes the hot line from the holder for a moment, so not at every pause.
    #[inline]
    fn spin(&mut self) -> bool {
        #[cfg(not(loom))]
        {
            if self.parks > 0 {
                return false; // spin once per wait: a stopped holder costs no more CPU
            }
            self.spins += 1;
            if self.spins > 3 {
                // vDSO clock read: no system call
                let now = std::time::Instant::now();
                let start = *self.spin_start.get_or_insert(now);
                if now.duration_since(start) >= spin_time() {
                    return false;
                }
            }
            for _ in 0..1u32 << self.spins.min(3) {
                sync::spin_hint();
            }
            true
        }
        #[cfg(loom)]
        {
            // Loom goes straight to the (modelled) futex: it deprioritises a thread that
            // yields, which would hide the interleavings where a waiter sleeps while the
            // holder still holds.
            let _ = self.spins;
            false
        }
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

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use core::ptr;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// Zeroed shared memory laid out like a map header's lock parts, plus a data pair.
    pub(super) struct Region {
        base: *mut u8,
        len: usize,
        fd: i32,
    }

    // SAFETY: the region is plain shared memory used only through atomics.
    unsafe impl Send for Region {}
    // SAFETY: as above.
    unsafe impl Sync for Region {}

    const OFF_SIDE: usize = 64;
    const OFF_BITMAP: usize = 128;
    const OFF_SLOTS: usize = 256;
    const OFF_DATA: usize = OFF_SLOTS + READER_SLOTS * 64;

    impl Region {
        /// A memfd mapped shared (a file, so that handles can hold byte locks on it).
        pub(super) fn new() -> Region {
            let len = (OFF_DATA + 4096 + 4095) & !4095;
            // SAFETY: plain system calls, each checked; the mapping is zero-filled.
            let (fd, base) = unsafe {
                let fd = libc::memfd_create(c"lock-test".as_ptr(), libc::MFD_CLOEXEC);
                assert!(fd >= 0);
                assert_eq!(libc::ftruncate(fd, len as libc::off_t), 0);
                let base = libc::mmap(
                    ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    fd,
                    0,
                );
                assert_ne!(base, libc::MAP_FAILED);
                (fd, base)
            };
            Region {
                base: base.cast(),
                len,
                fd,
            }
        }
        fn at<T>(&self, off: usize) -> &T {
            // SAFETY: offsets are in range and 64-aligned; all-zero is valid for these types.
            unsafe { &*self.base.add(off).cast::<T>() }
        }
        pub(super) fn hot(&self) -> &HotLine {
            self.at(0)
        }
        pub(super) fn side(&self) -> &LockSide {
            self.at(OFF_SIDE)
        }
        pub(super) fn seq(&self) -> u32 {
            self.hot().seq.load(Relaxed)
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
        /// A handle's lock: its own description of the region's memfd.
        pub(super) fn lock(&self) -> Lock {
            let live = Liveness::reopened(self.fd, self.base, self.len, OFF_SLOTS as u64).unwrap();
            // SAFETY: the region outlives every Lock of these tests (leaked or joined).
            let l = unsafe {
                Lock::new(
                    self.at(0),
                    self.at(OFF_SIDE),
                    self.at(OFF_SLOTS),
                    self.at(OFF_BITMAP),
                    live,
                )
            };
            l.attach().unwrap();
            l
        }
        /// Another description of the region's file, holding byte locks on `slots`
        /// (each slot's byte) until dropped: live owners that are not Locks.
        pub(super) fn holder(&self, slots: std::ops::Range<usize>) -> Liveness {
            let live = Liveness::reopened(self.fd, self.base, self.len, OFF_SLOTS as u64).unwrap();
            live.serial(|| {
                for i in slots {
                    assert_eq!(live.try_lock(i), Ok(true));
                }
            });
            live
        }
        /// Marks slot `i` occupied by `pid` under `tag` with `depth` (no byte lock: an
        /// owner that died).
        pub(super) fn fake_slot(&self, i: usize, pid: u32, tag: u32, depth: u32) {
            self.slot(i).pid.store(pid, Relaxed);
            self.slot(i).tag.store(tag, Relaxed);
            self.slot(i).depth.store(depth, Relaxed);
            self.bitmap().words[i / 64].fetch_or(1 << (i % 64), Relaxed);
            self.hot().slots_hw.fetch_max((i / 64 + 1) as u32, Relaxed);
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
            // SAFETY: unmapping our own mapping and closing our descriptor; no Lock
            // outlives the Region in these tests.
            unsafe {
                libc::munmap(self.base.cast(), self.len);
                libc::close(self.fd);
            }
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
    fn lock_slot_layout() {
        let r = Region::new();
        let s = r.slot(0);
        let base = s as *const ReaderSlot as usize;
        assert_eq!(&s.depth as *const _ as usize - base, 4);
        assert_eq!(&s.tag as *const _ as usize - base, 8);
        assert_eq!(&s.ns as *const _ as usize - base, 12);
    }

    /// The identity this lock writes (its slot and tag).
    fn id_of(l: &Lock) -> u32 {
        l.state.load(Relaxed) as u32
    }

    #[test]
    fn lock_basic_states() {
        let r = Region::new();
        let l = r.lock();
        {
            let g = l.write();
            assert!(!g.recovered());
            let i = r.slots_of(me())[0];
            assert_eq!(r.hot().writer.load(Relaxed), identity(i, r.slot(i).tag.load(Relaxed)));
            assert_eq!(r.hot().writer.load(Relaxed), id_of(&l));
            assert_eq!(r.seq() & 1, 1);
        }
        assert_eq!(r.hot().writer.load(Relaxed), 0);
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
        // The slot's byte is held while it is ours, and given back with it.
        let other = r.holder(0..0);
        assert_eq!(other.serial(|| other.test(i)), crate::liveness::Held::Yes);
        l.release_slot();
        assert_eq!(other.serial(|| other.test(i)), crate::liveness::Held::No);
        assert_eq!(r.slot(i).pid.load(Relaxed), 0);
        assert!(!r.bit(i));
        l.release_slot(); // idempotent
        let tag = r.slot(i).tag.load(Relaxed);
        drop(l.read()); // claims again, under a new tag
        assert_eq!(r.slots_of(me()), vec![i]);
        assert_ne!(r.slot(i).tag.load(Relaxed), tag);
        l.release_slot();
    }

    /// Threads sharing one Lock plus threads with their own Locks over the same memory.
    #[test]
    fn lock_threads_count_exactly() {
        let r = Arc::new(Region::new());
        let shared = Arc::new(r.lock());
        let iters = 20_000u32;
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
        assert_eq!(r.data(0).load(Relaxed), 4 * iters as u64);
        assert_eq!(r.data(1).load(Relaxed), 4 * iters as u64);
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
        while r.hot().writer.load(Relaxed) == 0 {
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
            r.side().parked_writers.load(Relaxed) == 1
        });
        let i = r.slots_of(me())[0];
        assert_eq!(r.slot(i).depth.load(Relaxed), SLOT_PARKED | HOLD);
        assert!(!done.load(Relaxed));
        drop(g); // must wake it (its timeout is 5 ms, so only "not stuck" is observable)
        t.join().unwrap();
        assert!(done.load(Relaxed));
        assert_eq!(r.side().parked_writers.load(Relaxed), 0);
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
            r.side().parked_readers.load(Relaxed) == 1
        });
        assert_eq!(r.hot().writer.load(Relaxed), WRITER_PARKED | id_of(&l));
        r.data(0).store(42, Relaxed);
        drop(w);
        assert_eq!(t.join().unwrap(), 42);
    }

    /// A writer word naming slot 7 under tag 3, whose owner died (no byte lock).
    fn dead_holder(r: &Region) -> u32 {
        r.fake_slot(7, dead_pid(), 3, 0);
        let v = identity(7, 3);
        r.hot().writer.store(v, Relaxed);
        v
    }

    #[test]
    fn lock_dead_writer_taken_over() {
        let r = Region::new();
        dead_holder(&r);
        r.hot().seq.store(5, Relaxed); // died mid-write
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
        dead_holder(&r);
        r.hot().seq.store(3, Relaxed);
        let l = r.lock();
        let start = Instant::now();
        assert_eq!(l.optimistic(|| 1), 1);
        assert!(start.elapsed() < Duration::from_secs(2));
        assert_eq!(r.seq(), 4);
        assert!(l.repair_pending());
        assert_eq!(r.hot().writer.load(Relaxed), 0);
        let g = l.write();
        assert!(g.recovered());
        assert!(!l.repair_pending());
        drop(g);
        assert!(!l.write().recovered());
    }

    /// The holder's slot is held by a live handle, but under another tag (the holder
    /// died, its slot was claimed again): the holder is dead. Under its own tag it is
    /// alive, and waiters wait.
    #[test]
    fn lock_reused_slot_does_not_keep_a_dead_holder_alive() {
        let r = Region::new();
        let owner = r.holder(7..8); // a live owner of slot 7
        r.fake_slot(7, 1, 4, 0);
        r.hot().writer.store(identity(7, 3), Relaxed); // left by incarnation 3
        let l = r.lock();
        assert_eq!(l.holder(), Some((7, 1, Some(false))));
        let start = Instant::now();
        let g = l.write();
        assert!(g.recovered());
        assert!(start.elapsed() < Duration::from_secs(2));
        drop(g);
        r.hot().writer.store(identity(7, 4), Relaxed); // the live owner's own hold
        assert_eq!(l.holder(), Some((7, 1, Some(true))));
        drop(owner);
        assert_eq!(l.holder(), Some((7, 1, Some(false))));
        assert!(l.write().recovered());
    }

    #[test]
    fn lock_dead_reader_slot_cleared_by_writer() {
        let r = Region::new();
        r.fake_slot(5, dead_pid(), 1, 3 * HOLD);
        let l = r.lock();
        let start = Instant::now();
        drop(l.write());
        assert!(start.elapsed() < Duration::from_secs(2));
        assert_eq!(r.slot(5).pid.load(Relaxed), 0);
        assert_eq!(r.slot(5).depth.load(Relaxed), 0);
        assert!(!r.bit(5));
    }

    /// A live reader's slot is never cleared: the writer waits for it.
    #[test]
    fn lock_live_reader_slot_is_waited_for() {
        let r = Arc::new(Region::new());
        let owner = r.holder(5..6);
        r.fake_slot(5, 1, 1, HOLD);
        let r2 = r.clone();
        let t = std::thread::spawn(move || {
            let l = r2.lock();
            let start = Instant::now();
            drop(l.write());
            start.elapsed()
        });
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(r.slot(5).depth.load(Relaxed) & COUNT_MASK, HOLD, "a live reader's hold was cleared");
        r.slot(5).depth.fetch_sub(HOLD, Relaxed); // the reader leaves (a timeout wakes the writer)
        let waited = t.join().unwrap();
        assert!(waited >= Duration::from_millis(150));
        drop(owner);
    }

    /// Every slot held by a live handle: opening one more is refused, with the reason.
    #[test]
    fn lock_claim_refused_when_every_slot_is_live() {
        let r = Region::new();
        let owner = r.holder(0..READER_SLOTS);
        for i in 0..READER_SLOTS {
            r.fake_slot(i, 1, 1, 0);
        }
        let live = Liveness::reopened(r.fd, r.base, r.len, OFF_SLOTS as u64).unwrap();
        // SAFETY: as in Region::lock.
        let l = unsafe { Lock::new(r.at(0), r.at(OFF_SIDE), r.at(OFF_SLOTS), r.at(OFF_BITMAP), live) };
        let e = l.attach().unwrap_err();
        assert!(e.starts_with("all 1024 reader slots are held by live handles"), "{e}");
        drop(owner); // their owners die: the next claim reaps one
        // A child another test of this binary forks meanwhile holds a copy of the
        // owner's descriptor, and with it the owner's locks, until it exits (seen: a claim
        // that found slots 0..365 still held and took 366): wait for that.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while let Err(e) = l.attach() {
            assert!(std::time::Instant::now() < deadline, "{e}");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(r.slots_of(me()).len(), 1, "one slot claimed");
    }

    #[test]
    fn lock_dead_slots_are_reaped_on_claim_and_drain() {
        let r = Region::new();
        let dead = dead_pid();
        for i in 0..8 {
            r.fake_slot(i, dead, 1, HOLD);
        }
        let l = r.lock(); // a free slot first
        assert_eq!(r.slots_of(me()), vec![8]);
        drop(l.write()); // the drain reaps the dead ones
        assert_eq!(r.slots_of(dead).len(), 0);
        assert_eq!(r.hot().writer.load(Relaxed), 0);
    }

    /// The kernel releases a dead process's byte at once, zombie or not: that is what
    /// the liveness test relies on.
    #[test]
    fn lock_byte_of_a_zombie_is_free() {
        let r = Region::new();
        let l = r.lock();
        // SAFETY: the child claims a slot (system calls, atomics) and _exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let c = r.lock();
            let g = c.write();
            std::mem::forget(g);
            // SAFETY: ends the child holding the lock.
            unsafe { libc::_exit(0) };
        }
        let start = Instant::now();
        loop {
            let v = r.hot().writer.load(Relaxed);
            if v != 0 && l.holder() == Some((idx_of(v), pid as u32, Some(false))) {
                break; // a zombie until we reap it below, and already dead to the kernel
            }
            assert!(start.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(1));
        }
        let g = l.write();
        assert!(g.recovered());
        drop(g);
        let mut st = 0;
        // SAFETY: reaping our own child.
        unsafe { libc::waitpid(pid, &mut st, 0) };
    }
}

#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use ::loom::cell::UnsafeCell;
    use ::loom::sync::Arc;
    use ::loom::thread;

    struct Shared {
        hot: HotLine,
        side: LockSide,
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
                hot: HotLine {
                    writer: AtomicU32::new(0),
                    seq: AtomicU32::new(0),
                    size: AtomicU32::new(0),
                    tombs: AtomicU32::new(0),
                    cap: AtomicU32::new(0),
                    generation: AtomicU32::new(0),
                    sealed: AtomicU32::new(0),
                    recover: AtomicU32::new(0),
                    arena_used: AtomicU64::new(0),
                    arena_free: AtomicU64::new(0),
                    lru_head: AtomicU32::new(0),
                    lru_tail: AtomicU32::new(0),
                    slots_hw: AtomicU32::new(0),
                    _spare: AtomicU32::new(0),
                },
                side: LockSide {
                    parked_writers: AtomicU32::new(0),
                    parked_readers: AtomicU32::new(0),
                },
                slots: (0..READER_SLOTS)
                    .map(|_| ReaderSlot {
                        pid: AtomicU32::new(0),
                        depth: AtomicU32::new(0),
                        tag: AtomicU32::new(0),
                        ns: AtomicU32::new(0),
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
        /// A handle with its slot claimed, as an open does: a handle made before the
        /// threads start claims sequentially; one made inside a thread claims while the
        /// others run (the claim's high-water raise and bitmap bit against a writer's
        /// drain, module docs).
        fn lock(&self) -> Lock {
            // SAFETY: every Lock is dropped before the Arc that owns this memory.
            let l = unsafe { Lock::new(&self.hot, &self.side, self.slots.as_ptr(), &self.bitmap, Liveness::none()) };
            l.attach().unwrap();
            l
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
