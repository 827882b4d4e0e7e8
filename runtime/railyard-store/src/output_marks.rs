//! Output marks: where a file output wrote a message's line, recorded *before* the write and
//! kept until the message is settled. A message tried again — after a crash between the write
//! and its commit, or after another output failed — finds its mark, and when the file still
//! holds exactly those bytes there (same path, offset, length and digest), the line is not
//! written twice. A mark whose bytes are not there (the write never happened, or the file was
//! replaced) is simply written again: a mark can cause a repeat, never a loss.

use super::*;

/// Which line of which message: the message as it entered the pipeline (`origin`, its id),
/// the item it became (`item`: the index among what its steps delivered, for a split) and
/// the output (`output`: the index in the pipeline's `outputs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputSlot {
    pub pipeline: String,
    pub origin: String,
    pub item: u32,
    pub output: u32,
}

/// Where a line was (or is about to be) written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputMark {
    pub path: String,
    pub offset: u64,
    pub len: u64,
    /// A digest of the line's bytes (the caller chooses the function; SHA-256 in `run`).
    pub digest: Vec<u8>,
}

impl Store {
    /// The mark left for `slot` by an earlier attempt, if any.
    pub fn output_mark(&self, slot: &OutputSlot) -> Result<Option<OutputMark>, StoreError> {
        let conn = self.conn();
        let mark = conn
            .prepare_cached(
                "SELECT path, offset, len, digest FROM output_marks
                 WHERE pipeline = ?1 AND origin = ?2 AND item = ?3 AND output = ?4",
            )?
            .query_row(
                params![slot.pipeline, slot.origin, slot.item, slot.output],
                |r| {
                    Ok(OutputMark {
                        path: r.get(0)?,
                        offset: to_u64(r.get(1)?),
                        len: to_u64(r.get(2)?),
                        digest: r.get(3)?,
                    })
                },
            )
            .optional()?;
        Ok(mark)
    }

    /// Records (or replaces) the mark for `slot`. Committed with `synchronous = NORMAL`: it
    /// is in the OS's cache before the caller writes the line, so a crash of the process
    /// cannot leave a line without its mark; a power loss can, and then the line may repeat.
    pub fn set_output_mark(
        &self,
        slot: &OutputSlot,
        mark: &OutputMark,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let conn = self.conn();
        let _relaxed = Relaxed::on(&conn, true)?;
        conn.prepare_cached(
            "INSERT INTO output_marks
                 (pipeline, origin, item, output, path, offset, len, digest, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (pipeline, origin, item, output) DO UPDATE SET path = excluded.path,
                 offset = excluded.offset, len = excluded.len, digest = excluded.digest,
                 created_ms = excluded.created_ms",
        )?
        .execute(params![
            slot.pipeline,
            slot.origin,
            slot.item,
            slot.output,
            mark.path,
            to_i64(mark.offset),
            to_i64(mark.len),
            mark.digest,
            now_ms
        ])?;
        Ok(())
    }

    /// Deletes marks older than `before_ms`: those of messages that were never settled here
    /// (a webhook whose sender gave up, a message another replica finished).
    pub fn purge_output_marks(&self, before_ms: i64) -> Result<u64, StoreError> {
        let n = self.conn().execute(
            "DELETE FROM output_marks WHERE created_ms < ?1",
            params![before_ms],
        )?;
        Ok(n as u64)
    }
}

/// Deletes the marks of a settled message (in the unit's transaction).
pub(crate) fn delete_in(conn: &Connection, pipeline: &str, origin: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM output_marks WHERE pipeline = ?1 AND origin = ?2")?
        .execute(params![pipeline, origin])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn slot(origin: &str, item: u32) -> OutputSlot {
        OutputSlot {
            pipeline: "p".into(),
            origin: origin.into(),
            item,
            output: 0,
        }
    }

    fn mark(offset: u64) -> OutputMark {
        OutputMark {
            path: "out/a.jsonl".into(),
            offset,
            len: 10,
            digest: vec![1, 2, 3],
        }
    }

    #[test]
    fn marks_survive_a_release_and_go_with_a_commit() {
        let store = Store::open_in_memory().unwrap();
        assert_eq!(store.output_mark(&slot("m1", 0)).unwrap(), None);
        store.set_output_mark(&slot("m1", 0), &mark(0), 1).unwrap();
        store.set_output_mark(&slot("m1", 1), &mark(10), 1).unwrap();
        store.set_output_mark(&slot("m2", 0), &mark(20), 1).unwrap();
        // A second attempt replaces its slot's mark.
        store.set_output_mark(&slot("m1", 1), &mark(30), 2).unwrap();
        assert_eq!(store.output_mark(&slot("m1", 1)).unwrap(), Some(mark(30)));

        let unit = Unit {
            marks: Some(("p".into(), "m1".into())),
            ..Unit::default()
        };
        store.release_unit(&unit, 0, true).unwrap();
        assert_eq!(store.output_mark(&slot("m1", 0)).unwrap(), Some(mark(0)));
        assert!(store.commit_unit(&unit).unwrap());
        assert_eq!(store.output_mark(&slot("m1", 0)).unwrap(), None);
        assert_eq!(store.output_mark(&slot("m1", 1)).unwrap(), None);
        // Another message's marks are untouched.
        assert_eq!(store.output_mark(&slot("m2", 0)).unwrap(), Some(mark(20)));
    }

    #[test]
    fn old_marks_are_purged() {
        let store = Store::open_in_memory().unwrap();
        store
            .set_output_mark(&slot("old", 0), &mark(0), 100)
            .unwrap();
        store
            .set_output_mark(&slot("new", 0), &mark(0), 200)
            .unwrap();
        assert_eq!(store.purge_output_marks(150).unwrap(), 1);
        assert_eq!(store.output_mark(&slot("old", 0)).unwrap(), None);
        assert!(store.output_mark(&slot("new", 0)).unwrap().is_some());
    }
}
