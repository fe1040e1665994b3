//! `latency`: every chunk waits `latency` ms (± up to `jitter` ms) from the moment it was
//! read. The wait counts from the read, not from when the chunk reached this toxic, so
//! chunks read while an earlier one waits are not delayed twice.

use serde::{Deserialize, Serialize};
use tokio::time::Duration;

use crate::chain::{Ctx, Item};

/// Attributes, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Latency {
    pub latency: i64,
    pub jitter: i64,
}

impl Latency {
    /// This chunk's delay: uniform in `[latency - jitter, latency + jitter)`, as Toxiproxy.
    fn delay(&self, rng: &mut fastrand::Rng) -> Duration {
        let jitter = self.jitter.max(0);
        let offset = if jitter > 0 {
            rng.i64(-jitter..jitter)
        } else {
            0
        };
        super::millis(self.latency.saturating_add(offset))
    }

    pub(crate) fn apply(&self, item: Item, ctx: &mut Ctx<'_>) {
        match item {
            Item::Data(mut chunk) => {
                let at = (chunk.stamp + self.delay(ctx.rng)).max(ctx.now);
                chunk.stamp = at;
                ctx.emit_at(at, Item::Data(chunk));
            }
            // Earlier data has already been let through: the close follows at once.
            other => ctx.pass(other),
        }
    }
}
