//! The open-addressing table: probing, insertion slots, deletion, in-place rehash.
//!
//! Swiss-table style with 8-slot groups aligned to 8, so a group's control bytes are
//! one naturally aligned u64 ([`crate::ctrl`]). A key's probe sequence visits groups
//! `g0, g0+1, g0+3, g0+6, ...` (triangular numbers, modulo the group count), which
//! visits every group exactly once when the group count is a power of two; every
//! probe loop is bounded by the group count, so even a damaged or torn table cannot
//! make a lookup loop forever.
//!
//! Invariant that makes lookups stop early: a probe stops at the first group that has
//! an EMPTY byte. An insert only passes over a group when that group has no EMPTY or
//! DELETED byte, and a group that has no EMPTY byte never gets one back except by a
//! rehash, because deletion writes EMPTY only when the group already has an EMPTY byte
//! (so no probe sequence ever passed through it) and DELETED otherwise.
//!
//! Resize and tombstone compaction are done in place over the same regions (hashbrown's
//! `rehash_in_place`, generalised to a different target capacity): full bytes become
//! "pending" (DELETED), specials become EMPTY, then every pending entry is moved to its
//! place in the new table, swapping with pending entries that sit there. Growing simply
//! appends EMPTY groups first; shrinking moves the entries above the new capacity down.
//!
//! All control words and slot fields are accessed through atomics of their own width
//! (Relaxed: only the write-lock holder mutates them, or a counter under the read lock
//! mutates a value field; the lock and seqlock fences order everything, see lock.rs).

use crate::backing::Mapping;
use crate::ctrl::{self, Ctrl};
use crate::layout::{self, Layout};
use std::sync::atomic::{fence, AtomicI16, AtomicI32, AtomicI64, AtomicU16, AtomicU32, AtomicU64, Ordering::{Acquire, Relaxed, Release}};

/// Result of probing for a key on the insertion path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// The key is at this slot.
    Found(usize),
    /// The key is absent; this is the first EMPTY or DELETED slot of its sequence.
    Vacant(usize),
    /// The key is absent and no slot is free (only a damaged table can get here).
    NoRoom,
}

/// Told about every entry an in-place rehash moves, so that per-slot side arrays (the
/// LRU links and clock bytes, the expiry array) move with their entries. `()` ignores
/// everything (plain maps).
pub trait Relocate {
    /// The entry of slot `from` moved to the free slot `to`.
    fn moved(&mut self, from: usize, to: usize);
    /// The entries of slots `a` and `b` traded places.
    fn swapped(&mut self, a: usize, b: usize);
    /// The entry of slot `i` was dropped (a damaged table with more entries than slots).
    fn dropped(&mut self, i: usize);
    /// The per-slot payload that must travel with an entry exactly, even across a crash
    /// in the middle of a rehash (the expiry time): the rehash copies it with the slot,
    /// under the journal. Side state that a repair can rebuild (LRU links) is moved by
    /// `moved`/`swapped` instead.
    fn payload(&self, _i: usize) -> u32 {
        0
    }
    /// Sets slot `i`'s payload.
    fn set_payload(&mut self, _i: usize, _v: u32) {}
}

impl Relocate for () {
    #[inline(always)]
    fn moved(&mut self, _: usize, _: usize) {}
    #[inline(always)]
    fn swapped(&mut self, _: usize, _: usize) {}
    #[inline(always)]
    fn dropped(&mut self, _: usize) {}
}

/// The resize journal in the header (offsets `off::J_*`): what a crash-interrupted
/// in-place rehash was doing, so that the next writer can finish it ([`Table::resume`]).
///
/// A rehash runs in two phases. Converting (state 1): group by group, full bytes become
/// "pending" and tombstones empty; `J_PROGRESS` counts converted groups, because a pending
/// byte and a tombstone look alike (both DELETED). Placing (state 2): every pending entry
/// goes to its slot in the new table, one journaled step at a time:
///
/// - move to an empty slot `t` (step 1): copy slot `i` to `t`, mark `t` full, mark `i`
///   empty. `i` keeps its data until marked empty, so redoing the step is exact; an empty
///   `i` proves the step finished.
/// - swap with a pending entry at `t` (steps 2, 3): save `t` in the scratch words, copy
///   `i` to `t` (step 2), mark `t` full, write the scratch into `i` (step 3). Redoing from
///   step 2 copies `i` again (intact until step 3), from step 3 only restores `i`.
///
/// Every journal store is followed (or preceded) by a Release fence and every recovery
/// read by an Acquire fence: a killed writer's stores are not lost, but without fences
/// the compiler or a weakly ordered CPU could make a later store visible before an
/// earlier one. All of this runs under the write lock; nobody else writes these fields.
pub struct Journal<'a> {
    m: &'a Mapping,
}

impl<'a> Journal<'a> {
    /// The journal of mapping `m`.
    pub fn new(m: &'a Mapping) -> Journal<'a> {
        Journal { m }
    }
    fn w(&self, o: usize) -> &AtomicU32 {
        self.m.u32(o)
    }
    /// Stores `v` at journal field `o` after everything written before (Release fence).
    fn mark(&self, o: usize, v: u32) {
        fence(Release);
        self.w(o).store(v, Relaxed);
        fence(Release);
    }
    /// Reads journal field `o`; what the writer stored before it is visible after.
    fn read(&self, o: usize) -> u32 {
        let v = self.w(o).load(Relaxed);
        fence(Acquire);
        v
    }
    /// Is a rehash unfinished (its writer died)?
    pub fn pending(&self) -> bool {
        self.read(layout::off::J_STATE) != 0
    }
    /// Closes the journal: call after the header records the new capacity (a crash
    /// before this point is resumed, after it there is nothing to resume).
    pub fn done(&self) {
        self.mark(layout::off::J_STATE, 0);
    }
    /// The capacity the unfinished rehash was going to.
    pub fn target(&self) -> u32 {
        self.read(layout::off::J_TARGET)
    }
}

/// A view of the table at capacity `cap`.
#[derive(Clone, Copy)]
pub struct Table<'a> {
    _m: std::marker::PhantomData<&'a Mapping>,
    /// Start of the control bytes / slots in this process's mapping (cached so that a
    /// lookup's chain of dependent loads does not start with the mapping's base).
    ctrl: *mut u8,
    slots: *mut u8,
    max_cap: usize,
    ss: usize,
    ko: usize,
    kw: usize,
    vo: usize,
    vw: usize,
    /// Current capacity (slots, power of two).
    pub cap: usize,
}

// SAFETY: a Table is a view of regions of a Mapping (itself Send + Sync) that it only
// accesses through atomics; its raw pointers are the regions' fixed addresses, never
// mutated, and valid as long as the mapping ('a, or the owner's borrow for a detached
// view).
unsafe impl Send for Table<'_> {}
// SAFETY: as above; every method takes &self and accesses memory through atomics.
unsafe impl Sync for Table<'_> {}

impl<'a> Table<'a> {
    /// The table of a mapping with layout `l`, at capacity `cap` (not checked).
    #[inline]
    pub fn with_cap(m: &'a Mapping, l: &Layout, cap: usize) -> Table<'a> {
        let v = l.variant;
        debug_assert!(cap <= l.max_cap as usize);
        Table {
            _m: std::marker::PhantomData,
            // SAFETY (both adds): the regions lie inside the mapping (validated layout).
            ctrl: unsafe { m.base().add(l.ctrl_off) },
            slots: unsafe { m.base().add(l.slots_off) },
            max_cap: l.max_cap as usize,
            ss: l.slot_size as usize,
            ko: v.key_off() as usize,
            kw: v.key_kind().width(),
            vo: v.val_off() as usize,
            vw: v.val_kind().width(),
            cap,
        }
    }

    /// The table at the capacity recorded in the header; None when that value is not a
    /// power of two within 16..=max_cap (damaged, or torn under an optimistic reader).
    #[inline]
    pub fn current(m: &'a Mapping, l: &Layout) -> Option<Table<'a>> {
        Table::with_cap(m, l, 0).at_current(m)
    }

    /// A view of the same regions at the capacity the header of `m` records (the
    /// mapping this view was made for); None as for [`Table::current`]. A handle keeps
    /// one view built at open and derives every table from it with this: only the
    /// capacity is loaded per call, nothing is recomputed from the layout.
    #[inline(always)]
    pub fn at_current(&self, m: &Mapping) -> Option<Table<'a>> {
        // Relaxed: writers change cap only under the write lock (seq odd); optimistic
        // readers validate with the seqlock, locked readers are ordered by the lock.
        let cap = m.u32(layout::off::CAP).load(Relaxed);
        if !cap.is_power_of_two() || cap < layout::MIN_CAP || cap as usize > self.max_cap {
            return None;
        }
        Some(Table { cap: cap as usize, ..*self })
    }

    /// This view at capacity `cap` (not checked).
    #[inline(always)]
    pub fn at_cap(&self, cap: usize) -> Table<'a> {
        debug_assert!(cap <= self.max_cap);
        Table { cap, ..*self }
    }

    /// A view of `m` with layout `l` whose lifetime is not tied to `m`.
    ///
    /// # Safety
    /// The view (and every view derived from it) must only be used while the mapping
    /// lives: its owner hands out copies whose lifetime is bounded by its own borrow.
    pub unsafe fn detached(m: &Mapping, l: &Layout) -> Table<'static> {
        let t = Table::with_cap(m, l, 0);
        let Table { _m, ctrl, slots, max_cap, ss, ko, kw, vo, vw, cap } = t;
        Table { _m: std::marker::PhantomData, ctrl, slots, max_cap, ss, ko, kw, vo, vw, cap }
    }

    /// Number of groups.
    #[inline]
    pub fn groups(&self) -> usize {
        self.cap / 8
    }

    /// The atomic of type `T` at `p`, a naturally aligned address inside the control
    /// or slot region (callers pass indices below max_cap).
    #[inline(always)]
    fn at<T>(&self, p: *mut u8) -> &'a T {
        debug_assert!(p as usize % std::mem::align_of::<T>() == 0);
        // SAFETY: p is inside the ctrl or slot region of the mapping (indices < max_cap,
        // asserted in debug builds by the callers), naturally aligned for T (regions are
        // page aligned, fields aligned within slots), and the mapping outlives 'a.
        unsafe { &*(p as *const T) }
    }

    #[inline(always)]
    fn ctrl_word(&self, g: usize) -> &'a AtomicU64 {
        debug_assert!(g < self.max_cap / 8);
        // SAFETY: g < max_cap / 8, so the word lies in the ctrl region.
        self.at(unsafe { self.ctrl.add(g * 8) })
    }

    /// Control word of group `g`.
    #[inline]
    pub fn group(&self, g: usize) -> u64 {
        self.ctrl_word(g).load(Relaxed)
    }

    #[inline]
    fn store_group(&self, g: usize, w: u64) {
        self.ctrl_word(g).store(w, Relaxed);
    }

    /// Control byte of slot `i`.
    #[inline]
    pub fn ctrl(&self, i: usize) -> Ctrl {
        ctrl::byte(self.group(i / 8), i % 8)
    }

    /// Sets the control byte of slot `i` (write-lock holder only: read-modify-write of
    /// the group word, which no one else writes).
    #[inline]
    pub fn set_ctrl(&self, i: usize, c: Ctrl) {
        let g = i / 8;
        self.store_group(g, ctrl::with_byte(self.group(g), i % 8, c));
    }

    #[inline(always)]
    fn load_raw(&self, p: *mut u8, w: usize) -> u64 {
        match w {
            2 => self.at::<AtomicU16>(p).load(Relaxed) as u64,
            4 => self.at::<AtomicU32>(p).load(Relaxed) as u64,
            _ => self.at::<AtomicU64>(p).load(Relaxed),
        }
    }

    #[inline(always)]
    fn store_raw(&self, p: *mut u8, w: usize, v: u64) {
        match w {
            2 => self.at::<AtomicU16>(p).store(v as u16, Relaxed),
            4 => self.at::<AtomicU32>(p).store(v as u32, Relaxed),
            _ => self.at::<AtomicU64>(p).store(v, Relaxed),
        }
    }

    #[inline(always)]
    fn load_int(&self, p: *mut u8, w: usize) -> i64 {
        match w {
            2 => self.at::<AtomicI16>(p).load(Relaxed) as i64,
            4 => self.at::<AtomicI32>(p).load(Relaxed) as i64,
            _ => self.at::<AtomicI64>(p).load(Relaxed),
        }
    }

    /// Address of slot `i`'s key field.
    #[inline(always)]
    fn key_off(&self, i: usize) -> *mut u8 {
        debug_assert!(i < self.max_cap);
        // SAFETY: i < max_cap: inside the slot region.
        unsafe { self.slots.add(i * self.ss + self.ko) }
    }
    /// Address of slot `i`'s value field.
    #[inline(always)]
    fn val_off(&self, i: usize) -> *mut u8 {
        debug_assert!(i < self.max_cap);
        // SAFETY: i < max_cap: inside the slot region.
        unsafe { self.slots.add(i * self.ss + self.vo) }
    }

    /// Integer key of slot `i`, for a table whose key field is known to be `W` bytes
    /// (the monomorphic write path: no width dispatch in the probe loop).
    #[inline(always)]
    pub fn key_int_w<const W: usize>(&self, i: usize) -> i64 {
        debug_assert_eq!(self.kw, W);
        self.load_int(self.key_off(i), W)
    }
    /// Stores an integer value field known to be `W` bytes wide (truncated to it).
    #[inline(always)]
    pub fn set_val_int_w<const W: usize>(&self, i: usize, v: i64) {
        debug_assert_eq!(self.vw, W);
        self.store_raw(self.val_off(i), W, v as u64)
    }
    /// Stores an integer key field known to be `W` bytes wide (truncated to it).
    #[inline(always)]
    pub fn set_key_int_w<const W: usize>(&self, i: usize, v: i64) {
        debug_assert_eq!(self.kw, W);
        self.store_raw(self.key_off(i), W, v as u64)
    }

    /// Integer key of slot `i` (sign-extended from the field width).
    #[inline]
    pub fn key_int(&self, i: usize) -> i64 {
        self.load_int(self.key_off(i), self.kw)
    }
    /// Integer value of slot `i`.
    #[inline]
    pub fn val_int(&self, i: usize) -> i64 {
        self.load_int(self.val_off(i), self.vw)
    }
    /// Key field of slot `i` as a word (string keys: the StrRef).
    #[inline]
    pub fn key_word(&self, i: usize) -> u64 {
        self.load_raw(self.key_off(i), self.kw)
    }
    /// Value field of slot `i` as a word (string values: the StrRef).
    #[inline]
    pub fn val_word(&self, i: usize) -> u64 {
        self.load_raw(self.val_off(i), self.vw)
    }
    /// Stores the key field (an int is truncated to the field width).
    #[inline]
    pub fn set_key_word(&self, i: usize, v: u64) {
        self.store_raw(self.key_off(i), self.kw, v)
    }
    /// Stores the value field (an int is truncated to the field width).
    #[inline]
    pub fn set_val_word(&self, i: usize, v: u64) {
        self.store_raw(self.val_off(i), self.vw, v)
    }

    /// Adds `d` to slot `i`'s integer value atomically (wrapping at the field width);
    /// returns the new value. Used by counters under the read lock.
    #[inline]
    pub fn val_fetch_add(&self, i: usize, d: i64) -> i64 {
        let o = self.val_off(i);
        // Relaxed: atomicity is all that is needed; the result is published to other
        // processes' later lock holders by the read-lock release (lock.rs), and to
        // concurrent optimistic readers as a single atomic value.
        match self.vw {
            2 => self.at::<AtomicI16>(o).fetch_add(d as i16, Relaxed).wrapping_add(d as i16) as i64,
            4 => self.at::<AtomicI32>(o).fetch_add(d as i32, Relaxed).wrapping_add(d as i32) as i64,
            _ => self.at::<AtomicI64>(o).fetch_add(d, Relaxed).wrapping_add(d),
        }
    }

    /// Replaces slot `i`'s integer value with `f(current)` by a CAS loop (no write when
    /// `f` returns the current value); returns the resulting value.
    #[inline]
    pub fn val_update(&self, i: usize, f: impl Fn(i64) -> i64) -> i64 {
        let o = self.val_off(i);
        // Relaxed (load and CAS): see val_fetch_add.
        macro_rules! cas_loop {
            ($a:expr, $t:ty) => {{
                let a = $a;
                let mut cur = a.load(Relaxed);
                loop {
                    let new = f(cur as i64) as $t;
                    if new == cur {
                        return cur as i64;
                    }
                    match a.compare_exchange_weak(cur, new, Relaxed, Relaxed) {
                        Ok(_) => return new as i64,
                        Err(c) => cur = c,
                    }
                }
            }};
        }
        match self.vw {
            2 => cas_loop!(self.at::<AtomicI16>(o), i16),
            4 => cas_loop!(self.at::<AtomicI32>(o), i32),
            _ => cas_loop!(self.at::<AtomicI64>(o), i64),
        }
    }

    /// Copies slot `from` to slot `to`.
    #[inline]
    pub fn move_slot(&self, from: usize, to: usize) {
        self.set_key_word(to, self.key_word(from));
        self.set_val_word(to, self.val_word(from));
    }

    /// Exchanges slots `a` and `b`.
    #[inline]
    pub fn swap_slots(&self, a: usize, b: usize) {
        let (ka, va) = (self.key_word(a), self.val_word(a));
        self.move_slot(b, a);
        self.set_key_word(b, ka);
        self.set_val_word(b, va);
    }

    /// Asks the CPU to start loading group `g`'s slots (one or two cache lines) while
    /// its control word is being loaded: on a table larger than the caches a lookup
    /// then costs about one memory latency instead of two dependent ones.
    #[inline(always)]
    fn prefetch_slots(&self, g: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            // SAFETY: prefetching is only a hint and never faults; the addresses lie in
            // the slot region of the mapping anyway (g < groups <= max_cap / 8).
            unsafe {
                let start = self.slots.add(g * 8 * self.ss);
                _mm_prefetch::<_MM_HINT_T0>(start as *const i8);
                if self.ss * 8 > 64 {
                    _mm_prefetch::<_MM_HINT_T0>(start.add(64) as *const i8);
                }
            }
        }
    }

    /// Looks `h` up; `eq(i)` compares the key at full slot `i` (called only for slots
    /// whose control byte matches h2). Bounded by the number of groups.
    #[inline(always)]
    pub fn find(&self, h: u64, mut eq: impl FnMut(usize) -> bool) -> Option<usize> {
        let h2 = ctrl::h2(h);
        let gmask = self.groups() - 1;
        let mut g = (h as usize & (self.cap - 1)) / 8;
        self.prefetch_slots(g);
        for stride in 0..self.groups() {
            let w = self.group(g);
            for b in ctrl::match_h2(w, h2) {
                let i = g * 8 + b;
                if eq(i) {
                    return Some(i);
                }
            }
            if !ctrl::match_empty(w).is_empty() {
                return None;
            }
            g = (g + stride + 1) & gmask;
        }
        None
    }

    /// Looks `h` up for an insertion: the key's slot, or the first free slot of its
    /// probe sequence. Bounded by the number of groups.
    #[inline]
    pub fn probe(&self, h: u64, mut eq: impl FnMut(usize) -> bool) -> Probe {
        let h2 = ctrl::h2(h);
        let gmask = self.groups() - 1;
        let mut g = (h as usize & (self.cap - 1)) / 8;
        self.prefetch_slots(g);
        let mut vacant = None;
        for stride in 0..self.groups() {
            let w = self.group(g);
            for b in ctrl::match_h2(w, h2) {
                let i = g * 8 + b;
                if eq(i) {
                    return Probe::Found(i);
                }
            }
            if vacant.is_none() {
                if let Some(b) = ctrl::match_empty_or_deleted(w).lowest() {
                    vacant = Some(g * 8 + b);
                }
            }
            if !ctrl::match_empty(w).is_empty() {
                break;
            }
            g = (g + stride + 1) & gmask;
        }
        match vacant {
            Some(i) => Probe::Vacant(i),
            None => Probe::NoRoom,
        }
    }

    /// First EMPTY or DELETED slot of `h`'s probe sequence (the key is known absent).
    #[inline]
    pub fn find_insert_slot(&self, h: u64) -> Option<usize> {
        let gmask = self.groups() - 1;
        let mut g = (h as usize & (self.cap - 1)) / 8;
        for stride in 0..self.groups() {
            if let Some(b) = ctrl::match_empty_or_deleted(self.group(g)).lowest() {
                return Some(g * 8 + b);
            }
            g = (g + stride + 1) & gmask;
        }
        None
    }

    /// Marks full slot `i` free: EMPTY when its group has an EMPTY byte (no probe
    /// sequence passes through the group), else DELETED. Returns true for a tombstone.
    #[inline]
    pub fn erase(&self, i: usize) -> bool {
        let tomb = ctrl::match_empty(self.group(i / 8)).is_empty();
        self.set_ctrl(i, if tomb { Ctrl::DELETED } else { Ctrl::EMPTY });
        tomb
    }

    /// First full slot at index >= `from`.
    #[inline]
    pub fn next_full(&self, from: usize) -> Option<usize> {
        let mut g = from / 8;
        if g >= self.groups() {
            return None;
        }
        let mut m = ctrl::match_full(self.group(g)).0 & (!0u64 << ((from % 8) * 8));
        loop {
            if m != 0 {
                return Some(g * 8 + m.trailing_zeros() as usize / 8);
            }
            g += 1;
            if g >= self.groups() {
                return None;
            }
            m = ctrl::match_full(self.group(g)).0;
        }
    }

    /// Last full slot at index < `before`.
    pub fn prev_full(&self, before: usize) -> Option<usize> {
        let before = before.min(self.cap);
        if before == 0 {
            return None;
        }
        let mut g = (before - 1) / 8;
        let top = (before - 1) % 8; // highest byte of group g still wanted
        let keep = if top == 7 { !0u64 } else { (1u64 << ((top + 1) * 8)) - 1 };
        let mut m = ctrl::match_full(self.group(g)).0 & keep;
        loop {
            if m != 0 {
                return Some(g * 8 + (63 - m.leading_zeros() as usize) / 8);
            }
            if g == 0 {
                return None;
            }
            g -= 1;
            m = ctrl::match_full(self.group(g)).0;
        }
    }

    /// Rehashes in place into a table of `new_cap` slots (a power of two within the
    /// regions; `new_cap` may be smaller, equal or larger than `cap` but must hold every
    /// entry at below full load). `hash_of(t, i)` recomputes the hash of the entry at
    /// slot `i`; `side` hears of every move. Every step is journaled in `j` (see
    /// [`Journal`]), so a writer killed at any point leaves a rehash that [`resume`]
    /// finishes. The journal stays open: the caller records the new capacity in the header,
    /// then calls [`Journal::done`]. Returns the new view and the number of entries placed.
    ///
    /// [`resume`]: Table::resume
    pub fn rehash(
        &self,
        new_cap: usize,
        hash_of: impl FnMut(&Table<'a>, usize) -> u64,
        side: &mut impl Relocate,
        j: &Journal,
    ) -> (Table<'a>, usize) {
        use layout::off::*;
        j.mark(J_TARGET, new_cap as u32);
        j.mark(J_PROGRESS, 0);
        j.mark(J_STEP, 0);
        j.mark(J_STATE, 1);
        self.convert(new_cap, 0, j);
        let nt = Table { cap: new_cap, ..*self };
        let placed = nt.place(self.cap, hash_of, side, j);
        (nt, placed)
    }

    /// Finishes the rehash a dead writer left in the journal: this table is at the old
    /// capacity (the header's, which a rehash updates only when done). Returns the new
    /// view; the caller recounts entries and tombstones.
    pub fn resume(
        &self,
        mut hash_of: impl FnMut(&Table<'a>, usize) -> u64,
        side: &mut impl Relocate,
        j: &Journal,
    ) -> Table<'a> {
        use layout::off::*;
        let new_cap = j.target() as usize;
        let nt = Table { cap: new_cap, ..*self };
        if j.read(J_STATE) == 1 {
            let done = j.read(J_PROGRESS) as usize;
            self.convert(new_cap, done.min(self.cap / 8), j);
        } else {
            nt.finish_step(&mut hash_of, side, j);
        }
        nt.place(self.cap, hash_of, side, j);
        nt
    }

    /// Phase 1 from group `from`: full bytes become pending, specials empty; then the
    /// groups a grow adds are emptied.
    fn convert(&self, new_cap: usize, from: usize, j: &Journal) {
        use layout::off::*;
        for g in from..self.cap / 8 {
            self.store_group(g, ctrl::full_to_pending_special_to_empty(self.group(g)));
            j.mark(J_PROGRESS, g as u32 + 1);
        }
        for g in self.cap / 8..new_cap / 8 {
            self.store_group(g, u64::MAX);
        }
        j.mark(J_STATE, 2);
    }

    /// Redoes the journaled step a dead writer was in (self: the new table).
    fn finish_step(&self, hash_of: &mut impl FnMut(&Table<'a>, usize) -> u64, side: &mut impl Relocate, j: &Journal) {
        use layout::off::*;
        let (i, t) = (j.read(J_SWAP_A) as usize, j.read(J_SWAP_B) as usize);
        let step = j.read(J_STEP);
        if step == 0 || i >= self.max_cap || t >= self.max_cap {
            return;
        }
        match step {
            1 if self.ctrl(i) != Ctrl::EMPTY => {
                self.move_slot(i, t);
                side.set_payload(t, side.payload(i));
                self.set_ctrl(t, Ctrl::full(hash_of(self, t)));
                self.set_ctrl(i, Ctrl::EMPTY);
            }
            2 | 3 => {
                if step == 2 {
                    self.move_slot(i, t);
                    side.set_payload(t, side.payload(i));
                }
                self.set_ctrl(t, Ctrl::full(hash_of(self, t)));
                self.restore_scratch(i, side, j);
            }
            _ => {}
        }
        j.mark(J_STEP, 0);
    }

    fn save_scratch(&self, t: usize, side: &impl Relocate, j: &Journal) {
        use layout::off::*;
        j.m.u64(J_SCRATCH).store(self.key_word(t), Relaxed);
        j.m.u64(J_SCRATCH + 8).store(self.val_word(t), Relaxed);
        j.w(J_SCRATCH_PAYLOAD).store(side.payload(t), Relaxed);
    }

    fn restore_scratch(&self, i: usize, side: &mut impl Relocate, j: &Journal) {
        use layout::off::*;
        self.set_key_word(i, j.m.u64(J_SCRATCH).load(Relaxed));
        self.set_val_word(i, j.m.u64(J_SCRATCH + 8).load(Relaxed));
        side.set_payload(i, j.w(J_SCRATCH_PAYLOAD).load(Relaxed));
    }

    /// Phase 2: places every pending entry of slots `0..old` (self: the new table).
    fn place(
        &self,
        old: usize,
        mut hash_of: impl FnMut(&Table<'a>, usize) -> u64,
        side: &mut impl Relocate,
        j: &Journal,
    ) -> usize {
        use layout::off::*;
        let nt = *self;
        let mut placed = 0;
        for i in 0..old {
            if nt.ctrl(i) != Ctrl::DELETED {
                continue;
            }
            loop {
                let h = hash_of(&nt, i);
                let Some(t) = nt.find_insert_slot(h) else {
                    // More entries than slots: only a damaged table. Drop the entry
                    // rather than loop.
                    side.dropped(i);
                    nt.set_ctrl(i, Ctrl::EMPTY);
                    break;
                };
                placed += 1;
                if i < nt.cap && i / 8 == t / 8 {
                    nt.set_ctrl(i, Ctrl::full(h)); // one byte store: no journal needed
                    break;
                }
                j.mark(J_SWAP_A, i as u32);
                j.mark(J_SWAP_B, t as u32);
                if nt.ctrl(t) == Ctrl::EMPTY {
                    j.mark(J_STEP, 1);
                    nt.move_slot(i, t);
                    side.set_payload(t, side.payload(i));
                    side.moved(i, t);
                    fence(Release); // the copy before the control bytes that publish it
                    nt.set_ctrl(t, Ctrl::full(h));
                    fence(Release);
                    nt.set_ctrl(i, Ctrl::EMPTY);
                    j.mark(J_STEP, 0);
                    break;
                }
                // t holds a pending entry: swap it in and place it next.
                nt.save_scratch(t, side, j);
                j.mark(J_STEP, 2);
                nt.move_slot(i, t);
                side.set_payload(t, side.payload(i));
                fence(Release);
                nt.set_ctrl(t, Ctrl::full(h));
                j.mark(J_STEP, 3);
                nt.restore_scratch(i, side, j);
                side.swapped(i, t);
                j.mark(J_STEP, 0);
            }
        }
        placed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::hash_int;
    use crate::layout::Params;
    use crate::variant::Variant;
    use std::collections::HashMap;

    const SEED: u64 = 0xABCD_EF01_2345_6789;

    fn map(max: u64) -> crate::map::format::TestMap {
        crate::map::format::anon(Params { variant: Variant::II, max_entries: max, max_size: 0, ttl: 0, lru_skip: 0, arena_cap: 0 })
    }

    fn insert(t: &Table, k: i64, v: i64) {
        let h = hash_int(k, SEED);
        match t.probe(h, |i| t.key_int(i) == k) {
            Probe::Found(i) => t.set_val_word(i, v as u64),
            Probe::Vacant(i) => {
                t.set_key_word(i, k as u64);
                t.set_val_word(i, v as u64);
                t.set_ctrl(i, Ctrl::full(h));
            }
            Probe::NoRoom => panic!("no room"),
        }
    }

    fn get(t: &Table, k: i64) -> Option<i64> {
        t.find(hash_int(k, SEED), |i| t.key_int(i) == k).map(|i| t.val_int(i))
    }

    fn remove(t: &Table, k: i64) -> bool {
        match t.find(hash_int(k, SEED), |i| t.key_int(i) == k) {
            Some(i) => {
                t.erase(i);
                true
            }
            None => false,
        }
    }

    fn check(t: &Table, oracle: &HashMap<i64, i64>) {
        for (k, v) in oracle {
            assert_eq!(get(t, *k), Some(*v), "key {k} at cap {}", t.cap);
        }
        let mut n = 0;
        let mut i = 0;
        while let Some(j) = t.next_full(i) {
            n += 1;
            i = j + 1;
        }
        assert_eq!(n, oracle.len());
    }

    fn rehash<'a>(t: &Table<'a>, cap: usize) -> Table<'a> {
        let jm = map(16); // journal fields of a scratch map
        let (nt, placed) = t.rehash(cap, |nt, i| hash_int(nt.key_int(i), SEED), &mut (), &Journal::new(&jm.map));
        let mut n = 0;
        let mut i = 0;
        while let Some(j) = nt.next_full(i) {
            n += 1;
            i = j + 1;
        }
        assert_eq!(placed, n);
        nt
    }

    #[test]
    fn grow_shrink_compact_keep_every_entry() {
        let o = map(100_000);
        let mut t = Table::current(&o.map, &o.layout).unwrap();
        assert_eq!(t.cap, 16);
        let mut oracle = HashMap::new();
        let mut k = 0i64;
        // Grow in place, doubling whenever the load would pass 7/8.
        while t.cap < 1 << 15 {
            if oracle.len() + 1 > layout::load_limit(t.cap as u32) as usize {
                t = rehash(&t, t.cap * 2);
                check(&t, &oracle);
            }
            insert(&t, k * 7919, k);
            oracle.insert(k * 7919, k);
            k += 1;
        }
        check(&t, &oracle);
        // Remove most entries (tombstones everywhere), compact in place.
        for j in 0..k {
            if j % 5 != 0 {
                assert!(remove(&t, j * 7919));
                oracle.remove(&(j * 7919));
            }
        }
        check(&t, &oracle);
        t = rehash(&t, t.cap);
        check(&t, &oracle);
        for i in 0..t.cap {
            assert_ne!(t.ctrl(i), Ctrl::DELETED, "compaction leaves no tombstone");
        }
        // Shrink in place by several halvings at once, then once more by one.
        let target = (oracle.len() * 2).next_power_of_two().max(16);
        t = rehash(&t, target);
        check(&t, &oracle);
        while oracle.len() > 5 {
            let key = *oracle.keys().next().unwrap();
            remove(&t, key);
            oracle.remove(&key);
        }
        t = rehash(&t, 16);
        check(&t, &oracle);
        // Re-grow after shrink.
        for j in 0..9 {
            insert(&t, -j - 1, j);
            oracle.insert(-j - 1, j);
        }
        check(&t, &oracle);
        t = rehash(&t, 64);
        check(&t, &oracle);
    }

    /// A side array that must follow its entries: shadow[i] = key of slot i.
    struct Shadow(Vec<i64>);
    impl Relocate for Shadow {
        fn moved(&mut self, from: usize, to: usize) {
            self.0[to] = self.0[from];
        }
        fn swapped(&mut self, a: usize, b: usize) {
            self.0.swap(a, b);
        }
        fn dropped(&mut self, _: usize) {
            panic!("no entry is dropped from a sound table");
        }
    }

    #[test]
    fn rehash_reports_every_move() {
        let o = map(10_000);
        let mut t = Table::current(&o.map, &o.layout).unwrap();
        let mut sh = Shadow(vec![0; o.layout.max_cap as usize]);
        let sync = |t: &Table, sh: &mut Shadow| {
            let mut i = 0;
            while let Some(j) = t.next_full(i) {
                sh.0[j] = t.key_int(j);
                i = j + 1;
            }
        };
        let verify = |t: &Table, sh: &Shadow| {
            let mut i = 0;
            let mut n = 0;
            while let Some(j) = t.next_full(i) {
                assert_eq!(sh.0[j], t.key_int(j), "side array follows slot {j}");
                i = j + 1;
                n += 1;
            }
            n
        };
        for k in 0..1500i64 {
            if k + 1 > layout::load_limit(t.cap as u32) as i64 {
                sync(&t, &mut sh);
                t = t.rehash(t.cap * 2, |nt, i| hash_int(nt.key_int(i), SEED), &mut sh, &Journal::new(&o.map)).0;
                verify(&t, &sh);
            }
            insert(&t, k * 31 + 7, k);
        }
        for k in 0..1500i64 {
            if k % 3 != 0 {
                remove(&t, k * 31 + 7);
            }
        }
        sync(&t, &mut sh);
        t = t.rehash(t.cap, |nt, i| hash_int(nt.key_int(i), SEED), &mut sh, &Journal::new(&o.map)).0;
        assert_eq!(verify(&t, &sh), 500);
        t = t.rehash(1024, |nt, i| hash_int(nt.key_int(i), SEED), &mut sh, &Journal::new(&o.map)).0;
        assert_eq!(verify(&t, &sh), 500);
    }

    /// Payloads in a shadow array; "crashes" (panics) at its `crash_at`-th payload store.
    struct Crashy {
        pay: Vec<u32>,
        stores: u32,
        crash_at: u32,
        swaps: u32,
    }

    impl Relocate for Crashy {
        fn moved(&mut self, _: usize, _: usize) {}
        fn swapped(&mut self, _: usize, _: usize) {
            self.swaps += 1;
        }
        fn dropped(&mut self, _: usize) {
            panic!("no entry is dropped from a sound table");
        }
        fn payload(&self, i: usize) -> u32 {
            self.pay[i]
        }
        fn set_payload(&mut self, i: usize, v: u32) {
            self.stores += 1;
            if self.stores == self.crash_at {
                std::panic::panic_any("crash");
            }
            self.pay[i] = v;
        }
    }

    #[test]
    fn a_rehash_killed_at_any_step_is_finished_by_resume() {
        let pay_of = |k: i64| (k as u32).wrapping_mul(2654435761) | 1;
        let mut swaps_seen = false; // a compaction with wrapped-around keys swaps
        for (n, from, to) in [(112usize, 128usize, 256usize), (100, 256, 128), (112, 128, 128)] {
            // A third of the keys share the last home group of both tables: they wrap
            // around into group 0, and placing them takes swaps with pending entries.
            let last = |h: u64, cap: usize| (h as usize & (cap - 1)) / 8 == cap / 8 - 1;
            let mut keys: Vec<i64> = (0..).map(|k: i64| k * 7919).filter(|&k| {
                let h = hash_int(k, SEED);
                last(h, from) && last(h, to)
            }).take(n / 3).collect();
            keys.extend((1..).map(|k: i64| -k * 104729).take(n - keys.len()));
            let mut crash_at = 1;
            loop {
                let o = map(1000);
                let t = Table::with_cap(&o.map, &o.layout, from);
                for g in 0..from.max(to) / 8 {
                    t.store_group(g, u64::MAX); // all EMPTY
                }
                let mut c = Crashy { pay: vec![0; o.layout.max_cap as usize], stores: 0, crash_at: 0, swaps: 0 };
                for (v, &key) in keys.iter().enumerate() {
                    insert(&t, key, v as i64);
                    let i = t.find(hash_int(key, SEED), |i| t.key_int(i) == key).unwrap();
                    c.pay[i] = pay_of(key);
                }
                for &key in keys.iter().step_by(5) {
                    remove(&t, key); // some tombstones
                }
                c.crash_at = crash_at;
                let j = Journal::new(&o.map);
                let hash = |nt: &Table, i: usize| hash_int(nt.key_int(i), SEED);
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| t.rehash(to, hash, &mut c, &j)));
                let nt = match r {
                    Ok((nt, _)) => nt,
                    Err(_) => {
                        assert!(j.pending(), "a rehash stopped half-way is in the journal");
                        c.crash_at = 0;
                        t.resume(hash, &mut c, &j)
                    }
                };
                j.done();
                swaps_seen |= c.swaps > 0;
                let mut live = 0;
                for (v, &key) in keys.iter().enumerate() {
                    let found = nt.find(hash_int(key, SEED), |i| nt.key_int(i) == key);
                    if v % 5 == 0 {
                        assert!(found.is_none(), "removed key {key} stays removed (crash at {crash_at})");
                        continue;
                    }
                    let i = found.unwrap_or_else(|| panic!("key {key} lost ({from}->{to}, crash at {crash_at})"));
                    assert_eq!(nt.val_int(i), v as i64, "value of {key}");
                    assert_eq!(c.pay[i], pay_of(key), "payload of {key} ({from}->{to}, crash at {crash_at})");
                    live += 1;
                }
                let (mut full, mut i) = (0, 0);
                while let Some(x) = nt.next_full(i) {
                    full += 1;
                    i = x + 1;
                }
                assert_eq!(full, live, "no duplicate or stray entry (crash at {crash_at})");
                if r_is_ok(c.stores, crash_at) {
                    break;
                }
                crash_at += 1;
            }
        }
        assert!(swaps_seen, "the keys force swaps");
    }

    /// The run did not reach its crash point: every crash point has been tried.
    fn r_is_ok(stores: u32, crash_at: u32) -> bool {
        stores < crash_at
    }

    #[test]
    fn prev_full_matches_a_scan() {
        let o = map(1000);
        let t = Table::current(&o.map, &o.layout).unwrap();
        let t = t.rehash(128, |nt, i| hash_int(nt.key_int(i), SEED), &mut (), &Journal::new(&o.map)).0;
        for k in 0..60 {
            insert(&t, k * 13, k);
        }
        for before in 0..=130 {
            let want = (0..before.min(t.cap)).rev().find(|&i| t.ctrl(i).is_full());
            assert_eq!(t.prev_full(before), want, "before {before}");
        }
    }

    #[test]
    fn tombstones_only_where_needed() {
        let o = map(1000);
        let t = Table::current(&o.map, &o.layout).unwrap();
        insert(&t, 1, 1);
        let i = t.find(hash_int(1, SEED), |i| t.key_int(i) == 1).unwrap();
        // The group still has EMPTY bytes: deletion leaves no tombstone.
        assert!(!t.erase(i));
        assert_eq!(t.ctrl(i), Ctrl::EMPTY);
        // Fill a whole group by hand: deletion must leave a tombstone.
        for s in 0..8 {
            t.set_key_word(s, 100 + s as u64);
            t.set_ctrl(s, Ctrl(0x11));
        }
        assert!(t.erase(3));
        assert_eq!(t.ctrl(3), Ctrl::DELETED);
    }

    #[test]
    fn probes_are_bounded_on_garbage() {
        let o = map(1000);
        let t = Table::current(&o.map, &o.layout).unwrap();
        // Every control byte full with the same h2: no EMPTY anywhere.
        for g in 0..t.groups() {
            t.store_group(g, 0x2A2A_2A2A_2A2A_2A2A);
        }
        let mut calls = 0;
        assert_eq!(t.find(0x2A << 57, |_| { calls += 1; false }), None);
        assert_eq!(calls, 16);
        assert_eq!(t.probe(0, |_| false), Probe::NoRoom);
        assert_eq!(t.find_insert_slot(0), None);
    }
}
