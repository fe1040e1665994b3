//! Config reload of `seawall run --config FILE`: on SIGHUP, on a file change (editor-style
//! write-temp-then-rename, in-place write, Kubernetes ConfigMap `..data` symlink swap), and
//! on admin `POST /reload` with a bearer token. An invalid edit keeps the running config and
//! logs the diagnostics; command-line address overrides survive reloads (also when the file
//! reorders its listeners); the admin API refuses to start on a non-loopback address without
//! a token, before binding anything.

mod support;

use std::time::Duration;

use support::{Client, Launch, Process, client, free_port, get, post};

/// A config whose only route stamps `x-config: <marker>` on every response.
fn config(marker: &str) -> String {
    format!(
        "\
admin:
  listen: @ADMIN@
sim:
  listen: @SIM@
listeners:
  - name: public
    listen: @LISTEN@
    routes:
      - name: main
        upstream: sim
        timeout: 5s
        middleware:
          - headers:
              response:
                set: {{ x-config: {marker} }}
upstreams:
  - name: sim
    endpoints: [@SIM@]
"
    )
}

/// The same config with a bare-number duration on line 11 (`timeout: 5`): invalid.
fn invalid_config() -> String {
    config("broken").replace("timeout: 5s", "timeout: 5")
}

async fn marker(c: &Client, gw: &Process) -> String {
    let r = get(c, &gw.url("/"), &[]).await;
    assert_eq!(r.status, 200, "body: {}", r.body);
    r.header("x-config").unwrap_or("<none>").to_owned()
}

/// Polls until the route's marker is `want`; false after `timeout`.
async fn eventually_marker(c: &Client, gw: &Process, want: &str, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if marker(c, gw).await == want {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn admin_config(c: &Client, gw: &Process) -> serde_json::Value {
    let r = get(c, &gw.admin_url("/config"), &[]).await;
    assert_eq!(r.status, 200, "GET /config: {}", r.body);
    serde_json::from_str(&r.body).expect("/config is JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_file_and_the_next_request_carries_the_new_header() {
    let gw = Launch::with_config(&config("one"))
        .arg("--no-watch")
        .start();
    let c = client();
    assert_eq!(marker(&c, &gw).await, "one");

    gw.replace_config(&config("two"));
    // --no-watch: the change alone must not be picked up.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        marker(&c, &gw).await,
        "one",
        "reloaded without SIGHUP despite --no-watch"
    );

    gw.signal("HUP");
    assert!(
        eventually_marker(&c, &gw, "two", Duration::from_secs(3)).await,
        "SIGHUP did not apply the new header; stderr: {}",
        gw.stderr()
    );
    assert_eq!(admin_config(&c, &gw).await["generation"], 2);
    // Polled: stderr is collected by a reader thread, which may lag on a busy machine.
    assert!(
        gw.wait_for_stderr("SIGHUP", Duration::from_secs(3)),
        "stderr: {}",
        gw.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_replaced_by_rename_is_reloaded_within_3s_without_a_signal() {
    let gw = Launch::with_config(&config("one")).start();
    let c = client();
    assert_eq!(marker(&c, &gw).await, "one");

    gw.replace_config(&config("two"));
    assert!(
        eventually_marker(&c, &gw, "two", Duration::from_secs(3)).await,
        "the file change was not picked up within 3s; stderr: {}",
        gw.stderr()
    );

    // A second save works too (the watch survives the inode being replaced).
    gw.replace_config(&config("three"));
    assert!(
        eventually_marker(&c, &gw, "three", Duration::from_secs(3)).await,
        "the second file change was not picked up; stderr: {}",
        gw.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_edit_keeps_the_old_config_serving_and_logs_file_and_line() {
    let gw = Launch::with_config(&config("one")).start();
    let c = client();
    assert_eq!(marker(&c, &gw).await, "one");

    gw.replace_config(&invalid_config());
    let path = gw.config_path().display().to_string();
    assert!(
        gw.wait_for_stderr("reload failed", Duration::from_secs(3))
            || gw.wait_for_stderr("Reload after file change failed", Duration::from_secs(1)),
        "no reload failure logged; stderr: {}",
        gw.stderr()
    );
    let err = gw.stderr();
    assert!(
        err.contains(&format!("{path}:11:")),
        "no file:line in: {err}"
    );
    assert!(err.contains("routes[0].timeout"), "no key path in: {err}");

    // Still serving, with the old config.
    for _ in 0..3 {
        assert_eq!(marker(&c, &gw).await, "one");
    }
    let view = admin_config(&c, &gw).await;
    assert_eq!(view["generation"], 1, "{view}");
    assert!(
        view["last_reload_error"]
            .as_str()
            .is_some_and(|e| e.contains("timeout")),
        "{view}"
    );

    // Fixing the file recovers.
    gw.replace_config(&config("fixed"));
    assert!(
        eventually_marker(&c, &gw, "fixed", Duration::from_secs(3)).await,
        "stderr: {}",
        gw.stderr()
    );
    assert!(admin_config(&c, &gw).await["last_reload_error"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_reload_needs_the_bearer_token_and_returns_the_new_generation() {
    let token = "s3cret-token";
    let gw = Launch::with_config(&config("one"))
        .arg("--no-watch")
        .env("SEAWALL_ADMIN_TOKEN", token)
        .start();
    let c = client();
    gw.replace_config(&config("two"));
    let url = gw.admin_url("/reload");

    let r = post(&c, &url, &[]).await;
    assert_eq!(r.status, 401, "no token: {}", r.body);
    let r = post(&c, &url, &[("authorization", "Bearer wrong")]).await;
    assert_eq!(r.status, 401, "wrong token: {}", r.body);
    assert_eq!(
        marker(&c, &gw).await,
        "one",
        "an unauthorised reload took effect"
    );

    let bearer = format!("Bearer {token}");
    let r = post(&c, &url, &[("authorization", &bearer)]).await;
    assert_eq!(r.status, 200, "right token: {}", r.body);
    let json: serde_json::Value = serde_json::from_str(&r.body).expect("JSON reply");
    assert_eq!(json["status"], "ok", "{json}");
    assert_eq!(json["generation"], 2, "{json}");
    assert_eq!(marker(&c, &gw).await, "two");

    // With a token set, /config needs it too, and never shows the token itself.
    let r = get(&c, &gw.admin_url("/config"), &[]).await;
    assert_eq!(r.status, 401, "/config without the token: {}", r.body);
    let r = get(&c, &gw.admin_url("/config"), &[("authorization", &bearer)]).await;
    assert_eq!(r.status, 200, "/config with the token: {}", r.body);
    assert!(r.body.contains("SEAWALL_ADMIN_TOKEN"), "{}", r.body);
    assert!(
        !r.body.contains(token),
        "/config leaks the token: {}",
        r.body
    );

    // An invalid file: 422 with the diagnostics, generation unchanged, old config serving.
    gw.replace_config(&invalid_config());
    let r = post(&c, &url, &[("authorization", &bearer)]).await;
    assert_eq!(r.status, 422, "{}", r.body);
    let json: serde_json::Value = serde_json::from_str(&r.body).expect("JSON reply");
    assert_eq!(json["generation"], 2, "{json}");
    assert!(
        json["error"].as_str().is_some_and(|e| e.contains(":11:")),
        "{json}"
    );
    assert_eq!(marker(&c, &gw).await, "two");
    assert!(!gw.stderr().contains(token), "the log leaks the token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_reload_is_forbidden_when_no_token_is_configured() {
    let gw = Launch::with_config(&config("one"))
        .arg("--no-watch")
        .start();
    let c = client();
    gw.replace_config(&config("two"));
    let r = post(&c, &gw.admin_url("/reload"), &[]).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("SEAWALL_ADMIN_TOKEN"), "body: {}", r.body);
    let r = post(
        &c,
        &gw.admin_url("/reload"),
        &[("authorization", "Bearer anything")],
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(marker(&c, &gw).await, "one");
}

#[test]
fn admin_on_a_non_loopback_address_without_a_token_exits_1_before_binding_anything() {
    let admin = format!("0.0.0.0:{}", free_port());
    let mut p = Launch::args([
        "run",
        "--listen",
        "@LISTEN@",
        "--sim-listen",
        "@SIM@",
        "--admin",
        admin.as_str(),
    ])
    .spawn();
    let status = p
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("still running; stderr: {}", p.stderr()));
    std::thread::sleep(Duration::from_millis(100));
    let err = p.stderr();
    assert_eq!(status.code(), Some(1), "stderr: {err}");
    assert!(err.contains("not a loopback"), "unclear error: {err}");
    assert!(
        err.contains("SEAWALL_ADMIN_TOKEN"),
        "does not say which variable: {err}"
    );
    assert!(
        !err.contains("Listening"),
        "a listener was bound before the admin address was refused: {err}"
    );
    assert!(
        !err.contains("sim listening"),
        "the sim was started first: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_line_address_overrides_survive_a_reload() {
    // The file says @CLOSED@; --listen moves the listener to @LISTEN@.
    let file = |m: &str| config(m).replace("listen: @LISTEN@", "listen: @CLOSED@");
    let gw = Launch::with_config(&file("one"))
        .arg("--no-watch")
        .arg("--listen")
        .arg("@LISTEN@")
        .start();
    let c = client();
    assert_eq!(marker(&c, &gw).await, "one");

    gw.replace_config(&file("two"));
    gw.signal("HUP");
    assert!(
        eventually_marker(&c, &gw, "two", Duration::from_secs(3)).await,
        "stderr: {}",
        gw.stderr()
    );
    assert!(
        std::net::TcpStream::connect_timeout(&gw.ports.closed, Duration::from_millis(300)).is_err(),
        "the reload bound the file's address instead of keeping --listen"
    );
    let view = admin_config(&c, &gw).await;
    assert_eq!(
        view["config"]["listeners"][0]["listen"],
        gw.ports.listen.to_string(),
        "{view}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_without_a_config_file_logs_why_and_keeps_serving() {
    let mut gw = Launch::default_config().start();
    gw.signal("HUP");
    assert!(
        gw.wait_for_stderr("Reload on SIGHUP failed", Duration::from_secs(3)),
        "stderr: {}",
        gw.stderr()
    );
    assert!(
        gw.stderr().contains("without a config file"),
        "stderr: {}",
        gw.stderr()
    );
    assert!(gw.try_status().is_none(), "SIGHUP stopped the process");
    assert_eq!(get(&client(), &gw.url("/"), &[]).await.status, 200);
}

/// Lays out `dir` like a mounted Kubernetes ConfigMap at version `version`:
/// `seawall.yaml -> ..data/seawall.yaml`, `..data -> ..<version>`, and swaps `..data`
/// atomically (new symlink, renamed over the old one) as the kubelet does.
fn configmap_publish(dir: &std::path::Path, version: &str, contents: &str) {
    use std::os::unix::fs::symlink;
    std::fs::create_dir_all(dir).expect("mkdir");
    let versioned = dir.join(format!("..{version}"));
    std::fs::create_dir_all(&versioned).expect("mkdir");
    std::fs::write(versioned.join("seawall.yaml"), contents).expect("write");
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    symlink(format!("..{version}"), &tmp).expect("symlink ..data_tmp");
    std::fs::rename(&tmp, dir.join("..data")).expect("rename ..data");
    let link = dir.join("seawall.yaml");
    if std::fs::symlink_metadata(&link).is_err() {
        symlink("..data/seawall.yaml", &link).expect("symlink seawall.yaml");
    }
}

/// Writes the first version of a ConfigMap-style layout under `dir/configmap`.
fn configmap_v1(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let cm = dir.join("configmap");
    configmap_publish(&cm, "v1", text);
    cm.join("seawall.yaml")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubernetes_style_configmap_symlink_swap_is_reloaded_within_3s() {
    let gw = Launch::with_config_writer(&config("v1"), configmap_v1).start();
    let c = client();
    assert_eq!(marker(&c, &gw).await, "v1");

    let cm = gw.config_path().parent().expect("parent").to_owned();
    configmap_publish(&cm, "v2", &gw.render(&config("v2")));
    assert!(
        eventually_marker(&c, &gw, "v2", Duration::from_secs(3)).await,
        "a ConfigMap update (`..data` symlink swap) was not picked up within 3s; stderr: {}",
        gw.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_place_rewrite_of_the_file_is_reloaded_within_3s() {
    let gw = Launch::with_config(&config("one")).start();
    let c = client();
    assert_eq!(marker(&c, &gw).await, "one");
    // Same inode, truncated and rewritten (what `>` or an editor without rename does).
    std::fs::write(gw.config_path(), gw.render(&config("two"))).expect("write");
    assert!(
        eventually_marker(&c, &gw, "two", Duration::from_secs(3)).await,
        "an in-place write was not picked up within 3s; stderr: {}",
        gw.stderr()
    );
}

/// Two listeners, `public` (file address @CLOSED@, moved by `--listen`) and `other` (at
/// OTHER), each stamping its own marker; `swapped` lists `other` first.
fn two_listeners(other: std::net::SocketAddr, marker: &str, swapped: bool) -> String {
    let public = format!(
        "  - name: public
    listen: @CLOSED@
    routes:
      - upstream: sim
        middleware:
          - headers: {{ response: {{ set: {{ x-config: public-{marker} }} }} }}
"
    );
    let other = format!(
        "  - name: other
    listen: {other}
    routes:
      - upstream: sim
        middleware:
          - headers: {{ response: {{ set: {{ x-config: other-{marker} }} }} }}
"
    );
    let listeners = if swapped {
        other + &public
    } else {
        public + &other
    };
    format!(
        "admin:
  listen: @ADMIN@
sim:
  listen: @SIM@
listeners:
{listeners}upstreams:
  - name: sim
    endpoints: [@SIM@]
"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listen_override_stays_with_its_listener_when_a_reload_reorders_listeners() {
    let other = support::local(free_port());
    let gw = Launch::with_config(&two_listeners(other, "one", false))
        .arg("--no-watch")
        .arg("--listen")
        .arg("@LISTEN@")
        .start();
    let c = client();
    let other_url = format!("http://{other}/");
    assert_eq!(marker(&c, &gw).await, "public-one");
    assert_eq!(
        get(&c, &other_url, &[]).await.header("x-config"),
        Some("other-one")
    );

    gw.replace_config(&two_listeners(other, "two", true));
    gw.signal("HUP");
    assert!(
        eventually_marker(&c, &gw, "public-two", Duration::from_secs(3)).await,
        "after reordering the listeners, --listen no longer serves `public`: got {:?}; stderr: {}",
        marker(&c, &gw).await,
        gw.stderr()
    );
    let fresh = support::client_no_pool();
    assert_eq!(
        get(&fresh, &other_url, &[]).await.header("x-config"),
        Some("other-two")
    );
}

#[test]
fn an_empty_token_in_the_configured_token_env_counts_as_no_token() {
    let template = config("one").replace(
        "admin:\n  listen: @ADMIN@\n",
        &format!(
            "admin:\n  listen: 0.0.0.0:{}\n  token_env: GW_ADMIN_TOKEN\n",
            free_port()
        ),
    );
    assert!(template.contains("GW_ADMIN_TOKEN"));
    let mut p = Launch::with_config(&template)
        .env("GW_ADMIN_TOKEN", "")
        .env("SEAWALL_ADMIN_TOKEN", "not-the-configured-variable")
        .spawn();
    let status = p
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("still running; stderr: {}", p.stderr()));
    std::thread::sleep(Duration::from_millis(100));
    let err = p.stderr();
    assert_eq!(status.code(), Some(1), "stderr: {err}");
    assert!(
        err.contains("$GW_ADMIN_TOKEN"),
        "does not name the configured variable: {err}"
    );
    assert!(!err.contains("Listening"), "bound a listener first: {err}");
}
