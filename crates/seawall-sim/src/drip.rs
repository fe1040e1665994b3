//! `/drip`: a body of N bytes spread evenly over a duration, for idle and body timeouts.
//!
//! Query: `bytes=N` (default 10), `duration=D` (default 2s), `delay=D` (default 0, waited
//! before the head). The body is cut into `min(N, 100)` chunks; chunk `i` (from 0) is sent
//! at `(i + 1) * duration / chunks` after the head, so the last byte arrives at `duration`
//! and the gap between chunks is what an idle timeout sees. Chunks larger than one
//! buffer slice go out as several frames back to back.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::{Instant, Sleep};

use crate::body::{MAX_CHUNK, pattern};
use crate::param::{self, BadRequest};

/// At most this many chunks, so a large N does not become a timer per byte.
const MAX_CHUNKS: u64 = 100;

/// A parsed `/drip` query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DripQuery {
    pub(crate) bytes: u64,
    pub(crate) duration: Duration,
    pub(crate) delay: Duration,
}

impl Default for DripQuery {
    fn default() -> Self {
        Self {
            bytes: 10,
            duration: Duration::from_secs(2),
            delay: Duration::ZERO,
        }
    }
}

impl DripQuery {
    /// Parses `bytes`, `duration` and `delay`; unknown keys are rejected so that a typo
    /// does not silently fall back to a default.
    pub(crate) fn parse(query: Option<&str>) -> Result<Self, BadRequest> {
        let mut parsed = Self::default();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "bytes" => parsed.bytes = param::byte_count(key, value)?,
                "duration" => parsed.duration = param::duration(key, value)?,
                "delay" => parsed.delay = param::duration(key, value)?,
                _ => {
                    return Err(BadRequest::new(format!(
                        "unknown drip parameter {key:?}: expected bytes, duration or delay"
                    )));
                }
            }
        }
        Ok(parsed)
    }
}

/// The state of a drip body in progress.
#[derive(Debug)]
pub(crate) struct Drip {
    total: u64,
    sent: u64,
    chunks: u64,
    /// Index of the next chunk to be released by the timer.
    next: u64,
    /// Bytes of the released chunk not yet handed out.
    chunk_left: u64,
    start: Instant,
    interval: Duration,
    sleep: Pin<Box<Sleep>>,
}

impl Drip {
    /// Starts the schedule now; the first chunk is due one interval from now.
    pub(crate) fn start(bytes: u64, duration: Duration) -> Self {
        let chunks = bytes.min(MAX_CHUNKS);
        // `chunks` is at most 100, so the cast is lossless; `max(1)` avoids dividing by zero
        // for an empty body, which has no chunks to schedule anyway.
        let interval = duration / (chunks.max(1) as u32);
        let start = Instant::now();
        Self {
            total: bytes,
            sent: 0,
            chunks,
            next: 0,
            chunk_left: 0,
            start,
            interval,
            sleep: Box::pin(tokio::time::sleep_until(start + interval)),
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.chunk_left == 0 && self.next == self.chunks
    }

    pub(crate) fn remaining(&self) -> u64 {
        self.total - self.sent
    }

    /// Size of chunk `index`: an even split, the remainder going to the first chunks.
    fn chunk_len(&self, index: u64) -> u64 {
        let base = self.total / self.chunks;
        base + u64::from(index < self.total % self.chunks)
    }

    pub(crate) fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        if self.chunk_left == 0 {
            if self.next == self.chunks {
                return Poll::Ready(None);
            }
            ready!(self.sleep.as_mut().poll(cx));
            self.chunk_left = self.chunk_len(self.next);
            self.next += 1;
            // Deadlines come from the start, not the last wake-up, so lateness does not add
            // up over the body. `next` <= 100 and the duration is capped, so no overflow.
            let due = self.start + self.interval * (self.next as u32 + 1);
            self.sleep.as_mut().reset(due);
        }
        let n = usize::try_from(self.chunk_left).map_or(MAX_CHUNK, |left| left.min(MAX_CHUNK));
        let chunk = pattern(self.sent, n);
        self.chunk_left -= chunk.len() as u64;
        self.sent += chunk.len() as u64;
        Poll::Ready(Some(chunk))
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;
    use crate::body::SimBody;

    #[test]
    fn query_defaults_apply_when_keys_are_missing() {
        assert_eq!(DripQuery::parse(None).unwrap(), DripQuery::default());
        let parsed = DripQuery::parse(Some("bytes=5&delay=100ms")).unwrap();
        assert_eq!(parsed.bytes, 5);
        assert_eq!(parsed.duration, Duration::from_secs(2));
        assert_eq!(parsed.delay, Duration::from_millis(100));
    }

    #[test]
    fn query_with_unknown_or_malformed_keys_is_rejected() {
        for bad in [
            "byte=5",
            "bytes=x",
            "duration=2",
            "delay=",
            "bytes=-1",
            "bytes",
        ] {
            assert!(
                DripQuery::parse(Some(bad)).is_err(),
                "{bad} should be rejected"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn chunks_arrive_evenly_and_the_last_at_the_duration() {
        let start = Instant::now();
        let mut body = SimBody::drip(Drip::start(1000, Duration::from_secs(10)));
        let mut arrivals = Vec::new();
        let mut total = 0;
        while let Some(frame) = body.frame().await {
            total += frame.unwrap().into_data().unwrap().len();
            arrivals.push(start.elapsed());
        }
        assert_eq!(total, 1000);
        assert_eq!(arrivals.len(), 100);
        assert_eq!(arrivals[0], Duration::from_millis(100));
        assert_eq!(arrivals[99], Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn uneven_sizes_still_total_exactly_n() {
        let mut body = SimBody::drip(Drip::start(250_003, Duration::from_secs(1)));
        let mut total = 0;
        while let Some(frame) = body.frame().await {
            total += frame.unwrap().into_data().unwrap().len();
        }
        assert_eq!(total, 250_003);
    }

    #[tokio::test(start_paused = true)]
    async fn empty_drip_ends_at_once() {
        let mut body = SimBody::drip(Drip::start(0, Duration::from_secs(5)));
        assert!(body.frame().await.is_none());
    }
}
