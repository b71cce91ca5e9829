//! Access tokens, cached and renewed before they expire, from the identity platform's
//! v2.0 token endpoint (client secret, certificate assertion or federated token;
//! graph-api.md §8–§9) or from a managed identity's local endpoint (§10); and, for the
//! delegated-only reports, a signed-in user's token redeemed from the refresh token
//! `login` wrote (design.md, "Delegated sign-in"), whose rotated successor is written
//! back atomically before the access token is used.

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use super::assertion;
use super::error::TokenError;
use crate::certificate::ClientCertificate;
use crate::config::{Credential, DelegatedLogin, IdentityProtocol, TenantConfig, read_secret_file};
use crate::metrics::{ExporterMetrics, ResultLabels, TenantLabels};
use crate::secret::Secret;

/// Renew this long before expiry, capped at a fifth of the token's life so short-lived
/// tokens (tests) are not renewed at every request.
const RENEW_MARGIN: Duration = Duration::from_secs(300);
/// Longest token life believed: Entra tokens live 60–90 minutes, so anything beyond a
/// day is a broken endpoint, and an unbounded value would overflow `Instant` arithmetic
/// (a panic in the poller).
const MAX_TOKEN_LIFE: Duration = Duration::from_secs(24 * 3600);
/// Timeout of one managed-identity token request.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);
/// Waits between token-endpoint attempts for transient failures (network, 429, 5xx):
/// three attempts.
const TOKEN_DELAYS: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(2)];
/// Waits between managed-identity attempts: IMDS answers 404/410 for up to ~70 s while
/// it updates (graph-api.md §10.1), so, like the Rust SDK, six retries from 1.34 s,
/// doubling: about 84 s in all, more than the SDK's 72 s bound.
const IDENTITY_DELAYS: [Duration; 6] = [
    Duration::from_millis(1_340),
    Duration::from_millis(2_680),
    Duration::from_millis(5_360),
    Duration::from_millis(10_720),
    Duration::from_millis(21_440),
    Duration::from_millis(42_880),
];
/// `client_assertion_type` of certificate and federated assertions (§8.2).
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The token endpoint's answer, and the managed-identity endpoints' (which send every
/// number as a string and may send `expires_on` instead of `expires_in`).
#[derive(Deserialize)]
struct TokenResponse {
    access_token: Secret,
    #[serde(default)]
    token_type: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    expires_on: Option<serde_json::Value>,
    /// Delegated grants only: the rotated refresh token.
    #[serde(default)]
    refresh_token: Option<Secret>,
}

/// An integer sent as a JSON number or a string of digits.
fn seconds(v: Option<&serde_json::Value>) -> Option<u64> {
    match v? {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[derive(Clone)]
struct Cached {
    token: Secret,
    renew_at: Instant,
}

/// A tenant's token source.
pub struct TokenSource {
    http: reqwest::Client,
    tenant: String,
    token_url: String,
    client_id: String,
    scope: String,
    credential: Credential,
    metrics: ExporterMetrics,
    cache: Mutex<Option<Cached>>,
    /// `Some`: a delegated source redeeming the refresh token of this sign-in.
    delegated: Option<Delegated>,
}

/// A delegated source's sign-in: the file, and the newest refresh token this process
/// holds (preferred over the file, so a failed write-back never sends a rotated one).
struct Delegated {
    login: DelegatedLogin,
    latest: std::sync::Mutex<Option<Secret>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("tenant", &self.tenant)
            .field("token_url", &self.token_url)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    /// For `tenant`, sending requests with `http`.
    pub fn new(http: reqwest::Client, tenant: &TenantConfig, metrics: ExporterMetrics) -> Self {
        Self {
            tenant: tenant.name.clone(),
            token_url: format!(
                "{}/{}/oauth2/v2.0/token",
                tenant.login_url, tenant.tenant_id
            ),
            client_id: tenant.client_id.clone(),
            scope: tenant.scope.clone(),
            credential: tenant.credential.clone(),
            // Managed identity endpoints are host-local and must not go through a proxy.
            http: if matches!(tenant.credential, Credential::ManagedIdentity(_)) {
                super::local_http_client(TOKEN_TIMEOUT)
            } else {
                http
            },
            metrics,
            cache: Mutex::new(None),
            delegated: None,
        }
    }

    /// The delegated source of `tenant`, when it has a `refresh_token_file`: a public
    /// client redeeming the sign-in's refresh token for `offline_access` and the
    /// delegated `AuditLog.Read.All` of the tenant's cloud.
    pub fn delegated(
        http: reqwest::Client,
        tenant: &TenantConfig,
        metrics: ExporterMetrics,
    ) -> Option<Self> {
        let login = tenant.delegated.clone()?;
        // 0 until the first redemption succeeds.
        let _ = metrics.delegated_login_valid.get_or_create(&TenantLabels {
            tenant: tenant.name.clone(),
        });
        Some(Self {
            client_id: login.public_client_id.clone(),
            scope: delegated_scope(&tenant.scope),
            delegated: Some(Delegated {
                login,
                latest: std::sync::Mutex::new(None),
            }),
            ..Self::new(http, tenant, metrics)
        })
    }

    /// A valid access token, from the cache or freshly requested.
    pub async fn token(&self) -> Result<Secret, TokenError> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref()
            && Instant::now() < c.renew_at
        {
            return Ok(c.token.clone());
        }
        let fresh = self.request().await;
        self.metrics
            .token_requests
            .get_or_create(&ResultLabels {
                tenant: self.tenant.clone(),
                result: if fresh.is_ok() { "success" } else { "error" }.into(),
            })
            .inc();
        if self.delegated.is_some() {
            // Valid after a redemption; invalid when the sign-in itself is refused or
            // unreadable (not for a network failure or an STS outage).
            let valid = match &fresh {
                Ok(_) => Some(1),
                Err(e) if e.error == "invalid_grant" || e.error == "refresh_token_file" => Some(0),
                Err(_) => None,
            };
            if let Some(v) = valid {
                self.metrics
                    .delegated_login_valid
                    .get_or_create(&TenantLabels {
                        tenant: self.tenant.clone(),
                    })
                    .set(v);
            }
        }
        let fresh = fresh?;
        *cache = Some(fresh.clone());
        Ok(fresh.token)
    }

    /// Drops `stale` from the cache (Graph said it expired) unless another task has
    /// already replaced it.
    pub async fn invalidate(&self, stale: &Secret) {
        let mut cache = self.cache.lock().await;
        if cache.as_ref().is_some_and(|c| &c.token == stale) {
            *cache = None;
        }
    }

    /// One token request, built anew for every attempt: secret and token files are
    /// re-read (rotation) and certificate assertions re-signed (fresh `jti`, `exp`).
    fn build(&self) -> Result<reqwest::RequestBuilder, TokenError> {
        let local = |key: &str, description: String| TokenError {
            status: 0,
            error: key.into(),
            description,
            codes: vec![],
            hint: None,
        };
        if let Some(d) = &self.delegated {
            let held = d.latest.lock().expect("refresh token poisoned").clone();
            let token = match held {
                Some(t) => t,
                None => read_secret_file(&d.login.refresh_token_file).map_err(|e| {
                    local(
                        "refresh_token_file",
                        format!(
                            "{e}; run `entra-mfa-exporter login` for tenant {}",
                            self.tenant
                        ),
                    )
                })?,
            };
            let fields = [
                ("client_id", self.client_id.as_str()),
                ("grant_type", "refresh_token"),
                ("refresh_token", token.expose()),
                ("scope", self.scope.as_str()),
            ];
            return Ok(self.http.post(&self.token_url).form(&fields));
        }
        let form = |credential: &[(&str, &str)]| {
            let mut fields = vec![
                ("client_id", self.client_id.as_str()),
                ("scope", self.scope.as_str()),
                ("grant_type", "client_credentials"),
            ];
            fields.extend_from_slice(credential);
            self.http.post(&self.token_url).form(&fields)
        };
        Ok(match &self.credential {
            Credential::ClientSecret(s) => form(&[("client_secret", s.expose())]),
            Credential::ClientSecretFile(path) => {
                let secret = read_secret_file(path).map_err(|e| local("client_secret_file", e))?;
                form(&[("client_secret", secret.expose())])
            }
            Credential::Certificate { file, algorithm } => {
                let assertion = ClientCertificate::load(file)
                    .and_then(|c| assertion::sign(&c, *algorithm, &self.client_id, &self.token_url))
                    .map_err(|e| local("certificate_file", e))?;
                form(&[
                    ("client_assertion_type", JWT_BEARER),
                    ("client_assertion", &assertion),
                ])
            }
            Credential::WorkloadIdentity { token_file } => {
                let assertion =
                    read_secret_file(token_file).map_err(|e| local("federated_token_file", e))?;
                form(&[
                    ("client_assertion_type", JWT_BEARER),
                    ("client_assertion", assertion.expose()),
                ])
            }
            Credential::ManagedIdentity(mi) => {
                let mut url = reqwest::Url::parse(&mi.endpoint)
                    .map_err(|e| local("managed_identity_endpoint", e.to_string()))?;
                let (version, header, value) = match &mi.protocol {
                    IdentityProtocol::Imds => ("2018-02-01", "Metadata", "true"),
                    IdentityProtocol::AppService { header } => {
                        ("2019-08-01", "X-IDENTITY-HEADER", header.expose())
                    }
                };
                {
                    let mut q = url.query_pairs_mut();
                    q.append_pair("api-version", version);
                    // v1-style resource: the scope without `/.default` (§10.1).
                    q.append_pair("resource", self.scope.trim_end_matches("/.default"));
                    if let Some(id) = &mi.client_id {
                        q.append_pair("client_id", id);
                    }
                }
                let mut value = reqwest::header::HeaderValue::from_str(value)
                    .map_err(|_| local(header, "is not a valid HTTP header value".into()))?;
                // The App Service header is a secret: keep it out of any Debug output
                // of the HTTP stack (trace logs).
                value.set_sensitive(matches!(mi.protocol, IdentityProtocol::AppService { .. }));
                self.http.get(url).header(header, value)
            }
        })
    }

    async fn request(&self) -> Result<Cached, TokenError> {
        let identity = matches!(self.credential, Credential::ManagedIdentity(_));
        let mut delays = retry_delays(identity).iter();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let started = Instant::now();
            let result = self.build()?.send().await;
            let transient = match result {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let body = resp.bytes().await.map_err(|e| transport(&e))?;
                    if (200..300).contains(&status) {
                        let cached = parse_token(&body, started)?;
                        if let Some(d) = &self.delegated {
                            self.keep_rotated(d, &body)?;
                        }
                        return Ok(cached);
                    }
                    let mut err = TokenError::from_response(status, &body);
                    if let Some(d) = &self.delegated
                        && err.error == "invalid_grant"
                    {
                        // A new `login` may have replaced the file since: read it next time.
                        *d.latest.lock().expect("refresh token poisoned") = None;
                        err.description = format!(
                            "{}; the delegated sign-in expired or was revoked: run `entra-mfa-exporter login --config.file FILE --tenant {}` again (it writes {})",
                            err.description,
                            self.tenant,
                            d.login.refresh_token_file.display()
                        );
                    }
                    let retry = status == 429
                        || status >= 500
                        || identity && (status == 404 || status == 410);
                    if !retry {
                        return Err(err);
                    }
                    err
                }
                Err(e) => transport(&e),
            };
            let Some(delay) = delays.next() else {
                return Err(transient);
            };
            tracing::warn!(tenant = %self.tenant, attempt, error = %transient, "token request failed, retrying");
            tokio::time::sleep(*delay).await;
        }
    }
}

impl TokenSource {
    /// Writes the rotated refresh token of a delegated redemption back, atomically and
    /// mode 0600, before its access token is used: the file always holds a token that
    /// was valid when written, never half of one.
    fn keep_rotated(&self, d: &Delegated, body: &[u8]) -> Result<(), TokenError> {
        let Ok(TokenResponse {
            refresh_token: Some(rotated),
            ..
        }) = serde_json::from_slice::<TokenResponse>(body)
        else {
            // No rotation: the held token stays valid.
            return Ok(());
        };
        *d.latest.lock().expect("refresh token poisoned") = Some(rotated.clone());
        let path = &d.login.refresh_token_file;
        crate::atomic_file::write_private_atomically(path, format!("{}\n", rotated.expose()).as_bytes())
            .map_err(|e| TokenError {
                status: 0,
                error: "refresh_token_file".into(),
                description: format!(
                    "cannot write the rotated refresh token to {}: {e} (this process keeps using it; a restart will need `login` again)",
                    path.display()
                ),
                codes: vec![],
                hint: None,
            })
    }
}

/// The scope of a delegated sign-in: `offline_access` (for a refresh token) and the
/// delegated `AuditLog.Read.All` of the cloud's Graph, whose `.default` scope is
/// `app_scope`.
pub fn delegated_scope(app_scope: &str) -> String {
    format!(
        "offline_access {}/AuditLog.Read.All",
        app_scope.trim_end_matches("/.default")
    )
}

/// The waits between attempts of a token request; one attempt more than waits.
fn retry_delays(managed_identity: bool) -> &'static [Duration] {
    if managed_identity {
        &IDENTITY_DELAYS
    } else {
        &TOKEN_DELAYS
    }
}

fn transport(e: &reqwest::Error) -> TokenError {
    TokenError {
        status: 0,
        error: "network".into(),
        // reqwest's message names the token URL: host and tenant, no secret.
        description: crate::util::error_chain(e),
        codes: vec![],
        hint: None,
    }
}

fn parse_token(body: &[u8], requested_at: Instant) -> Result<Cached, TokenError> {
    let bad = |why: String| TokenError {
        status: 200,
        error: "invalid_response".into(),
        description: why,
        codes: vec![],
        hint: None,
    };
    let resp: TokenResponse =
        serde_json::from_slice(body).map_err(|e| bad(format!("unreadable token response: {e}")))?;
    if !resp.token_type.eq_ignore_ascii_case("bearer") {
        return Err(bad(format!("unexpected token_type `{}`", resp.token_type)));
    }
    if resp.access_token.is_blank() {
        return Err(bad("empty access_token".into()));
    }
    let life = match seconds(resp.expires_in.as_ref()) {
        Some(secs) => secs,
        // Managed identity may send only the absolute expiry.
        None => seconds(resp.expires_on.as_ref())
            .ok_or_else(|| bad("the token response has neither expires_in nor expires_on".into()))?
            .saturating_sub(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            ),
    };
    let life = Duration::from_secs(life).min(MAX_TOKEN_LIFE);
    let margin = RENEW_MARGIN.min(life / 5);
    Ok(Cached {
        token: resp.access_token,
        renew_at: requested_at + life - margin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_service_identity_header_is_sensitive() {
        let env = |k: &str| match k {
            "IDENTITY_ENDPOINT" => Some("http://127.0.0.1:9/msi/token".to_owned()),
            "IDENTITY_HEADER" => Some("hdr-secret".to_owned()),
            _ => None,
        };
        let config = crate::config::Config::from_toml_with_env(
            "[[tenants]]\nname = \"app\"\nauth = \"managed_identity\"\n",
            &env,
        )
        .unwrap();
        let metrics = ExporterMetrics::new();
        let source = TokenSource::new(
            crate::graph::http_client(TOKEN_TIMEOUT),
            &config.tenants[0],
            metrics,
        );
        let request = source.build().unwrap().build().unwrap();
        let value = &request.headers()["X-IDENTITY-HEADER"];
        assert_eq!(value, "hdr-secret");
        assert!(value.is_sensitive());
        assert!(!format!("{request:?}").contains("hdr-secret"));
    }

    #[test]
    fn delegated_scope_follows_the_cloud() {
        for (cloud, graph) in [
            (crate::cloud::Cloud::Global, "https://graph.microsoft.com"),
            (
                crate::cloud::Cloud::China,
                "https://microsoftgraph.chinacloudapi.cn",
            ),
        ] {
            assert_eq!(
                delegated_scope(&cloud.scope()),
                format!("offline_access {graph}/AuditLog.Read.All")
            );
        }
    }

    #[test]
    fn managed_identity_retries_outlast_an_imds_update() {
        // IMDS may answer 404/410 for ~70 s; the SDK retries for up to 72 s.
        let total: Duration = retry_delays(true).iter().sum();
        assert!(total >= Duration::from_secs(72), "{total:?}");
        // The token endpoint's transient failures get a short schedule.
        let total: Duration = retry_delays(false).iter().sum();
        assert!(total <= Duration::from_secs(5), "{total:?}");
    }

    #[test]
    fn token_response_parsing() {
        let now = Instant::now();
        let c = parse_token(
            br#"{"token_type":"bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"abc"}"#,
            now,
        )
        .unwrap();
        assert_eq!(c.token.expose(), "abc");
        assert_eq!(c.renew_at - now, Duration::from_secs(3599 - 300));
        let short = parse_token(
            br#"{"token_type":"Bearer","expires_in":10,"access_token":"x"}"#,
            now,
        )
        .unwrap();
        assert_eq!(short.renew_at - now, Duration::from_secs(8));
        assert!(
            parse_token(
                br#"{"token_type":"mac","expires_in":1,"access_token":"x"}"#,
                now
            )
            .is_err()
        );
        // Managed identity sends numbers as strings, and may send only `expires_on`.
        let mi = parse_token(
            br#"{"token_type":"Bearer","expires_in":"3599","expires_on":"1","access_token":"x"}"#,
            now,
        )
        .unwrap();
        assert_eq!(mi.renew_at - now, Duration::from_secs(3599 - 300));
        let on = format!(
            r#"{{"token_type":"Bearer","expires_on":"{}","access_token":"x"}}"#,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                + 1000
        );
        let on = parse_token(on.as_bytes(), now).unwrap();
        assert!(
            on.renew_at - now <= Duration::from_secs(800)
                && on.renew_at - now > Duration::from_secs(700)
        );
        // A huge lifetime (u64::MAX seconds, or an expiry far in the future) is capped
        // instead of overflowing the clock.
        for huge in [
            format!(
                r#"{{"token_type":"Bearer","expires_in":{},"access_token":"x"}}"#,
                u64::MAX
            ),
            format!(
                r#"{{"token_type":"Bearer","expires_on":"{}","access_token":"x"}}"#,
                u64::MAX
            ),
        ] {
            let c = parse_token(huge.as_bytes(), now).unwrap();
            assert_eq!(c.renew_at - now, MAX_TOKEN_LIFE - RENEW_MARGIN, "{huge}");
        }
        for bad in [
            r#"{"token_type":"Bearer","expires_in":"soon","access_token":"x"}"#,
            r#"{"token_type":"Bearer","access_token":"x"}"#,
        ] {
            assert!(parse_token(bad.as_bytes(), now).is_err(), "{bad}");
        }
    }
}
