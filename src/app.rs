//! Wiring shared by `main` and the integration tests: tenants with their clients, the
//! store, the registry, and the one-shot collection behind `--once`.

use std::path::Path;
use std::sync::Arc;

use prometheus_client::registry::Registry;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::exposition::{self, Format};
use crate::graph::ratelimit::{RateLimiters, app_identity};
use crate::graph::{GraphClient, RetryPolicy, http_client};
use crate::metrics::ExporterMetrics;
use crate::poller::{Publisher, Tenant, refresh};
use crate::reports::ReportKind;
use crate::shard::Shard;
use crate::snapshot::Store;
use crate::snapshot_file::{self, SnapshotFile};

/// Everything a running exporter holds.
#[derive(Debug, Clone)]
pub struct Exporter {
    /// Tenants with their Graph clients.
    pub tenants: Vec<Arc<Tenant>>,
    /// Snapshots.
    pub store: Arc<Store>,
    /// Self-metrics.
    pub metrics: ExporterMetrics,
    /// Which shard of the tenants this replica collects (the config passed to
    /// [`Exporter::new`] already holds only its tenants).
    pub shard: Shard,
    /// `--storage.snapshot-file`, once [`Exporter::persist_to`] set it.
    pub snapshot_file: Option<Arc<SnapshotFile>>,
}

impl Exporter {
    /// Builds clients and an empty store for `config`, the only replica.
    pub fn new(config: &Config, policy: RetryPolicy) -> Self {
        Self::for_shard(config, policy, Shard::default())
    }

    /// Builds clients and an empty store for `config` (which holds only `shard`'s
    /// tenants): each app's budget is this replica's part of it
    /// ([`Config::app_budget`]).
    pub fn for_shard(config: &Config, policy: RetryPolicy, shard: Shard) -> Self {
        let http = http_client(policy.request_timeout);
        let metrics = ExporterMetrics::new();
        let limiters = RateLimiters::default();
        let app_budget = config.app_budget(shard.count);
        // Directory calls have their own budget per (app, tenant) (graph-api.md §13.1.2).
        let directory_limiters = RateLimiters::default();
        let tenants: Vec<Arc<Tenant>> = config
            .tenants
            .iter()
            .map(|t| {
                metrics.init_tenant(&t.name, t.reports.iter().map(|r| r.kind.name()));
                let limiter = limiters.get(&t.tenant_id, &t.client_id, t.max_requests_per_10s);
                let app_limiter = limiters.app(&app_identity(t), app_budget);
                let client = GraphClient::new(http.clone(), t, metrics.clone(), policy.clone())
                    .with_rate_limiter(limiter.clone())
                    .with_limiter("app", app_limiter.clone());
                // Directory calls are paced apart: not the reports service, so not its
                // per-app budget either.
                let directory = client.paced_by(
                    "directory",
                    directory_limiters.get(
                        &t.tenant_id,
                        &t.client_id,
                        t.directory_max_requests_per_10s,
                    ),
                );
                Arc::new(Tenant {
                    client,
                    directory,
                    // Graph paces the reports service per app per tenant, and per app
                    // across tenants: the delegated requests share both limiters (with a
                    // separate `public_client_id` that overcounts, which is safe).
                    delegated: GraphClient::delegated(
                        http.clone(),
                        t,
                        metrics.clone(),
                        policy.clone(),
                    )
                    .map(|c| {
                        c.with_rate_limiter(limiter)
                            .with_limiter("app", app_limiter)
                    }),
                    config: t.clone(),
                })
            })
            .collect();
        let store = Arc::new(Store::new(tenants.iter().flat_map(|t| {
            t.config
                .reports
                .iter()
                .map(|r| (t.config.name.clone(), r.kind))
        })));
        Self {
            tenants,
            store,
            metrics,
            shard,
            snapshot_file: None,
        }
    }

    /// Persists every published snapshot to `path` from now on, first restoring the
    /// snapshots it holds for `config` when `restore` is set.
    pub fn persist_to(&mut self, path: &Path, config: &Config, restore: bool) {
        self.snapshot_file = Some(snapshot_file::open(path, config, &self.store, restore));
    }

    /// Where the pollers send their outcomes.
    pub fn publisher(&self) -> Publisher {
        Publisher {
            store: self.store.clone(),
            metrics: self.metrics.clone(),
            snapshot_file: self.snapshot_file.clone(),
        }
    }

    /// A registry of the self-metrics (the store's families are written beside it:
    /// [`exposition::Exposition`]).
    pub fn registry(&self) -> Registry {
        let mut registry = Registry::default();
        self.metrics.register(&mut registry);
        // A separate info metric: entra_exporter_build_info's labels are fixed by design.md.
        registry.register(
            "entra_exporter_shard",
            "Which shard of the configured tenants this replica collects (--shard.index of --shard.count)",
            prometheus_client::metrics::info::Info::new(vec![
                ("shard_index", self.shard.index.to_string()),
                ("shard_count", self.shard.count.to_string()),
            ]),
        );
        registry
    }

    /// Refreshes every (tenant, report) once, concurrently; returns the failures.
    pub async fn collect_once(&self) -> Vec<(String, ReportKind, String)> {
        let mut set = JoinSet::new();
        for tenant in &self.tenants {
            for report in &tenant.config.reports {
                let (tenant, publisher, kind) = (tenant.clone(), self.publisher(), report.kind);
                set.spawn(async move {
                    refresh(&tenant, kind, &publisher)
                        .await
                        .err()
                        .map(|e| (tenant.config.name.clone(), kind, e.to_string()))
                });
            }
        }
        let mut failures: Vec<_> = set.join_all().await.into_iter().flatten().collect();
        failures.sort();
        failures
    }

    /// The exposition in the classic text format, for `--once`.
    pub fn classic_text(&self) -> String {
        let registry = self.registry();
        exposition::encode(
            exposition::Exposition::new(&registry, &self.store),
            Format::Classic,
        )
    }
}
