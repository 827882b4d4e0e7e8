//! Golden tests: one broken project per diagnostic code under `tests/cases/<code>/`, and the
//! rendered `railyard validate` output it must produce (insta snapshots in `snapshots/`).
//!
//! Every code in `Code::ALL` must have a case, and each case's output must contain its code:
//! adding a code without a golden test fails here.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;
use common::copy_dir;

use std::path::{Path, PathBuf};
use std::process::Command;

use railyard_core::Code;

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/cases")
}

/// Cases whose broken file cannot live in git: built here.
fn setup(code: Code, dir: &Path) {
    match code {
        Code::Io => {
            #[cfg(unix)]
            std::os::unix::fs::symlink(".", dir.join("pipelines/loop")).expect("symlink");
        }
        Code::OutsideProject => {
            // A schema that is a symlink to a file beside the project, not in it.
            let secret = dir.parent().expect("parent").join("secret.json");
            std::fs::write(&secret, r#"{"password": "hunter2"}"#).expect("write");
            #[cfg(unix)]
            std::os::unix::fs::symlink(&secret, dir.join("schemas/leak.json")).expect("symlink");
        }
        Code::FileTooLarge => {
            let line = "# generated filler to make the file large\n";
            let body = line.repeat((9 << 20) / line.len() + 1);
            std::fs::write(dir.join("pipelines/huge.yaml"), body).expect("write");
        }
        _ => {}
    }
}

fn render(code: Code) -> (String, i32) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join(code.as_str());
    copy_dir(&cases_dir().join(code.as_str()), &dir);
    setup(code, &dir);
    // A case with a `baseline/` project is compared with it (`validate --baseline`).
    let mut args = vec!["validate", "."];
    if dir.join("baseline").is_dir() {
        args.extend(["--baseline", "baseline"]);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_railyard"))
        .args(&args)
        .current_dir(&dir)
        .env("NO_COLOR", "1")
        .env_remove("RAILYARD_GOLDEN_UNSET_SECRET")
        .output()
        .expect("run railyard");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (stdout, out.status.code().unwrap_or(-1))
}

#[test]
fn every_code_has_a_case() {
    let missing: Vec<&str> = Code::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|slug| !cases_dir().join(slug).is_dir())
        .collect();
    assert!(
        missing.is_empty(),
        "codes without a golden case: {missing:?}"
    );
}

#[test]
fn golden_diagnostics() {
    for &code in Code::ALL {
        let (stdout, status) = render(code);
        assert!(
            stdout.contains(&format!("[{}]", code.as_str())),
            "case `{code}` did not produce its code:\n{stdout}"
        );
        let warning_only = [
            Code::MissingEnv,
            Code::SchemaUnclassified,
            Code::SchemaSuperseded,
        ];
        let expected_status = if warning_only.contains(&code) { 0 } else { 1 };
        assert_eq!(
            status, expected_status,
            "exit status of case `{code}`:\n{stdout}"
        );
        insta::assert_snapshot!(code.as_str(), stdout);
    }
}
