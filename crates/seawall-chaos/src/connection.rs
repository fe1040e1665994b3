//! One accepted client: connect to the upstream, then pump both directions.
//!
//! An upstream that cannot be reached means the client is accepted and closed, as in
//! Toxiproxy. Both directions run in this one task; they end together when a toxic
//! closes or resets the connection or the proxy is disabled, and each on its own when
//! its source half-closes (the half-close is passed on).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::metrics::ProxyCounters;
use crate::proxy::ToxicList;
use crate::pump::{Counters, Pump, Shared};
use crate::stream::Stream;

/// What a connection needs from its proxy.
#[derive(Debug)]
pub(crate) struct Setup {
    pub(crate) proxy: Arc<str>,
    pub(crate) upstream: Arc<str>,
    pub(crate) toxics: watch::Receiver<ToxicList>,
    /// A child of the proxy's token: cancelled when the proxy stops.
    pub(crate) kill: CancellationToken,
    /// Seeds this connection's toxicity draws and jitter.
    pub(crate) seed: u64,
    pub(crate) counters: ProxyCounters,
}

/// Serves one client until both directions are done.
pub(crate) async fn serve(client: TcpStream, setup: Setup) {
    let connect = TcpStream::connect(&*setup.upstream);
    let server = tokio::select! {
        biased;
        () = setup.kill.cancelled() => return,
        connected = connect => connected,
    };
    let server = match server {
        Ok(server) => server,
        Err(error) => {
            tracing::warn!(proxy = %setup.proxy, upstream = %setup.upstream, %error, "Cannot reach the upstream; closing the client.");
            return;
        }
    };
    // Toxiproxy's Go sockets have TCP_NODELAY on; small writes must not wait for Nagle.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let shared = Arc::new(Shared {
        kill: setup.kill,
        reset: AtomicBool::new(false),
    });
    let mut rng = fastrand::Rng::with_seed(setup.seed);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let counters = |stream: Stream| {
        let i = ProxyCounters::index(stream);
        Counters {
            received: setup.counters.received[i].clone(),
            sent: setup.counters.sent[i].clone(),
        }
    };
    let upstream = Pump::new(
        Stream::Upstream,
        (client_read, server_write),
        setup.toxics.clone(),
        shared.clone(),
        rng.fork(),
        counters(Stream::Upstream),
    );
    let downstream = Pump::new(
        Stream::Downstream,
        (server_read, client_write),
        setup.toxics,
        shared,
        rng.fork(),
        counters(Stream::Downstream),
    );
    tokio::join!(upstream.run(), downstream.run());
}
