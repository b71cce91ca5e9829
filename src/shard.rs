//! Splitting tenants across replicas (`--shard.index N --shard.count M`) with no
//! coordination: a replica collects the tenants whose name hashes to N modulo M.
//!
//! The hash is FNV-1a 64 of the tenant name's UTF-8 bytes: fixed by its definition (not
//! std's per-process randomised hasher), so every replica and every version agree on
//! who owns a tenant. Adding a replica moves tenants (it is modulo, not consistent
//! hashing); for a StatefulSet that is a rollout, and each tenant's first refresh on
//! its new replica restores its series.

use std::fmt;

/// FNV-1a 64 offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64 prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 of `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV_OFFSET, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(FNV_PRIME)
    })
}

/// This replica's shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// `--shard.index`: 0-based.
    pub index: u32,
    /// `--shard.count`: replicas in total, at least 1.
    pub count: u32,
}

impl Default for Shard {
    /// The only shard: every tenant.
    fn default() -> Self {
        Self { index: 0, count: 1 }
    }
}

impl Shard {
    /// Checks `index < count` and `count >= 1`.
    pub fn new(index: u32, count: u32) -> Result<Self, String> {
        if count == 0 {
            return Err("--shard.count must be at least 1".into());
        }
        if index >= count {
            return Err(format!(
                "--shard.index {index} is out of range: with --shard.count {count} it must be 0..={}",
                count - 1
            ));
        }
        Ok(Self { index, count })
    }

    /// Whether this shard collects `tenant` (the tenant's `name`).
    pub fn owns(&self, tenant: &str) -> bool {
        fnv1a64(tenant.as_bytes()) % u64::from(self.count) == u64::from(self.index)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_reference_vectors() {
        // From the FNV reference test suite (draft-eastlake-fnv).
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn every_tenant_has_exactly_one_owner() {
        for count in 1..=7 {
            let shards: Vec<Shard> = (0..count).map(|i| Shard::new(i, count).unwrap()).collect();
            let mut per_shard = vec![0; count as usize];
            for t in 0..700 {
                let name = format!("tenant-{t}");
                let owners: Vec<_> = shards.iter().filter(|s| s.owns(&name)).collect();
                assert_eq!(owners.len(), 1, "{name} with {count} shards");
                per_shard[owners[0].index as usize] += 1;
            }
            // Roughly even: no shard gets less than half its fair share.
            assert!(
                per_shard.iter().all(|n| *n * 2 * count as usize >= 700),
                "{per_shard:?}"
            );
        }
    }

    #[test]
    fn bad_flags_are_explained() {
        assert!(Shard::new(0, 0).unwrap_err().contains("at least 1"));
        assert!(Shard::new(2, 2).unwrap_err().contains("0..=1"));
        assert_eq!(Shard::default().to_string(), "0 of 1");
    }
}
