//! User-facing config diagnostics: one located problem ([`Diagnostic`]) and the full report of
//! a file ([`Diagnostics`]), rendered like compiler errors.
//!
//! A report always lists every problem found, so an operator fixes a file in one round trip
//! instead of one error per run.

use std::fmt;

use crate::redact::escape_controls;

/// Whether a diagnostic refuses the config or only points at a likely mistake.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Severity {
    /// The config is invalid.
    #[default]
    Error,
    /// The config is valid and runs, but probably not as meant.
    Warning,
    /// The config is valid and probably means it, but a setting is worth a second look
    /// (used by `seawall check --score`; parsing never reports it).
    Info,
}

impl Severity {
    /// `error` or `warning`, as the rendered diagnostic starts.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// One problem in a config file, with everything needed to find and fix it.
///
/// The fields quoting the file (`snippet`, `value`, `message`, `hint`) have credentials
/// redacted (see [`crate::redact`]); rendering also escapes control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// An error, or a warning (which does not make the config invalid).
    pub severity: Severity,
    /// The file name as given to [`crate::parse`] or [`crate::load`].
    pub file: String,
    /// 1-based line; 0 when the problem has no position (e.g. the file could not be read).
    pub line: usize,
    /// 1-based column, in characters; 0 when the problem has no position.
    pub column: usize,
    /// The key path, e.g. `upstreams[1].timeouts.connect`; empty for the whole file.
    pub path: String,
    /// The offending value as written (or as resolved, for defaults), when there is one.
    pub value: Option<String>,
    /// What is wrong, lowercase, without a trailing period.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
    /// The source line the problem is on, shown under the location.
    pub snippet: Option<String>,
    /// The caret's 1-based column in `snippet`, in characters: `column`, unless redaction
    /// shortened the line before it.
    pub snippet_column: usize,
}

impl Diagnostic {
    /// Everything the rendered diagnostic shows below its first line (location, source
    /// line with a caret, key, value, hint), for reports that write their own first line
    /// (`seawall check --score` adds the finding's code).
    pub fn frame(&self) -> impl fmt::Display + '_ {
        Frame(self)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = escape_controls(&self.message);
        write!(f, "{}: {message}\n{}", self.severity.as_str(), self.frame())
    }
}

/// See [`Diagnostic::frame`].
struct Frame<'a>(&'a Diagnostic);

impl fmt::Display for Frame<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        // Laid out like rustc: the gutter is as wide as the line number, and every line after
        // the message hangs off it.
        let number = d.line.to_string();
        let gutter = " ".repeat(if d.snippet.is_some() { number.len() } else { 1 });
        // Everything quoted from the file is escaped: a control character in a config must
        // not reach the terminal (or the log) raw.
        let esc = escape_controls;
        if d.line == 0 {
            write!(f, "{gutter}--> {}", esc(&d.file))?;
        } else {
            write!(f, "{gutter}--> {}:{}:{}", esc(&d.file), d.line, d.column)?;
        }
        if let Some(line) = &d.snippet {
            // The caret sits under the escaped text, which may be wider than the original.
            let before: String = line
                .chars()
                .take(d.snippet_column.saturating_sub(1))
                .collect();
            let caret_pad = " ".repeat(esc(&before).chars().count());
            write!(
                f,
                "\n{gutter} |\n{number} | {}\n{gutter} | {caret_pad}^",
                esc(line)
            )?;
        }
        if !d.path.is_empty() {
            write!(f, "\n{gutter} = key: {}", esc(&d.path))?;
        }
        if let Some(value) = &d.value {
            write!(f, "\n{gutter} = value: {}", esc(value))?;
        }
        if let Some(hint) = &d.hint {
            write!(f, "\n{gutter} = hint: {}", esc(hint))?;
        }
        Ok(())
    }
}

/// Every problem found in one config file. Never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// The problems, in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    /// How many problems were found.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no problem was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for diagnostic in &self.0 {
            writeln!(f, "{diagnostic}\n")?;
        }
        let file = self.0.first().map_or("the config", |d| d.file.as_str());
        match self.0.len() {
            1 => write!(f, "1 problem found in {file}"),
            n => write!(f, "{n} problems found in {file}"),
        }
    }
}

impl std::error::Error for Diagnostics {}
