//! The runtime form of a config: routes with their built chains, upstreams with their pools.
//!
//! A [`Runtime`] is immutable once built and is swapped in whole on reload (`crate::reload`),
//! so a request sees one consistent config from start to end. Building reuses the
//! [`Upstream`] (and so the warm pool) of every upstream whose config did not change.

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc, time::Duration};

use seawall_config::{Config, ListenerConfig, MiddlewareConfig, UpstreamConfig};
use seawall_pool::{Pool, PoolSettings};

use crate::{
    chain::{Chain, Layer},
    metrics::{Metrics, RouteMetrics},
    middleware::{access_log::AccessLogSink, build_chain},
    policy::{
        balance::Picker,
        breaker::UpstreamBreaker,
        bulkhead::Bulkhead,
        fallback::RouteFallback,
        retry::{Budget, RouteRetry},
    },
    routing::{HostPattern, Router},
};

/// Process-wide pieces that outlive any one config.
pub struct Shared {
    pub metrics: Arc<Metrics>,
    pub access_log: Arc<AccessLogSink>,
    /// Layers added by the embedding program, by route name (appended after the configured
    /// ones). This is how a library user adds their own middleware.
    pub extra_layers: Vec<(String, LayerFactory)>,
}

/// Makes a fresh instance of a custom layer for a route.
pub type LayerFactory = Arc<dyn Fn() -> Box<dyn Layer> + Send + Sync>;

/// One upstream: its endpoints' pool, the per-attempt timeouts and the state of its
/// resilience policies (breaker, balancer and outlier ejection, bulkhead, retry budget).
/// All of it is kept across a reload that leaves the upstream's config unchanged.
pub struct Upstream {
    pub name: String,
    pub config: UpstreamConfig,
    pub pool: Pool,
    pub response_header_timeout: Option<Duration>,
    /// Off unless `breaker` is configured.
    pub breaker: Option<UpstreamBreaker>,
    /// Chooses the endpoint of each try.
    pub picker: Picker,
    /// Off unless `concurrency` is configured.
    pub bulkhead: Option<Bulkhead>,
    /// Spent by every route retrying against this upstream.
    pub budget: Budget,
}

impl Upstream {
    fn build(config: &UpstreamConfig, shared: &Shared) -> Result<Self, String> {
        let endpoints = config
            .endpoints
            .iter()
            .map(|e| {
                e.parse::<SocketAddr>().map_err(|_| {
                    format!("upstream `{}`: endpoint `{e}` is not ip:port", config.name)
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
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
        let picker = Picker::build(
            name,
            &endpoints,
            config.balancer,
            config.outlier.as_ref(),
            metrics,
        )?;
        let bulkhead = config
            .concurrency
            .as_ref()
            .map(|c| Bulkhead::build(name, c, metrics));
        let budget = Budget::build(name, &config.retry_budget)?;
        let pool = Pool::new(
            config.name.clone(),
            endpoints,
            settings,
            shared.metrics.pool(&config.name),
        );
        Ok(Self {
            name: config.name.clone(),
            config: config.clone(),
            pool,
            response_header_timeout: config.timeouts.response_header.map(|d| d.get()),
            breaker,
            picker,
            bulkhead,
            budget,
        })
    }
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
            let reused = previous
                .and_then(|p| p.upstreams.get(&u.name))
                .filter(|old| old.config == *u)
                .cloned();
            let upstream = match reused {
                Some(old) => old,
                None => Arc::new(Upstream::build(u, shared)?),
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

    /// The listener called `name`, if the config still has it.
    pub fn listener(&self, name: &str) -> Option<&ListenerRuntime> {
        self.listeners.iter().find(|l| &*l.name == name)
    }

    /// True when a TLS listener's certificate or key file changed on disk since this
    /// runtime was built: a reload of an unchanged config must still rebuild then.
    pub fn tls_files_changed(&self) -> bool {
        self.listeners
            .iter()
            .filter_map(|l| l.tls.as_deref())
            .any(crate::tls::ListenerTls::files_changed)
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
    for (i, r) in l.routes.iter().enumerate() {
        let name = r.name.clone().unwrap_or_else(|| format!("{}/{i}", l.name));
        let upstream = upstreams
            .get(&r.upstream)
            .cloned()
            .ok_or_else(|| format!("route `{name}`: unknown upstream `{}`", r.upstream))?;
        let mut chain = build_chain(&r.middleware).map_err(|e| format!("route `{name}`: {e}"))?;
        let extra: Vec<Box<dyn Layer>> = shared
            .extra_layers
            .iter()
            .filter(|(route, _)| *route == name)
            .map(|(_, make)| make())
            .collect();
        if !extra.is_empty() {
            chain = chain.with_layers(extra);
        }
        any_access_log |= r.middleware.contains(&MiddlewareConfig::AccessLog);
        let retry = r
            .retry
            .as_ref()
            .map(|c| RouteRetry::build(&name, c))
            .transpose()?;
        let fallback = r
            .fallback
            .as_ref()
            .map(|c| RouteFallback::build(&name, c))
            .transpose()?;
        let route = Route {
            retry,
            fallback,
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
    })
}
