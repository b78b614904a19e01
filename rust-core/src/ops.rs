//! The operations on one key, declared once.
//!
//! [`keyed_ops!`](crate::keyed_ops) hands the whole list to a macro of the caller's
//! choice, one row per operation:
//!
//! ```text
//! /// doc
//! name => c_name(arg: Tag "role", ...) -> Ret;
//! ```
//!
//! `name` is the method (on every backend, and on [`crate::handle::Handle`]); `c_name`
//! the C ABI entry point of the ffi crate. Every operation takes the key first; the
//! row lists what follows it. Argument tags:
//!
//! | tag   | Rust        | C ABI             |                                              |
//! |-------|-------------|-------------------|----------------------------------------------|
//! | `In`  | `In<'_>`    | `const HmIn *`    | a value of the map's value kind; `role` names it in errors ("value too long") |
//! | `I64` | `i64`       | `int64_t`         | a counter operand                            |
//! | `Ttl` | `u32`       | `uint64_t`        | seconds; the C ABI truncates to 32 bits (api.md 5.1) |
//!
//! Result tags:
//!
//! | tag      | Rust                          | C ABI: return value, out parameters                  |
//! |----------|-------------------------------|------------------------------------------------------|
//! | `Bool`   | `bool`                        | 1 / 0                                                |
//! | `Val`    | `Option<Out<'_>>`             | 1 and `*out` set / 0                                 |
//! | `Count`  | `i64`                         | 1 and `*result` set / `HM_FULL` when a new key does not fit |
//! | `Secs`   | `Option<u32>`                 | 1 and `*secs` set / 0                                |
//! | `ValTtl` | `Option<(Out<'_>, Option<u32>)>` | 1 and `*out`, `*out_ttl` set (-1: no TTL) / 0 |
//!
//! Consumers: `handle.rs` generates [`Handle`](crate::handle::Handle)'s per-key methods,
//! which route the key to the backend that holds it (one map, a shard of a set, a remote
//! map), and the ffi crate generates its `hm_*` entry points and their C prototypes. A
//! new per-key operation is one row here plus its implementation in each backend.

/// Calls `$then! { rows }` with every per-key operation (see the [module docs](crate::ops)).
#[doc(hidden)]
#[macro_export]
macro_rules! keyed_ops {
    ($then:ident) => {
        $then! {
            /// The value of `key`, or none. Expired entries read as absent; on LRU maps a
            /// hit marks the entry accessed.
            get => hm_get() -> Val;
            /// Whether `key` is present (and not expired).
            exists => hm_exists() -> Bool;
            /// Insert or overwrite: stored, or not (table or arena full).
            put => hm_put(val: In "value") -> Bool;
            /// Insert if absent: inserted, or not.
            add => hm_add(val: In "value") -> Bool;
            /// Overwrite if present: updated, or not.
            update => hm_update(val: In "value") -> Bool;
            /// Put returning the previous value: the old value when the key existed and
            /// was overwritten; none for a fresh insert or a failure.
            swap => hm_swap(val: In "value") -> Val;
            /// Remove and return the value; none when absent.
            take => hm_take() -> Val;
            /// Remove: removed, or absent.
            remove => hm_remove() -> Bool;
            /// Lookup-or-insert: the stored or inserted value; none when it could not be
            /// inserted.
            get_or_set => hm_get_or_set(dflt: In "value") -> Val;
            /// Compare-and-swap: swapped, or not.
            cas => hm_cas(expected: In "expected value", desired: In "desired value") -> Bool;
            /// Compare-and-remove: the removed value, or none.
            cas_take => hm_cas_take(expected: In "expected value") -> Val;
            /// Adds `delta` (narrowed, wrapping); a missing key is inserted with `delta`.
            /// The new value; a full map fails with ErrorKind::Full (C: HM_FULL).
            incr_by => hm_incr_by(delta: I64) -> Count;
            /// Stores max(current, v) and returns it; full maps as incr_by.
            max => hm_max(v: I64) -> Count;
            /// Stores min(current, v) and returns it; full maps as incr_by.
            min => hm_min(v: I64) -> Count;
            /// Put with a per-entry TTL (0 = permanent): stored, or not. Fails on a map
            /// without TTL ("operation requires a TTL-enabled map ...").
            put_ttl => hm_put_ttl(val: In "value", ttl: Ttl) -> Bool;
            /// Insert-if-absent with a TTL for the new entry; fails on a map without TTL.
            add_ttl => hm_add_ttl(val: In "value", ttl: Ttl) -> Bool;
            /// Overwrite-if-present that also sets the TTL; fails on a map without TTL.
            update_ttl => hm_update_ttl(val: In "value", ttl: Ttl) -> Bool;
            /// Seconds left (0 = permanent); none when the map has no TTL or the key is
            /// missing or expired.
            ttl_remaining => hm_ttl_remaining() -> Secs;
            /// Value and seconds left in one consistent read (none for the seconds on a
            /// map without TTL); none when missing or expired. Marks the entry accessed
            /// (LRU) like get.
            get_with_ttl => hm_get_with_ttl() -> ValTtl;
            /// Promote (LRU) and refresh the expiry to the default unless permanent (TTL):
            /// done, or not (missing, expired, or a map with neither LRU nor TTL).
            touch => hm_touch() -> Bool;
            /// Make permanent: done, or not (missing, expired, map without TTL).
            persist => hm_persist() -> Bool;
            /// Expire `ttl` seconds from now (0 = permanent): done, or not (missing,
            /// expired, map without TTL).
            set_ttl => hm_set_ttl(ttl: Ttl) -> Bool;
        }
    };
}

/// The Rust type of an argument tag (see the [module docs](crate::ops)).
#[doc(hidden)]
#[macro_export]
macro_rules! keyed_arg_ty {
    (In) => { $crate::map::In<'_> };
    (I64) => { i64 };
    (Ttl) => { u32 };
}

/// The Rust result type of a result tag (see the [module docs](crate::ops)).
#[doc(hidden)]
#[macro_export]
macro_rules! keyed_ret_ty {
    (Bool) => { bool };
    (Val) => { Option<$crate::map::Out<'_>> };
    (Count) => { i64 };
    (Secs) => { Option<u32> };
    (ValTtl) => { Option<($crate::map::Out<'_>, Option<u32>)> };
}
