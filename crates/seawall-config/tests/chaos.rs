//! The `chaos:` section: parsed, validated, and every bad entry located (line, key, hint).

use seawall_config::{ChaosProtocol, DEFAULT_CONFIG, Diagnostic, parse};

/// The embedded default with `chaos` appended.
fn with_chaos(chaos: &str) -> String {
    format!("{DEFAULT_CONFIG}\n{chaos}")
}

/// The one diagnostic at `path`, from a config that must fail.
fn error_at(text: &str, path: &str) -> Diagnostic {
    let diagnostics = parse("chaos.yaml", text).expect_err("the config is refused");
    diagnostics
        .iter()
        .find(|d| d.path == path)
        .unwrap_or_else(|| panic!("no diagnostic at `{path}` in {diagnostics}"))
        .clone()
}

/// The 1-based line of the last line of `text` containing `needle` (the chaos section
/// comes last).
fn line_of(text: &str, needle: &str) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    lines.iter().rposition(|l| l.contains(needle)).unwrap() + 1
}

const GOOD: &str = "chaos:
  listen: 127.0.0.1:8474
  seed: 1
  proxies:
    - name: sim
      listen: 127.0.0.1:18081
      upstream: 127.0.0.1:8081
      protocol: http
      toxics:
        - type: http_status
          toxicity: 0.1
          attributes: { status: 503, body: drill }
    - name: raw
      listen: 127.0.0.1:18082
      upstream: localhost:8081
      toxics:
        - { type: latency, attributes: { latency: 100 } }
";

#[test]
fn the_default_config_has_no_chaos_section() {
    assert!(seawall_config::default_config().chaos.is_none());
}

#[test]
fn a_chaos_section_parses_with_its_defaults() {
    let config = parse("chaos.yaml", &with_chaos(GOOD)).unwrap();
    let chaos = config.chaos.unwrap();
    assert_eq!(chaos.seed, Some(1));
    assert!(!chaos.allow_remote);
    assert_eq!(chaos.proxies[0].protocol, ChaosProtocol::Http);
    assert_eq!(chaos.proxies[1].protocol, ChaosProtocol::Tcp);
    assert!(chaos.proxies[1].enabled);
    assert_eq!(chaos.proxies[0].toxics[0].attributes["body"], "drill");
}

#[test]
fn an_unknown_toxic_type_is_located_with_a_suggestion() {
    let text = with_chaos(&GOOD.replace("type: latency", "type: latncy"));
    let d = error_at(&text, "chaos.proxies[1].toxics[0].type");
    assert_eq!(d.line, line_of(&text, "latncy"));
    assert_eq!(d.message, "unknown toxic type `latncy`");
    assert_eq!(d.hint.as_deref(), Some("did you mean `latency`?"));
}

#[test]
fn a_listen_address_taken_by_the_config_is_located() {
    // The sim of the default config listens on 8081.
    let text = with_chaos(&GOOD.replace("listen: 127.0.0.1:18082", "listen: 127.0.0.1:8081"));
    let d = error_at(&text, "chaos.proxies[1].listen");
    assert_eq!(d.line, line_of(&text, "listen: 127.0.0.1:8081"));
    assert!(d.hint.unwrap().contains("sim.listen"));
}

#[test]
fn a_toxic_that_does_not_fit_the_protocol_is_refused() {
    let text = with_chaos(&GOOD.replace("type: http_status", "type: latency"));
    let d = error_at(&text, "chaos.proxies[0].toxics[0].type");
    assert!(
        d.message.contains("cannot be used on an http proxy"),
        "{}",
        d.message
    );
    let text = with_chaos(&GOOD.replace("      protocol: http\n", ""));
    let d = error_at(&text, "chaos.proxies[0].toxics[0].type");
    assert_eq!(
        d.message,
        "toxic type `http_status` needs a proxy with `protocol: http`"
    );
}

#[test]
fn a_remote_api_needs_allow_remote() {
    let text = with_chaos(&GOOD.replace("listen: 127.0.0.1:8474", "listen: 0.0.0.0:8474"));
    let d = error_at(&text, "chaos.listen");
    assert!(d.hint.unwrap().contains("allow_remote"));
    let allowed = text.replace("  seed: 1\n", "  seed: 1\n  allow_remote: true\n");
    parse("chaos.yaml", &allowed).unwrap();
}

#[test]
fn bad_upstreams_toxicities_and_duplicate_names_are_located() {
    let text = with_chaos(
        &GOOD
            .replace("upstream: localhost:8081", "upstream: localhost")
            .replace("toxicity: 0.1", "toxicity: 1.5")
            .replace("name: raw", "name: sim"),
    );
    error_at(&text, "chaos.proxies[1].upstream");
    error_at(&text, "chaos.proxies[0].toxics[0].toxicity");
    error_at(&text, "chaos.proxies[1].name");
}

#[test]
fn an_unknown_key_in_a_chaos_proxy_is_refused() {
    let text = with_chaos(&GOOD.replace("protocol: http", "protcol: http"));
    let diagnostics = parse("chaos.yaml", &text).expect_err("refused");
    assert!(diagnostics.to_string().contains("protcol"), "{diagnostics}");
}
