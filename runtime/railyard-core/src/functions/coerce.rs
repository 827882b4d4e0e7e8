//! Coercion for platforms that send numbers, booleans and ids as strings (Square quantities
//! `"2"`, Amazon `IsGift: "false"`, Lightspeed R-Series where every scalar is a string) and
//! the reverse (Shopify's 64-bit integer ids).
//!
//! `null` is an error for every function here except `blank_to_null`: a missing field should
//! be handled on purpose (`field && to_int(field)` in JMESPath), not turned into 0 or false.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::Value;

use super::money::{decimal_value, number_to_decimal, parse_decimal, parse_decimal_str};
use super::{FnDef, show, type_name};

/// A whole number from an integer, an integral float (`2.0`) or an integral decimal string
/// (`"2"`, `"2.00"`, `" -1 "`), as an `i64`.
pub fn parse_int(v: &Value) -> Result<i64, String> {
    let d = match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                return Ok(i);
            }
            number_to_decimal(n)
        }
        Value::String(s) => parse_decimal_str(s),
        other => {
            return Err(format!(
                "{} is not an integer (got {})",
                show(other),
                type_name(other)
            ));
        }
    };
    let Some(d) = d else {
        return Err(format!("{} is not an integer", show(v)));
    };
    if !d.fract().is_zero() {
        return Err(format!("{} is not a whole number", show(v)));
    }
    d.to_i64()
        .ok_or_else(|| format!("{} does not fit a 64-bit integer", show(v)))
}

fn to_int(args: &[Value]) -> Result<Value, String> {
    parse_int(&args[0]).map(Value::from)
}

/// Like `dec`, and also accepts scientific notation in strings (`"1.5E+3"`, as spreadsheets
/// export it).
fn to_decimal(args: &[Value]) -> Result<Value, String> {
    if let Value::String(s) = &args[0] {
        let t = s.trim();
        if t.contains(['e', 'E']) && !t.contains(char::is_whitespace) {
            let mantissa_ok = t
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
            if mantissa_ok && let Ok(d) = Decimal::from_scientific(t) {
                return Ok(decimal_value(d));
            }
            return Err(format!("{} is not a decimal number", show(&args[0])));
        }
    }
    parse_decimal(&args[0]).map(decimal_value)
}

fn to_bool(args: &[Value]) -> Result<Value, String> {
    let v = &args[0];
    let b = match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Some(true),
            "false" | "0" | "no" => Some(false),
            _ => None,
        },
        _ => None,
    };
    b.map(Value::Bool).ok_or_else(|| {
        format!(
            "{} is not a boolean (accepted: true/false, \"true\"/\"false\", \"yes\"/\"no\", \
             \"1\"/\"0\", 1/0)",
            show(v)
        )
    })
}

fn id_str(args: &[Value]) -> Result<Value, String> {
    match &args[0] {
        Value::String(s) => Ok(Value::String(s.clone())),
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(Value::String(n.to_string())),
        Value::Number(n) => Err(format!(
            "{} is a floating-point number: an id must be an integer or a string (its exact \
             digits may already be lost)",
            show(&Value::Number(n.clone()))
        )),
        other => Err(format!(
            "{} is not an id (expected an integer or a string, got {})",
            show(other),
            type_name(other)
        )),
    }
}

fn blank_to_null(args: &[Value]) -> Result<Value, String> {
    Ok(match &args[0] {
        Value::String(s) if s.trim().is_empty() => Value::Null,
        other => other.clone(),
    })
}

pub const TO_INT: FnDef = FnDef {
    name: "to_int",
    min_args: 1,
    max_args: 1,
    call: to_int,
    doc: "A whole number from a number or numeric string; fractions are an error.",
};
pub const TO_DECIMAL: FnDef = FnDef {
    name: "to_decimal",
    min_args: 1,
    max_args: 1,
    call: to_decimal,
    doc: "A decimal string from a number or numeric string (scientific notation accepted).",
};
pub const TO_BOOL: FnDef = FnDef {
    name: "to_bool",
    min_args: 1,
    max_args: 1,
    call: to_bool,
    doc: "A boolean from true/false, \"true\"/\"false\", \"yes\"/\"no\", \"1\"/\"0\" or 1/0.",
};
pub const ID_STR: FnDef = FnDef {
    name: "id_str",
    min_args: 1,
    max_args: 1,
    call: id_str,
    doc: "An integer id as its exact decimal string; strings unchanged.",
};
pub const BLANK_TO_NULL: FnDef = FnDef {
    name: "blank_to_null",
    min_args: 1,
    max_args: 1,
    call: blank_to_null,
    doc: "null for an empty or whitespace-only string; anything else unchanged.",
};
