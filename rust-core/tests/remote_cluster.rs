//! The Redis backend on a 3-master Redis Cluster started by the test: shards spread
//! over the masters, ASK during a slot migration and MOVED after it are followed.
#![cfg(feature = "redis")]

mod redis_server;

use hashmap_shared::raw::{In, Out, Remote, Value, Variant};
use hashmap_shared::{Options};
use redis_server::Cluster;

#[test]
fn a_sharded_map_spreads_over_the_masters_and_follows_ask_and_moved() {
    let Some(c) = Cluster::start(3, 0) else { return };
    let url = c.url("big", "");
    let mut m = Remote::open_sharded(&url, 16, &Options::of(Variant::II, 100_000)).unwrap();
    let pairs: Vec<(In, In)> = (0..3000).map(|i| (In::Int(i), In::Int(-i))).collect();
    assert_eq!(m.set_multi(&pairs).unwrap(), 3000);
    for (i, n) in c.nodes.iter().enumerate() {
        let keys: u64 = n.cli(&["DBSIZE"]).trim().parse().unwrap();
        assert!(keys >= 10, "master {i} holds shards too: {keys} keys");
    }
    let ks: Vec<In> = (0..3000).map(In::Int).collect();
    let got = m.get_multi(&ks).unwrap();
    assert!(got.iter().enumerate().all(|(i, v)| *v == Some(Value::Int(-(i as i64)))));
    assert_eq!(m.len().unwrap(), 3000);
    // A plain map (one slot) works the same.
    let mut p = Remote::open(&c.url("plain", ""), &Options::of(Variant::SI, 1000)).unwrap();
    assert_eq!(p.incr_by(In::Str(b"hits", false), 3).unwrap(), 3);

    // Move the slot of the shard holding key 7 to another master, keys first (the slot
    // then answers ASK for them), then the slot itself (MOVED).
    let key_slot = |k: &str| -> u16 { c.nodes[0].cli(&["CLUSTER", "KEYSLOT", k]).trim().parse().unwrap() };
    let shard = m.route(In::Int(7));
    // Find the shard's tag from a key of it on the servers.
    let mut slot = None;
    for n in &c.nodes {
        for k in n.cli(&["KEYS", "hms:{big.*}:m"]).lines() {
            if k.contains(&format!("{{big.{shard}.")) {
                slot = Some(key_slot(k));
            }
        }
    }
    let slot = slot.expect("the shard's meta key");
    let src = c.master_of(slot);
    let dst = (src + 1) % 3;
    let id = |i: usize| c.nodes[i].cli(&["CLUSTER", "MYID"]).trim().to_string();
    let (sid, did) = (id(src), id(dst));
    let s = slot.to_string();
    assert_eq!(c.nodes[dst].cli(&["CLUSTER", "SETSLOT", &s, "IMPORTING", &sid]).trim(), "OK");
    assert_eq!(c.nodes[src].cli(&["CLUSTER", "SETSLOT", &s, "MIGRATING", &did]).trim(), "OK");
    let keys: Vec<String> = c.nodes[src].cli(&["CLUSTER", "GETKEYSINSLOT", &s, "100"]).lines().map(String::from).collect();
    assert!(keys.len() >= 2, "{keys:?}");
    let mut mig = vec!["MIGRATE".to_string(), "127.0.0.1".into(), c.nodes[dst].port.to_string(), "".into(), "0".into(), "5000".into(), "KEYS".into()];
    mig.extend(keys);
    let mr: Vec<&str> = mig.iter().map(String::as_str).collect();
    assert_eq!(c.nodes[src].cli(&mr).trim(), "OK");
    // Keys gone from the source: it answers ASK, the client asks the importing node.
    assert_eq!(m.get(In::Int(7)).unwrap(), Some(Out::Int(-7)));
    assert_eq!(m.incr_by(In::Int(7), 10).unwrap(), 3);
    for n in &c.nodes {
        assert_eq!(n.cli(&["CLUSTER", "SETSLOT", &s, "NODE", &did]).trim(), "OK");
    }
    // Now the source answers MOVED and the client's slot map follows.
    assert_eq!(m.incr_by(In::Int(7), 10).unwrap(), 13);
    assert_eq!(m.get(In::Int(8)).unwrap(), Some(Out::Int(-8)));
    let mut fresh = Remote::open_sharded(&url, 16, &Options::of(Variant::II, 1)).unwrap();
    assert_eq!(fresh.get(In::Int(7)).unwrap(), Some(Out::Int(13)));
    assert_eq!(fresh.items().unwrap().len(), 3000);
    assert!(fresh.verify().is_empty());
}
