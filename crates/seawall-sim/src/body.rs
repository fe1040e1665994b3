//! The response body type: static bytes, a generated pattern of exact length, or a drip
//! that spaces its chunks over time.
//!
//! One enum rather than a boxed body keeps `/` free of allocation. Generated bodies are
//! `0123456789abcdef` repeated (byte `i` is `PATTERN[i % 16]`), sliced from one static
//! buffer, so a test can check that a proxied body arrived unchanged and not only its
//! length, and so a 100 MiB body never needs 100 MiB of memory.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::drip::Drip;
use crate::stats::RequestGuard;

const PATTERN: &[u8; PERIOD] = b"0123456789abcdef";
const PERIOD: usize = 16;
const FILL_LEN: usize = 64 * 1024;
static FILL: [u8; FILL_LEN] = fill();

/// Largest slice [`pattern`] hands out: one period short of the buffer, so that a slice
/// can start at any phase of the pattern.
pub(crate) const MAX_CHUNK: usize = FILL_LEN - PERIOD;

const fn fill() -> [u8; FILL_LEN] {
    let mut buf = [0; FILL_LEN];
    let mut i = 0;
    while i < FILL_LEN {
        buf[i] = PATTERN[i % PERIOD];
        i += 1;
    }
    buf
}

/// The `len` bytes (at most [`MAX_CHUNK`]) found at `offset` in a pattern body.
pub(crate) fn pattern(offset: u64, len: usize) -> Bytes {
    // Both casts are lossless: the remainder is below 16 and `len` is capped.
    let start = (offset % PERIOD as u64) as usize;
    let len = len.min(MAX_CHUNK);
    Bytes::from_static(&FILL[start..start + len])
}

/// Every response the sim sends has this body.
#[derive(Debug)]
pub(crate) struct SimBody {
    kind: Kind,
    /// The request's guard while a streaming body is still producing; finished when the
    /// last frame is handed to hyper, counted cancelled if the body is dropped before.
    guard: Option<RequestGuard>,
}

#[derive(Debug)]
enum Kind {
    Full(Option<Bytes>),
    Pattern { sent: u64, len: u64 },
    Drip(Box<Drip>),
}

impl SimBody {
    pub(crate) fn empty() -> Self {
        Self::full(Bytes::new())
    }

    pub(crate) fn full(bytes: Bytes) -> Self {
        let bytes = (!bytes.is_empty()).then_some(bytes);
        Self::from_kind(Kind::Full(bytes))
    }

    /// `len` bytes of the pattern, produced in chunks of at most [`MAX_CHUNK`].
    pub(crate) fn pattern(len: u64) -> Self {
        Self::from_kind(Kind::Pattern { sent: 0, len })
    }

    pub(crate) fn drip(drip: Drip) -> Self {
        Self::from_kind(Kind::Drip(Box::new(drip)))
    }

    fn from_kind(kind: Kind) -> Self {
        Self { kind, guard: None }
    }

    /// Takes over the request's guard: a body written in one piece finishes the request
    /// now, a streaming one keeps it in flight until its last frame.
    pub(crate) fn attach(&mut self, guard: RequestGuard) {
        match self.kind {
            Kind::Full(_) => guard.finish(),
            Kind::Pattern { .. } | Kind::Drip(_) if self.is_end_stream() => guard.finish(),
            Kind::Pattern { .. } | Kind::Drip(_) => self.guard = Some(guard),
        }
    }

    fn next_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        match &mut self.kind {
            Kind::Full(bytes) => Poll::Ready(bytes.take()),
            Kind::Pattern { sent, len } => {
                if sent == len {
                    return Poll::Ready(None);
                }
                let n = usize::try_from(*len - *sent).map_or(MAX_CHUNK, |left| left.min(MAX_CHUNK));
                let chunk = pattern(*sent, n);
                *sent += chunk.len() as u64;
                Poll::Ready(Some(chunk))
            }
            Kind::Drip(drip) => drip.poll_chunk(cx),
        }
    }
}

impl Body for SimBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let chunk = ready!(this.next_chunk(cx));
        let done = this.is_end_stream();
        if let Some(guard) = this.guard.take_if(|_| done) {
            guard.finish();
        }
        Poll::Ready(chunk.map(|bytes| Ok(Frame::data(bytes))))
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Pattern { sent, len } => sent == len,
            Kind::Drip(drip) => drip.is_done(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        // Exact hints make hyper send `content-length` instead of chunked encoding.
        let left = match &self.kind {
            Kind::Full(bytes) => bytes.as_ref().map_or(0, |b| b.len() as u64),
            Kind::Pattern { sent, len } => len - sent,
            Kind::Drip(drip) => drip.remaining(),
        };
        SizeHint::with_exact(left)
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    #[test]
    fn pattern_slices_continue_the_pattern_at_any_offset() {
        let whole: Vec<u8> = (0..100u64).map(|i| PATTERN[(i % 16) as usize]).collect();
        assert_eq!(&pattern(0, 100)[..], &whole[..]);
        assert_eq!(&pattern(37, 20)[..], &whole[37..57]);
        assert_eq!(pattern(5, usize::MAX).len(), MAX_CHUNK);
    }

    #[tokio::test]
    async fn pattern_body_yields_exactly_its_length_in_bounded_chunks() {
        let len = 3 * MAX_CHUNK as u64 + 7;
        let mut body = SimBody::pattern(len);
        assert_eq!(body.size_hint().exact(), Some(len));
        let mut total = 0u64;
        while let Some(frame) = body.frame().await {
            let data = frame.unwrap().into_data().unwrap();
            assert!(data.len() <= MAX_CHUNK);
            assert_eq!(data[0], PATTERN[(total % 16) as usize]);
            total += data.len() as u64;
        }
        assert_eq!(total, len);
    }
}
