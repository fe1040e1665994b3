//! Shared by the score tests: a config template whose parts a test replaces, and helpers
//! to score YAML and find lines in it.

#![allow(dead_code)]

use seawall_score::Scored;

/// A loopback listener's extra lines that make it public and fix every public-listener rule.
pub const CLEAN_LISTENER: &str =
    "    public: true\n    header_read_timeout: 5s\n    max_connections: 5000\n";
/// Route lines that break no rule.
pub const CLEAN_ROUTE: &str = "        timeout: 5s\n";
/// Upstream lines that break no rule.
pub const CLEAN_UPSTREAM: &str = "    timeouts: { response_header: 2s }\n    upstream_keepalive: 75s\n    pool: { idle_timeout: 30s }\n";

/// A config with one listener (`internal`), one route (`api`) and one upstream (`app`);
/// each field is a block of lines inserted at its place. The default scores 100.
#[derive(Debug, Clone)]
pub struct Cfg {
    /// Top-level sections before `listeners`.
    pub top: String,
    /// The listener's address.
    pub listen: String,
    /// Lines of the listener, after `listen`.
    pub listener: String,
    /// Lines of the route, after `upstream: app`.
    pub route: String,
    /// The upstream's endpoint list.
    pub endpoints: String,
    /// Lines of the upstream, after `endpoints`.
    pub upstream: String,
    /// More upstreams.
    pub extra: String,
}

impl Default for Cfg {
    fn default() -> Self {
        Self {
            top: String::new(),
            listen: "127.0.0.1:8080".into(),
            listener: String::new(),
            route: CLEAN_ROUTE.into(),
            endpoints: "[127.0.0.1:3000]".into(),
            upstream: CLEAN_UPSTREAM.into(),
            extra: String::new(),
        }
    }
}

impl Cfg {
    /// The YAML text.
    pub fn yaml(&self) -> String {
        format!(
            "{}listeners:\n  - name: internal\n    listen: {}\n{}    routes:\n      - name: api\n        upstream: app\n{}upstreams:\n  - name: app\n    endpoints: {}\n{}{}",
            self.top,
            self.listen,
            self.listener,
            self.route,
            self.endpoints,
            self.upstream,
            self.extra
        )
    }
}

/// Scores `yaml`, which must be a valid config.
pub fn score(yaml: &str) -> Scored {
    seawall_score::score_file("test.yaml", yaml).unwrap_or_else(|d| panic!("{d}\n{yaml}"))
}

/// The 1-based line of the first line of `yaml` containing `needle`.
pub fn line_of(yaml: &str, needle: &str) -> usize {
    yaml.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("`{needle}` not in\n{yaml}"))
}
