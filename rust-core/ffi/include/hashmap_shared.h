/* C ABI of the Data::HashMap::Shared engine (rust-core).
 * Generated from rust-core/ffi/src/lib.rs (cbindgen, plus the generated per-key entry
 * points): do not edit by hand; regenerate with
 *   HM_BLESS=1 cargo test -p hashmap-shared-ffi --release --test header_fresh
 *
 * Conventions: every function catches panics; failures return HM_ERR (or NULL) with a
 * message in hm_last_error() (thread-local). Non-negative returns are results (0 = false /
 * not found, 1 = true / found). String results (HmOut.ptr, HmList items) point into
 * buffers owned by the handle, valid until the next call on that handle. */

#ifndef HASHMAP_SHARED_H
#define HASHMAP_SHARED_H

#include <stdint.h>
#include <stddef.h>

// Error: the message is in hm_last_error().
#define HM_ERR -1

// A counter could not insert a new key (table or arena full).
#define HM_FULL -2

// Backing: file at HmOpen.path (create or attach).
#define HM_BACK_FILE 0

// Backing: anonymous shared memory (inherited by forked children).
#define HM_BACK_ANON 1

// Backing: new memfd named HmOpen.path (NULL = "hashmap").
#define HM_BACK_MEMFD 2

// Backing: duplicate of descriptor HmOpen.fd.
#define HM_BACK_FD 3

// hm_list: keys only.
#define HM_KEYS 1

// hm_list: values only.
#define HM_VALUES 2

// hm_list: keys and values.
#define HM_ITEMS 3

// hm_stat: HmStats.size
#define HM_ST_SIZE 0

// hm_stat: HmStats.capacity
#define HM_ST_CAPACITY 1

// hm_stat: HmStats.max_entries
#define HM_ST_MAX_ENTRIES 2

// hm_stat: HmStats.tombstones
#define HM_ST_TOMBSTONES 3

// hm_stat: HmStats.mmap_size
#define HM_ST_MMAP_SIZE 4

// hm_stat: HmStats.arena_used
#define HM_ST_ARENA_USED 5

// hm_stat: HmStats.arena_cap
#define HM_ST_ARENA_CAP 6

// hm_stat: HmStats.evictions
#define HM_ST_EVICTIONS 7

// hm_stat: HmStats.expired
#define HM_ST_EXPIRED 8

// hm_stat: HmStats.recoveries
#define HM_ST_RECOVERIES 9

// hm_stat: HmStats.max_size
#define HM_ST_MAX_SIZE 10

// hm_stat: HmStats.ttl
#define HM_ST_TTL 11

// hm_stat: HmStats.frozen
#define HM_ST_FROZEN 12

// hm_stat: HmStats.readonly
#define HM_ST_READONLY 13

// hm_last_error_kind: any other error.
#define HM_EK_OTHER 0

// hm_last_error_kind: a mutator on a frozen map or read-only handle (the glue croaks
// "Class: map is frozen (read-only)").
#define HM_EK_FROZEN 1

// A cursor (cursor.rs); it is used with the handle it was made for.
typedef struct HmCursor HmCursor;

// Opaque map handle: one map, a shard set (shard.rs), ...: an engine [`Handle`].
typedef struct HmMap HmMap;

// Arguments of hm_open.
typedef struct HmOpen {
  // 1..10 (api.md 1.1).
  uint32_t variant;
  // HM_BACK_*.
  uint32_t backing;
  // FILE: path (NUL-terminated); MEMFD: name or NULL.
  const char *path;
  // FD: descriptor to duplicate.
  int32_t fd;
  uint64_t max_entries;
  uint64_t max_size;
  uint64_t ttl;
  uint64_t lru_skip;
  uint64_t arena_cap;
  uint32_t file_mode;
} HmOpen;

// A key or value passed in: `ival` for integer kinds, `ptr`/`len`/`utf8` for strings
// (`ptr` may be NULL when `len` is 0).
typedef struct HmIn {
  int64_t ival;
  const uint8_t *ptr;
  size_t len;
  uint8_t utf8;
} HmIn;

// A key or value returned: `ival` for integer kinds, `ptr`/`len`/`utf8` for strings
// (pointing into the handle's buffers, valid until the next call on the handle).
typedef struct HmOut {
  int64_t ival;
  const uint8_t *ptr;
  size_t len;
  uint8_t utf8;
} HmOut;

// One entry of a list result; `found` is 0 for a missing key of hm_get_multi.
typedef struct HmItem {
  struct HmOut key;
  struct HmOut val;
  uint8_t found;
} HmItem;

// A list result, owned by the handle (valid until the next call on it).
typedef struct HmList {
  const struct HmItem *items;
  size_t len;
} HmList;

// Statistics (api.md 6.8).
typedef struct HmStats {
  uint64_t size;
  uint64_t capacity;
  uint64_t max_entries;
  uint64_t tombstones;
  uint64_t mmap_size;
  uint64_t arena_used;
  uint64_t arena_cap;
  uint64_t evictions;
  uint64_t expired;
  uint64_t recoveries;
  uint64_t max_size;
  uint64_t ttl;
  uint64_t frozen;
  uint64_t readonly;
} HmStats;

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

// Opens (creates or attaches) a map. NULL + hm_last_error() on failure.
//
// # Safety
// `args` must point to a valid HmOpen; `path`, when not NULL, to a NUL-terminated string.
struct HmMap *hm_open(const struct HmOpen *args);

// Opens (creating what is missing) the shard set `args.path` (the prefix: files
// PREFIX.0 ..) of `shards` shards (0 -> 1, rounded up to a power of two, <= 4096),
// each sized by `args`. NULL + hm_last_error() on failure.
//
// # Safety
// `args` must point to a valid HmOpen whose `path` is NULL or NUL-terminated.
struct HmMap *hm_open_sharded(const struct HmOpen *args, uint64_t shards);

// Opens the frozen map file `path` read-only (no locks, no writes; api.md 3.5).
// NULL + hm_last_error() on failure.
//
// # Safety
// `path` must be a NUL-terminated string.
struct HmMap *hm_open_readonly(uint32_t variant, const char *path);

// Closes a handle: releases its reader slot, unmaps, closes a kept descriptor.
//
// # Safety
// `m` must be NULL or a pointer from hm_open not closed before; it is invalid afterwards.
void hm_close(struct HmMap *m);

// The calling thread's last error message ("" if none).
const char *hm_last_error(void);

// What kind of error the calling thread's last error was (HM_EK_*).
uint32_t hm_last_error_kind(void);

// Variant id (1..10), 0 for NULL.
//
// # Safety
// `m` must be NULL or a live handle.
uint32_t hm_variant(const struct HmMap *m);

// Backing path (a shard set's prefix), NULL when none (anonymous, memfd, fd maps).
// Owned by the handle.
//
// # Safety
// `m` must be NULL or a live handle.
const char *hm_path(const struct HmMap *m);

// Descriptor kept by memfd / fd maps, -1 when none.
//
// # Safety
// `m` must be NULL or a live handle.
int32_t hm_memfd(const struct HmMap *m);

// hm_get that copies a string value straight to `dst` when it fits in `cap` bytes
// (whole words: up to 7 bytes past the value's length may be written within `cap`):
// then `val->ptr == dst`. Otherwise `val` is as for hm_get. Returns as hm_get.
//
// # Safety
// As hm_get; `dst` NULL or writable for `cap` bytes, not overlapping the map.
int32_t hm_get_to(struct HmMap *m,
                  const struct HmIn *key,
                  uint8_t *dst,
                  size_t cap,
                  struct HmOut *val);

// hm_get for an integer-key, integer-value variant (II, I16, I32), without HmIn/HmOut:
// 1 and `*val` set when found, 0 when not (the lookup keyword's fast path).
//
// # Safety
// `m` a live handle; `val` NULL or writable.
int32_t hm_get_int(struct HmMap *m, int64_t key, int64_t *val);

// hm_put for an integer-key, integer-value variant (II, I32, I16) without HmIn: 1
// stored, 0 not (full), HM_ERR (a string variant gets hm_put's error). The put
// keyword's fast path; LRU/TTL maps and shard sets are served too (general path).
//
// # Safety
// `m` a live handle.
int32_t hm_put_int(struct HmMap *m, int64_t key, int64_t val);

// hm_add of an integer key and value (see hm_put_int): 1 inserted, 0 not.
//
// # Safety
// `m` a live handle.
int32_t hm_add_int(struct HmMap *m, int64_t key, int64_t val);

// hm_update of an integer key and value (see hm_put_int): 1 updated, 0 absent.
//
// # Safety
// `m` a live handle.
int32_t hm_update_int(struct HmMap *m, int64_t key, int64_t val);

// hm_remove of an integer key, for every integer-key variant: 1 removed, 0 absent.
//
// # Safety
// `m` a live handle.
int32_t hm_remove_int(struct HmMap *m, int64_t key);

// hm_incr_by of an integer key (integer-value variants): 1 and `*result` set,
// HM_FULL when a new key does not fit, HM_ERR.
//
// # Safety
// `m` a live handle; `result` NULL or writable.
int32_t hm_incr_int(struct HmMap *m, int64_t key, int64_t delta, int64_t *result);

// Puts `npairs` pairs (`kv[2i]` = key, `kv[2i+1]` = value) under one write lock (per
// key on a shard set); returns the number stored.
//
// # Safety
// `m` a live handle; `kv` addresses 2 * npairs valid HmIns.
int64_t hm_set_multi(struct HmMap *m, const struct HmIn *kv, size_t npairs);

// Looks `n` keys up under one read lock (per key on a shard set); `*out` lists one
// item per key (key echoed, `found` 0 for missing keys).
//
// # Safety
// `m` a live handle; `keys` addresses n valid HmIns; `out` writable.
int32_t hm_get_multi(struct HmMap *m, const struct HmIn *keys, size_t n, struct HmList *out);

// Removes `n` keys under one write lock (per key on a shard set); returns how many
// were removed.
//
// # Safety
// `m` a live handle; `keys` addresses n valid HmIns.
int64_t hm_remove_multi(struct HmMap *m, const struct HmIn *keys, size_t n);

// Removes everything (table back to 16 slots, arena emptied, pages released). 0.
//
// # Safety
// `m` a live handle.
int32_t hm_clear(struct HmMap *m);

// Pre-grows so that `n` (truncated to 32 bits, api.md 5.1) entries fit: 1, or 0 when
// beyond the maximum capacity.
//
// # Safety
// `m` a live handle.
int32_t hm_reserve(struct HmMap *m, uint64_t n);

// msync(MS_SYNC) of the whole map: 0, or HM_ERR with the strerror text.
//
// # Safety
// `m` a live handle.
int32_t hm_sync(struct HmMap *m);

// Removes the backing file: 1 removed, 0 not (no path, already gone, no permission).
//
// # Safety
// `m` a live handle.
int32_t hm_unlink(struct HmMap *m);

// This handle's iterator: 1 and `*key`/`*val` set, or 0 at the end (which resets it).
//
// # Safety
// `m` a live handle; `key`, `val` NULL or writable.
int32_t hm_each(struct HmMap *m, struct HmOut *key, struct HmOut *val);

// Resets this handle's iterator (and runs a shrink deferred while it was active).
//
// # Safety
// `m` a live handle.
void hm_iter_reset(struct HmMap *m);

// Snapshot of every entry under one read lock per shard (HM_KEYS, HM_VALUES or
// HM_ITEMS).
//
// # Safety
// `m` a live handle; `out` writable.
int32_t hm_list(struct HmMap *m, uint32_t what, struct HmList *out);

// Walks the whole map (read lock; every shard of a set, messages prefixed "shard N: ")
// and lists every inconsistency found, one message per item key (a string); returns
// how many (0: the map is sound).
//
// # Safety
// `m` a live handle; `out` writable.
int32_t hm_verify(struct HmMap *m, struct HmList *out);

// Fills `*out` with the statistics: 0, or HM_ERR (a map in Redis that cannot be
// reached).
//
// # Safety
// `m` a live handle; `out` writable.
int32_t hm_stats(struct HmMap *m, struct HmStats *out);

// One statistic (HM_ST_*; 0 for an unknown one, values above 2^63-1 saturate), or
// HM_ERR (a map in Redis that cannot be reached).
//
// # Safety
// `m` a live handle.
int64_t hm_stat(struct HmMap *m, uint32_t which);

// Removes every expired entry; returns how many (0 on a map without TTL).
//
// # Safety
// `m` a live handle.
int64_t hm_flush_expired(struct HmMap *m);

// Scans `limit` (truncated to 32 bits; at least 1) slots from the shared cursor,
// removing expired entries; returns how many, `*done` = 1 when the scan reached the
// end of the table (0 otherwise; a shard set: the same scan on every shard, done when
// every shard is). (0, done 1) on a map without TTL.
//
// # Safety
// `m` a live handle; `done` NULL or writable.
int64_t hm_flush_expired_partial(struct HmMap *m, uint64_t limit, int32_t *done);

// Removes the LRU tail (LRU maps) or the lowest-slot entry: 1 and `*key`, `*val` set;
// 0 when the map is empty. Expired entries met first are reclaimed and skipped.
//
// # Safety
// `m` a live handle; `key`, `val` NULL or writable.
int32_t hm_pop(struct HmMap *m, struct HmOut *key, struct HmOut *val);

// Removes the LRU head (LRU maps) or the highest-slot entry; as hm_pop.
//
// # Safety
// As hm_pop.
int32_t hm_shift(struct HmMap *m, struct HmOut *key, struct HmOut *val);

// Removes up to `n` entries (clamped to the size) in pop order; `*out` lists them
// (key and value per item). 1.
//
// # Safety
// `m` a live handle; `out` writable.
int32_t hm_drain(struct HmMap *m, uint64_t n, struct HmList *out);

// Seals the map (every shard) for good; this handle becomes read-only. 0, or HM_ERR
// ("cannot freeze a read-only handle", "msync: ...").
//
// # Safety
// `m` a live handle.
int32_t hm_freeze(struct HmMap *m);

// Convert a file written by the C implementation (formats v9 and v10) into ours, in
// place and atomically (api.md 6.10): 1 converted, 0 already ours, HM_ERR with the
// reason (the source is then unchanged).
//
// # Safety
// `path` a NUL-terminated string.
int32_t hm_upgrade_file(const char *path);

// A new cursor before the first entry (shard 0). Free it with hm_cursor_free.
struct HmCursor *hm_cursor_new(void);

// Frees a cursor; `m` is the handle it was made for, or NULL when that is closed
// already (then there is nothing to unregister from).
//
// # Safety
// `c` NULL or a cursor from hm_cursor_new not freed before; `m` NULL or a live handle.
void hm_cursor_free(struct HmMap *m, struct HmCursor *c);

// The cursor's next entry: 1 and `*key`, `*val` set, or 0 (exhausted; it stays so
// until reset or seek).
//
// # Safety
// `m` a live handle, `c` a live cursor made for it; `key`, `val` NULL or writable.
int32_t hm_cursor_next(struct HmMap *m, struct HmCursor *c, struct HmOut *key, struct HmOut *val);

// Back before the first entry of shard 0.
//
// # Safety
// As hm_cursor_next.
int32_t hm_cursor_reset(struct HmMap *m, struct HmCursor *c);

// Positions the cursor at live `key` (the next hm_cursor_next returns it): 1, or 0
// when missing or expired (api.md 6.7 says where the cursor is then).
//
// # Safety
// As hm_cursor_next; `key` a valid HmIn.
int32_t hm_cursor_seek(struct HmMap *m, struct HmCursor *c, const struct HmIn *key);

// A testing aid (t/sharded.t): takes the write lock of the map holding `key` (its
// shard), writes one byte to `signal_fd`, waits until one byte can be read from
// `wait_fd` (or it is closed), then releases the lock. 1, or HM_ERR.
//
// # Safety
// `m` a live handle; `key` a valid HmIn.
int32_t hm_test_hold_write(struct HmMap *m,
                           const struct HmIn *key,
                           int32_t signal_fd,
                           int32_t wait_fd);

// Per-key operations (generated from hashmap_shared::keyed_ops!). Each returns
// HM_ERR on error; `key` and the HmIn arguments must be valid, out parameters NULL
// or writable.

// The value of `key`, or none. Expired entries read as absent; on LRU maps a
// hit marks the entry accessed.
int32_t hm_get(struct HmMap *m, const struct HmIn *key, struct HmOut *out);

// Whether `key` is present (and not expired).
int32_t hm_exists(struct HmMap *m, const struct HmIn *key);

// Insert or overwrite: stored, or not (table or arena full).
int32_t hm_put(struct HmMap *m, const struct HmIn *key, const struct HmIn *val);

// Insert if absent: inserted, or not.
int32_t hm_add(struct HmMap *m, const struct HmIn *key, const struct HmIn *val);

// Overwrite if present: updated, or not.
int32_t hm_update(struct HmMap *m, const struct HmIn *key, const struct HmIn *val);

// Put returning the previous value: the old value when the key existed and
// was overwritten; none for a fresh insert or a failure.
int32_t hm_swap(struct HmMap *m, const struct HmIn *key, const struct HmIn *val, struct HmOut *out);

// Remove and return the value; none when absent.
int32_t hm_take(struct HmMap *m, const struct HmIn *key, struct HmOut *out);

// Remove: removed, or absent.
int32_t hm_remove(struct HmMap *m, const struct HmIn *key);

// Lookup-or-insert: the stored or inserted value; none when it could not be
// inserted.
int32_t hm_get_or_set(struct HmMap *m, const struct HmIn *key, const struct HmIn *dflt, struct HmOut *out);

// Compare-and-swap: swapped, or not.
int32_t hm_cas(struct HmMap *m, const struct HmIn *key, const struct HmIn *expected, const struct HmIn *desired);

// Compare-and-remove: the removed value, or none.
int32_t hm_cas_take(struct HmMap *m, const struct HmIn *key, const struct HmIn *expected, struct HmOut *out);

// Adds `delta` (narrowed, wrapping); a missing key is inserted with `delta`.
// The new value; a full map fails with ErrorKind::Full (C: HM_FULL).
int32_t hm_incr_by(struct HmMap *m, const struct HmIn *key, int64_t delta, int64_t *result);

// Stores max(current, v) and returns it; full maps as incr_by.
int32_t hm_max(struct HmMap *m, const struct HmIn *key, int64_t v, int64_t *result);

// Stores min(current, v) and returns it; full maps as incr_by.
int32_t hm_min(struct HmMap *m, const struct HmIn *key, int64_t v, int64_t *result);

// Put with a per-entry TTL (0 = permanent): stored, or not. Fails on a map
// without TTL ("operation requires a TTL-enabled map ...").
int32_t hm_put_ttl(struct HmMap *m, const struct HmIn *key, const struct HmIn *val, uint64_t ttl);

// Insert-if-absent with a TTL for the new entry; fails on a map without TTL.
int32_t hm_add_ttl(struct HmMap *m, const struct HmIn *key, const struct HmIn *val, uint64_t ttl);

// Overwrite-if-present that also sets the TTL; fails on a map without TTL.
int32_t hm_update_ttl(struct HmMap *m, const struct HmIn *key, const struct HmIn *val, uint64_t ttl);

// Seconds left (0 = permanent); none when the map has no TTL or the key is
// missing or expired.
int32_t hm_ttl_remaining(struct HmMap *m, const struct HmIn *key, uint64_t *secs);

// Value and seconds left in one consistent read (none for the seconds on a
// map without TTL); none when missing or expired. Marks the entry accessed
// (LRU) like get.
int32_t hm_get_with_ttl(struct HmMap *m, const struct HmIn *key, struct HmOut *out, int64_t *out_ttl);

// Promote (LRU) and refresh the expiry to the default unless permanent (TTL):
// done, or not (missing, expired, or a map with neither LRU nor TTL).
int32_t hm_touch(struct HmMap *m, const struct HmIn *key);

// Make permanent: done, or not (missing, expired, map without TTL).
int32_t hm_persist(struct HmMap *m, const struct HmIn *key);

// Expire `ttl` seconds from now (0 = permanent): done, or not (missing,
// expired, map without TTL).
int32_t hm_set_ttl(struct HmMap *m, const struct HmIn *key, uint64_t ttl);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* HASHMAP_SHARED_H */
