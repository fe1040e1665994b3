//! `seawall drill SCENARIO.yaml`: reads the scenario (exit 3 when invalid) and runs it.

use std::{path::PathBuf, process::ExitCode};

use clap::Args;

/// Exit codes, shown in `seawall drill --help`.
pub const AFTER_HELP: &str = "Exit codes: 0 every threshold passed, 1 a threshold failed, 2 usage error,\n\
                              3 invalid scenario, 4 steady state failed before the first action or target unreachable.\n\
                              Ctrl-C stops the load early; every fault and toxic the drill added is removed first.";

/// Exit code for an invalid scenario.
const EXIT_INVALID_SCENARIO: u8 = 3;

/// `seawall drill` arguments.
#[derive(Args, Debug)]
pub struct DrillArgs {
    /// The scenario file (YAML; `seawall config schema --drill` prints its schema).
    pub scenario: PathBuf,
    /// Where the report goes (default: drill-YYYYMMDD-HHMMSS in the current directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override a scenario value, e.g. --set load.phases[0].rate=500 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

/// Runs `seawall drill`.
pub fn run(args: &DrillArgs) -> ExitCode {
    match seawall_drill::scenario::parse::load(&args.scenario, &args.sets) {
        Ok(_) => {
            eprintln!("{}: ok", args.scenario.display());
            ExitCode::SUCCESS
        }
        Err(diagnostics) => {
            eprintln!("{diagnostics}");
            ExitCode::from(EXIT_INVALID_SCENARIO)
        }
    }
}
