//! A route's stale cache: the last good (2xx) answer to each GET/HEAD request, kept so the
//! fallback can replay it when the upstream fails.
//!
//! The body is captured while it streams to the client: each data frame is passed on at
//! once and a cheap clone of it (`Bytes` is reference counted) is kept aside, so the client
//! never waits for the cache. A body that grows past `max_body_bytes`, ends in an error, or
//! is dropped before its end (client gone) is not cached. The entry is stored when the body
//! ends.
//!
//! The cache is bounded by `max_entries` (the oldest entry is evicted first) and by age,
//! with RFC 5861 semantics: an entry is fresh for its freshness lifetime (the answer's
//! `Cache-Control: s-maxage` or `max-age`, else `max_age`), and may be served on error for
//! `stale_if_error` more (the answer's `stale-if-error`, else the config's); older, it is
//! never served and is dropped when met. The answer's own lifetime is capped at
//! `max_age`, and `must-revalidate` / `proxy-revalidate` leave no stale window. This is a
//! shared cache (RFC 9111 §3), and its key does not tell users or variants apart, so an
//! answer marked `no-store`, `private` or `no-cache`, one that sets a cookie or carries
//! `Vary`, and any answer to a request with `Authorization` is not kept. It lives in the
//! built route, so a config reload starts it empty. A replay carries the original status
//! (or the route's `status` override), the original headers, `Age`, and
//! `Cache-Status: seawall; fwd=stale` (RFC 9211).

use std::{
    collections::{BTreeMap, HashMap},
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll, ready},
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use pin_project_lite::pin_project;
use seawall_config::StaleCacheConfig;
use seawall_core::BoxError;
use tokio::time::Instant;

use crate::body::Outgoing;

/// The `Cache-Status` value of a replayed answer: cache `seawall`, forwarded because the
/// entry is stale (RFC 9211 §2.2: "fwd=stale"). Documented in `docs/policies.md`.
pub const CACHE_STATUS_STALE: &str = "seawall; fwd=stale";

static CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");

/// Method, host, path and query of a request: answers are only replayed for the same one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey(Arc<str>);

impl CacheKey {
    /// The key of `req`, or `None` unless it is a GET or HEAD without `Authorization`.
    ///
    /// An authorized request's answer is that user's: a shared cache must not hand it to
    /// anyone else (RFC 9111 §3.5), so such requests are neither stored nor replayed.
    pub fn of<B>(req: &Request<B>) -> Option<Self> {
        let method = req.method();
        if method != Method::GET && method != Method::HEAD {
            return None;
        }
        if req.headers().contains_key(header::AUTHORIZATION) {
            return None;
        }
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()))
            .unwrap_or("");
        let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
        Some(Self(format!("{method} {host}{target}").into()))
    }
}

/// A route's stale cache, shared with the bodies filling it.
pub struct StaleCache {
    store: Arc<Store>,
    status_override: Option<StatusCode>,
}

struct Store {
    max_entries: usize,
    max_body_bytes: usize,
    max_age: Duration,
    stale_if_error: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<CacheKey, Entry>,
    /// Insertion order (the oldest first), for eviction by age and by count.
    order: BTreeMap<u64, CacheKey>,
    next_seq: u64,
}

struct Entry {
    seq: u64,
    stored: Instant,
    /// Freshness lifetime plus the stale-if-error window: served on error while younger.
    servable: Duration,
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl StaleCache {
    /// An empty cache with `config`'s bounds; `status_override` replaces a replayed
    /// answer's status.
    pub fn new(config: &StaleCacheConfig, status_override: Option<StatusCode>) -> Self {
        Self {
            store: Arc::new(Store {
                max_entries: config.max_entries.max(1) as usize,
                max_body_bytes: usize::try_from(config.max_body_bytes.bytes())
                    .unwrap_or(usize::MAX),
                max_age: config.max_age.get(),
                stale_if_error: config.stale_if_error.get(),
                state: Mutex::new(State::default()),
            }),
            status_override,
        }
    }

    /// Wraps a 2xx answer's body so it is stored under `key` once it has streamed to the
    /// client complete; any other answer is returned untouched.
    pub fn remember(&self, key: CacheKey, resp: Response<Outgoing>) -> Response<Outgoing> {
        if !resp.status().is_success() {
            return resp;
        }
        let Some(servable) = servable_for(
            resp.headers(),
            self.store.max_age,
            self.store.stale_if_error,
        ) else {
            return resp;
        };
        let (parts, inner) = resp.into_parts();
        let mut headers = parts.headers.clone();
        // Hop-by-hop headers describe the original connection, not the answer.
        for h in [
            header::CONNECTION,
            header::TRANSFER_ENCODING,
            header::TE,
            header::TRAILER,
            header::UPGRADE,
        ] {
            headers.remove(h);
        }
        headers.remove("keep-alive");
        let pending = Pending {
            store: self.store.clone(),
            key,
            status: parts.status,
            headers,
            servable,
            chunks: Vec::new(),
            len: 0,
        };
        // An empty body (HEAD, 204, a known-empty body) may never be polled.
        if inner.is_end_stream() {
            pending.finish();
            return Response::from_parts(parts, inner);
        }
        let tee = Tee {
            inner,
            pending: Some(pending),
        };
        Response::from_parts(parts, Outgoing::Local { body: tee.boxed() })
    }

    /// The stored answer to the request keyed `key`, if it is still servable on error
    /// (fresh, or stale by no more than its stale-if-error window), marked as a stale
    /// replay.
    pub fn replay(&self, key: &CacheKey) -> Option<Response<Outgoing>> {
        let now = Instant::now();
        let (status, mut headers, body, age) = {
            let mut state = self
                .store
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let fresh = {
                let e = state.entries.get(key)?;
                let age = now.saturating_duration_since(e.stored);
                (age <= e.servable).then(|| (e.status, e.headers.clone(), e.body.clone(), age))
            };
            if fresh.is_none() {
                state.remove(key);
            }
            fresh?
        };
        headers.insert(
            CACHE_STATUS.clone(),
            HeaderValue::from_static(CACHE_STATUS_STALE),
        );
        headers.insert(header::AGE, HeaderValue::from(age.as_secs()));
        let mut resp = Response::new(Outgoing::text(body));
        *resp.status_mut() = self.status_override.unwrap_or(status);
        *resp.headers_mut() = headers;
        Some(resp)
    }
}

/// How long after it is stored an answer with `headers` may be served on error: its
/// freshness lifetime (`s-maxage`, else `max-age`, either capped at `max_age`; else
/// `max_age`) plus its stale-if-error window (`stale-if-error`, else `stale_if_error`;
/// none under `must-revalidate` or `proxy-revalidate`), RFC 9111 §4.2.1, §5.2.2 and
/// RFC 5861 §4.
///
/// `None`: the answer must not be kept. Either the answer forbids it (`no-store`,
/// `private`, `no-cache`: RFC 9111 §5.2.2), or it is personal or negotiated, and the key
/// (method, host, target) cannot tell users or variants apart: it sets a cookie, or it
/// carries `Vary`.
fn servable_for(
    headers: &HeaderMap,
    max_age: Duration,
    stale_if_error: Duration,
) -> Option<Duration> {
    if headers.contains_key(header::SET_COOKIE) || headers.contains_key(header::VARY) {
        return None;
    }
    let (mut s_maxage, mut maxage, mut window) = (None, None, None);
    let mut revalidate = false;
    for value in headers.get_all(header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let (name, arg) = match directive.split_once('=') {
                Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                None => (directive.trim(), None),
            };
            let secs = || {
                arg.and_then(|a| a.parse::<u64>().ok())
                    .map(Duration::from_secs)
            };
            if ["no-store", "private", "no-cache"]
                .iter()
                .any(|forbidden| name.eq_ignore_ascii_case(forbidden))
            {
                return None;
            } else if name.eq_ignore_ascii_case("must-revalidate")
                || name.eq_ignore_ascii_case("proxy-revalidate")
            {
                revalidate = true;
            } else if name.eq_ignore_ascii_case("s-maxage") {
                s_maxage = s_maxage.or(secs());
            } else if name.eq_ignore_ascii_case("max-age") {
                maxage = maxage.or(secs());
            } else if name.eq_ignore_ascii_case("stale-if-error") {
                window = window.or(secs());
            }
        }
    }
    // The configured `max_age` bounds what an upstream may ask for, so a year-long
    // `max-age` cannot keep an answer servable for a year.
    let fresh = s_maxage
        .or(maxage)
        .map_or(max_age, |asked| asked.min(max_age));
    if revalidate {
        return Some(fresh);
    }
    Some(fresh.saturating_add(window.unwrap_or(stale_if_error)))
}

impl State {
    fn remove(&mut self, key: &CacheKey) {
        if let Some(e) = self.entries.remove(key) {
            self.order.remove(&e.seq);
        }
    }
}

/// An answer being captured, stored when its body ends.
struct Pending {
    store: Arc<Store>,
    key: CacheKey,
    status: StatusCode,
    headers: HeaderMap,
    servable: Duration,
    chunks: Vec<Bytes>,
    len: usize,
}

impl Pending {
    /// Keeps a clone of `data`; false once the body is too large to cache.
    fn push(&mut self, data: &Bytes) -> bool {
        self.len = self.len.saturating_add(data.len());
        if self.len > self.store.max_body_bytes {
            return false;
        }
        self.chunks.push(data.clone());
        true
    }

    fn finish(self) {
        let body = match self.chunks.len() {
            0 => Bytes::new(),
            1 => self.chunks.into_iter().next().unwrap_or_default(),
            _ => {
                let mut b = BytesMut::with_capacity(self.len);
                for c in &self.chunks {
                    b.extend_from_slice(c);
                }
                b.freeze()
            }
        };
        let store = &self.store;
        let now = Instant::now();
        let mut state = store.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.remove(&self.key);
        // Insertion order is age order: drop the expired, then the oldest beyond the bound.
        while let Some((_, oldest)) = state.order.first_key_value() {
            let expired = state
                .entries
                .get(oldest)
                .is_none_or(|e| now.saturating_duration_since(e.stored) > e.servable);
            if !expired && state.entries.len() < store.max_entries {
                break;
            }
            let oldest = oldest.clone();
            state.remove(&oldest);
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        state.order.insert(seq, self.key.clone());
        state.entries.insert(
            self.key,
            Entry {
                seq,
                stored: now,
                servable: self.servable,
                status: self.status,
                headers: self.headers,
                body,
            },
        );
    }
}

pin_project! {
    /// Passes the body through frame by frame, keeping the data frames aside for the cache.
    struct Tee {
        #[pin]
        inner: Outgoing,
        pending: Option<Pending>,
    }
}

impl HttpBody for Tee {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let Some(data) = f.data_ref() {
                    let keep = this.pending.as_mut().is_some_and(|p| p.push(data));
                    if !keep {
                        *this.pending = None;
                    }
                }
                // hyper stops polling a body that says it has ended, so store now.
                let ended = this.inner.is_end_stream();
                if let Some(p) = this.pending.take_if(|_| ended) {
                    p.finish();
                }
            }
            Some(Err(_)) => *this.pending = None,
            None => {
                if let Some(p) = this.pending.take() {
                    p.finish();
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;
    use seawall_config::{ByteSize, HumanDuration};

    use super::*;

    fn cache(max_entries: u32) -> StaleCache {
        windowed(max_entries, 60, 0)
    }

    fn windowed(max_entries: u32, max_age: u64, stale_if_error: u64) -> StaleCache {
        let config = StaleCacheConfig {
            max_entries,
            max_body_bytes: ByteSize(1024),
            max_age: HumanDuration::from_secs(max_age),
            stale_if_error: HumanDuration::from_secs(stale_if_error),
        };
        StaleCache::new(&config, None)
    }

    async fn fill_with(cache: &StaleCache, path: &str, cache_control: &'static str) {
        let mut resp = Response::new(Outgoing::text("body"));
        resp.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(cache_control),
        );
        let _ = cache.remember(key(path), resp).into_body().collect().await;
    }

    #[tokio::test(start_paused = true)]
    async fn an_entry_is_served_until_max_age_plus_stale_if_error_and_never_after() {
        let c = windowed(8, 60, 30);
        fill(&c, "/a", "a").await;
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(replayed(&c, "/a").await.is_some(), "fresh until max_age");
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(
            replayed(&c, "/a").await.is_some(),
            "stale, within stale_if_error"
        );
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(replayed(&c, "/a").await, None, "past the window");
    }

    async fn fill_with_header(
        cache: &StaleCache,
        path: &str,
        name: HeaderName,
        value: &'static str,
    ) {
        let mut resp = Response::new(Outgoing::text("body"));
        resp.headers_mut()
            .insert(name, HeaderValue::from_static(value));
        let _ = cache.remember(key(path), resp).into_body().collect().await;
    }

    #[tokio::test(start_paused = true)]
    async fn personal_negotiated_and_no_cache_answers_are_not_kept() {
        let c = windowed(8, 60, 30);
        fill_with_header(&c, "/cookie", header::SET_COOKIE, "session=abc").await;
        fill_with_header(&c, "/vary", header::VARY, "Accept-Encoding").await;
        fill_with(&c, "/no-cache", "no-cache").await;
        for path in ["/cookie", "/vary", "/no-cache"] {
            assert_eq!(replayed(&c, path).await, None, "{path} was kept");
        }
        // A request with credentials has no key: neither stored nor replayed.
        let authorized = Request::get("/a")
            .header(header::HOST, "h")
            .header(header::AUTHORIZATION, "Bearer secret")
            .body(())
            .unwrap();
        assert_eq!(CacheKey::of(&authorized), None);
    }

    #[tokio::test(start_paused = true)]
    async fn must_revalidate_leaves_no_stale_window_and_max_age_caps_the_answers_lifetime() {
        let c = windowed(8, 60, 30);
        fill_with(&c, "/revalidate", "max-age=10, must-revalidate").await;
        fill_with(&c, "/year", "max-age=31536000").await;
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(replayed(&c, "/revalidate").await.is_some(), "fresh");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(
            replayed(&c, "/revalidate").await,
            None,
            "stale, must revalidate"
        );
        // 60 s (the configured max_age) + 30 s (stale_if_error), not a year.
        // (10.001 s have passed.)
        tokio::time::advance(Duration::from_secs(79)).await;
        assert!(
            replayed(&c, "/year").await.is_some(),
            "within max_age + window"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            replayed(&c, "/year").await,
            None,
            "capped at max_age + window"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_answers_own_cache_control_overrides_the_configured_lifetimes() {
        let c = windowed(8, 600, 0);
        fill_with(&c, "/a", "public, max-age=10, stale-if-error=5").await;
        fill_with(&c, "/b", "s-maxage=20, max-age=10").await;
        fill_with(&c, "/c", "no-store").await;
        fill_with(&c, "/d", "private, max-age=60").await;
        assert_eq!(replayed(&c, "/c").await, None, "no-store is not kept");
        assert_eq!(replayed(&c, "/d").await, None, "private is not kept");
        tokio::time::advance(Duration::from_secs(15)).await;
        assert!(
            replayed(&c, "/a").await.is_some(),
            "10s fresh + 5s stale-if-error"
        );
        assert!(
            replayed(&c, "/b").await.is_some(),
            "s-maxage wins over max-age"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(replayed(&c, "/a").await, None);
        tokio::time::advance(Duration::from_secs(4)).await;
        assert!(replayed(&c, "/b").await.is_some());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(replayed(&c, "/b").await, None);
    }

    fn key(path: &str) -> CacheKey {
        let req = Request::get(path).header("host", "h").body(()).unwrap();
        CacheKey::of(&req).unwrap()
    }

    /// Streams a 200 with `body` through the cache, as the client would read it.
    async fn fill(cache: &StaleCache, path: &str, body: &'static str) {
        let resp = Response::new(Outgoing::text(body));
        let got = cache.remember(key(path), resp).into_body().collect().await;
        assert_eq!(got.unwrap().to_bytes(), body, "passed through unchanged");
    }

    async fn replayed(cache: &StaleCache, path: &str) -> Option<Bytes> {
        let resp = cache.replay(&key(path))?;
        Some(resp.into_body().collect().await.unwrap().to_bytes())
    }

    #[tokio::test]
    async fn the_oldest_entry_is_evicted_when_the_cache_is_full() {
        let c = cache(2);
        fill(&c, "/a", "a").await;
        fill(&c, "/b", "b").await;
        fill(&c, "/a", "a2").await; // refreshing /a makes /b the oldest
        fill(&c, "/c", "c").await;
        assert_eq!(replayed(&c, "/a").await.as_deref(), Some(&b"a2"[..]));
        assert_eq!(replayed(&c, "/b").await, None);
        assert_eq!(replayed(&c, "/c").await.as_deref(), Some(&b"c"[..]));
    }

    #[test]
    fn only_get_and_head_have_a_key_and_the_query_is_part_of_it() {
        let post = Request::post("/a").body(()).unwrap();
        assert!(CacheKey::of(&post).is_none());
        let head = Request::head("/a").header("host", "h").body(()).unwrap();
        assert_ne!(CacheKey::of(&head), Some(key("/a")));
        assert_ne!(key("/a?x=1"), key("/a"));
    }

    #[tokio::test]
    async fn an_error_answer_is_not_cached() {
        let c = cache(4);
        let mut resp = Response::new(Outgoing::text("boom"));
        *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        let _ = c.remember(key("/a"), resp).into_body().collect().await;
        assert_eq!(replayed(&c, "/a").await, None);
    }
}
