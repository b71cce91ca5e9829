//! The real Graph client against the simulator over loopback: truth for both sources,
//! retries counted as injected, token renewal, and the error messages admins see.

mod common;

use std::time::Duration;

use common::*;
use entra_mfa_exporter::app::Exporter;
use entra_mfa_exporter::config::Config;
use entra_mfa_exporter::graph::RetryPolicy;
use entra_mfa_exporter::simulate::{Faults, SimReport, SimServer};

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_secs(2),
        ..RetryPolicy::default()
    }
}

fn exporter(sim: &SimServer, report: &str, extra: &str) -> Exporter {
    let config = Config::from_toml(&config_toml(sim, report, extra)).unwrap();
    Exporter::new(&config, fast_retries())
}

fn series(e: &Exporter) -> std::collections::BTreeMap<SeriesKey, f64> {
    parse_exposition(&e.classic_text())
}

fn value(
    series: &std::collections::BTreeMap<SeriesKey, f64>,
    name: &str,
    labels: &[(&str, &str)],
) -> f64 {
    let key = series_key(name, labels);
    *series
        .get(&key)
        .unwrap_or_else(|| panic!("no series {key:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_server_errors_are_retried_and_counted() {
    tokio::time::timeout(WAIT, async {
        let sim = start_sim(3_000, 21, |c| {
            c.faults = Faults {
                throttle_every: Some(4),
                retry_after: Some(0.05),
                server_error_every: Some(7),
                ..Faults::default()
            };
        })
        .await;
        let e = exporter(&sim, "user_registration_details", "page_size = 100\n");
        let failures = e.collect_once().await;
        assert!(failures.is_empty(), "{failures:?}");
        let s = series(&e);
        let expected =
            expected_series("t1", &truth(&sim, SimReport::UserRegistrationDetails), true);
        assert_series_eq(&only(&s, USER_FAMILIES), &expected);
        let c = sim.counters();
        assert!(c.throttled > 0 && c.server_errors > 0, "{c:?}");
        assert_eq!(
            value(
                &s,
                "entra_exporter_graph_retries_total",
                &[("tenant", "t1"), ("reason", "throttled")]
            ),
            c.throttled as f64
        );
        assert_eq!(
            value(
                &s,
                "entra_exporter_graph_retries_total",
                &[("tenant", "t1"), ("reason", "server_error")]
            ),
            c.server_errors as f64
        );
        let ep = [("tenant", "t1"), ("endpoint", "userRegistrationDetails")];
        assert_eq!(
            value(
                &s,
                "entra_exporter_graph_requests_total",
                &[ep[0], ep[1], ("code", "429")]
            ),
            c.throttled as f64
        );
        assert_eq!(
            value(
                &s,
                "entra_exporter_graph_requests_total",
                &[ep[0], ep[1], ("code", "200")]
            ),
            30.0
        );
        sim.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_cached_and_renewed_before_expiry() {
    tokio::time::timeout(WAIT, async {
        // 3 s tokens are renewed after 2.4 s: room for two quick walks on a slow machine.
        let sim = start_sim(200, 1, |c| c.token_lifetime = Duration::from_secs(3)).await;
        let e = exporter(&sim, "user_registration_details", "page_size = 50\n");
        assert!(e.collect_once().await.is_empty());
        assert!(e.collect_once().await.is_empty());
        assert_eq!(sim.counters().token_requests, 1, "a valid token is reused");
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        assert!(e.collect_once().await.is_empty());
        assert_eq!(
            sim.counters().token_requests,
            2,
            "an expiring token is renewed"
        );
        assert_eq!(
            sim.counters().unauthorized,
            0,
            "renewed before Graph rejected it"
        );
        let s = series(&e);
        assert_eq!(
            value(
                &s,
                "entra_exporter_token_requests_total",
                &[("tenant", "t1"), ("result", "success")]
            ),
            2.0
        );
        // every request carried the evolvable-enum header and a correlation id
        for r in sim
            .requests()
            .iter()
            .filter(|r| r.path_and_query.contains("userRegistrationDetails"))
        {
            assert_eq!(r.prefer.as_deref(), Some("include-unknown-enum-members"));
            assert_eq!(r.client_request_id.as_deref().map(str::len), Some(36));
        }
        sim.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn licence_and_permission_403s_explain_the_fix() {
    tokio::time::timeout(WAIT, async {
        let unlicensed = start_sim(10, 1, |c| c.tenants[0].licensed = false).await;
        let e = exporter(&unlicensed, "user_registration_details", "");
        let failures = e.collect_once().await;
        assert_eq!(failures.len(), 1);
        assert!(
            failures[0]
                .2
                .contains("no Microsoft Entra ID P1 or P2 licence"),
            "{}",
            failures[0].2
        );
        assert!(failures[0].2.contains("request-id"), "{}", failures[0].2);

        let no_role = start_sim(10, 1, |c| {
            c.tenants[0].roles = vec!["AuditLog.Read.All".into()]
        })
        .await;
        let e = exporter(&no_role, "credential_user_registration_details", "");
        let failures = e.collect_once().await;
        assert!(
            failures[0]
                .2
                .contains("Application permissions ▸ Reports.Read.All"),
            "{}",
            failures[0].2
        );
        assert!(
            failures[0].2.contains("Grant admin consent"),
            "{}",
            failures[0].2
        );
        let s = series(&e);
        assert_eq!(
            value(
                &s,
                "entra_exporter_report_up",
                &[
                    ("tenant", "t1"),
                    ("report", "credential_user_registration_details")
                ]
            ),
            0.0
        );
        assert_eq!(
            value(
                &s,
                "entra_exporter_report_refreshes_total",
                &[
                    ("tenant", "t1"),
                    ("report", "credential_user_registration_details"),
                    ("result", "error")
                ]
            ),
            1.0
        );
        unlicensed.shutdown().await;
        no_role.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_is_a_token_error_with_a_hint() {
    tokio::time::timeout(WAIT, async {
        let sim = start_sim(10, 1, |_| {}).await;
        let text =
            config_toml(&sim, "user_registration_details", "").replace(SECRET, "not-the-secret");
        let e = Exporter::new(&Config::from_toml(&text).unwrap(), fast_retries());
        let failures = e.collect_once().await;
        let msg = &failures[0].2;
        assert!(
            msg.contains("AADSTS7000215") && msg.contains("not its Secret ID"),
            "{msg}"
        );
        assert!(!msg.contains("not-the-secret"));
        let s = series(&e);
        assert_eq!(
            value(
                &s,
                "entra_exporter_token_requests_total",
                &[("tenant", "t1"), ("result", "error")]
            ),
            1.0
        );
        assert_eq!(sim.counters().graph_requests, 0);
        sim.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_refresh_keeps_the_last_good_snapshot() {
    tokio::time::timeout(WAIT, async {
        let sim = start_sim(900, 8, |_| {}).await;
        let e = exporter(&sim, "user_registration_details", "page_size = 100\n");
        assert!(e.collect_once().await.is_empty());
        let good = series(&e);
        let labels = [("tenant", "t1"), ("report", "user_registration_details")];
        let last_success = value(
            &good,
            "entra_exporter_report_last_success_timestamp_seconds",
            &labels,
        );

        // The tenant loses its licence: the next refresh fails.
        assert!(sim.set_licensed(TENANT_ID, false));
        let failures = e.collect_once().await;
        assert_eq!(failures.len(), 1);
        let after = series(&e);
        assert_eq!(
            only(&after, USER_FAMILIES),
            only(&good, USER_FAMILIES),
            "the last good snapshot stays"
        );
        assert_eq!(value(&after, "entra_exporter_report_up", &labels), 0.0);
        assert_eq!(
            value(
                &after,
                "entra_exporter_report_last_success_timestamp_seconds",
                &labels
            ),
            last_success
        );
        assert_eq!(
            value(&after, "entra_exporter_report_records", &labels),
            900.0
        );

        // Licence back: the next refresh publishes again.
        sim.set_licensed(TENANT_ID, true);
        assert!(e.collect_once().await.is_empty());
        let again = series(&e);
        assert_eq!(value(&again, "entra_exporter_report_up", &labels), 1.0);
        assert!(
            value(
                &again,
                "entra_exporter_report_last_success_timestamp_seconds",
                &labels
            ) >= last_success
        );
        sim.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_page_publishes_nothing() {
    // A Graph root that answers the first page with a nextLink and the second with
    // truncated JSON: the refresh fails as a whole and no partial count is exported.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tokio::time::timeout(WAIT, async {
        let sim = start_sim(10, 1, |_| {}).await; // token endpoint only
        let graph = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let graph_url = format!("http://{}", graph.local_addr().unwrap());
        let next = format!("{graph_url}/v1.0/reports/authenticationMethods/userRegistrationDetails?$skiptoken=p2");
        let server = tokio::spawn(async move {
            for page in 0..2 {
                let (mut sock, _) = graph.accept().await.unwrap();
                let mut buf = vec![0u8; 8192];
                let _ = sock.read(&mut buf).await.unwrap();
                let body = if page == 0 {
                    format!(r#"{{"@odata.nextLink":"{next}","value":[{{"userType":"member","isAdmin":false,"isMfaCapable":true}}]}}"#)
                } else {
                    r#"{"value":[{"userType":"member","isAdmin":false"#.to_owned()
                };
                let resp = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                sock.write_all(resp.as_bytes()).await.unwrap();
            }
        });
        let text = config_toml(&sim, "user_registration_details", "")
            .replacen(&format!("graph_url = \"{}\"", sim.base_url()), &format!("graph_url = \"{graph_url}\""), 1);
        let e = Exporter::new(&Config::from_toml(&text).unwrap(), fast_retries());
        let failures = e.collect_once().await;
        assert_eq!(failures.len(), 1);
        assert!(failures[0].2.contains("page 2") && failures[0].2.contains("malformed"), "{}", failures[0].2);
        let s = series(&e);
        assert!(only(&s, USER_FAMILIES).is_empty(), "nothing partial is exported");
        assert_eq!(value(&s, "entra_exporter_report_up", &[("tenant", "t1"), ("report", "user_registration_details")]), 0.0);
        server.await.unwrap();
        sim.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_failures_are_retried_then_reported() {
    tokio::time::timeout(WAIT, async {
        let sim = start_sim(10, 1, |_| {}).await; // token endpoint only
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead_url = format!("http://{}", closed.local_addr().unwrap());
        drop(closed); // nothing listens there now: connection refused
        let text = config_toml(&sim, "user_registration_details", "").replacen(
            &format!("graph_url = \"{}\"", sim.base_url()),
            &format!("graph_url = \"{dead_url}\""),
            1,
        );
        let policy = RetryPolicy {
            max_attempts: 3,
            ..fast_retries()
        };
        let e = Exporter::new(&Config::from_toml(&text).unwrap(), policy);
        let failures = e.collect_once().await;
        let msg = &failures[0].2;
        assert!(
            msg.contains("gave up after 3 attempts") && msg.contains("request to Graph failed"),
            "{msg}"
        );
        let s = series(&e);
        assert_eq!(
            value(
                &s,
                "entra_exporter_graph_retries_total",
                &[("tenant", "t1"), ("reason", "network")]
            ),
            2.0
        );
        assert_eq!(
            value(
                &s,
                "entra_exporter_graph_requests_total",
                &[
                    ("tenant", "t1"),
                    ("endpoint", "userRegistrationDetails"),
                    ("code", "error")
                ]
            ),
            3.0
        );
        sim.shutdown().await;
    })
    .await
    .unwrap();
}
