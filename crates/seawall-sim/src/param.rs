//! Parsing and limits for the values carried in paths and queries.
//!
//! Every parser returns a [`BadRequest`] naming the parameter, the value and what was
//! expected, so a test author sees their mistake in the 400 body. Limits exist so that no
//! input can make the sim allocate without bound or overflow a timer deadline.

use std::fmt;
use std::time::Duration;

use http::StatusCode;

/// Largest body the sim generates: 100 MiB.
pub(crate) const MAX_BYTES: u64 = 100 * 1024 * 1024;

/// Longest delay or drip the sim accepts: one day. Longer is surely a typo, and the cap
/// keeps deadline arithmetic far from overflow.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// A request the sim cannot act on; becomes a 400 with this message as body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadRequest(String);

impl BadRequest {
    pub(crate) fn new(message: String) -> Self {
        Self(message)
    }
}

impl fmt::Display for BadRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A humantime duration such as `100ms` or `2s`, at most [`MAX_DURATION`].
pub(crate) fn duration(name: &str, value: &str) -> Result<Duration, BadRequest> {
    let parsed = humantime::parse_duration(value).map_err(|error| {
        BadRequest::new(format!(
            "invalid {name} {value:?}: {error}; expected a duration like 100ms or 2s"
        ))
    })?;
    if parsed > MAX_DURATION {
        return Err(BadRequest::new(format!(
            "invalid {name} {value:?}: longer than the limit of 24h"
        )));
    }
    Ok(parsed)
}

/// A byte count, at most [`MAX_BYTES`].
pub(crate) fn byte_count(name: &str, value: &str) -> Result<u64, BadRequest> {
    let parsed: u64 = value.parse().map_err(|_| {
        BadRequest::new(format!(
            "invalid {name} {value:?}: expected a whole number of bytes"
        ))
    })?;
    if parsed > MAX_BYTES {
        return Err(BadRequest::new(format!(
            "invalid {name} {value:?}: more than the limit of {MAX_BYTES} bytes (100 MiB)"
        )));
    }
    Ok(parsed)
}

/// A status code the sim can send as a final response: 200 to 999.
///
/// 1xx codes are refused because they are interim by definition; hyper would replace such a
/// final response with a 500, which would look like a sim failure.
pub(crate) fn status(value: &str) -> Result<StatusCode, BadRequest> {
    let invalid = || {
        BadRequest::new(format!(
            "invalid status {value:?}: expected a number from 200 to 999"
        ))
    };
    let code: u16 = value.parse().map_err(|_| invalid())?;
    if code < 200 {
        return Err(BadRequest::new(format!(
            "invalid status {value:?}: 1xx codes are interim and cannot end a response; \
             expected a number from 200 to 999"
        )));
    }
    StatusCode::from_u16(code).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit_and_stay_under_the_cap() {
        assert_eq!(duration("delay", "250ms"), Ok(Duration::from_millis(250)));
        assert!(duration("delay", "250").is_err());
        assert!(duration("delay", "25h").is_err());
        assert!(duration("delay", "99999999999999999999y").is_err());
    }

    #[test]
    fn byte_counts_are_whole_and_capped() {
        assert_eq!(byte_count("bytes", "0"), Ok(0));
        assert_eq!(byte_count("bytes", "104857600"), Ok(MAX_BYTES));
        assert!(byte_count("bytes", "104857601").is_err());
        assert!(byte_count("bytes", "1e3").is_err());
    }

    #[test]
    fn statuses_outside_200_to_999_are_rejected_with_the_reason() {
        assert_eq!(status("503"), Ok(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(status("999").map(|s| s.as_u16()), Ok(999));
        assert!(status("100").unwrap_err().0.contains("interim"));
        for bad in ["", "1000", "abc", "-1", "99"] {
            assert!(status(bad).is_err(), "{bad} should be rejected");
        }
    }
}
