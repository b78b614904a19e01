//! One open map of any backend, with every operation in one place.
//!
//! A [`Handle`] serves a single map ([`Map`]: one file, memfd or anonymous mapping), a
//! shard set ([`ShardSet`]: many files behind one handle) or, with the `redis` feature, a
//! map in Redis ([`crate::remote::Remote`]: opened when the path is a `redis://`,
//! `rediss://` or `redis+unix://` URL). Per-key operations come from
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
    /// A map (or shard set) in Redis.
    #[cfg(feature = "redis")]
    Remote(crate::remote::Remote),
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
                        #[cfg(feature = "redis")]
                        Target::Remote(r) => r.$name(key, $($arg),*),
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
            #[cfg(feature = "redis")]
            Target::Remote(r) => r.variant(),
        };
        Handle { t, kk: v.key_kind(), vk: v.val_kind() }
    }

    /// Opens (creates or attaches) the single map `o` describes: a file path that is a
    /// Redis URL opens a map in Redis.
    pub fn open(o: &Options) -> Result<Handle> {
        if o.backing == crate::backing::Backing::File {
            if let Some(url) = remote_url(o.path.as_deref())? {
                return rem::open(url, o);
            }
        }
        Ok(Handle::new(Target::One(Map::open(o)?)))
    }

    /// Opens (creating what is missing) the shard set `prefix` of `shards` shards, each
    /// sized by `o` (see [`ShardSet::open`]); a Redis URL opens a set in Redis.
    pub fn open_sharded(prefix: &CStr, shards: u64, o: &Options) -> Result<Handle> {
        if let Some(url) = remote_url(Some(prefix))? {
            return rem::open_sharded(url, shards, o);
        }
        Ok(Handle::new(Target::Set(ShardSet::open(prefix, shards, o)?)))
    }

    /// Opens the frozen map file `path` (or frozen map in Redis) read-only (see
    /// [`Map::open_readonly`]).
    pub fn open_readonly(path: &CStr, variant: Variant) -> Result<Handle> {
        if let Some(url) = remote_url(Some(path))? {
            return rem::open_readonly(url, variant);
        }
        Ok(Handle::new(Target::One(Map::open_readonly(path, variant)?)))
    }

    /// What it serves.
    pub fn target(&self) -> &Target {
        &self.t
    }

    /// The variant.
    pub fn variant(&self) -> Variant {
        match &self.t {
            #[cfg(feature = "redis")]
            Target::Remote(r) => r.variant(),
            _ => self.first().variant(),
        }
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

    /// The LRU bound of each shard (0: no LRU), without asking a server.
    pub fn max_size(&self) -> u64 {
        match &self.t {
            #[cfg(feature = "redis")]
            Target::Remote(r) => r.max_size(),
            _ => self.first().stats().max_size,
        }
    }

    /// The default TTL in seconds (0: no TTL), without asking a server.
    pub fn default_ttl(&self) -> u64 {
        match &self.t {
            #[cfg(feature = "redis")]
            Target::Remote(r) => r.default_ttl(),
            _ => self.first().stats().ttl,
        }
    }

    /// Is this handle read-only (opened read-only, or it froze the map)?
    pub fn readonly(&self) -> bool {
        match &self.t {
            #[cfg(feature = "redis")]
            Target::Remote(r) => r.readonly(),
            _ => self.first().readonly(),
        }
    }

    /// The file's path, or the prefix of a shard set; None for anonymous, memfd and fd
    /// maps.
    pub fn path(&self) -> Option<&CStr> {
        match &self.t {
            Target::One(m) => m.path(),
            Target::Set(s) => Some(s.prefix()),
            #[cfg(feature = "redis")]
            Target::Remote(r) => Some(r.path()),
        }
    }

    /// The descriptor kept by memfd / fd maps, else -1.
    pub fn memfd(&self) -> i32 {
        match &self.t {
            Target::One(m) => m.memfd(),
            _ => -1,
        }
    }

    /// The first local map (shard 0 of a set; a remote map has none).
    fn first(&self) -> &Map {
        match &self.t {
            Target::One(m) => m,
            Target::Set(s) => &s.maps()[0],
            #[cfg(feature = "redis")]
            Target::Remote(_) => unreachable!("remote maps are matched before"),
        }
    }

    /// Every local map (one, or every shard in order; none for a remote map).
    fn maps(&mut self) -> &mut [Map] {
        match &mut self.t {
            Target::One(m) => std::slice::from_mut(m),
            Target::Set(s) => s.maps_mut(),
            #[cfg(feature = "redis")]
            Target::Remote(_) => &mut [],
        }
    }

    /// Is this a map in Redis?
    #[inline]
    pub fn is_remote(&self) -> bool {
        match &self.t {
            #[cfg(feature = "redis")]
            Target::Remote(_) => true,
            _ => false,
        }
    }

    /// The remote map, if this is one.
    #[cfg(feature = "redis")]
    #[inline]
    fn remote(&mut self) -> Option<&mut crate::remote::Remote> {
        match &mut self.t {
            Target::Remote(r) => Some(r),
            _ => None,
        }
    }

    /// The shard of `key` (0 for a single map).
    pub fn shard_of(&self, key: In<'_>) -> usize {
        match &self.t {
            Target::One(_) => 0,
            Target::Set(s) => s.route(key),
            #[cfg(feature = "redis")]
            Target::Remote(r) => r.route(key),
        }
    }

    /// The local map holding `key` (None for a remote map).
    #[inline]
    fn map_of(&mut self, key: In<'_>) -> Option<&mut Map> {
        match &mut self.t {
            Target::One(m) => Some(m),
            Target::Set(s) => Some(s.route_mut(key)),
            #[cfg(feature = "redis")]
            Target::Remote(_) => None,
        }
    }

    /// [`Handle::get`] copying a string value straight to `dst` when it fits (see
    /// [`Map::get_to`]).
    ///
    /// # Safety
    /// As [`Map::get_to`].
    #[inline]
    pub unsafe fn get_to(&mut self, key: In<'_>, dst: *mut u8, cap: usize) -> Result<Option<Out<'_>>> {
        if self.is_remote() {
            return self.get(key);
        }
        match self.map_of(key) {
            // SAFETY: forwarded contract.
            Some(m) => unsafe { m.get_to(key, dst, cap) },
            None => unreachable!("local"),
        }
    }

    /// Read-modify-write of `key` with one lookup, under the write lock of the map
    /// that holds it (see [`Map::upsert_with`]).
    /// On a map in Redis the closure runs between a read and a conditional write, and
    /// the call fails with [`ErrorKind::Conflict`] when another handle changed the
    /// entry in between ([`crate::remote::Remote::upsert_with`]).
    pub fn upsert_with(&mut self, key: In<'_>, f: impl FnOnce(Option<Out<'_>>) -> Change) -> Result<(Upserted, Option<Value>)> {
        match &mut self.t {
            Target::One(m) => m.upsert_with(key, f),
            Target::Set(s) => s.route_mut(key).upsert_with(key, f),
            #[cfg(feature = "redis")]
            Target::Remote(r) => r.upsert_with(key, f),
        }
    }

    /// [`Handle::get`] for integer-key, integer-value variants (see [`Map::get_int`]).
    #[inline]
    pub fn get_int(&mut self, key: i64) -> Result<Option<i64>> {
        match self.map_of(In::Int(key)) {
            Some(m) => m.get_int(key),
            None => match self.get(In::Int(key))? {
                Some(Out::Int(v)) => Ok(Some(v)),
                Some(Out::Str(..)) => Err(Error::arg("get_int needs an integer-key, integer-value variant")),
                None => Ok(None),
            },
        }
    }

    /// [`Handle::put`] of an integer key and value (see [`Map::put_int`]).
    #[inline]
    pub fn put_int(&mut self, key: i64, val: i64) -> Result<bool> {
        match self.map_of(In::Int(key)) {
            Some(m) => m.put_int(key, val),
            None => self.put(In::Int(key), In::Int(val)),
        }
    }

    /// [`Handle::add`] of an integer key and value (see [`Map::add_int`]).
    #[inline]
    pub fn add_int(&mut self, key: i64, val: i64) -> Result<bool> {
        match self.map_of(In::Int(key)) {
            Some(m) => m.add_int(key, val),
            None => self.add(In::Int(key), In::Int(val)),
        }
    }

    /// [`Handle::update`] of an integer key and value (see [`Map::update_int`]).
    #[inline]
    pub fn update_int(&mut self, key: i64, val: i64) -> Result<bool> {
        match self.map_of(In::Int(key)) {
            Some(m) => m.update_int(key, val),
            None => self.update(In::Int(key), In::Int(val)),
        }
    }

    /// [`Handle::remove`] of an integer key (see [`Map::remove_int`]).
    #[inline]
    pub fn remove_int(&mut self, key: i64) -> Result<bool> {
        match self.map_of(In::Int(key)) {
            Some(m) => m.remove_int(key),
            None => self.remove(In::Int(key)),
        }
    }

    /// [`Handle::incr_by`] of an integer key (see [`Map::incr_int`]).
    #[inline]
    pub fn incr_int(&mut self, key: i64, delta: i64) -> Result<i64> {
        match self.map_of(In::Int(key)) {
            Some(m) => m.incr_int(key, delta),
            None => self.incr_by(In::Int(key), delta),
        }
    }

    /// Puts every pair; one write lock for a single map, per key on a shard set (not
    /// atomic across shards, api.md 7.7). Returns how many were stored.
    pub fn set_multi(&mut self, pairs: &[(In<'_>, In<'_>)]) -> Result<u64> {
        match &mut self.t {
            #[cfg(feature = "redis")]
            Target::Remote(r) => r.set_multi(pairs),
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
            #[cfg(feature = "redis")]
            Target::Remote(r) => r.get_multi_with(keys, sink),
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
            #[cfg(feature = "redis")]
            Target::Remote(r) => r.remove_multi(keys),
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
        #[cfg(feature = "redis")]
        if let Some(r) = self.remote() {
            return r.clear();
        }
        self.maps().iter_mut().try_for_each(|m| m.clear())
    }

    /// Pre-grows every shard so that `n` entries fit; false when beyond the maximum
    /// capacity.
    pub fn reserve(&mut self, n: u64) -> Result<bool> {
        #[cfg(feature = "redis")]
        if let Some(r) = self.remote() {
            return r.reserve(n);
        }
        let mut all = true;
        for m in self.maps() {
            all &= m.reserve(n)?;
        }
        Ok(all)
    }

    /// msync of every shard.
    pub fn sync(&mut self) -> Result<()> {
        #[cfg(feature = "redis")]
        if let Some(r) = self.remote() {
            return r.sync();
        }
        self.maps().iter().try_for_each(|m| m.sync())
    }

    /// Removes the backing file(s); true when every one was removed.
    pub fn unlink(&mut self) -> bool {
        #[cfg(feature = "redis")]
        if let Some(r) = self.remote() {
            return r.unlink();
        }
        self.maps().iter().fold(true, |all, m| m.unlink() & all)
    }

    /// Next entry of this handle's built-in iterator; None at the end (which resets it).
    pub fn each(&mut self) -> Result<Option<(Out<'_>, Out<'_>)>> {
        match &mut self.t {
            Target::One(m) => m.each(),
            Target::Set(s) => Ok(s.each()),
            #[cfg(feature = "redis")]
            Target::Remote(r) => r.each(),
        }
    }

    /// Resets the built-in iterator.
    pub fn iter_reset(&mut self) {
        match &mut self.t {
            Target::One(m) => m.iter_reset(),
            Target::Set(s) => s.iter_reset(),
            #[cfg(feature = "redis")]
            Target::Remote(r) => r.iter_reset(),
        }
    }

    /// Calls `f(key, value)` for every live entry (one read lock per shard; see
    /// [`Map::for_each`]).
    pub fn for_each(&mut self, keys: bool, vals: bool, mut f: impl FnMut(Out<'_>, Out<'_>)) -> Result<()> {
        #[cfg(feature = "redis")]
        if let Some(r) = self.remote() {
            return r.for_each(keys, vals, f);
        }
        self.maps().iter_mut().try_for_each(|m| m.for_each(keys, vals, &mut f))
    }

    /// Every inconsistency found (shard sets: prefixed "shard N: "); empty when sound.
    pub fn verify(&self) -> Vec<String> {
        match &self.t {
            #[cfg(feature = "redis")]
            Target::Remote(r) => r.verify(),
            Target::One(m) => m.verify(),
            Target::Set(s) => s
                .maps()
                .iter()
                .enumerate()
                .flat_map(|(i, m)| m.verify().into_iter().map(move |p| format!("shard {i}: {p}")))
                .collect(),
        }
    }

    /// Statistics (shard sets: aggregated as api.md 6.8 says). Only a remote map can
    /// fail (its server cannot be reached).
    pub fn stats(&self) -> Result<Stats> {
        Ok(shard::aggregate(match &self.t {
            Target::One(m) => std::slice::from_ref(m),
            Target::Set(s) => s.maps(),
            #[cfg(feature = "redis")]
            Target::Remote(r) => return r.stats(),
        }))
    }

    /// Removes every expired entry; returns how many.
    pub fn flush_expired(&mut self) -> Result<u64> {
        #[cfg(feature = "redis")]
        if let Some(r) = self.remote() {
            return r.flush_expired();
        }
        self.maps().iter_mut().try_fold(0, |n, m| Ok(n + m.flush_expired()?))
    }

    /// One bounded expiry scan (every shard); (removed, every shard reached its end).
    pub fn flush_expired_partial(&mut self, limit: u32) -> Result<(u64, bool)> {
        #[cfg(feature = "redis")]
        if let Some(r) = self.remote() {
            return r.flush_expired_partial(limit);
        }
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
            #[cfg(feature = "redis")]
            Target::Remote(r) => r.take_one(shift),
        }
    }

    /// Removes up to `n` entries in pop order, calling `sink` for each.
    pub fn drain_with(&mut self, n: u64, sink: impl FnMut(Out<'_>, Out<'_>)) -> Result<u64> {
        match &mut self.t {
            Target::One(m) => m.drain_with(n, sink),
            Target::Set(s) => s.drain_with(n, sink),
            #[cfg(feature = "redis")]
            Target::Remote(r) => r.drain_with(n, sink),
        }
    }

    /// Seals the map (every shard) for good; this handle becomes read-only.
    pub fn freeze(&mut self) -> Result<()> {
        #[cfg(feature = "redis")]
        if let Some(r) = self.remote() {
            return r.freeze();
        }
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
    pub fn cursor_next(&mut self, c: &mut Cursor) -> Result<Option<(Out<'_>, Out<'_>)>> {
        #[cfg(feature = "redis")]
        if self.is_remote() {
            let Target::Remote(r) = &mut self.t else { unreachable!("remote") };
            return r.cursor_next(&mut c.remote);
        }
        Ok(c.next(self.maps()))
    }

    /// Back before the first entry.
    pub fn cursor_reset(&mut self, c: &mut Cursor) {
        #[cfg(feature = "redis")]
        if let Some(r) = self.remote() {
            return r.cursor_reset(&mut c.remote);
        }
        c.reset(self.maps())
    }

    /// Positions `c` at live `key`: true, or false when missing or expired.
    pub fn cursor_seek(&mut self, c: &mut Cursor, key: In<'_>) -> Result<bool> {
        #[cfg(feature = "redis")]
        if let Some(r) = self.remote() {
            return r.cursor_seek(&mut c.remote, key);
        }
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
        match self.map_of(key) {
            Some(m) => m.with_write_lock(f),
            None => Err(Error::new(ErrorKind::Unsupported, "no write lock on a Redis map")),
        }
    }
}

/// Does `b` look like a map URL rather than a file path? (Builds without the `redis`
/// feature ask too, to refuse URLs with a reason.)
pub(crate) fn is_url(b: &[u8]) -> bool {
    b.starts_with(b"redis://") || b.starts_with(b"rediss://") || b.starts_with(b"redis+unix://")
}

/// The URL in `path`, when it is a Redis URL (an error when this build cannot open one).
fn remote_url(path: Option<&CStr>) -> Result<Option<&str>> {
    let Some(p) = path else { return Ok(None) };
    let b = p.to_bytes();
    if !is_url(b) {
        return Ok(None);
    }
    if cfg!(feature = "redis") {
        std::str::from_utf8(b).map(Some).map_err(|_| Error::arg("a Redis URL must be UTF-8"))
    } else {
        Err(Error::new(
            ErrorKind::Unsupported,
            "this build has no Redis support: build the engine with its cargo feature redis \
             (Makefile.PL does unless HMS_NO_REDIS=1 is set); a local file named like a URL is opened as ./redis://...",
        ))
    }
}

/// Opening maps in Redis (the `redis` feature), or nothing: without the feature
/// `remote_url` refuses every URL before these could be called.
#[cfg(feature = "redis")]
mod rem {
    use super::{Handle, Target};
    use crate::error::Result;
    use crate::options::Options;
    use crate::remote::Remote;
    use crate::variant::Variant;
    pub fn open(url: &str, o: &Options) -> Result<Handle> {
        Ok(Handle::new(Target::Remote(Remote::open(url, o)?)))
    }
    pub fn open_sharded(url: &str, shards: u64, o: &Options) -> Result<Handle> {
        Ok(Handle::new(Target::Remote(Remote::open_sharded(url, shards, o)?)))
    }
    pub fn open_readonly(url: &str, variant: Variant) -> Result<Handle> {
        Ok(Handle::new(Target::Remote(Remote::open_readonly(url, variant)?)))
    }
}

#[cfg(not(feature = "redis"))]
mod rem {
    use super::Handle;
    use crate::error::Result;
    use crate::options::Options;
    use crate::variant::Variant;
    pub fn open(_: &str, _: &Options) -> Result<Handle> {
        unreachable!("no Redis support")
    }
    pub fn open_sharded(_: &str, _: u64, _: &Options) -> Result<Handle> {
        unreachable!("no Redis support")
    }
    pub fn open_readonly(_: &str, _: Variant) -> Result<Handle> {
        unreachable!("no Redis support")
    }
}
