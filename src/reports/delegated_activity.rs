//! The two delegated-only activity reports (issue 15): `user_registration_activity`
//! (beta `authenticationMethods/userRegistrationActivity(period=…)`, graph-api.md §4.4,
//! the successor of `getCredentialUsageSummary`) feeds
//! `entra_registration_activities{period,feature,method,result}`, and
//! `user_sign_ins_by_auth_method_summary` (§4.5) feeds
//! `entra_sign_ins_by_method{period,method}`.
//!
//! Both are functions of `aggregationPeriod`, whose members are lowercase (`d1`, `d7`,
//! `d30`, unlike the legacy `'D30'`): the configured `usage_period` is sent lowercased
//! and kept as written in the `period` label, as `entra_credential_usage_activities`
//! does. Microsoft serves them to a signed-in user only ("Application: Not supported"),
//! so they need the tenant's delegated sign-in.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;

use super::credential_usage_summary::{
    Folder as ActivityFolder, UsageActivityCounts, encode_activities, label,
};
use super::{
    Auth, Finished, Folding, Refresh, Report, ReportData, Request, Settings, restore_tagged,
    store_tagged,
};
use crate::families::{Families, Family};
use crate::odata::Fold;

static REGISTRATION_ACTIVITIES: Family = Family::gauge(
    "entra_registration_activities",
    "Registration and reset activities over the period, by feature, method and result (userRegistrationActivity).",
);
static SIGN_INS_BY_METHOD: Family = Family::gauge(
    "entra_sign_ins_by_method",
    "Successful sign-ins over the period, by authentication method (userSignInsByAuthMethodSummary).",
);

static ACTIVITY_FAMILIES: [&Family; 1] = [&REGISTRATION_ACTIVITIES];
static SIGN_IN_FAMILIES: [&Family; 1] = [&SIGN_INS_BY_METHOD];

const ACTIVITY_TAG: &str = "RegistrationActivities";
const SIGN_IN_TAG: &str = "SignInsByMethod";

/// beta `userRegistrationActivity(period=…)`.
pub static REGISTRATION_ACTIVITY: RegistrationActivity = RegistrationActivity;
/// beta `userSignInsByAuthMethodSummary(period=…)`.
pub static SIGN_INS: SignInsByMethod = SignInsByMethod;

/// `user_registration_activity`.
#[derive(Debug)]
pub struct RegistrationActivity;

/// `user_sign_ins_by_auth_method_summary`.
#[derive(Debug)]
pub struct SignInsByMethod;

/// The function call with the period as `aggregationPeriod` wants it.
fn function_path(path: &str, s: &Settings) -> Vec<Request> {
    vec![Request {
        path: format!("{path}(period='{}')", s.usage_period.to_ascii_lowercase()),
        paged: true,
    }]
}

impl Report for RegistrationActivity {
    fn name(&self) -> &'static str {
        "user_registration_activity"
    }

    fn path(&self) -> &'static str {
        "/beta/reports/authenticationMethods/userRegistrationActivity"
    }

    fn permission(&self) -> &'static str {
        "AuditLog.Read.All"
    }

    fn auth(&self) -> Auth {
        Auth::DelegatedOnly {
            alternative: "entra_credential_usage_events",
        }
    }

    fn families(&self) -> &'static [&'static Family] {
        &ACTIVITY_FAMILIES
    }

    fn requests(&self, s: &Settings) -> Vec<Request> {
        function_path(self.path(), s)
    }

    fn start(&self, s: &Settings) -> Box<dyn Refresh> {
        let period = s.usage_period.clone();
        Box::new(Folding::new(ActivityFolder::default(), move |f| {
            Finished::new(RegistrationActivities {
                period,
                counts: f.0,
            })
        }))
    }

    fn identity(&self, s: &Settings) -> String {
        s.usage_period.clone()
    }

    fn restore(&self, stored: &serde_json::Value) -> serde_json::Result<Box<dyn ReportData>> {
        Ok(Box::new(restore_tagged::<RegistrationActivities>(
            ACTIVITY_TAG,
            stored,
        )?))
    }
}

/// What `user_registration_activity` stores.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct RegistrationActivities {
    /// The `period` label, as configured.
    pub period: String,
    /// `(feature, method)` ▸ `(successes, failures)`.
    pub counts: UsageActivityCounts,
}

impl ReportData for RegistrationActivities {
    fn encode(&self, tenant: &str, out: &mut Families) {
        encode_activities(
            &REGISTRATION_ACTIVITIES,
            tenant,
            &self.period,
            &self.counts,
            out,
        );
    }

    fn store(&self) -> serde_json::Value {
        store_tagged(ACTIVITY_TAG, self)
    }
}

impl Report for SignInsByMethod {
    fn name(&self) -> &'static str {
        "user_sign_ins_by_auth_method_summary"
    }

    fn path(&self) -> &'static str {
        "/beta/reports/authenticationMethods/userSignInsByAuthMethodSummary"
    }

    fn permission(&self) -> &'static str {
        "AuditLog.Read.All"
    }

    fn auth(&self) -> Auth {
        Auth::DelegatedOnly {
            alternative: "entra_daily_sign_ins",
        }
    }

    fn families(&self) -> &'static [&'static Family] {
        &SIGN_IN_FAMILIES
    }

    fn requests(&self, s: &Settings) -> Vec<Request> {
        function_path(self.path(), s)
    }

    fn start(&self, s: &Settings) -> Box<dyn Refresh> {
        let period = s.usage_period.clone();
        Box::new(Folding::new(SignInFolder::default(), move |f| {
            Finished::new(SignIns {
                period,
                methods: f.0,
            })
        }))
    }

    fn identity(&self, s: &Settings) -> String {
        s.usage_period.clone()
    }

    fn restore(&self, stored: &serde_json::Value) -> serde_json::Result<Box<dyn ReportData>> {
        Ok(Box::new(restore_tagged::<SignIns>(SIGN_IN_TAG, stored)?))
    }
}

/// One `userSignInUsageByAuthMethodActivity`: the key is the method, not an `id`.
#[derive(Debug, Deserialize)]
pub struct SignInRow<'a> {
    /// The method as sent.
    #[serde(rename = "authenticationMethod", borrow, default)]
    pub method: Option<Cow<'a, str>>,
    /// Successful sign-ins with it.
    #[serde(rename = "successActivityCount", default)]
    pub successes: Option<u64>,
}

/// Folds sign-in rows: method ▸ successes (a repeated method is added up).
#[derive(Debug, Default)]
pub struct SignInFolder(pub BTreeMap<String, u64>);

impl Fold for SignInFolder {
    type Row<'de> = SignInRow<'de>;

    fn add(&mut self, row: SignInRow<'_>) {
        *self
            .0
            .entry(label(row.method.as_deref()).to_owned())
            .or_default() += row.successes.unwrap_or(0);
    }
}

/// What `user_sign_ins_by_auth_method_summary` stores.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct SignIns {
    /// The `period` label, as configured.
    pub period: String,
    /// Method ▸ successful sign-ins.
    pub methods: BTreeMap<String, u64>,
}

impl ReportData for SignIns {
    fn encode(&self, tenant: &str, out: &mut Families) {
        let id = out.id(&SIGN_INS_BY_METHOD);
        for (method, n) in &self.methods {
            out.push(
                id,
                vec![
                    ("tenant", tenant),
                    ("period", &self.period),
                    ("method", method),
                ],
                *n,
            );
        }
    }

    fn store(&self) -> serde_json::Value {
        store_tagged(SIGN_IN_TAG, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            page_size: 999,
            usage_period: "D7".into(),
            summary_user_types: vec![],
            summary_user_roles: vec![],
            admins_without_mfa: false,
            max_listed_admins: 0,
            ..Settings::default()
        }
    }

    #[test]
    fn periods_are_lowercase_in_the_url_and_as_written_in_the_label() {
        assert_eq!(
            REGISTRATION_ACTIVITY.requests(&settings())[0].path,
            "/beta/reports/authenticationMethods/userRegistrationActivity(period='d7')"
        );
        assert_eq!(
            SIGN_INS.requests(&settings())[0].path,
            "/beta/reports/authenticationMethods/userSignInsByAuthMethodSummary(period='d7')"
        );
        assert!(matches!(SIGN_INS.auth(), Auth::DelegatedOnly { .. }));
    }

    #[test]
    fn doc_samples_fold_and_restore() {
        // graph-api.md §4.4 and §4.5 examples, zeros kept, a repeated method added up.
        let mut r = REGISTRATION_ACTIVITY.start(&settings());
        r.page(0, br##"{"value":[
          {"id":"8998","feature":"registration","successfulActivityCount":83,"failureActivityCount":214,"authMethod":"microsoftAuthenticatorPush"},
          {"id":"0a59","feature":"reset","successfulActivityCount":0,"failureActivityCount":0,"authMethod":"sms"}]}"##)
            .unwrap();
        let f = r.finish();
        let mut out = Families::default();
        f.data.encode("t", &mut out);
        let lines = out.sample_lines();
        assert_eq!(lines.len(), 4);
        assert!(lines.contains(&"entra_registration_activities{tenant=\"t\",period=\"D7\",feature=\"registration\",method=\"microsoftAuthenticatorPush\",result=\"failure\"} 214".to_owned()));
        assert!(lines.contains(&"entra_registration_activities{tenant=\"t\",period=\"D7\",feature=\"reset\",method=\"sms\",result=\"success\"} 0".to_owned()));
        let back = REGISTRATION_ACTIVITY.restore(&f.data.store()).unwrap();
        let mut again = Families::default();
        back.encode("t", &mut again);
        assert_eq!(again.sample_lines(), lines);

        let mut r = SIGN_INS.start(&settings());
        r.page(0, br##"{"value":[
          {"@odata.type":"#microsoft.graph.userSignInUsageByAuthMethodActivity","authenticationMethod":"password","successActivityCount":1470},
          {"authenticationMethod":"passKeyDeviceBound","successActivityCount":843},
          {"authenticationMethod":"password","successActivityCount":30}]}"##)
            .unwrap();
        let f = r.finish();
        let mut out = Families::default();
        f.data.encode("t", &mut out);
        assert_eq!(
            out.sample_lines(),
            [
                "entra_sign_ins_by_method{tenant=\"t\",period=\"D7\",method=\"passKeyDeviceBound\"} 843",
                "entra_sign_ins_by_method{tenant=\"t\",period=\"D7\",method=\"password\"} 1500",
            ]
        );
        assert!(
            SIGN_INS
                .start(&settings())
                .page(0, br#"{"value":[{"successActivityCount":"5"}]}"#)
                .is_err()
        );
    }
}
