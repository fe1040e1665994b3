//! `junit.xml`: one test case per threshold (and one per failed steady-state probe or
//! other failure), so a CI system shows the drill like a test suite.

use super::Report;

/// Escapes text for XML attributes and content.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// The JUnit XML of `r`.
pub fn render(r: &Report) -> String {
    let mut cases = String::new();
    let mut failures = 0;
    for v in &r.thresholds {
        cases.push_str(&format!(
            "    <testcase classname=\"drill.thresholds\" name=\"{}\">",
            escape(&v.threshold)
        ));
        if !v.passed {
            failures += 1;
            cases.push_str(&format!("<failure message=\"{}\"/>", escape(&v.shown)));
        }
        cases.push_str(&format!(
            "<system-out>{}</system-out></testcase>\n",
            escape(&v.shown)
        ));
    }
    for f in &r.failures {
        failures += 1;
        cases.push_str(&format!(
            "    <testcase classname=\"drill.run\" name=\"{}\"><failure message=\"{}\"/></testcase>\n",
            escape(f),
            escape(f)
        ));
    }
    let tests = r.thresholds.len() + r.failures.len();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"seawall drill\" tests=\"{tests}\" failures=\"{failures}\" time=\"{:.3}\">\n{cases}  </testsuite>\n</testsuites>\n",
        r.duration
    )
}
