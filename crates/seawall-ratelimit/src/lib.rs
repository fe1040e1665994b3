//! Seawall's rate limiting, free of I/O and clocks: callers pass the time in.
//!
//! - [`gcra`]: the Generic Cell Rate Algorithm as one pure function over a stored
//!   "theoretical arrival time" (TAT), with redis-cell's `CL.THROTTLE` semantics so the
//!   local and Redis-backed limiters answer identically.
//! - [`store`]: a sharded per-key table of TATs whose memory stays bounded however many
//!   distinct keys arrive.
//! - [`redis_store`]: the same algorithm as a Lua script in Redis (one round trip, Redis's
//!   clock), behind a [`breaker`] so a dead Redis costs no latency.
//!
//! Time is nanoseconds since an epoch the caller chooses (`u64`), so tests drive it
//! exactly and the gateway can use tokio's pausable clock.

pub mod breaker;
pub mod gcra;
pub mod redis_store;
pub mod store;

pub use gcra::{Decision, Quota, QuotaError};
pub use redis_store::{RedisStore, StoreError};
pub use store::KeyedLimiter;
