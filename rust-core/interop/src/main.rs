//! hashmap-shared-interop: a Rust program using the same map files as Perl, through
//! the typed API of hashmap-shared.
//!
//!     hashmap-shared-interop write PATH II|SS N   create PATH, store N entries (+ 1 for SS)
//!     hashmap-shared-interop read  PATH II|SS     print every entry, sorted by key
//!     hashmap-shared-interop copy  SRC DST        copy an SS map entry by entry into DST
//!     hashmap-shared-interop incr  PATH KEY N     N atomic increments of KEY (an SI map)
//!
//! `write` stores key i -> i * 3 (II), or (SS) the byte-string key "key-i" -> the text
//! "välue-i" (a Rust `str`: Perl reads characters), plus the text key "ключ" -> the
//! bytes "\xff\x00raw". `read` prints "KEY\tVALUE\tFLAGS" lines, then "size N": FLAGS
//! are two characters, for the key and the value, `u` when its UTF-8 flag is on and `-`
//! otherwise; bytes that are not UTF-8 print as \xNN. `copy` reads SRC and writes DST
//! with the flags each string had. t/rust-interop.t drives it in both directions.

use hashmap_shared::{Bytes, Map, Options, Storable};
use std::path::Path;
use std::process::ExitCode;

type Fail = Box<dyn std::error::Error>;

fn number(s: &str) -> Result<u64, Fail> {
    s.parse().map_err(|_| format!("not a number: {s:?}").into())
}

/// Opens an existing map (`Map::open` would create a missing one).
fn existing<K: Storable, V: Storable>(path: &str) -> Result<Map<K, V>, Fail> {
    if !Path::new(path).exists() {
        return Err(format!("{path}: no such file").into());
    }
    Ok(Map::open(&Options::new(1).file(path))?)
}

fn write(path: &str, variant: &str, n: u64) -> Result<(), Fail> {
    let opts = Options::new(n + 1).file(path);
    match variant {
        "II" => {
            let mut m: Map<i64, i64> = Map::open(&opts)?;
            for i in 1..=n as i64 {
                m.put(i, i * 3)?;
            }
        }
        "SS" => {
            let mut m: Map<Bytes, Bytes> = Map::open(&opts)?;
            for i in 1..=n {
                m.put(format!("key-{i}").into_bytes(), format!("välue-{i}"))?;
            }
            m.put("ключ", b"\xff\x00raw")?;
        }
        other => return Err(format!("variant must be II or SS, not {other:?}").into()),
    }
    println!("wrote {n}");
    Ok(())
}

fn show(b: &Bytes) -> String {
    match b.to_str() {
        Ok(s) => s.to_owned(),
        Err(_) => b.escape_ascii().to_string(),
    }
}

fn flag(b: &Bytes) -> char {
    if b.utf8_flag() {
        'u'
    } else {
        '-'
    }
}

fn read(path: &str, variant: &str) -> Result<(), Fail> {
    let size = match variant {
        "II" => {
            let mut m: Map<i64, i64> = existing(path)?;
            let mut items = m.to_vec()?;
            items.sort();
            for (k, v) in items {
                println!("{k}\t{v}\t--");
            }
            m.len()
        }
        "SS" => {
            let mut m: Map<Bytes, Bytes> = existing(path)?;
            let mut items = m.to_vec()?;
            items.sort();
            for (k, v) in &items {
                println!("{}\t{}\t{}{}", show(k), show(v), flag(k), flag(v));
            }
            m.len()
        }
        other => return Err(format!("variant must be II or SS, not {other:?}").into()),
    };
    println!("size {size}");
    Ok(())
}

fn copy(src: &str, dst: &str) -> Result<(), Fail> {
    let mut from: Map<Bytes, Bytes> = existing(src)?;
    let mut to: Map<Bytes, Bytes> = Map::open(&Options::new(from.stats().max_entries).file(dst))?;
    // An iterator of owned entries; each Bytes carries the flag Perl stored, and
    // passing it on stores that flag again.
    let mut n = 0;
    for (k, v) in from.iter() {
        to.put(k, v)?;
        n += 1;
    }
    println!("copied {n}");
    Ok(())
}

fn incr(path: &str, key: &str, n: u64) -> Result<(), Fail> {
    let mut m: Map<Bytes, i64> = existing(path)?;
    let mut last = 0;
    for _ in 0..n {
        last = m.incr(key, 1)?;
    }
    println!("{last}");
    Ok(())
}

fn run(args: &[String]) -> Result<(), Fail> {
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["write", path, v, n] => write(path, v, number(n)?),
        ["read", path, v] => read(path, v),
        ["copy", src, dst] => copy(src, dst),
        ["incr", path, key, n] => incr(path, key, number(n)?),
        _ => Err("usage: hashmap-shared-interop write PATH II|SS N | read PATH II|SS | copy SRC DST | incr PATH KEY N".into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hashmap-shared-interop: {e}");
            ExitCode::FAILURE
        }
    }
}
