//! The last good snapshot of every (tenant, report), and the prometheus-client
//! [`Collector`] that turns them into the `entra_*` families at scrape time.
//!
//! A refresh replaces a report's snapshot whole, so label sets that vanish upstream
//! vanish here; a failed refresh leaves the snapshot alone and records the failure.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::aggregate::{METHOD_COUNT_BUCKETS, RegistrationCounts};
use crate::reports::ReportKind;
use crate::reports::credential_usage_summary::UsageActivityCounts;
use crate::reports::credential_user_registration_count::RegistrationStatusCounts;
use crate::reports::user_credential_usage_details::UsageEventCounts;
use crate::reports::users_registered_by::SummaryCounts;

/// What a report's refresh produced. Serializable so `--storage.snapshot-file` can keep
/// it across restarts: a new variant needs only its data to derive `Serialize` and
/// `Deserialize` (`crate::util::map_as_pairs` for maps with non-string keys).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum ReportData {
    /// Per-user registration counts (either registration source).
    Registration(RegistrationCounts),
    /// `credential_user_registration_count`.
    RegistrationStatus(RegistrationStatusCounts),
    /// `credential_usage_summary` over `period` (as configured: `D1`, `D7`, `D30`).
    UsageActivities {
        /// The `period` label.
        period: String,
        /// The counts.
        counts: UsageActivityCounts,
    },
    /// `user_credential_usage_details` or `user_events_summary` (the report is the
    /// `source` label).
    UsageEvents(UsageEventCounts),
    /// `users_registered_by_feature` or `users_registered_by_method`.
    Summary(SummaryCounts),
}

/// One complete, successful refresh.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The counts.
    pub data: ReportData,
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

/// Everything known about one (tenant, report).
#[derive(Debug, Clone, Default)]
pub struct ReportState {
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
    /// Where successful refreshes are persisted (`--storage.snapshot-file`).
    snapshot_file: OnceLock<Arc<crate::snapshot_file::SnapshotFile>>,
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

    /// Persists every successful refresh to `file` from now on.
    pub fn persist_to(&self, file: Arc<crate::snapshot_file::SnapshotFile>) {
        let _ = self.snapshot_file.set(file);
    }

    /// Writes the snapshots to the snapshot file, if one is configured (after a
    /// successful refresh). A failure is logged: the exporter keeps serving.
    pub async fn persist(&self) {
        if let Some(file) = self.snapshot_file.get() {
            file.save(self).await;
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

    /// A copy of every state, for the landing page and tests.
    pub fn states(&self) -> Vec<(Key, ReportState)> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Encodes a [`Store`] at scrape time.
#[derive(Debug, Clone)]
pub struct StoreCollector(pub Arc<Store>);

type Labels<'a> = Vec<(&'static str, &'a str)>;

/// One gauge family being built.
struct GaugeFamily<'a> {
    name: &'static str,
    help: &'static str,
    samples: Vec<(Labels<'a>, Value)>,
}

/// Counts print as integers, times and durations as floats.
#[derive(Clone, Copy)]
enum Value {
    Int(u64),
    Float(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Self::Int(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Self::Float(v)
    }
}

impl<'a> GaugeFamily<'a> {
    fn new(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            help,
            samples: Vec::new(),
        }
    }

    fn push(&mut self, labels: Labels<'a>, value: impl Into<Value>) {
        self.samples.push((labels, value.into()));
    }

    fn encode(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // A family no configured report feeds is left out rather than sent bare.
        if self.samples.is_empty() {
            return Ok(());
        }
        let mut metric =
            encoder.encode_descriptor(self.name, self.help, None, MetricType::Gauge)?;
        for (labels, value) in &self.samples {
            let family = metric.encode_family(labels)?;
            match *value {
                // Gauges encode i64; no count here comes near 2^63.
                Value::Int(v) => {
                    ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX)).encode(family)?
                }
                Value::Float(v) => ConstGauge::new(v).encode(family)?,
            }
        }
        Ok(())
    }
}

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Collector for StoreCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let entries = self.0.entries.read().unwrap_or_else(|e| e.into_inner());

        let mut users = GaugeFamily::new(
            "entra_users",
            "Users in the registration report, by user type and admin role.",
        );
        let mut with_feature = GaugeFamily::new(
            "entra_users_with_feature",
            "Users for whom the feature holds (MFA/SSPR registered, enabled or capable; passwordless capable; system-preferred MFA enabled).",
        );
        let mut with_method = GaugeFamily::new(
            "entra_users_with_method",
            "Users with the authentication method registered (method as Graph names it).",
        );
        let mut preferred = GaugeFamily::new(
            "entra_users_by_preferred_method",
            "Users by preferred secondary authentication method (`none` when unset).",
        );
        let mut by_count = GaugeFamily::new(
            "entra_users_by_registered_methods",
            "Users by number of distinct registered authentication methods (0-4, 5+).",
        );
        let mut admins = GaugeFamily::new(
            "entra_admin_without_mfa_info",
            "1 per admin (any Entra admin role) who is not MFA capable; opt-in per tenant (admins_without_mfa), at most max_listed_admins.",
        );
        let mut status_users = GaugeFamily::new(
            "entra_credential_registration_users",
            "Users per registration status (getCredentialUserRegistrationCount).",
        );
        let mut status_total = GaugeFamily::new(
            "entra_credential_registration_total_users",
            "Enabled users counted by getCredentialUserRegistrationCount.",
        );
        let mut activities = GaugeFamily::new(
            "entra_credential_usage_activities",
            "Registration and reset activities over the period, by feature, method and result (getCredentialUsageSummary).",
        );
        let mut events = GaugeFamily::new(
            "entra_credential_usage_events",
            "Registration and reset events the report returned, by feature, method and result.",
        );
        let mut last_event = GaugeFamily::new(
            "entra_credential_usage_last_event_timestamp_seconds",
            "Unix time of the newest registration or reset event the report returned, by feature and result.",
        );
        let mut summary_users = GaugeFamily::new(
            "entra_summary_users",
            "Users matching the queried user types and roles (usersRegisteredByFeature / usersRegisteredByMethod).",
        );
        let mut summary_features = GaugeFamily::new(
            "entra_summary_users_with_feature",
            "Users for whom the feature holds, per queried user types and roles (usersRegisteredByFeature).",
        );
        let mut summary_methods = GaugeFamily::new(
            "entra_summary_users_with_method",
            "Users with the method registered, per queried user types and roles (usersRegisteredByMethod).",
        );
        let mut up = GaugeFamily::new(
            "entra_exporter_report_up",
            "1 if the last refresh of the report succeeded, 0 if it failed (the last good snapshot stays exported).",
        );
        let mut last_success = GaugeFamily::new(
            "entra_exporter_report_last_success_timestamp_seconds",
            "Unix time the exported snapshot of the report was completed.",
        );
        let mut duration = GaugeFamily::new(
            "entra_exporter_report_duration_seconds",
            "Duration of the last refresh of the report, successful or not.",
        );
        let mut records = GaugeFamily::new(
            "entra_exporter_report_records",
            "Rows read in the last successful refresh of the report.",
        );

        for ((tenant, report), state) in entries.iter() {
            let base = || vec![("tenant", tenant.as_str()), ("report", report.name())];
            if let Some(a) = &state.last_attempt {
                up.push(base(), u64::from(a.success));
                duration.push(base(), a.duration.as_secs_f64());
            }
            let Some(snap) = &state.snapshot else {
                continue;
            };
            last_success.push(base(), unix_seconds(snap.finished_at));
            records.push(base(), snap.records);
            match &snap.data {
                ReportData::Registration(counts) => {
                    let methods = counts.all_methods();
                    let preferred_labels = counts.all_preferred();
                    for ((user_type, role), g) in &counts.groups {
                        let group = [
                            ("tenant", tenant.as_str()),
                            ("user_type", user_type.label()),
                            ("role", role.label()),
                        ];
                        let with = |key: &'static str, value| {
                            let mut l = group.to_vec();
                            l.push((key, value));
                            l
                        };
                        users.push(group.to_vec(), g.users);
                        for f in counts.source.features() {
                            with_feature.push(with("feature", f.label()), g.feature(*f));
                        }
                        for &m in &methods {
                            with_method.push(with("method", m), *g.methods.get(m).unwrap_or(&0));
                        }
                        if counts.source.has_preferred_method() {
                            for &p in &preferred_labels {
                                preferred
                                    .push(with("method", p), *g.preferred.get(p).unwrap_or(&0));
                            }
                        }
                        for (bucket, n) in METHOD_COUNT_BUCKETS.iter().zip(g.method_counts) {
                            by_count.push(with("methods", bucket), n);
                        }
                    }
                    for upn in counts.admins_without_mfa.iter().flat_map(|a| &a.listed) {
                        admins.push(
                            vec![("tenant", tenant.as_str()), ("user_principal_name", upn)],
                            1u64,
                        );
                    }
                }
                ReportData::RegistrationStatus(c) => {
                    status_total.push(vec![("tenant", tenant.as_str())], c.total_users);
                    for (status, n) in &c.statuses {
                        status_users
                            .push(vec![("tenant", tenant.as_str()), ("status", status)], *n);
                    }
                }
                ReportData::UsageActivities { period, counts } => {
                    for ((feature, method), (ok, failed)) in &counts.activities {
                        for (result, n) in [("success", *ok), ("failure", *failed)] {
                            activities.push(
                                vec![
                                    ("tenant", tenant.as_str()),
                                    ("period", period),
                                    ("feature", feature),
                                    ("method", method),
                                    ("result", result),
                                ],
                                n,
                            );
                        }
                    }
                }
                ReportData::UsageEvents(c) => {
                    let source = report.name();
                    for ((feature, method, result), n) in &c.events {
                        events.push(
                            vec![
                                ("tenant", tenant.as_str()),
                                ("source", source),
                                ("feature", feature),
                                ("method", method),
                                ("result", result),
                            ],
                            *n,
                        );
                    }
                    for ((feature, result), t) in &c.last_event {
                        last_event.push(
                            vec![
                                ("tenant", tenant.as_str()),
                                ("source", source),
                                ("feature", feature),
                                ("result", result),
                            ],
                            *t,
                        );
                    }
                }
                ReportData::Summary(c) => {
                    let (family, key) = if *report == ReportKind::UsersRegisteredByMethod {
                        (&mut summary_methods, "method")
                    } else {
                        (&mut summary_features, "feature")
                    };
                    for ((types, roles), s) in &c.summaries {
                        let pair = [
                            ("tenant", tenant.as_str()),
                            ("user_types", types.as_str()),
                            ("user_roles", roles.as_str()),
                        ];
                        if let Some(total) = s.total_users {
                            summary_users.push(
                                vec![
                                    ("tenant", tenant.as_str()),
                                    ("report", report.name()),
                                    ("user_types", types),
                                    ("user_roles", roles),
                                ],
                                total,
                            );
                        }
                        for (name, n) in &s.counts {
                            let mut labels = pair.to_vec();
                            labels.push((key, name));
                            family.push(labels, *n);
                        }
                    }
                }
            }
        }
        for family in [
            &users,
            &with_feature,
            &with_method,
            &preferred,
            &by_count,
            &admins,
            &status_users,
            &status_total,
            &activities,
            &events,
            &last_event,
            &summary_users,
            &summary_features,
            &summary_methods,
            &up,
            &last_success,
            &duration,
            &records,
        ] {
            family.encode(&mut encoder)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{Source, UserFacts};
    use prometheus_client::registry::Registry;

    fn encode(store: &Arc<Store>) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(StoreCollector(store.clone())));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        out
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
            ReportKind::CredentialUserRegistrationDetails,
        )]));
        assert!(!store.ready());
        let finished_at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        store.publish(
            "t",
            ReportKind::CredentialUserRegistrationDetails,
            Snapshot {
                data: ReportData::Registration(counts),
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
        ];
        assert_eq!(samples, expected, "{text}");
        assert!(text.contains("# TYPE entra_users gauge\n"));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn failure_keeps_snapshot_and_sets_up_to_zero() {
        let store = Arc::new(Store::new([(
            "t".to_owned(),
            ReportKind::UserRegistrationDetails,
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
            data: ReportData::Registration(counts),
            records: 1,
            finished_at,
        };
        store.publish(
            "t",
            ReportKind::UserRegistrationDetails,
            snap,
            Duration::from_secs(1),
        );
        store.record_failure(
            "t",
            ReportKind::UserRegistrationDetails,
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
        use crate::reports::credential_usage_summary::UsageActivityCounts;
        use crate::reports::users_registered_by::Summary;
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let store = Arc::new(Store::default());
        let publish = |report, data| {
            store.publish(
                "t",
                report,
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
            ReportKind::CredentialUserRegistrationCount,
            ReportData::RegistrationStatus(RegistrationStatusCounts {
                total_users: 10,
                statuses: [(s("mfa_registered"), 4)].into(),
            }),
        );
        publish(
            ReportKind::CredentialUsageSummary,
            ReportData::UsageActivities {
                period: s("D7"),
                counts: UsageActivityCounts {
                    activities: [((s("reset"), s("email")), (3, 1))].into(),
                },
            },
        );
        publish(
            ReportKind::UserEventsSummary,
            ReportData::UsageEvents(UsageEventCounts {
                events: [((s("reset"), s("email"), s("failure")), 2)].into(),
                last_event: [((s("reset"), s("failure")), 1.5)].into(),
                undated: 0,
            }),
        );
        let summary = |k: &str, total| {
            ReportData::Summary(SummaryCounts {
                summaries: [(
                    (s("member"), s("admin")),
                    Summary {
                        total_users: total,
                        counts: [(s(k), 5)].into(),
                    },
                )]
                .into(),
            })
        };
        publish(
            ReportKind::UsersRegisteredByFeature,
            summary("mfa_capable", Some(9)),
        );
        publish(
            ReportKind::UsersRegisteredByMethod,
            summary("password", None),
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
                "entra_summary_users{tenant=\"t\",report=\"users_registered_by_feature\",user_types=\"member\",user_roles=\"admin\"} 9".to_owned(),
                format!("entra_summary_users_with_feature{{{pair},feature=\"mfa_capable\"}} 5"),
                format!("entra_summary_users_with_method{{{pair},method=\"password\"}} 5"),
            ],
            "{text}"
        );
        // Families nothing feeds are left out, not sent bare.
        assert!(!text.contains("# TYPE entra_users "), "{text}");
    }
}
