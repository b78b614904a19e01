//! Crash repair and the structure check (`verify`).
//!
//! A writer can die anywhere in its critical section. The lock (lock.rs) hands the write
//! lock to the next writer with `recovered()` set; that writer calls [`Shared::repair`]
//! before doing its own work, and the map is then exactly consistent again:
//!
//! | what the dead writer was doing        | what it can leave                       | repair                         |
//! |---------------------------------------|-----------------------------------------|--------------------------------|
//! | an in-place rehash (grow/shrink/compact) | a half-converted or half-placed table, a half-done move or swap | finish it from the journal (table.rs `Journal`) |
//! | insert / remove / update              | control byte written, `size`/`tombstones` not yet | recount from the control bytes |
//! | an arena allocation or free           | a block off every list but referenced by no one, a half-linked list | rebuild the lists from the strings in use |
//! | an LRU relink                         | a list that skips or repeats entries    | check, and rebuild in slot order if broken |
//! | a counter update (incr, under the read lock) | nothing: one atomic RMW on the value word | none |
//!
//! What a write had acknowledged (its call returned) is in the table: every write makes
//! its entry visible with a single store (a control byte, a value word, a string
//! reference), after the data it points to. So a crash loses at most the write in
//! progress, and the repair never drops a committed entry; an entry is only dropped when
//! its string reference is impossible (damage, not a crash).
//!
//! [`Shared::verify`] walks the same structures read-only and reports every
//! inconsistency (tests, `hashmap-shared verify`).

use super::{Shared, Side};
use crate::ctrl::Ctrl;
use crate::layout::{self, off};
use crate::strref::StrRef;
use crate::table::{Journal, Table};
use std::sync::atomic::Ordering::Relaxed;

impl Shared {
    /// Restores every invariant after a writer died holding the lock (write-lock holder
    /// only; see the module docs).
    pub(super) fn repair(&self) {
        let j = Journal::new(&self.map);
        let Some(mut t) = self.current() else { return };
        if j.pending() {
            let target = j.target();
            if target.is_power_of_two() && (layout::MIN_CAP..=self.lay.max_cap).contains(&target) {
                let mut side = Side { lru: self.lru_view(), ttl: self.ttl_view() };
                t = t.resume(|nt, i| self.hash_slot(nt, i), &mut side, &j);
                // Relaxed: under the write lock (see h32).
                self.h32(off::CAP).store(t.cap as u32, Relaxed);
                self.bump_generation();
            }
            j.done();
        }
        if !self.kk.is_int() || !self.vk.is_int() {
            let live = self.arena_refs(&t);
            let refs: Vec<(u32, usize)> = live.iter().map(|&(_, o, n)| (o, n)).collect();
            for b in self.arena().rebuild(&refs) {
                let slot = live[b].0;
                if t.ctrl(slot).is_full() {
                    t.erase(slot);
                }
            }
        }
        let (size, tombs) = count(&t);
        // Relaxed: under the write lock (see h32).
        self.h32(off::SIZE).store(size as u32, Relaxed);
        self.h32(off::TOMBS).store(tombs as u32, Relaxed);
        self.repair_lru();
    }

    /// (slot, offset, length) of every arena string the full slots reference.
    fn arena_refs(&self, t: &Table) -> Vec<(usize, u32, usize)> {
        let mut v = Vec::new();
        let mut i = 0;
        while let Some(j) = t.next_full(i) {
            for (is_str, w) in [(!self.kk.is_int(), t.key_word(j)), (!self.vk.is_int(), t.val_word(j))] {
                let r = StrRef(w);
                if is_str && !r.is_inline() {
                    v.push((j, r.offset(), r.len()));
                }
            }
            i = j + 1;
        }
        v
    }

    /// Walks the whole structure and describes every inconsistency found (empty when the
    /// map is sound): header geometry, counts against control bytes, every key findable
    /// where it is, string references against the arena, the arena's lists and counters,
    /// the LRU list, and an unfinished resize. Takes the read lock (read-only handles
    /// need none: a frozen map has no writers).
    pub(super) fn verify(&self) -> Vec<String> {
        let _g = self.read_lock();
        let mut p = Vec::new();
        let Some(t) = self.current() else {
            p.push(format!("capacity {} is not a power of two within 16..={}", self.h32(off::CAP).load(Relaxed), self.lay.max_cap));
            return p;
        };
        if Journal::new(&self.map).pending() {
            p.push("a resize was interrupted (the next writer finishes it)".into());
        }
        let (size, tombs) = count(&t);
        // Relaxed: under the read lock, writers excluded.
        let (hs, ht) = (self.h32(off::SIZE).load(Relaxed) as usize, self.h32(off::TOMBS).load(Relaxed) as usize);
        if hs != size {
            p.push(format!("size is {hs}, the table holds {size} entries"));
        }
        if ht != tombs {
            p.push(format!("tombstones is {ht}, the table holds {tombs}"));
        }
        if size > layout::load_limit(t.cap as u32) as usize {
            p.push(format!("{size} entries exceed the load limit of capacity {}", t.cap));
        }
        let mut i = 0;
        while let Some(j) = t.next_full(i) {
            let h = self.hash_slot(&t, j);
            if Ctrl::full(h) != t.ctrl(j) {
                p.push(format!("slot {j}: control byte does not match its key's hash"));
            } else if t.find(h, |x| x == j).is_none() {
                p.push(format!("slot {j}: its key cannot be found by a lookup (probe chain broken)"));
            }
            i = j + 1;
        }
        if !self.kk.is_int() || !self.vk.is_int() {
            let a = self.arena();
            let live = self.arena_refs(&t);
            let mut spans: Vec<(u64, u64, usize)> = Vec::with_capacity(live.len());
            let mut bytes = 0u64;
            for &(slot, o, n) in &live {
                let k = crate::arena::order_for(n);
                if !a.in_bounds(o, 1usize << k) || o as u64 % (1u64 << k) != 0 {
                    p.push(format!("slot {slot}: string at {o} ({n} bytes) is outside the arena or misaligned"));
                    continue;
                }
                spans.push((o as u64, o as u64 + (1u64 << k), slot));
                bytes += 1u64 << k;
            }
            spans.sort_unstable();
            for w in spans.windows(2) {
                if w[1].0 < w[0].1 {
                    p.push(format!("slots {} and {}: their strings overlap", w[0].2, w[1].2));
                }
            }
            p.extend(a.check_lists(bytes));
        }
        if let Some(l) = self.lru_view() {
            if !l.check(t.cap, size, |x| t.ctrl(x).is_full()) {
                p.push("LRU list does not link every entry exactly once".into());
            }
        }
        p
    }
}

/// (full, deleted) control bytes of the table.
fn count(t: &Table) -> (usize, usize) {
    let (mut full, mut tombs) = (0, 0);
    for i in 0..t.cap {
        let c = t.ctrl(i);
        if c.is_full() {
            full += 1;
        } else if c == Ctrl::DELETED {
            tombs += 1;
        }
    }
    (full, tombs)
}
