//! [`DnsPool`]: the pool of an upstream whose endpoints are `host:port` names, with one
//! single-address [`Pool`] per resolved address, kept in step with DNS.
//!
//! A background task re-resolves every name when the shortest answer TTL (clamped to
//! `[min_ttl, max_ttl]`) runs out, or every `interval` when the resolver knows no TTL.
//! When the set of addresses changes, new addresses get a sub-pool and removed ones are
//! drained (`Pool::drain`): idle connections close at once, no new checkouts, exchanges
//! in flight finish, anything left is closed after `drain_grace`. A failed or empty
//! lookup keeps the name's last good addresses (DNS trouble must not take a healthy
//! upstream down), counts a failure and retries after `min_ttl`.
//!
//! Concurrency. The member list is an immutable `Arc<Vec<Member>>` behind an `ArcSwap`:
//! a checkout loads it without a lock and keeps its snapshot for the whole checkout, the
//! refresher is the only writer and swaps in a new list. A checkout holding the old list
//! may still reach a member that was just drained; it gets `NoEndpoint` and falls
//! through to the next address, so a change never fails a request by itself.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use seawall_core::ErrorKind;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::checkout::Pooled;
use crate::endpoint::EndpointSnapshot;
use crate::error::PoolError;
use crate::metrics::PoolMetrics;
use crate::options::PoolOptions;
use crate::pool::Pool;
use crate::resolve::Resolve;
use crate::settings::PoolSettings;

/// An endpoint given by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// A DNS name (or an IP literal, which resolves to itself).
    pub host: String,
    /// The port.
    pub port: u16,
}

/// A `host:port` string that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not host:port")]
pub struct InvalidHostPort(pub String);

impl FromStr for HostPort {
    type Err = InvalidHostPort;

    /// `name:port`, `1.2.3.4:port` or `[::1]:port`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidHostPort(text.to_owned());
        let (host, port) = text.rsplit_once(':').ok_or_else(invalid)?;
        let port = port.parse().map_err(|_| invalid())?;
        let host = host
            .strip_prefix('[')
            .and_then(|inner| inner.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() || host.contains(['[', ']', '/', ' ']) {
            return Err(invalid());
        }
        Ok(HostPort {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// DNS metric handles, labelled for the upstream by the caller.
#[derive(Debug, Clone, Default)]
pub struct DnsMetrics {
    /// Lookups made (one per name per refresh).
    pub lookups: Counter,
    /// Lookups that failed, timed out or returned no address (the last good answer was kept).
    pub failures: Counter,
    /// Times the set of addresses changed.
    pub changes: Counter,
    /// Addresses currently in use (not counting draining ones).
    pub addresses: Gauge,
}

/// How a [`DnsPool`] resolves its names.
#[derive(Clone)]
pub struct DnsOptions {
    /// The resolver.
    pub resolver: Arc<dyn Resolve>,
    /// Shortest time an answer is used before re-resolving (a TTL below is raised to it);
    /// also the retry delay after a failed lookup. Floored at 10 ms.
    pub min_ttl: Duration,
    /// Longest time an answer is used (a TTL above, e.g. from /etc/hosts, is lowered).
    pub max_ttl: Duration,
    /// Re-resolution period when the resolver gives no TTL (the system resolver).
    pub interval: Duration,
    /// Bound on one lookup; a lookup that takes longer counts as failed.
    pub resolve_timeout: Duration,
    /// How long connections to a removed address may finish their exchange.
    pub drain_grace: Duration,
    /// Metric handles.
    pub metrics: DnsMetrics,
}

impl DnsOptions {
    /// Defaults: TTL clamped to 1 s – 5 min, 30 s interval without TTL, 5 s lookup
    /// timeout, 30 s drain grace.
    pub fn new(resolver: Arc<dyn Resolve>) -> Self {
        Self {
            resolver,
            min_ttl: Duration::from_secs(1),
            max_ttl: Duration::from_secs(300),
            interval: Duration::from_secs(30),
            resolve_timeout: Duration::from_secs(5),
            drain_grace: Duration::from_secs(30),
            metrics: DnsMetrics::default(),
        }
    }

    /// When to look up again after an answer valid for `valid_for` (`None`: unknown TTL),
    /// or after a failure (`failed`).
    fn next_delay(&self, valid_for: Option<Duration>, failed: bool) -> Duration {
        let floor = Duration::from_millis(10);
        let min = self.min_ttl.max(floor);
        if failed {
            return min;
        }
        match valid_for {
            Some(ttl) => ttl.clamp(min, self.max_ttl.max(min)),
            None => self.interval.max(floor),
        }
    }
}

impl fmt::Debug for DnsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DnsOptions")
            .field("min_ttl", &self.min_ttl)
            .field("max_ttl", &self.max_ttl)
            .field("interval", &self.interval)
            .field("resolve_timeout", &self.resolve_timeout)
            .field("drain_grace", &self.drain_grace)
            .finish_non_exhaustive()
    }
}

/// One resolved address and its sub-pool.
struct Member {
    addr: SocketAddr,
    pool: Pool,
}

struct Inner {
    upstream: Box<str>,
    names: Vec<HostPort>,
    settings: PoolSettings,
    metrics: PoolMetrics,
    options: PoolOptions,
    dns: DnsOptions,
    /// Swapped whole by the refresher; loaded lock-free by checkouts.
    members: ArcSwap<Vec<Member>>,
    /// Round-robin cursor; relaxed, as any interleaving is fair enough.
    next: AtomicUsize,
    stop: CancellationToken,
}

struct Handle {
    inner: Arc<Inner>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        // Stops the refresher, which holds the other `Arc<Inner>`; the member pools then
        // drop and close like any dropped `Pool`.
        self.inner.stop.cancel();
    }
}

/// The pool of an upstream given by `host:port` names. Cheap to clone; the last clone
/// dropped stops re-resolution and closes the sub-pools.
#[derive(Clone)]
pub struct DnsPool {
    handle: Arc<Handle>,
}

impl DnsPool {
    /// Resolves every name once (each lookup bounded by `resolve_timeout`), builds a
    /// sub-pool per address, and spawns the refresher. Names that fail to resolve now are
    /// retried after `min_ttl`; until some name resolves, checkouts fail with
    /// `NoEndpoint`.
    ///
    /// For TLS, a `TlsSettings::server_name` left `None` becomes each name's host.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub async fn start(
        upstream: impl Into<String>,
        names: Vec<HostPort>,
        settings: PoolSettings,
        metrics: PoolMetrics,
        options: PoolOptions,
        dns: DnsOptions,
    ) -> DnsPool {
        let inner = Arc::new(Inner {
            upstream: upstream.into().into_boxed_str(),
            names,
            settings,
            metrics,
            options,
            dns,
            members: ArcSwap::from_pointee(Vec::new()),
            next: AtomicUsize::new(0),
            stop: CancellationToken::new(),
        });
        let mut answers = vec![Vec::new(); inner.names.len()];
        let delay = refresh(&inner, &mut answers).await;
        tokio::spawn(refresher(Arc::clone(&inner), answers, delay));
        DnsPool {
            handle: Arc::new(Handle { inner }),
        }
    }

    fn inner(&self) -> &Inner {
        &self.handle.inner
    }

    /// Checks out a connection to one of the addresses, taken round-robin. If connecting
    /// fails (`ConnectError`, `ConnectTimeout`, `TlsError`, `TlsHandshakeTimeout`) or
    /// the address was just drained, the next address is tried, each once, all within
    /// `deadline`; the last error is returned. Other errors (`PoolExhausted`,
    /// `DeadlineExceeded`) return at once.
    pub async fn checkout(&self, deadline: Instant) -> Result<Pooled, PoolError> {
        let inner = self.inner();
        let members = inner.members.load_full();
        let count = members.len();
        let start = inner.next.fetch_add(1, Ordering::Relaxed);
        let mut last = None;
        for offset in 0..count {
            let member = &members[(start + offset) % count];
            match member.pool.checkout(0, deadline).await {
                Ok(pooled) => return Ok(pooled),
                Err(error) if falls_through(&error) => {
                    tracing::debug!(upstream = %inner.upstream, endpoint = %member.addr, %error, "Trying the next address.");
                    last = Some(error);
                }
                Err(error) => return Err(error),
            }
        }
        Err(last.unwrap_or_else(|| PoolError::unresolved(&inner.upstream)))
    }

    /// The upstream's name.
    pub fn upstream(&self) -> &str {
        &self.inner().upstream
    }

    /// The names being resolved.
    pub fn names(&self) -> &[HostPort] {
        &self.inner().names
    }

    /// The addresses in use now (draining ones excluded), in checkout order.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.inner().members.load().iter().map(|m| m.addr).collect()
    }

    /// Per-address counts for the admin API (draining addresses excluded).
    pub fn snapshot(&self) -> Vec<EndpointSnapshot> {
        let members = self.inner().members.load();
        members.iter().flat_map(|m| m.pool.snapshot()).collect()
    }

    /// Closes every idle connection of every address (reason `shutdown`).
    pub fn close_idle(&self) {
        for member in self.inner().members.load().iter() {
            member.pool.close_idle();
        }
    }
}

impl fmt::Debug for DnsPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DnsPool")
            .field("upstream", &self.upstream())
            .field("names", &self.names())
            .field("addresses", &self.addresses())
            .finish_non_exhaustive()
    }
}

fn falls_through(error: &PoolError) -> bool {
    match error.kind {
        ErrorKind::ConnectError
        | ErrorKind::ConnectTimeout
        | ErrorKind::TlsError
        | ErrorKind::TlsHandshakeTimeout => true,
        // A member drained between loading the list and checking out.
        ErrorKind::NoEndpoint => error.endpoint.is_some(),
        _ => false,
    }
}

async fn refresher(inner: Arc<Inner>, mut answers: Vec<Vec<SocketAddr>>, mut delay: Duration) {
    loop {
        tokio::select! {
            () = inner.stop.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = tokio::select! {
            // A hanging lookup must not keep the upstream's pools alive after the last
            // handle is gone.
            () = inner.stop.cancelled() => return,
            delay = refresh(&inner, &mut answers) => delay,
        };
    }
}

/// Looks every name up, keeps each name's last good answer on failure, applies the union
/// of the answers, and returns when to look again.
async fn refresh(inner: &Inner, answers: &mut [Vec<SocketAddr>]) -> Duration {
    let dns = &inner.dns;
    // The soonest any name needs looking up again; with no names, the plain interval.
    let mut next: Option<Duration> = None;
    for (name, answer) in inner.names.iter().zip(answers.iter_mut()) {
        dns.metrics.lookups.inc();
        let lookup = dns.resolver.resolve(&name.host, name.port);
        let delay = match tokio::time::timeout(dns.resolve_timeout, lookup).await {
            Ok(Ok(resolved)) if !resolved.addrs.is_empty() => {
                *answer = resolved.addrs;
                dns.next_delay(resolved.valid_for, false)
            }
            outcome => {
                let why = match outcome {
                    Ok(Ok(_)) => "no address".to_owned(),
                    Ok(Err(error)) => error.to_string(),
                    Err(_) => format!("timed out after {:?}", dns.resolve_timeout),
                };
                dns.metrics.failures.inc();
                tracing::warn!(upstream = %inner.upstream, name = %name, error = %why, kept = answer.len(), "DNS lookup failed; keeping the last good answer.");
                dns.next_delay(None, true)
            }
        };
        next = Some(next.map_or(delay, |soonest| soonest.min(delay)));
    }
    apply(inner, answers);
    next.unwrap_or_else(|| dns.next_delay(None, false))
}

/// Swaps in the members for the union of `answers`, keeping existing sub-pools, and
/// drains the sub-pools of addresses no longer present.
fn apply(inner: &Inner, answers: &[Vec<SocketAddr>]) {
    // Each address once, attributed to the first name that gave it (for TLS SNI).
    let mut wanted: Vec<(SocketAddr, usize)> = Vec::new();
    for (index, addrs) in answers.iter().enumerate() {
        for &addr in addrs {
            if !wanted.iter().any(|(seen, _)| *seen == addr) {
                wanted.push((addr, index));
            }
        }
    }
    let current = inner.members.load_full();
    let unchanged = current.len() == wanted.len()
        && current
            .iter()
            .all(|member| wanted.iter().any(|(addr, _)| *addr == member.addr));
    if unchanged {
        // Resolvers rotate their answers; order alone is not a change.
        return;
    }
    let mut next = Vec::with_capacity(wanted.len());
    for member in current.iter() {
        if wanted.iter().any(|(addr, _)| *addr == member.addr) {
            next.push(Member {
                addr: member.addr,
                pool: member.pool.clone(),
            });
        }
    }
    for &(addr, index) in &wanted {
        if !current.iter().any(|member| member.addr == addr) {
            next.push(Member {
                addr,
                pool: Pool::with_options(
                    inner.upstream.to_string(),
                    vec![addr],
                    inner.settings.clone(),
                    inner.metrics.clone(),
                    options_for(inner, index),
                ),
            });
        }
    }
    let removed: Vec<Pool> = current
        .iter()
        .filter(|member| !wanted.iter().any(|(addr, _)| *addr == member.addr))
        .map(|member| member.pool.clone())
        .collect();
    tracing::info!(
        upstream = %inner.upstream,
        addresses = ?next.iter().map(|m| m.addr).collect::<Vec<_>>(),
        removed = removed.len(),
        "Upstream addresses changed."
    );
    inner.dns.metrics.addresses.set(next.len() as i64);
    inner.dns.metrics.changes.inc();
    // Publish first, then drain: a checkout that still sees the old list falls through.
    inner.members.store(Arc::new(next));
    for pool in removed {
        pool.drain(inner.dns.drain_grace);
    }
}

fn options_for(inner: &Inner, name_index: usize) -> PoolOptions {
    let mut options = inner.options.clone();
    if let (Some(tls), Some(name)) = (&options.tls, inner.names.get(name_index)) {
        options.tls = Some(tls.or_server_name(&name.host));
    }
    options
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::ManualResolver;

    #[test]
    fn host_port_parses_names_ipv4_and_bracketed_ipv6() {
        let parse = |text: &str| text.parse::<HostPort>();
        assert_eq!(
            parse("api.internal:8080").unwrap(),
            HostPort {
                host: "api.internal".into(),
                port: 8080
            }
        );
        assert_eq!(parse("[::1]:80").unwrap().host, "::1");
        assert_eq!(parse("[::1]:80").unwrap().to_string(), "[::1]:80");
        for bad in ["api", "api:", ":80", "api:99999", "[::1:80"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ttl_is_clamped_and_failures_retry_after_min_ttl() {
        let dns = DnsOptions {
            min_ttl: Duration::from_secs(2),
            max_ttl: Duration::from_secs(60),
            interval: Duration::from_secs(30),
            ..DnsOptions::new(Arc::new(ManualResolver::new()))
        };
        let secs = Duration::from_secs;
        assert_eq!(dns.next_delay(Some(secs(0)), false), secs(2));
        assert_eq!(dns.next_delay(Some(secs(10)), false), secs(10));
        assert_eq!(dns.next_delay(Some(secs(86_400)), false), secs(60));
        assert_eq!(dns.next_delay(None, false), secs(30));
        assert_eq!(dns.next_delay(Some(secs(10)), true), secs(2));
    }
}
