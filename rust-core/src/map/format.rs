//! Creating and checking map files: our [`backing::Format`].
//!
//! The mapping layer (backing.rs) sizes, maps and serialises; what lives in the map is
//! decided here, by the map that creates it: the static header (layout.rs), an empty
//! table of [`layout::MIN_CAP`] slots, the arena's free lists (arena.rs) and an empty
//! LRU list (lru.rs). Checking an existing file is the header validation of layout.rs
//! plus the seal (frozen maps open only read-only, and only frozen maps do).

use crate::arena::Arena;
use crate::backing::{self, Mapping};
use crate::error::{Error, Result};
use crate::layout::{self, off, Layout, Params, ShardTag, HEADER_SIZE};
use crate::variant::Variant;
use std::sync::atomic::Ordering::{Relaxed, Release};

/// The format of a map of `variant`: `params` size a new one; a new file records
/// `shard` (index, count, seed; None = shard 0 of 1 with a random seed).
pub(crate) struct MapFormat {
    pub params: Params,
    pub shard: Option<ShardTag>,
}

/// What a created or checked map is.
pub(crate) struct Info {
    pub layout: Layout,
    pub seed: u64,
}

impl MapFormat {
    /// The format for opening a map of `variant` (its sizing only matters if it is new).
    pub fn new(params: Params, shard: Option<ShardTag>) -> Result<MapFormat> {
        layout::check_ranges(&params)?;
        Ok(MapFormat { params, shard })
    }

    /// The format for opening an existing map of `variant` (read-only opens never
    /// create).
    pub fn existing(variant: Variant) -> MapFormat {
        let params = Params { variant, max_entries: 0, max_size: 0, ttl: 0, lru_skip: 0, arena_cap: 0 };
        MapFormat { params, shard: None }
    }
}

fn sealed_word(head: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(head[o..o + 4].try_into().unwrap())
}

impl backing::Format for MapFormat {
    type Info = Info;

    fn new_size(&self) -> usize {
        Layout::compute(&self.params).total_size
    }

    /// Static header (magic zero), table of 16 empty slots, arena free lists, empty LRU
    /// list; then the magic, stored last (Release), so that whoever sees the magic sees
    /// a complete map.
    fn init(&self, map: &Mapping) -> std::result::Result<Info, i32> {
        let l = Layout::compute(&self.params);
        // Space first (decisions 19): the header, the reader slots and their bitmap, a
        // table of MIN_CAP slots with its side arrays; the arena reserves its own.
        map.reserve(0, l.ctrl_off)?;
        reserve_table(map, &l, 0, layout::MIN_CAP as usize)?;
        let seed = self.shard.and_then(|s| s.seed).unwrap_or_else(crate::hash::random_seed);
        // The base of the TTL timeline: expiries are stored as seconds after it (ttl.rs).
        let epoch = crate::ttl::wall_now();
        let (index, count) = self.shard.map_or((0, 1), |s| (s.index, s.count));
        let h = l.header_shard(seed, epoch, index, count);
        // The static header as u64 words (all fields are 4 or 8 bytes, 8-aligned pairs).
        for (i, w) in h.chunks_exact(8).enumerate().skip(1) {
            // Relaxed: nobody else can see this map yet (the creator holds the flock, or
            // the memory is not shared yet); the Release store of the magic publishes it.
            map.u64(i * 8).store(u64::from_le_bytes(w.try_into().unwrap()), Relaxed);
        }
        // Relaxed: as above (unpublished memory).
        map.u32(off::CAP).store(layout::MIN_CAP, Relaxed);
        for g in 0..(layout::MIN_CAP as usize / 8) {
            // Relaxed: as above.
            map.u64(l.ctrl_off + g * 8).store(u64::MAX, Relaxed);
        }
        Arena::new(map, &l).init()?;
        // Relaxed: unpublished memory (as above).
        map.u32(off::TABLE_RESERVED).store(layout::MIN_CAP, Relaxed);
        map.u32(off::ARENA_SPARSE_AWARE).store(1, Relaxed);
        if l.has_lru() {
            // Relaxed: as above. An empty recency list.
            map.u32(off::LRU_HEAD).store(crate::lru::NIL, Relaxed);
            map.u32(off::LRU_TAIL).store(crate::lru::NIL, Relaxed);
        }
        // Release: everything written above is visible to whoever reads the magic.
        map.u64(off::MAGIC).store(u64::from_le_bytes(layout::MAGIC), Release);
        Ok(Info { layout: l, seed })
    }

    fn check(&self, head: &[u8], size: u64, what: &str, readonly: bool) -> Result<(Info, usize)> {
        if readonly && size < HEADER_SIZE as u64 && !(head.len() >= 4 && head[..4] == layout::C_MAGIC.to_le_bytes()) {
            return Err(Error::format(format!("{what}: file too small for header")));
        }
        let v = layout::validate(head, size, self.params.variant, what)?;
        if readonly {
            // Only a sealed map opens read-only: its seqlock is even (freeze held the write
            // lock), so lock-free reads of it never wait for, or fall back to, a lock.
            if sealed_word(head, off::SEALED) == 0 {
                return Err(Error::format(format!(
                    "{what} is not frozen: call ->freeze on the producer before opening read-only"
                )));
            }
            if sealed_word(head, off::SEQ) & 1 != 0 {
                return Err(Error::format(format!("{what}: corrupt header (a write in progress in a frozen map)")));
            }
        }
        let len = v.layout.total_size;
        Ok((Info { layout: v.layout, seed: v.seed }, len))
    }

    fn check_mapped(&self, map: &Mapping, what: &str) -> Result<()> {
        // Relaxed: a plain flag; the opener holds the file's flock (or the only
        // descriptor it was given) and only reports it.
        if map.u32(off::SEALED).load(Relaxed) != 0 {
            return Err(Error::format(format!("{what} is frozen (read-only); open it with new_readonly")));
        }
        Ok(())
    }
}

/// Reserves the file space of table slots `from..to` of layout `l`: control bytes,
/// slots and, on LRU/TTL maps, their side arrays (decisions 19).
pub(crate) fn reserve_table(map: &Mapping, l: &Layout, from: usize, to: usize) -> std::result::Result<(), i32> {
    if to <= from {
        return Ok(());
    }
    let (n, ss) = (to - from, l.slot_size as usize);
    map.reserve(l.ctrl_off + from, n)?;
    map.reserve(l.slots_off + from * ss, n * ss)?;
    if l.has_lru() {
        map.reserve(l.lru_prev_off() + from * 4, n * 4)?;
        map.reserve(l.lru_next_off() + from * 4, n * 4)?;
        map.reserve(l.lru_acc_off() + from, n)?;
    }
    if l.has_ttl() {
        map.reserve(l.ttl_off + from * 4, n * 4)?;
    }
    Ok(())
}

/// A new map in anonymous shared memory, for the unit tests of the region modules.
#[cfg(test)]
pub(crate) struct TestMap {
    pub map: Mapping,
    pub layout: Layout,
}

/// A new map of `params` in anonymous shared memory (unit tests).
#[cfg(test)]
pub(crate) fn anon(params: Params) -> TestMap {
    let spec = backing::Spec { backing: backing::Backing::Anon, path: None, fd: -1, file_mode: 0o600 };
    let (map, info) = backing::open(&spec, &MapFormat::new(params, None).unwrap()).unwrap();
    TestMap { map, layout: info.layout }
}
