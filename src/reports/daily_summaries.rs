//! The two app-only daily reports, successors of the legacy usage reports:
//! `user_mfa_sign_in_summary` (beta `authenticationMethods/userMfaSignInSummary`,
//! graph-api.md §4.2) feeds `entra_daily_sign_ins{factor}` and
//! `entra_daily_sign_ins_day_timestamp_seconds`; `user_password_resets_and_changes_summary`
//! (§4.3) feeds `entra_daily_password_events{kind}`.
//!
//! Both return one row per day with three counts. Nothing about their order, paging,
//! retention or partial days is documented (§13.7), so rows are bucketed by the UTC date
//! of their timestamp (never assumed midnight or in order), rows of one date are summed,
//! and the day shown is the newest date before the refresh's `today` (design.md: "newest
//! complete day"; a missing yesterday shows an older day, and the day family says which).
//! Today's row is partial and never shown.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;

use super::user_credential_usage_details::parse_event_time;
use super::{
    Finished, Folding, Refresh, Report, ReportData, Request, Settings, Warning, restore_tagged,
    store_tagged,
};
use crate::families::{Families, Family};
use crate::odata::Fold;

const SECONDS_PER_DAY: i64 = 86_400;
const TAG: &str = "Daily";

static SIGN_INS: Family = Family::gauge(
    "entra_daily_sign_ins",
    "Sign-ins on the newest complete UTC day of userMfaSignInSummary, by factor (multi_factor, single_factor, total).",
);
static SIGN_INS_DAY: Family = Family::gauge(
    "entra_daily_sign_ins_day_timestamp_seconds",
    "Unix time of the start (UTC) of the day entra_daily_sign_ins counts.",
);
static PASSWORD_EVENTS: Family = Family::gauge(
    "entra_daily_password_events",
    "Password resets and changes on the newest complete UTC day of userPasswordResetsAndChangesSummary, by kind.",
);

static SIGN_IN_FAMILIES: [&Family; 2] = [&SIGN_INS, &SIGN_INS_DAY];
static PASSWORD_FAMILIES: [&Family; 1] = [&PASSWORD_EVENTS];

/// beta `userMfaSignInSummary`.
pub static MFA_SIGN_INS: DailyReport = DailyReport {
    name: "user_mfa_sign_in_summary",
    path: "/beta/reports/authenticationMethods/userMfaSignInSummary",
    families: &SIGN_IN_FAMILIES,
    shape: Shape {
        family: &SIGN_INS,
        day_family: Some(&SIGN_INS_DAY),
        label: "factor",
        values: ["multi_factor", "single_factor", "total"],
        counts: |r| [r.multi_factor, r.single_factor, r.total],
    },
};

/// beta `userPasswordResetsAndChangesSummary`.
pub static PASSWORD_RESETS: DailyReport = DailyReport {
    name: "user_password_resets_and_changes_summary",
    path: "/beta/reports/authenticationMethods/userPasswordResetsAndChangesSummary",
    families: &PASSWORD_FAMILIES,
    shape: Shape {
        family: &PASSWORD_EVENTS,
        day_family: None,
        label: "kind",
        values: ["admin_reset", "self_service_reset", "self_service_change"],
        counts: |r| {
            [
                r.admin_resets,
                r.self_service_resets,
                r.self_service_changes,
            ]
        },
    },
};

/// A report of one row per day with three counts.
#[derive(Debug)]
pub struct DailyReport {
    name: &'static str,
    path: &'static str,
    families: &'static [&'static Family],
    shape: Shape,
}

/// Which counts a daily report reads and where they go.
#[derive(Clone, Copy)]
pub struct Shape {
    /// The family of the three counts.
    family: &'static Family,
    /// The family saying which day is shown, if the report has one.
    day_family: Option<&'static Family>,
    /// The label of the three counts and its values, in the order of `counts`.
    label: &'static str,
    values: [&'static str; 3],
    /// The row's three counts.
    counts: fn(&Row<'_>) -> [Option<u64>; 3],
}

impl std::fmt::Debug for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.family.name)
    }
}

impl PartialEq for Shape {
    fn eq(&self, other: &Self) -> bool {
        self.family.name == other.family.name
    }
}

impl Eq for Shape {}

impl Report for DailyReport {
    fn name(&self) -> &'static str {
        self.name
    }

    fn path(&self) -> &'static str {
        self.path
    }

    fn permission(&self) -> &'static str {
        "AuditLog.Read.All"
    }

    fn families(&self) -> &'static [&'static Family] {
        self.families
    }

    /// No query options: the docs list none (`$top` included), so next links, if any,
    /// are followed as sent.
    fn requests(&self, _: &Settings) -> Vec<Request> {
        vec![Request {
            path: self.path.to_owned(),
            paged: true,
        }]
    }

    fn start(&self, s: &Settings) -> Box<dyn Refresh> {
        let shape = self.shape;
        let today = s.today;
        Box::new(Folding::new(
            Folder {
                counts: shape.counts,
                days: BTreeMap::new(),
                undated: 0,
            },
            move |f| {
                let mut warnings = Vec::new();
                if f.undated > 0 {
                    warnings.push(Warning {
                        message: "daily rows without a readable date: left out",
                        detail: format!("rows={}", f.undated),
                    });
                }
                let newest = f.days.range(..today).next_back().map(|(d, c)| (*d, *c));
                if newest.is_none() {
                    warnings.push(Warning {
                        message: "no complete day among the daily rows: nothing to show",
                        detail: format!("days={}", f.days.len()),
                    });
                }
                Finished {
                    data: Box::new(DailyData { shape, day: newest }),
                    warnings,
                }
            },
        ))
    }

    fn restore(&self, stored: &serde_json::Value) -> serde_json::Result<Box<dyn ReportData>> {
        Ok(Box::new(DailyData {
            shape: self.shape,
            day: restore_tagged(TAG, stored)?,
        }))
    }
}

/// The fields of both reports' rows (each uses its own half).
#[derive(Debug, Deserialize)]
pub struct Row<'a> {
    /// userMfaSignInSummary's day.
    #[serde(rename = "createdDateTime", borrow, default)]
    pub created: Option<Cow<'a, str>>,
    /// userPasswordResetsAndChangesSummary's day.
    #[serde(rename = "aggregatedDateTime", borrow, default)]
    pub aggregated: Option<Cow<'a, str>>,
    /// Sign-ins.
    #[serde(rename = "totalSignIns", default)]
    pub total: Option<u64>,
    /// Single-factor sign-ins.
    #[serde(rename = "singleFactorSignIns", default)]
    pub single_factor: Option<u64>,
    /// Multi-factor sign-ins.
    #[serde(rename = "multiFactorSignIns", default)]
    pub multi_factor: Option<u64>,
    /// Resets by an admin.
    #[serde(rename = "passwordResetsByAdminCount", default)]
    pub admin_resets: Option<u64>,
    /// Self-service resets.
    #[serde(rename = "passwordResetsSelfServiceCount", default)]
    pub self_service_resets: Option<u64>,
    /// Self-service changes.
    #[serde(rename = "changePasswordSelfServiceCount", default)]
    pub self_service_changes: Option<u64>,
}

/// Folds daily rows into counts per UTC day.
#[derive(Debug)]
pub struct Folder {
    counts: fn(&Row<'_>) -> [Option<u64>; 3],
    /// Day (since the epoch, UTC) ▸ counts.
    days: BTreeMap<i64, [u64; 3]>,
    undated: u64,
}

impl Fold for Folder {
    type Row<'de> = Row<'de>;

    fn add(&mut self, row: Row<'_>) {
        let date = row.created.as_deref().or(row.aggregated.as_deref());
        let Some(day) = date.and_then(day_of) else {
            self.undated += 1;
            return;
        };
        let sums = self.days.entry(day).or_default();
        for (sum, n) in sums.iter_mut().zip((self.counts)(&row)) {
            *sum += n.unwrap_or(0);
        }
    }
}

/// What a refresh stores: the newest complete day and its counts, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyData {
    shape: Shape,
    /// Day since the epoch (UTC) and its three counts.
    pub day: Option<(i64, [u64; 3])>,
}

impl ReportData for DailyData {
    fn encode(&self, tenant: &str, out: &mut Families) {
        let Some((day, counts)) = &self.day else {
            return;
        };
        let id = out.id(self.shape.family);
        for (value, n) in self.shape.values.iter().zip(counts) {
            out.push(id, vec![("tenant", tenant), (self.shape.label, value)], *n);
        }
        if let Some(family) = self.shape.day_family {
            out.add(
                family,
                vec![("tenant", tenant)],
                (day * SECONDS_PER_DAY) as f64,
            );
        }
    }

    fn store(&self) -> serde_json::Value {
        store_tagged(TAG, &self.day)
    }
}

/// The UTC day of a DateTimeOffset. The fraction is dropped before parsing: as an f64,
/// `…T23:59:59.9999999Z` would round into the next day.
fn day_of(text: &str) -> Option<i64> {
    let whole = match text.find('.') {
        Some(dot) => {
            let zone = text[dot..]
                .find(['Z', 'z', '+', '-'])
                .map_or(text.len(), |i| dot + i);
            format!("{}{}", &text[..dot], &text[zone..])
        }
        None => text.to_owned(),
    };
    parse_event_time(&whole).map(|t| (t as i64).div_euclid(SECONDS_PER_DAY))
}

/// The UTC day (since the Unix epoch) of `unix` seconds: a refresh's `today`.
pub fn utc_day(unix: i64) -> i64 {
    unix.div_euclid(SECONDS_PER_DAY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::odata::fold_page;

    fn settings(today: i64) -> Settings {
        Settings {
            page_size: 999,
            usage_period: "D30".into(),
            summary_user_types: vec![],
            summary_user_roles: vec![],
            admins_without_mfa: false,
            max_listed_admins: 0,
            today,
            ..Settings::default()
        }
    }

    fn run(report: &DailyReport, today: i64, pages: &[&[u8]]) -> Finished {
        let mut r = report.start(&settings(today));
        for p in pages {
            r.page(0, p).unwrap();
        }
        r.finish()
    }

    fn samples(f: &Finished) -> Vec<String> {
        let mut out = Families::default();
        f.data.encode("t", &mut out);
        out.sample_lines()
    }

    #[test]
    fn newest_complete_day_skips_today_and_gaps() {
        // 2025-07-16 is day 20285. Rows out of order, not midnight (graph-api.md §13.7),
        // today (07-16) partial, yesterday (07-15) missing, 07-14 on two rows.
        let page = br##"{"value":[
          {"id":"a","createdDateTime":"2025-07-16T16:19:18Z","totalSignIns":5,"singleFactorSignIns":1,"multiFactorSignIns":4},
          {"id":"b","createdDateTime":"2025-07-13T00:00:00Z","totalSignIns":100,"singleFactorSignIns":10,"multiFactorSignIns":90},
          {"id":"c","createdDateTime":"2025-07-14T23:59:59.9999999Z","totalSignIns":20,"singleFactorSignIns":5,"multiFactorSignIns":15},
          {"id":"d","createdDateTime":"2025-07-14T01:00:00Z","totalSignIns":null,"singleFactorSignIns":1}
        ]}"##;
        let f = run(&MFA_SIGN_INS, 20285, &[page]);
        assert!(f.warnings.is_empty(), "{:?}", f.warnings);
        assert_eq!(
            samples(&f),
            [
                "entra_daily_sign_ins{tenant=\"t\",factor=\"multi_factor\"} 15",
                "entra_daily_sign_ins{tenant=\"t\",factor=\"single_factor\"} 6",
                "entra_daily_sign_ins{tenant=\"t\",factor=\"total\"} 20",
                "entra_daily_sign_ins_day_timestamp_seconds{tenant=\"t\"} 1752451200.0",
            ]
        );
        // Only today: nothing shown, with a warning.
        let f = run(
            &MFA_SIGN_INS,
            20285,
            &[br#"{"value":[{"createdDateTime":"2025-07-16T01:00:00Z","totalSignIns":3}]}"#],
        );
        assert!(samples(&f).is_empty());
        assert_eq!(f.warnings.len(), 1);
    }

    #[test]
    fn password_events_over_two_pages_and_restore() {
        let p1 = br##"{"@odata.nextLink":"x","value":[{"id":"8c","aggregatedDateTime":"2025-07-16T16:19:18Z",
          "passwordResetsByAdminCount":100,"passwordResetsSelfServiceCount":75,"changePasswordSelfServiceCount":100}]}"##;
        let p2 = br##"{"value":[{"id":"9d","aggregatedDateTime":"2025-07-05T16:19:18Z",
          "passwordResetsByAdminCount":1,"passwordResetsSelfServiceCount":2,"changePasswordSelfServiceCount":3},
          {"id":"bad","aggregatedDateTime":null,"passwordResetsByAdminCount":9}]}"##;
        let f = run(&PASSWORD_RESETS, 20300, &[p1, p2]);
        assert_eq!(f.warnings.len(), 1, "the undated row");
        let lines = samples(&f);
        assert_eq!(
            lines,
            [
                "entra_daily_password_events{tenant=\"t\",kind=\"admin_reset\"} 100",
                "entra_daily_password_events{tenant=\"t\",kind=\"self_service_reset\"} 75",
                "entra_daily_password_events{tenant=\"t\",kind=\"self_service_change\"} 100",
            ]
        );
        let back = PASSWORD_RESETS.restore(&f.data.store()).unwrap();
        let mut out = Families::default();
        back.encode("t", &mut out);
        assert_eq!(out.sample_lines(), lines);
    }

    #[test]
    fn wrong_types_fail() {
        let mut f = MFA_SIGN_INS.start(&settings(1));
        assert!(f.page(0, br#"{"value":[{"totalSignIns":"5"}]}"#).is_err());
        assert!(
            fold_page(
                br#"{"value":[{"totalSignIns":-1}]}"#,
                &mut Folder {
                    counts: MFA_SIGN_INS.shape.counts,
                    days: BTreeMap::new(),
                    undated: 0,
                }
            )
            .is_err()
        );
    }
}
