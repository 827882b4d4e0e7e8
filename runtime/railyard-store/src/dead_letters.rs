//! Dead letters: the failing message, its original input, the error and the attempts.

use super::*;

impl Store {
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
        self.find_dead_letters(&DeadLetterQuery {
            pipeline: pipeline.map(str::to_string),
            limit,
            ..DeadLetterQuery::default()
        })
    }

    /// Dead letters matching `q`, oldest first: for `railyard dlq` and the admin API.
    pub fn find_dead_letters(
        &self,
        q: &DeadLetterQuery,
    ) -> Result<Vec<(u64, DeadLetter)>, StoreError> {
        let mut sql = String::from(
            "SELECT id, pipeline, pipeline_version, step, error, message, attempts, at_ms, original FROM dead_letters WHERE id > ?1",
        );
        let mut args: Vec<rusqlite::types::Value> = vec![to_i64(q.after_id).into()];
        let mut and = |clause: &str, v: rusqlite::types::Value| {
            args.push(v);
            sql.push_str(&format!(" AND {clause} ?{}", args.len()));
        };
        if let Some(p) = &q.pipeline {
            and("pipeline =", p.clone().into());
        }
        if let Some(s) = &q.step {
            and("step =", s.clone().into());
        }
        if let Some(c) = &q.code {
            and("json_extract(error, '$.code') =", c.clone().into());
        }
        if let Some(t) = q.since_ms {
            and("at_ms >=", t.into());
        }
        if let Some(t) = q.until_ms {
            and("at_ms <", t.into());
        }
        let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
        args.push(limit.into());
        sql.push_str(&format!(" ORDER BY id LIMIT ?{}", args.len()));
        let conn = self.conn();
        let rows = conn
            .prepare(&sql)?
            .query_map(rusqlite::params_from_iter(args), DeadLetterRow::read)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(DeadLetterRow::parse).collect()
    }

    /// How many dead letters each pipeline holds, by error code (`-` for none), for
    /// `/metrics` and `/health`.
    pub fn dead_letter_counts(&self) -> Result<Vec<(String, String, u64)>, StoreError> {
        let conn = self.conn();
        let rows = conn
            .prepare_cached(
                "SELECT pipeline, coalesce(json_extract(error, '$.code'), '-'), count(*)
                 FROM dead_letters GROUP BY 1, 2 ORDER BY 1, 2",
            )?
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows
            .into_iter()
            .map(|(p, c, n)| (p, c, to_u64(n)))
            .collect())
    }

    /// Whether message `message_id` was dead-lettered after dead letter `after_id` (a replay
    /// that failed again).
    pub fn dead_lettered_since(&self, after_id: u64, message_id: &str) -> Result<bool, StoreError> {
        let found: Option<i64> = self
            .conn()
            .query_row(
                "SELECT 1 FROM dead_letters WHERE id > ?1
                 AND json_extract(coalesce(original, message), '$.meta.id') = ?2 LIMIT 1",
                params![to_i64(after_id), message_id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(found.is_some())
    }

    /// One dead letter by id, if it is there.
    pub fn dead_letter_by_id(&self, id: u64) -> Result<Option<DeadLetter>, StoreError> {
        let row = self
            .conn()
            .query_row(
                "SELECT id, pipeline, pipeline_version, step, error, message, attempts, at_ms, original
                 FROM dead_letters WHERE id = ?1",
                params![to_i64(id)],
                DeadLetterRow::read,
            )
            .optional()?;
        Ok(row.map(DeadLetterRow::parse).transpose()?.map(|(_, dl)| dl))
    }

    /// Deletes the dead letters `ids` (those still there); returns how many went.
    pub fn drop_dead_letters(&self, ids: &[u64]) -> Result<u64, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut n = 0;
        {
            let mut delete = tx.prepare_cached("DELETE FROM dead_letters WHERE id = ?1")?;
            for id in ids {
                n += delete.execute(params![to_i64(*id)])? as u64;
            }
        }
        tx.commit()?;
        Ok(n)
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
}

/// Stores a dead letter; returns its id.
pub(crate) fn dead_letter_in(conn: &Connection, entry: &DeadLetter) -> Result<u64, StoreError> {
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

/// A dead-letter row as read, JSON columns still text (parsed outside the row callback so a
/// bad column is a `StoreError::Json`, not a SQLite error).
pub(crate) struct DeadLetterRow {
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
