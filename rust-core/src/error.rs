//! The engine's error type: a kind (for programs) and the exact message text the Perl
//! glue shows to users (api.md section 9).

use std::fmt;

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
    /// A feature this engine version does not implement yet.
    Unsupported,
    /// A counter could not insert a new key (table or arena full).
    Full,
    /// A mutator on a frozen map or a read-only handle (api.md 7.9).
    Frozen,
}

/// An error with the user-visible message of api.md section 9.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    msg: String,
}

impl Error {
    /// An error of `kind` with message `msg`.
    pub fn new(kind: ErrorKind, msg: impl Into<String>) -> Error {
        Error { kind, msg: msg.into() }
    }
    /// What went wrong, coarsely.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    /// The message, e.g. "/tmp/x: bad magic (not a HashMap::Shared file)".
    pub fn message(&self) -> &str {
        &self.msg
    }
    pub(crate) fn io(what: impl fmt::Display, errno: i32) -> Error {
        Error::new(ErrorKind::Io, format!("{what}: {}", strerror(errno)))
    }
    pub(crate) fn format(msg: impl Into<String>) -> Error {
        Error::new(ErrorKind::Format, msg)
    }
    pub(crate) fn arg(msg: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidArgument, msg)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Error {}

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
