//! Access tokens from the identity platform's v2.0 token endpoint (client credentials,
//! graph-api.md §8), cached and renewed before they expire.

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use super::error::TokenError;
use crate::config::{Credential, TenantConfig, read_secret_file};
use crate::metrics::{ExporterMetrics, ResultLabels};
use crate::secret::Secret;

/// Renew this long before expiry, capped at a fifth of the token's life so short-lived
/// tokens (tests) are not renewed at every request.
const RENEW_MARGIN: Duration = Duration::from_secs(300);
/// Token-endpoint attempts for transient failures (network, 429, 5xx).
const TOKEN_ATTEMPTS: u32 = 3;

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Secret,
    #[serde(default)]
    token_type: String,
    expires_in: u64,
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
            http,
            tenant: tenant.name.clone(),
            token_url: format!(
                "{}/{}/oauth2/v2.0/token",
                tenant.login_url, tenant.tenant_id
            ),
            client_id: tenant.client_id.clone(),
            scope: tenant.scope.clone(),
            credential: tenant.credential.clone(),
            metrics,
            cache: Mutex::new(None),
        }
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

    async fn request(&self) -> Result<Cached, TokenError> {
        let secret = match &self.credential {
            Credential::ClientSecret(s) => s.clone(),
            // Re-read every time so a rotated secret is used without a restart.
            Credential::ClientSecretFile(path) => {
                read_secret_file(path).map_err(|e| TokenError {
                    status: 0,
                    error: "client_secret_file".into(),
                    description: e,
                    codes: vec![],
                    hint: None,
                })?
            }
        };
        let form = [
            ("client_id", self.client_id.as_str()),
            ("scope", self.scope.as_str()),
            ("client_secret", secret.expose()),
            ("grant_type", "client_credentials"),
        ];
        let mut attempt = 0;
        loop {
            attempt += 1;
            let started = Instant::now();
            let result = self.http.post(&self.token_url).form(&form).send().await;
            let transient = match result {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let body = resp.bytes().await.map_err(|e| transport(&e))?;
                    if (200..300).contains(&status) {
                        return parse_token(&body, started);
                    }
                    let err = TokenError::from_response(status, &body);
                    if status != 429 && status < 500 {
                        return Err(err);
                    }
                    err
                }
                Err(e) => transport(&e),
            };
            if attempt >= TOKEN_ATTEMPTS {
                return Err(transient);
            }
            tracing::warn!(tenant = %self.tenant, attempt, error = %transient, "token request failed, retrying");
            tokio::time::sleep(Duration::from_millis(500 * 2u64.pow(attempt))).await;
        }
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
    let life = Duration::from_secs(resp.expires_in);
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
        assert!(
            parse_token(
                br#"{"token_type":"Bearer","expires_in":"1","access_token":"x"}"#,
                now
            )
            .is_err()
        );
    }
}
