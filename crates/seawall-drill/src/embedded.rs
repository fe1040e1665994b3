//! `target.embedded`: a gateway (with its in-process sim) started from a config file for
//! the run, as `seawall run` does, and shut down after it.

use std::{net::SocketAddr, path::Path, time::Duration};

use seawall_gateway::{Gateway, GatewayOptions};

/// A gateway running in this process for the drill.
pub struct Embedded {
    gateway: Gateway,
    /// The first listener's address.
    pub traffic: SocketAddr,
    /// The admin API's address.
    pub admin: Option<SocketAddr>,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedded")
            .field("traffic", &self.traffic)
            .field("admin", &self.admin)
            .finish()
    }
}

/// Why the embedded gateway did not start.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// Its config is invalid.
    #[error("{0}")]
    Config(seawall_config::Diagnostics),
    /// It could not start.
    #[error("cannot start the embedded gateway: {0}")]
    Start(String),
}

impl Embedded {
    /// Starts the gateway of config file `path`.
    pub async fn start(path: &Path) -> Result<Self, EmbeddedError> {
        let config = seawall_config::load(path).map_err(EmbeddedError::Config)?;
        let first = config
            .listeners
            .first()
            .map(|l| l.name.clone())
            .unwrap_or_default();
        // Access logs would go to stdout, over the progress line; the drill counts requests
        // itself, so they are read and dropped.
        let (log, mut lines) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(async move { while lines.recv().await.is_some() {} });
        let options = GatewayOptions {
            config_path: Some(path.to_owned()),
            watch: false,
            access_log: Some(log),
            ..GatewayOptions::default()
        };
        let gateway = Gateway::start(config, options)
            .await
            .map_err(|e| EmbeddedError::Start(format!("{e:#}")))?;
        let traffic = gateway
            .listener_addr(&first)
            .ok_or_else(|| EmbeddedError::Start("the config has no listener".to_owned()))?;
        let admin = gateway.admin_addr();
        Ok(Self {
            gateway,
            traffic,
            admin,
        })
    }

    /// Stops it, letting in-flight requests finish for up to `drain`.
    pub async fn stop(self, drain: Duration) {
        self.gateway.shutdown(drain).await;
    }
}
