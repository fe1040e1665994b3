//! `reset_peer`: on the first data (or close) through it, waits `timeout` ms and then
//! resets both sides of the connection (TCP RST, through `SO_LINGER` 0). What arrives in
//! the meantime is dropped, as in Toxiproxy.

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::chain::{Ctx, Item};

/// Attributes, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResetPeer {
    pub timeout: i64,
}

/// When the reset is due, once something has arrived.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) deadline: Option<Instant>,
}

impl ResetPeer {
    pub(crate) fn apply(&self, state: &mut State, _item: Item, ctx: &mut Ctx<'_>) {
        if state.deadline.is_none() {
            state.deadline = Some(ctx.now + super::millis(self.timeout));
        }
    }
}
