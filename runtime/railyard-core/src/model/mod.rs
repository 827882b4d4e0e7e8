//! The file formats users write, as Rust types.
//!
//! These types are the single source of truth for the formats: serde reads them, and
//! `schemars` turns them (doc comments included) into the JSON Schemas under `docs/schema/`
//! that editors use for completion. They hold what the user wrote, with spans; meaning
//! (compiled expressions, resolved schemas) is added by [`crate::project`].

pub mod mapping;
pub mod pipeline;

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

pub use crate::spanned::Spanned;

/// A JMESPath expression as written in the file.
pub type Expr = Spanned<String>;

/// A schema id `namespace.name@MAJOR`, e.g. `canonical.order@1`.
pub type SchemaRef = Spanned<String>;

/// Either a short string form or the full mapping form of a setting: `map: name` or
/// `map: { mapping: name, ... }`.
#[derive(Clone, Debug, PartialEq)]
pub enum OrShort<F> {
    Short(String),
    Full(F),
}

impl<'de, F: Deserialize<'de>> Deserialize<'de> for OrShort<F> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<F>(PhantomData<F>);
        impl<'de, F: Deserialize<'de>> Visitor<'de> for V<F> {
            type Value = OrShort<F>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a mapping")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(OrShort::Short(v.to_string()))
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Self::Value, D::Error> {
                F::deserialize(d).map(OrShort::Full)
            }
            fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<Self::Value, A::Error> {
                F::deserialize(de::value::MapAccessDeserializer::new(a)).map(OrShort::Full)
            }
        }
        d.deserialize_struct(crate::yaml::de::OR_SHORT_NAME, &[], V(PhantomData))
    }
}

impl<F: JsonSchema> JsonSchema for OrShort<F> {
    fn schema_name() -> Cow<'static, str> {
        format!("{}OrShort", F::schema_name()).into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let full = generator.subschema_for::<F>();
        json_schema!({ "anyOf": [ { "type": "string" }, full ] })
    }
}

/// A section of a file that may fail to parse on its own: its error is recorded and the rest
/// of the file is still read and checked, so one run reports every broken section.
#[derive(Clone, Debug, PartialEq)]
pub enum Lenient<T> {
    Ok(T),
    Failed,
}

impl<T> Lenient<T> {
    pub fn ok(&self) -> Option<&T> {
        match self {
            Lenient::Ok(t) => Some(t),
            Lenient::Failed => None,
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Lenient<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a section")
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Self::Value, D::Error> {
                match T::deserialize(d) {
                    Ok(t) => Ok(Lenient::Ok(t)),
                    Err(_) if crate::yaml::de::absorb_pending() => Ok(Lenient::Failed),
                    Err(e) => Err(e),
                }
            }
        }
        d.deserialize_struct(crate::yaml::de::LENIENT_NAME, &[], V(PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for Lenient<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// One item or a list of items: `output: {topic: x}` or `output: [{topic: x}, {http: ...}]`.
#[derive(Clone, Debug, PartialEq)]
pub struct OneOrMany<T>(pub Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping or a list of mappings")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = a.next_element()? {
                    items.push(item);
                }
                Ok(OneOrMany(items))
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Self::Value, D::Error> {
                T::deserialize(d).map(|t| OneOrMany(vec![t]))
            }
            fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(a)).map(|t| OneOrMany(vec![t]))
            }
        }
        d.deserialize_struct(crate::yaml::de::ONE_OR_MANY_NAME, &[], V(PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for OneOrMany<T> {
    fn schema_name() -> Cow<'static, str> {
        format!("OneOrMany{}", T::schema_name()).into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let one = generator.subschema_for::<T>();
        json_schema!({ "anyOf": [ one, { "type": "array", "items": one } ] })
    }
}

/// A duration written the human way: `500ms`, `30s`, `5m`, `72h`, `1h 30m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(s.trim())
            .map(HumanDuration)
            .map_err(|e| {
                de::Error::custom(format!(
                    "invalid duration `{s}`: {e} (write e.g. `500ms`, `30s`, `5m`, `72h`)"
                ))
            })
    }
}

impl JsonSchema for HumanDuration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration such as `500ms`, `30s`, `5m`, `72h` or `1h 30m`.",
            "pattern": "^\\s*[0-9]+\\s*[a-zµ]+(\\s*[0-9]+\\s*[a-zµ]+)*\\s*$"
        })
    }
}

/// A size in bytes: `512KiB`, `1MiB`, `10MB`, or a plain number of bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(s: &str) -> Option<ByteSize> {
        let s = s.trim();
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let num: f64 = num.parse().ok()?;
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kb" => 1_000,
            "kib" | "k" => 1 << 10,
            "mb" => 1_000_000,
            "mib" | "m" => 1 << 20,
            "gb" => 1_000_000_000,
            "gib" | "g" => 1 << 30,
            _ => return None,
        };
        let bytes = num * mult as f64;
        (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64)
            .then_some(ByteSize(bytes as u64))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ByteSize::parse(&s).ok_or_else(|| {
            de::Error::custom(format!(
                "invalid size `{s}` (write e.g. `512KiB`, `1MiB`, `10MB` or a number of bytes)"
            ))
        })
    }
}

impl JsonSchema for ByteSize {
    fn schema_name() -> Cow<'static, str> {
        "ByteSize".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [
                { "type": "integer", "minimum": 0 },
                { "type": "string", "pattern": "^\\s*[0-9.]+\\s*([kKmMgG]i?[bB]?|[bB])?\\s*$" }
            ],
            "description": "A size such as `512KiB`, `1MiB`, `10MB`, or a number of bytes."
        })
    }
}

/// Generates the JSON Schema of the pipeline file format.
pub fn pipeline_json_schema() -> Schema {
    schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<pipeline::PipelineFile>()
}

/// Generates the JSON Schema of the mapping file format.
pub fn mapping_json_schema() -> Schema {
    schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<mapping::MappingFile>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        assert_eq!(ByteSize::parse("1MiB"), Some(ByteSize(1 << 20)));
        assert_eq!(ByteSize::parse("512 KiB"), Some(ByteSize(512 << 10)));
        assert_eq!(ByteSize::parse("10MB"), Some(ByteSize(10_000_000)));
        assert_eq!(ByteSize::parse("42"), Some(ByteSize(42)));
        assert_eq!(ByteSize::parse("1 parsec"), None);
        assert_eq!(ByteSize::parse(""), None);
    }
}
