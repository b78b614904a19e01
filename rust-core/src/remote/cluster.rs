//! Where a Redis key lives: one server, or the master of its hash slot in a Redis
//! Cluster, from a slot map of our own.
//!
//! Every script and command of a map touches the keys of one shard only, which share a
//! hash tag, so a call goes to exactly one slot. The slot map comes from CLUSTER SLOTS;
//! a MOVED reply corrects one slot at once, an ASK reply sends that one call to the
//! importing node after ASKING. When a master dies the slot map is re-read from any
//! node that answers (the seeds and every node seen) until a replica has taken over:
//! the `redis` crate's synchronous cluster client keeps reconnecting to the dead
//! address instead (see remote/mod.rs), which is one reason this module exists.

use super::conn::{self, Fail, Link, Settings};
use super::resp::Reply;
use super::url::Addr;
use crate::error::Result;
use std::sync::{Arc, Mutex};

/// Slots in a Redis Cluster.
pub const SLOTS: usize = 16384;

/// CRC16-CCITT (XMODEM), Redis Cluster's key hash.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc
}

/// The slot of `key` by Redis' rule: the hash tag (between the first `{` and the next
/// `}`, when not empty) or else the whole key.
pub fn slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&c| c == b'{').and_then(|s| {
        let e = key[s + 1..].iter().position(|&c| c == b'}')?;
        (e > 0).then(|| &key[s + 1..s + 1 + e])
    });
    crc16(tagged.unwrap_or(key)) % SLOTS as u16
}

/// The servers of one URL and which one serves each slot.
///
/// The node list and slot map sit behind a mutex so that every call can go through
/// `&self` (statistics and other whole-map reads of a handle take `&self`); a handle is
/// used by one thread at a time, so the lock is never contended and is held for a
/// lookup, or for the CLUSTER SLOTS round trip of a refresh.
pub struct Topology {
    pub cluster: bool,
    seeds: Vec<Addr>,
    set: Settings,
    st: Mutex<State>,
}

/// Known nodes (masters first seen); `slots` index into them.
struct State {
    nodes: Vec<Addr>,
    links: Vec<Arc<Mutex<Link>>>,
    slots: Vec<u16>,
}

impl State {
    fn node_index(&mut self, a: &Addr, set: &Settings) -> u16 {
        if let Some(i) = self.nodes.iter().position(|n| n == a) {
            return i as u16;
        }
        self.nodes.push(a.clone());
        self.links.push(conn::link(a, set));
        (self.nodes.len() - 1) as u16
    }
}

impl Topology {
    /// A single server (every slot on `addr`).
    pub fn single(addr: Addr, set: Settings) -> Topology {
        let l = conn::link(&addr, &set);
        let st = State { nodes: vec![addr.clone()], links: vec![l], slots: vec![0; 1] };
        Topology { cluster: false, seeds: vec![addr], set, st: Mutex::new(st) }
    }

    /// A cluster known by its seeds (the slot map is read on the first [`Topology::refresh`]).
    pub fn cluster(seeds: Vec<Addr>, set: Settings) -> Topology {
        let st = State { nodes: Vec::new(), links: Vec::new(), slots: vec![u16::MAX; SLOTS] };
        Topology { cluster: true, seeds, set, st: Mutex::new(st) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The link serving `slot` (None: a cluster slot no master serves as far as we know).
    pub fn link_for(&self, slot: u16) -> Option<(Addr, Arc<Mutex<Link>>)> {
        let st = self.state();
        let i = if self.cluster { *st.slots.get(slot as usize)? } else { 0 };
        let l = st.links.get(i as usize)?;
        Some((st.nodes[i as usize].clone(), l.clone()))
    }

    /// The link of `addr` (ASK targets, MOVED targets), added when new.
    pub fn link_of(&self, addr: &Addr) -> Arc<Mutex<Link>> {
        let mut st = self.state();
        let i = st.node_index(addr, &self.set);
        st.links[i as usize].clone()
    }

    /// MOVED: `slot` is now served by `addr`.
    pub fn moved(&self, slot: u16, addr: &Addr) {
        if self.cluster {
            let mut st = self.state();
            let i = st.node_index(addr, &self.set);
            st.slots[slot as usize] = i;
        }
    }

/// Re-reads the slot map from the first node that answers CLUSTER SLOTS (every node
    /// seen, then the seeds). Ok(false) when none answered.
    pub fn refresh(&self) -> Result<bool> {
        if !self.cluster {
            return Ok(true);
        }
        let mut cands: Vec<Addr> = self.state().nodes.clone();
        for s in &self.seeds {
            if !cands.contains(s) {
                cands.push(s.clone());
            }
        }
        let mut last = None;
        for a in cands {
            let l = conn::link(&a, &self.set);
            let r = l.lock().unwrap_or_else(|p| p.into_inner()).exec(&[b"CLUSTER", b"SLOTS"]);
            match r {
                Ok(Reply::Array(ranges)) if !ranges.is_empty() => {
                    let mut slots = vec![u16::MAX; SLOTS];
                    for r in ranges {
                        let Reply::Array(f) = r else { continue };
                        let (Some(lo), Some(hi)) = (f.first().and_then(Reply::int), f.get(1).and_then(Reply::int)) else { continue };
                        let Some(Reply::Array(m)) = f.get(2) else { continue };
                        let host = m.first().and_then(|h| h.bytes()).map(|b| String::from_utf8_lossy(b).into_owned());
                        let Some(port) = m.get(1).and_then(Reply::int) else { continue };
                        // An empty host means "the address you asked" (Redis 7 with
                        // cluster-preferred-endpoint-type unknown-endpoint).
                        let host = match host {
                            Some(h) if !h.is_empty() && h != "?" => h,
                            _ => match &a {
                                Addr::Tcp(h, _) => h.clone(),
                                Addr::Unix(_) => continue,
                            },
                        };
                        let node = self.state().node_index(&Addr::Tcp(host, port as u16), &self.set);
                        for s in lo.max(0)..=hi.min(SLOTS as i64 - 1) {
                            slots[s as usize] = node;
                        }
                    }
                    self.state().slots = slots;
                    return Ok(true);
                }
                Ok(Reply::Err(e)) => last = Some(conn::err(&a, e)),
                Ok(_) => last = Some(conn::err(&a, "CLUSTER SLOTS: unexpected reply")),
                Err(f) => last = Some(f.error()),
            }
        }
        match last {
            Some(_) => Ok(false),
            None => Ok(false),
        }
    }
}

/// Is a server that answers `INFO cluster` with cluster_enabled:1 a cluster node?
pub fn detect(addr: &Addr, set: &Settings) -> std::result::Result<bool, Fail> {
    let l = conn::link(addr, set);
    let r = l.lock().unwrap_or_else(|p| p.into_inner()).exec(&[b"INFO", b"cluster"])?;
    Ok(match r {
        Reply::Bulk(b) => String::from_utf8_lossy(&b).contains("cluster_enabled:1"),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_redis_hash_tags() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"{user1000}.following"), slot(b"{user1000}.followers"));
        assert_eq!(slot(b"foo{}{bar}"), slot(b"foo{}{bar}"), "empty tag: the whole key");
        assert_eq!(slot(b"foo{{bar}}zap"), slot(b"{bar"));
        assert_eq!(slot(b"hms:{x}:m"), slot(b"x"));
    }
}
