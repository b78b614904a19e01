//! Expiry times: the clock, the per-slot expiry array and its arithmetic.
//!
//! Expiry is absolute wall-clock time (decisions 5), so it survives reboots and copies
//! of the file. Every map records a *ttl epoch* in its header (the wall-clock second it
//! was created); a slot's expiry is a u32 number of seconds after that epoch, 0 meaning
//! "permanent". That keeps the array at 4 bytes per slot and lasts 136 years; later
//! expiries saturate at `u32::MAX`. An entry is expired once `now >= expiry` (whole
//! seconds), so an entry given a TTL of t seconds lives between t-1 and t seconds and
//! [`remaining`] right after the write is t.
//!
//! The clock is `CLOCK_REALTIME_COARSE` (read through the vDSO: no system call, a few
//! nanoseconds), behind the [`Clock`] trait so that tests (or a Rust program that wants
//! simulated time) can drive expiry without sleeping: see
//! [`crate::map::Map::set_clock`] and [`ManualClock`].
//!
//! Only the write-lock holder stores expiries; optimistic readers load them with the
//! rest of the entry and the seqlock validates the combination (see map.rs).

use crate::backing::Mapping;
use crate::layout::Layout;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

/// A source of wall-clock time in whole seconds since the Unix epoch.
pub trait Clock: Send + Sync {
    /// Now, in seconds since 1970-01-01 UTC.
    fn now(&self) -> u64;
}

/// The system's coarse real-time clock (the default of every handle).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[inline]
    fn now(&self) -> u64 {
        wall_now()
    }
}

/// A clock that only moves when told to: for tests and simulations.
///
/// ```
/// use hashmap_shared::ttl::{Clock, ManualClock};
/// let c = ManualClock::new(1_000);
/// c.advance(5);
/// assert_eq!(c.now(), 1_005);
/// ```
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock that reads `t` until changed.
    pub fn new(t: u64) -> ManualClock {
        ManualClock(AtomicU64::new(t))
    }
    /// A clock that starts at the current wall-clock time.
    pub fn starting_now() -> ManualClock {
        ManualClock::new(wall_now())
    }
    /// Moves the clock forward by `secs`.
    pub fn advance(&self, secs: u64) {
        // Relaxed: a lone counter; the map reads it before taking its own locks.
        self.0.fetch_add(secs, Relaxed);
    }
    /// Sets the clock.
    pub fn set(&self, t: u64) {
        // Relaxed: as in advance.
        self.0.store(t, Relaxed);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        // Relaxed: as in advance.
        self.0.load(Relaxed)
    }
}

/// `CLOCK_REALTIME_COARSE` in whole seconds (0 if the clock cannot be read).
#[inline]
pub fn wall_now() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid out pointer; clock_gettime has no other preconditions.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec.max(0) as u64
}

/// A prefetch hint for the cache line holding `p` (never faults).
#[inline(always)]
pub(crate) fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is only a hint and never faults, whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Largest TTL argument honoured by put_ttl / add_ttl / update_ttl (api.md 6.5: larger
/// 32-bit values are clamped to it).
pub const MAX_TTL_ARG: u32 = 4_294_967_293;

/// Seconds since the map's epoch for a wall-clock time (0 before the epoch).
#[inline]
pub fn rel(now_abs: u64, epoch: u64) -> u64 {
    now_abs.saturating_sub(epoch)
}

/// The expiry to store for an entry written at `now` (relative) with a TTL of `ttl`
/// seconds: 0 (permanent) when `ttl` is 0, else `now + ttl` saturated to u32 (never 0).
#[inline]
pub fn expiry(now: u64, ttl: u32) -> u32 {
    if ttl == 0 {
        0
    } else {
        (now + ttl as u64).min(u32::MAX as u64) as u32
    }
}

/// Has an entry with expiry `e` expired at `now` (relative)?
#[inline(always)]
pub fn is_expired(e: u32, now: u64) -> bool {
    e != 0 && now >= e as u64
}

/// Whole seconds left: Some(0) for a permanent entry, None once expired.
#[inline]
pub fn remaining(e: u32, now: u64) -> Option<u32> {
    if e == 0 {
        Some(0)
    } else if now >= e as u64 {
        None
    } else {
        Some((e as u64 - now) as u32)
    }
}

/// The expiry array of a TTL map: one u32 per slot (up to the maximum capacity).
#[derive(Clone, Copy)]
pub struct Ttl<'a> {
    exp: &'a [AtomicU32],
}

impl<'a> Ttl<'a> {
    /// The array of a map with layout `l`; None when the map has no TTL.
    #[inline]
    pub fn new(m: &'a Mapping, l: &Layout) -> Option<Ttl<'a>> {
        if !l.has_ttl() {
            return None;
        }
        let n = l.max_cap as usize;
        debug_assert!(l.ttl_off % 4 == 0 && l.ttl_off + n * 4 <= m.len());
        // SAFETY: the validated layout puts max_cap u32s at ttl_off (page aligned) inside
        // the mapping, which outlives 'a; the memory is only accessed atomically.
        let exp = unsafe { std::slice::from_raw_parts(m.base().add(l.ttl_off) as *const AtomicU32, n) };
        Some(Ttl { exp })
    }

    /// Expiry of slot `i` (0 for an index out of range: treated as permanent).
    #[inline(always)]
    pub fn get(&self, i: usize) -> u32 {
        // Relaxed: stored by the write-lock holder; optimistic readers are validated by
        // the seqlock, locked readers ordered by the lock.
        self.exp.get(i).map_or(0, |a| a.load(Relaxed))
    }

    /// Asks the CPU to load the expiry of slot `i` (and its neighbours in the same
    /// cache line: a whole probe group) while the lookup loads the slots.
    #[inline(always)]
    pub fn prefetch(&self, i: usize) {
        prefetch(self.exp.as_ptr().wrapping_add(i.min(self.exp.len().saturating_sub(1))) as *const u8);
    }

    /// Sets the expiry of slot `i` (write-lock holder only).
    #[inline]
    pub fn set(&self, i: usize, e: u32) {
        if let Some(a) = self.exp.get(i) {
            // Relaxed: see get.
            a.store(e, Relaxed);
        }
    }

    /// An entry moved from slot `from` to the empty slot `to` (rehash).
    #[inline]
    pub fn moved(&self, from: usize, to: usize) {
        self.set(to, self.get(from));
    }

    /// The entries of slots `a` and `b` traded places (rehash).
    #[inline]
    pub fn swapped(&self, a: usize, b: usize) {
        let (ea, eb) = (self.get(a), self.get(b));
        self.set(a, eb);
        self.set(b, ea);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic() {
        assert_eq!(rel(100, 40), 60);
        assert_eq!(rel(10, 40), 0, "a clock behind the epoch reads as the epoch");
        assert_eq!(expiry(60, 0), 0);
        assert_eq!(expiry(60, 5), 65);
        assert_eq!(expiry(0, 1), 1, "never 0 (permanent) for a TTL");
        assert_eq!(expiry(u32::MAX as u64 - 3, 10), u32::MAX, "saturates");
        assert_eq!(expiry(1 << 40, 10), u32::MAX, "saturates far in the future");
        assert!(!is_expired(0, u64::MAX), "permanent never expires");
        assert!(!is_expired(65, 64));
        assert!(is_expired(65, 65), "expired at the expiry second");
        assert!(is_expired(65, 66));
        assert_eq!(remaining(0, 99), Some(0));
        assert_eq!(remaining(65, 60), Some(5));
        assert_eq!(remaining(65, 64), Some(1));
        assert_eq!(remaining(65, 65), None);
        // put with TTL t: t seconds remaining right away, expired t seconds later
        for t in [1u32, 2, 60, 3600] {
            let e = expiry(1000, t);
            assert_eq!(remaining(e, 1000), Some(t));
            assert!(!is_expired(e, 1000 + t as u64 - 1));
            assert!(is_expired(e, 1000 + t as u64));
        }
    }

    #[test]
    fn clocks() {
        let w = wall_now();
        assert!(w > 1_600_000_000, "wall clock in seconds since 1970: {w}");
        let s = SystemClock.now();
        assert!(s >= w && s <= w + 2);
        let m = ManualClock::new(10);
        m.advance(5);
        assert_eq!(m.now(), 15);
        m.set(3);
        assert_eq!(m.now(), 3);
        assert!(ManualClock::starting_now().now() >= w);
    }

    #[test]
    fn array_moves() {
        use crate::layout::Params;
        use crate::map::format::anon;
        use crate::variant::Variant;
        let params = Params { variant: Variant::II, max_entries: 100, max_size: 0, ttl: 5, lru_skip: 0, arena_cap: 0 };
        let o = anon(params);
        let t = Ttl::new(&o.map, &o.layout).unwrap();
        t.set(3, 30);
        t.set(4, 40);
        t.moved(3, 7);
        assert_eq!(t.get(7), 30);
        t.swapped(4, 7);
        assert_eq!((t.get(4), t.get(7)), (30, 40));
        assert_eq!(t.get(1 << 20), 0, "out of range reads as permanent");
        t.set(1 << 20, 5); // ignored
        let plain = anon(Params { ttl: 0, ..params });
        assert!(Ttl::new(&plain.map, &plain.layout).is_none());
        assert_eq!(plain.layout.ttl_off, 0);
    }
}
