//! `seawall run` with a `chaos:` section: a chaos proxy between the gateway and the sim,
//! driven through its Toxiproxy API; and the errors a bad `chaos:` entry gives, from
//! `seawall check` (located) and from `seawall run` (a listen address taken).

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use support::{Launch, TempDir, client, get, run_to_exit};

/// The gateway's only upstream is the chaos proxy, whose upstream is the sim.
const CONFIG: &str = "
admin:
  listen: @ADMIN@
sim:
  listen: @SIM@
chaos:
  listen: @CHAOS@
  seed: 1
  proxies:
    - name: sim
      listen: @PROXY@
      upstream: @SIM@
listeners:
  - name: public
    listen: @LISTEN@
    routes:
      - name: default
        match:
          path_prefix: /
        upstream: sim
        timeout: 10s
upstreams:
  - name: sim
    endpoints: [@PROXY@]
";

/// A blocking call to the chaos API: (status, body).
fn chaos_call(api: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&api, Duration::from_secs(2)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: chaos\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw.split(' ').nth(1).unwrap().parse().unwrap();
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_latency_toxic_added_through_the_chaos_api_slows_gateway_requests() {
    let gw = Launch::with_config(CONFIG).start();
    let api = gw.ports.chaos;
    let (status, body) = chaos_call(api, "GET", "/proxies/sim", "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&gw.ports.proxy.to_string()), "{body}");

    let http = client();
    let r = get(&http, &gw.url("/"), &[]).await;
    assert_eq!(r.status, 200, "through the proxy: {}", r.body);
    assert!(r.elapsed < Duration::from_millis(300), "{:?}", r.elapsed);

    let (status, body) = chaos_call(
        api,
        "POST",
        "/proxies/sim/toxics",
        r#"{"type":"latency","attributes":{"latency":300}}"#,
    );
    assert_eq!(status, 200, "{body}");
    // A fresh client, so the request opens a connection that sees the toxic at once.
    let r = get(&client(), &gw.url("/"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.elapsed >= Duration::from_millis(300), "{:?}", r.elapsed);

    let (status, _) = chaos_call(api, "DELETE", "/proxies/sim/toxics/latency_downstream", "");
    assert_eq!(status, 204);
    let r = get(&client(), &gw.url("/"), &[]).await;
    assert!(r.elapsed < Duration::from_millis(300), "{:?}", r.elapsed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_chaos_proxy_answers_from_the_config_toxics() {
    let config = CONFIG.replace(
        "      upstream: @SIM@\n",
        "      upstream: @SIM@\n      protocol: http\n      toxics:\n        - { type: http_status, attributes: { status: 418, body: teapot } }\n",
    );
    let gw = Launch::with_config(&config).start();
    let r = get(&client(), &gw.url("/"), &[]).await;
    assert_eq!(r.status, 418, "{}", r.body);
    assert_eq!(r.body, "teapot");
}

#[test]
fn check_locates_an_unknown_toxic_type_and_a_taken_listen_address() {
    let dir = TempDir::new();
    let path = dir.path().join("chaos.yaml");
    let text = CONFIG
        .replace("@ADMIN@", "127.0.0.1:9901")
        .replace("@SIM@", "127.0.0.1:8081")
        .replace("@CHAOS@", "127.0.0.1:8474")
        .replace("@LISTEN@", "127.0.0.1:8080")
        // The proxy on the gateway's own port, and a misspelt toxic.
        .replace("@PROXY@", "127.0.0.1:8080")
        .replace(
            "      upstream: 127.0.0.1:8081\n",
            "      upstream: 127.0.0.1:8081\n      toxics:\n        - type: latncy\n",
        );
    std::fs::write(&path, &text).unwrap();
    let (code, _, err) = run_to_exit(&["check", path.to_str().unwrap()]);
    assert_eq!(code, Some(3), "{err}");
    let line = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    assert!(
        err.contains(&format!("chaos.yaml:{}:", line("type: latncy"))),
        "{err}"
    );
    assert!(err.contains("unknown toxic type `latncy`"), "{err}");
    assert!(err.contains("did you mean `latency`?"), "{err}");
    assert!(err.contains("chaos.proxies[0].listen"), "{err}");
    assert!(err.contains("already used by listeners[0].listen"), "{err}");
}

#[test]
fn run_refuses_to_start_when_a_chaos_listen_address_is_taken() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut p =
        Launch::with_config(&CONFIG.replace("listen: @PROXY@", &format!("listen: {addr}"))).spawn();
    let status = p.wait_exit(Duration::from_secs(10)).expect("exits");
    assert!(!status.success());
    let err = p.stderr();
    assert!(
        err.contains("chaos.proxies:") && err.contains("in use"),
        "{err}"
    );
    drop(taken);
}
