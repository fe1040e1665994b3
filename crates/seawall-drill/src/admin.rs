//! The gateway's admin API, as the drill uses it: runtime faults (`PUT`/`DELETE
//! /faults/{name}`), `POST /reload`, and the breaker states of `GET /breakers`.
//!
//! Every call carries the bearer token when one is set, as `POST /reload` requires.

use std::time::Duration;

use http::Method;

use crate::control::{self, Answer, Base, CallError};

const TIMEOUT: Duration = Duration::from_secs(5);

/// A client of one gateway's admin API.
#[derive(Debug, Clone)]
pub struct Admin {
    /// Where it listens.
    pub base: Base,
    /// The bearer token, when set.
    pub token: Option<String>,
}

/// A control call that was answered with an unexpected status.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No answer.
    #[error(transparent)]
    Call(#[from] CallError),
    /// An answer that says no.
    #[error("{what} answered {status}: {body}")]
    Refused {
        /// The call.
        what: String,
        /// The status.
        status: u16,
        /// The answer's body, shortened.
        body: String,
    },
}

fn expect_ok(what: String, a: Answer) -> Result<Answer, AdminError> {
    if a.status.is_success() {
        Ok(a)
    } else {
        let mut body = a.text();
        body.truncate(300);
        Err(AdminError::Refused {
            what,
            status: a.status.as_u16(),
            body,
        })
    }
}

impl Admin {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, AdminError> {
        let what = format!("{method} {}{path}", self.base);
        let a = control::call(
            &self.base,
            method,
            path,
            body,
            self.token.as_deref(),
            TIMEOUT,
        )
        .await?;
        expect_ok(what, a)
    }

    /// Switches fault `name` on.
    pub async fn put_fault(&self, name: &str, spec: &serde_json::Value) -> Result<(), AdminError> {
        self.call(Method::PUT, &format!("/faults/{name}"), Some(spec))
            .await
            .map(drop)
    }

    /// Switches fault `name` off; one already gone (a `ttl` ran out) is not an error.
    pub async fn delete_fault(&self, name: &str) -> Result<(), AdminError> {
        match self
            .call(Method::DELETE, &format!("/faults/{name}"), None)
            .await
        {
            Err(AdminError::Refused { status: 404, .. }) => Ok(()),
            other => other.map(drop),
        }
    }

    /// Reloads the gateway's config file.
    pub async fn reload(&self) -> Result<(), AdminError> {
        self.call(Method::POST, "/reload", None).await.map(drop)
    }

    /// Each upstream's breaker state, from `GET /breakers`.
    pub async fn breakers(&self) -> Result<Vec<(String, String)>, AdminError> {
        let a = self.call(Method::GET, "/breakers", None).await?;
        let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap_or_default();
        Ok(breaker_states(&v))
    }
}

/// `(upstream, state)` pairs of a `/breakers` answer.
pub fn breaker_states(v: &serde_json::Value) -> Vec<(String, String)> {
    v.get("breakers")
        .and_then(|b| b.as_array())
        .map(|list| {
            list.iter()
                .filter_map(|b| {
                    Some((
                        b.get("upstream")?.as_str()?.to_owned(),
                        b.get("state")?.as_str()?.to_owned(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_states_are_read_from_the_documented_shape() {
        let v = serde_json::json!({"generation": 1, "breakers": [
            {"upstream": "catalog", "state": "open", "window": {}},
            {"upstream": "payments", "state": "closed"}]});
        assert_eq!(
            breaker_states(&v),
            vec![
                ("catalog".into(), "open".into()),
                ("payments".into(), "closed".into())
            ]
        );
    }
}
