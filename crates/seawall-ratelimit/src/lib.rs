//! Seawall's rate limiting, free of I/O and clocks: callers pass the time in.
//!
//! - [`gcra`]: the Generic Cell Rate Algorithm as one pure function over a stored
//!   "theoretical arrival time" (TAT), with redis-cell's `CL.THROTTLE` semantics so the
//!   local and Redis-backed limiters answer identically.
//! - [`store`]: a sharded per-key table of TATs whose memory stays bounded however many
//!   distinct keys arrive.
//! - [`redis_store`]: the same algorithm as a Lua script in Redis (one round trip, Redis's
//!   clock), behind a [`breaker`] so a dead Redis costs no latency. Only with the `redis`
//!   cargo feature (on by default); see [`REDIS_SUPPORT`].
//! - [`lease`]: local leases of Redis tokens for hot keys (one call per `N` requests).
//!
//! Time is nanoseconds since an epoch the caller chooses (`u64`), so tests drive it
//! exactly and the gateway can use tokio's pausable clock.

pub mod breaker;
mod error;
pub mod gcra;
pub mod lease;
// The `redis` crate is the workspace's most expensive dependency to compile, so it sits
// behind the (default) `redis` feature. Without it, `redis_store` is a stand-in whose
// constructor refuses with [`NO_REDIS`], so callers compile unchanged in both builds.
#[cfg(not(feature = "redis"))]
#[path = "no_redis.rs"]
pub mod redis_store;
#[cfg(feature = "redis")]
pub mod redis_store;
pub mod store;

/// Whether this build can use Redis (the `redis` cargo feature).
pub const REDIS_SUPPORT: bool = cfg!(feature = "redis");

/// What a config that asks for Redis is told by a build without it.
pub const NO_REDIS: &str = "this build has no Redis support; rebuild with --features redis";

pub use gcra::{Decision, Quota, QuotaError};
pub use lease::{LeaseTable, Take};
pub use redis_store::{RedisStore, StoreError};
pub use store::KeyedLimiter;
