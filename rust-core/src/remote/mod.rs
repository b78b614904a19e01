//! Maps that live in Redis or a Redis Cluster (cargo feature `redis`; issue 13).
//!
//! The same [`crate::Options`] open them: a file path that is a Redis URL
//! (`redis://[user:pass@]host:port[,host:port...]/NAME[?options]`,
//! `redis+unix:///path/to/redis.sock?name=NAME`, `rediss://` with the `redis-tls`
//! feature) makes [`crate::handle::Handle::open`] open a map in Redis, with the same
//! operations and answers:
//!
//! ```no_run
//! use hashmap_shared::{Bytes, Map, Options};
//!
//! let opts = Options::new(100_000).file("redis://10.0.0.1:6379/hits");
//! let mut hits: Map<Bytes, i64> = Map::open(&opts)?;   // on every machine: one map
//! hits.incr("/index.html", 1)?;
//! # Ok::<(), hashmap_shared::Error>(())
//! ```
//!
//! [`Remote`] is the handle type behind it (also usable directly:
//! [`Remote::open`], through the `internals` feature).
//!
//! A [`Remote`] is a handle on such a map: a set of shards (a plain map is a set of
//! one), each kept in six Redis keys under one hash tag ([`model`]), every operation one
//! call of a Redis Functions library or one command on one shard
//! ([`lua/map.lua`](lua/map.lua), loaded on each server that lacks it): atomic on
//! the server and one round trip. Its methods have the names, signatures and answers
//! of [`crate::map::Map`]'s (and of [`crate::shard::ShardSet`]'s for whole-map operations), so the
//! layers above dispatch to either; where an answer cannot be the same, the POD's
//! "Differences on Redis" says what happens instead.
//!
//! Keys are routed to shards with the engine's seeded hash ([`crate::hash::shard_of`],
//! as for shard files), the seed recorded in Redis with the map. Batches
//! (`set_multi`, `get_multi`, `remove_multi`, stats, clear) send one call per shard,
//! pipelined: one round trip per server.
//!
//! # Connections and failures
//!
//! See [`conn`] (one connection per server per process, fork-safe, no late replies,
//! reconnect) and [`cluster`] (slot map, MOVED/ASK, failover). A call that failed before
//! it was sent is retried; one whose outcome is unknown (the connection broke after
//! sending) is retried only when repeating it changes nothing (reads, put, put_ttl,
//! set_ttl, persist, set_multi, ...), else it fails with "outcome unknown". On a cluster
//! the retries go on, with a short back-off and a fresh slot map, for up to
//! `failover_timeout` (URL option) while a replica takes over a dead master.
//!
//! # Why no client crate
//!
//! The `redis` crate's synchronous API was the proposal. What the issue needs is
//! exactly what it hides: the descriptor (to poll an idle connection before sending, so
//! a restarted server is reconnected without an "outcome unknown"), control of
//! shutdown(2) after fork, sending to several servers before reading (pipelines across
//! a cluster), and a slot map refreshed after a master dies (its sync cluster client
//! keeps reconnecting to the dead address). What it would add is the RESP codec
//! ([`resp`], 200 lines with tests), at the cost of ~50 crates and Rust 1.88. So the
//! feature adds no dependency and keeps the engine's MSRV.

mod cluster;
mod conn;
mod model;
mod resp;
mod url;

use self::cluster::Topology;
use self::conn::{Fail, Settings};
use self::model::{dec_key, dec_val, enc_cmp, enc_key, enc_val, ShardKeys, FORMAT};
use self::resp::Reply;
use self::url::RemoteUrl;
use crate::error::{Error, ErrorKind, Result};
use crate::hash::{hash_bytes, hash_int, random_seed, shard_of};
use crate::layout::{self, Params};
use crate::lru::Skipper;
use crate::map::Stats;
use crate::options::Options;
use crate::value::{In, Out, Value};
use crate::variant::{Kind, Variant};
use std::collections::VecDeque;
use std::ffi::CString;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The operations' Redis Functions library (every operation, dispatched on its first
/// argument), with `@V@` where its version tag goes.
pub const LIBRARY: &str = include_str!("lua/map.lua");

/// Shards above this many entries are listed (keys/values/items) in scan steps rather
/// than in one snapshot, so that one call never blocks the server for long.
const SNAPSHOT_MAX: u32 = 10_000;
/// Entries per scan step (each / cursors / large listings).
const SCAN_COUNT: &str = "256";
/// Expired entries reclaimed per flush_expired call to the server.
const FLUSH_BATCH: u32 = 10_000;

/// The library as loaded: its code with the version tag (a hash of the text, so that
/// two versions of the module on one server never replace each other's library) and
/// the prefix of its functions' names (`hms_TAG_`, then the op).
struct Lib {
    code: String,
    prefix: String,
}

fn lib() -> &'static Lib {
    static L: OnceLock<Lib> = OnceLock::new();
    L.get_or_init(|| {
        // FNV-1a 64 of the text: a version tag, not a security measure.
        let h = LIBRARY.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3));
        let tag = format!("{:012x}", h >> 16);
        Lib { code: LIBRARY.replace("@V@", &tag), prefix: format!("hms_{tag}_") }
    })
}

/// The decimal text of a key count (a call declares 1 to 6 keys).
fn count(n: usize) -> &'static [u8] {
    const D: [&[u8]; 7] = [b"0", b"1", b"2", b"3", b"4", b"5", b"6"];
    D[n]
}

/// Is this error reply one a library (re)load cures? (A restarted or flushed server,
/// a new node, a replica promoted before the library reached it.)
fn no_function(e: &str) -> bool {
    e.starts_with("ERR Function not found")
}

/// A handle on a map in Redis (see the module docs).
pub struct Remote {
    url: RemoteUrl,
    display: CString,
    variant: Variant,
    kk: Kind,
    vk: Kind,
    shards: Vec<ShardKeys>,
    seed: u64,
    id: String,
    topo: Topology,
    max_entries: u64,
    req_max_entries: u64,
    max_size: u64,
    ttl: u64,
    lru_skip: u32,
    ro: bool,
    skip: Skipper,
    /// Encoding scratch.
    kb: Vec<u8>,
    vb: Vec<u8>,
    eb: Vec<u8>,
    /// Outputs (what Out borrows).
    okey: Vec<u8>,
    oval: Vec<u8>,
    /// `each`: the iteration state.
    each: Scan,
    /// pop / shift / drain rotation pointer (api.md 6.6).
    rot: usize,
    /// The UTF-8 flag of the key of the last entry a scan produced (in okey).
    scanned_flag: bool,
}

/// An iteration over the shards: the shard it is on, the scan cursor there (None: not
/// started) and the entries of the last scan step not returned yet.
#[derive(Default, Clone, Debug)]
struct Scan {
    shard: usize,
    cursor: Option<Vec<u8>>,
    buf: VecDeque<(Vec<u8>, Vec<u8>, bool)>,
    done: bool,
    /// Stop at the end of `shard` (a listing too big for one snapshot).
    one_shard: bool,
}

/// A cursor (api.md 6.7) on a [`Remote`]: independent of `each` and of other cursors.
#[derive(Default, Clone, Debug)]
pub struct RemoteCursor {
    scan: Scan,
}

/// Calls of one pipeline bound for one server: its address and link, the indices of
/// the calls, and their encoded commands.
type Group = (url::Addr, std::sync::Arc<std::sync::Mutex<conn::Link>>, Vec<usize>, Vec<u8>);

fn frozen_err() -> Error {
    Error::new(ErrorKind::Frozen, "map is frozen (read-only)")
}

fn bad_reply(what: &str) -> Error {
    Error::new(ErrorKind::Io, format!("redis: unexpected reply to {what}"))
}

impl Remote {
    /// Opens (creates or attaches) the plain map at `url` with the variant and sizing of
    /// `o` (its backing and path are ignored).
    pub fn open(url: &str, o: &Options) -> Result<Remote> {
        Remote::open_any(url, o, Some(1), false)
    }

    /// Opens (creates what is missing) the set of `shards` shards (rounded as
    /// [`crate::shard::shard_count`]) at `url`, each shard sized by `o`.
    pub fn open_sharded(url: &str, shards: u64, o: &Options) -> Result<Remote> {
        let n = crate::shard::shard_count(shards)?;
        Remote::open_any(url, o, Some(n), false)
    }

    /// Opens the frozen map (or shard set) at `url` read-only: refuses a map that is not
    /// frozen, changes nothing.
    pub fn open_readonly(url: &str, variant: Variant) -> Result<Remote> {
        Remote::open_any(url, &Options::new(0).with_variant(variant), None, true)
    }

    fn open_any(url: &str, o: &Options, count: Option<u32>, ro: bool) -> Result<Remote> {
        let variant = o.check()?;
        let u = RemoteUrl::parse(url)?;
        let p = Params {
            variant,
            max_entries: o.max_entries,
            max_size: o.max_size,
            ttl: o.ttl,
            lru_skip: o.lru_skip,
            arena_cap: 0,
        };
        layout::check_ranges(&p)?;
        let set = Settings { auth: u.auth.clone(), timeout: u.timeout, connect_timeout: u.connect_timeout };
        let is_cluster = match u.cluster {
            Some(c) => c,
            None if u.hosts.len() > 1 => true,
            None => cluster::detect(&u.hosts[0], &set).map_err(Fail::error)?,
        };
        let topo = if is_cluster {
            let t = Topology::cluster(u.hosts.clone(), set);
            if !t.refresh()? {
                return Err(conn::err(&u.hosts[0], "no cluster node answered CLUSTER SLOTS"));
            }
            t
        } else {
            Topology::single(u.hosts[0].clone(), set)
        };
        let display = CString::new(u.display.clone()).map_err(|_| Error::arg("a Redis URL may not contain a NUL byte"))?;
        let v = variant;
        let seed = random_seed();
        let max_cap = layout::max_cap_for(o.max_entries);
        let mut r = Remote {
            display,
            variant: v,
            kk: v.key_kind(),
            vk: v.val_kind(),
            shards: vec![ShardKeys::new(&u.prefix, &u.name)],
            seed,
            id: seed.to_string(),
            topo,
            max_entries: layout::load_limit(max_cap) as u64,
            req_max_entries: o.max_entries,
            max_size: o.max_size,
            ttl: o.ttl,
            lru_skip: o.lru_skip as u32,
            ro,
            skip: Skipper::new(
                seed ^ ((std::process::id() as u64) << 32)
                    ^ std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0),
            ),
            kb: Vec::new(),
            vb: Vec::new(),
            eb: Vec::new(),
            okey: Vec::new(),
            oval: Vec::new(),
            each: Scan::default(),
            rot: 0,
            scanned_flag: false,
            url: u,
        };
        // The map's own meta (a plain map) or its shard set's directory.
        let fields = r.create_fields(0, count.unwrap_or(1));
        let m = r.open_meta(0, &fields, !ro)?;
        let Some(m) = m else {
            return Err(Error::new(ErrorKind::Io, format!("{}: no such map", r.url.display)));
        };
        let n = r.check_meta(&m, None, count, ro)?;
        if n > 1 {
            let name = r.url.name.clone();
            let pre = r.url.prefix.clone();
            r.shards = (0..n).map(|i| ShardKeys::new(&pre, &model::shard_tag(&pre, &name, i, n))).collect();
            let calls: Vec<(usize, Vec<Vec<u8>>)> = (0..n as usize)
                .map(|i| {
                    let f = r.create_fields(i as u32, n);
                    let mut a: Vec<Vec<u8>> = vec![b"open".to_vec(), r.id.clone().into_bytes()];
                    a.extend(f.into_iter().map(String::into_bytes));
                    a.push(if ro { b"attach".to_vec() } else { b"create".to_vec() });
                    (i, a)
                })
                .collect();
            let replies = r.eval_many(calls, true)?;
            for (i, rep) in replies.into_iter().enumerate() {
                let rep = r.check(rep)?;
                let Reply::Array(m) = rep else {
                    return Err(Error::new(ErrorKind::Io, format!("{}.{i}: shard missing from the set", r.url.display)));
                };
                r.check_meta(&m, Some(i as u32), Some(n), ro)?;
            }
        }
        Ok(r)
    }

    /// The meta fields a new shard `i` of `n` is created with.
    fn create_fields(&self, i: u32, n: u32) -> Vec<String> {
        let kv = [
            // The write token: the id again, deleted by freeze (lua/map.lua, begin). First:
            // a small hash is a list the server reads in order, and every write reads it.
            ("w", self.id.clone()),
            ("version", FORMAT.to_string()),
            ("variant", self.variant.id().to_string()),
            ("index", i.to_string()),
            ("count", n.to_string()),
            ("id", self.id.clone()),
            ("frozen", "0".into()),
            ("max_entries", self.max_entries.to_string()),
            ("max_size", self.max_size.to_string()),
            ("ttl", self.ttl.to_string()),
            ("lru_skip", self.lru_skip.to_string()),
            ("req_max_entries", self.req_max_entries.to_string()),
            ("vk", model::vk_name(self.vk).into()),
            ("sk", if self.kk == Kind::Str { "1".into() } else { "0".into() }),
            ("evictions", "0".into()),
            ("expired", "0".into()),
            ("clock", "0".into()),
            ("gen", "0".into()),
        ];
        kv.into_iter().flat_map(|(k, v)| [k.to_string(), v]).collect()
    }

    fn open_meta(&mut self, shard: usize, fields: &[String], create: bool) -> Result<Option<Vec<Reply>>> {
        let mut a: Vec<&[u8]> = vec![b"open", self.id.as_bytes()];
        let fields: Vec<Vec<u8>> = fields.iter().map(|s| s.as_bytes().to_vec()).collect();
        a.extend(fields.iter().map(|f| f.as_slice()));
        a.push(if create { b"create" } else { b"attach" });
        let owned: Vec<Vec<u8>> = a.iter().map(|x| x.to_vec()).collect();
        let r = self.eval(shard, &owned.iter().map(|x| x.as_slice()).collect::<Vec<_>>(), true)?;
        Ok(match r {
            Reply::Array(m) => Some(m),
            _ => None,
        })
    }

    /// Checks a meta reply (version, variant, index, count, id, frozen, max_entries,
    /// max_size, ttl, lru_skip, req_max_entries) against this open and adopts the stored
    /// options; returns the shard count. `index` None: the map's own meta / directory.
    fn check_meta(&mut self, m: &[Reply], index: Option<u32>, count: Option<u32>, ro: bool) -> Result<u32> {
        let s = |i: usize| m.get(i).and_then(|r| r.bytes()).map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
        let n = |i: usize| s(i).parse::<u64>().unwrap_or(0);
        let what = match index {
            None => self.url.display.clone(),
            Some(i) => format!("{}.{i}", self.url.display),
        };
        if s(0) != FORMAT {
            return Err(Error::format(format!("{what}: version mismatch (file={}, expected={FORMAT})", s(0))));
        }
        if n(1) != self.variant.id() as u64 {
            return Err(Error::format(format!("{what}: variant mismatch (file={}, expected={})", n(1), self.variant.id())));
        }
        let cnt = n(3) as u32;
        if let Some(c) = count {
            if cnt != c {
                return Err(Error::format(format!("{what}: shard set has {cnt} shards, opened with {c}")));
            }
        }
        match index {
            None => {
                self.id = s(4);
                self.seed = self.id.parse().unwrap_or(0);
                let frozen = n(5) == 1;
                if frozen && !ro {
                    return Err(Error::format(format!("{what} is frozen (read-only); open it with new_readonly")));
                }
                if !frozen && ro {
                    return Err(Error::format(format!(
                        "{what} is not frozen: call ->freeze on the producer before opening read-only"
                    )));
                }
                self.max_entries = n(6);
                self.max_size = n(7);
                self.ttl = n(8);
                self.lru_skip = n(9) as u32;
                self.req_max_entries = n(10);
            }
            Some(i) => {
                if n(2) != i as u64 {
                    return Err(Error::format(format!("{what}: is shard {} of its set, expected shard {i}", n(2))));
                }
                if s(4) != self.id {
                    return Err(Error::format(format!(
                        "{what}: belongs to another shard set (routing differs from {}.0)",
                        self.url.display
                    )));
                }
            }
        }
        Ok(cnt.max(1))
    }

    // -- calls ------------------------------------------------------------------------

    /// The shard of `key`.
    pub fn route(&self, key: In<'_>) -> usize {
        let n = self.shards.len() as u32;
        if n == 1 {
            return 0;
        }
        let h = match key {
            In::Int(v) => hash_int(self.kk.narrow(v), self.seed),
            In::Str(b, _) => hash_bytes(b, self.seed),
        };
        shard_of(h, n) as usize
    }

    /// Maps a reply error to the engine's error (the script's "HMS ..." words, Redis'
    /// OOM as `Full`, anything else as "redis: ...").
    fn check(&self, r: Reply) -> Result<Reply> {
        let Reply::Err(e) = r else { return Ok(r) };
        Err(if let Some(w) = e.strip_prefix("HMS ") {
            match w {
                "frozen" => frozen_err(),
                "full" => Error::new(ErrorKind::Full, "the map is full"),
                "gone" => Error::new(ErrorKind::Io, format!("{}: map no longer exists (unlinked)", self.url.display)),
                "nottl" => Error::new(
                    ErrorKind::Unsupported,
                    "operation requires a TTL-enabled map (pass ttl > 0 to constructor)",
                ),
                w => Error::new(ErrorKind::Io, format!("redis: {w}")),
            }
        } else if e.starts_with("OOM ") || e.contains(" OOM ") {
            Error::new(ErrorKind::Full, format!("redis: {e}"))
        } else {
            Error::new(ErrorKind::Io, format!("redis: {e}"))
        })
    }

    /// FUNCTION LOAD REPLACE of the library on the server of `slot` (after "Function not
    /// found": first use of a server, FUNCTION FLUSH, a restart without persistence, a
    /// node added to a cluster). REPLACE: another process may load the same library at
    /// the same moment (the same tag is the same code).
    fn load_library(&self, slot: u16) -> Result<()> {
        let r = self.run(slot, &[b"FUNCTION", b"LOAD", b"REPLACE", lib().code.as_bytes()], true)?;
        match r {
            Reply::Bulk(_) => Ok(()),
            Reply::Err(e) => Err(Error::new(ErrorKind::Io, format!("redis: FUNCTION LOAD: {e}"))),
            _ => Err(bad_reply("FUNCTION LOAD")),
        }
    }

    /// The library function of an operation (`args` as given to [`Remote::eval`], op
    /// first): `hms_TAG_OP`; the LRU reads that mark their entry use the variant that
    /// Redis lets write at maxmemory, and an open that only attaches the read-only one
    /// (lua/map.lua).
    fn function(&self, args: &[&[u8]], name: &mut Vec<u8>) {
        name.clear();
        name.extend_from_slice(lib().prefix.as_bytes());
        name.extend_from_slice(args[0]);
        let marks = |i: usize| self.max_size > 0 && args.get(i).copied() == Some(b"1".as_slice());
        match args[0] {
            b"get" | b"getx" if marks(3) => name.extend_from_slice(b"_m"),
            b"mget" if marks(2) => name.extend_from_slice(b"_m"),
            b"open" if args.last().copied() == Some(b"attach".as_slice()) => name.extend_from_slice(b"_r"),
            _ => {}
        }
    }

    /// One call of the library on `shard` with `args` (op first).
    fn eval(&self, shard: usize, args: &[&[u8]], idem: bool) -> Result<Reply> {
        self.call_at(&self.shards[shard], args, idem, true)
    }

    /// One call of the library on the shard whose keys are `sk`: FCALL, and on "Function
    /// not found" a load of the library and the call again.
    /// `with_u` false: the call cannot touch the set of UTF-8 keys (a plain map's put or
    /// incr of a key without the flag), which is then not declared (each key costs the
    /// server a Lua string per call).
    fn call_at(&self, sk: &ShardKeys, args: &[&[u8]], idem: bool, with_u: bool) -> Result<Reply> {
        let slot = sk.slot;
        let mut name = Vec::with_capacity(32);
        let v = self.fcall(sk, args, with_u, &mut name);
        let mut reloads = 0;
        loop {
            let r = self.run(slot, &v, idem)?;
            match &r {
                Reply::Err(e) if no_function(e) && reloads < 3 => {
                    reloads += 1;
                    self.load_library(slot)?;
                }
                _ => return Ok(r),
            }
        }
    }

    /// The FCALL command of `args` (op first) on the shard whose keys are `sk`; `name`
    /// holds the function's name.
    fn fcall<'a>(&self, sk: &'a ShardKeys, args: &[&'a [u8]], with_u: bool, name: &'a mut Vec<u8>) -> Vec<&'a [u8]> {
        let keys = self.declared(sk, with_u);
        self.function(args, name);
        let mut v: Vec<&[u8]> = Vec::with_capacity(3 + keys.len() + args.len());
        v.extend_from_slice(&[b"FCALL", name, count(keys.len())]);
        v.extend_from_slice(&keys);
        v.extend_from_slice(&args[1..]);
        v
    }

    /// The keys a call on `shard` declares: the ones this map uses (M, D, then X for TTL,
    /// L and A for LRU, U for string keys). The script derives the names from M; the
    /// declaration is what Redis Cluster checks while a slot migrates (a declared key
    /// that never exists would make every call during an import fail with TRYAGAIN).
    /// `with_u` false leaves U out, for a call that cannot touch it (see `call_at`).
    fn declared<'a>(&self, sk: &'a ShardKeys, with_u: bool) -> Vec<&'a [u8]> {
        let k = &sk.keys;
        let mut v: Vec<&[u8]> = Vec::with_capacity(6);
        // A single server needs the declaration for nothing its commands inside the
        // script do not check again (ACL key patterns are checked on each of them): M
        // alone, the script derives the rest (each declared key costs ~1.2k server
        // instructions a call, bench/RESULTS.md).
        if !self.topo.cluster {
            v.push(&k[0]);
            return v;
        }
        v.extend_from_slice(&[&k[0], &k[1]]);
        if self.ttl > 0 {
            v.push(&k[2]);
        }
        if self.max_size > 0 {
            v.push(&k[3]);
            v.push(&k[4]);
        }
        if self.kk == Kind::Str && with_u {
            v.push(&k[5]);
        }
        v
    }

    /// One command to the server of `slot`, following MOVED / ASK, retrying what did not
    /// run (and, when `idem`, what may have run) as the module docs say.
    fn run(&self, slot: u16, args: &[&[u8]], idem: bool) -> Result<Reply> {
        let cluster = self.topo.cluster;
        let deadline = Instant::now() + if cluster { self.url.failover_timeout } else { Duration::ZERO };
        let mut backoff = Duration::from_millis(20);
        let mut ask: Option<url::Addr> = None;
        let mut redirects = 0;
        let mut unknown_retries = 0;
        loop {
            let (addr, link, asking) = match ask.take() {
                Some(a) => {
                    let l = self.topo.link_of(&a);
                    (a, l, true)
                }
                None => match self.topo.link_for(slot) {
                    Some((a, l)) => (a, l, false),
                    None => {
                        if Instant::now() >= deadline {
                            return Err(Error::new(
                                ErrorKind::Io,
                                format!("redis: no cluster node serves slot {slot} ({})", self.url.display),
                            ));
                        }
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(Duration::from_millis(200));
                        self.topo.refresh()?;
                        continue;
                    }
                },
            };
            let res = {
                let mut l = link.lock().unwrap_or_else(|p| p.into_inner());
                if asking {
                    let mut w = Vec::new();
                    resp::encode(&mut w, &[b"ASKING"]);
                    resp::encode(&mut w, args);
                    l.exec_raw(&w, 2).map(|mut v| v.pop().expect("two replies"))
                } else {
                    l.exec(args)
                }
            };
            let retryable = |e: &str| {
                ["TRYAGAIN", "CLUSTERDOWN", "LOADING", "MASTERDOWN", "READONLY"].iter().any(|w| e.starts_with(w))
            };
            match res {
                Ok(Reply::Err(e)) if cluster && (e.starts_with("MOVED ") || e.starts_with("ASK ")) && redirects < 16 => {
                    redirects += 1;
                    let mut it = e.split_whitespace().skip(1);
                    let s: u16 = it.next().and_then(|s| s.parse().ok()).unwrap_or(slot);
                    let target = it.next().and_then(|a| {
                        let (h, p) = a.rsplit_once(':')?;
                        let h = h.trim_start_matches('[').trim_end_matches(']');
                        let h = if h.is_empty() {
                            match &addr {
                                url::Addr::Tcp(h, _) => h.clone(),
                                url::Addr::Unix(_) => return None,
                            }
                        } else {
                            h.to_string()
                        };
                        Some(url::Addr::Tcp(h, p.parse().ok()?))
                    });
                    let Some(t) = target else { return Ok(Reply::Err(e)) };
                    if e.starts_with("MOVED ") {
                        self.topo.moved(s, &t);
                    } else {
                        ask = Some(t);
                    }
                }
                Ok(Reply::Err(e)) if retryable(&e) && Instant::now() < deadline => {
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_millis(200));
                    self.topo.refresh()?;
                }
                Ok(r) => return Ok(r),
                Err(Fail::NotSent(e)) => {
                    if Instant::now() >= deadline {
                        return Err(e);
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_millis(200));
                    self.topo.refresh()?;
                }
                Err(Fail::Unknown(e)) => {
                    if cluster {
                        // The node may be gone for good: the next call reads a new map.
                        let _ = self.topo.refresh();
                    }
                    let again = idem && (unknown_retries == 0 || Instant::now() < deadline);
                    if !again {
                        return Err(Error::new(
                            ErrorKind::Io,
                            format!("{e}; outcome unknown: the call may or may not have been applied"),
                        ));
                    }
                    unknown_retries += 1;
                }
            }
        }
    }

    /// The script on several shards, one call each, pipelined: every server gets its
    /// calls in one write, then every reply is read (one round trip per server). A call
    /// that met a redirect or a connection failure is then run on its own (`idem`: may a
    /// call whose outcome is unknown be repeated?).
    fn eval_many(&self, calls: Vec<(usize, Vec<Vec<u8>>)>, idem: bool) -> Result<Vec<Reply>> {
        if calls.len() == 1 {
            let (s, a) = &calls[0];
            let r = self.eval(*s, &a.iter().map(|x| x.as_slice()).collect::<Vec<_>>(), idem)?;
            return Ok(vec![r]);
        }
        // Group the calls by server, in call order.
        let mut groups: Vec<Group> = Vec::new();
        let mut out: Vec<Option<Reply>> = vec![None; calls.len()];
        for (ci, (s, a)) in calls.iter().enumerate() {
            let Some((addr, link)) = self.topo.link_for(self.shards[*s].slot) else { continue };
            let gi = match groups.iter().position(|g| g.0 == addr) {
                Some(i) => i,
                None => {
                    groups.push((addr, link, Vec::new(), Vec::new()));
                    groups.len() - 1
                }
            };
            let args: Vec<&[u8]> = a.iter().map(|x| x.as_slice()).collect();
            let mut name = Vec::new();
            let v = self.fcall(&self.shards[*s], &args, true, &mut name);
            resp::encode(&mut groups[gi].3, &v);
            groups[gi].2.push(ci);
        }
        let mut sent = vec![false; groups.len()];
        for (gi, g) in groups.iter().enumerate() {
            let mut l = g.1.lock().unwrap_or_else(|p| p.into_inner());
            sent[gi] = l.send(&g.3).is_ok();
        }
        let mut unknown = false;
        for (gi, g) in groups.iter().enumerate() {
            if !sent[gi] {
                continue;
            }
            let mut l = g.1.lock().unwrap_or_else(|p| p.into_inner());
            match l.recv(g.2.len()) {
                Ok(rs) => {
                    for (ci, r) in g.2.iter().zip(rs) {
                        out[*ci] = Some(r);
                    }
                }
                Err(_) => unknown = true,
            }
        }
        if unknown && !idem {
            return Err(Error::new(
                ErrorKind::Io,
                format!("redis: connection lost during a batch ({}); outcome unknown: the call may or may not have been applied", self.url.display),
            ));
        }
        let mut res = Vec::with_capacity(calls.len());
        for (ci, (s, a)) in calls.iter().enumerate() {
            let redo = match &out[ci] {
                None => true,
                Some(Reply::Err(e)) => {
                    no_function(e)
                        || ["MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN", "LOADING", "MASTERDOWN", "READONLY"]
                            .iter()
                            .any(|w| e.starts_with(w))
                }
                Some(_) => false,
            };
            if redo {
                let r = self.eval(*s, &a.iter().map(|x| x.as_slice()).collect::<Vec<_>>(), idem)?;
                res.push(r);
            } else {
                res.push(out[ci].take().expect("checked"));
            }
        }
        Ok(res)
    }

    // -- argument preparation ---------------------------------------------------------

    fn key_in(&self, k: In<'_>) -> Result<()> {
        match (self.kk, k) {
            (Kind::Str, In::Str(b, _)) if b.len() > crate::strref::MAX_LEN => {
                Err(Error::new(ErrorKind::TooLong, "key too long (max 1GB)"))
            }
            (Kind::Str, In::Int(_)) => Err(Error::arg("this variant has string keys")),
            (k, In::Str(..)) if k.is_int() => Err(Error::arg("this variant has integer keys")),
            _ => Ok(()),
        }
    }

    fn val_in(&self, v: In<'_>, role: &str) -> Result<()> {
        match (self.vk, v) {
            (Kind::Str, In::Str(b, _)) if b.len() > crate::strref::MAX_LEN => {
                Err(Error::new(ErrorKind::TooLong, format!("{role} too long (max 1GB)")))
            }
            (Kind::Str, In::Int(_)) => Err(Error::arg("this variant has string values")),
            (k, In::Str(..)) if k.is_int() => Err(Error::arg("this variant has integer values")),
            _ => Ok(()),
        }
    }

    fn writable(&self) -> Result<()> {
        if self.ro {
            return Err(frozen_err());
        }
        Ok(())
    }

    /// A map with neither TTL nor LRU (its writes need no expiry or promotion).
    fn plain(&self) -> bool {
        self.ttl == 0 && self.max_size == 0
    }

    /// The key's UTF-8 flag as the library's argument.
    fn kf(k: In<'_>) -> &'static [u8] {
        match k {
            In::Str(_, true) => b"1",
            _ => b"0",
        }
    }

    /// Whether this write's LRU promotion happens ("1") or is one lru_skip skips ("0").
    fn flag(&mut self) -> &'static [u8] {
        if self.max_size > 0 && self.lru_skip > 0 && self.skip.skip(self.lru_skip) {
            b"0"
        } else {
            b"1"
        }
    }

    /// A per-key script call: `op` on the shard of `key` with the encoded key first.
    fn keyed(&mut self, op: &[u8], key: In<'_>, rest: &[&[u8]], idem: bool) -> Result<Reply> {
        let r = self.keyed_raw(op, key, rest, idem, true)?;
        self.check(r)
    }

    /// [`keyed`](Self::keyed) with the reply as it came (an error reply included);
    /// `with_u` as for [`call_at`](Self::call_at).
    fn keyed_raw(&mut self, op: &[u8], key: In<'_>, rest: &[&[u8]], idem: bool, with_u: bool) -> Result<Reply> {
        self.key_in(key)?;
        let shard = self.route(key);
        let mut kb = std::mem::take(&mut self.kb);
        enc_key(self.kk, key, &mut kb);
        let mut a: Vec<&[u8]> = Vec::with_capacity(3 + rest.len());
        a.push(op);
        a.push(self.id.as_bytes());
        a.push(&kb);
        a.extend_from_slice(rest);
        let r = self.call_at(&self.shards[shard], &a, idem, with_u);
        drop(a);
        self.kb = kb;
        r
    }

    /// A value reply into `oval` (None for nil / false).
    fn out_val(&mut self, r: Reply) -> Result<Option<Out<'_>>> {
        match r {
            Reply::Nil => Ok(None),
            Reply::Bulk(b) => {
                self.oval = b;
                dec_val(self.vk, &self.oval).map(Some).ok_or_else(|| bad_reply("a value"))
            }
            // A small int value the script returned as a number.
            Reply::Int(n) if self.vk.is_int() => Ok(Some(Out::Int(n))),
            _ => Err(bad_reply("a value")),
        }
    }

    fn out_bool(r: Reply) -> Result<bool> {
        match r {
            Reply::Int(n) => Ok(n != 0),
            Reply::Nil => Ok(false),
            _ => Err(bad_reply("a boolean")),
        }
    }

    fn out_int(r: Reply) -> Result<i64> {
        r.int().ok_or_else(|| bad_reply("a number"))
    }

    /// A {k, v, kflag} reply into okey / oval.
    fn out_pair(&mut self, r: Reply) -> Result<Option<(Out<'_>, Out<'_>)>> {
        match r {
            Reply::Nil => Ok(None),
            Reply::Array(mut a) if a.len() == 3 => {
                let f = a[2].int() == Some(1);
                self.oval = match a.remove(1) {
                    Reply::Bulk(b) => b,
                    _ => return Err(bad_reply("an entry")),
                };
                self.okey = match a.remove(0) {
                    Reply::Bulk(b) => b,
                    _ => return Err(bad_reply("an entry")),
                };
                let k = dec_key(self.kk, &self.okey, f).ok_or_else(|| bad_reply("a key"))?;
                let v = dec_val(self.vk, &self.oval).ok_or_else(|| bad_reply("a value"))?;
                Ok(Some((k, v)))
            }
            _ => Err(bad_reply("an entry")),
        }
    }

    /// Soft failure: Redis out of memory (maxmemory) reads as the spec's "no room".
    fn soft<T>(r: Result<T>, none: T) -> Result<T> {
        match r {
            Err(e) if e.kind() == ErrorKind::Full => Ok(none),
            r => r,
        }
    }

    // -- per-key operations (api.md 6.1-6.5) --------------------------------------------

    /// The value of `key`, or None (expired entries read as absent; on LRU maps a hit is
    /// marked accessed).
    pub fn get(&mut self, key: In<'_>) -> Result<Option<Out<'_>>> {
        self.key_in(key)?;
        let r = if self.ttl == 0 && (self.max_size == 0 || self.ro) {
            // Plain maps: one HGET.
            let shard = self.route(key);
            let slot = self.shards[shard].slot;
            let mut kb = std::mem::take(&mut self.kb);
            enc_key(self.kk, key, &mut kb);
            let d = self.shards[shard].keys[1].clone();
            let r = self.run(slot, &[b"HGET", &d, &kb], true);
            self.kb = kb;
            self.check(r?)?
        } else {
            let mark: &[u8] = if self.ro { b"0" } else { b"1" };
            self.keyed(b"get", key, &[mark], true)?
        };
        self.out_val(r)
    }

    /// The value and its remaining TTL (Some(0) permanent; None on a map without TTL).
    pub fn get_with_ttl(&mut self, key: In<'_>) -> Result<Option<(Out<'_>, Option<u32>)>> {
        let mark: &[u8] = if self.ro { b"0" } else { b"1" };
        let r = self.keyed(b"getx", key, &[mark], true)?;
        match r {
            Reply::Nil => Ok(None),
            Reply::Array(mut a) if a.len() == 2 => {
                let left = a[1].int().ok_or_else(|| bad_reply("get_with_ttl"))?;
                let v = a.swap_remove(0);
                let left = if left < 0 { None } else { Some(left.min(u32::MAX as i64) as u32) };
                Ok(self.out_val(v)?.map(|v| (v, left)))
            }
            _ => Err(bad_reply("get_with_ttl")),
        }
    }

    /// Seconds until `key` expires (Some(0): permanent; None: no TTL, missing, expired).
    pub fn ttl_remaining(&mut self, key: In<'_>) -> Result<Option<u32>> {
        self.key_in(key)?;
        if self.ttl == 0 {
            return Ok(None);
        }
        let r = self.keyed(b"ttl", key, &[], true)?;
        Ok(r.int().map(|n| n.clamp(0, u32::MAX as i64) as u32))
    }

    /// Is `key` present and live?
    pub fn exists(&mut self, key: In<'_>) -> Result<bool> {
        self.key_in(key)?;
        if self.ttl == 0 {
            let shard = self.route(key);
            let slot = self.shards[shard].slot;
            let mut kb = std::mem::take(&mut self.kb);
            enc_key(self.kk, key, &mut kb);
            let d = self.shards[shard].keys[1].clone();
            let r = self.run(slot, &[b"HEXISTS", &d, &kb], true);
            self.kb = kb;
            return Remote::out_bool(self.check(r?)?);
        }
        Remote::out_bool(self.keyed(b"exists", key, &[], true)?)
    }

    fn put_mode(&mut self, key: In<'_>, val: In<'_>, ttl: Option<u32>) -> Result<bool> {
        self.writable()?;
        self.val_in(val, "value")?;
        let mut vb = std::mem::take(&mut self.vb);
        enc_val(self.vk, val, &mut vb);
        let (mode, secs, tail): (&[u8], String, &[u8]) = match ttl {
            None => (b"d", "0".into(), b""),
            Some(s) => (b"s", s.min(crate::ttl::MAX_TTL_ARG).to_string(), b"needttl"),
        };
        let flag = self.flag();
        // A map without TTL and LRU uses neither the expiry nor the promotion
        // arguments: not sent (each argument costs the server per call).
        let all: [&[u8]; 6] = [&vb, Remote::kf(key), mode, secs.as_bytes(), flag, tail];
        // A plain put of a key without the UTF-8 flag leaves out the flag too, and cannot
        // touch the set of flagged keys (lua/map.lua, ops.put).
        let bare = self.plain() && ttl.is_none() && Remote::kf(key) == b"0";
        let n = if bare { 1 } else if self.plain() && ttl.is_none() { 2 } else { 6 };
        let r = self.keyed_raw(b"put", key, &all[..n], true, !bare).and_then(|r| self.check(r));
        self.vb = vb;
        Remote::soft(r.and_then(Remote::out_bool), false)
    }

    /// Inserts or overwrites (false: the map holds max_entries, or Redis is out of
    /// memory).
    pub fn put(&mut self, key: In<'_>, val: In<'_>) -> Result<bool> {
        self.put_mode(key, val, None)
    }

    /// Put with this entry's TTL (0 = permanent; clamped as for files).
    pub fn put_ttl(&mut self, key: In<'_>, val: In<'_>, ttl_secs: u32) -> Result<bool> {
        self.put_mode(key, val, Some(ttl_secs))
    }

    fn add_mode(&mut self, key: In<'_>, val: In<'_>, ttl: Option<u32>) -> Result<bool> {
        self.writable()?;
        self.val_in(val, "value")?;
        let mut vb = std::mem::take(&mut self.vb);
        enc_val(self.vk, val, &mut vb);
        let (mode, secs, tail): (&[u8], String, &[u8]) = match ttl {
            None => (b"d", "0".into(), b""),
            Some(s) => (b"s", s.min(crate::ttl::MAX_TTL_ARG).to_string(), b"needttl"),
        };
        let r = self.keyed(b"add", key, &[&vb, Remote::kf(key), mode, secs.as_bytes(), tail], false);
        self.vb = vb;
        Remote::soft(r.and_then(Remote::out_bool), false)
    }

    /// Inserts only if absent.
    pub fn add(&mut self, key: In<'_>, val: In<'_>) -> Result<bool> {
        self.add_mode(key, val, None)
    }

    /// Add with this entry's TTL.
    pub fn add_ttl(&mut self, key: In<'_>, val: In<'_>, ttl_secs: u32) -> Result<bool> {
        self.add_mode(key, val, Some(ttl_secs))
    }

    fn update_mode(&mut self, key: In<'_>, val: In<'_>, ttl: Option<u32>) -> Result<bool> {
        self.writable()?;
        self.val_in(val, "value")?;
        let mut vb = std::mem::take(&mut self.vb);
        enc_val(self.vk, val, &mut vb);
        let (mode, secs, tail): (&[u8], String, &[u8]) = match ttl {
            None => (b"d", "0".into(), b""),
            Some(s) => (b"s", s.min(crate::ttl::MAX_TTL_ARG).to_string(), b"needttl"),
        };
        let flag = self.flag();
        // update is idempotent in its effect, but a repeated one answers false when an
        // expired entry was reclaimed by the first: not retried.
        let r = self.keyed(b"update", key, &[&vb, mode, secs.as_bytes(), flag, tail], false);
        self.vb = vb;
        Remote::soft(r.and_then(Remote::out_bool), false)
    }

    /// Overwrites only if present and live.
    pub fn update(&mut self, key: In<'_>, val: In<'_>) -> Result<bool> {
        self.update_mode(key, val, None)
    }

    /// Update that also sets the entry's TTL.
    pub fn update_ttl(&mut self, key: In<'_>, val: In<'_>, ttl_secs: u32) -> Result<bool> {
        self.update_mode(key, val, Some(ttl_secs))
    }

    /// Put returning the previous value.
    pub fn swap(&mut self, key: In<'_>, val: In<'_>) -> Result<Option<Out<'_>>> {
        self.writable()?;
        self.val_in(val, "value")?;
        let mut vb = std::mem::take(&mut self.vb);
        enc_val(self.vk, val, &mut vb);
        let flag = self.flag();
        let r = self.keyed(b"swap", key, &[&vb, Remote::kf(key), flag], false);
        self.vb = vb;
        let r = Remote::soft(r, Reply::Nil)?;
        self.out_val(r)
    }

    /// Removes `key` and returns its value.
    pub fn take(&mut self, key: In<'_>) -> Result<Option<Out<'_>>> {
        self.writable()?;
        let r = self.keyed(b"take", key, &[], false)?;
        self.out_val(r)
    }

    /// Removes `key` (expired or not); true if it was present.
    pub fn remove(&mut self, key: In<'_>) -> Result<bool> {
        self.writable()?;
        Remote::out_bool(self.keyed(b"remove", key, &[], false)?)
    }

    /// The stored value (promoted, expiry refreshed) or `dflt` after inserting it.
    pub fn get_or_set(&mut self, key: In<'_>, dflt: In<'_>) -> Result<Option<Out<'_>>> {
        self.writable()?;
        self.val_in(dflt, "value")?;
        let mut vb = std::mem::take(&mut self.vb);
        enc_val(self.vk, dflt, &mut vb);
        let flag = self.flag();
        let r = self.keyed(b"gos", key, &[&vb, Remote::kf(key), flag], false);
        self.vb = vb;
        let r = Remote::soft(r, Reply::Nil)?;
        self.out_val(r)
    }

    /// Read-modify-write with a closure (see [`crate::raw::Map::upsert_with`]), done
    /// optimistically: the value is read, `f` decides in this process, and the change
    /// is applied only if the entry is still what `f` saw (cas, cas_take, add, touch:
    /// each one atomic script). When another handle changed it in between, nothing is
    /// written and the call fails with [`ErrorKind::Conflict`] (`f` is `FnOnce`: it
    /// cannot be run again here; the caller may retry).
    pub fn upsert_with(
        &mut self,
        key: In<'_>,
        f: impl FnOnce(Option<Out<'_>>) -> crate::map::Change,
    ) -> Result<(crate::map::Upserted, Option<Value>)> {
        use crate::map::{Change, Upserted};
        self.writable()?;
        let cur = self.get(key)?.map(Out::to_value);
        let shown = cur.as_ref().map(|v| match v {
            Value::Int(i) => Out::Int(*i),
            Value::Str(b, u) => Out::Str(b, *u),
        });
        let change = f(shown);
        let conflict = || Error::new(ErrorKind::Conflict, "the entry changed while the closure ran (a map in Redis): nothing was written");
        let mut vb = Vec::new();
        let mut eb = Vec::new();
        match (cur, change) {
            // Kept counts as a use (promotion, expiry reset), as for files; touch
            // is that, and answers false when the entry went meanwhile. (A map with
            // neither LRU nor TTL has nothing to touch.)
            (Some(c), Change::Keep) if self.max_size == 0 && self.ttl == 0 => Ok((Upserted::Kept, Some(c))),
            (Some(c), Change::Keep) => match self.touch(key)? {
                true => Ok((Upserted::Kept, Some(c))),
                false => Err(conflict()),
            },
            (Some(c), Change::Set(v)) => {
                self.val_in(v.as_in(), "value")?;
                enc_cmp(self.vk, c.as_in(), &mut eb);
                enc_val(self.vk, v.as_in(), &mut vb);
                let flag = self.flag();
                match self.keyed(b"cas", key, &[&eb, &vb, flag], false).and_then(Remote::out_bool) {
                    Ok(true) => Ok((Upserted::Updated, Some(v))),
                    Ok(false) => Err(conflict()),
                    Err(e) if e.kind() == ErrorKind::Full => Ok((Upserted::Full, None)),
                    Err(e) => Err(e),
                }
            }
            (Some(c), Change::Remove) => match self.cas_take(key, c.as_in())? {
                Some(_) => Ok((Upserted::Removed, None)),
                None => Err(conflict()),
            },
            (None, Change::Set(v)) => {
                self.val_in(v.as_in(), "value")?;
                enc_val(self.vk, v.as_in(), &mut vb);
                let r = self.keyed(b"add", key, &[&vb, Remote::kf(key), b"d", b"0", b""], false);
                match r.and_then(Remote::out_bool) {
                    Ok(true) => Ok((Upserted::Inserted, Some(v))),
                    Ok(false) => Err(conflict()),
                    Err(e) if e.kind() == ErrorKind::Full => Ok((Upserted::Full, None)),
                    Err(e) => Err(e),
                }
            }
            (None, Change::Keep | Change::Remove) => Ok((Upserted::Kept, None)),
        }
    }

    /// Compare-and-swap (ints after narrowing, strings by bytes).
    pub fn cas(&mut self, key: In<'_>, expected: In<'_>, desired: In<'_>) -> Result<bool> {
        self.writable()?;
        self.val_in(expected, "expected value")?;
        self.val_in(desired, "desired value")?;
        let mut eb = std::mem::take(&mut self.eb);
        let mut vb = std::mem::take(&mut self.vb);
        enc_cmp(self.vk, expected, &mut eb);
        enc_val(self.vk, desired, &mut vb);
        let flag = self.flag();
        let r = self.keyed(b"cas", key, &[&eb, &vb, flag], false);
        self.eb = eb;
        self.vb = vb;
        Remote::soft(r.and_then(Remote::out_bool), false)
    }

    /// Removes the entry if its value equals `expected`; returns it.
    pub fn cas_take(&mut self, key: In<'_>, expected: In<'_>) -> Result<Option<Out<'_>>> {
        self.writable()?;
        self.val_in(expected, "expected value")?;
        let mut eb = std::mem::take(&mut self.eb);
        enc_cmp(self.vk, expected, &mut eb);
        let r = self.keyed(b"cast", key, &[&eb], false);
        self.eb = eb;
        let r = r?;
        self.out_val(r)
    }

    fn counter_kind(&self) -> Result<Kind> {
        if self.vk.is_int() {
            Ok(self.vk)
        } else {
            Err(Error::new(ErrorKind::Unsupported, "counters need an integer-value variant"))
        }
    }

    /// Adds `delta` (narrowed), wrapping at the variant width; a missing key is inserted
    /// with `delta`. Error kind `Full` when a new key cannot be inserted.
    pub fn incr_by(&mut self, key: In<'_>, delta: i64) -> Result<i64> {
        self.writable()?;
        let d = self.counter_kind()?.narrow(delta);
        let ds = d.to_string();
        // As put: a plain incr of a key without the flag sends neither it nor the set,
        // nor w below, which only a result that wraps needs: the script then changes
        // nothing and answers "HMS wrap", and the full call follows (lua/map.lua,
        // fast.incr).
        if self.plain() && Remote::kf(key) == b"0" {
            match self.keyed_raw(b"incr", key, &[ds.as_bytes()], false, false)? {
                Reply::Err(e) if e == "HMS wrap" => {}
                r => return Ok(self.vk.narrow(Remote::out_int(self.check(r)?)?)),
            }
        }
        // HINCRBY's wrap steps need delta with its top bit flipped (lua/map.lua).
        let w = (d ^ i64::MIN).to_string();
        let flag = self.flag();
        let all: [&[u8]; 4] = [ds.as_bytes(), w.as_bytes(), Remote::kf(key), flag];
        let r = self.keyed(b"incr", key, &all[..if self.plain() { 3 } else { 4 }], false)?;
        Ok(self.vk.narrow(Remote::out_int(r)?))
    }

    fn bound(&mut self, op: &[u8], key: In<'_>, v: i64) -> Result<i64> {
        self.writable()?;
        let v = self.counter_kind()?.narrow(v);
        let vs = v.to_string();
        let flag = self.flag();
        // max/min are idempotent: a repeat stores and returns the same.
        let r = self.keyed(op, key, &[vs.as_bytes(), Remote::kf(key), flag], true)?;
        Remote::out_int(r)
    }

    /// Stores max(current, v); returns the result.
    pub fn max(&mut self, key: In<'_>, v: i64) -> Result<i64> {
        self.bound(b"max", key, v)
    }

    /// Stores min(current, v); returns the result.
    pub fn min(&mut self, key: In<'_>, v: i64) -> Result<i64> {
        self.bound(b"min", key, v)
    }

    /// Promotes (LRU) and refreshes the expiry to the default (TTL).
    pub fn touch(&mut self, key: In<'_>) -> Result<bool> {
        self.writable()?;
        let flag = self.flag();
        Remote::out_bool(self.keyed(b"touch", key, &[flag], false)?)
    }

    /// Makes `key` permanent.
    pub fn persist(&mut self, key: In<'_>) -> Result<bool> {
        self.writable()?;
        Remote::out_bool(self.keyed(b"persist", key, &[], false)?)
    }

    /// Sets `key` to expire `ttl_secs` from now (0 = permanent).
    pub fn set_ttl(&mut self, key: In<'_>, ttl_secs: u32) -> Result<bool> {
        self.writable()?;
        let s = ttl_secs.to_string();
        Remote::out_bool(self.keyed(b"setttl", key, &[s.as_bytes()], false)?)
    }

    // -- batches (api.md 6.4) -------------------------------------------------------------

    fn args(&self, op: &[u8]) -> Vec<Vec<u8>> {
        vec![op.to_vec(), self.id.clone().into_bytes()]
    }

    /// Puts every pair (one script per shard, pipelined); returns how many were stored.
    pub fn set_multi(&mut self, pairs: &[(In<'_>, In<'_>)]) -> Result<u64> {
        self.writable()?;
        let n = self.shards.len();
        let mut per: Vec<Vec<Vec<u8>>> = vec![Vec::new(); n];
        for &(k, v) in pairs {
            self.key_in(k)?;
            self.val_in(v, "value")?;
        }
        let flag = self.flag().to_vec();
        for &(k, v) in pairs {
            let s = self.route(k);
            if per[s].is_empty() {
                per[s] = self.args(b"mset");
                per[s].push(flag.clone());
            }
            let mut kb = Vec::new();
            enc_key(self.kk, k, &mut kb);
            let mut vb = Vec::new();
            enc_val(self.vk, v, &mut vb);
            per[s].push(kb);
            per[s].push(vb);
            per[s].push(Remote::kf(k).to_vec());
        }
        let calls: Vec<(usize, Vec<Vec<u8>>)> = per.into_iter().enumerate().filter(|(_, a)| !a.is_empty()).collect();
        if calls.is_empty() {
            return Ok(0);
        }
        let mut total = 0;
        for r in self.eval_many(calls, true)? {
            total += Remote::soft(self.check(r).and_then(Remote::out_int), 0)? as u64;
        }
        Ok(total)
    }

    /// Removes every listed key; returns how many were removed.
    pub fn remove_multi(&mut self, keys: &[In<'_>]) -> Result<u64> {
        self.writable()?;
        let mut per: Vec<Vec<Vec<u8>>> = vec![Vec::new(); self.shards.len()];
        for &k in keys {
            self.key_in(k)?;
            let s = self.route(k);
            if per[s].is_empty() {
                per[s] = self.args(b"mdel");
            }
            let mut kb = Vec::new();
            enc_key(self.kk, k, &mut kb);
            per[s].push(kb);
        }
        let calls: Vec<(usize, Vec<Vec<u8>>)> = per.into_iter().enumerate().filter(|(_, a)| !a.is_empty()).collect();
        if calls.is_empty() {
            return Ok(0);
        }
        let mut total = 0;
        for r in self.eval_many(calls, false)? {
            total += self.check(r).and_then(Remote::out_int)? as u64;
        }
        Ok(total)
    }

    /// Looks every key up (one call per shard, pipelined); `sink(index, value)` in key
    /// order. No entry is marked accessed, except on sharded LRU maps (as for files,
    /// where each key of a sharded get_multi is an ordinary get).
    pub fn get_multi_with(&mut self, keys: &[In<'_>], mut sink: impl FnMut(usize, Option<Out<'_>>)) -> Result<()> {
        let n = self.shards.len();
        let mark: &[u8] = if n > 1 && !self.ro { b"1" } else { b"0" };
        let mut per: Vec<Vec<Vec<u8>>> = vec![Vec::new(); n];
        let mut order: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, &k) in keys.iter().enumerate() {
            self.key_in(k)?;
            let s = self.route(k);
            if per[s].is_empty() {
                per[s] = self.args(b"mget");
                per[s].push(mark.to_vec());
            }
            let mut kb = Vec::new();
            enc_key(self.kk, k, &mut kb);
            per[s].push(kb);
            order[s].push(i);
        }
        let shards: Vec<usize> = (0..n).filter(|&s| !per[s].is_empty()).collect();
        let calls: Vec<(usize, Vec<Vec<u8>>)> = shards.iter().map(|&s| (s, std::mem::take(&mut per[s]))).collect();
        if calls.is_empty() {
            return Ok(());
        }
        let mut vals: Vec<Option<Vec<u8>>> = vec![None; keys.len()];
        for (s, r) in shards.iter().zip(self.eval_many(calls, true)?) {
            let Reply::Array(items) = self.check(r)? else { return Err(bad_reply("get_multi")) };
            for (&i, it) in order[*s].iter().zip(items) {
                if let Reply::Bulk(b) = it {
                    vals[i] = Some(b);
                }
            }
        }
        for (i, v) in vals.iter().enumerate() {
            match v {
                Some(b) => sink(i, Some(dec_val(self.vk, b).ok_or_else(|| bad_reply("a value"))?)),
                None => sink(i, None),
            }
        }
        Ok(())
    }

    /// [`Remote::get_multi_with`] collecting owned values.
    pub fn get_multi(&mut self, keys: &[In<'_>]) -> Result<Vec<Option<Value>>> {
        let mut v = Vec::with_capacity(keys.len());
        self.get_multi_with(keys, |_, o| v.push(o.map(Out::to_value)))?;
        Ok(v)
    }

    // -- whole-map operations -------------------------------------------------------------

    /// The same script on every shard (pipelined).
    fn all_shards(&self, op: &[u8], extra: &[&[u8]], idem: bool) -> Result<Vec<Reply>> {
        let calls: Vec<(usize, Vec<Vec<u8>>)> = (0..self.shards.len())
            .map(|s| {
                let mut a = self.args(op);
                a.extend(extra.iter().map(|x| x.to_vec()));
                (s, a)
            })
            .collect();
        let rs = self.eval_many(calls, idem)?;
        rs.into_iter().map(|r| self.check(r)).collect()
    }

    /// Removes every expired entry; returns how many.
    pub fn flush_expired(&mut self) -> Result<u64> {
        self.writable()?;
        let mut total = 0;
        let lim = FLUSH_BATCH.to_string();
        loop {
            let mut more = false;
            for r in self.all_shards(b"flush", &[lim.as_bytes()], true)? {
                let Reply::Array(a) = r else { return Err(bad_reply("flush_expired")) };
                total += a.first().and_then(Reply::int).unwrap_or(0) as u64;
                more |= a.get(1).and_then(Reply::int) == Some(0);
            }
            if !more {
                return Ok(total);
            }
        }
    }

    /// Removes up to `limit` expired entries per shard: (removed, done), done when no
    /// shard has an expired entry left.
    pub fn flush_expired_partial(&mut self, limit: u32) -> Result<(u64, bool)> {
        self.writable()?;
        let lim = limit.max(1).to_string();
        let (mut n, mut done) = (0, true);
        for r in self.all_shards(b"flush", &[lim.as_bytes()], true)? {
            let Reply::Array(a) = r else { return Err(bad_reply("flush_expired_partial")) };
            n += a.first().and_then(Reply::int).unwrap_or(0) as u64;
            done &= a.get(1).and_then(Reply::int) == Some(1);
        }
        Ok((n, done))
    }

    /// pop (`shift` false) or shift: the shards round-robin from the rotation pointer.
    pub fn take_one(&mut self, shift: bool) -> Result<Option<(Out<'_>, Out<'_>)>> {
        self.writable()?;
        let n = self.shards.len();
        let end: &[u8] = if shift { b"h" } else { b"t" };
        for i in 0..n {
            let s = (self.rot + i) % n;
            let id = self.id.clone();
            let r = self.eval(s, &[b"pop", id.as_bytes(), end], false)?;
            let r = self.check(r)?;
            if r != Reply::Nil {
                self.rot = (s + 1) % n;
                return self.out_pair(r);
            }
        }
        Ok(None)
    }

    /// Removes and returns the LRU tail (LRU maps) or some entry.
    pub fn pop(&mut self) -> Result<Option<(Out<'_>, Out<'_>)>> {
        self.take_one(false)
    }

    /// Removes and returns the LRU head (LRU maps) or some entry.
    pub fn shift(&mut self) -> Result<Option<(Out<'_>, Out<'_>)>> {
        self.take_one(true)
    }

    /// Removes up to `n` entries in pop order (from the rotation pointer on through the
    /// following shards), calling `sink` for each; returns how many.
    pub fn drain_with(&mut self, n: u64, mut sink: impl FnMut(Out<'_>, Out<'_>)) -> Result<u64> {
        self.writable()?;
        let k = self.shards.len();
        let mut got = 0;
        for i in 0..k {
            if got >= n {
                break;
            }
            let s = (self.rot + i) % k;
            let want = (n - got).to_string();
            let id = self.id.clone();
            let r = self.eval(s, &[b"drain", id.as_bytes(), want.as_bytes()], false)?;
            let Reply::Array(a) = self.check(r)? else { return Err(bad_reply("drain")) };
            for e in a.chunks(3) {
                let (Some(Reply::Bulk(kb)), Some(Reply::Bulk(vb))) = (e.first(), e.get(1)) else {
                    return Err(bad_reply("drain"));
                };
                let f = e.get(2).and_then(Reply::int) == Some(1);
                let key = dec_key(self.kk, kb, f).ok_or_else(|| bad_reply("a key"))?;
                let val = dec_val(self.vk, vb).ok_or_else(|| bad_reply("a value"))?;
                sink(key, val);
                got += 1;
            }
        }
        if k > 0 {
            self.rot = (self.rot + 1) % k;
        }
        Ok(got)
    }

    /// [`Remote::drain_with`] collecting owned pairs.
    pub fn drain(&mut self, n: u64) -> Result<Vec<(Value, Value)>> {
        let mut v = Vec::new();
        self.drain_with(n, |k, x| v.push((k.to_value(), x.to_value())))?;
        Ok(v)
    }

    /// Removes every entry of every shard (statistics kept).
    pub fn clear(&mut self) -> Result<()> {
        self.writable()?;
        self.all_shards(b"clear", &[], true)?;
        self.each = Scan::default();
        Ok(())
    }

    /// True when `n` entries fit (n <= max_entries per shard); nothing grows. Refused on
    /// frozen maps, as for files.
    pub fn reserve(&mut self, n: u64) -> Result<bool> {
        self.writable()?;
        self.all_shards(b"reserve", &[], true)?;
        Ok(n <= self.max_entries)
    }

    /// Durability is the server's (its persistence and replication settings): nothing to
    /// do here.
    pub fn sync(&self) -> Result<()> {
        Ok(())
    }

    /// Deletes the map (every shard and the set's record) for every user; true when it
    /// existed.
    pub fn unlink(&mut self) -> bool {
        let n = self.shards.len();
        let mut ok = self.all_shards(b"unlink", &[], true).map(|v| v.iter().all(|r| r.int() == Some(1))).unwrap_or(false);
        if n > 1 {
            // The set's record, under the name's own tag.
            let dir = ShardKeys::new(&self.url.prefix, &self.url.name);
            let r = self.run(dir.slot, &[b"DEL", &dir.keys[0]], true);
            ok &= matches!(r, Ok(Reply::Int(1)));
        }
        ok
    }

    /// Statistics (api.md 6.8; capacity reports the entries the map may hold, the arena
    /// and mapping figures are 0: see "Differences on Redis").
    pub fn stats(&self) -> Result<Stats> {
        let n = self.shards.len() as u64;
        let mut st = Stats {
            capacity: layout::max_cap_for(self.req_max_entries) as u64 * n,
            max_entries: self.max_entries * n,
            max_size: self.max_size * n,
            ttl: self.ttl,
            readonly: self.ro as u64,
            ..Stats::default()
        };
        for (i, r) in self.all_shards(b"stats", &[], true)?.into_iter().enumerate() {
            let Reply::Array(a) = r else { return Err(bad_reply("stats")) };
            let g = |j: usize| a.get(j).and_then(Reply::int).unwrap_or(0).max(0) as u64;
            st.size = st.size.saturating_add(g(0));
            st.evictions += g(1);
            st.expired += g(2);
            if i == 0 {
                st.frozen = g(3);
            }
        }
        st.size = st.size.min(u32::MAX as u64);
        Ok(st)
    }

    /// Entries present (expired ones included, as for files).
    pub fn len(&self) -> Result<u64> {
        Ok(self.stats()?.size)
    }

    /// No entries?
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Seals the map (every shard) for good; this handle becomes read-only.
    pub fn freeze(&mut self) -> Result<()> {
        let refused = || Error::new(ErrorKind::Frozen, "cannot freeze a read-only handle");
        if self.ro {
            return Err(refused());
        }
        match self.all_shards(b"freeze", &[], true) {
            Err(e) if e.kind() == ErrorKind::Frozen => return Err(refused()),
            r => r?,
        };
        if self.shards.len() > 1 {
            // The set's record too: opening the set checks the seal there.
            let dir = ShardKeys::new(&self.url.prefix, &self.url.name);
            let id = self.id.clone();
            let r = self.call_at(&dir, &[b"freeze", id.as_bytes()], true, true)?;
            match self.check(r) {
                Err(e) if e.kind() != ErrorKind::Frozen => return Err(e),
                _ => {}
            }
        }
        self.ro = true;
        Ok(())
    }

    /// Is the map sealed (by any handle)?
    pub fn frozen(&self) -> Result<bool> {
        Ok(self.stats()?.frozen != 0)
    }

    /// Is this handle read-only (opened read-only, or it froze the map)?
    pub fn readonly(&self) -> bool {
        self.ro
    }

    /// The LRU bound of each shard (0: none).
    pub fn max_size(&self) -> u64 {
        self.max_size
    }

    /// The default TTL in seconds (0: no TTL).
    pub fn default_ttl(&self) -> u64 {
        self.ttl
    }

    /// Describes every inconsistency between the map's Redis keys (empty when sound).
    pub fn verify(&self) -> Vec<String> {
        let n = self.shards.len();
        match self.all_shards(b"verify", &[], true) {
            Err(e) => vec![e.to_string()],
            Ok(rs) => rs
                .into_iter()
                .enumerate()
                .flat_map(|(i, r)| {
                    let items = match r {
                        Reply::Array(a) => a,
                        _ => vec![],
                    };
                    items.into_iter().map(move |p| {
                        let s = String::from_utf8_lossy(p.bytes().unwrap_or(b"?")).into_owned();
                        if n > 1 {
                            format!("shard {i}: {s}")
                        } else {
                            s
                        }
                    })
                })
                .collect(),
        }
    }

    // -- accessors --------------------------------------------------------------------------

    /// The variant.
    pub fn variant(&self) -> Variant {
        self.variant
    }
    /// The URL without its password.
    pub fn path(&self) -> &std::ffi::CStr {
        &self.display
    }
    /// No descriptor: -1.
    pub fn memfd(&self) -> i32 {
        -1
    }
    /// Is this an LRU map?
    pub fn has_lru(&self) -> bool {
        self.max_size > 0
    }
    /// Is this a TTL map?
    pub fn has_ttl(&self) -> bool {
        self.ttl > 0
    }
    /// Number of shards (1 for a plain map).
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    // -- iteration (api.md 6.7) ---------------------------------------------------------------

    /// The next entry of `sc` (scan steps of SCAN_COUNT, shard by shard), into okey/oval.
    fn scan_next(&mut self, sc: &mut Scan) -> Result<bool> {
        loop {
            if let Some((k, v, f)) = sc.buf.pop_front() {
                self.okey = k;
                self.oval = v;
                self.scanned_flag = f;
                return Ok(true);
            }
            if sc.done || sc.shard >= self.shards.len() {
                sc.done = true;
                return Ok(false);
            }
            if sc.cursor.as_deref() == Some(b"0") {
                if sc.one_shard {
                    sc.done = true;
                    return Ok(false);
                }
                sc.shard += 1;
                sc.cursor = None;
                continue;
            }
            let cur = sc.cursor.clone().unwrap_or_else(|| b"0".to_vec());
            let id = self.id.clone();
            let r = self.eval(sc.shard, &[b"scan", id.as_bytes(), &cur, SCAN_COUNT.as_bytes()], true)?;
            let Reply::Array(mut a) = self.check(r)? else { return Err(bad_reply("scan")) };
            if a.is_empty() {
                return Err(bad_reply("scan"));
            }
            let next = match a.remove(0) {
                Reply::Bulk(b) => b,
                _ => return Err(bad_reply("scan")),
            };
            let mut it = a.into_iter();
            while let (Some(Reply::Bulk(k)), Some(Reply::Bulk(v)), Some(f)) = (it.next(), it.next(), it.next()) {
                sc.buf.push_back((k, v, f.int() == Some(1)));
            }
            sc.cursor = Some(next);
        }
    }

    fn scanned(&self) -> Result<(Out<'_>, Out<'_>)> {
        let k = dec_key(self.kk, &self.okey, self.scanned_flag).ok_or_else(|| bad_reply("a key"))?;
        let v = dec_val(self.vk, &self.oval).ok_or_else(|| bad_reply("a value"))?;
        Ok((k, v))
    }

    /// Next entry of this handle's iterator; None at the end, which also resets it.
    pub fn each(&mut self) -> Result<Option<(Out<'_>, Out<'_>)>> {
        let mut sc = std::mem::take(&mut self.each);
        let got = self.scan_next(&mut sc);
        match got {
            Ok(true) => {
                self.each = sc;
                Ok(Some(self.scanned()?))
            }
            Ok(false) => {
                self.each = Scan::default();
                Ok(None)
            }
            Err(e) => {
                self.each = sc;
                Err(e)
            }
        }
    }

    /// Resets this handle's iterator.
    pub fn iter_reset(&mut self) {
        self.each = Scan::default();
    }

    /// Calls `f(key, value)` for every live entry: per shard one snapshot when it holds
    /// at most 10,000 entries, scan steps otherwise.
    pub fn for_each(&mut self, keys: bool, vals: bool, mut f: impl FnMut(Out<'_>, Out<'_>)) -> Result<()> {
        for s in 0..self.shards.len() {
            let id = self.id.clone();
            let lim = SNAPSHOT_MAX.to_string();
            let r = self.eval(s, &[b"all", id.as_bytes(), lim.as_bytes()], true)?;
            match self.check(r)? {
                Reply::Array(a) => {
                    for e in a.chunks(3) {
                        let (Some(Reply::Bulk(kb)), Some(Reply::Bulk(vb))) = (e.first(), e.get(1)) else {
                            return Err(bad_reply("keys"));
                        };
                        let fl = e.get(2).and_then(Reply::int) == Some(1);
                        let k = if keys { dec_key(self.kk, kb, fl).ok_or_else(|| bad_reply("a key"))? } else { Out::Int(0) };
                        let v = if vals { dec_val(self.vk, vb).ok_or_else(|| bad_reply("a value"))? } else { Out::Int(0) };
                        f(k, v);
                    }
                }
                _ => {
                    // Too big for one snapshot: scan steps of this shard.
                    let mut sc = Scan { shard: s, one_shard: true, ..Scan::default() };
                    while self.scan_next(&mut sc)? {
                        let (k, v) = self.scanned()?;
                        f(if keys { k } else { Out::Int(0) }, if vals { v } else { Out::Int(0) });
                    }
                }
            }
        }
        Ok(())
    }

    /// All entries (owned).
    pub fn items(&mut self) -> Result<Vec<(Value, Value)>> {
        let mut v = Vec::new();
        self.for_each(true, true, |k, x| v.push((k.to_value(), x.to_value())))?;
        Ok(v)
    }

    /// The cursor's next entry; None once exhausted (it stays so until reset or seek).
    pub fn cursor_next(&mut self, c: &mut RemoteCursor) -> Result<Option<(Out<'_>, Out<'_>)>> {
        if self.scan_next(&mut c.scan)? {
            Ok(Some(self.scanned()?))
        } else {
            Ok(None)
        }
    }

    /// Back before the first entry of shard 0.
    pub fn cursor_reset(&mut self, c: &mut RemoteCursor) {
        c.scan = Scan::default();
    }

    /// If `key` is live, the cursor's next entry is that one (then the scan goes on where
    /// it was; on a sharded map it moves to the key's shard first); true if found. A
    /// miss on another shard still moves the cursor to that shard's start.
    pub fn cursor_seek(&mut self, c: &mut RemoteCursor, key: In<'_>) -> Result<bool> {
        let target = self.route(key);
        let r = self.keyed(b"seek", key, &[], true)?;
        let moved = target != c.scan.shard || c.scan.done;
        match r {
            Reply::Array(mut a) if a.len() == 2 => {
                let f = a[1].int() == Some(1);
                let Reply::Bulk(v) = a.swap_remove(0) else { return Err(bad_reply("seek")) };
                if moved {
                    c.scan = Scan { shard: target, ..Scan::default() };
                }
                let mut kb = Vec::new();
                enc_key(self.kk, key, &mut kb);
                // The sought entry first; the scan may meet it again later (as after a
                // resize on files, an entry can come twice).
                c.scan.buf.retain(|(k, _, _)| *k != kb);
                c.scan.buf.push_front((kb, v, f));
                Ok(true)
            }
            _ => {
                if moved && target != c.scan.shard {
                    c.scan = Scan { shard: target, ..Scan::default() };
                }
                Ok(false)
            }
        }
    }
}
