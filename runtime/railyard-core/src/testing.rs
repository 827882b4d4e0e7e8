//! `railyard test`: runs the `tests:` of every pipeline and mapping through the real engine
//! with in-memory inputs, outputs and state, and explains every failure with a JSON diff.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::engine::{Engine, MemoryState, Origin, Outcome};
use crate::model::OrShort;
use crate::model::pipeline::{Expectation, ExpectedBody, TestInput};
use crate::project::{MAX_DATA_BYTES, Mapping, Pipeline, Project, ProjectFiles, project_path};
use crate::schema::violations;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Pipeline,
    Mapping,
}

impl Kind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Pipeline => "pipeline",
            Kind::Mapping => "mapping",
        }
    }
}

#[derive(Clone, Debug)]
pub struct TestResult {
    pub kind: Kind,
    /// Pipeline or mapping name.
    pub suite: String,
    pub name: String,
    pub file: String,
    /// `None` when the test passed; otherwise why it failed, ready to print.
    pub failure: Option<String>,
}

impl TestResult {
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
    /// `pipeline-name › test name`, what `--filter` matches against.
    pub fn full_name(&self) -> String {
        format!("{} › {}", self.suite, self.name)
    }
}

/// Runs every test whose `suite › name` contains `filter` (all when `None`).
pub fn run_tests(
    project: &Project,
    files: &dyn ProjectFiles,
    filter: Option<&str>,
) -> Vec<TestResult> {
    let mut results = Vec::new();
    let matches =
        |suite: &str, name: &str| filter.is_none_or(|f| format!("{suite} › {name}").contains(f));
    for m in project.mappings.values() {
        for t in m.def.tests.iter().filter_map(|t| t.ok()) {
            let t = &t.value;
            if !matches(&m.name, &t.name.value) {
                continue;
            }
            let failure =
                run_mapping_test(project, files, m, &t.input.value, &t.expect.value).err();
            results.push(TestResult {
                kind: Kind::Mapping,
                suite: m.name.clone(),
                name: t.name.value.clone(),
                file: m.file.clone(),
                failure,
            });
        }
    }
    for p in project.pipelines.values() {
        for t in p.def.tests.iter().filter_map(|t| t.ok()) {
            let t = &t.value;
            if !matches(&p.name, &t.name.value) {
                continue;
            }
            let failure = run_pipeline_test(
                project,
                files,
                p,
                &t.name.value,
                &t.input.value,
                &t.expect.value,
            )
            .err();
            results.push(TestResult {
                kind: Kind::Pipeline,
                suite: p.name.clone(),
                name: t.name.value.clone(),
                file: p.file.clone(),
                failure,
            });
        }
    }
    results
}

/// Reads a JSON fixture named in a test, through the same confinement and JSON intake as
/// everything else ([`project_path`], [`crate::json::parse_payload`]).
fn read_json(files: &dyn ProjectFiles, written: &str) -> Result<Value, String> {
    let path = project_path(written).map_err(|e| e.describe("fixture", written))?;
    let bytes = files
        .read(&path, MAX_DATA_BYTES)
        .map_err(|e| e.describe("fixture", &path))?;
    crate::json::parse_payload(&bytes).map_err(|e| format!("fixture `{path}` {e}"))
}

fn input_of(
    files: &dyn ProjectFiles,
    input: &OrShort<TestInput>,
) -> Result<(Value, Map<String, Value>), String> {
    match input {
        OrShort::Short(path) => Ok((read_json(files, path)?, Map::new())),
        OrShort::Full(t) => {
            let body = match (&t.body, &t.file) {
                (Some(b), _) => b.clone(),
                (None, Some(f)) => read_json(files, &f.value)?,
                (None, None) => {
                    return Err("the test input has neither `body` nor `file`".to_string());
                }
            };
            let headers = t
                .headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), Value::String(v.clone())))
                .collect();
            Ok((body, headers))
        }
    }
}

fn expected_of(files: &dyn ProjectFiles, e: &ExpectedBody) -> Result<Value, String> {
    match (&e.body, &e.file) {
        (Some(b), _) => Ok(b.clone()),
        (None, Some(f)) => read_json(files, &f.value),
        (None, None) => Err("the expected body has neither `body` nor `file`".to_string()),
    }
}

fn run_mapping_test(
    project: &Project,
    files: &dyn ProjectFiles,
    m: &Mapping,
    input: &OrShort<TestInput>,
    expect: &OrShort<ExpectedBody>,
) -> Result<(), String> {
    let (body, _) = input_of(files, input)?;
    let expected = match expect {
        OrShort::Short(path) => read_json(files, path)?,
        OrShort::Full(e) => expected_of(files, e)?,
    };
    conform(project, &m.from, &body, "the input fixture")?;
    let actual = crate::functions::with_tables(&project.tables, || m.apply(&project.rhai, &body))
        .map_err(|e| format!("the mapping failed: {e}"))?;
    conform(project, &m.to, &actual, "the mapping's output")?;
    compare(&expected, &actual)
}

fn conform(project: &Project, schema: &str, body: &Value, what: &str) -> Result<(), String> {
    let Some(v) = project
        .schemas
        .get(schema)
        .and_then(|e| e.validator.as_ref())
    else {
        return Err(format!("schema `{schema}` is not available"));
    };
    let errors = violations(v, body);
    if errors.is_empty() {
        return Ok(());
    }
    let mut s = format!("{what} does not conform to `{schema}`:");
    for e in errors.iter().take(10) {
        s.push_str(&format!(
            "\n  at {}: {} (schema {})",
            if e.instance_path.is_empty() {
                "/"
            } else {
                &e.instance_path
            },
            e.message,
            e.schema_path
        ));
    }
    Err(s)
}

fn run_pipeline_test(
    project: &Project,
    files: &dyn ProjectFiles,
    p: &Pipeline,
    name: &str,
    input: &OrShort<TestInput>,
    expect: &Expectation,
) -> Result<(), String> {
    let (body, mut headers) = input_of(files, input)?;
    // As the webhook route does: credentials are checked there, never kept in the message,
    // so a test cannot pass on a header the runtime removes.
    if let crate::project::InputSpec::Http(h) = &p.input {
        for name in h.stripped_headers() {
            headers.remove(&name);
        }
    }
    let counter = std::cell::Cell::new(0u64);
    let ids = || {
        counter.set(counter.get() + 1);
        format!("test-{:04}", counter.get())
    };
    let now = || "2026-01-01T00:00:00Z".to_string();
    let engine = Engine {
        project,
        ids: &ids,
        now: &now,
    };
    let mut state = MemoryState::new();
    let origin = Origin {
        source: format!("test:{}/{name}", p.name),
        headers,
        ..Origin::default()
    };
    let outcome = engine.run_to_end(p, body, origin, &mut state);
    check_expectation(files, expect, &outcome)
}

fn describe(outcome: &Outcome<'_>) -> String {
    let mut s = format!(
        "{} delivered, {} dropped, {} failed",
        outcome.delivered.len(),
        outcome.dropped.len(),
        outcome.failed.len()
    );
    for f in &outcome.failed {
        s.push_str(&format!(
            "\n  failed: {}",
            f.error.to_string().replace('\n', "\n  ")
        ));
    }
    for d in &outcome.dropped {
        s.push_str(&format!("\n  dropped at {}: {}", d.step, d.reason));
    }
    s
}

fn check_expectation(
    files: &dyn ProjectFiles,
    e: &Expectation,
    outcome: &Outcome<'_>,
) -> Result<(), String> {
    if let Some(err) = &e.error {
        let want = &err.value;
        let Some(f) = outcome.failed.iter().find(|f| f.error.code == want.code) else {
            return Err(format!(
                "expected an error `{}`, got: {}",
                want.code,
                describe(outcome)
            ));
        };
        if let Some(step) = &want.step
            && !f.error.step.contains(step.as_str())
        {
            return Err(format!(
                "expected the error at step `{step}`, it happened at `{}`",
                f.error.step
            ));
        }
        if let Some(path) = &want.path
            && !f.error.violations.iter().any(|v| &v.instance_path == path)
        {
            let got: Vec<&str> = f
                .error
                .violations
                .iter()
                .map(|v| v.instance_path.as_str())
                .collect();
            return Err(format!("expected a violation at `{path}`, got {got:?}"));
        }
        return Ok(());
    }
    if !outcome.failed.is_empty() {
        return Err(format!("unexpected failure: {}", describe(outcome)));
    }
    if e.dropped == Some(true) {
        return if outcome.delivered.is_empty() && !outcome.dropped.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "expected the message to be dropped, got: {}",
                describe(outcome)
            ))
        };
    }
    let Some(first) = outcome.delivered.first() else {
        return Err(format!(
            "expected a delivered message, got: {}",
            describe(outcome)
        ));
    };
    if let Some(route) = &e.route
        && first.route.as_deref() != Some(route.value.as_str())
    {
        return Err(format!(
            "expected route `{}`, the message took {}",
            route.value,
            first
                .route
                .as_deref()
                .map_or("no named route".to_string(), |r| format!("`{r}`"))
        ));
    }
    if let Some(o) = &e.output {
        if outcome.delivered.len() != 1 {
            return Err(format!(
                "expected exactly one output, got: {}",
                describe(outcome)
            ));
        }
        compare(&expected_of(files, &o.value)?, first.message.body())?;
    }
    if let Some(list) = &e.outputs {
        if list.len() != outcome.delivered.len() {
            return Err(format!(
                "expected {} outputs, got: {}",
                list.len(),
                describe(outcome)
            ));
        }
        for (i, (want, got)) in list.iter().zip(&outcome.delivered).enumerate() {
            compare(&expected_of(files, &want.value)?, got.message.body())
                .map_err(|d| format!("output {i}: {d}"))?;
        }
    }
    if let Some(subset) = &e.subset {
        let mut diffs = Vec::new();
        subset_diff(subset, first.message.body(), "", &mut diffs);
        if !diffs.is_empty() {
            return Err(format!(
                "the output does not contain the expected subset:\n  {}",
                diffs.join("\n  ")
            ));
        }
    }
    for a in &e.assert {
        let expr = crate::expr::JmesPath::compile(&a.value).map_err(|err| err.message)?;
        match expr.search(first.message.envelope()) {
            Ok(Value::Bool(true)) => {}
            Ok(other) => return Err(format!("assertion `{}` gave {other}, not true", a.value)),
            Err(err) => return Err(format!("assertion `{}` failed to evaluate: {err}", a.value)),
        }
    }
    Ok(())
}

/// Exact comparison with a readable diff: one line per differing JSON Pointer.
pub fn compare(expected: &Value, actual: &Value) -> Result<(), String> {
    let mut diffs = Vec::new();
    diff(expected, actual, "", &mut diffs);
    if diffs.is_empty() {
        return Ok(());
    }
    let more = diffs.len().saturating_sub(20);
    diffs.truncate(20);
    let mut s = format!(
        "the output differs from the expected JSON:\n  {}",
        diffs.join("\n  ")
    );
    if more > 0 {
        s.push_str(&format!("\n  ... and {more} more"));
    }
    Err(s)
}

fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s
    }
}

fn diff(expected: &Value, actual: &Value, path: &str, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            let keys: BTreeMap<&String, ()> = e.keys().chain(a.keys()).map(|k| (k, ())).collect();
            for k in keys.keys() {
                let p = format!("{path}/{}", k.replace('~', "~0").replace('/', "~1"));
                match (e.get(*k), a.get(*k)) {
                    (Some(ev), Some(av)) => diff(ev, av, &p, out),
                    (Some(ev), None) => out.push(format!("{p}: missing (expected {})", show(ev))),
                    (None, Some(av)) => out.push(format!("{p}: unexpected {}", show(av))),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            for i in 0..e.len().max(a.len()) {
                let p = format!("{path}/{i}");
                match (e.get(i), a.get(i)) {
                    (Some(ev), Some(av)) => diff(ev, av, &p, out),
                    (Some(ev), None) => out.push(format!("{p}: missing (expected {})", show(ev))),
                    (None, Some(av)) => out.push(format!("{p}: unexpected {}", show(av))),
                    (None, None) => {}
                }
            }
        }
        (e, a) if e == a => {}
        (e, a) => out.push(format!(
            "{}: expected {}, got {}",
            if path.is_empty() { "/" } else { path },
            show(e),
            show(a)
        )),
    }
}

fn subset_diff(want: &Value, got: &Value, path: &str, out: &mut Vec<String>) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                let p = format!("{path}/{k}");
                match g.get(k) {
                    Some(gv) => subset_diff(wv, gv, &p, out),
                    None => out.push(format!("{p}: missing (expected {})", show(wv))),
                }
            }
        }
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => {
            for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                subset_diff(wv, gv, &format!("{path}/{i}"), out);
            }
        }
        (w, g) if w == g => {}
        (w, g) => out.push(format!(
            "{}: expected {}, got {}",
            if path.is_empty() { "/" } else { path },
            show(w),
            show(g)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_names_every_differing_pointer() {
        let err = compare(
            &json!({"a": 1, "lines": [{"sku": "A", "qty": 2}], "gone": true}),
            &json!({"a": 1, "lines": [{"sku": "A", "qty": "2"}], "extra": null}),
        )
        .expect_err("differs");
        assert!(err.contains("/lines/0/qty: expected 2, got \"2\""), "{err}");
        assert!(err.contains("/gone: missing (expected true)"), "{err}");
        assert!(err.contains("/extra: unexpected null"), "{err}");
        assert!(compare(&json!({"x": [1, 2]}), &json!({"x": [1, 2]})).is_ok());
    }

    #[test]
    fn subset_ignores_extra_fields() {
        let mut d = Vec::new();
        subset_diff(
            &json!({"a": {"b": 1}}),
            &json!({"a": {"b": 1, "c": 2}, "z": 0}),
            "",
            &mut d,
        );
        assert!(d.is_empty());
        subset_diff(&json!({"a": {"b": 2}}), &json!({"a": {"b": 1}}), "", &mut d);
        assert_eq!(d, vec!["/a/b: expected 2, got 1".to_string()]);
    }
}
