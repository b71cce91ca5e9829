//! The role-management routes the `privileged_roles` report reads (graph-api.md §13.4):
//! `roleDefinitions` (with template ids), `roleAssignments` (permanent active
//! assignments only), `roleAssignmentScheduleInstances` (permanent, time-bound and
//! activated) and `roleEligibilityScheduleInstances` (PIM eligibility), each with
//! `$filter=roleDefinitionId eq '…'`, `$expand=principal` (users, role-assignable
//! groups, service principals) and `$skiptoken` paging. Scoped assignments carry a
//! `directoryScopeId` other than `/`.
//!
//! Refusals as Graph sends them: without `RoleManagement.Read.Directory` (or a higher
//! permission, or when withdrawn at run time) every route answers 403; on a tenant
//! without P2 the two PIM lists answer 400 `AadPremiumLicenseRequired` (§13.4.6) while
//! `roleAssignments` keeps working. The directory service's 429s apply here too.

use super::directory::admit;
use super::graph::{Incoming, error, link_base};
use super::json;
use super::query::parse_pairs;
use super::rng::{guid_from, hash3};
use super::server::{Ctx, Reply, State};
use super::tenant::Tenant;
use super::truth::method_strength;
use super::{SimPrincipal, SimRoleAssignment, SimRoleKind, SimRoles, SimTenant};

/// Rows per page: small, so the client's paging is exercised (Graph documents none).
const PAGE: usize = 10;

/// Application permissions that may read role management (§13.4.2, §13.4.5).
const PERMISSIONS: [&str; 4] = [
    "RoleManagement.Read.Directory",
    "RoleManagement.Read.All",
    "RoleManagement.ReadWrite.Directory",
    "Directory.Read.All",
];

const SALT_SP: u64 = 0x7370_6e73;

/// Which list a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum List {
    Definitions,
    Assignments,
    ScheduleInstances,
    EligibilityInstances,
}

fn list_of(path: &str) -> Option<List> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let [v, rm, dir, list] = segs.as_slice() else {
        return None;
    };
    if !v.eq_ignore_ascii_case("v1.0")
        || !rm.eq_ignore_ascii_case("roleManagement")
        || !dir.eq_ignore_ascii_case("directory")
    {
        return None;
    }
    Some(match list.to_ascii_lowercase().as_str() {
        "roledefinitions" => List::Definitions,
        "roleassignments" => List::Assignments,
        "roleassignmentscheduleinstances" => List::ScheduleInstances,
        "roleeligibilityscheduleinstances" => List::EligibilityInstances,
        _ => return None,
    })
}

/// Whether `path` is a role-management route (`/v1.0/roleManagement/directory/…`).
pub(crate) fn is_roles(path: &str) -> bool {
    super::directory::is_v1_under(path, "roleManagement")
}

/// Whether an assignment of `kind` is listed by `list`.
fn listed_in(list: List, kind: SimRoleKind) -> bool {
    match list {
        List::Definitions => false,
        // Time-bound and activated assignments appear only in the schedule instances.
        List::Assignments => kind == SimRoleKind::Permanent,
        List::ScheduleInstances => kind != SimRoleKind::Eligible,
        List::EligibilityInstances => kind == SimRoleKind::Eligible,
    }
}

fn principal_id(state: &State, tenant: usize, p: &SimPrincipal) -> String {
    match p {
        SimPrincipal::User(i) => state.tenants[tenant].id(*i),
        SimPrincipal::Group(id) => id.clone(),
        SimPrincipal::ServicePrincipal(n) => {
            let seed = state.config.tenants[tenant].seed;
            guid_from(
                hash3(seed, u64::from(*n), SALT_SP),
                hash3(seed, u64::from(*n), SALT_SP + 1),
            )
        }
    }
}

fn principal_json(state: &State, tenant: usize, p: &SimPrincipal) -> String {
    let id = json::string(&principal_id(state, tenant, p));
    let t = &state.config.tenants[tenant];
    match p {
        SimPrincipal::User(i) => format!(
            "{{\"@odata.type\":\"#microsoft.graph.user\",\"id\":{id},\"displayName\":{}}}",
            json::string(&state.tenants[tenant].display_name(*i))
        ),
        SimPrincipal::Group(gid) => {
            let name = t
                .groups
                .iter()
                .find(|g| g.id.eq_ignore_ascii_case(gid))
                .map(|g| g.display_name.clone())
                .unwrap_or_default();
            format!(
                "{{\"@odata.type\":\"#microsoft.graph.group\",\"id\":{id},\"displayName\":{},\"isAssignableToRole\":true}}",
                json::string(&name)
            )
        }
        SimPrincipal::ServicePrincipal(n) => format!(
            "{{\"@odata.type\":\"#microsoft.graph.servicePrincipal\",\"id\":{id},\"displayName\":\"Automation {n}\"}}"
        ),
    }
}

fn assignment_json(
    state: &State,
    tenant: usize,
    list: List,
    n: usize,
    a: &SimRoleAssignment,
    expand: bool,
) -> String {
    let pid = json::string(&principal_id(state, tenant, &a.principal));
    let mut out = format!(
        "{{\"id\":\"sim-{n}-{}\",\"principalId\":{pid},\"roleDefinitionId\":{},\"directoryScopeId\":{},\"appScopeId\":null",
        list as u8,
        json::string(&a.role),
        json::string(&a.scope)
    );
    if list != List::Assignments {
        let end = match a.kind {
            SimRoleKind::TimeBound => "\"2099-01-01T00:00:00Z\"",
            SimRoleKind::Activated => "\"2099-01-01T04:00:00Z\"",
            _ => "null",
        };
        let member_type = match a.principal {
            SimPrincipal::Group(_) => "Group",
            _ => "Direct",
        };
        out.push_str(&format!(
            ",\"startDateTime\":\"2026-01-05T09:00:00Z\",\"endDateTime\":{end},\"memberType\":\"{member_type}\""
        ));
        if list == List::ScheduleInstances {
            let kind = match a.kind {
                SimRoleKind::Activated => "Activated",
                _ => "Assigned",
            };
            out.push_str(&format!(",\"assignmentType\":\"{kind}\""));
        }
    }
    if expand {
        out.push_str(",\"principal\":");
        out.push_str(&principal_json(state, tenant, &a.principal));
    }
    out.push('}');
    out
}

/// `roleDefinitionId eq '…'`: the id asked for; `Err` for any other filter.
fn role_filter(filter: &str) -> Result<String, ()> {
    let rest = filter
        .trim()
        .strip_prefix("roleDefinitionId eq '")
        .ok_or(())?;
    let id = rest.strip_suffix('\'').ok_or(())?;
    (!id.contains('\'')).then(|| id.to_owned()).ok_or(())
}

/// Handles a `/v1.0/roleManagement…` request.
pub(crate) fn handle(state: &State, ctx: &Ctx, req: &Incoming<'_>) -> Reply {
    let grant = match admit(state, ctx, req, &PERMISSIONS, &state.roles_denied) {
        Ok(g) => g,
        Err(reply) => return reply,
    };
    let tenant = grant.tenant;
    let cfg: &SimTenant = &state.config.tenants[tenant];
    let Some(list) = list_of(req.path) else {
        return error(
            ctx,
            400,
            "BadRequest",
            "Resource not found for the segment.",
        );
    };
    let roles = &cfg.directory_roles;
    let pim = matches!(list, List::ScheduleInstances | List::EligibilityInstances);
    if pim && roles.no_p2 {
        return error(
            ctx,
            400,
            "AadPremiumLicenseRequired",
            "The tenant needs to have Microsoft Entra ID P2 or Microsoft Entra ID Governance license.",
        );
    }
    let query = parse_pairs(req.query.unwrap_or(""));
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let role = match param("$filter").map(role_filter) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(())) => {
            return error(
                ctx,
                400,
                "Request_UnsupportedQuery",
                "The simulator filters role lists only by roleDefinitionId eq.",
            );
        }
    };
    let expand = param("$expand").is_some_and(|e| e.eq_ignore_ascii_case("principal"));
    let rows: Vec<String> = match list {
        List::Definitions => roles
            .definitions
            .iter()
            .filter(|d| role.as_deref().is_none_or(|r| d.id.eq_ignore_ascii_case(r)))
            .map(|d| {
                format!(
                    "{{\"id\":{},\"displayName\":{},\"templateId\":{},\"isBuiltIn\":true}}",
                    json::string(&d.id),
                    json::string(&d.display_name),
                    json::string(&d.template_id)
                )
            })
            .collect(),
        _ => roles
            .assignments
            .iter()
            .enumerate()
            .filter(|(_, a)| listed_in(list, a.kind))
            .filter(|(_, a)| {
                role.as_deref()
                    .is_none_or(|r| a.role.eq_ignore_ascii_case(r))
            })
            .map(|(n, a)| assignment_json(state, tenant, list, n, a, expand))
            .collect(),
    };
    let offset = match param("$skiptoken") {
        None => 0,
        Some(s) => match s
            .strip_prefix("Um9sZQ")
            .and_then(|h| usize::from_str_radix(h, 16).ok())
        {
            Some(o) => o,
            None => return error(ctx, 400, "BadRequest", "Invalid skip token."),
        },
    };
    let end = (offset + PAGE).min(rows.len());
    let base = link_base(state, req);
    let next = if end < rows.len() {
        let kept: Vec<&str> = req
            .query
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty() && !p.to_ascii_lowercase().starts_with("$skiptoken="))
            .collect();
        let sep = if kept.is_empty() { "" } else { "&" };
        format!(
            "\"@odata.nextLink\":{},",
            json::string(&format!(
                "{base}{}?{}{sep}$skiptoken=Um9sZQ{end:x}",
                req.raw_path,
                kept.join("&")
            ))
        )
    } else {
        String::new()
    };
    Reply::graph(
        200,
        format!(
            "{{\"@odata.context\":\"{base}/v1.0/$metadata#roleManagement/directory\",{next}\"value\":[{}]}}",
            rows.get(offset..end).unwrap_or(&[]).join(",")
        ),
    )
    .with("x-ms-resource-unit", "1".into())
}

/// The id of `--demo`'s role-assignable group.
pub(crate) const DEMO_TIER0_GROUP: &str = "00000000-0000-4000-8000-0000de6f0100";

/// `--demo`'s role-assignable group "Tier 0 admins".
pub(crate) fn demo_tier0_group(users: u64) -> super::SimGroup {
    super::SimGroup {
        id: DEMO_TIER0_GROUP.to_owned(),
        display_name: "Tier 0 admins".to_owned(),
        users: vec![super::UserSet {
            start: 211,
            end: users,
            step: 389,
        }],
        ..super::SimGroup::default()
    }
}

/// `--demo`'s roles over `generator`'s users: every kind of assignment, and eligible-only
/// Global Administrators whose strongest method is never phishing-resistant at any
/// point of the drift (one of them with no MFA method at all), so the privileged
/// alerts fire there; active Global Administrators are always phishing-resistant.
pub(crate) fn demo_roles(generator: &Tenant) -> SimRoles {
    // Both drift sines (2 h and 7 × 2 h) repeat within 14 h: 56 samples cover them.
    const SPAN: i64 = 14 * 3600;
    let rank = |i: u64, k: i64| {
        let u = generator.user(i, k * SPAN / 56);
        u.methods
            .as_slice()
            .iter()
            .filter_map(|m| method_strength(m))
            .max()
            .unwrap_or(0)
    };
    let best = |i: u64| (0..56).map(|k| rank(i, k)).max().unwrap_or(0);
    let worst = |i: u64| (0..56).map(|k| rank(i, k)).min().unwrap_or(0);
    // Away from the excluded users (user1?@…, the last 0.2 % in the break-glass group).
    let candidates = || 100..generator.users * 9 / 10;
    let none: Vec<u64> = candidates().filter(|i| best(*i) == 0).take(1).collect();
    let weak: Vec<u64> = candidates()
        .filter(|i| best(*i) == 1 && !none.contains(i))
        .take(2)
        .collect();
    let strong: Vec<u64> = candidates().filter(|i| worst(*i) == 3).take(2).collect();
    const GA: &str = "62e90394-69f5-4237-9190-012177145e10";
    const PRA: &str = "e8611ab8-c189-46e8-94e1-60213ab1f814";
    const SEC: &str = "194ae4cb-b126-40b2-bd5b-6091b380977d";
    const USER_ADMIN: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
    const APP_ADMIN: &str = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3";
    const AUTH_ADMIN: &str = "c4e39bd9-1100-46d3-8c65-fb160da0071f";
    let a = |role: &str, principal, kind| SimRoleAssignment {
        role: role.to_owned(),
        principal,
        scope: "/".to_owned(),
        kind,
    };
    let user = SimPrincipal::User;
    let tier0 = || SimPrincipal::Group(DEMO_TIER0_GROUP.to_owned());
    let mut assignments: Vec<SimRoleAssignment> = strong
        .iter()
        .map(|i| a(GA, user(*i), SimRoleKind::Permanent))
        .chain(
            none.iter()
                .chain(&weak)
                .map(|i| a(GA, user(*i), SimRoleKind::Eligible)),
        )
        .collect();
    assignments.extend([
        // The first Tier 0 member holds the role both directly and through the group.
        a(PRA, tier0(), SimRoleKind::Permanent),
        a(PRA, user(211), SimRoleKind::Permanent),
        a(SEC, user(401), SimRoleKind::TimeBound),
        a(SEC, user(402), SimRoleKind::Activated),
        a(SEC, tier0(), SimRoleKind::Eligible),
        SimRoleAssignment {
            scope: "/administrativeUnits/00000000-0000-4000-8000-0000000a0001".to_owned(),
            ..a(USER_ADMIN, user(403), SimRoleKind::Permanent)
        },
        a(
            APP_ADMIN,
            SimPrincipal::ServicePrincipal(1),
            SimRoleKind::Permanent,
        ),
        a(APP_ADMIN, user(404), SimRoleKind::Eligible),
        a(AUTH_ADMIN, user(405), SimRoleKind::Eligible),
    ]);
    SimRoles {
        definitions: SimRoles::builtin_definitions(),
        assignments,
        no_p2: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_filters() {
        assert!(is_roles("/v1.0/roleManagement/directory/roleAssignments"));
        assert!(!is_roles("/v1.0/groups"));
        assert_eq!(
            list_of("/v1.0/roleManagement/directory/roleEligibilityScheduleInstances"),
            Some(List::EligibilityInstances)
        );
        assert_eq!(list_of("/v1.0/roleManagement/directory/nope"), None);
        assert_eq!(role_filter("roleDefinitionId eq 'abc'"), Ok("abc".into()));
        assert!(role_filter("principalId eq 'abc'").is_err());
        assert!(listed_in(List::Assignments, SimRoleKind::Permanent));
        assert!(!listed_in(List::Assignments, SimRoleKind::TimeBound));
        assert!(listed_in(List::ScheduleInstances, SimRoleKind::Activated));
        assert!(!listed_in(List::ScheduleInstances, SimRoleKind::Eligible));
        assert!(listed_in(List::EligibilityInstances, SimRoleKind::Eligible));
    }
}

#[cfg(test)]
mod demo_tests {
    use super::*;

    #[test]
    fn the_demo_has_eligible_only_global_admins_without_phishing_resistant_methods() {
        let g = Tenant::new("demo", 7, 5_000, Some(std::time::Duration::from_secs(7200)));
        let roles = demo_roles(&g);
        let ga = "62e90394-69f5-4237-9190-012177145e10";
        let eligible: Vec<_> = roles
            .assignments
            .iter()
            .filter(|a| a.role == ga && a.kind == SimRoleKind::Eligible)
            .collect();
        let active = roles
            .assignments
            .iter()
            .filter(|a| a.role == ga && a.kind == SimRoleKind::Permanent)
            .count();
        assert_eq!((eligible.len(), active), (3, 2));
    }

    /// rules.test.yml's "demo" tenant carries these numbers: they hold at every point
    /// of the demo's drift.
    #[test]
    fn the_demo_numbers_of_the_rule_tests_hold_over_the_drift() {
        let config = super::super::demo_config(2_500, 42);
        let cfg = &config.tenants[0];
        let g = Tenant::new(&cfg.tenant_id, cfg.seed, cfg.users, cfg.drift);
        let spec = super::super::PrivilegedSpec {
            roles: vec!["Global Administrator".into()],
            ..Default::default()
        };
        for k in 0..28 {
            let t = super::super::privileged_truth::compute(cfg, &g, k * 1_800, &spec);
            let r = |a: &str| t.roles[&("Global Administrator".to_owned(), a.to_owned())].clone();
            let (active, eligible) = (r("active"), r("eligible"));
            assert_eq!(
                (active.users, active.strengths["phishing_resistant"]),
                (2, 2)
            );
            assert_eq!(active.features["mfa_capable"], 2, "t={k}");
            assert_eq!(
                (eligible.users, eligible.strengths["phishing_resistant"]),
                (3, 0)
            );
            assert_eq!(eligible.strengths["none"], 1, "t={k}");
            assert_eq!(eligible.features["mfa_capable"], 2, "t={k}");
        }
    }
}
