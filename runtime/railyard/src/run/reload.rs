//! Hot reload: watching the project's files, fingerprinting them, and swapping in a valid
//! new version (`reload`), rebuilding only the pipelines whose revision changed.

use super::*;

pub(crate) fn hash_of(text: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// The directories whose files make up a project (what reload watches and fingerprints).
pub(crate) const PROJECT_DIRS: [&str; 5] =
    ["pipelines", "mappings", "schemas", "plugins", "tables"];

pub(crate) type Watcher = notify_debouncer_full::Debouncer<
    notify_debouncer_full::notify::RecommendedWatcher,
    notify_debouncer_full::RecommendedCache,
>;

/// Watches the project's directories (recursively) and its root (for directories appearing or
/// being swapped), sending a unit on `tx` per debounced burst of events. `None`, with a
/// warning, when the platform refuses: the caller polls instead.
pub(crate) fn watch_project(
    dir: &std::path::Path,
    tx: tokio::sync::mpsc::UnboundedSender<()>,
) -> Option<Watcher> {
    use notify_debouncer_full::notify::RecursiveMode;
    let debouncer = notify_debouncer_full::new_debouncer(
        Duration::from_millis(200),
        None,
        move |events: notify_debouncer_full::DebounceEventResult| {
            if events.is_ok_and(|e| !e.is_empty()) {
                let _ = tx.send(());
            }
        },
    );
    let mut debouncer = match debouncer {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "Cannot watch the project directory; polling it every 0.5 s instead.");
            return None;
        }
    };
    let mut watched = debouncer.watch(dir, RecursiveMode::NonRecursive);
    for sub in PROJECT_DIRS {
        let path = dir.join(sub);
        if path.is_dir() {
            watched = watched.and_then(|()| debouncer.watch(&path, RecursiveMode::Recursive));
        }
    }
    match watched {
        Ok(()) => Some(debouncer),
        Err(e) => {
            tracing::warn!(error = %e, "Cannot watch the project directory; polling it every 0.5 s instead.");
            None
        }
    }
}

/// What the project's files look like now: paths, sizes and modification times. Editors'
/// atomic saves and Kubernetes ConfigMap swaps all change it.
pub(crate) fn fingerprint(dir: &std::path::Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut entries = Vec::new();
    // A symlink out of the project counts as itself (the loader reports it), and is not
    // walked: the loader never reads what is behind it.
    let root = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let outside = |path: &std::path::Path| {
        path.strip_prefix(dir).is_ok_and(|rel| {
            crate::fs::confine(&root, &rel.to_string_lossy())
                == Err(railyard_core::project::ReadError::OutsideProject)
        })
    };
    for sub in PROJECT_DIRS {
        let mut walk = walkdir::WalkDir::new(dir.join(sub))
            .follow_links(true)
            .into_iter();
        while let Some(entry) = walk.next() {
            let e = match entry {
                Ok(e) => e,
                Err(err) => {
                    // A loop, a dangling link, a permission problem: the loader reports it.
                    if let Some(p) = err.path() {
                        entries.push((p.to_path_buf(), 0, None));
                    }
                    continue;
                }
            };
            if e.path_is_symlink() && outside(e.path()) {
                entries.push((e.path().to_path_buf(), 0, None));
                if e.file_type().is_dir() {
                    walk.skip_current_dir();
                }
                continue;
            }
            if let Ok(m) = e.metadata()
                && m.is_file()
            {
                let mtime = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
                entries.push((e.path().to_path_buf(), m.len(), mtime));
            }
        }
    }
    entries.sort();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    entries.hash(&mut h);
    h.finish()
}

pub(crate) async fn reload(
    rt: &Arc<Runtime>,
    dir: &std::path::Path,
    routes: &railyard_connectors::http::SharedRoutes,
    workers: &mut Workers,
) {
    let dir2 = dir.to_path_buf();
    let loaded =
        tokio::task::spawn_blocking(move || open_project(&dir2, Purpose::Run).map(|(_, l)| l))
            .await;
    let Ok(Ok(loaded)) = loaded else {
        tracing::error!(
            "Reload failed: the project directory cannot be read; the running version stays."
        );
        return;
    };
    let count = |what: &str| {
        rt.reload
            .lock()
            .ok()
            .and_then(|r| r.get(what).and_then(Value::as_u64))
            .unwrap_or(0)
    };
    if loaded.has_errors() {
        let renderer = Renderer::new(&loaded, dir, false);
        let text = renderer.human(&loaded.diagnostics);
        tracing::error!(diagnostics = %summary(&loaded.diagnostics), "Reload rejected; the running version stays.\n{text}");
        metrics::reload(false);
        let (reloads, failed) = (count("reloads"), count("failed") + 1);
        // For `/health`: where and what, never the source lines around it (a literal secret
        // on the next line would be shown to whoever reads the endpoint).
        // Paths relative to the project: where the server keeps it is not the reader's business.
        let relative = Renderer::new(&loaded, std::path::Path::new("."), false);
        let shown: Value =
            serde_json::from_str(&relative.json(&loaded.diagnostics)).unwrap_or(Value::Null);
        if let Ok(mut r) = rt.reload.lock() {
            *r = json!({ "ok": false, "reloads": reloads, "failed": failed, "diagnostics": shown });
        }
        return;
    }
    // Swapped in with the project, not before: a reload refused below keeps the running
    // project, and its secrets.
    let secrets = loaded.project.secrets.clone();
    let live = Live::new(loaded.project);
    let new_routes = match live.routes() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "Reload rejected; the running version stays.");
            return;
        }
    };
    if rt.amqp_topics.is_none()
        && let Err(e) = subscribe_all(&rt.store, &live)
    {
        tracing::error!(error = %e, "Reload rejected; the running version stays.");
        return;
    }
    if let Some(url) = &rt.amqp_topics {
        declare_broker_topics(url, &live).await;
    }
    let live = Arc::new(live);
    let old = rt.live();
    let changed: Vec<&String> = live
        .project
        .pipelines
        .values()
        .filter(|p| {
            old.project
                .pipelines
                .get(&p.name)
                .is_none_or(|o| o.revision != p.revision || o.file != p.file)
        })
        .map(|p| &p.name)
        .collect();
    // Unchanged pipelines keep their workers; messages in flight finish on the snapshot they
    // started with, whatever changed.
    tracing::info!(pipelines = live.running.len(), rebuilt = ?changed, "Reloaded project.");
    for name in &changed {
        if let Some(p) = live.project.pipelines.get(*name) {
            metrics::pipeline_version(&p.name, p.version);
        }
    }
    redaction::set(&secrets);
    match rt.live.write() {
        Ok(mut l) => *l = live.clone(),
        Err(poisoned) => *poisoned.into_inner() = live.clone(),
    }
    match routes.write() {
        Ok(mut r) => *r = Arc::new(new_routes),
        Err(poisoned) => *poisoned.into_inner() = Arc::new(new_routes),
    }
    workers.reconcile(rt, &live);
    metrics::reload(true);
    let (reloads, failed) = (count("reloads") + 1, count("failed"));
    if let Ok(mut r) = rt.reload.lock() {
        *r = json!({ "ok": true, "reloads": reloads, "failed": failed, "rebuilt": changed });
    }
}
