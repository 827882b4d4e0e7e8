//! `railyard validate --baseline`: the project's schemas against an earlier version of them.
//!
//! For every schema id present in both versions (same id, so same major) each change is
//! classified by [`crate::schema::compat::diff`]; a breaking one is a `schema-breaking` error
//! at the keyword in the new file, naming the keyword's place in the baseline and the
//! pipelines and mappings at risk; an unclassified one is a `schema-unclassified` warning. A
//! new major (`@2` beside or instead of `@1`) is how a breaking change is published: it is
//! fine, and every pipeline and mapping still naming an older major is listed
//! (`schema-superseded`, a warning).
//!
//! Who is at risk follows the direction (see [`crate::schema::compat`]): a change that breaks
//! *writers* (NEW rejects data OLD accepted) hits whatever produces the schema — a mapping's
//! `to`, a script's or plugin's `produces`, a `split`/`batch` schema, an output's `schema` —
//! and every pipeline input of the schema, whose data comes from producers written against
//! OLD. A change that breaks *readers* (NEW accepts data OLD did not) hits whatever consumes
//! it — a mapping's `from`, a pipeline's input and `validate` steps. Schemas that `$ref` the
//! changed one (directly or through others) count as the changed one.

use std::collections::{BTreeMap, BTreeSet};

use super::{Project, Step};
use crate::diag::{Code, Diagnostic, Span};
use crate::schema::compat::{self, Breaks, Class, Docs, Loc};
use crate::schema::locate::locate_pointer;
use crate::schema::{BASE_URI, SchemaId};

/// How a pipeline or mapping uses a schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// A pipeline's input: data written by a producer, read by the pipeline.
    Input,
    /// Read: a mapping's `from`, a `validate` step.
    Reads,
    /// Written: a mapping's `to`, `produces`, a `split`/`batch` schema, an output's `schema`.
    Writes,
}

/// One use of a schema id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Use {
    pub role: Role,
    /// `pipeline` or `mapping`.
    pub kind: &'static str,
    pub name: String,
    pub file: String,
    /// Where in it: `input`, `from`, `to`, `validate step`, `output`, ...
    pub how: &'static str,
    /// The id it names (the changed id, or one that `$ref`s it).
    pub id: String,
}

/// Every use of any of `ids` by the pipelines and mappings of `project`.
pub fn uses(project: &Project, ids: &BTreeSet<String>) -> Vec<Use> {
    let mut out = Vec::new();
    for m in project.mappings.values() {
        for (id, role, how) in [(&m.from, Role::Reads, "from"), (&m.to, Role::Writes, "to")] {
            if ids.contains(id) {
                out.push(Use {
                    role,
                    kind: "mapping",
                    name: m.name.clone(),
                    file: m.file.clone(),
                    how,
                    id: id.clone(),
                });
            }
        }
    }
    for p in project.pipelines.values() {
        let mut named: Vec<(String, Role, &'static str)> = Vec::new();
        if let Some(s) = &p.input_schema {
            named.push((s.clone(), Role::Input, "input"));
        }
        collect_steps(project, &p.steps, &mut named);
        for o in &p.outputs {
            named.extend(o.schema.clone().map(|s| (s, Role::Writes, "output")));
        }
        for (id, role, how) in named {
            if ids.contains(&id) {
                out.push(Use {
                    role,
                    kind: "pipeline",
                    name: p.name.clone(),
                    file: p.file.clone(),
                    how,
                    id,
                });
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn collect_steps(project: &Project, steps: &[Step], out: &mut Vec<(String, Role, &'static str)>) {
    for step in steps {
        match step {
            Step::Validate { schema } => out.push((schema.clone(), Role::Reads, "validate step")),
            Step::Map { mapping } => {
                if let Some(m) = project.mappings.get(mapping) {
                    out.push((m.from.clone(), Role::Reads, "map step"));
                    out.push((m.to.clone(), Role::Writes, "map step"));
                }
            }
            Step::Split { schema, .. } | Step::Batch { schema, .. } => {
                out.extend(
                    schema
                        .clone()
                        .map(|s| (s, Role::Writes, "split/batch step")),
                );
            }
            Step::Script { produces, .. } | Step::Plugin { produces, .. } => {
                out.extend(produces.clone().map(|s| (s, Role::Writes, "produces")));
            }
            Step::Switch { cases, default, .. } => {
                for case in cases.iter().chain(default.as_deref()) {
                    collect_steps(project, &case.steps, out);
                    for o in &case.outputs {
                        out.extend(o.schema.clone().map(|s| (s, Role::Writes, "output")));
                    }
                }
            }
            _ => {}
        }
    }
}

/// `id` and every schema of `project` that `$ref`s it, directly or through others.
pub fn with_dependents(project: &Project, id: &str) -> BTreeSet<String> {
    let mut refs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in project.schemas.entries() {
        crate::schema::collect_refs(&e.value, &mut |r| {
            let target = r.split('#').next().unwrap_or(r);
            let target = target.strip_prefix(BASE_URI).unwrap_or(target);
            if !target.is_empty() && target != e.id {
                refs.entry(target.to_string())
                    .or_default()
                    .insert(e.id.clone());
            }
        });
    }
    let mut out: BTreeSet<String> = [id.to_string()].into();
    let mut todo = vec![id.to_string()];
    while let Some(t) = todo.pop() {
        for dep in refs.get(&t).into_iter().flatten() {
            if out.insert(dep.clone()) {
                todo.push(dep.clone());
            }
        }
    }
    out
}

/// `file:line:col` of a change's place in `project` (the file alone when it has no source).
pub fn position(project: &Project, loc: &Loc) -> (String, Span) {
    let span = project
        .sources
        .get(&loc.file)
        .and_then(|src| locate_pointer(&src.text, &loc.pointer))
        .unwrap_or_default();
    (loc.file.clone(), span)
}

fn line_col(project: &Project, loc: &Loc) -> String {
    let (file, span) = position(project, loc);
    match project.sources.get(&file) {
        Some(src) => {
            let lc = src.line_col(span.start);
            format!("{file}:{}:{}", lc.line, lc.column)
        }
        None => file,
    }
}

fn pointer(loc: &Loc) -> &str {
    if loc.pointer.is_empty() {
        "/"
    } else {
        &loc.pointer
    }
}

/// The diagnostics of comparing `new` with `old` (the baseline, shown as `label`: a
/// directory or a git revision).
pub fn compare(old: &Project, new: &Project, label: &str) -> Vec<Diagnostic> {
    let (old_docs, new_docs) = (
        Docs::from_registry(&old.schemas),
        Docs::from_registry(&new.schemas),
    );
    let mut diags = Vec::new();
    for id in new.schemas.ids() {
        if !old.schemas.contains(id) {
            continue;
        }
        for change in compat::diff(&old_docs, id, &new_docs, id) {
            let (file, span) = position(new, &change.new);
            let was = format!(
                "in {label}: {} at {}",
                line_col(old, &change.old),
                pointer(&change.old)
            );
            let at = pointer(&change.new);
            let d = match change.class {
                Class::Compatible => continue,
                Class::Unclassified => Diagnostic::warning(
                    Code::SchemaUnclassified,
                    format!(
                        "`{id}` changed in place at {at}: {}; {was}",
                        change.message
                    ),
                )
                .with_help(
                    "check by hand whether the change breaks readers or writers; if it does, \
                     publish it under a new major",
                ),
                Class::Breaking(breaks) => Diagnostic::error(
                    Code::SchemaBreaking,
                    format!(
                        "breaking change to `{id}` without a new major, at {at}: {} (breaks {}); {was}",
                        change.message,
                        breaks.describe()
                    ),
                )
                .with_help(affected_help(new, id, breaks)),
            };
            diags.push(d.at(file, span).with_label(change.class.as_str()));
        }
    }
    diags.extend(superseded(old, new, label));
    diags
}

fn affected_help(new: &Project, id: &str, breaks: Breaks) -> String {
    let ids = with_dependents(new, id);
    let mut grouped: BTreeMap<(&'static str, String, String), Vec<String>> = BTreeMap::new();
    for u in uses(new, &ids).into_iter().filter(|u| match u.role {
        Role::Reads => breaks.readers,
        Role::Writes => breaks.writers,
        Role::Input => true,
    }) {
        let via = if u.id == id {
            String::new()
        } else {
            format!(" via `{}`", u.id)
        };
        let how = format!("{}{via}", u.how);
        let entry = grouped.entry((u.kind, u.name, u.file)).or_default();
        if !entry.contains(&how) {
            entry.push(how);
        }
    }
    let at_risk: Vec<String> = grouped
        .into_iter()
        .map(|((kind, name, file), how)| format!("{kind} `{name}` ({file}: {})", how.join(", ")))
        .collect();
    let bump = SchemaId::parse(id)
        .map(|s| format!("{}.{}@{}", s.namespace, s.name, s.major + 1))
        .unwrap_or_else(|_| "a new major".to_string());
    let who = if at_risk.is_empty() {
        "nothing in the project uses it, but producers and consumers outside may".to_string()
    } else {
        format!("at risk: {}", at_risk.join(", "))
    };
    format!("{who}; publish the change as `{bump}` or make it compatible")
}

/// New majors, and the pipelines and mappings still on an older one.
fn superseded(old: &Project, new: &Project, label: &str) -> Vec<Diagnostic> {
    let parsed: Vec<SchemaId> = new
        .schemas
        .ids()
        .filter_map(|id| SchemaId::parse(id).ok())
        .collect();
    let mut diags = Vec::new();
    for id in &parsed {
        let shown = id.to_string();
        if old.schemas.contains(&shown) {
            continue;
        }
        let older: BTreeSet<String> = old
            .schemas
            .ids()
            .filter_map(|o| SchemaId::parse(o).ok())
            .filter(|o| o.namespace == id.namespace && o.name == id.name && o.major < id.major)
            .map(|o| o.to_string())
            .collect();
        if older.is_empty() {
            continue;
        }
        let still = uses(new, &older);
        if still.is_empty() {
            continue;
        }
        let names: Vec<String> = still
            .iter()
            .map(|u| format!("{} `{}` ({} {} `{}`)", u.kind, u.name, u.file, u.how, u.id))
            .collect();
        let file = new.schemas.get(&shown).map(|e| e.file.clone());
        diags.push(
            Diagnostic::warning(
                Code::SchemaSuperseded,
                format!(
                    "`{shown}` is a new major (not in {label}); still on an older major: {}",
                    names.join(", ")
                ),
            )
            .at(file.unwrap_or_default(), Span::default())
            .with_help(format!("move them to `{shown}` when they are ready")),
        );
    }
    diags
}
