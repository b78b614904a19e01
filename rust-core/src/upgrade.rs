//! Offline conversion of a file written by the C implementation (formats 9 and 10), or
//! by our own 0.17_01 development release (format version 1, [`v1`]), into our current
//! format (decisions 15; api.md 6.10 for the interface and message style).
//!
//! [`upgrade_file`] reads the source (`O_NOFOLLOW`, never written), parses and validates
//! it with [`crate::cformat`], builds a new map of the same variant in
//! `PATH.upgrade-tmp` (created exclusively, in the same directory) through the engine's
//! public API, inserts every live entry with its exact bytes and UTF-8 flags, carries
//! the statistics over, gives the new file the source's permission bits and group
//! (the group where permitted), fsyncs it and renames it over `PATH` (then fsyncs the
//! directory). On any failure the temporary file is removed and the source is left
//! exactly as it was.
//!
//! What the new map gets from the source:
//! - variant, `max_size`, default `ttl`, `arena_cap` (the C value, so `arena_cap`
//!   reports the same number; see `build` for why the strings always fit);
//! - `max_entries`: the C file does not store the requested value. The C map reported
//!   3/4 of its maximum table capacity and guaranteed that many entries; we request
//!   that number (or the live entry count if larger, since a C table can fill all its
//!   slots). Our map guarantees at least what is requested (decisions 3) and reports
//!   7/8 of its own capacity, e.g. 112 for a C map that reported 96; its table is no
//!   larger than the C one;
//! - `lru_skip`: the stored promotion interval converted back to the percentage that
//!   skips the same share of promotions ([`crate::cformat::lru_skip_percent`]);
//! - statistics: `stat_evictions`, `stat_recoveries` as stored, `stat_expired` as stored
//!   plus the entries dropped because they had expired (below); written into the new
//!   file's statistics fields while it is still private to us;
//! - the freeze seal (C 0.17 `freeze`), stored in our header's seal word;
//! - the C shard routing: every converted file is marked "C routing, shard count not
//!   known" (it may be one shard of a set; see [`crate::shard`]);
//! - LRU maps: the recency order (entries are inserted from the tail to the head, so
//!   the last insert, the C head, is the most recent) and the clock bits (a `get` of
//!   each entry whose bit is set, which is what sets it in both engines);
//! - TTL maps: each entry's remaining time. A C expiry is whole seconds of the writing
//!   machine's CLOCK_MONOTONIC_COARSE; as c-format.md "Expiry values" says, we read it
//!   as if the file was written during this boot: remaining = expiry - now (monotonic,
//!   now). An entry with remaining <= 0 has expired: it is dropped and counted in
//!   `stat_expired`. A live one gets the wall-clock expiry now + remaining (our
//!   expiries are wall-clock, decisions 5). Permanent entries stay permanent. For a
//!   file written before the last reboot this is exactly what the C implementation
//!   itself would do with the file on this boot: the expiries are read on the wrong
//!   timeline (typically entries live longer, as the monotonic clock restarts at boot;
//!   api.md 7.4). Nothing in the file tells the boot it was written on.
//!
//! Not carried over: tombstones, table capacity and slot positions (the new table is
//! built fresh), arena placement, the flush cursor, transient lock/reader state.
//!
//! The source is read into memory whole (its size), so that every check and decode
//! works on a private, bounds-checked copy that nobody can truncate under us.
//!
//! Errors (each message starts with the path, as in api.md 6.10): those of
//! [`crate::cformat::parse`], plus "open PATH: STRERROR", "fstat PATH: …", "read
//! PATH: …", "PATH: not a regular file", "create PATH.upgrade-tmp: …" (with a hint when
//! it already exists), "fchmod PATH.upgrade-tmp: …", "write PATH.upgrade-tmp: …",
//! "fsync PATH.upgrade-tmp: …", "rename PATH.upgrade-tmp -> PATH: …", "PATH: changed
//! while it was being upgraded; nothing was replaced, retry", "PATH.upgrade-tmp:
//! replaced while the upgrade was running; retry", "PATH: N entries do not
//! fit in a new map (…)", "PATH: corrupt table (duplicate keys: …)", "PATH: corrupt
//! header (N live entries, more than max_size M)".

mod v1;

use crate::backing::fstat;
use crate::cformat::{self, CEntry, CFile};
use crate::error::{errno, strerror, Error, ErrorKind, Result};
use crate::layout::off;
use crate::map::Map;
use crate::options::Options;
use crate::value::Value;
use crate::variant::Variant;
use std::ffi::{CString, OsString};
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// Suffix of the temporary file built next to the source.
pub const TMP_SUFFIX: &str = ".upgrade-tmp";

/// What [`upgrade`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The file already is in our current format: nothing was done.
    Current,
    /// The file was converted.
    Converted(Report),
}

/// Details of a conversion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The source's format version: C 9 or 10, or our own 1.
    pub source_version: u32,
    /// The variant.
    pub variant: Variant,
    /// Entries written to the new map.
    pub entries: u64,
    /// Entries dropped because they had expired (also added to `stat_expired`).
    pub expired: u64,
    /// LRU maps: false if the source's recency list was damaged (see
    /// [`crate::cformat::CFile::lru_intact`]).
    pub lru_intact: bool,
    /// The new map's arena capacity argument.
    pub arena_cap: u64,
}

/// Converts the map file at `path` written by the C implementation of
/// Data::HashMap::Shared (its on-disk formats 9 and 10, releases 0.09 to 0.17), or by
/// this crate's format version 1, into this crate's current format, in place and
/// atomically, keeping every entry, expiry, the LRU order and the statistics. Returns
/// true when it was converted, false when it already was current. No process may use
/// the file meanwhile (a file in use is refused). On an error the file is unchanged.
pub fn upgrade_file(path: impl AsRef<Path>) -> Result<bool> {
    Ok(matches!(upgrade(path.as_ref())?, Outcome::Converted(_)))
}

/// `PATH.upgrade-tmp`.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut s: OsString = path.as_os_str().to_owned();
    s.push(TMP_SUFFIX);
    PathBuf::from(s)
}

fn cstr(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| Error::new(ErrorKind::InvalidArgument, format!("{}: path contains a NUL byte", p.display())))
}

pub(crate) fn io_err(what: String, e: i32) -> Error {
    Error::io(what, e)
}

/// Removes the temporary file unless disarmed.
struct TmpGuard {
    path: CString,
    armed: bool,
}

impl Drop for TmpGuard {
    fn drop(&mut self) {
        if self.armed {
            // SAFETY: path is NUL-terminated.
            unsafe { libc::unlink(self.path.as_ptr()) };
        }
    }
}

/// [`upgrade_file`] with details.
pub fn upgrade(path: &Path) -> Result<Outcome> {
    let disp = path.display().to_string();
    let cpath = cstr(path)?;
    // Never blocks (a FIFO planted at PATH), refuses anything but a regular file.
    let (src, st) =
        crate::backing::open_regular(&cpath, libc::O_RDONLY, 0).map_err(|f| f.error(format!("open {disp}"), &disp))?;
    let mut bytes = Vec::with_capacity(st.st_size.max(0) as usize);
    let mut file =
        std::fs::File::from(src.try_clone().map_err(|e| io_err(format!("dup {disp}"), e.raw_os_error().unwrap_or(0)))?);
    file.read_to_end(&mut bytes).map_err(|e| io_err(format!("read {disp}"), e.raw_os_error().unwrap_or(0)))?;
    let ours = bytes.len() >= crate::layout::MAGIC.len() && bytes[..crate::layout::MAGIC.len()] == crate::layout::MAGIC;
    let v1 = ours && bytes.len() >= 12 && u32::from_le_bytes(bytes[8..12].try_into().unwrap()) == 1;
    if ours && !v1 {
        return Ok(Outcome::Current);
    }
    if v1 {
        // Excludes version 1 openers (they flock while opening) until the rename, and
        // reads the file again under the lock: what we check is what we convert.
        crate::backing::flock_ex(src.as_raw_fd()).map_err(|e| io_err(format!("flock {disp}"), e))?;
        bytes.clear();
        let mut f2 = std::fs::File::from(
            src.try_clone().map_err(|e| io_err(format!("dup {disp}"), e.raw_os_error().unwrap_or(0)))?,
        );
        use std::io::Seek;
        f2.seek(std::io::SeekFrom::Start(0)).map_err(|e| io_err(format!("read {disp}"), e.raw_os_error().unwrap_or(0)))?;
        f2.read_to_end(&mut bytes).map_err(|e| io_err(format!("read {disp}"), e.raw_os_error().unwrap_or(0)))?;
    }
    let (tmp, tdisp, ctmp, tfd, mut guard) = create_tmp(path)?;
    let t = tfd.as_raw_fd();
    let report = if v1 {
        let (report, carry) = v1::build(&bytes, &disp, &tmp)?;
        write_carry(t, &tdisp, &carry)?;
        report
    } else {
        convert_c(&bytes, &disp, &tmp, t, &tdisp)?
    };

    // Same group where permitted (chown clears set-id bits, so before the chmod), same
    // permission bits.
    let tst = fstat(t).map_err(|e| io_err(format!("fstat {tdisp}"), e))?;
    if tst.st_gid != st.st_gid {
        // SAFETY: fchown on a descriptor we own; uid -1 keeps the owner.
        let _ = unsafe { libc::fchown(t, u32::MAX as libc::uid_t, st.st_gid) };
    }
    // SAFETY: fchmod on a descriptor we own.
    if unsafe { libc::fchmod(t, st.st_mode & 0o7777) } != 0 {
        return Err(io_err(format!("fchmod {tdisp}"), errno()));
    }
    // SAFETY: fsync on a descriptor we own.
    if unsafe { libc::fsync(t) } != 0 {
        return Err(io_err(format!("fsync {tdisp}"), errno()));
    }

    // Refuse to replace a source that changed under us (someone opened and wrote it,
    // or replaced the file at PATH).
    if source_changed(&src, &st, &cpath, &bytes, if v1 { crate::layout::HEADER_SIZE } else { cformat::HEADER_SIZE }) {
        return Err(Error::new(
            ErrorKind::Io,
            format!("{disp}: changed while it was being upgraded; nothing was replaced, retry"),
        ));
    }
    // The name we rename must still be the file we built and synced.
    if !same_file(&ctmp, &tst) {
        guard.armed = false; // not ours any more: leave it alone
        return Err(Error::new(ErrorKind::Io, format!("{tdisp}: replaced while the upgrade was running; retry")));
    }
    // SAFETY: both paths are NUL-terminated.
    if unsafe { libc::rename(ctmp.as_ptr(), cpath.as_ptr()) } != 0 {
        return Err(io_err(format!("rename {tdisp} -> {disp}"), errno()));
    }
    guard.armed = false;
    sync_dir(path);
    Ok(Outcome::Converted(report))
}

/// Creates `PATH.upgrade-tmp` exclusively (never reusing or clobbering a file we did not
/// make: another upgrade running, or one that was interrupted); the guard removes it
/// unless disarmed. Our engine initialises the empty file.
fn create_tmp(path: &Path) -> Result<(PathBuf, String, CString, OwnedFd, TmpGuard)> {
    let tmp = tmp_path(path);
    let tdisp = tmp.display().to_string();
    let ctmp = cstr(&tmp)?;
    // SAFETY: ctmp is NUL-terminated; the mode is passed as the variadic mode_t.
    let tfd = unsafe {
        libc::open(
            ctmp.as_ptr(),
            libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o600 as libc::c_uint,
        )
    };
    if tfd < 0 {
        let e = errno();
        let mut m = format!("create {tdisp}: {}", strerror(e));
        if e == libc::EEXIST {
            m.push_str(" (left by an interrupted upgrade, or another upgrade is running: remove it and retry)");
        }
        return Err(Error::os(m, e));
    }
    // SAFETY: tfd was just opened and is owned by nobody else.
    let tfd = unsafe { OwnedFd::from_raw_fd(tfd) };
    let guard = TmpGuard { path: ctmp.clone(), armed: true };
    Ok((tmp, tdisp, ctmp, tfd, guard))
}

/// Statistics, seal and C shard fields into the new file (no handle has it open now).
fn write_carry(t: RawFd, tdisp: &str, c: &v1::Carry) -> Result<()> {
    pwrite_all(t, &c.evictions.to_le_bytes(), off::EVICTIONS, tdisp)?;
    pwrite_all(t, &c.expired.to_le_bytes(), off::EXPIRED, tdisp)?;
    pwrite_all(t, &c.recoveries.to_le_bytes(), off::RECOVERIES, tdisp)?;
    if c.sealed {
        pwrite_all(t, &1u32.to_le_bytes(), off::SEALED, tdisp)?;
    }
    if let Some((index, count)) = c.shard {
        let mut head = [0u8; off::STATIC_END];
        // SAFETY: head is writable for its length; t is our descriptor.
        if unsafe { libc::pread(t, head.as_mut_ptr().cast(), head.len(), 0) } != head.len() as isize {
            return Err(io_err(format!("read {tdisp}"), errno()));
        }
        crate::layout::set_shard_fields(&mut head, index, count, true);
        pwrite_all(t, &head, 0, tdisp)?;
    }
    Ok(())
}

/// The C conversion proper: builds the new map in the temporary file from the parsed
/// C file, then its statistics, seal and shard mark.
fn convert_c(bytes: &[u8], disp: &str, tmp: &Path, t: RawFd, tdisp: &str) -> Result<Report> {
    let c = cformat::parse(bytes, disp)?;
    // Entries to write, with their remaining lifetime; expired ones are dropped.
    let now = cformat::now_monotonic_coarse();
    let mut live: Vec<(&CEntry, u64)> = Vec::with_capacity(c.entries.len());
    let mut expired = 0u64;
    for e in &c.entries {
        match cformat::remaining_secs(e.expiry, now) {
            Some(r) => live.push((e, r)),
            None => expired += 1,
        }
    }
    if c.has_lru() && live.len() as u64 > c.header.max_size as u64 {
        // Our inserts would evict: the C map never holds more than max_size entries.
        return Err(Error::new(
            ErrorKind::Format,
            format!("{disp}: corrupt header ({} live entries, more than max_size {})", live.len(), c.header.max_size),
        ));
    }
    let arena_cap = build(&c, &live, tmp, t, disp)?;
    let h = &c.header;
    // The file may be one shard of a C shard set, routed by the C hash, and nothing in
    // it says which: mark it "C routing, shard count not known" (shard.rs explains how
    // new_sharded then adopts it); a plain `new` ignores the mark.
    write_carry(
        t,
        tdisp,
        &v1::Carry {
            evictions: h.stat_evictions,
            expired: h.stat_expired.saturating_add(expired),
            recoveries: h.stat_recoveries as u64,
            sealed: h.sealed != 0,
            shard: Some((0, 0)),
        },
    )?;
    Ok(Report {
        source_version: h.version,
        variant: c.variant,
        entries: live.len() as u64,
        expired,
        lru_intact: c.lru_intact,
        arena_cap,
    })
}

/// Bytes of the arena block a value takes in our engine (0 for ints and inline strings).
fn arena_block(v: &Value) -> u64 {
    match v {
        Value::Str(b, _) if b.len() > crate::strref::MAX_INLINE => b.len().max(16).next_power_of_two() as u64,
        _ => 0,
    }
}

/// Builds the new map in the (empty, exclusively created) temporary file. Returns the
/// arena capacity used.
///
/// The new arena gets the C arena's capacity (or the live strings' total, if a damaged
/// file claims more than that). That always suffices: both engines give a string of
/// n > 7 bytes a block of next_pow2(max(n, 16)) bytes, the C arena held them in
/// arena_cap - 16 bytes, and our buddy arena, fresh and only allocated from (no string
/// is freed while converting a file without duplicate keys), keeps at most one free
/// block per size, so it refuses a block only when less than its size is left. The
/// rebuild with a doubled arena (up to the 4 GiB limit) is a safety net only.
fn build(c: &CFile, live: &[(&CEntry, u64)], tmp: &Path, tfd: RawFd, disp: &str) -> Result<u64> {
    let need: u64 = live.iter().map(|(e, _)| arena_block(&e.key) + arena_block(&e.value)).sum();
    let limit = u32::MAX as u64;
    let mut cap = if c.variant.has_arena() { c.header.arena_cap.max(need.div_ceil(16) * 16).min(limit) } else { 0 };
    let h = &c.header;
    loop {
        let mut o = Options::new(c.max_entries_for_ours()).with_variant(c.variant).file(tmp).arena_cap(cap).file_mode(0o600);
        o.max_size = h.max_size as u64;
        o.ttl = h.default_ttl as u64;
        o.lru_skip = c.lru_skip_percent() as u64;
        let mut m = Map::open(&o)?;
        let mut fits = true;
        for (e, remaining) in live {
            if !insert(&mut m, e, *remaining)? {
                fits = false;
                break;
            }
        }
        if !fits {
            drop(m);
            if cap == 0 || cap >= limit {
                return Err(Error::new(
                    ErrorKind::Full,
                    format!("{disp}: {} entries do not fit in a new map (arena capacity {cap})", live.len()),
                ));
            }
            cap = (cap * 2).min(limit);
            // Back to an empty file, which the next open initialises afresh.
            // SAFETY: ftruncate on a descriptor we own.
            if unsafe { libc::ftruncate(tfd, 0) } != 0 {
                return Err(io_err(format!("ftruncate {}", tmp.display()), errno()));
            }
            continue;
        }
        if c.has_lru() {
            // Clock bits: a get sets an entry's bit without reordering, in both engines.
            for (e, _) in live.iter().filter(|(e, _)| e.accessed) {
                m.get(e.key.as_in())?;
            }
        }
        if m.len() != live.len() as u64 {
            return Err(Error::new(
                ErrorKind::Format,
                format!("{disp}: corrupt table (duplicate keys: {} live slots, {} distinct keys)", live.len(), m.len()),
            ));
        }
        m.sync()?;
        return Ok(cap);
    }
}

/// Writes one entry; false when it did not fit (arena full). On a TTL map the entry
/// gets its remaining seconds (0 = permanent), i.e. the wall-clock expiry now +
/// remaining (the engine clamps TTLs above 4294967293 s, which a u32 expiry minus a
/// positive monotonic time cannot reach anyway).
fn insert(m: &mut Map, e: &CEntry, remaining: u64) -> Result<bool> {
    if m.has_ttl() {
        m.put_ttl(e.key.as_in(), e.value.as_in(), remaining.min(u32::MAX as u64) as u32)
    } else {
        m.put(e.key.as_in(), e.value.as_in())
    }
}

pub(crate) fn pwrite_all(fd: RawFd, b: &[u8], at: usize, disp: &str) -> Result<()> {
    let mut done = 0;
    while done < b.len() {
        // SAFETY: the buffer range is valid for reads; fd is ours.
        let n = unsafe { libc::pwrite(fd, b[done..].as_ptr().cast(), b.len() - done, (at + done) as libc::off_t) };
        if n < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            return Err(io_err(format!("write {disp}"), e));
        }
        if n == 0 {
            return Err(io_err(format!("write {disp}"), libc::EIO));
        }
        done += n as usize;
    }
    Ok(())
}

/// Did the source change since we read it: another file at PATH now, another size, or
/// another header (every C writer bumps the seqlock counter in it)?
fn source_changed(src: &OwnedFd, st: &libc::stat, cpath: &CString, bytes: &[u8], hdr: usize) -> bool {
    let Ok(now) = fstat(src.as_raw_fd()) else { return true };
    if now.st_size != st.st_size {
        return true;
    }
    if !same_file(cpath, st) {
        return true;
    }
    let mut head = vec![0u8; hdr];
    let mut got = 0;
    while got < head.len() {
        // SAFETY: the buffer range is valid for writes; the descriptor is ours.
        let n = unsafe {
            libc::pread(src.as_raw_fd(), head[got..].as_mut_ptr().cast(), head.len() - got, got as libc::off_t)
        };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            return true;
        }
        got += n as usize;
    }
    bytes.get(..hdr) != Some(&head[..])
}

/// Is the file at `p` (not following a symlink) the one `st` describes?
fn same_file(p: &CString, st: &libc::stat) -> bool {
    // SAFETY: an all-zero stat is a valid value to be overwritten.
    let mut l: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: p is NUL-terminated; l is writable.
    unsafe { libc::lstat(p.as_ptr(), &mut l) == 0 && l.st_dev == st.st_dev && l.st_ino == st.st_ino }
}

/// fsync of the directory holding `path`, so the rename is durable (best effort).
fn sync_dir(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Ok(c) = CString::new(dir.into_os_string().into_vec()) else { return };
    // SAFETY: c is NUL-terminated.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if fd >= 0 {
        // SAFETY: fd was just opened; closed right after.
        unsafe {
            libc::fsync(fd);
            libc::close(fd);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmp_path_appends_the_suffix() {
        assert_eq!(tmp_path(Path::new("/a/b.shm")), PathBuf::from("/a/b.shm.upgrade-tmp"));
        assert_eq!(tmp_path(Path::new("x")), PathBuf::from("x.upgrade-tmp"));
    }

    #[test]
    fn arena_blocks() {
        assert_eq!(arena_block(&Value::Int(5)), 0);
        assert_eq!(arena_block(&Value::Str(b"1234567".to_vec(), false)), 0);
        assert_eq!(arena_block(&Value::Str(b"12345678".to_vec(), false)), 16);
        assert_eq!(arena_block(&Value::Str(vec![0; 100], true)), 128);
    }
}
