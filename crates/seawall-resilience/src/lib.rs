//! Seawall's resilience policies, written as pure state machines.
//!
//! Each policy takes events (a call started, a call ended with this outcome, a request
//! arrived) together with the current time, and returns a decision (admit or reject, retry
//! after this delay or give up, send to this endpoint). None of them performs I/O, spawns a
//! task, sleeps or reads a clock: the gateway feeds them `tokio::time::Instant`s (so its
//! pausable clock drives them) and, where a policy is randomized, a random number or a
//! seeded [`fastrand::Rng`]. That makes every policy deterministic under test and lets the
//! gateway decide where the state lives (per route, per upstream, per endpoint).
//!
//! | module | policy | sources of its semantics |
//! |---|---|---|
//! | [`breaker`] | circuit breaker over a sliding time window | resilience4j, Sentinel, gobreaker |
//! | [`classify`] | which statuses and error kinds count as failures | Envoy `retry_on`, resilience4j `recordExceptions` |
//! | [`retry`] | retry budget, jittered backoff, retry policy with deadline awareness | Finagle, linkerd, AWS, gRPC |
//! | [`balance`] | power of two choices over peak-EWMA cost, and round robin | linkerd, Finagle, tower |
//! | [`outlier`] | consecutive-failure ejection of endpoints | Envoy outlier detection |
//! | [`concurrency`] | static bulkhead accounting and the Gradient2 adaptive limit | Envoy, Netflix concurrency-limits |
//! | [`health`] | active health: endpoints healthy or not by probe thresholds | Envoy, HAProxy `rise`/`fall` |
//! | [`hedge`] | when to send an extra copy of a slow request: a fixed delay or a recent latency quantile | The Tail at Scale, gRPC, tower |
//!
//! Invariants:
//! - no `std::time::Instant`: time is always an argument;
//! - no panics on any input: settings are validated by `try_new` into typed `Invalid*`
//!   errors, and time arithmetic never adds to an `Instant` (a policy stores "since" and
//!   "for how long", and compares elapsed time), so no input can overflow it;
//! - every state is a named enum variant and every state change is reported to the caller,
//!   so the gateway can log and count it.
//!
//! `docs/policies.md` describes every knob and its default for operators.

pub mod balance;
pub mod breaker;
pub mod classify;
pub mod concurrency;
pub mod health;
pub mod hedge;
pub mod outlier;
pub mod retry;
mod window;
