//! What a check reads: the typed config, whether a key is written in the file, and the
//! config's units (the whole config, each listener, route and upstream) with their key
//! paths.

use std::time::Duration;

use seawall_config::{Config, ListenerConfig, RouteConfig, Source, UpstreamConfig};

/// The part of the config a finding is charged to; each unit is scored on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UnitKind {
    /// Settings of the whole gateway (`admin`, `debug`, ...).
    Global,
    /// One listener's own settings.
    Listener,
    /// One route.
    Route,
    /// One upstream.
    Upstream,
}

impl UnitKind {
    /// `global`, `listener`, `route` or `upstream`.
    pub fn as_str(self) -> &'static str {
        match self {
            UnitKind::Global => "global",
            UnitKind::Listener => "listener",
            UnitKind::Route => "route",
            UnitKind::Upstream => "upstream",
        }
    }
}

/// One scored unit of a config.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Unit {
    /// What it is.
    pub kind: UnitKind,
    /// Its name (a route without one is `<listener>/<index>`); empty for the global unit.
    pub name: String,
    /// Its key path (`listeners[0].routes[1]`); empty for the global unit.
    pub path: String,
}

impl Unit {
    /// The unit of the gateway-wide settings.
    pub fn global() -> Self {
        Self {
            kind: UnitKind::Global,
            name: String::new(),
            path: String::new(),
        }
    }
}

/// A route with its place in the config.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RouteAt<'a> {
    pub(crate) listener: &'a ListenerConfig,
    pub(crate) route: &'a RouteConfig,
    pub(crate) listener_index: usize,
    pub(crate) index: usize,
}

impl RouteAt<'_> {
    /// `listeners[i].routes[j]`.
    pub(crate) fn path(&self) -> String {
        format!("listeners[{}].routes[{}]", self.listener_index, self.index)
    }

    /// The path of `key` inside the route.
    pub(crate) fn key(&self, key: &str) -> String {
        format!("{}.{key}", self.path())
    }

    /// The route's name as logs and metrics show it.
    pub(crate) fn name(&self) -> String {
        self.route
            .name
            .clone()
            .unwrap_or_else(|| format!("{}/{}", self.listener.name, self.index))
    }

    pub(crate) fn unit(&self) -> Unit {
        Unit {
            kind: UnitKind::Route,
            name: self.name(),
            path: self.path(),
        }
    }

    /// Tries per request: 1 without `retry`.
    pub(crate) fn attempts(&self) -> u32 {
        self.route.retry.as_ref().map_or(1, |r| r.max_attempts)
    }

    pub(crate) fn deadline(&self) -> Duration {
        self.route.timeout.get()
    }
}

/// An upstream with its place in the config.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UpstreamAt<'a> {
    pub(crate) upstream: &'a UpstreamConfig,
    pub(crate) index: usize,
}

impl UpstreamAt<'_> {
    pub(crate) fn path(&self) -> String {
        format!("upstreams[{}]", self.index)
    }

    pub(crate) fn key(&self, key: &str) -> String {
        format!("{}.{key}", self.path())
    }

    pub(crate) fn unit(&self) -> Unit {
        Unit {
            kind: UnitKind::Upstream,
            name: self.upstream.name.clone(),
            path: self.path(),
        }
    }
}

/// The config under check.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub(crate) config: &'a Config,
    pub(crate) source: &'a Source,
}

impl<'a> Scope<'a> {
    /// A scope over `config`, whose text is `source`.
    pub fn new(config: &'a Config, source: &'a Source) -> Self {
        Self { config, source }
    }

    /// Whether `path` is written in the file rather than defaulted.
    pub(crate) fn written(&self, path: &str) -> bool {
        self.source.contains(path)
    }

    pub(crate) fn routes(&self) -> impl Iterator<Item = RouteAt<'a>> + 'a {
        let config = self.config;
        config
            .listeners
            .iter()
            .enumerate()
            .flat_map(|(listener_index, listener)| {
                listener
                    .routes
                    .iter()
                    .enumerate()
                    .map(move |(index, route)| RouteAt {
                        listener,
                        route,
                        listener_index,
                        index,
                    })
            })
    }

    pub(crate) fn upstreams(&self) -> impl Iterator<Item = UpstreamAt<'a>> + 'a {
        self.config
            .upstreams
            .iter()
            .enumerate()
            .map(|(index, upstream)| UpstreamAt { upstream, index })
    }

    /// The upstream named `name` (validation guarantees that a route's exists).
    pub(crate) fn upstream(&self, name: &str) -> Option<UpstreamAt<'a>> {
        self.upstreams().find(|u| u.upstream.name == name)
    }

    /// The routes that forward to `upstream`.
    pub(crate) fn routes_to(&self, upstream: &'a str) -> impl Iterator<Item = RouteAt<'a>> + 'a {
        self.routes().filter(move |r| r.route.upstream == upstream)
    }

    /// The shortest deadline of the routes forwarding to `upstream`, with that route.
    pub(crate) fn tightest_route(&self, upstream: &'a str) -> Option<RouteAt<'a>> {
        self.routes_to(upstream).min_by_key(|r| r.deadline())
    }

    /// Every unit of the config, in file order of their kinds.
    pub fn units(&self) -> Vec<Unit> {
        let mut units = vec![Unit::global()];
        units.extend(self.config.listeners.iter().enumerate().map(|(i, l)| Unit {
            kind: UnitKind::Listener,
            name: l.name.clone(),
            path: format!("listeners[{i}]"),
        }));
        units.extend(self.routes().map(|r| r.unit()));
        units.extend(self.upstreams().map(|u| u.unit()));
        units
    }
}

/// `d` as a suggested config value in one unit (`7500ms`, `2s`, rather than `7s 500ms`),
/// rounded down to the millisecond; at least 1ms.
pub(crate) fn duration(d: Duration) -> String {
    let ms = d.as_millis().max(1);
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Whether an endpoint is `host:port` (resolved by DNS) rather than `ip:port`.
pub(crate) fn is_host_name(endpoint: &str) -> bool {
    endpoint.parse::<std::net::SocketAddr>().is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggested_durations_are_written_in_one_unit_as_the_config_accepts_them() {
        assert_eq!(duration(Duration::from_millis(7500)), "7500ms");
        assert_eq!(duration(Duration::from_secs(2)), "2s");
        assert_eq!(duration(Duration::from_micros(10)), "1ms", "never zero");
        for text in ["7500ms", "2s", "1ms"] {
            assert!(
                text.parse::<seawall_config::HumanDuration>().is_ok(),
                "{text}"
            );
        }
    }

    #[test]
    fn host_name_endpoints_are_told_from_ip_ones() {
        assert!(is_host_name("api.internal:8080"));
        assert!(!is_host_name("10.0.0.1:8080"));
        assert!(!is_host_name("[::1]:8080"));
    }
}
