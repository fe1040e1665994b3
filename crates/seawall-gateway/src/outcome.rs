//! The end of every request: one place that records its outcome.
//!
//! Called exactly once per request, from the response body when it ends or is dropped
//! (`crate::body::ResponseBody`), so the duration covers the whole response and a client
//! that leaves mid-body is still counted; or, when no response head was produced (the
//! client left first), from the context's guard in `crate::edge`.

use crate::context::RequestContext;

/// Records metrics and the access log line for a finished request, and tells the
/// connection it has one request fewer in flight.
pub fn finish(cx: RequestContext) {
    let elapsed = cx.start.elapsed();
    let route = &cx.route;
    route
        .metrics
        .observe(&cx.method, cx.status, elapsed.as_secs_f64());
    if let Some(kind) = cx.error {
        route.metrics.error(kind);
    }
    if cx.access_log {
        route.shared.access_log.write(&cx, elapsed);
    }
    cx.conn.end_request();
}
