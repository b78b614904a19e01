/* xs/glue.h -- shared machinery of the XS glue: the variant table, the per-call
 * context, invocant checks, argument conversion and result pushing.
 *
 * Calling convention of an operation (xs/ops_impl.h):
 *
 *     static SSize_t op_NAME(pTHX_ OpCtx *c);
 *
 * Its arguments are on the Perl stack at PL_stack_base[c->ax .. c->ax + c->items - 1]
 * (argument 0 is the invocant). It converts them, calls the engine, writes its results
 * back starting at PL_stack_base[c->ax] and returns how many it wrote. The XSUB form
 * (method or plain function) and the custom-op form (keyword) both call it; they only
 * differ in how they find the arguments and how they finish the stack (see glue_gen.h).
 *
 * Rules every operation follows:
 *   - No Perl code runs while the engine holds a lock: all arguments are converted
 *     (magic, ties, overloads, warnings) before the one engine call.
 *   - Perl code run by a conversion may destroy or replace the invocant, or move the
 *     Perl stack: the SV pointers of the arguments are read before converting, and the
 *     handle is re-read from the invocant after converting (hm_recheck).
 *   - A string argument is used in place (no copy) only when no Perl code can have run
 *     after its buffer pointer was taken; otherwise it is copied into a mortal SV.
 */
#ifndef HM_XS_GLUE_H
#define HM_XS_GLUE_H

#include "hashmap_shared.h"
#include "xs/variants.h"
#include "xs/ops.h"

#define HM_BASE_CLASS "Data::HashMap::Shared"

/* the hot path (custom op -> invocant check -> conversion -> engine) is inlined */
#if defined(__GNUC__)
#  define HM_INLINE static inline __attribute__((always_inline))
#  define HM_COLD   static __attribute__((noinline, cold))
#else
#  define HM_INLINE PERL_STATIC_INLINE
#  define HM_COLD   static
#endif

/* ------------------------------------------------------------------------------- */
/* where an object keeps its engine pointer                                         */

/* A map or cursor object is a blessed scalar; the engine pointer is not its value
 * (Perl code can assign any number to $$m, copy it, or bless an integer) but the
 * mg_ptr of ext magic attached by the constructor, which Perl code can neither make
 * nor change. The vtable's address is the marker, one per variant and kind, so the
 * check also refuses a handle of another variant reblessed into this class. A copy
 * of the scalar ($c = $$m) does not copy the magic, so it is no object either.
 *
 *   svt_free  (maps)  closes a handle whose object is freed without our DESTROY
 *             having run (reblessed into a foreign class): no leaked mapping. Only
 *             engine memory is touched, so it is safe in any phase of global
 *             destruction.
 *   svt_dup   a thread clone must not share the pointer (two interpreters would
 *             close it twice): the clone becomes a destroyed object. Only reached
 *             when a subclass lets objects be cloned; CLONE_SKIP (1) makes threads
 *             see undef otherwise. */
static int hm_mg_free_map(pTHX_ SV *sv, MAGIC *mg) {
    HmMap *m = (HmMap *)mg->mg_ptr;
    PERL_UNUSED_ARG(sv);
    if (m) {
        mg->mg_ptr = NULL;
        hm_close(m);
    }
    return 0;
}

static int hm_mg_dup_forget(pTHX_ MAGIC *mg, CLONE_PARAMS *param) {
    PERL_UNUSED_ARG(param);
    mg->mg_ptr = NULL;
    return 0;
}

/* No svt_free for cursors: freeing one drops a reference to its map object, which
 * is not safe while global destruction frees SVs in arbitrary order; our DESTROY
 * (which runs before that phase) frees them. */
#define HM_MAP_VTBL(id, SUF, pre, ks, vs) { .svt_free = hm_mg_free_map, .svt_dup = hm_mg_dup_forget },
#define HM_CUR_VTBL(id, SUF, pre, ks, vs) { .svt_dup = hm_mg_dup_forget },
static const MGVTBL hm_map_vtbl[HM_NVARIANTS + 1] = { { 0 }, HM_VARIANTS(HM_MAP_VTBL) };
static const MGVTBL hm_cur_vtbl[HM_NVARIANTS + 1] = { { 0 }, HM_VARIANTS(HM_CUR_VTBL) };
#undef HM_MAP_VTBL
#undef HM_CUR_VTBL

/* ------------------------------------------------------------------------------- */
/* variants                                                                          */

typedef struct {
    int         id;
    const char *suffix;     /* "II"                          */
    const char *prefix;     /* "ii"                          */
    const char *klass;      /* "Data::HashMap::Shared::II"   */
    STRLEN      klass_len;
    const char *cklass;     /* "Data::HashMap::Shared::II::Cursor" */
    STRLEN      cklass_len;
    bool        kstr;       /* key is a string               */
    bool        vstr;       /* value is a string             */
    const MGVTBL *mvtbl;    /* &hm_map_vtbl[id]              */
    const MGVTBL *cvtbl;    /* &hm_cur_vtbl[id]              */
} HmVariant;

#define HM_V_ROW(id, SUF, pre, ks, vs) \
    { id, #SUF, #pre, HM_BASE_CLASS "::" #SUF, sizeof(HM_BASE_CLASS "::" #SUF) - 1,       \
      HM_BASE_CLASS "::" #SUF "::Cursor", sizeof(HM_BASE_CLASS "::" #SUF "::Cursor") - 1, ks, vs, \
      &hm_map_vtbl[id], &hm_cur_vtbl[id] },

static const HmVariant hm_variants[HM_NVARIANTS + 1] = {
    { 0, NULL, NULL, NULL, 0, NULL, 0, 0, 0, NULL, NULL },
    HM_VARIANTS(HM_V_ROW)
};
#undef HM_V_ROW

/* per-interpreter state: the class stashes, for the fast invocant check */
#define MY_CXT_KEY "Data::HashMap::Shared::_guts" XS_VERSION
typedef struct {
    HV *stash[HM_NVARIANTS + 1];    /* Data::HashMap::Shared::V         */
    HV *cstash[HM_NVARIANTS + 1];   /* Data::HashMap::Shared::V::Cursor */
} my_cxt_t;
START_MY_CXT

static void hm_init_cxt(pTHX_ my_cxt_t *cx) {
    int i;
    cx->stash[0] = cx->cstash[0] = NULL;
    for (i = 1; i <= HM_NVARIANTS; i++) {
        cx->stash[i] = gv_stashpvn(hm_variants[i].klass, hm_variants[i].klass_len, GV_ADD);
        cx->cstash[i] = gv_stashpvn(hm_variants[i].cklass, hm_variants[i].cklass_len, GV_ADD);
    }
}

/* A new object: a blessed scalar (undef value) carrying `ptr` in our magic. */
static SV *hm_new_object(pTHX_ HV *stash, const MGVTBL *vtbl, void *ptr) {
    SV *obj = newSV_type(SVt_PVMG);
    SV *rv = sv_2mortal(newRV_noinc(obj));
    MAGIC *mg = sv_magicext(obj, NULL, PERL_MAGIC_ext, vtbl, (const char *)ptr, 0);
    mg->mg_flags |= MGf_DUP;
    (void)sv_bless(rv, stash);
    return rv;
}

/* Our magic on `obj` (any SV), or NULL. */
HM_COLD MAGIC *hm_magic_find(pTHX_ SV *obj, const MGVTBL *vtbl) {
    return SvTYPE(obj) >= SVt_PVMG ? mg_findext(obj, PERL_MAGIC_ext, vtbl) : NULL;
}

/* The same for an object, or any SV of type PVMG or above (its body has the magic
 * field): the first magic,
 * where the constructor put it, is looked at inline; the rest of the chain (magic
 * added later, e.g. the back-references of weaken) out of line. */
HM_INLINE MAGIC *hm_magic_of_obj(pTHX_ SV *obj, const MGVTBL *vtbl) {
    MAGIC *mg = SvMAGIC(obj);
    if (LIKELY(mg && mg->mg_virtual == vtbl))
        return mg;
    return hm_magic_find(aTHX_ obj, vtbl);
}

/* The map handle behind the scalar `obj` (any SV) for variant `v`: NULL when it is no
 * map object of that variant, or a destroyed one. */
static HmMap *hm_handle_of(pTHX_ const HmVariant *v, SV *obj) {
    MAGIC *mg = SvTYPE(obj) >= SVt_PVMG ? hm_magic_of_obj(aTHX_ obj, v->mvtbl) : NULL;
    return mg ? (HmMap *)mg->mg_ptr : NULL;
}

/* ------------------------------------------------------------------------------- */
/* per-call context                                                                  */

typedef struct {
    const HmVariant *v;
    SSize_t ax;         /* offset in PL_stack_base of argument 0                    */
    SSize_t items;      /* number of arguments, invocant included                  */
    U8      gimme;      /* G_VOID / G_SCALAR / G_LIST                               */
    IV      aux;        /* the op table's aux column                               */
    SV     *targ;       /* pad TARG (custom op / entersub) or NULL                  */
    CV     *cv;         /* XSUB form: the CV (for usage messages); op form: NULL    */
    HmMap  *m;          /* the handle, set by the wrapper after the invocant check  */
    SV     *self;       /* the invocant SV (argument 0)                              */
} OpCtx;

#define HM_ARG(c, i) (PL_stack_base[(c)->ax + (i)])

/* ------------------------------------------------------------------------------- */
/* invocant                                                                          */

/* Is `self` a reference to an object of the variant's class (or a subclass)? Returns
 * the referenced scalar (which carries the handle) or NULL. No magic is called. */
HM_INLINE SV *hm_obj_of(pTHX_ const HmVariant *v, SV *self) {
    dMY_CXT;
    SV *obj;
    if (!SvROK(self))
        return NULL;
    obj = SvRV(self);
    if (!SvOBJECT(obj))
        return NULL;
    if (LIKELY(SvSTASH(obj) == MY_CXT.stash[v->id]))
        return obj;
    return sv_derived_from_pvn(self, v->klass, v->klass_len, 0) ? obj : NULL;
}

/* Why `self` is refused (api.md 4): no object of the class; an object of the class
 * that no constructor of this variant made (a blessed integer, a copy of the scalar,
 * a hash); or one whose handle was released by DESTROY. Returns the handle when it
 * is fine after all (our magic is not the first one). */
HM_COLD HmMap *hm_self_slow(pTHX_ const HmVariant *v, SV *self) {
    SV *obj = hm_obj_of(aTHX_ v, self);
    MAGIC *mg;
    if (!obj)
        croak("Expected a %s object", v->klass);
    mg = hm_magic_find(aTHX_ obj, v->mvtbl);
    if (!mg)
        croak("not a valid %s object", v->klass);
    if (!mg->mg_ptr)
        croak("Attempted to use a destroyed %s object", v->klass);
    return (HmMap *)mg->mg_ptr;
}

/* The invocant check at the start of every instance operation. The common case, an
 * object of exactly the class whose first magic is ours, costs the class compare as
 * before, plus a load of the magic pointer, a load and compare of its vtable, and a
 * load and test of mg_ptr (instead of the IOK test and the IV load). */
HM_INLINE HmMap *hm_self(pTHX_ const HmVariant *v, SV *self) {
    dMY_CXT;
    SV *obj;
    MAGIC *mg;
    SvGETMAGIC(self);
    if (LIKELY(SvROK(self) && SvOBJECT(obj = SvRV(self)) && SvSTASH(obj) == MY_CXT.stash[v->id]
               && (mg = SvMAGIC(obj)) && mg->mg_virtual == v->mvtbl && mg->mg_ptr))
        return (HmMap *)mg->mg_ptr;
    return hm_self_slow(aTHX_ v, self);
}

/* After the arguments were converted: the invocant must still hold the same handle.
 * (Only needed when Perl code may have run: see HmConv.epoch.) */
HM_INLINE void hm_recheck(pTHX_ OpCtx *c) {
    SV *obj = hm_obj_of(aTHX_ c->v, c->self);
    if (UNLIKELY(!obj || hm_handle_of(aTHX_ c->v, obj) != c->m))
        croak("%s object replaced or destroyed during the call", c->v->klass);
}

/* ------------------------------------------------------------------------------- */
/* engine errors                                                                     */

/* The engine's message; a mutator refused on a frozen map gets the class prefix of
 * api.md 9 ("Class: map is frozen (read-only)"). */
HM_COLD void hm_croak_engine(pTHX_ const HmVariant *v) {
    const char *e = hm_last_error();
    if (hm_last_error_kind() == HM_EK_FROZEN)
        croak("%s: %s", v->klass, e);
    croak("%s", (e && *e) ? e : "unknown error");
}

/* The engine's message after "Class<what>: " (what: "" for constructors, " sync",
 * "->freeze"), for calls whose api.md words carry the class. */
HM_COLD void hm_croak_engine_as(pTHX_ const HmVariant *v, const char *what) {
    const char *e = hm_last_error();
    croak("%s%s: %s", v->klass, what, (e && *e) ? e : "unknown error");
}

#define HM_CHECK(rc) STMT_START { if (UNLIKELY((rc) < 0)) hm_croak_engine(aTHX_ c->v); } STMT_END

/* ------------------------------------------------------------------------------- */
/* paths                                                                             */

/* Paths and memfd names reach the engine as C strings, which end at the first NUL:
 * "x\0evil" would create "x". Refused, as Perl's own open refuses such a path. */
static const char *hm_path_str_check(pTHX_ const char *p, STRLEN len, const char *klass,
                                     const char *method, const char *what) {
    if (UNLIKELY(memchr(p, '\0', len) != NULL))
        croak("%s->%s: %s contains a NUL byte: %s", klass, method, what,
              pv_display(sv_newmortal(), p, len, 0, 80));
    return p;
}

/* The string of a defined path argument whose get-magic has run, checked as above. */
static const char *hm_path_str(pTHX_ SV *sv, const char *klass, const char *method, const char *what) {
    STRLEN len;
    const char *p = SvPV_nomg(sv, len);
    return hm_path_str_check(aTHX_ p, len, klass, method, what);
}

/* ------------------------------------------------------------------------------- */
/* argument conversion (api.md 5.1)                                                   */

/* Conversion state of one call. `epoch` counts the points where Perl code may have
 * run (magic, overloading, warnings); a string whose buffer was taken in place
 * remembers the epoch at that time, and is copied if it changed by the end. */
typedef struct {
    U32 epoch;
} HmConv;

#define HM_PENDING ((size_t)-1)

HM_INLINE IV hm_conv_iv(pTHX_ HmConv *cv, SV *sv) {
    if (LIKELY(SvIOK_nog(sv)))
        return SvIVX(sv);
    if (SvNOK_nog(sv) && !SvPOK(sv))
        return SvIV_nomg(sv);           /* NV -> IV: no warnings, no code */
    cv->epoch++;                        /* magic, overload, undef or string: may warn */
    return SvIV(sv);
}

HM_INLINE UV hm_conv_uv(pTHX_ HmConv *cv, SV *sv) {
    if (LIKELY(SvIOK_nog(sv)))
        return SvUVX(sv);
    cv->epoch++;
    return SvUV(sv);
}

HM_INLINE void hm_in_int(pTHX_ HmConv *cv, SV *sv, HmIn *in) {
    in->ival = (int64_t)hm_conv_iv(aTHX_ cv, sv);
    in->ptr = NULL;
    in->len = 0;
    in->utf8 = 0;
}

/* an unsigned argument (TTL seconds, limits: api 5.1), its 64 bits kept in ival */
HM_INLINE void hm_in_uint(pTHX_ HmConv *cv, SV *sv, HmIn *in) {
    in->ival = (int64_t)hm_conv_uv(aTHX_ cv, sv);
    in->ptr = NULL;
    in->len = 0;
    in->utf8 = 0;
}

/* Phase A of a string argument: either remember the SV (plain string: the buffer is
 * taken in phase B) or run its magic/overloading now and keep a private copy. */
HM_INLINE void hm_in_str_a(pTHX_ HmConv *cv, SV *sv, HmIn *in) {
    if (LIKELY(SvPOK_nog(sv))) {
        in->ptr = (const uint8_t *)sv;
        in->len = HM_PENDING;
        in->ival = (int64_t)cv->epoch;
        in->utf8 = 0;
    }
    else {
        STRLEN len;
        const char *p;
        SV *copy;
        cv->epoch++;
        p = SvPV(sv, len);
        copy = sv_2mortal(newSVpvn(p, len));
        in->ptr = (const uint8_t *)SvPVX(copy);
        in->len = len;
        in->utf8 = SvUTF8(sv) ? 1 : 0;
        in->ival = 0;
    }
}

/* Phase B: no Perl code can run between this and the engine call (unless the string
 * has to be copied from an SV that some argument's code turned into a non-string, in
 * which case the copy is taken in order, so it is consistent). */
HM_INLINE void hm_in_str_b(pTHX_ HmConv *cv, HmIn *in) {
    SV *sv;
    if (in->len != HM_PENDING)
        return;
    sv = (SV *)in->ptr;
    if (LIKELY((U32)in->ival == cv->epoch && SvPOK(sv))) {
        in->ptr = (const uint8_t *)SvPVX(sv);
        in->len = SvCUR(sv);
        in->utf8 = SvUTF8(sv) ? 1 : 0;
    }
    else {
        STRLEN len;
        const char *p = SvPV_nomg(sv, len);
        SV *copy = sv_2mortal(newSVpvn(p, len));
        in->ptr = (const uint8_t *)SvPVX(copy);
        in->len = len;
        in->utf8 = SvUTF8(sv) ? 1 : 0;
    }
    in->ival = 0;
}

/* key / value of the variant: phase A */
HM_INLINE void hm_in_key(pTHX_ const HmVariant *v, HmConv *cv, SV *sv, HmIn *in) {
    if (v->kstr) hm_in_str_a(aTHX_ cv, sv, in);
    else         hm_in_int(aTHX_ cv, sv, in);
}
HM_INLINE void hm_in_val(pTHX_ const HmVariant *v, HmConv *cv, SV *sv, HmIn *in) {
    if (v->vstr) hm_in_str_a(aTHX_ cv, sv, in);
    else         hm_in_int(aTHX_ cv, sv, in);
}
/* phase B for any HmIn (no-op for ints and copies) */
#define hm_in_fix(cv, in) hm_in_str_b(aTHX_ (cv), (in))

/* ------------------------------------------------------------------------------- */
/* results (api.md 5.2, 5.3)                                                          */

/* Make room for n results at PL_stack_base[c->ax ..]; returns the first slot. */
HM_INLINE SV **hm_res(pTHX_ OpCtx *c, SSize_t n) {
    SV **sp = PL_stack_base + c->ax - 1;
    EXTEND(sp, n);
    return PL_stack_base + c->ax;
}

HM_INLINE SSize_t hm_ret1(pTHX_ OpCtx *c, SV *sv) {
    PL_stack_base[c->ax] = sv;          /* items >= 1 always, so the slot exists */
    return 1;
}

#define hm_ret_bool(c, b) hm_ret1(aTHX_ (c), (b) ? &PL_sv_yes : &PL_sv_no)
#define hm_ret_undef(c)   hm_ret1(aTHX_ (c), &PL_sv_undef)

HM_INLINE SV *hm_targ(pTHX_ OpCtx *c) {
    if (!c->targ)
        c->targ = sv_newmortal();
    return c->targ;
}

HM_INLINE SSize_t hm_ret_iv(pTHX_ OpCtx *c, IV iv) {
    SV *targ = hm_targ(aTHX_ c);
    TARGi(iv, 1);
    return hm_ret1(aTHX_ c, targ);
}

HM_INLINE SSize_t hm_ret_uv(pTHX_ OpCtx *c, UV uv) {
    SV *targ = hm_targ(aTHX_ c);
    TARGu(uv, 1);
    return hm_ret1(aTHX_ c, targ);
}

HM_INLINE void hm_set_str(pTHX_ SV *sv, const HmOut *o) {
    sv_setpvn(sv, (const char *)o->ptr, o->len);
    if (o->utf8) SvUTF8_on(sv);
    else         SvUTF8_off(sv);
}

/* a value of the variant, into the TARG */
HM_INLINE SSize_t hm_ret_val(pTHX_ OpCtx *c, const HmOut *o) {
    if (c->v->vstr) {
        SV *t = hm_targ(aTHX_ c);
        hm_set_str(aTHX_ t, o);
        return hm_ret1(aTHX_ c, t);
    }
    return hm_ret_iv(aTHX_ c, (IV)o->ival);
}

/* fresh mortal SVs for list results */
HM_INLINE SV *hm_new_out(pTHX_ bool is_str, const HmOut *o) {
    if (is_str)
        return sv_2mortal(newSVpvn_flags((const char *)o->ptr, o->len, o->utf8 ? SVf_UTF8 : 0));
    return sv_2mortal(newSViv((IV)o->ival));
}

#endif
