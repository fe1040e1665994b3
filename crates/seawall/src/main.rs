//! The `seawall` binary: command-line parsing, logging set-up, signals and exit codes.
//! Everything else lives in the library crates; this stays thin.
//!
//! Exit codes (also in `seawall --help` and docs/cli.md):
//! - 0: success (including a graceful shutdown that drained in time);
//! - 1: runtime failure (cannot bind, cannot start, drain deadline cut requests off);
//! - 2: command-line usage error;
//! - 3: the config is invalid.

mod chaos_client;
mod cli;
mod drill;
mod run;

use std::{path::Path, process::ExitCode};

use clap::Parser as _;

use crate::cli::{Cli, Command, ConfigCommand};

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(all(feature = "jemalloc", not(feature = "mimalloc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Exit code for runtime failures.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for an invalid config.
pub const EXIT_INVALID_CONFIG: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { files } => check(&files),
        Command::Config {
            command: ConfigCommand::Schema { drill },
        } => match serde_json::to_string_pretty(&if drill {
            seawall_drill::Scenario::schema()
        } else {
            seawall_config::schema()
        }) {
            Ok(text) => match emit(std::io::stdout().lock(), &text) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    let _ = emit(
                        std::io::stderr(),
                        format!("error: cannot write the schema: {e}"),
                    );
                    ExitCode::from(EXIT_FAILURE)
                }
            },
            Err(e) => {
                let _ = emit(
                    std::io::stderr(),
                    format!("error: cannot render the schema: {e}"),
                );
                ExitCode::from(EXIT_FAILURE)
            }
        },
        Command::Run(args) => run::run(args, cli.log_format),
        Command::Sim { listen } => run::sim(listen, cli.log_format),
        Command::Chaos { client, verb } => chaos_client::run(&client, verb),
        Command::Drill(args) => drill::run(&args),
    }
}

fn check(files: &[std::path::PathBuf]) -> ExitCode {
    let mut bad = 0usize;
    for file in files {
        // The exit code is the verdict; output nobody reads any more is not an error.
        match seawall_config::load_with_warnings(Path::new(file)) {
            Ok((config, warnings)) => {
                // Warnings go to stderr with the errors; they do not change the verdict.
                for warning in &warnings {
                    let _ = emit(std::io::stderr(), format!("{warning}\n"));
                }
                // Valid config, but possibly asking for what this build left out (Redis
                // without the `redis` feature): invalid here, as `run` would refuse it.
                let unsupported = seawall_gateway::middleware::rate_limit::unsupported(&config);
                if unsupported.is_empty() {
                    let ok = match warnings.len() {
                        0 => format!("{}: ok", file.display()),
                        1 => format!("{}: ok (1 warning)", file.display()),
                        n => format!("{}: ok ({n} warnings)", file.display()),
                    };
                    let _ = emit(std::io::stdout(), ok);
                } else {
                    bad += 1;
                    for problem in unsupported {
                        let _ = emit(std::io::stderr(), format!("{}: {problem}", file.display()));
                    }
                }
            }
            Err(diagnostics) => {
                bad += 1;
                let _ = emit(std::io::stderr(), &diagnostics);
            }
        }
    }
    if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID_CONFIG)
    }
}

/// Writes `text` and a newline. A reader that went away (`seawall config schema | head`) is
/// not an error: `println!` would panic on the broken pipe instead.
fn emit(mut w: impl std::io::Write, text: impl std::fmt::Display) -> std::io::Result<()> {
    match writeln!(w, "{text}").and_then(|()| w.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
