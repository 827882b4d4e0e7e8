//! A serde `Deserializer` over a [`Node`] tree whose errors carry spans and suggestions.
//!
//! Errors start without a location; the innermost node that sees an error without one stamps
//! its own span on it. `unknown_field` and `unknown_variant` keep the expected names so the
//! error can suggest the nearest one.

use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use super::{Node, NodeKind};
use crate::diag::{Code, Span};
use crate::suggest::did_you_mean;

/// A deserialization error with the location of the node that caused it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeError {
    pub code: Code,
    pub message: String,
    pub span: Option<Span>,
    pub help: Option<String>,
}

impl DeError {
    fn new(code: Code, message: String) -> DeError {
        DeError {
            code,
            message,
            span: None,
            help: None,
        }
    }

    fn or_span(mut self, span: Span) -> DeError {
        if self.span.is_none() {
            self.span = Some(span);
        }
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError::new(Code::InvalidValue, msg.to_string())
    }

    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        DeError::new(
            Code::InvalidValue,
            format!("expected {exp}, found {}", describe_unexpected(&unexp)),
        )
    }

    fn invalid_value(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        DeError::new(
            Code::InvalidValue,
            format!(
                "invalid value {}: expected {exp}",
                describe_unexpected(&unexp)
            ),
        )
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let mut e = DeError::new(Code::UnknownKey, format!("unknown key `{field}`"));
        e.help = Some(suggest_help(field, expected, "keys"));
        e
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let mut e = DeError::new(Code::InvalidValue, format!("unknown value `{variant}`"));
        e.help = Some(suggest_help(variant, expected, "values"));
        e
    }

    fn missing_field(field: &'static str) -> Self {
        DeError::new(Code::MissingKey, format!("missing key `{field}`"))
    }

    fn duplicate_field(field: &'static str) -> Self {
        DeError::new(Code::YamlSyntax, format!("duplicate key `{field}`"))
    }
}

fn describe_unexpected(u: &de::Unexpected<'_>) -> String {
    match u {
        de::Unexpected::Str(s) => format!("string \"{s}\""),
        de::Unexpected::Map => "a mapping".to_string(),
        de::Unexpected::Seq => "a list".to_string(),
        de::Unexpected::Unit => "null".to_string(),
        other => other.to_string(),
    }
}

fn suggest_help(got: &str, expected: &[&str], what: &str) -> String {
    match did_you_mean(got, expected.iter().copied()) {
        Some(best) => format!("did you mean `{best}`?"),
        None if expected.is_empty() => format!("no {what} are allowed here"),
        None => format!("expected one of: {}", expected.join(", ")),
    }
}

/// Name of the private struct that [`crate::Spanned`] asks for; we answer with the span.
pub(crate) const SPANNED_NAME: &str = "$railyard::Spanned";
/// Private struct names through which [`crate::model::OneOrMany`] and
/// [`crate::model::OrShort`] ask for "whatever this node is": a sequence or string arrives as
/// usual, a single mapping arrives through `visit_newtype_struct` with this deserializer, so
/// spans and suggestions survive inside it.
pub(crate) const ONE_OR_MANY_NAME: &str = "$railyard::OneOrMany";
pub(crate) const OR_SHORT_NAME: &str = "$railyard::OrShort";
/// Private struct name of [`crate::model::Lenient`]: a section that may fail on its own.
pub(crate) const LENIENT_NAME: &str = "$railyard::Lenient";

thread_local! {
    /// The error of the innermost lenient section that just failed, waiting for
    /// [`crate::model::Lenient`] to collect it.
    static PENDING: std::cell::RefCell<Option<DeError>> = const { std::cell::RefCell::new(None) };
    /// Errors of failed lenient sections during the current [`from_node_lenient`] call.
    static SINK: std::cell::RefCell<Option<Vec<DeError>>> = const { std::cell::RefCell::new(None) };
}

/// Called by [`crate::model::Lenient`] when its section failed: moves the pending error into
/// the sink. Returns false when no lenient deserialization is in progress (the error must then
/// propagate).
pub(crate) fn absorb_pending() -> bool {
    let Some(err) = PENDING.with(|p| p.borrow_mut().take()) else {
        return false;
    };
    SINK.with(|s| match s.borrow_mut().as_mut() {
        Some(sink) => {
            sink.push(err);
            true
        }
        None => false,
    })
}

/// Deserializes `T` from `node`, letting [`crate::model::Lenient`] sections fail on their own:
/// returns the value (if the parts outside lenient sections succeeded) and every error.
pub fn from_node_lenient<'a, T: de::Deserialize<'a>>(node: &'a Node) -> (Option<T>, Vec<DeError>) {
    let outer = SINK.with(|s| s.borrow_mut().replace(Vec::new()));
    let result = from_node::<T>(node);
    let mut errors = SINK
        .with(|s| std::mem::replace(&mut *s.borrow_mut(), outer))
        .unwrap_or_default();
    PENDING.with(|p| p.borrow_mut().take());
    match result {
        Ok(v) => (Some(v), errors),
        Err(e) => {
            errors.push(e);
            (None, errors)
        }
    }
}
pub(crate) const SPANNED_FIELDS: &[&str] = &["$start", "$end", "$value"];

/// Deserializes `T` from `node`.
pub fn from_node<'a, T: de::Deserialize<'a>>(node: &'a Node) -> Result<T, DeError> {
    T::deserialize(NodeDeserializer::new(node)).map_err(|e| e.or_span(node.span))
}

pub struct NodeDeserializer<'a> {
    node: &'a Node,
    /// The key this node is the value of, if any: missing-key errors point there, since a
    /// block mapping itself has no useful visible span.
    key_span: Option<Span>,
}

impl<'a> NodeDeserializer<'a> {
    pub fn new(node: &'a Node) -> NodeDeserializer<'a> {
        NodeDeserializer {
            node,
            key_span: None,
        }
    }

    fn container_span(&self) -> Span {
        self.key_span.unwrap_or(self.node.span)
    }

    fn string_value(&self) -> Option<std::borrow::Cow<'a, str>> {
        match &self.node.kind {
            NodeKind::Str(s) => Some(std::borrow::Cow::Borrowed(s.as_str())),
            NodeKind::Bool(_) | NodeKind::Int(_) | NodeKind::UInt(_) | NodeKind::Float(_) => {
                self.node.scalar_text().map(std::borrow::Cow::Owned)
            }
            _ => None,
        }
    }

    fn unexpected(&self) -> de::Unexpected<'a> {
        match &self.node.kind {
            NodeKind::Null => de::Unexpected::Unit,
            NodeKind::Bool(b) => de::Unexpected::Bool(*b),
            NodeKind::Int(i) => de::Unexpected::Signed(*i),
            NodeKind::UInt(u) => de::Unexpected::Unsigned(*u),
            NodeKind::Float(f) => de::Unexpected::Float(*f),
            NodeKind::Str(s) => de::Unexpected::Str(s),
            NodeKind::Seq(_) => de::Unexpected::Seq,
            NodeKind::Map(_) => de::Unexpected::Map,
        }
    }

    fn invalid_type<V: Visitor<'a>>(&self, visitor: &V) -> DeError {
        <DeError as de::Error>::invalid_type(self.unexpected(), visitor).or_span(self.node.span)
    }
}

macro_rules! forward_number {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let span = self.node.span;
            let r = match &self.node.kind {
                NodeKind::Int(i) => visitor.visit_i64(*i),
                NodeKind::UInt(u) => visitor.visit_u64(*u),
                NodeKind::Float(f) => visitor.visit_f64(*f),
                _ => Err(self.invalid_type(&visitor)),
            };
            r.map_err(|e| e.or_span(span))
        }
    )*};
}

impl<'de> de::Deserializer<'de> for NodeDeserializer<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let span = self.node.span;
        let r = match &self.node.kind {
            NodeKind::Null => visitor.visit_unit(),
            NodeKind::Bool(b) => visitor.visit_bool(*b),
            NodeKind::Int(i) => visitor.visit_i64(*i),
            NodeKind::UInt(u) => visitor.visit_u64(*u),
            NodeKind::Float(f) => visitor.visit_f64(*f),
            NodeKind::Str(s) => visitor.visit_borrowed_str(s),
            NodeKind::Seq(items) => visitor.visit_seq(SeqAccess::new(items)),
            NodeKind::Map(entries) => visitor.visit_map(MapAccess::new(entries)),
        };
        r.map_err(|e| {
            e.or_span(if self.node.as_map().is_some() {
                self.container_span()
            } else {
                span
            })
        })
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let span = self.node.span;
        match &self.node.kind {
            NodeKind::Bool(b) => visitor
                .visit_bool::<DeError>(*b)
                .map_err(|e| e.or_span(span)),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    forward_number! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let span = self.node.span;
        match self.string_value() {
            Some(std::borrow::Cow::Borrowed(s)) => visitor.visit_borrowed_str(s),
            Some(std::borrow::Cow::Owned(s)) => visitor.visit_string(s),
            None => Err(self.invalid_type(&visitor)),
        }
        .map_err(|e| e.or_span(span))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.kind {
            NodeKind::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.kind {
            NodeKind::Null => visitor.visit_unit(),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let span = self.node.span;
        match &self.node.kind {
            NodeKind::Seq(items) => visitor.visit_seq(SeqAccess::new(items)),
            _ => Err(self.invalid_type(&visitor)),
        }
        .map_err(|e| e.or_span(span))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let span = self.container_span();
        match &self.node.kind {
            NodeKind::Map(entries) => visitor.visit_map(MapAccess::new(entries)),
            // `stdout:` with nothing after it means "all defaults".
            NodeKind::Null => visitor.visit_map(MapAccess::new(&[])),
            _ => Err(self.invalid_type(&visitor)),
        }
        .map_err(|e| e.or_span(span))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if name == SPANNED_NAME {
            return visitor.visit_map(SpannedAccess {
                node: self.node,
                key_span: self.key_span,
                state: 0,
            });
        }
        if name == LENIENT_NAME {
            return visitor.visit_newtype_struct(LenientDe(self));
        }
        if name == ONE_OR_MANY_NAME || name == OR_SHORT_NAME {
            let span = self.node.span;
            return match &self.node.kind {
                NodeKind::Seq(items) if name == ONE_OR_MANY_NAME => {
                    visitor.visit_seq(SeqAccess::new(items))
                }
                NodeKind::Map(_) | NodeKind::Null => visitor.visit_newtype_struct(self),
                NodeKind::Str(s) if name == OR_SHORT_NAME => visitor.visit_borrowed_str(s),
                NodeKind::Int(_) | NodeKind::UInt(_) | NodeKind::Float(_) | NodeKind::Bool(_)
                    if name == OR_SHORT_NAME =>
                {
                    visitor.visit_string(self.node.scalar_text().unwrap_or_default())
                }
                _ => Err(self.invalid_type(&visitor)),
            }
            .map_err(|e| e.or_span(span));
        }
        let _ = fields;
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let span = self.node.span;
        let r = match &self.node.kind {
            NodeKind::Str(_) => visitor.visit_enum(UnitEnumAccess { node: self.node }),
            NodeKind::Map(entries) if entries.len() == 1 => {
                let (k, v) = &entries[0];
                visitor
                    .visit_enum(EnumAccess { key: k, value: v })
                    .map_err(|e| recode_variant_error(e, name, k.span))
            }
            NodeKind::Map(entries) => {
                let keys: Vec<String> = entries
                    .iter()
                    .filter_map(|(k, _)| k.scalar_text())
                    .map(|k| format!("`{k}`"))
                    .collect();
                let msg = if entries.is_empty() {
                    format!(
                        "expected one {} kind, found an empty mapping",
                        enum_noun(name)
                    )
                } else {
                    format!(
                        "expected exactly one {} kind, found {} keys: {}",
                        enum_noun(name),
                        entries.len(),
                        keys.join(", ")
                    )
                };
                Err(DeError::new(Code::ConnectorCount, msg).or_span(span))
            }
            _ => Err(self.invalid_type(&visitor)),
        };
        r.map_err(|e| e.or_span(span))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

/// The step enum's unknown variants are unknown *steps*, with their own code.
fn recode_variant_error(mut e: DeError, enum_name: &str, key_span: Span) -> DeError {
    if e.message.starts_with("unknown value") && e.span.is_none_or(|s| s == key_span) {
        let noun = enum_noun(enum_name);
        e.message = e
            .message
            .replacen("unknown value", &format!("unknown {noun} kind"), 1);
        e.code = if enum_name == "StepKind" {
            Code::UnknownStep
        } else {
            Code::UnknownKey
        };
    }
    e
}

fn enum_noun(name: &str) -> &'static str {
    match name {
        "StepKind" => "step",
        _ => "variant",
    }
}

struct SeqAccess<'a> {
    items: std::slice::Iter<'a, Node>,
}

impl<'a> SeqAccess<'a> {
    fn new(items: &'a [Node]) -> SeqAccess<'a> {
        SeqAccess {
            items: items.iter(),
        }
    }
}

impl<'de> de::SeqAccess<'de> for SeqAccess<'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            Some(node) => seed
                .deserialize(NodeDeserializer::new(node))
                .map(Some)
                .map_err(|e| e.or_span(node.span)),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapAccess<'a> {
    entries: std::slice::Iter<'a, (Node, Node)>,
    current: Option<&'a (Node, Node)>,
}

impl<'a> MapAccess<'a> {
    fn new(entries: &'a [(Node, Node)]) -> MapAccess<'a> {
        MapAccess {
            entries: entries.iter(),
            current: None,
        }
    }
}

impl<'de> de::MapAccess<'de> for MapAccess<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.entries.next() {
            Some(entry) => {
                self.current = Some(entry);
                seed.deserialize(NodeDeserializer::new(&entry.0))
                    .map(Some)
                    .map_err(|e| e.or_span(entry.0.span))
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some((key, value)) = self.current.take() else {
            return Err(de::Error::custom("value requested before key"));
        };
        seed.deserialize(NodeDeserializer {
            node: value,
            key_span: Some(key.span),
        })
        .map_err(|e| e.or_span(value.span))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

struct EnumAccess<'a> {
    key: &'a Node,
    value: &'a Node,
}

impl<'de> de::EnumAccess<'de> for EnumAccess<'de> {
    type Error = DeError;
    type Variant = VariantAccess<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, VariantAccess<'de>), DeError> {
        let v = seed
            .deserialize(NodeDeserializer::new(self.key))
            .map_err(|e| e.or_span(self.key.span))?;
        Ok((
            v,
            VariantAccess {
                node: self.value,
                key_span: self.key.span,
            },
        ))
    }
}

struct VariantAccess<'a> {
    node: &'a Node,
    key_span: Span,
}

impl<'de> VariantAccess<'de> {
    fn de(&self) -> NodeDeserializer<'de> {
        NodeDeserializer {
            node: self.node,
            key_span: Some(self.key_span),
        }
    }
}

impl<'de> de::VariantAccess<'de> for VariantAccess<'de> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        match self.node.kind {
            NodeKind::Null => Ok(()),
            _ => Err(DeError::new(
                Code::InvalidValue,
                format!(
                    "expected nothing after this key, found {}",
                    self.node.type_name()
                ),
            )
            .or_span(self.node.span)),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(self.de())
            .map_err(|e| e.or_span(self.node.span))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_seq(self.de(), visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_map(self.de(), visitor)
    }
}

/// `kind: hex` for a unit-only enum.
struct UnitEnumAccess<'a> {
    node: &'a Node,
}

impl<'de> de::EnumAccess<'de> for UnitEnumAccess<'de> {
    type Error = DeError;
    type Variant = UnitOnly;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, UnitOnly), DeError> {
        let v = seed
            .deserialize(NodeDeserializer::new(self.node))
            .map_err(|e| e.or_span(self.node.span))?;
        Ok((v, UnitOnly(self.node.span)))
    }
}

struct UnitOnly(Span);

impl UnitOnly {
    fn needs_settings(&self) -> DeError {
        DeError::new(
            Code::InvalidValue,
            "this kind needs settings: write it as a mapping (`kind: {...}`)".to_string(),
        )
        .or_span(self.0)
    }
}

impl<'de> de::VariantAccess<'de> for UnitOnly {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _seed: T) -> Result<T::Value, DeError> {
        Err(self.needs_settings())
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _visitor: V) -> Result<V::Value, DeError> {
        Err(self.needs_settings())
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, DeError> {
        Err(self.needs_settings())
    }
}

/// Feeds `$start`, `$end`, `$value` to [`crate::Spanned`]'s visitor.
struct SpannedAccess<'a> {
    node: &'a Node,
    key_span: Option<Span>,
    state: u8,
}

impl<'de> de::MapAccess<'de> for SpannedAccess<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let key = match SPANNED_FIELDS.get(self.state as usize) {
            Some(k) => *k,
            None => return Ok(None),
        };
        seed.deserialize(de::value::BorrowedStrDeserializer::new(key))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let state = self.state;
        self.state += 1;
        match state {
            0 => seed.deserialize(self.node.span.start.into_deserializer()),
            1 => seed.deserialize(self.node.span.end.into_deserializer()),
            _ => seed.deserialize(NodeDeserializer {
                node: self.node,
                key_span: self.key_span,
            }),
        }
    }
}

/// Wraps a [`NodeDeserializer`] for a lenient section: any error leaving it is stashed (with
/// its span) so [`crate::model::Lenient`] can record it and carry on.
struct LenientDe<'a>(NodeDeserializer<'a>);

impl LenientDe<'_> {
    fn stash<T>(span: Span, r: Result<T, DeError>) -> Result<T, DeError> {
        r.map_err(|e| {
            let e = e.or_span(span);
            PENDING.with(|p| *p.borrow_mut() = Some(e.clone()));
            e
        })
    }
}

macro_rules! lenient_forward {
    ($($method:ident($($arg:ident: $ty:ty),*))*) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, DeError> {
            let span = self.0.node.span;
            LenientDe::stash(span, self.0.$method($($arg,)* visitor))
        }
    )*};
}

impl<'de> de::Deserializer<'de> for LenientDe<'de> {
    type Error = DeError;

    lenient_forward! {
        deserialize_any() deserialize_bool() deserialize_i8() deserialize_i16() deserialize_i32()
        deserialize_i64() deserialize_i128() deserialize_u8() deserialize_u16() deserialize_u32()
        deserialize_u64() deserialize_u128() deserialize_f32() deserialize_f64() deserialize_char()
        deserialize_str() deserialize_string() deserialize_bytes() deserialize_byte_buf()
        deserialize_option() deserialize_unit() deserialize_seq() deserialize_map()
        deserialize_identifier() deserialize_ignored_any()
        deserialize_unit_struct(name: &'static str)
        deserialize_newtype_struct(name: &'static str)
        deserialize_tuple(len: usize)
        deserialize_tuple_struct(name: &'static str, len: usize)
        deserialize_struct(name: &'static str, fields: &'static [&'static str])
        deserialize_enum(name: &'static str, variants: &'static [&'static str])
    }
}
