//! The binary's command line: broken configs name the key and exit non-zero,
//! `--check-config` redacts, the secret never reaches logs, pages or metrics, and
//! `simulate` prints a config that works against it.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::*;
use entra_mfa_exporter::simulate;

fn run(args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(binary());
    cmd.args(args).env_remove("RUST_LOG");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn broken_config_names_the_key_and_exits_non_zero() {
    let (_d, path) = config_file(
        "[[tenants]]\nname = \"contoso\"\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret = \"x\"\npage_sise = 5\n",
    );
    let out = run(
        &["--check-config", "--config.file", path.to_str().unwrap()],
        &[],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "tenant \"contoso\" (tenants[0]): unknown key page_sise; did you mean page_size?"
        ),
        "{err}"
    );

    let (_d, path) = config_file(
        "[[tenants]]\nname = \"contoso\"\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret = \"x\"\nrefresh_interval = \"often\"\n",
    );
    let out = run(&["--config.file", path.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tenant \"contoso\" (tenants[0]): refresh_interval"),
        "{err}"
    );

    let out = run(&["--config.file", "/nonexistent/entra.toml"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/entra.toml"));
}

#[test]
fn flag_variables_are_not_config_keys_but_unknown_ones_are() {
    let (_d, path) = config_file(
        "[[tenants]]\nname = \"contoso\"\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret = \"x\"\n",
    );
    // The flags' variables, each with a value that leaves --check-config's work alone.
    let mut envs = vec![
        ("ENTRA_EXPORTER_CONFIG_FILE", path.to_str().unwrap()),
        ("ENTRA_EXPORTER_WEB_LISTEN_ADDRESS", "127.0.0.1:1"),
        ("ENTRA_EXPORTER_WEB_TELEMETRY_PATH", "/m"),
        ("ENTRA_EXPORTER_WEB_CONFIG_FILE", "/nonexistent/web.yml"),
        ("ENTRA_EXPORTER_DEMO", "false"),
        ("ENTRA_EXPORTER_ONCE", "false"),
        ("ENTRA_EXPORTER_CHECK_CONFIG", "true"),
        ("ENTRA_EXPORTER_LOG_LEVEL", "warn"),
        ("ENTRA_EXPORTER_LOG_FORMAT", "json"),
        ("ENTRA_EXPORTER_STORAGE_SNAPSHOT_FILE", "/nonexistent/snap"),
        ("ENTRA_EXPORTER_SHARD_INDEX", "0"),
        ("ENTRA_EXPORTER_SHARD_COUNT", "1"),
    ];
    let out = run(&[], &envs);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("name = \"contoso\""));

    envs.push(("ENTRA_EXPORTER_FOO", "1"));
    let out = run(&[], &envs);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("top level: unknown key foo; valid keys: ")
            && err.contains("(from ENTRA_EXPORTER_FOO)"),
        "{err}"
    );
}

#[test]
fn check_config_redacts_secrets() {
    let (_d, path) = config_file(&format!(
        "[[tenants]]\nname = \"contoso\"\ntenant_id = \"t.onmicrosoft.com\"\nclient_id = \"c\"\nclient_secret = \"{SECRET}\"\n"
    ));
    let out = run(
        &["--check-config", "--config.file", path.to_str().unwrap()],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("<redacted>") && shown.contains("name = \"contoso\""),
        "{shown}"
    );
    assert!(!shown.contains(SECRET));

    // The Azure variables alone define the `default` tenant.
    let out = run(
        &["--check-config"],
        &[
            ("AZURE_TENANT_ID", "x.onmicrosoft.com"),
            ("AZURE_CLIENT_ID", "cid"),
            ("AZURE_CLIENT_SECRET", SECRET),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("name = \"default\"") && !shown.contains(SECRET),
        "{shown}"
    );
}

/// A config file of `text` beside a secret file `secret` and a token file `token`, the
/// paths in `text` written `{dir}`.
fn config_with_files(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), format!("{SECRET}\n")).unwrap();
    std::fs::write(dir.path().join("token"), "eyJ.projected.token").unwrap();
    let path = dir.path().join("entra.toml");
    let text = text.replace("{dir}", dir.path().to_str().unwrap());
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn check_config_prints_a_config_file_that_loads_again() {
    let pem = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/auth/app.pem");
    let (dir, path) = config_with_files(&format!(
        "refresh_interval = \"2h\"\npage_size = 500\n\
         [[tenants]]\nname = \"contoso\"\ntenant_id = \"contoso.onmicrosoft.com\"\nclient_id = \"c1\"\n\
         client_secret_file = \"{{dir}}/secret\"\nreports = [\"user_registration_details\", \"credential_usage_summary\"]\n\
         report_refresh_intervals = {{ credential_usage_summary = \"6h\" }}\n\
         [[tenants]]\nname = \"gov\"\ntenant_id = \"gov.onmicrosoft.us\"\nclient_id = \"c2\"\n\
         certificate_file = {pem:?}\ncloud = \"usgov\"\n\
         [[tenants]]\nname = \"k8s\"\nauth = \"workload_identity\"\n"
    ));
    let check = |path: &std::path::Path| {
        let out = run(
            &["--check-config", "--config.file", path.to_str().unwrap()],
            &[
                ("AZURE_TENANT_ID", "k8s.onmicrosoft.com"),
                ("AZURE_CLIENT_ID", "wi"),
                (
                    "AZURE_FEDERATED_TOKEN_FILE",
                    dir.path().join("token").to_str().unwrap(),
                ),
            ],
        );
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        String::from_utf8(out.stdout).unwrap()
    };
    let shown = check(&path);
    assert!(
        shown.ends_with("\n# config is valid: 3 tenants, 4 reports\n"),
        "{shown}"
    );
    assert!(
        !shown.contains(SECRET) && !shown.contains("eyJ") && !shown.contains("scope"),
        "{shown}"
    );
    let saved = dir.path().join("saved.toml");
    std::fs::write(&saved, &shown).unwrap();
    assert_eq!(check(&saved), shown, "the saved output means the same");
    // The environment's workload identity is written out: no variables needed.
    let out = run(
        &["--check-config", "--config.file", saved.to_str().unwrap()],
        &[],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), shown);

    // A shard's replica shows its own tenants, and says so first.
    let out = run(
        &[
            "--check-config",
            "--config.file",
            saved.to_str().unwrap(),
            "--shard.count",
            "2",
        ],
        &[],
    );
    let sharded = String::from_utf8_lossy(&out.stdout);
    assert!(
        sharded.starts_with("# Shard 0 of 2: ")
            && sharded.contains(" of the 3 configured tenants")
            && sharded
                .lines()
                .last()
                .unwrap()
                .starts_with("# config is valid: "),
        "{sharded}"
    );
}

#[test]
fn a_short_interval_against_graph_is_a_warning() {
    let text = |interval: &str| {
        format!(
            "refresh_interval = \"{interval}\"\n[[tenants]]\nname = \"contoso\"\ntenant_id = \"t.onmicrosoft.com\"\n\
             client_id = \"c\"\nclient_secret = \"x\"\n"
        )
    };
    let (_d, path) = config_file(&text("1m"));
    let out = run(
        &["--check-config", "--config.file", path.to_str().unwrap()],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("level=warn")
            && stderr.contains(
                "tenant \\\"contoso\\\" (tenants[0]): refresh_interval: user_registration_details every 1m is under 5m"
            ),
        "{stderr}"
    );
    let (_d, path) = config_file(&text("1h"));
    let out = run(
        &["--check-config", "--config.file", path.to_str().unwrap()],
        &[],
    );
    assert!(out.status.success() && out.stderr.is_empty());
}

#[test]
fn a_fatal_error_is_printed_once_and_readably() {
    let (_d, path) = config_file("[[tenants]]\nname = \"\"\npage_size = 0\n");
    let out = run(&["--config.file", path.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines[0], "error: invalid configuration:", "{stderr}");
    assert!(
        lines[1..].iter().all(|l| l.starts_with("  tenants[0]: "))
            && lines.contains(&"  tenants[0]: page_size: must be between 1 and 999")
            && lines.len() == 6,
        "one problem a line, under the error:\n{stderr}"
    );
    assert!(
        !stderr.contains("\\n") && !stderr.contains("level="),
        "{stderr}"
    );

    // With JSON logs a log pipeline gets the error as a record too; people the line.
    let out = run(
        &[
            "--config.file",
            path.to_str().unwrap(),
            "--log.format",
            "json",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let (records, plain): (Vec<&str>, Vec<&str>) = stderr.lines().partition(|l| l.starts_with('{'));
    assert_eq!(records.len(), 1, "{stderr}");
    let record: serde_json::Value = serde_json::from_str(records[0]).unwrap();
    assert_eq!(record["level"], "ERROR");
    assert!(
        record["error"]
            .as_str()
            .unwrap()
            .contains("\ntenants[0]: page_size: must be between 1 and 999"),
        "{record}"
    );
    assert_eq!(plain[0], "error: invalid configuration:", "{stderr}");
}

#[test]
fn a_config_file_that_cannot_be_read_says_permission_denied() {
    use std::os::unix::fs::PermissionsExt;
    let (_d, path) = config_file("[[tenants]]\n");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    let mut cmd = if std::fs::read(&path).is_ok() {
        // Root reads any file (CAP_DAC_OVERRIDE): run the binary without capabilities,
        // where a file of mode 0000 is unreadable to its owner, root too.
        let mut cmd = Command::new("setpriv");
        cmd.args(["--bounding-set=-all", "--inh-caps=-all", "--", binary()]);
        cmd
    } else {
        Command::new(binary())
    };
    let out = cmd
        .args(["--check-config", "--config.file", path.to_str().unwrap()])
        .env_remove("RUST_LOG")
        .output()
        .expect("setpriv (util-linux) runs the binary without root's capabilities");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "error: config file {}: permission denied",
            path.display()
        )),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_and_token_never_appear_in_logs_pages_or_metrics() {
    tokio::time::timeout(WAIT * 2, async {
        let sim = start_sim(250, 2, |_| {}).await;
        let (_dir, path) = config_file(&config_toml(&sim, "user_registration_details", ""));
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
        let mut seen = String::new();
        for (path, accept) in [
            ("/metrics", "*/*"),
            ("/metrics", "text/plain"),
            ("/", "*/*"),
            ("/-/ready", "*/*"),
        ] {
            seen.push_str(
                &http()
                    .get(exporter.url(path))
                    .header("Accept", accept)
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap(),
            );
        }
        let token = sim
            .requests()
            .iter()
            .find_map(|r| r.authorization.clone())
            .and_then(|a| a.strip_prefix("Bearer ").map(str::to_owned))
            .expect("the exporter sent a bearer token");
        let logs = tokio::task::spawn_blocking(move || {
            exporter.terminate();
            exporter.stderr()
        })
        .await
        .unwrap();
        assert!(
            logs.contains("level=trace") || logs.contains("level=debug"),
            "trace logging is on"
        );
        for (what, text) in [("logs", &logs), ("pages", &seen)] {
            assert!(!text.contains(SECRET), "client secret in {what}");
            assert!(!text.contains(&token), "access token in {what}");
        }
        sim.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serves_registration_metrics_within_seconds() {
    tokio::time::timeout(WAIT, async {
        let exporter = Exporter::start(&["--demo"], &[]);
        let (_, body) = poll_until(&exporter.url("/metrics"), "text/plain", |s, b| {
            s == 200 && b.contains("entra_users_with_feature{")
        })
        .await;
        let series = parse_exposition(&body);
        assert!(series.keys().any(|(n, l)| n == "entra_users"
            && l["tenant"] == "demo"
            && l["user_type"] == "member"));
        let landing = http()
            .get(exporter.url("/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(landing.contains("Demo mode"));
    })
    .await
    .unwrap();
}

/// Stops the child by PID when the test ends, passed or not.
struct StopOnDrop(Child);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + WAIT;
        while self.0.try_wait().ok().flatten().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = self.0.kill();
                let _ = self.0.wait();
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_prints_credentials_and_a_config_that_works() {
    let mut child = Command::new(binary())
        .args(["simulate", "--listen", "127.0.0.1:0", "--users", "300"])
        .env_remove("RUST_LOG")
        .env_remove("SIMULATE_CLIENT_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let sim = StopOnDrop(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The start-up lines, up to the config's last line (bounded: the reader ends at EOF).
    let mut lines = Vec::new();
    let deadline = std::time::Instant::now() + WAIT;
    while !lines
        .last()
        .is_some_and(|l: &String| l.starts_with("login_url = "))
    {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(e) => panic!(
                "simulate stopped printing ({e}) after:\n{}",
                lines.join("\n")
            ),
        }
    }
    let shown = lines.join("\n");
    for (what, value) in [
        ("tenant_id     = ", simulate::DEMO_TENANT_ID),
        ("client_id     = ", simulate::DEMO_CLIENT_ID),
        ("client_secret = ", simulate::DEMO_CLIENT_SECRET),
    ] {
        assert!(shown.contains(&format!("{what}{value}")), "{shown}");
    }
    let start = lines
        .iter()
        .position(|l| l.starts_with("Exporter config"))
        .expect("a config header");
    let snippet = lines[start + 1..].join("\n");
    assert!(snippet.contains("max_requests_per_10s = 100"), "{snippet}");
    let (_dir, path) = config_file(&snippet);
    let out = run_binary(once_args(&path)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "--once failed:\n{stderr}\nconfig:\n{snippet}"
    );
    let series = parse_exposition(&String::from_utf8_lossy(&out.stdout));
    assert!(
        series
            .iter()
            .any(|((n, l), v)| n == "entra_users" && l["tenant"] == "sim" && *v > 0.0),
        "no entra_users for tenant sim"
    );
    drop(sim);
}
