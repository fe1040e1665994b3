//! Small PromQL builders shared by the rules and the dashboard: label matchers with their
//! values quoted, and durations in Prometheus' notation.

use std::time::Duration;

/// `name="value"`, the value quoted as a PromQL string (a JSON string is one).
pub fn eq(name: &str, value: &str) -> String {
    format!("{name}={}", quote(value))
}

/// A PromQL (and YAML) double-quoted string.
pub fn quote(value: &str) -> String {
    serde_json::Value::String(value.to_owned()).to_string()
}

/// `{a="1",b="2"}` from matchers already written.
pub fn selector(metric: &str, matchers: &[String]) -> String {
    if matchers.is_empty() {
        metric.to_owned()
    } else {
        format!("{metric}{{{}}}", matchers.join(","))
    }
}

/// A whole number of minutes in the largest unit that divides it: `30d`, `6h`, `5m`.
pub fn duration(d: Duration) -> String {
    let minutes = (d.as_secs() / 60).max(1);
    if minutes.is_multiple_of(24 * 60) {
        format!("{}d", minutes / (24 * 60))
    } else if minutes.is_multiple_of(60) {
        format!("{}h", minutes / 60)
    } else {
        format!("{minutes}m")
    }
}

/// The `le` label value the gateway's histogram prints for a bucket bound (`0.25`,
/// `1.0`): Prometheus compares label values as strings, so it must be the same text.
pub fn le(bound: f64) -> String {
    format!("{bound:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_use_the_largest_exact_unit() {
        assert_eq!(duration(Duration::from_secs(30 * 86400)), "30d");
        assert_eq!(duration(Duration::from_secs(6 * 3600)), "6h");
        assert_eq!(duration(Duration::from_secs(90 * 60)), "90m");
        assert_eq!(duration(Duration::from_secs(10)), "1m");
    }

    #[test]
    fn bucket_bounds_print_as_the_histogram_does() {
        assert_eq!(le(0.25), "0.25");
        assert_eq!(le(1.0), "1.0");
        assert_eq!(le(0.0005), "0.0005");
        assert_eq!(quote("a\"b"), "\"a\\\"b\"");
    }
}
