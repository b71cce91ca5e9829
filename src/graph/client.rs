//! One tenant's Graph client: every request paced by its rate limiters (the (app,
//! tenant) one, then the one the app shares with its other tenants),
//! authenticated, correlated, instrumented, size-bounded and retried (429/503/504
//! honouring `Retry-After`, timeouts, network failures, one token renewal on 401).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};

use super::auth::TokenSource;
use super::error::{ApiError, GraphError};
use super::ratelimit::{RateLimiter, acquire_all};
use crate::config::TenantConfig;
use crate::metrics::{EndpointLabels, ExporterMetrics, RequestLabels, RetryReason};
use crate::util;
use tokio::sync::{Semaphore, SemaphorePermit};

/// At most this many Graph pages are in this process's memory at once, across every
/// tenant: a page counts from its request's send (after the rate limiters admit it)
/// until its body has been read *and* the caller drops it (once folded). That bounds
/// the memory of pages (a 999-row report page is ~0.5 MB) by this, whatever the number
/// of tenants: without it an empty per-app window lets every tenant's first request go
/// at once (610 pages being read together at the start of the 1,001-tenant bench).
///
/// By Little's law the requests in flight are the rate times the latency: the per-app
/// budget of 12.2 requests/s (graph-api.md §13.1) at up to ~2.5 s a page needs ~31, so 32
/// carry the whole budget; a slower Graph is paced by this cap instead of the budget,
/// which only makes the exporter gentler. Callers must not hold a page while they wait
/// for another (the walk drops each page once folded): 32 pages held that way would
/// wait for each other forever.
pub const MAX_PAGES_IN_MEMORY: usize = 32;

/// The permits of [`MAX_PAGES_IN_MEMORY`], shared by every client; FIFO, so the order
/// the rate limiters admitted requests in (round-robin across tenants) is kept.
static PAGES: Semaphore = Semaphore::const_new(MAX_PAGES_IN_MEMORY);

/// Graph pages in memory now: requests sent whose body is not yet dropped (at most
/// [`MAX_PAGES_IN_MEMORY`]).
pub fn pages_in_memory() -> usize {
    MAX_PAGES_IN_MEMORY - PAGES.available_permits()
}

/// The body of a 2xx Graph response. It holds one of the [`MAX_PAGES_IN_MEMORY`] permits
/// until dropped: drop it once folded, and never keep it while waiting for another.
#[derive(Debug)]
pub struct Page {
    body: Bytes,
    _permit: SemaphorePermit<'static>,
}

impl std::ops::Deref for Page {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.body
    }
}

/// Retry and size bounds.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// First backoff step; doubles per attempt (full jitter).
    pub base_delay: Duration,
    /// Largest single wait, including a `Retry-After` Graph asks for.
    pub max_delay: Duration,
    /// Give up when the next wait would pass this much time since the first attempt.
    pub max_elapsed: Duration,
    /// Largest response body accepted.
    pub max_body_bytes: usize,
    /// Whole-request timeout (connect to last body byte): a peer that stalls or trickles
    /// its body is cut off and the request retried as `timeout`.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(120),
            max_elapsed: Duration::from_secs(600),
            // A 999-row page is ~1 MB; 64 MiB leaves room while bounding a broken peer.
            max_body_bytes: 64 << 20,
            // A 999-row report page can take tens of seconds on Graph.
            request_timeout: Duration::from_secs(120),
        }
    }
}

/// A Graph client for one tenant. A clone shares its tokens and limiters.
#[derive(Debug, Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    tenant: String,
    graph_url: String,
    auth: Arc<TokenSource>,
    metrics: ExporterMetrics,
    policy: RetryPolicy,
    /// The limiters every attempt passes, in order, each with its `limiter` label:
    /// the tenant's first (see [`ratelimit::acquire_all`](super::ratelimit::acquire_all)).
    limiters: Vec<(&'static str, Arc<RateLimiter>)>,
}

enum Attempt {
    Done(Page),
    Retry(RetryReason, Option<Duration>, GraphError),
    Fail(GraphError),
}

impl GraphClient {
    /// A client for `tenant`, paced by its own limiter of `max_requests_per_10s` (see
    /// [`with_rate_limiter`](Self::with_rate_limiter) to share one).
    pub fn new(
        http: reqwest::Client,
        tenant: &TenantConfig,
        metrics: ExporterMetrics,
        policy: RetryPolicy,
    ) -> Self {
        Self {
            auth: Arc::new(TokenSource::new(http.clone(), tenant, metrics.clone())),
            http,
            tenant: tenant.name.clone(),
            graph_url: tenant.graph_url.clone(),
            metrics,
            policy,
            limiters: Vec::new(),
        }
        .with_limiter(
            "tenant",
            Arc::new(RateLimiter::new(tenant.max_requests_per_10s).for_tenant(&tenant.tenant_id)),
        )
    }

    /// The client of `tenant`'s delegated-only reports, when it has a delegated sign-in
    /// (`refresh_token_file`): the same pacing (share the limiter), a user's token.
    pub fn delegated(
        http: reqwest::Client,
        tenant: &TenantConfig,
        metrics: ExporterMetrics,
        policy: RetryPolicy,
    ) -> Option<Self> {
        let auth = TokenSource::delegated(http.clone(), tenant, metrics.clone())?;
        Some(Self {
            auth: std::sync::Arc::new(auth),
            ..Self::new(http, tenant, metrics, policy)
        })
    }

    /// Uses `limiter` as the tenant's instead: every config entry of one (app, tenant)
    /// must share one, because Graph counts their requests together.
    pub fn with_rate_limiter(mut self, limiter: Arc<RateLimiter>) -> Self {
        self.limiters[0].1 = limiter;
        self
    }

    /// Adds `limiter` after the ones before: every attempt also waits for it, and the
    /// time it waits there is counted under `label` in
    /// `entra_exporter_limiter_wait_seconds_total` (at 0 from now on). Limiters shared
    /// by more tenants go later.
    pub fn with_limiter(mut self, label: &'static str, limiter: Arc<RateLimiter>) -> Self {
        self.metrics
            .limiter_waited(&self.tenant, label, Duration::ZERO);
        self.limiters.push((label, limiter));
        self
    }

    /// The same client (tokens shared) paced by `limiter` alone, counted under `label`
    /// in `entra_exporter_limiter_wait_seconds_total`: for the directory calls, which
    /// Graph meters apart from the reports and outside the reports' per-app budget
    /// (graph-api.md §13.1.2).
    pub fn paced_by(&self, label: &'static str, limiter: Arc<RateLimiter>) -> Self {
        Self {
            limiters: Vec::new(),
            ..self.clone()
        }
        .with_limiter(label, limiter)
    }

    /// The Graph root requests go to (no trailing slash).
    pub fn graph_url(&self) -> &str {
        &self.graph_url
    }

    /// GETs `url` and returns the body of a 2xx response (see [`Page`]: drop it before
    /// the next request). `endpoint` labels the metrics; `permission` names what a 403
    /// should tell the admin to grant.
    pub async fn get(
        &self,
        url: &str,
        endpoint: &'static str,
        permission: &'static str,
    ) -> Result<Page, GraphError> {
        let started = Instant::now();
        let mut attempts = 0;
        let mut renewed = false;
        loop {
            attempts += 1;
            let token = self.auth.token().await.map_err(GraphError::Token)?;
            let (reason, retry_after, err) = match self
                .attempt(url, endpoint, permission, &token)
                .await
            {
                Attempt::Done(body) => return Ok(body),
                Attempt::Fail(err) => return Err(err),
                Attempt::Retry(RetryReason::TokenExpired, _, err) => {
                    if renewed {
                        return Err(err);
                    }
                    renewed = true;
                    self.auth.invalidate(&token).await;
                    self.metrics.retry(&self.tenant, RetryReason::TokenExpired);
                    tracing::debug!(tenant = %self.tenant, endpoint, "token rejected, renewing once");
                    continue;
                }
                Attempt::Retry(reason, retry_after, err) => (reason, retry_after, err),
            };
            let delay = retry_after
                .unwrap_or_else(|| self.backoff(attempts))
                .min(self.policy.max_delay);
            if attempts >= self.policy.max_attempts
                || started.elapsed() + delay > self.policy.max_elapsed
            {
                return Err(GraphError::RetriesExhausted {
                    attempts,
                    last: Box::new(err),
                });
            }
            self.metrics.retry(&self.tenant, reason);
            tracing::info!(
                tenant = %self.tenant, endpoint, attempt = attempts, reason = reason.label(),
                delay_ms = delay.as_millis() as u64, error = %err, "retrying Graph request"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// Full-jitter exponential backoff: uniform in `[0, min(cap, base·2^(n-1))]`.
    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .policy
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(self.policy.max_delay);
        ceiling.mul_f64(util::random_unit())
    }

    async fn attempt(
        &self,
        url: &str,
        endpoint: &'static str,
        permission: &'static str,
        token: &crate::secret::Secret,
    ) -> Attempt {
        // Every attempt, retries included, counts against Graph's window.
        let limiters: Vec<&RateLimiter> = self.limiters.iter().map(|(_, l)| &**l).collect();
        // Counted in the windows until the response's head is in (or the request fails):
        // Graph counts it on arrival, somewhere between.
        let (waits, in_flight) = acquire_all(&limiters).await;
        for ((label, _), waited) in self.limiters.iter().zip(waits) {
            if !waited.is_zero() {
                self.metrics.limiter_waited(&self.tenant, label, waited);
            }
            if waited > Duration::from_millis(100) {
                tracing::trace!(tenant = %self.tenant, endpoint, limiter = label, waited_ms = waited.as_millis() as u64, "paced by the rate limiter");
            }
        }
        // After the limiters admitted it: their FIFO queues (the round-robin across
        // tenants) decide the order, and the semaphore (FIFO too) keeps it. Time spent
        // here counts in the windows already (early, never late), so Graph's limits are
        // still kept. Given back when the page is dropped, or at once on an error.
        let permit = PAGES
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let started = Instant::now();
        let request_id = util::guid();
        let sent = self
            .http
            .get(url)
            .bearer_auth(token.expose())
            .header("Accept", "application/json")
            // Without it Graph hides enum members added after unknownFutureValue (§1.5).
            .header("Prefer", "include-unknown-enum-members")
            .header("client-request-id", &request_id)
            .send()
            .await;
        drop(in_flight);
        let result = match sent {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let header_id = header(&resp, "request-id");
                let retry_after = header(&resp, "retry-after").and_then(|v| parse_retry_after(&v));
                read_body(resp, self.policy.max_body_bytes)
                    .await
                    .map(|body| (status, header_id, retry_after, body))
            }
            Err(e) => Err(transport_error(&e)),
        };
        let code = match &result {
            Ok((status, ..)) => status.to_string(),
            Err(_) => "error".to_owned(),
        };
        self.record(endpoint, code, started.elapsed());
        match result {
            Ok((status, _, _, body)) if (200..300).contains(&status) => Attempt::Done(Page {
                body,
                _permit: permit,
            }),
            Ok((status, header_id, retry_after, body)) => {
                let error = ApiError::from_response(status, header_id, &body);
                tracing::debug!(
                    tenant = %self.tenant, endpoint, status, code = %error.code,
                    request_id = error.request_id.as_deref().unwrap_or(""),
                    client_request_id = %request_id, "Graph error response"
                );
                let err = GraphError::Api { error, permission };
                match status {
                    401 => Attempt::Retry(RetryReason::TokenExpired, None, err),
                    429 => Attempt::Retry(RetryReason::Throttled, retry_after, err),
                    503 | 504 => Attempt::Retry(RetryReason::ServerError, retry_after, err),
                    _ => Attempt::Fail(err),
                }
            }
            Err(err @ GraphError::Timeout) => Attempt::Retry(RetryReason::Timeout, None, err),
            Err(err @ GraphError::Transport(_)) => Attempt::Retry(RetryReason::Network, None, err),
            Err(err) => Attempt::Fail(err),
        }
    }

    fn record(&self, endpoint: &str, code: String, elapsed: Duration) {
        self.metrics
            .graph_requests
            .get_or_create(&RequestLabels {
                tenant: self.tenant.clone(),
                endpoint: endpoint.to_owned(),
                code,
            })
            .inc();
        self.metrics
            .graph_request_duration
            .get_or_create(&EndpointLabels {
                tenant: self.tenant.clone(),
                endpoint: endpoint.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn read_body(mut resp: reqwest::Response, max: usize) -> Result<Bytes, GraphError> {
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(GraphError::BodyTooLarge(max));
    }
    let mut buf =
        BytesMut::with_capacity(resp.content_length().unwrap_or(64 << 10).min(max as u64) as usize);
    while let Some(chunk) = resp.chunk().await.map_err(|e| transport_error(&e))? {
        if buf.len() + chunk.len() > max {
            return Err(GraphError::BodyTooLarge(max));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

fn transport_error(e: &reqwest::Error) -> GraphError {
    if e.is_timeout() {
        return GraphError::Timeout;
    }
    GraphError::Transport(util::error_chain(e))
}

/// `Retry-After` as seconds (fractional allowed, graph-api.md §7.6) or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("10"), Some(Duration::from_secs(10)));
        assert_eq!(
            parse_retry_after(" 2.128 "),
            Some(Duration::from_millis(2128))
        );
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("soon"), None);
        let future = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let d = parse_retry_after(&future).unwrap();
        assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(Duration::ZERO)
        );
    }
}
