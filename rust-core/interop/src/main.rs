//! hashmap-shared-interop: a Rust program using the same map files as Perl.
//!
//!     hashmap-shared-interop write PATH II|SS N   create PATH, store N entries
//!     hashmap-shared-interop read  PATH II|SS     print every entry, sorted by key
//!     hashmap-shared-interop incr  PATH KEY N     N atomic increments of KEY (an SI map)
//!
//! `write` stores key i -> i * 3 (II) or "key-i" -> "välue-i" with the UTF-8 flag on
//! (SS). `read` prints "KEY\tVALUE\tFLAGS" lines (FLAGS: u when the value's UTF-8 flag
//! is on, - otherwise), then "size N". t/rust-interop.t drives it in both directions.

use hashmap_shared::{In, Map, Options, Value, Variant};
use std::process::ExitCode;

fn variant(name: &str) -> Result<Variant, String> {
    match name {
        "II" => Ok(Variant::II),
        "SS" => Ok(Variant::SS),
        other => Err(format!("variant must be II or SS, not {other:?}")),
    }
}

fn number(s: &str) -> Result<u64, String> {
    s.parse().map_err(|_| format!("not a number: {s:?}"))
}

fn write(path: &str, v: Variant, n: u64) -> Result<(), String> {
    let mut m = Map::open(&Options::new(v, n).file(path)).map_err(|e| e.to_string())?;
    for i in 1..=n as i64 {
        let stored = match v {
            Variant::II => m.put(In::Int(i), In::Int(i * 3)),
            _ => {
                let (k, val) = (format!("key-{i}"), format!("välue-{i}"));
                m.put(In::Str(k.as_bytes(), false), In::Str(val.as_bytes(), true))
            }
        };
        if !stored.map_err(|e| e.to_string())? {
            return Err(format!("map full after {} entries", i - 1));
        }
    }
    println!("wrote {n}");
    Ok(())
}

fn show(v: &Value) -> (String, &'static str) {
    match v {
        Value::Int(i) => (i.to_string(), "-"),
        Value::Str(b, u) => (String::from_utf8_lossy(b).into_owned(), if *u { "u" } else { "-" }),
    }
}

fn read(path: &str, v: Variant) -> Result<(), String> {
    // max_entries only matters when creating; refuse to create a map by mistake.
    if !std::path::Path::new(path).exists() {
        return Err(format!("{path}: no such file"));
    }
    let mut m = Map::open(&Options::new(v, 1).file(path)).map_err(|e| e.to_string())?;
    let mut items = m.items().map_err(|e| e.to_string())?;
    items.sort_by(|a, b| match (&a.0, &b.0) {
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (x, y) => show(x).0.cmp(&show(y).0),
    });
    for (k, val) in &items {
        let (vs, flag) = show(val);
        println!("{}\t{}\t{}", show(k).0, vs, flag);
    }
    println!("size {}", m.len());
    Ok(())
}

fn incr(path: &str, key: &str, n: u64) -> Result<(), String> {
    if !std::path::Path::new(path).exists() {
        return Err(format!("{path}: no such file"));
    }
    let mut m = Map::open(&Options::new(Variant::SI, 1).file(path)).map_err(|e| e.to_string())?;
    let mut last = 0;
    for _ in 0..n {
        last = m.incr_by(In::Str(key.as_bytes(), false), 1).map_err(|e| e.to_string())?;
    }
    println!("{last}");
    Ok(())
}

fn run(args: &[String]) -> Result<(), String> {
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["write", path, v, n] => write(path, variant(v)?, number(n)?),
        ["read", path, v] => read(path, variant(v)?),
        ["incr", path, key, n] => incr(path, key, number(n)?),
        _ => Err("usage: hashmap-shared-interop write PATH II|SS N | read PATH II|SS | incr PATH KEY N".into()),
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
