//! `entra-mfa-exporter login`: the OAuth 2.0 device authorization grant (RFC 8628)
//! against the tenant's login host, for the reports Microsoft serves only to a signed-in
//! user (design.md, "Delegated sign-in"). The operator opens the printed URL, enters the
//! code and signs in; this polls the token endpoint as §3.4–3.5 say and returns the
//! refresh token, which the caller writes to `refresh_token_file`.
//!
//! Hand-written rather than with the `oauth2` crate: the flow is two form POSTs and a
//! polling loop, and the crate would bring its own HTTP adapter and token types beside
//! the exporter's reqwest client and [`Secret`] (which keeps tokens out of every Debug
//! and log line).

use std::time::{Duration, Instant};

use serde::Deserialize;

use super::auth::delegated_scope;
use super::error::TokenError;
use crate::config::TenantConfig;
use crate::secret::Secret;

/// RFC 8628 §3.2: the interval when the server sends none.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// RFC 8628 §3.5: `slow_down` adds five seconds.
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// Shortest wait between polls, whatever the server says (a broken `interval: 0`).
const MIN_INTERVAL: Duration = Duration::from_millis(500);
/// Longest a sign-in is waited for, whatever `expires_in` says.
const MAX_WAIT: Duration = Duration::from_secs(3600);

#[derive(Deserialize)]
struct Authorization {
    device_code: Secret,
    user_code: String,
    verification_uri: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    interval: Option<u64>,
}

#[derive(Deserialize)]
struct Tokens {
    #[serde(default)]
    refresh_token: Option<Secret>,
}

/// Why a sign-in ended without a refresh token.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The tenant has no `refresh_token_file`.
    #[error(
        "tenant {0} has no refresh_token_file: set it to where the refresh token should be kept"
    )]
    NotConfigured(String),
    /// The user declined.
    #[error("the sign-in was declined (access_denied): run login again and accept")]
    Denied,
    /// Nobody entered the code in time.
    #[error("the code expired before anyone signed in (expired_token): run login again")]
    Expired,
    /// The identity platform refused.
    #[error("{0}")]
    Token(TokenError),
    /// The answer had no refresh token.
    #[error(
        "the sign-in returned no refresh token: the scope must include offline_access and the app must allow public client flows"
    )]
    NoRefreshToken,
}

/// Runs the device-code sign-in for `tenant`; `show` is handed the line telling the
/// operator where to go and which code to enter. Returns the refresh token.
pub async fn sign_in(
    http: &reqwest::Client,
    tenant: &TenantConfig,
    show: impl FnOnce(&str),
) -> Result<Secret, LoginError> {
    let login = tenant
        .delegated
        .as_ref()
        .ok_or_else(|| LoginError::NotConfigured(tenant.name.clone()))?;
    let base = format!("{}/{}/oauth2/v2.0", tenant.login_url, tenant.tenant_id);
    let scope = delegated_scope(&tenant.scope);
    let client_id = login.public_client_id.as_str();
    let started = Instant::now();
    let body = post(
        http,
        &format!("{base}/devicecode"),
        &[("client_id", client_id), ("scope", &scope)],
    )
    .await
    .map_err(LoginError::Token)?;
    let auth: Authorization = serde_json::from_slice(&body).map_err(|e| {
        LoginError::Token(TokenError {
            status: 200,
            error: "invalid_response".into(),
            description: format!("unreadable device authorization: {e}"),
            codes: vec![],
            hint: None,
        })
    })?;
    show(&format!(
        "To sign in for tenant {}, open {} and enter the code {}",
        tenant.name, auth.verification_uri, auth.user_code
    ));
    let expires = started + Duration::from_secs(auth.expires_in.unwrap_or(900)).min(MAX_WAIT);
    let mut interval = auth
        .interval
        .map_or(DEFAULT_INTERVAL, Duration::from_secs)
        .max(MIN_INTERVAL);
    let grant = [
        ("client_id", client_id),
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", auth.device_code.expose()),
    ];
    loop {
        if Instant::now() + interval > expires {
            return Err(LoginError::Expired);
        }
        tokio::time::sleep(interval).await;
        match post(http, &format!("{base}/token"), &grant).await {
            Ok(body) => {
                let tokens: Tokens =
                    serde_json::from_slice(&body).map_err(|_| LoginError::NoRefreshToken)?;
                return tokens.refresh_token.ok_or(LoginError::NoRefreshToken);
            }
            Err(e) => match e.error.as_str() {
                "authorization_pending" => {}
                "slow_down" => interval += SLOW_DOWN_STEP,
                "expired_token" => return Err(LoginError::Expired),
                "access_denied" | "authorization_declined" => return Err(LoginError::Denied),
                _ => return Err(LoginError::Token(e)),
            },
        }
    }
}

/// POSTs a form; the body of a 2xx answer, else the token endpoint's error.
async fn post(
    http: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> Result<bytes::Bytes, TokenError> {
    let network = |e: reqwest::Error| TokenError {
        status: 0,
        error: "network".into(),
        description: crate::util::error_chain(&e),
        codes: vec![],
        hint: None,
    };
    let resp = http.post(url).form(form).send().await.map_err(network)?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await.map_err(network)?;
    if (200..300).contains(&status) {
        Ok(body)
    } else {
        Err(TokenError::from_response(status, &body))
    }
}
