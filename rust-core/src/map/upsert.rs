//! Read-modify-write of one entry with one probe: [`Map::upsert_with`], the engine
//! primitive behind the typed API's `get_or_insert_with`, `update_with` and `alter`.
//!
//! Without it a caller reads the value (one lookup), computes, and writes (a second
//! lookup, and another process may have written in between: a lost update). Here the
//! caller's closure sees the current value and decides under the write lock, and the
//! entry is changed at the slot the one probe found.
//!
//! Locking and crash safety are those of the operations it combines: it takes the write
//! lock like `put` (refused on a frozen map), the closure runs before anything but the
//! reclaim of an expired entry is changed (a panic in it unwinds through the guard,
//! which releases the lock, and leaves a consistent map; an abort or a kill there is a
//! dead writer that changed nothing, which the next writer recovers from as always),
//! and the change itself is `replace_val`, `insert_new` or `remove_at`, each with its
//! crash order (repair.rs).

use super::{out, Exp, Map};
use crate::error::Result;
use crate::table::Probe;
use crate::value::{In, Out, Value};

/// What an [`Map::upsert_with`] closure decides for the entry it was shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Leave it as it is (absent stays absent).
    Keep,
    /// Store this value (insert when absent, overwrite when present).
    Set(Value),
    /// Remove the entry (nothing to do when absent).
    Remove,
}

/// What [`Map::upsert_with`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upserted {
    /// Nothing changed (the closure said Keep, or Remove on an absent key).
    Kept,
    /// A new entry was inserted.
    Inserted,
    /// The entry's value was overwritten.
    Updated,
    /// The entry was removed.
    Removed,
    /// The value could not be stored: no room for a new entry or for the new string
    /// (the old value, if any, is kept).
    Full,
}

impl Map {
    /// Looks `key` up once under the write lock, shows its live value (None when
    /// absent or expired: an expired entry is reclaimed first) to `f`, and applies the
    /// [`Change`] it returns at the slot that lookup found. Returns what happened and
    /// the value now stored (None when absent, removed, or not stored).
    ///
    /// A kept or overwritten entry counts as written, as with `get_or_set` and `put`:
    /// it is promoted (LRU) and a non-permanent expiry is reset to the default (TTL).
    /// `f` runs under the map's write lock: it must be short, and must not use this
    /// map through another handle (that would wait for the lock this call holds).
    pub fn upsert_with(&mut self, key: In<'_>, f: impl FnOnce(Option<Out<'_>>) -> Change) -> Result<(Upserted, Option<Value>)> {
        self.sh.writable()?;
        let (k, h) = self.sh.key(key)?;
        let (sh, st) = (&self.sh, &mut self.st);
        let now = sh.now();
        let _g = sh.write_mut()?;
        let t = sh.table()?;
        let probe = sh.probe_live(&t, h, &k, now);
        let (change, current) = match probe {
            Probe::Found(i) => {
                let g = sh.read_val(&t, i, &mut st.vbuf);
                let cur = out(g, &st.vbuf);
                // The current value is copied out only when it is kept (the closure
                // consumed the borrowed one otherwise).
                let change = f(Some(cur));
                let keep = matches!(change, Change::Keep).then(|| out(g, &st.vbuf).to_value());
                (change, keep)
            }
            Probe::Vacant(_) | Probe::NoRoom => (f(None), None),
        };
        Ok(match (probe, change) {
            (Probe::Found(i), Change::Keep) => {
                sh.hit(st, i, Exp::Default, now);
                (Upserted::Kept, current)
            }
            (Probe::Found(i), Change::Set(v)) => {
                let stored = sh.replace_val(&t, i, &sh.val(v.as_in(), "value")?, now);
                if !stored {
                    return Ok((Upserted::Full, None));
                }
                sh.hit(st, i, Exp::Default, now);
                (Upserted::Updated, Some(v))
            }
            (Probe::Found(i), Change::Remove) => {
                sh.remove_at(&t, i);
                sh.maybe_shrink(st);
                (Upserted::Removed, None)
            }
            (Probe::Vacant(s), Change::Set(v)) => {
                let vv = sh.val(v.as_in(), "value")?;
                if sh.insert_new(st, t, s, &k, h, &vv, Exp::Default, now).is_none() {
                    return Ok((Upserted::Full, None));
                }
                (Upserted::Inserted, Some(v))
            }
            (Probe::NoRoom, Change::Set(_)) => (Upserted::Full, None),
            (Probe::Vacant(_) | Probe::NoRoom, Change::Keep | Change::Remove) => (Upserted::Kept, None),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::options::Options;
    use crate::variant::Variant;

    fn ii(n: u64) -> Map {
        Map::open(&Options::new(n).with_variant(Variant::II)).unwrap()
    }

    #[test]
    fn each_change_on_present_and_absent_keys() {
        let mut m = ii(100);
        let k = In::Int(7);
        // Absent: Keep and Remove change nothing, Set inserts.
        assert_eq!(m.upsert_with(k, |c| { assert_eq!(c, None); Change::Keep }).unwrap(), (Upserted::Kept, None));
        assert_eq!(m.upsert_with(k, |_| Change::Remove).unwrap(), (Upserted::Kept, None));
        assert_eq!(m.len(), 0);
        assert_eq!(m.upsert_with(k, |_| Change::Set(Value::Int(1))).unwrap(), (Upserted::Inserted, Some(Value::Int(1))));
        // Present: the closure sees the value; Set overwrites, Keep returns it, Remove removes.
        let r = m.upsert_with(k, |c| {
            let Some(Out::Int(v)) = c else { panic!("{c:?}") };
            Change::Set(Value::Int(v + 41))
        });
        assert_eq!(r.unwrap(), (Upserted::Updated, Some(Value::Int(42))));
        assert_eq!(m.upsert_with(k, |_| Change::Keep).unwrap(), (Upserted::Kept, Some(Value::Int(42))));
        assert_eq!(m.get(k).unwrap(), Some(Out::Int(42)));
        assert_eq!(m.upsert_with(k, |_| Change::Remove).unwrap(), (Upserted::Removed, None));
        assert_eq!(m.get(k).unwrap(), None);
    }

    #[test]
    fn a_full_map_reports_full_and_keeps_old_values() {
        let mut m = ii(10);
        let max = m.stats().max_entries as i64;
        for i in 0..max {
            assert!(m.put(In::Int(i), In::Int(i)).unwrap());
        }
        assert_eq!(m.upsert_with(In::Int(1000), |_| Change::Set(Value::Int(1))).unwrap(), (Upserted::Full, None));
        assert_eq!(m.len() as i64, max);
        // A string value that does not fit in the arena: the old one stays.
        let mut s = Map::open(&Options::new(10).with_variant(Variant::IS).arena_cap(4096)).unwrap();
        assert!(s.put(In::Int(1), In::Str(b"a string of some length", false)).unwrap());
        let big = vec![b'x'; 8192];
        let r = s.upsert_with(In::Int(1), |_| Change::Set(Value::Str(big.clone(), false))).unwrap();
        assert_eq!(r, (Upserted::Full, None));
        assert_eq!(s.get(In::Int(1)).unwrap(), Some(Out::Str(b"a string of some length", false)));
    }

    #[test]
    fn refused_on_a_frozen_map_before_the_closure_runs() {
        let mut m = ii(10);
        m.freeze().unwrap();
        let e = m.upsert_with(In::Int(1), |_| panic!("must not run")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Frozen);
    }

    #[test]
    fn a_panicking_closure_leaves_the_map_usable() {
        let mut m = ii(10);
        m.put(In::Int(1), In::Int(1)).unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = m.upsert_with(In::Int(1), |_| panic!("closure panics"));
        }));
        assert!(r.is_err());
        // The write lock was released: writes go on, and the map is sound.
        assert!(m.put(In::Int(2), In::Int(2)).unwrap());
        assert_eq!(m.get(In::Int(1)).unwrap(), Some(Out::Int(1)));
        assert!(m.verify().is_empty(), "{:?}", m.verify());
    }
}
