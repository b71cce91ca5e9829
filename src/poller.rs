//! Background refresh: one task per (tenant, report) on its interval, publishing whole
//! snapshots to the store. Tasks are independent: a tenant that fails or hangs delays
//! no other. With many tenants the refreshes are spread evenly instead of firing
//! together: the first refreshes over the first tenth of the interval (at most 30 s, so
//! `/-/ready` comes soon), every later one at its own phase of the whole interval.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::TenantConfig;
use crate::graph::{GraphClient, GraphError};
use crate::metrics::{ExporterMetrics, RefreshLabels};
use crate::reports::ReportKind;
use crate::reports::collect::collect;
use crate::snapshot::Store;

/// Longest start delay: enough to spread a restart's requests, short enough that
/// `/-/ready` comes soon.
const MAX_START_SPREAD: Duration = Duration::from_secs(30);

/// Delay of the first refresh of the poller at `slot` (0 ≤ slot < 1) of all pollers.
pub fn first_delay(slot: f64, interval: Duration) -> Duration {
    (interval / 10).min(MAX_START_SPREAD).mul_f64(slot)
}

/// When (from start) the second refresh runs: the poller's phase point
/// `slot·interval + k·interval`, the first one at least half an interval after the
/// first refresh began (`first`). Later refreshes follow every `interval`, so `n`
/// pollers refresh `interval/n` apart in the steady state.
pub fn second_refresh(first: Duration, slot: f64, interval: Duration) -> Duration {
    let mut at = interval.mul_f64(slot);
    while at < first + interval / 2 {
        at += interval;
    }
    at
}

/// A tenant's config and client.
#[derive(Debug)]
pub struct Tenant {
    /// Validated config.
    pub config: TenantConfig,
    /// Its Graph client.
    pub client: GraphClient,
}

/// The longest a refresh may run before it gives up: twice its interval, and never
/// less than an hour (a million users at Graph's 5 requests per 10 s take about 35
/// minutes). Bounds a refresh that keeps retrying or a peer that keeps paging.
pub fn refresh_deadline(tenant: &TenantConfig, report: ReportKind) -> Duration {
    let interval = tenant
        .reports
        .iter()
        .find(|r| r.kind == report)
        .map_or(Duration::ZERO, |r| r.refresh_interval);
    (interval * 2).max(MIN_REFRESH_DEADLINE)
}

/// See [`refresh_deadline`].
const MIN_REFRESH_DEADLINE: Duration = Duration::from_secs(3600);

/// Runs one refresh of `report` for `tenant` and publishes or records its outcome.
pub async fn refresh(
    tenant: &Tenant,
    report: ReportKind,
    store: &Store,
    metrics: &ExporterMetrics,
) -> Result<(), GraphError> {
    let name = tenant.config.name.as_str();
    let started = Instant::now();
    let deadline = refresh_deadline(&tenant.config, report);
    let result = tokio::time::timeout(deadline, collect(&tenant.client, &tenant.config, report))
        .await
        .unwrap_or(Err(GraphError::RefreshDeadline(deadline)));
    let elapsed = started.elapsed();
    let outcome = if result.is_ok() { "success" } else { "error" };
    metrics
        .refreshes
        .get_or_create(&RefreshLabels {
            tenant: name.to_owned(),
            report: report.name().to_owned(),
            result: outcome.to_owned(),
        })
        .inc();
    match result {
        Ok(snapshot) => {
            tracing::info!(
                tenant = name, report = %report, records = snapshot.records,
                duration_ms = elapsed.as_millis() as u64, "report refreshed"
            );
            store.publish(name, report, snapshot, elapsed);
            store.persist().await;
            Ok(())
        }
        Err(e) => {
            tracing::error!(
                tenant = name, report = %report, reason = e.metric_label(),
                duration_ms = elapsed.as_millis() as u64, error = %e,
                "report refresh failed; keeping the last good snapshot"
            );
            store.record_failure(name, report, e.to_string(), elapsed);
            Err(e)
        }
    }
}

/// Spawns a poller per (tenant, report) into a [`JoinSet`]; they stop when `shutdown`
/// becomes true.
pub fn spawn_all(
    tenants: &[Arc<Tenant>],
    store: Arc<Store>,
    metrics: ExporterMetrics,
    shutdown: watch::Receiver<bool>,
) -> JoinSet<()> {
    let mut set = JoinSet::new();
    let total = tenants
        .iter()
        .map(|t| t.config.reports.len())
        .sum::<usize>()
        .max(1);
    let start = tokio::time::Instant::now();
    let mut index = 0;
    for tenant in tenants {
        for report in &tenant.config.reports {
            let (tenant, store, metrics, mut shutdown) = (
                tenant.clone(),
                store.clone(),
                metrics.clone(),
                shutdown.clone(),
            );
            let (kind, interval) = (report.kind, report.refresh_interval);
            let slot = index as f64 / total as f64;
            index += 1;
            set.spawn(async move {
                let first = first_delay(slot, interval);
                let mut next = start + first;
                let mut refreshed = false;
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep_until(next) => {}
                        _ = shutdown.wait_for(|stop| *stop) => return,
                    }
                    next = if refreshed {
                        next + interval
                    } else {
                        start + second_refresh(first, slot, interval)
                    };
                    refreshed = true;
                    tokio::select! {
                        _ = refresh(&tenant, kind, &store, &metrics) => {}
                        _ = shutdown.wait_for(|stop| *stop) => return,
                    }
                    // A refresh longer than the interval starts the next one at once,
                    // without a burst of catch-up refreshes.
                    next = next.max(tokio::time::Instant::now());
                }
            });
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn refreshes_spread_over_the_interval() {
        let hour = Duration::from_secs(3600);
        assert_eq!(first_delay(0.0, hour), Duration::ZERO);
        assert_eq!(first_delay(0.5, hour), Duration::from_secs(15));
        assert_eq!(
            first_delay(0.5, Duration::from_secs(20)),
            Duration::from_secs(1)
        );
        // 4 pollers: steady-state phases a quarter hour apart, and the gap after the
        // first refresh between half and one and a half intervals.
        let mut phases = Vec::new();
        for k in 0..4 {
            let slot = k as f64 / 4.0;
            let first = first_delay(slot, hour);
            let second = second_refresh(first, slot, hour);
            assert!(
                second >= first + hour / 2 && second < first + hour * 3 / 2,
                "{k}"
            );
            phases.push(second.as_secs() % 3600);
        }
        assert_eq!(phases, vec![0, 900, 1800, 2700]);
    }

    #[test]
    fn refresh_deadline_is_twice_the_interval_and_at_least_an_hour() {
        let config = Config::from_toml(
            "refresh_interval = \"3h\"\nreport_refresh_intervals = { credential_usage_summary = \"10m\" }\n\
             reports = [\"user_registration_details\", \"credential_usage_summary\"]\n\
             [[tenants]]\nname = \"t\"\ntenant_id = \"t.example\"\nclient_id = \"c\"\nclient_secret = \"s\"\n",
        )
        .unwrap();
        let t = &config.tenants[0];
        assert_eq!(
            refresh_deadline(t, ReportKind::UserRegistrationDetails),
            Duration::from_secs(6 * 3600)
        );
        assert_eq!(
            refresh_deadline(t, ReportKind::CredentialUsageSummary),
            Duration::from_secs(3600)
        );
    }
}
