//! The JSON Schema of the config file, for editors, CI and `seawall config schema`.
//!
//! It is generated from the typed model, so it cannot drift from what the parser accepts; the
//! structural check in [`crate::shape`] walks the same schema for the same reason.

use serde_json::Value;

use crate::Config;

/// The JSON Schema (draft 2020-12) of [`Config`].
pub fn schema() -> Value {
    schemars::schema_for!(Config).to_value()
}
