//! Local token leases for hot keys of a Redis-backed limit, with injected time.
//!
//! Why: with `store: redis` every decision is a Redis round trip. A lease takes `N` tokens
//! from Redis in one call (GCRA with quantity `N`) and spends them here, one per request,
//! so a hot key costs one call per `N` requests. A refusal is remembered too (until the
//! time Redis said `N` tokens would be free again), so a key hammering the limit does not
//! cost a call per refused request either.
//!
//! The price is accuracy, never more than the global limit over time: tokens are debited
//! in Redis when leased, so a fleet admits no more in total than Redis granted. But a
//! leased token may be spent later than it was taken, so at any moment each instance can
//! hold up to `N − 1` tokens of a key that the rest of the fleet already counts as used
//! (a short-term over-admission of up to `N − 1` per instance per key), and tokens still
//! unspent when their lease expires (`max_age`), or when the entry is evicted, are lost:
//! the client gets fewer than its limit.
//!
//! At most one lease call per key is in flight on an instance: a request that misses
//! while one is in flight is told to wait for it (the caller wakes it when the call
//! reports) and then takes from the new lease, so concurrent misses neither stack
//! several leases nor each cost a call. The table's memory is bounded like
//! [`crate::KeyedLimiter`].

use std::{collections::HashMap, sync::Mutex};

const SHARDS: usize = 16;

/// One key's lease.
#[derive(Debug, Clone, Copy, Default)]
struct Lease {
    /// Leased tokens not yet spent.
    tokens: u32,
    /// When unspent tokens expire (ns).
    expires: u64,
    /// Until when requests are refused without asking Redis (ns; 0: none).
    refused_until: u64,
    /// When Redis is back to a full burst for this key, as of the last lease (ns).
    reset_at: u64,
    /// When the lease call in flight started, if one is.
    in_flight_since: Option<u64>,
}

impl Lease {
    /// True when the entry no longer changes any decision.
    fn is_dead(&self, now: u64, stale: u64) -> bool {
        (self.tokens == 0 || self.expires <= now)
            && self.refused_until <= now
            && self
                .in_flight_since
                .is_none_or(|s| now >= s.saturating_add(stale))
    }
}

/// What the table says about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Allowed with a leased token; `remaining` tokens are left in the lease, and Redis
    /// is back to a full burst after `reset_after` ns.
    Leased { remaining: u32, reset_after: u64 },
    /// Redis refused a lease recently: refused for `retry_after` more ns.
    Refused { retry_after: u64 },
    /// Ask Redis for a lease; the caller must then report with [`LeaseTable::granted`],
    /// [`LeaseTable::refused`] or [`LeaseTable::failed`].
    Ask,
    /// Another request's lease call for this key is in flight: wait until it reports (at
    /// most `stale` ns, after which it is taken to be lost), then take again.
    Wait { at_most: u64 },
}

/// Leases of one limit, by key hash.
pub struct LeaseTable {
    /// Tokens per lease (`N`, at least 2).
    tokens: u32,
    /// How long leased tokens may be spent (ns).
    max_age: u64,
    /// A lease call older than this is taken to be lost (its request was dropped).
    stale: u64,
    shard_cap: usize,
    shards: Vec<Mutex<HashMap<u64, Lease>>>,
}

impl LeaseTable {
    /// Leases of `tokens` that expire `max_age_ns` after they are taken; about `max_keys`
    /// keys held at most. `stale_ns` bounds how long one lease call is waited for (the
    /// store timeout is enough: no call outlives it).
    pub fn new(tokens: u32, max_age_ns: u64, stale_ns: u64, max_keys: usize) -> Self {
        Self {
            tokens: tokens.max(2),
            max_age: max_age_ns.max(1),
            stale: stale_ns.max(1),
            shard_cap: (max_keys / SHARDS).max(1),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// Tokens one lease call asks for.
    pub fn tokens(&self) -> u32 {
        self.tokens
    }

    fn shard(&self, key: u64) -> std::sync::MutexGuard<'_, HashMap<u64, Lease>> {
        // A map of plain numbers stays consistent if a holder panicked.
        self.shards[(key % SHARDS as u64) as usize]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Decides from the lease of `key` at `now`, or says how to ask Redis.
    pub fn take(&self, key: u64, now: u64) -> Take {
        let mut map = self.shard(key);
        let entry = match map.get_mut(&key) {
            Some(e) => e,
            None => {
                if map.len() >= self.shard_cap {
                    self.evict(&mut map, now);
                }
                map.entry(key).or_default()
            }
        };
        if entry.tokens > 0 && entry.expires > now {
            entry.tokens -= 1;
            return Take::Leased {
                remaining: entry.tokens,
                reset_after: entry.reset_at.saturating_sub(now),
            };
        }
        entry.tokens = 0;
        if entry.refused_until > now {
            return Take::Refused {
                retry_after: entry.refused_until - now,
            };
        }
        match entry.in_flight_since {
            Some(since) if now < since.saturating_add(self.stale) => Take::Wait {
                at_most: since.saturating_add(self.stale) - now,
            },
            _ => {
                entry.in_flight_since = Some(now);
                Take::Ask
            }
        }
    }

    /// Redis granted the lease asked at `now`: the caller's request spends one token,
    /// the other `N − 1` are kept until `now + max_age`.
    pub fn granted(&self, key: u64, now: u64, reset_after_ns: u64) {
        let mut map = self.shard(key);
        let e = map.entry(key).or_default();
        e.in_flight_since = None;
        e.tokens = self.tokens - 1;
        e.expires = now.saturating_add(self.max_age);
        e.refused_until = 0;
        e.reset_at = now.saturating_add(reset_after_ns);
    }

    /// Redis refused the lease asked at `now`: refuse locally for `retry_after_ns`, when
    /// Redis said a whole lease would be free again.
    pub fn refused(&self, key: u64, now: u64, retry_after_ns: u64) {
        let mut map = self.shard(key);
        let e = map.entry(key).or_default();
        e.in_flight_since = None;
        e.refused_until = e.refused_until.max(now.saturating_add(retry_after_ns));
    }

    /// The lease call failed (Redis down or slow): nothing is leased; the next miss may
    /// ask again.
    pub fn failed(&self, key: u64) {
        if let Some(e) = self.shard(key).get_mut(&key) {
            e.in_flight_since = None;
        }
    }

    /// Keys currently held (for tests).
    pub fn len(&self) -> usize {
        (0..SHARDS)
            .map(|i| {
                self.shards[i]
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .len()
            })
            .sum()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes room in a full shard: drops entries that no longer change a decision, then,
    /// if less than a quarter is free, arbitrary ones until a quarter is (a dropped lease
    /// only loses its tokens, or forgets a refusal and costs one Redis call).
    fn evict(&self, map: &mut HashMap<u64, Lease>, now: u64) {
        map.retain(|_, l| !l.is_dead(now, self.stale));
        let cap = self.shard_cap;
        let target = cap - (cap / 4).max(1).min(cap);
        if map.len() > target {
            let mut drop = map.len() - target;
            map.retain(|_, _| {
                if drop > 0 {
                    drop -= 1;
                    false
                } else {
                    true
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn table() -> LeaseTable {
        LeaseTable::new(10, 1000 * MS, 50 * MS, 1000)
    }

    #[test]
    fn one_lease_serves_n_requests_then_the_next_miss_asks_again() {
        let t = table();
        assert_eq!(t.take(1, 0), Take::Ask);
        t.granted(1, 0, 500 * MS);
        for left in (0..9).rev() {
            match t.take(1, MS) {
                Take::Leased { remaining, .. } => assert_eq!(remaining, left),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(t.take(1, 2 * MS), Take::Ask);
    }

    #[test]
    fn unspent_tokens_expire_with_the_lease() {
        let t = table();
        assert_eq!(t.take(1, 0), Take::Ask);
        t.granted(1, 0, 0);
        assert!(matches!(
            t.take(1, 999 * MS),
            Take::Leased { remaining: 8, .. }
        ));
        assert_eq!(t.take(1, 1000 * MS), Take::Ask, "expired");
    }

    #[test]
    fn a_refusal_is_remembered_until_redis_said_tokens_are_free() {
        let t = table();
        assert_eq!(t.take(1, 0), Take::Ask);
        t.refused(1, 0, 200 * MS);
        assert_eq!(
            t.take(1, 50 * MS),
            Take::Refused {
                retry_after: 150 * MS
            }
        );
        assert_eq!(t.take(1, 200 * MS), Take::Ask);
    }

    #[test]
    fn only_one_lease_call_per_key_is_in_flight() {
        let t = table();
        assert_eq!(t.take(1, 0), Take::Ask);
        assert_eq!(
            t.take(1, MS),
            Take::Wait { at_most: 49 * MS },
            "a concurrent miss waits for the call in flight"
        );
        assert_eq!(t.take(2, MS), Take::Ask, "other keys lease");
        t.granted(1, 2 * MS, 0);
        assert!(matches!(
            t.take(1, 2 * MS),
            Take::Leased { remaining: 8, .. }
        ));
        // A failed call lets the next miss ask again.
        let t = table();
        assert_eq!(t.take(1, 0), Take::Ask);
        t.failed(1);
        assert_eq!(t.take(1, 2 * MS), Take::Ask);
        // A lease call whose request was dropped never reports: it goes stale.
        assert_eq!(t.take(1, 60 * MS), Take::Ask);
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_keys() {
        let t = LeaseTable::new(10, 1000 * MS, 50 * MS, 160);
        for key in 0..100_000u64 {
            let key = key.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            if t.take(key, 0) == (Take::Ask) {
                t.granted(key, 0, 0);
            }
        }
        assert!(t.len() <= 160, "held {}", t.len());
    }
}
