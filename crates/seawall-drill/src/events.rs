//! The drill's timeline: what happened when (actions taken and undone, breaker changes,
//! probe results, an interrupt), as offsets from the start of the load.
//!
//! Sources other than the drill itself plug in through [`EventSource`]: the gateway's own
//! event stream (server-sent events from the admin API) will be one, merged into the same
//! timeline by [`Timeline::merge`].

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use serde::Serialize;

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Seconds from the start of the load (negative: before it).
    pub at: f64,
    /// What kind: `action_start`, `action_end`, `action_error`, `undo`, `breaker`,
    /// `probe_failed`, `interrupt`, ...
    pub kind: String,
    /// What it is about: an action, an upstream, a probe.
    pub name: String,
    /// Details for people.
    pub detail: String,
}

/// Something that produces events the drill did not cause itself.
pub trait EventSource: Send {
    /// The events that arrived since the last call.
    fn drain(&mut self) -> Vec<Event>;
}

/// The shared, append-only list of events of a run.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    events: Arc<Mutex<Vec<Event>>>,
}

impl Timeline {
    /// Adds an event at offset `at`.
    pub fn push(&self, at: Duration, kind: &str, name: &str, detail: impl Into<String>) {
        self.push_event(Event {
            at: at.as_secs_f64(),
            kind: kind.to_owned(),
            name: name.to_owned(),
            detail: detail.into(),
        });
    }

    /// Adds an event.
    pub fn push_event(&self, event: Event) {
        if let Ok(mut e) = self.events.lock() {
            e.push(event);
        }
    }

    /// Adds everything `source` has.
    pub fn merge(&self, source: &mut dyn EventSource) {
        for e in source.drain() {
            self.push_event(e);
        }
    }

    /// Every event, in time order.
    pub fn events(&self) -> Vec<Event> {
        let mut all = self.events.lock().map(|e| e.clone()).unwrap_or_default();
        all.sort_by(|a, b| a.at.total_cmp(&b.at));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Vec<Event>);

    impl EventSource for Fixed {
        fn drain(&mut self) -> Vec<Event> {
            std::mem::take(&mut self.0)
        }
    }

    #[test]
    fn merged_sources_are_ordered_by_time() {
        let t = Timeline::default();
        t.push(Duration::from_secs(2), "action_start", "fault", "");
        let ev = |at| Event {
            at,
            kind: "breaker".into(),
            name: "x".into(),
            detail: String::new(),
        };
        t.merge(&mut Fixed(vec![ev(3.0), ev(1.0)]));
        let at: Vec<f64> = t.events().iter().map(|e| e.at).collect();
        assert_eq!(at, vec![1.0, 2.0, 3.0]);
    }
}
