//! Text to validated [`Config`]: YAML syntax, then the structural check, then typed
//! deserialization, then semantic validation, collecting every problem with its position.

use std::{collections::HashSet, path::Path};

use saphyr::{LoadableYamlNode, MarkedYaml};

use crate::{
    Config,
    diagnostic::{Diagnostic, Diagnostics, Severity},
    locate::{Position, SourceMap},
    redact, repair,
    schema::schema,
    shape,
    validate::{self, ADMIN_TOKEN_HINT, Problem},
};

/// Parses and validates a config. `file_name` is only used in diagnostics.
///
/// On failure every problem found is returned, not just the first: a YAML syntax error stops
/// the parse, but unknown keys, wrong types, malformed values and semantic problems are all
/// collected together.
pub fn parse(file_name: &str, text: &str) -> Result<Config, Diagnostics> {
    parse_with_warnings(file_name, text).map(|(config, _)| config)
}

/// Like [`parse`], and also returns the warnings of a valid config (see
/// [`crate::warnings`]), located like errors, for `seawall check`.
pub fn parse_with_warnings(
    file_name: &str,
    text: &str,
) -> Result<(Config, Vec<Diagnostic>), Diagnostics> {
    let report = Report {
        file: file_name,
        text,
    };
    let document = report.document()?;
    let root = &document;
    let map = SourceMap::build(root);
    let findings = shape::check(root, &schema());
    let pruned: HashSet<String> = findings.iter().map(|f| f.prune.clone()).collect();
    let mut found: Vec<(Problem, Position)> =
        findings.into_iter().map(|f| (f.problem, f.at)).collect();
    match serde_saphyr::from_str::<Config>(text) {
        Ok(config) => {
            found.extend(semantic(&config, &map, &pruned));
            if !found.is_empty() {
                return Err(report.all(found));
            }
            let warnings = validate::warnings(&config)
                .into_iter()
                .map(|p| {
                    let at = map.locate(&p.path);
                    Diagnostic {
                        severity: Severity::Warning,
                        ..report.diagnostic(p, at)
                    }
                })
                .collect();
            Ok((config, warnings))
        }
        Err(error) => {
            // The structural check normally reports the same problem with more context; keep
            // serde's own error only when it points somewhere the check said nothing about.
            let (problem, at) = serde_problem(&error, &map);
            if !found.iter().any(|(_, other)| other.line == at.line) {
                found.push((problem, at));
            }
            if let Some(config) = repair::recover(root, &pruned) {
                found.extend(semantic(&config, &map, &pruned));
            }
            Err(report.all(found))
        }
    }
}

/// The semantic problems of `config`, located, minus those about paths the structural check
/// already rejected (after recovery those hold defaults, not what the file says).
fn semantic(
    config: &Config,
    map: &SourceMap,
    pruned: &HashSet<String>,
) -> Vec<(Problem, Position)> {
    let mut problems = validate::validate(config);
    problems.extend(file_rules(config, map));
    problems
        .into_iter()
        .filter(|p| !pruned.iter().any(|x| overlaps(p, x)))
        .map(|p| {
            let at = map.locate(&p.path);
            (p, at)
        })
        .collect()
}

/// Whether `problem` is about the pruned path `pruned`, one of its ancestors or descendants,
/// or (for a pruned list item, whose removal shifted its siblings) any item of that list.
fn overlaps(problem: &Problem, pruned: &str) -> bool {
    let scope = match pruned
        .strip_suffix(']')
        .and_then(|p| p.rfind('[').map(|i| &pruned[..i]))
    {
        Some(list) if !list.is_empty() && pruned.ends_with(']') => list,
        _ => pruned,
    };
    let nested = |outer: &str, inner: &str| {
        inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
    };
    nested(scope, &problem.path) || nested(&problem.path, scope) || problem.message.contains(scope)
}

/// Reads and parses the config file at `path`. A read error is reported as a diagnostic
/// naming the file.
pub fn load(path: &Path) -> Result<Config, Diagnostics> {
    load_with_warnings(path).map(|(config, _)| config)
}

/// Like [`load`], and also returns the warnings of a valid config.
pub fn load_with_warnings(path: &Path) -> Result<(Config, Vec<Diagnostic>), Diagnostics> {
    let (file, text) = read(path)?;
    parse_with_warnings(&file, &text)
}

/// The file name diagnostics use for `path`, and its text; a read error is a diagnostic
/// naming the file.
pub(crate) fn read(path: &Path) -> Result<(String, String), Diagnostics> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((file, text)),
        Err(error) => {
            let report = Report {
                file: &file,
                text: "",
            };
            Err(report.single(
                &format!("cannot read config file: {error}"),
                "check the path and its permissions",
            ))
        }
    }
}

/// Rules that need to know what the file says, not only the resulting values.
fn file_rules(config: &Config, map: &SourceMap) -> Vec<Problem> {
    let mut problems = Vec::new();
    // `token_env` has a default, so without this rule an admin API exposed by accident would
    // pass validation; exposing it must come with an explicit decision about its token.
    let exposed = !config.admin.listen.ip().is_loopback();
    if exposed && !config.admin.token_env.trim().is_empty() && !map.contains("admin.token_env") {
        problems.push(Problem {
            path: "admin.listen".to_owned(),
            value: Some(config.admin.listen.to_string()),
            message:
                "admin API listens on a non-loopback address without an explicit `admin.token_env`"
                    .to_owned(),
            hint: Some(ADMIN_TOKEN_HINT.to_owned()),
        });
    }
    problems
}

fn serde_problem(error: &serde_saphyr::Error, map: &SourceMap) -> (Problem, Position) {
    let text = match error.without_snippet() {
        serde_saphyr::Error::Budget { breach, .. } => budget_message(breach),
        other => other.to_string(),
    };
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

/// The YAML parser's resource limits (`serde_saphyr::Budget`, its defaults) guard against
/// hostile input; its own message (`budget breached: Nodes { nodes: 250001 }`) names neither
/// the limit nor what to do. Written as "message; hint", as the parser's own messages are.
fn budget_message(breach: &serde_saphyr::budget::BudgetBreach) -> String {
    use serde_saphyr::budget::BudgetBreach as B;
    let limits = serde_saphyr::Budget::default();
    let (what, seen, limit) = match breach {
        B::Nodes { nodes } => (
            "YAML nodes (mappings, lists and scalars)",
            *nodes,
            limits.max_nodes,
        ),
        B::Events { events } => ("YAML parser events", *events, limits.max_events),
        B::Depth { depth } => ("levels of nesting", *depth, limits.max_depth),
        B::Aliases { aliases } => ("aliases (`*name`)", *aliases, limits.max_aliases),
        B::Anchors { anchors } => ("anchors (`&name`)", *anchors, limits.max_anchors),
        B::Documents { documents } => ("YAML documents", *documents, limits.max_documents),
        B::MergeKeys { merge_keys } => ("merge keys (`<<`)", *merge_keys, limits.max_merge_keys),
        B::ScalarBytes { total_scalar_bytes } => (
            "bytes of scalar text",
            *total_scalar_bytes,
            limits.max_total_scalar_bytes,
        ),
        other => {
            return format!(
                "the config exceeds a resource limit of the YAML parser ({other:?}); a config this large or this deeply aliased is not accepted: check it for generated or runaway content"
            );
        }
    };
    format!(
        "the config is too large for the YAML parser: it has more than {limit} {what} (the parser stopped at {seen}); the limit protects the gateway from hostile input and cannot be raised: check the file for a generated or runaway list (a gateway config normally has a few thousand at most)"
    )
}

fn whole_file(message: String, hint: Option<&str>) -> Problem {
    Problem {
        path: String::new(),
        value: None,
        message,
        hint: hint.map(str::to_owned),
    }
}

/// Turns located problems into diagnostics for one file.
pub(crate) struct Report<'a> {
    pub(crate) file: &'a str,
    pub(crate) text: &'a str,
}

impl<'t> Report<'t> {
    /// The one YAML document of the text, with positions.
    fn document(&self) -> Result<MarkedYaml<'t>, Diagnostics> {
        let mut documents = MarkedYaml::load_from_str(self.text).map_err(|error| {
            let at = Position {
                line: error.marker().line(),
                column: error.marker().col() + 1,
            };
            let hint = if error.info().contains("duplicated key") {
                Some("each key may appear once per mapping; merge the two entries")
            } else if self.text.contains('\t') {
                Some("YAML indentation must use spaces, not tabs")
            } else {
                None
            };
            let message = format!("invalid YAML: {}", error.info());
            Diagnostics(vec![self.diagnostic(whole_file(message, hint), at)])
        })?;
        match documents.len() {
            0 => Err(self.single(
                "the file is empty",
                "a config needs at least `listeners`; start from the default in docs/configuration.md",
            )),
            1 => Ok(documents.remove(0)),
            _ => {
                let message = "the file holds more than one YAML document".to_owned();
                let hint = Some("keep one config per file; remove the `---` separator");
                let at = Position::of(&documents[1]);
                Err(Diagnostics(vec![self.diagnostic(whole_file(message, hint), at)]))
            }
        }
    }

    /// A located problem, with credentials redacted: diagnostics end up in CI logs, the
    /// reload error log and `/config`, and the line they quote may hold a Redis password.
    pub(crate) fn diagnostic(&self, problem: Problem, at: Position) -> Diagnostic {
        let line = at
            .line
            .checked_sub(1)
            .and_then(|i| self.text.lines().nth(i));
        let snippet = line.map(|l| redact::yaml_line(l).into_owned());
        // The caret follows the redacted text: a shorter password before it moves it left.
        let snippet_column = line.map_or(at.column, |l| {
            let before: String = l.chars().take(at.column.saturating_sub(1)).collect();
            redact::yaml_line(&before).chars().count() + 1
        });
        let last_key = problem.path.rsplit(['.', '[']).next().unwrap_or_default();
        let value = match problem.value {
            Some(_) if redact::is_secret_key(last_key) => Some(redact::MASK.to_owned()),
            other => other.map(|v| redact::text(&v).into_owned()),
        };
        Diagnostic {
            severity: Severity::Error,
            file: self.file.to_owned(),
            line: at.line,
            column: at.column,
            path: problem.path,
            value,
            message: redact::text(&problem.message).into_owned(),
            hint: problem.hint.map(|h| redact::text(&h).into_owned()),
            snippet,
            snippet_column,
        }
    }

    fn all(&self, mut found: Vec<(Problem, Position)>) -> Diagnostics {
        found.sort_by_key(|(_, at)| *at);
        Diagnostics(
            found
                .into_iter()
                .map(|(p, at)| self.diagnostic(p, at))
                .collect(),
        )
    }

    fn single(&self, message: &str, hint: &str) -> Diagnostics {
        Diagnostics(vec![Diagnostic {
            severity: Severity::Error,
            file: self.file.to_owned(),
            line: 0,
            column: 0,
            path: String::new(),
            value: None,
            message: message.to_owned(),
            hint: Some(hint.to_owned()),
            snippet: None,
            snippet_column: 0,
        }])
    }
}
