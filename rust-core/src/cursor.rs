//! Cursors (api.md 6.7): independent, nestable iterators over a map or a shard set.
//!
//! A [`Cursor`] is plain per-handle state: which shard it is on, the table generation
//! it started in and the next slot to look at. Every step runs [`Map::scan`] (one
//! read lock per step, none on read-only handles) on the shard it sits on, so removals
//! during iteration are safe: a removed entry simply is not found, and no entry moves
//! unless the table is resized; a resize (another generation) restarts the cursor at
//! the first slot of that shard, as api.md 7.6 allows (entries may then be seen
//! twice).
//!
//! A cursor that has started on a shard and is not finished with it is *registered*
//! there ([`Map::cursor_enter`]): that handle's shrinks and compactions of the shard
//! are deferred, as for `each`, so the slot order the cursor walks stays put. It is
//! unregistered ([`Map::cursor_leave`], which runs a deferred shrink) when it moves to
//! the next shard, is exhausted, reset, seeks to another shard, or is dropped
//! ([`Cursor::release`]). Registration is per handle: the cursor always works through
//! the handle that made it (the Perl cursor object keeps a reference to its map).
//!
//! Once exhausted a cursor stays exhausted (entries added later are not returned)
//! until `reset` or a successful `seek`.

use crate::error::Result;
use crate::map::Map;
use crate::value::{In, Out};

/// Where a cursor is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Not started on `shard` yet (fresh, reset, or moved by a seek miss).
    Before,
    /// Walking `shard` (registered there): next slot `pos` of generation `gen`.
    On,
    /// Past the last entry of the last shard.
    Exhausted,
}

/// A cursor's position (see the module docs).
#[derive(Clone, Debug)]
#[cfg_attr(not(feature = "redis"), derive(Copy))]
pub struct Cursor {
    phase: Phase,
    shard: usize,
    pos: usize,
    gen: Option<u32>,
    /// Where a cursor on a map in Redis is (a cursor does not know its map's backend
    /// until it is used).
    #[cfg(feature = "redis")]
    pub(crate) remote: crate::remote::RemoteCursor,
}

impl Default for Cursor {
    fn default() -> Cursor {
        Cursor::new()
    }
}

impl Cursor {
    /// A cursor before the first entry of shard 0.
    pub fn new() -> Cursor {
        Cursor {
            phase: Phase::Before,
            shard: 0,
            pos: 0,
            gen: None,
            #[cfg(feature = "redis")]
            remote: crate::remote::RemoteCursor::default(),
        }
    }

    /// Has it run past the end (and stays there until reset or seek)?
    pub fn exhausted(&self) -> bool {
        self.phase == Phase::Exhausted
    }

    /// The next live entry, chaining the shards `maps` (a plain map is one shard) in
    /// order; None once exhausted.
    pub fn next<'a>(&mut self, maps: &'a mut [Map]) -> Option<(Out<'a>, Out<'a>)> {
        loop {
            match self.phase {
                Phase::Exhausted => return None,
                Phase::Before => {
                    maps.get_mut(self.shard)?.cursor_enter();
                    self.phase = Phase::On;
                    self.pos = 0;
                    self.gen = None;
                }
                Phase::On => {}
            }
            let shard = self.shard;
            let (gen, found) = maps[shard].scan(self.pos, self.gen);
            self.gen = Some(gen);
            if let Some(slot) = found {
                self.pos = slot + 1;
                return maps[shard].scanned();
            }
            maps[shard].cursor_leave();
            if shard + 1 < maps.len() {
                self.shard = shard + 1;
                self.phase = Phase::Before;
            } else {
                self.phase = Phase::Exhausted;
            }
        }
    }

    /// Back before the first entry of shard 0.
    pub fn reset(&mut self, maps: &mut [Map]) {
        self.release(maps);
        *self = Cursor::new();
    }

    /// Positions the cursor so that the next `next` returns live `key`, which lives in
    /// shard `target` (0 for a plain map); true if found. A miss leaves the cursor
    /// where it was, except that it moves to the first slot of `target` when that is
    /// another shard (api.md 6.7). Works after exhaustion.
    pub fn seek(&mut self, maps: &mut [Map], target: usize, key: In<'_>) -> Result<bool> {
        let found = maps[target].slot_of(key)?;
        if target != self.shard || self.phase != Phase::On {
            if found.is_none() && target == self.shard {
                return Ok(false);
            }
            self.release(maps);
            maps[target].cursor_enter();
            self.shard = target;
            self.phase = Phase::On;
            self.pos = 0;
            self.gen = None;
        }
        if let Some((slot, gen)) = found {
            self.pos = slot;
            self.gen = Some(gen);
        }
        Ok(found.is_some())
    }

    /// Unregisters from the shard it sits on (call before dropping a cursor whose map
    /// handle is still open).
    pub fn release(&mut self, maps: &mut [Map]) {
        if self.phase == Phase::On {
            if let Some(m) = maps.get_mut(self.shard) {
                m.cursor_leave();
            }
            self.phase = Phase::Before;
        }
    }
}
