//! The hashes selection needs: CRC-32 (what nginx's consistent hash uses, so keys land where
//! nginx puts them), FNV-1a with a final mix for Maglev, and a per-thread random source.

use std::cell::Cell;
use std::hash::{BuildHasher, RandomState};

/// The CRC-32 (IEEE 802.3, reflected) table, built at compile time: nginx's `ngx_crc32_long`
/// computes the same function, and a crate for 40 lines would add a dependency to audit.
const CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// A running CRC-32: `Crc32::new()`, `update`s, then `finish` (nginx's init/update/final).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Crc32(u32);

impl Crc32 {
    pub(crate) const fn new() -> Self {
        Crc32(0xffff_ffff)
    }

    pub(crate) fn update(mut self, bytes: &[u8]) -> Self {
        for b in bytes {
            self.0 = CRC_TABLE[((self.0 ^ u32::from(*b)) & 0xff) as usize] ^ (self.0 >> 8);
        }
        self
    }

    pub(crate) const fn finish(self) -> u32 {
        self.0 ^ 0xffff_ffff
    }
}

/// CRC-32 of `bytes` in one go.
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    Crc32::new().update(bytes).finish()
}

/// FNV-1a with `seed` folded in first, then SplitMix64's finaliser: FNV alone leaves the high
/// bits of short keys poorly mixed, and Maglev reduces modulo a prime, which needs all of them.
pub(crate) fn hash64(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in bytes {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    mix64(h)
}

/// SplitMix64's finaliser.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

thread_local! {
    /// Per-thread state: a pick draws without touching a shared cache line (a shared atomic
    /// counter would bounce between the workers on every request).
    static RNG: Cell<u64> = Cell::new(RandomState::new().hash_one(std::thread::current().id()) | 1);
}

/// A uniformly distributed `u64` (SplitMix64 over a per-thread counter). Not for secrets.
pub(crate) fn rand_u64() -> u64 {
    RNG.with(|s| {
        let x = s.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        s.set(x);
        mix64(x)
    })
}

/// A uniformly distributed number below `n` (> 0), by Lemire's multiply-shift (no division).
pub(crate) fn rand_below(n: u64) -> u64 {
    ((u128::from(rand_u64()) * u128::from(n)) >> 64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(Crc32::new().update(b"1234").update(b"56789").finish(), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn rand_below_stays_below() {
        assert!((0..10_000).all(|_| rand_below(3) < 3));
    }
}
