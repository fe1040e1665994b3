//! Rules about `fault` layers: at least one rule; names unique non-empty tokens; a
//! percentage from 0 to 100; an action (`delay` and/or `abort`); a delay with exactly one
//! of `fixed` or `uniform` (`min` ≤ `max`); an abort with `status` (200–599) and/or
//! `grpc_status` (0–16), or `reset`, or `close`; methods and header names that parse;
//! `first` and `max_active` positive. The gateway's layer builds from any config that
//! passes.

use super::Found;
use crate::{
    AbortConfig, Config, DelayConfig, FaultConfig, FaultRule, MiddlewareConfig,
    locate::{join_index, join_key},
};

impl Found {
    pub(super) fn faults(&mut self, config: &Config) {
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
        for (i, rule) in f.rules.iter().enumerate() {
            self.fault_rule(&join_index(&rules, i), rule);
        }
    }

    /// Checks one rule at `at`; also used for rules from other places (upstream-side faults
    /// and runtime faults, later).
    pub(crate) fn fault_rule(&mut self, at: &str, rule: &FaultRule) {
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
        if rule.delay.is_none() && rule.abort.is_none() {
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
            self.fault_abort(&join_key(at, "abort"), abort);
        }
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

    fn fault_delay(&mut self, at: &str, delay: &DelayConfig) {
        match (&delay.fixed, &delay.uniform) {
            (Some(_), Some(_)) | (None, None) => self.push(
                at.to_owned(),
                None,
                "a delay needs exactly one of `fixed` or `uniform`",
                Some("e.g. {fixed: 200ms} or {uniform: {min: 100ms, max: 300ms}}".into()),
            ),
            (None, Some(u)) if u.min > u.max => self.push(
                join_key(&join_key(at, "uniform"), "min"),
                Some(u.min.to_string()),
                format!("min is greater than max ({})", u.max),
                None,
            ),
            _ => {}
        }
    }

    fn fault_abort(&mut self, at: &str, abort: &AbortConfig) {
        let answers = abort.status.is_some() || abort.grpc_status.is_some();
        let kinds = usize::from(answers) + usize::from(abort.reset) + usize::from(abort.close);
        if kinds != 1 {
            self.push(
                at.to_owned(),
                None,
                "an abort needs `status` and/or `grpc_status`, or `reset: true`, or `close: true`",
                Some("e.g. {status: 503}".into()),
            );
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
