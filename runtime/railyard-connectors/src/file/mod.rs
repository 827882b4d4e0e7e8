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
//!   file as one record; JSON goes through the one JSON intake
//!   ([`railyard_core::json::parse_payload`]). A UTF-8 BOM and CRLF line ends are accepted. A
//!   malformed file (a CSV row with the wrong number of fields, invalid JSON, a duplicate key
//!   or an integer beyond 64 bits in a JSON record, bytes that are not UTF-8) is a
//!   [`FileError::Malformed`] naming the line; no records are returned for it, so a file is
//!   either handed off whole or not at all.
//! - [`FileDrop::finish`] moves the file to `done_dir` or `failed_dir` (no-clobber: on a name
//!   clash `-1`, `-2`… is added before the extension) and, for a failure, writes
//!   `<name>.reason` next to it.
//!
//! # When a file is complete
//!
//! A writer may pause longer than [`SETTLE`] (an SFTP job stalls, an exporter flushes in
//! chunks). [`FileDrop::read_checked`] therefore also refuses, for a later poll
//! ([`FileError::Changing`], [`FileError::Incomplete`]):
//! - a file whose size, modification time or inode changed while it was read;
//! - a CSV or JSON-lines file that does not end with a line break, or any file that does not
//!   parse, until it has been left unchanged for [`GRACE`] (then it is taken as it is: some
//!   exporters end without a line break, and a file that still does not parse is malformed);
//!
//! and [`FileDrop::finish_checked`] moves a file only if it is still what was read: a file
//! that changed after its records were handed off is left in place (its new content is a new
//! file to the store; records repeat, none is lost). A file whose modification time is in the
//! future (a clock skew between the SFTP server and this host) is logged and picked up once it
//! stayed unchanged across polls for [`SETTLE`].
//!
//! The safe convention for writers remains: write under a temporary name (`*.part`,
//! `*.tmp`, a dotfile) and rename when done; a rename is atomic.
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
mod sink;

pub use self::sink::{Appended, append_once};

/// The file sink's path rendering, public only for the template property harness
/// (`tests/template_fuzz.rs`).
#[doc(hidden)]
pub use self::sink::render_path;

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use railyard_core::json::{PayloadError, parse_payload};
use railyard_core::model::pipeline::{FileFormat, FileInput};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// How long a file must be left unmodified before it is picked up.
pub const SETTLE: Duration = Duration::from_secs(1);

/// How long a file that looks cut off (no final line break, does not parse) must be left
/// unmodified before it is taken as it is.
pub const GRACE: Duration = Duration::from_secs(10);

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
    /// The file changed while it was read, or after (a writer is still at it): left for a
    /// later poll.
    #[error("file `{}` changed while it was being read ({detail}); a writer is still at it, so it is left for the next poll", path.display())]
    Changing { path: PathBuf, detail: String },
    /// The file looks cut off (no final line break, or it does not parse) and was modified
    /// less than [`GRACE`] ago: left for a later poll.
    #[error("file `{}` looks incomplete ({detail}); it is left until it is complete or unchanged for {}s", path.display(), GRACE.as_secs())]
    Incomplete { path: PathBuf, detail: String },
}

impl FileError {
    /// The file is not ready yet (still being written): try it again at a later poll, do not
    /// move it to `failed_dir`.
    pub fn is_not_ready(&self) -> bool {
        matches!(
            self,
            FileError::Changing { .. } | FileError::Incomplete { .. }
        )
    }

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

/// What a file was when it was read: size, modification time and inode. A difference later
/// means a writer was still at it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl Snapshot {
    fn of(meta: &fs::Metadata) -> Snapshot {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let inode = 0;
        Snapshot {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode,
        }
    }

    fn differences(&self, now: &Snapshot) -> Option<String> {
        if self.inode != now.inode {
            Some("it was replaced".to_string())
        } else if self.len != now.len {
            Some(format!("{} bytes, then {}", self.len, now.len))
        } else if self.modified != now.modified {
            Some("its modification time moved".to_string())
        } else {
            None
        }
    }
}

/// One file read whole: its content key, its records, and what it was.
#[derive(Debug)]
pub struct ReadFile {
    pub key: String,
    pub records: Vec<Record>,
    pub snapshot: Snapshot,
}

type FutureFiles = std::collections::HashMap<PathBuf, (Snapshot, SystemTime)>;

/// A file moved to done: where it went, where it came from, what it was, when.
type Finished = (PathBuf, PathBuf, Snapshot, SystemTime);

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
    grace: Duration,
    max_bytes: u64,
    /// Files seen with a modification time in the future: what they were and when first
    /// seen so (by the poll's clock), so they are taken once unchanged for `settle`.
    future: std::sync::Arc<std::sync::Mutex<FutureFiles>>,
    /// Files moved to `done_dir` less than `grace` ago: (where it went, where it came from,
    /// what it was, when). A writer that resumes after a long pause appends to the moved file
    /// (same inode); such a file is moved back to be read again.
    finished: std::sync::Arc<std::sync::Mutex<Vec<Finished>>>,
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
            grace: GRACE,
            max_bytes: DEFAULT_MAX_FILE_BYTES,
            future: Default::default(),
            finished: Default::default(),
        }
    }

    /// How long a file that looks cut off waits before it is taken as it is (default
    /// [`GRACE`]).
    pub fn with_grace(mut self, grace: Duration) -> FileDrop {
        self.grace = grace;
        self
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
        self.recheck_finished(now);
        let entries = fs::read_dir(&self.dir).map_err(|e| FileError::io(&self.dir, "list", e))?;
        let mut found: Vec<(SystemTime, String, PathBuf)> = Vec::new();
        let mut future = self
            .future
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut still_future = FutureFiles::new();
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
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            let Ok(modified) = meta.modified() else {
                continue;
            };
            match now.duration_since(modified) {
                Ok(age) if age >= self.settle => {}
                // Too recent: still being written.
                Ok(_) => continue,
                // In the future: the writer's clock is ahead. Taken once it stayed the same
                // for `settle` by our clock.
                Err(ahead) => {
                    let path = entry.path();
                    let snapshot = Snapshot::of(&meta);
                    let since = match future.get(&path) {
                        Some((seen, since)) if *seen == snapshot => *since,
                        _ => {
                            tracing::warn!(file = %path.display(), ahead_secs = ahead.duration().as_secs(), "file input: the file's modification time is in the future (clock skew?); it is picked up once it stays unchanged");
                            now
                        }
                    };
                    still_future.insert(path.clone(), (snapshot, since));
                    if now.duration_since(since).is_ok_and(|d| d >= self.settle) {
                        found.push((now, name, path));
                    }
                    continue;
                }
            }
            found.push((modified, name, entry.path()));
        }
        *future = still_future;
        drop(future);
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

    /// [`FileDrop::read_keyed`], refusing a file that is not complete yet (see the module doc):
    /// [`FileError::Changing`] when it changed during the read, [`FileError::Incomplete`]
    /// when it looks cut off and was modified less than the grace period before `now`.
    pub fn read_checked(&self, path: &Path, now: SystemTime) -> Result<ReadFile, FileError> {
        let file = fs::File::open(path).map_err(|e| FileError::io(path, "open", e))?;
        let before = file
            .metadata()
            .map(|m| Snapshot::of(&m))
            .map_err(|e| FileError::io(path, "stat", e))?;
        let bytes = read_limited(file, path, self.max_bytes)?;
        let after = fs::metadata(path)
            .map(|m| Snapshot::of(&m))
            .map_err(|e| FileError::io(path, "stat", e))?;
        let changed = before.differences(&after).or_else(|| {
            (bytes.len() as u64 != after.len).then(|| "read a different length".to_string())
        });
        if let Some(detail) = changed {
            return Err(FileError::Changing {
                path: path.to_path_buf(),
                detail,
            });
        }
        let young = after
            .modified
            .is_none_or(|m| now.duration_since(m).map_or(true, |age| age < self.grace));
        let unterminated = matches!(self.format, FileFormat::Csv | FileFormat::Jsonl)
            && !bytes.is_empty()
            && !bytes.ends_with(b"\n");
        if young && unterminated {
            return Err(FileError::Incomplete {
                path: path.to_path_buf(),
                detail: "it does not end with a line break".to_string(),
            });
        }
        let records = match self.parse(path, &bytes) {
            Ok(r) => r,
            Err(e @ FileError::Malformed { .. }) if young => {
                return Err(FileError::Incomplete {
                    path: path.to_path_buf(),
                    detail: e.to_string(),
                });
            }
            Err(e) => return Err(e),
        };
        Ok(ReadFile {
            key: content_key(&bytes),
            records,
            snapshot: after,
        })
    }

    /// [`FileDrop::finish`], if the file is still what was read (`snapshot`); else
    /// [`FileError::Changing`] and the file stays where it is. A file moved to `done_dir` is
    /// watched for the grace period: if its writer resumes and appends to it there, the next
    /// poll moves it back to be read again (its records repeat; none is lost).
    pub fn finish_checked(
        &self,
        path: &Path,
        snapshot: &Snapshot,
        outcome: Result<(), String>,
        now: SystemTime,
    ) -> Result<PathBuf, FileError> {
        let current = fs::metadata(path)
            .map(|m| Snapshot::of(&m))
            .map_err(|e| FileError::io(path, "stat", e))?;
        if let Some(detail) = snapshot.differences(&current) {
            return Err(FileError::Changing {
                path: path.to_path_buf(),
                detail,
            });
        }
        let done = outcome.is_ok();
        let moved = self.finish(path, outcome)?;
        if done {
            self.finished
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((moved.clone(), path.to_path_buf(), current, now));
        }
        Ok(moved)
    }

    /// Moves back the recently finished files that changed in `done_dir`; forgets the ones
    /// older than the grace period.
    fn recheck_finished(&self, now: SystemTime) {
        let mut finished = self
            .finished
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        finished.retain(|(moved, original, snapshot, at)| {
            let changed = fs::metadata(moved)
                .ok()
                .and_then(|m| snapshot.differences(&Snapshot::of(&m)));
            if let Some(detail) = changed {
                let back = original
                    .file_name()
                    .and_then(|n| n.to_str())
                    .ok_or_else(|| FileError::malformed(original, None, "not a file name"))
                    .and_then(|name| move_no_clobber(moved, &self.dir, name));
                match back {
                    Ok(to) => tracing::warn!(file = %to.display(), change = %detail, "file input: a processed file was written to after it was moved to done/ (its writer paused); it is moved back and read again"),
                    Err(e) => tracing::error!(file = %moved.display(), error = %e, "file input: a processed file changed in done/ and could not be moved back; its new records are not read"),
                }
                return false;
            }
            now.duration_since(*at).map_or(true, |age| age < self.grace)
        });
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
        read_limited(file, path, self.max_bytes)
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

/// Reads an open file whole, up to `max_bytes`.
fn read_limited(file: fs::File, path: &Path, max_bytes: u64) -> Result<Vec<u8>, FileError> {
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| FileError::io(path, "read", e))?;
    if bytes.len() as u64 > max_bytes {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            limit: max_bytes,
        });
    }
    Ok(bytes)
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
        let value = parse_payload(text.as_bytes()).map_err(|e| payload_error(path, line, &e))?;
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
    let value =
        parse_payload(text.as_bytes()).map_err(|e| payload_error(path, e.line() as u64, &e))?;
    Ok(vec![Record { line: 1, value }])
}

/// A record refused by the JSON intake ([`parse_payload`]): not JSON, a duplicate key, an
/// integer beyond 64 bits.
fn payload_error(path: &Path, line: u64, e: &PayloadError) -> FileError {
    let what = match e {
        PayloadError::Syntax { message, .. } => format!("invalid JSON: {message}"),
        other => format!("the record {}", other.reason()),
    };
    FileError::malformed(path, Some(line), format!("{what} (column {})", e.column()))
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
