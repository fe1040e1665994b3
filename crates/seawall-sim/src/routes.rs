//! Maps a request to its behaviour. Every endpoint accepts any method.
//!
//! | Path | Behaviour |
//! |------|-----------|
//! | `/` | 200 `hello from seawall sim\n` |
//! | `/status/{code}` | that status (200-999), short text body |
//! | `/delay/{duration}` | waits `duration` before the head, then 200 |
//! | `/drip?bytes=N&duration=D&delay=D` | 200 with N bytes spread over D (see [`crate::drip`]) |
//! | `/bytes/{n}` | 200 with exactly n bytes (at most 100 MiB), streamed |
//! | `/hang` | never answers |
//! | `/close` | closes the connection without a response (FIN) |
//! | `/reset` | resets the connection without a response (RST) |
//! | `/echo` | 200 JSON [`crate::EchoReport`] of the request |
//! | `/__sim/stats` | 200 JSON [`crate::StatsSnapshot`] |
//! | anything else | 404 listing the endpoints |
//!
//! Bad values in paths or queries get 400 with a message that names the value.

use std::convert::Infallible;
use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::body::SimBody;
use crate::conn::{ConnCtx, Ending};
use crate::drip::{Drip, DripQuery};
use crate::{CONNECTION_HEADER, echo, param, response};

const HELLO: &str = "hello from seawall sim\n";

const NOT_FOUND: &str = "no such sim endpoint; try one of:
  /                        hello
  /status/{code}           that status (200-999)
  /delay/{duration}        wait, then 200 (e.g. /delay/100ms)
  /drip?bytes=N&duration=D&delay=D
                           N bytes spread over D
  /bytes/{n}               exactly n bytes
  /hang                    never answers
  /close                   close the connection, no response
  /reset                   reset the connection, no response
  /echo                    JSON description of the request
  /__sim/stats             JSON counters
";

/// The service function for every request on every connection.
pub(crate) async fn handle(
    request: Request<Incoming>,
    conn: Arc<ConnCtx>,
) -> Result<Response<SimBody>, Infallible> {
    let mut response = match request.uri().path() {
        // Not counted, so that reading the counters does not change them.
        "/__sim/stats" => stats(&conn),
        path => {
            let guard = conn.stats().request_started();
            if let Some(ending) = ending(path) {
                // The sim ends these on purpose; only a client leaving counts as cancelled.
                guard.finish();
                conn.end(ending);
                return std::future::pending().await;
            }
            let head_only = request.method() == Method::HEAD;
            let mut response = route(request).await;
            if head_only {
                // hyper drops a HEAD response's body unread; that is not a cancellation.
                guard.finish();
            } else {
                response.body_mut().attach(guard);
            }
            response
        }
    };
    response
        .headers_mut()
        .insert(CONNECTION_HEADER, conn.id_header().clone());
    Ok(response)
}

async fn route(request: Request<Incoming>) -> Response<SimBody> {
    let path = request.uri().path();
    match path {
        "/" => response::text(StatusCode::OK, HELLO),
        "/hang" => std::future::pending().await,
        "/echo" => echo::respond(request).await,
        "/drip" => drip(request.uri().query()).await,
        _ => {
            if let Some(code) = path.strip_prefix("/status/") {
                status(code)
            } else if let Some(duration) = path.strip_prefix("/delay/") {
                delay(duration).await
            } else if let Some(n) = path.strip_prefix("/bytes/") {
                bytes(n)
            } else {
                response::text(StatusCode::NOT_FOUND, NOT_FOUND)
            }
        }
    }
}

/// `/close` and `/reset` end the connection instead of answering; the connection task
/// does it, because only it holds the socket.
fn ending(path: &str) -> Option<Ending> {
    match path {
        "/close" => Some(Ending::Close),
        "/reset" => Some(Ending::Reset),
        _ => None,
    }
}

fn stats(conn: &ConnCtx) -> Response<SimBody> {
    match serde_json::to_vec(&conn.stats().snapshot()) {
        Ok(json) => response::json(json),
        Err(error) => response::owned_text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding the stats failed: {error}\n"),
        ),
    }
}

fn status(code: &str) -> Response<SimBody> {
    match param::status(code) {
        Ok(status) => {
            let mut response = response::owned_text(
                status,
                format!(
                    "{} {}\n",
                    status.as_str(),
                    status.canonical_reason().unwrap_or("")
                ),
            );
            // These must not carry a body; hyper would drop it, but the hint must agree.
            if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
                *response.body_mut() = SimBody::empty();
            }
            response
        }
        Err(error) => response::bad_request(&error),
    }
}

async fn delay(value: &str) -> Response<SimBody> {
    match param::duration("delay", value) {
        Ok(duration) => {
            tokio::time::sleep(duration).await;
            response::text(StatusCode::OK, "delayed\n")
        }
        Err(error) => response::bad_request(&error),
    }
}

async fn drip(query: Option<&str>) -> Response<SimBody> {
    match DripQuery::parse(query) {
        Ok(query) => {
            tokio::time::sleep(query.delay).await;
            response::octets(SimBody::drip(Drip::start(query.bytes, query.duration)))
        }
        Err(error) => response::bad_request(&error),
    }
}

fn bytes(value: &str) -> Response<SimBody> {
    match param::byte_count("byte count", value) {
        Ok(n) => response::octets(SimBody::pattern(n)),
        Err(error) => response::bad_request(&error),
    }
}
