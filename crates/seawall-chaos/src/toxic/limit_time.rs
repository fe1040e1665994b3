//! `limit_time` (an extension; Toxiproxy issue #195): data passes untouched, and the
//! connection is closed `time` ms after the toxic took effect on it, whatever is in
//! flight. It models a server or middlebox that cuts long-lived connections.

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// Attributes, in milliseconds; 0 or less closes at once.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitTime {
    pub time: i64,
}

/// When it closes the connection.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) deadline: Option<Instant>,
}

impl LimitTime {
    pub(crate) fn start(&self, now: Instant) -> State {
        State {
            deadline: Some(now + super::millis(self.time)),
        }
    }
}
