//! The real filesystem behind [`railyard_core::project::ProjectFiles`].

use std::io::Read;
use std::path::{Path, PathBuf};

use railyard_core::project::{
    self, Listing, LoadOptions, Loaded, ProjectFiles, Purpose, ReadError,
};

/// A project directory on disk. Paths handed to the core are relative to `root` and use `/`.
/// Every read and every listed entry goes through [`confine`]: nothing outside the project
/// directory is read, whatever a path or a symlink says.
pub struct DirFiles {
    pub root: PathBuf,
    /// `root` with every symlink resolved, what [`confine`] checks against; `None` when the
    /// root cannot be resolved (then nothing is read).
    canonical_root: Option<PathBuf>,
}

impl DirFiles {
    pub fn new(root: impl Into<PathBuf>) -> DirFiles {
        let root = root.into();
        let canonical_root = std::fs::canonicalize(&root).ok();
        DirFiles {
            root,
            canonical_root,
        }
    }

    /// [`confine`] under this project's root.
    fn confine(&self, rel: &str) -> Result<PathBuf, ReadError> {
        match &self.canonical_root {
            Some(root) => confine(root, rel),
            None => Err(ReadError::Other(format!(
                "the project directory `{}` cannot be resolved",
                self.root.display()
            ))),
        }
    }
}

/// The one gate between a path the project names and the filesystem: the real location of
/// `rel` (project-relative, `/`-separated) when it is inside `canonical_root`, which must be
/// canonical. [`ReadError::OutsideProject`] when `rel` is absolute or climbs above the root
/// as written ([`project::project_path`]), or when a symlink on the way leads out of the
/// project; [`ReadError::NotFound`] when it does not exist. A symlink inside the project to
/// a file inside the project is followed. Callers open the returned path, so what was
/// checked is what is read.
pub fn confine(canonical_root: &Path, rel: &str) -> Result<PathBuf, ReadError> {
    let rel = project::project_path(rel)?;
    let real = match std::fs::canonicalize(canonical_root.join(&rel)) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A dangling symlink is "not found" only if it would point inside.
            return match std::fs::read_link(canonical_root.join(&rel)) {
                Ok(target) if !lexically_inside(canonical_root, &rel, &target) => {
                    Err(ReadError::OutsideProject)
                }
                _ => Err(ReadError::NotFound),
            };
        }
        Err(e) => return Err(ReadError::Other(e.to_string())),
    };
    if real.starts_with(canonical_root) {
        Ok(real)
    } else {
        Err(ReadError::OutsideProject)
    }
}

/// Whether a symlink at `rel` with `target` stays under `root` as written (for a dangling
/// link, which cannot be resolved).
fn lexically_inside(root: &Path, rel: &str, target: &Path) -> bool {
    if target.is_absolute() {
        return target.starts_with(root);
    }
    let dir = Path::new(rel).parent().unwrap_or(Path::new(""));
    let joined = dir.join(target);
    project::project_path(&joined.to_string_lossy()).is_ok()
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
        let mut listing = Listing::default();
        let base = match self.confine(dir) {
            Ok(base) => base,
            Err(ReadError::NotFound) => return listing,
            Err(e) => {
                listing.errors.push((dir.to_string(), e));
                return listing;
            }
        };
        if !base.is_dir() {
            return listing;
        }
        // Follow symlinks so linked content works, and let walkdir detect loops; a symlink
        // (file or directory) that leads out of the project is reported, not followed.
        let mut outside = Vec::new();
        let walk = walkdir::WalkDir::new(self.root.join(dir))
            .follow_links(true)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| {
                if e.depth() == 0 || !e.path_is_symlink() {
                    return true;
                }
                let rel = rel_string(&self.root, e.path());
                match self.confine(&rel) {
                    Err(ReadError::OutsideProject) => {
                        outside.push(rel);
                        false
                    }
                    _ => true,
                }
            });
        for entry in walk {
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
                    let error = if err.loop_ancestor().is_some() {
                        ReadError::Other("symlink loop".to_string())
                    } else if let Err(ReadError::OutsideProject) = self.confine(&path) {
                        // A dangling symlink that would lead out of the project.
                        ReadError::OutsideProject
                    } else {
                        ReadError::Other(
                            err.io_error()
                                .map(|e| e.to_string())
                                .unwrap_or_else(|| err.to_string()),
                        )
                    };
                    listing.errors.push((path, error));
                }
            }
        }
        listing.errors.extend(
            outside
                .into_iter()
                .map(|rel| (rel, ReadError::OutsideProject)),
        );
        listing.errors.sort_by(|a, b| a.0.cmp(&b.0));
        listing
    }

    fn read(&self, path: &str, limit: u64) -> Result<Vec<u8>, ReadError> {
        let real = self.confine(path)?;
        let file = match std::fs::File::open(&real) {
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
