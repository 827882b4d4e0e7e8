//! A message's unit of work: dedupe keys (pending while in flight), file progress, and the
//! commit or release of everything a message changed, with its acknowledgement.

use super::*;

impl Store {
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
        let _relaxed = Relaxed::on(
            &conn,
            unit.dead_letters.is_empty() && unit.replaces.is_none(),
        )?;
        // Unchecked: `_relaxed` holds `&conn` too; the mutex guarantees one transaction.
        let tx = Transaction::new_unchecked(&conn, TransactionBehavior::Immediate)?;
        if let Some(delivery) = &unit.ack
            && !ack_in(&tx, delivery)?
        {
            return Ok(false);
        }
        for_each_key(
            &tx,
            "UPDATE dedupe SET pending = 0 WHERE pipeline = ?1 AND key = ?2 AND pending = 1",
            &unit.keys,
        )?;
        for token in &unit.batch_claims {
            commit_batch_in(&tx, *token)?;
        }
        if let Some(mark) = &unit.file {
            set_file_progress_in(&tx, mark)?;
        }
        if let Some(id) = unit.replaces {
            tx.prepare_cached("DELETE FROM dead_letters WHERE id = ?1")?
                .execute(params![to_i64(id)])?;
        }
        for entry in &unit.dead_letters {
            dead_letter_in(&tx, entry)?;
        }
        if let Some((pipeline, origin)) = &unit.marks {
            output_marks::delete_in(&tx, pipeline, origin)?;
        }
        tx.commit()?;
        Ok(true)
    }

    /// Undoes a message that will be tried again, in one transaction: its pending dedupe keys
    /// are deleted (so the retry is not taken for a duplicate of itself), the batches it
    /// claimed wait in their buffers again, and its delivery, if any, is ready again at
    /// `retry_at_ms` (`counts`: the attempt counts, as for [`Store::nack`]; else as for
    /// [`Store::release`]). File progress is not recorded. Output marks stay: the retry
    /// finds the lines it already wrote.
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
        for_each_key(
            &tx,
            "DELETE FROM dedupe WHERE pipeline = ?1 AND key = ?2 AND pending = 1",
            &unit.keys,
        )?;
        for token in &unit.batch_claims {
            release_batch_in(&tx, *token)?;
        }
        if let Some(delivery) = &unit.ack {
            requeue_in(&tx, delivery, retry_at_ms, counts)?;
        }
        tx.commit()?;
        Ok(())
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

    /// Deletes expired dedupe keys; returns how many.
    pub fn purge_expired(&self, now_ms: i64) -> Result<u64, StoreError> {
        let n = self
            .conn()
            .execute("DELETE FROM dedupe WHERE expires_at <= ?1", params![now_ms])?;
        Ok(n as u64)
    }
}

pub(crate) fn set_file_progress_in(conn: &Connection, mark: &FileMark) -> Result<(), StoreError> {
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

/// Runs `sql` (parameters: pipeline, key) for each of `keys`.
fn for_each_key(conn: &Connection, sql: &str, keys: &[(String, String)]) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    for (pipeline, key) in keys {
        stmt.execute(params![pipeline, key])?;
    }
    Ok(())
}
