//! YAML → spanned node tree.
//!
//! serde-saphyr parses the text with an explicit [`serde_saphyr::Budget`] (alias bombs, deep
//! nesting, node floods) into a [`Node`] tree in which every node knows its byte span. The
//! typed model is then deserialized from that tree by [`de::NodeDeserializer`], which is what
//! lets every error carry a precise location and a did-you-mean.
//!
//! Why not deserialize the typed model straight from serde-saphyr: we need (a) several errors
//! per file, which means re-deserializing sub-trees after a failure, (b) the raw text of plain
//! scalars (`version: 1.10` is a string to us, not 1.1), (c) the defining offset of a scalar so
//! an embedded JMESPath/Rhai error can point inside it, and (d) `unknown_field` with structured
//! data for suggestions. A tree gives all four.

pub mod de;

use crate::diag::{Code, Span};

/// One YAML node with its location.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    /// Where the node is used (for an alias: the `*alias` token).
    pub span: Span,
    /// Where the node's text is defined (differs from `span` only for aliases and merges).
    pub def_start: usize,
    /// The source text of a plain non-string scalar (`1.10`, `0123`, `true`), so a field that
    /// wants a string gets what the user wrote rather than a reformatted number.
    pub raw: Option<Box<str>>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum NodeKind {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    pub fn new(kind: NodeKind, span: Span) -> Node {
        Node {
            kind,
            span,
            def_start: span.start,
            raw: None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            NodeKind::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The value under a string key of a mapping node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }

    /// The key node and value node under a string key of a mapping node.
    pub fn entry(&self, key: &str) -> Option<(&Node, &Node)> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, v)| (k, v))
    }

    /// A short name of the node's type for messages: "a mapping", "a string", ...
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            NodeKind::Null => "null",
            NodeKind::Bool(_) => "a boolean",
            NodeKind::Int(_) | NodeKind::UInt(_) => "an integer",
            NodeKind::Float(_) => "a number",
            NodeKind::Str(_) => "a string",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }

    /// Converts to JSON. Non-string keys are stringified; non-finite floats become null.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            NodeKind::Null => Value::Null,
            NodeKind::Bool(b) => Value::Bool(*b),
            NodeKind::Int(i) => Value::from(*i),
            NodeKind::UInt(u) => Value::from(*u),
            NodeKind::Float(f) => {
                serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
            }
            NodeKind::Str(s) => Value::String(s.clone()),
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.scalar_text().unwrap_or_default(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// The text of a scalar as the user wrote it (strings as-is, plain scalars raw).
    pub fn scalar_text(&self) -> Option<String> {
        if let Some(raw) = &self.raw {
            return Some(raw.to_string());
        }
        match &self.kind {
            NodeKind::Str(s) => Some(s.clone()),
            NodeKind::Bool(b) => Some(b.to_string()),
            NodeKind::Int(i) => Some(i.to_string()),
            NodeKind::UInt(u) => Some(u.to_string()),
            NodeKind::Float(f) => Some(f.to_string()),
            NodeKind::Null => Some("null".to_string()),
            NodeKind::Seq(_) | NodeKind::Map(_) => None,
        }
    }
}

/// A YAML parse failure: where and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub code: Code,
    pub message: String,
    pub span: Span,
}

/// Limits applied to every YAML file the project loader reads. Pipelines are small and shallow;
/// these budgets are far above any real file and far below what hurts.
const MAX_DEPTH: usize = 128;
const MAX_NODES: usize = 250_000;
const MAX_ALIASES: usize = 10_000;
const MAX_EVENTS: usize = 1_000_000;

/// Parses one YAML document into a spanned tree. `text` must be the whole file so that spans
/// are byte offsets into it.
pub fn parse(text: &str) -> Result<Node, ParseError> {
    let budget = serde_saphyr::budget! {
        max_depth: MAX_DEPTH,
        max_nodes: MAX_NODES,
        max_aliases: MAX_ALIASES,
        max_events: MAX_EVENTS,
    };
    let options = serde_saphyr::options! {
        budget: budget,
        strict_booleans: true,
        with_snippet: false,
    };
    match serde_saphyr::from_str_with_options::<RawNode>(text, options) {
        Ok(raw) => Ok(raw.into_node(text)),
        Err(err) => Err(convert_error(text, &err)),
    }
}

fn convert_error(text: &str, err: &serde_saphyr::Error) -> ParseError {
    use serde_saphyr::MessageFormatter;
    // Unwrap snippet and alias wrappers to the error that happened.
    let mut inner = err;
    while let serde_saphyr::Error::AliasError { error, .. }
    | serde_saphyr::Error::WithSnippet { error, .. } = inner
    {
        inner = error;
    }
    let message = serde_saphyr::DefaultMessageFormatter
        .format_message(inner)
        .into_owned();
    let span = inner
        .location()
        .filter(|loc| loc.line() > 0)
        .map(|loc| {
            let src = crate::diag::SourceText::new("", text);
            Span::at(src.offset_of(loc.line() as usize, loc.column() as usize))
        })
        .unwrap_or_default();
    let (code, message) = match inner {
        serde_saphyr::Error::Budget { breach, .. } => (Code::YamlLimit, describe_breach(breach)),
        _ if message.contains("recursion limit") => (
            Code::YamlLimit,
            format!("YAML nesting is deeper than the parser allows ({message})"),
        ),
        _ => (Code::YamlSyntax, tidy(&message)),
    };
    ParseError {
        code,
        message,
        span,
    }
}

fn describe_breach(breach: &serde_saphyr::budget::BudgetBreach) -> String {
    use serde_saphyr::budget::BudgetBreach as B;
    match breach {
        B::Depth { .. } => format!("YAML nesting is deeper than {MAX_DEPTH} levels"),
        B::Nodes { .. } => format!(
            "YAML expands to more than {MAX_NODES} nodes (an alias bomb or a generated file?)"
        ),
        B::Aliases { .. } => format!("YAML uses more than {MAX_ALIASES} aliases"),
        B::Events { .. } => format!("YAML has more than {MAX_EVENTS} parser events"),
        other => format!("YAML exceeds a safety budget: {other:?}"),
    }
}

/// serde-saphyr messages sometimes end with hints meant for Rust developers; keep the part a
/// pipeline author can act on.
fn tidy(message: &str) -> String {
    let m = message
        .split(", set DuplicateKeyPolicy")
        .next()
        .unwrap_or(message);
    m.trim_end_matches('.').to_string()
}

/// The shape serde-saphyr fills; converted into [`Node`] once parsing succeeded.
struct RawNode(serde_saphyr::Spanned<RawKind>);

enum RawKind {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<RawNode>),
    Map(Vec<(RawNode, RawNode)>),
}

impl RawNode {
    fn into_node(self, text: &str) -> Node {
        let used = self.0.referenced.span();
        let defined = self.0.defined.span();
        let start = used.byte_offset().unwrap_or(0) as usize;
        let len = used.byte_len().unwrap_or(0) as usize;
        let def_start = defined.byte_offset().map_or(start, |o| o as usize);
        let def_len = defined.byte_len().unwrap_or(0) as usize;
        let raw_text = || text.get(def_start..def_start + def_len).map(Box::from);
        let (kind, raw) = match self.0.value {
            RawKind::Null => (NodeKind::Null, None),
            RawKind::Bool(b) => (NodeKind::Bool(b), raw_text()),
            RawKind::Int(i) => (NodeKind::Int(i), raw_text()),
            RawKind::UInt(u) => (NodeKind::UInt(u), raw_text()),
            RawKind::Float(f) => (NodeKind::Float(f), raw_text()),
            RawKind::Str(s) => (NodeKind::Str(s), None),
            RawKind::Seq(items) => (
                NodeKind::Seq(items.into_iter().map(|n| n.into_node(text)).collect()),
                None,
            ),
            RawKind::Map(entries) => (
                NodeKind::Map(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.into_node(text), v.into_node(text)))
                        .collect(),
                ),
                None,
            ),
        };
        // Block collections have an empty span at their first token; give them the span of
        // their first key or item instead, which is what a reader's eye looks for.
        let mut span = Span::new(start, start + len);
        if span.is_empty() {
            match &kind {
                NodeKind::Map(entries) => {
                    if let Some((k, _)) = entries.first() {
                        span = k.span;
                    }
                }
                NodeKind::Seq(items) => {
                    if let Some(first) = items.first() {
                        span = first.span;
                    }
                }
                _ => {}
            }
        }
        Node {
            kind,
            span,
            def_start,
            raw,
        }
    }
}

impl<'de> serde::Deserialize<'de> for RawNode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(RawNode(serde_saphyr::Spanned::<RawKind>::deserialize(d)?))
    }
}

impl<'de> serde::Deserialize<'de> for RawKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> serde::de::Visitor<'de> for RawVisitor {
    type Value = RawKind;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<RawKind, E> {
        Ok(RawKind::Null)
    }
    fn visit_none<E>(self) -> Result<RawKind, E> {
        Ok(RawKind::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<RawKind, D::Error> {
        d.deserialize_any(RawVisitor)
    }
    fn visit_bool<E>(self, v: bool) -> Result<RawKind, E> {
        Ok(RawKind::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<RawKind, E> {
        Ok(RawKind::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<RawKind, E> {
        Ok(RawKind::UInt(v))
    }
    fn visit_i128<E>(self, v: i128) -> Result<RawKind, E> {
        Ok(RawKind::Float(v as f64))
    }
    fn visit_u128<E>(self, v: u128) -> Result<RawKind, E> {
        Ok(RawKind::Float(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<RawKind, E> {
        Ok(RawKind::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<RawKind, E> {
        Ok(RawKind::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<RawKind, E> {
        Ok(RawKind::Str(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<RawKind, E> {
        Ok(RawKind::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<RawKind, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = a.next_element()? {
            items.push(item);
        }
        Ok(RawKind::Seq(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<RawKind, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = a.next_entry()? {
            entries.push(entry);
        }
        Ok(RawKind::Map(entries))
    }
}

/// Maps a character offset inside a scalar's *value* to a byte offset in the source file.
///
/// Embedded JMESPath and Rhai report positions relative to the scalar's value, but the value
/// is not a verbatim slice of the file: quotes, escapes, block indentation and folding sit in
/// between. We walk the source from where the scalar is defined and match the value's
/// characters in order, skipping source characters that the YAML syntax consumed. This is exact
/// for plain, single- and double-quoted and literal block scalars, and degrades to the scalar's
/// start rather than pointing somewhere wrong.
pub fn value_offset_to_source(
    text: &str,
    def_start: usize,
    value: &str,
    char_offset: usize,
) -> usize {
    let start = def_start.min(text.len());
    let src = text.get(start..).unwrap_or_default();
    // In a double-quoted scalar an escape (`\t`, `\u00e9`, `\n`, ...) is one character of the
    // value written as several in the source: it is decoded and matched as a unit.
    let double_quoted = src.starts_with('"');
    let mut src_iter = src.char_indices().peekable();
    if src.starts_with(['"', '\'']) {
        // The opening quote is syntax, never a character of the value.
        src_iter.next();
    }
    for (i, ch) in value.chars().enumerate() {
        // Find `ch` in the source, skipping syntax (quotes, indentation, escapes).
        let mut found = None;
        while let Some((pos, sc)) = src_iter.next() {
            let sc = if double_quoted && sc == '\\' {
                match unescape(&mut src_iter) {
                    Some(c) => c,
                    None => continue,
                }
            } else {
                sc
            };
            if sc == ch {
                found = Some(pos);
                break;
            }
        }
        match found {
            Some(pos) if i == char_offset => return start + pos,
            Some(_) => {}
            None => return start,
        }
    }
    // Offset at the very end of the value: just after the last matched character.
    match src_iter.peek() {
        Some(&(pos, _)) if char_offset >= value.chars().count() => start + pos,
        _ => start,
    }
}

/// Decodes the escape after a `\` in a double-quoted scalar, consuming it from `src`. `None` for
/// an escaped line break (which adds nothing to the value) or a malformed escape.
fn unescape(src: &mut std::iter::Peekable<std::str::CharIndices<'_>>) -> Option<char> {
    let hex = |src: &mut std::iter::Peekable<std::str::CharIndices<'_>>, digits: usize| {
        let mut code = 0u32;
        for _ in 0..digits {
            let d = src.peek()?.1.to_digit(16)?;
            src.next();
            code = code * 16 + d;
        }
        char::from_u32(code)
    };
    let (_, e) = src.next()?;
    Some(match e {
        '0' => '\0',
        'a' => '\x07',
        'b' => '\x08',
        't' | '\t' => '\t',
        'n' => '\n',
        'v' => '\x0B',
        'f' => '\x0C',
        'r' => '\r',
        'e' => '\x1B',
        'N' => '\u{85}',
        '_' => '\u{A0}',
        'L' => '\u{2028}',
        'P' => '\u{2029}',
        'x' => return hex(src, 2),
        'u' => return hex(src, 4),
        'U' => return hex(src, 8),
        '\n' | '\r' => return None,
        // `\"`, `\\`, `\/`, `\ ` stand for themselves.
        other => other,
    })
}
