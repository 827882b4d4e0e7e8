//! Topic queues with consumer groups: subscribe, publish, lease, ack, nack, release.

use super::*;

impl Store {
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

    /// Every subscription's backlog: deliveries not yet acked, and the `meta.received_at` of
    /// the oldest (when it has one), for `/metrics`.
    pub fn backlog(&self) -> Result<Vec<Backlog>, StoreError> {
        let conn = self.conn();
        let rows = conn
            .prepare_cached(
                "SELECT t.topic, t.grp, t.n, json_extract(m.body, '$.meta.received_at')
                 FROM (SELECT s.topic, s.grp, COUNT(d.seq) AS n, MIN(d.seq) AS oldest
                       FROM subscriptions s LEFT JOIN deliveries d ON d.sub = s.id
                       GROUP BY s.id) t
                 LEFT JOIN messages m ON m.seq = t.oldest
                 ORDER BY t.topic, t.grp",
            )?
            .query_map([], |r| {
                Ok(Backlog {
                    topic: r.get(0)?,
                    group: r.get(1)?,
                    depth: to_u64(r.get(2)?),
                    oldest_received_at: r.get::<_, Option<String>>(3).unwrap_or(None),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
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
}

/// Deletes a delivery for its group if `delivery` is its current lease; the last group done
/// with a message deletes the message.
pub(crate) fn ack_in(tx: &Transaction<'_>, delivery: &Leased) -> Result<bool, StoreError> {
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
pub(crate) fn requeue_in(
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

pub(crate) fn subscription(
    tx: &Transaction<'_>,
    topic: &str,
    group: &str,
) -> Result<Option<i64>, StoreError> {
    Ok(tx
        .prepare_cached("SELECT id FROM subscriptions WHERE topic = ?1 AND grp = ?2")?
        .query_row(params![topic, group], |r| r.get(0))
        .optional()?)
}
