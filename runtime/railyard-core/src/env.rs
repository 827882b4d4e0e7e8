//! `${env:NAME}` references in YAML string values.
//!
//! Any string scalar may contain `${env:NAME}` or `${env:NAME:-default}`; `$${` writes a literal
//! `${`. References are resolved on the node tree before typing, so every setting supports them
//! and every missing variable is reported at its exact position. The lookup is injected:
//! this crate never reads the process environment itself.

use crate::diag::Span;
use crate::yaml::{Node, NodeKind, value_offset_to_source};

/// A reference to a variable that the lookup did not know and that had no default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingVar {
    pub name: String,
    pub span: Span,
}

/// Replaces references in every string scalar under `node`. Missing variables are left as
/// written and returned; malformed references (`${env:}` or an unclosed `${`) are returned
/// with an empty name.
pub fn interpolate(
    node: &mut Node,
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Vec<MissingVar> {
    interpolate_noting(node, text, lookup, &mut |_, _, _| {})
}

/// [`interpolate`], telling `note` of every value it put in: the nearest mapping key above
/// the string (if any), the variable's name and the value (for [`crate::redact::Secrets`]).
pub fn interpolate_noting(
    node: &mut Node,
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    note: &mut dyn FnMut(Option<&str>, &str, &str),
) -> Vec<MissingVar> {
    let mut missing = Vec::new();
    let mut stack: Vec<(&mut Node, Option<String>)> = vec![(node, None)];
    while let Some((n, key)) = stack.pop() {
        match &mut n.kind {
            NodeKind::Str(s) if s.contains("${") => {
                let used = std::cell::RefCell::new(Vec::new());
                let noting = |name: &str| {
                    let v = lookup(name);
                    if let Some(v) = &v {
                        used.borrow_mut().push((name.to_string(), v.clone()));
                    }
                    v
                };
                let (out, miss) = expand(s, &noting);
                for (name, value) in used.into_inner() {
                    note(key.as_deref(), &name, &value);
                }
                for (name, char_offset) in miss {
                    let start = value_offset_to_source(text, n.def_start, s, char_offset);
                    let len = name.len() + "${env:}".len();
                    missing.push(MissingVar {
                        name,
                        span: Span::new(start, (start + len).min(text.len())),
                    });
                }
                *s = out;
            }
            NodeKind::Seq(items) => stack.extend(items.iter_mut().map(|i| (i, key.clone()))),
            NodeKind::Map(entries) => stack.extend(entries.iter_mut().map(|(k, v)| {
                let key = match &k.kind {
                    NodeKind::Str(s) => Some(s.clone()),
                    _ => key.clone(),
                };
                (v, key)
            })),
            _ => {}
        }
    }
    missing.sort_by_key(|m| m.span.start);
    missing
}

/// Expands one string. Returns the result and the (name, char offset) of each missing variable.
pub fn expand(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> (String, Vec<(String, usize)>) {
    let mut out = String::with_capacity(s.len());
    let mut missing = Vec::new();
    let mut rest = s;
    let mut consumed_chars = 0usize;
    while let Some(pos) = rest.find("${") {
        // `$${` is an escaped literal `${`.
        if pos > 0 && rest.as_bytes()[pos - 1] == b'$' {
            out.push_str(&rest[..pos - 1]);
            out.push_str("${");
            consumed_chars += rest[..pos + 2].chars().count();
            rest = &rest[pos + 2..];
            continue;
        }
        out.push_str(&rest[..pos]);
        let ref_start_chars = consumed_chars + rest[..pos].chars().count();
        let after = &rest[pos + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[pos..]);
            rest = "";
            break;
        };
        let inner = &after[..end];
        let whole = &rest[pos..pos + 2 + end + 1];
        match inner.strip_prefix("env:") {
            Some(spec) => {
                let (name, default) = match spec.split_once(":-") {
                    Some((n, d)) => (n, Some(d)),
                    None => (spec, None),
                };
                match (lookup(name), default) {
                    (Some(v), _) if !name.is_empty() => out.push_str(&v),
                    (None, Some(d)) if !name.is_empty() => out.push_str(d),
                    _ => {
                        missing.push((name.to_string(), ref_start_chars));
                        out.push_str(whole);
                    }
                }
            }
            // Not ours (e.g. a template of another system): leave it alone.
            None => out.push_str(whole),
        }
        consumed_chars += rest[..pos + 2 + end + 1].chars().count();
        rest = &rest[pos + 2 + end + 1..];
    }
    out.push_str(rest);
    (out, missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<String> {
        (name == "SECRET").then(|| "s3cr3t".to_string())
    }

    #[test]
    fn expands_known_defaults_and_escapes() {
        assert_eq!(expand("k=${env:SECRET}", &lookup).0, "k=s3cr3t");
        assert_eq!(expand("${env:NOPE:-dflt}", &lookup).0, "dflt");
        assert_eq!(expand("$${env:SECRET}", &lookup).0, "${env:SECRET}");
        assert_eq!(expand("${other}", &lookup).0, "${other}");
    }

    #[test]
    fn reports_missing_with_char_offsets() {
        let (out, missing) = expand("ä ${env:NOPE} ${env:SECRET}", &lookup);
        assert_eq!(out, "ä ${env:NOPE} s3cr3t");
        assert_eq!(missing, vec![("NOPE".to_string(), 2)]);
    }
}
