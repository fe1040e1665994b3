//! The shipped configs are valid: the embedded default and every `examples/*.yaml` at the
//! workspace root. A broken example fails CI here rather than a newcomer's first run.

use std::path::Path;

use seawall_config::{DEFAULT_CONFIG, DEFAULT_CONFIG_NAME, MiddlewareConfig, load, parse, schema};

#[test]
fn the_embedded_default_config_is_valid() {
    let config = parse(DEFAULT_CONFIG_NAME, DEFAULT_CONFIG).unwrap_or_else(|d| panic!("{d}"));
    let listener = &config.listeners[0];
    assert_eq!(
        (listener.name.as_str(), listener.listen.to_string().as_str()),
        ("public", "127.0.0.1:8080")
    );
    assert_eq!(config.admin.listen.to_string(), "127.0.0.1:9901");
    assert_eq!(
        config.sim.as_ref().map(|s| s.listen.to_string()),
        Some("127.0.0.1:8081".into())
    );
    let route = &listener.routes[0];
    assert_eq!(route.upstream, "sim");
    assert_eq!(route.timeout.to_string(), "10s");
    assert_eq!(
        route.middleware,
        [
            MiddlewareConfig::RequestId,
            MiddlewareConfig::AccessLog,
            MiddlewareConfig::Debug
        ]
    );
    let sim = &config.upstreams[0];
    assert_eq!(sim.endpoints, ["127.0.0.1:8081"]);
    assert_eq!(sim.timeouts.connect.to_string(), "1s");
    assert_eq!(
        sim.timeouts.response_header.map(|d| d.to_string()),
        Some("5s".into())
    );
}

#[test]
fn every_example_config_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            load(&path).unwrap_or_else(|d| panic!("{d}"));
            checked += 1;
        }
    }
    assert!(
        checked >= 3,
        "expected at least 3 examples in {}, found {checked}",
        dir.display()
    );
}

#[test]
fn the_schema_describes_every_top_level_section() {
    let schema = schema();
    let properties = schema["properties"]
        .as_object()
        .expect("top-level properties");
    for key in [
        "admin",
        "listeners",
        "upstreams",
        "sim",
        "metrics",
        "debug",
        "shutdown",
    ] {
        assert!(
            properties.contains_key(key),
            "missing `{key}` in the schema"
        );
    }
    assert_eq!(schema["required"], serde_json::json!(["listeners"]));
    assert_eq!(schema["additionalProperties"], serde_json::json!(false));
}
