//! Route selection: host (exact, `*.suffix` or `*`) then the longest path prefix.
//!
//! Invariant: a request that matches no route gets 404 from the gateway. The upstream is
//! always one named in config, never the host a client wrote in an absolute-form target,
//! so the gateway cannot be used as an open proxy.

use std::sync::Arc;

use crate::runtime::Route;

/// How a route's host pattern matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// `*`: any host.
    Any,
    /// `api.example.com`: this host only (case-insensitive).
    Exact(String),
    /// `*.example.com`: any subdomain of `example.com` (not `example.com` itself).
    Suffix(String),
}

impl HostPattern {
    /// Parses a validated pattern from config.
    pub fn parse(pattern: &str) -> Self {
        let p = pattern.trim().to_ascii_lowercase();
        if p == "*" {
            HostPattern::Any
        } else if let Some(rest) = p.strip_prefix("*.") {
            HostPattern::Suffix(format!(".{rest}"))
        } else {
            HostPattern::Exact(p)
        }
    }

    fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Any => true,
            HostPattern::Exact(h) => host.eq_ignore_ascii_case(h),
            HostPattern::Suffix(s) => {
                host.len() > s.len()
                    && host.as_bytes()[host.len() - s.len()..].eq_ignore_ascii_case(s.as_bytes())
            }
        }
    }

    /// Exact hosts beat suffixes, longer suffixes beat shorter ones, `*` comes last.
    fn rank(&self) -> (u8, usize) {
        match self {
            HostPattern::Exact(h) => (2, h.len()),
            HostPattern::Suffix(s) => (1, s.len()),
            HostPattern::Any => (0, 0),
        }
    }
}

/// One listener's routes, ordered so that the first match is the best match.
pub struct Router {
    entries: Vec<(HostPattern, String, Arc<Route>)>,
}

impl Router {
    /// Orders routes by host specificity, then by prefix length (longest first).
    pub fn new(routes: Vec<(HostPattern, String, Arc<Route>)>) -> Self {
        let mut entries = routes;
        entries.sort_by(|a, b| b.0.rank().cmp(&a.0.rank()).then(b.1.len().cmp(&a.1.len())));
        Self { entries }
    }

    /// The best route for `host` (without port) and `path`, if any.
    pub fn find(&self, host: &str, path: &str) -> Option<&Arc<Route>> {
        self.entries
            .iter()
            .find(|(h, prefix, _)| h.matches(host) && prefix_matches(prefix, path))
            .map(|(_, _, r)| r)
    }

    /// Every route, in match order.
    pub fn routes(&self) -> impl Iterator<Item = &Arc<Route>> {
        self.entries.iter().map(|(_, _, r)| r)
    }
}

/// Prefixes match on segment boundaries: `/api` takes `/api` and `/api/x`, not `/apix`.
fn prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'),
        None => false,
    }
}

/// The host a request is for, without port: the URI authority (absolute-form and HTTP/2)
/// or else the `Host` header.
pub fn request_host<'a>(uri: &'a http::Uri, headers: &'a http::HeaderMap) -> &'a str {
    let raw = uri
        .host()
        .or_else(|| {
            headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
        })
        .unwrap_or("");
    strip_port(raw)
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        // IPv6 literal: keep the brackets' content only.
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_matches_whole_segments_only() {
        assert!(prefix_matches("/api", "/api"));
        assert!(prefix_matches("/api", "/api/users"));
        assert!(prefix_matches("/api/", "/api/users"));
        assert!(!prefix_matches("/api", "/apix"));
        assert!(prefix_matches("/", "/anything"));
    }

    #[test]
    fn host_patterns() {
        assert!(HostPattern::parse("*").matches("x.y"));
        assert!(HostPattern::parse("API.example.com").matches("api.EXAMPLE.com"));
        assert!(!HostPattern::parse("api.example.com").matches("www.example.com"));
        let s = HostPattern::parse("*.example.com");
        assert!(s.matches("a.example.com"));
        assert!(s.matches("a.b.example.com"));
        assert!(!s.matches("example.com"));
        assert!(!s.matches("badexample.com"));
    }

    #[test]
    fn ports_are_stripped_from_hosts() {
        assert_eq!(strip_port("example.com:8080"), "example.com");
        assert_eq!(strip_port("example.com"), "example.com");
        assert_eq!(strip_port("[::1]:80"), "::1");
    }
}
