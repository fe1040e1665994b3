//! The report of one or more scored configs: [`text`] for people, [`json`] for scripts,
//! [`sarif`] (2.1.0) for code-scanning UIs.

pub mod json;
pub mod sarif;
pub mod text;
