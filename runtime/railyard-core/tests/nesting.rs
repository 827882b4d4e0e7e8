#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! Expression nesting is bounded when an expression is compiled, so a poison expression is a
//! diagnostic in `validate`, never a stack overflow in `validate`, `test` or `run`. Every test
//! here runs on the default test thread stack (2 MiB), smaller than a server's main thread.

use railyard_core::expr::{JmesPath, MAX_EXPR_NESTING, RhaiScript, rhai_engine};
use railyard_core::project::{self, LoadOptions, MemFiles};
use serde_json::json;

const DEEP: usize = 10_000;

fn nested(open: &str, inner: &str, close: &str, depth: usize) -> String {
    format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
}

fn chained(item: &str, sep: &str, count: usize) -> String {
    vec![item; count].join(sep)
}

/// What a nesting error must say: the limit.
fn says_the_limit(message: &str) -> bool {
    message.contains(&format!("more than {MAX_EXPR_NESTING} levels"))
}

fn deep_jmespath() -> Vec<(&'static str, String)> {
    vec![
        ("function calls", nested("abs(", "a", ")", DEEP)),
        ("parentheses", nested("(", "a", ")", DEEP)),
        ("lists", nested("[", "a", "]", DEEP)),
        ("hashes", nested("{a: ", "b", "}", DEEP)),
        ("filters", nested("a[?", "b", "]", DEEP)),
        ("negations", format!("{}a", "!".repeat(DEEP))),
        ("a dotted path", chained("a", ".", DEEP)),
        ("an or chain", chained("a", " || ", DEEP)),
        ("a pipe chain", chained("a", " | ", DEEP)),
        ("projections", chained("a[*]", ".", DEEP)),
        ("object projections", chained("a.*", ".", DEEP)),
        ("filter chains", format!("a{}", "[?b]".repeat(DEEP))),
        ("dotted filters", chained("a[?b]", ".", DEEP)),
        ("flattens", chained("a[]", ".", DEEP)),
        ("index chains", format!("a{}", "[0]".repeat(DEEP))),
    ]
}

#[test]
fn deep_jmespath_is_a_compile_error_that_names_the_limit() {
    for (what, expr) in deep_jmespath() {
        let err = JmesPath::compile(&expr).expect_err(what);
        assert!(says_the_limit(&err.message), "{what}: {}", err.message);
        assert!(err.char_offset < expr.chars().count(), "{what}: {err:?}");
    }
}

#[test]
fn nesting_within_the_limit_compiles_and_runs() {
    let depth = MAX_EXPR_NESTING - 2;
    let calls = nested("abs(", "n", ")", depth);
    let e = JmesPath::compile(&calls).expect("within the limit");
    assert_eq!(e.search(&json!({"n": -3})), Ok(json!(3.0)));
    let path = chained("a", ".", depth);
    let mut body = json!(7);
    for _ in 0..depth {
        body = json!({ "a": body });
    }
    let e = JmesPath::compile(&path).expect("within the limit");
    assert_eq!(e.search(&body), Ok(json!(7)));
    // Brackets inside strings and literals are not nesting.
    let quoted = format!(
        "[`\"{}\"`, '{}', \"{}\"]",
        "[".repeat(DEEP),
        "(".repeat(DEEP),
        "{".repeat(DEEP)
    );
    assert!(JmesPath::compile(&quoted).is_ok());
}

#[test]
fn deep_rhai_is_a_compile_error_that_names_the_limit() {
    let engine = rhai_engine();
    let cases = [
        ("parentheses", nested("(", "1", ")", DEEP)),
        ("blocks", nested("{ ", "1", " }", DEEP)),
        ("arrays", nested("[", "1", "]", DEEP)),
        ("maps", nested("#{a: ", "1", "}", DEEP)),
        ("function calls", nested("abs(", "1", ")", DEEP)),
        ("ifs", nested("if true { ", "1", " }", DEEP)),
        ("negations", format!("{}true", "!".repeat(DEEP))),
        ("unary minus", format!("{}1", "- ".repeat(DEEP))),
        ("a sum", chained("1", " + ", DEEP)),
        (
            "a property chain",
            format!("let a = #{{}}; a{}", ".b".repeat(DEEP)),
        ),
        (
            "an index chain",
            format!("let a = []; a{}", "[0]".repeat(DEEP)),
        ),
        (
            "a function body",
            format!("fn f() {{ {} }} f()", nested("(", "1", ")", DEEP)),
        ),
    ];
    for (what, source) in cases {
        let err = RhaiScript::compile(&engine, &source).expect_err(what);
        assert!(says_the_limit(&err.message), "{what}: {}", err.message);
    }
}

/// Through the loader, as `validate` and `run` load: a condition, a mapping, a template and a
/// script, each 10,000 levels deep, each a diagnostic at its file.
#[test]
fn deep_expressions_are_load_diagnostics() {
    let calls = nested("abs(", "body.n", ")", DEEP);
    let pipeline = format!(
        "pipeline: deep\ninput: {{ stdin: {{}} }}\nsteps:\n  - filter: \"{calls} > `0`\"\n  - script: {{ rhai: '{}' }}\noutput:\n  topic: \"out.{{{{ {calls} }}}}\"\n",
        nested("(", "1", ")", DEEP)
    );
    let mapping = format!(
        "mapping: deep\nfrom: a.b@1\nto: a.b@1\njmespath: \"{}\"\n",
        nested("[", "body", "]", DEEP)
    );
    let files = MemFiles::new()
        .with("schemas/a/b@1.json", r#"{"type": "object"}"#)
        .with("pipelines/deep.yaml", pipeline)
        .with("mappings/deep.yaml", mapping);
    let loaded = project::load(&files, &LoadOptions::default());
    let nesting: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error() && says_the_limit(&d.message))
        .map(|d| (d.file.as_deref().unwrap_or(""), d.code.as_str()))
        .collect();
    assert_eq!(
        nesting,
        vec![
            ("mappings/deep.yaml", "jmespath-syntax"),
            ("pipelines/deep.yaml", "jmespath-syntax"),
            ("pipelines/deep.yaml", "rhai-syntax"),
            ("pipelines/deep.yaml", "jmespath-syntax"),
        ],
        "{:#?}",
        loaded.diagnostics
    );
    assert!(loaded.project.pipelines.is_empty());
    assert!(loaded.project.mappings.is_empty());
}
