//! The signed client-assertion JWT sent instead of a client secret (graph-api.md §8.3),
//! made with a [`ClientCertificate`] from the certificate leaf.
//!
//! The assertion is signed anew for every token request, with a fresh `jti` and a
//! five-minute `exp`, so a captured assertion is useless soon after and never replayed.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use crate::certificate::{AssertionAlgorithm, ClientCertificate};

/// Lifetime of a client assertion, as the Azure SDKs use (§8.3).
const ASSERTION_LIFETIME_SECS: u64 = 300;

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    typ: &'static str,
    #[serde(rename = "x5t#S256", skip_serializing_if = "Option::is_none")]
    x5t_s256: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x5t: Option<&'a str>,
}

#[derive(Serialize)]
struct Claims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    nbf: u64,
    iat: u64,
    exp: u64,
}

/// A client-assertion JWT for `client_id` addressed to `token_url` (the `aud`).
pub fn sign(
    cert: &ClientCertificate,
    alg: AssertionAlgorithm,
    client_id: &str,
    token_url: &str,
) -> Result<String, String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let header = match alg {
        AssertionAlgorithm::Ps256 => Header {
            alg: "PS256",
            typ: "JWT",
            x5t_s256: Some(cert.thumbprint_s256()),
            x5t: None,
        },
        AssertionAlgorithm::Rs256 => Header {
            alg: "RS256",
            typ: "JWT",
            x5t_s256: None,
            x5t: Some(cert.thumbprint_sha1()),
        },
    };
    let claims = Claims {
        aud: token_url,
        iss: client_id,
        sub: client_id,
        jti: crate::util::guid(),
        nbf: now,
        iat: now,
        exp: now + ASSERTION_LIFETIME_SECS,
    };
    // Structs of strings and integers: serialisation cannot fail.
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap_or_default()),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap_or_default())
    );
    let sig = cert
        .sign(alg, signing_input.as_bytes())
        .map_err(|_| "signing the client assertion failed".to_owned())?;
    Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    use super::*;

    const APP: &[u8] = include_bytes!("../../tests/fixtures/auth/app.pem");
    const APP_PKCS1: &[u8] = include_bytes!("../../tests/fixtures/auth/app-pkcs1.pem");

    fn part(jwt: &str, i: usize) -> serde_json::Value {
        let seg = jwt.split('.').nth(i).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(seg).unwrap()).unwrap()
    }

    #[test]
    fn ps256_assertion_has_the_documented_shape_and_verifies() {
        let c = ClientCertificate::from_pem(APP).unwrap();
        let aud = "https://login.microsoftonline.com/contoso/oauth2/v2.0/token";
        let jwt = sign(&c, AssertionAlgorithm::Ps256, "cid", aud).unwrap();
        let h = part(&jwt, 0);
        assert_eq!(h["alg"], "PS256");
        assert_eq!(h["typ"], "JWT");
        assert_eq!(h["x5t#S256"], c.thumbprint_s256());
        assert!(h.get("x5t").is_none());
        let p = part(&jwt, 1);
        assert_eq!(
            (p["aud"].as_str(), p["iss"].as_str(), p["sub"].as_str()),
            (Some(aud), Some("cid"), Some("cid"))
        );
        assert_eq!(p["exp"].as_u64().unwrap() - p["nbf"].as_u64().unwrap(), 300);
        let again = sign(&c, AssertionAlgorithm::Ps256, "cid", aud).unwrap();
        assert_ne!(
            part(&again, 1)["jti"],
            p["jti"],
            "a fresh jti per assertion"
        );

        let cert = CertificateDer::from_pem_slice(APP).unwrap();
        let ee = webpki::EndEntityCert::try_from(&cert).unwrap();
        let (input, sig) = jwt.rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        ee.verify_signature(
            webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
            input.as_bytes(),
            &sig,
        )
        .unwrap();
        let mut tampered = input.as_bytes().to_vec();
        tampered[5] ^= 1;
        assert!(
            ee.verify_signature(
                webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
                &tampered,
                &sig
            )
            .is_err()
        );
    }

    #[test]
    fn rs256_uses_sha1_x5t_and_pkcs1_keys_load() {
        let c = ClientCertificate::from_pem(APP_PKCS1).unwrap();
        let jwt = sign(
            &c,
            AssertionAlgorithm::Rs256,
            "cid",
            "https://x/t/oauth2/v2.0/token",
        )
        .unwrap();
        let h = part(&jwt, 0);
        assert_eq!(h["alg"], "RS256");
        let x5t = STANDARD.decode(h["x5t"].as_str().unwrap()).unwrap();
        assert_eq!(x5t.len(), 20, "SHA-1 thumbprint");
        assert_eq!(
            c.thumbprint_s256(),
            ClientCertificate::from_pem(APP).unwrap().thumbprint_s256()
        );
    }
}
