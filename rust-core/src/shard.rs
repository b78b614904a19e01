//! Sharded maps (api.md 3.2, 7.7; decisions 2 and 4): a set of independent maps in
//! files `PREFIX.0 .. PREFIX.N-1` behind one handle. Every key lives in one shard,
//! chosen by hash bits that are independent of the bits that pick its slot, so
//! per-key operations lock only that shard and writes to different shards run in
//! parallel.
//!
//! # What every shard file records
//!
//! Its index and the shard count (header fields 68 / 72), and the set's routing seed:
//! all shards of a set share one hash seed (shard 0's, random at creation), and a key's
//! shard is bits 40..51 of its seeded hash ([`crate::hash::shard_of`]); its slot inside
//! the shard comes from the low bits and its control byte from the top 7 bits of the
//! same hash, so the three never correlate. Opening checks every file against the
//! call and against shard 0 and croaks (messages start with the shard's path):
//!
//! - "PREFIX.i: shard set has C shards, opened with N" (another count),
//! - "PREFIX.i: is shard J of its set, expected shard i" (files renamed or mixed),
//! - "PREFIX.i: belongs to another shard set (routing differs from PREFIX.0)".
//!
//! # Shards upgraded from the C implementation
//!
//! The C implementation routed a key to `(u32)xxh3_64(bytes) & (N-1)` (unseeded; int
//! keys as their 8-byte little-endian int64) and recorded nothing about the set in
//! its files. `upgrade_file` converts one file at a time and cannot know its index,
//! so it marks the new file "C routing, shard count not known" (flag
//! [`FLAG_C_ROUTING`], count 0). The first `new_sharded(PREFIX, N)` that opens such a
//! file records index i and count N in it (under the file's flock, before mapping it;
//! later opens check them as above) and the set keeps routing with the C function, so
//! every key is found in the shard the C implementation put it in. Slot hashing inside
//! each shard stays seeded. Such a set cannot grow new shard files: a missing one
//! croaks "PREFIX.i: missing from a shard set upgraded from the C implementation
//! (upgrade every PREFIX.N file, then open the set)".

use crate::error::{errno, Error, ErrorKind, Result};
use crate::hash::{hash_bytes, hash_int, shard_of};
use crate::layout::{self, off, ShardTag, FLAG_C_ROUTING, HEADER_SIZE, MAX_SHARDS};
use crate::map::{In, Map, Options, Out};
use crate::variant::Kind;
use std::ffi::{CStr, CString};
use std::os::fd::AsRawFd;
use xxhash_rust::xxh3::xxh3_64;

/// How a set maps keys to shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    /// Ours: bits 40..51 of the key's hash under the set's seed.
    Seeded(u64),
    /// The C implementation's: low bits of the unseeded 32-bit XXH3 (upgraded sets).
    C,
}

/// A shard set behind one handle (see the module docs).
pub struct ShardSet {
    maps: Vec<Map>,
    prefix: CString,
    route: Route,
    kk: Kind,
    mask: u32,
    /// pop / shift / drain rotation pointer (per handle, api.md 6.6).
    rot: usize,
    /// The shard this handle's `each` is on.
    each_shard: usize,
}

/// The number of shards for a requested count: 0 -> 1, rounded up to a power of two,
/// at most 4096 (api.md 3.2).
pub fn shard_count(req: u64) -> Result<u32> {
    if req > u32::MAX as u64 {
        return Err(Error::arg(format!("num_shards {req} exceeds the maximum of 4294967295")));
    }
    if req > MAX_SHARDS as u64 {
        return Err(Error::arg(format!("num_shards {req} exceeds the maximum of {MAX_SHARDS}")));
    }
    Ok((req as u32).max(1).next_power_of_two())
}

impl ShardSet {
    /// Opens (creating what is missing) the set `prefix` of `shards` shards (rounded as
    /// `shard_count`) with the sizing of `o` per shard (`o.backing` / `o.path` are
    /// ignored: shards are files).
    pub fn open(prefix: &CStr, shards: u64, o: &Options) -> Result<ShardSet> {
        let n = shard_count(shards)?;
        let pre = String::from_utf8_lossy(prefix.to_bytes()).into_owned();
        let path_of = |i: u32| -> Result<CString> {
            let mut pb = prefix.to_bytes().to_vec();
            pb.extend_from_slice(format!(".{i}").as_bytes());
            if pb.len() > 4095 {
                return Err(Error::arg("shard path too long"));
            }
            CString::new(pb).map_err(|_| Error::arg("shard path contains a NUL byte"))
        };
        let first = path_of(0)?;
        if unadopted_c(&first) {
            // An upgraded C set opened for the first time: the count it is opened with
            // becomes part of every file, so check it as far as the files tell: all of
            // PREFIX.0 .. PREFIX.N-1 exist and PREFIX.N does not.
            for i in 1..n {
                if !exists(&path_of(i)?) {
                    return Err(Error::format(format!(
                        "{pre}.{i}: missing from a shard set upgraded from the C implementation (upgrade \
                         every {pre}.N file, then open the set with their number)"
                    )));
                }
            }
            if n < MAX_SHARDS && exists(&path_of(n)?) {
                return Err(Error::format(format!(
                    "{pre}.{n} exists: this shard set upgraded from the C implementation has more than {n} \
                     shards; open it with its own count"
                )));
            }
        }
        let mut maps: Vec<Map> = Vec::with_capacity(n as usize);
        let mut route: Option<Route> = None;
        for i in 0..n {
            let p = format!("{pre}.{i}");
            let cpath = path_of(i)?;
            if exists(&cpath) {
                adopt_c_shard(&cpath, i, n)?;
            } else if route == Some(Route::C) {
                return Err(Error::format(format!(
                    "{p}: missing from a shard set upgraded from the C implementation (upgrade every \
                     {pre}.N file, then open the set)"
                )));
            }
            let mut so = o.clone();
            so.backing = crate::Backing::File;
            so.path = Some(cpath);
            so.shard = Some(ShardTag {
                index: i,
                count: n,
                seed: match route {
                    Some(Route::Seeded(s)) => Some(s),
                    _ => None,
                },
            });
            let m = Map::open(&so)?;
            let (idx, cnt, c, seed) = m.shard_header();
            if cnt != n {
                return Err(Error::format(format!("{p}: shard set has {cnt} shards, opened with {n}")));
            }
            if idx != i {
                return Err(Error::format(format!("{p}: is shard {idx} of its set, expected shard {i}")));
            }
            let r = if c { Route::C } else { Route::Seeded(seed) };
            match route {
                None => route = Some(r),
                Some(x) if x == r => {}
                Some(_) => {
                    return Err(Error::format(format!(
                        "{p}: belongs to another shard set (routing differs from {pre}.0)"
                    )))
                }
            }
            maps.push(m);
        }
        let kk = maps[0].variant().key_kind();
        Ok(ShardSet {
            maps,
            prefix: prefix.to_owned(),
            route: route.unwrap_or(Route::Seeded(0)),
            kk,
            mask: n - 1,
            rot: 0,
            each_shard: 0,
        })
    }

    /// The set's prefix (what `path` reports).
    pub fn prefix(&self) -> &CStr {
        &self.prefix
    }

    /// The shard of `key`.
    #[inline]
    pub fn route(&self, key: In<'_>) -> usize {
        match self.route {
            Route::Seeded(seed) => {
                let h = match key {
                    In::Int(v) => hash_int(self.kk.narrow(v), seed),
                    In::Str(b, _) => hash_bytes(b, seed),
                };
                shard_of(h, self.mask + 1) as usize
            }
            Route::C => {
                let h = match key {
                    In::Int(v) => xxh3_64(&self.kk.narrow(v).to_le_bytes()),
                    In::Str(b, _) => xxh3_64(b),
                };
                (h as u32 & self.mask) as usize
            }
        }
    }

    /// The map holding `key`.
    #[inline]
    pub fn route_mut(&mut self, key: In<'_>) -> &mut Map {
        let i = self.route(key);
        &mut self.maps[i]
    }

    /// Every shard, in index order.
    pub fn maps(&self) -> &[Map] {
        &self.maps
    }

    /// Every shard, in index order.
    pub fn maps_mut(&mut self) -> &mut [Map] {
        &mut self.maps
    }

    /// pop (`shift` false) or shift: tries the shards round-robin from the rotation
    /// pointer, which moves past the shard that gave an entry (api.md 6.6).
    pub fn take_one(&mut self, shift: bool) -> Result<Option<(Out<'_>, Out<'_>)>> {
        let n = self.maps.len();
        for i in 0..n {
            let s = (self.rot + i) % n;
            if self.maps[s].take_one_raw(shift)? {
                self.rot = (s + 1) % n;
                return Ok(self.maps[s].scanned());
            }
        }
        Ok(None)
    }

    /// Removes up to `n` entries (clamped to the total size) in pop order, starting at
    /// the rotation pointer and going on through the following shards; the pointer
    /// then advances by one. Calls `sink` for each.
    pub fn drain_with(&mut self, n: u64, mut sink: impl FnMut(Out<'_>, Out<'_>)) -> Result<u64> {
        for m in &self.maps {
            m.writable_check()?;
        }
        let total: u64 = self.maps.iter().map(|m| m.len()).sum();
        let want = n.min(total);
        let k = self.maps.len();
        let mut got = 0;
        for i in 0..k {
            if got >= want {
                break;
            }
            let s = (self.rot + i) % k;
            got += self.maps[s].drain_with(want - got, &mut sink)?;
        }
        self.rot = (self.rot + 1) % k;
        Ok(got)
    }

    /// `each` chained over the shards in order; the end of the last shard returns None
    /// once and starts over at shard 0.
    pub fn each(&mut self) -> Option<(Out<'_>, Out<'_>)> {
        while self.each_shard < self.maps.len() {
            let s = self.each_shard;
            if self.maps[s].each_raw() {
                return self.maps[s].scanned();
            }
            self.each_shard += 1;
        }
        self.each_shard = 0;
        None
    }

    /// Resets `each` on every shard.
    pub fn iter_reset(&mut self) {
        for m in &mut self.maps {
            m.iter_reset();
        }
        self.each_shard = 0;
    }
}

/// Statistics of a set (api.md 6.8): sums, except size (saturating at 2^32-1), ttl,
/// frozen and readonly (shard 0's), and 64-bit saturating sums elsewhere.
pub fn aggregate(maps: &[Map]) -> crate::map::Stats {
    let mut a = maps[0].stats();
    for m in &maps[1..] {
        let s = m.stats();
        a.size = a.size.saturating_add(s.size);
        a.capacity = a.capacity.saturating_add(s.capacity);
        a.max_entries = a.max_entries.saturating_add(s.max_entries);
        a.tombstones = a.tombstones.saturating_add(s.tombstones);
        a.mmap_size = a.mmap_size.saturating_add(s.mmap_size);
        a.arena_used = a.arena_used.saturating_add(s.arena_used);
        a.arena_cap = a.arena_cap.saturating_add(s.arena_cap);
        a.evictions = a.evictions.saturating_add(s.evictions);
        a.expired = a.expired.saturating_add(s.expired);
        a.recoveries = a.recoveries.saturating_add(s.recoveries);
        a.max_size = a.max_size.saturating_add(s.max_size);
    }
    a.size = a.size.min(u32::MAX as u64);
    a
}

fn exists(p: &CStr) -> bool {
    // SAFETY: an all-zero stat is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: p is NUL-terminated; st is a valid out pointer.
    unsafe { libc::lstat(p.as_ptr(), &mut st) == 0 }
}

/// Is `path` one of our files converted from the C implementation whose shard count
/// is not known yet? (A peek without the flock: adopt_c_shard re-checks under it.)
fn unadopted_c(path: &CStr) -> bool {
    // Not File::open: a FIFO at the path would block it (open_regular refuses it, and
    // Map::open reports it).
    crate::backing::open_regular(path, libc::O_RDONLY, 0)
        .ok()
        .map(|(fd, _)| std::fs::File::from(fd))
        .and_then(|mut f| {
            let mut head = [0u8; off::STATIC_END];
            std::io::Read::read_exact(&mut f, &mut head).ok()?;
            let rd = |o: usize| u32::from_le_bytes(head[o..o + 4].try_into().unwrap());
            Some(head[..8] == layout::MAGIC && rd(off::FLAGS) & FLAG_C_ROUTING != 0 && rd(off::SHARD_COUNT) == 0)
        })
        .unwrap_or(false)
}

/// If `path` is one of our files converted from the C implementation whose shard count
/// is not known yet, records index `i` and count `n` in it (see the module docs). Done
/// under the file's flock, which every open takes while it validates the header, so
/// nobody reads the header half-written. Anything else is left to `Map::open` (which
/// reports unreadable or foreign files).
fn adopt_c_shard(path: &CStr, i: u32, n: u32) -> Result<()> {
    let Ok((fd, _)) = crate::backing::open_regular(path, libc::O_RDWR, 0) else { return Ok(()) };
    let raw = fd.as_raw_fd();
    loop {
        // SAFETY: flock on a descriptor we own (released when it closes).
        if unsafe { libc::flock(raw, libc::LOCK_EX) } == 0 {
            break;
        }
        if errno() != libc::EINTR {
            return Ok(());
        }
    }
    let mut head = vec![0u8; HEADER_SIZE];
    // SAFETY: head is writable for HEADER_SIZE bytes.
    let got = unsafe { libc::pread(raw, head.as_mut_ptr().cast(), HEADER_SIZE, 0) };
    if got != HEADER_SIZE as isize || head[..8] != layout::MAGIC {
        return Ok(());
    }
    let rd = |o: usize| u32::from_le_bytes(head[o..o + 4].try_into().unwrap());
    if rd(off::FLAGS) & FLAG_C_ROUTING == 0 || rd(off::SHARD_COUNT) != 0 {
        return Ok(());
    }
    // The checksum must hold before we vouch for the header with a new one.
    if rd64(&head, off::HDR_CHECK) != layout::header_check(&head) {
        return Ok(());
    }
    layout::set_shard_fields(&mut head, i, n, true);
    // SAFETY: writing the first STATIC_END bytes of head, a valid buffer, at offset 0.
    let w = unsafe { libc::pwrite(raw, head.as_ptr().cast(), off::STATIC_END, 0) };
    if w != off::STATIC_END as isize {
        return Err(Error::new(
            ErrorKind::Io,
            format!(
                "{}: cannot record its shard index: {}",
                String::from_utf8_lossy(path.to_bytes()),
                crate::error::strerror(errno())
            ),
        ));
    }
    Ok(())
}

fn rd64(h: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(h[o..o + 8].try_into().unwrap())
}
