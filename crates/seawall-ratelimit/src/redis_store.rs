//! The Redis-backed GCRA: one `EVALSHA` per decision, evaluated in Redis with Redis's own
//! clock (`TIME`), so a fleet of gateways shares one limit whatever their clock skew.
//!
//! The script mirrors [`crate::gcra::decide`] (same redis-cell semantics, same smoothing),
//! in microseconds: Lua numbers are doubles, exact up to 2^53 µs (285 years of epoch).
//! Keys are `<prefix>{<route>:<limit>:<hash>}`: the braces are a Redis Cluster hash tag,
//! so each key lives whole on one node and keys spread over the cluster.
//!
//! Every call is bounded by `timeout` (connect and response), and wrapped in a
//! [`Breaker`] so that while Redis is down, decisions skip it at no cost.

use std::time::Duration;

use redis::{Client, Script, aio::ConnectionManager};
use tokio::time::Instant;

pub use crate::error::StoreError;
use crate::{Decision, Quota, breaker::Breaker};

/// GCRA in Redis. KEYS[1]: the key. ARGV: interval µs, burst, quantity, max wait µs,
/// and (tests only) a fixed "now" in µs instead of `TIME`.
/// Returns {limited, limit, remaining, retry_after µs (-1: never), reset_after µs, wait µs}.
const GCRA_LUA: &str = r#"
local now
if ARGV[5] then
  now = tonumber(ARGV[5])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local quantity = tonumber(ARGV[3])
local max_wait = tonumber(ARGV[4])
local tau = interval * burst
local increment = interval * quantity
local tat = tonumber(redis.call('GET', KEYS[1])) or now
local new_tat = math.max(tat, now) + increment
local allow_at = new_tat - tau
local wait = math.max(allow_at - now, 0)
if allow_at > now and (increment > tau or wait > max_wait) then
  local ttl = math.max(tat - now, 0)
  local retry = -1
  if increment <= tau then retry = wait end
  return {1, burst, math.max(math.floor((tau - ttl) / interval), 0), retry, ttl, 0}
end
local ttl = new_tat - now
if ttl > 0 then
  redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil(ttl / 1000))
end
return {0, burst, math.max(math.floor((tau - ttl) / interval), 0), -1, ttl, wait}
"#;

/// One Redis (one URL), shared by every limit that uses it.
pub struct RedisStore {
    client: Client,
    timeout: Duration,
    conn: tokio::sync::Mutex<Option<ConnectionManager>>,
    script: Script,
    breaker: Breaker,
    epoch: Instant,
}

impl RedisStore {
    /// A store for `url`; nothing connects until the first decision.
    pub fn new(url: &str, timeout: Duration, cooldown: Duration) -> Result<Self, String> {
        // The URL may hold a password: never echo it back in the error.
        let client =
            Client::open(url).map_err(|e| format!("invalid redis url ({:?})", e.kind()))?;
        Ok(Self {
            client,
            timeout,
            conn: tokio::sync::Mutex::new(None),
            script: Script::new(GCRA_LUA),
            breaker: Breaker::new(u64::try_from(cooldown.as_nanos()).unwrap_or(u64::MAX)),
            epoch: Instant::now(),
        })
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// True while the breaker keeps Redis out of the path.
    pub fn breaker_open(&self) -> bool {
        self.breaker.is_open()
    }

    /// Decides one request against Redis's clock.
    pub async fn check(
        &self,
        key: &str,
        quota: &Quota,
        quantity: u32,
        max_wait: Duration,
    ) -> Result<Decision, StoreError> {
        self.check_at(key, quota, quantity, max_wait, None).await
    }

    /// Like [`RedisStore::check`], but when `now_us` is set the script uses it instead of
    /// Redis's `TIME` (tests replay a timeline with it; the gateway never sets it).
    pub async fn check_at(
        &self,
        key: &str,
        quota: &Quota,
        quantity: u32,
        max_wait: Duration,
        now_us: Option<u64>,
    ) -> Result<Decision, StoreError> {
        if !self.breaker.admit(self.now()) {
            return Err(StoreError::Skipped);
        }
        // One deadline for connect + script, so no request waits longer than `timeout`.
        let result = tokio::time::timeout(
            self.timeout,
            self.invoke(key, quota, quantity, max_wait, now_us),
        )
        .await;
        match result {
            Ok(Ok(d)) => {
                self.breaker.success();
                Ok(d)
            }
            Ok(Err(e)) => {
                self.breaker.failure(self.now());
                Err(e)
            }
            Err(_) => {
                self.breaker.failure(self.now());
                Err(StoreError::Timeout)
            }
        }
    }

    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1);
        let c = ConnectionManager::new_with_config(self.client.clone(), config)
            .await
            .map_err(|e| StoreError::Failed(describe(&e)))?;
        *slot = Some(c.clone());
        Ok(c)
    }

    async fn invoke(
        &self,
        key: &str,
        quota: &Quota,
        quantity: u32,
        max_wait: Duration,
        now_us: Option<u64>,
    ) -> Result<Decision, StoreError> {
        let mut conn = self.connection().await?;
        let interval_us = quota.interval().as_micros().max(1);
        let max_wait_us = u64::try_from(max_wait.as_micros()).unwrap_or(u64::MAX / 2);
        let mut call = self.script.key(key);
        call.arg(u64::try_from(interval_us).unwrap_or(u64::MAX))
            .arg(quota.burst())
            .arg(quantity)
            .arg(max_wait_us);
        if let Some(now) = now_us {
            call.arg(now);
        }
        let reply: Vec<i64> = call
            .invoke_async(&mut conn)
            .await
            .map_err(|e| StoreError::Failed(describe(&e)))?;
        let &[limited, limit, remaining, retry, reset, wait] = reply.as_slice() else {
            return Err(StoreError::Failed("unexpected script reply".into()));
        };
        let us = |v: i64| Duration::from_micros(u64::try_from(v).unwrap_or(0));
        Ok(Decision {
            allowed: limited == 0,
            limit: u32::try_from(limit).unwrap_or(0),
            remaining: u32::try_from(remaining).unwrap_or(0),
            retry_after: (retry >= 0 && limited != 0).then(|| us(retry)),
            reset_after: us(reset),
            wait: us(wait),
        })
    }
}

/// The error's kind and the server's message, never the connection details (the URL may
/// carry a password).
fn describe(e: &redis::RedisError) -> String {
    match e.detail() {
        Some(detail) => format!("{:?}: {detail}", e.kind()),
        None => format!("{:?}", e.kind()),
    }
}
