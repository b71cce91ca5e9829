//! The per-app budget (design.md "Per-app budget"): tenants of one app share Graph's
//! 122 requests per 10 s, and two `--shard.count 2` replicas of one app split it, so
//! together they stay under it. Measured against the simulator enforcing both of
//! Graph's limits at Graph's values (5 per tenant, 122 per app, per sliding 10 s).

mod common;

use std::time::Duration;

use common::*;
use entra_mfa_exporter::app::Exporter;
use entra_mfa_exporter::config::Config;
use entra_mfa_exporter::graph::RetryPolicy;
use entra_mfa_exporter::shard::Shard;
use entra_mfa_exporter::simulate::{Faults, RateLimit, SimConfig, SimServer, SimTenant};

/// Tenants of the one app.
const TENANTS: usize = 30;
/// Users per tenant, one a page: 5 requests a refresh, each tenant's whole burst, so
/// 150 requests are ready at once against 122 per 10 s.
const USERS: u64 = 5;

fn tenant_id(i: usize) -> String {
    format!("tenant-{i:02}.onmicrosoft.com")
}

async fn sim() -> SimServer {
    let config = SimConfig {
        tenants: (0..TENANTS)
            .map(|i| SimTenant::new(tenant_id(i), CLIENT_ID, SECRET, USERS, i as u64))
            .collect(),
        faults: Faults {
            rate_limit: Some(RateLimit::per_10s(5)),
            app_rate_limit: Some(RateLimit::per_10s(122)),
            ..Faults::default()
        },
        ..SimConfig::default()
    };
    SimServer::start(([127, 0, 0, 1], 0).into(), config)
        .await
        .expect("simulator starts on loopback")
}

/// Every tenant of the one app, Graph's default budgets (none set).
fn config(sim: &SimServer) -> Config {
    let url = sim.base_url();
    let mut text = format!(
        "client_id = \"{CLIENT_ID}\"\nclient_secret = \"{SECRET}\"\ngraph_url = \"{url}\"\n\
         login_url = \"{url}\"\nreports = [\"user_registration_details\"]\npage_size = 1\n"
    );
    for i in 0..TENANTS {
        text.push_str(&format!(
            "[[tenants]]\nname = \"t{i:02}\"\ntenant_id = \"{}\"\n",
            tenant_id(i)
        ));
    }
    Config::from_toml(&text).unwrap()
}

/// Replica `index` of `count`: its tenants, its part of the app's budget.
fn replica(config: &Config, index: u32, count: u32) -> Exporter {
    let shard = Shard::new(index, count).unwrap();
    let mut mine = config.clone();
    mine.tenants.retain(|t| shard.owns(&t.name));
    assert!(!mine.tenants.is_empty(), "both shards have tenants");
    // No 429 is expected; should one come, it is retried as Graph asks.
    let policy = RetryPolicy {
        base_delay: Duration::from_millis(50),
        ..RetryPolicy::default()
    };
    Exporter::for_shard(&mine, policy, shard)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_of_one_app_stay_together_under_its_budget() {
    let sim = sim().await;
    let config = config(&sim);
    let (a, b) = (replica(&config, 0, 2), replica(&config, 1, 2));
    let both = async { tokio::join!(a.collect_once(), b.collect_once()) };
    let (fa, fb) = tokio::time::timeout(4 * WAIT, both)
        .await
        .expect("both replicas finish");
    assert!(fa.is_empty() && fb.is_empty(), "{fa:?} {fb:?}");
    let c = sim.counters();
    assert_eq!(
        (c.throttled, c.rate_limited, c.app_rate_limited),
        (0, 0, 0),
        "{c:?}"
    );
    assert_eq!(c.graph_requests, (TENANTS as u64) * USERS, "{c:?}");
    // Both replicas used their half at once: more than one half's 61 in a window, and
    // never more than the app's 122.
    assert!(c.app_window_peak > 61 && c.app_window_peak <= 122, "{c:?}");
    // The waits were for the app's budget, and are counted as such.
    let waited: f64 = [&a, &b]
        .iter()
        .flat_map(|e| {
            parse_exposition(&e.classic_text())
                .into_iter()
                .filter(|((name, labels), _)| {
                    name == "entra_exporter_limiter_wait_seconds_total"
                        && labels["limiter"] == "app"
                })
                .map(|(_, v)| v)
                .collect::<Vec<_>>()
        })
        .sum();
    assert!(waited > 0.0, "no wait at the app limiter was counted");
    sim.shutdown().await;
}
