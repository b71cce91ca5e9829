//! Background refresh: one task per (tenant, report) on its interval, publishing whole
//! snapshots to the store. Tasks are independent: a tenant that fails or hangs delays
//! no other. With many tenants the refreshes are spread evenly instead of firing
//! together: the first refreshes over the first tenth of the interval (at most 30 s, so
//! `/-/ready` comes soon), every later one at its own phase of the whole interval.
//!
//! A refresh's outcome goes to a [`Publisher`]: the store (what `/metrics` serves), the
//! self-metrics, and the snapshot file when one is configured. A poller that panics (a
//! bug) is restarted after a backoff, logged and counted in
//! `entra_exporter_poller_restarts_total`, never silently gone.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::collect::collect;
use crate::config::TenantConfig;
use crate::graph::{GraphClient, GraphError};
use crate::membership::Membership;
use crate::metrics::{ExporterMetrics, RefreshLabels, ReportLabels};
use crate::reports::ReportKind;
use crate::snapshot::{Snapshot, Store};
use crate::snapshot_file::SnapshotFile;

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
    /// The same, paced for directory calls (`directory_max_requests_per_10s`).
    pub directory: GraphClient,
    /// The client of its delegated-only reports, when it has a delegated sign-in.
    pub delegated: Option<GraphClient>,
}

impl Tenant {
    /// The client `report` is fetched with: a delegated-only report goes through the
    /// delegated sign-in when there is one; everything else uses the app credential.
    pub fn client_for(&self, report: ReportKind) -> &GraphClient {
        match (report.auth(), &self.delegated) {
            (crate::reports::Auth::DelegatedOnly { .. }, Some(delegated)) => delegated,
            _ => &self.client,
        }
    }
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

/// Where the outcome of every refresh goes.
#[derive(Debug, Clone)]
pub struct Publisher {
    /// Snapshots and attempts, read by the server.
    pub store: Arc<Store>,
    /// Self-metrics.
    pub metrics: ExporterMetrics,
    /// `--storage.snapshot-file`: saved after every published snapshot.
    pub snapshot_file: Option<Arc<SnapshotFile>>,
}

impl Publisher {
    fn count(&self, tenant: &str, report: ReportKind, result: &str) {
        self.metrics
            .refreshes
            .get_or_create(&RefreshLabels {
                tenant: tenant.to_owned(),
                report: report.name().to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    /// Publishes a successful refresh and persists the store.
    async fn success(&self, tenant: &str, report: ReportKind, snapshot: Snapshot, took: Duration) {
        self.count(tenant, report, "success");
        self.store.publish(tenant, report, snapshot, took);
        if let Some(file) = &self.snapshot_file {
            file.save(&self.store).await;
        }
    }

    /// Records a failed refresh; the last good snapshot stays.
    fn failure(&self, tenant: &str, report: ReportKind, error: String, took: Duration) {
        self.count(tenant, report, "error");
        self.store.record_failure(tenant, report, error, took);
    }

    /// Whether a snapshot of `report` is being served (a failure keeps it).
    fn has_snapshot(&self, tenant: &str, report: ReportKind) -> bool {
        self.store
            .state(tenant, report)
            .is_some_and(|s| s.snapshot.is_some())
    }

    /// Whether the latest refresh attempt of `report` succeeded.
    fn last_succeeded(&self, tenant: &str, report: ReportKind) -> bool {
        self.store
            .state(tenant, report)
            .and_then(|s| s.last_attempt)
            .is_some_and(|a| a.success)
    }
}

/// Runs one refresh of `report` for `tenant` and publishes or records its outcome.
pub async fn refresh(
    tenant: &Tenant,
    report: ReportKind,
    publisher: &Publisher,
) -> Result<(), GraphError> {
    let name = tenant.config.name.as_str();
    let started = Instant::now();
    let deadline = refresh_deadline(&tenant.config, report);
    let client = match report.is_directory() {
        true => &tenant.directory,
        false => tenant.client_for(report),
    };
    let progress = publisher.store.progress(name, report);
    progress.start();
    let run = async {
        let membership = membership_for(tenant, report, &publisher.store).await?;
        let privileged = privileged_for(tenant, report, &publisher.store).await;
        collect(
            client,
            &tenant.config,
            report,
            membership,
            privileged,
            &progress,
        )
        .await
    };
    let result = tokio::time::timeout(deadline, run)
        .await
        .unwrap_or(Err(GraphError::RefreshDeadline(deadline)));
    progress.finish(result.is_ok());
    let elapsed = started.elapsed();
    match result {
        Ok(snapshot) => {
            // The first success and a recovery are news; the hundredth refresh is not.
            if publisher.last_succeeded(name, report) {
                tracing::debug!(
                    tenant = name, report = %report, records = snapshot.records,
                    duration_ms = elapsed.as_millis() as u64, "report refreshed"
                );
            } else {
                tracing::info!(
                    tenant = name, report = %report, records = snapshot.records,
                    duration_ms = elapsed.as_millis() as u64, "report refreshed"
                );
            }
            publisher.success(name, report, snapshot, elapsed).await;
            Ok(())
        }
        Err(e) => {
            let kept = if publisher.has_snapshot(name, report) {
                "report refresh failed; keeping the last good snapshot"
            } else {
                "report refresh failed; no snapshot to serve yet"
            };
            tracing::error!(
                tenant = name, report = %report, reason = e.metric_label(),
                duration_ms = elapsed.as_millis() as u64, error = %e, "{kept}"
            );
            publisher.failure(name, report, e.to_string(), elapsed);
            Err(e)
        }
    }
}

/// How often a registration refresh looks whether the tenant's first membership
/// refresh has ended.
const MEMBERSHIP_POLL: Duration = Duration::from_millis(200);

/// The membership index a refresh of `report` joins: `None` where it joins none, or
/// while unknown and only `groups` need it (their families wait for it). While the
/// exclusion membership is unknown the refresh fails instead (design.md: coverage never
/// silently includes an excluded user), keeping the last snapshot. At start a refresh
/// waits for the tenant's first membership refresh to end rather than fail at once.
async fn membership_for(
    tenant: &Tenant,
    report: ReportKind,
    store: &Store,
) -> Result<Option<Arc<Membership>>, GraphError> {
    let config = &tenant.config;
    if !report.is_registration_source()
        || (config.groups.is_empty() && config.exclude_groups.is_empty())
    {
        return Ok(None);
    }
    let membership = ReportKind::named("group_membership");
    let name = config.name.as_str();
    loop {
        let state = store.state(name, membership).unwrap_or_default();
        if let Some(snapshot) = &state.snapshot {
            return Ok(snapshot.data.membership());
        }
        if state.last_attempt.is_some() {
            break;
        }
        tokio::time::sleep(MEMBERSHIP_POLL).await;
    }
    if config.exclude_groups.is_empty() {
        return Ok(None);
    }
    Err(GraphError::Membership(format!(
        "the members of exclude_groups are not known yet (group_membership has not          succeeded; see its report_up and error): not publishing counts that could          include excluded users; {report} keeps its last snapshot"
    )))
}

/// Issue 14: the roles index a refresh of `report` joins: `None` where it joins none,
/// or while unknown (the `entra_privileged_*` families are then absent, not zero). At
/// start a registration refresh waits for the tenant's first roles refresh to end.
async fn privileged_for(
    tenant: &Tenant,
    report: ReportKind,
    store: &Store,
) -> Option<Arc<crate::privileged::Privileged>> {
    if !report.is_registration_source() || tenant.config.privileged_roles.is_empty() {
        return None;
    }
    let roles = ReportKind::named("privileged_roles");
    loop {
        let state = store.state(&tenant.config.name, roles).unwrap_or_default();
        if let Some(snapshot) = &state.snapshot {
            return snapshot.data.privileged();
        }
        if state.last_attempt.is_some() {
            return None;
        }
        tokio::time::sleep(MEMBERSHIP_POLL).await;
    }
}

/// First wait before restarting a poller that panicked; doubled per restart in a row.
const RESTART_BACKOFF_MIN: Duration = Duration::from_secs(1);
/// Longest wait before a restart.
const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(300);
/// A poller that ran this long before panicking starts the backoff over.
const RESTART_BACKOFF_RESET: Duration = Duration::from_secs(600);

/// Aborts the task when dropped, so aborting a supervisor stops what it supervises.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs the task `start(restarts)` makes until it returns; a panic is logged, recorded
/// as a failed refresh, counted, and the task restarted after a backoff (1 s doubling
/// to 5 min). Returns when the task returns or `shutdown` becomes true.
pub async fn supervise<F, Fut>(
    tenant: String,
    report: ReportKind,
    publisher: Publisher,
    mut shutdown: watch::Receiver<bool>,
    mut start: F,
) where
    F: FnMut(u64) -> Fut + Send,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut backoff = RESTART_BACKOFF_MIN;
    for restarts in 0.. {
        let began = Instant::now();
        let mut task = AbortOnDrop(tokio::spawn(start(restarts)));
        let panic = match (&mut task.0).await {
            Ok(()) => return,
            Err(e) if e.is_panic() => e.into_panic(),
            Err(_) => return,
        };
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_owned());
        if began.elapsed() >= RESTART_BACKOFF_RESET {
            backoff = RESTART_BACKOFF_MIN;
        }
        publisher
            .metrics
            .poller_restarts
            .get_or_create(&ReportLabels {
                tenant: tenant.clone(),
                report: report.name().to_owned(),
            })
            .inc();
        publisher.store.progress(&tenant, report).finish(false);
        publisher.failure(
            &tenant,
            report,
            format!("the poller panicked: {why}"),
            began.elapsed(),
        );
        tracing::error!(
            tenant, report = %report, panic = why, restart_in_s = backoff.as_secs_f64(),
            "the report's poller panicked (a bug); restarting it"
        );
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        backoff = (backoff * 2).min(RESTART_BACKOFF_MAX);
    }
}

/// One poller's schedule (see the module header).
#[derive(Debug, Clone, Copy)]
struct Schedule {
    /// When all pollers started.
    start: tokio::time::Instant,
    /// This poller's place among all of them, 0 ≤ slot < 1.
    slot: f64,
    interval: Duration,
}

/// Refreshes `kind` on `schedule` until `shutdown`; the first refresh after `first`
/// (from the schedule's start).
async fn poll(
    tenant: Arc<Tenant>,
    kind: ReportKind,
    schedule: Schedule,
    first: Duration,
    publisher: Publisher,
    mut shutdown: watch::Receiver<bool>,
) {
    let Schedule {
        start,
        slot,
        interval,
    } = schedule;
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
            _ = refresh(&tenant, kind, &publisher) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        // A refresh longer than the interval starts the next one at once, without a
        // burst of catch-up refreshes.
        next = next.max(tokio::time::Instant::now());
    }
}

/// Spawns a supervised poller per (tenant, report) into a [`JoinSet`]; they stop when
/// `shutdown` becomes true.
pub fn spawn_all(
    tenants: &[Arc<Tenant>],
    publisher: Publisher,
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
            let schedule = Schedule {
                start,
                slot: index as f64 / total as f64,
                interval: report.refresh_interval,
            };
            index += 1;
            let (kind, tenant) = (report.kind, tenant.clone());
            let (publisher, stop) = (publisher.clone(), shutdown.clone());
            set.spawn(supervise(
                tenant.config.name.clone(),
                kind,
                publisher.clone(),
                shutdown.clone(),
                move |restarts| {
                    // A restarted poller refreshes at once (the backoff was its wait).
                    let first = if restarts == 0 {
                        first_delay(schedule.slot, schedule.interval)
                    } else {
                        start.elapsed()
                    };
                    poll(
                        tenant.clone(),
                        kind,
                        schedule,
                        first,
                        publisher.clone(),
                        stop.clone(),
                    )
                },
            ));
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
            refresh_deadline(t, ReportKind::named("user_registration_details")),
            Duration::from_secs(6 * 3600)
        );
        assert_eq!(
            refresh_deadline(t, ReportKind::named("credential_usage_summary")),
            Duration::from_secs(3600)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_poller_is_restarted_counted_and_recorded() {
        let kind = ReportKind::named("user_registration_details");
        let publisher = Publisher {
            store: Arc::new(Store::new([("t".to_owned(), kind)])),
            metrics: ExporterMetrics::new(),
            snapshot_file: None,
        };
        let (_stop, shutdown) = watch::channel(false);
        let runs = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let seen = runs.clone();
        let began = tokio::time::Instant::now();
        supervise(
            "t".into(),
            kind,
            publisher.clone(),
            shutdown,
            move |restarts| {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async move {
                    if restarts < 3 {
                        panic!("bug number {restarts}");
                    }
                }
            },
        )
        .await;
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 4);
        // 1 s + 2 s + 4 s of backoff (paused time advances only through sleeps).
        assert_eq!(began.elapsed(), Duration::from_secs(7));
        let restarts = publisher
            .metrics
            .poller_restarts
            .get_or_create(&ReportLabels {
                tenant: "t".into(),
                report: kind.name().into(),
            })
            .get();
        assert_eq!(restarts, 3);
        let (_, state) = &publisher.store.states()[0];
        let attempt = state
            .last_attempt
            .as_ref()
            .expect("the panic is a failed attempt");
        assert!(!attempt.success);
        assert_eq!(
            attempt.error.as_deref(),
            Some("the poller panicked: bug number 2")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn aborting_the_supervisor_stops_the_poller() {
        let kind = ReportKind::named("user_registration_details");
        let publisher = Publisher {
            store: Arc::new(Store::default()),
            metrics: ExporterMetrics::new(),
            snapshot_file: None,
        };
        let (_stop, shutdown) = watch::channel(false);
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        let supervisor = tokio::spawn(supervise(
            "t".into(),
            kind,
            publisher,
            shutdown,
            move |_| {
                let tx = tx.clone();
                async move {
                    // Holds the sender until aborted.
                    let _held = tx;
                    std::future::pending::<()>().await;
                }
            },
        ));
        tokio::task::yield_now().await;
        supervisor.abort();
        let _ = supervisor.await;
        // Every sender dropped: the supervised task is gone too.
        assert!(rx.recv().await.is_none());
    }
}
