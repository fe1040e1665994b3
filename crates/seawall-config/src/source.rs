//! A valid config together with its text and the position of every key, for tools that
//! report on a config after it parsed (`seawall check --score`): they work on the typed
//! [`Config`] and name key paths, and [`Source`] turns a path back into a located
//! [`Diagnostic`] with the same code frame and redaction as a parse error.

use std::path::Path;

use saphyr::{LoadableYamlNode, MarkedYaml};

use crate::{
    Config,
    diagnostic::{Diagnostic, Diagnostics, Severity},
    locate::SourceMap,
    parse::{Report, parse_with_warnings, read},
    validate::Problem,
};

/// A parsed, validated config with its source.
#[derive(Debug)]
pub struct Located {
    /// The config.
    pub config: Config,
    /// The warnings of the valid config, as [`crate::parse_with_warnings`] gives them.
    pub warnings: Vec<Diagnostic>,
    /// Where its keys are.
    pub source: Source,
}

/// The text of one config file and the position of each key in it.
#[derive(Debug)]
pub struct Source {
    file: String,
    text: String,
    map: SourceMap,
}

impl Source {
    /// The file name as given to [`parse_located`] or [`load_located`].
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Whether `path` (e.g. `upstreams[0].pool.idle_timeout`) is written in the file, as
    /// opposed to filled in by a default.
    pub fn contains(&self, path: &str) -> bool {
        self.map.contains(path)
    }

    /// `problem`, located at its key path (or at the nearest written ancestor when the key
    /// is a default), with the file's line quoted and credentials redacted.
    pub fn diagnostic(&self, severity: Severity, problem: Problem) -> Diagnostic {
        let at = self.map.locate(&problem.path);
        let report = Report {
            file: &self.file,
            text: &self.text,
        };
        Diagnostic {
            severity,
            ..report.diagnostic(problem, at)
        }
    }
}

/// Like [`crate::parse_with_warnings`], and also keeps the source, so that later reports
/// on the config can be located.
pub fn parse_located(file_name: &str, text: &str) -> Result<Located, Diagnostics> {
    let (config, warnings) = parse_with_warnings(file_name, text)?;
    // The text parsed above, so it is one YAML document; building the map again costs a
    // second parse of a small file and keeps the parser's own path unchanged.
    let map = MarkedYaml::load_from_str(text)
        .ok()
        .and_then(|mut documents| (!documents.is_empty()).then(|| documents.remove(0)))
        .map(|root| SourceMap::build(&root))
        .unwrap_or_default();
    let source = Source {
        file: file_name.to_owned(),
        text: text.to_owned(),
        map,
    };
    Ok(Located {
        config,
        warnings,
        source,
    })
}

/// Reads the config file at `path` and parses it like [`parse_located`].
pub fn load_located(path: &Path) -> Result<Located, Diagnostics> {
    let (file, text) = read(path)?;
    parse_located(&file, &text)
}
