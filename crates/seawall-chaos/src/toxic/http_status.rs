//! `http_status` (HTTP proxies only): answers a request with `status` and `body` itself,
//! without forwarding it, so the client sees "the upstream" fail one request while the
//! connection and the next requests carry on.

use serde::{Deserialize, Serialize};

/// Attributes: the status to answer with (default 503) and a short body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpStatus {
    pub status: u16,
    pub body: String,
}

impl Default for HttpStatus {
    fn default() -> Self {
        Self {
            status: 503,
            body: String::new(),
        }
    }
}

impl HttpStatus {
    /// Refuses a status hyper cannot write, so the error is the API's, not a request's.
    pub(crate) fn checked(self) -> Result<Self, super::AttributeError> {
        if (100..=999).contains(&self.status) {
            Ok(self)
        } else {
            Err(serde::de::Error::custom(format!(
                "status {} is not an HTTP status (100 to 999)",
                self.status
            )))
        }
    }
}
