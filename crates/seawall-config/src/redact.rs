//! Hiding credentials before a config, a config line or an error is shown: `GET /config`,
//! the code frames of `seawall check`, reload error logs and `/config`'s
//! `last_reload_error` all go through here.
//!
//! Two rules, applied wherever they match rather than to a list of known fields, so a field
//! added later is covered by default:
//! - URL userinfo (`scheme://user:password@host`): the password becomes `***` and the user
//!   name stays (it names an account, and helps tell two URLs apart); a userinfo without a
//!   `:` is redacted whole, since schemes put tokens there (`https://TOKEN@host`).
//! - Values of keys that name a secret (`token`, `password`, `secret`, `authorization`,
//!   `api_key`, `cookie`, `credential`, `private_key`...) become `***`. Keys ending in
//!   `_env` or `_file` name where a secret is kept (an environment variable, a file) and
//!   are shown as they are.

use std::borrow::Cow;

use serde_json::Value;

/// What a hidden secret is shown as.
pub const MASK: &str = "***";

/// Parts of key names that mark a secret value (compared lowercase, `-` read as `_`).
const SECRET_WORDS: [&str; 10] = [
    "token",
    "password",
    "passwd",
    "secret",
    "authorization",
    "api_key",
    "apikey",
    "cookie",
    "credential",
    "private_key",
];

/// Whether a value under `key` is a secret to hide.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase().replace('-', "_");
    if key.ends_with("_env") || key.ends_with("_file") {
        return false;
    }
    SECRET_WORDS.iter().any(|w| key.contains(w))
}

/// Redacts every secret in a JSON value in place: the strings under secret keys (numbers
/// and booleans are left: `lease.tokens` is a count), and URL userinfo in every string.
pub fn json(value: &mut Value) {
    match value {
        Value::String(s) => {
            if let Cow::Owned(r) = text(s) {
                *s = r;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(json),
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if is_secret_key(key) {
                    mask_strings(v);
                } else {
                    json(v);
                }
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn mask_strings(value: &mut Value) {
    match value {
        Value::String(s) if !s.is_empty() => *s = MASK.to_owned(),
        Value::Array(items) => items.iter_mut().for_each(mask_strings),
        Value::Object(map) => map.values_mut().for_each(mask_strings),
        _ => {}
    }
}

/// Redacts URL userinfo anywhere in free text (a message, an error, a config line).
pub fn text(s: &str) -> Cow<'_, str> {
    if !s.contains("://") {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut changed = false;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the path, query or fragment, or where the URL itself ends
        // in the surrounding text.
        let end = tail
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '\'' | '`' | '>') || c.is_whitespace()
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                if let Some((user, _password)) = userinfo.split_once(':') {
                    out.push_str(user);
                    out.push(':');
                }
                out.push_str(MASK);
                out.push_str(&authority[at..]);
                changed = true;
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(s)
    }
}

/// Redacts one line of a YAML config for a code frame: URL userinfo, and the value of a
/// `key: value` line whose key names a secret.
pub fn yaml_line(line: &str) -> Cow<'_, str> {
    let line = text(line);
    let Some((key, value)) = line.split_once(':') else {
        return line;
    };
    // `- key: value` (a list item) and `{key: value` (flow style) both name `key`.
    let name = key.trim().trim_start_matches(['-', '{', ' ']).trim();
    let name = name.trim_matches(['"', '\'']);
    let shown = value.trim();
    // A number or a boolean is a setting (`tokens: 8`), not a secret.
    let plain = shown.parse::<f64>().is_ok() || matches!(shown, "true" | "false");
    if shown.is_empty() || plain || !is_secret_key(name) {
        return line;
    }
    let indent = value.len() - value.trim_start().len();
    Cow::Owned(format!("{key}:{}{MASK}", &value[..indent]))
}

/// Escapes control characters (an escape sequence in a config must not reach a terminal
/// raw); tabs are kept, as they are how a tab-indented line is shown.
pub fn escape_controls(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() && c != '\t') {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| {
                if c.is_control() && c != '\t' {
                    c.escape_debug().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_hidden_and_user_names_kept() {
        for (raw, shown) in [
            (
                "redis://:TopSecretRedisPw@127.0.0.1:6399",
                "redis://:***@127.0.0.1:6399",
            ),
            ("http://admin:pw@host/x", "http://admin:***@host/x"),
            ("https://TOKEN@host", "https://***@host"),
            (
                "url: \"redis://u:p@h:1/0\" # c",
                "url: \"redis://u:***@h:1/0\" # c",
            ),
            (
                "a http://x/y@z and redis://h:1",
                "a http://x/y@z and redis://h:1",
            ),
        ] {
            assert_eq!(text(raw), shown, "{raw}");
        }
    }

    #[test]
    fn secret_keys_are_masked_and_references_kept() {
        let mut v = serde_json::json!({
            "token_env": "SEAWALL_ADMIN_TOKEN",
            "debug_token": "abc",
            "set": {"Authorization": "Bearer abc", "x-gen": "a"},
            "lease": {"tokens": 8},
            "key_file": "/etc/key.pem",
            "private_key": "-----BEGIN PRIVATE KEY-----",
            "redis": {"url": "redis://:pw@h:1"},
        });
        json(&mut v);
        assert_eq!(
            v,
            serde_json::json!({
                "token_env": "SEAWALL_ADMIN_TOKEN",
                "debug_token": MASK,
                "set": {"Authorization": MASK, "x-gen": "a"},
                "lease": {"tokens": 8},
                "key_file": "/etc/key.pem",
                "private_key": MASK,
                "redis": {"url": "redis://:***@h:1"},
            })
        );
    }

    #[test]
    fn config_lines_hide_secret_values() {
        assert_eq!(
            yaml_line("          authorization: Bearer abc"),
            "          authorization: ***"
        );
        assert_eq!(yaml_line("  - password: \"x\""), "  - password: ***");
        assert_eq!(yaml_line("  token_env: X"), "  token_env: X");
        assert_eq!(yaml_line("  tokens: 8"), "  tokens: 8");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            escape_controls("a\u{1b}[31mb\r\n\tc"),
            "a\\u{1b}[31mb\\r\\n\tc"
        );
    }
}
