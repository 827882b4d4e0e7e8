//! The mapping file format (`mappings/*.yaml`).

use schemars::JsonSchema;
use serde::Deserialize;

use super::pipeline::{ExpectedBody, TestInput};
use super::{Lenient, OrShort, SchemaRef, Spanned};

/// Output field → JMESPath expression, in the order the analyst wrote them.
pub type FieldMap = Vec<(Spanned<String>, Spanned<String>)>;

/// A named, reusable transformation from one schema to another.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Railyard mapping")]
pub struct MappingFile {
    /// Unique name of the mapping within the project.
    pub mapping: Spanned<String>,
    /// What the mapping does, in a sentence.
    #[serde(default)]
    pub description: Option<String>,
    /// Schema id of the input body.
    pub from: SchemaRef,
    /// Schema id of the output body.
    pub to: SchemaRef,
    /// One JMESPath expression producing the whole output.
    #[serde(default)]
    pub jmespath: Option<Spanned<String>>,
    /// Output fields, each a JMESPath expression over the input. Dotted names (`totals.gross`)
    /// build nested objects.
    #[serde(default, deserialize_with = "ordered_fields")]
    #[schemars(with = "std::collections::BTreeMap<String, String>")]
    pub fields: Option<FieldMap>,
    /// Inline Rhai; `body` is in scope and the script's value is the output.
    #[serde(default)]
    pub rhai: Option<Spanned<String>>,
    /// Rhai file, relative to the project root.
    #[serde(default)]
    pub rhai_file: Option<Spanned<String>>,
    /// Example-based tests run by `railyard test`.
    #[serde(default)]
    pub tests: Vec<Lenient<Spanned<MappingTest>>>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingTest {
    /// What the test shows.
    pub name: Spanned<String>,
    /// Input body: a fixture path, or `{body: ...}` / `{file: ...}`.
    pub input: Spanned<OrShort<TestInput>>,
    /// Expected output body: a fixture path, or `{body: ...}` / `{file: ...}`.
    pub expect: Spanned<OrShort<ExpectedBody>>,
}

fn ordered_fields<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<FieldMap>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Option<FieldMap>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a mapping of output field → JMESPath expression")
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut a: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(entry) = a.next_entry()? {
                out.push(entry);
            }
            Ok(Some(out))
        }
    }
    d.deserialize_map(V)
}
