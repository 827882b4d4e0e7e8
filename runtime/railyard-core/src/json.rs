//! JSON intake: the one parser for every JSON payload that enters Railyard — webhook bodies,
//! file-drop JSON and JSON-lines records, AMQP and broker-topic bodies, `railyard test`
//! fixtures, the payloads of `railyard map`, `eval` and `schema validate`, and `tables/*.json`.
//!
//! [`parse_payload`] is `serde_json` with three decisions made explicit, so that no payload
//! is read differently from what its sender wrote:
//!
//! - **Integers are exact or refused.** An integer literal between -2^63 and 2^64-1 is kept
//!   exactly (as `serde_json` does). One outside that range is refused with
//!   [`PayloadError::IntegerOutOfRange`] instead of becoming the nearest `f64` (which made
//!   `2^64` and `2^64+1` the same order id). A literal written as a float (`1.5`, `1e20`)
//!   is a float, as before; one beyond `f64` is a syntax error, as before.
//! - **Duplicate keys are refused.** `{"amount":1,"amount":1000}` is
//!   [`PayloadError::DuplicateKey`] naming the key, not a silent "last one wins".
//! - **A UTF-8 byte order mark at the start is accepted and dropped**, as it is for YAML
//!   project files and CSV drops. A BOM anywhere else is not whitespace and stays a syntax
//!   error.
//!
//! Cost: duplicate keys are found by the insertion itself (the map's entry API, taken before
//! the value is read: one lookup per key, as `serde_json` does); the integer check costs
//! nothing unless the parser produced an integral `f64` of 2^63 or more, and only then scans
//! the text for the literal. On the 13.8 KB Shopify order, `serde_json::from_slice` time /
//! `parse_payload` time = 0.99–1.02, i.e. no measurable cost (2026-12-07, 4 × 400 interleaved
//! rounds on a loaded 2-core machine); `benches/engine.rs` (`json-intake`) has the criterion
//! case.

use std::cell::{Cell, RefCell};
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Why a payload was refused. `line` and `column` are 1-based; the column counts bytes, as
/// `serde_json` does. `Display` has no subject, so callers say what was parsed:
/// `format!("body {e}")` reads "body is not valid JSON: ...".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PayloadError {
    /// Not JSON: a syntax error, bytes that are not UTF-8, trailing characters, a float
    /// literal beyond `f64`, nesting deeper than 128.
    Syntax {
        message: String,
        line: usize,
        column: usize,
    },
    /// A JSON object names `key` twice.
    DuplicateKey {
        key: String,
        line: usize,
        column: usize,
    },
    /// An integer literal outside -2^63 ..= 2^64-1 (`literal` is shortened when long).
    IntegerOutOfRange {
        literal: String,
        line: usize,
        column: usize,
    },
}

impl PayloadError {
    /// Whether the payload is not JSON at all, as opposed to JSON that cannot be taken as
    /// written (a duplicate key, an integer beyond 64 bits).
    pub fn is_syntax(&self) -> bool {
        matches!(self, PayloadError::Syntax { .. })
    }

    pub fn line(&self) -> usize {
        match self {
            PayloadError::Syntax { line, .. }
            | PayloadError::DuplicateKey { line, .. }
            | PayloadError::IntegerOutOfRange { line, .. } => *line,
        }
    }

    pub fn column(&self) -> usize {
        match self {
            PayloadError::Syntax { column, .. }
            | PayloadError::DuplicateKey { column, .. }
            | PayloadError::IntegerOutOfRange { column, .. } => *column,
        }
    }

    /// The error without its position, for callers that place it themselves.
    pub fn reason(&self) -> String {
        match self {
            PayloadError::Syntax { message, .. } => format!("is not valid JSON: {message}"),
            PayloadError::DuplicateKey { key, .. } => format!(
                "has the key `{key}` twice in one object; a JSON object may name each key \
                 once"
            ),
            PayloadError::IntegerOutOfRange { literal, .. } => format!(
                "has the integer {literal}, outside the 64-bit range \
                 (-9223372036854775808 to 18446744073709551615) that is kept exact; \
                 send it as a string"
            ),
        }
    }
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (line {}, column {})",
            self.reason(),
            self.line(),
            self.column()
        )
    }
}

impl std::error::Error for PayloadError {}

/// Parses one JSON payload: see the module documentation for what is refused and why.
pub fn parse_payload(bytes: &[u8]) -> Result<Value, PayloadError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let state = State::default();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = ValueSeed(&state)
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v));
    match parsed {
        Ok(value) => {
            if state.large_float.get()
                && let Some((offset, literal)) = integer_out_of_range(bytes)
            {
                let (line, column) = position(bytes, offset);
                return Err(PayloadError::IntegerOutOfRange {
                    literal,
                    line,
                    column,
                });
            }
            Ok(value)
        }
        Err(e) => Err(match state.duplicate.into_inner() {
            Some(key) => PayloadError::DuplicateKey {
                key,
                line: e.line(),
                column: e.column(),
            },
            None => PayloadError::Syntax {
                message: crate::schema::strip_position(&e),
                line: e.line(),
                column: e.column(),
            },
        }),
    }
}

/// What the visitor noticed while building the value.
#[derive(Default)]
struct State {
    /// The parser produced an integral `f64` of magnitude 2^63 or more: either a float
    /// literal (`1e19`) or an integer literal beyond 64 bits, which only the text can tell.
    large_float: Cell<bool>,
    /// The key an object named twice (the visitor's error carries only a message).
    duplicate: RefCell<Option<String>>,
}

/// Builds a [`Value`] exactly as `serde_json`'s own visitor does, except for duplicate keys
/// and the large-float note.
#[derive(Clone, Copy)]
struct ValueSeed<'s>(&'s State);

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// Keys longer than this are shortened in messages: the sender controls them.
const SHOWN_KEY_CHARS: usize = 64;

fn shown(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(SHOWN_KEY_CHARS)
        .flat_map(char::escape_debug)
        .collect();
    if text.chars().nth(SHOWN_KEY_CHARS).is_some() {
        out.push('…');
    }
    out
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // 2^63: every integer literal inside the i64/u64 range arrives as i64 or u64, so an
        // integral f64 this large may be an integer literal that did not fit.
        if v.fract() == 0.0 && v.abs() >= 9_223_372_036_854_775_808.0 {
            self.0.large_float.set(true);
        }
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element_seed(self)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            // One lookup per key, before its value is read: a duplicate is reported where the
            // key stands, and a new key's slot is filled once its value is parsed.
            match out.entry(key) {
                serde_json::map::Entry::Vacant(slot) => {
                    slot.insert(map.next_value_seed(self)?);
                }
                serde_json::map::Entry::Occupied(taken) => {
                    let key = shown(taken.key());
                    let message = format!("duplicate key `{key}`");
                    *self.0.duplicate.borrow_mut() = Some(key);
                    return Err(de::Error::custom(message));
                }
            }
        }
        Ok(Value::Object(out))
    }
}

/// The first integer literal (no fraction, no exponent) outside -2^63 ..= 2^64-1 in valid
/// JSON text, with its byte offset; `None` when there is none.
fn integer_out_of_range(bytes: &[u8]) -> Option<(usize, String)> {
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                // Skip the string; an escape skips the byte after the backslash.
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                let negative = bytes[i] == b'-';
                let digits_start = if negative { i + 1 } else { i };
                i = digits_start;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                let digits = &bytes[digits_start..i];
                let float = matches!(bytes.get(i), Some(b'.' | b'e' | b'E'));
                while i < bytes.len()
                    && matches!(bytes[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    i += 1;
                }
                if !float && !fits_64_bits(digits, negative) {
                    let literal = String::from_utf8_lossy(&bytes[start..i]);
                    return Some((start, shown(&literal)));
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// Whether the decimal digits (no leading zeros, as JSON requires) fit i64 when `negative`,
/// u64 otherwise.
fn fits_64_bits(digits: &[u8], negative: bool) -> bool {
    let max: &[u8] = if negative {
        b"9223372036854775808"
    } else {
        b"18446744073709551615"
    };
    digits.len() < max.len() || (digits.len() == max.len() && digits <= max)
}

/// 1-based line and byte column of `offset`.
fn position(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    (line, offset - line_start + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integers_beyond_64_bits_are_refused_not_rounded() {
        // The reproduction: 2^64 and 2^64+1 both became 18446744073709551616.0.
        for text in [
            r#"{"order_id": 18446744073709551616}"#,
            r#"{"order_id": 18446744073709551617}"#,
            r#"{"order_id": -9223372036854775809}"#,
            r#"[1, 2, 100000000000000000000000000000]"#,
        ] {
            let e = parse_payload(text.as_bytes()).expect_err(text);
            assert!(
                matches!(e, PayloadError::IntegerOutOfRange { .. }),
                "{text}: {e:?}"
            );
        }
        let e = parse_payload(b"{\n  \"order_id\": 18446744073709551617\n}").unwrap_err();
        assert_eq!(
            e,
            PayloadError::IntegerOutOfRange {
                literal: "18446744073709551617".into(),
                line: 2,
                column: 15
            }
        );
        assert!(e.to_string().contains("send it as a string"), "{e}");
    }

    #[test]
    fn integers_at_the_64_bit_edges_are_exact() {
        let v = parse_payload(b"[18446744073709551615, -9223372036854775808, 9007199254740993]")
            .unwrap();
        assert_eq!(v[0].as_u64(), Some(u64::MAX));
        assert_eq!(v[1].as_i64(), Some(i64::MIN));
        assert_eq!(v[2].as_u64(), Some(9_007_199_254_740_993));
    }

    #[test]
    fn large_float_literals_and_digits_in_strings_stay_accepted() {
        let v = parse_payload(br#"{"a": 1e20, "b": 18446744073709551616.0, "c": "99999999999999999999999", "d\"99999999999999999999": 1}"#).unwrap();
        assert_eq!(v["a"], json!(1e20));
        assert_eq!(v["c"], json!("99999999999999999999999"));
        // A float beyond f64 stays a syntax error, as in serde_json.
        assert!(parse_payload(b"[1e400]").unwrap_err().is_syntax());
    }

    #[test]
    fn duplicate_keys_are_refused_naming_the_key() {
        // The reproduction: "amount":1,"amount":1000 gave 1000.
        let e = parse_payload(br#"{"amount":1,"amount":1000}"#).unwrap_err();
        assert!(
            matches!(&e, PayloadError::DuplicateKey { key, line: 1, .. } if key == "amount"),
            "{e:?}"
        );
        assert!(e.to_string().contains("`amount` twice"), "{e}");
        let nested = parse_payload(b"{\"a\": [{\"x\": 1,\n \"x\": 2}]}").unwrap_err();
        assert!(
            matches!(&nested, PayloadError::DuplicateKey { key, line: 2, .. } if key == "x"),
            "{nested:?}"
        );
        // The same key in two objects is fine.
        assert!(parse_payload(br#"[{"x":1},{"x":2}]"#).is_ok());
    }

    #[test]
    fn long_or_odd_keys_are_shortened_and_escaped_in_messages() {
        let key = "k\n".repeat(100);
        let text = format!("{{{k:?}: 1, {k:?}: 2}}", k = key);
        let e = parse_payload(text.as_bytes()).unwrap_err();
        let PayloadError::DuplicateKey { key: shown, .. } = &e else {
            panic!("{e:?}")
        };
        assert!(!shown.contains('\n') && shown.ends_with('…'), "{shown}");
    }

    #[test]
    fn a_leading_bom_is_dropped_elsewhere_it_is_an_error() {
        assert_eq!(
            parse_payload(b"\xEF\xBB\xBF{\"a\":1}").unwrap(),
            json!({"a": 1})
        );
        assert!(
            parse_payload(b"{\"a\":\xEF\xBB\xBF1}")
                .unwrap_err()
                .is_syntax()
        );
    }

    #[test]
    fn syntax_errors_keep_their_position() {
        let e = parse_payload(b"{\"a\":\n  tru}").unwrap_err();
        assert!(e.is_syntax());
        assert_eq!(e.line(), 2);
        assert!(e.to_string().starts_with("is not valid JSON: "), "{e}");
        assert!(parse_payload(b"{} x").unwrap_err().is_syntax());
        assert!(parse_payload(b"").unwrap_err().is_syntax());
    }

    #[test]
    fn same_value_as_serde_json_on_ordinary_payloads() {
        let text = br#"{"id": 6104523881562, "price": "19.99", "n": -3, "f": 0.1, "z": -0,
            "ok": true, "none": null, "lines": [{"sku": "A", "qty": 2}], "e": {}, "u": "\u00e9"}"#;
        let ours = parse_payload(text).unwrap();
        let theirs: Value = serde_json::from_slice(text).unwrap();
        assert_eq!(ours, theirs);
        assert_eq!(
            serde_json::to_string(&ours).unwrap(),
            serde_json::to_string(&theirs).unwrap()
        );
    }
}
