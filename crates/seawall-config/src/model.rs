//! The typed model of a Seawall config file.
//!
//! Every struct rejects unknown keys (`deny_unknown_fields`): a misspelt key is an error,
//! never a silently ignored setting. Defaults are the values an operator would pick for a
//! small service; each is documented in `docs/configuration.md`.

use std::{collections::BTreeMap, net::SocketAddr};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    policy::{
        BalancerKind, BreakerConfig, ConcurrencyConfig, FallbackConfig, HealthCheckConfig,
        HedgeConfig, OutlierConfig, RetryBudgetConfig, RetryConfig,
    },
    units::{ByteSize, HumanDuration},
};

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The admin API: metrics, health, effective config, reload.
    #[serde(default)]
    pub admin: AdminConfig,
    /// Where clients connect, and how their requests are routed.
    pub listeners: Vec<ListenerConfig>,
    /// The services requests are forwarded to.
    #[serde(default)]
    pub upstreams: Vec<UpstreamConfig>,
    /// An in-process `sim` upstream to start beside the gateway (used by the embedded default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sim: Option<SimConfig>,
    /// Fault proxies (Toxiproxy-compatible) to start beside the gateway, for demos.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chaos: Option<crate::chaos::ChaosConfig>,
    /// Prometheus metric settings.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// The token-protected debug trace.
    #[serde(default)]
    pub debug: DebugConfig,
    /// Graceful shutdown.
    #[serde(default)]
    pub shutdown: ShutdownConfig,
}

/// The admin API listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Address of the admin listener. Loopback unless a token is configured.
    #[serde(default = "default_admin_listen")]
    #[schemars(extend("format" = "socket-address"))]
    pub listen: SocketAddr,
    /// Name of the environment variable holding the bearer token for mutating endpoints.
    #[serde(default = "default_admin_token_env")]
    pub token_env: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: default_admin_listen(),
            token_env: default_admin_token_env(),
        }
    }
}

fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9901))
}

fn default_admin_token_env() -> String {
    "SEAWALL_ADMIN_TOKEN".to_owned()
}

/// A listening socket with its protections and routes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Unique name, used in logs and metrics.
    pub name: String,
    /// Address to listen on (HTTP/1.1 and h2c prior knowledge on the same port).
    #[schemars(extend("format" = "socket-address"))]
    pub listen: SocketAddr,
    /// Time from the first byte of a request to the end of its headers (slowloris guard).
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout: HumanDuration,
    /// How long a keep-alive connection may sit with no request before it is closed.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: HumanDuration,
    /// The whole request body must arrive within this, else 408.
    #[serde(default = "default_body_read_timeout")]
    pub body_read_timeout: HumanDuration,
    /// Largest request head accepted; larger gets 431.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: ByteSize,
    /// Largest request body accepted; larger gets 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: ByteSize,
    /// Open connections beyond this are answered 503 and closed.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// TLS termination (HTTPS, HTTP/2 by ALPN); off unless set, and then the port speaks
    /// only TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ListenerTlsConfig>,
    /// Whether clients from the internet reach this listener. Unset: true when `listen` is
    /// not a loopback address. Read only by `seawall check --score`, which holds public
    /// listeners and their routes to stricter rules (explicit limits, rate limits, no debug
    /// trace); it changes nothing at run time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public: Option<bool>,
    /// Routes, matched by host then longest path prefix.
    pub routes: Vec<RouteConfig>,
}

impl ListenerConfig {
    /// Whether the listener faces the internet: `public` as written, else whether `listen`
    /// is off loopback.
    pub fn is_public(&self) -> bool {
        self.public
            .unwrap_or_else(|| !self.listen.ip().is_loopback())
    }
}

/// TLS termination on a listener (`listeners[].tls`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListenerTlsConfig {
    /// PEM file with the certificate chain, leaf first. Read at start and on every reload,
    /// so a renewed certificate takes effect with a reload.
    pub cert_file: std::path::PathBuf,
    /// PEM file with the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: std::path::PathBuf,
    /// Protocols offered by ALPN, in order of preference.
    #[serde(default = "default_alpn")]
    pub alpn: Vec<AlpnProtocol>,
    /// From accept to the end of the TLS handshake; slower handshakes are cut.
    #[serde(default = "default_tls_handshake_timeout")]
    pub handshake_timeout: HumanDuration,
}

/// An application protocol a TLS listener offers by ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum AlpnProtocol {
    /// HTTP/2.
    #[serde(rename = "h2")]
    H2,
    /// HTTP/1.1.
    #[serde(rename = "http/1.1")]
    Http11,
}

impl AlpnProtocol {
    /// The protocol id sent on the wire (and written in config).
    pub const fn as_str(self) -> &'static str {
        match self {
            AlpnProtocol::H2 => "h2",
            AlpnProtocol::Http11 => "http/1.1",
        }
    }
}

fn default_alpn() -> Vec<AlpnProtocol> {
    vec![AlpnProtocol::H2, AlpnProtocol::Http11]
}
fn default_tls_handshake_timeout() -> HumanDuration {
    HumanDuration::from_secs(10)
}

fn default_header_read_timeout() -> HumanDuration {
    HumanDuration::from_secs(10)
}
fn default_idle_timeout() -> HumanDuration {
    HumanDuration::from_secs(60)
}
fn default_body_read_timeout() -> HumanDuration {
    HumanDuration::from_secs(30)
}
fn default_max_header_bytes() -> ByteSize {
    ByteSize(16 * 1024)
}
fn default_max_body_bytes() -> ByteSize {
    ByteSize(10 * 1024 * 1024)
}
fn default_max_connections() -> usize {
    10_000
}

/// One route: which requests it takes, where they go, and what happens on the way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Name used in logs and metrics; defaults to `<listener>/<index>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Which requests this route takes.
    #[serde(default, rename = "match")]
    pub matcher: MatchConfig,
    /// Name of the upstream to forward to.
    pub upstream: String,
    /// The request deadline, end to end (including streaming the response body).
    #[serde(default = "default_route_timeout")]
    pub timeout: HumanDuration,
    /// Middleware layers, in order, outermost first.
    #[serde(default)]
    pub middleware: Vec<MiddlewareConfig>,
    /// Retries of failed tries; off unless set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryConfig>,
    /// The answer when the upstream cannot give one (breaker open, shed, connection
    /// failures, timeouts); off unless set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<FallbackConfig>,
    /// Hedged requests: an extra copy to another endpoint when the answer is slow; off
    /// unless set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hedge: Option<HedgeConfig>,
    /// Service level objectives (availability, latency) for `seawall rules` and
    /// `seawall dashboard`; they change nothing on the request path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<crate::slo::SloConfig>,
}

fn default_route_timeout() -> HumanDuration {
    HumanDuration::from_secs(15)
}

/// How a route matches requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchConfig {
    /// `*` (any), an exact host (`api.example.com`) or a suffix wildcard (`*.example.com`).
    #[serde(default = "default_host")]
    pub host: String,
    /// Path prefix, matched on whole segments; the longest matching prefix wins.
    #[serde(default = "default_path_prefix")]
    pub path_prefix: String,
}

impl Default for MatchConfig {
    fn default() -> Self {
        Self {
            host: default_host(),
            path_prefix: default_path_prefix(),
        }
    }
}

fn default_host() -> String {
    "*".to_owned()
}
fn default_path_prefix() -> String {
    "/".to_owned()
}

/// One middleware layer. Written either as a bare name (`request_id`) or, for layers with
/// settings, as a one-key map (`headers: {...}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum MiddlewareConfig {
    /// Sets `x-request-id` when the client did not send one, and echoes it in the response.
    RequestId,
    /// Writes one structured JSON line per request.
    AccessLog,
    /// Returns the request's trace through the chain to callers holding the debug token.
    Debug,
    /// Sets or removes request and response headers.
    Headers(HeadersConfig),
    /// Limits the request rate per key (GCRA); see `docs/rate-limiting.md`.
    RateLimit(crate::RateLimitConfig),
    /// Injects faults (delays, error statuses, resets) for the callers; see `docs/faults.md`.
    Fault(crate::FaultConfig),
}

impl MiddlewareConfig {
    /// The layer's name as written in config, logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            MiddlewareConfig::RequestId => "request_id",
            MiddlewareConfig::AccessLog => "access_log",
            MiddlewareConfig::Debug => "debug",
            MiddlewareConfig::Headers(_) => "headers",
            MiddlewareConfig::RateLimit(_) => "rate_limit",
            MiddlewareConfig::Fault(_) => "fault",
        }
    }
}

/// Settings of the `headers` middleware.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeadersConfig {
    /// Changes to the request before it is forwarded.
    #[serde(default)]
    pub request: HeaderEdits,
    /// Changes to the response before it is returned.
    #[serde(default)]
    pub response: HeaderEdits,
}

/// Header changes: `set` replaces (or adds), `remove` deletes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderEdits {
    /// Headers to set, replacing any existing value.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Header names to remove.
    #[serde(default)]
    pub remove: Vec<String>,
}

/// A named group of endpoints that requests are forwarded to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Unique name, referenced by routes.
    pub name: String,
    /// `ip:port` or `host:port` endpoints; `balancer` picks one per try. A host name is
    /// resolved, and kept resolved, as `dns` says; each of its addresses gets a pool.
    pub endpoints: Vec<String>,
    /// Per-phase timeouts of each attempt.
    #[serde(default)]
    pub timeouts: UpstreamTimeouts,
    /// The connection pool kept per endpoint.
    #[serde(default)]
    pub pool: PoolConfig,
    /// How long the upstream's own servers keep an unused keep-alive connection open, as
    /// its operators state it (e.g. Node's 5s, nginx's 75s). Read only by `seawall check
    /// --score`, which wants `pool.idle_timeout` below it: a pool that keeps connections
    /// longer than the server races the server's close and fails requests with
    /// `upstream_reset`. It changes nothing at run time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_keepalive: Option<HumanDuration>,
    /// TLS to the upstream (HTTPS); off unless set, and then every connection to every
    /// endpoint starts with a TLS handshake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<UpstreamTlsConfig>,
    /// HTTP version spoken to the endpoints: `http1` (default); `http2` (prior knowledge,
    /// h2c, on plain TCP; h2 over TLS); `auto` (over TLS, what the upstream picks by ALPN
    /// among h2 and http/1.1; on plain TCP there is nothing to negotiate: HTTP/1.1).
    #[serde(default)]
    pub protocol: UpstreamProtocol,
    /// HTTP/2 connection settings, used on HTTP/2 connections (`protocol: http2`, or
    /// `auto` when the upstream picks h2).
    #[serde(default)]
    pub http2: Http2Config,
    /// How the endpoint of each try is chosen: `p2c_ewma` (default) or `round_robin`.
    #[serde(default)]
    pub balancer: BalancerKind,
    /// Circuit breaker over this upstream's outcomes; off unless set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker: Option<BreakerConfig>,
    /// Ejection of endpoints that keep failing; off unless set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier: Option<OutlierConfig>,
    /// Bulkhead: the most tries running at once, and how many may wait; off unless set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<ConcurrencyConfig>,
    /// Retry budget shared by every route retrying against this upstream.
    #[serde(default)]
    pub retry_budget: RetryBudgetConfig,
    /// Active health checks of every endpoint; off unless set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckConfig>,
    /// How `host:port` endpoints are resolved and kept resolved; unused by `ip:port` ones.
    #[serde(default)]
    pub dns: UpstreamDnsConfig,
    /// Upstream-side fault rules, injected inside each try (below the breaker, retry loop,
    /// balancer and outlier detection, which see them as this upstream failing); tried in
    /// order, the first that matches and is selected applies. See `docs/faults.md`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<crate::FaultRule>,
}

impl UpstreamConfig {
    /// This config without its `faults`: what decides whether a reload may keep the
    /// running upstream (its pool and policy state). Fault rules live in the gateway's
    /// fault registry, so changing them does not reset a breaker mid-drill.
    pub fn without_faults(&self) -> UpstreamConfig {
        UpstreamConfig {
            faults: Vec::new(),
            ..self.clone()
        }
    }
}

/// DNS re-resolution of an upstream's `host:port` endpoints (`upstreams[].dns`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamDnsConfig {
    /// Which resolver looks the names up: `hickory` (default; TTL-aware, reads
    /// /etc/resolv.conf and /etc/hosts) or `system` (getaddrinfo, honours nsswitch, knows
    /// no TTL, so `interval` applies).
    #[serde(default)]
    pub resolver: DnsResolverKind,
    /// Shortest time an answer is used: a lower TTL is raised to it. Also the retry delay
    /// after a failed lookup.
    #[serde(default = "default_dns_min_ttl")]
    pub min_ttl: HumanDuration,
    /// Longest time an answer is used: a higher TTL is lowered to it.
    #[serde(default = "default_dns_max_ttl")]
    pub max_ttl: HumanDuration,
    /// Re-resolution period when the resolver gives no TTL (the system resolver never
    /// does).
    #[serde(default = "default_dns_interval")]
    pub interval: HumanDuration,
    /// Bound on one lookup; a slower one counts as failed and the last answer is kept.
    #[serde(default = "default_dns_resolve_timeout")]
    pub resolve_timeout: HumanDuration,
    /// How long requests on connections to an address that left the answer may take to
    /// finish before those connections are closed.
    #[serde(default = "default_dns_drain_grace")]
    pub drain_grace: HumanDuration,
}

/// The resolver of `host:port` endpoints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DnsResolverKind {
    /// hickory-resolver: answers carry their TTL.
    #[default]
    Hickory,
    /// getaddrinfo: no TTL, re-resolved every `interval`.
    System,
}

impl DnsResolverKind {
    /// The name as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hickory => "hickory",
            Self::System => "system",
        }
    }
}

impl Default for UpstreamDnsConfig {
    fn default() -> Self {
        Self {
            resolver: DnsResolverKind::default(),
            min_ttl: default_dns_min_ttl(),
            max_ttl: default_dns_max_ttl(),
            interval: default_dns_interval(),
            resolve_timeout: default_dns_resolve_timeout(),
            drain_grace: default_dns_drain_grace(),
        }
    }
}

fn default_dns_min_ttl() -> HumanDuration {
    HumanDuration::from_secs(1)
}
fn default_dns_max_ttl() -> HumanDuration {
    HumanDuration::from_secs(300)
}
fn default_dns_interval() -> HumanDuration {
    HumanDuration::from_secs(30)
}
fn default_dns_resolve_timeout() -> HumanDuration {
    HumanDuration::from_secs(2)
}
fn default_dns_drain_grace() -> HumanDuration {
    HumanDuration::from_secs(30)
}

/// TLS towards an upstream (`upstreams[].tls`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTlsConfig {
    /// Name sent as SNI and checked against the upstream's certificate. Unset: the
    /// endpoint's IP address, which only matches a certificate with that IP in its
    /// subjectAltName.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// PEM file of the CA certificates to trust, instead of the built-in Mozilla roots.
    /// Read at start and on every reload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<std::path::PathBuf>,
    /// PEM file of the client certificate chain (leaf first) for upstreams that require
    /// mutual TLS; needs `client_key_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_file: Option<std::path::PathBuf>,
    /// PEM file of the client certificate's private key; needs `client_cert_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key_file: Option<std::path::PathBuf>,
    /// Protocols offered by ALPN. Unset: what `protocol` speaks (`http1`: `[http/1.1]`,
    /// `http2`: `[h2]`, `auto`: `[h2, http/1.1]`); an empty list sends no ALPN extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpn: Option<Vec<AlpnProtocol>>,
}

/// The HTTP version spoken to an upstream (`upstreams[].protocol`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamProtocol {
    /// HTTP/1.1.
    #[default]
    Http1,
    /// HTTP/2: prior knowledge (h2c) on plain TCP, h2 over TLS.
    Http2,
    /// Over TLS, whatever the upstream picks by ALPN (h2 or http/1.1); HTTP/1.1 on plain
    /// TCP.
    Auto,
}

impl UpstreamProtocol {
    /// The name as written in config.
    pub const fn as_str(self) -> &'static str {
        match self {
            UpstreamProtocol::Http1 => "http1",
            UpstreamProtocol::Http2 => "http2",
            UpstreamProtocol::Auto => "auto",
        }
    }

    /// The ALPN list offered when `tls.alpn` is unset.
    pub fn default_alpn(self) -> Vec<AlpnProtocol> {
        match self {
            UpstreamProtocol::Http1 => vec![AlpnProtocol::Http11],
            UpstreamProtocol::Http2 => vec![AlpnProtocol::H2],
            UpstreamProtocol::Auto => vec![AlpnProtocol::H2, AlpnProtocol::Http11],
        }
    }
}

impl UpstreamTlsConfig {
    /// The ALPN protocols offered to an upstream speaking `protocol`: `alpn` if set.
    pub fn alpn_for(&self, protocol: UpstreamProtocol) -> Vec<AlpnProtocol> {
        self.alpn.clone().unwrap_or_else(|| protocol.default_alpn())
    }
}

/// HTTP/2 connections to an upstream (`upstreams[].http2`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Http2Config {
    /// A PING is sent after this long without a frame from the upstream, idle connections
    /// included, to find dead connections; `null` sends none.
    #[serde(
        default = "default_h2_keep_alive_interval",
        skip_serializing_if = "Option::is_none"
    )]
    pub keep_alive_interval: Option<HumanDuration>,
    /// A connection whose PING is not answered within this is closed, failing its streams.
    #[serde(default = "default_h2_keep_alive_timeout")]
    pub keep_alive_timeout: HumanDuration,
    /// The most requests in flight on one connection (the upstream's own limit when it
    /// advertises a lower one); a new connection is opened only when every open one is
    /// full.
    #[serde(default = "default_h2_max_concurrent_streams")]
    pub max_concurrent_streams: u32,
}

impl Default for Http2Config {
    fn default() -> Self {
        Self {
            keep_alive_interval: default_h2_keep_alive_interval(),
            keep_alive_timeout: default_h2_keep_alive_timeout(),
            max_concurrent_streams: default_h2_max_concurrent_streams(),
        }
    }
}

fn default_h2_keep_alive_interval() -> Option<HumanDuration> {
    Some(HumanDuration::from_secs(30))
}
fn default_h2_keep_alive_timeout() -> HumanDuration {
    HumanDuration::from_secs(10)
}
fn default_h2_max_concurrent_streams() -> u32 {
    100
}

/// Per-phase upstream timeouts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTimeouts {
    /// TCP connect.
    #[serde(default = "default_connect_timeout")]
    pub connect: HumanDuration,
    /// The TLS handshake, after the TCP connect (TLS upstreams only).
    #[serde(default = "default_upstream_tls_handshake")]
    pub tls_handshake: HumanDuration,
    /// From the request being sent to the response head arriving. Unset: only the route
    /// deadline bounds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_header: Option<HumanDuration>,
    /// An upgraded connection (a WebSocket tunnel) with no bytes in either direction for
    /// this long is closed. The route's `timeout` bounds only the upgrade handshake.
    #[serde(default = "default_upgrade_idle")]
    pub upgrade_idle: HumanDuration,
}

impl Default for UpstreamTimeouts {
    fn default() -> Self {
        Self {
            connect: default_connect_timeout(),
            tls_handshake: default_upstream_tls_handshake(),
            response_header: None,
            upgrade_idle: default_upgrade_idle(),
        }
    }
}

fn default_upgrade_idle() -> HumanDuration {
    HumanDuration::from_secs(3600)
}

fn default_upstream_tls_handshake() -> HumanDuration {
    HumanDuration::from_secs(5)
}

fn default_connect_timeout() -> HumanDuration {
    HumanDuration::from_secs(1)
}

/// The per-endpoint connection pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// Idle connections kept per endpoint; more are closed when released.
    #[serde(default = "default_max_idle")]
    pub max_idle_per_endpoint: usize,
    /// An idle connection unused for this long is closed.
    #[serde(default = "default_pool_idle_timeout")]
    pub idle_timeout: HumanDuration,
    /// Open connections (idle plus in use) per endpoint.
    #[serde(default = "default_max_connections_per_endpoint")]
    pub max_connections_per_endpoint: usize,
    /// How long a request waits for a connection when the endpoint is at its limit.
    #[serde(default = "default_checkout_timeout")]
    pub checkout_timeout: HumanDuration,
    /// TCP keep-alive probe interval on upstream sockets; unset disables it.
    #[serde(
        default = "default_tcp_keepalive",
        skip_serializing_if = "Option::is_none"
    )]
    pub tcp_keepalive: Option<HumanDuration>,
    /// A connection older than this (since its connect) is closed when released instead of
    /// reused, so traffic moves to new endpoints behind a load balancer; unset: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_lifetime: Option<HumanDuration>,
    /// A connection that carried this many requests is closed when released; unset: no
    /// limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests_per_connection: Option<u64>,
    /// The most upgraded (WebSocket) connections open at once per endpoint; one more is
    /// refused with 503 `pool_exhausted`. Unset: half of `max_connections_per_endpoint` (rounded up),
    /// so long-lived tunnels cannot take every slot from ordinary requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_upgrades_per_endpoint: Option<usize>,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_idle_per_endpoint: default_max_idle(),
            idle_timeout: default_pool_idle_timeout(),
            max_connections_per_endpoint: default_max_connections_per_endpoint(),
            checkout_timeout: default_checkout_timeout(),
            tcp_keepalive: default_tcp_keepalive(),
            max_lifetime: None,
            max_requests_per_connection: None,
            max_upgrades_per_endpoint: None,
        }
    }
}

fn default_max_idle() -> usize {
    128
}
fn default_pool_idle_timeout() -> HumanDuration {
    HumanDuration::from_secs(60)
}
fn default_max_connections_per_endpoint() -> usize {
    1024
}
fn default_checkout_timeout() -> HumanDuration {
    HumanDuration::from_secs(1)
}
fn default_tcp_keepalive() -> Option<HumanDuration> {
    Some(HumanDuration::from_secs(30))
}

/// The in-process simulated upstream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    /// Address the sim listens on.
    #[schemars(extend("format" = "socket-address"))]
    pub listen: SocketAddr,
}

/// Prometheus metric settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Bucket upper bounds, in seconds, of the request duration histogram.
    #[serde(default = "default_buckets")]
    pub request_duration_buckets: Vec<f64>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            request_duration_buckets: default_buckets(),
        }
    }
}

/// Default request-duration buckets: 0.5 ms to 30 s.
pub fn default_buckets() -> Vec<f64> {
    vec![
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ]
}

/// The debug trace ("breakpoint") settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DebugConfig {
    /// Environment variable holding the token a request must present in `seawall-debug`.
    /// When the variable is unset or empty, no request gets a trace.
    #[serde(default = "default_debug_token_env")]
    pub token_env: String,
}

impl Default for DebugConfig {
    fn default() -> Self {
        Self {
            token_env: default_debug_token_env(),
        }
    }
}

fn default_debug_token_env() -> String {
    "SEAWALL_DEBUG_TOKEN".to_owned()
}

/// Graceful shutdown settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShutdownConfig {
    /// After SIGTERM/SIGINT, in-flight requests get this long to finish.
    #[serde(default = "default_drain_timeout")]
    pub drain_timeout: HumanDuration,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            drain_timeout: default_drain_timeout(),
        }
    }
}

fn default_drain_timeout() -> HumanDuration {
    HumanDuration::from_secs(30)
}
