//! `railyard validate --baseline DIR|GIT-REV` and `railyard schema diff`, run as a user would:
//! a temporary git repository holding a project, a schema edited in place.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.invalid",
        ])
        .args(["-c", "commit.gpgsign=false"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn railyard(dir: &Path, args: &[&str]) -> (String, String, i32) {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_railyard"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("railyard runs");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

const ITEM: &str = r#"{
  "type": "object",
  "required": ["sku"],
  "properties": {
    "sku": { "type": "string", "maxLength": 40 },
    "qty": { "type": "integer" }
  }
}
"#;

const PIPELINE: &str =
    "pipeline: items\ninput:\n  stdin: {}\n  schema: shop.item@1\noutput:\n  stdout: {}\n";

fn fixture_repo() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("schemas/shop")).unwrap();
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    std::fs::write(dir.join("schemas/shop/item@1.json"), ITEM).unwrap();
    std::fs::write(dir.join("pipelines/items.yaml"), PIPELINE).unwrap();
    git(dir, &["init", "-q"]);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "project"]);
    tmp
}

#[test]
fn an_in_place_breaking_edit_fails_against_the_previous_commit() {
    let tmp = fixture_repo();
    let dir = tmp.path();
    let (out, _, status) = railyard(dir, &["validate", "--baseline", "HEAD"]);
    assert_eq!(status, 0, "{out}");

    let edited = ITEM.replace(r#"["sku"]"#, r#"["sku", "qty"]"#);
    std::fs::write(dir.join("schemas/shop/item@1.json"), edited).unwrap();
    // Uncommitted: HEAD is the baseline.
    let (out, _, status) = railyard(dir, &["validate", "--baseline", "HEAD"]);
    assert_eq!(status, 1, "{out}");
    git(dir, &["commit", "-q", "-am", "qty required"]);
    let (out, _, status) = railyard(dir, &["validate", "--baseline", "HEAD~1"]);
    assert_eq!(status, 1, "{out}");
    for needle in [
        "error[schema-breaking]",
        "breaking change to `shop.item@1` without a new major, at /required/1",
        "property `qty` is newly required (breaks writers)",
        "in HEAD~1: schemas/shop/item@1.json:3:3",
        "schemas/shop/item@1.json:3:23]",
        "pipeline `items` (pipelines/items.yaml: input)",
        "`shop.item@2` or make it compatible",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    let (out, _, status) = railyard(dir, &["validate", "--baseline", "HEAD", "--format", "json"]);
    assert_eq!(status, 0, "{out}");

    // The same change under a new major is fine; the pipeline still on @1 is listed.
    git(dir, &["revert", "--no-edit", "HEAD"]);
    std::fs::write(
        dir.join("schemas/shop/item@2.json"),
        ITEM.replace(r#"["sku"]"#, r#"["sku", "qty"]"#),
    )
    .unwrap();
    let (out, _, status) = railyard(dir, &["validate", "--baseline", "HEAD"]);
    assert_eq!(status, 0, "{out}");
    assert!(
        out.contains("warning[schema-superseded]: `shop.item@2` is a new major (not in HEAD); still on an older\n  │ major: pipeline `items`"),
        "{out}"
    );
}

#[test]
fn a_bad_revision_or_no_repository_is_a_usage_error() {
    let tmp = fixture_repo();
    let (_, err, status) = railyard(tmp.path(), &["validate", "--baseline", "no-such-rev"]);
    assert_eq!(status, 2);
    assert!(
        err.contains("`no-such-rev` is neither a directory nor a revision"),
        "{err}"
    );

    let plain = tempfile::tempdir().unwrap();
    common::copy_dir(&tmp.path().join("schemas"), &plain.path().join("schemas"));
    let (_, err, status) = railyard(plain.path(), &["validate", "--baseline", "HEAD"]);
    assert_eq!(status, 2);
    assert!(err.contains("is not in a git repository"), "{err}");
}

#[test]
fn a_breaking_edit_of_any_reference_schema_fails_the_gate() {
    let tmp = common::reference_copy();
    let dir = tmp.path();
    git(dir, &["init", "-q"]);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "reference"]);
    let mut edited = Vec::new();
    for entry in walk(&dir.join("schemas")) {
        let rel = entry
            .strip_prefix(dir)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if !rel.ends_with(".json") {
            continue;
        }
        let text = std::fs::read_to_string(&entry).unwrap();
        let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let required = value
            .as_object_mut()
            .unwrap()
            .entry("required")
            .or_insert_with(|| serde_json::json!([]));
        required.as_array_mut().unwrap().push("zz_new_field".into());
        std::fs::write(&entry, serde_json::to_string_pretty(&value).unwrap()).unwrap();
        edited.push(rel);
    }
    assert!(edited.len() >= 10, "{edited:?}");
    git(
        dir,
        &["commit", "-q", "-am", "require a new field everywhere"],
    );
    let (out, _, status) = railyard(
        dir,
        &["validate", "--baseline", "HEAD~1", "--format", "json"],
    );
    assert_eq!(status, 1);
    let diags: serde_json::Value = serde_json::from_str(&out).expect("json");
    for rel in &edited {
        let hit = diags.as_array().unwrap().iter().any(|d| {
            d["code"] == "schema-breaking"
                && d["file"] == rel.as_str()
                && d["message"].as_str().unwrap().contains(
                    "property `zz_new_field` is newly required (breaks writers); in HEAD~1: ",
                )
        });
        assert!(hit, "no schema-breaking error for {rel}:\n{out}");
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn schema_diff_of_two_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("old.json"), ITEM).unwrap();
    std::fs::write(
        dir.join("new.json"),
        ITEM.replace("\"maxLength\": 40", "\"maxLength\": 20")
            .replace("\"title\"", "\"x\""),
    )
    .unwrap();
    let (out, _, status) = railyard(dir, &["schema", "diff", "old.json", "new.json"]);
    assert_eq!(status, 1, "{out}");
    assert!(
        out.contains("new.json:5:32: breaking for writers: `maxLength` tightened from 40 to 20\n    at /properties/sku/maxLength (old: old.json:5:32 at /properties/sku/maxLength)"),
        "{out}"
    );
    let (out, _, _) = railyard(
        dir,
        &[
            "schema", "diff", "old.json", "new.json", "--format", "github",
        ],
    );
    assert!(
        out.starts_with("::error file=new.json,line=5,col=32,title=schema-breaking::"),
        "{out}"
    );
    let (out, _, status) = railyard(
        dir,
        &["schema", "diff", "old.json", "old.json", "--format", "json"],
    );
    assert_eq!((out.trim(), status), ("[]", 0));
}
