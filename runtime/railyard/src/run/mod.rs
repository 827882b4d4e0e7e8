//! `railyard run [DIR]`: serve the project's pipelines on the embedded defaults.
//!
//! What runs today: HTTP inputs (webhooks), topic and pipeline inputs over the embedded
//! durable store (`DIR/data/railyard.db`), and topic, pipeline, stdout and file outputs.
//! Pipelines that need a connector not built yet (AMQP, HTTP output, file drop, schedule,
//! stdin) are not started; every topic they consume is still subscribed at start-up, so what
//! is published for them waits durably until they run.
//!
//! Delivery: a webhook gets its 202 only after the engine ran and every output confirmed
//! (topic rows committed, files fsynced) or the message was durably dead-lettered. A topic
//! delivery is acked under the same rule; until then its lease expires and it is redelivered.

mod driver;
mod metrics;
mod outputs;

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
use railyard_core::project::{Pipeline, Project};
use railyard_store::{DeadLetter, KeyClaim, Store, Unit};
use serde_json::{Value, json};

use self::outputs::SendError;
use crate::exit;
use crate::fs::open_project;
use crate::render::{Renderer, summary};

#[derive(clap::Args)]
pub struct Args {
    /// Project directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Address of the HTTP server (webhooks, /health, /ready, /metrics).
    #[arg(long, default_value = "127.0.0.1:8080", env = "RAILYARD_LISTEN")]
    pub listen: SocketAddr,
    /// Directory of the embedded store (default `DIR/data`).
    #[arg(long, env = "RAILYARD_DATA")]
    pub data: Option<PathBuf>,
    /// Do not watch the project for changes (no hot reload).
    #[arg(long)]
    pub no_watch: bool,
}

/// Input connectors this build can run.
const RUNNABLE_INPUTS: &[&str] = &["http", "topic", "pipeline", "schedule", "file", "amqp"];
/// Output connectors this build can run.
const RUNNABLE_OUTPUTS: &[&str] = &["topic", "pipeline", "stdout", "file", "http", "amqp"];

/// Why a pipeline is not running, if it isn't.
fn unsupported(p: &Pipeline) -> Option<String> {
    if !RUNNABLE_INPUTS.contains(&p.input_kind) {
        return Some(format!(
            "its `{}` input is not available in this build yet",
            p.input_kind
        ));
    }
    let mut kinds: Vec<&str> = p.outputs.iter().map(|o| o.kind).collect();
    collect_case_outputs(&p.steps, &mut kinds);
    kinds
        .into_iter()
        .find(|k| !RUNNABLE_OUTPUTS.contains(k))
        .map(|k| format!("its `{k}` output is not available in this build yet"))
}

fn collect_case_outputs(steps: &[railyard_core::project::Step], kinds: &mut Vec<&'static str>) {
    for s in steps {
        if let railyard_core::project::Step::Switch { cases, default, .. } = s {
            for c in cases.iter().chain(default.as_deref()) {
                kinds.extend(c.outputs.iter().map(|o| o.kind));
                collect_case_outputs(&c.steps, kinds);
            }
        }
    }
}

/// The topic a pipeline consumes, if its input is a topic or `pipeline:`.
fn consumed_topic(p: &Pipeline) -> Option<(String, String)> {
    let input = p.def.input.ok()?;
    if let Some(t) = &input.value.topic {
        return Some(match &t.value {
            railyard_core::model::OrShort::Short(name) => (name.clone(), p.name.clone()),
            railyard_core::model::OrShort::Full(f) => (
                f.name.value.clone(),
                f.group.clone().unwrap_or_else(|| p.name.clone()),
            ),
        });
    }
    input
        .value
        .pipeline
        .as_ref()
        .map(|_| (outputs::pipeline_topic(&p.name), p.name.clone()))
}

/// Everything the request handlers and workers share.
struct Runtime {
    /// The configuration in force. A reload swaps it; a message takes a snapshot when it
    /// starts and finishes on it.
    live: std::sync::RwLock<Arc<Live>>,
    /// The last reload's outcome, for `/health`.
    reload: Mutex<Value>,
    store: Arc<Store>,
    /// Reservations, shared by all messages, and batch buffers while the store is failing (see
    /// [`MessageState`]); dedupe keys and batch buffers live in the store.
    memory: Mutex<railyard_core::engine::MemoryState>,
    /// Renders `/metrics`; `None` when another recorder was installed first.
    prometheus: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Makes message ids: `<boot time hex>-<counter>`. A field (not a method) so that an
    /// engine borrowing it lives as long as the runtime.
    make_id: Box<dyn Fn() -> String + Send + Sync>,
    stopping: AtomicBool,
    http: reqwest::Client,
    handle: tokio::runtime::Handle,
    root: PathBuf,
    publishers: Mutex<HashMap<String, Arc<railyard_connectors::amqp::Publisher>>>,
    /// `RAILYARD_AMQP_URL`: when set, topics are RabbitMQ exchanges and queues, so several
    /// `railyard run` processes share them as competing consumers.
    amqp_topics: Option<String>,
    /// Connection state of every AMQP consumer, by worker: `/ready` is false while one is down.
    brokers: Mutex<HashMap<String, Arc<AtomicBool>>>,
    /// Whether the store could be written at the last check (`/ready`, and a watchdog every
    /// few seconds): webhooks answer 503 while it cannot, instead of 202s nobody can keep.
    store_ok: AtomicBool,
}

/// One version of the running configuration: the project and which pipelines run.
struct Live {
    project: Arc<Project>,
    running: BTreeSet<String>,
    not_started: BTreeMap<String, String>,
}

impl Live {
    fn new(project: Project) -> Live {
        let mut running = BTreeSet::new();
        let mut not_started = BTreeMap::new();
        for p in project.pipelines.values() {
            match unsupported(p) {
                None => {
                    running.insert(p.name.clone());
                }
                Some(why) => {
                    not_started.insert(p.name.clone(), why);
                }
            }
        }
        Live {
            project: Arc::new(project),
            running,
            not_started,
        }
    }

    /// The routes of the running HTTP pipelines.
    fn routes(&self) -> Result<HashMap<String, railyard_connectors::http::Route>, String> {
        let routes = railyard_connectors::http::routes(&self.project)
            .map_err(|(path, a, b)| format!("pipelines `{a}` and `{b}` both listen on {path}"))?;
        Ok(routes
            .into_iter()
            .filter(|(_, r)| self.running.contains(&r.pipeline))
            .collect())
    }
}

impl Runtime {
    /// The connection flag of one AMQP consumer, registered for `/ready`.
    fn broker_flag(&self, what: &str) -> Arc<AtomicBool> {
        let mut map = self
            .brokers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(what.to_string())
            .or_insert_with(|| Arc::new(AtomicBool::new(false)))
            .clone()
    }

    /// AMQP consumers that are not connected right now.
    fn brokers_down(&self) -> Vec<String> {
        let map = self
            .brokers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.iter()
            .filter(|(_, up)| !up.load(Ordering::Relaxed))
            .map(|(k, _)| k.clone())
            .collect()
    }

    fn live(&self) -> Arc<Live> {
        match self.live.read() {
            Ok(l) => l.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn next_id(&self) -> String {
        (self.make_id)()
    }

    /// Runs one message through `pipeline` and emits every result durably. Returns the
    /// message id, or an error when an output could not confirm (the caller retries). For
    /// callers on a blocking thread; async callers use [`Runtime::process`] and
    /// [`Runtime::finish`].
    fn handle(
        &self,
        project: &Project,
        pipeline: &Pipeline,
        input: Input,
        unit: Unit,
    ) -> Result<String, Failed> {
        let processed = self.process(project, pipeline, input);
        self.handle
            .block_on(self.finish(project, pipeline, processed, true, unit))
    }

    /// The engine's part of a message: its steps, up to the outputs. CPU only, unless the
    /// pipeline has steps with durable state (dedupe, batch): those write the store.
    fn process<'p>(
        &'p self,
        project: &'p Project,
        pipeline: &'p Pipeline,
        input: Input,
    ) -> Processed<'p> {
        let engine = Engine {
            project,
            ids: &*self.make_id,
            now: &outputs::now_rfc3339,
        };
        let mut state = MessageState::new(&self.store, &self.memory);
        let started = Instant::now();
        metrics::messages(&pipeline.name, "in", 1);
        let (ran, id, original) = match input {
            Input::Payload { body, origin } => {
                let mut origin = origin;
                let id = origin.id.get_or_insert_with(|| self.next_id()).clone();
                // The input as received, for a dead letter: a step may drop fields.
                let original = Message::new(body.clone(), origin.clone(), &|| id.clone());
                let ran = driver::catch(|| engine.ingest(pipeline, body, origin, &mut state));
                (ran, id, original)
            }
            Input::Message(msg) => {
                let id = msg.id().to_string();
                let original = msg.clone();
                let ran = driver::catch(|| engine.process(pipeline, msg, &mut state));
                (ran, id, original)
            }
        };
        let (outcome, panicked) = match ran {
            Ok(outcome) => (outcome, None),
            Err(panic) => {
                tracing::error!(pipeline = %pipeline.name, message_id = %id, panic = %panic, "A step panicked; the message is dead-lettered and the process keeps serving.");
                (Outcome::default(), Some(panic))
            }
        };
        Processed {
            outcome,
            id,
            original,
            unit: state.unit,
            busy: state.busy,
            panicked,
            started,
        }
    }

    /// Sends a processed message to its outputs and settles its durable state as one unit
    /// with `unit` (the caller's acknowledgement and file progress): when every output
    /// confirmed (or the message was dead-lettered), its dedupe keys become committed and its
    /// claimed batches are deleted in the same transaction as the ack; when it will be tried
    /// again they are undone (keys deleted, batches buffered again), so the retry is not
    /// taken for a duplicate of itself. The caller settles its source after an error.
    async fn finish(
        &self,
        project: &Project,
        pipeline: &Pipeline,
        processed: Processed<'_>,
        inline: bool,
        mut unit: Unit,
    ) -> Result<String, Failed> {
        let Processed {
            outcome,
            id,
            original,
            unit: effects,
            busy,
            panicked,
            started,
        } = processed;
        unit.keys = effects.keys;
        unit.batch_claims = effects.batch_claims;
        let emitted = match (busy, panicked) {
            (_, Some(panic)) => {
                self.dead_letter_internal(pipeline, &original, "steps", &panic, inline)
                    .await
            }
            // Another copy holds the key: answering "duplicate" now would lose the message
            // if that copy then fails. Wait for it to settle.
            (Some(key), None) => Err(SendError::held(format!(
                "another copy of this message (dedupe key `{key}`) is in flight; try again"
            ))),
            (None, None) => {
                use futures_util::FutureExt;
                let emit = self.emit(project, pipeline, outcome, &original, inline);
                match std::panic::AssertUnwindSafe(emit).catch_unwind().await {
                    Ok(emitted) => emitted,
                    Err(payload) => {
                        let panic = driver::panic_text(payload.as_ref());
                        tracing::error!(pipeline = %pipeline.name, message_id = %id, panic = %panic, "An output panicked; the message is dead-lettered and the process keeps serving.");
                        self.dead_letter_internal(pipeline, &original, "outputs", &panic, inline)
                            .await
                    }
                }
            }
        };
        metrics::message_duration(&pipeline.name, started.elapsed());
        let emitted = if unit.is_empty() {
            emitted
        } else {
            let store = self.store.clone();
            let ok = emitted.is_ok();
            let settled = outputs::blocking(inline, move || settle_unit(&store, unit, ok)).await;
            match (emitted, settled) {
                (Err(e), _) => Err(e),
                (Ok(()), Ok(Ok(()))) => Ok(()),
                (Ok(()), Ok(Err(e)) | Err(e)) => Err(store_error(e)),
            }
        };
        emitted
            .map(|()| id)
            .map_err(|error| Failed { error, original })
    }

    /// Dead-letters `original` for a panic in `place` (code `internal`).
    async fn dead_letter_internal(
        &self,
        pipeline: &Pipeline,
        original: &Message,
        place: &str,
        panic: &str,
        inline: bool,
    ) -> Result<(), SendError> {
        let error = json!({
            "code": "internal",
            "step": place,
            "message": format!("railyard failed (a bug): {panic}"),
        });
        let entry = dead_letter_entry(pipeline, original, None, place, error);
        let store = self.store.clone();
        outputs::blocking(inline, move || write_dead_letter(&store, &entry))
            .await
            .map_err(store_error)?
    }

    async fn emit(
        &self,
        project: &Project,
        pipeline: &Pipeline,
        outcome: Outcome<'_>,
        original: &Message,
        inline: bool,
    ) -> Result<(), SendError> {
        metrics::messages(&pipeline.name, "dropped", outcome.dropped.len() as u64);
        metrics::messages(&pipeline.name, "failed", outcome.failed.len() as u64);
        let ctx = outputs::OutputCtx {
            amqp_topics: self.amqp_topics.as_deref(),
            publishers: &self.publishers,
            root: &self.root,
            store: &self.store,
            project,
            http: &self.http,
            inline,
        };
        let dead_letter = |msg: &Message, step: &str, error: Value| {
            let entry = dead_letter_entry(pipeline, msg, Some(original), step, error);
            let store = self.store.clone();
            outputs::blocking(inline, move || write_dead_letter(&store, &entry))
        };
        for d in &outcome.delivered {
            let mut delivered = true;
            for (i, o) in d.outputs.iter().enumerate() {
                let started = Instant::now();
                let sent = outputs::send(&ctx, o, &d.message).await;
                let result = match &sent {
                    Ok(()) => metrics::Sent::Ok,
                    Err(e) => match e.class {
                        ErrorClass::Permanent => metrics::Sent::Rejected,
                        ErrorClass::Held => metrics::Sent::Held,
                        ErrorClass::Transient => metrics::Sent::Retry,
                    },
                };
                let label = format!("outputs[{i}] {}", o.kind);
                metrics::output(&pipeline.name, &label, result, started.elapsed());
                match sent {
                    Ok(()) => {}
                    Err(e) if e.class == ErrorClass::Permanent => {
                        let step = format!("output {}", o.kind);
                        let error =
                            json!({ "code": "output-error", "step": step, "message": e.message });
                        dead_letter(&d.message, &step, error)
                            .await
                            .map_err(store_error)??;
                        delivered = false;
                        break;
                    }
                    Err(e) => {
                        // The whole message goes back to its source, to be tried again.
                        let outcome = if e.class == ErrorClass::Held {
                            "held"
                        } else {
                            "retried"
                        };
                        metrics::messages(&pipeline.name, outcome, 1);
                        return Err(e);
                    }
                }
            }
            if delivered {
                metrics::messages(&pipeline.name, "delivered", 1);
            }
        }
        for d in &outcome.dropped {
            tracing::info!(pipeline = %pipeline.name, message_id = d.message.id(), step = %d.step, reason = %d.reason, "Dropped message.");
        }
        for f in &outcome.failed {
            tracing::warn!(pipeline = %pipeline.name, message_id = %f.error.message_id, error = %f.error, "Dead-lettered message.");
            let error = json!({
                "code": f.error.code,
                "step": f.error.step,
                "message": f.error.message,
                "violations": f.error.violations.iter().map(|v| json!({
                    "instance_path": v.instance_path, "schema_path": v.schema_path, "message": v.message
                })).collect::<Vec<_>>(),
            });
            dead_letter(&f.message, &f.error.step, error)
                .await
                .map_err(store_error)??;
        }
        Ok(())
    }

    /// Emits every buffered batch of `pipeline` (its window elapsed, or the runtime stops).
    /// A batch whose outputs fail stays buffered and goes out at the next flush.
    fn flush_batches(&self, project: &Project, pipeline: &Pipeline) {
        let engine = Engine {
            project,
            ids: &*self.make_id,
            now: &outputs::now_rfc3339,
        };
        let mut state = MessageState::new(&self.store, &self.memory);
        let outcome = engine.flush(pipeline, &mut state);
        let unit = std::mem::take(&mut state.unit);
        if outcome.delivered.is_empty() && outcome.failed.is_empty() && unit.is_empty() {
            return;
        }
        // A flushed batch has no single input: its dead letters keep the batch itself.
        let original = outcome
            .delivered
            .first()
            .map(|d| d.message.clone())
            .or_else(|| outcome.failed.first().map(|f| f.message.clone()));
        let Some(original) = original else {
            let _ = settle_unit(&self.store, unit, true);
            return;
        };
        let emitted = self
            .handle
            .block_on(self.emit(project, pipeline, outcome, &original, true));
        if let Err(e) = &emitted {
            tracing::warn!(pipeline = %pipeline.name, error = %e, "Batch output failed; the batch stays buffered for the next flush.");
        }
        if let Err(e) = settle_unit(&self.store, unit, emitted.is_ok()) {
            // The claim expires by itself: the batch goes out again (at least once).
            tracing::error!(pipeline = %pipeline.name, error = %e, "Could not settle a batch claim; it will be emitted again when the claim expires.");
        }
    }
}

/// A message whose attempt failed: why, and the message as it entered the pipeline (what a
/// dead letter keeps after the last attempt).
struct Failed {
    error: SendError,
    original: Message,
}

impl Failed {
    /// A failure before the message could be built (its pipeline is gone).
    fn early(rt: &Runtime, error: SendError, input: Input) -> Failed {
        let original = match input {
            Input::Message(m) => m,
            Input::Payload { body, origin } => Message::new(body, origin, &|| rt.next_id()),
        };
        Failed { error, original }
    }
}

/// A message run through its pipeline's steps ([`Runtime::process`]), its outputs still to
/// send ([`Runtime::finish`]).
struct Processed<'p> {
    outcome: Outcome<'p>,
    id: String,
    /// The message as it entered the pipeline.
    original: Message,
    /// The state it changed: dedupe keys claimed, batches claimed.
    unit: Unit,
    /// A dedupe key another copy of the message holds (in flight).
    busy: Option<String>,
    /// What a step's panic said: the message is dead-lettered (code `internal`).
    panicked: Option<String>,
    started: Instant,
}

/// Settles a unit of work: committed with its ack when the message is done (`done`), else
/// undone (keys deleted, batch claims released; a delivery is left to its caller). When the
/// commit fails, the unit is undone so that nothing stays pending in this process.
fn settle_unit(store: &Store, mut unit: Unit, done: bool) -> Result<(), String> {
    if done {
        match store.commit_unit(&unit) {
            Ok(true) => return Ok(()),
            // The lease was taken over: the new holder redelivers; let it claim the keys.
            Ok(false) => {
                unit.ack = None;
                return store
                    .release_unit(&unit, 0, false)
                    .map_err(|e| format!("store: {e}"));
            }
            Err(e) => {
                unit.ack = None;
                let _ = store.release_unit(&unit, 0, false);
                return Err(format!("store: {e}"));
            }
        }
    }
    unit.ack = None;
    store
        .release_unit(&unit, 0, false)
        .map_err(|e| format!("store: {e}"))
}

/// A dead letter of `msg` (the body at the failing step) that keeps `original`, the message
/// as it entered the pipeline, when that is another body.
fn dead_letter_entry(
    pipeline: &Pipeline,
    msg: &Message,
    original: Option<&Message>,
    step: &str,
    error: Value,
) -> DeadLetter {
    metrics::messages(&pipeline.name, "dead_lettered", 1);
    DeadLetter {
        pipeline: pipeline.name.clone(),
        pipeline_version: pipeline.version,
        step: step.to_string(),
        error,
        original: Some(original.unwrap_or(msg).envelope().clone()),
        message: msg.envelope().clone(),
        attempts: msg
            .meta()
            .get("attempt")
            .and_then(Value::as_u64)
            .unwrap_or(1) as u32,
        at_ms: outputs::now_ms(),
    }
}

fn write_dead_letter(store: &Store, entry: &DeadLetter) -> Result<(), SendError> {
    store
        .dead_letter(entry)
        .map(drop)
        .map_err(|e| store_error(format!("dead-letter store: {e}")))
}

/// The store (or the blocking pool in front of it) failed: retry later.
fn store_error(message: String) -> SendError {
    SendError::transient(message)
}

#[derive(Clone)]
enum Input {
    Payload { body: Value, origin: Origin },
    Message(Message),
}

/// How long a batch claimed for emission stays claimed: if its holder dies, the batch goes out
/// again after this.
const BATCH_CLAIM_MS: i64 = 10 * 60 * 1000;

/// Envelopes back to messages (a row that is not one is skipped: only the store writes them).
fn messages(envelopes: Vec<Value>) -> Vec<Message> {
    envelopes
        .into_iter()
        .filter_map(Message::from_envelope)
        .collect()
}

/// Engine state for one message: dedupe keys and batch buffers in the durable store;
/// reservations in memory, shared by all messages (the durable version comes with the store's
/// inventory tables). Only reservations take the shared lock, so messages run through their
/// pipelines in parallel. What the message changes in the store is collected in `unit`,
/// settled when the message is done ([`settle_unit`]).
struct MessageState<'a> {
    store: &'a Store,
    memory: &'a Mutex<railyard_core::engine::MemoryState>,
    /// Dedupe keys claimed (pending) and batches claimed while the message ran.
    unit: Unit,
    /// A dedupe key found pending: another copy of the message is in flight.
    busy: Option<String>,
    /// When each step under way started (a switch's case steps nest inside it), for the
    /// latency histograms.
    steps: Vec<Instant>,
}

impl<'a> MessageState<'a> {
    fn new(
        store: &'a Store,
        memory: &'a Mutex<railyard_core::engine::MemoryState>,
    ) -> MessageState<'a> {
        MessageState {
            store,
            memory,
            unit: Unit::default(),
            busy: None,
            steps: Vec::new(),
        }
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, railyard_core::engine::MemoryState> {
        self.memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl State for MessageState<'_> {
    fn seen(&mut self, pipeline: &str, key: &str, ttl: Duration) -> bool {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        match self
            .store
            .claim_key(pipeline, key, ttl_ms, outputs::now_ms())
        {
            Ok(KeyClaim::Claimed) => {
                self.unit.keys.push((pipeline.to_string(), key.to_string()));
                false
            }
            Ok(KeyClaim::Committed) => true,
            Ok(KeyClaim::Pending) => {
                self.busy.get_or_insert_with(|| key.to_string());
                true
            }
            Err(e) => {
                // Failing open delivers a possible duplicate; failing closed would drop a
                // message. At-least-once prefers the duplicate.
                tracing::error!(error = %e, "Dedupe store unavailable; treating key as new.");
                false
            }
        }
    }
    fn reserve(
        &mut self,
        location: &str,
        lines: &[(String, i64)],
        partial: bool,
    ) -> railyard_core::engine::Reservation {
        self.memory().reserve(location, lines, partial)
    }
    fn batch_push(
        &mut self,
        buffer: &str,
        message: Message,
        count: Option<u32>,
    ) -> Option<Vec<Message>> {
        let added = self.store.batch_add(
            buffer,
            message.id(),
            message.envelope(),
            count,
            outputs::now_ms(),
            BATCH_CLAIM_MS,
        );
        match added {
            Ok(Some(claim)) => {
                self.unit.batch_claims.push(claim.token);
                Some(messages(claim.messages))
            }
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, "Batch store unavailable; buffering in memory.");
                self.memory().batch_push(buffer, message, count)
            }
        }
    }
    fn batch_drain(&mut self, prefix: &str) -> Vec<(String, Vec<Message>)> {
        let mut out = match self
            .store
            .batch_claim_all(prefix, outputs::now_ms(), BATCH_CLAIM_MS)
        {
            Ok(claims) => claims
                .into_iter()
                .map(|c| {
                    self.unit.batch_claims.push(c.token);
                    (c.buffer, messages(c.messages))
                })
                .collect(),
            Err(e) => {
                tracing::error!(error = %e, "Batch store unavailable; flushing only what memory holds.");
                Vec::new()
            }
        };
        // What was buffered in memory while the store failed.
        out.extend(self.memory().batch_drain(prefix));
        out
    }
    fn step_started(&mut self, _pipeline: &str, _step: &str) {
        self.steps.push(Instant::now());
    }
    fn step_finished(
        &mut self,
        pipeline: &str,
        step: &str,
        counts: railyard_core::engine::StepCounts,
    ) {
        let took = self.steps.pop().map(|t| t.elapsed()).unwrap_or_default();
        metrics::step(pipeline, step, counts, took);
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
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if std::env::var("RAILYARD_LOG_FORMAT").is_ok_and(|f| f == "json") {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.try_init();
    }
    let (_, loaded) = match open_project(&args.dir, true) {
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
    let data = args.data.clone().unwrap_or_else(|| args.dir.join("data"));
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
    tokio.block_on(serve(args, loaded.project, store))
}

async fn serve(args: Args, project: Project, store: Store) -> u8 {
    let reclaimed = store.reclaimed();
    if reclaimed != railyard_store::Reclaimed::default() {
        tracing::warn!(
            deliveries = reclaimed.deliveries,
            batches = reclaimed.batches,
            dedupe_keys = reclaimed.keys,
            "The previous run stopped with messages in flight; they are taken back and will be redelivered now."
        );
    }
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
        tracing::info!(broker = %without_credentials(url), "Topics are carried by RabbitMQ.");
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
    let rt = Arc::new(Runtime {
        live: std::sync::RwLock::new(Arc::new(live)),
        reload: Mutex::new(json!({ "ok": true, "reloads": 0 })),
        store,
        memory: Mutex::new(Default::default()),
        prometheus,
        make_id: {
            let counter = AtomicU64::new(1);
            Box::new(move || format!("{boot}-{}", counter.fetch_add(1, Ordering::Relaxed)))
        },
        stopping: AtomicBool::new(false),
        http,
        handle: tokio::runtime::Handle::current(),
        root: args.dir.clone(),
        publishers: Mutex::new(HashMap::new()),
        amqp_topics,
        brokers: Mutex::new(HashMap::new()),
        store_ok: AtomicBool::new(true),
    });

    let handoff: Handoff = {
        let rt = rt.clone();
        Arc::new(move |inbound: Inbound| {
            let rt = rt.clone();
            Box::pin(async move {
                if !rt.store_ok.load(Ordering::Relaxed) {
                    return Err(Unavailable {
                        retry_after_secs: 5,
                        reason: "the store cannot be written (disk full or damaged); see /ready"
                            .to_string(),
                    });
                }
                let live = rt.live();
                let origin = Origin {
                    correlation_id: inbound.correlation_id,
                    source: format!("http:{}", inbound.pipeline),
                    headers: inbound.headers,
                    ..Origin::default()
                };
                let input = Input::Payload {
                    body: inbound.body,
                    origin,
                };
                run_message(&rt, &live, &inbound.pipeline, input)
                    .await
                    .map_err(|failed| webhook_unavailable(&live, &inbound.pipeline, failed))
            })
        })
    };

    let admin = {
        let health_rt = rt.clone();
        let ready_rt = rt.clone();
        let metrics_rt = rt.clone();
        axum::Router::new()
            .route(
                "/health",
                get(move || {
                    let rt = health_rt.clone();
                    async move {
                        let live = rt.live();
                        let reload = rt.reload.lock().map(|r| r.clone()).unwrap_or(Value::Null);
                        let pipelines: serde_json::Map<String, Value> = live
                            .project
                            .pipelines
                            .values()
                            .map(|p| {
                                (
                                    p.name.clone(),
                                    json!({ "version": p.version, "revision": p.revision }),
                                )
                            })
                            .collect();
                        axum::Json(json!({
                            "status": "ok",
                            "running": live.running,
                            "pipelines": pipelines,
                            "not_started": live.not_started,
                            "reload": reload,
                        }))
                    }
                }),
            )
            .route(
                "/ready",
                get(move || {
                    let rt = ready_rt.clone();
                    async move {
                        let down = rt.brokers_down();
                        // A real (tiny) write: a full disk or a damaged file fails it.
                        let store = rt.store.clone();
                        let writable = tokio::task::spawn_blocking(move || {
                            store
                                .check_writable(outputs::now_ms())
                                .map_err(|e| e.to_string())
                        })
                        .await
                        .unwrap_or_else(|e| Err(e.to_string()));
                        rt.store_ok.store(writable.is_ok(), Ordering::Relaxed);
                        let ok = !rt.stopping.load(Ordering::Relaxed)
                            && writable.is_ok()
                            && down.is_empty();
                        let status = if ok {
                            axum::http::StatusCode::OK
                        } else {
                            axum::http::StatusCode::SERVICE_UNAVAILABLE
                        };
                        (
                            status,
                            axum::Json(json!({
                                "ready": ok,
                                "brokers_down": down,
                                "store": writable.err().unwrap_or_else(|| "ok".to_string()),
                            })),
                        )
                    }
                }),
            )
            .route(
                "/metrics",
                get(move || {
                    let rt = metrics_rt.clone();
                    async move {
                        if let Ok(brokers) = rt.brokers.lock() {
                            for (worker, up) in brokers.iter() {
                                metrics::broker(worker, up.load(Ordering::Relaxed));
                            }
                        }
                        rt.prometheus
                            .as_ref()
                            .map(|h| h.render())
                            .unwrap_or_default()
                    }
                }),
            )
    };
    let app = admin.merge(railyard_connectors::http::router(routes.clone(), handoff));

    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", args.listen);
            return exit::USAGE;
        }
    };
    let mut workers = Workers::default();
    workers.reconcile(&rt, &rt.live());
    // Housekeeping: the store is checked for writes every five seconds (webhooks answer 503
    // while it fails; a change is logged once, not every time), expired dedupe keys are
    // deleted every ten minutes.
    let (purge_stop, purge_rx) = tokio::sync::watch::channel(false);
    let purger = {
        let (rt, mut stop) = (rt.clone(), purge_rx);
        tokio::spawn(async move {
            let mut tick = 0u64;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    _ = stop.changed() => return,
                }
                tick += 1;
                let rt2 = rt.clone();
                let checked = tokio::task::spawn_blocking(move || {
                    rt2.store.check_writable(outputs::now_ms())
                })
                .await;
                let ok = matches!(checked, Ok(Ok(())));
                if rt.store_ok.swap(ok, Ordering::Relaxed) != ok {
                    match checked {
                        Ok(Err(e)) => {
                            tracing::error!(error = %e, "The store cannot be written; webhooks answer 503 and /ready is 503 until it can.")
                        }
                        Err(e) => tracing::error!(error = %e, "The store check failed."),
                        Ok(Ok(())) => tracing::info!("The store can be written again."),
                    }
                }
                if !tick.is_multiple_of(120) {
                    continue;
                }
                let rt2 = rt.clone();
                let purged =
                    tokio::task::spawn_blocking(move || rt2.store.purge_expired(outputs::now_ms()))
                        .await;
                if let Ok(Err(e)) = purged {
                    tracing::warn!(error = %e, "Could not purge expired dedupe keys.");
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
    let (server_stop, mut server_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_rx.wait_for(|stop| *stop).await;
            })
            .into_future(),
    );

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
    let mut seen = fingerprint(&args.dir);
    loop {
        tokio::select! {
            _ = &mut signal => break,
            Some(()) = changed.recv(), if !args.no_watch => {}
            _ = tokio::time::sleep(poll), if !args.no_watch => {}
        }
        let dir = args.dir.clone();
        let now = tokio::task::spawn_blocking(move || fingerprint(&dir))
            .await
            .unwrap_or(seen);
        if now != seen {
            seen = now;
            reload(&rt, &args.dir, &routes, &mut workers).await;
        }
    }
    drop(watcher);
    rt.stopping.store(true, Ordering::Relaxed);
    eprintln!("railyard: stopping: no new requests; finishing what is in flight");
    let _ = server_stop.send(true);
    match server.await {
        Ok(Err(e)) => eprintln!("error: server: {e}"),
        Err(e) => eprintln!("error: server task: {e}"),
        Ok(Ok(())) => {}
    }
    workers.stop_all().await;
    let _ = purge_stop.send(true);
    let _ = purger.await;
    eprintln!("railyard: stopped");
    exit::OK
}

/// The answer to a webhook whose message could not be handed off: 503 with a `Retry-After`
/// from the pipeline's policy (the platform's retry is the next attempt; its attempt number
/// is not known here, so the first retry's delay), at least one second.
fn webhook_unavailable(live: &Live, pipeline: &str, failed: Failed) -> Unavailable {
    let e = failed.error;
    let wait = live
        .project
        .pipelines
        .get(pipeline)
        .map(|p| match driver::verdict(p, 1, Some(&e)) {
            Verdict::Retry(d) | Verdict::Hold(d) => d,
            Verdict::Ack | Verdict::DeadLetter => railyard_core::delivery::HOLD_DELAY,
        })
        .unwrap_or(railyard_core::delivery::HOLD_DELAY);
    Unavailable {
        retry_after_secs: wait.as_secs().max(1),
        reason: e.message,
    }
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

/// `amqp://user:secret@host/vhost` without `user:secret@`, for logs.
fn without_credentials(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

fn hash_of(text: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// The directories whose files make up a project (what reload watches and fingerprints).
const PROJECT_DIRS: [&str; 5] = ["pipelines", "mappings", "schemas", "plugins", "tables"];

type Watcher = notify_debouncer_full::Debouncer<
    notify_debouncer_full::notify::RecommendedWatcher,
    notify_debouncer_full::RecommendedCache,
>;

/// Watches the project's directories (recursively) and its root (for directories appearing or
/// being swapped), sending a unit on `tx` per debounced burst of events. `None`, with a
/// warning, when the platform refuses: the caller polls instead.
fn watch_project(
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
fn fingerprint(dir: &std::path::Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut entries = Vec::new();
    for sub in PROJECT_DIRS {
        for e in walkdir::WalkDir::new(dir.join(sub))
            .follow_links(true)
            .into_iter()
            .flatten()
        {
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

async fn reload(
    rt: &Arc<Runtime>,
    dir: &std::path::Path,
    routes: &railyard_connectors::http::SharedRoutes,
    workers: &mut Workers,
) {
    let dir2 = dir.to_path_buf();
    let loaded =
        tokio::task::spawn_blocking(move || open_project(&dir2, true).map(|(_, l)| l)).await;
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
        let text = Renderer::new(&loaded, dir, false).human(&loaded.diagnostics);
        tracing::error!(diagnostics = %summary(&loaded.diagnostics), "Reload rejected; the running version stays.\n{text}");
        metrics::reload(false);
        let (reloads, failed) = (count("reloads"), count("failed") + 1);
        if let Ok(mut r) = rt.reload.lock() {
            *r = json!({ "ok": false, "reloads": reloads, "failed": failed, "diagnostics": text });
        }
        return;
    }
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

/// Starts one background task, given its stop signal.
type StartWorker =
    Box<dyn FnOnce(tokio::sync::watch::Receiver<bool>) -> tokio::task::JoinHandle<()>>;

/// The background tasks of the running configuration, by what they do: a task whose spec
/// disappears on reload is stopped (it finishes what it holds), a new spec gets a task, an
/// unchanged one keeps running untouched.
#[derive(Default)]
struct Workers {
    tasks: HashMap<
        String,
        (
            tokio::sync::watch::Sender<bool>,
            tokio::task::JoinHandle<()>,
        ),
    >,
}

impl Workers {
    fn reconcile(&mut self, rt: &Arc<Runtime>, live: &Live) {
        let mut wanted: HashMap<String, StartWorker> = HashMap::new();
        for p in live.project.pipelines.values() {
            if !live.running.contains(&p.name) {
                continue;
            }
            let name = p.name.clone();
            if let Some((topic, group)) = consumed_topic(p) {
                let rt2 = rt.clone();
                let n = name.clone();
                match rt.amqp_topics.clone() {
                    None => {
                        wanted.insert(
                            format!("consume {name} {topic} {group}"),
                            Box::new(move |stop| tokio::spawn(consume(rt2, n, topic, group, stop))),
                        );
                    }
                    Some(url) => {
                        let cfg = railyard_connectors::amqp::ConsumerConfig {
                            url,
                            queue: railyard_connectors::amqp::topic_queue(&topic, &group),
                            declare: true,
                            prefetch: 32,
                            bindings: vec![(
                                railyard_connectors::amqp::TOPICS_EXCHANGE.to_string(),
                                topic.clone(),
                            )],
                            connected: rt
                                .broker_flag(&format!("amqp-topic {name} {topic} {group}")),
                        };
                        wanted.insert(
                            format!("amqp-topic {name} {topic} {group}"),
                            Box::new(move |stop| {
                                tokio::spawn(amqp_topic_input(rt2, n, topic, group, cfg, stop))
                            }),
                        );
                    }
                }
            }
            if let Some(config) = p.def.input.ok().and_then(|i| i.value.schedule.as_ref()) {
                match railyard_connectors::schedule::Schedule::from_config(&config.value) {
                    Ok(schedule) => {
                        let rt = rt.clone();
                        let n = name.clone();
                        wanted.insert(
                            format!("schedule {name} {:?}", config.value),
                            Box::new(move |stop| tokio::spawn(scheduled(rt, n, schedule, stop))),
                        );
                    }
                    Err(e) => {
                        tracing::error!(pipeline = %name, error = %e, "Schedule not started.")
                    }
                }
            }
            if let Some(config) = p.def.input.ok().and_then(|i| i.value.amqp.as_ref()) {
                let a = &config.value;
                // The worker's key changes with its whole config, but shows (on `/ready`, in
                // logs) only the queue and a hash: the config holds the broker's credentials.
                let amqp_key = format!(
                    "amqp {name} {} {:016x}",
                    a.queue.value,
                    hash_of(&format!("{a:?}"))
                );
                let cfg = railyard_connectors::amqp::ConsumerConfig {
                    url: outputs::amqp_url(a.url.as_ref().map(|u| u.value.as_str())),
                    queue: a.queue.value.clone(),
                    declare: a.declare != Some(false),
                    prefetch: a.prefetch.unwrap_or(64),
                    bindings: a
                        .bindings
                        .iter()
                        .map(|b| {
                            (
                                b.exchange.value.clone(),
                                b.routing_key.clone().unwrap_or_default(),
                            )
                        })
                        .collect(),
                    connected: rt.broker_flag(&amqp_key),
                };
                let rt = rt.clone();
                let n = name.clone();
                wanted.insert(
                    amqp_key,
                    Box::new(move |stop| tokio::spawn(amqp_input(rt, n, cfg, stop))),
                );
            }
            if let Some(config) = p.def.input.ok().and_then(|i| i.value.file.as_ref()) {
                let drop = railyard_connectors::file::FileDrop::new(&config.value, &rt.root);
                let rt = rt.clone();
                let n = name.clone();
                wanted.insert(
                    format!("file {name} {:?}", config.value),
                    Box::new(move |stop| tokio::spawn(file_drop(rt, n, drop, stop))),
                );
            }
            // Batches are emitted when their window elapses (checked at the shortest window of
            // the pipeline), and once more when the task stops.
            let period = p
                .steps
                .iter()
                .filter_map(|s| match s {
                    railyard_core::project::Step::Batch { window, .. } => {
                        Some(window.unwrap_or(Duration::from_secs(1)))
                    }
                    _ => None,
                })
                .min();
            if let Some(period) = period {
                let rt = rt.clone();
                let n = name.clone();
                wanted.insert(
                    format!("batch {name} {period:?}"),
                    Box::new(move |stop| tokio::spawn(batch_flusher(rt, n, period, stop))),
                );
            }
        }
        // Forget the connection state of consumers that are no longer configured.
        rt.brokers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|k, _| wanted.contains_key(k));
        let gone: Vec<String> = self
            .tasks
            .keys()
            .filter(|k| !wanted.contains_key(*k))
            .cloned()
            .collect();
        for key in gone {
            if let Some((stop, _task)) = self.tasks.remove(&key) {
                // The task sees the signal, finishes what it holds and ends on its own.
                let _ = stop.send(true);
                tracing::info!(task = %key, "Stopped a worker no longer in the configuration.");
            }
        }
        for (key, start) in wanted {
            if let std::collections::hash_map::Entry::Vacant(slot) = self.tasks.entry(key) {
                tracing::debug!(task = %slot.key(), "Started a worker.");
                let (tx, rx) = tokio::sync::watch::channel(false);
                slot.insert((tx, start(rx)));
            }
        }
    }

    async fn stop_all(self) {
        let mut handles = Vec::new();
        for (_, (stop, task)) in self.tasks {
            let _ = stop.send(true);
            handles.push(task);
        }
        for h in handles {
            let _ = h.await;
        }
    }
}

async fn batch_flusher(
    rt: Arc<Runtime>,
    pipeline: String,
    period: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(period) => false,
            _ = stop.changed() => true,
        };
        let (rt2, n2) = (rt.clone(), pipeline.clone());
        let _ = tokio::task::spawn_blocking(move || {
            let live = rt2.live();
            if let Some(p) = live.project.pipelines.get(&n2) {
                rt2.flush_batches(&live.project, p);
            }
        })
        .await;
        if stopping {
            return;
        }
    }
}

/// Consumes one topic for one pipeline: lease, process, emit, ack. A delivery whose outputs
/// fail is not acked; its lease expires and it comes back.
async fn consume(
    rt: Arc<Runtime>,
    pipeline: String,
    topic: String,
    group: String,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    const LEASE_MS: i64 = 30_000;
    let mut errors = driver::Throttle::default();
    loop {
        if *stop.borrow() {
            return;
        }
        let rt2 = rt.clone();
        let (p2, t2, g2) = (pipeline.clone(), topic.clone(), group.clone());
        let handled = tokio::task::spawn_blocking(move || -> Result<usize, String> {
            let leased = rt2
                .store
                .lease(&t2, &g2, 32, LEASE_MS, outputs::now_ms())
                .map_err(|e| e.to_string())?;
            let live = rt2.live();
            let Some(p) = live.project.pipelines.get(&p2) else {
                return Ok(0);
            };
            let n = leased.len();
            for delivery in leased {
                let msg = topic_message(
                    &rt2,
                    delivery.message.clone(),
                    &t2,
                    &g2,
                    format!("{t2}#{}", delivery.seq),
                    delivery.attempt,
                );
                let unit = Unit {
                    ack: Some(delivery.clone()),
                    ..Unit::default()
                };
                if let Err(failed) = rt2.handle(&live.project, p, Input::Message(msg), unit) {
                    settle_delivery(&rt2, p, &delivery, failed);
                }
            }
            Ok(n)
        })
        .await;
        let idle = match handled {
            Ok(Ok(n)) => n == 0,
            Ok(Err(e)) => {
                if let Some(suppressed) = errors.admit(Instant::now()) {
                    tracing::error!(topic = %topic, error = %e, repeated = suppressed, "Store unavailable; consumer waits.");
                }
                true
            }
            Err(_) => true,
        };
        if idle {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = stop.changed() => {}
            }
        }
    }
}

/// Carries out the verdict on a store-topic delivery whose attempt `failed` (on success the
/// delivery was acked with the message's unit of work already).
fn settle_delivery(rt: &Runtime, p: &Pipeline, delivery: &railyard_store::Leased, failed: Failed) {
    let Failed {
        error: e,
        original: mut msg,
    } = failed;
    let e = &e;
    let now = outputs::now_ms();
    let settled = match driver::verdict(p, delivery.attempt, Some(e)) {
        Verdict::Ack => Ok(()),
        Verdict::Hold(wait) => {
            tracing::warn!(pipeline = %p.name, error = %e, "Destination unreachable; the delivery is held until it is back.");
            rt.store.release(delivery, now + millis(wait)).map(drop)
        }
        Verdict::Retry(wait) => {
            tracing::warn!(pipeline = %p.name, error = %e, attempt = delivery.attempt, retry_in_ms = millis(wait), "Output failed; the delivery will be retried.");
            rt.store.nack(delivery, now + millis(wait)).map(drop)
        }
        Verdict::DeadLetter => {
            tracing::warn!(pipeline = %p.name, error = %e, attempts = delivery.attempt, class = e.class.as_str(), "Dead-lettering.");
            msg.set_meta("attempt", Value::from(delivery.attempt));
            let entry = dead_letter_entry(p, &msg, None, "output", exhausted(e));
            let unit = Unit {
                dead_letters: vec![entry],
                ack: Some(delivery.clone()),
                ..Unit::default()
            };
            rt.store.commit_unit(&unit).map(drop)
        }
    };
    if let Err(err) = settled {
        // The lease runs out and the delivery comes back: nothing is lost.
        tracing::error!(pipeline = %p.name, error = %err, "Could not settle a delivery; it comes back when its lease runs out.");
    }
}

/// The dead letter's error for a message whose last attempt failed with `e`.
fn exhausted(e: &SendError) -> Value {
    let code = match e.class {
        ErrorClass::Permanent => "output-error",
        _ => "retries-exhausted",
    };
    json!({ "code": code, "class": e.class.as_str(), "message": e.message })
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Picks up dropped files (POS batch exports): each record is handed to the pipeline, progress
/// is recorded per file content key after every record, and the file moves to done/ when all
/// records are handed off (failed/ with a `.reason` when it cannot be read). After a crash the
/// file is resumed after the last recorded record; a re-sent copy of a finished file is moved to
/// done/ without posting anything. A crash between a hand-off and its progress row re-posts
/// that one record: at-least-once, never lost.
async fn file_drop(
    rt: Arc<Runtime>,
    pipeline: String,
    drop: railyard_connectors::file::FileDrop,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    // The drop directory is where the stores' SFTP jobs write: create it rather than warn
    // about it on every poll.
    if let Err(e) = std::fs::create_dir_all(drop.dir()) {
        tracing::error!(pipeline = %pipeline, dir = %drop.dir().display(), error = %e, "Cannot create the drop directory.");
    }
    let drop = Arc::new(drop);
    loop {
        if *stop.borrow() {
            return;
        }
        let (rt2, p2, d2) = (rt.clone(), pipeline.clone(), drop.clone());
        let _ = tokio::task::spawn_blocking(move || drain_files(&rt2, &p2, &d2)).await;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Hands one file record to the pipeline until it is done: delivered, or dead-lettered after
/// its last attempt (the pipeline's `on_error.retry`), its file progress recorded in the same
/// transaction either way. False when the runtime stops or the store fails first (the file
/// resumes at this record).
#[allow(clippy::too_many_arguments)]
fn drain_record(
    rt: &Runtime,
    project: &Project,
    p: &Pipeline,
    name: &str,
    key: &str,
    record: railyard_connectors::file::Record,
    origin: Origin,
    done: u64,
    total: u64,
) -> bool {
    use railyard_store::{FileMark, FileProgress};
    let mark = FileMark {
        pipeline: p.name.clone(),
        key: key.to_string(),
        progress: FileProgress {
            handed_off: done + 1,
            complete: done + 1 == total,
        },
        now_ms: outputs::now_ms(),
    };
    let mut attempt = 1u32;
    loop {
        let unit = Unit {
            file: Some(mark.clone()),
            ..Unit::default()
        };
        let input = Input::Payload {
            body: record.value.clone(),
            origin: origin.clone(),
        };
        let Err(failed) = rt.handle(project, p, input, unit) else {
            return true;
        };
        let e = &failed.error;
        let wait = match driver::verdict(p, attempt, Some(e)) {
            Verdict::Ack => return true,
            Verdict::Retry(wait) => {
                tracing::warn!(pipeline = %p.name, file = %name, line = record.line, attempt, error = %e, retry_in_ms = millis(wait), "Output failed; the record will be retried.");
                attempt += 1;
                wait
            }
            Verdict::Hold(wait) => {
                tracing::warn!(pipeline = %p.name, file = %name, line = record.line, error = %e, "Destination unreachable; the record is held until it is back.");
                wait
            }
            Verdict::DeadLetter => {
                tracing::warn!(pipeline = %p.name, file = %name, line = record.line, attempts = attempt, error = %e, "Dead-lettering the record.");
                let mut msg = failed.original;
                msg.set_meta("attempt", Value::from(attempt));
                let unit = Unit {
                    dead_letters: vec![dead_letter_entry(p, &msg, None, "output", exhausted(e))],
                    file: Some(mark.clone()),
                    ..Unit::default()
                };
                match rt.store.commit_unit(&unit) {
                    Ok(_) => return true,
                    Err(err) => {
                        tracing::error!(pipeline = %p.name, file = %name, error = %err, "Could not dead-letter a record; the file resumes at it.");
                        return false;
                    }
                }
            }
        };
        if !pause(rt, wait) {
            return false;
        }
    }
}

/// Waits `wait` on a blocking thread, in short steps; false as soon as the runtime stops.
fn pause(rt: &Runtime, wait: Duration) -> bool {
    let until = Instant::now() + wait;
    while Instant::now() < until {
        if rt.stopping.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep((until - Instant::now()).min(Duration::from_millis(100)));
    }
    !rt.stopping.load(Ordering::Relaxed)
}

fn drain_files(rt: &Runtime, pipeline: &str, drop: &railyard_connectors::file::FileDrop) {
    use railyard_store::FileProgress;
    let live = rt.live();
    let Some(p) = live.project.pipelines.get(pipeline) else {
        return;
    };
    for path in drop.poll(std::time::SystemTime::now()) {
        if rt.stopping.load(Ordering::Relaxed) {
            return;
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let railyard_connectors::file::ReadFile {
            key,
            records,
            snapshot,
        } = match drop.read_checked(&path, std::time::SystemTime::now()) {
            Ok(x) => x,
            // Still being written: the next poll looks again.
            Err(e) if e.is_not_ready() => {
                tracing::debug!(pipeline, file = %name, error = %e, "Dropped file not complete yet.");
                continue;
            }
            Err(e) => {
                tracing::warn!(pipeline, file = %name, error = %e, "Rejected dropped file.");
                let _ = drop.finish(&path, Err(e.to_string()));
                continue;
            }
        };
        let progress = match rt.store.file_progress(pipeline, &key) {
            Ok(p) => p.unwrap_or(FileProgress {
                handed_off: 0,
                complete: false,
            }),
            Err(e) => {
                tracing::error!(pipeline, error = %e, "Store unavailable; file left for the next poll.");
                return;
            }
        };
        let total = records.len() as u64;
        let mut done = progress.handed_off;
        if !progress.complete {
            for record in records.into_iter().skip(progress.handed_off as usize) {
                // Stopping mid-file is safe: progress is recorded per record, and the file
                // resumes after the last one handed off.
                if rt.stopping.load(Ordering::Relaxed) {
                    return;
                }
                let mut headers = serde_json::Map::new();
                headers.insert("file".into(), Value::String(name.clone()));
                headers.insert("line".into(), Value::from(record.line));
                // The id is the file's content and the line: a record posted again after a crash
                // (between its hand-off and its progress row) carries the same id, so a
                // dedupe step or the peer (`x-railyard-message-id`) can drop the repeat.
                let origin = Origin {
                    id: Some(format!(
                        "file-{}-{}",
                        key.get(..16).unwrap_or(&key),
                        record.line
                    )),
                    source: format!("file:{name}:{}", record.line),
                    headers,
                    ..Origin::default()
                };
                if !drain_record(
                    rt,
                    &live.project,
                    p,
                    &name,
                    &key,
                    record,
                    origin,
                    done,
                    total,
                ) {
                    return;
                }
                done += 1;
            }
        }
        if done == total {
            if total == 0 {
                let mark = FileProgress {
                    handed_off: 0,
                    complete: true,
                };
                let _ = rt
                    .store
                    .set_file_progress(pipeline, &key, mark, outputs::now_ms());
            }
            match drop.finish_checked(&path, &snapshot, Ok(()), std::time::SystemTime::now()) {
                Ok(to) => {
                    tracing::info!(pipeline, file = %name, records = total, moved_to = %to.display(), "Processed dropped file.")
                }
                Err(e) if e.is_not_ready() => {
                    // Its new content is a new file to the store: read again from the start
                    // at the next poll (records repeat; none is lost).
                    tracing::warn!(pipeline, file = %name, error = %e, "A processed file changed after it was read; it stays for the next poll.")
                }
                Err(e) => {
                    tracing::error!(pipeline, file = %name, error = %e, "Could not move a processed file.")
                }
            }
        }
    }
}

/// Consumes a RabbitMQ queue: each delivery is handed to the pipeline and acked once its
/// outputs confirmed (or it was dead-lettered); when they fail it goes back to the queue after
/// a backoff, to be redelivered.
async fn amqp_input(
    rt: Arc<Runtime>,
    pipeline: String,
    config: railyard_connectors::amqp::ConsumerConfig,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let queue = config.queue.clone();
    let stopping = stop.clone();
    railyard_connectors::amqp::consume(config, stop, move |data, props, attempt| {
        let queue = queue.clone();
        amqp_delivery(
            rt.clone(),
            pipeline.clone(),
            attempt,
            stopping.clone(),
            move |_| {
                let body = serde_json::from_slice::<Value>(&data)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&data).into_owned()));
                let origin = Origin {
                    id: props.message_id,
                    correlation_id: props.correlation_id,
                    source: format!("amqp:{queue}"),
                    ..Origin::default()
                };
                Input::Payload { body, origin }
            },
        )
    })
    .await;
}

/// Consumes a topic carried by RabbitMQ (`RAILYARD_AMQP_URL`): the queue `railyard.<topic>.<group>`
/// bound to the topics exchange, holding envelopes published by `railyard run`.
async fn amqp_topic_input(
    rt: Arc<Runtime>,
    pipeline: String,
    topic: String,
    group: String,
    config: railyard_connectors::amqp::ConsumerConfig,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let stopping = stop.clone();
    railyard_connectors::amqp::consume(config, stop, move |data, props, attempt| {
        let (topic, group) = (topic.clone(), group.clone());
        amqp_delivery(
            rt.clone(),
            pipeline.clone(),
            attempt,
            stopping.clone(),
            move |rt| {
                let raw = serde_json::from_slice::<Value>(&data)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&data).into_owned()));
                let fallback = props.message_id.unwrap_or_else(|| rt.next_id());
                Input::Message(topic_message(rt, raw, &topic, &group, fallback, attempt))
            },
        )
    })
    .await;
}

/// Whether messages of `p` only compute until their outputs: no store writes in the steps
/// (dedupe, batch) and no Rhai (scripts, plugins, Rhai mappings: bounded, but not by
/// microseconds). Those run on an async task and await their outputs without holding a thread;
/// the others run on the blocking pool.
fn light(project: &Project, p: &Pipeline) -> bool {
    use railyard_core::project::{MappingEngine, Step};
    let mapping_light = |name: &str| {
        project
            .mappings
            .get(name)
            .is_some_and(|m| !matches!(m.engine, MappingEngine::Rhai(_)))
    };
    fn steps_light(steps: &[Step], mapping_light: &dyn Fn(&str) -> bool) -> bool {
        steps.iter().all(|s| match s {
            Step::Dedupe { .. }
            | Step::Batch { .. }
            | Step::Script { .. }
            | Step::Plugin { .. } => false,
            Step::Map { mapping } => mapping_light(mapping),
            Step::Switch { cases, default, .. } => cases
                .iter()
                .chain(default.as_deref())
                .all(|c| steps_light(&c.steps, mapping_light)),
            _ => true,
        })
    }
    let outputs_light = p.outputs.iter().all(|o| {
        o.def
            .http
            .as_ref()
            .and_then(|h| h.value.mapping.as_ref())
            .is_none_or(|m| mapping_light(&m.value))
    });
    p.dedupe_key.is_none() && outputs_light && steps_light(&p.steps, &mapping_light)
}

/// Runs one message through `pipeline` of `live` and sends it to its outputs, on this task
/// when the pipeline is [`light`], else on the blocking pool.
async fn run_message(
    rt: &Arc<Runtime>,
    live: &Arc<Live>,
    pipeline: &str,
    input: Input,
) -> Result<String, Failed> {
    let Some(p) = live.project.pipelines.get(pipeline) else {
        let error = store_error(format!("pipeline `{pipeline}` is not loaded"));
        return Err(Failed::early(rt, error, input));
    };
    if light(&live.project, p) {
        let processed = rt.process(&live.project, p, input);
        return rt
            .finish(&live.project, p, processed, false, Unit::default())
            .await;
    }
    let (rt2, live, name) = (rt.clone(), live.clone(), pipeline.to_string());
    let kept = input.clone();
    tokio::task::spawn_blocking(move || match live.project.pipelines.get(&name) {
        Some(p) => rt2.handle(&live.project, p, input, Unit::default()),
        None => {
            let error = store_error(format!("pipeline `{name}` is not loaded"));
            Err(Failed::early(&rt2, error, input))
        }
    })
    .await
    .unwrap_or_else(|e| {
        let error = store_error(format!("worker failed: {e}"));
        Err(Failed::early(rt, error, kept))
    })
}

/// Hands one AMQP delivery to `pipeline` and says how to settle it. After a transient output
/// failure it waits the pipeline's backoff, then asks for a retry (a copy with the next attempt
/// number) or, after the last attempt, dead-letters the message; while a destination broker is
/// down the delivery is requeued without spending an attempt. A stop cuts the backoff short:
/// the delivery settles at once (a retry copy, or back to the queue), so a stop never waits
/// for a backoff of minutes.
async fn amqp_delivery(
    rt: Arc<Runtime>,
    pipeline: String,
    attempt: u32,
    mut stop: tokio::sync::watch::Receiver<bool>,
    input: impl FnOnce(&Runtime) -> Input + Send + 'static,
) -> Settle {
    let live = rt.live();
    let Some(p) = live.project.pipelines.get(&pipeline) else {
        tokio::time::sleep(Duration::from_secs(1)).await;
        return Settle::Requeue;
    };
    let input = input(&rt);
    let (how, wait) = match run_message(&rt, &live, &pipeline, input).await {
        Ok(_) => (Settle::Ack, None),
        Err(failed) => {
            let e = &failed.error;
            match driver::verdict(p, attempt, Some(e)) {
                Verdict::Ack => (Settle::Ack, None),
                Verdict::Hold(wait) => {
                    tracing::warn!(pipeline = %pipeline, error = %e, "Destination unreachable; the delivery goes back to the queue.");
                    (Settle::Requeue, Some(wait))
                }
                Verdict::Retry(wait) => {
                    tracing::warn!(pipeline = %pipeline, error = %e, attempt, retry_in_ms = millis(wait), "Output failed; the delivery will be retried.");
                    (Settle::Retry, Some(wait))
                }
                Verdict::DeadLetter => {
                    tracing::warn!(pipeline = %pipeline, error = %e, attempts = attempt, class = e.class.as_str(), "Dead-lettering.");
                    let mut msg = failed.original;
                    msg.set_meta("attempt", Value::from(attempt));
                    let entry = dead_letter_entry(p, &msg, None, "output", exhausted(e));
                    let store = rt.store.clone();
                    match outputs::blocking(false, move || write_dead_letter(&store, &entry)).await
                    {
                        Ok(Ok(())) => (Settle::Ack, None),
                        _ => (Settle::Requeue, Some(railyard_core::delivery::HOLD_DELAY)),
                    }
                }
            }
        }
    };
    if let Some(wait) = wait {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|stopping| *stopping) => {}
        }
    }
    how
}

/// A message consumed from a topic (embedded store or broker). A published envelope becomes
/// its child, with the id `<published id>~<group>` so a redelivery keeps it (peers can use it
/// as an idempotency key); anything else (published by another system) is taken as a body
/// with `fallback_id`.
fn topic_message(
    rt: &Runtime,
    raw: Value,
    topic: &str,
    group: &str,
    fallback_id: String,
    attempt: u32,
) -> Message {
    let mut msg = match Message::from_envelope(raw.clone()) {
        Some(m) => {
            let id = format!("{}~{group}", m.id());
            m.child(raw.get("body").cloned().unwrap_or(Value::Null), id)
        }
        None => {
            let origin = Origin {
                id: Some(format!("{fallback_id}~{group}")),
                ..Origin::default()
            };
            Message::new(raw, origin, &|| rt.next_id())
        }
    };
    msg.set_meta("attempt", Value::from(attempt));
    msg.set_meta("source", Value::String(format!("topic:{topic}")));
    msg
}

/// Emits the schedule's body at every tick. A tick whose outputs fail is logged, not queued:
/// a schedule polls, and the next tick polls again.
async fn scheduled(
    rt: Arc<Runtime>,
    pipeline: String,
    schedule: railyard_connectors::schedule::Schedule,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut next = schedule.next_after(std::time::SystemTime::now());
    while let Some(at) = next {
        let wait = at
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        let (rt2, p2, body) = (rt.clone(), pipeline.clone(), schedule.body());
        let result = tokio::task::spawn_blocking(move || {
            let live = rt2.live();
            let p = live
                .project
                .pipelines
                .get(&p2)
                .ok_or_else(|| "pipeline not loaded".to_string())?;
            let origin = Origin {
                source: format!("schedule:{p2}"),
                ..Origin::default()
            };
            scheduled_tick(&rt2, &live.project, p, body, origin)
        })
        .await;
        match result {
            Ok(Ok(id)) => tracing::debug!(pipeline = %pipeline, message_id = %id, "Schedule tick."),
            Ok(Err(e)) => {
                tracing::warn!(pipeline = %pipeline, error = %e, "Schedule tick failed; the next tick polls again.")
            }
            Err(e) => tracing::warn!(pipeline = %pipeline, error = %e, "Schedule tick failed."),
        }
        next = schedule.next_after(at);
    }
    tracing::warn!(pipeline = %pipeline, "Schedule has no further ticks.");
}

/// One schedule tick: retried on its own thread per the pipeline's `on_error.retry` (a tick
/// is not queued anywhere), dead-lettered after its last attempt.
fn scheduled_tick(
    rt: &Runtime,
    project: &Project,
    p: &Pipeline,
    body: Value,
    origin: Origin,
) -> Result<String, String> {
    let mut attempt = 1u32;
    loop {
        let input = Input::Payload {
            body: body.clone(),
            origin: origin.clone(),
        };
        let failed = match rt.handle(project, p, input, Unit::default()) {
            Ok(id) => return Ok(id),
            Err(failed) => failed,
        };
        let e = &failed.error;
        let wait = match driver::verdict(p, attempt, Some(e)) {
            Verdict::Ack => return Ok(failed.original.id().to_string()),
            Verdict::Retry(wait) => {
                attempt += 1;
                wait
            }
            Verdict::Hold(wait) => wait,
            Verdict::DeadLetter => {
                let mut msg = failed.original;
                msg.set_meta("attempt", Value::from(attempt));
                let entry = dead_letter_entry(p, &msg, None, "output", exhausted(e));
                write_dead_letter(&rt.store, &entry).map_err(|e| e.message)?;
                return Err(format!("dead-lettered after {attempt} attempts: {e}"));
            }
        };
        tracing::warn!(pipeline = %p.name, error = %e, attempt, retry_in_ms = millis(wait), "Schedule tick failed; retrying.");
        if !pause(rt, wait) {
            return Err(format!("stopped while retrying: {e}"));
        }
    }
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

#[cfg(test)]
mod tests {
    use super::without_credentials;

    #[test]
    fn broker_urls_are_logged_without_their_credentials() {
        let cases = [
            (
                "amqp://guest:guest@127.0.0.1:5672/%2f",
                "amqp://127.0.0.1:5672/%2f",
            ),
            (
                "amqps://u:p%40ss@mq.example.com/prod",
                "amqps://mq.example.com/prod",
            ),
            ("amqp://127.0.0.1:5672", "amqp://127.0.0.1:5672"),
            ("not a url", "not a url"),
        ];
        for (url, shown) in cases {
            assert_eq!(without_credentials(url), shown, "{url}");
        }
    }
}
