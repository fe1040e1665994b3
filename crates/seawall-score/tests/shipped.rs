//! The shipped configs carry their score: the embedded default and every `examples/*.yaml`
//! say in a comment what `seawall check --score` gives them and which findings they accept
//! on purpose, and this test holds them to it:
//!
//! ```text
//! # Resilience score (`seawall check --score`): 94/100. Findings accepted on purpose ...
//! #   SW101  why this one is fine here
//! ```

use std::{collections::BTreeSet, path::Path};

use seawall_config::{DEFAULT_CONFIG, DEFAULT_CONFIG_NAME};

const HEADLINE: &str = "# Resilience score (`seawall check --score`): ";

/// The score and the accepted codes a config's comment states.
fn stated(name: &str, text: &str) -> (u32, BTreeSet<String>) {
    let mut lines = text.lines().skip_while(|l| !l.starts_with(HEADLINE));
    let headline = lines
        .next()
        .unwrap_or_else(|| panic!("{name} has no `{HEADLINE}N/100` comment"));
    let score = headline[HEADLINE.len()..]
        .split('/')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{name}: cannot read the score in {headline:?}"));
    let accepted = lines
        .take_while(|l| l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("#   SW"))
        .map(|rest| format!("SW{}", &rest[..3]))
        .collect();
    (score, accepted)
}

fn holds_its_comment(name: &str, text: &str) {
    let (score, accepted) = stated(name, text);
    let scored = seawall_score::score_file(name, text).unwrap_or_else(|d| panic!("{d}"));
    let fired: BTreeSet<String> = scored
        .findings
        .iter()
        .map(|f| f.code().to_owned())
        .collect();
    assert_eq!(
        fired, accepted,
        "{name}: findings vs the accepted ones in its comment"
    );
    assert_eq!(scored.score, score, "{name}: score vs its comment");
}

#[test]
fn the_embedded_default_config_carries_its_score() {
    holds_its_comment(DEFAULT_CONFIG_NAME, DEFAULT_CONFIG);
}

#[test]
fn every_example_carries_its_score() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let text = std::fs::read_to_string(&path).expect("readable example");
            holds_its_comment(&path.display().to_string(), &text);
            checked += 1;
        }
    }
    assert!(checked >= 6, "expected the 6 examples, found {checked}");
    // The example drills' gateway (its folder's scenarios are not gateway configs).
    let drills = dir.join("drills/gateway.yaml");
    let text = std::fs::read_to_string(&drills).expect("examples/drills/gateway.yaml");
    holds_its_comment(&drills.display().to_string(), &text);
}

#[test]
fn the_examples_scores_are_pinned() {
    // The comments could drift together with the code; pin the values here too.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let expected = [
        ("api-gateway.yaml", 90),
        ("chaos.yaml", 97),
        ("faults.yaml", 94),
        ("minimal.yaml", 94),
        ("resilient-upstream.yaml", 100),
        ("strict-timeouts.yaml", 98),
        ("drills/gateway.yaml", 94),
    ];
    for (file, score) in expected {
        let text = std::fs::read_to_string(dir.join(file)).expect("example exists");
        let scored = seawall_score::score_file(file, &text).unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(scored.score, score, "{file}");
    }
    let default = seawall_score::score_file(DEFAULT_CONFIG_NAME, DEFAULT_CONFIG)
        .unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(default.score, 97);
}
