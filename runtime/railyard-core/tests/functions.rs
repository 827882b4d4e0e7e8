//! The retail functions (`railyard_core::functions`) in both engines: every function, its edge
//! cases and its errors through JMESPath and Rhai alike, proofs on the real channel payloads
//! in `tests/data/channels/`, property tests, and the check that `docs/functions.md` matches
//! the code.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, LazyLock};

use railyard_core::expr::{JmesPath, RhaiScript, rhai_engine};
use railyard_core::functions::{self, FUNCTIONS, Tables, with_tables};
use serde_json::{Value, json};

static ENGINE: LazyLock<rhai::Engine> = LazyLock::new(rhai_engine);

fn jmes(expr: &str, input: &Value) -> Result<Value, String> {
    JmesPath::compile(expr)
        .map_err(|e| format!("compile error: {} at {}", e.message, e.char_offset))?
        .search(input)
}

fn rhai(script: &str, input: &Value) -> Result<Value, String> {
    RhaiScript::compile(&ENGINE, script)
        .map_err(|e| format!("compile error: {} at {}", e.message, e.char_offset))?
        .eval(&ENGINE, input)
}

/// Calls `name` with `args` in both engines, the arguments passed through the input document
/// (`name(args[0], ...)` and `name(body.args[0], ...)`), and checks that they agree: the same
/// value, or errors with the same message.
fn call(name: &str, args: Value) -> Result<Value, String> {
    let n = args.as_array().expect("args is an array").len();
    let list = |prefix: &str| {
        (0..n)
            .map(|i| format!("{prefix}args[{i}]"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (expr, script) = (
        format!("{name}({})", list("")),
        format!("{name}({})", list("body.")),
    );
    let input = json!({ "args": args });
    let j = jmes(&expr, &input);
    let r = rhai(&script, &input);
    match (&j, &r) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "engines disagree on {expr} with {args}"),
        (Err(a), Err(b)) => assert!(
            b.contains(a.as_str()),
            "Rhai error {b:?} does not carry the JMESPath message {a:?} ({expr} with {args})"
        ),
        _ => panic!("engines disagree on {expr} with {args}: JMESPath {j:?}, Rhai {r:?}"),
    }
    j
}

#[track_caller]
fn ok(name: &str, args: Value, expected: Value) {
    assert_eq!(call(name, args.clone()), Ok(expected), "{name}{args}");
}

#[track_caller]
fn err(name: &str, args: Value, fragment: &str) {
    match call(name, args.clone()) {
        Ok(v) => panic!("{name}{args}: expected an error containing {fragment:?}, got {v}"),
        Err(e) => assert!(
            e.contains(fragment),
            "{name}{args}: error {e:?} lacks {fragment:?}"
        ),
    }
}

// ------------------------------------------------------------------------------------------
// Money: decimals

#[test]
fn dec_normalizes_strings_and_numbers_exactly() {
    ok("dec", json!(["89.00"]), json!("89.00"));
    ok("dec", json!([89]), json!("89"));
    ok("dec", json!([80.1]), json!("80.1"));
    ok("dec", json!([0.1]), json!("0.1"));
    ok("dec", json!(["-0.00"]), json!("0.00"));
    ok("dec", json!(["+5"]), json!("5"));
    ok("dec", json!([" 12.50 "]), json!("12.50"));
    ok("dec", json!([".5"]), json!("0.5"));
    ok("dec", json!(["-.5"]), json!("-0.5"));
    ok("dec", json!(["007.50"]), json!("7.50"));
    ok(
        "dec",
        json!([820982911946154508u64]),
        json!("820982911946154508"),
    );
    ok("dec", json!([1e-7]), json!("0.0000001"));
    ok("dec", json!([-13.7]), json!("-13.7"));
    ok(
        "dec",
        json!(["7922816251426433759354395033.5"]),
        json!("7922816251426433759354395033.5"),
    );
}

#[test]
fn dec_rejects_what_is_not_a_plain_decimal() {
    err(
        "dec",
        json!(["abc"]),
        "dec(): `abc` is not a decimal number",
    );
    err("dec", json!(["1,5"]), "decimal commas");
    err("dec", json!(["1.234,56"]), "decimal commas");
    err("dec", json!(["1e5"]), "`1e5` is not a decimal number");
    err("dec", json!(["1_000"]), "is not a decimal number");
    err("dec", json!(["NaN"]), "is not a decimal number");
    err("dec", json!([""]), "`\"\"` is not a decimal number");
    err("dec", json!(["-"]), "is not a decimal number");
    err("dec", json!(["."]), "is not a decimal number");
    err("dec", json!(["1.2.3"]), "is not a decimal number");
    err("dec", json!(["$5.00"]), "is not a decimal number");
    err(
        "dec",
        json!([null]),
        "`null` is not a decimal number (got null)",
    );
    err("dec", json!([true]), "(got boolean)");
    err("dec", json!([[1]]), "(got array)");
    err(
        "dec",
        json!(["99999999999999999999999999999"]),
        "outside the decimal range",
    );
    err("dec", json!([1e300]), "outside the decimal range");
}

#[test]
fn long_values_are_cut_in_messages() {
    let long = "x".repeat(200);
    let e = call("dec", json!([long])).unwrap_err();
    assert!(e.contains("…`"), "{e}");
    assert!(e.len() < 150, "{e}");
}

#[test]
fn dec_add_sub_mul_are_exact() {
    ok("dec_add", json!(["89.00", "1"]), json!("90.00"));
    ok("dec_add", json!(["0.1", "0.2"]), json!("0.3"));
    // The classic float failure, with JSON numbers: still exact.
    ok("dec_add", json!([0.1, 0.2]), json!("0.3"));
    ok("dec_add", json!(["-13.70", "13.70"]), json!("0.00"));
    ok("dec_add", json!(["1.5", -2]), json!("-0.5"));
    err(
        "dec_add",
        json!(["79228162514264337593543950335", "1"]),
        "overflows",
    );
    err(
        "dec_add",
        json!(["abc", "1"]),
        "dec_add(): `abc` is not a decimal number",
    );
    err(
        "dec_add",
        json!(["1", "abc"]),
        "dec_add(): `abc` is not a decimal number",
    );

    ok("dec_sub", json!(["138.96", "7.95"]), json!("131.01"));
    ok("dec_sub", json!(["1", "1.000"]), json!("0.000"));
    ok("dec_sub", json!(["0", "5.5"]), json!("-5.5"));
    err(
        "dec_sub",
        json!(["-79228162514264337593543950335", "1"]),
        "overflows",
    );
    err(
        "dec_sub",
        json!([null, "1"]),
        "dec_sub(): `null` is not a decimal",
    );

    ok("dec_mul", json!(["9.99", 2]), json!("19.98"));
    ok("dec_mul", json!(["80.10", "0.0625"]), json!("5.006250"));
    ok("dec_mul", json!(["-1", "0"]), json!("0"));
    ok("dec_mul", json!(["-1", "-2.5"]), json!("2.5"));
    err(
        "dec_mul",
        json!(["79228162514264337593543950335", "2"]),
        "overflows",
    );
    err(
        "dec_mul",
        json!(["2", "x"]),
        "dec_mul(): `x` is not a decimal number",
    );
}

#[test]
fn dec_div_rounds_to_the_scale() {
    ok("dec_div", json!(["19.98", 2, 2]), json!("9.99"));
    ok("dec_div", json!(["10", "3", 2]), json!("3.33"));
    ok("dec_div", json!(["2", "3", 2]), json!("0.67"));
    ok("dec_div", json!(["10", "4", 4]), json!("2.5000"));
    ok("dec_div", json!(["0", "7", 2]), json!("0.00"));
    // Halves: banker's by default, away from zero with half_up.
    ok("dec_div", json!(["1", "8", 2]), json!("0.12"));
    ok("dec_div", json!(["3", "8", 2]), json!("0.38"));
    ok("dec_div", json!(["1", "8", 2, "half_up"]), json!("0.13"));
    ok("dec_div", json!(["-1", "8", 2]), json!("-0.12"));
    ok("dec_div", json!(["-1", "8", 2, "half_up"]), json!("-0.13"));
    ok(
        "dec_div",
        json!(["1", "-8", 2, "half_even"]),
        json!("-0.12"),
    );
    ok("dec_div", json!(["10", "4", 0]), json!("2"));
    ok("dec_div", json!(["14", "4", 0]), json!("4"));
    ok("dec_div", json!(["-1", "3", 2]), json!("-0.33"));
    ok("dec_div", json!(["-2", "3", 2]), json!("-0.67"));
    ok(
        "dec_div",
        json!(["1", "3", 27]),
        json!("0.333333333333333333333333333"),
    );
    ok("dec_div", json!(["1", "3", "2"]), json!("0.33"));
    // Just above a half, beyond 28 digits: the 28-digit quotient 0.125 would round to 0.12
    // half-even; the exact remainder says it is above the half.
    ok(
        "dec_div",
        json!(["0.2500000000000000000000000001", "2", 2]),
        json!("0.13"),
    );
    err(
        "dec_div",
        json!(["1", "0", 2]),
        "dec_div(): division by zero",
    );
    err("dec_div", json!(["1", "0.00", 2]), "division by zero");
    err(
        "dec_div",
        json!(["1", "3", -1]),
        "scale `-1` must be a whole number from 0 to 28",
    );
    err("dec_div", json!(["1", "3", 29]), "from 0 to 28");
    err("dec_div", json!(["1", "3", 1.5]), "from 0 to 28");
    err("dec_div", json!(["1", "3", "two"]), "scale `two`");
    err(
        "dec_div",
        json!(["1", "3", 2, "bankers"]),
        "unknown rounding mode `bankers`",
    );
    err(
        "dec_div",
        json!(["x", "3", 2]),
        "`x` is not a decimal number",
    );
    err(
        "dec_div",
        json!(["79228162514264337593543950335", "0.1", 0]),
        "overflows",
    );
}

#[test]
fn dec_neg_abs() {
    ok("dec_neg", json!(["5.00"]), json!("-5.00"));
    ok("dec_neg", json!(["-0.21"]), json!("0.21"));
    ok("dec_neg", json!(["-0.00"]), json!("0.00"));
    ok("dec_neg", json!([0]), json!("0"));
    err(
        "dec_neg",
        json!(["--1"]),
        "dec_neg(): `--1` is not a decimal number",
    );
    ok("dec_abs", json!(["-13.70"]), json!("13.70"));
    ok("dec_abs", json!(["13.70"]), json!("13.70"));
    ok("dec_abs", json!([-2]), json!("2"));
    err(
        "dec_abs",
        json!([{}]),
        "dec_abs(): `{}` is not a decimal number",
    );
}

#[test]
fn dec_sum_of_arrays() {
    ok("dec_sum", json!([[]]), json!("0"));
    ok("dec_sum", json!([["89.00", "48.00"]]), json!("137.00"));
    ok("dec_sum", json!([[80.1, "5.01", 1]]), json!("86.11"));
    ok("dec_sum", json!([["-5.00", "5"]]), json!("0.00"));
    err(
        "dec_sum",
        json!([["1", null]]),
        "dec_sum(): element 1: `null` is not a decimal number",
    );
    err("dec_sum", json!([["1", "one"]]), "element 1: `one`");
    err(
        "dec_sum",
        json!(["5"]),
        "dec_sum(): expected an array of decimals, got string `5`",
    );
    err("dec_sum", json!([null]), "got null");
    err(
        "dec_sum",
        json!([["79228162514264337593543950335", "1"]]),
        "overflows",
    );
}

#[test]
fn dec_cmp_orders_numerically() {
    ok("dec_cmp", json!(["1.0", "1"]), json!(0));
    ok("dec_cmp", json!(["-2", "1"]), json!(-1));
    ok("dec_cmp", json!(["10", "9.99"]), json!(1));
    ok("dec_cmp", json!([0.1, "0.10"]), json!(0));
    ok("dec_cmp", json!(["-0.00", "0"]), json!(0));
    // Not string order: "9" > "10" as text.
    ok("dec_cmp", json!(["9", "10"]), json!(-1));
    err(
        "dec_cmp",
        json!(["1", []]),
        "dec_cmp(): `[]` is not a decimal number",
    );
}

#[test]
fn dec_round_modes() {
    ok("dec_round", json!(["2.5", 0]), json!("2"));
    ok("dec_round", json!(["3.5", 0]), json!("4"));
    ok("dec_round", json!(["2.5", 0, "half_up"]), json!("3"));
    ok("dec_round", json!(["-2.5", 0, "half_up"]), json!("-3"));
    ok("dec_round", json!(["-2.5", 0, "half_even"]), json!("-2"));
    ok("dec_round", json!(["1.005", 2]), json!("1.00"));
    ok("dec_round", json!(["1.005", 2, "half_up"]), json!("1.01"));
    ok("dec_round", json!(["1.0051", 2]), json!("1.01"));
    ok("dec_round", json!(["1.5", 2]), json!("1.50"));
    ok("dec_round", json!(["51.73875", 2]), json!("51.74"));
    ok("dec_round", json!([108.125, 2]), json!("108.12"));
    ok("dec_round", json!([108.125, 2, "half_up"]), json!("108.13"));
    ok("dec_round", json!(["-0.004", 2]), json!("0.00"));
    ok("dec_round", json!(["12345.678", 0]), json!("12346"));
    err(
        "dec_round",
        json!(["1.5", 2, "ceiling"]),
        "dec_round(): unknown rounding mode `ceiling`",
    );
    err("dec_round", json!(["1.5", null]), "scale `null`");
    err(
        "dec_round",
        json!(["abc", 2]),
        "dec_round(): `abc` is not a decimal number",
    );
    err(
        "dec_round",
        json!(["79228162514264337593543950335", 2]),
        "cannot be written with 2 decimals",
    );
}

#[test]
fn dec_fmt_pads_but_never_rounds() {
    ok("dec_fmt", json!(["89", 2]), json!("89.00"));
    ok("dec_fmt", json!([89, 2]), json!("89.00"));
    ok("dec_fmt", json!(["89.5", 2]), json!("89.50"));
    ok("dec_fmt", json!(["12.50000", 2]), json!("12.50"));
    ok("dec_fmt", json!([80.1, 2]), json!("80.10"));
    ok("dec_fmt", json!(["89", 0]), json!("89"));
    ok("dec_fmt", json!(["-0", 2]), json!("0.00"));
    err(
        "dec_fmt",
        json!(["1.005", 2]),
        "dec_fmt(): `1.005` has more than 2 decimals; round it first with dec_round()",
    );
    err("dec_fmt", json!(["1.5", 0]), "has more than 0 decimals");
    err("dec_fmt", json!(["1", 40]), "from 0 to 28");
}

// ------------------------------------------------------------------------------------------
// Money: currencies

#[test]
fn minor_units_follow_iso_4217() {
    for (code, exponent) in [
        ("USD", 2),
        ("EUR", 2),
        ("GBP", 2),
        ("CAD", 2),
        ("JPY", 0),
        ("KRW", 0),
        ("ISK", 0),
        ("CLP", 0),
        ("KWD", 3),
        ("BHD", 3),
        ("JOD", 3),
        ("OMR", 3),
        ("TND", 3),
        ("CLF", 4),
        ("usd", 2),
        (" jpy ", 0),
    ] {
        ok("minor_units", json!([code]), json!(exponent));
    }
    err(
        "minor_units",
        json!(["XYZ"]),
        "minor_units(): unknown currency `XYZ`",
    );
    err("minor_units", json!(["USX"]), "did you mean `USD`?");
    err("minor_units", json!(["XAU"]), "unknown currency `XAU`");
    err("minor_units", json!(["USDX"]), "unknown currency");
    err("minor_units", json!([""]), "unknown currency");
    err(
        "minor_units",
        json!([840]),
        "currency `840` must be an ISO 4217 code string",
    );
    err("minor_units", json!([null]), "must be an ISO 4217 code");
}

#[test]
fn every_known_currency_resolves() {
    let codes: Vec<&str> = functions::money::known_currencies().collect();
    assert!(codes.len() > 150, "{}", codes.len());
    let mut seen = std::collections::BTreeSet::new();
    for code in codes {
        assert!(seen.insert(code), "{code} listed twice");
        let e = call("minor_units", json!([code])).unwrap();
        assert!(matches!(e.as_u64(), Some(0 | 2 | 3 | 4)), "{code}: {e}");
    }
}

#[test]
fn to_minor_is_exact_or_an_error() {
    ok("to_minor", json!(["14.42", "USD"]), json!(1442));
    ok("to_minor", json!(["89", "USD"]), json!(8900));
    ok("to_minor", json!(["89.000", "USD"]), json!(8900));
    ok("to_minor", json!([80.1, "USD"]), json!(8010));
    ok("to_minor", json!(["-5.00", "usd"]), json!(-500));
    ok("to_minor", json!(["0.05", "USD"]), json!(5));
    ok("to_minor", json!(["1500", "JPY"]), json!(1500));
    ok("to_minor", json!(["1.234", "KWD"]), json!(1234));
    ok("to_minor", json!(["-0.00", "USD"]), json!(0));
    err(
        "to_minor",
        json!(["1.005", "USD"]),
        "to_minor(): `1.005` has more than 2 decimals (USD has 2); round it first with dec_round()",
    );
    err(
        "to_minor",
        json!(["1500.5", "JPY"]),
        "more than 0 decimals (JPY has 0)",
    );
    err(
        "to_minor",
        json!(["abc", "USD"]),
        "`abc` is not a decimal number",
    );
    err("to_minor", json!(["1", "XYZ"]), "unknown currency `XYZ`");
    err(
        "to_minor",
        json!(["99999999999999999999", "USD"]),
        "does not fit a 64-bit integer",
    );
}

#[test]
fn from_minor_scales_by_the_currency() {
    ok("from_minor", json!([1442, "USD"]), json!("14.42"));
    ok("from_minor", json!(["1442", "USD"]), json!("14.42"));
    ok("from_minor", json!([-21, "USD"]), json!("-0.21"));
    ok("from_minor", json!([5, "USD"]), json!("0.05"));
    ok("from_minor", json!([0, "EUR"]), json!("0.00"));
    ok("from_minor", json!([1500, "JPY"]), json!("1500"));
    ok("from_minor", json!([1234, "KWD"]), json!("1.234"));
    ok("from_minor", json!([1442.0, "USD"]), json!("14.42"));
    ok("from_minor", json!(["1442.00", "USD"]), json!("14.42"));
    ok(
        "from_minor",
        json!([i64::MAX, "CLF"]),
        json!("922337203685477.5807"),
    );
    err(
        "from_minor",
        json!(["14.42", "USD"]),
        "from_minor(): `14.42` is not a whole number of minor units",
    );
    err(
        "from_minor",
        json!(["x", "USD"]),
        "`x` is not a whole number of minor units",
    );
    err("from_minor", json!([1442, "ABC"]), "unknown currency `ABC`");
    err(
        "from_minor",
        json!([null, "USD"]),
        "`null` is not a whole number",
    );
}

#[test]
fn money_builds_canonical_amounts() {
    ok(
        "money",
        json!(["89", "USD"]),
        json!({"amount": "89.00", "currency": "USD"}),
    );
    ok(
        "money",
        json!([1500, "jpy"]),
        json!({"amount": "1500", "currency": "JPY"}),
    );
    ok(
        "money",
        json!(["-5.000", "EUR"]),
        json!({"amount": "-5.00", "currency": "EUR"}),
    );
    ok(
        "money",
        json!(["1.2", "KWD"]),
        json!({"amount": "1.200", "currency": "KWD"}),
    );
    err(
        "money",
        json!(["14.425", "USD"]),
        "money(): `14.425` has more than 2 decimals (USD has 2)",
    );
    err(
        "money",
        json!(["1", "DOLLARS"]),
        "unknown currency `DOLLARS`",
    );
    err("money", json!([true, "USD"]), "is not a decimal number");
}

// ------------------------------------------------------------------------------------------
// Coercion

#[test]
fn to_int_accepts_whole_numbers_only() {
    ok("to_int", json!(["2"]), json!(2));
    ok("to_int", json!([2]), json!(2));
    ok("to_int", json!([2.0]), json!(2));
    ok("to_int", json!(["2.00"]), json!(2));
    ok("to_int", json!([" -1 "]), json!(-1));
    ok(
        "to_int",
        json!([820982911946154508u64]),
        json!(820982911946154508u64),
    );
    ok("to_int", json!(["9223372036854775807"]), json!(i64::MAX));
    err(
        "to_int",
        json!(["1.5"]),
        "to_int(): `1.5` is not a whole number",
    );
    err("to_int", json!([1.5]), "`1.5` is not a whole number");
    err("to_int", json!(["abc"]), "`abc` is not an integer");
    err("to_int", json!([""]), "`\"\"` is not an integer");
    err(
        "to_int",
        json!([true]),
        "`true` is not an integer (got boolean)",
    );
    err("to_int", json!([null]), "(got null)");
    err(
        "to_int",
        json!(["9223372036854775808"]),
        "does not fit a 64-bit integer",
    );
    err(
        "to_int",
        json!(["18446744073709551615"]),
        "does not fit a 64-bit integer",
    );
    // A u64 beyond i64 reaches Rhai as a float already; JMESPath sees the integer.
    assert_eq!(
        jmes("to_int(@)", &json!(18446744073709551615u64)),
        Err("to_int(): `18446744073709551615` does not fit a 64-bit integer".to_string())
    );
}

#[test]
fn to_decimal_also_reads_scientific_notation() {
    ok("to_decimal", json!(["1.50"]), json!("1.50"));
    ok("to_decimal", json!([1.5]), json!("1.5"));
    ok("to_decimal", json!(["1.5E+3"]), json!("1500"));
    ok("to_decimal", json!(["1e-2"]), json!("0.01"));
    ok("to_decimal", json!([" 7 "]), json!("7"));
    err(
        "to_decimal",
        json!(["abc"]),
        "to_decimal(): `abc` is not a decimal number",
    );
    err("to_decimal", json!(["1e"]), "`1e` is not a decimal number");
    err("to_decimal", json!(["e5"]), "is not a decimal number");
    err("to_decimal", json!(["1e5x"]), "is not a decimal number");
    err(
        "to_decimal",
        json!([null]),
        "`null` is not a decimal number",
    );
}

#[test]
fn to_bool_is_tolerant_but_not_lax() {
    for (input, expected) in [
        (json!(true), true),
        (json!(false), false),
        (json!("true"), true),
        (json!("TRUE"), true),
        (json!(" False "), false),
        (json!("1"), true),
        (json!("0"), false),
        (json!("yes"), true),
        (json!("No"), false),
        (json!(1), true),
        (json!(0), false),
    ] {
        ok("to_bool", json!([input]), json!(expected));
    }
    for bad in [
        json!(2),
        json!("maybe"),
        json!(""),
        json!(null),
        json!(1.5),
        json!([]),
    ] {
        err("to_bool", json!([bad]), "is not a boolean");
    }
    err(
        "to_bool",
        json!(["y"]),
        "to_bool(): `y` is not a boolean (accepted:",
    );
}

#[test]
fn id_str_keeps_64_bit_ids_exact() {
    ok(
        "id_str",
        json!([820982911946154508u64]),
        json!("820982911946154508"),
    );
    ok("id_str", json!([6104523881562u64]), json!("6104523881562"));
    ok("id_str", json!([-5]), json!("-5"));
    ok("id_str", json!(["45927183650218"]), json!("45927183650218"));
    ok(
        "id_str",
        json!(["gid://shopify/Order/6104523881562"]),
        json!("gid://shopify/Order/6104523881562"),
    );
    ok("id_str", json!([" 007 "]), json!(" 007 "));
    err(
        "id_str",
        json!([8.2e17]),
        "id_str(): `8.2e+17` is a floating-point number",
    );
    err("id_str", json!([1.5]), "is a floating-point number");
    err("id_str", json!([null]), "`null` is not an id");
    err(
        "id_str",
        json!([true]),
        "(expected an integer or a string, got boolean)",
    );
}

#[test]
fn blank_to_null_only_touches_blank_strings() {
    ok("blank_to_null", json!([""]), Value::Null);
    ok("blank_to_null", json!(["  \t"]), Value::Null);
    ok("blank_to_null", json!(["x"]), json!("x"));
    ok("blank_to_null", json!([" x "]), json!(" x "));
    ok("blank_to_null", json!([null]), Value::Null);
    ok("blank_to_null", json!([0]), json!(0));
    ok("blank_to_null", json!([false]), json!(false));
    ok("blank_to_null", json!([[]]), json!([]));
}

// ------------------------------------------------------------------------------------------
// Timestamps

#[test]
fn ts_utc_normalizes_offsets() {
    ok(
        "ts_utc",
        json!(["2025-03-14T10:22:31-04:00"]),
        json!("2025-03-14T14:22:31Z"),
    );
    ok(
        "ts_utc",
        json!(["2025-03-14T10:22:31+05:30"]),
        json!("2025-03-14T04:52:31Z"),
    );
    ok(
        "ts_utc",
        json!(["2025-03-27T18:42:10+00:00"]),
        json!("2025-03-27T18:42:10Z"),
    );
    ok(
        "ts_utc",
        json!(["2025-03-14T10:22:31-0400"]),
        json!("2025-03-14T14:22:31Z"),
    );
    ok(
        "ts_utc",
        json!(["2025-03-14 10:22:31-04:00"]),
        json!("2025-03-14T14:22:31Z"),
    );
    ok(
        "ts_utc",
        json!(["2025-03-14t14:22:31z"]),
        json!("2025-03-14T14:22:31Z"),
    );
    ok(
        "ts_utc",
        json!(["2025-03-14T23:30:00-04:00"]),
        json!("2025-03-15T03:30:00Z"),
    );
    // Fractions: kept at millisecond precision, or more when the input had more digits.
    ok(
        "ts_utc",
        json!(["2025-03-15T18:41:52.331Z"]),
        json!("2025-03-15T18:41:52.331Z"),
    );
    ok(
        "ts_utc",
        json!(["2025-03-15T18:42:05.5Z"]),
        json!("2025-03-15T18:42:05.500Z"),
    );
    ok(
        "ts_utc",
        json!(["2025-03-15T18:42:05.000Z"]),
        json!("2025-03-15T18:42:05.000Z"),
    );
    ok(
        "ts_utc",
        json!(["2025-03-15T18:42:05.1234Z"]),
        json!("2025-03-15T18:42:05.123400Z"),
    );
    ok(
        "ts_utc",
        json!(["2025-03-14T14:22:32.881624375Z"]),
        json!("2025-03-14T14:22:32.881624375Z"),
    );
    ok(
        "ts_utc",
        json!(["2025-03-14T10:22:31.25-04:00"]),
        json!("2025-03-14T14:22:31.250Z"),
    );
}

#[test]
fn ts_utc_reads_epoch_seconds_and_milliseconds() {
    ok(
        "ts_utc",
        json!([1741962151000u64]),
        json!("2025-03-14T14:22:31Z"),
    );
    ok(
        "ts_utc",
        json!([1742064112331u64]),
        json!("2025-03-15T18:41:52.331Z"),
    );
    ok(
        "ts_utc",
        json!(["1741962151000"]),
        json!("2025-03-14T14:22:31Z"),
    );
    ok("ts_utc", json!([1741962151]), json!("2025-03-14T14:22:31Z"));
    ok(
        "ts_utc",
        json!(["1741962151"]),
        json!("2025-03-14T14:22:31Z"),
    );
    ok(
        "ts_utc",
        json!([1741962151000.0]),
        json!("2025-03-14T14:22:31Z"),
    );
    ok("ts_utc", json!([0]), json!("1970-01-01T00:00:00Z"));
    ok("ts_utc", json!([-1]), json!("1969-12-31T23:59:59Z"));
    // The threshold: up to 10^11 is seconds, above is milliseconds.
    ok(
        "ts_utc",
        json!([100_000_000_000u64]),
        json!("5138-11-16T09:46:40Z"),
    );
    ok(
        "ts_utc",
        json!([100_000_000_001u64]),
        json!("1973-03-03T09:46:40.001Z"),
    );
    err(
        "ts_utc",
        json!([1741962151.5]),
        "ts_utc(): `1741962151.5` is not a whole number of epoch",
    );
    err(
        "ts_utc",
        json!([i64::MAX]),
        "outside the supported time range",
    );
    err(
        "ts_utc",
        json!(["99999999999999999999"]),
        "outside the supported time range",
    );
}

#[test]
fn ts_utc_local_times_need_an_offset() {
    ok(
        "ts_utc",
        json!(["2025-03-15 10:04:12", "-04:00"]),
        json!("2025-03-15T14:04:12Z"),
    );
    ok(
        "ts_utc",
        json!(["2025-03-15T10:04:12", "+02:00"]),
        json!("2025-03-15T08:04:12Z"),
    );
    ok(
        "ts_utc",
        json!(["2025-03-15T10:04:12", "+0200"]),
        json!("2025-03-15T08:04:12Z"),
    );
    ok(
        "ts_utc",
        json!(["2025-03-15T10:04:12", "+02"]),
        json!("2025-03-15T08:04:12Z"),
    );
    ok(
        "ts_utc",
        json!(["2025-03-15T10:04:12", "Z"]),
        json!("2025-03-15T10:04:12Z"),
    );
    ok(
        "ts_utc",
        json!(["2025-03-15T10:04:12", "UTC"]),
        json!("2025-03-15T10:04:12Z"),
    );
    ok(
        "ts_utc",
        json!(["2025-03-15 10:04", "-04:00"]),
        json!("2025-03-15T14:04:00Z"),
    );
    ok(
        "ts_utc",
        json!(["2025-03-15 10:04:12.5", "-04:00"]),
        json!("2025-03-15T14:04:12.500Z"),
    );
    // An offset in the input wins over the assumed one.
    ok(
        "ts_utc",
        json!(["2025-03-14T10:22:31-04:00", "+02:00"]),
        json!("2025-03-14T14:22:31Z"),
    );
    ok(
        "ts_utc",
        json!([1741962151000u64, "+02:00"]),
        json!("2025-03-14T14:22:31Z"),
    );
    err(
        "ts_utc",
        json!(["2025-03-15 10:04:12"]),
        "ts_utc(): `2025-03-15 10:04:12` has no UTC offset; pass the offset",
    );
    err(
        "ts_utc",
        json!(["2025-03-15 10:04:12", "EST"]),
        "`EST` is not a UTC offset",
    );
    err(
        "ts_utc",
        json!(["2025-03-15 10:04:12", "America/New_York"]),
        "time-zone names are not supported",
    );
    err(
        "ts_utc",
        json!(["2025-03-15 10:04:12", "+24:00"]),
        "is not a UTC offset",
    );
    err(
        "ts_utc",
        json!(["2025-03-15 10:04:12", null]),
        "`null` is not a UTC offset",
    );
    err(
        "ts_utc",
        json!(["2025-03-15 10:04:12", -4]),
        "`-4` is not a UTC offset",
    );
}

#[test]
fn ts_utc_dates_are_midnight_utc() {
    ok(
        "ts_utc",
        json!(["2025-03-15"]),
        json!("2025-03-15T00:00:00Z"),
    );
    ok(
        "ts_utc",
        json!(["2025-03-15", "-04:00"]),
        json!("2025-03-15T00:00:00Z"),
    );
    ok(
        "ts_utc",
        json!(["2024-02-29"]),
        json!("2024-02-29T00:00:00Z"),
    );
}

#[test]
fn ts_utc_rejects_what_is_not_a_timestamp() {
    for bad in [
        "2025-02-30",
        "2025-02-29",
        "yesterday",
        "",
        "15/03/2025",
        "2025-03-15T25:00:00Z",
        "2025-03-15T10:61:00Z",
        "2025-03-15T10:00:60Z",
        "2025-03-15T10:00:00+",
        "2025-03-15T10:00:00 EST",
        "2025-03-15T10:00:00.Z",
        "2025-03-15T10:00:00.1234567890Z",
        "2025-03-15X10:00:00Z",
        "2025-3-15",
        "2025-03-15T10",
        "2025-03-15T10:00:00Zjunk",
        "２０２５-03-15",
        "2025-03-15Té",
    ] {
        err(
            "ts_utc",
            json!([bad]),
            "is not a timestamp; expected RFC 3339",
        );
    }
    err("ts_utc", json!([true]), "is not a timestamp (got boolean)");
    err("ts_utc", json!([null]), "(got null)");
}

#[test]
fn ts_date_in_utc_or_at_an_offset() {
    ok(
        "ts_date",
        json!(["2025-03-14T10:22:31-04:00"]),
        json!("2025-03-14"),
    );
    ok(
        "ts_date",
        json!(["2025-03-15T23:30:00-04:00"]),
        json!("2025-03-16"),
    );
    ok(
        "ts_date",
        json!(["2025-03-15T23:30:00-04:00", "-04:00"]),
        json!("2025-03-15"),
    );
    ok(
        "ts_date",
        json!(["2025-03-16T04:41:09Z", "-04:00"]),
        json!("2025-03-16"),
    );
    ok(
        "ts_date",
        json!(["2025-03-16T03:41:09Z", "-04:00"]),
        json!("2025-03-15"),
    );
    ok(
        "ts_date",
        json!(["2025-03-15 23:30:00", "-04:00"]),
        json!("2025-03-15"),
    );
    ok("ts_date", json!(["2025-03-15"]), json!("2025-03-15"));
    // A date is a date: an offset does not shift it.
    ok(
        "ts_date",
        json!(["2025-03-15", "-04:00"]),
        json!("2025-03-15"),
    );
    ok("ts_date", json!([1742064112331u64]), json!("2025-03-15"));
    err(
        "ts_date",
        json!(["2025-03-15 23:30:00"]),
        "ts_date(): `2025-03-15 23:30:00` has no UTC offset",
    );
    err(
        "ts_date",
        json!(["soon"]),
        "ts_date(): `soon` is not a timestamp",
    );
    err(
        "ts_date",
        json!(["2025-03-15", "later"]),
        "`later` is not a UTC offset",
    );
}

#[test]
fn ts_millis_to_epoch() {
    ok(
        "ts_millis",
        json!(["2025-03-14T10:22:31-04:00"]),
        json!(1741962151000u64),
    );
    ok(
        "ts_millis",
        json!(["2025-03-15T18:41:52.331Z"]),
        json!(1742064112331u64),
    );
    ok("ts_millis", json!(["2025-03-15"]), json!(1741996800000u64));
    ok(
        "ts_millis",
        json!([1742064112331u64]),
        json!(1742064112331u64),
    );
    ok("ts_millis", json!([1741962151]), json!(1741962151000u64));
    ok(
        "ts_millis",
        json!(["2025-03-14 10:22:31", "-04:00"]),
        json!(1741962151000u64),
    );
    ok("ts_millis", json!(["1969-12-31T23:59:59Z"]), json!(-1000));
    err(
        "ts_millis",
        json!(["2025-03-14 10:22:31"]),
        "ts_millis(): `2025-03-14 10:22:31` has no UTC offset",
    );
    err("ts_millis", json!([{}]), "is not a timestamp");
}

// ------------------------------------------------------------------------------------------
// Reference tables

fn data(path: &str) -> String {
    let full = format!("{}/tests/data/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn json_data(path: &str) -> Value {
    serde_json::from_str(&data(path)).unwrap()
}

fn project_tables() -> Arc<Tables> {
    let mut tables = Tables::default();
    for file in ["stores.csv", "amazon_skus.json"] {
        let path = format!("tables/{file}");
        let name = file.split('.').next().unwrap();
        let table = Tables::parse_file(name, &path, data(&path).as_bytes()).unwrap();
        tables = tables.with_table(name, table);
    }
    Arc::new(tables.with_table("tax_codes", json!({"14": "reduced", "MA_STD": "standard"})))
}

#[test]
fn lookup_finds_rows_and_defaults() {
    with_tables(&project_tables(), || {
        ok(
            "lookup",
            json!(["stores", "S014"]),
            json!({"store_id": "S014", "store_name": "Boston Back Bay", "utc_offset": "-04:00",
                   "currency": "USD", "region": "MA"}),
        );
        ok(
            "lookup",
            json!(["amazon_skus", "NW-TS3-CHR-L"]),
            json!({"key": "NW-TS3-CHR-L", "sku": "TS3-CHR-L", "unit": "PK3"}),
        );
        ok("lookup", json!(["tax_codes", 14]), json!("reduced"));
        ok("lookup", json!(["tax_codes", "MA_STD"]), json!("standard"));
        ok(
            "lookup",
            json!(["stores", "S999", "fallback"]),
            json!("fallback"),
        );
        ok("lookup", json!(["stores", "S999", null]), Value::Null);
        ok("lookup", json!(["stores", null, "none"]), json!("none"));
        let row = call("lookup", json!(["stores", "S014"])).unwrap();
        ok("lookup", json!(["stores", "S014", "unused"]), row);
        err(
            "lookup",
            json!(["stores", "S999"]),
            "lookup(): key `S999` not in table `stores`",
        );
        err(
            "lookup",
            json!(["stores", "s014"]),
            "key `s014` not in table `stores`",
        );
        err("lookup", json!(["stores", null]), "lookup(): key is null");
        err(
            "lookup",
            json!(["stores", ["S014"]]),
            "must be a string or a number, not array",
        );
        err(
            "lookup",
            json!(["store", "S014"]),
            "lookup(): unknown table `store`; did you mean `stores`? (known tables: amazon_skus, stores, tax_codes)",
        );
        err(
            "lookup",
            json!(["prices", "S014"]),
            "known tables: amazon_skus, stores, tax_codes",
        );
        err(
            "lookup",
            json!([1, "S014"]),
            "table name `1` must be a string",
        );
    });
}

#[test]
fn lookup_without_tables_says_so() {
    err(
        "lookup",
        json!(["stores", "S014"]),
        "lookup(): unknown table `stores`: no reference tables are loaded",
    );
    with_tables(&Arc::new(Tables::default()), || {
        err(
            "lookup",
            json!(["stores", "S014"]),
            "no reference tables are loaded",
        );
    });
}

#[test]
fn lookup_in_expressions() {
    with_tables(&project_tables(), || {
        let input = json!({"store_id": "S027"});
        assert_eq!(
            jmes("lookup('stores', store_id).store_name", &input),
            Ok(json!("Cambridge \"Harvard Sq\", MA"))
        );
        assert_eq!(
            rhai("lookup(\"stores\", body.store_id).store_name", &input),
            Ok(json!("Cambridge \"Harvard Sq\", MA"))
        );
        assert_eq!(
            jmes(
                "lookup('stores', 'S404', `{\"utc_offset\": \"+00:00\"}`).utc_offset",
                &input
            ),
            Ok(json!("+00:00"))
        );
        assert_eq!(
            rhai(
                "lookup(\"stores\", \"S404\", #{utc_offset: \"+00:00\"}).utc_offset",
                &input
            ),
            Ok(json!("+00:00"))
        );
    });
}

#[test]
fn parse_file_reads_csv_tables() {
    let t = Tables::parse_file(
        "stores",
        "tables/stores.csv",
        b"\xef\xbb\xbfid,name,note\r\nA,\"Alpha, Inc.\",\"say \"\"hi\"\"\"\r\nB,Beta,\"two\nlines\"\r\n\r\n",
    )
    .unwrap();
    assert_eq!(
        t,
        json!({
            "A": {"id": "A", "name": "Alpha, Inc.", "note": "say \"hi\""},
            "B": {"id": "B", "name": "Beta", "note": "two\nlines"},
        })
    );
    // Values stay strings, even numeric ones; the file's row order is kept.
    let t = Tables::parse_file("rates", "RATES.CSV", b"code,rate\nMA_STD,0.0625\n007,1\n").unwrap();
    assert_eq!(
        t,
        json!({"MA_STD": {"code": "MA_STD", "rate": "0.0625"}, "007": {"code": "007", "rate": "1"}})
    );
    assert_eq!(
        t.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["MA_STD", "007"]
    );
    // A header alone is an empty table.
    assert_eq!(
        Tables::parse_file("e", "e.csv", b"a,b\n").unwrap(),
        json!({})
    );
}

#[test]
fn parse_file_csv_errors_point_at_the_line() {
    let e = |bytes: &[u8]| Tables::parse_file("t", "tables/t.csv", bytes).unwrap_err();
    assert_eq!(
        e(b"k,v\nA,1\nB\n"),
        "table `t` (tables/t.csv): line 3: 1 field but the header has 2 columns"
    );
    assert_eq!(
        e(b"k,v\nA,1\nA,2\n"),
        "table `t` (tables/t.csv): line 3: duplicate key `A` (first on line 2)"
    );
    assert_eq!(
        e(b"k,v\n,1\n"),
        "table `t` (tables/t.csv): line 2: empty key (first column `k`)"
    );
    assert_eq!(
        e(b""),
        "table `t` (tables/t.csv): empty CSV: expected a header row"
    );
    assert_eq!(
        e(b"k,k\n"),
        "table `t` (tables/t.csv): line 1: duplicate column `k`"
    );
    assert_eq!(
        e(b"k,\n"),
        "table `t` (tables/t.csv): line 1: column 2 has no name"
    );
    assert_eq!(
        e(b"k,v\nA,\"open\n"),
        "table `t` (tables/t.csv): line 2: unclosed quoted field"
    );
    assert!(e(b"k,v\nA,x\"y\n").contains("line 2: quote inside an unquoted field"));
    assert!(e(b"k,v\nA,\"x\"y\n").contains("line 2: unexpected `y` after a closing quote"));
    assert!(e(b"k,v\n\"multi\nline\",1\nA,1,2\n").contains("line 4: 3 fields"));
    assert!(e(b"k,v\nA,\xff\n").contains("is not UTF-8"));
}

#[test]
fn parse_file_reads_json_tables() {
    let object = Tables::parse_file("m", "m.json", br#"{"a": {"x": 1}, "b": "two"}"#).unwrap();
    assert_eq!(object, json!({"a": {"x": 1}, "b": "two"}));
    let array = Tables::parse_file(
        "m",
        "m.json",
        br#"[{"key": "a", "x": 1}, {"key": 7, "x": 2}]"#,
    )
    .unwrap();
    assert_eq!(
        array,
        json!({"a": {"key": "a", "x": 1}, "7": {"key": 7, "x": 2}})
    );
    let e = |bytes: &[u8]| Tables::parse_file("m", "tables/m.json", bytes).unwrap_err();
    assert_eq!(
        e(br#"[{"x": 1}]"#),
        "table `m` (tables/m.json): element 0 has no `key` field"
    );
    assert_eq!(
        e(br#"[{"key": "a"}, {"key": "a"}]"#),
        "table `m` (tables/m.json): element 1: duplicate key `a`"
    );
    assert!(
        e(br#"[{"key": 1.5}]"#).contains("element 0: `key` `1.5` must be a string or an integer")
    );
    assert!(e(br#"[{"key": "a"}, 3]"#).contains("element 1 is number `3`, expected an object"));
    assert!(e(br#""text""#).contains("a JSON table must be an object"));
    assert!(e(b"{").contains("(tables/m.json): the file is not valid JSON"));
    assert!(
        e(br#"{"S1": 1, "S1": 2}"#).contains("the file has the key `S1` twice"),
        "{}",
        e(br#"{"S1": 1, "S1": 2}"#)
    );
    assert_eq!(
        Tables::parse_file("m", "tables/m.yaml", b"a: 1").unwrap_err(),
        "table `m` (tables/m.yaml): unsupported file type; a table is a `.json` or `.csv` file"
    );
}

// ------------------------------------------------------------------------------------------
// Engines: registration, arity, Rhai specifics

#[test]
fn every_function_is_registered_in_both_engines_at_every_arity() {
    for def in FUNCTIONS {
        for arity in def.min_args..=def.max_args {
            let args = vec!["\"1\""; arity].join(", ");
            let expr = format!("{}({})", def.name, vec!["'1'"; arity].join(", "));
            JmesPath::compile(&expr).unwrap_or_else(|e| panic!("{expr}: {e:?}"));
            let script = format!("{}({args})", def.name);
            // It may fail on the argument values, but never as an unknown function.
            if let Err(e) = rhai(&script, &json!({})) {
                assert!(
                    e.contains(&format!("{}()", def.name)) && !e.contains("Function not found"),
                    "{script}: {e}"
                );
            }
        }
        assert!(!def.doc.is_empty(), "{} has no doc line", def.name);
    }
}

#[test]
fn wrong_argument_counts_are_errors_in_both_engines() {
    // JMESPath: caught when the expression compiles (load time), pointing at the name.
    assert_eq!(
        jmes("dec_add('1')", &json!({})),
        Err("compile error: `dec_add()` takes 2 arguments, this call passes 1 at 0".to_string())
    );
    assert_eq!(
        jmes("dec_round('1', `2`, 'half_up', 'x')", &json!({})),
        Err(
            "compile error: `dec_round()` takes 2 to 3 arguments, this call passes 4 at 0"
                .to_string()
        )
    );
    assert_eq!(
        jmes("a || dec('1', '2')", &json!({})),
        Err("compile error: `dec()` takes 1 argument, this call passes 2 at 5".to_string())
    );
    let e = rhai("dec_add(\"1\")", &json!({})).unwrap_err();
    assert!(e.contains("Function not found: dec_add"), "{e}");
    let e = rhai("dec_round(\"1\", 2, \"half_up\", \"x\")", &json!({})).unwrap_err();
    assert!(e.contains("Function not found: dec_round"), "{e}");
}

#[test]
fn rhai_literals_and_builtins() {
    let r = |s: &str| rhai(s, &json!({}));
    // Rhai has a built-in to_int(FLOAT) that truncates: ours shadows it.
    assert!(
        r("to_int(1.5)")
            .unwrap_err()
            .contains("to_int(): `1.5` is not a whole number")
    );
    assert_eq!(r("to_int(2.0)"), Ok(json!(2)));
    assert_eq!(r("to_int('7')"), Ok(json!(7)));
    assert_eq!(r("to_int(\"2\") + 1"), Ok(json!(3)));
    assert_eq!(r("\"2\".to_int()"), Ok(json!(2)));
    assert_eq!(r("dec_add(\"1.10\", 2)"), Ok(json!("3.10")));
    assert_eq!(r("dec_round(\"2.5\", 0)"), Ok(json!("2")));
    assert_eq!(r("dec_round(\"2.5\", 0, \"half_up\")"), Ok(json!("3")));
    assert_eq!(r("dec_sum([\"1.5\", 2, 0.25])"), Ok(json!("3.75")));
    assert_eq!(r("money(\"89\", \"usd\").amount"), Ok(json!("89.00")));
    assert_eq!(r("blank_to_null(\" \") == ()"), Ok(json!(true)));
    assert_eq!(r("dec_cmp(\"2\", \"10\") < 0"), Ok(json!(true)));
    // Errors are Rhai runtime errors whose value is the message.
    assert_eq!(
        r("let m = (); try { dec_add(\"abc\", 1); } catch (e) { m = e; } m"),
        Ok(json!("dec_add(): `abc` is not a decimal number"))
    );
    assert_eq!(
        r("let m = (); try { lookup(\"stores\", \"S014\"); } catch (e) { m = e; } m"),
        Ok(json!(
            "lookup(): unknown table `stores`: no reference tables are loaded (add \
             `tables/stores.csv` or `.json` to the project)"
        ))
    );
    let e = r("let x = 1;\ndec_div(\"1\", \"0\", 2)").unwrap_err();
    assert!(e.contains("dec_div(): division by zero"), "{e}");
    assert!(e.contains("line 2"), "the error is located: {e}");
    // A value Rhai cannot hand over as JSON.
    let e = r("dec(|x| x)").unwrap_err();
    assert!(e.contains("dec(): argument 1"), "{e}");
}

#[test]
fn scripts_can_define_functions_with_the_same_name_and_another_arity() {
    // The Square mapping defines its own `money(m)`; it must keep working next to `money(a, c)`.
    let script = r#"
        fn money(m) { "script:" + m }
        [money("x"), money("89", "USD").amount]
    "#;
    assert_eq!(rhai(script, &json!({})), Ok(json!(["script:x", "89.00"])));
}

// ------------------------------------------------------------------------------------------
// Proofs on the real channel payloads

#[test]
fn shopify_totals_add_up_with_dec_sum() {
    let order = json_data("channels/shopify/orders_create.body.json");
    let j = |e: &str| jmes(e, &order).unwrap_or_else(|m| panic!("{e}: {m}"));
    let r = |s: &str| rhai(s, &order).unwrap_or_else(|m| panic!("{s}: {m}"));
    // subtotal + tax + shipping = total_price, all money strings.
    let total = "dec_sum([subtotal_price, total_tax, total_shipping_price_set.shop_money.amount])";
    assert_eq!(j(total), json!("138.96"));
    assert_eq!(j(&format!("dec_cmp({total}, total_price)")), json!(0));
    assert_eq!(
        r("dec_sum([body.subtotal_price, body.total_tax, \
            body.total_shipping_price_set.shop_money.amount]) == body.total_price"),
        json!(true)
    );
    // Lines: price × quantity sums to total_line_items_price.
    let lines = "dec_sum(line_items[].dec_mul(price, quantity))";
    assert_eq!(j(lines), json!("137.00"));
    assert_eq!(
        j(&format!("{lines} == total_line_items_price")),
        json!(true)
    );
    assert_eq!(
        r("dec_sum(body.line_items.map(|li| dec_mul(li.price, li.quantity)))"),
        json!("137.00")
    );
    // Discounts live in discount_allocations (total_discount says "0.00"): lines − allocations
    // = subtotal.
    assert_eq!(
        j("dec_sub(total_line_items_price, dec_sum(line_items[].discount_allocations[].amount))"),
        j("subtotal_price")
    );
    assert_eq!(j("dec_sum(line_items[].total_discount)"), json!("0.00"));
    assert_eq!(
        j("dec_sum(line_items[].discount_allocations[].amount) == total_discounts"),
        json!(true)
    );
    // Line tax lines add up to the order tax.
    assert_eq!(
        j("dec_sum(line_items[].tax_lines[].price) == total_tax"),
        json!(true)
    );
    // The tax rate is a JSON number (0.0625) and still exact.
    assert_eq!(j("dec(tax_lines[0].rate)"), json!("0.0625"));
    assert_eq!(
        j(
            "dec_round(dec_mul(dec_sub(line_items[0].price, line_items[0].discount_allocations[0].amount), tax_lines[0].rate), `2`)"
        ),
        j("line_items[0].tax_lines[0].price")
    );
    assert_eq!(
        j("money(total_price, currency)"),
        json!({"amount": "138.96", "currency": "USD"})
    );
    assert_eq!(j("to_minor(total_price, currency)"), json!(13896));
}

#[test]
fn shopify_refund_number_amounts_match_their_string_twins() {
    let refund = json_data("channels/shopify/refunds_create.body.json");
    let j = |e: &str| jmes(e, &refund).unwrap_or_else(|m| panic!("{e}: {m}"));
    // refund_line_items[].subtotal is a JSON number (80.1), its *_set twin a string ("80.10").
    assert_eq!(j("refund_line_items[0].subtotal"), json!(80.1));
    assert_eq!(
        j("refund_line_items[].dec_fmt(subtotal, `2`)"),
        j("refund_line_items[].subtotal_set.shop_money.amount")
    );
    assert_eq!(
        j("refund_line_items[].money(total_tax, total_tax_set.shop_money.currency_code)"),
        json!([{"amount": "5.01", "currency": "USD"}])
    );
    assert_eq!(
        rhai(
            "dec_fmt(body.refund_line_items[0].subtotal, 2) == \
             body.refund_line_items[0].subtotal_set.shop_money.amount",
            &refund
        ),
        Ok(json!(true))
    );
    assert_eq!(j("ts_utc(created_at)"), json!("2025-03-28T19:04:12Z"));
}

#[test]
fn square_minor_units_become_decimals() {
    let order = json_data("channels/square/retrieveOrder.response.json");
    let j = |e: &str| jmes(e, &order).unwrap_or_else(|m| panic!("{e}: {m}"));
    let r = |s: &str| rhai(s, &order).unwrap_or_else(|m| panic!("{s}: {m}"));
    assert_eq!(
        j("from_minor(order.total_money.amount, order.total_money.currency)"),
        json!("14.42")
    );
    assert_eq!(
        r("from_minor(body.order.total_money.amount, body.order.total_money.currency)"),
        json!("14.42")
    );
    assert_eq!(
        j(
            "money(from_minor(order.total_money.amount, order.total_money.currency), order.total_money.currency)"
        ),
        json!({"amount": "14.42", "currency": "USD"})
    );
    // Line totals add up to the order total, and tenders to what was charged.
    assert_eq!(
        j("dec_sum(order.line_items[].from_minor(total_money.amount, total_money.currency))"),
        json!("14.42")
    );
    assert_eq!(
        j("dec_sum(order.tenders[].from_minor(amount_money.amount, amount_money.currency))"),
        json!("14.42")
    );
    // Quantities are strings: unit price × quantity = gross sales.
    assert_eq!(j("order.line_items[].to_int(quantity)"), json!([2, 1]));
    assert_eq!(
        j(
            "order.line_items[].dec_mul(from_minor(base_price_money.amount, base_price_money.currency), to_int(quantity))"
        ),
        j("order.line_items[].from_minor(gross_sales_money.amount, gross_sales_money.currency)")
    );
    assert_eq!(
        r(
            "body.order.line_items.map(|li| dec_mul(from_minor(li.base_price_money.amount, \"USD\"), li.quantity))"
        ),
        json!(["9.00", "5.25"])
    );
    // The tax percentage is a decimal string: 8.875 % of the discounted lines, rounded.
    assert_eq!(
        j(
            "order.line_items[].dec_round(dec_div(dec_mul(dec_sub(gross_sales_money.amount, total_discount_money.amount), `\"8.875\"`), `100`, `4`), `0`)"
        ),
        json!(["74", "43"])
    );
    // And back: decimal to minor units.
    assert_eq!(
        j(
            "to_minor(from_minor(order.total_money.amount, order.total_money.currency), order.total_money.currency)"
        ),
        json!(1442)
    );
    assert_eq!(
        j("ts_utc(order.created_at)"),
        json!("2025-03-15T18:41:52.331Z")
    );
    assert_eq!(j("ts_millis(order.created_at)"), json!(1742064112331u64));
}

#[test]
fn amazon_unit_prices_and_totals() {
    let items = json_data("channels/amazon/getOrderItems.v0.response.json");
    let order = json_data("channels/amazon/getOrder.v0.response.json");
    let j = |e: &str| jmes(e, &items).unwrap_or_else(|m| panic!("{e}: {m}"));
    // ItemPrice is the line price: unit price = ItemPrice / QuantityOrdered.
    assert_eq!(
        j("payload.OrderItems[].dec_div(ItemPrice.Amount, QuantityOrdered, `2`)"),
        json!(["49.99", "9.99"])
    );
    assert_eq!(
        j(
            "payload.OrderItems[].dec_cmp(dec_mul(dec_div(ItemPrice.Amount, QuantityOrdered, `2`), QuantityOrdered), ItemPrice.Amount)"
        ),
        json!([0, 0])
    );
    assert_eq!(
        rhai(
            "body.payload.OrderItems.map(|i| dec_div(i.ItemPrice.Amount, i.QuantityOrdered, 2))",
            &items
        ),
        Ok(json!(["49.99", "9.99"]))
    );
    // OrderTotal = items + item tax − promotion discounts (and their tax): the NOTES' sign
    // convention reproduces the order total of the same order.
    let both = json!({"order": order["payload"], "items": items["payload"]["OrderItems"]});
    let total = jmes(
        "dec_sub(dec_sum(items[].[ItemPrice.Amount, ItemTax.Amount, ShippingPrice.Amount, ShippingTax.Amount][]), \
                 dec_sum(items[].[PromotionDiscount.Amount, PromotionDiscountTax.Amount, ShippingDiscount.Amount, ShippingDiscountTax.Amount][]))",
        &both,
    )
    .unwrap();
    assert_eq!(total, json!("74.93"));
    assert_eq!(jmes("order.OrderTotal.Amount", &both), Ok(total));
    // String booleans and string ids.
    assert_eq!(
        j("payload.OrderItems[].to_bool(IsGift)"),
        json!([false, false])
    );
    assert_eq!(
        j("payload.OrderItems[].to_bool(BuyerRequestedCancel.IsBuyerRequestedCancel)"),
        json!([false, false])
    );
    assert_eq!(
        j("payload.OrderItems[].to_int(ProductInfo.NumberOfItems)"),
        json!([1, 3])
    );
    assert_eq!(
        j("payload.OrderItems[].id_str(OrderItemId)"),
        json!(["45927183650218", "45927183650330"])
    );
    // (A projection drops nulls, so look at one item.)
    assert_eq!(
        j("payload.OrderItems[0].blank_to_null(BuyerRequestedCancel.BuyerCancelReason)"),
        Value::Null
    );
    assert_eq!(
        j(
            "payload.OrderItems[].{sku: SellerSKU, reason: blank_to_null(BuyerRequestedCancel.BuyerCancelReason)}"
        ),
        json!([{"sku": "NW-MCS-NVY-M", "reason": null}, {"sku": "NW-TS3-CHR-L", "reason": null}])
    );
    with_tables(&project_tables(), || {
        assert_eq!(
            jmes(
                "payload.OrderItems[].lookup('amazon_skus', SellerSKU).sku",
                &items
            ),
            Ok(json!(["MCS-NVY-M", "TS3-CHR-L"]))
        );
    });
    assert_eq!(
        jmes("ts_utc(PurchaseDate)", &order["payload"]),
        Ok(json!("2025-03-14T15:06:47Z"))
    );
}

#[test]
fn shopify_created_at_with_offset_becomes_utc() {
    let order = json_data("channels/shopify/orders_create.body.json");
    assert_eq!(
        jmes("created_at", &order),
        Ok(json!("2025-03-14T10:22:31-04:00"))
    );
    assert_eq!(
        jmes("ts_utc(created_at)", &order),
        Ok(json!("2025-03-14T14:22:31Z"))
    );
    assert_eq!(
        rhai("ts_utc(body.created_at)", &order),
        Ok(json!("2025-03-14T14:22:31Z"))
    );
    assert_eq!(
        jmes("ts_utc(processed_at)", &order),
        Ok(json!("2025-03-14T14:22:30Z"))
    );
    assert_eq!(
        jmes("ts_date(created_at, '-04:00')", &order),
        Ok(json!("2025-03-14"))
    );
    assert_eq!(
        jmes("ts_millis(updated_at) > ts_millis(created_at)", &order),
        Ok(json!(true))
    );
    // The webhook's X-Shopify-Triggered-At header has nanoseconds; they are kept.
    assert_eq!(
        jmes("ts_utc(@)", &json!("2025-03-14T14:22:32.881624375Z")),
        Ok(json!("2025-03-14T14:22:32.881624375Z"))
    );
}

#[test]
fn shopify_64_bit_ids_stay_exact() {
    let text = data("channels/shopify/test_notification.body.json");
    let order: Value = serde_json::from_str(&text).unwrap();
    assert!(
        text.contains("\"id\": 820982911946154508,"),
        "the fixture has the id as a number"
    );
    assert_eq!(jmes("id_str(id)", &order), Ok(json!("820982911946154508")));
    assert_eq!(
        rhai("id_str(body.id)", &order),
        Ok(json!("820982911946154508"))
    );
    assert_eq!(
        jmes("line_items[].id_str(id)", &order),
        Ok(json!(["866550311766439020", "141249953214522974"]))
    );
    assert_eq!(
        rhai("body.line_items.map(|li| id_str(li.id))", &order),
        Ok(json!(["866550311766439020", "141249953214522974"]))
    );
    // Through f64 (JavaScript's JSON.parse) the id would have become 820982911946154500.
    assert_ne!(
        format!("{}", 820982911946154508u64 as f64),
        "820982911946154508"
    );
    // The id inside the GraphQL id and the numeric id agree.
    assert_eq!(
        jmes("ends_with(admin_graphql_api_id, id_str(id))", &order),
        Ok(json!(true))
    );
    let real = json_data("channels/shopify/orders_create.body.json");
    assert_eq!(jmes("id_str(id)", &real), Ok(json!("6104523881562")));
    assert_eq!(
        jmes("line_items[].id_str(id)", &real),
        Ok(json!(["15893214560346", "15893214593114"]))
    );
}

/// The POS lines CSV as JSON rows (every value a string).
fn pos_rows(file: &str) -> Vec<Value> {
    let text = data(&format!("channels/pos/{file}"));
    let mut records = functions::parse_csv(&text).unwrap().into_iter();
    let (_, header) = records.next().unwrap();
    records
        .map(|(_, fields)| {
            assert_eq!(fields.len(), header.len());
            Value::Object(
                header
                    .iter()
                    .cloned()
                    .zip(fields.into_iter().map(Value::String))
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn pos_local_timestamps_with_an_assumed_offset() {
    let rows = pos_rows("store_sales_lines.csv");
    assert_eq!(rows.len(), 6);
    with_tables(&project_tables(), || {
        for row in &rows {
            // The export has `timestamp_local` with its offset; many POS exports drop it.
            // Take the local wall-clock time alone and recover UTC from the store's offset.
            let local = row["timestamp_local"].as_str().unwrap()[..19].to_string();
            let mut row = row.clone();
            row["local"] = json!(local);
            assert!(
                jmes("ts_utc(local)", &row)
                    .unwrap_err()
                    .contains("has no UTC offset"),
                "a zone-less time is not guessed"
            );
            let expr = "ts_utc(local, lookup('stores', store_id).utc_offset)";
            assert_eq!(jmes(expr, &row), Ok(row["timestamp_utc"].clone()), "{row}");
            assert_eq!(
                rhai(
                    "ts_utc(body.local, lookup(\"stores\", body.store_id).utc_offset)",
                    &row
                ),
                Ok(row["timestamp_utc"].clone())
            );
            assert_eq!(
                jmes("ts_utc(timestamp_local)", &row),
                Ok(row["timestamp_utc"].clone())
            );
        }
    });
    // The late-night sale: the store's trading day (business_date) is the 15th, but the sale
    // happened on the 16th both locally and in UTC; no timestamp function can derive it.
    let late = rows
        .iter()
        .find(|r| r["transaction_id"] == "S027-R01-20250316-000003")
        .unwrap();
    assert_eq!(late["business_date"], "2025-03-15");
    assert_eq!(
        jmes("ts_date(timestamp_local, '-04:00')", late),
        Ok(json!("2025-03-16"))
    );
    assert_eq!(
        jmes("ts_date(timestamp_utc)", late),
        Ok(json!("2025-03-16"))
    );
}

#[test]
fn pos_line_arithmetic_and_tax_rounding() {
    let rows = pos_rows("store_sales_lines.csv");
    for row in &rows {
        let j = |e: &str| jmes(e, row).unwrap_or_else(|m| panic!("{e}: {m}"));
        // qty × unit_price − discount = line_net; line_net + tax = line_total (returns too).
        assert_eq!(
            j("dec_sub(dec_mul(qty, unit_price), line_discount)"),
            row["line_net"],
            "{row}"
        );
        assert_eq!(
            j("dec_add(line_net, tax_amount)"),
            row["line_total"],
            "{row}"
        );
        // The tax amounts are line_net × rate rounded half up (commercial rounding).
        assert_eq!(
            j("dec_round(dec_mul(line_net, tax_rate), `2`, 'half_up')"),
            row["tax_amount"],
            "{row}"
        );
        assert_eq!(
            j("to_int(qty)"),
            json!(row["qty"].as_str().unwrap().parse::<i64>().unwrap())
        );
    }
    // 18.00 × 0.0625 = 1.125: banker's rounding (the default) would give 1.12, the export says
    // 1.13. Reproducing POS tax needs the explicit half_up.
    let bottle = &rows[1];
    assert_eq!(
        jmes("dec_mul(line_net, tax_rate)", bottle),
        Ok(json!("1.125000"))
    );
    assert_eq!(jmes("tax_amount", bottle), Ok(json!("1.13")));
    assert_eq!(
        jmes("dec_round(dec_mul(line_net, tax_rate), `2`)", bottle),
        Ok(json!("1.12"))
    );

    // Tenders of a transaction add up to its lines (split tender: gift card + cash).
    let tenders = pos_rows("store_sales_tenders.csv");
    let doc = json!({"lines": rows, "tenders": tenders});
    for txn in [
        "S014-R01-20250315-000118",
        "S014-R02-20250315-000042",
        "S014-R01-20250315-000131",
    ] {
        let lines = jmes(
            &format!("dec_sum(lines[?transaction_id=='{txn}'].line_total)"),
            &doc,
        );
        let paid = jmes(
            &format!("dec_sum(tenders[?transaction_id=='{txn}'].tender_amount)"),
            &doc,
        );
        assert_eq!(lines, paid, "{txn}");
    }
    assert_eq!(
        jmes(
            "dec_sum(tenders[?transaction_id=='S014-R01-20250315-000118'].tender_amount)",
            &doc
        ),
        Ok(json!("108.13"))
    );
    // The return: a negative amount in minor units.
    assert_eq!(
        jmes(
            "tenders[?tender_amount=='-89.00'] | [0].to_minor(tender_amount, currency)",
            &doc
        ),
        Ok(json!(-8900))
    );
}

// ------------------------------------------------------------------------------------------
// Properties

mod properties {
    use super::*;
    use proptest::prelude::*;

    static ADD_SUB: LazyLock<JmesPath> =
        LazyLock::new(|| JmesPath::compile("dec_sub(dec_add(a, b), b)").unwrap());
    static MINOR_ROUND_TRIP: LazyLock<JmesPath> =
        LazyLock::new(|| JmesPath::compile("to_minor(from_minor(n, c), c)").unwrap());
    static DIV: LazyLock<JmesPath> =
        LazyLock::new(|| JmesPath::compile("dec_div(p, q, s, mode)").unwrap());
    static MS_ROUND_TRIP: LazyLock<JmesPath> =
        LazyLock::new(|| JmesPath::compile("ts_millis(ts_utc(ms))").unwrap());

    /// A decimal string with up to 12 integer digits and up to 6 decimals, and its parts.
    fn decimal() -> impl Strategy<Value = (bool, u64, String)> {
        (any::<bool>(), 0u64..1_000_000_000_000, "[0-9]{0,6}")
    }

    fn text((negative, int, frac): &(bool, u64, String)) -> String {
        let sign = if *negative { "-" } else { "" };
        if frac.is_empty() {
            format!("{sign}{int}")
        } else {
            format!("{sign}{int}.{frac}")
        }
    }

    /// The canonical form of `d` written with `scale` decimals.
    fn padded((negative, int, frac): &(bool, u64, String), scale: usize) -> String {
        let frac = format!("{frac:0<scale$}");
        let zero = *int == 0 && frac.bytes().all(|b| b == b'0');
        let sign = if *negative && !zero { "-" } else { "" };
        if scale == 0 {
            format!("{sign}{int}")
        } else {
            format!("{sign}{int}.{frac}")
        }
    }

    /// `p / q` rounded to `s` decimals, in i128 arithmetic: the oracle for dec_div.
    fn oracle(p: i64, q: i64, s: u32, half_up: bool) -> String {
        let num = i128::from(p) * 10i128.pow(s);
        let den = i128::from(q);
        let (mut quot, rem) = (num / den, num % den);
        let twice = 2 * rem.abs();
        let round_away = match twice.cmp(&den.abs()) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => half_up || quot % 2 != 0,
        };
        if round_away {
            quot += if (num < 0) != (den < 0) { -1 } else { 1 };
        }
        let negative = quot < 0;
        let digits = format!("{:0>width$}", quot.abs(), width = s as usize + 1);
        let (int, frac) = digits.split_at(digits.len() - s as usize);
        let sign = if negative { "-" } else { "" };
        if s == 0 {
            format!("{sign}{int}")
        } else {
            format!("{sign}{int}.{frac}")
        }
    }

    proptest! {
        #[test]
        fn add_then_sub_gives_back_a(a in decimal(), b in decimal()) {
            let out = ADD_SUB.search(&json!({"a": text(&a), "b": text(&b)})).unwrap();
            // Same value, written at the larger scale of the two.
            let scale = a.2.len().max(b.2.len());
            prop_assert_eq!(out, json!(padded(&a, scale)));
        }

        #[test]
        fn from_minor_then_to_minor_gives_back_n(n in any::<i64>(), i in 0usize..1000) {
            let codes: Vec<&str> = functions::money::known_currencies().collect();
            let c = codes[i % codes.len()];
            let out = MINOR_ROUND_TRIP.search(&json!({"n": n, "c": c})).unwrap();
            prop_assert_eq!(out, json!(n));
        }

        #[test]
        fn dec_div_matches_integer_arithmetic(
            p in -10_000_000_000i64..10_000_000_000,
            q in (-1_000_000i64..1_000_000).prop_filter("non-zero", |q| *q != 0),
            s in 0u32..8,
            half_up in any::<bool>(),
        ) {
            let mode = if half_up { "half_up" } else { "half_even" };
            let out = DIV.search(&json!({"p": p, "q": q, "s": s, "mode": mode})).unwrap();
            prop_assert_eq!(out, json!(oracle(p, q, s, half_up)));
        }

        #[test]
        fn multiply_then_divide_gives_back_a(a in decimal(), b in decimal()) {
            prop_assume!(b.1 != 0 || b.2.bytes().any(|c| c != b'0'));
            let expr = JmesPath::compile("dec_div(dec_mul(a, b), b, s)").unwrap();
            let out = expr
                .search(&json!({"a": text(&a), "b": text(&b), "s": a.2.len()}))
                .unwrap();
            prop_assert_eq!(out, json!(padded(&a, a.2.len())));
        }

        #[test]
        fn epoch_millis_round_trip(ms in 100_000_000_001i64..253_402_300_799_999) {
            let out = MS_ROUND_TRIP.search(&json!({"ms": ms})).unwrap();
            prop_assert_eq!(out, json!(ms));
        }

        #[test]
        fn functions_never_panic_on_any_json(args in proptest::collection::vec(json_value(), 0..4)) {
            for def in FUNCTIONS {
                let _ = functions::call(def, &args);
            }
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "\\PC{0,30}".prop_map(Value::from),
            "[-+0-9.eE: TZ]{0,30}".prop_map(Value::from),
            prop_oneof![
                Just("USD"),
                Just("JPY"),
                Just("half_up"),
                Just("+02:00"),
                Just("2")
            ]
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(2, 8, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::btree_map("[a-z]{1,3}", inner, 0..3)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }
}

// ------------------------------------------------------------------------------------------
// docs/functions.md cannot drift

const DOC: &str = include_str!("../../../docs/functions.md");

/// Fenced blocks of the doc: (info string, body, line of the fence).
fn fenced_blocks(doc: &str) -> Vec<(String, String, usize)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String, usize)> = None;
    for (i, line) in doc.lines().enumerate() {
        match current.take() {
            None => {
                if let Some(info) = line.strip_prefix("```") {
                    current = Some((info.trim().to_string(), String::new(), i + 1));
                }
            }
            Some((info, mut body, start)) => {
                if line.trim_end() == "```" {
                    blocks.push((info, body, start));
                } else {
                    body.push_str(line);
                    body.push('\n');
                    current = Some((info, body, start));
                }
            }
        }
    }
    assert!(
        current.is_none(),
        "unclosed fenced block in docs/functions.md"
    );
    blocks
}

/// `key: value` examples of a block, separated by blank lines.
fn examples(body: &str) -> Vec<Vec<(String, String)>> {
    body.split("\n\n")
        .filter(|chunk| !chunk.trim().is_empty())
        .map(|chunk| {
            chunk
                .lines()
                .map(|l| {
                    let (k, v) = l
                        .split_once(": ")
                        .unwrap_or_else(|| panic!("bad example line {l:?}"));
                    (k.trim().to_string(), v.to_string())
                })
                .collect()
        })
        .collect()
}

fn doc_tables() -> Arc<Tables> {
    let mut tables = Tables::default();
    for (info, body, line) in fenced_blocks(DOC) {
        if let Some(path) = info.strip_prefix("table ") {
            let path = path.trim();
            let name = path.rsplit('/').next().unwrap().split('.').next().unwrap();
            let table = Tables::parse_file(name, path, body.as_bytes())
                .unwrap_or_else(|e| panic!("docs/functions.md:{line}: {e}"));
            tables = tables.with_table(name, table);
        }
    }
    Arc::new(tables)
}

#[test]
fn every_function_has_a_section_and_every_section_a_function() {
    let headings: Vec<&str> = DOC
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .filter_map(|h| h.split_once('(').map(|(name, _)| name.trim()))
        .collect();
    for def in FUNCTIONS {
        assert!(
            DOC.lines()
                .any(|l| l.starts_with(&format!("### {}(", def.name))),
            "docs/functions.md has no `### {}(` heading",
            def.name
        );
    }
    for h in &headings {
        assert!(
            FUNCTIONS.iter().any(|f| f.name == *h),
            "docs/functions.md documents `{h}()`, which does not exist"
        );
    }
    assert_eq!(headings.len(), FUNCTIONS.len(), "one section per function");
}

#[test]
fn every_doc_example_evaluates_to_its_stated_output() {
    let tables = doc_tables();
    let mut jmes_count = 0;
    let mut rhai_count = 0;
    let mut called_jmes = std::collections::BTreeSet::new();
    let mut called_rhai = std::collections::BTreeSet::new();
    with_tables(&tables, || {
        for (info, body, line) in fenced_blocks(DOC) {
            let engine = match info.as_str() {
                "jmespath-example" => "jmespath",
                "rhai-example" => "rhai",
                _ => continue,
            };
            for example in examples(&body) {
                let get = |k: &str| {
                    example
                        .iter()
                        .find(|(key, _)| key == k)
                        .map(|(_, v)| v.clone())
                };
                let input: Value = match get("input") {
                    Some(text) => serde_json::from_str(&text)
                        .unwrap_or_else(|e| panic!("docs/functions.md:{line}: input: {e}")),
                    None => json!({}),
                };
                let (code, got) = if engine == "jmespath" {
                    jmes_count += 1;
                    let expr =
                        get("expr").unwrap_or_else(|| panic!("docs/functions.md:{line}: no expr"));
                    (expr.clone(), jmes(&expr, &input))
                } else {
                    rhai_count += 1;
                    let script = get("script")
                        .unwrap_or_else(|| panic!("docs/functions.md:{line}: no script"));
                    (script.clone(), rhai(&script, &input))
                };
                for def in FUNCTIONS {
                    if code.contains(&format!("{}(", def.name)) {
                        if engine == "jmespath" {
                            called_jmes.insert(def.name);
                        } else {
                            called_rhai.insert(def.name);
                        }
                    }
                }
                match (get("output"), get("error")) {
                    (Some(output), None) => {
                        let expected: Value = serde_json::from_str(&output)
                            .unwrap_or_else(|e| panic!("docs/functions.md:{line}: output: {e}"));
                        assert_eq!(got, Ok(expected), "docs/functions.md:{line}: {code}");
                    }
                    (None, Some(fragment)) => match got {
                        Err(e) => assert!(
                            e.contains(&fragment),
                            "docs/functions.md:{line}: {code}: error {e:?} lacks {fragment:?}"
                        ),
                        Ok(v) => {
                            panic!("docs/functions.md:{line}: {code}: expected an error, got {v}")
                        }
                    },
                    _ => panic!("docs/functions.md:{line}: an example needs `output:` or `error:`"),
                }
            }
        }
    });
    for def in FUNCTIONS {
        assert!(
            called_jmes.contains(def.name),
            "no JMESPath example calls {}()",
            def.name
        );
        assert!(
            called_rhai.contains(def.name),
            "no Rhai example calls {}()",
            def.name
        );
    }
    assert!(jmes_count >= FUNCTIONS.len() && rhai_count >= FUNCTIONS.len());
}
