//! `authentication_methods_policy`: the tenant's authentication methods policy
//! (`GET /v1.0/policies/authenticationMethodsPolicy`, graph-api.md §13.5), which says why
//! coverage looks as it does: a method the policy disables cannot be registered, and a
//! registration campaign left off is a common reason coverage stalls.
//!
//! Feeds `entra_auth_method_enabled{method}`, one series per method configuration in the
//! policy (`method` = the configuration's `id` as sent: `Fido2`, `Sms`, an external
//! method's GUID …), and `entra_auth_method_registration_campaign_enabled`. Readings
//! (design.md): a method counts as enabled iff its `state` is `enabled`, so a state
//! Microsoft adds later counts as not enabled; the campaign counts only in state
//! `enabled`, not `default` (which means "not set", and the default is off, §13.5.1).
//!
//! The policy is one document, not a collection: it is parsed whole, and a document
//! that does not parse (no configuration list, a configuration without an id) fails the
//! refresh, so the last snapshot stays rather than a partial one being published.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    Finished, Refresh, Report, ReportData, Request, Settings, Warning, restore_tagged, store_tagged,
};
use crate::families::{Families, Family};
use crate::odata::{PageError, PageInfo};

/// The report.
pub static REPORT: AuthenticationMethodsPolicy = AuthenticationMethodsPolicy;

/// The snapshot-file tag of policy data.
const TAG: &str = "Policy";

/// `entra_auth_method_enabled`.
pub static METHOD_ENABLED: Family = Family::gauge(
    "entra_auth_method_enabled",
    "1 if the authentication methods policy enables the method (its configuration's state is enabled) for anyone, else 0; method is the configuration id as Graph sends it.",
);

/// `entra_auth_method_registration_campaign_enabled`.
pub static CAMPAIGN_ENABLED: Family = Family::gauge(
    "entra_auth_method_registration_campaign_enabled",
    "1 if the registration campaign (nudge to register Microsoft Authenticator) is in state enabled, else 0 (default, disabled, absent).",
);

static FAMILIES: [&Family; 2] = [&METHOD_ENABLED, &CAMPAIGN_ENABLED];

/// The `authentication_methods_policy` report.
#[derive(Debug)]
pub struct AuthenticationMethodsPolicy;

impl Report for AuthenticationMethodsPolicy {
    fn name(&self) -> &'static str {
        "authentication_methods_policy"
    }

    fn path(&self) -> &'static str {
        "/v1.0/policies/authenticationMethodsPolicy"
    }

    /// Paced with the directory calls (design.md: `directory_max_requests_per_10s`
    /// covers groups, roles and policy); whether Graph meters it there is unverified
    /// (§13.1.2), and one call per refresh hardly matters either way.
    fn is_directory(&self) -> bool {
        true
    }

    fn permission(&self) -> &'static str {
        "Policy.Read.All"
    }

    fn families(&self) -> &'static [&'static Family] {
        &FAMILIES
    }

    /// The singleton, without query options (the docs list none, §13.5.1).
    fn requests(&self, _: &Settings) -> Vec<Request> {
        vec![Request {
            path: self.path().to_owned(),
            paged: false,
        }]
    }

    fn start(&self, _: &Settings) -> Box<dyn Refresh> {
        Box::new(PolicyRefresh { parsed: None })
    }

    fn restore(&self, stored: &serde_json::Value) -> serde_json::Result<Box<dyn ReportData>> {
        Ok(Box::new(restore_tagged::<PolicyData>(TAG, stored)?))
    }
}

/// The policy document: only what the families need. Every other property (targets,
/// method-specific settings, beta-only parts) is skipped unread.
#[derive(Deserialize)]
struct PolicyDoc<'a> {
    /// Required: a policy without it is not one this report can read.
    #[serde(rename = "authenticationMethodConfigurations", borrow)]
    configurations: Vec<ConfigurationDoc<'a>>,
    #[serde(rename = "registrationEnforcement", borrow, default)]
    enforcement: Option<EnforcementDoc<'a>>,
}

#[derive(Deserialize)]
struct ConfigurationDoc<'a> {
    /// Required: it is the `method` label.
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow, default)]
    state: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct EnforcementDoc<'a> {
    #[serde(rename = "authenticationMethodsRegistrationCampaign", borrow, default)]
    campaign: Option<CampaignDoc<'a>>,
}

#[derive(Deserialize)]
struct CampaignDoc<'a> {
    #[serde(borrow, default)]
    state: Option<Cow<'a, str>>,
}

/// Whether a `state` (of a configuration or of the campaign) is `enabled`. Graph sends
/// enum members in camelCase; the comparison ignores case so a proxy that changes it
/// does not turn every method off.
fn is_enabled(state: Option<&str>) -> bool {
    state.is_some_and(|s| s.eq_ignore_ascii_case("enabled"))
}

/// What a policy document says, or why it cannot be read.
fn parse(body: &[u8]) -> Result<Parsed, serde_json::Error> {
    let doc: PolicyDoc<'_> = serde_json::from_slice(body)?;
    let mut methods = BTreeMap::new();
    for c in &doc.configurations {
        if c.id.is_empty() {
            return Err(serde::de::Error::custom(
                "an authenticationMethodConfigurations entry has an empty id",
            ));
        }
        // The same id twice (not seen, but nothing forbids it) is one series, enabled
        // if either entry enables it: the family says "for anyone".
        *methods.entry(c.id.to_string()).or_insert(false) |= is_enabled(c.state.as_deref());
    }
    let campaign = doc.enforcement.and_then(|e| e.campaign);
    Ok(Parsed {
        data: PolicyData {
            methods: methods.into_iter().collect(),
            campaign_enabled: is_enabled(campaign.as_ref().and_then(|c| c.state.as_deref())),
        },
        configurations: doc.configurations.len() as u64,
        campaign_present: campaign.is_some(),
    })
}

struct Parsed {
    data: PolicyData,
    configurations: u64,
    campaign_present: bool,
}

/// A refresh: one document.
struct PolicyRefresh {
    parsed: Option<Parsed>,
}

impl Refresh for PolicyRefresh {
    fn page(&mut self, _request: usize, body: &[u8]) -> Result<PageInfo, PageError> {
        let parsed = parse(body)?;
        let rows = parsed.configurations;
        self.parsed = Some(parsed);
        Ok(PageInfo {
            next_link: None,
            rows,
        })
    }

    fn finish(self: Box<Self>) -> Finished {
        // `collect` finishes only after the one request succeeded, so `parsed` is set.
        let Some(parsed) = self.parsed else {
            return Finished::new(PolicyData::default());
        };
        let mut warnings = Vec::new();
        if !parsed.campaign_present {
            warnings.push(Warning {
                message: "the authentication methods policy has no registration campaign: counted as not enabled",
                detail: format!("configurations={}", parsed.configurations),
            });
        }
        Finished {
            data: Box::new(parsed.data),
            warnings,
        }
    }
}

/// What a refresh stores: each configuration id (as sent) and whether it is enabled, in
/// id order, and whether the campaign is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyData {
    /// `(configuration id, enabled)`.
    pub methods: Vec<(String, bool)>,
    /// The registration campaign's state is `enabled`.
    pub campaign_enabled: bool,
}

impl ReportData for PolicyData {
    fn encode(&self, tenant: &str, out: &mut Families) {
        let id = out.id(&METHOD_ENABLED);
        for (method, enabled) in &self.methods {
            out.push(
                id,
                vec![("tenant", tenant), ("method", method.as_str())],
                u64::from(*enabled),
            );
        }
        out.add(
            &CAMPAIGN_ENABLED,
            vec![("tenant", tenant)],
            u64::from(self.campaign_enabled),
        );
    }

    fn store(&self) -> serde_json::Value {
        store_tagged(TAG, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(body: &[u8]) -> Result<Finished, PageError> {
        let mut r = REPORT.start(&Settings::default());
        let info = r.page(0, body)?;
        assert_eq!(info.next_link, None);
        Ok(r.finish())
    }

    fn samples(f: &Finished) -> Vec<String> {
        let mut out = Families::default();
        f.data.encode("t", &mut out);
        out.sample_lines()
    }

    /// The example of graph-api.md §13.5.3, with the campaign state and extra
    /// configurations spliced in.
    fn policy(campaign: &str, extra: &str) -> String {
        format!(
            r##"{{
  "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#authenticationMethodsPolicy",
  "id": "authenticationMethodsPolicy",
  "displayName": "Authentication Methods Policy",
  "policyVersion": "1.5",
  "policyMigrationState": null,
  "registrationEnforcement": {{
    "authenticationMethodsRegistrationCampaign": {{
      {campaign}
      "snoozeDurationInDays": 3,
      "includeTargets": [ {{ "id": "all_users", "targetType": "group", "targetedAuthenticationMethod": "microsoftAuthenticator" }} ],
      "excludeTargets": []
    }}
  }},
  "authenticationMethodConfigurations": [
    {{
      "@odata.type": "#microsoft.graph.fido2AuthenticationMethodConfiguration",
      "id": "Fido2", "state": "enabled", "excludeTargets": [],
      "isAttestationEnforced": false, "isSelfServiceRegistrationAllowed": true,
      "keyRestrictions": {{ "isEnforced": false, "enforcementType": "block", "aaGuids": [] }},
      "includeTargets@odata.context": "https://graph.microsoft.com/v1.0/$metadata#x",
      "includeTargets": [ {{ "id": "all_users", "targetType": "group", "isRegistrationRequired": false }} ]
    }},
    {{
      "@odata.type": "#microsoft.graph.microsoftAuthenticatorAuthenticationMethodConfiguration",
      "id": "MicrosoftAuthenticator", "state": "enabled", "excludeTargets": [],
      "isSoftwareOathEnabled": false,
      "includeTargets": [ {{ "id": "all_users", "targetType": "group", "isRegistrationRequired": false, "authenticationMode": "any" }} ]
    }},
    {{
      "@odata.type": "#microsoft.graph.smsAuthenticationMethodConfiguration",
      "id": "Sms", "state": "disabled", "excludeTargets": [], "includeTargets": []
    }}{extra}
  ]
}}"##
        )
    }

    #[test]
    fn every_method_configuration_is_a_series_and_only_enabled_counts() {
        // Unknown states (one Microsoft may add), a missing or null state and an
        // unknown configuration type all count as not enabled; ids are kept as sent
        // (a GUID for an external method, `QRCodePin` in the live capture's casing).
        let extra = r##",
    { "@odata.type": "#microsoft.graph.qrCodePinAuthenticationMethodConfiguration", "id": "QRCodePin", "state": "enabled", "pinLength": 8 },
    { "@odata.type": "#microsoft.graph.externalAuthenticationMethodConfiguration", "id": "b9a4e3d1-7c2f-4e8a-9d6b-0f1e2a3b4c5d", "state": "enabled", "appId": "x", "displayName": "Partner MFA" },
    { "@odata.type": "#microsoft.graph.hardwareOathAuthenticationMethodConfiguration", "id": "HardwareOath", "state": "unknownFutureValue" },
    { "@odata.type": "#microsoft.graph.futureAuthenticationMethodConfiguration", "id": "SomethingNew", "state": "enabledForSome" },
    { "@odata.type": "#microsoft.graph.voiceAuthenticationMethodConfiguration", "id": "Voice", "state": null },
    { "@odata.type": "#microsoft.graph.emailAuthenticationMethodConfiguration", "id": "Email" },
    { "id": "TemporaryAccessPass", "state": "ENABLED" }"##;
        let f = run(policy(r#""state": "enabled","#, extra).as_bytes()).unwrap();
        assert!(f.warnings.is_empty(), "{:?}", f.warnings);
        assert_eq!(
            samples(&f),
            [
                r#"entra_auth_method_enabled{tenant="t",method="Email"} 0"#,
                r#"entra_auth_method_enabled{tenant="t",method="Fido2"} 1"#,
                r#"entra_auth_method_enabled{tenant="t",method="HardwareOath"} 0"#,
                r#"entra_auth_method_enabled{tenant="t",method="MicrosoftAuthenticator"} 1"#,
                r#"entra_auth_method_enabled{tenant="t",method="QRCodePin"} 1"#,
                r#"entra_auth_method_enabled{tenant="t",method="Sms"} 0"#,
                r#"entra_auth_method_enabled{tenant="t",method="SomethingNew"} 0"#,
                r#"entra_auth_method_enabled{tenant="t",method="TemporaryAccessPass"} 1"#,
                r#"entra_auth_method_enabled{tenant="t",method="Voice"} 0"#,
                r#"entra_auth_method_enabled{tenant="t",method="b9a4e3d1-7c2f-4e8a-9d6b-0f1e2a3b4c5d"} 1"#,
                r#"entra_auth_method_registration_campaign_enabled{tenant="t"} 1"#,
            ]
        );
    }

    #[test]
    fn the_campaign_counts_only_in_state_enabled() {
        for (state, want) in [
            (r#""state": "enabled","#, 1),
            (r#""state": "default","#, 0),
            (r#""state": "disabled","#, 0),
            (r#""state": "unknownFutureValue","#, 0),
            (r#""state": null,"#, 0),
            ("", 0),
        ] {
            let f = run(policy(state, "").as_bytes()).unwrap();
            let lines = samples(&f);
            assert_eq!(
                lines.last().unwrap(),
                &format!(r#"entra_auth_method_registration_campaign_enabled{{tenant="t"}} {want}"#),
                "{state}"
            );
            // The campaign is there in each case, if without a state: no warning.
            assert!(f.warnings.is_empty(), "{state}");
        }
    }

    #[test]
    fn a_missing_campaign_is_not_enabled_and_said() {
        for enforcement in [
            r#""registrationEnforcement": {},"#,
            r#""registrationEnforcement": null,"#,
            r#""registrationEnforcement": {"authenticationMethodsRegistrationCampaign": null},"#,
            "",
        ] {
            let body = format!(
                r#"{{"id":"authenticationMethodsPolicy",{enforcement}"authenticationMethodConfigurations":[{{"id":"Sms","state":"enabled"}}]}}"#
            );
            let f = run(body.as_bytes()).unwrap();
            assert_eq!(
                samples(&f),
                [
                    r#"entra_auth_method_enabled{tenant="t",method="Sms"} 1"#,
                    r#"entra_auth_method_registration_campaign_enabled{tenant="t"} 0"#,
                ],
                "{enforcement}"
            );
            assert_eq!(f.warnings.len(), 1, "{enforcement}");
            assert!(f.warnings[0].message.contains("no registration campaign"));
        }
    }

    #[test]
    fn a_malformed_document_fails_whole() {
        for body in [
            "",
            "not json",
            // Truncated mid-document.
            &policy(r#""state": "enabled","#, "")[..400],
            // No configuration list, or not a list.
            r#"{"id":"authenticationMethodsPolicy","registrationEnforcement":{}}"#,
            r#"{"authenticationMethodConfigurations":{"id":"Sms"}}"#,
            // A configuration without an id, with an empty one, with a number.
            r#"{"authenticationMethodConfigurations":[{"id":"Sms","state":"enabled"},{"state":"enabled"}]}"#,
            r#"{"authenticationMethodConfigurations":[{"id":"","state":"enabled"}]}"#,
            r#"{"authenticationMethodConfigurations":[{"id":7,"state":"enabled"}]}"#,
            // A state that is not a string.
            r#"{"authenticationMethodConfigurations":[{"id":"Sms","state":true}]}"#,
            // Trailing garbage.
            r#"{"authenticationMethodConfigurations":[]} x"#,
        ] {
            let e = run(body.as_bytes()).err();
            assert!(matches!(e, Some(PageError::Json(_))), "{body:?} gave {e:?}");
        }
    }

    #[test]
    fn an_empty_policy_still_says_the_campaign() {
        let f = run(br#"{"authenticationMethodConfigurations":[],"registrationEnforcement":{"authenticationMethodsRegistrationCampaign":{"state":"default"}}}"#).unwrap();
        assert_eq!(
            samples(&f),
            [r#"entra_auth_method_registration_campaign_enabled{tenant="t"} 0"#]
        );
    }

    #[test]
    fn a_repeated_id_is_one_series_enabled_if_either_is() {
        let f = run(br#"{"authenticationMethodConfigurations":[{"id":"Sms","state":"disabled"},{"id":"Sms","state":"enabled"},{"id":"Voice","state":"disabled"},{"id":"Voice","state":"disabled"}]}"#).unwrap();
        let lines = samples(&f);
        assert_eq!(
            &lines[..2],
            [
                r#"entra_auth_method_enabled{tenant="t",method="Sms"} 1"#,
                r#"entra_auth_method_enabled{tenant="t",method="Voice"} 0"#,
            ]
        );
    }

    #[test]
    fn the_request_is_the_singleton_and_data_round_trips() {
        let r = REPORT.requests(&Settings::default());
        assert_eq!(
            r,
            [Request {
                path: "/v1.0/policies/authenticationMethodsPolicy".into(),
                paged: false
            }]
        );
        assert_eq!(REPORT.endpoint(), "authenticationMethodsPolicy");
        assert!(REPORT.is_directory());
        assert_eq!(REPORT.permission(), "Policy.Read.All");
        let f = run(policy(r#""state": "enabled","#, "").as_bytes()).unwrap();
        let back = REPORT.restore(&f.data.store()).unwrap();
        let mut a = Families::default();
        let mut b = Families::default();
        f.data.encode("t", &mut a);
        back.encode("t", &mut b);
        assert_eq!(a.sample_lines(), b.sample_lines());
        assert!(REPORT.restore(&serde_json::json!({"Daily": null})).is_err());
    }
}
