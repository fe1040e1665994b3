//! The running gateway: start, reload, shutdown.
//!
//! Reload builds everything new first (runtime, new listener sockets), then swaps the
//! runtime in one atomic store; only then are removed listeners told to drain and new ones
//! started. Any failure before the swap leaves the running gateway untouched and is
//! reported (log line, metric, and `/config` shows the last error, credentials redacted).
//! A successful reload clears that error, and so does an `unchanged` one: the file is back
//! to the running config.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context as _;
use arc_swap::ArcSwap;
use seawall_config::Config;
use seawall_pool::Resolve;
use seawall_sim::Sim;
use tokio::sync::mpsc;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    admin,
    listener::{Acceptor, bind},
    metrics::Metrics,
    middleware::access_log::AccessLogSink,
    runtime::{LayerFactory, Runtime, Shared},
    watch,
};

/// How the gateway is embedded.
#[derive(Default)]
pub struct GatewayOptions {
    /// The config file, for reloads (admin, SIGHUP, file watch). None: config given in code.
    pub config_path: Option<PathBuf>,
    /// Watch `config_path`'s directory and reload on change.
    pub watch: bool,
    /// Send access log lines here instead of stdout.
    pub access_log: Option<mpsc::Sender<String>>,
    /// Extra layers appended to the chain of the named routes.
    pub extra_layers: Vec<(String, LayerFactory)>,
    /// Applied to every config loaded from `config_path` (command-line overrides), so they
    /// survive reloads.
    pub overrides: Option<ConfigOverride>,
    /// Resolves every `host:port` upstream endpoint, whatever `dns.resolver` says; `None`
    /// uses each upstream's `dns.resolver`. Tests give a `seawall_pool::ManualResolver`.
    pub resolver: Option<Arc<dyn Resolve>>,
}

/// A change applied to each loaded config.
pub type ConfigOverride = Arc<dyn Fn(&mut Config) + Send + Sync>;

/// A listener that is accepting.
struct RunningListener {
    name: String,
    configured: SocketAddr,
    bound: SocketAddr,
    stop: CancellationToken,
}

/// State shared by the gateway handle, the admin API and the file watcher.
pub struct Inner {
    pub runtime: Arc<ArcSwap<Runtime>>,
    pub shared: Arc<Shared>,
    pub config_path: Option<PathBuf>,
    overrides: Option<ConfigOverride>,
    pub last_reload_error: Mutex<Option<String>>,
    listeners: tokio::sync::Mutex<Vec<RunningListener>>,
    bound: Mutex<Vec<(String, SocketAddr)>>,
    pub shutdown: CancellationToken,
    /// Stops the admin API, after the drain.
    pub admin_stop: CancellationToken,
    pub draining: std::sync::atomic::AtomicBool,
    tracker: TaskTracker,
}

/// A running gateway. Dropping it does not stop it; call [`Gateway::shutdown`].
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
    admin_addr: Option<SocketAddr>,
    sim_addr: Option<SocketAddr>,
    sim: Arc<Mutex<Option<Sim>>>,
}

impl Gateway {
    /// Starts every listener, the admin API and (if configured) the in-process sim.
    /// Listeners open once every `host:port` endpoint had its first lookup (bounded by
    /// its `dns.resolve_timeout`; a name that does not resolve yet is retried).
    pub async fn start(config: Config, options: GatewayOptions) -> anyhow::Result<Gateway> {
        let admin_token = admin::token(&config.admin)?;
        let metrics = Metrics::new(&config.metrics.request_duration_buckets);
        let access_log = Arc::new(match options.access_log {
            Some(tx) => AccessLogSink::channel(tx),
            None => AccessLogSink::stdout(),
        });
        let faults = crate::faults::FaultRegistry::new(metrics.clone());
        let shared = Arc::new(Shared {
            faults,
            metrics,
            access_log,
            extra_layers: options.extra_layers,
            upstream_sessions: Default::default(),
            rate_limiters: Default::default(),
            resolver: options.resolver,
        });

        let sim = match &config.sim {
            Some(s) => Some(
                Sim::bind(s.listen)
                    .await
                    .with_context(|| format!("cannot start the sim on {}", s.listen))?,
            ),
            None => None,
        };

        let config = Arc::new(config);
        let runtime =
            Runtime::build(config.clone(), None, &shared, 1).map_err(anyhow::Error::msg)?;
        shared
            .faults
            .reconfigure(&config)
            .map_err(anyhow::Error::msg)?;
        crate::fd_limit::ensure(crate::fd_limit::needed(&config), "at start");
        // Serve only once host-name endpoints have had their first lookup.
        runtime.resolved().await;
        let inner = Arc::new(Inner {
            runtime: Arc::new(ArcSwap::from_pointee(runtime)),
            shared,
            config_path: options.config_path,
            overrides: options.overrides,
            last_reload_error: Mutex::new(None),
            listeners: tokio::sync::Mutex::new(Vec::new()),
            bound: Mutex::new(Vec::new()),
            shutdown: CancellationToken::new(),
            admin_stop: CancellationToken::new(),
            draining: std::sync::atomic::AtomicBool::new(false),
            tracker: TaskTracker::new(),
        });

        {
            let mut running = inner.listeners.lock().await;
            for l in &config.listeners {
                let socket = bind(l.listen).with_context(|| {
                    format!("cannot listen on {} (listener `{}`)", l.listen, l.name)
                })?;
                running.push(inner.spawn_acceptor(&l.name, l.listen, socket)?);
            }
            inner.publish_bound(&running);
        }

        let admin_addr = admin::start(inner.clone(), &config.admin, admin_token).await?;
        if let (true, Some(path)) = (options.watch, &inner.config_path) {
            watch::spawn(path.clone(), Arc::downgrade(&inner), inner.shutdown.clone())
                .with_context(|| format!("cannot watch {}", path.display()))?;
        }
        let sim_addr = sim.as_ref().map(Sim::local_addr);
        Ok(Gateway {
            inner,
            admin_addr,
            sim_addr,
            sim: Arc::new(Mutex::new(sim)),
        })
    }

    /// The address a listener is bound to (useful with port 0).
    pub fn listener_addr(&self, name: &str) -> Option<SocketAddr> {
        self.inner
            .bound
            .lock()
            .ok()?
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| *a)
    }

    /// The admin API's address.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The in-process sim's address, when the config has one.
    pub fn sim_addr(&self) -> Option<SocketAddr> {
        self.sim_addr
    }

    /// The current runtime's generation (1 at start, +1 per successful reload).
    pub fn generation(&self) -> u64 {
        self.inner.runtime.load().generation
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.shared.metrics
    }

    /// Reloads from the config file.
    pub async fn reload(&self) -> Result<u64, String> {
        self.inner.reload().await
    }

    /// Applies a config given in code.
    pub async fn apply(&self, config: Config) -> Result<u64, String> {
        self.inner.apply(config).await
    }

    /// Stops accepting, lets in-flight requests finish within `drain`, then returns.
    /// Returns false when the drain deadline cut some requests off.
    pub async fn shutdown(&self, drain: Duration) -> bool {
        self.inner
            .draining
            .store(true, std::sync::atomic::Ordering::Release);
        self.inner.shutdown.cancel();
        self.inner.tracker.close();
        let drained = tokio::time::timeout(drain, self.inner.tracker.wait())
            .await
            .is_ok();
        self.inner.admin_stop.cancel();
        let sim = self.sim.lock().ok().and_then(|mut s| s.take());
        if let Some(sim) = sim {
            sim.shutdown().await;
        }
        drained
    }
}

impl Inner {
    fn spawn_acceptor(
        &self,
        name: &str,
        configured: SocketAddr,
        socket: tokio::net::TcpListener,
    ) -> anyhow::Result<RunningListener> {
        let bound = socket.local_addr()?;
        let stop = self.shutdown.child_token();
        let acceptor = Acceptor {
            name: Arc::from(name),
            listener: socket,
            runtime: self.runtime.clone(),
            metrics: self.shared.metrics.clone(),
            shutdown: stop.clone(),
            tracker: self.tracker.clone(),
        };
        self.tracker.spawn(acceptor.run());
        tracing::info!(listener = name, address = %bound, "Listening.");
        Ok(RunningListener {
            name: name.to_owned(),
            configured,
            bound,
            stop,
        })
    }

    fn publish_bound(&self, running: &[RunningListener]) {
        if let Ok(mut b) = self.bound.lock() {
            *b = running.iter().map(|r| (r.name.clone(), r.bound)).collect();
        }
    }

    /// Logs and keeps a failed reload's error, and returns it, with credentials redacted:
    /// it reaches logs and `/config`, and may quote a config line or a URL.
    fn record_error(&self, error: &str, outcome: &str) -> String {
        let error = seawall_config::redact::text(error).into_owned();
        self.shared.metrics.reload(outcome);
        tracing::error!(error = %error, "Config reload failed; the running config is unchanged.");
        if let Ok(mut e) = self.last_reload_error.lock() {
            *e = Some(error.clone());
        }
        error
    }

    /// The running config is the file's again: whatever the last failed reload said no
    /// longer applies.
    fn clear_error(&self) {
        if let Ok(mut e) = self.last_reload_error.lock() {
            *e = None;
        }
    }

    /// Reloads from the config file.
    pub async fn reload(&self) -> Result<u64, String> {
        let Some(path) = self.config_path.clone() else {
            return Err(
                "the gateway was started without a config file; nothing to reload".to_owned(),
            );
        };
        match load(&path) {
            Ok(mut config) => {
                if let Some(o) = &self.overrides {
                    o(&mut config);
                }
                self.apply(config).await
            }
            Err(diagnostics) => Err(self.record_error(&diagnostics, "invalid")),
        }
    }

    /// Validates nothing more (the config is typed), builds, swaps.
    pub async fn apply(&self, config: Config) -> Result<u64, String> {
        let mut running = self.listeners.lock().await;
        let old = self.runtime.load_full();
        // An unchanged config still rebuilds when a TLS listener's certificate or key file,
        // or an upstream's CA or client certificate, changed: that is how a renewed
        // certificate is picked up (`POST /reload`, SIGHUP).
        if *old.config == config && !old.tls_files_changed() {
            // Typically the operator put back the file after a bad edit: the error is stale.
            self.clear_error();
            self.shared.metrics.reload("unchanged");
            return Ok(old.generation);
        }
        if old.config.admin != config.admin
            || old.config.sim != config.sim
            || old.config.metrics != config.metrics
        {
            tracing::warn!(
                "Changes to `admin`, `sim` and `metrics` take effect at the next restart."
            );
        }
        let generation = old.generation + 1;
        let new = match Runtime::build(Arc::new(config), Some(&old), &self.shared, generation) {
            Ok(rt) => rt,
            Err(e) => return Err(self.record_error(&e, "invalid")),
        };
        // New host-name endpoints get their first lookup before the swap; a failed one
        // does not fail the reload (the name keeps being retried).
        new.resolved().await;

        // Bind new sockets before the swap: a port in use must fail the reload, not
        // leave a half-applied config.
        let mut fresh = Vec::new();
        for l in &new.config.listeners {
            let keep = running
                .iter()
                .any(|r| r.name == l.name && r.configured == l.listen);
            if !keep {
                match bind(l.listen) {
                    Ok(s) => fresh.push((l.name.clone(), l.listen, s)),
                    Err(e) => {
                        let msg =
                            format!("listener `{}`: cannot listen on {}: {e}", l.name, l.listen);
                        return Err(self.record_error(&msg, "error"));
                    }
                }
            }
        }

        let config = new.config.clone();
        for l in &new.listeners {
            let (Some(tls), Some(before)) = (&l.tls, old.listener(&l.name)) else {
                continue;
            };
            let same = before
                .tls
                .as_ref()
                .is_some_and(|b| Arc::ptr_eq(b.server_config(), tls.server_config()));
            if !same {
                tracing::info!(listener = %l.name, "TLS certificate (re)loaded; new connections use it.");
            }
        }
        self.runtime.store(Arc::new(new));
        // After the swap: the registry keeps the runtime faults whose target the new
        // config still has. Its rules passed validation, so this does not fail in practice.
        if let Err(error) = self.shared.faults.reconfigure(&config) {
            tracing::error!(%error, "Fault rules of the reloaded config not applied.");
        }

        running.retain(|r| {
            let kept = config
                .listeners
                .iter()
                .any(|l| l.name == r.name && l.listen == r.configured);
            if !kept {
                // Stop accepting; its connections drain gracefully.
                r.stop.cancel();
            }
            kept
        });
        for (name, listen, socket) in fresh {
            match self.spawn_acceptor(&name, listen, socket) {
                Ok(r) => running.push(r),
                Err(e) => {
                    tracing::error!(listener = %name, error = %e, "Could not start listener.")
                }
            }
        }
        self.publish_bound(&running);
        let needed = crate::fd_limit::needed(&config);
        if needed > crate::fd_limit::needed(&old.config) {
            crate::fd_limit::ensure(needed, "after a reload raised max_connections");
        }
        self.clear_error();
        self.shared.metrics.reload("success");
        tracing::info!(generation, "Config reloaded.");
        Ok(generation)
    }
}

fn load(path: &Path) -> Result<Config, String> {
    seawall_config::load(path).map_err(|d| d.to_string())
}
