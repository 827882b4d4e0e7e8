//! A deployment ships pipelines, mappings, schemas and plugins, not `tests/`: `railyard run`
//! starts every pipeline (a missing fixture is a warning), while `validate` and `test` still
//! refuse the same project.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;
use common::{copy_dir, http, launch, root, stop_gracefully};

use std::process::Command;

#[test]
fn a_deployment_without_tests_starts_and_validate_still_refuses_it() {
    let tmp = tempfile::tempdir().unwrap();
    for d in ["schemas", "mappings", "pipelines", "plugins"] {
        if root().join(d).is_dir() {
            copy_dir(&root().join(d), &tmp.path().join(d));
        }
    }
    assert!(!tmp.path().join("tests").exists());

    let out = Command::new(env!("CARGO_BIN_EXE_railyard"))
        .args(["validate", tmp.path().to_str().unwrap()])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(report.contains("error[missing-file]"), "{report}");

    let server = launch(tmp.path(), &[], &[]);
    let (status, health) = http(server.port, "GET", "/health", &[], b"");
    assert_eq!(status, 200, "{health}");
    assert!(
        health.contains("\"shopify-order-intake\"") && health.contains("\"not_started\":{}"),
        "every reference pipeline runs: {health}"
    );
    stop_gracefully(server);
}
