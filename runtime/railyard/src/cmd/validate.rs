//! `railyard validate [DIR]`

use std::path::PathBuf;

use railyard_core::project::Purpose;

use crate::exit;
use crate::fs::open_project_with;
use crate::render::{Format, Renderer, summary};

#[derive(clap::Args)]
pub struct Args {
    /// Project directory (holding pipelines/, mappings/, schemas/, plugins/).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Fail (exit 1) on warnings too.
    #[arg(long)]
    pub deny_warnings: bool,
    /// Treat a missing `${env:NAME}` variable as an error instead of a warning.
    #[arg(long)]
    pub strict_env: bool,
    /// Compare the schemas with a baseline: a project directory, or a git revision of the
    /// repository holding DIR (`HEAD~1`, `origin/main`). A schema changed in place (same
    /// id, so same major) in a way that breaks its readers or writers is an error naming the
    /// pipelines and mappings at risk; a new major is fine, and whatever still names the old
    /// one is listed. Breaks writers: the new schema rejects data the old one accepted (not
    /// BACKWARD compatible). Breaks readers: it accepts data the old one did not (not FORWARD
    /// compatible).
    #[arg(long, value_name = "DIR|GIT-REV")]
    pub baseline: Option<String>,
}

pub fn run(args: Args) -> u8 {
    if let Err(msg) = crate::check_project_dir(&args.dir) {
        eprintln!("error: {msg}");
        return exit::USAGE;
    }
    const PROJECT_DIRS: [&str; 4] = ["pipelines", "mappings", "schemas", "plugins"];
    if !PROJECT_DIRS.iter().any(|d| args.dir.join(d).is_dir()) {
        eprintln!(
            "error: `{}` is not a Railyard project: it has none of {}",
            args.dir.display(),
            PROJECT_DIRS.map(|d| format!("{d}/")).join(", ")
        );
        return exit::USAGE;
    }
    let (_, loaded) = match open_project_with(&args.dir, Purpose::Check, args.strict_env) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let mut diags = loaded.diagnostics.clone();
    if let Some(spec) = &args.baseline {
        match crate::baseline::load(&args.dir, spec) {
            Ok(old) => diags.extend(railyard_core::project::baseline::compare(
                &old.project,
                &loaded.project,
                spec,
            )),
            Err(msg) => {
                eprintln!("error: {msg}");
                return exit::USAGE;
            }
        }
    }
    let diags = &diags;
    let has_errors = diags.iter().any(|d| d.is_error());
    let renderer = Renderer::new(&loaded, &args.dir, crate::use_color());
    match args.format {
        Format::Json => print!("{}", renderer.json(diags)),
        Format::Github => print!("{}", renderer.github(diags)),
        Format::Human => {
            print!("{}", renderer.human(diags));
            let p = &loaded.project;
            let verdict = if has_errors { "invalid" } else { "valid" };
            println!(
                "{verdict}: {} (compiled {} pipelines, {} mappings, {} schemas, {} plugins)",
                summary(diags),
                p.pipelines.len(),
                p.mappings.len(),
                p.schemas.len(),
                p.plugins.len(),
            );
        }
    }
    let failed = has_errors || (args.deny_warnings && !diags.is_empty());
    if failed { exit::INVALID } else { exit::OK }
}
