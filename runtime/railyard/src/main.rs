//! The `railyard` command line.

mod baseline;
mod cmd;
mod dead_letters;
mod fs;
mod render;
mod run;

/// mimalloc instead of glibc's malloc: messages allocate many small JSON values on one thread
/// and free them on another, which glibc's per-thread arenas handle poorly (see the load runs
/// in `benches/load/README.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit codes shared by every command.
pub mod exit {
    /// Valid / passed.
    pub const OK: u8 = 0;
    /// The files or the payload are invalid.
    pub const INVALID: u8 = 1;
    /// Usage or I/O error: the command could not do its job.
    pub const USAGE: u8 = 2;
}

#[derive(Parser)]
#[command(
    name = "railyard",
    version,
    about = "Declarative pipeline runtime for retail integration",
    long_about = "Railyard runs YAML pipelines that move orders, stock and sales between marketplaces, \
                  the store POS estate and the ERP, enforcing JSON Schemas at every step."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check every pipeline, mapping, schema and plugin of a project; report all problems.
    Validate(cmd::validate::Args),
    /// Inspect the schema registry and check payloads against schemas.
    #[command(subcommand)]
    Schema(cmd::schema::SchemaCommand),
    /// Serve the project's pipelines (embedded store; no broker or database needed).
    Run(run::Args),
    /// Run the `tests:` of every pipeline and mapping through the engine.
    Test(cmd::test::Args),
    /// Run one mapping (or a whole pipeline) on a payload and print what it becomes.
    Map(cmd::map::Args),
    /// Evaluate a JMESPath expression or a Rhai script on a JSON payload.
    Eval(cmd::eval::Args),
    /// Print the JSON Schema of the pipeline or mapping file format (for editors).
    FormatSchema(cmd::format_schema::Args),
    /// Put one message onto a topic or into a pipeline of a running server (admin API).
    Publish(cmd::publish::Args),
    /// Search, show and drop dead letters in a data directory.
    #[command(subcommand)]
    Dlq(cmd::dlq::DlqCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Run(_)) {
        quiet_on_closed_pipe();
    }
    let code = match cli.command {
        Command::Validate(args) => cmd::validate::run(args),
        Command::Schema(c) => cmd::schema::run(c),
        Command::Run(args) => run::run(args),
        Command::Test(args) => cmd::test::run(args),
        Command::Map(args) => cmd::map::run(args),
        Command::Eval(args) => cmd::eval::run(args),
        Command::FormatSchema(args) => cmd::format_schema::run(args),
        Command::Dlq(c) => cmd::dlq::run(c),
        Command::Publish(args) => cmd::publish::run(args),
    };
    ExitCode::from(code)
}

/// A command whose output is piped into `head` and closed early stops quietly, as Unix tools
/// do, instead of panicking on the failed write: SIGPIPE gets its default action back (Rust
/// ignores it). Not for `run`, whose sockets and logs must outlive a closed reader.
fn quiet_on_closed_pipe() {
    sigpipe::reset();
}

/// The project directory argument shared by commands: positional, default `.`.
pub fn check_project_dir(dir: &std::path::Path) -> Result<(), String> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(format!("`{}` is not a directory", dir.display())),
        Err(e) => Err(format!(
            "cannot open project directory `{}`: {e}",
            dir.display()
        )),
    }
}

/// Reads a JSON payload from a file or `-` (stdin), bounded, through the one JSON intake
/// ([`railyard_core::json::parse_payload`]).
pub fn read_payload(file: Option<&PathBuf>) -> Result<(String, serde_json::Value), String> {
    use std::io::Read;
    const LIMIT: u64 = 64 << 20;
    let (name, mut bytes) = match file {
        None => ("<stdin>".to_string(), Vec::new()),
        Some(p) if p.as_os_str() == "-" => ("<stdin>".to_string(), Vec::new()),
        Some(p) => (p.display().to_string(), Vec::new()),
    };
    let reader: Box<dyn Read> = match file {
        Some(p) if p.as_os_str() != "-" => {
            Box::new(std::fs::File::open(p).map_err(|e| format!("cannot read `{name}`: {e}"))?)
        }
        _ => Box::new(std::io::stdin()),
    };
    reader
        .take(LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read `{name}`: {e}"))?;
    if bytes.len() as u64 > LIMIT {
        return Err(format!("`{name}` is larger than {} MiB", LIMIT >> 20));
    }
    let value = railyard_core::json::parse_payload(&bytes).map_err(|e| format!("`{name}` {e}"))?;
    Ok((name, value))
}

/// Whether to colour output written to stdout.
pub fn use_color() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
}
