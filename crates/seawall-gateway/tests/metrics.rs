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

/// The exposition format a checker holds a text to.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Format {
    /// OpenMetrics 1.0.0: counter families named without `_total`, `# UNIT` allowed,
    /// ending in `# EOF`.
    OpenMetrics,
    /// Prometheus text 0.0.4 as Prometheus's own parser reads it: a sample gets the type
    /// of the TYPE line naming exactly its family (a counter's TYPE names `x_total`), no
    /// OpenMetrics-only lines or types, no `_created`, and a family's samples follow its
    /// TYPE line without another family in between.
    Text004,
}

/// A strict checker for the exposition as served in `format`. Returns the families by
/// name with their type.
fn check_exposition(text: &str, format: Format) -> Result<HashMap<String, String>, String> {
    let om = format == Format::OpenMetrics;
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helped: HashSet<String> = HashSet::new();
    let mut finished: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut samples = 0;
    let lines: Vec<&str> = text.lines().collect();
    if om && lines.last() != Some(&"# EOF") {
        return Err("OpenMetrics without `# EOF` at the end".into());
    }
    for (n, line) in lines.iter().enumerate() {
        let err = |m: String| format!("line {}: {m}: {line:?}", n + 1);
        if *line == "# EOF" {
            if !om {
                return Err(err("`# EOF` in the Prometheus text format".into()));
            }
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
            let known: &[&str] = if om {
                &[
                    "counter",
                    "gauge",
                    "histogram",
                    "summary",
                    "unknown",
                    "info",
                    "stateset",
                    "gaugehistogram",
                ]
            } else {
                &["counter", "gauge", "histogram", "summary", "untyped"]
            };
            if !is_name(name) || !known.contains(&ty) {
                return Err(err("bad TYPE".into()));
            }
            if om && ty == "counter" && name.ends_with("_total") {
                return Err(err("OpenMetrics counter family named with _total".into()));
            }
            if types.insert(name.to_owned(), ty.to_owned()).is_some() {
                return Err(err("repeated TYPE".into()));
            }
            if let Some(prev) = current.replace(name.to_owned()) {
                finished.insert(prev);
            }
            continue;
        }
        if line.starts_with('#') {
            if om && line.starts_with("# UNIT ") {
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
            let suffixes: &[&str] = match (om, ty.as_str()) {
                (true, "counter") => &["_total", "_created"],
                (true, "histogram" | "gaugehistogram") => {
                    &["_bucket", "_sum", "_count", "_created", "_gcount", "_gsum"]
                }
                (true, "summary") => &["_sum", "_count", "_created", ""],
                (true, "info") => &["_info"],
                (false, "histogram") => &["_bucket", "_sum", "_count"],
                (false, "summary") => &["_sum", "_count", ""],
                _ => &[""],
            };
            suffixes.iter().any(|s| series == format!("{f}{s}"))
        });
        let Some((family, _)) = family else {
            return Err(err("sample of a family without TYPE".into()));
        };
        if current.as_ref() != Some(family) || finished.contains(family) {
            return Err(err("sample away from its family's TYPE line".into()));
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
    // No `Accept` (curl, most tools): the Prometheus text format, counters typed by
    // their `_total` names.
    let families =
        check_exposition(&text, Format::Text004).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let expected = [
        ("seawall_request_duration_seconds", "histogram"),
        ("seawall_errors_total", "counter"),
        ("seawall_upstream_connect_duration_seconds", "histogram"),
        ("seawall_upstream_connections_idle", "gauge"),
        ("seawall_upstream_connections_in_use", "gauge"),
        ("seawall_upstream_connections_opened_total", "counter"),
        ("seawall_upstream_connections_closed_total", "counter"),
        ("seawall_upstream_requests_total", "counter"),
        ("seawall_config_reloads_total", "counter"),
    ];
    for (family, ty) in expected {
        assert_eq!(
            families.get(family).map(String::as_str),
            Some(ty),
            "{family}\n{text}"
        );
    }
    // Every counter family is typed (a 0.0.4 parser would see it untyped otherwise).
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap();
        if name.ends_with("_total") {
            assert_eq!(
                families.get(name).map(String::as_str),
                Some("counter"),
                "{line}"
            );
        }
    }
    // What Prometheus asks for: OpenMetrics, counter families named without `_total`.
    let om = scrape(g.admin, Some(PROMETHEUS_ACCEPT)).await;
    assert_eq!(
        om.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let om = om.text();
    let om_families =
        check_exposition(&om, Format::OpenMetrics).unwrap_or_else(|e| panic!("{e}\n{om}"));
    for (family, ty) in expected {
        let family = family.strip_suffix("_total").unwrap_or(family);
        assert_eq!(
            om_families.get(family).map(String::as_str),
            Some(ty),
            "{family}\n{om}"
        );
    }
    assert_eq!(
        metric(&om, "seawall_errors_total", &[("kind", "no_route")]),
        Some(1.0)
    );
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
    assert_eq!(
        m.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8"),
        "{m:?}"
    );
}

/// Prometheus 3's default scrape `Accept`.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";

/// `/metrics` with `accept`, if any.
async fn scrape(admin: std::net::SocketAddr, accept: Option<&str>) -> Resp {
    let mut r = req(Method::GET, "/metrics");
    if let Some(a) = accept {
        r = r.header("accept", a);
    }
    send(admin, r.body(Full::default()).unwrap()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_in_the_format_the_scraper_asks_for() {
    let sim = sim().await;
    let yaml = config(
        &[],
        &[route("r", "*", "/", "up", "10s", "")],
        &[upstream("up", &[sim.local_addr()], "", "")],
    );
    let g = start(&yaml).await;
    assert_eq!(get(g.addr, "/").await.status, 200);
    for (accept, content_type, format) in [
        (
            None,
            "text/plain; version=0.0.4; charset=utf-8",
            Format::Text004,
        ),
        (
            Some("text/plain"),
            "text/plain; version=0.0.4; charset=utf-8",
            Format::Text004,
        ),
        (
            Some("application/openmetrics-text; version=1.0.0"),
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::OpenMetrics,
        ),
        (
            Some(PROMETHEUS_ACCEPT),
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::OpenMetrics,
        ),
    ] {
        let r = scrape(g.admin, accept).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some(content_type), "{accept:?}");
        let text = r.text();
        let families =
            check_exposition(&text, format).unwrap_or_else(|e| panic!("{accept:?}: {e}\n{text}"));
        let requests = match format {
            Format::Text004 => "seawall_upstream_requests_total",
            Format::OpenMetrics => "seawall_upstream_requests",
        };
        assert_eq!(families.get(requests).map(String::as_str), Some("counter"));
        assert!(
            !(format == Format::Text004 && (text.contains("# UNIT") || text.contains("_created"))),
            "{text}"
        );
    }
}

#[test]
fn the_exposition_checker_rejects_malformed_text() {
    let good = "# HELP a_b Help.\n# TYPE a_b counter\na_b_total{x=\"1\"} 2\n# EOF\n";
    assert!(check_exposition(good, Format::OpenMetrics).is_ok());
    let good = "# HELP a_b_total Help.\n# TYPE a_b_total counter\na_b_total{x=\"1\"} 2\n";
    assert!(check_exposition(good, Format::Text004).is_ok());
    for bad in [
        "# TYPE a_b counter\na_b_total{x=\"1\"} 2\n", // no EOF
        "a_b_total 1\n# EOF\n",                       // no TYPE
        "# TYPE a_b counter\na_b_total{x=1} 2\n# EOF\n", // unquoted label
        "# TYPE a_b counter\na_b_total{1x=\"1\"} 2\n# EOF\n", // bad label name
        "# TYPE a_b counter\na_b_total two\n# EOF\n", // bad value
        "# TYPE a_b counter\na-b_total 1\n# EOF\n",   // bad name
        "# TYPE a_b counter\n# TYPE a_b gauge\na_b_total 1\n# EOF\n", // repeated TYPE
        "# TYPE a_b_total counter\na_b_total 1\n# EOF\n", // _total family name
        "# TYPE a_b counter\na_b_total{x=\"1\"} 2\n# EOF\nmore 1\n",
    ] {
        assert!(
            check_exposition(bad, Format::OpenMetrics).is_err(),
            "accepted: {bad:?}"
        );
    }
    for bad in [
        "# TYPE a_b counter\na_b_total 2\n", // counter typed without _total
        "# TYPE a_b_total counter\na_b_total 2\n# EOF\n", // EOF
        "# TYPE a_b gauge\n# UNIT a_b bytes\na_b 2\n", // UNIT
        "# TYPE a_b_total counter\na_b_created 2\n", // _created
        "# TYPE a_b unknown\na_b 2\n",       // OpenMetrics-only type
        "# TYPE a gauge\n# TYPE b gauge\na 1\nb 1\n", // sample away from its TYPE
    ] {
        assert!(
            check_exposition(bad, Format::Text004).is_err(),
            "accepted: {bad:?}"
        );
    }
}
