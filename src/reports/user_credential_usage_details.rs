//! `user_credential_usage_details`: beta `/reports/userCredentialUsageDetails`
//! (graph-api.md §5.4), one row per SSPR/MFA registration or reset event, folded into
//! event counts per (feature, method, result) and the newest event per (feature, result).
//! Feeds `entra_credential_usage_events` and
//! `entra_credential_usage_last_event_timestamp_seconds`.
//!
//! Its successor `userEventsSummary` (§4.1, `user_events_summary`) has the same row
//! shape, so both reports are defined here: one fold, one data type, and the report's
//! name as the `source` label.
//! `failureReason` is free text and never becomes a label, so it is not even parsed.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::UNIX_EPOCH;

use serde::Deserialize;

use super::credential_usage_summary::label;
use super::{
    Finished, Folding, Refresh, Report, ReportData, Request, Settings, Warning, restore_tagged,
    store_tagged,
};
use crate::cloud::Cloud;
use crate::families::{Families, Family};
use crate::odata::Fold;

/// beta `userCredentialUsageDetails` (legacy, Global only).
pub static DETAILS: UsageEventsReport = UsageEventsReport {
    name: "user_credential_usage_details",
    path: "/beta/reports/userCredentialUsageDetails",
    permission: "Reports.Read.All",
    global_only: true,
};

/// beta `authenticationMethods/userEventsSummary`, its successor.
pub static EVENTS_SUMMARY: UsageEventsReport = UsageEventsReport {
    name: "user_events_summary",
    path: "/beta/reports/authenticationMethods/userEventsSummary",
    permission: "AuditLog.Read.All",
    global_only: false,
};

/// A report of registration and reset events.
#[derive(Debug)]
pub struct UsageEventsReport {
    name: &'static str,
    path: &'static str,
    permission: &'static str,
    /// The legacy `userCredentialUsageDetails` exists in the Global cloud only
    /// (graph-api.md §1.1).
    global_only: bool,
}

const TAG: &str = "UsageEvents";

static EVENTS: Family = Family::gauge(
    "entra_credential_usage_events",
    "Registration and reset events the report returned, by feature, method and result.",
);
static LAST_EVENT: Family = Family::gauge(
    "entra_credential_usage_last_event_timestamp_seconds",
    "Unix time of the newest registration or reset event the report returned, by feature and result.",
);

/// The families of the report, in exposition order.
static FAMILIES: [&Family; 2] = [&EVENTS, &LAST_EVENT];

impl Report for UsageEventsReport {
    fn name(&self) -> &'static str {
        self.name
    }

    fn path(&self) -> &'static str {
        self.path
    }

    /// The legacy report only (its successor shares this type).
    fn retired(&self) -> Option<super::Retirement> {
        self.global_only.then_some(super::Retirement {
            date: "2025-08-01",
            successor: "user_events_summary",
        })
    }

    fn permission(&self) -> &'static str {
        self.permission
    }

    fn offered_in(&self, cloud: Cloud) -> bool {
        !self.global_only || cloud == Cloud::Global
    }

    fn families(&self) -> &'static [&'static Family] {
        &FAMILIES
    }

    fn requests(&self, s: &Settings) -> Vec<Request> {
        vec![Request {
            path: format!("{}?$top={}", self.path, s.page_size),
            paged: true,
        }]
    }

    fn start(&self, _: &Settings) -> Box<dyn Refresh> {
        let source = self.name;
        Box::new(Folding::new(Folder::default(), move |f| {
            let warnings = if f.0.undated > 0 {
                vec![Warning {
                    message: "events without a readable eventDateTime: counted, but not in the last-event timestamps",
                    detail: format!("events={}", f.0.undated),
                }]
            } else {
                Vec::new()
            };
            Finished {
                data: Box::new(UsageEvents {
                    source,
                    counts: f.0,
                }),
                warnings,
            }
        }))
    }

    fn restore(&self, stored: &serde_json::Value) -> serde_json::Result<Box<dyn ReportData>> {
        Ok(Box::new(UsageEvents {
            source: self.name,
            counts: restore_tagged(TAG, stored)?,
        }))
    }
}

/// What a refresh stores: the counts, and the report they came from (the `source`
/// label).
#[derive(Debug, Clone, PartialEq)]
pub struct UsageEvents {
    /// The report's name.
    pub source: &'static str,
    /// The counts.
    pub counts: UsageEventCounts,
}

impl ReportData for UsageEvents {
    fn encode(&self, tenant: &str, out: &mut Families) {
        let [events, last_event] = [&EVENTS, &LAST_EVENT].map(|f| out.id(f));
        for ((feature, method, result), n) in &self.counts.events {
            out.push(
                events,
                vec![
                    ("tenant", tenant),
                    ("source", self.source),
                    ("feature", feature),
                    ("method", method),
                    ("result", result),
                ],
                *n,
            );
        }
        for ((feature, result), t) in &self.counts.last_event {
            out.push(
                last_event,
                vec![
                    ("tenant", tenant),
                    ("source", self.source),
                    ("feature", feature),
                    ("result", result),
                ],
                *t,
            );
        }
    }

    fn store(&self) -> serde_json::Value {
        store_tagged(TAG, &self.counts)
    }
}

/// The fields of one event the fold uses.
#[derive(Debug, Deserialize)]
pub struct Row<'a> {
    /// `featureType`: `registration`, `reset`, or a later member.
    #[serde(borrow, default)]
    pub feature: Option<Cow<'a, str>>,
    /// `usageAuthMethod`, as sent.
    #[serde(rename = "authMethod", borrow, default)]
    pub auth_method: Option<Cow<'a, str>>,
    /// Whether the activity succeeded.
    #[serde(rename = "isSuccess", default)]
    pub is_success: Option<bool>,
    /// ISO 8601 UTC with up to 7 fractional digits (§1.3).
    #[serde(rename = "eventDateTime", borrow, default)]
    pub event_date_time: Option<Cow<'a, str>>,
}

/// The `result` label of an event.
pub fn result_label(is_success: Option<bool>) -> &'static str {
    match is_success {
        Some(true) => "success",
        Some(false) => "failure",
        None => "unknown",
    }
}

/// Parses a DateTimeOffset to Unix seconds (fraction kept). `None` when unparseable.
pub fn parse_event_time(text: &str) -> Option<f64> {
    parse_date_time(text).map(|t| t.as_secs_f64())
}

/// Parses a DateTimeOffset to the time since the Unix epoch. `None` when unparseable.
pub fn parse_date_time(text: &str) -> Option<std::time::Duration> {
    // Graph sends UTC with `Z`; an explicit zero offset is the same instant.
    let text = text.trim();
    let text = text.strip_suffix("+00:00").unwrap_or(text);
    let t = humantime::parse_rfc3339_weak(text.trim_end_matches(['Z', 'z'])).ok()?;
    t.duration_since(UNIX_EPOCH).ok()
}

/// The counts of one refresh.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, Deserialize)]
pub struct UsageEventCounts {
    /// `(feature, method, result)` ▸ events.
    #[serde(with = "crate::util::map_as_pairs")]
    pub events: BTreeMap<(String, String, String), u64>,
    /// `(feature, result)` ▸ Unix time of the newest event.
    #[serde(with = "crate::util::map_as_pairs")]
    pub last_event: BTreeMap<(String, String), f64>,
    /// Events whose `eventDateTime` could not be read (counted, not timed).
    pub undated: u64,
}

/// Folds event rows (both usage-event reports).
#[derive(Debug, Default)]
pub struct Folder(pub UsageEventCounts);

impl Fold for Folder {
    type Row<'de> = Row<'de>;

    fn add(&mut self, row: Row<'_>) {
        let feature = label(row.feature.as_deref());
        let result = result_label(row.is_success);
        let key = (
            feature.to_owned(),
            label(row.auth_method.as_deref()).to_owned(),
            result.to_owned(),
        );
        *self.0.events.entry(key).or_default() += 1;
        match row.event_date_time.as_deref().and_then(parse_event_time) {
            Some(t) => {
                let last = self
                    .0
                    .last_event
                    .entry((feature.to_owned(), result.to_owned()))
                    .or_insert(t);
                if t > *last {
                    *last = t;
                }
            }
            None => self.0.undated += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::odata::fold_page;

    #[test]
    fn counts_events_and_keeps_the_newest() {
        // graph-api.md §5.4 and §4.1 examples, plus drift and quirks.
        let page = br##"{"@odata.context":"x","value":[
          {"id":"5b0d8a3c","feature":"reset","userPrincipalName":"user@contoso.com","userDisplayName":"Some User",
           "isSuccess":false,"authMethod":"email","failureReason":"User contacted an admin after trying the email verification option",
           "eventDateTime":"2019-04-01T00:00:00Z"},
          {"@odata.type":"#microsoft.graph.userEventsSummary","id":"3604e35c","feature":"registration","userPrincipalName":"johndoe@contoso.net",
           "userDisplayName":"John Doe","isSuccess":true,"authMethod":"microsoftAuthenticatorPush","failureReason":"","eventDateTime":"2025-07-16T16:19:18Z"},
          {"id":"a","feature":"reset","isSuccess":false,"authMethod":"email","failureReason":"x\"y","eventDateTime":"2019-04-02T00:00:00.6195833Z"},
          {"id":"b","feature":"passwordChange","isSuccess":true,"authMethod":"qrCode","eventDateTime":"not a date"}
        ]}"##;
        let mut f = Folder::default();
        assert_eq!(fold_page(page, &mut f).unwrap().rows, 4);
        let c = &f.0;
        let k = |a: &str, b: &str, r: &str| (a.to_owned(), b.to_owned(), r.to_owned());
        assert_eq!(c.events[&k("reset", "email", "failure")], 2);
        assert_eq!(
            c.events[&k("registration", "microsoftAuthenticatorPush", "success")],
            1
        );
        assert_eq!(c.events[&k("passwordChange", "qrCode", "success")], 1);
        assert_eq!(
            c.last_event[&("reset".to_owned(), "failure".to_owned())],
            1_554_163_200.6195833
        );
        assert_eq!(
            c.last_event[&("registration".to_owned(), "success".to_owned())],
            1_752_682_758.0
        );
        assert_eq!(c.undated, 1);
        assert_eq!(c.last_event.len(), 2);
    }

    #[test]
    fn time_forms() {
        assert_eq!(parse_event_time("1970-01-01T00:00:01Z"), Some(1.0));
        assert_eq!(parse_event_time("1970-01-01T00:00:01+00:00"), Some(1.0));
        assert_eq!(parse_event_time("1970-01-01T00:00:01.5Z"), Some(1.5));
        assert_eq!(parse_event_time(""), None);
        assert_eq!(parse_event_time("yesterday"), None);
    }
}
