//! Where a JSON Pointer into a schema document is in the schema's source text.
//!
//! Schema files are JSON or YAML; JSON is (for the files schemas are made of) YAML flow
//! syntax, so one spanned parse ([`crate::yaml::parse`]) serves both. The pointer is walked
//! through the node tree; the span returned is the *key* of the last segment found (the
//! keyword: `"required"`, `"maxLength"`), or the element for an array index. A pointer that
//! goes further than the document (a keyword present in one version and absent in the other)
//! stops at the deepest node that exists, so the location is still the right object.

use crate::diag::Span;
use crate::yaml::{self, Node};

/// Decodes one JSON Pointer reference token (`~1` → `/`, `~0` → `~`).
pub fn unescape_token(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Encodes a key as a JSON Pointer reference token.
pub fn escape_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The span in `text` of the deepest existing node on `pointer` (`""` is the whole
/// document, its first byte). `None` when the text does not parse.
pub fn locate_pointer(text: &str, pointer: &str) -> Option<Span> {
    let root = yaml::parse(text).ok()?;
    Some(walk(&root, pointer))
}

/// [`locate_pointer`] on an already parsed node tree.
pub fn walk(root: &Node, pointer: &str) -> Span {
    let mut node = root;
    let mut span = Span::at(root.span.start);
    if pointer.is_empty() {
        return span;
    }
    for raw in pointer.trim_start_matches('/').split('/') {
        let token = unescape_token(raw);
        if let Some((k, v)) = node.entry(&token) {
            span = k.span;
            node = v;
        } else if let Some(item) = node
            .as_seq()
            .and_then(|items| token.parse::<usize>().ok().and_then(|i| items.get(i)))
        {
            span = item.span;
            node = item;
        } else {
            break;
        }
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: &str = "{\n  \"type\": \"object\",\n  \"properties\": {\n    \"a/b\": { \"enum\": [\"x\", \"y\"] }\n  }\n}\n";

    fn text_at(text: &str, span: Span) -> &str {
        &text[span.start..span.end]
    }

    #[test]
    fn finds_keys_in_json() {
        let span = locate_pointer(JSON, "/properties/a~1b/enum").expect("parses");
        assert_eq!(text_at(JSON, span), "\"enum\"");
        let span = locate_pointer(JSON, "/properties/a~1b/enum/1").expect("parses");
        assert_eq!(text_at(JSON, span), "\"y\"");
    }

    #[test]
    fn stops_at_the_deepest_existing_node() {
        let span = locate_pointer(JSON, "/properties/a~1b/maxLength").expect("parses");
        assert_eq!(text_at(JSON, span), "\"a/b\"");
        let span = locate_pointer(JSON, "/required").expect("parses");
        assert_eq!(span.start, 0);
    }

    #[test]
    fn finds_keys_in_yaml() {
        let text = "type: object\nproperties:\n  sku:\n    type: string\n    maxLength: 20\n";
        let span = locate_pointer(text, "/properties/sku/maxLength").expect("parses");
        assert_eq!(text_at(text, span), "maxLength");
    }

    #[test]
    fn tokens_round_trip() {
        assert_eq!(unescape_token(&escape_token("a/~b")), "a/~b");
    }
}
