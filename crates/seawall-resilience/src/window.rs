//! A sliding time window of tallies, split into buckets.
//!
//! Used by the breaker (calls, failures, slow calls) and the retry budget (requests,
//! retries). The window of length `W` is split into `n` buckets of `W / n`; bucket `e`
//! (its *epoch*) holds what happened between `origin + e·W/n` and `origin + (e+1)·W/n`, and
//! lives in slot `e mod n`. A sum covers the current bucket and the `n − 1` before it, so it
//! sees between `W − W/n` and `W` of history: more buckets, finer forgetting.
//!
//! Why buckets rather than a log of events: memory is `O(n)` whatever the traffic, and an
//! outdated bucket is reset lazily when its slot is reused or skipped when summing, so no
//! timer is needed. The origin is the first instant the window sees; instants earlier than
//! it (callers racing) fall into the first bucket rather than failing.

use std::time::Duration;

use tokio::time::Instant;

/// Something that can be counted per bucket and added up across buckets.
pub(crate) trait Tally: Copy + Default {
    /// Adds `other` into `self`.
    fn merge(&mut self, other: &Self);
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot<T> {
    epoch: u64,
    tally: T,
}

/// The bucketed window. `bucket_len` must be non-zero (callers validate it in `try_new`;
/// a zero length is treated as one nanosecond rather than dividing by zero).
#[derive(Debug, Clone)]
pub(crate) struct Window<T> {
    bucket_len: Duration,
    slots: Vec<Slot<T>>,
    origin: Option<Instant>,
}

impl<T: Tally> Window<T> {
    /// A window of `buckets` buckets of `bucket_len` each (at least one bucket).
    pub(crate) fn new(bucket_len: Duration, buckets: u32) -> Self {
        let count = usize::try_from(buckets.max(1)).unwrap_or(1);
        Self {
            bucket_len: bucket_len.max(Duration::from_nanos(1)),
            slots: vec![Slot::default(); count],
            origin: None,
        }
    }

    /// The tally of the bucket `now` falls in, emptied first if its slot held an older
    /// bucket.
    pub(crate) fn current(&mut self, now: Instant) -> &mut T {
        let origin = *self.origin.get_or_insert(now);
        let epoch = self.epoch(origin, now);
        let len = self.slots.len() as u64;
        let index = usize::try_from(epoch % len).unwrap_or(0);
        let slot = &mut self.slots[index];
        if slot.epoch != epoch {
            *slot = Slot {
                epoch,
                tally: T::default(),
            };
        }
        &mut slot.tally
    }

    /// The sum of the buckets still inside the window at `now`.
    pub(crate) fn sum(&self, now: Instant) -> T {
        let mut total = T::default();
        let Some(origin) = self.origin else {
            return total;
        };
        let epoch = self.epoch(origin, now);
        let len = self.slots.len() as u64;
        for slot in &self.slots {
            // A slot is live if its bucket is one of the last `len` buckets. Buckets from the
            // "future" (a caller passed an older `now`) count too: they are recent history.
            if slot.epoch.saturating_add(len) > epoch {
                total.merge(&slot.tally);
            }
        }
        total
    }

    /// Forgets everything (the origin is kept; it only anchors bucket boundaries).
    pub(crate) fn clear(&mut self) {
        self.slots.fill(Slot::default());
    }

    fn epoch(&self, origin: Instant, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(origin).as_nanos();
        let epoch = elapsed / self.bucket_len.as_nanos().max(1);
        u64::try_from(epoch).unwrap_or(u64::MAX)
    }
}
