//! The 8-byte string reference stored in a slot's string field.
//!
//! ```text
//! inline (len <= 7):  bit 63 = 1, bit 62 = utf8, bits 59..61 = len, bits 0..55 = bytes (LE)
//! arena  (len >= 8):  bit 63 = 0, bit 62 = utf8, bits 32..61 = len (30 bits), bits 0..31 = offset
//! ```
//!
//! A string of 7 bytes or fewer is always inline and a longer one always in the arena,
//! so two references name the same key iff (inline) their words are equal ignoring the
//! utf8 bit, or (arena) their lengths and arena bytes are equal.

/// Bit 63: the bytes are inline.
pub const INLINE: u64 = 1 << 63;
/// Bit 62: the string carries Perl's UTF-8 flag (not part of a key's identity).
pub const UTF8: u64 = 1 << 62;
/// Longest string kept inline.
pub const MAX_INLINE: usize = 7;
/// Longest key or value (2^30 - 1 bytes, api.md 8).
pub const MAX_LEN: usize = (1 << 30) - 1;

/// A string field's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StrRef(pub u64);

impl StrRef {
    /// Inline reference to `b` (at most 7 bytes).
    #[inline]
    pub fn inline(b: &[u8], utf8: bool) -> StrRef {
        debug_assert!(b.len() <= MAX_INLINE);
        let mut w = [0u8; 8];
        w[..b.len()].copy_from_slice(b);
        let payload = u64::from_le_bytes(w);
        StrRef(INLINE | if utf8 { UTF8 } else { 0 } | ((b.len() as u64) << 59) | payload)
    }
    /// Reference to `len` (>= 8) bytes at arena offset `off`.
    #[inline]
    pub fn arena(off: u32, len: usize, utf8: bool) -> StrRef {
        debug_assert!((MAX_INLINE + 1..=MAX_LEN).contains(&len));
        StrRef(if utf8 { UTF8 } else { 0 } | ((len as u64) << 32) | off as u64)
    }
    /// Bytes inline in the reference?
    #[inline]
    pub fn is_inline(self) -> bool {
        self.0 & INLINE != 0
    }
    /// Perl's UTF-8 flag.
    #[inline]
    pub fn utf8(self) -> bool {
        self.0 & UTF8 != 0
    }
    /// The same reference with the flag set to `utf8`.
    #[inline]
    pub fn with_utf8(self, utf8: bool) -> StrRef {
        StrRef((self.0 & !UTF8) | if utf8 { UTF8 } else { 0 })
    }
    /// Length in bytes.
    #[inline]
    pub fn len(self) -> usize {
        if self.is_inline() {
            ((self.0 >> 59) & 7) as usize
        } else {
            ((self.0 >> 32) & 0x3FFF_FFFF) as usize
        }
    }
    /// True for the empty string.
    #[inline]
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
    /// Arena offset (meaningful for arena references only).
    #[inline]
    pub fn offset(self) -> u32 {
        self.0 as u32
    }
    /// The inline bytes as a little-endian word (bytes beyond `len` may be anything a
    /// torn read produced; callers take `len` bytes).
    #[inline]
    pub fn inline_bytes(self) -> [u8; 8] {
        (self.0 & ((1 << 56) - 1)).to_le_bytes()
    }
    /// The word identifying an inline key: the reference without its utf8 bit.
    #[inline]
    pub fn identity(self) -> u64 {
        self.0 & !UTF8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_roundtrip_all_lengths() {
        for len in 0..=7usize {
            let b: Vec<u8> = (0..len as u8).map(|i| 0xF9u8.wrapping_add(i * 37)).collect();
            for utf8 in [false, true] {
                let r = StrRef::inline(&b, utf8);
                assert!(r.is_inline());
                assert_eq!(r.len(), len);
                assert_eq!(r.utf8(), utf8);
                assert_eq!(&r.inline_bytes()[..len], &b[..]);
                assert_eq!(r.identity(), StrRef::inline(&b, !utf8).identity());
            }
        }
        assert_eq!(StrRef::inline(b"", false).len(), 0);
        assert_ne!(StrRef::inline(b"a", false).identity(), StrRef::inline(b"a\0", false).identity());
        assert_ne!(StrRef::inline(b"", false).identity(), StrRef::inline(b"\0", false).identity());
    }

    #[test]
    fn arena_roundtrip() {
        for (off, len) in [(0u32, 8usize), (16, 9), (u32::MAX - 15, MAX_LEN), (4096, 1 << 20)] {
            for utf8 in [false, true] {
                let r = StrRef::arena(off, len, utf8);
                assert!(!r.is_inline());
                assert_eq!((r.offset(), r.len(), r.utf8()), (off, len, utf8));
                assert_eq!(r.with_utf8(!utf8).utf8(), !utf8);
                assert_eq!(r.with_utf8(!utf8).len(), len);
            }
        }
    }
}
