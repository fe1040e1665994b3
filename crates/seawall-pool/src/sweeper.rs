//! The background task that closes idle connections after `idle_timeout`, and idle ones
//! that reached `max_lifetime` (HTTP/2 ones too: idle means no stream in flight).
//!
//! One task per pool, ticking at `PoolSettings::sweep_interval`. It is only a janitor:
//! checkout also refuses expired connections, so the sweeper's timing decides when idle
//! sockets are released upstream, never whether a stale one is used. It stops when the
//! last `Pool` clone is dropped (`Shared::stop`), or when the runtime shuts down.

use std::sync::Arc;

use tokio::time::{Instant, MissedTickBehavior};

use crate::options::Protocol;
use crate::pool::Shared;

pub(crate) fn spawn(shared: Arc<Shared>) {
    tokio::spawn(run(shared));
}

async fn run(shared: Arc<Shared>) {
    let timeout = shared.common.settings.idle_timeout;
    let mut ticker = tokio::time::interval(shared.common.settings.sweep_interval());
    // After a stall (e.g. a paused clock or an overloaded box) one sweep is enough.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shared.stop.notified() => break,
            _ = ticker.tick() => {}
        }
        if shared.common.is_closed() {
            break;
        }
        let now = Instant::now();
        for endpoint in shared.endpoints.iter() {
            let cutoff = now.checked_sub(timeout);
            if let Some(cutoff) = cutoff {
                endpoint.evict_idle_since(cutoff);
            }
            endpoint.evict_past_lifetime(now);
            if shared.common.protocol != Protocol::Http1 {
                endpoint.h2.sweep(endpoint, now, cutoff);
            }
        }
    }
}
