//! The landing page of the real binary in `--demo`: the coverage figures it shows are
//! the ones `/metrics` implies, computed as the recording rules do.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;

/// `(MFA capable, of)` over the demo tenant's series whose `key` label is `value`
/// (summed over the other labels), as `entra:mfa_capable:ratio` and
/// `entra:admin_mfa_capable:ratio` compute them.
fn share(series: &BTreeMap<SeriesKey, f64>, key: &str, value: &str) -> (u64, u64) {
    let sum = |name: &str, feature: Option<&str>| -> u64 {
        series
            .iter()
            .filter(|((n, l), _)| {
                n == name
                    && l.get("tenant").map(String::as_str) == Some("demo")
                    && l.get(key).map(String::as_str) == Some(value)
                    && feature.is_none_or(|f| l.get("feature").map(String::as_str) == Some(f))
            })
            .map(|(_, v)| *v as u64)
            .sum()
    };
    (
        sum("entra_users_with_feature", Some("mfa_capable")),
        sum("entra_users", None),
    )
}

/// The figure's text as the page should print it (rounded down to a tenth of a
/// percent): `<span class="num">83.4%</span><span class="of">1,849 of 2,215</span>`.
fn expected_html((count, of): (u64, u64)) -> String {
    assert!(of > 0, "the demo tenant has users of every kind");
    let per_mille = count * 1000 / of;
    let grouped = |n: u64| {
        let digits = n.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    };
    format!(
        "<span class=\"num\">{}.{}%</span><span class=\"of\">{} of {}</span>",
        per_mille / 10,
        per_mille % 10,
        grouped(count),
        grouped(of)
    )
}

/// The page from figure `id` on.
fn figure<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page
        .find(&format!("data-figure=\"{id}\""))
        .unwrap_or_else(|| panic!("no figure {id} on the page:\n{page}"));
    &page[start..]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_landing_page_shows_what_metrics_says() {
    tokio::time::timeout(WAIT * 2, async {
        let exporter = Exporter::start(&["--demo"], &[]);
        poll_until(&exporter.url("/metrics"), "text/plain", |s, b| {
            // The registration report's own family: other reports (Microsoft's summaries)
            // carry mfa_capable too, and registration waits for the group membership.
            s == 200
                && b.lines().any(|l| {
                    l.starts_with("entra_users_with_feature{")
                        && l.contains("feature=\"mfa_capable\"")
                })
        })
        .await;
        // The demo's data drifts at every refresh: compare a page rendered between two
        // scrapes that agree. The second scrape waits out the scrape cache, so it shows
        // the store as it was at least when the page was rendered.
        let scrape = || async {
            let (status, body) = get(&exporter.url("/metrics"), "text/plain").await;
            assert_eq!(status, 200);
            let series = parse_exposition(&body);
            (
                share(&series, "user_type", "member"),
                share(&series, "role", "admin"),
            )
        };
        for attempt in 1..=10 {
            let before = scrape().await;
            let (status, page) = get(&exporter.url("/"), "text/html").await;
            assert_eq!(status, 200);
            tokio::time::sleep(Duration::from_millis(1_100)).await;
            if scrape().await != before {
                assert!(
                    attempt < 10,
                    "the demo's figures moved between every pair of scrapes"
                );
                continue;
            }
            let (members, admins) = before;
            for (id, share) in [
                ("members-mfa-capable", members),
                ("admins-mfa-capable", admins),
            ] {
                let (shown, expected) = (figure(&page, id), expected_html(share));
                let end = shown.find("</div></div>").expect("the figure's end");
                assert!(
                    shown[..end].contains(&expected),
                    "{id}: expected {expected} in {}",
                    &shown[..end]
                );
            }
            // 2,500 users, of whom the demo excludes 15 (a break-glass group, a pattern).
            assert!(
                page.contains("<h3>demo</h3>")
                    && page.contains("From user_registration_details, 2,485 users"),
                "{page}"
            );
            assert!(
                !page.contains("Shard") && !page.contains("<script"),
                "{page}"
            );
            assert!(
                page.contains("1 row<") && !page.contains(" 1 rows"),
                "{page}"
            );
            return;
        }
    })
    .await
    .unwrap();
}
