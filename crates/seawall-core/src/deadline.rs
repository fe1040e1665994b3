//! Deadline header formats: how a request's time budget is read and forwarded.
//!
//! Two forms are understood inbound and written outbound:
//! - `grpc-timeout`: the gRPC wire format, 1 to 8 ASCII digits and a unit letter
//!   (`H` hours, `M` minutes, `S` seconds, `m` milliseconds, `u` microseconds, `n` nanoseconds).
//! - `seawall-timeout-ms`: our own header, the remaining budget in whole milliseconds.
//!
//! A request's deadline is the earliest of the route's `timeout` and every valid inbound
//! form; a malformed value is ignored (it cannot extend a deadline, only fail to shorten it).

use std::time::Duration;

use http::{HeaderMap, HeaderValue};

/// gRPC's timeout header.
pub const GRPC_TIMEOUT: &str = "grpc-timeout";
/// Seawall's own budget header: remaining milliseconds as a decimal integer.
pub const SEAWALL_TIMEOUT_MS: &str = "seawall-timeout-ms";

/// Parses a `grpc-timeout` value such as `250m` or `3S`.
pub fn parse_grpc_timeout(value: &[u8]) -> Option<Duration> {
    let (unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(n.checked_mul(3600)?),
        b'M' => Duration::from_secs(n.checked_mul(60)?),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Formats a budget as a `grpc-timeout` value, in the finest unit that fits in 8 digits.
/// Rounds down, so that the next hop never believes it has more time than we do.
pub fn format_grpc_timeout(budget: Duration) -> HeaderValue {
    const MAX: u128 = 99_999_999;
    let nanos = budget.as_nanos();
    let (n, unit) = if nanos <= MAX {
        (nanos, 'n')
    } else if nanos / 1_000 <= MAX {
        (nanos / 1_000, 'u')
    } else if nanos / 1_000_000 <= MAX {
        (nanos / 1_000_000, 'm')
    } else if nanos / 1_000_000_000 <= MAX {
        (nanos / 1_000_000_000, 'S')
    } else if nanos / 60_000_000_000 <= MAX {
        (nanos / 60_000_000_000, 'M')
    } else {
        ((nanos / 3_600_000_000_000).min(MAX), 'H')
    };
    HeaderValue::try_from(format!("{n}{unit}")).unwrap_or(HeaderValue::from_static("0n"))
}

/// Parses a `seawall-timeout-ms` value.
pub fn parse_timeout_ms(value: &[u8]) -> Option<Duration> {
    if value.is_empty() || value.len() > 12 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(value).ok()?.parse().ok()?;
    Some(Duration::from_millis(n))
}

/// Formats a budget as a `seawall-timeout-ms` value (rounded down to whole milliseconds).
pub fn format_timeout_ms(budget: Duration) -> HeaderValue {
    HeaderValue::from(u64::try_from(budget.as_millis()).unwrap_or(u64::MAX))
}

/// The shortest budget any inbound deadline header asks for, if any is present and valid.
pub fn inbound_budget(headers: &HeaderMap) -> Option<Duration> {
    let grpc = headers
        .get(GRPC_TIMEOUT)
        .and_then(|v| parse_grpc_timeout(v.as_bytes()));
    let ours = headers
        .get(SEAWALL_TIMEOUT_MS)
        .and_then(|v| parse_timeout_ms(v.as_bytes()));
    match (grpc, ours) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_units() {
        assert_eq!(
            parse_grpc_timeout(b"250m"),
            Some(Duration::from_millis(250))
        );
        assert_eq!(parse_grpc_timeout(b"3S"), Some(Duration::from_secs(3)));
        assert_eq!(parse_grpc_timeout(b"2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_grpc_timeout(b"1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout(b"7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse_grpc_timeout(b"9n"), Some(Duration::from_nanos(9)));
    }

    #[test]
    fn grpc_timeout_rejects_malformed() {
        for bad in [
            &b""[..],
            b"m",
            b"123456789m",
            b"12x",
            b"-1m",
            b"1.5S",
            b"12 m",
        ] {
            assert_eq!(
                parse_grpc_timeout(bad),
                None,
                "{:?}",
                std::str::from_utf8(bad)
            );
        }
    }

    #[test]
    fn grpc_timeout_round_trips_without_growing() {
        for ms in [0u64, 1, 999, 1_000, 86_400_000, 10_000_000_000] {
            let d = Duration::from_millis(ms);
            let v = format_grpc_timeout(d);
            let back = parse_grpc_timeout(v.as_bytes()).expect("formatted value parses");
            assert!(back <= d, "{ms}ms became {back:?}");
            assert!(
                d - back < Duration::from_secs(3600),
                "{ms}ms lost too much: {back:?}"
            );
        }
    }

    #[test]
    fn inbound_budget_takes_the_shortest() {
        let mut h = HeaderMap::new();
        assert_eq!(inbound_budget(&h), None);
        h.insert(GRPC_TIMEOUT, HeaderValue::from_static("2S"));
        h.insert(SEAWALL_TIMEOUT_MS, HeaderValue::from_static("1500"));
        assert_eq!(inbound_budget(&h), Some(Duration::from_millis(1500)));
        h.insert(SEAWALL_TIMEOUT_MS, HeaderValue::from_static("nonsense"));
        assert_eq!(inbound_budget(&h), Some(Duration::from_secs(2)));
    }
}
