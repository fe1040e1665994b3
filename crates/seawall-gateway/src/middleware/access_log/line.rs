//! Encoding of one access log line, by hand.
//!
//! The line is written on the request path, so it avoids the formatting machinery: numbers
//! go through `itoa`, fixed-point decimals are built from integers, and only strings that
//! come from the request (path, request id, error detail) go through JSON escaping. Field
//! order and names are part of the documented format (docs/middleware.md); a test parses
//! the output as JSON.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

/// One finished request, as logged.
pub struct Line<'a> {
    pub ts: Duration,
    pub listener: &'a str,
    pub route: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub duration: Duration,
    pub upstream: Option<&'a str>,
    pub endpoint: Option<SocketAddr>,
    pub reused: Option<bool>,
    pub error: Option<&'static str>,
    pub error_detail: Option<&'a str>,
    /// What the resilience policies decided (`retries=1 fallback=upstream`); null when
    /// nothing.
    pub policy: Option<&'a crate::policy::Notes>,
    /// The fault a `fault` layer injected (its rule's name); null when none.
    pub fault: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub client: SocketAddr,
}

impl Line<'_> {
    /// Appends the line (without the newline) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"ts\":");
        fixed3(out, self.ts.as_millis());
        out.extend_from_slice(b",\"listener\":");
        string(out, self.listener);
        out.extend_from_slice(b",\"route\":");
        string(out, self.route);
        out.extend_from_slice(b",\"method\":");
        string(out, self.method);
        out.extend_from_slice(b",\"path\":");
        string(out, self.path);
        out.extend_from_slice(b",\"status\":");
        integer(out, self.status);
        out.extend_from_slice(b",\"duration_ms\":");
        fixed3(out, self.duration.as_micros());
        out.extend_from_slice(b",\"upstream\":");
        optional(out, self.upstream, string);
        out.extend_from_slice(b",\"endpoint\":");
        optional(out, self.endpoint, address);
        out.extend_from_slice(b",\"reused\":");
        optional(out, self.reused, |o, b| {
            o.extend_from_slice(if b { b"true" } else { b"false" })
        });
        out.extend_from_slice(b",\"error\":");
        optional(out, self.error, string);
        out.extend_from_slice(b",\"error_detail\":");
        optional(out, self.error_detail, string);
        out.extend_from_slice(b",\"policy\":");
        optional(out, self.policy, |o, notes| {
            // The notes are ASCII identifiers and digits: nothing to escape.
            o.push(b'"');
            notes.encode(o);
            o.push(b'"');
        });
        out.extend_from_slice(b",\"fault\":");
        optional(out, self.fault, string);
        out.extend_from_slice(b",\"request_id\":");
        optional(out, self.request_id, string);
        out.extend_from_slice(b",\"client\":");
        address(out, self.client);
        out.push(b'}');
    }
}

fn optional<T>(out: &mut Vec<u8>, value: Option<T>, write: impl FnOnce(&mut Vec<u8>, T)) {
    match value {
        Some(v) => write(out, v),
        None => out.extend_from_slice(b"null"),
    }
}

fn integer(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// `thousandths` as a decimal with three places: 1234 → `1.234`.
fn fixed3(out: &mut Vec<u8>, thousandths: u128) {
    integer(out, thousandths / 1000);
    let frac = (thousandths % 1000) as u16;
    out.extend_from_slice(&[
        b'.',
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ]);
}

/// A JSON string, escaped.
fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(b >> 4)],
                    HEX[usize::from(b & 0xf)],
                ]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// An address as a JSON string: `"127.0.0.1:8080"` or `"[::1]:8080"`.
fn address(out: &mut Vec<u8>, addr: SocketAddr) {
    out.push(b'"');
    match addr.ip() {
        IpAddr::V4(ip) => {
            for (i, octet) in ip.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                integer(out, octet);
            }
        }
        IpAddr::V6(ip) => {
            use std::io::Write as _;
            let _ = write!(out, "[{ip}]");
        }
    }
    out.push(b':');
    integer(out, addr.port());
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line() -> Line<'static> {
        Line {
            ts: Duration::from_millis(1_795_795_222_996),
            listener: "public",
            route: "default",
            method: "GET",
            path: "/a \"quoted\" \\ path\n\u{1}",
            status: 200,
            duration: Duration::from_micros(1_234_567),
            upstream: Some("sim"),
            endpoint: Some("127.0.0.1:8081".parse().unwrap()),
            reused: Some(true),
            error: None,
            error_detail: None,
            policy: None,
            fault: None,
            request_id: Some("abc"),
            client: "[::1]:5000".parse().unwrap(),
        }
    }

    #[test]
    fn a_line_is_valid_json_with_every_field() {
        let mut out = Vec::new();
        line().encode(&mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(v["ts"].as_f64(), Some(1_795_795_222.996));
        assert_eq!(v["path"], "/a \"quoted\" \\ path\n\u{1}");
        assert_eq!(v["status"], 200);
        assert_eq!(v["duration_ms"].as_f64(), Some(1234.567));
        assert_eq!(v["endpoint"], "127.0.0.1:8081");
        assert_eq!(v["reused"], true);
        assert_eq!(v["error"], serde_json::Value::Null);
        assert_eq!(v["client"], "[::1]:5000");
        assert_eq!(v["policy"], serde_json::Value::Null);
        assert_eq!(v["fault"], serde_json::Value::Null);
        assert_eq!(v.as_object().map(|o| o.len()), Some(16));
    }

    #[test]
    fn policy_notes_are_one_string_of_key_value_pairs() {
        let notes = crate::policy::Notes {
            retries: 2,
            retry_skipped: Some("budget_exhausted"),
            fallback: Some("upstream"),
            hedge: Some("won"),
        };
        let mut l = line();
        l.policy = Some(&notes);
        let mut out = Vec::new();
        l.encode(&mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(
            v["policy"],
            "retries=2 retry_skipped=budget_exhausted fallback=upstream hedge=won"
        );
    }

    #[test]
    fn fractions_keep_their_leading_zeros() {
        let mut out = Vec::new();
        fixed3(&mut out, 5_007);
        assert_eq!(out, b"5.007");
    }
}
