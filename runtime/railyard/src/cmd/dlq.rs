//! `railyard dlq list|show|drop`: the dead letters of a data directory, searched and shown.
//!
//! The store is opened without its instance lock (SQLite's own locking keeps a running
//! `railyard run` safe), so the commands work beside a running server. Filters: pipeline,
//! step, error code, time range and a JMESPath predicate over each dead letter as `show
//! --format json` prints it.

use std::path::{Path, PathBuf};

use railyard_store::{DeadLetter, Store};
use serde_json::Value;

use crate::dead_letters::{Given, as_json, message_id, rfc3339};
use crate::exit;

#[derive(clap::Subcommand)]
pub enum DlqCommand {
    /// List dead letters, oldest first.
    List {
        #[command(flatten)]
        filter: Filter,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// `human` (a table) or `json` (every field).
        #[arg(long, default_value = "human")]
        format: Format,
    },
    /// Show one dead letter: its error, the message at the failing step and as it entered.
    Show {
        id: u64,
        #[command(flatten)]
        data: DataDir,
        #[arg(long, default_value = "human")]
        format: Format,
    },
    /// Replay dead letters through a running server (its admin API, `--url`): each original
    /// message runs again through its pipeline's current revision, keeping its message id.
    Replay {
        /// Dead-letter ids; without them the filters choose (at least one filter).
        ids: Vec<u64>,
        #[command(flatten)]
        filter: Filter,
        /// The running server (`http://127.0.0.1:8080`, or its `--admin-listen` address);
        /// `RAILYARD_ADMIN_TOKEN` is sent as a bearer token when set.
        #[arg(long, env = "RAILYARD_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Say what would be replayed (how many, which pipelines and revisions, which error
        /// codes); replay nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete dead letters: the given ids, or every one matching the filters.
    Drop {
        /// Dead-letter ids; without them the filters choose (at least one filter, or `--all`).
        ids: Vec<u64>,
        #[command(flatten)]
        filter: Filter,
        /// With no id and no filter: every dead letter.
        #[arg(long)]
        all: bool,
        /// Say what would be deleted; delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
}

#[derive(clap::Args)]
pub struct DataDir {
    /// The data directory of `railyard run` (its `--data`; default `./data`).
    #[arg(long, default_value = "data", env = "RAILYARD_DATA")]
    data: PathBuf,
}

#[derive(clap::Args)]
pub struct Filter {
    #[command(flatten)]
    data: DataDir,
    /// Only this pipeline's.
    #[arg(long)]
    pipeline: Option<String>,
    /// Only those that failed at this step (`output http`, `steps[2] map`, `input`).
    #[arg(long)]
    step: Option<String>,
    /// Only those with this error code (`output-error`, `schema-violation`, ...).
    #[arg(long)]
    code: Option<String>,
    /// Dead-lettered at or after: an RFC 3339 time, or a span back from now (`2h`, `3d`).
    #[arg(long)]
    since: Option<String>,
    /// Dead-lettered before: an RFC 3339 time, or a span back from now.
    #[arg(long)]
    until: Option<String>,
    /// A JMESPath predicate over the dead letter as `show --format json` prints it, e.g.
    /// `original.body.order_number == '1042'` or `contains(error.message, '422')`.
    #[arg(long = "where")]
    predicate: Option<String>,
}

impl Filter {
    fn given(&self) -> Given {
        Given {
            pipeline: self.pipeline.clone(),
            step: self.step.clone(),
            code: self.code.clone(),
            since: self.since.clone(),
            until: self.until.clone(),
            predicate: self.predicate.clone(),
            limit: None,
        }
    }
}

pub fn run(cmd: DlqCommand) -> u8 {
    let result = match cmd {
        DlqCommand::List {
            filter,
            limit,
            format,
        } => list(&filter, limit, format),
        DlqCommand::Show { id, data, format } => show(&data.data, id, format),
        DlqCommand::Replay {
            ids,
            filter,
            url,
            dry_run,
        } => replay(&ids, &filter, &url, dry_run),
        DlqCommand::Drop {
            ids,
            filter,
            all,
            dry_run,
        } => drop_letters(&ids, &filter, all, dry_run),
    };
    match result {
        Ok(code) => code,
        Err(Usage(message)) => {
            eprintln!("error: {message}");
            exit::USAGE
        }
    }
}

/// A usage or I/O error: printed, exit 2.
struct Usage(String);

fn open(data: &Path) -> Result<Store, Usage> {
    let file = data.join("railyard.db");
    if !file.is_file() {
        return Err(Usage(format!(
            "no store at `{}` (give the data directory of `railyard run` with --data)",
            file.display()
        )));
    }
    Store::open_unlocked(&file).map_err(|e| Usage(format!("cannot open `{}`: {e}", file.display())))
}

/// Every dead letter matching `filter`, oldest first, at most `limit`.
fn matching(store: &Store, filter: &Filter, limit: usize) -> Result<Vec<(u64, DeadLetter)>, Usage> {
    let search = filter
        .given()
        .search()
        .map_err(|e| Usage(format!("--{e}")))?;
    crate::dead_letters::search(store, &search, limit).map_err(Usage)
}

fn list(filter: &Filter, limit: usize, format: Format) -> Result<u8, Usage> {
    let store = open(&filter.data.data)?;
    let found = matching(&store, filter, limit)?;
    match format {
        Format::Json => {
            let all: Vec<Value> = found.iter().map(|(id, d)| as_json(*id, d)).collect();
            println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
        }
        Format::Human => {
            if found.is_empty() {
                println!("no dead letters match");
            }
            for (id, d) in &found {
                let code = d.error["code"].as_str().unwrap_or("-");
                let why: String = d.error["message"]
                    .as_str()
                    .unwrap_or_default()
                    .chars()
                    .take(100)
                    .collect();
                println!(
                    "{id:>6}  {}  {}  {}  [{code}]  {}  {why}",
                    rfc3339(d.at_ms),
                    d.pipeline,
                    d.step,
                    message_id(d)
                );
            }
        }
    }
    Ok(exit::OK)
}

fn show(data: &Path, id: u64, format: Format) -> Result<u8, Usage> {
    let store = open(data)?;
    let Some(d) = store
        .dead_letter_by_id(id)
        .map_err(|e| Usage(format!("cannot read dead letter {id}: {e}")))?
    else {
        return Err(Usage(format!(
            "no dead letter {id} (see `railyard dlq list`)"
        )));
    };
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
    match format {
        Format::Json => println!("{}", pretty(&as_json(id, &d))),
        Format::Human => {
            println!("dead letter {id}");
            println!(
                "  pipeline  {} (version {})",
                d.pipeline, d.pipeline_version
            );
            println!("  step      {}", d.step);
            println!("  at        {}", rfc3339(d.at_ms));
            println!("  attempts  {}", d.attempts);
            println!("  message   {}", message_id(&d));
            println!("error:\n{}", pretty(&d.error));
            println!("message at the failing step:\n{}", pretty(&d.message));
            if let Some(o) = &d.original
                && o != &d.message
            {
                println!("message as it entered the pipeline:\n{}", pretty(o));
            }
        }
    }
    Ok(exit::OK)
}

fn drop_letters(ids: &[u64], filter: &Filter, all: bool, dry_run: bool) -> Result<u8, Usage> {
    if !ids.is_empty() && (!filter.given().is_empty() || all) {
        return Err(Usage(
            "give dead-letter ids or filters (or --all), not both".to_string(),
        ));
    }
    if ids.is_empty() && filter.given().is_empty() && !all {
        return Err(Usage(
            "say which dead letters: ids, a filter (--pipeline, --code, --where, ...) or --all"
                .to_string(),
        ));
    }
    let store = open(&filter.data.data)?;
    let chosen: Vec<u64> = if ids.is_empty() {
        matching(&store, filter, usize::MAX)?
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    } else {
        ids.to_vec()
    };
    if dry_run {
        println!(
            "would drop {} dead letter(s): {}",
            chosen.len(),
            chosen
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        );
        return Ok(exit::OK);
    }
    let n = store
        .drop_dead_letters(&chosen)
        .map_err(|e| Usage(format!("cannot drop: {e}")))?;
    println!("dropped {n} dead letter(s)");
    if (n as usize) < chosen.len() {
        eprintln!(
            "note: {} of the given ids were not there",
            chosen.len() - n as usize
        );
    }
    Ok(exit::OK)
}

fn replay(ids: &[u64], filter: &Filter, url: &str, dry_run: bool) -> Result<u8, Usage> {
    let given = filter.given();
    if ids.is_empty() == given.is_empty() {
        return Err(Usage(
            "say which dead letters: ids, or filters (--pipeline, --code, --where, ...), not both"
                .to_string(),
        ));
    }
    // The filter is checked here too, so a mistake is named before anything is sent.
    given.search().map_err(|e| Usage(format!("--{e}")))?;
    let mut body = serde_json::json!({ "ids": ids, "dry_run": dry_run });
    for (k, v) in [
        ("pipeline", &given.pipeline),
        ("step", &given.step),
        ("code", &given.code),
        ("since", &given.since),
        ("until", &given.until),
        ("where", &given.predicate),
    ] {
        if let Some(v) = v {
            body[k] = Value::String(v.clone());
        }
    }
    let answer =
        crate::cmd::admin_client::post(url, "/admin/dead-letters/replay", &body).map_err(Usage)?;
    if dry_run {
        println!(
            "would replay {} dead letter(s)",
            answer["count"].as_u64().unwrap_or(0)
        );
        if let Some(pipelines) = answer["pipelines"].as_object() {
            for (name, p) in pipelines {
                let revision = p["revision"].as_str().map_or_else(
                    || "not loaded: would stay".to_string(),
                    |r| format!("revision {}", r.chars().take(12).collect::<String>()),
                );
                println!("  {name}: {} ({revision})", p["count"]);
            }
        }
        if let Some(codes) = answer["codes"].as_object() {
            for (code, n) in codes {
                println!("  [{code}] {n}");
            }
        }
        return Ok(exit::OK);
    }
    for r in answer["results"].as_array().into_iter().flatten() {
        let id = r["id"].as_u64().unwrap_or(0);
        if r["settled"] == Value::Bool(true) {
            let what = if r["dead_lettered_again"] == Value::Bool(true) {
                "dead-lettered again (see `railyard dlq list`)"
            } else {
                "delivered"
            };
            println!("{id:>6}  {}  {what}", r["message"].as_str().unwrap_or("-"));
        } else {
            println!(
                "{id:>6}  left in the dead letters: {}",
                r["error"].as_str().unwrap_or("-")
            );
        }
    }
    println!(
        "replayed {}: {} delivered, {} dead-lettered again, {} left",
        answer["count"], answer["delivered"], answer["dead_lettered_again"], answer["left"]
    );
    Ok(
        if answer["left"].as_u64() == Some(0) && answer["dead_lettered_again"].as_u64() == Some(0) {
            exit::OK
        } else {
            exit::INVALID
        },
    )
}
