//! Where a map's memory comes from: a file (create-or-attach), an anonymous shared
//! mapping, a memfd, or a descriptor passed in. Also the [`Mapping`] type through which
//! every other module touches the shared memory, one naturally aligned atomic at a time.
//!
//! This layer knows nothing of what lives in the mapping: how big a new map is, how it
//! is initialised and how an existing one is checked is the caller's [`Format`]
//! (map/format.rs for our maps). What it does own is the file protocol around them:
//! create-or-attach with `O_EXCL`, initialisation serialised by `flock`, refusal of
//! files owned by others, recovery of an interrupted create, and the space check of
//! decisions 8.

use crate::error::{errno, Error, Result};
use crate::layout::{self, HEADER_SIZE, PAGE};
use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI16, AtomicI32, AtomicI64, AtomicU16, AtomicU32, AtomicU64};

/// How a map is backed (the C ABI's HM_BACK_* values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backing {
    /// A file at a path: created or attached.
    File,
    /// Anonymous shared memory (a memfd whose descriptor the handle keeps to itself),
    /// shared with children forked later.
    Anon,
    /// A memfd kept open (its descriptor can be passed to other processes).
    Memfd,
    /// A descriptor the caller passes (memfd or regular file holding a map).
    Fd,
}

/// A shared read-write mapping of a whole map, plus the descriptors kept for it.
/// Unmapped and closed on drop.
///
/// A read-write mapping keeps the open file description it was mapped through: the
/// handle's own (liveness.rs: its byte locks prove the handle alive to other processes),
/// opened for this mapping only and never shown to the caller. Memfd and descriptor
/// backings also keep a *public* descriptor (`memfd()`), another description of the same
/// file, which the caller may pass on: a descriptor other processes can hold must never
/// carry our locks. Read-only mappings keep no descriptor. Space is reserved through the
/// handle's own description ([`Mapping::reserve`]).
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    fd: Option<OwnedFd>,
    public: Option<OwnedFd>,
}

// SAFETY: the mapping is plain shared memory that every process and thread accesses
// only through atomics (or, for the holder of the write lock, plain reads of bytes no
// one writes concurrently); the pointer itself is never mutated after creation.
unsafe impl Send for Mapping {}
// SAFETY: as above; all methods take &self and access memory through atomics.
unsafe impl Sync for Mapping {}

macro_rules! atomic_at {
    ($name:ident, $ty:ty, $w:expr) => {
        /// The naturally aligned atomic at byte offset `off` (must be in bounds and
        /// aligned; callers compute offsets from the validated layout).
        #[inline(always)]
        pub fn $name(&self, off: usize) -> &$ty {
            debug_assert!(off % $w == 0 && off + $w <= self.len, "offset {off} out of the mapping");
            // SAFETY: off + width is within the mapping (checked by the caller's layout
            // arithmetic, asserted in debug builds) and aligned to the width (all
            // regions are page aligned and fields naturally aligned within them); the
            // mapping lives as long as &self and is only accessed atomically.
            unsafe { &*(self.ptr.as_ptr().add(off) as *const $ty) }
        }
    };
}

impl Mapping {
    /// Maps `len` bytes of `fd` shared read-write.
    fn map_fd(fd: RawFd, len: usize) -> std::result::Result<Mapping, i32> {
        Mapping::map_prot(fd, len, libc::PROT_READ | libc::PROT_WRITE)
    }

    /// Maps `len` bytes of `fd` shared with protection `prot`. A PROT_READ mapping
    /// (new_readonly) may only ever be loaded from: the handle using it never locks,
    /// marks or reclaims anything (map.rs `ro`).
    fn map_prot(fd: RawFd, len: usize, prot: libc::c_int) -> std::result::Result<Mapping, i32> {
        // SAFETY: a fresh mapping at an address the kernel chooses; no existing memory
        // is affected. The result is checked against MAP_FAILED.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, libc::MAP_SHARED, fd, 0) };
        if p == libc::MAP_FAILED {
            return Err(errno());
        }
        Ok(Mapping { ptr: NonNull::new(p.cast()).expect("mmap returned NULL"), len, fd: None, public: None })
    }

    /// Base address.
    #[inline]
    pub fn base(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
    /// Length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }
    /// Never empty (maps are at least a header page); for clippy.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The handle's own description this read-write mapping was made through (the one
    /// that holds its liveness locks); None for read-only mappings.
    pub fn fd(&self) -> Option<RawFd> {
        self.fd.as_ref().map(|f| f.as_raw_fd())
    }

    /// Reserves the file space under `[off, off + len)` (decisions 19: space is
    /// reserved before it is touched, so that no later store into the mapping can fault
    /// for lack of space): fallocate(mode 0) on the kept descriptor, which allocates the
    /// blocks (or tmpfs pages) without changing the contents or the size. Err(errno):
    /// ENOSPC, EDQUOT... A file system that cannot reserve (EOPNOTSUPP, and read-only
    /// handles, which keep no writable descriptor and never write) counts as success:
    /// there is nothing better to do there.
    ///
    /// The range is widened to whole pages (fallocate changes no contents, so this is
    /// harmless): ext4 reserves a partly covered block, yet a store into its page
    /// through the mapping can still fault.
    ///
    /// `--cfg hms_no_reserve` (RUSTFLAGS) turns this into a no-op: for measuring what
    /// reservation costs (bench/reserve.pl --baseline against such a build, issue 14),
    /// never for use: without it a full file system means SIGBUS again.
    pub fn reserve(&self, off: usize, len: usize) -> std::result::Result<(), i32> {
        if cfg!(hms_no_reserve) {
            return Ok(());
        }
        let start = off / PAGE * PAGE;
        let end = layout::round_up(off + len, PAGE).min(self.len);
        if end <= start {
            return Ok(());
        }
        let Some(fd) = &self.fd else { return Ok(()) };
        Mapping::fallocate(fd.as_raw_fd(), start, end - start)
    }

    /// fallocate(mode 0) of `[off, off + len)`, retried on EINTR; file systems that
    /// cannot reserve count as success (see [`Mapping::reserve`]).
    fn fallocate(fd: RawFd, off: usize, len: usize) -> std::result::Result<(), i32> {
        loop {
            // SAFETY: fallocate on a descriptor we own; mode 0 inside the file's size
            // only allocates blocks, it changes neither the contents nor the size.
            let rc = unsafe { libc::fallocate(fd, 0, off as libc::off_t, len as libc::off_t) };
            if rc == 0 {
                return Ok(());
            }
            match errno() {
                libc::EINTR => continue,
                libc::EOPNOTSUPP | libc::ENOSYS | libc::EBADF => return Ok(()),
                e => return Err(e),
            }
        }
    }
    /// The descriptor the caller may see and pass on (memfd / fd backings), if any.
    pub fn public_fd(&self) -> Option<RawFd> {
        self.public.as_ref().map(|f| f.as_raw_fd())
    }

    atomic_at!(u16, AtomicU16, 2);
    atomic_at!(u32, AtomicU32, 4);
    atomic_at!(u64, AtomicU64, 8);
    atomic_at!(i16, AtomicI16, 2);
    atomic_at!(i32, AtomicI32, 4);
    atomic_at!(i64, AtomicI64, 8);

    /// Plain view of `len` bytes at `off`, for the holder of the write lock only: no
    /// one writes these bytes while it holds the lock (readers only read), so a plain
    /// read cannot race with a write. Panics if out of bounds.
    pub fn bytes_locked(&self, off: usize, len: usize) -> &[u8] {
        assert!(off <= self.len && len <= self.len - off, "range out of the mapping");
        // SAFETY: in bounds (asserted); the caller holds the write lock, so nobody
        // writes the range while the slice lives (see above).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(off), len) }
    }

    /// Gives the pages entirely inside `[off, off + len)` back to the OS (decisions 7):
    /// fallocate(PUNCH_HOLE | KEEP_SIZE) on the descriptor when we keep one, else
    /// madvise(MADV_REMOVE) on the mapping. The range reads as zeros afterwards.
    /// Returns false if the kernel refused (the range keeps its old contents).
    pub fn release(&self, off: usize, len: usize) -> bool {
        let start = layout::round_up(off, PAGE);
        let end = (off + len).min(self.len) / PAGE * PAGE;
        if end <= start {
            return true;
        }
        let rc = match &self.fd {
            // SAFETY: fallocate on a descriptor we own; the range is inside the file
            // (the file is at least as long as the mapping) and KEEP_SIZE keeps its size.
            Some(fd) => unsafe {
                libc::fallocate(
                    fd.as_raw_fd(),
                    libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                    start as libc::off_t,
                    (end - start) as libc::off_t,
                )
            },
            // SAFETY: the page-aligned range lies inside our shared mapping; MADV_REMOVE
            // frees the backing store and later reads see zeros, which every reader of
            // these regions tolerates (they are unused, or validated under seqlock).
            None => unsafe { libc::madvise(self.ptr.as_ptr().add(start).cast(), end - start, libc::MADV_REMOVE) },
        };
        rc == 0
    }

    /// msync(MS_SYNC) of the whole mapping, retried on EINTR. Err(errno) on failure.
    pub fn sync(&self) -> std::result::Result<(), i32> {
        loop {
            // SAFETY: the range is exactly our mapping.
            let rc = unsafe { libc::msync(self.ptr.as_ptr().cast(), self.len, libc::MS_SYNC) };
            if rc == 0 {
                return Ok(());
            }
            let e = errno();
            if e != libc::EINTR {
                return Err(e);
            }
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the region we mapped; nothing borrows it any more
        // (every borrow is tied to &self). The fd (if any) closes after this.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// What a map's format tells the mapping layer (see the module docs).
pub trait Format {
    /// What checking or creating a map found out (geometry, seed...).
    type Info;
    /// Bytes a new map takes.
    fn new_size(&self) -> usize;
    /// Initialises a new map in zero-filled `map` (nobody else can see it yet),
    /// reserving the space it touches ([`Mapping::reserve`]) and publishing it last.
    /// Err(errno) when the space cannot be reserved.
    fn init(&self, map: &Mapping) -> std::result::Result<Self::Info, i32>;
    /// Checks the head (up to [`HEADER_SIZE`] bytes) of an existing map of `size` bytes
    /// called `what` in messages; returns what it found and how many bytes to map.
    /// `readonly`: for a read-only open (`new_readonly`), which has its own conditions.
    fn check(&self, head: &[u8], size: u64, what: &str, readonly: bool) -> Result<(Self::Info, usize)>;
    /// Checks an existing map once mapped read-write, before anyone uses it.
    fn check_mapped(&self, map: &Mapping, what: &str) -> Result<()>;
}

/// What to open.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Backing kind.
    pub backing: Backing,
    /// File: the path. Memfd: the name (None = "hashmap").
    pub path: Option<CString>,
    /// Fd backing: the descriptor to duplicate.
    pub fd: RawFd,
    /// Permission bits of a newly created file.
    pub file_mode: u32,
}

/// Opens (creating or attaching) the map described by `spec`, of format `f`.
pub fn open<F: Format>(spec: &Spec, f: &F) -> Result<(Mapping, F::Info)> {
    match spec.backing {
        Backing::File => {
            let path = spec.path.as_ref().ok_or_else(|| Error::arg("a path is required"))?;
            open_file(path, spec, f)
        }
        Backing::Anon => open_memfd(c"hashmap-anon", f, false),
        Backing::Memfd => {
            let name = spec.path.clone().unwrap_or_else(|| c"hashmap".to_owned());
            open_memfd(&name, f, true)
        }
        Backing::Fd => open_fd(spec.fd, f),
    }
}

fn disp(p: &CStr) -> String {
    String::from_utf8_lossy(p.to_bytes()).into_owned()
}

/// An owned descriptor from a libc return value.
fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: fd was just returned by a successful open/memfd_create/fcntl and is owned
    // by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

pub(crate) fn fstat(fd: RawFd) -> std::result::Result<libc::stat, i32> {
    // SAFETY: an all-zero stat is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid out pointer.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(errno());
    }
    Ok(st)
}

/// What `st_mode` says a file is, for messages: "a FIFO", "a socket", ...
pub(crate) fn file_kind(mode: libc::mode_t) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFREG => "a regular file",
        libc::S_IFDIR => "a directory",
        libc::S_IFIFO => "a FIFO",
        libc::S_IFSOCK => "a socket",
        libc::S_IFCHR => "a character device",
        libc::S_IFBLK => "a block device",
        libc::S_IFLNK => "a symbolic link",
        _ => "a file of unknown type",
    }
}

/// Why [`open_regular`] failed.
pub(crate) enum OpenFail {
    /// open(2) or fstat(2) failed with this errno.
    Errno(i32),
    /// The path names something other than a regular file (this kind, see [`file_kind`]).
    NotRegular(&'static str),
}

impl OpenFail {
    /// The engine error: `errno_what` prefixes an errno's text ("open(PATH)"); a special
    /// file gives "PATH: not a regular file (a FIFO)".
    pub(crate) fn error(self, errno_what: impl std::fmt::Display, p: &str) -> Error {
        match self {
            OpenFail::Errno(e) => Error::io(errno_what, e),
            OpenFail::NotRegular(kind) => Error::arg(format!("{p}: not a regular file ({kind})")),
        }
    }
}

/// Opens `path` (`flags` | `O_NOFOLLOW` | `O_CLOEXEC` | `O_NONBLOCK`; `mode` for
/// `O_CREAT`) and refuses anything but a regular file (a memfd is one too). Every open
/// of a map path goes through here, so no path can make an open hang or hand us a
/// FIFO, socket, directory or device:
/// - `O_NONBLOCK`: opening a FIFO for reading would wait for a writer forever (and
///   reading one opened read-write would too); with it, the open returns and the
///   `fstat` below refuses the FIFO. On a regular file the flag changes nothing we
///   use: reads, writes and fallocate (the descriptor a mapping keeps, for reserving
///   space) of regular files never block on Linux. (The one effect: a file under another
///   process's lease (`F_SETLEASE`) fails with EWOULDBLOCK instead of waiting for
///   the lease break.)
/// - A path open(2) refuses because of what it is (a socket: ENXIO, a directory opened
///   for writing: EISDIR, ...) is reported by kind too: `lstat` tells, for the message
///   only. Symbolic links keep their ELOOP (api.md: `O_NOFOLLOW`).
pub(crate) fn open_regular(
    path: &CStr,
    flags: libc::c_int,
    mode: u32,
) -> std::result::Result<(OwnedFd, libc::stat), OpenFail> {
    let all = flags | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK;
    // SAFETY: path is NUL-terminated; mode is passed as the variadic mode_t (ignored
    // without O_CREAT).
    let fd = unsafe { libc::open(path.as_ptr(), all, mode as libc::c_uint) };
    if fd < 0 {
        let e = errno();
        if e != libc::EEXIST && e != libc::ENOENT {
            // SAFETY: an all-zero stat is a valid value to be overwritten.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            // SAFETY: path is NUL-terminated; st is a valid out pointer.
            if unsafe { libc::lstat(path.as_ptr(), &mut st) } == 0 {
                let t = st.st_mode & libc::S_IFMT;
                if t != libc::S_IFREG && t != libc::S_IFLNK {
                    return Err(OpenFail::NotRegular(file_kind(st.st_mode)));
                }
            }
        }
        return Err(OpenFail::Errno(e));
    }
    let fd = owned(fd);
    let st = fstat(fd.as_raw_fd()).map_err(OpenFail::Errno)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(OpenFail::NotRegular(file_kind(st.st_mode)));
    }
    Ok((fd, st))
}

fn euid() -> u32 {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() }
}

/// Reads up to HEADER_SIZE bytes from offset 0.
fn read_head(fd: RawFd, size: u64) -> std::result::Result<Vec<u8>, i32> {
    let want = (size.min(HEADER_SIZE as u64)) as usize;
    let mut buf = vec![0u8; want];
    let mut got = 0;
    while got < want {
        // SAFETY: buf[got..want] is writable.
        let n = unsafe { libc::pread(fd, buf.as_mut_ptr().add(got).cast(), want - got, got as libc::off_t) };
        if n < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            break;
        }
        got += n as usize;
    }
    buf.truncate(got);
    Ok(buf)
}

/// Is the whole file zero bytes?
fn all_zero(fd: RawFd, size: u64) -> std::result::Result<bool, i32> {
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0u64;
    while pos < size {
        let want = ((size - pos) as usize).min(buf.len());
        // SAFETY: buf[..want] is writable.
        let n = unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), want, pos as libc::off_t) };
        if n < 0 {
            let e = errno();
            if e == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            break;
        }
        if buf[..n as usize].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        pos += n as u64;
    }
    Ok(true)
}

/// flock(LOCK_EX), retried on EINTR.
pub(crate) fn flock_ex(fd: RawFd) -> std::result::Result<(), i32> {
    loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(fd, libc::LOCK_EX) } == 0 {
            return Ok(());
        }
        let e = errno();
        if e != libc::EINTR {
            return Err(e);
        }
    }
}

fn ftruncate(fd: RawFd, len: usize) -> std::result::Result<(), i32> {
    loop {
        // SAFETY: ftruncate on a descriptor we own.
        if unsafe { libc::ftruncate(fd, len as libc::off_t) } == 0 {
            return Ok(());
        }
        let e = errno();
        if e != libc::EINTR {
            return Err(e);
        }
    }
}

/// decisions 8: refuse to create a map the filesystem has no room for, instead of
/// dying of SIGBUS later. Filesystems that report no block counts are not checked.
fn check_space(fd: RawFd, need: usize, prefix: &str) -> Result<()> {
    // SAFETY: an all-zero statvfs is a valid value to be overwritten.
    let mut sv: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: sv is a valid out pointer.
    if unsafe { libc::fstatvfs(fd, &mut sv) } != 0 || sv.f_blocks == 0 {
        return Ok(());
    }
    let avail = (sv.f_bavail as u128 * sv.f_frsize as u128).min(u64::MAX as u128) as u64;
    if (need as u64) > avail {
        return Err(Error::new(
            crate::ErrorKind::Io,
            format!("{prefix}: not enough space for the map (need {need} bytes, {avail} available)"),
        ));
    }
    Ok(())
}

fn open_file<F: Format>(path: &CStr, spec: &Spec, f: &F) -> Result<(Mapping, F::Info)> {
    let p = disp(path);
    let mode = spec.file_mode & 0o7777;
    for _ in 0..100 {
        let (fd, created) = match open_regular(path, libc::O_RDWR | libc::O_CREAT | libc::O_EXCL, mode) {
            Ok((fd, _)) => {
                // Exactly the requested mode, whatever the umask (api.md 3.1).
                // SAFETY: fchmod on a descriptor we own.
                if unsafe { libc::fchmod(fd.as_raw_fd(), mode as libc::mode_t) } != 0 {
                    return Err(Error::io(format!("fchmod({p})"), errno()));
                }
                (fd, true)
            }
            Err(OpenFail::Errno(libc::EEXIST)) => match open_regular(path, libc::O_RDWR, 0) {
                Ok((fd, _)) => (fd, false),
                // removed between our two opens: race again
                Err(OpenFail::Errno(libc::ENOENT)) => continue,
                Err(f) => return Err(f.error(format!("open({p})"), &p)),
            },
            Err(f) => return Err(f.error(format!("create({p})"), &p)),
        };
        let raw = fd.as_raw_fd();
        // Serialises initialisation between processes; held only while opening. It must
        // be dropped explicitly: the mapping keeps the open file description (and so a
        // flock) alive after the descriptor is closed.
        flock_ex(raw).map_err(|e| Error::io(format!("flock({p})"), e))?;
        let _unlock = Unlock(raw);
        let st = fstat(raw).map_err(|e| Error::io(format!("fstat({p})"), e))?;
        if st.st_nlink == 0 {
            continue; // unlinked while we waited for the lock: start over
        }
        if st.st_size == 0 {
            if st.st_uid != euid() {
                return Err(Error::format(format!("{p}: refusing to initialize file not owned by us")));
            }
            let r = create_in(&fd, &p, f, true);
            if r.is_err() && created {
                // Leave no empty file behind (we still hold its flock: nobody attached).
                // SAFETY: path is NUL-terminated.
                unsafe { libc::unlink(path.as_ptr()) };
            }
            // The mapping keeps a duplicate (this handle's own description); `fd` is
            // closed after `_unlock` (declared later, dropped first) has released the
            // flock.
            return r;
        }
        // As above: the mapping keeps a duplicate of this handle's own description.
        return attach_file(&fd, &p, spec, &st, f);
    }
    Err(Error::new(crate::ErrorKind::Io, format!("open({p}): create/attach kept racing")))
}

/// Releases the flock taken while opening (also on error paths).
struct Unlock(RawFd);

impl Drop for Unlock {
    fn drop(&mut self) {
        // SAFETY: flock on a descriptor that outlives this guard (declared before it).
        unsafe { libc::flock(self.0, libc::LOCK_UN) };
    }
}

/// Sizes (unless `resize` is false: the file already has the right size), maps and
/// initialises a new map in `fd` (which the caller then gives to the mapping).
fn create_in<F: Format>(fd: &OwnedFd, p: &str, f: &F, resize: bool) -> Result<(Mapping, F::Info)> {
    let size = f.new_size();
    if resize {
        check_space(fd.as_raw_fd(), size, p)?;
        ftruncate(fd.as_raw_fd(), size).map_err(|e| Error::io(format!("ftruncate({p}, {size})"), e))?;
    }
    // The mapping keeps a duplicate of `fd` (the same open file description: the
    // handle's own) before `init`, which reserves space through it; the caller closes
    // `fd` after releasing the flock.
    let map = Mapping::map_fd(fd.as_raw_fd(), size).map_err(|e| Error::io(format!("mmap({p})"), e))?;
    let map = map.keeping(dup(fd).map_err(|e| Error::io(format!("dup({p})"), e))?);
    let info = f.init(&map).map_err(|e| Error::io(p.to_string(), e))?;
    Ok((map, info))
}

/// A second descriptor of the same open file description (kept by the mapping, while
/// the opener's own one goes on holding the flock until it is released explicitly).
fn dup(fd: &OwnedFd) -> std::result::Result<OwnedFd, i32> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) on a descriptor we own.
    let d = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    if d < 0 {
        return Err(errno());
    }
    Ok(owned(d))
}

fn attach_file<F: Format>(fd: &OwnedFd, p: &str, spec: &Spec, st: &libc::stat, f: &F) -> Result<(Mapping, F::Info)> {
    let raw = fd.as_raw_fd();
    let size = st.st_size as u64;
    let head = read_head(raw, size).map_err(|e| Error::io(format!("read({p})"), e))?;
    if head.len() >= 8 && head[..8] == [0; 8] {
        // Interrupted-create recovery (api.md 3.1): a file of exactly the size a new map
        // would have, owned by us, whose magic was never written. All zero: nobody
        // initialised it, do it now.
        if size == f.new_size() as u64 && st.st_uid == euid() {
            if all_zero(raw, size).map_err(|e| Error::io(format!("read({p})"), e))? {
                let mode = spec.file_mode & 0o7777;
                // SAFETY: fchmod on a descriptor we own.
                if unsafe { libc::fchmod(raw, mode as libc::mode_t) } != 0 {
                    return Err(Error::io(format!("{p}: fchmod"), errno()));
                }
                return create_in(fd, p, f, false);
            }
            return Err(Error::format(format!(
                "{p}: incomplete map file left by an interrupted create; remove it and retry"
            )));
        }
    }
    let (info, len) = f.check(&head, size, p, false)?;
    let map = Mapping::map_fd(raw, len).map_err(|e| Error::io(format!("mmap({p})"), e))?;
    let map = map.keeping(dup(fd).map_err(|e| Error::io(format!("dup({p})"), e))?);
    f.check_mapped(&map, p)?;
    Ok((map, info))
}

/// Opens a map file read-only (api.md 3.5): `O_RDONLY`, no flock (the file may belong
/// to someone else and be mode 0444), checked by `f` as a read-only open, mapped
/// PROT_READ; the descriptor is closed (read-only handles never lock).
pub fn open_readonly<F: Format>(path: &CStr, f: &F) -> Result<(Mapping, F::Info)> {
    let p = disp(path);
    let (fd, st) = open_regular(path, libc::O_RDONLY, 0).map_err(|f| f.error(format!("open({p})"), &p))?;
    let size = st.st_size.max(0) as u64;
    let head = read_head(fd.as_raw_fd(), size).map_err(|e| Error::io(format!("read({p})"), e))?;
    let (info, len) = f.check(&head, size, &p, true)?;
    let map = Mapping::map_prot(fd.as_raw_fd(), len, libc::PROT_READ).map_err(|e| Error::io(format!("mmap({p})"), e))?;
    Ok((map, info))
}

impl Mapping {
    /// This mapping, keeping `fd` (the description it was mapped through).
    fn keeping(mut self, fd: OwnedFd) -> Mapping {
        self.fd = Some(fd);
        self
    }
}

/// A description of our own of the file behind `fd` (liveness.rs), as an owned descriptor.
fn own_description(fd: &OwnedFd, what: &str) -> Result<OwnedFd> {
    crate::liveness::reopen(fd.as_raw_fd()).map(owned).map_err(|e| {
        Error::io(format!("{what}: opening a description of our own through /proc/self/fd"), e)
    })
}

fn open_memfd<F: Format>(name: &CStr, f: &F, keep: bool) -> Result<(Mapping, F::Info)> {
    let anon = !keep;
    // SAFETY: name is NUL-terminated.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(Error::io("memfd_create", errno()));
    }
    let fd = owned(fd);
    let size = f.new_size();
    ftruncate(fd.as_raw_fd(), size).map_err(|e| {
        if anon {
            Error::io(format!("ftruncate(anon, {size})"), e)
        } else {
            Error::io("ftruncate", e)
        }
    })?;
    if keep {
        // Best effort (api.md 3.3): the size can no longer change under other processes.
        // SAFETY: fcntl on a descriptor we own.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, libc::F_SEAL_SHRINK | libc::F_SEAL_GROW) };
    }
    // An anonymous map's memfd is ours alone: it is the handle's own description. A
    // memfd map's is public (memfd()): the handle maps and locks through another one.
    let (own, public) = if keep { (own_description(&fd, "memfd")?, Some(fd)) } else { (fd, None) };
    let mut map = Mapping::map_fd(own.as_raw_fd(), size)
        .map_err(|e| Error::io(if anon { "mmap(anon)" } else { "mmap" }, e))?
        .keeping(own);
    map.public = public;
    // After `keeping`: init reserves space through the kept description.
    let info = f.init(&map).map_err(|e| Error::io(if anon { "anon" } else { "memfd" }, e))?;
    Ok((map, info))
}

fn open_fd<F: Format>(fd: RawFd, f: &F) -> Result<(Mapping, F::Info)> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) on whatever descriptor the caller passed; an
    // invalid one fails with EBADF.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        return Err(Error::io("fcntl", errno()));
    }
    let fd = owned(dup);
    let st = fstat(fd.as_raw_fd()).map_err(|e| Error::io("fstat", e))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        // A FIFO or socket would give a confusing "file too small", a directory a read error.
        return Err(Error::arg(format!("fd: not a regular file ({})", file_kind(st.st_mode))));
    }
    let size = st.st_size.max(0) as u64;
    let head = read_head(fd.as_raw_fd(), size).map_err(|e| Error::io("fd: read", e))?;
    let (info, len) = f.check(&head, size, "fd", false)?;
    // A read-write map needs a read-write descriptor (api.md 3.4: mapping a read-only one
    // fails), even though our own description is opened anew below.
    // SAFETY: fcntl(F_GETFL) on a descriptor we own.
    let mode = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) } & libc::O_ACCMODE;
    if mode != libc::O_RDWR {
        return Err(Error::io("mmap", libc::EACCES));
    }
    // The duplicate is public (memfd()): the handle maps and locks through a description
    // of its own, never one the caller (or whoever passed the descriptor) shares.
    let own = own_description(&fd, "fd")?;
    let mut map = Mapping::map_fd(own.as_raw_fd(), len).map_err(|e| Error::io("mmap", e))?;
    f.check_mapped(&map, "this map")?;
    map.public = Some(fd);
    Ok((map.keeping(own), info))
}
