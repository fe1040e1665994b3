//! The built-in middleware layers, one per module, and the one function that builds a
//! route's chain from config.

pub mod access_log;
pub mod debug;
pub mod fault;
pub mod headers;
pub mod rate_limit;
pub mod request_id;

use seawall_config::MiddlewareConfig;

use crate::chain::{Chain, Layer};

/// Builds route `route`'s chain, in config order (outermost first). `limiters` keeps
/// rate-limit state across reloads; `metrics` holds the fault layers' counters, whose
/// rules are also added to `fault_rules` (for the admin API's `GET /faults`).
pub fn build_chain(
    configs: &[MiddlewareConfig],
    route: &str,
    limiters: &rate_limit::LimiterRegistry,
    metrics: &crate::metrics::Metrics,
    fault_rules: &mut Vec<std::sync::Arc<crate::faults::rule::Rule>>,
) -> Result<Chain, String> {
    let layers = configs
        .iter()
        .map(|c| -> Result<Box<dyn Layer>, String> {
            Ok(match c {
                MiddlewareConfig::RequestId => Box::new(request_id::RequestId),
                MiddlewareConfig::AccessLog => Box::new(access_log::AccessLog),
                MiddlewareConfig::Debug => Box::new(debug::Debug),
                MiddlewareConfig::Headers(h) => Box::new(headers::Headers::try_new(h)?),
                MiddlewareConfig::RateLimit(r) => {
                    Box::new(rate_limit::RateLimit::try_new(r, route, limiters)?)
                }
                MiddlewareConfig::Fault(f) => {
                    let layer = fault::Fault::try_new(f, route, metrics)?;
                    fault_rules.extend(layer.rules().iter().cloned());
                    Box::new(layer)
                }
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Chain::new(layers))
}
