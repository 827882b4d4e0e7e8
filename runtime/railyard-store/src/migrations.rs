//! The store's schema: migrations in order, `PRAGMA user_version` counting those run.

use super::*;

/// Migrations, in order; `PRAGMA user_version` is how many have run. Never edit one that
/// shipped: add the next.
pub(crate) const MIGRATIONS: &[&str] = &[
    MIGRATION_1,
    MIGRATION_2,
    MIGRATION_3,
    MIGRATION_4,
    MIGRATION_5,
    MIGRATION_6,
];

/// Version 1 (first `railyard run`): one queue row per (message, group), the message text
/// copied into each.
pub(crate) const MIGRATION_1: &str = "
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
pub(crate) const MIGRATION_2: &str = "
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
pub(crate) const MIGRATION_3: &str = "
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
pub(crate) const MIGRATION_4: &str = "
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
pub(crate) const MIGRATION_5: &str = "
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

/// Version 6: output marks. Before a file output appends a message's line, it records where
/// (path, offset, length, digest); the mark lives until the message is settled, so a message
/// tried again after a crash (or after another output failed) finds the line it already wrote
/// and does not write it twice.
pub(crate) const MIGRATION_6: &str = "
CREATE TABLE output_marks (
    pipeline   TEXT NOT NULL,
    origin     TEXT NOT NULL,
    item       INTEGER NOT NULL,
    output     INTEGER NOT NULL,
    path       TEXT NOT NULL,
    offset     INTEGER NOT NULL,
    len        INTEGER NOT NULL,
    digest     BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (pipeline, origin, item, output)
);
CREATE INDEX output_marks_created ON output_marks (created_ms);
";

/// Runs the migrations the file has not had, each in its own transaction with its version.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
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
