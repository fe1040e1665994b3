//! Name resolution behind one small trait, [`Resolve`], so the DNS-aware pool can use the
//! system resolver today, a TTL-aware resolver (hickory) later, and a scripted one in tests.
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
