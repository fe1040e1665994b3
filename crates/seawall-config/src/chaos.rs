//! The `chaos:` section: fault proxies (`seawall chaos`, Toxiproxy-compatible) started by
//! `seawall run` beside the gateway and the sim, for demos and drills in one process.
//!
//! The section mirrors a `seawall chaos --config` populate file: each proxy has a name, a
//! listen address, an upstream, an optional `protocol` and the toxics it starts with. The
//! proxies' API (Toxiproxy's, no token) listens on `listen`, loopback unless
//! `allow_remote` says otherwise. The section is read at start; a reload leaves the
//! running proxies alone (they are changed through their API).

use std::{collections::BTreeMap, net::SocketAddr};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Every toxic type the chaos proxies know, TCP ones first; must match `seawall-chaos`
/// (a test in `crates/seawall` holds them together).
pub const CHAOS_TOXIC_TYPES: &[&str] = &[
    "latency",
    "bandwidth",
    "slow_close",
    "timeout",
    "reset_peer",
    "slicer",
    "limit_data",
    "limit_time",
    "drop_data",
    "noop",
    "http_status",
    "http_delay",
    "http_reset",
];

/// The toxic types that act per request, on `protocol: http` proxies only.
pub const CHAOS_HTTP_TOXIC_TYPES: &[&str] = &["http_status", "http_delay", "http_reset"];

/// Fault proxies started with the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChaosConfig {
    /// Address of the proxies' Toxiproxy-compatible API (default 127.0.0.1:8474).
    #[serde(default = "default_chaos_listen")]
    #[schemars(extend("format" = "socket-address"))]
    pub listen: SocketAddr,
    /// Let the API listen on a non-loopback address. It has no token: anyone who reaches
    /// it can cut every proxied connection.
    #[serde(default)]
    pub allow_remote: bool,
    /// Seeds every toxicity draw and jitter, so a demo repeats; absent: random.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The proxies, created at start.
    #[serde(default)]
    pub proxies: Vec<ChaosProxyConfig>,
}

fn default_chaos_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8474))
}

/// One fault proxy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChaosProxyConfig {
    /// Unique among the proxies; the name the API knows it by.
    pub name: String,
    /// Address it accepts connections on.
    #[schemars(extend("format" = "socket-address"))]
    pub listen: SocketAddr,
    /// `host:port` it forwards each connection to.
    pub upstream: String,
    /// `tcp` (bytes, the default) or `http` (HTTP/1.1 requests, per-request toxics).
    #[serde(default)]
    pub protocol: ChaosProtocol,
    /// Whether it accepts connections at start (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Toxics it starts with, in order.
    #[serde(default)]
    pub toxics: Vec<ChaosToxicConfig>,
}

fn default_true() -> bool {
    true
}

/// What a chaos proxy carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChaosProtocol {
    /// Bytes; the TCP toxics.
    #[default]
    Tcp,
    /// HTTP/1.1; the per-request toxics (`http_status`, `http_delay`, `http_reset`).
    Http,
}

/// The direction a toxic acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChaosStream {
    /// Client to server.
    Upstream,
    /// Server to client (the default).
    Downstream,
}

/// One toxic, as the chaos API takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChaosToxicConfig {
    /// The toxic type: `latency`, `bandwidth`, `http_status`, ... (docs/chaos.md).
    #[serde(rename = "type")]
    pub kind: String,
    /// Unique within its proxy; default `<type>_<stream>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Default `downstream`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<ChaosStream>,
    /// The chance, 0 to 1, that it acts (per connection, or per request on http
    /// proxies); default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toxicity: Option<f64>,
    /// The type's attributes, Toxiproxy's names and units (milliseconds, KB/s).
    #[serde(default)]
    pub attributes: BTreeMap<String, serde_json::Value>,
}
