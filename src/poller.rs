//! Background refresh: one task per (tenant, report) on its interval, with start
//! jitter, publishing whole snapshots to the store.

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
use crate::util;

/// Longest start delay: enough to spread a restart's requests, short enough that
/// `/-/ready` comes soon.
const MAX_START_JITTER: Duration = Duration::from_secs(30);

/// A tenant's config and client.
#[derive(Debug)]
pub struct Tenant {
    /// Validated config.
    pub config: TenantConfig,
    /// Its Graph client.
    pub client: GraphClient,
}

/// Runs one refresh of `report` for `tenant` and publishes or records its outcome.
pub async fn refresh(
    tenant: &Tenant,
    report: ReportKind,
    store: &Store,
    metrics: &ExporterMetrics,
) -> Result<(), GraphError> {
    let name = tenant.config.name.as_str();
    let started = Instant::now();
    let result = collect(&tenant.client, &tenant.config, report).await;
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
    for tenant in tenants {
        for report in &tenant.config.reports {
            let (tenant, store, metrics, mut shutdown) = (
                tenant.clone(),
                store.clone(),
                metrics.clone(),
                shutdown.clone(),
            );
            let (kind, interval) = (report.kind, report.refresh_interval);
            set.spawn(async move {
                let jitter = (interval / 10)
                    .min(MAX_START_JITTER)
                    .mul_f64(util::random_unit());
                let mut next = tokio::time::Instant::now() + jitter;
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep_until(next) => {}
                        _ = shutdown.wait_for(|stop| *stop) => return,
                    }
                    next += interval;
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
