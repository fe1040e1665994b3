//! API errors: Toxiproxy's messages and status codes, and its body
//! `{"error": "...", "status": N}`.

use std::fmt;
use std::net::SocketAddr;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error the API answers with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApiError {
    #[serde(rename = "error")]
    pub message: String,
    pub status: u16,
}

impl ApiError {
    fn new(message: impl Into<String>, status: StatusCode) -> Self {
        Self {
            message: message.into(),
            status: status.as_u16(),
        }
    }

    /// `bad request body: <why>` (400).
    pub fn bad_body(why: impl fmt::Display) -> Self {
        Self::new(format!("bad request body: {why}"), StatusCode::BAD_REQUEST)
    }

    /// `missing required field: <field>` (400).
    pub fn missing_field(field: impl fmt::Display) -> Self {
        Self::new(
            format!("missing required field: {field}"),
            StatusCode::BAD_REQUEST,
        )
    }

    pub fn proxy_not_found() -> Self {
        Self::new("proxy not found", StatusCode::NOT_FOUND)
    }

    pub fn proxy_exists() -> Self {
        Self::new("proxy already exists", StatusCode::CONFLICT)
    }

    pub fn invalid_stream() -> Self {
        Self::new(
            "stream was invalid, can be either upstream or downstream",
            StatusCode::BAD_REQUEST,
        )
    }

    pub fn invalid_toxic_type() -> Self {
        Self::new("invalid toxic type", StatusCode::BAD_REQUEST)
    }

    pub fn toxic_exists() -> Self {
        Self::new("toxic already exists", StatusCode::CONFLICT)
    }

    pub fn toxic_not_found() -> Self {
        Self::new("toxic not found", StatusCode::NOT_FOUND)
    }

    /// Any other bad input (400).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(message, StatusCode::BAD_REQUEST)
    }

    /// A listener that cannot be bound: 409 when the address is taken, else 400.
    /// (Toxiproxy answers 500 for both; it is the caller's input that is at fault.)
    pub fn listen(addr: SocketAddr, error: &std::io::Error) -> Self {
        let status = if error.kind() == std::io::ErrorKind::AddrInUse {
            StatusCode::CONFLICT
        } else {
            StatusCode::BAD_REQUEST
        };
        Self::new(format!("listen tcp {addr}: bind: {error}"), status)
    }

    /// Something that should not fail did (500).
    pub fn internal(error: impl fmt::Display) -> Self {
        Self::new(error.to_string(), StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub(crate) fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_string(&self).unwrap_or_default();
        crate::api::json(self.status_code(), body)
    }
}
