//! The runtime every input shares: the configuration in force (`Live`), one message's run
//! through its pipeline (`Runtime::process`), its outputs and the settling of its unit of
//! work (`Runtime::finish`, `emit`), and the engine state it touches (`MessageState`).

use super::*;
use railyard_connectors::sink::{Item, SinkCx};
use railyard_store::{AsyncStore, StoreError};

/// The topic a pipeline consumes, if its input is a topic or `pipeline:`.
pub(crate) fn consumed_topic(p: &Pipeline) -> Option<(String, String)> {
    p.input
        .consumed_topic()
        .map(|(t, g)| (t.to_string(), g.to_string()))
}

/// Everything the request handlers and workers share.
pub(crate) struct Runtime {
    /// The configuration in force. A reload swaps it; a message takes a snapshot when it
    /// starts and finishes on it.
    pub(crate) live: std::sync::RwLock<Arc<Live>>,
    /// The last reload's outcome, for `/health`.
    pub(crate) reload: Mutex<Value>,
    /// The store, for callers that may block (a step's state, `block_in_place` sections).
    pub(crate) store: Arc<Store>,
    /// The same store for async callers: every call on the blocking pool.
    pub(crate) db: AsyncStore,
    /// Reservations, shared by all messages, and batch buffers while the store is failing (see
    /// [`MessageState`]); dedupe keys and batch buffers live in the store.
    pub(crate) memory: Mutex<railyard_core::engine::MemoryState>,
    /// Renders `/metrics`; `None` when another recorder was installed first.
    pub(crate) prometheus: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Makes message ids: `<boot time hex>-<counter>`. A field (not a method) so that an
    /// engine borrowing it lives as long as the runtime.
    pub(crate) make_id: Box<dyn Fn() -> String + Send + Sync>,
    pub(crate) stopping: AtomicBool,
    pub(crate) http: reqwest::Client,
    /// The project directory: file inputs' directories are relative to it.
    pub(crate) root: PathBuf,
    /// Where file outputs write (`--output-root`, the data directory by default).
    pub(crate) output_root: PathBuf,
    pub(crate) publishers: railyard_connectors::amqp::Publishers,
    /// `RAILYARD_AMQP_URL`: when set, topics are RabbitMQ exchanges and queues, so several
    /// `railyard run` processes share them as competing consumers.
    pub(crate) amqp_topics: Option<String>,
    /// Connection state of every AMQP consumer, by worker: `/ready` is false while one is down.
    pub(crate) brokers: Mutex<HashMap<String, Arc<AtomicBool>>>,
    /// Whether the store could be written at the last check (a watchdog writes every two
    /// seconds): webhooks answer 503 while it cannot, instead of 202s nobody can keep.
    pub(crate) store_ok: AtomicBool,
    /// Why the store could not be written at the last check, for `/ready`.
    pub(crate) store_problem: Mutex<Option<String>>,
}

/// One version of the running configuration: the project and which pipelines run.
pub(crate) struct Live {
    pub(crate) project: Arc<Project>,
    pub(crate) running: BTreeSet<String>,
    pub(crate) not_started: BTreeMap<String, String>,
}

impl Live {
    pub(crate) fn new(project: Project) -> Live {
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
    pub(crate) fn routes(
        &self,
    ) -> Result<HashMap<String, railyard_connectors::http::Route>, String> {
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
    pub(crate) fn broker_flag(&self, what: &str) -> Arc<AtomicBool> {
        let mut map = self
            .brokers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(what.to_string())
            .or_insert_with(|| Arc::new(AtomicBool::new(false)))
            .clone()
    }

    /// AMQP consumers that are not connected right now.
    pub(crate) fn brokers_down(&self) -> Vec<String> {
        let map = self
            .brokers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.iter()
            .filter(|(_, up)| !up.load(Ordering::Relaxed))
            .map(|(k, _)| k.clone())
            .collect()
    }

    pub(crate) fn live(&self) -> Arc<Live> {
        match self.live.read() {
            Ok(l) => l.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub(crate) fn next_id(&self) -> String {
        (self.make_id)()
    }

    /// The engine's part of a message: its steps, up to the outputs. CPU only, unless the
    /// pipeline has steps with durable state (dedupe, batch): those write the store.
    pub(crate) fn process<'p>(
        &'p self,
        project: &'p Project,
        pipeline: &'p Pipeline,
        input: Input,
        replay: bool,
    ) -> Processed<'p> {
        let engine = Engine {
            project,
            ids: &*self.make_id,
            now: &outputs::now_rfc3339,
        };
        let mut state = MessageState::new(&self.store, &self.memory);
        state.replay = replay;
        let started = Instant::now();
        metrics::messages(&pipeline.name, "in", 1);
        let (ran, id, original) = match input {
            Input::Payload { body, origin } => {
                let mut origin = origin;
                // An input with a `dedupe_key` gives every copy of one event the same id.
                let id = match origin.id.clone() {
                    Some(id) => id,
                    None => driver::catch(|| engine.keyed_id(pipeline, &body, &origin))
                        .ok()
                        .flatten()
                        .unwrap_or_else(|| self.next_id()),
                };
                origin.id = Some(id.clone());
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
    pub(crate) async fn finish(
        &self,
        project: &Project,
        pipeline: &Pipeline,
        processed: Processed<'_>,
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
        let marked = AtomicBool::new(false);
        let in_flight = busy.is_some() && panicked.is_none();
        let emitted = match (busy, panicked) {
            (_, Some(panic)) => {
                self.dead_letter_internal(pipeline, &original, "steps", &panic)
                    .await
            }
            // Another copy holds the key: answering "duplicate" now would lose the message
            // if that copy then fails. Wait for it to settle.
            (Some(key), None) => Err(SendError::held(format!(
                "another copy of this message (dedupe key `{key}`) is in flight; try again"
            ))),
            (None, None) => {
                use futures_util::FutureExt;
                let emit = self.emit(project, pipeline, outcome, &original, &marked);
                match std::panic::AssertUnwindSafe(emit).catch_unwind().await {
                    Ok(emitted) => emitted,
                    Err(payload) => {
                        let panic = driver::panic_text(payload.as_ref());
                        tracing::error!(pipeline = %pipeline.name, message_id = %id, panic = %panic, "An output panicked; the message is dead-lettered and the process keeps serving.");
                        self.dead_letter_internal(pipeline, &original, "outputs", &panic)
                            .await
                    }
                }
            }
        };
        metrics::message_duration(&pipeline.name, started.elapsed());
        if marked.load(Ordering::Relaxed) {
            unit.marks = Some((pipeline.name.clone(), original.id().to_string()));
        }
        let emitted = if unit.is_empty() {
            emitted
        } else {
            let ok = emitted.is_ok();
            let settled = self.db.run(move |s| settle_unit(s, unit, ok)).await;
            match (emitted, settled) {
                (Err(e), _) => Err(e),
                (Ok(()), Ok(())) => Ok(()),
                (Ok(()), Err(e)) => Err(store_error(format!("store: {e}"))),
            }
        };
        emitted.map(|()| id).map_err(|error| Failed {
            error,
            original,
            in_flight,
        })
    }

    /// Dead-letters `original` for a panic in `place` (code `internal`).
    pub(crate) async fn dead_letter_internal(
        &self,
        pipeline: &Pipeline,
        original: &Message,
        place: &str,
        panic: &str,
    ) -> Result<(), SendError> {
        let error = json!({
            "code": "internal",
            "step": place,
            "message": format!("railyard failed (a bug): {panic}"),
        });
        self.write_dead_letter(dead_letter_entry(pipeline, original, None, place, error))
            .await
    }

    /// Stores a dead letter (on the blocking pool); a failure is transient: the message is
    /// tried again rather than acknowledged.
    pub(crate) async fn write_dead_letter(&self, mut entry: DeadLetter) -> Result<(), SendError> {
        // The one way into the dead-letter store: the error is kept without secrets.
        entry.error = super::redaction::redact_error(entry.error);
        let (pipeline, step) = (entry.pipeline.clone(), entry.step.clone());
        let id = entry.message["meta"]["id"]
            .as_str()
            .unwrap_or("?")
            .to_string();
        let error = entry.error["message"]
            .as_str()
            .map_or_else(|| entry.error.to_string(), str::to_string);
        self.db
            .run(move |s| s.dead_letter(&entry))
            .await
            .map_err(|e| store_error(format!("dead-letter store: {e}")))?;
        tracing::warn!(pipeline = %pipeline, step = %step, id = %id, error = %error, "Dead-lettered a message.");
        Ok(())
    }

    /// What every sink is given: the store, the clients, the output root.
    pub(crate) fn sink_cx<'a>(
        &'a self,
        project: &'a Project,
        marked: &'a AtomicBool,
    ) -> SinkCx<'a> {
        SinkCx {
            amqp_topics: self.amqp_topics.as_deref(),
            publishers: &self.publishers,
            output_root: &self.output_root,
            store: &self.db,
            project,
            http: &self.http,
            marked,
        }
    }

    pub(crate) async fn emit(
        &self,
        project: &Project,
        pipeline: &Pipeline,
        outcome: Outcome<'_>,
        original: &Message,
        marked: &AtomicBool,
    ) -> Result<(), SendError> {
        metrics::messages(&pipeline.name, "dropped", outcome.dropped.len() as u64);
        metrics::messages(&pipeline.name, "failed", outcome.failed.len() as u64);
        let cx = self.sink_cx(project, marked);
        let dead_letter = |msg: &Message, step: &str, error: Value| {
            self.write_dead_letter(dead_letter_entry(
                pipeline,
                msg,
                Some(original),
                step,
                error,
            ))
        };
        for (index, d) in outcome.delivered.iter().enumerate() {
            let mut delivered = true;
            for (i, o) in d.outputs.iter().enumerate() {
                let started = Instant::now();
                let item = Item {
                    message: &d.message,
                    output: o,
                    pipeline: &pipeline.name,
                    origin: original.id(),
                    index: index as u32,
                    output_index: i as u32,
                };
                let sent = railyard_connectors::sink::send(&cx, &item).await;
                let result = match &sent {
                    Ok(()) => metrics::Sent::Ok,
                    Err(e) => match e.class {
                        ErrorClass::Permanent => metrics::Sent::Rejected,
                        ErrorClass::Held => metrics::Sent::Held,
                        ErrorClass::Transient => metrics::Sent::Retry,
                    },
                };
                let label = format!("outputs[{i}] {}", o.kind());
                metrics::output(&pipeline.name, &label, result, started.elapsed());
                match sent {
                    Ok(()) => {}
                    Err(e) if e.class == ErrorClass::Permanent => {
                        let step = format!("output {}", o.kind());
                        let error =
                            json!({ "code": "output-error", "step": step, "message": e.message });
                        dead_letter(&d.message, &step, error).await?;
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
            dead_letter(&f.message, &f.error.step, error).await?;
        }
        Ok(())
    }

    /// Emits every buffered batch of `pipeline` (its window elapsed, or the runtime stops).
    /// A batch whose outputs fail stays buffered and goes out at the next flush.
    pub(crate) async fn flush_batches(&self, project: &Project, pipeline: &Pipeline) {
        let (outcome, unit) = {
            let engine = Engine {
                project,
                ids: &*self.make_id,
                now: &outputs::now_rfc3339,
            };
            let mut state = MessageState::new(&self.store, &self.memory);
            // Claiming the batches writes the store.
            let outcome = tokio::task::block_in_place(|| engine.flush(pipeline, &mut state));
            (outcome, std::mem::take(&mut state.unit))
        };
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
            let _ = self.db.run(move |s| settle_unit(s, unit, true)).await;
            return;
        };
        let marked = AtomicBool::new(false);
        let emitted = self
            .emit(project, pipeline, outcome, &original, &marked)
            .await;
        let mut unit = unit;
        if marked.load(Ordering::Relaxed) {
            unit.marks = Some((pipeline.name.clone(), original.id().to_string()));
        }
        if let Err(e) = &emitted {
            tracing::warn!(pipeline = %pipeline.name, error = %e, "Batch output failed; the batch stays buffered for the next flush.");
        }
        let ok = emitted.is_ok();
        let settled = self.db.run(move |s| settle_unit(s, unit, ok)).await;
        if let Err(e) = settled {
            // The claim expires by itself: the batch goes out again (at least once).
            tracing::error!(pipeline = %pipeline.name, error = %e, "Could not settle a batch claim; it will be emitted again when the claim expires.");
        }
    }
}

/// A message whose attempt failed: why, and the message as it entered the pipeline (what a
/// dead letter keeps after the last attempt).
pub(crate) struct Failed {
    pub(crate) error: SendError,
    pub(crate) original: Message,
    /// Another copy of the message held its dedupe key: nothing failed, the copy must wait.
    pub(crate) in_flight: bool,
}

impl Failed {
    /// A failure before the message could be built (its pipeline is gone).
    pub(crate) fn early(rt: &Runtime, error: SendError, input: Input) -> Failed {
        let original = match input {
            Input::Message(m) => m,
            Input::Payload { body, origin } => Message::new(body, origin, &|| rt.next_id()),
        };
        Failed {
            error,
            original,
            in_flight: false,
        }
    }
}

/// A message run through its pipeline's steps ([`Runtime::process`]), its outputs still to
/// send ([`Runtime::finish`]).
pub(crate) struct Processed<'p> {
    pub(crate) outcome: Outcome<'p>,
    pub(crate) id: String,
    /// The message as it entered the pipeline.
    pub(crate) original: Message,
    /// The state it changed: dedupe keys claimed, batches claimed.
    pub(crate) unit: Unit,
    /// A dedupe key another copy of the message holds (in flight).
    pub(crate) busy: Option<String>,
    /// What a step's panic said: the message is dead-lettered (code `internal`).
    pub(crate) panicked: Option<String>,
    pub(crate) started: Instant,
}

/// Settles a unit of work: committed with its ack when the message is done (`done`), else
/// undone (keys deleted, batch claims released; a delivery is left to its caller). When the
/// commit fails, the unit is undone so that nothing stays pending in this process.
pub(crate) fn settle_unit(store: &Store, mut unit: Unit, done: bool) -> Result<(), StoreError> {
    if done {
        match store.commit_unit(&unit) {
            Ok(true) => return Ok(()),
            // The lease was taken over: the new holder redelivers; let it claim the keys.
            Ok(false) => {}
            Err(e) => {
                unit.ack = None;
                let _ = store.release_unit(&unit, 0, false);
                return Err(e);
            }
        }
    }
    unit.ack = None;
    store.release_unit(&unit, 0, false)
}

/// A dead letter of `msg` (the body at the failing step) that keeps `original`, the message
/// as it entered the pipeline, when that is another body.
pub(crate) fn dead_letter_entry(
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

/// The store (or the blocking pool in front of it) failed: retry later.
pub(crate) fn store_error(message: String) -> SendError {
    SendError::transient(message)
}

#[derive(Clone)]
pub(crate) enum Input {
    Payload { body: Value, origin: Origin },
    Message(Message),
}

/// How long a batch claimed for emission stays claimed: if its holder dies, the batch goes out
/// again after this.
pub(crate) const BATCH_CLAIM_MS: i64 = 10 * 60 * 1000;

/// Envelopes back to messages (a row that is not one is skipped: only the store writes them).
pub(crate) fn messages(envelopes: Vec<Value>) -> Vec<Message> {
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
pub(crate) struct MessageState<'a> {
    pub(crate) store: &'a Store,
    pub(crate) memory: &'a Mutex<railyard_core::engine::MemoryState>,
    /// Dedupe keys claimed (pending) and batches claimed while the message ran.
    pub(crate) unit: Unit,
    /// A dedupe key found pending: another copy of the message is in flight.
    pub(crate) busy: Option<String>,
    /// The message replays a dead letter (an operator's decision): dedupe keys do not stop
    /// it — its own key was committed when it was dead-lettered.
    pub(crate) replay: bool,
    /// When each step under way started (a switch's case steps nest inside it), for the
    /// latency histograms.
    pub(crate) steps: Vec<Instant>,
}

impl<'a> MessageState<'a> {
    pub(crate) fn new(
        store: &'a Store,
        memory: &'a Mutex<railyard_core::engine::MemoryState>,
    ) -> MessageState<'a> {
        MessageState {
            store,
            memory,
            unit: Unit::default(),
            busy: None,
            replay: false,
            steps: Vec::new(),
        }
    }

    pub(crate) fn memory(&self) -> std::sync::MutexGuard<'_, railyard_core::engine::MemoryState> {
        self.memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl State for MessageState<'_> {
    fn seen(&mut self, pipeline: &str, key: &str, ttl: Duration) -> bool {
        if self.replay {
            return false;
        }
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

/// The dead letter's error for a message whose last attempt failed with `e`.
pub(crate) fn exhausted(e: &SendError) -> Value {
    let code = match e.class {
        ErrorClass::Permanent => "output-error",
        _ => "retries-exhausted",
    };
    json!({ "code": code, "class": e.class.as_str(), "message": e.message })
}

pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Waits `wait`, in short steps; false as soon as the runtime stops.
pub(crate) async fn pause(rt: &Runtime, wait: Duration) -> bool {
    let until = tokio::time::Instant::now() + wait;
    while tokio::time::Instant::now() < until {
        if rt.stopping.load(Ordering::Relaxed) {
            return false;
        }
        let step = (until - tokio::time::Instant::now()).min(Duration::from_millis(100));
        tokio::time::sleep(step).await;
    }
    !rt.stopping.load(Ordering::Relaxed)
}

/// Whether messages of `p` only compute until their outputs: no store writes in the steps
/// (dedupe, batch) and no Rhai (scripts, plugins, Rhai mappings: bounded, but not by
/// microseconds). Those run on an async task and await their outputs without holding a thread;
/// the others run on the blocking pool.
pub(crate) fn light(project: &Project, p: &Pipeline) -> bool {
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
    let outputs_light = p
        .outputs
        .iter()
        .all(|o| o.spec.body_mapping().is_none_or(mapping_light));
    p.dedupe_key.is_none() && outputs_light && steps_light(&p.steps, &mapping_light)
}

/// Runs one message through `pipeline` of `live` and sends it to its outputs, on this task
/// when the pipeline is [`light`], else on the blocking pool.
pub(crate) async fn run_message(
    rt: &Arc<Runtime>,
    live: &Arc<Live>,
    pipeline: &str,
    input: Input,
    unit: Unit,
) -> Result<String, Failed> {
    let Some(p) = live.project.pipelines.get(pipeline) else {
        let error = store_error(format!("pipeline `{pipeline}` is not loaded"));
        return Err(Failed::early(rt, error, input));
    };
    // A heavy pipeline (store writes in its steps, Rhai) tells tokio first, so the other
    // tasks of this worker thread move to another one while it computes.
    let replay = unit.replaces.is_some();
    let processed = if light(&live.project, p) {
        rt.process(&live.project, p, input, replay)
    } else {
        tokio::task::block_in_place(|| rt.process(&live.project, p, input, replay))
    };
    rt.finish(&live.project, p, processed, unit).await
}
