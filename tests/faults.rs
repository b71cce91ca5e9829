//! The fault suite: the real client against the simulator over loopback, one fault at a
//! time. A fault the client can ride out ends in counts equal to the simulator's truth,
//! with `entra_exporter_graph_retries_total` equal to the faults injected; one it must
//! not ride out ends in a clean failure that keeps the last good snapshot (report_up 0,
//! the old last-success time) and exports nothing partial.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use entra_mfa_exporter::app::Exporter;
use entra_mfa_exporter::config::Config;
use entra_mfa_exporter::graph::RetryPolicy;
use entra_mfa_exporter::simulate::{Faults, RateLimit, SimCounters, SimReport, SimServer};

const REPORT: &str = "user_registration_details";
/// 900 users at 100 a page: 9 pages a walk.
const USERS: u64 = 900;

fn policy() -> RetryPolicy {
    RetryPolicy {
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_secs(3),
        ..RetryPolicy::default()
    }
}

fn exporter(sim: &SimServer, policy: RetryPolicy) -> Exporter {
    let config = Config::from_toml(&config_toml(sim, REPORT, "page_size = 100\n")).unwrap();
    Exporter::new(&config, policy)
}

fn series(e: &Exporter) -> BTreeMap<SeriesKey, f64> {
    parse_exposition(&e.classic_text())
}

/// A series' value, 0 when absent (a counter never incremented is not exported).
fn value(series: &BTreeMap<SeriesKey, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    series
        .get(&series_key(name, labels))
        .copied()
        .unwrap_or(0.0)
}

fn retries(s: &BTreeMap<SeriesKey, f64>, reason: &str) -> f64 {
    value(
        s,
        "entra_exporter_graph_retries_total",
        &[("tenant", "t1"), ("reason", reason)],
    )
}

const REPORT_LABELS: [(&str, &str); 2] = [("tenant", "t1"), ("report", REPORT)];

/// Collects once under `faults` and checks the counts against the truth; returns the
/// exported series and the simulator's counters.
async fn rides_out(faults: Faults, policy: RetryPolicy) -> (BTreeMap<SeriesKey, f64>, SimCounters) {
    let sim = start_sim(USERS, 5, |c| c.faults = faults).await;
    let e = exporter(&sim, policy);
    let failures = e.collect_once().await;
    assert!(failures.is_empty(), "{failures:?}");
    let s = series(&e);
    let expected = expected_series("t1", &truth(&sim, SimReport::UserRegistrationDetails), true);
    assert_series_eq(&only(&s, USER_FAMILIES), &expected);
    assert_eq!(value(&s, "entra_exporter_report_up", &REPORT_LABELS), 1.0);
    let counters = sim.counters();
    sim.shutdown().await;
    (s, counters)
}

/// One good refresh, then `faults` from the next request on: the second refresh must
/// fail cleanly with an error containing `expect`, keeping the first snapshot.
async fn fails_cleanly(faults: Faults, expect: &str) -> (SimServer, String) {
    let sim = start_sim(USERS, 6, |_| {}).await;
    let e = exporter(&sim, policy());
    assert!(e.collect_once().await.is_empty());
    let good = series(&e);
    let last_success = value(
        &good,
        "entra_exporter_report_last_success_timestamp_seconds",
        &REPORT_LABELS,
    );
    assert!(last_success > 0.0);

    sim.set_faults(faults);
    let failures = e.collect_once().await;
    assert_eq!(failures.len(), 1, "the refresh fails");
    let message = failures[0].2.clone();
    assert!(message.contains(expect), "{message}");
    let after = series(&e);
    assert_eq!(
        only(&after, USER_FAMILIES),
        only(&good, USER_FAMILIES),
        "the last good snapshot stays, nothing partial"
    );
    assert_eq!(
        value(&after, "entra_exporter_report_up", &REPORT_LABELS),
        0.0
    );
    assert_eq!(
        value(
            &after,
            "entra_exporter_report_last_success_timestamp_seconds",
            &REPORT_LABELS
        ),
        last_success
    );
    assert_eq!(
        value(&after, "entra_exporter_report_records", &REPORT_LABELS),
        USERS as f64
    );
    (sim, message)
}

async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(WAIT, f).await.expect("test timed out")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_every_nth_with_retry_after() {
    bounded(async {
        let (s, c) = rides_out(
            Faults {
                throttle_every: Some(3),
                retry_after: Some(0.05),
                ..Faults::default()
            },
            policy(),
        )
        .await;
        assert_eq!(
            c.throttled, 4,
            "9 pages, every 3rd of 13 requests throttled"
        );
        assert_eq!(retries(&s, "throttled"), c.throttled as f64);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_every_nth_without_retry_after() {
    bounded(async {
        let (s, c) = rides_out(
            Faults {
                throttle_every: Some(2),
                ..Faults::default()
            },
            policy(),
        )
        .await;
        assert_eq!(c.throttled, 8);
        assert_eq!(retries(&s, "throttled"), c.throttled as f64);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sliding_window_limit_is_waited_out() {
    // The simulator allows 3 requests a second, the client (unpaced here) sends at once:
    // every 429 is retried after the Retry-After the window implies.
    bounded(async {
        let (s, c) = rides_out(
            Faults {
                rate_limit: Some(RateLimit {
                    requests: 3,
                    window: Duration::from_secs(1),
                    retry_after: true,
                }),
                ..Faults::default()
            },
            policy(),
        )
        .await;
        assert!(c.rate_limited > 0, "{c:?}");
        assert_eq!(c.throttled, c.rate_limited);
        assert_eq!(retries(&s, "throttled"), c.rate_limited as f64);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_error_bursts() {
    bounded(async {
        let (s, c) = rides_out(
            Faults {
                server_error_every: Some(5),
                server_error_burst: 3,
                ..Faults::default()
            },
            policy(),
        )
        .await;
        // 9 good pages need 9 of every 2-in-5: 21 requests, 12 of them 503/504.
        assert_eq!(c.server_errors, 12, "{c:?}");
        assert_eq!(retries(&s, "server_error"), c.server_errors as f64);
        let code = |code| {
            value(
                &s,
                "entra_exporter_graph_requests_total",
                &[
                    ("tenant", "t1"),
                    ("endpoint", "userRegistrationDetails"),
                    ("code", code),
                ],
            )
        };
        assert_eq!(code("503") + code("504"), 12.0);
        assert!(code("504") > 0.0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_bodies_are_retried_as_network_failures() {
    bounded(async {
        let (s, c) = rides_out(
            Faults {
                truncate_every: Some(3),
                ..Faults::default()
            },
            policy(),
        )
        .await;
        assert_eq!(c.truncated, 4, "{c:?}");
        assert_eq!(retries(&s, "network"), c.truncated as f64);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_bodies_time_out_and_slow_ones_complete() {
    bounded(async {
        // A stall longer than the request timeout: cut off, retried as `timeout`.
        let (s, c) = rides_out(
            Faults {
                stall_every: Some(4),
                stall: Duration::from_secs(6),
                ..Faults::default()
            },
            RetryPolicy {
                request_timeout: Duration::from_secs(2),
                ..policy()
            },
        )
        .await;
        assert_eq!(c.stalled, 2, "{c:?}");
        assert_eq!(retries(&s, "timeout"), c.stalled as f64);

        // A slow body within the timeout is simply waited for.
        let (s, c) = rides_out(
            Faults {
                stall_every: Some(3),
                stall: Duration::from_millis(300),
                ..Faults::default()
            },
            policy(),
        )
        .await;
        assert_eq!(c.stalled, 3);
        assert_eq!(retries(&s, "timeout"), 0.0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_invalidated_mid_walk_are_renewed_once_each() {
    bounded(async {
        let (s, c) = rides_out(
            Faults {
                revoke_tokens_every: Some(4),
                ..Faults::default()
            },
            policy(),
        )
        .await;
        // 9 pages in 11 requests: requests 4 and 8 meet a revoked token.
        assert_eq!(c.unauthorized, 2, "{c:?}");
        assert_eq!(retries(&s, "token_expired"), c.unauthorized as f64);
        assert_eq!(c.token_requests, 1 + c.unauthorized);
        assert_eq!(
            value(
                &s,
                "entra_exporter_token_requests_total",
                &[("tenant", "t1"), ("result", "success")]
            ),
            c.token_requests as f64
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_next_link_never_receives_the_token() {
    bounded(async {
        // Another loopback server stands for the foreign host and records what reaches it.
        let foreign = start_sim(1, 1, |_| {}).await;
        let (sim, message) = fails_cleanly(
            Faults {
                foreign_next_link: Some(foreign.base_url()),
                ..Faults::default()
            },
            "refusing @odata.nextLink to a different origin",
        )
        .await;
        assert!(
            message.contains(&foreign.base_url().replace("http://", "")),
            "{message}"
        );
        let reached = foreign.requests();
        assert!(
            reached.iter().all(|r| r.authorization.is_none()),
            "the foreign host got an Authorization header: {reached:?}"
        );
        assert!(
            reached.is_empty(),
            "the foreign host was not contacted at all"
        );
        sim.shutdown().await;
        foreign.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn licence_loss_fails_cleanly() {
    bounded(async {
        let (sim, _) = fails_cleanly(
            Faults {
                licence_lost_after: Some(2),
                ..Faults::default()
            },
            "no Microsoft Entra ID P1 or P2 licence",
        )
        .await;
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_without_value_fails_cleanly() {
    bounded(async {
        let (sim, message) = fails_cleanly(
            Faults {
                missing_value_every: Some(4),
                ..Faults::default()
            },
            "no \"value\" array",
        )
        .await;
        assert!(message.contains("page 4"), "{message}");
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_next_link_loop_fails_cleanly() {
    bounded(async {
        for every in [1, 3] {
            let (sim, message) = fails_cleanly(
                Faults {
                    next_link_loop_every: Some(every),
                    ..Faults::default()
                },
                "paging loop",
            )
            .await;
            assert!(message.contains(&format!("page {every}")), "{message}");
            sim.shutdown().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_flags_select_faults() {
    bounded(async {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut sim = std::process::Command::new(binary())
            .args([
                "simulate",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--users",
                "300",
                "--tenant-id",
                TENANT_ID,
                "--client-id",
                CLIENT_ID,
                "--missing-value-every",
                "2",
                "--rate-limit",
                "50",
                "--rate-limit-no-retry-after",
            ])
            .env("SIMULATE_CLIENT_SECRET", SECRET)
            .env_remove("RUST_LOG")
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "simulate did not listen");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let text = format!(
            "max_requests_per_10s = 100\n[[tenants]]\nname = \"t1\"\ntenant_id = \"{TENANT_ID}\"\nclient_id = \"{CLIENT_ID}\"\n\
             client_secret = \"{SECRET}\"\ngraph_url = \"{url}\"\nlogin_url = \"{url}\"\npage_size = 100\n"
        );
        let (_dir, path) = config_file(&text);
        let out = run_binary(once_args(&path)).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        // The reason is the refresh's log line (logfmt: its quotes escaped).
        assert!(stderr.contains(r#"page 2: malformed page: no \"value\" array"#), "{stderr}");
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &sim.id().to_string()])
            .status();
        let _ = sim.wait();
    })
    .await;
}

/// Graph's real limit, 5 requests in any sliding 10 s, against the client's limiter at
/// the same 5: a 30-page walk draws no 429 and takes close to the ideal 50 s (pages
/// 1-5 at once, then 5 more every 10 s). About a minute, so it is ignored by default;
/// `scripts/test` runs it once. Prints the measured time against the ideal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "takes about a minute; scripts/test runs it once"]
async fn thirty_page_walk_at_graphs_limit() {
    tokio::time::timeout(Duration::from_secs(180), async {
        let sim = start_sim(3_000, 9, |c| {
            c.faults.rate_limit = Some(RateLimit {
                // Graph often throttles without Retry-After (graph-api.md §7.6).
                retry_after: false,
                ..RateLimit::per_10s(5)
            });
        })
        .await;
        let config = Config::from_toml(&config_toml(
            &sim,
            REPORT,
            "page_size = 100\nmax_requests_per_10s = 5\n",
        ))
        .unwrap();
        let e = Exporter::new(&config, policy());
        let started = std::time::Instant::now();
        let failures = e.collect_once().await;
        let elapsed = started.elapsed();
        assert!(failures.is_empty(), "{failures:?}");
        let c = sim.counters();
        let s = series(&e);
        let pages = value(
            &s,
            "entra_exporter_graph_requests_total",
            &[
                ("tenant", "t1"),
                ("endpoint", "userRegistrationDetails"),
                ("code", "200"),
            ],
        );
        assert_eq!(pages, 30.0);
        assert_eq!(c.throttled, 0, "no 429 at the allowed pace: {c:?}");
        assert_eq!(retries(&s, "throttled"), 0.0);
        let expected =
            expected_series("t1", &truth(&sim, SimReport::UserRegistrationDetails), true);
        assert_series_eq(&only(&s, USER_FAMILIES), &expected);
        let ideal = Duration::from_secs(50);
        println!(
            "30-page walk at 5 requests/10 s: {:.2} s, ideal {:.0} s, ratio {:.3}, 429s: {}",
            elapsed.as_secs_f64(),
            ideal.as_secs_f64(),
            elapsed.as_secs_f64() / ideal.as_secs_f64(),
            c.throttled
        );
        sim.shutdown().await;
    })
    .await
    .expect("walk finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    bounded(async {
        let sim = start_sim(10, 1, |_| {}).await; // the token endpoint
        let foreign = start_sim(1, 1, |_| {}).await; // where the redirect points
        let graph = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let graph_url = format!("http://{}", graph.local_addr().unwrap());
        let location = format!(
            "{}/v1.0/reports/authenticationMethods/userRegistrationDetails",
            foreign.base_url()
        );
        let server = tokio::spawn(async move {
            let (mut sock, _) = graph.accept().await.unwrap();
            let mut buf = vec![0u8; 8192];
            let _ = sock.read(&mut buf).await.unwrap();
            let resp = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            sock.write_all(resp.as_bytes()).await.unwrap();
        });
        let text = config_toml(&sim, REPORT, "").replacen(
            &format!("graph_url = \"{}\"", sim.base_url()),
            &format!("graph_url = \"{graph_url}\""),
            1,
        );
        let e = Exporter::new(&Config::from_toml(&text).unwrap(), policy());
        let failures = e.collect_once().await;
        assert_eq!(failures.len(), 1);
        assert!(failures[0].2.contains("HTTP 307"), "{}", failures[0].2);
        assert!(foreign.requests().is_empty(), "the redirect target was not contacted");
        server.await.unwrap();
        sim.shutdown().await;
        foreign.shutdown().await;
    })
    .await;
}
