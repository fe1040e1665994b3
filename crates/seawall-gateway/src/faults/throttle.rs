//! A response body paced to a rate (a client-facing fault's `throttle`). Frames are cut
//! into slices of 1/20 s worth of bytes (`Bytes::split_to`, no copy) and each slice waits
//! until the bytes before it fit the rate, measured from the first slice: a client sees a
//! steady trickle rather than bursts, and the total time is size / rate.

use std::{
    pin::Pin,
    task::{Context, Poll, ready},
    time::Duration,
};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use seawall_core::BoxError;
use tokio::time::{Instant, Sleep};

use crate::body::Outgoing;

/// `inner`, at most `bytes_per_second` fast.
pub struct Throttled {
    inner: Pin<Box<Outgoing>>,
    rate: u64,
    /// What is left of the frame being sliced.
    pending: Option<Bytes>,
    sent: u64,
    started: Option<Instant>,
    timer: Pin<Box<Sleep>>,
    waiting: bool,
}

impl Throttled {
    /// Paces `inner` at `bytes_per_second` (at least 1).
    pub fn new(inner: Outgoing, bytes_per_second: u64) -> Self {
        Self {
            inner: Box::pin(inner),
            rate: bytes_per_second.max(1),
            pending: None,
            sent: 0,
            started: None,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            waiting: false,
        }
    }

    fn slice(&self) -> usize {
        usize::try_from(self.rate / 20).unwrap_or(usize::MAX).max(1)
    }
}

impl HttpBody for Throttled {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if this.waiting {
                ready!(this.timer.as_mut().poll(cx));
                this.waiting = false;
            }
            let slice = this.slice();
            if let Some(buf) = this.pending.as_mut() {
                let n = buf.len().min(slice);
                let chunk = buf.split_to(n);
                if buf.is_empty() {
                    this.pending = None;
                }
                let started = *this.started.get_or_insert_with(Instant::now);
                this.sent += n as u64;
                // The next slice may go once the bytes sent so far fit the rate.
                let due = started + Duration::from_secs_f64(this.sent as f64 / this.rate as f64);
                if due > Instant::now() {
                    this.timer.as_mut().reset(due);
                    this.waiting = true;
                }
                return Poll::Ready(Some(Ok(Frame::data(chunk))));
            }
            match ready!(this.inner.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) if data.is_empty() => continue,
                    Ok(data) => this.pending = Some(data),
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                other => return Poll::Ready(other),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.inner.size_hint();
        let left = self.pending.as_ref().map_or(0, |b| b.len() as u64);
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + left);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + left);
        }
        hint
    }
}
