//! Injected failures on the Graph report routes (graph-api.md §7, §11.8): throttling
//! every Nth request (with or without `Retry-After`), a true sliding-window limit per
//! (app, tenant), 5xx bursts, truncated and stalled bodies, token revocation, a foreign
//! or looping `@odata.nextLink`, a page without `value`, and licence loss.
//!
//! The "every Nth" faults count report requests globally across tenants, so a test can
//! predict exactly which request fails; [`FaultPlan::replace`] restarts the count.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use super::{Faults, RateLimit};

/// A failure answered instead of the page.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Injected {
    /// 429 `TooManyRequests`, with `Retry-After` seconds when configured.
    Throttle(Option<f64>),
    /// 503 `ServiceUnavailable` or 504 `GatewayTimeout`.
    ServerError(u16),
}

/// What happens to the page of a request that is served.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct PageFaults {
    /// The body is cut off halfway (the connection closes before `Content-Length`).
    pub(crate) truncate: bool,
    /// The body stalls halfway for this long.
    pub(crate) stall: Option<Duration>,
    /// `value` is left out.
    pub(crate) missing_value: bool,
    /// `@odata.nextLink` is the URL of this very request.
    pub(crate) next_link_loop: bool,
    /// `@odata.nextLink` points at this base URL instead of ours.
    pub(crate) foreign_next_link: Option<String>,
}

/// The faults decided for one report request.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Decision {
    /// Answer with this error before authenticating.
    pub(crate) injected: Option<Injected>,
    /// Revoke every issued token before authenticating (the request then gets a 401).
    pub(crate) revoke_tokens: bool,
    /// The tenant has lost its licence (403).
    pub(crate) licence_lost: bool,
    /// Changes to the page, if one is served.
    pub(crate) page: PageFaults,
}

/// Counts report requests and decides which fail.
#[derive(Debug)]
pub(crate) struct FaultPlan {
    faults: RwLock<Faults>,
    seen: AtomicU64,
    /// Directory requests seen (counted apart from the report requests).
    directory_seen: AtomicU64,
    /// Accepted request times per tenant index, for the sliding-window limit.
    windows: Mutex<HashMap<usize, VecDeque<Instant>>>,
    /// Accepted request times per app (client ID, lowercase), for the per-app limit.
    app_windows: Mutex<HashMap<String, VecDeque<Instant>>>,
    /// The most requests an app had in one window.
    app_peak: AtomicU64,
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limited {
    /// The tenant's (per app per tenant).
    Tenant,
    /// The app's, across its tenants.
    App,
}

impl FaultPlan {
    pub(crate) fn new(faults: Faults) -> Self {
        Self {
            faults: RwLock::new(faults),
            seen: AtomicU64::new(0),
            directory_seen: AtomicU64::new(0),
            windows: Mutex::new(HashMap::new()),
            app_windows: Mutex::new(HashMap::new()),
            app_peak: AtomicU64::new(0),
        }
    }

    /// See [`SimCounters::app_window_peak`](super::SimCounters::app_window_peak).
    pub(crate) fn app_peak(&self) -> u64 {
        self.app_peak.load(Ordering::SeqCst)
    }

    /// Swaps in `faults` and restarts the request count and the windows.
    pub(crate) fn replace(&self, faults: Faults) {
        *self.faults.write().expect("faults poisoned") = faults;
        self.seen.store(0, Ordering::SeqCst);
        self.windows.lock().expect("windows poisoned").clear();
        self.app_windows.lock().expect("windows poisoned").clear();
        self.app_peak.store(0, Ordering::SeqCst);
    }

    /// Called once per report request. Throttling wins over a 5xx on the same request;
    /// an answered error leaves no page to change.
    /// For a directory request: `Some(retry_after)` when it is to be throttled.
    pub(crate) fn directory_throttle(&self) -> Option<Option<f64>> {
        let n = self.directory_seen.fetch_add(1, Ordering::SeqCst) + 1;
        let f = self.faults.read().expect("faults poisoned");
        match f.directory_throttle_every {
            Some(k) if k > 0 && n.is_multiple_of(u64::from(k)) => Some(f.directory_retry_after),
            _ => None,
        }
    }

    pub(crate) fn next(&self) -> Decision {
        let n = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
        let f = self.faults.read().expect("faults poisoned");
        let hits = |every: Option<u32>| matches!(every, Some(k) if k > 0 && n.is_multiple_of(u64::from(k)));
        let injected = if hits(f.throttle_every) {
            Some(Injected::Throttle(f.retry_after))
        } else {
            server_error(n, f.server_error_every, f.server_error_burst)
        };
        let page = if injected.is_some() {
            PageFaults::default()
        } else {
            PageFaults {
                truncate: hits(f.truncate_every),
                stall: hits(f.stall_every).then_some(f.stall),
                missing_value: hits(f.missing_value_every),
                next_link_loop: hits(f.next_link_loop_every),
                foreign_next_link: f.foreign_next_link.clone(),
            }
        };
        Decision {
            injected,
            revoke_tokens: injected.is_none() && hits(f.revoke_tokens_every),
            licence_lost: f.licence_lost_after.is_some_and(|k| n > u64::from(k)),
            page,
        }
    }

    /// The sliding-window limits for tenant `tenant` of app `app`: `Ok` records the
    /// request as accepted by both; `Err` names the limit that refused it and carries
    /// the `Retry-After` to send (`None`: no header) with a 429. Rejected requests do
    /// not count, so a client that waits as told gets through.
    pub(crate) fn admit(&self, tenant: usize, app: &str) -> Result<(), (Limited, Option<f64>)> {
        let (tenant_limit, app_limit) = {
            let f = self.faults.read().expect("faults poisoned");
            (f.rate_limit, f.app_rate_limit)
        };
        if tenant_limit.is_none() && app_limit.is_none() {
            return Ok(());
        }
        let now = Instant::now();
        // Both locks, always in this order, so the two checks and records are one step.
        let mut windows = self.windows.lock().expect("windows poisoned");
        let mut app_windows = self.app_windows.lock().expect("windows poisoned");
        let mut tenant_window = tenant_limit.map(|l| (l, windows.entry(tenant).or_default()));
        let mut app_window = app_limit.map(|l| {
            let key = app.to_ascii_lowercase();
            (l, app_windows.entry(key).or_default())
        });
        for (which, slot) in [
            (Limited::Tenant, tenant_window.as_mut()),
            (Limited::App, app_window.as_mut()),
        ] {
            if let Some((limit, window)) = slot
                && let Err(wait) = room(limit, window, now)
            {
                return Err((which, wait));
            }
        }
        if let Some((_, window)) = tenant_window {
            window.push_back(now);
        }
        if let Some((_, window)) = app_window {
            window.push_back(now);
            self.app_peak
                .fetch_max(window.len() as u64, Ordering::SeqCst);
        }
        Ok(())
    }
}

/// Whether `window` of `limit` has room for one more request at `now` (after dropping
/// what left it); if not, the `Retry-After` to send.
fn room(
    limit: &RateLimit,
    window: &mut VecDeque<Instant>,
    now: Instant,
) -> Result<(), Option<f64>> {
    while window
        .front()
        .is_some_and(|t| now.duration_since(*t) >= limit.window)
    {
        window.pop_front();
    }
    if window.len() < limit.requests.max(1) as usize {
        return Ok(());
    }
    let wait = (window[0] + limit.window).saturating_duration_since(now);
    // Graph sends whole seconds (§7.6); round up so the retry lands after the slot frees.
    Err(limit
        .retry_after
        .then(|| wait.as_secs_f64().ceil().max(1.0)))
}

/// 5xx bursts: with `every` k and `burst` b, the last b requests of every k fail,
/// alternating 503 and 504.
fn server_error(n: u64, every: Option<u32>, burst: u32) -> Option<Injected> {
    let k = u64::from(every.filter(|k| *k > 0)?);
    let b = u64::from(burst.max(1)).min(k);
    let pos = n % k; // 0 is the kth request of the block
    let from_end = if pos == 0 { 0 } else { k - pos };
    (from_end < b).then_some(Injected::ServerError(if from_end % 2 == 0 {
        503
    } else {
        504
    }))
}

impl RateLimit {
    /// Graph's reports limit: `requests` per 10 seconds, with `Retry-After`.
    pub fn per_10s(requests: u32) -> Self {
        Self {
            requests,
            window: Duration::from_secs(10),
            retry_after: true,
        }
    }
}

/// `Retry-After` header value: decimal seconds, shortest form (`2`, `0.2`, `2.128`).
pub(crate) fn retry_after_value(seconds: f64) -> String {
    format!("{}", seconds.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nth() {
        let plan = FaultPlan::new(Faults {
            throttle_every: Some(3),
            retry_after: Some(0.2),
            server_error_every: Some(2),
            ..Faults::default()
        });
        let got: Vec<_> = (0..6).map(|_| plan.next().injected).collect();
        assert_eq!(
            got,
            vec![
                None,
                Some(Injected::ServerError(503)),
                Some(Injected::Throttle(Some(0.2))),
                Some(Injected::ServerError(503)),
                None,
                Some(Injected::Throttle(Some(0.2)))
            ]
        );
        assert_eq!(
            FaultPlan::new(Faults {
                throttle_every: Some(0),
                ..Faults::default()
            })
            .next(),
            Decision::default()
        );
        assert_eq!(retry_after_value(10.0), "10");
        assert_eq!(retry_after_value(0.2), "0.2");
    }

    #[test]
    fn bursts_and_page_faults() {
        let got: Vec<_> = (1..=10)
            .map(|n| {
                server_error(n, Some(5), 3).map(|i| match i {
                    Injected::ServerError(s) => s,
                    Injected::Throttle(_) => 0,
                })
            })
            .collect();
        assert_eq!(
            got,
            [
                None,
                None,
                Some(503),
                Some(504),
                Some(503),
                None,
                None,
                Some(503),
                Some(504),
                Some(503)
            ]
        );
        let plan = FaultPlan::new(Faults {
            truncate_every: Some(2),
            revoke_tokens_every: Some(3),
            licence_lost_after: Some(3),
            ..Faults::default()
        });
        let d: Vec<Decision> = (0..4).map(|_| plan.next()).collect();
        assert!(!d[0].page.truncate && d[1].page.truncate && d[3].page.truncate);
        assert!(d[2].revoke_tokens && !d[1].revoke_tokens);
        assert!(!d[2].licence_lost && d[3].licence_lost);
        plan.replace(Faults::default());
        assert_eq!(plan.next(), Decision::default());
    }

    #[test]
    fn sliding_window_admits_n_and_tells_when() {
        let plan = FaultPlan::new(Faults {
            rate_limit: Some(RateLimit {
                requests: 2,
                window: Duration::from_millis(300),
                retry_after: true,
            }),
            ..Faults::default()
        });
        assert_eq!(plan.admit(0, "app"), Ok(()));
        assert_eq!(plan.admit(0, "app"), Ok(()));
        assert_eq!(plan.admit(0, "app"), Err((Limited::Tenant, Some(1.0))));
        assert_eq!(plan.admit(1, "app"), Ok(()), "per tenant");
        std::thread::sleep(Duration::from_millis(350));
        assert_eq!(plan.admit(0, "app"), Ok(()));
    }
}
