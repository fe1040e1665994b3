//! The admin API's `/metrics`, `/healthz` and `/readyz`. After real traffic (a success, a
//! 404 and a 504) the exposition must parse under a strict line checker (HELP/TYPE lines,
//! valid names and labels, float values, every sample belonging to a TYPEd family) and
//! contain the documented families with the expected labels and counts.

mod support;

use std::collections::{HashMap, HashSet};

use http::Method;
use http_body_util::Full;
use support::*;

fn is_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

fn is_value(s: &str) -> bool {
    matches!(s, "+Inf" | "-Inf" | "NaN") || s.parse::<f64>().is_ok()
}

/// Parses `{a="x",b="y"}` strictly; returns the pairs.
fn parse_labels(s: &str) -> Result<Vec<(String, String)>, String> {
    let inner = s
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .ok_or("labels not in braces")?;
    let mut out = Vec::new();
    let mut rest = inner;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").ok_or("label without =\"")?;
        if !is_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        // Scan the quoted value, honouring \\ \" \n escapes.
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    Some((_, 'n')) => value.push('\n'),
                    _ => return Err("bad escape".into()),
                },
                Some((_, c)) => value.push(c),
            }
        };
        out.push((name.to_owned(), value));
        rest = &after[end + 1..];
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else if !rest.is_empty() {
            return Err(format!("junk after label value: {rest:?}"));
        }
    }
    Ok(out)
}

/// A strict checker for the Prometheus / OpenMetrics text format as served. Returns the
/// families by name with their type.
fn check_exposition(text: &str) -> Result<HashMap<String, String>, String> {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helped: HashSet<String> = HashSet::new();
    let mut samples = 0;
    let lines: Vec<&str> = text.lines().collect();
    for (n, line) in lines.iter().enumerate() {
        let err = |m: String| format!("line {}: {m}: {line:?}", n + 1);
        if *line == "# EOF" {
            if n + 1 != lines.len() {
                return Err(err("# EOF before the end".into()));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, _help) = rest
                .split_once(' ')
                .ok_or_else(|| err("HELP without text".into()))?;
            if !is_name(name) || !helped.insert(name.to_owned()) {
                return Err(err("bad or repeated HELP".into()));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest
                .split_once(' ')
                .ok_or_else(|| err("TYPE without type".into()))?;
            let known = [
                "counter",
                "gauge",
                "histogram",
                "summary",
                "unknown",
                "info",
                "stateset",
                "gaugehistogram",
            ];
            if !is_name(name) || !known.contains(&ty) {
                return Err(err("bad TYPE".into()));
            }
            if types.insert(name.to_owned(), ty.to_owned()).is_some() {
                return Err(err("repeated TYPE".into()));
            }
            continue;
        }
        if line.starts_with('#') {
            if line.starts_with("# UNIT ") {
                continue;
            }
            return Err(err("unknown comment line".into()));
        }
        if line.is_empty() {
            return Err(err("empty line".into()));
        }
        // A sample: name[{labels}] value [timestamp]
        let (series, value) = match line.find('{') {
            Some(open) => {
                let close = line
                    .rfind('}')
                    .ok_or_else(|| err("unclosed labels".into()))?;
                parse_labels(&line[open..=close]).map_err(err)?;
                (&line[..open], line[close + 1..].trim_start())
            }
            None => line
                .split_once(' ')
                .ok_or_else(|| err("sample without value".into()))?,
        };
        if !is_name(series) {
            return Err(err("bad metric name".into()));
        }
        let mut parts = value.split(' ');
        let v = parts.next().unwrap_or("");
        if !is_value(v) {
            return Err(err(format!("bad value {v:?}")));
        }
        let timestamp = parts.next();
        if timestamp.is_some_and(|t| t.parse::<f64>().is_err()) || parts.next().is_some() {
            return Err(err("bad timestamp".into()));
        }
        // Every sample belongs to a family declared by a TYPE line.
        let family = types.iter().find(|(f, ty)| {
            let suffixes: &[&str] = match ty.as_str() {
                "counter" => &["_total", "_created"],
                "histogram" | "gaugehistogram" => {
                    &["_bucket", "_sum", "_count", "_created", "_gcount", "_gsum"]
                }
                "summary" => &["_sum", "_count", "_created", ""],
                "info" => &["_info"],
                _ => &[""],
            };
            suffixes.iter().any(|s| series == format!("{f}{s}"))
        });
        if family.is_none() {
            return Err(err("sample of a family without TYPE".into()));
        }
        samples += 1;
    }
    if samples == 0 {
        return Err("no samples".into());
    }
    Ok(types)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_strictly_and_cover_requests_errors_pool_and_reloads() {
    let sim = sim().await;
    let yaml = config(
        &[],
        &[route("r", "test.local", "/", "up", "10s", "access_log")],
        &[upstream("up", &[sim.local_addr()], "", "")],
    );
    let g = start(&yaml).await;
    // Success, 404 (another host), 504 (inbound deadline shorter than the delay).
    for _ in 0..3 {
        assert_eq!(get(g.addr, "/").await.status, 200);
    }
    let r = send(
        g.addr,
        http::Request::get("/")
            .header("host", "elsewhere.test")
            .body(Full::default())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 404);
    let r = send(
        g.addr,
        req(Method::GET, "/delay/2s")
            .header("seawall-timeout-ms", "200")
            .body(Full::default())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 504);
    // A reload (applied in code) that changes something.
    let changed =
        seawall_config::parse("changed.yaml", &yaml.replace("timeout: 10s", "timeout: 9s"))
            .unwrap();
    assert_eq!(g.gw.apply(changed).await, Ok(2));

    let text = metrics_text(g.admin).await;
    if std::env::var_os("SHOW_METRICS").is_some() {
        println!("{text}");
    }
    let families = check_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    for (family, ty) in [
        ("seawall_request_duration_seconds", "histogram"),
        ("seawall_errors", "counter"),
        ("seawall_upstream_connect_duration_seconds", "histogram"),
        ("seawall_upstream_connections_idle", "gauge"),
        ("seawall_upstream_connections_in_use", "gauge"),
        ("seawall_upstream_connections_opened", "counter"),
        ("seawall_upstream_connections_closed", "counter"),
        ("seawall_upstream_requests", "counter"),
        ("seawall_config_reloads", "counter"),
    ] {
        assert_eq!(
            families.get(family).map(String::as_str),
            Some(ty),
            "{family}\n{text}"
        );
    }
    let m = |name: &str, labels: &[(&str, &str)]| metric(&text, name, labels);
    let ok = [("route", "r"), ("method", "GET"), ("status_class", "2xx")];
    assert_eq!(
        m("seawall_request_duration_seconds_count", &ok),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        m(
            "seawall_request_duration_seconds_bucket",
            &[ok[0], ok[1], ok[2], ("le", "+Inf")]
        ),
        Some(3.0)
    );
    assert_eq!(
        m(
            "seawall_request_duration_seconds_count",
            &[("route", "r"), ("status_class", "5xx")]
        ),
        Some(1.0)
    );
    assert_eq!(
        m(
            "seawall_request_duration_seconds_count",
            &[("route", "public/unmatched"), ("status_class", "4xx")]
        ),
        Some(1.0)
    );
    assert_eq!(
        m(
            "seawall_errors_total",
            &[("route", "public/unmatched"), ("kind", "no_route")]
        ),
        Some(1.0)
    );
    assert_eq!(
        m(
            "seawall_errors_total",
            &[("route", "r"), ("kind", "deadline_exceeded")]
        ),
        Some(1.0)
    );
    assert!(
        m(
            "seawall_upstream_connect_duration_seconds_count",
            &[("upstream", "up")]
        )
        .is_some_and(|n| n >= 1.0)
    );
    assert!(m("seawall_upstream_connections_idle", &[("upstream", "up")]).is_some());
    assert_eq!(
        m("seawall_upstream_connections_in_use", &[("upstream", "up")]),
        Some(0.0)
    );
    let opened = m(
        "seawall_upstream_connections_opened_total",
        &[("upstream", "up")],
    )
    .unwrap_or(0.0);
    assert!(opened >= 1.0, "{text}");
    // The 504 abandoned its exchange, which closed that connection.
    assert!(
        m(
            "seawall_upstream_connections_closed_total",
            &[("upstream", "up")]
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    let sent = m("seawall_upstream_requests_total", &[("upstream", "up")]).unwrap_or(0.0);
    assert_eq!(sent, 4.0, "{text}");
    assert_eq!(
        m("seawall_config_reloads_total", &[("outcome", "success")]),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness_answer_200() {
    let sim = sim().await;
    let yaml = config(
        &[],
        &[route("r", "*", "/", "up", "10s", "")],
        &[upstream("up", &[sim.local_addr()], "", "")],
    );
    let g = start(&yaml).await;
    assert_eq!(admin_get(g.admin, "/healthz").await.status, 200);
    assert_eq!(admin_get(g.admin, "/readyz").await.status, 200);
    let m = admin_get(g.admin, "/metrics").await;
    assert!(
        m.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain")),
        "{m:?}"
    );
}

#[test]
fn the_exposition_checker_rejects_malformed_text() {
    let good = "# HELP a_b Help.\n# TYPE a_b counter\na_b_total{x=\"1\"} 2\n# EOF\n";
    assert!(check_exposition(good).is_ok());
    for bad in [
        "a_b_total 1\n",                                       // no TYPE
        "# TYPE a_b counter\na_b_total{x=1} 2\n",              // unquoted label
        "# TYPE a_b counter\na_b_total{1x=\"1\"} 2\n",         // bad label name
        "# TYPE a_b counter\na_b_total two\n",                 // bad value
        "# TYPE a_b counter\na-b_total 1\n",                   // bad name
        "# TYPE a_b counter\n# TYPE a_b gauge\na_b_total 1\n", // repeated TYPE
        "# TYPE a_b counter\na_b_total{x=\"1\"} 2\n# EOF\nmore 1\n",
    ] {
        assert!(check_exposition(bad).is_err(), "accepted: {bad:?}");
    }
}
