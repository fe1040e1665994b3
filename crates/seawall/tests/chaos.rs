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
