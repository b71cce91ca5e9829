//! What `users_registered_by_feature` and `users_registered_by_method` share: the
//! function URL with `includedUserTypes`/`includedUserRoles` (graph-api.md §3.2), one call
//! per configured (type, role) pair, and the counts they fold into.
//!
//! Both are single complex values, not collections, so there is no paging: each response
//! is parsed whole (a few dozen entries).

use std::collections::BTreeMap;

/// One function result.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// `totalUserCount`; `None` when Graph leaves it out (Microsoft's own method-summary
    /// example does), so no made-up zero is exported.
    pub total_users: Option<u64>,
    /// Feature (snake_case) or method (as sent) ▸ users.
    pub counts: BTreeMap<String, u64>,
}

/// Every (type, role) pair of one refresh.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SummaryCounts {
    /// `(user_types, user_roles)` label values (the configured values) ▸ result.
    #[serde(with = "crate::util::map_as_pairs")]
    pub summaries: BTreeMap<(String, String), Summary>,
}

/// Builds a [`Summary`] from `totalUserCount` and the `(name, userCount)` entries;
/// `label` turns Graph's name into the label value, a missing name reads `unknown`, and
/// entries with the same label are added up.
pub fn summarize(
    total_user_count: Option<u64>,
    entries: impl IntoIterator<Item = (Option<String>, Option<u64>)>,
    label: impl Fn(&str) -> String,
) -> Summary {
    let mut s = Summary {
        total_users: total_user_count,
        ..Summary::default()
    };
    for (name, count) in entries {
        let name = match name.as_deref() {
            None | Some("") => "unknown".to_owned(),
            Some(n) => label(n),
        };
        *s.counts.entry(name).or_default() += count.unwrap_or(0);
    }
    s
}

/// Deserializes a function result, which must be one JSON object (serde would also
/// accept an array for a struct, and a collection here means Graph sent something else).
pub fn parse_object<'de, T: serde::Deserialize<'de>>(
    body: &'de [u8],
) -> Result<T, serde_json::Error> {
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(serde::de::Error::custom(
            "expected a JSON object (a single function result)",
        ));
    }
    serde_json::from_slice(body)
}

/// The function call for one (type, role) pair, below the Graph root: the documented
/// form `name(includedUserTypes='t',includedUserRoles='r')`.
pub fn function_path(path: &str, user_types: &str, user_roles: &str) -> String {
    format!("{path}(includedUserTypes='{user_types}',includedUserRoles='{user_roles}')")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_url_form() {
        assert_eq!(
            function_path(
                "/v1.0/reports/authenticationMethods/usersRegisteredByFeature",
                "member",
                "privilegedAdmin"
            ),
            "/v1.0/reports/authenticationMethods/usersRegisteredByFeature(includedUserTypes='member',includedUserRoles='privilegedAdmin')"
        );
    }
}
