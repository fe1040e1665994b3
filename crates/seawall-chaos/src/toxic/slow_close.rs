//! `slow_close`: data passes untouched; the close waits `delay` ms.

use serde::{Deserialize, Serialize};

use crate::chain::{Ctx, Item};

/// Attributes, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SlowClose {
    pub delay: i64,
}

impl SlowClose {
    pub(crate) fn apply(&self, item: Item, ctx: &mut Ctx<'_>) {
        match item {
            Item::Data(_) => ctx.pass(item),
            close => {
                let at = ctx.now + super::millis(self.delay);
                ctx.emit_at(at, close);
            }
        }
    }
}
