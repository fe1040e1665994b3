//! `host:port` upstream endpoints through the real gateway: two sims on 127.0.0.2 and
//! 127.0.0.3 (both loopback on Linux) on the same port, and a resolver whose answers the
//! test sets. Re-resolution runs on short real intervals (sockets are real, so the clock
//! is not paused); waits are generous for a noisy 2-core box.

mod support;

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use seawall_gateway::GatewayOptions;
use seawall_pool::{ManualResolver, Resolve};
use seawall_sim::Sim;
use serde_json::Value;
use support::*;

const WAIT: Duration = Duration::from_secs(10);
const NAME: &str = "api.test";

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// A port free on both 127.0.0.2 and 127.0.0.3, so one name can point at either.
fn port_free_on_both() -> u16 {
    for _ in 0..50 {
        let a = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.3", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free on both loopback addresses");
}

/// The sims behind `api.test`: `old` on 127.0.0.2, `new` on 127.0.0.3, same port.
struct Sims {
    port: u16,
    old: Sim,
    new: Sim,
}

async fn sims() -> Sims {
    let port = port_free_on_both();
    let at = |host: &str| SocketAddr::new(ip(host), port);
    Sims {
        port,
        old: Sim::bind(at("127.0.0.2")).await.expect("bind 127.0.0.2"),
        new: Sim::bind(at("127.0.0.3")).await.expect("bind 127.0.0.3"),
    }
}

/// A gateway with one route to upstream `api` at `api.test:port`, re-resolved every
/// 100 ms (the manual resolver gives no TTL), draining removed addresses for `grace`.
async fn gateway(port: u16, grace: &str, resolver: &Arc<ManualResolver>) -> TestGateway {
    let yaml = config(
        &[],
        &[route("r", "*", "/", "api", "30s", "")],
        &[upstream_yaml(port, grace)],
    );
    let options = GatewayOptions {
        resolver: Some(Arc::clone(resolver) as Arc<dyn Resolve>),
        ..GatewayOptions::default()
    };
    start_with(&yaml, options).await
}

fn upstream_yaml(port: u16, grace: &str) -> String {
    format!(
        "{{name: api, endpoints: [\"{NAME}:{port}\"], dns: {{min_ttl: 50ms, max_ttl: 1s, interval: 100ms, resolve_timeout: 1s, drain_grace: {grace}}}}}"
    )
}

/// The `/upstreams` entry of the named endpoint of upstream `api`.
async fn dns_entry(admin: SocketAddr) -> Value {
    let r = admin_get(admin, "/upstreams").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    let api = v["upstreams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "api")
        .cloned()
        .expect("upstream api listed");
    api["endpoints"][0].clone()
}

/// `(address, state, open)` of every address of the entry.
fn addresses(entry: &Value) -> Vec<(String, String, u64)> {
    entry["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["address"].as_str().unwrap().to_owned(),
                a["state"].as_str().unwrap().to_owned(),
                a["open"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn an_answer_change_moves_new_requests_closes_idle_ones_and_lets_in_flight_finish() {
    let s = sims().await;
    let old_addr = format!("127.0.0.2:{}", s.port);
    let new_addr = format!("127.0.0.3:{}", s.port);
    let resolver = Arc::new(ManualResolver::new());
    resolver.set(NAME, &[ip("127.0.0.2")], None);
    let t = gateway(s.port, "10s", &resolver).await;

    // A slow request holds one connection to the old address; a fast one leaves another
    // idle in the pool.
    let addr = t.addr;
    let slow = tokio::spawn(async move { get(addr, "/delay/1500ms").await });
    assert!(
        eventually(WAIT, || async { s.old.stats().requests_in_flight == 1 }).await,
        "the slow request reached 127.0.0.2"
    );
    let r = get(t.addr, "/").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.old.stats().connections_open, 2);
    let entry = dns_entry(t.admin).await;
    assert_eq!(entry["name"], format!("{NAME}:{}", s.port));
    assert_eq!(entry["dns"]["answer"], serde_json::json!([old_addr]));
    assert_eq!(addresses(&entry), [(old_addr.clone(), "active".into(), 2)]);

    resolver.set(NAME, &[ip("127.0.0.3")], None);
    // New requests go to the new address.
    let mut reached_new = false;
    for _ in 0..200 {
        let r = get(t.addr, "/").await;
        assert_eq!(r.status, 200, "{}", r.text());
        if s.new.stats().requests > 0 {
            reached_new = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(reached_new, "no request reached 127.0.0.3");
    let before = s.old.stats().requests;
    for _ in 0..5 {
        assert_eq!(get(t.addr, "/").await.status, 200);
    }
    assert_eq!(
        s.old.stats().requests,
        before,
        "new requests stay off 127.0.0.2"
    );
    assert!(s.new.stats().requests >= 6);

    // The idle connection to the old address is closed at once; the busy one remains.
    assert!(
        eventually(WAIT, || async { s.old.stats().connections_open == 1 }).await,
        "idle connection to 127.0.0.2 still open: {:?}",
        s.old.stats()
    );
    let entry = dns_entry(t.admin).await;
    assert_eq!(entry["dns"]["answer"], serde_json::json!([new_addr]));
    let now = addresses(&entry);
    assert!(
        now.contains(&(old_addr.clone(), "draining".into(), 1)),
        "{now:?}"
    );
    assert!(
        now.iter()
            .any(|(a, state, _)| *a == new_addr && state == "active"),
        "{now:?}"
    );

    // The in-flight request on the old address completes...
    let r = tokio::time::timeout(WAIT, slow).await.unwrap().unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    // ...and then nothing to it remains, in the sim or in the admin view.
    assert!(
        eventually(WAIT, || async { s.old.stats().connections_open == 0 }).await,
        "{:?}",
        s.old.stats()
    );
    assert!(
        eventually(WAIT, || async {
            let entry = dns_entry(t.admin).await;
            addresses(&entry).iter().all(|(a, _, _)| *a == new_addr)
        })
        .await,
        "127.0.0.2 still listed: {}",
        dns_entry(t.admin).await
    );
    let m = metrics_text(t.admin).await;
    let api = [("upstream", "api")];
    assert_eq!(
        metric(&m, "seawall_upstream_dns_addresses", &api),
        Some(1.0)
    );
    assert_eq!(
        metric(&m, "seawall_upstream_dns_changes_total", &api),
        Some(2.0),
        "the first answer and the change"
    );
    assert!(metric(&m, "seawall_upstream_dns_lookups_total", &api).unwrap() >= 2.0);
    assert!(
        metric(
            &m,
            "seawall_upstream_dns_resolve_duration_seconds_count",
            &api
        )
        .unwrap()
            >= 2.0
    );
}

#[tokio::test]
async fn after_the_drain_grace_nothing_to_the_old_address_remains() {
    let s = sims().await;
    let resolver = Arc::new(ManualResolver::new());
    resolver.set(NAME, &[ip("127.0.0.2")], None);
    let t = gateway(s.port, "500ms", &resolver).await;
    let addr = t.addr;
    // Slower than the grace: the grace cuts it.
    let slow = tokio::spawn(async move { get(addr, "/delay/20s").await });
    assert!(
        eventually(WAIT, || async { s.old.stats().requests_in_flight == 1 }).await,
        "the slow request reached 127.0.0.2"
    );
    resolver.set(NAME, &[ip("127.0.0.3")], None);
    let changed = std::time::Instant::now();
    let r = tokio::time::timeout(WAIT, slow).await.unwrap().unwrap();
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.error(), Some("upstream_reset"));
    assert!(
        changed.elapsed() >= Duration::from_millis(400),
        "cut before the grace ended: {:?}",
        changed.elapsed()
    );
    assert!(
        eventually(WAIT, || async { s.old.stats().connections_open == 0 }).await,
        "{:?}",
        s.old.stats()
    );
    assert!(
        eventually(WAIT, || async {
            addresses(&dns_entry(t.admin).await)
                .iter()
                .all(|(a, _, _)| !a.starts_with("127.0.0.2:"))
        })
        .await,
        "127.0.0.2 still listed"
    );
    assert_eq!(get(t.addr, "/").await.status, 200);
    assert!(s.new.stats().requests >= 1);
}

#[tokio::test]
async fn a_failing_lookup_keeps_serving_the_last_answer_and_counts_the_failures() {
    let s = sims().await;
    let resolver = Arc::new(ManualResolver::new());
    resolver.set(NAME, &[ip("127.0.0.2")], None);
    let t = gateway(s.port, "10s", &resolver).await;
    assert_eq!(get(t.addr, "/").await.status, 200);
    resolver.fail(NAME);
    assert!(
        eventually(WAIT, || async {
            dns_entry(t.admin).await["dns"]["lookup_failures"]
                .as_u64()
                .unwrap()
                >= 2
        })
        .await
    );
    for _ in 0..3 {
        let r = get(t.addr, "/").await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(s.old.stats().requests, 4);
    let entry = dns_entry(t.admin).await;
    assert_eq!(
        entry["dns"]["answer"],
        serde_json::json!([format!("127.0.0.2:{}", s.port)])
    );
    assert!(
        entry["dns"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("failed")),
        "{entry}"
    );
    // The answer's age grows while lookups fail: it is the last *good* answer's.
    assert!(entry["dns"]["age_seconds"].as_f64().unwrap() >= 0.0);
    let m = metrics_text(t.admin).await;
    assert!(
        metric(
            &m,
            "seawall_upstream_dns_failures_total",
            &[("upstream", "api")]
        )
        .unwrap()
            >= 2.0
    );
    assert_eq!(
        metric(&m, "seawall_upstream_dns_addresses", &[("upstream", "api")]),
        Some(1.0)
    );
}

#[tokio::test]
async fn ip_and_name_endpoints_mix_in_one_upstream() {
    let s = sims().await;
    let plain = sim().await;
    let resolver = Arc::new(ManualResolver::new());
    resolver.set(NAME, &[ip("127.0.0.2")], None);
    let yaml = config(
        &[],
        &[route("r", "*", "/", "api", "30s", "")],
        &[format!(
            "{{name: api, balancer: round_robin, endpoints: [\"{}\", \"{NAME}:{}\"]}}",
            plain.local_addr(),
            s.port
        )],
    );
    let options = GatewayOptions {
        resolver: Some(Arc::clone(&resolver) as Arc<dyn Resolve>),
        ..GatewayOptions::default()
    };
    let t = start_with(&yaml, options).await;
    for _ in 0..4 {
        assert_eq!(get(t.addr, "/").await.status, 200);
    }
    assert_eq!((plain.stats().requests, s.old.stats().requests), (2, 2));
    let r = admin_get(t.admin, "/upstreams").await;
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    let endpoints = &v["upstreams"][0]["endpoints"];
    assert_eq!(endpoints[0]["address"], plain.local_addr().to_string());
    assert_eq!(endpoints[0]["endpoint"], plain.local_addr().to_string());
    assert!(endpoints[0].get("dns").is_none());
    assert_eq!(endpoints[1]["endpoint"], format!("{NAME}:{}", s.port));
    assert_eq!(endpoints[1]["addresses"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_reload_keeps_an_unchanged_named_upstream_warm_and_rebuilds_a_changed_one() {
    let s = sims().await;
    let resolver = Arc::new(ManualResolver::new());
    resolver.set(NAME, &[ip("127.0.0.2")], None);
    let t = gateway(s.port, "10s", &resolver).await;
    let mut conn = Conn::open(t.addr).await;
    assert_eq!(conn.get("/").await.status, 200);
    assert_eq!(s.old.stats().connections_accepted, 1);

    // Only the route changes: the upstream, its pools and its connection stay.
    let changed_route = config(
        &[],
        &[route("r", "*", "/", "api", "20s", "")],
        &[upstream_yaml(s.port, "10s")],
    );
    let config = seawall_config::parse("test.yaml", &changed_route).unwrap();
    assert_eq!(t.gw.apply(config).await, Ok(2));
    assert_eq!(conn.get("/").await.status, 200);
    assert_eq!(
        s.old.stats().connections_accepted,
        1,
        "the upstream's connection was reused across the reload"
    );

    // A changed `dns` block rebuilds the upstream: a new pool, a new connection, and the
    // old pool's idle connection is closed once the old runtime is gone.
    let changed_dns = config_text_with_grace(s.port, "5s");
    let config = seawall_config::parse("test.yaml", &changed_dns).unwrap();
    assert_eq!(t.gw.apply(config).await, Ok(3));
    assert_eq!(conn.get("/").await.status, 200);
    assert_eq!(s.old.stats().connections_accepted, 2);
    assert!(
        eventually(WAIT, || async { s.old.stats().connections_open == 1 }).await,
        "{:?}",
        s.old.stats()
    );
}

fn config_text_with_grace(port: u16, grace: &str) -> String {
    config(
        &[],
        &[route("r", "*", "/", "api", "20s", "")],
        &[upstream_yaml(port, grace)],
    )
}

#[tokio::test]
async fn the_hickory_and_system_resolvers_resolve_localhost() {
    // localhost may also answer ::1 (hickory does); nothing listens there, so that
    // address's connect fails and the request falls through to 127.0.0.1.
    let plain = sim().await;
    let port = plain.local_addr().port();
    for resolver in ["hickory", "system"] {
        let yaml = config(
            &[],
            &[route("r", "*", "/", "api", "30s", "")],
            &[format!(
                "{{name: api, endpoints: [\"localhost:{port}\"], dns: {{resolver: {resolver}}}}}"
            )],
        );
        let t = start(&yaml).await;
        for _ in 0..3 {
            let r = get(t.addr, "/").await;
            assert_eq!(r.status, 200, "{resolver}: {}", r.text());
        }
        let entry = dns_entry(t.admin).await;
        let answer = entry["dns"]["answer"].as_array().unwrap().clone();
        assert!(
            answer.contains(&Value::from(format!("127.0.0.1:{port}"))),
            "{resolver}: {entry}"
        );
        // hickory knows the answer's TTL; getaddrinfo does not.
        assert_eq!(
            entry["dns"]["ttl_seconds"].is_null(),
            resolver == "system",
            "{resolver}: {entry}"
        );
        if resolver == "hickory" {
            // The hosts file's day-long TTL, and the one used: clamped to max_ttl (5m).
            let used = entry["dns"]["ttl_seconds"].as_f64().unwrap();
            let answered = entry["dns"]["answer_ttl_seconds"].as_f64().unwrap();
            assert_eq!(used, 300.0, "{entry}");
            assert!(answered > 3600.0, "{entry}");
        }
        t.gw.shutdown(Duration::from_secs(1)).await;
    }
    assert_eq!(plain.stats().requests, 6);
}
