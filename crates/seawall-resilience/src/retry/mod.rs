//! Retries: when to try again, how long to wait first, and how many retries the upstream
//! can afford.
//!
//! Three pieces, composed by the gateway around `attempt()`:
//! - [`RetryPolicy`]: per route. Which failures are retried (`retry_on`, a
//!   [`crate::classify::ErrorClassifier`]), which methods may be retried (idempotent ones,
//!   or any when the route opted in), `max_attempts`, `per_try_timeout`, and
//!   [`RetryPolicy::next_try`], which refuses a try that could not finish before the
//!   request's deadline.
//! - [`Backoff`]: exponential backoff with full jitter (AWS), the wait before each retry,
//!   stretched to honour a `Retry-After` within a cap.
//! - [`MinTry`]: per upstream, the least time a try recently needed (the minimum of the
//!   last successful tries), the `expected_min_try` of [`RetryPolicy::next_try`].
//! - [`RetryBudget`]: per upstream, shared by all routes to it. Caps retries at a ratio of
//!   requests plus a small floor over a sliding window (Finagle, linkerd), so that retries
//!   cannot multiply load on a struggling upstream.
//!
//! The order the gateway applies them in, after a failed try: is the failure retryable and
//! the method retry-safe (`retry_on`, [`RetryPolicy::may_retry`])? → may another try start
//! and finish in time ([`RetryPolicy::next_try`])? → is there budget
//! ([`RetryBudget::try_withdraw`], last, so that refused retries do not spend budget)?

mod backoff;
mod budget;
mod min_try;
mod policy;
#[cfg(test)]
mod tests;

pub use self::backoff::{Backoff, InvalidBackoff};
pub use self::budget::{InvalidRetryBudget, RetryBudget, RetryBudgetSettings, RetryBudgetSnapshot};
pub use self::min_try::MinTry;
pub use self::policy::{Decision, GiveUpReason, InvalidRetryPolicy, MAX_ATTEMPTS, RetryPolicy};
