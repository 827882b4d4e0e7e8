//! The schema registry: every JSON Schema of the project under its id `namespace.name@MAJOR`.
//!
//! Ids come from the file location (`schemas/canonical/order@1.json` → `canonical.order@1`) or
//! from a `$id` in the file; one id names one file. Each schema is registered under the base
//! URI `https://railyard.invalid/schemas/<id>` (the `.invalid` TLD can never resolve), so a
//! `$ref: canonical.money@1#/$defs/amount` between local schemas resolves through the
//! registry with retrieval switched off. Drafts: 2020-12 unless `$schema` says otherwise.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::diag::{Code, Diagnostic, SourceText, Span};
use crate::suggest::{did_you_mean, nearest};

pub mod compat;
pub mod locate;

pub const BASE_URI: &str = "https://railyard.invalid/schemas/";

/// A parsed schema id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SchemaId {
    pub namespace: String,
    pub name: String,
    pub major: u32,
}

impl SchemaId {
    /// Parses `namespace.name@MAJOR`. Segments are lowercase letters, digits, `_` and `-`,
    /// starting with a letter; there are at least two segments.
    pub fn parse(s: &str) -> Result<SchemaId, String> {
        let Some((path, major)) = s.rsplit_once('@') else {
            return Err(format!(
                "schema id `{s}` has no major version: write `{s}@1` (ids are `namespace.name@MAJOR`)"
            ));
        };
        let major: u32 = major.parse().map_err(|_| {
            format!(
                "schema id `{s}`: the version after `@` must be a whole number (the major version)"
            )
        })?;
        let segments: Vec<&str> = path.split('.').collect();
        if segments.len() < 2 {
            return Err(format!(
                "schema id `{s}` needs a namespace: write e.g. `canonical.{path}@{major}`"
            ));
        }
        for seg in &segments {
            let ok = seg.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && seg
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
            if !ok {
                return Err(format!(
                    "schema id `{s}`: segment `{seg}` must start with a lowercase letter and hold only lowercase letters, digits, `_` and `-`"
                ));
            }
        }
        let (namespace, name) = path.rsplit_once('.').unwrap_or(("", path));
        Ok(SchemaId {
            namespace: namespace.to_string(),
            name: name.to_string(),
            major,
        })
    }

    /// The id a schema file's path gives, if its location names one: `schemas/a/b@1.json` → `a.b@1`.
    pub fn from_path(rel_to_schemas: &str) -> Option<String> {
        let stem = rel_to_schemas
            .strip_suffix(".json")
            .or_else(|| rel_to_schemas.strip_suffix(".yaml"))
            .or_else(|| rel_to_schemas.strip_suffix(".yml"))?;
        let id = stem.replace(['/', '\\'], ".");
        SchemaId::parse(&id).ok().map(|_| id)
    }
}

impl std::fmt::Display for SchemaId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}@{}", self.namespace, self.name, self.major)
    }
}

/// One violation of a schema by a payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// JSON Pointer into the payload, e.g. `/lines/0/quantity`.
    pub instance_path: String,
    /// JSON Pointer into the schema, e.g. `/properties/lines/items/properties/quantity/type`.
    pub schema_path: String,
    pub message: String,
}

/// A schema file as given to the registry.
#[derive(Clone, Debug)]
pub struct SchemaSource {
    /// Project-relative path, e.g. `schemas/canonical/order@1.json`.
    pub path: String,
    /// Path relative to the `schemas/` directory, used to derive the id.
    pub rel: String,
    pub text: SourceText,
}

#[derive(Clone)]
pub struct SchemaEntry {
    pub id: String,
    pub file: String,
    pub value: Arc<Value>,
    pub validator: Option<Arc<jsonschema::Validator>>,
    pub title: Option<String>,
}

impl std::fmt::Debug for SchemaEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaEntry")
            .field("id", &self.id)
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, Default)]
pub struct SchemaRegistry {
    entries: BTreeMap<String, SchemaEntry>,
}

impl SchemaRegistry {
    /// Builds the registry from schema files, reporting every problem into `diags`. Schemas
    /// with problems are still registered (without a validator) so references to them do not
    /// cascade into "unknown schema" errors.
    pub fn build(sources: &[SchemaSource], diags: &mut Vec<Diagnostic>) -> SchemaRegistry {
        let mut entries: BTreeMap<String, SchemaEntry> = BTreeMap::new();
        let mut refs: Vec<(String, String, Span, String)> = Vec::new(); // (id, file, span, ref)
        for src in sources {
            let Some(mut value) = parse_schema_text(src, diags) else {
                continue;
            };
            let Some(id) = schema_id_for(src, &value, diags) else {
                continue;
            };
            if let Some(existing) = entries.get(&id) {
                diags.push(
                    Diagnostic::error(
                        Code::DuplicateSchema,
                        format!("schema id `{id}` is defined twice"),
                    )
                    .at(&src.path, id_span(src, &value))
                    .with_label("second definition")
                    .with_related(&existing.file, Span::default(), "first defined here")
                    .with_help(
                        "one id names one file: bump the major version (`@2`) for a new shape",
                    ),
                );
                continue;
            }
            if let Value::Object(map) = &mut value {
                map.insert("$id".to_string(), Value::String(format!("{BASE_URI}{id}")));
            }
            collect_refs(&value, &mut |r| {
                refs.push((
                    id.clone(),
                    src.path.clone(),
                    find_ref_span(&src.text, r),
                    r.to_string(),
                ));
            });
            let title = value
                .get("title")
                .and_then(Value::as_str)
                .map(str::to_string);
            entries.insert(
                id.clone(),
                SchemaEntry {
                    id,
                    file: src.path.clone(),
                    value: Arc::new(value),
                    validator: None,
                    title,
                },
            );
        }

        // Check every non-local `$ref` against the registry before compiling, so a missing
        // schema is reported once, by name, with the nearest known ids.
        let mut broken: std::collections::BTreeSet<String> = Default::default();
        for (id, file, span, r) in &refs {
            if let Err(d) = check_ref(r, &entries) {
                broken.insert(id.clone());
                diags.push(d.at(file, *span));
            }
        }

        let registry = entries
            .values()
            .filter(|e| !broken.contains(&e.id))
            .try_fold(jsonschema::Registry::new(), |b, e| {
                b.add(format!("{BASE_URI}{}", e.id), (*e.value).clone())
            })
            .and_then(|b| b.prepare());
        let registry = match registry {
            Ok(r) => r,
            Err(err) => {
                diags.push(Diagnostic::error(
                    Code::InvalidSchema,
                    format!("the schemas could not be registered together: {err}"),
                ));
                return SchemaRegistry { entries };
            }
        };
        for entry in entries.values_mut() {
            if broken.contains(&entry.id) {
                continue;
            }
            let mut options = jsonschema::options().with_registry(&registry).offline();
            if entry.value.get("$schema").is_none() {
                options = options.with_draft(jsonschema::Draft::Draft202012);
            }
            match options.build(&entry.value) {
                Ok(v) => entry.validator = Some(Arc::new(v)),
                Err(err) => {
                    let src = sources.iter().find(|s| s.path == entry.file);
                    // The schema is the instance the meta-schema rejected.
                    let pointer = err.instance_path().to_string();
                    let span = src
                        .map(|s| pointer_span(&s.text, &pointer))
                        .unwrap_or_default();
                    diags.push(
                        Diagnostic::error(
                            Code::InvalidSchema,
                            format!("schema `{}` is not a valid JSON Schema: {err}", entry.id),
                        )
                        .at(&entry.file, span),
                    );
                }
            }
        }
        SchemaRegistry { entries }
    }

    pub fn get(&self, id: &str) -> Option<&SchemaEntry> {
        self.entries.get(id)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.entries.contains_key(id)
    }

    pub fn entries(&self) -> impl Iterator<Item = &SchemaEntry> {
        self.entries.values()
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A help line naming the known ids nearest to `missing`.
    pub fn nearest_help(&self, missing: &str) -> Option<String> {
        nearest_ids_help(missing, self.entries.keys().map(String::as_str))
    }
}

/// Validates `instance` with `validator`, collecting every violation.
pub fn violations(validator: &jsonschema::Validator, instance: &Value) -> Vec<Violation> {
    validator
        .iter_errors(instance)
        .map(|e| Violation {
            instance_path: e.instance_path().to_string(),
            schema_path: e.schema_path().to_string(),
            message: e.to_string(),
        })
        .collect()
}

/// Compiles a standalone schema (for `railyard schema validate --schema-file`), offline.
pub fn compile_standalone(value: &Value) -> Result<jsonschema::Validator, String> {
    let mut options = jsonschema::options().offline();
    if value.get("$schema").is_none() {
        options = options.with_draft(jsonschema::Draft::Draft202012);
    }
    options.build(value).map_err(|e| e.to_string())
}

fn nearest_ids_help<'a>(
    missing: &str,
    known: impl Iterator<Item = &'a str> + Clone,
) -> Option<String> {
    if let Some(best) = did_you_mean(missing, known.clone()) {
        return Some(format!("did you mean `{best}`?"));
    }
    let near = nearest(missing, known, 3);
    (!near.is_empty()).then(|| {
        format!(
            "known schema ids nearest to it: {}",
            near.iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

fn parse_schema_text(src: &SchemaSource, diags: &mut Vec<Diagnostic>) -> Option<Value> {
    let text = &src.text.text;
    let is_yaml = src.path.ends_with(".yaml") || src.path.ends_with(".yml");
    if text.trim().is_empty() {
        diags.push(
            Diagnostic::error(Code::EmptyFile, "schema file is empty")
                .at(&src.path, Span::default())
                .with_help("a schema file holds one JSON Schema object"),
        );
        return None;
    }
    let value = if is_yaml {
        match crate::yaml::parse(text) {
            Ok(node) => node.to_json(),
            Err(e) => {
                diags.push(Diagnostic::error(e.code, e.message).at(&src.path, e.span));
                return None;
            }
        }
    } else {
        match crate::json::parse_payload(text.as_bytes()) {
            Ok(v) => v,
            Err(e) => {
                let offset = src.text.offset_of(e.line(), e.column());
                let message = match &e {
                    crate::json::PayloadError::Syntax { message, .. } => {
                        format!("invalid JSON: {message}")
                    }
                    other => format!("the schema {}", other.reason()),
                };
                diags.push(
                    Diagnostic::error(Code::JsonSyntax, message).at(&src.path, Span::at(offset)),
                );
                return None;
            }
        }
    };
    if !value.is_object() && !value.is_boolean() {
        diags.push(
            Diagnostic::error(
                Code::InvalidSchema,
                "a schema must be a JSON object (or `true`/`false`)",
            )
            .at(&src.path, Span::default()),
        );
        return None;
    }
    Some(value)
}

/// serde_json appends " at line X column Y"; we show the position ourselves.
pub fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn schema_id_for(src: &SchemaSource, value: &Value, diags: &mut Vec<Diagnostic>) -> Option<String> {
    let from_path = SchemaId::from_path(&src.rel);
    let declared = value.get("$id").and_then(Value::as_str);
    match (declared, from_path) {
        (Some(decl), from_path) => {
            let decl_id = decl.strip_prefix(BASE_URI).unwrap_or(decl);
            if let Err(msg) = SchemaId::parse(decl_id) {
                diags.push(
                    Diagnostic::error(Code::SchemaId, msg)
                        .at(&src.path, id_span(src, value))
                        .with_help("`$id` may be a schema id (`canonical.order@1`) or left out to use the file's location"),
                );
                return None;
            }
            if let Some(p) = from_path
                && p != decl_id
            {
                diags.push(
                    Diagnostic::error(
                        Code::SchemaId,
                        format!("`$id` says `{decl_id}` but the file's location gives `{p}`"),
                    )
                    .at(&src.path, id_span(src, value))
                    .with_help(format!(
                        "rename the file to match its `$id`, or remove `$id` to use `{p}`"
                    )),
                );
                return None;
            }
            Some(decl_id.to_string())
        }
        (None, Some(p)) => Some(p),
        (None, None) => {
            let msg = SchemaId::parse(
                src.rel
                    .rsplit_once('.')
                    .map_or(src.rel.as_str(), |(stem, _)| stem)
                    .replace('/', ".")
                    .as_str(),
            )
            .err()
            .unwrap_or_else(|| "the file's location does not name a schema id".to_string());
            diags.push(
                Diagnostic::error(Code::SchemaId, msg)
                    .at(&src.path, Span::default())
                    .with_help("name the file `schemas/<namespace>/<name>@<MAJOR>.json`, or declare `\"$id\": \"namespace.name@1\"`"),
            );
            None
        }
    }
}

fn id_span(src: &SchemaSource, value: &Value) -> Span {
    match value.get("$id").and_then(Value::as_str) {
        Some(id) => find_ref_span(&src.text, id),
        None => Span::default(),
    }
}

/// Calls `f` with every `$ref` / `$dynamicRef` string under `value`.
pub(crate) fn collect_refs(value: &Value, f: &mut dyn FnMut(&str)) {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    if (k == "$ref" || k == "$dynamicRef")
                        && let Value::String(r) = v
                    {
                        f(r);
                    }
                    stack.push(v);
                }
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
}

fn check_ref(r: &str, entries: &BTreeMap<String, SchemaEntry>) -> Result<(), Diagnostic> {
    if r.starts_with('#') {
        return Ok(());
    }
    let target = r.split('#').next().unwrap_or(r);
    let id = target.strip_prefix(BASE_URI).unwrap_or(target);
    if id.contains("://") || id.starts_with("urn:") {
        return Err(Diagnostic::error(
            Code::UnresolvedRef,
            format!("`$ref` to `{r}` leaves the project; Railyard resolves references offline only"),
        )
        .with_help("copy the schema into `schemas/` and refer to it by id, e.g. `\"$ref\": \"namespace.name@1\"`"));
    }
    if id.ends_with(".json") || id.contains('/') {
        let known = entries.keys().map(String::as_str);
        return Err(Diagnostic::error(
            Code::UnresolvedRef,
            format!("`$ref` to `{r}` is a file path; refer to schemas by id"),
        )
        .with_help_opt(
            SchemaId::from_path(id.trim_start_matches("./"))
                .map(|i| format!("write `\"$ref\": \"{i}\"`"))
                .or_else(|| nearest_ids_help(id, known)),
        ));
    }
    if entries.contains_key(id) {
        return Ok(());
    }
    let known = entries.keys().map(String::as_str);
    Err(Diagnostic::error(
        Code::UnresolvedRef,
        format!("`$ref` to `{id}`: no schema in the project has this id"),
    )
    .with_help_opt(nearest_ids_help(id, known)))
}

/// The span of a quoted string in the file (`"value"`), for pointing at a `$ref` or `$id`.
fn find_ref_span(text: &SourceText, value: &str) -> Span {
    let quoted = format!("\"{value}\"");
    if let Some(i) = text.text.find(&quoted) {
        return Span::new(i + 1, i + 1 + value.len());
    }
    match text.text.find(value) {
        Some(i) => Span::new(i, i + value.len()),
        None => Span::default(),
    }
}

/// Best-effort span of a JSON pointer's last key in the file.
fn pointer_span(text: &SourceText, pointer: &str) -> Span {
    let last = pointer
        .rsplit('/')
        .find(|s| !s.is_empty() && s.parse::<usize>().is_err());
    match last {
        Some(key) => {
            let quoted = format!("\"{key}\"");
            match text.text.find(&quoted) {
                Some(i) => Span::new(i, i + quoted.len()),
                None => Span::default(),
            }
        }
        None => Span::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn src(rel: &str, text: &str) -> SchemaSource {
        SchemaSource {
            path: format!("schemas/{rel}"),
            rel: rel.to_string(),
            text: SourceText::new(format!("schemas/{rel}"), text),
        }
    }

    #[test]
    fn ids_parse() {
        assert!(SchemaId::parse("canonical.order@1").is_ok());
        assert!(SchemaId::parse("erp.bc.sales_order@2").is_ok());
        assert!(SchemaId::parse("order@1").is_err());
        assert!(SchemaId::parse("canonical.order").is_err());
        assert!(SchemaId::parse("Canonical.order@1").is_err());
        assert_eq!(
            SchemaId::from_path("canonical/order@1.json").as_deref(),
            Some("canonical.order@1")
        );
        assert_eq!(SchemaId::from_path("misc.json"), None);
    }

    #[test]
    fn refs_resolve_between_local_schemas() {
        let mut diags = Vec::new();
        let reg = SchemaRegistry::build(
            &[
                src(
                    "canonical/money@1.json",
                    r#"{"type":"object","required":["amount"],"properties":{"amount":{"type":"string","pattern":"^-?[0-9]+(\\.[0-9]+)?$"}}}"#,
                ),
                src(
                    "canonical/order@1.json",
                    r#"{"type":"object","properties":{"total":{"$ref":"canonical.money@1"}}}"#,
                ),
            ],
            &mut diags,
        );
        assert!(diags.is_empty(), "{diags:?}");
        let v = reg
            .get("canonical.order@1")
            .and_then(|e| e.validator.clone())
            .expect("compiled");
        assert!(v.is_valid(&json!({"total": {"amount": "12.50"}})));
        let errs = violations(&v, &json!({"total": {"amount": 12.5}}));
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].instance_path, "/total/amount");
    }

    #[test]
    fn missing_ref_and_duplicate_are_reported() {
        let mut diags = Vec::new();
        SchemaRegistry::build(
            &[
                src(
                    "canonical/order@1.json",
                    r#"{"properties":{"t":{"$ref":"canonical.mony@1"}}}"#,
                ),
                src("canonical/money@1.json", r#"{"type":"object"}"#),
                src("x.json", r#"{"$id":"canonical.money@1"}"#),
            ],
            &mut diags,
        );
        let codes: Vec<_> = diags.iter().map(|d| d.code).collect();
        assert!(codes.contains(&Code::UnresolvedRef), "{diags:?}");
        assert!(codes.contains(&Code::DuplicateSchema), "{diags:?}");
        let unresolved = diags
            .iter()
            .find(|d| d.code == Code::UnresolvedRef)
            .expect("present");
        assert_eq!(
            unresolved.help.as_deref(),
            Some("did you mean `canonical.money@1`?")
        );
    }
}
