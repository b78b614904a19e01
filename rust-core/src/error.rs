//! The error type: a kind (for programs), the exact message text the Perl glue shows
//! to users (api.md section 9), and the system's error behind a failed system call.

use std::fmt;
use std::io;
use std::sync::Arc;

/// What went wrong, coarsely. The message carries the details.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A system call failed (open, mmap, ftruncate, msync, ...).
    Io,
    /// The file is not a map of ours, or of another variant/version, or is damaged.
    Format,
    /// An argument is out of range or of the wrong kind.
    InvalidArgument,
    /// A key or value is longer than 1073741823 bytes.
    TooLong,
    /// The map or file cannot do this: a TTL operation on a map created without a
    /// TTL, a C-format file version that `upgrade_file` does not convert.
    Unsupported,
    /// No room: a new key does not fit (the map holds `max_entries` entries, or the
    /// string arena is full), or a new string value does not fit in the arena.
    Full,
    /// A mutator on a frozen map or a read-only handle (api.md 7.9).
    Frozen,
    /// A read-modify-write with a closure ([`Map::update_with`](crate::Map::update_with),
    /// [`Map::alter`](crate::Map::alter), ...) on a map in Redis found the entry changed
    /// by another handle between its read and its write: nothing was written, and
    /// calling again runs the closure on the new value. (The closure runs in this
    /// process, so the server cannot hold the entry for it as a local map's write
    /// lock does.)
    Conflict,
}

/// An error: what kind of thing went wrong, the message Perl users see for it
/// (api.md section 9), and for a failed system call the operating system's error.
///
/// [`Display`](fmt::Display) shows the message, which already ends with the system's
/// text for an I/O error ("open(/x/y.shm): Permission denied");
/// [`source`](std::error::Error::source) returns that I/O error as a
/// [`std::io::Error`], and [`raw_os_error`](Error::raw_os_error) its errno.
///
/// ```
/// use hashmap_shared::{Bytes, ErrorKind, Map, Options};
/// use std::error::Error as _;
///
/// let err = Map::<Bytes, i64>::open(&Options::new(10).file("/nonexistent-dir/x.shm")).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::Io);
/// assert_eq!(err.to_string(), "create(/nonexistent-dir/x.shm): No such file or directory");
/// assert_eq!(err.raw_os_error(), Some(2)); // ENOENT
/// let io = err.source().unwrap().downcast_ref::<std::io::Error>().unwrap();
/// assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
/// ```
#[derive(Clone, Debug)]
pub struct Error {
    kind: ErrorKind,
    msg: String,
    /// The failed system call's error (shared: `Error` is `Clone`, `io::Error` is not).
    os: Option<Arc<io::Error>>,
}

impl Error {
    internal_pub! {
        /// An error of `kind` with message `msg`.
        fn new(kind: ErrorKind, msg: impl Into<String>) -> Error {
            Error { kind, msg: msg.into(), os: None }
        }
    }
    /// What went wrong, coarsely.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    /// The message, e.g. "/tmp/x: bad magic (not a HashMap::Shared file)": the words
    /// the Perl module croaks with.
    pub fn message(&self) -> &str {
        &self.msg
    }
    /// The errno of the failed system call behind an [`ErrorKind::Io`] error, if one.
    pub fn raw_os_error(&self) -> Option<i32> {
        self.os.as_ref().and_then(|e| e.raw_os_error())
    }
    /// An I/O error: "WHAT: STRERROR", keeping `errno`.
    pub(crate) fn io(what: impl fmt::Display, errno: i32) -> Error {
        Error::os(format!("{what}: {}", strerror(errno)), errno)
    }
    /// An I/O error with the message `msg` (which says what failed and why), keeping
    /// `errno`.
    pub(crate) fn os(msg: impl Into<String>, errno: i32) -> Error {
        Error { kind: ErrorKind::Io, msg: msg.into(), os: Some(Arc::new(io::Error::from_raw_os_error(errno))) }
    }
    pub(crate) fn format(msg: impl Into<String>) -> Error {
        Error::new(ErrorKind::Format, msg)
    }
    pub(crate) fn arg(msg: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidArgument, msg)
    }
}

/// Equal when kind, message and errno are.
impl PartialEq for Error {
    fn eq(&self, other: &Error) -> bool {
        self.kind == other.kind && self.msg == other.msg && self.raw_os_error() == other.raw_os_error()
    }
}

impl Eq for Error {}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.os.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// For code that works in `io::Result`: the errno when there is one (so
/// `io::Error::kind` is the system's), else a kind that fits, with the message.
impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        if let Some(n) = e.raw_os_error() {
            return io::Error::new(io::Error::from_raw_os_error(n).kind(), e);
        }
        let kind = match e.kind {
            ErrorKind::InvalidArgument | ErrorKind::TooLong => io::ErrorKind::InvalidInput,
            ErrorKind::Format => io::ErrorKind::InvalidData,
            ErrorKind::Unsupported => io::ErrorKind::Unsupported,
            ErrorKind::Frozen => io::ErrorKind::PermissionDenied,
            ErrorKind::Conflict => io::ErrorKind::Other,
            // (StorageFull and ReadOnlyFilesystem need Rust 1.83.)
            ErrorKind::Full | ErrorKind::Io => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

/// Result with the engine's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The C library's text for `errno` ("No such file or directory"), without Rust's
/// " (os error N)" suffix, so messages read like the C implementation's.
pub(crate) fn strerror(errno: i32) -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buf is writable for its whole length, which we pass; the XSI strerror_r
    // (what the libc crate binds on glibc) NUL-terminates within that length on success.
    let rc = unsafe { libc::strerror_r(errno, buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return format!("Unknown error {errno}");
    }
    let n = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// The calling thread's errno after a failed libc call.
pub(crate) fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}
