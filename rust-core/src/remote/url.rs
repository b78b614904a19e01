//! Redis map URLs (what `new`, `new_sharded` and `new_readonly` accept instead of a path):
//!
//! - `redis://[user:pass@]host:port[,host:port...]/NAME[?options]`: NAME names the map;
//!   several hosts are the seeds of a cluster;
//! - `redis+unix:///path/to/redis.sock?name=NAME[&options]`: a local socket;
//! - `rediss://...`: TLS (cargo feature `redis-tls`; the server's certificate is checked
//!   against the system's CA store, or the CAs of the `tls_ca` option's PEM file).
//!
//! Options: `timeout` (I/O timeout in seconds, default 5), `connect_timeout` (seconds,
//! default 1), `failover_timeout` (how long a cluster call keeps retrying while a replica
//! takes over, seconds, default 15), `prefix` (of every Redis key, default `hms:`), `db`
//! (standalone only, default 0), `cluster` (`1`: the hosts are a cluster, `0`: a single
//! server; default: detected at connect).
//!
//! A password never leaves this module except to the server: [`RemoteUrl::display`] (what
//! `path` and every error message show) drops it.

use crate::error::{Error, Result};
use std::time::Duration;

/// Where a server listens.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Addr {
    /// host (name or IP; IPv6 without brackets) and port.
    Tcp(String, u16),
    /// A unix socket path.
    Unix(String),
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Addr::Tcp(h, p) if h.contains(':') => write!(f, "[{h}]:{p}"),
            Addr::Tcp(h, p) => write!(f, "{h}:{p}"),
            Addr::Unix(p) => write!(f, "{p}"),
        }
    }
}

/// Credentials and connection settings shared by every server of one URL.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Auth {
    pub user: Option<String>,
    pub pass: Option<String>,
    pub db: u32,
    pub tls: bool,
    /// PEM file of the CAs a TLS server's certificate must chain to (None: the system's
    /// CA store).
    pub tls_ca: Option<String>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password, not even in a debug dump.
        write!(f, "Auth {{ user: {:?}, pass: {}, db: {} }}", self.user, if self.pass.is_some() { "***" } else { "-" }, self.db)
    }
}

/// A parsed map URL.
#[derive(Clone, Debug)]
pub struct RemoteUrl {
    pub hosts: Vec<Addr>,
    pub auth: Auth,
    pub name: String,
    pub prefix: String,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub failover_timeout: Duration,
    /// Some(true / false) when the URL says, None: detect.
    pub cluster: Option<bool>,
    /// The URL without the password (what users see).
    pub display: String,
}

fn pct_decode(s: &str, what: &str) -> Result<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
            match h {
                Some(v) => {
                    out.push(v);
                    i += 3;
                    continue;
                }
                None => return Err(Error::arg(format!("bad %-escape in the {what} of a Redis URL"))),
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).map_err(|_| Error::arg(format!("the {what} of a Redis URL is not UTF-8")))
}

fn secs(v: &str, name: &str) -> Result<Duration> {
    let f: f64 = v.parse().map_err(|_| Error::arg(format!("Redis URL option {name}={v}: not a number of seconds")))?;
    if !(f > 0.0 && f < 1e6) {
        return Err(Error::arg(format!("Redis URL option {name}={v}: out of range")));
    }
    Ok(Duration::from_secs_f64(f))
}

fn host_port(s: &str) -> Result<Addr> {
    let bad = || Error::arg(format!("bad host:port '{s}' in a Redis URL"));
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once(']').ok_or_else(bad)?;
        (h, p.strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err(bad());
    }
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| bad())?,
        None => 6379,
    };
    Ok(Addr::Tcp(host.to_string(), port))
}

impl RemoteUrl {
    /// Parses `s` (see the module docs).
    pub fn parse(s: &str) -> Result<RemoteUrl> {
        let (scheme, rest) = s.split_once("://").ok_or_else(|| Error::arg("not a Redis URL"))?;
        let tls = match scheme {
            "redis" | "redis+unix" => false,
            "rediss" => true,
            _ => return Err(Error::arg(format!("unknown URL scheme {scheme}://"))),
        };
        if tls && !cfg!(feature = "redis-tls") {
            return Err(Error::arg(
                "rediss:// (TLS) needs the engine built with its redis-tls feature; use redis:// through a TLS tunnel (stunnel, spiped) or a unix socket",
            ));
        }
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let mut u = RemoteUrl {
            hosts: Vec::new(),
            auth: Auth { user: None, pass: None, db: 0, tls, tls_ca: None },
            name: String::new(),
            prefix: "hms:".into(),
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(1),
            failover_timeout: Duration::from_secs(15),
            cluster: None,
            display: String::new(),
        };
        let mut query_shown = Vec::new();
        for kv in query.unwrap_or("").split('&').filter(|x| !x.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let v = pct_decode(v, "options")?;
            match k {
                "timeout" => u.timeout = secs(&v, k)?,
                "connect_timeout" => u.connect_timeout = secs(&v, k)?,
                "failover_timeout" => u.failover_timeout = secs(&v, k)?,
                "prefix" => u.prefix = v.clone(),
                "tls_ca" if tls => u.auth.tls_ca = Some(v.clone()),
                "tls_ca" => return Err(Error::arg("Redis URL option tls_ca needs rediss://")),
                "name" => u.name = v.clone(),
                "db" => u.auth.db = v.parse().map_err(|_| Error::arg(format!("Redis URL option db={v}: not a number")))?,
                "cluster" => {
                    u.cluster = Some(match v.as_str() {
                        "1" | "yes" | "true" => true,
                        "0" | "no" | "false" => false,
                        _ => return Err(Error::arg(format!("Redis URL option cluster={v}: use 0 or 1"))),
                    })
                }
                "password" | "pass" => return Err(Error::arg("give the Redis password in the URL's user:pass@ part, not as an option")),
                _ => return Err(Error::arg(format!("unknown Redis URL option '{k}'"))),
            }
            query_shown.push(kv.to_string());
        }
        if scheme == "redis+unix" {
            // redis+unix:///path/to.sock?name=NAME (the path is everything before '?').
            let path = pct_decode(rest, "socket path")?;
            if !path.starts_with('/') {
                return Err(Error::arg("redis+unix:// needs an absolute socket path (redis+unix:///path/to/redis.sock?name=NAME)"));
            }
            u.hosts.push(Addr::Unix(path));
            u.cluster = Some(false);
        } else {
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            let (creds, hosts) = match authority.rsplit_once('@') {
                Some((c, h)) => (Some(c), h),
                None => (None, authority),
            };
            if let Some(c) = creds {
                let (user, pass) = match c.split_once(':') {
                    Some((a, b)) => (a, Some(b)),
                    None => (c, None),
                };
                // redis://:pass@host (no user) is the classic AUTH form.
                u.auth.user = if user.is_empty() { None } else { Some(pct_decode(user, "user name")?) };
                u.auth.pass = pass.map(|p| pct_decode(p, "password")).transpose()?;
                if u.auth.pass.is_none() && u.auth.user.is_some() {
                    // redis://secret@host: a password alone, as other Redis clients read it.
                    u.auth.pass = u.auth.user.take();
                }
            }
            for h in hosts.split(',').filter(|h| !h.is_empty()) {
                u.hosts.push(host_port(h)?);
            }
            if u.hosts.is_empty() {
                return Err(Error::arg("a Redis URL needs a host (redis://host:port/NAME)"));
            }
            if !path.is_empty() {
                if !u.name.is_empty() {
                    return Err(Error::arg("a Redis URL names its map once: in the path or as name=, not both"));
                }
                u.name = pct_decode(path, "map name")?;
            }
            if u.hosts.len() > 1 && u.cluster == Some(false) {
                return Err(Error::arg("several hosts in a Redis URL are the seeds of a cluster (cluster=0 takes one host)"));
            }
        }
        if u.name.is_empty() {
            return Err(Error::arg("a Redis URL needs a map name (redis://host:port/NAME or ?name=NAME)"));
        }
        if u.name.contains(['{', '}']) || u.prefix.contains(['{', '}']) {
            return Err(Error::arg("a Redis map name or prefix may not contain { or } (they delimit Redis Cluster hash tags)"));
        }
        if u.auth.db != 0 && u.cluster == Some(true) {
            return Err(Error::arg("Redis Cluster has only db 0"));
        }
        // What users see: the URL without the password.
        let mut d = format!("{scheme}://");
        if scheme == "redis+unix" {
            d.push_str(rest);
        } else {
            if let Some(user) = &u.auth.user {
                d.push_str(user);
                d.push('@');
            }
            d.push_str(&u.hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>().join(","));
            d.push('/');
            d.push_str(rest.split_once('/').map(|x| x.1).unwrap_or(""));
        }
        if !query_shown.is_empty() {
            d.push('?');
            d.push_str(&query_shown.join("&"));
        }
        u.display = d;
        Ok(u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handle::is_url;

    #[test]
    fn parses_hosts_names_options_and_hides_the_password() {
        let u = RemoteUrl::parse("redis://app:s%40cret@cache.lan:6380/pages?timeout=0.5&prefix=x:").unwrap();
        assert_eq!(u.hosts, vec![Addr::Tcp("cache.lan".into(), 6380)]);
        assert_eq!(u.auth.user.as_deref(), Some("app"));
        assert_eq!(u.auth.pass.as_deref(), Some("s@cret"));
        assert_eq!(u.name, "pages");
        assert_eq!(u.prefix, "x:");
        assert_eq!(u.timeout, Duration::from_millis(500));
        assert_eq!(u.display, "redis://app@cache.lan:6380/pages?timeout=0.5&prefix=x:");
        assert!(!format!("{u:?}").contains("cret"));
        let c = RemoteUrl::parse("redis://:pw@10.0.0.1:7000,10.0.0.2:7000,[::1]:7001/big").unwrap();
        assert_eq!(c.hosts.len(), 3);
        assert_eq!(c.hosts[2], Addr::Tcp("::1".into(), 7001));
        assert_eq!(c.auth.pass.as_deref(), Some("pw"));
        assert_eq!(c.display, "redis://10.0.0.1:7000,10.0.0.2:7000,[::1]:7001/big");
        let s = RemoteUrl::parse("redis+unix:///tmp/r.sock?name=hits").unwrap();
        assert_eq!(s.hosts, vec![Addr::Unix("/tmp/r.sock".into())]);
        assert_eq!(s.name, "hits");
        assert_eq!(RemoteUrl::parse("redis://h/n").unwrap().hosts, vec![Addr::Tcp("h".into(), 6379)]);
    }

    #[test]
    fn refuses_what_it_cannot_serve() {
        for (u, word) in [
            ("redis://h:1", "map name"),
            ("redis://h:x/n", "bad host"),
            ("redis://h:1/n?bogus=1", "unknown Redis URL option"),
            ("redis://h:1/a{b}", "hash tags"),
            ("redis+unix://rel.sock?name=n", "absolute"),
            ("redis://h:1/n?tls_ca=/x", "needs rediss"),
            ("redis://h:1/n?timeout=-1", "out of range"),
            ("redis://a:1,b:2/n?cluster=0", "seeds of a cluster"),
        ] {
            let e = RemoteUrl::parse(u).unwrap_err().to_string();
            assert!(e.contains(word), "{u}: {e}");
        }
        assert!(is_url(b"redis://x") && is_url(b"redis+unix:///s") && !is_url(b"./redis://x"));
    }
}
