//! Fuzz harness for the output templates, where message content meets a URL or a file path:
//! for arbitrary message values (any Unicode, `/`, `\`, `..`, `%`, `?`, `#`, `@`, `:`,
//! CR/LF/NUL, long strings, numbers, nested objects), the HTTP sink's `render_url` keeps the
//! configured scheme, host, port and fixed path segments and carries each value as data that
//! decodes back to its text, or refuses; the file sink's `render_path` stays in its
//! template's directory, with the template's components, or refuses; `past_url_authority`
//! (the rule `validate` shares) says a template may stand only where no appended text can
//! change the authority. Never a panic.
//!
//! Default case count is small so `cargo test` stays quick; `PROPTEST_CASES=20000` (or
//! `benches/fuzz/run.sh`) runs the long fuzz.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::{Component, Path};
use std::sync::LazyLock;

use percent_encoding::percent_decode_str;
use proptest::prelude::*;
use railyard_connectors::file::render_path;
use railyard_connectors::http::render_url;
use railyard_connectors::sink::Item;
use railyard_core::engine::Message;
use railyard_core::expr::past_url_authority;
use railyard_core::project::{LoadOptions, MemFiles, OutputDef, load};
use reqwest::Url;
use serde_json::{Value, json};

#[path = "../../railyard-core/tests/fuzz/mod.rs"]
mod fuzz;
use fuzz::config;

const VARS: [&str; 4] = ["body.a", "body.b", "body.c", "body.d"];

/// One output whose templates compile the four expressions every template below uses; the
/// template text itself is passed to the renderer, so the same compiled parts serve them all.
static OUTPUT: LazyLock<OutputDef> = LazyLock::new(|| {
    let mut files = MemFiles::new();
    files.insert(
        "pipelines/out.yaml",
        "pipeline: out\ninput:\n  http: { path: /in }\noutput:\n  http: { url: \"https://erp.example.com/{{ body.a }}/{{ body.b }}?c={{ body.c }}#{{ body.d }}\" }\n",
    );
    let loaded = load(&files, &LoadOptions::default());
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    let output = loaded.project.pipelines["out"].outputs[0].clone();
    for v in VARS {
        assert!(output.templates.contains_key(v), "{v} not compiled");
    }
    output
});

/// A template as literal text and `{{ var }}` parts.
#[derive(Clone, Copy, Debug)]
enum Piece {
    Lit(&'static str),
    Var(usize),
}

/// What a URL template fixes: scheme, host, port, user, and the structure around the values.
struct UrlCase {
    pieces: &'static [Piece],
    scheme: &'static str,
    host: &'static str,
    port: Option<u16>,
    user: &'static str,
}

use Piece::{Lit, Var};

const URLS: &[UrlCase] = &[
    UrlCase {
        pieces: &[
            Lit("https://erp.example.com:8443/api/v1/"),
            Var(0),
            Lit("/orders/"),
            Var(1),
            Lit("?store="),
            Var(2),
            Lit("&x=1#"),
            Var(3),
        ],
        scheme: "https",
        host: "erp.example.com",
        port: Some(8443),
        user: "",
    },
    // Two values in one segment (`name.ext`).
    UrlCase {
        pieces: &[
            Lit("http://127.0.0.1:8089/files/"),
            Var(0),
            Lit("."),
            Var(1),
        ],
        scheme: "http",
        host: "127.0.0.1",
        port: Some(8089),
        user: "",
    },
    UrlCase {
        pieces: &[
            Lit("http://[::1]:9000/"),
            Var(0),
            Var(1),
            Lit("/x?"),
            Var(2),
        ],
        scheme: "http",
        host: "[::1]",
        port: Some(9000),
        user: "",
    },
    UrlCase {
        pieces: &[
            Lit("http://bc:pw@erp.example.com/orders/"),
            Var(0),
            Lit("/"),
        ],
        scheme: "http",
        host: "erp.example.com",
        port: Some(80),
        user: "bc",
    },
    UrlCase {
        pieces: &[Lit("https://erp.example.com/orders/."), Var(0)],
        scheme: "https",
        host: "erp.example.com",
        port: Some(443),
        user: "",
    },
];

/// File path templates.
const PATHS: &[&[Piece]] = &[
    &[Lit("exports/"), Var(0), Lit("/"), Var(1), Lit(".jsonl")],
    &[Lit("out/"), Var(0), Lit("."), Var(1)],
    // Relative, as every file output path is (an absolute one does not validate).
    &[Lit("var/exports/"), Var(0), Lit("-"), Var(2), Lit(".json")],
    &[Var(0), Lit("/data.jsonl")],
    &[Lit("out/."), Var(0)],
    &[Lit("out/"), Var(0), Var(1)],
];

fn template(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .map(|p| match p {
            Lit(s) => s.to_string(),
            Var(i) => format!("{{{{ {} }}}}", VARS[*i]),
        })
        .collect()
}

/// The text a value renders as (strings as they are, others as JSON); `None` for null.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The template with each value's raw text in place, with which pieces held a value: split
/// later into segments, it is what the decoded result must be.
fn expected(pieces: &[Piece], texts: &[String]) -> Vec<(String, bool)> {
    // (char, from a value)
    let mut out = Vec::new();
    for p in pieces {
        match p {
            Lit(s) => out.extend(s.chars().map(|c| (c.to_string(), false))),
            Var(i) => {
                // A marker entry so an empty value still marks its segment.
                out.push((String::new(), true));
                out.extend(texts[*i].chars().map(|c| (c.to_string(), true)));
            }
        }
    }
    out
}

/// Splits `(piece, from a value)` runs at separator characters of the literal text only
/// (values are data: their `/` is not a separator).
fn split_at(chars: &[(String, bool)], seps: &[char]) -> Vec<(String, bool)> {
    let mut parts = vec![(String::new(), false)];
    for (c, from_value) in chars {
        let is_sep = !from_value && c.chars().next().is_some_and(|c| seps.contains(&c));
        if is_sep {
            parts.push((String::new(), false));
            continue;
        }
        if let Some(last) = parts.last_mut() {
            last.0.push_str(c);
            last.1 |= *from_value;
        }
    }
    parts
}

fn message(values: &[Value; 4]) -> Message {
    let body = json!({"a": values[0], "b": values[1], "c": values[2], "d": values[3]});
    Message::from_envelope(json!({"body": body, "meta": {"id": "m-1"}})).unwrap()
}

fn item<'a>(message: &'a Message) -> Item<'a> {
    Item {
        message,
        output: &OUTPUT,
        pipeline: "out",
        origin: "m-1",
        index: 0,
        output_index: 0,
    }
}

/// Strings a sender would try, and arbitrary Unicode.
fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[./\\\\%?#@:&=+;, a-zA-Z0-9\r\n\t\u{0}~\u{e9}\u{202e}\u{FEFF}-]{0,16}",
        prop::sample::select(vec![
            "",
            ".",
            "..",
            "...",
            "%2e",
            "%2e%2e",
            ".%2E",
            "%00",
            "/",
            "\\",
            "../..",
            "..\\..",
            "a/../../b",
            "@evil.com",
            "evil.com:80",
            "?x=1",
            "#frag",
            "//evil.com",
            "\r\nX: 1",
            "\u{0}",
            "~",
            "-",
            "%",
            "%%",
            "%zz",
            "+",
            " ",
            "C:\\x",
            "\u{ff0e}\u{ff0e}",
        ])
        .prop_map(str::to_string),
        ("[a-z%./]{1,4}", 1usize..3000).prop_map(|(s, n)| s.repeat(n)),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        4 => hostile_string().prop_map(Value::String),
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(hostile_string(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn values() -> impl Strategy<Value = [Value; 4]> {
    [value(), value(), value(), value()]
}

fn decoded(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Checks one URL render against its case; returns why it is wrong.
fn check_url(case: &UrlCase, values: &[Value; 4]) -> Result<(), String> {
    let msg = message(values);
    let rendered = render_url(&template(case.pieces), &item(&msg));
    let used: Vec<usize> = case
        .pieces
        .iter()
        .filter_map(|p| match p {
            Var(i) => Some(*i),
            Lit(_) => None,
        })
        .collect();
    if used.iter().any(|i| values[*i].is_null()) {
        return match rendered {
            Err(_) => Ok(()),
            Ok(u) => Err(format!("a null value rendered: {u}")),
        };
    }
    let texts: Vec<String> = values.iter().map(|v| text(v).unwrap_or_default()).collect();
    let chars = expected(case.pieces, &texts);
    // Scheme and authority, path, query and fragment of the template with the raw values.
    let (head, fragment) = match chars.iter().position(|(c, v)| !v && c == "#") {
        Some(i) => (&chars[..i], Some(&chars[i + 1..])),
        None => (&chars[..], None),
    };
    let (head, query) = match head.iter().position(|(c, v)| !v && c == "?") {
        Some(i) => (&head[..i], Some(&head[i + 1..])),
        None => (head, None),
    };
    let authority_end = {
        let scheme_end = case.scheme.len() + 3;
        head.iter()
            .skip(scheme_end)
            .position(|(c, v)| !v && c == "/")
            .map_or(head.len(), |p| p + scheme_end)
    };
    let segments = split_at(&head[authority_end + 1..], &['/']);
    // A segment holding a value that ends up empty, `.` or `..` changes the path: refused.
    let path_changing = segments
        .iter()
        .any(|(s, from_value)| *from_value && matches!(s.as_str(), "" | "." | ".."));
    // A `.` or `..` value in the path is refused whatever its segment holds besides.
    let mut in_path = true;
    let mut dot_value = false;
    for p in case.pieces {
        match p {
            Lit(s) => in_path &= !s.contains(['?', '#']),
            Var(i) => dot_value |= in_path && matches!(texts[*i].as_str(), "." | ".."),
        }
    }
    let url = match rendered {
        Err(_) if path_changing || dot_value => return Ok(()),
        Err(e) => return Err(format!("refused a value it can carry: {}", e.message)),
        Ok(_) if path_changing || dot_value => {
            return Err(format!(
                "a value made a path segment empty, `.` or `..`, or is `.` or `..`: {segments:?}"
            ));
        }
        Ok(u) => u,
    };
    let parsed = Url::parse(&url).map_err(|e| format!("{url} does not parse: {e}"))?;
    let host = parsed.host_str().unwrap_or_default();
    if parsed.scheme() != case.scheme
        || host != case.host
        || parsed.port_or_known_default() != case.port
        || parsed.username() != case.user
    {
        return Err(format!(
            "{url}: authority is {}://{}@{host}:{:?}",
            parsed.scheme(),
            parsed.username(),
            parsed.port_or_known_default()
        ));
    }
    let got: Vec<String> = parsed
        .path_segments()
        .map(|s| s.map(decoded).collect())
        .unwrap_or_default();
    let want: Vec<String> = segments.iter().map(|(s, _)| s.clone()).collect();
    if got != want {
        return Err(format!("{url}: path segments {got:?}, want {want:?}"));
    }
    let want_query = query.map(|q| {
        split_at(q, &['&'])
            .into_iter()
            .map(|(pair, _)| pair)
            .collect::<Vec<_>>()
    });
    let got_query = parsed.query().map(|q| {
        q.split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, v)) => format!("{}={}", decoded(k), decoded(v)),
                None => decoded(pair),
            })
            .collect::<Vec<_>>()
    });
    if got_query != want_query {
        return Err(format!("{url}: query {got_query:?}, want {want_query:?}"));
    }
    let want_fragment = fragment.map(|f| f.iter().map(|(c, _)| c.as_str()).collect::<String>());
    let got_fragment = parsed.fragment().map(decoded);
    if got_fragment != want_fragment {
        return Err(format!(
            "{url}: fragment {got_fragment:?}, want {want_fragment:?}"
        ));
    }
    Ok(())
}

/// Checks one path render against its template; returns why it is wrong.
fn check_path(pieces: &[Piece], values: &[Value; 4]) -> Result<(), String> {
    let msg = message(values);
    let template = template(pieces);
    let rendered = render_path(&template, &item(&msg));
    let used: Vec<usize> = pieces
        .iter()
        .filter_map(|p| match p {
            Var(i) => Some(*i),
            Lit(_) => None,
        })
        .collect();
    let texts: Vec<Option<String>> = values.iter().map(text).collect();
    let components = split_at(
        &expected(
            pieces,
            &texts
                .iter()
                .map(|t| t.clone().unwrap_or_default())
                .collect::<Vec<_>>(),
        ),
        &['/'],
    );
    // Why a render may be refused: a null, a separator or NUL in a value, or a component
    // holding a value that ends up empty, `.` or `..`.
    let justified = used.iter().any(|i| match &texts[*i] {
        None => true,
        Some(t) => t.contains(['/', '\\', '\0']) || t == "." || t == "..",
    }) || components
        .iter()
        .any(|(c, from_value)| *from_value && matches!(c.as_str(), "" | "." | ".."));
    let path = match rendered {
        Err(_) if justified => return Ok(()),
        Err(e) => return Err(format!("refused a value it can carry: {}", e.message)),
        Ok(p) if justified => return Err(format!("rendered `{p:?}`, which should be refused")),
        Ok(p) => p,
    };
    let absolute = Path::new(&template).is_absolute();
    let got: Vec<Component> = Path::new(&path).components().collect();
    if got.iter().any(|c| matches!(c, Component::ParentDir)) {
        return Err(format!("{path:?} has a `..` component"));
    }
    if Path::new(&path).is_absolute() != absolute {
        return Err(format!("{path:?}: absolute is not as in the template"));
    }
    let want: Vec<String> = components
        .into_iter()
        .map(|(c, _)| c)
        .filter(|c| !(absolute && c.is_empty()))
        .collect();
    let got: Vec<String> = got
        .iter()
        .filter(|c| !matches!(c, Component::RootDir))
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if got != want {
        return Err(format!("{path:?}: components {got:?}, want {want:?}"));
    }
    Ok(())
}

/// Percent-encoded data as a URL value renders: unreserved characters and `%XX`.
fn encoded() -> impl Strategy<Value = String> {
    "([A-Za-z0-9._~-]|%[0-9A-F]{2}){0,12}"
}

proptest! {
    #![proptest_config(config(256))]

    /// Every URL template: the configured scheme, host, port and user; the fixed segments;
    /// each value decoding back to its text, or a refusal with a reason.
    #[test]
    fn fuzz_rendered_urls_keep_their_endpoint(case in 0..URLS.len(), values in values()) {
        let result = check_url(&URLS[case], &values);
        prop_assert!(result.is_ok(), "{}: {}", template(URLS[case].pieces), result.unwrap_err());
    }

    /// Every path template: no `..`, never absolute, the template's
    /// components with the values in them, or a refusal with a reason.
    #[test]
    fn fuzz_rendered_paths_stay_in_their_directory(case in 0..PATHS.len(), values in values()) {
        let result = check_path(PATHS[case], &values);
        prop_assert!(result.is_ok(), "{}: {}", template(PATHS[case]), result.unwrap_err());
    }

    /// `past_url_authority`: when it lets a template stand after `prefix`, no data appended
    /// there changes the scheme, host, port or user of the URL.
    #[test]
    fn fuzz_text_past_the_authority_cannot_change_it(
        prefix in "(https?|ftp|ws|x-y)(:|://|:///|:////|:/\\\\|://\\\\)[a-z0-9.:@/\\\\?#\\[\\]%-]{0,14}",
        a in encoded(),
        b in encoded(),
    ) {
        if past_url_authority(&prefix) {
            let (x, y) = (Url::parse(&format!("{prefix}{a}")), Url::parse(&format!("{prefix}{b}")));
            if let (Ok(x), Ok(y)) = (x, y) {
                let authority = |u: &Url| (u.scheme().to_string(), u.username().to_string(), u.password().map(str::to_string), u.host_str().map(str::to_string), u.port());
                prop_assert_eq!(authority(&x), authority(&y), "{} + {} / {}", prefix, a, b);
            }
        }
    }
}

/// The cases the harness found, kept as plain tests.
#[test]
fn values_that_leave_a_segment_empty_or_a_dot_are_refused() {
    let s = |v: &str| Value::String(v.to_string());
    let empty = [s(""), s(""), s("x"), s("y")];
    // `/orders/{{ a }}/` with an empty value: `/orders//`; `{{ a }}.{{ b }}` both empty: `.`.
    for case in [&URLS[0], &URLS[1], &URLS[3], &URLS[4]] {
        let msg = message(&empty);
        let e = render_url(&template(case.pieces), &item(&msg)).unwrap_err();
        assert!(e.message.contains("would change the path"), "{}", e.message);
    }
    for pieces in [PATHS[0], PATHS[1], PATHS[3], PATHS[4], PATHS[5]] {
        let msg = message(&empty);
        let e = render_path(&template(pieces), &item(&msg)).unwrap_err();
        assert!(
            e.message.contains("would change the directory"),
            "{}",
            e.message
        );
    }
    // A value that fills part of a segment may be empty; `x..` is a name, not a dot segment.
    let msg = message(&[s(""), s("."), s("c"), s("d")]);
    assert!(render_url("http://h/files/x{{ body.a }}", &item(&msg)).is_ok());
    assert!(render_path("out/x{{ body.a }}.jsonl", &item(&msg)).is_ok());
    // `http:///{{ host }}`: the value would be the host.
    let msg = message(&[s("evil.example"), s("b"), s("c"), s("d")]);
    let e = render_url("http:///{{ body.a }}/x", &item(&msg)).unwrap_err();
    assert!(e.message.contains("scheme, host or port"), "{}", e.message);
}
