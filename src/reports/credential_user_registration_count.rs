//! `credential_user_registration_count`: beta `/reports/getCredentialUserRegistrationCount`
//! (graph-api.md §5.2), a collection of `credentialUserRegistrationCount` (in practice one
//! element) with the users per registration status. Feeds
//! `entra_credential_registration_users{status}` and
//! `entra_credential_registration_total_users`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;

use super::{
    Finished, Folding, Refresh, Report, ReportData, Request, Settings, restore_tagged, snake_case,
    store_tagged,
};
use crate::cloud::Cloud;
use crate::families::{Families, Family};
use crate::odata::Fold;

/// The report.
pub static REPORT: CredentialUserRegistrationCount = CredentialUserRegistrationCount;

/// beta `getCredentialUserRegistrationCount`.
#[derive(Debug)]
pub struct CredentialUserRegistrationCount;

const TAG: &str = "RegistrationStatus";

static STATUS_USERS: Family = Family::gauge(
    "entra_credential_registration_users",
    "Users per registration status (getCredentialUserRegistrationCount).",
);
static TOTAL_USERS: Family = Family::gauge(
    "entra_credential_registration_total_users",
    "Enabled users counted by getCredentialUserRegistrationCount.",
);

/// The families of the report, in exposition order.
static FAMILIES: [&Family; 2] = [&STATUS_USERS, &TOTAL_USERS];

impl Report for CredentialUserRegistrationCount {
    fn name(&self) -> &'static str {
        "credential_user_registration_count"
    }

    fn path(&self) -> &'static str {
        "/beta/reports/getCredentialUserRegistrationCount"
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

    /// A function without `$top` (Graph refuses it, graph-api.md §5.2).
    fn requests(&self, _: &Settings) -> Vec<Request> {
        vec![Request {
            path: self.path().to_owned(),
            paged: true,
        }]
    }

    fn start(&self, _: &Settings) -> Box<dyn Refresh> {
        Box::new(Folding::new(Folder::default(), |f| Finished::new(f.0)))
    }

    fn restore(&self, stored: &serde_json::Value) -> serde_json::Result<Box<dyn ReportData>> {
        Ok(Box::new(restore_tagged::<RegistrationStatusCounts>(
            TAG, stored,
        )?))
    }
}

impl ReportData for RegistrationStatusCounts {
    fn encode(&self, tenant: &str, out: &mut Families) {
        out.add(&TOTAL_USERS, vec![("tenant", tenant)], self.total_users);
        let id = out.id(&STATUS_USERS);
        for (status, n) in &self.statuses {
            out.push(id, vec![("tenant", tenant), ("status", status)], *n);
        }
    }

    fn store(&self) -> serde_json::Value {
        store_tagged(TAG, self)
    }
}

/// One `credentialUserRegistrationCount`.
#[derive(Debug, Deserialize)]
pub struct Row<'a> {
    /// Users with `accountEnabled=true`.
    #[serde(rename = "totalUserCount", default)]
    pub total_user_count: Option<u64>,
    /// Users per status.
    #[serde(rename = "userRegistrationCounts", borrow, default)]
    pub counts: Option<Vec<StatusCount<'a>>>,
}

/// One `userRegistrationCount`.
///
/// The CSDL names are `registrationStatus` and `registrationCount`; Microsoft's API doc
/// example spells them `userRegistrationStatus` and `userRegistationCount` (sic), so
/// both are accepted.
#[derive(Debug, Deserialize)]
pub struct StatusCount<'a> {
    /// `registered`, `enabled`, `capable`, `mfaRegistered`, `unknownFutureValue`, or a
    /// member added later.
    #[serde(
        rename = "registrationStatus",
        alias = "userRegistrationStatus",
        borrow,
        default
    )]
    pub status: Option<Cow<'a, str>>,
    /// Users with that status.
    #[serde(
        rename = "registrationCount",
        alias = "userRegistationCount",
        alias = "userRegistrationCount",
        default
    )]
    pub count: Option<u64>,
}

/// The counts of one refresh.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct RegistrationStatusCounts {
    /// Sum of `totalUserCount` over the elements.
    pub total_users: u64,
    /// Status label (Graph's value in snake_case) ▸ users.
    pub statuses: BTreeMap<String, u64>,
}

/// Folds elements of this report.
#[derive(Debug, Default)]
pub struct Folder(pub RegistrationStatusCounts);

impl Fold for Folder {
    type Row<'de> = Row<'de>;

    fn add(&mut self, row: Row<'_>) {
        self.0.total_users += row.total_user_count.unwrap_or(0);
        for c in row.counts.into_iter().flatten() {
            // A status Graph adds later is counted under its own name, never dropped.
            let status = match c.status.as_deref() {
                None | Some("") => "unknown".to_owned(),
                Some(s) => snake_case(s),
            };
            *self.0.statuses.entry(status).or_default() += c.count.unwrap_or(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::odata::fold_page;

    #[test]
    fn csdl_and_doc_spellings_and_unknown_statuses() {
        // graph-api.md §5.2, plus the doc example's misspelt names and later members.
        let page = br##"{"@odata.context":"x","value":[{"id":"d3590ed6","totalUserCount":23123,
          "userRegistrationCounts":[
            {"registrationStatus":"registered","registrationCount":23423},
            {"registrationStatus":"enabled","registrationCount":4234},
            {"registrationStatus":"capable","registrationCount":323},
            {"registrationStatus":"mfaRegistered","registrationCount":33},
            {"userRegistrationStatus":"passwordlessCapable","userRegistationCount":7},
            {"registrationStatus":"unknownFutureValue","registrationCount":2},
            {"registrationStatus":"unknownFutureValue","registrationCount":1}
          ]}]}"##;
        let mut f = Folder::default();
        let info = fold_page(page, &mut f).unwrap();
        assert_eq!(info.rows, 1);
        assert_eq!(f.0.total_users, 23123);
        let s = &f.0.statuses;
        assert_eq!(s["registered"], 23423);
        assert_eq!(s["mfa_registered"], 33);
        assert_eq!(s["passwordless_capable"], 7);
        assert_eq!(s["unknown_future_value"], 3);
        assert_eq!(s.len(), 6);
    }

    #[test]
    fn wrong_types_fail() {
        let mut f = Folder::default();
        assert!(fold_page(br#"{"value":[{"totalUserCount":"5"}]}"#, &mut f).is_err());
    }
}
