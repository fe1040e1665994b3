//! Body wrappers on both sides of the gateway. Bodies are streamed frame by frame, never
//! buffered or copied.
//!
//! - [`RequestBody`]: the client's body on its way upstream, bounded by the listener's
//!   `body_read_timeout` and `max_body_bytes`. Its errors are classified
//!   [`GatewayError`]s, so the pool can tell "the client stalled" (408) or "the client
//!   sent malformed framing" (400) from "the upstream broke" (502). Its [`BodyProgress`]
//!   tells whoever sees the deadline pass whether the gateway was waiting on the client
//!   at that moment: then the client, not the upstream, was slow.
//! - [`ResponseBody`]: what the client receives. It carries the request's context until the
//!   last byte, so the request deadline also bounds body streaming, and the access log and
//!   duration metric are written exactly once, when the body ends or is dropped (a drop
//!   before the end means the client went away).

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU8, Ordering},
    },
    task::{Context, Poll, ready},
    time::Duration,
};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use pin_project_lite::pin_project;
use seawall_core::{Body, BoxError, ErrorKind, GatewayError};
use seawall_pool::PooledBody;
use tokio::time::{Instant, Sleep, sleep_until};

use crate::{context::RequestContext, outcome};

/// Where a request body stands, shared between the body (on its way upstream, inside the
/// pool's connection) and the request's context.
///
/// Found by tests/policies_breaker.rs: a client that trickled its body until the route
/// deadline got a 504 `deadline_exceeded` that the breaker, the balancer's latency
/// estimate and outlier detection all counted against the upstream, so ten slow
/// uploaders opened a healthy upstream's breaker for everyone. The deadline says nothing
/// about the upstream when, as it passed, the gateway was waiting for the client's bytes.
#[derive(Debug, Default)]
pub struct BodyProgress(AtomicU8);

const FLOWING: u8 = 0;
const WAITING_ON_CLIENT: u8 = 1;
const ENDED: u8 = 2;
/// `FAILED + i`: the body failed with `ErrorKind::ALL[i]`.
const FAILED: u8 = 16;

impl BodyProgress {
    /// True while the body's reader waits for bytes the client has not sent yet.
    pub fn waiting_on_client(&self) -> bool {
        self.0.load(Ordering::Acquire) == WAITING_ON_CLIENT
    }

    /// How the client's body failed, if it did: kept because an HTTP/2 upstream connection
    /// does not hand the body's error back (hyper resets the stream, which reads as
    /// `upstream_reset`), so the try's outcome must be corrected from here.
    pub fn failure(&self) -> Option<ErrorKind> {
        let state = self.0.load(Ordering::Acquire);
        let index = usize::from(state.checked_sub(FAILED)?);
        ErrorKind::ALL.get(index).copied()
    }

    fn fail(&self, error: GatewayError) -> BoxError {
        if let Some(i) = ErrorKind::ALL.iter().position(|k| *k == error.kind) {
            let i = u8::try_from(i).unwrap_or(u8::MAX - FAILED);
            self.0.store(FAILED.saturating_add(i), Ordering::Release);
        }
        Box::new(error)
    }

    fn set(&self, state: u8) {
        // Most polls do not change it: skip the write (the cache line stays shared).
        if self.0.load(Ordering::Relaxed) != state {
            self.0.store(state, Ordering::Release);
        }
    }
}

pin_project! {
    /// The client's request body, with the listener's read timeout and size limit.
    pub struct RequestBody {
        #[pin]
        inner: Incoming,
        #[pin]
        timeout: Sleep,
        timeout_value: Duration,
        remaining: u64,
        progress: Arc<BodyProgress>,
    }
}

impl RequestBody {
    /// Wraps `inner`; the whole body must arrive by `deadline` and hold at most `limit` bytes.
    /// `progress` follows it (see [`BodyProgress`]).
    pub fn new(
        inner: Incoming,
        deadline: Instant,
        timeout_value: Duration,
        limit: u64,
        progress: Arc<BodyProgress>,
    ) -> Self {
        Self {
            inner,
            timeout: sleep_until(deadline),
            timeout_value,
            remaining: limit,
            progress,
        }
    }
}

/// Classifies an error reading the client's body: malformed framing (a bad chunk size
/// line, say) is the client's bad request, 400; anything else means the client went
/// away mid-body, 499. (Found by probing with `zz\r\n` as a chunk size: it was logged and
/// answered as `client_closed` to a client that was still connected.)
fn client_body_error(error: hyper::Error) -> GatewayError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(current) = cause {
        if let Some(io) = current.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData
            )
        {
            return GatewayError::new(
                ErrorKind::BadRequest,
                format!("malformed request body: {io}"),
            );
        }
        cause = current.source();
    }
    GatewayError::new(
        ErrorKind::ClientClosed,
        format!("client request body failed: {error}"),
    )
}

impl HttpBody for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = data.len() as u64;
                    if len > *this.remaining {
                        return Poll::Ready(Some(Err(this.progress.fail(GatewayError::new(
                            ErrorKind::BodyTooLarge,
                            "request body exceeds max_body_bytes",
                        )))));
                    }
                    *this.remaining -= len;
                }
                this.progress.set(FLOWING);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                Poll::Ready(Some(Err(this.progress.fail(client_body_error(e)))))
            }
            Poll::Ready(None) => {
                this.progress.set(ENDED);
                Poll::Ready(None)
            }
            Poll::Pending => {
                this.progress.set(WAITING_ON_CLIENT);
                ready!(this.timeout.poll(cx));
                Poll::Ready(Some(Err(this.progress.fail(GatewayError::new(
                    ErrorKind::BodyReadTimeout,
                    format!("request body not received within {:?}", this.timeout_value),
                )))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project! {
    /// The body of whatever answers the client: the upstream's, or one the gateway made.
    #[project = OutgoingProj]
    pub enum Outgoing {
        /// Streamed from a pooled upstream connection.
        Upstream { #[pin] body: PooledBody },
        /// Made by the gateway or a layer.
        Local { #[pin] body: Body },
    }
}

impl Outgoing {
    /// Reads an upstream body to its end and drops it, so that its HTTP/1.1 connection
    /// goes back to the pool (an HTTP/2 stream ends instead of being reset) rather than
    /// being closed `body_incomplete`. Gives up, which closes the connection as a drop
    /// does, past `max_bytes` (at once when the body announces more) or at `until` (a
    /// body already received drains even when `until` has passed). True when the body
    /// ended; a body the gateway made is just dropped.
    pub async fn drain(self, max_bytes: u64, until: Instant) -> bool {
        use http_body_util::BodyExt;
        let Outgoing::Upstream { mut body } = self else {
            return true;
        };
        if body.size_hint().lower() > max_bytes {
            return false;
        }
        let reading = async {
            let mut read = 0u64;
            while let Some(frame) = body.frame().await {
                let Ok(frame) = frame else {
                    return false;
                };
                read += frame.data_ref().map_or(0, |d| d.len() as u64);
                if read > max_bytes {
                    return false;
                }
            }
            true
        };
        tokio::time::timeout_at(until, reading)
            .await
            .unwrap_or(false)
    }

    /// A small body made by the gateway.
    pub fn text(text: impl Into<Bytes>) -> Self {
        use http_body_util::BodyExt;
        let body = http_body_util::Full::new(text.into())
            .map_err(|never| match never {})
            .boxed();
        Outgoing::Local { body }
    }
}

impl HttpBody for Outgoing {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project() {
            OutgoingProj::Upstream { body } => body.poll_frame(cx).map_err(|e| {
                Box::new(GatewayError::new(
                    ErrorKind::UpstreamReset,
                    format!("upstream body: {e}"),
                )) as BoxError
            }),
            OutgoingProj::Local { body } => body.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Outgoing::Upstream { body } => body.is_end_stream(),
            Outgoing::Local { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Outgoing::Upstream { body } => body.size_hint(),
            Outgoing::Local { body } => body.size_hint(),
        }
    }
}

pin_project! {
    /// The response body sent to the client, bounded by the request deadline, carrying the
    /// request's context until it finishes.
    pub struct ResponseBody {
        #[pin]
        inner: Outgoing,
        #[pin]
        deadline: Sleep,
        cx: Option<Box<RequestContext>>,
    }

    impl PinnedDrop for ResponseBody {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(mut cx) = this.cx.take() {
                // Dropped before the end: unless the body was complete anyway (HEAD, 204,
                // or a body hyper knew was empty), the client went away, or, past the
                // deadline, stopped reading and had its connection closed by the guard.
                if !this.inner.is_end_stream() {
                    if Instant::now() >= cx.deadline {
                        cx.fail(ErrorKind::DeadlineExceeded, "deadline passed while the client was not reading the response; connection closed");
                    } else {
                        cx.fail(ErrorKind::ClientClosed, "client closed the connection before the response was complete");
                    }
                }
                outcome::finish(*cx);
            }
        }
    }
}

impl ResponseBody {
    /// Wraps `inner`; `cx` is finished when the body ends or is dropped.
    pub fn new(inner: Outgoing, cx: Box<RequestContext>) -> Self {
        Self {
            deadline: sleep_until(cx.deadline),
            inner,
            cx: Some(cx),
        }
    }

    /// Finishes the request as answered by no response: a `reset` or `close` fault ended
    /// the client's connection (or stream) instead. Recorded with status 444 (nginx's
    /// "closed without a response") and no error: the gateway did what it was asked to.
    pub fn end_without_response(&mut self) {
        if let Some(mut cx) = self.cx.take() {
            cx.status = NO_RESPONSE;
            outcome::finish(*cx);
        }
    }
}

/// The status recorded for a request whose connection a fault ended without a response.
pub const NO_RESPONSE: u16 = 444;

impl HttpBody for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        match this.inner.as_mut().poll_frame(cx) {
            Poll::Ready(None) => {
                if let Some(rcx) = this.cx.take() {
                    outcome::finish(*rcx);
                }
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                if let Some(mut rcx) = this.cx.take() {
                    // Past the deadline, an upstream error is the pool's lease timer
                    // closing a connection whose client had stopped reading.
                    let kind = if Instant::now() >= rcx.deadline {
                        ErrorKind::DeadlineExceeded
                    } else {
                        e.downcast_ref::<GatewayError>()
                            .map_or(ErrorKind::UpstreamReset, |g| g.kind)
                    };
                    rcx.fail(kind, e.to_string());
                    outcome::finish(*rcx);
                }
                Poll::Ready(Some(Err(e)))
            }
            ready @ Poll::Ready(Some(Ok(_))) => ready,
            Poll::Pending => {
                ready!(this.deadline.poll(cx));
                // The deadline also bounds streaming: stop, and let hyper abort the response.
                if let Some(mut rcx) = this.cx.take() {
                    rcx.fail(
                        ErrorKind::DeadlineExceeded,
                        "deadline passed while streaming the response body",
                    );
                    outcome::finish(*rcx);
                }
                Poll::Ready(Some(Err(Box::new(GatewayError::from(
                    ErrorKind::DeadlineExceeded,
                )))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
