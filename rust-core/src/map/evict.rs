//! Eviction: how an LRU map makes room (api.md 7.3, decisions 17).
//!
//! An LRU map runs out of room in two ways, and both evict from the LRU tail by second
//! chance ([`crate::lru::Lru::victim`]):
//! - **entries**: an insert that finds `max_size` entries evicts one first
//!   ([`Shared::evict_one`]);
//! - **string space**: a write whose strings find no arena block
//!   ([`Shared::alloc_evicting`]) evicts until the blocks fit.
//!
//! Every eviction counts in `stat_evictions` (an expired victim in `stat_expired`).
//! Maps without LRU never evict: a write that finds no room fails and changes nothing.
//!
//! # Making string space: the promise and the bound
//!
//! The promise is that a write fails only when its strings could not fit even in an
//! empty map; the bound is that one call never walks the whole map. They meet like
//! this:
//!
//! 1. **Hopeless writes evict nothing.** Before evicting, the write checks that its
//!    blocks (plus, for an overwrite, the blocks of the entry it keeps) add up to no
//!    more than the arena: a string larger than that is refused at once, and a cache
//!    is never flushed for a value it could not hold anyway.
//! 2. **The larger block is allocated first.** Then, for an insert, the check above is
//!    exact: the buddy arena emptied of every other entry is back to its initial
//!    blocks (arena.rs), which hold two blocks of 2^a >= 2^b bytes exactly when
//!    2^a + 2^b <= usable, wherever the first one landed. So evicting until the
//!    blocks fit always ends in success, at the latest when the map is empty.
//! 3. **The walk is bounded by the size of the write.** One call evicts at most
//!    [`EVICT_MIN`] entries or, beyond that, entries worth [`EVICT_FACTOR`] times the
//!    bytes it needs (an entry counted as at least [`EVICT_CHARGE`] bytes, so entries
//!    whose strings are all inline cannot make the walk long either). Its cost is thus
//!    proportional to what it writes, never to the size of the map. In a cache whose
//!    values are of similar sizes one or two evictions free a block; the bound is only
//!    reached by a value much larger than the entries around it in a fragmented arena
//!    (where freeing a large block needs every small string inside it gone, and LRU
//!    order is not address order). Such a write fails like a write to a full plain map;
//!    the entries it evicted stay evicted, so the arena is less fragmented for the
//!    next try. The promise therefore holds exactly for maps of up to [`EVICT_MIN`]
//!    entries and for every write whose blocks are not much larger than its victims'.
//!
//! An overwrite keeps its entry (the old value stays readable until the new one is
//! published: crash order, repair.rs), so it can fail when the new value does not fit
//! beside the entry's own key and old value; the entry itself is never evicted.
//!
//! Crash safety: an eviction is a [`Shared::remove_at`] (unpublish, then free), and a
//! block allocated before a later eviction is referenced by nothing until the write
//! publishes it; a writer killed anywhere in between leaves unreferenced blocks and
//! possibly a half-relinked LRU list, which the next writer's repair reclaims and
//! rebuilds (repair.rs).

use super::Shared;
use crate::arena::{order_for, NONE};
use crate::layout::off;
use crate::lru::Lru;
use crate::strref::{StrRef, MAX_INLINE};
use crate::table::Table;
use std::sync::atomic::Ordering::Relaxed;

/// A call may always evict this many entries (see the module docs).
pub const EVICT_MIN: u32 = 32;
/// Beyond [`EVICT_MIN`], a call evicts entries worth at most this many times the bytes
/// it needs.
pub const EVICT_FACTOR: u64 = 8;
/// The least an eviction counts against that budget, whatever it freed.
pub const EVICT_CHARGE: u64 = 64;

/// What one eviction step did.
enum Step {
    /// Removed an entry whose strings freed this many arena bytes.
    Evicted(u64),
    /// Evicted nothing (the kept entry moved out of the tail, or a damaged list was
    /// rebuilt): the walk goes on.
    Moved,
    /// Nothing left that may be evicted.
    Empty,
}

/// Bytes of the arena block a string of `len` bytes takes (0 for inline strings).
#[inline]
pub(super) fn block_bytes(len: usize) -> u64 {
    if len <= MAX_INLINE {
        0
    } else {
        1u64 << order_for(len)
    }
}

impl Shared {
    /// Arena blocks for one write: one per nonzero entry of `lens` (string lengths
    /// beyond the inline size; 0 = no block), returned in the same positions (unused
    /// positions [`NONE`]). On an LRU map whose arena has no block for them, evicts
    /// from the LRU tail until they fit, within the bound of the module docs; `keep`
    /// is the slot an overwrite writes, never evicted. None when there is no room; no
    /// block is left allocated then (write-lock holder only).
    #[inline]
    pub(super) fn alloc_evicting(&self, t: &Table, lens: [usize; 2], keep: Option<usize>, now: u64) -> Option<[u32; 2]> {
        // The usual case first, inline: every block there at the first try (the write
        // path's hot loop; the walk below is cold).
        let a = self.arena();
        let mut got = [NONE; 2];
        for i in Self::alloc_order(lens) {
            if lens[i] == 0 {
                continue;
            }
            match a.alloc(lens[i]) {
                Some(o) => got[i] = o,
                None => return self.alloc_evicting_slow(t, lens, keep, now, got),
            }
        }
        Some(got)
    }

    /// The larger block first: what makes the empty-map check exact (module docs).
    #[inline(always)]
    fn alloc_order(lens: [usize; 2]) -> [usize; 2] {
        if lens[0] >= lens[1] {
            [0, 1]
        } else {
            [1, 0]
        }
    }

    /// [`Shared::alloc_evicting`] once a block was not there: the blocks in `got` are
    /// allocated already, the others are retried, evicting on an LRU map.
    #[cold]
    #[inline(never)]
    fn alloc_evicting_slow(&self, t: &Table, lens: [usize; 2], keep: Option<usize>, now: u64, mut got: [u32; 2]) -> Option<[u32; 2]> {
        let a = self.arena();
        let lru = self.lru_view();
        let mut walk: Option<Walk> = None;
        for i in Self::alloc_order(lens) {
            if lens[i] == 0 || got[i] != NONE {
                continue;
            }
            got[i] = loop {
                if let Some(o) = a.alloc(lens[i]) {
                    break o;
                }
                let more = match lru {
                    Some(l) => {
                        let w = walk.get_or_insert_with(|| Walk::new(self, t, lens, keep));
                        w.fits_empty && w.budget_left() && self.evict_step(l, t, keep, now, w)
                    }
                    None => false,
                };
                if !more {
                    for j in 0..2 {
                        if got[j] != NONE {
                            a.free(got[j], lens[j]);
                        }
                    }
                    return None;
                }
            };
        }
        Some(got)
    }

    /// One step of the walk: evicts the LRU victim unless it is `keep`; records what
    /// it cost in `w`. False when nothing is left to evict.
    fn evict_step(&self, l: Lru<'_>, t: &Table, keep: Option<usize>, now: u64, w: &mut Walk) -> bool {
        let step = match l.victim() {
            None => Step::Empty,
            Some(v) if v >= t.cap || !t.ctrl(v).is_full() => {
                // A damaged list (a dead writer's half-done relink): rebuild it.
                self.repair_lru();
                Step::Moved
            }
            Some(v) if Some(v) == keep => {
                if l.head() == Some(v) {
                    // The kept entry is the only one left.
                    Step::Empty
                } else {
                    l.to_head(v);
                    Step::Moved
                }
            }
            Some(v) => {
                let before = self.arena().used();
                self.evict_slot(t, v, now);
                Step::Evicted(before.saturating_sub(self.arena().used()))
            }
        };
        match step {
            Step::Empty => false,
            Step::Moved => {
                w.charge(0);
                true
            }
            Step::Evicted(freed) => {
                w.charge(freed);
                true
            }
        }
    }

    /// Evicts one entry by second chance (an LRU map at `max_size`).
    pub(super) fn evict_one(&self, t: &Table, now: u64) {
        let Some(l) = self.lru_view() else { return };
        let Some(v) = l.victim() else { return };
        if v >= t.cap || !t.ctrl(v).is_full() {
            // A damaged list (a dead writer's half-done relink): rebuild it; nothing is
            // evicted this time.
            self.repair_lru();
            return;
        }
        self.evict_slot(t, v, now);
    }

    /// Removes the victim at slot `v` and counts it: as expired if it was, else as an
    /// eviction.
    fn evict_slot(&self, t: &Table, v: usize, now: u64) {
        let expired = self.expired(v, now);
        self.remove_at(t, v);
        // Relaxed load/store under the write lock (see h32).
        let c = self.h64(if expired { off::EXPIRED } else { off::EVICTIONS });
        c.store(c.load(Relaxed) + 1, Relaxed);
    }
}

/// The state of one call's eviction walk: whether it may evict at all and how much of
/// its budget is spent.
struct Walk {
    /// Could the blocks fit in the arena emptied of every other entry?
    fits_empty: bool,
    /// Entries evicted (or steps that moved the list) so far.
    steps: u32,
    /// Bytes charged so far, and the most the walk may charge.
    charged: u64,
    limit: u64,
}

impl Walk {
    fn new(sh: &Shared, t: &Table, lens: [usize; 2], keep: Option<usize>) -> Walk {
        let need = block_bytes(lens[0]) + block_bytes(lens[1]);
        // The kept entry's blocks stay allocated during the write (module docs).
        let kept = keep.map_or(0, |i| {
            let key = if sh.kk.is_int() { 0 } else { ref_bytes(StrRef(t.key_word(i))) };
            let val = if sh.vk.is_int() { 0 } else { ref_bytes(StrRef(t.val_word(i))) };
            key + val
        });
        Walk {
            fits_empty: need + kept <= sh.arena().usable(),
            steps: 0,
            charged: 0,
            limit: need.saturating_mul(EVICT_FACTOR),
        }
    }

    fn budget_left(&self) -> bool {
        self.steps < EVICT_MIN || self.charged < self.limit
    }

    fn charge(&mut self, freed: u64) {
        self.steps += 1;
        self.charged = self.charged.saturating_add(freed.max(EVICT_CHARGE));
    }
}

/// Bytes of the arena block a stored string reference holds (0 for an inline one).
fn ref_bytes(r: StrRef) -> u64 {
    if r.is_inline() {
        0
    } else {
        1u64 << order_for(r.len())
    }
}
