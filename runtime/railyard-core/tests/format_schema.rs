//! The JSON Schemas of the file formats under `docs/schema/` are generated from the Rust types
//! and must stay fresh. Regenerate with `RAILYARD_UPDATE_SCHEMAS=1 cargo test -p railyard-core --test format_schema`.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::Path;

use railyard_core::model::{mapping_json_schema, pipeline_json_schema};

fn ensure_fresh(name: &str, schema: schemars::Schema) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/schema")
        .join(name);
    let mut generated = serde_json::to_string_pretty(&schema).expect("serialize");
    generated.push('\n');
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current == generated {
        return;
    }
    if std::env::var_os("RAILYARD_UPDATE_SCHEMAS").is_some() {
        std::fs::write(&path, &generated).expect("write schema");
        return;
    }
    panic!(
        "{} is stale; run `RAILYARD_UPDATE_SCHEMAS=1 cargo test -p railyard-core --test format_schema` and commit it",
        path.display()
    );
}

#[test]
fn pipeline_schema_is_fresh() {
    ensure_fresh("pipeline.schema.json", pipeline_json_schema());
}

#[test]
fn mapping_schema_is_fresh() {
    ensure_fresh("mapping.schema.json", mapping_json_schema());
}

#[test]
fn schema_carries_doc_comments_and_step_kinds() {
    let schema = serde_json::to_value(pipeline_json_schema()).expect("json");
    let text = schema.to_string();
    // Doc comments become descriptions.
    assert!(
        text.contains("Where messages come from."),
        "descriptions missing"
    );
    for step in [
        "validate", "map", "filter", "switch", "split", "batch", "dedupe", "metadata", "script",
        "plugin", "reserve",
    ] {
        assert!(
            text.contains(&format!("\"{step}\"")),
            "step `{step}` missing from the schema"
        );
    }
}

#[test]
fn root_keys_match_the_loader() {
    let schema = serde_json::to_value(pipeline_json_schema()).expect("json");
    let mut props: Vec<String> = schema["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .cloned()
        .collect();
    props.sort();
    let mut keys: Vec<String> = railyard_core::project::PIPELINE_KEYS
        .iter()
        .map(|s| s.to_string())
        .collect();
    keys.sort();
    assert_eq!(props, keys);
}

#[test]
fn generated_schema_accepts_a_real_pipeline() {
    // The editor schema and the loader must agree on a valid file.
    let schema = serde_json::to_value(pipeline_json_schema()).expect("json");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let pipeline = serde_json::json!({
        "pipeline": "shopify-order-intake",
        "version": 3,
        "input": { "http": { "path": "/webhooks/shopify/orders", "max_body": "1MiB" }, "schema": "shopify.order@1" },
        "steps": [ { "map": "shopify-order-to-canonical" }, { "dedupe": { "key": "meta.dedupe_key", "ttl": "72h" } } ],
        "output": { "topic": "orders.accepted" },
        "on_error": { "retry": { "attempts": 8, "initial": "500ms" }, "dead_letter": "store" }
    });
    let errors: Vec<String> = validator
        .iter_errors(&pipeline)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let bad = serde_json::json!({ "pipeline": "x", "input": { "http": { "path": "/x" } }, "output": { "stdout": {} }, "stepz": [] });
    assert!(
        !validator.is_valid(&bad),
        "unknown top-level key must be rejected"
    );
}
