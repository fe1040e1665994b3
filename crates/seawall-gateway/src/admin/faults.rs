//! The admin API's fault endpoints:
//!
//! - `GET /faults`: every fault rule and where it acts — the routes' `fault` layers and
//!   the upstreams' `faults` (source `config`), and the runtime faults (source `runtime`,
//!   with the `ttl` left) — with how many requests or tries each faulted;
//! - `PUT /faults/{name}`: sets (or replaces) runtime fault `name`. The body is one rule
//!   (the keys of a config rule) plus `route: NAME` or `upstream: NAME` (with an optional
//!   `endpoint`) and an optional `ttl`, checked by the config's own validator against the
//!   running config: 400 with every problem, each naming its key;
//! - `DELETE /faults/{name}`: removes runtime fault `name` (404 when there is none).
//!
//! `PUT` and `DELETE` need the bearer token exactly like `POST /reload` (refused with 403
//! when the gateway has none); `GET` needs it when one is set, like `/config`.

use std::sync::Arc;

use axum::{
    Json,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use seawall_config::{Problem, RuntimeFault, validate_runtime_fault};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{AdminState, authorize};
use crate::faults::{
    registry::{Entry, PutError},
    rule::{Place, Rule},
};

/// `GET /faults`.
pub(super) async fn list(State(s): State<Arc<AdminState>>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&s, &headers, false) {
        return r;
    }
    let rt = s.inner.runtime.load_full();
    let table = s.inner.shared.faults.table();
    let now = Instant::now();
    let mut faults: Vec<Value> = Vec::new();
    for l in &rt.listeners {
        for (route, rule) in &l.layer_faults {
            faults.push(view(
                &rule_view(rule),
                "config",
                &Place::Route(route.clone()),
            ));
        }
    }
    for e in &table.config {
        faults.push(entry_view(e, "config", now));
    }
    for e in &table.runtime {
        faults.push(entry_view(e, "runtime", now));
    }
    // A rule's header match may hold a credential, like any config value.
    let mut view = json!({ "faults": faults });
    seawall_config::redact::json(&mut view);
    Json(view).into_response()
}

fn rule_view(rule: &Rule) -> Value {
    json!({ "name": rule.name, "injected": rule.injected(), "active": rule.in_window() })
}

fn view(base: &Value, source: &str, place: &Place) -> Value {
    let mut v = base.clone();
    v["source"] = json!(source);
    v["scope"] = json!(place.scope());
    v["target"] = json!(place.target());
    v
}

fn entry_view(e: &Entry, source: &str, now: Instant) -> Value {
    let mut v = view(&rule_view(&e.rule), source, &e.place);
    if let Some(spec) = &e.spec {
        v["rule"] = serde_json::to_value(&spec.rule).unwrap_or(Value::Null);
        v["endpoint"] = json!(spec.rule.endpoint);
        v["ttl"] = json!(spec.ttl.map(|t| t.to_string()));
    }
    if let Some(expires) = e.expires {
        let left = expires.saturating_duration_since(now);
        v["ttl_remaining_ms"] = json!(left.as_millis() as u64);
    }
    v
}

/// `PUT /faults/{name}`.
pub(super) async fn put(
    State(s): State<Arc<AdminState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = authorize(&s, &headers, true) {
        return r;
    }
    let fault = match RuntimeFault::from_json(&name, &body) {
        Ok(f) => f,
        Err(error) => return bad_request(&error, &[]),
    };
    let rt = s.inner.runtime.load_full();
    let problems = validate_runtime_fault(&rt.config, &fault);
    if !problems.is_empty() {
        return bad_request("invalid fault", &problems);
    }
    let (scope, target) = match (&fault.route, &fault.upstream) {
        (Some(r), _) => ("route", r.clone()),
        (_, u) => ("upstream", u.clone().unwrap_or_default()),
    };
    let ttl = fault.ttl.map(|t| t.to_string());
    match s.inner.shared.faults.put(fault) {
        Ok(()) => {
            tracing::info!(fault = %name, scope, target = %target, ttl = ?ttl, "Runtime fault set.");
            s.inner
                .shared
                .metrics
                .events
                .publish("fault_on", &name, || {
                    format!(
                        "{scope} {target}{}",
                        ttl.as_ref().map_or(String::new(), |t| format!(", ttl {t}"))
                    )
                });
            Json(json!({ "status": "ok", "name": name, "scope": scope, "target": target }))
                .into_response()
        }
        Err(PutError::Target(e) | PutError::Rule(e)) => bad_request(&e, &[]),
    }
}

/// `DELETE /faults/{name}`.
pub(super) async fn delete(
    State(s): State<Arc<AdminState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorize(&s, &headers, true) {
        return r;
    }
    if s.inner.shared.faults.delete(&name) {
        tracing::info!(fault = %name, "Runtime fault deleted.");
        s.inner
            .shared
            .metrics
            .events
            .publish("fault_off", &name, String::new);
        Json(json!({ "status": "ok", "name": name })).into_response()
    } else {
        let error = format!("no runtime fault `{name}`");
        (
            StatusCode::NOT_FOUND,
            Json(json!({ "status": "error", "error": error })),
        )
            .into_response()
    }
}

fn bad_request(error: &str, problems: &[Problem]) -> Response {
    let problems: Vec<Value> = problems
        .iter()
        .map(|p| {
            json!({
                "key": p.path,
                "value": p.value,
                "message": p.message,
                "hint": p.hint,
            })
        })
        .collect();
    let text = if problems.is_empty() {
        error.to_owned()
    } else {
        format!(
            "{error}: {}",
            problems
                .iter()
                .map(|p| format!(
                    "{}: {}",
                    p["key"].as_str().unwrap_or(""),
                    p["message"].as_str().unwrap_or("")
                ))
                .collect::<Vec<_>>()
                .join("; ")
        )
    };
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "status": "error", "error": text, "problems": problems })),
    )
        .into_response()
}
