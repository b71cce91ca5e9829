//! The whole report family end to end, all reports enabled together: every series of
//! every family equals the simulator's truth in `--once` and in serve mode; the
//! delegated-only refusal reads well and is reported once per refresh; the admin list
//! is capped with a warning.

mod common;

use std::collections::BTreeMap;

use common::*;
use entra_mfa_exporter::simulate::SimReport;

const SETUP: FamilySetup<'static> = FamilySetup {
    period: "D7",
    user_types: &["all", "member", "guest"],
    user_roles: &["all", "admin", "privilegedAdmin"],
    admins: Some(1_000),
};

/// A config enabling every report (the delegated-only summaries served by the
/// simulator's switch) with small pages.
async fn family_sim(users: u64, seed: u64) -> (entra_mfa_exporter::simulate::SimServer, String) {
    let sim = start_sim(users, seed, |c| c.tenants[0].app_only_summaries = true).await;
    let text = config_toml(&sim, "user_registration_details", "").replace(
        "reports = [\"user_registration_details\"]",
        &format!("reports = [{ALL_REPORTS}]"),
    ) + "page_size = 97\n"
        + &SETUP.toml();
    (sim, text)
}

fn expected_all(sim: &entra_mfa_exporter::simulate::SimServer) -> BTreeMap<SeriesKey, f64> {
    let mut expected = expected_series("t1", &truth(sim, SimReport::UserRegistrationDetails), true);
    expected.extend(expected_family_series(sim, "t1", &SETUP));
    expected
}

fn all_families() -> Vec<&'static str> {
    USER_FAMILIES
        .iter()
        .chain(FAMILY_FAMILIES)
        .copied()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_with_every_report_matches_truth() {
    tokio::time::timeout(WAIT, async {
        let (sim, text) = family_sim(2_222, 17).await;
        let (_dir, path) = config_file(&text);
        let out = run_binary(once_args(&path)).await;
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
        let series = parse_exposition(&stdout);
        let expected = expected_all(&sim);
        assert_series_eq(&only(&series, &all_families()), &expected);
        // Every family is present, and post-sentinel members kept their own names.
        for family in all_families() {
            assert!(expected.keys().any(|(n, _)| n == family), "{family} has no series");
        }
        for (family, label, value) in [
            ("entra_credential_registration_users", "status", "passwordless_capable"),
            ("entra_reported_users_with_feature", "feature", "mfa_registered"),
            ("entra_credential_usage_events", "feature", "passwordChange"),
            ("entra_credential_usage_activities", "method", "microsoftAuthenticatorPush"),
        ] {
            assert!(
                series.keys().any(|(n, l)| n == family && l.get(label).map(String::as_str) == Some(value)),
                "{family}{{{label}={value:?}}} missing"
            );
        }
        assert!(!stdout.contains("unknownFutureValue") && !stdout.contains("unknown_future_value"));
        // failureReason is free text: never a label.
        assert!(!stdout.contains("failureReason") && !stdout.contains("contacted an admin"));

        let records = |report: &str| series[&key("entra_exporter_report_records", &[("tenant", "t1"), ("report", report)])];
        assert_eq!(records("user_events_summary"), 2_222.0);
        assert_eq!(records("user_credential_usage_details"), 2_222.0);
        assert_eq!(records("users_registered_by_feature"), 9.0, "one result per (type, role) pair");
        assert_eq!(records("credential_user_registration_count"), 1.0);
        for report in ["credential_usage_summary", "users_registered_by_method", "user_registration_details"] {
            assert_eq!(series[&key("entra_exporter_report_up", &[("tenant", "t1"), ("report", report)])], 1.0);
        }
        let requests = |endpoint: &str| {
            series[&key(
                "entra_exporter_graph_requests_total",
                &[("tenant", "t1"), ("endpoint", endpoint), ("code", "200")],
            )]
        };
        assert_eq!(requests("usersRegisteredByMethod"), 9.0);
        assert_eq!(requests("userCredentialUsageDetails"), 2_222f64.div_euclid(97.0) + 1.0);
        assert_eq!(requests("getCredentialUsageSummary"), 1.0);
        // The function URLs are the documented ones.
        let paths: Vec<String> = sim.requests().into_iter().map(|r| r.path_and_query).collect();
        assert!(paths.iter().any(|p| p == "/beta/reports/getCredentialUsageSummary(period='D7')"), "{paths:?}");
        assert!(paths.iter().any(|p| p == "/beta/reports/getCredentialUserRegistrationCount"));
        // aggregationPeriod is lowercase (graph-api.md §4).
        assert!(paths.iter().any(|p| p == "/beta/reports/authenticationMethods/userRegistrationActivity(period='d7')"), "{paths:?}");
        assert!(paths.iter().any(|p| p == "/beta/reports/authenticationMethods/userSignInsByAuthMethodSummary(period='d7')"));
        // The daily reports document no query options: none is sent.
        for daily in ["userMfaSignInSummary", "userPasswordResetsAndChangesSummary"] {
            assert!(paths.iter().any(|p| p == &format!("/beta/reports/authenticationMethods/{daily}")), "{paths:?}");
        }
        assert!(paths.iter().any(|p| p == "/v1.0/reports/authenticationMethods/usersRegisteredByFeature(includedUserTypes='member',includedUserRoles='privilegedAdmin')"));
        sim.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_every_report_matches_truth() {
    tokio::time::timeout(WAIT * 2, async {
        let (sim, text) = family_sim(1_717, 23).await;
        let (_dir, path) = config_file(&text);
        let exporter = Exporter::start(&["--config.file", path.to_str().unwrap()], &[]);
        poll_until(&exporter.url("/-/ready"), "*/*", |s, _| s == 200).await;
        let expected = expected_all(&sim);
        for accept in ["application/openmetrics-text", "text/plain"] {
            let (_, body) = poll_until(&exporter.url("/metrics"), accept, |s, _| s == 200).await;
            assert_series_eq(&only(&parse_exposition(&body), &all_families()), &expected);
        }
        let landing = http()
            .get(exporter.url("/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for report in [
            "users_registered_by_method",
            "user_events_summary",
            "credential_usage_summary",
        ] {
            assert!(landing.contains(report), "{landing}");
        }
        sim.shutdown().await;
    })
    .await
    .unwrap();
}

/// Real Graph refuses app-only tokens for usersRegisteredBy* (the simulator's default):
/// the reports fail with a message that says so, one request and one error line per
/// refresh, and the other reports are unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegated_only_summaries_fail_clearly_once_per_refresh() {
    tokio::time::timeout(WAIT * 2, async {
        let sim = start_sim(300, 3, |_| {}).await;
        let text = config_toml(&sim, "user_registration_details", "")
            .replace(
                "reports = [\"user_registration_details\"]",
                "reports = [\"user_registration_details\", \"users_registered_by_feature\", \"users_registered_by_method\"]",
            )
            + "summary_user_types = [\"member\", \"guest\"]\nsummary_user_roles = [\"all\", \"admin\"]\n";

        // --once: exit 1, the reason on stderr, the app-only report still exported.
        let (_d1, once_cfg) = config_file(&text);
        let out = run_binary(once_args(&once_cfg)).await;
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let line = stderr
            .lines()
            .find(|l| l.contains("level=error") && l.contains("report=users_registered_by_feature "))
            .unwrap_or_else(|| panic!("{stderr}"));
        assert!(
            line.contains("Graph refused usersRegisteredByFeature to this app-only token (HTTP 403 Authorization_RequestDenied")
                && line.contains("delegated-only")
                && line.contains("user_registration_details report as entra_users_with_feature")
                && !line.contains("Grant admin consent"),
            "{line}"
        );
        assert!(stderr.contains("report=users_registered_by_method reason=delegated_only duration_ms="), "{stderr}");
        assert!(stderr.contains("error=\"Graph refused usersRegisteredByMethod"), "{stderr}");
        let series = parse_exposition(&String::from_utf8(out.stdout).unwrap());
        assert!(series.keys().any(|(n, _)| n == "entra_users"));
        assert!(!series.keys().any(|(n, _)| n.starts_with("entra_reported_users")));
        let summary_requests = |sim: &entra_mfa_exporter::simulate::SimServer| {
            sim.requests().iter().filter(|r| r.path_and_query.contains("usersRegisteredByFeature")).count()
        };
        assert_eq!(summary_requests(&sim), 1, "the first refusal ends the refresh");

        // Serve mode, a refresh every second: one error line per refresh, no flood.
        let (_d2, serve_cfg) = config_file(&text.replace("refresh_interval = \"30s\"", "refresh_interval = \"1s\""));
        let mut exporter = Exporter::start(&["--config.file", serve_cfg.to_str().unwrap()], &[]);
        let errors_key = key(
            "entra_exporter_report_refreshes_total",
            &[("tenant", "t1"), ("report", "users_registered_by_feature"), ("result", "error")],
        );
        poll_until(&exporter.url("/metrics"), "text/plain", |_, b| {
            parse_exposition(b).get(&errors_key).is_some_and(|n| *n >= 3.0)
        })
        .await;
        let status = tokio::task::spawn_blocking(move || {
            exporter.terminate();
            // The reader thread may still be draining the pipe: wait for the last line.
            let deadline = std::time::Instant::now() + WAIT;
            while !exporter.stderr().contains("shutting down") && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            exporter.stderr()
        });
        let log = status.await.unwrap();
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("report=users_registered_by_feature") && l.contains("level=error"))
            .collect();
        assert!(lines.len() >= 3, "{log}");
        assert!(lines.iter().all(|l| l.contains("reason=delegated_only") && l.contains("delegated-only")), "{lines:?}");
        // One request per refresh attempt (plus the one of --once above); a refresh cut
        // short by the shutdown may have sent its request without logging.
        let requests = summary_requests(&sim);
        assert!(
            (lines.len() + 1..=lines.len() + 2).contains(&requests),
            "{requests} requests for {} refreshes:\n{log}",
            lines.len()
        );
        sim.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_list_is_capped_with_a_warning() {
    tokio::time::timeout(WAIT, async {
        let sim = start_sim(3_000, 5, |_| {}).await;
        let (_dir, path) = config_file(&config_toml(
            &sim,
            "user_registration_details",
            "admins_without_mfa = true\nmax_listed_admins = 3\n",
        ));
        let out = run_binary(once_args(&path)).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let series = parse_exposition(&String::from_utf8(out.stdout).unwrap());
        let all = sim.admins_without_mfa_truth(TENANT_ID);
        assert!(all.len() > 3, "{all:?}");
        let expected: BTreeMap<SeriesKey, f64> = all
            .iter()
            .take(3)
            .map(|upn| {
                (
                    key(
                        "entra_admin_without_mfa_info",
                        &[("tenant", "t1"), ("user_principal_name", upn)],
                    ),
                    1.0,
                )
            })
            .collect();
        assert_series_eq(&only(&series, &["entra_admin_without_mfa_info"]), &expected);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let warning = stderr
            .lines()
            .find(|l| l.contains("level=warn") && l.contains("max_listed_admins"))
            .unwrap_or_else(|| panic!("{stderr}"));
        assert!(
            warning.contains(&format!("total={}", all.len())) && warning.contains("listed=3"),
            "{warning}"
        );

        // Off by default: no names.
        let (_d2, path) = config_file(&config_toml(&sim, "user_registration_details", ""));
        let out = run_binary(once_args(&path)).await;
        assert!(
            out.status.success(),
            "stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("entra_users{"), "{stdout}");
        assert!(!stdout.contains("entra_admin_without_mfa_info"));
        sim.shutdown().await;
    })
    .await
    .unwrap();
}
