//! `http_reset` (HTTP proxies only): passes the response head and `after_bytes` bytes
//! of its body, then resets the connection (TCP RST), so the client sees a response cut
//! off in the middle, the case an HTTP-level fault filter cannot fake.

use serde::{Deserialize, Serialize};

/// Attributes: how many body bytes pass before the reset.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpReset {
    pub after_bytes: u64,
}
