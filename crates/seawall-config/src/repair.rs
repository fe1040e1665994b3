//! Best-effort recovery after structural problems: drops every node the structural check
//! rejected and deserializes what is left, so semantic problems elsewhere in the file are
//! reported in the same run instead of after the next fix.
//!
//! Dropped optional keys fall back to their defaults, so semantic problems that involve a
//! dropped path are discarded by the caller: they would describe the default, not the file.

use std::collections::HashSet;

use saphyr::{MarkedYaml, Scalar, YamlData};
use serde_json::{Map, Number, Value};

use crate::{
    Config,
    locate::{join_index, join_key, key_text},
};

/// `root` without the nodes at `pruned`, as a typed config, if what is left is complete.
pub(crate) fn recover(root: &MarkedYaml<'_>, pruned: &HashSet<String>) -> Option<Config> {
    let value = to_json(root, "", pruned)?;
    // Going back through YAML text keeps serde-saphyr's scalar rules (e.g. quoted numbers),
    // which `serde_json::from_value` would not share.
    let text = serde_saphyr::to_string(&value).ok()?;
    serde_saphyr::from_str(&text).ok()
}

fn to_json(node: &MarkedYaml<'_>, path: &str, pruned: &HashSet<String>) -> Option<Value> {
    Some(match &node.data {
        YamlData::Value(scalar) => scalar_json(scalar)?,
        YamlData::Tagged(_, inner) => to_json(inner, path, pruned)?,
        YamlData::Sequence(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| (join_index(path, i), item))
                .filter_map(|(p, item)| match pruned.contains(&p) {
                    // Dropping a listener, route or upstream would shift the indices other
                    // problems are reported at (and hide names routes refer to): give up.
                    true if matches!(item.data, YamlData::Mapping(_)) => Some(None),
                    true => None,
                    false => Some(to_json(item, &p, pruned)),
                })
                .collect::<Option<Vec<_>>>()?,
        ),
        YamlData::Mapping(entries) => {
            let mut map = Map::new();
            for (k, v) in entries {
                let key = key_text(k)?;
                let child = join_key(path, &key);
                if !pruned.contains(&child) {
                    map.insert(key, to_json(v, &child, pruned)?);
                }
            }
            Value::Object(map)
        }
        _ => return None,
    })
}

fn scalar_json(scalar: &Scalar<'_>) -> Option<Value> {
    Some(match scalar {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(*b),
        Scalar::Integer(i) => Value::from(*i),
        Scalar::FloatingPoint(f) => Value::Number(Number::from_f64(f.0)?),
        Scalar::String(s) => Value::String(s.to_string()),
    })
}
