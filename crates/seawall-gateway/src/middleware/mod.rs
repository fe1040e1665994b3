//! The built-in middleware layers, one per module, and the one function that builds a
//! route's chain from config.

pub mod access_log;
pub mod debug;
pub mod headers;
pub mod request_id;

use seawall_config::MiddlewareConfig;

use crate::chain::{Chain, Layer};

/// Builds a route's chain, in config order (outermost first).
pub fn build_chain(configs: &[MiddlewareConfig]) -> Result<Chain, String> {
    let layers = configs
        .iter()
        .map(|c| -> Result<Box<dyn Layer>, String> {
            Ok(match c {
                MiddlewareConfig::RequestId => Box::new(request_id::RequestId),
                MiddlewareConfig::AccessLog => Box::new(access_log::AccessLog),
                MiddlewareConfig::Debug => Box::new(debug::Debug),
                MiddlewareConfig::Headers(h) => Box::new(headers::Headers::try_new(h)?),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Chain::new(layers))
}
