//! The baseline of `railyard validate --baseline`: a project directory, or the project as it
//! was at a git revision (read with `git ls-tree` / `git cat-file` into [`MemFiles`] and
//! loaded by the same loader).

use std::path::Path;
use std::process::Command;

use railyard_core::project::{self, LoadOptions, Loaded, MemFiles, Purpose};

use crate::fs::DirFiles;

/// The directories of a project the loader reads.
const PROJECT_DIRS: [&str; 5] = ["pipelines", "mappings", "schemas", "plugins", "tables"];

/// Loads the baseline `spec` of the project in `dir`: `spec` is a directory if one exists
/// under that name, else a git revision of the repository holding `dir`. The error is a
/// sentence for the user (a usage error).
pub fn load(dir: &Path, spec: &str) -> Result<Loaded, String> {
    let env = |name: &str| std::env::var(name).ok();
    let options = LoadOptions {
        env: &env,
        strict_env: false,
        purpose: Purpose::Check,
    };
    if Path::new(spec).is_dir() {
        return Ok(project::load(&DirFiles::new(spec), &options));
    }
    let files = git_files(dir, spec)?;
    Ok(project::load(&files, &options))
}

fn git(dir: &Path, args: &[&str]) -> Result<std::process::Output, String> {
    Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(|e| {
            format!("`--baseline` needs git to read a revision, and git could not be run: {e}")
        })
}

fn stderr_line(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

/// The project files under `dir` as they were at git revision `rev`.
fn git_files(dir: &Path, rev: &str) -> Result<MemFiles, String> {
    let prefix = git(dir, &["rev-parse", "--show-prefix"])?;
    if !prefix.status.success() {
        return Err(format!(
            "`{rev}` is not a directory, and `{}` is not in a git repository to read it as a \
             revision from ({})",
            dir.display(),
            stderr_line(&prefix)
        ));
    }
    let prefix = String::from_utf8_lossy(&prefix.stdout).trim().to_string();
    let commit = git(
        dir,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{commit}}"),
        ],
    )?;
    if !commit.status.success() || rev.starts_with('-') {
        return Err(format!(
            "`{rev}` is neither a directory nor a revision of the git repository at `{}`",
            dir.display()
        ));
    }
    let commit = String::from_utf8_lossy(&commit.stdout).trim().to_string();
    let listing = git(
        dir,
        &["ls-tree", "-r", "-z", "--full-tree", "--name-only", &commit],
    )?;
    if !listing.status.success() {
        return Err(format!(
            "cannot list the files of `{rev}`: {}",
            stderr_line(&listing)
        ));
    }
    let mut files = MemFiles::new();
    for full in listing.stdout.split(|b| *b == 0) {
        let full = String::from_utf8_lossy(full);
        let Some(rel) = full.strip_prefix(prefix.as_str()) else {
            continue;
        };
        let top = rel.split('/').next().unwrap_or("");
        if !PROJECT_DIRS.contains(&top) || rel.is_empty() {
            continue;
        }
        let blob = git(dir, &["cat-file", "blob", &format!("{commit}:{full}")])?;
        if !blob.status.success() {
            return Err(format!(
                "cannot read `{full}` at `{rev}`: {}",
                stderr_line(&blob)
            ));
        }
        files.insert(rel, blob.stdout);
    }
    Ok(files)
}
