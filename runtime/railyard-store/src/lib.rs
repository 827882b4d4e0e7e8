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
pub use async_store::AsyncStore;

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
    _lock: Option<File>,
}

/// Migrations, in order; `PRAGMA user_version` is how many have run. Never edit one that
/// shipped: add the next.
const MIGRATIONS: &[&str] = &[
    MIGRATION_1,
    MIGRATION_2,
    MIGRATION_3,
    MIGRATION_4,
    MIGRATION_5,
];

/// Version 1 (first `railyard run`): one queue row per (message, group), the message text
/// copied into each.
const MIGRATION_1: &str = "
CREATE TABLE IF NOT EXISTS subscriptions (
    topic TEXT NOT NULL,
    grp   TEXT NOT NULL,
    PRIMARY KEY (topic, grp)
);
CREATE TABLE IF NOT EXISTS queue (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    topic        TEXT NOT NULL,
    grp          TEXT NOT NULL,
    message      TEXT NOT NULL,
    attempt      INTEGER NOT NULL DEFAULT 0,
    available_at INTEGER NOT NULL DEFAULT 0,
    lease_token  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS queue_ready ON queue (topic, grp, available_at, seq);
CREATE TABLE IF NOT EXISTS dead_letters (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    pipeline         TEXT NOT NULL,
    pipeline_version INTEGER NOT NULL,
    step             TEXT NOT NULL,
    error            TEXT NOT NULL,
    message          TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    at_ms            INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_pipeline ON dead_letters (pipeline, id);
CREATE TABLE IF NOT EXISTS dedupe (
    pipeline   TEXT NOT NULL,
    key        TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (pipeline, key)
);
CREATE INDEX IF NOT EXISTS dedupe_expiry ON dedupe (expires_at);
";

/// Version 2: a message is stored once with one sequence id (what `publish` returns), and a
/// delivery row per subscribed group. Deliveries are keyed (subscription, seq), so a lease
/// walks the group's deliveries in sequence order through the primary key without sorting the
/// whole backlog. Existing v1 rows become one message each; the sequence counter carries on.
const MIGRATION_2: &str = "
ALTER TABLE subscriptions RENAME TO subscriptions_v1;
CREATE TABLE subscriptions (
    id    INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    grp   TEXT NOT NULL,
    UNIQUE (topic, grp)
);
INSERT INTO subscriptions (topic, grp) SELECT topic, grp FROM subscriptions_v1 ORDER BY rowid;
INSERT OR IGNORE INTO subscriptions (topic, grp) SELECT DISTINCT topic, grp FROM queue;
CREATE TABLE messages (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    body  TEXT NOT NULL
);
CREATE TABLE deliveries (
    sub          INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    attempt      INTEGER NOT NULL DEFAULT 0,
    available_at INTEGER NOT NULL DEFAULT 0,
    lease_token  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sub, seq)
) WITHOUT ROWID;
CREATE INDEX deliveries_by_seq ON deliveries (seq);
INSERT INTO messages (seq, topic, body) SELECT seq, topic, message FROM queue ORDER BY seq;
INSERT INTO deliveries (sub, seq, attempt, available_at, lease_token)
    SELECT s.id, q.seq, q.attempt, q.available_at, q.lease_token
    FROM queue q JOIN subscriptions s ON s.topic = q.topic AND s.grp = q.grp;
DELETE FROM sqlite_sequence WHERE name = 'messages';
INSERT INTO sqlite_sequence (name, seq) SELECT 'messages', seq FROM sqlite_sequence WHERE name = 'queue';
DROP TABLE queue;
DROP TABLE subscriptions_v1;
";

/// Version 3: progress of dropped files (POS batch exports), by pipeline and content key, so a
/// crash mid-file resumes after the last record handed off and a re-sent copy is recognised.
const MIGRATION_3: &str = "
CREATE TABLE files (
    pipeline   TEXT NOT NULL,
    key        TEXT NOT NULL,
    handed_off INTEGER NOT NULL,
    complete   INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (pipeline, key)
) WITHOUT ROWID;
";

/// Version 4: batch buffers. A message waiting for its batch is a row here, so a crash after
/// its source was acknowledged loses nothing. A full batch is *claimed* (a token that expires,
/// like a lease) while its outputs run, then deleted on success or released on failure.
const MIGRATION_4: &str = "
CREATE TABLE batch_items (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    buffer        TEXT NOT NULL,
    message_id    TEXT NOT NULL,
    message       TEXT NOT NULL,
    claim         INTEGER NOT NULL DEFAULT 0,
    claimed_until INTEGER NOT NULL DEFAULT 0,
    UNIQUE (buffer, message_id)
);
CREATE INDEX batch_items_buffer ON batch_items (buffer, seq);
CREATE TABLE batch_claims (
    token INTEGER PRIMARY KEY AUTOINCREMENT
);
";

/// Version 5 (delivery core): dedupe keys can be *pending* (claimed by a message in flight,
/// deleted at open after a crash) as well as committed; a delivery knows whether it is
/// `leased` (reclaimed at open) or waiting for a nack's retry time (left alone); a dead letter
/// keeps the message as it entered the pipeline; `health` is the row `check_writable` writes.
/// Existing keys are committed; existing deliveries count as not leased (their leases run
/// out as before); existing dead letters have no original.
const MIGRATION_5: &str = "
ALTER TABLE dedupe ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
CREATE INDEX dedupe_pending ON dedupe (pipeline, key) WHERE pending = 1;
ALTER TABLE deliveries ADD COLUMN leased INTEGER NOT NULL DEFAULT 0;
CREATE INDEX deliveries_leased ON deliveries (sub, seq) WHERE leased = 1;
ALTER TABLE dead_letters ADD COLUMN original TEXT;
CREATE TABLE health (
    id    INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL
);
";

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
}

impl Unit {
    /// Nothing to settle.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
            && self.batch_claims.is_empty()
            && self.file.is_none()
            && self.dead_letters.is_empty()
            && self.ack.is_none()
    }
}

impl Store {
    /// Opens (creating) the store file at `path` for a runtime, creating its parent
    /// directories: takes the exclusive lock on `<path>.lock` (held while the `Store` lives;
    /// `StoreError::Locked` if another process or another `Store` of this process holds it),
    /// checks the file (`StoreError::Corrupt`), brings its schema up to date and reclaims
    /// what the previous holder left in flight ([`Store::reclaimed`]).
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        create_parent(path)?;
        let lock = lock_file(path)?;
        let mut store =
            Store::init(open_checked(path)?, Some(lock)).map_err(|e| corrupt_at(path, e))?;
        let mut conn = store.conn();
        let reclaimed = reclaim(&mut conn).map_err(|e| corrupt_at(path, e))?;
        drop(conn);
        store.reclaimed = reclaimed;
        Ok(store)
    }

    /// Opens the store file at `path` without its lock and without reclaiming anything: for
    /// tools and tests that look into (or seed) a data directory, possibly while a
    /// `railyard run` holds it. SQLite's own locking keeps concurrent transactions safe; what
    /// this skips is the proof that nobody else is running.
    pub fn open_unlocked(path: &Path) -> Result<Store, StoreError> {
        create_parent(path)?;
        let conn = Connection::open(path).map_err(|e| corrupt_at(path, e.into()))?;
        Store::init(conn, None).map_err(|e| corrupt_at(path, e))
    }

    /// An in-memory store, for tests of other crates. Nothing to lock or reclaim.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Store::init(Connection::open_in_memory()?, None)
    }

    fn init(mut conn: Connection, lock: Option<File>) -> Result<Store, StoreError> {
        // Another process (an admin command, a test) may hold the write lock.
        conn.busy_timeout(Duration::from_secs(10))?;
        // WAL lets readers work during writes; FULL syncs the WAL at every commit, so a
        // committed write survives a power loss, not only a process crash.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        migrate(&mut conn)?;
        Ok(Store {
            conn: Mutex::new(conn),
            reclaimed: Reclaimed::default(),
            _lock: lock,
        })
    }

    /// What `open` reclaimed from the previous holder of the file (all zero for
    /// `open_unlocked` and `open_in_memory`).
    pub fn reclaimed(&self) -> Reclaimed {
        self.reclaimed
    }

    /// A tiny real write transaction (one row of `health`, synced like every commit): `Ok`
    /// while the store can be written, the error (see [`StoreError::is_full`]) when not.
    /// For a readiness probe.
    pub fn check_writable(&self, now_ms: i64) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached(
            "INSERT INTO health (id, at_ms) VALUES (1, ?1)
             ON CONFLICT (id) DO UPDATE SET at_ms = excluded.at_ms",
        )?
        .execute(params![now_ms])?;
        tx.commit()?;
        Ok(())
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held dropped its `Transaction`, which rolled back: the
        // connection is consistent, so a poisoned lock is safe to take over.
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers consumer group `group` on `topic` (idempotent). A group receives what is
    /// published after it subscribed, and nothing published before.
    pub fn subscribe(&self, topic: &str, group: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT OR IGNORE INTO subscriptions (topic, grp) VALUES (?1, ?2)",
            params![topic, group],
        )?;
        Ok(())
    }

    /// Publishes `message` to every group subscribed to `topic`, in one transaction; returns
    /// its sequence id after the commit. Sequence ids grow and are never reused. With no
    /// group subscribed, nothing is kept (the id is still consumed).
    pub fn publish(&self, topic: &str, message: &Value) -> Result<u64, StoreError> {
        let text = serde_json::to_string(message)?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached("INSERT INTO messages (topic, body) VALUES (?1, ?2)")?
            .execute(params![topic, text])?;
        let seq = tx.last_insert_rowid();
        let fanned = tx
            .prepare_cached(
                "INSERT INTO deliveries (sub, seq) SELECT id, ?2 FROM subscriptions WHERE topic = ?1",
            )?
            .execute(params![topic, seq])?;
        if fanned == 0 {
            tx.execute("DELETE FROM messages WHERE seq = ?1", params![seq])?;
        }
        tx.commit()?;
        Ok(to_u64(seq))
    }

    /// Leases up to `max` ready deliveries of (`topic`, `group`), oldest sequence first, until
    /// `now_ms + lease_for_ms`. Ready: never leased, nacked with a retry time that has come,
    /// or leased before and that lease expired. A group that never subscribed has nothing.
    pub fn lease(
        &self,
        topic: &str,
        group: &str,
        max: usize,
        lease_for_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<Leased>, StoreError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.conn();
        // IMMEDIATE takes the write lock before reading, so no other connection can pick the
        // same rows between our SELECT and UPDATE.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(sub) = subscription(&tx, topic, group)? else {
            return Ok(Vec::new());
        };
        let until = now_ms.saturating_add(lease_for_ms);
        let picked: Vec<(i64, String)> = tx
            .prepare_cached(
                "SELECT d.seq, m.body FROM deliveries d JOIN messages m ON m.seq = d.seq
                 WHERE d.sub = ?1 AND d.available_at <= ?2
                 ORDER BY d.seq LIMIT ?3",
            )?
            .query_map(
                params![sub, now_ms, i64::try_from(max).unwrap_or(i64::MAX)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(picked.len());
        {
            let mut take = tx.prepare_cached(
                "UPDATE deliveries
                 SET attempt = attempt + 1, available_at = ?3, lease_token = lease_token + 1,
                     leased = 1
                 WHERE sub = ?1 AND seq = ?2
                 RETURNING attempt, lease_token",
            )?;
            for (seq, body) in picked {
                let (attempt, lease_token): (i64, i64) =
                    take.query_row(params![sub, seq, until], |r| Ok((r.get(0)?, r.get(1)?)))?;
                out.push(Leased {
                    topic: topic.to_string(),
                    group: group.to_string(),
                    seq: to_u64(seq),
                    attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
                    message: serde_json::from_str(&body)?,
                    sub,
                    lease_token,
                });
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// Acknowledges a delivery: it is deleted for this group. Returns false, and changes
    /// nothing, when `delivery` is no longer the current lease (it expired and was leased
    /// again, or was nacked or acked already). A lease that expired but was not taken over
    /// is still current: its ack counts.
    pub fn ack(&self, delivery: &Leased) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let acked = ack_in(&tx, delivery)?;
        tx.commit()?;
        Ok(acked)
    }

    /// Gives a delivery back: it is ready again at `retry_at_ms` (its next lease counts one
    /// more attempt). Returns false, and changes nothing, when `delivery` is no longer the
    /// current lease. After a nack the caller's lease is over: acking it returns false.
    pub fn nack(&self, delivery: &Leased, retry_at_ms: i64) -> Result<bool, StoreError> {
        self.requeue(delivery, retry_at_ms, true)
    }

    /// Like [`Store::nack`], but the attempt does not count: the delivery could not be tried
    /// at all (its destination, a broker, is down), so an outage never exhausts its retries.
    pub fn release(&self, delivery: &Leased, retry_at_ms: i64) -> Result<bool, StoreError> {
        self.requeue(delivery, retry_at_ms, false)
    }

    /// Makes a leased delivery ready again at `retry_at_ms`, if the lease is still current.
    fn requeue(
        &self,
        delivery: &Leased,
        retry_at_ms: i64,
        counts: bool,
    ) -> Result<bool, StoreError> {
        let conn = self.conn();
        requeue_in(&conn, delivery, retry_at_ms, counts)
    }

    /// Deliveries not yet acked for (`topic`, `group`): ready, leased or waiting to retry.
    pub fn depth(&self, topic: &str, group: &str) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn()
            .prepare_cached(
                "SELECT COUNT(*) FROM deliveries
             WHERE sub = (SELECT id FROM subscriptions WHERE topic = ?1 AND grp = ?2)",
            )?
            .query_row(params![topic, group], |r| r.get(0))?;
        Ok(to_u64(n))
    }

    /// Stores a dead letter; returns its id (for `take_dead_letter`).
    pub fn dead_letter(&self, entry: &DeadLetter) -> Result<u64, StoreError> {
        dead_letter_in(&self.conn(), entry)
    }

    /// Dead letters, oldest first, of one pipeline or of all, at most `limit`.
    pub fn dead_letters(
        &self,
        pipeline: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(u64, DeadLetter)>, StoreError> {
        const COLUMNS: &str = "SELECT id, pipeline, pipeline_version, step, error, message, attempts, at_ms, original FROM dead_letters";
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let conn = self.conn();
        let rows = match pipeline {
            Some(p) => conn
                .prepare_cached(&format!(
                    "{COLUMNS} WHERE pipeline = ?1 ORDER BY id LIMIT ?2"
                ))?
                .query_map(params![p, limit], DeadLetterRow::read)?
                .collect::<Result<Vec<_>, _>>()?,
            None => conn
                .prepare_cached(&format!("{COLUMNS} ORDER BY id LIMIT ?1"))?
                .query_map(params![limit], DeadLetterRow::read)?
                .collect::<Result<Vec<_>, _>>()?,
        };
        rows.into_iter().map(DeadLetterRow::parse).collect()
    }

    /// Removes and returns one dead letter (for replay); `None` if there is no such id (never
    /// was, or already taken).
    pub fn take_dead_letter(&self, id: u64) -> Result<Option<DeadLetter>, StoreError> {
        let row = self
            .conn()
            .query_row(
                "DELETE FROM dead_letters WHERE id = ?1
                 RETURNING id, pipeline, pipeline_version, step, error, message, attempts, at_ms, original",
                params![to_i64(id)],
                DeadLetterRow::read,
            )
            .optional()?;
        Ok(row.map(DeadLetterRow::parse).transpose()?.map(|(_, dl)| dl))
    }

    /// Whether `key` was recorded for `pipeline` and has not expired (it expires `ttl_ms`
    /// after it was recorded; seeing it again does not extend it). If not, records it, in the
    /// same statement: two callers racing on one key get one `false` and one `true`.
    pub fn seen(
        &self,
        pipeline: &str,
        key: &str,
        ttl_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let recorded = self
            .conn()
            .prepare_cached(
                "INSERT INTO dedupe (pipeline, key, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (pipeline, key) DO UPDATE SET expires_at = excluded.expires_at,
                     pending = 0
                 WHERE dedupe.expires_at <= ?4",
            )?
            .execute(params![
                pipeline,
                key,
                now_ms.saturating_add(ttl_ms),
                now_ms
            ])?;
        Ok(recorded == 0)
    }

    /// Claims dedupe `key` of `pipeline` for a message in flight: a new (or expired) key is
    /// recorded as *pending* and `Claimed`; a live key answers `Pending` (another copy of the
    /// message is in flight) or `Committed` (the message was processed). Expiry is `ttl_ms`
    /// after the claim. Two callers racing on one key get one `Claimed`. A pending key is
    /// settled by [`Store::commit_unit`] (committed) or [`Store::release_unit`] (deleted); a
    /// crash leaves it pending, and the next [`Store::open`] deletes it.
    pub fn claim_key(
        &self,
        pipeline: &str,
        key: &str,
        ttl_ms: i64,
        now_ms: i64,
    ) -> Result<KeyClaim, StoreError> {
        let conn = self.conn();
        let _relaxed = Relaxed::on(&conn, true)?;
        // Unchecked: `_relaxed` holds `&conn` too; the mutex guarantees one transaction.
        let tx = Transaction::new_unchecked(&conn, TransactionBehavior::Immediate)?;
        let claimed = tx
            .prepare_cached(
                "INSERT INTO dedupe (pipeline, key, expires_at, pending) VALUES (?1, ?2, ?3, 1)
                 ON CONFLICT (pipeline, key) DO UPDATE SET expires_at = excluded.expires_at,
                     pending = 1
                 WHERE dedupe.expires_at <= ?4",
            )?
            .execute(params![
                pipeline,
                key,
                now_ms.saturating_add(ttl_ms),
                now_ms
            ])?;
        let found = if claimed == 1 {
            KeyClaim::Claimed
        } else {
            let pending: i64 = tx
                .prepare_cached("SELECT pending FROM dedupe WHERE pipeline = ?1 AND key = ?2")?
                .query_row(params![pipeline, key], |r| r.get(0))?;
            if pending == 1 {
                KeyClaim::Pending
            } else {
                KeyClaim::Committed
            }
        };
        tx.commit()?;
        Ok(found)
    }

    /// Settles a message that is done (its outputs confirmed, or it was dead-lettered), in
    /// one transaction: its pending dedupe keys become committed, the batches it claimed are
    /// deleted, its file progress is recorded and its delivery acked. Returns whether the ack
    /// was current (always true without one): false when the lease had been taken over, and
    /// then nothing else changed either, since the new holder owns the message now.
    pub fn commit_unit(&self, unit: &Unit) -> Result<bool, StoreError> {
        let conn = self.conn();
        let _relaxed = Relaxed::on(&conn, unit.dead_letters.is_empty())?;
        // Unchecked: `_relaxed` holds `&conn` too; the mutex guarantees one transaction.
        let tx = Transaction::new_unchecked(&conn, TransactionBehavior::Immediate)?;
        if let Some(delivery) = &unit.ack
            && !ack_in(&tx, delivery)?
        {
            return Ok(false);
        }
        {
            let mut commit = tx.prepare_cached(
                "UPDATE dedupe SET pending = 0 WHERE pipeline = ?1 AND key = ?2 AND pending = 1",
            )?;
            for (pipeline, key) in &unit.keys {
                commit.execute(params![pipeline, key])?;
            }
        }
        for token in &unit.batch_claims {
            tx.prepare_cached("DELETE FROM batch_items WHERE claim = ?1")?
                .execute(params![token])?;
            tx.prepare_cached("DELETE FROM batch_claims WHERE token = ?1")?
                .execute(params![token])?;
        }
        if let Some(mark) = &unit.file {
            set_file_progress_in(&tx, mark)?;
        }
        for entry in &unit.dead_letters {
            dead_letter_in(&tx, entry)?;
        }
        tx.commit()?;
        Ok(true)
    }

    /// Undoes a message that will be tried again, in one transaction: its pending dedupe keys
    /// are deleted (so the retry is not taken for a duplicate of itself), the batches it
    /// claimed wait in their buffers again, and its delivery, if any, is ready again at
    /// `retry_at_ms` (`counts`: the attempt counts, as for [`Store::nack`]; else as for
    /// [`Store::release`]). File progress is not recorded.
    pub fn release_unit(
        &self,
        unit: &Unit,
        retry_at_ms: i64,
        counts: bool,
    ) -> Result<(), StoreError> {
        let conn = self.conn();
        let _relaxed = Relaxed::on(&conn, true)?;
        // Unchecked: `_relaxed` holds `&conn` too; the mutex guarantees one transaction.
        let tx = Transaction::new_unchecked(&conn, TransactionBehavior::Immediate)?;
        {
            let mut release = tx.prepare_cached(
                "DELETE FROM dedupe WHERE pipeline = ?1 AND key = ?2 AND pending = 1",
            )?;
            for (pipeline, key) in &unit.keys {
                release.execute(params![pipeline, key])?;
            }
        }
        for token in &unit.batch_claims {
            tx.prepare_cached(
                "UPDATE batch_items SET claim = 0, claimed_until = 0 WHERE claim = ?1",
            )?
            .execute(params![token])?;
            tx.prepare_cached("DELETE FROM batch_claims WHERE token = ?1")?
                .execute(params![token])?;
        }
        if let Some(delivery) = &unit.ack {
            requeue_in(&tx, delivery, retry_at_ms, counts)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Forgets a dedupe key (whether or not it expired); returns whether it was there. For a
    /// caller that recorded a key with `seen` and then failed to deliver the message: without
    /// this, the redelivery would be taken for a duplicate.
    pub fn forget(&self, pipeline: &str, key: &str) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "DELETE FROM dedupe WHERE pipeline = ?1 AND key = ?2",
            params![pipeline, key],
        )?;
        Ok(n == 1)
    }

    /// Progress of the file with content `key` in `pipeline`, if it was seen before.
    pub fn file_progress(
        &self,
        pipeline: &str,
        key: &str,
    ) -> Result<Option<FileProgress>, StoreError> {
        let row = self
            .conn()
            .query_row(
                "SELECT handed_off, complete FROM files WHERE pipeline = ?1 AND key = ?2",
                params![pipeline, key],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
            )
            .optional()?;
        Ok(row.map(|(n, c)| FileProgress {
            handed_off: n as u64,
            complete: c != 0,
        }))
    }

    /// Records that the first `handed_off` records of the file were handed off.
    pub fn set_file_progress(
        &self,
        pipeline: &str,
        key: &str,
        progress: FileProgress,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let conn = self.conn();
        set_file_progress_in(
            &conn,
            &FileMark {
                pipeline: pipeline.to_string(),
                key: key.to_string(),
                progress,
                now_ms,
            },
        )
    }

    /// Buffers `message` (known by `message_id`: adding the same id twice keeps one) in
    /// `buffer`. With `take`, once that many unclaimed messages wait there, claims the oldest
    /// `take` of them for `claim_for_ms` and returns them.
    pub fn batch_add(
        &self,
        buffer: &str,
        message_id: &str,
        message: &Value,
        take: Option<u32>,
        now_ms: i64,
        claim_for_ms: i64,
    ) -> Result<Option<BatchClaim>, StoreError> {
        let text = serde_json::to_string(message)?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached(
            "INSERT OR IGNORE INTO batch_items (buffer, message_id, message) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![buffer, message_id, text])?;
        let claim = match take {
            Some(n) if n > 0 => {
                let waiting: i64 = tx
                    .prepare_cached(
                        "SELECT COUNT(*) FROM batch_items
                         WHERE buffer = ?1 AND (claim = 0 OR claimed_until <= ?2)",
                    )?
                    .query_row(params![buffer, now_ms], |r| r.get(0))?;
                if waiting >= i64::from(n) {
                    claim_batch(&tx, buffer, Some(n), now_ms, claim_for_ms)?
                } else {
                    None
                }
            }
            _ => None,
        };
        tx.commit()?;
        Ok(claim)
    }

    /// Claims everything unclaimed in every buffer whose name starts with `prefix` (a timed
    /// flush, or the end of input), one claim per buffer.
    pub fn batch_claim_all(
        &self,
        prefix: &str,
        now_ms: i64,
        claim_for_ms: i64,
    ) -> Result<Vec<BatchClaim>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let buffers: Vec<String> = tx
            .prepare_cached(
                "SELECT DISTINCT buffer FROM batch_items
                 WHERE substr(buffer, 1, length(?1)) = ?1 AND (claim = 0 OR claimed_until <= ?2)
                 ORDER BY buffer",
            )?
            .query_map(params![prefix, now_ms], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::new();
        for b in buffers {
            if let Some(c) = claim_batch(&tx, &b, None, now_ms, claim_for_ms)? {
                out.push(c);
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// The batch went out: deletes its messages. False when the claim is no longer current
    /// (it expired and someone else took the messages).
    pub fn batch_commit(&self, token: i64) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute("DELETE FROM batch_items WHERE claim = ?1", params![token])?;
        tx.execute("DELETE FROM batch_claims WHERE token = ?1", params![token])?;
        tx.commit()?;
        Ok(n > 0)
    }

    /// The batch's outputs failed: its messages wait in the buffer again.
    pub fn batch_release(&self, token: i64) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute(
            "UPDATE batch_items SET claim = 0, claimed_until = 0 WHERE claim = ?1",
            params![token],
        )?;
        tx.execute("DELETE FROM batch_claims WHERE token = ?1", params![token])?;
        tx.commit()?;
        Ok(n > 0)
    }

    /// Messages in `buffer`, claimed or not.
    pub fn batch_depth(&self, buffer: &str) -> Result<u64, StoreError> {
        let n: i64 = self.conn().query_row(
            "SELECT COUNT(*) FROM batch_items WHERE buffer = ?1",
            params![buffer],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// Deletes expired dedupe keys; returns how many.
    pub fn purge_expired(&self, now_ms: i64) -> Result<u64, StoreError> {
        let n = self
            .conn()
            .execute("DELETE FROM dedupe WHERE expires_at <= ?1", params![now_ms])?;
        Ok(n as u64)
    }
}

/// `synchronous = NORMAL` for one transaction, `FULL` again when dropped. In WAL mode a
/// NORMAL commit survives a crash of the process (the write is in the OS's cache) and only a
/// power loss or OS crash can undo it; the next FULL commit's sync makes it durable too. It is
/// used where undoing the commit can only cause a repeat, never a loss: claiming or settling
/// dedupe keys, acks, batch and file progress. A unit that writes dead letters (the only copy
/// of a message) commits with FULL.
struct Relaxed<'c> {
    conn: Option<&'c Connection>,
}

impl<'c> Relaxed<'c> {
    fn on(conn: &'c Connection, relax: bool) -> Result<Relaxed<'c>, StoreError> {
        if !relax {
            return Ok(Relaxed { conn: None });
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(Relaxed { conn: Some(conn) })
    }
}

impl Drop for Relaxed<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn {
            // If this fails the connection stays NORMAL: a later power loss could then repeat
            // messages, never lose an acknowledged one... except a dead letter, so try hard.
            if conn.pragma_update(None, "synchronous", "FULL").is_err() {
                let _ = conn.execute_batch("PRAGMA synchronous = FULL");
            }
        }
    }
}

/// Creates the parent directories of the store file.
fn create_parent(path: &Path) -> Result<(), StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Create {
            path: dir.display().to_string(),
            source,
        })?;
    }
    Ok(())
}

/// `<path>.lock`, next to the store file.
fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the exclusive OS lock on `<path>.lock` and writes this process's pid into it. The
/// OS releases the lock when the process dies, however it dies: holding it proves that no
/// previous holder is still running.
fn lock_file(path: &Path) -> Result<File, StoreError> {
    let lock = lock_path(path);
    let create = |source| StoreError::Create {
        path: lock.display().to_string(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock)
        .map_err(create)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(StoreError::Locked {
                path: path.display().to_string(),
                pid: text.trim().parse().ok(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(create(e)),
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| write!(file, "{}", std::process::id()))
        .and_then(|()| file.flush())
        .map_err(create)?;
    Ok(file)
}

/// Opens the file and runs SQLite's `quick_check` on it (pages, records, indexes: the damage
/// an overwritten page does), before anything is written.
fn open_checked(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(|e| corrupt_at(path, e.into()))?;
    let fresh = std::fs::metadata(path)
        .map(|m| m.len() == 0)
        .unwrap_or(true);
    if !fresh {
        let rows: Vec<String> = conn
            .prepare("PRAGMA quick_check(5)")
            .and_then(|mut s| {
                s.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<Result<_, _>>()
            })
            .map_err(|e| corrupt_at(path, e.into()))?;
        if rows.len() != 1 || rows[0] != "ok" {
            return Err(StoreError::Corrupt {
                path: path.display().to_string(),
                detail: rows.join("; "),
            });
        }
    }
    Ok(conn)
}

/// A corruption error of the file at `path` becomes [`StoreError::Corrupt`] naming it.
fn corrupt_at(path: &Path, e: StoreError) -> StoreError {
    if e.is_corrupt() && !matches!(e, StoreError::Corrupt { .. }) {
        StoreError::Corrupt {
            path: path.display().to_string(),
            detail: e.to_string(),
        }
    } else {
        e
    }
}

/// Takes back what the previous holder of the file left in flight (it is dead: we hold the
/// lock). In one transaction.
fn reclaim(conn: &mut Connection) -> Result<Reclaimed, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // `available_at = 0`: ready at once (the store never reads the clock; 0 is in the past).
    let deliveries = tx.execute(
        "UPDATE deliveries SET leased = 0, available_at = 0, lease_token = lease_token + 1
         WHERE leased = 1",
        [],
    )?;
    let batches = tx.execute("DELETE FROM batch_claims", [])?;
    tx.execute(
        "UPDATE batch_items SET claim = 0, claimed_until = 0 WHERE claim <> 0",
        [],
    )?;
    let keys = tx.execute("DELETE FROM dedupe WHERE pending = 1", [])?;
    tx.commit()?;
    Ok(Reclaimed {
        deliveries: deliveries as u64,
        batches: batches as u64,
        keys: keys as u64,
    })
}

/// Stores a dead letter; returns its id.
fn dead_letter_in(conn: &Connection, entry: &DeadLetter) -> Result<u64, StoreError> {
    let error = serde_json::to_string(&entry.error)?;
    let message = serde_json::to_string(&entry.message)?;
    let original = entry
        .original
        .as_ref()
        .map(serde_json::to_string)
        .transpose()?;
    let id: i64 = conn.prepare_cached(
        "INSERT INTO dead_letters (pipeline, pipeline_version, step, error, message, attempts, at_ms, original)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
    )?
    .query_row(
        params![
            entry.pipeline,
            entry.pipeline_version,
            entry.step,
            error,
            message,
            entry.attempts,
            entry.at_ms,
            original
        ],
        |r| r.get(0),
    )?;
    Ok(to_u64(id))
}

/// Deletes a delivery for its group if `delivery` is its current lease; the last group done
/// with a message deletes the message.
fn ack_in(tx: &Transaction<'_>, delivery: &Leased) -> Result<bool, StoreError> {
    let seq = to_i64(delivery.seq);
    let deleted = tx
        .prepare_cached("DELETE FROM deliveries WHERE sub = ?1 AND seq = ?2 AND lease_token = ?3")?
        .execute(params![delivery.sub, seq, delivery.lease_token])?;
    if deleted == 1 {
        tx.prepare_cached(
            "DELETE FROM messages WHERE seq = ?1
             AND NOT EXISTS (SELECT 1 FROM deliveries WHERE seq = ?1)",
        )?
        .execute(params![seq])?;
    }
    Ok(deleted == 1)
}

/// Makes a leased delivery ready again at `retry_at_ms` if `delivery` is its current lease;
/// `counts` false gives its attempt back.
fn requeue_in(
    conn: &Connection,
    delivery: &Leased,
    retry_at_ms: i64,
    counts: bool,
) -> Result<bool, StoreError> {
    let sql = if counts {
        "UPDATE deliveries SET available_at = ?4, lease_token = lease_token + 1, leased = 0
         WHERE sub = ?1 AND seq = ?2 AND lease_token = ?3"
    } else {
        "UPDATE deliveries
         SET available_at = ?4, lease_token = lease_token + 1, leased = 0,
             attempt = MAX(attempt - 1, 0)
         WHERE sub = ?1 AND seq = ?2 AND lease_token = ?3"
    };
    let n = conn.prepare_cached(sql)?.execute(params![
        delivery.sub,
        to_i64(delivery.seq),
        delivery.lease_token,
        retry_at_ms
    ])?;
    Ok(n == 1)
}

fn set_file_progress_in(conn: &Connection, mark: &FileMark) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO files (pipeline, key, handed_off, complete, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (pipeline, key) DO UPDATE SET handed_off = excluded.handed_off,
             complete = excluded.complete, updated_ms = excluded.updated_ms",
    )?
    .execute(params![
        mark.pipeline,
        mark.key,
        to_i64(mark.progress.handed_off),
        i64::from(mark.progress.complete),
        mark.now_ms
    ])?;
    Ok(())
}

/// Runs the migrations the file has not had, each in its own transaction with its version.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let supported = MIGRATIONS.len() as i64;
    loop {
        // IMMEDIATE: two processes opening a fresh file at once migrate it once.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > supported {
            return Err(StoreError::NewerSchema {
                found: version,
                supported,
            });
        }
        let Some(sql) = usize::try_from(version)
            .ok()
            .and_then(|v| MIGRATIONS.get(v))
        else {
            return Ok(());
        };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
}

/// Claims the oldest unclaimed (or expired-claim) messages of `buffer`: `take` of them, or all.
fn claim_batch(
    tx: &Transaction<'_>,
    buffer: &str,
    take: Option<u32>,
    now_ms: i64,
    claim_for_ms: i64,
) -> Result<Option<BatchClaim>, StoreError> {
    tx.prepare_cached("INSERT INTO batch_claims DEFAULT VALUES")?
        .execute([])?;
    let token = tx.last_insert_rowid();
    let limit = take.map_or(-1, i64::from);
    let rows: Vec<(i64, String)> = tx
        .prepare_cached(
            "SELECT seq, message FROM batch_items
             WHERE buffer = ?1 AND (claim = 0 OR claimed_until <= ?2)
             ORDER BY seq LIMIT ?3",
        )?
        .query_map(params![buffer, now_ms, limit], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    if rows.is_empty() {
        tx.execute("DELETE FROM batch_claims WHERE token = ?1", params![token])?;
        return Ok(None);
    }
    let until = now_ms.saturating_add(claim_for_ms);
    let mut claim =
        tx.prepare_cached("UPDATE batch_items SET claim = ?2, claimed_until = ?3 WHERE seq = ?1")?;
    let mut messages = Vec::with_capacity(rows.len());
    for (seq, text) in rows {
        claim.execute(params![seq, token, until])?;
        messages.push(serde_json::from_str(&text)?);
    }
    Ok(Some(BatchClaim {
        buffer: buffer.to_string(),
        token,
        messages,
    }))
}

fn subscription(tx: &Transaction<'_>, topic: &str, group: &str) -> Result<Option<i64>, StoreError> {
    Ok(tx
        .prepare_cached("SELECT id FROM subscriptions WHERE topic = ?1 AND grp = ?2")?
        .query_row(params![topic, group], |r| r.get(0))
        .optional()?)
}

/// SQLite integers are i64; ids and counts are never negative.
fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A dead-letter row as read, JSON columns still text (parsed outside the row callback so a
/// bad column is a `StoreError::Json`, not a SQLite error).
struct DeadLetterRow {
    id: i64,
    pipeline: String,
    pipeline_version: u32,
    step: String,
    error: String,
    message: String,
    attempts: u32,
    at_ms: i64,
    original: Option<String>,
}

impl DeadLetterRow {
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeadLetterRow> {
        Ok(DeadLetterRow {
            id: r.get(0)?,
            pipeline: r.get(1)?,
            pipeline_version: r.get(2)?,
            step: r.get(3)?,
            error: r.get(4)?,
            message: r.get(5)?,
            attempts: r.get(6)?,
            at_ms: r.get(7)?,
            original: r.get(8)?,
        })
    }

    fn parse(self) -> Result<(u64, DeadLetter), StoreError> {
        Ok((
            to_u64(self.id),
            DeadLetter {
                pipeline: self.pipeline,
                pipeline_version: self.pipeline_version,
                step: self.step,
                error: serde_json::from_str(&self.error)?,
                message: serde_json::from_str(&self.message)?,
                original: self
                    .original
                    .as_deref()
                    .map(serde_json::from_str)
                    .transpose()?,
                attempts: self.attempts,
                at_ms: self.at_ms,
            },
        ))
    }
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
        assert!(s.seen("p", "k", 1_000, 999).unwrap());
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
