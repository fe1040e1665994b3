//! Stand-in for the Redis store in builds without the `redis` feature: same API, but
//! [`RedisStore::new`] always refuses with [`crate::NO_REDIS`], so a config asking for
//! Redis fails when its layer is built instead of the gateway failing to compile.

use std::{convert::Infallible, time::Duration};

pub use crate::error::StoreError;
use crate::{Decision, NO_REDIS, Quota};

/// Cannot be constructed in this build (it holds an uninhabited value), so its methods
/// are never reached.
pub struct RedisStore {
    never: Infallible,
}

impl RedisStore {
    /// Always refuses: this build has no Redis client.
    pub fn new(_url: &str, _timeout: Duration, _cooldown: Duration) -> Result<Self, String> {
        Err(NO_REDIS.to_owned())
    }

    /// Unreachable (no value of this type exists).
    pub fn breaker_open(&self) -> bool {
        match self.never {}
    }

    /// Unreachable (no value of this type exists).
    pub async fn check(
        &self,
        _key: &str,
        _quota: &Quota,
        _quantity: u32,
        _max_wait: Duration,
    ) -> Result<Decision, StoreError> {
        match self.never {}
    }

    /// Unreachable (no value of this type exists).
    pub async fn check_at(
        &self,
        _key: &str,
        _quota: &Quota,
        _quantity: u32,
        _max_wait: Duration,
        _now_us: Option<u64>,
    ) -> Result<Decision, StoreError> {
        match self.never {}
    }
}
