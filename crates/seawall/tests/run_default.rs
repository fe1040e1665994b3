//! `seawall run` on the embedded default config (only the addresses overridden): the
//! in-process sim answers behind the default route, upstream failures become the documented
//! status and `seawall-error` reason, and every request leaves one JSON access-log line on
//! stdout while operational logs go to stderr (plain text on a pipe, or JSON). Also: h2c,
//! bodies both ways, the debug trace, clients that leave, and a listener port in use.

mod support;

use std::time::Duration;

use support::{Launch, access_log, client, get};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_answers_200_with_the_sims_hello() {
    let gw = Launch::default_config().start();
    let r = get(&client(), &gw.url("/"), &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("hello"), "body: {}", r.body);
    assert!(r.error().is_none());
    // The default route has request_id: the response carries one.
    assert!(
        r.header("x-request-id").is_some(),
        "headers: {:?}",
        r.headers
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_of_100ms_answers_200_after_at_least_100ms() {
    let gw = Launch::default_config().start();
    let r = get(&client(), &gw.url("/delay/100ms"), &[]).await;
    assert_eq!(r.status, 200, "body: {}", r.body);
    assert!(
        r.elapsed >= Duration::from_millis(100),
        "took {:?}",
        r.elapsed
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_503_is_passed_through_as_the_upstreams_answer() {
    let gw = Launch::default_config().start();
    let r = get(&client(), &gw.url("/status/503"), &[]).await;
    assert_eq!(r.status, 503);
    assert!(
        r.error().is_none(),
        "a real upstream 503 is not a gateway error"
    );
    assert!(r.body.contains("503"), "body: {}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_timeout_header_turns_a_hanging_upstream_into_a_fast_504_deadline_exceeded() {
    let gw = Launch::default_config().start();
    let r = get(
        &client(),
        &gw.url("/hang"),
        &[("seawall-timeout-ms", "300")],
    )
    .await;
    assert_eq!(r.status, 504, "body: {}", r.body);
    assert_eq!(r.error(), Some("deadline_exceeded"));
    assert!(
        r.elapsed >= Duration::from_millis(300),
        "took {:?}",
        r.elapsed
    );
    assert!(r.elapsed < Duration::from_secs(2), "took {:?}", r.elapsed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_reset_and_close_become_502_upstream_reset() {
    let gw = Launch::default_config().start();
    let c = client();
    for path in ["/reset", "/close"] {
        let r = get(&c, &gw.url(path), &[]).await;
        assert_eq!(r.status, 502, "{path}: {}", r.body);
        assert_eq!(r.error(), Some("upstream_reset"), "{path}");
    }
    // The gateway is still healthy afterwards.
    assert_eq!(get(&c, &gw.url("/"), &[]).await.status, 200);
}

/// Path, request headers, expected status and `seawall-error`.
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], u16, Option<&'a str>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_writes_one_json_access_log_line_on_stdout() {
    let gw = Launch::default_config().start();
    let c = client();
    let requests: &[Case] = &[
        ("/", &[], 200, None),
        ("/status/503", &[], 503, None),
        ("/reset", &[], 502, Some("upstream_reset")),
        (
            "/hang",
            &[("seawall-timeout-ms", "200")],
            504,
            Some("deadline_exceeded"),
        ),
    ];
    for (path, headers, status, _) in requests {
        let r = get(&c, &gw.url(path), headers).await;
        assert_eq!(r.status, *status, "{path}");
    }
    assert!(
        gw.wait_for_stdout_lines("\"route\"", requests.len(), Duration::from_secs(5)),
        "stdout: {}",
        gw.stdout()
    );
    let lines = access_log(&gw);
    // Nothing but access-log lines on stdout.
    assert_eq!(
        gw.stdout().lines().filter(|l| !l.trim().is_empty()).count(),
        lines.len(),
        "non-JSON output on stdout: {}",
        gw.stdout()
    );
    assert_eq!(lines.len(), requests.len(), "stdout: {}", gw.stdout());
    for (path, _, status, error) in requests {
        let line = lines
            .iter()
            .find(|l| l["path"] == *path)
            .unwrap_or_else(|| panic!("no access-log line for {path}: {}", gw.stdout()));
        assert_eq!(line["route"], "default", "{line}");
        assert_eq!(line["listener"], "public", "{line}");
        assert_eq!(line["status"], *status, "{line}");
        match error {
            Some(e) => assert_eq!(line["error"], *e, "{line}"),
            None => assert!(line["error"].is_null(), "{line}"),
        }
        assert!(line["duration_ms"].is_number(), "{line}");
        assert!(line["request_id"].is_string(), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operational_logs_go_to_stderr_as_plain_text_when_not_a_terminal() {
    let gw = Launch::default_config().start();
    assert!(gw.wait_for_stderr("Admin API listening", Duration::from_secs(5)));
    let err = gw.stderr();
    assert!(err.contains(&gw.ports.listen.to_string()), "stderr: {err}");
    assert!(err.contains(&gw.ports.sim.to_string()), "stderr: {err}");
    assert!(
        !err.contains('\u{1b}'),
        "ANSI escape codes in logs written to a pipe: {err:?}"
    );
    assert!(!gw.stdout().contains("Listening"), "logs leaked to stdout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_format_json_writes_one_json_object_per_stderr_line() {
    let gw = Launch::default_config()
        .arg("--log-format")
        .arg("json")
        .start();
    assert_eq!(get(&client(), &gw.url("/"), &[]).await.status, 200);
    assert!(gw.wait_for_stderr("Admin API listening", Duration::from_secs(5)));
    let err = gw.stderr();
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 2, "stderr: {err}");
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
    }
}

#[test]
fn a_listener_port_already_in_use_exits_1_naming_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let mut p = Launch::args([
        "run",
        "--listen",
        addr.as_str(),
        "--admin",
        "@ADMIN@",
        "--sim-listen",
        "@SIM@",
    ])
    .spawn();
    let status = p
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("still running; stderr: {}", p.stderr()));
    std::thread::sleep(Duration::from_millis(100));
    let err = p.stderr();
    assert_eq!(status.code(), Some(1), "stderr: {err}");
    assert!(err.contains(&addr), "does not name {addr}: {err}");
    assert!(err.contains("in use"), "does not say why: {err}");
    drop(taken);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_prior_knowledge_is_served_on_the_same_port_with_the_same_errors() {
    let gw = Launch::default_config().start();
    let c = support::client_h2();
    let r = get(&c, &gw.url("/"), &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("hello"), "body: {}", r.body);
    let r = get(&c, &gw.url("/reset"), &[]).await;
    assert_eq!((r.status, r.error()), (502, Some("upstream_reset")));
    let r = get(&c, &gw.url("/hang"), &[("seawall-timeout-ms", "200")]).await;
    assert_eq!((r.status, r.error()), (504, Some("deadline_exceeded")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_and_response_bodies_cross_the_gateway_intact() {
    let gw = Launch::default_config().start();
    let c = client();
    let body = bytes::Bytes::from(vec![b'x'; 300_000]);
    let r = support::try_send_body(
        &c,
        hyper::Method::POST,
        &gw.url("/echo?q=1"),
        &[("content-type", "application/octet-stream")],
        body,
    )
    .await
    .expect("POST /echo");
    assert_eq!(r.status, 200, "{}", r.body);
    let echo: serde_json::Value = serde_json::from_str(&r.body).expect("echo JSON");
    assert_eq!(echo["method"], "POST", "{echo}");
    assert_eq!(echo["path"], "/echo", "{echo}");
    assert_eq!(echo["query"], "q=1", "{echo}");
    assert_eq!(echo["body_bytes"], 300_000, "{echo}");
    // What the gateway adds on the way: a request id, the client address, the budget left.
    let headers = &echo["headers"];
    assert!(headers["x-request-id"].is_string(), "{echo}");
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1", "{echo}");
    let budget: u64 = headers["seawall-timeout-ms"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no forwarded budget: {echo}"));
    assert!(
        budget > 5_000 && budget <= 10_000,
        "route timeout is 10s: {budget}"
    );

    let r = get(&c, &gw.url("/bytes/3000000"), &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 3_000_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_leaving_mid_request_is_logged_at_once_as_499_client_closed() {
    use tokio::io::AsyncWriteExt as _;
    let gw = Launch::default_config().start();
    let mut s = tokio::net::TcpStream::connect(gw.ports.listen)
        .await
        .expect("connect");
    s.write_all(b"GET /delay/3s HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(150)).await;
    drop(s);
    // Well before the 3s delay would have finished.
    assert!(
        gw.wait_for_stdout_lines("client_closed", 1, Duration::from_millis(1500)),
        "no client_closed access-log line within 1.5s: {}",
        gw.stdout()
    );
    let lines = access_log(&gw);
    let line = lines
        .iter()
        .find(|l| l["path"] == "/delay/3s")
        .unwrap_or_else(|| panic!("no line: {}", gw.stdout()));
    assert_eq!(line["status"], 499, "{line}");
    assert_eq!(line["error"], "client_closed", "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_debug_trace_is_returned_only_for_the_token_from_the_environment() {
    let token = "dbg-s3cret";
    let gw = Launch::default_config()
        .env("SEAWALL_DEBUG_TOKEN", token)
        .start();
    let c = client();
    let r = get(&c, &gw.url("/"), &[("seawall-debug", token)]).await;
    assert_eq!(r.status, 200);
    let trace = r
        .header("seawall-debug-trace")
        .unwrap_or_else(|| panic!("no trace for the right token: {:?}", r.headers));
    for layer in ["request_id", "access_log", "debug", "upstream"] {
        assert!(trace.contains(layer), "trace lacks {layer}: {trace}");
    }
    let r = get(&c, &gw.url("/"), &[("seawall-debug", "wrong")]).await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("seawall-debug-trace").is_none(),
        "trace for a wrong token"
    );
    // The token never reaches the upstream.
    let r = get(&c, &gw.url("/echo"), &[("seawall-debug", token)]).await;
    assert!(
        !r.body.contains(token),
        "token forwarded upstream: {}",
        r.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_whose_clients_leave_right_after_sending_them_are_each_logged_once() {
    use tokio::io::AsyncWriteExt as _;
    const N: usize = 100;
    let gw = Launch::default_config().start();
    for _ in 0..N {
        let mut s = tokio::net::TcpStream::connect(gw.ports.listen)
            .await
            .expect("connect");
        // The whole head, then the client is gone (the gateway may read both at once).
        s.write_all(b"GET /hang HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .expect("write");
        drop(s);
    }
    let logged = |gw: &support::Process| {
        access_log(gw)
            .iter()
            .filter(|l| l["path"] == "/hang")
            .count()
    };
    support::wait_until(Duration::from_secs(5), || logged(&gw) >= N);
    // A little longer, to catch double counting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lines = access_log(&gw);
    let hang: Vec<_> = lines.iter().filter(|l| l["path"] == "/hang").collect();
    assert_eq!(
        hang.len(),
        N,
        "{N} requests were sent in full and abandoned; each needs exactly one access-log line"
    );
    for l in hang {
        assert_eq!(
            (l["status"].as_u64(), l["error"].as_str()),
            (Some(499), Some("client_closed")),
            "{l}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_descriptor_limit_below_what_max_connections_needs_is_warned_about_with_the_fix() {
    // The default listener allows 10 000 client connections, and the one-endpoint sim pool
    // 1024 upstream sockets (`max_connections_per_endpoint`), plus 256 spare: 11 280.
    let gw = Launch::default_config().nofile(512).start();
    let warned = gw.wait_for_stderr("File descriptor limit too low", Duration::from_secs(5));
    let stderr = gw.stderr();
    assert!(warned, "{stderr}");
    for needle in ["11280", "ulimit -n 11280", "LimitNOFILE=11280", "512"] {
        assert!(stderr.contains(needle), "no `{needle}` in:\n{stderr}");
    }
    // It still serves: the limit only bounds how many connections fit.
    let r = get(&client(), &gw.url("/"), &[]).await;
    assert_eq!(r.status, 200);
}
