//! Exact decimal arithmetic and currency minor units.
//!
//! Amounts come as decimal strings (`"89.00"`, Shopify, Amazon), JSON numbers (`80.1`,
//! Shopify refunds, Lightspeed) or integers in minor units (`1442`, Square). Nothing here goes
//! through `f64`: a JSON number is read from its textual form into a [`Decimal`], and results
//! are decimal strings, so `"0.10" + "0.20"` is `"0.30"`, not `0.30000000000000004`.
//!
//! Scale (digits after the point) follows the inputs: a sum or difference has the larger scale
//! of its operands (`"89.00" + "1"` is `"90.00"`), a product the sum of their scales, so no
//! digit is ever dropped silently. `dec_round`, `dec_div` and `dec_fmt` produce exactly the
//! scale they are given. Results are canonical: no `+`, no leading zeros, no `-0`.

use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;

use super::{FnDef, show, type_name};

/// The largest scale a decimal can carry (rust_decimal's limit).
pub const MAX_SCALE: u32 = 28;

// ---------------------------------------------------------------------------------------------
// Parsing and formatting

/// Reads a decimal from a string or a JSON number, exactly.
///
/// Strings: optional surrounding whitespace, an optional sign, digits with an optional
/// fraction (`"89.00"`, `"-0.21"`, `"+5"`, `".5"`). Thousands separators, decimal commas,
/// exponents, `NaN` and the like are rejected rather than guessed at.
pub fn parse_decimal(v: &Value) -> Result<Decimal, String> {
    match v {
        Value::String(s) => match parse_decimal_str(s) {
            Some(d) => Ok(d),
            None if is_plain_decimal(s) => Err(out_of_range(v)),
            None => Err(not_a_decimal(v)),
        },
        Value::Number(n) => number_to_decimal(n).ok_or_else(|| out_of_range(v)),
        other => Err(format!(
            "{} is not a decimal number (got {})",
            show(other),
            type_name(other)
        )),
    }
}

fn not_a_decimal(v: &Value) -> String {
    match v {
        Value::String(s) if s.contains(',') => format!(
            "{} is not a decimal number (decimal commas and thousands separators are not \
             accepted; normalize the text first)",
            show(v)
        ),
        _ => format!("{} is not a decimal number", show(v)),
    }
}

fn out_of_range(v: &Value) -> String {
    format!(
        "{} is outside the decimal range (28 significant digits)",
        show(v)
    )
}

/// Whether `s` has the syntax of a plain decimal: optional whitespace and sign, digits with
/// an optional fraction, at least one digit.
fn is_plain_decimal(s: &str) -> bool {
    let t = s.trim();
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    let (int_part, frac_part) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits_only = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    !(int_part.is_empty() && frac_part.is_empty())
        && digits_only(int_part)
        && digits_only(frac_part)
}

/// A plain decimal string (see [`is_plain_decimal`]), or `None` when it is not one or does not
/// fit 28 significant digits.
pub(crate) fn parse_decimal_str(s: &str) -> Option<Decimal> {
    if !is_plain_decimal(s) {
        return None;
    }
    let t = s.trim();
    let negative = t.starts_with('-');
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    let (int_part, frac_part) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let int_part = if int_part.is_empty() { "0" } else { int_part };
    let sign = if negative { "-" } else { "" };
    let text = if frac_part.is_empty() {
        format!("{sign}{int_part}")
    } else {
        format!("{sign}{int_part}.{frac_part}")
    };
    Decimal::from_str_exact(&text).ok().map(canonical)
}

/// A JSON number from its textual form (`80.1`, `1e-7`, `820982911946154508`), or `None` when
/// it does not fit a decimal.
pub(crate) fn number_to_decimal(n: &serde_json::Number) -> Option<Decimal> {
    let text = n.to_string();
    let parsed = if text.contains(['e', 'E']) {
        Decimal::from_scientific(&text).ok()
    } else {
        Decimal::from_str_exact(&text)
            .ok()
            .or_else(|| Decimal::from_str(&text).ok())
    };
    parsed.map(canonical)
}

/// Drops the sign of a zero (`-0.00` is `0.00`).
fn canonical(mut d: Decimal) -> Decimal {
    if d.is_zero() {
        d.set_sign_positive(true);
    }
    d
}

/// A decimal as a result string.
pub fn decimal_value(d: Decimal) -> Value {
    Value::String(canonical(d).to_string())
}

/// `d` with exactly `scale` decimals, without rounding: an error when that would drop a
/// non-zero digit.
fn exact_scale(d: Decimal, scale: u32, input: &Value, why: &str) -> Result<Decimal, String> {
    let normalized = d.normalize();
    if normalized.scale() > scale {
        return Err(format!(
            "{} has more than {scale} decimal{}{why}",
            show(input),
            if scale == 1 { "" } else { "s" }
        ));
    }
    pad(normalized, scale, input)
}

/// `d` (with at most `scale` decimals) written with exactly `scale` decimals.
fn pad(mut d: Decimal, scale: u32, input: &Value) -> Result<Decimal, String> {
    d.rescale(scale);
    if d.scale() != scale {
        return Err(format!(
            "{} cannot be written with {scale} decimals within 28 significant digits",
            show(input)
        ));
    }
    Ok(canonical(d))
}

/// A scale argument: a whole number from 0 to 28.
fn parse_scale(v: &Value) -> Result<u32, String> {
    let d = parse_decimal(v).map_err(|_| scale_error(v))?;
    if !d.fract().is_zero() || d.is_sign_negative() || d > Decimal::from(MAX_SCALE) {
        return Err(scale_error(v));
    }
    u32::try_from(d.normalize().mantissa()).map_err(|_| scale_error(v))
}

fn scale_error(v: &Value) -> String {
    format!(
        "scale {} must be a whole number from 0 to {MAX_SCALE}",
        show(v)
    )
}

/// A rounding mode argument.
fn parse_mode(v: &Value) -> Result<RoundingStrategy, String> {
    match v.as_str() {
        Some("half_even") => Ok(RoundingStrategy::MidpointNearestEven),
        Some("half_up") => Ok(RoundingStrategy::MidpointAwayFromZero),
        _ => Err(format!(
            "unknown rounding mode {}; use `half_even` (banker's, the default) or `half_up` \
             (halves away from zero)",
            show(v)
        )),
    }
}

fn overflow(op: &str) -> String {
    format!("{op} overflows the decimal range (28 significant digits)")
}

// ---------------------------------------------------------------------------------------------
// Arithmetic

fn dec(args: &[Value]) -> Result<Value, String> {
    parse_decimal(&args[0]).map(decimal_value)
}

fn dec_add(args: &[Value]) -> Result<Value, String> {
    let (a, b) = (parse_decimal(&args[0])?, parse_decimal(&args[1])?);
    a.checked_add(b)
        .map(decimal_value)
        .ok_or_else(|| overflow("the sum"))
}

fn dec_sub(args: &[Value]) -> Result<Value, String> {
    let (a, b) = (parse_decimal(&args[0])?, parse_decimal(&args[1])?);
    a.checked_sub(b)
        .map(decimal_value)
        .ok_or_else(|| overflow("the difference"))
}

fn dec_mul(args: &[Value]) -> Result<Value, String> {
    let (a, b) = (parse_decimal(&args[0])?, parse_decimal(&args[1])?);
    a.checked_mul(b)
        .map(decimal_value)
        .ok_or_else(|| overflow("the product"))
}

/// `a / b` rounded to `scale` decimals. The rounding decision is taken on the exact remainder
/// (`|a| - q·|b|`), not on a 28-digit approximation of the quotient, so a half is only a half
/// when it is exactly one. (Exact as long as `scale` plus the scale of `b` stays within 28.)
pub fn divide(
    a: Decimal,
    b: Decimal,
    scale: u32,
    mode: RoundingStrategy,
) -> Result<Decimal, String> {
    if b.is_zero() {
        return Err("division by zero".to_string());
    }
    let too_big = || overflow("the quotient");
    let (num, den) = (a.abs(), b.abs());
    let approx = num.checked_div(den).ok_or_else(too_big)?;
    let ulp = Decimal::new(1, scale);
    // One unit of the last kept digit, in units of the dividend.
    let unit = den.checked_mul(ulp).ok_or_else(too_big)?;
    let remainder = |q: Decimal| {
        q.checked_mul(den)
            .and_then(|p| num.checked_sub(p))
            .ok_or_else(too_big)
    };
    // Truncate at `scale`, then correct the approximation by one unit if it was rounded
    // across a digit: afterwards 0 <= rem < unit.
    let mut q = approx.trunc_with_scale(scale);
    let mut rem = remainder(q)?;
    for _ in 0..2 {
        if rem.is_sign_negative() && !rem.is_zero() {
            q = q.checked_sub(ulp).ok_or_else(too_big)?;
        } else if rem >= unit {
            q = q.checked_add(ulp).ok_or_else(too_big)?;
        } else {
            break;
        }
        rem = remainder(q)?;
    }
    let twice = rem.checked_mul(Decimal::TWO).ok_or_else(too_big)?;
    let up = match twice.cmp(&unit) {
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Equal => match mode {
            RoundingStrategy::MidpointNearestEven => {
                // Up only when the last kept digit is odd (a shorter scale means it is 0).
                q.scale() == scale && q.mantissa() % 2 != 0
            }
            _ => true,
        },
    };
    if up {
        q = q.checked_add(ulp).ok_or_else(too_big)?;
    }
    let negative = a.is_sign_negative() != b.is_sign_negative();
    Ok(canonical(if negative { -q } else { q }))
}

fn dec_div(args: &[Value]) -> Result<Value, String> {
    let (a, b) = (parse_decimal(&args[0])?, parse_decimal(&args[1])?);
    let scale = parse_scale(&args[2])?;
    let mode = match args.get(3) {
        Some(m) => parse_mode(m)?,
        None => RoundingStrategy::MidpointNearestEven,
    };
    let q = divide(a, b, scale, mode)?;
    pad(q, scale, &args[0]).map(decimal_value)
}

fn dec_neg(args: &[Value]) -> Result<Value, String> {
    parse_decimal(&args[0]).map(|d| decimal_value(-d))
}

fn dec_abs(args: &[Value]) -> Result<Value, String> {
    parse_decimal(&args[0]).map(|d| decimal_value(d.abs()))
}

fn dec_sum(args: &[Value]) -> Result<Value, String> {
    let Value::Array(items) = &args[0] else {
        return Err(format!(
            "expected an array of decimals, got {} {}",
            type_name(&args[0]),
            show(&args[0])
        ));
    };
    let mut total = Decimal::ZERO;
    for (i, item) in items.iter().enumerate() {
        let d = parse_decimal(item).map_err(|m| format!("element {i}: {m}"))?;
        total = total.checked_add(d).ok_or_else(|| overflow("the sum"))?;
    }
    Ok(decimal_value(total))
}

fn dec_cmp(args: &[Value]) -> Result<Value, String> {
    let (a, b) = (parse_decimal(&args[0])?, parse_decimal(&args[1])?);
    Ok(Value::from(match a.cmp(&b) {
        std::cmp::Ordering::Less => -1,
        std::cmp::Ordering::Equal => 0,
        std::cmp::Ordering::Greater => 1,
    }))
}

fn dec_round(args: &[Value]) -> Result<Value, String> {
    let d = parse_decimal(&args[0])?;
    let scale = parse_scale(&args[1])?;
    let mode = match args.get(2) {
        Some(m) => parse_mode(m)?,
        None => RoundingStrategy::MidpointNearestEven,
    };
    pad(d.round_dp_with_strategy(scale, mode), scale, &args[0]).map(decimal_value)
}

fn dec_fmt(args: &[Value]) -> Result<Value, String> {
    let d = parse_decimal(&args[0])?;
    let scale = parse_scale(&args[1])?;
    exact_scale(d, scale, &args[0], "; round it first with dec_round()").map(decimal_value)
}

// ---------------------------------------------------------------------------------------------
// Currencies

/// ISO 4217 currencies whose minor unit is not 2 (exponent, codes).
const NON_TWO: &[(u32, &[&str])] = &[
    (
        0,
        &[
            "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI",
            "VND", "VUV", "XAF", "XOF", "XPF",
        ],
    ),
    (3, &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"]),
    (4, &["CLF", "UYW"]),
];

/// ISO 4217 currencies (active list, 2025) with 2 decimal places.
const TWO: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF",
    "CHE", "CHF", "CHW", "CNY", "COP", "COU", "CRC", "CUC", "CUP", "CVE", "CZK", "DKK", "DOP",
    "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GTQ",
    "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IRR", "JMD", "KES", "KGS", "KHR",
    "KPW", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "MAD", "MDL", "MGA", "MKD", "MMK",
    "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN", "NIO",
    "NOK", "NPR", "NZD", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "QAR", "RON", "RSD", "RUB",
    "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SLL", "SOS", "SRD", "SSP", "STN",
    "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "USD",
    "USN", "UYU", "UZS", "VED", "VES", "WST", "XCD", "XCG", "YER", "ZAR", "ZMW", "ZWG", "ZWL",
];

/// Every currency code [`currency_exponent`] knows.
pub fn known_currencies() -> impl Iterator<Item = &'static str> {
    TWO.iter()
        .copied()
        .chain(NON_TWO.iter().flat_map(|(_, codes)| codes.iter().copied()))
}

/// The ISO 4217 minor-unit exponent of a currency code (case-insensitive), with the code in
/// upper case.
pub fn currency_exponent(v: &Value) -> Result<(String, u32), String> {
    let Some(code) = v.as_str() else {
        return Err(format!(
            "currency {} must be an ISO 4217 code string like `USD`",
            show(v)
        ));
    };
    let upper = code.trim().to_ascii_uppercase();
    if TWO.contains(&upper.as_str()) {
        return Ok((upper, 2));
    }
    for (exponent, codes) in NON_TWO {
        if codes.contains(&upper.as_str()) {
            return Ok((upper, *exponent));
        }
    }
    let hint = match crate::suggest::did_you_mean(&upper, known_currencies()) {
        Some(best) if upper.len() == 3 => format!("; did you mean `{best}`?"),
        _ => String::new(),
    };
    Err(format!(
        "unknown currency {} (not an ISO 4217 code with a minor unit){hint}",
        show(v)
    ))
}

fn minor_units(args: &[Value]) -> Result<Value, String> {
    currency_exponent(&args[0]).map(|(_, e)| Value::from(e))
}

/// An amount with exactly the currency's decimals; more non-zero decimals are an error.
fn currency_amount(amount: &Value, currency: &Value) -> Result<(Decimal, String, u32), String> {
    let d = parse_decimal(amount)?;
    let (code, exponent) = currency_exponent(currency)?;
    let why = format!(" ({code} has {exponent}); round it first with dec_round()");
    let d = exact_scale(d, exponent, amount, &why)?;
    Ok((d, code, exponent))
}

fn to_minor(args: &[Value]) -> Result<Value, String> {
    let (d, code, _) = currency_amount(&args[0], &args[1])?;
    let minor = d.mantissa();
    i64::try_from(minor).map(Value::from).map_err(|_| {
        format!(
            "{} {code} in minor units does not fit a 64-bit integer",
            show(&args[0])
        )
    })
}

fn from_minor(args: &[Value]) -> Result<Value, String> {
    let units = parse_decimal(&args[0]).map_err(|_| {
        format!(
            "{} is not a whole number of minor units (an integer or integer string)",
            show(&args[0])
        )
    })?;
    if !units.fract().is_zero() {
        return Err(format!(
            "{} is not a whole number of minor units",
            show(&args[0])
        ));
    }
    let (_, exponent) = currency_exponent(&args[1])?;
    let units = units.trunc().normalize();
    let mut d = Decimal::try_from_i128_with_scale(units.mantissa(), exponent)
        .map_err(|_| out_of_range(&args[0]))?;
    d.rescale(exponent);
    Ok(decimal_value(d))
}

fn money(args: &[Value]) -> Result<Value, String> {
    let (d, code, _) = currency_amount(&args[0], &args[1])?;
    let mut out = serde_json::Map::new();
    out.insert("amount".to_string(), decimal_value(d));
    out.insert("currency".to_string(), Value::String(code));
    Ok(Value::Object(out))
}

// ---------------------------------------------------------------------------------------------
// Registry entries

pub const DEC: FnDef = FnDef {
    name: "dec",
    min_args: 1,
    max_args: 1,
    call: dec,
    doc: "A decimal string or number as a canonical decimal string.",
};
pub const DEC_ADD: FnDef = FnDef {
    name: "dec_add",
    min_args: 2,
    max_args: 2,
    call: dec_add,
    doc: "Exact sum of two decimals.",
};
pub const DEC_SUB: FnDef = FnDef {
    name: "dec_sub",
    min_args: 2,
    max_args: 2,
    call: dec_sub,
    doc: "Exact difference of two decimals.",
};
pub const DEC_MUL: FnDef = FnDef {
    name: "dec_mul",
    min_args: 2,
    max_args: 2,
    call: dec_mul,
    doc: "Exact product of two decimals.",
};
pub const DEC_DIV: FnDef = FnDef {
    name: "dec_div",
    min_args: 3,
    max_args: 4,
    call: dec_div,
    doc: "Quotient rounded to a scale (half_even unless a mode is given).",
};
pub const DEC_NEG: FnDef = FnDef {
    name: "dec_neg",
    min_args: 1,
    max_args: 1,
    call: dec_neg,
    doc: "The decimal with its sign flipped.",
};
pub const DEC_ABS: FnDef = FnDef {
    name: "dec_abs",
    min_args: 1,
    max_args: 1,
    call: dec_abs,
    doc: "The absolute value of a decimal.",
};
pub const DEC_SUM: FnDef = FnDef {
    name: "dec_sum",
    min_args: 1,
    max_args: 1,
    call: dec_sum,
    doc: "Exact sum of an array of decimals (empty array: \"0\").",
};
pub const DEC_CMP: FnDef = FnDef {
    name: "dec_cmp",
    min_args: 2,
    max_args: 2,
    call: dec_cmp,
    doc: "Compares two decimals: -1, 0 or 1.",
};
pub const DEC_ROUND: FnDef = FnDef {
    name: "dec_round",
    min_args: 2,
    max_args: 3,
    call: dec_round,
    doc: "Rounds to a scale, half_even (banker's) by default or half_up.",
};
pub const DEC_FMT: FnDef = FnDef {
    name: "dec_fmt",
    min_args: 2,
    max_args: 2,
    call: dec_fmt,
    doc: "Writes a decimal with exactly `scale` decimals, never rounding.",
};
pub const MINOR_UNITS: FnDef = FnDef {
    name: "minor_units",
    min_args: 1,
    max_args: 1,
    call: minor_units,
    doc: "ISO 4217 minor-unit exponent of a currency (USD 2, JPY 0, KWD 3).",
};
pub const TO_MINOR: FnDef = FnDef {
    name: "to_minor",
    min_args: 2,
    max_args: 2,
    call: to_minor,
    doc: "An amount as an integer count of the currency's minor units.",
};
pub const FROM_MINOR: FnDef = FnDef {
    name: "from_minor",
    min_args: 2,
    max_args: 2,
    call: from_minor,
    doc: "An integer count of minor units as a decimal string at the currency's scale.",
};
pub const MONEY: FnDef = FnDef {
    name: "money",
    min_args: 2,
    max_args: 2,
    call: money,
    doc: "A canonical money object {amount, currency} at the currency's scale.",
};

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        parse_decimal_str(s).expect("decimal")
    }

    #[test]
    fn plain_decimal_syntax() {
        for ok in ["0", "-0", "+1", "1.", ".5", "-.5", " 12.50 ", "007"] {
            assert!(is_plain_decimal(ok), "{ok}");
        }
        for bad in [
            "", " ", "-", "+", ".", "+-1", "1e5", "1,5", "1 000", "0x10", "½", "١",
        ] {
            assert!(!is_plain_decimal(bad), "{bad}");
            assert!(parse_decimal_str(bad).is_none(), "{bad}");
        }
        assert_eq!(d("1.").to_string(), "1");
        assert_eq!(d("-0.000").to_string(), "0.000");
        assert!(!d("-0.000").is_sign_negative());
    }

    #[test]
    fn numbers_are_read_from_their_text() {
        let n = |v: serde_json::Value| match v {
            Value::Number(n) => number_to_decimal(&n).map(|d| d.to_string()),
            _ => None,
        };
        assert_eq!(n(serde_json::json!(0.1)).as_deref(), Some("0.1"));
        assert_eq!(n(serde_json::json!(1e-7)).as_deref(), Some("0.0000001"));
        assert_eq!(n(serde_json::json!(-0.0)).as_deref(), Some("0.0"));
        assert_eq!(
            n(serde_json::json!(u64::MAX)).as_deref(),
            Some("18446744073709551615")
        );
        assert_eq!(n(serde_json::json!(1e300)), None);
    }

    #[test]
    fn divide_decides_halves_on_the_exact_remainder() {
        let half_even = RoundingStrategy::MidpointNearestEven;
        let half_up = RoundingStrategy::MidpointAwayFromZero;
        let div = |a: &str, b: &str, s: u32, m| divide(d(a), d(b), s, m).map(|q| q.to_string());
        assert_eq!(div("0.125", "1", 2, half_even).as_deref(), Ok("0.12"));
        assert_eq!(div("0.135", "1", 2, half_even).as_deref(), Ok("0.14"));
        assert_eq!(div("0.125", "1", 2, half_up).as_deref(), Ok("0.13"));
        assert_eq!(div("-0.125", "1", 2, half_up).as_deref(), Ok("-0.13"));
        assert_eq!(div("0.125", "-1", 2, half_even).as_deref(), Ok("-0.12"));
        // 28-digit quotient rounds to exactly 0.125 but the true value is above it.
        assert_eq!(
            div("0.2500000000000000000000000001", "2", 2, half_even).as_deref(),
            Ok("0.13")
        );
        // ... and below it.
        assert_eq!(
            div("0.2499999999999999999999999999", "2", 2, half_up).as_deref(),
            Ok("0.12")
        );
        assert_eq!(div("2", "3", 0, half_even).as_deref(), Ok("1"));
        assert_eq!(
            div("1", "0", 2, half_even),
            Err("division by zero".to_string())
        );
    }
}
