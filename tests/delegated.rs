//! Delegated sign-in end to end through the binary (issue 15): `login` runs the
//! device-code flow while the test plays the user at the simulator; the exporter then
//! redeems the refresh token for the delegated-only reports, writes every rotated one
//! back (0600), and never shows a token; a reused old token and a revoked one fail only
//! the delegated reports, with a message to run `login` again.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use entra_mfa_exporter::simulate::{RefreshStatus, SimServer, SummaryBy};

const DELEGATED: &str = "users_registered_by_feature";
const SIGN_INS: &str = "user_sign_ins_by_auth_method_summary";

fn up(stdout: &str, report: &str) -> f64 {
    parse_exposition(stdout)[&key(
        "entra_exporter_report_up",
        &[("tenant", "t1"), ("report", report)],
    )]
}

fn login_valid(stdout: &str) -> f64 {
    parse_exposition(stdout)[&key("entra_exporter_delegated_login_valid", &[("tenant", "t1")])]
}

fn token_in(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap().trim().to_owned()
}

/// Waits (bounded) for `child` to exit; its status and stderr. Past the bound the child
/// is stopped by its PID.
fn wait_bounded(child: &mut std::process::Child) -> (std::process::ExitStatus, String) {
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            panic!("login did not finish");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status, stderr)
}

/// Starts `login` for `t1` with `config`, its stdout read line by line.
fn spawn_login(
    config: &std::path::Path,
) -> (
    std::process::Child,
    std::io::Lines<BufReader<std::process::ChildStdout>>,
) {
    let mut child = Command::new(binary())
        .args([
            "login",
            "--config.file",
            config.to_str().unwrap(),
            "--tenant",
            "t1",
        ])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

/// Runs `login` for `t1`, approving the code it prints; returns its stdout.
fn login(sim: &SimServer, config: &std::path::Path) -> String {
    let (mut child, mut lines) = spawn_login(config);
    let first = lines.next().expect("a line").unwrap();
    let code = first.rsplit(' ').next().unwrap().to_owned();
    assert!(first.contains("/devicelogin") && code.len() == 9, "{first}");
    // The user has not acted yet: the binary keeps polling (authorization_pending).
    std::thread::sleep(Duration::from_millis(1_500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "login gave up while pending"
    );
    assert!(sim.decide_device_code(&code, true));
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let (status, stderr) = wait_bounded(&mut child);
    assert!(status.success(), "login failed: {stderr}");
    format!("{first}\n{}\n{stderr}", rest.join("\n"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_then_rotation_reuse_and_revocation() {
    tokio::time::timeout(WAIT * 3, async {
        let sim = start_sim(400, 9, |c| c.device_code_interval = Duration::from_secs(1)).await;
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("t1.refresh-token");
        let text = config_toml(&sim, "user_registration_details", "").replace(
            "reports = [\"user_registration_details\"]",
            &format!("reports = [\"user_registration_details\", \"{DELEGATED}\", \"{SIGN_INS}\"]"),
        ) + &format!(
            "refresh_token_file = {:?}\n",
            token_file.display().to_string()
        );
        let (_cfg, path) = config_file(&text);

        // Before any sign-in the delegated report fails (no file) and names `login`; the
        // app-only one is unaffected.
        let out = run_binary(once_args(&path)).await;
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success());
        assert_eq!(
            (
                up(&stdout, "user_registration_details"),
                up(&stdout, DELEGATED)
            ),
            (1.0, 0.0)
        );
        assert!(stderr.contains("entra-mfa-exporter login"), "{stderr}");
        assert_eq!(login_valid(&stdout), 0.0);

        let shown = login(&sim, &path);
        let first = token_in(&token_file);
        assert!(
            first.starts_with("simrt."),
            "the file holds the refresh token"
        );
        assert!(!shown.contains(&first), "login printed the token:\n{shown}");
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            sim.refresh_token_status(&first),
            Some(RefreshStatus::Current)
        );

        // Three refreshes: each redeems the file's token and writes the rotated one back.
        let truth = sim
            .summary_truth(TENANT_ID, SummaryBy::Feature, "all", "all")
            .unwrap();
        let mut seen = vec![first.clone()];
        for round in 0..3 {
            let mut args = once_args(&path);
            args.extend(["--log.level".into(), "trace".into()]);
            let out = run_binary(args).await;
            let stdout = String::from_utf8(out.stdout).unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(out.status.success(), "round {round}: {stderr}");
            let now = token_in(&token_file);
            assert!(!seen.contains(&now), "round {round}: not rotated");
            assert_eq!(
                sim.refresh_token_status(seen.last().unwrap()),
                Some(RefreshStatus::Rotated)
            );
            seen.push(now);
            // No refresh or access token at trace level or in the metrics.
            for t in &seen {
                assert!(
                    !stdout.contains(t.as_str()) && !stderr.contains(t.as_str()),
                    "round {round}: token shown"
                );
            }
            assert!(
                !stderr.contains("sim.") && !stdout.contains("sim."),
                "an access token was shown"
            );
            let series = parse_exposition(&stdout);
            let total = series[&key(
                "entra_reported_users",
                &[
                    ("tenant", "t1"),
                    ("report", DELEGATED),
                    ("user_types", "all"),
                    ("user_roles", "all"),
                ],
            )];
            assert_eq!(total, truth.total_users as f64);
            assert_eq!(login_valid(&stdout), 1.0);
            let passwords = series[&key(
                "entra_sign_ins_by_method",
                &[("tenant", "t1"), ("period", "D30"), ("method", "password")],
            )];
            assert_eq!(
                passwords,
                sim.sign_ins_by_method_truth(TENANT_ID, "d30")["password"] as f64
            );
        }

        // An old token after rotation is refused, and only the delegated report fails.
        std::fs::write(&token_file, format!("{first}\n")).unwrap();
        let out = run_binary(once_args(&path)).await;
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success());
        assert_eq!(
            (
                up(&stdout, "user_registration_details"),
                up(&stdout, DELEGATED)
            ),
            (1.0, 0.0)
        );
        assert!(
            stderr.contains("invalid_grant") && stderr.contains("login --config.file"),
            "{stderr}"
        );
        assert!(!stderr.contains(&first), "the reused token was shown");
        // Reuse revoked the whole family: the newest token is dead too.
        assert_eq!(
            sim.refresh_token_status(seen.last().unwrap()),
            Some(RefreshStatus::Revoked)
        );

        // A revoked sign-in (fresh, then revoked at the tenant) fails the same way.
        let fresh = sim
            .mint_refresh_token(TENANT_ID, "offline_access AuditLog.Read.All")
            .unwrap();
        std::fs::write(&token_file, &fresh).unwrap();
        assert_eq!(sim.revoke_refresh_tokens(TENANT_ID), 1);
        let out = run_binary(once_args(&path)).await;
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            (
                up(&stdout, "user_registration_details"),
                up(&stdout, DELEGATED)
            ),
            (1.0, 0.0)
        );
        assert!(stderr.contains("expired or was revoked"), "{stderr}");
        assert_eq!(up(&stdout, SIGN_INS), 0.0, "every delegated report fails");
        assert_eq!(
            login_valid(&stdout),
            0.0,
            "EntraDelegatedLoginExpired's input"
        );
        assert!(!stderr.contains(&fresh));
        sim.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retired_reports_warn_at_start_naming_the_successor() {
    let sim = start_sim(300, 12, |_| {}).await;
    let text = config_toml(&sim, "user_registration_details", "").replace(
        "reports = [\"user_registration_details\"]",
        "reports = [\"user_registration_details\", \"credential_usage_summary\", \"user_credential_usage_details\"]",
    );
    let (_cfg, path) = config_file(&text);
    let args = vec![
        "--once".into(),
        "--config.file".into(),
        path.display().to_string(),
    ];
    let out = tokio::time::timeout(WAIT, run_binary(args)).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("report retired by Microsoft"))
        .collect();
    assert_eq!(warnings.len(), 2, "{stderr}");
    assert!(
        warnings
            .iter()
            .any(|l| l.contains("report=user_credential_usage_details")
                && l.contains("retired=2025-08-01")
                && l.contains("successor=user_events_summary"))
    );
    assert!(
        warnings
            .iter()
            .any(|l| l.contains("report=credential_usage_summary")
                && l.contains("user_registration_activity"))
    );
    // The demo enables both on purpose: a newcomer's first run does not warn.
    let demo = tokio::time::timeout(WAIT, run_binary(vec!["--demo".into(), "--once".into()]))
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&demo.stderr);
    assert!(demo.status.success(), "{stderr}");
    assert!(!stderr.contains("report retired by Microsoft"), "{stderr}");
}

/// Serving: neither the refresh token (the one written, the one rotated away) nor an
/// access token appears on `/`, in `/metrics` (both formats) or in the trace log after
/// a redemption. (Refusals and their messages are checked in --once above.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_never_shows_a_token() {
    tokio::time::timeout(WAIT * 2, async {
        let sim = start_sim(300, 12, |_| {}).await;
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("t1.token");
        let first = sim
            .mint_refresh_token(TENANT_ID, "offline_access AuditLog.Read.All")
            .unwrap();
        std::fs::write(&token_file, &first).unwrap();
        let text = config_toml(&sim, DELEGATED, "")
            + &format!(
                "refresh_token_file = {:?}\n",
                token_file.display().to_string()
            );
        let (_cfg, path) = config_file(&text);
        let mut exporter = Exporter::start(
            &[
                "--config.file",
                path.to_str().unwrap(),
                "--log.level",
                "trace",
            ],
            &[],
        );
        poll_until(&exporter.url("/-/ready"), "*/*", |s, _| s == 200).await;
        let rotated = token_in(&token_file);
        assert_ne!(rotated, first, "redeemed and rotated");
        let check = |what: &str, body: &str| {
            for t in [first.as_str(), rotated.as_str(), "sim."] {
                assert!(!body.contains(t), "{what} shows a token ({t:.8}…)");
            }
        };
        for accept in ["text/plain", "application/openmetrics-text"] {
            let (_, body) = poll_until(&exporter.url("/metrics"), accept, |s, b| {
                s == 200 && b.contains("entra_reported_users{")
            })
            .await;
            check("/metrics", &body);
        }
        let (_, landing) = get(&exporter.url("/"), "text/html").await;
        check("/", &landing);
        exporter.terminate();
        check("the trace log", &exporter.stderr());
        sim.shutdown().await;
    })
    .await
    .unwrap();
}

#[test]
fn login_declined_exits_with_a_clear_message() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(start_sim(10, 1, |c| {
        c.device_code_interval = Duration::from_secs(1)
    }));
    let dir = tempfile::tempdir().unwrap();
    let text = config_toml(&sim, DELEGATED, "")
        + &format!(
            "refresh_token_file = {:?}\n",
            dir.path().join("t").display().to_string()
        );
    let (_cfg, path) = config_file(&text);
    let (mut child, mut lines) = spawn_login(&path);
    let first = lines.next().unwrap().unwrap();
    assert!(sim.decide_device_code(first.rsplit(' ').next().unwrap(), false));
    let (status, stderr) = wait_bounded(&mut child);
    assert!(!status.success());
    assert!(stderr.contains("declined (access_denied)"), "{stderr}");
    assert!(!dir.path().join("t").exists(), "no file written");
    rt.block_on(sim.shutdown());
}
