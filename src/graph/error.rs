//! Errors from Graph and the token endpoint, typed, with Graph's code and request-id, and
//! messages that tell an admin what to fix.

use std::fmt;

use serde::Deserialize;

/// An error body from the identity platform's token endpoint (graph-api.md §8.5).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TokenErrorBody {
    /// `invalid_client`, `unauthorized_client`, …
    #[serde(default)]
    pub error: String,
    /// `AADSTS…: text\r\nTrace ID: …`
    #[serde(default)]
    pub error_description: String,
    /// AADSTS numbers.
    #[serde(default)]
    pub error_codes: Vec<u64>,
    /// Correlation ID for Microsoft support.
    #[serde(default)]
    pub correlation_id: Option<String>,
}

/// A failed token request.
#[derive(Debug, Clone)]
pub struct TokenError {
    /// HTTP status, or 0 when no response arrived.
    pub status: u16,
    /// OAuth `error`, or a short reason.
    pub error: String,
    /// First line of `error_description` (AADSTS code and text; never the secret).
    pub description: String,
    /// AADSTS codes.
    pub codes: Vec<u64>,
    /// What to fix, for known codes.
    pub hint: Option<&'static str>,
}

impl TokenError {
    /// From an error response.
    pub fn from_response(status: u16, body: &[u8]) -> Self {
        let parsed: TokenErrorBody = serde_json::from_slice(body).unwrap_or_default();
        let description = parsed
            .error_description
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_owned();
        let hint = parsed.error_codes.iter().find_map(|c| token_hint(*c));
        Self {
            status,
            error: if parsed.error.is_empty() {
                format!("HTTP {status}")
            } else {
                parsed.error
            },
            description,
            codes: parsed.error_codes,
            hint,
        }
    }
}

/// Advice for the AADSTS codes an exporter admin meets (graph-api.md §8.5).
fn token_hint(code: u64) -> Option<&'static str> {
    Some(match code {
        7000215 => {
            "the client secret is wrong: use the secret's Value (shown once when created), not its Secret ID"
        }
        7000222 => {
            "the client secret has expired: create a new one under App registrations ▸ Certificates & secrets"
        }
        700016 => {
            "no app with this client_id exists in the tenant: check client_id and tenant_id, and that the app is registered (or consented) in this tenant"
        }
        90002 => {
            "the tenant was not found: check tenant_id and that `cloud` matches where the tenant lives"
        }
        900023 => "tenant_id is not a valid tenant GUID or domain",
        7000218 => {
            "the request carried no credential: set client_secret_file, certificate_file or `auth`"
        }
        700027 => {
            "the client assertion was refused: upload this certificate (the .crt/.cer, public part) under App registrations ▸ Certificates & secrets, and check certificate_file holds its private key"
        }
        700024 => {
            "the client assertion is outside its validity: check the host clock, and for workload identity that the projected token file is being refreshed"
        }
        70021 | 700211 | 700213 => {
            "no federated credential matches the token: check the federated credential's issuer (the cluster's OIDC issuer URL), subject (system:serviceaccount:NAMESPACE:NAME) and audience (api://AzureADTokenExchange)"
        }
        70011 | 1002012 | 700022 => {
            "the scope was rejected: it must be the Graph `/.default` scope of the tenant's cloud"
        }
        90038 | 900432 => "the tenant lives in another national cloud: set `cloud` accordingly",
        7000112 => "the application is disabled in this tenant",
        53003 => "a Conditional Access policy for workload identities blocked the token request",
        _ => return None,
    })
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "token request failed ({}, HTTP {})",
            self.error, self.status
        )?;
        if !self.description.is_empty() {
            write!(f, ": {}", self.description)?;
        }
        if let Some(hint) = self.hint {
            write!(f, " — {hint}")?;
        }
        Ok(())
    }
}

/// Graph's error envelope (graph-api.md §7.1).
#[derive(Debug, Default, Deserialize)]
struct Envelope {
    #[serde(default)]
    error: EnvelopeError,
}

#[derive(Debug, Default, Deserialize)]
struct EnvelopeError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    // Graph sends `innerError`; OData says `innererror` (§7.1): accept both.
    #[serde(
        default,
        rename = "innerError",
        alias = "innererror",
        alias = "InnerError"
    )]
    inner: Option<serde_json::Value>,
}

/// An error response from Graph.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// Graph's `error.code` (branch on this, never on the message).
    pub code: String,
    /// Graph's `error.message`.
    pub message: String,
    /// `request-id` from the body's inner error or the response header.
    pub request_id: Option<String>,
}

impl ApiError {
    /// From a response status, its `request-id` header and body.
    pub fn from_response(status: u16, header_request_id: Option<String>, body: &[u8]) -> Self {
        let env: Envelope = serde_json::from_slice(body).unwrap_or_default();
        let inner_id = env.error.inner.as_ref().and_then(|v| {
            v.as_object()?
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("request-id"))
                .and_then(|(_, v)| v.as_str().map(str::to_owned))
        });
        Self {
            status,
            code: env.error.code,
            message: truncate(&env.error.message, 300),
            request_id: inner_id.or(header_request_id),
        }
    }

    /// The tenant has no Entra ID P1/P2 licence (graph-api.md §7.3). Only the prefix of
    /// the code is stable; some clients see the bare suffix.
    pub fn is_licence_missing(&self) -> bool {
        self.status == 403 && self.code.contains("RequestFromNonPremiumTenantOrB2CTenant")
    }

    /// The app lacks the Graph application permission.
    pub fn is_permission_missing(&self) -> bool {
        self.status == 403
            && (self.code == "Authentication_MSGraphPermissionMissing"
                || self.code == "Authorization_RequestDenied")
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Anything that can end a Graph request or a report walk.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// No token could be had.
    #[error("{0}")]
    Token(TokenError),
    /// Graph answered with an error. `permission` is what the report needs, for the hint.
    #[error("{}", describe_api(.error, .permission))]
    Api {
        /// The error.
        error: ApiError,
        /// The application permission the report requires.
        permission: &'static str,
    },
    /// No response (connect, TLS, reset, timeout).
    #[error("request to Graph failed: {0}")]
    Transport(String),
    /// No response within the request timeout.
    #[error("request to Graph timed out")]
    Timeout,
    /// A response body larger than the bound.
    #[error("response body exceeds {0} bytes")]
    BodyTooLarge(usize),
    /// A page that could not be parsed; the refresh is discarded.
    #[error("page {page}: {source}")]
    Page {
        /// 1-based page number.
        page: u64,
        /// What was wrong.
        source: crate::odata::PageError,
    },
    /// An `@odata.nextLink` pointing away from the configured Graph root: following it
    /// would send the access token to another host.
    #[error(
        "refusing @odata.nextLink to a different origin than the Graph root {expected} (got {got}); the token is only sent to the configured Graph root"
    )]
    ForeignNextLink {
        /// The configured root's origin.
        expected: String,
        /// The link's origin.
        got: String,
    },
    /// The same `@odata.nextLink` twice: Graph is looping.
    #[error("@odata.nextLink repeated on page {0}: Graph returned a paging loop")]
    NextLinkLoop(u64),
    /// Graph refused a delegated-only function (graph-api.md §3.6) to this app-only token.
    #[error("{}", describe_delegated_only(.endpoint, .alternative, .error))]
    DelegatedOnly {
        /// Graph's function name, e.g. `usersRegisteredByFeature`.
        endpoint: &'static str,
        /// The families that carry the same numbers from an app-only report.
        alternative: &'static str,
        /// Graph's answer.
        error: ApiError,
    },
    /// Group membership could not be used: a configured group did not resolve to
    /// exactly one group, or the exclusion membership is not known yet.
    #[error("{0}")]
    Membership(String),
    /// The whole refresh ran past its deadline (retries, throttling or endless paging).
    #[error("refresh gave up after {} without finishing", humantime::format_duration(*.0))]
    RefreshDeadline(std::time::Duration),
    /// Retried until the attempt or time budget ran out.
    #[error("gave up after {attempts} attempts: {last}")]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: Box<GraphError>,
    },
}

impl GraphError {
    /// For a report Microsoft documents as delegated-only: a 403 other than the licence
    /// one means Graph refused the app-only token, and the error says exactly that.
    pub fn for_delegated_only(self, endpoint: &'static str, alternative: &'static str) -> Self {
        match self {
            Self::Api { error, .. } if error.status == 403 && !error.is_licence_missing() => {
                Self::DelegatedOnly {
                    endpoint,
                    alternative,
                    error,
                }
            }
            other => other,
        }
    }

    /// Graph's error answer behind this error, if it is one (also after retries).
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            Self::Api { error, .. } => Some(error),
            Self::RetriesExhausted { last, .. } => last.api_error(),
            _ => None,
        }
    }

    /// A low-cardinality label for logs and the landing page.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Token(_) => "token",
            Self::DelegatedOnly { .. } => "delegated_only",
            Self::Api { error, .. } if error.is_licence_missing() => "licence",
            Self::Api { error, .. } if error.is_permission_missing() => "permission",
            Self::Api { error, .. } if error.status == 429 => "throttled",
            Self::Api { .. } => "api",
            Self::Transport(_) => "network",
            Self::Timeout | Self::RefreshDeadline(_) => "timeout",
            Self::Membership(_) => "membership",
            Self::BodyTooLarge(_) | Self::Page { .. } => "malformed",
            Self::ForeignNextLink { .. } | Self::NextLinkLoop(_) => "paging",
            Self::RetriesExhausted { last, .. } => last.metric_label(),
        }
    }
}

fn describe_delegated_only(endpoint: &str, alternative: &str, e: &ApiError) -> String {
    let id = e
        .request_id
        .as_deref()
        .map(|id| format!(", request-id {id}"))
        .unwrap_or_default();
    format!(
        "Graph refused {endpoint} to this app-only token (HTTP {} {}{id}): Microsoft documents \
         {endpoint} as delegated-only (application permissions are not supported), and this \
         exporter signs in as an application. The same numbers come from the \
         user_registration_details report as {alternative}; remove this report from `reports` \
         to stop the refusals",
        e.status, e.code
    )
}

fn describe_api(e: &ApiError, permission: &str) -> String {
    let id = e
        .request_id
        .as_deref()
        .map(|id| format!(" (request-id {id})"))
        .unwrap_or_default();
    if e.is_licence_missing() {
        return format!(
            "Graph refused the report: the tenant has no Microsoft Entra ID P1 or P2 licence \
             ({}). The authentication-methods reports need P1 or P2; assign one in the tenant \
             and retry (newly licensed tenants can take a while){id}",
            e.code
        );
    }
    if e.is_permission_missing() {
        return format!(
            "Graph refused the report: the app lacks the application permission {permission} \
             ({}: {}). In the Entra admin center open App registrations ▸ the app ▸ API \
             permissions, add Microsoft Graph ▸ Application permissions ▸ {permission}, then \
             click \"Grant admin consent\"{id}",
            e.code, e.message
        );
    }
    format!(
        "Graph returned HTTP {} {}: {}{id}",
        e.status, e.code, e.message
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_envelope_with_either_inner_spelling() {
        for inner in ["innerError", "innererror"] {
            let body = format!(
                r#"{{"error":{{"code":"Authorization_RequestDenied","message":"Insufficient privileges.","{inner}":{{"date":"2024-05-01T12:00:00","request-id":"rid-1","client-request-id":"c"}}}}}}"#
            );
            let e = ApiError::from_response(403, Some("hdr".into()), body.as_bytes());
            assert_eq!(e.code, "Authorization_RequestDenied");
            assert_eq!(e.request_id.as_deref(), Some("rid-1"));
        }
        let e = ApiError::from_response(502, Some("hdr".into()), b"<html>bad gateway</html>");
        assert_eq!(
            (e.code.as_str(), e.request_id.as_deref()),
            ("", Some("hdr"))
        );
    }

    #[test]
    fn special_403s_tell_the_admin_what_to_do() {
        let licence = ApiError::from_response(
            403,
            None,
            br#"{"error":{"code":"Authentication_RequestFromNonPremiumTenantOrB2CTenant","message":"Tenant is not a B2C tenant and doesn't have premium license","innerError":{"request-id":"r9"}}}"#,
        );
        let msg = GraphError::Api {
            error: licence,
            permission: "AuditLog.Read.All",
        }
        .to_string();
        assert!(
            msg.contains("P1 or P2") && msg.contains("request-id r9"),
            "{msg}"
        );

        let perm = ApiError::from_response(
            403,
            None,
            br#"{"error":{"code":"Authentication_MSGraphPermissionMissing","message":"Calling principal does not have required MSGraph permissions AuditLog.Read.All"}}"#,
        );
        let err = GraphError::Api {
            error: perm,
            permission: "AuditLog.Read.All",
        };
        assert_eq!(err.metric_label(), "permission");
        let msg = err.to_string();
        assert!(
            msg.contains("Application permissions ▸ AuditLog.Read.All")
                && msg.contains("admin consent"),
            "{msg}"
        );
    }

    #[test]
    fn delegated_only_refusals_say_so_and_licence_stays_licence() {
        let denied = ApiError::from_response(
            403,
            Some("rid-7".into()),
            br#"{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges to complete the operation."}}"#,
        );
        let err = GraphError::Api {
            error: denied,
            permission: "AuditLog.Read.All",
        }
        .for_delegated_only("usersRegisteredByFeature", "entra_users_with_feature");
        assert_eq!(err.metric_label(), "delegated_only");
        let msg = err.to_string();
        assert!(
            msg.starts_with("Graph refused usersRegisteredByFeature to this app-only token (HTTP 403 Authorization_RequestDenied, request-id rid-7)")
                && msg.contains("delegated-only")
                && msg.contains("as entra_users_with_feature")
                && !msg.contains("Grant admin consent")
                && !msg.contains("  "),
            "{msg}"
        );
        let licence = ApiError::from_response(
            403,
            None,
            br#"{"error":{"code":"Authentication_RequestFromNonPremiumTenantOrB2CTenant","message":"m"}}"#,
        );
        let err = GraphError::Api {
            error: licence,
            permission: "AuditLog.Read.All",
        }
        .for_delegated_only("usersRegisteredByMethod", "entra_users_with_method");
        assert_eq!(err.metric_label(), "licence");
        assert!(matches!(
            GraphError::Timeout.for_delegated_only("x", "y"),
            GraphError::Timeout
        ));
    }

    #[test]
    fn token_errors_keep_first_line_and_hint() {
        let body = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: t\r\nCorrelation ID: c","error_codes":[7000215]}"#;
        let e = TokenError::from_response(401, body);
        let msg = e.to_string();
        assert!(
            msg.starts_with("token request failed (invalid_client, HTTP 401): AADSTS7000215"),
            "{msg}"
        );
        assert!(
            msg.contains("Secret ID") && !msg.contains("Trace ID"),
            "{msg}"
        );
    }
}
