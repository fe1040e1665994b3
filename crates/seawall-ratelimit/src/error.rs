//! The store error, shared by the Redis store and its stand-in in builds without Redis,
//! so callers match on one type whichever build they are in.

/// Why the store could not decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The breaker is open: Redis failed recently and was not asked.
    Skipped,
    /// No answer within the timeout (connect or response).
    Timeout,
    /// Redis answered with an error, or the connection failed.
    Failed(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Skipped => f.write_str("redis breaker open, not asked"),
            StoreError::Timeout => f.write_str("redis did not answer within the timeout"),
            StoreError::Failed(e) => write!(f, "redis error: {e}"),
        }
    }
}
