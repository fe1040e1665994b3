//! Header-triggered faults: `seawall-fault-delay: 200ms` and `seawall-fault-abort: 503`
//! on a request. `crate::edge` takes them off every request (they are never forwarded
//! upstream) and keeps what they ask for in the request's context; only a `fault` layer
//! with `allow_header_faults: true` acts on it, and only for a request that one of its
//! rules matches and selects, so the rule's `percentage`, `first` and `max_active` cap
//! what clients can ask for.

use std::time::Duration;

use http::{HeaderMap, HeaderName, StatusCode};
use seawall_config::{HumanDuration, MAX_FAULT_DELAY};

/// Asks for a delay before the request is forwarded (a duration such as `200ms`).
pub static DELAY_HEADER: HeaderName = HeaderName::from_static("seawall-fault-delay");
/// Asks for an answer with this status instead of forwarding (200–599).
pub static ABORT_HEADER: HeaderName = HeaderName::from_static("seawall-fault-abort");

/// What a request's fault headers ask for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeaderFault {
    pub delay: Option<Duration>,
    pub abort: Option<StatusCode>,
}

/// Removes the fault headers from `headers`; what they ask for, when anything valid.
/// Invalid values ask for nothing.
pub fn take(headers: &mut HeaderMap) -> Option<HeaderFault> {
    let delay = headers.remove(&DELAY_HEADER);
    let abort = headers.remove(&ABORT_HEADER);
    if delay.is_none() && abort.is_none() {
        return None;
    }
    let fault = HeaderFault {
        delay: delay
            .and_then(|v| v.to_str().ok()?.trim().parse::<HumanDuration>().ok())
            .map(|d| d.get().min(MAX_FAULT_DELAY.get())),
        abort: abort
            .and_then(|v| v.to_str().ok()?.trim().parse::<u16>().ok())
            .and_then(|s| StatusCode::from_u16(s).ok())
            .filter(|s| (200..=599).contains(&s.as_u16())),
    };
    (fault != HeaderFault::default()).then_some(fault)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_removed_and_parsed() {
        let mut h = HeaderMap::new();
        h.insert(&DELAY_HEADER, "250ms".parse().unwrap());
        h.insert(&ABORT_HEADER, "503".parse().unwrap());
        let f = take(&mut h).unwrap();
        assert_eq!(f.delay, Some(Duration::from_millis(250)));
        assert_eq!(f.abort, Some(StatusCode::SERVICE_UNAVAILABLE));
        assert!(h.is_empty());
    }

    #[test]
    fn invalid_values_ask_for_nothing_but_are_still_removed() {
        let mut h = HeaderMap::new();
        h.insert(&ABORT_HEADER, "99".parse().unwrap());
        h.insert(&DELAY_HEADER, "soon".parse().unwrap());
        assert_eq!(take(&mut h), None);
        assert!(h.is_empty());
    }
}
