//! Property tests: the YAML parser and the project loader never panic, whatever the input, and
//! every diagnostic they give points inside the file it names.

use proptest::prelude::*;
use railyard_core::Diagnostic;
use railyard_core::project::{self, LoadOptions, Loaded, MemFiles};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        // Keep the source tree clean; a failure prints its minimal input anyway.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Inputs

/// Strings assembled from YAML's syntax characters and a few words: far more likely than
/// random bytes to reach deep into the parser (anchors, merges, flow and block collections,
/// quotes, block scalars, comments, tabs).
fn yamlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just(":"),
        Just(": "),
        Just("-"),
        Just("- "),
        Just("["),
        Just("]"),
        Just("{"),
        Just("}"),
        Just(","),
        Just("&a "),
        Just("*a"),
        Just("&b "),
        Just("*b"),
        Just("<<: "),
        Just("\""),
        Just("'"),
        Just("\\"),
        Just("|"),
        Just("|-"),
        Just(">"),
        Just("\n"),
        Just("\r\n"),
        Just(" "),
        Just("  "),
        Just("    "),
        Just("\t"),
        Just("#"),
        Just("---"),
        Just("..."),
        Just("!!str "),
        Just("? "),
        Just("%YAML 1.2\n"),
        Just("pipeline"),
        Just("steps"),
        Just("x"),
        Just("1.10"),
        Just("true"),
        Just("null"),
        Just("é"),
        Just("${env:X}"),
    ];
    prop::collection::vec(token, 0..80).prop_map(|t| t.concat())
}

/// A YAML-ish tree: the structured input for the loader.
#[derive(Clone, Debug)]
enum Tree {
    Scalar(String),
    Seq(Vec<Tree>),
    Map(Vec<(String, Tree)>),
}

const KEYS: &[&str] = &[
    "pipeline",
    "version",
    "input",
    "http",
    "path",
    "stdin",
    "topic",
    "name",
    "schema",
    "steps",
    "map",
    "mapping",
    "filter",
    "condition",
    "switch",
    "cases",
    "when",
    "default",
    "split",
    "script",
    "rhai",
    "metadata",
    "set",
    "output",
    "stdout",
    "pipeline",
    "tests",
    "input",
    "expect",
    "body",
    "file",
    "on_error",
    "retry",
    "attempts",
    "dedupe",
    "key",
    "ttl",
    "validate",
    "reserve",
    "sku",
    "qty",
    "methods",
    "max_body",
    "x",
];

const SCALARS: &[&str] = &[
    "",
    "x",
    "orders",
    "tiny-pipeline",
    "canonical.order@1",
    "canonical.ordr@1",
    "Canonical.Order",
    "@1",
    "/webhooks/orders",
    "body.id",
    "body.lines[?qty > `1`].sku",
    "length(body.lines) > `0`",
    "body.id == 'x' && ^",
    "body.status == `\"paid\"`",
    "[?",
    "`",
    "{a: b}",
    "@",
    "foo | bar | ",
    "let x = body.id; x",
    "body.total +* 2",
    "${env:X}",
    "${env:RAILYARD_NEVER_SET}",
    "${env:}",
    "${env:X:-fallback}",
    "$${env:X}",
    "${env:X",
    "pre ${env:A} mid ${env:B} post",
    "5m",
    "72h",
    "-1s",
    "1MiB",
    "10 parsecs",
    "0",
    "-1",
    "4294967296",
    "1.10",
    "1e999",
    "true",
    "null",
    "~",
    "é",
    "caf\u{e9} ${env:Ü}",
    "tabs\there",
    "line one\nline two",
    "quote \" and ' and \\",
    "\u{1F600}",
    "store",
    "tests/fixtures/missing.json",
];

fn tree() -> impl Strategy<Value = Tree> {
    let leaf = prop_oneof![
        prop::sample::select(SCALARS).prop_map(|s| Tree::Scalar(s.to_string())),
        "[ -~]{0,12}".prop_map(Tree::Scalar),
        any::<String>().prop_map(Tree::Scalar),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Tree::Seq),
            prop::collection::vec(
                (
                    prop_oneof![
                        4 => prop::sample::select(KEYS).prop_map(str::to_string),
                        1 => "[a-z_]{1,8}",
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(Tree::Map),
        ]
    })
}

/// How a scalar is written.
#[derive(Clone, Copy, Debug)]
enum Style {
    Plain,
    Double,
    Single,
    Literal,
}

fn style() -> impl Strategy<Value = Style> {
    prop_oneof![
        Just(Style::Plain),
        Just(Style::Double),
        Just(Style::Single),
        Just(Style::Literal)
    ]
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Renders a tree as block YAML (whole-document strings may still be invalid YAML: plain
/// scalars are written as they are, which is the point).
fn render(tree: &Tree, styles: &[Style], indent: usize, out: &mut String, n: &mut usize) {
    let pad = " ".repeat(indent);
    match tree {
        Tree::Scalar(s) => {
            let style = styles[*n % styles.len()];
            *n += 1;
            match style {
                Style::Plain => out.push_str(s),
                Style::Double => out.push_str(&double_quoted(s)),
                Style::Single => {
                    out.push('\'');
                    out.push_str(&s.replace('\'', "''"));
                    out.push('\'');
                }
                Style::Literal => {
                    out.push_str("|\n");
                    for line in s.split('\n') {
                        out.push_str(&pad);
                        out.push_str("  ");
                        out.push_str(line);
                        out.push('\n');
                    }
                    // The caller adds a newline after every value.
                    out.pop();
                }
            }
        }
        Tree::Seq(items) if items.is_empty() => out.push_str("[]"),
        Tree::Map(entries) if entries.is_empty() => out.push_str("{}"),
        Tree::Seq(items) => {
            for item in items {
                out.push('\n');
                out.push_str(&pad);
                out.push_str("- ");
                render(item, styles, indent + 2, out, n);
            }
        }
        Tree::Map(entries) => {
            for (k, v) in entries {
                out.push('\n');
                out.push_str(&pad);
                out.push_str(k);
                out.push_str(": ");
                render(v, styles, indent + 2, out, n);
            }
        }
    }
}

fn render_doc(entries: &[(String, Tree)], styles: &[Style]) -> String {
    let mut out = String::new();
    let mut n = 0;
    render(&Tree::Map(entries.to_vec()), styles, 0, &mut out, &mut n);
    out.push('\n');
    out.trim_start_matches('\n').to_string()
}

/// A whole pipeline-shaped document: the top-level keys a pipeline has, with random values,
/// plus random extra keys.
fn pipeline_doc() -> impl Strategy<Value = String> {
    let top = (
        prop::option::of(prop::sample::select(SCALARS)),
        prop::option::of(tree()),
        prop::option::of(tree()),
        prop::option::of(tree()),
        prop::option::of(tree()),
        prop::collection::vec((prop::sample::select(KEYS), tree()), 0..3),
    );
    (top, prop::collection::vec(style(), 1..8)).prop_map(
        |((name, input, steps, output, tests, extra), styles)| {
            let mut entries: Vec<(String, Tree)> = Vec::new();
            if let Some(name) = name {
                entries.push(("pipeline".into(), Tree::Scalar(name.to_string())));
            }
            for (key, value) in [
                ("input", input),
                ("steps", steps),
                ("output", output),
                ("tests", tests),
            ] {
                if let Some(v) = value {
                    entries.push((key.into(), v));
                }
            }
            for (k, v) in extra {
                entries.push((k.to_string(), v));
            }
            render_doc(&entries, &styles)
        },
    )
}

/// Hand-shaped near-valid pipelines with random holes: exercises the semantic checks (schema
/// references, expressions, env interpolation) rather than only the parser.
fn near_valid_pipeline() -> impl Strategy<Value = String> {
    let s = || prop::sample::select(SCALARS);
    // Mostly a schema that exists, so the checks behind the schema reference run too.
    let schema = prop_oneof![3 => Just("canonical.order@1"), 1 => s()];
    (s(), schema, s(), s(), s(), s(), s(), style(), style(), style()).prop_map(
        |(name, schema, cond, when, rhai, topic, env, st1, st2, st3)| {
            let q = |s: &str, st: Style| match st {
                Style::Plain | Style::Literal => s.to_string(),
                Style::Double => double_quoted(s),
                Style::Single => format!("'{}'", s.replace('\'', "''")),
            };
            let block = |s: &str, pad: &str| {
                let mut b = String::from("|\n");
                for line in s.split('\n') {
                    b.push_str(pad);
                    b.push_str(line);
                    b.push('\n');
                }
                b.pop();
                b
            };
            format!(
                "pipeline: {name}\n\
                 description: {desc}\n\
                 input:\n  http:\n    path: {path}\n  schema: {schema}\n\
                 steps:\n\
                 \x20 - validate: {schema}\n\
                 \x20 - filter: {cond_q}\n\
                 \x20 - filter:\n      condition: {cond_block}\n\
                 \x20 - switch:\n      cases:\n        - name: a\n          when: {when_q}\n          output:\n            topic: {topic_q}\n\
                 \x20 - script:\n      rhai: {rhai_block}\n\
                 output:\n  topic: {topic_q}\n  schema: {schema}\n\
                 tests:\n  - name: t\n    input: tests/fixtures/x.json\n    expect:\n      assert: [{cond_q}]\n",
                name = q(name, st1),
                desc = q(env, st2),
                path = double_quoted(&format!("/hooks/{env}")),
                schema = q(schema, st3),
                cond_q = q(cond, Style::Double),
                cond_block = block(cond, "        "),
                when_q = q(when, st2),
                topic_q = q(topic, st1),
                rhai_block = block(rhai, "        "),
            )
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Checks

const ORDER_SCHEMA: &str = r#"{"type":"object","properties":{"id":{"type":"string"},"lines":{"type":"array"}},"required":["id"]}"#;

fn load(pipeline: &[u8]) -> Loaded {
    let files = MemFiles::new()
        .with("schemas/canonical/order@1.json", ORDER_SCHEMA)
        .with("pipelines/x.yaml", pipeline.to_vec());
    project::load(
        &files,
        &LoadOptions {
            env: &|name| (name == "X").then(|| "value".to_string()),
            strict_env: false,
            ..LoadOptions::default()
        },
    )
}

/// Every span points inside the file it names; a diagnostic about a file the loader could not
/// read (so it has no source) carries no span.
fn check_spans(loaded: &Loaded) -> Result<(), TestCaseError> {
    let sources = &loaded.project.sources;
    let within =
        |d: &Diagnostic, file: &str, span: railyard_core::Span| -> Result<(), TestCaseError> {
            prop_assert!(span.start <= span.end, "reversed span {span:?} in {d:?}");
            match sources.get(file) {
                Some(src) => prop_assert!(
                    span.end <= src.text.len(),
                    "span {span:?} past the end of `{file}` ({} bytes): {d:?}",
                    src.text.len()
                ),
                None => prop_assert_eq!(
                    span,
                    railyard_core::Span::default(),
                    "span in `{}`, which has no source: {:?}",
                    file,
                    d
                ),
            }
            Ok(())
        };
    for d in &loaded.diagnostics {
        if let Some(file) = &d.file {
            within(d, file, d.span)?;
        }
        for r in &d.related {
            within(d, &r.file, r.span)?;
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn yaml_parse_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        if let Err(e) = railyard_core::yaml::parse(&text) {
            prop_assert!(e.span.start <= e.span.end && e.span.end <= text.len(), "{e:?}");
        }
    }

    #[test]
    fn yaml_parse_never_panics_on_yamlish_text(text in yamlish()) {
        if let Err(e) = railyard_core::yaml::parse(&text) {
            prop_assert!(e.span.start <= e.span.end && e.span.end <= text.len(), "{e:?}");
        }
    }

    #[test]
    fn load_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let loaded = load(&bytes);
        prop_assert!(loaded.has_errors(), "random bytes made a valid pipeline");
        check_spans(&loaded)?;
    }

    #[test]
    fn load_never_panics_on_yamlish_text(text in yamlish()) {
        let loaded = load(text.as_bytes());
        check_spans(&loaded)?;
    }

    #[test]
    fn load_never_panics_on_pipeline_shaped_yaml(doc in pipeline_doc()) {
        let loaded = load(doc.as_bytes());
        check_spans(&loaded)?;
    }

    #[test]
    fn load_never_panics_on_near_valid_pipelines(doc in near_valid_pipeline()) {
        let loaded = load(doc.as_bytes());
        check_spans(&loaded)?;
    }
}

/// The near-valid generator does produce valid pipelines when its holes are filled sensibly,
/// so the properties above reach the semantic checks.
#[test]
fn near_valid_template_is_valid_with_good_values() {
    let doc = "pipeline: tiny\n\
               description: ok\n\
               input:\n  http:\n    path: /hooks/x\n  schema: canonical.order@1\n\
               steps:\n\
               \x20 - validate: canonical.order@1\n\
               \x20 - filter: \"body.id == 'x'\"\n\
               \x20 - filter:\n      condition: |\n        length(body.lines) > `0`\n\
               \x20 - script:\n      rhai: |\n        body\n\
               output:\n  topic: orders\n  schema: canonical.order@1\n";
    let loaded = load(doc.as_bytes());
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
}
