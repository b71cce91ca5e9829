//! The `entra_users*` families and the admins-without-MFA list, fed by either
//! registration source ([`super::user_registration_details`] or the legacy
//! [`super::credential_user_registration_details`]) from [`RegistrationCounts`].

use crate::aggregate::{Feature, METHOD_COUNT_BUCKETS, RegistrationCounts, Role, Source, UserType};
use crate::families::{Families, Family};
use crate::membership::{Coverage, Join};
use crate::reports::strength::Strength;

use super::{Headline, ReportData, Settings, Share, store_tagged};

/// The snapshot-file tag of registration data.
pub const TAG: &str = "Registration";

static USERS: Family = Family::gauge(
    "entra_users",
    "Users in the registration report, by user type and admin role.",
);
static WITH_FEATURE: Family = Family::gauge(
    "entra_users_with_feature",
    "Users for whom the feature holds (MFA/SSPR registered, enabled or capable; passwordless capable; system-preferred MFA enabled).",
);
static WITH_METHOD: Family = Family::gauge(
    "entra_users_with_method",
    "Users with the authentication method registered (method as Graph names it).",
);
static PREFERRED: Family = Family::gauge(
    "entra_users_by_preferred_method",
    "Users by preferred secondary authentication method (`none` when unset).",
);
static BY_COUNT: Family = Family::gauge(
    "entra_users_by_registered_methods",
    "Users by number of distinct registered authentication methods (0-4, 5+).",
);
static ADMINS: Family = Family::gauge(
    "entra_admin_without_mfa_info",
    "1 per admin (any Entra admin role) who is not MFA capable; opt-in per tenant (admins_without_mfa), at most max_listed_admins.",
);

// Method strength and freshness (design.md "Method strength"; v1.0 source only).
static BY_STRENGTH: Family = Family::gauge(
    "entra_users_by_strength",
    "Users by strongest registered authentication method: none, mfa, passwordless (phishable), phishing_resistant.",
);
static DATA_UPDATED: Family = Family::gauge(
    "entra_registration_data_updated_timestamp_seconds",
    "Unix time of the newest lastUpdatedDateTime in the last registration report: how fresh Microsoft's data is.",
);
static UNCLASSIFIED: Family = Family::gauge(
    "entra_exporter_unclassified_method_info",
    "1 per registered-method string in the last refresh that the method-strength table does not know; it does not raise strength.",
);
// Exclusions and per-group coverage (design.md, "Coverage as security teams count it").
static EXCLUDED: Family = Family::gauge(
    "entra_users_excluded",
    "Users of the registration report left out of coverage: by exclude_groups membership (group) or only an exclude_users pattern (pattern).",
);
static GROUP_MEMBERS: Family = Family::gauge(
    "entra_group_members",
    "Transitive user members of the configured group, exclusions left out.",
);
static GROUP_USERS: Family = Family::gauge(
    "entra_group_users",
    "Members of the configured group present in the registration report.",
);
static GROUP_WITH_FEATURE: Family = Family::gauge(
    "entra_group_users_with_feature",
    "Members of the configured group in the registration report for whom the feature holds.",
);
static GROUP_BY_STRENGTH: Family = Family::gauge(
    "entra_group_users_by_strength",
    "Members of the configured group in the registration report by strongest registered method (none, mfa, passwordless, phishing_resistant).",
);

/// The families of both registration sources, in exposition order.
pub static FAMILIES: &[&Family] = &[
    &USERS,
    &WITH_FEATURE,
    &WITH_METHOD,
    &PREFERRED,
    &BY_COUNT,
    &ADMINS,
    &BY_STRENGTH,
    &DATA_UPDATED,
    &UNCLASSIFIED,
    &EXCLUDED,
    &GROUP_MEMBERS,
    &GROUP_USERS,
    &GROUP_WITH_FEATURE,
    &GROUP_BY_STRENGTH,
    // Issue 14: privileged roles.
    super::privileged_roles::FAMILIES[0],
    super::privileged_roles::FAMILIES[1],
    super::privileged_roles::FAMILIES[2],
    super::privileged_roles::FAMILIES[3],
];

/// The membership join of a registration refresh, when the tenant configures groups or
/// exclusions.
pub(super) fn join(s: &Settings) -> Option<Join> {
    let configured =
        !s.groups.is_empty() || !s.exclude_groups.is_empty() || !s.exclude_users.is_empty();
    configured.then(|| Join::new(s.membership.clone(), &s.exclude_users))
}

/// Issue 14: the roles join of a registration refresh, when the tenant configures
/// `privileged_roles` and the roles index is known.
pub(super) fn privileged_join(s: &Settings) -> Option<crate::privileged::PrivilegedJoin> {
    let list = s
        .list_privileged_users
        .then_some(s.max_listed_admins as usize);
    s.privileged
        .clone()
        .filter(|_| !s.privileged_roles.is_empty())
        .map(|index| crate::privileged::PrivilegedJoin::new(index, list))
}

/// What of the join shapes the data, for the snapshot file's identity: a snapshot
/// counted with other groups or exclusions is not restored.
pub(super) fn join_identity(s: &Settings) -> String {
    let list = |l: &[String]| l.join("\u{1f}");
    let joined = match join(s) {
        None => String::new(),
        Some(_) => format!(
            "|groups:{}|exclude:{}|patterns:{}",
            list(&s.groups),
            list(&s.exclude_groups),
            list(&s.exclude_users)
        ),
    };
    // Issue 14: counted with other roles or another list setting, not restored.
    match s.privileged_roles.is_empty() {
        true => joined,
        false => format!(
            "{joined}|roles:{}|list:{}",
            list(&s.privileged_roles),
            s.list_privileged_users
        ),
    }
}

/// Adds the exclusion and per-group families of `coverage`.
fn encode_coverage(coverage: &Coverage, source: Source, tenant: &str, out: &mut Families) {
    let excluded = [
        ("group", coverage.excluded_by_group),
        ("pattern", coverage.excluded_by_pattern),
    ];
    for (reason, n) in excluded {
        out.add(&EXCLUDED, vec![("tenant", tenant), ("reason", reason)], n);
    }
    let [members, users, with_feature, by_strength] = [
        &GROUP_MEMBERS,
        &GROUP_USERS,
        &GROUP_WITH_FEATURE,
        &GROUP_BY_STRENGTH,
    ]
    .map(|f| out.id(f));
    for g in &coverage.groups {
        let labels = vec![("tenant", tenant), ("group", g.group.as_str())];
        out.push(members, labels.clone(), g.members);
        out.push(users, labels.clone(), g.users);
        for f in source.features() {
            let mut l = labels.clone();
            l.push(("feature", f.label()));
            out.push(with_feature, l, g.features[*f as usize]);
        }
        // Strength is read from methodsRegistered, which only the v1.0 source has.
        if source == Source::UserRegistrationDetails {
            for s in Strength::ALL {
                let mut l = labels.clone();
                l.push(("strength", s.label()));
                out.push(by_strength, l, g.strengths[s as usize]);
            }
        }
    }
}

impl ReportData for RegistrationCounts {
    fn encode(&self, tenant: &str, out: &mut Families) {
        let [users, with_feature, with_method, preferred, by_count] =
            [&USERS, &WITH_FEATURE, &WITH_METHOD, &PREFERRED, &BY_COUNT].map(|f| out.id(f));
        let methods = self.all_methods();
        let preferred_labels = self.all_preferred();
        let by_strength = out.id(&BY_STRENGTH);
        for ((user_type, role), g) in &self.groups {
            let group = [
                ("tenant", tenant),
                ("user_type", user_type.label()),
                ("role", role.label()),
            ];
            let with = |key: &'static str, value| {
                let mut l = group.to_vec();
                l.push((key, value));
                l
            };
            out.push(users, group.to_vec(), g.users);
            for f in self.source.features() {
                out.push(with_feature, with("feature", f.label()), g.feature(*f));
            }
            for &m in &methods {
                out.push(
                    with_method,
                    with("method", m),
                    *g.methods.get(m).unwrap_or(&0),
                );
            }
            if self.source.has_preferred_method() {
                for &p in &preferred_labels {
                    out.push(
                        preferred,
                        with("method", p),
                        *g.preferred.get(p).unwrap_or(&0),
                    );
                }
            }
            for (bucket, n) in METHOD_COUNT_BUCKETS.iter().zip(g.method_counts) {
                out.push(by_count, with("methods", bucket), n);
            }
            if self.strength.counted {
                for (s, n) in Strength::ALL.iter().zip(g.strength) {
                    out.push(by_strength, with("strength", s.label()), n);
                }
            }
        }
        if let Some(at) = self.strength.data_updated {
            out.add(&DATA_UPDATED, vec![("tenant", tenant)], at.as_secs_f64());
        }
        for method in self.strength.unclassified.iter() {
            out.add(
                &UNCLASSIFIED,
                vec![("tenant", tenant), ("method", method)],
                1u64,
            );
        }
        for upn in self.admins_without_mfa.iter().flat_map(|a| &a.listed) {
            out.add(
                &ADMINS,
                vec![("tenant", tenant), ("user_principal_name", upn)],
                1u64,
            );
        }
        if let Some(coverage) = &self.coverage {
            encode_coverage(coverage, self.source, tenant, out);
        }
        if let Some(privileged) = &self.privileged {
            super::privileged_roles::encode(privileged, self.source, tenant, out);
        }
    }

    fn store(&self) -> serde_json::Value {
        store_tagged(TAG, self)
    }

    fn headline(&self) -> Option<Headline> {
        // Over the groups `keep` selects: users for whom `feature` holds, of all.
        let share = |keep: &dyn Fn(UserType, Role) -> bool, feature: Feature| {
            let groups = self.groups.iter().filter(|((t, r), _)| keep(*t, *r));
            groups.fold(Share { count: 0, of: 0 }, |s, (_, g)| Share {
                count: s.count + g.feature(feature),
                of: s.of + g.users,
            })
        };
        // The legacy report has neither user types and roles nor the MFA-capable flag.
        let split = self.source.features().contains(&Feature::MfaCapable);
        let all = |_, _| true;
        Some(Headline {
            users: self.total_users(),
            members_mfa_capable: split
                .then(|| share(&|t, _| t == UserType::Member, Feature::MfaCapable)),
            admins_mfa_capable: split.then(|| share(&|_, r| r == Role::Admin, Feature::MfaCapable)),
            mfa_registered: share(&all, Feature::MfaRegistered),
            without_methods: Share {
                count: self.groups.values().map(|g| g.method_counts[0]).sum(),
                of: self.total_users(),
            },
            admins_without_mfa: self
                .admins_without_mfa
                .as_ref()
                .map(|a| (a.listed.iter().cloned().collect(), a.total)),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::aggregate::{AdminList, Source, UserFacts};

    /// Adds a user of `user_type`/`is_admin`, MFA registered and capable as given.
    pub(crate) fn user(
        c: &mut RegistrationCounts,
        user_type: &str,
        is_admin: bool,
        registered: bool,
        capable: bool,
        methods: &[&str],
    ) {
        let mut features = [false; 7];
        features[Feature::MfaRegistered as usize] = registered;
        features[Feature::MfaCapable as usize] = capable;
        let facts = UserFacts {
            user_type: Some(user_type),
            is_admin: Some(is_admin),
            features,
            preferred: None,
        };
        c.add_user(&facts, methods.iter().copied());
    }

    #[test]
    fn headline_splits_members_and_admins_like_the_recording_rules() {
        let mut c = RegistrationCounts::new(Source::UserRegistrationDetails);
        user(&mut c, "member", false, true, true, &["push"]);
        user(&mut c, "member", false, false, false, &[]);
        user(&mut c, "member", true, true, true, &["fido2", "push"]);
        user(&mut c, "member", true, false, false, &["email"]);
        user(&mut c, "guest", true, false, false, &[]);
        user(&mut c, "guest", false, true, true, &["sms"]);
        let mut admins = AdminList::new(1);
        admins.add(Some("b@x"));
        admins.add(Some("a@x"));
        c.admins_without_mfa = Some(admins);
        let h = c.headline().unwrap();
        assert_eq!(h.users, 6);
        // Members of any role: 2 of 4; admins of any user type: 1 of 3.
        assert_eq!(h.members_mfa_capable, Some(Share { count: 2, of: 4 }));
        assert_eq!(h.admins_mfa_capable, Some(Share { count: 1, of: 3 }));
        assert_eq!(h.mfa_registered, Share { count: 3, of: 6 });
        assert_eq!(h.without_methods, Share { count: 2, of: 6 });
        assert_eq!(h.admins_without_mfa, Some((vec!["a@x".to_owned()], 2)));
    }

    #[test]
    fn the_legacy_headline_has_no_split() {
        let mut c = RegistrationCounts::new(Source::CredentialUserRegistrationDetails);
        user(&mut c, "member", true, true, true, &["push"]);
        user(&mut c, "member", true, false, true, &[]);
        let h = c.headline().unwrap();
        assert_eq!((h.members_mfa_capable, h.admins_mfa_capable), (None, None));
        assert_eq!(h.mfa_registered, Share { count: 1, of: 2 });
        assert_eq!(h.without_methods, Share { count: 1, of: 2 });
        assert_eq!(h.admins_without_mfa, None);
    }

    /// The samples `data` encodes for tenant `t`, as exposition lines.
    fn samples(data: &RegistrationCounts) -> Vec<String> {
        let mut out = Families::new(FAMILIES.iter().copied());
        data.encode("t", &mut out);
        out.sample_lines()
    }

    #[test]
    fn strength_families_every_strength_on_every_group_when_counted() {
        let mut c = RegistrationCounts::new(Source::UserRegistrationDetails);
        user(&mut c, "member", false, true, true, &["sms"]);
        user(&mut c, "guest", true, false, false, &[]);
        c.groups
            .get_mut(&(UserType::Member, Role::User))
            .unwrap()
            .strength = [0, 1, 0, 0];
        c.groups
            .get_mut(&(UserType::Guest, Role::Admin))
            .unwrap()
            .strength = [1, 0, 0, 0];
        // Not counted (the legacy source, or a snapshot from before strength): none.
        let without = samples(&c);
        assert!(
            !without
                .iter()
                .any(|l| l.contains("strength") || l.contains("unclassified"))
        );
        assert!(
            !without
                .iter()
                .any(|l| l.starts_with("entra_registration_data"))
        );

        c.strength.counted = true;
        c.strength.unclassified.insert("quantumKey");
        c.strength.unclassified.insert("externalAuthMethod");
        c.strength.data_updated = Some(std::time::Duration::new(1_767_312_000, 500_000_000));
        let with = samples(&c);
        let strength: Vec<&str> = with
            .iter()
            .filter(|l| l.starts_with("entra_users_by_strength"))
            .map(String::as_str)
            .collect();
        let m = r#"tenant="t",user_type="member",role="user""#;
        let g = r#"tenant="t",user_type="guest",role="admin""#;
        assert_eq!(
            strength,
            [
                format!(r#"entra_users_by_strength{{{m},strength="none"}} 0"#),
                format!(r#"entra_users_by_strength{{{m},strength="mfa"}} 1"#),
                format!(r#"entra_users_by_strength{{{m},strength="passwordless"}} 0"#),
                format!(r#"entra_users_by_strength{{{m},strength="phishing_resistant"}} 0"#),
                format!(r#"entra_users_by_strength{{{g},strength="none"}} 1"#),
                format!(r#"entra_users_by_strength{{{g},strength="mfa"}} 0"#),
                format!(r#"entra_users_by_strength{{{g},strength="passwordless"}} 0"#),
                format!(r#"entra_users_by_strength{{{g},strength="phishing_resistant"}} 0"#),
            ]
        );
        let tail: Vec<&str> = with
            .iter()
            // The store's own per-report progress gauge (issue 16) is not this report's.
            .filter(|l| {
                !l.starts_with("entra_users") && !l.starts_with("entra_exporter_refresh_pages")
            })
            .map(String::as_str)
            .collect();
        assert_eq!(
            tail,
            [
                r#"entra_registration_data_updated_timestamp_seconds{tenant="t"} 1767312000.5"#,
                r#"entra_exporter_unclassified_method_info{tenant="t",method="externalAuthMethod"} 1"#,
                r#"entra_exporter_unclassified_method_info{tenant="t",method="quantumKey"} 1"#,
            ]
        );
    }

    #[test]
    fn shares_round_down_and_have_no_value_out_of_nobody() {
        let s = |count, of| Share { count, of }.per_mille();
        assert_eq!(s(1, 3), Some(333));
        assert_eq!(s(2, 3), Some(666));
        assert_eq!(s(9_999, 10_000), Some(999), "100.0 % only when all");
        assert_eq!(s(5, 5), Some(1000));
        assert_eq!(s(0, 0), None);
        assert_eq!(s(u64::MAX, u64::MAX), Some(1000));
    }
}
