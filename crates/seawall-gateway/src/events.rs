//! Resilience events: the gateway's own account of what happened (a breaker changed
//! state, an endpoint was ejected or returned, a health check flipped, a fallback answered,
//! a fault was switched, the config was reloaded), streamed by the admin API's `GET
//! /events` as server-sent events.
//!
//! Built on one `tokio::sync::broadcast` channel, fed where those facts arise. Why this
//! shape: a slow subscriber only lags (it misses events and is told how many), it never
//! slows the gateway; with no subscriber, publishing is one atomic load. Fallbacks happen
//! on the data path and can be many, so they are sampled first: at most
//! [`FALLBACKS_PER_SECOND`] per second per route (routes share [`SLOTS`] lock-free slots
//! by hash), and only while someone listens.

use std::{
    hash::{Hash, Hasher},
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use serde::Serialize;
use tokio::sync::broadcast;

/// Fallback events sent per second per route (slot), at most.
pub const FALLBACKS_PER_SECOND: u64 = 5;
/// Sampling slots for fallback events.
pub const SLOTS: usize = 64;
/// Events buffered per subscriber before it lags.
const CAPACITY: usize = 1024;

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Unix time in milliseconds.
    pub at_ms: u64,
    /// `breaker`, `ejected`, `returned`, `health`, `fallback`, `fault_on`, `fault_off`,
    /// `reload`.
    pub kind: &'static str,
    /// What it is about: an upstream, a route, a fault.
    pub name: String,
    /// Details for people, e.g. `closed -> open (failure_ratio)`.
    pub detail: String,
}

/// The channel and its subscriber count.
#[derive(Debug)]
pub struct Events {
    tx: broadcast::Sender<Arc<Event>>,
    listening: Arc<AtomicUsize>,
    /// Per slot: the second (high 48 bits) and fallbacks sent in it (low 16 bits).
    slots: [AtomicU64; SLOTS],
}

impl Default for Events {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(CAPACITY).0,
            listening: Arc::default(),
            slots: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// A subscription; dropping it stops the count of listeners including it.
#[derive(Debug)]
pub struct Subscription {
    /// The events from now on.
    pub rx: broadcast::Receiver<Arc<Event>>,
    listening: Arc<AtomicUsize>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.listening.fetch_sub(1, Ordering::Relaxed);
    }
}

fn now() -> std::time::Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

impl Events {
    /// Subscribes to every event from now on.
    pub fn subscribe(&self) -> Subscription {
        self.listening.fetch_add(1, Ordering::Relaxed);
        Subscription {
            rx: self.tx.subscribe(),
            listening: self.listening.clone(),
        }
    }

    /// Whether anyone listens (so callers can skip building an event).
    pub fn listening(&self) -> bool {
        self.listening.load(Ordering::Relaxed) > 0
    }

    /// Publishes an event; nothing when nobody listens.
    pub fn publish(&self, kind: &'static str, name: &str, detail: impl FnOnce() -> String) {
        if !self.listening() {
            return;
        }
        let at_ms = u64::try_from(now().as_millis()).unwrap_or(u64::MAX);
        // No receiver left is not an error: the count can be briefly stale.
        let _ = self.tx.send(Arc::new(Event {
            at_ms,
            kind,
            name: name.to_owned(),
            detail: detail(),
        }));
    }

    /// Publishes a fallback on `route`, sampled (module docs).
    pub fn fallback(&self, route: &str, detail: impl FnOnce() -> String) {
        if self.listening() && self.sample(route, now().as_secs()) {
            self.publish("fallback", route, detail);
        }
    }

    /// Whether one more fallback event of `route` fits in second `second`.
    fn sample(&self, route: &str, second: u64) -> bool {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        route.hash(&mut h);
        let slot = &self.slots[(h.finish() as usize) % SLOTS];
        let mut current = slot.load(Ordering::Relaxed);
        loop {
            let (s, n) = (current >> 16, current & 0xffff);
            let next = if s == second {
                if n >= FALLBACKS_PER_SECOND {
                    return false;
                }
                current + 1
            } else {
                (second << 16) | 1
            };
            match slot.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(seen) => current = seen,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_built_without_a_listener() {
        let e = Events::default();
        e.publish("reload", "x", || panic!("built without a listener"));
    }

    #[test]
    fn fallbacks_are_capped_per_second_per_route() {
        let e = Events::default();
        let sent = (0..20).filter(|_| e.sample("api", 7)).count();
        assert_eq!(sent as u64, FALLBACKS_PER_SECOND);
        assert!(e.sample("api", 8), "a new second starts afresh");
    }

    #[tokio::test]
    async fn a_slow_subscriber_lags_and_the_publisher_never_waits() {
        let e = Events::default();
        let mut s = e.subscribe();
        for i in 0..(CAPACITY + 10) {
            e.publish("reload", "x", || i.to_string());
        }
        assert!(matches!(
            s.rx.recv().await,
            Err(broadcast::error::RecvError::Lagged(10))
        ));
        drop(s);
        assert!(!e.listening());
    }
}
