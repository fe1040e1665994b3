//! gRPC through the gateway: a tonic client speaks h2c to the listener, the gateway
//! forwards over its HTTP/2 upstream pool (`protocol: http2`) to a tonic server, and
//! unary, server-streaming and client-streaming calls come back with their status,
//! message and trailing metadata intact, errors included; the gateway's own errors
//! (deadline, no route, connect failure, rate limit) reach the client as gRPC statuses.
//! Messages are hand-written prost structs and the service a hand-written tower service,
//! so no `protoc` is needed.

// tonic's API hands `Status` (large) by value in `Result`s; that is its shape, not ours.
#![allow(clippy::result_large_err)]

mod support;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use futures_util::{Stream, stream};
use http::uri::PathAndQuery;
use support::*;
use tonic::codec::{ProstCodec, Streaming};
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::server::{
    ClientStreamingService, Grpc, NamedService, ServerStreamingService, UnaryService,
};
use tonic::{Code, Request, Response, Status};

#[derive(Clone, PartialEq, prost::Message)]
struct EchoRequest {
    #[prost(string, tag = "1")]
    message: String,
    /// Replies a server stream sends before it ends.
    #[prost(uint32, tag = "2")]
    count: u32,
    /// Fail: a unary call at once, a stream after its replies.
    #[prost(bool, tag = "3")]
    fail: bool,
    /// Milliseconds a unary call waits before answering.
    #[prost(uint32, tag = "4")]
    delay_ms: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct EchoReply {
    #[prost(string, tag = "1")]
    message: String,
    #[prost(uint32, tag = "2")]
    index: u32,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type ReplyStream = Pin<Box<dyn Stream<Item = Result<EchoReply, Status>> + Send>>;

/// The status a failing call ends with: a code, a message and custom trailing metadata.
fn refusal(message: &str) -> Status {
    let mut metadata = MetadataMap::new();
    metadata.insert(
        "x-refusal-detail",
        MetadataValue::from_static("custom-trailer"),
    );
    Status::with_metadata(
        Code::FailedPrecondition,
        format!("refused: {message}"),
        metadata,
    )
}

/// The upstream's `test.Echo` service. Records what protocol details arrived.
#[derive(Clone, Default)]
struct Echo {
    calls: Arc<AtomicUsize>,
    te_trailers: Arc<AtomicUsize>,
}

impl NamedService for Echo {
    const NAME: &'static str = "test.Echo";
}

struct Unary;

impl UnaryService<EchoRequest> for Unary {
    type Response = EchoReply;
    type Future = BoxFuture<Result<Response<EchoReply>, Status>>;

    fn call(&mut self, request: Request<EchoRequest>) -> Self::Future {
        Box::pin(async move {
            let request = request.into_inner();
            tokio::time::sleep(std::time::Duration::from_millis(request.delay_ms.into())).await;
            if request.fail {
                return Err(refusal(&request.message));
            }
            let mut response = Response::new(EchoReply {
                message: request.message,
                index: 0,
            });
            response
                .metadata_mut()
                .insert("x-echo-header", MetadataValue::from_static("head"));
            Ok(response)
        })
    }
}

struct ServerStream;

impl ServerStreamingService<EchoRequest> for ServerStream {
    type Response = EchoReply;
    type ResponseStream = ReplyStream;
    type Future = BoxFuture<Result<Response<ReplyStream>, Status>>;

    fn call(&mut self, request: Request<EchoRequest>) -> Self::Future {
        Box::pin(async move {
            let request = request.into_inner();
            let message = request.message.clone();
            let replies = (0..request.count).map(move |index| {
                Ok(EchoReply {
                    message: message.clone(),
                    index,
                })
            });
            let end = request.fail.then(|| Err(refusal(&request.message)));
            let replies: ReplyStream = Box::pin(stream::iter(replies.chain(end)));
            Ok(Response::new(replies))
        })
    }
}

struct ClientStream;

impl ClientStreamingService<EchoRequest> for ClientStream {
    type Response = EchoReply;
    type Future = BoxFuture<Result<Response<EchoReply>, Status>>;

    fn call(&mut self, request: Request<Streaming<EchoRequest>>) -> Self::Future {
        Box::pin(async move {
            let mut incoming = request.into_inner();
            let mut joined = Vec::new();
            while let Some(request) = incoming.message().await? {
                joined.push(request.message);
            }
            Ok(Response::new(EchoReply {
                index: joined.len() as u32,
                message: joined.join("+"),
            }))
        })
    }
}

impl tonic::codegen::Service<http::Request<tonic::body::Body>> for Echo {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if request.headers().get("te").is_some_and(|v| v == "trailers") {
            self.te_trailers.fetch_add(1, Ordering::SeqCst);
        }
        Box::pin(async move {
            let mut grpc = Grpc::new(ProstCodec::<EchoReply, EchoRequest>::default());
            let response = match request.uri().path() {
                "/test.Echo/Unary" => grpc.unary(Unary, request).await,
                "/test.Echo/ServerStream" => grpc.server_streaming(ServerStream, request).await,
                "/test.Echo/ClientStream" => grpc.client_streaming(ClientStream, request).await,
                _ => Status::unimplemented("no such method").into_http(),
            };
            Ok(response)
        })
    }
}

/// A tonic server (h2c) serving [`Echo`] on 127.0.0.1.
async fn grpc_upstream() -> (SocketAddr, Echo) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let echo = Echo::default();
    let incoming = stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _)| stream);
        Some((accepted, listener))
    });
    let service = echo.clone();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming)
            .await
            .unwrap();
    });
    (addr, echo)
}

/// The gateway in front of the gRPC upstream, over HTTP/2.
async fn gateway(upstream: SocketAddr) -> TestGateway {
    let yaml = config(
        &[],
        &[route("grpc", "*", "/", "grpc", "10s", "")],
        &[format!(
            "{{name: grpc, endpoints: [\"{upstream}\"], protocol: http2}}"
        )],
    );
    start(&yaml).await
}

async fn client(gateway: SocketAddr) -> tonic::client::Grpc<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{gateway}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    tonic::client::Grpc::new(channel)
}

fn codec() -> ProstCodec<EchoRequest, EchoReply> {
    ProstCodec::default()
}

fn echo(message: &str, count: u32, fail: bool) -> Request<EchoRequest> {
    Request::new(EchoRequest {
        message: message.to_owned(),
        count,
        fail,
        delay_ms: 0,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_calls_pass_through_with_status_and_metadata() {
    let (upstream, echo_service) = grpc_upstream().await;
    let g = gateway(upstream).await;
    let mut grpc = client(g.addr).await;

    grpc.ready().await.unwrap();
    let path = PathAndQuery::from_static("/test.Echo/Unary");
    let response = grpc
        .unary(echo("hello", 0, false), path.clone(), codec())
        .await
        .unwrap();
    assert_eq!(response.metadata().get("x-echo-header").unwrap(), "head");
    assert_eq!(response.into_inner().message, "hello");

    // A failure with a message and custom metadata (a trailers-only response).
    grpc.ready().await.unwrap();
    let status = grpc
        .unary(echo("nope", 0, true), path, codec())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(status.message(), "refused: nope");
    assert_eq!(
        status.metadata().get("x-refusal-detail").unwrap(),
        "custom-trailer"
    );

    // An unknown method is the upstream's answer, not the gateway's.
    grpc.ready().await.unwrap();
    let status = grpc
        .unary(
            echo("x", 0, false),
            PathAndQuery::from_static("/test.Echo/Missing"),
            codec(),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");

    assert_eq!(echo_service.calls.load(Ordering::SeqCst), 3);
    assert_eq!(
        echo_service.te_trailers.load(Ordering::SeqCst),
        3,
        "`te: trailers` reaches the upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_streams_end_with_their_trailers() {
    let (upstream, _echo) = grpc_upstream().await;
    let g = gateway(upstream).await;
    let mut grpc = client(g.addr).await;
    let path = PathAndQuery::from_static("/test.Echo/ServerStream");

    grpc.ready().await.unwrap();
    let mut replies = grpc
        .server_streaming(echo("tick", 5, false), path.clone(), codec())
        .await
        .unwrap()
        .into_inner();
    let mut indexes = Vec::new();
    while let Some(reply) = replies.message().await.unwrap() {
        assert_eq!(reply.message, "tick");
        indexes.push(reply.index);
    }
    assert_eq!(indexes, [0, 1, 2, 3, 4]);
    assert!(
        replies.trailers().await.unwrap().is_some(),
        "trailers arrived"
    );

    // Replies, then a failure in the trailers: status, message and custom metadata.
    grpc.ready().await.unwrap();
    let mut replies = grpc
        .server_streaming(echo("late", 3, true), path, codec())
        .await
        .unwrap()
        .into_inner();
    for index in 0..3 {
        let reply = replies.message().await.unwrap().unwrap();
        assert_eq!(reply.index, index);
    }
    let status = replies.message().await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(status.message(), "refused: late");
    assert_eq!(
        status.metadata().get("x-refusal-detail").unwrap(),
        "custom-trailer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_streams_and_concurrent_calls_share_one_upstream_connection() {
    let (upstream, _echo) = grpc_upstream().await;
    let g = gateway(upstream).await;
    let mut grpc = client(g.addr).await;

    grpc.ready().await.unwrap();
    let requests = stream::iter(["a", "b", "c"].map(|m| EchoRequest {
        message: m.to_owned(),
        count: 0,
        fail: false,
        delay_ms: 0,
    }));
    let reply = grpc
        .client_streaming(
            Request::new(requests),
            PathAndQuery::from_static("/test.Echo/ClientStream"),
            codec(),
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!((reply.message.as_str(), reply.index), ("a+b+c", 3));

    // Many concurrent calls: one HTTP/2 connection to the upstream carries them all.
    let calls = (0..50).map(|i| {
        let mut grpc = grpc.clone();
        async move {
            grpc.ready().await.unwrap();
            let message = format!("call {i}");
            let reply = grpc
                .unary(
                    echo(&message, 0, false),
                    PathAndQuery::from_static("/test.Echo/Unary"),
                    codec(),
                )
                .await
                .unwrap()
                .into_inner();
            assert_eq!(reply.message, message);
        }
    });
    futures_util::future::join_all(calls).await;
    let m = metrics_text(g.admin).await;
    let opened = metric(
        &m,
        "seawall_upstream_connections_opened_total",
        &[("upstream", "grpc")],
    );
    assert_eq!(opened, Some(1.0), "{m}");
}

/// A gateway error seen by a gRPC client: its code, message and `seawall-error`.
#[track_caller]
fn assert_gateway_status(status: &Status, code: Code, reason: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(status.message(), reason, "{status:?}");
    assert_eq!(
        status.metadata().get("seawall-error").unwrap(),
        reason,
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_errors_reach_grpc_clients_as_grpc_statuses() {
    let (upstream, echo_service) = grpc_upstream().await;
    let dead = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let limit =
        "{rate_limit: {limits: [{name: one, key: [client_ip], rate: \"1/min\", burst: 1}]}}";
    let yaml = config(
        &[],
        &[
            route("slow", "*", "/test.Echo/Unary", "grpc", "300ms", ""),
            route("dead", "*", "/test.Dead/", "dead", "5s", ""),
            route(
                "limited",
                "*",
                "/test.Echo/ServerStream",
                "grpc",
                "5s",
                limit,
            ),
        ],
        &[
            format!("{{name: grpc, endpoints: [\"{upstream}\"], protocol: http2}}"),
            format!("{{name: dead, endpoints: [\"{dead}\"], protocol: http2}}"),
        ],
    );
    let g = start(&yaml).await;
    let mut grpc = client(g.addr).await;

    // The route's deadline passes while the upstream thinks: DEADLINE_EXCEEDED, at once.
    let mut slow = echo("slow", 0, false);
    slow.get_mut().delay_ms = 2000;
    grpc.ready().await.unwrap();
    let t = std::time::Instant::now();
    let status = grpc
        .unary(slow, PathAndQuery::from_static("/test.Echo/Unary"), codec())
        .await
        .unwrap_err();
    // The upstream got the same deadline as `grpc-timeout` and enforces it too (tonic's
    // server answers CANCELLED "Timeout expired"), so two timers race for the same instant:
    // on a loaded machine the upstream's answer can reach the gateway before the gateway's
    // own timer runs, and it is then passed through as the upstream's status. Either way
    // the call ends at the deadline; which side said so is the only thing that may differ.
    if status.metadata().get("seawall-error").is_some() {
        assert_gateway_status(&status, Code::DeadlineExceeded, "deadline_exceeded");
    } else {
        assert_eq!(
            (status.code(), status.message()),
            (Code::Cancelled, "Timeout expired"),
            "neither the gateway's deadline nor the upstream's own: {status:?}"
        );
    }
    assert!(
        t.elapsed() < std::time::Duration::from_secs(1),
        "{:?}",
        t.elapsed()
    );

    // No route: UNIMPLEMENTED, as gRPC reads a 404.
    grpc.ready().await.unwrap();
    let status = grpc
        .unary(
            echo("x", 0, false),
            PathAndQuery::from_static("/other.Service/Method"),
            codec(),
        )
        .await
        .unwrap_err();
    assert_gateway_status(&status, Code::Unimplemented, "no_route");

    // The upstream refuses connections: UNAVAILABLE.
    grpc.ready().await.unwrap();
    let status = grpc
        .unary(
            echo("x", 0, false),
            PathAndQuery::from_static("/test.Dead/Unary"),
            codec(),
        )
        .await
        .unwrap_err();
    assert_gateway_status(&status, Code::Unavailable, "connect_error");

    // Over the rate limit (a layer's refusal): RESOURCE_EXHAUSTED, with its headers.
    let path = PathAndQuery::from_static("/test.Echo/ServerStream");
    grpc.ready().await.unwrap();
    let mut replies = grpc
        .server_streaming(echo("a", 1, false), path.clone(), codec())
        .await
        .unwrap()
        .into_inner();
    while replies.message().await.unwrap().is_some() {}
    grpc.ready().await.unwrap();
    let status = grpc
        .server_streaming(echo("b", 1, false), path, codec())
        .await
        .unwrap_err();
    assert_gateway_status(&status, Code::ResourceExhausted, "rate_limited");
    assert!(status.metadata().get("retry-after").is_some(), "{status:?}");

    // The upstream's own statuses still pass through unchanged.
    grpc.ready().await.unwrap();
    let status = grpc
        .unary(
            echo("nope", 0, true),
            PathAndQuery::from_static("/test.Echo/Unary"),
            codec(),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.metadata().get("seawall-error").is_none());
    assert_eq!(echo_service.calls.load(Ordering::SeqCst), 3);
}
