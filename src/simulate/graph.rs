//! The Graph report routes: routing (case-insensitive segments), auth, licence and
//! permission checks, injected faults, query options, paging with opaque skiptokens,
//! and the error envelope (graph-api.md §1, §2, §5.1, §7, §11).

use hyper::Method;

use super::SimReport;
use super::base64url;
use super::dates::{inner_error_date, now_unix};
use super::faults::{Injected, Limited, PageFaults, retry_after_value};
use super::filter::{self, Expr};
use super::functions::{self, Endpoint};
use super::json;
use super::query::{parse_pairs, percent_encode};
use super::rng::hash_bytes;
use super::rows::{Prop, RowWriter, Source, parse_select};
use super::server::{Ctx, Delivery, Reply, State};
use super::token::Lookup;

/// Page size when `$top` is absent.
const DEFAULT_TOP: u64 = 100;
/// Largest `$top` accepted.
const MAX_TOP: u64 = 999;
/// Users a filtered page may scan before it is cut short: bounds one request's CPU.
/// Such a page may hold fewer rows than `$top`, or none, and still carry a next link,
/// which Graph also does (graph-api.md §2.5: never assume a page is complete).
const MAX_SCAN: u64 = 200_000;

const SKIPTOKEN_MAGIC: &[u8; 4] = b"SIMt";
const SKIPTOKEN_VERSION: u8 = 1;

/// The parts of a request the Graph routes look at.
pub(crate) struct Incoming<'a> {
    pub(crate) method: &'a Method,
    /// Percent-decoded path.
    pub(crate) path: &'a str,
    /// The path as received, for next links.
    pub(crate) raw_path: &'a str,
    pub(crate) query: Option<&'a str>,
    pub(crate) authorization: Option<&'a str>,
    pub(crate) prefer: Option<&'a str>,
    pub(crate) host: Option<&'a str>,
}

/// A Graph error response with the §7.1 envelope.
pub(crate) fn error(ctx: &Ctx, status: u16, code: &str, message: &str) -> Reply {
    let body = format!(
        "{{\"error\":{{\"code\":{},\"message\":{},\"innerError\":{{\"date\":{},\"request-id\":{},\"client-request-id\":{}}}}}}}",
        json::string(code),
        json::string(message),
        json::string(&inner_error_date(now_unix())),
        json::string(&ctx.request_id),
        json::string(&ctx.client_request_id),
    );
    Reply::graph(status, body)
}

fn throttled(ctx: &Ctx, retry_after: Option<f64>) -> Reply {
    // The throttling variant of innerError (graph-api.md §7.6).
    let body = format!(
        "{{\"error\":{{\"code\":\"TooManyRequests\",\"message\":\"Please retry again later.\",\"innerError\":{{\"code\":\"429\",\"date\":{},\"message\":\"Please retry after\",\"request-id\":{},\"status\":\"429\",\"client-request-id\":{}}}}}}}",
        json::string(&inner_error_date(now_unix())),
        json::string(&ctx.request_id),
        json::string(&ctx.client_request_id),
    );
    let reply = Reply::graph(429, body);
    match retry_after {
        Some(s) => reply.with("retry-after", retry_after_value(s)),
        None => reply,
    }
}

/// Graph's answer to anything but GET.
pub(crate) fn method_not_allowed(ctx: &Ctx) -> Reply {
    error(
        ctx,
        405,
        "Request_BadRequest",
        "Specified HTTP method is not allowed for the request target.",
    )
    .with("allow", "GET".into())
}

pub(crate) fn bad_request(ctx: &Ctx, message: &str) -> Reply {
    error(ctx, 400, "BadRequest", message)
}

/// A `$top` value between 1 and `max`, or Graph's error message for it.
pub(crate) fn parse_top(value: &str, max: u64) -> Result<u64, String> {
    match value.trim().parse::<u64>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "Invalid page size specified: '{value}'. Must be between 1 and {max} inclusive."
        )),
    }
}

/// Where a path leads.
enum Route<'a> {
    Collection {
        source: Source,
        version: &'static str,
    },
    Entity {
        source: Source,
        version: &'static str,
        id: &'a str,
    },
    /// The rest of the report family (functions and event collections).
    Family {
        version: &'static str,
        endpoint: Endpoint,
    },
}

fn route<'a>(path: &'a str) -> Result<Route<'a>, (u16, String)> {
    let segs = path_segments(path);
    let not_found = |seg: &str| (400, format!("Resource not found for the segment '{seg}'."));
    let version = match segs.first() {
        Some(v) if v.eq_ignore_ascii_case("v1.0") => "v1.0",
        Some(v) if v.eq_ignore_ascii_case("beta") => "beta",
        Some(&"") => return Err((404, "Resource not found.".into())),
        Some(v) => return Err((400, format!("Invalid version: {v}"))),
        None => return Err((404, "Resource not found.".into())),
    };
    let is = |i: usize, name: &str| segs.get(i).is_some_and(|s| s.eq_ignore_ascii_case(name));
    if !is(1, "reports") {
        return Err(not_found(segs.get(1).copied().unwrap_or("")));
    }
    let source = if version == "beta" {
        Source::Beta
    } else {
        Source::V1
    };
    if let Some(found) = functions::route(version, &segs[2..]) {
        return found.map(|endpoint| Route::Family { version, endpoint });
    }
    if is(2, "authenticationMethods") {
        if !is(3, "userRegistrationDetails") {
            return Err(not_found(
                segs.get(3).copied().unwrap_or("authenticationMethods"),
            ));
        }
        return match segs.len() {
            4 => Ok(Route::Collection { source, version }),
            5 => Ok(Route::Entity {
                source,
                version,
                id: segs[4],
            }),
            _ => Err(not_found(segs[5])),
        };
    }
    if is(2, "credentialUserRegistrationDetails") && version == "beta" {
        return match segs.len() {
            3 => Ok(Route::Collection {
                source: Source::Legacy,
                version,
            }),
            _ => Err(not_found(segs[3])),
        };
    }
    Err(not_found(segs.get(2).copied().unwrap_or("reports")))
}

/// Handles every request that is not for the token endpoint.
pub(crate) fn handle(state: &State, ctx: &Ctx, req: &Incoming<'_>) -> Reply {
    if super::directory::is_directory(req.path) {
        return super::directory::handle(state, ctx, req);
    }
    if super::policy::is_policy(req.path) {
        return super::policy::handle(state, ctx, req);
    }
    // Issue 14: role management (privileged roles).
    if super::roles::is_roles(req.path) {
        return super::roles::handle(state, ctx, req);
    }
    let route = match route(req.path) {
        Ok(r) => r,
        Err((status, message)) => {
            let code = if status == 404 {
                "ResourceNotFound"
            } else {
                "BadRequest"
            };
            return error(ctx, status, code, &message);
        }
    };
    if req.method != Method::GET {
        return method_not_allowed(ctx);
    }
    let decision = state.faults.next();
    match decision.injected {
        Some(Injected::Throttle(retry_after)) => return throttled(ctx, retry_after),
        Some(Injected::ServerError(504)) => {
            return error(
                ctx,
                504,
                "GatewayTimeout",
                "The gateway did not receive a timely response from the upstream server.",
            );
        }
        Some(Injected::ServerError(_)) => {
            return error(
                ctx,
                503,
                "ServiceUnavailable",
                "The service is temporarily unavailable. Please retry later.",
            );
        }
        None => {}
    }
    if decision.revoke_tokens {
        state.tokens.revoke_all();
    }
    let grant = match authenticate(state, ctx, req.authorization) {
        Ok(g) => g,
        Err(reply) => return reply,
    };
    // Graph's limit is per app per tenant (§7.7): counted once the caller is known.
    // The per-app limit (§13.1) counts every tenant of the app together.
    let app = &state.config.tenants[grant.tenant].client_id;
    if let Err((which, retry_after)) = state.faults.admit(grant.tenant, app) {
        let mut reply = throttled(ctx, retry_after);
        // Which limit answered, for a bench to count (scripts/bench-scale).
        let limit = match which {
            Limited::Tenant => "tenant",
            Limited::App => "app",
        };
        tracing::warn!(limit, tenant = grant.tenant, "simulated rate limit: 429");
        match which {
            Limited::Tenant => reply.rate_limited = true,
            Limited::App => reply.app_rate_limited = true,
        }
        return reply;
    }
    let needed = match &route {
        Route::Collection { source, .. } | Route::Entity { source, .. } => match source.report() {
            SimReport::UserRegistrationDetails => "AuditLog.Read.All",
            SimReport::CredentialUserRegistrationDetails => "Reports.Read.All",
        },
        Route::Family { endpoint, .. } => endpoint.permission(),
    };
    // "Application: Not supported" (graph-api.md §3.6): every token this simulator
    // issues is app-only. The exact 403 code Graph uses is unverified (§12); this is
    // the generic directory refusal.
    if let Route::Family { endpoint, .. } = &route
        && endpoint.is_delegated_only()
        && !grant.delegated
        && !state.config.tenants[grant.tenant].app_only_summaries
    {
        return error(
            ctx,
            403,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        );
    }
    let has_role = grant.roles.iter().any(|r| {
        r.eq_ignore_ascii_case(needed)
            || (needed == "AuditLog.Read.All"
                && r.eq_ignore_ascii_case("UserAuthenticationMethod.Read.All"))
    });
    if !has_role {
        return error(
            ctx,
            403,
            "Authentication_MSGraphPermissionMissing",
            &format!("Calling principal does not have required MSGraph permissions {needed}"),
        );
    }
    if decision.licence_lost
        || !state.licensed[grant.tenant].load(std::sync::atomic::Ordering::SeqCst)
    {
        return error(
            ctx,
            403,
            "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
            "Tenant is not a B2C tenant and doesn't have premium license",
        );
    }
    let include_unknown = req.prefer.is_some_and(|p| {
        p.split([',', ';']).any(|v| {
            v.trim()
                .eq_ignore_ascii_case("include-unknown-enum-members")
        })
    });
    let (source, version) = match &route {
        Route::Collection {
            source, version, ..
        }
        | Route::Entity {
            source, version, ..
        } => (*source, *version),
        Route::Family { version, endpoint } => {
            return functions::handle(
                state,
                ctx,
                req,
                grant.tenant,
                include_unknown,
                version,
                endpoint,
            );
        }
    };
    let page = Page {
        state,
        ctx,
        req,
        tenant_index: grant.tenant,
        source,
        include_unknown,
        faults: decision.page,
    };
    match route {
        Route::Entity { id, .. } => page.entity(version, id),
        _ => page.collection(version),
    }
}

/// The directory service's 403 (graph-api.md §7.3) unless `grant` holds one of
/// `permissions` and they were not withdrawn at run time (`withdrawn`).
pub(crate) fn require_permission(
    ctx: &Ctx,
    grant: &super::token::Grant,
    permissions: &[&str],
    withdrawn: &std::sync::atomic::AtomicBool,
) -> Result<(), Reply> {
    let allowed = grant
        .roles
        .iter()
        .any(|r| permissions.iter().any(|p| r.eq_ignore_ascii_case(p)));
    if allowed && !withdrawn.load(std::sync::atomic::Ordering::SeqCst) {
        return Ok(());
    }
    Err(error(
        ctx,
        403,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    ))
}

/// The segments of a request path, without its leading and trailing slashes.
pub(crate) fn path_segments(path: &str) -> Vec<&str> {
    path.trim_start_matches('/')
        .trim_end_matches('/')
        .split('/')
        .collect()
}

/// Graph's 400 for a path with a segment it does not know (the last of `segs`).
pub(crate) fn unknown_segment(ctx: &Ctx, segs: &[&str]) -> Reply {
    error(
        ctx,
        400,
        "BadRequest",
        &format!(
            "Resource not found for the segment '{}'.",
            segs.last().unwrap_or(&"")
        ),
    )
}

pub(crate) fn authenticate(
    state: &State,
    ctx: &Ctx,
    authorization: Option<&str>,
) -> Result<super::token::Grant, Reply> {
    let unauthorized = |message: &str| {
        error(ctx, 401, "InvalidAuthenticationToken", message).with(
            "www-authenticate",
            format!(
                "Bearer realm=\"\", authorization_uri=\"{}/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
                state.base_url
            ),
        )
    };
    let token = authorization
        .and_then(|h| h.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(unauthorized("Access token is empty."));
    };
    match state.tokens.lookup(token) {
        Lookup::Valid(g) => Ok(g),
        Lookup::Expired => Err(unauthorized(
            "Lifetime validation failed, the token is expired.",
        )),
        Lookup::Unknown => Err(unauthorized(
            "Access token validation failure. Invalid audience.",
        )),
    }
}

/// A decoded `$skiptoken`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SkipToken {
    pub(crate) offset: u64,
    pub(crate) dataset_time: i64,
}

fn skiptoken_check(seed: u64, tag: u8, offset: u64, time: i64, filter: &str) -> u64 {
    let mut bytes = Vec::with_capacity(17 + filter.len());
    bytes.push(tag);
    bytes.extend_from_slice(&offset.to_le_bytes());
    bytes.extend_from_slice(&time.to_le_bytes());
    bytes.extend_from_slice(filter.as_bytes());
    hash_bytes(seed ^ 0x5EED_70CE, &bytes)
}

/// Opaque by design (graph-api.md §1.3): base64url of offset, dataset time and a
/// checksum bound to the tenant, report (`tag`) and filter, so tampering is detected.
pub(crate) fn encode_skiptoken(
    seed: u64,
    tag: u8,
    offset: u64,
    dataset_time: i64,
    filter: &str,
) -> String {
    let t = SkipToken {
        offset,
        dataset_time,
    };
    let mut bytes = Vec::with_capacity(29);
    bytes.extend_from_slice(SKIPTOKEN_MAGIC);
    bytes.push(SKIPTOKEN_VERSION);
    bytes.extend_from_slice(&t.offset.to_le_bytes());
    bytes.extend_from_slice(&t.dataset_time.to_le_bytes());
    bytes.extend_from_slice(
        &skiptoken_check(seed, tag, t.offset, t.dataset_time, filter).to_le_bytes(),
    );
    base64url::encode_url(&bytes)
}

pub(crate) fn decode_skiptoken(seed: u64, tag: u8, text: &str, filter: &str) -> Option<SkipToken> {
    let bytes = base64url::decode_lenient(text)?;
    if bytes.len() != 29 || &bytes[..4] != SKIPTOKEN_MAGIC || bytes[4] != SKIPTOKEN_VERSION {
        return None;
    }
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let t = SkipToken {
        offset: word(5),
        dataset_time: word(13) as i64,
    };
    (word(21) == skiptoken_check(seed, tag, t.offset, t.dataset_time, filter)).then_some(t)
}

/// The base for links we emit: the Host the client used, so links work through
/// whatever name reached us; the bound address otherwise.
pub(crate) fn link_base(state: &State, req: &Incoming<'_>) -> String {
    match req.host {
        Some(h)
            if !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c)) =>
        {
            format!("http://{h}")
        }
        _ => state.base_url.clone(),
    }
}

/// One page or entity response being built.
struct Page<'a> {
    state: &'a State,
    ctx: &'a Ctx,
    req: &'a Incoming<'a>,
    tenant_index: usize,
    source: Source,
    include_unknown: bool,
    faults: PageFaults,
}

impl Page<'_> {
    /// The base for links we emit: the Host the client used, so links work through
    /// whatever name reached us; the bound address otherwise.
    fn link_base(&self) -> String {
        link_base(self.state, self.req)
    }

    fn context(&self, base: &str, version: &str, select: Option<&[Prop]>) -> String {
        match self.source {
            Source::Legacy => {
                format!(
                    "{base}/beta/reports/$metadata#Collection(microsoft.graph.credentialUserRegistrationDetails)"
                )
            }
            _ => {
                let mut s = format!(
                    "{base}/{version}/$metadata#reports/authenticationMethods/userRegistrationDetails"
                );
                if let Some(sel) = select {
                    let names: Vec<&str> = sel.iter().map(|p| p.name()).collect();
                    s.push_str(&format!("({})", names.join(",")));
                }
                s
            }
        }
    }

    fn collection(&self, version: &str) -> Reply {
        let ctx = self.ctx;
        let tenant_cfg = &self.state.config.tenants[self.tenant_index];
        let tenant = &self.state.tenants[self.tenant_index];
        let mut top = DEFAULT_TOP;
        let mut skiptoken = None;
        let mut select_text = None;
        let mut filter_text = None;
        for (key, value) in parse_pairs(self.req.query.unwrap_or("")) {
            match key.to_ascii_lowercase().as_str() {
                "$top" => match parse_top(&value, MAX_TOP) {
                    Ok(n) => top = n,
                    Err(message) => return bad_request(ctx, &message),
                },
                "$skiptoken" => skiptoken = Some(value),
                "$select" => select_text = Some(value),
                "$filter" => filter_text = Some(value),
                "$skip" | "$orderby" | "$count" | "$expand" | "$search" | "$apply" => {
                    let option = key.trim_start_matches('$');
                    let mut name: Vec<char> = option.chars().collect();
                    if let Some(c) = name.first_mut() {
                        *c = c.to_ascii_uppercase();
                    }
                    let name: String = name.into_iter().collect();
                    return bad_request(
                        ctx,
                        &format!(
                            "The query specified in the URI is not valid. Query option '{name}' is not allowed. To allow it, set the 'AllowedQueryOptions' property on EnableQueryAttribute or QueryValidationSettings."
                        ),
                    );
                }
                // Other parameters are ignored, as Graph ignores unknown ones.
                _ => {}
            }
        }
        let select = match select_text.as_deref().map(|s| parse_select(self.source, s)) {
            Some(Ok(sel)) => Some(sel),
            Some(Err(name)) => {
                return bad_request(
                    ctx,
                    &format!(
                        "Could not find a property named '{name}' on type '{}'.",
                        self.source.entity_type()
                    ),
                );
            }
            None => None,
        };
        let filter: Option<Expr> = match filter_text
            .as_deref()
            .map(|f| filter::parse(self.source, f))
        {
            Some(Ok(e)) => Some(e),
            Some(Err(message)) => {
                return bad_request(ctx, &format!("Invalid filter clause: {message}"));
            }
            None => None,
        };
        let filter_key = filter_text.as_deref().unwrap_or("");
        let start = match skiptoken.as_deref() {
            Some(text) => {
                match decode_skiptoken(tenant_cfg.seed, self.source as u8, text, filter_key) {
                    Some(t) if t.offset <= tenant.users => t,
                    _ => {
                        return bad_request(
                            ctx,
                            "Invalid $skiptoken: the token is malformed or was not issued for this query.",
                        );
                    }
                }
            }
            None => SkipToken {
                offset: 0,
                dataset_time: tenant.dataset_time(now_unix()),
            },
        };

        let writer = RowWriter {
            tenant,
            source: self.source,
            include_unknown: self.include_unknown,
            select: select.as_deref(),
        };
        let base = self.link_base();
        let mut rows = String::with_capacity(top as usize * 720);
        let mut index = start.offset;
        let mut written = 0;
        let scan_end = if filter.is_some() {
            start.offset.saturating_add(MAX_SCAN)
        } else {
            u64::MAX
        };
        while index < tenant.users && written < top && index < scan_end {
            let user = tenant.user(index, start.dataset_time);
            index += 1;
            if let Some(f) = &filter
                && !filter::matches(f, tenant, &user)
            {
                continue;
            }
            if written > 0 {
                rows.push(',');
            }
            writer.write(&mut rows, &user, true);
            written += 1;
        }

        let mut body = String::with_capacity(rows.len() + 512);
        body.push('{');
        json::push_key(&mut body, "@odata.context");
        json::push_str(
            &mut body,
            &self.context(&base, version, select.as_deref()),
            false,
        );
        let link = if self.faults.next_link_loop {
            // This page's own URL: the client has been here already.
            Some(match self.req.query {
                Some(q) => format!("{base}{}?{q}", self.req.raw_path),
                None => format!("{base}{}", self.req.raw_path),
            })
        } else if index < tenant.users || self.faults.foreign_next_link.is_some() {
            let token = encode_skiptoken(
                tenant_cfg.seed,
                self.source as u8,
                index,
                start.dataset_time,
                filter_key,
            );
            let base = self.faults.foreign_next_link.as_deref().unwrap_or(&base);
            let mut link = format!("{base}{}?$top={top}&$skiptoken={token}", self.req.raw_path);
            if let Some(s) = &select_text {
                link.push_str(&format!("&$select={}", percent_encode(s)));
            }
            if let Some(f) = &filter_text {
                link.push_str(&format!("&$filter={}", percent_encode(f)));
            }
            Some(link)
        } else {
            None
        };
        if let Some(link) = link {
            body.push(',');
            json::push_key(&mut body, "@odata.nextLink");
            json::push_str(&mut body, &link, false);
        }
        if !self.faults.missing_value {
            body.push(',');
            json::push_key(&mut body, "value");
            body.push('[');
            body.push_str(&rows);
            body.push(']');
        }
        body.push('}');
        let mut reply = Reply::graph(200, body);
        reply.delivery = if self.faults.truncate {
            Delivery::Truncated
        } else if let Some(stall) = self.faults.stall {
            Delivery::Stalled(stall)
        } else {
            Delivery::Whole
        };
        reply
    }

    fn entity(&self, version: &str, id: &str) -> Reply {
        let tenant = &self.state.tenants[self.tenant_index];
        let Some(index) = tenant.index_of(id) else {
            return error(
                self.ctx,
                404,
                "Request_ResourceNotFound",
                &format!(
                    "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
                ),
            );
        };
        let writer = RowWriter {
            tenant,
            source: self.source,
            include_unknown: self.include_unknown,
            select: None,
        };
        let mut body = String::with_capacity(1024);
        body.push('{');
        json::push_key(&mut body, "@odata.context");
        let context = format!("{}/$entity", self.context(&self.link_base(), version, None));
        json::push_str(&mut body, &context, false);
        writer.write(
            &mut body,
            &tenant.user(index, tenant.dataset_time(now_unix())),
            false,
        );
        Reply::graph(200, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_is_checked() {
        assert_eq!(parse_top(" 999", 999), Ok(999));
        for bad in ["0", "1000", "-1", "ten"] {
            assert_eq!(
                parse_top(bad, 999),
                Err(format!(
                    "Invalid page size specified: '{bad}'. Must be between 1 and 999 inclusive."
                ))
            );
        }
    }

    #[test]
    fn skiptoken_round_trip_and_tamper() {
        let t = SkipToken {
            offset: 1234,
            dataset_time: 1_784_000_000,
        };
        let v1 = Source::V1 as u8;
        let s = encode_skiptoken(7, v1, t.offset, t.dataset_time, "");
        assert!(s.parse::<u64>().is_err());
        assert_eq!(decode_skiptoken(7, v1, &s, ""), Some(t));
        assert_eq!(decode_skiptoken(8, v1, &s, ""), None);
        assert_eq!(decode_skiptoken(7, Source::Legacy as u8, &s, ""), None);
        assert_eq!(decode_skiptoken(7, v1, &s, "isAdmin eq true"), None);
        let mut bytes = base64url::decode_lenient(&s).unwrap();
        bytes[5] ^= 1;
        assert_eq!(
            decode_skiptoken(7, v1, &base64url::encode_url(&bytes), ""),
            None
        );
        assert_eq!(decode_skiptoken(7, v1, "100", ""), None);
    }

    #[test]
    fn routes() {
        assert!(matches!(
            route("/V1.0/Reports/AuthenticationMethods/UserRegistrationDetails"),
            Ok(Route::Collection {
                source: Source::V1,
                ..
            })
        ));
        assert!(matches!(
            route("/beta/reports/authenticationMethods/userRegistrationDetails/abc"),
            Ok(Route::Entity {
                source: Source::Beta,
                id: "abc",
                ..
            })
        ));
        assert!(matches!(
            route("/beta/reports/credentialUserRegistrationDetails"),
            Ok(Route::Collection {
                source: Source::Legacy,
                ..
            })
        ));
        assert!(route("/v1.0/reports/credentialUserRegistrationDetails").is_err());
        assert_eq!(
            route("/v1.0/reports/nope").err().unwrap().1,
            "Resource not found for the segment 'nope'."
        );
        assert_eq!(route("/v2/reports").err().unwrap().0, 400);
    }
}
