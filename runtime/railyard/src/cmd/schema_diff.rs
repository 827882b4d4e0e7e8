//! `railyard schema diff OLD NEW`: two schema files, or two project directories.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use railyard_core::SourceText;
use railyard_core::project::{Project, Purpose, baseline::position};
use railyard_core::schema::SchemaId;
use railyard_core::schema::compat::{self, Breaks, Change, Class, Docs, Loc};
use railyard_core::schema::locate::locate_pointer;
use serde_json::{Value, json};

use crate::exit;
use crate::fs::open_project;
use crate::render::{Format, Paths, escape_data, escape_property};

#[derive(clap::Args)]
pub struct Args {
    /// The old version: a schema file (JSON or YAML) or a project directory.
    pub old: PathBuf,
    /// The new version: a schema file or a project directory (the same kind as OLD).
    pub new: PathBuf,
    /// With two directories: compare only this schema id.
    #[arg(long)]
    pub id: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// One change with its places resolved to `file:line:col`.
struct Row {
    change: Change,
    old: Pos,
    new: Pos,
}

struct Pos {
    file: String,
    line: usize,
    column: usize,
}

pub fn run(args: Args) -> u8 {
    let rows = match (args.old.is_dir(), args.new.is_dir()) {
        (true, true) => dirs(&args),
        (false, false) => files(&args.old, &args.new),
        _ => Err("give two schema files or two project directories".to_string()),
    };
    let rows = match rows {
        Ok(r) => r,
        Err(msg) => {
            eprintln!("error: {msg}");
            return exit::USAGE;
        }
    };
    print!("{}", render(&rows, args.format));
    if rows.iter().any(|r| r.change.class.is_breaking()) {
        exit::INVALID
    } else {
        exit::OK
    }
}

fn pos(file: String, src: Option<&SourceText>, loc: &Loc) -> Pos {
    let (line, column) = match src {
        Some(src) => {
            let span = locate_pointer(&src.text, &loc.pointer).unwrap_or_default();
            let lc = src.line_col(span.start);
            (lc.line, lc.column)
        }
        None => (1, 1),
    };
    Pos { file, line, column }
}

fn read_schema(path: &Path) -> Result<(SourceText, Value), String> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read `{shown}`: {e}"))?;
    let is_yaml = shown.ends_with(".yaml") || shown.ends_with(".yml");
    let value = if is_yaml {
        railyard_core::yaml::parse(&text)
            .map(|n| n.to_json())
            .map_err(|e| format!("`{shown}` is not valid YAML: {}", e.message))?
    } else {
        railyard_core::json::parse_payload(text.as_bytes())
            .map_err(|e| format!("`{shown}` is not valid JSON: {e}"))?
    };
    Ok((SourceText::new(shown, text), value))
}

/// The schema id a file's path gives (`.../schemas/canonical/order@1.json`), or its name.
fn id_of(path: &Path) -> String {
    let shown = path.to_string_lossy().replace('\\', "/");
    let rel = shown
        .rsplit_once("schemas/")
        .map_or(shown.as_str(), |(_, r)| r);
    SchemaId::from_path(rel).unwrap_or_else(|| {
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    })
}

fn files(old: &Path, new: &Path) -> Result<Vec<Row>, String> {
    let (old_src, old_value) = read_schema(old)?;
    let (new_src, new_value) = read_schema(new)?;
    let (old_id, new_id) = (id_of(old), id_of(new));
    let (old_file, new_file) = (old.display().to_string(), new.display().to_string());
    let old_docs = Docs::single(&old_id, &old_file, &old_value);
    let new_docs = Docs::single(&new_id, &new_file, &new_value);
    Ok(compat::diff(&old_docs, &old_id, &new_docs, &new_id)
        .into_iter()
        .map(|change| Row {
            old: pos(old_file.clone(), Some(&old_src), &change.old),
            new: pos(new_file.clone(), Some(&new_src), &change.new),
            change,
        })
        .collect())
}

fn load(dir: &Path) -> Result<Project, String> {
    open_project(dir, Purpose::Check)
        .map(|(_, loaded)| loaded.project)
        .map_err(|_| format!("cannot load the project `{}`", dir.display()))
}

fn dirs(args: &Args) -> Result<Vec<Row>, String> {
    let (old, new) = (load(&args.old)?, load(&args.new)?);
    let (old_paths, new_paths) = (Paths::new(&args.old), Paths::new(&args.new));
    let (old_docs, new_docs) = (
        Docs::from_registry(&old.schemas),
        Docs::from_registry(&new.schemas),
    );
    let mut ids: Vec<&str> = old.schemas.ids().chain(new.schemas.ids()).collect();
    ids.sort();
    ids.dedup();
    if let Some(id) = &args.id {
        if !old.schemas.contains(id) && !new.schemas.contains(id) {
            return Err(format!("no schema has the id `{id}` in either directory"));
        }
        ids.retain(|i| i == id);
    }
    let at = |p: &Project, paths: &Paths, loc: &Loc| {
        let (file, _) = position(p, loc);
        pos(paths.show(&file), p.sources.get(&file), loc)
    };
    let mut rows = Vec::new();
    for id in ids {
        let (o, n) = (old.schemas.get(id), new.schemas.get(id));
        let whole = |file: &str| Loc {
            id: id.to_string(),
            file: file.to_string(),
            pointer: String::new(),
        };
        let changes = match (o, n) {
            (Some(_), Some(_)) => compat::diff(&old_docs, id, &new_docs, id),
            (Some(e), None) => vec![Change {
                class: Class::Breaking(Breaks::BOTH),
                old: whole(&e.file),
                new: whole(""),
                message: format!("schema `{id}` removed"),
            }],
            (None, Some(e)) => vec![Change {
                class: Class::Compatible,
                old: whole(""),
                new: whole(&e.file),
                message: format!("schema `{id}` added"),
            }],
            (None, None) => Vec::new(),
        };
        for change in changes {
            rows.push(Row {
                old: at(&old, &old_paths, &change.old),
                new: at(&new, &new_paths, &change.new),
                change,
            });
        }
    }
    Ok(rows)
}

fn class_label(class: Class) -> String {
    match class {
        Class::Breaking(b) => format!("breaking for {}", b.describe()),
        other => other.as_str().to_string(),
    }
}

fn render(rows: &[Row], format: Format) -> String {
    let mut out = String::new();
    match format {
        Format::Json => {
            let items: Vec<Value> = rows
                .iter()
                .map(|r| {
                    let (readers, writers) = match r.change.class {
                        Class::Breaking(b) => (b.readers, b.writers),
                        _ => (false, false),
                    };
                    let place = |p: &Pos, l: &Loc| {
                        json!({"file": p.file, "line": p.line, "column": p.column,
                               "pointer": l.pointer, "id": l.id})
                    };
                    json!({
                        "class": r.change.class.as_str(),
                        "breaks_readers": readers,
                        "breaks_writers": writers,
                        "message": r.change.message,
                        "old": place(&r.old, &r.change.old),
                        "new": place(&r.new, &r.change.new),
                    })
                })
                .collect();
            out = serde_json::to_string_pretty(&items).unwrap_or_else(|_| "[]".to_string());
            out.push('\n');
        }
        Format::Github => {
            for r in rows {
                let (kind, title) = match r.change.class {
                    Class::Breaking(_) => ("error", "schema-breaking"),
                    Class::Unclassified => ("warning", "schema-unclassified"),
                    Class::Compatible => ("notice", "schema-compatible"),
                };
                let message = format!(
                    "{}: {} (at {}; was {}:{}:{})",
                    class_label(r.change.class),
                    r.change.message,
                    pointer(&r.change.new),
                    r.old.file,
                    r.old.line,
                    r.old.column
                );
                let _ = writeln!(
                    out,
                    "::{kind} file={},line={},col={},title={title}::{}",
                    escape_property(&r.new.file),
                    r.new.line,
                    r.new.column,
                    escape_data(&message)
                );
            }
        }
        Format::Human => {
            for r in rows {
                let _ = writeln!(
                    out,
                    "{}:{}:{}: {}: {}\n    at {} (old: {}:{}:{} at {})",
                    r.new.file,
                    r.new.line,
                    r.new.column,
                    class_label(r.change.class),
                    r.change.message,
                    pointer(&r.change.new),
                    r.old.file,
                    r.old.line,
                    r.old.column,
                    pointer(&r.change.old),
                );
            }
            let count =
                |f: &dyn Fn(Class) -> bool| rows.iter().filter(|r| f(r.change.class)).count();
            let _ = writeln!(
                out,
                "{} breaking ({} for readers, {} for writers), {} unclassified, {} compatible",
                count(&|c| c.is_breaking()),
                count(&|c| matches!(c, Class::Breaking(b) if b.readers)),
                count(&|c| matches!(c, Class::Breaking(b) if b.writers)),
                count(&|c| c == Class::Unclassified),
                count(&|c| c == Class::Compatible),
            );
        }
    }
    out
}

fn pointer(l: &Loc) -> &str {
    if l.pointer.is_empty() {
        "/"
    } else {
        &l.pointer
    }
}
