//! The embedded store: one SQLite file (WAL, `synchronous=FULL`) holding the durable topic
//! queues between pipelines, the dead letters and the dedupe keys.
//!
//! Synchronous on purpose: the runtime calls it from `spawn_blocking`. Every write returns
//! after its transaction committed (and, with `synchronous=FULL`, after the WAL was synced),
//! which is what "durably handed off" means for a webhook's 202 and for a topic consumer's ack.
//!
//! # Queues
//!
//! A topic fans out to consumer groups. `subscribe(topic, group)` registers a group (once);
//! `publish` stores the message once (`messages`, keyed by its sequence id) and one delivery
//! row per group subscribed at that moment (`deliveries`), in one transaction. `lease` hands
//! ready deliveries of one group to one consumer, oldest sequence first, for a while: it bumps
//! the delivery's `attempt` and `lease_token` and pushes its `available_at` to the lease's
//! expiry, so other leases skip it until then, and an expired lease is simply leasable again
//! (attempt + 1). `ack` deletes the delivery (and the message once no group still holds it);
//! `nack` makes it ready again at a given time. Both only act when the caller's lease token is
//! still the delivery's current one, so a consumer whose lease was taken over cannot delete or
//! delay the new holder's delivery.
//!
//! Every lease runs in a `BEGIN IMMEDIATE` transaction: two threads, or two processes on the
//! same file, never lease the same delivery.
//!
//! # Dedupe keys as part of a unit of work
//!
//! `claim_key` records a key as *pending* while its message is in flight; `commit_keys` (or
//! `ack_and_commit`, in the same transaction as the delivery's ack) makes it committed once the
//! message's outputs confirmed; `release_keys` deletes it when they failed, so the redelivery
//! is not taken for a duplicate of itself. A live key, pending or committed, is a duplicate.
//!
//! # One process per file
//!
//! `Store::open` holds an exclusive OS lock on a sibling `<file>.lock` (with the holder's pid
//! in it) for as long as the `Store` lives. Holding it proves every previous holder is gone,
//! so `open` reclaims what they left in flight (see [`Reclaimed`]): leased deliveries are ready
//! at once, batch claims are released, pending dedupe keys are deleted.
//!
//! # Clock
//!
//! The store never reads the clock: `now_ms` is passed in (leases, retries, dedupe expiry).

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{
    Connection, ErrorCode, OptionalExtension, Transaction, TransactionBehavior, params,
};
use serde_json::Value;

mod async_store;
mod batches;
mod dead_letters;
mod migrations;
mod open;
mod output_marks;
mod queue;
mod units;

use self::batches::*;
use self::dead_letters::*;
use self::migrations::*;
use self::open::*;
use self::queue::*;
pub use async_store::AsyncStore;
pub use open::check_file;
pub use output_marks::{OutputMark, OutputSlot};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("store: cannot create `{path}`: {source}")]
    Create {
        path: String,
        source: std::io::Error,
    },
    #[error("store: a stored message is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "store: the file has schema version {found}, this build knows up to {supported}; \
         it was written by a newer railyard"
    )]
    NewerSchema { found: i64, supported: i64 },
    /// Another `Store` (another `railyard run`, or this process) holds the file's lock.
    #[error(
        "store: another `railyard run` ({}) uses the data directory of `{path}`; one process \
         per data directory: stop that one, or give this one its own `--data` directory",
        pid_text(.pid)
    )]
    Locked { path: String, pid: Option<u32> },
    /// The file failed SQLite's integrity check, or is not a database at all.
    #[error(
        "store: `{path}` is damaged ({detail}); railyard cannot use it. Move it aside (with its \
         -wal and -shm files) to start with an empty store, or restore it from a backup"
    )]
    Corrupt { path: String, detail: String },
    /// A blocking store task of [`AsyncStore`] panicked or was cancelled.
    #[error("store: the store task did not finish: {0}")]
    Task(#[from] tokio::task::JoinError),
}

fn pid_text(pid: &Option<u32>) -> String {
    match pid {
        Some(pid) => format!("pid {pid}"),
        None => "pid unknown".to_string(),
    }
}

impl StoreError {
    /// The file is damaged (or not a database): retrying will not help.
    pub fn is_corrupt(&self) -> bool {
        match self {
            StoreError::Corrupt { .. } => true,
            StoreError::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
            ),
            _ => false,
        }
    }

    /// The disk is full or failing (SQLITE_FULL, SQLITE_IOERR): writes fail until an operator
    /// frees space or fixes the disk.
    pub fn is_full(&self) -> bool {
        match self {
            StoreError::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(ErrorCode::DiskFull | ErrorCode::SystemIoFailure)
            ),
            StoreError::Create { source, .. } => source.kind() == std::io::ErrorKind::StorageFull,
            _ => false,
        }
    }
}

/// A leased delivery: one message of a topic for one consumer group.
#[derive(Clone, Debug, PartialEq)]
pub struct Leased {
    pub topic: String,
    pub group: String,
    /// The message's sequence id, as returned by `publish` (the same for every group).
    pub seq: u64,
    /// 1 on the first delivery to this group, 2 on the first redelivery, ...
    pub attempt: u32,
    pub message: Value,
    /// The subscription row (topic, group).
    sub: i64,
    /// Which lease of this delivery this is; `ack`/`nack` act only while it is current.
    lease_token: i64,
}

/// A message that could not be processed, kept for inspection and replay.
#[derive(Clone, Debug, PartialEq)]
pub struct DeadLetter {
    pub pipeline: String,
    pub pipeline_version: u32,
    pub step: String,
    pub error: Value,
    /// The message body at the failing step.
    pub message: Value,
    /// The message envelope as it entered the pipeline, before any step; `None` in dead
    /// letters written before this was kept (schema < 5) or by a caller that had none.
    pub original: Option<Value>,
    pub attempts: u32,
    pub at_ms: i64,
}

/// One subscription's backlog ([`Store::backlog`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backlog {
    pub topic: String,
    pub group: String,
    /// Deliveries not yet acked: ready, leased or waiting to retry.
    pub depth: u64,
    /// `meta.received_at` of the oldest of them, as written (RFC 3339).
    pub oldest_received_at: Option<String>,
}

/// Which dead letters [`Store::find_dead_letters`] returns: every given condition holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeadLetterQuery {
    pub pipeline: Option<String>,
    pub step: Option<String>,
    /// The error's code (`output-error`, `schema-violation`, ...).
    pub code: Option<String>,
    /// Dead-lettered at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Dead-lettered before this time.
    pub until_ms: Option<i64>,
    /// Only ids greater than this (paging).
    pub after_id: u64,
    pub limit: usize,
}

/// What [`Store::open`] took back from the previous holder of the file (a process that
/// stopped or crashed): counts, for the runtime to log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reclaimed {
    /// Deliveries that were leased: ready again at once, not after their lease expiry. Their
    /// lease still counted an attempt (a message that crashes the process runs out of them).
    pub deliveries: u64,
    /// Batch claims released: their messages wait in their buffers again.
    pub batches: u64,
    /// Pending dedupe keys deleted: their messages never confirmed and will be redelivered.
    pub keys: u64,
}

/// What [`Store::claim_key`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyClaim {
    /// The key was new (or expired): it is now pending, for this caller.
    Claimed,
    /// A live pending key: another copy of the message is in flight.
    Pending,
    /// A live committed key: the message was processed.
    Committed,
}

impl KeyClaim {
    /// Pending or committed: the caller's copy is a duplicate.
    pub fn is_duplicate(self) -> bool {
        self != KeyClaim::Claimed
    }
}

pub struct Store {
    // Declared before `lock`: the connection closes (and checkpoints) before the lock goes.
    conn: Mutex<Connection>,
    reclaimed: Reclaimed,
    /// The exclusive lock on `<file>.lock`, released when the file handle drops.
    /// The data directory's lock (`open` only), marked at drop.
    lock: Option<File>,
    /// How long `open`'s integrity check took, if it ran.
    checked: Option<Duration>,
}

/// Messages of one buffer claimed as a batch: delete them with [`Store::batch_commit`] once
/// the batch's outputs confirmed, or hand them back with [`Store::batch_release`].
#[derive(Clone, Debug, PartialEq)]
pub struct BatchClaim {
    pub buffer: String,
    pub token: i64,
    /// The buffered messages, oldest first.
    pub messages: Vec<Value>,
}

/// How far a dropped file got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileProgress {
    /// Records handed off, counted from the start of the file.
    pub handed_off: u64,
    /// Every record was handed off.
    pub complete: bool,
}

/// File progress to record with a unit of work.
#[derive(Clone, Debug, PartialEq)]
pub struct FileMark {
    pub pipeline: String,
    /// The file's content key.
    pub key: String,
    pub progress: FileProgress,
    pub now_ms: i64,
}

/// What one message changed in the store while it ran, settled when it is done: all of it
/// with its acknowledgement by [`Store::commit_unit`], or all of it undone by
/// [`Store::release_unit`]. What a crash leaves unsettled, [`Store::open`] undoes.
#[derive(Clone, Debug, Default)]
pub struct Unit {
    /// Dedupe keys claimed pending (`(pipeline, key)`).
    pub keys: Vec<(String, String)>,
    /// Batch claims taken (`BatchClaim::token`).
    pub batch_claims: Vec<i64>,
    /// The file record's progress, for a file-drop message.
    pub file: Option<FileMark>,
    /// Dead letters to write (a message dead-lettered as a whole after its last attempt).
    pub dead_letters: Vec<DeadLetter>,
    /// The topic delivery that carried the message.
    pub ack: Option<Leased>,
    /// `(pipeline, message id)` whose output marks are settled with the message: deleted by
    /// a commit (the message is done), kept by a release (the retry skips what it wrote).
    pub marks: Option<(String, String)>,
    /// The dead letter this message replays: deleted by a commit (the replay delivered the
    /// message, or dead-lettered it again as a new dead letter), kept by a release.
    pub replaces: Option<u64>,
}

impl Unit {
    /// Nothing to settle.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
            && self.batch_claims.is_empty()
            && self.file.is_none()
            && self.dead_letters.is_empty()
            && self.ack.is_none()
            && self.marks.is_none()
            && self.replaces.is_none()
    }
}

impl Store {
    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held dropped its `Transaction`, which rolled back: the
        // connection is consistent, so a poisoned lock is safe to take over.
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// SQLite integers are i64; ids and counts are never negative.
fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use serde_json::json;

    fn file_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("railyard.db")).unwrap();
        (dir, s)
    }

    #[test]
    fn the_store_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Store>();
    }

    #[test]
    fn a_file_store_is_wal_with_full_sync_at_the_latest_schema() {
        let (_d, s) = file_store();
        let conn = s.conn();
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "FULL");
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
    }

    /// The queries the hot paths run use an index: no full scan, no sort of the backlog.
    #[test]
    fn hot_queries_use_indexes() {
        let (_d, s) = file_store();
        let conn = s.conn();
        let plan = |sql: &str| -> String {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let rows = stmt
                .query_map([], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            rows.join("\n")
        };
        let checks = [
            "SELECT d.seq, m.body FROM deliveries d JOIN messages m ON m.seq = d.seq
             WHERE d.sub = 1 AND d.available_at <= 5 ORDER BY d.seq LIMIT 32",
            "SELECT id FROM subscriptions WHERE topic = 't' AND grp = 'g'",
            "SELECT id FROM subscriptions WHERE topic = 't'",
            "DELETE FROM messages WHERE seq = 1 AND NOT EXISTS (SELECT 1 FROM deliveries WHERE seq = 1)",
            "SELECT COUNT(*) FROM deliveries WHERE sub = 1",
            "SELECT id FROM dead_letters WHERE pipeline = 'p' ORDER BY id LIMIT 10",
            "DELETE FROM dedupe WHERE expires_at <= 5",
        ];
        for sql in checks {
            let p = plan(sql);
            assert!(
                !p.contains("TEMP B-TREE") && !p.lines().any(|l| l.starts_with("SCAN")),
                "{sql}\n{p}"
            );
        }
    }

    /// A file written by the first `railyard run` (schema 1) opens with its queue intact:
    /// pending rows, their attempts and lease state, and the sequence counter.
    #[test]
    fn a_version_1_file_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("railyard.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATION_1).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute_batch(
                r#"INSERT INTO subscriptions VALUES ('orders', 'erp'), ('orders', 'audit');
                   INSERT INTO queue (topic, grp, message) VALUES ('orders', 'erp', '{"n":1}');
                   INSERT INTO queue (topic, grp, message, attempt, available_at, lease_token)
                       VALUES ('orders', 'audit', '{"n":1}', 1, 50000, 1);
                   INSERT INTO queue (topic, grp, message) VALUES ('orders', 'erp', '{"n":2}');
                   DELETE FROM queue WHERE seq = 3;
                   INSERT INTO dead_letters (pipeline, pipeline_version, step, error, message, attempts, at_ms)
                       VALUES ('p', 1, 's', '{}', '{"x":1}', 1, 7);
                   INSERT INTO dedupe VALUES ('p', 'k', 1000);"#,
            )
            .unwrap();
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(s.depth("orders", "erp").unwrap(), 1);
        assert_eq!(s.depth("orders", "audit").unwrap(), 1);
        let erp = s.lease("orders", "erp", 10, 1_000, 0).unwrap();
        assert_eq!(erp.len(), 1);
        assert_eq!((erp[0].seq, erp[0].attempt), (1, 1));
        assert_eq!(erp[0].message, json!({"n": 1}));
        // Still leased until 50000, then redelivered as attempt 2.
        assert!(s.lease("orders", "audit", 10, 1_000, 0).unwrap().is_empty());
        let audit = s.lease("orders", "audit", 10, 1_000, 50_000).unwrap();
        assert_eq!((audit[0].seq, audit[0].attempt), (2, 2));
        // Sequence ids carry on after the highest ever used (3, deleted), not reused.
        assert_eq!(s.publish("orders", &json!({"n": 4})).unwrap(), 4);
        assert!(s.ack(&erp[0]).unwrap());
        assert_eq!(s.dead_letters(Some("p"), 10).unwrap()[0].1.at_ms, 7);
        assert_eq!(
            s.claim_key("p", "k", 1_000, 999).unwrap(),
            KeyClaim::Committed
        );
        let conn = s.conn();
        let leftovers: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('queue', 'subscriptions_v1')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(leftovers, 0);
    }

    #[test]
    fn a_file_from_a_newer_railyard_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("railyard.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", 99).unwrap();
        }
        match Store::open(&path) {
            Err(StoreError::NewerSchema { found: 99, .. }) => {}
            Err(e) => panic!("unexpected error: {e}"),
            Ok(_) => panic!("opened a file with schema 99"),
        }
    }

    /// A message is stored once however many groups it fans out to, and deleted when the
    /// last group acks it.
    #[test]
    fn a_message_is_kept_until_every_group_acked_it() {
        let (_d, s) = file_store();
        s.subscribe("t", "a").unwrap();
        s.subscribe("t", "b").unwrap();
        s.publish("t", &json!("x")).unwrap();
        let messages = |s: &Store| -> i64 {
            s.conn()
                .query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(messages(&s), 1);
        let a = s.lease("t", "a", 1, 1_000, 0).unwrap().remove(0);
        assert!(s.ack(&a).unwrap());
        assert_eq!(messages(&s), 1, "group b has not acked yet");
        let b = s.lease("t", "b", 1, 1_000, 0).unwrap().remove(0);
        assert!(s.ack(&b).unwrap());
        assert_eq!(messages(&s), 0);
        // Nobody subscribed: nothing kept.
        s.publish("nobody", &json!(1)).unwrap();
        assert_eq!(messages(&s), 0);
    }

    /// Key and ack transactions skip the sync (a lost one only repeats a message); the
    /// connection is back at FULL after each, for everything else.
    #[test]
    fn relaxed_transactions_leave_the_connection_at_full_sync() {
        let (_d, s) = file_store();
        let sync = |s: &Store| -> i64 {
            s.conn()
                .pragma_query_value(None, "synchronous", |r| r.get(0))
                .unwrap()
        };
        assert_eq!(s.claim_key("p", "k", 1_000, 0).unwrap(), KeyClaim::Claimed);
        assert_eq!(sync(&s), 2);
        let unit = Unit {
            keys: vec![("p".into(), "k".into())],
            ..Unit::default()
        };
        assert!(s.commit_unit(&unit).unwrap());
        assert_eq!(sync(&s), 2);
        s.release_unit(&unit, 0, false).unwrap();
        assert_eq!(sync(&s), 2);
        // A failed transaction resets it too.
        let broken = Unit {
            batch_claims: vec![1],
            ..Unit::default()
        };
        s.conn().execute_batch("DROP TABLE batch_items").unwrap();
        assert!(s.commit_unit(&broken).is_err());
        assert_eq!(sync(&s), 2);
    }

    #[test]
    fn a_poisoned_lock_does_not_break_the_store() {
        let (_d, s) = file_store();
        let s = std::sync::Arc::new(s);
        let s2 = s.clone();
        let _ = std::thread::spawn(move || {
            let mut conn = s2.conn();
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .unwrap();
            tx.execute(
                "INSERT INTO subscriptions (topic, grp) VALUES ('t', 'g')",
                [],
            )
            .unwrap();
            panic!("a bug while holding the lock");
        })
        .join();
        assert!(s.conn.is_poisoned());
        // The half-done transaction rolled back; the store still works.
        assert_eq!(s.depth("t", "g").unwrap(), 0);
        assert!(s.lease("t", "g", 1, 1_000, 0).unwrap().is_empty());
        s.subscribe("t", "g").unwrap();
        s.publish("t", &json!(1)).unwrap();
        assert_eq!(s.depth("t", "g").unwrap(), 1);
    }
}
