//! The checks on values that parsed: names, tenant ids, URLs, intervals, enumerations,
//! limits, and the report list (known names, the cloud's offering, one registration
//! source). Each records its problems in a [`Problems`] and returns what is usable.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use super::problems::{Problems, unknown_value};
use super::{Cloud, MAX_PAGE_SIZE, ReportConfig, TenantConfig};
use crate::reports::ReportKind;

/// The `name` of a tenant: the `tenant` label, unique across the file.
pub(super) fn check_name(name: &str, seen: &mut BTreeSet<String>, problems: &mut Problems) {
    if name.trim().is_empty() {
        problems.add("name", "is required (it becomes the `tenant` label)");
    } else if name.chars().any(char::is_control) || name.len() > 128 {
        problems.add("name", "must be at most 128 printable characters");
    } else if !seen.insert(name.to_owned()) {
        problems.add("name", "is used by another tenant; names must be unique");
    }
}

/// A tenant GUID or verified domain; optional for a managed identity, whose tokens
/// come from its own tenant.
pub(super) fn check_tenant_id(tenant_id: &str, required: bool, problems: &mut Problems) {
    if tenant_id.trim().is_empty() {
        if required {
            problems.add(
                "tenant_id",
                "is required (the tenant GUID or a verified domain)",
            );
        }
    } else if ["common", "consumers", "organizations"].contains(&tenant_id.to_lowercase().as_str())
    {
        problems.add(
            "tenant_id",
            "must be a tenant GUID or domain: client credentials are not supported on `common`, `consumers` or `organizations` (AADSTS9001023)",
        );
    } else if !tenant_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
    {
        problems.add("tenant_id", "must be a GUID or a domain name");
    }
}

/// Checks a Graph or login root: https, or http to a loopback host only (tokens must
/// not cross a network in clear text). Returns it without a trailing slash.
pub(super) fn check_url(value: Option<&str>, default: &str) -> Result<String, String> {
    let Some(value) = value else {
        return Ok(default.to_owned());
    };
    let url = reqwest::Url::parse(value).map_err(|e| format!("`{value}` is not a URL ({e})"))?;
    if url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(format!(
            "`{value}` must not carry credentials, a query or a fragment"
        ));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(format!(
                "`{value}` must use https (http is allowed only for loopback hosts)"
            ));
        }
        other => return Err(format!("`{value}` has unsupported scheme `{other}`")),
    }
    Ok(value.trim_end_matches('/').to_owned())
}

/// Whether `url` names this machine: `localhost` or a loopback address.
pub(super) fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// A refresh interval: a humantime duration of at least one second.
pub(super) fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration ({e}); use e.g. \"1h\" or \"30m\""))?;
    if d < Duration::from_secs(1) {
        return Err(format!("`{s}` is too short: at least 1s"));
    }
    Ok(d)
}

/// A `report_refresh_intervals` table: report name ▸ interval.
pub(super) fn parse_overrides(
    table: Option<&BTreeMap<String, String>>,
    problems: &mut Problems,
) -> BTreeMap<ReportKind, Duration> {
    let mut out = BTreeMap::new();
    for (report, value) in table.into_iter().flatten() {
        let key = format!("report_refresh_intervals.{report}");
        let Some(kind) = ReportKind::from_name(report) else {
            problems.add(&key, unknown_report(report));
            continue;
        };
        match parse_interval(value) {
            Ok(d) => {
                out.insert(kind, d);
            }
            Err(m) => problems.add(&key, m),
        }
    }
    out
}

/// A list of values from `allowed`, each at most once (a repeat would query the same
/// pair twice and count its records twice).
pub(super) fn check_enum_list(
    values: &[String],
    allowed: &[&str],
    key: &str,
    problems: &mut Problems,
) {
    if values.is_empty() {
        problems.add(key, "must not be empty");
    }
    for (i, v) in values.iter().enumerate() {
        if values[..i].contains(v) {
            problems.add(key, format!("`{v}` is listed twice"));
        } else if !allowed.contains(&v.as_str()) {
            problems.add(key, unknown_value("value", v, allowed));
        }
    }
}

/// The numeric limits: at least one request per 10 s, a `$top` Graph accepts.
pub(super) fn check_limits(max_requests_per_10s: u32, page_size: u32, problems: &mut Problems) {
    if max_requests_per_10s == 0 {
        problems.add("max_requests_per_10s", "must be at least 1");
    }
    if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
        problems.add(
            "page_size",
            format!("must be between 1 and {MAX_PAGE_SIZE}"),
        );
    }
}

/// The reports a tenant collects, each with its interval (`overrides` by report, else
/// `interval`): known names, each once, offered in `cloud`, and at most one of the two
/// registration sources (they feed the same metrics).
pub(super) fn check_reports(
    names: &[String],
    cloud: Cloud,
    interval: Duration,
    overrides: &BTreeMap<ReportKind, Duration>,
    problems: &mut Problems,
) -> Vec<ReportConfig> {
    let mut reports: Vec<ReportConfig> = Vec::new();
    if names.is_empty() {
        problems.add("reports", "is empty: enable at least one report");
    }
    for r in names {
        match ReportKind::from_name(r) {
            None => problems.add("reports", unknown_report(r)),
            Some(kind) if !kind.offered_in(cloud) => problems.add(
                "reports",
                format!(
                    "report `{r}` is not offered by Microsoft in the `{cloud}` cloud \
                     (Global only); remove it or use the global cloud"
                ),
            ),
            Some(kind) if reports.iter().any(|c| c.kind == kind) => {
                problems.add("reports", format!("report `{r}` is listed twice"));
            }
            Some(kind) => reports.push(ReportConfig {
                kind,
                refresh_interval: overrides.get(&kind).copied().unwrap_or(interval),
            }),
        }
    }
    if reports
        .iter()
        .filter(|r| r.kind.is_registration_source())
        .count()
        > 1
    {
        problems.add(
            "reports",
            "enables both user_registration_details and credential_user_registration_details; \
             they feed the same metrics, enable one (user_registration_details is current)",
        );
    }
    reports
}

/// Below this, a refresh against Graph fetches nothing newer: Graph recomputes these
/// reports every few hours, and the reports throttle (about 5 requests per 10 s per
/// app and tenant) is better spent on the pages of big tenants.
pub(super) const SHORT_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// A warning for a tenant whose reports refresh more often than [`SHORT_INTERVAL`]
/// against a real Graph host (a loopback `graph_url` is a simulator or a test).
pub(super) fn short_intervals(t: &TenantConfig, problems: &mut Problems) {
    let loopback = reqwest::Url::parse(&t.graph_url).is_ok_and(|u| is_loopback(&u));
    let short: Vec<String> = t
        .reports
        .iter()
        .filter(|r| r.refresh_interval < SHORT_INTERVAL)
        .map(|r| {
            format!(
                "{} every {}",
                r.kind.name(),
                humantime::format_duration(r.refresh_interval)
            )
        })
        .collect();
    if loopback || short.is_empty() {
        return;
    }
    problems.add(
        "refresh_interval",
        format!(
            "{} is under {}: Graph recomputes these reports only every few hours and \
             throttles them per 10 s, so this spends the request budget without fresher data; \
             an interval of an hour or more is right",
            short.join(", "),
            humantime::format_duration(SHORT_INTERVAL)
        ),
    );
}

/// ``unknown report `x`; did you mean `y`?``, or with the known names.
fn unknown_report(name: &str) -> String {
    let names: Vec<&str> = ReportKind::all().map(|r| r.name()).collect();
    unknown_value("report", name, &names)
}
