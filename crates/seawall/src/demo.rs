//! `seawall demo`: the baseline drill with nothing else installed. Gateway, sim and a
//! chaos proxy start in this process from an embedded config and scenario; `payments`
//! slows to 2 s, then fails outright, then comes back; the report says what the gateway
//! did. The phases' length is `--phase` (15 s, about a minute in all), so CI runs it short.

mod story;

use std::{path::Path, process::ExitCode, time::Duration};

use clap::Args;

const GATEWAY: &str = include_str!("demo/gateway.yaml");
const SCENARIO: &str = include_str!("demo/scenario.yaml");

/// `seawall demo` arguments.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Where the report goes (default: demo-YYYYMMDD-HHMMSS in the current directory).
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// Each of the four phases' length (warmup, slow, down, recovery).
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub phase: Duration,
    /// Override a value of the built-in scenario, as `seawall drill --set` does.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

/// Runs `seawall demo`.
pub fn run(args: &DemoArgs) -> ExitCode {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| crate::drill::default_out("demo"));
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
    let code = rt.block_on(demo(args, &out));
    rt.shutdown_timeout(Duration::from_millis(200));
    ExitCode::from(code)
}

async fn demo(args: &DemoArgs, out: &Path) -> u8 {
    match try_demo(args, out).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

async fn try_demo(args: &DemoArgs, out: &Path) -> Result<u8, String> {
    let sim = free_port()?;
    let proxy = free_port()?;
    let chaos = start_chaos(sim, proxy).await?;
    // The scenario names its gateway config by path; both go into the report folder, so
    // the report's scenario can be run again with `seawall drill`.
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let gateway = GATEWAY
        .replace("SIM_PORT", &sim.to_string())
        .replace("PROXY_PORT", &proxy.to_string());
    let phase = args.phase.as_millis();
    let scenario = SCENARIO
        .replace("CHAOS_URL", &format!("http://{chaos}"))
        .replace("PHASE2", &format!("{}ms", 2 * phase))
        .replace("PHASE", &format!("{phase}ms"));
    write(&out.join("gateway.yaml"), &gateway)?;
    write(&out.join("scenario.yaml"), &scenario)?;
    let scenario = seawall_drill::scenario::parse::parse("scenario.yaml", &scenario, &args.sets)
        .map_err(|d| d.to_string())?;
    eprintln!(
        "seawall demo: gateway, sim and chaos proxy on loopback; four phases of {}",
        humantime::format_duration(args.phase)
    );
    let (_keep, stop) = tokio::sync::watch::channel(false);
    let options = seawall_drill::run::Options {
        base_dir: out.to_owned(),
        out: out.to_owned(),
        progress: seawall_drill::progress::Progress::detect(),
        stop,
        version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let outcome = seawall_drill::run::run(scenario, options).await;
    println!("{}", outcome.summary);
    let report = std::fs::read_to_string(out.join("report.json"))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    if let Some(report) = report {
        println!();
        for line in story::lines(&report) {
            println!("  {line}");
        }
    }
    Ok(outcome.code)
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A port free now. The sim and the chaos proxy must be named in the config before they
/// bind, so the port is taken and released; on loopback the race is harmless in practice.
fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

/// Starts a chaos server with proxy `payments` (port `proxy`, to the sim on `sim`);
/// returns its API's address. It runs until the process ends.
async fn start_chaos(sim: u16, proxy: u16) -> Result<std::net::SocketAddr, String> {
    let server = seawall_chaos::Server::new(seawall_chaos::Options { seed: Some(1) });
    let body = format!(
        r#"[{{"name": "payments", "listen": "127.0.0.1:{proxy}", "upstream": "127.0.0.1:{sim}"}}]"#
    );
    server
        .populate(body.as_bytes())
        .await
        .map_err(|e| format!("cannot start the chaos proxy: {e}"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot bind the chaos API: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot bind the chaos API: {e}"))?;
    tokio::spawn(server.serve(listener, std::future::pending()));
    Ok(addr)
}
