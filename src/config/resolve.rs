//! From the file's shape to the validated [`Config`]: the top level's settings as every
//! tenant's defaults, the built-in defaults, the workload-identity fallbacks, and the
//! `default` tenant of the standard `AZURE_*` variables.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use super::problems::Problems;
use super::raw::{AuthMode, RawFile, RawRoles, RawTenant};
use super::validate::{
    check_enum_list, check_limits, check_name, check_reports, check_tenant_id, check_url,
    parse_interval, parse_overrides,
};
use super::{
    Cloud, Config, ConfigError, DEFAULT_DIRECTORY_MAX_REQUESTS_PER_10S,
    DEFAULT_MAX_REQUESTS_PER_10S, DEFAULT_PAGE_SIZE, DEFAULT_REFRESH_INTERVAL, Lookup,
    ReportConfig, TenantConfig, credentials,
};
use crate::membership::MAX_GROUPS;
use crate::reports::ReportKind;
use crate::secret::Secret;

/// Cap on admins listed by name when `max_listed_admins` is not set.
const DEFAULT_MAX_LISTED_ADMINS: u32 = 100;

/// Resolves and validates every tenant; every problem found is reported at once.
pub(super) fn resolve(raw: RawFile, env: &Lookup<'_>) -> Result<Config, ConfigError> {
    let mut problems = Vec::new();
    let intervals = Intervals::parse(&raw, &mut Problems::top(&mut problems));
    let mut names = BTreeSet::new();
    let mut tenants = Vec::new();
    for (index, t) in raw.tenants.iter().enumerate() {
        let t = inherit(t, &raw);
        let mut p = Problems::tenant(t.name.as_deref(), index, &mut problems);
        tenants.extend(tenant(&t, &intervals, env, &mut names, &mut p));
    }
    if raw.app_max_requests_per_10s == Some(0) {
        Problems::top(&mut problems).add("app_max_requests_per_10s", "must be at least 1");
    }
    if problems.is_empty() {
        Ok(Config {
            tenants,
            app_max_requests_per_10s: raw.app_max_requests_per_10s,
        })
    } else {
        Err(ConfigError::Invalid(problems))
    }
}

/// The top level's intervals, parsed once: a mistake there is the top level's, not
/// every tenant's.
struct Intervals {
    /// `refresh_interval`, or the default.
    every: Duration,
    /// `report_refresh_intervals`.
    by_report: BTreeMap<ReportKind, Duration>,
}

impl Intervals {
    fn parse(raw: &RawFile, problems: &mut Problems) -> Self {
        let every = match &raw.refresh_interval {
            Some(s) => parse_interval(s).unwrap_or_else(|m| {
                problems.add("refresh_interval", m);
                DEFAULT_REFRESH_INTERVAL
            }),
            None => DEFAULT_REFRESH_INTERVAL,
        };
        let by_report = parse_overrides(raw.report_refresh_intervals.as_ref(), problems);
        Self { every, by_report }
    }
}

/// One tenant, or `None` when its credential is unusable (the problem is recorded).
fn tenant(
    t: &RawTenant,
    intervals: &Intervals,
    env: &Lookup<'_>,
    names: &mut BTreeSet<String>,
    problems: &mut Problems,
) -> Option<TenantConfig> {
    let name = t.name.clone().unwrap_or_default();
    check_name(&name, names, problems);
    let mode = credentials::mode(t);
    let (tenant_id, client_id) = identity(t, mode, env, problems);
    credentials::check_foreign_keys(t, mode, problems);
    let credential = credentials::credential(t, mode, &client_id, env, problems);
    let cloud = t.cloud.unwrap_or_default();
    let (graph_url, login_url) = endpoints(t, cloud, mode, env, problems);
    let reports = reports(t, cloud, intervals, problems);
    let membership = membership(t, &reports, problems);
    let privileged = privileged(t, &reports, problems);
    let max_requests_per_10s = t
        .max_requests_per_10s
        .unwrap_or(DEFAULT_MAX_REQUESTS_PER_10S);
    let page_size = t.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
    check_limits(max_requests_per_10s, page_size, problems);
    let summaries = summaries(t, &reports, problems);
    let delegated = t
        .refresh_token_file
        .clone()
        .map(|refresh_token_file| super::DelegatedLogin {
            refresh_token_file,
            public_client_id: t
                .public_client_id
                .clone()
                .unwrap_or_else(|| client_id.clone()),
        });
    Some(TenantConfig {
        name,
        tenant_id,
        client_id,
        credential: credential?,
        cloud,
        graph_url,
        login_url,
        scope: cloud.scope(),
        reports,
        max_requests_per_10s,
        page_size,
        usage_period: summaries.usage_period,
        summary_user_types: summaries.user_types,
        summary_user_roles: summaries.user_roles,
        admins_without_mfa: summaries.admins_without_mfa,
        max_listed_admins: t.max_listed_admins.unwrap_or(DEFAULT_MAX_LISTED_ADMINS),
        delegated,
        groups: membership.groups,
        exclude_groups: membership.exclude_groups,
        exclude_users: membership.exclude_users,
        directory_max_requests_per_10s: membership.directory_max_requests_per_10s,
        privileged_roles: privileged.0,
        list_privileged_users: privileged.1,
    })
}

/// `tenant_id` and `client_id`. Workload identity falls back to what the webhook
/// injects (design.md); a managed identity needs neither.
fn identity(
    t: &RawTenant,
    mode: AuthMode,
    env: &Lookup<'_>,
    problems: &mut Problems,
) -> (String, String) {
    let from_env = |value: &Option<String>, var: &str| {
        value.clone().or_else(|| match mode {
            AuthMode::WorkloadIdentity => env(var),
            _ => None,
        })
    };
    let needed = mode != AuthMode::ManagedIdentity;
    let tenant_id = from_env(&t.tenant_id, "AZURE_TENANT_ID").unwrap_or_default();
    check_tenant_id(&tenant_id, needed, problems);
    let client_id = from_env(&t.client_id, "AZURE_CLIENT_ID").unwrap_or_default();
    if client_id.trim().is_empty() && needed {
        problems.add(
            "client_id",
            "is required (the app registration's Application (client) ID)",
        );
    }
    (tenant_id, client_id)
}

/// `graph_url` and `login_url`, defaulting to the cloud's. Workload identity's
/// `AZURE_AUTHORITY_HOST` counts only where no `login_url` is set; the SDKs accept a
/// bare host as well as a URL (graph-api.md §9).
fn endpoints(
    t: &RawTenant,
    cloud: Cloud,
    mode: AuthMode,
    env: &Lookup<'_>,
    problems: &mut Problems,
) -> (String, String) {
    let mut url = |key: &str, value: Option<&str>, default: &str| {
        check_url(value, default).unwrap_or_else(|m| {
            problems.add(key, m);
            String::new()
        })
    };
    let graph_url = url("graph_url", t.graph_url.as_deref(), cloud.graph_url());
    let authority_host = match mode {
        AuthMode::WorkloadIdentity => {
            env("AZURE_AUTHORITY_HOST").map(|h| match h.contains("://") {
                true => h,
                false => format!("https://{h}"),
            })
        }
        _ => None,
    };
    let login = t.login_url.as_deref().or(authority_host.as_deref());
    let login_url = url("login_url", login, cloud.login_url());
    (graph_url, login_url)
}

/// The reports collected, each with its interval: the tenant's `report_refresh_intervals`
/// over the top level's, then the tenant's `refresh_interval`, then the top level's.
fn reports(
    t: &RawTenant,
    cloud: Cloud,
    intervals: &Intervals,
    problems: &mut Problems,
) -> Vec<ReportConfig> {
    let every = match &t.refresh_interval {
        Some(s) => parse_interval(s).unwrap_or_else(|m| {
            problems.add("refresh_interval", m);
            intervals.every
        }),
        None => intervals.every,
    };
    let mut by_report = intervals.by_report.clone();
    by_report.extend(parse_overrides(
        t.report_refresh_intervals.as_ref(),
        problems,
    ));
    let mut names = t
        .reports
        .clone()
        .unwrap_or_else(|| vec![ReportKind::named("user_registration_details").name().into()]);
    // Enabled implicitly by the groups it reads (design.md).
    let membership = ReportKind::named("group_membership").name();
    let groups = |g: &Option<Vec<String>>| g.as_ref().is_some_and(|g| !g.is_empty());
    if (groups(&t.groups) || groups(&t.exclude_groups)) && !names.iter().any(|n| n == membership) {
        names.push(membership.into());
    }
    // Issue 14: enabled by `privileged_roles` (any value but an empty list).
    let roles = ReportKind::named("privileged_roles").name();
    let roles_on = match &t.privileged_roles {
        None => false,
        Some(RawRoles::List(l)) => !l.is_empty(),
        Some(RawRoles::Word(_)) => true,
    };
    if roles_on && !names.iter().any(|n| n == roles) {
        names.push(roles.into());
    }
    check_reports(&names, cloud, every, &by_report, problems)
}

/// What the summary and admin reports are asked for.
struct Summaries {
    usage_period: String,
    user_types: Vec<String>,
    user_roles: Vec<String>,
    admins_without_mfa: bool,
}

fn summaries(t: &RawTenant, reports: &[ReportConfig], problems: &mut Problems) -> Summaries {
    let usage_period = t.usage_period.clone().unwrap_or_else(|| "D30".into());
    if !["D1", "D7", "D30"].contains(&usage_period.as_str()) {
        problems.add("usage_period", "must be D1, D7 or D30");
    }
    let all = || vec!["all".to_owned()];
    let user_types = t.summary_user_types.clone().unwrap_or_else(all);
    let types = ["all", "member", "guest"];
    check_enum_list(&user_types, &types, "summary_user_types", problems);
    let user_roles = t.summary_user_roles.clone().unwrap_or_else(all);
    let roles = ["all", "privilegedAdmin", "admin", "user"];
    check_enum_list(&user_roles, &roles, "summary_user_roles", problems);
    let admins_without_mfa = t.admins_without_mfa.unwrap_or(false);
    if admins_without_mfa
        && !reports
            .iter()
            .any(|r| r.kind == ReportKind::named("user_registration_details"))
    {
        problems.add(
            "admins_without_mfa",
            "needs the user_registration_details report (the list is read from its isAdmin and isMfaCapable); add it to `reports`",
        );
    }
    Summaries {
        usage_period,
        user_types,
        user_roles,
        admins_without_mfa,
    }
}

/// The membership settings of a tenant.
struct MembershipSettings {
    groups: Vec<String>,
    exclude_groups: Vec<String>,
    exclude_users: Vec<String>,
    directory_max_requests_per_10s: u32,
}

/// `groups`, `exclude_groups`, `exclude_users` and the directory pacing, checked
/// ([`reports`] enabled `group_membership` for them).
fn membership(
    t: &RawTenant,
    reports: &[ReportConfig],
    problems: &mut Problems,
) -> MembershipSettings {
    let groups = t.groups.clone().unwrap_or_default();
    let exclude_groups = t.exclude_groups.clone().unwrap_or_default();
    let exclude_users = t.exclude_users.clone().unwrap_or_default();
    check_membership_list(&groups, "groups", problems);
    check_membership_list(&exclude_groups, "exclude_groups", problems);
    check_membership_list(&exclude_users, "exclude_users", problems);
    if groups.len() > MAX_GROUPS {
        problems.add(
            "groups",
            format!("lists {} groups: at most {MAX_GROUPS}", groups.len()),
        );
    }
    let directory_max_requests_per_10s = t
        .directory_max_requests_per_10s
        .unwrap_or(DEFAULT_DIRECTORY_MAX_REQUESTS_PER_10S);
    if directory_max_requests_per_10s == 0 {
        problems.add("directory_max_requests_per_10s", "must be at least 1");
    }
    let kind = ReportKind::named("group_membership");
    let wanted = !groups.is_empty() || !exclude_groups.is_empty();
    let listed = reports.iter().any(|r| r.kind == kind);
    if listed && !wanted {
        problems.add(
            "reports",
            "lists group_membership but neither groups nor exclude_groups is set;              set one of them (the report is enabled by them)",
        );
    }
    let legacy = ReportKind::named("credential_user_registration_details");
    if (wanted || !exclude_users.is_empty()) && reports.iter().any(|r| r.kind == legacy) {
        problems.add(
            "reports",
            "groups and exclusions join the registration report by user id and UPN, which \
             credential_user_registration_details (retired) does not carry for them; use \
             user_registration_details",
        );
    }
    if !groups.is_empty() && !reports.iter().any(|r| r.kind.is_registration_source()) {
        problems.add(
            "groups",
            "needs a registration report (user_registration_details) to count coverage              per group; add it to `reports`",
        );
    }
    MembershipSettings {
        groups,
        exclude_groups,
        exclude_users,
        directory_max_requests_per_10s,
    }
}

/// Issue 14: `privileged_roles` (`"default"` as the template ids of graph-api.md
/// §13.4.1) and `list_privileged_users`, checked.
fn privileged(
    t: &RawTenant,
    reports: &[ReportConfig],
    problems: &mut Problems,
) -> (Vec<String>, bool) {
    use crate::reports::privileged_roles::DEFAULT_ROLES;
    let roles = match &t.privileged_roles {
        None => Vec::new(),
        Some(RawRoles::Word(w)) if w == "default" => DEFAULT_ROLES
            .iter()
            .map(|(_, id)| (*id).to_owned())
            .collect(),
        Some(RawRoles::Word(w)) => {
            problems.add(
                "privileged_roles",
                format!(
                    "is `{w}`: must be \"default\" or a list of role display names or template ids \
                     ([] turns the report off)"
                ),
            );
            Vec::new()
        }
        Some(RawRoles::List(l)) => l.clone(),
    };
    check_membership_list(&roles, "privileged_roles", problems);
    let max = crate::privileged::MAX_ROLES;
    if roles.len() > max {
        problems.add(
            "privileged_roles",
            format!("lists {} roles: at most {max}", roles.len()),
        );
    }
    let kind = ReportKind::named("privileged_roles");
    if roles.is_empty() && reports.iter().any(|r| r.kind == kind) {
        problems.add(
            "reports",
            "lists privileged_roles but privileged_roles is not set (or []); set it, e.g. \
             privileged_roles = \"default\" (the report is enabled by it)",
        );
    }
    let v1 = ReportKind::named("user_registration_details");
    if !roles.is_empty() && !reports.iter().any(|r| r.kind == v1) {
        problems.add(
            "privileged_roles",
            "needs the user_registration_details report (role holders are joined to it by \
             user id for their methods); add it to `reports`",
        );
    }
    let list = t.list_privileged_users.unwrap_or(false);
    if list && roles.is_empty() {
        problems.add(
            "list_privileged_users",
            "needs privileged_roles (the users listed are its role holders)",
        );
    }
    (roles, list)
}

/// Entries of a membership list: not empty, each once.
fn check_membership_list(values: &[String], key: &str, problems: &mut Problems) {
    for (i, v) in values.iter().enumerate() {
        if v.trim().is_empty() {
            problems.add(key, "has an empty entry");
        } else if values[..i].contains(v) {
            problems.add(key, format!("`{v}` is listed twice"));
        }
    }
}

/// `t` with the top level's settings filled in where it sets none. The intervals are
/// left as the tenant wrote them ([`Intervals`] holds the top level's).
///
/// The credential is inherited as a whole: a tenant that sets any credential key
/// (e.g. its own `client_secret_file`) takes nothing of the top level's (e.g. its
/// `certificate_file`), so overriding never mixes two modes. A tenant with its own
/// managed identity does not take the top level's `client_id` either: there it would
/// select a user-assigned identity (an app's id gives "Identity not found").
fn inherit(t: &RawTenant, top: &RawFile) -> RawTenant {
    let mut t = t.clone();
    if t.auth != Some(AuthMode::ManagedIdentity) {
        t.client_id = t.client_id.or_else(|| top.client_id.clone());
    }
    let own = t.auth.is_some()
        || t.client_secret.is_some()
        || t.client_secret_file.is_some()
        || t.certificate_file.is_some()
        || t.federated_token_file.is_some()
        || t.managed_identity_endpoint.is_some();
    if !own {
        t.auth = top.auth;
        t.client_secret = top.client_secret.clone();
        t.client_secret_file = top.client_secret_file.clone();
        t.certificate_file = top.certificate_file.clone();
        t.federated_token_file = top.federated_token_file.clone();
        t.managed_identity_endpoint = top.managed_identity_endpoint.clone();
    }
    if t.certificate_file.is_some() {
        t.assertion_algorithm = t.assertion_algorithm.or(top.assertion_algorithm);
    }
    inherit_settings(&mut t, top);
    t
}

/// The settings other than credential and intervals: the tenant's, else the top level's.
fn inherit_settings(t: &mut RawTenant, top: &RawFile) {
    fn or<T: Clone>(own: &mut Option<T>, top: &Option<T>) {
        if own.is_none() {
            own.clone_from(top);
        }
    }
    or(&mut t.reports, &top.reports);
    or(&mut t.cloud, &top.cloud);
    or(&mut t.graph_url, &top.graph_url);
    or(&mut t.login_url, &top.login_url);
    or(&mut t.max_requests_per_10s, &top.max_requests_per_10s);
    or(&mut t.page_size, &top.page_size);
    or(&mut t.usage_period, &top.usage_period);
    or(&mut t.summary_user_types, &top.summary_user_types);
    or(&mut t.summary_user_roles, &top.summary_user_roles);
    or(&mut t.admins_without_mfa, &top.admins_without_mfa);
    or(&mut t.max_listed_admins, &top.max_listed_admins);
    or(&mut t.groups, &top.groups);
    or(&mut t.exclude_groups, &top.exclude_groups);
    or(&mut t.exclude_users, &top.exclude_users);
    or(
        &mut t.directory_max_requests_per_10s,
        &top.directory_max_requests_per_10s,
    );
    or(&mut t.privileged_roles, &top.privileged_roles);
    or(&mut t.list_privileged_users, &top.list_privileged_users);
}

/// The `default` tenant from the standard Azure variables (design.md, "Command line").
/// Empty variables count as unset. A secret wins over a certificate, and both over a
/// federated token file, as in the Azure SDKs' EnvironmentCredential and
/// DefaultAzureCredential. `AZURE_AUTHORITY_HOST` is not read here: [`endpoints`] uses
/// it for workload identity only where no `login_url` is set (file or env).
pub(super) fn azure_env_tenant(env: &Lookup<'_>) -> Option<RawTenant> {
    let var = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    let tenant_id = var("AZURE_TENANT_ID")?;
    let client_secret = var("AZURE_CLIENT_SECRET").map(Secret::new);
    let certificate_file = var("AZURE_CLIENT_CERTIFICATE_PATH")
        .filter(|_| client_secret.is_none())
        .map(PathBuf::from);
    let mut tenant = RawTenant {
        name: Some("default".into()),
        tenant_id: Some(tenant_id),
        client_id: var("AZURE_CLIENT_ID"),
        client_secret,
        certificate_file,
        ..RawTenant::default()
    };
    if tenant.client_secret.is_none()
        && tenant.certificate_file.is_none()
        && let Some(file) = var("AZURE_FEDERATED_TOKEN_FILE")
    {
        tenant.auth = Some(AuthMode::WorkloadIdentity);
        tenant.federated_token_file = Some(file.into());
    }
    Some(tenant)
}
