//! The HTTP server (hyper 1): `/metrics` (path configurable), `/`, `/-/healthy`,
//! `/-/ready`; 404 for anything else and 405 for methods other than GET and HEAD.
//! A scrape only encodes the stored snapshots; it never calls Graph.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ACCEPT, ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::exposition;
use crate::snapshot::Store;

/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections get to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What the server reads.
#[derive(Debug)]
pub struct ServerState {
    /// Self-metrics plus the store collector.
    pub registry: Registry,
    /// The snapshots, for the landing page and readiness.
    pub store: Arc<Store>,
    /// `--web.telemetry-path`.
    pub telemetry_path: String,
    /// Which shard of the tenants this replica collects.
    pub shard: crate::shard::Shard,
    /// Shown on the landing page (e.g. "demo mode").
    pub banner: Option<String>,
}

type Resp = Response<Full<Bytes>>;

/// Serves on `listener` until `shutdown` completes, then lets open connections finish
/// (bounded by a grace period).
pub async fn serve(
    listener: TcpListener,
    state: Arc<ServerState>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let state = state.clone();
                let conn = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .serve_connection(
                        TokioIo::new(stream),
                        service_fn(move |req| {
                            let state = state.clone();
                            async move { Ok::<_, Infallible>(handle(&req, &state)) }
                        }),
                    );
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("open connections did not finish within the shutdown grace period");
    }
    Ok(())
}

/// Routes one request.
pub fn handle(req: &Request<Incoming>, state: &ServerState) -> Resp {
    route(
        req.method(),
        req.uri().path(),
        req.headers().get(ACCEPT).and_then(|v| v.to_str().ok()),
        state,
    )
}

/// Routing without hyper's body type, for unit tests.
pub fn route(method: &Method, path: &str, accept: Option<&str>, state: &ServerState) -> Resp {
    let head = method == Method::HEAD;
    if method != Method::GET && !head {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let mut resp = if path == state.telemetry_path {
        let format = exposition::negotiate(accept);
        let body = exposition::encode(&state.registry, format);
        let mut r = Response::new(Full::new(Bytes::from(body)));
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        );
        r
    } else {
        match path {
            "/" => html(landing_page(state)),
            "/-/healthy" => text(StatusCode::OK, "Healthy\n"),
            "/-/ready" => match state.store.pending() {
                0 => text(StatusCode::OK, "Ready\n"),
                n => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("Not ready: {n} report(s) have not finished their first refresh\n"),
                ),
            },
            _ => text(StatusCode::NOT_FOUND, "404 page not found\n"),
        }
    };
    if head {
        *resp.body_mut() = Full::new(Bytes::new());
    }
    resp
}

fn text(status: StatusCode, body: &str) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body.to_owned())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn html(body: String) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn landing_page(state: &ServerState) -> String {
    let mut rows = String::new();
    for ((tenant, report), s) in state.store.states() {
        let (status, class) = match &s.last_attempt {
            None if s.snapshot.is_none() => ("waiting for first refresh", "pending"),
            None => ("restored", "ok"),
            Some(a) if a.success => ("up", "ok"),
            Some(_) => ("failing", "bad"),
        };
        let last_success = s
            .snapshot
            .as_ref()
            .map(|snap| format!("{} ({} rows)", rfc3339(snap.finished_at), snap.records))
            .unwrap_or_else(|| "never".into());
        let error = s
            .last_attempt
            .as_ref()
            .and_then(|a| a.error.as_deref())
            .map(esc)
            .unwrap_or_default();
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td class=\"{class}\">{status}</td><td>{last_success}</td><td>{error}</td></tr>\n",
            esc(&tenant),
            report.name(),
        ));
    }
    let banner = state
        .banner
        .as_deref()
        .map(|b| format!("<p class=\"banner\">{}</p>", esc(b)))
        .unwrap_or_default();
    let path = esc(&state.telemetry_path);
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Entra MFA Exporter</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:70em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}}.ok{{color:#1a7f37}}.bad{{color:#cf222e}}
.pending{{color:#9a6700}}.banner{{background:#fff8c5;padding:.5em}}</style></head>
<body><h1>Entra MFA Exporter</h1>
<p>Version {version}. Prometheus exporter for Microsoft Entra ID authentication-methods reports.</p>
<p>Shard {shard} (<code>--shard.index</code> of <code>--shard.count</code>): this replica collects the tenants listed below.</p>
{banner}
<ul><li><a href="{path}">Metrics</a></li><li><a href="/-/healthy">Health</a></li><li><a href="/-/ready">Readiness</a></li></ul>
<h2>Reports</h2>
<table><tr><th>Tenant</th><th>Report</th><th>Status</th><th>Last success</th><th>Last error</th></tr>
{rows}</table>
</body></html>
"#,
        version = env!("CARGO_PKG_VERSION"),
        shard = state.shard,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::ReportKind;

    fn state() -> ServerState {
        let store = Arc::new(Store::new([(
            "t<1>".to_owned(),
            ReportKind::UserRegistrationDetails,
        )]));
        let mut registry = Registry::default();
        registry.register_collector(Box::new(crate::snapshot::StoreCollector(store.clone())));
        ServerState {
            registry,
            store,
            telemetry_path: "/metrics".into(),
            shard: crate::shard::Shard::new(1, 3).unwrap(),
            banner: None,
        }
    }

    #[test]
    fn routes() {
        let s = state();
        assert_eq!(route(&Method::GET, "/-/healthy", None, &s).status(), 200);
        assert_eq!(route(&Method::GET, "/-/ready", None, &s).status(), 503);
        assert_eq!(route(&Method::GET, "/nope", None, &s).status(), 404);
        let r = route(&Method::POST, "/metrics", None, &s);
        assert_eq!(r.status(), 405);
        assert_eq!(r.headers()[ALLOW], "GET, HEAD");
        let r = route(&Method::GET, "/metrics", Some("text/plain"), &s);
        assert_eq!(r.headers()[CONTENT_TYPE], exposition::CLASSIC);
        let r = route(&Method::HEAD, "/metrics", None, &s);
        assert_eq!(r.headers()[CONTENT_TYPE], exposition::OPENMETRICS);
        s.store.record_failure(
            "t<1>",
            ReportKind::UserRegistrationDetails,
            "boom <b>".into(),
            Duration::ZERO,
        );
        assert_eq!(route(&Method::GET, "/-/ready", None, &s).status(), 200);
    }

    #[test]
    fn landing_page_escapes() {
        let s = state();
        s.store.record_failure(
            "t<1>",
            ReportKind::UserRegistrationDetails,
            "boom <b>".into(),
            Duration::ZERO,
        );
        let page = landing_page(&s);
        assert!(
            page.contains("t&lt;1&gt;")
                && page.contains("boom &lt;b&gt;")
                && page.contains("failing")
        );
        assert!(!page.contains("<b>"));
        assert!(page.contains("Shard 1 of 3"), "{page}");
    }
}
