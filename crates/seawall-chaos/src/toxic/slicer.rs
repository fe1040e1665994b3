//! `slicer`: cuts each chunk into slices of about `average_size` bytes (± up to
//! `size_variation`), `delay` microseconds apart. Toxiproxy bisects recursively; slicing
//! from the front with the same size law gives the same sizes without its edge cases
//! (an average of 0, or a variation larger than the average, never ends or panics there).

use serde::{Deserialize, Serialize};
use tokio::time::Duration;

use crate::chain::{Chunk, Ctx, Item};

/// Attributes: sizes in bytes, `delay` in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Slicer {
    pub average_size: i64,
    pub size_variation: i64,
    pub delay: i64,
}

impl Slicer {
    fn slice_len(&self, rng: &mut fastrand::Rng) -> usize {
        let average = self.average_size.max(1);
        let variation = self.size_variation.clamp(0, average - 1);
        let len = if variation > 0 {
            average.saturating_add(rng.i64(-variation..=variation))
        } else {
            average
        };
        usize::try_from(len.max(1)).unwrap_or(1)
    }

    pub(crate) fn apply(&self, item: Item, ctx: &mut Ctx<'_>) {
        let Item::Data(chunk) = item else {
            ctx.pass(item);
            return;
        };
        let gap =
            Duration::from_micros(u64::try_from(self.delay).unwrap_or(0)).min(super::MAX_WAIT);
        let mut data = chunk.data;
        let mut at = ctx.now;
        while !data.is_empty() {
            let len = self.slice_len(ctx.rng).min(data.len());
            let part = data.split_to(len);
            let stamp = chunk.stamp;
            ctx.emit_at(at, Item::Data(Chunk { data: part, stamp }));
            at += gap;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use tokio::time::Instant;

    fn slices(slicer: &Slicer, len: usize) -> Vec<usize> {
        let mut rng = fastrand::Rng::with_seed(3);
        let mut out = Vec::new();
        let now = Instant::now();
        let mut ctx = Ctx {
            now,
            rng: &mut rng,
            out: &mut out,
        };
        let data = Bytes::from(vec![0u8; len]);
        slicer.apply(Item::Data(Chunk { data, stamp: now }), &mut ctx);
        out.iter()
            .map(|e| match &e.item {
                Item::Data(c) => c.data.len(),
                _ => 0,
            })
            .collect()
    }

    #[test]
    fn absurd_attributes_neither_panic_nor_overflow() {
        let huge = Slicer {
            average_size: i64::MAX,
            size_variation: i64::MAX,
            delay: i64::MAX,
        };
        assert_eq!(slices(&huge, 100), vec![100]);
    }

    #[test]
    fn an_average_of_zero_still_ends_in_one_byte_slices() {
        let zero = Slicer::default();
        assert_eq!(slices(&zero, 5), vec![1; 5]);
    }

    #[test]
    fn slices_stay_within_the_variation_and_add_up() {
        let slicer = Slicer {
            average_size: 10,
            size_variation: 50,
            delay: 0,
        };
        let sizes = slices(&slicer, 1000);
        assert_eq!(sizes.iter().sum::<usize>(), 1000);
        assert!(
            sizes[..sizes.len() - 1]
                .iter()
                .all(|n| (1..=19).contains(n))
        );
    }
}
