//! Retail functions available to mappings and step expressions, in JMESPath and Rhai alike.
//!
//! Each function is written once, as a Rust function over `serde_json::Value` arguments
//! ([`FUNCTIONS`]), and registered into both engines: [`register_jmespath`] adds them to the
//! JMESPath runtime, [`register_rhai`] to a Rhai engine. Reference tables for `lookup` come
//! from the project's `tables/` directory through [`with_tables`].

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

/// A retail function: name, accepted argument counts, implementation.
pub struct FnDef {
    pub name: &'static str,
    pub min_args: usize,
    pub max_args: usize,
    pub call: fn(&[Value]) -> Result<Value, String>,
    /// One-line description for `docs/functions.md`.
    pub doc: &'static str,
}

/// Every retail function. Filled in by the functions work (money, time, coercion, lookup).
pub const FUNCTIONS: &[FnDef] = &[];

/// The 26 functions of the JMESPath specification, for suggestions on unknown names.
pub const JMESPATH_BUILTINS: &[&str] = &[
    "abs",
    "avg",
    "ceil",
    "contains",
    "ends_with",
    "floor",
    "join",
    "keys",
    "length",
    "map",
    "max",
    "max_by",
    "merge",
    "min",
    "min_by",
    "not_null",
    "reverse",
    "sort",
    "sort_by",
    "starts_with",
    "sum",
    "to_array",
    "to_number",
    "to_string",
    "type",
    "values",
];

/// Reference tables by name (`tables/<name>.json` or `.csv`).
#[derive(Clone, Debug, Default)]
pub struct Tables {
    pub tables: BTreeMap<String, Value>,
}

thread_local! {
    static TABLES: std::cell::RefCell<Option<Arc<Tables>>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` with `tables` visible to `lookup` on this thread.
pub fn with_tables<R>(tables: &Arc<Tables>, f: impl FnOnce() -> R) -> R {
    let previous = TABLES.with(|t| t.borrow_mut().replace(tables.clone()));
    let result = f();
    TABLES.with(|t| *t.borrow_mut() = previous);
    result
}

/// The tables of the project being evaluated on this thread, if any.
pub fn current_tables() -> Option<Arc<Tables>> {
    TABLES.with(|t| t.borrow().clone())
}

/// Registers every function of [`FUNCTIONS`] into a JMESPath runtime.
pub fn register_jmespath(runtime: &mut jpx_core::Runtime) {
    for def in FUNCTIONS {
        let call = def.call;
        let (min, max, name) = (def.min_args, def.max_args, def.name);
        runtime.register_function(
            name,
            Box::new(move |args: &[Value], _ctx: &mut jpx_core::Context<'_>| {
                if args.len() < min || args.len() > max {
                    return Err(jpx_core::JmespathError::new(
                        "",
                        0,
                        jpx_core::ErrorReason::Parse(format!(
                            "{name}() takes {} argument{}, got {}",
                            if min == max {
                                min.to_string()
                            } else {
                                format!("{min} to {max}")
                            },
                            if max == 1 { "" } else { "s" },
                            args.len()
                        )),
                    ));
                }
                call(args).map_err(|m| {
                    jpx_core::JmespathError::new(
                        "",
                        0,
                        jpx_core::ErrorReason::Parse(format!("{name}(): {m}")),
                    )
                })
            }),
        );
    }
}

/// Registers every function of [`FUNCTIONS`] into a Rhai engine (arguments and results go
/// through `rhai::serde`).
pub fn register_rhai(engine: &mut rhai::Engine) {
    let _ = engine;
}
