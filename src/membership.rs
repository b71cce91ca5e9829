//! Group membership joined into the registration counts (design.md, "Coverage as
//! security teams count it"): the membership index one `group_membership` refresh
//! builds, the `exclude_users` UPN patterns, and the per-group coverage a registration
//! fold counts through them.
//!
//! Pure: no clock, no I/O. The index is built once per membership refresh and handed to
//! the registration fold, which only looks users up in it (rows + index ▸ counts).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

/// Most entries in `groups`: one bit each in a user's membership mask (design.md).
pub const MAX_GROUPS: usize = 50;

/// A directory object id as a number: a GUID's 128 bits (Graph's ids are GUIDs), so
/// a member costs 16 bytes in the index instead of a 36-byte string and its
/// allocation. An id that is not a GUID (never seen from Graph) is hashed instead.
pub fn object_id(id: &str) -> u128 {
    let hex = id.as_bytes();
    if hex.len() == 36 {
        let mut v: u128 = 0;
        let mut ok = true;
        for (i, &b) in hex.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                ok &= b == b'-';
                continue;
            }
            match (b as char).to_digit(16) {
                Some(d) => v = (v << 4) | u128::from(d),
                None => ok = false,
            }
        }
        if ok {
            return v;
        }
    }
    // Two differently seeded SipHashes: collisions between a non-GUID id and anything
    // else are as unlikely as between GUIDs.
    let half = |seed: u64| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        seed.hash(&mut h);
        id.to_ascii_lowercase().hash(&mut h);
        h.finish()
    };
    (u128::from(half(1)) << 64) | u128::from(half(2))
}

/// Whether a configured group is named by object id (else by display name).
pub fn is_object_id(value: &str) -> bool {
    value.len() == 36
        && value.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The membership index of one tenant: who is in which configured group, and who is
/// excluded by `exclude_groups`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Membership {
    /// The `group` label of each entry in `groups`, as written; bit `i` of a mask.
    pub groups: Vec<String>,
    /// User id ▸ the groups it is a transitive member of (bit per entry of `groups`).
    pub member_of: HashMap<u128, u64>,
    /// Users in any of `exclude_groups`.
    pub excluded: HashSet<u128>,
}

impl fmt::Debug for Membership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the ids: an index holds up to millions.
        f.debug_struct("Membership")
            .field("groups", &self.groups)
            .field("members", &self.member_of.len())
            .field("excluded", &self.excluded.len())
            .finish()
    }
}

impl Membership {
    /// An empty index for the groups labelled `groups`.
    pub fn new(groups: Vec<String>) -> Self {
        Self {
            groups,
            ..Self::default()
        }
    }

    /// Adds user `id` as a member of group number `group`.
    pub fn add_member(&mut self, group: usize, id: u128) {
        *self.member_of.entry(id).or_default() |= 1 << group;
    }

    /// Adds user `id` as a member of an excluded group.
    pub fn add_excluded(&mut self, id: u128) {
        self.excluded.insert(id);
    }

    /// Distinct user members of each group, members of excluded groups left out.
    pub fn members(&self) -> Vec<u64> {
        let mut counts = vec![0u64; self.groups.len()];
        for (id, mask) in &self.member_of {
            if !self.excluded.contains(id) {
                for (g, count) in counts.iter_mut().enumerate() {
                    *count += (mask >> g) & 1;
                }
            }
        }
        counts
    }
}

/// The snapshot-file form of [`Membership`]: ids as 32 hex digits.
#[derive(Serialize, Deserialize)]
struct StoredMembership {
    groups: Vec<String>,
    member_of: Vec<(String, u64)>,
    excluded: Vec<String>,
}

impl Serialize for Membership {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let hex = |id: &u128| format!("{id:032x}");
        StoredMembership {
            groups: self.groups.clone(),
            member_of: self.member_of.iter().map(|(id, m)| (hex(id), *m)).collect(),
            excluded: self.excluded.iter().map(hex).collect(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Membership {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let stored = StoredMembership::deserialize(d)?;
        let parse = |s: &str| u128::from_str_radix(s, 16).map_err(serde::de::Error::custom);
        let mut m = Membership::new(stored.groups);
        for (id, mask) in &stored.member_of {
            m.member_of.insert(parse(id)?, *mask);
        }
        for id in &stored.excluded {
            m.excluded.insert(parse(id)?);
        }
        Ok(m)
    }
}

/// An `exclude_users` pattern: `*` (any run of characters) and `?` (one character)
/// over the whole UPN, case-insensitively; every other character is literal.
///
/// Hand-written rather than `globset`: the contract allows only `*` and `?`, and
/// globset would also give `[`, `{`, `\` and `**` meanings an operator did not intend
/// in a UPN (escaping them first would be the larger code); a tenant has a handful of
/// patterns, so matching them one by one costs nothing next to parsing the row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpnPattern {
    chars: Vec<char>,
}

impl UpnPattern {
    /// The pattern as written in the config.
    pub fn new(pattern: &str) -> Self {
        Self {
            chars: lower(pattern),
        }
    }

    /// Whether `upn` matches the whole pattern.
    pub fn matches(&self, upn: &str) -> bool {
        glob_match(&self.chars, &lower(upn))
    }
}

fn lower(s: &str) -> Vec<char> {
    s.chars().flat_map(char::to_lowercase).collect()
}

/// Wildcard matching with one backtrack point (the last `*`): linear in practice,
/// O(pattern × text) at worst, never exponential.
fn glob_match(p: &[char], t: &[char]) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Coverage of one configured group, as `entra_group_*` exports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupCoverage {
    /// The `group` label.
    pub group: String,
    /// Transitive user members after exclusions (`entra_group_members`).
    pub members: u64,
    /// Of those, users in the registration report (`entra_group_users`).
    pub users: u64,
    /// Of those, users for whom each feature holds, indexed like
    /// [`crate::aggregate::Feature::ALL`].
    pub features: [u64; 7],
    /// Of those, users by strongest registered method, indexed like
    /// `reports::strength::Strength::ALL` (weakest first).
    #[serde(default)]
    pub strengths: [u64; 4],
}

/// What the join of a registration report with the membership index counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    /// Users of the report left out because they are in an excluded group (also
    /// those a pattern matches too).
    pub excluded_by_group: u64,
    /// Users left out because only a pattern matches them.
    pub excluded_by_pattern: u64,
    /// Per configured group, in config order; empty while the membership is unknown.
    pub groups: Vec<GroupCoverage>,
}

/// Why a user is left out of coverage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exclusion {
    /// A member of an `exclude_groups` group.
    Group,
    /// Matched by an `exclude_users` pattern.
    Pattern,
}

/// The join a registration fold runs per row: exclusions first, then the user's
/// groups. Built from the index of the last membership refresh.
#[derive(Debug, Clone)]
pub struct Join {
    membership: Option<std::sync::Arc<Membership>>,
    patterns: Vec<UpnPattern>,
    coverage: Coverage,
}

impl Join {
    /// A join against `membership` (`None`: not known, no group coverage) and the
    /// `exclude_users` patterns.
    pub fn new(membership: Option<std::sync::Arc<Membership>>, patterns: &[String]) -> Self {
        let groups = membership
            .as_ref()
            .map(|m| {
                let members = m.members();
                m.groups
                    .iter()
                    .zip(members)
                    .map(|(group, members)| GroupCoverage {
                        group: group.clone(),
                        members,
                        ..GroupCoverage::default()
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            membership,
            patterns: patterns.iter().map(|p| UpnPattern::new(p)).collect(),
            coverage: Coverage {
                groups,
                ..Coverage::default()
            },
        }
    }

    /// Whether the row of user `id` with `upn` is left out of coverage, and why;
    /// counted in [`Coverage`] when it is.
    pub fn exclusion(&mut self, id: Option<&str>, upn: Option<&str>) -> Option<Exclusion> {
        let by_group = match (&self.membership, id) {
            (Some(m), Some(id)) if !m.excluded.is_empty() => m.excluded.contains(&object_id(id)),
            _ => false,
        };
        if by_group {
            self.coverage.excluded_by_group += 1;
            return Some(Exclusion::Group);
        }
        if let Some(upn) = upn
            && self.patterns.iter().any(|p| p.matches(upn))
        {
            self.coverage.excluded_by_pattern += 1;
            // A pattern-excluded member is not one of the group's members either.
            let mask = self.mask_of(id);
            for (g, c) in self.coverage.groups.iter_mut().enumerate() {
                c.members = c.members.saturating_sub((mask >> g) & 1);
            }
            return Some(Exclusion::Pattern);
        }
        None
    }

    /// Counts a user who is not excluded into the groups it is a member of, with its
    /// features and its strength (an index into the strengths, weakest first).
    pub fn count(&mut self, id: Option<&str>, features: &[bool; 7], strength: usize) {
        let mask = self.mask_of(id);
        if mask == 0 {
            return;
        }
        for (g, c) in self.coverage.groups.iter_mut().enumerate() {
            if (mask >> g) & 1 == 0 {
                continue;
            }
            c.users += 1;
            for (count, holds) in c.features.iter_mut().zip(features) {
                *count += u64::from(*holds);
            }
            if let Some(n) = c.strengths.get_mut(strength) {
                *n += 1;
            }
        }
    }

    /// Whether the join counts any group (else a row's strength is not needed).
    pub fn has_groups(&self) -> bool {
        !self.coverage.groups.is_empty()
    }

    /// Whether any pattern or membership is joined (else the join does nothing).
    pub fn is_active(&self) -> bool {
        self.membership.is_some() || !self.patterns.is_empty()
    }

    /// The groups user `id` is a member of, a bit each.
    fn mask_of(&self, id: Option<&str>) -> u64 {
        match (&self.membership, id) {
            (Some(m), Some(id)) if !m.member_of.is_empty() => {
                m.member_of.get(&object_id(id)).copied().unwrap_or(0)
            }
            _ => 0,
        }
    }

    /// The counts.
    pub fn finish(self) -> Coverage {
        self.coverage
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const A: &str = "9c1b7e44-3d2a-4f61-8e0b-5a7c6d2e1f30";
    const B: &str = "b7e2d9a1-6c4f-4a83-9d15-0e3f8c2b6a47";
    const C: &str = "2e5f8a3c-9b1d-4c76-a0e4-7d6b3f1c8e92";

    #[test]
    fn guids_become_their_bits_case_insensitively() {
        assert_eq!(object_id(A), 0x9c1b7e44_3d2a_4f61_8e0b_5a7c6d2e1f30_u128);
        assert_eq!(object_id(A), object_id(&A.to_uppercase()));
        assert_ne!(object_id("not-a-guid"), object_id("not-a-guid2"));
        assert_eq!(object_id("x"), object_id("X"));
        assert!(is_object_id(A) && !is_object_id("Finance") && !is_object_id(&A[1..]));
    }

    #[test]
    fn patterns_match_the_whole_upn_ignoring_case() {
        let p = UpnPattern::new("breakglass*@contoso.com");
        assert!(p.matches("breakglass1@contoso.com"));
        assert!(p.matches("BreakGlass@Contoso.COM"));
        assert!(!p.matches("x-breakglass1@contoso.com"), "whole UPN");
        assert!(!p.matches("breakglass1@contoso.com.evil"), "whole UPN");
        let q = UpnPattern::new("adm?n@*");
        assert!(q.matches("admin@x") && q.matches("admXn@") && !q.matches("adn@x"));
        // Only * and ? are special.
        assert!(UpnPattern::new("[a]{b}\\@x").matches("[A]{B}\\@X"));
        assert!(!UpnPattern::new("[a]@x").matches("a@x"));
        assert!(UpnPattern::new("*").matches("") && UpnPattern::new("**a*").matches("ba"));
        assert!(UpnPattern::new("ÉMILE@x").matches("émile@X"));
        assert!(!UpnPattern::new("a*b*c").matches(&"ab".repeat(2000)));
    }

    #[test]
    fn members_are_distinct_and_exclusions_win() {
        let mut m = Membership::new(vec!["Finance".into(), "Execs".into()]);
        for id in [A, B, A] {
            m.add_member(0, object_id(id));
        }
        m.add_member(1, object_id(B));
        m.add_member(1, object_id(C));
        m.add_excluded(object_id(C));
        assert_eq!(m.members(), vec![2, 1]);
        let json = serde_json::to_value(&m).unwrap();
        let back: Membership = serde_json::from_value(json).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn the_join_excludes_then_counts_groups() {
        let mut m = Membership::new(vec!["Finance".into(), "Execs".into()]);
        m.add_member(0, object_id(A));
        m.add_member(0, object_id(B));
        m.add_member(1, object_id(B));
        m.add_member(1, object_id(C));
        m.add_excluded(object_id(C));
        let mut j = Join::new(Some(Arc::new(m)), &["bg*@x".to_owned()]);
        let on = [true; 7];
        // C: excluded group (and the pattern too): counts under group once.
        assert_eq!(j.exclusion(Some(C), Some("bg1@x")), Some(Exclusion::Group));
        // B: pattern only; it leaves both groups' members.
        assert_eq!(
            j.exclusion(Some(B), Some("BG2@x")),
            Some(Exclusion::Pattern)
        );
        assert_eq!(j.exclusion(Some(A), Some("a@x")), None);
        j.count(Some(A), &on, 3);
        assert_eq!(j.exclusion(None, None), None);
        j.count(None, &[false; 7], 0);
        let c = j.finish();
        assert_eq!((c.excluded_by_group, c.excluded_by_pattern), (1, 1));
        let g: Vec<_> = c.groups.iter().map(|g| (g.members, g.users)).collect();
        assert_eq!(g, vec![(1, 1), (0, 0)]);
        assert_eq!(c.groups[0].features, [1; 7]);
        assert_eq!(c.groups[0].strengths, [0, 0, 0, 1]);
    }

    #[test]
    fn without_membership_only_patterns_apply() {
        let mut j = Join::new(None, &["x@y".to_owned()]);
        assert!(j.is_active());
        assert_eq!(j.exclusion(Some(A), Some("X@Y")), Some(Exclusion::Pattern));
        assert_eq!(j.exclusion(Some(A), Some("z@y")), None);
        j.count(Some(A), &[true; 7], 1);
        assert!(j.finish().groups.is_empty());
        assert!(!Join::new(None, &[]).is_active());
    }
}
