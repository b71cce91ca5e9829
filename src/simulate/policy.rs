//! The authentication methods policy route (`GET /v1.0/policies/authenticationMethodsPolicy`,
//! graph-api.md §13.5): the singleton document with its method configurations (each of
//! its own `@odata.type` with type-specific fields, `includeTargets@odata.context`
//! annotations), the registration campaign in state `enabled`, `default` or `disabled`
//! (or absent), the permissions Graph accepts for it (§13.5.2), a permission withdrawn
//! at run time, and a malformed document on request.
//!
//! [`SimPolicy::truth`] reads the configured policy, never the served JSON and never the
//! exporter's code.

use std::collections::BTreeMap;

use hyper::Method;

use super::graph::{
    Incoming, authenticate, method_not_allowed, path_segments, require_permission, unknown_segment,
};
use super::json;
use super::server::{Ctx, Reply, State};

/// Application permissions that may read the policy (§13.5.2): the least privileged
/// one and the two higher ones.
const PERMISSIONS: [&str; 3] = [
    "Policy.Read.AuthenticationMethod",
    "Policy.ReadWrite.AuthenticationMethod",
    "Policy.Read.All",
];

/// A tenant's authentication methods policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimPolicy {
    /// `authenticationMethodConfigurations`, in the order served.
    pub methods: Vec<SimMethod>,
    /// The registration campaign.
    pub campaign: SimCampaign,
    /// Serve the document cut off inside its configuration list (invalid JSON).
    pub malformed: bool,
}

/// One method configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimMethod {
    /// The configuration id as Graph sends it (`Fido2`, `QRCodePin`, a GUID …).
    pub id: String,
    /// `@odata.type` without `#microsoft.graph.` and `AuthenticationMethodConfiguration`
    /// (`fido2`, `sms`, `external` …).
    pub kind: String,
    /// `state` as sent: `enabled`, `disabled`, or anything else (a future member).
    pub state: String,
}

impl SimMethod {
    /// A configuration of `kind` with `id` in `state`.
    pub fn new(id: &str, kind: &str, state: &str) -> Self {
        Self {
            id: id.into(),
            kind: kind.into(),
            state: state.into(),
        }
    }
}

/// The registration campaign's state (§13.5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimCampaign {
    /// `enabled`.
    Enabled,
    /// `default`: not set explicitly (off).
    Default,
    /// `disabled`.
    Disabled,
    /// `registrationEnforcement` without `authenticationMethodsRegistrationCampaign`.
    Absent,
}

impl SimCampaign {
    fn state(self) -> Option<&'static str> {
        match self {
            Self::Enabled => Some("enabled"),
            Self::Default => Some("default"),
            Self::Disabled => Some("disabled"),
            Self::Absent => None,
        }
    }
}

/// What the policy families should say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyTruth {
    /// Configuration id ▸ whether the policy enables it.
    pub methods: BTreeMap<String, bool>,
    /// Whether the campaign is on.
    pub campaign_enabled: bool,
}

impl Default for SimPolicy {
    /// A tenant as many are: the modern methods on, the phone methods and some others
    /// off, the campaign never set.
    fn default() -> Self {
        Self {
            methods: vec![
                SimMethod::new("Fido2", "fido2", "enabled"),
                SimMethod::new(
                    "MicrosoftAuthenticator",
                    "microsoftAuthenticator",
                    "enabled",
                ),
                SimMethod::new("Sms", "sms", "disabled"),
                SimMethod::new("TemporaryAccessPass", "temporaryAccessPass", "enabled"),
                SimMethod::new("SoftwareOath", "softwareOath", "disabled"),
                SimMethod::new("Voice", "voice", "disabled"),
                SimMethod::new("Email", "email", "enabled"),
                SimMethod::new("X509Certificate", "x509Certificate", "disabled"),
                SimMethod::new("QRCodePin", "qrCodePin", "disabled"),
            ],
            campaign: SimCampaign::Default,
            malformed: false,
        }
    }
}

impl SimPolicy {
    /// The `--demo` policy: phishable phone methods on beside the strong ones, SMS and
    /// QR codes off, an external MFA provider, and the campaign off (`disabled`), so the
    /// panel shows why Authenticator coverage stalls.
    pub fn demo() -> Self {
        let mut p = Self::default();
        for m in &mut p.methods {
            if m.id == "Voice" || m.id == "SoftwareOath" {
                m.state = "enabled".into();
            }
        }
        p.methods.push(SimMethod::new(
            "b0c1d2e3-0000-4000-8000-00000000e4a1",
            "external",
            "enabled",
        ));
        p.campaign = SimCampaign::Disabled;
        p
    }

    /// The series this policy implies (design.md: enabled iff `state` is `enabled`;
    /// the campaign only in state `enabled`). An id listed twice is enabled if either
    /// entry is.
    pub fn truth(&self) -> PolicyTruth {
        let mut methods = BTreeMap::new();
        for m in &self.methods {
            let on = m.state == "enabled";
            methods
                .entry(m.id.clone())
                .and_modify(|e| *e = *e || on)
                .or_insert(on);
        }
        PolicyTruth {
            methods,
            campaign_enabled: self.campaign == SimCampaign::Enabled,
        }
    }

    /// The document as Graph sends it.
    fn document(&self, base: &str) -> String {
        let configs: Vec<String> = self.methods.iter().map(|m| method_json(base, m)).collect();
        let campaign = match self.campaign.state() {
            Some(state) => format!(
                "\"authenticationMethodsRegistrationCampaign\":{{\"snoozeDurationInDays\":1,\"state\":\"{state}\",\"excludeTargets\":[],\"includeTargets\":[{{\"id\":\"all_users\",\"targetType\":\"group\",\"targetedAuthenticationMethod\":\"microsoftAuthenticator\"}}]}}"
            ),
            None => String::new(),
        };
        let doc = format!(
            "{{\"@odata.context\":\"{base}/v1.0/$metadata#authenticationMethodsPolicy\",\"id\":\"authenticationMethodsPolicy\",\"displayName\":\"Authentication Methods Policy\",\"description\":\"The tenant-wide policy that controls which authentication methods are allowed in the tenant, authentication method registration requirements, and self-service password reset settings\",\"lastModifiedDateTime\":\"2026-02-10T08:30:00.1234567Z\",\"policyVersion\":\"1.5\",\"reconfirmationInDays\":0,\"policyMigrationState\":null,\"registrationEnforcement\":{{{campaign}}},\"authenticationMethodConfigurations\":[{}]}}",
            configs.join(",")
        );
        if self.malformed {
            // Cut inside the configuration list: a proxy or a dropped connection.
            let at = doc
                .find("\"authenticationMethodConfigurations\"")
                .unwrap_or(0);
            return doc[..at + (doc.len() - at) / 2].to_owned();
        }
        doc
    }
}

/// One configuration with the fields its type carries (values mine, shape per §13.5).
fn method_json(base: &str, m: &SimMethod) -> String {
    let extra = match m.kind.as_str() {
        "fido2" => {
            ",\"isAttestationEnforced\":false,\"isSelfServiceRegistrationAllowed\":true,\"keyRestrictions\":{\"isEnforced\":false,\"enforcementType\":\"block\",\"aaGuids\":[]}"
        }
        "microsoftAuthenticator" => {
            ",\"isSoftwareOathEnabled\":false,\"featureSettings\":{\"displayAppInformationRequiredState\":{\"state\":\"default\",\"includeTarget\":{\"targetType\":\"group\",\"id\":\"all_users\"},\"excludeTarget\":{\"targetType\":\"group\",\"id\":\"00000000-0000-0000-0000-000000000000\"}}}"
        }
        "voice" => ",\"isOfficePhoneAllowed\":false",
        "email" => ",\"allowExternalIdToUseEmailOtp\":\"default\"",
        "temporaryAccessPass" => {
            ",\"defaultLifetimeInMinutes\":60,\"defaultLength\":8,\"minimumLifetimeInMinutes\":60,\"maximumLifetimeInMinutes\":480,\"isUsableOnce\":false"
        }
        "qrCodePin" => ",\"pinLength\":8,\"standardQRCodeLifetimeInDays\":365",
        "external" => {
            ",\"appId\":\"5a8c2b1e-0000-4000-8000-0000000a99e1\",\"displayName\":\"Partner MFA\",\"openIdConnectSetting\":{\"clientId\":\"partner\",\"discoveryUrl\":\"https://partner.example/.well-known/openid-configuration\"}"
        }
        _ => "",
    };
    let target = match m.kind.as_str() {
        "microsoftAuthenticator" => ",\"authenticationMode\":\"any\"",
        "sms" => ",\"isUsableForSignIn\":true",
        _ => "",
    };
    format!(
        "{{\"@odata.type\":\"#microsoft.graph.{}AuthenticationMethodConfiguration\",\"id\":{},\"state\":{},\"excludeTargets\":[]{extra},\"includeTargets@odata.context\":\"{base}/v1.0/$metadata#policies/authenticationMethodsPolicy/authenticationMethodConfigurations('{}')/includeTargets\",\"includeTargets\":[{{\"targetType\":\"group\",\"id\":\"all_users\",\"isRegistrationRequired\":false{target}}}]}}",
        m.kind,
        json::string(&m.id),
        json::string(&m.state),
        m.id.replace('"', ""),
    )
}

/// Whether `path` is the policy route (`/v1.0/policies/authenticationMethodsPolicy`).
pub(crate) fn is_policy(path: &str) -> bool {
    let mut segs = path.trim_start_matches('/').split('/');
    segs.next().is_some_and(|v| v.eq_ignore_ascii_case("v1.0"))
        && segs
            .next()
            .is_some_and(|s| s.eq_ignore_ascii_case("policies"))
}

/// Handles a `/v1.0/policies…` request.
pub(crate) fn handle(state: &State, ctx: &Ctx, req: &Incoming<'_>) -> Reply {
    if req.method != Method::GET {
        return method_not_allowed(ctx);
    }
    let grant = match authenticate(state, ctx, req.authorization) {
        Ok(g) => g,
        Err(reply) => return reply,
    };
    let segs = path_segments(req.path);
    if !matches!(segs.as_slice(), [_, _, p] if p.eq_ignore_ascii_case("authenticationMethodsPolicy"))
    {
        return unknown_segment(ctx, &segs);
    }
    if let Err(reply) = require_permission(
        ctx,
        &grant,
        &PERMISSIONS,
        &state.policy_denied[grant.tenant],
    ) {
        return reply;
    }
    let policy = state.policies[grant.tenant]
        .lock()
        .expect("policy lock")
        .clone();
    let base = super::graph::link_base(state, req);
    // Whether Graph meters the policy in the directory buckets is unverified (§13.8);
    // the simulator says 1 RU as for any identity path not in the table.
    Reply::graph(200, policy.document(&base)).with("x-ms-resource-unit", "1".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_json_with_every_configuration_and_the_campaign() {
        let p = SimPolicy::demo();
        let doc: serde_json::Value =
            serde_json::from_str(&p.document("http://x")).expect("valid JSON");
        let configs = doc["authenticationMethodConfigurations"]
            .as_array()
            .unwrap();
        assert_eq!(configs.len(), p.methods.len());
        assert_eq!(
            configs[0]["@odata.type"],
            "#microsoft.graph.fido2AuthenticationMethodConfiguration"
        );
        assert_eq!(
            doc["registrationEnforcement"]["authenticationMethodsRegistrationCampaign"]["state"],
            "disabled"
        );
        let t = p.truth();
        assert_eq!(t.methods.len(), 10);
        assert!(t.methods["Voice"]);
        assert!(!t.methods["Sms"]);
        assert!(!t.campaign_enabled);
        // Absent campaign: no such key; malformed: not JSON.
        let absent = SimPolicy {
            campaign: SimCampaign::Absent,
            ..SimPolicy::default()
        };
        let doc: serde_json::Value = serde_json::from_str(&absent.document("b")).unwrap();
        assert_eq!(doc["registrationEnforcement"], serde_json::json!({}));
        let broken = SimPolicy {
            malformed: true,
            ..SimPolicy::default()
        };
        assert!(serde_json::from_str::<serde_json::Value>(&broken.document("b")).is_err());
        assert!(is_policy("/v1.0/policies/authenticationMethodsPolicy"));
        assert!(!is_policy("/v1.0/groups"));
    }
}
