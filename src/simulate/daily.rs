//! The two app-only daily reports that succeed the legacy usage reports:
//! `userMfaSignInSummary` (graph-api.md §4.2) and `userPasswordResetsAndChangesSummary`
//! (§4.3), with their truth.
//!
//! What §13.7 leaves undocumented is played the awkward way: the rows come out of date
//! order, their timestamps are not midnight, some days are missing (gaps, a missing
//! yesterday included), today's row is partial and grows through the day, and the
//! answer is sometimes split over two pages. Days are real UTC days (the wall clock),
//! not the drifting dataset time: "the newest complete day" is about the calendar.

use super::rng::{Draws, hash3};
use super::tenant::Tenant;

/// Days served, today included.
pub(crate) const DAYS_SERVED: i64 = 30;
const DAY: i64 = 86_400;
const SALT_PRESENT: u64 = 0xda11_0001;
const SALT_COUNTS: u64 = 0xda11_0002;
const SALT_ORDER: u64 = 0xda11_0003;
const SALT_TIME: u64 = 0xda11_0004;
const SALT_PAGES: u64 = 0xda11_0005;

/// Which daily report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DailyReport {
    /// `userMfaSignInSummary`: counts `[multiFactorSignIns, singleFactorSignIns,
    /// totalSignIns]`.
    MfaSignIns,
    /// `userPasswordResetsAndChangesSummary`: counts `[passwordResetsByAdminCount,
    /// passwordResetsSelfServiceCount, changePasswordSelfServiceCount]`.
    PasswordEvents,
}

impl DailyReport {
    fn salt(self) -> u64 {
        match self {
            Self::MfaSignIns => 0,
            Self::PasswordEvents => 1 << 32,
        }
    }

    /// The JSON names of the three counts, in the order of [`DailyRow::counts`].
    pub(crate) fn count_names(self) -> [&'static str; 3] {
        match self {
            Self::MfaSignIns => ["multiFactorSignIns", "singleFactorSignIns", "totalSignIns"],
            Self::PasswordEvents => [
                "passwordResetsByAdminCount",
                "passwordResetsSelfServiceCount",
                "changePasswordSelfServiceCount",
            ],
        }
    }

    /// The property holding the row's day.
    pub(crate) fn date_name(self) -> &'static str {
        match self {
            Self::MfaSignIns => "createdDateTime",
            Self::PasswordEvents => "aggregatedDateTime",
        }
    }

    /// The entity type and collection name.
    pub(crate) fn type_and_path(self) -> (&'static str, &'static str) {
        match self {
            Self::MfaSignIns => ("userMfaSignInSummary", "userMfaSignInSummary"),
            Self::PasswordEvents => (
                "userPasswordResetsAndChangesSummary",
                "userPasswordResetsAndChangesSummary",
            ),
        }
    }
}

/// One served row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DailyRow {
    /// Days since the Unix epoch (UTC).
    pub(crate) day: i64,
    /// Unix seconds of the row's timestamp: inside its day, rarely midnight.
    pub(crate) at: i64,
    pub(crate) counts: [u64; 3],
}

/// The newest complete day of a daily report, as the exporter should show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyTruth {
    /// Unix seconds of the day's start (UTC midnight).
    pub day_start: i64,
    /// The three counts, in [`DailyReport`]'s order.
    pub counts: [u64; 3],
}

/// Whether day `day` has a row: today always; an earlier day about six times in seven.
fn present(tenant: &Tenant, report: DailyReport, day: i64, today: i64) -> bool {
    day == today || !hash3(tenant.seed, day as u64, SALT_PRESENT ^ report.salt()).is_multiple_of(7)
}

fn counts(tenant: &Tenant, report: DailyReport, day: i64, share: f64) -> [u64; 3] {
    let mut d = Draws::new(tenant.seed, day as u64, SALT_COUNTS ^ report.salt());
    let users = tenant.users.max(1) as f64;
    let scale = |n: f64| (n * share).round() as u64;
    match report {
        DailyReport::MfaSignIns => {
            let total = scale(users * (1.0 + 2.0 * d.unit()));
            let multi = (total as f64 * (0.55 + 0.4 * d.unit())).round() as u64;
            [multi, total - multi, total]
        }
        DailyReport::PasswordEvents => [
            scale(users * 0.004 * d.unit()) + u64::from(share >= 1.0),
            scale(users * 0.01 * d.unit()),
            scale(users * 0.02 * d.unit()),
        ],
    }
}

/// The rows served at `now` (Unix seconds), in the (scrambled) order served.
pub(crate) fn rows(tenant: &Tenant, report: DailyReport, now: i64) -> Vec<DailyRow> {
    let today = now.div_euclid(DAY);
    let mut out: Vec<DailyRow> = (today - DAYS_SERVED + 1..=today)
        .filter(|&day| present(tenant, report, day, today))
        .map(|day| {
            let offset =
                (hash3(tenant.seed, day as u64, SALT_TIME ^ report.salt()) % DAY as u64) as i64;
            if day == today {
                // Today's partial row: counts so far, stamped no later than now.
                let elapsed = now - day * DAY;
                DailyRow {
                    day,
                    at: day * DAY + offset.min(elapsed),
                    counts: counts(tenant, report, day, elapsed as f64 / DAY as f64),
                }
            } else {
                DailyRow {
                    day,
                    at: day * DAY + offset,
                    counts: counts(tenant, report, day, 1.0),
                }
            }
        })
        .collect();
    out.sort_by_key(|r| hash3(tenant.seed, r.day as u64, SALT_ORDER ^ report.salt()));
    out
}

/// Rows on the first page of a walk started at `now`: all of them, or (on about half
/// the days) half of them, the rest behind a next link.
pub(crate) fn first_page_len(tenant: &Tenant, report: DailyReport, now: i64, rows: usize) -> usize {
    let today = now.div_euclid(DAY) as u64;
    if hash3(tenant.seed, today, SALT_PAGES ^ report.salt()).is_multiple_of(2) {
        rows
    } else {
        rows / 2
    }
}

/// The newest day before today among the rows served at `now`.
pub(crate) fn truth(tenant: &Tenant, report: DailyReport, now: i64) -> Option<DailyTruth> {
    let today = now.div_euclid(DAY);
    rows(tenant, report, now)
        .into_iter()
        .filter(|r| r.day < today)
        .max_by_key(|r| r.day)
        .map(|r| DailyTruth {
            day_start: r.day * DAY,
            counts: r.counts,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_have_gaps_a_partial_today_and_no_order() {
        let t = Tenant::new("x.example", 5, 1_000, None);
        let now = 20_000 * DAY + 3 * 3600;
        for report in [DailyReport::MfaSignIns, DailyReport::PasswordEvents] {
            let rows = rows(&t, report, now);
            assert!(
                rows.len() <= DAYS_SERVED as usize && rows.len() > 15,
                "{}",
                rows.len()
            );
            let gapped = (0..20)
                .filter(|seed| {
                    super::rows(&Tenant::new("x.example", *seed, 10, None), report, now).len() < 30
                })
                .count();
            assert!(gapped > 10, "{gapped} of 20 seeds have gaps");
            assert!(rows.windows(2).any(|w| w[0].day > w[1].day), "unordered");
            assert!(
                rows.iter()
                    .all(|r| r.at.div_euclid(DAY) == r.day && r.at <= now)
            );
            let today = rows.iter().find(|r| r.day == 20_000).expect("today");
            // A few hours in, today holds a fraction of a full day.
            let later = super::rows(&t, report, now + 10 * 3600);
            let today_later = later.iter().find(|r| r.day == 20_000).unwrap();
            assert!(today.counts[2] <= today_later.counts[2]);
            let truth = truth(&t, report, now).unwrap();
            assert!(truth.day_start < 20_000 * DAY);
            assert_eq!(truth, super::truth(&t, report, now + 10 * 3600).unwrap());
        }
        let sign_ins = truth(&t, DailyReport::MfaSignIns, now).unwrap().counts;
        assert_eq!(sign_ins[0] + sign_ins[1], sign_ins[2]);
        // Over many days, yesterday is sometimes missing.
        let missing_yesterday = (0..200)
            .filter(|d| {
                let at = (20_000 + d) * DAY + 60;
                truth(&t, DailyReport::MfaSignIns, at).unwrap().day_start < (20_000 + d - 1) * DAY
            })
            .count();
        assert!(
            missing_yesterday > 5 && missing_yesterday < 60,
            "{missing_yesterday}"
        );
    }
}
