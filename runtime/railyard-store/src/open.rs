//! Opening a store file: the lock that makes one process per file, the integrity check,
//! migrations, and taking back what a dead previous holder left in flight. Also `Relaxed`,
//! the commit mode for transactions whose loss can only repeat a message.

use super::*;

impl Store {
    /// Opens (creating) the store file at `path` for a runtime, creating its parent
    /// directories: takes the exclusive lock on `<path>.lock` (held while the `Store` lives;
    /// `StoreError::Locked` if another process or another `Store` of this process holds it),
    /// checks the file (`StoreError::Corrupt`), brings its schema up to date and reclaims
    /// what the previous holder left in flight ([`Store::reclaimed`]).
    ///
    /// The integrity check reads the whole file (seconds per GiB, more from a cold cache),
    /// so it runs only when the previous holder did not stop cleanly: a `Store` that is
    /// dropped marks its lock file `<pid> stopped`, and a lock file without that mark (a
    /// crash, a kill, a file from before the mark existed) means check.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        create_parent(path)?;
        let (lock, previous) = lock_file(path)?;
        let check = !previous.trim_end().ends_with(STOPPED);
        let started = std::time::Instant::now();
        let conn = open_checked(path, check)?;
        let checked = check.then(|| started.elapsed());
        let mut store = Store::init(conn, Some(lock)).map_err(|e| corrupt_at(path, e))?;
        store.checked = checked;
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
            checked: None,
            lock,
        })
    }

    /// How long `open`'s integrity check took, when it ran (the previous holder did not stop
    /// cleanly); `None` when it was skipped.
    pub fn checked_at_open(&self) -> Option<Duration> {
        self.checked
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
}

/// `synchronous = NORMAL` for one transaction, `FULL` again when dropped. In WAL mode a
/// NORMAL commit survives a crash of the process (the write is in the OS's cache) and only a
/// power loss or OS crash can undo it; the next FULL commit's sync makes it durable too. It is
/// used where undoing the commit can only cause a repeat, never a loss: claiming or settling
/// dedupe keys, acks, batch and file progress. A unit that writes dead letters (the only copy
/// of a message) commits with FULL.
pub(crate) struct Relaxed<'c> {
    conn: Option<&'c Connection>,
}

impl<'c> Relaxed<'c> {
    pub(crate) fn on(conn: &'c Connection, relax: bool) -> Result<Relaxed<'c>, StoreError> {
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
pub(crate) fn create_parent(path: &Path) -> Result<(), StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Create {
            path: dir.display().to_string(),
            source,
        })?;
    }
    Ok(())
}

/// `<path>.lock`, next to the store file.
pub(crate) fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// What a cleanly stopped holder leaves after its pid in the lock file.
pub(crate) const STOPPED: &str = " stopped";

/// Takes the exclusive OS lock on `<path>.lock` and writes this process's pid into it. The
/// OS releases the lock when the process dies, however it dies: holding it proves that no
/// previous holder is still running. Returns the lock and what the previous holder left in
/// it (its pid, and [`STOPPED`] if it stopped cleanly).
pub(crate) fn lock_file(path: &Path) -> Result<(File, String), StoreError> {
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
    let mut previous = String::new();
    let _ = file.read_to_string(&mut previous);
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| write!(file, "{}", std::process::id()))
        .and_then(|()| file.flush())
        .map_err(create)?;
    Ok((file, previous))
}

impl Drop for Store {
    /// Marks the lock file: this holder stopped cleanly, the next `open` need not check.
    fn drop(&mut self) {
        if let Some(file) = &mut self.lock {
            let _ = file
                .set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| write!(file, "{}{STOPPED}", std::process::id()))
                .and_then(|()| file.sync_data());
        }
    }
}

/// Opens the file and, when `check`, runs SQLite's `quick_check` on it (pages, records,
/// indexes: the damage an overwritten page does), before anything is written.
pub(crate) fn open_checked(path: &Path, check: bool) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(|e| corrupt_at(path, e.into()))?;
    let fresh = std::fs::metadata(path)
        .map(|m| m.len() == 0)
        .unwrap_or(true);
    if check && !fresh {
        quick_check(&conn, path)?;
    }
    Ok(conn)
}

/// Runs SQLite's `quick_check` on the store file at `path` over a read-only connection of
/// its own, so writers carry on meanwhile: for a runtime whose `open` skipped the check (the
/// previous holder stopped cleanly) to check in the background.
pub fn check_file(path: &Path) -> Result<(), StoreError> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| corrupt_at(path, e.into()))?;
    conn.busy_timeout(Duration::from_secs(10))?;
    quick_check(&conn, path)
}

fn quick_check(conn: &Connection, path: &Path) -> Result<(), StoreError> {
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
    Ok(())
}

/// A corruption error of the file at `path` becomes [`StoreError::Corrupt`] naming it.
pub(crate) fn corrupt_at(path: &Path, e: StoreError) -> StoreError {
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
pub(crate) fn reclaim(conn: &mut Connection) -> Result<Reclaimed, StoreError> {
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
