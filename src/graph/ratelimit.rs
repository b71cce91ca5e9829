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

/// A sliding-window limiter: [`acquire`](Self::acquire) returns when sending one more
/// request keeps every window of [`WINDOW`] + [`SAFETY_MARGIN`] at or under the limit.
#[derive(Debug)]
pub struct RateLimiter {
    limit: usize,
    window: Duration,
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
            sent: Mutex::new(VecDeque::new()),
        }
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
            tokio::time::sleep_until(oldest + self.window).await;
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
            .or_insert_with(|| Arc::new(RateLimiter::new(limit)));
        if limit < entry.limit() {
            *entry = Arc::new(RateLimiter::new(limit));
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
