#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! The engine end to end: every scenario is a small in-memory project run through [`Engine`]
//! with deterministic ids (`msg-1`, `msg-2`, ... per test), a fixed clock and [`MemoryState`].
//!
//! Tests are data: each boundary has one helper, and each scenario is a table of inputs and
//! what must become of them.

use std::cell::{Cell, RefCell};

use railyard_core::Diagnostic;
use railyard_core::engine::{
    Delivery, Dropped, Engine, MemoryState, Message, Origin, Outcome, State, StepCounts, StepError,
};
use railyard_core::model::OrShort;
use railyard_core::project::{self, LoadOptions, MemFiles, Pipeline, Project};
use serde_json::{Value, json};

const NOW: &str = "2024-05-01T12:00:00Z";

// ---------------------------------------------------------------------------------------------
// The shared project: schemas, mappings, a plugin. Each test adds its pipelines.

/// A project file: path and contents.
type File<'a> = (&'a str, &'a str);

/// Where a delivery went: its topic and the switch case that routed it.
type Route<'a> = (&'a str, Option<&'a str>);

const BASE: &[File<'static>] = &[
    (
        "schemas/shop/order@1.json",
        r#"{
          "type": "object",
          "required": ["id", "items"],
          "properties": {
            "id": { "type": "string" },
            "buyer": { "type": "object" },
            "items": {
              "type": "array",
              "items": { "type": "object", "required": ["sku", "qty"], "properties": { "sku": { "type": "string" } } }
            }
          }
        }"#,
    ),
    (
        "schemas/canonical/order@1.json",
        r#"{
          "type": "object",
          "required": ["order_id", "lines"],
          "properties": {
            "order_id": { "type": "string", "minLength": 1 },
            "customer": {
              "type": "object",
              "properties": { "name": { "type": ["string", "null"] }, "email": { "type": ["string", "null"] } }
            },
            "lines": {
              "type": "array",
              "items": {
                "type": "object",
                "required": ["sku", "quantity"],
                "properties": { "sku": { "type": "string" }, "quantity": { "type": "integer", "minimum": 1 } }
              }
            }
          }
        }"#,
    ),
    (
        "schemas/canonical/line@1.json",
        r#"{
          "type": "object",
          "required": ["sku", "quantity"],
          "properties": { "sku": { "type": "string" }, "quantity": { "type": "integer", "minimum": 1 } }
        }"#,
    ),
    (
        "schemas/calc/total@1.json",
        r#"{
          "type": "object",
          "required": ["id", "total"],
          "properties": { "id": { "type": "string" }, "total": { "type": "integer" } }
        }"#,
    ),
    (
        "mappings/shop-fields.yaml",
        r#"mapping: shop-fields
from: shop.order@1
to: canonical.order@1
fields:
  order_id: id
  customer.name: buyer.name
  customer.email: buyer.email
  lines: "items[].{sku: sku, quantity: qty}"
"#,
    ),
    (
        "mappings/shop-jmespath.yaml",
        r#"mapping: shop-jmespath
from: shop.order@1
to: canonical.order@1
jmespath: "{order_id: id, lines: items[].{sku: sku, quantity: qty}}"
"#,
    ),
    (
        "mappings/shop-rhai.yaml",
        r#"mapping: shop-rhai
from: shop.order@1
to: canonical.order@1
rhai: |
  let lines = [];
  for item in body.items {
    lines.push(#{ sku: item.sku, quantity: item.qty });
  }
  #{ order_id: body.id, lines: lines }
"#,
    ),
    (
        "plugins/tag.rhai",
        r#"
fn process(body) {
  body.tagged = true;
  body
}

fn stamp(body, settings) {
  body.reference = settings.prefix + body.id;
  body
}

fn fail(body) {
  throw "the feed is down";
}
"#,
    ),
];

// ---------------------------------------------------------------------------------------------
// Harness

/// A loaded project plus the injected pieces of an engine: a counter for ids, a fixed clock,
/// and in-memory state shared by every message the test sends.
struct Rig {
    project: Project,
    ids: Box<dyn Fn() -> String>,
    state: RefCell<MemoryState>,
}

fn fixed_now() -> String {
    NOW.to_string()
}

fn files(extra: &[File<'_>]) -> MemFiles {
    let mut files = MemFiles::new();
    for (path, text) in BASE.iter().chain(extra) {
        files.insert(path, *text);
    }
    files
}

fn render(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(|d| {
            format!(
                "{} {} {}: {}",
                d.severity.as_str(),
                d.code.as_str(),
                d.file.as_deref().unwrap_or("-"),
                d.message
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl Rig {
    fn new(extra: &[File<'_>]) -> Rig {
        let loaded = project::load(&files(extra), &LoadOptions::default());
        assert!(
            !loaded.has_errors(),
            "the test project must load cleanly:\n{}",
            render(&loaded.diagnostics)
        );
        let counter = Cell::new(0u64);
        Rig {
            project: loaded.project,
            ids: Box::new(move || {
                counter.set(counter.get() + 1);
                format!("msg-{}", counter.get())
            }),
            state: RefCell::new(MemoryState::new()),
        }
    }

    fn engine(&self) -> Engine<'_> {
        Engine {
            project: &self.project,
            ids: &*self.ids,
            now: &fixed_now,
        }
    }

    fn pipeline(&self, name: &str) -> &Pipeline {
        self.project
            .pipelines
            .get(name)
            .unwrap_or_else(|| panic!("pipeline `{name}` is not loaded"))
    }

    fn send(&self, pipeline: &str, body: Value) -> Outcome<'_> {
        self.send_with(pipeline, body, origin())
    }

    fn send_with(&self, pipeline: &str, body: Value, origin: Origin) -> Outcome<'_> {
        self.engine().ingest(
            self.pipeline(pipeline),
            body,
            origin,
            &mut *self.state.borrow_mut(),
        )
    }

    fn flush(&self, pipeline: &str) -> Outcome<'_> {
        self.engine()
            .flush(self.pipeline(pipeline), &mut *self.state.borrow_mut())
    }

    fn stock(&self, location: &str, sku: &str, qty: i64) {
        self.state.borrow_mut().stock(location, sku, qty);
    }
}

fn origin() -> Origin {
    Origin {
        source: "test:engine".into(),
        ..Origin::default()
    }
}

fn with_headers(headers: &[(&str, &str)]) -> Origin {
    Origin {
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect(),
        ..origin()
    }
}

// ---------------------------------------------------------------------------------------------
// What became of the messages

/// The topics a delivery goes to, comma-separated.
fn topics(d: &Delivery<'_>) -> String {
    d.outputs
        .iter()
        .filter_map(|o| o.def.topic.as_ref())
        .map(|t| match &t.value {
            OrShort::Short(s) => s.clone(),
            OrShort::Full(f) => f.name.value.clone(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// One line per message, for assertion failures.
fn summary(out: &Outcome<'_>) -> String {
    let mut lines = Vec::new();
    for d in &out.delivered {
        lines.push(format!(
            "delivered to [{}] route {:?}: {} meta {}",
            topics(d),
            d.route,
            d.message.body(),
            Value::Object(d.message.meta().clone())
        ));
    }
    for d in &out.dropped {
        lines.push(format!("dropped at {}: {}", d.step, d.reason));
    }
    for f in &out.failed {
        lines.push(format!("failed: {}", f.error));
    }
    if lines.is_empty() {
        "nothing came out".to_string()
    } else {
        lines.join("\n")
    }
}

fn delivered<'o, 'p>(out: &'o Outcome<'p>) -> &'o Delivery<'p> {
    assert!(
        out.delivered.len() == 1 && out.dropped.is_empty() && out.failed.is_empty(),
        "expected exactly one delivery:\n{}",
        summary(out)
    );
    &out.delivered[0]
}

fn failed(out: &Outcome<'_>) -> StepError {
    assert!(
        out.failed.len() == 1 && out.delivered.is_empty() && out.dropped.is_empty(),
        "expected exactly one failure:\n{}",
        summary(out)
    );
    out.failed[0].error.clone()
}

fn dropped(out: &Outcome<'_>) -> Dropped {
    assert!(
        out.dropped.len() == 1 && out.delivered.is_empty() && out.failed.is_empty(),
        "expected exactly one drop:\n{}",
        summary(out)
    );
    let d = &out.dropped[0];
    Dropped {
        message: d.message.clone(),
        step: d.step.clone(),
        reason: d.reason.clone(),
    }
}

fn nothing(out: &Outcome<'_>) {
    assert!(
        out.delivered.is_empty() && out.dropped.is_empty() && out.failed.is_empty(),
        "expected nothing to come out yet:\n{}",
        summary(out)
    );
}

fn meta<'m>(m: &'m Message, key: &str) -> &'m Value {
    m.meta().get(key).unwrap_or(&Value::Null)
}

/// The instance paths of a schema failure's violations.
fn paths(e: &StepError) -> Vec<&str> {
    e.violations
        .iter()
        .map(|v| v.instance_path.as_str())
        .collect()
}

/// Asserts a schema violation at `step` whose violations include `instance_path`.
fn schema_violation(e: &StepError, step: &str, instance_path: &str) {
    assert_eq!(e.code, "schema-violation", "{e}");
    assert_eq!(e.step, step, "{e}");
    assert!(
        paths(e).contains(&instance_path),
        "expected a violation at `{instance_path}`:\n{e}"
    );
    let shown = e.to_string();
    assert!(
        shown.contains(if instance_path.is_empty() {
            "instance /"
        } else {
            instance_path
        }),
        "{shown}"
    );
}

// ---------------------------------------------------------------------------------------------
// 1. Every step kind

#[test]
fn validate_passes_conforming_bodies_and_fails_the_rest_with_the_instance_path() {
    let rig = Rig::new(&[(
        "pipelines/lines.yaml",
        r#"pipeline: lines
input: { stdin: {} }
steps:
  - validate: canonical.line@1
output: { topic: lines }
"#,
    )]);
    // body → instance path of the violation, or None when it conforms
    let cases: &[(Value, Option<&str>)] = &[
        (json!({"sku": "A", "quantity": 1}), None),
        (json!({"sku": "A", "quantity": 0}), Some("/quantity")),
        (json!({"sku": 7, "quantity": 1}), Some("/sku")),
        (json!({"sku": "A", "quantity": 1.5}), Some("/quantity")),
        (json!({"sku": "A"}), Some("")),
    ];
    for (body, violation) in cases {
        let out = rig.send("lines", body.clone());
        match violation {
            None => {
                let d = delivered(&out);
                assert_eq!(d.message.body(), body);
                assert_eq!(meta(&d.message, "schema"), "canonical.line@1");
            }
            Some(path) => schema_violation(&failed(&out), "steps[0] validate", path),
        }
    }
}

#[test]
fn map_applies_field_maps_whole_jmespath_and_rhai_mappings() {
    let pipeline = |name: &str, mapping: &str| {
        format!(
            "pipeline: {name}\ninput: {{ stdin: {{}}, schema: shop.order@1 }}\nsteps:\n  - map: {mapping}\noutput: {{ topic: orders }}\n"
        )
    };
    let (fields, jmes, rhai) = (
        pipeline("by-fields", "shop-fields"),
        pipeline("by-jmespath", "shop-jmespath"),
        pipeline("by-rhai", "shop-rhai"),
    );
    let rig = Rig::new(&[
        ("pipelines/fields.yaml", fields.as_str()),
        ("pipelines/jmespath.yaml", jmes.as_str()),
        ("pipelines/rhai.yaml", rhai.as_str()),
    ]);
    let input = json!({
        "id": "shop:1001",
        "buyer": {"name": "Ann", "email": "ann@example.com"},
        "items": [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 1}]
    });
    let lines = json!([{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 1}]);
    let cases = [
        // Dotted field names nest: `customer.name` and `customer.email` build one object.
        (
            "by-fields",
            json!({
                "order_id": "shop:1001",
                "customer": {"name": "Ann", "email": "ann@example.com"},
                "lines": lines
            }),
        ),
        (
            "by-jmespath",
            json!({"order_id": "shop:1001", "lines": lines}),
        ),
        ("by-rhai", json!({"order_id": "shop:1001", "lines": lines})),
    ];
    for (name, expected) in cases {
        let out = rig.send(name, input.clone());
        let d = delivered(&out);
        assert_eq!(d.message.body(), &expected, "{name}");
        assert_eq!(meta(&d.message, "schema"), "canonical.order@1", "{name}");
        assert_eq!(meta(&d.message, "pipeline"), name);
    }
}

#[test]
fn filter_keeps_truthy_messages_and_drops_the_rest_with_a_reason() {
    let rig = Rig::new(&[(
        "pipelines/keep.yaml",
        r#"pipeline: keep
input: { stdin: {} }
steps:
  - filter: body.v
output: { topic: kept }
"#,
    )]);
    // JMESPath truthiness: false, null, "", [] and {} are false; everything else (0 too) is true.
    let cases = [
        (json!(true), true),
        (json!(false), false),
        (json!(null), false),
        (json!(""), false),
        (json!([]), false),
        (json!({}), false),
        (json!(0), true),
        (json!("x"), true),
        (json!([0]), true),
        (json!({"a": null}), true),
    ];
    for (v, kept) in cases {
        let out = rig.send("keep", json!({ "v": v }));
        if kept {
            assert_eq!(delivered(&out).message.body(), &json!({ "v": v }));
        } else {
            let d = dropped(&out);
            assert_eq!(d.step, "steps[0] filter", "v = {v}");
            assert!(d.reason.contains("body.v"), "v = {v}: {}", d.reason);
        }
    }
    // A missing field is null: dropped, not failed.
    dropped(&rig.send("keep", json!({})));
}

#[test]
fn filter_expression_errors_fail_the_message() {
    let rig = Rig::new(&[(
        "pipelines/len.yaml",
        r#"pipeline: len
input: { stdin: {} }
steps:
  - filter: "length(body.v) > `1`"
output: { topic: kept }
"#,
    )]);
    delivered(&rig.send("len", json!({"v": "abc"})));
    dropped(&rig.send("len", json!({"v": "a"})));
    let e = failed(&rig.send("len", json!({"v": 42})));
    assert_eq!(e.code, "expression-error", "{e}");
    assert_eq!(e.step, "steps[0] filter");
}

const SWITCH_FIRST: &str = r#"pipeline: route-first
input: { stdin: {} }
steps:
  - switch:
      cases:
        - name: bulk
          when: "body.qty > `10`"
          output: { topic: orders.bulk }
        - name: express
          when: body.express
          steps:
            - metadata: { set: { lane: "'fast'" } }
        - name: shadowed
          when: body.express
          output: { topic: orders.shadowed }
      default:
        name: standard
        output: { topic: orders.standard }
  - metadata: { set: { after_switch: "`true`" } }
output: { topic: orders.main }
"#;

#[test]
fn switch_first_routes_to_the_first_matching_case() {
    let rig = Rig::new(&[("pipelines/route-first.yaml", SWITCH_FIRST)]);
    // body → (topic, route, continued after the switch)
    let cases = [
        // Both `bulk` and `express` match: the first wins, and its own output takes it.
        (
            json!({"qty": 50, "express": true}),
            "orders.bulk",
            "bulk",
            false,
        ),
        // `express` has no output: the message continues after the switch, keeping its route.
        (
            json!({"qty": 1, "express": true}),
            "orders.main",
            "express",
            true,
        ),
        // Nothing matches: the default case takes it.
        (
            json!({"qty": 1, "express": false}),
            "orders.standard",
            "standard",
            false,
        ),
    ];
    for (body, topic, route, continued) in cases {
        let out = rig.send("route-first", body.clone());
        let d = delivered(&out);
        assert_eq!(topics(d), topic, "{body}");
        assert_eq!(d.route.as_deref(), Some(route), "{body}");
        assert_eq!(meta(&d.message, "route"), route, "{body}");
        assert_eq!(
            meta(&d.message, "after_switch"),
            &json!(if continued {
                Value::Bool(true)
            } else {
                Value::Null
            }),
            "{body}"
        );
        assert_eq!(d.message.body(), &body);
    }
    let out = rig.send("route-first", json!({"qty": 1, "express": true}));
    assert_eq!(meta(&delivered(&out).message, "lane"), "fast");
}

#[test]
fn switch_all_gives_every_matching_case_its_own_copy() {
    let rig = Rig::new(&[(
        "pipelines/route-all.yaml",
        r#"pipeline: route-all
input: { stdin: {} }
steps:
  - switch:
      mode: all
      cases:
        - name: vip
          when: body.vip
          output: { topic: customers.vip }
        - name: newsletter
          when: body.newsletter
          steps:
            - metadata: { set: { list: "'news'" } }
output: { topic: customers.all }
"#,
    )]);
    // body → (topic, route) of each delivery, in case order
    let cases: [(Value, &[Route<'_>]); 4] = [
        (
            json!({"vip": true, "newsletter": true}),
            &[
                ("customers.vip", Some("vip")),
                ("customers.all", Some("newsletter")),
            ],
        ),
        (json!({"vip": true}), &[("customers.vip", Some("vip"))]),
        (
            json!({"newsletter": true}),
            &[("customers.all", Some("newsletter"))],
        ),
        // No case matches and there is no default: it continues after the switch.
        (json!({}), &[("customers.all", None)]),
    ];
    for (body, expected) in cases {
        let out = rig.send("route-all", body.clone());
        assert!(
            out.failed.is_empty() && out.dropped.is_empty(),
            "{}",
            summary(&out)
        );
        let got: Vec<(String, Option<&str>)> = out
            .delivered
            .iter()
            .map(|d| (topics(d), d.route.as_deref()))
            .collect();
        let want: Vec<(String, Option<&str>)> =
            expected.iter().map(|(t, r)| (t.to_string(), *r)).collect();
        assert_eq!(got, want, "{body}\n{}", summary(&out));
        for d in &out.delivered {
            assert_eq!(d.message.body(), &body);
            // Each copy is its own: the newsletter case's metadata stays on its copy.
            let list = meta(&d.message, "list");
            match d.route.as_deref() {
                Some("newsletter") => assert_eq!(list, "news"),
                _ => assert_eq!(list, &Value::Null, "{}", summary(&out)),
            }
        }
    }
}

#[test]
fn split_turns_an_array_into_messages_with_their_own_ids_and_the_parents_correlation() {
    let rig = Rig::new(&[(
        "pipelines/split.yaml",
        r#"pipeline: split
input: { stdin: {} }
steps:
  - split: { path: body.lines, schema: canonical.line@1 }
output: { topic: lines }
"#,
    )]);
    let out = rig.send_with(
        "split",
        json!({"lines": [
            {"sku": "A", "quantity": 1},
            {"sku": "B", "quantity": 0},
            {"sku": "C", "quantity": 3}
        ]}),
        Origin {
            correlation_id: Some("corr-7".into()),
            ..origin()
        },
    );
    // The parent is msg-1; its elements are msg-2, msg-3 and msg-4.
    let ids: Vec<&str> = out.delivered.iter().map(|d| d.message.id()).collect();
    assert_eq!(ids, ["msg-2", "msg-4"], "{}", summary(&out));
    let bodies: Vec<&Value> = out.delivered.iter().map(|d| d.message.body()).collect();
    assert_eq!(
        bodies,
        [
            &json!({"sku": "A", "quantity": 1}),
            &json!({"sku": "C", "quantity": 3})
        ]
    );
    for d in &out.delivered {
        assert_eq!(meta(&d.message, "correlation_id"), "corr-7");
        assert_eq!(meta(&d.message, "causation_id"), "msg-1");
        assert_eq!(meta(&d.message, "schema"), "canonical.line@1");
    }
    // The element that breaks the element schema fails on its own.
    assert_eq!(out.failed.len(), 1, "{}", summary(&out));
    let f = &out.failed[0];
    schema_violation(&f.error, "steps[0] split", "/quantity");
    assert_eq!(f.error.message_id, "msg-3");
    assert_eq!(meta(&f.message, "causation_id"), "msg-1");

    // Not an array → `not-an-array`, saying what it was; an empty array → dropped.
    for (lines, what) in [
        (json!("A,B"), "a string"),
        (json!({"sku": "A"}), "an object"),
        (json!(null), "null"),
    ] {
        let e = failed(&rig.send("split", json!({ "lines": lines })));
        assert_eq!(e.code, "not-an-array", "{e}");
        assert_eq!(e.step, "steps[0] split");
        assert!(e.message.contains(what), "{e}");
    }
    let d = dropped(&rig.send("split", json!({"lines": []})));
    assert_eq!(d.step, "steps[0] split");
}

#[test]
fn batch_emits_full_batches_and_flush_emits_the_rest() {
    let rig = Rig::new(&[(
        "pipelines/batch.yaml",
        r#"pipeline: batch
input: { stdin: {} }
steps:
  - batch: { count: 2 }
  - metadata: { set: { size: "length(body)" } }
output: { topic: batches }
"#,
    )]);
    nothing(&rig.send("batch", json!({"n": 1})));
    let out = rig.send("batch", json!({"n": 2}));
    let d = delivered(&out);
    assert_eq!(d.message.body(), &json!([{"n": 1}, {"n": 2}]));
    assert_eq!(meta(&d.message, "size"), 2);
    // The batch is a new message caused by the first one it holds.
    assert_eq!(d.message.id(), "msg-3");
    assert_eq!(meta(&d.message, "causation_id"), "msg-1");
    assert_eq!(meta(&d.message, "correlation_id"), "msg-1");

    nothing(&rig.send("batch", json!({"n": 3})));
    let out = rig.flush("batch");
    let d = delivered(&out);
    assert_eq!(d.message.body(), &json!([{"n": 3}]));
    assert_eq!(meta(&d.message, "size"), 1);
    assert_eq!(meta(&d.message, "causation_id"), "msg-4");
    // Nothing is left to flush.
    nothing(&rig.flush("batch"));
}

#[test]
fn a_step_after_a_batch_is_named_by_its_real_index_whether_the_batch_filled_or_was_flushed() {
    let rig = Rig::new(&[(
        "pipelines/batch.yaml",
        r#"pipeline: batch
input: { stdin: {} }
steps:
  - batch: { count: 2 }
  - filter: "length(body[0].v) > `0`"
output: { topic: batches }
"#,
    )]);
    nothing(&rig.send("batch", json!({"v": 1})));
    let full = rig.send("batch", json!({"v": 2}));
    assert_eq!(failed(&full).step, "steps[1] filter");
    nothing(&rig.send("batch", json!({"v": 3})));
    let flushed = rig.flush("batch");
    assert_eq!(failed(&flushed).step, "steps[1] filter");
}

#[test]
fn a_batch_after_a_flushed_batch_is_buffered_and_flushed_too() {
    let rig = Rig::new(&[(
        "pipelines/two-batches.yaml",
        r#"pipeline: two-batches
input: { stdin: {} }
steps:
  - batch: { count: 2 }
  - batch: { count: 2 }
output: { topic: batches }
"#,
    )]);
    nothing(&rig.send("two-batches", json!(1)));
    nothing(&rig.send("two-batches", json!(2))); // [1, 2] waits in the second batch
    nothing(&rig.send("two-batches", json!(3)));
    // One flush empties the first batch into the second, then the second: [[1, 2], [3]].
    let out = rig.flush("two-batches");
    assert_eq!(
        delivered(&out).message.body(),
        &json!([[1, 2], [3]]),
        "{}",
        summary(&out)
    );
    nothing(&rig.flush("two-batches"));
}

#[test]
fn a_batch_inside_a_switch_case_is_rejected_at_load() {
    // Its buffer could not be flushed back into the case, so the loader refuses it.
    let loaded = project::load(
        &files(&[(
            "pipelines/batch-in-case.yaml",
            r#"pipeline: batch-in-case
input: { stdin: {} }
steps:
  - switch:
      cases:
        - name: pos
          when: body.pos
          steps:
            - batch: { count: 10 }
          output: { topic: pos.batches }
output: { topic: other }
"#,
        )]),
        &LoadOptions::default(),
    );
    assert!(
        loaded
            .diagnostics
            .iter()
            .any(|d| d.is_error() && d.message.contains("batch cannot sit inside a switch case")),
        "{}",
        render(&loaded.diagnostics)
    );
    assert!(!loaded.project.pipelines.contains_key("batch-in-case"));
}

#[test]
fn dedupe_drops_a_repeated_key_and_fails_a_missing_one() {
    let rig = Rig::new(&[
        (
            "pipelines/dedupe.yaml",
            r#"pipeline: dedupe
input: { stdin: {} }
steps:
  - dedupe: { key: body.order_id, ttl: 72h }
output: { topic: orders }
"#,
        ),
        (
            "pipelines/dedupe-header.yaml",
            r#"pipeline: dedupe-header
input: { stdin: {}, dedupe_key: 'headers."x-event-id"' }
steps:
  - dedupe: { key: meta.dedupe_key, ttl: 1h }
output: { topic: events }
"#,
        ),
    ]);
    delivered(&rig.send("dedupe", json!({"order_id": "A"})));
    delivered(&rig.send("dedupe", json!({"order_id": "B"})));
    let d = dropped(&rig.send("dedupe", json!({"order_id": "A", "again": true})));
    assert_eq!(d.step, "steps[0] dedupe");
    assert!(
        d.reason.contains("duplicate") && d.reason.contains('A'),
        "{}",
        d.reason
    );
    for body in [json!({}), json!({"order_id": null})] {
        let e = failed(&rig.send("dedupe", body));
        assert_eq!(e.code, "missing-key", "{e}");
        assert_eq!(e.step, "steps[0] dedupe");
    }

    // The input's dedupe key (from a header) lands in `meta.dedupe_key`.
    let evt = |id: &str| with_headers(&[("x-event-id", id)]);
    let first = rig.send_with("dedupe-header", json!({"n": 1}), evt("e-1"));
    assert_eq!(meta(&delivered(&first).message, "dedupe_key"), "e-1");
    delivered(&rig.send_with("dedupe-header", json!({"n": 2}), evt("e-2")));
    dropped(&rig.send_with("dedupe-header", json!({"n": 1}), evt("e-1")));
    let e = failed(&rig.send_with("dedupe-header", json!({"n": 3}), origin()));
    assert_eq!(e.code, "missing-key", "{e}");
}

#[test]
fn metadata_sets_copies_and_removes_entries_in_that_order() {
    let rig = Rig::new(&[(
        "pipelines/meta.yaml",
        r#"pipeline: meta
input: { stdin: {} }
steps:
  - metadata:
      set:
        order: body.order_id
        line_count: "length(body.lines)"
        scratch: "'temporary'"
      copy:
        event: headers.X-Event-Id
        order_again: order
        missing: headers.nope
      remove: [scratch]
output: { topic: out }
"#,
    )]);
    let out = rig.send_with(
        "meta",
        json!({"order_id": "o-1", "lines": [1, 2]}),
        with_headers(&[("x-event-id", "evt-9")]),
    );
    let m = &delivered(&out).message;
    let expected = [
        ("order", json!("o-1")),
        ("line_count", json!(2)),
        ("event", json!("evt-9")),
        ("order_again", json!("o-1")),
        ("missing", json!(null)),
    ];
    for (k, v) in expected {
        assert_eq!(meta(m, k), &v, "meta.{k}: {}", summary(&out));
    }
    assert!(!m.meta().contains_key("scratch"), "{}", summary(&out));
    // The runtime's own entries are there too.
    assert_eq!(meta(m, "received_at"), NOW);
    assert_eq!(meta(m, "source"), "test:engine");
    assert_eq!(meta(m, "pipeline"), "meta");
    assert_eq!(meta(m, "pipeline_version"), 1);
    assert_eq!(meta(m, "attempt"), 1);
}

#[test]
fn script_sees_body_and_meta_and_its_value_is_the_new_body() {
    let rig = Rig::new(&[(
        "pipelines/total.yaml",
        r#"pipeline: total
input: { stdin: {} }
steps:
  - script:
      rhai: |
        #{ id: meta.id, source: meta.source, total: body.a + body.b }
      produces: calc.total@1
output: { topic: totals }
"#,
    )]);
    let out = rig.send("total", json!({"a": 2, "b": 3}));
    let d = delivered(&out);
    assert_eq!(
        d.message.body(),
        &json!({"id": "msg-1", "source": "test:engine", "total": 5})
    );
    assert_eq!(meta(&d.message, "schema"), "calc.total@1");
    // Strings concatenate in Rhai: `produces` catches the result at the script step.
    let out = rig.send("total", json!({"a": "2", "b": "3"}));
    let e = failed(&out);
    schema_violation(&e, "steps[0] script", "/total");
    assert_eq!(out.failed[0].message.body()["total"], "23");
    // A script error is a failure, not a panic.
    let e = failed(&rig.send("total", json!({"a": 1})));
    assert_eq!(e.code, "script-error", "{e}");
}

#[test]
fn plugin_functions_are_called_with_the_body_and_with_settings() {
    let rig = Rig::new(&[
        (
            "pipelines/plugin.yaml",
            r#"pipeline: plugin
input: { stdin: {} }
steps:
  - plugin: { module: tag }
  - plugin:
      module: tag
      function: stamp
      with: { prefix: "PO-" }
output: { topic: tagged }
"#,
        ),
        (
            "pipelines/plugin-as-module.yaml",
            r#"pipeline: plugin-as-module
input: { stdin: {} }
steps:
  - script:
      rhai: |
        let b = tag::process(body);
        b.via = "module";
        b
output: { topic: tagged }
"#,
        ),
        (
            "pipelines/plugin-fails.yaml",
            r#"pipeline: plugin-fails
input: { stdin: {} }
steps:
  - plugin: { module: tag, function: fail }
output: { topic: tagged }
"#,
        ),
    ]);
    let out = rig.send("plugin", json!({"id": "7"}));
    assert_eq!(
        delivered(&out).message.body(),
        &json!({"id": "7", "tagged": true, "reference": "PO-7"})
    );
    let out = rig.send("plugin-as-module", json!({"id": "7"}));
    assert_eq!(
        delivered(&out).message.body(),
        &json!({"id": "7", "tagged": true, "via": "module"})
    );
    let e = failed(&rig.send("plugin-fails", json!({"id": "7"})));
    assert_eq!(e.code, "plugin-error", "{e}");
    assert_eq!(e.step, "steps[0] plugin");
    assert!(e.message.contains("the feed is down"), "{e}");
}

#[test]
fn reserve_rejects_or_backorders_when_stock_is_short() {
    let reserve = |name: &str, on_short: &str| {
        format!(
            r#"pipeline: {name}
input: {{ stdin: {{}} }}
steps:
  - reserve:
      sku: "body.lines[].sku"
      qty: "body.lines[].quantity"
      location: body.store
      on_short: {on_short}
output: {{ topic: reserved }}
"#
        )
    };
    let (reject, backorder) = (
        reserve("reserve-reject", "reject"),
        reserve("reserve-backorder", "backorder"),
    );
    let rig = Rig::new(&[
        ("pipelines/reject.yaml", reject.as_str()),
        ("pipelines/backorder.yaml", backorder.as_str()),
    ]);
    rig.stock("s1", "A", 3);
    rig.stock("s2", "A", 2);
    let order =
        |store: &str, qty: Value| json!({"store": store, "lines": [{"sku": "A", "quantity": qty}]});

    // "2" (Square sends quantities as strings) reserves 2 of the 3.
    delivered(&rig.send("reserve-reject", order("s1", json!("2"))));
    // Only 1 is left: rejected, saying what was short.
    let e = failed(&rig.send("reserve-reject", order("s1", json!(2))));
    assert_eq!(e.code, "out-of-stock", "{e}");
    assert_eq!(e.step, "steps[0] reserve");
    assert!(e.message.contains("A (wanted 2, available 1)"), "{e}");
    // A SKU without a stock level is unlimited.
    let unlimited = json!({"store": "s1", "lines": [{"sku": "Z", "quantity": 1000}]});
    delivered(&rig.send("reserve-reject", unlimited));
    // A quantity that is not a whole number is an error, not a reservation of 0.
    let e = failed(&rig.send("reserve-reject", order("s1", json!("two"))));
    assert_eq!(e.code, "expression-error", "{e}");

    // Backorder: delivered, marked with what was short.
    let out = rig.send("reserve-backorder", order("s2", json!("5")));
    let d = delivered(&out);
    assert_eq!(
        meta(&d.message, "backordered"),
        &json!([{"sku": "A", "wanted": 5, "available": 2}])
    );
    // What was available got reserved: nothing is left at s2.
    let out = rig.send("reserve-backorder", order("s2", json!(1)));
    assert_eq!(
        meta(&delivered(&out).message, "backordered"),
        &json!([{"sku": "A", "wanted": 1, "available": 0}])
    );
    // Enough stock: no `backordered` entry.
    let out = rig.send("reserve-backorder", order("s1", json!(1)));
    assert_eq!(meta(&delivered(&out).message, "backordered"), &Value::Null);
}

// ---------------------------------------------------------------------------------------------
// 2. Schema enforcement at run time

const MAP_ORDERS: &str = r#"pipeline: map-orders
input: { stdin: {}, schema: shop.order@1 }
steps:
  - map: shop-fields
output: { topic: orders.canonical }
"#;

#[test]
fn a_mapping_that_emits_an_invalid_canonical_order_is_caught_at_the_map_step() {
    let rig = Rig::new(&[("pipelines/map-orders.yaml", MAP_ORDERS)]);
    // `qty` is a string in the payload; the mapping copies it, the canonical schema wants an integer.
    let out = rig.send(
        "map-orders",
        json!({"id": "shop:1", "items": [{"sku": "A", "qty": "2"}]}),
    );
    let e = failed(&out);
    schema_violation(&e, "steps[0] map", "/lines/0/quantity");
    assert!(e.step.contains("map"));
    assert_eq!(e.message_id, "msg-1");
    assert!(e.message.contains("canonical.order@1"), "{e}");
    let v = e
        .violations
        .iter()
        .find(|v| v.instance_path == "/lines/0/quantity")
        .unwrap();
    assert_eq!(
        v.schema_path,
        "/properties/lines/items/properties/quantity/type"
    );
    // The failed message carries the mapped body that broke the schema.
    let f = &out.failed[0];
    assert_eq!(f.message.body()["lines"][0]["quantity"], "2");
    assert_eq!(meta(&f.message, "schema"), "canonical.order@1");
}

#[test]
fn the_input_schema_rejects_a_bad_payload_at_the_input() {
    let rig = Rig::new(&[("pipelines/map-orders.yaml", MAP_ORDERS)]);
    let cases = [
        (json!({"id": 5, "items": []}), "/id"),
        (json!({"id": "shop:1"}), ""),
        (json!({"id": "shop:1", "items": [{"sku": "A"}]}), "/items/0"),
    ];
    for (body, path) in cases {
        let out = rig.send("map-orders", body.clone());
        let e = failed(&out);
        schema_violation(&e, "input", path);
        // Nothing ran on it: the body is what arrived.
        assert_eq!(out.failed[0].message.body(), &body);
        assert_eq!(meta(&out.failed[0].message, "schema"), "shop.order@1");
    }
}

#[test]
fn a_body_changed_after_validation_is_validated_again_before_the_output() {
    // The script breaks the order when asked to; neither script declares `produces`.
    let script = r#"
  - script:
      rhai: |
        if body.order_id == "break" { body.lines[0].quantity = "two"; }
        body
"#;
    let declared = format!(
        "pipeline: declared\ninput: {{ stdin: {{}}, schema: canonical.order@1 }}\nsteps:{script}output: {{ topic: out, schema: canonical.order@1 }}\n"
    );
    let inherited = format!(
        "pipeline: inherited\ninput: {{ stdin: {{}} }}\nsteps:\n  - validate: canonical.order@1{script}output: {{ topic: out }}\n"
    );
    let rig = Rig::new(&[
        ("pipelines/declared.yaml", declared.as_str()),
        ("pipelines/inherited.yaml", inherited.as_str()),
    ]);
    let order = |id: &str| json!({"order_id": id, "lines": [{"sku": "A", "quantity": 1}]});
    for pipeline in ["declared", "inherited"] {
        let out = rig.send(pipeline, order("fine"));
        let d = delivered(&out);
        assert_eq!(d.message.body(), &order("fine"));
        assert_eq!(meta(&d.message, "schema"), "canonical.order@1");

        let out = rig.send(pipeline, order("break"));
        schema_violation(&failed(&out), "output `topic`", "/lines/0/quantity");
    }
}

#[test]
fn the_engine_keeps_going_when_some_messages_fail() {
    let rig = Rig::new(&[("pipelines/map-orders.yaml", MAP_ORDERS)]);
    let good = |n: u32| json!({"id": format!("shop:{n}"), "items": [{"sku": "A", "qty": n}]});
    let bodies = vec![
        good(1),
        good(2),
        json!({"id": "shop:3", "items": [{"sku": "A", "qty": "3"}]}), // bad at the map step
        good(4),
        json!({"id": 5, "items": []}), // bad at the input
        good(6),
        good(7),
        json!({"id": "", "items": []}), // bad at the map step: empty order id
        good(9),
        good(10),
    ];
    let mut all = Outcome::default();
    for body in bodies {
        let out = rig.send("map-orders", body);
        all.delivered.extend(out.delivered);
        all.dropped.extend(out.dropped);
        all.failed.extend(out.failed);
    }
    assert_eq!(all.delivered.len(), 7, "{}", summary(&all));
    assert_eq!(all.failed.len(), 3, "{}", summary(&all));
    assert!(all.dropped.is_empty());
    let failures: Vec<(&str, &str, &str)> = all
        .failed
        .iter()
        .map(|f| {
            (
                f.error.message_id.as_str(),
                f.error.step.as_str(),
                f.error.code,
            )
        })
        .collect();
    assert_eq!(
        failures,
        [
            ("msg-3", "steps[0] map", "schema-violation"),
            ("msg-5", "input", "schema-violation"),
            ("msg-8", "steps[0] map", "schema-violation"),
        ]
    );
    for d in &all.delivered {
        assert_eq!(meta(&d.message, "schema"), "canonical.order@1");
    }
}

// ---------------------------------------------------------------------------------------------
// 3. The Rhai sandbox at run time

#[test]
fn runaway_scripts_fail_with_the_limit_they_hit_and_the_engine_carries_on() {
    let rig = Rig::new(&[(
        "pipelines/sandbox.yaml",
        r#"pipeline: sandbox
input: { stdin: {} }
steps:
  - script:
      rhai: |
        fn deeper(n) { deeper(n + 1) }
        switch body.kind {
          "loop" => { loop { } },
          "string" => { let s = "bomb"; loop { s += s; } },
          "array" => { let a = []; a.pad(10000000, 0); },
          "nested" => { let a = [0]; loop { a = [a, a]; } },
          "recursion" => { deeper(0); },
        };
        #{ ok: body.kind }
output: { topic: out }
"#,
    )]);
    let engine = rig.engine();
    let pipeline = rig.pipeline("sandbox");
    // kind → what the error message must mention
    let cases = [
        ("loop", "Too many operations"),
        ("string", "Length of string too large"),
        ("array", "array"),
        ("nested", "array"),
        ("recursion", "Stack overflow"),
    ];
    for (kind, limit) in cases {
        let out = engine.ingest(
            pipeline,
            json!({ "kind": kind }),
            origin(),
            &mut *rig.state.borrow_mut(),
        );
        let e = failed(&out);
        assert_eq!(e.code, "script-error", "{kind}: {e}");
        assert_eq!(e.step, "steps[0] script", "{kind}");
        assert!(e.message.contains(limit), "{kind}: {e}");
        // The same engine runs the next message normally.
        let out = engine.ingest(
            pipeline,
            json!({ "kind": "fine" }),
            origin(),
            &mut *rig.state.borrow_mut(),
        );
        assert_eq!(
            delivered(&out).message.body(),
            &json!({"ok": "fine"}),
            "after {kind}"
        );
    }
}

/// Rhai checks the size of a map or array only when it is next read, not when `m[key] = value`
/// or `a[i] = value` grows it: a script that fills one and never reads it again was bounded only
/// by the operation limit, and distinct 1 MiB strings per entry exhaust memory long before that
/// (a standalone probe with 3000 map entries aborted the process on allocation failure). The
/// engine holds every variable to the limits at each use, so the 4 MiB string limit stops each
/// of these at its fifth entry, about 5 MiB in: the message fails, the next one runs.
#[test]
fn containers_filled_by_index_assignment_are_held_to_the_size_limits() {
    let rig = Rig::new(&[(
        "pipelines/index-bomb.yaml",
        r#"pipeline: index-bomb
input: { stdin: {} }
steps:
  - script:
      rhai: |
        fn fill(s) { for i in 0..64 { this["k" + i] = s + i; } }
        let s = "x";
        while s.len() < 1048576 { s += s; }
        if body.into == "map" {
          let m = #{};
          for i in 0..64 { m["k" + i] = s + i; }
        } else if body.into == "array" {
          let a = [];
          a.pad(64, 0);
          for i in 0..64 { a[i] = s + i; }
        } else if body.into == "nested" {
          let m = #{ inner: #{ list: [] } };
          m.inner.list.pad(64, 0);
          for i in 0..64 { m.inner.list[i] = s + i; }
        } else if body.into == "method" {
          let m = #{};
          m.fill(s);
        } else if body.into == "closure" {
          let m = #{};
          let put = |k, v| { m[k] = v; };
          for i in 0..64 { put.call("k" + i, s + i); }
        } else {
          let m = #{};
          for i in 0..3 { m["k" + i] = s + i; }
        }
        #{ ok: true }
output: { topic: out }
"#,
    )]);
    for into in ["map", "array", "nested", "method", "closure"] {
        let started = std::time::Instant::now();
        let out = rig.send("index-bomb", json!({ "into": into }));
        let e = failed(&out);
        assert_eq!(e.code, "script-error", "{into}: {e}");
        assert!(e.message.contains("too large"), "{into}: {e}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{into}: took {:?}",
            started.elapsed()
        );
        // Under the limits (3 MiB in one map), the same script runs.
        let out = rig.send("index-bomb", json!({ "into": "small" }));
        assert_eq!(
            delivered(&out).message.body(),
            &json!({"ok": true}),
            "after {into}"
        );
    }
}

/// `sleep()` would block the worker outside the operation limit and hold up a graceful stop:
/// it fails at once with a message that says why.
#[test]
fn sleep_is_not_available_to_scripts() {
    let rig = Rig::new(&[(
        "pipelines/sleepy.yaml",
        r#"pipeline: sleepy
input: { stdin: {} }
steps:
  - script:
      rhai: |
        if body.how == "int" { sleep(10); }
        else if body.how == "float" { sleep(10.0); }
        else { Fn("sleep").call(10); }
        #{ woke: true }
output: { topic: out }
"#,
    )]);
    for how in ["int", "float", "dynamic"] {
        let started = std::time::Instant::now();
        let out = rig.send("sleepy", json!({ "how": how }));
        let e = failed(&out);
        assert_eq!(e.code, "script-error", "{how}: {e}");
        assert!(
            e.message.contains("`sleep()` is not available"),
            "{how}: {e}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{how}: slept {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn eval_is_not_available_anywhere_a_script_can_be_written() {
    let pipeline = |step: &str| {
        format!("pipeline: p\ninput: {{ stdin: {{}} }}\nsteps:\n{step}output: {{ topic: out }}\n")
    };
    let script_step = pipeline("  - script: { rhai: 'eval(\"40 + 2\")' }\n");
    let plugin_step = pipeline("  - plugin: { module: evil }\n");
    // place → (files, the file the error must point at)
    let cases: [(&str, Vec<File<'_>>, &str); 3] = [
        (
            "script step",
            vec![("pipelines/p.yaml", script_step.as_str())],
            "pipelines/p.yaml",
        ),
        (
            "plugin",
            vec![
                ("plugins/evil.rhai", "fn process(body) { eval(\"body\") }"),
                ("pipelines/p.yaml", plugin_step.as_str()),
            ],
            "plugins/evil.rhai",
        ),
        (
            "rhai mapping",
            vec![(
                "mappings/evil.yaml",
                "mapping: evil\nfrom: shop.order@1\nto: canonical.order@1\nrhai: 'eval(\"body\")'\n",
            )],
            "mappings/evil.yaml",
        ),
    ];
    for (place, extra, file) in cases {
        let loaded = project::load(&files(&extra), &LoadOptions::default());
        assert!(
            loaded.diagnostics.iter().any(|d| d.is_error()
                && d.code.as_str() == "rhai-syntax"
                && d.file.as_deref() == Some(file)),
            "{place}: expected a rhai-syntax error in {file}:\n{}",
            render(&loaded.diagnostics)
        );
        assert!(!loaded.project.pipelines.contains_key("p"), "{place}");
        assert!(!loaded.project.mappings.contains_key("evil"), "{place}");
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Correlation

#[test]
fn the_correlation_id_comes_from_the_origin_or_the_header_or_is_the_message_id() {
    let rig = Rig::new(&[
        (
            "pipelines/plain.yaml",
            "pipeline: plain\ninput: { stdin: {} }\noutput: { topic: out }\n",
        ),
        (
            "pipelines/by-header.yaml",
            "pipeline: by-header\ninput: { stdin: {}, correlation_header: X-Correlation-Id }\noutput: { topic: out }\n",
        ),
    ]);
    let given = |c: &str| Origin {
        correlation_id: Some(c.into()),
        ..origin()
    };
    let header = with_headers(&[("x-correlation-id", "from-header")]);
    // pipeline, origin → expected correlation id (None: the message's own id)
    let cases = [
        ("plain", given("corr-1"), Some("corr-1")),
        ("plain", origin(), None),
        // Headers mean nothing to a pipeline that names no correlation header.
        ("plain", header.clone(), None),
        ("by-header", header.clone(), Some("from-header")),
        ("by-header", origin(), None),
        ("by-header", with_headers(&[("x-other", "x")]), None),
        // An id the caller already has wins over the header.
        (
            "by-header",
            Origin {
                correlation_id: Some("corr-2".into()),
                ..header.clone()
            },
            Some("corr-2"),
        ),
    ];
    for (i, (pipeline, origin, expected)) in cases.into_iter().enumerate() {
        let out = rig.send_with(pipeline, json!({"n": i}), origin);
        let m = &delivered(&out).message;
        let want = expected.unwrap_or(m.id());
        assert_eq!(meta(m, "correlation_id"), want, "case {i} ({pipeline})");
        assert_eq!(meta(m, "causation_id"), &Value::Null, "case {i}");
    }
}

/// A [`State`] that records the step hooks, around a [`MemoryState`].
#[derive(Default)]
struct Recording {
    inner: MemoryState,
    calls: Vec<String>,
}

impl State for Recording {
    fn seen(&mut self, pipeline: &str, key: &str, ttl: std::time::Duration) -> bool {
        self.inner.seen(pipeline, key, ttl)
    }
    fn reserve(
        &mut self,
        location: &str,
        lines: &[(String, i64)],
        partial: bool,
    ) -> railyard_core::engine::Reservation {
        self.inner.reserve(location, lines, partial)
    }
    fn batch_push(
        &mut self,
        buffer: &str,
        message: Message,
        count: Option<u32>,
    ) -> Option<Vec<Message>> {
        self.inner.batch_push(buffer, message, count)
    }
    fn batch_drain(&mut self, prefix: &str) -> Vec<(String, Vec<Message>)> {
        self.inner.batch_drain(prefix)
    }
    fn step_started(&mut self, pipeline: &str, step: &str) {
        self.calls.push(format!("start {pipeline} {step}"));
    }
    fn step_finished(&mut self, pipeline: &str, step: &str, c: StepCounts) {
        self.calls.push(format!(
            "end {pipeline} {step} in={} out={} failed={} dropped={}",
            c.input, c.output, c.failed, c.dropped
        ));
    }
}

#[test]
fn every_step_reports_what_it_did_with_the_messages_that_reached_it() {
    let rig = Rig::new(&[(
        "pipelines/lines.yaml",
        r#"pipeline: lines
input: { stdin: {} }
steps:
  - split: { path: body.lines }
  - filter: "body.qty > `0`"
  - switch:
      cases:
        - name: big
          when: "body.qty > `5`"
          steps:
            - filter: "body.sku != 'X'"
          output: { topic: big }
      default:
        name: small
        output: { topic: small }
output: { topic: unused }
"#,
    )]);
    let mut state = Recording::default();
    let lines = json!({"lines": [
        {"sku": "A", "qty": 1}, {"sku": "B", "qty": 0}, {"sku": "X", "qty": 9}, {"sku": "C", "qty": 7}
    ]});
    let out = rig
        .engine()
        .ingest(rig.pipeline("lines"), lines, origin(), &mut state);
    assert_eq!(out.delivered.len(), 2, "{}", summary(&out));
    assert_eq!(
        state.calls,
        [
            "start lines steps[0] split",
            "end lines steps[0] split in=1 out=4 failed=0 dropped=0",
            "start lines steps[1] filter",
            "end lines steps[1] filter in=4 out=3 failed=0 dropped=1",
            "start lines steps[2] switch",
            // A case's steps run for each message the case takes: X (dropped), then C.
            "start lines steps[2] switch case big: steps[0] filter",
            "end lines steps[2] switch case big: steps[0] filter in=1 out=0 failed=0 dropped=1",
            "start lines steps[2] switch case big: steps[0] filter",
            "end lines steps[2] switch case big: steps[0] filter in=1 out=1 failed=0 dropped=0",
            // Cases with outputs deliver themselves: nothing continues after the switch.
            "end lines steps[2] switch in=3 out=0 failed=0 dropped=1",
        ]
    );
}

#[test]
fn the_revision_changes_exactly_when_a_file_the_pipeline_uses_changes() {
    let pipeline = |name: &str, mapping: &str| {
        format!(
            "pipeline: {name}\ninput: {{ stdin: {{}}, schema: shop.order@1 }}\nsteps:\n  - map: {mapping}\noutput: {{ topic: orders }}\n"
        )
    };
    let (a, b) = (pipeline("a", "shop-fields"), pipeline("b", "shop-jmespath"));
    let revisions = |extra: &[File<'_>]| {
        let mut all = vec![
            ("pipelines/a.yaml", a.as_str()),
            ("pipelines/b.yaml", b.as_str()),
        ];
        all.extend_from_slice(extra);
        let rig = Rig::new(&all);
        let r = |n: &str| rig.pipeline(n).revision.clone();
        (r("a"), r("b"))
    };
    let (a1, b1) = revisions(&[]);
    assert_eq!(a1.len(), 12);
    assert!(a1.chars().all(|c| c.is_ascii_hexdigit()), "{a1}");
    assert_ne!(a1, b1);
    // Same files, same revisions.
    assert_eq!(revisions(&[]), (a1.clone(), b1.clone()));
    // An edit to the mapping `b` uses (overriding the base file) changes `b` only.
    let edited = r#"mapping: shop-jmespath
from: shop.order@1
to: canonical.order@1
jmespath: "{order_id: join('', ['shop-', id]), lines: items[].{sku: sku, quantity: qty}}"
"#;
    let (a2, b2) = revisions(&[("mappings/shop-jmespath.yaml", edited)]);
    assert_eq!(a2, a1, "`a` does not use the edited mapping");
    assert_ne!(b2, b1, "`b` does");
    // Every message records the revision it ran on.
    let rig = Rig::new(&[("pipelines/b.yaml", b.as_str())]);
    let out = rig.send("b", json!({"id": "1", "items": []}));
    let m = &delivered(&out).message;
    assert_eq!(
        meta(m, "pipeline_revision"),
        rig.pipeline("b").revision.as_str()
    );
}
