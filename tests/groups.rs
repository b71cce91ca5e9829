//! Groups and exclusions end to end (design.md, "Coverage as security teams count it"):
//! a tenant of 20,000 users and 12 groups (3 nested with a cycle, a 6,000-member group
//! over several pages, duplicate display names, non-user members, members absent from
//! the registration report, a deleted group), exclusions by group and by pattern, and
//! directory 429s with and without `Retry-After`. Every coverage series equals the
//! simulator's own truth in `--once` and in serve mode; withdrawing GroupMember.Read.All
//! fails only `group_membership`, and coverage never includes an excluded user.

mod common;

use std::collections::BTreeMap;

use common::*;
use entra_mfa_exporter::simulate::{
    CoverageSpec, CoverageTruth, Faults, SimGroup, SimServer, UserSet,
};

const USERS: u64 = 20_000;

/// Group ids: `…-00000000000n` for group n.
fn gid(n: u32) -> String {
    format!("6f1c2a9e-0000-4000-8000-{n:012x}")
}

fn group(n: u32, name: &str, users: &[(u64, u64, u64)], nested: &[u32], others: u32) -> SimGroup {
    SimGroup {
        id: gid(n),
        display_name: name.into(),
        users: users
            .iter()
            .map(|&(start, end, step)| UserSet { start, end, step })
            .collect(),
        nested: nested.iter().map(|n| gid(*n)).collect(),
        other_members: others,
        deleted: false,
    }
}

/// The tenant's 12 groups.
fn groups() -> Vec<SimGroup> {
    vec![
        // 0 ▸ 1 ▸ 2 ▸ 0: nested three deep with a cycle; 1 overlaps 0 (users listed twice).
        group(0, "Finance", &[(0, 2_000, 1)], &[1], 5),
        group(1, "Finance EU", &[(1_500, 2_600, 1)], &[2], 0),
        group(2, "Finance EU Payroll", &[(2_600, 2_700, 1)], &[0], 2),
        // 6,000 members: 7 pages of 999.
        group(3, "All Staff", &[(0, 18_000, 3)], &[], 0),
        // Some members past the report's users (e.g. disabled accounts).
        group(4, "Executives", &[(100, 20_100, 997)], &[], 1),
        group(5, "Engineering", &[(5_000, 9_000, 2)], &[], 30),
        // Two groups named Sales: configured by id.
        group(6, "Sales", &[(9_000, 9_400, 1)], &[], 0),
        group(7, "Sales", &[(9_400, 9_500, 1)], &[], 0),
        group(
            8,
            "Emergency access accounts",
            &[(19_990, 20_000, 1)],
            &[],
            0,
        ),
        group(
            9,
            "O'Brien & Co contractors",
            &[(12_000, 13_000, 1)],
            &[],
            3,
        ),
        // Admins nest the break-glass group: its members count nowhere.
        group(10, "Admins", &[(0, 20_000, 101)], &[8], 0),
        SimGroup {
            deleted: true,
            ..group(11, "Old team", &[(0, 100, 1)], &[], 0)
        },
    ]
}

fn spec() -> CoverageSpec {
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    CoverageSpec {
        groups: s(&[
            "Finance",
            "Finance EU",
            "Finance EU Payroll",
            "All Staff",
            "Executives",
            "Engineering",
            &gid(6),
            "O'Brien & Co contractors",
            "Admins",
        ]),
        exclude_groups: s(&["Emergency access accounts"]),
        exclude_users: s(&["user1*7@*", "USER300?@contoso.onmicrosoft.COM"]),
    }
}

async fn groups_sim(faults: Faults) -> (SimServer, String) {
    let sim = start_sim(USERS, 31, |c| {
        c.tenants[0].groups = groups();
        c.faults = faults;
    })
    .await;
    let s = spec();
    let extra = format!(
        "groups = {}\nexclude_groups = {}\nexclude_users = {}\ndirectory_max_requests_per_10s = 100000\n",
        toml_list(&s.groups),
        toml_list(&s.exclude_groups),
        toml_list(&s.exclude_users)
    );
    let text = config_toml(&sim, "user_registration_details", &extra);
    (sim, text)
}

const GROUP_FAMILIES: &[&str] = &[
    "entra_users_excluded",
    "entra_group_members",
    "entra_group_users",
    "entra_group_users_with_feature",
    "entra_group_users_by_strength",
];

fn families() -> Vec<&'static str> {
    USER_FAMILIES
        .iter()
        .chain(GROUP_FAMILIES)
        .copied()
        .collect()
}

/// The series `truth` implies.
fn expected(truth: &CoverageTruth) -> BTreeMap<SeriesKey, f64> {
    let mut out = expected_series("t1", &truth.registration, true);
    for (reason, n) in [
        ("group", truth.excluded_group),
        ("pattern", truth.excluded_pattern),
    ] {
        out.insert(
            key(
                "entra_users_excluded",
                &[("tenant", "t1"), ("reason", reason)],
            ),
            n as f64,
        );
    }
    for (group, g) in &truth.groups {
        let labels = [("tenant", "t1"), ("group", group.as_str())];
        out.insert(key("entra_group_members", &labels), g.members as f64);
        out.insert(key("entra_group_users", &labels), g.users as f64);
        for (feature, n) in &g.features {
            let mut l = labels.to_vec();
            l.push(("feature", feature));
            out.insert(key("entra_group_users_with_feature", &l), *n as f64);
        }
        for (strength, n) in &g.strengths {
            let mut l = labels.to_vec();
            l.push(("strength", strength));
            out.insert(key("entra_group_users_by_strength", &l), *n as f64);
        }
    }
    out
}

fn truth_now(sim: &SimServer) -> CoverageTruth {
    sim.coverage_truth(TENANT_ID, &spec())
}

#[test]
fn the_truth_is_not_trivial() {
    // Guards the test data itself: every case the tests rely on occurs.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (sim, _) = groups_sim(Faults::default()).await;
        let t = truth_now(&sim);
        assert_eq!(t.excluded_group, 10);
        assert!(t.excluded_pattern > 50, "{}", t.excluded_pattern);
        assert_eq!(t.groups.len(), 9);
        let g = |name: &str| t.groups[name].clone();
        // The cycle: every Finance group reaches all 2,700 users.
        for name in ["Finance", "Finance EU", "Finance EU Payroll"] {
            assert!(
                g(name).members > 2_600 && g(name).members <= 2_700,
                "{name}"
            );
        }
        assert!(g("All Staff").members > 5_500);
        // Executives has members the registration report does not list.
        assert!(g("Executives").members > g("Executives").users);
        assert!(g("Admins").users > 0);
        for strength in ["none", "mfa", "phishing_resistant"] {
            assert!(g("All Staff").strengths[strength] > 0, "{strength}");
        }
        assert_eq!(
            t.registration.total_users(),
            USERS - t.excluded_group - t.excluded_pattern
        );
        sim.shutdown().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_matches_truth_with_exclusions_and_directory_throttling() {
    tokio::time::timeout(WAIT, async {
        let faults = Faults {
            directory_throttle_every: Some(5),
            directory_retry_after: Some(0.2),
            ..Faults::default()
        };
        let (sim, text) = groups_sim(faults).await;
        let (_dir, path) = config_file(&text);
        let out = run_binary(once_args(&path)).await;
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(
            out.status.success(),
            "stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let series = parse_exposition(&stdout);
        let expected = expected(&truth_now(&sim));
        assert_series_eq(&only(&series, &families()), &expected);
        let up = series[&key(
            "entra_exporter_report_up",
            &[("tenant", "t1"), ("report", "group_membership")],
        )];
        assert_eq!(up, 1.0);
        let requests = |endpoint: &str, code: &str| {
            series
                .get(&key(
                    "entra_exporter_graph_requests_total",
                    &[("tenant", "t1"), ("endpoint", endpoint), ("code", code)],
                ))
                .copied()
                .unwrap_or(0.0)
        };
        // 9 names resolved (one group is named by id); 10 groups listed, All Staff
        // over 7 pages.
        assert_eq!(requests("groups", "200"), 9.0);
        assert!(requests("transitiveMembers", "200") >= 16.0);
        assert!(requests("groups", "429") + requests("transitiveMembers", "429") >= 1.0);
        // Members are listed without an OData cast, and names are quoted and encoded.
        let paths: Vec<String> = sim
            .requests()
            .into_iter()
            .map(|r| r.path_and_query)
            .collect();
        assert!(
            paths.iter().any(|p| p.contains("O%27%27Brien%20%26%20Co")),
            "{paths:?}"
        );
        assert!(paths.iter().all(|p| !p.contains("microsoft.graph.user")));
        sim.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_matches_truth_and_keeps_exclusions_when_the_permission_goes() {
    tokio::time::timeout(WAIT * 2, async {
        let faults = Faults {
            directory_throttle_every: Some(6),
            directory_retry_after: None,
            ..Faults::default()
        };
        let (sim, text) = groups_sim(faults).await;
        let text = text.replace("refresh_interval = \"30s\"", "refresh_interval = \"2s\"");
        let (_dir, path) = config_file(&text);
        let exporter = Exporter::start(&["--config.file", path.to_str().unwrap()], &[]);
        let expected = expected(&truth_now(&sim));
        let (_, body) = poll_until(&exporter.url("/metrics"), "text/plain", |s, b| {
            s == 200 && only(&parse_exposition(b), &families()) == expected
        })
        .await;
        assert_series_eq(&only(&parse_exposition(&body), &families()), &expected);

        // The admin withdraws the permission: membership fails and says which one;
        // registration keeps refreshing against the last index, still excluding.
        assert!(sim.set_directory_permission(TENANT_ID, false));
        let up = key(
            "entra_exporter_report_up",
            &[("tenant", "t1"), ("report", "group_membership")],
        );
        let registration_up = key(
            "entra_exporter_report_up",
            &[("tenant", "t1"), ("report", "user_registration_details")],
        );
        let (_, body) = poll_until(&exporter.url("/metrics"), "text/plain", |s, b| {
            s == 200 && parse_exposition(b).get(&up) == Some(&0.0)
        })
        .await;
        let series = parse_exposition(&body);
        assert_eq!(series[&registration_up], 1.0);
        assert_series_eq(&only(&series, &families()), &expected);
        let (_, landing) = get(&exporter.url("/"), "text/html").await;
        assert!(landing.contains("GroupMember.Read.All"), "{landing}");
        sim.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_exclusion_membership_publishes_no_coverage() {
    tokio::time::timeout(WAIT, async {
        let (sim, text) = groups_sim(Faults::default()).await;
        assert!(sim.set_directory_permission(TENANT_ID, false));
        let (_dir, path) = config_file(&text);
        let out = run_binary(once_args(&path)).await;
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        let series = parse_exposition(&stdout);
        let up = |report: &str| {
            series[&key(
                "entra_exporter_report_up",
                &[("tenant", "t1"), ("report", report)],
            )]
        };
        assert_eq!(
            (up("group_membership"), up("user_registration_details")),
            (0.0, 0.0)
        );
        assert!(only(&series, &families()).is_empty(), "{stdout}");
        assert!(stderr.contains("GroupMember.Read.All"), "{stderr}");
        assert!(stderr.contains("exclude_groups are not known"), "{stderr}");
        sim.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_and_deleted_groups_fail_membership_naming_them() {
    tokio::time::timeout(WAIT, async {
        for (entry, want) in [
            (
                "Sales".to_owned(),
                format!(
                    "2 groups have the display name `Sales` (ids {}, {})",
                    gid(6),
                    gid(7)
                ),
            ),
            (
                "Old team".to_owned(),
                "no group has the display name `Old team`".to_owned(),
            ),
            (gid(11), format!("Resource '{}' does not exist", gid(11))),
        ] {
            let (sim, text) = groups_sim(Faults::default()).await;
            let text = text.replace(
                "groups = [\"Finance\"",
                &format!("groups = [{entry:?}, \"Finance\""),
            );
            let (_dir, path) = config_file(&text);
            let out = run_binary(once_args(&path)).await;
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success());
            assert!(stderr.contains(&want), "{entry}: {stderr}");
            sim.shutdown().await;
        }
    })
    .await
    .unwrap();
}
