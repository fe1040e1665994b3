//! Choosing the endpoint for each try.
//!
//! Two strategies behind one [`Balancer`]:
//! - [`PeakEwma`] (the default): power of two choices over a load cost, as linkerd and
//!   Finagle do. Pick two distinct endpoints at random, send to the cheaper. The cost of an
//!   endpoint is `rtt_estimate × (pending + 1)`: its latency, weighted by the requests
//!   already waiting on it. Two random choices avoid the herd that "always the cheapest"
//!   causes (every gateway piling onto the same endpoint) while still steering away from
//!   slow or busy endpoints, and cost O(1) per pick.
//! - [`RoundRobin`]: each endpoint in turn, for upstreams whose endpoints are known to be
//!   equal, or when latency says nothing (e.g. long-polling).
//!
//! `pick` takes the endpoints to avoid (`excluded`): a retry excludes the endpoint that
//! just failed, and the gateway excludes ejected endpoints (see [`crate::outlier`]).
//! Exclusion is strict; when every endpoint is excluded `pick` returns `None` and the caller
//! decides whether to pick again with a shorter list (e.g. only the ejected ones: better a
//! recently failed endpoint than none).
//!
//! Endpoints are addressed by index, in the order the upstream lists them, the same index
//! the pool uses.

mod peak_ewma;
mod round_robin;
#[cfg(test)]
mod tests;

use std::time::Duration;

use tokio::time::Instant;

pub use self::peak_ewma::{EndpointLoad, InvalidPeakEwma, PeakEwma, PeakEwmaSettings};
pub use self::round_robin::RoundRobin;

/// The strategy an upstream balances with.
#[derive(Debug, Clone)]
pub enum Balancer {
    /// Power of two choices over peak-EWMA cost.
    PeakEwma(PeakEwma),
    /// Each endpoint in turn.
    RoundRobin(RoundRobin),
}

impl Balancer {
    /// The endpoint for the next try, avoiding `excluded`; `None` if none is left.
    pub fn pick(
        &mut self,
        rng: &mut fastrand::Rng,
        now: Instant,
        excluded: &[usize],
    ) -> Option<usize> {
        match self {
            Balancer::PeakEwma(b) => b.pick(rng, now, excluded),
            Balancer::RoundRobin(b) => b.pick(excluded),
        }
    }

    /// A request to endpoint `index` started.
    pub fn start(&mut self, index: usize, now: Instant) {
        if let Balancer::PeakEwma(b) = self {
            b.start(index, now);
        }
    }

    /// A request to endpoint `index` ended without saying anything about the endpoint's
    /// latency (it failed on the client's side): it only leaves the pending count.
    pub fn abandon(&mut self, index: usize) {
        if let Balancer::PeakEwma(b) = self {
            b.abandon(index);
        }
    }

    /// A request to endpoint `index` ended after `rtt` (response head received, or failed).
    pub fn end(&mut self, index: usize, rtt: Duration, now: Instant) {
        if let Balancer::PeakEwma(b) = self {
            b.end(index, rtt, now);
        }
    }

    /// The number of endpoints.
    pub fn len(&self) -> usize {
        match self {
            Balancer::PeakEwma(b) => b.len(),
            Balancer::RoundRobin(b) => b.len(),
        }
    }

    /// True with no endpoints.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The `rank`-th (0-based) index in `0..len` that is not in `excluded`.
fn nth_allowed(len: usize, excluded: &[usize], rank: usize) -> Option<usize> {
    (0..len).filter(|i| !excluded.contains(i)).nth(rank)
}

/// How many indices in `0..len` are not in `excluded` (duplicates and out-of-range entries
/// in `excluded` are harmless).
fn allowed_count(len: usize, excluded: &[usize]) -> usize {
    (0..len).filter(|i| !excluded.contains(i)).count()
}
