//! `upstreams[].tls`, `timeouts.tls_handshake` and the pool's life limits: defaults, and
//! the problems `validate` reports with their key paths.

use std::path::PathBuf;

use seawall_config::{
    AlpnProtocol, Config, HumanDuration, Problem, UpstreamProtocol, UpstreamTlsConfig,
    default_config, parse, validate, warnings,
};

fn problem<'a>(problems: &'a [Problem], path: &str) -> &'a Problem {
    problems
        .iter()
        .find(|p| p.path == path)
        .unwrap_or_else(|| panic!("no problem at `{path}` in {problems:#?}"))
}

/// A directory with a CA-looking file, a client certificate and its key (PEM markers
/// only: this crate looks at the files, the gateway parses them).
struct Files(PathBuf);

impl Files {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "seawall-config-upstream-tls-{}-{name}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let key = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";
        std::fs::write(dir.join("ca.pem"), cert).unwrap();
        std::fs::write(dir.join("client.pem"), cert).unwrap();
        std::fs::write(dir.join("client.key"), key).unwrap();
        Files(dir)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn with_tls(tls: UpstreamTlsConfig) -> Config {
    let mut config = default_config();
    config.upstreams[0].tls = Some(tls);
    config
}

fn tls() -> UpstreamTlsConfig {
    UpstreamTlsConfig {
        server_name: Some("api.internal".into()),
        ca_file: None,
        client_cert_file: None,
        client_key_file: None,
        alpn: None,
    }
}

#[test]
fn an_upstream_tls_block_gets_http1_alpn_and_a_5s_handshake_timeout_by_default() {
    let yaml = r#"
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - upstream: api
upstreams:
  - name: api
    endpoints: ["127.0.0.1:8443"]
    tls: {}
    pool:
      max_lifetime: 5m
      max_requests_per_connection: 1000
"#;
    let config = parse("test.yaml", yaml).unwrap();
    let upstream = &config.upstreams[0];
    let tls = upstream.tls.as_ref().unwrap();
    assert_eq!(tls.alpn, None);
    assert_eq!(upstream.protocol, UpstreamProtocol::Http1);
    assert_eq!(tls.alpn_for(upstream.protocol), vec![AlpnProtocol::Http11]);
    assert_eq!(tls.ca_file, None, "webpki roots by default");
    assert_eq!(upstream.timeouts.tls_handshake, HumanDuration::from_secs(5));
    assert_eq!(
        upstream.pool.max_lifetime,
        Some(HumanDuration::from_secs(300))
    );
    assert_eq!(upstream.pool.max_requests_per_connection, Some(1000));
    assert!(
        default_config().upstreams[0].tls.is_none(),
        "TLS is off unless set"
    );
}

#[test]
fn readable_pem_files_of_the_right_kind_have_no_problems() {
    let files = Files::new("ok");
    let config = with_tls(UpstreamTlsConfig {
        ca_file: Some(files.path("ca.pem")),
        client_cert_file: Some(files.path("client.pem")),
        client_key_file: Some(files.path("client.key")),
        ..tls()
    });
    assert_eq!(validate(&config), []);
}

#[test]
fn an_unreadable_ca_file_is_reported_at_its_key_path() {
    let config = with_tls(UpstreamTlsConfig {
        ca_file: Some("/nonexistent/seawall/ca.pem".into()),
        ..tls()
    });
    let problems = validate(&config);
    let p = problem(&problems, "upstreams[0].tls.ca_file");
    assert!(
        p.message.contains("cannot read the CA certificate file"),
        "{p}"
    );
    assert_eq!(p.value.as_deref(), Some("/nonexistent/seawall/ca.pem"));
    assert!(p.hint.is_some(), "{p}");
}

#[test]
fn a_ca_file_holding_a_key_is_reported_as_swapped() {
    let files = Files::new("swapped");
    let config = with_tls(UpstreamTlsConfig {
        ca_file: Some(files.path("client.key")),
        ..tls()
    });
    let problems = validate(&config);
    let p = problem(&problems, "upstreams[0].tls.ca_file");
    assert!(p.message.contains("no PEM CA certificate"), "{p}");
    assert!(p.hint.as_deref().unwrap().contains("swapped"), "{p}");
}

#[test]
fn a_client_certificate_without_its_key_is_reported_and_vice_versa() {
    let files = Files::new("half");
    let config = with_tls(UpstreamTlsConfig {
        client_cert_file: Some(files.path("client.pem")),
        ..tls()
    });
    let problems = validate(&config);
    let p = problem(&problems, "upstreams[0].tls.client_cert_file");
    assert!(p.message.contains("without client_key_file"), "{p}");
    assert!(
        p.hint.as_deref().unwrap().contains("client_key_file"),
        "{p}"
    );

    let config = with_tls(UpstreamTlsConfig {
        client_key_file: Some(files.path("client.key")),
        ..tls()
    });
    let problems = validate(&config);
    let p = problem(&problems, "upstreams[0].tls.client_key_file");
    assert!(p.message.contains("without client_cert_file"), "{p}");
}

#[test]
fn h2_alpn_and_a_server_name_with_a_scheme_are_reported() {
    let config = with_tls(UpstreamTlsConfig {
        server_name: Some("https://api.internal/".into()),
        alpn: Some(vec![AlpnProtocol::Http11, AlpnProtocol::H2]),
        ..tls()
    });
    let problems = validate(&config);
    problem(&problems, "upstreams[0].tls.server_name");
    let p = problem(&problems, "upstreams[0].tls.alpn[1]");
    assert!(p.message.contains("protocol: http1"), "{p}");
    assert!(
        p.hint.as_deref().unwrap().contains("protocol: http2"),
        "{p}"
    );
}

#[test]
fn alpn_follows_the_protocol_and_contradictions_are_reported() {
    let mut config = with_tls(tls());
    for (protocol, alpn) in [
        (UpstreamProtocol::Http2, vec![AlpnProtocol::H2]),
        (
            UpstreamProtocol::Auto,
            vec![AlpnProtocol::H2, AlpnProtocol::Http11],
        ),
    ] {
        config.upstreams[0].protocol = protocol;
        assert_eq!(
            validate(&config),
            [],
            "{protocol:?}: the derived ALPN agrees"
        );
        let tls = config.upstreams[0].tls.as_ref().unwrap();
        assert_eq!(tls.alpn_for(protocol), alpn);
    }
    config.upstreams[0].protocol = UpstreamProtocol::Http2;
    config.upstreams[0].tls.as_mut().unwrap().alpn =
        Some(vec![AlpnProtocol::H2, AlpnProtocol::Http11]);
    let problems = validate(&config);
    let p = problem(&problems, "upstreams[0].tls.alpn[1]");
    assert!(p.message.contains("protocol: http2"), "{p}");
    config.upstreams[0].protocol = UpstreamProtocol::Auto;
    config.upstreams[0].tls.as_mut().unwrap().alpn = Some(vec![AlpnProtocol::Http11]);
    let problems = validate(&config);
    let p = problem(&problems, "upstreams[0].tls.alpn");
    assert!(p.message.contains("both"), "{p}");
    assert_eq!(p.value.as_deref(), Some("[http/1.1]"), "{p}");
}

#[test]
fn a_tls_handshake_timeout_beyond_the_route_deadline_is_reported_only_for_tls_upstreams() {
    let mut config = default_config();
    config.upstreams[0].timeouts.tls_handshake = HumanDuration::from_secs(60);
    assert_eq!(warnings(&config), [], "no TLS: the timeout never applies");
    config.upstreams[0].tls = Some(tls());
    assert_eq!(validate(&config), [], "a warning, not an error");
    let problems = warnings(&config);
    let p = problem(&problems, "upstreams[0].timeouts.tls_handshake");
    assert!(p.message.contains("1m") && p.message.contains("10s"), "{p}");
}

#[test]
fn zero_life_limits_are_reported() {
    let mut config = default_config();
    config.upstreams[0].pool.max_lifetime = Some(HumanDuration::from_secs(0));
    config.upstreams[0].pool.max_requests_per_connection = Some(0);
    config.upstreams[0].timeouts.tls_handshake = HumanDuration::from_secs(0);
    let problems = validate(&config);
    problem(&problems, "upstreams[0].pool.max_lifetime");
    problem(&problems, "upstreams[0].pool.max_requests_per_connection");
    problem(&problems, "upstreams[0].timeouts.tls_handshake");
}

#[test]
fn an_upgrade_share_above_the_connection_cap_is_reported() {
    let mut config = default_config();
    config.upstreams[0].pool.max_connections_per_endpoint = 200;
    config.upstreams[0].pool.max_idle_per_endpoint = 100;
    config.upstreams[0].pool.max_upgrades_per_endpoint = Some(200);
    assert_eq!(validate(&config), [], "equal to the cap is allowed");
    config.upstreams[0].pool.max_upgrades_per_endpoint = Some(201);
    let problems = validate(&config);
    let p = problem(&problems, "upstreams[0].pool.max_upgrades_per_endpoint");
    assert_eq!(p.value.as_deref(), Some("201"), "{p}");
    assert!(p.hint.as_deref().is_some_and(|h| h.contains("200")), "{p}");
}

#[test]
fn a_bad_ca_file_in_yaml_is_located_at_its_line() {
    let yaml = r#"
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - upstream: api
upstreams:
  - name: api
    endpoints: ["127.0.0.1:8443"]
    tls:
      ca_file: /nonexistent/seawall/ca.pem
"#;
    let error = parse("test.yaml", yaml).unwrap_err().to_string();
    assert!(error.contains("upstreams[0].tls.ca_file"), "{error}");
    assert!(error.contains(":11:"), "line of the key: {error}");
}
