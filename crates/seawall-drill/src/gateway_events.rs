//! The gateway's own events on the drill's timeline: a subscription to the admin API's
//! `GET /events` (server-sent events), read in the background for the whole run and
//! drained into the [`Timeline`](crate::events::Timeline) at the end, as an
//! [`EventSource`]. Each becomes kind `gateway.<kind>` (`gateway.breaker`,
//! `gateway.fallback`, `gateway.fault_on`, ..., and `gateway.lagged` when the drill could
//! not keep up), at its offset from the start of the load.
//!
//! A gateway without the endpoint (an older one) is not an error: the drill runs without
//! those events.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use bytes::{Bytes, BytesMut};
use http::{Method, Request};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

use crate::{
    admin::Admin,
    events::{Event, EventSource},
};

/// A running subscription.
#[derive(Debug)]
pub struct GatewayEvents {
    received: Arc<Mutex<Vec<Event>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for GatewayEvents {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl EventSource for GatewayEvents {
    fn drain(&mut self) -> Vec<Event> {
        self.received
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }
}

/// Unix time in milliseconds of `at` (an instant near now).
pub fn unix_ms(at: Instant) -> f64 {
    let now = Instant::now();
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
        * 1000.0;
    if at >= now {
        wall + (at - now).as_secs_f64() * 1000.0
    } else {
        wall - (now - at).as_secs_f64() * 1000.0
    }
}

impl GatewayEvents {
    /// Subscribes; returns once the gateway has answered, so no later event is missed.
    /// `start_ms` is the load's start in Unix milliseconds, the timeline's zero.
    pub async fn subscribe(admin: &Admin, start_ms: f64) -> Result<Self, String> {
        let connect = open(admin);
        let body = tokio::time::timeout(Duration::from_secs(5), connect)
            .await
            .map_err(|_| "GET /events: no answer in 5 s".to_owned())??;
        let received: Arc<Mutex<Vec<Event>>> = Arc::default();
        let task = tokio::spawn(read(body, received.clone(), start_ms));
        Ok(Self { received, task })
    }
}

async fn open(admin: &Admin) -> Result<hyper::body::Incoming, String> {
    let addr = admin.base.resolve().await.map_err(|e| e.to_string())?;
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut request = Request::builder()
        .method(Method::GET)
        .uri(format!("{}/events", admin.base.prefix))
        .header(http::header::HOST, &admin.base.authority)
        .header(http::header::ACCEPT, "text/event-stream");
    if let Some(t) = &admin.token {
        request = request.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let request = request
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = send
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("GET /events answered {}", response.status()));
    }
    Ok(response.into_body())
}

async fn read(mut body: hyper::body::Incoming, into: Arc<Mutex<Vec<Event>>>, start_ms: f64) {
    let mut buf = BytesMut::new();
    while let Some(Ok(frame)) = body.frame().await {
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        while let Some(end) = find(&buf, b"\n\n") {
            let block = buf.split_to(end + 2);
            let event = parse(&String::from_utf8_lossy(&block), start_ms);
            if let (Some(e), Ok(mut v)) = (event, into.lock()) {
                v.push(e);
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One SSE block (`event:` and `data:` lines) as a timeline event; keep-alive comments
/// and unknown shapes are skipped.
pub fn parse(block: &str, start_ms: f64) -> Option<Event> {
    let mut kind = None;
    let mut data = String::new();
    for line in block.lines() {
        if let Some(k) = line.strip_prefix("event:") {
            kind = Some(k.trim().to_owned());
        } else if let Some(d) = line.strip_prefix("data:") {
            data.push_str(d.trim_start());
        }
    }
    let kind = kind?;
    let v: serde_json::Value = serde_json::from_str(&data).ok()?;
    if kind == "lagged" {
        return Some(Event {
            at: (unix_ms(Instant::now()) - start_ms) / 1000.0,
            kind: "gateway.lagged".into(),
            name: "events".into(),
            detail: format!("missed {} events", v["missed"]),
        });
    }
    let text = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    Some(Event {
        at: (v["at_ms"].as_f64()? - start_ms) / 1000.0,
        kind: format!("gateway.{kind}"),
        name: text("name"),
        detail: text("detail"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_becomes_an_event_at_its_offset() {
        let block = "event: breaker\ndata: {\"at_ms\":2500,\"kind\":\"breaker\",\"name\":\"sim\",\"detail\":\"closed -> open (failure_ratio)\"}\n\n";
        let e = parse(block, 1000.0).unwrap();
        assert_eq!(e.kind, "gateway.breaker");
        assert_eq!(e.name, "sim");
        assert!((e.at - 1.5).abs() < 1e-9);
        assert!(parse(":\n\n", 0.0).is_none(), "a keep-alive is skipped");
    }
}
