//! `fault`: client-facing fault injection. The gateway itself delays requests, answers
//! them with an error status or a gRPC status, ends the client's connection or paces the
//! response body, so that the *callers* of the gateway can be tested (see
//! `docs/faults.md`).
//!
//! Per request, the rules are tried in config order; the first that matches and is
//! selected applies (`crate::faults::rule`: `percentage` drawn from the rule's seeded RNG,
//! `first`, `max_active`, the time window). A rule passed over lets the next rule try. What
//! a selected rule does is `crate::faults::client`'s, shared with runtime faults on a
//! route. With `allow_header_faults`, a selected request's `seawall-fault-delay` /
//! `seawall-fault-abort` headers replace the rule's own delay and abort.
//!
//! Each action counts in `seawall_faults_injected_total{scope="route", target=<route>,
//! fault, action}`.

use std::sync::Arc;

use http::Request;
use seawall_config::FaultConfig;
use seawall_core::Body;

use crate::{
    chain::{Flow, Layer, Step},
    context::RequestContext,
    faults::{
        client,
        rule::{Place, Rule},
    },
    metrics::Metrics,
};

/// The `fault` layer.
pub struct Fault {
    rules: Vec<Arc<Rule>>,
    allow_header_faults: bool,
}

impl Fault {
    /// Builds the layer of route `route`; errors name the offending rule (validation
    /// catches them first).
    pub fn try_new(config: &FaultConfig, route: &str, metrics: &Metrics) -> Result<Self, String> {
        let place = Place::Route(route.to_owned());
        let rules = config
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                // Each rule draws from its own RNG; a layer seed gives each a distinct one.
                let seed = config
                    .seed
                    .map(|s| s ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                Rule::build(r, &place, &[], seed, None, metrics).map(Arc::new)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            rules,
            allow_header_faults: config.allow_header_faults,
        })
    }
}

impl Fault {
    /// The layer's rules, in order.
    pub fn rules(&self) -> &[Arc<Rule>] {
        &self.rules
    }
}

impl Layer for Fault {
    fn name(&self) -> &'static str {
        "fault"
    }

    fn on_request<'a>(&'a self, req: Request<Body>, cx: &'a mut RequestContext) -> Step<'a> {
        let asked = cx.header_fault.filter(|_| self.allow_header_faults);
        // A rule with no action of its own (allowed with header faults) is only tried for
        // a request whose headers ask for something: others must not spend its `first`.
        let slot = self
            .rules
            .iter()
            .filter(|r| asked.is_some() || r.has_action())
            .find_map(|r| r.select(&req, None));
        match slot {
            None => Step::Done(Flow::Forward(req)),
            Some(slot) => client::apply(slot, req, cx, asked),
        }
    }
}
