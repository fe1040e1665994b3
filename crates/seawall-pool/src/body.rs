//! [`PooledBody`]: the upstream response body, which carries its connection.
//!
//! HTTP/1 can carry the next request only after this response is fully read, so the
//! connection rides along with the body: at end-of-stream it is released to the pool,
//! and if the body is dropped before the end it is closed (reason `body_incomplete`),
//! because the unread rest of the response would be read as the next response.
//!
//! On HTTP/2 the body carries its *stream*: it counts against the connection's stream
//! limit until the body ends or is dropped (hyper then resets the stream); the connection
//! itself is shared and stays open either way.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::checkout::Lease;
use crate::metrics::CloseReason;
use crate::multiplex::H2Stream;

/// What the body holds on to.
enum Held {
    H1(Lease),
    H2(H2Stream),
}

/// An upstream response body that returns its connection to the pool at end-of-stream.
pub struct PooledBody {
    inner: Incoming,
    /// `Some` until the connection is released (end-of-stream) or given up (error).
    lease: Option<Held>,
}

impl PooledBody {
    pub(crate) fn new(inner: Incoming, lease: Lease) -> Self {
        Self {
            inner,
            lease: Some(Held::H1(lease)),
        }
    }

    pub(crate) fn h2(inner: Incoming, stream: H2Stream) -> Self {
        Self {
            inner,
            lease: Some(Held::H2(stream)),
        }
    }

    /// Moves the connection's lease deadline (see `crate::lease_timer`) to `deadline`: the
    /// checkout armed it with the *try's* deadline, which bounds only the wait for the
    /// response head; the body streams under the request's. (Found in review: with
    /// `retry.per_try_timeout`, bodies longer than that plus the grace were cut.)
    pub fn hold_until(&self, deadline: tokio::time::Instant) {
        if let Some(Held::H1(lease)) = &self.lease {
            let epoch = lease.in_use.endpoint.common.epoch;
            lease.conn.state.lease.arm(epoch, deadline);
        }
    }

    fn release(&mut self) {
        match self.lease.take() {
            Some(Held::H1(lease)) => lease.release(),
            Some(Held::H2(stream)) => drop(stream),
            None => {}
        }
    }

    /// Drops the response without giving its connection back: for an answer the caller
    /// will not forward because it breaks the protocol (an HTTP/1.1 `101` to a request
    /// that asked for no upgrade), after which the connection is in no known state. It is
    /// closed with reason `error`, even when the body looks complete.
    pub fn discard(mut self) {
        self.give_up();
    }

    fn give_up(&mut self) {
        match self.lease.take() {
            // The connection cannot be trusted after a failed body, whatever the driver saw.
            Some(Held::H1(lease)) => lease.conn.close(CloseReason::Error),
            // A stream error leaves the connection usable; a connection error is its
            // driver's to notice.
            Some(Held::H2(stream)) => drop(stream),
            None => {}
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            None => this.release(),
            // Release as soon as the last frame is out, without waiting for the caller to
            // poll once more for `None` (many never do after `is_end_stream`).
            Some(Ok(_)) if this.inner.is_end_stream() => this.release(),
            Some(Ok(_)) => {}
            Some(Err(_)) => this.give_up(),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        // A body that is complete without being polled (empty, HEAD, 204, 304) still frees
        // the connection for reuse; anything else closes it with `body_incomplete`.
        if self.inner.is_end_stream() {
            self.release();
        }
    }
}

impl fmt::Debug for PooledBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledBody")
            .field("end_stream", &self.inner.is_end_stream())
            .field("holds_connection", &self.lease.is_some())
            .finish()
    }
}
