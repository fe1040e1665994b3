//! The code registry (`codes.rs`) is a contract: codes are unique, sorted, well formed,
//! in the family their check belongs to, never reused once retired, and listed in
//! `docs/score.md` (exactly those, each with its own section).

use std::collections::BTreeSet;

use seawall_score::{RETIRED, RULES};

#[test]
fn codes_are_unique_sorted_and_well_formed() {
    let codes: Vec<_> = RULES.iter().map(|r| r.code).collect();
    let mut sorted = codes.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(codes, sorted, "sorted and unique");
    for rule in RULES {
        let digits = rule.code.strip_prefix("SW").expect("SW prefix");
        assert!(
            digits.len() == 3 && digits.chars().all(|c| c.is_ascii_digit()),
            "{}",
            rule.code
        );
        assert!(('1'..='6').contains(&digits.chars().next().unwrap_or('0')));
        assert!(
            !digits.ends_with("00"),
            "{}: xx00 is the family, not a code",
            rule.code
        );
        assert!(
            !rule.why.is_empty() && rule.why.ends_with('.'),
            "{}",
            rule.code
        );
        assert!(!rule.title.ends_with('.'), "{}", rule.code);
    }
    let names: BTreeSet<_> = RULES.iter().map(|r| r.name).collect();
    assert_eq!(names.len(), RULES.len(), "names are unique");
}

#[test]
fn retired_codes_are_never_reused() {
    for code in RETIRED {
        assert!(
            RULES.iter().all(|r| r.code != *code),
            "{code} is retired and must not be given to a live check"
        );
    }
}

#[test]
fn docs_score_md_lists_exactly_the_registry_codes() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/score.md"))
        .expect("docs/score.md exists");
    let sections: BTreeSet<&str> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("#### "))
        .map(str::trim)
        .collect();
    let registry: BTreeSet<&str> = RULES.iter().map(|r| r.code).collect();
    assert_eq!(sections, registry, "one `#### SWnnn` section per live code");
    for rule in RULES {
        let row = format!(
            "| [{}](#{}) | `{}` |",
            rule.code,
            rule.code.to_ascii_lowercase(),
            rule.name
        );
        assert!(
            doc.contains(&row),
            "docs/score.md has no table row for {}",
            rule.code
        );
        assert!(
            doc.contains(rule.why),
            "docs/score.md does not give {}'s why",
            rule.code
        );
    }
}
