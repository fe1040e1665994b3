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
        /// The files are drill scenarios, checked as `seawall drill` reads them
        /// (docs/drills.md); --score does not apply.
        #[arg(long, conflicts_with_all = ["score", "min_score"])]
        drill: bool,
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
    /// Run a resilience drill: open-loop load, faults and toxics at offsets, thresholds;
    /// writes report.html, report.json and junit.xml.
    #[command(after_help = crate::drill::AFTER_HELP)]
    Drill(crate::drill::DrillArgs),
    /// Run the built-in baseline drill with nothing else installed: gateway, sim and a
    /// chaos proxy in-process; a dependency slows, fails, recovers (about a minute).
    #[command(after_help = crate::drill::AFTER_HELP)]
    Demo(crate::demo::DemoArgs),
    /// Run the controllable upstream (delays, status codes, slow bodies, hangs, resets).
    Sim {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: SocketAddr,
    },
    /// Run a TCP fault proxy that speaks Toxiproxy's HTTP API (Toxiproxy clients work
    /// unchanged), or drive one: list, inspect, create, toggle, delete, toxic add|update|remove.
    #[command(
        after_help = "With no verb, or with `serve`, runs the server; the other verbs are its client \
                      (server from --url or TOXIPROXY_URL). docs/chaos.md lists the API and every toxic."
    )]
    Chaos(ChaosArgs),
}

/// `seawall chaos` arguments: a verb, or the server's own flags.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ChaosArgs {
    #[command(subcommand)]
    pub command: Option<ChaosCommand>,
    #[command(flatten)]
    pub serve: ChaosServeArgs,
    /// Where the client verbs find the server, and how they print.
    #[command(flatten)]
    pub client: crate::chaos_client::ClientArgs,
}

/// `seawall chaos` verbs.
#[derive(Subcommand, Debug)]
pub enum ChaosCommand {
    /// Run the server (what `seawall chaos` alone does).
    Serve(ChaosServeArgs),
    /// The client verbs.
    #[command(flatten)]
    Client(crate::chaos_client::Verb),
}

/// `seawall chaos serve` arguments (Toxiproxy's server flags).
#[derive(Args, Debug, Clone)]
pub struct ChaosServeArgs {
    /// Host or address the API listens on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port the API listens on.
    #[arg(long, default_value_t = 8474)]
    pub port: u16,
    /// A JSON file of proxies (the `POST /populate` body) to create at start.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Seed for toxicity draws and jitter, to make a run repeatable.
    #[arg(long, allow_negative_numbers = true)]
    pub seed: Option<i64>,
}

/// `seawall config` subcommands.
#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print the JSON Schema of the config file (with --drill: of a drill scenario).
    Schema {
        /// The drill scenario's schema instead of the gateway config's.
        #[arg(long)]
        drill: bool,
    },
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
