//! The real filesystem behind [`railyard_core::project::ProjectFiles`].

use std::io::Read;
use std::path::{Path, PathBuf};

use railyard_core::project::{
    self, Listing, LoadOptions, Loaded, ProjectFiles, Purpose, ReadError,
};

/// A project directory on disk. Paths handed to the core are relative to `root` and use `/`.
pub struct DirFiles {
    pub root: PathBuf,
}

impl DirFiles {
    pub fn new(root: impl Into<PathBuf>) -> DirFiles {
        DirFiles { root: root.into() }
    }

    fn abs(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}

fn rel_string(root: &Path, p: &Path) -> String {
    let rel = p.strip_prefix(root).unwrap_or(p);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

impl ProjectFiles for DirFiles {
    fn list(&self, dir: &str) -> Listing {
        let base = self.abs(dir);
        let mut listing = Listing::default();
        if !base.is_dir() {
            return listing;
        }
        // Follow symlinks so linked content works, and let walkdir detect loops.
        for entry in walkdir::WalkDir::new(&base)
            .follow_links(true)
            .sort_by_file_name()
        {
            match entry {
                Ok(e) if e.file_type().is_file() => {
                    let name = e.file_name().to_string_lossy();
                    // Editors' swap and backup files are not project content.
                    if name.starts_with('.') || name.ends_with('~') {
                        continue;
                    }
                    listing.files.push(rel_string(&self.root, e.path()));
                }
                Ok(_) => {}
                Err(err) => {
                    let path = err
                        .path()
                        .map(|p| rel_string(&self.root, p))
                        .unwrap_or_else(|| dir.to_string());
                    let reason = if err.loop_ancestor().is_some() {
                        "symlink loop".to_string()
                    } else {
                        err.io_error()
                            .map(|e| e.to_string())
                            .unwrap_or_else(|| err.to_string())
                    };
                    listing.errors.push((path, reason));
                }
            }
        }
        listing
    }

    fn read(&self, path: &str, limit: u64) -> Result<Vec<u8>, ReadError> {
        let abs = self.abs(path);
        let file = match std::fs::File::open(&abs) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ReadError::NotFound),
            Err(e) => return Err(ReadError::Other(e.to_string())),
        };
        let meta = file
            .metadata()
            .map_err(|e| ReadError::Other(e.to_string()))?;
        if meta.is_dir() {
            return Err(ReadError::Other("is a directory".to_string()));
        }
        if meta.len() > limit {
            return Err(ReadError::TooLarge {
                size: meta.len(),
                limit,
            });
        }
        // Read at most limit + 1 bytes: a file that grows while we read is still bounded.
        let mut buf = Vec::with_capacity(meta.len() as usize);
        file.take(limit + 1)
            .read_to_end(&mut buf)
            .map_err(|e| ReadError::Other(e.to_string()))?;
        if buf.len() as u64 > limit {
            return Err(ReadError::TooLarge {
                size: buf.len() as u64,
                limit,
            });
        }
        Ok(buf)
    }
}

/// Opens and loads the project at `dir` with the process environment for `${env:...}`.
/// Prints the problem and returns the exit code when `dir` is not a usable directory.
///
/// [`Purpose::Run`] is `railyard run` (its start and every reload): every `${env:...}` must be set,
/// and a missing test fixture is only a warning ([`Purpose::Run`]). Every other command
/// loads with [`Purpose::Check`] and a missing variable as a warning; `validate
/// --strict-env` goes through [`open_project_with`].
pub fn open_project(dir: &Path, purpose: Purpose) -> Result<(DirFiles, Loaded), u8> {
    match purpose {
        // `run` needs every `${env:…}`; a missing test fixture is only a warning.
        Purpose::Run => open_project_with(dir, Purpose::Run, true),
        Purpose::Check => open_project_with(dir, Purpose::Check, false),
    }
}

/// [`open_project`] with the purpose and the treatment of missing variables given apart.
pub fn open_project_with(
    dir: &Path,
    purpose: Purpose,
    strict_env: bool,
) -> Result<(DirFiles, Loaded), u8> {
    if let Err(msg) = crate::check_project_dir(dir) {
        eprintln!("error: {msg}");
        return Err(crate::exit::USAGE);
    }
    let files = DirFiles::new(dir);
    let env = |name: &str| std::env::var(name).ok();
    let loaded = project::load(
        &files,
        &LoadOptions {
            env: &env,
            strict_env,
            purpose,
        },
    );
    Ok((files, loaded))
}
