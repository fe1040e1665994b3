//! Where each key of the scenario file is, so a problem found on the typed scenario (which
//! has no positions) is reported at its line.

use std::collections::HashMap;

use saphyr::{MarkedYaml, Scalar, YamlData};

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl Position {
    fn of(node: &MarkedYaml<'_>) -> Self {
        // saphyr columns are 0-based; editors count from 1.
        Self {
            line: node.span.start.line(),
            column: node.span.start.col() + 1,
        }
    }
}

/// Key paths (`load.phases[1].rate`) to the position of their value.
#[derive(Debug, Default)]
pub struct SourceMap {
    entries: HashMap<String, Position>,
    /// Where each mapping key is written: serde reports unknown fields at their key.
    keys: HashMap<String, Position>,
}

impl SourceMap {
    /// The map of one parsed document.
    pub fn build(root: &MarkedYaml<'_>) -> Self {
        let mut map = Self::default();
        map.visit(root, String::new());
        map
    }

    fn visit(&mut self, node: &MarkedYaml<'_>, path: String) {
        self.entries.insert(path.clone(), Position::of(node));
        match &node.data {
            YamlData::Mapping(entries) => {
                for (k, v) in entries {
                    if let YamlData::Value(key) = &k.data {
                        let name = scalar_text(key);
                        let child = if path.is_empty() {
                            name
                        } else {
                            format!("{path}.{name}")
                        };
                        self.keys.insert(child.clone(), Position::of(k));
                        self.visit(v, child);
                    }
                }
            }
            YamlData::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.visit(item, format!("{path}[{i}]"));
                }
            }
            YamlData::Tagged(_, inner) => self.visit(inner, path),
            _ => {}
        }
    }

    /// Where `path` is written or, for a defaulted key, its nearest written ancestor.
    pub fn locate(&self, path: &str) -> Position {
        let mut current = path;
        loop {
            if let Some(at) = self.entries.get(current) {
                return *at;
            }
            match current.rfind(['.', '[']) {
                Some(i) => current = &current[..i],
                None if !current.is_empty() => current = "",
                None => return Position { line: 1, column: 1 },
            }
        }
    }

    /// The deepest path whose value starts at `at` (to name the key of a serde error).
    pub fn path_at(&self, at: Position) -> Option<&str> {
        self.entries
            .iter()
            .chain(&self.keys)
            .filter(|(_, p)| **p == at)
            .map(|(path, _)| path.as_str())
            .max_by_key(|path| path.len())
    }
}

fn scalar_text(scalar: &Scalar<'_>) -> String {
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
    use saphyr::LoadableYamlNode;

    use super::*;

    #[test]
    fn paths_point_at_their_values_and_defaults_at_the_parent() {
        let docs =
            MarkedYaml::load_from_str("load:\n  phases:\n    - name: a\n      rate: 5\n").unwrap();
        let map = SourceMap::build(&docs[0]);
        assert_eq!(map.locate("load.phases[0].rate").line, 4);
        assert_eq!(map.locate("load.phases[0].duration").line, 3);
        assert_eq!(
            map.path_at(Position {
                line: 4,
                column: 13
            }),
            Some("load.phases[0].rate")
        );
    }
}
