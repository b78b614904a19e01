//! Connections: one per server (and URL settings) per process, made lazily, shared by
//! every handle of the process through a registry.
//!
//! The rules the issue sets and how they hold here:
//! - **fork**: a connection remembers the fork generation of the process that opened it
//!   (lock.rs's counter, bumped by a `pthread_atfork` child handler, so telling costs no
//!   getpid(2) per call); a child finds a connection of its parent's, drops it without
//!   using it (a plain close(2) of the child's copy of the descriptor, never shutdown(2),
//!   which would cut the parent's socket too) and opens its own.
//! - **no late reply reaches the next call**: after any failure to read a full reply (a
//!   timeout included) the connection is dropped, never reused.
//! - **a restarted server is reconnected on the next call**: before sending, a connection
//!   idle for [`IDLE_POLL`] or more is polled; readable while idle means the server closed
//!   it (or sent something unasked), so it is dropped and a new one made: the command is
//!   then sent on a connection known to be open and a failure of the old one is no
//!   "outcome unknown". A connection used less than that ago is not polled (a poll(2)
//!   costs ~0.8 us here, 3% of a round trip): no server restarts within it, and a close
//!   that falls in it is what a close just after the poll always was, a failed send (not
//!   run, retried) or an outcome unknown.
//! - **outcome unknown**: a failure before the command was sent ([`Fail::NotSent`]) means
//!   it did not run; one after ([`Fail::Unknown`]) means it may have. Callers retry the
//!   first, and the second only for calls whose repetition changes nothing.

use super::resp::{self, Parse, Reply};
use super::url::{Addr, Auth};
use crate::error::{Error, ErrorKind, Result};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a connection may sit unused before the next call polls it (module docs).
const IDLE_POLL: Duration = Duration::from_millis(1);

/// Why a call failed at the connection level.
#[derive(Debug)]
pub enum Fail {
    /// The command was not sent (it did not run): connect refused, dead connection found
    /// before sending, write failed.
    NotSent(Error),
    /// The command was sent but no complete reply came (it may have run).
    Unknown(Error),
}

impl Fail {
    pub fn error(self) -> Error {
        match self {
            Fail::NotSent(e) | Fail::Unknown(e) => e,
        }
    }
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    #[cfg(feature = "redis-tls")]
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn fd(&self) -> i32 {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
            #[cfg(feature = "redis-tls")]
            Stream::Tls(s) => s.get_ref().as_raw_fd(),
        }
    }
    fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Tcp(s) => s.write_all(b),
            Stream::Unix(s) => s.write_all(b),
            #[cfg(feature = "redis-tls")]
            Stream::Tls(s) => s.write_all(b).and_then(|_| s.flush()),
        }
    }
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(b),
            Stream::Unix(s) => s.read(b),
            #[cfg(feature = "redis-tls")]
            Stream::Tls(s) => s.read(b),
        }
    }
}

/// The client side of TLS for `host`, checking the server's certificate against the
/// CAs of `ca` (a PEM file) or else the system's store.
#[cfg(feature = "redis-tls")]
fn tls_client(host: &str, ca: Option<&str>, addr: &Addr) -> Result<rustls::ClientConnection> {
    use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
    use std::sync::Arc;
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(f) => {
            let certs = CertificateDer::pem_file_iter(f).map_err(|e| err(addr, format!("tls_ca {f}: {e}")))?;
            for c in certs {
                let c = c.map_err(|e| err(addr, format!("tls_ca {f}: {e}")))?;
                roots.add(c).map_err(|e| err(addr, format!("tls_ca {f}: {e}")))?;
            }
        }
        None => {
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(c);
            }
        }
    }
    if roots.is_empty() {
        return Err(err(addr, "TLS: no CA certificate to check the server against (give tls_ca=FILE)"));
    }
    // ring rather than aws-lc-rs (rustls' default, a CMake build): deprecated in rustls
    // 0.23.48 only for lacking post-quantum key exchange, which Redis 7 does not offer.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(addr, format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_string()).map_err(|e| err(addr, format!("TLS: {e}")))?;
    rustls::ClientConnection::new(Arc::new(cfg), name).map_err(|e| err(addr, format!("TLS: {e}")))
}

struct Conn {
    stream: Stream,
    /// Unparsed reply bytes are buf[start..end].
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The fork generation of the process that made it.
    forks: u32,
    /// When the last command was sent.
    used: Instant,
}

/// Settings a connection is made with (part of the registry key: handles with other
/// timeouts or credentials get their own connection).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Settings {
    pub auth: Auth,
    pub timeout: Duration,
    pub connect_timeout: Duration,
}

/// One server's connection slot.
pub struct Link {
    pub addr: Addr,
    set: Settings,
    conn: Option<Conn>,
    wbuf: Vec<u8>,
}

type Registry = Mutex<HashMap<(Addr, Settings), Arc<Mutex<Link>>>>;

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The process's link to `addr` with `set` (created, not connected, on first use).
pub fn link(addr: &Addr, set: &Settings) -> Arc<Mutex<Link>> {
    let mut r = registry().lock().unwrap_or_else(|p| p.into_inner());
    r.entry((addr.clone(), set.clone()))
        .or_insert_with(|| Arc::new(Mutex::new(Link { addr: addr.clone(), set: set.clone(), conn: None, wbuf: Vec::new() })))
        .clone()
}

/// "redis: ADDR: what" (never a password: addresses and server messages only).
pub fn err(addr: &Addr, what: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Io, format!("redis: {addr}: {what}"))
}

impl Link {
    fn io_err(&self, e: &std::io::Error) -> Error {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::WouldBlock | K::TimedOut => err(&self.addr, format!("timed out after {} s", self.set.timeout.as_secs_f64())),
            _ => err(&self.addr, e.to_string().split(" (os error").next().unwrap_or("I/O error")),
        }
    }

    /// An open connection of this process whose server has not closed it.
    fn ready(&mut self) -> std::result::Result<&mut Conn, Fail> {
        let me = crate::lock::fork_generation();
        let now = Instant::now();
        let stale = match &self.conn {
            None => false,
            // A parent's connection: drop our copy (close only) and make our own.
            Some(c) if c.forks != me => true,
            Some(c) => c.start != c.end || (now.duration_since(c.used) >= IDLE_POLL && readable(c.stream.fd())),
        };
        if stale {
            self.conn = None;
        }
        if self.conn.is_none() {
            self.conn = Some(self.connect().map_err(Fail::NotSent)?);
        }
        let c = self.conn.as_mut().expect("connected above");
        c.used = now;
        Ok(c)
    }

    fn connect(&mut self) -> Result<Conn> {
        let stream = match &self.addr {
            Addr::Unix(p) => {
                let s = UnixStream::connect(p).map_err(|e| self.io_err(&e))?;
                s.set_read_timeout(Some(self.set.timeout)).map_err(|e| self.io_err(&e))?;
                s.set_write_timeout(Some(self.set.timeout)).map_err(|e| self.io_err(&e))?;
                Stream::Unix(s)
            }
            Addr::Tcp(h, p) => {
                let addrs = (h.as_str(), *p).to_socket_addrs().map_err(|e| err(&self.addr, format!("cannot resolve: {e}")))?;
                let mut last = None;
                let mut got = None;
                for a in addrs {
                    match TcpStream::connect_timeout(&a, self.set.connect_timeout) {
                        Ok(s) => {
                            got = Some(s);
                            break;
                        }
                        Err(e) => last = Some(e),
                    }
                }
                let s = match got {
                    Some(s) => s,
                    None => {
                        return Err(match last {
                            Some(e) => self.io_err(&e),
                            None => err(&self.addr, "no address"),
                        })
                    }
                };
                let _ = s.set_nodelay(true);
                s.set_read_timeout(Some(self.set.timeout)).map_err(|e| self.io_err(&e))?;
                s.set_write_timeout(Some(self.set.timeout)).map_err(|e| self.io_err(&e))?;
                if self.set.auth.tls {
                    #[cfg(feature = "redis-tls")]
                    {
                        let c = tls_client(h, self.set.auth.tls_ca.as_deref(), &self.addr)?;
                        let mut t = rustls::StreamOwned::new(c, s);
                        // The handshake now, so that a certificate the server cannot
                        // prove fails here, as "cannot connect".
                        while t.conn.is_handshaking() {
                            t.conn.complete_io(&mut t.sock).map_err(|e| err(&self.addr, format!("TLS: {e}")))?;
                        }
                        Stream::Tls(Box::new(t))
                    }
                    #[cfg(not(feature = "redis-tls"))]
                    return Err(err(&self.addr, "TLS support not built"));
                } else {
                    Stream::Tcp(s)
                }
            }
        };
        let forks = crate::lock::fork_generation();
        let mut c = Conn { stream, buf: vec![0; 16384], start: 0, end: 0, forks, used: Instant::now() };
        // AUTH and SELECT, pipelined: one round trip.
        let mut hello = Vec::new();
        let mut n = 0;
        if let Some(pass) = &self.set.auth.pass {
            match &self.set.auth.user {
                Some(u) => resp::encode(&mut hello, &[b"AUTH", u.as_bytes(), pass.as_bytes()]),
                None => resp::encode(&mut hello, &[b"AUTH", pass.as_bytes()]),
            }
            n += 1;
        }
        if self.set.auth.db != 0 {
            resp::encode(&mut hello, &[b"SELECT", self.set.auth.db.to_string().as_bytes()]);
            n += 1;
        }
        if n > 0 {
            c.stream.write_all(&hello).map_err(|e| self.io_err(&e))?;
            for _ in 0..n {
                match self.read_reply(&mut c) {
                    Ok(Reply::Err(e)) => return Err(err(&self.addr, format!("connection set-up refused: {e}"))),
                    Ok(_) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(c)
    }

    fn read_reply(&self, c: &mut Conn) -> Result<Reply> {
        loop {
            match resp::parse(&c.buf[..c.end], c.start) {
                Parse::Done(r, used) => {
                    c.start += used;
                    if c.start == c.end {
                        c.start = 0;
                        c.end = 0;
                    }
                    return Ok(r);
                }
                Parse::Bad(why) => return Err(err(&self.addr, format!("protocol error: {why}"))),
                Parse::More => {}
            }
            if c.start > 0 {
                c.buf.copy_within(c.start..c.end, 0);
                c.end -= c.start;
                c.start = 0;
            }
            if c.end == c.buf.len() {
                let n = c.buf.len() * 2;
                c.buf.resize(n, 0);
            }
            let end = c.end;
            match c.stream.read(&mut c.buf[end..]) {
                Ok(0) => return Err(err(&self.addr, "connection closed by the server")),
                Ok(n) => c.end += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io_err(&e)),
            }
        }
    }

    /// Sends the commands already encoded in `cmds` (`n` of them) and reads their replies.
    /// Any failure drops the connection.
    pub fn exec_raw(&mut self, cmds: &[u8], n: usize) -> std::result::Result<Vec<Reply>, Fail> {
        self.ready()?;
        let c = self.conn.as_mut().expect("ready");
        if let Err(e) = c.stream.write_all(cmds) {
            let e = self.io_err(&e);
            self.conn = None;
            return Err(Fail::NotSent(e));
        }
        let mut c = self.conn.take().expect("ready");
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            match self.read_reply(&mut c) {
                Ok(r) => out.push(r),
                // The connection is gone (dropped with `c`): a late reply can never be
                // read as the answer to a later command.
                Err(e) => return Err(Fail::Unknown(e)),
            }
        }
        self.conn = Some(c);
        Ok(out)
    }

    /// One command.
    pub fn exec(&mut self, args: &[&[u8]]) -> std::result::Result<Reply, Fail> {
        let mut w = std::mem::take(&mut self.wbuf);
        w.clear();
        resp::encode(&mut w, args);
        let r = self.exec_raw(&w, 1);
        self.wbuf = w;
        r.map(|mut v| v.pop().expect("one reply"))
    }

    /// Sends without reading (pipelines over several servers: send to each, then read
    /// from each with [`Link::recv`]).
    pub fn send(&mut self, cmds: &[u8]) -> std::result::Result<(), Fail> {
        self.ready()?;
        let c = self.conn.as_mut().expect("ready");
        if let Err(e) = c.stream.write_all(cmds) {
            let e = self.io_err(&e);
            self.conn = None;
            return Err(Fail::NotSent(e));
        }
        Ok(())
    }

    /// Reads `n` replies of commands sent with [`Link::send`].
    pub fn recv(&mut self, n: usize) -> std::result::Result<Vec<Reply>, Fail> {
        let Some(mut c) = self.conn.take() else {
            return Err(Fail::Unknown(err(&self.addr, "connection lost")));
        };
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            match self.read_reply(&mut c) {
                Ok(r) => out.push(r),
                Err(e) => return Err(Fail::Unknown(e)),
            }
        }
        self.conn = Some(c);
        Ok(out)
    }
}

/// Is `fd` readable (data, EOF or error) right now? An idle connection of ours never is
/// unless the server closed it.
fn readable(fd: i32) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLIN | libc::POLLRDHUP, revents: 0 };
    // SAFETY: one valid pollfd, zero timeout (never blocks).
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n != 0
}
