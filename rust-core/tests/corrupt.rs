//! Corruption fuzzer over the engine API (issue 5: hostile input).
//!
//! A map file is writable by every process that shares it, so its contents are
//! hostile input: whatever bytes it holds, opening it must either fail with an error
//! or give a handle whose operations return (possibly wrong) answers without crashing,
//! hanging, looping forever or reading outside the mapping (api.md 7.10, decisions 10).
//!
//! Method: build populated template maps (II, IS, SI, SS; plain and LRU+TTL; inline
//! and arena strings, tombstones, expired entries, freed arena blocks), then for each
//! case copy a template, apply seeded mutations (bit flips, random ranges, interesting
//! words at header/lock/table fields, truncation, growth; before or after opening),
//! and run every operation in a forked child under `alarm`. A child killed by a signal,
//! stopped by the alarm (hang), stuck in an endless iteration or panicking is a
//! failure, reported with its seed and mutation list.
//!
//! ```text
//! cargo test --release --test corrupt                       # default: 3000 cases
//! HMS_CORRUPT_CASES=20000 cargo test --release --test corrupt -- --nocapture
//! HMS_CORRUPT_SEED=12345 cargo test --release --test corrupt -- --nocapture
//!     # re-runs one case in this process (no fork): for a debugger / valgrind
//! ```
//! `HMS_CORRUPT_BASE` changes the first seed (cases use seeds BASE, BASE+1, ...),
//! `HMS_CORRUPT_TIMEOUT` the per-case alarm in seconds (default 10).

use hashmap_shared::layout::off;
use hashmap_shared::ttl::ManualClock;
use hashmap_shared::{raw::{In, Map, Out, Value, Variant}, Options};
use std::fmt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// The tests of this file run one at a time: they fork, and a child forked while
/// another test thread holds a lock (an allocator's, stderr's) could deadlock and be
/// mistaken for a hang of the engine.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

// ----- deterministic RNG ------------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

// ----- templates --------------------------------------------------------------------

struct Template {
    name: String,
    variant: Variant,
    bytes: Vec<u8>,
    keys: Vec<Value>,
    vals: Vec<Value>,
    ttl: bool,
    epoch: u64,
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hm-corrupt-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn str_of(rng: &mut Rng, i: usize) -> Vec<u8> {
    // inline (<= 7), short arena, long arena, empty, NUL-containing
    let len = match i % 6 {
        0 => 0,
        1 => 3,
        2 => 7,
        3 => 8 + rng.below(24) as usize,
        4 => 40 + rng.below(200) as usize,
        _ => 5,
    };
    let mut b = format!("{i}:").into_bytes();
    b.extend(rng.bytes(len));
    b.truncate(len.max(b.len().min(len + 4)));
    b
}

fn value_for(v: Variant, is_key: bool, rng: &mut Rng, i: usize) -> Value {
    let kind = if is_key { v.key_kind() } else { v.val_kind() };
    if kind.is_int() {
        Value::Int(kind.narrow(if is_key { i as i64 * 7919 - 3000 } else { rng.next() as i64 }))
    } else {
        Value::Str(str_of(rng, i), i % 7 == 0)
    }
}

fn build_template(dir: &Path, v: Variant, lru_ttl: bool) -> Template {
    let name = format!("{}{}", v.name(), if lru_ttl { "+lru+ttl" } else { "" });
    let p = dir.join(format!("template-{name}.shm"));
    let _ = std::fs::remove_file(&p);
    let mut rng = Rng::new(v.id() as u64 * 1000 + lru_ttl as u64);
    let mut o = Options::of(v, 200).file(&p);
    if lru_ttl {
        o = o.lru(190, 0).ttl(3600);
    }
    let epoch;
    let mut keys = Vec::new();
    let mut vals = Vec::new();
    {
        let mut m = Map::open(&o).unwrap();
        epoch = u64::from_le_bytes(std::fs::read(&p).unwrap()[off::TTL_EPOCH..off::TTL_EPOCH + 8].try_into().unwrap());
        m.set_clock(Arc::new(ManualClock::new(epoch)));
        for i in 0..200 {
            let k = value_for(v, true, &mut rng, i);
            let x = value_for(v, false, &mut rng, i + 1);
            if lru_ttl && i % 5 == 1 {
                // expires at epoch + 10: expired for the children's clock (epoch + 50)
                let _ = m.put_ttl(k.as_in(), x.as_in(), 10).unwrap();
            } else if lru_ttl && i % 5 == 2 {
                let _ = m.put_ttl(k.as_in(), x.as_in(), 0).unwrap();
            } else {
                let _ = m.put(k.as_in(), x.as_in()).unwrap();
            }
            keys.push(k);
            vals.push(x);
        }
        if v.has_arena() {
            // a large arena block, then free some blocks (free lists non-empty)
            let big = Value::Str(vec![b'L'; 3000], false);
            if v.key_kind().is_int() {
                let _ = m.put(In::Int(999_999), big.as_in());
            } else {
                let _ = m.put(big.as_in(), vals[0].as_in());
            }
        }
        // tombstones and free arena blocks
        for i in (0..200).step_by(4) {
            let _ = m.remove(keys[i].as_in()).unwrap();
        }
        if lru_ttl {
            let _ = m.get(keys[3].as_in()); // an accessed bit
        }
    }
    let bytes = std::fs::read(&p).unwrap();
    std::fs::remove_file(&p).unwrap();
    Template { name, variant: v, bytes, keys, vals, ttl: lru_ttl, epoch }
}

fn templates(tag: &str) -> Vec<Template> {
    let dir = tmpdir(tag);
    let mut t = Vec::new();
    for v in [Variant::II, Variant::IS, Variant::SI, Variant::SS] {
        for lt in [false, true] {
            t.push(build_template(&dir, v, lt));
        }
    }
    t
}

// ----- mutations --------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Mutation {
    /// XOR `mask` into the byte at `off`.
    Flip { off: usize, mask: u8 },
    /// Write these bytes at `off`.
    Write { off: usize, bytes: Vec<u8> },
    /// Store a little-endian word of `width` bytes.
    Word { off: usize, width: usize, val: u64 },
    /// Truncate the file to `len` bytes.
    Truncate { len: usize },
    /// Append `n` bytes.
    Grow { n: usize },
}

impl fmt::Display for Mutation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mutation::Flip { off, mask } => write!(f, "flip byte {off} ^= {mask:#04x}"),
            Mutation::Write { off, bytes } if bytes.len() <= 16 => {
                write!(f, "write {} bytes at {off}: {:02x?}", bytes.len(), bytes)
            }
            Mutation::Write { off, bytes } => write!(f, "write {} bytes at {off} (starting {:02x?})", bytes.len(), &bytes[..8]),
            Mutation::Word { off, width, val } => write!(f, "u{} at {off} = {val:#x}", width * 8),
            Mutation::Truncate { len } => write!(f, "truncate to {len}"),
            Mutation::Grow { n } => write!(f, "grow by {n}"),
        }
    }
}

struct Case {
    seed: u64,
    template: usize,
    after_open: bool,
    muts: Vec<Mutation>,
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seed {} template {} {}: ", self.seed, self.template, if self.after_open { "(after open)" } else { "(before open)" })?;
        for (i, m) in self.muts.iter().enumerate() {
            if i > 0 {
                write!(f, "; ")?;
            }
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

fn rd64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}
fn rd32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

/// Interesting offsets: every u32/u64 field of the mutable header part.
const HDR_WORDS32: &[usize] = &[
    off::WRITER,
    off::SEQ,
    off::SEALED,
    off::RECOVER,
    off::SLOTS_HW,
    off::LOCK_SIDE,
    off::LOCK_SIDE + 4,
    off::CAP,
    off::SIZE,
    off::TOMBS,
    off::GENERATION,
    off::J_STATE,
    off::J_TARGET,
    off::J_SWAP_A,
    off::J_SWAP_B,
    off::FLUSH_CURSOR,
    off::LRU_HEAD,
    off::LRU_TAIL,
];
const HDR_WORDS64: &[usize] = &[off::EVICTIONS, off::EXPIRED, off::RECOVERIES, off::ARENA_USED, off::ARENA_FREE, off::ARENA_PEAK];

fn interesting(rng: &mut Rng, t: &Template) -> u64 {
    let max_cap = rd32(&t.bytes, off::MAX_CAP) as u64;
    let vals = [
        0,
        1,
        2,
        3,
        7,
        8,
        15,
        16,
        17,
        31,
        32,
        0x7F,
        0x80,
        0xFF,
        0xFFFF,
        max_cap - 1,
        max_cap,
        max_cap + 1,
        max_cap * 2,
        max_cap / 2 + 3,
        0x7FFF_FFFF,
        0x8000_0000,
        0xFFFF_FFFE,
        0xFFFF_FFFF,
        1 << 32,
        u64::MAX,
        u64::MAX - 1,
        t.bytes.len() as u64,
        rng.next(),
        rng.next() & 0xFFFF,
    ];
    vals[rng.below(vals.len() as u64) as usize]
}

/// A random offset, biased towards the regions that matter.
fn pick_off(rng: &mut Rng, t: &Template) -> usize {
    let b = &t.bytes;
    let len = b.len();
    let ctrl = rd64(b, off::CTRL) as usize;
    let slots = rd64(b, off::SLOTS) as usize;
    let max_cap = rd32(b, off::MAX_CAP) as usize;
    let slot_size = rd32(b, off::SLOT_SIZE) as usize;
    let lru = rd64(b, off::LRU) as usize;
    let ttl = rd64(b, off::TTL_ARRAY) as usize;
    let arena = rd64(b, off::ARENA) as usize;
    let readers = rd64(b, off::READERS) as usize;
    let (base, span) = match rng.below(100) {
        0..=4 => (0, off::STATIC_END),
        5..=34 => (256, 512),
        35..=39 => (readers, 64 * 8 + 0x10000 / 64), // first reader slots
        40..=41 => (readers + 1024 * 64, 128),       // occupancy bitmap
        42..=56 => (ctrl, max_cap),
        57..=74 => (slots, max_cap * slot_size),
        75..=84 if lru != 0 => (lru, ttl.max(lru + 1) - lru),
        85..=89 if ttl != 0 => (ttl, max_cap * 4),
        75..=96 if arena != 0 => (arena, len - arena),
        _ => (0, len),
    };
    let o = base + rng.below(span.max(1) as u64) as usize;
    o.min(len - 1)
}

fn gen_case(seed: u64, ntemplates: usize, temps: &[Template]) -> Case {
    let mut rng = Rng::new(seed);
    let template = rng.below(ntemplates as u64) as usize;
    let t = &temps[template];
    let after_open = rng.chance(30);
    let many = rng.chance(20);
    let n = 1 + rng.below(if many { 24 } else { 4 }) as usize;
    let mut muts = Vec::new();
    for _ in 0..n {
        let m = match rng.below(100) {
            0..=29 => Mutation::Flip { off: pick_off(&mut rng, t), mask: 1 << rng.below(8) },
            30..=39 => Mutation::Flip { off: pick_off(&mut rng, t), mask: rng.next() as u8 | 1 },
            40..=54 => {
                let off = pick_off(&mut rng, t);
                let len = match rng.below(4) {
                    0 => 1 + rng.below(8),
                    1 => 1 + rng.below(64),
                    2 => 1 + rng.below(512),
                    _ => 1 + rng.below(8192),
                } as usize;
                let len = len.min(t.bytes.len() - off);
                let bytes = match rng.below(4) {
                    0 => vec![0; len],
                    1 => vec![0xFF; len],
                    2 => vec![rng.next() as u8; len],
                    _ => rng.bytes(len),
                };
                Mutation::Write { off, bytes }
            }
            55..=79 => {
                let o = if rng.chance(70) {
                    if rng.chance(70) {
                        HDR_WORDS32[rng.below(HDR_WORDS32.len() as u64) as usize]
                    } else {
                        HDR_WORDS64[rng.below(HDR_WORDS64.len() as u64) as usize]
                    }
                } else {
                    pick_off(&mut rng, t) & !3
                };
                let width = if HDR_WORDS64.contains(&o) || (o >= rd64(&t.bytes, off::SLOTS) as usize && rng.chance(50)) {
                    8
                } else {
                    4
                };
                let o = o.min(t.bytes.len() - width) & !(width - 1);
                Mutation::Word { off: o, width, val: interesting(&mut rng, t) }
            }
            80..=82 => {
                muts.extend(structured(&mut rng, t));
                continue;
            }
            83..=89 => {
                // arena free-list heads: pointer-like words
                let o = off::ARENA_HEADS + 4 * rng.below(32) as usize;
                Mutation::Word { off: o, width: 4, val: interesting(&mut rng, t) }
            }
            90..=94 if !after_open => {
                let len = t.bytes.len();
                let l = match rng.below(4) {
                    0 => rng.below(4096),
                    1 => rng.below(len as u64),
                    2 => len as u64 - 1 - rng.below(64),
                    _ => len as u64 - 4096,
                } as usize;
                Mutation::Truncate { len: l }
            }
            95..=99 if !after_open => Mutation::Grow { n: 1 + rng.below(8192) as usize },
            _ => Mutation::Flip { off: pick_off(&mut rng, t), mask: 0x80 },
        };
        muts.push(m);
    }
    Case { seed, template, after_open, muts }
}

/// Full slots of the template's current table.
fn full_slots(b: &[u8]) -> Vec<usize> {
    let ctrl = rd64(b, off::CTRL) as usize;
    let cap = rd32(b, off::CAP) as usize;
    (0..cap).filter(|&i| b[ctrl + i] < 0x80).collect()
}

/// Structured corruptions that random bytes rarely produce: LRU cycles, a table with no
/// EMPTY control byte, string references pointing at the arena's end or beyond.
fn structured(rng: &mut Rng, t: &Template) -> Vec<Mutation> {
    let b = &t.bytes;
    let full = full_slots(b);
    let max_cap = rd32(b, off::MAX_CAP) as usize;
    let lru = rd64(b, off::LRU) as usize;
    let slots = rd64(b, off::SLOTS) as usize;
    let ssz = rd32(b, off::SLOT_SIZE) as usize;
    let mut m = Vec::new();
    let pick = |rng: &mut Rng| full[rng.below(full.len() as u64) as usize] as u64;
    match rng.below(3) {
        0 if lru != 0 && !full.is_empty() => {
            // a cycle in the recency list (prev and next), head / tail inside it or not
            let page = 4096usize;
            let arr = (max_cap * 4).div_ceil(page) * page;
            let k = 1 + rng.below(4) as usize;
            let ring: Vec<u64> = (0..k).map(|_| pick(rng)).collect();
            for i in 0..k {
                let (a, n) = (ring[i] as usize, ring[(i + 1) % k]);
                m.push(Mutation::Word { off: lru + arr + 4 * a, width: 4, val: n });
                m.push(Mutation::Word { off: lru + 4 * n as usize, width: 4, val: a as u64 });
                if rng.chance(50) {
                    m.push(Mutation::Word { off: lru + 2 * arr + a, width: 1, val: 1 }); // accessed
                }
            }
            m.push(Mutation::Word { off: off::LRU_HEAD, width: 4, val: if rng.chance(70) { ring[0] } else { pick(rng) } });
            m.push(Mutation::Word { off: off::LRU_TAIL, width: 4, val: if rng.chance(70) { ring[k - 1] } else { pick(rng) } });
        }
        1 => {
            // no EMPTY control byte in the current table: every probe visits every group
            let ctrl = rd64(b, off::CTRL) as usize;
            let cap = rd32(b, off::CAP) as usize;
            let bytes = if rng.chance(50) { vec![rng.below(0x80) as u8; cap] } else { (0..cap).map(|_| rng.below(0x81) as u8).collect() };
            m.push(Mutation::Write { off: ctrl, bytes });
        }
        _ if !full.is_empty() && t.variant.has_arena() => {
            // a string field pointing at the arena's end, beyond it, or with a huge length
            let arena_cap = rd64(b, off::ARENA_CAP);
            let offs = [arena_cap.saturating_sub(8), arena_cap.saturating_sub(16), arena_cap, arena_cap + 16, u32::MAX as u64, 0, 8, 16];
            let lens = [8u64, 9, 4096, 100_000, (1 << 30) - 1];
            for _ in 0..1 + rng.below(4) {
                let i = pick(rng) as usize;
                let field = if t.variant.key_kind().is_int() {
                    t.variant.val_off()
                } else if t.variant.val_kind().is_int() || rng.chance(50) {
                    t.variant.key_off()
                } else {
                    t.variant.val_off()
                } as usize;
                let o = offs[rng.below(offs.len() as u64) as usize] & 0xFFFF_FFFF;
                let l = lens[rng.below(lens.len() as u64) as usize];
                m.push(Mutation::Word { off: slots + i * ssz + field, width: 8, val: (l << 32) | o });
            }
        }
        _ => m.push(Mutation::Flip { off: pick_off(rng, t), mask: 0x40 }),
    }
    m
}

fn apply(bytes: &mut Vec<u8>, muts: &[Mutation]) {
    for m in muts {
        match m {
            Mutation::Flip { off, mask } => {
                if *off < bytes.len() {
                    bytes[*off] ^= mask
                }
            }
            Mutation::Write { off, bytes: b } => {
                if *off < bytes.len() {
                    let n = b.len().min(bytes.len() - off);
                    bytes[*off..off + n].copy_from_slice(&b[..n]);
                }
            }
            Mutation::Word { off, width, val } => {
                if off + width <= bytes.len() {
                    bytes[*off..off + width].copy_from_slice(&val.to_le_bytes()[..*width]);
                }
            }
            Mutation::Truncate { len } => bytes.truncate(*len),
            Mutation::Grow { n } => bytes.resize(bytes.len() + n, 0),
        }
    }
}

// ----- exercising a (possibly corrupt) map -----------------------------------------

/// Outcome of a child: 0 ok, 2 panic, 3 endless iteration.
const EXIT_PANIC: i32 = 2;
const EXIT_ENDLESS: i32 = 3;
const EXIT_REFUSED: i32 = 4;

fn key_in(t: &Template, rng: &mut Rng) -> Value {
    if rng.chance(70) && !t.keys.is_empty() {
        t.keys[rng.below(t.keys.len() as u64) as usize].clone()
    } else {
        let i = 1000 + rng.below(400) as usize;
        value_for(t.variant, true, rng, i)
    }
}
fn val_in(t: &Template, rng: &mut Rng) -> Value {
    if rng.chance(50) {
        t.vals[rng.below(t.vals.len() as u64) as usize].clone()
    } else {
        let i = rng.below(400) as usize;
        value_for(t.variant, false, rng, i)
    }
}

/// Consumes an Out so the optimiser cannot drop the read, and checks basic sanity.
fn touch_out(o: Out<'_>) -> u64 {
    match o {
        Out::Int(v) => v as u64,
        Out::Str(b, _) => b.iter().fold(b.len() as u64, |a, &x| a.wrapping_mul(31).wrapping_add(x as u64)),
    }
}

/// Runs every operation; returns Err(msg) for an endless iteration.
fn exercise(m: &mut Map, t: &Template, seed: u64) -> Result<u64, String> {
    let mut rng = Rng::new(seed ^ 0xABCD);
    let mut acc = 0u64;
    let st = m.stats();
    let bound = 2 * m.layout().max_cap as u64 + 16;
    if t.ttl {
        m.set_clock(Arc::new(ManualClock::new(t.epoch + 50)));
    }
    // Reads first (before any write may repair something).
    for k in &t.keys {
        if let Ok(Some(o)) = m.get(k.as_in()) {
            acc ^= touch_out(o);
        }
        let _ = m.exists(k.as_in());
    }
    let mut n = 0u64;
    while let Ok(Some((k, v))) = m.each() {
        acc ^= touch_out(k) ^ touch_out(v);
        n += 1;
        if n > bound {
            return Err(format!("each returned more than {bound} entries (capacity {})", st.capacity));
        }
    }
    let mut n = 0u64;
    let _ = m.for_each(true, true, |k, v| {
        n += 1;
        acc ^= touch_out(k) ^ touch_out(v);
    });
    if n > bound {
        return Err(format!("for_each visited {n} entries"));
    }
    if let Ok(l) = m.lru_keys() {
        if l.len() as u64 > bound {
            return Err(format!("lru_keys returned {} keys", l.len()));
        }
    }
    let ks: Vec<Value> = (0..8).map(|_| key_in(t, &mut rng)).collect();
    let kin: Vec<In<'_>> = ks.iter().map(|k| k.as_in()).collect();
    let _ = m.get_multi(&kin);
    if t.ttl {
        let _ = m.get_with_ttl(ks[0].as_in());
        let _ = m.ttl_remaining(ks[1].as_in());
    }
    acc ^= m.stats().size;

    // Writes.
    let int_vals = t.variant.val_kind().is_int();
    for _ in 0..80 {
        let k = key_in(t, &mut rng);
        let v = val_in(t, &mut rng);
        let v2 = val_in(t, &mut rng);
        let (k, v, v2) = (k.as_in(), v.as_in(), v2.as_in());
        match rng.below(if t.ttl { 32 } else { 24 }) {
            0 | 1 => drop(m.put(k, v)),
            2 => drop(m.add(k, v)),
            3 => drop(m.update(k, v)),
            4 => drop(m.swap(k, v).map(|o| o.map(touch_out))),
            5 => drop(m.take(k).map(|o| o.map(touch_out))),
            6 => drop(m.remove(k)),
            7 => drop(m.get_or_set(k, v).map(|o| o.map(touch_out))),
            8 => drop(m.cas(k, v, v2)),
            9 => drop(m.cas_take(k, v).map(|o| o.map(touch_out))),
            10 if int_vals => drop(m.incr_by(k, rng.next() as i64 % 100)),
            11 if int_vals => drop(m.max(k, rng.next() as i64)),
            12 if int_vals => drop(m.min(k, rng.next() as i64)),
            13 => {
                let extra = key_in(t, &mut rng);
                drop(m.set_multi(&[(k, v), (extra.as_in(), v2)]));
            }
            14 => {
                let extra = key_in(t, &mut rng);
                drop(m.remove_multi(&[k, extra.as_in()]));
            }
            15 => drop(m.get_multi(&[k])),
            16 => drop(m.pop().map(|o| o.map(|(a, b)| touch_out(a) ^ touch_out(b)))),
            17 => drop(m.shift().map(|o| o.map(|(a, b)| touch_out(a) ^ touch_out(b)))),
            18 => drop(m.drain(1 + rng.below(5))),
            19 => drop(m.reserve(rng.below(300))),
            20 => drop(m.get(k).map(|o| o.map(touch_out))),
            21 => drop(m.exists(k)),
            22 => {
                drop(m.each().map(|o| o.map(|(a, b)| touch_out(a) ^ touch_out(b))));
            }
            23 => m.iter_reset(),
            24 => drop(m.put_ttl(k, v, rng.below(100) as u32)),
            25 => drop(m.add_ttl(k, v, rng.below(100) as u32)),
            26 => drop(m.update_ttl(k, v, rng.below(100) as u32)),
            27 => drop(m.touch(k)),
            28 => drop(m.persist(k)),
            29 => drop(m.set_ttl(k, rng.below(100) as u32)),
            30 => drop(m.flush_expired()),
            31 => drop(m.flush_expired_partial(1 + rng.below(64) as u32)),
            _ => drop(m.put(k, v)),
        }
    }
    let _ = m.items();
    let _ = m.stats();
    let _ = m.reserve(150);
    let mut n = 0u64;
    while let Ok(Some(_)) = m.each() {
        n += 1;
        if n > bound {
            return Err(format!("each (after writes) returned more than {bound} entries"));
        }
    }
    // Clear, then the map must be usable again.
    let _ = m.clear();
    for i in 0..40 {
        let k = value_for(t.variant, true, &mut rng, 2000 + i);
        let v = value_for(t.variant, false, &mut rng, 3000 + i);
        let _ = m.put(k.as_in(), v.as_in());
        if let Ok(Some(o)) = m.get(k.as_in()) {
            acc ^= touch_out(o);
        }
    }
    let _ = m.drain(u64::MAX);
    let _ = m.sync();
    Ok(acc)
}

/// Writes the case's file, opens it and runs everything. In the child.
fn run_case(temps: &[Template], c: &Case, path: &Path) -> i32 {
    let t = &temps[c.template];
    let mut bytes = t.bytes.clone();
    if !c.after_open {
        apply(&mut bytes, &c.muts);
    }
    std::fs::write(path, &bytes).unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let o = Options::of(t.variant, 10).file(path);
        let mut m = match Map::open(&o) {
            Ok(m) => m,
            Err(_) => return Ok(u64::MAX), // refused: fine
        };
        if c.after_open {
            // a hostile peer writes the shared file while we have it mapped
            let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            let mut mutated = t.bytes.clone();
            apply(&mut mutated, &c.muts);
            f.write_all_at(&mutated[..mutated.len().min(t.bytes.len())], 0).unwrap();
        }
        exercise(&mut m, t, c.seed)
    }));
    match r {
        Ok(Ok(u64::MAX)) => EXIT_REFUSED,
        Ok(Ok(_)) => 0,
        Ok(Err(msg)) => {
            eprintln!("corrupt: {c}: {msg}");
            EXIT_ENDLESS
        }
        Err(_) => EXIT_PANIC,
    }
}

/// The hang no lock code can avoid: a lock word that names a live holder. Liveness is
/// the kernel's (a byte lock of the holder's own file description, lock.rs), and in a
/// case's process the only live handle is the case's own, whose identity (slot and tag)
/// is only chosen when it opens, never one the file's writer word already names for its
/// slot. So no file content blocks: the only word that would is the opener's own
/// identity written after it opened (by chance, in `after_open` cases). Kept as the
/// place to say so, and for the counting below.
fn blocking_lock_state(_b: &[u8]) -> Option<String> {
    None
}

enum Verdict {
    Ok,
    Refused,
    Signal(i32),
    Panic,
    Endless,
    Exit(i32),
}

fn fork_case(temps: &[Template], c: &Case, path: &Path, timeout: u32) -> Verdict {
    // SAFETY: the child only runs Rust code of this test (glibc's malloc is fork-safe)
    // and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: alarm/_exit have no preconditions. The default SIGALRM action kills.
        unsafe {
            libc::signal(libc::SIGALRM, libc::SIG_DFL);
            libc::alarm(timeout);
        }
        std::panic::set_hook(Box::new({
            let desc = c.to_string();
            move |info| eprintln!("corrupt: {desc}: PANIC {info}")
        }));
        let rc = run_case(temps, c, path);
        // SAFETY: leaves the child without running the test harness's exit code.
        unsafe { libc::_exit(rc) };
    }
    let mut st = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut st, 0) };
    if libc::WIFSIGNALED(st) {
        Verdict::Signal(libc::WTERMSIG(st))
    } else {
        match libc::WEXITSTATUS(st) {
            0 => Verdict::Ok,
            EXIT_REFUSED => Verdict::Refused,
            EXIT_PANIC => Verdict::Panic,
            EXIT_ENDLESS => Verdict::Endless,
            n => Verdict::Exit(n),
        }
    }
}

fn env_u64(name: &str, dflt: u64) -> u64 {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(dflt)
}

#[test]
fn templates_are_valid() {
    let _serial = serial();
    let temps = templates("valid");
    for t in &temps {
        let p = tmpdir("valid").join(format!("check-{}.shm", t.name));
        std::fs::write(&p, &t.bytes).unwrap();
        let mut m = Map::open(&Options::of(t.variant, 10).file(&p)).unwrap();
        let st = m.stats();
        assert!(st.size > 100, "{}: {st:?}", t.name);
        if t.variant.has_arena() {
            assert!(st.arena_used > 0, "{}: arena in use", t.name);
        }
        assert!(exercise(&mut m, t, 1).is_ok());
        std::fs::remove_file(&p).unwrap();
    }
    let _ = std::fs::remove_dir_all(tmpdir("valid"));
    // at least one template has tombstones
    assert!(temps.iter().any(|t| rd32(&t.bytes, off::TOMBS) > 0), "no template has tombstones");
}

#[test]
fn corrupt_files_never_crash_or_hang() {
    let _serial = serial();
    let temps = templates("fuzz");
    let dir = tmpdir("fuzz");
    let timeout = env_u64("HMS_CORRUPT_TIMEOUT", 10) as u32;
    if let Ok(s) = std::env::var("HMS_CORRUPT_SEED") {
        // one case, in this process, for debugging
        let seed: u64 = s.parse().expect("HMS_CORRUPT_SEED must be a number");
        let c = gen_case(seed, temps.len(), &temps);
        eprintln!("case {c}");
        let rc = run_case(&temps, &c, &dir.join("one.shm"));
        assert!(rc == 0 || rc == EXIT_REFUSED, "case {c}");
        return;
    }
    let n = env_u64("HMS_CORRUPT_CASES", 3000);
    let base = env_u64("HMS_CORRUPT_BASE", 1);
    let start = std::time::Instant::now();
    let mut fails = Vec::new();
    let lockwords = std::env::var("HMS_CORRUPT_LOCKWORDS").is_ok();
    let (mut skipped, mut opened, mut refused) = (0, 0, 0);
    for seed in base..base + n {
        let c = gen_case(seed, temps.len(), &temps);
        if !lockwords {
            // Cases that only reproduce the known lock-word hang are counted, not run
            // (HMS_CORRUPT_LOCKWORDS=1 runs them): they would each cost the full timeout.
            let mut b = temps[c.template].bytes.clone();
            apply(&mut b, &c.muts);
            if blocking_lock_state(&b).is_some() {
                skipped += 1;
                continue;
            }
        }
        let path = dir.join(format!("case-{seed}.shm"));
        let v = fork_case(&temps, &c, &path, timeout);
        let _ = std::fs::remove_file(&path);
        let what = match v {
            Verdict::Ok => {
                opened += 1;
                continue;
            }
            Verdict::Refused => {
                refused += 1;
                continue;
            }
            Verdict::Signal(libc::SIGALRM) => format!("HANG (no progress in {timeout} s)"),
            Verdict::Signal(s) => format!("killed by signal {s}"),
            Verdict::Panic => "engine panicked".to_string(),
            Verdict::Endless => "endless iteration".to_string(),
            Verdict::Exit(n) => format!("exit {n}"),
        };
        eprintln!("FAIL {what}: {c}  [template {}]", temps[c.template].name);
        fails.push(format!("{what}: {c}"));
    }
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "corrupt: {n} cases (seeds {base}..{}) in {:.1} s: {opened} opened and exercised, {refused} refused at open, {} failures, {skipped} skipped (lock words \
         naming a live process)",
        base + n - 1,
        start.elapsed().as_secs_f64(),
        fails.len()
    );
    assert!(opened > n / 10, "too few cases opened: {opened}");
    assert!(fails.is_empty(), "{} of {n} corrupt-file cases failed:\n{}", fails.len(), fails.join("\n"));
}

/// Lock words left in a file that no live holder can have written, or that name a holder
/// that is certainly gone: each is taken over (the issue 5 finding, when liveness was a
/// pid, was that each made every writer wait forever):
/// - writer word `HELD | slot 0, tag 0` (nobody holds slot 0's byte) or without the
///   HELD bit (`0x1`);
/// - writer word naming the slot this very handle then claims, under the tag the slot
///   had (an earlier owner's hold: the claim takes another tag);
/// - an occupied reader slot whose pid is 0 and whose depth is nonzero;
/// - a free reader slot (pid 0) whose depth is nonzero: the next process to claim it
///   keeps the count, and its own next write waits for its own slot forever.
#[test]
fn lock_words_naming_impossible_or_dead_holders() {
    let _serial = serial();
    let dir = tmpdir("lockwords");
    let readers = 4096usize;
    let bitmap = readers + 1024 * 64;
    let cases: Vec<(&str, Vec<(usize, u32)>)> = vec![
        ("writer word HELD|slot 0 tag 0 (no live owner)", vec![(off::WRITER, 0x8000_0000)]),
        ("writer word 0x1 (no HELD bit)", vec![(off::WRITER, 0x1)]),
        (
            "writer word naming slot 0 under tag 8, the tag the opener's claim would take (7 + 1)",
            vec![(off::WRITER, 0x8000_0000 | 8 << 10), (readers + 8, 7)],
        ),
        ("reader slot 5: pid 0, depth 1", vec![(readers + 5 * 64, 0), (readers + 5 * 64 + 4, 1), (bitmap, 1 << 5)]),
        // fuzzer seeds 6914, 18637 (flip byte 4102 ^= 0x80): the first free slot has a
        // stale TRY count; this process claims it for its first read lock (here: each),
        // and its next write waits for its own slot forever.
        ("free reader slot 0 (pid 0, bitmap clear) with depth 0x800000", vec![(readers + 4, 0x0080_0000)]),
    ];
    // all cases at once (each blocked one costs the 3 s alarm)
    let mut kids = Vec::new();
    for (n, (name, words)) in cases.iter().enumerate() {
        let p = dir.join(format!("lw-{n}.shm"));
        let _ = std::fs::remove_file(&p);
        drop(Map::open(&Options::of(Variant::II, 100).file(&p)).unwrap());
        // SAFETY: see fork_case.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe {
                libc::signal(libc::SIGALRM, libc::SIG_DFL);
                libc::alarm(3);
            }
            let mut b = std::fs::read(&p).unwrap();
            for &(o, v) in words {
                b[o..o + 4].copy_from_slice(&v.to_le_bytes());
            }
            std::fs::write(&p, &b).unwrap();
            let ok = Map::open(&Options::of(Variant::II, 100).file(&p))
                .map(|mut m| {
                    let _ = m.each(); // a read lock: claims a reader slot
                    let _ = m.put(In::Int(1), In::Int(2));
                })
                .is_ok();
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        kids.push((pid, name, p));
    }
    let mut bad = Vec::new();
    for (pid, name, p) in kids {
        let mut st = 0;
        unsafe { libc::waitpid(pid, &mut st, 0) };
        if libc::WIFSIGNALED(st) {
            bad.push(format!("{name}: put blocked (killed by signal {})", libc::WTERMSIG(st)));
        }
        let _ = std::fs::remove_file(&p);
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(bad.is_empty(), "writers wait forever on impossible lock words:\n{}", bad.join("\n"));
}
