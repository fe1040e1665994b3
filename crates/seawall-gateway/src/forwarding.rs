//! Header hygiene between client and upstream (RFC 9110 §7.6.1).
//!
//! Hop-by-hop headers describe one connection and must not cross the gateway: the fixed
//! set, plus every header the `Connection` header names, except `Host`, `Content-Length`
//! and the gateway's own headers, which `Connection` cannot remove. A response that has
//! both `Transfer-Encoding` and `Content-Length` loses the length. The gateway adds
//! `x-forwarded-for` / `x-forwarded-proto`, rewrites the target to origin-form (so an
//! absolute-form target never chooses the upstream), and forwards the request's remaining
//! time budget so the next hop can honour it.

use std::{net::SocketAddr, time::Duration};

use http::{
    HeaderMap, HeaderName, HeaderValue, Request, Uri, Version, header,
    uri::{Authority, PathAndQuery, Scheme},
};
use seawall_core::{
    Body,
    deadline::{GRPC_TIMEOUT, SEAWALL_TIMEOUT_MS, format_grpc_timeout, format_timeout_ms},
};

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// The fixed hop-by-hop set (RFC 9110 §7.6.1, plus the proxy-* and keep-alive legacy ones).
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
    header::PROXY_AUTHENTICATE,
];

/// Names a `Connection` header cannot remove, in either direction. RFC 9110 §7.6.1 lets a
/// sender mark its own fields as hop-by-hop, but these are not the sender's to withdraw:
/// `Host`, which HTTP/1.1 requires and the route was chosen on (`Connection: host` would
/// send the upstream a request for no virtual host, or for its default one);
/// `Content-Length`, the framing the gateway's HTTP layer decides; and the headers the
/// gateway itself owns: `x-request-id` (set by the `request_id` layer *before* this runs),
/// `x-forwarded-*` and the deadline headers. Lowercase: tokens are compared ignoring case.
const NOT_LISTABLE: [&str; 7] = [
    "host",
    "content-length",
    "x-request-id",
    "x-forwarded-for",
    "x-forwarded-proto",
    SEAWALL_TIMEOUT_MS,
    GRPC_TIMEOUT,
];

/// Removes hop-by-hop headers, including those named by `Connection` (except the
/// [`NOT_LISTABLE`] ones).
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none, or only `Connection: keep-alive` (nginx and many servers
    // send it on every response): find which fixed names are present in one pass over the
    // few names the message has, then remove just those, rather than a hashed removal per
    // hop-by-hop name.
    let mut present = [false; HOP_BY_HOP.len()];
    let mut any = false;
    for name in headers.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|h| h == name) {
            present[i] = true;
            any = true;
        }
    }
    if !any {
        return;
    }
    // Other names listed in `Connection`, collected before it goes; `keep-alive` and
    // `close`, the usual tokens, need no list. Split as bytes, not text: a value with one
    // obs-text byte (found by fuzz/header_hygiene) is not a `str`, and skipping it whole
    // forwarded every name it listed.
    let mut listed: Vec<HeaderName> = Vec::new();
    for value in headers.get_all(header::CONNECTION) {
        for token in value
            .as_bytes()
            .split(|&b| b == b',')
            .map(<[u8]>::trim_ascii)
        {
            if token.eq_ignore_ascii_case(b"keep-alive")
                || token.eq_ignore_ascii_case(b"close")
                || NOT_LISTABLE
                    .iter()
                    .any(|n| token.eq_ignore_ascii_case(n.as_bytes()))
            {
                continue;
            }
            if let Ok(name) = HeaderName::from_bytes(token) {
                listed.push(name);
            }
        }
    }
    for (name, _) in HOP_BY_HOP.iter().zip(present).filter(|(_, here)| *here) {
        headers.remove(name);
    }
    for name in listed {
        headers.remove(name);
    }
}

/// Readies an upstream response head for the client: hop-by-hop headers go, and so does
/// `Content-Length` when the upstream also sent `Transfer-Encoding`. hyper then read the
/// body by its transfer coding (which overrides the length, RFC 9112 §6.3), and an
/// intermediary that forwards such a message must drop the length first: passed on, it
/// describes a body the client never gets (a truncated response and an aborted
/// connection). Looked at before stripping, which removes `Transfer-Encoding`.
pub fn prepare_client_response(headers: &mut HeaderMap) {
    if headers.contains_key(header::TRANSFER_ENCODING) {
        headers.remove(header::CONTENT_LENGTH);
    }
    strip_hop_by_hop(headers);
}

/// Puts back the two headers of an HTTP/1.1 protocol upgrade after `strip_hop_by_hop`:
/// `Connection: upgrade` and `Upgrade: <protocol>`. They are hop-by-hop, but a proxy that
/// passes an upgrade on re-sends them to the next hop (RFC 9110 §7.8); only the upgrade
/// path (`crate::upgrade`) calls this, in both directions.
pub fn restore_upgrade(headers: &mut HeaderMap, protocol: HeaderValue) {
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, protocol);
}

/// True when the client's `TE` header lists `trailers` (gRPC clients send `te: trailers`).
/// Read before `prepare_upstream_request`, which removes `TE` with the other hop-by-hop
/// headers.
pub fn accepts_trailers(headers: &HeaderMap) -> bool {
    headers.get_all(header::TE).iter().any(|value| {
        value.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
        })
    })
}

/// Turns a prepared request (origin form, `Host`) into what an HTTP/2 upstream needs
/// (RFC 9113 §8.3.1): scheme and authority in the URI, which hyper sends as `:scheme` and
/// `:authority`, and no `Host`. The authority is the request's `Host` (the one the route
/// was chosen on, unless a layer rewrote it), else the endpoint's address. `te: trailers` is put back when the client sent it: it is the one
/// `TE` value HTTP/2 allows, and gRPC servers require it.
pub fn into_http2(
    req: &mut Request<Body>,
    scheme: Scheme,
    endpoint: SocketAddr,
    te_trailers: bool,
) {
    let authority = req
        .headers_mut()
        .remove(header::HOST)
        .and_then(|host| Authority::try_from(host.as_bytes()).ok())
        .or_else(|| Authority::try_from(endpoint.to_string()).ok());
    let mut parts = std::mem::take(req.uri_mut()).into_parts();
    parts.scheme = Some(scheme);
    parts.authority = authority;
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(PathAndQuery::from_static("/"));
    }
    // Only fails without an authority, which the endpoint's address always provides.
    if let Ok(uri) = Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
    *req.version_mut() = Version::HTTP_2;
    if te_trailers {
        req.headers_mut()
            .insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// Turns a client request into the request sent upstream. `tls`: the client connected over
/// TLS, so `x-forwarded-proto` says `https`. `endpoint`: the address it goes to, the `Host`
/// of last resort.
///
/// `crate::edge` has already made the request's `Host` the authority its route was chosen
/// on. A request without one (HTTP/1.0 may omit it, a layer may remove it) gets the URI
/// authority, else the endpoint's address: HTTP/1.1 to the upstream requires a `Host`.
pub fn prepare_upstream_request(
    req: &mut Request<Body>,
    client: SocketAddr,
    tls: bool,
    budget: Duration,
    endpoint: SocketAddr,
) {
    let grpc = crate::error_response::is_grpc(req.headers());
    let had_grpc_timeout = req.headers().contains_key(GRPC_TIMEOUT);
    if !req.headers().contains_key(header::HOST) {
        let host = match req.uri().authority() {
            Some(a) => HeaderValue::try_from(a.as_str()).ok(),
            None => HeaderValue::try_from(endpoint.to_string()).ok(),
        };
        if let Some(v) = host {
            req.headers_mut().insert(header::HOST, v);
        }
    }
    let origin_form = req
        .uri()
        .path_and_query()
        .map_or_else(|| Uri::from_static("/"), |pq| Uri::from(pq.clone()));
    *req.uri_mut() = origin_form;
    *req.version_mut() = Version::HTTP_11;

    let headers = req.headers_mut();
    strip_hop_by_hop(headers);
    append_forwarded_for(headers, client);
    // Replaces any value the client sent: only the gateway knows how the client connected.
    let proto = if tls { "https" } else { "http" };
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(proto));
    headers.insert(SEAWALL_TIMEOUT_MS, format_timeout_ms(budget));
    if grpc || had_grpc_timeout {
        headers.insert(GRPC_TIMEOUT, format_grpc_timeout(budget));
    }
}

fn append_forwarded_for(headers: &mut HeaderMap, client: SocketAddr) {
    if !headers.contains_key(&X_FORWARDED_FOR) {
        headers.insert(X_FORWARDED_FOR.clone(), ip_value(client.ip()));
        return;
    }
    let ip = client.ip().to_string();
    // Every prior value, in order (found by tests/routing.rs): a repeated header field is
    // one comma-separated list (RFC 9110 §5.3), and reading only the first one, as this
    // did, silently dropped the hops in the others.
    let prior: Vec<&str> = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    let value = if prior.is_empty() {
        ip
    } else {
        format!("{}, {ip}", prior.join(", "))
    };
    if let Ok(v) = HeaderValue::try_from(value) {
        headers.insert(X_FORWARDED_FOR.clone(), v);
    }
}

/// The client address as a header value, formatted without the `fmt` machinery for IPv4
/// (every proxied request pays for this).
fn ip_value(ip: std::net::IpAddr) -> HeaderValue {
    let std::net::IpAddr::V4(v4) = ip else {
        return HeaderValue::try_from(ip.to_string())
            .unwrap_or(HeaderValue::from_static("unknown"));
    };
    let mut buf = [0u8; 15];
    let mut len = 0;
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            buf[len] = b'.';
            len += 1;
        }
        let mut itoa = itoa::Buffer::new();
        let digits = itoa.format(octet).as_bytes();
        buf[len..len + digits.len()].copy_from_slice(digits);
        len += digits.len();
    }
    HeaderValue::from_bytes(&buf[..len]).unwrap_or(HeaderValue::from_static("unknown"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_connection_listed_headers_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret-hop"),
        );
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert("x-end-to-end", HeaderValue::from_static("kept"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h["x-end-to-end"], "kept");
    }

    #[test]
    fn a_connection_value_with_a_non_ascii_byte_still_removes_the_names_it_lists() {
        // The input fuzz/header_hygiene found, reduced.
        let mut h = HeaderMap::new();
        let value = HeaderValue::from_bytes(b"ke\xe8p-alive, x-secret, host").unwrap();
        h.insert(header::CONNECTION, value);
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert(header::HOST, HeaderValue::from_static("a.example"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.keys().collect::<Vec<_>>(), [header::HOST], "{h:?}");
    }

    #[test]
    fn every_fixed_name_and_every_listed_one_goes_whatever_else_is_present() {
        let mut h = HeaderMap::new();
        for name in &HOP_BY_HOP {
            h.append(name.clone(), HeaderValue::from_static("x"));
        }
        // Two `Connection` fields, each listing a name (one in mixed case).
        h.insert(header::CONNECTION, HeaderValue::from_static("close, X-One"));
        h.append(header::CONNECTION, HeaderValue::from_static("x-two"));
        h.insert("x-one", HeaderValue::from_static("1"));
        h.insert("x-two", HeaderValue::from_static("2"));
        h.insert(header::HOST, HeaderValue::from_static("kept"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.keys().collect::<Vec<_>>(), [header::HOST], "{h:?}");

        // Only `TE`, no `Connection`: still removed.
        let mut h = HeaderMap::new();
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.keys().collect::<Vec<_>>(), [header::ACCEPT], "{h:?}");

        // Nothing hop-by-hop: untouched.
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        h.insert("x-a", HeaderValue::from_static("1"));
        let before = h.clone();
        strip_hop_by_hop(&mut h);
        assert_eq!(h, before);
    }

    #[test]
    fn http2_form_moves_host_into_the_uri_and_keeps_te_trailers() {
        let mut req = Request::get("/svc/Method?x=1")
            .header(header::HOST, "api.internal:8080")
            .header(header::TE, "trailers")
            .body(Body::default())
            .unwrap();
        let te = accepts_trailers(req.headers());
        assert!(te);
        prepare_upstream_request(
            &mut req,
            "10.0.0.1:5000".parse().unwrap(),
            false,
            Duration::from_secs(1),
            "127.0.0.1:9000".parse().unwrap(),
        );
        assert!(
            !req.headers().contains_key(header::TE),
            "stripped as hop-by-hop"
        );
        into_http2(
            &mut req,
            Scheme::HTTP,
            "127.0.0.1:9000".parse().unwrap(),
            te,
        );
        assert_eq!(req.uri(), "http://api.internal:8080/svc/Method?x=1");
        assert_eq!(req.version(), Version::HTTP_2);
        assert!(!req.headers().contains_key(header::HOST));
        assert_eq!(req.headers()[header::TE], "trailers");

        let mut bare = Request::get("/").body(Body::default()).unwrap();
        into_http2(
            &mut bare,
            Scheme::HTTPS,
            "127.0.0.1:9000".parse().unwrap(),
            false,
        );
        assert_eq!(bare.uri(), "https://127.0.0.1:9000/");
        assert!(!bare.headers().contains_key(header::TE));
    }

    #[test]
    fn connection_cannot_list_host_framing_or_the_gateways_own_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static(
                "close, Host, content-length, X-Request-Id, x-forwarded-for, x-forwarded-proto, seawall-timeout-ms, grpc-timeout, x-hop",
            ),
        );
        for name in NOT_LISTABLE.iter().chain(&["x-hop"]) {
            h.insert(*name, HeaderValue::from_static("1"));
        }
        strip_hop_by_hop(&mut h);
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        let mut want = NOT_LISTABLE.to_vec();
        want.sort_unstable();
        assert_eq!(left, want, "{h:?}");
    }

    #[test]
    fn a_response_with_transfer_encoding_loses_its_content_length() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("50"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        prepare_client_response(&mut h);
        assert_eq!(
            h.keys().collect::<Vec<_>>(),
            [header::CONTENT_TYPE],
            "{h:?}"
        );

        // Without a transfer coding the length is the framing, and stays.
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("5"));
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("content-length"),
        );
        prepare_client_response(&mut h);
        assert_eq!(h[header::CONTENT_LENGTH], "5");
    }

    #[test]
    fn a_request_without_host_gets_one_for_the_upstream() {
        let endpoint = "10.1.2.3:8080".parse().unwrap();
        let client = "127.0.0.1:5000".parse().unwrap();
        let mut req = Request::get("/x").body(Body::default()).unwrap();
        *req.version_mut() = Version::HTTP_10;
        prepare_upstream_request(&mut req, client, false, Duration::from_secs(1), endpoint);
        assert_eq!(req.headers()[header::HOST], "10.1.2.3:8080");
        assert_eq!(req.version(), Version::HTTP_11);

        let mut req = Request::get("http://b.example/x")
            .body(Body::default())
            .unwrap();
        prepare_upstream_request(&mut req, client, false, Duration::from_secs(1), endpoint);
        assert_eq!(req.headers()[header::HOST], "b.example");
        assert_eq!(req.uri(), "/x");
    }

    #[test]
    fn forwarded_for_is_set_from_the_client_address() {
        let mut h = HeaderMap::new();
        append_forwarded_for(&mut h, "10.20.3.4:5000".parse().unwrap());
        assert_eq!(h["x-forwarded-for"], "10.20.3.4");
        let mut h = HeaderMap::new();
        append_forwarded_for(&mut h, "[::1]:5000".parse().unwrap());
        assert_eq!(h["x-forwarded-for"], "::1");
    }

    #[test]
    fn forwarded_for_is_appended() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        append_forwarded_for(&mut h, "127.0.0.1:5000".parse().unwrap());
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
    }
}
