//! Per-user registration rows folded into the counts behind the `entra_users*` families.
//!
//! Pure: no clock, no I/O. Both registration sources fold into [`RegistrationCounts`];
//! the label conventions (design.md, "Metrics") live here and only here.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `user_type` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum UserType {
    /// `member`
    Member,
    /// `guest`
    Guest,
    /// Anything else: null, missing, `unknownFutureValue`, or the legacy report.
    Unknown,
}

impl UserType {
    /// From Graph's `userType` string.
    pub fn from_graph(value: Option<&str>) -> Self {
        match value {
            Some("member") => Self::Member,
            Some("guest") => Self::Guest,
            _ => Self::Unknown,
        }
    }

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Guest => "guest",
            Self::Unknown => "unknown",
        }
    }
}

/// `role` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// `isAdmin` true.
    Admin,
    /// `isAdmin` false.
    User,
    /// `isAdmin` null or missing, or the legacy report.
    Unknown,
}

impl Role {
    /// From Graph's nullable `isAdmin`.
    pub fn from_is_admin(value: Option<bool>) -> Self {
        match value {
            Some(true) => Self::Admin,
            Some(false) => Self::User,
            None => Self::Unknown,
        }
    }

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::User => "user",
            Self::Unknown => "unknown",
        }
    }
}

/// `feature` label values, in exposition order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Feature {
    /// `isMfaRegistered`
    MfaRegistered,
    /// `isMfaCapable`
    MfaCapable,
    /// `isSsprRegistered` (legacy `isRegistered`)
    SsprRegistered,
    /// `isSsprEnabled` (legacy `isEnabled`)
    SsprEnabled,
    /// `isSsprCapable` (legacy `isCapable`)
    SsprCapable,
    /// `isPasswordlessCapable`
    PasswordlessCapable,
    /// `isSystemPreferredAuthenticationMethodEnabled`
    SystemPreferredMfaEnabled,
}

impl Feature {
    /// Every feature.
    pub const ALL: [Feature; 7] = [
        Self::MfaRegistered,
        Self::MfaCapable,
        Self::SsprRegistered,
        Self::SsprEnabled,
        Self::SsprCapable,
        Self::PasswordlessCapable,
        Self::SystemPreferredMfaEnabled,
    ];

    /// The features the legacy `credentialUserRegistrationDetails` report carries.
    pub const LEGACY: [Feature; 4] = [
        Self::MfaRegistered,
        Self::SsprRegistered,
        Self::SsprEnabled,
        Self::SsprCapable,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::MfaRegistered => "mfa_registered",
            Self::MfaCapable => "mfa_capable",
            Self::SsprRegistered => "sspr_registered",
            Self::SsprEnabled => "sspr_enabled",
            Self::SsprCapable => "sspr_capable",
            Self::PasswordlessCapable => "passwordless_capable",
            Self::SystemPreferredMfaEnabled => "system_preferred_mfa_enabled",
        }
    }
}

/// Label values of `entra_users_by_registered_methods{methods}`.
pub const METHOD_COUNT_BUCKETS: [&str; 6] = ["0", "1", "2", "3", "4", "5+"];

/// The preferred-method label for users without one (`""`, null, missing or `none`).
pub const NO_PREFERRED_METHOD: &str = "none";

/// Which features and families a source reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// `userRegistrationDetails`: every feature, preferred methods.
    UserRegistrationDetails,
    /// `credentialUserRegistrationDetails`: four features, no preferred method.
    CredentialUserRegistrationDetails,
}

impl Source {
    /// The features this source reports.
    pub fn features(self) -> &'static [Feature] {
        match self {
            Self::UserRegistrationDetails => &Feature::ALL,
            Self::CredentialUserRegistrationDetails => &Feature::LEGACY,
        }
    }

    /// Whether the source carries a preferred method.
    pub fn has_preferred_method(self) -> bool {
        matches!(self, Self::UserRegistrationDetails)
    }
}

/// Counts for one `(user_type, role)` group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupCounts {
    /// Users in the group.
    pub users: u64,
    /// Users for whom each feature holds, indexed like [`Feature::ALL`].
    pub features: [u64; 7],
    /// Users with each method registered, by Graph's string.
    pub methods: HashMap<String, u64>,
    /// Users by preferred method ([`NO_PREFERRED_METHOD`] when none).
    pub preferred: HashMap<String, u64>,
    /// Users by number of distinct registered methods, indexed like [`METHOD_COUNT_BUCKETS`].
    pub method_counts: [u64; 6],
    /// Users by strongest registered method, indexed like [`crate::reports::strength::Strength::ALL`] (zeros
    /// where the source has no strength; absent from snapshots before strength).
    #[serde(default)]
    pub strength: StrengthCounts,
}

impl GroupCounts {
    /// Users for whom `feature` holds.
    pub fn feature(&self, feature: Feature) -> u64 {
        self.features[feature as usize]
    }
}

/// One user's registration facts, as both sources can express them.
#[derive(Debug, Clone, Default)]
pub struct UserFacts<'a> {
    /// `userType` as sent.
    pub user_type: Option<&'a str>,
    /// `isAdmin` as sent.
    pub is_admin: Option<bool>,
    /// Features that hold, indexed like [`Feature::ALL`].
    pub features: [bool; 7],
    /// Preferred method as sent (ignored by sources without one).
    pub preferred: Option<&'a str>,
}

/// The opt-in list of admins who are not MFA capable (`entra_admin_without_mfa_info`).
///
/// Bounded: it keeps the `cap` alphabetically first user principal names, so the listed
/// set does not depend on page order and stays the same between refreshes of the same
/// data; `total` says how many there were.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminList {
    /// Most names listed (`max_listed_admins`).
    pub cap: usize,
    /// The listed user principal names, sorted.
    pub listed: BTreeSet<String>,
    /// Admins without MFA seen that have a user principal name, listed or not (one
    /// without a name could never be listed, so it does not make the list cut).
    pub total: u64,
}

impl AdminList {
    /// An empty list keeping at most `cap` names.
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            listed: BTreeSet::new(),
            total: 0,
        }
    }

    /// Adds one admin who is not MFA capable.
    pub fn add(&mut self, user_principal_name: Option<&str>) {
        let Some(upn) = user_principal_name.filter(|u| !u.is_empty()) else {
            return;
        };
        self.total += 1;
        if self.listed.len() >= self.cap {
            match self.listed.last() {
                Some(last) if upn < last.as_str() => {
                    self.listed.pop_last();
                }
                _ => return,
            }
        }
        self.listed.insert(upn.to_owned());
    }

    /// Whether the cap left names out.
    pub fn is_cut(&self) -> bool {
        self.total > self.listed.len() as u64
    }
}

/// The counts of one registration report for one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationCounts {
    /// Which report the counts came from.
    pub source: Source,
    /// Counts per `(user_type, role)`.
    #[serde(with = "crate::util::map_as_pairs")]
    pub groups: BTreeMap<(UserType, Role), GroupCounts>,
    /// Admins without MFA, when the tenant opted in (`admins_without_mfa`).
    pub admins_without_mfa: Option<AdminList>,
    /// Exclusions and per-group coverage, when the tenant configures groups or
    /// exclusions (`None` in snapshots written before them).
    #[serde(default)]
    pub coverage: Option<crate::membership::Coverage>,
    /// Method strength and data freshness (v1.0 source only; design.md "Method
    /// strength"). Defaulted so snapshots written before them still restore.
    #[serde(default)]
    pub strength: StrengthFacts,
    /// Issue 14: per privileged role and assignment, when the tenant configures
    /// `privileged_roles` and its index is known.
    #[serde(default)]
    pub privileged: Option<crate::privileged::PrivilegedCoverage>,
}

/// What a registration refresh learnt about method strength and freshness, besides the
/// per-group [`GroupCounts::strength`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrengthFacts {
    /// Whether the groups' strength counts were made (false for the legacy source and
    /// for snapshots restored from before strength existed: no series then, rather
    /// than zeros that would read as "nobody").
    #[serde(default)]
    pub counted: bool,
    /// Method strings not in the strength table, over all rows.
    #[serde(default)]
    pub unclassified: UnclassifiedMethods,
    /// The newest `lastUpdatedDateTime` over all rows, since the Unix epoch; `None`
    /// when no row had a readable one.
    #[serde(default)]
    pub data_updated: Option<Duration>,
}

impl StrengthFacts {
    /// Notes one row's `lastUpdatedDateTime`.
    #[inline]
    pub fn updated(&mut self, at: Duration) {
        if self.data_updated.is_none_or(|newest| at > newest) {
            self.data_updated = Some(at);
        }
    }
}

impl RegistrationCounts {
    /// Empty counts for `source`.
    pub fn new(source: Source) -> Self {
        Self {
            source,
            groups: BTreeMap::new(),
            admins_without_mfa: None,
            strength: StrengthFacts::default(),
            coverage: None,
            privileged: None,
        }
    }

    /// Folds one user. `methods` may contain duplicates and empty strings: a user is
    /// counted once per distinct non-empty method. Returns the user's group, for counts
    /// only some sources make (strength).
    pub fn add_user<'m>(
        &mut self,
        facts: &UserFacts<'_>,
        methods: impl IntoIterator<Item = &'m str>,
    ) -> &mut GroupCounts {
        let (user_type, role) = match self.source {
            Source::UserRegistrationDetails => (
                UserType::from_graph(facts.user_type),
                Role::from_is_admin(facts.is_admin),
            ),
            Source::CredentialUserRegistrationDetails => (UserType::Unknown, Role::Unknown),
        };
        let group = self.groups.entry((user_type, role)).or_default();
        group.users += 1;
        for (count, holds) in group.features.iter_mut().zip(facts.features) {
            *count += u64::from(holds);
        }

        // Distinct methods. Users have a handful, so a linear scan over a stack array
        // beats hashing; a pathological row with more spills into a Vec.
        let mut inline: [&str; 16] = [""; 16];
        let mut spill: Vec<&str> = Vec::new();
        let mut distinct = 0usize;
        for method in methods {
            if method.is_empty()
                || inline[..distinct.min(16)].contains(&method)
                || spill.contains(&method)
            {
                continue;
            }
            if distinct < inline.len() {
                inline[distinct] = method;
            } else {
                spill.push(method);
            }
            distinct += 1;
            bump(&mut group.methods, method);
        }
        group.method_counts[distinct.min(5)] += 1;

        if self.source.has_preferred_method() {
            let preferred = match facts.preferred {
                None | Some("") => NO_PREFERRED_METHOD,
                Some(p) => p,
            };
            bump(&mut group.preferred, preferred);
        }
        group
    }

    /// Users over all groups.
    pub fn total_users(&self) -> u64 {
        self.groups.values().map(|g| g.users).sum()
    }

    /// Every method string seen in any group, sorted: each group gets a series for each,
    /// zeros included, so per-method ratios never go missing for one group.
    pub fn all_methods(&self) -> Vec<&str> {
        sorted_keys(self.groups.values().flat_map(|g| g.methods.keys()))
    }

    /// Every preferred-method label seen in any group, sorted.
    pub fn all_preferred(&self) -> Vec<&str> {
        sorted_keys(self.groups.values().flat_map(|g| g.preferred.keys()))
    }
}

fn bump(map: &mut HashMap<String, u64>, key: &str) {
    if let Some(n) = map.get_mut(key) {
        *n += 1;
    } else {
        map.insert(key.to_owned(), 1);
    }
}

fn sorted_keys<'a>(keys: impl Iterator<Item = &'a String>) -> Vec<&'a str> {
    let mut v: Vec<&str> = keys.map(String::as_str).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Users per strength, indexed like [`crate::reports::strength::Strength::ALL`].
pub type StrengthCounts = [u64; 4];

/// The distinct unclassified method strings of a refresh, as sent, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnclassifiedMethods(BTreeSet<String>);

impl UnclassifiedMethods {
    /// Adds `method`, copying it only when it is new.
    #[inline]
    pub fn insert(&mut self, method: &str) {
        if !self.0.contains(method) {
            self.0.insert(method.to_owned());
        }
    }

    /// Adds every string of `other`.
    pub fn extend(&mut self, other: &UnclassifiedMethods) {
        for m in other.iter() {
            self.insert(m);
        }
    }

    /// The strings, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// How many distinct strings.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none was seen.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(
        user_type: Option<&'a str>,
        is_admin: Option<bool>,
        preferred: Option<&'a str>,
    ) -> UserFacts<'a> {
        UserFacts {
            user_type,
            is_admin,
            features: [true, false, true, false, false, false, true],
            preferred,
        }
    }

    #[test]
    fn groups_by_user_type_and_role() {
        let mut c = RegistrationCounts::new(Source::UserRegistrationDetails);
        c.add_user(&facts(Some("member"), Some(false), Some("push")), ["email"]);
        c.add_user(&facts(Some("member"), Some(true), Some("")), []);
        c.add_user(&facts(Some("guest"), None, None), ["sms", "sms", ""]);
        c.add_user(
            &facts(Some("unknownFutureValue"), Some(false), Some("none")),
            [],
        );
        c.add_user(&facts(None, Some(false), Some("newThing")), []);
        let g = |t, r| c.groups.get(&(t, r)).cloned().unwrap_or_default();
        assert_eq!(g(UserType::Member, Role::User).users, 1);
        assert_eq!(g(UserType::Member, Role::Admin).users, 1);
        assert_eq!(g(UserType::Guest, Role::Unknown).users, 1);
        assert_eq!(g(UserType::Unknown, Role::User).users, 2);
        assert_eq!(c.total_users(), 5);
        assert_eq!(
            g(UserType::Member, Role::User).feature(Feature::MfaRegistered),
            1
        );
        assert_eq!(
            g(UserType::Member, Role::User).feature(Feature::MfaCapable),
            0
        );
        // duplicates and "" are not methods
        let guest = g(UserType::Guest, Role::Unknown);
        assert_eq!(guest.methods.get("sms"), Some(&1));
        assert_eq!(guest.method_counts, [0, 1, 0, 0, 0, 0]);
        // "", null and "none" are all "none"; unknown strings are kept as sent
        assert_eq!(
            g(UserType::Member, Role::Admin).preferred.get("none"),
            Some(&1)
        );
        assert_eq!(guest.preferred.get("none"), Some(&1));
        let unknown = g(UserType::Unknown, Role::User);
        assert_eq!(unknown.preferred.get("none"), Some(&1));
        assert_eq!(unknown.preferred.get("newThing"), Some(&1));
        assert_eq!(c.all_methods(), vec!["email", "sms"]);
        assert_eq!(c.all_preferred(), vec!["newThing", "none", "push"]);
    }

    #[test]
    fn five_or_more_methods_share_a_bucket() {
        let mut c = RegistrationCounts::new(Source::UserRegistrationDetails);
        c.add_user(
            &facts(Some("member"), Some(false), None),
            ["a", "b", "c", "d", "e"],
        );
        c.add_user(
            &facts(Some("member"), Some(false), None),
            ["a", "b", "c", "d", "e", "f", "g"],
        );
        c.add_user(
            &facts(Some("member"), Some(false), None),
            ["a", "b", "c", "d"],
        );
        let many: Vec<String> = (0..40).map(|i| format!("m{}", i % 20)).collect();
        c.add_user(
            &facts(Some("member"), Some(false), None),
            many.iter().map(String::as_str),
        );
        let g = &c.groups[&(UserType::Member, Role::User)];
        assert_eq!(g.method_counts, [0, 0, 0, 0, 1, 3]);
        assert_eq!(g.methods["a"], 3);
        assert_eq!(g.methods["m19"], 1);
        assert_eq!(g.methods["g"], 1);
    }

    #[test]
    fn admin_list_keeps_the_first_names_and_counts_the_named() {
        let mut l = AdminList::new(2);
        for upn in [
            Some("c@x"),
            Some("a@x"),
            None,
            Some("d@x"),
            Some("b@x"),
            Some(""),
        ] {
            l.add(upn);
        }
        assert_eq!(l.total, 4);
        assert_eq!(l.listed.iter().collect::<Vec<_>>(), ["a@x", "b@x"]);
        assert!(l.is_cut());
        // Admins without a name are not listable: under the cap nothing is cut.
        let mut l = AdminList::new(5);
        for upn in [Some("a@x"), None, Some("")] {
            l.add(upn);
        }
        assert_eq!(l.listed.len(), 1);
        assert!(!l.is_cut());
        let mut l = AdminList::new(0);
        l.add(Some("a@x"));
        assert!(l.listed.is_empty() && l.is_cut());
    }

    #[test]
    fn legacy_source_has_no_groups_or_preferred() {
        let mut c = RegistrationCounts::new(Source::CredentialUserRegistrationDetails);
        c.add_user(&facts(Some("member"), Some(true), Some("push")), ["email"]);
        let g = &c.groups[&(UserType::Unknown, Role::Unknown)];
        assert_eq!(g.users, 1);
        assert!(g.preferred.is_empty());
        assert_eq!(c.source.features().len(), 4);
    }
}
