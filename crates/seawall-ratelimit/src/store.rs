//! A per-key table of GCRA state whose memory stays bounded.
//!
//! Keys are 64-bit hashes chosen by the caller (raw client ids never need to be kept).
//! The table is split into shards, each behind its own mutex, so concurrent requests for
//! different keys rarely wait on each other; a lock is held only for one map operation.
//!
//! Bounding memory: when a shard reaches its share of `max_keys`, it first drops every
//! expired key (a TAT in the past behaves exactly like an absent key, so this loses
//! nothing). If that leaves less than a quarter of the shard free, it drops the live
//! entries closest to expiry until a quarter is free — those keys briefly get a fresh
//! burst, the least harmful error — so that one scan pays for many inserts.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use crate::gcra::{Decision, Quota, decide};

const SHARDS: usize = 16;

/// GCRA state for many keys under one quota.
pub struct KeyedLimiter {
    quota: Quota,
    shard_cap: usize,
    shards: Vec<Mutex<HashMap<u64, u64>>>,
}

impl KeyedLimiter {
    /// A limiter holding at most about `max_keys` keys (at least one per shard).
    pub fn new(quota: Quota, max_keys: usize) -> Self {
        Self {
            quota,
            shard_cap: (max_keys / SHARDS).max(1),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// The quota this limiter enforces.
    pub fn quota(&self) -> &Quota {
        &self.quota
    }

    /// Decides one request of `quantity` for `key` at `now` (nanoseconds); see
    /// [`crate::gcra::decide`] for `max_wait`.
    pub fn check(&self, key: u64, now: u64, quantity: u32, max_wait: Duration) -> Decision {
        let shard = &self.shards[(key % SHARDS as u64) as usize];
        // A poisoned lock means another request panicked mid-operation; a map of plain
        // integers is still consistent, so keep limiting rather than fail every request.
        let mut map = shard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (decision, store) =
            decide(&self.quota, map.get(&key).copied(), now, quantity, max_wait);
        if let Some(tat) = store {
            if map.len() >= self.shard_cap && !map.contains_key(&key) {
                evict(&mut map, now, self.shard_cap);
            }
            map.insert(key, tat);
        }
        decision
    }

    /// Keys currently held (for tests and the admin API).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .len()
            })
            .sum()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Makes room in a full shard (module docs): afterwards at least a quarter of it is free.
fn evict(map: &mut HashMap<u64, u64>, now: u64, cap: usize) {
    map.retain(|_, tat| *tat > now);
    // Evicting scans the whole shard, so it must make room for many inserts, not one:
    // when more keys are live than fit, freeing only the few that just expired would
    // make every new key pay a full scan (measured: ~190× slower per decision; see
    // BENCHMARKS.md, "Rate limiting"). So drop live keys, closest to expiry first, until
    // a quarter of the shard is free.
    let target = cap - (cap / 4).max(1).min(cap);
    if map.len() <= target {
        return;
    }
    let drop = map.len() - target;
    let mut tats: Vec<u64> = map.values().copied().collect();
    let (_, cutoff, _) = tats.select_nth_unstable(drop - 1);
    let cutoff = *cutoff;
    let mut dropped = 0;
    map.retain(|_, tat| {
        if *tat <= cutoff && dropped < drop {
            dropped += 1;
            false
        } else {
            true
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn limiter(max_keys: usize) -> KeyedLimiter {
        KeyedLimiter::new(Quota::new(1, Duration::from_secs(1), 2).unwrap(), max_keys)
    }

    #[test]
    fn rate_100_per_second_burst_20_admits_20_at_once_then_exactly_one_per_10ms() {
        let l = KeyedLimiter::new(Quota::new(100, Duration::from_secs(1), 20).unwrap(), 10);
        let ok = |now| l.check(1, now, 1, Duration::ZERO).allowed;
        let t0 = S;
        assert_eq!((0..25).filter(|_| ok(t0)).count(), 20);
        // Offered every millisecond for one second: one admitted per 10 ms, 100 in all.
        let admitted = (1..=1000u64).filter(|ms| ok(t0 + ms * 1_000_000)).count();
        assert_eq!(admitted, 100);
        // Idle for 10 s: back to a full burst of 20, not more.
        let later = t0 + 11 * S;
        assert_eq!((0..25).filter(|_| ok(later)).count(), 20);
    }

    #[test]
    fn keys_are_limited_independently() {
        let l = limiter(1000);
        assert!(l.check(1, S, 1, Duration::ZERO).allowed);
        assert!(l.check(1, S, 1, Duration::ZERO).allowed);
        assert!(!l.check(1, S, 1, Duration::ZERO).allowed);
        assert!(l.check(2, S, 1, Duration::ZERO).allowed);
    }

    #[test]
    fn a_million_distinct_keys_stay_within_max_keys() {
        let l = limiter(1600);
        for key in 0..1_000_000u64 {
            // All live (same instant): eviction must drop live keys to stay bounded.
            l.check(
                key.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                S,
                1,
                Duration::ZERO,
            );
        }
        assert!(l.len() <= 1600, "held {}", l.len());
    }

    #[test]
    fn expired_keys_are_evicted_before_live_ones() {
        let l = limiter(SHARDS); // one key per shard
        let key = 5u64;
        let other = key + SHARDS as u64; // same shard
        assert!(l.check(key, S, 1, Duration::ZERO).allowed);
        assert!(l.check(key, S, 1, Duration::ZERO).allowed);
        assert!(!l.check(key, S, 1, Duration::ZERO).allowed);
        // 10 s later `key` has expired; a new key in its shard takes its place without
        // losing anything: `key` is fresh again either way.
        assert!(l.check(other, 11 * S, 1, Duration::ZERO).allowed);
        assert!(l.check(key, 11 * S, 1, Duration::ZERO).allowed);
    }

    #[test]
    fn refused_requests_store_nothing() {
        let l = limiter(1000);
        // Quantity 3 exceeds the burst of 2: refused, never retryable, nothing kept.
        let d = l.check(9, S, 3, Duration::ZERO);
        assert!(!d.allowed && d.retry_after.is_none());
        assert!(l.is_empty());
    }
}
