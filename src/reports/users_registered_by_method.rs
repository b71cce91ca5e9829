//! `users_registered_by_method`: v1.0 `usersRegisteredByMethod(includedUserTypes,
//! includedUserRoles)` (graph-api.md §3), a `userRegistrationMethodSummary`. Feeds
//! `entra_reported_users{report="users_registered_by_method"}` and
//! `entra_reported_users_with_method` (method as Graph sends it: an open string set).
//!
//! Delegated-only per Microsoft, like `users_registered_by_feature`.

use serde::Deserialize;

use super::users_registered_by::{REPORTED_USERS, Summary, SummaryReport, parse_object, summarize};
use crate::families::Family;

/// The report.
pub static REPORT: SummaryReport = SummaryReport {
    name: "users_registered_by_method",
    path: "/v1.0/reports/authenticationMethods/usersRegisteredByMethod",
    parse,
    families: &[&REPORTED_USERS, &WITH_METHOD],
    key: "method",
    alternative: "entra_users_with_method",
};

static WITH_METHOD: Family = Family::gauge(
    "entra_reported_users_with_method",
    "Users with the method registered, per queried user types and roles (usersRegisteredByMethod).",
);

/// `userRegistrationMethodSummary`. The doc example omits `totalUserCount`.
#[derive(Debug, Deserialize)]
pub struct Response {
    /// Users matching the type and role.
    #[serde(rename = "totalUserCount", default)]
    pub total_user_count: Option<u64>,
    /// Users per method.
    #[serde(rename = "userRegistrationMethodCounts", default)]
    pub counts: Option<Vec<MethodCount>>,
}

/// `userRegistrationMethodCount`.
#[derive(Debug, Deserialize)]
pub struct MethodCount {
    /// `password`, `mobilePhone`, `windowsHelloForBusiness`, …
    #[serde(rename = "authenticationMethod", default)]
    pub method: Option<String>,
    /// Users.
    #[serde(rename = "userCount", default)]
    pub user_count: Option<u64>,
}

/// Parses one response into a [`Summary`] keyed by the method as sent.
pub fn parse(body: &[u8]) -> Result<Summary, serde_json::Error> {
    let r: Response = parse_object(body)?;
    let entries = r
        .counts
        .into_iter()
        .flatten()
        .map(|c| (c.method, c.user_count));
    Ok(summarize(r.total_user_count, entries, str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_example() {
        let body = br##"{"@odata.type":"#microsoft.graph.userRegistrationMethodSummary","totalUserCount":23123,
          "userTypes":"all","userRoles":"all","userRegistrationMethodCounts":[
          {"authenticationMethod":"password","userCount":12209},
          {"authenticationMethod":"windowsHelloForBusiness","userCount":223},
          {"authenticationMethod":"mobilePhone","userCount":4234}]}"##;
        let s = parse(body).unwrap();
        assert_eq!(s.total_users, Some(23123));
        assert_eq!(s.counts["password"], 12209);
        assert_eq!(s.counts["windowsHelloForBusiness"], 223);
        assert_eq!(s.counts.len(), 3);
        let doc = br#"{"userRegistrationMethodCounts":[{"authenticationMethod":"password","userCount":1}]}"#;
        assert_eq!(parse(doc).unwrap().total_users, None);
    }
}
