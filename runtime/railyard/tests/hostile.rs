//! Hostile project files: the loader must never panic and never hang. Every case runs the real
//! `railyard validate --format json` on a temporary project and checks the diagnostic it gives
//! (code, file, position) and the exit code.
//!
//! Each run has a wall-clock watchdog: a run that has not finished after [`HANG_AFTER`] is
//! killed and the test fails with "hung". That is a hang detector, not a performance budget.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

const HANG_AFTER: Duration = Duration::from_secs(60);

/// The hostile file's place in the project, unless a case says otherwise.
const X: &str = "pipelines/x.yaml";

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the binary with a watchdog: stdout and stderr are drained by threads (so a chatty
/// process cannot block on a full pipe), and the child is killed if it outlives `HANG_AFTER`.
fn run(args: &[&str], cwd: &Path) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_railyard"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env_remove("RAILYARD_TEST_UNSET_VAR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn railyard");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));

    let watchdog = std::thread::spawn(move || {
        let started = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if started.elapsed() >= HANG_AFTER => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => panic!("waiting for railyard: {e}"),
            }
        }
    });
    let Some(status) = watchdog.join().expect("watchdog thread") else {
        panic!(
            "hung: `railyard {}` did not finish within {HANG_AFTER:?}",
            args.join(" ")
        );
    };
    let stdout = out.join().expect("stdout reader");
    let stderr = err.join().expect("stderr reader");
    assert!(!stderr.contains("panicked"), "railyard panicked:\n{stderr}");
    let code = status.code().unwrap_or_else(|| {
        panic!("railyard was killed by a signal ({status:?}); stderr:\n{stderr}")
    });
    Output {
        code,
        stdout,
        stderr,
    }
}

/// A temporary project holding `files` (project-relative path → bytes).
fn project(files: &[(&str, &[u8])]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, bytes) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
    }
    dir
}

/// `railyard validate . --format json` in `dir`: exit code and the parsed diagnostics.
fn validate(dir: &Path) -> (i32, Vec<Value>) {
    let out = run(&["validate", ".", "--format", "json"], dir);
    let diags: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            out.stdout, out.stderr
        )
    });
    let Value::Array(diags) = diags else {
        panic!("stdout is not a JSON array: {diags}");
    };
    (out.code, diags)
}

/// The single error diagnostic with `code`; fails listing everything otherwise.
fn only_error<'a>(diags: &'a [Value], code: &str) -> &'a Value {
    let found: Vec<&Value> = diags.iter().filter(|d| d["code"] == code).collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one `{code}` diagnostic, got:\n{}",
        serde_json::to_string_pretty(diags).unwrap()
    );
    assert_eq!(found[0]["severity"], "error", "{}", found[0]);
    found[0]
}

/// Validates a project whose only content is `X` = `bytes`, and returns the one diagnostic
/// with `code` after checking that it names the file and that validation failed with 1.
fn hostile(bytes: &[u8], code: &str) -> Value {
    let dir = project(&[(X, bytes)]);
    let (exit, diags) = validate(dir.path());
    assert_eq!(exit, 1, "exit code; diagnostics: {diags:?}");
    let d = only_error(&diags, code).clone();
    assert_eq!(d["file"], X, "{d}");
    d
}

fn line(d: &Value) -> u64 {
    d["line"]
        .as_u64()
        .unwrap_or_else(|| panic!("no line in {d}"))
}

fn column(d: &Value) -> u64 {
    d["column"]
        .as_u64()
        .unwrap_or_else(|| panic!("no column in {d}"))
}

/// 1-based line and character column of byte `offset` of `bytes` (decoded lossily, which
/// keeps every valid character before the offset as it is).
fn line_col(bytes: &[u8], offset: usize) -> (u64, u64) {
    let before = String::from_utf8_lossy(&bytes[..offset]);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap().chars().count() + 1;
    (line as u64, col as u64)
}

// ---------------------------------------------------------------------------------------------
// YAML safety budgets

#[test]
fn alias_bomb_is_a_yaml_limit() {
    // "Billion laughs": 9 levels of 9 aliases each expand to 9^9 = 387,420,489 strings.
    let mut text = String::from("lol0: &lol0 \"lol\"\n");
    for level in 1..=9 {
        let refs = vec![format!("*lol{}", level - 1); 9].join(", ");
        text.push_str(&format!("lol{level}: &lol{level} [{refs}]\n"));
    }
    text.push_str("pipeline: *lol9\n");
    let lines = text.lines().count() as u64;
    let d = hostile(text.as_bytes(), "yaml-limit");
    assert!((1..=lines).contains(&line(&d)), "line inside the file: {d}");
}

#[test]
fn deep_flow_nesting_is_a_yaml_limit() {
    let depth = 100_000;
    let text = format!("pipeline: {}{}\n", "[".repeat(depth), "]".repeat(depth));
    let d = hostile(text.as_bytes(), "yaml-limit");
    assert_eq!(line(&d), 1, "{d}");
}

#[test]
fn deep_flow_mapping_nesting_is_a_yaml_limit() {
    let depth = 100_000;
    let text = format!("pipeline: {}1{}\n", "{a: ".repeat(depth), "}".repeat(depth));
    let d = hostile(text.as_bytes(), "yaml-limit");
    assert_eq!(line(&d), 1, "{d}");
}

#[test]
fn deep_block_nesting_is_a_yaml_limit() {
    // Compact nested block sequences: `- - - ... - x`, 100,000 levels on one line.
    let text = format!("pipeline:\n{}x\n", "- ".repeat(100_000));
    let d = hostile(text.as_bytes(), "yaml-limit");
    assert_eq!(line(&d), 2, "{d}");
}

#[test]
fn deep_indented_block_mappings_are_a_yaml_limit() {
    // 1,000 levels of indentation (one more space per level); the budget is far lower.
    let mut text = String::from("pipeline:\n");
    for level in 1..=1000 {
        text.push_str(&format!("{}k{level}:\n", " ".repeat(level)));
    }
    let d = hostile(text.as_bytes(), "yaml-limit");
    let lines = text.lines().count() as u64;
    assert!(
        (2..=lines).contains(&line(&d)),
        "line inside the nesting: {d}"
    );
}

// ---------------------------------------------------------------------------------------------
// Encoding and size

#[test]
fn latin1_byte_is_not_utf8_at_its_position() {
    let bytes: &[u8] = b"pipeline: caf\xe9\n";
    let d = hostile(bytes, "not-utf8");
    assert_eq!((line(&d), column(&d)), (1, 14), "{d}");
    assert!(d["message"].as_str().unwrap().contains("0xE9"), "{d}");
}

#[test]
fn invalid_byte_on_a_later_line_is_located() {
    let bytes: &[u8] = b"pipeline: ok\ndescription: na\xefve caf\xc3\xa9 \xff here\n";
    let offset = bytes.iter().position(|&b| b == 0xef).unwrap();
    let d = hostile(bytes, "not-utf8");
    assert_eq!((line(&d), column(&d)), line_col(bytes, offset), "{d}");
    assert_eq!((line(&d), column(&d)), (2, 16), "{d}");
}

#[test]
fn binary_file_with_yaml_name_is_not_utf8() {
    // Deterministic "random" bytes (xorshift) with NULs and invalid UTF-8 sprinkled in.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut bytes: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    bytes[0] = 0x7f;
    bytes[1] = b'E';
    bytes[2] = b'L';
    bytes[3] = b'F';
    bytes[4] = 0;
    bytes[100] = 0;
    bytes[101] = 0xff;
    let first_bad = std::str::from_utf8(&bytes).unwrap_err().valid_up_to();
    let d = hostile(&bytes, "not-utf8");
    let (l, c) = line_col(&bytes, first_bad);
    assert_eq!((line(&d), column(&d)), (l, c), "{d}");
}

#[test]
fn nul_in_otherwise_valid_text_is_not_utf8_at_the_nul() {
    let bytes: &[u8] = b"pipeline: x\ninput:\n  stdin: {}\x00\noutput:\n  stdout: {}\n";
    let offset = bytes.iter().position(|&b| b == 0).unwrap();
    let d = hostile(bytes, "not-utf8");
    assert_eq!((line(&d), column(&d)), line_col(bytes, offset), "{d}");
    assert_eq!((line(&d), column(&d)), (3, 12), "{d}");
    assert!(d["message"].as_str().unwrap().contains("NUL"), "{d}");
}

#[test]
fn empty_file_is_reported() {
    let d = hostile(b"", "empty-file");
    assert_eq!(line(&d), 1, "{d}");
}

#[test]
fn comment_only_file_is_empty() {
    let d = hostile(
        b"# a pipeline will go here\n   # indented comment\n\n",
        "empty-file",
    );
    assert_eq!(line(&d), 1, "{d}");
}

#[test]
fn document_marker_and_comments_only_is_empty() {
    hostile(b"---\n# nothing yet\n", "empty-file");
}

#[test]
fn sparse_50_mb_file_is_too_large() {
    let dir = project(&[]);
    let path = dir.path().join(X);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::File::create(&path)
        .unwrap()
        .set_len(50 << 20)
        .unwrap();
    let (exit, diags) = validate(dir.path());
    assert_eq!(exit, 1, "{diags:?}");
    let d = only_error(&diags, "file-too-large");
    assert_eq!(d["file"], X, "{d}");
    assert!(d["message"].as_str().unwrap().contains("50.0 MiB"), "{d}");
}

#[test]
fn written_50_mb_yaml_file_is_too_large() {
    let dir = project(&[]);
    let path = dir.path().join(X);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = "a: b\n".repeat(1 << 16);
    for _ in 0..=(50 << 20) / chunk.len() {
        f.write_all(chunk.as_bytes()).unwrap();
    }
    drop(f);
    assert!(std::fs::metadata(&path).unwrap().len() >= 50 << 20);
    let (exit, diags) = validate(dir.path());
    assert_eq!(exit, 1, "{diags:?}");
    let d = only_error(&diags, "file-too-large");
    assert_eq!(d["file"], X, "{d}");
}

// ---------------------------------------------------------------------------------------------
// Directory structure

#[cfg(unix)]
#[test]
fn symlink_loop_to_project_root_is_an_io_error() {
    let dir = project(&[]);
    std::fs::create_dir_all(dir.path().join("pipelines")).unwrap();
    std::os::unix::fs::symlink("..", dir.path().join("pipelines/loop")).unwrap();
    let (exit, diags) = validate(dir.path());
    assert_eq!(exit, 1, "{diags:?}");
    let d = only_error(&diags, "io");
    assert!(
        d["message"].as_str().unwrap().contains("symlink loop"),
        "{d}"
    );
    assert!(
        d["file"].as_str().unwrap().starts_with("pipelines/loop"),
        "{d}"
    );
}

#[cfg(unix)]
#[test]
fn directory_symlink_to_its_parent_is_an_io_error_and_other_files_still_load() {
    let good = b"pipeline: good\ninput:\n  stdin: {}\noutput:\n  stdout: {}\n";
    let bad = b"pipeline: bad\ninput:\n  stdin: {}\n";
    let dir = project(&[
        ("pipelines/a/good.yaml", good),
        ("pipelines/a/bad.yaml", bad),
    ]);
    std::os::unix::fs::symlink("..", dir.path().join("pipelines/a/up")).unwrap();
    let (exit, diags) = validate(dir.path());
    assert_eq!(exit, 1, "{diags:?}");
    let d = only_error(&diags, "io");
    assert!(
        d["message"].as_str().unwrap().contains("symlink loop"),
        "{d}"
    );
    assert!(
        d["file"].as_str().unwrap().starts_with("pipelines/a/up"),
        "{d}"
    );
    // The walk carried on: the sibling file was read and checked.
    let missing = only_error(&diags, "missing-key");
    assert_eq!(missing["file"], "pipelines/a/bad.yaml", "{missing}");
}

#[test]
fn missing_project_directory_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &["validate", "does-not-exist", "--format", "json"],
        dir.path(),
    );
    assert_eq!(
        out.code, 2,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    assert!(out.stderr.contains("does-not-exist"), "{}", out.stderr);
}

#[test]
fn project_directory_that_is_a_file_is_a_usage_error() {
    let dir = project(&[("file.txt", b"hello")]);
    let out = run(&["validate", "file.txt"], dir.path());
    assert_eq!(out.code, 2, "stderr:\n{}", out.stderr);
}

// ---------------------------------------------------------------------------------------------
// Malformed content

#[test]
fn broken_json_schema_is_a_json_syntax_error() {
    let path = "schemas/a/b@1.json";
    let dir = project(&[(path, b"[1,2")]);
    let (exit, diags) = validate(dir.path());
    assert_eq!(exit, 1, "{diags:?}");
    let d = only_error(&diags, "json-syntax");
    assert_eq!(d["file"], path, "{d}");
    assert_eq!(line(d), 1, "{d}");
}

#[test]
fn broken_json_schema_on_a_later_line_is_located() {
    let path = "schemas/a/b@1.json";
    let text = "{\n  \"type\": \"object\",\n  \"properties\": {\n    \"a\": {\"type\": \"string\"},,\n  }\n}\n";
    let dir = project(&[(path, text.as_bytes())]);
    let (exit, diags) = validate(dir.path());
    assert_eq!(exit, 1, "{diags:?}");
    let d = only_error(&diags, "json-syntax");
    assert_eq!(d["file"], path, "{d}");
    assert_eq!(line(d), 4, "{d}");
}

#[test]
fn top_level_list_is_an_invalid_value() {
    let d = hostile(b"- pipeline: x\n- input: {}\n", "invalid-value");
    assert_eq!(line(&d), 1, "{d}");
    assert!(d["message"].as_str().unwrap().contains("list"), "{d}");
}

#[test]
fn top_level_scalar_is_an_invalid_value() {
    let d = hostile(b"just a sentence\n", "invalid-value");
    assert_eq!(line(&d), 1, "{d}");
}

#[test]
fn tab_indentation_is_a_yaml_syntax_error() {
    let d = hostile(
        b"pipeline: x\ninput:\n\tstdin: {}\noutput:\n  stdout: {}\n",
        "yaml-syntax",
    );
    assert_eq!(line(&d), 3, "{d}");
    assert!(d["message"].as_str().unwrap().contains("tab"), "{d}");
}

#[test]
fn duplicate_keys_are_a_yaml_syntax_error() {
    let d = hostile(
        b"pipeline: x\ninput:\n  stdin: {}\noutput:\n  stdout: {}\npipeline: y\n",
        "yaml-syntax",
    );
    assert_eq!(line(&d), 6, "{d}");
    assert!(d["message"].as_str().unwrap().contains("duplicate"), "{d}");
}

#[test]
fn unclosed_quote_is_a_yaml_syntax_error() {
    let d = hostile(b"pipeline: \"x\ninput:\n  stdin: {}\n", "yaml-syntax");
    let l = line(&d);
    assert!((1..=4).contains(&l), "{d}");
}

#[test]
fn every_hostile_file_in_one_project_is_reported_together() {
    let dir = project(&[
        ("pipelines/empty.yaml", b""),
        ("pipelines/latin1.yaml", b"pipeline: caf\xe9\n"),
        ("pipelines/list.yaml", b"- a\n"),
        ("pipelines/tab.yaml", b"a:\n\tb: c\n"),
        ("schemas/a/b@1.json", b"[1,2"),
    ]);
    let (exit, diags) = validate(dir.path());
    assert_eq!(exit, 1, "{diags:?}");
    let seen: Vec<(String, String)> = diags
        .iter()
        .map(|d| {
            (
                d["file"].as_str().unwrap_or_default().to_string(),
                d["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (file, code) in [
        ("pipelines/empty.yaml", "empty-file"),
        ("pipelines/latin1.yaml", "not-utf8"),
        ("pipelines/list.yaml", "invalid-value"),
        ("pipelines/tab.yaml", "yaml-syntax"),
        ("schemas/a/b@1.json", "json-syntax"),
    ] {
        assert!(
            seen.contains(&(file.to_string(), code.to_string())),
            "no `{code}` for {file} in {seen:?}"
        );
    }
}
