//! "Did you mean ...?" suggestions for misspelt keys, names and variants.

/// The candidate closest to `word`, if it is close enough to be a plausible typo.
///
/// Uses Jaro-Winkler similarity because config typos are mostly transpositions and dropped
/// letters near the end (`idle_timout`), which it scores highly.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// A hint naming the closest candidate, or listing them all when none is close.
pub(crate) fn hint(word: &str, candidates: &[&str]) -> String {
    match closest(word, candidates.iter().copied()) {
        Some(best) => format!("did you mean `{best}`?"),
        None if candidates.is_empty() => "no keys are allowed here".to_owned(),
        None => format!("expected one of: {}", quoted_list(candidates)),
    }
}

/// `a`, `b`, `c` rendered as "`a`, `b`, `c`".
pub(crate) fn quoted_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_letter_is_suggested() {
        let keys = ["max_idle_per_endpoint", "idle_timeout", "checkout_timeout"];
        assert_eq!(closest("idle_timout", keys), Some("idle_timeout"));
    }

    #[test]
    fn an_unrelated_word_gets_no_suggestion() {
        assert_eq!(closest("zzz", ["idle_timeout", "listen"]), None);
    }
}
