//! Privileged roles end to end (issue 14): a tenant of 6,000 users whose roles are held
//! permanently, time-bound, activated and PIM-eligible, directly and through a
//! role-assignable group (one user both ways), tenant-wide and scoped, by service
//! principals, by users the registration report does not list and by excluded users,
//! with a custom role named by display name. Every `entra_privileged_*` series equals
//! the simulator's own truth in `--once` and serve mode (directory 429s included); a
//! tenant without P2 publishes `active` only and says why on `/`; without
//! RoleManagement.Read.Directory the report is down.

mod common;

use std::collections::BTreeMap;

use common::*;
use entra_mfa_exporter::simulate::{
    CoverageSpec, Faults, PrivilegedSpec, PrivilegedTruth, SimGroup, SimPrincipal,
    SimRoleAssignment, SimRoleDefinition, SimRoleKind, SimRoles, SimServer, UserSet, default_roles,
};

const USERS: u64 = 6_000;
const GA: &str = "62e90394-69f5-4237-9190-012177145e10";
const PRA: &str = "e8611ab8-c189-46e8-94e1-60213ab1f814";
const SEC: &str = "194ae4cb-b126-40b2-bd5b-6091b380977d";
const USER_ADMIN: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
const APP_ADMIN: &str = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3";
const CUSTOM_ID: &str = "c0570000-0000-4000-8000-00000000c001";
const CUSTOM_TEMPLATE: &str = "c0570000-0000-4000-8000-00000000c0de";
const TIER0: &str = "7e000000-0000-4000-8000-000000000001";
const BREAK_GLASS: &str = "7e000000-0000-4000-8000-000000000002";
/// Eligible-only Global Administrators (the assertions find the weak ones among them).
const GA_ELIGIBLE: std::ops::Range<u64> = 1_000..1_012;

fn groups() -> Vec<SimGroup> {
    vec![
        SimGroup {
            id: TIER0.into(),
            display_name: "Tier 0 admins".into(),
            users: vec![UserSet {
                start: 100,
                end: USERS,
                step: 97,
            }],
            other_members: 2,
            ..SimGroup::default()
        },
        SimGroup {
            id: BREAK_GLASS.into(),
            display_name: "Emergency access accounts".into(),
            users: vec![UserSet {
                start: 5_990,
                end: USERS,
                step: 1,
            }],
            ..SimGroup::default()
        },
    ]
}

fn roles(no_p2: bool) -> SimRoles {
    let mut definitions = SimRoles::builtin_definitions();
    definitions.push(SimRoleDefinition {
        id: CUSTOM_ID.into(),
        template_id: CUSTOM_TEMPLATE.into(),
        display_name: "Contoso Helpdesk Lead".into(),
    });
    let a = |role: &str, principal, kind| SimRoleAssignment {
        role: role.into(),
        principal,
        scope: "/".into(),
        kind,
    };
    let user = SimPrincipal::User;
    let tier0 = || SimPrincipal::Group(TIER0.into());
    let mut assignments = vec![
        a(GA, user(5), SimRoleKind::Permanent),
        a(GA, user(7), SimRoleKind::Permanent),
        // Excluded by pattern (user2??@…), by group, and not in the report.
        a(GA, user(250), SimRoleKind::Permanent),
        a(GA, user(5_995), SimRoleKind::Eligible),
        a(GA, user(7_000), SimRoleKind::Permanent),
        // The first Tier 0 member holds PRA directly and through the group.
        a(PRA, tier0(), SimRoleKind::Permanent),
        a(PRA, user(100), SimRoleKind::Permanent),
        a(SEC, user(301), SimRoleKind::TimeBound),
        a(SEC, user(302), SimRoleKind::Activated),
        a(SEC, tier0(), SimRoleKind::Eligible),
        // Active and eligible both: counted under each.
        a(SEC, user(301), SimRoleKind::Eligible),
        SimRoleAssignment {
            scope: "/administrativeUnits/7e000000-0000-4000-8000-0000000a0001".into(),
            ..a(USER_ADMIN, user(300), SimRoleKind::Permanent)
        },
        a(
            APP_ADMIN,
            SimPrincipal::ServicePrincipal(3),
            SimRoleKind::Permanent,
        ),
        a(APP_ADMIN, user(303), SimRoleKind::TimeBound),
        a(CUSTOM_ID, user(304), SimRoleKind::Permanent),
        a(CUSTOM_ID, user(305), SimRoleKind::Eligible),
        // A role not configured: never counted.
        a(
            "729827e3-9c14-49f7-bb1b-9608f156bbb8",
            user(306),
            SimRoleKind::Permanent,
        ),
    ];
    assignments.extend(GA_ELIGIBLE.map(|i| a(GA, user(i), SimRoleKind::Eligible)));
    SimRoles {
        definitions,
        assignments,
        no_p2,
    }
}

/// `privileged_roles` as configured: display names, a template id, a custom role.
fn configured_roles() -> Vec<String> {
    [
        "Global Administrator",
        PRA,
        "Security Administrator",
        "User Administrator",
        "Application Administrator",
        "Contoso Helpdesk Lead",
    ]
    .map(str::to_owned)
    .to_vec()
}

const MAX_LISTED: usize = 40;

fn spec(roles: Vec<String>) -> PrivilegedSpec {
    PrivilegedSpec {
        roles,
        list: true,
        max_listed: MAX_LISTED,
        coverage: CoverageSpec {
            exclude_groups: vec!["Emergency access accounts".into()],
            exclude_users: vec!["user2??@*".into()],
            ..CoverageSpec::default()
        },
    }
}

async fn roles_sim(no_p2: bool, roles_key: &str, faults: Faults) -> (SimServer, String) {
    let sim = start_sim(USERS, 41, |c| {
        let t = &mut c.tenants[0];
        t.groups = groups();
        t.directory_roles = roles(no_p2);
        t.roles.push("RoleManagement.Read.Directory".into());
        c.faults = faults;
    })
    .await;
    let extra = format!(
        "privileged_roles = {roles_key}\nlist_privileged_users = true\nmax_listed_admins = {MAX_LISTED}\n\
         exclude_groups = [\"Emergency access accounts\"]\nexclude_users = [\"user2??@*\"]\n\
         directory_max_requests_per_10s = 100000\n"
    );
    let text = config_toml(&sim, "user_registration_details", &extra);
    (sim, text)
}

const FAMILIES: &[&str] = &[
    "entra_privileged_users",
    "entra_privileged_users_with_feature",
    "entra_privileged_users_by_strength",
    "entra_privileged_user_info",
];

/// The series `truth` implies.
fn expected(truth: &PrivilegedTruth) -> BTreeMap<SeriesKey, f64> {
    let mut out = BTreeMap::new();
    for ((role, assignment), r) in &truth.roles {
        let labels = [
            ("tenant", "t1"),
            ("role", role.as_str()),
            ("assignment", assignment.as_str()),
        ];
        out.insert(key("entra_privileged_users", &labels), r.users as f64);
        for (feature, n) in &r.features {
            let mut l = labels.to_vec();
            l.push(("feature", feature));
            out.insert(key("entra_privileged_users_with_feature", &l), *n as f64);
        }
        for (strength, n) in &r.strengths {
            let mut l = labels.to_vec();
            l.push(("strength", strength));
            out.insert(key("entra_privileged_users_by_strength", &l), *n as f64);
        }
    }
    for (upn, role, assignment, strength) in &truth.listed {
        let labels = [
            ("tenant", "t1"),
            ("user_principal_name", upn.as_str()),
            ("role", role.as_str()),
            ("assignment", assignment.as_str()),
            ("strength", strength.as_str()),
        ];
        out.insert(key("entra_privileged_user_info", &labels), 1.0);
    }
    out
}

fn up(series: &BTreeMap<SeriesKey, f64>, report: &str) -> Option<f64> {
    series
        .get(&key(
            "entra_exporter_report_up",
            &[("tenant", "t1"), ("report", report)],
        ))
        .copied()
}

#[test]
fn the_truth_is_not_trivial() {
    // Guards the test data itself: every case the tests rely on occurs.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (sim, _) = roles_sim(false, "[]", Faults::default()).await;
        let t = sim.privileged_truth(TENANT_ID, &spec(configured_roles()));
        let r = |role: &str, a: &str| t.roles[&(role.to_owned(), a.to_owned())].clone();
        assert_eq!(t.roles.len(), 12, "6 roles, both ways");
        // 5 and 7; 250 (pattern), 7,000 (not in the report) left out.
        assert_eq!(r("Global Administrator", "active").users, 2);
        // 12 eligible-only; 5,995 is in the break-glass group.
        let ga = r("Global Administrator", "eligible");
        assert_eq!(ga.users, 12);
        assert!(ga.strengths["phishing_resistant"] < ga.users);
        assert!(ga.strengths["none"] + ga.strengths["mfa"] > 0);
        // Tier 0: 61 members, 100 among them (both ways, once), 294 excluded by pattern.
        let tier0 = (100..USERS).step_by(97).count() as u64 - 1;
        assert_eq!(tier0, 60);
        assert_eq!(r("Privileged Role Administrator", "active").users, tier0);
        // Time-bound and activated count as active; 301 is eligible too.
        assert_eq!(r("Security Administrator", "active").users, 2);
        assert_eq!(r("Security Administrator", "eligible").users, tier0 + 1);
        assert_eq!(r("User Administrator", "active").users, 1, "scoped");
        assert_eq!(r("Application Administrator", "active").users, 1, "no SP");
        assert_eq!(r("Contoso Helpdesk Lead", "eligible").users, 1);
        assert!(t.holders > MAX_LISTED as u64);
        assert_eq!(t.listed.len(), MAX_LISTED);
        let no_p2 = {
            let (sim, _) = roles_sim(true, "[]", Faults::default()).await;
            let t = sim.privileged_truth(TENANT_ID, &spec(default_roles()));
            sim.shutdown().await;
            t
        };
        assert!(!no_p2.eligible_published);
        assert_eq!(no_p2.roles.len(), 12, "the 12 default roles, active only");
        assert!(no_p2.roles.keys().all(|(_, a)| a == "active"));
        let sec = &no_p2.roles[&("Security Administrator".into(), "active".into())];
        assert_eq!(sec.users, 0, "time-bound and activated need PIM");
        sim.shutdown().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_matches_truth_with_groups_scopes_and_directory_throttling() {
    tokio::time::timeout(WAIT, async {
        let faults = Faults {
            directory_throttle_every: Some(7),
            directory_retry_after: Some(0.2),
            ..Faults::default()
        };
        let (sim, text) = roles_sim(false, &toml_list(&configured_roles()), faults).await;
        let (_dir, path) = config_file(&text);
        let out = run_binary(once_args(&path)).await;
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "stderr: {stderr}");
        let series = parse_exposition(&stdout);
        let expected = expected(&sim.privileged_truth(TENANT_ID, &spec(configured_roles())));
        assert_series_eq(&only(&series, FAMILIES), &expected);
        assert_eq!(up(&series, "privileged_roles"), Some(1.0));
        assert!(
            stderr.contains("more privileged role holders than max_listed_admins"),
            "{stderr}"
        );
        let requests = |endpoint: &str, code: &str| {
            let labels = [("tenant", "t1"), ("endpoint", endpoint), ("code", code)];
            let k = key("entra_exporter_graph_requests_total", &labels);
            series.get(&k).copied().unwrap_or(0.0)
        };
        // The simulator pages role lists by 10: 16 definitions on two pages, assignments
        // per role (6, one page each), each PIM list once (13 and 16 rows: two pages
        // each), the group's members once (and group_membership's break-glass group).
        assert_eq!(requests("roleDefinitions", "200"), 2.0);
        assert_eq!(requests("roleAssignments", "200"), 6.0);
        assert_eq!(requests("roleAssignmentScheduleInstances", "200"), 2.0);
        assert_eq!(requests("roleEligibilityScheduleInstances", "200"), 2.0);
        assert_eq!(requests("transitiveMembers", "200"), 2.0);
        let paths: Vec<String> = sim
            .requests()
            .into_iter()
            .map(|r| r.path_and_query)
            .collect();
        assert!(
            paths.iter().any(|p| p.contains(&format!(
                "roleAssignments?$filter=roleDefinitionId%20eq%20%27{CUSTOM_ID}%27&$expand=principal"
            ))),
            "the custom role is filtered by its id: {paths:?}"
        );
        sim.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_matches_truth_and_goes_down_when_the_permission_goes() {
    tokio::time::timeout(WAIT * 2, async {
        let (sim, text) = roles_sim(false, "\"default\"", Faults::default()).await;
        let text = text.replace("refresh_interval = \"30s\"", "refresh_interval = \"2s\"");
        let (_dir, path) = config_file(&text);
        let exporter = Exporter::start(&["--config.file", path.to_str().unwrap()], &[]);
        let expected = expected(&sim.privileged_truth(TENANT_ID, &spec(default_roles())));
        let (_, body) = poll_until(&exporter.url("/metrics"), "text/plain", |s, b| {
            s == 200 && only(&parse_exposition(b), FAMILIES) == expected
        })
        .await;
        assert_series_eq(&only(&parse_exposition(&body), FAMILIES), &expected);
        let ga = key(
            "entra_privileged_users_by_strength",
            &[
                ("tenant", "t1"),
                ("role", "Global Administrator"),
                ("assignment", "eligible"),
                ("strength", "phishing_resistant"),
            ],
        );
        assert!(
            expected[&ga] < 12.0,
            "eligible-only GAs without phishing resistance"
        );

        // The admin withdraws the permission: the report fails and names it; the
        // registration counts keep the last index.
        assert!(sim.set_role_permission(TENANT_ID, false));
        let (_, body) = poll_until(&exporter.url("/metrics"), "text/plain", |s, b| {
            s == 200 && up(&parse_exposition(b), "privileged_roles") == Some(0.0)
        })
        .await;
        let series = parse_exposition(&body);
        assert_eq!(up(&series, "user_registration_details"), Some(1.0));
        assert_series_eq(&only(&series, FAMILIES), &expected);
        let (_, landing) = get(&exporter.url("/"), "text/html").await;
        assert!(
            landing.contains("RoleManagement.Read.Directory"),
            "{landing}"
        );
        sim.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_p2_active_publishes_and_eligible_is_absent_with_the_reason_on_the_landing_page() {
    tokio::time::timeout(WAIT * 2, async {
        let (sim, text) = roles_sim(true, "\"default\"", Faults::default()).await;
        let expected = expected(&sim.privileged_truth(TENANT_ID, &spec(default_roles())));
        assert!(!expected.is_empty());
        assert!(
            expected
                .keys()
                .all(|(_, l)| l.get("assignment").map(String::as_str) == Some("active"))
        );
        // --once: same series, and the reason in the log.
        let (_dir, path) = config_file(&text);
        let out = run_binary(once_args(&path)).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "stderr: {stderr}");
        let series = parse_exposition(&String::from_utf8(out.stdout).unwrap());
        assert_series_eq(&only(&series, FAMILIES), &expected);
        assert_eq!(up(&series, "privileged_roles"), Some(1.0));
        assert!(
            stderr.contains("PIM eligibility is unavailable")
                && stderr.contains("AadPremiumLicenseRequired"),
            "{stderr}"
        );
        // Serve: the landing page says why.
        let exporter = Exporter::start(&["--config.file", path.to_str().unwrap()], &[]);
        let (_, body) = poll_until(&exporter.url("/metrics"), "text/plain", |s, b| {
            s == 200 && only(&parse_exposition(b), FAMILIES) == expected
        })
        .await;
        assert!(!body.contains("assignment=\"eligible\""));
        let (_, landing) = get(&exporter.url("/"), "text/html").await;
        assert!(
            landing.contains("eligibility unavailable")
                && landing.contains("AadPremiumLicenseRequired"),
            "{landing}"
        );
        sim.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_permission_fails_the_report_and_publishes_no_privileged_series() {
    tokio::time::timeout(WAIT, async {
        // Without RoleManagement.Read.Directory, and (for the group principal's members)
        // without GroupMember.Read.All: each refusal names its permission.
        for (roles, groups, permission) in [
            (false, true, "RoleManagement.Read.Directory"),
            (true, false, "GroupMember.Read.All"),
        ] {
            let (sim, text) = roles_sim(false, "\"default\"", Faults::default()).await;
            assert!(sim.set_role_permission(TENANT_ID, roles));
            assert!(sim.set_directory_permission(TENANT_ID, groups));
            let (_dir, path) = config_file(&text);
            let out = run_binary(once_args(&path)).await;
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success());
            let series = parse_exposition(&String::from_utf8(out.stdout).unwrap());
            assert_eq!(up(&series, "privileged_roles"), Some(0.0), "{permission}");
            // Without the group permission the exclusions are unknown too.
            let registration = if groups { 1.0 } else { 0.0 };
            assert_eq!(up(&series, "user_registration_details"), Some(registration));
            assert!(only(&series, FAMILIES).is_empty());
            let line = stderr
                .lines()
                .find(|l| l.contains("report=privileged_roles") && l.contains("failed"))
                .unwrap_or_else(|| panic!("{stderr}"));
            assert!(line.contains(permission), "{line}");
            sim.shutdown().await;
        }
    })
    .await
    .unwrap();
}
