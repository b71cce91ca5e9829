//! Deterministic hashing for the synthetic tenant, and process randomness for opaque
//! values (tokens, request ids).
//!
//! The tenant is a pure function of `(seed, index)`: every property of a user is drawn
//! from `hash(seed, index, salt)`, so any page can be generated from its index range
//! alone and a million users cost no memory.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// The splitmix64 finaliser: a cheap, well-mixed 64-bit bijection.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hash of a seed, a user index and a salt naming the property being drawn.
pub(crate) fn hash3(seed: u64, index: u64, salt: u64) -> u64 {
    mix(mix(seed ^ mix(index)) ^ salt.wrapping_mul(0xA24B_AED4_963E_E407))
}

/// Hash of a byte string (FNV-1a then mixed), for keying checksums on strings.
pub(crate) fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325 ^ seed;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    mix(h)
}

/// A stream of draws for one user: each call gives the next independent value.
pub(crate) struct Draws {
    state: u64,
}

impl Draws {
    /// Draws for `(seed, index)` under `salt`.
    pub(crate) fn new(seed: u64, index: u64, salt: u64) -> Self {
        Self {
            state: hash3(seed, index, salt),
        }
    }

    /// Next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.state)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (n > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// Formats 128 bits as a lowercase GUID string (8-4-4-4-12).
pub(crate) fn guid_from(hi: u64, lo: u64) -> String {
    // Version 4 / RFC 4122 variant bits, so the ids look like the ones Entra issues.
    let hi = (hi & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000;
    let lo = (lo & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xFFFF,
        hi & 0xFFFF,
        lo >> 48,
        lo & 0xFFFF_FFFF_FFFF
    )
}

/// Process randomness (seeded by the OS through std's `RandomState`) for values that
/// must not be guessable or derived from anything secret: access tokens, request ids.
pub(crate) fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    mix(h.finish())
}

/// A fresh random GUID (request ids, trace ids).
pub(crate) fn random_guid() -> String {
    guid_from(random_u64(), random_u64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_deterministic_and_seed_dependent() {
        let a: Vec<u64> = (0..4).map(|i| hash3(1, i, 7)).collect();
        let b: Vec<u64> = (0..4).map(|i| hash3(1, i, 7)).collect();
        let c: Vec<u64> = (0..4).map(|i| hash3(2, i, 7)).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mut d = Draws::new(1, 2, 3);
        let u = d.unit();
        assert!((0.0..1.0).contains(&u));
    }

    #[test]
    fn guid_shape_and_randomness() {
        let g = guid_from(1, 2);
        assert_eq!(g.len(), 36);
        assert_eq!(&g[14..15], "4");
        assert_ne!(random_guid(), random_guid());
    }
}
