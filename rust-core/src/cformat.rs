//! A reader for map files written by the original C implementation (on-disk formats 9
//! and 10, releases 0.09 to 0.17), used by [`crate::upgrade`] to convert them into our
//! format (decisions 15). The layout is described in `shared/spec/c-format.md`.
//!
//! The input is untrusted: it may be truncated, corrupt or hostile. Every offset and
//! length read from it is checked against the buffer before use, every loop is bounded
//! by a capacity taken from the (validated) header, and nothing here panics: problems
//! come back as [`Error`]s whose messages start with the file's path.
//!
//! What [`parse`] checks, in this order (messages after "PATH: "):
//! 1. length >= 256: "too small to be a HashMap file (N bytes)";
//! 2. magic u32 0x53484D31: "bad magic (not a HashMap::Shared file)";
//! 3. version 9 or 10: "unsupported source version X (migrates 9 -> 10 only); only
//!    files of the C implementation's formats 9 and 10 (releases 0.09 to 0.17) can be
//!    converted" (the parenthesis is the C wording, which user code matches on);
//! 4. the writer lock word is 0: "locked by a live writer (pid N); stop every process
//!    using the map and retry", or "holds a stale write lock from pid N, which is gone.
//!    Open it once with the C implementation that wrote it (any write recovers the
//!    lock), then retry";
//! 5. header total size == file length: "size mismatch (file=X, header=Y)";
//! 6. the reader-slot table lies inside the file: "reader-slot region out of range
//!    (corrupt header)";
//! 7. every region offset is where the format puts it for this variant, capacity and
//!    option set (a variant id outside 1..=10 or a node size that is not the
//!    variant's included): "unexpected vN layout; refusing to migrate";
//! 8. the table counters are consistent: "corrupt header (table capacity)", "corrupt
//!    header (size and tombstones exceed the capacity)";
//! 9. no live process holds a reader slot: "in use by process N (reader slot I); close
//!    every handle on the map and retry" (the C format requires that no process has the
//!    file mapped during a migration; this catches the processes that read it);
//! 10. every live slot decodes (string references inside the arena and past its 16
//!     reserved bytes, inline lengths <= 7): "corrupt entry in slot N (key: DETAIL)" /
//!     "(value: DETAIL)", and the number of live slots equals the header's size:
//!     "corrupt table (size N, but M live slots)".
//!
//! The LRU list (maps with max_size > 0) is walked from the tail through the `prev`
//! links with a step bound, so a cycle cannot loop forever. A damaged list is not an
//! error (the C implementation itself rebuilds it in slot order after a crash): the
//! walk stops at the first bad link, and the live entries it did not reach are placed
//! at the least-recent end, in slot order ([`CFile::lru_intact`] tells which happened).

use crate::error::{Error, ErrorKind, Result};
use crate::value::Value;
use crate::variant::{Kind, Variant};

/// The C implementation's magic, u32 at offset 0 (bytes `31 4D 48 53`).
pub const C_MAGIC: u32 = 0x5348_4D31;
/// Header size of formats 9 and 10.
pub const HEADER_SIZE: usize = 256;
/// "No entry" in the LRU head/tail/links.
pub const NONE: u32 = u32::MAX;
/// Reader slots in the table that follows the per-slot arrays.
pub const READER_SLOTS: usize = 1024;
/// Bytes per reader slot {pid, depth, reserved, reserved}.
pub const READER_SLOT_SIZE: usize = 16;
/// The occupancy bitmap format 10 added after the reader-slot table.
pub const OCCUPANCY_BITMAP: usize = 128;
/// The first arena bytes are reserved: no string starts below this offset.
pub const ARENA_RESERVED: u64 = 16;
/// Largest table capacity the C implementation creates.
pub const MAX_TABLE_CAP: u32 = 1 << 31;

/// Byte offsets of the header fields (c-format.md).
pub mod hoff {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 4;
    pub const VARIANT: usize = 8;
    pub const NODE_SIZE: usize = 12;
    pub const MAX_TABLE_CAP: usize = 16;
    pub const TABLE_CAP: usize = 20;
    pub const MAX_SIZE: usize = 24;
    pub const DEFAULT_TTL: usize = 28;
    pub const TOTAL_SIZE: usize = 32;
    pub const NODES_OFF: usize = 40;
    pub const STATES_OFF: usize = 48;
    pub const ARENA_OFF: usize = 56;
    pub const SEQ: usize = 64;
    pub const RWAIT: usize = 68;
    pub const ARENA_CAP: usize = 72;
    pub const READER_SLOTS_OFF: usize = 80;
    pub const SLOTLESS_READERS: usize = 88;
    pub const LARGE_FREE_HEAD: usize = 92;
    pub const SEALED: usize = 96;
    pub const WLOCK: usize = 128;
    pub const PARKED: usize = 132;
    pub const SIZE: usize = 136;
    pub const TOMBSTONES: usize = 140;
    pub const LRU_HEAD: usize = 144;
    pub const LRU_TAIL: usize = 148;
    pub const FLUSH_CURSOR: usize = 152;
    pub const TABLE_GEN: usize = 156;
    pub const ARENA_BUMP: usize = 160;
    pub const STAT_EVICTIONS: usize = 168;
    pub const STAT_EXPIRED: usize = 176;
    pub const STAT_RECOVERIES: usize = 184;
    pub const LRU_SKIP_MASK: usize = 188;
    pub const FREE_HEADS: usize = 192;
}

/// The 256-byte header, decoded field by field (no validation).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CHeader {
    pub magic: u32,
    pub version: u32,
    pub variant_id: u32,
    pub node_size: u32,
    pub max_table_cap: u32,
    pub table_cap: u32,
    pub max_size: u32,
    pub default_ttl: u32,
    pub total_size: u64,
    pub nodes_off: u64,
    pub states_off: u64,
    pub arena_off: u64,
    pub seq: u32,
    pub arena_cap: u64,
    pub reader_slots_off: u64,
    pub slotless_readers: u32,
    pub sealed: u8,
    pub wlock: u32,
    pub size: u32,
    pub tombstones: u32,
    pub lru_head: u32,
    pub lru_tail: u32,
    pub table_gen: u32,
    pub arena_bump: u64,
    pub stat_evictions: u64,
    pub stat_expired: u64,
    pub stat_recoveries: u32,
    pub lru_skip_mask: u32,
}

fn rd32(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(o..o.checked_add(4)?)?.try_into().ok()?))
}

fn rd64(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(o..o.checked_add(8)?)?.try_into().ok()?))
}

fn rd16(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(o..o.checked_add(2)?)?.try_into().ok()?))
}

impl CHeader {
    /// Decodes the first 256 bytes of `b`; None if `b` is shorter.
    pub fn decode(b: &[u8]) -> Option<CHeader> {
        use hoff::*;
        let h = b.get(..HEADER_SIZE_)?;
        Some(CHeader {
            magic: rd32(h, MAGIC)?,
            version: rd32(h, VERSION)?,
            variant_id: rd32(h, VARIANT)?,
            node_size: rd32(h, NODE_SIZE)?,
            max_table_cap: rd32(h, hoff::MAX_TABLE_CAP)?,
            table_cap: rd32(h, TABLE_CAP)?,
            max_size: rd32(h, MAX_SIZE)?,
            default_ttl: rd32(h, DEFAULT_TTL)?,
            total_size: rd64(h, TOTAL_SIZE)?,
            nodes_off: rd64(h, NODES_OFF)?,
            states_off: rd64(h, STATES_OFF)?,
            arena_off: rd64(h, ARENA_OFF)?,
            seq: rd32(h, SEQ)?,
            arena_cap: rd64(h, ARENA_CAP)?,
            reader_slots_off: rd64(h, READER_SLOTS_OFF)?,
            slotless_readers: rd32(h, SLOTLESS_READERS)?,
            sealed: *h.get(SEALED)?,
            wlock: rd32(h, WLOCK)?,
            size: rd32(h, SIZE)?,
            tombstones: rd32(h, TOMBSTONES)?,
            lru_head: rd32(h, LRU_HEAD)?,
            lru_tail: rd32(h, LRU_TAIL)?,
            table_gen: rd32(h, TABLE_GEN)?,
            arena_bump: rd64(h, ARENA_BUMP)?,
            stat_evictions: rd64(h, STAT_EVICTIONS)?,
            stat_expired: rd64(h, STAT_EXPIRED)?,
            stat_recoveries: rd32(h, STAT_RECOVERIES)?,
            lru_skip_mask: rd32(h, LRU_SKIP_MASK)?,
        })
    }
}

// `hoff` has no HEADER_SIZE; keep the glob import above unambiguous.
const HEADER_SIZE_: usize = HEADER_SIZE;

/// The node (slot) size of a variant in the C format, and the offsets of its key and
/// value fields (natural C alignment; c-format.md "Node layout").
pub fn c_node(v: Variant) -> (u32, usize, usize) {
    let (k, val) = (v.key_kind(), v.val_kind());
    // A string field is two u32 words (alignment 4); ints align to their width.
    let (kw, ka) = if k == Kind::Str { (8, 4) } else { (k.width(), k.width()) };
    let (vw, va) = if val == Kind::Str { (8, 4) } else { (val.width(), val.width()) };
    let voff = kw.div_ceil(va) * va;
    let align = ka.max(va);
    let size = (voff + vw).div_ceil(align) * align;
    (size as u32, 0, voff)
}

/// Region offsets and sizes of a C-format file, computed from its header's geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CLayout {
    /// Format version (9 or 10).
    pub version: u32,
    /// Maximum table capacity (slots): every per-slot region has this many entries.
    pub max_cap: u64,
    /// Node size.
    pub node_size: u64,
    /// Nodes (always 256).
    pub nodes_off: u64,
    /// State bytes.
    pub states_off: u64,
    /// LRU prev[u32 x cap], next[u32 x cap], accessed[u8 x cap] (0 = none).
    pub lru_off: u64,
    /// Expiry[u32 x cap] (0 = none).
    pub ttl_off: u64,
    /// Reader-slot table.
    pub reader_slots_off: u64,
    /// Arena (0 = none).
    pub arena_off: u64,
    /// Total file size.
    pub total_size: u64,
}

fn align(x: u64, a: u64) -> u64 {
    x.div_ceil(a) * a
}

impl CLayout {
    /// The layout the C implementation gives a file of `version` for `variant` with a
    /// maximum capacity of `max_cap` slots, the LRU/TTL arrays when `lru`/`ttl`, and an
    /// arena of `arena_cap` bytes (string variants).
    pub fn compute(version: u32, variant: Variant, max_cap: u64, lru: bool, ttl: bool, arena_cap: u64) -> CLayout {
        let node_size = c_node(variant).0 as u64;
        let nodes_off = HEADER_SIZE as u64;
        let states_off = nodes_off + max_cap * node_size;
        let mut end = states_off + max_cap;
        let mut lru_off = 0;
        if lru {
            lru_off = align(end, 4);
            end = lru_off + max_cap * 9;
        }
        let mut ttl_off = 0;
        if ttl {
            ttl_off = align(end, 4);
            end = ttl_off + max_cap * 4;
        }
        let reader_slots_off = align(end, 8);
        end = reader_slots_off + (READER_SLOTS * READER_SLOT_SIZE) as u64;
        if version >= 10 {
            end += OCCUPANCY_BITMAP as u64;
        }
        let mut arena_off = 0;
        if variant.has_arena() {
            arena_off = align(end, 8);
            end = arena_off.saturating_add(arena_cap);
        }
        CLayout {
            version,
            max_cap,
            node_size,
            nodes_off,
            states_off,
            lru_off,
            ttl_off,
            reader_slots_off,
            arena_off,
            total_size: end,
        }
    }
}

/// One live entry of a C-format file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CEntry {
    /// Slot index in the C table.
    pub slot: u32,
    /// Key (integers sign-extended from the variant width; strings with their flag).
    pub key: Value,
    /// Value.
    pub value: Value,
    /// Expiry in whole seconds of the writing boot's CLOCK_MONOTONIC_COARSE; 0 =
    /// permanent (always 0 in maps without TTL).
    pub expiry: u32,
    /// The LRU clock ("accessed") bit (always false in maps without LRU).
    pub accessed: bool,
}

/// A parsed C-format file.
#[derive(Clone, Debug)]
pub struct CFile {
    /// The header as stored.
    pub header: CHeader,
    /// The variant (from the header's variant id).
    pub variant: Variant,
    /// The validated layout.
    pub layout: CLayout,
    /// Every live entry. LRU maps: least recently used first (the tail), most recently
    /// used last (the head). Other maps: slot order.
    pub entries: Vec<CEntry>,
    /// LRU maps: the list reached every live entry with valid links (false: the walk
    /// stopped at a damaged link and the missing entries were put at the tail end).
    pub lru_intact: bool,
}

impl CFile {
    /// LRU (max_size > 0)?
    pub fn has_lru(&self) -> bool {
        self.header.max_size > 0
    }
    /// TTL (default ttl > 0)?
    pub fn has_ttl(&self) -> bool {
        self.header.default_ttl > 0
    }
    /// max_entries as the C implementation reported it: 3/4 of the maximum table
    /// capacity (it does not store the requested value).
    pub fn reported_max_entries(&self) -> u64 {
        self.header.max_table_cap as u64 / 4 * 3
    }
    /// The max_entries to create our map with: what the C implementation reported
    /// (3/4 of its maximum capacity), or the live entry count if that is larger (a C
    /// table can fill up to its full capacity). Our map guarantees at least this many
    /// entries (decisions 3), so every entry fits and every insert the C map promised
    /// still succeeds. Our table for it is no larger than the C one (ours holds 7/8 of
    /// its capacity).
    pub fn max_entries_for_ours(&self) -> u64 {
        self.reported_max_entries().max(self.entries.len() as u64)
    }
    /// The lru_skip percentage for our map: see [`lru_skip_percent`].
    pub fn lru_skip_percent(&self) -> u32 {
        lru_skip_percent(self.header.lru_skip_mask)
    }
}

/// The C implementation's promotion interval for an lru_skip percentage `p`
/// (api.md 7.3): floor(100 / (100 - p)) rounded up to a power of two; 1 (no skipping)
/// for p = 0 and p >= 100.
pub fn c_interval(p: u32) -> u32 {
    if p == 0 || p >= 100 {
        return 1;
    }
    (100 / (100 - p)).next_power_of_two()
}

/// Converts a stored lru_skip mask (promotion interval - 1) back into a percentage.
///
/// The C implementation performs every interval-th promotion, i.e. skips a fraction
/// (interval - 1) / interval of them, which is what our lru_skip percentage means
/// (decisions 6). Among the percentages the C implementation maps to this interval, we
/// pick the one closest to that fraction (ties upwards): mask 0 -> 0, 1 -> 50, 3 -> 75,
/// 7 -> 88, 15 -> 94, 31 -> 96, 63 -> 98, 127 -> 99. So the converted map skips the
/// same share of promotions, and the percentage still names the same interval in the C
/// formula. A mask no percentage produces (corrupt) gets the closest percentage to its
/// fraction, at most 99.
pub fn lru_skip_percent(mask: u32) -> u32 {
    let interval = mask as u64 + 1;
    // target = 100 * (interval - 1) / interval, compared in hundredths * interval.
    let dist = |p: u32| (p as u64 * interval).abs_diff(100 * (interval - 1));
    let mut best: Option<u32> = None;
    for p in 0..100u32 {
        if c_interval(p) as u64 != interval {
            continue;
        }
        if best.map_or(true, |b| dist(p) <= dist(b)) {
            best = Some(p);
        }
    }
    best.unwrap_or_else(|| {
        let mut b = 0;
        for p in 0..100u32 {
            if dist(p) <= dist(b) {
                b = p;
            }
        }
        b
    })
}

/// Is process `pid` alive (and not a zombie)? `kill(pid, 0)`, then a look at
/// /proc/PID/stat for the zombie state. 0 and values above i32::MAX are not pids.
pub fn pid_alive(pid: u32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    // SAFETY: signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    if rc != 0 && crate::error::errno() != libc::EPERM {
        return false;
    }
    match std::fs::read(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            // "pid (comm) S ...": the state follows the last ')'.
            let state = s.iter().rposition(|&c| c == b')').and_then(|i| s.get(i + 2)).copied();
            !matches!(state, Some(b'Z') | Some(b'X'))
        }
        Err(_) => true,
    }
}

/// Whole seconds of CLOCK_MONOTONIC_COARSE, the clock of the C implementation's expiry
/// values.
pub fn now_monotonic_coarse() -> u64 {
    // SAFETY: an all-zero timespec is valid; clock_gettime writes it.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: ts is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec.max(0) as u64
}

/// Seconds left before `expiry` at monotonic time `now` (c-format.md "Expiry values"):
/// `Some(0)` for a permanent entry (expiry 0), `Some(n)` with n >= 1 for a live one,
/// `None` when it has expired (the C implementation treats an entry as expired once
/// now >= expiry).
pub fn remaining_secs(expiry: u32, now: u64) -> Option<u64> {
    if expiry == 0 {
        return Some(0);
    }
    let e = expiry as u64;
    if e <= now {
        None
    } else {
        Some(e - now)
    }
}

fn fmt_err(msg: String) -> Error {
    Error::new(ErrorKind::Format, msg)
}

/// Parses a C-format file's bytes; `path` prefixes every message. Lock and reader-slot
/// liveness are checked with [`pid_alive`].
pub fn parse(b: &[u8], path: &str) -> Result<CFile> {
    parse_with(b, path, &pid_alive)
}

/// [`parse`] with a custom liveness check (for tests).
pub fn parse_with(b: &[u8], path: &str, alive: &dyn Fn(u32) -> bool) -> Result<CFile> {
    let p = path;
    let Some(h) = CHeader::decode(b) else {
        return Err(fmt_err(format!("{p}: too small to be a HashMap file ({} bytes)", b.len())));
    };
    if h.magic != C_MAGIC {
        return Err(fmt_err(format!("{p}: bad magic (not a HashMap::Shared file)")));
    }
    if h.version != 9 && h.version != 10 {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "{p}: unsupported source version {} (migrates 9 -> 10 only); only files of the C \
                 implementation's formats 9 and 10 (releases 0.09 to 0.17) can be converted",
                h.version
            ),
        ));
    }
    if h.wlock != 0 {
        let pid = h.wlock & 0x7FFF_FFFF;
        return Err(Error::new(
            ErrorKind::Io,
            if alive(pid) {
                format!("{p}: locked by a live writer (pid {pid}); stop every process using the map and retry")
            } else {
                format!(
                    "{p}: holds a stale write lock from pid {pid}, which is gone. Open it once with the C \
                     implementation that wrote it (any write recovers the lock), then retry"
                )
            },
        ));
    }
    if h.total_size != b.len() as u64 {
        return Err(fmt_err(format!("{p}: size mismatch (file={}, header={})", b.len(), h.total_size)));
    }
    let rs_len = (READER_SLOTS * READER_SLOT_SIZE) as u64 + if h.version >= 10 { OCCUPANCY_BITMAP as u64 } else { 0 };
    let rs = h.reader_slots_off;
    if rs < HEADER_SIZE as u64 || rs % 8 != 0 || rs.checked_add(rs_len).map_or(true, |e| e > h.total_size) {
        return Err(fmt_err(format!("{p}: reader-slot region out of range (corrupt header)")));
    }
    let layout_err = || fmt_err(format!("{p}: unexpected v{} layout; refusing to migrate", h.version));
    let variant = Variant::from_id(h.variant_id).ok_or_else(layout_err)?;
    let max_cap = h.max_table_cap;
    if !max_cap.is_power_of_two() || max_cap > MAX_TABLE_CAP || h.node_size != c_node(variant).0 {
        return Err(layout_err());
    }
    let has_arena = variant.has_arena();
    if has_arena != (h.arena_cap > 0) {
        return Err(layout_err());
    }
    let l = CLayout::compute(h.version, variant, max_cap as u64, h.max_size > 0, h.default_ttl > 0, h.arena_cap);
    if h.nodes_off != l.nodes_off
        || h.states_off != l.states_off
        || h.reader_slots_off != l.reader_slots_off
        || h.arena_off != l.arena_off
        || h.total_size != l.total_size
    {
        return Err(layout_err());
    }
    // From here on every region [off, off + cap * width) lies inside `b`: the total
    // size equals the buffer length and the layout sums the regions in order.
    let cap = h.table_cap;
    let corrupt = |what: &str| fmt_err(format!("{p}: corrupt header ({what})"));
    if !cap.is_power_of_two() || cap > max_cap {
        return Err(corrupt("table capacity"));
    }
    if h.size as u64 + h.tombstones as u64 > cap as u64 {
        return Err(corrupt("size and tombstones exceed the capacity"));
    }
    // Live processes in reader slots still have the map open: converting now would
    // lose what they write afterwards.
    for i in 0..READER_SLOTS {
        let o = rs as usize + i * READER_SLOT_SIZE;
        let pid = rd32(b, o).unwrap_or(0);
        if pid != 0 && pid != NONE && alive(pid) {
            return Err(Error::new(
                ErrorKind::Io,
                format!("{p}: in use by process {pid} (reader slot {i}); close every handle on the map and retry"),
            ));
        }
    }

    let (_, koff, voff) = c_node(variant);
    let arena = if has_arena { b.get(l.arena_off as usize..).unwrap_or(&[]) } else { &[][..] };
    let arena_len = arena.len() as u64;
    let state = |i: usize| b.get(l.states_off as usize + i).copied().unwrap_or(0);
    let mut entries = Vec::with_capacity(h.size as usize);
    let mut index_of = vec![u32::MAX; if h.max_size > 0 { cap as usize } else { 0 }];
    for i in 0..cap as usize {
        if state(i) < 2 {
            continue;
        }
        let node = l.nodes_off as usize + i * l.node_size as usize;
        let field = |off: usize, kind: Kind| -> std::result::Result<Value, String> {
            let o = node + off;
            match kind {
                Kind::I16 => rd16(b, o).map(|x| Value::Int(x as i16 as i64)).ok_or_else(|| "node out of range".into()),
                Kind::I32 => rd32(b, o).map(|x| Value::Int(x as i32 as i64)).ok_or_else(|| "node out of range".into()),
                Kind::I64 => rd64(b, o).map(|x| Value::Int(x as i64)).ok_or_else(|| "node out of range".into()),
                Kind::Str => {
                    let (w0, w1) = match (rd32(b, o), rd32(b, o + 4)) {
                        (Some(a), Some(c)) => (a, c),
                        _ => return Err("node out of range".into()),
                    };
                    decode_str(w0, w1, arena, arena_len).map(|(s, u)| Value::Str(s, u))
                }
            }
        };
        let key = field(koff, variant.key_kind());
        let value = field(voff, variant.val_kind());
        let (key, value) = match (key, value) {
            (Ok(k), Ok(v)) => (k, v),
            (Err(e), _) => return Err(fmt_err(format!("{p}: corrupt entry in slot {i} (key: {e})"))),
            (_, Err(e)) => return Err(fmt_err(format!("{p}: corrupt entry in slot {i} (value: {e})"))),
        };
        let expiry = if l.ttl_off != 0 { rd32(b, l.ttl_off as usize + 4 * i).unwrap_or(0) } else { 0 };
        let accessed =
            l.lru_off != 0 && b.get(l.lru_off as usize + 8 * max_cap as usize + i).copied().unwrap_or(0) != 0;
        if let Some(x) = index_of.get_mut(i) {
            *x = entries.len() as u32;
        }
        entries.push(CEntry { slot: i as u32, key, value, expiry, accessed });
    }
    if entries.len() != h.size as usize {
        return Err(fmt_err(format!("{p}: corrupt table (size {}, but {} live slots)", h.size, entries.len())));
    }
    let mut lru_intact = true;
    if h.max_size > 0 {
        let (order, intact) = lru_order(b, &l, cap, h.lru_tail, &index_of);
        lru_intact = intact;
        let mut taken = vec![false; entries.len()];
        for &e in &order {
            taken[e] = true;
        }
        // Entries the walk missed go to the least-recent end, in slot order.
        let mut idx: Vec<usize> = (0..entries.len()).filter(|&e| !taken[e]).collect();
        idx.extend(order.iter());
        let mut slots: Vec<Option<CEntry>> = entries.into_iter().map(Some).collect();
        entries = idx.into_iter().filter_map(|e| slots.get_mut(e).and_then(Option::take)).collect();
    }
    Ok(CFile { header: h, variant, layout: l, entries, lru_intact })
}

/// Decodes a string field (c-format.md "Node layout"); bytes and UTF-8 flag.
fn decode_str(w0: u32, w1: u32, arena: &[u8], arena_len: u64) -> std::result::Result<(Vec<u8>, bool), String> {
    let utf8 = w1 & 0x8000_0000 != 0;
    if w1 & 0x4000_0000 != 0 {
        let n = ((w1 >> 24) & 7) as usize;
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&w0.to_le_bytes());
        bytes[4..7].copy_from_slice(&(w1 & 0x00FF_FFFF).to_le_bytes()[..3]);
        if n > 7 {
            return Err(format!("inline length {n}"));
        }
        return Ok((bytes[..n].to_vec(), utf8));
    }
    let len = (w1 & 0x3FFF_FFFF) as u64;
    let off = w0 as u64;
    if off < ARENA_RESERVED || off + len > arena_len {
        return Err(format!("string at arena offset {off}, {len} bytes, outside the {arena_len}-byte arena"));
    }
    Ok((arena[off as usize..(off + len) as usize].to_vec(), utf8))
}

/// Walks the LRU list from the tail through `prev` (at most `cap` steps). Returns the
/// entry indexes from the tail (least recent) to the head, and whether the list was
/// intact (ended at NONE, every link a live slot, no slot twice, every live entry
/// reached).
fn lru_order(b: &[u8], l: &CLayout, cap: u32, tail: u32, index_of: &[u32]) -> (Vec<usize>, bool) {
    let mut seen = vec![false; cap as usize];
    let mut order = Vec::new();
    let mut cur = tail;
    let mut intact = true;
    let live = index_of.iter().filter(|&&x| x != u32::MAX).count();
    loop {
        if cur == NONE {
            break;
        }
        if cur >= cap || seen[cur as usize] || index_of[cur as usize] == u32::MAX || order.len() >= cap as usize {
            intact = false;
            break;
        }
        seen[cur as usize] = true;
        order.push(index_of[cur as usize] as usize);
        // prev[] is the first array of the LRU region.
        match rd32(b, l.lru_off as usize + 4 * cur as usize) {
            Some(x) => cur = x,
            None => {
                intact = false;
                break;
            }
        }
    }
    if order.len() != live {
        intact = false;
    }
    (order, intact)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small C-format file builder for the tests.
    struct Builder {
        b: Vec<u8>,
        l: CLayout,
        v: Variant,
        bump: u64,
    }

    impl Builder {
        fn new(
            version: u32,
            v: Variant,
            max_cap: u32,
            table_cap: u32,
            max_size: u32,
            ttl: u32,
            arena_cap: u64,
        ) -> Builder {
            let arena_cap = if v.has_arena() { arena_cap } else { 0 };
            let l = CLayout::compute(version, v, max_cap as u64, max_size > 0, ttl > 0, arena_cap);
            let mut b = vec![0u8; l.total_size as usize];
            let w32 = |b: &mut Vec<u8>, o: usize, x: u32| b[o..o + 4].copy_from_slice(&x.to_le_bytes());
            let w64 = |b: &mut Vec<u8>, o: usize, x: u64| b[o..o + 8].copy_from_slice(&x.to_le_bytes());
            w32(&mut b, hoff::MAGIC, C_MAGIC);
            w32(&mut b, hoff::VERSION, version);
            w32(&mut b, hoff::VARIANT, v.id());
            w32(&mut b, hoff::NODE_SIZE, c_node(v).0);
            w32(&mut b, hoff::MAX_TABLE_CAP, max_cap);
            w32(&mut b, hoff::TABLE_CAP, table_cap);
            w32(&mut b, hoff::MAX_SIZE, max_size);
            w32(&mut b, hoff::DEFAULT_TTL, ttl);
            w64(&mut b, hoff::TOTAL_SIZE, l.total_size);
            w64(&mut b, hoff::NODES_OFF, l.nodes_off);
            w64(&mut b, hoff::STATES_OFF, l.states_off);
            w64(&mut b, hoff::ARENA_OFF, l.arena_off);
            w64(&mut b, hoff::ARENA_CAP, arena_cap);
            w64(&mut b, hoff::READER_SLOTS_OFF, l.reader_slots_off);
            w32(&mut b, hoff::LRU_HEAD, NONE);
            w32(&mut b, hoff::LRU_TAIL, NONE);
            w64(&mut b, hoff::ARENA_BUMP, 16);
            Builder { b, l, v, bump: 16 }
        }
        fn w32(&mut self, o: usize, x: u32) {
            self.b[o..o + 4].copy_from_slice(&x.to_le_bytes());
        }
        fn str_words(&mut self, s: &[u8], utf8: bool) -> (u32, u32) {
            let u = if utf8 { 0x8000_0000 } else { 0 };
            if s.len() <= 7 {
                let mut x = [0u8; 8];
                x[..s.len()].copy_from_slice(s);
                let w0 = u32::from_le_bytes(x[..4].try_into().unwrap());
                let w1 = u32::from_le_bytes([x[4], x[5], x[6], 0]) | (s.len() as u32) << 24 | 0x4000_0000 | u;
                (w0, w1)
            } else {
                let o = self.bump;
                let a = self.l.arena_off as usize + o as usize;
                self.b[a..a + s.len()].copy_from_slice(s);
                self.bump += s.len().max(16).next_power_of_two() as u64;
                (o as u32, s.len() as u32 | u)
            }
        }
        fn field(&mut self, slot: u32, off: usize, kind: Kind, v: &Value) {
            let o = self.l.nodes_off as usize + slot as usize * self.l.node_size as usize + off;
            match (kind, v) {
                (Kind::I16, Value::Int(x)) => self.b[o..o + 2].copy_from_slice(&(*x as i16).to_le_bytes()),
                (Kind::I32, Value::Int(x)) => self.b[o..o + 4].copy_from_slice(&(*x as i32).to_le_bytes()),
                (Kind::I64, Value::Int(x)) => self.b[o..o + 8].copy_from_slice(&x.to_le_bytes()),
                (Kind::Str, Value::Str(s, u)) => {
                    let (w0, w1) = self.str_words(s, *u);
                    self.w32(o, w0);
                    self.w32(o + 4, w1);
                }
                _ => panic!("kind"),
            }
        }
        fn put(&mut self, slot: u32, k: Value, v: Value) {
            let (_, ko, vo) = c_node(self.v);
            self.field(slot, ko, self.v.key_kind(), &k);
            self.field(slot, vo, self.v.val_kind(), &v);
            self.b[self.l.states_off as usize + slot as usize] = 2 + (slot % 200) as u8;
            let size = rd32(&self.b, hoff::SIZE).unwrap();
            self.w32(hoff::SIZE, size + 1);
        }
        fn link(&mut self, order_head_first: &[u32]) {
            let cap = self.l.max_cap as usize;
            let base = self.l.lru_off as usize;
            for (n, &s) in order_head_first.iter().enumerate() {
                let prev = if n == 0 { NONE } else { order_head_first[n - 1] };
                let next = order_head_first.get(n + 1).copied().unwrap_or(NONE);
                // prev[] (first array) points towards the head, next[] towards the
                // tail: the walk from the tail goes through prev[].
                self.w32(base + 4 * s as usize, prev);
                self.w32(base + 4 * (cap + s as usize), next);
            }
            self.w32(hoff::LRU_HEAD, order_head_first[0]);
            self.w32(hoff::LRU_TAIL, *order_head_first.last().unwrap());
        }
    }

    fn st(s: &[u8], u: bool) -> Value {
        Value::Str(s.to_vec(), u)
    }

    fn never(_: u32) -> bool {
        false
    }

    #[test]
    fn node_sizes_match_the_c_table() {
        let want = [4, 8, 16, 12, 12, 16, 12, 12, 16, 16];
        for (v, w) in crate::variant::ALL.iter().zip(want) {
            assert_eq!(c_node(*v).0, w, "{v:?}");
        }
        assert_eq!(c_node(Variant::I16S), (12, 0, 4));
        assert_eq!(c_node(Variant::SI16), (12, 0, 8));
        assert_eq!(c_node(Variant::SI), (16, 0, 8));
    }

    #[test]
    fn lru_skip_round_trips_the_interval() {
        let want = [(0, 0), (1, 50), (3, 75), (7, 88), (15, 94), (31, 96), (63, 98), (127, 99)];
        for (mask, p) in want {
            assert_eq!(lru_skip_percent(mask), p, "mask {mask}");
            assert_eq!(c_interval(p), mask + 1);
        }
        // Unreachable masks still give a percentage <= 99.
        assert!(lru_skip_percent(2) <= 99);
        assert_eq!(lru_skip_percent(u32::MAX), 99);
    }

    #[test]
    fn every_variant_decodes() {
        for version in [9, 10] {
            for &v in &crate::variant::ALL {
                let mut bld = Builder::new(version, v, 32, 16, 0, 0, 4096);
                let key = |i: i64| {
                    if v.key_kind() == Kind::Str {
                        st(format!("key-{i}-long-enough").as_bytes(), i % 2 == 0)
                    } else {
                        Value::Int(v.key_kind().narrow(i * -1000))
                    }
                };
                let val = |i: i64| match v.val_kind() {
                    Kind::Str => st(&b"0123456789"[..i as usize], i == 3),
                    k => Value::Int(k.narrow(i64::MIN + i)),
                };
                for i in 0..10 {
                    bld.put(i as u32 + 3, key(i), val(i));
                }
                let f = parse_with(&bld.b, "x", &never).unwrap();
                assert_eq!(f.variant, v);
                assert_eq!(f.entries.len(), 10);
                for (i, e) in f.entries.iter().enumerate() {
                    assert_eq!(e.slot, i as u32 + 3);
                    assert_eq!(e.key, key(i as i64), "{v:?} v{version}");
                    assert_eq!(e.value, val(i as i64), "{v:?} v{version}");
                    assert_eq!(e.expiry, 0);
                }
                assert_eq!(f.reported_max_entries(), 24);
                assert_eq!(f.max_entries_for_ours(), 24);
            }
        }
    }

    #[test]
    fn header_errors() {
        let good = Builder::new(10, Variant::SS, 32, 16, 0, 0, 4096).b;
        let err = |b: &[u8]| parse_with(b, "P", &never).unwrap_err().to_string();
        assert_eq!(err(&good[..255]), "P: too small to be a HashMap file (255 bytes)");
        assert_eq!(err(&[]), "P: too small to be a HashMap file (0 bytes)");
        let mut b = good.clone();
        b[0] ^= 1;
        assert_eq!(err(&b), "P: bad magic (not a HashMap::Shared file)");
        for ver in [7, 8, 11] {
            let mut b = good.clone();
            b[4] = ver;
            assert!(err(&b).starts_with(&format!("P: unsupported source version {ver} (migrates 9 -> 10 only)")));
        }
        let mut b = good.clone();
        b.pop();
        assert_eq!(err(&b), format!("P: size mismatch (file={}, header={})", good.len() - 1, good.len()));
        let mut b = good.clone();
        b[hoff::READER_SLOTS_OFF + 6] = 1;
        assert_eq!(err(&b), "P: reader-slot region out of range (corrupt header)");
        let mut b = good.clone();
        b[hoff::STATES_OFF] += 8;
        assert_eq!(err(&b), "P: unexpected v10 layout; refusing to migrate");
        let mut b = good.clone();
        b[hoff::VARIANT] = 9; // SI has the same node size and layout: accepted
        assert!(parse_with(&b, "P", &never).is_ok());
        b[hoff::VARIANT] = 11;
        assert_eq!(err(&b), "P: unexpected v10 layout; refusing to migrate");
        let mut b = good.clone();
        b[hoff::TABLE_CAP] = 64;
        assert_eq!(err(&b), "P: corrupt header (table capacity)");
        let mut b = good.clone();
        b[hoff::SIZE] = 1;
        assert_eq!(err(&b), "P: corrupt table (size 1, but 0 live slots)");
    }

    #[test]
    fn locks_and_readers() {
        let mut b = Builder::new(9, Variant::II, 16, 16, 0, 0, 0).b;
        b[hoff::WLOCK..hoff::WLOCK + 4].copy_from_slice(&(0x8000_0000u32 | 4242).to_le_bytes());
        let e = parse_with(&b, "P", &|p| p == 4242).unwrap_err().to_string();
        assert!(e.starts_with("P: locked by a live writer (pid 4242); "), "{e}");
        let e = parse_with(&b, "P", &never).unwrap_err().to_string();
        assert!(e.starts_with("P: holds a stale write lock from pid 4242, which is gone. "), "{e}");
        b[hoff::WLOCK..hoff::WLOCK + 4].fill(0);
        let rs = rd64(&b, hoff::READER_SLOTS_OFF).unwrap() as usize + 5 * READER_SLOT_SIZE;
        b[rs..rs + 4].copy_from_slice(&77u32.to_le_bytes());
        assert!(parse_with(&b, "P", &never).is_ok(), "dead reader slots are ignored");
        let e = parse_with(&b, "P", &|p| p == 77).unwrap_err().to_string();
        assert!(e.starts_with("P: in use by process 77 (reader slot 5)"), "{e}");
        assert!(pid_alive(std::process::id()));
        assert!(!pid_alive(0));
    }

    #[test]
    fn corrupt_strings_are_errors() {
        let mut bld = Builder::new(10, Variant::SS, 16, 16, 0, 0, 4096);
        bld.put(1, st(b"a long key, 20 bytes", false), st(b"v", true));
        let f = parse_with(&bld.b, "P", &never).unwrap();
        assert_eq!(f.entries[0].value, st(b"v", true));
        let node = bld.l.nodes_off as usize + 16;
        let mut b = bld.b.clone();
        b[node..node + 4].copy_from_slice(&4090u32.to_le_bytes()); // off + len > 4096
        let e = parse_with(&b, "P", &never).unwrap_err().to_string();
        assert!(e.starts_with("P: corrupt entry in slot 1 (key: string at arena offset 4090"), "{e}");
        let mut b = bld.b.clone();
        b[node..node + 4].copy_from_slice(&0u32.to_le_bytes()); // inside the reserved bytes
        assert!(parse_with(&b, "P", &never).is_err());
        let mut b = bld.b.clone();
        b[node + 4..node + 8].copy_from_slice(&0x3FFF_FFFFu32.to_le_bytes());
        assert!(parse_with(&b, "P", &never).is_err());
        let mut b = bld.b.clone();
        b[node + 12..node + 16].copy_from_slice(&0x4000_0000u32.to_le_bytes());
        assert_eq!(parse_with(&b, "P", &never).unwrap().entries[0].value, st(b"", false));
    }

    #[test]
    fn lru_order_ttl_and_clock_bits() {
        let mut bld = Builder::new(10, Variant::SI, 16, 16, 8, 60, 4096);
        for s in [2u32, 5, 7, 9] {
            bld.put(s, st(format!("k{s}").as_bytes(), false), Value::Int(s as i64));
        }
        bld.link(&[7, 2, 9, 5]); // head .. tail
        let acc = bld.l.lru_off as usize + 8 * 16;
        bld.b[acc + 9] = 1;
        bld.w32(bld.l.ttl_off as usize + 4 * 2, 1234);
        let f = parse_with(&bld.b, "P", &never).unwrap();
        assert!(f.lru_intact);
        let slots: Vec<u32> = f.entries.iter().map(|e| e.slot).collect();
        assert_eq!(slots, [5, 9, 2, 7], "tail first");
        assert!(f.entries[1].accessed && !f.entries[0].accessed);
        assert_eq!(f.entries[2].expiry, 1234);
        assert_eq!(f.entries[0].expiry, 0);

        // A cycle: prev of 9 points back at 5 (the tail). The walk stops; nothing lost.
        let mut b = bld.b.clone();
        let base = bld.l.lru_off as usize;
        b[base + 4 * 9..base + 4 * 9 + 4].copy_from_slice(&5u32.to_le_bytes());
        // (walk: 5, 9, then 5 again: stop)
        let f = parse_with(&b, "P", &never).unwrap();
        assert!(!f.lru_intact);
        let slots: Vec<u32> = f.entries.iter().map(|e| e.slot).collect();
        assert_eq!(slots, [2, 7, 5, 9], "unreached entries first, in slot order");
        // A link out of range, and a tail that is not a live slot.
        let mut b = bld.b.clone();
        b[base + 4 * 5..base + 4 * 5 + 4].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(parse_with(&b, "P", &never).unwrap().entries.len(), 4);
        let mut b = bld.b.clone();
        b[hoff::LRU_TAIL..hoff::LRU_TAIL + 4].copy_from_slice(&3u32.to_le_bytes());
        let f = parse_with(&b, "P", &never).unwrap();
        assert!(!f.lru_intact);
        assert_eq!(f.entries.len(), 4);
    }

    #[test]
    fn remaining() {
        assert_eq!(remaining_secs(0, 100), Some(0));
        assert_eq!(remaining_secs(100, 100), None);
        assert_eq!(remaining_secs(99, 100), None);
        assert_eq!(remaining_secs(160, 100), Some(60));
        assert!(now_monotonic_coarse() > 0);
    }

    #[test]
    fn random_damage_never_panics() {
        let mut bld = Builder::new(10, Variant::SS, 32, 32, 16, 30, 4096);
        for s in 0..20u32 {
            bld.put(s, st(format!("key number {s}").as_bytes(), s % 3 == 0), st(&vec![b'x'; s as usize], false));
        }
        bld.link(&(0..20).collect::<Vec<_>>());
        let good = bld.b.clone();
        assert!(parse_with(&good, "P", &never).is_ok());
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..3000 {
            let mut b = good.clone();
            for _ in 0..1 + rnd() % 4 {
                let i = if rnd() % 2 == 0 { (rnd() % 256) as usize } else { (rnd() % b.len() as u64) as usize };
                b[i] = rnd() as u8;
            }
            if rnd() % 8 == 0 {
                let n = (rnd() % b.len() as u64) as usize;
                b.truncate(n);
            }
            let _ = parse_with(&b, "P", &never);
        }
    }
}
