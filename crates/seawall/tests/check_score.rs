//! `seawall check --score` from the command line: the text report, `--format json` and
//! `--format sarif` as JSON of the documented shape, `--min-score` and its exit code 4,
//! `--min-score 120` as a usage error (2), and plain `check` unchanged without `--score`.

mod support;

use support::{TempDir, run_to_exit, workspace_root};

fn minimal() -> String {
    workspace_root()
        .join("examples/minimal.yaml")
        .to_str()
        .expect("utf-8 path")
        .to_owned()
}

/// The 1-based line of examples/minimal.yaml holding `needle`.
fn line_of(needle: &str) -> usize {
    let text = std::fs::read_to_string(minimal()).expect("examples/minimal.yaml");
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("no {needle:?} in examples/minimal.yaml"))
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

#[test]
fn check_help_names_the_score_options_and_their_exit_codes() {
    let (code, out, _) = run_to_exit(&["check", "--help"]);
    assert_eq!(code, Some(0));
    for needle in [
        "--score",
        "--min-score",
        "--format",
        "sarif",
        "4 a valid file scored below",
    ] {
        assert!(out.contains(needle), "check --help lacks {needle}:\n{out}");
    }
    let (_, out, _) = run_to_exit(&["--help"]);
    assert!(out.contains("4 a config scored below"), "{out}");
}

#[test]
fn score_prints_findings_grouped_by_unit_with_codes_and_the_top_fixes() {
    let file = minimal();
    let (code, out, err) = run_to_exit(&["check", "--score", &file]);
    assert_eq!(code, Some(0), "stderr: {err}");
    assert!(out.starts_with(&format!("{file}: score 94/100")), "{out}");
    for needle in [
        "upstream `app` (upstreams[0]): 80/100",
        "warning[SW101]: upstream `app` has no response-head timeout",
        "= key: upstreams[0].timeouts.response_header",
        "= why: ",
        "= fix: set `upstreams[0].timeouts.response_header: 7500ms`",
        "info[SW102]",
        "fixes that raise the score most:",
        "1. [SW101]",
    ] {
        assert!(out.contains(needle), "no {needle:?} in:\n{out}");
    }
}

#[test]
fn without_score_check_prints_ok_as_before() {
    let file = minimal();
    let (code, out, _) = run_to_exit(&["check", &file]);
    assert_eq!(code, Some(0));
    assert_eq!(out.trim(), format!("{file}: ok"));
}

#[test]
fn format_json_is_one_document_with_files_units_findings_and_top_fixes() {
    let file = minimal();
    let (code, out, err) = run_to_exit(&["check", "--score", "--format", "json", &file]);
    assert_eq!(code, Some(0), "stderr: {err}");
    let report = json(&out);
    assert_eq!(report["passed"], true);
    assert!(report["min_score"].is_null());
    let scored = &report["files"][0];
    assert_eq!(scored["file"], file.as_str());
    assert_eq!(scored["score"], 94);
    assert_eq!(scored["counts"]["warning"], 2);
    let findings = scored["findings"].as_array().expect("findings");
    let sw101 = findings
        .iter()
        .find(|f| f["code"] == "SW101")
        .expect("SW101");
    assert_eq!(sw101["level"], "warning");
    assert_eq!(sw101["key"], "upstreams[0].timeouts.response_header");
    assert_eq!(sw101["line"], line_of("- name: app"));
    assert_eq!(sw101["unit"]["kind"], "upstream");
    assert!(sw101["why"].as_str().is_some_and(|w| !w.is_empty()));
    assert!(
        sw101["fix"]
            .as_str()
            .is_some_and(|f| f.contains("response_header"))
    );
    let kinds: Vec<_> = scored["units"]
        .as_array()
        .expect("units")
        .iter()
        .map(|u| u["kind"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(kinds, ["global", "listener", "route", "upstream"]);
    assert_eq!(scored["top_fixes"][0]["code"], "SW101");
    assert_eq!(scored["top_fixes"][0]["score_after"], 97);
}

#[test]
fn format_sarif_is_sarif_2_1_0_with_rules_from_the_registry_and_located_results() {
    let file = minimal();
    // `--format sarif` implies `--score`.
    let (code, out, err) = run_to_exit(&["check", "--format", "sarif", &file]);
    assert_eq!(code, Some(0), "stderr: {err}");
    let log = json(&out);
    assert_eq!(log["version"], "2.1.0");
    assert!(
        log["$schema"]
            .as_str()
            .is_some_and(|s| s.contains("sarif-2.1.0"))
    );
    let run = &log["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "seawall");
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
    assert!(rules.len() >= 20, "every registry code is a rule");
    assert!(rules.iter().any(|r| r["id"] == "SW401"));
    let results = run["results"].as_array().expect("results");
    assert_eq!(results.len(), 3);
    let sw102 = results
        .iter()
        .find(|r| r["ruleId"] == "SW102")
        .expect("SW102");
    assert_eq!(sw102["level"], "note", "info is SARIF's note");
    let index = sw102["ruleIndex"].as_u64().expect("ruleIndex");
    assert_eq!(rules[usize::try_from(index).expect("index")]["id"], "SW102");
    let location = &sw102["locations"][0]["physicalLocation"];
    assert_eq!(location["artifactLocation"]["uri"], file.as_str());
    assert_eq!(location["region"]["startLine"], line_of("- upstream: app"));
}

#[test]
fn min_score_exits_4_below_it_and_0_at_or_above_it() {
    let file = minimal();
    let (code, out, err) = run_to_exit(&["check", "--min-score", "95", &file]);
    assert_eq!(code, Some(4), "stdout {out} stderr {err}");
    assert!(err.contains("score 94 is below --min-score 95"), "{err}");
    let (code, out, _) = run_to_exit(&["check", "--min-score", "94", "--format", "json", &file]);
    assert_eq!(code, Some(0));
    assert_eq!(json(&out)["passed"], true);
    let (code, out, _) = run_to_exit(&["check", "--min-score", "100", "--format", "json", &file]);
    assert_eq!(code, Some(4));
    assert_eq!(json(&out)["passed"], false);
}

#[test]
fn min_score_out_of_range_is_a_usage_error_with_a_hint() {
    let file = minimal();
    for bad in ["120", "-1", "ninety"] {
        let arg = format!("--min-score={bad}");
        let (code, _, err) = run_to_exit(&["check", &arg, &file]);
        assert_eq!(code, Some(2), "--min-score {bad}: {err}");
        assert!(err.contains("--min-score"), "{err}");
        assert!(
            err.contains("0 to 100") || err.contains("between 0 and 100"),
            "{err}"
        );
    }
}

#[test]
fn an_invalid_config_exits_3_and_is_left_out_of_the_report() {
    let dir = TempDir::new();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "listeners: []\nbogus: 1\n").expect("write");
    let bad = bad.to_str().expect("utf-8 path").to_owned();
    let file = minimal();
    let (code, out, err) = run_to_exit(&[
        "check",
        "--min-score",
        "100",
        "--format",
        "json",
        &bad,
        &file,
    ]);
    assert_eq!(
        code,
        Some(3),
        "an invalid file wins over a low score: {err}"
    );
    assert!(err.contains("bogus"), "{err}");
    let report = json(&out);
    let files = report["files"].as_array().expect("files");
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["file"], file.as_str());
}
