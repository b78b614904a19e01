//! The Redis backend when the network and the server misbehave: several processes on
//! one map, fork, server restarts, read timeouts (DEBUG SLEEP), a flushed script cache,
//! Redis out of memory, and TTL expiry by the server's clock.
#![cfg(feature = "redis")]

mod redis_server;

use hashmap_shared::raw::{In, Out, Remote, Variant};
use hashmap_shared::{ErrorKind, Options};
use redis_server::Server;
use std::time::{Duration, Instant};

fn fork_children(n: usize, mut f: impl FnMut(usize) -> bool) -> Vec<bool> {
    let mut pids = Vec::new();
    for c in 0..n {
        // SAFETY: the child runs `f` and leaves with _exit (no destructors, no test
        // harness state touched twice).
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(c))).unwrap_or(false);
            // SAFETY: leaving the child without running the parent's destructors.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        pids.push(pid);
    }
    pids.into_iter()
        .map(|p| {
            let mut st = 0;
            // SAFETY: waiting for our own child.
            unsafe { libc::waitpid(p, &mut st, 0) };
            libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0
        })
        .collect()
}

#[test]
fn several_processes_count_exactly_and_a_child_never_uses_the_parents_connection() {
    let Some(srv) = Server::unix(&[]) else { return };
    let url = srv.unix_url("counters", "");
    let mut m = Remote::open(&url, &Options::of(Variant::SI, 1000)).unwrap();
    // The parent's connection exists before the fork...
    assert_eq!(m.incr_by(In::Str(b"parent", false), 1).unwrap(), 1);
    let clients_before: usize = srv.cli(&["CLIENT", "LIST"]).lines().count();
    let ok = fork_children(4, |c| {
        // ...and each child, using the inherited handle, makes its own.
        for i in 0..2000 {
            if m.incr_by(In::Str(b"total", false), 1).is_err() {
                return false;
            }
            if m.incr_by(In::Str(format!("child{c}").as_bytes(), false), 2).is_err() {
                return false;
            }
            if i % 500 == 0 && m.get(In::Str(b"parent", false)).ok() != Some(Some(Out::Int(1))) {
                return false;
            }
        }
        true
    });
    assert_eq!(ok, vec![true; 4]);
    assert_eq!(m.get(In::Str(b"total", false)).unwrap(), Some(Out::Int(8000)));
    for c in 0..4 {
        assert_eq!(m.get(In::Str(format!("child{c}").as_bytes(), false)).unwrap(), Some(Out::Int(4000)));
    }
    // The parent's own connection still works after the children exited.
    assert_eq!(m.incr_by(In::Str(b"parent", false), 1).unwrap(), 2);
    assert_eq!(srv.cli(&["CLIENT", "LIST"]).lines().count(), clients_before, "one connection per process");
}

#[test]
fn a_restarted_server_is_reconnected_on_the_next_call() {
    let Some(mut srv) = Server::tcp(&[]) else { return };
    let url = srv.tcp_url("restart", "");
    let mut m = Remote::open(&url, &Options::of(Variant::II, 100)).unwrap();
    m.put(In::Int(1), In::Int(1)).unwrap();
    srv.restart();
    // The data is gone (no persistence configured): the map is gone with it, and the
    // first call after the restart says so, not "outcome unknown" or a broken pipe.
    let e = m.incr_by(In::Int(1), 1).unwrap_err();
    assert!(e.to_string().contains("map no longer exists"), "{e}");
    let mut m = Remote::open(&url, &Options::of(Variant::II, 100)).unwrap();
    assert_eq!(m.incr_by(In::Int(1), 5).unwrap(), 5);
    // A server that is down: a clear error naming it, and no password anywhere.
    srv.stop(false);
    let e = m.get(In::Int(1)).unwrap_err();
    assert!(e.to_string().starts_with(&format!("redis: 127.0.0.1:{}:", srv.port)), "{e}");
    srv.restart();
    let e = m.get(In::Int(1));
    assert!(e.is_ok(), "reconnected after the restart: {e:?}");
}

#[test]
fn a_read_timeout_never_lets_a_late_reply_answer_the_next_call() {
    let Some(srv) = Server::unix(&[]) else { return };
    let url = srv.unix_url("slow", "timeout=0.3");
    let mut m = Remote::open(&url, &Options::of(Variant::II, 100)).unwrap();
    m.put(In::Int(1), In::Int(10)).unwrap();
    m.put(In::Int(2), In::Int(20)).unwrap();
    let mut sleeper = srv.cli_bg(&["DEBUG", "SLEEP", "1"]);
    std::thread::sleep(Duration::from_millis(100));
    // A counter whose reply comes late: outcome unknown, said so.
    let t = Instant::now();
    let e = m.incr_by(In::Int(1), 1).unwrap_err();
    assert!(e.to_string().contains("timed out") && e.to_string().contains("outcome unknown"), "{e}");
    assert!(t.elapsed() < Duration::from_millis(900), "the timeout is honoured");
    sleeper.wait().unwrap();
    // The late reply (11) must not be taken for the answer of this get.
    assert_eq!(m.get(In::Int(2)).unwrap(), Some(Out::Int(20)));
    assert_eq!(m.get(In::Int(1)).unwrap(), Some(Out::Int(11)), "the incr did run");
    // A read that times out is retried once on a new connection: it still fails while
    // the server sleeps, and answers right afterwards.
    let mut sleeper = srv.cli_bg(&["DEBUG", "SLEEP", "0.8"]);
    std::thread::sleep(Duration::from_millis(100));
    let e = m.get(In::Int(2)).unwrap_err();
    assert!(e.to_string().contains("timed out"), "{e}");
    sleeper.wait().unwrap();
    assert_eq!(m.get(In::Int(2)).unwrap(), Some(Out::Int(20)));
}

#[test]
fn flushed_functions_are_reloaded_transparently() {
    let Some(srv) = Server::unix(&[]) else { return };
    let mut m = Remote::open(&srv.unix_url("flush", ""), &Options::of(Variant::SS, 100).lru(50, 0)).unwrap();
    m.put(In::Str(b"a", false), In::Str(b"1", false)).unwrap();
    assert!(srv.cli(&["FUNCTION", "LIST"]).contains("hms_"), "the library is loaded on first use");
    assert_eq!(srv.cli(&["FUNCTION", "FLUSH"]).trim(), "OK");
    // A write, a marking read and a plain read each find the library gone and load it.
    assert!(m.add(In::Str(b"b", false), In::Str(b"2", false)).unwrap());
    assert_eq!(srv.cli(&["FUNCTION", "FLUSH"]).trim(), "OK");
    assert_eq!(m.get(In::Str(b"b", false)).unwrap(), Some(Out::Str(b"2", false)));
    assert_eq!(srv.cli(&["FUNCTION", "FLUSH"]).trim(), "OK");
    assert!(m.exists(In::Str(b"a", false)).unwrap());
    // Batches too (pipelined calls, each redone after the load).
    assert_eq!(srv.cli(&["FUNCTION", "FLUSH"]).trim(), "OK");
    assert_eq!(m.set_multi(&[(In::Str(b"c", false), In::Str(b"3", false))]).unwrap(), 1);
    // The old script cache is not used at all.
    assert_eq!(srv.cli(&["SCRIPT", "FLUSH"]).trim(), "OK");
    assert_eq!(m.get(In::Str(b"c", false)).unwrap(), Some(Out::Str(b"3", false)));
}

#[test]
fn redis_out_of_memory_is_the_soft_failure_of_a_full_map() {
    let Some(srv) = Server::unix(&["--maxmemory-policy", "noeviction"]) else { return };
    let mut m = Remote::open(&srv.unix_url("oom", ""), &Options::of(Variant::SS, 1_000_000).lru(500_000, 0).ttl(3600)).unwrap();
    let big = vec![b'x'; 4096];
    m.put(In::Str(b"kept", false), In::Str(b"v", false)).unwrap();
    let used: u64 = srv
        .cli(&["INFO", "memory"])
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:").map(|v| v.trim().parse().unwrap()))
        .unwrap();
    srv.cli(&["CONFIG", "SET", "maxmemory", &(used + 200_000).to_string()]);
    let mut refused = 0;
    for i in 0..200 {
        match m.put(In::Str(format!("k{i}").as_bytes(), false), In::Str(&big, false)) {
            Ok(true) => {}
            Ok(false) => refused += 1,
            Err(e) => panic!("put must fail softly, not croak: {e}"),
        }
    }
    assert!(refused > 0, "maxmemory was reached");
    let e = m.get_or_set(In::Str(b"new key", false), In::Str(&big, false)).unwrap();
    assert!(e.is_none());
    // Reads and removals still work, and the map stays consistent.
    assert_eq!(m.get(In::Str(b"kept", false)).unwrap(), Some(Out::Str(b"v", false)));
    assert!(m.remove(In::Str(b"k0", false)).unwrap());
    srv.cli(&["CONFIG", "SET", "maxmemory", "0"]);
    assert!(m.verify().is_empty(), "{:?}", m.verify());
    assert!(m.put(In::Str(b"after", false), In::Str(&big, false)).unwrap());
    // Counters that cannot insert fail with the Full kind (Perl: "increment failed").
    let mut n = Remote::open(&srv.unix_url("oomi", ""), &Options::of(Variant::SI, 100)).unwrap();
    srv.cli(&["CONFIG", "SET", "maxmemory", "1"]);
    assert_eq!(n.incr_by(In::Str(b"c", false), 1).unwrap_err().kind(), ErrorKind::Full);
    srv.cli(&["CONFIG", "SET", "maxmemory", "0"]);
    assert_eq!(n.incr_by(In::Str(b"c", false), 1).unwrap(), 1);
}

#[test]
fn entries_expire_by_the_servers_clock_with_the_file_rules() {
    let Some(srv) = Server::unix(&[]) else { return };
    let mut m = Remote::open(&srv.unix_url("ttl", ""), &Options::of(Variant::SI, 100).ttl(2)).unwrap();
    let k = |s: &'static str| In::Str(s.as_bytes(), false);
    m.put(k("short"), In::Int(1)).unwrap();
    m.put_ttl(k("forever"), In::Int(2), 0).unwrap();
    m.put_ttl(k("long"), In::Int(3), 100).unwrap();
    m.incr_by(k("counter"), 1).unwrap();
    assert_eq!(m.ttl_remaining(k("short")).unwrap(), Some(2));
    assert_eq!(m.ttl_remaining(k("forever")).unwrap(), Some(0));
    assert_eq!(m.ttl_remaining(k("long")).unwrap(), Some(100));
    assert_eq!(m.ttl_remaining(k("missing")).unwrap(), None);
    assert_eq!(m.get_with_ttl(k("long")).unwrap(), Some((Out::Int(3), Some(100))));
    assert!(m.persist(k("long")).unwrap());
    assert_eq!(m.ttl_remaining(k("long")).unwrap(), Some(0));
    assert!(m.set_ttl(k("long"), 50).unwrap());
    assert_eq!(m.ttl_remaining(k("long")).unwrap(), Some(50));
    std::thread::sleep(Duration::from_millis(3100));
    assert_eq!(m.get(k("short")).unwrap(), None, "expired");
    assert!(!m.exists(k("short")).unwrap());
    assert_eq!(m.len().unwrap(), 4, "size counts expired entries until they are reclaimed");
    assert_eq!(m.get(k("forever")).unwrap(), Some(Out::Int(2)));
    // A counter on an expired key starts over (the old entry reclaimed and counted).
    assert_eq!(m.incr_by(k("counter"), 5).unwrap(), 5);
    assert_eq!(m.stats().unwrap().expired, 1);
    assert_eq!(m.flush_expired().unwrap(), 1, "short");
    assert_eq!(m.stats().unwrap().expired, 2);
    assert_eq!(m.len().unwrap(), 3);
    // put revives an expired entry in place (not counted); add reclaims it (counted).
    m.put(k("a"), In::Int(1)).unwrap();
    m.put(k("b"), In::Int(1)).unwrap();
    std::thread::sleep(Duration::from_millis(3100));
    assert!(m.put(k("a"), In::Int(2)).unwrap());
    assert_eq!(m.get(k("a")).unwrap(), Some(Out::Int(2)));
    assert!(m.add(k("b"), In::Int(3)).unwrap());
    let st = m.stats().unwrap();
    assert_eq!(st.expired, 3, "b reclaimed by add (the revived a not counted)");
    assert_eq!(m.flush_expired_partial(10).unwrap(), (1, true), "the counter");
    assert_eq!(m.flush_expired_partial(10).unwrap(), (0, true));
    let mut plain = Remote::open(&srv.unix_url("nottl", ""), &Options::of(Variant::SI, 100)).unwrap();
    let e = plain.put_ttl(k("x"), In::Int(1), 5).unwrap_err();
    assert_eq!(e.to_string(), "operation requires a TTL-enabled map (pass ttl > 0 to constructor)");
    assert!(!plain.set_ttl(k("x"), 5).unwrap());
    assert_eq!(plain.flush_expired_partial(10).unwrap(), (0, true));
}

#[test]
fn no_password_in_path_errors_or_stats() {
    let Some(srv) = Server::tcp(&["--requirepass", "s3cr3t-word"]) else { return };
    let url = format!("redis://:s3cr3t-word@127.0.0.1:{}/auth", srv.port);
    let mut m = Remote::open(&url, &Options::of(Variant::II, 100)).unwrap();
    assert_eq!(m.path().to_str().unwrap(), format!("redis://127.0.0.1:{}/auth", srv.port));
    m.put(In::Int(1), In::Int(1)).unwrap();
    let bad = format!("redis://:wrong-word@127.0.0.1:{}/auth", srv.port);
    let e = Remote::open(&bad, &Options::of(Variant::II, 100)).err().unwrap().to_string();
    assert!(e.contains("WRONGPASS") || e.contains("invalid password"), "{e}");
    assert!(!e.contains("wrong-word") && !e.contains("s3cr3t"), "{e}");
    // ACL users.
    srv.cli(&["ACL", "SETUSER", "app", "on", ">app-pass", "~*", "+@all"]);
    let url = format!("redis://app:app-pass@127.0.0.1:{}/auth", srv.port);
    let mut a = Remote::open(&url, &Options::of(Variant::II, 100)).unwrap();
    assert_eq!(a.get(In::Int(1)).unwrap(), Some(Out::Int(1)));
    assert_eq!(a.path().to_str().unwrap(), format!("redis://app@127.0.0.1:{}/auth", srv.port));
    let e = Remote::open(&format!("redis://app:nope@127.0.0.1:{}/auth", srv.port), &Options::of(Variant::II, 1)).err().unwrap();
    assert!(!e.to_string().contains("nope"), "{e}");
}
