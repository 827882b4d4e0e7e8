//! Validation speed of a large project: 1,000 generated pipelines over shared mappings and
//! schemas, loaded and fully checked in memory. The baseline in the same run is the floor:
//! parsing the same YAML text into generic values with serde-saphyr and nothing else.
//!
//! Run: `cargo bench -p railyard-core --bench validate`. Quote the ratio, not the absolute time.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use criterion::{Criterion, criterion_group, criterion_main};
use railyard_core::project::{LoadOptions, MemFiles, load};

const PIPELINES: usize = 1_000;

fn project() -> MemFiles {
    let mut files = MemFiles::new();
    files.insert(
        "schemas/shopify/order@1.json",
        r#"{"type":"object","required":["id","line_items"],"properties":{"id":{"type":"integer"},"line_items":{"type":"array","items":{"type":"object","required":["sku","quantity"]}}}}"#,
    );
    files.insert(
        "schemas/canonical/money@1.json",
        r#"{"type":"string","pattern":"^-?[0-9]+(\\.[0-9]+)?$"}"#,
    );
    files.insert(
        "schemas/canonical/order@1.json",
        r#"{"type":"object","required":["order_id","lines"],"properties":{"order_id":{"type":"string"},"total":{"$ref":"canonical.money@1"},"lines":{"type":"array","items":{"type":"object","required":["sku","quantity"],"properties":{"sku":{"type":"string"},"quantity":{"type":"integer","minimum":1}}}}}}"#,
    );
    for m in 0..20 {
        files.insert(
            &format!("mappings/m{m}.yaml"),
            format!(
                "mapping: shopify-to-canonical-{m}\nfrom: shopify.order@1\nto: canonical.order@1\nfields:\n  order_id: to_string(id)\n  total: total_price\n  lines: \"line_items[].{{sku: sku, quantity: quantity}}\"\n  customer.email: \"customer.email || email\"\n"
            ),
        );
    }
    for i in 0..PIPELINES {
        files.insert(
            &format!("pipelines/p{i:04}.yaml"),
            format!(
                r#"pipeline: intake-{i}
version: 2
description: Generated pipeline {i}
input:
  http:
    path: /webhooks/channel-{i}/orders
    max_body: 1MiB
    verify:
      hmac_sha256: {{ header: X-Signature, encoding: base64, secret: "${{env:SECRET_{i}:-test}}" }}
  schema: shopify.order@1
  dedupe_key: headers."x-event-id"
steps:
  - dedupe: {{ key: meta.dedupe_key, ttl: 72h }}
  - map: shopify-to-canonical-{m}
  - filter: "length(body.lines) > `0` && body.total != '0.00'"
  - switch:
      cases:
        - name: big
          when: "length(body.lines) > `10`"
          output: {{ topic: "orders.big.{{{{ meta.source }}}}" }}
      default:
        steps:
          - metadata: {{ set: {{ order_id: body.order_id }} }}
  - reserve: {{ sku: "body.lines[].sku", qty: "body.lines[].quantity", on_short: backorder }}
output:
  - topic: orders.accepted
  - http:
      url: "http://erp.example/orders/{{{{ body.order_id }}}}"
      retry_on: [429, 503]
      timeout: 10s
on_error:
  retry: {{ attempts: 8, backoff: exponential, initial: 500ms, max: 1m }}
  dead_letter: store
"#,
                m = i % 20
            ),
        );
    }
    files
}

fn bench(c: &mut Criterion) {
    let files = project();
    let loaded = load(&files, &LoadOptions::default());
    assert!(
        !loaded.has_errors(),
        "generated project must be valid: {:#?}",
        loaded.diagnostics.iter().take(3).collect::<Vec<_>>()
    );
    assert_eq!(loaded.project.pipelines.len(), PIPELINES);

    let mut group = c.benchmark_group("validate-1000-pipelines");
    group.sample_size(10);
    group.bench_function("yaml-parse-floor", |b| {
        b.iter(|| {
            for (path, bytes) in &files.files {
                if path.ends_with(".yaml") {
                    let text = std::str::from_utf8(bytes).expect("utf8");
                    let v: serde_json::Value = serde_saphyr::from_str(text).expect("parse");
                    std::hint::black_box(v);
                }
            }
        })
    });
    group.bench_function("railyard-load", |b| {
        b.iter(|| std::hint::black_box(load(&files, &LoadOptions::default())))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
