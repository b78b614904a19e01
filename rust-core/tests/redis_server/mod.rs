//! Real redis-server processes for the Redis backend's tests: started on a unix socket
//! in a temp dir (or a free TCP port, or as a 3-master cluster), stopped by pid.
//!
//! When redis-server is not installed the tests skip with a reason, unless
//! HMS_REQUIRE_REDIS=1 (CI), which turns that into a failure.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    pub child: Option<Child>,
    pub dir: PathBuf,
    pub sock: PathBuf,
    pub port: u16,
    args: Vec<String>,
    pass: Option<String>,
}

/// Is redis-server there? Prints why a test skips, or panics when HMS_REQUIRE_REDIS=1.
pub fn available() -> bool {
    let ok = Command::new("redis-server").arg("--version").stdout(Stdio::null()).status().map(|s| s.success()).unwrap_or(false);
    if !ok {
        if std::env::var("HMS_REQUIRE_REDIS").as_deref() == Ok("1") {
            panic!("redis-server is not installed and HMS_REQUIRE_REDIS=1");
        }
        eprintln!("SKIP: redis-server not installed (apt-get install redis-server)");
    }
    ok
}

fn tmpdir(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("hms-redis-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl Server {
    /// A server listening on a unix socket only.
    pub fn unix(extra: &[&str]) -> Option<Server> {
        Server::start("u", 0, extra)
    }

    /// A server on a free TCP port (and a unix socket for redis-cli).
    pub fn tcp(extra: &[&str]) -> Option<Server> {
        Server::start("t", free_port(), extra)
    }

    fn start(tag: &str, port: u16, extra: &[&str]) -> Option<Server> {
        if !available() {
            return None;
        }
        let dir = tmpdir(tag);
        let sock = dir.join("redis.sock");
        let mut args: Vec<String> = vec![
            "--port".into(),
            port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--unixsocket".into(),
            sock.display().to_string(),
            "--save".into(),
            "".into(),
            "--appendonly".into(),
            "no".into(),
            "--dir".into(),
            dir.display().to_string(),
            "--enable-debug-command".into(),
            "yes".into(),
            "--logfile".into(),
            dir.join("log").display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let pass = extra.iter().position(|a| *a == "--requirepass").map(|i| extra[i + 1].to_string());
        let mut s = Server { child: None, dir, sock, port, args, pass };
        s.launch();
        Some(s)
    }

    fn launch(&mut self) {
        let child = Command::new("redis-server").args(&self.args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        self.child = Some(child);
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if self.cli(&["PING"]).trim() == "PONG" {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("redis-server did not start: {}", std::fs::read_to_string(self.dir.join("log")).unwrap_or_default());
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    /// redis-cli on the server's socket; stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut c = Command::new("redis-cli");
        c.arg("-s").arg(&self.sock);
        if let Some(p) = &self.pass {
            c.args(["--no-auth-warning", "-a", p]);
        }
        let out = c.args(args).stderr(Stdio::null()).output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default()
    }

    /// redis-cli in the background (DEBUG SLEEP).
    pub fn cli_bg(&self, args: &[&str]) -> Child {
        Command::new("redis-cli").arg("-s").arg(&self.sock).args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap()
    }

    pub fn unix_url(&self, name: &str, opts: &str) -> String {
        let sep = if opts.is_empty() { "" } else { "&" };
        format!("redis+unix://{}?name={name}{sep}{opts}", self.sock.display())
    }

    pub fn tcp_url(&self, name: &str, opts: &str) -> String {
        let q = if opts.is_empty() { String::new() } else { format!("?{opts}") };
        format!("redis://127.0.0.1:{}/{name}{q}", self.port)
    }

    /// Stops the server (SIGTERM, or SIGKILL when `hard`) and waits for it.
    pub fn stop(&mut self, hard: bool) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling our own child by its pid.
            unsafe { libc::kill(c.id() as i32, if hard { libc::SIGKILL } else { libc::SIGTERM }) };
            let _ = c.wait();
        }
    }

    /// Starts it again with the same arguments (same socket and port).
    pub fn restart(&mut self) {
        self.stop(false);
        let _ = std::fs::remove_file(&self.sock);
        self.launch();
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(self.pid(), sig) };
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop(true);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Cluster of `masters` masters with `replicas` replicas each (node timeout
/// 1000 ms), every node a child of this process.
pub struct Cluster {
    pub nodes: Vec<Server>,
}

impl Cluster {
    pub fn start(masters: usize, replicas: usize) -> Option<Cluster> {
        if !available() {
            return None;
        }
        let mut nodes = Vec::new();
        for _ in 0..masters * (1 + replicas) {
            let port = free_port();
            let cport = free_port();
            let conf = format!("nodes-{port}.conf");
            let s = Server::start(
                "c",
                port,
                &[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    &conf,
                    "--cluster-node-timeout",
                    "1000",
                    "--cluster-port",
                    &cport.to_string(),
                    "--repl-diskless-sync-delay",
                    "0",
                ],
            )?;
            nodes.push(s);
        }
        let mut args: Vec<String> = vec!["--cluster".into(), "create".into()];
        args.extend(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)));
        args.extend(["--cluster-replicas".into(), replicas.to_string(), "--cluster-yes".into()]);
        let st = Command::new("redis-cli").args(&args).stdout(Stdio::null()).stderr(Stdio::null()).status().unwrap();
        assert!(st.success(), "redis-cli --cluster create failed");
        let c = Cluster { nodes };
        c.wait_ok(Duration::from_secs(30));
        Some(c)
    }

    /// Waits until every running node reports cluster_state:ok (and, with replicas, every
    /// replica is in sync).
    pub fn wait_ok(&self, limit: Duration) {
        let t = Instant::now();
        while t.elapsed() < limit {
            let ok = self.nodes.iter().filter(|n| n.child.is_some()).all(|n| {
                let i = n.cli(&["CLUSTER", "INFO"]);
                i.contains("cluster_state:ok")
            });
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("cluster not ok after {limit:?}");
    }

    pub fn url(&self, name: &str, opts: &str) -> String {
        let hosts: Vec<String> = self.nodes.iter().take(3).map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let q = if opts.is_empty() { String::new() } else { format!("?{opts}") };
        format!("redis://{}/{name}{q}", hosts.join(","))
    }

    /// The node serving `slot` as master.
    pub fn master_of(&self, slot: u16) -> usize {
        for (i, n) in self.nodes.iter().enumerate() {
            if n.child.is_none() {
                continue;
            }
            let out = n.cli(&["CLUSTER", "SLOTS"]);
            let _ = out;
            let mine = n.cli(&["CLUSTER", "MYID"]).trim().to_string();
            let nodes = n.cli(&["CLUSTER", "NODES"]);
            for line in nodes.lines() {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() < 9 || f[0] != mine || !f[2].contains("master") {
                    continue;
                }
                for r in &f[8..] {
                    let (lo, hi) = match r.split_once('-') {
                        Some((a, b)) => (a.parse().unwrap_or(1), b.parse().unwrap_or(0)),
                        None => (r.parse().unwrap_or(1), r.parse().unwrap_or(0)),
                    };
                    if (lo..=hi).contains(&slot) {
                        return i;
                    }
                }
            }
        }
        panic!("no master for slot {slot}");
    }
}

pub fn path_of(p: &Path) -> String {
    p.display().to_string()
}
