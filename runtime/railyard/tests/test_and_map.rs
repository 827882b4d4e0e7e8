//! `railyard test` and `railyard map` as a user runs them: on the reference project, on a
//! copy with a deliberately wrong expectation, and on broken input.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;
use common::{reference_copy, root};

use std::path::Path;
use std::process::{Command, Output};

fn railyard(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_railyard"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("run railyard")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn reference_tests_all_pass() {
    let out = railyard(&root(), &["test"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(!text.contains("FAIL"), "{text}");
    let summary = text.lines().last().unwrap_or_default();
    assert!(
        summary.starts_with("ok: ") && summary.ends_with(" 0 failed"),
        "{summary}"
    );
    let passed: usize = summary
        .trim_start_matches("ok: ")
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("count");
    // Every test of every pipeline and mapping ran: count the `- name:` entries under tests.
    assert!(passed >= 20, "only {passed} tests ran");
    assert!(
        text.contains("ok    pipeline ") && text.contains("ok    mapping "),
        "{text}"
    );
}

#[test]
fn a_wrong_expectation_fails_with_a_diff() {
    let tmp = reference_copy();
    let fixture = tmp
        .path()
        .join("tests/fixtures/canonical/order.shopify_1042.json");
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&fixture).unwrap()).unwrap();
    v["currency"] = serde_json::json!("EUR");
    std::fs::write(&fixture, serde_json::to_vec_pretty(&v).unwrap()).unwrap();

    let out = railyard(
        tmp.path(),
        &["test", "--filter", "shopify-order-to-canonical"],
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAIL  mapping shopify-order-to-canonical"),
        "{text}"
    );
    assert!(
        text.contains("/currency: expected \"EUR\", got \"USD\""),
        "{text}"
    );
    assert!(
        text.contains("ok    mapping shopify-order-to-canonical"),
        "the other test still passes: {text}"
    );
    assert!(
        !text.contains("pipeline "),
        "the filter excludes pipelines: {text}"
    );

    let junit = railyard(
        tmp.path(),
        &[
            "test",
            "--filter",
            "shopify-order-to-canonical",
            "--format",
            "junit",
        ],
    );
    let xml = stdout(&junit);
    assert_eq!(junit.status.code(), Some(1));
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert_eq!(xml.matches("<testcase ").count(), 2, "{xml}");
    assert_eq!(xml.matches("<failure ").count(), 1, "{xml}");
    assert!(
        xml.contains("/currency: expected &quot;EUR&quot;, got &quot;USD&quot;"),
        "{xml}"
    );
    assert!(xml.contains("failures=\"1\""), "{xml}");
}

#[test]
fn an_expected_error_and_a_wrong_route_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path();
    std::fs::create_dir_all(p.join("schemas/canonical")).unwrap();
    std::fs::create_dir_all(p.join("pipelines")).unwrap();
    std::fs::write(
        p.join("schemas/canonical/order@1.json"),
        r#"{"type":"object","required":["lines"],"properties":{"lines":{"type":"array","items":{"type":"object","properties":{"quantity":{"type":"integer"}}}}}}"#,
    )
    .unwrap();
    std::fs::write(
        p.join("pipelines/p.yaml"),
        r#"pipeline: p
input: { stdin: {}, schema: canonical.order@1 }
steps:
  - switch:
      cases:
        - name: big
          when: "length(body.lines) > `1`"
      default: { name: small }
output: { stdout: {} }
tests:
  - name: a string quantity is a schema violation at the input
    input: { body: { lines: [ { quantity: "2" } ] } }
    expect: { error: { code: schema-violation, step: input, path: /lines/0/quantity } }
  - name: two lines are big
    input: { body: { lines: [ { quantity: 1 }, { quantity: 2 } ] } }
    expect: { route: big, assert: [ "length(body.lines) == `2`", "meta.schema == 'canonical.order@1'" ] }
  - name: deliberately wrong route
    input: { body: { lines: [ { quantity: 1 } ] } }
    expect: { route: big }
  - name: deliberately wrong error path
    input: { body: { lines: [ { quantity: "x" } ] } }
    expect: { error: { code: schema-violation, path: /lines/1/quantity } }
"#,
    )
    .unwrap();
    let out = railyard(p, &["test"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(
        text.contains("ok    pipeline p › a string quantity is a schema violation at the input"),
        "{text}"
    );
    assert!(
        text.contains("ok    pipeline p › two lines are big"),
        "{text}"
    );
    assert!(
        text.contains("FAIL  pipeline p › deliberately wrong route"),
        "{text}"
    );
    assert!(
        text.contains("expected route `big`, the message took `small`"),
        "{text}"
    );
    assert!(
        text.contains("FAIL  pipeline p › deliberately wrong error path"),
        "{text}"
    );
    assert!(
        text.contains("expected a violation at `/lines/1/quantity`"),
        "{text}"
    );
    assert!(text.ends_with("FAILED: 2 passed, 2 failed\n"), "{text}");
}

#[test]
fn an_invalid_project_runs_no_tests() {
    let tmp = reference_copy();
    std::fs::write(
        tmp.path().join("pipelines/broken.yaml"),
        "pipeline: broken\ninptu: {}\n",
    )
    .unwrap();
    let out = railyard(tmp.path(), &["test"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("error[unknown-key]: unknown key `inptu`"),
        "{err}"
    );
    assert!(err.contains("no tests ran"), "{err}");
    assert!(!stdout(&out).contains("ok "), "no test output expected");
}

#[test]
fn map_runs_a_mapping_and_checks_both_sides() {
    let out = railyard(
        &root(),
        &[
            "map",
            "shopify-order-to-canonical",
            "tests/fixtures/shopify/orders_create.body.json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json result");
    let expected: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root().join("tests/fixtures/canonical/order.shopify_1042.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(v, expected);

    // A payload that is not a Shopify order: the `from` side rejects it with a path.
    let bad = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(bad.path(), r#"{"id": "not-a-number"}"#).unwrap();
    let out = railyard(
        &root(),
        &[
            "map",
            "shopify-order-to-canonical",
            bad.path().to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("the input violates `shopify.order@1` at /id"),
        "{}",
        stderr(&out)
    );

    let out = railyard(
        &root(),
        &[
            "map",
            "shopify-ordr-to-canonical",
            bad.path().to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("did you mean `shopify-order-to-canonical`?"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn map_runs_a_whole_pipeline() {
    let out = railyard(
        &root(),
        &[
            "map",
            "--pipeline",
            "shopify-order-intake",
            "tests/fixtures/shopify/orders_create.body.json",
            "--header",
            "X-Shopify-Event-Id: 3e2f8a10-7c1b-4d8e-9a57-1f0c2b6d9e41",
        ],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("1 delivered, 0 dropped, 0 failed"), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["outputs"], serde_json::json!(["topic orders.accepted"]));
    assert_eq!(v["meta"]["schema"], "canonical.order@1");
    assert_eq!(v["meta"]["pipeline"], "shopify-order-intake");
    assert_eq!(
        v["meta"]["dedupe_key"],
        "3e2f8a10-7c1b-4d8e-9a57-1f0c2b6d9e41"
    );
    assert_eq!(v["body"]["channel"], "shopify");

    // Without the event id header the dedupe step has no key: a failure, with its step.
    let out = railyard(
        &root(),
        &[
            "map",
            "--pipeline",
            "shopify-order-intake",
            "tests/fixtures/shopify/orders_create.body.json",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("missing-key at steps[0] dedupe"),
        "{}",
        stderr(&out)
    );
}
