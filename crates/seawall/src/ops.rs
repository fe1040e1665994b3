//! `seawall rules` and `seawall dashboard`: the Prometheus rule file and the Grafana
//! dashboard generated from a config (`seawall-ops`), written to stdout or `--out FILE`.
//!
//! Exit codes: 0 written; 1 the output could not be written; 3 the config is invalid (its
//! diagnostics on stderr, nothing written).

use std::{path::PathBuf, process::ExitCode};

use crate::{EXIT_FAILURE, EXIT_INVALID_CONFIG, emit};

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Artefact {
    /// The Prometheus rule file (YAML).
    Rules,
    /// The Grafana dashboard (JSON).
    Dashboard,
}

/// Generates `artefact` from the config at `config` into `out` (stdout when `None`).
pub fn run(artefact: Artefact, config: &std::path::Path, out: Option<&PathBuf>) -> ExitCode {
    let config = match seawall_config::load(config) {
        Ok(c) => c,
        Err(diagnostics) => {
            let _ = emit(std::io::stderr(), &diagnostics);
            return ExitCode::from(EXIT_INVALID_CONFIG);
        }
    };
    let text = match artefact {
        Artefact::Rules => seawall_ops::rules::render(&config),
        Artefact::Dashboard => {
            match serde_json::to_string_pretty(&seawall_ops::dashboard::render(&config)) {
                Ok(t) => t + "\n",
                Err(e) => {
                    let _ = emit(
                        std::io::stderr(),
                        format!("error: cannot render the dashboard: {e}"),
                    );
                    return ExitCode::from(EXIT_FAILURE);
                }
            }
        }
    };
    let written = match out {
        Some(path) => std::fs::write(path, &text)
            .map_err(|e| format!("error: cannot write {}: {e}", path.display())),
        None => {
            use std::io::Write as _;
            let mut w = std::io::stdout().lock();
            match w.write_all(text.as_bytes()).and_then(|()| w.flush()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    Err(format!("error: cannot write to stdout: {e}"))
                }
                _ => Ok(()),
            }
        }
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            let _ = emit(std::io::stderr(), message);
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
