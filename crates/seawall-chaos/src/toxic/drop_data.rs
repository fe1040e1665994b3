//! `drop_data` (an extension): each chunk is dropped with a chance of `percent` in 100,
//! the rest pass untouched. The stream the peer reads then has holes in it, as after a
//! middlebox that loses data without resetting: it tests a protocol's framing and
//! checksums, not its timeouts. Drawn per chunk from the connection's seeded generator.

use serde::{Deserialize, Serialize};

use crate::chain::{Ctx, Item};

/// Attributes: `percent`, 0 (drop nothing) to 100 (drop every chunk). An integer, like
/// every Toxiproxy attribute, so clients that read attributes as numbers can list it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DropData {
    pub percent: i64,
}

impl DropData {
    pub(crate) fn apply(&self, item: Item, ctx: &mut Ctx<'_>) {
        let dropped = matches!(item, Item::Data(_)) && ctx.rng.i64(0..100) < self.percent;
        if !dropped {
            ctx.pass(item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::Chunk;
    use bytes::Bytes;
    use tokio::time::Instant;

    fn passed(percent: i64, chunks: usize) -> usize {
        let toxic = DropData { percent };
        let mut rng = fastrand::Rng::with_seed(5);
        let mut out = Vec::new();
        let now = Instant::now();
        for _ in 0..chunks {
            let mut ctx = Ctx {
                now,
                rng: &mut rng,
                out: &mut out,
            };
            let data = Bytes::from_static(b"x");
            toxic.apply(Item::Data(Chunk { data, stamp: now }), &mut ctx);
        }
        out.len()
    }

    #[test]
    fn percent_is_the_share_of_chunks_dropped() {
        assert_eq!(passed(0, 1000), 1000);
        assert_eq!(passed(100, 1000), 0);
        let kept = passed(30, 10_000);
        assert!((6_800..=7_200).contains(&kept), "{kept}");
    }
}
