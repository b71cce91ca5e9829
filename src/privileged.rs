//! Privileged roles joined into the registration counts (design.md, "Coverage as
//! security teams count it"): the index one `privileged_roles` refresh builds (who
//! holds which configured role, actively or as PIM-eligible) and the per-role coverage
//! a registration fold counts through it, after exclusions.
//!
//! Pure: no clock, no I/O. Like [`crate::membership`], the index is built once per
//! roles refresh and handed to the registration fold, which only looks users up in it
//! (rows + index ▸ counts).

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::membership::object_id;

/// Most entries in `privileged_roles`: two bits each (active, eligible) in a user's
/// mask.
pub const MAX_ROLES: usize = 32;

/// How a user holds a role (the `assignment` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Assignment {
    /// `roleAssignments` ∪ `roleAssignmentScheduleInstances`: permanent, time-bound
    /// and activated assignments.
    Active,
    /// `roleEligibilityScheduleInstances`: PIM-eligible, not activated.
    Eligible,
}

impl Assignment {
    /// Both, in exposition order.
    pub const ALL: [Assignment; 2] = [Assignment::Active, Assignment::Eligible];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Eligible => "eligible",
        }
    }

    /// The bit of role number `role` held this way.
    pub fn bit(self, role: usize) -> u64 {
        1 << (2 * role + self as usize)
    }
}

/// Who holds the configured roles in one tenant.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Privileged {
    /// The `role` label (the role's display name) of each configured entry, in config
    /// order; entry `i` owns bits `2i` (active) and `2i + 1` (eligible).
    pub roles: Vec<String>,
    /// User id ▸ the (role, assignment) bits it holds, directly or through a group.
    pub held: HashMap<u128, u64>,
    /// Why eligibility is not known (Graph refused PIM for licence), when it is not:
    /// the `eligible` series are left out rather than published as zeros.
    pub eligibility_unavailable: Option<String>,
}

impl fmt::Debug for Privileged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Privileged")
            .field("roles", &self.roles)
            .field("holders", &self.held.len())
            .field("eligibility_unavailable", &self.eligibility_unavailable)
            .finish()
    }
}

impl Privileged {
    /// Adds `bits` to user `id`.
    pub fn grant(&mut self, id: u128, bits: u64) {
        if bits != 0 {
            *self.held.entry(id).or_default() |= bits;
        }
    }

    /// The (role, assignment) pairs published: every role actively, and as eligible
    /// unless eligibility is unavailable.
    pub fn published(&self) -> Vec<(usize, Assignment)> {
        let eligible = self.eligibility_unavailable.is_none();
        (0..self.roles.len())
            .flat_map(|r| Assignment::ALL.map(|a| (r, a)))
            .filter(|(_, a)| eligible || *a == Assignment::Active)
            .collect()
    }
}

/// The snapshot-file form of [`Privileged`]: ids as 32 hex digits.
#[derive(Serialize, Deserialize)]
struct StoredPrivileged {
    roles: Vec<String>,
    held: Vec<(String, u64)>,
    eligibility_unavailable: Option<String>,
}

impl Serialize for Privileged {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        StoredPrivileged {
            roles: self.roles.clone(),
            held: self
                .held
                .iter()
                .map(|(id, m)| (format!("{id:032x}"), *m))
                .collect(),
            eligibility_unavailable: self.eligibility_unavailable.clone(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Privileged {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let stored = StoredPrivileged::deserialize(d)?;
        let mut p = Privileged {
            roles: stored.roles,
            eligibility_unavailable: stored.eligibility_unavailable,
            ..Privileged::default()
        };
        for (id, mask) in &stored.held {
            let id = u128::from_str_radix(id, 16).map_err(serde::de::Error::custom)?;
            p.held.insert(id, *mask);
        }
        Ok(p)
    }
}

/// Coverage of one role held one way, as `entra_privileged_*` exports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleCoverage {
    /// The `role` label.
    pub role: String,
    /// The `assignment` label.
    pub assignment: Assignment,
    /// Holders in the registration report, exclusions left out.
    pub users: u64,
    /// Of those, users for whom each feature holds, indexed like
    /// [`crate::aggregate::Feature::ALL`].
    pub features: [u64; 7],
    /// Of those, users by strongest registered method, weakest first.
    pub strengths: [u64; 4],
}

/// One `entra_privileged_user_info` series: user principal name, role label,
/// assignment and strength index (weakest first).
pub type ListedHolder = (String, String, Assignment, usize);

/// The opt-in list of privileged users (`list_privileged_users`): the `cap`
/// alphabetically first (user, role, assignment) entries, so the listed set does not
/// depend on page order; `total` says how many there were.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderList {
    /// Most entries listed (`max_listed_admins`).
    pub cap: usize,
    /// The listed entries, sorted.
    pub listed: BTreeSet<ListedHolder>,
    /// Entries seen with a user principal name, listed or not.
    pub total: u64,
}

impl HolderList {
    /// Adds one entry, keeping the first `cap`.
    fn add(&mut self, entry: ListedHolder) {
        self.total += 1;
        if self.listed.len() >= self.cap {
            match self.listed.last() {
                Some(last) if entry < *last => {
                    self.listed.pop_last();
                }
                _ => return,
            }
        }
        self.listed.insert(entry);
    }

    /// Whether the cap left entries out.
    pub fn is_cut(&self) -> bool {
        self.total > self.listed.len() as u64
    }
}

/// What the join of a registration report with the roles index counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivilegedCoverage {
    /// Per published (role, assignment), in config order, active first.
    pub roles: Vec<RoleCoverage>,
    /// The opt-in list, when asked for.
    pub holders: Option<HolderList>,
}

/// The join a registration fold runs per row that is not excluded.
#[derive(Debug, Clone)]
pub struct PrivilegedJoin {
    index: Arc<Privileged>,
    /// The bit of each entry of `coverage.roles`.
    bits: Vec<u64>,
    coverage: PrivilegedCoverage,
}

impl PrivilegedJoin {
    /// A join against `index`, listing holders by name (at most `list_cap`) when
    /// `Some`.
    pub fn new(index: Arc<Privileged>, list_cap: Option<usize>) -> Self {
        let published = index.published();
        let bits = published.iter().map(|(r, a)| a.bit(*r)).collect();
        let roles = published
            .iter()
            .map(|(r, a)| RoleCoverage {
                role: index.roles[*r].clone(),
                assignment: *a,
                users: 0,
                features: [0; 7],
                strengths: [0; 4],
            })
            .collect();
        Self {
            index,
            bits,
            coverage: PrivilegedCoverage {
                roles,
                holders: list_cap.map(|cap| HolderList {
                    cap,
                    listed: BTreeSet::new(),
                    total: 0,
                }),
            },
        }
    }

    /// Counts a user who is not excluded into the roles it holds, with its features and
    /// its strength (an index into the strengths, weakest first); `upn` is asked only
    /// for a holder when the list is on.
    pub fn count(
        &mut self,
        id: Option<&str>,
        upn: impl FnOnce() -> Option<String>,
        features: &[bool; 7],
        strength: usize,
    ) {
        let Some(mask) = id.and_then(|id| self.index.held.get(&object_id(id)).copied()) else {
            return;
        };
        let mut upn = match &self.coverage.holders {
            Some(_) => upn().filter(|u| !u.is_empty()),
            None => None,
        };
        let held = self.bits.iter().map(|b| mask & b != 0);
        for (c, held) in self.coverage.roles.iter_mut().zip(held) {
            if !held {
                continue;
            }
            c.users += 1;
            for (count, holds) in c.features.iter_mut().zip(features) {
                *count += u64::from(*holds);
            }
            if let Some(n) = c.strengths.get_mut(strength) {
                *n += 1;
            }
            if let (Some(list), Some(u)) = (&mut self.coverage.holders, &mut upn) {
                list.add((u.clone(), c.role.clone(), c.assignment, strength));
            }
        }
    }

    /// The counts.
    pub fn finish(self) -> PrivilegedCoverage {
        self.coverage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "9c1b7e44-3d2a-4f61-8e0b-5a7c6d2e1f30";
    const B: &str = "b7e2d9a1-6c4f-4a83-9d15-0e3f8c2b6a47";
    const C: &str = "2e5f8a3c-9b1d-4c76-a0e4-7d6b3f1c8e92";

    fn index() -> Privileged {
        let mut p = Privileged {
            roles: vec!["Global Administrator".into(), "User Administrator".into()],
            ..Privileged::default()
        };
        // A: Global active (twice: directly and through a group), User eligible.
        p.grant(object_id(A), Assignment::Active.bit(0));
        p.grant(object_id(A), Assignment::Active.bit(0));
        p.grant(object_id(A), Assignment::Eligible.bit(1));
        // B: Global eligible only.
        p.grant(object_id(B), Assignment::Eligible.bit(0));
        p.grant(object_id(C), 0);
        p
    }

    #[test]
    fn bits_are_per_role_and_assignment() {
        assert_eq!(Assignment::Active.bit(0), 1);
        assert_eq!(Assignment::Eligible.bit(0), 2);
        assert_eq!(Assignment::Eligible.bit(31), 1 << 63);
        let p = index();
        assert_eq!(p.held.len(), 2, "no bits, no entry");
        assert_eq!(p.held[&object_id(A)], 0b1001);
        let back: Privileged = serde_json::from_value(serde_json::to_value(&p).unwrap()).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn the_join_counts_each_user_once_per_role_and_assignment() {
        let mut j = PrivilegedJoin::new(Arc::new(index()), Some(10));
        let mut features = [false; 7];
        features[1] = true;
        j.count(Some(A), || Some("a@x".into()), &features, 3);
        j.count(Some(B), || Some("b@x".into()), &[false; 7], 0);
        j.count(Some(C), || panic!("C holds nothing"), &[true; 7], 1);
        j.count(None, || None, &[true; 7], 1);
        let c = j.finish();
        let got: Vec<_> = c
            .roles
            .iter()
            .map(|r| {
                (
                    r.role.as_str(),
                    r.assignment.label(),
                    r.users,
                    r.features[1],
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("Global Administrator", "active", 1, 1),
                ("Global Administrator", "eligible", 1, 0),
                ("User Administrator", "active", 0, 0),
                ("User Administrator", "eligible", 1, 1),
            ]
        );
        assert_eq!(c.roles[1].strengths, [1, 0, 0, 0]);
        assert_eq!(c.roles[3].strengths, [0, 0, 0, 1]);
        let list = c.holders.unwrap();
        assert_eq!(list.total, 3);
        assert_eq!(
            list.listed.first().unwrap(),
            &(
                "a@x".to_owned(),
                "Global Administrator".to_owned(),
                Assignment::Active,
                3
            )
        );
    }

    #[test]
    fn without_eligibility_only_active_is_published_and_the_list_is_bounded() {
        let mut p = index();
        p.eligibility_unavailable = Some("no P2".into());
        assert_eq!(
            p.published(),
            [(0, Assignment::Active), (1, Assignment::Active)]
        );
        let mut j = PrivilegedJoin::new(Arc::new(p), Some(1));
        j.count(Some(B), || Some("b@x".into()), &[false; 7], 0);
        j.count(Some(A), || Some("a@x".into()), &[false; 7], 0);
        let c = j.finish();
        assert_eq!(c.roles.len(), 2);
        assert_eq!((c.roles[0].users, c.roles[1].users), (1, 0));
        let list = c.holders.unwrap();
        assert!(!list.is_cut(), "B holds no active role: one entry in all");
        let mut j = PrivilegedJoin::new(Arc::new(index()), Some(1));
        j.count(Some(B), || Some("b@x".into()), &[false; 7], 0);
        j.count(Some(A), || Some("a@x".into()), &[false; 7], 0);
        let list = j.finish().holders.unwrap();
        assert!(list.is_cut());
        assert_eq!(list.listed.len(), 1);
        assert_eq!(list.listed.first().unwrap().0, "a@x");
    }
}
