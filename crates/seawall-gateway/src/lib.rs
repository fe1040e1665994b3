//! Seawall's gateway: listeners, routing, the per-route middleware chain, proxying through
//! our own pool with layered timeouts, the admin API and hot reload.
//!
//! Start at [`Gateway::start`]. A request's path through the code: `listener` (accept,
//! connection watchdog) → `edge` (snapshot, route, deadline, panic/stall guard) → `chain`
//! (middleware layers) → `attempt` (pool checkout, connect, upstream TLS, response head) → `body`
//! (streaming back, deadline, outcome) → `outcome` (metrics, access log). See
//! ARCHITECTURE.md for the layer order and invariants.

mod admin;
mod attempt;
pub mod body;
pub mod chain;
pub mod context;
mod edge;
mod error_response;
pub mod events;
mod exposition;
pub mod faults;
mod fd_limit;
// Public only for the fuzz targets (fuzz/): not an API.
#[doc(hidden)]
pub mod forwarding;
mod gateway;
pub mod histogram;
mod listener;
pub mod metrics;
pub mod middleware;
mod outcome;
pub mod policy;
pub mod routing;
pub mod runtime;
pub mod tls;
mod upgrade;
pub mod upstream_pool;
mod watch;

pub use gateway::{ConfigOverride, Gateway, GatewayOptions};
