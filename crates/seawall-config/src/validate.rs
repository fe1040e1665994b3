//! Semantic validation: the rules a well-typed config must still satisfy (references resolve,
//! names and addresses are unique, timeouts are consistent, limits make sense).
//!
//! It works on the typed [`Config`] so the runtime can run it too (e.g. before a hot reload);
//! each [`Problem`] names its key path, which [`crate::parse`] turns into a line and column.

use std::{
    collections::{HashMap, HashSet},
    fmt,
    net::SocketAddr,
};

use crate::{
    Config, ListenerConfig, MatchConfig, RouteConfig, UpstreamConfig,
    locate::{join_index, join_key},
    suggest,
    units::HumanDuration,
};

/// One semantic problem, located by key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Key path, e.g. `upstreams[1].timeouts.connect`.
    pub path: String,
    /// The offending value, rendered.
    pub value: Option<String>,
    /// What is wrong, lowercase, without a trailing period.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)?;
        if let Some(value) = &self.value {
            write!(f, " (value: {value})")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "; hint: {hint}")?;
        }
        Ok(())
    }
}

/// Every semantic problem of `config`; empty when it is valid.
pub fn validate(config: &Config) -> Vec<Problem> {
    let mut found = Found::default();
    found.listeners(config);
    found.upstreams(config);
    found.route_timeouts(config);
    found.addresses(config);
    found.admin(config);
    found.metrics(config);
    found.0
}

#[derive(Default)]
struct Found(Vec<Problem>);

impl Found {
    fn push(
        &mut self,
        path: String,
        value: Option<String>,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        self.0.push(Problem {
            path,
            value,
            message: message.into(),
            hint,
        });
    }

    fn nonzero_duration(&mut self, path: String, d: HumanDuration) {
        if d.get().is_zero() {
            let hint = "a zero timeout fails every request; use a positive duration such as \"5s\"";
            self.push(
                path,
                Some(d.to_string()),
                "timeout must be greater than zero",
                Some(hint.into()),
            );
        }
    }

    fn nonzero_count(&mut self, path: String, n: usize, what: &str) {
        if n == 0 {
            self.push(
                path,
                Some("0".into()),
                format!("{what} must be greater than zero"),
                Some("zero would refuse all traffic".into()),
            );
        }
    }

    fn unique_names<'a>(&mut self, section: &str, names: impl Iterator<Item = &'a str>) {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, name) in names.enumerate() {
            let path = join_key(&join_index(section, i), "name");
            if name.trim().is_empty() {
                self.push(
                    path,
                    Some(format!("{name:?}")),
                    "name must not be empty",
                    Some("names appear in logs and metrics".into()),
                );
            } else if let Some(first) = seen.get(name) {
                let hint = format!("already used by {section}[{first}]; names must be unique");
                self.push(
                    path,
                    Some(name.to_owned()),
                    format!("duplicate name `{name}`"),
                    Some(hint),
                );
            } else {
                seen.insert(name, i);
            }
        }
    }

    fn listeners(&mut self, config: &Config) {
        if config.listeners.is_empty() {
            let hint = "add a listener with a `name`, a `listen` address and `routes`";
            self.push(
                "listeners".into(),
                None,
                "no listeners are configured",
                Some(hint.into()),
            );
        }
        self.unique_names(
            "listeners",
            config.listeners.iter().map(|l| l.name.as_str()),
        );
        let mut route_names: HashMap<&str, String> = HashMap::new();
        for (i, listener) in config.listeners.iter().enumerate() {
            let path = join_index("listeners", i);
            self.listener_limits(&path, listener);
            if listener.routes.is_empty() {
                let hint = "add a route; without one every request is answered 404";
                self.push(
                    join_key(&path, "routes"),
                    None,
                    "listener has no routes",
                    Some(hint.into()),
                );
            }
            let mut matches: HashMap<(String, String), usize> = HashMap::new();
            for (j, route) in listener.routes.iter().enumerate() {
                let route_path = join_index(&join_key(&path, "routes"), j);
                self.route(&route_path, route, config);
                let key = match_key(&route.matcher);
                if let Some(first) = matches.get(&key) {
                    let hint = format!(
                        "routes[{first}] on this listener already matches it, so this route never gets a request"
                    );
                    let value = format!(
                        "host {} path_prefix {}",
                        route.matcher.host, route.matcher.path_prefix
                    );
                    self.push(
                        join_key(&route_path, "match"),
                        Some(value),
                        "duplicate route match",
                        Some(hint),
                    );
                } else {
                    matches.insert(key, j);
                }
                if let Some(name) = route.name.as_deref() {
                    let name_path = join_key(&route_path, "name");
                    if let Some(first) = route_names.get(name) {
                        let hint = format!(
                            "already used by {first}; route names label metrics and must be unique"
                        );
                        self.push(
                            name_path,
                            Some(name.to_owned()),
                            format!("duplicate route name `{name}`"),
                            Some(hint),
                        );
                    } else {
                        route_names.insert(name, route_path);
                    }
                }
            }
        }
    }

    fn listener_limits(&mut self, path: &str, listener: &ListenerConfig) {
        self.nonzero_duration(
            join_key(path, "header_read_timeout"),
            listener.header_read_timeout,
        );
        self.nonzero_duration(join_key(path, "idle_timeout"), listener.idle_timeout);
        self.nonzero_duration(
            join_key(path, "body_read_timeout"),
            listener.body_read_timeout,
        );
        self.nonzero_count(
            join_key(path, "max_connections"),
            listener.max_connections,
            "max_connections",
        );
        if listener.max_header_bytes.bytes() == 0 {
            let hint = "no request head fits in zero bytes; the default is \"16KiB\"";
            self.push(
                join_key(path, "max_header_bytes"),
                Some("0B".into()),
                "max_header_bytes must be greater than zero",
                Some(hint.into()),
            );
        }
    }

    fn route(&mut self, path: &str, route: &RouteConfig, config: &Config) {
        self.nonzero_duration(join_key(path, "timeout"), route.timeout);
        let names: Vec<&str> = config.upstreams.iter().map(|u| u.name.as_str()).collect();
        if !names.contains(&route.upstream.as_str()) {
            let hint = match suggest::closest(&route.upstream, names.iter().copied()) {
                Some(best) => format!("did you mean `{best}`?"),
                None if names.is_empty() => {
                    "no upstreams are defined; add one under `upstreams`".to_owned()
                }
                None => format!("defined upstreams: {}", suggest::quoted_list(&names)),
            };
            let message = format!("route refers to unknown upstream `{}`", route.upstream);
            self.push(
                join_key(path, "upstream"),
                Some(route.upstream.clone()),
                message,
                Some(hint),
            );
        }
        let match_path = join_key(path, "match");
        if !route.matcher.path_prefix.starts_with('/') {
            let prefix = &route.matcher.path_prefix;
            let hint = format!(
                "path prefixes are absolute; write `/{}`",
                prefix.trim_start_matches('/')
            );
            self.push(
                join_key(&match_path, "path_prefix"),
                Some(prefix.clone()),
                "path_prefix must start with `/`",
                Some(hint),
            );
        }
        if let Err(message) = check_host_pattern(&route.matcher.host) {
            let hint = "use `*` (any host), an exact host such as `api.example.com`, or a suffix wildcard such as `*.example.com` (no port)";
            self.push(
                join_key(&match_path, "host"),
                Some(route.matcher.host.clone()),
                message,
                Some(hint.into()),
            );
        }
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (k, middleware) in route.middleware.iter().enumerate() {
            let name = middleware.name();
            if let Some(first) = seen.get(name) {
                let hint = format!(
                    "already listed as middleware[{first}]; list each middleware once per route"
                );
                let message = format!("middleware `{name}` is listed twice");
                self.push(
                    join_index(&join_key(path, "middleware"), k),
                    Some(name.to_owned()),
                    message,
                    Some(hint),
                );
            } else {
                seen.insert(name, k);
            }
        }
    }

    fn upstreams(&mut self, config: &Config) {
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
    fn route_timeouts(&mut self, config: &Config) {
        for (j, upstream) in config.upstreams.iter().enumerate() {
            let Some(header) = upstream.timeouts.response_header else {
                continue;
            };
            for (i, listener) in config.listeners.iter().enumerate() {
                for (k, route) in listener.routes.iter().enumerate() {
                    if route.upstream != upstream.name || header <= route.timeout {
                        continue;
                    }
                    let route_path = join_key(
                        &join_index(&join_key(&join_index("listeners", i), "routes"), k),
                        "timeout",
                    );
                    let message = format!(
                        "response_header timeout {header} is longer than the {} deadline of route {route_path}, which uses upstream `{}`",
                        route.timeout, upstream.name
                    );
                    let hint = format!(
                        "the route deadline fires first, so this timeout never applies; make it shorter than {} or raise the route timeout",
                        route.timeout
                    );
                    let path = join_key(
                        &join_key(&join_index("upstreams", j), "timeouts"),
                        "response_header",
                    );
                    self.push(path, Some(header.to_string()), message, Some(hint));
                }
            }
        }
    }

    /// Two sockets bound to the same address fail at startup; catch it before.
    fn addresses(&mut self, config: &Config) {
        let mut bound: Vec<(String, SocketAddr)> = Vec::new();
        let listeners = config
            .listeners
            .iter()
            .enumerate()
            .map(|(i, l)| (join_key(&join_index("listeners", i), "listen"), l.listen));
        let others = [
            ("admin.listen".to_owned(), Some(config.admin.listen)),
            (
                "sim.listen".to_owned(),
                config.sim.as_ref().map(|s| s.listen),
            ),
        ];
        let all = listeners.chain(others.into_iter().filter_map(|(p, a)| Some((p, a?))));
        for (path, addr) in all {
            // Port 0 asks the OS for a free port, so it never collides (tests rely on this).
            if addr.port() != 0 {
                if let Some((first, _)) = bound.iter().find(|(_, other)| conflicts(*other, addr)) {
                    let hint = format!("already used by {first}; give each socket its own port");
                    self.push(
                        path.clone(),
                        Some(addr.to_string()),
                        "listen address is already in use by this config",
                        Some(hint),
                    );
                }
            }
            bound.push((path, addr));
        }
    }

    fn admin(&mut self, config: &Config) {
        let admin = &config.admin;
        let token_env = admin.token_env.trim();
        if !admin.listen.ip().is_loopback() && token_env.is_empty() {
            self.push(
                "admin.listen".into(),
                Some(admin.listen.to_string()),
                "admin API listens on a non-loopback address without a token",
                Some(ADMIN_TOKEN_HINT.into()),
            );
        }
        for (path, name) in [
            ("admin.token_env", token_env),
            ("debug.token_env", config.debug.token_env.trim()),
        ] {
            if !name.is_empty() && !is_env_var_name(name) {
                let hint = "use letters, digits and `_`, not starting with a digit, e.g. `SEAWALL_ADMIN_TOKEN`";
                self.push(
                    path.into(),
                    Some(name.to_owned()),
                    "not a valid environment variable name",
                    Some(hint.into()),
                );
            }
        }
    }

    fn metrics(&mut self, config: &Config) {
        let path = "metrics.request_duration_buckets";
        let buckets = &config.metrics.request_duration_buckets;
        if buckets.is_empty() {
            self.push(
                path.into(),
                None,
                "histogram needs at least one bucket",
                Some("remove the key to use the default buckets".into()),
            );
        }
        for (i, bucket) in buckets.iter().enumerate() {
            if !bucket.is_finite() || *bucket <= 0.0 {
                let hint =
                    "buckets are upper bounds in seconds; use positive numbers such as 0.005";
                self.push(
                    join_index(path, i),
                    Some(bucket.to_string()),
                    "bucket must be a positive number of seconds",
                    Some(hint.into()),
                );
            } else if let Some(previous) = i
                .checked_sub(1)
                .and_then(|p| buckets.get(p))
                .filter(|p| *p >= bucket)
            {
                let hint = "list buckets in strictly increasing order, each once";
                let message =
                    format!("bucket {bucket} is not greater than the previous bucket {previous}");
                self.push(
                    join_index(path, i),
                    Some(bucket.to_string()),
                    message,
                    Some(hint.into()),
                );
            }
        }
    }
}

/// The hint for an admin API reachable from other hosts.
pub(crate) const ADMIN_TOKEN_HINT: &str = "a non-loopback admin API must be token-protected: set `admin.token_env` to the name of an environment variable and put the token in it (the gateway refuses to start when it is empty), or listen on 127.0.0.1";

/// Hosts compare case-insensitively and `/api` matches the same requests as `/api/`.
fn match_key(matcher: &MatchConfig) -> (String, String) {
    // Same normalisation as the gateway's router: one trailing slash is ignored.
    let prefix = matcher.path_prefix.as_str();
    let prefix = if prefix == "/" {
        prefix
    } else {
        prefix.strip_suffix('/').unwrap_or(prefix)
    };
    (matcher.host.to_ascii_lowercase(), prefix.to_owned())
}

fn check_host_pattern(host: &str) -> Result<(), String> {
    if host == "*" {
        return Ok(());
    }
    let exact = host.strip_prefix("*.").unwrap_or(host);
    if exact.contains('*') {
        return Err(format!(
            "host pattern `{host}` has a wildcard that is not a leading `*.`"
        ));
    }
    if host.contains(':') {
        return Err(format!(
            "host pattern `{host}` contains a port or is an IPv6 literal"
        ));
    }
    let label_ok = |l: &str| {
        !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if exact.is_empty() || !exact.split('.').all(label_ok) {
        return Err(format!("`{host}` is not a valid host pattern"));
    }
    Ok(())
}

fn is_env_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether binding `a` and `b` together would fail: same port and same IP, or one of them is
/// the unspecified address of the same family (`0.0.0.0` covers every IPv4 address).
fn conflicts(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port()
        && (a.ip() == b.ip()
            || (a.is_ipv4() == b.is_ipv4() && (a.ip().is_unspecified() || b.ip().is_unspecified())))
}
