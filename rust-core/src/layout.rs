//! The file format (version 2): header fields, region offsets, validation.
//!
//! # Format
//!
//! A map is one file (or memfd, or anonymous shared mapping) mapped whole into every
//! process that uses it. All integers are native little-endian; every region starts at
//! a 64-byte aligned offset (most at page boundaries so that unused pages can be
//! released). Nothing in the file is a pointer: everything is an offset from the start.
//!
//! ```text
//! 0        header page (4096 bytes)
//!            0..160   static part, written once at creation, covered by hdr_check
//!            256      the hot line (one cache line): everything a write touches,
//!                     writer word, seq, size, tombstones, cap, generation, seal,
//!                     recover flag, arena used/free, LRU head/tail, slot high-water
//!            320      lock side line: parked writers, parked readers (advisory)
//!            400      resize journal, flush cursor
//!            448      statistics: evictions, expired, recoveries
//!            528      arena free-list heads (32 x u32), 656 arena peak
//!            768      arena quick lists (heads, bytes held), release pacing, space
//!                     reservation marks
//! 4096     reader slots: 1024 x 64 bytes (lock.rs `ReaderSlot`: one cache line each)
//! 69632    reader occupancy bitmap (128 bytes)
//! ctrl     one control byte per slot, max_cap bytes (page aligned)
//! slots    max_cap x slot_size bytes (page aligned); slot i's control byte is ctrl[i]
//! [lru]    LRU maps only (flag bit 0): prev u32 x max_cap, next u32 x max_cap (each
//!          page aligned), accessed u8 x max_cap (page aligned): slot i's recency links
//!          and clock bit ([`crate::lru`])
//! [ttl]    TTL maps only (flag bit 1): expiry u32 x max_cap (page aligned): slot i's
//!          expiry in seconds after the header's ttl epoch, 0 = permanent ([`crate::ttl`])
//! arena    string arena, arena_cap bytes rounded up to a page (string variants only)
//! abitmap  arena block-state bitmap: one bit per 16-byte unit, "a free block starts
//!          here" (page aligned, a whole number of pages)
//! ```
//!
//! The table uses the first `cap` (16 .. max_cap, a power of two) control bytes and
//! slots; the rest of both regions is unused and released to the OS after a shrink. A
//! slot holds the key field and the value field at the variant's offsets
//! ([`crate::variant`]); string fields are [`crate::strref::StrRef`]s that either hold
//! up to 7 bytes inline or point into the arena, a buddy allocator ([`crate::arena`]).
//!
//! The static header records everything that determines the layout (variant, requested
//! max_entries, arena capacity, options), the derived geometry and every region offset.
//! Attaching recomputes the layout from the recorded inputs and refuses the file unless
//! every recorded offset, the file size and the checksum agree, so a damaged or foreign
//! header can never make the engine address memory outside the mapping. Creation writes
//! the whole header with a zero magic and stores the magic last.

use crate::error::{Error, Result};
use crate::variant::Variant;
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Header page size; also the minimum file size.
pub const HEADER_SIZE: usize = 4096;
/// Page size assumed by the layout (x86_64 Linux).
pub const PAGE: usize = 4096;
/// First 8 bytes of every map file.
pub const MAGIC: [u8; 8] = *b"HMSHRUST";
/// Format version written by this engine. Version 1 (written only by the 0.17_01
/// development release) had the lock, seqlock, table, arena and LRU words on five
/// cache lines and pid-based liveness; `upgrade_file` converts it (upgrade.rs).
pub const FORMAT_VERSION: u32 = 2;
/// The C implementation's magic (u32 at offset 0), api.md 10 / c-format.md.
pub const C_MAGIC: u32 = 0x5348_4D31;
/// Smallest table.
pub const MIN_CAP: u32 = 16;
/// Largest table (2^31 slots).
pub const MAX_CAP: u64 = 1 << 31;
/// Reader slots per map.
pub const READER_SLOTS: u32 = 1024;
/// Bytes per reader slot (one cache line).
pub const READER_SLOT_SIZE: usize = 64;
/// Bytes of the reader occupancy bitmap.
pub const READER_BITMAP_SIZE: usize = 128;
/// Largest accepted max_entries / max_size / ttl / lru_skip.
pub const MAX_U32_ARG: u64 = u32::MAX as u64;
/// Header flag: LRU arrays present.
pub const FLAG_LRU: u32 = 1;
/// Header flag: TTL array present.
pub const FLAG_TTL: u32 = 2;
/// Header flag: converted from a C-implementation file (upgrade.rs). Such a file
/// routes keys like the C implementation if it is a shard (shard.rs), and its shard
/// count is 0 ("not known") until `new_sharded` first opens it and records one.
pub const FLAG_C_ROUTING: u32 = 4;
/// Most shards in a set (api.md 3.2).
pub const MAX_SHARDS: u32 = 4096;

/// What a newly created file of a shard set records (shard.rs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardTag {
    /// Index of this file in the set.
    pub index: u32,
    /// Number of shards (a power of two, <= MAX_SHARDS).
    pub count: u32,
    /// Hash seed (= the set's routing seed): that of the set's other files, or None
    /// for a fresh random one.
    pub seed: Option<u64>,
}

/// Byte offsets of header fields.
pub mod off {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 8;
    pub const VARIANT: usize = 12;
    pub const HDR_SIZE: usize = 16;
    pub const FLAGS: usize = 20;
    pub const ENGINE_VERSION: usize = 24;
    pub const SLOT_SIZE: usize = 28;
    pub const SEED: usize = 32;
    pub const TOTAL_SIZE: usize = 40;
    pub const MAX_CAP: usize = 48;
    pub const MAX_ENTRIES: usize = 52;
    pub const MAX_SIZE: usize = 56;
    pub const TTL: usize = 60;
    pub const LRU_SKIP: usize = 64;
    pub const SHARD_INDEX: usize = 68;
    pub const SHARD_COUNT: usize = 72;
    pub const READER_SLOTS: usize = 76;
    pub const CTRL: usize = 80;
    pub const SLOTS: usize = 88;
    pub const LRU: usize = 96;
    pub const TTL_ARRAY: usize = 104;
    pub const READERS: usize = 112;
    pub const ARENA: usize = 120;
    pub const ARENA_CAP: usize = 128;
    pub const REQ_MAX_ENTRIES: usize = 136;
    pub const TTL_EPOCH: usize = 144;
    pub const HDR_CHECK: usize = 152;
    /// End of the static part.
    pub const STATIC_END: usize = 160;

    // The hot line (lock.rs `HotLine`, one 64-byte cache line): the write lock word, the
    // seqlock word and every header counter a write touches, so that a write lock
    // handed from one core to another moves one line, not five (issue 12).

    /// The hot line (lock.rs `HotLine`).
    pub const LOCK: usize = 256;
    /// Write lock word (u32, lock.rs).
    pub const WRITER: usize = 256;
    /// Seqlock word (u32, lock.rs): odd while a writer is inside.
    pub const SEQ: usize = 260;
    /// Live entries (u32).
    pub const SIZE: usize = 264;
    /// Tombstones (u32).
    pub const TOMBS: usize = 268;
    /// Table state: current capacity (u32).
    pub const CAP: usize = 272;
    /// Generation, bumped by every resize / compaction / clear (u32).
    pub const GENERATION: usize = 276;
    /// Freeze seal (u32): nonzero = frozen.
    pub const SEALED: usize = 280;
    /// Lock recovery flag (u32, lock.rs): a reader took over a dead writer; the next
    /// writer repairs.
    pub const RECOVER: usize = 284;
    /// Arena: bytes currently allocated (u64).
    pub const ARENA_USED: usize = 288;
    /// Arena: bytes free (u64).
    pub const ARENA_FREE: usize = 296;
    /// LRU state: most recent slot (u32, u32::MAX = empty list).
    pub const LRU_HEAD: usize = 304;
    /// LRU state: least recent slot (u32, u32::MAX = empty list).
    pub const LRU_TAIL: usize = 308;
    /// Reader slot high-water mark (u32, lock.rs): bitmap words a writer drains.
    pub const SLOTS_HW: usize = 312;
    /// End of the hot line.
    pub const HOT_END: usize = 320;

    /// Lock side line (lock.rs `LockSide`): advisory parked counts, off the hot line.
    pub const LOCK_SIDE: usize = 320;

    /// Resize journal (table.rs `Journal`): 0 = idle, 1 = converting control bytes,
    /// 2 = placing entries (u32).
    pub const J_STATE: usize = 400;
    /// Resize journal: target capacity (u32).
    pub const J_TARGET: usize = 404;
    /// Resize journal: source and destination slot of the step in progress (u32 x 2).
    pub const J_SWAP_A: usize = 408;
    pub const J_SWAP_B: usize = 412;
    /// Partial-flush cursor (u32).
    pub const FLUSH_CURSOR: usize = 416;
    /// Resize journal: groups converted so far (u32).
    pub const J_PROGRESS: usize = 420;
    /// Resize journal: step in progress: 0 none, 1 move, 2 swap copying, 3 swap restoring.
    pub const J_STEP: usize = 424;
    /// Resize journal: the payload (expiry) of the swapped-out entry (u32).
    pub const J_SCRATCH_PAYLOAD: usize = 428;
    /// Resize journal: key and value word of the swapped-out entry (u64 x 2).
    pub const J_SCRATCH: usize = 432;
    /// Statistics (u64 each).
    pub const EVICTIONS: usize = 448;
    pub const EXPIRED: usize = 456;
    pub const RECOVERIES: usize = 464;
    /// Arena: free-list heads, one u32 per block order 0..32 (u32::MAX = empty).
    pub const ARENA_HEADS: usize = 528;
    /// Arena: most bytes allocated since free pages were last given back (u64).
    pub const ARENA_PEAK: usize = 656;
    /// Arena quick lists (arena.rs): the heads of orders 4..=12, u32 each, holding the
    /// block offset / 16 + 1 (0 = empty, so the zeroed header of a file written before
    /// the quick lists reads as "all empty").
    pub const ARENA_QUICK: usize = 768;
    /// Arena: bytes held in the quick lists (u64).
    pub const ARENA_QUICK_BYTES: usize = 808;
    /// Arena: bytes allocated right after the last release pass (u64).
    pub const ARENA_FLOOR: usize = 816;
    /// Arena: when the last release pass ran (wall-clock seconds, u64).
    pub const ARENA_RELEASED_AT: usize = 824;
    /// Space reservation (decisions 19): the table capacity whose control bytes, slots
    /// and side arrays have their file space reserved (u32; 0 in a file written before
    /// reservation: nothing known to be reserved).
    pub const TABLE_RESERVED: usize = 832;
    /// Space reservation: 1 once the file follows the reservation invariants (header,
    /// reader slots and arena bitmap reserved, sparse marks on the arena's free
    /// blocks); a file without it is brought under them when opened read-write (u32).
    pub const ARENA_SPARSE_AWARE: usize = 836;
}

/// The creation arguments that determine a layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Variant.
    pub variant: Variant,
    /// max_entries as passed (<= 2^32-1).
    pub max_entries: u64,
    /// LRU bound (0 = none).
    pub max_size: u64,
    /// Default TTL seconds (0 = none).
    pub ttl: u64,
    /// LRU promotion skip percentage.
    pub lru_skip: u64,
    /// Arena capacity argument (0 = default sizing).
    pub arena_cap: u64,
}

/// Derived geometry and region offsets of a map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Variant.
    pub variant: Variant,
    /// Bytes per slot.
    pub slot_size: u32,
    /// Maximum table capacity (slots, power of two, 16..=2^31).
    pub max_cap: u32,
    /// Entries guaranteed to fit: max_cap * 7 / 8.
    pub max_entries: u32,
    /// Requested max_entries (as passed at creation).
    pub req_max_entries: u64,
    /// LRU bound.
    pub max_size: u32,
    /// Default TTL.
    pub ttl: u32,
    /// LRU skip.
    pub lru_skip: u32,
    /// Flags (FLAG_LRU | FLAG_TTL).
    pub flags: u32,
    /// Reader slot table offset.
    pub readers_off: usize,
    /// Reader occupancy bitmap offset.
    pub readers_bitmap_off: usize,
    /// Control bytes offset.
    pub ctrl_off: usize,
    /// Slots offset.
    pub slots_off: usize,
    /// LRU arrays offset (0 = none).
    pub lru_off: usize,
    /// TTL array offset (0 = none).
    pub ttl_off: usize,
    /// Arena offset (0 = no arena).
    pub arena_off: usize,
    /// Arena capacity as reported (clamped argument; 0 = no arena).
    pub arena_cap: u64,
    /// Arena block-state bitmap offset (0 = no arena).
    pub arena_bitmap_off: usize,
    /// Arena block-state bitmap length in bytes (whole pages).
    pub arena_bitmap_len: usize,
    /// Total file size.
    pub total_size: usize,
}

#[inline]
pub(crate) fn round_up(x: usize, to: usize) -> usize {
    x.div_ceil(to) * to
}

/// Maximum table capacity for a requested max_entries: next_pow2(ceil(n * 8 / 7)),
/// at least 16, at most 2^31 (DESIGN.md "Table").
pub fn max_cap_for(max_entries: u64) -> u32 {
    let need = (max_entries as u128 * 8).div_ceil(7);
    let cap = need.max(MIN_CAP as u128).next_power_of_two().min(MAX_CAP as u128);
    cap as u32
}

/// Entries a table of `cap` slots holds at its maximum load (7/8).
#[inline]
pub fn load_limit(cap: u32) -> u32 {
    cap - cap / 8
}

/// Arena capacity: clamp(arena_cap || max_entries * 128, 4096, 2^32 - 1); 0 when the
/// variant has no strings (api.md 3.8).
pub fn arena_cap_for(variant: Variant, max_entries: u64, arena_cap: u64) -> u64 {
    if !variant.has_arena() {
        return 0;
    }
    let want = if arena_cap != 0 { arena_cap as u128 } else { max_entries as u128 * 128 };
    want.clamp(4096, u32::MAX as u128) as u64
}

impl Layout {
    /// The layout a map created with `p` has. `p` must already be range-checked
    /// (max_entries, max_size, ttl, lru_skip <= 2^32-1).
    pub fn compute(p: &Params) -> Layout {
        let v = p.variant;
        let max_cap = max_cap_for(p.max_entries);
        let slot_size = v.slot_size();
        let readers_off = HEADER_SIZE;
        let readers_bitmap_off = readers_off + READER_SLOTS as usize * READER_SLOT_SIZE;
        let ctrl_off = round_up(readers_bitmap_off + READER_BITMAP_SIZE, PAGE);
        let slots_off = round_up(ctrl_off + max_cap as usize, PAGE);
        let mut end = slots_off + max_cap as usize * slot_size as usize;
        // Per-slot side arrays, only when the feature is on (a plain map has none).
        let flags = if p.max_size > 0 { FLAG_LRU } else { 0 } | if p.ttl > 0 { FLAG_TTL } else { 0 };
        let (mut lru_off, mut ttl_off) = (0, 0);
        if flags & FLAG_LRU != 0 {
            lru_off = round_up(end, PAGE);
            end = lru_off + 2 * round_up(max_cap as usize * 4, PAGE) + max_cap as usize;
        }
        if flags & FLAG_TTL != 0 {
            ttl_off = round_up(end, PAGE);
            end = ttl_off + max_cap as usize * 4;
        }
        let arena_cap = arena_cap_for(v, p.max_entries, p.arena_cap);
        let (mut arena_off, mut arena_bitmap_off, mut arena_bitmap_len) = (0, 0, 0);
        if arena_cap > 0 {
            arena_off = round_up(end, PAGE);
            let usable = (arena_cap & !15) as usize;
            arena_bitmap_off = arena_off + round_up(arena_cap as usize, PAGE);
            arena_bitmap_len = round_up((usable / 16).div_ceil(8), PAGE);
            end = arena_bitmap_off + arena_bitmap_len;
        }
        Layout {
            variant: v,
            slot_size,
            max_cap,
            max_entries: load_limit(max_cap),
            req_max_entries: p.max_entries,
            max_size: p.max_size as u32,
            ttl: p.ttl as u32,
            lru_skip: p.lru_skip as u32,
            flags,
            readers_off,
            readers_bitmap_off,
            ctrl_off,
            slots_off,
            lru_off,
            ttl_off,
            arena_off,
            arena_cap,
            arena_bitmap_off,
            arena_bitmap_len,
            total_size: round_up(end, PAGE),
        }
    }

    /// Offset of the LRU `prev` array (u32 per slot); 0 when the map has no LRU.
    #[inline]
    pub fn lru_prev_off(&self) -> usize {
        self.lru_off
    }
    /// Offset of the LRU `next` array (u32 per slot); meaningful only with LRU.
    #[inline]
    pub fn lru_next_off(&self) -> usize {
        self.lru_off + round_up(self.max_cap as usize * 4, PAGE)
    }
    /// Offset of the LRU accessed (clock) bytes; meaningful only with LRU.
    #[inline]
    pub fn lru_acc_off(&self) -> usize {
        self.lru_off + 2 * round_up(self.max_cap as usize * 4, PAGE)
    }
    /// Has the map an LRU bound?
    #[inline]
    pub fn has_lru(&self) -> bool {
        self.flags & FLAG_LRU != 0
    }
    /// Has the map a default TTL (and the expiry array)?
    #[inline]
    pub fn has_ttl(&self) -> bool {
        self.flags & FLAG_TTL != 0
    }

    /// Usable arena bytes (a multiple of 16).
    #[inline]
    pub fn arena_usable(&self) -> u64 {
        self.arena_cap & !15
    }

    /// The static header for this layout (magic left zero: creation stores it last).
    pub fn header(&self, seed: u64, epoch: u64) -> [u8; off::STATIC_END] {
        self.header_shard(seed, epoch, 0, 1)
    }

    /// [`Layout::header`] for shard `index` of a set of `count`.
    pub fn header_shard(&self, seed: u64, epoch: u64, index: u32, count: u32) -> [u8; off::STATIC_END] {
        let mut h = [0u8; off::STATIC_END];
        let mut put32 = |o: usize, v: u32| h[o..o + 4].copy_from_slice(&v.to_le_bytes());
        put32(off::VERSION, FORMAT_VERSION);
        put32(off::VARIANT, self.variant.id());
        put32(off::HDR_SIZE, HEADER_SIZE as u32);
        put32(off::FLAGS, self.flags);
        put32(off::ENGINE_VERSION, engine_version());
        put32(off::SLOT_SIZE, self.slot_size);
        put32(off::MAX_CAP, self.max_cap);
        put32(off::MAX_ENTRIES, self.max_entries);
        put32(off::MAX_SIZE, self.max_size);
        put32(off::TTL, self.ttl);
        put32(off::LRU_SKIP, self.lru_skip);
        put32(off::SHARD_INDEX, index);
        put32(off::SHARD_COUNT, count);
        put32(off::READER_SLOTS, READER_SLOTS);
        let mut put64 = |o: usize, v: u64| h[o..o + 8].copy_from_slice(&v.to_le_bytes());
        put64(off::SEED, seed);
        put64(off::TOTAL_SIZE, self.total_size as u64);
        put64(off::CTRL, self.ctrl_off as u64);
        put64(off::SLOTS, self.slots_off as u64);
        put64(off::LRU, self.lru_off as u64);
        put64(off::TTL_ARRAY, self.ttl_off as u64);
        put64(off::READERS, self.readers_off as u64);
        put64(off::ARENA, self.arena_off as u64);
        put64(off::ARENA_CAP, self.arena_cap);
        put64(off::REQ_MAX_ENTRIES, self.req_max_entries);
        put64(off::TTL_EPOCH, epoch);
        let check = header_check(&h);
        h[off::HDR_CHECK..off::HDR_CHECK + 8].copy_from_slice(&check.to_le_bytes());
        h
    }
}

/// Rewrites the shard fields of a static header (`h`, at least STATIC_END bytes):
/// index, count, the C-routing flag; and its check. Used by the upgrade (count 0,
/// C routing) and when `new_sharded` first opens an upgraded shard (shard.rs).
pub fn set_shard_fields(h: &mut [u8], index: u32, count: u32, c_routing: bool) {
    h[off::SHARD_INDEX..off::SHARD_INDEX + 4].copy_from_slice(&index.to_le_bytes());
    h[off::SHARD_COUNT..off::SHARD_COUNT + 4].copy_from_slice(&count.to_le_bytes());
    let flags = rd32(h, off::FLAGS) & !FLAG_C_ROUTING | if c_routing { FLAG_C_ROUTING } else { 0 };
    h[off::FLAGS..off::FLAGS + 4].copy_from_slice(&flags.to_le_bytes());
    let check = header_check(h);
    h[off::HDR_CHECK..off::HDR_CHECK + 8].copy_from_slice(&check.to_le_bytes());
}

/// Are these shard fields possible? A count is a power of two up to MAX_SHARDS with
/// the index below it; count 0 (not known yet) only on a C-routed file, index 0.
fn shard_fields_ok(index: u32, count: u32, c_routing: bool) -> bool {
    if count == 0 {
        return c_routing && index == 0;
    }
    count.is_power_of_two() && count <= MAX_SHARDS && index < count
}

/// xxh3 (seed 0) of the static header bytes before the check field. The magic is
/// included as the file has it when complete.
pub fn header_check(h: &[u8]) -> u64 {
    let mut b = [0u8; off::HDR_CHECK];
    b.copy_from_slice(&h[..off::HDR_CHECK]);
    b[..8].copy_from_slice(&MAGIC);
    xxh3_64_with_seed(&b, 0)
}

/// The creating engine's version: major << 16 | minor << 8 | patch.
pub fn engine_version() -> u32 {
    let p = |s: &str| s.parse::<u32>().unwrap_or(0);
    (p(env!("CARGO_PKG_VERSION_MAJOR")) << 16)
        | (p(env!("CARGO_PKG_VERSION_MINOR")) << 8)
        | p(env!("CARGO_PKG_VERSION_PATCH"))
}

/// The little-endian u32 at `o` of `h` (header bytes read from a file).
pub fn rd32(h: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(h[o..o + 4].try_into().unwrap())
}
/// The little-endian u64 at `o` of `h`.
pub fn rd64(h: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(h[o..o + 8].try_into().unwrap())
}
/// Stores `v` little-endian at `o` of `h`.
pub fn wr32(h: &mut [u8], o: usize, v: u32) {
    h[o..o + 4].copy_from_slice(&v.to_le_bytes());
}
/// Stores `v` little-endian at `o` of `h`.
pub fn wr64(h: &mut [u8], o: usize, v: u64) {
    h[o..o + 8].copy_from_slice(&v.to_le_bytes());
}

/// What a header validation decided.
#[derive(Debug)]
pub struct Validated {
    /// The layout the header describes.
    pub layout: Layout,
    /// The map's hash seed.
    pub seed: u64,
}

/// Validates the first bytes of a file (`head`, up to HEADER_SIZE bytes of it) whose
/// total length is `file_len`, for opening as `want`. `prefix` starts every message
/// (the path, or "fd"). Order and words of api.md 9: too small, bad magic, version
/// mismatch, variant mismatch, corrupt header.
pub fn validate(head: &[u8], file_len: u64, want: Variant, prefix: &str) -> Result<Validated> {
    if head.len() >= 8 && rd32(head, 0) == C_MAGIC {
        return Err(Error::format(format!(
            "{prefix}: file was written by the C implementation (format v{}); convert it with \
             Data::HashMap::Shared->upgrade_file({prefix})",
            rd32(head, 4)
        )));
    }
    if file_len < HEADER_SIZE as u64 || head.len() < HEADER_SIZE {
        return Err(Error::format(format!(
            "{prefix}: file too small ({file_len} bytes, need {HEADER_SIZE})"
        )));
    }
    if head[..8] != MAGIC {
        return Err(Error::format(format!("{prefix}: bad magic (not a HashMap::Shared file)")));
    }
    let version = rd32(head, off::VERSION);
    if version == 1 {
        return Err(Error::format(format!(
            "{prefix}: file was written by format version 1 (0.17_01); convert it with \
             Data::HashMap::Shared->upgrade_file({prefix})"
        )));
    }
    if version != FORMAT_VERSION {
        return Err(Error::format(format!(
            "{prefix}: version mismatch (file={version}, expected={FORMAT_VERSION})"
        )));
    }
    let vid = rd32(head, off::VARIANT);
    if vid != want.id() {
        return Err(Error::format(format!(
            "{prefix}: variant mismatch (file={vid}, expected={})",
            want.id()
        )));
    }
    let corrupt = || Error::format(format!("{prefix}: corrupt header"));
    if rd64(head, off::HDR_CHECK) != header_check(head) || rd32(head, off::HDR_SIZE) != HEADER_SIZE as u32 {
        return Err(corrupt());
    }
    let p = Params {
        variant: want,
        max_entries: rd64(head, off::REQ_MAX_ENTRIES),
        max_size: rd32(head, off::MAX_SIZE) as u64,
        ttl: rd32(head, off::TTL) as u64,
        lru_skip: rd32(head, off::LRU_SKIP) as u64,
        arena_cap: rd64(head, off::ARENA_CAP),
    };
    if p.max_entries > MAX_U32_ARG {
        return Err(corrupt());
    }
    let l = Layout::compute(&p);
    let flags = rd32(head, off::FLAGS);
    let ok = flags & !FLAG_C_ROUTING == l.flags
        && rd32(head, off::SLOT_SIZE) == l.slot_size
        && rd64(head, off::TOTAL_SIZE) == l.total_size as u64
        && rd64(head, off::TOTAL_SIZE) == file_len
        && rd32(head, off::MAX_CAP) == l.max_cap
        && rd32(head, off::MAX_ENTRIES) == l.max_entries
        && shard_fields_ok(rd32(head, off::SHARD_INDEX), rd32(head, off::SHARD_COUNT), flags & FLAG_C_ROUTING != 0)
        && rd32(head, off::READER_SLOTS) == READER_SLOTS
        && rd64(head, off::CTRL) == l.ctrl_off as u64
        && rd64(head, off::SLOTS) == l.slots_off as u64
        && rd64(head, off::LRU) == l.lru_off as u64
        && rd64(head, off::TTL_ARRAY) == l.ttl_off as u64
        && rd64(head, off::READERS) == l.readers_off as u64
        && rd64(head, off::ARENA) == l.arena_off as u64
        && rd64(head, off::ARENA_CAP) == l.arena_cap;
    if !ok {
        return Err(corrupt());
    }
    Ok(Validated { layout: l, seed: rd64(head, off::SEED) })
}

/// Range checks of the constructor arguments (api.md 3.1, decisions: named errors).
pub fn check_ranges(p: &Params) -> Result<()> {
    for (name, v) in [
        ("max_entries", p.max_entries),
        ("lru_max", p.max_size),
        ("ttl_default", p.ttl),
        ("lru_skip", p.lru_skip),
    ] {
        if v > MAX_U32_ARG {
            return Err(Error::arg(format!("{name} {v} exceeds the maximum of 4294967295")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: Variant, n: u64) -> Params {
        Params { variant: v, max_entries: n, max_size: 0, ttl: 0, lru_skip: 0, arena_cap: 0 }
    }

    #[test]
    fn capacity_rules() {
        assert_eq!(max_cap_for(0), 16);
        assert_eq!(max_cap_for(14), 16);
        assert_eq!(max_cap_for(15), 32);
        assert_eq!(max_cap_for(100), 128);
        assert_eq!(max_cap_for(100_000), 131_072);
        assert_eq!(max_cap_for(u32::MAX as u64), 1 << 31);
        assert_eq!(load_limit(16), 14);
        assert_eq!(load_limit(131_072), 114_688);
        for n in [0u64, 1, 7, 14, 15, 100, 1000, 12345, 100_000, 1 << 28] {
            assert!(load_limit(max_cap_for(n)) as u64 >= n, "max_entries >= requested for {n}");
        }
    }

    #[test]
    fn arena_sizing() {
        assert_eq!(arena_cap_for(Variant::II, 100, 0), 0);
        assert_eq!(arena_cap_for(Variant::SS, 100, 0), 12800);
        assert_eq!(arena_cap_for(Variant::SS, 4, 0), 4096);
        assert_eq!(arena_cap_for(Variant::SS, 4, 100), 4096);
        assert_eq!(arena_cap_for(Variant::SS, 4, u64::MAX), u32::MAX as u64);
        assert_eq!(arena_cap_for(Variant::IS, 0, 0), 4096);
    }

    #[test]
    fn layout_alignment_and_sizes() {
        for v in crate::variant::ALL {
            for n in [0u64, 100, 100_000] {
                let l = Layout::compute(&params(v, n));
                assert_eq!(l.ctrl_off % PAGE, 0);
                assert_eq!(l.slots_off % PAGE, 0);
                assert_eq!(l.total_size % PAGE, 0);
                assert!(l.slots_off >= l.ctrl_off + l.max_cap as usize);
                assert!(l.readers_bitmap_off % 64 == 0);
                if v.has_arena() {
                    assert_eq!(l.arena_off % PAGE, 0);
                    assert!(l.arena_off >= l.slots_off + l.max_cap as usize * l.slot_size as usize);
                    assert!(l.arena_bitmap_off >= l.arena_off + l.arena_cap as usize);
                    assert!(l.arena_bitmap_len * 8 * 16 >= l.arena_usable() as usize);
                } else {
                    assert_eq!(l.arena_off, 0);
                }
            }
        }
        // Size targets (decisions "Targets"): below the C version's 4.27 / 16.47 MiB.
        let ii = Layout::compute(&params(Variant::II, 100_000)).total_size;
        let ss = Layout::compute(&params(Variant::SS, 100_000)).total_size;
        assert!(ii < (4.27 * 1048576.0) as usize, "II {ii}");
        assert!(ss < (16.47 * 1048576.0) as usize, "SS {ss}");
    }

    #[test]
    fn header_roundtrip_and_errors() {
        let l = Layout::compute(&params(Variant::SS, 1000));
        let mut page = vec![0u8; HEADER_SIZE];
        page[..off::STATIC_END].copy_from_slice(&l.header(42, 7));
        page[..8].copy_from_slice(&MAGIC);
        let v = validate(&page, l.total_size as u64, Variant::SS, "p").unwrap();
        assert_eq!(v.layout, l);
        assert_eq!(v.seed, 42);
        let err = |page: &[u8], len: u64, want| validate(page, len, want, "p").unwrap_err().to_string();
        assert_eq!(err(&page, l.total_size as u64, Variant::II), "p: variant mismatch (file=10, expected=3)");
        assert_eq!(err(&page, l.total_size as u64 + 4096, Variant::SS), "p: corrupt header");
        assert_eq!(err(&page[..100], 100, Variant::SS), "p: file too small (100 bytes, need 4096)");
        let mut bad = page.clone();
        bad[off::VERSION] = 3;
        assert_eq!(err(&bad, l.total_size as u64, Variant::SS), "p: version mismatch (file=3, expected=2)");
        let mut v1 = page.clone();
        v1[off::VERSION] = 1;
        assert_eq!(
            err(&v1, l.total_size as u64, Variant::SS),
            "p: file was written by format version 1 (0.17_01); convert it with \
             Data::HashMap::Shared->upgrade_file(p)"
        );
        let mut bad = page.clone();
        bad[off::SLOTS] ^= 1;
        assert_eq!(err(&bad, l.total_size as u64, Variant::SS), "p: corrupt header");
        let mut bad = page.clone();
        bad[0] = b'X';
        assert_eq!(err(&bad, l.total_size as u64, Variant::SS), "p: bad magic (not a HashMap::Shared file)");
        let mut c = page.clone();
        c[..8].copy_from_slice(&[0x31, 0x4D, 0x48, 0x53, 10, 0, 0, 0]);
        assert_eq!(
            err(&c, l.total_size as u64, Variant::SS),
            "p: file was written by the C implementation (format v10); convert it with \
             Data::HashMap::Shared->upgrade_file(p)"
        );
    }

    #[test]
    fn lru_ttl_regions() {
        for v in crate::variant::ALL {
            let plain = Layout::compute(&params(v, 1000));
            let both = Layout::compute(&Params { max_size: 10, ttl: 60, lru_skip: 5, ..params(v, 1000) });
            assert_eq!((plain.lru_off, plain.ttl_off, plain.flags), (0, 0, 0));
            assert_eq!(both.flags, FLAG_LRU | FLAG_TTL);
            assert!(both.has_lru() && both.has_ttl() && !plain.has_lru() && !plain.has_ttl());
            let cap = both.max_cap as usize;
            assert!(both.lru_off >= both.slots_off + cap * both.slot_size as usize);
            for o in [both.lru_prev_off(), both.lru_next_off(), both.lru_acc_off(), both.ttl_off] {
                assert_eq!(o % PAGE, 0);
            }
            assert!(both.lru_next_off() >= both.lru_prev_off() + cap * 4);
            assert!(both.lru_acc_off() >= both.lru_next_off() + cap * 4);
            assert!(both.ttl_off >= both.lru_acc_off() + cap);
            if v.has_arena() {
                assert!(both.arena_off >= both.ttl_off + cap * 4);
            } else {
                assert!(both.total_size >= both.ttl_off + cap * 4);
            }
            // the header records the regions; validation recomputes and accepts them
            let mut page = vec![0u8; HEADER_SIZE];
            page[..off::STATIC_END].copy_from_slice(&both.header(1, 2));
            page[..8].copy_from_slice(&MAGIC);
            let got = validate(&page, both.total_size as u64, v, "p").unwrap();
            assert_eq!(got.layout, both);
            let mut bad = page.clone();
            bad[off::TTL_ARRAY] ^= 0x40;
            assert_eq!(validate(&bad, both.total_size as u64, v, "p").unwrap_err().to_string(), "p: corrupt header");
        }
    }

    #[test]
    fn range_checks() {
        let mut p = params(Variant::II, u32::MAX as u64);
        assert!(check_ranges(&p).is_ok());
        p.max_entries += 1;
        assert_eq!(check_ranges(&p).unwrap_err().to_string(), "max_entries 4294967296 exceeds the maximum of 4294967295");
        p.max_entries = 1;
        p.lru_skip = u64::MAX;
        assert_eq!(
            check_ranges(&p).unwrap_err().to_string(),
            "lru_skip 18446744073709551615 exceeds the maximum of 4294967295"
        );
    }
}
