//! libFuzzer target: a populated map whose bytes the fuzzer rewrites, opened through a
//! memfd (new_from_fd's path), then driven by an operation script the fuzzer writes too.
//! Any crash, sanitizer report, or libFuzzer timeout (-timeout=N) is a finding.
//!
//! Input: byte 0 picks a template (II, IS, SI, SS x plain, LRU+TTL), byte 1 bit 0 says
//! "write the mutations after opening" (a hostile peer writing the live mapping). Then
//! records `[kind, off u32 LE, len, bytes...]` until a kind of 0xFF: kind % 3 = 0 writes
//! the bytes at off (mod file length), 1 XORs them in, 2 stores them at the 64-byte
//! header line `off % 12` (lock, seqlock, table, stats, arena, LRU state). The rest is an
//! operation script: one byte per operation, the next byte picks a key.
//!
//! Build and run: doc/TESTING.md "Coverage-guided fuzzing".

#![no_main]

use hashmap_shared::ttl::ManualClock;
use hashmap_shared::{raw::{Map, Value, Variant}, Options};
use libfuzzer_sys::fuzz_target;
use std::os::unix::fs::FileExt;
use std::os::unix::io::FromRawFd;
use std::sync::{Arc, OnceLock};

struct Template {
    variant: Variant,
    bytes: Vec<u8>,
    keys: Vec<Value>,
    vals: Vec<Value>,
    ttl: bool,
    epoch: u64,
}

fn val(kind_int: bool, i: usize, long: bool) -> Value {
    if kind_int {
        Value::Int(i as i64 * 7919 - 3000)
    } else if long {
        Value::Str(format!("a longer string number {i}").into_bytes(), i % 7 == 0)
    } else {
        Value::Str(format!("s{i}").into_bytes(), false)
    }
}

fn templates() -> &'static Vec<Template> {
    static T: OnceLock<Vec<Template>> = OnceLock::new();
    T.get_or_init(|| {
        let mut out = Vec::new();
        for v in [Variant::II, Variant::IS, Variant::SI, Variant::SS] {
            for lt in [false, true] {
                let p = std::env::temp_dir().join(format!("hm-fuzz-template-{}-{}-{lt}.shm", std::process::id(), v.name()));
                let _ = std::fs::remove_file(&p);
                let mut o = Options::of(v, 100).file(&p);
                if lt {
                    o = o.lru(90, 0).ttl(3600);
                }
                let (mut keys, mut vals) = (Vec::new(), Vec::new());
                let epoch;
                {
                    let mut m = Map::open(&o).unwrap();
                    let b = std::fs::read(&p).unwrap();
                    epoch = u64::from_le_bytes(b[144..152].try_into().unwrap());
                    m.set_clock(Arc::new(ManualClock::new(epoch)));
                    for i in 0..100 {
                        let k = val(v.key_kind().is_int(), i, i % 3 == 0);
                        let x = val(v.val_kind().is_int(), i + 1, i % 2 == 0);
                        if lt && i % 5 == 1 {
                            m.put_ttl(k.as_in(), x.as_in(), 10).unwrap();
                        } else {
                            m.put(k.as_in(), x.as_in()).unwrap();
                        }
                        keys.push(k);
                        vals.push(x);
                    }
                    for k in keys.iter().step_by(4) {
                        m.remove(k.as_in()).unwrap();
                    }
                }
                let bytes = std::fs::read(&p).unwrap();
                let _ = std::fs::remove_file(&p);
                out.push(Template { variant: v, bytes, keys, vals, ttl: lt, epoch });
            }
        }
        out
    })
}

/// Lock words that name pid 0 or a live process make writers wait forever (the known
/// finding of rust-core/tests/corrupt.rs, lock_words_naming_impossible_or_live_pids):
/// such inputs are skipped so that the fuzzer looks for other bugs.
fn blocking_lock_state(b: &[u8]) -> bool {
    let rd = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let alive = |pid: u32| {
        let pid = pid & 0x3FFF_FFFF;
        // SAFETY: signal 0 only checks existence.
        pid == 0 || unsafe { libc::kill(pid as i32, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    };
    let w = rd(256);
    if w != 0 && alive(w) {
        return true;
    }
    let bitmap = 4096 + 1024 * 64;
    (0..1024).any(|i| {
        let (pid, depth) = (rd(4096 + i * 64), rd(4096 + i * 64 + 4));
        let bit = b[bitmap + i / 8] >> (i % 8) & 1 != 0;
        depth & 0x7FFF_FFFF != 0 && (pid == 0 || (bit && alive(pid)))
    })
}

fn mutate(bytes: &mut [u8], data: &mut &[u8]) {
    const LINES: [usize; 12] = [256, 320, 384, 448, 512, 576, 640, 704, 4096, 4160, 69632, 0];
    let len = bytes.len();
    while data.len() >= 6 {
        let kind = data[0];
        if kind == 0xFF {
            *data = &data[1..];
            return;
        }
        let off = u32::from_le_bytes(data[1..5].try_into().unwrap()) as usize;
        let n = (data[5] as usize).min(data.len() - 6);
        let src = &data[6..6 + n];
        let at = match kind % 3 {
            2 => LINES[off % 12] + (off >> 8) % 64,
            _ => off % len,
        };
        for (i, &x) in src.iter().enumerate() {
            if at + i < len {
                if kind % 3 == 1 {
                    bytes[at + i] ^= x
                } else {
                    bytes[at + i] = x
                }
            }
        }
        *data = &data[6 + n..];
    }
}

fn run(t: &Template, m: &mut Map, script: &[u8]) {
    if t.ttl {
        m.set_clock(Arc::new(ManualClock::new(t.epoch + 50)));
    }
    let bound = 2 * m.layout().max_cap as usize + 16;
    let int_vals = t.variant.val_kind().is_int();
    for pair in script.chunks(2) {
        let op = pair[0];
        let sel = *pair.get(1).unwrap_or(&0) as usize;
        let k = t.keys[sel % t.keys.len()].as_in();
        let x = t.vals[(sel / 3) % t.vals.len()].as_in();
        let y = t.vals[(sel / 7) % t.vals.len()].as_in();
        let _ = match op % 36 {
            0 => m.get(k).map(|_| ()),
            1 => m.exists(k).map(|_| ()),
            2 => m.put(k, x).map(|_| ()),
            3 => m.add(k, x).map(|_| ()),
            4 => m.update(k, x).map(|_| ()),
            5 => m.swap(k, x).map(|_| ()),
            6 => m.take(k).map(|_| ()),
            7 => m.remove(k).map(|_| ()),
            8 => m.get_or_set(k, x).map(|_| ()),
            9 => m.cas(k, x, y).map(|_| ()),
            10 => m.cas_take(k, x).map(|_| ()),
            11 if int_vals => m.incr_by(k, sel as i64 - 100).map(|_| ()),
            12 if int_vals => m.max(k, sel as i64 * 1000).map(|_| ()),
            13 if int_vals => m.min(k, -(sel as i64)).map(|_| ()),
            14 => m.set_multi(&[(k, x), (t.keys[sel / 2 % t.keys.len()].as_in(), y)]).map(|_| ()),
            15 => m.get_multi(&[k, t.keys[sel / 2 % t.keys.len()].as_in()]).map(|_| ()),
            16 => m.remove_multi(&[k]).map(|_| ()),
            17 => m.pop().map(|_| ()),
            18 => m.shift().map(|_| ()),
            19 => m.drain(sel as u64 % 8).map(|_| ()),
            20 => m.reserve(sel as u64 * 4).map(|_| ()),
            21 => {
                let mut n = 0;
                while let Ok(Some(_)) = m.each() {
                    n += 1;
                    assert!(n <= bound, "each returned more than {bound} entries");
                }
                Ok(())
            }
            22 => m.items().map(|v| assert!(v.len() <= bound, "items returned {} entries", v.len())),
            23 => m.lru_keys().map(|v| assert!(v.len() <= bound, "lru_keys returned {} keys", v.len())),
            24 => m.clear(),
            25 => {
                m.iter_reset();
                Ok(())
            }
            26 => m.get_with_ttl(k).map(|_| ()),
            27 => m.ttl_remaining(k).map(|_| ()),
            28 => m.put_ttl(k, x, sel as u32 % 100).map(|_| ()),
            29 => m.add_ttl(k, x, sel as u32 % 100).map(|_| ()),
            30 => m.update_ttl(k, x, sel as u32 % 100).map(|_| ()),
            31 => m.touch(k).map(|_| ()),
            32 => m.persist(k).map(|_| ()),
            33 => m.set_ttl(k, sel as u32 % 100).map(|_| ()),
            34 => m.flush_expired().map(|_| ()),
            35 => m.flush_expired_partial(1 + sel as u32).map(|_| ()),
            _ => m.each().map(|_| ()),
        };
        let _ = m.stats();
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let temps = templates();
    let t = &temps[data[0] as usize % temps.len()];
    let after_open = data[1] & 1 != 0;
    let mut rest = &data[2..];
    let mut bytes = t.bytes.clone();
    mutate(&mut bytes, &mut rest);
    if blocking_lock_state(&bytes) {
        return;
    }
    // SAFETY: plain syscalls on our own descriptor.
    let fd = unsafe { libc::memfd_create(c"hm-fuzz".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0);
    // SAFETY: fd is ours; the File closes it.
    let f = unsafe { std::fs::File::from_raw_fd(fd) };
    f.write_all_at(if after_open { &t.bytes } else { &bytes }, 0).unwrap();
    let Ok(mut m) = Map::open(&Options::of(t.variant, 10).from_fd(fd)) else { return };
    if after_open {
        f.write_all_at(&bytes, 0).unwrap();
    }
    run(t, &mut m, rest);
});
