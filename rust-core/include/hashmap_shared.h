/* Hand-written contract for the first build; ffi.rs + cbindgen regenerate this file. */
#ifndef HASHMAP_SHARED_H
#define HASHMAP_SHARED_H

#include <stdint.h>
#include <stddef.h>

#define HM_ERR -1
#define HM_FULL -2

#define HM_BACK_FILE 0
#define HM_BACK_ANON 1
#define HM_BACK_MEMFD 2
#define HM_BACK_FD 3

#define HM_KEYS 1
#define HM_VALUES 2
#define HM_ITEMS 3

#define HM_ST_SIZE 0
#define HM_ST_CAPACITY 1
#define HM_ST_MAX_ENTRIES 2
#define HM_ST_TOMBSTONES 3
#define HM_ST_MMAP_SIZE 4
#define HM_ST_ARENA_USED 5
#define HM_ST_ARENA_CAP 6
#define HM_ST_EVICTIONS 7
#define HM_ST_EXPIRED 8
#define HM_ST_RECOVERIES 9
#define HM_ST_MAX_SIZE 10
#define HM_ST_TTL 11
#define HM_ST_FROZEN 12
#define HM_ST_READONLY 13

typedef struct HmMap HmMap;

typedef struct HmIn { int64_t ival; const uint8_t *ptr; size_t len; uint8_t utf8; } HmIn;
typedef struct HmOut { int64_t ival; const uint8_t *ptr; size_t len; uint8_t utf8; } HmOut;
typedef struct HmItem { HmOut key; HmOut val; uint8_t found; } HmItem;
typedef struct HmList { const HmItem *items; size_t len; } HmList;
typedef struct HmStats {
  uint64_t size, capacity, max_entries, tombstones, mmap_size, arena_used, arena_cap,
           evictions, expired, recoveries, max_size, ttl, frozen, readonly;
} HmStats;
typedef struct HmOpen {
  uint32_t variant;
  uint32_t backing;
  const char *path;
  int32_t fd;
  uint64_t max_entries, max_size, ttl, lru_skip, arena_cap;
  uint32_t file_mode;
} HmOpen;

HmMap *hm_open(const HmOpen *args);
void hm_close(HmMap *m);
const char *hm_last_error(void);
uint32_t hm_variant(const HmMap *m);
const char *hm_path(const HmMap *m);
int32_t hm_memfd(const HmMap *m);

int32_t hm_get(HmMap *m, const HmIn *key, HmOut *val);
int32_t hm_exists(HmMap *m, const HmIn *key);
int32_t hm_put(HmMap *m, const HmIn *key, const HmIn *val);
int32_t hm_add(HmMap *m, const HmIn *key, const HmIn *val);
int32_t hm_update(HmMap *m, const HmIn *key, const HmIn *val);
int32_t hm_swap(HmMap *m, const HmIn *key, const HmIn *val, HmOut *old);
int32_t hm_take(HmMap *m, const HmIn *key, HmOut *val);
int32_t hm_remove(HmMap *m, const HmIn *key);
int32_t hm_get_or_set(HmMap *m, const HmIn *key, const HmIn *dflt, HmOut *val);
int32_t hm_cas(HmMap *m, const HmIn *key, const HmIn *expected, const HmIn *desired);
int32_t hm_cas_take(HmMap *m, const HmIn *key, const HmIn *expected, HmOut *val);
int32_t hm_incr_by(HmMap *m, const HmIn *key, int64_t delta, int64_t *result);
int32_t hm_max(HmMap *m, const HmIn *key, int64_t v, int64_t *result);
int32_t hm_min(HmMap *m, const HmIn *key, int64_t v, int64_t *result);
int64_t hm_set_multi(HmMap *m, const HmIn *kv, size_t npairs);
int32_t hm_get_multi(HmMap *m, const HmIn *keys, size_t n, HmList *out);
int64_t hm_remove_multi(HmMap *m, const HmIn *keys, size_t n);
int32_t hm_clear(HmMap *m);
int32_t hm_reserve(HmMap *m, uint64_t n);
int32_t hm_sync(HmMap *m);
int32_t hm_unlink(HmMap *m);
int32_t hm_each(HmMap *m, HmOut *key, HmOut *val);
void hm_iter_reset(HmMap *m);
int32_t hm_list(HmMap *m, uint32_t what, HmList *out);
void hm_stats(HmMap *m, HmStats *out);
uint64_t hm_stat(HmMap *m, uint32_t which);

#endif
