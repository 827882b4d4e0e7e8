//! The compatibility rules of `railyard schema diff` / `validate --baseline`, as a table of
//! schema pairs and their expected classification: each rule both ways, nested, and through
//! `$ref`s. `W` breaks writers (NEW rejects data OLD accepted: not BACKWARD compatible), `R`
//! breaks readers (NEW accepts data OLD did not: not FORWARD compatible), `RW` both, `U`
//! unclassified, `C` compatible; then the NEW pointer.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use railyard_core::schema::compat::{Class, Docs, diff};
use serde_json::{Value, json};

fn code(class: Class) -> &'static str {
    match class {
        Class::Breaking(b) => match (b.readers, b.writers) {
            (true, true) => "RW",
            (true, false) => "R",
            (false, true) => "W",
            (false, false) => "?",
        },
        Class::Unclassified => "U",
        Class::Compatible => "C",
    }
}

fn classify(old: &Value, new: &Value) -> Vec<String> {
    let old_docs = Docs::single("t.s@1", "old.json", old);
    let new_docs = Docs::single("t.s@1", "new.json", new);
    let mut out: Vec<String> = diff(&old_docs, "t.s@1", &new_docs, "t.s@1")
        .into_iter()
        .map(|c| format!("{} {}", code(c.class), c.new.pointer))
        .collect();
    out.sort();
    out
}

fn obj(props: Value) -> Value {
    json!({"type": "object", "properties": props})
}

/// (name, old, new, expected changes)
fn table() -> Vec<(&'static str, Value, Value, Vec<&'static str>)> {
    let s = json!({"type": "string"});
    vec![
        (
            "identical",
            obj(json!({"a": s})),
            obj(json!({"a": s})),
            vec![],
        ),
        (
            "type narrowed",
            json!({"type": ["string", "null"]}),
            json!({"type": "string"}),
            vec!["W /type"],
        ),
        (
            "type widened",
            json!({"type": "string"}),
            json!({"type": ["string", "null"]}),
            vec!["R /type"],
        ),
        (
            "type changed",
            json!({"type": "string"}),
            json!({"type": "integer"}),
            vec!["RW /type"],
        ),
        (
            "type added",
            json!({}),
            json!({"type": "object"}),
            vec!["W /type"],
        ),
        (
            "type removed",
            json!({"type": "object"}),
            json!({}),
            vec!["R /type"],
        ),
        (
            "integer widened to number",
            json!({"type": "integer"}),
            json!({"type": "number"}),
            vec!["R /type"],
        ),
        (
            "number narrowed to integer",
            json!({"type": "number"}),
            json!({"type": "integer"}),
            vec!["W /type"],
        ),
        (
            "enum narrowed",
            json!({"enum": ["a", "b"]}),
            json!({"enum": ["a"]}),
            vec!["W /enum"],
        ),
        (
            "enum widened",
            json!({"enum": ["a"]}),
            json!({"enum": ["a", "b"]}),
            vec!["R /enum"],
        ),
        (
            "enum swapped",
            json!({"enum": ["a"]}),
            json!({"enum": ["b"]}),
            vec!["RW /enum"],
        ),
        (
            "enum added",
            json!({"type": "string"}),
            json!({"type": "string", "enum": ["a"]}),
            vec!["W /enum"],
        ),
        (
            "enum removed",
            json!({"enum": ["a"]}),
            json!({}),
            vec!["R /enum"],
        ),
        (
            "const to enum",
            json!({"const": "a"}),
            json!({"enum": ["a", "b"]}),
            vec!["R /enum"],
        ),
        (
            "maxLength tightened",
            json!({"maxLength": 10}),
            json!({"maxLength": 5}),
            vec!["W /maxLength"],
        ),
        (
            "maxLength loosened",
            json!({"maxLength": 5}),
            json!({"maxLength": 10}),
            vec!["R /maxLength"],
        ),
        (
            "minimum raised",
            json!({"minimum": 0}),
            json!({"minimum": 1}),
            vec!["W /minimum"],
        ),
        (
            "minimum lowered",
            json!({"minimum": 1}),
            json!({"minimum": 0}),
            vec!["R /minimum"],
        ),
        (
            "minItems added",
            json!({"type": "array"}),
            json!({"type": "array", "minItems": 1}),
            vec!["W /minItems"],
        ),
        (
            "maxItems removed",
            json!({"maxItems": 3}),
            json!({}),
            vec!["R /maxItems"],
        ),
        (
            "multipleOf tightened",
            json!({"multipleOf": 0.01}),
            json!({"multipleOf": 0.1}),
            vec!["W /multipleOf"],
        ),
        (
            "multipleOf loosened",
            json!({"multipleOf": 0.1}),
            json!({"multipleOf": 0.01}),
            vec!["R /multipleOf"],
        ),
        (
            "pattern added",
            json!({"type": "string"}),
            json!({"type": "string", "pattern": "^a"}),
            vec!["W /pattern"],
        ),
        (
            "pattern removed",
            json!({"pattern": "^a"}),
            json!({}),
            vec!["R /pattern"],
        ),
        (
            "pattern changed",
            json!({"pattern": "^a"}),
            json!({"pattern": "^b"}),
            vec!["U /pattern"],
        ),
        (
            "format added",
            json!({"type": "string"}),
            json!({"type": "string", "format": "date"}),
            vec!["W /format"],
        ),
        (
            "uniqueItems added",
            json!({"type": "array"}),
            json!({"type": "array", "uniqueItems": true}),
            vec!["W /uniqueItems"],
        ),
        (
            "uniqueItems removed",
            json!({"uniqueItems": true}),
            json!({"uniqueItems": false}),
            vec!["R /uniqueItems"],
        ),
        (
            "newly required",
            obj(json!({"a": s})),
            json!({"type": "object", "required": ["a"], "properties": {"a": s}}),
            vec!["W /required/0"],
        ),
        (
            "no longer required",
            json!({"type": "object", "required": ["a"], "properties": {"a": s}}),
            obj(json!({"a": s})),
            vec!["R /required"],
        ),
        (
            "property removed (open)",
            obj(json!({"a": s, "b": s})),
            obj(json!({"a": s})),
            vec!["R /properties/b"],
        ),
        (
            "property removed (closed)",
            json!({"type": "object", "properties": {"a": s, "b": s}, "additionalProperties": false}),
            json!({"type": "object", "properties": {"a": s}, "additionalProperties": false}),
            vec!["RW /properties/b"],
        ),
        (
            "optional property added",
            obj(json!({"a": s})),
            obj(json!({"a": s, "b": s})),
            vec!["C /properties/b"],
        ),
        (
            "additionalProperties closed",
            obj(json!({"a": s})),
            json!({"type": "object", "properties": {"a": s}, "additionalProperties": false}),
            vec!["W /additionalProperties"],
        ),
        (
            "additionalProperties opened",
            json!({"additionalProperties": false}),
            json!({"additionalProperties": true}),
            vec!["R /additionalProperties"],
        ),
        (
            "additionalProperties schema narrowed",
            json!({"additionalProperties": {"type": ["string", "null"]}}),
            json!({"additionalProperties": {"type": "string"}}),
            vec!["W /additionalProperties/type"],
        ),
        (
            "unevaluatedProperties closed",
            json!({}),
            json!({"unevaluatedProperties": false}),
            vec!["W /unevaluatedProperties"],
        ),
        (
            "nested property type narrowed",
            obj(json!({"customer": obj(json!({"email": {"type": ["string", "null"]}}))})),
            obj(json!({"customer": obj(json!({"email": {"type": "string"}}))})),
            vec!["W /properties/customer/properties/email/type"],
        ),
        (
            "nested newly required in items",
            obj(json!({"lines": {"type": "array", "items": obj(json!({"sku": s}))}})),
            obj(
                json!({"lines": {"type": "array", "items": {"type": "object", "required": ["sku"], "properties": {"sku": s}}}}),
            ),
            vec!["W /properties/lines/items/required/0"],
        ),
        (
            "items widened",
            json!({"items": {"type": "integer"}}),
            json!({"items": {"type": "number"}}),
            vec!["R /items/type"],
        ),
        (
            "items added",
            json!({"type": "array"}),
            json!({"type": "array", "items": {"type": "string"}}),
            vec!["W /items/type"],
        ),
        (
            "prefixItems narrowed",
            json!({"prefixItems": [{"type": ["string", "null"]}]}),
            json!({"prefixItems": [{"type": "string"}]}),
            vec!["W /prefixItems/0/type"],
        ),
        (
            "local $ref target narrowed",
            json!({"properties": {"a": {"$ref": "#/$defs/x"}}, "$defs": {"x": {"enum": ["a", "b"]}}}),
            json!({"properties": {"a": {"$ref": "#/$defs/x"}}, "$defs": {"x": {"enum": ["a"]}}}),
            vec!["W /$defs/x/enum"],
        ),
        (
            "$ref replaced by a wider inline schema",
            json!({"properties": {"a": {"$ref": "#/$defs/x"}}, "$defs": {"x": {"type": "string"}}}),
            json!({"properties": {"a": {"type": ["string", "null"]}}, "$defs": {"x": {"type": "string"}}}),
            vec!["R /properties/a/type"],
        ),
        (
            "inline schema replaced by a narrower $ref",
            json!({"properties": {"a": {"type": ["string", "null"]}}, "$defs": {"x": {"type": "string"}}}),
            json!({"properties": {"a": {"$ref": "#/$defs/x"}}, "$defs": {"x": {"type": "string"}}}),
            vec!["W /$defs/x/type"],
        ),
        (
            "$ref retargeted",
            json!({"properties": {"a": {"$ref": "#/$defs/x"}}, "$defs": {"x": {"maxLength": 5}, "y": {"maxLength": 3}}}),
            json!({"properties": {"a": {"$ref": "#/$defs/y"}}, "$defs": {"x": {"maxLength": 5}, "y": {"maxLength": 3}}}),
            vec!["W /$defs/y/maxLength"],
        ),
        (
            "definition removed",
            json!({"$defs": {"x": s}}),
            json!({"$defs": {}}),
            vec!["RW /$defs/x"],
        ),
        (
            "definition added",
            json!({"$defs": {}}),
            json!({"$defs": {"x": s}}),
            vec!["C /$defs/x"],
        ),
        (
            "anyOf branch narrowed",
            json!({"anyOf": [{"type": "string", "maxLength": 9}, {"type": "null"}]}),
            json!({"anyOf": [{"type": "string", "maxLength": 5}, {"type": "null"}]}),
            vec!["W /anyOf/0/maxLength"],
        ),
        (
            "anyOf lost a branch",
            json!({"anyOf": [s, {"type": "null"}]}),
            json!({"anyOf": [s]}),
            vec!["W /anyOf"],
        ),
        (
            "anyOf gained a branch",
            json!({"anyOf": [s]}),
            json!({"anyOf": [s, {"type": "null"}]}),
            vec!["R /anyOf"],
        ),
        (
            "allOf gained a branch",
            json!({"allOf": [s]}),
            json!({"allOf": [s, {"maxLength": 3}]}),
            vec!["W /allOf"],
        ),
        (
            "oneOf changed",
            json!({"oneOf": [s, {"type": "null"}]}),
            json!({"oneOf": [s, {"type": "integer"}]}),
            vec!["U /oneOf"],
        ),
        (
            "no rule: not",
            json!({"not": {"type": "null"}}),
            json!({"not": {"type": "string"}}),
            vec!["U /not"],
        ),
        (
            "annotation",
            json!({"description": "a", "type": "string"}),
            json!({"description": "b", "type": "string"}),
            vec!["C /description"],
        ),
        (
            "schema became false",
            json!({"properties": {"a": true}}),
            json!({"properties": {"a": false}}),
            vec!["W /properties/a"],
        ),
        (
            "schema was false",
            json!({"properties": {"a": false}}),
            json!({"properties": {"a": s}}),
            vec!["R /properties/a"],
        ),
        (
            "two changes in one object",
            json!({"type": "object", "required": ["a"], "properties": {"a": {"type": "string", "maxLength": 5}}}),
            json!({"type": "object", "required": ["b"], "properties": {"a": {"type": "string", "maxLength": 9}, "b": s}}),
            vec![
                "C /properties/b",
                "R /properties/a/maxLength",
                "R /required",
                "W /required/0",
            ],
        ),
    ]
}

#[test]
fn every_pair_is_classified_as_expected() {
    let table = table();
    assert!(table.len() >= 30, "the table has {} pairs", table.len());
    let mut failures = Vec::new();
    for (name, old, new, expected) in &table {
        let got = classify(old, new);
        let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        expected.sort();
        if got != expected {
            failures.push(format!("{name}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn refs_between_schema_ids_are_followed_when_they_change() {
    let money1 = json!({"$defs": {"amount": {"type": "string"}}});
    let money2 = json!({"$defs": {"amount": {"type": "string", "pattern": "^[0-9]+$"}}});
    let old_order = json!({"properties": {"total": {"$ref": "c.money@1#/$defs/amount"}}});
    let new_order = json!({"properties": {"total": {"$ref": "c.money@2#/$defs/amount"}}});
    let mut old = Docs::single("c.order@1", "schemas/c/order@1.json", &old_order);
    old.by_id.insert(
        "c.money@1",
        railyard_core::schema::compat::Doc {
            file: "schemas/c/money@1.json",
            value: &money1,
        },
    );
    let mut new = Docs::single("c.order@1", "schemas/c/order@1.json", &new_order);
    new.by_id.insert(
        "c.money@1",
        railyard_core::schema::compat::Doc {
            file: "schemas/c/money@1.json",
            value: &money1,
        },
    );
    new.by_id.insert(
        "c.money@2",
        railyard_core::schema::compat::Doc {
            file: "schemas/c/money@2.json",
            value: &money2,
        },
    );
    let changes = diff(&old, "c.order@1", &new, "c.order@1");
    assert_eq!(changes.len(), 1, "{changes:?}");
    let c = &changes[0];
    assert_eq!(code(c.class), "W");
    assert_eq!(c.new.id, "c.money@2");
    assert_eq!(c.new.file, "schemas/c/money@2.json");
    assert_eq!(c.new.pointer, "/$defs/amount/pattern");
    assert_eq!(c.old.file, "schemas/c/money@1.json");
    // An unchanged `$ref` is not followed: the target is compared where it is defined.
    assert!(diff(&old, "c.order@1", &old, "c.order@1").is_empty());
}

#[test]
fn an_unresolvable_changed_ref_is_unclassified() {
    let old = json!({"properties": {"a": {"$ref": "x.y@1"}}});
    let new = json!({"properties": {"a": {"$ref": "x.y@2"}}});
    assert_eq!(classify(&old, &new), vec!["U /properties/a/$ref"]);
}

#[test]
fn ref_cycles_terminate() {
    let old = json!({"$defs": {"n": {"properties": {"next": {"$ref": "#/$defs/n"}}, "maxProperties": 3}}, "$ref": "#/$defs/n"});
    let new = json!({"$defs": {"n": {"properties": {"next": {"$ref": "#/$defs/n"}}, "maxProperties": 2}}, "properties": {"next": {"$ref": "#/$defs/n"}}, "maxProperties": 3});
    let got = classify(&old, &new);
    assert!(
        got.contains(&"W /$defs/n/maxProperties".to_string()),
        "{got:?}"
    );
}
