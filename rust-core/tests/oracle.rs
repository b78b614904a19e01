//! Randomised oracle test: random operations on a map against std's HashMap, for every
//! variant, through many grows, shrinks, compactions and clears; narrowing, strings of
//! all lengths and bytes, UTF-8 flags, full tables.

use hashmap_shared::{raw::{In, Kind, Map, Out, Value, Variant}, ErrorKind, Options};
use proptest::prelude::*;
use std::collections::HashMap;

/// Raw material for a key or value; turned into the variant's kind when applied.
#[derive(Clone, Debug)]
struct Raw {
    int: i64,
    bytes: Vec<u8>,
    utf8: bool,
}

#[derive(Clone, Debug)]
enum Op {
    Put(Raw, Raw),
    Add(Raw, Raw),
    Update(Raw, Raw),
    Swap(Raw, Raw),
    Take(Raw),
    Remove(Raw),
    Get(Raw),
    Exists(Raw),
    GetOrSet(Raw, Raw),
    Cas(Raw, Raw, Raw),
    CasTake(Raw, Raw),
    Incr(Raw, i64),
    Max(Raw, i64),
    Min(Raw, i64),
    Clear,
    Reserve(u64),
    Each(usize),
    IterReset,
    SetMulti(Vec<(Raw, Raw)>),
    RemoveMulti(Vec<Raw>),
    GetMulti(Vec<Raw>),
    Fill(u16, u16),
    RemoveSome(u8),
}

fn raw_key() -> impl Strategy<Value = Raw> {
    let int = prop_oneof![
        6 => 0i64..64,
        2 => -70_000i64..70_000,
        1 => any::<i64>(),
        1 => prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(70_000), Just(4464), Just(1 << 32), Just(-1)],
    ];
    let bytes = prop_oneof![
        6 => (0u8..64).prop_map(|i| format!("k{i}").into_bytes()),
        2 => (0u8..16).prop_map(|i| format!("a somewhat longer key number {i}").into_bytes()),
        2 => prop::collection::vec(any::<u8>(), 0..=16),
        1 => prop::collection::vec(any::<u8>(), 17..300),
        1 => prop::collection::vec(0u8..2, 0..9),
    ];
    (int, bytes, any::<bool>()).prop_map(|(int, bytes, utf8)| Raw { int, bytes, utf8 })
}

fn raw_val() -> impl Strategy<Value = Raw> {
    let int = prop_oneof![4 => -5i64..5, 2 => any::<i64>(), 1 => Just(32767i64), 1 => Just(i64::MAX)];
    let bytes = prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..=8),
        3 => prop::collection::vec(any::<u8>(), 9..100),
        1 => prop::collection::vec(any::<u8>(), 100..700),
        1 => (0u8..3).prop_map(|i| vec![b'v'; i as usize]),
    ];
    (int, bytes, any::<bool>()).prop_map(|(int, bytes, utf8)| Raw { int, bytes, utf8 })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (raw_key(), raw_val()).prop_map(|(k, v)| Op::Put(k, v)),
        3 => (raw_key(), raw_val()).prop_map(|(k, v)| Op::Add(k, v)),
        3 => (raw_key(), raw_val()).prop_map(|(k, v)| Op::Update(k, v)),
        3 => (raw_key(), raw_val()).prop_map(|(k, v)| Op::Swap(k, v)),
        3 => raw_key().prop_map(Op::Take),
        6 => raw_key().prop_map(Op::Remove),
        6 => raw_key().prop_map(Op::Get),
        2 => raw_key().prop_map(Op::Exists),
        3 => (raw_key(), raw_val()).prop_map(|(k, v)| Op::GetOrSet(k, v)),
        3 => (raw_key(), raw_val(), raw_val()).prop_map(|(k, e, d)| Op::Cas(k, e, d)),
        2 => (raw_key(), raw_val()).prop_map(|(k, e)| Op::CasTake(k, e)),
        4 => (raw_key(), prop_oneof![Just(1i64), Just(-1), any::<i64>(), Just(70_000)]).prop_map(|(k, d)| Op::Incr(k, d)),
        1 => (raw_key(), any::<i64>()).prop_map(|(k, d)| Op::Max(k, d)),
        1 => (raw_key(), any::<i64>()).prop_map(|(k, d)| Op::Min(k, d)),
        1 => Just(Op::Clear),
        1 => prop_oneof![0u64..600, any::<u64>()].prop_map(Op::Reserve),
        2 => (0usize..20).prop_map(Op::Each),
        1 => Just(Op::IterReset),
        1 => prop::collection::vec((raw_key(), raw_val()), 0..8).prop_map(Op::SetMulti),
        1 => prop::collection::vec(raw_key(), 0..8).prop_map(Op::RemoveMulti),
        1 => prop::collection::vec(raw_key(), 0..8).prop_map(Op::GetMulti),
        1 => (0u16..400, 0u16..200).prop_map(|(n, b)| Op::Fill(n, b)),
        2 => (0u8..=100).prop_map(Op::RemoveSome),
    ]
}

/// Oracle key: narrowed int or bytes (the UTF-8 flag is not identity).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum OK {
    I(i64),
    B(Vec<u8>),
}

struct Model {
    kk: Kind,
    vk: Kind,
    max: usize,
    max_cap: u64,
    /// key -> (key's stored utf8 flag, value)
    m: HashMap<OK, (bool, Value)>,
}

impl Model {
    fn key<'a>(&self, r: &'a Raw) -> (OK, In<'a>) {
        if self.kk.is_int() {
            (OK::I(self.kk.narrow(r.int)), In::Int(r.int))
        } else {
            (OK::B(r.bytes.clone()), In::Str(&r.bytes, r.utf8))
        }
    }
    fn val<'a>(&self, r: &'a Raw) -> (Value, In<'a>) {
        if self.vk.is_int() {
            (Value::Int(self.vk.narrow(r.int)), In::Int(r.int))
        } else {
            (Value::Str(r.bytes.clone(), r.utf8), In::Str(&r.bytes, r.utf8))
        }
    }
    fn room(&self) -> bool {
        self.m.len() < self.max
    }
    fn insert(&mut self, k: OK, kr: &Raw, v: Value) -> bool {
        if let Some(e) = self.m.get_mut(&k) {
            e.1 = v;
            return true;
        }
        if !self.room() {
            return false;
        }
        self.m.insert(k, (kr.utf8, v));
        true
    }
    fn val_eq(&self, stored: &Value, e: &Value) -> bool {
        match (stored, e) {
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Str(a, _), Value::Str(b, _)) => a == b,
            _ => false,
        }
    }
}

fn ov(o: Option<Out<'_>>) -> Option<Value> {
    o.map(Out::to_value)
}

fn key_of(kk: Kind, o: Out<'_>) -> (OK, bool) {
    match o {
        Out::Int(v) => {
            assert!(kk.is_int());
            (OK::I(v), false)
        }
        Out::Str(b, u) => (OK::B(b.to_vec()), u),
    }
}

fn fill_raw(kk: Kind, i: u32) -> Raw {
    let bytes = if i % 3 == 0 {
        format!("fill key number {i} with a long tail").into_bytes()
    } else {
        format!("f{i}").into_bytes()
    };
    Raw { int: 1_000_000 + i as i64 * 7, bytes, utf8: kk == Kind::Str && i % 2 == 0 }
}

fn block(len: usize) -> u64 {
    if len <= 7 {
        0
    } else {
        len.max(16).next_power_of_two() as u64
    }
}

fn run(variant: Variant, max_entries: u64, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut map = Map::open(&Options::of(variant, max_entries).arena_cap(8 << 20)).unwrap();
    let st = map.stats();
    let mut md = Model {
        kk: variant.key_kind(),
        vk: variant.val_kind(),
        max: st.max_entries as usize,
        max_cap: map.layout().max_cap as u64,
        m: HashMap::new(),
    };
    for op in ops {
        match op {
            Op::Put(k, v) | Op::Add(k, v) | Op::Update(k, v) | Op::Swap(k, v) | Op::GetOrSet(k, v) => {
                let (ok, ki) = md.key(k);
                let (ovl, vi) = md.val(v);
                let present = md.m.get(&ok).map(|e| e.1.clone());
                match op {
                    Op::Put(..) => {
                        let want = md.insert(ok, k, ovl);
                        prop_assert_eq!(map.put(ki, vi).unwrap(), want);
                    }
                    Op::Add(..) => {
                        let want = present.is_none() && md.insert(ok, k, ovl);
                        prop_assert_eq!(map.add(ki, vi).unwrap(), want);
                    }
                    Op::Update(..) => {
                        let want = present.is_some() && md.insert(ok, k, ovl);
                        prop_assert_eq!(map.update(ki, vi).unwrap(), want);
                    }
                    Op::Swap(..) => {
                        md.insert(ok, k, ovl);
                        prop_assert_eq!(ov(map.swap(ki, vi).unwrap()), present);
                    }
                    _ => {
                        let want = match present {
                            Some(p) => Some(p),
                            None if md.insert(ok, k, ovl.clone()) => Some(ovl),
                            None => None,
                        };
                        prop_assert_eq!(ov(map.get_or_set(ki, vi).unwrap()), want);
                    }
                }
            }
            Op::Take(k) => {
                let (ok, ki) = md.key(k);
                let want = md.m.remove(&ok).map(|e| e.1);
                prop_assert_eq!(ov(map.take(ki).unwrap()), want);
            }
            Op::Remove(k) => {
                let (ok, ki) = md.key(k);
                let want = md.m.remove(&ok).is_some();
                prop_assert_eq!(map.remove(ki).unwrap(), want);
            }
            Op::Get(k) => {
                let (ok, ki) = md.key(k);
                let want = md.m.get(&ok).map(|e| e.1.clone());
                prop_assert_eq!(ov(map.get(ki).unwrap()), want);
            }
            Op::Exists(k) => {
                let (ok, ki) = md.key(k);
                prop_assert_eq!(map.exists(ki).unwrap(), md.m.contains_key(&ok));
            }
            Op::Cas(k, e, d) => {
                let (ok, ki) = md.key(k);
                let (oe, ei) = md.val(e);
                let (od, di) = md.val(d);
                let hit = md.m.get(&ok).is_some_and(|s| md.val_eq(&s.1, &oe));
                if hit {
                    md.m.get_mut(&ok).unwrap().1 = od;
                }
                prop_assert_eq!(map.cas(ki, ei, di).unwrap(), hit);
            }
            Op::CasTake(k, e) => {
                let (ok, ki) = md.key(k);
                let (oe, ei) = md.val(e);
                let hit = md.m.get(&ok).is_some_and(|s| md.val_eq(&s.1, &oe));
                let want = if hit { md.m.remove(&ok).map(|e| e.1) } else { None };
                prop_assert_eq!(ov(map.cas_take(ki, ei).unwrap()), want);
            }
            Op::Incr(k, d) | Op::Max(k, d) | Op::Min(k, d) => {
                let (ok, ki) = md.key(k);
                let r = match op {
                    Op::Incr(..) => map.incr_by(ki, *d),
                    Op::Max(..) => map.max(ki, *d),
                    _ => map.min(ki, *d),
                };
                if !md.vk.is_int() {
                    prop_assert!(r.is_err());
                    continue;
                }
                let d = md.vk.narrow(*d);
                let want = match md.m.get(&ok).map(|e| e.1.clone()) {
                    Some(Value::Int(c)) => Some(md.vk.narrow(match op {
                        Op::Incr(..) => c.wrapping_add(d),
                        Op::Max(..) => c.max(d),
                        _ => c.min(d),
                    })),
                    _ if md.room() => Some(d),
                    _ => None,
                };
                match want {
                    Some(w) => {
                        md.insert(ok, k, Value::Int(w));
                        prop_assert_eq!(r.unwrap(), w);
                    }
                    None => prop_assert_eq!(r.unwrap_err().kind(), ErrorKind::Full),
                }
            }
            Op::Clear => {
                md.m.clear();
                map.clear().unwrap();
                let s = map.stats();
                prop_assert_eq!((s.size, s.capacity, s.tombstones, s.arena_used), (0, 16, 0, 0));
            }
            Op::Reserve(n) => {
                let need = ((*n as u128 * 8).div_ceil(7)).max(16).next_power_of_two();
                let want = need <= md.max_cap as u128;
                prop_assert_eq!(map.reserve(*n).unwrap(), want);
                if want {
                    prop_assert!(map.stats().capacity as u128 >= need);
                }
            }
            Op::Each(n) => {
                for _ in 0..*n {
                    let kk = md.kk;
                    match map.each().unwrap() {
                        Some((k, v)) => {
                            let (ok, _) = key_of(kk, k);
                            let v = v.to_value();
                            let e = md.m.get(&ok);
                            prop_assert!(e.is_some(), "each returned a missing key {:?}", ok);
                            prop_assert_eq!(&e.unwrap().1, &v);
                        }
                        None => break,
                    }
                }
            }
            Op::IterReset => map.iter_reset(),
            Op::SetMulti(pairs) => {
                let mut want = 0;
                let mut args = Vec::new();
                for (k, v) in pairs {
                    let (ok, ki) = md.key(k);
                    let (ovl, vi) = md.val(v);
                    if md.insert(ok, k, ovl) {
                        want += 1;
                    }
                    args.push((ki, vi));
                }
                prop_assert_eq!(map.set_multi(&args).unwrap(), want);
            }
            Op::RemoveMulti(keys) => {
                let mut want = 0;
                let mut args = Vec::new();
                for k in keys {
                    let (ok, ki) = md.key(k);
                    if md.m.remove(&ok).is_some() {
                        want += 1;
                    }
                    args.push(ki);
                }
                prop_assert_eq!(map.remove_multi(&args).unwrap(), want);
            }
            Op::GetMulti(keys) => {
                let mut want = Vec::new();
                let mut args = Vec::new();
                for k in keys {
                    let (ok, ki) = md.key(k);
                    want.push(md.m.get(&ok).map(|e| e.1.clone()));
                    args.push(ki);
                }
                prop_assert_eq!(map.get_multi(&args).unwrap(), want);
            }
            Op::Fill(n, base) => {
                for i in 0..*n as u32 {
                    let k = fill_raw(md.kk, *base as u32 + i);
                    let v = Raw { int: i as i64, bytes: vec![b'x'; (i % 40) as usize], utf8: i % 3 == 0 };
                    let (ok, ki) = md.key(&k);
                    let (ovl, vi) = md.val(&v);
                    let want = md.insert(ok, &k, ovl);
                    prop_assert_eq!(map.put(ki, vi).unwrap(), want);
                }
            }
            Op::RemoveSome(pct) => {
                let keys: Vec<OK> = md.m.keys().cloned().collect();
                for (j, ok) in keys.into_iter().enumerate() {
                    if (j * 37) % 100 < *pct as usize {
                        md.m.remove(&ok);
                        let r = match &ok {
                            OK::I(v) => map.remove(In::Int(*v)),
                            OK::B(b) => map.remove(In::Str(b, false)),
                        };
                        prop_assert!(r.unwrap());
                    }
                }
            }
        }
        let s = map.stats();
        prop_assert_eq!(s.size as usize, md.m.len());
        prop_assert!(s.capacity.is_power_of_two() && s.capacity >= 16 && s.capacity <= md.max_cap);
        prop_assert!(s.size + s.tombstones <= s.capacity - s.capacity / 8);
    }
    // Final state: every entry with its flags, and exact arena accounting.
    let items = map.items().unwrap();
    prop_assert_eq!(items.len(), md.m.len());
    let mut arena = 0u64;
    for (k, v) in items {
        let (ok, kutf8) = match k {
            Value::Int(x) => (OK::I(x), false),
            Value::Str(b, u) => {
                arena += block(b.len());
                (OK::B(b), u)
            }
        };
        if let Value::Str(b, _) = &v {
            arena += block(b.len());
        }
        let e = md.m.get(&ok);
        prop_assert!(e.is_some());
        let e = e.unwrap();
        prop_assert_eq!(&e.1, &v);
        if md.kk == Kind::Str {
            prop_assert_eq!(e.0, kutf8, "stored key flag");
        }
    }
    prop_assert_eq!(map.stats().arena_used, arena);
    Ok(())
}

fn config() -> ProptestConfig {
    ProptestConfig { cases: 48, max_shrink_iters: 2000, ..ProptestConfig::default() }
}

macro_rules! oracle_test {
    ($name:ident, $v:expr) => {
        proptest! {
            #![proptest_config(config())]
            #[test]
            fn $name(max in prop_oneof![Just(10u64), Just(60), Just(300)], ops in prop::collection::vec(op(), 1..400)) {
                run($v, max, &ops)?;
            }
        }
    };
}

oracle_test!(oracle_i16, Variant::I16);
oracle_test!(oracle_i32, Variant::I32);
oracle_test!(oracle_ii, Variant::II);
oracle_test!(oracle_i16s, Variant::I16S);
oracle_test!(oracle_i32s, Variant::I32S);
oracle_test!(oracle_is, Variant::IS);
oracle_test!(oracle_si16, Variant::SI16);
oracle_test!(oracle_si32, Variant::SI32);
oracle_test!(oracle_si, Variant::SI);
oracle_test!(oracle_ss, Variant::SS);

/// Thousands of entries through many grow/shrink cycles, deterministic.
#[test]
fn many_resizes() {
    for v in [Variant::II, Variant::SS, Variant::I16S, Variant::SI] {
        let mut m = Map::open(&Options::of(v, 50_000).arena_cap(64 << 20)).unwrap();
        let kk = v.key_kind();
        let mut oracle: HashMap<OK, Value> = HashMap::new();
        for round in 0..4u32 {
            let n = 20_000 + round * 5000;
            for i in 0..n {
                let k = fill_raw(kk, i + round * 100_000);
                let v = Raw { int: i as i64, bytes: format!("value {i}").into_bytes(), utf8: false };
                let md = Model { kk, vk: v_kind(v_of(&m)), max: usize::MAX, max_cap: 0, m: HashMap::new() };
                let (ok, ki) = md.key(&k);
                let (ov, vi) = md.val(&v);
                assert!(m.put(ki, vi).unwrap());
                oracle.insert(ok, ov);
            }
            let caps = m.stats().capacity;
            assert!(caps >= 16384);
            // Remove 95%: the table must shrink.
            let keys: Vec<OK> = oracle.keys().cloned().collect();
            for (j, ok) in keys.iter().enumerate() {
                if j % 20 != 0 {
                    oracle.remove(ok);
                    let r = match ok {
                        OK::I(x) => m.remove(In::Int(*x)),
                        OK::B(b) => m.remove(In::Str(b, false)),
                    };
                    assert!(r.unwrap());
                }
            }
            assert!(m.stats().capacity < caps / 4, "shrunk");
            for (ok, want) in &oracle {
                let got = match ok {
                    OK::I(x) => m.get(In::Int(*x)).unwrap().map(Out::to_value),
                    OK::B(b) => m.get(In::Str(b, false)).unwrap().map(Out::to_value),
                };
                assert_eq!(got.as_ref(), Some(want));
            }
        }
    }
}

fn v_of(m: &Map) -> Variant {
    m.variant()
}
fn v_kind(v: Variant) -> Kind {
    v.val_kind()
}

// ---------------------------------------------------------------------------------
// LRU and TTL: random operations against an exact model of the recency list (clock /
// second chance, lru_skip 0), the expiry times (an injected clock, advanced by the
// test) and the statistics, for LRU, TTL and LRU+TTL maps, through grows, shrinks and
// compactions (the list order must survive them).

use hashmap_shared::ttl::{Clock, ManualClock};
use std::collections::VecDeque;
use std::sync::Arc;

#[derive(Clone, Debug)]
enum LOp {
    Put(u8, Raw),
    PutTtl(u8, Raw, u32),
    Add(u8, Raw),
    AddTtl(u8, Raw, u32),
    Update(u8, Raw),
    UpdateTtl(u8, Raw, u32),
    Swap(u8, Raw),
    Take(u8),
    Remove(u8),
    Get(u8),
    GetWithTtl(u8),
    Exists(u8),
    GetOrSet(u8, Raw),
    Cas(u8, Raw, Raw),
    CasTake(u8, Raw),
    Incr(u8, i64),
    Max(u8, i64),
    Touch(u8),
    Persist(u8),
    SetTtl(u8, u32),
    TtlRemaining(u8),
    GetMulti(Vec<u8>),
    SetMulti(Vec<(u8, Raw)>),
    Pop,
    Shift,
    Drain(u64),
    FlushExpired,
    Advance(u64),
    Clear,
    Fill(u8, u8),
    RemoveSome(u8),
    Reserve(u16),
}

fn small_val() -> impl Strategy<Value = Raw> {
    let bytes = prop_oneof![
        3 => prop::collection::vec(any::<u8>(), 0..=7),
        2 => prop::collection::vec(any::<u8>(), 8..60),
        1 => (0u8..3).prop_map(|i| vec![b'v'; i as usize]),
    ];
    (prop_oneof![4 => -3i64..3, 1 => any::<i64>()], bytes, any::<bool>())
        .prop_map(|(int, bytes, utf8)| Raw { int, bytes, utf8 })
}

fn ttl_arg() -> impl Strategy<Value = u32> {
    prop_oneof![3 => 0u32..6, 2 => 6u32..40, 1 => Just(u32::MAX), 1 => Just(4_294_967_293)]
}

fn lop() -> impl Strategy<Value = LOp> {
    let k = || 0u8..24;
    prop_oneof![
        12 => (k(), small_val()).prop_map(|(k, v)| LOp::Put(k, v)),
        4 => (k(), small_val(), ttl_arg()).prop_map(|(k, v, t)| LOp::PutTtl(k, v, t)),
        3 => (k(), small_val()).prop_map(|(k, v)| LOp::Add(k, v)),
        2 => (k(), small_val(), ttl_arg()).prop_map(|(k, v, t)| LOp::AddTtl(k, v, t)),
        3 => (k(), small_val()).prop_map(|(k, v)| LOp::Update(k, v)),
        2 => (k(), small_val(), ttl_arg()).prop_map(|(k, v, t)| LOp::UpdateTtl(k, v, t)),
        3 => (k(), small_val()).prop_map(|(k, v)| LOp::Swap(k, v)),
        2 => k().prop_map(LOp::Take),
        3 => k().prop_map(LOp::Remove),
        10 => k().prop_map(LOp::Get),
        2 => k().prop_map(LOp::GetWithTtl),
        2 => k().prop_map(LOp::Exists),
        3 => (k(), small_val()).prop_map(|(k, v)| LOp::GetOrSet(k, v)),
        2 => (k(), small_val(), small_val()).prop_map(|(k, e, d)| LOp::Cas(k, e, d)),
        1 => (k(), small_val()).prop_map(|(k, e)| LOp::CasTake(k, e)),
        4 => (k(), -2i64..3).prop_map(|(k, d)| LOp::Incr(k, d)),
        1 => (k(), -5i64..5).prop_map(|(k, d)| LOp::Max(k, d)),
        3 => k().prop_map(LOp::Touch),
        1 => k().prop_map(LOp::Persist),
        2 => (k(), ttl_arg()).prop_map(|(k, t)| LOp::SetTtl(k, t)),
        2 => k().prop_map(LOp::TtlRemaining),
        1 => prop::collection::vec(k(), 0..5).prop_map(LOp::GetMulti),
        1 => prop::collection::vec((k(), small_val()), 0..5).prop_map(LOp::SetMulti),
        2 => Just(LOp::Pop),
        1 => Just(LOp::Shift),
        1 => prop_oneof![0u64..5, Just(u64::MAX)].prop_map(LOp::Drain),
        1 => Just(LOp::FlushExpired),
        4 => prop_oneof![1u64..3, 3u64..10, Just(40)].prop_map(LOp::Advance),
        1 => Just(LOp::Clear),
        1 => (1u8..120, 0u8..4).prop_map(|(n, b)| LOp::Fill(n, b)),
        1 => (0u8..=100).prop_map(LOp::RemoveSome),
        1 => (0u16..200).prop_map(LOp::Reserve),
    ]
}

/// One model entry.
#[derive(Clone, Debug)]
struct LEnt {
    val: Value,
    /// Expiry relative to the map's epoch, 0 = permanent (as stored by the engine).
    exp: u32,
    acc: bool,
}

struct LModel {
    conv: Model,
    lru: bool,
    ttl: bool,
    max_size: usize,
    default_ttl: u32,
    /// Head (most recent) first: the recency list of LRU maps (insertion order else).
    order: VecDeque<OK>,
    e: HashMap<OK, LEnt>,
    now: u64,
    evictions: u64,
    expired: u64,
}

impl LModel {
    fn expiry(&self, t: u32) -> u32 {
        if t == 0 {
            0
        } else {
            (self.now + t as u64).min(u32::MAX as u64) as u32
        }
    }
    fn is_expired(&self, k: &OK) -> bool {
        self.e.get(k).is_some_and(|x| x.exp != 0 && self.now >= x.exp as u64)
    }
    fn live(&self, k: &OK) -> bool {
        self.e.contains_key(k) && !self.is_expired(k)
    }
    fn unlink(&mut self, k: &OK) {
        let pos = self.order.iter().position(|x| x == k).expect("in the list");
        self.order.remove(pos);
    }
    fn remove(&mut self, k: &OK) -> Option<LEnt> {
        let x = self.e.remove(k)?;
        self.unlink(k);
        Some(x)
    }
    /// Reclaims k if present and expired; true if it did.
    fn reclaim_if_expired(&mut self, k: &OK) -> bool {
        if self.is_expired(k) {
            self.remove(k);
            self.expired += 1;
            true
        } else {
            false
        }
    }
    fn promote(&mut self, k: &OK) {
        if !self.lru || self.order.front() == Some(k) {
            return;
        }
        self.unlink(k);
        self.order.push_front(k.clone());
        self.e.get_mut(k).unwrap().acc = false;
    }
    fn refresh_default(&mut self, k: &OK) {
        if self.ttl {
            let d = self.expiry(self.default_ttl);
            let x = self.e.get_mut(k).unwrap();
            if x.exp != 0 {
                x.exp = d;
            }
        }
    }
    /// A write hit: promote, then the expiry per `set` (None: refresh to default).
    fn hit(&mut self, k: &OK, set: Option<u32>) {
        self.promote(k);
        match set {
            None => self.refresh_default(k),
            Some(e) => self.e.get_mut(k).unwrap().exp = e,
        }
    }
    fn evict(&mut self) {
        loop {
            let Some(t) = self.order.back().cloned() else { return };
            if self.e[&t].acc {
                self.e.get_mut(&t).unwrap().acc = false;
                self.order.pop_back();
                self.order.push_front(t);
                continue;
            }
            if self.is_expired(&t) {
                self.expired += 1;
            } else {
                self.evictions += 1;
            }
            self.remove(&t);
            return;
        }
    }
    /// Inserts an absent key (evicting first on a full LRU map); false when full.
    fn insert(&mut self, k: OK, val: Value, exp: Option<u32>) -> bool {
        if self.lru && self.e.len() >= self.max_size {
            self.evict();
        }
        if self.e.len() >= self.conv.max {
            return false;
        }
        let exp = match exp {
            Some(e) => e,
            None if self.ttl => self.expiry(self.default_ttl),
            None => 0,
        };
        self.order.push_front(k.clone());
        self.e.insert(k, LEnt { val, exp, acc: false });
        true
    }
    fn get(&mut self, k: &OK, mark: bool) -> Option<Value> {
        if !self.live(k) {
            return None;
        }
        let x = self.e.get_mut(k).unwrap();
        if mark {
            x.acc = true;
        }
        Some(x.val.clone())
    }
    fn remaining(&self, k: &OK) -> Option<u32> {
        if !self.ttl || !self.live(k) {
            return None;
        }
        let e = self.e[k].exp;
        Some(if e == 0 { 0 } else { (e as u64 - self.now) as u32 })
    }
}

fn lkey(_kk: Kind, i: u8) -> Raw {
    Raw { int: i as i64 * 1000 - 7000, bytes: format!("key{i}").into_bytes(), utf8: false }
}

fn ok_of(v: &Value) -> OK {
    match v {
        Value::Int(x) => OK::I(*x),
        Value::Str(b, _) => OK::B(b.clone()),
    }
}

fn run_lru_ttl(variant: Variant, max_size: u64, ttl: u64, ops: &[LOp]) -> Result<(), TestCaseError> {
    let opts = Options::of(variant, 40).arena_cap(8 << 20).lru(max_size, 0).ttl(ttl);
    let mut map = Map::open(&opts).unwrap();
    let epoch = map.ttl_epoch();
    let clock = Arc::new(ManualClock::new(epoch + 100));
    map.set_clock(clock.clone());
    let st = map.stats();
    let kk = variant.key_kind();
    let mut md = LModel {
        conv: Model { kk, vk: variant.val_kind(), max: st.max_entries as usize, max_cap: 0, m: HashMap::new() },
        lru: max_size > 0,
        ttl: ttl > 0,
        max_size: max_size as usize,
        default_ttl: ttl as u32,
        order: VecDeque::new(),
        e: HashMap::new(),
        now: clock.now() - epoch,
        evictions: 0,
        expired: 0,
    };
    let clamp = |t: u32| t.min(4_294_967_293);
    let raws: Vec<Raw> = (0..=255u8).map(|i| lkey(kk, i)).collect();
    for op in ops {
        md.now = clock.now() - epoch;
        match op {
            LOp::Put(k, v) | LOp::PutTtl(k, v, _) => {
                let (ok, ki) = md.conv.key(&raws[*k as usize]);
                let (ov, vi) = md.conv.val(v);
                if !md.ttl && matches!(op, LOp::PutTtl(..)) {
                    prop_assert!(map.put_ttl(ki, vi, 1).is_err());
                    continue;
                }
                let set = match op {
                    LOp::PutTtl(.., t) if md.ttl => Some(md.expiry(clamp(*t))),
                    _ => None,
                };
                let want = if md.e.contains_key(&ok) {
                    md.e.get_mut(&ok).unwrap().val = ov;
                    md.hit(&ok, set);
                    true
                } else {
                    md.insert(ok, ov, set)
                };
                let got = match op {
                    LOp::PutTtl(.., t) => map.put_ttl(ki, vi, *t),
                    _ => map.put(ki, vi),
                };
                prop_assert_eq!(got.unwrap(), want);
            }
            LOp::Add(k, v) | LOp::AddTtl(k, v, _) => {
                if !md.ttl && matches!(op, LOp::AddTtl(..)) {
                    let (_, ki) = md.conv.key(&raws[*k as usize]);
                    let (_, vi) = md.conv.val(v);
                    prop_assert!(map.add_ttl(ki, vi, 1).is_err());
                    continue;
                }
                let (ok, ki) = md.conv.key(&raws[*k as usize]);
                let (ov, vi) = md.conv.val(v);
                md.reclaim_if_expired(&ok);
                let want = if md.e.contains_key(&ok) {
                    false
                } else {
                    let set = match op {
                        LOp::AddTtl(.., t) => Some(md.expiry(clamp(*t))),
                        _ => None,
                    };
                    md.insert(ok, ov, set)
                };
                let got = match op {
                    LOp::AddTtl(.., t) => map.add_ttl(ki, vi, *t),
                    _ => map.add(ki, vi),
                };
                prop_assert_eq!(got.unwrap(), want);
            }
            LOp::Update(k, v) | LOp::UpdateTtl(k, v, _) => {
                if !md.ttl && matches!(op, LOp::UpdateTtl(..)) {
                    let (_, ki) = md.conv.key(&raws[*k as usize]);
                    let (_, vi) = md.conv.val(v);
                    prop_assert!(map.update_ttl(ki, vi, 1).is_err());
                    continue;
                }
                let (ok, ki) = md.conv.key(&raws[*k as usize]);
                let (ov, vi) = md.conv.val(v);
                md.reclaim_if_expired(&ok);
                let want = md.e.contains_key(&ok);
                if want {
                    md.e.get_mut(&ok).unwrap().val = ov;
                    let set = match op {
                        LOp::UpdateTtl(.., t) => Some(md.expiry(clamp(*t))),
                        _ => None,
                    };
                    md.hit(&ok, set);
                }
                let got = match op {
                    LOp::UpdateTtl(.., t) => map.update_ttl(ki, vi, *t),
                    _ => map.update(ki, vi),
                };
                prop_assert_eq!(got.unwrap(), want);
            }
            LOp::Swap(k, v) => {
                let (ok, ki) = md.conv.key(&raws[*k as usize]);
                let (ov, vi) = md.conv.val(v);
                md.reclaim_if_expired(&ok);
                let want = match md.e.get(&ok).map(|x| x.val.clone()) {
                    Some(old) => {
                        md.e.get_mut(&ok).unwrap().val = ov;
                        md.hit(&ok, None);
                        Some(old)
                    }
                    None => {
                        md.insert(ok, ov, None);
                        None
                    }
                };
                prop_assert_eq!(ov_(map.swap(ki, vi).unwrap()), want);
            }
            LOp::Take(k) => {
                let (ok, ki) = md.conv.key(&raws[*k as usize]);
                md.reclaim_if_expired(&ok);
                let want = md.remove(&ok).map(|x| x.val);
                prop_assert_eq!(ov_(map.take(ki).unwrap()), want);
            }
            LOp::Remove(k) => {
                let (ok, ki) = md.conv.key(&raws[*k as usize]);
                let want = md.remove(&ok).is_some();
                prop_assert_eq!(map.remove(ki).unwrap(), want);
            }
            LOp::Get(k) => {
                let (ok, ki) = md.conv.key(&raws[*k as usize]);
                let want = md.get(&ok, true);
                prop_assert_eq!(ov_(map.get(ki).unwrap()), want);
            }
            LOp::GetWithTtl(k) => {
                let (ok, ki) = md.conv.key(&raws[*k as usize]);
                let want = md.get(&ok, true).map(|v| (v, md.remaining(&ok)));
                let got = map.get_with_ttl(ki).unwrap().map(|(v, t)| (v.to_value(), t));
                prop_assert_eq!(got, want);
            }
            LOp::Exists(k) => {
                let (ok, ki) = md.conv.key(&raws[*k as usize]);
                prop_assert_eq!(map.exists(ki).unwrap(), md.live(&ok));
            }
            LOp::GetOrSet(k, v) => {
                let (ok, ki) = md.conv.key(&raws[*k as usize]);
                let (ov, vi) = md.conv.val(v);
                md.reclaim_if_expired(&ok);
                let want = match md.e.get(&ok).map(|x| x.val.clone()) {
                    Some(cur) => {
                        md.hit(&ok, None);
                        Some(cur)
                    }
                    None => md.insert(ok, ov.clone(), None).then_some(ov),
                };
                prop_assert_eq!(ov_(map.get_or_set(ki, vi).unwrap()), want);
            }
            LOp::Cas(k, e, d) => {
                let (ok, ki) = md.conv.key(&raws[*k as usize]);
                let (oe, ei) = md.conv.val(e);
                let (od, di) = md.conv.val(d);
                md.reclaim_if_expired(&ok);
                let hit = md.e.get(&ok).is_some_and(|x| md.conv.val_eq(&x.val, &oe));
                if hit {
                    md.e.get_mut(&ok).unwrap().val = od;
                    md.hit(&ok, None);
                }
                prop_assert_eq!(map.cas(ki, ei, di).unwrap(), hit);
            }
            LOp::CasTake(k, e) => {
                let (ok, ki) = md.conv.key(&raws[*k as usize]);
                let (oe, ei) = md.conv.val(e);
                md.reclaim_if_expired(&ok);
                let hit = md.e.get(&ok).is_some_and(|x| md.conv.val_eq(&x.val, &oe));
                let want = if hit { md.remove(&ok).map(|x| x.val) } else { None };
                prop_assert_eq!(ov_(map.cas_take(ki, ei).unwrap()), want);
            }
            LOp::Incr(k, d) | LOp::Max(k, d) => {
                let (ok, ki) = md.conv.key(&raws[*k as usize]);
                let r = match op {
                    LOp::Incr(..) => map.incr_by(ki, *d),
                    _ => map.max(ki, *d),
                };
                if !md.conv.vk.is_int() {
                    prop_assert!(r.is_err());
                    continue;
                }
                md.reclaim_if_expired(&ok);
                let d = md.conv.vk.narrow(*d);
                let want = match md.e.get(&ok).map(|x| x.val.clone()) {
                    Some(Value::Int(c)) => {
                        let n = md.conv.vk.narrow(match op {
                            LOp::Incr(..) => c.wrapping_add(d),
                            _ => c.max(d),
                        });
                        md.e.get_mut(&ok).unwrap().val = Value::Int(n);
                        md.hit(&ok, None);
                        Some(n)
                    }
                    _ => md.insert(ok, Value::Int(d), None).then_some(d),
                };
                match want {
                    Some(w) => prop_assert_eq!(r.unwrap(), w),
                    None => prop_assert_eq!(r.unwrap_err().kind(), ErrorKind::Full),
                }
            }
            LOp::Touch(k) => {
                let (ok, ki) = md.conv.key(&raws[*k as usize]);
                let want = if md.lru || md.ttl {
                    md.reclaim_if_expired(&ok);
                    let h = md.e.contains_key(&ok);
                    if h {
                        md.hit(&ok, None);
                    }
                    h
                } else {
                    false
                };
                prop_assert_eq!(map.touch(ki).unwrap(), want);
            }
            LOp::Persist(k) | LOp::SetTtl(k, _) => {
                let (ok, ki) = md.conv.key(&raws[*k as usize]);
                let want = md.ttl && {
                    md.reclaim_if_expired(&ok);
                    md.e.contains_key(&ok)
                };
                if want {
                    let e = match op {
                        LOp::SetTtl(_, t) => md.expiry(*t),
                        _ => 0,
                    };
                    md.e.get_mut(&ok).unwrap().exp = e;
                }
                let got = match op {
                    LOp::SetTtl(_, t) => map.set_ttl(ki, *t),
                    _ => map.persist(ki),
                };
                prop_assert_eq!(got.unwrap(), want);
            }
            LOp::TtlRemaining(k) => {
                let (ok, ki) = md.conv.key(&raws[*k as usize]);
                prop_assert_eq!(map.ttl_remaining(ki).unwrap(), md.remaining(&ok));
            }
            LOp::GetMulti(keys) => {
                let mut want = Vec::new();
                let mut args = Vec::new();
                for k in keys {
                    let (ok, ki) = md.conv.key(&raws[*k as usize]);
                    want.push(md.get(&ok, false));
                    args.push(ki);
                }
                prop_assert_eq!(map.get_multi(&args).unwrap(), want);
            }
            LOp::SetMulti(pairs) => {
                let mut want = 0;
                let mut args = Vec::new();
                for (k, v) in pairs {
                    let (ok, ki) = md.conv.key(&raws[*k as usize]);
                    let (ov, vi) = md.conv.val(v);
                    let stored = if md.e.contains_key(&ok) {
                        md.e.get_mut(&ok).unwrap().val = ov;
                        md.hit(&ok, None);
                        true
                    } else {
                        md.insert(ok, ov, None)
                    };
                    want += stored as u64;
                    args.push((ki, vi));
                }
                prop_assert_eq!(map.set_multi(&args).unwrap(), want);
            }
            LOp::Pop | LOp::Shift | LOp::Drain(_) => {
                if !md.lru {
                    // Slot order is not modelled: flush expired entries first, then
                    // only check that live entries come out.
                    let n = md.e.keys().filter(|k| md.is_expired(k)).cloned().collect::<Vec<_>>();
                    for k in &n {
                        md.remove(k);
                    }
                    md.expired += n.len() as u64;
                    prop_assert_eq!(map.flush_expired().unwrap(), n.len() as u64);
                }
                let want_n = match op {
                    LOp::Drain(n) => (*n).min(md.e.len() as u64),
                    _ => 1,
                };
                let got: Vec<(Value, Value)> = match op {
                    LOp::Pop => map.pop().unwrap().map(|(k, v)| (k.to_value(), v.to_value())).into_iter().collect(),
                    LOp::Shift => map.shift().unwrap().map(|(k, v)| (k.to_value(), v.to_value())).into_iter().collect(),
                    _ => map.drain(want_n).unwrap(),
                };
                let mut taken = 0;
                for (k, v) in &got {
                    let ok = ok_of(k);
                    if md.lru {
                        // skip (reclaim) expired entries at the end being taken from
                        loop {
                            let end = if matches!(op, LOp::Shift) { md.order.front() } else { md.order.back() };
                            let end = end.cloned();
                            prop_assert!(end.is_some(), "took {:?} from an empty model", ok);
                            let end = end.unwrap();
                            if md.reclaim_if_expired(&end) {
                                continue;
                            }
                            prop_assert_eq!(&end, &ok, "LRU end");
                            break;
                        }
                    }
                    prop_assert!(md.live(&ok), "took a missing/expired key {:?}", ok);
                    let x = md.remove(&ok).unwrap();
                    prop_assert_eq!(&x.val, v);
                    taken += 1;
                }
                if got.len() < want_n as usize {
                    // The map ran dry: every remaining entry must have been expired.
                    let rest: Vec<OK> = md.order.iter().cloned().collect();
                    for k in rest {
                        prop_assert!(md.reclaim_if_expired(&k), "entry left behind {:?}", k);
                    }
                }
                prop_assert!(taken <= want_n);
            }
            LOp::FlushExpired => {
                let n = md.e.keys().filter(|k| md.is_expired(k)).cloned().collect::<Vec<_>>();
                for k in &n {
                    md.remove(k);
                }
                md.expired += n.len() as u64;
                prop_assert_eq!(map.flush_expired().unwrap(), if md.ttl { n.len() as u64 } else { 0 });
            }
            LOp::Advance(s) => clock.advance(*s),
            LOp::Clear => {
                md.e.clear();
                md.order.clear();
                map.clear().unwrap();
            }
            LOp::Fill(n, b) => {
                for i in 0..*n {
                    let k = (b.wrapping_mul(37)).wrapping_add(i) % 200 + 24; // outside 0..24
                    let (ok, ki) = md.conv.key(&raws[k as usize]);
                    let fv = Raw { int: i as i64, bytes: vec![b'f'; i as usize % 20], utf8: false };
                    let (ov, vi) = md.conv.val(&fv);
                    let want = if md.e.contains_key(&ok) {
                        md.e.get_mut(&ok).unwrap().val = ov;
                        md.hit(&ok, None);
                        true
                    } else {
                        md.insert(ok, ov, None)
                    };
                    prop_assert_eq!(map.put(ki, vi).unwrap(), want);
                }
            }
            LOp::RemoveSome(pct) => {
                let keys: Vec<OK> = md.order.iter().cloned().collect();
                for (j, ok) in keys.into_iter().enumerate() {
                    if (j * 37) % 100 < *pct as usize {
                        md.remove(&ok);
                        let r = match &ok {
                            OK::I(v) => map.remove(In::Int(*v)),
                            OK::B(b) => map.remove(In::Str(b, false)),
                        };
                        prop_assert!(r.unwrap());
                    }
                }
            }
            LOp::Reserve(n) => {
                map.reserve(*n as u64).unwrap();
            }
        }
        md.now = clock.now() - epoch;
        let s = map.stats();
        prop_assert_eq!(s.size as usize, md.e.len(), "size after {:?}", op);
        if md.lru {
            prop_assert!(s.size as usize <= md.max_size, "size {} above max_size", s.size);
            let got: Vec<OK> = map.lru_keys().unwrap().iter().map(ok_of).collect();
            let want: Vec<OK> = md.order.iter().cloned().collect();
            prop_assert_eq!(got, want, "LRU order after {:?}", op);
        }
        prop_assert_eq!((s.evictions, s.expired), (md.evictions, md.expired), "stats after {:?}", op);
    }
    // Everything live is readable with its remaining TTL; iteration skips the expired.
    let mut live = 0;
    for (ok, _) in md.e.clone() {
        let ki = match &ok {
            OK::I(v) => In::Int(*v),
            OK::B(b) => In::Str(b, false),
        };
        prop_assert_eq!(map.ttl_remaining(ki).unwrap(), md.remaining(&ok));
        live += md.live(&ok) as usize;
    }
    prop_assert_eq!(map.items().unwrap().len(), live);
    Ok(())
}

fn ov_(o: Option<Out<'_>>) -> Option<Value> {
    o.map(Out::to_value)
}

macro_rules! lru_ttl_oracle {
    ($name:ident, $v:expr) => {
        proptest! {
            #![proptest_config(ProptestConfig { cases: 160, ..config() })]
            #[test]
            fn $name(
                (max_size, ttl) in prop_oneof![
                    (prop_oneof![Just(1u64), Just(3), Just(8), Just(14), Just(20), Just(30), Just(1000)], Just(0u64)),
                    (Just(0u64), prop_oneof![Just(1u64), Just(5), Just(30)]),
                    (prop_oneof![Just(2u64), Just(8), Just(20), Just(30)], prop_oneof![Just(1u64), Just(5), Just(30)]),
                ],
                ops in prop::collection::vec(lop(), 1..400),
            ) {
                run_lru_ttl($v, max_size, ttl, &ops)?;
            }
        }
    };
}

lru_ttl_oracle!(lru_ttl_oracle_ii, Variant::II);
lru_ttl_oracle!(lru_ttl_oracle_ss, Variant::SS);
lru_ttl_oracle!(lru_ttl_oracle_si16, Variant::SI16);
lru_ttl_oracle!(lru_ttl_oracle_is, Variant::IS);
