//! `seawall drill` as a process: exit codes for usage and scenario errors, the scenario's
//! JSON Schema, and a real SIGINT: the built binary runs a drill that has put a fault
//! through a (fake) admin API and added a toxic through a (fake) chaos API; Ctrl-C stops the
//! load, and before exiting the drill deletes both, then writes its report.

mod support;

use std::{
    convert::Infallible,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;

type Calls = Arc<Mutex<Vec<String>>>;

/// A stand-in for both the admin API and the chaos API: records every call and says yes.
async fn control_api() -> (std::net::SocketAddr, Calls) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let calls: Calls = Arc::default();
    let seen = calls.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let line = format!("{} {}", req.method(), req.uri().path());
                        let body = http_body_util::BodyExt::collect(req.into_body())
                            .await
                            .unwrap()
                            .to_bytes();
                        let body = String::from_utf8_lossy(&body).into_owned();
                        seen.lock().unwrap().push(if body.is_empty() {
                            line.clone()
                        } else {
                            format!("{line} {body}")
                        });
                        seen.lock().unwrap().push(line.clone());
                        let body = match line.split(' ').nth(1).unwrap_or_default() {
                            "/breakers" => {
                                r#"{"breakers":[{"upstream":"payments","state":"closed"}]}"#
                            }
                            "/metrics" => "seawall_up 1\n",
                            _ => "{}",
                        };
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, calls)
}

fn has(calls: &Calls, line: &str) -> bool {
    calls.lock().unwrap().iter().any(|c| c == line)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_stops_the_drill_and_every_fault_and_toxic_it_added_is_removed() {
    let sim = seawall_sim::Sim::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let (control, calls) = control_api().await;
    let dir = support::TempDir::new();
    let scenario = dir.path().join("drill.yaml");
    std::fs::write(
        &scenario,
        format!(
            "target: {{gateway: 'http://{}', admin: 'http://{control}', chaos: 'http://{control}'}}
load:
  phases: [{{name: steady, duration: 30s, rate: 50}}]
  requests: [{{path: /}}]
actions:
  - {{name: slow, at: 300ms, fault: {{spec: {{route: api, percentage: 100, delay: {{fixed: 1s}}}}}}}}
  - {{name: lag, at: 300ms, for: 20s, toxic: {{proxy: payments, type: latency, attributes: {{latency: 500}}}}}}
thresholds: ['p(99) < 1s']
",
            sim.local_addr()
        ),
    )
    .unwrap();
    let out = dir.path().join("report");
    let mut child = Command::new(env!("CARGO_BIN_EXE_seawall"))
        .arg("drill")
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !(has(&calls, "PUT /faults/slow") && has(&calls, "POST /proxies/payments/toxics")) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "actions not taken: {:?}",
            calls.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!has(&calls, "DELETE /faults/slow"), "undone too early");
    // The bodies are the runtime fault API's and Toxiproxy's.
    let bodies = calls.lock().unwrap().clone();
    let body_of = |prefix: &str| -> serde_json::Value {
        let line = bodies
            .iter()
            .find(|c| c.starts_with(prefix) && c.len() > prefix.len())
            .unwrap();
        serde_json::from_str(&line[prefix.len() + 1..]).unwrap()
    };
    let fault = body_of("PUT /faults/slow");
    assert_eq!(fault["route"], "api");
    assert_eq!(fault["delay"]["fixed"], "1s");
    let toxic = body_of("POST /proxies/payments/toxics");
    assert_eq!(toxic["name"], "lag");
    assert_eq!(toxic["type"], "latency");
    assert_eq!(toxic["stream"], "downstream");
    assert_eq!(toxic["toxicity"], 1.0);
    assert_eq!(toxic["attributes"]["latency"], 500);
    let status = Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let waited = Instant::now();
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        if waited.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            panic!("the drill did not exit after SIGINT");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        code,
        Some(1),
        "an interrupted drill has not passed: {stdout}"
    );
    assert!(
        has(&calls, "DELETE /faults/slow"),
        "{:?}",
        calls.lock().unwrap()
    );
    assert!(
        has(&calls, "DELETE /proxies/payments/toxics/lag"),
        "{:?}",
        calls.lock().unwrap()
    );
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the load did not stop early"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let kinds: Vec<&str> = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"interrupt") && kinds.contains(&"undo"),
        "{kinds:?}"
    );
}

fn seawall(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_seawall"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn usage_errors_exit_2_and_invalid_scenarios_exit_3_with_located_diagnostics() {
    assert_eq!(seawall(&["drill"]).status.code(), Some(2));
    let dir = support::TempDir::new();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "target: {gateway: 'http://127.0.0.1:1'}\nload:\n  phases: [{name: a, duration: 1s, rate: 5}]\n  requests: [{path: /}]\nthresholds: ['p(99) < 1s during nowhere']\n",
    )
    .unwrap();
    let out = seawall(&["drill", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.yaml:5:"), "{stderr}");
    assert!(stderr.contains("unknown window `nowhere`"), "{stderr}");
    // Overrides are checked on a valid scenario.
    let fixed = std::fs::read_to_string(&path)
        .unwrap()
        .replace(" during nowhere", "");
    std::fs::write(&path, fixed).unwrap();
    let out = seawall(&["drill", path.to_str().unwrap(), "--set", "load.connections"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("key=value"));
}

#[test]
fn the_drill_schema_is_published() {
    let out = seawall(&["config", "schema", "--drill"]);
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(schema["properties"]["thresholds"].is_object());
    assert_eq!(schema["additionalProperties"], false);
}
