//! The truth of the coverage families (design.md, "Coverage as security teams count
//! it") for a given `groups` / `exclude_groups` / `exclude_users` configuration,
//! computed from the simulator's own group definitions and users: registration counts
//! without the excluded users, `entra_users_excluded`, and per group the members, the
//! members in the registration report, and their features. Its UPN pattern matcher is
//! its own (a recursive one, unlike the exporter's).

use std::collections::{BTreeMap, BTreeSet};

use super::SimReport;
use super::SimTenant;
use super::directory::{resolve, users_of};
use super::tenant::Tenant;
use super::truth::{RegistrationTruth, USER_FEATURES, fold, user_features};

/// The exporter configuration the truth is for.
#[derive(Debug, Clone, Default)]
pub struct CoverageSpec {
    /// `groups`, as written.
    pub groups: Vec<String>,
    /// `exclude_groups`.
    pub exclude_groups: Vec<String>,
    /// `exclude_users`.
    pub exclude_users: Vec<String>,
}

/// The coverage families' truth.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CoverageTruth {
    /// `entra_users*` with the excluded users left out.
    pub registration: RegistrationTruth,
    /// `entra_users_excluded{reason="group"}`.
    pub excluded_group: u64,
    /// `entra_users_excluded{reason="pattern"}`.
    pub excluded_pattern: u64,
    /// By `group` label.
    pub groups: BTreeMap<String, GroupCoverageTruth>,
}

/// One configured group's truth.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupCoverageTruth {
    /// `entra_group_members`.
    pub members: u64,
    /// `entra_group_users`.
    pub users: u64,
    /// `entra_group_users_with_feature`, every feature (zeros included).
    pub features: BTreeMap<String, u64>,
    /// `entra_group_users_by_strength`, all four strengths (zeros included).
    pub strengths: BTreeMap<String, u64>,
}

/// design.md's method-strength table, written out again here (the simulator never
/// uses the exporter's): a method's rank, 0 (`none`) to 3 (`phishing_resistant`).
fn rank(method: &str) -> usize {
    const PHISHING_RESISTANT: [&str; 9] = [
        "fido2",
        "fido2securitykey",
        "passkeydevicebound",
        "passkeydeviceboundauthenticator",
        "passkeydeviceboundwindowshello",
        "passkeysynced",
        "windowshelloforbusiness",
        "macossecureenclavekey",
        "x509certificatemultifactor",
    ];
    const MFA: [&str; 8] = [
        "microsoftauthenticatorpush",
        "softwareonetimepasscode",
        "hardwareonetimepasscode",
        "mobilephone",
        "alternatemobilephone",
        "officephone",
        "sms",
        "voice",
    ];
    let m = method.to_ascii_lowercase();
    if PHISHING_RESISTANT.contains(&m.as_str()) {
        3
    } else if m == "microsoftauthenticatorpasswordless" {
        2
    } else if MFA.contains(&m.as_str()) {
        1
    } else {
        0
    }
}

const STRENGTHS: [&str; 4] = ["none", "mfa", "passwordless", "phishing_resistant"];

/// `*` any run, `?` one character, the rest literal, case-insensitive, whole string.
fn wildcard(p: &[char], s: &[char]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some(('*', rest)) => (0..=s.len()).any(|k| wildcard(rest, &s[k..])),
        Some((c, rest)) => match s.split_first() {
            Some((d, tail)) if *c == '?' || c == d => wildcard(rest, tail),
            _ => false,
        },
    }
}

fn matches(pattern: &str, upn: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let s: Vec<char> = upn.to_lowercase().chars().collect();
    wildcard(&p, &s)
}

/// Issue 14: whether user `index` with `upn` is left out of coverage under `spec`
/// (in an excluded group, or matched by a pattern), for the other joined families.
pub(crate) fn exclusion<'a>(
    cfg: &SimTenant,
    spec: &'a CoverageSpec,
) -> impl Fn(u64, &str) -> bool + 'a {
    let excluded: BTreeSet<u64> = spec
        .exclude_groups
        .iter()
        .filter_map(|g| match resolve(cfg, g).as_slice() {
            [g] => Some(users_of(cfg, *g)),
            _ => None,
        })
        .flatten()
        .collect();
    move |index, upn| {
        excluded.contains(&index) || spec.exclude_users.iter().any(|p| matches(p, upn))
    }
}

/// The truth for `spec` at dataset time `t`. A name that does not select exactly one
/// group has no entry (the exporter fails the membership refresh instead).
pub(crate) fn compute(
    cfg: &SimTenant,
    generator: &Tenant,
    t: i64,
    spec: &CoverageSpec,
) -> CoverageTruth {
    let members_of = |value: &str| -> Option<BTreeSet<u64>> {
        match resolve(cfg, value).as_slice() {
            [g] => Some(users_of(cfg, *g)),
            _ => None,
        }
    };
    let groups: Vec<(String, BTreeSet<u64>)> = spec
        .groups
        .iter()
        .filter_map(|label| members_of(label).map(|m| (label.clone(), m)))
        .collect();
    let excluded: BTreeSet<u64> = spec
        .exclude_groups
        .iter()
        .filter_map(|g| members_of(g))
        .flatten()
        .collect();
    let mut truth = CoverageTruth::default();
    let mut pattern_excluded = BTreeSet::new();
    for index in 0..generator.users {
        let u = generator.user(index, t);
        if excluded.contains(&index) {
            truth.excluded_group += 1;
            continue;
        }
        let upn = generator.upn(index, u.user_type);
        if spec.exclude_users.iter().any(|p| matches(p, &upn)) {
            truth.excluded_pattern += 1;
            pattern_excluded.insert(index);
            continue;
        }
        fold(
            &mut truth.registration,
            SimReport::UserRegistrationDetails,
            &u,
        );
        for (label, members) in &groups {
            if members.contains(&index) {
                let g = group_entry(&mut truth.groups, label);
                g.users += 1;
                for (f, on) in user_features(&u) {
                    *g.features.get_mut(f).expect("preset") += u64::from(on);
                }
                let best = u
                    .methods
                    .as_slice()
                    .iter()
                    .map(|m| rank(m))
                    .max()
                    .unwrap_or(0);
                *g.strengths.get_mut(STRENGTHS[best]).expect("preset") += 1;
            }
        }
    }
    for (label, members) in &groups {
        let kept = members
            .iter()
            .filter(|i| !excluded.contains(i) && !pattern_excluded.contains(i))
            .count() as u64;
        group_entry(&mut truth.groups, label).members = kept;
    }
    truth
}

fn group_entry<'a>(
    groups: &'a mut BTreeMap<String, GroupCoverageTruth>,
    label: &str,
) -> &'a mut GroupCoverageTruth {
    groups
        .entry(label.to_owned())
        .or_insert_with(|| GroupCoverageTruth {
            features: USER_FEATURES.iter().map(|f| ((*f).to_owned(), 0)).collect(),
            strengths: STRENGTHS.iter().map(|s| ((*s).to_owned(), 0)).collect(),
            ..GroupCoverageTruth::default()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(matches("breakglass*@x.com", "BreakGlass7@X.com"));
        assert!(!matches("breakglass*@x.com", "a-breakglass7@x.com"));
        assert!(matches("u?er1@*", "user1@anything"));
        assert!(!matches("u?er1@*", "uer1@x"));
    }
}
