pub mod dlq;
pub mod eval;
pub mod format_schema;
pub mod map;
pub mod schema;
pub mod schema_diff;
pub mod test;
pub mod validate;
