//! `SW4xx`: connection pools and DNS. A pooled connection must be closed by the gateway
//! before the upstream closes it, pools must be bounded, and names must be re-resolved
//! soon enough to follow a failover.

use std::time::Duration;

use seawall_config::UpstreamProtocol;

use crate::{
    finding::Hit,
    scope::{Scope, duration, is_host_name},
};

/// Per-endpoint connection limits at or above this bound nothing in practice.
const UNBOUNDED_CONNECTIONS: usize = 10_000;

/// A failover should be noticed within this.
const MAX_DNS_TTL: Duration = Duration::from_secs(60);

/// An idle timeout safely below a keep-alive of `keepalive`: a second less (the race
/// window is a round trip plus the server's timer granularity), or half of a short one.
fn below(keepalive: Duration) -> Duration {
    if keepalive >= Duration::from_secs(4) {
        keepalive - Duration::from_secs(1)
    } else {
        keepalive / 2
    }
}

/// `SW401`: `pool.idle_timeout` not below the stated `upstream_keepalive`.
pub(crate) fn pool_idle_not_below_keepalive(scope: &Scope<'_>) -> Vec<Hit> {
    scope
        .upstreams()
        .filter_map(|u| {
            let keepalive = u.upstream.upstream_keepalive?;
            let idle = u.upstream.pool.idle_timeout;
            (idle >= keepalive).then(|| {
                let key = u.key("pool.idle_timeout");
                Hit {
                    unit: u.unit(),
                    fix: format!("set `{key}: {}`", duration(below(keepalive.get()))),
                    path: key,
                    value: Some(idle.to_string()),
                    message: format!(
                        "upstream `{}` keeps idle connections {idle}, its servers close them after {keepalive}",
                        u.upstream.name
                    ),
                }
            })
        })
        .collect()
}

/// `SW402`: an HTTP/1 upstream whose keep-alive is not stated.
pub(crate) fn upstream_keepalive_unknown(scope: &Scope<'_>) -> Vec<Hit> {
    scope
        .upstreams()
        // HTTP/2 upstreams announce their closes with GOAWAY, so the race is rare there.
        .filter(|u| u.upstream.protocol != UpstreamProtocol::Http2)
        .filter(|u| u.upstream.upstream_keepalive.is_none())
        .map(|u| {
            let key = u.key("upstream_keepalive");
            Hit {
                unit: u.unit(),
                fix: format!(
                    "set `{key}` to the servers' keep-alive timeout (e.g. `5s` for Node, `75s` for nginx), then `pool.idle_timeout` below it"
                ),
                path: key,
                value: None,
                message: format!(
                    "upstream `{}`: its keep-alive timeout is not stated, so `pool.idle_timeout` {} cannot be checked",
                    u.upstream.name, u.upstream.pool.idle_timeout
                ),
            }
        })
        .collect()
}

/// `SW403`: `pool.max_connections_per_endpoint` effectively unbounded.
pub(crate) fn pool_unbounded(scope: &Scope<'_>) -> Vec<Hit> {
    scope
        .upstreams()
        .filter(|u| u.upstream.pool.max_connections_per_endpoint >= UNBOUNDED_CONNECTIONS)
        .map(|u| {
            let key = u.key("pool.max_connections_per_endpoint");
            Hit {
                unit: u.unit(),
                fix: format!("set `{key}: 1024`, or what one endpoint can serve"),
                path: key,
                value: Some(u.upstream.pool.max_connections_per_endpoint.to_string()),
                message: format!(
                    "upstream `{}` may open {} connections per endpoint",
                    u.upstream.name, u.upstream.pool.max_connections_per_endpoint
                ),
            }
        })
        .collect()
}

/// `SW404`: host-name endpoints whose answers may be kept over a minute.
pub(crate) fn dns_max_ttl_long(scope: &Scope<'_>) -> Vec<Hit> {
    scope
        .upstreams()
        .filter(|u| u.upstream.endpoints.iter().any(|e| is_host_name(e)))
        .filter(|u| u.upstream.dns.max_ttl.get() > MAX_DNS_TTL)
        .map(|u| {
            let key = u.key("dns.max_ttl");
            Hit {
                unit: u.unit(),
                fix: format!("set `{key}: 30s`"),
                path: key,
                value: Some(u.upstream.dns.max_ttl.to_string()),
                message: format!(
                    "upstream `{}` may keep a DNS answer for {} after the name moved",
                    u.upstream.name, u.upstream.dns.max_ttl
                ),
            }
        })
        .collect()
}
