//! Shared vocabulary of Seawall.
//!
//! Every other crate speaks in these terms: the [`ErrorKind`] a failure is classified as
//! where it arises, the [`Body`] type that flows through the gateway, and the [`deadline`]
//! header formats used to receive and propagate a request's time budget.
//!
//! Invariant: this crate knows nothing of config files, listeners or metrics registries;
//! it is plain types so that the pool, the policies and the gateway can share them.

pub mod deadline;
mod error_kind;

pub use error_kind::{ErrorKind, GatewayError};

/// Boxed error used inside bodies and between layers.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The body type that flows through the gateway, in both directions.
///
/// One boxed, type-erased body per message keeps the chain free of generics, so that
/// layers can be assembled from config at run time (see ARCHITECTURE.md).
pub type Body = http_body_util::combinators::BoxBody<bytes::Bytes, BoxError>;

/// Name of the response header that carries the machine-readable [`ErrorKind`] reason.
pub const ERROR_HEADER: &str = "seawall-error";
