//! The simulator's truth for the reports beyond the per-user registration rows:
//! registration counts by status, usage summaries, usage events, the
//! `usersRegisteredBy*` summaries and the admins without MFA. Computed by iterating the
//! generator; values are Graph's strings as sent with
//! `Prefer: include-unknown-enum-members` (label rules are the tests' business).
//!
//! The function endpoints serve exactly these values, so the served counts and the
//! truth cannot disagree; what the tests check is that the exporter carries them into
//! the right series.

use std::collections::BTreeMap;

use super::events::{EVENT_WINDOW_SECS, event, event_count};
use super::tenant::{Tenant, Tri, UserType};

/// A made-up `registrationStatusType` member after `unknownFutureValue`.
pub(crate) const POST_SENTINEL_STATUS: &str = "passwordlessCapable";
/// A made-up `authenticationMethodFeature` member after `unknownFutureValue`.
pub(crate) const POST_SENTINEL_SUMMARY_FEATURE: &str = "mfaRegistered";

/// `getCredentialUserRegistrationCount`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistrationCountTruth {
    /// `totalUserCount`.
    pub total_users: u64,
    /// `registrationStatus` (Graph's name) ▸ `registrationCount`.
    pub statuses: BTreeMap<String, u64>,
}

/// `getCredentialUsageSummary(period)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageSummaryTruth {
    /// `(feature, authMethod)` ▸ `(successfulActivityCount, failureActivityCount)`;
    /// every pair of the event window, zeros included.
    pub activities: BTreeMap<(String, String), (u64, u64)>,
}

/// `userCredentialUsageDetails` / `userEventsSummary` (the same events).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UsageEventsTruth {
    /// `(feature, authMethod, "success"|"failure")` ▸ events.
    pub events: BTreeMap<(String, String, String), u64>,
    /// `(feature, "success"|"failure")` ▸ Unix time of the newest event.
    pub last_event: BTreeMap<(String, String), f64>,
    /// Rows a full walk returns.
    pub rows: u64,
}

/// One `usersRegisteredByFeature` / `usersRegisteredByMethod` result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SummaryTruth {
    /// `totalUserCount`.
    pub total_users: u64,
    /// Feature (Graph's camelCase name) or method ▸ `userCount`.
    pub counts: BTreeMap<String, u64>,
}

/// Which `usersRegisteredBy*` function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryBy {
    /// `usersRegisteredByFeature`.
    Feature,
    /// `usersRegisteredByMethod`.
    Method,
}

/// `includedUserTypes` members (graph-api.md §3.3).
pub(crate) const USER_TYPES: [&str; 4] = ["all", "member", "guest", "unknownFutureValue"];
/// `includedUserRoles` members.
pub(crate) const USER_ROLES: [&str; 5] = [
    "all",
    "privilegedAdmin",
    "admin",
    "user",
    "unknownFutureValue",
];

pub(crate) fn registration_count(tenant: &Tenant, t: i64) -> RegistrationCountTruth {
    let mut n = [0u64; 5];
    for i in 0..tenant.users {
        let u = tenant.user(i, t);
        for (slot, on) in n.iter_mut().zip([
            u.sspr_registered,
            u.sspr_enabled,
            u.sspr_capable,
            u.mfa_registered,
            u.passwordless_capable,
        ]) {
            *slot += u64::from(on);
        }
    }
    let statuses = [
        "registered",
        "enabled",
        "capable",
        "mfaRegistered",
        POST_SENTINEL_STATUS,
    ]
    .iter()
    .zip(n)
    .map(|(s, n)| ((*s).to_string(), n))
    .collect();
    RegistrationCountTruth {
        total_users: tenant.users,
        statuses,
    }
}

/// Days of a `period` value (`D1`, `D7`, `D30`, any case).
pub(crate) fn period_days(period: &str) -> Option<i64> {
    match period.to_ascii_uppercase().as_str() {
        "D1" => Some(1),
        "D7" => Some(7),
        "D30" => Some(30),
        _ => None,
    }
}

pub(crate) fn usage_summary(tenant: &Tenant, t: i64, days: i64) -> UsageSummaryTruth {
    let mut truth = UsageSummaryTruth::default();
    for i in 0..event_count(tenant) {
        let e = event(tenant, i, t);
        let entry = truth
            .activities
            .entry((e.feature.to_string(), e.method.to_string()))
            .or_default();
        if e.unix > t - days * 86_400 {
            if e.success {
                entry.0 += 1;
            } else {
                entry.1 += 1;
            }
        }
    }
    debug_assert!(days * 86_400 <= EVENT_WINDOW_SECS);
    truth
}

pub(crate) fn usage_events(tenant: &Tenant, t: i64) -> UsageEventsTruth {
    let mut truth = UsageEventsTruth::default();
    for i in 0..event_count(tenant) {
        let e = event(tenant, i, t);
        let result = if e.success { "success" } else { "failure" };
        *truth
            .events
            .entry((
                e.feature.to_string(),
                e.method.to_string(),
                result.to_string(),
            ))
            .or_default() += 1;
        let last = truth
            .last_event
            .entry((e.feature.to_string(), result.to_string()))
            .or_insert(f64::MIN);
        *last = last.max(e.time());
        truth.rows += 1;
    }
    truth
}

/// The `authenticationMethod` strings of §4.5's sample, which
/// `userSignInsByAuthMethodSummary` reports.
pub(crate) const SIGN_IN_METHODS: [&str; 8] = [
    "password",
    "sms",
    "mobilePhone",
    "microsoftAuthenticatorPush",
    "microsoftAuthenticatorPasswordless",
    "windowsHelloForBusiness",
    "fido2SecurityKey",
    "passKeyDeviceBound",
];

/// `userSignInsByAuthMethodSummary(period)`: successful sign-ins per method over
/// `days`, about one a day per user spread over the methods; zeros included.
pub(crate) fn sign_ins_by_method(tenant: &Tenant, t: i64, days: i64) -> BTreeMap<String, u64> {
    let day = t.div_euclid(86_400) as u64;
    SIGN_IN_METHODS
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let share =
                (super::rng::hash3(tenant.seed, day * 16 + i as u64, 0x51_9e) % 100) as f64 / 400.0;
            let n = if i == 2 {
                0
            } else {
                (tenant.users as f64 * days as f64 * share).round() as u64
            };
            ((*m).to_string(), n)
        })
        .collect()
}

/// `None` when `types` or `roles` is not a member of its enum.
pub(crate) fn summary(
    tenant: &Tenant,
    t: i64,
    by: SummaryBy,
    types: &str,
    roles: &str,
) -> Option<SummaryTruth> {
    let types = USER_TYPES.iter().find(|v| v.eq_ignore_ascii_case(types))?;
    let roles = USER_ROLES.iter().find(|v| v.eq_ignore_ascii_case(roles))?;
    let mut truth = SummaryTruth::default();
    if by == SummaryBy::Feature {
        for f in [
            "ssprRegistered",
            "ssprEnabled",
            "ssprCapable",
            "passwordlessCapable",
            "mfaCapable",
            POST_SENTINEL_SUMMARY_FEATURE,
        ] {
            truth.counts.insert(f.to_string(), 0);
        }
    }
    for i in 0..tenant.users {
        let u = tenant.user(i, t);
        let type_ok = match *types {
            "all" => true,
            "member" => u.user_type == UserType::Member,
            "guest" => u.user_type == UserType::Guest,
            _ => false,
        };
        let admin = u.is_admin == Tri::True;
        let role_ok = match *roles {
            "all" => true,
            "admin" => admin,
            "privilegedAdmin" => admin && tenant.is_privileged_admin(i),
            "user" => !admin,
            _ => false,
        };
        if !(type_ok && role_ok) {
            continue;
        }
        truth.total_users += 1;
        let mut bump = |key: &str, on: bool| {
            if on {
                *truth.counts.entry(key.to_string()).or_default() += 1;
            }
        };
        match by {
            SummaryBy::Feature => {
                bump("ssprRegistered", u.sspr_registered);
                bump("ssprEnabled", u.sspr_enabled);
                bump("ssprCapable", u.sspr_capable);
                bump("passwordlessCapable", u.passwordless_capable);
                bump("mfaCapable", u.mfa_capable);
                bump(POST_SENTINEL_SUMMARY_FEATURE, u.mfa_registered);
            }
            SummaryBy::Method => {
                // Every user has a password; the doc example lists it as a method.
                bump("password", true);
                for m in u.methods.as_slice() {
                    bump(m, true);
                }
            }
        }
    }
    Some(truth)
}

/// User principal names of admins who are not MFA capable, sorted.
pub(crate) fn admins_without_mfa(tenant: &Tenant, t: i64) -> Vec<String> {
    let mut out: Vec<String> = (0..tenant.users)
        .map(|i| tenant.user(i, t))
        .filter(|u| u.is_admin == Tri::True && !u.mfa_capable)
        .map(|u| tenant.upn(u.index, u.user_type))
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::super::tenant::STATIC_DATASET_TIME;
    use super::*;

    #[test]
    fn summaries_are_consistent() {
        let t = Tenant::new("x", 5, 3000, None);
        let at = STATIC_DATASET_TIME;
        let all = summary(&t, at, SummaryBy::Feature, "all", "all").unwrap();
        assert_eq!(all.total_users, 3000);
        let members = summary(&t, at, SummaryBy::Feature, "member", "ALL").unwrap();
        let admins = summary(&t, at, SummaryBy::Feature, "all", "admin").unwrap();
        let privileged = summary(&t, at, SummaryBy::Feature, "all", "privilegedAdmin").unwrap();
        let users = summary(&t, at, SummaryBy::Feature, "all", "user").unwrap();
        assert!(members.total_users < all.total_users);
        assert!(privileged.total_users > 0 && privileged.total_users < admins.total_users);
        assert_eq!(admins.total_users + users.total_users, all.total_users);
        assert_eq!(all.counts.len(), 6);
        let none = summary(&t, at, SummaryBy::Method, "unknownFutureValue", "all").unwrap();
        assert_eq!(none.total_users, 0);
        assert!(summary(&t, at, SummaryBy::Method, "everyone", "all").is_none());
        let methods = summary(&t, at, SummaryBy::Method, "all", "all").unwrap();
        assert_eq!(methods.counts["password"], 3000);

        let count = registration_count(&t, at);
        assert_eq!(count.statuses.len(), 5);
        assert_eq!(count.statuses["capable"], all.counts["ssprCapable"]);

        let d1 = usage_summary(&t, at, 1);
        let d30 = usage_summary(&t, at, 30);
        let sum = |u: &UsageSummaryTruth| u.activities.values().map(|(a, b)| a + b).sum::<u64>();
        assert!(sum(&d1) < sum(&d30) && sum(&d30) < 3000);
        assert_eq!(d1.activities.len(), d30.activities.len());
        let ev = usage_events(&t, at);
        assert_eq!(ev.events.values().sum::<u64>(), 3000);
        assert!(ev.last_event.values().all(|&x| x <= at as f64 + 1.0));
        let admins_list = admins_without_mfa(&t, at);
        assert!(!admins_list.is_empty());
        assert!(admins_list.windows(2).all(|w| w[0] <= w[1]));
    }
}
