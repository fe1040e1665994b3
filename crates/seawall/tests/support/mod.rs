//! Shared helpers for the end-to-end tests: start the real `seawall` binary on free ports,
//! wait until it is ready, capture its stdout/stderr, send it signals, and make HTTP
//! requests with a real client (hyper) or a raw socket.
//!
//! Every child process is owned by a [`Process`] guard that kills it (by PID) and reaps it
//! when dropped, so a failing test never leaves a gateway behind.

#![allow(dead_code)]

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::{HeaderMap, Method, Request};
use hyper_util::{
    client::legacy::{Client as LegacyClient, connect::HttpConnector},
    rt::TokioExecutor,
};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_seawall");

/// The workspace root (for `examples/`, `README.md`, ...).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// How long to wait for a child to become ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A port that was free a moment ago (bind 127.0.0.1:0, read the port, release it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// `127.0.0.1:port`.
pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The ports one launch uses. Substituted into args and config templates as `@LISTEN@`,
/// `@ADMIN@`, `@SIM@`, `@CHAOS@` and `@PROXY@` (a chaos API and one of its proxies)
/// (full `127.0.0.1:port` addresses), `@CLOSED@` (an address nothing listens on) and
/// `@CONFIG@` (the config file's path).
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub listen: SocketAddr,
    pub admin: SocketAddr,
    pub sim: SocketAddr,
    pub closed: SocketAddr,
    pub chaos: SocketAddr,
    pub proxy: SocketAddr,
}

impl Ports {
    fn pick() -> Self {
        // Hold them all at once so they are distinct, then release them.
        let hold: Vec<TcpListener> = (0..6)
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
            .collect();
        let addr = |i: usize| hold[i].local_addr().expect("local_addr");
        Ports {
            listen: addr(0),
            admin: addr(1),
            sim: addr(2),
            closed: addr(3),
            chaos: addr(4),
            proxy: addr(5),
        }
    }

    /// Replaces the placeholders in `text`.
    pub fn render(&self, text: &str, config: &Path) -> String {
        text.replace("@LISTEN@", &self.listen.to_string())
            .replace("@ADMIN@", &self.admin.to_string())
            .replace("@SIM@", &self.sim.to_string())
            .replace("@CLOSED@", &self.closed.to_string())
            .replace("@CHAOS@", &self.chaos.to_string())
            .replace("@PROXY@", &self.proxy.to_string())
            .replace("@CONFIG@", &config.display().to_string())
    }
}

/// What tells us a child is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// `GET /healthz` on the admin port answers 200.
    AdminHealthz,
    /// `GET /__sim/stats` on the sim port answers 200 (`seawall sim`).
    SimStats,
}

/// A unique scratch directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "seawall-e2e-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes a rendered config into the launch's directory; returns the path to pass.
pub type ConfigWriter = fn(&Path, &str) -> PathBuf;

/// A `seawall` invocation to start.
pub struct Launch {
    args: Vec<String>,
    config: Option<String>,
    config_writer: Option<ConfigWriter>,
    envs: Vec<(String, String)>,
    ready: Ready,
    /// Soft and hard `RLIMIT_NOFILE` for the child (set by `sh`'s `ulimit`, then exec).
    nofile: Option<u64>,
}

impl Launch {
    /// `seawall run` on the embedded default config, with every address overridden.
    pub fn default_config() -> Self {
        Self::args([
            "run",
            "--listen",
            "@LISTEN@",
            "--admin",
            "@ADMIN@",
            "--sim-listen",
            "@SIM@",
        ])
    }

    /// `seawall run --config FILE`, FILE written from `template` (placeholders substituted).
    pub fn with_config(template: &str) -> Self {
        let mut l = Self::args(["run", "--config", "@CONFIG@"]);
        l.config = Some(template.to_owned());
        l
    }

    /// Like [`Launch::with_config`], with the file laid out by `writer` (e.g. behind
    /// symlinks); `@CONFIG@` becomes the path `writer` returns.
    pub fn with_config_writer(template: &str, writer: ConfigWriter) -> Self {
        let mut l = Self::with_config(template);
        l.config_writer = Some(writer);
        l
    }

    /// `seawall sim --listen @SIM@`, ready when its stats endpoint answers.
    pub fn sim() -> Self {
        let mut l = Self::args(["sim", "--listen", "@SIM@"]);
        l.ready = Ready::SimStats;
        l
    }

    /// Any arguments.
    pub fn args<I, S>(args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Launch {
            args: args.into_iter().map(Into::into).collect(),
            config: None,
            config_writer: None,
            envs: Vec::new(),
            ready: Ready::AdminHealthz,
            nofile: None,
        }
    }

    /// Runs the child with `RLIMIT_NOFILE` (soft and hard) set to `limit`.
    pub fn nofile(mut self, limit: u64) -> Self {
        self.nofile = Some(limit);
        self
    }

    /// Appends an argument.
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_owned());
        self
    }

    /// Sets an environment variable in the child.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.envs.push((key.to_owned(), value.to_owned()));
        self
    }

    fn spawn_once(&self) -> Process {
        let ports = Ports::pick();
        let dir = TempDir::new();
        let mut config_path = dir.path().join("seawall.yaml");
        if let Some(template) = &self.config {
            let text = ports.render(template, &config_path);
            match self.config_writer {
                Some(writer) => config_path = writer(dir.path(), &text),
                None => std::fs::write(&config_path, text).expect("write config"),
            }
        }
        let args: Vec<String> = self
            .args
            .iter()
            .map(|a| ports.render(a, &config_path))
            .collect();
        let mut cmd = match self.nofile {
            None => Command::new(BIN),
            // `exec` keeps the PID, so signals and the drop's kill still reach seawall.
            Some(limit) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
                    .arg(BIN);
                c
            }
        };
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Keep the environment of whoever runs the tests out of the child.
            .env_remove("SEAWALL_CONFIG")
            .env_remove("SEAWALL_ADMIN_TOKEN")
            .env_remove("SEAWALL_DEBUG_TOKEN")
            // No NO_COLOR here: the binary must not colour logs that go to a pipe.
            .env_remove("NO_COLOR")
            .env("RUST_LOG", "info");
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn seawall");
        let stdout = capture(child.stdout.take().expect("stdout"));
        let stderr = capture(child.stderr.take().expect("stderr"));
        Process {
            pid: child.id(),
            child: Some(child),
            ports,
            dir,
            config_path,
            stdout,
            stderr,
            status: None,
        }
    }

    /// Starts the child and waits until it is ready. Retries once with fresh ports when a
    /// port picked by [`free_port`] was taken in the meantime. Panics (with the child's
    /// stderr) when it does not become ready.
    pub fn start(self) -> Process {
        for attempt in 0..2 {
            let mut p = self.spawn_once();
            match p.wait_ready(self.ready, READY_TIMEOUT) {
                Ok(()) => return p,
                Err(why) => {
                    let stderr = p.stderr();
                    if attempt == 0 && stderr.contains("in use") {
                        continue;
                    }
                    panic!(
                        "seawall {:?} did not become ready: {why}\n--- stderr ---\n{stderr}",
                        self.args
                    );
                }
            }
        }
        unreachable!("the loop returns or panics")
    }

    /// Starts the child without waiting for readiness (for runs expected to fail).
    pub fn spawn(self) -> Process {
        self.spawn_once()
    }
}

/// Drains a pipe into a shared string on a background thread.
fn capture<R: std::io::Read + Send + 'static>(pipe: R) -> Arc<Mutex<String>> {
    let out = Arc::new(Mutex::new(String::new()));
    let sink = out.clone();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => sink.lock().expect("capture lock").push_str(&line),
            }
        }
    });
    out
}

/// A running `seawall` child. Killed (SIGKILL by PID) and reaped on drop.
pub struct Process {
    pid: u32,
    child: Option<Child>,
    pub ports: Ports,
    dir: TempDir,
    config_path: PathBuf,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    status: Option<ExitStatus>,
}

impl Process {
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// `http://127.0.0.1:<listen port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.ports.listen)
    }

    /// `http://127.0.0.1:<admin port><path>`.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.ports.admin)
    }

    /// The config file (for launches made with [`Launch::with_config`]).
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// A scratch directory that lives as long as this process guard.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Substitutes this launch's ports into a template.
    pub fn render(&self, template: &str) -> String {
        self.ports.render(template, &self.config_path)
    }

    /// Rewrites the config file like an editor does: write a temporary file next to it,
    /// then rename it over the original.
    pub fn replace_config(&self, template: &str) {
        let tmp = self.dir.path().join(".seawall.yaml.tmp");
        let mut f = std::fs::File::create(&tmp).expect("create temp config");
        f.write_all(self.render(template).as_bytes())
            .expect("write temp config");
        f.sync_all().expect("sync temp config");
        drop(f);
        std::fs::rename(&tmp, &self.config_path).expect("rename config");
    }

    /// Everything the child wrote to stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().expect("stdout lock").clone()
    }

    /// Everything the child wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr lock").clone()
    }

    /// Polls until stderr contains `needle`; true when it did within `timeout`.
    pub fn wait_for_stderr(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.stderr().contains(needle))
    }

    /// Polls until stdout has at least `n` lines containing `needle`.
    pub fn wait_for_stdout_lines(&self, needle: &str, n: usize, timeout: Duration) -> bool {
        wait_until(timeout, || {
            self.stdout().lines().filter(|l| l.contains(needle)).count() >= n
        })
    }

    /// Sends a signal with `kill(1)` (the workspace forbids `unsafe`, so no `libc::kill`).
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([format!("-{sig}"), self.pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} {} failed", self.pid);
    }

    /// The exit status if the child has exited (non-blocking).
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        // (No let chains: the workspace's rust-version predates them.)
        if let (None, Some(child)) = (self.status, self.child.as_mut()) {
            self.status = child.try_wait().expect("try_wait");
        }
        self.status
    }

    /// Waits up to `timeout` for the child to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_status() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Open file descriptors of the child, from `/proc/<pid>/fd`.
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .expect("read /proc/<pid>/fd")
            .count()
    }

    fn wait_ready(&mut self, ready: Ready, timeout: Duration) -> Result<(), String> {
        let (addr, path) = match ready {
            Ready::AdminHealthz => (self.ports.admin, "/healthz"),
            Ready::SimStats => (self.ports.sim, "/__sim/stats"),
        };
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_status() {
                // Let the stderr reader catch up before the caller looks at it.
                std::thread::sleep(Duration::from_millis(100));
                return Err(format!("exited early with {status}"));
            }
            if let Ok((200, _)) = raw_get(addr, path, &[]) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("no 200 from {addr}{path} within {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if self.status.is_none() {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

/// Polls `cond` every 25 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Runs `seawall ARGS...` to completion (10 s bound) and returns (exit code, stdout, stderr).
pub fn run_to_exit(args: &[&str]) -> (Option<i32>, String, String) {
    run_to_exit_with_env(args, &[])
}

/// Like [`run_to_exit`], with extra environment variables.
pub fn run_to_exit_with_env(args: &[&str], envs: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("SEAWALL_CONFIG")
        .env_remove("SEAWALL_ADMIN_TOKEN")
        .env("NO_COLOR", "1");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn seawall");
    let stdout = capture(child.stdout.take().expect("stdout"));
    let stderr = capture(child.stderr.take().expect("stderr"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("seawall {args:?} did not exit within 10s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // The pipes close at exit; give the reader threads a moment to drain them.
    let drained = |s: &Arc<Mutex<String>>| Arc::strong_count(s) == 1;
    wait_until(Duration::from_secs(2), || {
        drained(&stdout) && drained(&stderr)
    });
    let out = stdout.lock().expect("stdout lock").clone();
    let err = stderr.lock().expect("stderr lock").clone();
    (status.code(), out, err)
}

/// A blocking HTTP/1.1 GET over a fresh socket (`connection: close`), used for readiness
/// polls. Returns (status, body).
pub fn raw_get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut req = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in {text:?}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Ok((status, body))
}

/// The hyper client used by the tests.
pub type Client = LegacyClient<HttpConnector, Full<Bytes>>;

/// A new client with its own connection pool.
pub fn client() -> Client {
    LegacyClient::builder(TokioExecutor::new()).build_http()
}

/// A client that never reuses a connection.
pub fn client_no_pool() -> Client {
    LegacyClient::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build_http()
}

/// A client that speaks HTTP/2 with prior knowledge (h2c).
pub fn client_h2() -> Client {
    LegacyClient::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

/// A finished response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
    pub elapsed: Duration,
}

impl Reply {
    /// The `seawall-error` header, if any.
    pub fn error(&self) -> Option<&str> {
        self.headers
            .get("seawall-error")
            .and_then(|v| v.to_str().ok())
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends one request and reads the whole response; Err on a transport error or when it
/// takes longer than 20 s.
pub async fn try_send(
    client: &Client,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
) -> Result<Reply, String> {
    try_send_body(client, method, url, headers, Bytes::new()).await
}

/// Like [`try_send`], with a request body.
pub async fn try_send_body(
    client: &Client,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Result<Reply, String> {
    let mut req = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(body)).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let fut = async {
        let resp = client.request(req).await.map_err(|e| format!("{e:?}"))?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.map_err(|e| format!("body: {e}"))?;
        Ok::<_, String>(Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: String::from_utf8_lossy(&body.to_bytes()).into_owned(),
            elapsed: start.elapsed(),
        })
    };
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .map_err(|_| format!("{url}: no complete response within 20s"))?
}

/// GET that must succeed at the transport level.
pub async fn get(client: &Client, url: &str, headers: &[(&str, &str)]) -> Reply {
    try_send(client, Method::GET, url, headers)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// POST (empty body) that must succeed at the transport level.
pub async fn post(client: &Client, url: &str, headers: &[(&str, &str)]) -> Reply {
    try_send(client, Method::POST, url, headers)
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"))
}

/// The JSON access-log lines on a process's stdout.
pub fn access_log(p: &Process) -> Vec<serde_json::Value> {
    p.stdout()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .collect()
}
