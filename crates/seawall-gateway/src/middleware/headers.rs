//! `headers`: sets and removes request and response headers, as configured.
//!
//! Names and values are parsed once when the route is built (a bad name is a config
//! error), so a request pays only for the map operations.

use http::{HeaderMap, HeaderName, HeaderValue, Request, response};
use seawall_config::{HeaderEdits, HeadersConfig};
use seawall_core::Body;

use crate::{
    chain::{Flow, Layer, Step},
    context::RequestContext,
};

/// Parsed header edits.
struct Edits {
    set: Vec<(HeaderName, HeaderValue)>,
    remove: Vec<HeaderName>,
}

impl Edits {
    fn parse(edits: &HeaderEdits) -> Result<Self, String> {
        let set = edits
            .set
            .iter()
            .map(|(k, v)| {
                let name = HeaderName::try_from(k.as_str())
                    .map_err(|_| format!("invalid header name `{k}`"))?;
                let value = HeaderValue::try_from(v.as_str())
                    .map_err(|_| format!("invalid value for header `{k}`"))?;
                Ok((name, value))
            })
            .collect::<Result<_, String>>()?;
        let remove = edits
            .remove
            .iter()
            .map(|k| {
                HeaderName::try_from(k.as_str()).map_err(|_| format!("invalid header name `{k}`"))
            })
            .collect::<Result<_, String>>()?;
        Ok(Self { set, remove })
    }

    fn apply(&self, headers: &mut HeaderMap) {
        for name in &self.remove {
            headers.remove(name);
        }
        for (name, value) in &self.set {
            headers.insert(name.clone(), value.clone());
        }
    }
}

/// The `headers` layer.
pub struct Headers {
    request: Edits,
    response: Edits,
}

impl Headers {
    /// Parses the layer's config.
    pub fn try_new(config: &HeadersConfig) -> Result<Self, String> {
        Ok(Self {
            request: Edits::parse(&config.request)?,
            response: Edits::parse(&config.response)?,
        })
    }
}

impl Layer for Headers {
    fn name(&self) -> &'static str {
        "headers"
    }

    fn on_request<'a>(&'a self, mut req: Request<Body>, _cx: &'a mut RequestContext) -> Step<'a> {
        self.request.apply(req.headers_mut());
        Step::Done(Flow::Forward(req))
    }

    fn on_response(&self, head: &mut response::Parts, _cx: &mut RequestContext) {
        self.response.apply(&mut head.headers);
    }
}
