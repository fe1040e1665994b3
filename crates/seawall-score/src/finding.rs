//! A finding: one rule broken at one key of one unit, located in the file.

use seawall_config::{Diagnostic, Problem, Severity};

use crate::{codes::Rule, scope::Scope, scope::Unit};

/// What a check reports before it is located: the unit charged, the key, what is wrong
/// there and the fix.
#[derive(Debug, Clone)]
pub(crate) struct Hit {
    pub(crate) unit: Unit,
    /// The key path the finding is about (where the fix goes).
    pub(crate) path: String,
    /// The value as it is, written or defaulted.
    pub(crate) value: Option<String>,
    /// What is wrong, lowercase, naming the unit.
    pub(crate) message: String,
    /// The key to set and a suggested value.
    pub(crate) fix: String,
}

/// One located finding.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Which rule, with its code, severity and why.
    pub rule: &'static Rule,
    /// The unit the finding is charged to.
    pub unit: Unit,
    /// Where and what: file, line, column, key path (`path`), value, message, and the fix
    /// (`hint`), in the same shape as a config error.
    pub diagnostic: Diagnostic,
}

impl Finding {
    pub(crate) fn new(rule: &'static Rule, hit: Hit, scope: &Scope<'_>) -> Self {
        let problem = Problem {
            path: hit.path,
            value: hit.value,
            message: hit.message,
            hint: Some(hit.fix),
        };
        Self {
            rule,
            unit: hit.unit,
            diagnostic: scope.source.diagnostic(rule.level, problem),
        }
    }

    /// The finding's code, e.g. `SW101`.
    pub fn code(&self) -> &'static str {
        self.rule.code
    }

    /// Error, warning or info.
    pub fn level(&self) -> Severity {
        self.rule.level
    }

    /// The key path, e.g. `upstreams[0].pool.idle_timeout`.
    pub fn key(&self) -> &str {
        &self.diagnostic.path
    }

    /// The fix: the key to set and a suggested value.
    pub fn fix(&self) -> &str {
        self.diagnostic.hint.as_deref().unwrap_or_default()
    }
}
