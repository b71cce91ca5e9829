//! Configuration: figment layering (defaults ◂ TOML file ◂ `ENTRA_EXPORTER_*` env),
//! the single-tenant `AZURE_*` path, validation that names the tenant and key, and a
//! redacted view for `--check-config`.
//!
//! Settings a tenant can tune may also be set at the top level, where they are the
//! default for every tenant (design.md, "Config file"). The parts: `raw` the file's
//! shape, `resolve` defaults and inheritance, `credentials` the auth modes, `validate`
//! the checks, `problems` how a problem names its tenant and key, `show` the effective
//! config written as a file.

mod credentials;
mod problems;
mod raw;
mod resolve;
mod show;
mod validate;

use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};

pub use self::credentials::read_secret_file;
use self::raw::RawFile;
use crate::certificate::AssertionAlgorithm;
use crate::reports::ReportKind;
use crate::secret::Secret;

/// The environment prefix of config keys and flags.
pub const ENV_PREFIX: &str = "ENTRA_EXPORTER_";

/// Default refresh interval.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(3600);
/// Default `$top`.
pub const DEFAULT_PAGE_SIZE: u32 = 999;
/// Largest `$top` the registration reports accept (graph-api.md §2.5, §12).
pub const MAX_PAGE_SIZE: u32 = 999;
/// Graph's reports budget: 5 requests per 10 s per app per tenant (graph-api.md §7.7).
pub const DEFAULT_MAX_REQUESTS_PER_10S: u32 = 5;
/// Graph's per-app reports budget across all tenants: 122 requests per 10 s
/// (graph-api.md §13.1).
pub const DEFAULT_APP_MAX_REQUESTS_PER_10S: u32 = 122;
/// Default pacing of directory calls: well under Graph's resource-unit quota for the
/// smallest tenant (3,500 RU per 10 s at ≤ 4 RU a request, graph-api.md §13.1.2).
pub const DEFAULT_DIRECTORY_MAX_REQUESTS_PER_10S: u32 = 20;

pub use crate::cloud::Cloud;

/// How a tenant's app authenticates (README "Authentication").
#[derive(Debug, Clone)]
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
#[derive(Debug, Clone)]
pub struct ManagedIdentity {
    /// Full URL of the identity endpoint.
    pub endpoint: String,
    /// Which protocol `endpoint` speaks.
    pub protocol: IdentityProtocol,
    /// A user-assigned identity's client ID; `None` for the system-assigned identity.
    pub client_id: Option<String>,
}

/// The two managed-identity token protocols (graph-api.md §10).
#[derive(Debug, Clone)]
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
#[derive(Debug, Clone)]
pub struct ReportConfig {
    /// Which report.
    pub kind: ReportKind,
    /// How often it is refreshed.
    pub refresh_interval: Duration,
}

/// A tenant, with every default applied and validated.
#[derive(Debug, Clone)]
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
    /// `groups`: coverage per group (display names or object ids, as written).
    pub groups: Vec<String>,
    /// `exclude_groups`: their members never count toward coverage.
    pub exclude_groups: Vec<String>,
    /// `exclude_users`: UPN patterns (`*`, `?`) that never count toward coverage.
    pub exclude_users: Vec<String>,
    /// Client-side budget of directory requests (groups, members) per sliding 10 s.
    pub directory_max_requests_per_10s: u32,
    /// The delegated sign-in for the delegated-only reports (`refresh_token_file`).
    pub delegated: Option<DelegatedLogin>,
    /// Issue 14: `privileged_roles`, `"default"` expanded to its template ids; empty:
    /// the report is off.
    pub privileged_roles: Vec<String>,
    /// Issue 14: `list_privileged_users`.
    pub list_privileged_users: bool,
}

/// A tenant's delegated sign-in (design.md, "Delegated sign-in"): `login` writes the
/// refresh token, the exporter redeems it and writes each rotated one back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegatedLogin {
    /// `refresh_token_file`: mode 0600, replaced atomically.
    pub refresh_token_file: PathBuf,
    /// `public_client_id` (default `client_id`): the app must allow public client flows.
    pub public_client_id: String,
}

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Every tenant, in file order.
    pub tenants: Vec<TenantConfig>,
    /// `app_max_requests_per_10s` as set (see [`Config::app_budget`]).
    pub app_max_requests_per_10s: Option<u32>,
}

/// A configuration that cannot be used, with every problem found.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--config.file` cannot be read: missing, not allowed, not a file.
    #[error("{0}")]
    File(String),
    /// The file or environment had the wrong shape (TOML syntax, unknown key, wrong
    /// type); figment names the key and the source.
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
    /// The flags' environment variables (`ENTRA_EXPORTER_LOG_LEVEL`, …): they share the
    /// prefix but are the command line's, so they are not read as config keys. main.rs
    /// takes them from the clap definitions; any other `ENTRA_EXPORTER_*` variable must
    /// be a config key.
    pub flag_env_vars: Vec<String>,
}

/// A stand-in for the process environment: variable ▸ value.
type Lookup<'a> = dyn Fn(&str) -> Option<String> + 'a;

impl Config {
    /// Loads, layers and validates.
    pub fn load(sources: &Sources) -> Result<Self, ConfigError> {
        let figment = sources.figment()?;
        let mut raw = extract(&figment)?;
        if raw.tenants.is_empty()
            && sources.use_env
            && let Some(tenant) = resolve::azure_env_tenant(&|k| std::env::var(k).ok())
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
            resolve::resolve(raw, &|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        } else {
            resolve::resolve(raw, &|_| None)
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
        resolve::resolve(extract(&Figment::new().merge(Toml::string(text)))?, env)
    }

    /// What is valid but probably not meant, one line each naming the tenant and key
    /// (like the problems of [`ConfigError::Invalid`]): reports refreshed more often than
    /// every 5 minutes against Graph. main logs them as warnings.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        for (index, t) in self.tenants.iter().enumerate() {
            let mut w = problems::Problems::tenant(Some(&t.name), index, &mut warnings);
            validate::short_intervals(t, &mut w);
        }
        warnings
    }

    /// The per-app budget of this replica, per sliding 10 s: `app_max_requests_per_10s`
    /// when set, else Graph's 122 split evenly over `shard_count` replicas (rounded
    /// down, at least 1), so replicas sharing an app stay under Graph's limit together.
    pub fn app_budget(&self, shard_count: u32) -> u32 {
        self.app_max_requests_per_10s
            .unwrap_or_else(|| (DEFAULT_APP_MAX_REQUESTS_PER_10S / shard_count.max(1)).max(1))
    }

    /// The effective configuration as a config file, secrets redacted (`--check-config`):
    /// it loads again to the same configuration, but for an inline `client_secret`, which
    /// is a comment to fill in. The last line is a comment saying the config is valid.
    pub fn to_redacted_toml(&self) -> String {
        show::config(self)
    }
}

impl Sources {
    /// The file, then the environment over it.
    fn figment(&self) -> Result<Figment, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = &self.file {
            check_readable(path).map_err(ConfigError::File)?;
            figment = figment.merge(Toml::file_exact(path));
        }
        if self.use_env {
            // figment sees a variable's name without the prefix, lowercased.
            let flags: Vec<String> = self
                .flag_env_vars
                .iter()
                .filter_map(|v| v.strip_prefix(ENV_PREFIX))
                .map(str::to_lowercase)
                .collect();
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            figment = figment.merge(Env::prefixed(ENV_PREFIX).ignore(&flags).split("__"));
        }
        Ok(figment)
    }
}

/// Opens the config file so that a path that cannot be read says why: missing, not
/// allowed, or not a file. figment reads it afterwards (and names it in its errors).
fn check_readable(path: &Path) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| unreadable(path, &e))?;
    match file.metadata() {
        Ok(m) if m.is_file() => Ok(()),
        Ok(m) if m.is_dir() => Err(format!(
            "config file {} is a directory, not a file",
            path.display()
        )),
        Ok(_) => Err(format!(
            "config file {} is not a regular file",
            path.display()
        )),
        Err(e) => Err(unreadable(path, &e)),
    }
}

/// Why the config file at `path` cannot be opened.
fn unreadable(path: &Path, e: &std::io::Error) -> String {
    let path = path.display();
    match e.kind() {
        std::io::ErrorKind::NotFound => format!("config file {path} does not exist"),
        std::io::ErrorKind::PermissionDenied => format!(
            "config file {path}: permission denied (the exporter's user cannot read it, \
             or cannot enter a directory on its path)"
        ),
        _ => format!("cannot read config file {path}: {e}"),
    }
}

/// The file's shape, or the first key that does not fit it.
fn extract(figment: &Figment) -> Result<RawFile, ConfigError> {
    figment
        .extract()
        .map_err(|e| ConfigError::Load(problems::describe_load_error(e, figment)))
}

impl TenantConfig {
    /// The settings that shape what the reports fetch and store.
    pub fn report_settings(&self) -> crate::reports::Settings {
        crate::reports::Settings {
            page_size: self.page_size,
            usage_period: self.usage_period.clone(),
            summary_user_types: self.summary_user_types.clone(),
            summary_user_roles: self.summary_user_roles.clone(),
            admins_without_mfa: self.admins_without_mfa,
            max_listed_admins: self.max_listed_admins,
            // Set per refresh by collect (issue 15's daily reports).
            today: 0,
            groups: self.groups.clone(),
            exclude_groups: self.exclude_groups.clone(),
            exclude_users: self.exclude_users.clone(),
            membership: None,
            privileged_roles: self.privileged_roles.clone(),
            list_privileged_users: self.list_privileged_users,
            privileged: None,
        }
    }
}

#[cfg(test)]
mod tests;
