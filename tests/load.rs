//! `/metrics` under a 1,000-request concurrent scrape while a refresh is running: every
//! response is complete and correct (no assertion on timing: the machine is shared).
//! Prints requests per second and latency percentiles for the record.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use entra_mfa_exporter::simulate::{SimReport, SimTenant};

const REQUESTS: usize = 1_000;
const BIG_TENANT_ID: &str = "fabrikam-test.onmicrosoft.com";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_scrapes_during_a_refresh() {
    tokio::time::timeout(WAIT * 3, async {
        let sim = start_sim(2_000, 4, |c| {
            c.tenants
                .push(SimTenant::new(BIG_TENANT_ID, CLIENT_ID, SECRET, 20_000, 8));
        })
        .await;
        let url = sim.base_url();
        // "small" is published in one page; "big" walks 200 pages at 5 requests per 10 s,
        // so its refresh runs for the whole test.
        let text = format!(
            "{}\n[[tenants]]\nname = \"big\"\ntenant_id = \"{BIG_TENANT_ID}\"\nclient_id = \"{CLIENT_ID}\"\n\
             client_secret = \"{SECRET}\"\ngraph_url = \"{url}\"\nlogin_url = \"{url}\"\npage_size = 100\n\
             max_requests_per_10s = 5\n",
            config_toml(&sim, "user_registration_details", "page_size = 999\n")
        );
        let (_dir, path) = config_file(&text);
        let exporter = Exporter::start(&["--config.file", path.to_str().unwrap()], &[]);
        let metrics = exporter.url("/metrics");
        poll_until(&metrics, "text/plain", |_, b| {
            b.contains("entra_users{tenant=\"t1\"") && b.contains("endpoint=\"userRegistrationDetails\"")
        })
        .await;
        let expected = expected_series("t1", &truth(&sim, SimReport::UserRegistrationDetails), true);

        // One connection per request: 1,000 concurrent connections is the load under test,
        // and a reused keep-alive connection that the server closes to make room (it does
        // past MAX_CONNECTIONS) would be the usual keep-alive race, not a server fault.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        // The big tenant's walk has begun (the small tenant needs one request).
        let deadline = Instant::now() + WAIT;
        while sim.counters().graph_requests < 3 {
            assert!(Instant::now() < deadline, "the big tenant's refresh did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(REQUESTS);
        let start_line = Arc::new(tokio::sync::Barrier::new(REQUESTS));
        for i in 0..REQUESTS {
            let (client, metrics, start_line) = (client.clone(), metrics.clone(), start_line.clone());
            tasks.push(tokio::spawn(async move {
                start_line.wait().await;
                let accept = if i % 2 == 0 { "text/plain" } else { "application/openmetrics-text" };
                let t = Instant::now();
                let resp = client.get(&metrics).header("Accept", accept).send().await;
                let result = match resp {
                    Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
                    Err(e) => (0, e.to_string()),
                };
                (t.elapsed(), result)
            }));
        }
        let mut latencies = Vec::with_capacity(REQUESTS);
        let mut bodies = Vec::with_capacity(REQUESTS);
        for t in tasks {
            let (latency, result) = t.await.unwrap();
            latencies.push(latency);
            bodies.push(result);
        }
        let wall = started.elapsed();

        for (status, body) in &bodies {
            assert_eq!(*status, 200, "{body}");
            let series = parse_exposition(body);
            assert_series_eq(&only(&series, USER_FAMILIES), &expected);
        }
        assert!(
            bodies.iter().all(|(_, b)| !b.contains("entra_users{tenant=\"big\"")),
            "the big tenant's refresh was still running when the load ended"
        );
        latencies.sort();
        let pct = |p: f64| latencies[((latencies.len() as f64 * p).ceil() as usize).min(latencies.len()) - 1];
        println!(
            "/metrics load: {REQUESTS} concurrent requests during a refresh: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, body {} bytes",
            REQUESTS as f64 / wall.as_secs_f64(),
            pct(0.50).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3,
            pct(1.0).as_secs_f64() * 1e3,
            bodies[0].1.len(),
        );
        drop(exporter);
        sim.shutdown().await;
    })
    .await
    .unwrap();
}
