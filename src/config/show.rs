//! The effective configuration written as a config file, for `--check-config`: every
//! tenant whole, with every default and inherited setting filled in, in the keys the
//! file takes, so the output loads again to the same configuration.
//!
//! Secrets are the exception. An inline `client_secret` cannot be shown, so its line is
//! a comment naming what to put back (the loader refuses the `<redacted>` placeholder
//! should the comment be uncommented as is); a `client_secret_file`, certificate or
//! token file is a path and round-trips as one. A managed identity's App Service
//! endpoint comes from `IDENTITY_ENDPOINT` and `IDENTITY_HEADER`, which are not config
//! keys: it is a comment too, and the same environment gives the same identity again.
//! The scope is not a key (it follows `cloud`) and is not shown.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::{Config, Credential, DEFAULT_REFRESH_INTERVAL, IdentityProtocol, TenantConfig};
use crate::secret::REDACTED;

/// The whole file, ending with a comment line that says the config is valid.
pub(super) fn config(config: &Config) -> String {
    let mut out = String::from(
        "# The effective configuration: every default and top-level setting applied to each tenant.\n",
    );
    if let Some(n) = config.app_max_requests_per_10s {
        let _ = writeln!(out, "app_max_requests_per_10s = {n}");
    }
    for t in &config.tenants {
        out.push('\n');
        tenant(&mut out, t);
    }
    let reports: usize = config.tenants.iter().map(|t| t.reports.len()).sum();
    let _ = writeln!(
        out,
        "\n# config is valid: {}, {}",
        plural(config.tenants.len(), "tenant"),
        plural(reports, "report")
    );
    out
}

fn plural(n: usize, what: &str) -> String {
    match n {
        1 => format!("1 {what}"),
        n => format!("{n} {what}s"),
    }
}

/// One `[[tenants]]` table, its keys in the order of the README's config reference.
fn tenant(out: &mut String, t: &TenantConfig) {
    let mut w = Writer(out);
    w.line("[[tenants]]");
    w.key("name", &t.name);
    // Both are optional with a managed identity (system-assigned: no client_id).
    if !t.tenant_id.is_empty() {
        w.key("tenant_id", &t.tenant_id);
    }
    if !t.client_id.is_empty() {
        w.key("client_id", &t.client_id);
    }
    credential(&mut w, &t.credential);
    w.key("cloud", t.cloud);
    w.key("graph_url", &t.graph_url);
    w.key("login_url", &t.login_url);
    let names: Vec<&str> = t.reports.iter().map(|r| r.kind.name()).collect();
    w.key("reports", names);
    let every = usual_interval(t);
    w.key("refresh_interval", interval(every));
    let overrides: BTreeMap<&str, String> = t
        .reports
        .iter()
        .filter(|r| r.refresh_interval != every)
        .map(|r| (r.kind.name(), interval(r.refresh_interval)))
        .collect();
    if !overrides.is_empty() {
        w.key("report_refresh_intervals", overrides);
    }
    w.key("max_requests_per_10s", t.max_requests_per_10s);
    w.key("page_size", t.page_size);
    w.key("usage_period", &t.usage_period);
    w.key("summary_user_types", &t.summary_user_types);
    w.key("summary_user_roles", &t.summary_user_roles);
    w.key("admins_without_mfa", t.admins_without_mfa);
    w.key("max_listed_admins", t.max_listed_admins);
    if let Some(d) = &t.delegated {
        w.key("refresh_token_file", &d.refresh_token_file);
        w.key("public_client_id", &d.public_client_id);
    }
    if !t.groups.is_empty() || !t.exclude_groups.is_empty() {
        w.key("groups", &t.groups);
        w.key("exclude_groups", &t.exclude_groups);
        w.key(
            "directory_max_requests_per_10s",
            t.directory_max_requests_per_10s,
        );
    }
    if !t.exclude_users.is_empty() {
        w.key("exclude_users", &t.exclude_users);
    }
    if !t.privileged_roles.is_empty() {
        w.key("privileged_roles", &t.privileged_roles);
        w.key("list_privileged_users", t.list_privileged_users);
    }
}

/// `auth` and the keys of its mode.
fn credential(w: &mut Writer<'_>, credential: &Credential) {
    match credential {
        Credential::ClientSecret(_) => {
            w.key("auth", "client_secret");
            w.line(&format!(
                "# client_secret = \"{REDACTED}\"  # not shown: put the secret back, or better, \
                 move it to a file and set client_secret_file"
            ));
        }
        Credential::ClientSecretFile(path) => {
            w.key("auth", "client_secret");
            w.key("client_secret_file", path);
        }
        Credential::Certificate { file, algorithm } => {
            w.key("auth", "certificate");
            w.key("certificate_file", file);
            w.key("assertion_algorithm", algorithm);
        }
        Credential::WorkloadIdentity { token_file } => {
            w.key("auth", "workload_identity");
            w.key("federated_token_file", token_file);
        }
        Credential::ManagedIdentity(mi) => {
            w.key("auth", "managed_identity");
            match &mi.protocol {
                IdentityProtocol::Imds => w.key("managed_identity_endpoint", &mi.endpoint),
                IdentityProtocol::AppService { .. } => w.line(&format!(
                    "# token endpoint from the environment (App Service, Container Apps): \
                     IDENTITY_ENDPOINT = {}, IDENTITY_HEADER = \"{REDACTED}\"",
                    toml::Value::String(mi.endpoint.clone())
                )),
            }
        }
    }
}

/// The interval most of the tenant's reports use (the first report's among equals):
/// written as `refresh_interval`, the others as `report_refresh_intervals`.
fn usual_interval(t: &TenantConfig) -> Duration {
    let count = |d: Duration| t.reports.iter().filter(|r| r.refresh_interval == d).count();
    t.reports
        .iter()
        .map(|r| r.refresh_interval)
        // `max_by_key` keeps the last of equals: reversed, that is the first.
        .rev()
        .max_by_key(|d| count(*d))
        .unwrap_or(DEFAULT_REFRESH_INTERVAL)
}

/// A duration as the file takes it: `1h`, `2m 30s`.
fn interval(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Writes `key = value` lines, values in TOML syntax (quoted and escaped by `toml`).
struct Writer<'a>(&'a mut String);

impl Writer<'_> {
    fn key(&mut self, key: &str, value: impl serde::Serialize) {
        match toml::Value::try_from(value) {
            Ok(v) => {
                let _ = writeln!(self.0, "{key} = {v}");
            }
            // Every value here is a string, number, bool, list or table of those.
            Err(e) => {
                let _ = writeln!(self.0, "# {key}: cannot be shown ({e})");
            }
        }
    }

    fn line(&mut self, line: &str) {
        self.0.push_str(line);
        self.0.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Config, ConfigError};
    use crate::secret::REDACTED;

    const APP_PEM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/auth/app.pem");

    type Env = dyn Fn(&str) -> Option<String>;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    /// `text`'s `--check-config` output, checked to load again (with `env`, or none
    /// where the first load's environment is now written into the file) to the same
    /// configuration: the same `Debug` (every resolved field) and the same output.
    fn round_trips(text: &str, env: &Env, env_again: &Env) -> String {
        let config = Config::from_toml_with_env(text, env).unwrap_or_else(|e| panic!("{e}"));
        let shown = config.to_redacted_toml();
        let again = Config::from_toml_with_env(&shown, env_again)
            .unwrap_or_else(|e| panic!("{e}\nin the output:\n{shown}"));
        assert_eq!(format!("{config:#?}"), format!("{again:#?}"), "{shown}");
        assert_eq!(again.to_redacted_toml(), shown);
        assert!(
            shown
                .lines()
                .last()
                .unwrap()
                .starts_with("# config is valid: ")
        );
        shown
    }

    #[test]
    fn secret_file_certificate_cloud_and_intervals_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cr3t-from-file\n").unwrap();
        let text = format!(
            r#"
refresh_interval = "2h"
page_size = 500
summary_user_roles = ["admin", "user"]
[report_refresh_intervals]
credential_usage_summary = "6h"

[[tenants]]
name = "contoso"
tenant_id = "contoso.onmicrosoft.com"
client_id = "c1"
client_secret_file = {secret:?}
reports = ["user_registration_details", "credential_usage_summary", "users_registered_by_feature"]
report_refresh_intervals = {{ users_registered_by_feature = "1d 30m" }}
admins_without_mfa = true

[[tenants]]
name = "fabrikam \"gov\""
tenant_id = "fabrikam.onmicrosoft.us"
client_id = "c2"
certificate_file = {APP_PEM:?}
assertion_algorithm = "RS256"
cloud = "usgov_dod"
refresh_interval = "90m"
max_requests_per_10s = 3

[[tenants]]
name = "proxied"
tenant_id = "proxied.onmicrosoft.com"
client_id = "c3"
client_secret_file = {secret:?}
cloud = "china"
graph_url = "https://graph-proxy.example/"
usage_period = "D7"
"#
        );
        let shown = round_trips(&text, &no_env, &no_env);
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(
            shown.contains("report_refresh_intervals = { credential_usage_summary = \"6h\", users_registered_by_feature = \"1day 30m\" }")
                && shown.contains("refresh_interval = \"1h 30m\"")
                && shown.contains("graph_url = \"https://graph-proxy.example\"")
                && shown.contains("cloud = \"usgov_dod\"")
                && shown.contains("assertion_algorithm = \"RS256\""),
            "{shown}"
        );
        assert!(
            shown.ends_with("\n# config is valid: 3 tenants, 5 reports\n"),
            "{shown}"
        );
        // The scope follows the cloud; it is no key of the file.
        assert!(!shown.contains("scope"), "{shown}");
    }

    #[test]
    fn managed_identities_round_trip() {
        // System-assigned: neither tenant_id nor client_id is written.
        let text = "[[tenants]]\nname = \"vm\"\nauth = \"managed_identity\"\n";
        let shown = round_trips(text, &no_env, &no_env);
        assert!(
            !shown.contains("tenant_id") && !shown.contains("client_id"),
            "{shown}"
        );
        // User-assigned, at its own endpoint.
        let text = "[[tenants]]\nname = \"vm\"\nauth = \"managed_identity\"\nclient_id = \"uami\"\n\
                    managed_identity_endpoint = \"http://127.0.0.1:9/token\"\n";
        round_trips(text, &no_env, &no_env);
        // App Service: the endpoint and its secret header come from the environment,
        // which is not written; the same environment gives the same identity again.
        let env = |k: &str| match k {
            "IDENTITY_ENDPOINT" => Some("http://localhost:42356/msi/token".to_owned()),
            "IDENTITY_HEADER" => Some("hdr-secret".to_owned()),
            _ => None,
        };
        let text = "[[tenants]]\nname = \"app\"\nauth = \"managed_identity\"\n";
        let shown = round_trips(text, &env, &env);
        assert!(
            !shown.contains("hdr-secret")
                && !shown.contains("managed_identity_endpoint")
                && shown.contains("IDENTITY_ENDPOINT = \"http://localhost:42356/msi/token\""),
            "{shown}"
        );
    }

    #[test]
    fn an_inline_secret_is_a_comment_to_fill_in() {
        let text = "[[tenants]]\nname = \"contoso\"\ntenant_id = \"contoso.onmicrosoft.com\"\n\
                    client_id = \"c\"\nclient_secret = \"s3cr3t-value\"\nrefresh_interval = \"3h\"\n\
                    [[tenants]]\nname = \"second\"\ntenant_id = \"second.onmicrosoft.com\"\n\
                    client_id = \"c\"\nclient_secret = \"an0ther\"\n";
        let config = Config::from_toml(text).unwrap();
        let shown = config.to_redacted_toml();
        assert!(
            !shown.contains("s3cr3t-value") && !shown.contains("an0ther"),
            "{shown}"
        );
        let placeholder = format!("# client_secret = \"{REDACTED}\"");
        assert_eq!(shown.matches(&placeholder).count(), 2, "{shown}");
        // As printed it lacks the secret, and says so naming the tenant.
        let e = Config::from_toml(&shown).unwrap_err().to_string();
        assert!(
            e.contains(
                "tenant \"contoso\" (tenants[0]): client_secret_file: a credential is required"
            ),
            "{e}"
        );
        // Uncommented as is, the placeholder is refused rather than sent to Entra.
        let uncommented = shown.replace("# client_secret", "client_secret");
        let e = Config::from_toml(&uncommented).unwrap_err().to_string();
        assert!(
            e.contains(
                "tenant \"second\" (tenants[1]): client_secret: is \"<redacted>\", the placeholder"
            ),
            "{e}"
        );
        // With the secrets put back, it is the same configuration.
        let mut secrets = ["s3cr3t-value", "an0ther"].into_iter();
        let filled: String = shown
            .lines()
            .map(|l| match l.starts_with(&placeholder) {
                true => format!("client_secret = {:?}\n", secrets.next().unwrap()),
                false => format!("{l}\n"),
            })
            .collect();
        let again = Config::from_toml(&filled).unwrap_or_else(|e| panic!("{e}\n{filled}"));
        assert_eq!(again.to_redacted_toml(), shown);
        for (a, b) in config.tenants.iter().zip(&again.tenants) {
            let (super::Credential::ClientSecret(a), super::Credential::ClientSecret(b)) =
                (&a.credential, &b.credential)
            else {
                panic!("not a client secret")
            };
            assert_eq!(a.expose(), b.expose());
        }
        assert!(matches!(
            Config::from_toml(&uncommented),
            Err(ConfigError::Invalid(_))
        ));
    }

    #[test]
    fn the_usual_interval_is_the_most_common_then_the_first() {
        let text = "[[tenants]]\nname = \"c\"\ntenant_id = \"c.onmicrosoft.com\"\nclient_id = \"c\"\n\
                    client_secret = \"x\"\nreports = [\"user_registration_details\", \
                    \"credential_usage_summary\", \"users_registered_by_feature\"]\n\
                    report_refresh_intervals = { user_registration_details = \"30m\", \
                    credential_usage_summary = \"2h\" }\n";
        let shown = Config::from_toml(text).unwrap().to_redacted_toml();
        // Three intervals, one each: the first report's is the tenant's.
        assert!(
            shown.contains("refresh_interval = \"30m\"\nreport_refresh_intervals = { credential_usage_summary = \"2h\", users_registered_by_feature = \"1h\" }"),
            "{shown}"
        );
        let two_alike = text.replace("\"2h\"", "\"1h\"");
        let shown = Config::from_toml(&two_alike).unwrap().to_redacted_toml();
        assert!(
            shown.contains("refresh_interval = \"1h\"\nreport_refresh_intervals = { user_registration_details = \"30m\" }"),
            "{shown}"
        );
    }
}
