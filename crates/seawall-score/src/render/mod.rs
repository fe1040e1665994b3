//! The report of one or more scored configs: [`text`] for people, [`json`] for scripts,
//! [`sarif`] (2.1.0) for code-scanning UIs.

pub mod json;
pub mod sarif;
pub mod text;

use seawall_config::Severity;

/// The name of a severity in the JSON report.
fn level_name(level: Severity) -> &'static str {
    level.as_str()
}
