//! The file-drop input: batch exports (store POS sales, ERP stock files) that an SFTP job
//! drops into a directory.
//!
//! Synchronous on purpose, like the store: the runtime calls it from `spawn_blocking`.
//!
//! - [`FileDrop::poll`] lists the candidate files, oldest first: regular files directly in
//!   `dir` whose name matches `pattern`, skipping dotfiles, partial uploads (`*.part`,
//!   `*.filepart`, `*.tmp`) and files modified less than [`SETTLE`] ago (still being
//!   written). The clock is injected.
//! - [`FileDrop::read`] turns a file into [`Record`]s, each with the 1-based source line it
//!   starts on: CSV → one JSON object of strings per row keyed by the header (an array of
//!   strings with `header: false`); `jsonl` → one value per non-empty line; `json` → the whole
//!   file as one record. A UTF-8 BOM and CRLF line ends are accepted. A malformed file (a CSV
//!   row with the wrong number of fields, invalid JSON, bytes that are not UTF-8) is a
//!   [`FileError::Malformed`] naming the line; no records are returned for it, so a file is
//!   either handed off whole or not at all.
//! - [`FileDrop::finish`] moves the file to `done_dir` or `failed_dir` (no-clobber: on a name
//!   clash `-1`, `-2`… is added before the extension) and, for a failure, writes
//!   `<name>.reason` next to it.
//!
//! # Crash safety without double posting (the caller's contract)
//!
//! The connector keeps no state of its own; the caller records progress in its durable store,
//! keyed by [`file_key`] (hex SHA-256 of the content; [`FileDrop::read_keyed`] returns the key
//! and the records from one read, so they always belong together):
//!
//! 1. `poll(now)`, then for each file `read_keyed(path)` → `(key, records)`.
//! 2. Look the key up. *Complete* → the content was already handed off: either an SFTP job
//!    re-sent the same file (under any name), or the runtime crashed after the last record
//!    but before `finish`. Hand nothing off; `finish(path, Ok(()))`. *Up to N* → a crash
//!    interrupted this file after N records: skip `records[..N]`.
//! 3. Hand off the remaining records in order. Record "`key` handed off up to N" **in the same
//!    store transaction** as the hand-off of record N (or of the batch ending at N). Only
//!    then is a crash at any point safe: either both happened or neither did.
//! 4. After the last record, mark the key complete, then call `finish(path, Ok(()))`.
//!    A file that cannot be read goes to `finish(path, Err(reason))` before anything is
//!    handed off.
//!
//! Keep complete keys at least as long as the SFTP jobs may re-send (days to weeks). Progress
//! counts records (indexes into the `Vec` from `read`), not source lines; [`Record::line`] is
//! for messages and dead letters. The key is of the exact bytes: a re-export with one
//! changed byte is a new file, which is why pipelines also dedupe by business key
//! (`transaction_id` + `line_no`).

mod glob;

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use railyard_core::model::pipeline::{FileFormat, FileInput};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// How long a file must be left unmodified before it is picked up.
pub const SETTLE: Duration = Duration::from_secs(1);

/// Largest file `read` accepts (records are held in memory).
pub const DEFAULT_MAX_FILE_BYTES: u64 = 256 << 20;

/// File-name endings of uploads still in progress (WinSCP, curl, rsync-style temp files).
const PARTIAL_SUFFIXES: [&str; 3] = [".part", ".filepart", ".tmp"];

/// One message from a file, with the 1-based line of the source it starts on.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub line: u64,
    pub value: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("file `{}`: cannot {op}: {source}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        source: io::Error,
    },
    #[error("file `{}` is larger than {limit} bytes", path.display())]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("file `{}`{}: {message}", path.display(), line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Malformed {
        path: PathBuf,
        /// 1-based line of the problem, when known.
        line: Option<u64>,
        message: String,
    },
    #[error("CSV delimiter `{0}` must be one ASCII character")]
    Delimiter(String),
}

impl FileError {
    /// The 1-based line a malformed file went wrong on.
    pub fn line(&self) -> Option<u64> {
        match self {
            FileError::Malformed { line, .. } => *line,
            _ => None,
        }
    }

    fn io(path: &Path, op: &'static str, source: io::Error) -> FileError {
        FileError::Io {
            path: path.to_path_buf(),
            op,
            source,
        }
    }

    fn malformed(path: &Path, line: Option<u64>, message: impl Into<String>) -> FileError {
        FileError::Malformed {
            path: path.to_path_buf(),
            line,
            message: message.into(),
        }
    }
}

/// A pipeline's `file:` input, resolved against the project root.
#[derive(Clone, Debug)]
pub struct FileDrop {
    dir: PathBuf,
    done_dir: PathBuf,
    failed_dir: PathBuf,
    pattern: String,
    format: FileFormat,
    /// The CSV delimiter, or the configured text when it is not one ASCII byte.
    delimiter: Result<u8, String>,
    header: bool,
    settle: Duration,
    max_bytes: u64,
}

impl FileDrop {
    /// `dir`, `done_dir` and `failed_dir` are relative to `project_root` (absolute paths are
    /// kept). Defaults: `<dir>/done`, `<dir>/failed`, pattern `*`, delimiter `,`, header on.
    pub fn new(config: &FileInput, project_root: &Path) -> FileDrop {
        let dir = project_root.join(&config.dir.value);
        let resolve = |d: &Option<String>, default: &str| {
            d.as_deref()
                .map_or_else(|| dir.join(default), |d| project_root.join(d))
        };
        let csv = config.csv.as_ref();
        let delimiter = match csv.and_then(|c| c.delimiter.as_deref()) {
            None => Ok(b','),
            Some(d) => match d.as_bytes() {
                [b] if b.is_ascii() => Ok(*b),
                _ => Err(d.to_string()),
            },
        };
        FileDrop {
            done_dir: resolve(&config.done_dir, "done"),
            failed_dir: resolve(&config.failed_dir, "failed"),
            dir,
            pattern: config.pattern.clone().unwrap_or_else(|| "*".to_string()),
            format: config.format,
            delimiter,
            header: csv.and_then(|c| c.header).unwrap_or(true),
            settle: SETTLE,
            max_bytes: DEFAULT_MAX_FILE_BYTES,
        }
    }

    /// Files modified less than `settle` ago are left for a later poll (default [`SETTLE`]).
    pub fn with_settle(mut self, settle: Duration) -> FileDrop {
        self.settle = settle;
        self
    }

    /// Largest file `read` accepts (default [`DEFAULT_MAX_FILE_BYTES`]).
    pub fn with_max_bytes(mut self, max_bytes: u64) -> FileDrop {
        self.max_bytes = max_bytes;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn done_dir(&self) -> &Path {
        &self.done_dir
    }

    pub fn failed_dir(&self) -> &Path {
        &self.failed_dir
    }

    /// Candidate files, oldest (by modification time, then name) first. A directory that
    /// cannot be listed yields nothing and a warning; see [`FileDrop::try_poll`].
    pub fn poll(&self, now: SystemTime) -> Vec<PathBuf> {
        self.try_poll(now).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "file input: cannot list the drop directory");
            Vec::new()
        })
    }

    /// [`FileDrop::poll`], with the error of listing the directory.
    pub fn try_poll(&self, now: SystemTime) -> Result<Vec<PathBuf>, FileError> {
        let entries = fs::read_dir(&self.dir).map_err(|e| FileError::io(&self.dir, "list", e))?;
        let mut found: Vec<(SystemTime, String, PathBuf)> = Vec::new();
        for entry in entries {
            let Ok(entry) = entry else { continue };
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name.starts_with('.')
                || PARTIAL_SUFFIXES.iter().any(|s| name.ends_with(s))
                || !glob::matches(&self.pattern, &name)
            {
                continue;
            }
            // `DirEntry::file_type` does not follow symlinks: only regular files count.
            if !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let Ok(modified) = entry.metadata().and_then(|m| m.modified()) else {
                continue;
            };
            // Modified in the future (clock skew) or too recently: still being written.
            match now.duration_since(modified) {
                Ok(age) if age >= self.settle => {}
                _ => continue,
            }
            found.push((modified, name, entry.path()));
        }
        found.sort();
        Ok(found.into_iter().map(|(_, _, p)| p).collect())
    }

    /// The records of `path`, in file order.
    pub fn read(&self, path: &Path) -> Result<Vec<Record>, FileError> {
        let bytes = self.read_bytes(path)?;
        self.parse(path, &bytes)
    }

    /// [`file_key`] and [`FileDrop::read`] from one read of the file.
    pub fn read_keyed(&self, path: &Path) -> Result<(String, Vec<Record>), FileError> {
        let bytes = self.read_bytes(path)?;
        Ok((content_key(&bytes), self.parse(path, &bytes)?))
    }

    /// Moves `path` to `done_dir` (`Ok`) or `failed_dir` (`Err(reason)`, with
    /// `<name>.reason` holding the reason) and returns where it went. Never overwrites: a
    /// clash gets `-1`, `-2`… before the extension. Both directories are created when
    /// missing and must be on the same filesystem as `dir`.
    pub fn finish(&self, path: &Path, outcome: Result<(), String>) -> Result<PathBuf, FileError> {
        let target_dir = match outcome {
            Ok(()) => &self.done_dir,
            Err(_) => &self.failed_dir,
        };
        fs::create_dir_all(target_dir).map_err(|e| FileError::io(target_dir, "create", e))?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| FileError::malformed(path, None, "not a file name"))?;
        let moved = move_no_clobber(path, target_dir, name)?;
        if let Err(reason) = outcome {
            let mut reason_path = moved.clone().into_os_string();
            reason_path.push(".reason");
            let reason_path = PathBuf::from(reason_path);
            let mut text = reason;
            if !text.ends_with('\n') {
                text.push('\n');
            }
            fs::write(&reason_path, text).map_err(|e| FileError::io(&reason_path, "write", e))?;
        }
        Ok(moved)
    }

    fn read_bytes(&self, path: &Path) -> Result<Vec<u8>, FileError> {
        let file = fs::File::open(path).map_err(|e| FileError::io(path, "open", e))?;
        let mut bytes = Vec::new();
        file.take(self.max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| FileError::io(path, "read", e))?;
        if bytes.len() as u64 > self.max_bytes {
            return Err(FileError::TooLarge {
                path: path.to_path_buf(),
                limit: self.max_bytes,
            });
        }
        Ok(bytes)
    }

    fn parse(&self, path: &Path, bytes: &[u8]) -> Result<Vec<Record>, FileError> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        match self.format {
            FileFormat::Csv => {
                let delimiter = self.delimiter.clone().map_err(FileError::Delimiter)?;
                parse_csv(path, bytes, delimiter, self.header)
            }
            FileFormat::Jsonl => parse_jsonl(path, bytes),
            FileFormat::Json => parse_json(path, bytes),
        }
    }
}

/// Hex SHA-256 of the file's content: the identity of a delivered file across renames,
/// re-sends and restarts. See the module doc for the contract.
pub fn file_key(path: &Path) -> Result<String, FileError> {
    let mut file = fs::File::open(path).map_err(|e| FileError::io(path, "open", e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(FileError::io(path, "read", e)),
        };
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// [`file_key`] of bytes already in memory.
pub fn content_key(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn parse_csv(
    path: &Path,
    bytes: &[u8],
    delimiter: u8,
    header: bool,
) -> Result<Vec<Record>, FileError> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut lines = LineCounter::new(bytes);
    let mut names: Option<Vec<String>> = None;
    let mut expected: Option<(usize, u64)> = None;
    let mut out = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let more = reader
            .read_record(&mut record)
            .map_err(|e| csv_error(path, e, &mut lines))?;
        if !more {
            break;
        }
        let line = lines.line_at(record.position().map_or(0, csv::Position::byte));
        let fields: Vec<&str> = record.iter().collect();
        match expected {
            None => expected = Some((fields.len(), line)),
            Some((n, first)) if n != fields.len() => {
                let what = if header {
                    "the header"
                } else {
                    "the first row"
                };
                return Err(FileError::malformed(
                    path,
                    Some(line),
                    format!("{} fields, but {what} (line {first}) has {n}", fields.len()),
                ));
            }
            Some(_) => {}
        }
        if header && names.is_none() {
            for (i, name) in fields.iter().enumerate() {
                if let Some(j) = fields[..i].iter().position(|n| n == name) {
                    return Err(FileError::malformed(
                        path,
                        Some(line),
                        format!(
                            "the header names column `{name}` twice (columns {} and {})",
                            j + 1,
                            i + 1
                        ),
                    ));
                }
            }
            names = Some(fields.iter().map(|s| (*s).to_string()).collect());
            continue;
        }
        let value = match &names {
            Some(names) => Value::Object(
                names
                    .iter()
                    .zip(&fields)
                    .map(|(k, v)| (k.clone(), Value::String((*v).to_string())))
                    .collect::<Map<String, Value>>(),
            ),
            None => Value::Array(
                fields
                    .iter()
                    .map(|v| Value::String((*v).to_string()))
                    .collect(),
            ),
        };
        out.push(Record { line, value });
    }
    Ok(out)
}

fn csv_error(path: &Path, e: csv::Error, lines: &mut LineCounter<'_>) -> FileError {
    let line = e.position().map(|p| lines.line_at(p.byte()));
    let message = match e.kind() {
        csv::ErrorKind::Utf8 { err, .. } => {
            format!("field {} is not valid UTF-8", err.field() + 1)
        }
        csv::ErrorKind::Io(e) => e.to_string(),
        _ => e.to_string(),
    };
    FileError::malformed(path, line, message)
}

/// 1-based line numbers of record starts, counted by us: the `csv` crate's own line count
/// lags by one on CRLF files (it counts a record's `\n` after the next record began).
struct LineCounter<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8]) -> LineCounter<'a> {
        LineCounter {
            bytes,
            pos: 0,
            line: 1,
        }
    }

    /// The line of the first byte at or after `offset` that is not a line end; offsets
    /// must not decrease between calls.
    fn line_at(&mut self, offset: u64) -> u64 {
        let mut target = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.bytes.len());
        while matches!(self.bytes.get(target), Some(b'\r' | b'\n')) {
            target += 1;
        }
        if target > self.pos {
            self.line += self.bytes[self.pos..target]
                .iter()
                .filter(|b| **b == b'\n')
                .count() as u64;
            self.pos = target;
        }
        self.line
    }
}

fn parse_jsonl(path: &Path, bytes: &[u8]) -> Result<Vec<Record>, FileError> {
    let mut out = Vec::new();
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = i as u64 + 1;
        let text = std::str::from_utf8(raw)
            .map_err(|_| FileError::malformed(path, Some(line), "not valid UTF-8"))?;
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let value = serde_json::from_str(text).map_err(|e| {
            FileError::malformed(
                path,
                Some(line),
                format!("invalid JSON at column {}: {e}", e.column()),
            )
        })?;
        out.push(Record { line, value });
    }
    Ok(out)
}

fn parse_json(path: &Path, bytes: &[u8]) -> Result<Vec<Record>, FileError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64
            + 1;
        FileError::malformed(path, Some(line), "not valid UTF-8")
    })?;
    let value = serde_json::from_str(text).map_err(|e| {
        FileError::malformed(
            path,
            Some(e.line() as u64),
            format!("invalid JSON at column {}: {e}", e.column()),
        )
    })?;
    Ok(vec![Record { line: 1, value }])
}

/// Moves `from` into `dir` under `name`, or `stem-N.ext` when taken. The hard link refuses
/// an existing target atomically; a filesystem without hard links falls back to a
/// checked rename.
fn move_no_clobber(from: &Path, dir: &Path, name: &str) -> Result<PathBuf, FileError> {
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => name.split_at(i),
        _ => (name, ""),
    };
    for n in 0u32.. {
        let candidate = if n == 0 {
            dir.join(name)
        } else {
            dir.join(format!("{stem}-{n}{ext}"))
        };
        match fs::hard_link(from, &candidate) {
            Ok(()) => {
                fs::remove_file(from).map_err(|e| FileError::io(from, "remove", e))?;
                return Ok(candidate);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(link_err) => {
                if fs::symlink_metadata(from).is_err() {
                    return Err(FileError::io(from, "move", link_err));
                }
                if candidate.exists() {
                    continue;
                }
                fs::rename(from, &candidate).map_err(|e| FileError::io(from, "move", e))?;
                return Ok(candidate);
            }
        }
    }
    Err(FileError::io(
        from,
        "move",
        io::Error::other("no free name in the target directory"),
    ))
}
