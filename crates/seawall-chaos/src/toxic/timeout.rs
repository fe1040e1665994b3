//! `timeout`: passes nothing. With `timeout` > 0 it closes the connection that many ms
//! after it took effect; with 0 it holds the connection open until the toxic is removed,
//! and then (as Toxiproxy) the connection is closed, since the data it swallowed is gone.

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::chain::{Ctx, Item};

/// Attributes, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Timeout {
    pub timeout: i64,
}

/// When it closes the connection, if ever.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) deadline: Option<Instant>,
}

impl Timeout {
    pub(crate) fn start(&self, now: Instant) -> State {
        let deadline = (self.timeout > 0).then(|| now + super::millis(self.timeout));
        State { deadline }
    }

    pub(crate) fn apply(&self, item: Item, ctx: &mut Ctx<'_>) {
        match item {
            // Swallowed.
            Item::Data(_) => {}
            // The source closed: so does the connection (nothing was passed anyway).
            _ => ctx.pass(Item::Close),
        }
    }
}
