//! The per-route middleware chain and its contract.
//!
//! A layer sees the request once, in [`Layer::on_request`], and must return a [`Flow`]:
//! either it forwards the (possibly changed) request to the next layer, or it answers with
//! a response. There is no `next` to forget to call: a layer that does neither cannot be
//! written, because the function has to return one of the two. What remains possible is a
//! layer that *stalls* (its future never resolves); the runner records which layer holds the
//! request at every moment, so when the deadline fires the error names that layer
//! ([`seawall_core::ErrorKind::LayerStalled`]) and a metric counts it per layer.
//!
//! Layers that finish at once return [`Step::Done`], so the common path allocates nothing;
//! layers that wait (a limiter asking Redis, an injected delay) return [`Step::Pending`].
//! After the upstream answers, [`Layer::on_response`] runs for every layer that forwarded,
//! innermost first, on the response head.

use std::{future::Future, pin::Pin};

use http::{Request, Response, response};
use seawall_core::Body;

use crate::context::{RequestContext, Stage, TraceEntry};

/// What a layer decided to do with a request.
pub enum Flow {
    /// Pass the request on to the next layer (or the upstream after the last one).
    Forward(Request<Body>),
    /// Answer the client now; later layers and the upstream are skipped.
    Respond(Response<Body>),
}

/// A layer's answer: ready now, or after some waiting.
// `Done` is deliberately unboxed: it is the allocation-free common path (module docs);
// boxing the `Flow` would cost an allocation per layer per request.
#[allow(clippy::large_enum_variant)]
pub enum Step<'a> {
    /// Decided without waiting.
    Done(Flow),
    /// Decided after the future resolves.
    Pending(Pin<Box<dyn Future<Output = Flow> + Send + 'a>>),
}

/// One middleware. Implementations live in `crate::middleware`, one per module.
pub trait Layer: Send + Sync + 'static {
    /// The name used in config, traces, logs and metrics.
    fn name(&self) -> &'static str;

    /// Sees the request on its way in; must forward it or respond.
    fn on_request<'a>(&'a self, req: Request<Body>, cx: &'a mut RequestContext) -> Step<'a>;

    /// Sees the response head on its way out (only for layers that forwarded).
    fn on_response(&self, _head: &mut response::Parts, _cx: &mut RequestContext) {}
}

/// A route's layers, outermost first, as declared in config.
#[derive(Default)]
pub struct Chain {
    layers: Vec<Box<dyn Layer>>,
}

/// How the request phase of the chain ended.
pub enum ChainOutcome {
    /// Every layer forwarded: send this request upstream.
    Forward(Request<Body>),
    /// Layer `index` answered.
    Respond(usize, Response<Body>),
}

impl Chain {
    /// A chain of `layers`, outermost first.
    pub fn new(layers: Vec<Box<dyn Layer>>) -> Self {
        Self { layers }
    }

    /// This chain with `extra` appended (innermost).
    pub fn with_layers(mut self, extra: Vec<Box<dyn Layer>>) -> Self {
        self.layers.extend(extra);
        self
    }

    /// The layers' names, outermost first.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.layers.iter().map(|l| l.name())
    }

    /// The name of layer `index`.
    pub fn name(&self, index: usize) -> &'static str {
        self.layers.get(index).map_or("?", |l| l.name())
    }

    /// Runs the request phase. `cx.stage` always names the layer currently holding the
    /// request, so a caller that gives up at the deadline knows whom to blame.
    pub async fn run_request(
        &self,
        mut req: Request<Body>,
        cx: &mut RequestContext,
    ) -> ChainOutcome {
        for (i, layer) in self.layers.iter().enumerate() {
            cx.stage = Stage::Layer(i);
            let started = cx.trace.is_some().then(tokio::time::Instant::now);
            let flow = match layer.on_request(req, cx) {
                Step::Done(flow) => flow,
                Step::Pending(fut) => fut.await,
            };
            if let (Some(started), Some(trace)) = (started, cx.trace.as_mut()) {
                trace.push(TraceEntry::layer(
                    layer.name(),
                    started.elapsed(),
                    matches!(flow, Flow::Forward(_)),
                ));
            }
            match flow {
                Flow::Forward(r) => req = r,
                Flow::Respond(resp) => return ChainOutcome::Respond(i, resp),
            }
        }
        cx.stage = Stage::Upstream;
        ChainOutcome::Forward(req)
    }

    /// Runs the response phase for layers `0..entered`, innermost first.
    pub fn run_response(
        &self,
        entered: usize,
        head: &mut response::Parts,
        cx: &mut RequestContext,
    ) {
        for layer in self.layers[..entered.min(self.layers.len())].iter().rev() {
            layer.on_response(head, cx);
        }
    }

    /// Number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// True when the route has no middleware.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}
