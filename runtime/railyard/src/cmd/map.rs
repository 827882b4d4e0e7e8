//! `railyard map MAPPING [FILE|-]` and `railyard map --pipeline NAME [FILE|-]`: the analyst's
//! dry run. "What does this payload become?"

use std::path::PathBuf;

use railyard_core::engine::{Engine, MemoryState, Origin};
use railyard_core::project::{Project, Purpose};
use railyard_core::schema::violations;
use serde_json::{Value, json};

use crate::exit;
use crate::fs::open_project;
use crate::render::{Renderer, summary};

#[derive(clap::Args)]
pub struct Args {
    /// The mapping to run (not with --pipeline).
    #[arg(required_unless_present = "pipeline")]
    pub mapping: Option<String>,
    /// The payload (JSON); `-` or nothing reads stdin.
    pub file: Option<PathBuf>,
    /// Run a whole pipeline instead, with in-memory connectors and state.
    #[arg(long)]
    pub pipeline: Option<String>,
    /// Inbound header for --pipeline, `Name: value` (repeatable).
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Project directory.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
}

pub fn run(mut args: Args) -> u8 {
    // `railyard map --pipeline p payload.json`: clap reads the payload as MAPPING.
    if args.pipeline.is_some() && args.mapping.is_some() {
        if args.file.is_some() {
            eprintln!("error: give a mapping name or --pipeline, not both");
            return exit::USAGE;
        }
        args.file = args.mapping.take().map(PathBuf::from);
    }
    let (_, loaded) = match open_project(&args.dir, Purpose::Check) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let project = &loaded.project;
    let (_, payload) = match crate::read_payload(args.file.as_ref()) {
        Ok(p) => p,
        Err(msg) => {
            eprintln!("error: {msg}");
            return exit::USAGE;
        }
    };
    let not_found = |what: &str, name: &str, known: Vec<&str>| {
        eprintln!("error: no {what} named `{name}` compiled");
        if loaded.has_errors() {
            let renderer = Renderer::new(&loaded, &args.dir, false);
            eprint!("{}", renderer.human(&loaded.diagnostics));
            eprintln!("({})", summary(&loaded.diagnostics));
        } else if let Some(best) = railyard_core::suggest::did_you_mean(name, known.iter().copied())
        {
            eprintln!("  help: did you mean `{best}`?");
        }
        exit::USAGE
    };
    match (&args.mapping, &args.pipeline) {
        (Some(name), None) => match project.mappings.get(name) {
            Some(m) => map_one(project, m, &payload),
            None => not_found(
                "mapping",
                name,
                project.mappings.keys().map(String::as_str).collect(),
            ),
        },
        (None, Some(name)) => match project.pipelines.get(name) {
            Some(p) => run_pipeline(project, p, payload, &args.headers),
            None => not_found(
                "pipeline",
                name,
                project.pipelines.keys().map(String::as_str).collect(),
            ),
        },
        _ => exit::USAGE,
    }
}

fn print_violations(project: &Project, schema: &str, body: &Value, what: &str) -> bool {
    let Some(v) = project
        .schemas
        .get(schema)
        .and_then(|e| e.validator.as_ref())
    else {
        eprintln!("error: schema `{schema}` is not available");
        return false;
    };
    let errs = violations(v, body);
    for e in &errs {
        let at = if e.instance_path.is_empty() {
            "/"
        } else {
            &e.instance_path
        };
        eprintln!(
            "error: {what} violates `{schema}` at {at}: {} (schema path {})",
            e.message, e.schema_path
        );
    }
    errs.is_empty()
}

fn map_one(project: &Project, m: &railyard_core::project::Mapping, payload: &Value) -> u8 {
    if !print_violations(project, &m.from, payload, "the input") {
        return exit::INVALID;
    }
    let out =
        railyard_core::functions::with_tables(&project.tables, || m.apply(&project.rhai, payload));
    match out {
        Ok(v) => {
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            if print_violations(project, &m.to, &v, "the output") {
                exit::OK
            } else {
                exit::INVALID
            }
        }
        Err(e) => {
            eprintln!("error: mapping `{}` failed: {e}", m.name);
            exit::INVALID
        }
    }
}

fn run_pipeline(
    project: &Project,
    p: &railyard_core::project::Pipeline,
    payload: Value,
    headers: &[String],
) -> u8 {
    let mut h = serde_json::Map::new();
    for raw in headers {
        match raw.split_once(':') {
            Some((k, v)) => {
                h.insert(
                    k.trim().to_ascii_lowercase(),
                    Value::String(v.trim().to_string()),
                );
            }
            None => {
                eprintln!("error: --header `{raw}` is not `Name: value`");
                return exit::USAGE;
            }
        }
    }
    let counter = std::cell::Cell::new(0u64);
    let ids = || {
        counter.set(counter.get() + 1);
        format!("dry-run-{}", counter.get())
    };
    let now = || chrono_now();
    let engine = Engine {
        project,
        ids: &ids,
        now: &now,
    };
    let mut state = MemoryState::new();
    let origin = Origin {
        source: "railyard map".to_string(),
        headers: h,
        ..Origin::default()
    };
    let outcome = engine.run_to_end(p, payload, origin, &mut state);
    for d in &outcome.delivered {
        let outputs: Vec<String> = d.outputs.iter().map(describe_output).collect();
        let shown = json!({
            "route": d.route,
            "outputs": outputs,
            "meta": d.message.meta(),
            "body": d.message.body(),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&shown).unwrap_or_default()
        );
    }
    for d in &outcome.dropped {
        eprintln!("dropped at {}: {}", d.step, d.reason);
    }
    for f in &outcome.failed {
        eprintln!("failed: {}", f.error);
    }
    eprintln!(
        "{} delivered, {} dropped, {} failed",
        outcome.delivered.len(),
        outcome.dropped.len(),
        outcome.failed.len()
    );
    if outcome.failed.is_empty() {
        exit::OK
    } else {
        exit::INVALID
    }
}

fn describe_output(o: &railyard_core::project::OutputDef) -> String {
    use railyard_core::model::OrShort;
    let d = &o.def;
    if let Some(t) = &d.topic {
        return match &t.value {
            OrShort::Short(s) => format!("topic {s}"),
            OrShort::Full(f) => format!("topic {}", f.name.value),
        };
    }
    if let Some(a) = &d.amqp {
        return format!("amqp exchange {}", a.value.exchange.value);
    }
    if let Some(h) = &d.http {
        return format!(
            "http {} {}",
            h.value.method.as_ref().map_or("POST", |m| m.value.as_str()),
            h.value.url.value
        );
    }
    if let Some(f) = &d.file {
        return format!("file {}", f.value.path.value);
    }
    if let Some(p) = &d.pipeline {
        return format!("pipeline {}", p.value);
    }
    o.kind().to_string()
}

/// Wall-clock time for dry runs (the binary owns the clock; the core never reads it).
fn chrono_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    rfc3339(secs)
}

/// RFC 3339 UTC for a Unix time in seconds.
pub fn rfc3339(secs: i64) -> String {
    // Civil-from-days (Howard Hinnant), to print RFC 3339 without another dependency here.
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
