//! Conversion of format version 1 files, which only our 0.17_01 development release
//! wrote: the same regions as version 2, but the lock, seqlock, table, arena and LRU
//! words on five header lines (version 2 gathers them on one, issue 12) and pid-based
//! liveness in the lock and reader slots (version 2 uses byte locks, issue 14).
//!
//! Like the C conversion, the map is rebuilt through the engine: the version 1 bytes
//! (already read whole) are turned into a version 2 map in memory (a memfd: the mutable
//! header words moved to their version 2 places, the lock and reader state cleared, the
//! recovery flag set when a version 1 writer died mid-write so that the engine repairs
//! it first), checked with `verify`, and every entry is inserted into a fresh map in
//! `PATH.upgrade-tmp` with its value, its remaining TTL, in LRU order (least recent
//! first); the statistics, the seal, the hash seed and the shard fields are carried
//! over; then the new file replaces PATH as for a C file.
//!
//! Refused while the file is in use (with the C conversion's words: "locked by a live
//! writer (pid N)", "in use by process N (reader slot I)"): a version 1 handle's writer
//! word or reader slot naming a live process (version 1 only knows pids; a handle in another PID namespace
//! cannot be seen: close every handle before upgrading). The source's flock is held
//! from the check to the rename, so a version 1 process that opens it meanwhile waits,
//! then finds version 2 and refuses it.

use super::{io_err, pwrite_all, Report};
use crate::error::{errno, Error, ErrorKind, Result};
use crate::layout::{self, off, rd32, rd64, wr32, wr64, ShardTag, FLAG_C_ROUTING, HEADER_SIZE};
use crate::map::{Map, Options};
use crate::variant::Variant;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Where version 1 kept what version 2 keeps on the hot line.
mod v1off {
    pub const WRITER: usize = 256;
    pub const SEALED: usize = 268;
    pub const RECOVER: usize = 272;
    pub const SEQ: usize = 320; // u64
    pub const CAP: usize = 384;
    pub const SIZE: usize = 388;
    pub const TOMBS: usize = 392;
    pub const GENERATION: usize = 396;
    pub const ARENA_USED: usize = 512; // u64
    pub const ARENA_FREE: usize = 520; // u64
    pub const LRU_HEAD: usize = 704;
    pub const LRU_TAIL: usize = 708;
}


/// Is `pid` a live process (version 1's own test: `kill(pid, 0)`, zombies dead)?
fn alive(pid: u32) -> bool {
    let pid = pid & 0x3FFF_FFFF;
    if pid == 0 || pid >= 1 << 22 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    if r != 0 && errno() != libc::EPERM {
        return false;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !matches!(stat.rsplit_once(") ").map(|(_, r)| r.as_bytes().first()), Some(Some(b'Z' | b'X')))
}

/// Why the version 1 map counts as in use (a live writer, or a live process's reader
/// slot), in the words of the C conversion's refusals; None if nobody uses it.
fn user(b: &[u8], readers: usize, disp: &str) -> Option<String> {
    let w = rd32(b, v1off::WRITER);
    if w & 0x8000_0000 != 0 && alive(w) {
        let pid = w & 0x3FFF_FFFF;
        return Some(format!("{disp}: locked by a live writer (pid {pid}); stop every process using the map and retry"));
    }
    let bitmap = readers + layout::READER_SLOTS as usize * layout::READER_SLOT_SIZE;
    (0..layout::READER_SLOTS as usize).find_map(|i| {
        let bit = b[bitmap + i / 8] >> (i % 8) & 1 != 0;
        let pid = rd32(b, readers + i * layout::READER_SLOT_SIZE);
        (bit && alive(pid)).then(|| {
            let pid = pid & 0x3FFF_FFFF;
            format!("{disp}: in use by process {pid} (reader slot {i}); close every handle on the map and retry")
        })
    })
}

/// The version 2 image of version 1 bytes `b` (see the module docs); also whether the
/// map was sealed (cleared in the image, so that the engine opens it read-write).
fn image(mut b: Vec<u8>, disp: &str) -> Result<(Vec<u8>, bool)> {
    let corrupt = || Error::format(format!("{disp}: corrupt header"));
    if b.len() < HEADER_SIZE {
        return Err(corrupt());
    }
    wr32(&mut b, off::VERSION, layout::FORMAT_VERSION);
    let check = layout::header_check(&b);
    wr64(&mut b, off::HDR_CHECK, check);
    let w = rd32(&b, v1off::WRITER);
    let seq = rd64(&b, v1off::SEQ);
    let sealed = rd32(&b, v1off::SEALED) != 0;
    // A writer that died holding the lock (or left a write half done, or handed the
    // repair to the next writer): the engine repairs before anything else.
    let recover = w & 0x8000_0000 != 0 || seq & 1 != 0 || rd32(&b, v1off::RECOVER) != 0;
    let (cap, size, tombs, gen) = (
        rd32(&b, v1off::CAP),
        rd32(&b, v1off::SIZE),
        rd32(&b, v1off::TOMBS),
        rd32(&b, v1off::GENERATION),
    );
    let (used, free) = (rd64(&b, v1off::ARENA_USED), rd64(&b, v1off::ARENA_FREE));
    let (head, tail) = (rd32(&b, v1off::LRU_HEAD), rd32(&b, v1off::LRU_TAIL));
    // The old places (lock, side and table lines, arena counters, LRU ends) and every
    // lock and reader word: zero. Journal, statistics, free-list heads and peak stay.
    b[off::LOCK..off::J_STATE].fill(0);
    b[v1off::ARENA_USED..off::ARENA_HEADS].fill(0);
    b[v1off::LRU_HEAD..v1off::LRU_TAIL + 4].fill(0);
    let readers = rd64(&b, off::READERS) as usize;
    let end = readers + layout::READER_SLOTS as usize * layout::READER_SLOT_SIZE + layout::READER_BITMAP_SIZE;
    if readers < HEADER_SIZE || end > b.len() {
        return Err(corrupt());
    }
    b[readers..end].fill(0);
    wr32(&mut b, off::CAP, cap);
    wr32(&mut b, off::SIZE, size);
    wr32(&mut b, off::TOMBS, tombs);
    wr32(&mut b, off::GENERATION, gen);
    wr32(&mut b, off::RECOVER, recover as u32);
    wr64(&mut b, off::ARENA_USED, used);
    wr64(&mut b, off::ARENA_FREE, free);
    wr32(&mut b, off::LRU_HEAD, head);
    wr32(&mut b, off::LRU_TAIL, tail);
    Ok((b, sealed))
}

/// A memfd holding `b`.
fn memfd_with(b: &[u8], disp: &str) -> Result<OwnedFd> {
    // SAFETY: the name is NUL-terminated.
    let fd = unsafe { libc::memfd_create(c"hashmap-upgrade".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io_err(format!("{disp}: memfd_create"), errno()));
    }
    // SAFETY: fd was just created and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    pwrite_all(fd.as_raw_fd(), b, 0, disp)?;
    Ok(fd)
}

/// Converts the version 1 file (`bytes`, read whole, flock held by the caller) into a
/// version 2 map built in the (empty, exclusively created) file `tmp`. Returns the
/// report and what the caller writes into it afterwards: statistics, seal, shard fields.
pub(super) fn build(bytes: &[u8], disp: &str, tmp: &std::path::Path) -> Result<(Report, Carry)> {
    let corrupt = || Error::format(format!("{disp}: corrupt header"));
    if bytes.len() < HEADER_SIZE {
        return Err(corrupt());
    }
    let variant = Variant::from_id(rd32(bytes, off::VARIANT)).ok_or_else(corrupt)?;
    let readers = rd64(bytes, off::READERS) as usize;
    if readers != HEADER_SIZE
        || readers + layout::READER_SLOTS as usize * layout::READER_SLOT_SIZE + layout::READER_BITMAP_SIZE > bytes.len()
    {
        return Err(corrupt());
    }
    if let Some(why) = user(bytes, readers, disp) {
        return Err(Error::new(ErrorKind::Io, why));
    }
    let (img, sealed) = image(bytes.to_vec(), disp)?;
    let v = layout::validate(&img[..HEADER_SIZE], img.len() as u64, variant, disp)?;
    let l = v.layout;
    let mem = memfd_with(&img, disp)?;
    drop(img);
    let mut src = Map::open(&Options::new(0).with_variant(variant).fd(mem.as_raw_fd()))?;
    drop(mem);
    // The repair a dead version 1 writer left to the next writer (no-op otherwise).
    src.with_write_lock(|| ())?;
    let problems = src.verify();
    if !problems.is_empty() {
        return Err(Error::format(format!("{disp}: damaged version 1 map: {}", problems.join("; "))));
    }
    // Entries, least recently used first on LRU maps (so the new list ends up in the
    // same order), with their remaining TTL (0 = permanent; expired ones are dropped).
    let keys: Vec<_> = if src.has_lru() {
        src.lru_keys()?.into_iter().rev().collect()
    } else {
        src.items()?.into_iter().map(|(k, _)| k).collect()
    };
    let mut live = Vec::with_capacity(keys.len());
    let mut expired = 0u64;
    for k in keys {
        match src.get_with_ttl(k.as_in())? {
            Some((val, ttl)) => live.push((k, val.to_value(), ttl.unwrap_or(0))),
            None => expired += 1,
        }
    }
    let flags = rd32(bytes, off::FLAGS);
    let c_routing = flags & FLAG_C_ROUTING != 0;
    let (index, count) = (rd32(bytes, off::SHARD_INDEX), rd32(bytes, off::SHARD_COUNT));
    let mut o = Options::new(l.req_max_entries).with_variant(variant).file(tmp).arena_cap(l.arena_cap).file_mode(0o600);
    o.max_size = l.max_size as u64;
    o.ttl = l.ttl as u64;
    o.lru_skip = l.lru_skip as u64;
    // Same seed (and shard fields): a shard's keys must keep routing to it. A C-routed
    // file is created as shard 0 of 1 and gets its fields back afterwards (the caller).
    let (ti, tc) = if c_routing { (0, 1) } else { (index, count) };
    o.shard = Some(ShardTag { index: ti, count: tc, seed: Some(v.seed) });
    let mut m = Map::open(&o)?;
    for (k, val, ttl) in &live {
        let ok = if m.has_ttl() { m.put_ttl(k.as_in(), val.as_in(), *ttl)? } else { m.put(k.as_in(), val.as_in())? };
        if !ok {
            return Err(Error::new(
                ErrorKind::Full,
                format!("{disp}: {} entries do not fit in a new map (arena capacity {})", live.len(), l.arena_cap),
            ));
        }
    }
    if m.len() != live.len() as u64 {
        return Err(Error::format(format!(
            "{disp}: corrupt table (duplicate keys: {} live slots, {} distinct keys)",
            live.len(),
            m.len()
        )));
    }
    m.sync()?;
    drop(m);
    let st = src.stats();
    Ok((
        Report {
            source_version: 1,
            variant,
            entries: live.len() as u64,
            expired,
            lru_intact: true,
            arena_cap: l.arena_cap,
        },
        Carry {
            evictions: st.evictions,
            expired: st.expired + expired,
            recoveries: st.recoveries,
            sealed,
            shard: c_routing.then_some((index, count)),
        },
    ))
}

/// What the caller writes into the new file after the build.
pub(super) struct Carry {
    pub evictions: u64,
    pub expired: u64,
    pub recoveries: u64,
    pub sealed: bool,
    /// C-routed shard fields (index, count) to restore.
    pub shard: Option<(u32, u32)>,
}
