//! [`UpstreamPool`]: the connections of one upstream, one entry per configured endpoint.
//!
//! The balancer picks among the endpoints as written in the config, so its indices (and
//! the outlier detector's) stay put whatever DNS does. An `ip:port` entry is an index into
//! one plain [`Pool`] shared by all of them (the path IP-only upstreams always had: no
//! resolver, no extra indirection beyond one match). A `host:port` entry is its own
//! [`DnsPool`], which keeps the name resolved, spreads checkouts over its addresses and
//! falls through to the next address when a connect fails.
//!
//! The resolver is the one given at start (`GatewayOptions::resolver`, for tests) or else
//! the upstream's `dns.resolver`: hickory (TTL-aware; one per upstream, its cache capped
//! at the upstream's `max_ttl`) or the system's getaddrinfo.

use std::{net::SocketAddr, sync::Arc};

use seawall_config::{DnsResolverKind, UpstreamDnsConfig};
use seawall_pool::{
    Dedicated, DnsMetrics, DnsOptions, DnsPool, DnsSnapshot, EndpointSnapshot, HickoryResolver,
    HostPort, Pool, PoolError, PoolMetrics, PoolOptions, PoolSettings, Pooled, Resolve,
    SystemResolver,
};
use tokio::time::Instant;

/// One configured endpoint.
enum Entry {
    /// Index into the plain pool.
    Ip(usize),
    /// A name, kept resolved.
    Name(DnsPool),
}

/// What one configured endpoint looks like now, for the admin API.
pub enum EntrySnapshot {
    /// An `ip:port` endpoint's pool counts.
    Ip(EndpointSnapshot),
    /// A `host:port` endpoint's names, answers and addresses.
    Name(DnsSnapshot),
}

/// How a DNS entry resolves: the resolver, the upstream's `dns` settings, its metrics.
pub struct DnsSetup<'a> {
    /// Overrides `config.resolver` when set.
    pub resolver: Option<&'a Arc<dyn Resolve>>,
    pub config: &'a UpstreamDnsConfig,
    /// Called once, and only when the upstream has a name among its endpoints (so IP-only
    /// upstreams register no DNS series).
    pub metrics: &'a dyn Fn() -> DnsMetrics,
}

/// The given resolver, or the one `dns.resolver` names.
fn resolver_for(upstream: &str, dns: &DnsSetup<'_>) -> Result<Arc<dyn Resolve>, String> {
    if let Some(resolver) = dns.resolver {
        return Ok(Arc::clone(resolver));
    }
    Ok(match dns.config.resolver {
        DnsResolverKind::System => Arc::new(SystemResolver),
        DnsResolverKind::Hickory => Arc::new(
            HickoryResolver::from_system_conf(dns.config.max_ttl.get()).map_err(|e| {
                format!(
                    "upstream `{upstream}`: dns.resolver hickory: cannot read the system DNS configuration ({e}); set `dns: {{resolver: system}}` to use getaddrinfo"
                )
            })?,
        ),
    })
}

/// The connection pools of one upstream.
pub struct UpstreamPool {
    ips: Pool,
    entries: Box<[Entry]>,
}

impl UpstreamPool {
    /// Builds the pools for `endpoints` (validated by the config: `ip:port` or
    /// `host:port`). DNS entries start resolving at once; see [`UpstreamPool::resolved`].
    pub fn build(
        upstream: &str,
        endpoints: &[String],
        settings: PoolSettings,
        metrics: PoolMetrics,
        options: PoolOptions,
        dns: DnsSetup<'_>,
    ) -> Result<Self, String> {
        let mut ips = Vec::new();
        let mut entries = Vec::with_capacity(endpoints.len());
        let mut dns_metrics = None;
        let mut resolver = None;
        for endpoint in endpoints {
            let endpoint = endpoint.trim();
            if let Ok(addr) = endpoint.parse::<SocketAddr>() {
                entries.push(Entry::Ip(ips.len()));
                ips.push(addr);
                continue;
            }
            let name = endpoint.parse::<HostPort>().map_err(|_| {
                format!("upstream `{upstream}`: endpoint `{endpoint}` is not ip:port or host:port")
            })?;
            let metrics_for_dns = dns_metrics.get_or_insert_with(|| (dns.metrics)()).clone();
            let config = dns.config;
            let resolver = match &resolver {
                Some(resolver) => Arc::clone(resolver),
                None => Arc::clone(resolver.insert(resolver_for(upstream, &dns)?)),
            };
            let options_for_dns = DnsOptions {
                min_ttl: config.min_ttl.get(),
                max_ttl: config.max_ttl.get(),
                interval: config.interval.get(),
                resolve_timeout: config.resolve_timeout.get(),
                drain_grace: config.drain_grace.get(),
                metrics: metrics_for_dns,
                ..DnsOptions::new(resolver)
            };
            entries.push(Entry::Name(DnsPool::spawn(
                upstream,
                vec![name],
                settings.clone(),
                metrics.clone(),
                options.clone(),
                options_for_dns,
            )));
        }
        let ips = Pool::with_options(upstream, ips, settings, metrics, options);
        Ok(Self {
            ips,
            entries: entries.into_boxed_slice(),
        })
    }

    /// Checks out a connection to configured endpoint `index`: from the plain pool for an
    /// `ip:port` entry, from the name's addresses (falling through on connect failures)
    /// for a `host:port` one.
    pub async fn checkout(&self, index: usize, deadline: Instant) -> Result<Pooled, PoolError> {
        match self.entries.get(index) {
            Some(Entry::Ip(i)) => self.ips.checkout(*i, deadline).await,
            // Boxed: the name's checkout (several sub-pools, fall-through) is large, and
            // unboxed it would widen every request's future on IP-only upstreams too.
            Some(Entry::Name(pool)) => Box::pin(pool.checkout(deadline)).await,
            // Not reachable (the balancer has one slot per entry); the plain pool reports
            // an index it does not have as `no_endpoint`.
            None => self.ips.checkout(usize::MAX, deadline).await,
        }
    }

    /// Opens a dedicated connection for one upgrade request to configured endpoint
    /// `index` (see `seawall_pool::Pool::connect_dedicated`), like [`UpstreamPool::checkout`]
    /// picks the address.
    pub async fn connect_dedicated(
        &self,
        index: usize,
        deadline: Instant,
    ) -> Result<Dedicated, PoolError> {
        match self.entries.get(index) {
            Some(Entry::Ip(i)) => self.ips.connect_dedicated(*i, deadline).await,
            Some(Entry::Name(pool)) => pool.connect_dedicated(deadline).await,
            None => self.ips.connect_dedicated(usize::MAX, deadline).await,
        }
    }

    /// Returns once every name's first lookup has ended (at once for `ip:port` entries and
    /// for pools already resolved).
    pub async fn resolved(&self) {
        for entry in self.entries.iter() {
            if let Entry::Name(pool) = entry {
                pool.resolved().await;
            }
        }
    }

    /// True when some endpoint is a name.
    pub fn has_names(&self) -> bool {
        self.entries.iter().any(|e| matches!(e, Entry::Name(_)))
    }

    /// Per configured endpoint, in config order (the balancer's indices).
    pub fn snapshot(&self) -> Vec<EntrySnapshot> {
        let ips = self.ips.snapshot();
        self.entries
            .iter()
            .filter_map(|entry| match entry {
                Entry::Ip(i) => ips.get(*i).copied().map(EntrySnapshot::Ip),
                Entry::Name(pool) => Some(EntrySnapshot::Name(pool.state())),
            })
            .collect()
    }
}
