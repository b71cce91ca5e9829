//! The config file's shape as serde reads it: every setting optional, unknown keys
//! refused. The top level and each `[[tenants]]` entry share one list of settings (a
//! top-level setting is every tenant's default); [`resolve`](super::resolve) applies
//! the defaults and the checks.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use crate::certificate::AssertionAlgorithm;
use crate::cloud::Cloud;
use crate::secret::Secret;

/// How a tenant's app authenticates (`auth`). Unset, it is `certificate` where a
/// `certificate_file` is given and `client_secret` otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum AuthMode {
    /// `client_secret` or `client_secret_file`.
    ClientSecret,
    /// `certificate_file`: a signed client assertion.
    Certificate,
    /// A projected service-account token as the client assertion.
    WorkloadIdentity,
    /// Tokens from the local identity endpoint.
    ManagedIdentity,
}

impl fmt::Display for AuthMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ClientSecret => "client_secret",
            Self::Certificate => "certificate",
            Self::WorkloadIdentity => "workload_identity",
            Self::ManagedIdentity => "managed_identity",
        })
    }
}

/// Declares a struct with `$own` fields followed by the settings the top level and a
/// tenant share, so the two shapes cannot drift apart.
macro_rules! with_settings {
    ($(#[$attr:meta])* struct $name:ident { $($(#[$own_attr:meta])* $own:ident: $own_ty:ty,)* }) => {
        $(#[$attr])*
        #[derive(Debug, Clone, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(super) struct $name {
            $($(#[$own_attr])* pub(super) $own: $own_ty,)*
            /// The app registration's client ID.
            pub(super) client_id: Option<String>,
            /// An inline client secret.
            pub(super) client_secret: Option<Secret>,
            /// A file holding the client secret.
            pub(super) client_secret_file: Option<PathBuf>,
            /// A PEM file with the certificate and its RSA key.
            pub(super) certificate_file: Option<PathBuf>,
            /// How certificate assertions are signed.
            pub(super) assertion_algorithm: Option<AssertionAlgorithm>,
            /// The auth mode.
            pub(super) auth: Option<AuthMode>,
            /// Workload identity's projected token.
            pub(super) federated_token_file: Option<PathBuf>,
            /// A managed identity's IMDS endpoint.
            pub(super) managed_identity_endpoint: Option<String>,
            /// Every report's interval.
            pub(super) refresh_interval: Option<String>,
            /// Report name ▸ interval.
            pub(super) report_refresh_intervals: Option<BTreeMap<String, String>>,
            /// Report names.
            pub(super) reports: Option<Vec<String>>,
            /// National cloud.
            pub(super) cloud: Option<Cloud>,
            /// Graph root.
            pub(super) graph_url: Option<String>,
            /// Token authority.
            pub(super) login_url: Option<String>,
            /// Client-side request budget per sliding 10 s.
            pub(super) max_requests_per_10s: Option<u32>,
            /// `$top`.
            pub(super) page_size: Option<u32>,
            /// `getCredentialUsageSummary` period.
            pub(super) usage_period: Option<String>,
            /// `usersRegisteredBy*` user types.
            pub(super) summary_user_types: Option<Vec<String>>,
            /// `usersRegisteredBy*` user roles.
            pub(super) summary_user_roles: Option<Vec<String>>,
            /// Whether admins without MFA are listed by name.
            pub(super) admins_without_mfa: Option<bool>,
            /// Cap on listed admins.
            pub(super) max_listed_admins: Option<u32>,
            /// Groups to report coverage for (display names or object ids).
            pub(super) groups: Option<Vec<String>>,
            /// Groups whose members never count toward coverage.
            pub(super) exclude_groups: Option<Vec<String>>,
            /// UPN patterns that never count toward coverage.
            pub(super) exclude_users: Option<Vec<String>>,
            /// Client-side budget of directory requests per sliding 10 s.
            pub(super) directory_max_requests_per_10s: Option<u32>,
            /// Issue 14: `"default"` or a list of role display names / template ids.
            pub(super) privileged_roles: Option<RawRoles>,
            /// Issue 14: list privileged users by name.
            pub(super) list_privileged_users: Option<bool>,
        }
    };
}

/// Issue 14: `privileged_roles` as written: a word (`"default"`) or a list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub(super) enum RawRoles {
    /// A single string; only `"default"` is valid.
    Word(String),
    /// Role display names or template ids.
    List(Vec<String>),
}

with_settings! {
    /// The whole file: the settings every tenant inherits, and the tenants.
    struct RawFile {
        #[serde(default)]
        tenants: Vec<RawTenant>,
        /// The per-app budget per sliding 10 s, shared by the tenants of one app (top
        /// level only).
        app_max_requests_per_10s: Option<u32>,
    }
}

with_settings! {
    /// One `[[tenants]]` entry.
    struct RawTenant {
        name: Option<String>,
        tenant_id: Option<String>,
        /// Issue 15: where `login` keeps the delegated sign-in's refresh token.
        refresh_token_file: Option<PathBuf>,
        /// The app (client) id of the device-code sign-in; `client_id` by default.
        public_client_id: Option<String>,
    }
}
