//! The simulator's own truth: the counts a full walk of a report implies, computed by
//! iterating the generator. It never looks at the exporter's code (design.md,
//! "Simulator"); its label rules are written out here from design.md.

use std::collections::BTreeMap;

use super::SimReport;
use super::tenant::{EnumValue, Tenant, Tri, User, UserType};

/// Counts per `(user_type, role)` group, as the exporter should export them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistrationTruth {
    /// Keyed by `(user_type label, role label)`.
    pub groups: BTreeMap<(String, String), GroupTruth>,
}

impl RegistrationTruth {
    /// Users over all groups.
    pub fn total_users(&self) -> u64 {
        self.groups.values().map(|g| g.users).sum()
    }
}

/// Counts for one `(user_type, role)` group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupTruth {
    /// Users in the group.
    pub users: u64,
    /// Every feature the source reports (design.md names), zeros included.
    pub features: BTreeMap<String, u64>,
    /// Method string as sent with `Prefer: include-unknown-enum-members` -> users with it;
    /// non-zero entries only.
    pub methods: BTreeMap<String, u64>,
    /// Preferred-method label -> users (`none` for `""`, `null`, missing or `none`);
    /// empty for the legacy report.
    pub preferred: BTreeMap<String, u64>,
    /// `"0"`..`"4"`, `"5+"` -> users by number of distinct methods; all six present.
    pub method_count_buckets: BTreeMap<String, u64>,
}

/// The features `userRegistrationDetails` reports.
pub(crate) const USER_FEATURES: [&str; 7] = [
    "mfa_registered",
    "mfa_capable",
    "sspr_registered",
    "sspr_enabled",
    "sspr_capable",
    "passwordless_capable",
    "system_preferred_mfa_enabled",
];

/// The features the legacy `credentialUserRegistrationDetails` reports.
pub(crate) const LEGACY_FEATURES: [&str; 4] = [
    "sspr_registered",
    "sspr_enabled",
    "sspr_capable",
    "mfa_registered",
];

const BUCKETS: [&str; 6] = ["0", "1", "2", "3", "4", "5+"];

/// `user_type` label: `member`, `guest`, anything else `unknown`.
pub(crate) fn user_type_label(t: UserType) -> &'static str {
    match t {
        UserType::Member => "member",
        UserType::Guest => "guest",
        UserType::UnknownFuture | UserType::Null | UserType::Missing => "unknown",
    }
}

/// `role` label from `isAdmin`.
pub(crate) fn role_label(a: Tri) -> &'static str {
    match a {
        Tri::True => "admin",
        Tri::False => "user",
        Tri::Null | Tri::Missing => "unknown",
    }
}

/// Preferred-method label for the with-header view.
pub(crate) fn preferred_label(p: EnumValue) -> &'static str {
    match p {
        EnumValue::Value(v) if !v.is_empty() => v,
        _ => "none",
    }
}

fn bucket(n: usize) -> &'static str {
    BUCKETS[n.min(5)]
}

impl GroupTruth {
    fn empty(features: &[&str], buckets: bool) -> Self {
        let mut g = GroupTruth::default();
        for f in features {
            g.features.insert((*f).to_string(), 0);
        }
        if buckets {
            for b in BUCKETS {
                g.method_count_buckets.insert(b.to_string(), 0);
            }
        }
        g
    }

    fn add(&mut self, features: &[(&str, bool)], methods: &[&str], preferred: Option<&str>) {
        self.users += 1;
        for (f, on) in features {
            if *on {
                *self.features.get_mut(*f).expect("feature preset") += 1;
            }
        }
        // Lists from the generator are already distinct; empty strings never count.
        let mut distinct = 0;
        for m in methods.iter().filter(|m| !m.is_empty()) {
            distinct += 1;
            *self.methods.entry((*m).to_string()).or_default() += 1;
        }
        *self
            .method_count_buckets
            .get_mut(bucket(distinct))
            .expect("bucket preset") += 1;
        if let Some(p) = preferred {
            *self.preferred.entry(p.to_string()).or_default() += 1;
        }
    }
}

/// What `userRegistrationDetails` says of `u`, by design.md's feature names.
pub(crate) fn user_features(u: &User) -> [(&'static str, bool); 7] {
    [
        ("mfa_registered", u.mfa_registered),
        ("mfa_capable", u.mfa_capable),
        ("sspr_registered", u.sspr_registered),
        ("sspr_enabled", u.sspr_enabled),
        ("sspr_capable", u.sspr_capable),
        ("passwordless_capable", u.passwordless_capable),
        (
            "system_preferred_mfa_enabled",
            u.system_preferred_enabled == Tri::True,
        ),
    ]
}

/// Folds one user into `truth` for `report`.
pub(crate) fn fold(truth: &mut RegistrationTruth, report: SimReport, u: &User) {
    match report {
        SimReport::UserRegistrationDetails => {
            let key = (
                user_type_label(u.user_type).to_string(),
                role_label(u.is_admin).to_string(),
            );
            let g = truth
                .groups
                .entry(key)
                .or_insert_with(|| GroupTruth::empty(&USER_FEATURES, true));
            g.add(
                &user_features(u),
                u.methods.as_slice(),
                Some(preferred_label(u.preferred)),
            );
        }
        SimReport::CredentialUserRegistrationDetails => {
            let key = ("unknown".to_string(), "unknown".to_string());
            let g = truth
                .groups
                .entry(key)
                .or_insert_with(|| GroupTruth::empty(&LEGACY_FEATURES, true));
            g.add(
                &[
                    ("sspr_registered", u.sspr_registered),
                    ("sspr_enabled", u.sspr_enabled),
                    ("sspr_capable", u.sspr_capable),
                    ("mfa_registered", u.mfa_registered),
                ],
                u.legacy_methods.as_slice(),
                None,
            );
        }
    }
}

/// The truth of `report` for the whole tenant at dataset time `t`.
pub(crate) fn compute(tenant: &Tenant, report: SimReport, t: i64) -> RegistrationTruth {
    let mut truth = RegistrationTruth::default();
    for index in 0..tenant.users {
        fold(&mut truth, report, &tenant.user(index, t));
    }
    truth
}

#[cfg(test)]
mod tests {
    use super::super::tenant::STATIC_DATASET_TIME;
    use super::*;

    #[test]
    fn totals_and_buckets() {
        let t = Tenant::new("x", 11, 3000, None);
        for report in [
            SimReport::UserRegistrationDetails,
            SimReport::CredentialUserRegistrationDetails,
        ] {
            let truth = compute(&t, report, STATIC_DATASET_TIME);
            assert_eq!(truth.total_users(), 3000);
            for g in truth.groups.values() {
                assert_eq!(g.method_count_buckets.len(), 6);
                assert_eq!(g.method_count_buckets.values().sum::<u64>(), g.users);
                assert!(g.methods.values().all(|&n| n > 0 && n <= g.users));
                assert!(g.features.values().all(|&n| n <= g.users));
                match report {
                    SimReport::UserRegistrationDetails => {
                        assert_eq!(g.features.len(), 7);
                        assert_eq!(g.preferred.values().sum::<u64>(), g.users);
                    }
                    SimReport::CredentialUserRegistrationDetails => {
                        assert_eq!(g.features.len(), 4);
                        assert!(g.preferred.is_empty());
                    }
                }
            }
        }
        let urd = compute(&t, SimReport::UserRegistrationDetails, STATIC_DATASET_TIME);
        assert!(urd.groups.contains_key(&("member".into(), "admin".into())));
        assert!(urd.groups.contains_key(&("guest".into(), "user".into())));
        assert!(urd.groups.contains_key(&("unknown".into(), "user".into())));
        let legacy = compute(
            &t,
            SimReport::CredentialUserRegistrationDetails,
            STATIC_DATASET_TIME,
        );
        assert_eq!(legacy.groups.len(), 1);
        let all_5plus: u64 = urd
            .groups
            .values()
            .map(|g| g.method_count_buckets["5+"])
            .sum();
        assert!(all_5plus > 0);
    }

    #[test]
    fn empty_tenant_has_no_groups() {
        let t = Tenant::new("x", 1, 0, None);
        assert!(
            compute(&t, SimReport::UserRegistrationDetails, 0)
                .groups
                .is_empty()
        );
    }
}
