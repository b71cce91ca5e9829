//! Certificate credentials: the PEM file holding a certificate and its RSA private key,
//! checked to belong together, with the thumbprints Entra identifies it by
//! (graph-api.md §8.3). A leaf: config checks the file at start, graph signs client
//! assertions with it; it knows neither.
//!
//! Crypto is ring's (already the TLS provider); PEM decoding is rustls-pki-types'.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{self, RsaKeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

/// How a client assertion is signed (`assertion_algorithm`).
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

/// A certificate and its private key, ready to sign.
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
        let sig = self.sign(AssertionAlgorithm::Rs256, probe)?;
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

    /// The `x5t` thumbprint (standard base64 SHA-1 of the certificate DER).
    pub fn thumbprint_sha1(&self) -> &str {
        &self.x5t
    }

    /// Signs `msg` with the private key: RSA-PSS or PKCS#1 v1.5, SHA-256.
    pub fn sign(&self, alg: AssertionAlgorithm, msg: &[u8]) -> Result<Vec<u8>, String> {
        let padding: &dyn signature::RsaEncoding = match alg {
            AssertionAlgorithm::Ps256 => &signature::RSA_PSS_SHA256,
            AssertionAlgorithm::Rs256 => &signature::RSA_PKCS1_SHA256,
        };
        let mut sig = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(padding, &SystemRandom::new(), msg, &mut sig)
            .map_err(|_| "signing failed".to_owned())?;
        Ok(sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &[u8] = include_bytes!("../tests/fixtures/auth/app.pem");
    const APP_PKCS1: &[u8] = include_bytes!("../tests/fixtures/auth/app-pkcs1.pem");
    const OTHER: &[u8] = include_bytes!("../tests/fixtures/auth/other.pem");
    const EC: &[u8] = include_bytes!("../tests/fixtures/auth/ec.pem");

    #[test]
    fn pkcs8_and_pkcs1_keys_load_with_the_same_thumbprints() {
        let a = ClientCertificate::from_pem(APP).unwrap();
        let b = ClientCertificate::from_pem(APP_PKCS1).unwrap();
        assert_eq!(a.thumbprint_s256(), b.thumbprint_s256());
        assert_eq!(a.thumbprint_sha1(), b.thumbprint_sha1());
        assert_eq!(
            URL_SAFE_NO_PAD.decode(a.thumbprint_s256()).unwrap().len(),
            32
        );
        assert_eq!(STANDARD.decode(a.thumbprint_sha1()).unwrap().len(), 20);
        assert!(!format!("{a:?}").contains("PRIVATE"));
    }

    #[test]
    fn signatures_verify_with_the_certificate_key() {
        let c = ClientCertificate::from_pem(APP).unwrap();
        let cert = CertificateDer::from_pem_slice(APP).unwrap();
        let ee = webpki::EndEntityCert::try_from(&cert).unwrap();
        let msg = b"message";
        let pss = c.sign(AssertionAlgorithm::Ps256, msg).unwrap();
        let alg = webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY;
        ee.verify_signature(alg, msg, &pss).unwrap();
        assert!(ee.verify_signature(alg, b"massage", &pss).is_err());
        let pkcs1 = c.sign(AssertionAlgorithm::Rs256, msg).unwrap();
        let alg = webpki::ring::RSA_PKCS1_2048_8192_SHA256;
        ee.verify_signature(alg, msg, &pkcs1).unwrap();
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
