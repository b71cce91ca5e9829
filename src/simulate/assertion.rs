//! Client assertions as the simulated STS checks them: certificate assertions are
//! verified against the certificate registered on the app (thumbprint, RSA signature,
//! audience, issuer, lifetime, `jti` replay), federated tokens against the simulated
//! Kubernetes issuer's key (signature, issuer, subject, audience, lifetime).
//!
//! Independent of the exporter (design.md, "Simulator"): the certificate is parsed with
//! rustls-webpki and signatures checked through it; nothing of `crate::graph` is used.

use std::collections::HashMap;
use std::sync::Mutex;

use ring::hmac;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::base64url;
use super::dates::now_unix;

/// The `iss` of federated tokens the simulator mints, as a cluster's OIDC issuer URL.
pub const FEDERATED_ISSUER: &str = "https://oidc.kubernetes.simulated.invalid/cluster";
/// The audience a federated credential expects by default (graph-api.md §9).
pub const FEDERATED_AUDIENCE: &str = "api://AzureADTokenExchange";
/// Clock skew tolerated on `nbf`.
const SKEW_SECS: i64 = 300;
/// Seen `jti`s kept (pruned of expired ones past this).
const MAX_JTIS: usize = 100_000;

/// Why an assertion was refused: AADSTS code and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) code: u32,
    pub(crate) text: String,
}

fn refuse(code: u32, text: impl Into<String>) -> Refusal {
    Refusal {
        code,
        text: text.into(),
    }
}

/// Keys and memory of the simulated STS.
pub(crate) struct Verifier {
    /// HMAC key of the simulated Kubernetes issuer; random per simulator.
    issuer_key: hmac::Key,
    /// `jti` ▸ `exp` of certificate assertions already redeemed.
    seen: Mutex<HashMap<String, i64>>,
}

impl Default for Verifier {
    fn default() -> Self {
        let mut key = [0u8; 32];
        for chunk in key.chunks_mut(8) {
            chunk.copy_from_slice(&super::rng::random_u64().to_le_bytes());
        }
        Self {
            issuer_key: hmac::Key::new(hmac::HMAC_SHA256, &key),
            seen: Mutex::new(HashMap::new()),
        }
    }
}

struct Jwt {
    header: serde_json::Value,
    claims: serde_json::Value,
    signing_input: String,
    signature: Vec<u8>,
}

fn split(assertion: &str) -> Result<Jwt, Refusal> {
    let bad = || refuse(700_027, "Client assertion is not a well-formed JWT.");
    let mut parts = assertion.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let json = |seg: &str| {
        base64url::decode_lenient(seg)
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    };
    Ok(Jwt {
        header: json(h).filter(|v| v.is_object()).ok_or_else(bad)?,
        claims: json(p).filter(|v| v.is_object()).ok_or_else(bad)?,
        signing_input: format!("{h}.{p}"),
        signature: base64url::decode_lenient(s).ok_or_else(bad)?,
    })
}

fn text<'a>(v: &'a serde_json::Value, key: &str) -> &'a str {
    v.get(key).and_then(|v| v.as_str()).unwrap_or("")
}

fn aud_is(claims: &serde_json::Value, expected: &str) -> bool {
    let eq = |v: &serde_json::Value| v.as_str().is_some_and(|s| s.eq_ignore_ascii_case(expected));
    match claims.get("aud") {
        Some(serde_json::Value::Array(a)) => a.iter().any(eq),
        Some(v) => eq(v),
        None => false,
    }
}

/// `exp` present and not passed, `nbf` (if any) not in the future beyond the skew.
fn check_lifetime(claims: &serde_json::Value, now: i64) -> Result<i64, Refusal> {
    let out_of_range = || {
        refuse(
            700_024,
            "Client assertion is not within its valid time range.",
        )
    };
    let exp = claims
        .get("exp")
        .and_then(|v| v.as_i64())
        .ok_or_else(out_of_range)?;
    if exp <= now {
        return Err(out_of_range());
    }
    if claims
        .get("nbf")
        .and_then(|v| v.as_i64())
        .is_some_and(|nbf| nbf > now + SKEW_SECS)
    {
        return Err(out_of_range());
    }
    Ok(exp)
}

/// Whether the assertion's header names a certificate (`x5t`, `x5t#S256`): a
/// certificate assertion rather than a federated token.
pub(crate) fn is_certificate_assertion(assertion: &str) -> bool {
    split(assertion)
        .map(|j| j.header.get("x5t").is_some() || j.header.get("x5t#S256").is_some())
        .unwrap_or(false)
}

impl Verifier {
    /// Checks a certificate assertion for the app `client_id`, whose registered
    /// certificate is `cert_pem`, sent to `token_url`.
    pub(crate) fn certificate(
        &self,
        assertion: &str,
        cert_pem: Option<&str>,
        client_id: &str,
        token_url: &str,
    ) -> Result<(), Refusal> {
        let jwt = split(assertion)?;
        let Some(cert_pem) = cert_pem else {
            return Err(refuse(
                700_027,
                format!(
                    "Client assertion contains an invalid signature. [Reason - The key was not found., Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'.]"
                ),
            ));
        };
        let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|_| refuse(500_011, "simulator: the registered certificate is not PEM"))?;
        let sha256 = ring::digest::digest(&ring::digest::SHA256, &cert);
        let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &cert);
        // x5t is sent in base64 by the Azure SDKs and base64url by others: decode either.
        let thumb_ok = match (
            jwt.header.get("x5t#S256").and_then(|v| v.as_str()),
            jwt.header.get("x5t").and_then(|v| v.as_str()),
        ) {
            (Some(t), _) => base64url::decode_lenient(t).as_deref() == Some(sha256.as_ref()),
            (None, Some(t)) => base64url::decode_lenient(t).as_deref() == Some(sha1.as_ref()),
            (None, None) => false,
        };
        if !thumb_ok {
            return Err(refuse(
                700_027,
                format!(
                    "Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '{}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'.]",
                    text(&jwt.header, "x5t#S256")
                ),
            ));
        }
        let alg = match text(&jwt.header, "alg") {
            "PS256" => webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
            "RS256" => webpki::ring::RSA_PKCS1_2048_8192_SHA256,
            other => {
                return Err(refuse(
                    700_027,
                    format!("Client assertion uses an unsupported algorithm '{other}'."),
                ));
            }
        };
        let parsed = webpki::EndEntityCert::try_from(&cert).map_err(|_| {
            refuse(
                500_011,
                "simulator: the registered certificate cannot be parsed",
            )
        })?;
        parsed
            .verify_signature(alg, jwt.signing_input.as_bytes(), &jwt.signature)
            .map_err(|_| {
                refuse(
                    700_027,
                    "Client assertion failed signature validation. [Reason - The provided signature value did not match the expected signature value.]",
                )
            })?;
        let claims = &jwt.claims;
        if !aud_is(claims, token_url) {
            return Err(refuse(
                50_012,
                format!(
                    "Client assertion audience claim does not match Realm issuer. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials . (expected aud '{token_url}')"
                ),
            ));
        }
        if text(claims, "iss") != client_id || text(claims, "sub") != client_id {
            return Err(refuse(
                50_012,
                "Client assertion iss and sub claims must both be the client_id.",
            ));
        }
        let exp = check_lifetime(claims, now_unix())?;
        let jti = text(claims, "jti");
        if jti.is_empty() {
            return Err(refuse(50_012, "Client assertion has no jti claim."));
        }
        let mut seen = self.seen.lock().expect("jti cache poisoned");
        if seen.len() > MAX_JTIS {
            let now = now_unix();
            seen.retain(|_, e| *e > now);
        }
        if seen.insert(jti.to_owned(), exp).is_some() {
            // Replay protection: the simulator's own strictness, so a client that reuses
            // an assertion is caught (the real STS's replay rules are not documented).
            return Err(refuse(
                50_012,
                format!("Client assertion with jti '{jti}' was already redeemed."),
            ));
        }
        Ok(())
    }

    /// Mints a federated token as a Kubernetes issuer would project into a pod:
    /// `sub` = `subject`, audience `api://AzureADTokenExchange`, valid for
    /// `lifetime_secs` (negative: already expired). HS256 with the simulator's key.
    pub(crate) fn mint_federated(&self, subject: &str, lifetime_secs: i64) -> String {
        let now = now_unix();
        let header = base64url::encode_url(br#"{"alg":"HS256","typ":"JWT","kid":"sim"}"#);
        let claims = serde_json::json!({
            "iss": FEDERATED_ISSUER,
            "sub": subject,
            "aud": [FEDERATED_AUDIENCE],
            "iat": now.min(now + lifetime_secs) - 1,
            "nbf": now.min(now + lifetime_secs) - 1,
            "exp": now + lifetime_secs,
            "jti": super::rng::random_guid(),
        });
        let input = format!(
            "{header}.{}",
            base64url::encode_url(claims.to_string().as_bytes())
        );
        let tag = hmac::sign(&self.issuer_key, input.as_bytes());
        format!("{input}.{}", base64url::encode_url(tag.as_ref()))
    }

    /// Checks a federated token against the app's federated credential (`subject`;
    /// issuer and audience are the simulator's).
    pub(crate) fn federated(&self, assertion: &str, subject: Option<&str>) -> Result<(), Refusal> {
        let jwt = split(assertion)?;
        hmac::verify(&self.issuer_key, jwt.signing_input.as_bytes(), &jwt.signature).map_err(
            |_| {
                refuse(
                    700_027,
                    "Client assertion failed signature validation. [Reason - The key used to sign the federated token was not found at the issuer's JWKS.]",
                )
            },
        )?;
        let claims = &jwt.claims;
        let Some(subject) = subject else {
            return Err(refuse(
                70_021,
                "No matching federated identity record found for presented assertion. The app has no federated credentials.",
            ));
        };
        if text(claims, "iss") != FEDERATED_ISSUER
            || text(claims, "sub") != subject
            || !aud_is(claims, FEDERATED_AUDIENCE)
        {
            return Err(refuse(
                70_021,
                format!(
                    "No matching federated identity record found for presented assertion. Assertion Issuer: '{}'. Assertion Subject: '{}'. Assertion Audience: '{}'.",
                    text(claims, "iss"),
                    text(claims, "sub"),
                    claims.get("aud").map(|a| a.to_string()).unwrap_or_default()
                ),
            ));
        }
        check_lifetime(claims, now_unix()).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str = include_str!("../../tests/fixtures/auth/app.crt");

    #[test]
    fn federated_tokens_round_trip_and_fail_when_touched() {
        let v = Verifier::default();
        let t = v.mint_federated("system:serviceaccount:mon:exporter", 60);
        assert_eq!(
            v.federated(&t, Some("system:serviceaccount:mon:exporter")),
            Ok(())
        );
        assert_eq!(v.federated(&t, Some("other")).unwrap_err().code, 70_021);
        assert_eq!(v.federated(&t, None).unwrap_err().code, 70_021);
        let expired = v.mint_federated("s", -5);
        assert_eq!(v.federated(&expired, Some("s")).unwrap_err().code, 700_024);
        // Another simulator's issuer key: signature fails.
        let foreign = Verifier::default().mint_federated("s", 60);
        assert_eq!(v.federated(&foreign, Some("s")).unwrap_err().code, 700_027);
        assert!(!is_certificate_assertion(&t));
    }

    #[test]
    fn certificate_assertions_need_a_registered_cert_and_a_jwt() {
        let v = Verifier::default();
        assert_eq!(
            v.certificate("e30.e30.c2ln", Some(CERT), "app", "u")
                .unwrap_err()
                .code,
            700_027
        );
        assert_eq!(
            v.certificate("junk", Some(CERT), "app", "u")
                .unwrap_err()
                .code,
            700_027
        );
        assert_eq!(
            v.certificate("e30.e30.c2ln", None, "app", "u")
                .unwrap_err()
                .code,
            700_027
        );
    }
}
