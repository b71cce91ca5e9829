//! The client-side limit of the Graph reports service: at most N requests in any
//! sliding 10-second window per (app, tenant) (graph-api.md §7.7: "5 requests per 10
//! seconds per app per tenant"). Pacing ourselves at that limit walks a big tenant
//! without drawing a 429, which Graph often sends without a `Retry-After`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// The window Graph counts requests in.
pub const WINDOW: Duration = Duration::from_secs(10);

/// Added to the window: a request we send at t arrives at Graph a little later, and
/// network jitter can bring two requests' arrivals closer together than their sends.
/// 150 ms costs 1.5% of the pace and keeps the server-side window satisfied.
pub const SAFETY_MARGIN: Duration = Duration::from_millis(150);

/// Waits for the pace longer than this are logged at info: a refresh is then visibly
/// held back by `max_requests_per_10s`. Shorter ones are routine and stay quiet.
pub const LOGGED_WAIT: Duration = Duration::from_secs(1);

/// A sliding-window limiter: [`acquire`](Self::acquire) returns when sending one more
/// request keeps every window of [`WINDOW`] + [`SAFETY_MARGIN`] at or under the limit.
#[derive(Debug)]
pub struct RateLimiter {
    limit: usize,
    window: Duration,
    /// The tenant ID this limiter paces, for its log lines (empty: not known).
    tenant_id: String,
    /// Send times of the requests in the current window, oldest first. The async mutex
    /// is held while waiting, so waiters are served in arrival order (tokio's mutex is
    /// fair) and none is starved.
    sent: Mutex<VecDeque<Instant>>,
}

impl RateLimiter {
    /// At most `limit` requests per [`WINDOW`] (plus the margin).
    pub fn new(limit: u32) -> Self {
        Self::with_window(limit, WINDOW + SAFETY_MARGIN)
    }

    /// At most `limit` requests in any `window`.
    pub fn with_window(limit: u32, window: Duration) -> Self {
        Self {
            limit: limit.max(1) as usize,
            window,
            tenant_id: String::new(),
            sent: Mutex::new(VecDeque::new()),
        }
    }

    /// Names the tenant (ID) this limiter paces in its log lines.
    pub fn for_tenant(mut self, tenant_id: impl Into<String>) -> Self {
        self.tenant_id = tenant_id.into();
        self
    }

    /// The request limit per window.
    pub fn limit(&self) -> u32 {
        self.limit as u32
    }

    /// Waits until one more request may be sent, and records it as sent now. Returns how
    /// long it waited.
    pub async fn acquire(&self) -> Duration {
        let started = Instant::now();
        let mut sent = self.sent.lock().await;
        loop {
            let now = Instant::now();
            while sent
                .front()
                .is_some_and(|t| now.duration_since(*t) >= self.window)
            {
                sent.pop_front();
            }
            if sent.len() < self.limit {
                sent.push_back(now);
                return now.duration_since(started);
            }
            let oldest = *sent.front().expect("the window is full, so not empty");
            let until = oldest + self.window;
            let wait = until.duration_since(now);
            if wait > LOGGED_WAIT {
                tracing::info!(
                    tenant_id = %self.tenant_id,
                    max_requests_per_10s = self.limit,
                    "waiting {:.1} s for Graph's pace",
                    wait.as_secs_f64()
                );
            }
            tokio::time::sleep_until(until).await;
        }
    }
}

/// Limiters shared by every configured tenant entry that uses the same app in the same
/// tenant: Graph counts per (app, tenant), not per config entry.
#[derive(Debug, Default)]
pub struct RateLimiters {
    by_key: StdMutex<HashMap<(String, String), Arc<RateLimiter>>>,
}

impl RateLimiters {
    /// The limiter for (`tenant_id`, `client_id`), created with `limit` on first use
    /// (a later, different limit for the same pair keeps the stricter one).
    pub fn get(&self, tenant_id: &str, client_id: &str, limit: u32) -> Arc<RateLimiter> {
        let key = (
            tenant_id.to_ascii_lowercase(),
            client_id.to_ascii_lowercase(),
        );
        let mut map = self.by_key.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map
            .entry(key)
            .or_insert_with(|| Arc::new(RateLimiter::new(limit).for_tenant(tenant_id)));
        if limit < entry.limit() {
            *entry = Arc::new(RateLimiter::new(limit).for_tenant(tenant_id));
        }
        entry.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn at_most_n_in_any_window_and_no_slower() {
        let limiter = Arc::new(RateLimiter::with_window(5, Duration::from_secs(10)));
        let t0 = Instant::now();
        let mut sends = Vec::new();
        for _ in 0..16 {
            limiter.acquire().await;
            sends.push(Instant::now().duration_since(t0));
        }
        // 5 at once, then 5 more as each of the first leaves the window.
        let secs: Vec<u64> = sends.iter().map(|d| d.as_secs()).collect();
        assert_eq!(
            secs,
            [0, 0, 0, 0, 0, 10, 10, 10, 10, 10, 20, 20, 20, 20, 20, 30]
        );
        for (i, t) in sends.iter().enumerate().skip(5) {
            assert!(*t - sends[i - 5] >= Duration::from_secs(10));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_waiters_share_the_budget() {
        let limiter = Arc::new(RateLimiter::with_window(2, Duration::from_secs(10)));
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let l = limiter.clone();
            tasks.push(tokio::spawn(async move {
                l.acquire().await;
                Instant::now().duration_since(t0).as_secs()
            }));
        }
        let mut got = Vec::new();
        for t in tasks {
            got.push(t.await.unwrap());
        }
        got.sort_unstable();
        assert_eq!(got, [0, 0, 10, 10, 20, 20]);
    }

    /// The info lines logged while `f` runs on this thread.
    async fn info_lines<F: std::future::Future<Output = ()>>(f: F) -> String {
        #[derive(Clone, Default)]
        struct Sink(Arc<StdMutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        // A current-thread runtime: the whole future runs under this default.
        let _guard = tracing::subscriber::set_default(subscriber);
        f.await;
        String::from_utf8(sink.0.lock().unwrap().clone()).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn waits_over_a_second_are_logged_with_the_limit_and_tenant() {
        let logs = info_lines(async {
            let limiter = RateLimiter::with_window(2, Duration::from_secs(10)).for_tenant("t-1");
            for _ in 0..3 {
                limiter.acquire().await;
            }
        })
        .await;
        let lines: Vec<&str> = logs.lines().collect();
        assert_eq!(lines.len(), 1, "{logs}");
        assert!(lines[0].contains(" INFO "), "{logs}");
        assert!(
            lines[0].contains("waiting 10.0 s for Graph's pace"),
            "{logs}"
        );
        assert!(lines[0].contains("tenant_id=t-1"), "{logs}");
        assert!(lines[0].contains("max_requests_per_10s=2"), "{logs}");
    }

    #[tokio::test(start_paused = true)]
    async fn waits_of_a_second_or_less_stay_quiet() {
        let logs = info_lines(async {
            let limiter = RateLimiter::with_window(1, LOGGED_WAIT);
            let t0 = Instant::now();
            for _ in 0..3 {
                limiter.acquire().await;
            }
            // It did wait, twice, a second each.
            assert_eq!(t0.elapsed(), 2 * LOGGED_WAIT);
        })
        .await;
        assert_eq!(logs, "");
    }

    #[test]
    fn one_limiter_per_app_and_tenant() {
        let l = RateLimiters::default();
        let a = l.get("Contoso.onmicrosoft.com", "app", 5);
        let b = l.get("contoso.onmicrosoft.com", "APP", 5);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(
            &a,
            &l.get("contoso.onmicrosoft.com", "other", 5)
        ));
        assert_eq!(l.get("contoso.onmicrosoft.com", "app", 3).limit(), 3);
        assert_eq!(l.get("contoso.onmicrosoft.com", "app", 9).limit(), 3);
    }
}
