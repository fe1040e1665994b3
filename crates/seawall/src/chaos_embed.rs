//! The `chaos:` section of a gateway config, run in the gateway's process: the fault
//! proxies of `seawall chaos` (seawall-chaos as a library) and their API, started before
//! the gateway (so its first requests already go through them) and stopped after it.
//!
//! The config's proxies are applied as one populate body, so every entry (toxic
//! attributes included) is checked before any proxy starts; a listener that cannot be
//! bound stops the start and closes what was already running.

use std::net::SocketAddr;

use seawall_config::ChaosConfig;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The chaos proxies and API of a running `seawall run`.
pub struct EmbeddedChaos {
    /// Where the API listens.
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    served: JoinHandle<std::io::Result<()>>,
}

impl EmbeddedChaos {
    /// Binds the API on `config.listen` and creates every proxy. The error names the
    /// config key it is about.
    pub async fn start(config: &ChaosConfig) -> Result<Self, String> {
        let server = seawall_chaos::Server::new(seawall_chaos::Options { seed: config.seed });
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| format!("chaos.listen: cannot listen on {}: {e}", config.listen))?;
        let body = serde_json::to_vec(&config.proxies)
            .map_err(|e| format!("chaos.proxies: cannot encode: {e}"))?;
        if let Err(e) = server.populate(&body).await {
            // Serving with a shutdown already due stops the proxies populate started.
            let _ = server.serve(listener, std::future::ready(())).await;
            return Err(format!("chaos.proxies: {e}"));
        }
        let addr = listener
            .local_addr()
            .map_err(|e| format!("chaos.listen: {e}"))?;
        let (stop, stopped) = oneshot::channel();
        let served = tokio::spawn(server.serve(listener, async {
            let _ = stopped.await;
        }));
        Ok(Self { addr, stop, served })
    }

    /// Closes the API and every proxy and its connections.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        match self.served.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "Chaos API stopped with an error."),
            Err(error) => tracing::warn!(%error, "Chaos API task failed."),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_config_knows_the_same_toxic_types_as_the_proxies() {
        assert_eq!(
            seawall_config::CHAOS_TOXIC_TYPES,
            seawall_chaos::TOXIC_TYPES
        );
    }
}
