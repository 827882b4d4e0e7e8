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
    let renderer = Renderer::new(&loaded, &args.dir, crate::use_color());
    let diags = &loaded.diagnostics;
    match args.format {
        Format::Json => print!("{}", renderer.json(diags)),
        Format::Github => print!("{}", renderer.github(diags)),
        Format::Human => {
            print!("{}", renderer.human(diags));
            let p = &loaded.project;
            let verdict = if loaded.has_errors() {
                "invalid"
            } else {
                "valid"
            };
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
    let failed = loaded.has_errors() || (args.deny_warnings && !diags.is_empty());
    if failed { exit::INVALID } else { exit::OK }
}
