//! SARIF 2.1.0 (OASIS), the format GitHub code scanning and other UIs import: one run,
//! `tool.driver.rules` from the registry (so the UI can show every rule's help), and one
//! result per finding with its `ruleId`, `level`, message and a physical location
//! (`artifactLocation.uri`, `region.startLine`/`startColumn`) plus the key path as a
//! logical location. Each file's score is a run property.

use serde_json::{Value, json};

use seawall_config::Severity;

use crate::{Finding, RULES, Scored};

/// The schema URI SARIF consumers expect.
pub const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// SARIF's name for a severity: `info` is `note`.
fn level(level: Severity) -> &'static str {
    match level {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

/// The SARIF log of every file's findings. `version` is the tool's.
pub fn render(files: &[Scored], version: &str) -> Value {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.code,
                "name": r.name,
                "shortDescription": {"text": r.title},
                "fullDescription": {"text": r.why},
                // SARIF wants absolute URIs for `helpUri`; the docs ship with the
                // source, so the help names the section instead.
                "help": {"text": format!("See docs/score.md, section {}.", r.code)},
                "defaultConfiguration": {"level": level(r.level)},
            })
        })
        .collect();
    let results: Vec<Value> = files
        .iter()
        .flat_map(|s| s.findings.iter().map(result))
        .collect();
    let scores: Vec<Value> = files
        .iter()
        .map(|s| json!({"file": s.file, "score": s.score}))
        .collect();
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "seawall",
                "version": version,
                "rules": rules,
            }},
            "results": results,
            "properties": {"scores": scores},
        }],
    })
}

fn result(f: &Finding) -> Value {
    let d = &f.diagnostic;
    let index = RULES.iter().position(|r| r.code == f.code());
    // SARIF regions are 1-based; a finding always has a line (at worst the file's first).
    let line = d.line.max(1);
    let column = d.column.max(1);
    json!({
        "ruleId": f.code(),
        "ruleIndex": index,
        "level": level(f.level()),
        "message": {"text": format!("{}. {} Fix: {}.", d.message, f.rule.why, f.fix())},
        "locations": [{
            "physicalLocation": {
                "artifactLocation": {"uri": uri(&d.file)},
                "region": {"startLine": line, "startColumn": column},
            },
            "logicalLocations": [{"fullyQualifiedName": d.path, "kind": "member"}],
        }],
    })
}

/// A file name as a relative URI reference: forward slashes, spaces and `%` escaped.
fn uri(file: &str) -> String {
    file.replace('\\', "/")
        .replace('%', "%25")
        .replace(' ', "%20")
}
