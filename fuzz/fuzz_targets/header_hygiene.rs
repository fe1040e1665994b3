//! Header hygiene on arbitrary header maps: `strip_hop_by_hop`,
//! `prepare_client_response` and `prepare_upstream_request` never panic; afterwards no
//! hop-by-hop header and no header that `Connection` named remains, `Host` and
//! `Content-Length` (on requests) are kept as they were, other headers are untouched, and
//! the upstream request is origin-form HTTP/1.1 with exactly the gateway's own
//! forwarding headers.
//!
//! Input: the request target on the first line, then `name: value` lines.
#![no_main]

use std::{net::SocketAddr, time::Duration};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Uri, Version, header};
use http_body_util::{BodyExt, Empty};
use libfuzzer_sys::fuzz_target;
use seawall_gateway::forwarding::{
    prepare_client_response, prepare_upstream_request, strip_hop_by_hop,
};

const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
];

/// Names `Connection` may not remove.
const KEPT: [&str; 7] = [
    "host",
    "content-length",
    "x-request-id",
    "x-forwarded-for",
    "x-forwarded-proto",
    "seawall-timeout-ms",
    "grpc-timeout",
];

/// The names a message's `Connection` headers list (as tokens, lowercased).
fn listed(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .filter_map(|t| HeaderName::from_bytes(t.trim_ascii()).ok())
        .filter(|n| !KEPT.contains(&n.as_str()) && n != "close")
        .collect()
}

/// Whether stripping must remove `name` from a message with these headers.
fn must_go(name: &HeaderName, listed: &[HeaderName]) -> bool {
    HOP_BY_HOP.contains(&name.as_str()) || listed.contains(name)
}

/// Every header of `before` that must survive is in `after` with the same values, and
/// nothing of `must_go` is left.
fn check_stripped(before: &HeaderMap, after: &HeaderMap, ignore: &[&str]) {
    let listed = listed(before);
    for name in after.keys() {
        if ignore.contains(&name.as_str()) {
            continue;
        }
        assert!(!must_go(name, &listed), "{name} survived stripping");
    }
    for name in before.keys() {
        if must_go(name, &listed) || ignore.contains(&name.as_str()) {
            continue;
        }
        let a: Vec<_> = before.get_all(name).iter().collect();
        let b: Vec<_> = after.get_all(name).iter().collect();
        assert_eq!(a, b, "{name} changed");
    }
}

fn parse(data: &[u8]) -> Option<(Uri, HeaderMap)> {
    let mut lines = data.split(|&b| b == b'\n');
    let uri = Uri::try_from(lines.next()?).ok()?;
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    Some((uri, headers))
}

fuzz_target!(|data: &[u8]| {
    let Some((uri, headers)) = parse(data) else {
        return;
    };

    let mut stripped = headers.clone();
    strip_hop_by_hop(&mut stripped);
    check_stripped(&headers, &stripped, &[]);

    let mut response = headers.clone();
    prepare_client_response(&mut response);
    if headers.contains_key(header::TRANSFER_ENCODING) {
        assert!(!response.contains_key(header::CONTENT_LENGTH));
    }
    check_stripped(&headers, &response, &["content-length"]);

    let client: SocketAddr = "192.0.2.7:5555".parse().unwrap();
    let endpoint: SocketAddr = "127.0.0.1:9000".parse().unwrap();
    let budget = Duration::from_millis(1234);
    let mut req = Request::new(Empty::<Bytes>::new().map_err(|e| match e {}).boxed());
    *req.uri_mut() = uri.clone();
    *req.headers_mut() = headers.clone();
    prepare_upstream_request(&mut req, client, false, budget, endpoint);

    assert_eq!(req.version(), Version::HTTP_11);
    assert!(req.uri().scheme().is_none() && req.uri().authority().is_none());
    assert_eq!(
        req.uri().path_and_query().map(|p| p.as_str()),
        Some(uri.path_and_query().map_or("/", |p| p.as_str()))
    );
    let out = req.headers();
    let own = [
        "x-forwarded-for",
        "x-forwarded-proto",
        "seawall-timeout-ms",
        "grpc-timeout",
        "host",
    ];
    check_stripped(&headers, out, &own);
    // Host: the client's, kept as it was; else the URI authority, else the endpoint.
    let hosts: Vec<_> = out.get_all(header::HOST).iter().collect();
    if headers.contains_key(header::HOST) {
        let before: Vec<_> = headers.get_all(header::HOST).iter().collect();
        assert_eq!(hosts, before, "Host changed");
    } else {
        let want = uri
            .authority()
            .map_or_else(|| endpoint.to_string(), |a| a.to_string());
        assert_eq!(hosts, [want.as_str()], "Host not filled in");
    }
    let one = |name: &str| {
        let all: Vec<_> = out.get_all(name).iter().collect();
        assert_eq!(all.len(), 1, "{name}: {all:?}");
        all[0].to_str().map(str::to_owned).unwrap_or_default()
    };
    assert_eq!(one("x-forwarded-proto"), "http");
    assert_eq!(one("seawall-timeout-ms"), "1234");
    assert!(one("x-forwarded-for").ends_with("192.0.2.7"));
    if out.contains_key("grpc-timeout") {
        assert_eq!(one("grpc-timeout"), "1234000u");
    }
});
