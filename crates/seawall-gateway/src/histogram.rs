//! A lock-free histogram for the request path.
//!
//! prometheus-client's `Histogram` keeps its buckets behind a mutex, so every request to a
//! route would take the same lock to record its duration. This one is a fixed array of
//! atomic counters (one per bucket, plus the count and the sum kept as the bits of an
//! `f64`), encoded in the same classic Prometheus histogram format. Readers (a scrape) may
//! see a bucket incremented a moment before the count; Prometheus tolerates that, and the
//! skew is bounded by the observations in flight.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use prometheus_client::{
    encoding::{EncodeMetric, MetricEncoder, NoLabelSet},
    metrics::{MetricType, TypedMetric},
};

/// A histogram with fixed bucket bounds. Cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct AtomicHistogram {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Upper bounds, ascending, the last being infinity (encoded as `+Inf`).
    bounds: Box<[f64]>,
    /// Observations per bucket (not cumulative; the encoder accumulates).
    counts: Box<[AtomicU64]>,
    count: AtomicU64,
    sum_bits: AtomicU64,
}

impl AtomicHistogram {
    /// A histogram with these upper bounds (ascending; `+Inf` is added).
    pub fn new(bounds: impl IntoIterator<Item = f64>) -> Self {
        let bounds: Box<[f64]> = bounds
            .into_iter()
            .chain(std::iter::once(f64::INFINITY))
            .collect();
        let counts = bounds.iter().map(|_| AtomicU64::new(0)).collect();
        Self {
            inner: Arc::new(Inner {
                bounds,
                counts,
                count: AtomicU64::new(0),
                sum_bits: AtomicU64::new(0f64.to_bits()),
            }),
        }
    }

    /// Records one value.
    pub fn observe(&self, v: f64) {
        let i = &self.inner;
        // Few buckets: a linear scan beats a binary search's branches; NaN goes to +Inf.
        let bucket = i
            .bounds
            .iter()
            .position(|b| v <= *b)
            .unwrap_or(i.bounds.len() - 1);
        i.counts[bucket].fetch_add(1, Ordering::Relaxed);
        i.count.fetch_add(1, Ordering::Relaxed);
        let mut old = i.sum_bits.load(Ordering::Relaxed);
        loop {
            let new = (f64::from_bits(old) + v).to_bits();
            match i
                .sum_bits
                .compare_exchange_weak(old, new, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(current) => old = current,
            }
        }
    }

    /// (sum, count, per-bucket counts) as of now.
    fn read(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let i = &self.inner;
        let buckets = i
            .bounds
            .iter()
            .zip(i.counts.iter())
            .map(|(b, c)| (*b, c.load(Ordering::Relaxed)))
            .collect();
        (
            f64::from_bits(i.sum_bits.load(Ordering::Relaxed)),
            i.count.load(Ordering::Relaxed),
            buckets,
        )
    }
}

impl TypedMetric for AtomicHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let (sum, count, buckets) = self.read();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::{encoding::text::encode, registry::Registry};

    use super::*;

    #[test]
    fn encodes_like_a_prometheus_histogram() {
        let h = AtomicHistogram::new([0.1, 1.0]);
        for v in [0.05, 0.1, 0.5, 2.0, f64::NAN] {
            h.observe(v);
        }
        let mut r = Registry::default();
        r.register("d", "help", h.clone());
        let mut out = String::new();
        encode(&mut out, &r).unwrap();
        assert!(out.contains("d_bucket{le=\"0.1\"} 2"), "{out}");
        assert!(out.contains("d_bucket{le=\"1.0\"} 3"), "{out}");
        assert!(out.contains("d_bucket{le=\"+Inf\"} 5"), "{out}");
        assert!(out.contains("d_count 5"), "{out}");
    }

    #[test]
    fn concurrent_observations_are_all_counted() {
        let h = AtomicHistogram::new([0.5]);
        std::thread::scope(|s| {
            for _ in 0..4 {
                let h = h.clone();
                s.spawn(move || (0..10_000).for_each(|_| h.observe(1.0)));
            }
        });
        let (sum, count, buckets) = h.read();
        assert_eq!(count, 40_000);
        assert_eq!(sum, 40_000.0);
        assert_eq!(buckets[1].1, 40_000);
    }
}
