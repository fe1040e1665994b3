//! The structural check: walks the YAML node tree against the JSON Schema and reports every
//! unknown key, missing key, wrong type and malformed duration, size or address in one pass.
//!
//! serde stops at the first error; this walk does not, which is what lets `seawall check`
//! list all problems of a file at once. Typed deserialization still runs afterwards and stays
//! the authority on what is accepted: this walk only has to be at least as strict and more
//! talkative.

use std::net::SocketAddr;

use saphyr::{MarkedYaml, Scalar, YamlData};
use serde_json::{Map, Value};

use crate::{
    locate::{Position, join_index, join_key, key_text, scalar_text},
    suggest,
    units::{ByteSize, HumanDuration},
    validate::Problem,
};

/// One structural problem, where it is, and which node to drop to recover from it.
#[derive(Debug)]
pub(crate) struct Finding {
    pub(crate) problem: Problem,
    pub(crate) at: Position,
    /// The path of the node [`crate::repair`] removes so the rest of the file can still be
    /// deserialized: the bad value itself or, for a missing key, the mapping that lacks it.
    pub(crate) prune: String,
}

/// Every structural problem of `root` against `schema`.
pub(crate) fn check(root: &MarkedYaml<'_>, schema: &Value) -> Vec<Finding> {
    let empty = Map::new();
    let defs = schema
        .get("$defs")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut walker = Walker {
        defs,
        found: Vec::new(),
    };
    walker.node(root, schema, "");
    walker.found
}

struct Walker<'s> {
    defs: &'s Map<String, Value>,
    found: Vec<Finding>,
}

impl<'s> Walker<'s> {
    fn report(
        &mut self,
        at: Position,
        path: &str,
        value: Option<String>,
        message: String,
        hint: Option<String>,
    ) {
        self.report_pruning(path, at, path, value, message, hint);
    }

    fn report_pruning(
        &mut self,
        prune: &str,
        at: Position,
        path: &str,
        value: Option<String>,
        message: String,
        hint: Option<String>,
    ) {
        let problem = Problem {
            path: path.to_owned(),
            value,
            message,
            hint,
        };
        self.found.push(Finding {
            problem,
            at,
            prune: prune.to_owned(),
        });
    }

    fn node(&mut self, node: &MarkedYaml<'_>, schema: &'s Value, path: &str) {
        let node = unwrap_tags(node);
        // Aliases are resolved by serde later; their target was already checked in place.
        if matches!(node.data, YamlData::Alias(_)) {
            return;
        }
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let name = reference.trim_start_matches("#/$defs/");
            match name {
                "Duration" => self.duration(node, path),
                "ByteSize" => self.byte_size(node, path),
                _ => {
                    if let Some(def) = self.defs.get(name) {
                        self.node(node, def, path);
                    }
                }
            }
            return;
        }
        if let Some(branches) = schema
            .get("anyOf")
            .or_else(|| schema.get("oneOf"))
            .and_then(Value::as_array)
        {
            self.choice(node, branches, path);
            return;
        }
        let types: Vec<&str> = match schema.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => return,
        };
        if is_null(node) && types.contains(&"null") {
            return;
        }
        match types.iter().copied().find(|t| *t != "null") {
            Some("object") => self.mapping(node, schema, path),
            Some("array") => self.sequence(node, schema, path),
            Some(kind) => self.scalar(node, schema, kind, path),
            None => {}
        }
    }

    fn mapping(&mut self, node: &MarkedYaml<'_>, schema: &'s Value, path: &str) {
        let YamlData::Mapping(entries) = &node.data else {
            return self.wrong_type(node, path, "a mapping of keys to values");
        };
        let properties = schema.get("properties").and_then(Value::as_object);
        let property = |key: &str| properties.and_then(|p| p.get(key));
        let extra = schema.get("additionalProperties");
        for (k, v) in entries {
            let Some(key) = key_text(k) else {
                self.report(
                    Position::of(k),
                    path,
                    None,
                    "keys must be plain names".to_owned(),
                    None,
                );
                continue;
            };
            // `<<` merges an anchored mapping (YAML merge key); serde-saphyr expands it, and
            // the anchored original is checked where it is defined.
            if key == "<<" {
                continue;
            }
            let child = join_key(path, &key);
            match (property(&key), extra) {
                (Some(property), _) => self.node(v, property, &child),
                (None, Some(Value::Bool(false))) => {
                    let known: Vec<&str> = properties
                        .into_iter()
                        .flat_map(|p| p.keys())
                        .map(String::as_str)
                        .collect();
                    let hint = suggest::hint(&key, &known);
                    self.report(
                        Position::of(k),
                        &child,
                        None,
                        format!("unknown key `{key}`"),
                        Some(hint),
                    );
                }
                (None, Some(additional @ Value::Object(_))) => self.node(v, additional, &child),
                (None, _) => {}
            }
        }
        let required = schema
            .get("required")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        for key in required.iter().filter_map(Value::as_str) {
            let present = entries.keys().any(|k| key_text(k).as_deref() == Some(key));
            if !present {
                let hint = property(key)
                    .and_then(describe)
                    .map(|d| format!("`{key}`: {d}"));
                let message = format!("missing required key `{key}`");
                self.report_pruning(
                    path,
                    Position::of(node),
                    &join_key(path, key),
                    None,
                    message,
                    hint,
                );
            }
        }
    }

    fn sequence(&mut self, node: &MarkedYaml<'_>, schema: &'s Value, path: &str) {
        let YamlData::Sequence(items) = &node.data else {
            return self.wrong_type(node, path, "a list");
        };
        if let Some(item_schema) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                self.node(item, item_schema, &join_index(path, i));
            }
        }
    }

    fn scalar(&mut self, node: &MarkedYaml<'_>, schema: &'s Value, kind: &str, path: &str) {
        // Mirrors serde-saphyr's leniency: any scalar is accepted as a string, and quoted
        // numbers as numbers, so this walk never rejects what the deserializer accepts.
        let scalar = match &node.data {
            YamlData::Value(Scalar::Null) => None,
            YamlData::Value(s) => Some(s),
            _ => None,
        };
        let Some(scalar) = scalar else {
            return self.wrong_type(node, path, expected_for(kind));
        };
        let text = scalar_text(scalar);
        let ok = match (kind, scalar) {
            ("string", _) => true,
            ("integer", Scalar::Integer(i)) => *i >= 0 || schema.get("minimum").is_none(),
            ("integer", Scalar::String(s)) => s.trim().parse::<u64>().is_ok(),
            ("number", Scalar::Integer(_) | Scalar::FloatingPoint(_)) => true,
            ("number", Scalar::String(s)) => s.trim().parse::<f64>().is_ok(),
            ("boolean", Scalar::Boolean(_)) => true,
            _ => false,
        };
        if !ok {
            let message = match scalar {
                Scalar::Integer(i) if kind == "integer" && *i < 0 => {
                    "must not be negative".to_owned()
                }
                _ => format!("expected {}, found `{text}`", expected_for(kind)),
            };
            return self.report(
                Position::of(node),
                path,
                Some(text),
                message,
                describe(schema),
            );
        }
        if schema.get("format").and_then(Value::as_str) == Some("socket-address")
            && text.parse::<SocketAddr>().is_err()
        {
            let hint = "write an IP address and a port, e.g. `127.0.0.1:8080` or `[::1]:8080`; host names are not supported";
            self.report(
                Position::of(node),
                path,
                Some(text),
                "not an `ip:port` address".to_owned(),
                Some(hint.to_owned()),
            );
        }
    }

    fn duration(&mut self, node: &MarkedYaml<'_>, path: &str) {
        match &node.data {
            YamlData::Value(Scalar::String(s)) => {
                if let Err(error) = s.parse::<HumanDuration>() {
                    let (message, hint) = split_hint(&error);
                    self.report(Position::of(node), path, Some(s.to_string()), message, hint);
                }
            }
            YamlData::Value(n @ (Scalar::Integer(_) | Scalar::FloatingPoint(_))) => {
                let n = scalar_text(n);
                let hint = format!("write it with a unit, e.g. \"{n}s\" or \"{n}ms\"");
                self.report(
                    Position::of(node),
                    path,
                    Some(n.clone()),
                    format!("duration `{n}` has no unit"),
                    Some(hint),
                );
            }
            _ => self.wrong_type(node, path, "a duration with a unit, e.g. \"250ms\""),
        }
    }

    fn byte_size(&mut self, node: &MarkedYaml<'_>, path: &str) {
        match &node.data {
            YamlData::Value(Scalar::Integer(i)) if *i < 0 => {
                self.report(
                    Position::of(node),
                    path,
                    Some(i.to_string()),
                    "size must not be negative".to_owned(),
                    None,
                );
            }
            YamlData::Value(Scalar::Integer(_)) => {}
            YamlData::Value(Scalar::String(s)) => {
                if let Err(error) = s.parse::<ByteSize>() {
                    let (message, hint) = split_hint(&error);
                    self.report(Position::of(node), path, Some(s.to_string()), message, hint);
                }
            }
            _ => self.wrong_type(node, path, "a size, e.g. 16384 or \"16KiB\""),
        }
    }

    /// `anyOf`/`oneOf`: an optional value (`T` or null) or an enum such as a middleware, which
    /// is a bare name (`request_id`) or a one-key mapping (`headers: {...}`).
    fn choice(&mut self, node: &MarkedYaml<'_>, branches: &'s [Value], path: &str) {
        if is_null(node)
            && branches
                .iter()
                .any(|b| b.get("type").and_then(Value::as_str) == Some("null"))
        {
            return;
        }
        let names: Vec<&str> = branches
            .iter()
            .filter_map(|b| b.get("const").and_then(Value::as_str))
            .collect();
        let objects: Vec<&'s Value> = branches
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("object"))
            .collect();
        let object_names: Vec<&str> = objects
            .iter()
            .filter_map(|b| b.get("required")?.as_array()?.first()?.as_str())
            .collect();
        if names.is_empty() && objects.is_empty() {
            // An optional value: check against the non-null branch.
            if let Some(branch) = branches
                .iter()
                .find(|b| b.get("type").and_then(Value::as_str) != Some("null"))
            {
                self.node(node, branch, path);
            }
            return;
        }
        let all: Vec<&str> = names.iter().chain(&object_names).copied().collect();
        match &node.data {
            YamlData::Value(Scalar::String(s)) => {
                let s = s.as_ref();
                if names.contains(&s) {
                    return;
                }
                let (message, hint) = if object_names.contains(&s) {
                    (
                        format!("`{s}` needs settings"),
                        format!("write it as a mapping: `{s}: {{...}}`"),
                    )
                } else {
                    (format!("unknown name `{s}`"), suggest::hint(s, &all))
                };
                self.report(
                    Position::of(node),
                    path,
                    Some(s.to_owned()),
                    message,
                    Some(hint),
                );
            }
            YamlData::Mapping(entries) => {
                let first = entries.keys().next().and_then(key_text).unwrap_or_default();
                if names.contains(&first.as_str()) {
                    let hint = format!("write it as a bare name: `- {first}`");
                    return self.report(
                        Position::of(node),
                        path,
                        None,
                        format!("`{first}` takes no settings"),
                        Some(hint),
                    );
                }
                match objects.iter().find(|o| {
                    o.pointer("/required/0").and_then(Value::as_str) == Some(first.as_str())
                }) {
                    Some(object) => self.node(node, object, path),
                    None => {
                        let at = entries
                            .keys()
                            .next()
                            .map_or(Position::of(node), Position::of);
                        let hint = suggest::hint(&first, &all);
                        let message = format!("unknown name `{first}`");
                        self.report_pruning(
                            path,
                            at,
                            &join_key(path, &first),
                            None,
                            message,
                            Some(hint),
                        );
                    }
                }
            }
            _ => self.wrong_type(
                node,
                path,
                &format!("one of {}", suggest::quoted_list(&all)),
            ),
        }
    }

    fn wrong_type(&mut self, node: &MarkedYaml<'_>, path: &str, expected: &str) {
        let (found, value) = match &node.data {
            YamlData::Mapping(_) => ("a mapping".to_owned(), None),
            YamlData::Sequence(_) => ("a list".to_owned(), None),
            YamlData::Value(Scalar::Null) => ("nothing (null)".to_owned(), None),
            YamlData::Value(s) => (format!("`{}`", scalar_text(s)), Some(scalar_text(s))),
            _ => ("an unsupported value".to_owned(), None),
        };
        self.report(
            Position::of(node),
            path,
            value,
            format!("expected {expected}, found {found}"),
            None,
        );
    }
}

fn unwrap_tags<'a, 'i>(node: &'a MarkedYaml<'i>) -> &'a MarkedYaml<'i> {
    match &node.data {
        YamlData::Tagged(_, inner) => unwrap_tags(inner),
        _ => node,
    }
}

fn is_null(node: &MarkedYaml<'_>) -> bool {
    matches!(node.data, YamlData::Value(Scalar::Null))
}

fn expected_for(kind: &str) -> &'static str {
    match kind {
        "string" => "a string",
        "integer" => "a whole number",
        "number" => "a number",
        "boolean" => "true or false",
        _ => "a value",
    }
}

/// A schema description on one line, used as a hint about what a key is for.
fn describe(schema: &Value) -> Option<String> {
    let text = schema.get("description")?.as_str()?;
    Some(text.replace('\n', " ").trim_end_matches('.').to_owned())
}

/// Splits the unit parsers' `"<what is wrong>; <how to fix it>"` errors into message and hint.
fn split_hint(error: &str) -> (String, Option<String>) {
    match error.split_once("; ") {
        Some((message, hint)) => (message.to_owned(), Some(hint.to_owned())),
        None => (error.to_owned(), None),
    }
}
