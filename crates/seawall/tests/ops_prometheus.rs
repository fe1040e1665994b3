//! `seawall rules` and `seawall dashboard` against the real thing: the gateway (the built
//! binary, on the embedded default config) under a short load, scraped by a real
//! Prometheus (Debian's `prometheus`, on loopback) that loads the generated rules.
//!
//! - Prometheus loads the generated rule file (it refuses to start on a bad one).
//! - Every query of every dashboard panel runs without error; the traffic and latency
//!   panels return data (events that never happened, breaker trips say, may be empty, and
//!   so may the latency baseline band, which needs an hour of history).
//!
//! Without `prometheus` installed the test prints a notice and passes, except under
//! `CI=true`, where it fails: CI installs it.

mod support;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use support::{Launch, client, get, run_to_exit, wait_until, workspace_root};

/// `name` on `PATH`; missing fails under CI, else skips with a notice.
fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("`{name}` is not installed; .ci/run installs Debian's `prometheus` package");
        }
        eprintln!("skipped: `{name}` is not installed (apt-get install prometheus)");
    }
    found
}

/// A Prometheus child, killed by its PID and reaped on drop.
struct Prometheus {
    child: Child,
    base: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Prometheus can not listen on port 0 and report it: take a free port by binding and
/// releasing it.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

fn start_prometheus(bin: &Path, dir: &Path, admin: std::net::SocketAddr) -> Prometheus {
    let config = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
         rule_files: [rules.yml]\n\
         scrape_configs:\n  - job_name: seawall\n    static_configs: [{{targets: [\"{admin}\"]}}]\n"
    );
    std::fs::write(dir.join("prometheus.yml"), config).expect("write prometheus.yml");
    let port = free_port();
    let child = Command::new(bin)
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--storage.tsdb.retention.time=1h")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("prometheus.log")).expect("log file"),
        ))
        .spawn()
        .expect("start prometheus");
    Prometheus {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

/// Percent-encodes a query parameter.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn query(base: &str, expr: &str) -> Value {
    let url = format!("{base}/api/v1/query?query={}", encode(expr));
    let r = get(&client(), &url, &[]).await;
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{expr}: {e}: {}", r.body))
}

/// The panels' template variables, as Grafana would fill them for "All".
fn instantiate(expr: &str) -> String {
    expr.replace("$route", ".*")
        .replace("$upstream", ".*")
        .replace("$__rate_interval", "30s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_loads_the_rules_and_runs_every_panel_query_against_a_loaded_gateway() {
    let Some(prometheus) = tool("prometheus") else {
        return;
    };
    let gw = Launch::default_config().start();
    let default = workspace_root().join("crates/seawall-config/default.yaml");
    let dir = gw.dir().to_path_buf();
    let (rules, dashboard) = (dir.join("rules.yml"), dir.join("dashboard.json"));
    for (cmd, out) in [("rules", &rules), ("dashboard", &dashboard)] {
        let (code, _, stderr) = run_to_exit(&[
            cmd,
            &default.display().to_string(),
            "--out",
            &out.display().to_string(),
        ]);
        assert_eq!(code, Some(0), "seawall {cmd}: {stderr}");
    }

    // The families this load touches, in the exposition Prometheus scrapes (the whole
    // catalogue is checked against the registry by tests/ops_catalogue.rs).
    let metrics = get(&client(), &gw.admin_url("/metrics"), &[]).await.body;
    assert!(
        metrics.contains("# TYPE seawall_upstream_requests_total counter"),
        "{metrics}"
    );

    let prom = start_prometheus(&prometheus, &dir, gw.ports.admin);
    let ready = format!("{}/-/ready", prom.base);
    let up = wait_until(Duration::from_secs(30), || {
        std::net::TcpStream::connect(prom.base.trim_start_matches("http://")).is_ok()
    });
    let log = || std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
    assert!(up, "prometheus did not listen:\n{}", log());
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(&client(), &ready, &[]).await.status != 200 {
        assert!(
            Instant::now() < deadline,
            "prometheus not ready:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A short, bounded load: successes, upstream 503s and slower answers, over 6 s so
    // that several scrapes see the counters move.
    let c = client();
    let until = Instant::now() + Duration::from_secs(6);
    let mut n = 0u32;
    while Instant::now() < until {
        let path = match n % 10 {
            0 => "/status/503",
            1 => "/delay/20ms",
            _ => "/",
        };
        let _ = get(&c, &gw.url(path), &[]).await;
        n += 1;
    }
    // Let the last scrape and rule evaluation land.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The rules loaded: Prometheus lists the generated groups.
    let listed = get(&client(), &format!("{}/api/v1/rules", prom.base), &[]).await;
    assert!(
        listed.body.contains("seawall-slo-default")
            && listed.body.contains("SeawallErrorBudgetBurn"),
        "rules not loaded: {}\n{}",
        listed.body,
        log()
    );

    let d: Value = serde_json::from_str(&std::fs::read_to_string(&dashboard).expect("read"))
        .expect("dashboard JSON");
    let mut row = String::new();
    let mut checked = 0;
    for p in d["panels"].as_array().expect("panels") {
        if p["type"] == "row" {
            row = p["title"].as_str().unwrap_or_default().to_owned();
            continue;
        }
        for t in p["targets"].as_array().expect("targets") {
            let expr = instantiate(t["expr"].as_str().expect("expr"));
            let v = query(&prom.base, &expr).await;
            assert_eq!(v["status"], "success", "{}: {expr}: {v}", p["title"]);
            let empty = v["data"]["result"].as_array().is_none_or(Vec::is_empty);
            let must_have_data =
                (row == "Traffic" || row == "Latency") && !expr.contains("seawall:");
            assert!(
                !(must_have_data && empty),
                "{} / {}: no data for {expr}",
                row,
                p["title"]
            );
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} queries");
    // The recorded SLO series exist after a few evaluations, on the default route.
    let v = query(&prom.base, "seawall:slo_errors:ratio_rate5m").await;
    assert_eq!(v["data"]["result"][0]["metric"]["route"], "default", "{v}");
}
