//! Inbound deadline headers (`grpc-timeout`, `seawall-timeout-ms`): parsing arbitrary
//! bytes never panics, any budget it yields is bounded by what the format can express,
//! and what the gateway forwards never gives the next hop more time than it had.
//!
//! Input: the `grpc-timeout` value, then (after the first `\n`, if any) the
//! `seawall-timeout-ms` value.
#![no_main]

use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use seawall_core::deadline::{
    GRPC_TIMEOUT, SEAWALL_TIMEOUT_MS, format_grpc_timeout, format_timeout_ms, inbound_budget,
    parse_grpc_timeout, parse_timeout_ms,
};

/// `99999999H`: 8 digits of the largest unit.
const MAX_GRPC: Duration = Duration::from_secs(99_999_999 * 3600);
/// 12 digits of milliseconds.
const MAX_MS: Duration = Duration::from_millis(999_999_999_999);

fuzz_target!(|data: &[u8]| {
    let (grpc, ours) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let g = parse_grpc_timeout(grpc);
    if let Some(d) = g {
        assert!(d <= MAX_GRPC, "grpc-timeout {grpc:?} gave {d:?}");
        let again = parse_grpc_timeout(format_grpc_timeout(d).as_bytes());
        assert!(
            again.is_some_and(|a| a <= d),
            "forwarded grpc-timeout for {d:?} reads back as {again:?}"
        );
    }
    let m = parse_timeout_ms(ours);
    if let Some(d) = m {
        assert!(d <= MAX_MS, "seawall-timeout-ms {ours:?} gave {d:?}");
        let again = parse_timeout_ms(format_timeout_ms(d).as_bytes());
        assert_eq!(again, Some(d), "seawall-timeout-ms does not round-trip");
    }
    // Through a header map, as the edge reads them: the shortest valid one wins.
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_bytes(grpc) {
        headers.insert(GRPC_TIMEOUT, v);
    }
    if let Ok(v) = HeaderValue::from_bytes(ours) {
        headers.insert(SEAWALL_TIMEOUT_MS, v);
    }
    let g = g.filter(|_| headers.contains_key(GRPC_TIMEOUT));
    let m = m.filter(|_| headers.contains_key(SEAWALL_TIMEOUT_MS));
    let want = match (g, m) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    assert_eq!(inbound_budget(&headers), want);
});
