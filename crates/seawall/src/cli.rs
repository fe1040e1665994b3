//! The command line, declared with clap's derive API.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Seawall: a resilience gateway for HTTP services.
#[derive(Parser, Debug)]
#[command(
    name = "seawall",
    version,
    about,
    after_help = "Exit codes: 0 success, 1 runtime failure, 2 usage error, 3 invalid config,\n\
                  4 a config scored below `check --min-score`.\n\
                  Logs go to stderr (RUST_LOG sets the level, default info); access logs go to stdout."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Format of the operational log on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Log formats.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gateway (with no --config: the embedded default, in front of an in-process sim).
    #[command(
        after_help = "Signals: SIGHUP reloads the config file. SIGTERM or SIGINT stops accepting and drains\n\
                      in-flight requests for up to shutdown.drain_timeout; a second one exits at once (code 1)."
    )]
    Run(RunArgs),
    /// Validate config files without running; prints every problem found.
    #[command(after_help = crate::check::AFTER_HELP)]
    Check {
        /// Config files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Also score each valid config's resilience from 0 to 100, with findings that
        /// carry a code, the key and the fix (docs/score.md).
        #[arg(long)]
        score: bool,
        /// Exit with code 4 when a config scores below N, 0-100 (implies --score).
        #[arg(long, value_name = "N", value_parser = crate::check::parse_min_score)]
        min_score: Option<u32>,
        /// Output of --score: text, json, or sarif (SARIF 2.1.0, for code-scanning UIs); json
        /// and sarif imply --score.
        #[arg(long, value_enum, default_value_t = crate::check::ScoreFormat::Text)]
        format: crate::check::ScoreFormat,
    },
    /// Write Prometheus recording and alerting rules for a config: SLO burn rates,
    /// latency baselines, gateway alerts (docs/operations.md).
    Rules(OpsArgs),
    /// Write a Grafana dashboard (JSON) for a config (docs/operations.md).
    Dashboard(OpsArgs),
    /// Config tooling.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Drive a chaos API (`seawall chaos` or Toxiproxy): list, inspect, create, toggle and
    /// delete proxies; add, update and remove toxics.
    Chaos {
        #[command(flatten)]
        client: crate::chaos_client::ClientArgs,
        #[command(subcommand)]
        verb: crate::chaos_client::Verb,
    },
    /// Run the controllable upstream (delays, status codes, slow bodies, hangs, resets).
    Sim {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: SocketAddr,
    },
}

/// `seawall config` subcommands.
#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print the JSON Schema of the config file.
    Schema,
}

/// `seawall rules` and `seawall dashboard` arguments.
#[derive(Args, Debug)]
pub struct OpsArgs {
    /// Config file (YAML).
    pub config: PathBuf,
    /// Write here instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `seawall run` arguments.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Config file (YAML). Without it, the embedded default config is used.
    #[arg(long, short = 'c', env = "SEAWALL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Override the first listener's address.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Override the admin API's address.
    #[arg(long)]
    pub admin: Option<SocketAddr>,
    /// Override the in-process sim's address (endpoints that pointed at it follow).
    #[arg(long)]
    pub sim_listen: Option<SocketAddr>,
    /// Do not reload when the config file changes (SIGHUP and POST /reload still work).
    #[arg(long)]
    pub no_watch: bool,
}
