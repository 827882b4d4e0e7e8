//! The repository root is the reference retail project: it must validate cleanly, strictly,
//! and every pipeline and mapping file in it must compile. CI gates the same files.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn yaml_files(dir: &str) -> usize {
    std::fs::read_dir(root().join(dir))
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.ends_with(".yaml") || n.ends_with(".yml")
                })
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn reference_project_is_valid_and_fully_compiled() {
    let out = Command::new(env!("CARGO_BIN_EXE_railyard"))
        .args([
            "validate",
            ".",
            "--strict-env",
            "--deny-warnings",
            "--format",
            "json",
        ])
        .current_dir(root())
        .output()
        .expect("run railyard");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let diags: serde_json::Value = serde_json::from_str(&stdout).expect("json output");
    assert_eq!(
        diags,
        serde_json::json!([]),
        "diagnostics on the reference project"
    );
    assert_eq!(out.status.code(), Some(0));

    let human = Command::new(env!("CARGO_BIN_EXE_railyard"))
        .args(["validate", "."])
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("run railyard");
    let summary = String::from_utf8_lossy(&human.stdout).into_owned();
    let pipelines = yaml_files("pipelines");
    let mappings = yaml_files("mappings");
    assert!(
        pipelines >= 5 && mappings >= 5,
        "the reference project lost its content"
    );
    assert!(
        summary.contains(&format!(
            "compiled {pipelines} pipelines, {mappings} mappings"
        )),
        "every pipeline and mapping file must compile: {summary}"
    );
}

#[test]
fn reference_schemas_are_listed() {
    let out = Command::new(env!("CARGO_BIN_EXE_railyard"))
        .args(["schema", "list", "--json"])
        .current_dir(root())
        .output()
        .expect("run railyard");
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let ids: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|e| e["id"].as_str())
        .collect();
    for id in [
        "canonical.order@1",
        "canonical.money@1",
        "shopify.order@1",
        "erp.bc.sales_order@2",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    assert!(
        list.as_array()
            .expect("array")
            .iter()
            .all(|e| e["compiled"] == true),
        "every reference schema compiles"
    );
}
