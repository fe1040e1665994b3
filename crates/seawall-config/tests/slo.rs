//! `routes[].slo`: objectives parse as exact percentages, and bad ones (0%, 100%, a zero
//! period, a zero or unmeasurable latency threshold, not a percentage) are reported at
//! their line with a hint.

use seawall_config::{Diagnostic, Diagnostics, parse};

fn config(slo: &str) -> String {
    format!(
        "\
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes:
      - name: api
        upstream: api
        slo:
{slo}
upstreams:
  - name: api
    endpoints: [127.0.0.1:9000]
    timeouts: {{connect: 1s, response_header: 5s}}
"
    )
}

fn problems(slo: &str) -> Diagnostics {
    match parse("test.yaml", &config(slo)) {
        Ok(c) => panic!("expected problems, got a valid config: {c:?}"),
        Err(d) => d,
    }
}

fn find<'a>(diagnostics: &'a Diagnostics, path: &str) -> &'a Diagnostic {
    diagnostics
        .iter()
        .find(|d| d.path == path)
        .unwrap_or_else(|| panic!("no diagnostic for `{path}` in:\n{diagnostics}"))
}

const SLO: &str = "listeners[0].routes[0].slo";

#[test]
fn a_full_slo_parses_with_its_default_period() {
    let c = parse(
        "test.yaml",
        &config(
            "          availability: 99.95%\n          latency: {objective: 99%, threshold: 250ms}",
        ),
    )
    .unwrap();
    let slo = c.listeners[0].routes[0].slo.as_ref().unwrap();
    assert_eq!(slo.availability.unwrap().to_string(), "99.95%");
    let latency = slo.latency.as_ref().unwrap();
    assert_eq!(latency.objective.percent_parts(), (99, 0));
    assert_eq!(slo.period, seawall_config::slo::default_period());
}

#[test]
fn hundred_and_zero_percent_are_refused_with_a_hint() {
    let d = problems(
        "          availability: 100%\n          latency: {objective: 0%, threshold: 250ms}",
    );
    let a = find(&d, &format!("{SLO}.availability"));
    assert_eq!(a.line, 8, "{d}");
    assert!(a.message.contains("strictly between 0% and 100%"), "{d}");
    assert!(
        a.hint.as_deref().unwrap().contains("no error budget"),
        "{d}"
    );
    let l = find(&d, &format!("{SLO}.latency.objective"));
    assert!(
        l.hint.as_deref().unwrap().contains("promises nothing"),
        "{d}"
    );
}

#[test]
fn a_zero_period_is_refused_with_the_default_in_the_hint() {
    let d = problems("          availability: 99.9%\n          period: 0s");
    let p = find(&d, &format!("{SLO}.period"));
    assert_eq!(p.line, 9, "{d}");
    assert_eq!(p.message, "the SLO period must be greater than zero");
    assert!(p.hint.as_deref().unwrap().contains("\"30d\""), "{d}");
    let d = problems("          availability: 99.9%\n          period: 1h");
    assert!(find(&d, &format!("{SLO}.period")).message.contains("1 day"));
}

#[test]
fn a_latency_threshold_must_be_positive_and_a_bucket_bound() {
    let d = problems("          latency: {objective: 99%, threshold: 0s}");
    let t = find(&d, &format!("{SLO}.latency.threshold"));
    assert_eq!(t.message, "the latency threshold must be greater than zero");
    // 300ms falls between the default buckets 250ms and 500ms: say which to use.
    let d = problems("          latency: {objective: 99%, threshold: 300ms}");
    let t = find(&d, &format!("{SLO}.latency.threshold"));
    assert!(t.message.contains("not a bucket bound"), "{d}");
    let hint = t.hint.as_deref().unwrap();
    assert!(hint.contains("250ms or 500ms"), "{hint}");
    assert!(
        hint.contains("add 0.3 to `metrics.request_duration_buckets`"),
        "{hint}"
    );
}

#[test]
fn a_percentage_without_its_sign_or_an_empty_slo_is_refused() {
    let d = problems("          availability: 0.999");
    let a = find(&d, &format!("{SLO}.availability"));
    assert!(a.hint.as_deref().unwrap().contains("\"99.9%\""), "{d}");
    let d = problems("          period: 30d");
    assert!(find(&d, SLO).message.contains("no objective"), "{d}");
}
