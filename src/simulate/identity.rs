//! The simulated managed-identity endpoints: a VM's IMDS (`GET
//! /metadata/identity/oauth2/token`, `Metadata: true`) and the App Service / Container
//! Apps endpoint (`GET /msi/token`, `X-IDENTITY-HEADER`), graph-api.md §10. Both answer
//! with every number as a string, as the real ones do.

use std::time::Duration;

use super::dates::now_unix;
use super::json;
use super::query::parse_pairs;
use super::server::Reply;
use super::token::TokenStore;
use super::{APP_SERVICE_IDENTITY_PATH, IMDS_PATH, SimConfig};

/// The `resource` values of the four clouds' Graph (the scope without `/.default`).
const GRAPH_RESOURCES: [&str; 4] = [
    "https://graph.microsoft.com",
    "https://graph.microsoft.us",
    "https://dod-graph.microsoft.us",
    "https://microsoftgraph.chinacloudapi.cn",
];

/// Whether `path` is one of the identity endpoints.
pub(crate) fn is_identity_path(path: &str) -> bool {
    path.eq_ignore_ascii_case(IMDS_PATH) || path.eq_ignore_ascii_case(APP_SERVICE_IDENTITY_PATH)
}

fn error(status: u16, error: &str, description: &str) -> Reply {
    Reply::sts(
        status,
        format!(
            "{{\"error\":{},\"error_description\":{}}}",
            json::string(error),
            json::string(description)
        ),
    )
}

/// Handles a GET to an identity endpoint. `metadata` and `identity_header` are the
/// request's `Metadata` and `X-IDENTITY-HEADER` headers.
pub(crate) fn handle(
    config: &SimConfig,
    store: &TokenStore,
    path: &str,
    query: Option<&str>,
    metadata: Option<&str>,
    identity_header: Option<&str>,
) -> Reply {
    let imds = path.eq_ignore_ascii_case(IMDS_PATH);
    if imds && metadata != Some("true") {
        return error(
            400,
            "bad_request_102",
            "Required metadata header not specified",
        );
    }
    if !imds && identity_header != Some(config.identity_header.as_str()) {
        return error(
            401,
            "unknown_source",
            "Unable to validate the X-IDENTITY-HEADER of the request.",
        );
    }
    let pairs = parse_pairs(query.unwrap_or(""));
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    if get("api-version").is_none() {
        return error(
            400,
            "invalid_request",
            "Required query variable 'api-version' is missing",
        );
    }
    let Some(resource) = get("resource") else {
        return error(
            400,
            "invalid_request",
            "Required query variable 'resource' is missing",
        );
    };
    if !GRAPH_RESOURCES
        .iter()
        .any(|r| r.eq_ignore_ascii_case(resource.trim_end_matches('/')))
    {
        return error(
            400,
            "invalid_resource",
            &format!(
                "AADSTS500011: The resource principal named {resource} was not found in the tenant."
            ),
        );
    }
    let tenant = match get("client_id") {
        Some(id) => config
            .tenants
            .iter()
            .position(|t| t.managed_identity.as_deref() == Some(id)),
        None => config.system_identity_tenant.as_deref().and_then(|tid| {
            config
                .tenants
                .iter()
                .position(|t| t.tenant_id.eq_ignore_ascii_case(tid))
        }),
    };
    let Some(index) = tenant else {
        return error(400, "invalid_request", "Identity not found");
    };
    let lifetime: Duration = config.token_lifetime;
    let token = store.issue(index, config.tenants[index].roles.clone(), lifetime);
    let now = now_unix();
    let secs = lifetime.as_secs();
    Reply::sts(
        200,
        format!(
            "{{\"access_token\":{},\"refresh_token\":\"\",\"expires_in\":\"{secs}\",\"expires_on\":\"{}\",\"not_before\":\"{now}\",\"resource\":{},\"token_type\":\"Bearer\"}}",
            json::string(&token),
            now + secs as i64,
            json::string(resource),
        ),
    )
}
