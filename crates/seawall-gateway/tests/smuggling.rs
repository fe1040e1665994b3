//! Request smuggling probes over raw TCP, one table row per payload: conflicting or
//! malformed framing (`Content-Length` against `Transfer-Encoding`, duplicate lengths,
//! codings after `chunked`, obs-fold, odd whitespace, chunk-size overflow, bare LF or CR,
//! NUL bytes) and requests hidden in a body or after one.
//!
//! Every row ends one of two ways, asserted per row: the gateway answers the client with
//! a 4xx and the upstream gets no complete request, or the gateway forwards exactly one
//! whole request (origin-form, with the body the gateway framed) and answers once. In
//! both, the upstream never sees the request hidden in the payload: it would be a second
//! request that no route policy saw, the definition of smuggling through a proxy.
//!
//! `Host` handling (duplicate, missing, invalid, absolute-form authority) is tested in
//! tests/host.rs; the payloads here all carry one plain `Host`.

mod support;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use support::*;
use tokio::{
    io::AsyncWriteExt,
    net::{TcpListener, TcpStream},
};

/// What the upstream saw of one request: its head, and its body if it arrived whole.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    body: Option<Bytes>,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// An HTTP/1.1 upstream (hyper, so it frames like a real server) that records every
/// request and answers `200 ok`.
async fn recording_upstream() -> (SocketAddr, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log: Log = Arc::default();
    let shared = log.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let log = shared.clone();
            let service = service_fn(move |req: Request<Incoming>| {
                let log = log.clone();
                async move { Ok::<_, hyper::Error>(record(&log, req).await) }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    (addr, log)
}

async fn record(log: &Log, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let index = {
        let mut log = log.lock().unwrap();
        log.push(Seen {
            method: req.method().to_string(),
            target: req.uri().to_string(),
            body: None,
        });
        log.len() - 1
    };
    if let Ok(body) = req.into_body().collect().await {
        log.lock().unwrap()[index].body = Some(body.to_bytes());
    }
    Response::new(Full::new(Bytes::from_static(b"ok")))
}

/// How a row must end.
#[derive(Debug, Clone)]
enum Expect {
    /// The client gets this status, the connection is closed, and the upstream gets no
    /// complete request.
    Rejected(u16),
    /// The upstream gets one whole request for the row's path with this body, and the
    /// client one 200.
    Whole(&'static str),
    /// Like `Whole`, and the gateway then closes the connection (`Connection: close`), so
    /// nothing after the body is read as a request: RFC 9112 §6.1's answer to a request
    /// with both `Content-Length` and `Transfer-Encoding` when it is not rejected.
    WholeThenClosed(&'static str),
}

/// A request hidden in a payload; the upstream must never see its target.
const HIDDEN: &str = "GET /smuggled HTTP/1.1\r\nHost: a.test\r\n\r\n";

/// The table: name, payload (`{p}` is the row's own path), expected end.
fn table() -> Vec<(&'static str, String, Expect)> {
    use Expect::*;
    let h = HIDDEN;
    let n = HIDDEN.len();
    let chunked_hidden = format!("{n:x}\r\n{h}\r\n0\r\n\r\n");
    let end_then_hidden = format!("0\r\n\r\n{h}");
    let m = end_then_hidden.len();
    let post = "POST {p} HTTP/1.1\r\nHost: a.test\r\n";
    vec![
        // CL.TE: a length-framed reader sees one request, a chunked one two. RFC 9112
        // §6.1: reject, or use the coding and close the connection after answering (hyper
        // does the latter).
        (
            "Content-Length then Transfer-Encoding",
            format!(
                "{post}Content-Length: {m}\r\nTransfer-Encoding: chunked\r\n\r\n{end_then_hidden}"
            ),
            WholeThenClosed(""),
        ),
        // TE.CL: the chunked body holds the hidden request; a length reader would see it.
        (
            "Transfer-Encoding then Content-Length",
            format!(
                "{post}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n{chunked_hidden}"
            ),
            WholeThenClosed(HIDDEN),
        ),
        (
            "two different Content-Length lines",
            format!("{post}Content-Length: 0\r\nContent-Length: {n}\r\n\r\n{h}"),
            Rejected(400),
        ),
        (
            "one Content-Length with two different values",
            format!("{post}Content-Length: 0, {n}\r\n\r\n{h}"),
            Rejected(400),
        ),
        (
            "a signed Content-Length",
            format!("{post}Content-Length: +{n}\r\n\r\n{h}"),
            Rejected(400),
        ),
        (
            "a Content-Length past u64",
            format!("{post}Content-Length: 99999999999999999999999\r\n\r\n{h}"),
            Rejected(400),
        ),
        (
            "Transfer-Encoding: chunked, identity",
            format!("{post}Transfer-Encoding: chunked, identity\r\n\r\n{end_then_hidden}"),
            Rejected(400),
        ),
        (
            "Transfer-Encoding chunked, then a second line identity",
            format!(
                "{post}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n{end_then_hidden}"
            ),
            Rejected(400),
        ),
        (
            "Transfer-Encoding: xchunked with a Content-Length",
            format!(
                "{post}Transfer-Encoding: xchunked\r\nContent-Length: {m}\r\n\r\n{end_then_hidden}"
            ),
            Rejected(400),
        ),
        (
            "Transfer-Encoding value on an obs-fold line",
            format!(
                "{post}Transfer-Encoding:\r\n chunked\r\nContent-Length: {m}\r\n\r\n{end_then_hidden}"
            ),
            Rejected(400),
        ),
        (
            "a space before the colon of Transfer-Encoding",
            format!(
                "{post}Transfer-Encoding : chunked\r\nContent-Length: {m}\r\n\r\n{end_then_hidden}"
            ),
            Rejected(400),
        ),
        (
            "a header line that starts with a space",
            format!(
                "{post} Transfer-Encoding: chunked\r\nContent-Length: {m}\r\n\r\n{end_then_hidden}"
            ),
            Rejected(400),
        ),
        // Spaces and tabs around a field value are optional whitespace (RFC 9110 §5.5):
        // still `chunked`, so one request whose body is the hidden text.
        (
            "Transfer-Encoding with a tab and spaces before chunked",
            format!("{post}Transfer-Encoding:\t  chunked \r\n\r\n{chunked_hidden}"),
            Whole(HIDDEN),
        ),
        (
            "Transfer-Encoding on HTTP/1.0",
            format!(
                "POST {{p}} HTTP/1.0\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n{end_then_hidden}"
            ),
            Rejected(400),
        ),
        (
            "a chunk size that overflows",
            format!(
                "{post}Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\n{h}\r\n0\r\n\r\n"
            ),
            Rejected(400),
        ),
        (
            "a chunk size that is not hex",
            format!("{post}Transfer-Encoding: chunked\r\n\r\nzz\r\n{h}\r\n0\r\n\r\n"),
            Rejected(400),
        ),
        (
            "a chunk with more data than its size",
            format!("{post}Transfer-Encoding: chunked\r\n\r\n3\r\n{h}\r\n0\r\n\r\n"),
            Rejected(400),
        ),
        (
            "bare LF line endings",
            "GET {p} HTTP/1.1\nHost: a.test\n\n".to_owned(),
            Whole(""),
        ),
        (
            "bare CR line endings",
            format!("GET {{p}} HTTP/1.1\rHost: a.test\r\r{h}"),
            Rejected(400),
        ),
        (
            "a NUL byte in a header value",
            format!(
                "GET {{p}} HTTP/1.1\r\nHost: a.test\r\nX-A: a\0b\r\nContent-Length: {n}\r\n\r\n{h}"
            ),
            Rejected(400),
        ),
        (
            "a NUL byte in a header name",
            format!(
                "GET {{p}} HTTP/1.1\r\nHost: a.test\r\nX\0A: b\r\nContent-Length: {n}\r\n\r\n{h}"
            ),
            Rejected(400),
        ),
        (
            "two spaces in the request line",
            "GET  {p} HTTP/1.1\r\nHost: a.test\r\n\r\n".to_owned(),
            Rejected(400),
        ),
        // The target names another server: the request still goes to the route's upstream,
        // in origin-form.
        (
            "an absolute-form target for another server",
            "GET http://elsewhere.test{p} HTTP/1.1\r\nHost: a.test\r\n\r\n".to_owned(),
            Whole(""),
        ),
        (
            "a pipelined request inside a Content-Length body",
            format!("{post}Content-Length: {n}\r\n\r\n{h}"),
            Whole(HIDDEN),
        ),
        (
            "a pipelined request inside a chunked body",
            format!("{post}Transfer-Encoding: chunked\r\n\r\n{chunked_hidden}"),
            Whole(HIDDEN),
        ),
        (
            "a GET with a body holding a request",
            format!("GET {{p}} HTTP/1.1\r\nHost: a.test\r\nContent-Length: {n}\r\n\r\n{h}"),
            Whole(HIDDEN),
        ),
    ]
}

/// How many responses a raw reply holds (status lines at the start or after a head).
fn responses(raw: &str) -> usize {
    raw.match_indices("HTTP/1.1 ")
        .filter(|(i, _)| *i == 0 || raw[..*i].ends_with("\r\n\r\n") || raw[..*i].ends_with("ok"))
        .count()
}

fn status(raw: &str) -> Option<u16> {
    raw.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// Sends one row's payload and checks the client's answer and what the upstream saw;
/// returns what went wrong, if anything.
async fn probe(
    g: &TestGateway,
    log: &Log,
    row: usize,
    name: &str,
    payload: &str,
    expect: Expect,
) -> Result<(), String> {
    let path = format!("/row-{row}");
    let payload = payload.replace("{p}", &path);
    let mut stream = TcpStream::connect(g.addr).await.unwrap();
    stream.write_all(payload.as_bytes()).await.unwrap();
    // Long enough for a kept-alive connection to show a second response, if any.
    let (raw, closed) = read_until_close(&mut stream, Duration::from_millis(1500)).await;
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let seen: Vec<Seen> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.target == path || s.target.contains("smuggled"))
        .cloned()
        .collect();
    let method = payload.split(' ').next().unwrap_or_default();
    let fail = |why: &str| {
        Err(format!(
            "row {row} ({name}): {why}; reply {raw:?}, upstream saw {seen:?}"
        ))
    };
    if seen.iter().any(|s| s.target.contains("smuggled")) {
        return fail("the hidden request reached the upstream");
    }
    if responses(&raw) != 1 {
        return fail("expected exactly one response");
    }
    let (body, must_close) = match expect {
        Expect::Rejected(code) if status(&raw) != Some(code) => {
            return fail(&format!("expected {code}"));
        }
        Expect::Rejected(_) if seen.iter().any(|s| s.body.is_some()) => {
            return fail("a rejected request reached the upstream whole");
        }
        Expect::Rejected(_) if !closed => return fail("the connection stayed open"),
        Expect::Rejected(_) => return Ok(()),
        Expect::Whole(body) => (body, false),
        Expect::WholeThenClosed(body) => (body, true),
    };
    if status(&raw) != Some(200) {
        return fail("expected 200");
    }
    if seen.len() != 1 || seen[0].target != path || seen[0].method != method {
        return fail("expected one origin-form upstream request");
    }
    if seen[0].body.as_deref() != Some(body.as_bytes()) {
        return fail(&format!("expected the upstream body {body:?}"));
    }
    if must_close && !(closed && raw.contains("connection: close\r\n")) {
        return fail("expected the gateway to close the connection after answering");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_smuggling_payload_reaches_the_upstream_as_a_second_request() {
    let (up, log) = recording_upstream().await;
    let yaml = config(
        &[],
        &[route("r", "*", "/", "up", "5s", "")],
        &[upstream("up", &[up], "", "")],
    );
    let g = start(&yaml).await;
    let rows = table();
    // Concurrently, each on its own connection and path: the 1.5 s read window per row
    // would otherwise add up.
    let probes = rows
        .iter()
        .enumerate()
        .map(|(i, (name, payload, expect))| probe(&g, &log, i, name, payload, expect.clone()));
    let failures: Vec<String> = futures_util::future::join_all(probes)
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}
