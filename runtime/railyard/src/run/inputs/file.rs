//! The file-drop input: complete files only, one record at a time, each record's file
//! progress committed with its unit of work; a record's retries follow the pipeline's policy.

use super::*;

/// Picks up dropped files (POS batch exports): each record is handed to the pipeline, progress
/// is recorded per file content key after every record, and the file moves to done/ when all
/// records are handed off (failed/ with a `.reason` when it cannot be read). After a crash the
/// file is resumed after the last recorded record; a re-sent copy of a finished file is moved to
/// done/ without posting anything. A crash between a hand-off and its progress row re-posts
/// that one record: at-least-once, never lost.
pub(crate) async fn file_drop(
    rt: Arc<Runtime>,
    pipeline: String,
    drop: railyard_connectors::file::FileDrop,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    // The drop directory is where the stores' SFTP jobs write: create it rather than warn
    // about it on every poll.
    if let Err(e) = std::fs::create_dir_all(drop.dir()) {
        tracing::error!(pipeline = %pipeline, dir = %drop.dir().display(), error = %e, "Cannot create the drop directory.");
    }
    let drop = Arc::new(drop);
    let mut errors = driver::Throttle::default();
    loop {
        if *stop.borrow() {
            return;
        }
        drain_files(&rt, &pipeline, &drop, &mut errors).await;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Hands one file record to the pipeline until it is done: delivered, or dead-lettered after
/// its last attempt (the pipeline's `on_error.retry`), its file progress recorded in the same
/// transaction either way. False when the runtime stops or the store fails first (the file
/// resumes at this record).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn drain_record(
    rt: &Arc<Runtime>,
    live: &Arc<Live>,
    p: &Pipeline,
    name: &str,
    key: &str,
    record: railyard_connectors::file::Record,
    origin: Origin,
    done: u64,
    total: u64,
) -> bool {
    use railyard_store::{FileMark, FileProgress};
    let mark = FileMark {
        pipeline: p.name.clone(),
        key: key.to_string(),
        progress: FileProgress {
            handed_off: done + 1,
            complete: done + 1 == total,
        },
        now_ms: outputs::now_ms(),
    };
    let mut attempt = 1u32;
    loop {
        let unit = Unit {
            file: Some(mark.clone()),
            ..Unit::default()
        };
        let input = Input::Payload {
            body: record.value.clone(),
            origin: origin.clone(),
        };
        let Err(failed) = run_message(rt, live, &p.name, input, unit).await else {
            return true;
        };
        let e = &failed.error;
        let wait = match driver::verdict(p, attempt, Some(e)) {
            Verdict::Ack => return true,
            Verdict::Retry(wait) => {
                tracing::warn!(pipeline = %p.name, file = %name, line = record.line, attempt, error = %e, retry_in_ms = millis(wait), "Output failed; the record will be retried.");
                attempt += 1;
                wait
            }
            Verdict::Hold(wait) => {
                tracing::warn!(pipeline = %p.name, file = %name, line = record.line, error = %e, "Destination unreachable; the record is held until it is back.");
                wait
            }
            Verdict::DeadLetter => {
                tracing::warn!(pipeline = %p.name, file = %name, line = record.line, attempts = attempt, error = %e, "Dead-lettering the record.");
                let mut msg = failed.original;
                msg.set_meta("attempt", Value::from(attempt));
                let unit = Unit {
                    dead_letters: vec![dead_letter_entry(p, &msg, None, "output", exhausted(e))],
                    file: Some(mark.clone()),
                    ..Unit::default()
                };
                let store = rt.store.clone();
                match tokio::task::block_in_place(move || store.commit_unit(&unit)) {
                    Ok(_) => return true,
                    Err(err) => {
                        tracing::error!(pipeline = %p.name, file = %name, error = %err, "Could not dead-letter a record; the file resumes at it.");
                        return false;
                    }
                }
            }
        };
        if !pause(rt, wait).await {
            return false;
        }
    }
}

/// One poll of the drop directory: every complete file, record by record. File-system and
/// store calls run with `block_in_place` (one task per file drop; nothing else waits on it).
pub(crate) async fn drain_files(
    rt: &Arc<Runtime>,
    pipeline: &str,
    drop: &railyard_connectors::file::FileDrop,
    errors: &mut driver::Throttle,
) {
    use railyard_store::FileProgress;
    use tokio::task::block_in_place;
    let live = rt.live();
    let Some(p) = live.project.pipelines.get(pipeline) else {
        return;
    };
    for path in block_in_place(|| drop.poll(std::time::SystemTime::now())) {
        if rt.stopping.load(Ordering::Relaxed) {
            return;
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let railyard_connectors::file::ReadFile {
            key,
            records,
            snapshot,
        } = match block_in_place(|| drop.read_checked(&path, std::time::SystemTime::now())) {
            Ok(x) => x,
            // Still being written: the next poll looks again.
            Err(e) if e.is_not_ready() => {
                tracing::debug!(pipeline, file = %name, error = %e, "Dropped file not complete yet.");
                continue;
            }
            Err(e) => {
                tracing::warn!(pipeline, file = %name, error = %e, "Rejected dropped file.");
                let _ = block_in_place(|| drop.finish(&path, Err(e.to_string())));
                continue;
            }
        };
        let progress = match block_in_place(|| rt.store.file_progress(pipeline, &key)) {
            Ok(p) => p.unwrap_or(FileProgress {
                handed_off: 0,
                complete: false,
            }),
            Err(e) => {
                if let Some(suppressed) = errors.admit(Instant::now()) {
                    tracing::error!(pipeline, error = %e, repeated = suppressed, "Store unavailable; file left for the next poll.");
                }
                return;
            }
        };
        let total = records.len() as u64;
        let mut done = progress.handed_off;
        if !progress.complete {
            for record in records.into_iter().skip(progress.handed_off as usize) {
                // Stopping mid-file is safe: progress is recorded per record, and the file
                // resumes after the last one handed off.
                if rt.stopping.load(Ordering::Relaxed) {
                    return;
                }
                let mut headers = serde_json::Map::new();
                headers.insert("file".into(), Value::String(name.clone()));
                headers.insert("line".into(), Value::from(record.line));
                // The id is the file's content and the line: a record posted again after a crash
                // (between its hand-off and its progress row) carries the same id, so a
                // dedupe step or the peer (`x-railyard-message-id`) can drop the repeat.
                let origin = Origin {
                    id: Some(format!(
                        "file-{}-{}",
                        key.get(..16).unwrap_or(&key),
                        record.line
                    )),
                    source: format!("file:{name}:{}", record.line),
                    headers,
                    ..Origin::default()
                };
                if !drain_record(rt, &live, p, &name, &key, record, origin, done, total).await {
                    return;
                }
                done += 1;
            }
        }
        if done == total {
            if total == 0 {
                let mark = FileProgress {
                    handed_off: 0,
                    complete: true,
                };
                let _ = block_in_place(|| {
                    rt.store
                        .set_file_progress(pipeline, &key, mark, outputs::now_ms())
                });
            }
            match block_in_place(|| {
                drop.finish_checked(&path, &snapshot, Ok(()), std::time::SystemTime::now())
            }) {
                Ok(to) => {
                    tracing::info!(pipeline, file = %name, records = total, moved_to = %to.display(), "Processed dropped file.")
                }
                Err(e) if e.is_not_ready() => {
                    // Its new content is a new file to the store: read again from the start
                    // at the next poll (records repeat; none is lost).
                    tracing::warn!(pipeline, file = %name, error = %e, "A processed file changed after it was read; it stays for the next poll.")
                }
                Err(e) => {
                    tracing::error!(pipeline, file = %name, error = %e, "Could not move a processed file.")
                }
            }
        }
    }
}
