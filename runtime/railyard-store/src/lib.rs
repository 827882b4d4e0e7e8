//! The embedded store: one SQLite file (WAL, `synchronous=FULL`) holding the durable topic
//! queues between pipelines, the dead letters and the dedupe keys.
//!
//! Synchronous on purpose: the runtime calls it from `spawn_blocking`. Every write returns
//! after its transaction committed, which is what "durably handed off" means for a webhook's
//! 202 and for a topic consumer's ack.
//!
//! Queues: a topic fans out to consumer groups. `subscribe(topic, group)` registers a group;
//! `publish` writes one row per subscribed group in one transaction; `lease` hands rows of a
//! group to one consumer for a while (other leases skip them); `ack` deletes, `nack` makes
//! ready again later, and an expired lease is simply leasable again with `attempt + 1`.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};
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
    #[error("store: the connection lock was poisoned by a panic")]
    Poisoned,
}

/// A leased queue row.
#[derive(Clone, Debug, PartialEq)]
pub struct Leased {
    pub topic: String,
    pub group: String,
    pub seq: u64,
    pub attempt: u32,
    pub message: Value,
    lease_token: i64,
}

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

const SCHEMA_VERSION: i64 = 1;

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

impl Store {
    /// Opens (creating) the store file at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Create {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let conn = Connection::open(path)?;
        Store::init(conn)
    }

    /// An in-memory store, for tests of other crates.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Store::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Store, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // WAL lets readers work during writes; FULL makes a committed write survive power loss.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version < SCHEMA_VERSION {
            conn.execute_batch(MIGRATION_1)?;
            conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.conn.lock().map_err(|_| StoreError::Poisoned)
    }

    /// Registers consumer group `group` on `topic` (idempotent). A group receives what is
    /// published after it subscribed.
    pub fn subscribe(&self, topic: &str, group: &str) -> Result<(), StoreError> {
        self.conn()?.execute(
            "INSERT OR IGNORE INTO subscriptions (topic, grp) VALUES (?1, ?2)",
            params![topic, group],
        )?;
        Ok(())
    }

    /// Publishes `message` to every group subscribed to `topic`; returns after the commit.
    /// Returns the number of groups it was written for (0: nobody subscribed, nothing kept).
    pub fn publish(&self, topic: &str, message: &Value) -> Result<u64, StoreError> {
        let text = serde_json::to_string(message)?;
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "INSERT INTO queue (topic, grp, message) SELECT topic, grp, ?2 FROM subscriptions WHERE topic = ?1",
            params![topic, text],
        )?;
        tx.commit()?;
        Ok(n as u64)
    }

    /// Leases up to `max` ready rows of (`topic`, `group`) for `lease_for_ms`.
    pub fn lease(
        &self,
        topic: &str,
        group: &str,
        max: usize,
        lease_for_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<Leased>, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let rows: Vec<(i64, String, i64)> = {
            let mut stmt = tx.prepare_cached(
                "SELECT seq, message, attempt FROM queue
                 WHERE topic = ?1 AND grp = ?2 AND available_at <= ?3
                 ORDER BY seq LIMIT ?4",
            )?;
            stmt.query_map(params![topic, group, now_ms, max as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<_, _>>()?
        };
        let mut out = Vec::with_capacity(rows.len());
        for (seq, text, attempt) in rows {
            // A fresh token per lease: an ack from an older, expired lease no longer matches.
            let token: i64 = tx.query_row(
                "UPDATE queue SET attempt = attempt + 1, available_at = ?2, lease_token = lease_token + 1
                 WHERE seq = ?1 RETURNING lease_token",
                params![seq, now_ms.saturating_add(lease_for_ms)],
                |r| r.get(0),
            )?;
            out.push(Leased {
                topic: topic.to_string(),
                group: group.to_string(),
                seq: seq as u64,
                attempt: (attempt + 1) as u32,
                message: serde_json::from_str(&text)?,
                lease_token: token,
            });
        }
        tx.commit()?;
        Ok(out)
    }

    /// Acknowledges a delivery: the row is deleted. Returns false when the lease was no
    /// longer current (it expired and was leased again); the row is then left alone.
    pub fn ack(&self, delivery: &Leased) -> Result<bool, StoreError> {
        let n = self.conn()?.execute(
            "DELETE FROM queue WHERE seq = ?1 AND lease_token = ?2",
            params![delivery.seq as i64, delivery.lease_token],
        )?;
        Ok(n == 1)
    }

    /// Returns a delivery to the queue, ready again at `retry_at_ms`.
    pub fn nack(&self, delivery: &Leased, retry_at_ms: i64) -> Result<bool, StoreError> {
        let n = self.conn()?.execute(
            "UPDATE queue SET available_at = ?3 WHERE seq = ?1 AND lease_token = ?2",
            params![delivery.seq as i64, delivery.lease_token, retry_at_ms],
        )?;
        Ok(n == 1)
    }

    /// Rows waiting (leased or not) for (`topic`, `group`).
    pub fn depth(&self, topic: &str, group: &str) -> Result<u64, StoreError> {
        let n: i64 = self.conn()?.query_row(
            "SELECT COUNT(*) FROM queue WHERE topic = ?1 AND grp = ?2",
            params![topic, group],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    pub fn dead_letter(&self, entry: &DeadLetter) -> Result<u64, StoreError> {
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO dead_letters (pipeline, pipeline_version, step, error, message, attempts, at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                entry.pipeline,
                entry.pipeline_version,
                entry.step,
                serde_json::to_string(&entry.error)?,
                serde_json::to_string(&entry.message)?,
                entry.attempts,
                entry.at_ms
            ],
        )?;
        Ok(conn.last_insert_rowid() as u64)
    }

    /// Dead letters, oldest first, of one pipeline or all.
    pub fn dead_letters(
        &self,
        pipeline: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(u64, DeadLetter)>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, pipeline, pipeline_version, step, error, message, attempts, at_ms FROM dead_letters
             WHERE ?1 IS NULL OR pipeline = ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = stmt
            .query_map(params![pipeline, limit as i64], row_to_dead_letter)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(id, dl)| dl.map(|d| (id, d)))
            .collect()
    }

    /// Removes and returns one dead letter (for replay).
    pub fn take_dead_letter(&self, id: u64) -> Result<Option<DeadLetter>, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let row = tx
            .query_row(
                "SELECT id, pipeline, pipeline_version, step, error, message, attempts, at_ms FROM dead_letters WHERE id = ?1",
                params![id as i64],
                row_to_dead_letter,
            )
            .optional()?;
        tx.execute("DELETE FROM dead_letters WHERE id = ?1", params![id as i64])?;
        tx.commit()?;
        row.map(|(_, dl)| dl).transpose()
    }

    /// Whether `key` was recorded for `pipeline` and has not expired; records it otherwise.
    pub fn seen(
        &self,
        pipeline: &str,
        key: &str,
        ttl_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let live: Option<i64> = tx
            .query_row(
                "SELECT expires_at FROM dedupe WHERE pipeline = ?1 AND key = ?2 AND expires_at > ?3",
                params![pipeline, key, now_ms],
                |r| r.get(0),
            )
            .optional()?;
        if live.is_none() {
            tx.execute(
                "INSERT INTO dedupe (pipeline, key, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (pipeline, key) DO UPDATE SET expires_at = excluded.expires_at",
                params![pipeline, key, now_ms.saturating_add(ttl_ms)],
            )?;
        }
        tx.commit()?;
        Ok(live.is_some())
    }

    /// Deletes expired dedupe keys; returns how many.
    pub fn purge_expired(&self, now_ms: i64) -> Result<u64, StoreError> {
        let n = self
            .conn()?
            .execute("DELETE FROM dedupe WHERE expires_at <= ?1", params![now_ms])?;
        Ok(n as u64)
    }
}

type DeadLetterRow = (u64, Result<DeadLetter, StoreError>);

fn row_to_dead_letter(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeadLetterRow> {
    let id: i64 = r.get(0)?;
    let error: String = r.get(4)?;
    let message: String = r.get(5)?;
    let parsed =
        serde_json::from_str(&error).and_then(|e| serde_json::from_str(&message).map(|m| (e, m)));
    let dl = match parsed {
        Ok((error, message)) => Ok(DeadLetter {
            pipeline: r.get(1)?,
            pipeline_version: r.get(2)?,
            step: r.get(3)?,
            error,
            message,
            attempts: r.get(6)?,
            at_ms: r.get(7)?,
        }),
        Err(e) => Err(StoreError::Json(e)),
    };
    Ok((id as u64, dl))
}
