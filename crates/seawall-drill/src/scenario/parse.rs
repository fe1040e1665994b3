//! Scenario text to a checked [`Scenario`], with the gateway config's diagnostics (file,
//! line, key, bad value, hint), and `--set key=value` overrides.
//!
//! Overrides are applied to the parsed scenario (as JSON) and it is read again, so a bad
//! override is reported under its own name (`--set load.connections=x`), not at a line of a
//! file that does not contain it.

use std::path::Path;

use saphyr::{LoadableYamlNode, MarkedYaml};
use seawall_config::{Diagnostic, Diagnostics, Severity};

use super::{
    Scenario, check,
    locate::{Position, SourceMap},
};

/// A problem found on the typed scenario: the key path, what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key path, e.g. `thresholds[2]`.
    pub path: String,
    /// The value as written.
    pub value: Option<String>,
    /// What is wrong, lowercase.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

/// Reads, parses and checks the scenario at `path`, then applies `sets`.
pub fn load(path: &Path, sets: &[String]) -> Result<Scenario, Diagnostics> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&file, &text, sets),
        Err(error) => Err(Diagnostics(vec![bare(
            &file,
            format!("cannot read the scenario file: {error}"),
            "check the path and its permissions",
        )])),
    }
}

/// Parses and checks scenario `text` (`file` names it in diagnostics), then applies `sets`.
pub fn parse(file: &str, text: &str, sets: &[String]) -> Result<Scenario, Diagnostics> {
    let report = Report { file, text };
    let documents = MarkedYaml::load_from_str(text).map_err(|error| {
        let at = Position {
            line: error.marker().line(),
            column: error.marker().col() + 1,
        };
        report.all(vec![(
            Problem {
                path: String::new(),
                value: None,
                message: format!("invalid YAML: {}", error.info()),
                hint: text
                    .contains('\t')
                    .then(|| "YAML indentation must use spaces, not tabs".to_owned()),
            },
            at,
        )])
    })?;
    let Some(root) = documents.first() else {
        return Err(Diagnostics(vec![bare(
            file,
            "the scenario file is empty".to_owned(),
            "a scenario needs `target` and `load`; see docs/drills.md",
        )]));
    };
    let map = SourceMap::build(root);
    let scenario = serde_saphyr::from_str::<Scenario>(text).map_err(|e| {
        let (problem, at) = serde_problem(&e, &map);
        report.all(vec![(problem, at)])
    })?;
    let problems = check::check(&scenario);
    if !problems.is_empty() {
        let located = problems
            .into_iter()
            .map(|p| {
                let at = map.locate(&p.path);
                (p, at)
            })
            .collect();
        return Err(report.all(located));
    }
    apply_sets(scenario, sets)
}

/// Applies `key=value` overrides (`load.phases[0].rate=500`); the value is read as YAML, so
/// numbers stay numbers. The result is checked again.
pub fn apply_sets(scenario: Scenario, sets: &[String]) -> Result<Scenario, Diagnostics> {
    if sets.is_empty() {
        return Ok(scenario);
    }
    let mut tree = serde_json::to_value(&scenario).map_err(|e| {
        Diagnostics(vec![bare(
            "--set",
            format!("cannot apply overrides: {e}"),
            "",
        )])
    })?;
    let mut diagnostics = Vec::new();
    for set in sets {
        if let Err(d) = apply_one(&mut tree, set) {
            diagnostics.push(*d);
        }
    }
    if !diagnostics.is_empty() {
        return Err(Diagnostics(diagnostics));
    }
    let scenario: Scenario = serde_json::from_value(tree).map_err(|e| {
        Diagnostics(vec![bare(
            &format!("--set {}", sets.join(" --set ")),
            format!("the overrides make the scenario invalid: {e}"),
            "check each value's type (durations need a unit, rates are numbers)",
        )])
    })?;
    let problems = check::check(&scenario);
    if problems.is_empty() {
        Ok(scenario)
    } else {
        Err(Diagnostics(
            problems
                .into_iter()
                .map(|p| Diagnostic {
                    path: p.path,
                    value: p.value,
                    hint: p.hint,
                    ..bare("--set", p.message, "")
                })
                .collect(),
        ))
    }
}

fn apply_one(tree: &mut serde_json::Value, set: &str) -> Result<(), Box<Diagnostic>> {
    let name = format!("--set {set}");
    let Some((key, raw)) = set.split_once('=') else {
        return Err(Box::new(bare(
            &name,
            "an override is written key=value".to_owned(),
            "e.g. --set load.phases[0].rate=500",
        )));
    };
    let value: serde_json::Value =
        serde_saphyr::from_str(raw).unwrap_or_else(|_| serde_json::Value::String(raw.to_owned()));
    let mut node = tree;
    for segment in segments(key) {
        let next = match segment {
            Segment::Key(k) => node.as_object_mut().map(|o| {
                o.entry(k.to_owned())
                    .or_insert(serde_json::Value::Object(Default::default()))
            }),
            Segment::Index(i) => node.as_array_mut().and_then(|a| a.get_mut(i)),
        };
        node = next.ok_or_else(|| {
            Box::new(Diagnostic {
                path: key.to_owned(),
                ..bare(
                    &name,
                    format!("`{key}` does not name a value in the scenario"),
                    "write the path with dots and [index], e.g. load.phases[0].rate",
                )
            })
        })?;
    }
    *node = value;
    Ok(())
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(key: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in key.split('.') {
        let (name, rest) = part.split_once('[').unwrap_or((part, ""));
        if !name.is_empty() {
            out.push(Segment::Key(name));
        }
        for index in rest.split('[') {
            if let Ok(i) = index.trim_end_matches(']').parse() {
                out.push(Segment::Index(i));
            }
        }
    }
    out
}

fn serde_problem(error: &serde_saphyr::Error, map: &SourceMap) -> (Problem, Position) {
    let text = error.without_snippet().to_string();
    // The message ends with its own location, which the diagnostic shows separately.
    let text = text
        .rfind(" at line ")
        .map_or(text.as_str(), |i| &text[..i]);
    let (message, hint) = match text.split_once("; ") {
        Some((m, h)) => (m.to_owned(), Some(h.to_owned())),
        None => (text.to_owned(), None),
    };
    let at = error
        .location()
        .map_or(Position { line: 1, column: 1 }, |l| Position {
            line: usize::try_from(l.line()).unwrap_or(usize::MAX),
            column: usize::try_from(l.column()).unwrap_or(usize::MAX),
        });
    let path = map.path_at(at).unwrap_or_default().to_owned();
    (
        Problem {
            path,
            value: None,
            message,
            hint,
        },
        at,
    )
}

struct Report<'a> {
    file: &'a str,
    text: &'a str,
}

impl Report<'_> {
    fn all(&self, found: Vec<(Problem, Position)>) -> Diagnostics {
        let mut diagnostics: Vec<Diagnostic> = found
            .into_iter()
            .map(|(p, at)| self.diagnostic(p, at))
            .collect();
        diagnostics.sort_by_key(|d| (d.line, d.column));
        Diagnostics(diagnostics)
    }

    fn diagnostic(&self, problem: Problem, at: Position) -> Diagnostic {
        let snippet = at
            .line
            .checked_sub(1)
            .and_then(|i| self.text.lines().nth(i))
            .map(str::to_owned);
        Diagnostic {
            severity: Severity::Error,
            file: self.file.to_owned(),
            line: at.line,
            column: at.column,
            path: problem.path,
            value: problem.value,
            message: problem.message,
            hint: problem.hint,
            snippet,
            snippet_column: at.column,
        }
    }
}

/// A diagnostic with no position (an unreadable file, a `--set`).
fn bare(file: &str, message: String, hint: &str) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        file: file.to_owned(),
        line: 0,
        column: 0,
        path: String::new(),
        value: None,
        message,
        hint: (!hint.is_empty()).then(|| hint.to_owned()),
        snippet: None,
        snippet_column: 0,
    }
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
