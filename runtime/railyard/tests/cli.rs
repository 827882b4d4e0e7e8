//! The command-line contract: exit codes, the JSON and GitHub output formats, exact positions
//! of errors inside embedded expressions, `eval`, and `schema validate|list`.
//!
//! Exit codes: 0 valid, 1 invalid, 2 usage or I/O error.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

/// A run that has not finished after this long has hung (a hang detector, not a budget).
const HANG_AFTER: Duration = Duration::from_secs(60);

const UNSET_VAR: &str = "RAILYARD_TEST_UNSET_VAR";

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs the binary in `cwd` with `stdin`, killing it (and failing "hung") after `HANG_AFTER`.
fn run_in(cwd: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_railyard"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env_remove(UNSET_VAR)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn railyard");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
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
    let stdout = out.join().unwrap();
    let stderr = err.join().unwrap();
    assert!(!stderr.contains("panicked"), "railyard panicked:\n{stderr}");
    let code = status
        .code()
        .unwrap_or_else(|| panic!("killed by a signal: {status:?}\n{stderr}"));
    Output {
        code,
        stdout,
        stderr,
    }
}

fn write(dir: &Path, path: &str, text: &str) {
    let p = dir.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

const ORDER_SCHEMA: &str = r#"{
  "title": "Canonical order",
  "type": "object",
  "properties": {
    "id": {"type": "string"},
    "lines": {
      "type": "array",
      "items": {
        "type": "object",
        "properties": {"sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}},
        "required": ["sku", "qty"]
      }
    }
  },
  "required": ["id", "lines"]
}
"#;

const VALID_PIPELINE: &str = "\
pipeline: tiny
input:
  stdin: {}
  schema: canonical.order@1
output:
  stdout: {}
";

/// A tiny project: one schema and `pipelines/p.yaml` = `pipeline`.
fn project(pipeline: &str) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "schemas/canonical/order@1.json", ORDER_SCHEMA);
    write(dir.path(), "pipelines/p.yaml", pipeline);
    dir
}

/// A pipeline with `steps` (YAML lines, indented two spaces under `steps:`).
fn pipeline_with_steps(steps: &str) -> String {
    format!(
        "pipeline: tiny\ninput:\n  stdin: {{}}\n  schema: canonical.order@1\nsteps:\n{steps}output:\n  stdout: {{}}\n"
    )
}

fn validate(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["validate", "."];
    args.extend_from_slice(extra);
    run_in(dir, &args, None)
}

fn validate_json(dir: &Path, extra: &[&str]) -> (i32, Vec<Value>) {
    let mut args = vec!["--format", "json"];
    args.extend_from_slice(extra);
    let out = validate(dir, &args);
    let v: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{out}"));
    match v {
        Value::Array(items) => (out.code, items),
        other => panic!("expected a JSON array, got {other}"),
    }
}

fn codes(diags: &[Value]) -> Vec<&str> {
    diags.iter().map(|d| d["code"].as_str().unwrap()).collect()
}

/// 1-based line and character column of the only occurrence of `needle` in `text`.
fn position_of(text: &str, needle: &str) -> (u64, u64) {
    let mut found = text.match_indices(needle);
    let (offset, _) = found
        .next()
        .unwrap_or_else(|| panic!("`{needle}` not in fixture"));
    assert!(
        found.next().is_none(),
        "`{needle}` occurs more than once in the fixture"
    );
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap().chars().count() + 1;
    (line as u64, column as u64)
}

// ---------------------------------------------------------------------------------------------
// (a) validate: exit codes

#[test]
fn valid_project_exits_0() {
    let dir = project(VALID_PIPELINE);
    let out = validate(dir.path(), &[]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("valid: 0 errors, 0 warnings"), "{out}");
    assert!(out.stdout.contains("1 pipelines"), "{out}");
    let (code, diags) = validate_json(dir.path(), &[]);
    assert_eq!((code, diags.len()), (0, 0), "{diags:?}");
}

#[test]
fn project_with_an_error_exits_1() {
    let dir = project(&VALID_PIPELINE.replace("canonical.order@1", "canonical.ordr@1"));
    let (code, diags) = validate_json(dir.path(), &[]);
    assert_eq!(code, 1, "{diags:?}");
    assert_eq!(codes(&diags), ["unknown-schema"], "{diags:?}");
    assert_eq!(diags[0]["severity"], "error");
    assert_eq!(diags[0]["file"], "pipelines/p.yaml");
    assert_eq!(diags[0]["line"], 4);
    assert_eq!(diags[0]["column"], 11);
}

fn env_warning_project() -> (TempDir, String) {
    let text = VALID_PIPELINE.replace(
        "pipeline: tiny\n",
        &format!("pipeline: tiny\ndescription: \"owned by ${{env:{UNSET_VAR}}}\"\n"),
    );
    (project(&text), text)
}

#[test]
fn missing_env_is_a_warning_exit_0() {
    let (dir, text) = env_warning_project();
    let (code, diags) = validate_json(dir.path(), &[]);
    assert_eq!(code, 0, "{diags:?}");
    assert_eq!(codes(&diags), ["missing-env"], "{diags:?}");
    let d = &diags[0];
    assert_eq!(d["severity"], "warning");
    assert!(d["message"].as_str().unwrap().contains(UNSET_VAR), "{d}");
    let (line, column) = position_of(&text, "${env:");
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(line), Some(column))
    );
}

#[test]
fn missing_env_after_escapes_is_located() {
    let text = VALID_PIPELINE.replace(
        "pipeline: tiny\n",
        &format!("pipeline: tiny\ndescription: \"tab\\there \\u00e9 ${{env:{UNSET_VAR}}}\"\n"),
    );
    let dir = project(&text);
    let (code, diags) = validate_json(dir.path(), &[]);
    assert_eq!(code, 0, "{diags:?}");
    assert_eq!(codes(&diags), ["missing-env"], "{diags:?}");
    let (line, column) = position_of(&text, "${env:");
    assert_eq!(
        (diags[0]["line"].as_u64(), diags[0]["column"].as_u64()),
        (Some(line), Some(column)),
        "{text}"
    );
}

#[test]
fn deny_warnings_turns_a_warning_into_exit_1() {
    let (dir, _) = env_warning_project();
    let (code, diags) = validate_json(dir.path(), &["--deny-warnings"]);
    assert_eq!(code, 1, "{diags:?}");
    assert_eq!(
        diags[0]["severity"], "warning",
        "still reported as a warning"
    );
    // Human output too.
    let out = validate(dir.path(), &["--deny-warnings"]);
    assert_eq!(out.code, 1, "{out}");
}

#[test]
fn strict_env_makes_missing_env_an_error() {
    let (dir, _) = env_warning_project();
    let (code, diags) = validate_json(dir.path(), &["--strict-env"]);
    assert_eq!(code, 1, "{diags:?}");
    assert_eq!(codes(&diags), ["missing-env"]);
    assert_eq!(diags[0]["severity"], "error");
}

#[test]
fn env_default_is_not_a_warning() {
    let dir = project(&VALID_PIPELINE.replace(
        "pipeline: tiny\n",
        &format!("pipeline: tiny\ndescription: \"${{env:{UNSET_VAR}:-nobody}}\"\n"),
    ));
    let (code, diags) = validate_json(dir.path(), &["--deny-warnings", "--strict-env"]);
    assert_eq!((code, diags.len()), (0, 0), "{diags:?}");
}

#[test]
fn validate_defaults_to_the_current_directory() {
    let dir = project(VALID_PIPELINE);
    let out = run_in(dir.path(), &["validate"], None);
    assert_eq!(out.code, 0, "{out}");
    let bad = project("pipeline: [\n");
    let out = run_in(bad.path(), &["validate"], None);
    assert_eq!(out.code, 1, "{out}");
}

#[test]
fn validate_usage_errors_exit_2() {
    let dir = project(VALID_PIPELINE);
    let out = validate(dir.path(), &["--format", "xml"]);
    assert_eq!(out.code, 2, "{out}");
    let out = run_in(dir.path(), &["validate", "no/such/dir"], None);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("no/such/dir"), "{out}");
}

// ---------------------------------------------------------------------------------------------
// (b) --format json

const JSON_KEYS: [&str; 9] = [
    "file",
    "line",
    "column",
    "end_line",
    "end_column",
    "severity",
    "code",
    "message",
    "help",
];

#[test]
fn json_format_is_one_array_of_fixed_shape_items() {
    let text = pipeline_with_steps("  - filter: \"body.id == ^\"\n  - map: no-such-mapping\n")
        .replace(
            "pipeline: tiny\n",
            &format!("pipeline: tiny\ndescription: ${{env:{UNSET_VAR}}}\nbogus: 1\n"),
        );
    let dir = project(&text);
    write(dir.path(), "schemas/broken@1.json", "{");
    let out = validate(dir.path(), &["--format", "json"]);
    assert_eq!(out.code, 1, "{out}");
    let v: Value = serde_json::from_str(&out.stdout).expect("one JSON document");
    let items = v.as_array().expect("an array");
    assert!(items.len() >= 4, "{items:#?}");
    let severities: BTreeSet<&str> = items
        .iter()
        .map(|d| d["severity"].as_str().unwrap())
        .collect();
    assert_eq!(severities, BTreeSet::from(["error", "warning"]));
    let expected: BTreeSet<&str> = JSON_KEYS.into_iter().collect();
    for item in items {
        let obj = item.as_object().expect("an object");
        let keys: BTreeSet<&str> = obj.keys().map(String::as_str).collect();
        assert_eq!(keys, expected, "{item}");
        assert!(obj["file"].is_string() || obj["file"].is_null(), "{item}");
        for k in ["line", "column", "end_line", "end_column"] {
            assert!(obj[k].is_u64() || obj[k].is_null(), "{k} in {item}");
        }
        assert!(
            obj["code"].as_str().is_some_and(|c| !c.is_empty()),
            "{item}"
        );
        assert!(
            obj["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{item}"
        );
        assert!(obj["help"].is_string() || obj["help"].is_null(), "{item}");
        if let (Some(l), Some(el)) = (obj["line"].as_u64(), obj["end_line"].as_u64()) {
            assert!(l >= 1 && el >= l, "{item}");
        }
    }
    for code in [
        "unknown-key",
        "jmespath-syntax",
        "missing-env",
        "json-syntax",
    ] {
        assert!(codes(items).contains(&code), "no {code} in {items:#?}");
    }
}

#[test]
fn json_format_of_a_valid_project_is_an_empty_array() {
    let dir = project(VALID_PIPELINE);
    let out = validate(dir.path(), &["--format", "json"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        serde_json::from_str::<Value>(&out.stdout).unwrap(),
        json!([])
    );
}

// ---------------------------------------------------------------------------------------------
// (c) --format github

/// `^::(error|warning) file=[^,]+,line=\d+,col=\d+,endLine=\d+,endColumn=\d+,title=[a-z-]+::`
/// Returns the message part.
fn parse_github_line(line: &str) -> Result<(&str, &str), String> {
    let err = |what: &str| format!("{what} in `{line}`");
    let rest = line
        .strip_prefix("::")
        .ok_or_else(|| err("no leading ::"))?;
    let (kind, rest) = rest.split_once(' ').ok_or_else(|| err("no space"))?;
    if kind != "error" && kind != "warning" {
        return Err(err("bad kind"));
    }
    let rest = rest.strip_prefix("file=").ok_or_else(|| err("no file="))?;
    let (file, mut rest) = rest
        .split_once(',')
        .ok_or_else(|| err("no comma after file"))?;
    if file.is_empty() {
        return Err(err("empty file"));
    }
    for key in ["line", "col", "endLine", "endColumn"] {
        rest = rest
            .strip_prefix(key)
            .and_then(|r| r.strip_prefix('='))
            .ok_or_else(|| err(key))?;
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            return Err(err(&format!("{key} has no number")));
        }
        rest = rest[digits..]
            .strip_prefix(',')
            .ok_or_else(|| err(&format!("no comma after {key}")))?;
    }
    let rest = rest
        .strip_prefix("title=")
        .ok_or_else(|| err("no title="))?;
    let title_len = rest
        .chars()
        .take_while(|c| c.is_ascii_lowercase() || *c == '-')
        .count();
    if title_len == 0 {
        return Err(err("empty title"));
    }
    let message = rest[title_len..]
        .strip_prefix("::")
        .ok_or_else(|| err("no :: after title"))?;
    Ok((kind, message))
}

#[test]
fn github_parser_rejects_malformed_lines() {
    let good = "::error file=a/b.yaml,line=1,col=2,endLine=1,endColumn=3,title=yaml-syntax::msg";
    assert_eq!(parse_github_line(good), Ok(("error", "msg")));
    for bad in [
        "::notice file=a,line=1,col=2,endLine=1,endColumn=3,title=x::m",
        "::error file=a,b,line=1,col=2,endLine=1,endColumn=3,title=x::m",
        "::error file=a,line=x,col=2,endLine=1,endColumn=3,title=x::m",
        "::error file=a,line=1,col=2,endLine=1,endColumn=3,title=Bad::m",
        "::error file=a,line=1,col=2,endLine=1,title=x::m",
    ] {
        assert!(parse_github_line(bad).is_err(), "{bad}");
    }
}

#[test]
fn github_format_lines_are_workflow_commands() {
    // The directory name holds a comma and the name a `%`: both must be escaped.
    let parent = tempfile::tempdir().unwrap();
    let root = parent.path().join("proj,ect");
    let text = pipeline_with_steps("  - filter: \"body.id == ^\"\n").replace(
        "pipeline: tiny\n",
        &format!("pipeline: \"50%off\"\ndescription: ${{env:{UNSET_VAR}}}\n"),
    );
    write(&root, "schemas/canonical/order@1.json", ORDER_SCHEMA);
    write(&root, "pipelines/p.yaml", &text);

    let out = run_in(
        parent.path(),
        &["validate", "proj,ect", "--format", "github"],
        None,
    );
    assert_eq!(out.code, 1, "{out}");
    let json = run_in(
        parent.path(),
        &["validate", "proj,ect", "--format", "json"],
        None,
    );
    let diags: Vec<Value> = serde_json::from_str(&json.stdout).unwrap();

    let lines: Vec<&str> = out.stdout.lines().collect();
    // One line per diagnostic: every newline inside a message was escaped.
    assert_eq!(lines.len(), diags.len(), "{out}");
    let mut kinds = BTreeSet::new();
    for (line, d) in lines.iter().zip(&diags) {
        let (kind, message) = parse_github_line(line).unwrap_or_else(|e| panic!("{e}"));
        kinds.insert(kind);
        assert_eq!(kind, d["severity"], "{line}");
        assert!(
            line.contains("file=proj%2Cect/pipelines/p.yaml,"),
            "file property escaped: {line}"
        );
        assert!(
            line.contains(&format!("line={},col={},", d["line"], d["column"])),
            "same position as JSON: {line} vs {d}"
        );
        assert!(!message.contains('\r') && !message.contains('\n'));
        if d["help"].is_string() {
            assert!(
                message.contains("%0Ahelp: "),
                "help after an escaped newline: {line}"
            );
        }
    }
    assert_eq!(kinds, BTreeSet::from(["error", "warning"]), "{out}");
    assert!(
        out.stdout.contains("`50%25off`"),
        "`%` escaped as %25 in data: {out}"
    );
}

// ---------------------------------------------------------------------------------------------
// (d) exact positions inside embedded expressions

/// Validates `text` as `pipelines/p.yaml` and checks the one `code` diagnostic sits at the only
/// occurrence of `needle` in `text`.
fn assert_reported_at(text: &str, code: &str, needle: &str) {
    let dir = project(text);
    let (exit, diags) = validate_json(dir.path(), &[]);
    assert_eq!(exit, 1, "{diags:#?}");
    let found: Vec<&Value> = diags.iter().filter(|d| d["code"] == code).collect();
    assert_eq!(found.len(), 1, "one {code} expected: {diags:#?}");
    let d = found[0];
    assert_eq!(d["file"], "pipelines/p.yaml");
    let (line, column) = position_of(text, needle);
    assert_eq!(
        (d["line"].as_u64().unwrap(), d["column"].as_u64().unwrap()),
        (line, column),
        "{code} should point at `{needle}` (line {line}, column {column}) in\n{text}\ngot {d}"
    );
}

#[test]
fn jmespath_error_in_plain_scalar_is_located() {
    let text = pipeline_with_steps("  - filter: body.id == `1` && ^\n");
    assert_reported_at(&text, "jmespath-syntax", "^");
}

#[test]
fn jmespath_error_in_double_quoted_scalar_is_located() {
    let text = pipeline_with_steps(
        "  - filter: \"body.id == 'x' && body.lines[?qty > `1`] | length(@) > ^\"\n",
    );
    assert_reported_at(&text, "jmespath-syntax", "^");
}

#[test]
fn jmespath_error_in_multiline_double_quoted_scalar_is_located() {
    let text = pipeline_with_steps(
        "  - filter: \"body.name == 'café' &&\n      body.total > `10` &&\n      body.x > ^\"\n",
    );
    assert_reported_at(&text, "jmespath-syntax", "^");
}

#[test]
fn jmespath_error_after_quote_escapes_is_located() {
    let text = pipeline_with_steps("  - filter: \"body.\\\"status\\\" == 'paid' && ^\"\n");
    assert_reported_at(&text, "jmespath-syntax", "^");
}

#[test]
fn jmespath_error_after_tab_escape_is_located() {
    let text = pipeline_with_steps("  - filter: \"body.id == 'x' &&\\tbody.total > ^\"\n");
    assert_reported_at(&text, "jmespath-syntax", "^");
}

#[test]
fn jmespath_error_after_unicode_escape_is_located() {
    let text = pipeline_with_steps("  - filter: \"body.name == 'caf\\u00e9' && ^\"\n");
    assert_reported_at(&text, "jmespath-syntax", "^");
}

#[test]
fn jmespath_error_in_single_quoted_scalar_is_located() {
    let text = pipeline_with_steps("  - filter: 'body.id == ''x'' && ^'\n");
    assert_reported_at(&text, "jmespath-syntax", "^");
}

#[test]
fn jmespath_error_in_literal_block_scalar_is_located() {
    let text = pipeline_with_steps(
        "  - filter:\n      condition: |\n        body.id == 'x'\n          && length(body.lines) > ~\n",
    );
    assert_reported_at(&text, "jmespath-syntax", "~");
}

#[test]
fn jmespath_error_in_stripped_literal_block_after_non_ascii_is_located() {
    let text = pipeline_with_steps(
        "  - filter:\n      condition: |-\n        body.name == 'Zoë' &&\n\n        body.city == 'Zürich' && ~\n",
    );
    assert_reported_at(&text, "jmespath-syntax", "~");
}

#[test]
fn jmespath_error_in_switch_case_is_located() {
    let text = pipeline_with_steps(
        "  - switch:\n      cases:\n        - name: big\n          when: \"body.total > `100` && ]\"\n          output:\n            stdout: {}\n",
    );
    assert_reported_at(&text, "jmespath-syntax", "]\"");
}

#[test]
fn rhai_error_in_inline_block_script_is_located() {
    let text = pipeline_with_steps(
        "  - script:\n      rhai: |\n        let total = body.lines.len();\n        let y = total +* 2;\n        body\n",
    );
    assert_reported_at(&text, "rhai-syntax", "*");
}

#[test]
fn rhai_error_in_flow_mapping_script_is_located() {
    let text = pipeline_with_steps("  - script: { rhai: \"let n = 1; let y = n +* 2; body\" }\n");
    assert_reported_at(&text, "rhai-syntax", "*");
}

#[test]
fn rhai_error_after_newline_escape_is_located() {
    let text =
        pipeline_with_steps("  - script: { rhai: \"let n = 1;\\nlet y = n +* 2;\\nbody\" }\n");
    assert_reported_at(&text, "rhai-syntax", "*");
}

// ---------------------------------------------------------------------------------------------
// (e) eval

fn payload_dir() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "order.json",
        r#"{"a": {"b": [1, 2, {"c": "x"}]}, "id": "o-1", "lines": [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 5}]}"#,
    );
    dir
}

fn eval_json(args: &[&str]) -> Value {
    let dir = payload_dir();
    let mut all = vec!["eval"];
    all.extend_from_slice(args);
    all.push("order.json");
    let out = run_in(dir.path(), &all, None);
    assert_eq!(out.code, 0, "{out}");
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn eval_jmespath_prints_the_json_result() {
    assert_eq!(eval_json(&["--jmespath", "a.b"]), json!([1, 2, {"c": "x"}]));
    assert_eq!(
        eval_json(&["--jmespath", "lines[?qty > `2`].sku"]),
        json!(["B"])
    );
    assert_eq!(eval_json(&["--jmespath", "sum(lines[].qty)"]), json!(7.0));
    assert_eq!(eval_json(&["--jmespath", "id"]), json!("o-1"));
}

#[test]
fn eval_compact_prints_one_line() {
    let dir = payload_dir();
    let out = run_in(
        dir.path(),
        &["eval", "--jmespath", "a.b", "--compact", "order.json"],
        None,
    );
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.stdout, "[1,2,{\"c\":\"x\"}]\n");
}

#[test]
fn eval_follows_jmespath_null_and_comparison_semantics() {
    assert_eq!(eval_json(&["--jmespath", "missing"]), Value::Null);
    assert_eq!(eval_json(&["--jmespath", "missing == null"]), json!(true));
    assert_eq!(eval_json(&["--jmespath", "missing.deeper[0]"]), Value::Null);
    // Ordering comparisons are only defined between numbers: anything else is null.
    assert_eq!(eval_json(&["--jmespath", "`1` < `\"a\"`"]), Value::Null);
    assert_eq!(eval_json(&["--jmespath", "`1` < `2`"]), json!(true));
    assert_eq!(eval_json(&["--jmespath", "`\"a\"` < `\"b\"`"]), Value::Null);
    assert_eq!(eval_json(&["--jmespath", "`[1]` == `[1]`"]), json!(true));
}

#[test]
fn eval_reads_stdin() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["eval", "--jmespath", "x.y", "-"][..],
        &["eval", "--jmespath", "x.y"][..],
    ] {
        let out = run_in(dir.path(), args, Some(br#"{"x": {"y": 42}}"#));
        assert_eq!(out.code, 0, "{out}");
        assert_eq!(out.stdout.trim(), "42");
    }
}

#[test]
fn eval_rhai_prints_the_script_value() {
    assert_eq!(eval_json(&["--rhai", "body.lines.len() + 40"]), json!(42));
}

#[test]
fn eval_invalid_expression_exits_1_with_a_caret() {
    let dir = payload_dir();
    let expr = "lines[].sku | ^bad";
    let out = run_in(
        dir.path(),
        &["eval", "--jmespath", expr, "order.json"],
        None,
    );
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("jmespath-syntax"), "{out}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.trim_start() == expr)
        .unwrap_or_else(|| panic!("expression echoed: {out}"));
    let caret_line = lines
        .get(i + 1)
        .unwrap_or_else(|| panic!("caret line: {out}"));
    assert_eq!(caret_line.trim(), "^", "{out}");
    let expr_col = lines[i].find(expr).unwrap() + expr.find('^').unwrap();
    assert_eq!(
        caret_line.find('^'),
        Some(expr_col),
        "caret under the bad character:\n{out}"
    );
    assert!(out.stdout.is_empty(), "{out}");
}

#[test]
fn eval_invalid_rhai_exits_1() {
    let dir = payload_dir();
    let out = run_in(
        dir.path(),
        &["eval", "--rhai", "let x = ;", "order.json"],
        None,
    );
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("rhai-syntax"), "{out}");
    assert!(out.stderr.lines().any(|l| l.trim() == "^"), "{out}");
}

#[test]
fn eval_malformed_json_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "bad.json", "{\"a\": [1, 2,\n");
    let out = run_in(dir.path(), &["eval", "--jmespath", "a", "bad.json"], None);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("bad.json"), "{out}");
    let out = run_in(
        dir.path(),
        &["eval", "--jmespath", "a", "-"],
        Some(b"not json"),
    );
    assert_eq!(out.code, 2, "{out}");
}

#[test]
fn eval_missing_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(dir.path(), &["eval", "--jmespath", "a", "nope.json"], None);
    assert_eq!(out.code, 2, "{out}");
}

#[test]
fn eval_without_an_engine_is_a_usage_error() {
    let dir = payload_dir();
    let out = run_in(dir.path(), &["eval", "order.json"], None);
    assert_eq!(out.code, 2, "{out}");
}

// ---------------------------------------------------------------------------------------------
// (f) schema validate

fn schema_project() -> TempDir {
    let dir = project(VALID_PIPELINE);
    write(
        dir.path(),
        "good.json",
        r#"{"id": "o-1", "lines": [{"sku": "A", "qty": 1}]}"#,
    );
    write(
        dir.path(),
        "bad.json",
        r#"{"lines": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": "two"}]}"#,
    );
    dir
}

fn assert_bad_payload_report(out: &Output) {
    assert_eq!(out.code, 1, "{out}");
    // Each violation: its instance path and its schema path.
    assert!(out.stdout.contains("error at /:"), "{out}");
    assert!(out.stdout.contains("schema path: /required"), "{out}");
    assert!(out.stdout.contains("error at /lines/1/qty:"), "{out}");
    assert!(
        out.stdout
            .contains("schema path: /properties/lines/items/properties/qty/type"),
        "{out}"
    );
    assert!(out.stdout.contains("in 2 places"), "{out}");
}

#[test]
fn schema_validate_valid_payload_exits_0() {
    let dir = schema_project();
    let out = run_in(
        dir.path(),
        &[
            "schema",
            "validate",
            "canonical.order@1",
            "good.json",
            "--dir",
            ".",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("valid"), "{out}");
}

#[test]
fn schema_validate_with_dir_elsewhere() {
    let dir = schema_project();
    let cwd = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    let out = run_in(
        cwd.path(),
        &[
            "schema",
            "validate",
            "canonical.order@1",
            good.to_str().unwrap(),
            "--dir",
            dir.path().to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.code, 0, "{out}");
}

#[test]
fn schema_validate_invalid_payload_exits_1_with_paths() {
    let dir = schema_project();
    let out = run_in(
        dir.path(),
        &[
            "schema",
            "validate",
            "canonical.order@1",
            "bad.json",
            "--dir",
            ".",
        ],
        None,
    );
    assert_bad_payload_report(&out);
}

#[test]
fn schema_validate_reads_stdin() {
    let dir = schema_project();
    let out = run_in(
        dir.path(),
        &["schema", "validate", "canonical.order@1", "-"],
        Some(br#"{"id": 7, "lines": []}"#),
    );
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stdout.contains("error at /id:"), "{out}");
}

#[test]
fn schema_validate_unknown_id_exits_2_with_did_you_mean() {
    let dir = schema_project();
    let out = run_in(
        dir.path(),
        &[
            "schema",
            "validate",
            "canonical.ordr@1",
            "good.json",
            "--dir",
            ".",
        ],
        None,
    );
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("canonical.ordr@1"), "{out}");
    assert!(
        out.stderr.contains("did you mean `canonical.order@1`"),
        "{out}"
    );
}

#[test]
fn schema_validate_malformed_payload_exits_2() {
    let dir = schema_project();
    write(dir.path(), "broken.json", "{\"id\": ");
    let out = run_in(
        dir.path(),
        &["schema", "validate", "canonical.order@1", "broken.json"],
        None,
    );
    assert_eq!(out.code, 2, "{out}");
}

#[test]
fn schema_validate_with_schema_file_and_payload_file() {
    let dir = schema_project();
    let schema = "schemas/canonical/order@1.json";
    let out = run_in(
        dir.path(),
        &["schema", "validate", "--schema-file", schema, "good.json"],
        None,
    );
    assert_eq!(out.code, 0, "{out}");
    let out = run_in(
        dir.path(),
        &["schema", "validate", "--schema-file", schema, "bad.json"],
        None,
    );
    assert_bad_payload_report(&out);
}

#[test]
fn schema_validate_with_schema_file_and_an_id_exits_2() {
    let dir = schema_project();
    let out = run_in(
        dir.path(),
        &[
            "schema",
            "validate",
            "--schema-file",
            "schemas/canonical/order@1.json",
            "canonical.order@1",
            "good.json",
        ],
        None,
    );
    assert_eq!(out.code, 2, "{out}");
}

#[test]
fn schema_validate_with_schema_file_and_stdin() {
    let dir = schema_project();
    let good = std::fs::read(dir.path().join("good.json")).unwrap();
    let out = run_in(
        dir.path(),
        &[
            "schema",
            "validate",
            "--schema-file",
            "schemas/canonical/order@1.json",
        ],
        Some(&good),
    );
    assert_eq!(out.code, 0, "{out}");
}

#[test]
fn schema_validate_with_an_invalid_schema_file_exits_2() {
    let dir = schema_project();
    write(dir.path(), "notaschema.json", r#"{"type": 12}"#);
    let out = run_in(
        dir.path(),
        &[
            "schema",
            "validate",
            "--schema-file",
            "notaschema.json",
            "good.json",
        ],
        None,
    );
    assert_eq!(out.code, 2, "{out}");
}

#[test]
fn schema_validate_with_neither_id_nor_file_exits_2() {
    let dir = schema_project();
    let out = run_in(dir.path(), &["schema", "validate"], None);
    assert_eq!(out.code, 2, "{out}");
}

// ---------------------------------------------------------------------------------------------
// (g) schema list

#[test]
fn schema_list_json_lists_the_ids() {
    let dir = schema_project();
    write(
        dir.path(),
        "schemas/pos/sales_line@2.json",
        r#"{"type": "object", "title": "POS sales line"}"#,
    );
    let out = run_in(dir.path(), &["schema", "list", "--json"], None);
    assert_eq!(out.code, 0, "{out}");
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    let ids: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["canonical.order@1", "pos.sales_line@2"], "{out}");
    let first = &v[0];
    assert_eq!(first["file"], "schemas/canonical/order@1.json");
    assert_eq!(first["title"], "Canonical order");
    assert_eq!(first["compiled"], true);

    // The same through --dir from elsewhere, and the table form.
    let cwd = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = run_in(cwd.path(), &["schema", "list", "--dir", d, "--json"], None);
    assert_eq!(serde_json::from_str::<Value>(&out.stdout).unwrap(), v);
    let out = run_in(cwd.path(), &["schema", "list", "--dir", d], None);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("canonical.order@1"), "{out}");
    assert!(out.stdout.contains("pos.sales_line@2"), "{out}");
}

#[test]
fn schema_list_of_missing_dir_exits_2() {
    let cwd = tempfile::tempdir().unwrap();
    let out = run_in(
        cwd.path(),
        &["schema", "list", "--dir", "nope", "--json"],
        None,
    );
    assert_eq!(out.code, 2, "{out}");
}

/// `railyard … | head` closes the pipe early: the command stops quietly, no panic.
#[test]
fn output_into_a_closed_pipe_stops_quietly() {
    use std::io::Read;
    let tmp = tempfile::tempdir().unwrap();
    // Far more than a pipe holds (64 KiB), so the writer meets the closed pipe.
    let big = format!("[{}]", vec!["\"0123456789abcdef\""; 40_000].join(","));
    let file = tmp.path().join("big.json");
    std::fs::write(&file, big).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_railyard"))
        .args(["eval", "--jmespath", "@", file.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    let mut stdout = child.stdout.take().unwrap();
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(first.starts_with(b"["), "{first:?}");
}
