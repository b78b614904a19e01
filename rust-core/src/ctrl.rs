//! Control bytes and 8-wide SWAR group matching.
//!
//! Each slot has one control byte: `EMPTY` (0xFF), `DELETED` (0x80, a tombstone, also
//! used as "pending" during an in-place rehash) or, for a full slot, `h2` = the top 7
//! bits of the key's hash (0..=0x7F). Groups are 8 consecutive control bytes aligned to
//! 8, i.e. one naturally aligned u64 that is loaded with one atomic load and matched
//! with a few ALU operations (byte i of the word is slot `group * 8 + i`).

/// A control byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ctrl(pub u8);

impl Ctrl {
    /// Never used since the last rehash: a probe may stop at a group containing one.
    pub const EMPTY: Ctrl = Ctrl(0xFF);
    /// Tombstone (or "pending" inside a rehash).
    pub const DELETED: Ctrl = Ctrl(0x80);

    /// The control byte of a full slot whose key hashes to `h`.
    #[inline]
    pub fn full(h: u64) -> Ctrl {
        Ctrl(h2(h))
    }
    /// Holds an entry?
    #[inline]
    pub fn is_full(self) -> bool {
        self.0 & 0x80 == 0
    }
    /// EMPTY?
    #[inline]
    pub fn is_empty(self) -> bool {
        self == Ctrl::EMPTY
    }
}

/// Top 7 bits of the hash: the control byte of a full slot.
#[inline]
pub fn h2(h: u64) -> u8 {
    (h >> 57) as u8
}

const LSB: u64 = 0x0101_0101_0101_0101;
const MSB: u64 = 0x8080_8080_8080_8080;

/// A set of byte positions within a group: bit 7 of byte i set = position i.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BitMask(pub u64);

impl BitMask {
    /// No position set?
    #[inline]
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Lowest position set (0..8).
    #[inline]
    pub fn lowest(self) -> Option<usize> {
        if self.0 == 0 {
            None
        } else {
            Some(self.0.trailing_zeros() as usize / 8)
        }
    }
}

impl Iterator for BitMask {
    type Item = usize;
    #[inline]
    fn next(&mut self) -> Option<usize> {
        let i = self.lowest()?;
        self.0 &= self.0 - 1;
        Some(i)
    }
}

/// Positions whose byte may equal `h2` (< 0x80). Classic SWAR "has zero byte" on
/// `group ^ broadcast(h2)`: every true match is reported; a false positive can only
/// appear above a true match and only on a full byte, so callers compare the key
/// anyway. EMPTY and DELETED bytes never match.
#[inline]
pub fn match_h2(group: u64, h2: u8) -> BitMask {
    let x = group ^ (LSB * h2 as u64);
    BitMask(x.wrapping_sub(LSB) & !x & MSB)
}

/// Positions holding EMPTY (0xFF: bits 7 and 6 both set; DELETED 0x80 has bit 6 clear,
/// full bytes have bit 7 clear).
#[inline]
pub fn match_empty(group: u64) -> BitMask {
    BitMask(group & (group << 1) & MSB)
}

/// Positions holding EMPTY or DELETED (bit 7 set).
#[inline]
pub fn match_empty_or_deleted(group: u64) -> BitMask {
    BitMask(group & MSB)
}

/// Positions holding a full slot (bit 7 clear).
#[inline]
pub fn match_full(group: u64) -> BitMask {
    BitMask(!group & MSB)
}

/// The first step of an in-place rehash: every full byte becomes DELETED ("pending")
/// and every special byte (EMPTY or DELETED) becomes EMPTY. (hashbrown's
/// `convert_special_to_empty_and_full_to_deleted`.)
#[inline]
pub fn full_to_pending_special_to_empty(group: u64) -> u64 {
    let full = !group & MSB;
    (!full).wrapping_add(full >> 7)
}

/// Byte `i` (0..8) of a group.
#[inline]
pub fn byte(group: u64, i: usize) -> Ctrl {
    Ctrl((group >> (i * 8)) as u8)
}

/// `group` with byte `i` replaced by `c`.
#[inline]
pub fn with_byte(group: u64, i: usize, c: Ctrl) -> u64 {
    let sh = i * 8;
    (group & !(0xFFu64 << sh)) | ((c.0 as u64) << sh)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(bytes: [u8; 8]) -> u64 {
        u64::from_le_bytes(bytes)
    }

    #[test]
    fn matching_finds_every_true_match() {
        // Exhaustive over a few shapes: every position holding h2 is reported, specials never.
        let shapes: [[u8; 8]; 5] = [
            [0x12, 0xFF, 0x80, 0x12, 0x00, 0x7F, 0x13, 0x11],
            [0xFF; 8],
            [0x80; 8],
            [0x00, 0x01, 0x00, 0x01, 0x02, 0x00, 0x7F, 0x7E],
            [0x7F; 8],
        ];
        for s in shapes {
            let g = group(s);
            for h in 0u8..0x80 {
                let got: Vec<usize> = match_h2(g, h).collect();
                for (i, &b) in s.iter().enumerate() {
                    if b == h {
                        assert!(got.contains(&i), "missed {h:#x} at {i} in {s:x?}");
                    }
                }
                for &i in &got {
                    assert!(s[i] & 0x80 == 0, "special byte matched");
                }
                if let Some(first) = match_h2(g, h).lowest() {
                    assert_eq!(s[first], h, "lowest match must be a true match");
                }
            }
            let empty: Vec<usize> = match_empty(g).collect();
            let eod: Vec<usize> = match_empty_or_deleted(g).collect();
            let full: Vec<usize> = match_full(g).collect();
            for (i, &b) in s.iter().enumerate() {
                assert_eq!(empty.contains(&i), b == 0xFF);
                assert_eq!(eod.contains(&i), b & 0x80 != 0);
                assert_eq!(full.contains(&i), b & 0x80 == 0);
            }
        }
    }

    #[test]
    fn pending_conversion() {
        let g = group([0x12, 0xFF, 0x80, 0x00, 0x7F, 0xFF, 0x80, 0x01]);
        let c = full_to_pending_special_to_empty(g);
        assert_eq!(c.to_le_bytes(), [0x80, 0xFF, 0xFF, 0x80, 0x80, 0xFF, 0xFF, 0x80]);
    }

    #[test]
    fn byte_access() {
        let g = group([1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(byte(g, 3), Ctrl(4));
        let g2 = with_byte(g, 3, Ctrl::EMPTY);
        assert_eq!(g2.to_le_bytes(), [1, 2, 3, 0xFF, 5, 6, 7, 8]);
        assert!(Ctrl(0x7F).is_full() && !Ctrl::EMPTY.is_full() && !Ctrl::DELETED.is_full());
        assert!(Ctrl::full(u64::MAX).is_full());
        assert_eq!(Ctrl::full(u64::MAX).0, 0x7F);
    }
}
