//! The string arena: a buddy allocator inside the mapping.
//!
//! Blocks are powers of two of at least 16 bytes (order 4 = 16 B ... order 31 = 2 GiB);
//! a string of n >= 8 bytes takes a block of next_pow2(n) bytes. The arena's usable
//! size (arena_cap rounded down to 16) need not be a power of two: it is initially
//! carved into the largest naturally aligned blocks that fit, and a block never
//! coalesces with a "buddy" outside the usable range. Because buddies always coalesce
//! when both are free, freeing every string returns the arena to its initial blocks:
//! it cannot fragment into failure (decisions 7).
//!
//! State, all in the shared mapping and touched only under the write lock:
//! - per order, the head of a doubly linked free list (header fields, u32, `NONE` =
//!   empty); the links live in the first 16 bytes of each free block:
//!   word 0 = next | prev << 32, word 1 = order | FREE_TAG << 32;
//! - a block-state bitmap, one bit per 16-byte unit: "a free block starts here", so
//!   that freeing can tell in O(1) whether the buddy is a free block (and of which
//!   order, from its word 1);
//! - bytes allocated (`arena_used`) and bytes free;
//! - per order 4..=12 (16 B .. 4 KiB), a "quick" list: a LIFO singly linked list of
//!   freed blocks kept out of the buddy system (`off::ARENA_QUICK`, link in word 0,
//!   word 1 = order | QUICK_TAG << 32, the block's bitmap bit set so that no double
//!   free and no coalescing touches it). A free pushes onto it, an allocation pops from
//!   it: one block and one bitmap word each, instead of the buddy's coalescing and
//!   doubly linked unlinks that touch neighbouring blocks. While the arena has room
//!   to spare, a block below a page that no buddy list below a page can supply is
//!   cut from a whole page, whose other
//!   blocks of that order go onto the quick list (a map being filled then splits one
//!   page per 4 KiB of strings, not about one block per string). The quick blocks go back to
//!   the buddy lists (coalescing) whenever an allocation would otherwise fail and
//!   before pages are released, so the arena still cannot fragment into failure; a
//!   crash repair rebuilds everything from the live strings and empties them.
//!
//! Every offset read from the mapping (list links, string references) is checked
//! against the usable size before use: a damaged arena may leak or lose strings but
//! never makes the engine touch memory outside it.
//!
//! Giving memory back (decisions 7): after a mass removal (allocated bytes fall below a
//! quarter of their peak since the last release, and by at least 1 MiB) and on clear,
//! every free block of two pages or more releases its pages except the first (which
//! holds the links). Releasing lazily, in bulk, keeps a workload that frees and
//! reallocates the same strings from punching holes (and faulting pages back in) on
//! every operation. Paced: a release pass costs about a microsecond per page, so a map
//! that is emptied and refilled over and over (a removal pass, then inserts that take
//! the memory back) runs at most one pass per second ([`RELEASE_INTERVAL`]); a removal
//! that goes on without refills in between releases at every trigger, so memory
//! still drops right after a mass removal.
//!
//! Space reservation (decisions 19): the file is sparse and no page of the arena may be
//! touched before its space was reserved ([`Mapping::reserve`]), or a full file system
//! would kill the process with SIGBUS. Invariant: the first page of every free block
//! is reserved (its links live there), and so is every allocated block and every
//! quick block. A free block of two pages or more whose other pages may not be
//! reserved carries the SPARSE bit in word 1: the blocks carved at creation and by a
//! repair, and those whose pages a release pass punched. Splitting a sparse block
//! reserves what the split touches before touching it: a prefix of at least
//! [`RESERVE_CHUNK`] bytes for the block handed out (fewer system calls than one per
//! page) and the first page of each upper half pushed; an allocation whose reservation
//! fails puts the block back and fails (the map reports it: `put` false, or a croak
//! naming the file and "No space left on device"). The block-state bitmap is reserved
//! whole at creation.
//!
//! Arena bytes are written and read as aligned AtomicU64 words (blocks are 16-aligned),
//! because optimistic readers may copy a string while a writer reuses its block; the
//! reader then fails its seqlock validation and retries.

use crate::backing::Mapping;  // Mapping::reserve in the docs
use crate::layout::{off, Layout, PAGE};
use std::sync::atomic::Ordering::Relaxed;

/// Empty list / no link.
pub const NONE: u32 = u32::MAX;
/// Smallest block order (16 bytes).
pub const MIN_ORDER: u32 = 4;
/// Largest block order (2 GiB; usable size < 4 GiB).
pub const MAX_ORDER: u32 = 31;
const FREE_TAG: u64 = 0x4652_4545; // "FREE"
/// Word 1 of a free block: the order in bits 0..8, this bit when pages after the first
/// may not be reserved (see the module docs).
const SPARSE: u64 = 1 << 8;
/// Bytes reserved at once at the start of a sparse block being split.
pub const RESERVE_CHUNK: u64 = 64 << 10;
/// Release free pages only after usage fell by at least this much (see module docs).
const RELEASE_MIN_DROP: u64 = 1 << 20;
/// Pages are cut into blocks of one order ([`Arena::alloc_slab`]) only while at least
/// this much, and a quarter of the arena, is free in the buddy lists: a page given to
/// one order cannot serve another until all its blocks are free, which a small or
/// nearly full arena (an LRU cache's string space) cannot afford.
const SLAB_MIN_FREE: u64 = 1 << 20;
/// Largest order kept on a quick list (4 KiB).
pub const QUICK_MAX: u32 = 12;
const QUICK_TAG: u64 = 0x5155_4943; // "QUIC"
/// Seconds between two release passes of a map that was refilled in between.
pub const RELEASE_INTERVAL: u64 = 1;

/// How often (in qualifying frees) a paced release looks at the clock: reading it on
/// every free of a removal pass would cost more than the pacing saves. Racy across
/// threads on purpose (Relaxed load + store): it only samples.
static CLOCK_SAMPLE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

// Ordering for everything in this module: Relaxed. The arena is only mutated by the
// holder of the write lock, whose acquire/release (lock.rs) orders these accesses with
// respect to the next holder; optimistic readers validate what they read with the
// seqlock, whose fences (lock.rs) order their loads. Atomics are used only so that a
// concurrent optimistic read of a block being reused is not a data race.

/// Block order for a string of `len` bytes.
#[inline]
pub fn order_for(len: usize) -> u32 {
    (len.max(16).next_power_of_two().trailing_zeros()).max(MIN_ORDER)
}

/// A view of a map's arena.
pub struct Arena<'a> {
    m: &'a Mapping,
    base: usize,
    usable: u64,
    bmp: usize,
}

impl<'a> Arena<'a> {
    /// The arena of a mapping with layout `l` (usable 0 for int-only variants).
    #[inline]
    pub fn new(m: &'a Mapping, l: &Layout) -> Arena<'a> {
        Arena { m, base: l.arena_off, usable: l.arena_usable(), bmp: l.arena_bitmap_off }
    }

    /// Usable bytes.
    #[inline]
    pub fn usable(&self) -> u64 {
        self.usable
    }

    /// Bytes currently allocated.
    pub fn used(&self) -> u64 {
        self.m.u64(off::ARENA_USED).load(Relaxed)
    }

    #[inline]
    fn head(&self, k: u32) -> &std::sync::atomic::AtomicU32 {
        self.m.u32(off::ARENA_HEADS + k as usize * 4)
    }
    #[inline]
    fn w0(&self, o: u32) -> &std::sync::atomic::AtomicU64 {
        self.m.u64(self.base + o as usize)
    }
    #[inline]
    fn w1(&self, o: u32) -> &std::sync::atomic::AtomicU64 {
        self.m.u64(self.base + o as usize + 8)
    }
    /// A block of order k at o lies inside the arena and is aligned?
    #[inline]
    fn valid(&self, o: u32, k: u32) -> bool {
        (MIN_ORDER..=MAX_ORDER).contains(&k) && o as u64 % (1u64 << k) == 0 && o as u64 + (1u64 << k) <= self.usable
    }
    #[inline]
    fn bit(&self, o: u32) -> (&std::sync::atomic::AtomicU64, u64) {
        let unit = (o / 16) as usize;
        (self.m.u64(self.bmp + unit / 64 * 8), 1u64 << (unit % 64))
    }
    #[inline]
    fn is_free_start(&self, o: u32) -> bool {
        let (w, b) = self.bit(o);
        w.load(Relaxed) & b != 0
    }
    #[inline]
    fn set_free_start(&self, o: u32, on: bool) {
        let (w, b) = self.bit(o);
        let v = w.load(Relaxed);
        w.store(if on { v | b } else { v & !b }, Relaxed);
    }
    fn set_links(&self, o: u32, next: u32, prev: u32) {
        self.w0(o).store(next as u64 | (prev as u64) << 32, Relaxed);
    }
    fn links(&self, o: u32) -> (u32, u32) {
        let w = self.w0(o).load(Relaxed);
        (w as u32, (w >> 32) as u32)
    }
    fn order_of_free(&self, o: u32) -> Option<u32> {
        let w = self.w1(o).load(Relaxed);
        if w >> 32 != FREE_TAG {
            return None;
        }
        Some(w as u32 & 0xFF)
    }
    /// May pages after the first of the free block at `o` be unreserved?
    fn is_sparse(&self, o: u32) -> bool {
        self.w1(o).load(Relaxed) & SPARSE != 0
    }
    /// Reserves the file space of `[o, o + len)` of the arena (see
    /// [`Mapping::reserve`]).
    fn reserve(&self, o: u64, len: u64) -> bool {
        self.m.reserve(self.base + o as usize, len as usize).is_ok()
    }

    #[inline]
    fn qhead(&self, k: u32) -> &std::sync::atomic::AtomicU32 {
        debug_assert!((MIN_ORDER..=QUICK_MAX).contains(&k));
        self.m.u32(off::ARENA_QUICK + (k - MIN_ORDER) as usize * 4)
    }
    #[inline]
    fn counter(&self, o: usize) -> &std::sync::atomic::AtomicU64 {
        self.m.u64(o)
    }
    /// Adds `d` (wrapping: pass a negated value to subtract) to a counter: load + store,
    /// no locked RMW (only the write-lock holder writes counters; see the module docs).
    #[inline]
    fn bump(&self, o: usize, d: u64) -> u64 {
        let c = self.counter(o);
        let v = c.load(Relaxed).wrapping_add(d);
        c.store(v, Relaxed);
        v
    }
    /// Is `o` the start of a block of order `k` on a quick list?
    #[inline]
    fn is_quick(&self, o: u32, k: u32) -> bool {
        self.valid(o, k) && self.is_free_start(o) && self.w1(o).load(Relaxed) == QUICK_TAG << 32 | k as u64
    }

    /// Pops a block of order `k` from its quick list (None: empty; a damaged list is
    /// dropped, its blocks leak until a repair rebuilds the arena).
    #[inline]
    fn quick_pop(&self, k: u32) -> Option<u32> {
        let h = self.qhead(k);
        let v = h.load(Relaxed);
        if v == 0 {
            return None;
        }
        let o = (v - 1).wrapping_mul(16);
        if !self.is_quick(o, k) {
            h.store(0, Relaxed);
            return None;
        }
        // The next link is validated when it is popped.
        h.store(self.w0(o).load(Relaxed) as u32, Relaxed);
        self.w1(o).store(0, Relaxed);
        self.set_free_start(o, false);
        self.bump(off::ARENA_QUICK_BYTES, (1u64 << k).wrapping_neg());
        Some(o)
    }

    /// Pushes the allocated block of order `k` at `o` onto its quick list.
    #[inline]
    fn quick_push(&self, o: u32, k: u32) {
        let h = self.qhead(k);
        self.w0(o).store(h.load(Relaxed) as u64, Relaxed);
        self.w1(o).store(QUICK_TAG << 32 | k as u64, Relaxed);
        self.set_free_start(o, true);
        h.store(o / 16 + 1, Relaxed);
        self.bump(off::ARENA_QUICK_BYTES, 1 << k);
    }

    /// Marks every free block of two pages or more sparse (a file written before the
    /// marks existed: its free blocks' pages may be holes).
    pub fn mark_all_sparse(&self) {
        for k in 13..=MAX_ORDER {
            let mut o = self.head(k).load(Relaxed);
            let mut n = 0u64;
            while o != NONE && self.valid(o, k) && n < (self.usable >> k) + 1 {
                let w = self.w1(o);
                w.store(w.load(Relaxed) | SPARSE, Relaxed);
                o = self.links(o).0;
                n += 1;
            }
        }
    }

    /// Gives every quick block back to the buddy lists (coalescing); true if any.
    pub fn flush_quick(&self) -> bool {
        let mut any = false;
        for k in MIN_ORDER..=QUICK_MAX {
            // Bounded: a damaged (cyclic) list cannot make this loop forever.
            let mut n = 0u64;
            while n <= self.usable >> k {
                let Some(o) = self.quick_pop(k) else { break };
                self.buddy_free(o, k);
                any = true;
                n += 1;
            }
            self.qhead(k).store(0, Relaxed);
        }
        self.counter(off::ARENA_QUICK_BYTES).store(0, Relaxed);
        any
    }

    /// Pushes the free block of order `k` at `o` (its first page reserved) onto its
    /// buddy list, `sparse` as the module docs say.
    fn push(&self, o: u32, k: u32, sparse: bool) {
        let head = self.head(k).load(Relaxed);
        let head = if head != NONE && self.valid(head, k) { head } else { NONE };
        self.set_links(o, head, NONE);
        let flag = if sparse && k > 12 { SPARSE } else { 0 };
        self.w1(o).store(FREE_TAG << 32 | flag | k as u64, Relaxed);
        if head != NONE {
            let (n, _) = self.links(head);
            self.set_links(head, n, o);
        }
        self.head(k).store(o, Relaxed);
        self.set_free_start(o, true);
    }

    fn unlink(&self, o: u32, k: u32) {
        let (next, prev) = self.links(o);
        let next = if next != NONE && self.valid(next, k) { next } else { NONE };
        if prev != NONE && self.valid(prev, k) {
            let (_, pp) = self.links(prev);
            self.set_links(prev, next, pp);
        } else {
            self.head(k).store(next, Relaxed);
        }
        if next != NONE {
            let (nn, _) = self.links(next);
            self.set_links(next, nn, prev);
        }
        self.set_free_start(o, false);
        self.w1(o).store(0, Relaxed);
    }

    /// Carves the whole usable range into free blocks (fresh or zeroed bitmap), after
    /// reserving the bitmap; Err(errno) when that fails.
    pub fn init(&self) -> Result<(), i32> {
        let bl = (self.usable as usize / 16).div_ceil(8);
        self.m.reserve(self.bmp, bl)?;
        for k in 0..32 {
            self.head(k).store(NONE, Relaxed);
        }
        self.clear_quick();
        self.m.u64(off::ARENA_USED).store(0, Relaxed);
        self.m.u64(off::ARENA_FREE).store(self.usable, Relaxed);
        self.m.u64(off::ARENA_PEAK).store(0, Relaxed);
        self.m.u64(off::ARENA_FLOOR).store(0, Relaxed);
        if self.carve(0, self.usable) {
            Ok(())
        } else {
            Err(libc::ENOSPC)
        }
    }

    /// Empties the quick lists without looking at them (init, rebuild).
    fn clear_quick(&self) {
        for k in MIN_ORDER..=QUICK_MAX {
            self.qhead(k).store(0, Relaxed);
        }
        self.m.u64(off::ARENA_QUICK_BYTES).store(0, Relaxed);
    }

    /// Pushes `[o, end)` as the largest naturally aligned free blocks that fit: no two
    /// of them are free buddies, so the lists are as coalesced as `free` keeps them.
    /// Each block's first page is reserved first and the block marked sparse; a block
    /// whose page cannot be reserved is left out (lost until the next rebuild) and the
    /// result is false.
    fn carve(&self, mut o: u64, end: u64) -> bool {
        let mut all = true;
        while o + 16 <= end {
            let mut k = MAX_ORDER;
            while k > MIN_ORDER && (o % (1 << k) != 0 || o + (1 << k) > end) {
                k -= 1;
            }
            if self.reserve(o, (1u64 << k).min(PAGE as u64)) {
                self.push(o as u32, k, true);
            } else {
                all = false;
            }
            o += 1 << k;
        }
        all
    }

    /// Rebuilds the free lists, the block bitmap and the counters from the strings in
    /// use (`live`: offset and length of every arena string the table references), after
    /// a writer died in the middle of an allocation or a free. Everything between live
    /// blocks becomes free, so a block the dead writer had allocated but not yet linked
    /// (or unlinked but not yet freed) is reclaimed, and `arena_used` is exact again.
    /// Returns the indices into `live` that cannot be blocks (out of range, misaligned,
    /// overlapping another): damage, whose entries the caller drops.
    pub fn rebuild(&self, live: &[(u32, usize)]) -> Vec<usize> {
        let mut by_off: Vec<usize> = (0..live.len()).collect();
        by_off.sort_by_key(|&i| live[i].0);
        let words = (self.usable as usize / 16).div_ceil(64);
        for w in 0..words {
            self.m.u64(self.bmp + w * 8).store(0, Relaxed);
        }
        for k in 0..32 {
            self.head(k).store(NONE, Relaxed);
        }
        self.clear_quick();
        let (mut bad, mut pos, mut used) = (Vec::new(), 0u64, 0u64);
        for i in by_off {
            let (o, len) = live[i];
            let k = order_for(len);
            if !self.valid(o, k) || (o as u64) < pos {
                bad.push(i);
                continue;
            }
            // A block the rebuild cannot reserve a page for is left out (see carve).
            let _ = self.carve(pos, o as u64);
            pos = o as u64 + (1 << k);
            used += 1 << k;
        }
        let _ = self.carve(pos, self.usable);
        self.m.u64(off::ARENA_USED).store(used, Relaxed);
        self.m.u64(off::ARENA_FREE).store(self.usable - used, Relaxed);
        self.m.u64(off::ARENA_PEAK).store(used, Relaxed);
        self.m.u64(off::ARENA_FLOOR).store(used, Relaxed);
        bad
    }

    /// Checks the free lists against the bitmap and the counters (for `verify`):
    /// returns the problems found, described.
    pub fn check_lists(&self, live_bytes: u64) -> Vec<String> {
        let mut problems = Vec::new();
        let mut free = 0u64;
        for k in MIN_ORDER..=MAX_ORDER {
            let mut o = self.head(k).load(Relaxed);
            let mut prev = NONE;
            let mut n = 0u64;
            while o != NONE {
                if !self.valid(o, k) || !self.is_free_start(o) || self.order_of_free(o) != Some(k) {
                    problems.push(format!("arena: free list of order {k} holds a bad block at {o}"));
                    break;
                }
                if self.links(o).1 != prev {
                    problems.push(format!("arena: free block {o} (order {k}) has a wrong back link"));
                }
                free += 1 << k;
                n += 1;
                if n > (self.usable >> k) + 1 {
                    problems.push(format!("arena: free list of order {k} loops"));
                    break;
                }
                prev = o;
                o = self.links(o).0;
            }
        }
        let mut quick = 0u64;
        for k in MIN_ORDER..=QUICK_MAX {
            let mut v = self.qhead(k).load(Relaxed);
            let mut n = 0u64;
            while v != 0 {
                let o = (v - 1).wrapping_mul(16);
                if !self.is_quick(o, k) {
                    problems.push(format!("arena: quick list of order {k} holds a bad block at {o}"));
                    break;
                }
                quick += 1 << k;
                n += 1;
                if n > (self.usable >> k) + 1 {
                    problems.push(format!("arena: quick list of order {k} loops"));
                    break;
                }
                v = self.w0(o).load(Relaxed) as u32;
            }
        }
        let counted = self.m.u64(off::ARENA_QUICK_BYTES).load(Relaxed);
        if counted != quick {
            problems.push(format!("arena: {counted} bytes counted in quick lists, they hold {quick}"));
        }
        free += quick;
        let used = self.used();
        if used != live_bytes {
            problems.push(format!("arena: {used} bytes counted in use, strings hold {live_bytes}"));
        }
        if free + live_bytes != self.usable {
            problems.push(format!(
                "arena: {free} bytes free + {live_bytes} in use != {} usable (leaked or doubly owned blocks)",
                self.usable
            ));
        }
        problems
    }

    /// Empties the arena (clear): gives all its pages back and re-initialises.
    /// Err(errno) when the space the new free lists need cannot be reserved (the arena
    /// is then empty but some of it unusable until a repair or the next clear).
    pub fn reset(&self) -> Result<(), i32> {
        if self.usable == 0 {
            return Ok(());
        }
        let l = crate::layout::round_up(self.usable as usize, PAGE);
        self.m.release(self.base, l);
        let bl = crate::layout::round_up((self.usable as usize / 16).div_ceil(8), PAGE);
        if !self.m.release(self.bmp, bl) {
            // The kernel would not punch: zero the bitmap by hand.
            for i in 0..bl / 8 {
                self.m.u64(self.bmp + i * 8).store(0, Relaxed);
            }
        }
        self.init()
    }

    /// Allocates a block for `len` bytes; None when no block is large enough (after the
    /// quick lists were given back to the buddy lists).
    #[inline]
    pub fn alloc(&self, len: usize) -> Option<u32> {
        let k = order_for(len);
        if k <= QUICK_MAX {
            if let Some(o) = self.quick_pop(k) {
                self.allocated(k);
                return Some(o);
            }
        }
        self.alloc_slow(k)
    }

    /// Counts a block of order `k` as allocated.
    #[inline]
    fn allocated(&self, k: u32) {
        let used = self.bump(off::ARENA_USED, 1 << k);
        let peak = self.m.u64(off::ARENA_PEAK);
        if used > peak.load(Relaxed) {
            peak.store(used, Relaxed);
        }
    }

    /// Allocation from the buddy lists, retried once after the quick lists were
    /// flushed into them.
    #[inline(never)]
    fn alloc_slow(&self, k: u32) -> Option<u32> {
        if k > MAX_ORDER {
            return None;
        }
        if k < QUICK_MAX
            && self.counter(off::ARENA_FREE).load(Relaxed) >= SLAB_MIN_FREE.max(self.usable / 4)
            && (k..QUICK_MAX).all(|j| self.head(j).load(Relaxed) == NONE)
        {
            if let Some(o) = self.alloc_slab(k) {
                return Some(o);
            }
        }
        match self.buddy_alloc(k) {
            Some(o) => Some(o),
            None if self.flush_quick() => self.buddy_alloc(k),
            None => None,
        }
    }

    /// A block of order `k` (below a page) when no buddy list below a page has a block
    /// to split: one page-sized block (order [`QUICK_MAX`]) from the buddy lists, cut
    /// into blocks of order `k`; the first is handed out, the others go onto the quick
    /// list of order `k`. A map being filled allocates by splitting: this is one split
    /// per page instead of about one per allocation (issue 12: ~220 instructions per
    /// string of a fresh map). The page is reserved by the buddy allocation (its
    /// prefix), so every quick block is, as the module docs require; the quick blocks
    /// go back to the buddy lists like any others (an allocation that would fail, a
    /// release pass), so the arena still cannot fragment into failure; a writer killed
    /// in here leaves the lists to the repair's rebuild, as any allocation does.
    #[inline(never)]
    fn alloc_slab(&self, k: u32) -> Option<u32> {
        let peak = self.m.u64(off::ARENA_PEAK);
        let peak0 = peak.load(Relaxed);
        let o = self.buddy_alloc(QUICK_MAX)?;
        let n = 1u32 << (QUICK_MAX - k);
        // From the top, so that the list hands the blocks out in address order.
        for i in (1..n).rev() {
            self.quick_push(o + (i << k), k);
        }
        // buddy_alloc counted the whole page as allocated (and raised the peak by it):
        // only the first block is.
        let used = self.bump(off::ARENA_USED, ((1u64 << QUICK_MAX) - (1u64 << k)).wrapping_neg());
        peak.store(peak0.max(used), Relaxed);
        Some(o)
    }

    fn buddy_alloc(&self, k: u32) -> Option<u32> {
        for j in k..=MAX_ORDER {
            let o = self.head(j).load(Relaxed);
            if o == NONE {
                continue;
            }
            if !self.valid(o, j) || !self.is_free_start(o) || self.order_of_free(o) != Some(j) {
                // Damaged list: drop it (its blocks leak) rather than hand out garbage.
                self.head(j).store(NONE, Relaxed);
                continue;
            }
            let sparse = self.is_sparse(o);
            self.unlink(o, j);
            // What the split will touch is reserved first (module docs): a prefix of the
            // block for the block handed out, and the first page of every upper half
            // beyond it; on failure the block goes back, untouched.
            let prefix = (1u64 << k).max(RESERVE_CHUNK).min(1u64 << j);
            if sparse {
                let mut ok = self.reserve(o as u64, prefix);
                let mut h = j;
                while ok && h > k {
                    h -= 1;
                    let upper = o as u64 + (1 << h);
                    if upper >= o as u64 + prefix {
                        ok = self.reserve(upper, (1u64 << h).min(PAGE as u64));
                    }
                }
                if !ok {
                    self.push(o, j, true);
                    return None;
                }
            }
            let mut j = j;
            while j > k {
                j -= 1;
                let upper = o as u64 + (1 << j);
                self.push(upper as u32, j, sparse && upper + (1 << j) > o as u64 + prefix);
            }
            // Load + store, not fetch_add: only the write-lock holder writes the counters
            // (module docs), and a locked RMW would wait for the block stores above to
            // leave the store buffer.
            self.bump(off::ARENA_FREE, (1u64 << k).wrapping_neg());
            self.allocated(k);
            return Some(o);
        }
        None
    }

    /// Frees the block holding a string of `len` bytes at `o`: onto its quick list when
    /// small, else into the buddy lists (coalescing). Invalid or already-free blocks are
    /// ignored. May run a (paced) release pass, see the module docs.
    #[inline]
    pub fn free(&self, o: u32, len: usize) {
        let k = order_for(len);
        if !self.valid(o, k) || self.is_free_start(o) {
            return;
        }
        if k <= QUICK_MAX {
            self.quick_push(o, k);
        } else {
            self.buddy_free(o, k);
        }
        let used = self.bump(off::ARENA_USED, (1u64 << k).wrapping_neg());
        let peak = self.m.u64(off::ARENA_PEAK).load(Relaxed);
        if used < peak / 4 && peak - used >= RELEASE_MIN_DROP {
            self.maybe_release(peak);
        }
    }

    /// A mass removal's release pass, paced (module docs): always when nothing was
    /// allocated past the last pass's level since, else at most once per
    /// [`RELEASE_INTERVAL`] (the clock is sampled, not read on every free).
    #[cold]
    #[inline(never)]
    fn maybe_release(&self, peak: u64) {
        if peak > self.m.u64(off::ARENA_FLOOR).load(Relaxed) {
            let n = CLOCK_SAMPLE.load(Relaxed).wrapping_add(1);
            CLOCK_SAMPLE.store(n, Relaxed);
            if n % 64 != 1 {
                return;
            }
            let now = crate::ttl::wall_now();
            if now < self.m.u64(off::ARENA_RELEASED_AT).load(Relaxed).saturating_add(RELEASE_INTERVAL) {
                return;
            }
            self.m.u64(off::ARENA_RELEASED_AT).store(now, Relaxed);
        }
        self.release_free();
    }

    /// Frees the allocated block of order `k` at `o` into the buddy lists, coalescing
    /// with free buddies.
    fn buddy_free(&self, o: u32, k: u32) {
        let mut k = k;
        let size = 1u64 << k;
        let mut o = o;
        // The freed block is reserved (it held a string); the merged block is sparse
        // if a buddy it absorbs is.
        let mut sparse = false;
        while k < MAX_ORDER {
            let b = o ^ (1u32 << k);
            if b as u64 + (1u64 << k) > self.usable || !self.is_free_start(b) || self.order_of_free(b) != Some(k) {
                break;
            }
            sparse |= self.is_sparse(b);
            self.unlink(b, k);
            o = o.min(b);
            k += 1;
        }
        self.push(o, k, sparse);
        self.bump(off::ARENA_FREE, size);
    }

    /// Gives the pages of every free block of two pages or more back to the OS (all but
    /// the first page, which holds the list links), after the quick lists went back to
    /// the buddy lists; restarts the peak.
    pub fn release_free(&self) {
        self.flush_quick();
        for k in 13..=MAX_ORDER {
            let mut o = self.head(k).load(Relaxed);
            let mut n = 0u64;
            // Bounded walk: a damaged list cannot make this loop forever.
            while o != NONE && self.valid(o, k) && n < (self.usable >> k) + 1 {
                // Marked before the punch: a crash in between leaves a sparse mark on
                // reserved pages (harmless), never the opposite.
                let w = self.w1(o);
                w.store(w.load(Relaxed) | SPARSE, Relaxed);
                self.m.release(self.base + o as usize + PAGE, (1usize << k) - PAGE);
                o = self.links(o).0;
                n += 1;
            }
        }
        let used = self.used();
        self.m.u64(off::ARENA_PEAK).store(used, Relaxed);
        self.m.u64(off::ARENA_FLOOR).store(used, Relaxed);
    }

    /// Writes `b` at block offset `o` (as aligned words; the tail word is zero-padded).
    pub fn write(&self, o: u32, b: &[u8]) {
        let start = self.base + o as usize;
        let mut chunks = b.chunks_exact(8);
        let mut i = 0;
        for c in &mut chunks {
            self.m.u64(start + i).store(u64::from_le_bytes(c.try_into().unwrap()), Relaxed);
            i += 8;
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.m.u64(start + i).store(u64::from_le_bytes(w), Relaxed);
        }
    }

    /// Is `[o, o + len)` inside the arena (and `o` word-aligned)?
    #[inline]
    pub fn in_bounds(&self, o: u32, len: usize) -> bool {
        o % 8 == 0 && o as u64 + len as u64 <= self.usable
    }

    /// Copies `len` bytes at `o` into `out` (replacing its contents) with atomic word
    /// loads. Out-of-bounds references (torn or damaged) yield an empty string and false.
    pub fn read_into(&self, o: u32, len: usize, out: &mut Vec<u8>) -> bool {
        out.clear();
        if !self.in_bounds(o, len) {
            return false;
        }
        out.reserve(len + 8);
        let start = self.base + o as usize;
        let words = len.div_ceil(8);
        for i in 0..words {
            let w = self.m.u64(start + i * 8).load(Relaxed);
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.truncate(len);
        true
    }

    /// Copies `len` bytes at `o` to `dst` with atomic word loads, whole words (up to 7
    /// bytes past `len` are written). False, and nothing written, when out of bounds.
    ///
    /// # Safety
    /// `dst` must be valid for writes of `len.div_ceil(8) * 8` bytes.
    pub unsafe fn read_to(&self, o: u32, len: usize, dst: *mut u8) -> bool {
        if !self.in_bounds(o, len) {
            return false;
        }
        let start = self.base + o as usize;
        for i in 0..len.div_ceil(8) {
            let w = self.m.u64(start + i * 8).load(Relaxed);
            // SAFETY: i * 8 + 8 <= len.div_ceil(8) * 8, within dst (contract above).
            unsafe { dst.add(i * 8).cast::<u64>().write_unaligned(w) };
        }
        true
    }

    /// Are the `b.len()` bytes at `o` equal to `b`? (atomic word loads; false when out
    /// of bounds)
    pub fn eq(&self, o: u32, b: &[u8]) -> bool {
        if !self.in_bounds(o, b.len()) {
            return false;
        }
        let start = self.base + o as usize;
        let mut chunks = b.chunks_exact(8);
        let mut i = 0;
        for c in &mut chunks {
            if self.m.u64(start + i).load(Relaxed) != u64::from_le_bytes(c.try_into().unwrap()) {
                return false;
            }
            i += 8;
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            let mask = u64::MAX >> (64 - 8 * rest.len());
            if self.m.u64(start + i).load(Relaxed) & mask != u64::from_le_bytes(w) {
                return false;
            }
        }
        true
    }

    /// Plain view of a stored string, for the write-lock holder (None when out of bounds).
    pub fn slice_locked(&self, o: u32, len: usize) -> Option<&'a [u8]> {
        if !self.in_bounds(o, len) {
            return None;
        }
        Some(self.m.bytes_locked(self.base + o as usize, len))
    }

    /// Walks the free lists and bitmap and returns the free bytes found (tests).
    #[cfg(test)]
    pub fn check(&self) -> u64 {
        let mut total = 0u64;
        for k in MIN_ORDER..=MAX_ORDER {
            let mut o = self.head(k).load(Relaxed);
            let mut prev = NONE;
            while o != NONE {
                assert!(self.valid(o, k), "block {o} order {k} invalid");
                assert!(self.is_free_start(o));
                assert_eq!(self.order_of_free(o), Some(k));
                let (n, p) = self.links(o);
                assert_eq!(p, prev);
                total += 1 << k;
                prev = o;
                o = n;
            }
        }
        assert_eq!(total, self.m.u64(off::ARENA_FREE).load(Relaxed));
        let quick = self.m.u64(off::ARENA_QUICK_BYTES).load(Relaxed);
        assert!(self.check_lists(self.used()).is_empty(), "{:?}", self.check_lists(self.used()));
        assert_eq!(total + quick + self.used(), self.usable);
        total + quick
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Params;
    use crate::map::format::{anon, TestMap};
    use crate::variant::Variant;

    fn map(arena_cap: u64) -> TestMap {
        anon(Params { variant: Variant::SS, max_entries: 16, max_size: 0, ttl: 0, lru_skip: 0, arena_cap })
    }

    #[test]
    fn orders() {
        assert_eq!(order_for(8), 4);
        assert_eq!(order_for(16), 4);
        assert_eq!(order_for(17), 5);
        assert_eq!(order_for(100), 7);
        assert_eq!(order_for(3000), 12);
        assert_eq!(order_for((1 << 30) - 1), 30);
    }

    #[test]
    fn alloc_free_coalesce() {
        let o = map(1 << 16);
        let a = Arena::new(&o.map, &o.layout);
        assert_eq!(a.check(), 1 << 16);
        let x = a.alloc(100).unwrap();
        let y = a.alloc(100).unwrap();
        let z = a.alloc(9).unwrap();
        assert_eq!(a.used(), 128 + 128 + 16);
        assert_ne!(x, y);
        a.write(x, &[1u8; 100]);
        a.write(y, &[2u8; 100]);
        let mut out = Vec::new();
        assert!(a.read_into(x, 100, &mut out));
        assert_eq!(out, vec![1u8; 100]);
        assert!(a.eq(y, &[2u8; 100]));
        assert!(!a.eq(y, &[3u8; 100]));
        a.check();
        a.free(y, 100);
        a.free(x, 100);
        a.free(z, 9);
        assert_eq!(a.used(), 0);
        a.check();
        // Everything coalesced: the whole arena is one block again.
        assert_eq!(a.alloc(1 << 16).unwrap(), 0);
        a.free(0, 1 << 16);
        a.check();
    }

    #[test]
    fn non_power_of_two_and_reuse_after_free_all() {
        let cap = 12_800u64;
        let o = map(cap);
        let a = Arena::new(&o.map, &o.layout);
        assert_eq!(a.check(), cap);
        // Fill with small strings until full, free all, then a big one must fit.
        let mut got = Vec::new();
        let mut n = 0usize;
        while let Some(off) = a.alloc(8 + n % 9) {
            got.push((off, 8 + n % 9));
            n += 1;
        }
        assert_eq!(a.used(), cap);
        // Free every other first, then the rest (worst case for coalescing order).
        for (off, len) in got.iter().step_by(2) {
            a.free(*off, *len);
        }
        a.check();
        for (off, len) in got.iter().skip(1).step_by(2) {
            a.free(*off, *len);
        }
        assert_eq!(a.used(), 0);
        a.check();
        assert!(a.alloc(8192).is_some(), "largest block available again");
        assert!(a.alloc(4096).is_some());
        assert!(a.alloc(512).is_some());
    }

    #[test]
    fn small_blocks_of_a_fresh_arena_are_cut_from_one_page() {
        let o = map(4 << 20);
        let a = Arena::new(&o.map, &o.layout);
        let first = a.alloc(20).unwrap();
        let mut got = vec![first];
        for _ in 1..128 {
            got.push(a.alloc(20).unwrap());
        }
        // One page of 32-byte blocks, handed out in address order.
        assert!(got.windows(2).all(|w| w[1] == w[0] + 32), "{got:?}");
        assert_eq!(first % 4096, 0);
        assert_eq!(a.used(), 128 * 32);
        assert_eq!(a.m.u64(off::ARENA_QUICK_BYTES).load(Relaxed), 0);
        a.check();
        for &b in &got {
            a.free(b, 20);
        }
        assert_eq!(a.used(), 0);
        a.check();
        // The quick blocks coalesce back before a large allocation could fail.
        assert!(a.alloc(2 << 20).is_some(), "half the arena in one block");
        a.check();
    }

    #[test]
    fn quick_lists_reuse_and_flush_before_failing() {
        let o = map(1 << 16);
        let a = Arena::new(&o.map, &o.layout);
        let x = a.alloc(100).unwrap();
        let y = a.alloc(100).unwrap();
        a.free(x, 100);
        a.free(y, 100);
        a.free(y, 100); // a double free of a quick block is ignored
        assert_eq!(a.used(), 0);
        // A 64 KiB arena is too small to cut pages (SLAB_MIN_FREE): the buddy split.
        assert_eq!(a.m.u64(off::ARENA_QUICK_BYTES).load(Relaxed), 256);
        a.check();
        // LIFO: the last freed block of the order comes back first.
        assert_eq!(a.alloc(120), Some(y));
        assert_eq!(a.alloc(65), Some(x));
        // Fill the arena with small blocks, free them all (every one lands on a quick
        // list, nothing coalesces), then one block of the whole arena must still fit:
        // the allocation flushes the quick lists into the buddy lists first.
        a.free(x, 65);
        a.free(y, 120);
        let mut got = Vec::new();
        while let Some(b) = a.alloc(20 + got.len() % 40) {
            got.push((b, 20 + got.len() % 40));
        }
        assert!(a.used() > (1 << 16) - 64, "filled: {}", a.used());
        for &(b, n) in &got {
            a.free(b, n);
        }
        assert_eq!(a.used(), 0);
        assert!(a.m.u64(off::ARENA_QUICK_BYTES).load(Relaxed) > 0);
        a.check();
        assert_eq!(a.alloc(1 << 16), Some(0));
        a.free(0, 1 << 16);
        assert_eq!(a.check(), 1 << 16);
        // A rebuild (crash repair) empties the quick lists and derives everything from
        // the live strings.
        let s = a.alloc(50).unwrap();
        let t = a.alloc(50).unwrap();
        a.free(t, 50);
        assert!(a.rebuild(&[(s, 50)]).is_empty());
        assert_eq!(a.m.u64(off::ARENA_QUICK_BYTES).load(Relaxed), 0);
        assert_eq!(a.used(), 64);
        assert!(a.check_lists(64).is_empty());
    }

    #[test]
    fn a_damaged_quick_list_is_reported_and_dropped() {
        let o = map(1 << 16);
        let a = Arena::new(&o.map, &o.layout);
        let x = a.alloc(40).unwrap();
        a.free(x, 40);
        // Overwrite the block's tag as a stray write would.
        a.w1(x).store(7, Relaxed);
        assert!(a.check_lists(0).iter().any(|p| p.contains("quick list of order 6 holds a bad block")));
        // An allocation does not hand it out: it drops the list (the block leaks).
        let y = a.alloc(40).unwrap();
        assert_ne!(y, x);
    }

    #[test]
    fn bounds_and_double_free() {
        let o = map(4096);
        let a = Arena::new(&o.map, &o.layout);
        let mut out = vec![7u8];
        assert!(!a.read_into(4096, 8, &mut out));
        assert!(out.is_empty());
        assert!(!a.eq(4090, b"12345678"));
        let x = a.alloc(20).unwrap();
        a.free(x, 20);
        a.free(x, 20); // ignored
        a.free(5, 20); // misaligned: ignored
        a.free(1 << 20, 20); // out of range: ignored
        assert_eq!(a.check(), 4096);
    }

    #[test]
    fn reset_restores_everything() {
        let o = map(1 << 20);
        let a = Arena::new(&o.map, &o.layout);
        for i in 0..100 {
            a.alloc(10 + i * 97).unwrap();
        }
        a.reset().unwrap();
        assert_eq!(a.used(), 0);
        assert_eq!(a.check(), 1 << 20);
        assert_eq!(a.alloc(1 << 20), Some(0));
    }
}
