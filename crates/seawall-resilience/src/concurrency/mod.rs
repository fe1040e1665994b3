//! Concurrency limits: how many requests an upstream is sent at once.
//!
//! - [`Bulkhead`]: a static limit (`max_concurrent` running, `max_pending` waiting), as
//!   Envoy's cluster circuit breakers (`max_requests`, `max_pending_requests`). It only does
//!   the accounting and the admit / queue / reject decision; the waiting itself is the
//!   gateway's (a tokio semaphore), so this stays a pure state machine.
//! - [`GradientLimiter`]: an adaptive limit (Netflix concurrency-limits `Gradient2`,
//!   ALGORITHMS.md B2.1) that shrinks when latency rises above its long-run average (the
//!   upstream is queueing) and grows back when latency returns, within
//!   `[min_limit, max_limit]`. The gateway can feed its limit into a bulkhead with
//!   [`Bulkhead::set_max_concurrent`].

mod bulkhead;
mod gradient;
#[cfg(test)]
mod tests;

pub use self::bulkhead::{Admit, Bulkhead, BulkheadSettings, BulkheadSnapshot, InvalidBulkhead};
pub use self::gradient::{GradientLimiter, GradientSettings, GradientSnapshot, InvalidGradient};
