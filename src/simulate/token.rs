//! The simulated Microsoft identity platform token endpoint (client credentials only),
//! validating like the real STS and answering its error shape (graph-api.md §8).
//!
//! Tokens are opaque random strings remembered server-side with their tenant, roles and
//! expiry; they are never derived from the secret.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::SimTenant;
use super::assertion::{Verifier, is_certificate_assertion};
use super::base64url;
use super::dates::{now_unix, sts_timestamp};
use super::delegated::{DEVICE_CODE_GRANT, DelegatedStore, Issued};
use super::json;
use super::query::parse_pairs;
use super::rng::{random_guid, random_u64};
use super::server::Reply;

/// The `.default` scopes of the four clouds' Graph (graph-api.md §1.1).
const GRAPH_SCOPES: [&str; 4] = [
    "https://graph.microsoft.com/.default",
    "https://graph.microsoft.us/.default",
    "https://dod-graph.microsoft.us/.default",
    "https://microsoftgraph.chinacloudapi.cn/.default",
];

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Issued tokens are pruned of expired entries past this many.
const PRUNE_ABOVE: usize = 10_000;

/// What an access token grants.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    /// Index into the configured tenants.
    pub(crate) tenant: usize,
    pub(crate) roles: Vec<String>,
    expires: Instant,
    /// Issued to a signed-in user (delegated), not to the app.
    pub(crate) delegated: bool,
}

/// The result of presenting a token to Graph.
#[derive(Debug, Clone)]
pub(crate) enum Lookup {
    Valid(Grant),
    Expired,
    Unknown,
}

/// Issued tokens, and the keys and memory assertions are checked with.
#[derive(Default)]
pub(crate) struct TokenStore {
    grants: Mutex<HashMap<String, Grant>>,
    pub(crate) verifier: Verifier,
    /// Device codes and refresh tokens of delegated sign-ins.
    pub(crate) delegated: DelegatedStore,
}

impl TokenStore {
    /// Issues an access token for tenant `tenant` (index) carrying `roles`.
    pub(crate) fn issue(&self, tenant: usize, roles: Vec<String>, lifetime: Duration) -> String {
        self.issue_grant(tenant, roles, lifetime, false)
    }

    /// Issues an access token; `delegated` for a signed-in user's.
    fn issue_grant(
        &self,
        tenant: usize,
        roles: Vec<String>,
        lifetime: Duration,
        delegated: bool,
    ) -> String {
        let mut bytes = Vec::with_capacity(32);
        for _ in 0..4 {
            bytes.extend_from_slice(&random_u64().to_le_bytes());
        }
        let token = format!("sim.{}", base64url::encode_url(&bytes));
        let mut grants = self.grants.lock().expect("token store poisoned");
        if grants.len() > PRUNE_ABOVE {
            let now = Instant::now();
            grants.retain(|_, g| g.expires > now);
        }
        grants.insert(
            token.clone(),
            Grant {
                tenant,
                roles,
                expires: Instant::now() + lifetime,
                delegated,
            },
        );
        token
    }

    /// Expires every issued token now (a token invalidated mid-walk: Graph answers 401
    /// "token is expired" until the client fetches a new one).
    pub(crate) fn revoke_all(&self) {
        let now = Instant::now();
        for g in self
            .grants
            .lock()
            .expect("token store poisoned")
            .values_mut()
        {
            g.expires = g.expires.min(now);
        }
    }

    /// Looks a bearer token up.
    pub(crate) fn lookup(&self, token: &str) -> Lookup {
        let grants = self.grants.lock().expect("token store poisoned");
        match grants.get(token) {
            Some(g) if g.expires > Instant::now() => Lookup::Valid(g.clone()),
            Some(_) => Lookup::Expired,
            None => Lookup::Unknown,
        }
    }
}

/// An STS error (graph-api.md §8.5).
struct StsError {
    status: u16,
    error: &'static str,
    code: u32,
    description: String,
}

fn err(status: u16, error: &'static str, code: u32, description: impl Into<String>) -> StsError {
    StsError {
        status,
        error,
        code,
        description: description.into(),
    }
}

fn error_reply(e: StsError, base_url: &str) -> Reply {
    let now = now_unix();
    let trace = random_guid();
    let correlation = random_guid();
    let ts = sts_timestamp(now);
    let description = format!(
        "AADSTS{}: {}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {ts}",
        e.code, e.description
    );
    let body = format!(
        "{{\"error\":{},\"error_description\":{},\"error_codes\":[{}],\"timestamp\":{},\"trace_id\":{},\"correlation_id\":{},\"error_uri\":{}}}",
        json::string(e.error),
        json::string(&description),
        e.code,
        json::string(&ts),
        json::string(&trace),
        json::string(&correlation),
        json::string(&format!("{base_url}/error?code={}", e.code)),
    );
    Reply::sts(e.status, body)
}

/// Handles `POST /{tenant}/oauth2/v2.0/token`.
pub(crate) fn handle(
    tenants: &[SimTenant],
    store: &TokenStore,
    lifetime: Duration,
    base_url: &str,
    tenant_segment: &str,
    authorization: Option<&str>,
    body: &[u8],
) -> Reply {
    match issue(
        tenants,
        store,
        lifetime,
        base_url,
        tenant_segment,
        authorization,
        body,
    ) {
        Ok(reply) => reply,
        Err(e) => error_reply(e, base_url),
    }
}

fn issue(
    tenants: &[SimTenant],
    store: &TokenStore,
    lifetime: Duration,
    base_url: &str,
    tenant_segment: &str,
    authorization: Option<&str>,
    body: &[u8],
) -> Result<Reply, StsError> {
    if tenant_segment.eq_ignore_ascii_case("common")
        || tenant_segment.eq_ignore_ascii_case("consumers")
    {
        return Err(err(
            400,
            "invalid_request",
            9_001_023,
            "The grant type isn't supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint.",
        ));
    }
    let (index, tenant) = tenants
        .iter()
        .enumerate()
        .find(|(_, t)| t.tenant_id.eq_ignore_ascii_case(tenant_segment))
        .ok_or_else(|| {
            err(
                400,
                "invalid_request",
                90_002,
                format!(
                    "Tenant '{tenant_segment}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
                ),
            )
        })?;
    let form: HashMap<String, String> = parse_pairs(&String::from_utf8_lossy(body))
        .into_iter()
        .collect();
    let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    if form.contains_key("resource") {
        return Err(err(
            400,
            "invalid_request",
            901_002,
            "The 'resource' request parameter is not supported.",
        ));
    }
    let missing = |name: &str| {
        err(
            400,
            "invalid_request",
            900_144,
            format!("The request body must contain the following parameter: '{name}'."),
        )
    };
    let grant_type = field("grant_type").ok_or_else(|| missing("grant_type"))?;
    if grant_type == DEVICE_CODE_GRANT || grant_type == "refresh_token" {
        // Public client flows (design.md, "Delegated sign-in"): no secret, the app's id.
        let client_id = field("client_id").ok_or_else(|| missing("client_id"))?;
        if client_id != tenant.client_id {
            return Err(err(
                400,
                "unauthorized_client",
                700_016,
                format!(
                    "Application with identifier '{client_id}' was not found in the directory '{}'.",
                    tenant.tenant_id
                ),
            ));
        }
        let redeemed = if grant_type == DEVICE_CODE_GRANT {
            let code = field("device_code").ok_or_else(|| missing("device_code"))?;
            store.delegated.redeem_device_code(index, client_id, code)
        } else {
            let token = field("refresh_token").ok_or_else(|| missing("refresh_token"))?;
            store
                .delegated
                .redeem_refresh_token(index, client_id, token)
        };
        let issued =
            redeemed.map_err(|(status, error, code, text)| err(status, error, code, text))?;
        return Ok(delegated_reply(store, lifetime, issued));
    }
    if grant_type != "client_credentials" {
        return Err(err(
            400,
            "unsupported_grant_type",
            70_003,
            format!("The app requested an unsupported grant type '{grant_type}'."),
        ));
    }
    // RFC 6749 §2.3.1: HTTP Basic with form-encoded id and secret (graph-api.md §8.2).
    let basic = authorization.and_then(parse_basic);
    let client_id = basic
        .as_ref()
        .map(|(id, _)| id.as_str())
        .or_else(|| field("client_id"))
        .ok_or_else(|| missing("client_id"))?;
    if client_id != tenant.client_id {
        return Err(err(
            400,
            "unauthorized_client",
            700_016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                tenant.tenant_id
            ),
        ));
    }
    let secret = basic
        .as_ref()
        .map(|(_, s)| s.as_str())
        .or_else(|| field("client_secret"));
    match (secret, field("client_assertion")) {
        (Some(secret), _) => {
            if secret != tenant.client_secret {
                return Err(err(
                    401,
                    "invalid_client",
                    7_000_215,
                    format!(
                        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                    ),
                ));
            }
        }
        (None, Some(assertion)) => {
            if field("client_assertion_type") != Some(JWT_BEARER) {
                return Err(missing("client_assertion_type"));
            }
            let checked = if is_certificate_assertion(assertion) {
                let token_url = format!("{base_url}/{tenant_segment}/oauth2/v2.0/token");
                store.verifier.certificate(
                    assertion,
                    tenant.certificate_pem.as_deref(),
                    client_id,
                    &token_url,
                )
            } else {
                store
                    .verifier
                    .federated(assertion, tenant.federated_subject.as_deref())
            };
            checked.map_err(|r| err(401, "invalid_client", r.code, r.text))?;
        }
        (None, None) => {
            return Err(err(
                400,
                "invalid_client",
                7_000_218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            ));
        }
    }
    let scope = field("scope").unwrap_or("");
    if scope.split_whitespace().count() > 1 {
        return Err(err(
            400,
            "invalid_scope",
            70_011,
            format!(
                "The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
            ),
        ));
    }
    if !scope.ends_with("/.default") {
        return Err(err(
            400,
            "invalid_scope",
            1_002_012,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        ));
    }
    if !GRAPH_SCOPES.iter().any(|s| s.eq_ignore_ascii_case(scope)) {
        let resource = scope.trim_end_matches("/.default");
        return Err(err(
            400,
            "invalid_resource",
            500_011,
            format!(
                "The resource principal named {resource} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.",
                tenant.tenant_id
            ),
        ));
    }
    let token = store.issue(index, tenant.roles.clone(), lifetime);
    let secs = lifetime.as_secs();
    let body = format!(
        "{{\"token_type\":\"Bearer\",\"expires_in\":{secs},\"ext_expires_in\":{secs},\"access_token\":{}}}",
        json::string(&token)
    );
    Ok(Reply::sts(200, body))
}

/// The answer to a delegated redemption: an access token carrying the user's
/// delegated permissions, and the rotated refresh token.
fn delegated_reply(store: &TokenStore, lifetime: Duration, issued: Issued) -> Reply {
    let Issued {
        tenant,
        permissions,
        scope,
        refresh_token,
    } = issued;
    let token = store.issue_grant(tenant, permissions, lifetime, true);
    let secs = lifetime.as_secs();
    let refresh = refresh_token
        .map(|t| format!(",\"refresh_token\":{}", json::string(&t)))
        .unwrap_or_default();
    Reply::sts(
        200,
        format!(
            "{{\"token_type\":\"Bearer\",\"scope\":{},\"expires_in\":{secs},\"ext_expires_in\":{secs},\"access_token\":{}{refresh}}}",
            json::string(&scope),
            json::string(&token)
        ),
    )
}

/// Handles `POST /{tenant}/oauth2/v2.0/devicecode` (RFC 8628 §3.1): a public client
/// starts a device authorization.
pub(crate) fn device_code(
    tenants: &[SimTenant],
    store: &TokenStore,
    base_url: &str,
    tenant_segment: &str,
    body: &[u8],
    lifetime: Duration,
    interval: Duration,
) -> Reply {
    let form: HashMap<String, String> = parse_pairs(&String::from_utf8_lossy(body))
        .into_iter()
        .collect();
    let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let found = tenants
        .iter()
        .enumerate()
        .find(|(_, t)| t.tenant_id.eq_ignore_ascii_case(tenant_segment));
    let result = match (found, field("client_id"), field("scope")) {
        (None, _, _) => Err(err(
            400,
            "invalid_request",
            90_002,
            format!("Tenant '{tenant_segment}' not found."),
        )),
        (_, None, _) => Err(err(
            400,
            "invalid_request",
            900_144,
            "The request body must contain the following parameter: 'client_id'.",
        )),
        (_, _, None) => Err(err(
            400,
            "invalid_request",
            900_144,
            "The request body must contain the following parameter: 'scope'.",
        )),
        (Some((_, t)), Some(id), _) if id != t.client_id => Err(err(
            400,
            "unauthorized_client",
            700_016,
            format!(
                "Application with identifier '{id}' was not found in the directory '{}'.",
                t.tenant_id
            ),
        )),
        (Some((index, _)), Some(id), Some(scope)) => Ok(Reply::sts(
            200,
            store
                .delegated
                .start(index, id, scope, base_url, lifetime, interval),
        )),
    };
    result.unwrap_or_else(|e| error_reply(e, base_url))
}

/// `Basic base64(urlencode(id):urlencode(secret))`.
fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, value) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(base64url::decode_lenient(value.trim())?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((
        super::query::percent_decode(id),
        super::query::percent_decode(secret),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenants() -> Vec<SimTenant> {
        vec![SimTenant::new("contoso.example", "app", "s~cret", 10, 1)]
    }

    fn call(segment: &str, auth: Option<&str>, body: &str) -> (u16, serde_json::Value) {
        let store = TokenStore::default();
        let r = handle(
            &tenants(),
            &store,
            Duration::from_secs(60),
            "http://x",
            segment,
            auth,
            body.as_bytes(),
        );
        (r.status, serde_json::from_str(&r.body).unwrap())
    }

    const SCOPE: &str = "scope=https%3A%2F%2Fgraph.microsoft.com%2F.default";

    #[test]
    fn validates_like_the_sts() {
        let ok =
            format!("client_id=app&{SCOPE}&client_secret=s%7Ecret&grant_type=client_credentials");
        let (s, v) = call("CONTOSO.example", None, &ok);
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["token_type"], "Bearer");
        assert!(!v["access_token"].as_str().unwrap().contains("cret"));
        let cases = [
            ("common", ok.clone(), 400, "invalid_request", 9_001_023),
            ("other", ok.clone(), 400, "invalid_request", 90_002),
            (
                "contoso.example",
                ok.replace("client_id=app", "client_id=nope"),
                400,
                "unauthorized_client",
                700_016,
            ),
            (
                "contoso.example",
                ok.replace("s%7Ecret", "wrong"),
                401,
                "invalid_client",
                7_000_215,
            ),
            (
                "contoso.example",
                ok.replace("&client_secret=s%7Ecret", ""),
                400,
                "invalid_client",
                7_000_218,
            ),
            (
                "contoso.example",
                ok.replace("client_credentials", "password"),
                400,
                "unsupported_grant_type",
                70_003,
            ),
            (
                "contoso.example",
                ok.replace("%2F.default", "%2FUser.Read"),
                400,
                "invalid_scope",
                1_002_012,
            ),
            (
                "contoso.example",
                ok.replace(SCOPE, "x=1"),
                400,
                "invalid_scope",
                1_002_012,
            ),
            (
                "contoso.example",
                format!("{ok}&resource=https://graph.microsoft.com"),
                400,
                "invalid_request",
                901_002,
            ),
            (
                "contoso.example",
                ok.replace("graph.microsoft.com", "management.azure.com"),
                400,
                "invalid_resource",
                500_011,
            ),
        ];
        for (segment, body, status, error, code) in cases {
            let (s, v) = call(segment, None, &body);
            assert_eq!(
                (
                    s,
                    v["error"].as_str().unwrap(),
                    v["error_codes"][0].as_u64().unwrap()
                ),
                (status, error, code),
                "{body}"
            );
            assert!(
                v["error_description"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("AADSTS{code}:"))
            );
        }
        for scope in GRAPH_SCOPES {
            let body = format!(
                "client_id=app&scope={scope}&client_secret=s%7Ecret&grant_type=client_credentials"
            );
            assert_eq!(call("contoso.example", None, &body).0, 200);
        }
    }

    #[test]
    fn basic_auth_and_assertions() {
        let basic = format!(
            "Basic {}",
            base64url::encode_url(b"app:s%7Ecret").replace('-', "+")
        );
        let (s, _) = call(
            "contoso.example",
            Some(&basic),
            &format!("{SCOPE}&grant_type=client_credentials"),
        );
        assert_eq!(s, 200);
        // Shape alone no longer passes: an unsigned assertion is refused (signatures are
        // checked in `assertion`; the wire-level cases are in tests/auth.rs).
        let claims = format!(
            r#"{{"aud":"http://x/contoso.example/oauth2/v2.0/token","iss":"app","sub":"app","exp":{}}}"#,
            now_unix() + 300
        );
        let jwt = format!("e30.{}.c2ln", base64url::encode_url(claims.as_bytes()));
        let body = format!(
            "client_id=app&{SCOPE}&grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={jwt}"
        );
        let (s, v) = call("contoso.example", None, &body);
        assert_eq!((s, v["error_codes"][0].as_u64()), (401, Some(700_027)));
        let untyped = body.replace("client_assertion_type=", "x=");
        assert_eq!(call("contoso.example", None, &untyped).0, 400);
        // A federated token minted by this store's issuer is accepted for the tenant
        // whose federated credential names its subject.
        let store = TokenStore::default();
        let mut t = tenants();
        t[0].federated_subject = Some("system:serviceaccount:mon:exp".into());
        let fed = store
            .verifier
            .mint_federated("system:serviceaccount:mon:exp", 60);
        let body = body.replace(&jwt, &fed);
        let r = handle(
            &t,
            &store,
            Duration::from_secs(60),
            "http://x",
            "contoso.example",
            None,
            body.as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }

    #[test]
    fn store_lookup() {
        let store = TokenStore::default();
        let t = store.issue(0, vec![], Duration::from_secs(60));
        assert!(matches!(store.lookup(&t), Lookup::Valid(_)));
        assert!(matches!(store.lookup("nope"), Lookup::Unknown));
        let e = store.issue(0, vec![], Duration::ZERO);
        assert!(matches!(store.lookup(&e), Lookup::Expired));
    }
}
