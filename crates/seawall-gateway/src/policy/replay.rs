//! Keeping a request so it can be sent more than once: by a retry, or to the route's
//! fallback upstream.
//!
//! A request without a body is kept as its head. A request with a body is kept only when
//! the body fits under the route's `retry.buffer_body_max`: it is read frame by frame
//! until it ends (kept, as one `Bytes`) or passes the cap (not kept: the frames read so far
//! are sent first, then the rest streams, and the request can be sent once). A body whose
//! `content-length` already says it is over the cap is not read at all. Only requests
//! that may be sent again are read ahead ([`prepare`]'s `wanted`), so a POST on a route
//! without the opt-in streams as before.
//!
//! Reading ahead costs the wait for the whole (small) body before the first try, which is
//! what makes a retry of it possible (linkerd does the same, with the same 64 KiB
//! default). Data frames are joined once into one `Bytes` (no copy for a body that came in
//! one frame); each send clones that `Bytes`, a reference count, not the data.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, Request, Uri, Version, header};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use seawall_core::{Body, BoxError, ErrorKind, GatewayError};

/// Why a request cannot be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotKept {
    /// The body was over `buffer_body_max` (by its `content-length` or as it was read).
    BodyTooLarge,
    /// Nothing may send the request again (no policy wants it, or its method is not sent
    /// twice on this route), or it has a body and buffering is off.
    BodyStreamed,
}

impl NotKept {
    /// The reason, as counted and logged (`retry_skipped=<reason>`).
    pub const fn reason(self) -> &'static str {
        match self {
            NotKept::BodyTooLarge => "body_too_large",
            NotKept::BodyStreamed => "body_not_replayable",
        }
    }
}

/// A request kept to be sent again: its head, and its body if it had one.
pub struct Replay {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
    body: Option<(Bytes, Option<HeaderMap>)>,
}

impl Replay {
    /// A fresh copy of the request.
    pub fn build(&self) -> Request<Body> {
        let body = match &self.body {
            None => Body::default(),
            Some((data, trailers)) => Buffered {
                data: Some(data.clone()).filter(|d| !d.is_empty()),
                trailers: trailers.clone(),
            }
            .boxed(),
        };
        let mut req = Request::new(body);
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.version_mut() = self.version;
        *req.headers_mut() = self.headers.clone();
        req
    }

    /// The request's method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// Bytes of body held.
    pub fn body_len(&self) -> usize {
        self.body.as_ref().map_or(0, |(d, _)| d.len())
    }
}

/// Makes `req` ready to be sent, kept for sending again when possible. `wanted`: something
/// may send it again (a body is only read ahead then); `cap`: the most body bytes held.
/// Fails only when the client's body fails while being read (its own classified error).
pub async fn prepare(
    req: Request<Body>,
    wanted: bool,
    cap: u64,
) -> Result<(Request<Body>, Result<Replay, NotKept>), GatewayError> {
    let head = |parts: &http::request::Parts| Replay {
        method: parts.method.clone(),
        uri: parts.uri.clone(),
        version: parts.version,
        headers: parts.headers.clone(),
        body: None,
    };
    // Nothing to keep for: not even the head is copied (the common, hot case).
    if !wanted {
        return Ok((req, Err(NotKept::BodyStreamed)));
    }
    if req.body().is_end_stream() {
        let (parts, body) = req.into_parts();
        let replay = head(&parts);
        let req = Request::from_parts(parts, body);
        return Ok((req, Ok(replay)));
    }
    if cap == 0 {
        return Ok((req, Err(NotKept::BodyStreamed)));
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > cap) || req.body().size_hint().lower() > cap {
        return Ok((req, Err(NotKept::BodyTooLarge)));
    }
    let (parts, mut body) = req.into_parts();
    let mut frames: Vec<Bytes> = Vec::new();
    let mut held: u64 = 0;
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(client_body_error)?;
        match frame.into_data() {
            Ok(data) => {
                held += data.len() as u64;
                frames.push(data);
                if held > cap {
                    // Over the cap: send what was read, then the rest, once.
                    let prefix = Prefixed {
                        frames: frames.into_iter(),
                        rest: body,
                    }
                    .boxed();
                    return Ok((
                        Request::from_parts(parts, prefix),
                        Err(NotKept::BodyTooLarge),
                    ));
                }
            }
            Err(frame) => {
                if let Ok(t) = frame.into_trailers() {
                    trailers = Some(t);
                }
            }
        }
    }
    let data = match frames.len() {
        0 => Bytes::new(),
        1 => frames.pop().unwrap_or_default(),
        _ => {
            let mut joined = BytesMut::with_capacity(usize::try_from(held).unwrap_or(0));
            for f in &frames {
                joined.extend_from_slice(f);
            }
            joined.freeze()
        }
    };
    let mut replay = head(&parts);
    replay.body = Some((data, trailers));
    let req = replay.build();
    Ok((req, Ok(replay)))
}

/// The client's body failed while read ahead: its own classified error (read timeout,
/// over `max_body_bytes`), or the client went away.
fn client_body_error(e: BoxError) -> GatewayError {
    match e.downcast::<GatewayError>() {
        Ok(e) => *e,
        Err(e) => GatewayError::new(ErrorKind::ClientClosed, format!("request body failed: {e}")),
    }
}

/// A body held in memory: one data frame and the trailers, if any.
struct Buffered {
    data: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl HttpBody for Buffered {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(data) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

pin_project_lite::pin_project! {
    /// The frames read ahead, then the rest of the body.
    struct Prefixed {
        frames: std::vec::IntoIter<Bytes>,
        #[pin]
        rest: Body,
    }
}

impl HttpBody for Prefixed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        if let Some(data) = this.frames.next() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        this.rest.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.frames.len() == 0 && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let held: u64 = self.frames.as_slice().iter().map(|f| f.len() as u64).sum();
        let rest = self.rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower() + held);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + held);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt, StreamBody};

    use super::*;

    fn streamed(chunks: &[&'static str], length: Option<usize>) -> Request<Body> {
        let frames: Vec<Result<Frame<Bytes>, BoxError>> = chunks
            .iter()
            .map(|c| Ok(Frame::data(Bytes::from_static(c.as_bytes()))))
            .collect();
        let body = StreamBody::new(futures_util::stream::iter(frames)).boxed();
        let mut req = Request::post("/upload").body(body).unwrap();
        if let Some(len) = length {
            req.headers_mut()
                .insert(header::CONTENT_LENGTH, len.to_string().parse().unwrap());
        }
        req
    }

    async fn text(req: Request<Body>) -> String {
        let bytes = req.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_body_under_the_cap_is_kept_and_every_copy_carries_it_whole() {
        let (req, kept) = prepare(streamed(&["hello ", "world"], None), true, 64)
            .await
            .unwrap();
        let replay = kept.unwrap();
        assert_eq!(replay.body_len(), 11);
        assert_eq!(text(req).await, "hello world");
        assert_eq!(text(replay.build()).await, "hello world");
        assert_eq!(text(replay.build()).await, "hello world");
        assert_eq!(replay.build().body().size_hint().exact(), Some(11));
    }

    #[tokio::test]
    async fn a_body_exactly_at_the_cap_is_kept_one_byte_more_is_not() {
        let (_, kept) = prepare(streamed(&["abcd"], None), true, 4).await.unwrap();
        assert!(kept.is_ok());
        let (req, kept) = prepare(streamed(&["abc", "de", "f"], None), true, 4)
            .await
            .unwrap();
        assert_eq!(kept.err(), Some(NotKept::BodyTooLarge));
        assert_eq!(
            text(req).await,
            "abcdef",
            "what was read ahead is sent first"
        );
    }

    #[tokio::test]
    async fn a_declared_length_over_the_cap_is_not_read_ahead() {
        let (req, kept) = prepare(streamed(&["abcdef"], Some(6)), true, 4)
            .await
            .unwrap();
        assert_eq!(kept.err(), Some(NotKept::BodyTooLarge));
        assert_eq!(text(req).await, "abcdef");
    }

    #[tokio::test]
    async fn nothing_is_read_ahead_unless_wanted_or_with_a_zero_cap() {
        for (wanted, cap) in [(false, 64), (true, 0)] {
            let (req, kept) = prepare(streamed(&["abc"], None), wanted, cap)
                .await
                .unwrap();
            assert_eq!(kept.err(), Some(NotKept::BodyStreamed));
            assert_eq!(text(req).await, "abc");
        }
    }

    #[tokio::test]
    async fn a_request_without_a_body_is_kept_whatever_the_cap_when_wanted() {
        let req = || Request::get("/").body(Body::default()).unwrap();
        let (_, kept) = prepare(req(), true, 0).await.unwrap();
        let replay = kept.unwrap();
        assert_eq!(replay.body_len(), 0);
        assert!(replay.build().body().is_end_stream());
        let (_, kept) = prepare(req(), false, 64).await.unwrap();
        assert_eq!(
            kept.err(),
            Some(NotKept::BodyStreamed),
            "not copied for nothing"
        );
    }

    #[tokio::test]
    async fn a_failing_client_body_fails_with_its_own_error() {
        let frames: Vec<Result<Frame<Bytes>, BoxError>> = vec![
            Ok(Frame::data(Bytes::from_static(b"ab"))),
            Err(Box::new(GatewayError::new(
                ErrorKind::BodyReadTimeout,
                "slow",
            ))),
        ];
        let body = StreamBody::new(futures_util::stream::iter(frames)).boxed();
        let req = Request::post("/").body(body).unwrap();
        let Err(e) = prepare(req, true, 64).await else {
            panic!("expected the body's error");
        };
        assert_eq!(e.kind, ErrorKind::BodyReadTimeout);
    }
}
