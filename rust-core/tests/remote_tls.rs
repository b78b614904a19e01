//! rediss:// against a real redis-server with TLS (certificates made by openssl for the
//! test): the server's certificate is checked.
#![cfg(feature = "redis-tls")]

mod redis_server;

use hashmap_shared::raw::{In, Out, Remote, Variant};
use hashmap_shared::{Options};
use redis_server::Server;
use std::path::Path;
use std::process::Command;

fn openssl(dir: &Path, args: &[&str]) {
    let st = Command::new("openssl").current_dir(dir).args(args).output().expect("openssl");
    assert!(st.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&st.stderr));
}

/// A CA and a server certificate for localhost / 127.0.0.1 signed by it; and a second,
/// unrelated CA.
fn certs(dir: &Path) {
    openssl(dir, &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=hms test CA"]);
    openssl(dir, &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out", "other.crt", "-days", "2", "-subj", "/CN=other CA"]);
    openssl(dir, &["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]);
    std::fs::write(dir.join("ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n").unwrap();
    openssl(
        dir,
        &["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "ext"],
    );
}

#[test]
fn rediss_checks_the_servers_certificate() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("SKIP: openssl not installed");
        return;
    }
    let dir = std::env::temp_dir().join(format!("hms-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    certs(&dir);
    let port = redis_server::free_port();
    let f = |n: &str| dir.join(n).display().to_string();
    let (cert, key, ca) = (f("server.crt"), f("server.key"), f("ca.crt"));
    let ps = port.to_string();
    let Some(srv) = Server::unix(&["--tls-port", &ps, "--tls-cert-file", &cert, "--tls-key-file", &key, "--tls-ca-cert-file", &ca, "--tls-auth-clients", "no"])
    else {
        return;
    };
    let url = format!("rediss://localhost:{port}/secure?tls_ca={ca}");
    let mut m = Remote::open(&url, &Options::of(Variant::SS, 100)).unwrap();
    assert!(m.put(In::Str(b"k", false), In::Str(b"over TLS", false)).unwrap());
    assert_eq!(m.get(In::Str(b"k", false)).unwrap(), Some(Out::Str(b"over TLS", false)));
    assert_eq!(srv.cli(&["HGET", "hms:{secure}:d", "k"]).trim(), "0over TLS");
    // A certificate that does not chain to the CAs we trust is refused.
    let bad = format!("rediss://localhost:{port}/secure?tls_ca={}", f("other.crt"));
    let e = Remote::open(&bad, &Options::of(Variant::SS, 100)).err().unwrap().to_string();
    assert!(e.contains("TLS") && e.contains("certificate"), "{e}");
    // A plain client on the TLS port gets no answer it could take for one.
    let e = Remote::open(&format!("redis://localhost:{port}/secure?timeout=0.5"), &Options::of(Variant::SS, 100)).err();
    assert!(e.is_some());
    let _ = std::fs::remove_dir_all(&dir);
}
