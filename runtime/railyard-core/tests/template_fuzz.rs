//! Fuzz harness for `railyard_core::expr::render_template_with`, the one renderer behind
//! every templated output setting: with arbitrary literal text and arbitrary message values,
//! each `{{ expr }}` is handed to the placement rule exactly once, in order, with its value's
//! text and the text rendered before it, and the result is the literal text with the placed
//! values in between — so a placement rule (URL encoding, path confinement) sees every value
//! and nothing bypasses it. A null value and a refusal stop the render; arbitrary template
//! text never panics.
//!
//! Default case count is small so `cargo test` stays quick; `PROPTEST_CASES=20000` (or
//! `benches/fuzz/run.sh`) runs the long fuzz.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use railyard_core::expr::{JmesPath, render_template, render_template_with, template_parts};
use serde_json::{Value, json};

mod fuzz;
use fuzz::config;

/// Expressions, and where each finds its value in the data.
const EXPRS: [&str; 4] = ["body.a", "body.\"b c\"", "meta.id", "body.list[0]"];

fn compiled() -> BTreeMap<String, JmesPath> {
    EXPRS
        .iter()
        .map(|e| (e.to_string(), JmesPath::compile(e).unwrap()))
        .collect()
}

fn data(values: &[Value; 4]) -> Value {
    json!({
        "body": {"a": values[0], "b c": values[1], "list": [values[3]]},
        "meta": {"id": values[2]},
    })
}

/// The text a value renders as: strings as they are, other values as JSON.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        3 => any::<String>().prop_map(Value::String),
        2 => "[{}/\\\\.%?#@: \r\n\u{0}]{0,8}".prop_map(Value::String),
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Literal template text: anything but `{{`, and not ending in `{` (which would join the next
/// part's `{{`).
fn literal() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[a-z/:?#.{} %-]{0,12}"]
        .prop_filter("no `{{`", |s| !s.contains("{{") && !s.ends_with('{'))
}

#[derive(Clone, Debug)]
enum Piece {
    Lit(String),
    /// An expression, written with this spacing inside the braces.
    Var(usize, &'static str, &'static str),
}

fn pieces() -> impl Strategy<Value = Vec<Piece>> {
    let space = prop::sample::select(vec!["", " ", "  ", "\t", "\n "]);
    prop::collection::vec(
        prop_oneof![
            literal().prop_map(Piece::Lit),
            (0..EXPRS.len(), space.clone(), space).prop_map(|(i, a, b)| Piece::Var(i, a, b)),
        ],
        0..8,
    )
}

fn template(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Lit(s) => s.clone(),
            Piece::Var(i, a, b) => format!("{{{{{a}{}{b}}}}}", EXPRS[*i]),
        })
        .collect()
}

proptest! {
    #![proptest_config(config(256))]

    /// Every part placed once, in order, with its value's text and what came before; the
    /// output is exactly the literals and the placed values; the first null or refusal
    /// stops the render with its message.
    #[test]
    fn fuzz_every_template_value_goes_through_its_placement(
        pieces in pieces(),
        values in [value(), value(), value(), value()],
        refuse_at in prop::option::of(0usize..8),
    ) {
        let template = template(&pieces);
        let compiled = compiled();
        let mut calls: Vec<(String, String, String)> = Vec::new();
        let result = render_template_with(&template, &compiled, &data(&values), |expr, value, before| {
            let n = calls.len();
            calls.push((expr.to_string(), value.clone(), before.to_string()));
            if refuse_at == Some(n) {
                return Err(format!("refused #{n}"));
            }
            Ok(format!("<{n}:{}>", value.chars().count()))
        });
        // The model: walk the pieces, placing values as the rule above does.
        let mut out = String::new();
        let mut n = 0;
        let mut want: Result<String, String> = Err(String::new());
        let mut stopped = false;
        for p in &pieces {
            match p {
                Piece::Lit(s) => out.push_str(s),
                Piece::Var(i, _, _) => {
                    let Some(t) = text(&values[*i]) else {
                        want = Err(format!("template part `{}` is null", EXPRS[*i]));
                        stopped = true;
                        break;
                    };
                    prop_assert_eq!(calls.get(n), Some(&(EXPRS[*i].to_string(), t.clone(), out.clone())), "call {}", n);
                    if refuse_at == Some(n) {
                        want = Err(format!("refused #{n}"));
                        stopped = true;
                        n += 1;
                        break;
                    }
                    out.push_str(&format!("<{n}:{}>", t.chars().count()));
                    n += 1;
                }
            }
        }
        if !stopped {
            want = Ok(out);
        }
        prop_assert_eq!(calls.len(), n, "placement calls");
        prop_assert_eq!(result, want);
    }

    /// Any text at all as a template: rendered or refused, never a panic; when it renders,
    /// `template_parts` (what `validate` compiles) names exactly the parts it used.
    #[test]
    fn fuzz_any_template_text_renders_or_is_refused(
        template in prop_oneof![any::<String>(), "[{} a-z.\"\\[\\]0-9]{0,40}"],
        values in [value(), value(), value(), value()],
    ) {
        let compiled = compiled();
        let mut used = Vec::new();
        let result = render_template_with(&template, &compiled, &data(&values), |expr, value, _| {
            used.push(expr.to_string());
            Ok(value)
        });
        if result.is_ok() {
            let parts = template_parts(&template).unwrap();
            let names: Vec<String> = parts.into_iter().map(|(p, _)| p).collect();
            prop_assert_eq!(&names, &used);
            prop_assert_eq!(render_template(&template, &compiled, &data(&values)), result);
        }
    }
}
