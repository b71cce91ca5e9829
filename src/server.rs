//! The HTTP server (hyper 1): `/metrics` (path configurable), `/`, `/-/healthy`,
//! `/-/ready`; 404 for anything else and 405 for methods other than GET and HEAD.
//! A scrape only encodes the stored snapshots (cached, see [`crate::scrape_cache`]);
//! it never calls Graph.
//!
//! Hardening: TLS, client certificates and basic auth from `--web.config.file`
//! ([`crate::web_config`], reloaded on SIGHUP without dropping the listener).
//!
//! Connection policy: a scrape always gets through. At most [`MAX_CONNECTIONS`]
//! connections are served; when all are taken a new connection is still accepted and
//! room is made by closing the connection that has done the least
//! ([`connections`]): first one that has sent nothing yet (oldest first), then an idle
//! keep-alive connection (longest idle first; a response it is still writing is
//! finished), then one whose request head is still incomplete (oldest first), then one
//! whose response has waited on its client for [`STALLED_AFTER`]. A connection whose
//! request is being answered is never closed to make room; only when every slot is
//! answering does a new connection wait (and later ones in the listen backlog, which
//! is the system's largest). An unused connection chosen while younger than
//! [`UNUSED_GRACE`] may still send until that age (up to [`MAX_CONNECTIONS`] of them),
//! and a chosen connection whose request head arrives in time is answered, then closed.
//! Connections must send their first byte within [`FIRST_BYTE_TIMEOUT`] and their
//! request head within [`HEADER_READ_TIMEOUT`]; any stall reading or writing ends them
//! after [`IDLE_TIMEOUT`]; a TLS handshake gets [`TLS_HANDSHAKE_TIMEOUT`]; headers are
//! capped at 16 KiB (431 past it). A connection holds nothing but its task until its
//! first byte, and only what it sent until its request head is complete (plain HTTP);
//! hyper's buffers come after, so floods of connections that never finish a request
//! cost little memory.
//!
//! Requests to the metrics path are bounded separately ([`requests`]): at most
//! `--web.max-requests` ([`DEFAULT_MAX_REQUESTS`]; 0: no limit) in flight, from after
//! authentication until their body is written; past it a request gets 429, unless a
//! request whose client stopped reading can be closed to make room. The counts are
//! self-metrics ([`ServerMetrics`]). At start the soft open-file limit is raised to the
//! hard limit ([`raise_open_file_limit`]), so the cap, not `EMFILE`, bounds connections.

mod connections;
mod metrics;
mod requests;
mod stream;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
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
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::exposition::{self, Exposition};
use crate::scrape_cache::{Lookup, ScrapeCache, accepts_gzip};
use crate::snapshot::Store;
use crate::web_config::{WebConfig, WebConfigHandle};
pub use connections::raise_open_file_limit;
use connections::{Ask, Conn, Connections, Phase, Slot, TimedOut};
pub use metrics::{CloseReason, ServerMetrics};
pub use requests::ResponseBody;
use requests::{Permit, Refused, RequestLimit};

/// How long a client may take to send its request headers (from the start of the
/// connection, or from the previous response on a keep-alive connection).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a new connection may take to send its first byte. A scraper sends its
/// request (or TLS hello) right after connecting; 5 s still covers two retransmissions
/// of a lost first segment (1 s and 2 s more at Linux's initial RTO).
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a TLS handshake may take.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may make no progress, reading or writing: covers slow request
/// bodies and clients that stop reading the response.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a response may wait on its client before that connection may be closed to
/// make room (for a new connection or request). A client that reads makes progress
/// every round trip.
pub const STALLED_AFTER: Duration = Duration::from_secs(1);
/// A connection chosen to make room while it has sent nothing and is younger than this
/// gets until this age to send its first byte, and is answered if it does: a client
/// among many connecting at once from a loaded machine can take over a second between
/// its connect and its request (tests/load.rs: up to 0.9 s alone, more beside another
/// load). The first-byte timeout: a chosen connection keeps the window any connection
/// has. At most [`MAX_CONNECTIONS`] wait so; beyond that, victims close at once.
pub const UNUSED_GRACE: Duration = FIRST_BYTE_TIMEOUT;
/// Concurrent connections served. Far above what scrapers need (one each), low enough
/// that a connection flood cannot exhaust file descriptors or memory (each costs about
/// 10 KiB of buffers and state).
pub const MAX_CONNECTIONS: usize = 512;
/// `--web.max-requests` default: node_exporter's. Each scrape is one request, so this
/// is 20 times what a pair of HA Prometheus servers needs; and each response in flight
/// may keep its own encoding of the body alive (MBs with many tenants), so it bounds
/// that memory at 40 bodies instead of one per connection.
pub const DEFAULT_MAX_REQUESTS: usize = 40;
/// Request header bytes buffered per connection (hyper's minimum is 8 KiB).
const MAX_HEADER_BYTES: usize = 16 << 10;
/// Asked-for listen backlog; the kernel caps it at its maximum (Go asks for that
/// maximum, at most this).
const LISTEN_BACKLOG: i32 = 65_535;
/// How long open connections get to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Open files beyond the connections: listener, Graph connections, snapshot file, logs,
/// and connections closing to make room.
const OTHER_FILES: u64 = 128;

/// What the server reads.
#[derive(Debug)]
pub struct ServerState {
    /// Self-metrics (with [`ServerMetrics::registered`] added).
    pub registry: Registry,
    /// The snapshots: their families follow the registry's on `/metrics`, and the
    /// landing page and readiness read them.
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
    /// `--web.max-requests`: requests to the metrics path in flight at once (0: no limit).
    pub max_requests: usize,
    /// Connection and request counts, registered in `registry`.
    pub metrics: ServerMetrics,
}

impl Default for ServerState {
    fn default() -> Self {
        Self {
            registry: Registry::default(),
            store: Arc::default(),
            telemetry_path: String::default(),
            shard: crate::shard::Shard::default(),
            banner: None,
            web: WebConfigHandle::default(),
            cache: ScrapeCache::default(),
            max_requests: DEFAULT_MAX_REQUESTS,
            metrics: ServerMetrics::default(),
        }
    }
}

impl ServerState {
    /// What `/metrics` shows.
    pub fn exposition(&self) -> Exposition<'_> {
        Exposition::new(&self.registry, &self.store)
    }
}

type Resp = Response<ResponseBody>;

/// The bounds [`serve`] applies (the constants above; tests shrink them).
#[derive(Debug, Clone)]
struct Limits {
    connections: usize,
    first_byte: Duration,
    header_read: Duration,
    idle: Duration,
    tls_handshake: Duration,
    stalled_after: Duration,
    unused_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connections: MAX_CONNECTIONS,
            first_byte: FIRST_BYTE_TIMEOUT,
            header_read: HEADER_READ_TIMEOUT,
            idle: IDLE_TIMEOUT,
            tls_handshake: TLS_HANDSHAKE_TIMEOUT,
            stalled_after: STALLED_AFTER,
            unused_grace: UNUSED_GRACE,
        }
    }
}

/// Serves on `listener` until `shutdown` completes, then lets open connections finish
/// (bounded by a grace period).
pub async fn serve(
    listener: TcpListener,
    state: Arc<ServerState>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let limits = Limits::default();
    let conns = Arc::new(Connections::new(
        limits.connections,
        limits.stalled_after,
        limits.unused_grace,
        state.metrics.clone(),
    ));
    serve_with(listener, state, shutdown, limits, conns).await
}

/// [`serve`] under `limits`, with the slot table `conns` (made for `limits`).
async fn serve_with(
    listener: TcpListener,
    state: Arc<ServerState>,
    shutdown: impl Future<Output = ()>,
    limits: Limits,
    conns: Arc<Connections>,
) -> std::io::Result<()> {
    // Live, graced and closing connections (see `connections`), and the rest.
    let needed = 2 * limits.connections as u64 + OTHER_FILES;
    match raise_open_file_limit() {
        Ok(n) if n < needed => tracing::warn!(
            open_file_limit = n,
            needed,
            "the open-file limit is below what the connection cap needs"
        ),
        Ok(n) => tracing::debug!(open_file_limit = n, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
    if let Err(e) = widen_backlog(&listener) {
        tracing::warn!(error = %e, "cannot widen the listen backlog");
    }
    let requests = Arc::new(RequestLimit::new(
        state.max_requests,
        conns.clone(),
        state.metrics.clone(),
    ));
    let limits = Arc::new(limits);
    // `true` at shutdown: every connection finishes its request in flight and closes.
    let (stop, _) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
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
        state.metrics.connections_accepted.inc();
        // Accepted before a slot is found: a new connection is what makes room.
        let slot = tokio::select! {
            slot = conns.admit() => slot,
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(run_connection(
            stream,
            slot,
            state.clone(),
            requests.clone(),
            limits.clone(),
            stop.subscribe(),
        ));
    }
    drop(listener);
    let _ = stop.send(true);
    if tokio::time::timeout(SHUTDOWN_GRACE, conns.drained())
        .await
        .is_err()
    {
        tracing::warn!("open connections did not finish within the shutdown grace period");
    }
    Ok(())
}

/// Re-listens with the system's largest backlog (`net.core.somaxconn`, as Go does)
/// instead of the 128 the standard library asks for: during a connection flood a
/// scraper's SYN that finds the accept queue full is dropped and resent only after a
/// second.
fn widen_backlog(listener: &TcpListener) -> std::io::Result<()> {
    #[cfg(unix)]
    // Linux and the BSDs cap a larger backlog at their maximum.
    rustix::net::listen(listener, LISTEN_BACKLOG)?;
    #[cfg(not(unix))]
    let _ = listener;
    Ok(())
}

/// How a connection ended.
enum Ended {
    /// hyper finished (the client closed, or an error).
    Served(Result<(), hyper::Error>),
    /// Closed before hyper had it (to make room, at shutdown, at the first-byte timeout,
    /// or by the client), or dropped at once to make room.
    Closed,
    /// The request head was not complete within the header timeout.
    HeadTimeout,
    /// The connection failed before hyper had it (also a failed TLS handshake).
    Io(std::io::Error),
    /// The TLS handshake timed out.
    HandshakeTimeout,
}

/// One connection from accept to close, holding `slot` throughout.
async fn run_connection(
    stream: TcpStream,
    slot: Slot,
    state: Arc<ServerState>,
    requests: Arc<RequestLimit>,
    limits: Arc<Limits>,
    mut stop: watch::Receiver<bool>,
) {
    let conn = slot.conn().clone();
    let ended = serve_connection(stream, &conn, &state, requests, &limits, &mut stop).await;
    let reason = match (conn.timed_out(), &ended) {
        // Closed to make room: counted when chosen.
        _ if conn.ask() > Ask::None => None,
        (TimedOut::FirstByte, _) => Some(CloseReason::FirstByteTimeout),
        (TimedOut::Idle, _) => Some(CloseReason::IdleTimeout),
        (_, Ended::HeadTimeout) => Some(CloseReason::HeaderTimeout),
        (_, Ended::Served(Err(e))) if e.is_timeout() => Some(CloseReason::HeaderTimeout),
        (_, Ended::Served(Err(e))) if e.is_parse() => Some(CloseReason::BadRequest),
        (_, Ended::HandshakeTimeout) => Some(CloseReason::TlsHandshakeTimeout),
        _ => None,
    };
    if let Some(reason) = reason {
        state.metrics.closed(reason);
    }
    match ended {
        Ended::Served(Err(e)) => tracing::debug!(error = %e, "connection ended with an error"),
        Ended::Io(e) => tracing::debug!(error = %e, "connection failed"),
        Ended::HandshakeTimeout => tracing::debug!("TLS handshake timed out"),
        Ended::HeadTimeout => tracing::debug!("request head timed out"),
        Ended::Served(Ok(())) | Ended::Closed => {}
    }
    drop(slot);
}

/// A connection in stages, each holding only what it needs, so a flood of connections
/// that never complete a request costs little: nothing but the task until the first
/// byte; a buffer the size of what arrived until the request head is complete (plain
/// HTTP); hyper's buffers (16 KiB) and state, or TLS's, only then.
async fn serve_connection(
    stream: TcpStream,
    conn: &Arc<Conn>,
    state: &Arc<ServerState>,
    requests: Arc<RequestLimit>,
    limits: &Limits,
    stop: &mut watch::Receiver<bool>,
) -> Ended {
    // `peek`, not `readable`: tokio reports a new socket ready before anything came.
    let mut byte = [0u8; 1];
    let chosen = tokio::select! {
        biased;
        first = tokio::time::timeout(limits.first_byte, stream.peek(&mut byte)) => match first {
            Ok(Ok(_)) => false,
            Ok(Err(e)) => return Ended::Io(e),
            Err(_) => {
                conn.set_timed_out(TimedOut::FirstByte);
                return Ended::Closed;
            }
        },
        () = conn.asked_now() => true,
        _ = stop.wait_for(|s| *s) => return Ended::Closed,
    };
    if chosen {
        // Chosen as unused, but a young one may yet send (many clients connecting at
        // once: the accept loop runs ahead of them), or just have sent.
        let grace = conn.grace_left();
        let sent = grace > Duration::ZERO
            && matches!(
                tokio::time::timeout(grace, stream.peek(&mut byte)).await,
                Ok(Ok(_))
            );
        if !sent && !has_data(&stream) {
            return Ended::Closed;
        }
    }
    if conn.ask() == Ask::Now {
        conn.answer_then_close();
    }
    // Chosen to make room: what it sent is answered if its request head is complete
    // before its grace ends (at once, when it has none); otherwise it closes.
    let chosen = conn.answers_then_closes();
    let web = state.web.current();
    let mut stream =
        stream::TrackedStream::new(stream, conn.clone(), limits.first_byte, limits.idle);
    if let Some(tls) = web.tls.clone() {
        return Box::pin(serve_tls(
            stream,
            tls,
            web,
            conn,
            state,
            requests,
            limits,
            stop.clone(),
        ))
        .await;
    }
    let head_time = match chosen {
        true => limits.header_read.min(conn.grace_left()),
        false => limits.header_read,
    };
    let head = tokio::select! {
        head = tokio::time::timeout(head_time, stream.read_head(MAX_HEADER_BYTES)) => head,
        () = conn.asked_now(), if !chosen => return Ended::Closed,
        _ = stop.wait_for(|s| *s) => return Ended::Closed,
    };
    match head {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => return Ended::Closed,
        Ok(Err(e)) => return Ended::Io(e),
        Err(_) => return Ended::HeadTimeout,
    }
    let http = connection(
        stream,
        state.clone(),
        web,
        requests,
        conn.clone(),
        limits.header_read,
    );
    Box::pin(drive(http, conn, stop.clone())).await
}

/// Whether bytes from the client wait in `stream`'s receive buffer (or it was closed).
fn has_data(stream: &TcpStream) -> bool {
    #[cfg(unix)]
    {
        use rustix::net::{RecvFlags, recv};
        let mut byte = [0u8; 1];
        // Neither consumes the byte nor blocks; tokio's readiness is not touched.
        !matches!(
            recv(stream, &mut byte[..], RecvFlags::PEEK | RecvFlags::DONTWAIT),
            Err(rustix::io::Errno::AGAIN)
        )
    }
    #[cfg(not(unix))]
    {
        let _ = stream;
        false
    }
}

/// The TLS handshake, then HTTP over it.
#[allow(clippy::too_many_arguments)]
async fn serve_tls(
    stream: stream::TrackedStream<TcpStream>,
    tls: Arc<rustls::ServerConfig>,
    web: Arc<WebConfig>,
    conn: &Arc<Conn>,
    state: &Arc<ServerState>,
    requests: Arc<RequestLimit>,
    limits: &Limits,
    stop: watch::Receiver<bool>,
) -> Ended {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    // Chosen to make room (see `serve_connection`): the handshake must end in its grace.
    let chosen = conn.answers_then_closes();
    let handshake_time = match chosen {
        true => limits.tls_handshake.min(conn.grace_left()),
        false => limits.tls_handshake,
    };
    let handshake = tokio::time::timeout(handshake_time, acceptor.accept(stream));
    tokio::select! {
        done = handshake => match done {
            Ok(Ok(tls_stream)) => {
                let http = connection(tls_stream, state.clone(), web, requests, conn.clone(), limits.header_read);
                drive(http, conn, stop).await
            }
            Ok(Err(e)) => Ended::Io(e),
            Err(_) => Ended::HandshakeTimeout,
        },
        () = conn.asked_now(), if !chosen => Ended::Closed,
    }
}

/// Runs `http` to its end. At shutdown, or when asked to close gracefully, it closes
/// after the response in flight (an idle keep-alive connection at once); asked to close
/// at once, it is dropped, unless a request reached the handler meanwhile.
async fn drive<C: GracefulConnection<Error = hyper::Error>>(
    http: C,
    conn: &Conn,
    mut stop: watch::Receiver<bool>,
) -> Ended {
    tokio::pin!(http);
    let mut graceful = false;
    loop {
        tokio::select! {
            // hyper first: a request already read reaches the handler before an ask
            // to close at once is looked at.
            biased;
            result = http.as_mut() => return Ended::Served(result),
            _ = stop.wait_for(|s| *s), if !graceful => {
                graceful = true;
                http.as_mut().graceful_shutdown();
            }
            () = conn.asked(), if conn.ask() < Ask::Now || !graceful => {
                if conn.answers_then_closes() {
                    // Its response says `Connection: close`; a graceful shutdown now
                    // would close before hyper reads the request.
                    continue;
                }
                if conn.ask() == Ask::Now && conn.phase() != Phase::Busy {
                    return Ended::Closed;
                }
                if !graceful {
                    graceful = true;
                    http.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// One HTTP/1.1 connection over `io` (plain or TLS), under the web config it began with.
fn connection<IO: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    io: IO,
    state: Arc<ServerState>,
    web: Arc<WebConfig>,
    requests: Arc<RequestLimit>,
    conn: Arc<Conn>,
    header_read: Duration,
) -> impl GracefulConnection<Error = hyper::Error> {
    http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read)
        .max_buf_size(MAX_HEADER_BYTES)
        .serve_connection(
            TokioIo::new(io),
            service_fn(move |req| {
                let (state, web, requests, conn) =
                    (state.clone(), web.clone(), requests.clone(), conn.clone());
                async move {
                    conn.begin_request();
                    let mut resp = handle(&req, &state, &web, &requests, &conn).await;
                    if conn.answers_then_closes() {
                        resp.headers_mut()
                            .insert(CONNECTION, HeaderValue::from_static("close"));
                    }
                    conn.end_request();
                    Ok::<_, Infallible>(resp)
                }
            }),
        )
}

/// Authenticates, admits (`--web.max-requests`) and routes one request, adding the
/// configured headers.
async fn handle(
    req: &Request<Incoming>,
    state: &Arc<ServerState>,
    web: &WebConfig,
    requests: &RequestLimit,
    conn: &Arc<Conn>,
) -> Resp {
    let mut resp = match &web.auth {
        Some(auth) if !auth.check(req.headers().get(AUTHORIZATION)).await => {
            let mut r = text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
            r.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"entra-mfa-exporter\", charset=\"UTF-8\""),
            );
            r
        }
        _ => match admit_scrape(req, state, requests, conn).await {
            Err(Refused) => text(
                StatusCode::TOO_MANY_REQUESTS,
                // promhttp's wording, which node_exporter users know.
                &format!(
                    "Limit of concurrent requests reached ({}), try again later.\n",
                    requests.max()
                ),
            ),
            Ok(permit) => {
                let header = |name| {
                    req.headers()
                        .get(name)
                        .and_then(|v: &HeaderValue| v.to_str().ok())
                };
                let mut r = route(
                    req.method(),
                    req.uri().path(),
                    header(ACCEPT),
                    accepts_gzip(header(ACCEPT_ENCODING)),
                    state,
                );
                r.body_mut().hold(permit);
                r
            }
        },
    };
    for (name, value) in &web.headers {
        resp.headers_mut().insert(name.clone(), value.clone());
    }
    resp
}

/// A request permit if `req` is a scrape (GET or HEAD of the metrics path); other
/// requests need none.
async fn admit_scrape(
    req: &Request<Incoming>,
    state: &ServerState,
    requests: &RequestLimit,
    conn: &Arc<Conn>,
) -> Result<Option<Permit>, Refused> {
    let scrape = req.uri().path() == state.telemetry_path
        && (req.method() == Method::GET || req.method() == Method::HEAD);
    if !scrape {
        return Ok(None);
    }
    requests.admit(conn).await.map(Some)
}

/// The `/metrics` body: the cached one, re-encoded on the cache's thread when stale (the
/// scrape is served the previous body meanwhile); only the first scrape waits.
fn metrics_body(state: &Arc<ServerState>, format: exposition::Format, gzip: bool) -> Bytes {
    let generation = state.store.generation();
    match state.cache.lookup(generation, format, gzip) {
        Lookup::Ready(body) => body,
        Lookup::Stale(body, turn) => {
            let job = {
                let state = state.clone();
                move || {
                    state.cache.encode(state.exposition(), generation, turn);
                }
            };
            // No thread to be had: the next stale scrape tries again (the turn was
            // given back with the closure).
            if let Err(e) = state.cache.in_background(job) {
                tracing::warn!(error = %e, "cannot start the /metrics encoding thread");
            }
            body
        }
        Lookup::Empty => state
            .cache
            .get(state.exposition(), generation, format, gzip),
    }
}

/// Routing without hyper's body type, for unit tests.
pub fn route(
    method: &Method,
    path: &str,
    accept: Option<&str>,
    gzip: bool,
    state: &Arc<ServerState>,
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
        let body = metrics_body(state, format, gzip);
        let mut r = Response::new(ResponseBody::from(body));
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
        *resp.body_mut() = ResponseBody::default();
    }
    resp
}

fn text(status: StatusCode, body: &str) -> Resp {
    let mut r = Response::new(ResponseBody::from(Bytes::from(body.to_owned())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn html(body: String) -> Resp {
    let mut r = Response::new(ResponseBody::from(Bytes::from(body)));
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
mod serve_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::ReportKind;

    fn state() -> ServerState {
        let store = Arc::new(Store::new([(
            "t<1>".to_owned(),
            ReportKind::named("user_registration_details"),
        )]));
        ServerState {
            store,
            telemetry_path: "/metrics".into(),
            shard: crate::shard::Shard::new(1, 3).unwrap(),
            ..ServerState::default()
        }
    }

    #[test]
    fn routes() {
        let s = Arc::new(state());
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
