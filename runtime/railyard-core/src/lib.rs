//! Railyard's core: the project model and everything that can be decided from files alone.
//!
//! Parse → validate → build: [`yaml`] turns text into spanned nodes, [`model`] gives them
//! types, [`project`] checks references and schema chains and compiles expressions into a
//! [`project::Project`]. Nothing in this crate opens a socket or touches the filesystem: file
//! contents come in through [`project::ProjectFiles`], so `railyard validate` provably reads
//! only the project, and tests build projects in memory.

pub mod delivery;
pub mod diag;
pub mod engine;
pub mod env;
pub mod expr;
pub mod functions;
pub mod json;
pub mod model;
pub mod project;
pub mod redact;
pub mod schema;
pub mod spanned;
pub mod suggest;
pub mod testing;
pub mod yaml;

pub use diag::{Code, Diagnostic, Severity, SourceText, Span};
pub use spanned::Spanned;
