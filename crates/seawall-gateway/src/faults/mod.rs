//! Fault injection: the compiled rule ([`rule`]), the registry of upstream-side and
//! runtime rules ([`registry`]), and the two places rules act:
//!
//! - [`client`]: client-facing, for a route's `fault` layer (`crate::middleware::fault`)
//!   and runtime faults on a route (run by `crate::edge` after the chain): the gateway
//!   itself delays, answers, ends the connection or throttles the body;
//! - [`upstream`]: upstream-side, inside a try (`crate::policy::try_once`), in place of
//!   the exchange with the endpoint: below the breaker, retry loop, balancer and outlier
//!   detection, which see the fault exactly as they would see the upstream failing;
//!
//! plus [`throttle`], the paced response body, and [`header`], the request headers that
//! trigger faults where a layer allows them. See `docs/faults.md`.

pub mod client;
pub mod header;
pub mod registry;
pub mod rule;
pub mod throttle;
pub mod upstream;

pub use registry::FaultRegistry;

/// The header naming the fault injected into a response.
pub static FAULT_HEADER: http::HeaderName = http::HeaderName::from_static("seawall-fault");
