//! `railyard run [DIR]`: serve the project's pipelines on the embedded defaults.
//!
//! This file is the process's life: load, open the store (its lock, check and reclaim), start
//! the server and the workers, reload on change, stop gracefully. The parts:
//!
//! - `runtime` — one message's run and the settling of its unit of work, for every input;
//! - `driver` — the verdict after an attempt (the core's retry policy), panics caught;
//! - `inputs/` — one file per input kind (webhook, topic, amqp, file, schedule, batch);
//! - `outputs` — the output connectors, dispatched on `OutputSpec`;
//! - `workers` — the tasks of the running configuration, dispatched on `InputSpec`;
//! - `reload` — watching and swapping the configuration;
//! - `admin` — `/health`, `/ready`, `/metrics`; `metrics` — every metric name.
//!
//! Delivery: a message is acknowledged at its source only after every output confirmed or it
//! was durably dead-lettered, and its state effects commit with that acknowledgement (see
//! ARCHITECTURE.md, "One unit of work per message").

mod admin;
mod driver;
mod http_limits;
mod inputs;
mod metrics;
mod outputs;
mod publish;
mod redaction;
mod reload;
mod replay;
mod runtime;
mod workers;

use self::inputs::*;
use self::reload::*;
use self::runtime::*;
use self::workers::*;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::get;
use railyard_connectors::amqp::Settle;
use railyard_connectors::http::{Handoff, Inbound, Unavailable};
use railyard_core::delivery::{ErrorClass, Verdict};
use railyard_core::engine::{Engine, Message, Origin, Outcome, State};
use railyard_core::project::{InputSpec, Pipeline, Project};
use railyard_store::{DeadLetter, KeyClaim, Store, Unit};
use serde_json::{Value, json};

use self::outputs::SendError;
use crate::exit;
use crate::fs::open_project;
use crate::render::{Renderer, summary};
use railyard_core::project::Purpose;

#[derive(clap::Args)]
pub struct Args {
    /// Project directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Address of the HTTP server (webhooks, /ready, /health; the admin endpoints as
    /// `--admin-listen` says).
    #[arg(long, default_value = "127.0.0.1:8080", env = "RAILYARD_LISTEN")]
    pub listen: SocketAddr,
    /// Address serving only the admin endpoints (detailed /health, /metrics, /admin/*) to whoever
    /// reaches it; keep it private (loopback or an internal network). Without it, the webhook
    /// listener serves them with `RAILYARD_ADMIN_TOKEN` as a bearer token, or, when no token
    /// is set, to this machine only.
    #[arg(long, env = "RAILYARD_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// Directory of the embedded store (default `DIR/data`).
    #[arg(long, env = "RAILYARD_DATA")]
    pub data: Option<PathBuf>,
    /// Directory file outputs write under (default: the data directory). A file output's path
    /// is relative to it and may not leave it.
    #[arg(long, env = "RAILYARD_OUTPUT_ROOT")]
    pub output_root: Option<PathBuf>,
    /// Do not watch the project for changes (no hot reload).
    #[arg(long)]
    pub no_watch: bool,
    #[command(flatten)]
    pub http_limits: http_limits::HttpLimitArgs,
}

impl Args {
    /// The embedded store's directory: `--data`, or `DIR/data`.
    fn data_dir(&self) -> PathBuf {
        self.data.clone().unwrap_or_else(|| self.dir.join("data"))
    }
}

pub fn run(args: Args) -> u8 {
    // TLS for HTTP outputs: rustls with the ring provider (no OpenSSL, no C toolchain beyond cc).
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Logs go to stderr; `RUST_LOG` filters them, `RAILYARD_LOG_FORMAT=json` structures them.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(redaction::Stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if std::env::var("RAILYARD_LOG_FORMAT").is_ok_and(|f| f == "json") {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.try_init();
    }
    // Taken before the project is read: a change made while it loads, or right after the
    // server is ready, is seen by the first comparison and reloaded.
    let loaded_fingerprint = fingerprint(&args.dir);
    let (_, loaded) = match open_project(&args.dir, Purpose::Run) {
        Ok(x) => x,
        Err(code) => return code,
    };
    if loaded.has_errors() {
        let renderer = Renderer::new(&loaded, &args.dir, crate::use_color());
        eprint!("{}", renderer.human(&loaded.diagnostics));
        eprintln!(
            "error: the project does not validate ({}); nothing started",
            summary(&loaded.diagnostics)
        );
        return exit::INVALID;
    }
    let data = args.data_dir();
    let store = match Store::open(&data.join("railyard.db")) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot open the store in `{}`: {e}", data.display());
            return exit::USAGE;
        }
    };
    let tokio = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::USAGE;
        }
    };
    tokio.block_on(serve(
        args,
        loaded.project,
        store,
        data.join("railyard.db"),
        loaded_fingerprint,
    ))
}

async fn serve(
    args: Args,
    project: Project,
    store: Store,
    db_path: PathBuf,
    loaded_fingerprint: u64,
) -> u8 {
    match store.checked_at_open() {
        Some(took) => tracing::info!(
            took_ms = took.as_millis() as u64,
            "The previous run did not stop cleanly: the store's integrity was checked before starting."
        ),
        None => tracing::debug!(
            "The previous run stopped cleanly: the store's integrity is checked in the background."
        ),
    }
    let check_in_background = store.checked_at_open().is_none();
    let reclaimed = store.reclaimed();
    if reclaimed != railyard_store::Reclaimed::default() {
        tracing::warn!(
            deliveries = reclaimed.deliveries,
            batches = reclaimed.batches,
            dedupe_keys = reclaimed.keys,
            "The previous run stopped with messages in flight; they are taken back and will be redelivered now."
        );
    }
    redaction::set(&project.secrets);
    let live = Live::new(project);
    for (name, why) in &live.not_started {
        tracing::warn!(pipeline = %name, reason = %why, "Pipeline not started.");
    }
    if std::env::var("RAILYARD_AMQP_URL").map_or(true, |u| u.is_empty())
        && let Err(e) = subscribe_all(&store, &live)
    {
        eprintln!("error: {e}");
        return exit::USAGE;
    }
    let routes = match live.routes() {
        Ok(r) => railyard_connectors::http::shared(r),
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID;
        }
    };
    let boot = format!("{:x}", outputs::now_ms());
    let amqp_topics = std::env::var("RAILYARD_AMQP_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if let Some(url) = &amqp_topics {
        tracing::info!(broker = %railyard_connectors::http::shown_url(url), "Topics are carried by RabbitMQ.");
        declare_broker_topics(url, &live).await;
    }
    let store = Arc::new(store);
    let http = match reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot build the HTTP client: {e}");
            return exit::USAGE;
        }
    };
    let prometheus = metrics::install()
        .map_err(
            |e| tracing::warn!(error = %e, "Metrics recorder not installed; /metrics is empty."),
        )
        .ok();
    metrics::config_valid(true);
    for p in live.project.pipelines.values() {
        metrics::pipeline_version(&p.name, p.version);
    }
    let output_root = args.output_root.clone().unwrap_or_else(|| args.data_dir());
    let rt = Arc::new(Runtime {
        live: std::sync::RwLock::new(Arc::new(live)),
        reload: Mutex::new(json!({ "ok": true, "reloads": 0 })),
        db: railyard_store::AsyncStore::new(store.clone()),
        store,
        memory: Mutex::new(Default::default()),
        prometheus,
        make_id: {
            let counter = AtomicU64::new(1);
            Box::new(move || format!("{boot}-{}", counter.fetch_add(1, Ordering::Relaxed)))
        },
        stopping: AtomicBool::new(false),
        http,
        root: args.dir.clone(),
        output_root,
        publishers: Mutex::new(HashMap::new()),
        amqp_topics,
        brokers: Mutex::new(HashMap::new()),
        store_ok: AtomicBool::new(true),
        store_problem: Mutex::new(None),
    });

    let access = admin::Access::Webhook {
        token: admin::token_from_env(),
        admin_listener: args.admin_listen.is_some(),
    };
    let admin = admin::router(&rt, access);
    let handoff = webhook_handoff(&rt);
    let limits = Arc::new(args.http_limits.limits());
    let webhooks = railyard_connectors::http::router(routes.clone(), handoff, limits.clone());
    let app = admin.merge(webhooks);
    let admin_listener = match args.admin_listen {
        None => None,
        Some(addr) => match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("error: cannot listen on {addr} (--admin-listen): {e}");
                return exit::USAGE;
            }
        },
    };

    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", args.listen);
            return exit::USAGE;
        }
    };
    let mut workers = Workers::default();
    workers.reconcile(&rt, &rt.live());
    // Housekeeping: the store is checked for writes every two seconds (webhooks answer 503
    // while it fails; a change is logged once, not every time), expired dedupe keys are
    // deleted every ten minutes.
    let (purge_stop, purge_rx) = tokio::sync::watch::channel(false);
    // Damage the integrity check found: sticky, unlike a failed write.
    let damaged: Arc<Mutex<Option<String>>> = Arc::default();
    if check_in_background {
        let damaged = damaged.clone();
        tokio::spawn(async move {
            let checked =
                tokio::task::spawn_blocking(move || railyard_store::check_file(&db_path)).await;
            if let Ok(Err(e)) = checked
                && e.is_corrupt()
            {
                tracing::error!(error = %e, "The store is damaged; webhooks answer 503 and /ready is 503. Stop railyard and restore the data directory.");
                *damaged
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e.to_string());
            }
        });
    }
    let purger = {
        let (rt, mut stop) = (rt.clone(), purge_rx);
        tokio::spawn(async move {
            let mut tick = 0u64;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    _ = stop.changed() => return,
                }
                tick += 1;
                let damage = damaged
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                let checked = match damage {
                    Some(d) => Err(d),
                    None => rt
                        .db
                        .run(|s| s.check_writable(outputs::now_ms()))
                        .await
                        .map_err(|e| e.to_string()),
                };
                let ok = checked.is_ok();
                *rt.store_problem
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    checked.as_ref().err().cloned();
                if rt.store_ok.swap(ok, Ordering::Relaxed) != ok {
                    match checked {
                        Err(e) => {
                            tracing::error!(error = %e, "The store cannot be written; webhooks answer 503 and /ready is 503 until it can.")
                        }
                        Ok(()) => tracing::info!("The store can be written again."),
                    }
                }
                if !tick.is_multiple_of(300) {
                    continue;
                }
                let purged = rt.db.run(|s| s.purge_expired(outputs::now_ms())).await;
                if let Err(e) = purged {
                    tracing::warn!(error = %e, "Could not purge expired dedupe keys.");
                }
                // Marks of messages never settled here (a sender that gave up, a message
                // dead-lettered by its source) are kept a week, then purged.
                let week_ago = outputs::now_ms() - 7 * 24 * 3600 * 1000;
                let purged = rt.db.run(move |s| s.purge_output_marks(week_ago)).await;
                if let Err(e) = purged {
                    tracing::warn!(error = %e, "Could not purge old output marks.");
                }
            }
        })
    };
    {
        let live = rt.live();
        eprintln!(
            "railyard: listening on http://{} — {} pipelines running, {} not started (see /health)",
            listener.local_addr().unwrap_or(args.listen),
            live.running.len(),
            live.not_started.len()
        );
    }
    let (server_stop, server_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let server = tokio::spawn(railyard_connectors::http::serve(
        listener,
        app,
        limits.clone(),
        stopped(server_rx.clone()),
    ));
    let admin_server = admin_listener.map(|l| {
        if let Ok(addr) = l.local_addr() {
            eprintln!("railyard: admin endpoints on http://{addr} (/health, /metrics)");
        }
        let app = admin::router(&rt, admin::Access::Anyone);
        tokio::spawn(railyard_connectors::http::serve(
            l,
            app,
            limits.clone(),
            stopped(server_rx.clone()),
        ))
    });

    // Hot reload: file events (debounced) and a slow poll both lead to comparing the files'
    // fingerprint; a valid change swaps in, an invalid one is reported and the running version
    // stays.
    let signal = shutdown_signal();
    tokio::pin!(signal);
    let (changed_tx, mut changed) = tokio::sync::mpsc::unbounded_channel();
    let watcher = if args.no_watch {
        None
    } else {
        watch_project(&args.dir, changed_tx)
    };
    // Events can be missed (network filesystems, a ConfigMap swapping its directory): the poll
    // catches those, more slowly when events work.
    let poll = Duration::from_millis(if watcher.is_some() { 5_000 } else { 500 });
    let mut seen = loaded_fingerprint;
    loop {
        tokio::select! {
            _ = &mut signal => break,
            Some(()) = changed.recv(), if !args.no_watch => {}
            _ = tokio::time::sleep(poll), if !args.no_watch => {}
        }
        let look = || {
            let dir = args.dir.clone();
            async move {
                tokio::task::spawn_blocking(move || fingerprint(&dir))
                    .await
                    .ok()
            }
        };
        let Some(mut now) = look().await else {
            continue;
        };
        if now == seen {
            continue;
        }
        // A writer may be half-way (`>` truncates, then writes): wait until two looks 0.1 s
        // apart agree, so one save is one reload of the finished file. A directory that never
        // settles is reloaded after 5 s anyway.
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            match look().await {
                Some(again) if again != now => now = again,
                _ => break,
            }
        }
        seen = now;
        reload(&rt, &args.dir, &routes, &mut workers).await;
    }
    drop(watcher);
    rt.stopping.store(true, Ordering::Relaxed);
    eprintln!("railyard: stopping: no new requests; finishing what is in flight");
    let _ = server_stop.send(true);
    for server in std::iter::once(server).chain(admin_server) {
        if let Err(e) = server.await {
            eprintln!("error: server task: {e}");
        }
    }
    workers.stop_all().await;
    let _ = purge_stop.send(true);
    let _ = purger.await;
    eprintln!("railyard: stopped");
    exit::OK
}

/// Subscribes every topic consumer of `live`, started or not: what is published for a
/// pipeline that cannot run yet waits durably.
/// With topics on a broker: declares and binds the queue of every consumer group of `live`,
/// started or not, like [`subscribe_all`] for the embedded store. A broker that is down is
/// logged; each consumer declares its own queue when it connects.
async fn declare_broker_topics(url: &str, live: &Live) {
    let subscriptions: Vec<(String, String)> = live
        .project
        .pipelines
        .values()
        .filter_map(consumed_topic)
        .collect();
    if let Err(e) = railyard_connectors::amqp::declare_topic_queues(url, &subscriptions).await {
        tracing::warn!(error = %e, "Could not declare the topic queues on the broker; each consumer declares its own when it connects.");
        return;
    }
    match railyard_connectors::amqp::migrate_group_queues(url, &subscriptions).await {
        Ok(moved) => {
            for (queue, n) in moved {
                tracing::info!(queue = %queue, messages = n, "Moved the messages of an old consumer-group queue into the queues of their topics.");
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "Could not move the messages of old consumer-group queues `railyard.<group>`; they stay there and are tried again at the next start or reload.");
        }
    }
}

fn subscribe_all(store: &Store, live: &Live) -> Result<(), String> {
    for p in live.project.pipelines.values() {
        if let Some((topic, group)) = consumed_topic(p) {
            store
                .subscribe(&topic, &group)
                .map_err(|e| format!("cannot subscribe `{group}` to `{topic}`: {e}"))?;
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
