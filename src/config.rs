//! Configuration: figment layering (defaults ◂ TOML file ◂ `ENTRA_EXPORTER_*` env),
//! the single-tenant `AZURE_*` path, validation that names the tenant and key, and a
//! redacted view for `--check-config`.
//!
//! Settings a tenant can tune may also be set at the top level, where they are the
//! default for every tenant (design.md, "Config file").

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Serialize};

use crate::graph::assertion::{AssertionAlgorithm, ClientCertificate};
use crate::reports::ReportKind;
use crate::secret::Secret;

/// The environment prefix of config keys and flags.
pub const ENV_PREFIX: &str = "ENTRA_EXPORTER_";

/// Flag environment variables (minus the prefix, lowercased) that share the prefix
/// but are not config keys; clap reads them, figment must not reject them.
const FLAG_ENV_KEYS: &[&str] = &[
    "config_file",
    "web_listen_address",
    "web_telemetry_path",
    "web_config_file",
    "web_max_requests",
    "demo",
    "once",
    "output",
    "check_config",
    "log_level",
    "log_format",
    "storage_snapshot_file",
    "shard_index",
    "shard_count",
];

/// Default refresh interval.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(3600);
/// Default `$top`.
pub const DEFAULT_PAGE_SIZE: u32 = 999;
/// Largest `$top` the registration reports accept (graph-api.md §2.5, §12).
pub const MAX_PAGE_SIZE: u32 = 999;
/// Graph's reports budget: 5 requests per 10 s per app per tenant (graph-api.md §7.7).
pub const DEFAULT_MAX_REQUESTS_PER_10S: u32 = 5;

pub use crate::cloud::Cloud;

/// How a tenant's app authenticates (README "Authentication").
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Credential {
    /// A client secret given inline (discouraged: it sits in the config file).
    ClientSecret(Secret),
    /// A file holding the client secret, re-read at every token request so a rotated
    /// secret is picked up without a restart.
    ClientSecretFile(PathBuf),
    /// A PEM file with the certificate and its RSA key: a signed client assertion,
    /// re-read and re-signed at every token request (graph-api.md §8.3).
    Certificate {
        /// `certificate_file`.
        file: PathBuf,
        /// `assertion_algorithm`.
        algorithm: AssertionAlgorithm,
    },
    /// Workload identity federation: the projected service-account token is the client
    /// assertion, re-read at every token request because the kubelet rotates it (§9).
    WorkloadIdentity {
        /// `federated_token_file` (or `AZURE_FEDERATED_TOKEN_FILE`).
        token_file: PathBuf,
    },
    /// An Azure managed identity: tokens come from the local identity endpoint (§10).
    ManagedIdentity(ManagedIdentity),
}

/// Where a managed identity's tokens come from.
#[derive(Debug, Clone, Serialize)]
pub struct ManagedIdentity {
    /// Full URL of the identity endpoint.
    pub endpoint: String,
    /// Which protocol `endpoint` speaks.
    pub protocol: IdentityProtocol,
    /// A user-assigned identity's client ID; `None` for the system-assigned identity.
    pub client_id: Option<String>,
}

/// The two managed-identity token protocols (graph-api.md §10).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityProtocol {
    /// VM instance metadata service: `Metadata: true`, api-version 2018-02-01.
    Imds,
    /// App Service / Container Apps: `X-IDENTITY-HEADER`, api-version 2019-08-01.
    AppService {
        /// `IDENTITY_HEADER`: a per-container secret.
        header: Secret,
    },
}

/// The VM instance metadata service's token endpoint (graph-api.md §10.1).
pub const IMDS_ENDPOINT: &str = "http://169.254.169.254/metadata/identity/oauth2/token";

/// One report of one tenant.
#[derive(Debug, Clone, Serialize)]
pub struct ReportConfig {
    /// Which report.
    #[serde(serialize_with = "ser_report")]
    pub kind: ReportKind,
    /// How often it is refreshed.
    #[serde(serialize_with = "ser_duration")]
    pub refresh_interval: Duration,
}

/// A tenant, with every default applied and validated.
#[derive(Debug, Clone, Serialize)]
pub struct TenantConfig {
    /// The `tenant` label value.
    pub name: String,
    /// Tenant GUID or verified domain.
    pub tenant_id: String,
    /// The app registration's client ID.
    pub client_id: String,
    /// The app's credential.
    pub credential: Credential,
    /// National cloud.
    pub cloud: Cloud,
    /// Graph root, without trailing slash.
    pub graph_url: String,
    /// Token authority, without trailing slash.
    pub login_url: String,
    /// The `.default` scope requested.
    pub scope: String,
    /// Reports collected, each with its interval.
    pub reports: Vec<ReportConfig>,
    /// Client-side request budget per sliding 10 s.
    pub max_requests_per_10s: u32,
    /// `$top`.
    pub page_size: u32,
    /// `getCredentialUsageSummary` period.
    pub usage_period: String,
    /// `usersRegisteredBy*` user types.
    pub summary_user_types: Vec<String>,
    /// `usersRegisteredBy*` user roles.
    pub summary_user_roles: Vec<String>,
    /// Whether admins without MFA are listed by name.
    pub admins_without_mfa: bool,
    /// Cap on listed admins.
    pub max_listed_admins: u32,
}

/// The whole validated configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Every tenant, in file order.
    pub tenants: Vec<TenantConfig>,
}

/// Settings a tenant may set, or inherit from the top level.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    client_id: Option<String>,
    client_secret: Option<Secret>,
    client_secret_file: Option<PathBuf>,
    certificate_file: Option<PathBuf>,
    assertion_algorithm: Option<AssertionAlgorithm>,
    auth: Option<String>,
    federated_token_file: Option<PathBuf>,
    managed_identity_endpoint: Option<String>,
    refresh_interval: Option<String>,
    report_refresh_intervals: Option<BTreeMap<String, String>>,
    reports: Option<Vec<String>>,
    cloud: Option<Cloud>,
    graph_url: Option<String>,
    login_url: Option<String>,
    max_requests_per_10s: Option<u32>,
    page_size: Option<u32>,
    usage_period: Option<String>,
    summary_user_types: Option<Vec<String>>,
    summary_user_roles: Option<Vec<String>>,
    admins_without_mfa: Option<bool>,
    max_listed_admins: Option<u32>,
    #[serde(default)]
    tenants: Vec<RawTenant>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTenant {
    name: Option<String>,
    tenant_id: Option<String>,
    client_id: Option<String>,
    client_secret: Option<Secret>,
    client_secret_file: Option<PathBuf>,
    certificate_file: Option<PathBuf>,
    assertion_algorithm: Option<AssertionAlgorithm>,
    auth: Option<String>,
    federated_token_file: Option<PathBuf>,
    managed_identity_endpoint: Option<String>,
    refresh_interval: Option<String>,
    report_refresh_intervals: Option<BTreeMap<String, String>>,
    reports: Option<Vec<String>>,
    cloud: Option<Cloud>,
    graph_url: Option<String>,
    login_url: Option<String>,
    max_requests_per_10s: Option<u32>,
    page_size: Option<u32>,
    usage_period: Option<String>,
    summary_user_types: Option<Vec<String>>,
    summary_user_roles: Option<Vec<String>>,
    admins_without_mfa: Option<bool>,
    max_listed_admins: Option<u32>,
}

/// A configuration that cannot be used, with every problem found.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or environment could not be read or had the wrong shape (unknown key,
    /// wrong type); figment names the key and the source.
    #[error("invalid configuration: {0}")]
    Load(String),
    /// Values that parsed but are not acceptable; one line per problem.
    #[error("invalid configuration:\n{}", .0.join("\n"))]
    Invalid(Vec<String>),
}

/// Where configuration comes from.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// `--config.file`.
    pub file: Option<PathBuf>,
    /// Read `ENTRA_EXPORTER_*` and `AZURE_*` from the process environment.
    pub use_env: bool,
}

impl Config {
    /// Loads, layers and validates.
    pub fn load(sources: &Sources) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = &sources.file {
            if !path.is_file() {
                return Err(ConfigError::Load(format!(
                    "config file {} does not exist or is not a file",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        if sources.use_env {
            figment = figment.merge(Env::prefixed(ENV_PREFIX).ignore(FLAG_ENV_KEYS).split("__"));
        }
        let mut raw: RawFile = figment
            .extract()
            .map_err(|e| ConfigError::Load(describe_figment_error(e)))?;
        if raw.tenants.is_empty()
            && sources.use_env
            && let Some(tenant) = azure_env_tenant(&|k| std::env::var(k).ok())
        {
            raw.tenants.push(tenant);
        }
        if raw.tenants.is_empty() {
            return Err(ConfigError::Invalid(vec![
                "no tenants configured: add [[tenants]] to the config file, or set \
                 AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, or run with --demo"
                    .into(),
            ]));
        }
        if sources.use_env {
            resolve(raw, &|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        } else {
            resolve(raw, &|_| None)
        }
    }

    /// Parses TOML text alone (tests and tools); no environment is read.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Self::from_toml_with_env(text, &|_| None)
    }

    /// Parses TOML text with `env` standing in for the process environment (the
    /// `AZURE_*` and `IDENTITY_*` fallbacks of workload and managed identity).
    pub fn from_toml_with_env(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let raw: RawFile = Figment::new()
            .merge(Toml::string(text))
            .extract()
            .map_err(|e| ConfigError::Load(describe_figment_error(e)))?;
        resolve(raw, env)
    }

    /// The effective configuration as TOML, secrets redacted.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

/// The `default` tenant from the standard Azure variables (design.md, "Command line").
/// Empty variables count as unset. A secret wins over a certificate, and both over a
/// federated token file, as in the Azure SDKs' EnvironmentCredential and
/// DefaultAzureCredential. `AZURE_AUTHORITY_HOST` is not read here: `resolve` uses it
/// for workload identity only where no `login_url` is set (file or env).
fn azure_env_tenant(env: &dyn Fn(&str) -> Option<String>) -> Option<RawTenant> {
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
        tenant.auth = Some("workload_identity".into());
        tenant.federated_token_file = Some(file.into());
    }
    Some(tenant)
}

fn describe_figment_error(e: figment::Error) -> String {
    // figment prefixes keys with the profile name ("default."), which is noise here.
    e.into_iter()
        .map(|e| {
            e.to_string()
                .replace("\"default.", "\"")
                .replace("`default.", "`")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn resolve(raw: RawFile, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let mut problems = Vec::new();
    let mut tenants = Vec::new();
    let mut names = BTreeSet::new();

    let top = |key: &str, msg: String| format!("top level: {key}: {msg}");
    let top_interval = match &raw.refresh_interval {
        Some(s) => parse_interval(s).unwrap_or_else(|m| {
            problems.push(top("refresh_interval", m));
            DEFAULT_REFRESH_INTERVAL
        }),
        None => DEFAULT_REFRESH_INTERVAL,
    };
    // Parsed once: a mistake here is the top level's, not every tenant's.
    let top_overrides = parse_overrides(raw.report_refresh_intervals.as_ref(), &mut |key, msg| {
        problems.push(top(key, msg.to_owned()))
    });

    for (index, t) in raw.tenants.iter().enumerate() {
        let t = &inherit_credential(t, &raw);
        let label = match &t.name {
            Some(n) if !n.is_empty() => format!("tenant {n:?} (tenants[{index}])"),
            _ => format!("tenants[{index}]"),
        };
        let mut bad = |key: &str, msg: &str| problems.push(format!("{label}: {key}: {msg}"));

        let name = t.name.clone().unwrap_or_default();
        if name.trim().is_empty() {
            bad("name", "is required (it becomes the `tenant` label)");
        } else if name.chars().any(char::is_control) || name.len() > 128 {
            bad("name", "must be at most 128 printable characters");
        } else if !names.insert(name.clone()) {
            bad("name", "is used by another tenant; names must be unique");
        }

        let mode = match t.auth.as_deref() {
            Some(
                m @ ("client_secret" | "certificate" | "workload_identity" | "managed_identity"),
            ) => m,
            Some(other) => {
                bad(
                    "auth",
                    &format!(
                        "unknown value `{other}` (expected client_secret, certificate, workload_identity or managed_identity)"
                    ),
                );
                ""
            }
            None if t.certificate_file.is_some() => "certificate",
            None => "client_secret",
        };
        let wi = mode == "workload_identity";
        let mi = mode == "managed_identity";
        // Workload identity falls back to what the webhook injects (design.md).
        let from_env = |value: &Option<String>, var: &str| {
            value.clone().or_else(|| if wi { env(var) } else { None })
        };

        let tenant_id = from_env(&t.tenant_id, "AZURE_TENANT_ID").unwrap_or_default();
        if tenant_id.trim().is_empty() {
            // A managed identity's tokens come from its own tenant; the id is optional.
            if !mi {
                bad(
                    "tenant_id",
                    "is required (the tenant GUID or a verified domain)",
                );
            }
        } else if ["common", "consumers", "organizations"]
            .contains(&tenant_id.to_lowercase().as_str())
        {
            bad(
                "tenant_id",
                "must be a tenant GUID or domain: client credentials are not supported on `common`, `consumers` or `organizations` (AADSTS9001023)",
            );
        } else if !tenant_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
        {
            bad("tenant_id", "must be a GUID or a domain name");
        }

        let client_id = from_env(&t.client_id, "AZURE_CLIENT_ID").unwrap_or_default();
        if client_id.trim().is_empty() && !mi {
            bad(
                "client_id",
                "is required (the app registration's Application (client) ID)",
            );
        }

        // Keys of another mode are mistakes: say which mode they belong to.
        for (key, set, owner) in [
            ("client_secret", t.client_secret.is_some(), "client_secret"),
            (
                "client_secret_file",
                t.client_secret_file.is_some(),
                "client_secret",
            ),
            (
                "certificate_file",
                t.certificate_file.is_some(),
                "certificate",
            ),
            (
                "assertion_algorithm",
                t.assertion_algorithm.is_some(),
                "certificate",
            ),
            (
                "federated_token_file",
                t.federated_token_file.is_some(),
                "workload_identity",
            ),
            (
                "managed_identity_endpoint",
                t.managed_identity_endpoint.is_some(),
                "managed_identity",
            ),
        ] {
            if set && !mode.is_empty() && owner != mode {
                bad(
                    key,
                    &format!("is only used with `auth` = {owner} (this tenant uses {mode})"),
                );
            }
        }
        let credential = match mode {
            "client_secret" => match (&t.client_secret, &t.client_secret_file) {
                (Some(_), Some(_)) => {
                    bad(
                        "client_secret",
                        "set either client_secret or client_secret_file, not both",
                    );
                    None
                }
                (Some(s), None) if s.is_blank() => {
                    bad("client_secret", "is empty");
                    None
                }
                (Some(s), None) => Some(Credential::ClientSecret(s.clone())),
                (None, Some(path)) => match read_secret_file(path) {
                    Ok(_) => Some(Credential::ClientSecretFile(path.clone())),
                    Err(e) => {
                        bad("client_secret_file", &e);
                        None
                    }
                },
                (None, None) => {
                    bad(
                        "client_secret_file",
                        "a credential is required: set client_secret_file, certificate_file, \
                         or `auth` = workload_identity or managed_identity",
                    );
                    None
                }
            },
            "certificate" => match &t.certificate_file {
                None => {
                    bad("certificate_file", "is required with `auth` = certificate");
                    None
                }
                Some(file) => match ClientCertificate::load(file) {
                    Ok(_) => Some(Credential::Certificate {
                        file: file.clone(),
                        algorithm: t.assertion_algorithm.unwrap_or_default(),
                    }),
                    Err(e) => {
                        bad("certificate_file", &e);
                        None
                    }
                },
            },
            "workload_identity" => {
                let file = t
                    .federated_token_file
                    .clone()
                    .or_else(|| env("AZURE_FEDERATED_TOKEN_FILE").map(PathBuf::from));
                match file {
                    None => {
                        bad(
                            "federated_token_file",
                            "is required with `auth` = workload_identity (or set AZURE_FEDERATED_TOKEN_FILE)",
                        );
                        None
                    }
                    Some(file) => match read_secret_file(&file) {
                        Ok(_) => Some(Credential::WorkloadIdentity { token_file: file }),
                        Err(e) => {
                            bad("federated_token_file", &e);
                            None
                        }
                    },
                }
            }
            "managed_identity" => managed_identity(t, &client_id, env).map_or_else(
                |(key, e)| {
                    bad(key, &e);
                    None
                },
                |m| Some(Credential::ManagedIdentity(m)),
            ),
            _ => None,
        };

        let cloud = t.cloud.or(raw.cloud).unwrap_or_default();
        let graph_url = check_url(
            t.graph_url.as_deref().or(raw.graph_url.as_deref()),
            cloud.graph_url(),
        )
        .unwrap_or_else(|m| {
            bad("graph_url", &m);
            String::new()
        });
        // The SDKs accept a bare host as well as a URL (graph-api.md §9).
        let authority_host = if wi {
            env("AZURE_AUTHORITY_HOST").map(|h| {
                if h.contains("://") {
                    h
                } else {
                    format!("https://{h}")
                }
            })
        } else {
            None
        };
        let login_url = check_url(
            t.login_url
                .as_deref()
                .or(raw.login_url.as_deref())
                .or(authority_host.as_deref()),
            cloud.login_url(),
        )
        .unwrap_or_else(|m| {
            bad("login_url", &m);
            String::new()
        });

        let interval = match &t.refresh_interval {
            Some(s) => parse_interval(s).unwrap_or_else(|m| {
                bad("refresh_interval", &m);
                top_interval
            }),
            None => top_interval,
        };
        let mut overrides = top_overrides.clone();
        overrides.extend(parse_overrides(
            t.report_refresh_intervals.as_ref(),
            &mut bad,
        ));

        let report_names = t
            .reports
            .clone()
            .or_else(|| raw.reports.clone())
            .unwrap_or_else(|| vec![ReportKind::UserRegistrationDetails.name().into()]);
        let mut reports: Vec<ReportConfig> = Vec::new();
        if report_names.is_empty() {
            bad("reports", "is empty: enable at least one report");
        }
        for r in &report_names {
            match ReportKind::from_name(r) {
                None => bad(
                    "reports",
                    &format!(
                        "unknown report `{r}` (known: {})",
                        ReportKind::ALL.map(ReportKind::name).join(", ")
                    ),
                ),
                Some(kind) if !kind.offered_in(cloud) => bad(
                    "reports",
                    &format!(
                        "report `{r}` is not offered by Microsoft in the `{cloud}` cloud \
                         (Global only); remove it or use the global cloud"
                    ),
                ),
                Some(kind) if reports.iter().any(|c| c.kind == kind) => {
                    bad("reports", &format!("report `{r}` is listed twice"));
                }
                Some(kind) => reports.push(ReportConfig {
                    kind,
                    refresh_interval: overrides.get(&kind).copied().unwrap_or(interval),
                }),
            }
        }
        if reports
            .iter()
            .filter(|r| r.kind.is_registration_source())
            .count()
            > 1
        {
            bad(
                "reports",
                "enables both user_registration_details and credential_user_registration_details; \
                 they feed the same metrics, enable one (user_registration_details is current)",
            );
        }

        let max_requests_per_10s = t
            .max_requests_per_10s
            .or(raw.max_requests_per_10s)
            .unwrap_or(DEFAULT_MAX_REQUESTS_PER_10S);
        if max_requests_per_10s == 0 {
            bad("max_requests_per_10s", "must be at least 1");
        }
        let page_size = t.page_size.or(raw.page_size).unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
            bad(
                "page_size",
                &format!("must be between 1 and {MAX_PAGE_SIZE}"),
            );
        }
        let usage_period = t
            .usage_period
            .clone()
            .or_else(|| raw.usage_period.clone())
            .unwrap_or_else(|| "D30".into());
        if !["D1", "D7", "D30"].contains(&usage_period.as_str()) {
            bad("usage_period", "must be D1, D7 or D30");
        }
        let summary_user_types = t
            .summary_user_types
            .clone()
            .or_else(|| raw.summary_user_types.clone())
            .unwrap_or_else(|| vec!["all".into()]);
        check_enum_list(
            &summary_user_types,
            &["all", "member", "guest"],
            "summary_user_types",
            &mut bad,
        );
        let summary_user_roles = t
            .summary_user_roles
            .clone()
            .or_else(|| raw.summary_user_roles.clone())
            .unwrap_or_else(|| vec!["all".into()]);
        check_enum_list(
            &summary_user_roles,
            &["all", "privilegedAdmin", "admin", "user"],
            "summary_user_roles",
            &mut bad,
        );

        let admins_without_mfa = t
            .admins_without_mfa
            .or(raw.admins_without_mfa)
            .unwrap_or(false);
        if admins_without_mfa
            && !reports
                .iter()
                .any(|r| r.kind == ReportKind::UserRegistrationDetails)
        {
            bad(
                "admins_without_mfa",
                "needs the user_registration_details report (the list is read from its isAdmin and isMfaCapable); add it to `reports`",
            );
        }

        if let Some(credential) = credential {
            tenants.push(TenantConfig {
                name,
                tenant_id,
                client_id,
                credential,
                cloud,
                graph_url,
                login_url,
                scope: cloud.scope(),
                reports,
                max_requests_per_10s,
                page_size,
                usage_period,
                summary_user_types,
                summary_user_roles,
                admins_without_mfa,
                max_listed_admins: t.max_listed_admins.or(raw.max_listed_admins).unwrap_or(100),
            });
        }
    }
    if problems.is_empty() {
        Ok(Config { tenants })
    } else {
        Err(ConfigError::Invalid(problems))
    }
}

/// `t` with the top level's `client_id` and credential filled in where it sets none.
/// The credential is inherited as a whole: a tenant that sets any credential key
/// (e.g. its own `client_secret_file`) takes nothing of the top level's (e.g. its
/// `certificate_file`), so overriding never mixes two modes. A tenant with its own
/// managed identity does not take the top level's `client_id` either: there it would
/// select a user-assigned identity (an app's id gives "Identity not found").
fn inherit_credential(t: &RawTenant, top: &RawFile) -> RawTenant {
    let mut t = t.clone();
    let own_identity = t.auth.as_deref() == Some("managed_identity");
    if !own_identity {
        t.client_id = t.client_id.or_else(|| top.client_id.clone());
    }
    let own = t.auth.is_some()
        || t.client_secret.is_some()
        || t.client_secret_file.is_some()
        || t.certificate_file.is_some()
        || t.federated_token_file.is_some()
        || t.managed_identity_endpoint.is_some();
    if !own {
        t.auth = top.auth.clone();
        t.client_secret = top.client_secret.clone();
        t.client_secret_file = top.client_secret_file.clone();
        t.certificate_file = top.certificate_file.clone();
        t.federated_token_file = top.federated_token_file.clone();
        t.managed_identity_endpoint = top.managed_identity_endpoint.clone();
    }
    if t.certificate_file.is_some() {
        t.assertion_algorithm = t.assertion_algorithm.or(top.assertion_algorithm);
    }
    t
}

/// A `report_refresh_intervals` table: report name ▸ interval.
fn parse_overrides(
    table: Option<&BTreeMap<String, String>>,
    bad: &mut impl FnMut(&str, &str),
) -> BTreeMap<ReportKind, Duration> {
    let mut out = BTreeMap::new();
    for (report, value) in table.into_iter().flatten() {
        let key = format!("report_refresh_intervals.{report}");
        let Some(kind) = ReportKind::from_name(report) else {
            bad(&key, "is not a known report name");
            continue;
        };
        match parse_interval(value) {
            Ok(d) => {
                out.insert(kind, d);
            }
            Err(m) => bad(&key, &m),
        }
    }
    out
}

fn check_enum_list(
    values: &[String],
    allowed: &[&str],
    key: &str,
    bad: &mut impl FnMut(&str, &str),
) {
    if values.is_empty() {
        bad(key, "must not be empty");
    }
    for (i, v) in values.iter().enumerate() {
        // A repeat would query the same pair twice and count its records twice.
        if values[..i].contains(v) {
            bad(key, &format!("`{v}` is listed twice"));
        } else if !allowed.contains(&v.as_str()) {
            bad(
                key,
                &format!(
                    "unknown value `{v}` (expected one of {})",
                    allowed.join(", ")
                ),
            );
        }
    }
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration ({e}); use e.g. \"1h\" or \"30m\""))?;
    if d < Duration::from_secs(1) {
        return Err(format!("`{s}` is too short: at least 1s"));
    }
    Ok(d)
}

/// Reads a secret file: trimmed, non-empty. The error never contains the content.
pub fn read_secret_file(path: &Path) -> Result<Secret, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let secret = Secret::new(text.trim());
    if secret.is_blank() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(secret)
}

/// The identity endpoint of `auth = "managed_identity"`: App Service / Container Apps
/// when both `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` are set (design.md), else IMDS at
/// `managed_identity_endpoint` or its well-known address. On error: the key and why.
fn managed_identity(
    t: &RawTenant,
    client_id: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ManagedIdentity, (&'static str, String)> {
    let (endpoint, protocol, key) = match (env("IDENTITY_ENDPOINT"), env("IDENTITY_HEADER")) {
        (Some(endpoint), Some(header)) => (
            endpoint,
            IdentityProtocol::AppService {
                header: Secret::new(header),
            },
            "IDENTITY_ENDPOINT",
        ),
        _ => (
            t.managed_identity_endpoint
                .clone()
                .unwrap_or_else(|| IMDS_ENDPOINT.to_owned()),
            IdentityProtocol::Imds,
            "managed_identity_endpoint",
        ),
    };
    let url = reqwest::Url::parse(&endpoint)
        .map_err(|e| (key, format!("`{endpoint}` is not a URL ({e})")))?;
    // Both endpoints are host-local and speak plain http: allow it only where the
    // request cannot leave the machine (loopback, or IMDS's link-local address).
    let local =
        is_loopback(&url) || matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_link_local());
    if !(url.scheme() == "https" || url.scheme() == "http" && local) {
        return Err((
            key,
            format!("`{endpoint}` must be https, or http to a loopback or link-local address"),
        ));
    }
    Ok(ManagedIdentity {
        endpoint,
        protocol,
        client_id: Some(client_id.to_owned()).filter(|c| !c.trim().is_empty()),
    })
}

/// Checks a Graph or login root: https, or http to a loopback host only (tokens must
/// not cross a network in clear text). Returns it without a trailing slash.
fn check_url(value: Option<&str>, default: &str) -> Result<String, String> {
    let Some(value) = value else {
        return Ok(default.to_owned());
    };
    let url = reqwest::Url::parse(value).map_err(|e| format!("`{value}` is not a URL ({e})"))?;
    if url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(format!(
            "`{value}` must not carry credentials, a query or a fragment"
        ));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(format!(
                "`{value}` must use https (http is allowed only for loopback hosts)"
            ));
        }
        other => return Err(format!("`{value}` has unsupported scheme `{other}`")),
    }
    Ok(value.trim_end_matches('/').to_owned())
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

fn ser_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

fn ser_report<S: serde::Serializer>(r: &ReportKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(r.name())
}

#[cfg(test)]
mod tests;
