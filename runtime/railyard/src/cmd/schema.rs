//! `railyard schema list|validate|diff`

use std::path::PathBuf;

use railyard_core::project::{self, Purpose};
use railyard_core::schema::{compile_standalone, violations};

use crate::exit;
use crate::fs::open_project;

#[derive(clap::Subcommand)]
pub enum SchemaCommand {
    /// List the schemas of the project's registry.
    List {
        /// Project directory.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check one JSON payload against a schema; print every violation.
    Validate {
        /// Schema id from the project's registry, e.g. `canonical.order@1`. With
        /// `--schema-file` there is no id: the one positional argument is the payload.
        #[arg(required_unless_present = "schema_file")]
        schema_id: Option<String>,
        /// A schema file to use instead of a registry id.
        #[arg(long)]
        schema_file: Option<PathBuf>,
        /// The payload (JSON); `-` or nothing reads stdin.
        file: Option<PathBuf>,
        /// Project directory whose registry resolves the id.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Classify every change between two versions of a schema; exit 1 on a breaking one.
    ///
    /// OLD and NEW are two schema files, or two project directories (every schema id in both
    /// is compared; `--id` picks one). Breaks writers: NEW rejects data OLD accepted (a type
    /// or enum narrowed, a bound or pattern added or tightened, a property newly required,
    /// `additionalProperties` closed) — not BACKWARD compatible, the new schema cannot read
    /// data written with the old. Breaks readers: NEW accepts data OLD did not promise (the
    /// mirror cases, and a property removed) — not FORWARD compatible, the old schema cannot
    /// read data written with the new. Changes no rule decides (a changed `pattern` or
    /// `oneOf`) are reported as unclassified warnings.
    Diff(crate::cmd::schema_diff::Args),
}

pub fn run(cmd: SchemaCommand) -> u8 {
    match cmd {
        SchemaCommand::List { dir, json } => list(&dir, json),
        SchemaCommand::Diff(args) => crate::cmd::schema_diff::run(args),
        SchemaCommand::Validate {
            schema_id,
            schema_file,
            file,
            dir,
        } => {
            // Positionals fill in order, so with `--schema-file` the payload lands in
            // `schema_id`: `schema validate --schema-file s.json payload.json`.
            let (schema_id, file) = match (&schema_file, schema_id, file) {
                (Some(_), Some(payload), None) => (None, Some(PathBuf::from(payload))),
                (Some(_), Some(id), Some(_)) => {
                    eprintln!(
                        "error: give a schema id or --schema-file, not both (got the id `{id}`)"
                    );
                    return exit::USAGE;
                }
                (_, id, file) => (id, file),
            };
            validate(schema_id, schema_file, file, &dir)
        }
    }
}

fn load_registry(dir: &std::path::Path) -> Result<project::Project, u8> {
    let (_, loaded) = open_project(dir, Purpose::Check)?;
    let schema_errors = loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error() && d.file.as_deref().is_some_and(|f| f.starts_with("schemas/")))
        .count();
    if schema_errors > 0 {
        eprintln!(
            "warning: {schema_errors} schema file(s) have errors; run `railyard validate` for details"
        );
    }
    Ok(loaded.project)
}

fn list(dir: &std::path::Path, json: bool) -> u8 {
    let project = match load_registry(dir) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if json {
        let items: Vec<serde_json::Value> = project
            .schemas
            .entries()
            .map(|e| {
                serde_json::json!({
                    "id": e.id,
                    "file": e.file,
                    "title": e.title,
                    "compiled": e.validator.is_some(),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&items).unwrap_or_default()
        );
        return exit::OK;
    }
    let width = project
        .schemas
        .ids()
        .map(str::len)
        .max()
        .unwrap_or(2)
        .max(2);
    println!("{:width$}  FILE", "ID");
    for e in project.schemas.entries() {
        let mark = if e.validator.is_some() {
            ""
        } else {
            "  (invalid)"
        };
        println!("{:width$}  {}{mark}", e.id, e.file);
    }
    exit::OK
}

fn validate(
    schema_id: Option<String>,
    schema_file: Option<PathBuf>,
    file: Option<PathBuf>,
    dir: &std::path::Path,
) -> u8 {
    let (label, validator) = match (&schema_id, &schema_file) {
        (_, Some(path)) => {
            let value = match crate::read_payload(Some(path)) {
                Ok((_, v)) => v,
                Err(msg) => {
                    eprintln!("error: {msg}");
                    return exit::USAGE;
                }
            };
            match compile_standalone(&value) {
                Ok(v) => (path.display().to_string(), std::sync::Arc::new(v)),
                Err(msg) => {
                    eprintln!(
                        "error: `{}` is not a valid JSON Schema: {msg}",
                        path.display()
                    );
                    return exit::USAGE;
                }
            }
        }
        (Some(id), None) => {
            let project = match load_registry(dir) {
                Ok(p) => p,
                Err(code) => return code,
            };
            let Some(entry) = project.schemas.get(id) else {
                eprintln!("error: no schema has the id `{id}`");
                if let Some(help) = project.schemas.nearest_help(id) {
                    eprintln!("  help: {help}");
                }
                return exit::USAGE;
            };
            let Some(v) = entry.validator.clone() else {
                eprintln!("error: schema `{id}` does not compile; run `railyard validate`");
                return exit::USAGE;
            };
            (id.clone(), v)
        }
        (None, None) => {
            eprintln!("error: give a schema id or --schema-file");
            return exit::USAGE;
        }
    };
    let (name, payload) = match crate::read_payload(file.as_ref()) {
        Ok(p) => p,
        Err(msg) => {
            eprintln!("error: {msg}");
            return exit::USAGE;
        }
    };
    let errors = violations(&validator, &payload);
    if errors.is_empty() {
        println!("valid: {name} conforms to {label}");
        return exit::OK;
    }
    for v in &errors {
        let at = if v.instance_path.is_empty() {
            "/"
        } else {
            &v.instance_path
        };
        println!("error at {at}: {}", v.message);
        println!("  schema path: {}", v.schema_path);
    }
    println!(
        "invalid: {name} violates {label} in {} place{}",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
    exit::INVALID
}
