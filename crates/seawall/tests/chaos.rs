//! `seawall chaos` as a process: populating from `--config` at start, the API on
//! `--port`, exit code 3 for a config it cannot apply, and its `--help`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_seawall");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Kills the child when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: chaos\r\nUser-Agent: test\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("seawall-chaos-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    path
}

#[test]
fn chaos_populates_from_its_config_and_serves_the_api() {
    let (api, listen) = (free_port(), free_port());
    let config = temp_file(
        "proxies.json",
        &format!(r#"[{{"name":"db","listen":"127.0.0.1:{listen}","upstream":"127.0.0.1:1"}}]"#),
    );
    let child = Command::new(BIN)
        .args([
            "chaos",
            "--port",
            &api.to_string(),
            "--seed",
            "-7",
            "--config",
        ])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn seawall chaos");
    let _running = Running(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    let (status, body) = loop {
        if let Some(answer) = get(api, "/proxies/db") {
            break answer;
        }
        assert!(Instant::now() < deadline, "the API did not come up");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status, 200, "{body}");
    let expected = format!(
        r#"{{"name":"db","listen":"127.0.0.1:{listen}","upstream":"127.0.0.1:1","enabled":true,"toxics":[]}}"#
    );
    assert_eq!(body, expected);
    assert!(
        TcpStream::connect(("127.0.0.1", listen)).is_ok(),
        "the proxy listens"
    );
}

#[test]
fn chaos_exits_3_when_its_config_cannot_be_applied() {
    let config = temp_file("bad.json", r#"[{"name":"db"}]"#);
    let out = Command::new(BIN)
        .args(["chaos", "--port", &free_port().to_string(), "--config"])
        .arg(&config)
        .output()
        .expect("run seawall chaos");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "stderr: {err}");
    assert!(
        err.contains("missing required field: upstream at proxy 1"),
        "{err}"
    );
    assert!(err.contains("bad.json"), "{err}");
}

#[test]
fn chaos_help_names_its_flags_and_the_serve_verb() {
    let out = Command::new(BIN)
        .args(["chaos", "--help"])
        .output()
        .expect("run seawall chaos --help");
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--host",
        "--port",
        "--config",
        "--seed",
        "serve",
        "Toxiproxy",
    ] {
        assert!(text.contains(needle), "{needle} missing from: {text}");
    }
}

/// Runs a client verb against the API on `port`; returns (exit code, stdout, stderr).
fn client(port: u16, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("chaos")
        .args(args)
        .env("TOXIPROXY_URL", format!("http://127.0.0.1:{port}"))
        .output()
        .expect("run seawall chaos client");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_client_verbs_drive_a_running_server() {
    let api = free_port();
    let child = Command::new(BIN)
        .args(["chaos", "--port", &api.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn seawall chaos");
    let _running = Running(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(api, "/version").is_none() {
        assert!(Instant::now() < deadline, "the API did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }

    let (code, out, _) = client(api, &["list"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("No proxies."), "{out}");

    let (code, out, err) = client(
        api,
        &[
            "create",
            "db",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "127.0.0.1:1",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("Created proxy db: listening on 127.0.0.1:"),
        "{out}"
    );
    assert!(
        !out.contains("127.0.0.1:0,"),
        "the bound port is shown: {out}"
    );

    let (code, out, err) = client(
        api,
        &[
            "toxic",
            "add",
            "db",
            "-t",
            "latency",
            "-a",
            "latency=100",
            "--upstream",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("latency_upstream (latency, upstream"), "{out}");
    let (code, _, err) = client(
        api,
        &[
            "toxic",
            "update",
            "db",
            "-n",
            "latency_upstream",
            "-a",
            "jitter=7",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (_, body) = get(api, "/proxies/db/toxics/latency_upstream").expect("toxic");
    assert!(
        body.contains(r#""latency":100"#) && body.contains(r#""jitter":7"#),
        "merged: {body}"
    );

    let (code, out, _) = client(api, &["list"]);
    assert_eq!(code, 0);
    let row = out.lines().nth(1).unwrap_or_default();
    assert!(
        row.starts_with("db ") && row.ends_with("yes      1"),
        "{out}"
    );
    let (code, out, _) = client(api, &["inspect", "db"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("upstream toxics (client -> upstream):\n  latency_upstream"),
        "{out}"
    );
    assert!(
        out.contains("downstream toxics (upstream -> client):\n  none"),
        "{out}"
    );

    let (code, out, _) = client(api, &["toggle", "db"]);
    assert_eq!((code, out.as_str()), (0, "Proxy db is now disabled.\n"));
    let (_, body) = get(api, "/proxies/db").expect("proxy");
    assert!(body.contains(r#""enabled":false"#), "{body}");
    let (code, out, _) = client(api, &["list", "--json"]);
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&out).expect("--json prints JSON");
    assert_eq!(json["db"]["enabled"], false);

    // Refusals carry the server's message and status, exit 1; bad arguments exit 2.
    let (code, _, err) = client(
        api,
        &["create", "db", "-l", "127.0.0.1:0", "-u", "127.0.0.1:1"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("proxy already exists (HTTP 409"), "{err}");
    let (code, _, err) = client(
        api,
        &["toxic", "add", "db", "-t", "latency", "--toxicity", "2"],
    );
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = client(api, &["toxic", "remove", "db", "-n", "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("HTTP 404"), "{err}");

    let (code, out, _) = client(api, &["toxic", "remove", "db", "-n", "latency_upstream"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "Removed toxic latency_upstream from db.\n")
    );
    let (code, out, _) = client(api, &["delete", "db"]);
    assert_eq!((code, out.as_str()), (0, "Deleted proxy db.\n"));
    assert_eq!(get(api, "/proxies/db").map(|(s, _)| s), Some(404));
}

#[test]
fn the_client_says_where_it_looked_when_nothing_answers() {
    let (code, _, err) = client(free_port(), &["list"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot reach the chaos API"), "{err}");
    assert!(err.contains("TOXIPROXY_URL"), "{err}");
}
