//! Every way of authenticating, against the simulator over loopback: certificate
//! assertions (PS256 and RS256), workload identity (with token-file rotation), managed
//! identity (IMDS and App Service), a sovereign cloud's scope; and proof that the
//! simulator really verifies assertion signatures (tampered, expired, replayed and
//! unregistered assertions are refused).

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use entra_mfa_exporter::app::Exporter;
use entra_mfa_exporter::certificate::{AssertionAlgorithm, ClientCertificate};
use entra_mfa_exporter::config::Config;
use entra_mfa_exporter::graph::RetryPolicy;
use entra_mfa_exporter::graph::assertion;
use entra_mfa_exporter::simulate::{
    APP_SERVICE_IDENTITY_PATH, IMDS_PATH, SimConfig, SimReport, SimServer,
};

const SUBJECT: &str = "system:serviceaccount:monitoring:entra-mfa-exporter";
const UAMI: &str = "99999999-8888-7777-6666-555555555555";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/auth")
        .join(name)
}

fn registered_cert() -> String {
    std::fs::read_to_string(fixture("app.crt")).unwrap()
}

/// A simulator whose tenant trusts the fixture certificate, a federated subject and a
/// user-assigned identity.
async fn sim(configure: impl FnOnce(&mut SimConfig)) -> SimServer {
    start_sim(300, 5, |c| {
        let t = &mut c.tenants[0];
        t.certificate_pem = Some(registered_cert());
        t.federated_subject = Some(SUBJECT.into());
        t.managed_identity = Some(UAMI.into());
        configure(c);
    })
    .await
}

/// One tenant `t1` pointed at `sim`, authenticating with `credential` (TOML lines).
fn toml(sim: &SimServer, credential: &str) -> String {
    let url = sim.base_url();
    format!(
        "[[tenants]]\nname = \"t1\"\ntenant_id = \"{TENANT_ID}\"\nclient_id = \"{CLIENT_ID}\"\n\
         graph_url = \"{url}\"\nlogin_url = \"{url}\"\npage_size = 100\n{credential}\n"
    )
}

fn exporter(text: &str) -> Exporter {
    let config = Config::from_toml(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    Exporter::new(
        &config,
        RetryPolicy {
            base_delay: Duration::from_millis(20),
            ..RetryPolicy::default()
        },
    )
}

/// Collects once and checks the registration series against the simulator's truth.
async fn collects_truth(e: &Exporter, sim: &SimServer) {
    let failures = e.collect_once().await;
    assert!(failures.is_empty(), "{failures:?}");
    let series = parse_exposition(&e.classic_text());
    let expected = expected_series("t1", &truth(sim, SimReport::UserRegistrationDetails), true);
    assert_series_eq(&only(&series, USER_FAMILIES), &expected);
}

/// `--once` with `envs` set on the child only (never on the test process); AZURE_* and
/// IDENTITY_* of the calling environment are removed so they cannot leak in.
async fn once_with_env(
    args: Vec<String>,
    envs: Vec<(&'static str, String)>,
) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(binary());
        cmd.args(args).env_remove("RUST_LOG");
        for (k, _) in std::env::vars() {
            if k.starts_with("AZURE_")
                || k.starts_with("IDENTITY_")
                || k.starts_with("ENTRA_EXPORTER_")
            {
                cmd.env_remove(k);
            }
        }
        cmd.envs(envs).output().unwrap()
    })
    .await
    .unwrap()
}

fn assert_up(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let series = parse_exposition(&String::from_utf8_lossy(&out.stdout));
    let up = series
        .iter()
        .filter(|((name, labels), _)| {
            name == "entra_exporter_report_up" && labels["tenant"] == "default"
        })
        .map(|(_, v)| *v)
        .collect::<Vec<_>>();
    assert_eq!(up, vec![1.0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_assertions_ps256_and_rs256_get_tokens() {
    tokio::time::timeout(WAIT, async {
        let sim = sim(|_| {}).await;
        let pem = fixture("app.pem").display().to_string();
        collects_truth(
            &exporter(&toml(&sim, &format!("certificate_file = {pem:?}"))),
            &sim,
        )
        .await;
        let pkcs1 = fixture("app-pkcs1.pem").display().to_string();
        let rs256 = format!("certificate_file = {pkcs1:?}\nassertion_algorithm = \"RS256\"");
        collects_truth(&exporter(&toml(&sim, &rs256)), &sim).await;
        assert_eq!(sim.counters().token_requests, 2);

        // A certificate the app does not have registered is refused by the simulator.
        let other = fixture("other.pem").display().to_string();
        let e = exporter(&toml(&sim, &format!("certificate_file = {other:?}")));
        let failures = e.collect_once().await;
        assert_eq!(failures.len(), 1);
        assert!(failures[0].2.contains("AADSTS700027"), "{}", failures[0].2);
        sim.shutdown().await;
    })
    .await
    .unwrap();
}

/// Signs `claims` with the fixture key like a client would, PS256 with `x5t#S256`.
fn sign(claims: &serde_json::Value) -> String {
    let pem = std::fs::read(fixture("app.pem")).unwrap();
    use rustls_pki_types::pem::PemObject;
    let cert = rustls_pki_types::CertificateDer::from_pem_slice(&pem).unwrap();
    let key = rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(&pem).unwrap();
    let key = ring::signature::RsaKeyPair::from_pkcs8(key.secret_pkcs8_der()).unwrap();
    let thumb = URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, &cert));
    let header = serde_json::json!({"alg": "PS256", "typ": "JWT", "x5t#S256": thumb});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut sig = vec![0; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PSS_SHA256,
        &ring::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// POSTs `assertion` to the simulator's token endpoint: (status, AADSTS code).
async fn redeem(sim: &SimServer, assertion: &str) -> (u16, u64) {
    let resp = http()
        .post(format!("{}/{TENANT_ID}/oauth2/v2.0/token", sim.base_url()))
        .form(&[
            ("client_id", CLIENT_ID),
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ])
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    (status, body["error_codes"][0].as_u64().unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_refuses_tampered_expired_replayed_and_foreign_assertions() {
    tokio::time::timeout(WAIT, async {
        let sim = sim(|_| {}).await;
        let aud = format!("{}/{TENANT_ID}/oauth2/v2.0/token", sim.base_url());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let claims = |exp: i64, jti: &str| {
            serde_json::json!({"aud": aud, "iss": CLIENT_ID, "sub": CLIENT_ID,
                               "jti": jti, "nbf": now - 10, "exp": exp})
        };

        // The exporter's own assertion is good once; its replay is refused.
        let cert = ClientCertificate::load(&fixture("app.pem")).unwrap();
        let good = assertion::sign(&cert, AssertionAlgorithm::Ps256, CLIENT_ID, &aud).unwrap();
        assert_eq!(redeem(&sim, &good).await, (200, 0));
        assert_eq!(redeem(&sim, &good).await, (401, 50_012), "replayed jti");
        assert_eq!(redeem(&sim, &sign(&claims(now + 300, "a"))).await, (200, 0));

        // Tampered: claims changed after signing (a longer exp), signature kept.
        let signed = sign(&claims(now + 300, "b"));
        let parts: Vec<&str> = signed.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(claims(now + 86_400, "b").to_string());
        let tampered = format!("{}.{forged}.{}", parts[0], parts[2]);
        assert_eq!(
            redeem(&sim, &tampered).await,
            (401, 700_027),
            "tampered claims"
        );
        // Tampered: one bit of the signature flipped.
        let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        sig[10] ^= 0x01;
        let flipped = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(sig));
        assert_eq!(
            redeem(&sim, &flipped).await,
            (401, 700_027),
            "flipped signature"
        );
        // Expired, though correctly signed.
        assert_eq!(
            redeem(&sim, &sign(&claims(now - 5, "c"))).await,
            (401, 700_024),
            "expired"
        );
        // Correctly signed but for another token endpoint.
        let mut wrong_aud = claims(now + 300, "d");
        wrong_aud["aud"] = "https://login.microsoftonline.com/x/oauth2/v2.0/token".into();
        assert_eq!(
            redeem(&sim, &sign(&wrong_aud)).await,
            (401, 50_012),
            "audience"
        );
        // Signed by a certificate the app does not have: thumbprint unknown.
        let other = ClientCertificate::load(&fixture("other.pem")).unwrap();
        let foreign = assertion::sign(&other, AssertionAlgorithm::Ps256, CLIENT_ID, &aud).unwrap();
        assert_eq!(
            redeem(&sim, &foreign).await,
            (401, 700_027),
            "unregistered cert"
        );
        // A federated token is not a certificate assertion for another subject.
        let stranger = sim.federated_token("system:serviceaccount:other:app", 600);
        assert_eq!(redeem(&sim, &stranger).await, (401, 70_021));
        sim.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_identity_rereads_the_rotated_token_file() {
    tokio::time::timeout(WAIT, async {
        // 2 s access tokens: each collection below needs a new one.
        let sim = sim(|c| c.token_lifetime = Duration::from_secs(2)).await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("azure-identity-token");
        std::fs::write(&file, sim.federated_token(SUBJECT, 600)).unwrap();
        let e = exporter(&toml(
            &sim,
            &format!(
                "auth = \"workload_identity\"\nfederated_token_file = {:?}",
                file.display().to_string()
            ),
        ));
        collects_truth(&e, &sim).await;

        // The kubelet rotates the file; an expired token in it must be what is sent next.
        tokio::time::sleep(Duration::from_millis(2_100)).await;
        std::fs::write(&file, sim.federated_token(SUBJECT, -60)).unwrap();
        let failures = e.collect_once().await;
        assert_eq!(failures.len(), 1, "the expired file content was used");
        assert!(failures[0].2.contains("AADSTS700024"), "{}", failures[0].2);
        std::fs::write(&file, sim.federated_token(SUBJECT, 600)).unwrap();
        collects_truth(&e, &sim).await;
        sim.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_azure_variables_alone_run_certificate_and_workload_identity() {
    tokio::time::timeout(WAIT, async {
        let sim = sim(|_| {}).await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, sim.federated_token(SUBJECT, 600)).unwrap();
        let url = sim.base_url();
        let base = || {
            vec![
                ("AZURE_TENANT_ID", TENANT_ID.to_owned()),
                ("AZURE_CLIENT_ID", CLIENT_ID.to_owned()),
                ("ENTRA_EXPORTER_GRAPH_URL", url.clone()),
            ]
        };
        // Workload identity as the webhook injects it: authority host with a trailing slash.
        let mut wi = base();
        wi.push(("AZURE_FEDERATED_TOKEN_FILE", file.display().to_string()));
        wi.push(("AZURE_AUTHORITY_HOST", format!("{url}/")));
        // At trace level, the HTTP stack's included, nothing of the federated token
        // reaches the logs or the output.
        wi.push(("RUST_LOG", "trace".into()));
        let out = once_with_env(vec!["--once".into()], wi).await;
        assert_up(&out);
        let token = std::fs::read_to_string(&file).unwrap();
        let signature = token.rsplit('.').next().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("level=trace"), "trace logs on: {stderr}");
        for stream in [&out.stdout, &out.stderr] {
            assert!(
                !String::from_utf8_lossy(stream).contains(signature),
                "token leaked"
            );
        }
        // Certificate from AZURE_CLIENT_CERTIFICATE_PATH.
        let mut cert = base();
        cert.push((
            "AZURE_CLIENT_CERTIFICATE_PATH",
            fixture("app.pem").display().to_string(),
        ));
        cert.push(("ENTRA_EXPORTER_LOGIN_URL", url.clone()));
        assert_up(&once_with_env(vec!["--once".into()], cert).await);
        assert_eq!(sim.counters().token_requests, 2);
        sim.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_identity_via_imds_system_and_user_assigned() {
    tokio::time::timeout(WAIT, async {
        let sim = sim(|c| c.system_identity_tenant = Some(TENANT_ID.into())).await;
        let endpoint = format!("{}{IMDS_PATH}", sim.base_url());
        let mi = |client: &str| {
            let url = sim.base_url();
            format!(
                "[[tenants]]\nname = \"t1\"\nauth = \"managed_identity\"\n{client}\
                 managed_identity_endpoint = \"{endpoint}\"\ngraph_url = \"{url}\"\npage_size = 100\n"
            )
        };
        collects_truth(&exporter(&mi("")), &sim).await;
        collects_truth(&exporter(&mi(&format!("client_id = \"{UAMI}\"\n"))), &sim).await;
        let e = exporter(&mi("client_id = \"not-assigned-here\"\n"));
        let failures = e.collect_once().await;
        assert!(failures[0].2.contains("Identity not found"), "{}", failures[0].2);
        let imds: Vec<_> = sim
            .requests()
            .into_iter()
            .filter(|r| r.path_and_query.starts_with(IMDS_PATH))
            .collect();
        assert_eq!(imds.len(), 3);
        assert!(imds.iter().all(|r| r.path_and_query.contains("resource=https%3A%2F%2Fgraph.microsoft.com")
            && r.path_and_query.contains("api-version=2018-02-01")));
        sim.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_identity_via_app_service_identity_endpoint() {
    tokio::time::timeout(WAIT, async {
        // A unique value, so that finding it anywhere in the output means a leak.
        const HEADER: &str = "identity-header-sentinel-5f2c8e91";
        let sim = sim(|c| c.identity_header = HEADER.into()).await;
        let url = sim.base_url();
        let text = format!(
            "[[tenants]]\nname = \"t1\"\nauth = \"managed_identity\"\nclient_id = \"{UAMI}\"\n\
             graph_url = \"{url}\"\npage_size = 100\n"
        );
        let (_dir, path) = config_file(&text);
        let env = |header: &str| {
            vec![
                (
                    "IDENTITY_ENDPOINT",
                    format!("{url}{APP_SERVICE_IDENTITY_PATH}"),
                ),
                ("IDENTITY_HEADER", header.to_owned()),
            ]
        };
        // At trace level, the HTTP stack's included, the header's value reaches
        // neither the logs nor the output.
        let mut traced = env(HEADER);
        traced.push(("RUST_LOG", "trace".into()));
        let out = once_with_env(once_args(&path), traced).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "stderr: {stderr}");
        assert!(stderr.contains("level=trace"), "trace logs on: {stderr}");
        for stream in [&out.stdout, &out.stderr] {
            assert!(
                !String::from_utf8_lossy(stream).contains(HEADER),
                "identity header leaked"
            );
        }
        let series = parse_exposition(&String::from_utf8(out.stdout).unwrap());
        let expected =
            expected_series("t1", &truth(&sim, SimReport::UserRegistrationDetails), true);
        assert_series_eq(&only(&series, USER_FAMILIES), &expected);
        let out = once_with_env(once_args(&path), env("wrong")).await;
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("unknown_source") && !stderr.contains("wrong"),
            "{stderr}"
        );
        sim.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sovereign_cloud_scope_is_sent() {
    tokio::time::timeout(WAIT, async {
        let sim = sim(|c| c.system_identity_tenant = Some(TENANT_ID.into())).await;
        let url = sim.base_url();
        // cloud = usgov with the hosts overridden to the simulator: the scope and the
        // managed-identity resource stay those of US Gov.
        let text = format!(
            "[[tenants]]\nname = \"t1\"\nauth = \"managed_identity\"\ncloud = \"usgov\"\n\
             managed_identity_endpoint = \"{url}{IMDS_PATH}\"\ngraph_url = \"{url}\"\n"
        );
        collects_truth(&exporter(&text), &sim).await;
        assert!(sim.requests().iter().any(|r| {
            r.path_and_query
                .contains("resource=https%3A%2F%2Fgraph.microsoft.us")
        }));
        // The token endpoint gets the cloud's `.default` scope form field, with a secret
        // and with a certificate assertion.
        let pem = fixture("app.pem");
        for (cloud, scope) in [
            ("usgov", "https://graph.microsoft.us/.default"),
            ("china", "https://microsoftgraph.chinacloudapi.cn/.default"),
        ] {
            for credential in [
                format!("client_secret = \"{SECRET}\""),
                format!("certificate_file = {pem:?}"),
            ] {
                let before = sim.requests().len();
                let text = toml(&sim, &format!("{credential}\ncloud = \"{cloud}\""));
                collects_truth(&exporter(&text), &sim).await;
                let scopes: Vec<_> = sim.requests()[before..]
                    .iter()
                    .filter(|r| r.method == "POST")
                    .map(|r| r.scope.clone())
                    .collect();
                assert_eq!(
                    scopes,
                    vec![Some(scope.to_owned())],
                    "{cloud}: {credential}"
                );
            }
        }
        sim.shutdown().await;
    })
    .await
    .unwrap();
}
