//! One open map of any backend, with every operation in one place.
//!
//! A [`Handle`] serves a single map ([`Map`]: one file, memfd or anonymous mapping) or a
//! shard set ([`ShardSet`]: many files behind one handle). Per-key operations come from
//! the one list in [`crate::ops`] and route the key to the map that holds it (one
//! predictable branch on the backend); whole-map operations are written out below, once
//! for each backend that differs. The C ABI crate and the typed Rust API are thin layers
//! over this type, so an operation is declared once and each backend implements only
//! its own part.

use crate::cursor::Cursor;
use crate::error::{Error, ErrorKind, Result};
use crate::map::{Change, Map, Stats, Upserted};
use crate::options::Options;
use crate::value::{In, Out, Value};
use crate::shard::{self, ShardSet};
use crate::variant::{Kind, Variant};
use std::ffi::CStr;

/// What a handle serves.
// The single map is inline on purpose: per-key calls reach it without another
// indirection; a handle is allocated once, so its size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Target {
    /// One map.
    One(Map),
    /// A shard set.
    Set(ShardSet),
}

/// One open map of any backend (see the module docs).
pub struct Handle {
    t: Target,
    kk: Kind,
    vk: Kind,
}

/// Generates `Handle`'s per-key methods from [`crate::keyed_ops!`]: each routes the key
/// to the map that holds it and calls the backend's method of the same name.
macro_rules! routed {
    ($( $(#[$doc:meta])* $name:ident => $c:ident ( $( $arg:ident : $tag:ident $($role:literal)? ),* ) -> $ret:ident ; )*) => {
        impl Handle {
            $(
                $(#[$doc])*
                #[inline]
                pub fn $name(&mut self, key: In<'_>, $( $arg: $crate::keyed_arg_ty!($tag) ),*) -> Result<$crate::keyed_ret_ty!($ret)> {
                    match &mut self.t {
                        Target::One(m) => m.$name(key, $($arg),*),
                        Target::Set(s) => s.route_mut(key).$name(key, $($arg),*),
                    }
                }
            )*
        }
    };
}
crate::keyed_ops!(routed);

impl Handle {
    /// A handle on `t`.
    pub fn new(t: Target) -> Handle {
        let v = match &t {
            Target::One(m) => m.variant(),
            Target::Set(s) => s.maps()[0].variant(),
        };
        Handle { t, kk: v.key_kind(), vk: v.val_kind() }
    }

    /// Opens (creates or attaches) the single map `o` describes.
    pub fn open(o: &Options) -> Result<Handle> {
        Ok(Handle::new(Target::One(Map::open(o)?)))
    }

    /// Opens (creating what is missing) the shard set `prefix` of `shards` shards, each
    /// sized by `o` (see [`ShardSet::open`]).
    pub fn open_sharded(prefix: &CStr, shards: u64, o: &Options) -> Result<Handle> {
        Ok(Handle::new(Target::Set(ShardSet::open(prefix, shards, o)?)))
    }

    /// Opens the frozen map file `path` read-only (see [`Map::open_readonly`]).
    pub fn open_readonly(path: &CStr, variant: Variant) -> Result<Handle> {
        Ok(Handle::new(Target::One(Map::open_readonly(path, variant)?)))
    }

    /// What it serves.
    pub fn target(&self) -> &Target {
        &self.t
    }

    /// The variant.
    pub fn variant(&self) -> Variant {
        self.first().variant()
    }
    /// The kind of keys.
    #[inline]
    pub fn key_kind(&self) -> Kind {
        self.kk
    }
    /// The kind of values.
    #[inline]
    pub fn val_kind(&self) -> Kind {
        self.vk
    }

    /// The file's path, or the prefix of a shard set; None for anonymous, memfd and fd
    /// maps.
    pub fn path(&self) -> Option<&CStr> {
        match &self.t {
            Target::One(m) => m.path(),
            Target::Set(s) => Some(s.prefix()),
        }
    }

    /// The descriptor kept by memfd / fd maps, else -1.
    pub fn memfd(&self) -> i32 {
        match &self.t {
            Target::One(m) => m.memfd(),
            Target::Set(_) => -1,
        }
    }

    /// The first map (shard 0 of a set).
    fn first(&self) -> &Map {
        match &self.t {
            Target::One(m) => m,
            Target::Set(s) => &s.maps()[0],
        }
    }

    /// Every local map (one, or every shard in order).
    fn maps(&mut self) -> &mut [Map] {
        match &mut self.t {
            Target::One(m) => std::slice::from_mut(m),
            Target::Set(s) => s.maps_mut(),
        }
    }

    /// The shard of `key` (0 for a single map).
    pub fn shard_of(&self, key: In<'_>) -> usize {
        match &self.t {
            Target::One(_) => 0,
            Target::Set(s) => s.route(key),
        }
    }

    /// The map holding `key`.
    #[inline]
    fn map_of(&mut self, key: In<'_>) -> &mut Map {
        match &mut self.t {
            Target::One(m) => m,
            Target::Set(s) => s.route_mut(key),
        }
    }

    /// [`Handle::get`] copying a string value straight to `dst` when it fits (see
    /// [`Map::get_to`]).
    ///
    /// # Safety
    /// As [`Map::get_to`].
    #[inline]
    pub unsafe fn get_to(&mut self, key: In<'_>, dst: *mut u8, cap: usize) -> Result<Option<Out<'_>>> {
        // SAFETY: forwarded contract.
        unsafe { self.map_of(key).get_to(key, dst, cap) }
    }

    /// Read-modify-write of `key` with one lookup, under the write lock of the map
    /// that holds it (see [`Map::upsert_with`]).
    pub fn upsert_with(&mut self, key: In<'_>, f: impl FnOnce(Option<Out<'_>>) -> Change) -> Result<(Upserted, Option<Value>)> {
        self.map_of(key).upsert_with(key, f)
    }

    /// [`Handle::get`] for integer-key, integer-value variants (see [`Map::get_int`]).
    #[inline]
    pub fn get_int(&mut self, key: i64) -> Result<Option<i64>> {
        self.map_of(In::Int(key)).get_int(key)
    }

    /// [`Handle::put`] of an integer key and value (see [`Map::put_int`]).
    #[inline]
    pub fn put_int(&mut self, key: i64, val: i64) -> Result<bool> {
        self.map_of(In::Int(key)).put_int(key, val)
    }

    /// [`Handle::add`] of an integer key and value (see [`Map::add_int`]).
    #[inline]
    pub fn add_int(&mut self, key: i64, val: i64) -> Result<bool> {
        self.map_of(In::Int(key)).add_int(key, val)
    }

    /// [`Handle::update`] of an integer key and value (see [`Map::update_int`]).
    #[inline]
    pub fn update_int(&mut self, key: i64, val: i64) -> Result<bool> {
        self.map_of(In::Int(key)).update_int(key, val)
    }

    /// [`Handle::remove`] of an integer key (see [`Map::remove_int`]).
    #[inline]
    pub fn remove_int(&mut self, key: i64) -> Result<bool> {
        self.map_of(In::Int(key)).remove_int(key)
    }

    /// [`Handle::incr_by`] of an integer key (see [`Map::incr_int`]).
    #[inline]
    pub fn incr_int(&mut self, key: i64, delta: i64) -> Result<i64> {
        self.map_of(In::Int(key)).incr_int(key, delta)
    }

    /// Puts every pair; one write lock for a single map, per key on a shard set (not
    /// atomic across shards, api.md 7.7). Returns how many were stored.
    pub fn set_multi(&mut self, pairs: &[(In<'_>, In<'_>)]) -> Result<u64> {
        match &mut self.t {
            Target::One(m) => m.set_multi(pairs),
            Target::Set(s) => {
                let mut n = 0;
                for &(k, v) in pairs {
                    n += s.route_mut(k).put(k, v)? as u64;
                }
                Ok(n)
            }
        }
    }

    /// Looks every key up (one read lock for a single map, per key on a set), calling
    /// `sink(index, value)` in order.
    pub fn get_multi_with(&mut self, keys: &[In<'_>], mut sink: impl FnMut(usize, Option<Out<'_>>)) -> Result<()> {
        match &mut self.t {
            Target::One(m) => m.get_multi_with(keys, sink),
            Target::Set(s) => {
                for (i, &k) in keys.iter().enumerate() {
                    s.route_mut(k).get_multi_with(&[k], |_, v| sink(i, v))?;
                }
                Ok(())
            }
        }
    }

    /// Removes every key (one write lock for a single map, per key on a set); returns
    /// how many were removed.
    pub fn remove_multi(&mut self, keys: &[In<'_>]) -> Result<u64> {
        match &mut self.t {
            Target::One(m) => m.remove_multi(keys),
            Target::Set(s) => {
                let mut n = 0;
                for &k in keys {
                    n += s.route_mut(k).remove(k)? as u64;
                }
                Ok(n)
            }
        }
    }

    /// Removes everything (every shard).
    pub fn clear(&mut self) -> Result<()> {
        self.maps().iter_mut().try_for_each(|m| m.clear())
    }

    /// Pre-grows every shard so that `n` entries fit; false when beyond the maximum
    /// capacity.
    pub fn reserve(&mut self, n: u64) -> Result<bool> {
        let mut all = true;
        for m in self.maps() {
            all &= m.reserve(n)?;
        }
        Ok(all)
    }

    /// msync of every shard.
    pub fn sync(&mut self) -> Result<()> {
        self.maps().iter().try_for_each(|m| m.sync())
    }

    /// Removes the backing file(s); true when every one was removed.
    pub fn unlink(&mut self) -> bool {
        self.maps().iter().fold(true, |all, m| m.unlink() & all)
    }

    /// Next entry of this handle's built-in iterator; None at the end (which resets it).
    pub fn each(&mut self) -> Result<Option<(Out<'_>, Out<'_>)>> {
        match &mut self.t {
            Target::One(m) => m.each(),
            Target::Set(s) => Ok(s.each()),
        }
    }

    /// Resets the built-in iterator.
    pub fn iter_reset(&mut self) {
        match &mut self.t {
            Target::One(m) => m.iter_reset(),
            Target::Set(s) => s.iter_reset(),
        }
    }

    /// Calls `f(key, value)` for every live entry (one read lock per shard; see
    /// [`Map::for_each`]).
    pub fn for_each(&mut self, keys: bool, vals: bool, mut f: impl FnMut(Out<'_>, Out<'_>)) -> Result<()> {
        self.maps().iter_mut().try_for_each(|m| m.for_each(keys, vals, &mut f))
    }

    /// Every inconsistency found (shard sets: prefixed "shard N: "); empty when sound.
    pub fn verify(&self) -> Vec<String> {
        match &self.t {
            Target::One(m) => m.verify(),
            Target::Set(s) => s
                .maps()
                .iter()
                .enumerate()
                .flat_map(|(i, m)| m.verify().into_iter().map(move |p| format!("shard {i}: {p}")))
                .collect(),
        }
    }

    /// Statistics (shard sets: aggregated as api.md 6.8 says).
    pub fn stats(&self) -> Stats {
        shard::aggregate(match &self.t {
            Target::One(m) => std::slice::from_ref(m),
            Target::Set(s) => s.maps(),
        })
    }

    /// Removes every expired entry; returns how many.
    pub fn flush_expired(&mut self) -> Result<u64> {
        self.maps().iter_mut().try_fold(0, |n, m| Ok(n + m.flush_expired()?))
    }

    /// One bounded expiry scan (every shard); (removed, every shard reached its end).
    pub fn flush_expired_partial(&mut self, limit: u32) -> Result<(u64, bool)> {
        let (mut n, mut done) = (0, true);
        for m in self.maps() {
            let (k, d) = m.flush_expired_partial(limit)?;
            n += k;
            done &= d;
        }
        Ok((n, done))
    }

    /// pop (`shift` false) or shift: one entry from the LRU tail / head (lowest /
    /// highest slot without LRU); shard sets rotate (api.md 6.6).
    pub fn take_one(&mut self, shift: bool) -> Result<Option<(Out<'_>, Out<'_>)>> {
        match &mut self.t {
            Target::One(m) => {
                if shift {
                    m.shift()
                } else {
                    m.pop()
                }
            }
            Target::Set(s) => s.take_one(shift),
        }
    }

    /// Removes up to `n` entries in pop order, calling `sink` for each.
    pub fn drain_with(&mut self, n: u64, sink: impl FnMut(Out<'_>, Out<'_>)) -> Result<u64> {
        match &mut self.t {
            Target::One(m) => m.drain_with(n, sink),
            Target::Set(s) => s.drain_with(n, sink),
        }
    }

    /// Seals the map (every shard) for good; this handle becomes read-only.
    pub fn freeze(&mut self) -> Result<()> {
        let first = self.first();
        if first.readonly() || first.frozen() {
            return Err(Error::new(ErrorKind::Frozen, "cannot freeze a read-only handle"));
        }
        for m in self.maps() {
            if !m.frozen() {
                m.freeze()?;
            }
        }
        Ok(())
    }

    /// The cursor's next entry, or None (exhausted).
    pub fn cursor_next(&mut self, c: &mut Cursor) -> Option<(Out<'_>, Out<'_>)> {
        c.next(self.maps())
    }

    /// Back before the first entry.
    pub fn cursor_reset(&mut self, c: &mut Cursor) {
        c.reset(self.maps())
    }

    /// Positions `c` at live `key`: true, or false when missing or expired.
    pub fn cursor_seek(&mut self, c: &mut Cursor, key: In<'_>) -> Result<bool> {
        let target = self.shard_of(key);
        c.seek(self.maps(), target, key)
    }

    /// Unregisters `c` (it is being dropped).
    pub fn cursor_release(&mut self, c: &mut Cursor) {
        c.release(self.maps())
    }

    /// Runs `f` holding the write lock of the map that holds `key` (a testing aid).
    #[doc(hidden)]
    pub fn with_write_lock<R>(&mut self, key: In<'_>, f: impl FnOnce() -> R) -> Result<R> {
        self.map_of(key).with_write_lock(f)
    }
}
