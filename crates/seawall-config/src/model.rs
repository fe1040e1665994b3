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
        BalancerKind, BreakerConfig, ConcurrencyConfig, FallbackConfig, OutlierConfig,
        RetryBudgetConfig, RetryConfig,
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
    /// Routes, matched by host then longest path prefix.
    pub routes: Vec<RouteConfig>,
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
    /// `ip:port` endpoints; `balancer` picks one per try.
    pub endpoints: Vec<String>,
    /// Per-phase timeouts of each attempt.
    #[serde(default)]
    pub timeouts: UpstreamTimeouts,
    /// The connection pool kept per endpoint.
    #[serde(default)]
    pub pool: PoolConfig,
    /// TLS to the upstream (HTTPS, HTTP/1.1 inside); off unless set, and then every
    /// connection to every endpoint starts with a TLS handshake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<UpstreamTlsConfig>,
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
    /// Protocols offered by ALPN. The pool speaks HTTP/1.1 only; an empty list sends no
    /// ALPN extension.
    #[serde(default = "default_upstream_alpn")]
    pub alpn: Vec<AlpnProtocol>,
}

fn default_upstream_alpn() -> Vec<AlpnProtocol> {
    vec![AlpnProtocol::Http11]
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
}

impl Default for UpstreamTimeouts {
    fn default() -> Self {
        Self {
            connect: default_connect_timeout(),
            tls_handshake: default_upstream_tls_handshake(),
            response_header: None,
        }
    }
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
