//! The JSON Schema agrees with the parser: every shipped config (the embedded default and
//! `examples/*.yaml`) is valid against it the way an editor checks it, with YAML's own types
//! (an unquoted `503` is an integer), and a config the schema rejects is refused by the
//! parser too.
//!
//! The validator here covers the keywords the generated schema uses (`$ref`, `anyOf`,
//! `oneOf`, `allOf`, `type`, `enum`, `const`, `properties`, `additionalProperties`,
//! `required`, `items`, `minimum`, `maximum`); any other keyword is ignored, as it only
//! describes.

use std::path::Path;

use seawall_config::{DEFAULT_CONFIG, parse, schema};
use serde_json::Value;

/// Every violation of `schema` by `value`, as `path: reason`.
fn violations(value: &Value, schema: &Value) -> Vec<String> {
    let mut found = Vec::new();
    check(value, schema, schema, "", &mut found);
    found
}

fn check(value: &Value, schema: &Value, root: &Value, path: &str, found: &mut Vec<String>) {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/$defs/");
        let def = &root["$defs"][name];
        assert!(!def.is_null(), "unresolved $ref {r}");
        check(value, def, root, path, found);
    }
    for (keyword, need) in [("anyOf", 1..=usize::MAX), ("oneOf", 1..=1)] {
        if let Some(branches) = schema.get(keyword).and_then(Value::as_array) {
            let passing = branches
                .iter()
                .filter(|b| violations_under(value, b, root).is_empty())
                .count();
            if !need.contains(&passing) {
                found.push(format!(
                    "{path}: {passing} `{keyword}` branches match {value}"
                ));
            }
        }
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            check(value, s, root, path, found);
        }
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !types.iter().any(|t| has_type(value, t)) {
            found.push(format!("{path}: {value} is not of type {types:?}"));
            return;
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        found.push(format!("{path}: {value} is not one of {options:?}"));
    }
    if let Some(c) = schema.get("const")
        && c != value
    {
        found.push(format!("{path}: {value} is not {c}"));
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            found.push(format!("{path}: {n} < minimum {min}"));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            found.push(format!("{path}: {n} > maximum {max}"));
        }
    }
    if let Value::Object(map) = value {
        let properties = schema.get("properties").and_then(Value::as_object);
        for (key, v) in map {
            let child = format!("{path}.{key}");
            match (
                properties.and_then(|p| p.get(key)),
                schema.get("additionalProperties"),
            ) {
                (Some(s), _) => check(v, s, root, &child, found),
                (None, Some(Value::Bool(false))) => found.push(format!("{child}: not allowed")),
                (None, Some(s @ Value::Object(_))) => check(v, s, root, &child, found),
                (None, _) => {}
            }
        }
        for key in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !map.contains_key(key) {
                found.push(format!("{path}: missing required `{key}`"));
            }
        }
    }
    if let (Value::Array(items), Some(s)) = (value, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            check(item, s, root, &format!("{path}[{i}]"), found);
        }
    }
}

fn violations_under(value: &Value, schema: &Value, root: &Value) -> Vec<String> {
    let mut found = Vec::new();
    check(value, schema, root, "", &mut found);
    found
}

fn has_type(value: &Value, t: &str) -> bool {
    match t {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => panic!("unknown JSON Schema type {t}"),
    }
}

/// The YAML as an editor's language server sees it: plain JSON values, YAML-typed.
fn as_json(name: &str, text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn assert_valid(name: &str, text: &str) {
    let found = violations(&as_json(name, text), &schema());
    assert!(
        found.is_empty(),
        "{name} is invalid per the schema:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_default_config_and_every_example_are_valid_per_the_schema() {
    assert_valid("default.yaml", DEFAULT_CONFIG);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            assert_valid(
                &path.display().to_string(),
                &std::fs::read_to_string(&path).unwrap(),
            );
            checked += 1;
        }
    }
    assert!(checked >= 3, "found {checked} examples");
}

const RETRY_ON: &str = "\
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes:
      - upstream: api
        retry: {retry_on: [502, 503, \"5xx\", connect_error]}
upstreams:
  - name: api
    endpoints: [\"127.0.0.1:9000\"]
    breaker: {failure_on: [500, \"502-504\", connect_timeout]}
";

#[test]
fn integer_statuses_in_retry_on_and_failure_on_are_valid_as_the_parser_reads_them() {
    parse("t.yaml", RETRY_ON).unwrap_or_else(|d| panic!("{d}"));
    assert_valid("t.yaml", RETRY_ON);
    // And the schema still rejects what the parser does: not a status, not a list.
    let bad = RETRY_ON.replace("[502, 503,", "[{status: 502}, 503,");
    assert!(parse("t.yaml", &bad).is_err());
    assert!(!violations(&as_json("bad", &bad), &schema()).is_empty());
}
