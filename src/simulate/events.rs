//! Synthetic SSPR/MFA registration and reset events, the rows of
//! `userCredentialUsageDetails` and `userEventsSummary` (graph-api.md §4.1, §5.4) and the
//! source of the `getCredentialUsageSummary` counts (§5.3).
//!
//! Like the users, an event is a pure function of `(seed, index, dataset time)`: its age
//! is fixed, so its time moves with the dataset time of drifting tenants. There are as
//! many events as users, spread over the last [`EVENT_WINDOW_SECS`].

use super::dates::odata_datetime;
use super::json::{push_key, push_str};
use super::rng::{Draws, guid_from, hash3};
use super::tenant::Tenant;

/// Events are up to 35 days old, so a `D30` summary leaves some out.
pub(crate) const EVENT_WINDOW_SECS: i64 = 35 * 86_400;

/// A made-up `featureType` member after `unknownFutureValue` (graph-api.md §1.5), hidden
/// without `Prefer: include-unknown-enum-members`.
pub(crate) const POST_SENTINEL_FEATURE: &str = "passwordChange";

/// `usageAuthMethod` members before the sentinel (graph-api.md §4.6); every other value
/// is sent as `unknownFutureValue` unless the client asks for unknown members.
const PRE_SENTINEL_METHODS: &[&str] = &[
    "email",
    "mobileSMS",
    "mobileCall",
    "officePhone",
    "securityQuestion",
    "appNotification",
    "appCode",
    "alternateMobileCall",
    "fido",
    "appPassword",
];

/// Registration events by method: mostly post-sentinel members, as in the doc sample.
const REGISTRATION_METHODS: &[(&str, f64)] = &[
    ("microsoftAuthenticatorPush", 0.30),
    ("mobilePhone", 0.20),
    ("email", 0.12),
    ("softwareOneTimePasscode", 0.10),
    ("windowsHelloForBusiness", 0.08),
    ("fido2SecurityKey", 0.05),
    ("passKeyDeviceBound", 0.05),
    ("securityQuestion", 0.04),
    ("temporaryAccessPass", 0.03),
    ("officePhone", 0.02),
    ("alternateMobilePhone", 0.01),
];

/// Reset events by method: the legacy pre-sentinel names.
const RESET_METHODS: &[(&str, f64)] = &[
    ("email", 0.30),
    ("mobileSMS", 0.25),
    ("appNotification", 0.15),
    ("appCode", 0.10),
    ("mobileCall", 0.08),
    ("securityQuestion", 0.07),
    ("officePhone", 0.05),
];

/// Free text, as Graph sends it: clients must never turn it into a label.
const FAILURE_REASONS: &[&str] = &[
    "User contacted an admin after trying the email verification option",
    "User cancelled the verification",
    "Verification code \"expired\" before it was entered",
    "The phone number is not valid.\nTry again.",
    "Échec de la vérification",
];

const SALT_EVENT: u64 = 20;
const SALT_EVENT_ID_HI: u64 = 21;
const SALT_EVENT_ID_LO: u64 = 22;

/// One event.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Event {
    pub(crate) index: u64,
    /// Index of the user it happened to.
    pub(crate) user: u64,
    pub(crate) feature: &'static str,
    /// Graph's `usageAuthMethod` string, with-header view.
    pub(crate) method: &'static str,
    pub(crate) success: bool,
    /// `""` on success.
    pub(crate) failure_reason: &'static str,
    pub(crate) unix: i64,
    /// 100 ns ticks of the fraction, or none for the short `…:18Z` form.
    pub(crate) ticks: Option<u32>,
    /// Carries `@odata.type` in the report that does not always send it.
    pub(crate) odata_type: bool,
}

impl Event {
    /// Unix time with the fraction, as a client reading `eventDateTime` gets it.
    pub(crate) fn time(&self) -> f64 {
        // The same arithmetic as `Duration::as_secs_f64` (seconds plus nanoseconds over
        // 1e9), so a correct client's value compares equal.
        self.unix as f64 + f64::from(self.ticks.unwrap_or(0) * 100) / 1e9
    }
}

/// Whether `method` is hidden without `Prefer: include-unknown-enum-members`.
pub(crate) fn is_post_sentinel_method(method: &str) -> bool {
    method != "unknownFutureValue" && !PRE_SENTINEL_METHODS.contains(&method)
}

/// The wire value of an enum member for a client that did or did not ask for unknown
/// members.
pub(crate) fn masked(value: &str, post_sentinel: bool, include_unknown: bool) -> &str {
    if post_sentinel && !include_unknown {
        "unknownFutureValue"
    } else {
        value
    }
}

/// Events in the tenant: one per user.
pub(crate) fn event_count(tenant: &Tenant) -> u64 {
    tenant.users
}

fn pick(d: &mut Draws, pool: &[(&'static str, f64)]) -> &'static str {
    let total: f64 = pool.iter().map(|(_, w)| w).sum();
    let mut x = d.unit() * total;
    for (m, w) in pool {
        if x < *w {
            return m;
        }
        x -= w;
    }
    pool[pool.len() - 1].0
}

/// The event at `index` as of dataset time `t`.
pub(crate) fn event(tenant: &Tenant, index: u64, t: i64) -> Event {
    let mut d = Draws::new(tenant.seed, index, SALT_EVENT);
    let user = d.below(tenant.users.max(1));
    let feature = match d.unit() {
        x if x < 0.01 => POST_SENTINEL_FEATURE,
        x if x < 0.65 => "registration",
        _ => "reset",
    };
    let method = if feature == "reset" {
        pick(&mut d, RESET_METHODS)
    } else {
        pick(&mut d, REGISTRATION_METHODS)
    };
    let success = d.chance(0.85);
    let reason = FAILURE_REASONS[d.below(FAILURE_REASONS.len() as u64) as usize];
    let age = d.below(EVENT_WINDOW_SECS as u64) as i64;
    let ticks = d.chance(0.7).then(|| d.below(10_000_000) as u32);
    Event {
        index,
        user,
        feature,
        method,
        success,
        failure_reason: if success { "" } else { reason },
        unix: t - age,
        ticks,
        odata_type: d.chance(0.1),
    }
}

/// Appends one event row: `@odata.type` when `always_typed` (userEventsSummary's doc
/// example always carries it) or on some rows, then the properties of §4.1.
pub(crate) fn write_event(
    out: &mut String,
    tenant: &Tenant,
    e: &Event,
    t: i64,
    include_unknown: bool,
    entity_type: &str,
    always_typed: bool,
) {
    out.push('{');
    if always_typed || e.odata_type {
        push_key(out, "@odata.type");
        push_str(out, &format!("#{entity_type}"), false);
        out.push(',');
    }
    push_key(out, "id");
    push_str(
        out,
        &guid_from(
            hash3(tenant.seed, e.index, SALT_EVENT_ID_HI),
            hash3(tenant.seed, e.index, SALT_EVENT_ID_LO),
        ),
        false,
    );
    out.push(',');
    push_key(out, "feature");
    let feature = masked(
        e.feature,
        e.feature == POST_SENTINEL_FEATURE,
        include_unknown,
    );
    push_str(out, feature, false);
    let user_type = tenant.user(e.user, t).user_type;
    out.push(',');
    push_key(out, "userPrincipalName");
    push_str(out, &tenant.upn(e.user, user_type), false);
    out.push(',');
    push_key(out, "userDisplayName");
    push_str(out, &tenant.display_name(e.user), false);
    out.push(',');
    push_key(out, "isSuccess");
    out.push_str(if e.success { "true" } else { "false" });
    out.push(',');
    push_key(out, "authMethod");
    let method = masked(e.method, is_post_sentinel_method(e.method), include_unknown);
    push_str(out, method, false);
    out.push(',');
    push_key(out, "failureReason");
    push_str(out, e.failure_reason, false);
    out.push(',');
    push_key(out, "eventDateTime");
    push_str(out, &odata_datetime(e.unix, e.ticks), false);
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::super::tenant::STATIC_DATASET_TIME;
    use super::*;

    #[test]
    fn events_are_valid_and_varied() {
        let t = Tenant::new("contoso.example", 3, 2000, None);
        let mut features = std::collections::BTreeSet::new();
        let mut hidden = 0;
        for i in 0..event_count(&t) {
            let e = event(&t, i, STATIC_DATASET_TIME);
            assert!(
                e.unix <= STATIC_DATASET_TIME && e.unix > STATIC_DATASET_TIME - EVENT_WINDOW_SECS
            );
            assert_eq!(e.success, e.failure_reason.is_empty());
            features.insert(e.feature);
            let mut out = String::new();
            write_event(
                &mut out,
                &t,
                &e,
                STATIC_DATASET_TIME,
                false,
                "microsoft.graph.x",
                false,
            );
            let v: serde_json::Value =
                serde_json::from_str(&out).unwrap_or_else(|err| panic!("{err}: {out}"));
            hidden += usize::from(v["authMethod"] == "unknownFutureValue");
            assert_eq!(v["isSuccess"], e.success);
        }
        assert_eq!(features.len(), 3, "{features:?}");
        assert!(hidden > 0);
        assert!(!is_post_sentinel_method("mobileSMS"));
        assert!(is_post_sentinel_method("mobilePhone"));
    }
}
