//! Compatibility of two versions of a schema: every change, classified.
//!
//! Definitions (Confluent schema registry terms):
//!
//! - **Breaks writers** — NEW rejects data that was valid under OLD (a type or enum narrowed,
//!   a bound or pattern added or tightened, a property newly required, `additionalProperties`
//!   closed). The change is not *BACKWARD* compatible: the new schema cannot read data written
//!   with the old one. Whatever produces the schema — a mapping's `to`, a script's `produces`,
//!   an output's `schema`, and the channel or pipeline that feeds an input of this schema —
//!   may now produce data that is rejected.
//! - **Breaks readers** — NEW accepts data that OLD did not promise (a type or enum widened, a
//!   bound or pattern removed or loosened, a property no longer required or removed,
//!   `additionalProperties` opened). The change is not *FORWARD* compatible: the old schema
//!   cannot read data written with the new one. Whatever consumes the schema — a mapping's
//!   `from`, a pipeline's input and `validate` steps, a consumer outside the project — was
//!   written against what OLD promised and may now see data it does not expect.
//! - **Compatible** — annotations (`title`, `description`, `examples`, ...), an optional
//!   property added, a definition added.
//! - **Unclassified** — a change no rule decides (a changed `pattern`, a changed `oneOf`, a
//!   `$ref` changed alongside other keywords, keywords without a rule such as `if`/`not`):
//!   reported as a warning rather than guessed.
//!
//! The walk recurses through `properties`, `items`, `prefixItems`, `additionalProperties`,
//! `unevaluatedProperties`, `$defs`, `allOf`/`anyOf` (branch by branch when their number is
//! unchanged) and `$ref`s that differ between the versions (resolved through [`Docs`]: a
//! local `#/...` pointer or another schema id). Equal `$ref`s are not followed: the target is
//! compared where it is defined. Every change carries the JSON Pointer of the keyword in both
//! versions; [`super::locate`] turns it into a file position.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde_json::Value;

use super::BASE_URI;
use super::locate::escape_token;

/// Who a breaking change breaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Breaks {
    /// NEW accepts data OLD did not (not FORWARD compatible).
    pub readers: bool,
    /// NEW rejects data OLD accepted (not BACKWARD compatible).
    pub writers: bool,
}

impl Breaks {
    pub const READERS: Breaks = Breaks {
        readers: true,
        writers: false,
    };
    pub const WRITERS: Breaks = Breaks {
        readers: false,
        writers: true,
    };
    pub const BOTH: Breaks = Breaks {
        readers: true,
        writers: true,
    };

    /// `readers`, `writers` or `readers and writers`.
    pub fn describe(self) -> &'static str {
        match (self.readers, self.writers) {
            (true, true) => "readers and writers",
            (true, false) => "readers",
            (false, true) => "writers",
            (false, false) => "nobody",
        }
    }
}

/// The classification of one change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    Breaking(Breaks),
    Unclassified,
    Compatible,
}

impl Class {
    /// `breaking`, `unclassified` or `compatible`.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Breaking(_) => "breaking",
            Class::Unclassified => "unclassified",
            Class::Compatible => "compatible",
        }
    }

    pub fn is_breaking(self) -> bool {
        matches!(self, Class::Breaking(_))
    }
}

/// A place in one version: the schema id (empty for a lone file), its file and a JSON Pointer
/// into the schema document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loc {
    pub id: String,
    pub file: String,
    pub pointer: String,
}

/// One classified change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub class: Class,
    pub old: Loc,
    pub new: Loc,
    pub message: String,
}

/// One schema document: its file and value.
#[derive(Clone, Copy, Debug)]
pub struct Doc<'a> {
    pub file: &'a str,
    pub value: &'a Value,
}

/// The documents `$ref`s of one version resolve against, by schema id.
#[derive(Clone, Debug, Default)]
pub struct Docs<'a> {
    pub by_id: BTreeMap<&'a str, Doc<'a>>,
}

impl<'a> Docs<'a> {
    /// Every schema of a registry.
    pub fn from_registry(registry: &'a super::SchemaRegistry) -> Docs<'a> {
        Docs {
            by_id: registry
                .entries()
                .map(|e| {
                    (
                        e.id.as_str(),
                        Doc {
                            file: e.file.as_str(),
                            value: &e.value,
                        },
                    )
                })
                .collect(),
        }
    }

    /// One document under `id` (a lone file: its own `#/...` references resolve).
    pub fn single(id: &'a str, file: &'a str, value: &'a Value) -> Docs<'a> {
        Docs {
            by_id: [(id, Doc { file, value })].into_iter().collect(),
        }
    }
}

/// Every change from schema `old_id` in `old` to schema `new_id` in `new`, sorted by NEW
/// pointer. Empty when the two are equal (annotations included).
pub fn diff(old: &Docs<'_>, old_id: &str, new: &Docs<'_>, new_id: &str) -> Vec<Change> {
    let (Some(o), Some(n)) = (old.by_id.get(old_id), new.by_id.get(new_id)) else {
        return Vec::new();
    };
    let mut cx = Cx {
        old,
        new,
        out: Vec::new(),
        seen: HashSet::new(),
    };
    let oc = Cur::root(old_id, *o);
    let nc = Cur::root(new_id, *n);
    cx.node(&oc, &nc, 0);
    cx.out.sort_by(|a, b| {
        (
            a.new.file.as_str(),
            a.new.pointer.as_str(),
            a.old.pointer.as_str(),
        )
            .cmp(&(
                b.new.file.as_str(),
                b.new.pointer.as_str(),
                b.old.pointer.as_str(),
            ))
    });
    cx.out.dedup();
    cx.out
}

/// Keywords that do not change which data is valid.
const ANNOTATIONS: &[&str] = &[
    "$id",
    "$comment",
    "$anchor",
    "title",
    "description",
    "examples",
    "default",
    "deprecated",
    "readOnly",
    "writeOnly",
    "contentMediaType",
    "contentEncoding",
];

/// Lower bounds (raising one narrows) and upper bounds (lowering one narrows).
const LOWER: &[&str] = &[
    "minimum",
    "exclusiveMinimum",
    "minLength",
    "minItems",
    "minProperties",
    "minContains",
];
const UPPER: &[&str] = &[
    "maximum",
    "exclusiveMaximum",
    "maxLength",
    "maxItems",
    "maxProperties",
    "maxContains",
];

/// Keywords with a rule below (besides annotations and bounds).
const HANDLED: &[&str] = &[
    "$ref",
    "type",
    "enum",
    "const",
    "multipleOf",
    "pattern",
    "format",
    "uniqueItems",
    "required",
    "properties",
    "additionalProperties",
    "unevaluatedProperties",
    "items",
    "prefixItems",
    "$defs",
    "definitions",
    "allOf",
    "anyOf",
    "oneOf",
];

const MAX_DEPTH: usize = 64;

static EMPTY: Value = Value::Null;

/// A position in one version.
#[derive(Clone)]
struct Cur<'a> {
    id: &'a str,
    doc: Doc<'a>,
    pointer: String,
    /// `None`: the keyword is absent here (the position is where it would be).
    value: Option<&'a Value>,
}

impl<'a> Cur<'a> {
    fn root(id: &'a str, doc: Doc<'a>) -> Cur<'a> {
        Cur {
            id,
            doc,
            pointer: String::new(),
            value: Some(doc.value),
        }
    }

    fn key(&self, k: &str) -> Cur<'a> {
        Cur {
            id: self.id,
            doc: self.doc,
            pointer: format!("{}/{}", self.pointer, escape_token(k)),
            value: self.value.and_then(|v| v.get(k)),
        }
    }

    fn index(&self, i: usize) -> Cur<'a> {
        Cur {
            id: self.id,
            doc: self.doc,
            pointer: format!("{}/{i}", self.pointer),
            value: self.value.and_then(|v| v.get(i)),
        }
    }

    fn loc(&self) -> Loc {
        Loc {
            id: self.id.to_string(),
            file: self.doc.file.to_string(),
            pointer: self.pointer.clone(),
        }
    }

    fn get(&self, k: &str) -> Option<&'a Value> {
        self.value.and_then(|v| v.get(k))
    }
}

struct Cx<'d, 'a> {
    old: &'d Docs<'a>,
    new: &'d Docs<'a>,
    out: Vec<Change>,
    seen: HashSet<(String, String, String, String)>,
}

fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        let cut: String = s.chars().take(57).collect();
        format!("{cut}...")
    } else {
        s
    }
}

fn list(items: &BTreeSet<String>) -> String {
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The JSON types a `type` keyword allows (`None`: any); `integer` is implied by `number`.
fn types(v: Option<&Value>) -> Option<BTreeSet<String>> {
    let mut set: BTreeSet<String> = match v? {
        Value::String(s) => [s.clone()].into(),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => return None,
    };
    if set.contains("number") {
        set.insert("integer".to_string());
    }
    Some(set)
}

/// The values an `enum`/`const` allows (`None`: any), as canonical JSON text.
fn values(node: &Cur<'_>) -> Option<BTreeSet<String>> {
    let mut set: Option<BTreeSet<String>> = None;
    if let Some(Value::Array(items)) = node.get("enum") {
        set = Some(items.iter().map(Value::to_string).collect());
    }
    if let Some(c) = node.get("const") {
        let one: BTreeSet<String> = [c.to_string()].into();
        set = Some(match set {
            Some(s) => s.intersection(&one).cloned().collect(),
            None => one,
        });
    }
    set
}

fn is_false(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Bool(false)))
}

impl<'d, 'a> Cx<'d, 'a> {
    fn emit(&mut self, class: Class, o: &Cur<'_>, n: &Cur<'_>, message: impl Into<String>) {
        self.out.push(Change {
            class,
            old: o.loc(),
            new: n.loc(),
            message: message.into(),
        });
    }

    fn breaks(&mut self, b: Breaks, o: &Cur<'_>, n: &Cur<'_>, message: impl Into<String>) {
        self.emit(Class::Breaking(b), o, n, message);
    }

    /// Resolves a `$ref` of `at` in its own version.
    fn resolve(&self, at: &Cur<'a>, r: &str, old: bool) -> Option<Cur<'a>> {
        let docs = if old { self.old } else { self.new };
        let (target, fragment) = r.split_once('#').unwrap_or((r, ""));
        let (id, doc) = if target.is_empty() {
            (at.id, at.doc)
        } else {
            let id = target.strip_prefix(BASE_URI).unwrap_or(target);
            let (id, doc) = docs.by_id.get_key_value(id)?;
            (*id, *doc)
        };
        if !fragment.is_empty() && !fragment.starts_with('/') {
            return None; // an anchor: not resolved here
        }
        let value = doc.value.pointer(fragment)?;
        Some(Cur {
            id,
            doc,
            pointer: fragment.to_string(),
            value: Some(value),
        })
    }

    /// Compares two subschemas (either may be absent: absent is `true`, any data).
    fn node(&mut self, o: &Cur<'a>, n: &Cur<'a>, depth: usize) {
        let ov = o.value.unwrap_or(&EMPTY);
        let nv = n.value.unwrap_or(&EMPTY);
        if o.value == n.value || (o.value.is_none() && nv == &Value::Bool(true)) {
            return;
        }
        if n.value.is_none() && ov == &Value::Bool(true) {
            return;
        }
        let key = (
            o.doc.file.to_string(),
            o.pointer.clone(),
            n.doc.file.to_string(),
            n.pointer.clone(),
        );
        if depth > MAX_DEPTH || !self.seen.insert(key) {
            return;
        }
        // `false` accepts nothing.
        match (is_false(o.value), is_false(n.value)) {
            (true, true) => return,
            (false, true) => {
                return self.breaks(
                    Breaks::WRITERS,
                    o,
                    n,
                    "the schema is now `false`: it rejects every value",
                );
            }
            (true, false) => {
                return self.breaks(
                    Breaks::READERS,
                    o,
                    n,
                    "the schema was `false` (no value valid) and now accepts values",
                );
            }
            (false, false) => {}
        }
        let schema_like = |v: &Value| v.is_object() || v.is_boolean();
        if !schema_like(ov) && o.value.is_some() || !schema_like(nv) && n.value.is_some() {
            return self.emit(
                Class::Unclassified,
                o,
                n,
                "a value that is not a schema object changed; not classified",
            );
        }
        if !self.refs(o, n, depth) {
            return;
        }
        self.type_(o, n);
        self.enum_(o, n);
        self.bounds(o, n);
        self.strings(o, n);
        self.required(o, n);
        self.properties(o, n, depth);
        for kw in ["additionalProperties", "unevaluatedProperties"] {
            self.additional(kw, o, n, depth);
        }
        self.node(&o.key("items"), &n.key("items"), depth + 1);
        self.prefix_items(o, n, depth);
        for kw in ["$defs", "definitions"] {
            self.defs(kw, o, n, depth);
        }
        self.combinators(o, n, depth);
        self.others(o, n);
    }

    /// `$ref`: equal refs are not followed; a changed ref is resolved on both sides and the
    /// targets compared. Returns whether the rest of the node is to be compared.
    fn refs(&mut self, o: &Cur<'a>, n: &Cur<'a>, depth: usize) -> bool {
        let or = o.get("$ref").and_then(Value::as_str);
        let nr = n.get("$ref").and_then(Value::as_str);
        if or == nr {
            return true;
        }
        let assertions = |c: &Cur<'_>| {
            c.value.and_then(Value::as_object).is_some_and(|m| {
                m.keys()
                    .any(|k| k != "$ref" && !ANNOTATIONS.contains(&k.as_str()))
            })
        };
        if (or.is_some() && assertions(o)) || (nr.is_some() && assertions(n)) {
            self.emit(
                Class::Unclassified,
                &o.key("$ref"),
                &n.key("$ref"),
                format!(
                    "`$ref` changed from {} to {} next to other keywords; not classified",
                    or.map_or("none".to_string(), |r| format!("`{r}`")),
                    nr.map_or("none".to_string(), |r| format!("`{r}`")),
                ),
            );
            return true;
        }
        let ot = match or {
            Some(r) => self.resolve(o, r, true),
            None => Some(o.clone()),
        };
        let nt = match nr {
            Some(r) => self.resolve(n, r, false),
            None => Some(n.clone()),
        };
        match (ot, nt) {
            (Some(ot), Some(nt)) => self.node(&ot, &nt, depth + 1),
            _ => self.emit(
                Class::Unclassified,
                &o.key("$ref"),
                &n.key("$ref"),
                format!(
                    "`$ref` changed from {} to {} and cannot be resolved here; not classified",
                    or.map_or("none".to_string(), |r| format!("`{r}`")),
                    nr.map_or("none".to_string(), |r| format!("`{r}`")),
                ),
            ),
        }
        false
    }

    fn type_(&mut self, o: &Cur<'a>, n: &Cur<'a>) {
        let (ot, nt) = (types(o.get("type")), types(n.get("type")));
        if ot == nt {
            return;
        }
        let (o, n) = (o.key("type"), n.key("type"));
        let all = |t: &Option<BTreeSet<String>>| {
            t.as_ref().map_or("any type".to_string(), |s| {
                let shown: BTreeSet<String> = s
                    .iter()
                    .filter(|x| !(x.as_str() == "integer" && s.contains("number")))
                    .cloned()
                    .collect();
                list(&shown)
            })
        };
        let message = format!("type changed from {} to {}", all(&ot), all(&nt));
        let narrowed = match (&ot, &nt) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(a), Some(b)) => !a.is_subset(b),
        };
        let widened = match (&ot, &nt) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(a), Some(b)) => !b.is_subset(a),
        };
        self.breaks(
            Breaks {
                readers: widened,
                writers: narrowed,
            },
            &o,
            &n,
            message,
        );
    }

    fn enum_(&mut self, o: &Cur<'a>, n: &Cur<'a>) {
        let (ov, nv) = (values(o), values(n));
        if ov == nv {
            return;
        }
        let kw = |c: &Cur<'a>| {
            if c.get("enum").is_some() || c.get("const").is_none() {
                c.key("enum")
            } else {
                c.key("const")
            }
        };
        let (oc, nc) = (kw(o), kw(n));
        match (&ov, &nv) {
            (Some(_), None) => self.breaks(
                Breaks::READERS,
                &oc,
                &nc,
                "the value is no longer restricted to a list (`enum`/`const` removed)",
            ),
            (None, Some(b)) => self.breaks(
                Breaks::WRITERS,
                &oc,
                &nc,
                format!("the value is now restricted to {}", list(b)),
            ),
            (Some(a), Some(b)) => {
                let removed: BTreeSet<String> = a.difference(b).cloned().collect();
                let added: BTreeSet<String> = b.difference(a).cloned().collect();
                let mut parts = Vec::new();
                if !removed.is_empty() {
                    parts.push(format!("{} no longer allowed", list(&removed)));
                }
                if !added.is_empty() {
                    parts.push(format!("{} newly allowed", list(&added)));
                }
                self.breaks(
                    Breaks {
                        readers: !added.is_empty(),
                        writers: !removed.is_empty(),
                    },
                    &oc,
                    &nc,
                    format!("allowed values changed: {}", parts.join("; ")),
                );
            }
            (None, None) => {}
        }
    }

    fn bounds(&mut self, o: &Cur<'a>, n: &Cur<'a>) {
        for (kw, lower) in LOWER
            .iter()
            .map(|k| (*k, true))
            .chain(UPPER.iter().map(|k| (*k, false)))
        {
            let (a, b) = (o.get(kw), n.get(kw));
            if a == b {
                continue;
            }
            let (oc, nc) = (o.key(kw), n.key(kw));
            let (af, bf) = (a.and_then(Value::as_f64), b.and_then(Value::as_f64));
            let tightened = match (af, bf) {
                (None, Some(_)) => true,
                (Some(_), None) => false,
                (Some(x), Some(y)) if lower => y > x,
                (Some(x), Some(y)) => y < x,
                (None, None) => continue,
            };
            let describe = |v: Option<&Value>| v.map_or("none".to_string(), show);
            let message = format!(
                "`{kw}` {} from {} to {}",
                if tightened { "tightened" } else { "loosened" },
                describe(a),
                describe(b)
            );
            let b = if tightened {
                Breaks::WRITERS
            } else {
                Breaks::READERS
            };
            self.breaks(b, &oc, &nc, message);
        }
        let (ma, mb) = (o.get("multipleOf"), n.get("multipleOf"));
        if ma != mb {
            let (oc, nc) = (o.key("multipleOf"), n.key("multipleOf"));
            let (af, bf) = (ma.and_then(Value::as_f64), mb.and_then(Value::as_f64));
            let multiple = |x: f64, y: f64| y != 0.0 && ((x / y) - (x / y).round()).abs() < 1e-9;
            let breaks = match (af, bf) {
                (None, Some(_)) => Breaks::WRITERS,
                (Some(_), None) => Breaks::READERS,
                (Some(x), Some(y)) if multiple(y, x) => Breaks::WRITERS,
                (Some(x), Some(y)) if multiple(x, y) => Breaks::READERS,
                _ => Breaks::BOTH,
            };
            let describe = |v: Option<&Value>| v.map_or("none".to_string(), show);
            self.breaks(
                breaks,
                &oc,
                &nc,
                format!(
                    "`multipleOf` changed from {} to {}",
                    describe(ma),
                    describe(mb)
                ),
            );
        }
    }

    fn strings(&mut self, o: &Cur<'a>, n: &Cur<'a>) {
        for kw in ["pattern", "format"] {
            let (a, b) = (o.get(kw), n.get(kw));
            if a == b {
                continue;
            }
            let (oc, nc) = (o.key(kw), n.key(kw));
            match (a, b) {
                (None, Some(v)) => {
                    self.breaks(Breaks::WRITERS, &oc, &nc, format!("`{kw}` {} added", show(v)))
                }
                (Some(v), None) => {
                    self.breaks(Breaks::READERS, &oc, &nc, format!("`{kw}` {} removed", show(v)))
                }
                (Some(x), Some(y)) => self.emit(
                    Class::Unclassified,
                    &oc,
                    &nc,
                    format!(
                        "`{kw}` changed from {} to {}; whether it is tighter or looser is not decided",
                        show(x),
                        show(y)
                    ),
                ),
                (None, None) => {}
            }
        }
        let unique = |c: &Cur<'_>| c.get("uniqueItems") == Some(&Value::Bool(true));
        match (unique(o), unique(n)) {
            (false, true) => self.breaks(
                Breaks::WRITERS,
                &o.key("uniqueItems"),
                &n.key("uniqueItems"),
                "items must now be unique",
            ),
            (true, false) => self.breaks(
                Breaks::READERS,
                &o.key("uniqueItems"),
                &n.key("uniqueItems"),
                "items no longer need to be unique",
            ),
            _ => {}
        }
    }

    fn required(&mut self, o: &Cur<'a>, n: &Cur<'a>) {
        let names = |c: &Cur<'_>| -> BTreeSet<String> {
            match c.get("required") {
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
                _ => BTreeSet::new(),
            }
        };
        let (a, b) = (names(o), names(n));
        let (oc, nc) = (o.key("required"), n.key("required"));
        for name in b.difference(&a) {
            let nc = required_entry(&nc, name);
            self.breaks(
                Breaks::WRITERS,
                &oc,
                &nc,
                format!("property `{name}` is newly required"),
            );
        }
        for name in a.difference(&b) {
            let oc = required_entry(&oc, name);
            self.breaks(
                Breaks::READERS,
                &oc,
                &nc,
                format!("property `{name}` is no longer required"),
            );
        }
    }

    fn properties(&mut self, o: &Cur<'a>, n: &Cur<'a>, depth: usize) {
        let keys = |c: &Cur<'a>| -> BTreeSet<&'a str> {
            c.get("properties")
                .and_then(Value::as_object)
                .map(|m| m.keys().map(String::as_str).collect())
                .unwrap_or_default()
        };
        let (a, b) = (keys(o), keys(n));
        let (op, np) = (o.key("properties"), n.key("properties"));
        let closed =
            is_false(n.get("additionalProperties")) || is_false(n.get("unevaluatedProperties"));
        for k in a.union(&b) {
            let (oc, nc) = (op.key(k), np.key(k));
            match (a.contains(k), b.contains(k)) {
                (true, true) => self.node(&oc, &nc, depth + 1),
                (true, false) => {
                    let (b, tail) = if closed {
                        (
                            Breaks::BOTH,
                            "; the object is closed, so data that still has it is rejected",
                        )
                    } else {
                        (Breaks::READERS, "")
                    };
                    self.breaks(
                        b,
                        &oc,
                        &nc,
                        format!(
                            "property `{k}` removed: readers that use it lose its definition{tail}"
                        ),
                    );
                }
                (false, true) => {
                    self.emit(Class::Compatible, &oc, &nc, format!("property `{k}` added"))
                }
                (false, false) => {}
            }
        }
    }

    fn additional(&mut self, kw: &str, o: &Cur<'a>, n: &Cur<'a>, depth: usize) {
        let (oc, nc) = (o.key(kw), n.key(kw));
        match (is_false(oc.value), is_false(nc.value)) {
            (false, true) => self.breaks(
                Breaks::WRITERS,
                &oc,
                &nc,
                format!("`{kw}` closed: objects with properties not listed are now rejected"),
            ),
            (true, false) => self.breaks(
                Breaks::READERS,
                &oc,
                &nc,
                format!("`{kw}` opened: objects may now carry properties not listed"),
            ),
            _ => self.node(&oc, &nc, depth + 1),
        }
    }

    fn prefix_items(&mut self, o: &Cur<'a>, n: &Cur<'a>, depth: usize) {
        let len = |c: &Cur<'_>| {
            c.get("prefixItems")
                .and_then(Value::as_array)
                .map_or(0, Vec::len)
        };
        let (op, np) = (o.key("prefixItems"), n.key("prefixItems"));
        for i in 0..len(o).max(len(n)) {
            self.node(&op.index(i), &np.index(i), depth + 1);
        }
    }

    fn defs(&mut self, kw: &str, o: &Cur<'a>, n: &Cur<'a>, depth: usize) {
        let keys = |c: &Cur<'a>| -> BTreeSet<&'a str> {
            c.get(kw)
                .and_then(Value::as_object)
                .map(|m| m.keys().map(String::as_str).collect())
                .unwrap_or_default()
        };
        let (a, b) = (keys(o), keys(n));
        let (od, nd) = (o.key(kw), n.key(kw));
        for k in a.union(&b) {
            let (oc, nc) = (od.key(k), nd.key(k));
            match (a.contains(k), b.contains(k)) {
                (true, true) => self.node(&oc, &nc, depth + 1),
                (true, false) => self.breaks(
                    Breaks::BOTH,
                    &oc,
                    &nc,
                    format!("definition `{k}` removed: a `$ref` to it no longer resolves"),
                ),
                (false, true) => self.emit(
                    Class::Compatible,
                    &oc,
                    &nc,
                    format!("definition `{k}` added"),
                ),
                (false, false) => {}
            }
        }
    }

    fn combinators(&mut self, o: &Cur<'a>, n: &Cur<'a>, depth: usize) {
        for kw in ["allOf", "anyOf", "oneOf"] {
            let (a, b) = (o.get(kw), n.get(kw));
            if a == b {
                continue;
            }
            let (oc, nc) = (o.key(kw), n.key(kw));
            let empty = Vec::new();
            let av = a.and_then(Value::as_array).unwrap_or(&empty);
            let bv = b.and_then(Value::as_array).unwrap_or(&empty);
            let subset = |x: &Vec<Value>, y: &Vec<Value>| x.iter().all(|v| y.contains(v));
            match kw {
                "allOf" | "anyOf" if a.is_some() && b.is_some() && av.len() == bv.len() => {
                    for i in 0..av.len() {
                        self.node(&oc.index(i), &nc.index(i), depth + 1);
                    }
                }
                // More `allOf` branches, or fewer `anyOf` branches, narrow.
                "allOf" | "anyOf" if subset(av, bv) || subset(bv, av) => {
                    let grew = subset(av, bv);
                    let narrowed = (kw == "allOf") == grew;
                    let b = if narrowed {
                        Breaks::WRITERS
                    } else {
                        Breaks::READERS
                    };
                    self.breaks(
                        b,
                        &oc,
                        &nc,
                        format!(
                            "`{kw}` {} a branch: the schema is now {}",
                            if grew { "gained" } else { "lost" },
                            if narrowed { "narrower" } else { "wider" }
                        ),
                    );
                }
                _ => self.emit(
                    Class::Unclassified,
                    &oc,
                    &nc,
                    format!("`{kw}` changed; not classified"),
                ),
            }
        }
    }

    /// Annotations (compatible) and keywords without a rule (unclassified).
    fn others(&mut self, o: &Cur<'a>, n: &Cur<'a>) {
        let keys = |c: &Cur<'a>| -> BTreeSet<&'a str> {
            c.value
                .and_then(Value::as_object)
                .map(|m| m.keys().map(String::as_str).collect())
                .unwrap_or_default()
        };
        let (a, b) = (keys(o), keys(n));
        for k in a.union(&b) {
            if HANDLED.contains(k) || LOWER.contains(k) || UPPER.contains(k) || *k == "$id" {
                continue;
            }
            if o.get(k) == n.get(k) {
                continue;
            }
            let (oc, nc) = (o.key(k), n.key(k));
            if ANNOTATIONS.contains(k) {
                self.emit(
                    Class::Compatible,
                    &oc,
                    &nc,
                    format!("annotation `{k}` changed"),
                );
            } else {
                self.emit(
                    Class::Unclassified,
                    &oc,
                    &nc,
                    format!("`{k}` changed; no rule classifies it"),
                );
            }
        }
    }
}

/// The position of `name` inside a `required` array, when it is there.
fn required_entry<'a>(req: &Cur<'a>, name: &str) -> Cur<'a> {
    let i = req
        .value
        .and_then(Value::as_array)
        .and_then(|items| items.iter().position(|v| v.as_str() == Some(name)));
    match i {
        Some(i) => req.index(i),
        None => req.clone(),
    }
}
