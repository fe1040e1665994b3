//! One client of a proxy marked `protocol: http`: HTTP/1.1 served by hyper on the client
//! side and sent on by hyper to the upstream, so that toxics act per request.
//!
//! Each client connection gets its own upstream connection (opened at accept, as for a
//! TCP proxy, and again if the upstream closes it between requests), so keep-alive
//! through the proxy means keep-alive to the upstream. hyper handles the framing
//! (Content-Length, chunked, keep-alive); only the HTTP toxics are applied (see
//! [`plan`]); a TCP proxy never comes here.

mod body;
mod io;
mod plan;

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::connection::Setup;
use crate::metrics::ProxyCounters;
use crate::stream::Stream;
use body::{BodyError, CutBody};
use io::Counted;

type ProxyBody = BoxBody<Bytes, BodyError>;

/// What the requests of one client connection share.
struct Forward {
    setup: Setup,
    upstream: Mutex<Option<SendRequest<Incoming>>>,
    rng: Mutex<fastrand::Rng>,
    reset: Arc<std::sync::atomic::AtomicBool>,
}

/// Serves one client until it closes, a toxic resets it, or the proxy stops.
pub(crate) async fn serve(client: TcpStream, setup: Setup) {
    let Some(first) = connect(&setup).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let i = ProxyCounters::index;
    let client = Counted::new(
        client,
        setup.counters.received[i(Stream::Upstream)].clone(),
        setup.counters.sent[i(Stream::Downstream)].clone(),
    );
    let kill = setup.kill.clone();
    let forward = Arc::new(Forward {
        rng: Mutex::new(fastrand::Rng::with_seed(setup.seed)),
        reset: client.reset_flag(),
        upstream: Mutex::new(Some(first)),
        setup,
    });
    let service = hyper::service::service_fn(move |request| {
        let forward = forward.clone();
        async move { forward.handle(request).await }
    });
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(client), service);
    tokio::select! {
        () = kill.cancelled() => {}
        _ = conn => {}
    }
}

/// Opens an upstream connection and drives it on its own task until the proxy stops.
async fn connect(setup: &Setup) -> Option<SendRequest<Incoming>> {
    let stream = tokio::select! {
        biased;
        () = setup.kill.cancelled() => return None,
        connected = TcpStream::connect(&*setup.upstream) => connected,
    };
    let stream = match stream {
        Ok(stream) => stream,
        Err(error) => {
            tracing::warn!(proxy = %setup.proxy, upstream = %setup.upstream, %error, "Cannot reach the upstream; closing the client.");
            return None;
        }
    };
    let _ = stream.set_nodelay(true);
    let i = ProxyCounters::index;
    let stream = Counted::new(
        stream,
        setup.counters.received[i(Stream::Downstream)].clone(),
        setup.counters.sent[i(Stream::Upstream)].clone(),
    );
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(drive(conn, setup.kill.clone()));
    Some(sender)
}

async fn drive(
    conn: hyper::client::conn::http1::Connection<TokioIo<Counted>, Incoming>,
    kill: CancellationToken,
) {
    tokio::select! {
        () = kill.cancelled() => {}
        _ = conn => {}
    }
}

impl Forward {
    async fn handle(
        &self,
        request: Request<Incoming>,
    ) -> Result<Response<ProxyBody>, std::convert::Infallible> {
        let plan = {
            let toxics = self.setup.toxics.borrow().clone();
            plan::Plan::draw(&toxics, &mut *self.rng.lock().await)
        };
        if let Some(status) = plan.answer {
            tokio::time::sleep(plan.delay).await;
            return Ok(answer(status.status, status.body));
        }
        let response = match self.send(request).await {
            Some(response) => response,
            None => {
                return Ok(answer(
                    502,
                    "seawall chaos: the upstream did not answer\n".into(),
                ));
            }
        };
        tokio::time::sleep(plan.delay).await;
        let (head, body) = response.into_parts();
        let body = match plan.reset_after {
            Some(after) => CutBody::new(body, after, self.reset.clone()).boxed(),
            None => body.map_err(BodyError::Upstream).boxed(),
        };
        Ok(Response::from_parts(head, body))
    }

    /// Sends the request on this client's upstream connection, opening a new one if the
    /// upstream closed the last (its keep-alive ran out).
    async fn send(&self, request: Request<Incoming>) -> Option<Response<Incoming>> {
        let mut upstream = self.upstream.lock().await;
        let usable = match upstream.as_mut() {
            Some(sender) => sender.ready().await.is_ok(),
            None => false,
        };
        if !usable {
            *upstream = connect(&self.setup).await;
        }
        let sender = upstream.as_mut()?;
        match sender.send_request(request).await {
            Ok(response) => Some(response),
            Err(error) => {
                tracing::warn!(proxy = %self.setup.proxy, %error, "Upstream request failed.");
                *upstream = None;
                None
            }
        }
    }
}

/// An answer made here, not by the upstream.
fn answer(status: u16, body: String) -> Response<ProxyBody> {
    let mut response = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    response
}
