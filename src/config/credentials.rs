//! A tenant's credential from its settings: which auth mode, the keys that mode needs
//! (and those of other modes, refused), and the files read once at start so a missing
//! or unreadable one fails now rather than at the first token request.

use std::path::{Path, PathBuf};

use super::problems::Problems;
use super::raw::{AuthMode, RawTenant};
use super::validate::is_loopback;
use super::{Credential, IMDS_ENDPOINT, IdentityProtocol, Lookup, ManagedIdentity};
use crate::certificate::ClientCertificate;
use crate::secret::{REDACTED, Secret};

/// `auth`, else `certificate` where a `certificate_file` is given, else `client_secret`.
pub(super) fn mode(t: &RawTenant) -> AuthMode {
    match t.auth {
        Some(mode) => mode,
        None if t.certificate_file.is_some() => AuthMode::Certificate,
        None => AuthMode::ClientSecret,
    }
}

/// Keys of another mode are mistakes: says which mode they belong to.
pub(super) fn check_foreign_keys(t: &RawTenant, mode: AuthMode, problems: &mut Problems) {
    let keys = [
        (
            "client_secret",
            t.client_secret.is_some(),
            AuthMode::ClientSecret,
        ),
        (
            "client_secret_file",
            t.client_secret_file.is_some(),
            AuthMode::ClientSecret,
        ),
        (
            "certificate_file",
            t.certificate_file.is_some(),
            AuthMode::Certificate,
        ),
        (
            "assertion_algorithm",
            t.assertion_algorithm.is_some(),
            AuthMode::Certificate,
        ),
        (
            "federated_token_file",
            t.federated_token_file.is_some(),
            AuthMode::WorkloadIdentity,
        ),
        (
            "managed_identity_endpoint",
            t.managed_identity_endpoint.is_some(),
            AuthMode::ManagedIdentity,
        ),
    ];
    for (key, set, owner) in keys {
        if set && owner != mode {
            problems.add(
                key,
                format!("is only used with `auth` = {owner} (this tenant uses {mode})"),
            );
        }
    }
}

/// The credential of `mode`, or `None` with the problem recorded. `client_id` selects a
/// managed identity's user-assigned identity; `env` stands in for the process
/// environment (`AZURE_FEDERATED_TOKEN_FILE`, `IDENTITY_*`).
pub(super) fn credential(
    t: &RawTenant,
    mode: AuthMode,
    client_id: &str,
    env: &Lookup<'_>,
    problems: &mut Problems,
) -> Option<Credential> {
    match mode {
        AuthMode::ClientSecret => client_secret(t, problems),
        AuthMode::Certificate => certificate(t, problems),
        AuthMode::WorkloadIdentity => workload_identity(t, env, problems),
        AuthMode::ManagedIdentity => match managed_identity(t, client_id, env) {
            Ok(mi) => Some(Credential::ManagedIdentity(mi)),
            Err((key, why)) => {
                problems.add(key, why);
                None
            }
        },
    }
}

fn client_secret(t: &RawTenant, problems: &mut Problems) -> Option<Credential> {
    match (&t.client_secret, &t.client_secret_file) {
        (Some(_), Some(_)) => {
            problems.add(
                "client_secret",
                "set either client_secret or client_secret_file, not both",
            );
            None
        }
        (Some(s), None) if s.is_blank() => {
            problems.add("client_secret", "is empty");
            None
        }
        // `--check-config` prints this in place of the secret; sent, it would fail as
        // AADSTS7000215 (invalid client secret) far from the cause.
        (Some(s), None) if s.expose() == REDACTED => {
            problems.add(
                "client_secret",
                format!(
                    "is \"{REDACTED}\", the placeholder --check-config prints: put the real secret back, or use client_secret_file"
                ),
            );
            None
        }
        (Some(s), None) => Some(Credential::ClientSecret(s.clone())),
        (None, Some(path)) => checked(read_secret_file(path), "client_secret_file", problems)
            .map(|_| Credential::ClientSecretFile(path.clone())),
        (None, None) => {
            problems.add(
                "client_secret_file",
                "a credential is required: set client_secret_file, certificate_file, \
                 or `auth` = workload_identity or managed_identity",
            );
            None
        }
    }
}

fn certificate(t: &RawTenant, problems: &mut Problems) -> Option<Credential> {
    let Some(file) = &t.certificate_file else {
        problems.add("certificate_file", "is required with `auth` = certificate");
        return None;
    };
    checked(ClientCertificate::load(file), "certificate_file", problems).map(|_| {
        Credential::Certificate {
            file: file.clone(),
            algorithm: t.assertion_algorithm.unwrap_or_default(),
        }
    })
}

/// The token file is `federated_token_file`, else what the webhook injects (design.md).
fn workload_identity(
    t: &RawTenant,
    env: &Lookup<'_>,
    problems: &mut Problems,
) -> Option<Credential> {
    let file = t
        .federated_token_file
        .clone()
        .or_else(|| env("AZURE_FEDERATED_TOKEN_FILE").map(PathBuf::from));
    let Some(file) = file else {
        problems.add(
            "federated_token_file",
            "is required with `auth` = workload_identity (or set AZURE_FEDERATED_TOKEN_FILE)",
        );
        return None;
    };
    checked(read_secret_file(&file), "federated_token_file", problems)
        .map(|_| Credential::WorkloadIdentity { token_file: file })
}

/// `Some` when `result` is fine, else `None` with the error recorded against `key`.
fn checked<T>(result: Result<T, String>, key: &str, problems: &mut Problems) -> Option<T> {
    result.map_err(|e| problems.add(key, e)).ok()
}

/// The identity endpoint of `auth = "managed_identity"`: App Service / Container Apps
/// when both `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` are set (design.md), else IMDS at
/// `managed_identity_endpoint` or its well-known address. On error: the key and why.
fn managed_identity(
    t: &RawTenant,
    client_id: &str,
    env: &Lookup<'_>,
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
