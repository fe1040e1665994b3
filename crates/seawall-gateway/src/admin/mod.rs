//! The admin API, on its own listener: `/metrics`, `/healthz`, `/readyz`, `/config`,
//! `/upstreams` (pool, balancer and outlier state per endpoint, and for a `host:port`
//! endpoint its last DNS answer and each address, active or draining; bulkhead and retry
//! budget; whether it speaks TLS, its connection reuse and TLS resumption ratios),
//! `/breakers` (each upstream's circuit breaker and its window), `POST /reload`, the
//! fault endpoints `GET /faults`, `PUT /faults/{name}`, `DELETE /faults/{name}`
//! ([`faults`]), and the resilience events as server-sent events, `GET /events`
//! ([`events`]).
//!
//! Security by default: the admin listener must be loopback unless a bearer token is
//! configured (the process refuses to start otherwise); `/config`, `/events` and `POST /reload` need
//! the token whenever one is set, and `POST /reload` is refused when none is set, so a
//! gateway started without a token cannot be reconfigured over HTTP. `/config` is always
//! redacted (URL passwords, values of secret-named keys), token or not: without a token it
//! answers any local process, and with one it still ends up in tickets and screenshots.

mod events;
mod faults;

use std::{net::SocketAddr, sync::Arc};

use anyhow::{Context as _, bail};
use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use seawall_config::AdminConfig;
use serde_json::json;

use seawall_pool::EndpointSnapshot;

use crate::{
    exposition, gateway::Inner, middleware::debug::token_matches, runtime::Upstream,
    upstream_pool::EntrySnapshot,
};

struct AdminState {
    inner: Arc<Inner>,
    token: Option<Vec<u8>>,
    token_env: String,
}

/// Reads the admin token and refuses an exposed admin API without one. Called before the
/// gateway binds anything, so a refused start leaves nothing listening.
pub fn token(config: &AdminConfig) -> anyhow::Result<Option<Vec<u8>>> {
    let token = std::env::var(&config.token_env)
        .ok()
        .filter(|t| !t.is_empty())
        .map(String::into_bytes);
    if !config.listen.ip().is_loopback() && token.is_none() {
        bail!(
            "admin.listen {} is not a loopback address and ${} is empty; set a token in ${} or listen on 127.0.0.1",
            config.listen,
            config.token_env,
            config.token_env
        );
    }
    Ok(token)
}

/// Binds and serves the admin API; returns its bound address.
pub async fn start(
    inner: Arc<Inner>,
    config: &AdminConfig,
    token: Option<Vec<u8>>,
) -> anyhow::Result<Option<SocketAddr>> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {} (admin)", config.listen))?;
    let addr = listener.local_addr()?;
    // Not the traffic shutdown signal: /readyz must keep answering `503 draining` while
    // in-flight requests drain, so the admin API stops only after the drain.
    let shutdown = inner.admin_stop.clone();
    let state = Arc::new(AdminState {
        inner,
        token,
        token_env: config.token_env.clone(),
    });
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/config", get(config_view))
        .route("/upstreams", get(upstreams))
        .route("/breakers", get(breakers))
        .route("/reload", post(reload))
        .route("/events", get(events::stream))
        .route("/faults", get(faults::list))
        .route("/faults/{name}", put(faults::put).delete(faults::delete))
        .with_state(state);
    tokio::spawn(async move {
        let serve = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await });
        if let Err(error) = serve.await {
            tracing::error!(%error, "Admin API stopped.");
        }
    });
    tracing::info!(address = %addr, "Admin API listening.");
    Ok(Some(addr))
}

/// OpenMetrics when the scraper's `Accept` prefers it (Prometheus does), else the
/// Prometheus text format 0.0.4 (see [`exposition`]).
async fn metrics(State(s): State<Arc<AdminState>>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let body = s.inner.shared.metrics.encode();
    if exposition::wants_openmetrics(accept) {
        ([(header::CONTENT_TYPE, exposition::OPENMETRICS)], body).into_response()
    } else {
        let text = exposition::to_prometheus_text(&body);
        ([(header::CONTENT_TYPE, exposition::PROMETHEUS_TEXT)], text).into_response()
    }
}

async fn readyz(State(s): State<Arc<AdminState>>) -> Response {
    if s.inner.draining.load(std::sync::atomic::Ordering::Acquire) {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else {
        "ready\n".into_response()
    }
}

/// Checks the bearer token. `required_even_without_token`: refuse when no token is set.
// The error is the ready-made refusal response, built at most once per admin request;
// boxing it would only add an allocation.
#[allow(clippy::result_large_err)]
fn authorize(
    s: &AdminState,
    headers: &HeaderMap,
    required_even_without_token: bool,
) -> Result<(), Response> {
    let Some(expected) = &s.token else {
        if required_even_without_token {
            let msg = format!(
                "this endpoint needs a bearer token; start the gateway with ${} set\n",
                s.token_env
            );
            return Err((StatusCode::FORBIDDEN, msg).into_response());
        }
        return Ok(());
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::as_bytes);
    match presented {
        Some(p) if token_matches(p, expected) => Ok(()),
        _ => Err((
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "missing or wrong bearer token\n",
        )
            .into_response()),
    }
}

async fn config_view(State(s): State<Arc<AdminState>>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&s, &headers, false) {
        return r;
    }
    let rt = s.inner.runtime.load_full();
    let last_error = s
        .inner
        .last_reload_error
        .lock()
        .ok()
        .and_then(|e| e.clone());
    // Tokens are referenced by environment variable name only, but the config can still
    // hold secrets (a Redis URL's password, an injected `authorization` header): the whole
    // view goes through the generic redaction pass, with or without an admin token.
    let mut view = json!({
        "generation": rt.generation,
        "config_path": s.inner.config_path.as_ref().map(|p| p.display().to_string()),
        "last_reload_error": last_error,
        "config": &*rt.config,
    });
    seawall_config::redact::json(&mut view);
    Json(view).into_response()
}

async fn upstreams(State(s): State<Arc<AdminState>>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&s, &headers, false) {
        return r;
    }
    let rt = s.inner.runtime.load_full();
    let upstreams: Vec<_> = rt.upstreams.values().map(|u| upstream_view(u)).collect();
    Json(json!({ "generation": rt.generation, "upstreams": upstreams })).into_response()
}

fn upstream_view(u: &Upstream) -> serde_json::Value {
    let (load, outlier) = u.picker.snapshot();
    let health = u.health.as_ref().map(|h| h.snapshot());
    let endpoints: Vec<_> = u
        .pool
        .snapshot()
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let mut v = entry_view(e);
            v["endpoint"] = json!(u.config.endpoints.get(i).map(|e| e.trim()));
            if let Some(l) = load.as_ref().and_then(|l| l.get(i)) {
                v["rtt_estimate_ms"] = json!(l.rtt_estimate.as_secs_f64() * 1e3);
                v["pending"] = json!(l.pending);
                // The balancer's cost is in seconds (estimate × (pending + 1)); shown in
                // milliseconds like the estimate next to it.
                v["cost_ms"] = json!(l.cost * 1e3);
                v["picks"] = json!(l.picks);
            }
            if let Some(o) = outlier.as_ref().and_then(|o| o.endpoints.get(i)) {
                let ejected = o.ejection_left.is_some();
                v["state"] = json!(if ejected { "ejected" } else { "active" });
                v["consecutive_failures"] = json!(o.consecutive_failures);
                v["times_ejected"] = json!(o.times_ejected);
                v["ejection_left_ms"] = json!(o.ejection_left.map(|d| d.as_millis() as u64));
            }
            if let Some(h) = health.as_ref().and_then(|h| h.get(i)) {
                v["health"] = json!(h.health.as_str());
                v["health_streak"] = json!(h.streak);
                v["health_probes"] = json!(h.probes);
                v["health_failures"] = json!(h.failures);
            }
            v
        })
        .collect();
    let budget = u.budget.snapshot();
    let c = &u.counters;
    let (reused, fresh) = (c.reused.get(), c.fresh.get());
    let (full, resumed) = (c.handshakes_full.get(), c.handshakes_resumed.get());
    let mut v = json!({
        "name": u.name,
        "balancer": u.config.balancer.as_str(),
        "tls": u.tls.is_some(),
        // Since the process started (the counters outlive reloads); null before the
        // first request or handshake.
        "connection_reuse_ratio": ratio(reused, reused + fresh),
        "tls_resumption_ratio": ratio(resumed, full + resumed),
        "endpoints": endpoints,
        "retry_budget": {
            "requests": budget.requests,
            "retries": budget.retries,
            "available": budget.available,
            "withdrawn_total": budget.withdrawn_total,
            "refused_total": budget.refused_total,
        },
    });
    if let Some(b) = &u.bulkhead {
        let b = b.snapshot();
        v["concurrency"] = json!({
            "active": b.active,
            "pending": b.pending,
            "max_concurrent": b.max_concurrent,
            "max_pending": b.max_pending,
        });
    }
    if let Some(o) = &outlier {
        v["outlier"] = json!({
            "ejected": o.ejected,
            "max_ejected": o.max_ejected,
            "ejections_total": o.ejections_total,
            "skipped_total": o.skipped_total,
        });
    }
    v
}

/// Pool counts as the admin API shows them.
fn counts_view(address: SocketAddr, state: &str, e: &EndpointSnapshot) -> serde_json::Value {
    json!({
        "address": address.to_string(),
        "state": state,
        "idle": e.idle,
        "in_use": e.in_use,
        "connecting": e.connecting,
        "open": e.open,
        // HTTP/2 streams in flight on those connections (0 for HTTP/1.1).
        "streams": e.streams,
    })
}

/// One configured endpoint: an `ip:port` one's pool counts; for a `host:port` one, its
/// DNS state, each address (active or draining) with its counts, and their sums.
fn entry_view(entry: EntrySnapshot) -> serde_json::Value {
    let dns = match entry {
        EntrySnapshot::Ip(e) => return counts_view(e.addr, "active", &e),
        EntrySnapshot::Name(dns) => dns,
    };
    let mut total = [0usize; 5];
    let addresses: Vec<_> = dns
        .addresses
        .iter()
        .map(|a| {
            let e = &a.pool;
            for (sum, n) in
                total
                    .iter_mut()
                    .zip([e.idle, e.in_use, e.connecting, e.open, e.streams])
            {
                *sum += n;
            }
            counts_view(e.addr, a.state.as_str(), e)
        })
        .collect();
    // One name per entry (the config gives one per endpoint).
    let name = dns.names.first();
    let secs = |d: Option<std::time::Duration>| d.map(|d| d.as_secs_f64());
    json!({
        "name": name.map(|n| n.name.to_string()),
        "state": "active",
        "idle": total[0],
        "in_use": total[1],
        "connecting": total[2],
        "open": total[3],
        "streams": total[4],
        "dns": {
            "answer": name.map_or_else(Vec::new, |n| n.answer.iter().map(ToString::to_string).collect()),
            "age_seconds": secs(name.and_then(|n| n.age)),
            // The TTL the gateway goes by (clamped to dns.min_ttl..dns.max_ttl), and the
            // one the answer carried.
            "ttl_seconds": secs(name.and_then(|n| n.ttl_used)),
            "answer_ttl_seconds": secs(name.and_then(|n| n.ttl)),
            "lookup_failures": name.map_or(0, |n| n.failures),
            "last_error": name.and_then(|n| n.last_error.clone()),
        },
        "addresses": addresses,
    })
}

/// `part / all`, or `None` when nothing was counted yet.
fn ratio(part: u64, all: u64) -> Option<f64> {
    (all > 0).then(|| part as f64 / all as f64)
}

async fn breakers(State(s): State<Arc<AdminState>>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&s, &headers, false) {
        return r;
    }
    let rt = s.inner.runtime.load_full();
    let now = tokio::time::Instant::now();
    let breakers: Vec<_> = rt
        .upstreams
        .values()
        .filter_map(|u| Some((u, u.breaker.as_ref()?)))
        .map(|(u, b)| {
            let snap = b.snapshot();
            let c = snap.counters;
            let transitions: Vec<_> = snap
                .recent_transitions
                .iter()
                .map(|t| {
                    json!({
                        "from": t.from.as_str(),
                        "to": t.to.as_str(),
                        "cause": t.cause.as_str(),
                        "ago_ms": now.saturating_duration_since(t.at).as_millis() as u64,
                    })
                })
                .collect();
            json!({
                "upstream": u.name,
                "state": snap.state.as_str(),
                "window": {
                    "calls": snap.window.calls,
                    "failures": snap.window.failures,
                    "slow_calls": snap.window.slow_calls,
                    "failure_ratio": snap.window.failure_ratio(),
                    "slow_call_ratio": snap.window.slow_call_ratio(),
                },
                "consecutive_trips": snap.consecutive_trips,
                "retry_after_ms": snap.retry_after.map(|d| d.as_millis() as u64),
                "probes_in_flight": snap.probes_in_flight,
                "counters": {
                    "admitted": c.admitted,
                    "rejected": c.rejected,
                    "successes": c.successes,
                    "failures": c.failures,
                    "slow_calls": c.slow_calls,
                    "stale_outcomes": c.stale_outcomes,
                    "released": c.released,
                    "transitions": c.transitions,
                },
                "recent_transitions": transitions,
            })
        })
        .collect();
    Json(json!({ "generation": rt.generation, "breakers": breakers })).into_response()
}

async fn reload(State(s): State<Arc<AdminState>>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&s, &headers, true) {
        return r;
    }
    match s.inner.reload().await {
        Ok(generation) => Json(json!({ "status": "ok", "generation": generation })).into_response(),
        Err(error) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "status": "error", "error": error, "generation": s.inner.runtime.load().generation })),
        )
            .into_response(),
    }
}
