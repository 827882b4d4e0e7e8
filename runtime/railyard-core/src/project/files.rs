//! How the loader sees a project directory: a listing and a read function, injected.

use std::collections::BTreeMap;

use crate::diag::{Code, Diagnostic, Span};

/// Failure to read one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadError {
    NotFound,
    TooLarge {
        size: u64,
        limit: u64,
    },
    /// The path resolves outside the project directory — it is absolute, climbs above the
    /// root with `..`, or goes through a symlink whose target is outside — so it was not
    /// read. Nothing of the file (content, size, existence) is reported.
    OutsideProject,
    Other(String),
}

impl ReadError {
    /// One sentence on why `what` (`fixture`, `script file`, `file`) at `path` was not read.
    /// Never includes anything of the file itself.
    pub fn describe(&self, what: &str, path: &str) -> String {
        match self {
            ReadError::NotFound => format!("{what} `{path}` does not exist"),
            ReadError::TooLarge { size, limit } => format!(
                "{what} `{path}` is {:.1} MiB, more than the {} MiB this loader reads",
                *size as f64 / (1u64 << 20) as f64,
                limit >> 20
            ),
            ReadError::OutsideProject if project_path(path).is_err() => {
                format!("{what} `{path}` is outside the project directory; it is not read")
            }
            ReadError::OutsideProject => format!(
                "{what} `{path}` leads outside the project directory through a symlink; it is \
                 not read"
            ),
            ReadError::Other(reason) => format!("cannot read {what} `{path}`: {reason}"),
        }
    }
}

/// What kind of file a config file refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RefKind {
    /// A `tests:` input or expected body.
    Fixture,
    /// A `rhai_file:` or a script step's `file:`.
    Script,
}

impl RefKind {
    fn what(self) -> &'static str {
        match self {
            RefKind::Fixture => "fixture",
            RefKind::Script => "script file",
        }
    }

    fn example(self) -> &'static str {
        match self {
            RefKind::Fixture => "tests/fixtures/shopify/order.json",
            RefKind::Script => "mappings/order.rhai",
        }
    }
}

/// Where a path the loader reads comes from, which decides where its problem is reported.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Named<'a> {
    /// Found in a project directory (`schemas/`, `pipelines/`, ...): reported at the file.
    Listed,
    /// Written in a config file: reported at the reference (file:line:col of the path).
    Referenced {
        file: &'a str,
        span: Span,
        kind: RefKind,
    },
}

const CONFINED: &str = "the loader reads only files inside the project directory: paths are \
                        relative to its root, without `..` above it, and symlinks must stay inside it";

impl ReadError {
    /// The diagnostic for a file named `path` (as written) that could not be read.
    pub(crate) fn diagnostic(&self, path: &str, named: Named<'_>) -> Diagnostic {
        match named {
            Named::Listed => {
                let (code, message) = match self {
                    ReadError::NotFound => (Code::Io, format!("`{path}` does not exist")),
                    ReadError::TooLarge { size, limit } => (
                        Code::FileTooLarge,
                        format!(
                            "file is {:.1} MiB, more than the {} MiB this loader reads",
                            *size as f64 / (1u64 << 20) as f64,
                            limit >> 20
                        ),
                    ),
                    ReadError::OutsideProject => (
                        Code::OutsideProject,
                        format!(
                            "`{path}` is a symlink that leads outside the project directory; it \
                             is not read"
                        ),
                    ),
                    ReadError::Other(reason) => {
                        (Code::Io, format!("cannot read `{path}`: {reason}"))
                    }
                };
                let d = Diagnostic::error(code, message).at(path, Span::default());
                match self {
                    ReadError::OutsideProject => d.with_help(CONFINED),
                    ReadError::TooLarge { .. } => d.with_help(
                        "pipeline, mapping and schema files are small; is this a data file in \
                         the wrong directory?",
                    ),
                    _ => d,
                }
            }
            Named::Referenced { file, span, kind } => {
                let code = match self {
                    ReadError::NotFound => Code::MissingFile,
                    ReadError::TooLarge { .. } => Code::FileTooLarge,
                    ReadError::OutsideProject => Code::OutsideProject,
                    ReadError::Other(_) => Code::Io,
                };
                let d = Diagnostic::error(code, self.describe(kind.what(), path)).at(file, span);
                match self {
                    ReadError::OutsideProject => d.with_help(CONFINED),
                    ReadError::NotFound => d.with_help(format!(
                        "paths are relative to the project root, e.g. `{}`",
                        kind.example()
                    )),
                    _ => d,
                }
            }
        }
    }
}

/// One directory listing: files found (project-relative, `/`-separated, sorted) and entries
/// that could not be read (a symlink loop, a symlink out of the project, a permission
/// problem) with the reason.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    pub files: Vec<String>,
    pub errors: Vec<(String, ReadError)>,
}

/// The project directory as the loader sees it. The binary implements it over the real
/// filesystem; tests and benchmarks use [`MemFiles`].
///
/// **Confinement is part of the contract:** every path is project-relative, and an
/// implementation reads, and lists, only files that resolve inside the project directory —
/// following symlinks. A path for which [`project_path`] fails, or whose real location is
/// outside the root, is [`ReadError::OutsideProject`]; a listed symlink leading out of the
/// project is a [`Listing::errors`] entry with that error, and is not descended into. The
/// loader reads files only through this trait, so no kind of reference can bypass it.
pub trait ProjectFiles {
    /// Every file under `dir` (e.g. `pipelines`), recursively. A missing directory is empty.
    fn list(&self, dir: &str) -> Listing;
    /// The bytes of `path`, refusing files larger than `limit` bytes without reading them.
    fn read(&self, path: &str, limit: u64) -> Result<Vec<u8>, ReadError>;
}

/// The project-relative form of a path written in the project (`./tests/a.json`,
/// `mappings/../mappings/x.rhai`): `.` segments and empty segments dropped, `..` resolved.
/// [`ReadError::OutsideProject`] when the path is absolute or climbs above the root. Pure
/// text: symlinks are for the [`ProjectFiles`] implementation to resolve.
pub fn project_path(written: &str) -> Result<String, ReadError> {
    if written.starts_with('/') || written.starts_with('\\') || has_drive_prefix(written) {
        return Err(ReadError::OutsideProject);
    }
    if written.contains('\0') {
        return Err(ReadError::Other("the path contains a NUL byte".to_string()));
    }
    let mut parts: Vec<&str> = Vec::new();
    for segment in written.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(ReadError::OutsideProject);
                }
            }
            s => parts.push(s),
        }
    }
    Ok(parts.join("/"))
}

/// `C:` and the like: absolute on Windows.
fn has_drive_prefix(path: &str) -> bool {
    let b = path.as_bytes();
    b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':'
}

/// An in-memory project.
#[derive(Clone, Debug, Default)]
pub struct MemFiles {
    pub files: BTreeMap<String, Vec<u8>>,
}

impl MemFiles {
    pub fn new() -> MemFiles {
        MemFiles::default()
    }

    pub fn with(mut self, path: &str, contents: impl Into<Vec<u8>>) -> MemFiles {
        self.insert(path, contents);
        self
    }

    pub fn insert(&mut self, path: &str, contents: impl Into<Vec<u8>>) {
        self.files.insert(path.to_string(), contents.into());
    }
}

impl ProjectFiles for MemFiles {
    fn list(&self, dir: &str) -> Listing {
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        Listing {
            files: self
                .files
                .keys()
                .filter(|p| p.starts_with(&prefix))
                .cloned()
                .collect(),
            errors: Vec::new(),
        }
    }

    fn read(&self, path: &str, limit: u64) -> Result<Vec<u8>, ReadError> {
        match self.files.get(&project_path(path)?) {
            Some(bytes) if bytes.len() as u64 > limit => Err(ReadError::TooLarge {
                size: bytes.len() as u64,
                limit,
            }),
            Some(bytes) => Ok(bytes.clone()),
            None => Err(ReadError::NotFound),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_paths_stay_inside_the_root() {
        assert_eq!(project_path("./tests/a.json"), Ok("tests/a.json".into()));
        assert_eq!(
            project_path("mappings/../plugins//x.rhai"),
            Ok("plugins/x.rhai".into())
        );
        for outside in [
            "../secret.json",
            "tests/../../secret.json",
            "/etc/passwd",
            "\\\\server\\share",
            "C:/Windows/win.ini",
            "./..",
        ] {
            assert_eq!(
                project_path(outside),
                Err(ReadError::OutsideProject),
                "{outside}"
            );
        }
    }

    #[test]
    fn mem_files_refuse_paths_outside_the_project() {
        let files = MemFiles::new().with("secret", "x");
        assert_eq!(
            files.read("tests/../../secret", 10),
            Err(ReadError::OutsideProject)
        );
        assert_eq!(files.read("./secret", 10), Ok(b"x".to_vec()));
    }
}
