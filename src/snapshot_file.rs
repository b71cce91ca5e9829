//! `--storage.snapshot-file`: the last good snapshot of every report, written atomically
//! after each successful refresh and restored at start, so a restart does not blank the
//! metrics for the length of a refresh (design.md). Restored series keep their original
//! last-success time.
//!
//! The file is JSON. Each entry names its tenant, report and the tenant's identity
//! (tenant id, Graph root and the report's shaping settings): an entry the running config does not have, under that
//! identity, is from another config and is ignored with a warning, as is a corrupt or
//! unreadable file. Each report's module stores and restores its own data
//! ([`crate::reports::ReportData::store`], [`crate::reports::Report::restore`]), so a
//! new report persists without code here.
//!
//! Whoever publishes a snapshot hands the store to [`SnapshotFile::save`] (the poller);
//! the store itself does no I/O.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::atomic_file::write_atomically;
use crate::config::{Config, TenantConfig};
use crate::reports::ReportKind;
use crate::snapshot::{Key, Snapshot, Store};

/// Bumped when the layout changes incompatibly; other versions are ignored.
const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct File {
    format: u32,
    /// The exporter version that wrote it (for people reading the file).
    written_by: String,
    entries: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    tenant: String,
    report: String,
    /// Tenant id, Graph root and the report's settings: the same tenant name pointed
    /// elsewhere, or a report now configured differently, is not restored.
    identity: String,
    records: u64,
    /// Nanoseconds since the Unix epoch: exact, so the restored last-success time is the
    /// original to the nanosecond.
    finished_at_unix_nanos: u64,
    /// [`ReportData`] as its serde derive writes it; parsed per entry, so one entry in an
    /// unknown shape costs only itself.
    data: serde_json::Value,
}

/// The snapshot file of a running exporter.
#[derive(Debug)]
pub struct SnapshotFile {
    path: PathBuf,
    identities: BTreeMap<Key, String>,
    /// Serializes saves: each writes the store as it is when its turn comes, so an
    /// older state never overwrites a newer one.
    lock: tokio::sync::Mutex<()>,
}

/// What [`SnapshotFile::restore`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Restored {
    /// Snapshots installed in the store.
    pub restored: usize,
    /// Entries ignored: another config's, or unreadable.
    pub ignored: usize,
}

/// What makes a persisted snapshot this config's: the tenant and Graph root, and the
/// settings that shape the report's data (its period, summary pairs, admin list).
fn identity(t: &TenantConfig, kind: ReportKind) -> String {
    let id = format!("{}|{}", t.tenant_id.to_ascii_lowercase(), t.graph_url);
    match kind.identity(&t.report_settings()) {
        shaping if shaping.is_empty() => id,
        shaping => format!("{id}|{shaping}"),
    }
}

impl SnapshotFile {
    /// The file at `path` for the (tenant, report) pairs of `config`.
    pub fn new(path: &Path, config: &Config) -> Self {
        let identities = config
            .tenants
            .iter()
            .flat_map(|t| {
                t.reports
                    .iter()
                    .map(move |r| ((t.name.clone(), r.kind), identity(t, r.kind)))
            })
            .collect();
        Self {
            path: path.to_owned(),
            identities,
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Installs the persisted snapshots that belong to this config into `store`. A
    /// missing file is normal (first start); a corrupt one or one from another config is
    /// ignored with a warning. Never fails: the exporter then starts empty.
    pub fn restore(&self, store: &Store) -> Restored {
        let path = self.path.display().to_string();
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::info!(path, "no snapshot file yet; starting empty");
                return Restored::default();
            }
            Err(e) => {
                tracing::warn!(path, error = %e, "cannot read the snapshot file; ignoring it");
                return Restored::default();
            }
        };
        let file: File = match serde_json::from_slice(&bytes) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(path, error = %e, "the snapshot file is corrupt; ignoring it");
                return Restored::default();
            }
        };
        if file.format != FORMAT {
            tracing::warn!(
                path,
                format = file.format,
                expected = FORMAT,
                "the snapshot file has another format version; ignoring it"
            );
            return Restored::default();
        }
        let mut outcome = Restored::default();
        for entry in file.entries {
            match self.entry_snapshot(&entry) {
                Ok((kind, snapshot)) => {
                    outcome.restored += usize::from(store.restore(&entry.tenant, kind, snapshot));
                }
                Err(why) => {
                    outcome.ignored += 1;
                    tracing::warn!(
                        path, tenant = %entry.tenant, report = %entry.report, why,
                        "ignoring a snapshot from the snapshot file"
                    );
                }
            }
        }
        if outcome.restored == 0 && outcome.ignored > 0 {
            tracing::warn!(
                path,
                ignored = outcome.ignored,
                "the snapshot file is from another config; nothing restored"
            );
        } else {
            tracing::info!(
                path,
                restored = outcome.restored,
                ignored = outcome.ignored,
                "snapshots restored"
            );
        }
        outcome
    }

    fn entry_snapshot(&self, e: &Entry) -> Result<(ReportKind, Snapshot), &'static str> {
        let kind = ReportKind::from_name(&e.report).ok_or("unknown report")?;
        match self.identities.get(&(e.tenant.clone(), kind)) {
            None => return Err("the config has no such tenant and report"),
            Some(id) if *id != e.identity => {
                return Err("the tenant now has another tenant_id, graph_url or report settings");
            }
            Some(_) => {}
        }
        let data = kind
            .restore(&e.data)
            .map_err(|_| "unreadable report data")?;
        Ok((
            kind,
            Snapshot {
                data,
                records: e.records,
                finished_at: UNIX_EPOCH + Duration::from_nanos(e.finished_at_unix_nanos),
            },
        ))
    }

    /// Writes every snapshot in `store` atomically (temporary file, fsync, rename). A
    /// failure is logged; the in-memory snapshots are unaffected.
    pub async fn save(&self, store: &Store) {
        let _turn = self.lock.lock().await;
        let bytes = match self.encode(store) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode the snapshots; not persisted");
                return;
            }
        };
        let path = self.path.clone();
        let written = tokio::task::spawn_blocking(move || write_atomically(&path, &bytes)).await;
        match written {
            Ok(Ok(())) => tracing::debug!(path = %self.path.display(), "snapshots persisted"),
            Ok(Err(e)) => tracing::warn!(
                path = %self.path.display(), error = %e, "cannot write the snapshot file"
            ),
            Err(e) => tracing::warn!(error = %e, "snapshot write task failed"),
        }
    }

    fn encode(&self, store: &Store) -> serde_json::Result<Vec<u8>> {
        let mut entries = Vec::new();
        for ((tenant, kind), snap) in store.snapshots() {
            let Some(identity) = self.identities.get(&(tenant.clone(), kind)) else {
                continue;
            };
            entries.push(Entry {
                report: kind.name().to_owned(),
                identity: identity.clone(),
                records: snap.records,
                finished_at_unix_nanos: unix_nanos(snap.finished_at),
                data: snap.data.store(),
                tenant,
            });
        }
        serde_json::to_vec(&File {
            format: FORMAT,
            written_by: concat!("entra-mfa-exporter ", env!("CARGO_PKG_VERSION")).to_owned(),
            entries,
        })
    }
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A snapshot file for `config`, restored into `store` when `restore` is set; the
/// caller hands it every published snapshot from then on.
pub fn open(path: &Path, config: &Config, store: &Store, restore: bool) -> Arc<SnapshotFile> {
    let file = Arc::new(SnapshotFile::new(path, config));
    if restore {
        file.restore(store);
    }
    file
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{RegistrationCounts, Source, UserFacts};

    fn config(tenant_id: &str) -> Config {
        Config::from_toml(&format!(
            "[[tenants]]\nname = \"t\"\ntenant_id = \"{tenant_id}\"\nclient_id = \"c\"\nclient_secret = \"s\"\n"
        ))
        .unwrap()
    }

    fn urd() -> ReportKind {
        ReportKind::named("user_registration_details")
    }

    fn store_with_snapshot() -> (Store, serde_json::Value, SystemTime) {
        let mut counts = RegistrationCounts::new(Source::UserRegistrationDetails);
        counts.add_user(
            &UserFacts {
                user_type: Some("member"),
                is_admin: Some(true),
                features: [true, true, false, false, false, false, true],
                preferred: Some("push"),
            },
            ["microsoftAuthenticatorPush", "email"],
        );
        counts.add_user(&UserFacts::default(), []);
        let stored = crate::reports::ReportData::store(&counts);
        let finished_at = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        let snap = Snapshot {
            data: Box::new(counts),
            records: 2,
            finished_at,
        };
        let store = Store::new([("t".to_owned(), urd())]);
        store.publish("t", urd(), snap, Duration::from_secs(1));
        (store, stored, finished_at)
    }

    #[tokio::test]
    async fn round_trip_keeps_data_and_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snap.json");
        let cfg = config("contoso.onmicrosoft.com");
        let (store, stored, finished_at) = store_with_snapshot();
        SnapshotFile::new(&path, &cfg).save(&store).await;

        let fresh = Store::new([("t".to_owned(), urd())]);
        assert!(!fresh.ready());
        let got = SnapshotFile::new(&path, &cfg).restore(&fresh);
        assert_eq!(
            got,
            Restored {
                restored: 1,
                ignored: 0
            }
        );
        assert!(fresh.ready(), "a restored snapshot makes the report ready");
        let restored = &fresh.snapshots()[0].1;
        assert_eq!(restored.data.store(), stored);
        assert_eq!(restored.records, 2);
        assert_eq!(restored.finished_at, finished_at);
        assert!(fresh.states()[0].1.last_attempt.is_none());
    }

    #[test]
    fn every_family_round_trips() {
        use crate::reports::credential_usage_summary::{UsageActivities, UsageActivityCounts};
        use crate::reports::credential_user_registration_count::RegistrationStatusCounts;
        use crate::reports::user_credential_usage_details::{UsageEventCounts, UsageEvents};
        use crate::reports::users_registered_by::{Summary, SummaryCounts, SummaryData};
        use crate::reports::users_registered_by_method;
        let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        let method = &users_registered_by_method::REPORT;
        let all: Vec<(&str, Box<dyn crate::reports::ReportData>)> = vec![
            (
                "credential_user_registration_count",
                Box::new(RegistrationStatusCounts {
                    total_users: 9,
                    statuses: [("mfa_registered".to_owned(), 4)].into(),
                }),
            ),
            (
                "credential_usage_summary",
                Box::new(UsageActivities {
                    period: "D7".into(),
                    counts: UsageActivityCounts {
                        activities: [(pair("reset", "email"), (3, 1))].into(),
                    },
                }),
            ),
            (
                "user_events_summary",
                Box::new(UsageEvents {
                    source: "user_events_summary",
                    counts: UsageEventCounts {
                        events: [(("registration".into(), "sms".into(), "success".into()), 2)]
                            .into(),
                        last_event: [(pair("registration", "success"), 1_700_000_000.1234567)]
                            .into(),
                        undated: 1,
                    },
                }),
            ),
            (
                method.name,
                Box::new(SummaryData {
                    report: method.name,
                    family: method.families[1],
                    key: method.key,
                    counts: SummaryCounts {
                        summaries: [(
                            pair("all", "admin"),
                            Summary {
                                total_users: None,
                                counts: [("fido2".to_owned(), 2)].into(),
                            },
                        )]
                        .into(),
                    },
                }),
            ),
        ];
        for (report, data) in all {
            let json = data.store();
            let back = ReportKind::named(report).restore(&json).unwrap();
            assert_eq!(back.store(), json, "{report}");
            assert_eq!(format!("{back:?}"), format!("{data:?}"), "{report}");
        }
    }

    #[test]
    fn files_written_before_the_report_modules_still_restore() {
        // The layout of format 1 as the exporter wrote it when report data was one
        // serde enum: {variant: data}.
        let json = serde_json::json!({"RegistrationStatus": {"total_users": 9, "statuses": {"mfa_registered": 4}}});
        let data = ReportKind::named("credential_user_registration_count")
            .restore(&json)
            .unwrap();
        assert_eq!(data.store(), json);
        assert!(
            ReportKind::named("credential_usage_summary")
                .restore(&json)
                .is_err(),
            "another report's data is refused"
        );
    }

    #[tokio::test]
    async fn corrupt_or_foreign_files_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snap.json");
        let (store, _, _) = store_with_snapshot();
        SnapshotFile::new(&path, &config("contoso.onmicrosoft.com"))
            .save(&store)
            .await;
        let fresh = || Store::new([("t".to_owned(), urd())]);

        // Same tenant name, another tenant: not ours.
        let other = SnapshotFile::new(&path, &config("fabrikam.onmicrosoft.com"));
        let s = fresh();
        assert_eq!(
            other.restore(&s),
            Restored {
                restored: 0,
                ignored: 1
            }
        );
        assert!(s.snapshots().is_empty());

        let ours = SnapshotFile::new(&path, &config("contoso.onmicrosoft.com"));
        for corrupt in [
            &b"{\"format\":1,\"entr"[..],
            b"",
            b"[1,2]",
            b"{\"format\":99,\"written_by\":\"x\",\"entries\":[]}",
        ] {
            std::fs::write(&path, corrupt).unwrap();
            let s = fresh();
            assert_eq!(ours.restore(&s), Restored::default());
            assert!(s.snapshots().is_empty());
        }
        std::fs::remove_file(&path).unwrap();
        assert_eq!(ours.restore(&fresh()), Restored::default());
    }
}
