//! How the loader sees a project directory: a listing and a read function, injected.

use std::collections::BTreeMap;

/// Failure to read one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadError {
    NotFound,
    TooLarge { size: u64, limit: u64 },
    Other(String),
}

/// One directory listing: files found (project-relative, `/`-separated, sorted) and entries
/// that could not be read (a symlink loop, a permission problem) with the reason.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    pub files: Vec<String>,
    pub errors: Vec<(String, String)>,
}

/// The project directory as the loader sees it. The binary implements it over the real
/// filesystem; tests and benchmarks use [`MemFiles`].
pub trait ProjectFiles {
    /// Every file under `dir` (e.g. `pipelines`), recursively. A missing directory is empty.
    fn list(&self, dir: &str) -> Listing;
    /// The bytes of `path`, refusing files larger than `limit` bytes without reading them.
    fn read(&self, path: &str, limit: u64) -> Result<Vec<u8>, ReadError>;
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
        match self.files.get(path) {
            Some(bytes) if bytes.len() as u64 > limit => Err(ReadError::TooLarge {
                size: bytes.len() as u64,
                limit,
            }),
            Some(bytes) => Ok(bytes.clone()),
            None => Err(ReadError::NotFound),
        }
    }
}
