//! A Toxiproxy-compatible chaos API (`seawall chaos` or Toxiproxy itself), as the drill uses
//! it: add a toxic to a proxy, remove it. Only the public Toxiproxy HTTP API is used, so the
//! same drill runs against either.

use std::time::Duration;

use http::Method;
use serde_json::json;

use crate::{
    admin::AdminError,
    control::{self, Base},
    scenario::ToxicAction,
};

const TIMEOUT: Duration = Duration::from_secs(5);

/// A client of one chaos API.
#[derive(Debug, Clone)]
pub struct Chaos {
    /// Where it listens.
    pub base: Base,
}

impl Chaos {
    /// Adds toxic `name` to its proxy (`POST /proxies/{proxy}/toxics`).
    pub async fn add_toxic(&self, name: &str, t: &ToxicAction) -> Result<(), AdminError> {
        let body = json!({
            "name": name,
            "type": t.kind,
            "stream": t.stream,
            "toxicity": t.toxicity,
            "attributes": t.attributes,
        });
        let path = format!("/proxies/{}/toxics", t.proxy);
        let a = control::call(&self.base, Method::POST, &path, Some(&body), None, TIMEOUT).await?;
        refused(&format!("POST {}{path}", self.base), a)
    }

    /// Removes toxic `name` from `proxy`; one already gone is not an error.
    pub async fn remove_toxic(&self, proxy: &str, name: &str) -> Result<(), AdminError> {
        let path = format!("/proxies/{proxy}/toxics/{name}");
        let a = control::call(&self.base, Method::DELETE, &path, None, None, TIMEOUT).await?;
        if a.status.as_u16() == 404 {
            return Ok(());
        }
        refused(&format!("DELETE {}{path}", self.base), a)
    }
}

fn refused(what: &str, a: control::Answer) -> Result<(), AdminError> {
    if a.status.is_success() {
        return Ok(());
    }
    let mut body = a.text();
    body.truncate(300);
    Err(AdminError::Refused {
        what: what.to_owned(),
        status: a.status.as_u16(),
        body,
    })
}
