//! Where each key of a YAML document is: key paths (`listeners[0].routes[2].timeout`) and the
//! map from a path to its line and column.
//!
//! Semantic checks work on the typed [`crate::Config`], which has no positions; they report a
//! key path, and this map turns it back into a place in the file.

use std::collections::HashMap;

use saphyr::{MarkedYaml, Scalar, YamlData};

/// A 1-based line and column in the source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct Position {
    pub(crate) line: usize,
    pub(crate) column: usize,
}

impl Position {
    pub(crate) fn of(node: &MarkedYaml<'_>) -> Self {
        // saphyr lines are 1-based but columns 0-based; editors and compilers use 1-based.
        Self {
            line: node.span.start.line(),
            column: node.span.start.col() + 1,
        }
    }
}

/// The path of key `key` inside the mapping at `parent`.
pub(crate) fn join_key(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_owned(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{key:?}]"),
    }
}

/// The path of item `index` inside the sequence at `parent`.
pub(crate) fn join_index(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// The path one level up, or `None` at the root.
fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = if path.ends_with(']') {
        path.rfind('[')
    } else {
        path.rfind(['.', '['])
    };
    Some(cut.map_or("", |i| &path[..i]))
}

/// Positions of every key and value in one document.
#[derive(Debug, Default)]
pub(crate) struct SourceMap {
    /// Path -> (position of the key, if the node is a mapping value; position of the value).
    entries: HashMap<String, (Option<Position>, Position)>,
}

impl SourceMap {
    pub(crate) fn build(root: &MarkedYaml<'_>) -> Self {
        let mut map = Self::default();
        map.visit(root, String::new(), None);
        map
    }

    fn visit(&mut self, node: &MarkedYaml<'_>, path: String, key: Option<Position>) {
        self.entries.insert(path.clone(), (key, Position::of(node)));
        match &node.data {
            YamlData::Mapping(entries) => {
                for (k, v) in entries {
                    if let Some(name) = key_text(k) {
                        self.visit(v, join_key(&path, &name), Some(Position::of(k)));
                    }
                }
            }
            YamlData::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.visit(item, join_index(&path, i), None);
                }
            }
            YamlData::Tagged(_, inner) => self.visit(inner, path, key),
            _ => {}
        }
    }

    /// Whether `path` is written in the file (as opposed to filled in by a default).
    pub(crate) fn contains(&self, path: &str) -> bool {
        self.entries.contains_key(path)
    }

    /// Where the value at `path` is or, when it is not written in the file (a default), the
    /// key of its nearest written ancestor.
    pub(crate) fn locate(&self, path: &str) -> Position {
        let mut current = Some(path);
        let mut exact = true;
        while let Some(p) = current {
            if let Some((key, value)) = self.entries.get(p) {
                // A defaulted field is best shown at its parent's key (`timeouts:`), not at the
                // first child of the parent's value.
                return if exact { *value } else { key.unwrap_or(*value) };
            }
            exact = false;
            current = parent(p);
        }
        Position { line: 1, column: 1 }
    }

    /// The path whose key or value starts at `at`, preferring the deepest one.
    pub(crate) fn path_at(&self, at: Position) -> Option<&str> {
        self.entries
            .iter()
            .filter(|(_, (key, value))| *key == Some(at) || *value == at)
            .map(|(path, _)| path.as_str())
            .max_by_key(|path| path.len())
    }
}

/// A mapping key as text; `None` for complex keys (which the config never uses).
pub(crate) fn key_text(node: &MarkedYaml<'_>) -> Option<String> {
    match &node.data {
        YamlData::Value(scalar) => Some(scalar_text(scalar)),
        YamlData::Tagged(_, inner) => key_text(inner),
        _ => None,
    }
}

/// A scalar as the user wrote it (near enough: numbers are re-rendered).
pub(crate) fn scalar_text(scalar: &Scalar<'_>) -> String {
    match scalar {
        Scalar::Null => "null".to_owned(),
        Scalar::Boolean(b) => b.to_string(),
        Scalar::Integer(i) => i.to_string(),
        Scalar::FloatingPoint(f) => f.to_string(),
        Scalar::String(s) => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_joined_like_the_docs_write_them() {
        let p = join_key(&join_index(&join_key("", "listeners"), 0), "routes");
        assert_eq!(
            join_key(&join_index(&p, 2), "timeout"),
            "listeners[0].routes[2].timeout"
        );
        assert_eq!(join_key("set", "x.forwarded"), "set[\"x.forwarded\"]");
    }

    #[test]
    fn parents_walk_up_one_segment_at_a_time() {
        assert_eq!(parent("a[0].b"), Some("a[0]"));
        assert_eq!(parent("a[0]"), Some("a"));
        assert_eq!(parent("a"), Some(""));
        assert_eq!(parent(""), None);
    }
}
