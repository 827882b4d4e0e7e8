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
//! # Clock
//!
//! The store never reads the clock: `now_ms` is passed in (leases, retries, dedupe expiry).

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde_json::Value;

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
    pub message: Value,
    pub attempts: u32,
    pub at_ms: i64,
}

pub struct Store {
    conn: Mutex<Connection>,
}

/// Migrations, in order; `PRAGMA user_version` is how many have run. Never edit one that
/// shipped: add the next.
const MIGRATIONS: &[&str] = &[MIGRATION_1, MIGRATION_2, MIGRATION_3, MIGRATION_4];

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

impl Store {
    /// Opens (creating) the store file at `path`, creating its parent directories, and
    /// brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Create {
                path: dir.display().to_string(),
                source,
            })?;
        }
        Store::init(Connection::open(path)?)
    }

    /// An in-memory store, for tests of other crates.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Store::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Store, StoreError> {
        // Another process (a second `railyard run`, an admin command) may hold the write lock.
        conn.busy_timeout(Duration::from_secs(10))?;
        // WAL lets readers work during writes; FULL syncs the WAL at every commit, so a
        // committed write survives a power loss, not only a process crash.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        migrate(&mut conn)?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
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
                 SET attempt = attempt + 1, available_at = ?3, lease_token = lease_token + 1
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
        let seq = to_i64(delivery.seq);
        let deleted = tx
            .prepare_cached(
                "DELETE FROM deliveries WHERE sub = ?1 AND seq = ?2 AND lease_token = ?3",
            )?
            .execute(params![delivery.sub, seq, delivery.lease_token])?;
        if deleted == 1 {
            // The last group done with a message deletes it.
            tx.prepare_cached(
                "DELETE FROM messages WHERE seq = ?1
                 AND NOT EXISTS (SELECT 1 FROM deliveries WHERE seq = ?1)",
            )?
            .execute(params![seq])?;
        }
        tx.commit()?;
        Ok(deleted == 1)
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
        let sql = if counts {
            "UPDATE deliveries SET available_at = ?4, lease_token = lease_token + 1
             WHERE sub = ?1 AND seq = ?2 AND lease_token = ?3"
        } else {
            "UPDATE deliveries
             SET available_at = ?4, lease_token = lease_token + 1, attempt = MAX(attempt - 1, 0)
             WHERE sub = ?1 AND seq = ?2 AND lease_token = ?3"
        };
        let n = self.conn().prepare_cached(sql)?.execute(params![
            delivery.sub,
            to_i64(delivery.seq),
            delivery.lease_token,
            retry_at_ms
        ])?;
        Ok(n == 1)
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
        let error = serde_json::to_string(&entry.error)?;
        let message = serde_json::to_string(&entry.message)?;
        let id: i64 = self.conn().query_row(
            "INSERT INTO dead_letters (pipeline, pipeline_version, step, error, message, attempts, at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
            params![
                entry.pipeline,
                entry.pipeline_version,
                entry.step,
                error,
                message,
                entry.attempts,
                entry.at_ms
            ],
            |r| r.get(0),
        )?;
        Ok(to_u64(id))
    }

    /// Dead letters, oldest first, of one pipeline or of all, at most `limit`.
    pub fn dead_letters(
        &self,
        pipeline: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(u64, DeadLetter)>, StoreError> {
        const COLUMNS: &str = "SELECT id, pipeline, pipeline_version, step, error, message, attempts, at_ms FROM dead_letters";
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
                 RETURNING id, pipeline, pipeline_version, step, error, message, attempts, at_ms",
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
                 ON CONFLICT (pipeline, key) DO UPDATE SET expires_at = excluded.expires_at
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
        self.conn().execute(
            "INSERT INTO files (pipeline, key, handed_off, complete, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (pipeline, key) DO UPDATE SET handed_off = excluded.handed_off,
                 complete = excluded.complete, updated_ms = excluded.updated_ms",
            params![pipeline, key, progress.handed_off as i64, progress.complete as i64, now_ms],
        )?;
        Ok(())
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
