//! `seawall run`, `seawall sim` and `seawall chaos`: the tokio runtime, logging, signals.
//! `seawall run` also starts the config's `chaos:` proxies (see `chaos_embed`).

use std::{net::SocketAddr, process::ExitCode, sync::Arc};

use seawall_config::Config;
use seawall_gateway::{ConfigOverride, Gateway, GatewayOptions};
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::{
    EXIT_FAILURE, EXIT_INVALID_CONFIG,
    chaos_embed::EmbeddedChaos,
    cli::{ChaosServeArgs, LogFormat, RunArgs},
};

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only for a person at a terminal: log files, pipes and journald get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    // A panic is caught per request by the gateway; this hook makes sure its message and
    // location reach the log in our format instead of raw stderr.
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_owned());
        tracing::error!(panic = %message, location = location.as_deref().unwrap_or("unknown"), "Panic.");
    }));
}

/// The runtime: tokio's current-thread scheduler when the process may use one CPU (a
/// container limit, or `taskset` as in `bench/`), else the work-stealing scheduler with one
/// worker per usable CPU. On one CPU the work-stealing scheduler only adds cost: its worker
/// shares the CPU with nothing to steal from, yet every wake-up still goes through its
/// atomic queues.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let worker_threads_set = std::env::var_os("TOKIO_WORKER_THREADS").is_some();
    if cpus == 1 && !worker_threads_set {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    }
}

/// Applies command-line address overrides.
///
/// `--listen` moves the first listener of the config the gateway starts with. It stays with
/// that listener (found by name) in reloaded configs, so that reordering the listeners in
/// the file does not move the override onto another one; if that name is gone, the first
/// listener takes it.
fn overrides(args: &RunArgs, initial: &Config) -> Option<ConfigOverride> {
    let (listen, admin, sim) = (args.listen, args.admin, args.sim_listen);
    if listen.is_none() && admin.is_none() && sim.is_none() {
        return None;
    }
    let first = initial.listeners.first().map(|l| l.name.clone());
    Some(Arc::new(move |c: &mut Config| {
        if let Some(addr) = listen {
            let named = c
                .listeners
                .iter()
                .position(|l| Some(&l.name) == first.as_ref());
            if let Some(l) = c.listeners.get_mut(named.unwrap_or(0)) {
                l.listen = addr;
            }
        }
        if let Some(addr) = admin {
            c.admin.listen = addr;
        }
        if let (Some(addr), Some(s)) = (sim, c.sim.as_mut()) {
            let old = s.listen.to_string();
            s.listen = addr;
            for u in &mut c.upstreams {
                for e in &mut u.endpoints {
                    if *e == old {
                        *e = addr.to_string();
                    }
                }
            }
        }
    }))
}

/// `seawall run`.
pub fn run(args: RunArgs, log_format: LogFormat) -> ExitCode {
    init_logging(log_format);
    let loaded = match &args.config {
        Some(path) => seawall_config::load(path),
        None => seawall_config::parse(
            seawall_config::DEFAULT_CONFIG_NAME,
            seawall_config::DEFAULT_CONFIG,
        ),
    };
    let mut config = match loaded {
        Ok(c) => c,
        Err(diagnostics) => {
            eprintln!("{diagnostics}");
            return ExitCode::from(EXIT_INVALID_CONFIG);
        }
    };
    let overrides = overrides(&args, &config);
    if let Some(o) = &overrides {
        o(&mut config);
    }
    let drain = config.shutdown.drain_timeout.get();
    let chaos_config = config.chaos.clone();
    let options = GatewayOptions {
        watch: args.config.is_some() && !args.no_watch,
        config_path: args.config.clone(),
        overrides,
        ..GatewayOptions::default()
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let code = rt.block_on(async move {
        // Installed before the gateway starts, so that a stop signal is never missed.
        let mut signals = match Signals::install() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: cannot install signal handlers: {e}");
                return ExitCode::from(EXIT_FAILURE);
            }
        };
        // Before the gateway, so that its first requests already pass the proxies.
        let chaos = match &chaos_config {
            Some(c) => match EmbeddedChaos::start(c).await {
                Ok(chaos) => {
                    tracing::info!(address = %chaos.addr, proxies = c.proxies.len(), "Chaos API listening.");
                    Some(chaos)
                }
                Err(e) => {
                    tracing::error!(error = %e, "Cannot start the chaos proxies.");
                    eprintln!("error: {e}");
                    return ExitCode::from(EXIT_FAILURE);
                }
            },
            None => None,
        };
        let gateway = match Gateway::start(config, options).await {
            Ok(g) => g,
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "Cannot start.");
                eprintln!("error: {e:#}");
                if let Some(chaos) = chaos {
                    chaos.stop().await;
                }
                return ExitCode::from(EXIT_FAILURE);
            }
        };
        if let Some(addr) = gateway.sim_addr() {
            tracing::info!(address = %addr, "In-process sim listening.");
        }
        let code = serve_until_stopped(&gateway, &mut signals, drain).await;
        // After the drain: the gateway's last requests may still pass the proxies.
        if let Some(chaos) = chaos {
            chaos.stop().await;
        }
        code
    });
    // Everything that matters has drained; do not wait on idle background tasks.
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    code
}

/// Waits for a stop signal, then drains the gateway (a second signal cuts it short).
async fn serve_until_stopped(
    gateway: &Gateway,
    signals: &mut Signals,
    drain: std::time::Duration,
) -> ExitCode {
    signals.until_stop(gateway).await;
    tracing::info!(drain_timeout = ?drain, "Shutting down: no new connections; draining in-flight requests (signal again to stop at once).");
    // A second SIGTERM/SIGINT (an impatient Ctrl-C) cuts the drain short.
    let drained = tokio::select! {
        drained = gateway.shutdown(drain) => drained,
        () = signals.stop() => {
            tracing::warn!("Second stop signal: exiting without waiting for in-flight requests.");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    if drained {
        tracing::info!("Drained; bye.");
        ExitCode::SUCCESS
    } else {
        tracing::warn!("Drain deadline passed with requests still in flight.");
        ExitCode::from(EXIT_FAILURE)
    }
}

/// The process's signal handlers for `seawall run`.
struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Returns on SIGTERM or SIGINT; reloads on SIGHUP.
    async fn until_stop(&mut self, gateway: &Gateway) {
        loop {
            tokio::select! {
                _ = self.term.recv() => return,
                _ = self.int.recv() => return,
                _ = self.hup.recv() => {
                    tracing::info!("SIGHUP: reloading config.");
                    if let Err(error) = gateway.reload().await {
                        tracing::warn!(%error, "Reload on SIGHUP failed.");
                    }
                }
            }
        }
    }

    /// The next SIGTERM or SIGINT.
    async fn stop(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// `seawall sim`.
pub fn sim(listen: SocketAddr, log_format: LogFormat) -> ExitCode {
    init_logging(log_format);
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: cannot listen on {listen}: {e}");
                return ExitCode::from(EXIT_FAILURE);
            }
        };
        tracing::info!(address = %listener.local_addr().unwrap_or(listen), "Sim listening.");
        let stop = async {
            let mut term = signal(SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
        };
        match seawall_sim::serve(listener, stop).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: sim stopped: {e}");
                ExitCode::from(EXIT_FAILURE)
            }
        }
    })
}

/// SIGINT or SIGTERM (for the servers that have nothing to drain).
async fn stop_signal() {
    let mut term = signal(SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}

/// `seawall chaos [serve]`.
pub fn chaos(args: ChaosServeArgs, log_format: LogFormat) -> ExitCode {
    init_logging(log_format);
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let options = seawall_chaos::Options {
        seed: args.seed.map(|s| u64::from_ne_bytes(s.to_ne_bytes())),
    };
    let code = rt.block_on(async move {
        let server = seawall_chaos::Server::new(options);
        if let Some(path) = &args.config {
            let text = match std::fs::read(path) {
                Ok(text) => text,
                Err(e) => {
                    eprintln!("error: cannot read {}: {e}", path.display());
                    return ExitCode::from(EXIT_INVALID_CONFIG);
                }
            };
            match server.populate(&text).await {
                Ok(n) => tracing::info!(proxies = n, config = %path.display(), "Populated proxies from the config file."),
                Err(e) => {
                    eprintln!("error: {}: {e}", path.display());
                    return ExitCode::from(EXIT_INVALID_CONFIG);
                }
            }
        }
        let listener = match tokio::net::TcpListener::bind((args.host.as_str(), args.port)).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: cannot listen on {}:{}: {e}", args.host, args.port);
                return ExitCode::from(EXIT_FAILURE);
            }
        };
        let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
        tracing::info!(address = %addr, "Chaos API listening.");
        match server.serve(listener, stop_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: chaos API stopped: {e}");
                ExitCode::from(EXIT_FAILURE)
            }
        }
    });
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    code
}
