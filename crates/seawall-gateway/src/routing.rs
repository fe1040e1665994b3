//! Route selection: host (exact, `*.suffix` or `*`) then the longest path prefix.
//!
//! Invariant: a request that matches no route gets 404 from the gateway. The upstream is
//! always one named in config, never the host a client wrote in an absolute-form target,
//! so the gateway cannot be used as an open proxy.

use std::sync::Arc;

use http::{HeaderMap, Uri, Version};

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

/// One listener's routes, ordered so that the first match is the best match. Generic over
/// what a route carries only so that the matching can be exercised (fuzzed) without
/// building a whole runtime; the gateway always uses [`Route`].
pub struct Router<R = Route> {
    entries: Vec<(HostPattern, String, Arc<R>)>,
}

impl<R> Router<R> {
    /// Orders routes by host specificity, then by prefix length (longest first).
    pub fn new(routes: Vec<(HostPattern, String, Arc<R>)>) -> Self {
        let mut entries = routes;
        entries.sort_by(|a, b| b.0.rank().cmp(&a.0.rank()).then(b.1.len().cmp(&a.1.len())));
        Self { entries }
    }

    /// The best route for `host` (without port) and `path`, if any.
    pub fn find(&self, host: &str, path: &str) -> Option<&Arc<R>> {
        self.entries
            .iter()
            .find(|(h, prefix, _)| h.matches(host) && prefix_matches(prefix, path))
            .map(|(_, _, r)| r)
    }

    /// Every route, in match order.
    pub fn routes(&self) -> impl Iterator<Item = &Arc<R>> {
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

/// Why a request's authority was refused: the client gets 400 `bad_request` before routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostError {
    /// More than one `Host` field line (RFC 9112 §3.2).
    Duplicate,
    /// An HTTP/1.1 request without `Host`, or an HTTP/2 one without `:authority` or `Host`.
    Missing,
    /// `Host:` with an empty value.
    Empty,
    /// A `Host` or URI authority that is not `host[:port]`.
    Invalid,
}

impl HostError {
    /// The error detail logged for the operator.
    pub fn detail(self) -> &'static str {
        match self {
            HostError::Duplicate => "more than one Host header",
            HostError::Missing => "no Host header (required in HTTP/1.1) and no authority",
            HostError::Empty => "empty Host header",
            HostError::Invalid => {
                "invalid Host or authority: expected host[:port], no userinfo, port 0-65535"
            }
        }
    }
}

/// The one authority (`host[:port]`) a request is for: the URI authority (an absolute-form
/// target in HTTP/1.1, `:authority` in HTTP/2) wins over `Host` (RFC 9112 §3.2.2, RFC 9113
/// §8.3.1), else the single `Host` header. The route is chosen on it and `crate::edge`
/// makes it the `Host` sent upstream, so the two can never disagree. An HTTP/2 request
/// whose `Host` differs from its `:authority` (RFC 9113 says they must match) is served for
/// the `:authority`, like any other client that sends both.
///
/// `Host` is checked whichever wins: one field line at most, and never empty or invalid;
/// HTTP/1.1 requires it even with an absolute-form target (RFC 9112 §3.2). Empty only for
/// an HTTP/1.0 request without `Host` or authority, which only a `*` route takes.
pub fn request_authority<'a>(
    version: Version,
    uri: &'a Uri,
    headers: &'a HeaderMap,
) -> Result<&'a str, HostError> {
    let mut hosts = headers.get_all(http::header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(HostError::Duplicate);
    }
    let host = match host {
        Some(v) => {
            let h = v.to_str().map_err(|_| HostError::Invalid)?;
            if h.is_empty() {
                return Err(HostError::Empty);
            }
            check_authority(h)?;
            Some(h)
        }
        None => None,
    };
    match (uri.authority(), host) {
        (_, None) if version == Version::HTTP_11 => Err(HostError::Missing),
        (Some(a), _) => check_authority(a.as_str()).map(|()| a.as_str()),
        (None, Some(h)) => Ok(h),
        (None, None) if version >= Version::HTTP_2 => Err(HostError::Missing),
        (None, None) => Ok(""),
    }
}

/// The host routes match on: `authority` without its port, an IPv6 literal without its
/// brackets, and without the one trailing dot of a fully qualified name (`a.example.` is
/// the same host as `a.example`, and config patterns never end in a dot).
pub fn routing_host(authority: &str) -> &str {
    let host = strip_port(authority);
    host.strip_suffix('.').unwrap_or(host)
}

/// `host[:port]` as RFC 3986 §3.2.2 and RFC 9110 §4.2 allow it in `Host`: a reg-name
/// (unreserved and sub-delims; no percent-encoding, which no DNS name needs), an IPv4
/// address or a bracketed IPv6 one, then an optional port of 1-5 digits up to 65535. No
/// userinfo (`user@host`): RFC 9110 §4.2.4 forbids it in http URIs and it is a classic
/// way to make two parsers disagree on the host.
fn check_authority(authority: &str) -> Result<(), HostError> {
    let (host_ok, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let (ip, after) = rest.split_once(']').ok_or(HostError::Invalid)?;
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or(HostError::Invalid)?),
            };
            (ip.parse::<std::net::Ipv6Addr>().is_ok(), port)
        }
        None => {
            let (host, port) = match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            };
            let reg_name = |b: u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b);
            (!host.is_empty() && host.bytes().all(reg_name), port)
        }
    };
    let port_ok = port.is_none_or(|p| {
        (1..=5).contains(&p.len())
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u16>().is_ok()
    });
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(HostError::Invalid)
    }
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

    #[test]
    fn routing_host_drops_port_brackets_and_one_trailing_dot() {
        assert_eq!(routing_host("a.example.:8080"), "a.example");
        assert_eq!(routing_host("A.Example."), "A.Example");
        assert_eq!(routing_host("[::1]:80"), "::1");
        assert_eq!(routing_host(""), "");
    }

    fn authority(version: Version, target: &str, hosts: &[&str]) -> Result<String, HostError> {
        let uri: Uri = target.parse().unwrap();
        let mut headers = HeaderMap::new();
        for h in hosts {
            headers.append(http::header::HOST, h.parse().unwrap());
        }
        request_authority(version, &uri, &headers).map(str::to_owned)
    }

    #[test]
    fn the_uri_authority_wins_over_host() {
        let h11 = Version::HTTP_11;
        assert_eq!(authority(h11, "/", &["a.example"]), Ok("a.example".into()));
        assert_eq!(
            authority(h11, "http://b.example:81/x", &["a.example"]),
            Ok("b.example:81".into())
        );
        let h2 = Version::HTTP_2;
        assert_eq!(
            authority(h2, "https://b.example/", &["a.example"]),
            Ok("b.example".into())
        );
        assert_eq!(
            authority(h2, "https://b.example/", &[]),
            Ok("b.example".into())
        );
        assert_eq!(authority(h2, "/", &["a.example"]), Ok("a.example".into()));
        assert_eq!(authority(Version::HTTP_10, "/", &[]), Ok(String::new()));
    }

    #[test]
    fn missing_duplicate_empty_and_invalid_hosts_are_refused() {
        use HostError::*;
        let h11 = Version::HTTP_11;
        assert_eq!(authority(h11, "/", &[]), Err(Missing));
        assert_eq!(authority(h11, "http://b.example/", &[]), Err(Missing));
        assert_eq!(authority(Version::HTTP_2, "/", &[]), Err(Missing));
        assert_eq!(
            authority(h11, "/", &["a.example", "b.example"]),
            Err(Duplicate)
        );
        assert_eq!(
            authority(Version::HTTP_10, "/", &["a", "a"]),
            Err(Duplicate)
        );
        assert_eq!(authority(h11, "/", &[""]), Err(Empty));
        for bad in [
            "a b.example",
            "user@a.example",
            "a.example:http",
            "a.example:65536",
            "a.example:123456",
            "a.example:",
            ":80",
            "a.example:80:81",
            "a%2e.example",
            "a.example/x",
            "[::1",
            "[not-ip]:80",
            "[::1]80",
            "a\"b",
        ] {
            assert_eq!(authority(h11, "/", &[bad]), Err(Invalid), "{bad}");
        }
        assert_eq!(
            authority(h11, "http://user@b.example/", &["a.example"]),
            Err(Invalid)
        );
        for good in [
            "a.example",
            "A-1.example:8080",
            "127.0.0.1:0",
            "[::1]:443",
            "[::1]",
            "x_y",
        ] {
            assert_eq!(authority(h11, "/", &[good]), Ok(good.into()), "{good}");
        }
    }
}
