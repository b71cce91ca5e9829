//! `--web.max-requests`: how many requests to the metrics path are answered at once,
//! and the response body that holds a request's permit until it is written.
//!
//! As in node_exporter (promhttp's `MaxRequestsInFlight`), the limit applies to the
//! metrics path, after authentication, and a request holds its permit until its body
//! is written (here: until the last [`CHUNK`] of it is handed to hyper, whose write
//! queue takes the next chunk only when the previous one is nearly sent). Each
//! response in flight can keep one encoding of the body alive, so the limit also
//! bounds that memory. A request past the limit gets 429, unless a permit holder
//! whose client stopped reading can be closed to make room.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::connections::{Conn, Connections};
use super::metrics::ServerMetrics;

/// Bytes of a body handed to hyper at a time.
const CHUNK: usize = 256 << 10;
/// How long a request past the limit waits for the permit of a stalled request it had
/// closed.
const PERMIT_WAIT: Duration = Duration::from_millis(200);

/// The limit on requests in flight.
pub(super) struct RequestLimit {
    max: usize,
    permits: Option<Arc<Semaphore>>,
    conns: Arc<Connections>,
    metrics: ServerMetrics,
}

/// A request past the limit.
#[derive(Debug)]
pub(super) struct Refused;

impl RequestLimit {
    /// At most `max` requests in flight (0: no limit).
    pub(super) fn new(max: usize, conns: Arc<Connections>, metrics: ServerMetrics) -> Self {
        Self {
            max,
            permits: (max > 0).then(|| Arc::new(Semaphore::new(max))),
            conns,
            metrics,
        }
    }

    /// The limit (0: none).
    pub(super) fn max(&self) -> usize {
        self.max
    }

    /// A permit for a request on `conn`, or [`Refused`] (counted) past the limit.
    pub(super) async fn admit(&self, conn: &Arc<Conn>) -> Result<Permit, Refused> {
        let permit = match &self.permits {
            None => None,
            Some(permits) => match permits.clone().try_acquire_owned() {
                Ok(p) => Some(p),
                Err(_) => {
                    let mut freed = None;
                    if self.conns.evict_stalled_request()
                        && let Ok(Ok(p)) =
                            tokio::time::timeout(PERMIT_WAIT, permits.clone().acquire_owned()).await
                    {
                        freed = Some(p);
                    }
                    if freed.is_none() {
                        self.metrics.refused();
                        return Err(Refused);
                    }
                    freed
                }
            },
        };
        conn.set_holds_permit(true);
        self.metrics.requests_in_flight.inc();
        Ok(Permit {
            _permit: permit,
            conn: conn.clone(),
            in_flight: self.metrics.requests_in_flight.clone(),
        })
    }
}

/// A request in flight; ends when dropped.
pub(super) struct Permit {
    _permit: Option<OwnedSemaphorePermit>,
    conn: Arc<Conn>,
    in_flight: Gauge,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.conn.set_holds_permit(false);
        self.in_flight.dec();
    }
}

/// Every response's body: bytes handed to hyper [`CHUNK`] by chunk, holding a
/// [`Permit`] until the last one is.
#[derive(Default)]
pub struct ResponseBody {
    data: Bytes,
    permit: Option<Permit>,
}

impl ResponseBody {
    /// Keeps `permit` until the body is written.
    pub(super) fn hold(&mut self, permit: Option<Permit>) {
        self.permit = if self.data.is_empty() { None } else { permit };
    }
}

impl From<Bytes> for ResponseBody {
    fn from(data: Bytes) -> Self {
        Self { data, permit: None }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.data.is_empty() {
            this.permit = None;
            return Poll::Ready(None);
        }
        let chunk = this.data.split_to(this.data.len().min(CHUNK));
        if this.data.is_empty() {
            this.permit = None;
        }
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn limit(max: usize) -> (RequestLimit, Arc<Connections>) {
        let conns = Arc::new(Connections::new(
            4,
            Duration::from_secs(1),
            Duration::ZERO,
            ServerMetrics::default(),
        ));
        (
            RequestLimit::new(max, conns.clone(), ServerMetrics::default()),
            conns,
        )
    }

    #[tokio::test]
    async fn past_the_limit_is_refused_and_counted() {
        let (limit, conns) = limit(1);
        let slot = conns.try_admit().unwrap();
        let first = limit.admit(slot.conn()).await.unwrap();
        assert_eq!(limit.metrics.requests_in_flight.get(), 1);
        assert!(limit.admit(slot.conn()).await.is_err());
        let refused = |l: &RequestLimit| {
            l.metrics
                .requests_refused
                .get_or_create(&super::super::metrics::ReasonLabels {
                    reason: "max_requests",
                })
                .get()
        };
        assert_eq!(refused(&limit), 1);
        drop(first);
        assert_eq!(limit.metrics.requests_in_flight.get(), 0);
        assert!(limit.admit(slot.conn()).await.is_ok());
        assert_eq!(refused(&limit), 1);
    }

    #[tokio::test]
    async fn zero_means_no_limit() {
        let (limit, conns) = limit(0);
        let slot = conns.try_admit().unwrap();
        let mut permits = Vec::new();
        for _ in 0..100 {
            permits.push(limit.admit(slot.conn()).await.expect("no limit"));
        }
        assert_eq!(limit.metrics.requests_in_flight.get(), 100);
    }

    #[tokio::test]
    async fn the_body_comes_in_chunks_and_lets_the_permit_go_with_the_last() {
        let (limit, conns) = limit(1);
        let slot = conns.try_admit().unwrap();
        let data = Bytes::from(vec![7u8; CHUNK * 2 + 10]);
        let mut body = ResponseBody::from(data.clone());
        body.hold(Some(limit.admit(slot.conn()).await.unwrap()));
        assert_eq!(body.size_hint().exact(), Some(data.len() as u64));
        let mut got = Vec::new();
        let mut sizes = Vec::new();
        while let Some(frame) = body.frame().await {
            let chunk = frame.unwrap().into_data().unwrap();
            sizes.push(chunk.len());
            got.extend_from_slice(&chunk);
            let held = limit.metrics.requests_in_flight.get();
            assert_eq!(held, i64::from(!body.is_end_stream()), "{sizes:?}");
        }
        assert_eq!(sizes, [CHUNK, CHUNK, 10]);
        assert_eq!(got, data);
        let mut empty = ResponseBody::default();
        empty.hold(Some(limit.admit(slot.conn()).await.unwrap()));
        assert_eq!(
            limit.metrics.requests_in_flight.get(),
            0,
            "an empty body holds nothing"
        );
    }
}
