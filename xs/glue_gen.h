/* xs/glue_gen.h -- everything generated from the two tables (xs/variants.h,
 * xs/ops.h):
 *
 *   per operation row : one XSUB  xs_NAME   (shared by the ten classes; the variant id
 *                                            is in CvXSUBANY(cv).any_i32)
 *                       one pp    pp_shm_NAME (the keyword's custom op; the variant id
 *                                            is in op_private)
 *                       one XOP   hm_xop_NAME (name "shm_NAME", for B::Concise/Deparse)
 *                       one hooks struct for XS::Parse::Keyword
 *   per variant x row : the CV  Data::HashMap::Shared::V::NAME and, for keyword rows,
 *                       the keyword shm_v_NAME, permitted while the hint key
 *                       "Data::HashMap::Shared::V/shm_v_NAME" is in %^H.
 *
 * Both the XSUB and the pp call the same op_FN(pTHX_ OpCtx *) (xs/ops_impl.h).
 */
#ifndef HM_XS_GLUE_GEN_H
#define HM_XS_GLUE_GEN_H

#include "XSParseKeyword.h"

typedef SSize_t (*hm_opfn)(pTHX_ OpCtx *c);

/* ------------------------------------------------------------------------------- */
/* the custom-op form                                                                */

/* Arguments are the top `arity` stack items (the op's children pushed them). Results
 * replace them; the op's context decides what is left (api 5.3: a list in scalar
 * context gives its last element, or undef). */
HM_INLINE OP *hm_run_pp(pTHX_ hm_opfn fn, int arity, int flags, IV aux) {
    OpCtx c;
    SSize_t n;
    SV **base;
    c.v     = &hm_variants[PL_op->op_private];
    c.items = arity;
    c.ax    = (PL_stack_sp - PL_stack_base) - arity + 1;
    c.gimme = GIMME_V;
    c.aux   = aux;
    c.targ  = PL_op->op_targ ? PAD_SV(PL_op->op_targ) : NULL;
    c.cv    = NULL;
    c.self  = PL_stack_base[c.ax];
    c.m     = NULL;
    if (!(flags & HM_F_NOSELF))
        c.m = hm_self(aTHX_ c.v, c.self);
    n = fn(aTHX_ &c);
    base = PL_stack_base + c.ax;
    switch (c.gimme) {
    case G_VOID:
        PL_stack_sp = base - 1;
        break;
    case G_SCALAR:
        if (n == 0)
            base[0] = &PL_sv_undef;
        else if (n > 1)
            base[0] = base[n - 1];
        PL_stack_sp = base;
        break;
    default:
        PL_stack_sp = base + n - 1;
        break;
    }
    return NORMAL;
}

#define HM_GEN_PP(NAME, FN, MN, MX, FL, AUX, USAGE)                              \
    static OP *pp_shm_##NAME(pTHX) {                                             \
        return hm_run_pp(aTHX_ op_##FN, (MN), (FL), (AUX));                      \
    }
HM_OPS(HM_GEN_PP)
#undef HM_GEN_PP

/* ------------------------------------------------------------------------------- */
/* the XSUB form                                                                     */

#define HM_GEN_XS(NAME, FN, MN, MX, FL, AUX, USAGE)                              \
    XS_INTERNAL(xs_##NAME) {                                                     \
        dXSARGS;                                                                 \
        OpCtx c;                                                                 \
        SSize_t n;                                                               \
        if (items < (MN) || ((MX) >= 0 && items > (MX)))                         \
            croak_xs_usage(cv, USAGE);                                           \
        c.v     = &hm_variants[CvXSUBANY(cv).any_i32];                           \
        c.ax    = ax;                                                            \
        c.items = items;                                                         \
        c.gimme = GIMME_V;                                                       \
        c.aux   = (AUX);                                                         \
        c.targ  = (((FL) & HM_F_TARG) && (PL_op->op_private & OPpENTERSUB_HASTARG)) \
                      ? PAD_SV(PL_op->op_targ) : NULL;                           \
        c.cv    = cv;                                                            \
        c.self  = items ? ST(0) : NULL;                                          \
        c.m     = NULL;                                                          \
        if (!((FL) & HM_F_NOSELF))                                               \
            c.m = hm_self(aTHX_ c.v, c.self);                                    \
        n = op_##FN(aTHX_ &c);                                                   \
        XSRETURN(n);                                                             \
    }
HM_OPS(HM_GEN_XS)
#undef HM_GEN_XS

/* ------------------------------------------------------------------------------- */
/* keywords                                                                          */

static bool hm_kw_permit(pTHX_ void *hookdata);
static int  hm_kw_parse(pTHX_ OP **out, void *hookdata);

#define HM_GEN_HOOKS(NAME, FN, MN, MX, FL, AUX, USAGE)                           \
    static const struct XSParseKeywordHooks hm_hooks_##NAME = {                  \
        .flags  = XPK_FLAG_EXPR,                                                 \
        .permit = hm_kw_permit,                                                  \
        .parse  = hm_kw_parse,                                                   \
    };                                                                           \
    static XOP hm_xop_##NAME;
HM_OPS(HM_GEN_HOOKS)
#undef HM_GEN_HOOKS

/* the operation table at run time */
typedef struct {
    const char *name;
    XSUBADDR_t  xsub;
    Perl_ppaddr_t pp;
    XOP        *xop;
    const struct XSParseKeywordHooks *hooks;
    int         min, max, flags;
} HmOpRow;

enum {
#define HM_GEN_ENUM(NAME, FN, MN, MX, FL, AUX, USAGE) HM_OP_##NAME,
    HM_OPS(HM_GEN_ENUM)
#undef HM_GEN_ENUM
    HM_NOPS
};

static const HmOpRow hm_optab[HM_NOPS] = {
#define HM_GEN_ROW(NAME, FN, MN, MX, FL, AUX, USAGE) \
    { #NAME, xs_##NAME, pp_shm_##NAME, &hm_xop_##NAME, &hm_hooks_##NAME, (MN), (MX), (FL) },
    HM_OPS(HM_GEN_ROW)
#undef HM_GEN_ROW
};

#define HM_MAX_ARITY 4

/* one per (variant, keyword operation): the hookdata of the registration */
typedef struct {
    const HmVariant *v;
    int   op;                       /* index in hm_optab                            */
    char  kwname[32];               /* shm_ii_put                                   */
    char  hintkey[80];              /* Data::HashMap::Shared::II/shm_ii_put         */
    STRLEN hintkey_len;
    U32   hintkey_hash;
} HmKw;

static HmKw hm_kw[HM_NVARIANTS + 1][HM_NOPS];

static bool hm_kw_permit(pTHX_ void *hookdata) {
    const HmKw *k = (const HmKw *)hookdata;
    HV *hints = GvHV(PL_hintgv);
    if (!hints)
        return FALSE;
    return hv_common_key_len(hints, k->hintkey, (I32)k->hintkey_len,
                             HV_FETCH_JUST_SV, NULL, k->hintkey_hash) != NULL;
}

/* the custom op: UNOP / BINOP / LISTOP of type OP_CUSTOM with the argument ops as
 * children, the variant id in op_private and (for scalar results) a pad TARG */
static OP *hm_kw_build(pTHX_ const HmKw *k, OP **argv) {
    const HmOpRow *row = &hm_optab[k->op];
    int arity = row->min, i;
    OP *o;
    for (i = 0; i < arity; i++)
        argv[i] = op_contextualize(argv[i], G_SCALAR);
    if (arity == 1)
        o = newUNOP(OP_CUSTOM, 0, argv[0]);
    else if (arity == 2)
        o = newBINOP(OP_CUSTOM, 0, argv[0], argv[1]);
    else {
        /* op_sibling_splice (in op_append_elem) finds the class of a custom op through
         * its XOP, i.e. by op_ppaddr: set it before appending */
        o = newLISTOP(OP_CUSTOM, 0, argv[0], argv[1]);
        o->op_ppaddr = row->pp;
        for (i = 2; i < arity; i++)
            o = op_append_elem(OP_CUSTOM, o, argv[i]);
    }
    o->op_ppaddr  = row->pp;
    o->op_private = (U8)k->v->id;
    if (row->flags & HM_F_TARG)
        o->op_targ = pad_alloc(OP_CUSTOM, SVs_PADTMP);
    return o;
}

static void hm_kw_free(pTHX_ OP **argv, int n) {
    int i;
    for (i = 0; i < n; i++)
        if (argv[i])
            op_free(argv[i]);
}

/* Syntax (api 2.2 + decision 14):
 *   shm_v_op A, B, C        fixed arity of comma-separated term expressions
 *   shm_v_op(A, B, C)       a parenthesised list of exactly the arity, straight after
 *                           the keyword; the call ends at the ')'
 *   shm_v_op (A), B, C      a single parenthesised expression followed by ',' is the
 *                           first argument of the bare form (its meaning unchanged)
 */
static int hm_kw_parse(pTHX_ OP **out, void *hookdata) {
    const HmKw *k = (const HmKw *)hookdata;
    int arity = hm_optab[k->op].min;
    OP *argv[HM_MAX_ARITY];
    int n = 0;

    if (lex_peek_unichar(0) == '(') {
        OP *inner = NULL;
        int count = 0;
        lex_read_unichar(0);
        lex_read_space(0);
        if (lex_peek_unichar(0) != ')') {
            inner = parse_fullexpr(0);
            lex_read_space(0);
        }
        if (lex_peek_unichar(0) != ')') {
            if (inner) op_free(inner);
            croak("Expected ')' after the arguments of %s", k->kwname);
        }
        lex_read_unichar(0);
        if (inner) {
            if (inner->op_type == OP_LIST) {
                OP *kid = cLISTOPx(inner)->op_first;
                if (kid && kid->op_type == OP_PUSHMARK)
                    kid = OpSIBLING(kid);
                for (; kid; kid = OpSIBLING(kid))
                    count++;
            }
            else
                count = 1;
        }
        if (count == arity) {                       /* the parenthesised form */
            if (inner->op_type == OP_LIST) {
                OP *pm = cLISTOPx(inner)->op_first;
                if (pm->op_type != OP_PUSHMARK)
                    pm = NULL;
                for (n = 0; n < arity; n++)
                    argv[n] = op_sibling_splice(inner, pm, 1, NULL);
                op_free(inner);
            }
            else
                argv[n++] = inner;
            *out = hm_kw_build(aTHX_ k, argv);
            return KEYWORD_PLUGIN_EXPR;
        }
        if (count == 1) {                           /* first argument of the bare form */
            lex_read_space(0);
            if (lex_peek_unichar(0) != ',') {
                op_free(inner);
                croak("Not enough arguments for %s (it takes %d)", k->kwname, arity);
            }
            argv[n++] = inner;
        }
        else {
            if (inner) op_free(inner);
            croak("%s arguments for %s (it takes %d)",
                  count < arity ? "Not enough" : "Too many", k->kwname, arity);
        }
    }

    while (n < arity) {
        if (n > 0) {
            lex_read_space(0);
            if (lex_peek_unichar(0) != ',') {
                hm_kw_free(aTHX_ argv, n);
                croak("Expected ',' in %s (it takes %d arguments)", k->kwname, arity);
            }
            lex_read_unichar(0);
            lex_read_space(0);
        }
        argv[n] = parse_termexpr(0);
        if (!argv[n]) {
            hm_kw_free(aTHX_ argv, n);
            croak("Expected an expression as argument %d of %s", n + 1, k->kwname);
        }
        n++;
    }
    *out = hm_kw_build(aTHX_ k, argv);
    return KEYWORD_PLUGIN_EXPR;
}

/* ------------------------------------------------------------------------------- */
/* BOOT                                                                              */

static bool hm_variant_has(const HmVariant *v, const HmOpRow *row) {
    return !((row->flags & HM_F_INTVAL) && v->vstr);
}

static void hm_boot(pTHX_ const char *file) {
    static bool keywords_registered = FALSE;
    int i, vid;

    /* XOPs (per interpreter table) */
    for (i = 0; i < HM_NOPS; i++) {
        const HmOpRow *row = &hm_optab[i];
        int arity = row->min;
        char *name, *desc;
        if (!(row->flags & HM_F_KW))
            continue;
        name = savesharedpv(form("shm_%s", row->name));
        desc = savesharedpv(form("Data::HashMap::Shared %s", row->name));
        XopENTRY_set(row->xop, xop_name, name);
        XopENTRY_set(row->xop, xop_desc, desc);
        XopENTRY_set(row->xop, xop_class,
                     arity == 1 ? OA_UNOP : arity == 2 ? OA_BINOP : OA_LISTOP);
        Perl_custom_op_register(aTHX_ row->pp, row->xop);
    }

    /* the methods of the ten classes */
    for (vid = 1; vid <= HM_NVARIANTS; vid++) {
        const HmVariant *v = &hm_variants[vid];
        for (i = 0; i < HM_NOPS; i++) {
            const HmOpRow *row = &hm_optab[i];
            CV *cv;
            if (!hm_variant_has(v, row))
                continue;
            if (row->flags & HM_F_CURSOR)       /* "cursor_next" -> Class::Cursor::next */
                cv = newXS_flags(form("%s::Cursor::%s", v->klass, row->name + 7), row->xsub, file, NULL, 0);
            else
                cv = newXS_flags(form("%s::%s", v->klass, row->name), row->xsub, file, NULL, 0);
            CvXSUBANY(cv).any_i32 = vid;
        }
    }

    /* the keywords (XS::Parse::Keyword keeps a process-wide registry) */
    if (keywords_registered)
        return;
    keywords_registered = TRUE;
    boot_xs_parse_keyword(0.33);
    for (vid = 1; vid <= HM_NVARIANTS; vid++) {
        const HmVariant *v = &hm_variants[vid];
        for (i = 0; i < HM_NOPS; i++) {
            const HmOpRow *row = &hm_optab[i];
            HmKw *k = &hm_kw[vid][i];
            if (!(row->flags & HM_F_KW) || !hm_variant_has(v, row))
                continue;
            k->v = v;
            k->op = i;
            my_snprintf(k->kwname, sizeof k->kwname, "shm_%s_%s", v->prefix, row->name);
            k->hintkey_len = (STRLEN)my_snprintf(k->hintkey, sizeof k->hintkey, "%s/%s",
                                                 v->klass, k->kwname);
            PERL_HASH(k->hintkey_hash, k->hintkey, k->hintkey_len);
            register_xs_parse_keyword(k->kwname, row->hooks, k);
        }
    }
}

/* hint keys of one variant (for its import) */
static void hm_push_hint_keys(pTHX_ const HmVariant *v, AV *out) {
    int i;
    for (i = 0; i < HM_NOPS; i++) {
        const HmOpRow *row = &hm_optab[i];
        if (!(row->flags & HM_F_KW) || !hm_variant_has(v, row))
            continue;
        av_push(out, newSVpvf("%s/shm_%s_%s", v->klass, v->prefix, row->name));
    }
}

#endif
