//! The `seawall` binary: command-line parsing, logging set-up, signals and exit codes.
//! Everything else lives in the library crates; this stays thin.
//!
//! Exit codes (also in `seawall --help` and docs/cli.md):
//! - 0: success (including a graceful shutdown that drained in time);
//! - 1: runtime failure (cannot bind, cannot start, drain deadline cut requests off);
//! - 2: command-line usage error;
//! - 3: the config is invalid;
//! - 4: `check --min-score N`: a config scored below N.

mod chaos_client;
mod chaos_embed;
mod check;
mod cli;
mod demo;
mod drill;
mod ops;
mod run;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{ChaosCommand, Cli, Command, ConfigCommand};

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
        Command::Check {
            files,
            score,
            min_score,
            format,
            drill,
        } => check::run(&check::Options {
            files,
            score,
            min_score,
            format,
            drill,
        }),
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
        Command::Rules(args) => ops::run(ops::Artefact::Rules, &args.config, args.out.as_ref()),
        Command::Dashboard(args) => {
            ops::run(ops::Artefact::Dashboard, &args.config, args.out.as_ref())
        }
        Command::Run(args) => run::run(args, cli.log_format),
        Command::Sim { listen } => run::sim(listen, cli.log_format),
        Command::Chaos(args) => match args.command {
            Some(ChaosCommand::Serve(serve)) => run::chaos(serve, cli.log_format),
            Some(ChaosCommand::Client(verb)) => chaos_client::run(&args.client, verb),
            None => run::chaos(args.serve, cli.log_format),
        },
        Command::Drill(args) => drill::run(&args),
        Command::Demo(args) => demo::run(&args),
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
