//! `--web.config.file` end to end against the real binary: TLS with a test CA, client
//! certificates required and verified, basic auth (right, wrong, missing), gzip, and a
//! SIGHUP reload that changes the config without dropping the listener.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate and its key, PEM.
struct Pem {
    cert: String,
    key: String,
}

/// A CA and what it signs.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let pem = params.self_signed(&key).unwrap().pem();
        Self {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    fn sign(&self, names: &[&str], client: bool) -> Pem {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.extended_key_usages = vec![if client {
            rcgen::ExtendedKeyUsagePurpose::ClientAuth
        } else {
            rcgen::ExtendedKeyUsagePurpose::ServerAuth
        }];
        Pem {
            cert: params.signed_by(&key, &self.issuer).unwrap().pem(),
            key: key.serialize_pem(),
        }
    }
}

/// A fresh HTTPS client (one new connection per client) trusting `ca`, presenting
/// `identity` if given.
fn tls_client(ca: &str, identity: Option<&Pem>) -> reqwest::Client {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity {
        Some(id) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(id.cert.as_bytes())
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_slice(id.key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .timeout(Duration::from_secs(20))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

async fn status(
    client: &reqwest::Client,
    url: &str,
    auth: Option<(&str, &str)>,
) -> Result<u16, String> {
    let mut req = client.get(url);
    if let Some((u, p)) = auth {
        req = req.basic_auth(u, Some(p));
    }
    req.send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| entra_mfa_exporter::util::error_chain(&e))
}

fn bcrypt_hash(password: &str) -> String {
    // Cost 4: the minimum, so tests stay fast; $2y$ as htpasswd writes it.
    bcrypt::hash_with_salt(password, 4, *b"salt-for-tests!!")
        .unwrap()
        .format_for_version(bcrypt::Version::TwoY)
}

fn web_yml(password: &str, min_version: &str) -> String {
    format!(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  min_version: {min_version}\n\
         http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n\
         basic_auth_users:\n  alice: '{}'\n",
        bcrypt_hash(password)
    )
}

/// Sends SIGHUP and waits for the exporter to log `expect`.
async fn hup(exporter: &Exporter, expect: &str) {
    let seen = exporter.stderr().matches(expect).count();
    std::process::Command::new("kill")
        .args(["-HUP", &exporter.child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while exporter.stderr().matches(expect).count() == seen {
        assert!(
            Instant::now() < deadline,
            "no `{expect}` after SIGHUP:\n{}",
            exporter.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_client_certs_basic_auth_and_reload() {
    tokio::time::timeout(WAIT * 2, async {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("test clients and server CA");
        let server = ca.sign(&["localhost", "127.0.0.1"], false);
        let client = ca.sign(&["prometheus"], true);
        let rogue = Ca::new("someone else").sign(&["prometheus"], true);
        std::fs::write(dir.path().join("server.crt"), &server.cert).unwrap();
        std::fs::write(dir.path().join("server.key"), &server.key).unwrap();
        std::fs::write(dir.path().join("ca.crt"), &ca.pem).unwrap();
        let web = dir.path().join("web.yml");
        std::fs::write(&web, web_yml("pw-one", "TLS12")).unwrap();

        let exporter = Exporter::start(&["--demo", "--web.config.file", web.to_str().unwrap()], &[]);
        assert!(exporter.stderr().contains("tls=true"), "{}", exporter.stderr());
        let url = format!("https://{}/metrics", exporter.addr);
        let good = || tls_client(&ca.pem, Some(&client));

        // The right certificate and password.
        let resp = good()
            .get(&url)
            .basic_auth("alice", Some("pw-one"))
            .header("Accept-Encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-encoding"], "gzip");
        assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
        let gz = resp.bytes().await.unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut text).unwrap();
        assert!(text.contains("entra_exporter_build_info") && text.ends_with("# EOF\n"), "{text}");

        // Basic auth: wrong and missing.
        let resp = good().get(&url).basic_auth("alice", Some("nope")).send().await.unwrap();
        assert_eq!(resp.status(), 401);
        assert!(resp.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic "));
        assert_eq!(status(&good(), &url, None).await, Ok(401));
        assert_eq!(status(&good(), &url, Some(("mallory", "pw-one"))).await, Ok(401));
        assert_eq!(
            status(&good(), &format!("https://{}/-/healthy", exporter.addr), None).await,
            Ok(401),
            "every path is protected"
        );

        // Client certificates: none, or from another CA, fail the handshake.
        let none = status(&tls_client(&ca.pem, None), &url, Some(("alice", "pw-one"))).await;
        assert!(none.is_err(), "no client certificate: {none:?}");
        let other = status(&tls_client(&ca.pem, Some(&rogue)), &url, Some(("alice", "pw-one"))).await;
        assert!(other.is_err(), "untrusted client certificate: {other:?}");
        // Plain HTTP to the TLS port gets nowhere.
        let plain = status(&http(), &format!("http://{}/metrics", exporter.addr), None).await;
        assert!(!matches!(plain, Ok(200)), "{plain:?}");

        // SIGHUP: a new password and TLS 1.3 only, on the same listener.
        std::fs::write(&web, web_yml("pw-two", "TLS13")).unwrap();
        hup(&exporter, "web config reloaded").await;
        assert_eq!(status(&good(), &url, Some(("alice", "pw-two"))).await, Ok(200));
        assert_eq!(status(&good(), &url, Some(("alice", "pw-one"))).await, Ok(401));

        // A broken file is refused and the previous config stays.
        std::fs::write(&web, "tls_server_config:\n  min_version: TLS11\n  cert_file: server.crt\n  key_file: server.key\n").unwrap();
        hup(&exporter, "web config reload failed").await;
        assert!(exporter.stderr().contains("tls_server_config.min_version"), "{}", exporter.stderr());
        assert_eq!(status(&good(), &url, Some(("alice", "pw-two"))).await, Ok(200));

        // An empty file turns TLS and auth off, still on the same listener.
        std::fs::write(&web, "").unwrap();
        hup(&exporter, "web config reloaded").await;
        assert_eq!(status(&http(), &format!("http://{}/metrics", exporter.addr), None).await, Ok(200));
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_web_config_stops_the_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(&web, "basic_auth_users:\n  alice: pl41ntext-pw\n").unwrap();
    let out = run_binary(vec![
        "--demo".into(),
        "--web.listen-address".into(),
        "127.0.0.1:0".into(),
        "--web.config.file".into(),
        web.display().to_string(),
    ])
    .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("basic_auth_users.alice") && stderr.contains("bcrypt"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("pl41ntext-pw"),
        "the configured value is not echoed: {stderr}"
    );
}
