//! The file sink (`output: { file: … }`): `jsonl` (the default) appends one line per
//! message, `json` writes one whole file per message (to a temporary name, then renamed, so
//! a reader never sees half a file). Both are fsynced before the message is confirmed.
//!
//! **Lines are not written twice.** Before a line is appended, an output mark records where
//! (path, offset, length, SHA-256) in the store, and the mark lives until the message is
//! settled. A message tried again — after a crash between the write and the commit of its
//! acknowledgement, or because another of its outputs failed — finds its mark; when the file
//! still holds exactly that line there, the line is not appended again. A mark whose bytes
//! are not there (the write never happened, the file was rotated) is written again: a mark
//! can cause a repeat, never a loss. A `json` file is replaced whole, so a repeat rewrites
//! the same file.
//!
//! **Message content stays data.** A templated value that would change the directory (a
//! `/` or `\`, `.` or `..`, NUL) is a permanent error, and so is a rendered path that is
//! absolute or climbs above the output root (`SinkCx::output_root`), where every file output
//! writes.

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use railyard_core::expr::render_template_with;
use railyard_core::model::pipeline::{FileFormat, FileOutput};
use railyard_store::{OutputMark, OutputSlot, Store, StoreError};
use sha2::{Digest, Sha256};

use crate::sink::{Item, SendError, Sink, SinkCx, now_ms};

impl Sink for FileOutput {
    async fn send(&self, cx: &SinkCx<'_>, item: &Item<'_>) -> Result<(), SendError> {
        let rendered = render_path(&self.path.value, item)?;
        let path = cx.output_root.join(&rendered);
        let wrapped;
        let body = if self.envelope.unwrap_or(false) {
            wrapped = envelope(item.message);
            &wrapped
        } else {
            item.message.body()
        };
        match self.format.unwrap_or(FileFormat::Jsonl) {
            FileFormat::Jsonl => {
                let mut line =
                    serde_json::to_vec(body).map_err(|e| SendError::permanent(e.to_string()))?;
                line.push(b'\n');
                let slot = OutputSlot {
                    pipeline: item.pipeline.to_string(),
                    origin: item.origin.to_string(),
                    item: item.index,
                    output: item.output_index,
                };
                cx.marked.store(true, Ordering::Relaxed);
                cx.store
                    .run(move |store| Ok(append_once(store, &path, &line, &slot)))
                    .await
                    .map_err(|e| SendError::transient(format!("file `{rendered}`: {e}")))?
                    .map(drop)
            }
            FileFormat::Json => {
                let mut whole = serde_json::to_vec_pretty(body)
                    .map_err(|e| SendError::permanent(e.to_string()))?;
                whole.push(b'\n');
                tokio::task::spawn_blocking(move || replace_whole(&path, &whole))
                    .await
                    .map_err(|e| SendError::transient(format!("file `{rendered}`: {e}")))?
            }
            FileFormat::Csv => Err(SendError::permanent(
                "file outputs write `jsonl` or `json`, not `csv`",
            )),
        }
    }
}

/// A message with its context (`envelope: true`): who it is, when it came, which revision of
/// which pipeline wrote it, then the body.
fn envelope(message: &railyard_core::engine::Message) -> serde_json::Value {
    let meta = message.meta();
    let mut out = serde_json::Map::new();
    for key in [
        "id",
        "correlation_id",
        "received_at",
        "source",
        "pipeline",
        "pipeline_version",
        "pipeline_revision",
    ] {
        if let Some(v) = meta.get(key) {
            out.insert(key.to_string(), v.clone());
        }
    }
    out.insert("body".to_string(), message.body().clone());
    serde_json::Value::Object(out)
}

/// Renders the path template; each substituted value must stay within one path segment,
/// and the segment holding it may not end up empty, `.` or `..` (`out/{{ store }}/x` with an
/// empty store would be `out/x`; `{{ name }}.{{ ext }}` with both empty would be `.`).
pub fn render_path(template: &str, item: &Item<'_>) -> Result<String, SendError> {
    // Where each value landed in the rendered text, by expression.
    let mut placed: Vec<(String, std::ops::Range<usize>)> = Vec::new();
    let rendered = render_template_with(
        template,
        &item.output.templates,
        item.message.envelope(),
        |expr, value, before| {
            let bad = value.contains(['/', '\\', '\0']) || value == "." || value == "..";
            if bad {
                return Err(format!(
                    "file path: `{{{{ {expr} }}}}` is `{}`, which would change the directory (a value may not contain `/`, `\\` or NUL, nor be `.` or `..`)",
                    value.chars().take(120).collect::<String>().escape_default()
                ));
            }
            placed.push((expr.to_string(), before.len()..before.len() + value.len()));
            Ok(value)
        },
    )
    .map_err(SendError::permanent)?;
    if rendered.contains('\0') {
        return Err(SendError::permanent(format!(
            "file path `{}` contains a NUL byte",
            rendered.escape_default()
        )));
    }
    for (expr, at) in &placed {
        let start = rendered
            .get(..at.start)
            .and_then(|head| head.rfind(std::path::is_separator))
            .map_or(0, |i| i + 1);
        let end = rendered
            .get(at.end..)
            .and_then(|tail| tail.find(std::path::is_separator))
            .map_or(rendered.len(), |i| at.end + i);
        let segment = rendered.get(start..end).unwrap_or_default();
        if matches!(segment, "" | "." | "..") {
            return Err(SendError::permanent(format!(
                "file path: `{{{{ {expr} }}}}` leaves the path component `{segment}` in `{}`, which would change the directory",
                rendered.escape_default()
            )));
        }
    }
    // The same rule `validate` applies to the fixed text, now with the values in: relative,
    // and never above the output root (defence in depth: the checks above already keep values in their component).
    railyard_core::project::project_path(&rendered).map_err(|_| {
        SendError::permanent(format!(
            "file path `{}` would be outside the output root (absolute, or `..` above it)",
            rendered
                .chars()
                .take(200)
                .collect::<String>()
                .escape_default()
        ))
    })
}

/// Appends are serialised per file (striped by path), so the offset recorded in a mark is
/// where the line lands.
static STRIPES: [Mutex<()>; 64] = [const { Mutex::new(()) }; 64];

fn stripe(path: &Path) -> &'static Mutex<()> {
    let mut h = DefaultHasher::new();
    path.hash(&mut h);
    &STRIPES[(h.finish() % STRIPES.len() as u64) as usize]
}

/// What [`append_once`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Appended {
    Written,
    /// An earlier attempt of the same message wrote this very line; not written again.
    AlreadyThere,
}

/// Appends `line` to `path` once per `slot` (see the module docs), fsynced.
pub fn append_once(
    store: &Store,
    path: &Path,
    line: &[u8],
    slot: &OutputSlot,
) -> Result<Appended, SendError> {
    let shown = path.display();
    let io = |e: std::io::Error| SendError::transient(format!("file `{shown}`: {e}"));
    let digest = Sha256::digest(line).to_vec();
    let path_text = path.to_string_lossy().into_owned();
    if let Some(mark) = store.output_mark(slot).map_err(store_error)?
        && mark.path == path_text
        && mark.digest == digest
        && holds(path, mark.offset, line)
    {
        return Ok(Appended::AlreadyThere);
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(io)?;
    }
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io)?;
    {
        let _serial = stripe(path)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let offset = file.metadata().map_err(io)?.len();
        let mark = OutputMark {
            path: path_text,
            offset,
            len: line.len() as u64,
            digest,
        };
        store
            .set_output_mark(slot, &mark, now_ms())
            .map_err(store_error)?;
        if let Err(e) = file.write_all(line) {
            // No torn line left behind for the retry to append after.
            let _ = file.set_len(offset);
            return Err(io(e));
        }
    }
    file.sync_data().map_err(io)?;
    Ok(Appended::Written)
}

/// Whether `path` holds exactly `line` at `offset`.
fn holds(path: &Path, offset: u64, line: &[u8]) -> bool {
    let Ok(mut file) = fs::File::open(path) else {
        return false;
    };
    let long_enough = file
        .metadata()
        .is_ok_and(|m| m.len() >= offset.saturating_add(line.len() as u64));
    if !long_enough || file.seek(SeekFrom::Start(offset)).is_err() {
        return false;
    }
    let mut there = vec![0; line.len()];
    file.read_exact(&mut there).is_ok() && there == line
}

fn store_error(e: StoreError) -> SendError {
    SendError::transient(format!("store (output marks): {e}"))
}

/// Writes `bytes` as the whole of `path`: to a temporary name in the same directory,
/// fsynced, renamed over `path`, and the directory fsynced.
fn replace_whole(path: &Path, bytes: &[u8]) -> Result<(), SendError> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let shown = path.display();
    let io = |e: std::io::Error| SendError::transient(format!("file `{shown}`: {e}"));
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let Some(name) = name else {
        return Err(SendError::permanent(format!(
            "file `{shown}`: the path names no file"
        )));
    };
    let tmp: PathBuf = dir.join(format!(
        ".{name}.{}-{}.tmp",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written.map_err(io)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn slot(origin: &str) -> OutputSlot {
        OutputSlot {
            pipeline: "p".into(),
            origin: origin.into(),
            item: 0,
            output: 0,
        }
    }

    #[test]
    fn a_line_is_appended_once_per_message_across_attempts() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in_memory().unwrap();
        let out = dir.path().join("out/a.jsonl");
        let (a, b) = (b"{\"n\":1}\n".as_slice(), b"{\"n\":2}\n".as_slice());
        assert_eq!(
            append_once(&store, &out, a, &slot("m1")).unwrap(),
            Appended::Written
        );
        assert_eq!(
            append_once(&store, &out, b, &slot("m2")).unwrap(),
            Appended::Written
        );
        // m1 again (its commit was lost in a crash): already there.
        assert_eq!(
            append_once(&store, &out, a, &slot("m1")).unwrap(),
            Appended::AlreadyThere
        );
        assert_eq!(fs::read(&out).unwrap(), [a, b].concat());
        // m1 again with a different line (its mapping was fixed): written.
        let a2 = b"{\"n\":10}\n".as_slice();
        assert_eq!(
            append_once(&store, &out, a2, &slot("m1")).unwrap(),
            Appended::Written
        );
        assert_eq!(fs::read(&out).unwrap(), [a, b, a2].concat());
    }

    #[test]
    fn a_mark_whose_line_is_not_in_the_file_is_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in_memory().unwrap();
        let out = dir.path().join("a.jsonl");
        let line = b"{\"n\":1}\n".as_slice();
        // The mark was recorded, then the process died before the write.
        let mark = OutputMark {
            path: out.to_string_lossy().into_owned(),
            offset: 0,
            len: line.len() as u64,
            digest: Sha256::digest(line).to_vec(),
        };
        store.set_output_mark(&slot("m1"), &mark, 0).unwrap();
        assert_eq!(
            append_once(&store, &out, line, &slot("m1")).unwrap(),
            Appended::Written
        );
        // The file was rotated away after the write: written again, not lost.
        fs::rename(&out, dir.path().join("a.jsonl.1")).unwrap();
        fs::write(&out, b"{\"other\":true}\n").unwrap();
        assert_eq!(
            append_once(&store, &out, line, &slot("m1")).unwrap(),
            Appended::Written
        );
        assert_eq!(
            fs::read(&out).unwrap(),
            [b"{\"other\":true}\n".as_slice(), line].concat()
        );
    }

    #[test]
    fn a_whole_file_is_replaced_not_appended() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("orders/1042.json");
        replace_whole(&out, b"{\"a\":1}\n").unwrap();
        replace_whole(&out, b"{\"a\":2}\n").unwrap();
        assert_eq!(fs::read(&out).unwrap(), b"{\"a\":2}\n");
        let left: Vec<_> = fs::read_dir(dir.path().join("orders")).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left: {left:?}");
    }
}
