//! `http_delay` (HTTP proxies only): holds a request's response head back `delay` ms
//! (± up to `jitter` ms, uniform), so that a client's header timeout can fire on one
//! request while the connection stays usable.

use serde::{Deserialize, Serialize};
use tokio::time::Duration;

/// Attributes, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpDelay {
    pub delay: i64,
    pub jitter: i64,
}

impl HttpDelay {
    /// This request's delay.
    pub(crate) fn draw(&self, rng: &mut fastrand::Rng) -> Duration {
        let jitter = self.jitter.max(0);
        let offset = if jitter == 0 {
            0
        } else {
            rng.i64(-jitter..=jitter)
        };
        super::millis(self.delay.saturating_add(offset))
    }
}
