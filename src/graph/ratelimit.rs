//! The client-side limits of the Graph reports service, each a sliding window of
//! [`WINDOW`] (graph-api.md §7.7, §13.1):
//!
//! - per (app, tenant): "5 requests per 10 seconds per app per tenant"
//!   (`max_requests_per_10s`);
//! - per app: 122 requests per 10 seconds across all tenants
//!   (`app_max_requests_per_10s`), one limiter per app identity (client ID and cloud;
//!   for a managed identity the identity), shared by every tenant that uses it.
//!
//! Pacing ourselves at those limits walks a big tenant without drawing a 429, which
//! Graph often sends without a `Retry-After`.
//!
//! A request passes its limiters in a fixed order, the tenant's first, the shared
//! app's last ([`acquire_all`]): it waits for room in each while holding the ones
//! before, and is recorded in all of them at the same instant, once it may go; it counts
//! there until a window after its response ([`InFlight`]). Every attempt (retries
//! included) passes them.
//!
//! Fairness policy: round-robin across tenants at the shared limiter. Each limiter
//! serves its waiters in arrival order (tokio's mutex is FIFO), and because a tenant
//! holds its own limiter while it waits at the app's, each tenant has at most one
//! request waiting there. So when the app budget is the bottleneck, every tenant with
//! a request ready gets one request per round, in turn: a tenant walking a million
//! users (about a thousand pages) takes one slot per round like a tenant of 2,000
//! users, and the small ones finish their few pages within a few rounds instead of
//! queueing behind the big walk. No tenant can take more than its own
//! `max_requests_per_10s` either, so the big walk gets its own pace back as soon as the
//! others are done.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use tokio::sync::{Mutex, Notify};
use tokio::time::Instant;

use crate::config::{Credential, TenantConfig};

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
///
/// A request counts from when it is sent until a window after its response (or
/// failure): Graph counts it when it arrives, which is after its send and before its
/// response, so however long the request is held back on the way (a loaded machine, a
/// slow network), every window of arrivals holds at most the limit. Counting from the
/// send alone let a request delayed past the margin put one more into Graph's window
/// than the limit (the 429s of BENCHMARKS.md "One app, 1,001 tenants").
#[derive(Debug)]
pub struct RateLimiter {
    limit: usize,
    window: Duration,
    /// What this limiter paces, for its log lines: the tenant ID (empty: not known), or
    /// the app identity of a shared limiter.
    tenant_id: String,
    /// Whether waits over [`LOGGED_WAIT`] are logged at info (a tenant's), or only at
    /// debug (the shared app limiter, where hundreds of tenants wait in turn).
    quiet: bool,
    /// Held while waiting for room, so waiters are served in arrival order (tokio's
    /// mutex is fair) and none is starved.
    queue: Mutex<()>,
    /// The requests in the current window. A plain mutex, never held across an await:
    /// responses settle their entries while a waiter holds `queue`.
    sent: StdMutex<Window>,
    /// Woken when a request settles: a window full of requests in flight has no
    /// known end until one is answered.
    settled: Notify,
}

/// The requests a limiter counts, in send order.
#[derive(Debug, Default)]
struct Window {
    entries: VecDeque<Entry>,
    next_id: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    id: u64,
    /// When it was sent, or, once settled, answered.
    at: Instant,
    /// Sent and not yet answered: counts however old.
    in_flight: bool,
}

impl Window {
    /// Drops the answered requests a whole `window` old at `now`.
    fn expire(&mut self, now: Instant, window: Duration) {
        self.entries
            .retain(|e| e.in_flight || now.duration_since(e.at) < window);
    }

    /// When the first answered request leaves the window (`None`: all in flight).
    fn next_expiry(&self, window: Duration) -> Option<Instant> {
        self.entries
            .iter()
            .filter(|e| !e.in_flight)
            .map(|e| e.at + window)
            .min()
    }

    fn push(&mut self, now: Instant) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.entries.push_back(Entry {
            id,
            at: now,
            in_flight: true,
        });
        id
    }
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
            quiet: false,
            queue: Mutex::new(()),
            sent: StdMutex::new(Window::default()),
            settled: Notify::new(),
        }
    }

    /// Names the tenant (ID) this limiter paces in its log lines.
    pub fn for_tenant(mut self, tenant_id: impl Into<String>) -> Self {
        self.tenant_id = tenant_id.into();
        self
    }

    /// A limiter shared by the tenants of app `identity`: its waits are logged at debug.
    pub fn for_app(mut self, identity: impl Into<String>) -> Self {
        self.tenant_id = identity.into();
        self.quiet = true;
        self
    }

    /// The request limit per window.
    pub fn limit(&self) -> u32 {
        self.limit as u32
    }

    /// Waits until one more request may be sent, and records it as sent and answered
    /// now (for a caller without a response to wait for; a request's sender uses
    /// [`acquire_all`] and drops the [`InFlight`] when answered). Returns how long it
    /// waited.
    pub async fn acquire(&self) -> Duration {
        acquire_all(&[self]).await.0[0]
    }

    fn window(&self) -> std::sync::MutexGuard<'_, Window> {
        self.sent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits, holding the queue, until the window has room for one more request.
    async fn wait_for_room(&self) {
        loop {
            // Registered before looking, so a settle after the look still wakes us.
            let settled = self.settled.notified();
            let now = Instant::now();
            let until = {
                let mut w = self.window();
                w.expire(now, self.window);
                if w.entries.len() < self.limit {
                    return;
                }
                w.next_expiry(self.window)
            };
            match until {
                Some(until) => {
                    let wait = until.duration_since(now);
                    if wait > LOGGED_WAIT && !self.quiet {
                        tracing::info!(
                            tenant_id = %self.tenant_id,
                            max_requests_per_10s = self.limit,
                            "waiting {:.1} s for Graph's pace",
                            wait.as_secs_f64()
                        );
                    } else if wait > LOGGED_WAIT {
                        tracing::debug!(
                            app = %self.tenant_id,
                            app_max_requests_per_10s = self.limit,
                            "waiting {:.1} s for the app's budget",
                            wait.as_secs_f64()
                        );
                    }
                    tokio::select! {
                        () = tokio::time::sleep_until(until) => {}
                        () = settled => {}
                    }
                }
                None => settled.await,
            }
        }
    }

    /// Request `id` was answered (or failed) at `now`: it counts a window from now.
    fn settle(&self, id: u64, now: Instant) {
        {
            let mut w = self.window();
            if let Some(e) = w.entries.iter_mut().find(|e| e.id == id) {
                e.at = now;
                e.in_flight = false;
            }
        }
        self.settled.notify_waiters();
    }
}

/// A request recorded as sent in its limiters ([`acquire_all`]); dropping it records it
/// as answered (do so once the response's head is in, or the request failed): it then
/// counts a window from that moment.
#[derive(Debug)]
#[must_use = "dropping it at once counts the request from its send only"]
pub struct InFlight<'a> {
    entries: Vec<(&'a RateLimiter, u64)>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let now = Instant::now();
        for (limiter, id) in &self.entries {
            limiter.settle(*id, now);
        }
    }
}

/// Waits until one more request fits every one of `limiters`, then records it in all
/// of them at the same instant, in flight until the returned [`InFlight`] is dropped.
/// Returns how long it waited at each, in order.
///
/// The limiters are taken in the order given and each is held while waiting at the
/// next, so every caller must give them in the same order (the most specific first,
/// a limiter shared by many tenants last): then no two callers wait for each other in
/// a cycle, and a tenant has at most one request waiting at a shared limiter, which
/// makes its FIFO a round-robin across tenants (the module header).
pub async fn acquire_all<'a>(limiters: &[&'a RateLimiter]) -> (Vec<Duration>, InFlight<'a>) {
    let mut waits = Vec::with_capacity(limiters.len());
    let mut held = Vec::with_capacity(limiters.len());
    for limiter in limiters {
        let started = Instant::now();
        let turn = limiter.queue.lock().await;
        limiter.wait_for_room().await;
        waits.push(started.elapsed());
        held.push(turn);
    }
    // Only the queue's holder adds to a window, and time and answers only empty one:
    // every window still has the room found above.
    let now = Instant::now();
    let entries = limiters
        .iter()
        .map(|limiter| (*limiter, limiter.window().push(now)))
        .collect();
    drop(held);
    (waits, InFlight { entries })
}

/// Limiters shared by every configured tenant entry that uses the same app in the same
/// tenant: Graph counts per (app, tenant), not per config entry.
#[derive(Debug, Default)]
pub struct RateLimiters {
    by_key: StdMutex<HashMap<(String, String), Arc<RateLimiter>>>,
    /// The per-app limiters, by [`app_identity`].
    by_app: StdMutex<HashMap<String, Arc<RateLimiter>>>,
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

    /// The limiter shared by every tenant of app `identity` (see [`app_identity`]),
    /// created with `limit` on first use (like [`get`](Self::get), the stricter limit
    /// wins).
    pub fn app(&self, identity: &str, limit: u32) -> Arc<RateLimiter> {
        let mut map = self.by_app.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map
            .entry(identity.to_owned())
            .or_insert_with(|| Arc::new(RateLimiter::new(limit).for_app(identity)));
        if limit < entry.limit() {
            *entry = Arc::new(RateLimiter::new(limit).for_app(identity));
        }
        entry.clone()
    }
}

/// Who Graph counts the per-app budget against (§13.1): the app registration's client
/// ID in its cloud; for a managed identity the identity itself (a user-assigned one's
/// client ID, or the host's system-assigned identity at its endpoint). Lowercase, so
/// spellings of one ID share a limiter. No secret is part of it.
pub fn app_identity(tenant: &TenantConfig) -> String {
    let who = match &tenant.credential {
        Credential::ManagedIdentity(mi) => match &mi.client_id {
            Some(id) => format!("managed-identity:{id}"),
            None => format!("managed-identity:system@{}", mi.endpoint),
        },
        _ => tenant.client_id.clone(),
    };
    format!("{}/{who}", tenant.cloud).to_ascii_lowercase()
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

    /// Whether any `window` of `arrivals` (sorted; a server's sliding window, as the
    /// simulator counts) holds more than `limit`.
    fn over_limit(arrivals: &[Duration], limit: usize, window: Duration) -> bool {
        arrivals
            .iter()
            .enumerate()
            .skip(limit)
            .any(|(i, t)| *t - arrivals[i - limit] < window)
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_delayed_on_the_way_still_fits_the_servers_window() {
        // Limit 2 per 10 s. The first request is held back 500 ms between its send and
        // its arrival (a loaded machine): the server counts it from 0.5 s. Counted from
        // its send, the fourth request would go at 10 s and arrive with the first, the
        // third and itself in the server's window (0.5 s, 10 s, 10 s): one too many.
        let ten = Duration::from_secs(10);
        let limiter = Arc::new(RateLimiter::with_window(2, ten));
        let t0 = Instant::now();
        let arrivals = Arc::new(StdMutex::new(Vec::new()));
        let send = |delay: Duration| {
            let (limiter, arrivals) = (limiter.clone(), arrivals.clone());
            async move {
                let (_, in_flight) = acquire_all(&[&*limiter]).await;
                tokio::time::sleep(delay).await;
                arrivals.lock().unwrap().push(t0.elapsed());
                // Answered at once after arriving.
                drop(in_flight);
            }
        };
        let slow = tokio::spawn(send(Duration::from_millis(500)));
        tokio::task::yield_now().await;
        send(Duration::ZERO).await;
        send(Duration::ZERO).await;
        send(Duration::ZERO).await;
        slow.await.unwrap();
        let mut arrivals = arrivals.lock().unwrap().clone();
        arrivals.sort_unstable();
        assert!(!over_limit(&arrivals, 2, ten), "{arrivals:?}");
        // No slower than needed: the fourth goes as the delayed first leaves the window.
        assert_eq!(arrivals.last(), Some(&Duration::from_millis(10_500)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_counts_however_long_it_takes() {
        let ten = Duration::from_secs(10);
        let limiter = RateLimiter::with_window(1, ten);
        let t0 = Instant::now();
        let (_, in_flight) = acquire_all(&[&limiter]).await;
        let next = async {
            limiter.acquire().await;
            t0.elapsed()
        };
        let answer = async {
            // Answered after 25 s, well past its send's window.
            tokio::time::sleep(Duration::from_secs(25)).await;
            drop(in_flight);
        };
        let (sent_at, ()) = tokio::join!(next, answer);
        assert_eq!(
            sent_at,
            Duration::from_secs(35),
            "a window after the answer"
        );
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

    /// Send times (s from the start) of `n` requests through `limiters` each.
    async fn sends(limiters: Vec<Arc<RateLimiter>>, n: usize, t0: Instant) -> Vec<u64> {
        let mut at = Vec::new();
        for _ in 0..n {
            let ls: Vec<&RateLimiter> = limiters.iter().map(|l| &**l).collect();
            let _ = acquire_all(&ls).await;
            at.push(Instant::now().duration_since(t0).as_secs());
        }
        at
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_waits_for_every_limiter_and_counts_in_all() {
        let ten = Duration::from_secs(10);
        let app = Arc::new(RateLimiter::with_window(3, ten));
        let (a, b) = (
            Arc::new(RateLimiter::with_window(2, ten)),
            Arc::new(RateLimiter::with_window(2, ten)),
        );
        let t0 = Instant::now();
        let ta = tokio::spawn(sends(vec![a.clone(), app.clone()], 4, t0));
        let tb = tokio::spawn(sends(vec![b.clone(), app.clone()], 4, t0));
        let (sa, sb) = (ta.await.unwrap(), tb.await.unwrap());
        let mut all: Vec<u64> = sa.iter().chain(&sb).copied().collect();
        all.sort_unstable();
        // 8 requests at 3 per 10 s across both, 2 per 10 s each.
        for (i, t) in all.iter().enumerate().skip(3) {
            assert!(*t >= all[i - 3] + 10, "app window broken: {all:?}");
        }
        for s in [&sa, &sb] {
            for (i, t) in s.iter().enumerate().skip(2) {
                assert!(*t >= s[i - 2] + 10, "tenant window broken: {s:?}");
            }
        }
        assert_eq!(
            all.last(),
            Some(&20),
            "no slower than the app's pace: {all:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_shared_limiter_serves_tenants_in_turn() {
        // One big tenant walking with three reports at once, four small tenants with two
        // requests each, one app of 2 per 10 s. Round-robin by tenant lets every small
        // tenant finish by the sixth window (50 s): the big tenant takes one slot per
        // round, not one per report.
        let ten = Duration::from_secs(10);
        let app = Arc::new(RateLimiter::with_window(2, ten));
        let big = Arc::new(RateLimiter::with_window(100, ten));
        let t0 = Instant::now();
        let mut walks = Vec::new();
        for _ in 0..3 {
            walks.push(tokio::spawn(sends(vec![big.clone(), app.clone()], 10, t0)));
        }
        let mut small = Vec::new();
        for _ in 0..4 {
            let own = Arc::new(RateLimiter::with_window(5, ten));
            small.push(tokio::spawn(sends(vec![own, app.clone()], 2, t0)));
        }
        let mut small_done = Vec::new();
        for s in small {
            small_done.push(*s.await.unwrap().last().unwrap());
        }
        assert!(small_done.iter().all(|t| *t <= 50), "{small_done:?}");
        let mut big_done = 0;
        for w in walks {
            big_done = big_done.max(*w.await.unwrap().last().unwrap());
        }
        // 38 requests at 2 per 10 s: the big walk still uses every slot left.
        assert_eq!(big_done, 180);
    }

    #[test]
    fn one_app_limiter_per_client_id_and_cloud() {
        use crate::config::Config;
        let config = Config::from_toml(
            r#"
client_secret = "sekrit-value"
[[tenants]]
name = "a"
tenant_id = "a.onmicrosoft.com"
client_id = "APP-1"
[[tenants]]
name = "b"
tenant_id = "b.onmicrosoft.com"
client_id = "app-1"
[[tenants]]
name = "c"
tenant_id = "c.onmicrosoft.com"
client_id = "app-2"
[[tenants]]
name = "d"
tenant_id = "d.onmicrosoft.us"
client_id = "app-1"
cloud = "usgov"
[[tenants]]
name = "e"
tenant_id = "e.onmicrosoft.com"
auth = "managed_identity"
[[tenants]]
name = "f"
tenant_id = "f.onmicrosoft.com"
auth = "managed_identity"
client_id = "app-1"
"#,
        )
        .unwrap();
        let ids: Vec<String> = config.tenants.iter().map(app_identity).collect();
        assert_eq!(ids[0], ids[1]);
        assert_ne!(ids[0], ids[2]);
        assert_ne!(ids[0], ids[3], "another cloud is another budget");
        assert!(ids[4].contains("system@"), "{}", ids[4]);
        assert_ne!(ids[5], ids[0], "a managed identity is its own app");
        assert!(ids.iter().all(|i| !i.contains("sekrit")), "{ids:?}");
        let l = RateLimiters::default();
        let (a, b) = (l.app(&ids[0], 122), l.app(&ids[1], 122));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &l.app(&ids[2], 122)));
        assert_eq!(a.limit(), 122);
    }
}
