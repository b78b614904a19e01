/* xs/ops_impl.h -- the operations, one C function each (see xs/ops.h for the table
 * and xs/glue.h for the calling convention). Instance operations are entered with
 * c->self / c->m already checked (HM_F_NOSELF rows check for themselves).
 */
#ifndef HM_XS_OPS_IMPL_H
#define HM_XS_OPS_IMPL_H

#include <unistd.h>
#include "xs/ctor_args.h"

/* Convert arguments 1..n of the call. kinds[i] is 'k' (key of the variant), 'v'
 * (value of the variant), 'i' (plain integer) or 'u' (unsigned integer, e.g. a TTL:
 * the bits land in ival). Then re-check the invocant. */
HM_INLINE void hm_args(pTHX_ OpCtx *c, HmIn *in, int n, const char *kinds) {
    SV *sv[4];
    HmConv cv;
    int i;
    cv.epoch = 0;
    for (i = 0; i < n; i++)              /* SV pointers first: conversions may move the stack */
        sv[i] = HM_ARG(c, i + 1);
    /* The common case first: every argument a plain string or integer of its kind (no
     * magic, no overloading, so no Perl code can run): taken as it is, in one pass. */
    for (i = 0; i < n; i++) {
        bool str = kinds[i] == 'k' ? c->v->kstr : kinds[i] == 'v' ? c->v->vstr : 0;
        if (str ? !SvPOK_nog(sv[i]) : !SvIOK_nog(sv[i]))
            break;
    }
    if (LIKELY(i == n)) {
        for (i = 0; i < n; i++) {
            bool str = kinds[i] == 'k' ? c->v->kstr : kinds[i] == 'v' ? c->v->vstr : 0;
            if (str) {
                in[i].ptr = (const uint8_t *)SvPVX(sv[i]);
                in[i].len = SvCUR(sv[i]);
                in[i].utf8 = SvUTF8(sv[i]) ? 1 : 0;
                in[i].ival = 0;
            }
            else {
                in[i].ival = kinds[i] == 'u' ? (int64_t)SvUVX(sv[i]) : (int64_t)SvIVX(sv[i]);
                in[i].ptr = NULL;
                in[i].len = 0;
                in[i].utf8 = 0;
            }
        }
        return;
    }
    for (i = 0; i < n; i++) {
        switch (kinds[i]) {
        case 'k': hm_in_key(aTHX_ c->v, &cv, sv[i], &in[i]); break;
        case 'v': hm_in_val(aTHX_ c->v, &cv, sv[i], &in[i]); break;
        case 'u': hm_in_uint(aTHX_ &cv, sv[i], &in[i]); break;
        default:  hm_in_int(aTHX_ &cv, sv[i], &in[i]); break;
        }
    }
    for (i = 0; i < n; i++)
        hm_in_fix(&cv, &in[i]);
    if (UNLIKELY(cv.epoch))             /* Perl code may have run: re-check the invocant */
        hm_recheck(aTHX_ c);
}

/* A C array of n HmIn in a mortal buffer (freed with the statement's temporaries). */
static HmIn *hm_in_buf(pTHX_ SSize_t n) {
    SV *buf = sv_2mortal(newSV((STRLEN)(n ? n : 1) * sizeof(HmIn)));
    return (HmIn *)SvPVX(buf);
}

/* -- CRUD ------------------------------------------------------------------------ */

/* put / add / update of a plain IV key and IV value into an integer -> integer variant
 * (no magic, so no Perl code can run): no HmIn, straight from the SVs to the engine's
 * integer entry point (the II write hot path). Returns -2 when the arguments are not
 * both plain IVs, for the general path. */
HM_INLINE int32_t hm_int_pair(pTHX_ OpCtx *c, int32_t (*f)(HmMap *, int64_t, int64_t)) {
    SV *k, *v;
    if (c->v->kstr || c->v->vstr)
        return -2;
    k = HM_ARG(c, 1);
    v = HM_ARG(c, 2);
    if (!(SvIOK_nog(k) && SvIOK_nog(v)))
        return -2;
    return f(c->m, (int64_t)SvIVX(k), (int64_t)SvIVX(v));
}

HM_INLINE SSize_t op_put(pTHX_ OpCtx *c) {
    HmIn in[2];
    int32_t rc = hm_int_pair(aTHX_ c, hm_put_int);
    if (LIKELY(rc != -2)) {
        HM_CHECK(rc);
        return hm_ret_bool(c, rc);
    }
    hm_args(aTHX_ c, in, 2, "kv");
    rc = hm_put(c->m, &in[0], &in[1]);
    HM_CHECK(rc);
    return hm_ret_bool(c, rc);
}

HM_INLINE SSize_t op_get(pTHX_ OpCtx *c) {
    HmIn in[1];
    HmOut out;
    int32_t rc;
    if (!c->v->kstr && !c->v->vstr) {
        /* integer -> integer with a plain IV key (no magic, so no Perl code can run):
         * no HmIn/HmOut, straight from the SV's IV to the TARG (the II lookup hot path) */
        SV *k = HM_ARG(c, 1);
        if (LIKELY(SvIOK_nog(k))) {
            int64_t iv;
            rc = hm_get_int(c->m, (int64_t)SvIVX(k), &iv);
            HM_CHECK(rc);
            if (!rc)
                return hm_ret_undef(c);
            return hm_ret_iv(aTHX_ c, (IV)iv);
        }
    }
    hm_args(aTHX_ c, in, 1, "k");
    if (c->v->vstr && c->targ) {
        /* string value into a TARG with a buffer of its own: the engine copies the
         * value straight into that buffer (one copy instead of two) */
        SV *t = c->targ;
        char *dst = NULL;
        STRLEN cap = 0;
        if (SvTYPE(t) >= SVt_PV && SvTYPE(t) <= SVt_PVMG && SvLEN(t) > 1
            && !SvTHINKFIRST(t) && !SvOOK(t) && !SvMAGICAL(t)    /* no ref, COW, RO */
            && !((const char *)in[0].ptr >= SvPVX(t)             /* the key is not read */
                 && (const char *)in[0].ptr < SvPVX(t) + SvLEN(t))) { /* from there */
            dst = SvPVX(t);
            cap = SvLEN(t) - 1;         /* room for the NUL */
        }
        rc = hm_get_to(c->m, &in[0], (uint8_t *)dst, cap, &out);
        HM_CHECK(rc);
        if (!rc)
            return hm_ret_undef(c);
        if (dst && (const char *)out.ptr == dst) {
            SvCUR_set(t, out.len);
            dst[out.len] = '\0';
            SvPOK_only(t);              /* also turns UTF8 off */
            if (out.utf8) SvUTF8_on(t);
            return hm_ret1(aTHX_ c, t);
        }
        return hm_ret_val(aTHX_ c, &out);
    }
    rc = hm_get(c->m, &in[0], &out);
    HM_CHECK(rc);
    if (!rc)
        return hm_ret_undef(c);
    return hm_ret_val(aTHX_ c, &out);
}

HM_INLINE SSize_t op_remove(pTHX_ OpCtx *c) {
    HmIn in[1];
    int32_t rc;
    if (!c->v->kstr && LIKELY(SvIOK_nog(HM_ARG(c, 1)))) {
        /* a plain IV key of an integer-key variant: no HmIn (as op_put) */
        rc = hm_remove_int(c->m, (int64_t)SvIVX(HM_ARG(c, 1)));
        HM_CHECK(rc);
        return hm_ret_bool(c, rc);
    }
    hm_args(aTHX_ c, in, 1, "k");
    rc = hm_remove(c->m, &in[0]);
    HM_CHECK(rc);
    return hm_ret_bool(c, rc);
}

HM_INLINE SSize_t op_exists(pTHX_ OpCtx *c) {
    HmIn in[1];
    int32_t rc;
    hm_args(aTHX_ c, in, 1, "k");
    rc = hm_exists(c->m, &in[0]);
    HM_CHECK(rc);
    return hm_ret_bool(c, rc);
}

HM_INLINE SSize_t op_add(pTHX_ OpCtx *c) {
    HmIn in[2];
    int32_t rc = hm_int_pair(aTHX_ c, hm_add_int);
    if (LIKELY(rc != -2)) {
        HM_CHECK(rc);
        return hm_ret_bool(c, rc);
    }
    hm_args(aTHX_ c, in, 2, "kv");
    rc = hm_add(c->m, &in[0], &in[1]);
    HM_CHECK(rc);
    return hm_ret_bool(c, rc);
}

HM_INLINE SSize_t op_update(pTHX_ OpCtx *c) {
    HmIn in[2];
    int32_t rc = hm_int_pair(aTHX_ c, hm_update_int);
    if (LIKELY(rc != -2)) {
        HM_CHECK(rc);
        return hm_ret_bool(c, rc);
    }
    hm_args(aTHX_ c, in, 2, "kv");
    rc = hm_update(c->m, &in[0], &in[1]);
    HM_CHECK(rc);
    return hm_ret_bool(c, rc);
}

HM_INLINE SSize_t op_swap(pTHX_ OpCtx *c) {
    HmIn in[2];
    HmOut out;
    int32_t rc;
    hm_args(aTHX_ c, in, 2, "kv");
    rc = hm_swap(c->m, &in[0], &in[1], &out);
    HM_CHECK(rc);
    if (rc != 1)
        return hm_ret_undef(c);
    return hm_ret_val(aTHX_ c, &out);
}

HM_INLINE SSize_t op_take(pTHX_ OpCtx *c) {
    HmIn in[1];
    HmOut out;
    int32_t rc;
    hm_args(aTHX_ c, in, 1, "k");
    rc = hm_take(c->m, &in[0], &out);
    HM_CHECK(rc);
    if (rc != 1)
        return hm_ret_undef(c);
    return hm_ret_val(aTHX_ c, &out);
}

HM_INLINE SSize_t op_get_or_set(pTHX_ OpCtx *c) {
    HmIn in[2];
    HmOut out;
    int32_t rc;
    hm_args(aTHX_ c, in, 2, "kv");
    rc = hm_get_or_set(c->m, &in[0], &in[1], &out);
    HM_CHECK(rc);
    if (rc != 1)
        return hm_ret_undef(c);
    return hm_ret_val(aTHX_ c, &out);
}

/* -- compare-and-swap ------------------------------------------------------------ */

HM_INLINE SSize_t op_cas(pTHX_ OpCtx *c) {
    HmIn in[3];
    int32_t rc;
    hm_args(aTHX_ c, in, 3, "kvv");
    rc = hm_cas(c->m, &in[0], &in[1], &in[2]);
    HM_CHECK(rc);
    return hm_ret_bool(c, rc);
}

HM_INLINE SSize_t op_cas_take(pTHX_ OpCtx *c) {
    HmIn in[2];
    HmOut out;
    int32_t rc;
    hm_args(aTHX_ c, in, 2, "kv");
    rc = hm_cas_take(c->m, &in[0], &in[1], &out);
    HM_CHECK(rc);
    if (rc != 1)
        return hm_ret_undef(c);
    return hm_ret_val(aTHX_ c, &out);
}

/* -- counters (int-value variants) ------------------------------------------------ */

HM_INLINE SSize_t op_counter(pTHX_ OpCtx *c) {
    HmIn in[2];
    int64_t res = 0;
    int32_t rc;
    const char *what;
    if (!c->v->kstr && c->aux <= HM_C_INCR_BY && LIKELY(SvIOK_nog(HM_ARG(c, 1)))
        && (c->aux != HM_C_INCR_BY || SvIOK_nog(HM_ARG(c, 2)))) {
        /* incr / decr / incr_by of plain IVs on an integer-key variant: no HmIn */
        int64_t d = c->aux == HM_C_INCR ? 1 : c->aux == HM_C_DECR ? -1 : (int64_t)SvIVX(HM_ARG(c, 2));
        rc = hm_incr_int(c->m, (int64_t)SvIVX(HM_ARG(c, 1)), d, &res);
        what = c->aux == HM_C_INCR ? "increment" : c->aux == HM_C_DECR ? "decrement" : "incr_by";
        if (UNLIKELY(rc == HM_FULL))
            croak("%s: %s failed", c->v->klass, what);
        HM_CHECK(rc);
        return hm_ret_iv(aTHX_ c, (IV)res);
    }
    if (c->aux == HM_C_INCR || c->aux == HM_C_DECR)
        hm_args(aTHX_ c, in, 1, "k");
    else
        hm_args(aTHX_ c, in, 2, "ki");
    switch (c->aux) {
    case HM_C_INCR:    what = "increment"; rc = hm_incr_by(c->m, &in[0], 1, &res);          break;
    case HM_C_DECR:    what = "decrement"; rc = hm_incr_by(c->m, &in[0], -1, &res);         break;
    case HM_C_INCR_BY: what = "incr_by";   rc = hm_incr_by(c->m, &in[0], in[1].ival, &res); break;
    case HM_C_MAX:     what = "max";       rc = hm_max(c->m, &in[0], in[1].ival, &res);     break;
    default:           what = "min";       rc = hm_min(c->m, &in[0], in[1].ival, &res);     break;
    }
    if (UNLIKELY(rc == HM_FULL))
        croak("%s: %s failed", c->v->klass, what);
    HM_CHECK(rc);
    return hm_ret_iv(aTHX_ c, (IV)res);
}

/* -- TTL (api 6.5) ------------------------------------------------------------------ */

/* a TTL / limit argument: read as unsigned (api 5.1); the engine truncates to 32 bits */
HM_INLINE uint64_t hm_arg_uv(pTHX_ HmConv *cv, SV *sv) {
    return (uint64_t)hm_conv_uv(aTHX_ cv, sv);
}

/* put_ttl / add_ttl / update_ttl (aux = HM_T_*) */
static SSize_t op_put_ttl(pTHX_ OpCtx *c) {
    HmIn in[3];
    int32_t rc;
    hm_args(aTHX_ c, in, 3, "kvu");
    switch (c->aux) {
    case HM_T_PUT: rc = hm_put_ttl(c->m, &in[0], &in[1], (uint64_t)in[2].ival);    break;
    case HM_T_ADD: rc = hm_add_ttl(c->m, &in[0], &in[1], (uint64_t)in[2].ival);    break;
    default:       rc = hm_update_ttl(c->m, &in[0], &in[1], (uint64_t)in[2].ival); break;
    }
    HM_CHECK(rc);
    return hm_ret_bool(c, rc);
}

static SSize_t op_ttl_remaining(pTHX_ OpCtx *c) {
    HmIn in[1];
    uint64_t secs = 0;
    int32_t rc;
    hm_args(aTHX_ c, in, 1, "k");
    rc = hm_ttl_remaining(c->m, &in[0], &secs);
    HM_CHECK(rc);
    if (!rc)
        return hm_ret_undef(c);
    return hm_ret_uv(aTHX_ c, (UV)secs);
}

/* (value, ttl) or (); ttl undef on a map without TTL. Method only. */
static SSize_t op_get_with_ttl(pTHX_ OpCtx *c) {
    HmIn in[1];
    HmOut out;
    int64_t ttl = -1;
    SV **r;
    int32_t rc;
    hm_args(aTHX_ c, in, 1, "k");
    rc = hm_get_with_ttl(c->m, &in[0], &out, &ttl);
    HM_CHECK(rc);
    if (!rc || c->gimme == G_VOID)
        return 0;
    if (c->gimme != G_LIST) {           /* scalar context: the last element, the ttl */
        r = hm_res(aTHX_ c, 1);
        r[0] = ttl < 0 ? &PL_sv_undef : sv_2mortal(newSVuv((UV)ttl));
        return 1;
    }
    r = hm_res(aTHX_ c, 2);
    r[0] = hm_new_out(aTHX_ c->v->vstr, &out);
    r[1] = ttl < 0 ? &PL_sv_undef : sv_2mortal(newSVuv((UV)ttl));
    return 2;
}

/* touch / persist (aux = HM_B_*) */
static SSize_t op_key_bool(pTHX_ OpCtx *c) {
    HmIn in[1];
    int32_t rc;
    hm_args(aTHX_ c, in, 1, "k");
    rc = c->aux == HM_B_TOUCH ? hm_touch(c->m, &in[0]) : hm_persist(c->m, &in[0]);
    HM_CHECK(rc);
    return hm_ret_bool(c, rc);
}

static SSize_t op_set_ttl(pTHX_ OpCtx *c) {
    HmIn in[2];
    int32_t rc;
    hm_args(aTHX_ c, in, 2, "ku");
    rc = hm_set_ttl(c->m, &in[0], (uint64_t)in[1].ival);
    HM_CHECK(rc);
    return hm_ret_bool(c, rc);
}

static SSize_t op_flush_expired(pTHX_ OpCtx *c) {
    int64_t n = hm_flush_expired(c->m);
    HM_CHECK(n);
    return hm_ret_uv(aTHX_ c, (UV)n);
}

/* (removed, done); scalar context: done */
static SSize_t op_flush_expired_partial(pTHX_ OpCtx *c) {
    HmConv cv;
    uint64_t limit;
    int32_t done = 0;
    int64_t n;
    SV **r;
    cv.epoch = 0;
    limit = hm_arg_uv(aTHX_ &cv, HM_ARG(c, 1));
    if (cv.epoch)
        hm_recheck(aTHX_ c);
    n = hm_flush_expired_partial(c->m, limit, &done);
    HM_CHECK(n);
    if (c->gimme == G_VOID)
        return 0;
    if (c->gimme != G_LIST) {
        r = hm_res(aTHX_ c, 1);
        r[0] = sv_2mortal(newSViv(done ? 1 : 0));
        return 1;
    }
    r = hm_res(aTHX_ c, 2);
    r[0] = sv_2mortal(newSVuv((UV)n));
    r[1] = sv_2mortal(newSViv(done ? 1 : 0));
    return 2;
}

/* The return of pop, shift, each and cursor_next: (key, value) when rc says an entry
 * was found, else (); scalar context: the value (the last element, api 5.3). */
static SSize_t hm_ret_pair(pTHX_ OpCtx *c, int32_t rc, const HmOut *k, const HmOut *val) {
    SV **r;
    if (!rc || c->gimme == G_VOID)
        return 0;
    if (c->gimme != G_LIST) {
        r = hm_res(aTHX_ c, 1);
        r[0] = hm_new_out(aTHX_ c->v->vstr, val);
        return 1;
    }
    r = hm_res(aTHX_ c, 2);
    r[0] = hm_new_out(aTHX_ c->v->kstr, k);
    r[1] = hm_new_out(aTHX_ c->v->vstr, val);
    return 2;
}

/* -- pop / shift / drain (api 6.6) ------------------------------------------------------ */

/* pop (aux 0) / shift (aux 1): (key, value) or (); scalar context: the value */
static SSize_t op_pop(pTHX_ OpCtx *c) {
    HmOut k, val;
    int32_t rc = c->aux ? hm_shift(c->m, &k, &val) : hm_pop(c->m, &k, &val);
    HM_CHECK(rc);
    return hm_ret_pair(aTHX_ c, rc, &k, &val);
}

/* (k1, v1, k2, v2, ...) in pop order; scalar context: the last value */
static SSize_t op_drain(pTHX_ OpCtx *c) {
    HmConv cv;
    uint64_t n;
    HmList l;
    SV **r;
    size_t i;
    int32_t rc;
    cv.epoch = 0;
    n = hm_arg_uv(aTHX_ &cv, HM_ARG(c, 1));   /* not truncated: clamped to the size */
    if (cv.epoch)
        hm_recheck(aTHX_ c);
    rc = hm_drain(c->m, n, &l);
    HM_CHECK(rc);
    if (c->gimme == G_VOID || l.len == 0)
        return 0;
    if (c->gimme != G_LIST) {
        r = hm_res(aTHX_ c, 1);
        r[0] = hm_new_out(aTHX_ c->v->vstr, &l.items[l.len - 1].val);
        return 1;
    }
    r = hm_res(aTHX_ c, (SSize_t)l.len * 2);
    for (i = 0; i < l.len; i++) {
        *r++ = hm_new_out(aTHX_ c->v->kstr, &l.items[i].key);
        *r++ = hm_new_out(aTHX_ c->v->vstr, &l.items[i].val);
    }
    return (SSize_t)l.len * 2;
}

/* -- whole map --------------------------------------------------------------------- */

static SSize_t op_clear(pTHX_ OpCtx *c) {
    int32_t rc = hm_clear(c->m);
    HM_CHECK(rc);
    return 0;
}

/* keys / values / items (aux = HM_KEYS / HM_VALUES / HM_ITEMS) */
static SSize_t op_list(pTHX_ OpCtx *c) {
    HmList l;
    SV **r;
    size_t i;
    SSize_t n;
    const HmVariant *v = c->v;
    int32_t rc;
    if (c->gimme == G_VOID)
        return 0;
    rc = hm_list(c->m, (uint32_t)c->aux, &l);
    HM_CHECK(rc);
    if (l.len == 0)
        return 0;
    if (c->gimme != G_LIST) {           /* scalar context: the last element (api 5.3) */
        const HmItem *it = &l.items[l.len - 1];
        r = hm_res(aTHX_ c, 1);
        r[0] = c->aux == HM_KEYS ? hm_new_out(aTHX_ v->kstr, &it->key)
                                 : hm_new_out(aTHX_ v->vstr, &it->val);
        return 1;
    }
    n = (SSize_t)l.len * (c->aux == HM_ITEMS ? 2 : 1);
    r = hm_res(aTHX_ c, n);
    for (i = 0; i < l.len; i++) {
        const HmItem *it = &l.items[i];
        switch (c->aux) {
        case HM_KEYS:   *r++ = hm_new_out(aTHX_ v->kstr, &it->key); break;
        case HM_VALUES: *r++ = hm_new_out(aTHX_ v->vstr, &it->val); break;
        default:
            *r++ = hm_new_out(aTHX_ v->kstr, &it->key);
            *r++ = hm_new_out(aTHX_ v->vstr, &it->val);
            break;
        }
    }
    return n;
}

/* verify: one string per inconsistency found by a walk of the whole map (none: sound) */
static SSize_t op_verify(pTHX_ OpCtx *c) {
    HmList l;
    SV **r;
    size_t i;
    int32_t rc = hm_verify(c->m, &l);
    HM_CHECK(rc);
    if (c->gimme != G_LIST) {           /* scalar context: the number of problems */
        r = hm_res(aTHX_ c, 1);
        r[0] = newSViv((IV)l.len);
        return 1;
    }
    r = hm_res(aTHX_ c, (SSize_t)l.len);
    for (i = 0; i < l.len; i++)
        r[i] = newSVpvn((const char *)l.items[i].key.ptr, l.items[i].key.len);
    return (SSize_t)l.len;
}

static SSize_t op_each(pTHX_ OpCtx *c) {
    HmOut k, val;
    int32_t rc = hm_each(c->m, &k, &val);
    HM_CHECK(rc);
    return hm_ret_pair(aTHX_ c, rc, &k, &val);
}

static SSize_t op_iter_reset(pTHX_ OpCtx *c) {
    hm_iter_reset(c->m);
    return 0;
}

static SSize_t op_to_hash(pTHX_ OpCtx *c) {
    HmList l;
    HV *hv;
    size_t i;
    const HmVariant *v = c->v;
    int32_t rc = hm_list(c->m, HM_ITEMS, &l);
    HM_CHECK(rc);
    hv = newHV();
    for (i = 0; i < l.len; i++) {
        const HmItem *it = &l.items[i];
        SV *val = v->vstr
            ? newSVpvn_flags((const char *)it->val.ptr, it->val.len, it->val.utf8 ? SVf_UTF8 : 0)
            : newSViv((IV)it->val.ival);
        if (v->kstr) {
            I32 klen = (I32)it->key.len;
            (void)hv_store(hv, (const char *)it->key.ptr, it->key.utf8 ? -klen : klen, val, 0);
        }
        else {
            char buf[32];
            int len = my_snprintf(buf, sizeof buf, "%" IVdf, (IV)it->key.ival);
            (void)hv_store(hv, buf, len, val, 0);
        }
    }
    return hm_ret1(aTHX_ c, sv_2mortal(newRV_noinc((SV *)hv)));
}

/* -- accessors ----------------------------------------------------------------------- */

HM_INLINE SSize_t op_stat(pTHX_ OpCtx *c) {
    int64_t v = hm_stat(c->m, (uint32_t)c->aux);
    HM_CHECK(v);                        /* a map in Redis that cannot be reached */
    return hm_ret_uv(aTHX_ c, (UV)v);
}

static SSize_t op_reserve(pTHX_ OpCtx *c) {
    HmConv cv;
    UV n;
    int32_t rc;
    cv.epoch = 0;
    n = (UV)(U32)hm_conv_uv(aTHX_ &cv, HM_ARG(c, 1));   /* truncated to 32 bits (api 5.1) */
    if (cv.epoch)
        hm_recheck(aTHX_ c);
    rc = hm_reserve(c->m, (uint64_t)n);
    HM_CHECK(rc);
    return hm_ret_bool(c, rc);
}

/* -- batch (methods only) ---------------------------------------------------------- */

/* Convert arguments 1..n (stack positions, re-read every time: magic may move the
 * stack) into a mortal C array; kinds alternate key/value when `pairs`. */
static HmIn *hm_batch_args(pTHX_ OpCtx *c, SSize_t n, bool pairs) {
    HmIn *in = hm_in_buf(aTHX_ n);
    HmConv cv;
    SSize_t i;
    cv.epoch = 0;
    for (i = 0; i < n; i++) {
        SV *sv = HM_ARG(c, 1 + i);
        if (pairs && (i & 1)) hm_in_val(aTHX_ c->v, &cv, sv, &in[i]);
        else                  hm_in_key(aTHX_ c->v, &cv, sv, &in[i]);
    }
    for (i = 0; i < n; i++)
        hm_in_fix(&cv, &in[i]);
    if (cv.epoch)
        hm_recheck(aTHX_ c);
    return in;
}

static SSize_t op_set_multi(pTHX_ OpCtx *c) {
    SSize_t n = c->items - 1;
    HmIn *in;
    int64_t r;
    if (n & 1)
        croak("set_multi requires even number of arguments (key, value pairs)");
    in = hm_batch_args(aTHX_ c, n, TRUE);
    r = hm_set_multi(c->m, in, (size_t)(n / 2));
    HM_CHECK(r);
    return hm_ret_uv(aTHX_ c, (UV)r);
}

static SSize_t op_get_multi(pTHX_ OpCtx *c) {
    SSize_t n = c->items - 1;
    HmIn *in;
    HmList l;
    SV **r;
    size_t i;
    int32_t rc;
    if (n == 0)
        return 0;
    in = hm_batch_args(aTHX_ c, n, FALSE);
    rc = hm_get_multi(c->m, in, (size_t)n, &l);
    HM_CHECK(rc);
    if (c->gimme == G_VOID || l.len == 0)
        return 0;
    if (c->gimme != G_LIST) {
        const HmItem *it = &l.items[l.len - 1];
        r = hm_res(aTHX_ c, 1);
        r[0] = it->found ? hm_new_out(aTHX_ c->v->vstr, &it->val) : &PL_sv_undef;
        return 1;
    }
    r = hm_res(aTHX_ c, (SSize_t)l.len);
    for (i = 0; i < l.len; i++) {
        const HmItem *it = &l.items[i];
        r[i] = it->found ? hm_new_out(aTHX_ c->v->vstr, &it->val) : &PL_sv_undef;
    }
    return (SSize_t)l.len;
}

static SSize_t op_remove_multi(pTHX_ OpCtx *c) {
    SSize_t n = c->items - 1;
    HmIn *in;
    int64_t r;
    if (n == 0)
        return hm_ret_uv(aTHX_ c, 0);
    in = hm_batch_args(aTHX_ c, n, FALSE);
    r = hm_remove_multi(c->m, in, (size_t)n);
    HM_CHECK(r);
    return hm_ret_uv(aTHX_ c, (UV)r);
}

/* -- other methods ------------------------------------------------------------------ */

static SSize_t op_stats(pTHX_ OpCtx *c) {
    HmStats s;
    HV *hv;
    HM_CHECK(hm_stats(c->m, &s));
    hv = newHV();
#define HM_STAT_KEY(k) (void)hv_stores(hv, #k, newSVuv((UV)s.k))
    HM_STAT_KEY(size);
    HM_STAT_KEY(capacity);
    HM_STAT_KEY(max_entries);
    HM_STAT_KEY(tombstones);
    HM_STAT_KEY(mmap_size);
    HM_STAT_KEY(arena_used);
    HM_STAT_KEY(arena_cap);
    HM_STAT_KEY(evictions);
    HM_STAT_KEY(expired);
    HM_STAT_KEY(recoveries);
    HM_STAT_KEY(max_size);
    HM_STAT_KEY(ttl);
    HM_STAT_KEY(frozen);
    HM_STAT_KEY(readonly);
#undef HM_STAT_KEY
    return hm_ret1(aTHX_ c, sv_2mortal(newRV_noinc((SV *)hv)));
}

static SSize_t op_path(pTHX_ OpCtx *c) {
    const char *p = hm_path(c->m);
    if (!p)
        return hm_ret_undef(c);
    return hm_ret1(aTHX_ c, sv_2mortal(newSVpv(p, 0)));
}

static SSize_t op_memfd(pTHX_ OpCtx *c) {
    return hm_ret_iv(aTHX_ c, (IV)hm_memfd(c->m));
}

static SSize_t op_sync(pTHX_ OpCtx *c) {
    if (hm_sync(c->m) < 0)
        hm_croak_engine_as(aTHX_ c->v, " sync");
    return 0;
}

/* $map->unlink  /  Class->unlink($path) */
static SSize_t op_unlink(pTHX_ OpCtx *c) {
    SV *self = HM_ARG(c, 0);
    SV *p;
    const char *path;
    if (c->items == 1) {
        SvGETMAGIC(self);
        if (SvROK(self)) {
            HmMap *m = hm_self(aTHX_ c->v, self);
            return hm_ret_bool(c, hm_unlink(m) > 0);     /* never dies for fs reasons */
        }
        croak("Usage: %s->unlink($path)", c->v->klass);
    }
    p = HM_ARG(c, 1);
    SvGETMAGIC(p);
    if (!SvOK(p)) {
        (void)SvPV_nomg_nolen(p);       /* the usual "uninitialized" warning */
        return hm_ret_bool(c, 0);
    }
    path = hm_path_str(aTHX_ p, c->v->klass, "unlink", "path");
    return hm_ret_bool(c, unlink(path) == 0);
}

/* -- cursors (api 6.7) ---------------------------------------------------------------- */

/* What a Class::Cursor object (a blessed scalar) points to: the engine cursor and a
 * strong reference to the map object, which keeps the map alive (api 4). */
typedef struct {
    HmCursor *cur;
    SV       *map;          /* RV to the map object */
} HmCurObj;

/* The magic of a cursor object `self` of the class (NULL: not a cursor of the class,
 * or no constructor of this variant made it). mg_ptr is NULL once destroyed. No
 * croak, no magic. */
static MAGIC *hm_cur_magic(pTHX_ const HmVariant *v, SV *self) {
    dMY_CXT;
    SV *obj;
    if (!SvROK(self) || !SvOBJECT(obj = SvRV(self)))
        return NULL;
    if (SvSTASH(obj) != MY_CXT.cstash[v->id] && !sv_derived_from_pvn(self, v->cklass, v->cklass_len, 0))
        return NULL;
    return hm_magic_of_obj(aTHX_ obj, v->cvtbl);
}

/* The live cursor behind `self`, or NULL. */
static HmCurObj *hm_cur_peek(pTHX_ const HmVariant *v, SV *self) {
    MAGIC *mg = hm_cur_magic(aTHX_ v, self);
    return mg ? (HmCurObj *)mg->mg_ptr : NULL;
}

static HmCurObj *hm_cur_self(pTHX_ const HmVariant *v, SV *self) {
    HmCurObj *co;
    SV *obj;
    SvGETMAGIC(self);
    co = hm_cur_peek(aTHX_ v, self);
    if (co)
        return co;
    if (hm_cur_magic(aTHX_ v, self))
        croak("Attempted to use a destroyed %s cursor", v->cklass);
    if (SvROK(self) && SvOBJECT(obj = SvRV(self)) && sv_derived_from_pvn(self, v->cklass, v->cklass_len, 0))
        croak("not a valid %s object", v->cklass);
    croak("Expected a %s object", v->cklass);
    return NULL;
}

/* The map handle a cursor works through (NULL once the map object was destroyed; the
 * reference may be gone already during global destruction). */
static HmMap *hm_cur_map_or_null(pTHX_ const HmVariant *v, HmCurObj *co) {
    return SvROK(co->map) ? hm_handle_of(aTHX_ v, SvRV(co->map)) : NULL;
}

static HmMap *hm_cur_map(pTHX_ const HmVariant *v, HmCurObj *co) {
    HmMap *m = hm_cur_map_or_null(aTHX_ v, co);
    if (!m)
        croak("Attempted to use a destroyed %s object", v->klass);
    return m;
}

static SSize_t op_cursor(pTHX_ OpCtx *c) {
    HmCurObj *co;
    dMY_CXT;
    HmCursor *cur = hm_cursor_new();
    if (!cur)
        croak("Failed to allocate cursor");
    Newx(co, 1, HmCurObj);
    co->cur = cur;
    co->map = newRV_inc(SvRV(c->self));
    return hm_ret1(aTHX_ c, hm_new_object(aTHX_ MY_CXT.cstash[c->v->id], c->v->cvtbl, co));
}

/* (key, value) or (); scalar context: the value */
static SSize_t op_cursor_next(pTHX_ OpCtx *c) {
    HmCurObj *co = hm_cur_self(aTHX_ c->v, c->self);
    HmMap *m = hm_cur_map(aTHX_ c->v, co);
    HmOut k, val;
    int32_t rc = hm_cursor_next(m, co->cur, &k, &val);
    HM_CHECK(rc);
    return hm_ret_pair(aTHX_ c, rc, &k, &val);
}

static SSize_t op_cursor_reset(pTHX_ OpCtx *c) {
    HmCurObj *co = hm_cur_self(aTHX_ c->v, c->self);
    int32_t rc = hm_cursor_reset(hm_cur_map(aTHX_ c->v, co), co->cur);
    HM_CHECK(rc);
    return 0;
}

static SSize_t op_cursor_seek(pTHX_ OpCtx *c) {
    HmCurObj *co = hm_cur_self(aTHX_ c->v, c->self);
    SV *ksv = HM_ARG(c, 1);
    HmConv cv;
    HmIn in;
    int32_t rc;
    cv.epoch = 0;
    hm_in_key(aTHX_ c->v, &cv, ksv, &in);
    hm_in_fix(&cv, &in);
    if (UNLIKELY(cv.epoch) && hm_cur_peek(aTHX_ c->v, c->self) != co)
        croak("%s cursor replaced or destroyed during the call", c->v->cklass);
    rc = hm_cursor_seek(hm_cur_map(aTHX_ c->v, co), co->cur, &in);
    HM_CHECK(rc);
    return hm_ret_bool(c, rc);
}

/* Frees the cursor (unregistering it from its map if that is still open) and drops
 * the map reference; ignores anything that is not a live cursor of the class. */
static SSize_t op_cursor_DESTROY(pTHX_ OpCtx *c) {
    MAGIC *mg = hm_cur_magic(aTHX_ c->v, HM_ARG(c, 0));
    HmCurObj *co;
    if (!mg || !(co = (HmCurObj *)mg->mg_ptr))
        return 0;
    mg->mg_ptr = NULL;
    hm_cursor_free(hm_cur_map_or_null(aTHX_ c->v, co), co->cur);
    SvREFCNT_dec(co->map);
    Safefree(co);
    return 0;
}

/* -- freeze (api 6.9) -------------------------------------------------------------------- */

static SSize_t op_freeze(pTHX_ OpCtx *c) {
    if (hm_freeze(c->m) < 0)
        hm_croak_engine_as(aTHX_ c->v, "->freeze");
    return 0;
}

/* $map->_hold_write_lock($key, $signal_fd, $wait_fd): a testing aid (t/sharded.t);
 * see hm_test_hold_write */
static SSize_t op_hold_write_lock(pTHX_ OpCtx *c) {
    HmIn in[3];
    int32_t rc;
    hm_args(aTHX_ c, in, 3, "kii");
    rc = hm_test_hold_write(c->m, &in[0], (int32_t)in[1].ival, (int32_t)in[2].ival);
    HM_CHECK(rc);
    return hm_ret_bool(c, rc);
}

/* -- constructors ------------------------------------------------------------------- */

/* The stash to bless into: the invocant class (subclasses work), or the class of an
 * object used as invocant. */
static HV *hm_ctor_stash(pTHX_ OpCtx *c) {
    SV *inv = HM_ARG(c, 0);
    SvGETMAGIC(inv);
    if (SvROK(inv) && SvOBJECT(SvRV(inv)))
        return SvSTASH(SvRV(inv));
    if (!SvOK(inv)) {
        dMY_CXT;
        return MY_CXT.stash[c->v->id];
    }
    return gv_stashsv(inv, GV_ADD);
}

/* A mortal NUL-terminated copy of a string argument, or NULL for undef. `what`
 * names the argument for the croak on a NUL byte, which the C string would cut. */
static const char *hm_ctor_str(pTHX_ OpCtx *c, SV *sv, const char *method, const char *what) {
    STRLEN len;
    const char *p;
    SvGETMAGIC(sv);
    if (!SvOK(sv))
        return NULL;
    p = SvPV_nomg(sv, len);
    p = SvPVX(sv_2mortal(newSVpvn(p, len)));
    return hm_path_str_check(aTHX_ p, len, c->v->klass, method, what);
}

static SSize_t hm_ctor_bless(pTHX_ OpCtx *c, HV *stash, HmMap *m) {
    if (!m)
        hm_croak_engine_as(aTHX_ c->v, "");
    return hm_ret1(aTHX_ c, hm_new_object(aTHX_ stash, c->v->mvtbl, m));
}

static SSize_t hm_ctor_finish(pTHX_ OpCtx *c, HV *stash, const HmOpen *o) {
    return hm_ctor_bless(aTHX_ c, stash, hm_open(o));
}

static SSize_t op_new(pTHX_ OpCtx *c) {
    HmOpen o;
    HV *stash = hm_ctor_stash(aTHX_ c);
    Zero(&o, 1, HmOpen);
    o.variant = (uint32_t)c->v->id;
    o.fd = -1;
    o.path = hm_ctor_str(aTHX_ c, HM_ARG(c, 1), "new", "path");
    o.backing = o.path ? HM_BACK_FILE : HM_BACK_ANON;
    hm_ctor_args(aTHX_ c, &o, 2, 1);
    return hm_ctor_finish(aTHX_ c, stash, &o);
}

static SSize_t op_new_memfd(pTHX_ OpCtx *c) {
    HmOpen o;
    HV *stash = hm_ctor_stash(aTHX_ c);
    Zero(&o, 1, HmOpen);
    o.variant = (uint32_t)c->v->id;
    o.fd = -1;
    o.backing = HM_BACK_MEMFD;
    o.path = hm_ctor_str(aTHX_ c, HM_ARG(c, 1), "new_memfd", "name");
    hm_ctor_args(aTHX_ c, &o, 2, 0);
    return hm_ctor_finish(aTHX_ c, stash, &o);
}

static SSize_t op_new_from_fd(pTHX_ OpCtx *c) {
    HmOpen o;
    HV *stash = hm_ctor_stash(aTHX_ c);
    HmConv cv;
    Zero(&o, 1, HmOpen);
    cv.epoch = 0;
    o.variant = (uint32_t)c->v->id;
    o.backing = HM_BACK_FD;
    o.fd = (int32_t)hm_conv_iv(aTHX_ &cv, HM_ARG(c, 1));
    o.file_mode = 0600;
    return hm_ctor_finish(aTHX_ c, stash, &o);
}

/* Class->new_sharded($prefix, $shards, $max_entries, ...) (api 3.2) */
static SSize_t op_new_sharded(pTHX_ OpCtx *c) {
    HmOpen o;
    HV *stash = hm_ctor_stash(aTHX_ c);
    HmConv cv;
    uint64_t shards;
    Zero(&o, 1, HmOpen);
    cv.epoch = 0;
    o.variant = (uint32_t)c->v->id;
    o.fd = -1;
    o.backing = HM_BACK_FILE;
    o.path = hm_ctor_str(aTHX_ c, HM_ARG(c, 1), "new_sharded", "path_prefix");
    shards = (uint64_t)hm_conv_uv(aTHX_ &cv, HM_ARG(c, 2));
    hm_ctor_args(aTHX_ c, &o, 3, 1);
    return hm_ctor_bless(aTHX_ c, stash, hm_open_sharded(&o, shards));
}

/* Class->new_readonly($path) (api 3.5) */
static SSize_t op_new_readonly(pTHX_ OpCtx *c) {
    HV *stash = hm_ctor_stash(aTHX_ c);
    const char *path = hm_ctor_str(aTHX_ c, HM_ARG(c, 1), "new_readonly", "path");
    if (!path)
        croak("%s->new_readonly: path is required", c->v->klass);
    return hm_ctor_bless(aTHX_ c, stash, hm_open_readonly((uint32_t)c->v->id, path));
}

/* -- object lifetime ------------------------------------------------------------------ */

/* Close the handle and forget it (later calls croak "destroyed"); silently ignore
 * anything that is not a live object of the class (api 4). */
static SSize_t op_DESTROY(pTHX_ OpCtx *c) {
    SV *obj = hm_obj_of(aTHX_ c->v, HM_ARG(c, 0));
    MAGIC *mg;
    HmMap *m;
    if (!obj || !(mg = hm_magic_of_obj(aTHX_ obj, c->v->mvtbl)) || !(m = (HmMap *)mg->mg_ptr))
        return 0;
    mg->mg_ptr = NULL;
    hm_close(m);
    return 0;
}

static SSize_t op_CLONE_SKIP(pTHX_ OpCtx *c) {
    SV **r = hm_res(aTHX_ c, 1);
    r[0] = &PL_sv_yes;
    return 1;
}

#endif
