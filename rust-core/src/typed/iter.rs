//! Iterators over a map: a cursor that yields owned entries, and its key and value
//! projections.

use super::types::{Arg, Storable};
use crate::cursor::Cursor;
use crate::error::{Error, Result};
use crate::handle::Handle;
use std::iter::FusedIterator;
use std::marker::PhantomData;

/// An iterator over the entries of a [`Map`](crate::Map), from
/// [`Map::iter`](crate::Map::iter): a cursor that walks the table in slot order (shard
/// 0 first on a shard set) and yields owned `(key, value)` pairs.
///
/// It is not a snapshot: every step takes the read lock on its own (one short lock per
/// entry, so writers in other processes are never held up for the whole walk) and
/// finds the next live entry after the last one returned. While other handles write:
///
/// - an entry that is present for the whole walk and not moved is returned exactly
///   once; removals, through any handle, never make it skip or repeat one;
/// - an entry inserted during the walk may or may not be returned (it depends on the
///   slot it lands in), and one removed before the cursor reaches it is not;
/// - when the table is resized (it grows as entries are added and shrinks when most
///   are removed), the cursor starts over at the first slot of the shard it is on:
///   entries of that shard may then be returned twice. Reserve capacity up front
///   ([`Map::reserve`](crate::Map::reserve)) or collect into a set when that matters;
/// - expired entries are skipped.
///
/// On a map in Redis each step reads a batch of entries from the server (`HSCAN`: an
/// entry present for the whole walk is returned at least once, and can be returned
/// twice when Redis rehashes the shard meanwhile). A step that fails (the server
/// cannot be reached) ends the walk early: [`take_error`](Iter::take_error) then
/// returns the error, so a program that must know it saw every entry checks it after
/// the loop. A local map never fails.
///
/// Once it has returned `None` it stays exhausted (entries added later are not
/// returned) until [`reset`](Iter::reset) or a successful [`seek`](Iter::seek).
/// [`Map::for_each`](crate::Map::for_each) and [`Map::to_vec`](crate::Map::to_vec)
/// read each shard under one read lock instead: a consistent snapshot per shard.
///
/// ```
/// use hashmap_shared::{Map, Options};
///
/// let mut m: Map<i32, i32> = Map::open(&Options::new(100))?;
/// for i in 0..10 {
///     m.put(i, i * i)?;
/// }
/// let mut squares: Vec<(i32, i32)> = m.iter().collect();
/// squares.sort();
/// assert_eq!(squares[3], (3, 9));
/// assert_eq!(m.keys().sum::<i32>(), 45);
///
/// // A cursor can start at a key and go on from there in slot order.
/// let mut it = m.iter();
/// assert!(it.seek(7)?);
/// assert_eq!(it.next(), Some((7, 49)));
/// # Ok::<(), hashmap_shared::Error>(())
/// ```
pub struct Iter<'m, K, V> {
    h: &'m mut Handle,
    c: Cursor,
    err: Option<Error>,
    _t: PhantomData<fn() -> (K, V)>,
}

impl<'m, K: Storable, V: Storable> Iter<'m, K, V> {
    pub(crate) fn new(h: &'m mut Handle) -> Self {
        Iter { h, c: Cursor::new(), err: None, _t: PhantomData }
    }

    /// Positions the cursor so that the next entry it returns is `key`'s, and the walk
    /// goes on from there in slot order (on a shard set: in the key's shard, earlier
    /// shards are skipped). Returns false when `key` is missing or expired; the cursor
    /// then stays where it was, except on a shard set, where it moves to the start of
    /// the key's shard when that is another one. Works after exhaustion.
    pub fn seek(&mut self, key: impl Arg<K>) -> Result<bool> {
        self.h.cursor_seek(&mut self.c, key.arg())
    }

    /// Back before the first entry.
    pub fn reset(&mut self) {
        self.h.cursor_reset(&mut self.c)
    }

    /// Has it run past the last entry (and stays there until reset or seek)?
    pub fn is_exhausted(&self) -> bool {
        self.c.exhausted()
    }

    /// The error that ended the walk early (a map in Redis whose server could not be
    /// reached), if any; taking it clears it. None after a complete walk.
    pub fn take_error(&mut self) -> Option<Error> {
        self.err.take()
    }
}

impl<K: Storable, V: Storable> Iterator for Iter<'_, K, V> {
    type Item = (K, V);

    fn next(&mut self) -> Option<(K, V)> {
        if self.err.is_some() {
            return None;
        }
        match self.h.cursor_next(&mut self.c) {
            Ok(Some((k, v))) => Some((K::from_out(k), V::from_out(v))),
            Ok(None) => None,
            Err(e) => {
                self.err = Some(e);
                None
            }
        }
    }
}

/// Stays exhausted until `reset` or `seek`, which a fused adaptor cannot call.
impl<K: Storable, V: Storable> FusedIterator for Iter<'_, K, V> {}

impl<K, V> Drop for Iter<'_, K, V> {
    fn drop(&mut self) {
        // Unregister from the shard the cursor sits on, which runs the shrink the
        // cursor deferred (cursor.rs).
        self.h.cursor_release(&mut self.c);
    }
}

/// The keys of a [`Map`](crate::Map) ([`Map::keys`](crate::Map::keys)): an [`Iter`]
/// that drops the values.
pub struct Keys<'m, K, V>(pub(crate) Iter<'m, K, V>);

impl<K: Storable, V: Storable> Iterator for Keys<'_, K, V> {
    type Item = K;
    fn next(&mut self) -> Option<K> {
        self.0.next().map(|(k, _)| k)
    }
}

impl<K: Storable, V: Storable> FusedIterator for Keys<'_, K, V> {}

/// The values of a [`Map`](crate::Map) ([`Map::values`](crate::Map::values)): an
/// [`Iter`] that drops the keys.
pub struct Values<'m, K, V>(pub(crate) Iter<'m, K, V>);

impl<K: Storable, V: Storable> Iterator for Values<'_, K, V> {
    type Item = V;
    fn next(&mut self) -> Option<V> {
        self.0.next().map(|(_, v)| v)
    }
}

impl<K: Storable, V: Storable> FusedIterator for Values<'_, K, V> {}
