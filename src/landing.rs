//! The landing page (`/`): what an admin without Grafana sees first. Per tenant, the
//! coverage figures of its registration report with inline bars (the numbers the
//! `entra:*:ratio` recording rules compute) and how old they are; then every report's
//! status, last success and last error; a refresh under way shows its pages so far and
//! the time left at its pace.
//!
//! Plain HTML and CSS, no scripts; every value that comes from config or Graph (tenant
//! names, errors, user principal names) is escaped. Readable from phone width up: the
//! tenant cards and figures wrap, and the reports table stacks into one block per row.
//! Part of the server layer: it reads the store, never Graph.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use crate::reports::{Headline, ReportKind, Share};
use crate::shard::Shard;
use crate::snapshot::{ReportState, Running, Snapshot, Store};

/// The page for `store`'s reports as of `now`.
pub fn page(
    store: &Store,
    shard: Shard,
    banner: Option<&str>,
    telemetry_path: &str,
    now: SystemTime,
) -> String {
    let states = store.states();
    let mut tenants: Vec<(&str, Vec<(ReportKind, &ReportState)>)> = Vec::new();
    for ((tenant, report), state) in &states {
        match tenants.last_mut() {
            Some((t, reports)) if t == tenant => reports.push((*report, state)),
            _ => tenants.push((tenant, vec![(*report, state)])),
        }
    }
    let mut cards = String::new();
    for (tenant, reports) in &tenants {
        cards.push_str(&tenant_card(tenant, reports, now));
    }
    if tenants.is_empty() {
        cards.push_str("<p>No tenants are configured for this replica.</p>\n");
    }
    let mut rows = String::new();
    for ((tenant, report), state) in &states {
        rows.push_str(&report_row(tenant, *report, state, now));
    }
    let banner = banner
        .map(|b| format!("<p class=\"banner\">{}</p>\n", esc(b)))
        .unwrap_or_default();
    // Unsharded (the usual case) there is nothing to say.
    let shard = if shard.count > 1 {
        format!(
            "<p>Shard {shard} (<code>--shard.index</code> of <code>--shard.count</code>): this replica collects the tenants listed below.</p>\n"
        )
    } else {
        String::new()
    };
    let path = esc(telemetry_path);
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Entra MFA Exporter</title>
<style>{STYLE}</style></head>
<body><h1>Entra MFA Exporter</h1>
<p class="quiet">Version {version}. Prometheus exporter for Microsoft Entra ID authentication-methods reports.</p>
<nav><a href="{path}">Metrics</a> <a href="/-/healthy">Health</a> <a href="/-/ready">Readiness</a></nav>
{banner}{shard}<h2>Coverage</h2>
<div class="tenants">
{cards}</div>
<h2>Reports</h2>
<table><thead><tr><th>Tenant</th><th>Report</th><th>Status</th><th>Last success</th><th>Last error</th></tr></thead>
<tbody>
{rows}</tbody></table>
</body></html>
"#,
        version = env!("CARGO_PKG_VERSION"),
    )
}

const STYLE: &str = "\
*{box-sizing:border-box}\
body{font-family:system-ui,sans-serif;line-height:1.4;color:#1f2328;margin:0 auto;padding:1rem 1.25rem;max-width:75rem}\
h1{font-size:1.6rem;margin:.3rem 0}h2{font-size:1.25rem;margin:1.4rem 0 .6rem}\
h3{font-size:1.1rem;margin:0 0 .2rem;overflow-wrap:anywhere}\
nav a{margin-right:1.2rem}.quiet{color:#59636e}\
.banner{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:.5rem .75rem}\
.tenants{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,22rem),1fr));gap:1rem}\
.tenant{border:1px solid #d0d7de;border-radius:6px;padding:.75rem 1rem}\
.fresh{color:#59636e;font-size:.9rem;margin:0 0 .5rem}\
.figures{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,13rem),1fr));gap:.4rem 1.5rem}\
.fig{margin:.3rem 0}.name{font-size:.9rem}\
.num{font-size:1.5rem;font-weight:600;margin-right:.4rem}.of{color:#59636e;font-size:.9rem}\
.bar{height:.55rem;background:#e6eaef;border-radius:3px;overflow:hidden;margin-top:.15rem}\
.bar span{display:block;height:100%;background:#0969da}.bar.bad span{background:#cf222e}\
.note{font-size:.9rem;color:#59636e;margin:.5rem 0 0}\
details{margin-top:.5rem;font-size:.9rem}details ul{margin:.3rem 0;padding-left:1.2rem;overflow-wrap:anywhere}\
.ok{color:#1a7f37}.bad{color:#cf222e}.pending{color:#9a6700}\
table{border-collapse:collapse;width:100%}\
td,th{border:1px solid #d0d7de;padding:.35rem .6rem;text-align:left;vertical-align:top}\
th{background:#f6f8fa}td.err{overflow-wrap:anywhere}.stamp{white-space:nowrap}small{color:#59636e}\
@media (max-width:40rem){body{padding:.75rem}\
table,tbody,tr,td{display:block}thead{display:none}\
tr{border:1px solid #d0d7de;border-radius:6px;margin-bottom:.6rem;padding:.3rem 0}\
td{border:0;padding:.1rem .6rem}td:empty{display:none}td::before{content:attr(data-label) \": \";font-weight:600;color:#1f2328}}";

/// One tenant's coverage card.
fn tenant_card(tenant: &str, reports: &[(ReportKind, &ReportState)], now: SystemTime) -> String {
    let mut out = format!("<section class=\"tenant\"><h3>{}</h3>\n", esc(tenant));
    // At most one registration source per tenant (config validation).
    let source = reports.iter().find(|(r, _)| r.is_registration_source());
    let figures = source.and_then(|(report, state)| {
        let snap = state.snapshot.as_ref()?;
        Some((*report, state, snap, snap.data.headline()?))
    });
    match (source, figures) {
        (_, Some((report, state, snap, headline))) => {
            out.push_str(&freshness(report, state, snap, headline.users, now));
            out.push_str(&figures_html(report, &headline));
        }
        (Some((report, state)), None) => {
            let why = match &state.last_attempt {
                Some(a) if !a.success => "its last refresh failed (the error is below)",
                _ => "waiting for its first refresh",
            };
            let _ = writeln!(
                out,
                "<p class=\"note\">No coverage figures yet from {report}: {why}.</p>"
            );
        }
        (None, _) => out.push_str(
            "<p class=\"note\">No coverage figures: the tenant collects neither registration report \
             (<code>user_registration_details</code>, or the legacy \
             <code>credential_user_registration_details</code>).</p>\n",
        ),
    }
    out.push_str("</section>\n");
    out
}

/// "From REPORT, N users, completed AGE (TIME)", flagged when the last refresh failed.
fn freshness(
    report: ReportKind,
    state: &ReportState,
    snap: &Snapshot,
    users: u64,
    now: SystemTime,
) -> String {
    let failing = match &state.last_attempt {
        Some(a) if !a.success => {
            " <strong class=\"bad\">The last refresh failed: these are the figures of the last good one.</strong>"
        }
        _ => "",
    };
    format!(
        "<p class=\"fresh\">From {report}, {users}, completed {when}.{failing}</p>\n",
        users = plural(users, "user", "users"),
        when = completed(snap.finished_at, now),
    )
}

/// The figures of one headline.
fn figures_html(report: ReportKind, h: &Headline) -> String {
    let mut out = String::from("<div class=\"figures\">\n");
    let figure = |out: &mut String, id: &str, name: &str, share: Share, bad: bool| {
        let (num, width) = match share.per_mille() {
            Some(p) => (percent(p), percent(p)),
            None => ("–".to_owned(), "0%".to_owned()),
        };
        let _ = writeln!(
            out,
            "<div class=\"fig\" data-figure=\"{id}\"><div class=\"name\">{name}</div>\
             <div><span class=\"num\">{num}</span><span class=\"of\">{} of {}</span></div>\
             <div class=\"bar{}\" aria-hidden=\"true\"><span style=\"width:{width}\"></span></div></div>",
            grouped(share.count),
            grouped(share.of),
            if bad { " bad" } else { "" },
        );
    };
    match (h.members_mfa_capable, h.admins_mfa_capable) {
        (Some(members), Some(admins)) => {
            figure(
                &mut out,
                "members-mfa-capable",
                "Members MFA capable",
                members,
                false,
            );
            figure(
                &mut out,
                "admins-mfa-capable",
                "Admins MFA capable",
                admins,
                false,
            );
        }
        _ => figure(
            &mut out,
            "mfa-registered",
            "All users MFA registered",
            h.mfa_registered,
            false,
        ),
    }
    figure(
        &mut out,
        "without-methods",
        "Users with no registered method",
        h.without_methods,
        true,
    );
    out.push_str("</div>\n");
    if h.members_mfa_capable.is_none() {
        let _ = writeln!(
            out,
            "<p class=\"note\">{report} has no user types, roles or MFA-capable flag: \
             the figures are over all users. <code>user_registration_details</code> has them.</p>"
        );
    }
    if let Some((listed, total)) = &h.admins_without_mfa {
        out.push_str(&admins_html(listed, *total));
    }
    out
}

/// The opt-in list of admins who are not MFA capable.
fn admins_html(listed: &[String], total: u64) -> String {
    if total == 0 {
        return "<p class=\"note\">Every admin with a user principal name is MFA capable.</p>\n"
            .into();
    }
    let mut out = format!(
        "<details><summary class=\"bad\">{} not MFA capable, by name</summary><ul>",
        plural(total, "admin", "admins")
    );
    for upn in listed {
        let _ = write!(out, "<li>{}</li>", esc(upn));
    }
    let more = total.saturating_sub(listed.len() as u64);
    if more > 0 {
        let _ = write!(
            out,
            "<li>and {} more (<code>max_listed_admins</code>)</li>",
            grouped(more)
        );
    }
    out.push_str("</ul></details>\n");
    out
}

/// One row of the reports table.
fn report_row(tenant: &str, report: ReportKind, s: &ReportState, now: SystemTime) -> String {
    let (status, class) = match &s.last_attempt {
        None if s.snapshot.is_none() => ("waiting for first refresh", "pending"),
        None => ("restored", "ok"),
        Some(a) if a.success => ("up", "ok"),
        Some(_) => ("failing", "bad"),
    };
    let running = s
        .progress
        .running()
        .map(|r| running_html(&r, now))
        .unwrap_or_default();
    // Why part of a successful refresh's data is unavailable (issue 14: no P2).
    let note = s
        .snapshot
        .as_ref()
        .and_then(|snap| snap.data.note())
        .map(|n| format!("<br><small class=\"note\">{}</small>", esc(&n)))
        .unwrap_or_default();
    let last_success = s
        .snapshot
        .as_ref()
        .map(|snap| {
            format!(
                "{}<br><small>{} · {}</small>",
                ago_html(snap.finished_at, now),
                stamp(snap.finished_at),
                plural(snap.records, "row", "rows")
            )
        })
        .unwrap_or_else(|| "never".into());
    let error = s
        .last_attempt
        .as_ref()
        .and_then(|a| a.error.as_deref())
        .map(esc)
        .unwrap_or_default();
    format!(
        "<tr><td data-label=\"Tenant\">{}</td><td data-label=\"Report\">{report}</td>\
         <td data-label=\"Status\"><span class=\"{class}\">{status}</span>{note}{running}</td>\
         <td data-label=\"Last success\">{last_success}</td>\
         <td data-label=\"Last error\" class=\"err\">{error}</td></tr>\n",
        esc(tenant),
    )
}

/// A running refresh under its report's status: "refreshing: 412 pages so far, about
/// 9 min left" (the time left at the pace since it started, when the last success's
/// page count gives a total to aim at).
fn running_html(r: &Running, now: SystemTime) -> String {
    let left = match r.time_left(now) {
        Some(d) => format!(", about {} left", span(d)),
        None => String::new(),
    };
    format!(
        "<br><small class=\"running\">refreshing: {} so far{left}</small>",
        plural(r.pages, "page", "pages")
    )
}

/// A span of time in its two largest units, rounded up to the second: "45 s",
/// "12 min", "3 h 5 min".
fn span(d: Duration) -> String {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    let (h, m, s) = (secs / 3_600, secs / 60 % 60, secs % 60);
    match () {
        _ if secs < 60 => format!("{s} s"),
        _ if secs < 3_600 && s == 0 => format!("{m} min"),
        _ if secs < 3_600 => format!("{m} min {s} s"),
        _ if m == 0 => format!("{h} h"),
        _ => format!("{h} h {m} min"),
    }
}

/// "12 min ago (2024-05-01T10:00:00Z)".
fn completed(t: SystemTime, now: SystemTime) -> String {
    format!("{} ({})", ago_html(t, now), stamp(t))
}

/// "12 min ago" in a `<time>` element.
fn ago_html(t: SystemTime, now: SystemTime) -> String {
    format!("<time datetime=\"{}\">{}</time>", rfc3339(t), ago(t, now))
}

/// The RFC 3339 time, kept on one line.
fn stamp(t: SystemTime) -> String {
    format!("<span class=\"stamp\">{}</span>", rfc3339(t))
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// How long before `now` `t` was, in its two largest units: "45 s ago", "12 min ago",
/// "3 h 5 min ago", "2 d 4 h ago". A time ahead of `now` (clock skew) is "just now".
fn ago(t: SystemTime, now: SystemTime) -> String {
    let secs = now.duration_since(t).unwrap_or(Duration::ZERO).as_secs();
    let (d, h, m, s) = (secs / 86_400, secs / 3_600 % 24, secs / 60 % 60, secs % 60);
    match () {
        _ if secs == 0 => "just now".into(),
        _ if secs < 60 => format!("{s} s ago"),
        _ if secs < 3_600 => format!("{m} min ago"),
        _ if secs < 86_400 && m == 0 => format!("{h} h ago"),
        _ if secs < 86_400 => format!("{h} h {m} min ago"),
        _ if h == 0 => format!("{d} d ago"),
        _ => format!("{d} d {h} h ago"),
    }
}

/// Tenths of a percent as "87.3%".
fn percent(per_mille: u64) -> String {
    format!("{}.{}%", per_mille / 10, per_mille % 10)
}

/// "1 row", "2,500 rows".
fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", grouped(n), if n == 1 { one } else { many })
}

/// `n` with thousands separated by commas: 1234567 ▸ "1,234,567".
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{AdminList, RegistrationCounts, Source, UserFacts};
    use crate::reports::registration::tests::user;
    use std::time::UNIX_EPOCH;

    const URD: &str = "user_registration_details";
    const LEGACY: &str = "credential_user_registration_details";

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    /// 7 members (3 admins among them, 2 capable), 3 of them MFA capable; one guest;
    /// 2 users with no method. Admin "<b>x@y</b>" is listed without MFA.
    fn counts() -> RegistrationCounts {
        let mut c = RegistrationCounts::new(Source::UserRegistrationDetails);
        for (user_type, is_admin, capable, methods) in [
            ("member", true, true, &["fido2"][..]),
            ("member", true, true, &["push", "sms"]),
            ("member", true, false, &[]),
            ("member", false, true, &["push"]),
            ("member", false, false, &["email"]),
            ("member", false, false, &["sms"]),
            ("member", false, false, &[]),
            ("guest", false, true, &["push"]),
        ] {
            user(&mut c, user_type, is_admin, false, capable, methods);
        }
        let mut admins = AdminList::new(10);
        admins.add(Some("<b>x@y</b>"));
        c.admins_without_mfa = Some(admins);
        c
    }

    fn store_with(tenant: &str, report: &str, data: RegistrationCounts, records: u64) -> Store {
        let store = Store::new([(tenant.to_owned(), ReportKind::named(report))]);
        store.publish(
            tenant,
            ReportKind::named(report),
            Snapshot {
                data: Box::new(data),
                records,
                finished_at: at(0),
            },
            Duration::from_secs(1),
        );
        store
    }

    fn render(store: &Store, shard: Shard) -> String {
        page(store, shard, None, "/metrics", at(12 * 60 + 5))
    }

    /// The text of the figure `id`'s number and "n of m".
    fn figure(page: &str, id: &str) -> String {
        let start = page
            .find(&format!("data-figure=\"{id}\""))
            .unwrap_or_else(|| panic!("no figure {id} in {page}"));
        let rest = &page[start..];
        let text = |class: &str| {
            let open = format!("<span class=\"{class}\">");
            let from = rest.find(&open).unwrap() + open.len();
            rest[from..from + rest[from..].find('<').unwrap()].to_owned()
        };
        format!("{} | {}", text("num"), text("of"))
    }

    #[test]
    fn figures_come_from_the_registration_counts() {
        let page = render(&store_with("t", URD, counts(), 8), Shard::default());
        // Members of any role: 3 of 7 capable is 42.857…%, shown rounded down.
        assert_eq!(figure(&page, "members-mfa-capable"), "42.8% | 3 of 7");
        assert_eq!(figure(&page, "admins-mfa-capable"), "66.6% | 2 of 3");
        assert_eq!(figure(&page, "without-methods"), "25.0% | 2 of 8");
        assert!(page.contains("style=\"width:42.8%\""), "{page}");
        assert!(!page.contains("data-figure=\"mfa-registered\""));
        assert!(page.contains("1 admin not MFA capable"), "{page}");
        // Freshness: the age and the time it was completed.
        assert!(
            page.contains("From user_registration_details, 8 users, completed <time datetime=\"2023-11-14T22:13:20Z\">12 min ago</time> (<span class=\"stamp\">2023-11-14T22:13:20Z</span>)."),
            "{page}"
        );
        assert!(page.contains("<meta name=\"viewport\""));
        assert!(!page.contains("<script"));
    }

    #[test]
    fn everything_from_config_and_graph_is_escaped() {
        let store = store_with("t<1>", URD, counts(), 8);
        store.record_failure(
            "t<1>",
            ReportKind::named(URD),
            "boom <b>\"'&".into(),
            Duration::ZERO,
        );
        let page = page(&store, Shard::default(), Some("<i>"), "/m\"x", at(60));
        assert!(page.contains("<h3>t&lt;1&gt;</h3>"), "{page}");
        assert!(page.contains("boom &lt;b&gt;&quot;&#39;&amp;"), "{page}");
        assert!(page.contains("<li>&lt;b&gt;x@y&lt;/b&gt;</li>"), "{page}");
        assert!(page.contains("&lt;i&gt;") && page.contains("href=\"/m&quot;x\""));
        assert!(!page.contains("<b>") && !page.contains("<i>"));
        // The figures stay, flagged as older than the failed refresh.
        assert!(page.contains(">failing<") && page.contains("The last refresh failed"));
        assert_eq!(figure(&page, "members-mfa-capable"), "42.8% | 3 of 7");
    }

    #[test]
    fn one_row_and_no_shard_line_when_unsharded() {
        let mut c = RegistrationCounts::new(Source::UserRegistrationDetails);
        c.add_user(&UserFacts::default(), []);
        let page = render(&store_with("t", URD, c, 1), Shard::default());
        assert!(
            page.contains("1 row<") && !page.contains("1 rows"),
            "{page}"
        );
        assert!(page.contains(", 1 user, completed"), "{page}");
        assert!(!page.contains("Shard"), "{page}");
        let sharded = render(
            &store_with("t", URD, counts(), 8),
            Shard::new(1, 3).unwrap(),
        );
        assert!(sharded.contains("Shard 1 of 3") && sharded.contains("8 rows"));
    }

    #[test]
    fn no_members_is_no_percentage() {
        let mut c = RegistrationCounts::new(Source::UserRegistrationDetails);
        c.add_user(
            &UserFacts {
                user_type: Some("guest"),
                ..UserFacts::default()
            },
            [],
        );
        let page = render(&store_with("t", URD, c, 1), Shard::default());
        assert_eq!(figure(&page, "members-mfa-capable"), "– | 0 of 0");
        assert!(page.contains("style=\"width:0%\""));
    }

    #[test]
    fn the_legacy_source_shows_what_it_has_and_says_so() {
        let mut c = RegistrationCounts::new(Source::CredentialUserRegistrationDetails);
        let registered = UserFacts {
            features: [true, false, false, false, false, false, false],
            ..UserFacts::default()
        };
        c.add_user(&registered, ["push"]);
        c.add_user(&UserFacts::default(), []);
        c.add_user(&UserFacts::default(), ["email"]);
        let page = render(&store_with("t", LEGACY, c, 3), Shard::default());
        assert_eq!(figure(&page, "mfa-registered"), "33.3% | 1 of 3");
        assert_eq!(figure(&page, "without-methods"), "33.3% | 1 of 3");
        assert!(!page.contains("members-mfa-capable") && !page.contains("admins-mfa-capable"));
        assert!(page.contains("has no user types, roles or MFA-capable flag"));
    }

    #[test]
    fn tenants_without_figures_say_why() {
        let store = Store::new([
            ("a".to_owned(), ReportKind::named(URD)),
            (
                "b".to_owned(),
                ReportKind::named("credential_usage_summary"),
            ),
        ]);
        let waiting = render(&store, Shard::default());
        assert!(waiting.contains("No coverage figures yet from user_registration_details: waiting for its first refresh."), "{waiting}");
        assert!(waiting.contains("the tenant collects neither registration report"));
        assert!(waiting.contains(">waiting for first refresh<") && waiting.contains(">never<"));
        store.record_failure("a", ReportKind::named(URD), "403".into(), Duration::ZERO);
        let failed = render(&store, Shard::default());
        assert!(failed.contains("its last refresh failed"), "{failed}");
        assert!(render(&Store::default(), Shard::default()).contains("No tenants are configured"));
    }

    #[test]
    fn a_report_note_shows_escaped_beside_its_status() {
        let roles = ReportKind::named("privileged_roles");
        let store = Store::new([("t".to_owned(), roles)]);
        let index = crate::privileged::Privileged {
            eligibility_unavailable: Some("eligibility unavailable: <no P2>".into()),
            ..Default::default()
        };
        let data = crate::reports::privileged_roles::PrivilegedData(std::sync::Arc::new(index));
        let snapshot = Snapshot {
            data: Box::new(data),
            records: 3,
            finished_at: at(0),
        };
        store.publish("t", roles, snapshot, Duration::from_secs(1));
        let page = render(&store, Shard::default());
        assert!(
            page.contains("<small class=\"note\">eligibility unavailable: &lt;no P2&gt;</small>"),
            "{page}"
        );
    }

    #[test]
    fn cut_admin_lists_say_how_many_more() {
        let mut c = counts();
        let mut admins = AdminList::new(1);
        for upn in ["a@x", "b@x", "c@x"] {
            admins.add(Some(upn));
        }
        c.admins_without_mfa = Some(admins);
        let page = render(&store_with("t", URD, c.clone(), 8), Shard::default());
        assert!(page.contains("3 admins not MFA capable") && page.contains("<li>a@x</li>"));
        assert!(page.contains("and 2 more"), "{page}");
        c.admins_without_mfa = Some(AdminList::new(5));
        let page = render(&store_with("t", URD, c, 8), Shard::default());
        assert!(page.contains("Every admin with a user principal name is MFA capable"));
    }

    #[test]
    fn ages_read_in_two_units() {
        let ago = |secs| super::ago(at(0), at(secs));
        assert_eq!(ago(0), "just now");
        assert_eq!(ago(45), "45 s ago");
        assert_eq!(ago(12 * 60 + 59), "12 min ago");
        assert_eq!(ago(3 * 3600), "3 h ago");
        assert_eq!(ago(3 * 3600 + 5 * 60), "3 h 5 min ago");
        assert_eq!(ago(2 * 86_400), "2 d ago");
        assert_eq!(ago(2 * 86_400 + 4 * 3600 + 59), "2 d 4 h ago");
        assert_eq!(super::ago(at(10), at(0)), "just now", "clock skew");
    }

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000), "1,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(plural(1, "row", "rows"), "1 row");
        assert_eq!(plural(2_500, "row", "rows"), "2,500 rows");
        assert_eq!(percent(1000), "100.0%");
    }

    #[test]
    fn a_running_refresh_shows_its_pages_and_time_left() {
        let r = Running {
            started: at(0),
            pages: 100,
            expected: Some(400),
        };
        assert_eq!(
            running_html(&r, at(50)),
            "<br><small class=\"running\">refreshing: 100 pages so far, about 2 min 30 s left</small>"
        );
        let first = Running {
            pages: 1,
            expected: None,
            ..r
        };
        assert_eq!(
            running_html(&first, at(50)),
            "<br><small class=\"running\">refreshing: 1 page so far</small>"
        );
        let store = store_with("t", URD, counts(), 8);
        let progress = store.progress("t", ReportKind::named(URD));
        progress.start();
        progress.page();
        progress.page();
        let page = render(&store, Shard::default());
        assert!(page.contains("refreshing: 2 pages so far"), "{page}");
        assert!(page.contains(">up</span><br>"), "{page}");
        progress.finish(true);
        assert!(!render(&store, Shard::default()).contains("refreshing"));
    }

    #[test]
    fn spans_read_in_two_units() {
        assert_eq!(span(Duration::from_millis(200)), "1 s");
        assert_eq!(span(Duration::from_secs(45)), "45 s");
        assert_eq!(span(Duration::from_secs(720)), "12 min");
        assert_eq!(
            span(Duration::from_secs(3 * 3600 + 5 * 60 + 9)),
            "3 h 5 min"
        );
        assert_eq!(span(Duration::from_secs(7200)), "2 h");
    }
}
