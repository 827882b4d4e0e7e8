#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
//! `validate` refuses exactly what `run` would refuse: a cron expression the schedule cannot
//! run, two pipelines on one HTTP path. And what only tests need (fixtures) never stops `run`.

use railyard_core::diag::{Diagnostic, SourceText};
use railyard_core::project::{self, LoadOptions, Loaded, MemFiles, Purpose};

fn load(files: &[(&str, &str)], purpose: Purpose) -> Loaded {
    let mut mem = MemFiles::new();
    for (path, text) in files {
        mem.insert(path, *text);
    }
    project::load(
        &mem,
        &LoadOptions {
            purpose,
            ..LoadOptions::default()
        },
    )
}

fn errors(loaded: &Loaded) -> Vec<&Diagnostic> {
    loaded.diagnostics.iter().filter(|d| d.is_error()).collect()
}

/// `file:line:column` of where a diagnostic (or a related location) points.
fn located(loaded: &Loaded, file: &str, offset: usize) -> String {
    let src: &SourceText = &loaded.project.sources[file];
    let at = src.line_col(offset);
    format!("{file}:{}:{}", at.line, at.column)
}

fn schedule(cron: &str) -> String {
    format!(
        "pipeline: poll\ninput:\n  schedule:\n    cron: \"{cron}\"\noutput: {{ topic: ticks }}\n"
    )
}

#[test]
fn cron_shorthands_validate() {
    for cron in ["@hourly", "@daily", "@weekly", "@monthly", "@yearly"] {
        let text = schedule(cron);
        let loaded = load(&[("pipelines/poll.yaml", &text)], Purpose::Check);
        assert!(
            errors(&loaded).is_empty(),
            "{cron}: {:#?}",
            loaded.diagnostics
        );
        assert!(loaded.project.pipelines.contains_key("poll"), "{cron}");
    }
}

#[test]
fn a_cron_expression_the_schedule_cannot_run_is_an_error_at_its_value() {
    for (cron, why) in [
        ("99 * * * *", "invalid cron expression `99 * * * *`"),
        ("0 25 * * *", "invalid cron expression `0 25 * * *`"),
        ("0 9 * * 8", "out of range"),
        ("0 9 * * 5-1", "backwards"),
        ("*/5 * *", "3 fields"),
        ("@sometimes", "@hourly"),
    ] {
        let text = schedule(cron);
        let loaded = load(&[("pipelines/poll.yaml", &text)], Purpose::Check);
        let errs = errors(&loaded);
        assert_eq!(errs.len(), 1, "{cron}: {:#?}", loaded.diagnostics);
        let e = errs[0];
        assert_eq!(e.code.as_str(), "invalid-value", "{cron}");
        assert!(e.message.contains(why), "{cron}: {}", e.message);
        // At the value: line 4, where `cron:` is, at the value's quote (column 11) or just
        // inside it.
        let at = located(&loaded, "pipelines/poll.yaml", e.span.start);
        assert!(
            at == "pipelines/poll.yaml:4:11" || at == "pipelines/poll.yaml:4:12",
            "{cron}: at {at}"
        );
        assert!(!loaded.project.pipelines.contains_key("poll"), "{cron}");
    }
}

fn webhook(name: &str, path: &str, methods: &str) -> String {
    format!(
        "pipeline: {name}\ninput:\n  http:\n    path: {path}\n    methods: [{methods}]\noutput: {{ topic: {name} }}\n"
    )
}

#[test]
fn two_pipelines_on_one_http_path_is_an_error_at_the_second_pointing_at_the_first() {
    let a = webhook("orders-a", "/hooks/orders", "POST");
    // Another method does not help: `run` routes by path alone.
    let b = webhook("orders-b", "/hooks/orders", "PUT");
    let c = webhook("refunds", "/hooks/refunds", "POST");
    let loaded = load(
        &[
            ("pipelines/a.yaml", &a),
            ("pipelines/b.yaml", &b),
            ("pipelines/c.yaml", &c),
        ],
        Purpose::Check,
    );
    let errs = errors(&loaded);
    assert_eq!(errs.len(), 1, "{:#?}", loaded.diagnostics);
    let e = errs[0];
    assert_eq!(e.code.as_str(), "duplicate-name");
    assert!(
        e.message
            .contains("HTTP path `/hooks/orders` is already served by pipeline `orders-a`"),
        "{}",
        e.message
    );
    assert_eq!(
        located(&loaded, "pipelines/b.yaml", e.span.start),
        "pipelines/b.yaml:4:11"
    );
    assert_eq!(e.related.len(), 1, "{e:#?}");
    let first = &e.related[0];
    assert_eq!(
        located(&loaded, &first.file, first.span.start),
        "pipelines/a.yaml:4:11"
    );
    assert!(first.message.contains("orders-a"), "{}", first.message);
    assert!(
        e.label
            .as_deref()
            .is_some_and(|l| l.contains("pipelines/a.yaml:4")),
        "{e:#?}"
    );
    // The second is not compiled (so `run` never sees two routes); the others are.
    let names: Vec<&str> = loaded
        .project
        .pipelines
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(names, vec!["orders-a", "refunds"]);
}

#[test]
fn distinct_http_paths_validate() {
    let a = webhook("orders", "/hooks/orders", "POST");
    let b = webhook("orders-v2", "/hooks/orders/v2", "POST");
    let loaded = load(
        &[("pipelines/a.yaml", &a), ("pipelines/b.yaml", &b)],
        Purpose::Check,
    );
    assert!(errors(&loaded).is_empty(), "{:#?}", loaded.diagnostics);
    assert_eq!(loaded.project.pipelines.len(), 2);
}

const WITH_FIXTURES: &str = r#"pipeline: audit
input: { stdin: {} }
output: { topic: audited }
tests:
  - name: an order is passed on
    input: tests/fixtures/order.json
    expect:
      output: { file: tests/fixtures/order.out.json }
"#;

#[test]
fn a_missing_fixture_is_an_error_to_check_and_a_warning_to_run() {
    let files = [("pipelines/audit.yaml", WITH_FIXTURES)];

    let checked = load(&files, Purpose::Check);
    let errs = errors(&checked);
    assert_eq!(errs.len(), 2, "{:#?}", checked.diagnostics);
    for e in &errs {
        assert_eq!(e.code.as_str(), "missing-file");
        assert!(e.message.contains("does not exist"), "{}", e.message);
    }
    assert!(!checked.project.pipelines.contains_key("audit"));

    let run = load(&files, Purpose::Run);
    assert!(errors(&run).is_empty(), "{:#?}", run.diagnostics);
    let warnings: Vec<_> = run
        .diagnostics
        .iter()
        .filter(|d| !d.is_error() && d.code.as_str() == "missing-file")
        .collect();
    assert_eq!(warnings.len(), 2, "{:#?}", run.diagnostics);
    // Same places as the errors.
    let spans = |ds: &[&Diagnostic]| ds.iter().map(|d| d.span).collect::<Vec<_>>();
    assert_eq!(spans(&warnings), spans(&errs));
    assert!(run.project.pipelines.contains_key("audit"));

    // With the fixtures there, neither purpose says anything.
    let complete = [
        ("pipelines/audit.yaml", WITH_FIXTURES),
        ("tests/fixtures/order.json", "{}"),
        ("tests/fixtures/order.out.json", "{}"),
    ];
    for purpose in [Purpose::Check, Purpose::Run] {
        let loaded = load(&complete, purpose);
        assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
    }
}

/// What is wrong in the pipeline itself stays an error for `run`.
#[test]
fn run_purpose_softens_only_fixtures() {
    let text = schedule("99 * * * *");
    let loaded = load(&[("pipelines/poll.yaml", &text)], Purpose::Run);
    assert_eq!(errors(&loaded).len(), 1, "{:#?}", loaded.diagnostics);
}

/// Message content may fill an HTTP output's path and query (encoded there), never its
/// scheme, host or port: `validate` points at the template.
#[test]
fn a_template_in_the_host_of_an_http_output_is_an_error_at_the_template() {
    let pipeline = |url: &str| {
        format!(
            "pipeline: p\ninput:\n  http: {{ path: /in }}\noutput:\n  http: {{ url: \"{url}\" }}\n"
        )
    };
    for (url, column) in [
        ("http://{{ body.host }}/orders", 24),
        ("https://erp.example.com:{{ body.port }}/x", 41),
        ("{{ body.callback }}", 17),
        // Parsers skip the third slash: the value would be the host (found by fuzzing).
        ("http:///{{ body.host }}/orders", 25),
    ] {
        let text = pipeline(url);
        let loaded = load(&[("pipelines/p.yaml", &text)], Purpose::Run);
        let errs = errors(&loaded);
        assert_eq!(errs.len(), 1, "{url}: {:#?}", loaded.diagnostics);
        assert!(
            errs[0].message.contains("scheme, host or port"),
            "{}",
            errs[0].message
        );
        assert_eq!(
            located(&loaded, "pipelines/p.yaml", errs[0].span.start),
            format!("pipelines/p.yaml:5:{column}"),
            "{url}"
        );
    }
    for url in [
        "http://erp.example.com/orders/{{ body.id }}",
        "http://erp.example.com?id={{ body.id }}",
    ] {
        let text = pipeline(url);
        let loaded = load(&[("pipelines/p.yaml", &text)], Purpose::Run);
        assert!(
            errors(&loaded).is_empty(),
            "{url}: {:#?}",
            loaded.diagnostics
        );
    }
}
