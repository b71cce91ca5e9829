//! The last good snapshot of every (tenant, report), and their `entra_*` families,
//! written at scrape time ([`Store::write`]).
//!
//! A refresh replaces a report's snapshot whole, so label sets that vanish upstream
//! vanish here; a failed refresh leaves the snapshot alone and records the failure.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::body::Body;
use crate::families::{Families, Family, unix_seconds};
use crate::reports::{ReportData, ReportKind, family_order};

/// One complete, successful refresh.
#[derive(Debug)]
pub struct Snapshot {
    /// The counts, as the report's module made them.
    pub data: Box<dyn ReportData>,
    /// Rows read.
    pub records: u64,
    /// When the refresh completed.
    pub finished_at: SystemTime,
}

/// The outcome of the latest refresh attempt.
#[derive(Debug, Clone)]
pub struct LastAttempt {
    /// Whether it published.
    pub success: bool,
    /// How long it took.
    pub duration: Duration,
    /// When it ended.
    pub finished_at: SystemTime,
    /// Why it failed.
    pub error: Option<String>,
}

/// The progress of one (tenant, report)'s running refresh: updated per page through
/// atomics, so a walk of a thousand pages never takes the store's lock, and read by
/// `/metrics` (`entra_exporter_refresh_pages`) and the landing page.
#[derive(Debug, Default)]
pub struct Progress {
    /// Unix time in ms the running refresh started; 0 when idle.
    started_ms: AtomicU64,
    /// Pages fetched so far by the running refresh.
    pages: AtomicU64,
    /// Pages of the last successful refresh; 0 before the first.
    last_pages: AtomicU64,
}

/// A refresh under way, as [`Progress::running`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Running {
    /// When it started.
    pub started: SystemTime,
    /// Pages fetched so far.
    pub pages: u64,
    /// Pages the last successful refresh took, the best guess of this one's total.
    pub expected: Option<u64>,
}

impl Progress {
    /// A refresh starts now.
    pub fn start(&self) {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_millis() as u64);
        self.pages.store(0, Ordering::Relaxed);
        self.started_ms.store(ms.max(1), Ordering::Relaxed);
    }

    /// The running refresh fetched one more page.
    pub fn page(&self) {
        self.pages.fetch_add(1, Ordering::Relaxed);
    }

    /// The running refresh ended; a success's page count is the next one's estimate.
    pub fn finish(&self, success: bool) {
        if success {
            self.last_pages
                .store(self.pages.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        self.started_ms.store(0, Ordering::Relaxed);
        self.pages.store(0, Ordering::Relaxed);
    }

    /// Pages fetched so far by the running refresh (0 when idle).
    pub fn pages(&self) -> u64 {
        if self.started_ms.load(Ordering::Relaxed) == 0 {
            0
        } else {
            self.pages.load(Ordering::Relaxed)
        }
    }

    /// The running refresh, if one is.
    pub fn running(&self) -> Option<Running> {
        let ms = self.started_ms.load(Ordering::Relaxed);
        (ms != 0).then(|| Running {
            started: UNIX_EPOCH + Duration::from_millis(ms),
            pages: self.pages.load(Ordering::Relaxed),
            expected: Some(self.last_pages.load(Ordering::Relaxed)).filter(|n| *n > 0),
        })
    }
}

impl Running {
    /// Time left at the pace so far (pages per second since the start), when the total
    /// can be guessed (the last success's pages) and this refresh has fetched a page.
    pub fn time_left(&self, now: SystemTime) -> Option<Duration> {
        let expected = self.expected?;
        let elapsed = now.duration_since(self.started).ok()?;
        if self.pages == 0 || elapsed.is_zero() {
            return None;
        }
        let left = expected.saturating_sub(self.pages);
        Some(elapsed.mul_f64(left as f64 / self.pages as f64))
    }
}

/// Everything known about one (tenant, report).
#[derive(Debug, Clone, Default)]
pub struct ReportState {
    /// The running refresh's progress.
    pub progress: Arc<Progress>,
    /// The last good snapshot.
    pub snapshot: Option<Arc<Snapshot>>,
    /// The latest attempt, successful or not.
    pub last_attempt: Option<LastAttempt>,
}

/// `(tenant, report)`.
pub type Key = (String, ReportKind);

/// The snapshot store, shared by the pollers (writers) and the server (reader).
#[derive(Debug, Default)]
pub struct Store {
    entries: RwLock<BTreeMap<Key, ReportState>>,
    /// Bumped by every change, so readers (the `/metrics` cache) can tell when to
    /// re-encode.
    generation: AtomicU64,
}

impl Store {
    /// A store expecting `keys`: `/-/ready` waits for each to finish one attempt.
    pub fn new(keys: impl IntoIterator<Item = Key>) -> Self {
        Self {
            entries: RwLock::new(
                keys.into_iter()
                    .map(|k| (k, ReportState::default()))
                    .collect(),
            ),
            ..Self::default()
        }
    }

    /// Counts changes: differs whenever a snapshot or an attempt was recorded since.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Installs a snapshot restored from the snapshot file, unless a refresh already
    /// published one. It keeps its original completion time; no attempt is recorded.
    pub fn restore(&self, tenant: &str, report: ReportKind, snapshot: Snapshot) -> bool {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        let state = entries.entry((tenant.to_owned(), report)).or_default();
        if state.snapshot.is_some() {
            return false;
        }
        state.snapshot = Some(Arc::new(snapshot));
        self.generation.fetch_add(1, Ordering::AcqRel);
        true
    }

    /// The state of one (tenant, report), if the store knows it.
    pub fn state(&self, tenant: &str, report: ReportKind) -> Option<ReportState> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.get(&(tenant.to_owned(), report)).cloned()
    }

    /// The current snapshot of every (tenant, report) that has one.
    pub fn snapshots(&self) -> Vec<(Key, Arc<Snapshot>)> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .filter_map(|(k, s)| Some((k.clone(), s.snapshot.clone()?)))
            .collect()
    }

    /// Publishes a successful refresh, replacing the previous snapshot whole.
    pub fn publish(
        &self,
        tenant: &str,
        report: ReportKind,
        snapshot: Snapshot,
        duration: Duration,
    ) {
        let finished_at = snapshot.finished_at;
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        let state = entries.entry((tenant.to_owned(), report)).or_default();
        state.snapshot = Some(Arc::new(snapshot));
        state.last_attempt = Some(LastAttempt {
            success: true,
            duration,
            finished_at,
            error: None,
        });
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Records a failed refresh; the last good snapshot stays published.
    pub fn record_failure(
        &self,
        tenant: &str,
        report: ReportKind,
        error: String,
        duration: Duration,
    ) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        let state = entries.entry((tenant.to_owned(), report)).or_default();
        state.last_attempt = Some(LastAttempt {
            success: false,
            duration,
            finished_at: SystemTime::now(),
            error: Some(error),
        });
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether every expected (tenant, report) finished at least one attempt or has a
    /// snapshot.
    pub fn ready(&self) -> bool {
        self.pending() == 0
    }

    /// How many (tenant, report) have neither an attempt nor a snapshot yet.
    pub fn pending(&self) -> usize {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .values()
            .filter(|s| s.snapshot.is_none() && s.last_attempt.is_none())
            .count()
    }

    /// The progress handle of (`tenant`, `report`), made on first use.
    pub fn progress(&self, tenant: &str, report: ReportKind) -> Arc<Progress> {
        let key = (tenant.to_owned(), report);
        if let Some(s) = self
            .entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return s.progress.clone();
        }
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        entries.entry(key).or_default().progress.clone()
    }

    /// A copy of every state, for the landing page and tests.
    pub fn states(&self) -> Vec<(Key, ReportState)> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

static UP: Family = Family::gauge(
    "entra_exporter_report_up",
    "1 if the last refresh of the report succeeded, 0 if it failed (the last good snapshot stays exported).",
);
static LAST_SUCCESS: Family = Family::gauge(
    "entra_exporter_report_last_success_timestamp_seconds",
    "Unix time the exported snapshot of the report was completed.",
);
static DURATION: Family = Family::gauge(
    "entra_exporter_report_duration_seconds",
    "Duration of the last refresh of the report, successful or not.",
);
static RECORDS: Family = Family::gauge(
    "entra_exporter_report_records",
    "Rows read in the last successful refresh of the report.",
);
static REFRESH_PAGES: Family = Family::gauge(
    "entra_exporter_refresh_pages",
    "Pages fetched so far by the running refresh of the report (0 when idle).",
);

impl Store {
    /// Writes the families of every snapshot into `body`: the reports' families first,
    /// then the store's own about each report.
    pub fn write(&self, body: &mut Body) {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let own = [&UP, &LAST_SUCCESS, &DURATION, &RECORDS, &REFRESH_PAGES];
        let mut out = Families::for_body(body, family_order().chain(own));
        let [up, last_success, duration, records, pages] = own.map(|f| out.id(f));
        for ((tenant, report), state) in entries.iter() {
            let base = || vec![("tenant", tenant.as_str()), ("report", report.name())];
            out.push(pages, base(), state.progress.pages());
            if let Some(a) = &state.last_attempt {
                out.push(up, base(), u64::from(a.success));
                out.push(duration, base(), a.duration.as_secs_f64());
            }
            let Some(snap) = &state.snapshot else {
                continue;
            };
            out.push(last_success, base(), unix_seconds(snap.finished_at));
            out.push(records, base(), snap.records);
            snap.data.encode(tenant, &mut out);
        }
        drop(entries);
        out.append_to(body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{RegistrationCounts, Source, UserFacts};
    use std::time::UNIX_EPOCH;

    /// The store's families as the exposition shows them after an empty registry.
    fn encode(store: &Arc<Store>) -> String {
        let mut body = Body::text(0);
        store.write(&mut body);
        body.into_text() + "# EOF\n"
    }

    #[test]
    fn exact_exposition_with_zero_fill() {
        let mut counts = RegistrationCounts::new(Source::CredentialUserRegistrationDetails);
        let facts = UserFacts {
            features: [true, false, true, false, false, false, false],
            ..UserFacts::default()
        };
        counts.add_user(&facts, ["email", "fido"]);
        counts.add_user(&UserFacts::default(), []);
        let store = Arc::new(Store::new([(
            "t".to_owned(),
            ReportKind::named("credential_user_registration_details"),
        )]));
        assert!(!store.ready());
        let finished_at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        store.publish(
            "t",
            ReportKind::named("credential_user_registration_details"),
            Snapshot {
                data: Box::new(counts),
                records: 2,
                finished_at,
            },
            Duration::from_millis(1500),
        );
        assert!(store.ready());
        let text = encode(&store);
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        let g = "tenant=\"t\",user_type=\"unknown\",role=\"unknown\"";
        let r = "tenant=\"t\",report=\"credential_user_registration_details\"";
        let expected = vec![
            format!("entra_users{{{g}}} 2"),
            format!("entra_users_with_feature{{{g},feature=\"mfa_registered\"}} 1"),
            format!("entra_users_with_feature{{{g},feature=\"sspr_registered\"}} 1"),
            format!("entra_users_with_feature{{{g},feature=\"sspr_enabled\"}} 0"),
            format!("entra_users_with_feature{{{g},feature=\"sspr_capable\"}} 0"),
            format!("entra_users_with_method{{{g},method=\"email\"}} 1"),
            format!("entra_users_with_method{{{g},method=\"fido\"}} 1"),
            format!("entra_users_by_registered_methods{{{g},methods=\"0\"}} 1"),
            format!("entra_users_by_registered_methods{{{g},methods=\"1\"}} 0"),
            format!("entra_users_by_registered_methods{{{g},methods=\"2\"}} 1"),
            format!("entra_users_by_registered_methods{{{g},methods=\"3\"}} 0"),
            format!("entra_users_by_registered_methods{{{g},methods=\"4\"}} 0"),
            format!("entra_users_by_registered_methods{{{g},methods=\"5+\"}} 0"),
            format!("entra_exporter_report_up{{{r}}} 1"),
            format!("entra_exporter_report_last_success_timestamp_seconds{{{r}}} 1700000000.0"),
            format!("entra_exporter_report_duration_seconds{{{r}}} 1.5"),
            format!("entra_exporter_report_records{{{r}}} 2"),
            format!("entra_exporter_refresh_pages{{{r}}} 0"),
        ];
        assert_eq!(samples, expected, "{text}");
        assert!(text.contains("# TYPE entra_users gauge\n"));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn failure_keeps_snapshot_and_sets_up_to_zero() {
        let store = Arc::new(Store::new([(
            "t".to_owned(),
            ReportKind::named("user_registration_details"),
        )]));
        let mut counts = RegistrationCounts::new(Source::UserRegistrationDetails);
        counts.add_user(
            &UserFacts {
                user_type: Some("member"),
                is_admin: Some(false),
                ..UserFacts::default()
            },
            [],
        );
        let finished_at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let snap = Snapshot {
            data: Box::new(counts),
            records: 1,
            finished_at,
        };
        store.publish(
            "t",
            ReportKind::named("user_registration_details"),
            snap,
            Duration::from_secs(1),
        );
        store.record_failure(
            "t",
            ReportKind::named("user_registration_details"),
            "boom".into(),
            Duration::from_secs(2),
        );
        let text = encode(&store);
        assert!(
            text.contains("entra_users{tenant=\"t\",user_type=\"member\",role=\"user\"} 1\n"),
            "{text}"
        );
        assert!(text.contains(
            "entra_exporter_report_up{tenant=\"t\",report=\"user_registration_details\"} 0\n"
        ));
        assert!(text.contains("entra_exporter_report_last_success_timestamp_seconds{tenant=\"t\",report=\"user_registration_details\"} 1700000000.0\n"));
        assert!(text.contains("entra_users_by_preferred_method{tenant=\"t\",user_type=\"member\",role=\"user\",method=\"none\"} 1\n"), "{text}");
    }

    #[test]
    fn family_reports_encode_their_families() {
        use crate::reports::credential_usage_summary::{UsageActivities, UsageActivityCounts};
        use crate::reports::credential_user_registration_count::RegistrationStatusCounts;
        use crate::reports::user_credential_usage_details::{UsageEventCounts, UsageEvents};
        use crate::reports::users_registered_by::{Summary, SummaryCounts, SummaryData};
        use crate::reports::{users_registered_by_feature, users_registered_by_method};
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let store = Arc::new(Store::default());
        let publish = |report: &str, data: Box<dyn ReportData>| {
            store.publish(
                "t",
                ReportKind::named(report),
                Snapshot {
                    data,
                    records: 1,
                    finished_at: at,
                },
                Duration::from_secs(1),
            )
        };
        let s = |v: &str| v.to_owned();
        publish(
            "credential_user_registration_count",
            Box::new(RegistrationStatusCounts {
                total_users: 10,
                statuses: [(s("mfa_registered"), 4)].into(),
            }),
        );
        publish(
            "credential_usage_summary",
            Box::new(UsageActivities {
                period: s("D7"),
                counts: UsageActivityCounts {
                    activities: [((s("reset"), s("email")), (3, 1))].into(),
                },
            }),
        );
        publish(
            "user_events_summary",
            Box::new(UsageEvents {
                source: "user_events_summary",
                counts: UsageEventCounts {
                    events: [((s("reset"), s("email"), s("failure")), 2)].into(),
                    last_event: [((s("reset"), s("failure")), 1.5)].into(),
                    undated: 0,
                },
            }),
        );
        let summary = |k: &str, total| SummaryCounts {
            summaries: [(
                (s("member"), s("admin")),
                Summary {
                    total_users: total,
                    counts: [(s(k), 5)].into(),
                },
            )]
            .into(),
        };
        let feature = &users_registered_by_feature::REPORT;
        publish(
            feature.name,
            Box::new(SummaryData {
                report: feature.name,
                family: feature.families[1],
                key: feature.key,
                counts: summary("mfa_capable", Some(9)),
            }),
        );
        let method = &users_registered_by_method::REPORT;
        publish(
            method.name,
            Box::new(SummaryData {
                report: method.name,
                family: method.families[1],
                key: method.key,
                counts: summary("password", None),
            }),
        );
        let text = encode(&store);
        let samples: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("entra_exporter_"))
            .collect();
        let pair = "tenant=\"t\",user_types=\"member\",user_roles=\"admin\"";
        assert_eq!(
            samples,
            vec![
                "entra_credential_registration_users{tenant=\"t\",status=\"mfa_registered\"} 4".to_owned(),
                "entra_credential_registration_total_users{tenant=\"t\"} 10".to_owned(),
                "entra_credential_usage_activities{tenant=\"t\",period=\"D7\",feature=\"reset\",method=\"email\",result=\"success\"} 3".to_owned(),
                "entra_credential_usage_activities{tenant=\"t\",period=\"D7\",feature=\"reset\",method=\"email\",result=\"failure\"} 1".to_owned(),
                "entra_credential_usage_events{tenant=\"t\",source=\"user_events_summary\",feature=\"reset\",method=\"email\",result=\"failure\"} 2".to_owned(),
                "entra_credential_usage_last_event_timestamp_seconds{tenant=\"t\",source=\"user_events_summary\",feature=\"reset\",result=\"failure\"} 1.5".to_owned(),
                "entra_reported_users{tenant=\"t\",report=\"users_registered_by_feature\",user_types=\"member\",user_roles=\"admin\"} 9".to_owned(),
                format!("entra_reported_users_with_feature{{{pair},feature=\"mfa_capable\"}} 5"),
                format!("entra_reported_users_with_method{{{pair},method=\"password\"}} 5"),
            ],
            "{text}"
        );
        // Families nothing feeds are left out, not sent bare.
        assert!(!text.contains("# TYPE entra_users "), "{text}");
    }

    #[test]
    fn refresh_pages_count_while_running_and_are_zero_when_idle() {
        let urd = ReportKind::named("user_registration_details");
        let store = Arc::new(Store::new([("t".to_owned(), urd)]));
        let line = |n: u64| {
            format!(
                "entra_exporter_refresh_pages{{tenant=\"t\",report=\"user_registration_details\"}} {n}\n"
            )
        };
        assert!(encode(&store).contains(&line(0)));
        let progress = store.progress("t", urd);
        assert!(progress.running().is_none());
        progress.start();
        for _ in 0..3 {
            progress.page();
        }
        assert!(encode(&store).contains(&line(3)), "{}", encode(&store));
        let running = store.states()[0].1.progress.running().unwrap();
        assert_eq!((running.pages, running.expected), (3, None));
        progress.finish(true);
        assert!(encode(&store).contains(&line(0)));
        // The next refresh aims at the last success's pages; a failure keeps that aim.
        progress.start();
        progress.page();
        assert_eq!(progress.running().unwrap().expected, Some(3));
        progress.finish(false);
        progress.start();
        assert_eq!(progress.running().unwrap().expected, Some(3));
    }

    #[test]
    fn time_left_follows_the_pace_so_far() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let r = Running {
            started: t0,
            pages: 100,
            expected: Some(400),
        };
        let at = |s| t0 + Duration::from_secs(s);
        assert_eq!(r.time_left(at(50)), Some(Duration::from_secs(150)));
        // Past the last total: nothing left to estimate but zero.
        let over = Running { pages: 500, ..r };
        assert_eq!(over.time_left(at(50)), Some(Duration::ZERO));
        assert_eq!(Running { pages: 0, ..r }.time_left(at(50)), None);
        assert_eq!(
            Running {
                expected: None,
                ..r
            }
            .time_left(at(50)),
            None
        );
        assert_eq!(r.time_left(t0), None);
    }
}
