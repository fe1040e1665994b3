//! Seawall's config resilience score (`seawall check --score`): findings about a valid
//! config that runs but will hurt in an incident (no response-head timeout, retries without
//! a budget, a pool idle timeout that races the upstream's keep-alive, ...), each with a
//! stable code, a severity, its file, line and key path, why it matters and the fix; a
//! score from 0 to 100; and the report as text, JSON or SARIF.
//!
//! - [`codes`]: the registry of every code.
//! - `checks`: one small pure function per code, one module per family.
//! - [`score`](mod@score): the formula.
//! - [`render`]: text, JSON and SARIF.
//!
//! Entry point: [`score_file`] (or [`score()`] for a config already loaded with
//! [`seawall_config::parse_located`]).

mod checks;
pub mod codes;
mod finding;
pub mod render;
mod scope;
pub mod score;

pub use codes::{RETIRED, RULES, Rule};
pub use finding::Finding;
pub use scope::{Unit, UnitKind};
pub use score::{Scored, TopFix, UnitScore};

use seawall_config::Located;

/// Checks and scores a parsed config.
pub fn score(located: &Located) -> Scored {
    let scope = scope::Scope::new(&located.config, &located.source);
    Scored::new(
        located.source.file().to_owned(),
        scope.units(),
        checks::run(&scope),
    )
}

/// Parses `text` (named `file_name` in findings) and scores it; an invalid config is
/// returned as its diagnostics, unscored.
pub fn score_file(file_name: &str, text: &str) -> Result<Scored, seawall_config::Diagnostics> {
    seawall_config::parse_located(file_name, text).map(|located| score(&located))
}

/// The codes with a check, in code order (for the registry test).
#[doc(hidden)]
pub fn checked_codes() -> Vec<&'static str> {
    checks::CHECKS.iter().map(|c| c.rule.code).collect()
}
