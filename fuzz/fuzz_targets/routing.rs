//! Routing on arbitrary requests: `request_authority` (URI authority vs `Host`),
//! `routing_host` and `Router::find` over a fixed route table never panic, and `find`
//! agrees with a plain reference (the most specific host pattern, then the longest
//! prefix on a segment boundary).
//!
//! Input: the request target on the first line, then one `Host` value per line.
#![no_main]

use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Uri, Version, header};
use libfuzzer_sys::fuzz_target;
use seawall_gateway::routing::{HostPattern, Router, request_authority, routing_host};

/// (host pattern, path prefix); a route's value is its index here.
const ROUTES: [(&str, &str); 7] = [
    ("api.example.com", "/"),
    ("api.example.com", "/v1"),
    ("api.example.com", "/v1/admin/"),
    ("*.example.com", "/"),
    ("*.a.example.com", "/static"),
    ("*", "/health"),
    ("other.test", "/"),
];

fn router() -> Router<usize> {
    let entries = ROUTES
        .iter()
        .enumerate()
        .map(|(i, (host, prefix))| (HostPattern::parse(host), prefix.to_string(), Arc::new(i)))
        .collect();
    Router::new(entries)
}

/// The reference matcher, written for clarity rather than speed.
fn expected(host: &str, path: &str) -> Option<usize> {
    let host = host.to_ascii_lowercase();
    let host_rank = |pattern: &str| -> Option<(u8, usize)> {
        if pattern == "*" {
            Some((0, 0))
        } else if let Some(parent) = pattern.strip_prefix('*') {
            (host.ends_with(parent) && host.len() > parent.len()).then_some((1, parent.len()))
        } else {
            (host == pattern).then_some((2, pattern.len()))
        }
    };
    let prefix_ok = |prefix: &str| {
        let p = prefix.trim_end_matches('/');
        prefix == "/"
            || path == p
            || path.starts_with(&format!("{p}/"))
            || path.starts_with(&format!("{p}?"))
    };
    ROUTES
        .iter()
        .enumerate()
        .filter(|(_, (_, prefix))| prefix_ok(prefix))
        .filter_map(|(i, (pattern, prefix))| host_rank(pattern).map(|r| (r, prefix.len(), i)))
        .max_by_key(|&(rank, len, i)| (rank, len, std::cmp::Reverse(i)))
        .map(|(_, _, i)| i)
}

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|&b| b == b'\n');
    let Some(Ok(uri)) = lines.next().map(Uri::try_from) else {
        return;
    };
    let mut headers = HeaderMap::new();
    for line in lines {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            headers.append(header::HOST, v);
        }
    }
    let router = router();
    for version in [Version::HTTP_10, Version::HTTP_11, Version::HTTP_2] {
        let Ok(authority) = request_authority(version, &uri, &headers) else {
            continue;
        };
        // The authority is the URI's, else the one Host header.
        let from_uri = uri.authority().map(|a| a.as_str());
        let from_host = headers.get(header::HOST).map(|h| h.as_bytes());
        assert!(
            from_uri == Some(authority)
                || (from_uri.is_none() && from_host.unwrap_or(b"") == authority.as_bytes()),
            "authority {authority:?} is neither the URI's nor the Host header"
        );
        assert!(
            headers.get_all(header::HOST).iter().count() <= 1,
            "accepted a request with more than one Host"
        );
        let host = routing_host(authority);
        assert!(
            authority.contains(host),
            "{host:?} is not part of {authority:?}"
        );
        let path = uri.path();
        let found = router.find(host, path).map(|r| **r);
        assert_eq!(found, expected(host, path), "host {host:?} path {path:?}");
    }
});
