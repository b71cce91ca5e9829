//! Serve mode end to end: the real binary polls the simulator in the background and
//! serves what it collected; every `entra_users*` series equals the simulator's truth.

mod common;

use common::*;
use entra_mfa_exporter::simulate::SimReport;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_truth_in_both_formats_and_stops_on_sigterm() {
    tokio::time::timeout(WAIT * 2, async {
        let sim = start_sim(2_345, 5, |_| {}).await;
        let (_dir, path) = config_file(&config_toml(&sim, "user_registration_details", "page_size = 60\n"));
        let mut exporter = Exporter::start(&["--config.file", path.to_str().unwrap()], &[]);

        // Not ready until the first refresh finished; then ready.
        poll_until(&exporter.url("/-/ready"), "*/*", |s, _| s == 200).await;
        let expected = expected_series("t1", &truth(&sim, SimReport::UserRegistrationDetails), true);

        // OpenMetrics by default (Prometheus' own Accept header), ending in # EOF.
        let prom_accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        let resp = http().get(exporter.url("/metrics")).header("Accept", prom_accept).send().await.unwrap();
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text; version=1.0.0"));
        let om = resp.text().await.unwrap();
        assert!(om.ends_with("# EOF\n"), "OpenMetrics must end with # EOF");
        assert_series_eq(&only(&parse_exposition(&om), USER_FAMILIES), &expected);

        // Classic text when only text/plain is accepted.
        let resp = http().get(exporter.url("/metrics")).header("Accept", "text/plain").send().await.unwrap();
        assert_eq!(resp.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
        let classic = resp.text().await.unwrap();
        assert!(!classic.contains("# EOF"));
        assert!(classic.contains("# TYPE entra_exporter_graph_requests_total counter"));
        assert!(classic.contains("# TYPE entra_exporter_http_connections_closed_total counter"));
        // Served (server self-metrics included), every HELP ends in one full stop.
        for help in classic.lines().filter(|l| l.starts_with("# HELP ")) {
            assert!(help.ends_with('.') && !help.ends_with(".."), "{help}");
        }
        assert_series_eq(&only(&parse_exposition(&classic), USER_FAMILIES), &expected);

        // Landing page, health, 404, 405.
        let landing = http().get(exporter.url("/")).send().await.unwrap().text().await.unwrap();
        assert!(landing.contains("t1") && landing.contains("user_registration_details") && landing.contains(">up<"), "{landing}");
        assert_eq!(http().get(exporter.url("/-/healthy")).send().await.unwrap().status(), 200);
        assert_eq!(http().get(exporter.url("/nope")).send().await.unwrap().status(), 404);
        let post = http().post(exporter.url("/metrics")).send().await.unwrap();
        assert_eq!(post.status(), 405);
        assert_eq!(post.headers()["allow"], "GET, HEAD");
        let head = http().head(exporter.url("/metrics")).send().await.unwrap();
        assert_eq!(head.status(), 200);

        // A scrape never calls Graph.
        let before = sim.counters().graph_requests;
        for _ in 0..5 {
            http().get(exporter.url("/metrics")).send().await.unwrap().text().await.unwrap();
        }
        assert_eq!(sim.counters().graph_requests, before);

        let status = tokio::task::spawn_blocking(move || {
            let status = exporter.terminate();
            (status, exporter.stderr())
        })
        .await
        .unwrap();
        assert!(status.0.success(), "exit {:?}; stderr:\n{}", status.0, status.1);
        assert!(status.1.contains("shutting down"));
        sim.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_tenant_does_not_blank_another() {
    tokio::time::timeout(WAIT * 2, async {
        let sim = start_sim(300, 9, |_| {}).await;
        // A second tenant with a wrong secret fails every refresh; the good one is unaffected.
        let url = sim.base_url();
        let text = format!(
            "{}\n[[tenants]]\nname = \"broken\"\ntenant_id = \"{TENANT_ID}\"\nclient_id = \"{CLIENT_ID}\"\n\
             client_secret = \"wrong\"\ngraph_url = \"{url}\"\nlogin_url = \"{url}\"\n",
            config_toml(&sim, "user_registration_details", "")
        );
        let (_dir, path) = config_file(&text);
        let exporter = Exporter::start(&["--config.file", path.to_str().unwrap()], &[]);
        poll_until(&exporter.url("/-/ready"), "*/*", |s, _| s == 200).await;
        let (_, body) = poll_until(&exporter.url("/metrics"), "text/plain", |_, b| b.contains("report_up{tenant=\"broken\"")).await;
        let series = parse_exposition(&body);
        let up = |t: &str| {
            series[&("entra_exporter_report_up".to_owned(), [("tenant", t), ("report", "user_registration_details")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())]
        };
        assert_eq!(up("t1"), 1.0);
        assert_eq!(up("broken"), 0.0);
        assert!(!series.keys().any(|(n, l)| n == "entra_users" && l["tenant"] == "broken"));
        let landing = http().get(exporter.url("/")).send().await.unwrap().text().await.unwrap();
        assert!(landing.contains("AADSTS7000215") && landing.contains("Secret ID"), "{landing}");
        assert!(!landing.contains("wrong\""));
        sim.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_legacy_source_as_its_truth() {
    tokio::time::timeout(WAIT * 2, async {
        let sim = start_sim(2_400, 13, |_| {}).await;
        // 40 pages of 60 rows.
        let (_dir, path) = config_file(&config_toml(
            &sim,
            "credential_user_registration_details",
            "page_size = 60\n",
        ));
        let exporter = Exporter::start(&["--config.file", path.to_str().unwrap()], &[]);
        poll_until(&exporter.url("/-/ready"), "*/*", |s, _| s == 200).await;
        let expected = expected_series(
            "t1",
            &truth(&sim, SimReport::CredentialUserRegistrationDetails),
            false,
        );
        for accept in ["application/openmetrics-text", "text/plain"] {
            let (_, body) = poll_until(&exporter.url("/metrics"), accept, |s, _| s == 200).await;
            assert_series_eq(&only(&parse_exposition(&body), USER_FAMILIES), &expected);
        }
        assert_eq!(sim.counters().graph_requests, 40);
        sim.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_file_survives_a_restart_with_graph_down() {
    tokio::time::timeout(WAIT * 2, async {
        let sim = start_sim(700, 3, |_| {}).await;
        let (dir, path) = config_file(&config_toml(
            &sim,
            "user_registration_details",
            "page_size = 100\n",
        ));
        let snap = dir.path().join("state/snapshots.json");
        std::fs::create_dir(dir.path().join("state")).unwrap();
        let args = [
            "--config.file",
            path.to_str().unwrap(),
            "--storage.snapshot-file",
            snap.to_str().unwrap(),
        ];
        let labels = [("tenant", "t1"), ("report", "user_registration_details")];
        let last_success_key = series_key(
            "entra_exporter_report_last_success_timestamp_seconds",
            &labels,
        );

        let mut first = Exporter::start(&args, &[]);
        let (_, body) = poll_until(&first.url("/metrics"), "text/plain", |s, b| {
            s == 200 && b.contains("entra_users{")
        })
        .await;
        let served = parse_exposition(&body);
        let expected =
            expected_series("t1", &truth(&sim, SimReport::UserRegistrationDetails), true);
        assert_series_eq(&only(&served, USER_FAMILIES), &expected);
        let last_success = served[&last_success_key];
        // Written after the refresh is published, so /metrics may show it first.
        let deadline = std::time::Instant::now() + WAIT;
        while !snap.exists() && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(snap.exists(), "written after the refresh");
        tokio::task::spawn_blocking(move || first.terminate())
            .await
            .unwrap();

        // Graph goes away; the restarted exporter serves the persisted snapshot at once,
        // with its original last-success time, and is ready before any refresh.
        sim.shutdown().await;
        let second = Exporter::start(&args, &[]);
        let (_, body) = get(&second.url("/metrics"), "text/plain").await;
        let restored = parse_exposition(&body);
        assert_series_eq(&only(&restored, USER_FAMILIES), &expected);
        assert_eq!(restored[&last_success_key], last_success);
        assert_eq!(get(&second.url("/-/ready"), "*/*").await.0, 200);
        assert!(
            second.stderr().contains("snapshots restored"),
            "{}",
            second.stderr()
        );
        // Its refresh fails (Graph is down): the restored snapshot stays, report_up 0.
        let (_, body) = poll_until(&second.url("/metrics"), "text/plain", |_, b| {
            b.contains("entra_exporter_report_up{")
        })
        .await;
        let after = parse_exposition(&body);
        assert_eq!(after[&series_key("entra_exporter_report_up", &labels)], 0.0);
        assert_eq!(after[&last_success_key], last_success);
        assert_series_eq(&only(&after, USER_FAMILIES), &expected);
        drop(second);

        // A corrupt file is ignored with a warning; the exporter still starts.
        std::fs::write(&snap, b"{\"format\":1,\"entries\":[{").unwrap();
        let third = Exporter::start(&args, &[]);
        assert_eq!(get(&third.url("/-/healthy"), "*/*").await.0, 200);
        assert!(
            third.stderr().contains("the snapshot file is corrupt"),
            "{}",
            third.stderr()
        );
    })
    .await
    .unwrap();
}
