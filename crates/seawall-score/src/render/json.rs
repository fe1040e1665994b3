//! The JSON report, for scripts and dashboards. Shape (documented in `docs/score.md`):
//!
//! ```text
//! {"files": [{"file", "score", "counts": {"error", "warning", "info"},
//!             "units": [{"kind", "name", "path", "score", "findings": [index]}],
//!             "findings": [{"code", "name", "level", "file", "line", "column", "key",
//!                           "value", "unit": {"kind", "name", "path"}, "message", "why", "fix"}],
//!             "top_fixes": [{"finding", "code", "key", "fix", "score_after"}]}],
//!  "min_score": N or null, "passed": bool}
//! ```

use serde_json::{Value, json};

use seawall_config::Severity;

use crate::{Finding, Scored, Unit};

/// The report of every file; `passed` is whether each reached `min_score`.
pub fn render(files: &[Scored], min_score: Option<u32>) -> Value {
    let passed = min_score.is_none_or(|min| files.iter().all(|s| s.score >= min));
    json!({
        "files": files.iter().map(file).collect::<Vec<_>>(),
        "min_score": min_score,
        "passed": passed,
    })
}

/// The report of one file.
pub fn file(s: &Scored) -> Value {
    json!({
        "file": s.file,
        "score": s.score,
        "counts": {
            "error": s.count(Severity::Error),
            "warning": s.count(Severity::Warning),
            "info": s.count(Severity::Info),
        },
        "units": s.units.iter().map(|u| json!({
            "kind": u.unit.kind.as_str(),
            "name": u.unit.name,
            "path": u.unit.path,
            "score": u.score,
            "findings": u.findings,
        })).collect::<Vec<_>>(),
        "findings": s.findings.iter().map(finding).collect::<Vec<_>>(),
        "top_fixes": s.top_fixes.iter().map(|t| {
            let f = &s.findings[t.finding];
            json!({
                "finding": t.finding,
                "code": f.code(),
                "key": f.key(),
                "fix": f.fix(),
                "score_after": t.score_after,
            })
        }).collect::<Vec<_>>(),
    })
}

fn unit(u: &Unit) -> Value {
    json!({"kind": u.kind.as_str(), "name": u.name, "path": u.path})
}

/// One finding.
pub fn finding(f: &Finding) -> Value {
    let d = &f.diagnostic;
    json!({
        "code": f.code(),
        "name": f.rule.name,
        "level": f.level().as_str(),
        "file": d.file,
        "line": d.line,
        "column": d.column,
        "key": d.path,
        "value": d.value,
        "unit": unit(&f.unit),
        "message": d.message,
        "why": f.rule.why,
        "fix": f.fix(),
    })
}
