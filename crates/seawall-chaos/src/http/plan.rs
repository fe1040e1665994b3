//! What the HTTP toxics do to one request, drawn when the request arrives.
//!
//! Each HTTP toxic of the proxy draws its toxicity once per request (not per
//! connection, as TCP toxics do), from the connection's seeded generator, in the order
//! the toxics were added. Delays add up; the first `http_status` drawn answers; the
//! smallest `after_bytes` drawn cuts the body.

use tokio::time::Duration;

use crate::toxic::http_status::HttpStatus;
use crate::toxic::{Kind, Toxic};

/// One request's fate.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// Answer with this instead of forwarding.
    pub(crate) answer: Option<HttpStatus>,
    /// Hold the response head back this long.
    pub(crate) delay: Duration,
    /// Reset the connection after this many body bytes.
    pub(crate) reset_after: Option<u64>,
}

impl Plan {
    pub(crate) fn draw(toxics: &[Toxic], rng: &mut fastrand::Rng) -> Self {
        let mut plan = Plan::default();
        for toxic in toxics {
            if !toxic.kind.is_http() || !crate::chain::draw(toxic.toxicity, rng) {
                continue;
            }
            match &toxic.kind {
                Kind::HttpStatus(status) if plan.answer.is_none() => {
                    plan.answer = Some(status.clone());
                }
                Kind::HttpDelay(delay) => plan.delay = plan.delay.saturating_add(delay.draw(rng)),
                Kind::HttpReset(reset) => {
                    let after = plan
                        .reset_after
                        .map_or(reset.after_bytes, |a| a.min(reset.after_bytes));
                    plan.reset_after = Some(after);
                }
                _ => {}
            }
        }
        plan.delay = plan.delay.min(crate::toxic::MAX_WAIT);
        plan
    }
}
