//! Delegated sign-in at the simulated STS: the OAuth 2.0 device authorization grant
//! (RFC 8628: `POST /{tenant}/oauth2/v2.0/devicecode`, then the token endpoint with
//! `grant_type=urn:ietf:params:oauth:grant-type:device_code`) and refresh-token
//! redemption (`grant_type=refresh_token`), for the reports Microsoft serves only to a
//! signed-in user (design.md, "Delegated sign-in").
//!
//! What the tests need played strictly:
//! - polling: `authorization_pending` until the user acts, `slow_down` (and a longer
//!   interval, RFC 8628 §3.5) when polled faster than the interval, `expired_token` past
//!   the code's lifetime, `access_denied` when the user declines;
//! - rotation: every redemption returns a new refresh token and retires the presented
//!   one; presenting a retired token again is reuse, refused with `invalid_grant`, and
//!   revokes every token descended from the same sign-in (RFC 6819 §5.2.2.3);
//! - revocation (the user's sessions revoked, a password reset): `invalid_grant`.
//!
//! The user is played by the tests through [`super::SimServer`]: approve or deny a user
//! code, revoke a tenant's refresh tokens, or (for `--demo`) mint a refresh token
//! without a sign-in.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::base64url;
use super::json;
use super::rng::random_u64;

/// The grant type of a device-code redemption.
pub(crate) const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// RFC 8628 §3.5: each `slow_down` adds five seconds to the interval.
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// An STS refusal: status, `error`, AADSTS code, description.
pub(crate) type Refusal = (u16, &'static str, u32, String);

/// What a user decided about a device code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Pending,
    Approved,
    Denied,
    /// Already exchanged for tokens.
    Redeemed,
}

#[derive(Debug)]
struct DeviceCode {
    tenant: usize,
    client_id: String,
    user_code: String,
    scopes: Vec<String>,
    expires: Instant,
    interval: Duration,
    last_poll: Option<Instant>,
    decision: Decision,
}

/// Where a refresh token stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshStatus {
    /// Redeemable.
    Current,
    /// Redeemed once; presenting it again is reuse.
    Rotated,
    /// Revoked (by reuse of a sibling, or by the tenant).
    Revoked,
}

#[derive(Debug)]
struct RefreshToken {
    tenant: usize,
    client_id: String,
    scopes: Vec<String>,
    /// Every token rotated from one sign-in shares its family.
    family: u64,
    status: RefreshStatus,
}

/// Tokens a delegated redemption issues.
pub(crate) struct Issued {
    pub(crate) tenant: usize,
    /// The delegated permissions (`AuditLog.Read.All`), without the resource prefix.
    pub(crate) permissions: Vec<String>,
    /// The scope string as granted.
    pub(crate) scope: String,
    pub(crate) refresh_token: Option<String>,
}

#[derive(Debug, Default)]
struct Inner {
    codes: HashMap<String, DeviceCode>,
    refresh: HashMap<String, RefreshToken>,
}

/// Device codes and refresh tokens issued so far.
#[derive(Debug, Default)]
pub(crate) struct DelegatedStore {
    inner: Mutex<Inner>,
}

fn opaque(prefix: &str, words: usize) -> String {
    let mut bytes = Vec::with_capacity(words * 8);
    for _ in 0..words {
        bytes.extend_from_slice(&random_u64().to_le_bytes());
    }
    format!("{prefix}{}", base64url::encode_url(&bytes))
}

/// `ABCD-EFGH`-style code a person types: letters only, no look-alikes.
fn user_code() -> String {
    const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
    let mut n = random_u64();
    let mut out = String::with_capacity(9);
    for i in 0..8 {
        if i == 4 {
            out.push('-');
        }
        out.push(ALPHABET[(n % ALPHABET.len() as u64) as usize] as char);
        n /= ALPHABET.len() as u64;
    }
    out
}

fn invalid_grant(code: u32, description: &str) -> Refusal {
    (400, "invalid_grant", code, description.to_owned())
}

/// The delegated permissions of a scope string: `https://graph…/AuditLog.Read.All`
/// ▸ `AuditLog.Read.All`; `offline_access`, `openid`, `profile` carry none.
fn permissions(scopes: &[String]) -> Vec<String> {
    scopes
        .iter()
        .map(|s| s.rsplit('/').next().unwrap_or(s).to_owned())
        .filter(|s| {
            !matches!(
                s.as_str(),
                "offline_access" | "openid" | "profile" | ".default"
            )
        })
        .collect()
}

impl DelegatedStore {
    /// Starts a device authorization; returns the JSON body of the answer.
    pub(crate) fn start(
        &self,
        tenant: usize,
        client_id: &str,
        scope: &str,
        base_url: &str,
        lifetime: Duration,
        interval: Duration,
    ) -> String {
        let device_code = opaque("simdc.", 4);
        let code = user_code();
        let scopes: Vec<String> = scope.split_whitespace().map(str::to_owned).collect();
        let uri = format!("{base_url}/devicelogin");
        let body = format!(
            "{{\"user_code\":{},\"device_code\":{},\"verification_uri\":{},\"expires_in\":{},\"interval\":{},\"message\":{}}}",
            json::string(&code),
            json::string(&device_code),
            json::string(&uri),
            lifetime.as_secs(),
            interval.as_secs(),
            json::string(&format!(
                "To sign in, use a web browser to open the page {uri} and enter the code {code} to authenticate."
            )),
        );
        self.inner
            .lock()
            .expect("delegated store poisoned")
            .codes
            .insert(
                device_code,
                DeviceCode {
                    tenant,
                    client_id: client_id.to_owned(),
                    user_code: code,
                    scopes,
                    expires: Instant::now() + lifetime,
                    interval,
                    last_poll: None,
                    decision: Decision::Pending,
                },
            );
        body
    }

    /// The user approves (`true`) or declines the sign-in showing `user_code`. `false`
    /// when no pending code has it.
    pub(crate) fn decide(&self, user_code: &str, approve: bool) -> bool {
        let mut inner = self.inner.lock().expect("delegated store poisoned");
        match inner.codes.values_mut().find(|c| {
            c.user_code.eq_ignore_ascii_case(user_code) && c.decision == Decision::Pending
        }) {
            Some(c) => {
                c.decision = if approve {
                    Decision::Approved
                } else {
                    Decision::Denied
                };
                true
            }
            None => false,
        }
    }

    /// Redeems a device code for tenant `tenant` by `client_id`.
    pub(crate) fn redeem_device_code(
        &self,
        tenant: usize,
        client_id: &str,
        device_code: &str,
    ) -> Result<Issued, Refusal> {
        let mut inner = self.inner.lock().expect("delegated store poisoned");
        let now = Instant::now();
        let Some(code) = inner
            .codes
            .get_mut(device_code)
            .filter(|c| c.tenant == tenant && c.client_id == client_id)
        else {
            return Err(invalid_grant(
                70_000,
                "Provided grant is invalid or malformed.",
            ));
        };
        if now >= code.expires {
            return Err((
                400,
                "expired_token",
                70_020,
                "The provided value for the input parameter 'device_code' is not valid. This device code has expired.".into(),
            ));
        }
        let too_fast = code
            .last_poll
            .is_some_and(|last| now.duration_since(last) < code.interval);
        code.last_poll = Some(now);
        match code.decision {
            Decision::Redeemed => Err(invalid_grant(
                70_000,
                "The provided device code has already been redeemed.",
            )),
            Decision::Denied => Err((
                400,
                "access_denied",
                70_019,
                "The user declined to sign in.".into(),
            )),
            _ if too_fast => {
                code.interval += SLOW_DOWN_STEP;
                Err((
                    400,
                    "slow_down",
                    70_016,
                    "Polling too fast: wait the interval between requests.".into(),
                ))
            }
            Decision::Pending => Err((
                400,
                "authorization_pending",
                70_016,
                "OAuth 2.0 device flow error. Authorization is pending. Continue polling.".into(),
            )),
            Decision::Approved => {
                code.decision = Decision::Redeemed;
                let scopes = code.scopes.clone();
                let client_id = code.client_id.clone();
                let family = random_u64();
                Ok(Self::grant(&mut inner, tenant, client_id, scopes, family))
            }
        }
    }

    /// Redeems a refresh token: rotates it, or refuses reuse and revoked tokens.
    pub(crate) fn redeem_refresh_token(
        &self,
        tenant: usize,
        client_id: &str,
        token: &str,
    ) -> Result<Issued, Refusal> {
        let mut inner = self.inner.lock().expect("delegated store poisoned");
        let Some(entry) = inner
            .refresh
            .get_mut(token)
            .filter(|t| t.tenant == tenant && t.client_id == client_id)
        else {
            return Err(invalid_grant(
                9_002_313,
                "Invalid request. Request is malformed or invalid: the refresh token is not valid.",
            ));
        };
        match entry.status {
            RefreshStatus::Current => {
                entry.status = RefreshStatus::Rotated;
                let (scopes, family, client) =
                    (entry.scopes.clone(), entry.family, entry.client_id.clone());
                Ok(Self::grant(&mut inner, tenant, client, scopes, family))
            }
            RefreshStatus::Rotated => {
                // Reuse of a redeemed token: someone else may hold the family.
                let family = entry.family;
                for t in inner.refresh.values_mut().filter(|t| t.family == family) {
                    t.status = RefreshStatus::Revoked;
                }
                Err(invalid_grant(
                    50_173,
                    "The provided grant has expired due to it being revoked, a fresh auth token is needed: the refresh token was already redeemed.",
                ))
            }
            RefreshStatus::Revoked => Err(invalid_grant(
                50_173,
                "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.",
            )),
        }
    }

    fn grant(
        inner: &mut Inner,
        tenant: usize,
        client_id: String,
        scopes: Vec<String>,
        family: u64,
    ) -> Issued {
        let offline = scopes.iter().any(|s| s == "offline_access");
        let refresh_token = offline.then(|| {
            let token = opaque("simrt.", 6);
            inner.refresh.insert(
                token.clone(),
                RefreshToken {
                    tenant,
                    client_id,
                    scopes: scopes.clone(),
                    family,
                    status: RefreshStatus::Current,
                },
            );
            token
        });
        Issued {
            tenant,
            permissions: permissions(&scopes),
            scope: scopes.join(" "),
            refresh_token,
        }
    }

    /// A refresh token as if a user of `tenant` had signed in with `scope` (`--demo`).
    pub(crate) fn mint(&self, tenant: usize, client_id: &str, scope: &str) -> String {
        let mut inner = self.inner.lock().expect("delegated store poisoned");
        let scopes = scope.split_whitespace().map(str::to_owned).collect();
        Self::grant(
            &mut inner,
            tenant,
            client_id.to_owned(),
            scopes,
            random_u64(),
        )
        .refresh_token
        .expect("offline_access in the scope")
    }

    /// Revokes every refresh token of `tenant`; returns how many were redeemable.
    pub(crate) fn revoke(&self, tenant: usize) -> usize {
        let mut inner = self.inner.lock().expect("delegated store poisoned");
        let mut n = 0;
        for t in inner.refresh.values_mut().filter(|t| t.tenant == tenant) {
            n += usize::from(t.status == RefreshStatus::Current);
            t.status = RefreshStatus::Revoked;
        }
        n
    }

    /// Where `token` stands; `None` when never issued.
    pub(crate) fn status(&self, token: &str) -> Option<RefreshStatus> {
        let inner = self.inner.lock().expect("delegated store poisoned");
        inner.refresh.get(token).map(|t| t.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCOPE: &str = "offline_access https://graph.microsoft.com/AuditLog.Read.All";

    fn error(r: Result<Issued, Refusal>) -> &'static str {
        match r {
            Ok(_) => "ok",
            Err((_, e, _, _)) => e,
        }
    }

    #[test]
    fn device_code_pending_slow_down_denied_expired_and_success() {
        let s = DelegatedStore::default();
        let body: serde_json::Value = serde_json::from_str(&s.start(
            0,
            "app",
            SCOPE,
            "http://x",
            Duration::from_secs(60),
            Duration::ZERO,
        ))
        .unwrap();
        let dc = body["device_code"].as_str().unwrap();
        let uc = body["user_code"].as_str().unwrap();
        assert_eq!(body["verification_uri"], "http://x/devicelogin");
        assert_eq!(
            error(s.redeem_device_code(0, "app", dc)),
            "authorization_pending"
        );
        assert_eq!(
            error(s.redeem_device_code(1, "app", dc)),
            "invalid_grant",
            "other tenant"
        );
        assert_eq!(
            error(s.redeem_device_code(0, "other", dc)),
            "invalid_grant",
            "other client"
        );
        assert!(s.decide(uc, true));
        let issued = s.redeem_device_code(0, "app", dc).unwrap();
        assert_eq!(issued.permissions, ["AuditLog.Read.All"]);
        let rt = issued.refresh_token.unwrap();
        assert_eq!(s.status(&rt), Some(RefreshStatus::Current));
        assert_eq!(
            error(s.redeem_device_code(0, "app", dc)),
            "invalid_grant",
            "redeemed once"
        );

        // Polled faster than a 60 s interval: slow_down, and the interval grows.
        let body: serde_json::Value = serde_json::from_str(&s.start(
            0,
            "app",
            SCOPE,
            "http://x",
            Duration::from_secs(60),
            Duration::from_secs(60),
        ))
        .unwrap();
        let dc = body["device_code"].as_str().unwrap();
        assert_eq!(
            error(s.redeem_device_code(0, "app", dc)),
            "authorization_pending"
        );
        assert_eq!(error(s.redeem_device_code(0, "app", dc)), "slow_down");
        assert!(s.decide(body["user_code"].as_str().unwrap(), false));
        assert!(
            !s.decide(body["user_code"].as_str().unwrap(), true),
            "decided already"
        );

        let body: serde_json::Value = serde_json::from_str(&s.start(
            0,
            "app",
            SCOPE,
            "http://x",
            Duration::from_secs(60),
            Duration::ZERO,
        ))
        .unwrap();
        let dc = body["device_code"].as_str().unwrap();
        assert!(s.decide(body["user_code"].as_str().unwrap(), false));
        assert_eq!(error(s.redeem_device_code(0, "app", dc)), "access_denied");

        let body: serde_json::Value = serde_json::from_str(&s.start(
            0,
            "app",
            SCOPE,
            "http://x",
            Duration::ZERO,
            Duration::ZERO,
        ))
        .unwrap();
        assert_eq!(
            error(s.redeem_device_code(0, "app", body["device_code"].as_str().unwrap())),
            "expired_token"
        );
    }

    #[test]
    fn rotation_reuse_and_revocation() {
        let s = DelegatedStore::default();
        let first = s.mint(0, "app", SCOPE);
        let mut current = first.clone();
        let mut seen = vec![first.clone()];
        for _ in 0..3 {
            let next = s
                .redeem_refresh_token(0, "app", &current)
                .unwrap()
                .refresh_token
                .unwrap();
            assert!(!seen.contains(&next));
            assert_eq!(s.status(&current), Some(RefreshStatus::Rotated));
            seen.push(next.clone());
            current = next;
        }
        // Reusing the first token is refused and revokes the whole family.
        assert_eq!(
            error(s.redeem_refresh_token(0, "app", &first)),
            "invalid_grant"
        );
        assert_eq!(s.status(&current), Some(RefreshStatus::Revoked));
        assert_eq!(
            error(s.redeem_refresh_token(0, "app", &current)),
            "invalid_grant"
        );

        let other = s.mint(0, "app", SCOPE);
        let unrelated = s.mint(1, "app", SCOPE);
        assert_eq!(s.revoke(0), 1);
        assert_eq!(
            error(s.redeem_refresh_token(0, "app", &other)),
            "invalid_grant"
        );
        assert!(
            s.redeem_refresh_token(1, "app", &unrelated).is_ok(),
            "other tenants keep theirs"
        );
        assert_eq!(
            error(s.redeem_refresh_token(0, "app", "simrt.never")),
            "invalid_grant"
        );
    }
}
