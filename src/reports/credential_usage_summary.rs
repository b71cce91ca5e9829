//! `credential_usage_summary`: beta `/reports/getCredentialUsageSummary(period='D30')`
//! (graph-api.md §5.3), success and failure counts of SSPR/MFA registration and reset
//! activity per (feature, method) over the configured period. Feeds
//! `entra_credential_usage_activities{period,feature,method,result}`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;

use super::{
    Finished, Folding, Refresh, Report, ReportData, Request, Settings, restore_tagged, store_tagged,
};
use crate::cloud::Cloud;
use crate::families::{Families, Family};
use crate::odata::Fold;

/// The report.
pub static REPORT: CredentialUsageSummary = CredentialUsageSummary;

/// beta `getCredentialUsageSummary(period=…)`.
#[derive(Debug)]
pub struct CredentialUsageSummary;

const TAG: &str = "UsageActivities";

static ACTIVITIES: Family = Family::gauge(
    "entra_credential_usage_activities",
    "Registration and reset activities over the period, by feature, method and result (getCredentialUsageSummary).",
);

/// The families of the report, in exposition order.
static FAMILIES: [&Family; 1] = [&ACTIVITIES];

impl Report for CredentialUsageSummary {
    fn name(&self) -> &'static str {
        "credential_usage_summary"
    }

    fn path(&self) -> &'static str {
        "/beta/reports/getCredentialUsageSummary"
    }

    fn retired(&self) -> Option<super::Retirement> {
        Some(super::Retirement {
            date: "2025-08-01",
            successor: "user_registration_activity (delegated only)",
        })
    }

    fn permission(&self) -> &'static str {
        "Reports.Read.All"
    }

    /// A legacy `credential*` API: Global only (graph-api.md §1.1).
    fn offered_in(&self, cloud: Cloud) -> bool {
        cloud == Cloud::Global
    }

    fn families(&self) -> &'static [&'static Family] {
        &FAMILIES
    }

    /// A function: its parameter goes in the path (graph-api.md §5.3).
    fn requests(&self, s: &Settings) -> Vec<Request> {
        vec![Request {
            path: format!("{}(period='{}')", self.path(), s.usage_period),
            paged: true,
        }]
    }

    fn start(&self, s: &Settings) -> Box<dyn Refresh> {
        let period = s.usage_period.clone();
        Box::new(Folding::new(Folder::default(), move |f| {
            Finished::new(UsageActivities {
                period,
                counts: f.0,
            })
        }))
    }

    fn identity(&self, s: &Settings) -> String {
        s.usage_period.clone()
    }

    fn restore(&self, stored: &serde_json::Value) -> serde_json::Result<Box<dyn ReportData>> {
        Ok(Box::new(restore_tagged::<UsageActivities>(TAG, stored)?))
    }
}

/// What a refresh stores: the counts over `period`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct UsageActivities {
    /// The `period` label, as configured: `D1`, `D7`, `D30`.
    pub period: String,
    /// The counts.
    pub counts: UsageActivityCounts,
}

impl ReportData for UsageActivities {
    fn encode(&self, tenant: &str, out: &mut Families) {
        encode_activities(&ACTIVITIES, tenant, &self.period, &self.counts, out);
    }

    fn store(&self) -> serde_json::Value {
        store_tagged(TAG, self)
    }
}

/// One `credentialUsageSummary`.
#[derive(Debug, Deserialize)]
pub struct Row<'a> {
    /// `featureType`: `registration`, `reset`, `unknownFutureValue` or a later member.
    #[serde(borrow, default)]
    pub feature: Option<Cow<'a, str>>,
    /// `usageAuthMethod`, as sent.
    #[serde(rename = "authMethod", borrow, default)]
    pub auth_method: Option<Cow<'a, str>>,
    /// Successful activities.
    #[serde(rename = "successfulActivityCount", default)]
    pub successes: Option<u64>,
    /// Failed activities.
    #[serde(rename = "failureActivityCount", default)]
    pub failures: Option<u64>,
}

/// The label value for an enum string that is missing or empty.
pub const UNKNOWN: &str = "unknown";

/// An enum value as a label: Graph's string as sent, [`UNKNOWN`] when missing or `""`.
pub fn label(value: Option<&str>) -> &str {
    match value {
        None | Some("") => UNKNOWN,
        Some(v) => v,
    }
}

/// The counts of one refresh.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct UsageActivityCounts {
    /// `(feature, method)` ▸ `(successes, failures)`. Rows with the same key (e.g. two
    /// post-sentinel methods both sent as `unknownFutureValue`) are added up.
    #[serde(with = "crate::util::map_as_pairs")]
    pub activities: BTreeMap<(String, String), (u64, u64)>,
}

/// The samples of `family{period,feature,method,result}`: this report's, and its
/// successor `user_registration_activity`'s.
pub fn encode_activities(
    family: &'static Family,
    tenant: &str,
    period: &str,
    counts: &UsageActivityCounts,
    out: &mut Families,
) {
    let id = out.id(family);
    for ((feature, method), (ok, failed)) in &counts.activities {
        for (result, n) in [("success", *ok), ("failure", *failed)] {
            out.push(
                id,
                vec![
                    ("tenant", tenant),
                    ("period", period),
                    ("feature", feature),
                    ("method", method),
                    ("result", result),
                ],
                n,
            );
        }
    }
}

/// Folds rows of this report.
#[derive(Debug, Default)]
pub struct Folder(pub UsageActivityCounts);

impl Fold for Folder {
    type Row<'de> = Row<'de>;

    fn add(&mut self, row: Row<'_>) {
        let key = (
            label(row.feature.as_deref()).to_owned(),
            label(row.auth_method.as_deref()).to_owned(),
        );
        let entry = self.0.activities.entry(key).or_default();
        entry.0 += row.successes.unwrap_or(0);
        entry.1 += row.failures.unwrap_or(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::odata::fold_page;

    #[test]
    fn doc_example_and_drift() {
        let page = br##"{"@odata.context":"x","value":[
          {"id":"id-value","feature":"registration","successfulActivityCount":12345,"failureActivityCount":123,"authMethod":"email"},
          {"@odata.type":"#microsoft.graph.credentialUsageSummary","id":"b","feature":"reset","successfulActivityCount":0,"failureActivityCount":0,"authMethod":"mobileSMS"},
          {"id":"c","feature":"passwordChange","successfulActivityCount":4,"failureActivityCount":1,"authMethod":"qrCode"},
          {"id":"d","feature":"registration","successfulActivityCount":1,"failureActivityCount":2,"authMethod":"unknownFutureValue"},
          {"id":"e","feature":"registration","successfulActivityCount":3,"failureActivityCount":4,"authMethod":"unknownFutureValue"},
          {"id":"f"}
        ]}"##;
        let mut f = Folder::default();
        assert_eq!(fold_page(page, &mut f).unwrap().rows, 6);
        let a = &f.0.activities;
        let k = |f: &str, m: &str| (f.to_owned(), m.to_owned());
        assert_eq!(a[&k("registration", "email")], (12345, 123));
        assert_eq!(a[&k("reset", "mobileSMS")], (0, 0));
        assert_eq!(a[&k("passwordChange", "qrCode")], (4, 1));
        assert_eq!(a[&k("registration", "unknownFutureValue")], (4, 6));
        assert_eq!(a[&k("unknown", "unknown")], (0, 0));
    }
}
