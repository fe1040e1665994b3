//! The API contract: Toxiproxy's status codes, bodies, field order and rules.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{Chaos, closed_port, echo, read_all, round_trip};
use tokio::net::TcpStream;

#[tokio::test]
async fn create_answers_201_with_toxiproxy_fields_in_order_and_the_bound_port() {
    let chaos = Chaos::start().await;
    let upstream = echo().await;
    let body = format!(r#"{{"name":"db","listen":"127.0.0.1:0","upstream":"{upstream}"}}"#);
    let answer = chaos.call("POST", "/proxies", &body).await;
    assert_eq!(answer.status, 201);
    let listen = answer.json()["listen"].as_str().unwrap().to_owned();
    assert!(
        !listen.ends_with(":0"),
        "the real port comes back: {listen}"
    );
    let expected = format!(
        r#"{{"name":"db","listen":"{listen}","upstream":"{upstream}","enabled":true,"toxics":[]}}"#
    );
    assert_eq!(answer.body, expected);
    let mut client = TcpStream::connect(&listen).await.unwrap();
    round_trip(&mut client, 16).await;
}

#[tokio::test]
async fn duplicate_is_409_missing_is_404_and_required_fields_are_400() {
    let chaos = Chaos::start().await;
    let upstream = echo().await;
    chaos.proxy("db", upstream).await;
    let again = format!(r#"{{"name":"db","listen":"127.0.0.1:0","upstream":"{upstream}"}}"#);
    let answer = chaos.call("POST", "/proxies", &again).await;
    assert_eq!(answer.status, 409);
    assert_eq!(
        answer.body,
        r#"{"error":"proxy already exists","status":409}"#
    );
    let answer = chaos.call("GET", "/proxies/nope", "").await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.body, r#"{"error":"proxy not found","status":404}"#);
    let answer = chaos.call("DELETE", "/proxies/nope/toxics/x", "").await;
    assert_eq!(answer.status, 404);
    let answer = chaos
        .call("POST", "/proxies", r#"{"upstream":"127.0.0.1:1"}"#)
        .await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"], "missing required field: name");
    let answer = chaos.call("POST", "/proxies", r#"{"name":"x"}"#).await;
    assert_eq!(answer.json()["error"], "missing required field: upstream");
}

#[tokio::test]
async fn toxic_defaults_unique_names_and_listing_order() {
    let chaos = Chaos::start().await;
    chaos.proxy("db", echo().await).await;
    let answer = chaos.toxic("db", r#"{"type":"latency"}"#).await;
    assert_eq!(
        answer.body,
        r#"{"attributes":{"latency":0,"jitter":0},"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":1.0}"#
    );
    let answer = chaos
        .call("POST", "/proxies/db/toxics", r#"{"type":"latency"}"#)
        .await;
    assert_eq!(answer.status, 409);
    assert_eq!(
        answer.body,
        r#"{"error":"toxic already exists","status":409}"#
    );
    // Names are unique across both streams.
    let answer = chaos
        .call(
            "POST",
            "/proxies/db/toxics",
            r#"{"name":"latency_downstream","type":"noop","stream":"upstream"}"#,
        )
        .await;
    assert_eq!(answer.status, 409);
    chaos
        .toxic(
            "db",
            r#"{"type":"bandwidth","stream":"upstream","attributes":{"rate":5}}"#,
        )
        .await;
    let list = chaos.call("GET", "/proxies/db/toxics", "").await.json();
    let names: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["bandwidth_upstream", "latency_downstream"]);
    let shown = chaos
        .call("GET", "/proxies/db/toxics/bandwidth_upstream", "")
        .await;
    assert_eq!(shown.json()["attributes"], json!({"rate": 5}));
}

#[tokio::test]
async fn bad_toxics_are_400_with_toxiproxy_messages() {
    let chaos = Chaos::start().await;
    chaos.proxy("db", echo().await).await;
    let cases = [
        (r#"{"type":"teleport"}"#, "invalid toxic type"),
        (
            r#"{"type":"latency","stream":"sideways"}"#,
            "stream was invalid, can be either upstream or downstream",
        ),
    ];
    for (body, message) in cases {
        let answer = chaos.call("POST", "/proxies/db/toxics", body).await;
        assert_eq!(answer.status, 400, "{body}");
        assert_eq!(answer.json()["error"], message);
    }
    let answer = chaos
        .call(
            "POST",
            "/proxies/db/toxics",
            r#"{"type":"latency","attributes":{"latency":"slow"}}"#,
        )
        .await;
    assert_eq!(answer.status, 400);
    let message = answer.json()["error"].as_str().unwrap().to_owned();
    assert!(message.starts_with("bad request body: "), "{message}");
    let toxics = chaos.call("GET", "/proxies/db/toxics", "").await;
    assert_eq!(toxics.body, "[]", "nothing was added");
}

#[tokio::test]
async fn toxic_update_merges_attributes_and_keeps_toxicity() {
    let chaos = Chaos::start().await;
    chaos.proxy("db", echo().await).await;
    chaos
        .toxic(
            "db",
            r#"{"type":"latency","toxicity":0.5,"attributes":{"latency":100,"jitter":3}}"#,
        )
        .await;
    for method in ["PATCH", "POST"] {
        let answer = chaos
            .call(
                method,
                "/proxies/db/toxics/latency_downstream",
                r#"{"attributes":{"jitter":9}}"#,
            )
            .await;
        assert_eq!(answer.status, 200);
        let toxic = answer.json();
        assert_eq!(toxic["attributes"], json!({"latency": 100, "jitter": 9}));
        assert_eq!(toxic["toxicity"], 0.5);
    }
    let answer = chaos
        .call("PATCH", "/proxies/db/toxics/nope", r#"{"toxicity":1}"#)
        .await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.body, r#"{"error":"toxic not found","status":404}"#);
}

#[tokio::test]
async fn deletes_answer_204_then_404() {
    let chaos = Chaos::start().await;
    chaos.proxy("db", echo().await).await;
    chaos.toxic("db", r#"{"type":"noop"}"#).await;
    let path = "/proxies/db/toxics/noop_downstream";
    assert_eq!(chaos.call("DELETE", path, "").await.status, 204);
    assert_eq!(chaos.call("DELETE", path, "").await.status, 404);
    assert_eq!(chaos.call("DELETE", "/proxies/db", "").await.status, 204);
    assert_eq!(chaos.call("DELETE", "/proxies/db", "").await.status, 404);
    assert_eq!(chaos.call("GET", "/proxies", "").await.body, "{}");
}

#[tokio::test]
async fn populate_keeps_an_identical_proxy_with_its_toxics_and_replaces_a_changed_one() {
    let chaos = Chaos::start().await;
    let upstream = echo().await;
    let body = format!(r#"[{{"name":"db","listen":"127.0.0.1:0","upstream":"{upstream}"}}]"#);
    let answer = chaos.call("POST", "/populate", &body).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let listen = answer.json()["proxies"][0]["listen"]
        .as_str()
        .unwrap()
        .to_owned();
    chaos.toxic("db", r#"{"type":"noop"}"#).await;
    let mut live = TcpStream::connect(&listen).await.unwrap();
    round_trip(&mut live, 8).await;

    let same = format!(r#"[{{"name":"db","listen":"{listen}","upstream":"{upstream}"}}]"#);
    let answer = chaos.call("POST", "/populate", &same).await;
    assert_eq!(answer.status, 201);
    let proxy = &answer.json()["proxies"][0];
    assert_eq!(proxy["listen"], listen.as_str());
    assert_eq!(proxy["toxics"][0]["name"], "noop_downstream", "toxics kept");
    round_trip(&mut live, 8).await;

    let other = echo().await;
    let changed = format!(r#"[{{"name":"db","listen":"{listen}","upstream":"{other}"}}]"#);
    let answer = chaos.call("POST", "/populate", &changed).await;
    assert_eq!(answer.status, 201);
    assert_eq!(answer.json()["proxies"][0]["toxics"], json!([]));
    assert_eq!(answer.json()["proxies"][0]["upstream"], other.to_string());
}

#[tokio::test]
async fn populate_checks_every_entry_before_applying_any() {
    let chaos = Chaos::start().await;
    let upstream = echo().await;
    let body = format!(
        r#"[{{"name":"a","listen":"127.0.0.1:0","upstream":"{upstream}"}},{{"name":"b","listen":"127.0.0.1:0"}}]"#
    );
    let answer = chaos.call("POST", "/populate", &body).await;
    assert_eq!(answer.status, 400);
    assert_eq!(
        answer.json()["error"],
        "missing required field: upstream at proxy 2"
    );
    assert_eq!(answer.json()["proxies"], json!([]));
    assert_eq!(chaos.call("GET", "/proxies", "").await.body, "{}");
    let answer = chaos.call("POST", "/populate", r#"{"name":"a"}"#).await;
    assert_eq!(answer.status, 400, "an object is not a list");
}

#[tokio::test]
async fn browser_user_agents_are_refused_with_403() {
    let chaos = Chaos::start().await;
    let answer = chaos
        .call_as("GET", "/proxies", "", "Mozilla/5.0 (X11; Linux x86_64)")
        .await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.body, "User agent not allowed\n");
    assert_eq!(chaos.call("GET", "/proxies", "").await.status, 200);
}

#[tokio::test]
async fn malformed_json_is_400_and_disturbs_nothing() {
    let chaos = Chaos::start().await;
    let listen = chaos.proxy("db", echo().await).await;
    let mut live = TcpStream::connect(listen).await.unwrap();
    round_trip(&mut live, 8).await;
    for (method, path) in [
        ("POST", "/proxies"),
        ("POST", "/populate"),
        ("PATCH", "/proxies/db"),
        ("POST", "/proxies/db/toxics"),
    ] {
        let answer = chaos.call(method, path, r#"{"name": "x""#).await;
        assert_eq!(answer.status, 400, "{method} {path}");
        let message = answer.json()["error"].as_str().unwrap().to_owned();
        assert!(message.starts_with("bad request body"), "{message}");
    }
    let answer = chaos.call("POST", "/proxies", "").await;
    assert_eq!(answer.json()["error"], "bad request body: EOF");
    round_trip(&mut live, 8).await;
    let proxies = chaos.call("GET", "/proxies", "").await.json();
    assert_eq!(proxies.as_object().unwrap().len(), 1);
}

#[tokio::test]
async fn a_taken_listen_address_is_409_and_the_running_proxy_is_undisturbed() {
    let chaos = Chaos::start().await;
    let listen = chaos.proxy("a", echo().await).await;
    let mut live = TcpStream::connect(listen).await.unwrap();
    let body = format!(r#"{{"name":"b","listen":"{listen}","upstream":"127.0.0.1:1"}}"#);
    let answer = chaos.call("POST", "/proxies", &body).await;
    assert_eq!(answer.status, 409, "{}", answer.body);
    let message = answer.json()["error"].as_str().unwrap().to_owned();
    assert!(message.contains(&listen.to_string()), "{message}");
    assert_eq!(chaos.call("GET", "/proxies/b", "").await.status, 404);
    round_trip(&mut live, 8).await;
    let mut fresh = TcpStream::connect(listen).await.unwrap();
    round_trip(&mut fresh, 8).await;
}

#[tokio::test]
async fn disabling_closes_the_listener_and_live_connections_without_waiting() {
    let chaos = Chaos::start().await;
    let listen = chaos.proxy("db", echo().await).await;
    let mut live = TcpStream::connect(listen).await.unwrap();
    round_trip(&mut live, 8).await;
    // A black hole holds data inside the proxy: disabling must not wait for it.
    chaos
        .toxic("db", r#"{"type":"timeout","attributes":{"timeout":0}}"#)
        .await;
    tokio::io::AsyncWriteExt::write_all(&mut live, b"held")
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let answer = chaos
        .call("POST", "/proxies/db", r#"{"enabled":false}"#)
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["enabled"], false);
    assert!(started.elapsed() < Duration::from_secs(2));
    let rest = read_all(&mut live, Duration::from_secs(5)).await;
    assert!(rest.is_empty());
    assert!(TcpStream::connect(listen).await.is_err(), "listener closed");
    let answer = chaos
        .call("PATCH", "/proxies/db", r#"{"enabled":true}"#)
        .await;
    assert_eq!(answer.json()["listen"], listen.to_string(), "same address");
    chaos
        .call("DELETE", "/proxies/db/toxics/timeout_downstream", "")
        .await;
    let mut again = TcpStream::connect(listen).await.unwrap();
    round_trip(&mut again, 8).await;
}

#[tokio::test]
async fn reset_enables_every_proxy_and_removes_every_toxic() {
    let chaos = Chaos::start().await;
    let listen = chaos.proxy("db", echo().await).await;
    chaos.toxic("db", r#"{"type":"noop"}"#).await;
    chaos
        .call("PATCH", "/proxies/db", r#"{"enabled":false}"#)
        .await;
    assert_eq!(chaos.call("POST", "/reset", "").await.status, 204);
    let proxy = chaos.call("GET", "/proxies/db", "").await.json();
    assert_eq!(proxy["enabled"], true);
    assert_eq!(proxy["toxics"], json!([]));
    let mut client = TcpStream::connect(listen).await.unwrap();
    round_trip(&mut client, 8).await;
}

#[tokio::test]
async fn version_and_metrics_answer_with_toxiproxy_names() {
    let chaos = Chaos::start().await;
    let answer = chaos.call("GET", "/version", "").await;
    assert_eq!(answer.status, 200);
    assert!(answer.json()["version"].is_string());
    let listen = chaos.proxy("db", echo().await).await;
    let mut client = TcpStream::connect(listen).await.unwrap();
    round_trip(&mut client, 100).await;
    let metrics = chaos.call("GET", "/metrics", "").await.body;
    let line = format!(
        "toxiproxy_proxy_sent_bytes_total{{direction=\"upstream\",listener=\"{listen}\",proxy=\"db\","
    );
    let sent = metrics
        .lines()
        .find(|l| l.starts_with(&line))
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(sent.ends_with(" 100"), "{sent}");
    assert!(metrics.contains("toxiproxy_proxy_received_bytes_total{"));
}

#[tokio::test]
async fn an_unreachable_upstream_means_accept_then_close() {
    let chaos = Chaos::start().await;
    let listen = chaos.proxy("db", closed_port().await).await;
    let mut client = TcpStream::connect(listen).await.unwrap();
    let got = read_all(&mut client, Duration::from_secs(5)).await;
    assert!(got.is_empty());
}

#[tokio::test]
async fn creating_a_proxy_with_toxics_is_all_or_nothing() {
    let chaos = Chaos::start().await;
    let upstream = echo().await;
    let bad = format!(
        r#"{{"name":"db","listen":"127.0.0.1:0","upstream":"{upstream}","toxics":[{{"type":"noop"}},{{"type":"teleport"}}]}}"#
    );
    let answer = chaos.call("POST", "/proxies", &bad).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"], "invalid toxic type (toxic 2)");
    assert_eq!(chaos.call("GET", "/proxies/db", "").await.status, 404);
    let good = format!(
        r#"{{"name":"db","listen":"127.0.0.1:0","upstream":"{upstream}","toxics":[{{"type":"latency","stream":"upstream","attributes":{{"latency":5}}}}]}}"#
    );
    let answer = chaos.call("POST", "/proxies", &good).await;
    assert_eq!(answer.status, 201);
    assert_eq!(answer.json()["toxics"][0]["name"], "latency_upstream");
}

#[tokio::test]
async fn toxics_added_and_removed_act_on_live_connections() {
    let chaos = Chaos::start().await;
    let listen = chaos.proxy("db", echo().await).await;
    let mut live = TcpStream::connect(listen).await.unwrap();
    assert!(round_trip(&mut live, 8).await < Duration::from_millis(500));
    chaos
        .toxic("db", r#"{"type":"latency","attributes":{"latency":700}}"#)
        .await;
    let slow = round_trip(&mut live, 8).await;
    assert!(slow >= Duration::from_millis(690), "{slow:?}");
    chaos
        .call("DELETE", "/proxies/db/toxics/latency_downstream", "")
        .await;
    let fast = round_trip(&mut live, 8).await;
    assert!(fast < Duration::from_millis(500), "{fast:?}");
}

#[tokio::test]
async fn a_toxic_with_a_ttl_removes_itself() {
    let chaos = Chaos::start().await;
    chaos.proxy("db", echo().await).await;
    let answer = chaos.toxic("db", r#"{"type":"noop","ttl":300}"#).await;
    assert_eq!(answer.json()["ttl"], 300);
    let plain = chaos.toxic("db", r#"{"type":"noop","name":"kept"}"#).await;
    assert!(
        plain.json().get("ttl").is_none(),
        "no extra field without a ttl"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let toxics = chaos.call("GET", "/proxies/db/toxics", "").await.json();
        if toxics.as_array().unwrap().len() == 1 {
            assert_eq!(toxics[0]["name"], "kept");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still there: {toxics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn populate_entries_may_carry_toxics_checked_before_anything_is_applied() {
    let chaos = Chaos::start().await;
    let upstream = echo().await;
    let bad = format!(
        r#"[{{"name":"a","listen":"127.0.0.1:0","upstream":"{upstream}"}},{{"name":"b","listen":"127.0.0.1:0","upstream":"{upstream}","toxics":[{{"type":"teleport"}}]}}]"#
    );
    let answer = chaos.call("POST", "/populate", &bad).await;
    assert_eq!(answer.status, 400);
    assert_eq!(
        answer.json()["error"],
        "invalid toxic type (toxic 1 of proxy 2)"
    );
    assert_eq!(chaos.call("GET", "/proxies", "").await.body, "{}");

    let good = format!(
        r#"[{{"name":"a","listen":"127.0.0.1:0","upstream":"{upstream}","toxics":[{{"type":"noop","name":"first"}}]}}]"#
    );
    let answer = chaos.call("POST", "/populate", &good).await;
    assert_eq!(answer.status, 201);
    let listen = answer.json()["proxies"][0]["listen"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(answer.json()["proxies"][0]["toxics"][0]["name"], "first");
    // An identical proxy is kept as it is: the toxics of the new entry are not applied.
    let again =
        format!(r#"[{{"name":"a","listen":"{listen}","upstream":"{upstream}","toxics":[]}}]"#);
    let answer = chaos.call("POST", "/populate", &again).await;
    assert_eq!(answer.json()["proxies"][0]["toxics"][0]["name"], "first");
}

#[tokio::test]
async fn moving_a_proxy_to_a_taken_address_is_409_and_leaves_it_running() {
    let chaos = Chaos::start().await;
    let upstream = echo().await;
    let listen = chaos.proxy("a", upstream).await;
    let taken = chaos.proxy("b", upstream).await;
    let mut live = TcpStream::connect(listen).await.unwrap();
    round_trip(&mut live, 8).await;
    let body = format!(r#"{{"listen":"{taken}"}}"#);
    let answer = chaos.call("PATCH", "/proxies/a", &body).await;
    assert_eq!(answer.status, 409, "{}", answer.body);
    let proxy = chaos.call("GET", "/proxies/a", "").await.json();
    assert_eq!(proxy["listen"], listen.to_string());
    assert_eq!(proxy["enabled"], true);
    round_trip(&mut live, 8).await;
    // A free address works, and the proxy answers there.
    let answer = chaos
        .call("PATCH", "/proxies/a", r#"{"listen":"127.0.0.1:0"}"#)
        .await;
    assert_eq!(answer.status, 200);
    let moved: std::net::SocketAddr = answer.json()["listen"].as_str().unwrap().parse().unwrap();
    assert_ne!(moved, listen);
    let mut fresh = TcpStream::connect(moved).await.unwrap();
    round_trip(&mut fresh, 8).await;
}
