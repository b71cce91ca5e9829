//! The report family beyond `userRegistrationDetails`: the OData function endpoints
//! (`getCredentialUserRegistrationCount`, `getCredentialUsageSummary(period=…)`,
//! `usersRegisteredByFeature/Method(includedUserTypes=…,includedUserRoles=…)`) and the two
//! event collections (`userCredentialUsageDetails`, `userEventsSummary`), graph-api.md
//! §3, §4.1, §5.2–§5.4.
//!
//! Function segments are matched as Graph does: case-insensitively, with or without the
//! `microsoft.graph.` prefix, with `()` or no parentheses where parameters are optional,
//! parameters in any order, and enum literals plain (`'all'`) or qualified
//! (`microsoft.graph.includedUserTypes'all'`).

use super::daily::{self, DailyReport};
use super::dates::{now_unix, odata_datetime};
use super::events::{
    POST_SENTINEL_FEATURE, event, event_count, is_post_sentinel_method, masked, write_event,
};
use super::family_truth::{
    self, POST_SENTINEL_STATUS, POST_SENTINEL_SUMMARY_FEATURE, SummaryBy, USER_ROLES, USER_TYPES,
};
use super::graph::{
    Incoming, bad_request, decode_skiptoken, encode_skiptoken, link_base, parse_top,
};
use super::json::{self, push_key, push_str};
use super::query::parse_pairs;
use super::server::{Ctx, Reply, State};

/// A family endpoint, with its parsed parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// beta `reports/getCredentialUserRegistrationCount`.
    RegistrationCount,
    /// beta `reports/getCredentialUsageSummary(period='…')`; the period as written.
    UsageSummary(Option<String>),
    /// beta `reports/userCredentialUsageDetails`.
    UsageDetails,
    /// beta `reports/authenticationMethods/userEventsSummary`.
    EventsSummary,
    /// beta `reports/authenticationMethods/userMfaSignInSummary` or
    /// `userPasswordResetsAndChangesSummary` (§4.2, §4.3).
    Daily(DailyReport),
    /// beta `authenticationMethods/userRegistrationActivity(period=…)` (§4.4) or
    /// `userSignInsByAuthMethodSummary(period=…)` (§4.5): delegated only; the period as
    /// written.
    Activity {
        sign_ins: bool,
        period: Option<String>,
    },
    /// `reports/authenticationMethods/usersRegisteredBy{Feature,Method}(…)`.
    Summary {
        by: SummaryBy,
        /// `includedUserTypes` as written (`all` when absent).
        types: String,
        /// `includedUserRoles` as written.
        roles: String,
    },
}

impl Endpoint {
    /// The application permission Graph checks (graph-api.md §6.1).
    pub(crate) fn permission(&self) -> &'static str {
        match self {
            Self::EventsSummary | Self::Summary { .. } | Self::Daily(_) | Self::Activity { .. } => {
                "AuditLog.Read.All"
            }
            _ => "Reports.Read.All",
        }
    }

    /// Whether Microsoft documents it as delegated-only (graph-api.md §3.6).
    pub(crate) fn is_delegated_only(&self) -> bool {
        matches!(self, Self::Summary { .. } | Self::Activity { .. })
    }

    /// Skiptoken tag of the paged endpoints (distinct from the registration reports').
    fn tag(&self) -> u8 {
        match self {
            Self::UsageDetails => 10,
            Self::Daily(DailyReport::MfaSignIns) => 12,
            Self::Daily(DailyReport::PasswordEvents) => 13,
            _ => 11,
        }
    }
}

type RouteError = (u16, String);

/// Splits `microsoft.graph.name(args)` into `("name", Some("args"))`; `name` alone gives
/// `("name", None)`.
fn split_call(segment: &str) -> Result<(&str, Option<&str>), RouteError> {
    let (name, args) = match segment.split_once('(') {
        Some((name, rest)) => match rest.strip_suffix(')') {
            Some(args) => (name, Some(args)),
            None => {
                return Err((
                    400,
                    format!(
                        "Bad Request - Error in query syntax: unbalanced parentheses in '{segment}'."
                    ),
                ));
            }
        },
        None => (segment, None),
    };
    let prefix = "microsoft.graph.";
    let name = match name.get(..prefix.len()) {
        Some(p) if p.eq_ignore_ascii_case(prefix) => &name[prefix.len()..],
        _ => name,
    };
    Ok((name, args))
}

/// Parses `a='x',b=microsoft.graph.t'y'` into `[("a","x"), ("b","y")]`.
fn parse_args(args: &str) -> Result<Vec<(String, String)>, RouteError> {
    let mut out = Vec::new();
    for part in args.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, value)) = part.split_once('=') else {
            return Err((
                400,
                format!("Bad Request - Error in query syntax: '{part}'."),
            ));
        };
        let value = value.trim();
        // An enum literal may be qualified with its type: microsoft.graph.type'value'.
        let (qualifier, quoted) = value.split_at(value.find('\'').unwrap_or(value.len()));
        let literal = quoted
            .strip_prefix('\'')
            .and_then(|q| q.strip_suffix('\''))
            .filter(|_| qualifier.is_empty() || qualifier.contains('.'));
        let Some(literal) = literal else {
            return Err((
                400,
                format!(
                    "Bad Request - Error in query syntax: the value of parameter '{}' must be a quoted string.",
                    key.trim()
                ),
            ));
        };
        out.push((key.trim().to_string(), literal.to_string()));
    }
    Ok(out)
}

/// The `period` argument of a function taking only that one, as written.
fn period_arg(args: Option<&str>) -> Result<Option<String>, RouteError> {
    let mut period = None;
    for (k, v) in parse_args(args.unwrap_or(""))? {
        if !k.eq_ignore_ascii_case("period") {
            return Err((400, format!("The parameter '{k}' is not in scope.")));
        }
        period = Some(v);
    }
    Ok(period)
}

fn no_args(name: &str, args: Option<&str>) -> Result<(), RouteError> {
    match args.map(str::trim) {
        None | Some("") => Ok(()),
        Some(_) => Err((400, format!("The function '{name}' has no parameters."))),
    }
}

/// Routes `segs` (below `reports/`) of a `version` request, or `None` when the path is
/// not one of these endpoints.
pub(crate) fn route(version: &str, segs: &[&str]) -> Option<Result<Endpoint, RouteError>> {
    let beta = version == "beta";
    let is = |s: &str, name: &str| s.eq_ignore_ascii_case(name);
    match segs {
        [seg] => {
            let (name, args) = match split_call(seg) {
                Ok(x) => x,
                Err(e) => return Some(Err(e)),
            };
            if beta && is(name, "getCredentialUserRegistrationCount") {
                return Some(no_args(name, args).map(|()| Endpoint::RegistrationCount));
            }
            if beta && is(name, "getCredentialUsageSummary") {
                return Some(period_arg(args).map(Endpoint::UsageSummary));
            }
            if beta && args.is_none() && is(name, "userCredentialUsageDetails") {
                return Some(Ok(Endpoint::UsageDetails));
            }
            None
        }
        [am, seg] if is(am, "authenticationMethods") => {
            let (name, args) = match split_call(seg) {
                Ok(x) => x,
                Err(e) => return Some(Err(e)),
            };
            if beta && args.is_none() && is(name, "userEventsSummary") {
                return Some(Ok(Endpoint::EventsSummary));
            }
            let sign_ins = is(name, "userSignInsByAuthMethodSummary");
            if beta && (sign_ins || is(name, "userRegistrationActivity")) {
                return Some(
                    period_arg(args).map(|period| Endpoint::Activity { sign_ins, period }),
                );
            }
            for daily in [DailyReport::MfaSignIns, DailyReport::PasswordEvents] {
                if beta && args.is_none() && is(name, daily.type_and_path().1) {
                    return Some(Ok(Endpoint::Daily(daily)));
                }
            }
            let by = if is(name, "usersRegisteredByFeature") {
                SummaryBy::Feature
            } else if is(name, "usersRegisteredByMethod") {
                SummaryBy::Method
            } else {
                return None;
            };
            let args = match parse_args(args.unwrap_or("")) {
                Ok(a) => a,
                Err(e) => return Some(Err(e)),
            };
            let (mut types, mut roles) = ("all".to_string(), "all".to_string());
            for (k, v) in args {
                if k.eq_ignore_ascii_case("includedUserTypes") {
                    types = v;
                } else if k.eq_ignore_ascii_case("includedUserRoles") {
                    roles = v;
                } else {
                    return Some(Err((400, format!("The parameter '{k}' is not in scope."))));
                }
            }
            Some(Ok(Endpoint::Summary { by, types, roles }))
        }
        _ => None,
    }
}

/// Answers 400 for any OData system query option not in `allowed`; other parameters
/// are ignored as Graph ignores them.
fn check_options(
    ctx: &Ctx,
    query: Option<&str>,
    allowed: &[&str],
) -> Result<Vec<(String, String)>, Reply> {
    let pairs = parse_pairs(query.unwrap_or(""));
    for (key, _) in &pairs {
        let k = key.to_ascii_lowercase();
        if k.starts_with('$') && !allowed.contains(&k.as_str()) {
            let mut name: Vec<char> = k.trim_start_matches('$').chars().collect();
            if let Some(c) = name.first_mut() {
                *c = c.to_ascii_uppercase();
            }
            let name: String = name.into_iter().collect();
            return Err(bad_request(
                ctx,
                &format!(
                    "The query specified in the URI is not valid. Query option '{name}' is not allowed. To allow it, set the 'AllowedQueryOptions' property on EnableQueryAttribute or QueryValidationSettings."
                ),
            ));
        }
    }
    Ok(pairs)
}

/// Serves a family endpoint to an authenticated, licensed, permitted caller.
pub(crate) fn handle(
    state: &State,
    ctx: &Ctx,
    req: &Incoming<'_>,
    tenant_index: usize,
    include_unknown: bool,
    version: &str,
    endpoint: &Endpoint,
) -> Reply {
    let tenant = &state.tenants[tenant_index];
    let base = link_base(state, req);
    let t = tenant.dataset_time(now_unix());
    match endpoint {
        Endpoint::RegistrationCount => {
            if let Err(r) = check_options(ctx, req.query, &[]) {
                return r;
            }
            let truth = family_truth::registration_count(tenant, t);
            let mut body = format!(
                "{{\"@odata.context\":{},\"value\":[{{\"id\":{},\"totalUserCount\":{},\"userRegistrationCounts\":[",
                json::string(&format!(
                    "{base}/beta/reports/$metadata#Collection(microsoft.graph.credentialUserRegistrationCount)"
                )),
                json::string(&format!("{}-registration-count", tenant.domain)),
                truth.total_users
            );
            for (i, (status, n)) in truth.statuses.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                let status = masked(status, status == POST_SENTINEL_STATUS, include_unknown);
                body.push_str(&format!(
                    "{{\"registrationStatus\":{},\"registrationCount\":{n}}}",
                    json::string(status)
                ));
            }
            body.push_str("]}]}");
            Reply::graph(200, body)
        }
        Endpoint::UsageSummary(period) => {
            let pairs = match check_options(ctx, req.query, &["$filter"]) {
                Ok(p) => p,
                Err(r) => return r,
            };
            let Some(period) = period else {
                return bad_request(
                    ctx,
                    "The parameter 'period' is required: use period='D1', 'D7' or 'D30'.",
                );
            };
            let Some(days) = family_truth::period_days(period) else {
                return bad_request(
                    ctx,
                    &format!(
                        "Invalid value '{period}' for parameter 'period'. Supported values are D1, D7 and D30."
                    ),
                );
            };
            let mut only_feature = None;
            for (k, v) in &pairs {
                if k.eq_ignore_ascii_case("$filter") {
                    match parse_feature_filter(v) {
                        Some(f) => only_feature = Some(f),
                        None => {
                            return bad_request(
                                ctx,
                                &format!(
                                    "Invalid filter clause: only feature eq 'registration' or feature eq 'reset' is supported, got '{v}'."
                                ),
                            );
                        }
                    }
                }
            }
            let truth = family_truth::usage_summary(tenant, t, days);
            let mut body = String::with_capacity(4096);
            body.push('{');
            push_key(&mut body, "@odata.context");
            push_str(
                &mut body,
                &format!(
                    "{base}/beta/reports/$metadata#Collection(microsoft.graph.getCredentialUsageSummary)"
                ),
                false,
            );
            body.push_str(",\"value\":[");
            let mut first = true;
            for (i, ((feature, method), (ok, failed))) in truth.activities.iter().enumerate() {
                if only_feature
                    .as_deref()
                    .is_some_and(|f| !f.eq_ignore_ascii_case(feature))
                {
                    continue;
                }
                if !first {
                    body.push(',');
                }
                first = false;
                let feature = masked(feature, feature == POST_SENTINEL_FEATURE, include_unknown);
                let method = masked(method, is_post_sentinel_method(method), include_unknown);
                body.push_str(&format!(
                    "{{\"id\":{},\"feature\":{},\"successfulActivityCount\":{ok},\"failureActivityCount\":{failed},\"authMethod\":{}}}",
                    json::string(&format!("{}-{i}", period.to_ascii_uppercase())),
                    json::string(feature),
                    json::string(method),
                ));
            }
            body.push_str("]}");
            Reply::graph(200, body)
        }
        Endpoint::Summary { by, types, roles } => {
            if let Err(r) = check_options(ctx, req.query, &[]) {
                return r;
            }
            let Some(truth) = family_truth::summary(tenant, t, *by, types, roles) else {
                let (param, enum_name, value) =
                    if !USER_TYPES.iter().any(|v| v.eq_ignore_ascii_case(types)) {
                        ("includedUserTypes", "includedUserTypes", types)
                    } else {
                        ("includedUserRoles", "includedUserRoles", roles)
                    };
                return bad_request(
                    ctx,
                    &format!(
                        "The parameter '{param}' has an invalid value: the requested enum value '{value}' is not a member of 'microsoft.graph.{enum_name}'."
                    ),
                );
            };
            let canonical = |list: &[&'static str], v: &str| -> &'static str {
                list.iter()
                    .find(|c| c.eq_ignore_ascii_case(v))
                    .copied()
                    .unwrap_or("all")
            };
            let (type_name, counts_key, item_key) = match by {
                SummaryBy::Feature => (
                    "userRegistrationFeatureSummary",
                    "userRegistrationFeatureCounts",
                    "feature",
                ),
                SummaryBy::Method => (
                    "userRegistrationMethodSummary",
                    "userRegistrationMethodCounts",
                    "authenticationMethod",
                ),
            };
            let mut body = format!(
                "{{\"@odata.context\":{},\"@odata.type\":\"#microsoft.graph.{type_name}\",\"totalUserCount\":{},\"userTypes\":{},\"userRoles\":{},\"{counts_key}\":[",
                json::string(&format!(
                    "{base}/{version}/$metadata#microsoft.graph.{type_name}"
                )),
                truth.total_users,
                json::string(canonical(&USER_TYPES, types)),
                json::string(canonical(&USER_ROLES, roles)),
            );
            for (i, (name, n)) in truth.counts.iter().enumerate() {
                if i > 0 {
                    body.push(',');
                }
                let name = masked(
                    name,
                    *by == SummaryBy::Feature && name == POST_SENTINEL_SUMMARY_FEATURE,
                    include_unknown,
                );
                body.push_str(&format!(
                    "{{\"{item_key}\":{},\"userCount\":{n}}}",
                    json::string(name)
                ));
            }
            body.push_str("]}");
            Reply::graph(200, body)
        }
        Endpoint::Activity { sign_ins, period } => {
            if let Err(r) = check_options(ctx, req.query, &["$filter"]) {
                return r;
            }
            // aggregationPeriod members are lowercase (§4): `D7` is not one.
            let days = match period.as_deref() {
                Some("d1") => 1,
                Some("d7") => 7,
                Some("d30") => 30,
                other => {
                    return bad_request(
                        ctx,
                        &format!(
                            "The parameter 'period' has an invalid value '{}': the requested enum value is not a member of 'microsoft.graph.aggregationPeriod' (d1, d7, d30).",
                            other.unwrap_or("")
                        ),
                    );
                }
            };
            let mut body = format!(
                "{{\"@odata.context\":{},\"value\":[",
                json::string(&format!(
                    "{base}/beta/$metadata#Collection(microsoft.graph.{})",
                    if *sign_ins {
                        "userSignInUsageByAuthMethodActivity"
                    } else {
                        "userRegistrationActivitySummary"
                    }
                ))
            );
            if *sign_ins {
                for (i, (method, n)) in family_truth::sign_ins_by_method(tenant, t, days)
                    .iter()
                    .enumerate()
                {
                    if i > 0 {
                        body.push(',');
                    }
                    body.push_str(&format!(
                        "{{\"@odata.type\":\"#microsoft.graph.userSignInUsageByAuthMethodActivity\",\"authenticationMethod\":{},\"successActivityCount\":{n}}}",
                        json::string(method)
                    ));
                }
            } else {
                let truth = family_truth::usage_summary(tenant, t, days);
                for (i, ((feature, method), (ok, failed))) in truth.activities.iter().enumerate() {
                    if i > 0 {
                        body.push(',');
                    }
                    let feature =
                        masked(feature, feature == POST_SENTINEL_FEATURE, include_unknown);
                    let method = masked(method, is_post_sentinel_method(method), include_unknown);
                    body.push_str(&format!(
                        "{{\"@odata.type\":\"#microsoft.graph.userRegistrationActivitySummary\",\"id\":{},\"feature\":{},\"successfulActivityCount\":{ok},\"failureActivityCount\":{failed},\"authMethod\":{}}}",
                        json::string(&format!("d{days}-{i}")),
                        json::string(feature),
                        json::string(method),
                    ));
                }
            }
            body.push_str("]}");
            Reply::graph(200, body)
        }
        Endpoint::Daily(daily) => {
            daily_page(state, ctx, req, tenant_index, *daily, endpoint, &base)
        }
        Endpoint::UsageDetails | Endpoint::EventsSummary => events_page(
            state,
            ctx,
            req,
            tenant_index,
            include_unknown,
            endpoint,
            &base,
        ),
    }
}

/// A page of a daily report (§4.2, §4.3): no query options but the next link's
/// `$skiptoken` (the docs list none; `$filter` on the password counts is not played).
/// The skiptoken carries the walk's start time, so both pages see the same today.
fn daily_page(
    state: &State,
    ctx: &Ctx,
    req: &Incoming<'_>,
    tenant_index: usize,
    report: DailyReport,
    endpoint: &Endpoint,
    base: &str,
) -> Reply {
    let seed = state.config.tenants[tenant_index].seed;
    let tenant = &state.tenants[tenant_index];
    let pairs = match check_options(ctx, req.query, &["$skiptoken"]) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let skiptoken = pairs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("$skiptoken"))
        .map(|(_, v)| v.as_str());
    let (offset, now) = match skiptoken {
        Some(text) => match decode_skiptoken(seed, endpoint.tag(), text, "") {
            Some(s) => (s.offset as usize, s.dataset_time),
            None => {
                return bad_request(
                    ctx,
                    "Invalid $skiptoken: the token is malformed or was not issued for this query.",
                );
            }
        },
        None => (0, now_unix()),
    };
    let rows = daily::rows(tenant, report, now);
    let first = daily::first_page_len(tenant, report, now, rows.len());
    let (from, to) = if offset == 0 {
        (0, first)
    } else {
        (offset.min(rows.len()), rows.len())
    };
    let (type_name, path) = report.type_and_path();
    let mut body = String::with_capacity(256 + rows.len() * 256);
    body.push('{');
    push_key(&mut body, "@odata.context");
    push_str(
        &mut body,
        &format!("{base}/beta/$metadata#reports/authenticationMethods/{path}"),
        false,
    );
    if to < rows.len() {
        let token = encode_skiptoken(seed, endpoint.tag(), to as u64, now, "");
        body.push(',');
        push_key(&mut body, "@odata.nextLink");
        push_str(
            &mut body,
            &format!("{base}{}?$skiptoken={token}", req.raw_path),
            false,
        );
    }
    body.push_str(",\"value\":[");
    for (i, row) in rows[from..to].iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!(
            "{{\"@odata.type\":\"#microsoft.graph.{type_name}\",\"id\":{},\"{}\":{}",
            json::string(&format!("{:08x}-{}", seed as u32, row.day)),
            report.date_name(),
            json::string(&odata_datetime(row.at, None)),
        ));
        for (name, n) in report.count_names().iter().zip(row.counts) {
            body.push_str(&format!(",\"{name}\":{n}"));
        }
        body.push('}');
    }
    body.push_str("]}");
    Reply::graph(200, body)
}

/// `feature eq 'registration'` (any case, optional spaces) ▸ `registration`.
fn parse_feature_filter(text: &str) -> Option<String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.as_slice() {
        [prop, op, value]
            if prop.eq_ignore_ascii_case("feature") && op.eq_ignore_ascii_case("eq") =>
        {
            let v = value.strip_prefix('\'')?.strip_suffix('\'')?;
            ["registration", "reset"]
                .iter()
                .find(|f| f.eq_ignore_ascii_case(v))
                .map(|f| f.to_string())
        }
        _ => None,
    }
}

/// One page of events, paged like the registration reports (opaque `$skiptoken` bound to
/// the tenant, endpoint and dataset time).
fn events_page(
    state: &State,
    ctx: &Ctx,
    req: &Incoming<'_>,
    tenant_index: usize,
    include_unknown: bool,
    endpoint: &Endpoint,
    base: &str,
) -> Reply {
    let tenant_cfg = &state.config.tenants[tenant_index];
    let tenant = &state.tenants[tenant_index];
    // userEventsSummary documents a default and maximum page of 1000 (§4.1).
    let (default_top, max_top, entity, context, always_typed) = match endpoint {
        Endpoint::EventsSummary => (
            1000,
            1000,
            "microsoft.graph.userEventsSummary",
            format!("{base}/beta/$metadata#reports/authenticationMethods/userEventsSummary"),
            true,
        ),
        _ => (
            100,
            999,
            "microsoft.graph.userCredentialUsageDetails",
            format!(
                "{base}/beta/reports/$metadata#Collection(microsoft.graph.userCredentialUsageDetails)"
            ),
            false,
        ),
    };
    let pairs = match check_options(ctx, req.query, &["$top", "$skiptoken"]) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut top = default_top;
    let mut skiptoken = None;
    for (key, value) in pairs {
        match key.to_ascii_lowercase().as_str() {
            "$top" => match parse_top(&value, max_top) {
                Ok(n) => top = n,
                Err(message) => return bad_request(ctx, &message),
            },
            "$skiptoken" => skiptoken = Some(value),
            _ => {}
        }
    }
    let total = event_count(tenant);
    let (offset, t) = match skiptoken.as_deref() {
        Some(text) => match decode_skiptoken(tenant_cfg.seed, endpoint.tag(), text, "") {
            Some(s) if s.offset <= total => (s.offset, s.dataset_time),
            _ => {
                return bad_request(
                    ctx,
                    "Invalid $skiptoken: the token is malformed or was not issued for this query.",
                );
            }
        },
        None => (0, tenant.dataset_time(now_unix())),
    };
    let end = total.min(offset.saturating_add(top));
    let mut body = String::with_capacity((end - offset) as usize * 400 + 512);
    body.push('{');
    push_key(&mut body, "@odata.context");
    push_str(&mut body, &context, false);
    if end < total {
        let token = encode_skiptoken(tenant_cfg.seed, endpoint.tag(), end, t, "");
        body.push(',');
        push_key(&mut body, "@odata.nextLink");
        push_str(
            &mut body,
            &format!("{base}{}?$top={top}&$skiptoken={token}", req.raw_path),
            false,
        );
    }
    body.push_str(",\"value\":[");
    for i in offset..end {
        if i > offset {
            body.push(',');
        }
        write_event(
            &mut body,
            tenant,
            &event(tenant, i, t),
            t,
            include_unknown,
            entity,
            always_typed,
        );
    }
    body.push_str("]}");
    Reply::graph(200, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_url_forms() {
        let summary = |types: &str, roles: &str| Endpoint::Summary {
            by: SummaryBy::Method,
            types: types.into(),
            roles: roles.into(),
        };
        for seg in [
            "usersRegisteredByMethod",
            "usersRegisteredByMethod()",
            "USERSREGISTEREDBYMETHOD()",
            "microsoft.graph.usersRegisteredByMethod",
        ] {
            assert_eq!(
                route("v1.0", &["authenticationMethods", seg]),
                Some(Ok(summary("all", "all"))),
                "{seg}"
            );
        }
        assert_eq!(
            route(
                "v1.0",
                &[
                    "authenticationmethods",
                    "Microsoft.Graph.usersRegisteredByMethod(includedUserRoles='admin', includedUserTypes=microsoft.graph.includedUserTypes'guest')"
                ]
            ),
            Some(Ok(summary("guest", "admin")))
        );
        assert!(matches!(
            route(
                "v1.0",
                &[
                    "authenticationMethods",
                    "usersRegisteredByMethod(includedUserTypes=all)"
                ]
            ),
            Some(Err((400, _)))
        ));
        assert!(matches!(
            route(
                "v1.0",
                &["authenticationMethods", "usersRegisteredByMethod(x='all')"]
            ),
            Some(Err((400, _)))
        ));
        assert!(matches!(
            route(
                "v1.0",
                &[
                    "authenticationMethods",
                    "usersRegisteredByMethod(includedUserTypes='all'"
                ]
            ),
            Some(Err((400, _)))
        ));
        assert_eq!(
            route(
                "beta",
                &["microsoft.graph.getCredentialUsageSummary(period='d7')"]
            ),
            Some(Ok(Endpoint::UsageSummary(Some("d7".into()))))
        );
        assert_eq!(
            route("beta", &["getCredentialUsageSummary"]),
            Some(Ok(Endpoint::UsageSummary(None)))
        );
        assert_eq!(
            route("beta", &["getCredentialUserRegistrationCount()"]),
            Some(Ok(Endpoint::RegistrationCount))
        );
        assert!(matches!(
            route("beta", &["getCredentialUserRegistrationCount(a='b')"]),
            Some(Err((400, _)))
        ));
        assert_eq!(
            route("beta", &["UserCredentialUsageDetails"]),
            Some(Ok(Endpoint::UsageDetails))
        );
        assert_eq!(
            route("beta", &["authenticationMethods", "userEventsSummary"]),
            Some(Ok(Endpoint::EventsSummary))
        );
        // beta-only endpoints are not in v1.0
        assert_eq!(route("v1.0", &["getCredentialUserRegistrationCount"]), None);
        assert_eq!(
            route("v1.0", &["authenticationMethods", "userEventsSummary"]),
            None
        );
        assert_eq!(route("beta", &["nope"]), None);
    }

    #[test]
    fn feature_filters() {
        assert_eq!(
            parse_feature_filter("feature eq 'registration'").as_deref(),
            Some("registration")
        );
        assert_eq!(
            parse_feature_filter(" Feature  EQ 'RESET' ").as_deref(),
            Some("reset")
        );
        assert_eq!(parse_feature_filter("feature eq 'other'"), None);
        assert_eq!(parse_feature_filter("isSuccess eq true"), None);
    }
}
