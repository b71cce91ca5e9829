//! Response bodies as the faults deliver them: whole, cut off halfway (the connection
//! closes before the declared `Content-Length`), or stalled halfway.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use super::server::Delivery;

/// A body sent in up to two frames with an optional pause or failure between them.
pub(crate) struct SimBody {
    total: u64,
    first: Option<Bytes>,
    rest: Option<Bytes>,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Fail after the first frame: hyper then aborts the connection mid-body.
    cut: bool,
}

impl SimBody {
    pub(crate) fn new(body: Bytes, delivery: Delivery) -> Self {
        let total = body.len() as u64;
        if delivery == Delivery::Whole || body.len() < 2 {
            return Self {
                total,
                first: Some(body).filter(|b| !b.is_empty()),
                rest: None,
                pause: None,
                cut: false,
            };
        }
        let mut first = body;
        let rest = first.split_off(first.len() / 2);
        let (pause, cut) = match delivery {
            Delivery::Stalled(d) => (d, false),
            // A short pause lets hyper flush the head and the first half before the cut;
            // failing at once would drop the whole response unsent.
            _ => (Duration::from_millis(20), true),
        };
        let pause = Some(Box::pin(tokio::time::sleep(pause)));
        Self {
            total,
            first: Some(first),
            rest: Some(rest),
            pause,
            cut,
        }
    }
}

impl Body for SimBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        if let Some(pause) = self.pause.as_mut() {
            if pause.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.pause = None;
        }
        if self.cut {
            self.cut = false;
            self.rest = None;
            return Poll::Ready(Some(Err(std::io::Error::other(
                "simulated fault: body cut off",
            ))));
        }
        Poll::Ready(self.rest.take().map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rest.is_none() && !self.cut
    }

    fn size_hint(&self) -> SizeHint {
        // The declared length is the whole body's, also when it will be cut off.
        SizeHint::with_exact(self.total)
    }
}
