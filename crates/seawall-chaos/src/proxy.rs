//! A proxy: its settings, its toxics, and (while enabled) its listener and accept loop.
//!
//! Enabling binds the listener in the API call, so that a taken address is an error
//! there; the accept loop then runs on its own task. Disabling cancels one token that
//! the accept loop and every connection hang from, and waits only for the accept loop to
//! drop the listener (so the address can be bound again at once), never for connections
//! to drain.

use std::net::SocketAddr;
use std::sync::Arc;

use serde::Serialize;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::connection::{self, Setup};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::protocol::Protocol;
use crate::stream::Stream;
use crate::toxic::Toxic;

/// The toxics of a proxy as connections see them (both streams, in insertion order).
pub(crate) type ToxicList = Arc<Vec<Toxic>>;

/// A running listener.
#[derive(Debug)]
struct Running {
    stop: CancellationToken,
    accept: JoinHandle<()>,
}

/// One proxy.
#[derive(Debug)]
pub(crate) struct Proxy {
    pub(crate) name: String,
    /// As given while disabled; the bound address while enabled.
    pub(crate) listen: String,
    pub(crate) upstream: String,
    pub(crate) enabled: bool,
    pub(crate) protocol: Protocol,
    toxics: Vec<Toxic>,
    published: watch::Sender<ToxicList>,
    running: Option<Running>,
}

/// The JSON form: Toxiproxy's fields, in its order.
#[derive(Serialize)]
pub(crate) struct ProxyView<'a> {
    name: &'a str,
    listen: &'a str,
    upstream: &'a str,
    enabled: bool,
    toxics: Vec<&'a Toxic>,
    /// Extension: only on http proxies, so a tcp proxy's JSON is Toxiproxy's exactly.
    #[serde(skip_serializing_if = "Option::is_none")]
    protocol: Option<&'static str>,
}

impl Proxy {
    pub(crate) fn new(name: String, listen: String, upstream: String, protocol: Protocol) -> Self {
        Self {
            name,
            listen,
            upstream,
            enabled: false,
            protocol,
            toxics: Vec::new(),
            published: watch::Sender::new(Arc::new(Vec::new())),
            running: None,
        }
    }

    pub(crate) fn view(&self) -> ProxyView<'_> {
        ProxyView {
            name: &self.name,
            listen: &self.listen,
            upstream: &self.upstream,
            enabled: self.enabled,
            toxics: self.toxics(),
            protocol: (self.protocol == Protocol::Http).then_some("http"),
        }
    }

    /// The toxics as Toxiproxy lists them: upstream ones first, each stream in order.
    pub(crate) fn toxics(&self) -> Vec<&Toxic> {
        Stream::BOTH
            .iter()
            .flat_map(|s| self.toxics.iter().filter(move |t| t.stream == *s))
            .collect()
    }

    pub(crate) fn toxic(&self, name: &str) -> Option<&Toxic> {
        self.toxics.iter().find(|t| t.name == name)
    }

    /// Adds a toxic; the caller has checked that its name is free.
    pub(crate) fn add_toxic(&mut self, toxic: Toxic) {
        self.toxics.push(toxic);
        self.publish();
    }

    /// Replaces the toxic with the same id.
    pub(crate) fn replace_toxic(&mut self, toxic: Toxic) {
        if let Some(slot) = self.toxics.iter_mut().find(|t| t.id == toxic.id) {
            *slot = toxic;
            self.publish();
        }
    }

    pub(crate) fn remove_toxic(&mut self, name: &str) -> bool {
        let before = self.toxics.len();
        self.toxics.retain(|t| t.name != name);
        let removed = self.toxics.len() != before;
        if removed {
            self.publish();
        }
        removed
    }

    pub(crate) fn remove_toxic_id(&mut self, id: u64) -> bool {
        let before = self.toxics.len();
        self.toxics.retain(|t| t.id != id);
        let removed = self.toxics.len() != before;
        if removed {
            self.publish();
        }
        removed
    }

    pub(crate) fn clear_toxics(&mut self) {
        if !self.toxics.is_empty() {
            self.toxics.clear();
            self.publish();
        }
    }

    fn publish(&self) {
        self.published.send_replace(Arc::new(self.toxics.clone()));
    }

    /// Do these settings name another listener, upstream or protocol? `listen` is
    /// resolved first, so `localhost:2001` matches a proxy bound to `127.0.0.1:2001`.
    pub(crate) async fn differs(
        &self,
        listen: &str,
        upstream: &str,
        protocol: Protocol,
    ) -> Result<bool, ApiError> {
        let resolved = resolve_listen(listen).await?;
        Ok(self.listen != resolved.to_string()
            || self.upstream != upstream
            || self.protocol != protocol)
    }

    /// Binds and starts accepting. Already enabled: nothing to do.
    pub(crate) async fn start(&mut self, metrics: &Metrics, seed: u64) -> Result<(), ApiError> {
        if self.running.is_some() {
            return Ok(());
        }
        let addr = resolve_listen(&self.listen).await?;
        let listener = bind(addr)?;
        self.start_on(listener, metrics, seed)
    }

    /// Starts accepting on a listener bound beforehand (so that a move to a new address
    /// that cannot be bound fails before the old listener is closed).
    pub(crate) fn start_on(
        &mut self,
        listener: TcpListener,
        metrics: &Metrics,
        seed: u64,
    ) -> Result<(), ApiError> {
        let bound = listener.local_addr().map_err(ApiError::internal)?;
        self.listen = bound.to_string();
        let stop = CancellationToken::new();
        let accept = Accept {
            proxy: self.name.as_str().into(),
            upstream: self.upstream.as_str().into(),
            toxics: self.published.subscribe(),
            counters: metrics.proxy(&self.name, &self.listen, &self.upstream),
            stop: stop.clone(),
            rng: fastrand::Rng::with_seed(seed),
            protocol: self.protocol,
        };
        let accept = tokio::spawn(accept.run(listener));
        self.running = Some(Running { stop, accept });
        self.enabled = true;
        tracing::info!(proxy = %self.name, listen = %self.listen, upstream = %self.upstream, protocol = %self.protocol, "Proxy started.");
        Ok(())
    }

    /// Closes the listener and every connection. Waits only for the listener to close.
    pub(crate) async fn stop(&mut self) {
        self.enabled = false;
        if let Some(running) = self.running.take() {
            running.stop.cancel();
            let _ = running.accept.await;
            tracing::info!(proxy = %self.name, "Proxy stopped.");
        }
    }
}

/// The accept loop of one enabled proxy.
struct Accept {
    proxy: Arc<str>,
    upstream: Arc<str>,
    toxics: watch::Receiver<ToxicList>,
    counters: crate::metrics::ProxyCounters,
    stop: CancellationToken,
    rng: fastrand::Rng,
    protocol: Protocol,
}

impl Accept {
    async fn run(mut self, listener: TcpListener) {
        loop {
            let accepted = tokio::select! {
                biased;
                () = self.stop.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((client, _)) => {
                    let setup = Setup {
                        proxy: self.proxy.clone(),
                        upstream: self.upstream.clone(),
                        toxics: self.toxics.clone(),
                        kill: self.stop.child_token(),
                        seed: self.rng.u64(..),
                        counters: self.counters.clone(),
                    };
                    match self.protocol {
                        Protocol::Tcp => tokio::spawn(connection::serve(client, setup)),
                        Protocol::Http => tokio::spawn(crate::http::serve(client, setup)),
                    };
                }
                Err(error) => {
                    // Out of descriptors, usually: back off instead of spinning.
                    tracing::warn!(proxy = %self.proxy, %error, "Accept failed.");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
}

/// Resolves a listen address as Go's `net.Listen` would: an empty host means every
/// interface; a name takes its first IPv4 address if it has one.
pub(crate) async fn resolve_listen(listen: &str) -> Result<SocketAddr, ApiError> {
    let listen = listen.trim();
    let spec = if listen.is_empty() {
        "0.0.0.0:0".to_owned()
    } else if let Some(port) = listen.strip_prefix(':') {
        format!("0.0.0.0:{port}")
    } else {
        listen.to_owned()
    };
    let bad = |reason: String| ApiError::bad_request(format!("listen tcp {listen}: {reason}"));
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(spec.as_str())
        .await
        .map_err(|e| bad(e.to_string()))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| bad("no address".to_owned()))
}

/// Binds with `SO_REUSEADDR`, as Go does, so connections left in TIME_WAIT by a proxy
/// just disabled do not keep its address from being bound again.
pub(crate) fn bind(addr: SocketAddr) -> Result<TcpListener, ApiError> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    };
    let listener = socket
        .and_then(|s| {
            s.set_reuseaddr(true)?;
            s.bind(addr)?;
            s.listen(1024)
        })
        .map_err(|e| ApiError::listen(addr, &e))?;
    Ok(listener)
}
