//! The runtime form of a config: routes with their built chains, upstreams with their pools.
//!
//! A [`Runtime`] is immutable once built and is swapped in whole on reload (`crate::reload`),
//! so a request sees one consistent config from start to end. Building reuses the
//! [`Upstream`] (and so the warm pool) of every upstream whose config did not change.
//!
//! Upstream TLS: an upstream with `tls` gets an [`UpstreamTls`] in its pool options. Its
//! session store is per upstream name and process-wide (in [`Shared`]), and when a changed
//! upstream is rebuilt, its TLS is built with `previous.reload(..)`: rustls resumes a
//! session only under the very same verifier objects, so a fresh `UpstreamTls` would make
//! every first connection after a reload a full handshake. A TLS file that does not load
//! fails the build, so the reload is refused and the old config keeps serving.

use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use prometheus_client::metrics::counter::Counter;
use seawall_config::{
    Config, ListenerConfig, MiddlewareConfig, UpstreamConfig, UpstreamProtocol, UpstreamTlsConfig,
};
use seawall_pool::{
    ClientIdentity, Http2Settings, PemSource, PoolOptions, PoolSettings, Protocol, Resolve,
    SessionStore, TlsRoots, TlsSettings, UpstreamTls,
};

use crate::{
    chain::{Chain, Layer},
    metrics::{Metrics, RouteMetrics},
    middleware::{access_log::AccessLogSink, build_chain},
    policy::{
        balance::Picker,
        breaker::UpstreamBreaker,
        bulkhead::Bulkhead,
        fallback::RouteFallback,
        health::UpstreamHealth,
        hedge::RouteHedge,
        retry::{Budget, RouteRetry, TryTimes},
    },
    routing::{HostPattern, Router},
    upstream_pool::{DnsSetup, UpstreamPool},
};

/// Process-wide pieces that outlive any one config.
pub struct Shared {
    pub metrics: Arc<Metrics>,
    pub access_log: Arc<AccessLogSink>,
    /// Layers added by the embedding program, by route name (appended after the configured
    /// ones). This is how a library user adds their own middleware.
    pub extra_layers: Vec<(String, LayerFactory)>,
    /// TLS session stores of upstreams, by upstream name. Only touched while a runtime is
    /// built, never on the request path; kept for the process so that an upstream that
    /// left the config (or lost its `tls`) and comes back still resumes its sessions.
    pub upstream_sessions: Mutex<HashMap<String, SessionStore>>,
    /// Local rate-limit state, handed to rebuilt routes so a reload keeps it.
    pub rate_limiters: crate::middleware::rate_limit::LimiterRegistry,
    /// Resolves every `host:port` endpoint when set (tests); otherwise each upstream uses
    /// the resolver its `dns.resolver` names.
    pub resolver: Option<Arc<dyn Resolve>>,
    /// Upstream-side and runtime fault rules (outside the config snapshot, so the admin
    /// API can change them without a reload).
    pub faults: Arc<crate::faults::FaultRegistry>,
}

impl Shared {
    /// The session store of `upstream`, created on first use.
    fn sessions(&self, upstream: &str) -> SessionStore {
        // A poisoned lock only means a panic elsewhere while inserting; the map is fine.
        let mut stores = self
            .upstream_sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        stores.entry(upstream.to_owned()).or_default().clone()
    }
}

/// Makes a fresh instance of a custom layer for a route.
pub type LayerFactory = Arc<dyn Fn() -> Box<dyn Layer> + Send + Sync>;

/// One upstream: its endpoints' pool, the per-attempt timeouts and the state of its
/// resilience policies (breaker, balancer and outlier ejection, bulkhead, retry budget).
/// All of it is kept across a reload that leaves the upstream's config unchanged.
pub struct Upstream {
    pub name: String,
    pub config: UpstreamConfig,
    /// One entry per configured endpoint: `ip:port` ones share a plain pool, each
    /// `host:port` one has a DNS-aware pool.
    pub pool: UpstreamPool,
    pub response_header_timeout: Option<Duration>,
    /// Off unless `breaker` is configured.
    pub breaker: Option<UpstreamBreaker>,
    /// Chooses the endpoint of each try.
    pub picker: Picker,
    /// Off unless `concurrency` is configured.
    pub bulkhead: Option<Bulkhead>,
    /// Spent by every route retrying against this upstream.
    pub budget: Budget,
    /// The least time a try recently needed (routes with `retry` or `hedge` feed it).
    pub min_try: TryTimes,
    /// Off unless `health_check` is configured; its probe task holds a weak reference.
    pub health: Option<UpstreamHealth>,
    /// The pool's TLS, when the upstream has `tls`; kept to build the next one from.
    pub tls: Option<UpstreamTls>,
    /// The TLS files as read when this upstream was built (path, bytes), to notice a
    /// rotated CA or client certificate on an otherwise unchanged reload.
    tls_files: Vec<LoadedFile>,
    /// Process-wide counters of this upstream (they survive reloads), for the admin API.
    pub counters: UpstreamCounters,
}

/// A file as read when a runtime was built: its path and its bytes.
type LoadedFile = (PathBuf, Vec<u8>);

/// Handles on an upstream's request and handshake counters, for ratios in `/upstreams`.
#[derive(Clone)]
pub struct UpstreamCounters {
    pub reused: Counter,
    pub fresh: Counter,
    pub handshakes_full: Counter,
    pub handshakes_resumed: Counter,
}

impl Upstream {
    /// Builds the upstream; `previous` is the same upstream in the running runtime, whose
    /// TLS (and so its resumable sessions) the new one continues.
    fn build(
        config: &UpstreamConfig,
        previous: Option<&Upstream>,
        shared: &Shared,
    ) -> Result<Self, String> {
        let settings = PoolSettings {
            max_idle_per_endpoint: config.pool.max_idle_per_endpoint,
            idle_timeout: config.pool.idle_timeout.get(),
            max_connections_per_endpoint: config.pool.max_connections_per_endpoint,
            checkout_timeout: config.pool.checkout_timeout.get(),
            connect_timeout: config.timeouts.connect.get(),
            tcp_keepalive: config.pool.tcp_keepalive.map(|d| d.get()),
        };
        let metrics = &shared.metrics;
        let name = config.name.as_str();
        let breaker = config
            .breaker
            .as_ref()
            .map(|b| UpstreamBreaker::build(name, b, metrics))
            .transpose()?;
        let health = config
            .health_check
            .as_ref()
            .map(|h| UpstreamHealth::build(name, config.endpoints.len(), h, metrics))
            .transpose()?;
        let picker = Picker::build(
            name,
            &config.endpoints,
            config.balancer,
            config.outlier.as_ref(),
            metrics,
        )?
        .with_health(health.as_ref().map(UpstreamHealth::flags));
        let bulkhead = config
            .concurrency
            .as_ref()
            .map(|c| Bulkhead::build(name, c, metrics));
        let budget = Budget::build(name, &config.retry_budget)?;
        let (tls, tls_files) = match &config.tls {
            None => (None, Vec::new()),
            Some(c) => {
                let (tls, files) = build_tls(config, c, previous, shared)?;
                (Some(tls), files)
            }
        };
        let pool_metrics = shared.metrics.pool(&config.name);
        let phases = shared.metrics.phases(&config.name);
        let counters = UpstreamCounters {
            reused: pool_metrics.reused.clone(),
            fresh: pool_metrics.fresh.clone(),
            handshakes_full: phases.tls_handshakes_full.clone(),
            handshakes_resumed: phases.tls_handshakes_resumed.clone(),
        };
        let options = PoolOptions {
            tls: tls.clone(),
            max_lifetime: config.pool.max_lifetime.map(|d| d.get()),
            max_requests_per_connection: config.pool.max_requests_per_connection,
            max_upgrades_per_endpoint: config.pool.max_upgrades_per_endpoint,
            metrics: phases,
            protocol: match config.protocol {
                UpstreamProtocol::Http1 => Protocol::Http1,
                UpstreamProtocol::Http2 => Protocol::Http2,
                UpstreamProtocol::Auto => Protocol::Auto,
            },
            http2: Http2Settings {
                keep_alive_interval: config.http2.keep_alive_interval.map(|d| d.get()),
                keep_alive_timeout: config.http2.keep_alive_timeout.get(),
                max_concurrent_streams: config.http2.max_concurrent_streams,
            },
        };
        let dns = DnsSetup {
            resolver: shared.resolver.as_ref(),
            config: &config.dns,
            metrics: &|| shared.metrics.dns(name),
        };
        let pool = UpstreamPool::build(
            name,
            &config.endpoints,
            settings,
            pool_metrics,
            options,
            dns,
        )?;
        Ok(Self {
            tls,
            tls_files,
            counters,
            name: config.name.clone(),
            config: config.clone(),
            pool,
            response_header_timeout: config.timeouts.response_header.map(|d| d.get()),
            breaker,
            picker,
            bulkhead,
            budget,
            min_try: TryTimes::default(),
            health,
        })
    }

    /// True when a TLS file (CA, client certificate or key) no longer holds what this
    /// upstream was built from, or cannot be read: a reload of an otherwise unchanged
    /// config must then rebuild, which picks up the rotated files or reports why they do
    /// not load.
    pub fn tls_files_changed(&self) -> bool {
        self.tls_files
            .iter()
            .any(|(path, bytes)| std::fs::read(path).map_or(true, |now| now != *bytes))
    }
}

/// Maps `upstreams[].tls` onto the pool's [`TlsSettings`] and builds the client
/// configuration: from `previous`'s TLS when it had one (keeping its sessions
/// resumable), else with the upstream's process-wide session store. Also returns the
/// files read, with their bytes.
fn build_tls(
    config: &UpstreamConfig,
    c: &UpstreamTlsConfig,
    previous: Option<&Upstream>,
    shared: &Shared,
) -> Result<(UpstreamTls, Vec<LoadedFile>), String> {
    let name = &config.name;
    let mut files = Vec::new();
    let mut read = |key: &str, path: &PathBuf| {
        let bytes = std::fs::read(path).map_err(|e| {
            format!(
                "upstream `{name}`: tls.{key} {}: cannot read it: {e}",
                path.display()
            )
        })?;
        files.push((path.clone(), bytes));
        Ok::<_, String>(PemSource::File(path.clone()))
    };
    let roots = match &c.ca_file {
        None => TlsRoots::WebPki,
        Some(path) => TlsRoots::Pem(read("ca_file", path)?),
    };
    let client_identity = match (&c.client_cert_file, &c.client_key_file) {
        (Some(cert), Some(key)) => Some(ClientIdentity {
            cert_chain: read("client_cert_file", cert)?,
            key: read("client_key_file", key)?,
        }),
        (None, None) => None,
        _ => {
            return Err(format!(
                "upstream `{name}`: tls: client_cert_file and client_key_file must be set together"
            ));
        }
    };
    let settings = TlsSettings {
        server_name: c.server_name.clone(),
        roots,
        client_identity,
        alpn: c
            .alpn_for(config.protocol)
            .iter()
            .map(|p| p.as_str().as_bytes().to_vec())
            .collect(),
        handshake_timeout: config.timeouts.tls_handshake.get(),
    };
    let tls = match previous.and_then(|p| p.tls.as_ref()) {
        Some(before) => before.reload(&settings),
        None => UpstreamTls::new(&settings, &shared.sessions(name)),
    }
    .map_err(|e| format!("upstream `{name}`: tls: {e}"))?;
    Ok((tls, files))
}

/// One route, ready to serve.
pub struct Route {
    pub name: String,
    pub upstream: Option<Arc<Upstream>>,
    pub timeout: Duration,
    /// Off unless the route has `retry`.
    pub retry: Option<RouteRetry>,
    /// Off unless the route has `fallback`.
    pub fallback: Option<RouteFallback>,
    /// Off unless the route has `hedge`.
    pub hedge: Option<RouteHedge>,
    pub chain: Chain,
    /// True when the chain has the `debug` layer.
    pub debug: bool,
    /// True when the chain has the `access_log` layer. Decided per route, not when the
    /// layer runs: a request dropped before the chain (client gone) is still logged.
    pub access_log: bool,
    pub metrics: RouteMetrics,
    pub shared: Arc<Shared>,
}

/// A listener's settings that apply per connection or per request.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerSettings {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_read_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_body_bytes: u64,
    pub max_connections: usize,
}

impl From<&ListenerConfig> for ListenerSettings {
    fn from(c: &ListenerConfig) -> Self {
        Self {
            header_read_timeout: c.header_read_timeout.get(),
            idle_timeout: c.idle_timeout.get(),
            body_read_timeout: c.body_read_timeout.get(),
            max_header_bytes: usize::try_from(c.max_header_bytes.bytes()).unwrap_or(usize::MAX),
            max_body_bytes: c.max_body_bytes.bytes(),
            max_connections: c.max_connections,
        }
    }
}

/// A listener's routes and settings.
pub struct ListenerRuntime {
    pub name: Arc<str>,
    pub listen: SocketAddr,
    pub settings: ListenerSettings,
    pub router: Router,
    /// Stands in for a route when none matches, so 404s are counted and logged too.
    pub unmatched: Arc<Route>,
    /// TLS termination, when the listener has `tls`. Read by the acceptor per connection,
    /// so a reload that rebuilds it (a renewed certificate) applies to new connections.
    pub tls: Option<Arc<crate::tls::ListenerTls>>,
    /// The rules of the routes' `fault` layers, with their route's name (for `GET /faults`).
    pub layer_faults: Vec<(String, Arc<crate::faults::rule::Rule>)>,
}

/// Everything built from one config.
pub struct Runtime {
    pub config: Arc<Config>,
    pub generation: u64,
    pub listeners: Vec<ListenerRuntime>,
    pub upstreams: BTreeMap<String, Arc<Upstream>>,
    /// The debug token's bytes, read from the environment when this runtime was built.
    pub debug_token: Option<Vec<u8>>,
}

impl Runtime {
    /// Builds a runtime, reusing unchanged upstreams of `previous`.
    pub fn build(
        config: Arc<Config>,
        previous: Option<&Runtime>,
        shared: &Arc<Shared>,
        generation: u64,
    ) -> Result<Self, String> {
        let mut upstreams = BTreeMap::new();
        for u in &config.upstreams {
            let before = previous.and_then(|p| p.upstreams.get(&u.name));
            let reused = before
                // Faults live in the registry: changing them keeps the pool and policy state.
                .filter(|old| old.config.without_faults() == u.without_faults())
                .filter(|old| !old.tls_files_changed())
                .cloned();
            let upstream = match reused {
                Some(old) => old,
                None => {
                    let built = Arc::new(Upstream::build(u, before.map(|b| &**b), shared)?);
                    crate::policy::health::spawn(&built);
                    built
                }
            };
            upstreams.insert(u.name.clone(), upstream);
        }
        let listeners = config
            .listeners
            .iter()
            .map(|l| {
                let old = previous.and_then(|p| p.listener(&l.name));
                build_listener(l, old, &upstreams, shared)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let debug_token = std::env::var(&config.debug.token_env)
            .ok()
            .filter(|t| !t.is_empty())
            .map(String::into_bytes);
        Ok(Self {
            config,
            generation,
            listeners,
            upstreams,
            debug_token,
        })
    }

    /// Returns once the first DNS lookups of every upstream with `host:port` endpoints
    /// have ended (at once for upstreams carried over from the previous runtime), so a
    /// new runtime does not take traffic before its names resolve.
    pub async fn resolved(&self) {
        for upstream in self.upstreams.values() {
            upstream.pool.resolved().await;
        }
    }

    /// The listener called `name`, if the config still has it.
    pub fn listener(&self, name: &str) -> Option<&ListenerRuntime> {
        self.listeners.iter().find(|l| &*l.name == name)
    }

    /// True when a TLS listener's certificate or key file, or a TLS upstream's CA or client
    /// certificate file, changed on disk since this runtime was built: a reload of an
    /// unchanged config must still rebuild then.
    pub fn tls_files_changed(&self) -> bool {
        self.listeners
            .iter()
            .filter_map(|l| l.tls.as_deref())
            .any(crate::tls::ListenerTls::files_changed)
            || self.upstreams.values().any(|u| u.tls_files_changed())
    }
}

fn build_listener(
    l: &ListenerConfig,
    previous: Option<&ListenerRuntime>,
    upstreams: &BTreeMap<String, Arc<Upstream>>,
    shared: &Arc<Shared>,
) -> Result<ListenerRuntime, String> {
    let mut entries = Vec::with_capacity(l.routes.len());
    let mut any_access_log = false;
    let mut layer_faults = Vec::new();
    for (i, r) in l.routes.iter().enumerate() {
        let name = r.name.clone().unwrap_or_else(|| format!("{}/{i}", l.name));
        let upstream = upstreams
            .get(&r.upstream)
            .cloned()
            .ok_or_else(|| format!("route `{name}`: unknown upstream `{}`", r.upstream))?;
        let mut rules = Vec::new();
        let mut chain = build_chain(
            &r.middleware,
            &name,
            &shared.rate_limiters,
            &shared.metrics,
            &mut rules,
        )
        .map_err(|e| format!("route `{name}`: {e}"))?;
        let extra: Vec<Box<dyn Layer>> = shared
            .extra_layers
            .iter()
            .filter(|(route, _)| *route == name)
            .map(|(_, make)| make())
            .collect();
        if !extra.is_empty() {
            chain = chain.with_layers(extra);
        }
        layer_faults.extend(rules.into_iter().map(|rule| (name.clone(), rule)));
        any_access_log |= r.middleware.contains(&MiddlewareConfig::AccessLog);
        let retry = r
            .retry
            .as_ref()
            .map(|c| RouteRetry::build(&name, c))
            .transpose()?;
        let fallback = r
            .fallback
            .as_ref()
            .map(|c| RouteFallback::build(&name, c, upstreams))
            .transpose()?;
        let hedge = r
            .hedge
            .as_ref()
            .map(|c| RouteHedge::build(&name, c, &shared.metrics))
            .transpose()?;
        let route = Route {
            retry,
            fallback,
            hedge,
            metrics: RouteMetrics::new(&name, shared.metrics.clone()),
            debug: r.middleware.contains(&MiddlewareConfig::Debug),
            access_log: r.middleware.contains(&MiddlewareConfig::AccessLog),
            name,
            upstream: Some(upstream),
            timeout: r.timeout.get(),
            chain,
            shared: shared.clone(),
        };
        entries.push((
            HostPattern::parse(&r.matcher.host),
            r.matcher.path_prefix.clone(),
            Arc::new(route),
        ));
    }
    let unmatched_name = format!("{}/unmatched", l.name);
    let unmatched = Arc::new(Route {
        metrics: RouteMetrics::new(&unmatched_name, shared.metrics.clone()),
        name: unmatched_name,
        upstream: None,
        timeout: Duration::from_secs(1),
        retry: None,
        fallback: None,
        hedge: None,
        chain: Chain::default(),
        debug: false,
        access_log: any_access_log,
        shared: shared.clone(),
    });
    let tls = l
        .tls
        .as_ref()
        .map(|c| {
            let old = previous.and_then(|p| p.tls.as_deref());
            crate::tls::ListenerTls::build(&l.name, c, old).map(Arc::new)
        })
        .transpose()?;
    Ok(ListenerRuntime {
        tls,
        name: Arc::from(l.name.as_str()),
        listen: l.listen,
        settings: ListenerSettings::from(l),
        router: Router::new(entries),
        unmatched,
        layer_faults,
    })
}
