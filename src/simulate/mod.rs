//! A simulated Microsoft Graph (authentication-methods reports) and Entra token endpoint.
//!
//! It serves `--demo`, the `simulate` subcommand and the tests. It aims to be
//! indistinguishable from Graph for the exporter: same URLs, paging, headers, errors and
//! quirks (graph-api.md §1.4, §11), with fault injection.
//!
//! Independence (design.md, "Simulator"): this module generates its rows, serialises them
//! itself and computes its own [`RegistrationTruth`] from the users it generates. It never
//! calls the exporter's parsing or aggregation, so a mistake there cannot hide here.
//!
//! Layout: `tenant` generates synthetic users, `truth` counts them, `rows` writes
//! them as JSON, `token` is the STS, `graph` the report routes and paging, `filter` the
//! `$filter` subset, `faults` the injected failures, `body` their delivery, `server` the
//! hyper plumbing, `assertion` the client-assertion checks, `identity` the
//! managed-identity endpoints; `events` generates registration/reset events,
//! `functions` serves the rest of the report family (function endpoints and event
//! collections) and `family_truth` holds their truth; [`cli`] is the `simulate`
//! subcommand. Nothing here uses the rest of the crate.

mod assertion;
mod base64url;
mod body;
pub mod cli;
mod coverage_truth;
mod daily;
mod dates;
mod delegated;
mod directory;
mod events;
mod family_truth;
mod faults;
mod filter;
mod functions;
mod graph;
mod identity;
mod json;
mod policy;

mod privileged_truth;
mod query;
mod rng;
mod roles;
mod rows;
mod server;
mod tenant;
mod token;
mod truth;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use assertion::{FEDERATED_AUDIENCE, FEDERATED_ISSUER};
pub use coverage_truth::{CoverageSpec, CoverageTruth, GroupCoverageTruth};
pub use daily::{DailyReport, DailyTruth};
pub use delegated::RefreshStatus;
pub use family_truth::{
    RegistrationCountTruth, SummaryBy, SummaryTruth, UsageEventsTruth, UsageSummaryTruth,
};
pub use policy::{PolicyTruth, SimCampaign, SimMethod, SimPolicy};

pub use privileged_truth::{PrivilegedRoleTruth, PrivilegedSpec, PrivilegedTruth, default_roles};
pub use server::SimServer;
pub use truth::{GroupTruth, RegistrationTruth};

/// Tenant id of the built-in demo tenant (`--demo`).
pub const DEMO_TENANT_ID: &str = "00000000-0000-4000-8000-00000000de70";
/// Client id accepted by the demo tenant.
pub const DEMO_CLIENT_ID: &str = "00000000-0000-4000-8000-0000000c11e7";
/// Client secret accepted by the demo tenant. Not a credential of anything real.
pub const DEMO_CLIENT_SECRET: &str = "demo-client-secret-not-a-real-credential";

/// Default `X-IDENTITY-HEADER` secret of the App Service-style identity endpoint.
pub const DEFAULT_IDENTITY_HEADER: &str = "simulated-identity-header";
/// Path of the simulated IMDS token endpoint (graph-api.md §10.1).
pub const IMDS_PATH: &str = "/metadata/identity/oauth2/token";
/// Path of the simulated App Service / Container Apps identity endpoint (§10.2).
pub const APP_SERVICE_IDENTITY_PATH: &str = "/msi/token";

/// How often the demo data completes one drift cycle.
const DEMO_DRIFT_PERIOD: Duration = Duration::from_secs(2 * 3600);

/// What the simulator serves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The simulated tenants, each with its own app registration and users.
    pub tenants: Vec<SimTenant>,
    /// Injected failures on the Graph report routes.
    pub faults: Faults,
    /// Lifetime of issued access tokens (`expires_in`); default 3599 s as Entra sends.
    pub token_lifetime: Duration,
    /// `tenant_id` of the tenant the host's system-assigned managed identity belongs to
    /// (what the identity endpoints issue when no `client_id` is asked for).
    pub system_identity_tenant: Option<String>,
    /// The `X-IDENTITY-HEADER` value the App Service-style endpoint requires.
    pub identity_header: String,
    /// Device codes (delegated sign-in): how long one is valid (Entra: 15 min) and the
    /// polling interval it asks for (Entra: 5 s).
    pub device_code_lifetime: Duration,
    /// See `device_code_lifetime`.
    pub device_code_interval: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            tenants: Vec::new(),
            faults: Faults::default(),
            token_lifetime: Duration::from_secs(3599),
            system_identity_tenant: None,
            identity_header: DEFAULT_IDENTITY_HEADER.to_owned(),
            device_code_lifetime: Duration::from_secs(900),
            device_code_interval: Duration::from_secs(5),
        }
    }
}

/// One simulated tenant and the single app registration that may read it.
#[derive(Clone)]
pub struct SimTenant {
    /// The `{tenant}` path segment of the token endpoint: a GUID or a domain.
    pub tenant_id: String,
    /// The app (client) id.
    pub client_id: String,
    /// The app's client secret.
    pub client_secret: String,
    /// Number of users in the synthetic tenant.
    pub users: u64,
    /// Seed of the synthetic data; the same seed gives the same users.
    pub seed: u64,
    /// App roles granted to the app, carried by its tokens.
    pub roles: Vec<String>,
    /// `false`: every report route answers the P1/P2 licence 403.
    pub licensed: bool,
    /// `Some(period)`: coverage drifts with wall-clock time over `period` (for `--demo`);
    /// `None`: the data set is static.
    pub drift: Option<Duration>,
    /// Serve `usersRegisteredByFeature`/`usersRegisteredByMethod` to app-only tokens.
    /// Real Graph refuses them (delegated only, graph-api.md §3.6), and so does the
    /// simulator by default; `--demo` turns this on so every family shows.
    pub app_only_summaries: bool,
    /// PEM of the certificate registered on the app: certificate assertions are
    /// verified against it (thumbprint and RSA signature). `None`: none registered.
    pub certificate_pem: Option<String>,
    /// Subject of the app's federated credential (issuer [`FEDERATED_ISSUER`], audience
    /// `api://AzureADTokenExchange`); tokens from [`SimServer::federated_token`] with
    /// this subject are accepted as client assertions. `None`: no federated credential.
    pub federated_subject: Option<String>,
    /// Client ID of a user-assigned managed identity in this tenant, granted the same
    /// roles; the identity endpoints issue its tokens when asked with this `client_id`.
    pub managed_identity: Option<String>,
    /// The tenant's groups (`/v1.0/groups`, graph-api.md §13.2–13.3).
    pub groups: Vec<SimGroup>,
    /// Issue 14b: the authentication methods policy (§13.5); changeable at run time
    /// with [`SimServer::set_policy`].
    pub policy: SimPolicy,

    /// Issue 14: the tenant's directory roles (`/v1.0/roleManagement/directory`, §13.4).
    pub directory_roles: SimRoles,
}

/// Issue 14: a tenant's role definitions and who holds them.
#[derive(Debug, Clone, Default)]
pub struct SimRoles {
    /// Role definitions (built-in ones have `id` = `template_id`).
    pub definitions: Vec<SimRoleDefinition>,
    /// Assignments of every kind.
    pub assignments: Vec<SimRoleAssignment>,
    /// No P2 licence: the PIM lists answer 400 `AadPremiumLicenseRequired`.
    pub no_p2: bool,
}

/// A role definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRoleDefinition {
    /// Object id.
    pub id: String,
    /// Template id (the same in every tenant for built-in roles).
    pub template_id: String,
    /// Display name.
    pub display_name: String,
}

/// Who holds a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimPrincipal {
    /// A user by generator index.
    User(u64),
    /// A role-assignable group, by id among the tenant's groups.
    Group(String),
    /// The n-th service principal.
    ServicePrincipal(u32),
}

/// How a role is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimRoleKind {
    /// Active, permanent: in `roleAssignments` and the assignment schedule instances.
    Permanent,
    /// Active until an end date: only in `roleAssignmentScheduleInstances`.
    TimeBound,
    /// A PIM activation (short-lived): only in `roleAssignmentScheduleInstances`.
    Activated,
    /// PIM-eligible: only in `roleEligibilityScheduleInstances`.
    Eligible,
}

/// One role assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRoleAssignment {
    /// The role definition's id.
    pub role: String,
    /// Who holds it.
    pub principal: SimPrincipal,
    /// `directoryScopeId`: `/` tenant-wide, else e.g. `/administrativeUnits/{id}`.
    pub scope: String,
    /// How.
    pub kind: SimRoleKind,
}

impl SimRoles {
    /// The built-in role definitions the simulator knows: the twelve of graph-api.md
    /// §13.4.1 and a few other built-ins (Helpdesk, Password, Global Reader).
    pub fn builtin_definitions() -> Vec<SimRoleDefinition> {
        [
            (
                "Global Administrator",
                "62e90394-69f5-4237-9190-012177145e10",
            ),
            (
                "Privileged Role Administrator",
                "e8611ab8-c189-46e8-94e1-60213ab1f814",
            ),
            (
                "Privileged Authentication Administrator",
                "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
            ),
            (
                "Security Administrator",
                "194ae4cb-b126-40b2-bd5b-6091b380977d",
            ),
            ("User Administrator", "fe930be7-5e62-47db-91af-98c3a49a38b1"),
            (
                "Exchange Administrator",
                "29232cdf-9323-42fd-ade2-1d097af3e4de",
            ),
            (
                "SharePoint Administrator",
                "f28a1f50-f6e7-4571-818b-6a12f2af6b6c",
            ),
            (
                "Application Administrator",
                "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
            ),
            (
                "Cloud Application Administrator",
                "158c047a-c907-4556-b7ef-446551a6b5f7",
            ),
            (
                "Hybrid Identity Administrator",
                "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2",
            ),
            (
                "Conditional Access Administrator",
                "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9",
            ),
            (
                "Authentication Administrator",
                "c4e39bd9-1100-46d3-8c65-fb160da0071f",
            ),
            (
                "Helpdesk Administrator",
                "729827e3-9c14-49f7-bb1b-9608f156bbb8",
            ),
            (
                "Password Administrator",
                "966707d0-3269-4727-9be2-8c3a10f19b9d",
            ),
            ("Global Reader", "f2ef992c-3afb-46b9-b7cf-a126ee74c451"),
        ]
        .into_iter()
        .map(|(name, id)| SimRoleDefinition {
            id: id.to_owned(),
            template_id: id.to_owned(),
            display_name: name.to_owned(),
        })
        .collect()
    }
}

/// A simulated group.
#[derive(Debug, Clone, Default)]
pub struct SimGroup {
    /// Object id.
    pub id: String,
    /// Display name (not unique: two groups may share one).
    pub display_name: String,
    /// Direct user members, by generator index (an index at or past the tenant's
    /// `users` is a member the registration report does not list).
    pub users: Vec<UserSet>,
    /// Ids of directly nested groups (cycles allowed).
    pub nested: Vec<String>,
    /// Direct members that are not users: devices, service principals, contacts in turn.
    pub other_members: u32,
    /// Deleted: 404 by id, absent by name.
    pub deleted: bool,
}

/// Users `start, start + step, …` below `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserSet {
    /// First index.
    pub start: u64,
    /// End (exclusive).
    pub end: u64,
    /// Stride (0 counts as 1).
    pub step: u64,
}

impl std::fmt::Debug for SimTenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimTenant")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("users", &self.users)
            .field("seed", &self.seed)
            .field("roles", &self.roles)
            .field("licensed", &self.licensed)
            .field("drift", &self.drift)
            .field("app_only_summaries", &self.app_only_summaries)
            .field("certificate", &self.certificate_pem.is_some())
            .field("federated_subject", &self.federated_subject)
            .field("managed_identity", &self.managed_identity)
            .field("groups", &self.groups.len())
            .field("policy", &self.policy)
            .field("role_assignments", &self.directory_roles.assignments.len())
            .finish()
    }
}

impl SimTenant {
    /// A licensed tenant with static data whose app holds `AuditLog.Read.All`,
    /// `Reports.Read.All`, `GroupMember.Read.All` and `Policy.Read.All`.
    pub fn new(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        users: u64,
        seed: u64,
    ) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            users,
            seed,
            roles: vec![
                "AuditLog.Read.All".into(),
                "Reports.Read.All".into(),
                "GroupMember.Read.All".into(),
                // Issue 14b: the authentication methods policy.
                "Policy.Read.All".into(),
            ],
            licensed: true,
            drift: None,
            app_only_summaries: false,
            certificate_pem: None,
            federated_subject: None,
            managed_identity: None,
            groups: Vec::new(),
            policy: SimPolicy::default(),

            directory_roles: SimRoles::default(),
        }
    }
}

/// Injected failures. The default injects none. "Every Nth" counts report requests
/// (across tenants) from the start or from the last [`SimServer::set_faults`].
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Every Nth Graph report request is answered 429 `TooManyRequests`.
    pub throttle_every: Option<u32>,
    /// `Retry-After` seconds sent with those 429s (`None`: no header). May be fractional.
    pub retry_after: Option<f64>,
    /// Every Nth Graph report request is answered 503 `ServiceUnavailable` (the last
    /// `server_error_burst` of every N, alternating 503 and 504, when that is above 1).
    pub server_error_every: Option<u32>,
    /// Length of each 5xx burst (0 and 1 both mean a single failure).
    pub server_error_burst: u32,
    /// Graph's real limit: at most N accepted requests per (app, tenant) in any sliding
    /// window; more are answered 429.
    pub rate_limit: Option<RateLimit>,
    /// Graph's per-app limit (graph-api.md §13.1): at most N accepted requests per app
    /// (client ID, across all its tenants) in any sliding window; more are answered 429.
    /// A request counts against the app and its tenant only when both accept it.
    pub app_rate_limit: Option<RateLimit>,
    /// Every Nth page is cut off halfway: the connection closes before the declared
    /// `Content-Length` arrives.
    pub truncate_every: Option<u32>,
    /// Every Nth page stalls halfway through its body for [`stall`](Self::stall).
    pub stall_every: Option<u32>,
    /// How long a stalled body stalls.
    pub stall: std::time::Duration,
    /// At every Nth report request every issued token is revoked, as if it had expired
    /// mid-walk: that request and any other holding an old token get a 401.
    pub revoke_tokens_every: Option<u32>,
    /// Every page's `@odata.nextLink` points at this base URL (another host) instead.
    pub foreign_next_link: Option<String>,
    /// Every Nth page leaves out `value`.
    pub missing_value_every: Option<u32>,
    /// Every Nth page's `@odata.nextLink` is that page's own URL: a paging loop.
    pub next_link_loop_every: Option<u32>,
    /// After N report requests the tenant loses its P1/P2 licence (403 from then on).
    pub licence_lost_after: Option<u32>,
    /// Every Nth directory request (`/v1.0/groups…`, counted apart from the reports)
    /// is answered with the directory service's 429.
    pub directory_throttle_every: Option<u32>,
    /// `Retry-After` seconds sent with those 429s (`None`: no header).
    pub directory_retry_after: Option<f64>,
}

/// A sliding-window request limit (graph-api.md §7.7, §11.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests accepted in any window.
    pub requests: u32,
    /// The window.
    pub window: std::time::Duration,
    /// Whether the 429 carries a `Retry-After` (Graph often sends none).
    pub retry_after: bool,
}

/// The registration reports the simulator serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SimReport {
    /// `/{v1.0|beta}/reports/authenticationMethods/userRegistrationDetails`.
    UserRegistrationDetails,
    /// `/beta/reports/credentialUserRegistrationDetails` (legacy).
    CredentialUserRegistrationDetails,
}

/// One request the simulator answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Path and query exactly as received (still percent-encoded).
    pub path_and_query: String,
    /// Status code sent.
    pub status: u16,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The `Prefer` header, if any.
    pub prefer: Option<String>,
    /// The `client-request-id` header, if any.
    pub client_request_id: Option<String>,
    /// The `scope` form field of a token-endpoint request, if any (decoded).
    pub scope: Option<String>,
}

/// Totals since the server started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimCounters {
    /// Requests to the token endpoint.
    pub token_requests: u64,
    /// Requests to anything other than the token endpoint.
    pub graph_requests: u64,
    /// 429 responses sent.
    pub throttled: u64,
    /// 503 and 504 responses sent.
    pub server_errors: u64,
    /// 401 responses sent (token endpoint and Graph).
    pub unauthorized: u64,
    /// 429 responses sent by the sliding-window limit (included in `throttled`).
    pub rate_limited: u64,
    /// 429 responses sent by the per-app limit (included in `throttled`, not in
    /// `rate_limited`).
    pub app_rate_limited: u64,
    /// With a per-app limit: the most requests one app had accepted in any of its
    /// windows (Graph's limit is 122 per 10 s).
    pub app_window_peak: u64,
    /// Bodies cut off halfway.
    pub truncated: u64,
    /// Bodies that stalled halfway.
    pub stalled: u64,
}

/// One demo tenant with drifting data, every report served (the delegated-only
/// summaries included), and the well-known demo credentials
/// ([`DEMO_TENANT_ID`], [`DEMO_CLIENT_ID`], [`DEMO_CLIENT_SECRET`]).
pub fn demo_config(users: u64, seed: u64) -> SimConfig {
    let mut tenant = SimTenant::new(
        DEMO_TENANT_ID,
        DEMO_CLIENT_ID,
        DEMO_CLIENT_SECRET,
        users,
        seed,
    );
    tenant.drift = Some(DEMO_DRIFT_PERIOD);
    tenant.app_only_summaries = true;
    tenant.groups = demo_groups(users);
    // Issue 14b: some methods disabled, the campaign off.
    tenant.policy = SimPolicy::demo();

    // Issue 14: privileged roles, a role-assignable group, and the permission to read them.
    tenant.groups.push(roles::demo_tier0_group(users));
    tenant.roles.push("RoleManagement.Read.Directory".into());
    tenant.directory_roles = roles::demo_roles(&tenant::Tenant::new(
        DEMO_TENANT_ID,
        seed,
        users,
        Some(DEMO_DRIFT_PERIOD),
    ));
    SimConfig {
        tenants: vec![tenant],
        ..SimConfig::default()
    }
}

/// `count` groups `Department 0` … with ids `00000000-0000-4000-8000-0000d0000000` …
/// that share `memberships` user memberships evenly: group `i` holds every
/// `count`-th user from `i` on (no group nests; for load tests).
pub fn department_groups(count: u32, users: u64, memberships: u64) -> Vec<SimGroup> {
    let count = u64::from(count);
    (0..count)
        .map(|i| {
            let per = memberships / count.max(1);
            SimGroup {
                id: format!("00000000-0000-4000-8000-0000d{i:07x}"),
                display_name: format!("Department {i}"),
                users: vec![UserSet {
                    start: i,
                    end: (i + per * count).min(users.max(i)),
                    step: count,
                }],
                ..SimGroup::default()
            }
        })
        .collect()
}

/// The demo tenant's groups: a few departments (Engineering nests Platform, so users
/// reach it by two paths), executives, and a break-glass group; `--demo` configures
/// them with [`DEMO_COVERAGE_CONFIG`].
fn demo_groups(users: u64) -> Vec<SimGroup> {
    let id = |n: u32| format!("00000000-0000-4000-8000-0000de6f{n:04x}");
    let share = |from: f64, to: f64| UserSet {
        start: (users as f64 * from) as u64,
        end: (users as f64 * to) as u64,
        step: 1,
    };
    let group = |n, name: &str, users: Vec<UserSet>, nested: Vec<String>, others| SimGroup {
        id: id(n),
        display_name: name.to_owned(),
        users,
        nested,
        other_members: others,
        deleted: false,
    };
    vec![
        group(0, "Finance", vec![share(0.0, 0.12)], vec![], 2),
        group(1, "Engineering", vec![share(0.12, 0.45)], vec![id(2)], 25),
        group(2, "Platform", vec![share(0.40, 0.52)], vec![], 4),
        group(3, "Sales", vec![share(0.52, 0.80)], vec![], 0),
        group(
            4,
            "Executives",
            vec![UserSet {
                start: 7,
                end: users,
                step: 97,
            }],
            vec![],
            0,
        ),
        group(
            5,
            "Emergency access accounts",
            vec![share(0.998, 1.0)],
            vec![],
            0,
        ),
    ]
}

/// The coverage keys `--demo` adds to its tenant: the departments of the demo tenant's
/// groups, its break-glass group excluded, and a service-account naming pattern.
pub const DEMO_COVERAGE_CONFIG: &str = "groups = [\"Finance\", \"Engineering\", \"Platform\", \"Sales\", \"Executives\"]\n\
     exclude_groups = [\"Emergency access accounts\"]\nexclude_users = [\"user1?@*\"]\n";

/// Issue 14: the privileged-roles keys `--demo` adds to its tenant.
pub const DEMO_PRIVILEGED_CONFIG: &str =
    "privileged_roles = \"default\"\nlist_privileged_users = true\n";
