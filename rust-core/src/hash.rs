//! Seeded hashing and the split of a hash into its uses.
//!
//! Every map has a random 64-bit seed chosen at creation (decisions 2). Strings hash
//! with XXH3-64 keyed by the seed. Integers (after narrowing to the variant width, as
//! i64) go through a keyed folded-multiply mixer: two 64x64->128 multiplications whose
//! halves are xor-folded, enough to spread every input bit over all output bits.
//!
//! Bits of the hash: `h2` (control byte) = bits 57..63, slot = the low bits (masked by
//! capacity - 1, at most 31 bits), shard = bits 40..51 (independent of both).

use xxhash_rust::xxh3::xxh3_64_with_seed;

const K0: u64 = 0x9E37_79B9_7F4A_7C15;
const K1: u64 = 0xD6E8_FEB8_6659_FD93;
const K2: u64 = 0xA076_1D64_78BD_642F;

#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let p = (a as u128).wrapping_mul(b as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

/// Hash of an integer key (already narrowed) under `seed`.
#[inline]
pub fn hash_int(v: i64, seed: u64) -> u64 {
    let x = fold(v as u64 ^ seed, K0 ^ seed.rotate_left(23));
    fold(x ^ K2, K1 ^ seed)
}

/// Hash of a string key (its bytes only; the UTF-8 flag is not part of identity).
#[inline]
pub fn hash_bytes(b: &[u8], seed: u64) -> u64 {
    xxh3_64_with_seed(b, seed)
}

/// Shard index bits (for sharded maps): bits 40..51 of the hash, `count` a power of two.
#[inline]
pub fn shard_of(h: u64, count: u32) -> u32 {
    ((h >> 40) as u32) & (count.max(1) - 1) & 0xFFF
}

/// A fresh random seed from the kernel (getrandom), falling back to time and pid mixing
/// if the call is unavailable.
pub fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    let mut got = 0usize;
    while got < 8 {
        // SAFETY: the destination range b[got..8] is valid writable memory of 8 - got bytes.
        let n = unsafe { libc::getrandom(b.as_mut_ptr().add(got).cast(), 8 - got, 0) };
        if n < 0 {
            if crate::error::errno() == libc::EINTR {
                continue;
            }
            break;
        }
        got += n as usize;
    }
    if got == 8 {
        return u64::from_le_bytes(b);
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() } as u64;
    fold(t ^ K2, K0 ^ pid.rotate_left(32)) ^ (&b as *const _ as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_change_hashes() {
        assert_ne!(hash_int(1, 1), hash_int(1, 2));
        assert_ne!(hash_bytes(b"abc", 1), hash_bytes(b"abc", 2));
        assert_ne!(random_seed(), random_seed());
    }

    #[test]
    fn int_hash_spreads_bits() {
        // Sequential keys must spread over h2 values and low bits alike.
        let seed = 0x1234_5678_9ABC_DEF0;
        let mut h2s = [0u32; 128];
        let mut lows = [0u32; 256];
        for i in 0..65536i64 {
            let h = hash_int(i, seed);
            h2s[(h >> 57) as usize] += 1;
            lows[(h & 255) as usize] += 1;
        }
        for c in h2s {
            assert!((350..=700).contains(&c), "h2 bucket {c}");
        }
        for c in lows {
            assert!((160..=360).contains(&c), "low bucket {c}");
        }
    }
}
