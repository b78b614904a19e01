//! How a map is laid out in Redis (the key model) and how keys and values are encoded.
//!
//! Every shard of a map has six keys sharing one hash tag `{T}`, so they live in one
//! Cluster slot and every script touches one slot only:
//!
//! | key | type | content |
//! |---|---|---|
//! | `PREFIX{T}:m` | hash | meta: format version, variant, shard index/count, id (the routing seed), frozen, `w` (the write token: the id while the map is not frozen), sizing options, counters (evictions, expired, clock, gen) |
//! | `PREFIX{T}:d` | hash | the entries: field = key, value = value |
//! | `PREFIX{T}:x` | zset | TTL maps: key -> expiry (whole seconds of the server's clock); permanent entries absent |
//! | `PREFIX{T}:l` | zset | LRU maps: key -> promotion clock (head = highest) |
//! | `PREFIX{T}:a` | set | LRU maps: keys marked accessed (second chance) |
//! | `PREFIX{T}:u` | set | string-key variants: keys stored with Perl's UTF-8 flag |
//!
//! `T` is the map's NAME for a plain map. A set of N > 1 shards records its shape in
//! `PREFIX{NAME}:m` (count, variant, id) and keeps shard i under `T = NAME.i.j`, with the
//! smallest j whose slot falls in the i-th N-th of the slot range: on a cluster made
//! with the default even slot split the shards spread evenly over the masters.
//!
//! Encodings: integer keys and values are the canonical decimal of the narrowed value
//! (readable with redis-cli, exact for HINCRBY); string keys are their bytes; a string
//! value is one flag byte (`0` or `1`: Perl's UTF-8 flag) followed by its bytes.

use super::cluster::{slot, SLOTS};
use crate::value::{In, Out};
use crate::variant::Kind;

/// Version of this layout, recorded in every meta hash.
pub const FORMAT: &str = "1";

/// The six keys of one shard, in the script's KEYS order (M D X L A U).
#[derive(Clone, Debug)]
pub struct ShardKeys {
    pub keys: [Vec<u8>; 6],
    pub slot: u16,
}

impl ShardKeys {
    pub fn new(prefix: &str, tag: &str) -> ShardKeys {
        let k = |s: &str| format!("{prefix}{{{tag}}}:{s}").into_bytes();
        let keys = [k("m"), k("d"), k("x"), k("l"), k("a"), k("u")];
        let slot = slot(&keys[0]);
        ShardKeys { keys, slot }
    }
}

/// The tag of shard `i` of `n` (n > 1) of map `name` (see the module docs).
pub fn shard_tag(prefix: &str, name: &str, i: u32, n: u32) -> String {
    let lo = (i as usize * SLOTS) / n as usize;
    let hi = ((i as usize + 1) * SLOTS) / n as usize;
    for j in 0..1_000_000u32 {
        let t = format!("{name}.{i}.{j}");
        let s = slot(format!("{prefix}{{{t}}}:m").as_bytes()) as usize;
        if (lo..hi).contains(&s) {
            return t;
        }
    }
    // Unreachable in practice (every range holds at least 4 slots); still a valid tag.
    format!("{name}.{i}")
}

/// Encodes a key (already checked against the variant) into `out`.
pub fn enc_key(kk: Kind, k: In<'_>, out: &mut Vec<u8>) {
    out.clear();
    match k {
        In::Int(v) => out.extend_from_slice(kk.narrow(v).to_string().as_bytes()),
        In::Str(b, _) => out.extend_from_slice(b),
    }
}

/// Encodes a value as stored.
pub fn enc_val(vk: Kind, v: In<'_>, out: &mut Vec<u8>) {
    out.clear();
    match v {
        In::Int(x) => out.extend_from_slice(vk.narrow(x).to_string().as_bytes()),
        In::Str(b, u) => {
            out.push(if u { b'1' } else { b'0' });
            out.extend_from_slice(b);
        }
    }
}

/// Encodes a value to compare with (cas, cas_take): ints as stored, strings without
/// the flag byte (the comparison is by bytes only).
pub fn enc_cmp(vk: Kind, v: In<'_>, out: &mut Vec<u8>) {
    out.clear();
    match v {
        In::Int(x) => out.extend_from_slice(vk.narrow(x).to_string().as_bytes()),
        In::Str(b, _) => out.extend_from_slice(b),
    }
}

/// Decodes a stored value from `raw` (a string value's bytes stay in `raw`, after the
/// flag byte). None for bytes that are not ours.
pub fn dec_val(vk: Kind, raw: &[u8]) -> Option<Out<'_>> {
    if vk.is_int() {
        let v: i64 = std::str::from_utf8(raw).ok()?.parse().ok()?;
        return Some(Out::Int(vk.narrow(v)));
    }
    let (&f, rest) = raw.split_first()?;
    Some(Out::Str(rest, f == b'1'))
}

/// Decodes a stored key (`flag`: the key is in the UTF-8 set).
pub fn dec_key(kk: Kind, raw: &[u8], flag: bool) -> Option<Out<'_>> {
    if kk.is_int() {
        let v: i64 = std::str::from_utf8(raw).ok()?.parse().ok()?;
        return Some(Out::Int(kk.narrow(v)));
    }
    Some(Out::Str(raw, flag))
}

/// The script's name for a value kind.
pub fn vk_name(vk: Kind) -> &'static str {
    match vk {
        Kind::I16 => "i16",
        Kind::I32 => "i32",
        Kind::I64 => "i64",
        Kind::Str => "s",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_tags_spread_over_the_slot_range_and_share_one_slot_per_shard() {
        for n in [2u32, 3, 4, 16, 4096] {
            for i in [0, n / 2, n - 1] {
                let t = shard_tag("hms:", "big", i, n);
                let k = ShardKeys::new("hms:", &t);
                let lo = (i as usize * SLOTS) / n as usize;
                let hi = ((i as usize + 1) * SLOTS) / n as usize;
                assert!((lo..hi).contains(&(k.slot as usize)), "{n} {i} {t}");
                assert!(k.keys.iter().all(|x| slot(x) == k.slot));
            }
        }
    }

    #[test]
    fn values_round_trip() {
        let mut b = Vec::new();
        enc_val(Kind::I16, In::Int(70000), &mut b);
        assert_eq!(b, b"4464");
        assert_eq!(dec_val(Kind::I16, &b), Some(Out::Int(4464)));
        enc_val(Kind::I64, In::Int(i64::MIN), &mut b);
        assert_eq!(dec_val(Kind::I64, &b), Some(Out::Int(i64::MIN)));
        enc_val(Kind::Str, In::Str(b"caf\xc3\xa9", true), &mut b);
        assert_eq!(dec_val(Kind::Str, &b), Some(Out::Str(b"caf\xc3\xa9", true)));
        enc_val(Kind::Str, In::Str(b"", false), &mut b);
        assert_eq!(dec_val(Kind::Str, &b), Some(Out::Str(b"", false)));
        assert_eq!(dec_val(Kind::Str, b""), None);
    }
}
