//! User-facing config diagnostics: one located problem ([`Diagnostic`]) and the full report of
//! a file ([`Diagnostics`]), rendered like compiler errors.
//!
//! A report always lists every problem found, so an operator fixes a file in one round trip
//! instead of one error per run.

use std::fmt;

/// One problem in a config file, with everything needed to find and fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
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
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Laid out like rustc: the gutter is as wide as the line number, and every line after
        // the message hangs off it.
        let number = self.line.to_string();
        let gutter = " ".repeat(if self.snippet.is_some() {
            number.len()
        } else {
            1
        });
        writeln!(f, "error: {}", self.message)?;
        if self.line == 0 {
            write!(f, "{gutter}--> {}", self.file)?;
        } else {
            write!(f, "{gutter}--> {}:{}:{}", self.file, self.line, self.column)?;
        }
        if let Some(line) = &self.snippet {
            let caret_pad = " ".repeat(self.column.saturating_sub(1));
            write!(
                f,
                "\n{gutter} |\n{number} | {line}\n{gutter} | {caret_pad}^"
            )?;
        }
        if !self.path.is_empty() {
            write!(f, "\n{gutter} = key: {}", self.path)?;
        }
        if let Some(value) = &self.value {
            write!(f, "\n{gutter} = value: {value}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n{gutter} = hint: {hint}")?;
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
