//! `limit_data`: lets `bytes` bytes through, then closes the connection. The count
//! survives updates of the toxic, as in Toxiproxy.

use serde::{Deserialize, Serialize};

use crate::chain::{Ctx, Item};

/// Attributes: the number of bytes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitData {
    pub bytes: i64,
}

/// Bytes let through so far.
#[derive(Debug, Default)]
pub(crate) struct State {
    sent: u64,
}

impl LimitData {
    pub(crate) fn apply(&self, state: &mut State, item: Item, ctx: &mut Ctx<'_>) {
        let limit = u64::try_from(self.bytes).unwrap_or(0);
        let Item::Data(mut chunk) = item else {
            ctx.pass(Item::Close);
            return;
        };
        let left = limit.saturating_sub(state.sent);
        let allowed = usize::try_from(left).unwrap_or(usize::MAX);
        if chunk.data.len() > allowed {
            chunk.data.truncate(allowed);
        }
        state.sent += chunk.data.len() as u64;
        if !chunk.data.is_empty() {
            ctx.pass(Item::Data(chunk));
        }
        if state.sent >= limit {
            ctx.pass(Item::Close);
        }
    }
}
