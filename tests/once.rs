//! `--once` end to end: the real binary against the simulator over loopback, every
//! `entra_users*` series compared with the simulator's own truth, for both sources.

mod common;

use std::process::Command;

use common::*;
use entra_mfa_exporter::simulate::SimReport;

async fn once(sim_users: u64, report: &str, sim_report: SimReport, with_preferred: bool) {
    let sim = start_sim(sim_users, 11, |_| {}).await;
    // Small pages: thousands of users over dozens of pages.
    let (_dir, path) = config_file(&config_toml(&sim, report, "page_size = 97\n"));
    let out = run_binary(once_args(&path)).await;
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let series = parse_exposition(&stdout);
    let expected = expected_series("t1", &truth(&sim, sim_report), with_preferred);
    assert_series_eq(&only(&series, USER_FAMILIES), &expected);

    let key = |name: &str| {
        (
            name.to_owned(),
            [("tenant", "t1"), ("report", report)]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    };
    assert_eq!(series[&key("entra_exporter_report_up")], 1.0);
    assert_eq!(
        series[&key("entra_exporter_report_records")],
        sim_users as f64
    );
    assert!(series[&key("entra_exporter_report_last_success_timestamp_seconds")] > 1.7e9);
    // dozens of pages, each a counted request
    let pages = sim_users.div_ceil(97) as f64;
    let endpoint = if report == "user_registration_details" {
        "userRegistrationDetails"
    } else {
        "credentialUserRegistrationDetails"
    };
    let req_key = (
        "entra_exporter_graph_requests_total".to_owned(),
        [("tenant", "t1"), ("endpoint", endpoint), ("code", "200")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    assert_eq!(series[&req_key], pages);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_registration_details_matches_truth() {
    tokio::time::timeout(
        WAIT,
        once(
            4_321,
            "user_registration_details",
            SimReport::UserRegistrationDetails,
            true,
        ),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_user_registration_details_matches_truth() {
    tokio::time::timeout(
        WAIT,
        once(
            3_003,
            "credential_user_registration_details",
            SimReport::CredentialUserRegistrationDetails,
            false,
        ),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_file_is_written_only_on_success() {
    tokio::time::timeout(WAIT, async {
        let good = start_sim(500, 3, |_| {}).await;
        let bad = start_sim(500, 3, |c| c.tenants[0].licensed = false).await;
        let dir = tempfile::tempdir().unwrap();
        let out_path = dir.path().join("entra.prom");

        let (_d1, good_cfg) = config_file(&config_toml(&good, "user_registration_details", ""));
        let run = |cfg: std::path::PathBuf, out: std::path::PathBuf| {
            tokio::task::spawn_blocking(move || {
                Command::new(binary())
                    .args([
                        "--once",
                        "--config.file",
                        cfg.to_str().unwrap(),
                        "--output",
                        out.to_str().unwrap(),
                    ])
                    .output()
                    .unwrap()
            })
        };
        let ok = run(good_cfg, out_path.clone()).await.unwrap();
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        assert!(ok.stdout.is_empty());
        let written = std::fs::read_to_string(&out_path).unwrap();
        assert!(written.contains("entra_users{"));

        let (_d2, bad_cfg) = config_file(&config_toml(&bad, "user_registration_details", ""));
        let failed = run(bad_cfg, out_path.clone()).await.unwrap();
        assert_eq!(failed.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&failed.stderr);
        assert!(
            stderr.contains("P1 or P2") && stderr.contains("tenant \"t1\""),
            "{stderr}"
        );
        // The reason once (the refresh's log line), then which failed and what was not done.
        assert_eq!(
            stderr
                .matches("Authentication_RequestFromNonPremiumTenantOrB2CTenant")
                .count(),
            1,
            "{stderr}"
        );
        assert!(
            stderr.lines().last().unwrap().starts_with(&format!(
                "error: 1 of 1 report refreshes failed; {} was not written",
                out_path.display()
            )),
            "{stderr}"
        );
        // the previous good file is untouched, no temp files remain
        assert_eq!(std::fs::read_to_string(&out_path).unwrap(), written);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        good.shutdown().await;
        bad.shutdown().await;
    })
    .await
    .unwrap();
}

/// Every sample's name and labels, in output order (the value dropped).
fn sample_keys(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.rsplit_once(' ').map_or(l, |(key, _)| key))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_once_lists_the_same_series_in_the_same_order_every_run() {
    tokio::time::timeout(WAIT, async {
        let args = || vec!["--demo".to_owned(), "--once".to_owned()];
        let (a, b) = (run_binary(args()).await, run_binary(args()).await);
        for out in [&a, &b] {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let (a, b) = (
            String::from_utf8(a.stdout).unwrap(),
            String::from_utf8(b.stdout).unwrap(),
        );
        // Several series per self-metric family (prometheus-client's Family would list
        // these in hash order, different in every process).
        let requests = sample_keys(&a)
            .into_iter()
            .filter(|k| k.starts_with("entra_exporter_graph_requests_total{"))
            .count();
        assert!(requests >= 5, "{a}");
        assert_eq!(
            sample_keys(&a),
            sample_keys(&b),
            "a textfile diff shows values only"
        );
        // prometheus-client appends the full stop to registered help texts.
        for help in a.lines().filter(|l| l.starts_with("# HELP ")) {
            assert!(!help.ends_with(".."), "{help}");
        }
    })
    .await
    .unwrap();
}
