//! `seawall check`: validates config files and, with `--score`, scores each valid one
//! (`seawall-score`) and prints the report as text, JSON or SARIF.
//!
//! Exit codes: 0 every file valid (and, with `--min-score`, scoring at least N); 3 a file
//! is invalid (its diagnostics go to stderr; it is left out of the report); 4 a valid
//! file scored below `--min-score`. An invalid file wins over a low score.

use std::{path::PathBuf, process::ExitCode};

use clap::ValueEnum;
use seawall_config::Located;
use seawall_score::{Scored, render};

use crate::{EXIT_FAILURE, EXIT_INVALID_CONFIG, emit};

/// Exit code for a config that scored below `--min-score`.
pub const EXIT_BELOW_MIN_SCORE: u8 = 4;

/// The `after_help` of `seawall check`.
pub const AFTER_HELP: &str = "Exit codes: 0 every file valid (and scoring at least --min-score), 2 usage error,\n\
     3 a file is invalid, 4 a valid file scored below --min-score.\n\
     With --score, the report goes to stdout and diagnostics to stderr; see docs/score.md.";

/// The report formats of `--score`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScoreFormat {
    /// Findings grouped by route and upstream, like compiler errors.
    Text,
    /// One JSON document for every file.
    Json,
    /// SARIF 2.1.0, for code-scanning UIs.
    Sarif,
}

/// `--min-score`: an integer from 0 to 100, the range of the score.
pub fn parse_min_score(text: &str) -> Result<u32, String> {
    let n: i64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a whole number; give a score from 0 to 100"))?;
    u32::try_from(n).ok().filter(|n| *n <= 100).ok_or_else(|| {
        format!("the score is between 0 and 100, so {n} can never be reached; e.g. --min-score 80")
    })
}

/// What `seawall check` was asked.
#[derive(Debug)]
pub struct Options {
    /// The config files, checked in order.
    pub files: Vec<PathBuf>,
    /// `--score`.
    pub score: bool,
    /// `--min-score N`.
    pub min_score: Option<u32>,
    /// `--format`.
    pub format: ScoreFormat,
    /// `--drill`: the files are drill scenarios.
    pub drill: bool,
}

/// Runs `seawall check`.
pub fn run(options: &Options) -> ExitCode {
    if options.drill {
        return drills(&options.files);
    }
    // --min-score and a report format only make sense with a score: they imply it.
    let scoring =
        options.score || options.min_score.is_some() || options.format != ScoreFormat::Text;
    let mut invalid = 0usize;
    let mut scored = Vec::new();
    for file in &options.files {
        match validate(file) {
            Some(located) if scoring => scored.push(seawall_score::score(&located)),
            Some(located) => {
                let ok = match located.warnings.len() {
                    0 => format!("{}: ok", file.display()),
                    1 => format!("{}: ok (1 warning)", file.display()),
                    n => format!("{}: ok ({n} warnings)", file.display()),
                };
                let _ = emit(std::io::stdout(), ok);
            }
            None => invalid += 1,
        }
    }
    if scoring && report(&scored, options).is_err() {
        return ExitCode::from(EXIT_FAILURE);
    }
    let below = options
        .min_score
        .is_some_and(|min| scored.iter().any(|s| s.score < min));
    if invalid > 0 {
        ExitCode::from(EXIT_INVALID_CONFIG)
    } else if below {
        ExitCode::from(EXIT_BELOW_MIN_SCORE)
    } else {
        ExitCode::SUCCESS
    }
}

/// `--drill`: each scenario parsed and checked as `seawall drill` does (same diagnostics);
/// exit 3 when one is invalid.
fn drills(files: &[PathBuf]) -> ExitCode {
    let mut invalid = 0usize;
    for file in files {
        match seawall_drill::scenario::parse::load(file, &[]) {
            Ok(_) => {
                let _ = emit(std::io::stdout(), format!("{}: ok", file.display()));
            }
            Err(diagnostics) => {
                let _ = emit(std::io::stderr(), &diagnostics);
                invalid += 1;
            }
        }
    }
    if invalid > 0 {
        ExitCode::from(EXIT_INVALID_CONFIG)
    } else {
        ExitCode::SUCCESS
    }
}

/// Loads `file`, printing its warnings (or its problems) to stderr; `None` when invalid.
fn validate(file: &std::path::Path) -> Option<Located> {
    // The exit code is the verdict; output nobody reads any more is not an error.
    match seawall_config::load_located(file) {
        Ok(located) => {
            // Warnings go to stderr with the errors; they do not change the verdict.
            for warning in &located.warnings {
                let _ = emit(std::io::stderr(), format!("{warning}\n"));
            }
            // Valid config, but possibly asking for what this build left out (Redis
            // without the `redis` feature): invalid here, as `run` would refuse it.
            let unsupported = seawall_gateway::middleware::rate_limit::unsupported(&located.config);
            if unsupported.is_empty() {
                return Some(located);
            }
            for problem in unsupported {
                let _ = emit(std::io::stderr(), format!("{}: {problem}", file.display()));
            }
            None
        }
        Err(diagnostics) => {
            let _ = emit(std::io::stderr(), &diagnostics);
            None
        }
    }
}

/// Prints the score report of the valid files.
fn report(scored: &[Scored], options: &Options) -> std::io::Result<()> {
    let out = std::io::stdout();
    match options.format {
        ScoreFormat::Text => {
            for (i, s) in scored.iter().enumerate() {
                let sep = if i == 0 { "" } else { "\n" };
                emit(
                    out.lock(),
                    format!("{sep}{}", render::text::render(s).trim_end()),
                )?;
                if let Some(min) = options.min_score.filter(|min| s.score < *min) {
                    let _ = emit(
                        std::io::stderr(),
                        format!("{}: score {} is below --min-score {min}", s.file, s.score),
                    );
                }
            }
            Ok(())
        }
        ScoreFormat::Json => json(&render::json::render(scored, options.min_score)),
        ScoreFormat::Sarif => json(&render::sarif::render(scored, env!("CARGO_PKG_VERSION"))),
    }
}

fn json(value: &serde_json::Value) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    emit(std::io::stdout().lock(), text)
}
