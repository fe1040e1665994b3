//! The pollers beside the load: breaker states from the admin `/breakers` every 200 ms,
//! `/metrics` every second (and once after the load), and the `during` probes. Each ends
//! when the load is done; what they saw is kept in [`Polled`].

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{sync::watch, time::Instant};

use crate::{
    admin::Admin,
    control::Base,
    events::Timeline,
    metrics::Scrape,
    probe::{self, ProbeResult, ProbeTargets},
    scenario::Scenario,
    threshold::eval::BreakerSample,
};

/// What the pollers saw.
#[derive(Debug, Default)]
pub(crate) struct Polled {
    pub(crate) breakers: Vec<BreakerSample>,
    pub(crate) scrapes: Vec<(Duration, Scrape)>,
    pub(crate) probes: Vec<(String, ProbeResult)>,
}

/// The lock's data, even after a panic elsewhere.
pub(crate) fn lock<T: Default>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poller that panicked mid-push leaves usable data; keep going with it.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Reads `/breakers` every 200 ms; a state change is also an event on the timeline.
pub(crate) async fn poll_breakers(
    admin: Admin,
    polled: Arc<Mutex<Polled>>,
    timeline: Timeline,
    start: Instant,
    mut done: watch::Receiver<bool>,
) {
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = done.wait_for(|d| *d) => return,
        }
        let Ok(states) = admin.breakers().await else {
            continue;
        };
        let at = start.elapsed();
        let mut p = lock(&polled);
        for (upstream, state) in states {
            if last.get(&upstream) != Some(&state) {
                timeline.push(at, "breaker", &upstream, format!("breaker {state}"));
                last.insert(upstream.clone(), state.clone());
            }
            p.breakers.push(BreakerSample {
                at,
                upstream,
                state,
            });
        }
    }
}

/// Scrapes `/metrics` every second, and once more when the load is done.
pub(crate) async fn poll_metrics(
    admin: Base,
    polled: Arc<Mutex<Polled>>,
    start: Instant,
    mut done: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let last = tokio::select! {
            _ = tick.tick() => false,
            _ = done.wait_for(|d| *d) => true,
        };
        // The last scrape comes after the load, so counters cover its end.
        if let Ok(s) = probe::scrape(&admin).await {
            lock(&polled).scrapes.push((start.elapsed(), s));
        }
        if last {
            return;
        }
    }
}

/// Runs the `during` probes every `steady_state.interval`.
pub(crate) async fn poll_probes(
    s: Scenario,
    targets: ProbeTargets,
    polled: Arc<Mutex<Polled>>,
    timeline: Timeline,
    start: Instant,
    mut done: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(s.steady_state.interval.get());
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = done.wait_for(|d| *d) => return,
        }
        for p in &s.steady_state.during {
            let r = probe::run(p, &targets).await;
            if !r.ok {
                timeline.push(start.elapsed(), "probe_failed", &r.name, &r.detail);
            }
            lock(&polled).probes.push(("during".into(), r));
        }
    }
}
