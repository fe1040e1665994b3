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
//! through to the next address, so a change never fails a request by itself. What the
//! admin API shows (each name's last answer, the draining addresses) sits behind short
//! mutexes that only the refresher and [`DnsPool::state`] take, never a checkout.
//!
//! The first lookups run in the refresher task too, so a pool can be built without
//! awaiting ([`DnsPool::spawn`]); [`DnsPool::resolved`] waits for them. When the last
//! handle goes, the refresher drains every sub-pool with `drain_grace` (a reload that
//! drops the upstream lets its requests finish, within the grace).

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use seawall_core::ErrorKind;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::checkout::Pooled;
use crate::dedicated::Dedicated;
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

/// DNS metric handles, labelled for the upstream by the caller. Several pools may share
/// them (one per name of an upstream): the gauge moves by differences, never `set`.
#[derive(Debug, Clone)]
pub struct DnsMetrics {
    /// Lookups made (one per name per refresh).
    pub lookups: Counter,
    /// Lookups that failed, timed out or returned no address (the last good answer was kept).
    pub failures: Counter,
    /// Times the set of addresses changed.
    pub changes: Counter,
    /// Addresses currently in use (not counting draining ones).
    pub addresses: Gauge,
    /// Duration of every lookup, failed and timed-out ones included (seconds).
    pub resolve_duration: Histogram,
}

impl DnsMetrics {
    /// Suggested buckets for `resolve_duration`: 50 µs (a cache or /etc/hosts) to about
    /// 6.5 s, doubling.
    pub fn resolve_buckets() -> impl Iterator<Item = f64> {
        exponential_buckets(0.000_05, 2.0, 18)
    }
}

impl Default for DnsMetrics {
    /// Unregistered handles, for tests.
    fn default() -> Self {
        Self {
            lookups: Counter::default(),
            failures: Counter::default(),
            changes: Counter::default(),
            addresses: Gauge::default(),
            resolve_duration: Histogram::new(Self::resolve_buckets()),
        }
    }
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
    /// Defaults: TTL clamped to 1 s – 5 min, 30 s interval without TTL, 2 s lookup
    /// timeout, 30 s drain grace.
    pub fn new(resolver: Arc<dyn Resolve>) -> Self {
        Self {
            resolver,
            min_ttl: Duration::from_secs(1),
            max_ttl: Duration::from_secs(300),
            interval: Duration::from_secs(30),
            resolve_timeout: Duration::from_secs(2),
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

/// A removed address whose sub-pool is draining, kept for [`DnsPool::state`] until its
/// last connection is gone (at the latest when the grace ends).
struct Draining {
    pool: Pool,
    until: Instant,
}

/// What the refresher last learnt about one name.
#[derive(Debug, Clone, Default)]
struct NameRecord {
    answer: Vec<SocketAddr>,
    answered_at: Option<Instant>,
    valid_for: Option<Duration>,
    failures: u64,
    last_error: Option<String>,
}

/// Whether an address takes new requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressState {
    /// In the current answer: takes new requests.
    Active,
    /// Left the answer: no new requests; what is in flight finishes within the grace.
    Draining,
}

impl AddressState {
    /// `active` or `draining`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Draining => "draining",
        }
    }
}

/// One address of a [`DnsPool`], for the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressSnapshot {
    /// Active or draining.
    pub state: AddressState,
    /// The sub-pool's counts (`addr` is the address).
    pub pool: EndpointSnapshot,
}

/// One name of a [`DnsPool`], for the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameSnapshot {
    /// The name looked up.
    pub name: HostPort,
    /// The last good answer (kept through failed lookups), in the resolver's order.
    pub answer: Vec<SocketAddr>,
    /// How long ago that answer arrived; `None` before any.
    pub age: Option<Duration>,
    /// Its TTL as the resolver gave it, when it gave one.
    pub ttl: Option<Duration>,
    /// That TTL clamped to `[min_ttl, max_ttl]`: how long the answer is used before the
    /// next lookup. `None` when the resolver gave no TTL (`interval` applies).
    pub ttl_used: Option<Duration>,
    /// Lookups of this name that failed, timed out or came back empty.
    pub failures: u64,
    /// Why the last lookup failed, if it did.
    pub last_error: Option<String>,
}

/// The state of a [`DnsPool`]: its names and its addresses (active ones first, in checkout
/// order, then the draining ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSnapshot {
    /// Per name.
    pub names: Vec<NameSnapshot>,
    /// Per address.
    pub addresses: Vec<AddressSnapshot>,
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
    /// Cancelled once the first lookups are done (see [`DnsPool::resolved`]).
    first_round: CancellationToken,
    /// Per name, in `names` order; written by the refresher only.
    records: Mutex<Vec<NameRecord>>,
    /// Sub-pools of removed addresses, until they are empty.
    draining: Mutex<Vec<Draining>>,
}

/// A poisoned lock only means a panic elsewhere while holding it; the plain data inside
/// stays usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Handle {
    inner: Arc<Inner>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        // Stops the refresher, which holds the other `Arc<Inner>`; it drains the member
        // pools on its way out (it is the only writer of the member list).
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
    /// [`DnsPool::spawn`], then waits for the first lookups ([`DnsPool::resolved`]).
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
        let pool = Self::spawn(upstream, names, settings, metrics, options, dns);
        pool.resolved().await;
        pool
    }

    /// Builds the pool and spawns its refresher, which resolves every name at once (each
    /// lookup bounded by `resolve_timeout`) and builds a sub-pool per address. Until some
    /// name resolves, checkouts fail with `NoEndpoint`; names that fail are retried after
    /// `min_ttl`.
    ///
    /// For TLS, a `TlsSettings::server_name` left `None` becomes each name's host.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn spawn(
        upstream: impl Into<String>,
        names: Vec<HostPort>,
        settings: PoolSettings,
        metrics: PoolMetrics,
        options: PoolOptions,
        dns: DnsOptions,
    ) -> DnsPool {
        let records = vec![NameRecord::default(); names.len()];
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
            first_round: CancellationToken::new(),
            records: Mutex::new(records),
            draining: Mutex::new(Vec::new()),
        });
        tokio::spawn(refresher(Arc::clone(&inner)));
        DnsPool {
            handle: Arc::new(Handle { inner }),
        }
    }

    /// Returns once the first lookup of every name has ended (answered, failed or timed
    /// out), so at most about `resolve_timeout` per name after [`DnsPool::spawn`].
    pub async fn resolved(&self) {
        self.inner().first_round.cancelled().await;
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

    /// Opens a dedicated connection for one upgrade request ([`Pool::connect_dedicated`])
    /// to one of the addresses, taken round-robin, falling through to the next address on
    /// the same errors as [`DnsPool::checkout`].
    pub async fn connect_dedicated(&self, deadline: Instant) -> Result<Dedicated, PoolError> {
        let inner = self.inner();
        let members = inner.members.load_full();
        let count = members.len();
        let start = inner.next.fetch_add(1, Ordering::Relaxed);
        let mut last = None;
        for offset in 0..count {
            let member = &members[(start + offset) % count];
            match member.pool.connect_dedicated(0, deadline).await {
                Ok(conn) => return Ok(conn),
                Err(error) if falls_through(&error) => last = Some(error),
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

    /// Names with their last answers, and addresses with their state and counts, for the
    /// admin API. Draining addresses whose connections are all gone are dropped here.
    pub fn state(&self) -> DnsSnapshot {
        let inner = self.inner();
        let now = Instant::now();
        let names = {
            let records = lock(&inner.records);
            inner
                .names
                .iter()
                .zip(records.iter())
                .map(|(name, record)| NameSnapshot {
                    name: name.clone(),
                    answer: record.answer.clone(),
                    age: record
                        .answered_at
                        .map(|at| now.saturating_duration_since(at)),
                    ttl: record.valid_for,
                    ttl_used: record
                        .valid_for
                        .map(|ttl| inner.dns.next_delay(Some(ttl), false)),
                    failures: record.failures,
                    last_error: record.last_error.clone(),
                })
                .collect()
        };
        let snapshot = |state, pool: &Pool| {
            pool.snapshot()
                .into_iter()
                .map(move |pool| AddressSnapshot { state, pool })
        };
        let mut addresses: Vec<AddressSnapshot> = inner
            .members
            .load()
            .iter()
            .flat_map(|m| snapshot(AddressState::Active, &m.pool))
            .collect();
        let draining: Vec<Pool> = {
            let mut draining = lock(&inner.draining);
            prune_drained(&mut draining, now);
            draining.iter().map(|d| d.pool.clone()).collect()
        };
        // Read outside the lock; the clones are dropped here, not under it.
        for pool in &draining {
            addresses.extend(snapshot(AddressState::Draining, pool));
        }
        DnsSnapshot { names, addresses }
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

/// Forgets draining sub-pools with no connection left, or whose grace is over (their
/// drivers are closing what is left).
fn prune_drained(draining: &mut Vec<Draining>, now: Instant) {
    draining.retain(|d| now < d.until && d.pool.snapshot().iter().any(|e| e.open > 0));
}

async fn refresher(inner: Arc<Inner>) {
    let mut answers = vec![Vec::new(); inner.names.len()];
    let mut delay = tokio::select! {
        () = inner.stop.cancelled() => Duration::ZERO,
        delay = refresh(&inner, &mut answers) => delay,
    };
    inner.first_round.cancel();
    loop {
        if inner.stop.is_cancelled() {
            break;
        }
        tokio::select! {
            () = inner.stop.cancelled() => break,
            () = tokio::time::sleep(delay) => {}
        }
        delay = tokio::select! {
            // A hanging lookup must not keep the upstream's pools alive after the last
            // handle is gone.
            () = inner.stop.cancelled() => break,
            delay = refresh(&inner, &mut answers) => delay,
        };
    }
    retire(&inner);
}

/// The last handle is gone: drain every sub-pool, so requests in flight finish within
/// `drain_grace` and nothing outlives it.
fn retire(inner: &Inner) {
    let members = inner.members.swap(Arc::new(Vec::new()));
    inner.dns.metrics.addresses.dec_by(members.len() as i64);
    for member in members.iter() {
        member.pool.clone().drain(inner.dns.drain_grace);
    }
    lock(&inner.draining).clear();
}

/// Looks every name up, keeps each name's last good answer on failure, applies the union
/// of the answers, and returns when to look again.
async fn refresh(inner: &Inner, answers: &mut [Vec<SocketAddr>]) -> Duration {
    let dns = &inner.dns;
    // The soonest any name needs looking up again; with no names, the plain interval.
    let mut next: Option<Duration> = None;
    for (index, (name, answer)) in inner.names.iter().zip(answers.iter_mut()).enumerate() {
        dns.metrics.lookups.inc();
        let started = Instant::now();
        let lookup = dns.resolver.resolve(&name.host, name.port);
        let outcome = tokio::time::timeout(dns.resolve_timeout, lookup).await;
        dns.metrics
            .resolve_duration
            .observe(started.elapsed().as_secs_f64());
        let delay = match outcome {
            Ok(Ok(resolved)) if !resolved.addrs.is_empty() => {
                let mut records = lock(&inner.records);
                let record = &mut records[index];
                record.answer.clone_from(&resolved.addrs);
                record.answered_at = Some(Instant::now());
                record.valid_for = resolved.valid_for;
                record.last_error = None;
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
                let mut records = lock(&inner.records);
                records[index].failures += 1;
                records[index].last_error = Some(why);
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
    inner
        .dns
        .metrics
        .addresses
        .inc_by(next.len() as i64 - current.len() as i64);
    inner.dns.metrics.changes.inc();
    // Publish first, then drain: a checkout that still sees the old list falls through.
    inner.members.store(Arc::new(next));
    let now = Instant::now();
    let until = now + inner.dns.drain_grace;
    let mut draining = lock(&inner.draining);
    prune_drained(&mut draining, now);
    for pool in removed {
        pool.clone().drain(inner.dns.drain_grace);
        draining.push(Draining { pool, until });
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
