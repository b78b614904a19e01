//! A counter that Rust and Perl increment at the same time, in one map file.
//!
//!     cargo run --release --example counter_with_perl [PATH]
//!
//! Rust counts with two threads (each with its own handle on the map) while a Perl
//! process counts with Data::HashMap::Shared::SI on the same file; no increment is
//! lost, so the total is exact. The Perl module must be installed (or on PERL5LIB,
//! e.g. `PERL5LIB=blib/lib:blib/arch` after `make` in the Perl distribution); without
//! it the example says so and counts with Rust only. The Perl side is:
//!
//! ```perl
//! use Data::HashMap::Shared::SI;
//! my $m = Data::HashMap::Shared::SI->new('/dev/shm/hashmap-shared-counter.shm', 1000);
//! $m->incr('hits') for 1 .. 100_000;
//! ```

use hashmap_shared::{Bytes, Map, Options};
use std::process::{Command, Stdio};

const PER_WORKER: i64 = 100_000;

const PERL: &str = r#"
    use Data::HashMap::Shared::SI;
    my ($path, $n) = @ARGV;
    my $m = Data::HashMap::Shared::SI->new($path, 1000);
    $m->incr('hits') for 1 .. $n;
"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "/dev/shm/hashmap-shared-counter.shm".into());
    // Whoever opens the file first creates it: Perl and Rust open the same map (the
    // types say which: Bytes -> i64 is Perl's SI class).
    let opts = Options::new(1000).file(&path);
    let mut hits: Map<Bytes, i64> = Map::open(&opts)?;
    println!("{path}: a {} map", Map::<Bytes, i64>::perl_class());
    hits.put("hits", 0)?;

    let perl = Command::new("perl")
        .args(["-e", PERL, &path, &PER_WORKER.to_string()])
        .stderr(Stdio::piped())
        .spawn();

    let threads: Vec<_> = (0..2)
        .map(|_| {
            let opts = opts.clone();
            std::thread::spawn(move || -> hashmap_shared::Result<()> {
                // One handle per thread: a handle has its own buffers (`&mut self`).
                let mut hits: Map<Bytes, i64> = Map::open(&opts)?;
                for _ in 0..PER_WORKER {
                    hits.incr("hits", 1)?;
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a counting thread panicked")?;
    }
    let mut workers = 2;
    match perl.and_then(|p| p.wait_with_output()) {
        Ok(out) if out.status.success() => workers += 1,
        Ok(out) => println!("Perl did not count: {}", String::from_utf8_lossy(&out.stderr).trim()),
        Err(e) => println!("Perl did not count: cannot run perl: {e}"),
    }

    let total = hits.get("hits")?.unwrap_or(0);
    println!("{workers} workers x {PER_WORKER} increments: hits = {total}");
    assert_eq!(total, workers * PER_WORKER, "an increment was lost");
    hits.unlink();
    Ok(())
}
