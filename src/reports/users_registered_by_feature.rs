//! `users_registered_by_feature`: v1.0 `usersRegisteredByFeature(includedUserTypes,
//! includedUserRoles)` (graph-api.md §3), a `userRegistrationFeatureSummary`. Feeds
//! `entra_reported_users{report="users_registered_by_feature"}` and
//! `entra_reported_users_with_feature` (feature in snake_case).
//!
//! Microsoft documents it as delegated-only; with the app-only token this exporter uses,
//! Graph answers 403 and the refresh fails with a message saying so (see `collect`).

use serde::Deserialize;

use super::snake_case;
use super::users_registered_by::{REPORTED_USERS, Summary, SummaryReport, parse_object, summarize};
use crate::families::Family;

/// The report.
pub static REPORT: SummaryReport = SummaryReport {
    name: "users_registered_by_feature",
    path: "/v1.0/reports/authenticationMethods/usersRegisteredByFeature",
    parse,
    families: &[&REPORTED_USERS, &WITH_FEATURE],
    key: "feature",
    alternative: "entra_users_with_feature",
};

static WITH_FEATURE: Family = Family::gauge(
    "entra_reported_users_with_feature",
    "Users for whom the feature holds, per queried user types and roles (usersRegisteredByFeature).",
);

/// `userRegistrationFeatureSummary`; `userTypes`/`userRoles` echo the request and are
/// not needed.
#[derive(Debug, Deserialize)]
pub struct Response {
    /// Users matching the type and role.
    #[serde(rename = "totalUserCount", default)]
    pub total_user_count: Option<u64>,
    /// Users per feature.
    #[serde(rename = "userRegistrationFeatureCounts", default)]
    pub counts: Option<Vec<FeatureCount>>,
}

/// `userRegistrationFeatureCount`.
#[derive(Debug, Deserialize)]
pub struct FeatureCount {
    /// `authenticationMethodFeature`: `ssprRegistered`, …, `mfaCapable`, or a later member.
    #[serde(default)]
    pub feature: Option<String>,
    /// Users.
    #[serde(rename = "userCount", default)]
    pub user_count: Option<u64>,
}

/// Parses one response into a [`Summary`] keyed by the snake_case feature.
pub fn parse(body: &[u8]) -> Result<Summary, serde_json::Error> {
    let r: Response = parse_object(body)?;
    let entries = r
        .counts
        .into_iter()
        .flatten()
        .map(|c| (c.feature, c.user_count));
    Ok(summarize(r.total_user_count, entries, snake_case))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_example() {
        let body = br##"{"@odata.context":"x","@odata.type":"#microsoft.graph.userRegistrationFeatureSummary",
          "totalUserCount":23123,"userTypes":"all","userRoles":"all","userRegistrationFeatureCounts":[
          {"feature":"ssprRegistered","userCount":23423},{"feature":"ssprEnabled","userCount":4234},
          {"feature":"ssprCapable","userCount":4234},{"feature":"passwordlessCapable","userCount":323},
          {"feature":"mfaCapable","userCount":3345},{"feature":"mfaRegistered","userCount":3}]}"##;
        let s = parse(body).unwrap();
        assert_eq!(s.total_users, Some(23123));
        assert_eq!(s.counts["sspr_registered"], 23423);
        assert_eq!(s.counts["passwordless_capable"], 323);
        assert_eq!(s.counts["mfa_capable"], 3345);
        assert_eq!(
            s.counts["mfa_registered"], 3,
            "later members keep their own name"
        );
        assert!(parse(b"{\"totalUserCount\":\"x\"}").is_err());
        assert!(parse(b"[]").is_err());
    }
}
