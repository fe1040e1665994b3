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
    let scenario = match seawall_drill::scenario::parse::load(&args.scenario, &args.sets) {
        Ok(s) => s,
        Err(diagnostics) => {
            eprintln!("{diagnostics}");
            return ExitCode::from(EXIT_INVALID_SCENARIO);
        }
    };
    let out = args.out.clone().unwrap_or_else(|| default_out("drill"));
    let base_dir = args
        .scenario
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let outcome = rt.block_on(async move {
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        // Ctrl-C (and SIGTERM) end the load early; the drill still undoes every action
        // and writes its report. A second signal is not special-cased: undo is bounded.
        tokio::spawn(async move {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
            eprintln!("\ninterrupted: stopping the load and undoing every action");
            let _ = stop_tx.send(true);
            // Keep the sender alive so the receivers do not see it closed.
            std::future::pending::<()>().await;
        });
        let options = seawall_drill::run::Options {
            base_dir,
            out,
            progress: seawall_drill::progress::Progress::detect(),
            stop,
            version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        seawall_drill::run::run(scenario, options).await
    });
    println!("{}", outcome.summary);
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    ExitCode::from(outcome.code)
}

/// `{prefix}-YYYYMMDD-HHMMSS` (UTC) in the current directory.
pub fn default_out(prefix: &str) -> PathBuf {
    let now = std::time::SystemTime::now();
    let stamp = humantime::format_rfc3339_seconds(now).to_string();
    let compact: String = stamp
        .chars()
        .filter(char::is_ascii_digit)
        .take(14)
        .collect();
    let (date, time) = compact.split_at(compact.len().min(8));
    PathBuf::from(format!("{prefix}-{date}-{time}"))
}
