//! Rules about upstreams: endpoints, pool limits, and timeouts relative to the routes that
//! use them.

use std::{collections::HashSet, net::SocketAddr};

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
            let hint = "add at least one `ip:port` endpoint, e.g. `127.0.0.1:8081`";
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
            match endpoint.trim().parse::<SocketAddr>() {
                Err(_) => {
                    let hint = if endpoint.contains("://") {
                        "drop the scheme: endpoints are `ip:port`, e.g. `127.0.0.1:8081`".to_owned()
                    } else {
                        "only `ip:port` endpoints are supported for now (no host names or DNS), e.g. `127.0.0.1:8081` or `[::1]:8081`".to_owned()
                    };
                    self.push(
                        endpoint_path,
                        Some(endpoint.clone()),
                        "endpoint is not an `ip:port` address",
                        Some(hint),
                    );
                }
                Ok(addr) if addr.port() == 0 => {
                    self.push(
                        endpoint_path,
                        Some(endpoint.clone()),
                        "endpoint port must not be 0",
                        Some("use the port the upstream listens on".into()),
                    );
                }
                Ok(addr) if !seen.insert(addr) => {
                    let hint = "remove the duplicate; round-robin would send it twice the traffic";
                    self.push(
                        endpoint_path,
                        Some(endpoint.clone()),
                        "endpoint is listed twice",
                        Some(hint.into()),
                    );
                }
                Ok(_) => {}
            }
        }
        let timeouts = join_key(path, "timeouts");
        self.nonzero_duration(join_key(&timeouts, "connect"), upstream.timeouts.connect);
        if let Some(d) = upstream.timeouts.response_header {
            self.nonzero_duration(join_key(&timeouts, "response_header"), d);
        }
        self.nonzero_duration(
            join_key(&timeouts, "tls_handshake"),
            upstream.timeouts.tls_handshake,
        );
        if let Some(tls) = &upstream.tls {
            self.upstream_tls(&join_key(path, "tls"), tls);
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

    /// An upstream phase timeout at or beyond the deadline of a route using it can never fire:
    /// the route deadline always wins, and the error the client sees is then the wrong one.
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
                let message = format!(
                    "{key} timeout {timeout} is longer than the {} deadline of route {route_path}, which uses upstream `{}`",
                    route.timeout, upstream.name
                );
                let hint = format!(
                    "the route deadline fires first, so this timeout never applies; make it shorter than {} or raise the route timeout",
                    route.timeout
                );
                let path = join_key(&join_key(&join_index("upstreams", j), "timeouts"), key);
                self.push(path, Some(timeout.to_string()), message, Some(hint));
            }
        }
    }
}
