//! Name resolution behind one small trait, [`Resolve`], so the DNS-aware pool can use a
//! TTL-aware resolver ([`HickoryResolver`]), the system resolver ([`SystemResolver`]),
//! or a scripted one in tests ([`ManualResolver`]).
//!
//! An answer carries how long it may be trusted: `valid_for` is the record TTL when the
//! resolver knows it, `None` when it does not (getaddrinfo), in which case the caller
//! re-resolves on its fixed interval.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// A boxed lookup future; boxed because the pool holds resolvers as `dyn Resolve`.
pub type ResolveFuture<'a> = Pin<Box<dyn Future<Output = io::Result<Resolved>> + Send + 'a>>;

/// One answer: the addresses (with the port applied) and how long they are valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The addresses, in the resolver's order.
    pub addrs: Vec<SocketAddr>,
    /// The answer's TTL, if the resolver knows it.
    pub valid_for: Option<Duration>,
}

/// Resolves `host` to socket addresses on `port`.
pub trait Resolve: Send + Sync + 'static {
    /// One lookup. Implementations need not bound it in time: the caller does.
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> ResolveFuture<'a>;
}

/// The system resolver (`getaddrinfo` on tokio's blocking pool, so it honours
/// nsswitch and /etc/hosts). It knows no TTLs: answers have `valid_for: None`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> ResolveFuture<'a> {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host, port)).await?.collect();
            Ok(Resolved {
                addrs,
                valid_for: None,
            })
        })
    }
}

/// A TTL-aware stub resolver (hickory), configured like the system's from
/// `/etc/resolv.conf` and `/etc/hosts`. Answers carry the time left on their TTL, from
/// hickory's cache. Unlike [`SystemResolver`] it ignores nsswitch (no mDNS, LDAP, ...).
#[derive(Clone)]
pub struct HickoryResolver {
    inner: hickory_resolver::TokioResolver,
}

impl HickoryResolver {
    /// Reads the system configuration. Cached answers from name servers are kept at most
    /// `max_ttl`, so a caller re-resolving after `max_ttl` asks them again rather than the
    /// cache. (Answers from /etc/hosts, read once here, say one day: clamp them.)
    pub fn from_system_conf(max_ttl: Duration) -> io::Result<Self> {
        let mut builder =
            hickory_resolver::TokioResolver::builder_tokio().map_err(io::Error::other)?;
        builder.options_mut().positive_max_ttl = Some(max_ttl);
        let inner = builder.build().map_err(io::Error::other)?;
        Ok(Self { inner })
    }
}

impl std::fmt::Debug for HickoryResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HickoryResolver").finish_non_exhaustive()
    }
}

impl Resolve for HickoryResolver {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> ResolveFuture<'a> {
        Box::pin(async move {
            let lookup = self.inner.lookup_ip(host).await.map_err(io::Error::other)?;
            let valid_for = lookup
                .valid_until()
                .saturating_duration_since(std::time::Instant::now());
            Ok(Resolved {
                addrs: lookup.iter().map(|ip| SocketAddr::new(ip, port)).collect(),
                valid_for: Some(valid_for),
            })
        })
    }
}

/// A resolver whose answers the caller sets: for tests, and for upstreams whose addresses
/// come from elsewhere (e.g. an admin API). Unknown names fail with `NotFound`.
#[derive(Debug, Default)]
pub struct ManualResolver {
    answers: Mutex<HashMap<String, Answer>>,
    lookups: AtomicUsize,
}

#[derive(Debug, Clone)]
enum Answer {
    Found(Resolved),
    Fail,
}

impl ManualResolver {
    /// A resolver that knows no name yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// From now on `host` resolves to `ips` (with the port asked for), valid for `ttl`.
    pub fn set(&self, host: &str, ips: &[std::net::IpAddr], ttl: Option<Duration>) {
        let addrs = ips.iter().map(|ip| SocketAddr::new(*ip, 0)).collect();
        self.put(
            host,
            Answer::Found(Resolved {
                addrs,
                valid_for: ttl,
            }),
        );
    }

    /// From now on lookups of `host` fail.
    pub fn fail(&self, host: &str) {
        self.put(host, Answer::Fail);
    }

    /// How many lookups were made.
    pub fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }

    fn put(&self, host: &str, answer: Answer) {
        self.answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(host.to_owned(), answer);
    }
}

impl Resolve for ManualResolver {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> ResolveFuture<'a> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let answer = self
            .answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(host)
            .cloned();
        Box::pin(async move {
            match answer {
                Some(Answer::Found(mut resolved)) => {
                    for addr in &mut resolved.addrs {
                        addr.set_port(port);
                    }
                    Ok(resolved)
                }
                Some(Answer::Fail) => Err(io::Error::other(format!("lookup of {host} failed"))),
                None => Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{host} is not known"),
                )),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn system_resolver_resolves_an_ip_literal_without_a_ttl() {
        let resolved = SystemResolver.resolve("127.0.0.1", 8080).await.unwrap();
        assert_eq!(resolved.addrs, vec!["127.0.0.1:8080".parse().unwrap()]);
        assert_eq!(resolved.valid_for, None);
    }

    #[tokio::test]
    async fn hickory_resolver_resolves_an_ip_literal_with_a_ttl() {
        let resolver = HickoryResolver::from_system_conf(Duration::from_secs(60)).unwrap();
        let resolved = resolver.resolve("127.0.0.1", 8080).await.unwrap();
        assert_eq!(resolved.addrs, vec!["127.0.0.1:8080".parse().unwrap()]);
        assert!(resolved.valid_for.is_some());
        // localhost never leaves the box; hickory answers it (with a one-day TTL, which
        // the DNS pool's max_ttl clamps) without asking a name server.
        let resolved = resolver.resolve("localhost", 80).await.unwrap();
        assert!(
            !resolved.addrs.is_empty()
                && resolved
                    .addrs
                    .iter()
                    .all(|a| a.ip().is_loopback() && a.port() == 80),
            "{resolved:?}"
        );
        assert!(resolved.valid_for.is_some(), "{resolved:?}");
    }

    #[tokio::test]
    async fn manual_resolver_answers_what_it_was_told_with_the_port_asked_for() {
        let resolver = ManualResolver::new();
        assert!(resolver.resolve("api", 80).await.is_err());
        resolver.set(
            "api",
            &["127.0.0.2".parse().unwrap()],
            Some(Duration::from_secs(5)),
        );
        let resolved = resolver.resolve("api", 80).await.unwrap();
        assert_eq!(resolved.addrs, vec!["127.0.0.2:80".parse().unwrap()]);
        assert_eq!(resolved.valid_for, Some(Duration::from_secs(5)));
        resolver.fail("api");
        assert!(resolver.resolve("api", 80).await.is_err());
        assert_eq!(resolver.lookups(), 3);
    }
}
