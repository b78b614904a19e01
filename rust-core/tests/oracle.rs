//! Randomised oracle test: random operations on a map against std's HashMap, for every
//! variant, through many grows, shrinks, compactions and clears; narrowing, strings of
//! all lengths and bytes, UTF-8 flags, full tables.

use hashmap_shared::{ErrorKind, In, Kind, Map, Options, Out, Value, Variant};
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
    let mut map = Map::open(&Options::new(variant, max_entries).arena_cap(8 << 20)).unwrap();
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
        let mut m = Map::open(&Options::new(v, 50_000).arena_cap(64 << 20)).unwrap();
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
