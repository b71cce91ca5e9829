//! The HTTP server (hyper 1): `/metrics` (path configurable), `/`, `/-/healthy`,
//! `/-/ready`; 404 for anything else and 405 for methods other than GET and HEAD.
//! A scrape only encodes the stored snapshots (cached, see [`crate::scrape_cache`]);
//! it never calls Graph.
//!
//! Hardening: TLS, client certificates and basic auth from `--web.config.file`
//! ([`crate::web_config`], reloaded on SIGHUP without dropping the listener); at most
//! [`MAX_CONNECTIONS`] connections at once (more wait in the listen backlog); a bound on
//! the TLS handshake, on reading request headers, and on any stall in reading or
//! writing a connection, so slow clients cannot hold connections open.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{
    ACCEPT, ACCEPT_ENCODING, ALLOW, AUTHORIZATION, CONNECTION, CONTENT_ENCODING, CONTENT_TYPE,
    HeaderValue, VARY, WWW_AUTHENTICATE,
};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulConnection;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::exposition;
use crate::scrape_cache::{ScrapeCache, accepts_gzip};
use crate::snapshot::Store;
use crate::web_config::{WebConfig, WebConfigHandle};

/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a TLS handshake may take.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may make no progress, reading or writing: covers slow request
/// bodies, clients that stop reading the response, and idle keep-alive connections
/// (Prometheus reconnects at its next scrape).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Concurrent connections served. Far above what scrapers need (one each), low enough
/// that a connection flood cannot exhaust file descriptors or memory.
pub const MAX_CONNECTIONS: usize = 512;
/// Request header bytes buffered per connection (hyper's minimum is 8 KiB).
const MAX_HEADER_BYTES: usize = 16 << 10;
/// How long open connections get to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What the server reads.
#[derive(Debug, Default)]
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
    /// TLS and basic auth (`--web.config.file`); the default is plain HTTP, no auth.
    pub web: WebConfigHandle,
    /// The encoded `/metrics` body.
    pub cache: ScrapeCache,
}

type Resp = Response<Full<Bytes>>;

/// Serves on `listener` until `shutdown` completes, then lets open connections finish
/// (bounded by a grace period).
pub async fn serve(
    listener: TcpListener,
    state: Arc<ServerState>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    // `true` at shutdown: every connection finishes its request in flight and closes.
    let (stop, _) = watch::channel(false);
    // Bumped when every slot is taken: connections close once their request in flight
    // is answered, so idle keep-alive connections make room for waiting clients.
    let (shed, _) = watch::channel(0u64);
    tokio::pin!(shutdown);
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                shed.send_modify(|n| *n += 1);
                tracing::debug!("connection limit reached; closing idle connections");
                // Past the cap, new connections wait in the kernel's listen backlog.
                tokio::select! {
                    slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
                    () = &mut shutdown => break,
                }
            }
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let (state, stop, shed) = (state.clone(), stop.subscribe(), shed.subscribe());
        tokio::spawn(async move {
            let _slot = slot;
            let web = state.web.current();
            let life = Arc::new(ConnLife::default());
            let stream = IdleTimeout::new(stream, IDLE_TIMEOUT);
            let result = match web.tls.clone() {
                None => {
                    let conn = connection(stream, state, web, life.clone());
                    until_asked_to_close(conn, life, stop, shed).await
                }
                Some(tls) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(tls_stream)) => {
                            let conn = connection(tls_stream, state, web, life.clone());
                            until_asked_to_close(conn, life, stop, shed).await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!("TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Every connection holds a slot until it ends: all slots back means all closed.
    if tokio::time::timeout(SHUTDOWN_GRACE, slots.acquire_many(MAX_CONNECTIONS as u32))
        .await
        .is_err()
    {
        tracing::warn!("open connections did not finish within the shutdown grace period");
    }
    Ok(())
}

/// Runs `conn` to its end; when `stop` turns true or `shed` moves, asks it to close
/// after the request in flight (an idle keep-alive connection closes at once).
/// A connection that has not answered a request yet is not closed (its first request
/// may be on the wire): its first response carries `Connection: close` instead.
async fn until_asked_to_close<C: GracefulConnection>(
    conn: C,
    life: Arc<ConnLife>,
    mut stop: watch::Receiver<bool>,
    mut shed: watch::Receiver<u64>,
) -> Result<(), C::Error> {
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => return result,
        _ = stop.wait_for(|s| *s) => conn.as_mut().graceful_shutdown(),
        _ = shed.changed() => {
            life.closing.store(true, Ordering::Relaxed);
            if life.answered.load(Ordering::Relaxed) {
                conn.as_mut().graceful_shutdown();
            }
        }
    }
    conn.await
}

/// What the accept loop and a connection's requests share.
#[derive(Default)]
struct ConnLife {
    /// A response has been sent.
    answered: AtomicBool,
    /// Close after the next response.
    closing: AtomicBool,
}

/// One HTTP/1.1 connection over `io` (plain or TLS), under the web config it began with.
fn connection<IO: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    io: IO,
    state: Arc<ServerState>,
    web: Arc<WebConfig>,
    life: Arc<ConnLife>,
) -> impl GracefulConnection<Error = hyper::Error> {
    http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES)
        .serve_connection(
            TokioIo::new(io),
            service_fn(move |req| {
                let (state, web, life) = (state.clone(), web.clone(), life.clone());
                async move {
                    let mut resp = handle(&req, &state, &web).await;
                    if life.closing.load(Ordering::Relaxed) {
                        resp.headers_mut()
                            .insert(CONNECTION, HeaderValue::from_static("close"));
                    }
                    life.answered.store(true, Ordering::Relaxed);
                    Ok::<_, Infallible>(resp)
                }
            }),
        )
}

/// Authenticates and routes one request, adding the configured headers.
pub async fn handle(req: &Request<Incoming>, state: &ServerState, web: &WebConfig) -> Resp {
    let mut resp = match &web.auth {
        Some(auth) if !auth.check(req.headers().get(AUTHORIZATION)).await => {
            let mut r = text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
            r.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"entra-mfa-exporter\", charset=\"UTF-8\""),
            );
            r
        }
        _ => {
            let header = |name| {
                req.headers()
                    .get(name)
                    .and_then(|v: &HeaderValue| v.to_str().ok())
            };
            route(
                req.method(),
                req.uri().path(),
                header(ACCEPT),
                accepts_gzip(header(ACCEPT_ENCODING)),
                state,
            )
        }
    };
    for (name, value) in &web.headers {
        resp.headers_mut().insert(name.clone(), value.clone());
    }
    resp
}

/// Routing without hyper's body type, for unit tests.
pub fn route(
    method: &Method,
    path: &str,
    accept: Option<&str>,
    gzip: bool,
    state: &ServerState,
) -> Resp {
    let head = method == Method::HEAD;
    if method != Method::GET && !head {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let mut resp = if path == state.telemetry_path {
        let format = exposition::negotiate(accept);
        let body = state
            .cache
            .get(&state.registry, state.store.generation(), format, gzip);
        let mut r = Response::new(Full::new(body));
        let h = r.headers_mut();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        );
        h.insert(VARY, HeaderValue::from_static("Accept, Accept-Encoding"));
        if gzip {
            h.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
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

/// An I/O stream that fails with `TimedOut` when neither a read nor a write makes
/// progress for `timeout` while one is pending.
struct IdleTimeout<T> {
    inner: T,
    timeout: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl<T> IdleTimeout<T> {
    fn new(inner: T, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    /// After the inner stream answered `result`: progress pushes the deadline back;
    /// waiting past it is an error.
    fn watch<R>(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        match result {
            Poll::Ready(r) => {
                let next = tokio::time::Instant::now() + self.timeout;
                self.deadline.as_mut().reset(next);
                Poll::Ready(r)
            }
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection made no progress",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleTimeout<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.watch(cx, r)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.watch(cx, r)
    }

    // Forwarded so hyper sees vectored writes and queues a response body as the shared
    // bytes it is; without them hyper copies every body into a per-connection buffer
    // (bench-metrics: 156 MiB peak for 32 scrapes of a 3.7 MB body, 42 MiB with this).
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.watch(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(cx, r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.watch(cx, r)
    }
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

fn landing_page(state: &ServerState) -> String {
    crate::landing::page(
        &state.store,
        state.shard,
        state.banner.as_deref(),
        &state.telemetry_path,
        SystemTime::now(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::ReportKind;

    fn state() -> ServerState {
        let store = Arc::new(Store::new([(
            "t<1>".to_owned(),
            ReportKind::named("user_registration_details"),
        )]));
        let mut registry = Registry::default();
        registry.register_collector(Box::new(crate::snapshot::StoreCollector(store.clone())));
        ServerState {
            registry,
            store,
            telemetry_path: "/metrics".into(),
            shard: crate::shard::Shard::new(1, 3).unwrap(),
            ..ServerState::default()
        }
    }

    #[test]
    fn routes() {
        let s = state();
        assert_eq!(
            route(&Method::GET, "/-/healthy", None, false, &s).status(),
            200
        );
        assert_eq!(
            route(&Method::GET, "/-/ready", None, false, &s).status(),
            503
        );
        assert_eq!(route(&Method::GET, "/nope", None, false, &s).status(), 404);
        let r = route(&Method::POST, "/metrics", None, false, &s);
        assert_eq!(r.status(), 405);
        assert_eq!(r.headers()[ALLOW], "GET, HEAD");
        let r = route(&Method::GET, "/metrics", Some("text/plain"), false, &s);
        assert_eq!(r.headers()[CONTENT_TYPE], exposition::CLASSIC);
        let r = route(&Method::HEAD, "/metrics", None, true, &s);
        assert_eq!(r.headers()[CONTENT_TYPE], exposition::OPENMETRICS);
        s.store.record_failure(
            "t<1>",
            ReportKind::named("user_registration_details"),
            "boom <b>".into(),
            Duration::ZERO,
        );
        assert_eq!(
            route(&Method::GET, "/-/ready", None, false, &s).status(),
            200
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_connection_times_out_and_progress_keeps_it_open() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (client, server) = tokio::io::duplex(64);
        let mut server = IdleTimeout::new(server, Duration::from_secs(60));
        let mut client = client;
        let mut buf = [0u8; 8];
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_secs(50)).await;
            client.write_all(b"x").await.unwrap();
            assert_eq!(
                server.read(&mut buf).await.unwrap(),
                1,
                "progress resets the clock"
            );
        }
        let err = server.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn the_idle_timeout_keeps_vectored_writes() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap());
        let ((server, _), mut client) =
            tokio::join!(async { listener.accept().await.unwrap() }, async {
                client.await.unwrap()
            });
        assert!(server.is_write_vectored(), "a TCP stream writes vectored");
        let mut server = IdleTimeout::new(server, Duration::from_secs(60));
        assert!(
            server.is_write_vectored(),
            "hyper would copy every body into its own buffer"
        );
        let bufs = [io::IoSlice::new(b"ab"), io::IoSlice::new(b"cd")];
        let n = server.write_vectored(&bufs).await.unwrap();
        let mut got = vec![0u8; n];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, &b"abcd"[..n]);
    }

    #[test]
    fn landing_page_escapes() {
        let s = state();
        s.store.record_failure(
            "t<1>",
            ReportKind::named("user_registration_details"),
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
