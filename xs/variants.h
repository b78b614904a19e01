/* xs/variants.h -- the ten map variants, one X-macro (see doc/DESIGN.md "Variants").
 *
 *   X(id, SUFFIX, prefix, key_is_string, value_is_string)
 *
 * id      : the on-disk variant id (C implementation's numbering, api.md 1.1), 1..10
 * SUFFIX  : class suffix: Data::HashMap::Shared::SUFFIX
 * prefix  : keyword prefix: shm_<prefix>_<op>
 * key/value is string: 1 = bytes (+ UTF-8 flag), 0 = integer (narrowed by the engine)
 *
 * Counter operations (incr decr incr_by max min) exist only where the value is an
 * integer (flag HM_F_INTVAL in xs/ops.h).
 */
#ifndef HM_XS_VARIANTS_H
#define HM_XS_VARIANTS_H

#define HM_VARIANTS(X)              \
    X( 1, I16,  i16,  0, 0)         \
    X( 2, I32,  i32,  0, 0)         \
    X( 3, II,   ii,   0, 0)         \
    X( 4, I16S, i16s, 0, 1)         \
    X( 5, I32S, i32s, 0, 1)         \
    X( 6, IS,   is,   0, 1)         \
    X( 7, SI16, si16, 1, 0)         \
    X( 8, SI32, si32, 1, 0)         \
    X( 9, SI,   si,   1, 0)         \
    X(10, SS,   ss,   1, 1)

#define HM_NVARIANTS 10

#endif
