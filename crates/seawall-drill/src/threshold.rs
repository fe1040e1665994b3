//! Thresholds: the pass/fail rules of a drill, parsed from text ([`parse`]) and evaluated
//! over windows of the recorded run ([`eval`]).

pub mod eval;
pub mod parse;

pub use parse::{ParseError, Rule};
