//! Retail functions available to mappings and step expressions, in JMESPath and Rhai alike.
//!
//! Each function is written once, as a Rust function over `serde_json::Value` arguments
//! ([`FUNCTIONS`]), and registered into both engines: [`register_jmespath`] adds them to the
//! JMESPath runtime, [`register_rhai`] to a Rhai engine. Reference tables for `lookup` come
//! from the project's `tables/` directory through [`with_tables`].
//!
//! The families live in their own files: [`money`] (exact decimals and currency minor units,
//! never through `f64`), [`coerce`] (platforms that send numbers and booleans as strings),
//! [`time`] (timestamps with offsets, epoch milliseconds, zone-less local times) and
//! [`lookup`] (reference tables). `docs/functions.md` documents every function with examples
//! that the test suite evaluates, so the documentation cannot drift from the code.
//!
//! An implementation returns its error message without the function name; both registrations
//! prefix it (`dec_add(): `abc` is not a decimal number`).

pub mod coerce;
pub mod lookup;
pub mod money;
pub mod time;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

pub use lookup::parse_csv;

/// A retail function: name, accepted argument counts, implementation.
pub struct FnDef {
    pub name: &'static str,
    pub min_args: usize,
    pub max_args: usize,
    pub call: fn(&[Value]) -> Result<Value, String>,
    /// One-line description for `docs/functions.md`.
    pub doc: &'static str,
}

/// Every retail function, in the order of `docs/functions.md`.
pub const FUNCTIONS: &[FnDef] = &[
    // money: exact decimals
    money::DEC,
    money::DEC_ADD,
    money::DEC_SUB,
    money::DEC_MUL,
    money::DEC_DIV,
    money::DEC_NEG,
    money::DEC_ABS,
    money::DEC_SUM,
    money::DEC_CMP,
    money::DEC_ROUND,
    money::DEC_FMT,
    // money: currencies
    money::MINOR_UNITS,
    money::TO_MINOR,
    money::FROM_MINOR,
    money::MONEY,
    // coercion
    coerce::TO_INT,
    coerce::TO_DECIMAL,
    coerce::TO_BOOL,
    coerce::ID_STR,
    coerce::BLANK_TO_NULL,
    // timestamps
    time::TS_UTC,
    time::TS_DATE,
    time::TS_MILLIS,
    // reference tables
    lookup::LOOKUP,
];

/// The function named `name`, if there is one.
pub fn find(name: &str) -> Option<&'static FnDef> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

/// Calls `def` as both engines do: checks the argument count, runs it, and prefixes an error
/// with the function's name.
pub fn call(def: &FnDef, args: &[Value]) -> Result<Value, String> {
    if args.len() < def.min_args || args.len() > def.max_args {
        return Err(arity_message(def, args.len()));
    }
    (def.call)(args).map_err(|m| format!("{}(): {m}", def.name))
}

fn arity_message(def: &FnDef, got: usize) -> String {
    format!(
        "{}() takes {} argument{}, got {got}",
        def.name,
        if def.min_args == def.max_args {
            def.min_args.to_string()
        } else {
            format!("{} to {}", def.min_args, def.max_args)
        },
        if def.max_args == 1 { "" } else { "s" },
    )
}

/// How a value is quoted in an error message: a string as its text, anything else as compact
/// JSON, both cut to a readable length.
pub(crate) fn show(v: &Value) -> String {
    let text = match v {
        Value::String(s) if s.is_empty() => "\"\"".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    const MAX: usize = 60;
    if text.chars().count() > MAX {
        let cut: String = text.chars().take(MAX).collect();
        format!("`{cut}…`")
    } else {
        format!("`{text}`")
    }
}

/// The JSON type of a value, for error messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

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
        runtime.register_function(
            def.name,
            Box::new(move |args: &[Value], _ctx: &mut jpx_core::Context<'_>| {
                call(def, args).map_err(|m| {
                    jpx_core::JmespathError::new("", 0, jpx_core::ErrorReason::Parse(m))
                })
            }),
        );
    }
}

/// Registers every function of [`FUNCTIONS`] into a Rhai engine (arguments and results go
/// through `rhai::serde`), one overload per accepted argument count, with the same names,
/// argument orders and error messages as in JMESPath. An error is a Rhai runtime error whose
/// value is the message, so `try { ... } catch (e) { ... }` sees the same text.
///
/// Parameters are `Dynamic` (any type). Rhai prefers an overload whose parameter types match
/// exactly, so a built-in such as `to_int(FLOAT)` (which truncates 1.5 to 1) would win over a
/// `Dynamic` one: one-argument functions are therefore also registered for each concrete
/// Rhai type, which shadows any built-in of the same name.
pub fn register_rhai(engine: &mut rhai::Engine) {
    use std::any::TypeId;
    let concrete_types = [
        TypeId::of::<rhai::INT>(),
        TypeId::of::<rhai::FLOAT>(),
        TypeId::of::<bool>(),
        TypeId::of::<char>(),
        TypeId::of::<rhai::ImmutableString>(),
        TypeId::of::<rhai::Array>(),
        TypeId::of::<rhai::Map>(),
        TypeId::of::<()>(),
    ];
    for def in FUNCTIONS {
        for arity in def.min_args..=def.max_args {
            let mut signatures = vec![vec![TypeId::of::<rhai::Dynamic>(); arity]];
            if arity == 1 {
                signatures.extend(concrete_types.iter().map(|t| vec![*t]));
            }
            for signature in signatures {
                engine.register_raw_fn(
                    def.name,
                    signature,
                    move |_ctx: rhai::NativeCallContext,
                          args: &mut [&mut rhai::Dynamic]|
                          -> Result<rhai::Dynamic, Box<rhai::EvalAltResult>> {
                        rhai_call(def, args)
                    },
                );
            }
        }
    }
}

fn rhai_call(
    def: &FnDef,
    args: &mut [&mut rhai::Dynamic],
) -> Result<rhai::Dynamic, Box<rhai::EvalAltResult>> {
    let runtime_error = |message: String| -> Box<rhai::EvalAltResult> {
        Box::new(rhai::EvalAltResult::ErrorRuntime(
            message.into(),
            rhai::Position::NONE,
        ))
    };
    let mut values = Vec::with_capacity(args.len());
    for (i, arg) in args.iter().enumerate() {
        let value = rhai::serde::from_dynamic::<Value>(arg).map_err(|e| {
            runtime_error(format!(
                "{}(): argument {} (a {}) is not a JSON value: {e}",
                def.name,
                i + 1,
                arg.type_name()
            ))
        })?;
        values.push(value);
    }
    let out = call(def, &values).map_err(runtime_error)?;
    rhai::serde::to_dynamic(&out).map_err(|e| {
        runtime_error(format!(
            "{}(): result not representable in Rhai: {e}",
            def.name
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_unique_snake_case_and_not_jmespath_builtins() {
        let mut seen = std::collections::BTreeSet::new();
        for def in FUNCTIONS {
            assert!(seen.insert(def.name), "{} registered twice", def.name);
            assert!(
                def.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{}",
                def.name
            );
            assert!(!JMESPATH_BUILTINS.contains(&def.name), "{}", def.name);
            assert!(
                def.min_args >= 1 && def.min_args <= def.max_args,
                "{}",
                def.name
            );
        }
        assert_eq!(find("dec_add").map(|f| f.max_args), Some(2));
        assert!(find("dec_plus").is_none());
    }

    #[test]
    fn call_checks_arity_and_prefixes_errors() {
        let dec_round = find("dec_round").expect("registered");
        assert_eq!(
            call(dec_round, &[json!("1")]),
            Err("dec_round() takes 2 to 3 arguments, got 1".to_string())
        );
        let dec = find("dec").expect("registered");
        assert_eq!(
            call(dec, &[]),
            Err("dec() takes 1 argument, got 0".to_string())
        );
        assert_eq!(
            call(dec, &[json!("x")]),
            Err("dec(): `x` is not a decimal number".to_string())
        );
        assert_eq!(call(dec, &[json!("1.50")]), Ok(json!("1.50")));
    }

    #[test]
    fn values_are_quoted_readably() {
        assert_eq!(show(&json!("abc")), "`abc`");
        assert_eq!(show(&json!("")), "`\"\"`");
        assert_eq!(show(&json!(null)), "`null`");
        assert_eq!(show(&json!({"a": 1})), "`{\"a\":1}`");
        let long = show(&json!("é".repeat(100)));
        assert_eq!(long.chars().count(), 60 + 3, "{long}");
        assert!(long.ends_with("…`"));
    }

    /// Rhai built-ins that share a name with one of ours, found by calling each name on a plain
    /// engine with arguments of every common type. Each must be shadowed by `register_rhai`
    /// (one-argument overloads per concrete type); this list changes only on purpose.
    #[test]
    fn rhai_builtin_collisions_are_known_and_shadowed() {
        let samples = ["1", "1.5", "true", "'c'", "\"s\"", "[1]", "#{a: 1}", "()"];
        let plain = rhai::Engine::new();
        let mut collisions = Vec::new();
        for def in FUNCTIONS {
            for arity in def.min_args..=def.max_args {
                let combos: Vec<String> = if arity == 1 {
                    samples.iter().map(|s| s.to_string()).collect()
                } else {
                    samples.iter().map(|s| vec![*s; arity].join(", ")).collect()
                };
                for args in combos {
                    let script = format!("{}({args})", def.name);
                    match plain.eval::<rhai::Dynamic>(&script) {
                        Err(e) if matches!(*e, rhai::EvalAltResult::ErrorFunctionNotFound(..)) => {}
                        _ => collisions.push(script),
                    }
                }
            }
        }
        assert_eq!(collisions, vec!["to_int(1)", "to_int(1.5)", "to_int('c')"]);
        let engine = crate::expr::rhai_engine();
        let e = engine
            .eval::<rhai::Dynamic>("to_int(1.5)")
            .expect_err("ours, not the truncating built-in");
        assert!(
            e.to_string()
                .contains("to_int(): `1.5` is not a whole number"),
            "{e}"
        );
        assert_eq!(engine.eval::<rhai::INT>("to_int('7')").ok(), Some(7));
    }
}
