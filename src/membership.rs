//! Group membership joined into the registration counts (design.md, "Coverage as
//! security teams count it"): the membership index one `group_membership` refresh
//! builds, the `exclude_users` UPN patterns, and the per-group coverage a registration
//! fold counts through them.
//!
//! Pure: no clock, no I/O. The index is built once per membership refresh and handed to
//! the registration fold, which only looks users up in it (rows + index ▸ counts).

use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

/// Most entries in `groups`: one bit each in a user's membership mask (design.md).
pub const MAX_GROUPS: usize = 50;

/// A directory object id as a number: a GUID's 128 bits (Graph's ids are GUIDs), so
/// a member costs 16 bytes in the index instead of a 36-byte string and its
/// allocation. An id that is not a GUID (never seen from Graph) is hashed instead.
pub fn object_id(id: &str) -> u128 {
    if let Some(v) = guid_bits(id.as_bytes()) {
        return v;
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

/// The 128 bits of a GUID in its 36-character form (either case), else `None`. Run once
/// per registration row and member, so the `uuid` crate's table-driven parser rather
/// than a digit-by-digit loop; only the hyphenated form Graph sends is taken.
fn guid_bits(id: &[u8]) -> Option<u128> {
    if id.len() != 36 {
        return None;
    }
    uuid::Uuid::try_parse_ascii(id).ok().map(|u| u.as_u128())
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
/// excluded by `exclude_groups`. Built by a [`MembershipBuilder`], then only read.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Membership {
    /// The `group` label of each entry in `groups`, as written; bit `i` of a mask.
    pub groups: Vec<String>,
    /// User id ▸ the groups it is a transitive member of (bit per entry of `groups`).
    pub member_of: IdMap<u64>,
    /// Users in any of `exclude_groups`.
    pub excluded: IdMap<()>,
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
    /// Distinct user members of each group, members of excluded groups left out.
    pub fn members(&self) -> Vec<u64> {
        let mut counts = vec![0u64; self.groups.len()];
        for (id, mask) in self.member_of.iter() {
            if !self.excluded.contains(id) {
                for (g, count) in counts.iter_mut().enumerate() {
                    *count += (mask >> g) & 1;
                }
            }
        }
        counts
    }
}

/// Collects one membership refresh's (user, group) pairs as they are listed, then
/// builds the [`Membership`] index from them once.
#[derive(Debug, Default)]
pub struct MembershipBuilder {
    groups: Vec<String>,
    member_of: Vec<([u64; 2], u64)>,
    excluded: Vec<([u64; 2], ())>,
}

impl MembershipBuilder {
    /// An empty index for the groups labelled `groups`.
    pub fn new(groups: Vec<String>) -> Self {
        Self {
            groups,
            ..Self::default()
        }
    }

    /// Adds user `id` as a member of group number `group`.
    pub fn add_member(&mut self, group: usize, id: u128) {
        self.member_of.push((halves(id), 1 << group));
    }

    /// Adds user `id` as a member of an excluded group.
    pub fn add_excluded(&mut self, id: u128) {
        self.excluded.push((halves(id), ()));
    }

    /// The index: a user listed several times (nested groups, cycles, several
    /// groups) is one entry with the union of its groups.
    pub fn build(self) -> Membership {
        Membership {
            groups: self.groups,
            member_of: IdMap::from_pairs(self.member_of, |a, b| a | b),
            excluded: IdMap::from_pairs(self.excluded, |(), ()| ()),
        }
    }
}

/// A read-only map from object ids to small values, for the millions of lookups a
/// registration fold makes (one per row) into an index of up to millions of ids.
///
/// Sorted entries of 16 bytes of id and the value (24 bytes for a group mask, where
/// a `HashMap<u128, u64>` spends 32 and rounds its table up to a power of two), found
/// through a table of where each run of leading id bits starts. Graph's ids are
/// random GUIDs, so the runs are even: a lookup reads one table slot and a few
/// adjacent entries (about one cache miss, like a hash table), with no hashing.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct IdMap<V> {
    /// Sorted by id, ids distinct. The id is two halves so an entry needs 8-byte
    /// alignment, not `u128`'s 16.
    entries: Vec<([u64; 2], V)>,
    /// `starts[p]` is the first entry whose id's leading `bits` bits are `p`;
    /// `starts[p + 1]` ends that run (`2^bits + 1` slots).
    starts: Vec<u32>,
    bits: u32,
}

/// Ids per run of the start table, on average: a few entries, one or two cache lines.
const IDS_PER_RUN: usize = 4;

fn halves(id: u128) -> [u64; 2] {
    [(id >> 64) as u64, id as u64]
}

impl<V: Copy> IdMap<V> {
    /// The map of `pairs` (in any order); values of a repeated id are `merge`d.
    fn from_pairs(mut entries: Vec<([u64; 2], V)>, merge: impl Fn(V, V) -> V) -> Self {
        entries.sort_unstable_by_key(|&(id, _)| id);
        // In place: each id's first entry takes the union, the rest are dropped.
        let mut kept = 0;
        for i in 0..entries.len() {
            if kept > 0 && entries[kept - 1].0 == entries[i].0 {
                entries[kept - 1].1 = merge(entries[kept - 1].1, entries[i].1);
            } else {
                entries[kept] = entries[i];
                kept += 1;
            }
        }
        entries.truncate(kept);
        entries.shrink_to_fit();
        let runs = (kept / IDS_PER_RUN).max(1);
        // The largest power of two not above `runs`, at most 2^24 runs (64 MiB of
        // starts would be a 64-million-member index).
        let bits = (usize::BITS - 1 - runs.leading_zeros()).min(24);
        let mut starts = Vec::with_capacity((1 << bits) + 1);
        let mut at = 0;
        for prefix in 0..(1u64 << bits) {
            while at < entries.len() && prefix_of(entries[at].0, bits) < prefix {
                at += 1;
            }
            starts.push(at as u32);
        }
        starts.push(entries.len() as u32);
        Self {
            entries,
            starts,
            bits,
        }
    }

    /// The value of `id`, if it is in the map.
    pub fn get(&self, id: u128) -> Option<V> {
        if self.entries.is_empty() {
            return None;
        }
        let key = halves(id);
        self.find(self.run_of(key), key)
    }

    /// The value of every id of `ids`, in order, into `values`. Faster than one
    /// [`get`](Self::get) after another for a batch of ids spread over a large map:
    /// the table slots of all of them are read first, then the first entry of each
    /// run, loads that do not wait for one another, so their cache misses overlap;
    /// the searches then find their entries cached.
    pub fn get_batch(&self, ids: &[u128], values: &mut Vec<Option<V>>) {
        values.clear();
        if self.entries.is_empty() {
            values.resize(ids.len(), None);
            return;
        }
        let runs: Vec<(usize, usize)> = ids.iter().map(|&id| self.run_of(halves(id))).collect();
        let last = self.entries.len() - 1;
        let touched = runs.iter().fold(0u64, |sum, &(start, end)| {
            let first = self.entries[start.min(last)].0[0];
            let end = self.entries[end.saturating_sub(1).min(last)].0[0];
            sum.wrapping_add(first ^ end)
        });
        std::hint::black_box(touched);
        values.extend(
            ids.iter()
                .zip(runs)
                .map(|(&id, run)| self.find(run, halves(id))),
        );
    }

    /// Where the entries whose ids share `key`'s leading bits start and end.
    fn run_of(&self, key: [u64; 2]) -> (usize, usize) {
        let p = prefix_of(key, self.bits) as usize;
        (self.starts[p] as usize, self.starts[p + 1] as usize)
    }

    /// The value of `key` among the entries of `run`.
    fn find(&self, (start, end): (usize, usize), key: [u64; 2]) -> Option<V> {
        let run = &self.entries[start..end];
        run.binary_search_by(|(k, _)| k.cmp(&key))
            .ok()
            .map(|i| run[i].1)
    }

    /// Whether `id` is in the map.
    pub fn contains(&self, id: u128) -> bool {
        self.get(id).is_some()
    }

    /// Distinct ids.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map has no id.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every id with its value, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (u128, V)> + '_ {
        self.entries
            .iter()
            .map(|&([hi, lo], v)| ((u128::from(hi) << 64) | u128::from(lo), v))
    }
}

/// The leading `bits` bits of an id.
fn prefix_of(key: [u64; 2], bits: u32) -> u64 {
    if bits == 0 { 0 } else { key[0] >> (64 - bits) }
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
        let hex = |id: u128| format!("{id:032x}");
        StoredMembership {
            groups: self.groups.clone(),
            member_of: self.member_of.iter().map(|(id, m)| (hex(id), m)).collect(),
            excluded: self.excluded.iter().map(|(id, ())| hex(id)).collect(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Membership {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let stored = StoredMembership::deserialize(d)?;
        let parse = |s: &str| u128::from_str_radix(s, 16).map_err(serde::de::Error::custom);
        let mut m = MembershipBuilder::new(stored.groups);
        for (id, mask) in &stored.member_of {
            m.member_of.push((halves(parse(id)?), *mask));
        }
        for id in &stored.excluded {
            m.add_excluded(parse(id)?);
        }
        Ok(m.build())
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
    /// Users counted but not yet looked up: [`count`](Self::count) looks them up a
    /// batch at a time ([`IdMap::get_batch`]).
    pending: Vec<Pending>,
}

/// A user [`Join::count`] holds until its batch is looked up.
#[derive(Debug, Clone, Copy)]
struct Pending {
    id: u128,
    /// Bit `i`: feature `i` holds.
    features: u8,
    strength: u8,
}

/// Users looked up in one batch: about 40 KiB of ids and values, to look up
/// together so their cache misses overlap.
const JOIN_BATCH: usize = 1024;

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
            pending: Vec::new(),
        }
    }

    /// Whether the row of user `id` with `upn` is left out of coverage, and why;
    /// counted in [`Coverage`] when it is.
    pub fn exclusion(&mut self, id: Option<&str>, upn: Option<&str>) -> Option<Exclusion> {
        let by_group = match (&self.membership, id) {
            (Some(m), Some(id)) if !m.excluded.is_empty() => m.excluded.contains(object_id(id)),
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
        let Some(id) = id else {
            return;
        };
        if self
            .membership
            .as_ref()
            .is_none_or(|m| m.member_of.is_empty())
        {
            return;
        }
        let features = features
            .iter()
            .enumerate()
            .fold(0u8, |bits, (i, &holds)| bits | (u8::from(holds) << i));
        self.pending.push(Pending {
            id: object_id(id),
            features,
            strength: strength.min(usize::from(u8::MAX)) as u8,
        });
        if self.pending.len() >= JOIN_BATCH {
            self.count_pending();
        }
    }

    /// Looks the pending users up and counts them into their groups.
    fn count_pending(&mut self) {
        let Some(m) = &self.membership else {
            self.pending.clear();
            return;
        };
        let ids: Vec<u128> = self.pending.iter().map(|p| p.id).collect();
        let mut masks = Vec::with_capacity(ids.len());
        m.member_of.get_batch(&ids, &mut masks);
        for (user, mask) in self.pending.drain(..).zip(masks) {
            let mask = mask.unwrap_or(0);
            if mask == 0 {
                continue;
            }
            for (g, c) in self.coverage.groups.iter_mut().enumerate() {
                if (mask >> g) & 1 == 0 {
                    continue;
                }
                c.users += 1;
                for (i, count) in c.features.iter_mut().enumerate() {
                    *count += u64::from((user.features >> i) & 1);
                }
                if let Some(n) = c.strengths.get_mut(usize::from(user.strength)) {
                    *n += 1;
                }
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
                m.member_of.get(object_id(id)).unwrap_or(0)
            }
            _ => 0,
        }
    }

    /// The counts.
    pub fn finish(mut self) -> Coverage {
        self.count_pending();
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
    fn the_id_map_finds_every_id_and_no_other() {
        // A xorshift stream of ids, with edge ids at both ends of the space.
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for n in [0usize, 1, 3, 4, 5, 17, 1000, 40_000] {
            let mut ids: Vec<u128> = (0..n)
                .map(|_| (u128::from(next()) << 64) | u128::from(next()))
                .collect();
            if n > 2 {
                ids[0] = 0;
                ids[1] = u128::MAX;
            }
            // Every id listed twice, in two groups, out of order.
            let pairs: Vec<_> = ids
                .iter()
                .rev()
                .map(|&id| (halves(id), 1u64))
                .chain(ids.iter().map(|&id| (halves(id), 2u64)))
                .collect();
            let map = IdMap::from_pairs(pairs, |a, b| a | b);
            assert_eq!(map.len(), n);
            assert!(ids.iter().all(|&id| map.get(id) == Some(3)), "n = {n}");
            let absent = (0..1000).map(|_| (u128::from(next()) << 64) | u128::from(next()));
            assert!(
                absent
                    .filter(|id| !ids.contains(id))
                    .all(|id| map.get(id).is_none())
            );
            let mut sorted = ids.clone();
            sorted.sort_unstable();
            assert_eq!(map.iter().map(|(id, _)| id).collect::<Vec<_>>(), sorted);
            // About IDS_PER_RUN ids per run of the start table.
            assert!(map.starts.len() <= n / IDS_PER_RUN + 2, "n = {n}");
        }
    }

    #[test]
    fn members_are_distinct_and_exclusions_win() {
        let mut m = MembershipBuilder::new(vec!["Finance".into(), "Execs".into()]);
        for id in [A, B, A] {
            m.add_member(0, object_id(id));
        }
        m.add_member(1, object_id(B));
        m.add_member(1, object_id(C));
        m.add_excluded(object_id(C));
        let m = m.build();
        assert_eq!(m.members(), vec![2, 1]);
        let json = serde_json::to_value(&m).unwrap();
        let back: Membership = serde_json::from_value(json).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn the_join_excludes_then_counts_groups() {
        let mut m = MembershipBuilder::new(vec!["Finance".into(), "Execs".into()]);
        m.add_member(0, object_id(A));
        m.add_member(0, object_id(B));
        m.add_member(1, object_id(B));
        m.add_member(1, object_id(C));
        m.add_excluded(object_id(C));
        let mut j = Join::new(Some(Arc::new(m.build())), &["bg*@x".to_owned()]);
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
    fn the_join_counts_across_batches_as_one_by_one() {
        let guid = |n: u64| {
            format!(
                "{:08x}-0000-4000-8000-{:012x}",
                n * 2_654_435_761 % (1 << 32),
                n
            )
        };
        let mut b = MembershipBuilder::new(vec!["a".into(), "b".into(), "c".into()]);
        for n in 0..3000u64 {
            b.add_member((n % 3) as usize, object_id(&guid(n)));
            if n % 5 == 0 {
                b.add_member(2, object_id(&guid(n)));
            }
        }
        let m = Arc::new(b.build());
        let mut j = Join::new(Some(m.clone()), &[]);
        let mut expected = vec![(0u64, [0u64; 7], [0u64; 4]); 3];
        // 5,000 rows: members and users in no group, over several batches.
        for n in 0..5000u64 {
            let mut features = [false; 7];
            features[(n % 7) as usize] = true;
            let strength = (n % 4) as usize;
            j.count(Some(&guid(n)), &features, strength);
            let mask = m.member_of.get(object_id(&guid(n))).unwrap_or(0);
            for (g, e) in expected.iter_mut().enumerate() {
                if (mask >> g) & 1 == 1 {
                    e.0 += 1;
                    e.1[(n % 7) as usize] += 1;
                    e.2[strength] += 1;
                }
            }
        }
        let c = j.finish();
        let got: Vec<_> = c
            .groups
            .iter()
            .map(|g| (g.users, g.features, g.strengths))
            .collect();
        assert_eq!(got, expected);
        assert_eq!(c.groups[0].users, 1000);
        assert_eq!(c.groups[2].users, 1000 + 400);
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
