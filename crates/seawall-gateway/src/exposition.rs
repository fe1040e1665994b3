//! `/metrics` formats: OpenMetrics 1.0.0 for a scraper that asks for it, the Prometheus
//! text format 0.0.4 for everyone else.
//!
//! prometheus-client encodes OpenMetrics only. The two formats share their sample lines;
//! they differ in the metadata, which [`to_prometheus_text`] rewrites:
//! - a counter family is named without `_total` in OpenMetrics (`# TYPE x counter`,
//!   samples `x_total`), while a 0.0.4 parser types a sample by its exact name, so its
//!   `HELP` and `TYPE` lines become `x_total` (else every counter parses as untyped);
//! - `# UNIT` lines, `_created` samples, exemplars (`… # {…} v`) and `# EOF` do not exist
//!   in 0.0.4 and are dropped;
//! - OpenMetrics-only types: `unknown` is `untyped`; `info` becomes a gauge named
//!   `x_info`; `stateset` a gauge; `gaugehistogram` (whose `_gcount`/`_gsum` samples no
//!   0.0.4 type has) loses its metadata and so parses as untyped samples.
//!
//! Which format to serve is chosen from the request's `Accept` ([`wants_openmetrics`]), as
//! Prometheus negotiates it: it asks for `application/openmetrics-text` with a higher
//! weight than `text/plain`.

/// `Content-Type` of the OpenMetrics exposition.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// `Content-Type` of the Prometheus text exposition.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// True when `accept` prefers OpenMetrics 1.0.0 (no version, or `version=1.0.0`) to the
/// Prometheus text format (`text/plain`, `text/*`, `*/*`): its weight is above 0 and not
/// below theirs. No `Accept` means text.
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    let (mut openmetrics, mut text) = (0.0_f32, 0.0_f32);
    for range in accept.unwrap_or("").split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let (mut q, mut version) = (1.0_f32, None);
        for param in parts {
            let Some((k, v)) = param.split_once('=') else {
                continue;
            };
            let v = v.trim().trim_matches('"');
            match k.trim().to_ascii_lowercase().as_str() {
                "q" => q = v.parse().unwrap_or(0.0),
                "version" => version = Some(v.to_owned()),
                _ => {}
            }
        }
        match media.as_str() {
            "application/openmetrics-text" if version.as_deref().is_none_or(|v| v == "1.0.0") => {
                openmetrics = openmetrics.max(q);
            }
            "text/plain" | "text/*" | "*/*" => text = text.max(q),
            _ => {}
        }
    }
    openmetrics > 0.0 && openmetrics >= text
}

/// The Prometheus text format 0.0.4 of an OpenMetrics exposition (see the module docs).
pub fn to_prometheus_text(openmetrics: &str) -> String {
    // Types first: a family's HELP line comes before its TYPE line.
    let types: std::collections::HashMap<&str, &str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split_once(' '))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            if let Some((name, _)) = renamed(name, types.get(name).copied()) {
                out.push_str(&format!("# HELP {name} {help}\n"));
            }
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest.split_once(' ').unwrap_or((rest, ""));
            if let Some((name, ty)) = renamed(name, Some(ty)) {
                out.push_str(&format!("# TYPE {name} {ty}\n"));
            }
        } else if line.starts_with('#') {
            // `# UNIT`, `# EOF`: OpenMetrics only.
        } else if let Some(sample) = sample(line, &types) {
            out.push_str(sample);
            out.push('\n');
        }
    }
    out
}

/// A family's 0.0.4 name and type, or None when its metadata is dropped.
fn renamed(name: &str, ty: Option<&str>) -> Option<(String, &'static str)> {
    Some(match ty? {
        "counter" => (format!("{name}_total"), "counter"),
        "gauge" => (name.to_owned(), "gauge"),
        "histogram" => (name.to_owned(), "histogram"),
        "summary" => (name.to_owned(), "summary"),
        "info" => (format!("{name}_info"), "gauge"),
        "stateset" => (name.to_owned(), "gauge"),
        "gaugehistogram" => return None,
        _ => (name.to_owned(), "untyped"),
    })
}

/// A sample line without its exemplar, or None for a `_created` sample.
fn sample<'a>(line: &'a str, types: &std::collections::HashMap<&str, &str>) -> Option<&'a str> {
    let name_end = line.find(['{', ' ']).unwrap_or(line.len());
    let name = &line[..name_end];
    if let Some(family) = name.strip_suffix("_created")
        && matches!(
            types.get(family),
            Some(&("counter" | "histogram" | "summary" | "gaugehistogram"))
        )
    {
        return None;
    }
    // The exemplar starts after the value: after the labels, whose quoted values may hold
    // anything, `#` included.
    let after_labels = match line[name_end..].strip_prefix('{') {
        Some(_) => name_end + labels_len(&line[name_end..])?,
        None => name_end,
    };
    Some(match line[after_labels..].find(" # ") {
        Some(i) => &line[..after_labels + i],
        None => line,
    })
}

/// The length of the `{…}` label set at the start of `s`, quoted values skipped.
fn labels_len(s: &str) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return Some(i + 1),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_asks_for_openmetrics_and_gets_it() {
        // Prometheus 2.x and 3.x default scrape Accept headers.
        for accept in [
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1",
            "application/openmetrics-text",
        ] {
            assert!(wants_openmetrics(Some(accept)), "{accept}");
        }
        for accept in [
            None,
            Some(""),
            Some("*/*"),
            Some("text/plain;version=0.0.4"),
            Some("text/plain, application/openmetrics-text;q=0.5"),
            Some("application/openmetrics-text;q=0"),
            Some("application/openmetrics-text;version=0.0.1"),
            Some("application/json"),
        ] {
            assert!(!wants_openmetrics(accept), "{accept:?}");
        }
    }

    #[test]
    fn counters_are_typed_by_their_total_name_and_openmetrics_only_lines_go() {
        let om = "# HELP a_requests Requests.\n# TYPE a_requests counter\n\
                  a_requests_total{r=\"x # }\"} 3 # {trace_id=\"1\"} 1.0\n\
                  a_requests_created{r=\"x\"} 1.7e9\n\
                  # HELP a_size_bytes Size.\n# TYPE a_size_bytes gauge\n# UNIT a_size_bytes bytes\n\
                  a_size_bytes 2\n\
                  # HELP a_d Durations.\n# TYPE a_d histogram\n\
                  a_d_bucket{le=\"+Inf\"} 1\na_d_sum 0.5\na_d_count 1\n\
                  # HELP a_v Version.\n# TYPE a_v info\na_v_info{v=\"1\"} 1\n\
                  # TYPE a_u unknown\na_u 1\n# EOF\n";
        let text = to_prometheus_text(om);
        assert_eq!(
            text,
            "# HELP a_requests_total Requests.\n# TYPE a_requests_total counter\n\
             a_requests_total{r=\"x # }\"} 3\n\
             # HELP a_size_bytes Size.\n# TYPE a_size_bytes gauge\na_size_bytes 2\n\
             # HELP a_d Durations.\n# TYPE a_d histogram\n\
             a_d_bucket{le=\"+Inf\"} 1\na_d_sum 0.5\na_d_count 1\n\
             # HELP a_v_info Version.\n# TYPE a_v_info gauge\na_v_info{v=\"1\"} 1\n\
             # TYPE a_u untyped\na_u 1\n"
        );
    }
}
