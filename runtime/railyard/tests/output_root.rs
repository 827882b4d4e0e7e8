//! File outputs write under the output root — the data directory by default, `--output-root`
//! to choose — and nowhere else: a static path outside it is a `validate` error at the path.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{http, launch, stop_gracefully};
use std::path::Path;
use std::process::Command;

const PIPELINE: &str = "pipeline: export\ninput:\n  http: { path: /orders }\noutput:\n  file: { path: \"exports/{{ body.id }}.jsonl\" }\n";

fn project(pipeline: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("project");
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    std::fs::write(dir.join("pipelines/export.yaml"), pipeline).unwrap();
    tmp
}

fn post(port: u16, id: u32) {
    let (status, resp) = http(
        port,
        "POST",
        "/orders",
        &[("Content-Type", "application/json")],
        format!("{{\"id\": {id}}}").as_bytes(),
    );
    assert_eq!(status, 202, "{resp}");
}

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn file_outputs_write_under_the_data_directory_by_default() {
    let tmp = project(PIPELINE);
    let dir = tmp.path().join("project");
    let data = tmp.path().join("state");
    let server = launch(
        &dir,
        &["--data", data.to_str().unwrap(), "--no-watch"],
        &[("RAILYARD_OUTPUT_ROOT", String::new())],
    );
    post(server.port, 7);
    stop_gracefully(server);
    assert_eq!(
        std::fs::read_to_string(data.join("exports/7.jsonl")).unwrap(),
        "{\"id\":7}\n"
    );
    assert_eq!(files(&dir), vec!["pipelines/export.yaml".to_string()]);
}

#[test]
fn output_root_chooses_where_file_outputs_write() {
    let tmp = project(PIPELINE);
    let dir = tmp.path().join("project");
    let data = tmp.path().join("state");
    let root = tmp.path().join("exports-volume");
    let server = launch(
        &dir,
        &[
            "--data",
            data.to_str().unwrap(),
            "--no-watch",
            "--output-root",
            root.to_str().unwrap(),
        ],
        &[("RAILYARD_OUTPUT_ROOT", String::new())],
    );
    post(server.port, 8);
    stop_gracefully(server);
    assert_eq!(files(&root), vec!["exports/8.jsonl".to_string()]);
    assert!(!data.join("exports").exists());
}

#[test]
fn a_static_path_outside_the_output_root_is_refused_before_anything_runs() {
    for (path, what, col) in [
        (
            "../exports/orders.jsonl",
            "climbs above the output root",
            19,
        ),
        ("/var/tmp/orders.jsonl", "is absolute", 19),
        (
            "a/../../{{ body.id }}.jsonl",
            "climbs above the output root",
            19,
        ),
    ] {
        let tmp = project(&format!(
            "pipeline: export\ninput:\n  http: {{ path: /orders }}\noutput:\n  - file: {{ path: \"{path}\" }}\n"
        ));
        let dir = tmp.path().join("project");
        let out = Command::new(env!("CARGO_BIN_EXE_railyard"))
            .args(["validate", dir.to_str().unwrap(), "--format", "json"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{path}");
        let diags: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let d = &diags[0];
        assert_eq!(d["code"], "outside-output-root", "{path}: {diags}");
        assert_eq!(
            (d["line"].clone(), d["column"].clone()),
            (5.into(), col.into())
        );
        assert!(d["message"].as_str().unwrap().contains(what), "{diags}");

        // `run` shares the rule: nothing starts, nothing is written.
        let out = Command::new(env!("CARGO_BIN_EXE_railyard"))
            .args(["run", dir.to_str().unwrap(), "--listen", "127.0.0.1:0"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{path}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("outside-output-root"), "{err}");
    }
    // A `..` that stays inside is a path like any other.
    let tmp = project(
        "pipeline: export\ninput:\n  http: { path: /orders }\noutput:\n  - file: { path: \"a/../orders.jsonl\" }\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_railyard"))
        .args(["validate", tmp.path().join("project").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
