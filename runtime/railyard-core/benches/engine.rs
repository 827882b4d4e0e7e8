//! Engine throughput on realistic orders, against the floor no pipeline can beat.
//!
//! Each path: bytes → `serde_json` parse → input schema → map → output schema → serialize.
//! The floor, measured in the same run on the same payload: `serde_json` parse + serialize.
//! Quote the ratio `floor time / pipeline time` (= pipeline throughput / floor throughput).
//!
//! - JMESPath path: the reference `shopify-order-to-canonical` mapping (a field map of
//!   JMESPath expressions) on the 13.8 KB Shopify orders/create fixture.
//! - Rhai path: the reference `square-order-to-canonical` mapping on the Square
//!   RetrieveOrder fixture.
//! - For the record, the same Shopify field map evaluated with the `jmespath` crate (which
//!   converts every input into its own value type) instead of jpx-core.
//! - JSON intake: `railyard_core::json::parse_payload` (what webhooks, file drops, AMQP and
//!   the CLI parse with) against `serde_json::from_slice` on the Shopify fixture.
//!
//! Run: `cargo bench -p railyard-core --bench engine`.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use railyard_core::engine::{Engine, MemoryState, Origin};
use railyard_core::project::{LoadOptions, MemFiles, Project, load};
use serde_json::Value;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn add_dir(files: &mut MemFiles, dir: &str) {
    let base = root().join(dir);
    let mut stack = vec![base.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(root())
                    .expect("under root")
                    .to_string_lossy()
                    .replace('\\', "/");
                files.insert(&rel, std::fs::read(&p).expect("read"));
            }
        }
    }
}

fn project() -> Project {
    let mut files = MemFiles::new();
    for dir in ["schemas", "mappings", "plugins", "tests/fixtures"] {
        add_dir(&mut files, dir);
    }
    files.insert(
        "pipelines/bench-shopify.yaml",
        "pipeline: bench-shopify\ninput: { stdin: {}, schema: shopify.order@1 }\nsteps:\n  - map: shopify-order-to-canonical\noutput: { stdout: {} }\n",
    );
    files.insert(
        "pipelines/bench-square.yaml",
        "pipeline: bench-square\ninput: { stdin: {}, schema: square.order@1 }\nsteps:\n  - map: square-order-to-canonical\noutput: { stdout: {} }\n",
    );
    let loaded = load(&files, &LoadOptions::default());
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    loaded.project
}

fn run_pipeline(project: &Project, name: &str, bytes: &[u8]) -> Vec<u8> {
    let pipeline = &project.pipelines[name];
    let ids = || "bench".to_string();
    let now = || "2026-01-01T00:00:00Z".to_string();
    let engine = Engine {
        project,
        ids: &ids,
        now: &now,
    };
    let mut state = MemoryState::new();
    let body: Value = serde_json::from_slice(bytes).expect("json");
    let out = engine.ingest(pipeline, body, Origin::default(), &mut state);
    assert!(
        out.failed.is_empty(),
        "{:?}",
        out.failed.first().map(|f| f.error.to_string())
    );
    serde_json::to_vec(out.delivered[0].message.body()).expect("serialize")
}

fn floor(bytes: &[u8]) -> Vec<u8> {
    let v: Value = serde_json::from_slice(bytes).expect("json");
    serde_json::to_vec(&v).expect("serialize")
}

fn bench(c: &mut Criterion) {
    let project = project();
    let shopify = std::fs::read(root().join("tests/fixtures/shopify/orders_create.body.json"))
        .expect("fixture");
    let square = std::fs::read(root().join("tests/fixtures/square/retrieveOrder.response.json"))
        .expect("fixture");

    let mut g = c.benchmark_group("shopify-order-jmespath");
    g.throughput(Throughput::Elements(1));
    g.bench_function("floor-parse-serialize", |b| b.iter(|| floor(&shopify)));
    g.bench_function("pipeline", |b| {
        b.iter(|| run_pipeline(&project, "bench-shopify", &shopify))
    });
    // The same field map with the `jmespath` crate: each evaluation converts the input.
    let mapping = &project.mappings["shopify-order-to-canonical"];
    let fields: Vec<(String, jmespath::Expression<'static>)> = mapping
        .def
        .fields
        .as_ref()
        .expect("field map")
        .iter()
        .map(|(k, v)| {
            (
                k.value.clone(),
                jmespath::compile(&v.value).expect("jmespath crate compiles it"),
            )
        })
        .collect();
    g.bench_function("map-only-jmespath-crate", |b| {
        let body: Value = serde_json::from_slice(&shopify).expect("json");
        b.iter(|| {
            let var = jmespath::Variable::from_serializable(&body).expect("convert");
            let data = std::sync::Arc::new(var);
            let mut out = serde_json::Map::new();
            for (k, e) in &fields {
                let r = e.search(data.clone()).expect("search");
                out.insert(k.clone(), serde_json::to_value(&*r).expect("back"));
            }
            out
        })
    });
    g.bench_function("map-only-jpx-core", |b| {
        let body: Value = serde_json::from_slice(&shopify).expect("json");
        b.iter(|| mapping.apply(&project.rhai, &body).expect("map"))
    });
    g.finish();

    // The JSON intake every payload goes through (duplicate keys refused, integers beyond
    // 64 bits refused, a BOM dropped) against plain `serde_json::from_slice`, on the same
    // 13.8 KB Shopify order. Quote `from_slice time / parse_payload time`.
    let mut g = c.benchmark_group("json-intake");
    g.throughput(Throughput::Bytes(shopify.len() as u64));
    g.bench_function("serde_json-from_slice", |b| {
        b.iter(|| serde_json::from_slice::<Value>(&shopify).expect("json"))
    });
    g.bench_function("parse_payload", |b| {
        b.iter(|| railyard_core::json::parse_payload(&shopify).expect("json"))
    });
    g.finish();

    let mut g = c.benchmark_group("square-order-rhai");
    g.throughput(Throughput::Elements(1));
    g.bench_function("floor-parse-serialize", |b| b.iter(|| floor(&square)));
    g.bench_function("pipeline", |b| {
        b.iter(|| run_pipeline(&project, "bench-square", &square))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
