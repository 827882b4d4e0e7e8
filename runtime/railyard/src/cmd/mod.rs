pub mod eval;
pub mod format_schema;
pub mod schema;
pub mod validate;
