//! Rules about listeners and their routes: limits, route references, match patterns,
//! middleware lists.

use std::collections::HashMap;

use super::Found;
use crate::{
    Config, ListenerConfig, MatchConfig, RouteConfig,
    locate::{join_index, join_key},
    suggest,
};

impl Found {
    pub(super) fn listeners(&mut self, config: &Config) {
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
        if let Some(r) = &route.retry {
            self.retry(&join_key(path, "retry"), r, route.timeout);
        }
        if let Some(h) = &route.hedge {
            self.hedge(&join_key(path, "hedge"), h, route.timeout);
        }
        self.nonzero_duration(join_key(path, "timeout"), route.timeout);
        if let Some(slo) = &route.slo {
            self.slo(&join_key(path, "slo"), slo, config);
        }
        let names: Vec<&str> = config.upstreams.iter().map(|u| u.name.as_str()).collect();
        if let Some(f) = &route.fallback {
            self.fallback(&join_key(path, "fallback"), f, &names, &route.upstream);
        }
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
}

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
