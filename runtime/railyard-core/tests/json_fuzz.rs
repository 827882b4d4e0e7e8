//! Fuzz harness for the JSON intake (`railyard_core::json::parse_payload`), beyond the
//! properties of `json_intake.rs`: nesting up to 10^5 levels is refused (or parsed) without
//! overflowing a worker thread's stack; near-JSON and long arbitrary input never panics, is
//! never taken where `serde_json` refuses it, and reads as `serde_json` reads it when taken;
//! whatever is taken re-serializes to JSON that is taken again as the same value; errors
//! carry no control characters (they go into 400 bodies and logs) and point into the input.
//!
//! Default case count is small so `cargo test` stays quick; `PROPTEST_CASES=20000` (or
//! `benches/fuzz/run.sh`) runs the long fuzz.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use proptest::prelude::*;
use railyard_core::json::{PayloadError, parse_payload};
use serde_json::Value;

mod fuzz;
use fuzz::config;

/// The deepest nesting taken (`serde_json`'s recursion limit).
const MAX_DEPTH: usize = 127;

/// Stack of the thread the deep inputs are parsed on: half of a tokio worker's (2 MiB), where
/// webhook bodies and file drops are parsed.
const STACK: usize = 1 << 20;

/// Parses on a thread with a [`STACK`]-byte stack: an overflow aborts the test process.
fn parse_on_small_stack(bytes: Vec<u8>) -> Result<Value, PayloadError> {
    std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || parse_payload(&bytes))
        .unwrap()
        .join()
        .unwrap()
}

/// `depth` levels of `kinds` (cycled: `[` or `{"k":`), closed or not, with `inner` at the
/// bottom.
fn nested(depth: usize, kinds: &[bool], closed: bool, inner: &str) -> Vec<u8> {
    let mut open = Vec::with_capacity(depth * 6);
    let mut close = Vec::with_capacity(depth);
    for i in 0..depth {
        if kinds[i % kinds.len()] {
            open.push(b'[');
            close.push(b']');
        } else {
            open.extend_from_slice(b"{\"k\":");
            close.push(b'}');
        }
    }
    open.extend_from_slice(inner.as_bytes());
    if closed {
        close.reverse();
        open.extend(close);
    }
    open
}

fn depth_of(v: &Value) -> usize {
    let mut depth = 0;
    let mut at = v;
    loop {
        at = match at {
            Value::Array(a) if !a.is_empty() => &a[0],
            Value::Object(o) if !o.is_empty() => &o["k"],
            Value::Array(_) | Value::Object(_) => return depth + 1,
            _ => return depth,
        };
        depth += 1;
    }
}

/// JSON text as senders write it, with the edges the intake decides: large integers and
/// floats, escapes, BOM-free Unicode, whitespace.
fn json_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        Just("false".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:?}")),
        "-?[1-9][0-9]{18,24}",
        // Within f64 (a float literal beyond it is a documented syntax error).
        "-?(0|[1-9][0-9]{0,19})(\\.[0-9]{1,20})?[eE][+-]?[0-9]{1,2}",
        "-?(0|[1-9][0-9]{0,3})\\.[0-9]{1,3}",
        any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
        // (No lone surrogate: not a Unicode scalar, refused as `serde_json` refuses it.)
        "\"([a-z0-9 ]|\\\\[bfnrt\"\\\\/]|\\\\u[0-9a-cA-CeEfF][0-9a-fA-F]{3}|\\\\\"[0-9]{20})*\"",
    ];
    leaf.prop_recursive(5, 48, 5, |inner| {
        prop_oneof![
            (prop::collection::vec(inner.clone(), 0..5), "[ \t\n\r]{0,2}")
                .prop_map(|(v, ws)| format!("[{ws}{}]", v.join(&format!(",{ws}")))),
            prop::collection::vec(("[a-c0-9\"\\\\]{0,2}", inner), 0..5).prop_map(|kv| {
                let fields: Vec<String> = kv
                    .iter()
                    .map(|(k, v)| format!("{}: {v}", serde_json::to_string(k).unwrap()))
                    .collect();
                format!("{{{}}}", fields.join(", "))
            }),
        ]
    })
}

/// Valid JSON text with a few bytes changed, inserted or cut, or arbitrary bytes.
fn near_json() -> impl Strategy<Value = Vec<u8>> {
    let edit = (any::<prop::sample::Index>(), any::<u8>(), 0..3u8);
    prop_oneof![
        3 => (json_text(), prop::collection::vec(edit, 0..4)).prop_map(|(t, edits)| {
            let mut v = t.into_bytes();
            for (at, b, how) in edits {
                let i = at.index(v.len() + 1);
                match how {
                    0 if i < v.len() => v[i] = b,
                    1 => v.insert(i, b),
                    _ => {
                        if i < v.len() {
                            v.remove(i);
                        }
                    }
                }
            }
            v
        }),
        1 => prop::collection::vec(any::<u8>(), 0..4096),
        1 => json_text().prop_map(|t| [b"\xEF\xBB\xBF".as_slice(), t.as_bytes()].concat()),
    ]
}

/// 1-based line count of `bytes`, for checking error positions.
fn lines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|b| **b == b'\n').count() + 1
}

proptest! {
    #![proptest_config(config(64))]

    /// Up to 10^5 levels of arrays and objects, closed or not: taken up to the limit,
    /// refused past it with a syntax error saying so, and never a stack overflow.
    #[test]
    fn fuzz_deep_nesting_is_refused_without_overflow(
        depth in prop_oneof![1usize..140, 120usize..136, 140usize..=100_000],
        kinds in prop::collection::vec(any::<bool>(), 1..4),
        closed in any::<bool>(),
        inner in prop::sample::select(vec!["", "1", "\"x\"", "[]", "{}"]),
    ) {
        let bytes = nested(depth, &kinds, closed, inner);
        let result = parse_on_small_stack(bytes);
        // Container levels in the text, and whether it is valid JSON apart from its depth.
        let total = depth + usize::from(matches!(inner, "[]" | "{}"));
        let bottom_is_array = kinds[(depth - 1) % kinds.len()];
        let valid = closed && (!inner.is_empty() || bottom_is_array);
        if total > MAX_DEPTH {
            let refused = matches!(&result, Err(PayloadError::Syntax { message, .. }) if message.contains("recursion limit"));
            prop_assert!(refused, "{} levels: {:?}", total, result.map(|v| depth_of(&v)));
        } else if valid {
            prop_assert_eq!(result.map(|v| depth_of(&v)), Ok(total));
        } else {
            prop_assert!(result.as_ref().is_err_and(PayloadError::is_syntax), "{:?}", result);
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Near-JSON and arbitrary bytes: never a panic; taken only where `serde_json` takes the
    /// same text, as the same value; errors without control characters, inside the input.
    #[test]
    fn fuzz_near_json_is_read_as_serde_json_reads_it_or_refused(bytes in near_json()) {
        let ours = parse_payload(&bytes);
        let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
        let theirs = serde_json::from_slice::<Value>(text);
        match (&ours, &theirs) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Ok(a), Err(e)) => prop_assert!(false, "taken ({}) where serde_json refuses: {}", a, e),
            (Err(_), _) => {}
        }
        if let Err(e) = &ours {
            let shown = e.to_string();
            prop_assert!(!shown.chars().any(char::is_control), "{:?}", shown);
            prop_assert!(e.line() >= 1 && e.line() <= lines(text), "{:?} in {} lines", e, lines(text));
        }
    }

    /// Whatever is taken re-serializes (compact and pretty) to JSON that is taken again as
    /// the same value.
    #[test]
    fn fuzz_taken_payloads_round_trip(bytes in near_json()) {
        if let Ok(v) = parse_payload(&bytes) {
            let compact = serde_json::to_vec(&v).unwrap();
            prop_assert_eq!(parse_payload(&compact), Ok(v.clone()), "{}", String::from_utf8_lossy(&compact));
            let pretty = serde_json::to_vec_pretty(&v).unwrap();
            prop_assert_eq!(parse_payload(&pretty), Ok(v));
        }
    }

    /// Valid JSON text (no mutation): taken, unless it holds a duplicate key or an integer
    /// beyond 64 bits, and then refused naming that.
    #[test]
    fn fuzz_valid_text_is_taken_or_refused_for_a_reason(text in json_text()) {
        match parse_payload(text.as_bytes()) {
            Ok(v) => {
                let again = serde_json::to_vec(&v).unwrap();
                prop_assert_eq!(parse_payload(&again), Ok(v));
            }
            Err(e) => prop_assert!(!e.is_syntax(), "valid text refused as not JSON: {} in {}", e, text),
        }
    }
}
