/* Shared.xs -- the XS glue of Data::HashMap::Shared.
 *
 * The engine is the Rust staticlib of rust-core/ffi (C ABI in rust-core/ffi/include/
 * hashmap_shared.h). This file only includes the glue and registers it:
 *   xs/variants.h   the ten variants (X-macro)
 *   xs/ops.h        the operations (X-macro)
 *   xs/glue.h       context, invocant checks, argument conversion, results
 *   xs/ops_impl.h   one C function per operation
 *   xs/glue_gen.h   XSUBs, custom ops, keywords generated from the two tables; BOOT
 */
#define PERL_NO_GET_CONTEXT
#include "EXTERN.h"
#include "perl.h"
#include "XSUB.h"

#if !defined(__linux__)
#  error "Data::HashMap::Shared supports Linux only"
#endif
#if IVSIZE < 8
#  error "Data::HashMap::Shared needs a 64-bit Perl (ivsize >= 8)"
#endif
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#  error "Data::HashMap::Shared supports little-endian machines only"
#endif

#include "xs/glue.h"
#include "xs/ops_impl.h"
#include "xs/glue_gen.h"

MODULE = Data::HashMap::Shared    PACKAGE = Data::HashMap::Shared

PROTOTYPES: DISABLE

BOOT:
{
    MY_CXT_INIT;
    hm_init_cxt(aTHX_ &MY_CXT);
    hm_boot(aTHX_ __FILE__);
}

void
CLONE(...)
  CODE:
    {
        MY_CXT_CLONE;
        hm_init_cxt(aTHX_ &MY_CXT);
    }
    PERL_UNUSED_VAR(items);

void
_hint_keys(klass)
    SV *klass
  PPCODE:
    {
        /* the %^H keys that enable the keywords of one variant class */
        STRLEN len;
        const char *name = SvPV(klass, len);
        int vid;
        for (vid = 1; vid <= HM_NVARIANTS; vid++) {
            const HmVariant *v = &hm_variants[vid];
            if (len == v->klass_len && memEQ(name, v->klass, len)) {
                AV *keys = (AV *)sv_2mortal((SV *)newAV());
                SSize_t i, n;
                hm_push_hint_keys(aTHX_ v, keys);
                n = av_top_index(keys) + 1;
                EXTEND(SP, n);
                for (i = 0; i < n; i++)
                    PUSHs(*av_fetch(keys, i, 0));
                break;
            }
        }
        if (vid > HM_NVARIANTS)
            croak("%" SVf " is not a Data::HashMap::Shared variant class", SVfARG(klass));
    }

int
_upgrade_file(path_sv)
    SV *path_sv
  CODE:
    {
        /* Data::HashMap::Shared->upgrade_file (lib/Data/HashMap/Shared.pm); the path
         * is defined (checked there) */
        const char *path;
        int32_t rc;
        SvGETMAGIC(path_sv);
        path = hm_path_str(aTHX_ path_sv, HM_BASE_CLASS, "upgrade_file", "path");
        rc = hm_upgrade_file(path);
        if (rc < 0)
            croak("Data::HashMap::Shared->upgrade_file: %s", hm_last_error());
        RETVAL = rc;
    }
  OUTPUT:
    RETVAL

void
_keyword_ops()
  PPCODE:
    {
        /* names of the operations that have keywords (and custom ops "shm_NAME") */
        int i;
        for (i = 0; i < HM_NOPS; i++) {
            if (hm_optab[i].flags & HM_F_KW)
                XPUSHs(sv_2mortal(newSVpv(hm_optab[i].name, 0)));
        }
    }

void
_variant_prefixes()
  PPCODE:
    {
        /* keyword prefix by variant id (index 0 unused) */
        int vid;
        XPUSHs(&PL_sv_undef);
        for (vid = 1; vid <= HM_NVARIANTS; vid++)
            XPUSHs(sv_2mortal(newSVpv(hm_variants[vid].prefix, 0)));
    }
