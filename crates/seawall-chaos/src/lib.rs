//! `seawall chaos`: a TCP fault proxy that existing Toxiproxy clients drive unchanged.
//!
//! Each proxy listens on its own address and forwards every accepted connection to its
//! upstream through two chains of toxics, one per direction (`upstream` is client to
//! server, `downstream` server to client): Toxiproxy's latency, bandwidth, slow_close,
//! timeout, reset_peer, slicer, limit_data and noop, and our limit_time and drop_data.
//! A proxy marked `protocol: http` (an extension) is served through hyper instead and
//! takes per-request toxics: http_status, http_delay, http_reset.
//! An HTTP API with Toxiproxy's routes, JSON and error messages creates proxies and
//! toxics at run time; docs/chaos.md lists every behaviour we match and where we differ.
//!
//! Layout, from the API down to the bytes:
//! - `api`: the axum routes; `collection`: the rules for changing proxies and toxics;
//! - `proxy`: one proxy's listener and accept loop; `connection`: one client;
//! - `pump`: one direction of one connection; `chain`: its toxics' state;
//! - `http`: one client of an http proxy; `protocol`: which toxics fit which proxy;
//! - `toxic`: what each kind of toxic does; `metrics`: byte counters.
//!
//! Invariants:
//! - The data path takes no lock: toxic changes reach live connections through a
//!   `watch` per proxy; disabling a proxy cancels one token.
//! - Memory per connection is bounded (see `pump`).
//! - `toxicity: 0` never acts; draws come from a seeded generator (`--seed`).
//! - The API never waits for connections to drain.

mod api;
mod chain;
mod collection;
mod connection;
mod error;
mod http;
mod metrics;
mod protocol;
mod proxy;
mod pump;
mod stream;
mod toxic;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use crate::error::ApiError;
pub use crate::metrics::Metrics;
pub use crate::protocol::Protocol;
pub use crate::toxic::TYPES as TOXIC_TYPES;

/// Start-up options.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Seeds toxicity draws and jitter; `None` picks one at random.
    pub seed: Option<u64>,
}

/// A chaos server: the proxies and the API that drives them.
#[derive(Clone, Debug)]
pub struct Server {
    state: Arc<api::AppState>,
}

impl Server {
    pub fn new(options: Options) -> Self {
        let metrics = Arc::new(Metrics::default());
        let seed = options.seed.unwrap_or_else(|| fastrand::u64(..));
        let state = api::AppState {
            proxies: collection::Collection::shared(seed, metrics.clone()),
            metrics,
        };
        Self {
            state: Arc::new(state),
        }
    }

    /// Applies a populate body (a JSON array of proxies), as `--config` does at start.
    /// Returns how many proxies it holds.
    pub async fn populate(&self, json: &[u8]) -> Result<usize, ApiError> {
        let input: Vec<collection::NewProxy> = api::decode(json)?;
        let mut proxies = self.state.proxies.lock().await;
        match proxies.populate(input).await {
            (done, None) => Ok(done.len()),
            (_, Some(error)) => Err(error),
        }
    }

    /// The API as an axum router (for tests, or to mount elsewhere).
    pub fn router(&self) -> axum::Router {
        api::router(self.state.clone())
    }

    /// Serves the API on `listener` until `shutdown` completes, then stops every proxy.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let served = axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await;
        self.state.proxies.lock().await.stop_all().await;
        served
    }
}
