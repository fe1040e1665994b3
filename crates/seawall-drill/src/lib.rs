//! `seawall drill`: runs a scenario against a gateway — open-loop load, faults and toxics
//! switched on and off at offsets, steady-state probes, thresholds over windows of the run —
//! and writes a report (JSON, JUnit, self-contained HTML).
//!
//! Entry points: [`scenario::parse::load`] reads a scenario file into a checked
//! [`Scenario`]; [`run::run`] executes it and returns a [`run::Outcome`] whose exit code the
//! binary returns.
//!
//! Invariants:
//! - Load is open-loop: requests are due by the schedule, latency is measured from the due
//!   time, and a request that could not be sent on time is counted, never skipped.
//! - Every action taken is undone before [`run::run`] returns, whatever happened.
//! - A threshold naming something the run did not measure is a scenario error, never a pass.

pub mod action;
pub mod admin;
pub mod chaos;
pub mod control;
pub mod embedded;
pub mod events;
pub mod gateway_events;
pub mod load;
pub mod metrics;
mod poll;
pub mod probe;
pub mod progress;
pub mod report;
pub mod run;
pub mod scenario;
pub mod threshold;

pub use scenario::Scenario;
