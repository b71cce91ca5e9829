//! The directory routes the coverage features read (graph-api.md §13.2–13.3): groups by
//! display name (`$filter=displayName eq '…'`) or id, and `transitiveMembers`, with
//! nesting (nested groups listed beside their members), cycles, a user reachable by two
//! paths listed twice, devices, service principals and contacts among the members,
//! `$top`/`@odata.nextLink` paging, deleted groups (404), the `GroupMember.Read.All`
//! permission, and the directory service's own 429s (`x-ms-throttle-scope`, with or
//! without `Retry-After`) and `x-ms-resource-unit` on every 200.
//!
//! The membership truth ([`expand`], [`users_of`]) is computed here from the group
//! definitions, never by the exporter's code.

use std::collections::{BTreeSet, HashSet};

use hyper::Method;

use super::faults::retry_after_value;
use super::graph::{
    Incoming, authenticate, error, link_base, method_not_allowed, parse_top, path_segments,
    require_permission, unknown_segment,
};
use super::json;
use super::query::parse_pairs;
use super::rng::{guid_from, hash3};
use super::server::{Ctx, Reply, State};
use super::{SimGroup, SimTenant};

/// Default and largest `$top` of member lists (graph-api.md §13.3.1).
const DEFAULT_TOP: usize = 100;
const MAX_TOP: u64 = 999;

/// Application permissions that may read groups and their members (§13.2.4).
const PERMISSIONS: [&str; 3] = [
    "GroupMember.Read.All",
    "Group.Read.All",
    "Directory.Read.All",
];

const SALT_OTHER: u64 = 0x6772_6f75_7073;

/// One entry of a group's transitive member list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Member {
    /// A user by generator index (an index past the tenant's users is a user the
    /// registration report does not list, e.g. a disabled account).
    User(u64),
    /// A nested group, by position in the tenant's groups.
    Group(usize),
    /// The n-th non-user member: device, service principal or contact in turn.
    Other(u64),
}

/// Whether `path` is a directory route (`/v1.0/groups…`).
pub(crate) fn is_directory(path: &str) -> bool {
    is_v1_under(path, "groups")
}

/// Whether `path` is `/v1.0/{segment}…` (any case).
pub(crate) fn is_v1_under(path: &str, segment: &str) -> bool {
    let mut segs = path.trim_start_matches('/').split('/');
    segs.next().is_some_and(|v| v.eq_ignore_ascii_case("v1.0"))
        && segs.next().is_some_and(|s| s.eq_ignore_ascii_case(segment))
}

/// The group at `id`, deleted ones included.
fn by_id<'a>(t: &'a SimTenant, id: &str) -> Option<(usize, &'a SimGroup)> {
    t.groups
        .iter()
        .enumerate()
        .find(|(_, g)| g.id.eq_ignore_ascii_case(id))
}

/// The transitive member list of group `g` as Graph lists it: its own users and other
/// members, then each nested group followed by that group's list; a group already on
/// the path is not entered again (a cycle), but a user reachable by two paths is
/// listed twice (§13.3.4 leaves deduplication to the client).
pub(crate) fn expand(t: &SimTenant, g: usize) -> Vec<Member> {
    let mut out = Vec::new();
    let mut path = HashSet::from([g]);
    walk(t, g, &mut path, &mut out);
    out
}

fn walk(t: &SimTenant, g: usize, path: &mut HashSet<usize>, out: &mut Vec<Member>) {
    let group = &t.groups[g];
    for set in &group.users {
        let step = set.step.max(1);
        out.extend(
            (set.start..set.end)
                .step_by(step as usize)
                .map(Member::User),
        );
    }
    let base = hash3(t.seed, g as u64, SALT_OTHER) % 1_000_000 * 64;
    out.extend((0..u64::from(group.other_members)).map(|n| Member::Other(base + n)));
    for nested in &group.nested {
        let Some((n, ng)) = by_id(t, nested) else {
            continue;
        };
        if ng.deleted {
            continue;
        }
        out.push(Member::Group(n));
        if path.insert(n) {
            walk(t, n, path, out);
            path.remove(&n);
        }
    }
}

/// The distinct user indexes among group `g`'s transitive members.
pub(crate) fn users_of(t: &SimTenant, g: usize) -> BTreeSet<u64> {
    expand(t, g)
        .into_iter()
        .filter_map(|m| match m {
            Member::User(i) => Some(i),
            _ => None,
        })
        .collect()
}

/// The groups a configured name or id selects: by id the group (if not deleted), by
/// display name every live group with that name, case-insensitively.
pub(crate) fn resolve(t: &SimTenant, value: &str) -> Vec<usize> {
    t.groups
        .iter()
        .enumerate()
        .filter(|(_, g)| {
            !g.deleted
                && (g.id.eq_ignore_ascii_case(value) || g.display_name.eq_ignore_ascii_case(value))
        })
        .map(|(i, _)| i)
        .collect()
}

fn member_json(state: &State, tenant: usize, m: Member) -> String {
    let t = &state.config.tenants[tenant];
    let (kind, id) = match m {
        Member::User(i) => ("user", state.tenants[tenant].id(i)),
        Member::Group(g) => ("group", t.groups[g].id.clone()),
        Member::Other(n) => {
            let kind = ["device", "servicePrincipal", "orgContact"][(n % 3) as usize];
            let id = guid_from(
                hash3(t.seed, n, SALT_OTHER + 1),
                hash3(t.seed, n, SALT_OTHER + 2),
            );
            (kind, id)
        }
    };
    format!(
        "{{\"@odata.type\":\"#microsoft.graph.{kind}\",\"id\":{}}}",
        json::string(&id)
    )
}

fn group_json(g: &SimGroup) -> String {
    format!(
        "{{\"id\":{},\"displayName\":{}}}",
        json::string(&g.id),
        json::string(&g.display_name)
    )
}

/// What every directory route (groups, and issue 14's role management) checks first:
/// GET only, a valid token, the directory service's injected 429s, and one of
/// `permissions` among the token's roles unless `withdrawn` for the tenant at run time
/// (403). The grant, or the reply that ends the request.
pub(crate) fn admit(
    state: &State,
    ctx: &Ctx,
    req: &Incoming<'_>,
    permissions: &[&str],
    withdrawn: &[std::sync::atomic::AtomicBool],
) -> Result<super::token::Grant, Reply> {
    if req.method != Method::GET {
        return Err(method_not_allowed(ctx));
    }
    let grant = authenticate(state, ctx, req.authorization)?;
    let tenant_cfg = &state.config.tenants[grant.tenant];
    if let Some(retry_after) = state.faults.directory_throttle() {
        // The directory service's 429 (§13.1.2): scope and information headers,
        // Retry-After optional.
        let body = "{\"error\":{\"code\":\"Request_ThrottledTemporarily\",\"message\":\"Your request is throttled temporarily. Please try after the time indicated in Retry-After header.\"}}";
        let mut reply = Reply::graph(429, body.to_owned())
            .with(
                "x-ms-throttle-scope",
                format!(
                    "Tenant_Application/Read/{}/{}",
                    tenant_cfg.client_id, tenant_cfg.tenant_id
                ),
            )
            .with(
                "x-ms-throttle-information",
                "ResourceUnitLimitExceeded".into(),
            );
        if let Some(s) = retry_after {
            reply = reply.with("retry-after", retry_after_value(s));
        }
        return Err(reply);
    }
    require_permission(ctx, &grant, permissions, &withdrawn[grant.tenant])?;
    Ok(grant)
}

/// Handles a `/v1.0/groups…` request.
pub(crate) fn handle(state: &State, ctx: &Ctx, req: &Incoming<'_>) -> Reply {
    let grant = match admit(state, ctx, req, &PERMISSIONS, &state.directory_denied) {
        Ok(g) => g,
        Err(reply) => return reply,
    };
    let tenant_cfg = &state.config.tenants[grant.tenant];
    let segs = path_segments(req.path);
    let query = parse_pairs(req.query.unwrap_or(""));
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let reply = match segs.as_slice() {
        [_, _] => list_groups(ctx, tenant_cfg, param("$filter")),
        [_, _, id] => match by_id(tenant_cfg, id) {
            Some((_, g)) if !g.deleted => Reply::graph(
                200,
                format!(
                    "{{\"@odata.context\":\"{}/v1.0/$metadata#groups(id,displayName)/$entity\",{}",
                    link_base(state, req),
                    &group_json(g)[1..]
                ),
            ),
            _ => not_found(ctx, id),
        },
        [_, _, id, m] if m.eq_ignore_ascii_case("transitiveMembers") => {
            match by_id(tenant_cfg, id) {
                Some((g, group)) if !group.deleted => members_page(
                    state,
                    ctx,
                    req,
                    grant.tenant,
                    g,
                    param("$top"),
                    param("$skiptoken"),
                ),
                _ => not_found(ctx, id),
            }
        }
        _ => unknown_segment(ctx, &segs),
    };
    if reply.status == 200 {
        // 1 RU for groups, 4 for a member page with $select (§13.1.2).
        let ru = if segs.len() == 4 { "4" } else { "1" };
        reply.with("x-ms-resource-unit", ru.into())
    } else {
        reply
    }
}

fn not_found(ctx: &Ctx, id: &str) -> Reply {
    error(
        ctx,
        404,
        "Request_ResourceNotFound",
        &format!(
            "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
        ),
    )
}

/// `GET /groups?$filter=displayName eq '…'`: the groups with that name.
fn list_groups(ctx: &Ctx, t: &SimTenant, filter: Option<&str>) -> Reply {
    let Some(filter) = filter else {
        return error(
            ctx,
            400,
            "Request_UnsupportedQuery",
            "The simulator lists groups only by displayName eq.",
        );
    };
    let name = filter
        .trim()
        .strip_prefix("displayName eq '")
        .and_then(|rest| rest.strip_suffix('\''));
    let Some(name) = name.filter(|n| !n.replace("''", "").contains('\'')) else {
        return error(
            ctx,
            400,
            "Request_UnsupportedQuery",
            "Invalid filter clause",
        );
    };
    let name = name.replace("''", "'");
    let rows: Vec<String> = t
        .groups
        .iter()
        .filter(|g| !g.deleted && g.display_name.eq_ignore_ascii_case(&name))
        .map(group_json)
        .collect();
    Reply::graph(
        200,
        format!(
            "{{\"@odata.context\":\"https://graph.microsoft.com/v1.0/$metadata#groups(id,displayName)\",\"value\":[{}]}}",
            rows.join(",")
        ),
    )
}

#[allow(clippy::too_many_arguments)]
fn members_page(
    state: &State,
    ctx: &Ctx,
    req: &Incoming<'_>,
    tenant: usize,
    g: usize,
    top: Option<&str>,
    skiptoken: Option<&str>,
) -> Reply {
    let top = match top.map(|v| parse_top(v, MAX_TOP)) {
        None => DEFAULT_TOP,
        Some(Ok(n)) => n as usize,
        Some(Err(message)) => return error(ctx, 400, "Request_BadRequest", &message),
    };
    let offset = match skiptoken {
        None => 0,
        Some(s) => match s
            .strip_prefix("RFNwdA")
            .and_then(|h| usize::from_str_radix(h, 16).ok())
        {
            Some(o) => o,
            None => {
                return error(
                    ctx,
                    400,
                    "Directory_ExpiredPageToken",
                    "The specified page token value has expired and can no longer be included in your request.",
                );
            }
        },
    };
    let t = &state.config.tenants[tenant];
    let all = expand(t, g);
    let end = (offset + top).min(all.len());
    let rows: Vec<String> = all
        .get(offset..end)
        .unwrap_or(&[])
        .iter()
        .map(|m| member_json(state, tenant, *m))
        .collect();
    let base = link_base(state, req);
    let next = if end < all.len() {
        format!(
            "\"@odata.nextLink\":{},",
            json::string(&format!(
                "{base}{}?$select=id&$top={top}&$skiptoken=RFNwdA{end:x}",
                req.raw_path
            ))
        )
    } else {
        String::new()
    };
    Reply::graph(
        200,
        format!(
            "{{\"@odata.context\":\"{base}/v1.0/$metadata#directoryObjects(id)\",{next}\"value\":[{}]}}",
            rows.join(",")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::super::UserSet;
    use super::*;

    fn tenant() -> SimTenant {
        let g = |id: &str, name: &str, users: (u64, u64), nested: &[&str], others| SimGroup {
            id: id.into(),
            display_name: name.into(),
            users: vec![UserSet {
                start: users.0,
                end: users.1,
                step: 1,
            }],
            nested: nested.iter().map(|s| s.to_string()).collect(),
            other_members: others,
            deleted: false,
        };
        let mut t = SimTenant::new("t", "c", "s", 100, 1);
        t.groups = vec![
            g("a", "A", (0, 3), &["b"], 1),
            g("b", "B", (2, 5), &["a", "gone"], 0),
            SimGroup {
                deleted: true,
                ..g("gone", "A", (50, 60), &[], 0)
            },
        ];
        t
    }

    #[test]
    fn expansion_lists_nested_groups_survives_cycles_and_repeats_users() {
        let t = tenant();
        let a = expand(&t, 0);
        let users: Vec<u64> = a
            .iter()
            .filter_map(|m| match m {
                Member::User(i) => Some(*i),
                _ => None,
            })
            .collect();
        // A's 0..3, then B (listed as a member) with 2..5: user 2 twice; B ▸ A stops.
        assert_eq!(users, vec![0, 1, 2, 2, 3, 4]);
        assert!(a.contains(&Member::Group(1)) && !a.contains(&Member::Group(2)));
        assert_eq!(
            a.iter().filter(|m| matches!(m, Member::Other(_))).count(),
            1
        );
        assert_eq!(
            users_of(&t, 1).into_iter().collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4]
        );
        // The deleted group neither resolves by name nor by id.
        assert_eq!(resolve(&t, "a"), vec![0]);
        assert!(resolve(&t, "gone").is_empty());
    }
}
