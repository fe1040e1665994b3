//! `GET /events`: the gateway's resilience events ([`crate::events`]) as server-sent
//! events, token-protected like `/config`. Each event is `event: <kind>` with a JSON
//! `data` line (`{"at_ms", "kind", "name", "detail"}`); a subscriber too slow to keep up
//! gets `event: lagged` with how many it missed, and the stream goes on. The stream ends
//! when the admin API stops, so it never holds up a shutdown.

use std::{convert::Infallible, sync::Arc, time::Duration};

use axum::{
    extract::State,
    http::HeaderMap,
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures_util::stream;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::{AdminState, authorize};
use crate::events::Subscription;

pub(super) async fn stream(State(s): State<Arc<AdminState>>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&s, &headers, false) {
        return r;
    }
    let sub = s.inner.shared.metrics.events.subscribe();
    let stop = s.inner.admin_stop.clone();
    let events = stream::unfold((sub, stop), next);
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

type Cursor = (Subscription, CancellationToken);

async fn next((mut sub, stop): Cursor) -> Option<(Result<Event, Infallible>, Cursor)> {
    let received = tokio::select! {
        r = sub.rx.recv() => r,
        () = stop.cancelled() => return None,
    };
    let event = match received {
        Ok(e) => Event::default()
            .event(e.kind)
            .json_data(&*e)
            .unwrap_or_else(|_| Event::default().event(e.kind)),
        Err(RecvError::Lagged(missed)) => Event::default()
            .event("lagged")
            .data(format!("{{\"missed\": {missed}}}")),
        Err(RecvError::Closed) => return None,
    };
    Some((Ok(event), (sub, stop)))
}
