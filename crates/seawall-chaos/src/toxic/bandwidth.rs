//! `bandwidth`: at most `rate` KB/s (1 KB = 1000 bytes, as Toxiproxy). A chunk leaves once
//! the line would have carried it; chunks larger than 100 ms of traffic leave in 100 ms
//! pieces so that a slow rate still trickles instead of stalling.
//!
//! Extension (Toxiproxy issue #190): with `"shared": true` the rate is shared by every
//! connection of the proxy instead of applying to each one. The shared line is one atomic
//! "free at" time that the connections advance with compare-and-swap: no lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tokio::time::{Duration, Instant};

use crate::chain::{Chunk, Ctx, Item};

/// Attributes: `rate` in KB/s; 0 or less means no limit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Bandwidth {
    pub rate: i64,
    /// Absent unless set, so Toxiproxy clients that read attributes as numbers are safe.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub shared: bool,
    /// The line all connections share when `shared`; one per toxic.
    #[serde(skip)]
    pub(crate) line: SharedLine,
}

/// When a shared line is free again, in nanoseconds after its creation.
#[derive(Clone, Debug)]
pub(crate) struct SharedLine {
    base: Instant,
    free_at: Arc<AtomicU64>,
}

impl Default for SharedLine {
    fn default() -> Self {
        Self {
            base: Instant::now(),
            free_at: Arc::new(AtomicU64::new(0)),
        }
    }
}

/// Two toxics are the same only with the same line, so that a connection built from an
/// older version of the toxic never keeps a line the newer version no longer shares.
impl PartialEq for SharedLine {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.free_at, &other.free_at)
    }
}

impl SharedLine {
    /// Books `nanos` of the line from `now` (or from when it is next free); returns when
    /// the booking ends.
    fn book(&self, now: Instant, nanos: u64) -> Instant {
        let now =
            u64::try_from(now.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX);
        let mut current = self.free_at.load(Ordering::Relaxed);
        loop {
            let end = current.max(now).saturating_add(nanos);
            match self.free_at.compare_exchange_weak(
                current,
                end,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return self.base + Duration::from_nanos(end),
                Err(seen) => current = seen,
            }
        }
    }
}

/// When the line is free again. No credit is kept for idle time (no bursts).
#[derive(Debug, Default)]
pub(crate) struct State {
    free_at: Option<Instant>,
}

impl Bandwidth {
    pub(crate) fn apply(&self, state: &mut State, item: Item, ctx: &mut Ctx<'_>) {
        let Item::Data(chunk) = item else {
            ctx.pass(item);
            return;
        };
        let Ok(rate) = u64::try_from(self.rate) else {
            ctx.pass(Item::Data(chunk));
            return;
        };
        if rate == 0 {
            ctx.pass(Item::Data(chunk));
            return;
        }
        // rate KB/s is rate bytes per millisecond; a piece is 100 ms of traffic.
        let piece = usize::try_from(rate.saturating_mul(100)).unwrap_or(usize::MAX);
        let mut data = chunk.data;
        while !data.is_empty() {
            let part = data.split_to(piece.min(data.len()));
            let nanos = (part.len() as u64).saturating_mul(1_000_000) / rate;
            let at = if self.shared {
                self.line.book(ctx.now, nanos)
            } else {
                let start = state.free_at.map_or(ctx.now, |t| t.max(ctx.now));
                let at = start + Duration::from_nanos(nanos);
                state.free_at = Some(at);
                at
            };
            let stamp = chunk.stamp;
            ctx.emit_at(at, Item::Data(Chunk { data: part, stamp }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn pieces_leave_when_the_line_would_have_carried_them() {
        // 10 KB/s: a piece is 1000 bytes, 100 ms.
        let toxic = Bandwidth {
            rate: 10,
            ..Bandwidth::default()
        };
        let mut state = State::default();
        let mut rng = fastrand::Rng::with_seed(1);
        let mut out = Vec::new();
        let now = Instant::now();
        let mut ctx = Ctx {
            now,
            rng: &mut rng,
            out: &mut out,
        };
        let data = Bytes::from(vec![0u8; 2500]);
        toxic.apply(&mut state, Item::Data(Chunk { data, stamp: now }), &mut ctx);
        let times: Vec<_> = out
            .iter()
            .map(|e| e.at.map(|at| at - now).unwrap_or_default())
            .collect();
        assert_eq!(
            times,
            [100, 200, 250].map(Duration::from_millis).to_vec(),
            "1000 + 1000 + 500 bytes"
        );
    }
}

#[cfg(test)]
mod shared_tests {
    use super::*;

    #[test]
    fn a_shared_line_is_booked_one_after_another() {
        let line = SharedLine::default();
        let now = Instant::now();
        let first = line.book(now, 1_000_000);
        let second = line.clone().book(now, 1_000_000);
        assert_eq!(second - first, Duration::from_millis(1));
    }
}
