//! The checks a scenario needs beyond its types: exactly one kind per action and probe,
//! sane rates, unique window names, thresholds that parse and name windows that exist.
//!
//! Every problem is collected, so a scenario is fixed in one round trip.

use std::collections::HashSet;

use super::{RequestSpec, Scenario, parse::Problem};
use crate::{probe::MetricCheck, threshold};

/// Every problem of `scenario`; empty when it can run.
pub fn check(scenario: &Scenario) -> Vec<Problem> {
    let mut out = Vec::new();
    target(scenario, &mut out);
    load(scenario, &mut out);
    let windows = windows(scenario, &mut out);
    actions(scenario, &mut out);
    probes(scenario, &mut out);
    thresholds(scenario, &windows, &mut out);
    out
}

fn problem(path: String, value: Option<String>, message: &str, hint: &str) -> Problem {
    Problem {
        path,
        value,
        message: message.to_owned(),
        hint: (!hint.is_empty()).then(|| hint.to_owned()),
    }
}

fn target(s: &Scenario, out: &mut Vec<Problem>) {
    let t = &s.target;
    let embedded = t.embedded.is_some();
    if embedded && (t.gateway.is_some() || t.admin.is_some()) {
        out.push(problem(
            "target.embedded".into(),
            t.embedded.clone(),
            "`embedded` starts its own gateway, so `gateway` and `admin` cannot be given too",
            "remove `gateway` and `admin`, or `embedded`",
        ));
    }
    if !embedded && t.gateway.is_none() {
        out.push(problem(
            "target".into(),
            None,
            "the target has neither `gateway` nor `embedded`",
            "give the gateway's URL (`gateway: http://127.0.0.1:8080`) or a config to start (`embedded: gateway.yaml`)",
        ));
    }
    let needs_admin = s
        .actions
        .iter()
        .any(|a| a.fault.is_some() || a.reload.is_some())
        || s.thresholds
            .iter()
            .any(|t| t.contains("breaker(") || t.contains("metric(") || t.contains("retries"));
    if needs_admin && !embedded && t.admin.is_none() {
        out.push(problem(
            "target".into(),
            None,
            "faults, reloads, breakers and gateway metrics need the admin API, and `target.admin` is not set",
            "add `admin: http://127.0.0.1:9901`",
        ));
    }
    if s.actions.iter().any(|a| a.toxic.is_some()) && t.chaos.is_none() {
        out.push(problem(
            "target".into(),
            None,
            "toxics need a chaos API, and `target.chaos` is not set",
            "add `chaos: http://127.0.0.1:8474` (`seawall chaos` or Toxiproxy)",
        ));
    }
    for (key, url) in [
        ("gateway", &t.gateway),
        ("admin", &t.admin),
        ("chaos", &t.chaos),
    ] {
        if let Some(u) = url
            && crate::control::Base::parse(u).is_err()
        {
            out.push(problem(
                format!("target.{key}"),
                Some(u.clone()),
                "not an http:// URL with a host and port",
                "e.g. http://127.0.0.1:8080 (TLS targets are not supported yet)",
            ));
        }
    }
}

fn load(s: &Scenario, out: &mut Vec<Problem>) {
    let l = &s.load;
    if l.phases.is_empty() {
        out.push(problem(
            "load.phases".into(),
            None,
            "the load has no phases",
            "add `- {name: steady, duration: 30s, rate: 100}`",
        ));
    }
    if l.connections == 0 || l.h2_connections == 0 {
        out.push(problem(
            "load.connections".into(),
            Some(l.connections.to_string()),
            "the connection cap must be at least 1",
            "",
        ));
    }
    for (i, p) in l.phases.iter().enumerate() {
        let path = format!("load.phases[{i}]");
        let rates: Vec<f64> = match (p.rate, p.ramp) {
            (Some(r), None) => vec![r],
            (None, Some(r)) => vec![r.from, r.to],
            _ => {
                out.push(problem(
                    path,
                    None,
                    "a phase needs exactly one of `rate` and `ramp`",
                    "e.g. `rate: 100` or `ramp: {from: 10, to: 100}`",
                ));
                continue;
            }
        };
        if rates
            .iter()
            .any(|r| !r.is_finite() || *r < 0.0 || *r > 1_000_000.0)
        {
            out.push(problem(
                path.clone(),
                Some(format!("{rates:?}")),
                "a rate must be between 0 and 1000000 requests per second",
                "",
            ));
        }
        if p.duration.get().is_zero() {
            out.push(problem(
                format!("{path}.duration"),
                Some(p.duration.to_string()),
                "a phase must last longer than 0s",
                "",
            ));
        }
    }
    let empty = |mix: &[RequestSpec]| mix.iter().all(|r| r.weight == 0);
    for (i, p) in l.phases.iter().enumerate() {
        if empty(p.requests.as_deref().unwrap_or(&l.requests)) {
            out.push(problem(
                format!("load.phases[{i}]"),
                Some(p.name.clone()),
                "the phase has no requests to send: `load.requests` (or its own `requests`) is empty or every weight is 0",
                "add `requests: [{path: /}]` under `load`",
            ));
        }
    }
    let mixes = std::iter::once(("load.requests".to_owned(), &l.requests)).chain(
        l.phases.iter().enumerate().filter_map(|(i, p)| {
            p.requests
                .as_ref()
                .map(|r| (format!("load.phases[{i}].requests"), r))
        }),
    );
    for (at, mix) in mixes {
        mix_problems(&at, mix, out);
    }
}

fn mix_problems(at: &str, mix: &[RequestSpec], out: &mut Vec<Problem>) {
    for (i, r) in mix.iter().enumerate() {
        if http::Method::from_bytes(r.method.as_bytes()).is_err() {
            out.push(problem(
                format!("{at}[{i}].method"),
                Some(r.method.clone()),
                "not an HTTP method",
                "e.g. GET, POST",
            ));
        }
        if !r.path.starts_with('/') || http::uri::PathAndQuery::try_from(r.path.as_str()).is_err() {
            out.push(problem(
                format!("{at}[{i}].path"),
                Some(r.path.clone()),
                "not a path",
                "start it with `/`, e.g. /api/items",
            ));
        }
        for (k, v) in &r.headers {
            if http::HeaderName::try_from(k.as_str()).is_err()
                || http::HeaderValue::try_from(v.as_str()).is_err()
            {
                out.push(problem(
                    format!("{at}[{i}].headers.{k}"),
                    Some(v.clone()),
                    "not a valid header",
                    "",
                ));
            }
        }
    }
}

/// The window names (phases, then actions), reporting duplicates.
fn windows(s: &Scenario, out: &mut Vec<Problem>) -> HashSet<String> {
    let mut seen = HashSet::new();
    let names = s
        .load
        .phases
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("load.phases[{i}].name"), &p.name))
        .chain(
            s.actions
                .iter()
                .enumerate()
                .map(|(i, a)| (format!("actions[{i}].name"), &a.name)),
        );
    for (path, name) in names {
        if name == "overall" || !seen.insert(name.clone()) {
            out.push(problem(path, Some(name.clone()), "phase and action names must be unique (and not `overall`): thresholds refer to them", "rename one of them"));
        }
    }
    seen
}

fn actions(s: &Scenario, out: &mut Vec<Problem>) {
    let total = s.duration();
    for (i, a) in s.actions.iter().enumerate() {
        let kinds = [a.fault.is_some(), a.toxic.is_some(), a.reload.is_some()];
        if kinds.iter().filter(|k| **k).count() != 1 {
            out.push(problem(
                format!("actions[{i}]"),
                Some(a.name.clone()),
                "an action needs exactly one of `fault`, `toxic` and `reload`",
                "",
            ));
        }
        if a.at.get() >= total && !total.is_zero() {
            out.push(problem(
                format!("actions[{i}].at"),
                Some(a.at.to_string()),
                "the action starts after the load has ended",
                &format!("the load lasts {}", humantime::format_duration(total)),
            ));
        }
        if let Some(f) = &a.fault
            && !f.spec.is_object()
        {
            out.push(problem(
                format!("actions[{i}].fault.spec"),
                None,
                "a fault's `spec` is a mapping (the body of PUT /faults/{name})",
                "e.g. `{route: api, percentage: 100, delay: {fixed: 2s}}`",
            ));
        }
        if let Some(t) = &a.toxic
            && !(0.0..=1.0).contains(&t.toxicity)
        {
            out.push(problem(
                format!("actions[{i}].toxic.toxicity"),
                Some(t.toxicity.to_string()),
                "toxicity is a share between 0 and 1",
                "",
            ));
        }
    }
}

fn probes(s: &Scenario, out: &mut Vec<Problem>) {
    let st = &s.steady_state;
    let all = [
        ("before", &st.before),
        ("during", &st.during),
        ("after", &st.after),
    ];
    for (when, list) in all {
        for (i, p) in list.iter().enumerate() {
            let path = format!("steady_state.{when}[{i}]");
            match (&p.http, &p.metric) {
                (Some(h), None) if !h.path.starts_with('/') => out.push(problem(
                    format!("{path}.http.path"),
                    Some(h.path.clone()),
                    "not a path",
                    "start it with `/`",
                )),
                (Some(_), None) => {}
                (None, Some(m)) => {
                    if let Err(e) = MetricCheck::parse(m) {
                        out.push(problem(
                            format!("{path}.metric"),
                            Some(m.clone()),
                            &e.message,
                            &e.hint,
                        ));
                    }
                }
                _ => out.push(problem(
                    path,
                    None,
                    "a probe needs exactly one of `http` and `metric`",
                    "",
                )),
            }
        }
    }
}

fn thresholds(s: &Scenario, windows: &HashSet<String>, out: &mut Vec<Problem>) {
    for (i, text) in s.thresholds.iter().enumerate() {
        let path = format!("thresholds[{i}]");
        match threshold::parse::parse(text) {
            Ok(rule) => {
                for w in rule.windows() {
                    if !windows.contains(w) {
                        let mut known: Vec<&str> = windows.iter().map(String::as_str).collect();
                        known.sort_unstable();
                        out.push(problem(
                            path.clone(),
                            Some(text.clone()),
                            &format!("unknown window `{w}`"),
                            &format!(
                                "windows are the phase and action names: {}",
                                known.join(", ")
                            ),
                        ));
                    }
                }
            }
            Err(e) => out.push(Problem {
                path,
                value: Some(text.clone()),
                message: format!("{} (at character {})", e.message, e.at),
                hint: Some(e.hint),
            }),
        }
    }
}
