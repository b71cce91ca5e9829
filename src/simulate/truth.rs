//! The simulator's own truth: the counts a full walk of a report implies, computed by
//! iterating the generator. It never looks at the exporter's code (design.md,
//! "Simulator"); its label rules are written out here from design.md.

use std::collections::{BTreeMap, BTreeSet};

use super::SimReport;
use super::tenant::{EnumValue, Tenant, Tri, User, UserType};

/// Counts per `(user_type, role)` group, as the exporter should export them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegistrationTruth {
    /// Keyed by `(user_type label, role label)`.
    pub groups: BTreeMap<(String, String), GroupTruth>,
    /// The newest `lastUpdatedDateTime` served, Unix seconds with the fraction
    /// (`userRegistrationDetails` only; `None` for the legacy report or no rows).
    pub data_updated: Option<f64>,
    /// Method strings served that design.md's strength table does not list
    /// (`userRegistrationDetails` only).
    pub unclassified_methods: BTreeSet<String>,
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
    /// Strength label -> users by strongest method; all four present for
    /// `userRegistrationDetails`, empty for the legacy report.
    pub strength: BTreeMap<String, u64>,
}

/// `strength` labels, weakest first.
pub(crate) const STRENGTHS: [&str; 4] = ["none", "mfa", "passwordless", "phishing_resistant"];

/// design.md's method-strength table, written out again for the simulator: the rank in
/// [`STRENGTHS`] of a `methodsRegistered` string (any case), `None` when the table does
/// not list it (then it counts as `none` and is unclassified).
pub(crate) fn method_strength(method: &str) -> Option<usize> {
    let rank = match method.to_ascii_lowercase().as_str() {
        "fido2"
        | "fido2securitykey"
        | "passkeydevicebound"
        | "passkeydeviceboundauthenticator"
        | "passkeydeviceboundwindowshello"
        | "passkeysynced"
        | "windowshelloforbusiness"
        | "macossecureenclavekey"
        | "x509certificatemultifactor" => 3,
        "microsoftauthenticatorpasswordless" => 2,
        "microsoftauthenticatorpush"
        | "softwareonetimepasscode"
        | "hardwareonetimepasscode"
        | "mobilephone"
        | "alternatemobilephone"
        | "officephone"
        | "sms"
        | "voice" => 1,
        "email"
        | "securityquestion"
        | "temporaryaccesspass"
        | "qrcode"
        | "qrcodepin"
        | "password" => 0,
        _ => return None,
    };
    Some(rank)
}

/// The strength label of a user with `methods`: the strongest listed one.
pub(crate) fn strength_label(methods: &[&str]) -> &'static str {
    let best = methods
        .iter()
        .filter_map(|m| method_strength(m))
        .max()
        .unwrap_or(0);
    STRENGTHS[best]
}

/// Unix seconds of a `lastUpdatedDateTime` written from `unix` and 100 ns `ticks`,
/// computed as whole seconds plus nanoseconds over 1e9 (so a client reading the text
/// into seconds and nanoseconds gets the same float).
pub(crate) fn updated_seconds(unix: i64, ticks: Option<u32>) -> f64 {
    let nanos = u64::from(ticks.unwrap_or(0) % 10_000_000) * 100;
    unix as f64 + nanos as f64 / 1e9
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
            let updated = updated_seconds(u.updated_unix, u.updated_ticks);
            truth.data_updated = Some(truth.data_updated.map_or(updated, |t| t.max(updated)));
            for m in u.methods.as_slice() {
                if method_strength(m).is_none() {
                    truth.unclassified_methods.insert((*m).to_string());
                }
            }
            let g = truth.groups.entry(key).or_insert_with(|| {
                let mut g = GroupTruth::empty(&USER_FEATURES, true);
                g.strength = STRENGTHS.iter().map(|s| (s.to_string(), 0)).collect();
                g
            });
            *g.strength
                .get_mut(strength_label(u.methods.as_slice()))
                .expect("strength preset") += 1;
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
    fn strength_freshness_and_unclassified() {
        use super::super::tenant::{FUTURE_METHOD, UNCLASSIFIED_METHOD};
        let t = Tenant::new("x", 11, 3000, None);
        let urd = compute(&t, SimReport::UserRegistrationDetails, STATIC_DATASET_TIME);
        let mut by_strength: BTreeMap<&str, u64> = BTreeMap::new();
        for g in urd.groups.values() {
            assert_eq!(g.strength.keys().map(String::as_str).collect::<Vec<_>>(), {
                let mut s = STRENGTHS.to_vec();
                s.sort();
                s
            });
            assert_eq!(g.strength.values().sum::<u64>(), g.users);
            for (s, n) in &g.strength {
                *by_strength.entry(s.as_str()).or_default() += n;
            }
        }
        for s in STRENGTHS {
            assert!(by_strength[s] > 0, "some user is {s}: {by_strength:?}");
        }
        assert_eq!(
            urd.unclassified_methods
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            [UNCLASSIFIED_METHOD, FUTURE_METHOD]
        );
        // Rows are 30 min to 6.5 h old.
        let newest = urd.data_updated.unwrap();
        let at = STATIC_DATASET_TIME as f64;
        assert!(
            newest < at - 1800.0 + 1.0 && newest > at - 3.0 * 3600.0,
            "{newest}"
        );
        let legacy = compute(
            &t,
            SimReport::CredentialUserRegistrationDetails,
            STATIC_DATASET_TIME,
        );
        assert_eq!(legacy.data_updated, None);
        assert!(legacy.unclassified_methods.is_empty());
        assert!(legacy.groups.values().all(|g| g.strength.is_empty()));
    }

    #[test]
    fn strength_table_by_hand() {
        assert_eq!(strength_label(&[]), "none");
        assert_eq!(strength_label(&["email", "temporaryAccessPass"]), "none");
        assert_eq!(strength_label(&["externalAuthMethod"]), "none");
        assert_eq!(strength_label(&["email", "Sms"]), "mfa");
        assert_eq!(
            strength_label(&["mobilePhone", "microsoftAuthenticatorPasswordless"]),
            "passwordless"
        );
        assert_eq!(
            strength_label(&["passKeySynced", "sms"]),
            "phishing_resistant"
        );
        assert_eq!(method_strength("X509CERTIFICATEMULTIFACTOR"), Some(3));
        assert_eq!(method_strength("x509CertificateSingleFactor"), None);
        assert_eq!(updated_seconds(10, Some(5_000_000)), 10.5);
        assert_eq!(updated_seconds(10, None), 10.0);
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
