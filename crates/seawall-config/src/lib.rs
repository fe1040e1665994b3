//! Seawall's configuration: the typed model of the YAML file, its parsing with precise
//! diagnostics (file, line, column, key path, bad value, hint), semantic validation, and the
//! JSON Schema for editors and CI.
//!
//! Entry points: [`parse`] and [`load`] turn text into a validated [`Config`] or a
//! [`Diagnostics`] report listing every problem; [`validate`] re-checks a typed config (e.g.
//! before a hot reload); [`warnings`] lists what a valid config probably does not mean
//! ([`parse_with_warnings`] and [`load_with_warnings`] locate them); [`schema`] is the JSON
//! Schema; [`parse_located`] keeps the source so later reports on a valid config (the
//! resilience score) can be located too; [`redact`] hides credentials before a config or a diagnostic is shown;
//! [`DEFAULT_CONFIG`] is the embedded starting config.
//!
//! Invariant: this is the only crate that knows the config file format. Runtime crates get
//! the validated [`Config`] and never parse text themselves.

pub mod chaos;
mod diagnostic;
pub mod fault;
mod locate;
pub mod model;
mod parse;
pub mod policy;
pub mod rate_limit;
pub mod redact;
mod repair;
mod schema;
mod shape;
pub mod slo;
mod source;
mod suggest;
pub mod units;
mod validate;

pub use chaos::*;
pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use fault::*;
pub use model::*;
pub use parse::{load, load_with_warnings, parse, parse_with_warnings};
pub use policy::*;
pub use rate_limit::*;
pub use schema::schema;
pub use slo::{LatencySlo, Objective, SloConfig};
pub use source::{Located, Source, load_located, parse_located};
pub use units::{ByteSize, HumanDuration};
pub use validate::{Problem, route_names, validate, validate_runtime_fault, warnings};

/// The embedded default config (`crates/seawall-config/default.yaml`): a gateway on
/// 127.0.0.1:8080 in front of the in-process sim upstream. It is what `seawall` runs without a
/// config file, and what a newcomer reads first.
pub const DEFAULT_CONFIG: &str = include_str!("../default.yaml");

/// The file name diagnostics use for [`DEFAULT_CONFIG`].
pub const DEFAULT_CONFIG_NAME: &str = "<default config>";

/// [`DEFAULT_CONFIG`], parsed and validated.
pub fn default_config() -> Config {
    // The embedded default is covered by a test, so failing here is a build defect, not a
    // user error.
    parse(DEFAULT_CONFIG_NAME, DEFAULT_CONFIG).expect("the embedded default config is valid")
}
