//! `bandwidth`: at most `rate` KB/s (1 KB = 1000 bytes, as Toxiproxy). A chunk leaves once
//! the line would have carried it; chunks larger than 100 ms of traffic leave in 100 ms
//! pieces so that a slow rate still trickles instead of stalling.

use serde::{Deserialize, Serialize};
use tokio::time::{Duration, Instant};

use crate::chain::{Chunk, Ctx, Item};

/// Attributes: `rate` in KB/s; 0 or less means no limit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Bandwidth {
    pub rate: i64,
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
            let start = state.free_at.map_or(ctx.now, |t| t.max(ctx.now));
            let at = start + Duration::from_nanos(nanos);
            state.free_at = Some(at);
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
        let toxic = Bandwidth { rate: 10 }; // 10 KB/s: a piece is 1000 bytes, 100 ms
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
