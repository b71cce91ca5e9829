//! What `users_registered_by_feature` and `users_registered_by_method` share: the
//! function URL with `includedUserTypes`/`includedUserRoles` (graph-api.md §3.2), one call
//! per configured (type, role) pair, and the counts they fold into.
//!
//! Both are single complex values, not collections, so there is no paging: each response
//! is parsed whole (a few dozen entries).

use std::collections::BTreeMap;

use super::{
    Auth, Finished, Refresh, Report, ReportData, Request, Settings, restore_tagged, store_tagged,
};
use crate::families::{Families, Family};
use crate::odata::{PageError, PageInfo};

const TAG: &str = "Summary";

/// `entra_reported_users`, fed by both reports (`report` says which).
pub static REPORTED_USERS: Family = Family::gauge(
    "entra_reported_users",
    "Users matching the queried user types and roles (usersRegisteredByFeature / usersRegisteredByMethod).",
);

/// One of the two `usersRegisteredBy*` reports.
#[derive(Debug)]
pub struct SummaryReport {
    /// Config name.
    pub name: &'static str,
    /// Graph path of the function.
    pub path: &'static str,
    /// Parses one function result.
    pub parse: fn(&[u8]) -> Result<Summary, serde_json::Error>,
    /// The family of its per-name counts, in exposition order after `entra_reported_users`.
    pub families: &'static [&'static Family; 2],
    /// The label of the counted name: `feature` or `method`.
    pub key: &'static str,
    /// The family with the same numbers from `user_registration_details`.
    pub alternative: &'static str,
}

/// Every configured `(includedUserTypes, includedUserRoles)` pair: each is one call.
fn pairs(s: &Settings) -> impl Iterator<Item = (&str, &str)> {
    s.summary_user_types.iter().flat_map(|t| {
        s.summary_user_roles
            .iter()
            .map(move |r| (t.as_str(), r.as_str()))
    })
}

impl Report for SummaryReport {
    fn name(&self) -> &'static str {
        self.name
    }

    fn path(&self) -> &'static str {
        self.path
    }

    fn permission(&self) -> &'static str {
        "AuditLog.Read.All"
    }

    fn auth(&self) -> Auth {
        Auth::DelegatedOnly {
            alternative: self.alternative,
        }
    }

    fn families(&self) -> &'static [&'static Family] {
        self.families
    }

    /// One call per configured pair, each a single object (no paging).
    fn requests(&self, s: &Settings) -> Vec<Request> {
        pairs(s)
            .map(|(types, roles)| Request {
                path: function_path(self.path, types, roles),
                paged: false,
            })
            .collect()
    }

    fn start(&self, s: &Settings) -> Box<dyn Refresh> {
        Box::new(SummaryRefresh {
            data: SummaryData {
                report: self.name,
                family: self.families[1],
                key: self.key,
                counts: SummaryCounts::default(),
            },
            pairs: pairs(s)
                .map(|(t, r)| (t.to_owned(), r.to_owned()))
                .collect(),
            parse: self.parse,
        })
    }

    fn identity(&self, s: &Settings) -> String {
        format!(
            "{}|{}",
            s.summary_user_types.join(","),
            s.summary_user_roles.join(",")
        )
    }

    fn restore(&self, stored: &serde_json::Value) -> serde_json::Result<Box<dyn ReportData>> {
        Ok(Box::new(SummaryData {
            report: self.name,
            family: self.families[1],
            key: self.key,
            counts: restore_tagged(TAG, stored)?,
        }))
    }
}

/// A refresh: one result per pair, in the order of [`Report::requests`].
struct SummaryRefresh {
    data: SummaryData,
    pairs: Vec<(String, String)>,
    parse: fn(&[u8]) -> Result<Summary, serde_json::Error>,
}

impl Refresh for SummaryRefresh {
    fn page(&mut self, request: usize, body: &[u8]) -> Result<PageInfo, PageError> {
        let summary = (self.parse)(body)?;
        let pair = self.pairs[request].clone();
        self.data.counts.summaries.insert(pair, summary);
        Ok(PageInfo {
            next_link: None,
            rows: 1,
        })
    }

    fn finish(self: Box<Self>) -> Finished {
        Finished::new(self.data)
    }
}

/// What a refresh stores: the results per pair, and which report made them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryData {
    /// The report's name (the `report` label of `entra_reported_users`).
    pub report: &'static str,
    /// The family of the per-name counts.
    pub family: &'static Family,
    /// Its name label: `feature` or `method`.
    pub key: &'static str,
    /// The results.
    pub counts: SummaryCounts,
}

impl ReportData for SummaryData {
    fn encode(&self, tenant: &str, out: &mut Families) {
        let [users, family] = [&REPORTED_USERS, self.family].map(|f| out.id(f));
        for ((types, roles), s) in &self.counts.summaries {
            let pair = [
                ("tenant", tenant),
                ("user_types", types.as_str()),
                ("user_roles", roles.as_str()),
            ];
            if let Some(total) = s.total_users {
                out.push(
                    users,
                    vec![
                        ("tenant", tenant),
                        ("report", self.report),
                        ("user_types", types),
                        ("user_roles", roles),
                    ],
                    total,
                );
            }
            for (name, n) in &s.counts {
                let mut labels = pair.to_vec();
                labels.push((self.key, name));
                out.push(family, labels, *n);
            }
        }
    }

    fn store(&self) -> serde_json::Value {
        store_tagged(TAG, &self.counts)
    }
}

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
