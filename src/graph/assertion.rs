//! Certificate credentials: the PEM file (certificate + RSA private key) and the signed
//! client-assertion JWT sent instead of a client secret (graph-api.md §8.3).
//!
//! The assertion is signed anew for every token request, with a fresh `jti` and a
//! five-minute `exp`, so a captured assertion is useless soon after and never replayed.
//! Crypto is ring's (already the TLS provider); PEM decoding is rustls-pki-types'.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{self, RsaKeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

/// Lifetime of a client assertion, as the Azure SDKs use (§8.3).
const ASSERTION_LIFETIME_SECS: u64 = 300;

/// How the client assertion is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum AssertionAlgorithm {
    /// RSA-PSS with SHA-256 and an `x5t#S256` header: what current Entra docs specify.
    #[default]
    #[serde(rename = "PS256", alias = "ps256")]
    Ps256,
    /// RSA PKCS#1 v1.5 with SHA-256 and an `x5t` (SHA-1) header: long-standing, for
    /// tenants or proxies that predate PS256.
    #[serde(rename = "RS256", alias = "rs256")]
    Rs256,
}

/// A certificate and its private key, ready to sign assertions.
pub struct ClientCertificate {
    key: RsaKeyPair,
    /// base64url(SHA-256(cert DER)): the `x5t#S256` header.
    x5t_s256: String,
    /// base64(SHA-1(cert DER)): the `x5t` header, standard alphabet as the Azure SDKs send.
    x5t: String,
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("x5t#S256", &self.x5t_s256)
            .finish_non_exhaustive()
    }
}

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

impl ClientCertificate {
    /// Reads a PEM file holding the certificate (first `CERTIFICATE` block: the leaf) and
    /// its RSA private key (PKCS#8 or PKCS#1). The error names the problem, never key bytes.
    pub fn load(path: &Path) -> Result<Self, String> {
        let pem =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// [`load`](Self::load) from bytes.
    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let cert = CertificateDer::from_pem_slice(pem)
            .map_err(|e| format!("no PEM CERTIFICATE block found ({e})"))?;
        let key = PrivateKeyDer::from_pem_slice(pem)
            .map_err(|e| format!("no PEM private key block found ({e})"))?;
        let key = match &key {
            PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
            _ => {
                return Err(
                    "the private key is not RSA: Entra client assertions need an RSA key".into(),
                );
            }
        }
        .map_err(|e| {
            format!(
                "the private key is not a usable RSA key ({e}); Entra needs RSA 2048 bits or more"
            )
        })?;
        let this = Self {
            x5t_s256: URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, &cert)),
            x5t: STANDARD.encode(ring::digest::digest(
                &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
                &cert,
            )),
            key,
        };
        this.check_matches(&cert)?;
        Ok(this)
    }

    /// Signs a probe and verifies it with the certificate's public key, so a file whose
    /// key belongs to another certificate fails at start instead of at Entra (AADSTS700027).
    fn check_matches(&self, cert: &CertificateDer<'_>) -> Result<(), String> {
        let parsed = webpki::EndEntityCert::try_from(cert)
            .map_err(|e| format!("the certificate cannot be parsed ({e:?})"))?;
        let probe = b"entra-mfa-exporter key check";
        let sig = self.sign_bytes(AssertionAlgorithm::Rs256, probe)?;
        parsed
            .verify_signature(webpki::ring::RSA_PKCS1_2048_8192_SHA256, probe, &sig)
            .map_err(|_| {
                "the private key does not belong to the certificate in the same file".into()
            })
    }

    /// The `x5t#S256` thumbprint (base64url SHA-256 of the certificate DER).
    pub fn thumbprint_s256(&self) -> &str {
        &self.x5t_s256
    }

    fn sign_bytes(&self, alg: AssertionAlgorithm, msg: &[u8]) -> Result<Vec<u8>, String> {
        let padding: &dyn signature::RsaEncoding = match alg {
            AssertionAlgorithm::Ps256 => &signature::RSA_PSS_SHA256,
            AssertionAlgorithm::Rs256 => &signature::RSA_PKCS1_SHA256,
        };
        let mut sig = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(padding, &SystemRandom::new(), msg, &mut sig)
            .map_err(|_| "signing the client assertion failed".to_owned())?;
        Ok(sig)
    }

    /// A client-assertion JWT for `client_id` addressed to `token_url` (the `aud`).
    pub fn assertion(
        &self,
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
                x5t_s256: Some(&self.x5t_s256),
                x5t: None,
            },
            AssertionAlgorithm::Rs256 => Header {
                alg: "RS256",
                typ: "JWT",
                x5t_s256: None,
                x5t: Some(&self.x5t),
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
        let sig = self.sign_bytes(alg, signing_input.as_bytes())?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &[u8] = include_bytes!("../../tests/fixtures/auth/app.pem");
    const APP_PKCS1: &[u8] = include_bytes!("../../tests/fixtures/auth/app-pkcs1.pem");
    const OTHER: &[u8] = include_bytes!("../../tests/fixtures/auth/other.pem");
    const EC: &[u8] = include_bytes!("../../tests/fixtures/auth/ec.pem");

    fn part(jwt: &str, i: usize) -> serde_json::Value {
        let seg = jwt.split('.').nth(i).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(seg).unwrap()).unwrap()
    }

    #[test]
    fn ps256_assertion_has_the_documented_shape_and_verifies() {
        let c = ClientCertificate::from_pem(APP).unwrap();
        let aud = "https://login.microsoftonline.com/contoso/oauth2/v2.0/token";
        let jwt = c.assertion(AssertionAlgorithm::Ps256, "cid", aud).unwrap();
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
        let again = c.assertion(AssertionAlgorithm::Ps256, "cid", aud).unwrap();
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
        let jwt = c
            .assertion(
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

    #[test]
    fn bad_files_are_explained() {
        let other_key = String::from_utf8_lossy(OTHER);
        let app_cert = String::from_utf8_lossy(APP);
        let mixed = format!(
            "{}{}",
            &app_cert[..app_cert.find("-----BEGIN PRIVATE KEY").unwrap()],
            &other_key[other_key.find("-----BEGIN PRIVATE KEY").unwrap()..]
        );
        let e = ClientCertificate::from_pem(mixed.as_bytes()).unwrap_err();
        assert!(e.contains("does not belong"), "{e}");
        let e = ClientCertificate::from_pem(EC).unwrap_err();
        assert!(e.contains("not a usable RSA key"), "{e}");
        let cert_only = &app_cert[..app_cert.find("-----BEGIN PRIVATE KEY").unwrap()];
        assert!(
            ClientCertificate::from_pem(cert_only.as_bytes())
                .unwrap_err()
                .contains("private key")
        );
        assert!(
            ClientCertificate::from_pem(b"junk")
                .unwrap_err()
                .contains("CERTIFICATE")
        );
        let e = ClientCertificate::load(Path::new("/nonexistent/app.pem")).unwrap_err();
        assert!(e.contains("/nonexistent/app.pem"), "{e}");
    }
}
