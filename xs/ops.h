/* xs/ops.h -- every operation of a map class, one X-macro.
 *
 *   X(name, fn, min_items, max_items, flags, aux, usage)
 *
 * name      : method name (and keyword shm_<prefix>_<name> when HM_F_KW)
 * fn        : the C function op_<fn> in xs/ops_impl.h that implements it; several
 *             operations may share one function, told apart by `aux`
 * min/max   : number of arguments including the invocant (max -1 = any number);
 *             for keywords min == max == the keyword's arity
 * flags     : HM_F_* below
 * aux       : constant handed to the function in OpCtx.aux (HM_ST_* for accessors,
 *             HM_C_* for counters, HM_KEYS/... for lists, 0 otherwise)
 * usage     : parameter list of the "Usage: Class::name(...)" message
 *
 * From this table xs/glue.h generates, for every variant class: one XSUB per row
 * (one C function per row, shared by the ten classes; the variant id lives in
 * CvXSUBANY), and for HM_F_KW rows a keyword, a custom op (XOP + pp function) and a
 * hooks struct for XS::Parse::Keyword.
 */
#ifndef HM_XS_OPS_H
#define HM_XS_OPS_H

#define HM_F_KW      0x01   /* has a keyword (and a custom op)                        */
#define HM_F_INTVAL  0x02   /* only int-value variants (I16 I32 II SI16 SI32 SI)       */
#define HM_F_LIST    0x04   /* returns a list; keyword runs in list context (api 2.2)  */
#define HM_F_TARG    0x08   /* returns one int/string scalar: the custom op gets a TARG */
#define HM_F_NOSELF  0x10   /* no invocant check in the wrapper (constructors, DESTROY,
                               class methods): the function checks what it needs      */
#define HM_F_CURSOR  0x20   /* a method of the cursor class Class::Cursor, named after
                               the row name without its "cursor_" prefix (the keyword
                               keeps the full name: shm_v_cursor_next); the invocant is
                               a cursor, checked by the function (implies NOSELF)     */

/* counters: which engine call */
#define HM_C_INCR    1
#define HM_C_DECR    2
#define HM_C_INCR_BY 3
#define HM_C_MAX     4
#define HM_C_MIN     5

/* TTL writes: which engine call (op_put_ttl) */
#define HM_T_PUT     1
#define HM_T_ADD     2
#define HM_T_UPDATE  3

/* single-key boolean operations without a value (op_key_bool) */
#define HM_B_TOUCH   1
#define HM_B_PERSIST 2

#define HM_KWT  (HM_F_KW|HM_F_TARG)
#define HM_KWL  (HM_F_KW|HM_F_LIST)

#define HM_OPS(X) \
    /* -- single-key CRUD (api 6.1) ------------------------------------------------ */ \
    X(put,             put,        3, 3, HM_F_KW,                 0, "self, key, value")                \
    X(get,             get,        2, 2, HM_KWT,                  0, "self, key")                       \
    X(remove,          remove,     2, 2, HM_F_KW,                 0, "self, key")                       \
    X(exists,          exists,     2, 2, HM_F_KW,                 0, "self, key")                       \
    X(add,             add,        3, 3, HM_F_KW,                 0, "self, key, value")                \
    X(update,          update,     3, 3, HM_F_KW,                 0, "self, key, value")                \
    X(swap,            swap,       3, 3, HM_KWT,                  0, "self, key, value")                \
    X(take,            take,       2, 2, HM_KWT,                  0, "self, key")                       \
    X(get_or_set,      get_or_set, 3, 3, HM_KWT,                  0, "self, key, default_value")        \
    /* -- compare-and-swap (api 6.2) ---------------------------------------------- */ \
    X(cas,             cas,        4, 4, HM_F_KW,                 0, "self, key, expected, desired")    \
    X(cas_take,        cas_take,   3, 3, HM_KWT,                  0, "self, key, expected")             \
    /* -- counters, int-value variants only (api 6.3) ------------------------------ */ \
    X(incr,            counter,    2, 2, HM_KWT|HM_F_INTVAL, HM_C_INCR,    "self, key")                 \
    X(decr,            counter,    2, 2, HM_KWT|HM_F_INTVAL, HM_C_DECR,    "self, key")                 \
    X(incr_by,         counter,    3, 3, HM_KWT|HM_F_INTVAL, HM_C_INCR_BY, "self, key, delta")          \
    X(max,             counter,    3, 3, HM_KWT|HM_F_INTVAL, HM_C_MAX,     "self, key, value")          \
    X(min,             counter,    3, 3, HM_KWT|HM_F_INTVAL, HM_C_MIN,     "self, key, value")          \
    /* -- TTL (api 6.5) ----------------------------------------------------------- */ \
    X(put_ttl,         put_ttl,    4, 4, HM_F_KW,      HM_T_PUT,    "self, key, value, ttl_sec")        \
    X(add_ttl,         put_ttl,    4, 4, HM_F_KW,      HM_T_ADD,    "self, key, value, ttl_sec")        \
    X(update_ttl,      put_ttl,    4, 4, HM_F_KW,      HM_T_UPDATE, "self, key, value, ttl_sec")        \
    X(ttl_remaining,   ttl_remaining, 2, 2, HM_KWT,               0, "self, key")                       \
    X(touch,           key_bool,   2, 2, HM_F_KW,      HM_B_TOUCH,   "self, key")                       \
    X(persist,         key_bool,   2, 2, HM_F_KW,      HM_B_PERSIST, "self, key")                       \
    X(set_ttl,         set_ttl,    3, 3, HM_F_KW,                 0, "self, key, ttl_sec")              \
    X(flush_expired,   flush_expired, 1, 1, HM_KWT,               0, "self")                            \
    X(flush_expired_partial, flush_expired_partial, 2, 2, HM_KWL, 0, "self, limit")                     \
    /* -- bulk removal (api 6.6) ---------------------------------------------------- */ \
    X(pop,             pop,        1, 1, HM_KWL,                  0, "self")                            \
    X(shift,           pop,        1, 1, HM_KWL,                  1, "self")                            \
    X(drain,           drain,      2, 2, HM_KWL,                  0, "self, limit")                     \
    /* -- whole map (api 6.6, 6.7) ------------------------------------------------- */ \
    X(clear,           clear,      1, 1, HM_F_KW,                 0, "self")                            \
    X(keys,            list,       1, 1, HM_F_KW|HM_F_LIST, HM_KEYS,   "self")                          \
    X(values,          list,       1, 1, HM_F_KW|HM_F_LIST, HM_VALUES, "self")                          \
    X(items,           list,       1, 1, HM_F_KW|HM_F_LIST, HM_ITEMS,  "self")                          \
    X(each,            each,       1, 1, HM_F_KW|HM_F_LIST,       0, "self")                            \
    X(iter_reset,      iter_reset, 1, 1, HM_F_KW,                 0, "self")                            \
    X(to_hash,         to_hash,    1, 1, HM_F_KW,                 0, "self")                            \
    /* -- cursors (api 6.7): Class->cursor, then methods of Class::Cursor ----------- */ \
    X(cursor,          cursor,     1, 1, HM_F_KW,                 0, "self")                            \
    X(cursor_next,     cursor_next,  1, 1, HM_KWL|HM_F_NOSELF|HM_F_CURSOR,  0, "self")                  \
    X(cursor_reset,    cursor_reset, 1, 1, HM_F_KW|HM_F_NOSELF|HM_F_CURSOR, 0, "self")                  \
    X(cursor_seek,     cursor_seek,  2, 2, HM_F_KW|HM_F_NOSELF|HM_F_CURSOR, 0, "self, key")             \
    X(cursor_DESTROY,  cursor_DESTROY, 1, 1, HM_F_NOSELF|HM_F_CURSOR,       0, "self")                  \
    X(cursor_CLONE_SKIP, CLONE_SKIP, 0, -1, HM_F_NOSELF|HM_F_CURSOR,        0, "...")                   \
    /* -- accessors and diagnostics (api 6.8) -------------------------------------- */ \
    X(size,            stat,       1, 1, HM_KWT, HM_ST_SIZE,        "self")                             \
    X(max_entries,     stat,       1, 1, HM_KWT, HM_ST_MAX_ENTRIES, "self")                             \
    X(max_size,        stat,       1, 1, HM_KWT, HM_ST_MAX_SIZE,    "self")                             \
    X(ttl,             stat,       1, 1, HM_KWT, HM_ST_TTL,         "self")                             \
    X(capacity,        stat,       1, 1, HM_KWT, HM_ST_CAPACITY,    "self")                             \
    X(tombstones,      stat,       1, 1, HM_KWT, HM_ST_TOMBSTONES,  "self")                             \
    X(mmap_size,       stat,       1, 1, HM_KWT, HM_ST_MMAP_SIZE,   "self")                             \
    X(arena_used,      stat,       1, 1, HM_KWT, HM_ST_ARENA_USED,  "self")                             \
    X(arena_cap,       stat,       1, 1, HM_KWT, HM_ST_ARENA_CAP,   "self")                             \
    X(reserve,         reserve,    2, 2, HM_F_KW,                 0, "self, target")                    \
    X(stat_evictions,  stat,       1, 1, HM_KWT, HM_ST_EVICTIONS,   "self")                             \
    X(stat_expired,    stat,       1, 1, HM_KWT, HM_ST_EXPIRED,     "self")                             \
    X(stat_recoveries, stat,       1, 1, HM_KWT, HM_ST_RECOVERIES,  "self")                             \
    /* -- method-only (api 2.3) --------------------------------------------------- */ \
    X(set_multi,       set_multi,    1, -1, 0,                    0, "self, key, value, ...")           \
    X(get_multi,       get_multi,    1, -1, HM_F_LIST,            0, "self, key, ...")                  \
    X(get_with_ttl,    get_with_ttl, 2, 2, HM_F_LIST,             0, "self, key")                       \
    X(remove_multi,    remove_multi, 1, -1, 0,                    0, "self, key, ...")                  \
    X(stats,           stats,      1, 1, 0,                       0, "self")                            \
    X(verify,          verify,     1, 1, HM_F_LIST,               0, "self")                            \
    X(frozen,          stat,       1, 1, 0,        HM_ST_FROZEN,      "self")                             \
    X(readonly,        stat,       1, 1, 0,        HM_ST_READONLY,    "self")                             \
    X(freeze,          freeze,     1, 1, 0,                       0, "self")                            \
    X(_hold_write_lock, hold_write_lock, 4, 4, 0,                 0, "self, key, signal_fd, wait_fd")   \
    X(path,            path,       1, 1, 0,                       0, "self")                            \
    X(memfd,           memfd,      1, 1, 0,                       0, "self")                            \
    X(sync,            sync,       1, 1, 0,                       0, "self")                            \
    X(unlink,          unlink,     1, 2, HM_F_NOSELF,             0, "self_or_class, path= undef")      \
    X(new,             new,        3, 8, HM_F_NOSELF,             0,                                    \
      "class, path_sv, max_entries, lru_max= 0, ttl_default= 0, lru_skip= 0, arena_cap= 0, file_mode= 0600") \
    X(new_memfd,       new_memfd,  3, 7, HM_F_NOSELF,             0,                                    \
      "class, name, max_entries, lru_max= 0, ttl_default= 0, lru_skip= 0, arena_cap= 0")                \
    X(new_from_fd,     new_from_fd, 2, 2, HM_F_NOSELF,            0, "class, fd")                       \
    X(new_sharded,     new_sharded, 4, 9, HM_F_NOSELF,            0,                                    \
      "class, path_prefix, num_shards, max_entries, lru_max= 0, ttl_default= 0, lru_skip= 0, arena_cap= 0, file_mode= 0600") \
    X(new_readonly,    new_readonly, 2, 2, HM_F_NOSELF,           0, "class, path")                     \
    X(DESTROY,         DESTROY,    1, 1, HM_F_NOSELF,             0, "self")                            \
    X(CLONE_SKIP,      CLONE_SKIP, 0, -1, HM_F_NOSELF,            0, "...")

#endif
