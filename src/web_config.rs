//! `--web.config.file`: TLS and basic auth for the HTTP server, in the Prometheus
//! exporter-toolkit format (YAML), reloadable on SIGHUP.
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt          # paths relative to this file
//!   key_file: server.key
//!   client_auth_type: RequireAndVerifyClientCert   # or NoClientCert, VerifyClientCertIfGiven
//!   client_ca_file: clients-ca.crt
//!   min_version: TLS12             # TLS12 (default) or TLS13
//! http_server_config:
//!   headers: { Strict-Transport-Security: max-age=31536000 }
//! basic_auth_users:
//!   prometheus: $2y$10$...         # bcrypt ($2a$, $2b$, $2y$)
//! ```
//!
//! Unknown keys are errors (as in exporter-toolkit). Settings rustls cannot honour
//! (TLS 1.0/1.1, cipher and curve lists, client certificates that are not verified)
//! are errors naming the key rather than silently ignored. Passwords are checked with
//! bcrypt off the async threads (at most two at a time), in constant time, and the
//! result is cached by a SHA-256 of user, hash and password.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use base64::Engine;
use hyper::header::{HeaderName, HeaderValue};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

/// Headers `http_server_config.headers` may set (exporter-toolkit's list).
const ALLOWED_HEADERS: [&str; 5] = [
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "X-XSS-Protection",
    "Content-Security-Policy",
];
/// Cached password checks; the cache is cleared when full (bounded memory whatever
/// clients send).
const AUTH_CACHE_ENTRIES: usize = 1024;
/// bcrypt checks running at once: each takes tens of milliseconds of CPU by design, so
/// a flood of wrong passwords must not occupy every core.
const CONCURRENT_BCRYPT: usize = 2;

/// A web config file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("web config {}: {key}: {message}", file.display())]
pub struct WebConfigError {
    /// The file.
    pub file: PathBuf,
    /// The offending key path, e.g. `tls_server_config.min_version`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    tls_server_config: Option<TlsFormat>,
    http_server_config: Option<HttpFormat>,
    basic_auth_users: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFormat {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_auth_type: Option<String>,
    client_ca_file: Option<PathBuf>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    curve_preferences: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
    client_allowed_sans: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpFormat {
    /// We serve HTTP/1.1 only; accepted so toolkit files load.
    #[allow(dead_code)]
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

/// A loaded, validated web config.
#[derive(Default)]
pub struct WebConfig {
    /// The TLS server config, when TLS is on.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Basic auth, when users are configured.
    pub auth: Option<BasicAuth>,
    /// Extra response headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field(
                "basic_auth_users",
                &self.auth.as_ref().map(|a| a.users.len()),
            )
            .field("headers", &self.headers.len())
            .finish()
    }
}

impl WebConfig {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self, WebConfigError> {
        let err = |key: &str, message: String| WebConfigError {
            file: path.to_owned(),
            key: key.to_owned(),
            message,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| err("(file)", format!("cannot read: {e}")))?;
        let parsed: FileFormat = if text.trim().is_empty() {
            FileFormat::default()
        } else {
            serde_saphyr::from_str(&text).map_err(|e| err("(yaml)", e.to_string()))?
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let tls = match parsed.tls_server_config {
            Some(t) => {
                tls_config(t, base).map_err(|(k, m)| err(&format!("tls_server_config.{k}"), m))?
            }
            None => None,
        };
        let mut users = HashMap::new();
        for (user, hash) in parsed.basic_auth_users.unwrap_or_default() {
            let key = format!("basic_auth_users.{user}");
            if user.contains(':') {
                return Err(err(&key, "a user name cannot contain ':'".into()));
            }
            if !["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p))
                || hash.parse::<bcrypt::HashParts>().is_err()
            {
                return Err(err(
                    &key,
                    "not a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters); create one with `htpasswd -nBC 10 USER`".into(),
                ));
            }
            users.insert(user, hash);
        }
        let mut headers = Vec::new();
        let http = parsed.http_server_config.unwrap_or_default();
        for (name, value) in http.headers.unwrap_or_default() {
            let key = format!("http_server_config.headers.{name}");
            if !ALLOWED_HEADERS
                .iter()
                .any(|h| h.eq_ignore_ascii_case(&name))
            {
                return Err(err(
                    &key,
                    format!("only {} may be set", ALLOWED_HEADERS.join(", ")),
                ));
            }
            let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) else {
                return Err(err(&key, "not a valid header value".into()));
            };
            headers.push((n, v));
        }
        Ok(Self {
            tls,
            auth: (!users.is_empty()).then(|| BasicAuth::new(users)),
            headers,
        })
    }
}

type KeyError = (&'static str, String);

fn tls_config(t: TlsFormat, base: &Path) -> Result<Option<Arc<rustls::ServerConfig>>, KeyError> {
    refuse_unsupported(&t)?;
    let (cert_file, key_file) = match (&t.cert_file, &t.key_file) {
        // exporter-toolkit: a TLS section without cert and key means plain HTTP.
        (None, None) if t.client_ca_file.is_none() && t.client_auth_type.is_none() => {
            return Ok(None);
        }
        (Some(c), Some(k)) => (base.join(c), base.join(k)),
        (None, _) => return Err(("cert_file", "missing (key_file is set)".into())),
        (_, None) => return Err(("key_file", "missing (cert_file is set)".into())),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_file)
        .and_then(|it| it.collect())
        .map_err(|e| ("cert_file", format!("{}: {e}", cert_file.display())))?;
    if certs.is_empty() {
        return Err((
            "cert_file",
            format!("{}: no certificate in the PEM file", cert_file.display()),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&key_file)
        .map_err(|e| ("key_file", format!("{}: {e}", key_file.display())))?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&protocol_versions(&t)?)
        .map_err(|e| ("min_version", e.to_string()))?;
    let builder = match client_verifier(&t, base, provider)? {
        None => builder.with_no_client_auth(),
        Some(verifier) => builder.with_client_cert_verifier(verifier),
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        (
            "key_file",
            format!("does not match cert_file or is unusable: {e}"),
        )
    })?;
    config.ignore_client_order = t.prefer_server_cipher_suites.unwrap_or(true);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}

/// Settings rustls cannot honour are errors naming the key, never silently ignored.
fn refuse_unsupported(t: &TlsFormat) -> Result<(), KeyError> {
    let set = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|v| !v.is_empty());
    for (key, value) in [
        ("cipher_suites", &t.cipher_suites),
        ("curve_preferences", &t.curve_preferences),
        ("client_allowed_sans", &t.client_allowed_sans),
    ] {
        if set(value) {
            return Err((
                key,
                "not supported by this exporter (rustls chooses safe defaults); remove it"
                    .to_owned(),
            ));
        }
    }
    Ok(())
}

/// The TLS versions between `min_version` (default TLS12) and `max_version` (TLS13).
fn protocol_versions(
    t: &TlsFormat,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, KeyError> {
    let version = |key: &'static str, v: &str| match v {
        "TLS13" => Ok(13),
        "TLS12" => Ok(12),
        "TLS10" | "TLS11" => Err((
            key,
            format!("{v} is not supported (insecure); use TLS12 or TLS13"),
        )),
        other => Err((
            key,
            format!("unknown version `{other}`; use TLS12 or TLS13"),
        )),
    };
    let min = version("min_version", t.min_version.as_deref().unwrap_or("TLS12"))?;
    let max = version("max_version", t.max_version.as_deref().unwrap_or("TLS13"))?;
    let versions: Vec<_> = [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
        .into_iter()
        .filter(|(n, _)| (min..=max).contains(n))
        .map(|(_, v)| v)
        .collect();
    if versions.is_empty() {
        return Err(("max_version", "is below min_version".into()));
    }
    Ok(versions)
}

/// The client-certificate verifier `client_auth_type` and `client_ca_file` ask for;
/// `None` for `NoClientCert`.
fn client_verifier(
    t: &TlsFormat,
    base: &Path,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>, KeyError> {
    let auth_type = t.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let required = match auth_type {
        "NoClientCert" => None,
        "RequireAndVerifyClientCert" => Some(true),
        "VerifyClientCertIfGiven" => Some(false),
        "RequestClientCert" | "RequireAnyClientCert" => {
            return Err((
                "client_auth_type",
                format!(
                    "{auth_type} accepts unverified certificates and is not supported; use RequireAndVerifyClientCert or VerifyClientCertIfGiven with client_ca_file"
                ),
            ));
        }
        other => {
            return Err((
                "client_auth_type",
                format!(
                    "unknown value `{other}`; use NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert"
                ),
            ));
        }
    };
    let (required, ca) = match (required, &t.client_ca_file) {
        (None, Some(_)) => {
            return Err((
                "client_ca_file",
                "set, but client_auth_type is NoClientCert: set client_auth_type to RequireAndVerifyClientCert".into(),
            ));
        }
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err((
                "client_ca_file",
                format!("required with client_auth_type {auth_type}"),
            ));
        }
        (Some(required), Some(ca)) => (required, base.join(ca)),
    };
    let mut roots = rustls::RootCertStore::empty();
    let cas = CertificateDer::pem_file_iter(&ca)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ("client_ca_file", format!("{}: {e}", ca.display())))?;
    let (added, _) = roots.add_parsable_certificates(cas);
    if added == 0 {
        return Err((
            "client_ca_file",
            format!("{}: no usable CA certificate", ca.display()),
        ));
    }
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
    let verifier = if required {
        verifier
    } else {
        verifier.allow_unauthenticated()
    };
    verifier
        .build()
        .map(Some)
        .map_err(|e| ("client_ca_file", e.to_string()))
}

/// `basic_auth_users` with the verification cache.
pub struct BasicAuth {
    users: HashMap<String, String>,
    cache: Mutex<HashMap<[u8; 32], bool>>,
    permits: tokio::sync::Semaphore,
}

impl BasicAuth {
    fn new(users: HashMap<String, String>) -> Self {
        Self {
            users,
            cache: Mutex::new(HashMap::new()),
            permits: tokio::sync::Semaphore::new(CONCURRENT_BCRYPT),
        }
    }

    /// Whether an `Authorization` header value carries a configured user and password.
    pub async fn check(&self, header: Option<&HeaderValue>) -> bool {
        let Some((user, password)) = header.and_then(parse_basic) else {
            return false;
        };
        let hash = self.users.get(&user);
        let key = cache_key(&user, hash.map(String::as_str), &password);
        if let Some(ok) = self.cached(&key) {
            return ok;
        }
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        // An unknown user costs a bcrypt run too, so timing does not reveal user names.
        let known = hash.is_some();
        let hash = hash.cloned().unwrap_or_else(|| dummy_hash().to_owned());
        let ok = tokio::task::spawn_blocking(move || {
            bcrypt::verify(password.as_bytes(), &hash).unwrap_or(false)
        })
        .await
        .unwrap_or(false)
            && known;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= AUTH_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(key, ok);
        ok
    }

    fn cached(&self, key: &[u8; 32]) -> Option<bool> {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .copied()
    }
}

/// A hash that matches no password anyone sends, to spend the same time on unknown users.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        bcrypt::hash_with_salt(b"no user has this password", 10, *b"entra-mfa-export")
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// SHA-256 of user, hash and password, length-prefixed so no two inputs collide by
/// concatenation. The cache keeps digests, never passwords.
fn cache_key(user: &str, hash: Option<&str>, password: &str) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [user, hash.unwrap_or(""), password] {
        ctx.update(&(part.len() as u64).to_le_bytes());
        ctx.update(part.as_bytes());
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// `Basic base64(user:password)` (RFC 7617).
fn parse_basic(value: &HeaderValue) -> Option<(String, String)> {
    let value = value.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// The web config in force, swapped whole on reload.
#[derive(Debug, Default)]
pub struct WebConfigHandle {
    path: Option<PathBuf>,
    current: RwLock<Arc<WebConfig>>,
}

impl WebConfigHandle {
    /// Loads `path`, or plain HTTP without auth when there is none.
    pub fn load(path: Option<&Path>) -> Result<Self, WebConfigError> {
        let config = match path {
            Some(p) => WebConfig::load(p)?,
            None => WebConfig::default(),
        };
        Ok(Self {
            path: path.map(Path::to_owned),
            current: RwLock::new(Arc::new(config)),
        })
    }

    /// The config for a new connection.
    pub fn current(&self) -> Arc<WebConfig> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Re-reads the file (SIGHUP). On error the previous config stays in force. Open
    /// connections keep the config they started with; new ones get the new one.
    pub fn reload(&self) -> Result<bool, WebConfigError> {
        let Some(path) = &self.path else {
            return Ok(false);
        };
        let fresh = WebConfig::load(path)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(fresh);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn hash(password: &str) -> String {
        bcrypt::hash_with_salt(password, 4, *b"0123456789abcdef")
            .unwrap()
            .format_for_version(bcrypt::Version::TwoY)
    }

    #[test]
    fn errors_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                "tls_server_config:\n  cert_file: a.crt\n",
                "tls_server_config.key_file",
            ),
            ("tls_server_config:\n  cert_fiel: a.crt\n", "(yaml)"),
            (
                "basic_auth_users:\n  alice: plaintext\n",
                "basic_auth_users.alice",
            ),
            (
                "http_server_config:\n  headers:\n    Server: x\n",
                "http_server_config.headers.Server",
            ),
            (
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n",
                "tls_server_config.cipher_suites",
            ),
            (
                "tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n",
                "tls_server_config.cert_file",
            ),
        ];
        for (text, key) in cases {
            let p = write(dir.path(), "web.yml", text);
            let e = WebConfig::load(&p).unwrap_err();
            assert_eq!(e.key, key, "{text}: {e}");
            assert!(e.to_string().contains("web.yml"), "{e}");
        }
        let p = write(dir.path(), "web.yml", "");
        let c = WebConfig::load(&p).unwrap();
        assert!(c.tls.is_none() && c.auth.is_none());
        let p = write(
            dir.path(),
            "web.yml",
            "tls_server_config: {}\nhttp_server_config:\n  http2: true\n",
        );
        assert!(WebConfig::load(&p).unwrap().tls.is_none());
    }

    #[tokio::test]
    async fn basic_auth_checks_and_caches() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("basic_auth_users:\n  alice: '{}'\n", hash("s3cret"));
        let c = WebConfig::load(&write(dir.path(), "web.yml", &text)).unwrap();
        let auth = c.auth.unwrap();
        let header = |user: &str, pass: &str| {
            let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            HeaderValue::from_str(&format!("Basic {b64}")).unwrap()
        };
        assert!(auth.check(Some(&header("alice", "s3cret"))).await);
        assert!(auth.check(Some(&header("alice", "s3cret"))).await, "cached");
        assert!(!auth.check(Some(&header("alice", "wrong"))).await);
        assert!(!auth.check(Some(&header("bob", "s3cret"))).await);
        assert!(!auth.check(None).await);
        assert!(
            !auth
                .check(Some(&HeaderValue::from_static("Bearer x")))
                .await
        );
        assert_eq!(auth.cache.lock().unwrap().len(), 3);
    }
}
