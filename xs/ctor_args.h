/* xs/ctor_args.h -- the sizing arguments of new, new_memfd and new_sharded: positional
 * (api.md 3.1) and/or a trailing hash of named options (POD "CONSTRUCTORS"), both
 * landing in the one HmOpen the engine takes.
 *
 *   Class->new($path, $max_entries, $max_size, $ttl, $lru_skip, $arena_cap, $file_mode)
 *   Class->new($path, { max_entries => ..., string_space => '64m', lru => 1, ... })
 *   Class->new($path, $max_entries, { max_size => ..., ... })
 *
 * The hash gives the arguments the positions before it did not; an option given both
 * ways, an unknown option, or a value that is not a number croaks, naming it.
 */
#ifndef HM_XS_CTOR_ARGS_H
#define HM_XS_CTOR_ARGS_H

/* The sizing arguments in positional order, and their option names. */
enum { HM_A_ENTRIES, HM_A_SIZE, HM_A_TTL, HM_A_SKIP, HM_A_SPACE, HM_A_MODE, HM_A_N };
static const char *const hm_arg_names[HM_A_N] = {
    "max_entries", "max_size", "ttl", "lru_skip", "string_space", "file_mode"
};
#define HM_U32_MAX ((UV)4294967295U)

/* An option's value as an unsigned integer: a number, or (string_space) a number of
 * bytes with an optional k, m or g suffix (KiB, MiB, GiB). Croaks on anything else,
 * on negative numbers and on values above `max`. */
static UV hm_opt_uv(pTHX_ const HmVariant *v, const char *name, SV *sv, int suffix, UV max) {
    UV n = 0;
    SvGETMAGIC(sv);
    if (SvIOK_nog(sv) && !SvPOK(sv)) {
        if (!SvIsUV(sv) && SvIVX(sv) < 0)
            croak("%s: option %s: %" IVdf " is negative", v->klass, name, SvIVX(sv));
        n = SvUVX(sv);
    }
    else if (SvNOK_nog(sv) && !SvPOK(sv)) {
        NV x = SvNVX(sv);
        if (!(x >= 0))
            croak("%s: option %s: %" NVgf " is not a non-negative number", v->klass, name, x);
        n = x >= (NV)UV_MAX ? UV_MAX : (UV)x;
    }
    else {
        STRLEN len, i = 0;
        const char *p = SvPV_nomg(sv, len);
        int shift = 0, over = 0;
        while (i < len && p[i] >= '0' && p[i] <= '9') {
            if (n > (UV_MAX - 9) / 10)
                over = 1;
            else
                n = n * 10 + (UV)(p[i] - '0');
            i++;
        }
        if (suffix && i > 0 && i + 1 == len) {
            switch (p[i] | 0x20) {
            case 'k': shift = 10; i++; break;
            case 'm': shift = 20; i++; break;
            case 'g': shift = 30; i++; break;
            }
        }
        if (i == 0 || i != len)
            croak("%s: option %s: '%" SVf "' is not %s", v->klass, name, SVfARG(sv),
                  suffix ? "a size (bytes, or a number followed by k, m or g)" : "a non-negative integer");
        if (over || n > (UV_MAX >> shift))
            n = UV_MAX;
        else
            n <<= shift;
    }
    if (n > max)
        croak("%s: %s %" UVuf " exceeds the maximum of %" UVuf, v->klass, name, n, max);
    return n;
}

/* Reads the sizing arguments from stack position `from` on into `o`; `with_mode`: the
 * constructor takes a file mode (not new_memfd). */
static void hm_ctor_args(pTHX_ OpCtx *c, HmOpen *o, SSize_t from, int with_mode) {
    UV val[HM_A_N] = { 0, 0, 0, 0, 0, 0600 };
    bool given[HM_A_N] = { 0 };
    bool lru = 0, lru_given = 0;
    SSize_t npos = c->items - from, i;
    HV *hv = NULL;
    HmConv cv;
    cv.epoch = 0;
    if (npos > 0) {
        SV *last = HM_ARG(c, c->items - 1);
        if (SvROK(last) && SvTYPE(SvRV(last)) == SVt_PVHV && !SvOBJECT(SvRV(last))) {
            hv = (HV *)SvRV(last);
            npos--;
        }
    }
    for (i = 0; i < npos; i++) {
        val[i] = hm_conv_uv(aTHX_ &cv, HM_ARG(c, from + i));
        given[i] = 1;
    }
    if (hv) {
        HE *he;
        sv_2mortal(SvREFCNT_inc_simple_NN((SV *)hv));   /* options may run code: keep them */
        hv_iterinit(hv);
        while ((he = hv_iternext(hv))) {
            STRLEN klen;
            const char *k = HePV(he, klen);
            SV *sv = HeVAL(he);
            int a;
            SvGETMAGIC(sv);
            if (!SvOK(sv))
                continue;                          /* undef: the default */
            if (klen == 3 && memEQ(k, "lru", 3)) {
                lru = SvTRUE_nomg(sv);
                lru_given = 1;
                continue;
            }
            for (a = 0; a < HM_A_N; a++)
                if (strlen(hm_arg_names[a]) == klen && memEQ(k, hm_arg_names[a], klen))
                    break;
            if (a == HM_A_N || (a == HM_A_MODE && !with_mode))
                croak("%s: unknown option '%" SVf "' (known: max_entries, max_size, lru, ttl, lru_skip, string_space%s)",
                      c->v->klass, SVfARG(sv_2mortal(newSVpvn_flags(k, klen, HeKUTF8(he) ? SVf_UTF8 : 0))),
                      with_mode ? ", file_mode" : "");
            if (given[a])
                croak("%s: %s given twice (by position and by name)", c->v->klass, hm_arg_names[a]);
            val[a] = hm_opt_uv(aTHX_ c->v, hm_arg_names[a], sv, a == HM_A_SPACE,
                               a == HM_A_MODE ? 07777 : HM_U32_MAX);
            given[a] = 1;
        }
        if (!given[HM_A_ENTRIES]) {
            if (!given[HM_A_SPACE] || !(c->v->kstr || c->v->vstr))
                croak("%s: max_entries is required%s", c->v->klass,
                      (c->v->kstr || c->v->vstr) ? " (or string_space, which implies 1 entry per 128 bytes)" : "");
            val[HM_A_ENTRIES] = val[HM_A_SPACE] / 128;
        }
        if (lru_given && given[HM_A_SIZE])
            croak("%s: options lru and max_size both given: lru => 1 means max_size => max_entries", c->v->klass);
        if (lru)
            val[HM_A_SIZE] = val[HM_A_ENTRIES];
    }
    o->max_entries = val[HM_A_ENTRIES];
    o->max_size = val[HM_A_SIZE];
    o->ttl = val[HM_A_TTL];
    o->lru_skip = val[HM_A_SKIP];
    o->arena_cap = val[HM_A_SPACE];
    o->file_mode = (uint32_t)val[HM_A_MODE];
}

#endif
