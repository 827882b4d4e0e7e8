//! Property tests of [`railyard_core::json::parse_payload`], the one JSON intake: it never
//! panics, reads every ordinary payload exactly as `serde_json` does, refuses every integer
//! literal beyond 64 bits and every duplicate key, and drops a leading BOM.

use proptest::prelude::*;
use railyard_core::json::{PayloadError, parse_payload};
use serde_json::Value;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// JSON values as `serde_json` builds them (so objects have distinct keys).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[a-z\"\\\\\u{e9}\u{1F600} ]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-e]{1,2}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_payload(&bytes);
    }

    #[test]
    fn same_value_as_serde_json(v in json_value(), pretty in any::<bool>(), bom in any::<bool>()) {
        let mut text = if pretty {
            serde_json::to_vec_pretty(&v).unwrap()
        } else {
            serde_json::to_vec(&v).unwrap()
        };
        let expected: Value = serde_json::from_slice(&text).unwrap();
        if bom {
            text.splice(0..0, *b"\xEF\xBB\xBF");
        }
        prop_assert_eq!(parse_payload(&text), Ok(expected));
    }

    #[test]
    fn integers_beyond_64_bits_are_refused(n in (u64::MAX as u128 + 1)..=u128::MAX, negative in any::<bool>()) {
        let literal = if negative { format!("-{n}") } else { n.to_string() };
        let text = format!("{{\"id\": {literal}}}");
        let e = parse_payload(text.as_bytes());
        prop_assert_eq!(
            e,
            Err(PayloadError::IntegerOutOfRange { literal, line: 1, column: 8 })
        );
    }

    #[test]
    fn integers_within_64_bits_are_exact(n in any::<u64>(), m in any::<i64>()) {
        let v = parse_payload(format!("[{n}, {m}]").as_bytes()).unwrap();
        prop_assert_eq!(v[0].as_u64(), Some(n));
        prop_assert_eq!(v[1].as_i64(), Some(m));
    }

    #[test]
    fn duplicate_keys_are_refused(v in json_value(), key in "[a-z]{1,6}", a in any::<i64>(), b in any::<i64>()) {
        let text = format!(
            "{{\"{key}\": {a}, \"other\": {}, \"{key}\": {b}}}",
            serde_json::to_string(&v).unwrap()
        );
        let e = parse_payload(text.as_bytes());
        prop_assert!(
            matches!(&e, Err(PayloadError::DuplicateKey { key: k, .. }) if *k == key),
            "{:?}", e
        );
    }
}
