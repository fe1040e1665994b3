//! The HTTP API, Toxiproxy's routes and answers:
//!
//! - `GET /proxies`: every proxy with its toxics, as an object keyed by name.
//! - `POST /proxies`: create (201); 409 if the name is taken.
//! - `POST /populate`: create or replace many (201, `{"proxies": [...]}`).
//! - `GET /proxies/{p}`, `POST|PATCH /proxies/{p}` (update), `DELETE /proxies/{p}` (204).
//! - `GET /proxies/{p}/toxics`, `POST /proxies/{p}/toxics` (create, 200 as Toxiproxy).
//! - `GET /proxies/{p}/toxics/{t}`, `POST|PATCH .../{t}` (update), `DELETE .../{t}` (204).
//! - `POST /reset` (204): every proxy enabled, every toxic removed.
//! - `GET /version`, `GET /metrics`.
//!
//! Requests whose `User-Agent` starts with `Mozilla/` get 403, so that a web page cannot
//! drive the API from a browser. Bodies are read as JSON whatever their content type, as
//! Toxiproxy's Go decoder does.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

use crate::collection::{Collection, NewProxy, ProxyUpdate};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::proxy::{Proxy, ProxyView};
use crate::toxic::{NewToxic, ToxicUpdate};

/// What the handlers share.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) proxies: Arc<Mutex<Collection>>,
    pub(crate) metrics: Arc<Metrics>,
}

type Shared = State<Arc<AppState>>;
type ApiResult = Result<Response, ApiError>;

/// The API's routes.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/reset", post(reset))
        .route("/proxies", get(list).post(create))
        .route("/populate", post(populate))
        .route(
            "/proxies/{proxy}",
            get(show).post(update).patch(update).delete(remove),
        )
        .route("/proxies/{proxy}/toxics", get(toxics).post(add_toxic))
        .route(
            "/proxies/{proxy}/toxics/{toxic}",
            get(show_toxic)
                .post(update_toxic)
                .patch(update_toxic)
                .delete(remove_toxic),
        )
        .route("/version", get(version))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn(refuse_browsers))
        .with_state(state)
}

async fn refuse_browsers(request: Request, next: Next) -> Response {
    let browser = request
        .headers()
        .get(header::USER_AGENT)
        .is_some_and(|ua| ua.as_bytes().starts_with(b"Mozilla/"));
    if browser {
        return (StatusCode::FORBIDDEN, "User agent not allowed\n").into_response();
    }
    next.run(request).await
}

/// A JSON answer.
pub(crate) fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn to_json(status: StatusCode, value: &impl Serialize) -> ApiResult {
    let body = serde_json::to_string(value).map_err(ApiError::internal)?;
    Ok(json(status, body))
}

/// Reads the first JSON value of a body (trailing bytes are ignored, as Go's decoder
/// does); an empty body is `EOF`, as Toxiproxy says.
pub(crate) fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    match serde_json::Deserializer::from_slice(body)
        .into_iter::<T>()
        .next()
    {
        Some(Ok(value)) => Ok(value),
        Some(Err(error)) if error.is_eof() => Err(ApiError::bad_body("EOF")),
        Some(Err(error)) => Err(ApiError::bad_body(error)),
        None => Err(ApiError::bad_body("EOF")),
    }
}

fn views<'a>(proxies: impl Iterator<Item = &'a Proxy>) -> Vec<ProxyView<'a>> {
    proxies.map(Proxy::view).collect()
}

async fn list(State(state): Shared) -> ApiResult {
    let proxies = state.proxies.lock().await;
    let map: std::collections::BTreeMap<&str, ProxyView<'_>> = proxies
        .proxies()
        .map(|p| (p.name.as_str(), p.view()))
        .collect();
    to_json(StatusCode::OK, &map)
}

async fn create(State(state): Shared, body: Bytes) -> ApiResult {
    let input: NewProxy = decode(&body)?;
    let mut proxies = state.proxies.lock().await;
    let proxy = proxies.create(input).await?;
    to_json(StatusCode::CREATED, &proxy.view())
}

async fn populate(State(state): Shared, body: Bytes) -> ApiResult {
    #[derive(Serialize)]
    struct Populated<'a> {
        #[serde(flatten, skip_serializing_if = "Option::is_none")]
        error: Option<ApiError>,
        proxies: Vec<ProxyView<'a>>,
    }
    let input: Vec<NewProxy> = decode(&body)?;
    let mut proxies = state.proxies.lock().await;
    let (names, error) = proxies.populate(input).await;
    let status = error
        .as_ref()
        .map_or(StatusCode::CREATED, ApiError::status_code);
    let done = views(names.iter().filter_map(|n| proxies.get(n).ok()));
    let body = Populated {
        error,
        proxies: done,
    };
    to_json(status, &body)
}

async fn show(State(state): Shared, Path(name): Path<String>) -> ApiResult {
    let proxies = state.proxies.lock().await;
    to_json(StatusCode::OK, &proxies.get(&name)?.view())
}

async fn update(State(state): Shared, Path(name): Path<String>, body: Bytes) -> ApiResult {
    let mut proxies = state.proxies.lock().await;
    proxies.get(&name)?;
    let input: ProxyUpdate = decode(&body)?;
    let proxy = proxies.update(&name, input).await?;
    to_json(StatusCode::OK, &proxy.view())
}

async fn remove(State(state): Shared, Path(name): Path<String>) -> ApiResult {
    state.proxies.lock().await.remove(&name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn toxics(State(state): Shared, Path(name): Path<String>) -> ApiResult {
    let proxies = state.proxies.lock().await;
    to_json(StatusCode::OK, &proxies.get(&name)?.toxics())
}

async fn add_toxic(State(state): Shared, Path(name): Path<String>, body: Bytes) -> ApiResult {
    let mut proxies = state.proxies.lock().await;
    proxies.get(&name)?;
    let input: NewToxic = decode(&body)?;
    let toxic = proxies.add_toxic(&name, input)?;
    to_json(StatusCode::OK, &toxic)
}

async fn show_toxic(
    State(state): Shared,
    Path((name, toxic)): Path<(String, String)>,
) -> ApiResult {
    let proxies = state.proxies.lock().await;
    let toxic = proxies
        .get(&name)?
        .toxic(&toxic)
        .ok_or_else(ApiError::toxic_not_found)?;
    to_json(StatusCode::OK, toxic)
}

async fn update_toxic(
    State(state): Shared,
    Path((name, toxic)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let mut proxies = state.proxies.lock().await;
    proxies
        .get(&name)?
        .toxic(&toxic)
        .ok_or_else(ApiError::toxic_not_found)?;
    let input: ToxicUpdate = decode(&body)?;
    let updated = proxies.update_toxic(&name, &toxic, input)?;
    to_json(StatusCode::OK, &updated)
}

async fn remove_toxic(
    State(state): Shared,
    Path((name, toxic)): Path<(String, String)>,
) -> ApiResult {
    state.proxies.lock().await.remove_toxic(&name, &toxic)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn reset(State(state): Shared) -> ApiResult {
    state.proxies.lock().await.reset().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn version() -> Response {
    let body = format!("{{\"version\": \"{}\"}}\n", env!("CARGO_PKG_VERSION"));
    (
        [(header::CONTENT_TYPE, "application/json;charset=utf-8")],
        body,
    )
        .into_response()
}

async fn metrics(State(state): Shared) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}
