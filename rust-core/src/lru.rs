//! The LRU recency list (clock / second chance) over per-slot arrays in the mapping.
//!
//! An LRU map (max_size > 0) keeps every live entry in one doubly linked list threaded
//! through two u32 arrays indexed by slot: `prev[i]` is the next *more* recent entry
//! (toward the head), `next[i]` the next *less* recent one (toward the tail); the head
//! (most recent) and tail (least recent) live in the header's LRU line, and [`NIL`]
//! ends the list. A third array holds one "accessed" (clock) byte per slot.
//!
//! - `get` marks an entry accessed with one relaxed byte store and no lock at all
//!   ([`Lru::mark`]), so LRU lookups stay optimistic. The byte is only a hint: a mark
//!   that races with a writer moving entries may be lost or land on a neighbour.
//! - Writes that hit an entry promote it to the head ([`Lru::promote`]), except that a
//!   percentage `lru_skip` of promotions is skipped ([`Skipper`]: decisions 6); the
//!   tail is never skipped and promoting the head is a no-op.
//! - An insert into a full map evicts one entry ([`Lru::victim`]): from the tail, an
//!   entry whose byte is set gets a second chance (byte cleared, moved to the head); the
//!   first one without it is the victim.
//! - The table's in-place rehash moves entries between slots; it reports every move
//!   ([`crate::table::Relocate`]) and the list follows ([`Lru::moved`], [`Lru::swapped`]),
//!   so the order and the clock bytes survive resizes and compactions.
//!
//! Everything but `mark` is done by the write-lock holder (Relaxed atomics: the lock
//! orders them). Indices read from the arrays are bounds-checked and every walk is
//! bounded, so a damaged list cannot make the engine fault or loop; after a dead
//! writer is recovered, [`Lru::check`] / [`Lru::rebuild`] restore a consistent list.

use crate::backing::Mapping;
use crate::layout::{off, Layout};
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering::Relaxed};

/// "No slot": the end of the list (and an empty list's head and tail).
pub const NIL: u32 = u32::MAX;

/// The recency list of an LRU map.
#[derive(Clone, Copy)]
pub struct Lru<'a> {
    prev: &'a [AtomicU32],
    next: &'a [AtomicU32],
    acc: &'a [AtomicU8],
    head: &'a AtomicU32,
    tail: &'a AtomicU32,
}

// All loads and stores below are Relaxed: the list is written only by the write-lock
// holder, which the lock orders; the accessed bytes are hints (see the module docs).
impl<'a> Lru<'a> {
    /// The list of a map with layout `l`; None when the map has no LRU.
    #[inline]
    pub fn new(m: &'a Mapping, l: &Layout) -> Option<Lru<'a>> {
        if !l.has_lru() {
            return None;
        }
        let n = l.max_cap as usize;
        debug_assert!(l.lru_acc_off() + n <= m.len());
        // SAFETY: the validated layout puts two arrays of max_cap u32s and one of max_cap
        // bytes at these page-aligned offsets inside the mapping, which outlives 'a; the
        // memory is only accessed atomically.
        unsafe {
            let b = m.base();
            Some(Lru {
                prev: std::slice::from_raw_parts(b.add(l.lru_prev_off()) as *const AtomicU32, n),
                next: std::slice::from_raw_parts(b.add(l.lru_next_off()) as *const AtomicU32, n),
                acc: std::slice::from_raw_parts(b.add(l.lru_acc_off()) as *const AtomicU8, n),
                head: m.u32(off::LRU_HEAD),
                tail: m.u32(off::LRU_TAIL),
            })
        }
    }

    #[inline]
    fn ld(a: &[AtomicU32], i: u32) -> u32 {
        a.get(i as usize).map_or(NIL, |x| x.load(Relaxed))
    }
    #[inline]
    fn st(a: &[AtomicU32], i: u32, v: u32) {
        if let Some(x) = a.get(i as usize) {
            x.store(v, Relaxed);
        }
    }

    /// Most recent entry's slot, None when empty.
    #[inline]
    pub fn head(&self) -> Option<usize> {
        let h = self.head.load(Relaxed);
        (h != NIL).then_some(h as usize)
    }
    /// Least recent entry's slot, None when empty.
    #[inline]
    pub fn tail(&self) -> Option<usize> {
        let t = self.tail.load(Relaxed);
        (t != NIL).then_some(t as usize)
    }
    /// The entry after slot `i` toward the tail (less recent).
    #[inline]
    pub fn older(&self, i: usize) -> Option<usize> {
        let n = Self::ld(self.next, i as u32);
        (n != NIL).then_some(n as usize)
    }
    /// The entry before slot `i` toward the head (more recent).
    #[inline]
    pub fn newer(&self, i: usize) -> Option<usize> {
        let p = Self::ld(self.prev, i as u32);
        (p != NIL).then_some(p as usize)
    }

    /// Marks slot `i` accessed (any thread, no lock; a store only when the byte is not
    /// already set, so readers of hot entries do not keep writing the line).
    #[inline(always)]
    pub fn mark(&self, i: usize) {
        if let Some(a) = self.acc.get(i) {
            if a.load(Relaxed) == 0 {
                a.store(1, Relaxed);
            }
        }
    }
    /// Asks the CPU to load slot `i`'s accessed byte (a lookup that will mark it).
    #[inline(always)]
    pub fn prefetch_acc(&self, i: usize) {
        crate::ttl::prefetch(self.acc.as_ptr().wrapping_add(i.min(self.acc.len().saturating_sub(1))) as *const u8);
    }

    /// Is slot `i` marked accessed?
    #[inline]
    pub fn accessed(&self, i: usize) -> bool {
        self.acc.get(i).is_some_and(|a| a.load(Relaxed) != 0)
    }
    #[inline]
    fn set_acc(&self, i: usize, v: u8) {
        if let Some(a) = self.acc.get(i) {
            a.store(v, Relaxed);
        }
    }

    /// Empties the list.
    pub fn clear(&self) {
        self.head.store(NIL, Relaxed);
        self.tail.store(NIL, Relaxed);
    }

    /// Links slot `i` (not in the list) at the head, its accessed byte cleared.
    #[inline]
    pub fn push_head(&self, i: usize) {
        let i = i as u32;
        let h = self.head.load(Relaxed);
        Self::st(self.prev, i, NIL);
        Self::st(self.next, i, h);
        if h != NIL {
            Self::st(self.prev, h, i);
        } else {
            self.tail.store(i, Relaxed);
        }
        self.head.store(i, Relaxed);
        self.set_acc(i as usize, 0);
    }

    /// Links slot `i` (not in the list) at the tail (used by rebuild).
    fn push_tail(&self, i: usize) {
        let i = i as u32;
        let t = self.tail.load(Relaxed);
        Self::st(self.next, i, NIL);
        Self::st(self.prev, i, t);
        if t != NIL {
            Self::st(self.next, t, i);
        } else {
            self.head.store(i, Relaxed);
        }
        self.tail.store(i, Relaxed);
        self.set_acc(i as usize, 0);
    }

    /// Takes slot `i` out of the list.
    #[inline]
    pub fn unlink(&self, i: usize) {
        let i = i as u32;
        let (p, n) = (Self::ld(self.prev, i), Self::ld(self.next, i));
        if p != NIL {
            Self::st(self.next, p, n);
        } else if self.head.load(Relaxed) == i {
            self.head.store(n, Relaxed);
        }
        if n != NIL {
            Self::st(self.prev, n, p);
        } else if self.tail.load(Relaxed) == i {
            self.tail.store(p, Relaxed);
        }
    }

    /// Moves slot `i` to the head and clears its accessed byte.
    #[inline]
    pub fn to_head(&self, i: usize) {
        if self.head.load(Relaxed) == i as u32 {
            self.set_acc(i, 0);
            return;
        }
        self.unlink(i);
        self.push_head(i);
    }

    /// A write hit slot `i`: move it to the head, unless this promotion is one of the
    /// `skip_pct` percent skipped (never for the tail). Promoting the head does nothing.
    /// Returns whether the entry moved.
    #[inline]
    pub fn promote(&self, i: usize, skip_pct: u32, sk: &mut Skipper) -> bool {
        let i32_ = i as u32;
        if self.head.load(Relaxed) == i32_ {
            return false;
        }
        if self.tail.load(Relaxed) != i32_ && sk.skip(skip_pct) {
            return false;
        }
        self.unlink(i);
        self.push_head(i);
        true
    }

    /// The entry to evict, by second chance: from the tail, entries marked accessed are
    /// unmarked and moved to the head; the first unmarked one is returned (it stays
    /// linked: the caller removes it). None when the list is empty. Bounded: after one
    /// pass every byte is clear, and a damaged list stops after `2 * len + 2` steps.
    pub fn victim(&self) -> Option<usize> {
        let mut budget = 2 * self.prev.len() + 2;
        loop {
            let t = self.tail()?;
            if !self.accessed(t) || budget == 0 {
                return Some(t);
            }
            budget -= 1;
            self.to_head(t);
        }
    }

    /// The entry of slot `from` moved to the free slot `to` (rehash): carry its links
    /// and accessed byte and repoint its neighbours (or head / tail) at `to`.
    pub fn moved(&self, from: usize, to: usize) {
        let (f, t) = (from as u32, to as u32);
        let (p, n) = (Self::ld(self.prev, f), Self::ld(self.next, f));
        Self::st(self.prev, t, p);
        Self::st(self.next, t, n);
        self.set_acc(to, self.accessed(from) as u8);
        self.relink(t);
    }

    /// The entries of slots `a` and `b` traded places (rehash). Handles neighbours
    /// (a and b adjacent in the list) by relabelling a <-> b in both nodes' links first.
    pub fn swapped(&self, a: usize, b: usize) {
        let (a, b) = (a as u32, b as u32);
        let r = |x: u32| if x == a { b } else if x == b { a } else { x };
        let (pa, na) = (Self::ld(self.prev, a), Self::ld(self.next, a));
        let (pb, nb) = (Self::ld(self.prev, b), Self::ld(self.next, b));
        // The node that was at a is now at b and vice versa.
        Self::st(self.prev, b, r(pa));
        Self::st(self.next, b, r(na));
        Self::st(self.prev, a, r(pb));
        Self::st(self.next, a, r(nb));
        let (xa, xb) = (self.accessed(a as usize) as u8, self.accessed(b as usize) as u8);
        self.set_acc(a as usize, xb);
        self.set_acc(b as usize, xa);
        // Head and tail may name either slot: relabel them before repointing.
        let (h, tl) = (self.head.load(Relaxed), self.tail.load(Relaxed));
        self.head.store(r(h), Relaxed);
        self.tail.store(r(tl), Relaxed);
        self.relink(a);
        self.relink(b);
    }

    /// Makes the neighbours of the node at slot `i` (per its own links) point at `i`.
    fn relink(&self, i: u32) {
        let (p, n) = (Self::ld(self.prev, i), Self::ld(self.next, i));
        if p != NIL {
            Self::st(self.next, p, i);
        } else {
            self.head.store(i, Relaxed);
        }
        if n != NIL {
            Self::st(self.prev, n, i);
        } else {
            self.tail.store(i, Relaxed);
        }
    }

    /// Is the list consistent with a table of `cap` slots holding `size` entries, where
    /// `full(i)` tells whether slot i holds one? (Walks at most size + 1 nodes.)
    pub fn check(&self, cap: usize, size: usize, full: impl Fn(usize) -> bool) -> bool {
        let mut prev = NIL;
        let mut cur = self.head.load(Relaxed);
        let mut n = 0;
        while cur != NIL {
            if n >= size || cur as usize >= cap || !full(cur as usize) || Self::ld(self.prev, cur) != prev {
                return false;
            }
            n += 1;
            prev = cur;
            cur = Self::ld(self.next, cur);
        }
        n == size && self.tail.load(Relaxed) == prev
    }

    /// Rebuilds the list from the full slots, in slot order (the order is lost; used
    /// only to repair a list a dead writer left half-updated).
    pub fn rebuild(&self, full_slots: impl Iterator<Item = usize>) {
        self.clear();
        for i in full_slots {
            self.push_tail(i);
        }
    }
}

/// Decides which promotions `lru_skip` skips: a per-handle pseudo-random sequence
/// (SplitMix64), so that over many promotions the skipped fraction is the percentage,
/// for every value 0..=99 (decisions 6), with no pattern an access sequence could
/// alias with. 0 and values of 100 or more skip nothing.
#[derive(Clone, Debug)]
pub struct Skipper {
    s: u64,
}

impl Skipper {
    /// A sequence from `seed`.
    pub fn new(seed: u64) -> Skipper {
        Skipper { s: seed }
    }

    /// Should this promotion be skipped, at `pct` percent?
    #[inline]
    pub fn skip(&mut self, pct: u32) -> bool {
        if pct == 0 || pct >= 100 {
            return false;
        }
        self.s = self.s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // A uniform number in 0..100 from the top 32 bits, without a division.
        (((z >> 32) * 100) >> 32) < pct as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Params;
    use crate::map::format::{anon, TestMap};
    use crate::variant::Variant;

    fn lru_map(max: u64) -> TestMap {
        anon(Params { variant: Variant::II, max_entries: max, max_size: max, ttl: 0, lru_skip: 0, arena_cap: 0 })
    }

    /// Slots from head to tail, checking the back links on the way.
    fn order(l: &Lru) -> Vec<usize> {
        let mut v = Vec::new();
        let mut prev = None;
        let mut cur = l.head();
        while let Some(i) = cur {
            assert_eq!(l.newer(i), prev, "back link of {i}");
            v.push(i);
            assert!(v.len() < 10_000, "cycle");
            prev = Some(i);
            cur = l.older(i);
        }
        assert_eq!(l.tail(), prev, "tail");
        v
    }

    #[test]
    fn new_map_has_an_empty_list() {
        let o = lru_map(100);
        let l = Lru::new(&o.map, &o.layout).unwrap();
        assert_eq!((l.head(), l.tail()), (None, None));
        assert_eq!(l.victim(), None);
        let plain = anon(Params { variant: Variant::II, max_entries: 100, max_size: 0, ttl: 0, lru_skip: 0, arena_cap: 0 });
        assert!(Lru::new(&plain.map, &plain.layout).is_none());
        assert_eq!(plain.layout.lru_off, 0);
    }

    #[test]
    fn push_unlink_promote() {
        let o = lru_map(100);
        let l = Lru::new(&o.map, &o.layout).unwrap();
        for i in [5, 9, 2, 7] {
            l.push_head(i);
        }
        assert_eq!(order(&l), [7, 2, 9, 5]);
        l.to_head(9);
        assert_eq!(order(&l), [9, 7, 2, 5]);
        l.to_head(5);
        assert_eq!(order(&l), [5, 9, 7, 2]);
        l.to_head(5);
        assert_eq!(order(&l), [5, 9, 7, 2]);
        l.unlink(7);
        assert_eq!(order(&l), [5, 9, 2]);
        l.unlink(5);
        assert_eq!(order(&l), [9, 2]);
        l.unlink(2);
        assert_eq!(order(&l), [9]);
        l.unlink(9);
        assert_eq!(order(&l), Vec::<usize>::new());
        l.push_head(3);
        assert_eq!(order(&l), [3]);
        let mut sk = Skipper::new(1);
        l.push_head(4);
        assert!(!l.promote(4, 0, &mut sk), "the head does not move");
        assert!(l.promote(3, 99, &mut sk), "the tail is never skipped");
        assert_eq!(order(&l), [3, 4]);
    }

    #[test]
    fn second_chance() {
        let o = lru_map(100);
        let l = Lru::new(&o.map, &o.layout).unwrap();
        for i in 0..5 {
            l.push_head(i);
        }
        // order 4 3 2 1 0; mark 0 and 1 (the two oldest)
        l.mark(0);
        l.mark(1);
        l.mark(3);
        assert_eq!(l.victim(), Some(2), "0 and 1 get a second chance");
        assert_eq!(order(&l), [1, 0, 4, 3, 2]);
        assert!(!l.accessed(0) && !l.accessed(1) && l.accessed(3));
        l.unlink(2);
        assert_eq!(l.victim(), Some(4), "3 is marked: second chance, then 4");
        assert_eq!(order(&l), [3, 1, 0, 4]);
        // every entry marked: one full pass, then the original tail
        let o = lru_map(100);
        let l = Lru::new(&o.map, &o.layout).unwrap();
        for i in 0..4 {
            l.push_head(i);
            l.mark(i);
        }
        assert_eq!(l.victim(), Some(0));
        assert_eq!(order(&l), [3, 2, 1, 0], "a full rotation, every byte cleared");
        assert!((0..4).all(|i| !l.accessed(i)));
        // a single marked entry
        let o = lru_map(100);
        let l = Lru::new(&o.map, &o.layout).unwrap();
        l.push_head(6);
        l.mark(6);
        assert_eq!(l.victim(), Some(6));
        assert!(!l.accessed(6));
    }

    #[test]
    fn moves_keep_order_and_bits() {
        let o = lru_map(100);
        let l = Lru::new(&o.map, &o.layout).unwrap();
        for i in 0..6 {
            l.push_head(i);
        }
        l.mark(2);
        assert_eq!(order(&l), [5, 4, 3, 2, 1, 0]);
        l.moved(2, 20);
        assert_eq!(order(&l), [5, 4, 3, 20, 1, 0]);
        assert!(l.accessed(20));
        l.moved(5, 50); // the head
        l.moved(0, 40); // the tail
        assert_eq!(order(&l), [50, 4, 3, 20, 1, 40]);
        l.swapped(4, 3); // adjacent, a before b
        assert_eq!(order(&l), [50, 3, 4, 20, 1, 40]);
        l.swapped(20, 4); // adjacent, b before a
        assert_eq!(order(&l), [50, 3, 20, 4, 1, 40]);
        assert!(l.accessed(4) && !l.accessed(20), "bits travel with the entries");
        l.swapped(50, 40); // head and tail
        assert_eq!(order(&l), [40, 3, 20, 4, 1, 50]);
        l.swapped(3, 1); // apart
        assert_eq!(order(&l), [40, 1, 20, 4, 3, 50]);
        // a two-node list, swapped both ways
        let o = lru_map(100);
        let l = Lru::new(&o.map, &o.layout).unwrap();
        l.push_head(1);
        l.push_head(2);
        l.swapped(1, 2);
        assert_eq!(order(&l), [1, 2]);
        l.swapped(2, 1);
        assert_eq!(order(&l), [2, 1]);
    }

    #[test]
    fn check_and_rebuild() {
        let o = lru_map(100);
        let l = Lru::new(&o.map, &o.layout).unwrap();
        let full = [1usize, 4, 6];
        for &i in &full {
            l.push_head(i);
        }
        let is_full = |i: usize| full.contains(&i);
        assert!(l.check(16, 3, is_full));
        assert!(!l.check(16, 4, is_full), "size mismatch");
        assert!(!l.check(4, 3, is_full), "slot beyond the capacity");
        Lru::st(l.prev, 4, 9); // a broken back link
        assert!(!l.check(16, 3, is_full));
        Lru::st(l.next, 6, 6); // a cycle
        assert!(!l.check(16, 3, is_full));
        l.rebuild(full.iter().copied());
        assert!(l.check(16, 3, is_full));
        assert_eq!(order(&l), [1, 4, 6]);
    }

    #[test]
    fn skip_fractions() {
        for pct in [0u32, 1, 10, 25, 50, 75, 90, 99, 100, 1000] {
            let mut sk = Skipper::new(0x1234 + pct as u64);
            let n = 200_000;
            let skipped = (0..n).filter(|_| sk.skip(pct)).count();
            let want = if pct >= 100 { 0.0 } else { pct as f64 / 100.0 };
            let got = skipped as f64 / n as f64;
            assert!((got - want).abs() < 0.005, "pct {pct}: skipped {got}");
        }
    }
}
