//! Batch buffers: messages wait in the store until a batch is claimed, then are deleted
//! when its outputs confirmed or handed back when they failed.

use super::*;

impl Store {
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
        let n = commit_batch_in(&tx, token)?;
        tx.commit()?;
        Ok(n)
    }

    /// The batch's outputs failed: its messages wait in the buffer again.
    pub fn batch_release(&self, token: i64) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = release_batch_in(&tx, token)?;
        tx.commit()?;
        Ok(n)
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
}

/// Claims the oldest unclaimed (or expired-claim) messages of `buffer`: `take` of them, or all.
pub(crate) fn claim_batch(
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

/// Deletes the messages of batch claim `token` and the claim; whether there were any.
pub(crate) fn commit_batch_in(conn: &Connection, token: i64) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached("DELETE FROM batch_items WHERE claim = ?1")?
        .execute(params![token])?;
    conn.prepare_cached("DELETE FROM batch_claims WHERE token = ?1")?
        .execute(params![token])?;
    Ok(n > 0)
}

/// Hands the messages of batch claim `token` back to their buffer; whether there were any.
pub(crate) fn release_batch_in(conn: &Connection, token: i64) -> Result<bool, StoreError> {
    let n = conn
        .prepare_cached("UPDATE batch_items SET claim = 0, claimed_until = 0 WHERE claim = ?1")?
        .execute(params![token])?;
    conn.prepare_cached("DELETE FROM batch_claims WHERE token = ?1")?
        .execute(params![token])?;
    Ok(n > 0)
}
