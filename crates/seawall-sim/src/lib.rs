//! A controllable upstream HTTP server for tests, drills and benchmarks.
//!
//! The sim answers on fixed paths with fixed behaviours: fast hellos, chosen status
//! codes, delays before the head, slow ("drip") bodies, exact-length bodies, requests that
//! hang, connections that are closed or reset, and an echo of what arrived. It serves
//! HTTP/1.1 and h2c (prior knowledge) on the same port. The endpoint list lives in
//! `docs/sim.md` and in the `routes` module.
//!
//! Entry points: [`Sim`] runs one in the background of a test or of `seawall run`, and
//! [`serve`] runs one in the foreground for `seawall sim --listen ADDR`.
//!
//! Invariants:
//! - No input panics: malformed paths and queries get a 400 that says what was wrong.
//! - The hot path (`/`) allocates nothing of its own and logs nothing; static bodies are
//!   `Bytes::from_static`, and large bodies are slices of one static buffer.
//! - Every response carries `sim-connection: <id>` so tests can see connection reuse.

mod body;
mod conn;
mod drip;
mod echo;
mod param;
mod response;
mod routes;
mod server;
mod stats;

pub use echo::{EchoHeader, EchoReport};
pub use server::{Sim, serve};
pub use stats::StatsSnapshot;

/// Name of the header every sim response carries: the id of the TCP connection it was
/// served on, counting from 1 in accept order.
pub const CONNECTION_HEADER: &str = "sim-connection";

/// Largest body `/bytes/{n}` and `/drip?bytes=N` will produce (100 MiB); above it they
/// answer 400.
pub const MAX_BODY_BYTES: u64 = param::MAX_BYTES;
