pub mod dlq;
pub mod eval;
pub mod format_schema;
pub mod map;
pub mod schema;
pub mod test;
pub mod validate;
