//! Rules about upstreams: endpoints (`ip:port` or `host:port`), DNS settings, pool limits,
//! and timeouts relative to the routes that use them.

use std::{
    collections::HashSet,
    net::{IpAddr, SocketAddr},
};

use super::Found;
use crate::{
    Config, UpstreamConfig,
    locate::{join_index, join_key},
};

impl Found {
    pub(super) fn upstreams(&mut self, config: &Config) {
        self.unique_names(
            "upstreams",
            config.upstreams.iter().map(|u| u.name.as_str()),
        );
        for (i, upstream) in config.upstreams.iter().enumerate() {
            self.upstream(&join_index("upstreams", i), upstream);
        }
    }

    fn upstream(&mut self, path: &str, upstream: &UpstreamConfig) {
        let endpoints_path = join_key(path, "endpoints");
        if upstream.endpoints.is_empty() {
            let hint = "add at least one `ip:port` or `host:port` endpoint, e.g. `127.0.0.1:8081`";
            self.push(
                endpoints_path.clone(),
                None,
                "upstream has no endpoints",
                Some(hint.into()),
            );
        }
        let mut seen = HashSet::new();
        for (k, endpoint) in upstream.endpoints.iter().enumerate() {
            let endpoint_path = join_index(&endpoints_path, k);
            match parse_endpoint(endpoint.trim()) {
                Err(bad) => {
                    let (message, hint) = bad.explain(endpoint.trim());
                    self.push(endpoint_path, Some(endpoint.clone()), message, Some(hint));
                }
                Ok(parsed) if parsed.port == 0 => {
                    self.push(
                        endpoint_path,
                        Some(endpoint.clone()),
                        "endpoint port must not be 0",
                        Some("use the port the upstream listens on".into()),
                    );
                }
                Ok(parsed) if seen.contains(&parsed) => {
                    let hint = "remove the duplicate; round-robin would send it twice the traffic";
                    self.push(
                        endpoint_path,
                        Some(endpoint.clone()),
                        "endpoint is listed twice",
                        Some(hint.into()),
                    );
                }
                Ok(parsed) => {
                    seen.insert(parsed);
                }
            }
        }
        self.upstream_dns(&join_key(path, "dns"), upstream);
        let timeouts = join_key(path, "timeouts");
        self.nonzero_duration(join_key(&timeouts, "connect"), upstream.timeouts.connect);
        self.nonzero_duration(
            join_key(&timeouts, "upgrade_idle"),
            upstream.timeouts.upgrade_idle,
        );
        if let Some(d) = upstream.timeouts.response_header {
            self.nonzero_duration(join_key(&timeouts, "response_header"), d);
        }
        self.nonzero_duration(
            join_key(&timeouts, "tls_handshake"),
            upstream.timeouts.tls_handshake,
        );
        if let Some(tls) = &upstream.tls {
            self.upstream_tls(&join_key(path, "tls"), tls, upstream.protocol);
        }
        if let Some(b) = &upstream.breaker {
            self.breaker(&join_key(path, "breaker"), b);
        }
        if let Some(o) = &upstream.outlier {
            self.outlier(&join_key(path, "outlier"), o);
        }
        if let Some(c) = &upstream.concurrency {
            self.concurrency(&join_key(path, "concurrency"), c);
        }
        self.retry_budget(&join_key(path, "retry_budget"), &upstream.retry_budget);
        if let Some(h) = &upstream.health_check {
            self.health_check(&join_key(path, "health_check"), h);
        }
        self.http2(&join_key(path, "http2"), &upstream.http2);
        let pool_path = join_key(path, "pool");
        let pool = &upstream.pool;
        self.nonzero_count(
            join_key(&pool_path, "max_connections_per_endpoint"),
            pool.max_connections_per_endpoint,
            "max_connections_per_endpoint",
        );
        self.nonzero_duration(join_key(&pool_path, "idle_timeout"), pool.idle_timeout);
        if pool.max_idle_per_endpoint > pool.max_connections_per_endpoint {
            let hint = format!(
                "idle connections count towards max_connections_per_endpoint ({}); lower max_idle_per_endpoint to at most that",
                pool.max_connections_per_endpoint
            );
            let message = "max_idle_per_endpoint is greater than max_connections_per_endpoint";
            self.push(
                join_key(&pool_path, "max_idle_per_endpoint"),
                Some(pool.max_idle_per_endpoint.to_string()),
                message,
                Some(hint),
            );
        }
        if let Some(upgrades) = pool.max_upgrades_per_endpoint
            && upgrades > pool.max_connections_per_endpoint
        {
            let hint = format!(
                "each upgraded connection takes one of the endpoint's {} connection slots; lower max_upgrades_per_endpoint to at most that, or 0 to refuse upgrades",
                pool.max_connections_per_endpoint
            );
            self.push(
                join_key(&pool_path, "max_upgrades_per_endpoint"),
                Some(upgrades.to_string()),
                "max_upgrades_per_endpoint is greater than max_connections_per_endpoint",
                Some(hint),
            );
        }
        if let Some(d) = pool.max_lifetime {
            self.nonzero_duration(join_key(&pool_path, "max_lifetime"), d);
        }
        if pool.max_requests_per_connection == Some(0) {
            self.push(
                join_key(&pool_path, "max_requests_per_connection"),
                Some("0".into()),
                "max_requests_per_connection must be at least 1",
                Some(
                    "1 opens a new connection for every request; remove the key for no limit"
                        .into(),
                ),
            );
        }
        if let Some(d) = pool.tcp_keepalive.filter(|d| d.get().is_zero()) {
            let hint =
                "use a positive interval such as \"30s\", or `null` to disable keep-alive probes";
            self.push(
                join_key(&pool_path, "tcp_keepalive"),
                Some(d.to_string()),
                "tcp_keepalive must be greater than zero",
                Some(hint.into()),
            );
        }
    }

    /// `dns` durations are positive and `min_ttl <= max_ttl`; checked whatever the
    /// endpoints, so a block prepared before switching to names is already right.
    fn upstream_dns(&mut self, path: &str, upstream: &UpstreamConfig) {
        let dns = &upstream.dns;
        for (key, value) in [
            ("min_ttl", dns.min_ttl),
            ("max_ttl", dns.max_ttl),
            ("interval", dns.interval),
            ("resolve_timeout", dns.resolve_timeout),
        ] {
            self.nonzero_duration(join_key(path, key), value);
        }
        if dns.max_ttl < dns.min_ttl {
            let hint = format!(
                "max_ttl caps the TTL and min_ttl floors it; make max_ttl at least {}",
                dns.min_ttl
            );
            self.push(
                join_key(path, "max_ttl"),
                Some(dns.max_ttl.to_string()),
                "max_ttl is shorter than min_ttl",
                Some(hint),
            );
        }
    }

    /// A warning for an upstream phase timeout at or beyond the deadline of a route using
    /// it: for that route's requests it can never fire (the route deadline wins, and the
    /// client sees `deadline_exceeded`). A warning, not an error: a short-deadline route
    /// may share an upstream with routes whose deadlines are longer, and making it an
    /// error forced a duplicate upstream, with its own pools and breaker, per deadline.
    pub(super) fn route_timeouts(&mut self, config: &Config) {
        for (j, upstream) in config.upstreams.iter().enumerate() {
            // The TLS handshake timeout only matters when the upstream speaks TLS.
            let tls_handshake = upstream
                .tls
                .as_ref()
                .map(|_| upstream.timeouts.tls_handshake);
            let phases = [
                ("response_header", upstream.timeouts.response_header),
                ("tls_handshake", tls_handshake),
            ];
            for (key, timeout) in phases {
                let Some(timeout) = timeout else {
                    continue;
                };
                self.phase_within_routes(config, j, key, timeout);
            }
        }
    }

    fn phase_within_routes(
        &mut self,
        config: &Config,
        j: usize,
        key: &str,
        timeout: crate::units::HumanDuration,
    ) {
        let upstream = &config.upstreams[j];
        for (i, listener) in config.listeners.iter().enumerate() {
            for (k, route) in listener.routes.iter().enumerate() {
                if route.upstream != upstream.name || timeout <= route.timeout {
                    continue;
                }
                let route_path = join_key(
                    &join_index(&join_key(&join_index("listeners", i), "routes"), k),
                    "timeout",
                );
                let named = match &route.name {
                    Some(name) => format!("route `{name}` ({route_path})"),
                    None => format!("route {route_path}"),
                };
                let message = format!(
                    "{key} timeout {timeout} is longer than the {} deadline of {named}, which uses upstream `{}`",
                    route.timeout, upstream.name
                );
                let hint = format!(
                    "for that route's requests the route deadline fires first, so this timeout never applies to them (they fail as deadline_exceeded); fine if routes with longer deadlines share the upstream, else make it shorter than {} or raise the route timeout",
                    route.timeout
                );
                let path = join_key(&join_key(&join_index("upstreams", j), "timeouts"), key);
                self.push(path, Some(timeout.to_string()), message, Some(hint));
            }
        }
    }
}

/// An endpoint as written: an IP address or a host name, and a port. Host names compare
/// case-insensitively (they are lowercased here), so duplicates are found either way.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Endpoint {
    host: Host,
    port: u16,
}

#[derive(Debug, PartialEq, Eq, Hash)]
enum Host {
    Ip(IpAddr),
    Name(String),
}

/// Why an endpoint is not `ip:port` or `host:port`.
#[derive(Debug, PartialEq, Eq)]
enum BadEndpoint {
    Scheme,
    NoPort,
    Port,
    Name,
    Ipv6WithoutBrackets,
}

impl BadEndpoint {
    fn explain(&self, endpoint: &str) -> (&'static str, String) {
        let forms =
            "`ip:port` or `host:port`, e.g. `127.0.0.1:8081`, `[::1]:8081` or `api.internal:8081`";
        match self {
            Self::Scheme => (
                "endpoint has a scheme",
                format!("drop the scheme: endpoints are {forms}; set `tls` for HTTPS"),
            ),
            Self::NoPort => (
                "endpoint has no port",
                format!("add the port the upstream listens on: `{endpoint}:80`"),
            ),
            Self::Port => (
                "endpoint port is not a number from 1 to 65535",
                format!("endpoints are {forms}"),
            ),
            Self::Name => (
                "endpoint host is neither an IP address nor a valid host name",
                "a host name is dot-separated labels of letters, digits and `-` (1-63 characters each, not starting or ending with `-`, 253 in all, the last not all digits)"
                    .to_owned(),
            ),
            Self::Ipv6WithoutBrackets => (
                "IPv6 endpoint without brackets",
                format!("write IPv6 addresses in brackets: `[{}]:port`", endpoint),
            ),
        }
    }
}

/// Parses `ip:port`, `[ipv6]:port` or `host:port`.
fn parse_endpoint(text: &str) -> Result<Endpoint, BadEndpoint> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(Endpoint {
            host: Host::Ip(addr.ip()),
            port: addr.port(),
        });
    }
    if text.contains("://") {
        return Err(BadEndpoint::Scheme);
    }
    if text.parse::<IpAddr>().is_ok_and(|ip| ip.is_ipv6()) {
        return Err(BadEndpoint::Ipv6WithoutBrackets);
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(if is_host_name(text) || text.parse::<IpAddr>().is_ok() {
            BadEndpoint::NoPort
        } else {
            BadEndpoint::Name
        });
    };
    // Port 0 parses: it is reported separately, with its own hint.
    let port = port.parse::<u16>().map_err(|_| BadEndpoint::Port)?;
    if host.starts_with('[') || host.contains(':') {
        // `[...]:port` that is not a valid IPv6 literal, or several colons.
        return Err(BadEndpoint::Name);
    }
    if !is_host_name(host) {
        return Err(BadEndpoint::Name);
    }
    Ok(Endpoint {
        host: Host::Name(host.trim_end_matches('.').to_ascii_lowercase()),
        port,
    })
}

/// RFC 1123 host name: labels of ASCII letters, digits and `-`, 1–63 bytes, not starting
/// or ending with `-`; at most 253 bytes without the optional trailing dot; the last label
/// not all digits (so `1.2.3` is not taken for a name: resolvers read it as an address).
fn is_host_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() || host.len() > 253 {
        return false;
    }
    let labels_ok = host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    let last_numeric = host
        .rsplit('.')
        .next()
        .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()));
    labels_ok && !last_numeric
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_as_ip_or_host_name_with_a_port() {
        let name = |h: &str, port| Endpoint {
            host: Host::Name(h.into()),
            port,
        };
        assert_eq!(
            parse_endpoint("api.internal:8080"),
            Ok(name("api.internal", 8080))
        );
        assert_eq!(
            parse_endpoint("API.Internal.:80"),
            Ok(name("api.internal", 80))
        );
        assert_eq!(
            parse_endpoint("localhost:9000"),
            Ok(name("localhost", 9000))
        );
        assert_eq!(
            parse_endpoint("[::1]:80").map(|e| e.host),
            Ok(Host::Ip("::1".parse().unwrap()))
        );
        assert_eq!(
            parse_endpoint("10.0.0.1:80").map(|e| e.host),
            Ok(Host::Ip("10.0.0.1".parse().unwrap()))
        );
    }

    #[test]
    fn malformed_endpoints_say_what_is_wrong() {
        let cases = [
            ("http://api:80", BadEndpoint::Scheme),
            ("api.internal", BadEndpoint::NoPort),
            ("10.0.0.1", BadEndpoint::NoPort),
            ("api:http", BadEndpoint::Port),
            ("api:70000", BadEndpoint::Port),
            ("api:", BadEndpoint::Port),
            (":80", BadEndpoint::Name),
            ("bad_name:80", BadEndpoint::Name),
            ("-api:80", BadEndpoint::Name),
            ("a..b:80", BadEndpoint::Name),
            ("1.2.3:80", BadEndpoint::Name),
            ("[::1:80", BadEndpoint::Name),
            ("a:b:80", BadEndpoint::Name),
            ("::1", BadEndpoint::Ipv6WithoutBrackets),
        ];
        for (text, want) in cases {
            assert_eq!(parse_endpoint(text), Err(want), "{text}");
        }
        let long = format!("{}:80", "a".repeat(64));
        assert_eq!(parse_endpoint(&long), Err(BadEndpoint::Name));
    }
}
