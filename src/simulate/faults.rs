//! Injected failures on the Graph report routes: every Nth report request is throttled
//! (429, graph-api.md §7.6) or fails with 503. The count is global across tenants, so a
//! test can predict exactly which request fails.

use std::sync::atomic::{AtomicU64, Ordering};

use super::Faults;

/// The failure to inject into one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Injected {
    /// 429 `TooManyRequests`, with `Retry-After` seconds when configured.
    Throttle(Option<f64>),
    /// 503 `ServiceUnavailable`.
    ServerError,
}

/// Counts report requests and decides which fail.
#[derive(Debug)]
pub(crate) struct FaultPlan {
    faults: Faults,
    seen: AtomicU64,
}

impl FaultPlan {
    pub(crate) fn new(faults: Faults) -> Self {
        Self {
            faults,
            seen: AtomicU64::new(0),
        }
    }

    /// Called once per report request; throttling wins when both faults fall on the
    /// same request.
    pub(crate) fn next(&self) -> Option<Injected> {
        let n = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        let hits = |every: Option<u32>| matches!(every, Some(k) if k > 0 && n.is_multiple_of(u64::from(k)));
        if hits(self.faults.throttle_every) {
            Some(Injected::Throttle(self.faults.retry_after))
        } else if hits(self.faults.server_error_every) {
            Some(Injected::ServerError)
        } else {
            None
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
        });
        let got: Vec<_> = (0..6).map(|_| plan.next()).collect();
        assert_eq!(
            got,
            vec![
                None,
                Some(Injected::ServerError),
                Some(Injected::Throttle(Some(0.2))),
                Some(Injected::ServerError),
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
            None
        );
        assert_eq!(retry_after_value(10.0), "10");
        assert_eq!(retry_after_value(0.2), "0.2");
    }
}
