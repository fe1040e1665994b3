//! Rules about fault rules, wherever they are (a route's `fault` layer, an upstream's
//! `faults`, a runtime fault put through the admin API): names unique non-empty tokens; a
//! percentage from 0 to 100; an action (`delay`, `abort` and/or `throttle`); a delay with
//! exactly one kind (`min` ≤ `max`; a positive `mean`); an abort with `status` (200–599)
//! and/or `grpc_status` (0–16), or one flag; methods and header names that parse; `first`
//! and `max_active` positive; only the keys of the rule's place ([`Place`]): `endpoint`
//! (one of the upstream's), `connect_error`, `upstream_reset`, `blackhole` upstream-side,
//! `throttle`, `reset`, `close` client-facing. The gateway builds from any rule that
//! passes.

use super::{Found, Problem};
use crate::{
    AbortConfig, Config, DelayConfig, FaultConfig, FaultRule, MiddlewareConfig, RuntimeFault,
    locate::{join_index, join_key},
};

/// Where a rule acts, which decides the keys it may use.
#[derive(Clone, Copy)]
pub(crate) enum Place<'a> {
    /// A route's `fault` layer, or a runtime fault on a route; `headers` when the layer
    /// allows header-triggered faults (a rule may then have no action of its own).
    Route { headers: bool },
    /// An upstream's `faults`, or a runtime fault on an upstream, with its endpoints.
    Upstream { endpoints: &'a [String] },
}

/// Every problem of a runtime fault (`PUT /faults/{name}`) against the running `config`:
/// exactly one of `route` or `upstream`, naming one that exists, and the rule checked as
/// a rule of that place. Paths are the body's keys (`percentage`, `abort.status`).
pub fn runtime_fault(config: &Config, fault: &RuntimeFault) -> Vec<Problem> {
    let mut found = Found::default();
    match (&fault.route, &fault.upstream) {
        (Some(route), None) => {
            if route_names(config).any(|n| n == *route) {
                found.fault_rule("", &fault.rule, Place::Route { headers: false });
            } else {
                found.push(
                    "route".into(),
                    Some(route.clone()),
                    "no route has this name",
                    Some(format!(
                        "routes: {}",
                        route_names(config).collect::<Vec<_>>().join(", ")
                    )),
                );
            }
        }
        (None, Some(upstream)) => match config.upstreams.iter().find(|u| u.name == *upstream) {
            Some(u) => found.fault_rule(
                "",
                &fault.rule,
                Place::Upstream {
                    endpoints: &u.endpoints,
                },
            ),
            None => found.push(
                "upstream".into(),
                Some(upstream.clone()),
                "no upstream has this name",
                Some(format!(
                    "upstreams: {}",
                    config
                        .upstreams
                        .iter()
                        .map(|u| u.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            ),
        },
        _ => found.push(
            String::new(),
            None,
            "a runtime fault needs exactly one of `route` or `upstream`",
            Some("e.g. {\"upstream\": \"api\", \"abort\": {\"status\": 503}}".into()),
        ),
    }
    if fault.rule.name.is_empty() {
        found.push("name".into(), None, "name must not be empty", None);
    }
    if let Some(ttl) = fault.ttl
        && ttl.get().is_zero()
    {
        found.push(
            "ttl".into(),
            Some(ttl.to_string()),
            "ttl must be greater than zero",
            Some("remove it to keep the fault until it is deleted".into()),
        );
    }
    found.0
}

/// Every route's name as the gateway names it (`name`, else `<listener>/<index>`).
pub fn route_names(config: &Config) -> impl Iterator<Item = String> + '_ {
    config.listeners.iter().flat_map(|l| {
        l.routes
            .iter()
            .enumerate()
            .map(|(i, r)| r.name.clone().unwrap_or_else(|| format!("{}/{i}", l.name)))
    })
}

impl Found {
    pub(super) fn faults(&mut self, config: &Config) {
        for (i, upstream) in config.upstreams.iter().enumerate() {
            let rules = join_key(&join_index("upstreams", i), "faults");
            self.unique_names(&rules, upstream.faults.iter().map(|r| r.name.as_str()));
            let place = Place::Upstream {
                endpoints: &upstream.endpoints,
            };
            for (j, rule) in upstream.faults.iter().enumerate() {
                self.fault_rule(&join_index(&rules, j), rule, place);
            }
        }
        for (i, listener) in config.listeners.iter().enumerate() {
            for (j, route) in listener.routes.iter().enumerate() {
                for (k, layer) in route.middleware.iter().enumerate() {
                    if let MiddlewareConfig::Fault(f) = layer {
                        let route_path =
                            join_index(&join_key(&join_index("listeners", i), "routes"), j);
                        let path = join_key(
                            &join_index(&join_key(&route_path, "middleware"), k),
                            "fault",
                        );
                        self.fault_layer(&path, f);
                    }
                }
            }
        }
    }

    fn fault_layer(&mut self, path: &str, f: &FaultConfig) {
        let rules = join_key(path, "rules");
        if f.rules.is_empty() {
            self.push(
                rules.clone(),
                None,
                "fault has no rules",
                Some("add a rule such as {name: outage, abort: {status: 503}}".into()),
            );
        }
        self.unique_names(&rules, f.rules.iter().map(|r| r.name.as_str()));
        let place = Place::Route {
            headers: f.allow_header_faults,
        };
        for (i, rule) in f.rules.iter().enumerate() {
            self.fault_rule(&join_index(&rules, i), rule, place);
        }
    }

    /// Checks one rule at `at`, as a rule of `place`.
    pub(crate) fn fault_rule(&mut self, at: &str, rule: &FaultRule, place: Place<'_>) {
        let token = |c: char| c.is_ascii_alphanumeric() || "_-.".contains(c);
        if !rule.name.is_empty() && !rule.name.chars().all(token) {
            // The name is sent in the `seawall-fault` header and is a metric label.
            self.push(
                join_key(at, "name"),
                Some(rule.name.clone()),
                "fault names may only use letters, digits, `_`, `-` and `.`",
                Some("e.g. `checkout_outage`".into()),
            );
        }
        if !(0.0..=100.0).contains(&rule.percentage) {
            self.push(
                join_key(at, "percentage"),
                Some(rule.percentage.to_string()),
                "percentage must be between 0 and 100",
                Some("it is a percentage of matching requests: 100 faults every one, 0.5 one in two hundred".into()),
            );
        }
        let header_only = matches!(place, Place::Route { headers: true });
        if rule.delay.is_none() && rule.abort.is_none() && rule.throttle.is_none() && !header_only {
            self.push(
                at.to_owned(),
                Some(rule.name.clone()),
                "fault rule has no action",
                Some("give `delay: {fixed: 200ms}`, `abort: {status: 503}`, or both".into()),
            );
        }
        if let Some(delay) = &rule.delay {
            self.fault_delay(&join_key(at, "delay"), delay);
        }
        if let Some(abort) = &rule.abort {
            self.fault_abort(&join_key(at, "abort"), abort, place);
        }
        self.fault_place(at, rule, place);
        let matches = join_key(at, "match");
        for (i, m) in rule.matches.methods.iter().enumerate() {
            if !is_token(m) {
                self.push(
                    join_index(&join_key(&matches, "methods"), i),
                    Some(m.clone()),
                    "not an HTTP method",
                    Some("e.g. GET or POST".into()),
                );
            }
        }
        if let Some(p) = &rule.matches.path_prefix
            && !p.starts_with('/')
        {
            self.push(
                join_key(&matches, "path_prefix"),
                Some(p.clone()),
                "path prefix must start with `/`",
                None,
            );
        }
        for (name, value) in &rule.matches.headers {
            let at = join_key(&join_key(&matches, "headers"), name);
            if !is_token(name) {
                self.push(at, Some(name.clone()), "not a valid header name", None);
            } else if !value
                .bytes()
                .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
            {
                self.push(at, Some(value.clone()), "not a valid header value", None);
            }
        }
        if rule.first == Some(0) {
            self.push(
                join_key(at, "first"),
                Some("0".into()),
                "first must be at least 1",
                Some("remove the key to fault every selected request".into()),
            );
        }
        if rule.max_active == Some(0) {
            self.push(
                join_key(at, "max_active"),
                Some("0".into()),
                "max_active must be at least 1",
                Some("remove the key for no cap".into()),
            );
        }
    }

    /// The keys that only one place allows.
    fn fault_place(&mut self, at: &str, rule: &FaultRule, place: Place<'_>) {
        match place {
            Place::Route { .. } => {
                if let Some(e) = &rule.endpoint {
                    self.push(
                        join_key(at, "endpoint"),
                        Some(e.clone()),
                        "`endpoint` only applies to upstream-side faults",
                        Some("move the rule to the upstream's `faults`".into()),
                    );
                }
            }
            Place::Upstream { endpoints } => {
                if let Some(e) = &rule.endpoint
                    && !endpoints.iter().any(|x| x.trim() == e.trim())
                {
                    self.push(
                        join_key(at, "endpoint"),
                        Some(e.clone()),
                        "not one of the upstream's endpoints",
                        Some(format!("endpoints: {}", endpoints.join(", "))),
                    );
                }
                if rule.throttle.is_some() {
                    self.push(
                        join_key(at, "throttle"),
                        None,
                        "`throttle` only applies to client-facing faults (a `fault` layer)",
                        Some("upstream-side, use a `delay` before the response head".into()),
                    );
                }
            }
        }
        if let Some(t) = &rule.throttle
            && t.bytes_per_second == 0
        {
            self.push(
                join_key(&join_key(at, "throttle"), "bytes_per_second"),
                Some("0".into()),
                "bytes_per_second must be at least 1",
                Some("e.g. 102400 (100 KiB/s)".into()),
            );
        }
    }

    fn fault_delay(&mut self, at: &str, delay: &DelayConfig) {
        let kinds = usize::from(delay.fixed.is_some())
            + usize::from(delay.uniform.is_some())
            + usize::from(delay.normal.is_some())
            + usize::from(delay.lognormal.is_some());
        if kinds != 1 {
            self.push(
                at.to_owned(),
                None,
                "a delay needs exactly one of `fixed`, `uniform`, `normal` or `lognormal`",
                Some("e.g. {fixed: 200ms} or {uniform: {min: 100ms, max: 300ms}}".into()),
            );
        }
        if let Some(u) = &delay.uniform
            && u.min > u.max
        {
            self.push(
                join_key(&join_key(at, "uniform"), "min"),
                Some(u.min.to_string()),
                format!("min is greater than max ({})", u.max),
                None,
            );
        }
        if let Some(l) = &delay.lognormal
            && l.mean.get().is_zero()
        {
            self.push(
                join_key(&join_key(at, "lognormal"), "mean"),
                Some(l.mean.to_string()),
                "a log-normal delay needs a mean greater than zero",
                Some("e.g. {mean: 100ms, stddev: 50ms}".into()),
            );
        }
    }

    fn fault_abort(&mut self, at: &str, abort: &AbortConfig, place: Place<'_>) {
        let answers = abort.status.is_some() || abort.grpc_status.is_some();
        let flags = [
            abort.reset,
            abort.close,
            abort.connect_error,
            abort.upstream_reset,
            abort.blackhole,
        ];
        let kinds = usize::from(answers) + flags.iter().filter(|f| **f).count();
        let (allowed, others) = match place {
            Place::Route { .. } => (
                "`status` and/or `grpc_status`, or `reset: true`, or `close: true`",
                [
                    ("connect_error", abort.connect_error),
                    ("upstream_reset", abort.upstream_reset),
                    ("blackhole", abort.blackhole),
                ],
            ),
            Place::Upstream { .. } => (
                "`status` and/or `grpc_status`, or `connect_error: true`, or `upstream_reset: true`, or `blackhole: true`",
                [("reset", abort.reset), ("close", abort.close), ("", false)],
            ),
        };
        if kinds != 1 {
            self.push(
                at.to_owned(),
                None,
                format!("an abort needs {allowed}"),
                Some("e.g. {status: 503}".into()),
            );
        }
        for (key, set) in others {
            if set {
                let hint = match place {
                    Place::Route { .. } => {
                        "it is an upstream-side fault: put the rule in the upstream's `faults`"
                    }
                    Place::Upstream { .. } => "upstream-side, use `upstream_reset: true`",
                };
                self.push(
                    join_key(at, key),
                    Some("true".into()),
                    format!("`{key}` does not apply here"),
                    Some(hint.into()),
                );
            }
        }
        if let Some(status) = abort.status
            && !(200..=599).contains(&status)
        {
            self.push(
                join_key(at, "status"),
                Some(status.to_string()),
                "status must be between 200 and 599",
                Some("e.g. 503".into()),
            );
        }
        if let Some(code) = abort.grpc_status
            && code > 16
        {
            self.push(
                join_key(at, "grpc_status"),
                Some(code.to_string()),
                "grpc_status must be a gRPC status code from 0 to 16",
                Some("e.g. 14 (UNAVAILABLE)".into()),
            );
        }
    }
}

/// An RFC 9110 token (methods and header names are tokens).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
