//! Hot reload: many reloads while requests are in flight lose no request; an invalid file
//! is refused (generation unchanged, old config still serving, `/config` shows the error);
//! the file watcher picks up an editor-style rename-save; and admin `POST /reload` is
//! guarded by the bearer token (403 without a configured token, 401 with a wrong one);
//! putting the file back after a bad edit clears `last_reload_error`, by watcher or by
//! `POST /reload`; and `/config` never shows a credential, in the config or in the error.
//!
//! Admin token: the workspace forbids `unsafe`, so tests cannot `set_var`; they point
//! `admin.token_env` at `CARGO_PKG_NAME`, which cargo sets for every test binary it runs.

mod support;

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use http::Method;
use http_body_util::Full;
use seawall_gateway::GatewayOptions;
use support::*;

const MS: fn(u64) -> Duration = Duration::from_millis;

/// A fresh directory under the system temp dir, unique per test and process.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "seawall-gw-test-{}-{name}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn file(&self) -> PathBuf {
        self.0.join("seawall.yaml")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A config whose route marks responses with `x-gen: <mark>`.
fn yaml(sim: std::net::SocketAddr, mark: &str, top: &str) -> String {
    config_with(
        top,
        &[],
        &[route(
            "r",
            "*",
            "/",
            "up",
            "10s",
            &format!("{{headers: {{response: {{set: {{x-gen: {mark}}}}}}}}}"),
        )],
        &[upstream("up", &[sim], "", "")],
    )
}

async fn start_from_file(file: &PathBuf, watch: bool) -> TestGateway {
    let text = std::fs::read_to_string(file).unwrap();
    start_with(
        &text,
        GatewayOptions {
            config_path: Some(file.clone()),
            watch,
            ..Default::default()
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_reloads_under_load_lose_no_request() {
    let sim = sim().await;
    let dir = TempDir::new("load");
    let file = dir.file();
    let (a, b) = (
        yaml(sim.local_addr(), "a", ""),
        yaml(sim.local_addr(), "b", ""),
    );
    std::fs::write(&file, &a).unwrap();
    let g = start_from_file(&file, false).await;
    assert_eq!(g.gw.generation(), 1);

    let failures = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let marks = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let mut clients = Vec::new();
    for _ in 0..16 {
        let (addr, failures, done, marks) = (g.addr, failures.clone(), done.clone(), marks.clone());
        clients.push(tokio::spawn(async move {
            let mut c = Conn::open(addr).await;
            for _ in 0..19 {
                match c.send(get_req("/delay/50ms")).await {
                    Ok(r) if r.status == 200 => {
                        if let Some(m) = r.header("x-gen") {
                            marks.lock().unwrap().insert(m.to_owned());
                        }
                    }
                    _ => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        c = Conn::open(addr).await;
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(MS(50)).await;
    for i in 0..20 {
        std::fs::write(&file, if i % 2 == 0 { &b } else { &a }).unwrap();
        let generation = g.gw.reload().await.expect("valid reload");
        assert_eq!(generation, i + 2);
        tokio::time::sleep(MS(20)).await;
    }
    let in_flight_during_reloads = done.load(Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    assert_eq!(done.load(Ordering::Relaxed), 16 * 19);
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "requests failed during reloads"
    );
    assert!(
        in_flight_during_reloads < 16 * 19,
        "the reloads did not overlap the traffic"
    );
    assert_eq!(g.gw.generation(), 21);
    let marks = marks.lock().unwrap().clone();
    assert!(marks.contains("a") && marks.contains("b"), "{marks:?}");
    // Unchanged upstreams keep their pool: reloads did not open a connection per reload.
    assert!(sim.stats().connections_accepted <= 32, "{:?}", sim.stats());
    let m = metrics_text(g.admin).await;
    assert_eq!(
        metric(
            &m,
            "seawall_config_reloads_total",
            &[("outcome", "success")]
        ),
        Some(20.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_reload_is_refused_and_the_old_config_keeps_serving() {
    let sim = sim().await;
    let dir = TempDir::new("invalid");
    let file = dir.file();
    std::fs::write(&file, yaml(sim.local_addr(), "old", "")).unwrap();
    let g = start_from_file(&file, false).await;
    std::fs::write(&file, "listeners: [ {name: public, listen: nope\n").unwrap();
    let err =
        g.gw.reload()
            .await
            .expect_err("broken YAML must be refused");
    assert!(!err.is_empty());
    assert_eq!(g.gw.generation(), 1);
    let r = get(g.addr, "/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-gen"), Some("old"));
    let view = admin_get(g.admin, "/config").await;
    assert_eq!(view.status, 200, "{}", view.text());
    let json: serde_json::Value = serde_json::from_slice(&view.body).unwrap();
    assert_eq!(json["generation"], 1);
    assert!(
        json["last_reload_error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{json}"
    );
    // A valid file again: reload succeeds and the error is cleared.
    std::fs::write(&file, yaml(sim.local_addr(), "new", "")).unwrap();
    assert_eq!(g.gw.reload().await, Ok(2));
    assert_eq!(get(g.addr, "/").await.header("x-gen"), Some("new"));
    let json: serde_json::Value =
        serde_json::from_slice(&admin_get(g.admin, "/config").await.body).unwrap();
    assert!(json["last_reload_error"].is_null(), "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_watcher_applies_a_rename_save() {
    let sim = sim().await;
    let dir = TempDir::new("watch");
    let file = dir.file();
    std::fs::write(&file, yaml(sim.local_addr(), "before", "")).unwrap();
    let g = start_from_file(&file, true).await;
    assert_eq!(get(g.addr, "/").await.header("x-gen"), Some("before"));
    // Editor-style save: write a temporary file, rename it over the config.
    let tmp = dir.0.join(".seawall.yaml.swp");
    std::fs::write(&tmp, yaml(sim.local_addr(), "after", "")).unwrap();
    let t = std::time::Instant::now();
    std::fs::rename(&tmp, &file).unwrap();
    let gw = g.gw.clone();
    assert!(
        eventually(Duration::from_secs(5), || async { gw.generation() == 2 }).await,
        "the watcher did not reload within 5s"
    );
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "reload took {:?}",
        t.elapsed()
    );
    assert_eq!(get(g.addr, "/").await.header("x-gen"), Some("after"));
    // An in-place save (truncate and write) is picked up too.
    std::fs::write(&file, yaml(sim.local_addr(), "in-place", "")).unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async { gw.generation() == 3 }).await,
        "the watcher did not pick up an in-place write within 5s"
    );
    assert_eq!(get(g.addr, "/").await.header("x-gen"), Some("in-place"));
}

fn post_reload(token: Option<&str>) -> http::Request<Full<bytes::Bytes>> {
    let mut b = req(Method::POST, "/reload");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Full::default()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_reload_without_a_configured_token_is_forbidden() {
    let sim = sim().await;
    let dir = TempDir::new("admin403");
    let file = dir.file();
    // A token variable that is certainly unset.
    let top = "admin:\n  listen: 127.0.0.1:0\n  token_env: SEAWALL_TEST_UNSET_ADMIN_TOKEN_7F3A\n";
    std::fs::write(&file, yaml(sim.local_addr(), "x", top)).unwrap();
    let g = start_from_file(&file, false).await;
    let r = send(g.admin, post_reload(None)).await.unwrap();
    assert_eq!(r.status, 403, "{}", r.text());
    let r = send(g.admin, post_reload(Some("anything"))).await.unwrap();
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(g.gw.generation(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_reload_needs_the_right_bearer_token() {
    let sim = sim().await;
    let dir = TempDir::new("admin401");
    let file = dir.file();
    let token = std::env::var("CARGO_PKG_NAME").expect("run under cargo test");
    let top = "admin:\n  listen: 127.0.0.1:0\n  token_env: CARGO_PKG_NAME\n";
    std::fs::write(&file, yaml(sim.local_addr(), "one", top)).unwrap();
    let g = start_from_file(&file, false).await;
    std::fs::write(&file, yaml(sim.local_addr(), "two", top)).unwrap();
    for wrong in [None, Some("wrong"), Some(&format!("{token}x")[..])] {
        let r = send(g.admin, post_reload(wrong)).await.unwrap();
        assert_eq!(r.status, 401, "{wrong:?}: {}", r.text());
    }
    assert_eq!(g.gw.generation(), 1);
    // /config also needs the token once one is configured.
    assert_eq!(admin_get(g.admin, "/config").await.status, 401);
    let r = send(g.admin, post_reload(Some(&token))).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    // With the token, /config answers, and never shows the token's value.
    let view = send(
        g.admin,
        req(Method::GET, "/config")
            .header("authorization", format!("Bearer {token}"))
            .body(Full::default())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(view.status, 200);
    assert!(view.text().contains("CARGO_PKG_NAME"), "{}", view.text());
    assert!(
        !view.text().contains(&token),
        "token value leaked: {}",
        view.text()
    );
    let json: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(json["generation"], 2);
    assert_eq!(g.gw.generation(), 2);
    assert_eq!(get(g.addr, "/").await.header("x-gen"), Some("two"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_that_replaces_an_upstream_closes_the_old_pools_idle_connections() {
    let sim = sim().await;
    let with_idle = |idle: &str| {
        config(
            &[],
            &[route("r", "*", "/", "up", "10s", "")],
            &[upstream(
                "up",
                &[sim.local_addr()],
                "",
                &format!("idle_timeout: {idle}"),
            )],
        )
    };
    let g = start(&with_idle("60s")).await;
    assert_eq!(get(g.addr, "/").await.status, 200);
    assert_eq!(sim.stats().connections_open, 1);
    // A changed upstream config builds a new pool; the old one is dropped with the old
    // runtime, and its idle connection must not linger until a sweeper that is gone.
    let changed = seawall_config::parse("b.yaml", &with_idle("59s")).unwrap();
    assert_eq!(g.gw.apply(changed).await, Ok(2));
    assert_eq!(get(g.addr, "/").await.status, 200);
    assert_eq!(
        sim.stats().connections_accepted,
        2,
        "a new pool, a new connection"
    );
    assert!(
        eventually(Duration::from_secs(3), || async {
            sim.stats().connections_open == 1
        })
        .await,
        "the replaced pool's idle connection stayed open: {:?}",
        sim.stats()
    );
}

async fn config_view(admin: std::net::SocketAddr, token: Option<&str>) -> serde_json::Value {
    let mut b = req(Method::GET, "/config");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    let r = send(admin, b.body(Full::default()).unwrap()).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    serde_json::from_slice(&r.body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn putting_the_file_back_clears_the_reload_error_by_watcher_and_by_post() {
    let sim = sim().await;
    let dir = TempDir::new("putback");
    let file = dir.file();
    let token = std::env::var("CARGO_PKG_NAME").expect("run under cargo test");
    let top = "admin:\n  listen: 127.0.0.1:0\n  token_env: CARGO_PKG_NAME\n";
    let good = yaml(sim.local_addr(), "good", top);
    std::fs::write(&file, &good).unwrap();
    let g = start_from_file(&file, true).await;
    let admin = g.admin;
    let error_set = |want: bool| {
        let token = token.clone();
        async move {
            let json = config_view(admin, Some(&token)).await;
            json["last_reload_error"].is_string() == want
        }
    };
    // The watcher: a bad edit sets the error; the original content back clears it, although
    // that reload is `unchanged` (generation stays 1).
    std::fs::write(&file, "listeners: [ {name: public, listen: nope\n").unwrap();
    assert!(
        eventually(Duration::from_secs(5), || error_set(true)).await,
        "the bad edit did not set last_reload_error"
    );
    std::fs::write(&file, &good).unwrap();
    assert!(
        eventually(Duration::from_secs(5), || error_set(false)).await,
        "putting the file back left last_reload_error set: {}",
        config_view(admin, Some(&token)).await
    );
    assert_eq!(g.gw.generation(), 1);

    // `POST /reload`, on a gateway without a watcher (so no reload races these).
    let dir = TempDir::new("putback-post");
    let file = dir.file();
    std::fs::write(&file, &good).unwrap();
    let g = start_from_file(&file, false).await;
    let admin = g.admin;
    std::fs::write(&file, "listeners: [ {name: public, listen: nope\n").unwrap();
    let r = send(admin, post_reload(Some(&token))).await.unwrap();
    assert_eq!(r.status, 422, "{}", r.text());
    let json = config_view(admin, Some(&token)).await;
    assert!(json["last_reload_error"].is_string(), "{json}");
    std::fs::write(&file, &good).unwrap();
    let r = send(admin, post_reload(Some(&token))).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let json = config_view(admin, Some(&token)).await;
    assert!(json["last_reload_error"].is_null(), "{json}");
    assert_eq!(json["generation"], 1);
    let m = metrics_text(admin).await;
    assert!(
        metric(
            &m,
            "seawall_config_reloads_total",
            &[("outcome", "unchanged")]
        ) == Some(1.0),
        "{m}"
    );
}

/// A route with a Redis rate limit (nothing listens on the port: the layer connects lazily)
/// and a header that carries a credential.
fn yaml_with_secrets(sim: std::net::SocketAddr, url: &str) -> String {
    config(
        &[],
        &[route(
            "r",
            "*",
            "/",
            "up",
            "10s",
            &format!(
                "{{headers: {{request: {{set: {{authorization: \"Bearer LeakMeHeaderToken\", x-gen: a}}}}}}}}, \
                 {{rate_limit: {{limits: [{{name: k, key: [client_ip], rate: \"100/s\", store: redis}}], redis: {{url: \"{url}\"}}}}}}"
            ),
        )],
        &[upstream("up", &[sim], "", "")],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_view_redacts_credentials_in_the_config_and_the_reload_error() {
    let sim = sim().await;
    let dir = TempDir::new("redact");
    let file = dir.file();
    let url = "redis://:TopSecretRedisPw@127.0.0.1:6399";
    std::fs::write(&file, yaml_with_secrets(sim.local_addr(), url)).unwrap();
    // No admin token configured: /config answers on loopback, and is redacted all the same.
    let g = start_from_file(&file, false).await;
    let view = admin_get(g.admin, "/config").await;
    assert_eq!(view.status, 200, "{}", view.text());
    let text = view.text();
    for secret in ["TopSecretRedisPw", "LeakMeHeaderToken"] {
        assert!(!text.contains(secret), "{secret} in /config: {text}");
    }
    let json: serde_json::Value = serde_json::from_slice(&view.body).unwrap();
    let layers = &json["config"]["listeners"][0]["routes"][0]["middleware"];
    assert_eq!(
        layers[1]["rate_limit"]["redis"]["url"],
        "redis://:***@127.0.0.1:6399"
    );
    assert_eq!(
        layers[0]["headers"]["request"]["set"]["authorization"],
        "***"
    );
    assert_eq!(layers[0]["headers"]["request"]["set"]["x-gen"], "a");
    // Settings that only name where a secret lives are kept.
    assert_eq!(json["config"]["admin"]["token_env"], "SEAWALL_ADMIN_TOKEN");

    // A bad edit on the URL's line: the error quotes that line in its code frame.
    let bad = yaml_with_secrets(sim.local_addr(), "http://admin:LeakMePw@10.0.0.1:6379");
    std::fs::write(&file, bad).unwrap();
    let err = g.gw.reload().await.expect_err("not a redis:// URL");
    assert!(!err.contains("LeakMePw"), "{err}");
    assert!(err.contains("http://admin:***@10.0.0.1:6379"), "{err}");
    let text = admin_get(g.admin, "/config").await.text();
    assert!(text.contains("must start with redis://"), "{text}");
    assert!(!text.contains("LeakMePw"), "{text}");
}
