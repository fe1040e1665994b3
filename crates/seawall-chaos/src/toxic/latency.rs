//! `latency`: every chunk waits `latency` ms (± up to `jitter` ms) from the moment it was
//! read. The wait counts from the read, not from when the chunk reached this toxic, so
//! chunks read while an earlier one waits are not delayed twice.
//!
//! Extension (Toxiproxy issue #556): `distribution` picks how `jitter` spreads the delay:
//! `uniform` (Toxiproxy's, the default), `normal` (jitter is the standard deviation) or
//! `exponential` (a long tail above `latency`, of mean `jitter`). Delays below 0 are 0.

use serde::{Deserialize, Serialize};
use tokio::time::Duration;

use crate::chain::{Ctx, Item};

/// Attributes, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Latency {
    pub latency: i64,
    pub jitter: i64,
    /// Absent unless set, so Toxiproxy clients that read attributes as numbers are safe.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distribution: Option<Distribution>,
}

/// How `jitter` spreads the delay.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    /// Uniform in `[latency - jitter, latency + jitter)`.
    Uniform,
    /// Normal around `latency`, standard deviation `jitter`.
    Normal,
    /// `latency` plus an exponential tail of mean `jitter`.
    Exponential,
}

impl Latency {
    /// This chunk's delay.
    fn delay(&self, rng: &mut fastrand::Rng) -> Duration {
        let jitter = self.jitter.max(0);
        if jitter == 0 {
            return super::millis(self.latency);
        }
        let offset = match self.distribution.unwrap_or(Distribution::Uniform) {
            Distribution::Uniform => {
                return super::millis(self.latency.saturating_add(rng.i64(-jitter..jitter)));
            }
            Distribution::Normal => standard_normal(rng) * jitter as f64,
            // Inverse transform; 1 - f64() is in (0, 1], so the log is finite.
            Distribution::Exponential => -(1.0 - rng.f64()).ln() * jitter as f64,
        };
        let ms = (self.latency as f64 + offset).max(0.0);
        Duration::from_secs_f64(ms / 1000.0).min(super::MAX_WAIT)
    }

    pub(crate) fn apply(&self, item: Item, ctx: &mut Ctx<'_>) {
        match item {
            Item::Data(mut chunk) => {
                let at = (chunk.stamp + self.delay(ctx.rng)).max(ctx.now);
                chunk.stamp = at;
                ctx.emit_at(at, Item::Data(chunk));
            }
            // Earlier data has already been let through: the close follows at once.
            other => ctx.pass(other),
        }
    }
}

/// A standard normal draw (Box-Muller).
fn standard_normal(rng: &mut fastrand::Rng) -> f64 {
    let u1 = 1.0 - rng.f64();
    let u2 = rng.f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_and_min(toxic: &Latency) -> (f64, f64) {
        let mut rng = fastrand::Rng::with_seed(11);
        let draws: Vec<f64> = (0..20_000)
            .map(|_| toxic.delay(&mut rng).as_secs_f64() * 1000.0)
            .collect();
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        (mean, draws.iter().copied().fold(f64::MAX, f64::min))
    }

    #[test]
    fn each_distribution_has_its_mean_and_floor() {
        let of = |distribution| Latency {
            latency: 100,
            jitter: 20,
            distribution,
        };
        let (mean, min) = mean_and_min(&of(None));
        assert!((mean - 100.0).abs() < 1.0 && min >= 80.0, "{mean} {min}");
        let (mean, _) = mean_and_min(&of(Some(Distribution::Normal)));
        assert!((mean - 100.0).abs() < 1.0, "{mean}");
        let (mean, min) = mean_and_min(&of(Some(Distribution::Exponential)));
        assert!((mean - 120.0).abs() < 1.5 && min >= 100.0, "{mean} {min}");
    }

    #[test]
    fn the_field_is_left_out_unless_set() {
        let plain = serde_json::to_string(&Latency::default()).unwrap();
        assert_eq!(plain, r#"{"latency":0,"jitter":0}"#);
        let parsed: Latency =
            serde_json::from_str(r#"{"latency":5,"distribution":"normal"}"#).unwrap();
        assert_eq!(parsed.distribution, Some(Distribution::Normal));
        assert!(serde_json::from_str::<Latency>(r#"{"distribution":"zipf"}"#).is_err());
    }
}
