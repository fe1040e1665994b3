//! The body of a response that `http_reset` cuts off: `after_bytes` bytes pass, then
//! the body fails, hyper abandons the connection, and the client's socket is reset.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

/// Why a proxied body ended early.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// The upstream's body failed.
    Upstream(hyper::Error),
    /// `http_reset` cut it.
    Cut,
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::Upstream(error) => write!(f, "upstream body: {error}"),
            BodyError::Cut => f.write_str("http_reset: response cut off"),
        }
    }
}

impl std::error::Error for BodyError {}

/// An upstream body that fails after `left` more bytes.
#[derive(Debug)]
pub(crate) struct CutBody {
    inner: Incoming,
    left: u64,
    reset: Arc<AtomicBool>,
    done: bool,
    /// Started at the cut point: hyper writes what passed while the body waits, so the
    /// client has the head and those bytes before the reset (an RST can make a peer
    /// drop data it has not read yet).
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// How long the passed bytes get to reach the client before the reset.
const FLUSH_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

impl CutBody {
    pub(crate) fn new(inner: Incoming, after_bytes: u64, reset: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            left: after_bytes,
            reset,
            done: false,
            pause: None,
        }
    }

    /// After a pause, sets the socket to reset on close and ends the body with an error.
    fn cut(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let pause = self
            .pause
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(FLUSH_PAUSE)));
        if pause.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.done = true;
        self.reset.store(true, Ordering::Relaxed);
        Poll::Ready(Some(Err(BodyError::Cut)))
    }
}

impl Body for CutBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.left == 0 {
            return self.cut(cx);
        }
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => return self.cut(cx),
            Poll::Ready(Some(Err(error))) => {
                return Poll::Ready(Some(Err(BodyError::Upstream(error))));
            }
            Poll::Ready(Some(Ok(frame))) => frame,
        };
        let Ok(mut data) = frame.into_data() else {
            // Trailers: the body is over before the cut point; cut here.
            return self.cut(cx);
        };
        let len = data.len() as u64;
        if len > self.left {
            data.truncate(usize::try_from(self.left).unwrap_or(usize::MAX));
        }
        self.left = self.left.saturating_sub(len.min(self.left));
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn size_hint(&self) -> SizeHint {
        // Keeps the upstream's Content-Length, so the client expects the whole body.
        self.inner.size_hint()
    }
}
