//! The engine: runs messages through a compiled pipeline, in process, with schema enforcement
//! at every boundary where the schema changes.
//!
//! Pure and synchronous: inputs and outputs are values, state goes through [`State`], ids and
//! clocks are injected. `railyard test` and `railyard map` drive it with in-memory state; the
//! runtime drives it from connectors. A failing message never stops anything: it leaves the
//! step as a [`Failure`] carrying a [`StepError`] (step, code, instance and schema paths).

mod message;
mod state;

use std::sync::Arc;

use serde_json::{Map, Value};

pub use self::message::{Message, Origin, RESERVED_META};
pub use self::state::{MemoryState, Reservation, State, StepCounts, as_qty};
use crate::expr::JmesPath;
use crate::model::pipeline::{OnShort, SwitchMode};
use crate::project::{OutputDef, Pipeline, Project, Step, SwitchCaseDef};
use crate::schema::{Violation, violations};

/// Why a message failed, as data.
#[derive(Clone, Debug, PartialEq)]
pub struct StepError {
    /// Stable error code: `schema-violation`, `mapping-error`, `expression-error`,
    /// `script-error`, `plugin-error`, `out-of-stock`, `not-an-array`, `missing-key`.
    pub code: &'static str,
    /// Where: `input`, `steps[2] map`, `steps[3] switch case pos: steps[0] filter`, `output`.
    pub step: String,
    pub message: String,
    /// Schema violations, each with instance path and schema path.
    pub violations: Vec<Violation>,
    pub message_id: String,
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at {}: {}", self.code, self.step, self.message)?;
        for v in &self.violations {
            write!(
                f,
                "\n  {} (instance {}, schema {})",
                v.message,
                or_root(&v.instance_path),
                v.schema_path
            )?;
        }
        Ok(())
    }
}

fn or_root(p: &str) -> &str {
    if p.is_empty() { "/" } else { p }
}

/// A message that reached outputs.
#[derive(Debug)]
pub struct Delivery<'p> {
    pub message: Message,
    /// The switch case that routed it, if any.
    pub route: Option<String>,
    pub outputs: &'p [OutputDef],
}

#[derive(Debug)]
pub struct Dropped {
    pub message: Message,
    pub step: String,
    pub reason: String,
}

#[derive(Debug)]
pub struct Failure {
    pub message: Message,
    pub error: StepError,
}

/// Everything that became of the messages handed to the engine.
#[derive(Debug, Default)]
pub struct Outcome<'p> {
    pub delivered: Vec<Delivery<'p>>,
    pub dropped: Vec<Dropped>,
    pub failed: Vec<Failure>,
}

impl<'p> Outcome<'p> {
    fn absorb(&mut self, other: Outcome<'p>) {
        self.delivered.extend(other.delivered);
        self.dropped.extend(other.dropped);
        self.failed.extend(other.failed);
    }
}

/// A message in flight plus whether its body is known to conform to `meta.schema` (validated,
/// and not changed since), which spares re-validating before the output.
struct Flight {
    msg: Message,
    clean: bool,
}

pub struct Engine<'p> {
    pub project: &'p Project,
    /// Generates message ids.
    pub ids: &'p dyn Fn() -> String,
    /// The current time, RFC 3339.
    pub now: &'p dyn Fn() -> String,
}

/// What an input's `dedupe_key` sees: `{headers, body, meta}`.
fn dedupe_view(msg: &Message) -> Value {
    let mut view = Map::new();
    view.insert(
        "headers".into(),
        msg.meta().get("headers").cloned().unwrap_or(Value::Null),
    );
    view.insert("body".into(), msg.body().clone());
    view.insert("meta".into(), Value::Object(msg.meta().clone()));
    Value::Object(view)
}

impl<'p> Engine<'p> {
    /// The id a payload arriving at `pipeline`'s input takes when the input declares a
    /// `dedupe_key` (and the key is not null): `k-` and 24 hex digits of a SHA-256 over the
    /// pipeline's name and the key. Every copy of one event — a platform's retries, the
    /// redelivery after a crash — then carries the same message id, so a peer can drop a
    /// repeat by `x-railyard-message-id` (a crash between an output and its commit repeats
    /// the message at the output). `None` without a key; the caller makes an id then.
    pub fn keyed_id(&self, pipeline: &Pipeline, body: &Value, origin: &Origin) -> Option<String> {
        use sha2::Digest;
        let expr = pipeline.dedupe_key.as_ref()?;
        let mut provisional = origin.clone();
        provisional.id = Some(String::new());
        let msg = Message::new(body.clone(), provisional, self.ids);
        let key =
            crate::functions::with_tables(&self.project.tables, || expr.search(&dedupe_view(&msg)))
                .ok()
                .filter(|v| !v.is_null())?;
        let key = match key {
            Value::String(s) => s,
            other => other.to_string(),
        };
        let mut h = sha2::Sha256::new();
        h.update(pipeline.name.as_bytes());
        h.update([0u8]);
        h.update(key.as_bytes());
        let digest = h.finalize();
        let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        Some(format!("k-{hex}"))
    }

    /// Creates the message for a payload arriving at `pipeline`'s input and processes it.
    pub fn ingest(
        &self,
        pipeline: &'p Pipeline,
        body: Value,
        mut origin: Origin,
        state: &mut dyn State,
    ) -> Outcome<'p> {
        if origin.received_at.is_empty() {
            origin.received_at = (self.now)();
        }
        if origin.correlation_id.is_none()
            && let Some(h) = &pipeline
                .def
                .input
                .ok()
                .and_then(|i| i.value.correlation_header.clone())
        {
            origin.correlation_id = origin
                .headers
                .get(&h.to_ascii_lowercase())
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        let msg = Message::new(body, origin, self.ids);
        self.process(pipeline, msg, state)
    }

    /// Ingests one payload and then flushes every batch: the whole life of one message when
    /// nothing else will arrive (`railyard test`, `railyard map`).
    pub fn run_to_end(
        &self,
        pipeline: &'p Pipeline,
        body: Value,
        origin: Origin,
        state: &mut dyn State,
    ) -> Outcome<'p> {
        let mut outcome = self.ingest(pipeline, body, origin, state);
        outcome.absorb(self.flush(pipeline, state));
        outcome
    }

    /// Processes one message through `pipeline`: input schema, steps, outputs.
    pub fn process(
        &self,
        pipeline: &'p Pipeline,
        mut msg: Message,
        state: &mut dyn State,
    ) -> Outcome<'p> {
        crate::functions::with_tables(&self.project.tables, || {
            let mut out = Outcome::default();
            msg.set_meta("pipeline", Value::String(pipeline.name.clone()));
            msg.set_meta("pipeline_version", Value::from(pipeline.version));
            msg.set_meta(
                "pipeline_revision",
                Value::String(pipeline.revision.clone()),
            );
            if let Some(key) = &pipeline.dedupe_key {
                match key.search(&dedupe_view(&msg)) {
                    Ok(v) if !v.is_null() => msg.set_meta("dedupe_key", v),
                    Ok(_) => {}
                    Err(e) => {
                        out.failed
                            .push(fail(msg, "expression-error", "input dedupe_key", e));
                        return out;
                    }
                }
            }
            let mut flight = Flight { msg, clean: false };
            if let Some(schema) = &pipeline.input_schema {
                flight.msg.set_meta("schema", Value::String(schema.clone()));
                if let Err(e) = self.check(&flight.msg, schema, "input") {
                    out.failed.push(Failure {
                        message: flight.msg,
                        error: e,
                    });
                    return out;
                }
                flight.clean = true;
            }
            let continuing = self.run_steps(
                pipeline,
                &pipeline.steps,
                "",
                0,
                vec![flight],
                &mut out,
                state,
            );
            self.deliver(&pipeline.outputs, continuing, None, &mut out);
            out
        })
    }

    /// Emits every buffered batch of `pipeline` (end of input, or the window elapsed) and runs
    /// each through the steps after its batch step.
    pub fn flush(&self, pipeline: &'p Pipeline, state: &mut dyn State) -> Outcome<'p> {
        crate::functions::with_tables(&self.project.tables, || {
            let mut out = Outcome::default();
            // Batch steps in order, each drained on its own: what an earlier batch emits into a
            // later one is buffered there before that one is drained, so one flush empties the
            // whole chain. Steps after a batch keep their own indexes (failure reports, and the
            // buffer name of a later batch step).
            for (index, step) in pipeline.steps.iter().enumerate() {
                let Step::Batch { schema, .. } = step else {
                    continue;
                };
                let buffer = format!("{}/steps[{index}]", pipeline.name);
                for (_, messages) in state.batch_drain(&buffer) {
                    let batch = self.make_batch(
                        messages,
                        schema.as_deref(),
                        &format!("steps[{index}] batch"),
                        &mut out,
                    );
                    if let Some(f) = batch {
                        let rest = &pipeline.steps[index + 1..];
                        let continuing =
                            self.run_steps(pipeline, rest, "", index + 1, vec![f], &mut out, state);
                        self.deliver(&pipeline.outputs, continuing, None, &mut out);
                    }
                }
            }
            out
        })
    }

    fn check(&self, msg: &Message, schema: &str, step: &str) -> Result<(), StepError> {
        let Some(validator) = self
            .project
            .schemas
            .get(schema)
            .and_then(|e| e.validator.as_ref())
        else {
            return Err(StepError {
                code: "schema-violation",
                step: step.to_string(),
                message: format!("schema `{schema}` is not available"),
                violations: Vec::new(),
                message_id: msg.id().to_string(),
            });
        };
        if validator.is_valid(msg.body()) {
            return Ok(());
        }
        let found = violations(validator, msg.body());
        Err(StepError {
            code: "schema-violation",
            step: step.to_string(),
            message: format!(
                "the body does not conform to `{schema}` ({} violation{})",
                found.len(),
                if found.len() == 1 { "" } else { "s" }
            ),
            violations: found,
            message_id: msg.id().to_string(),
        })
    }

    fn deliver(
        &self,
        outputs: &'p [OutputDef],
        flights: Vec<Flight>,
        route: Option<&str>,
        out: &mut Outcome<'p>,
    ) {
        for mut f in flights {
            // Before every output: the message must conform to the schema the output declares,
            // or to its own schema if a step changed the body since it was last checked.
            let mut failed = None;
            for o in outputs {
                let target = o.schema.as_deref().or(f.msg.schema());
                if let Some(schema) = target {
                    let already = f.clean && f.msg.schema() == Some(schema);
                    if !already {
                        if let Err(e) =
                            self.check(&f.msg, schema, &format!("output `{}`", o.kind()))
                        {
                            failed = Some(e);
                            break;
                        }
                        f.msg.set_meta("schema", Value::String(schema.to_string()));
                        f.clean = true;
                    }
                }
            }
            match failed {
                Some(error) => out.failed.push(Failure {
                    message: f.msg,
                    error,
                }),
                None => {
                    let route = route
                        .map(str::to_string)
                        .or_else(|| f.msg.route().map(str::to_string));
                    out.delivered.push(Delivery {
                        message: f.msg,
                        route,
                        outputs,
                    });
                }
            }
        }
    }

    fn eval(&self, e: &JmesPath, msg: &Message) -> Result<Value, String> {
        e.search(msg.envelope())
    }

    /// Runs `steps` (which start at index `first` of their list) over `flights`.
    #[allow(clippy::too_many_arguments)]
    fn run_steps(
        &self,
        pipeline: &'p Pipeline,
        steps: &'p [Step],
        prefix: &str,
        first: usize,
        mut flights: Vec<Flight>,
        out: &mut Outcome<'p>,
        state: &mut dyn State,
    ) -> Vec<Flight> {
        for (i, step) in steps.iter().enumerate() {
            if flights.is_empty() {
                break;
            }
            let name = format!("{prefix}steps[{}] {}", first + i, step_kind(step));
            let mut next = Vec::with_capacity(flights.len());
            let (input, failed, dropped) = (flights.len(), out.failed.len(), out.dropped.len());
            state.step_started(&pipeline.name, &name);
            for f in flights {
                self.run_step(pipeline, step, &name, f, &mut next, out, state);
            }
            let counts = StepCounts {
                input,
                output: next.len(),
                failed: out.failed.len().saturating_sub(failed),
                dropped: out.dropped.len().saturating_sub(dropped),
            };
            state.step_finished(&pipeline.name, &name, counts);
            flights = next;
        }
        flights
    }

    #[allow(clippy::too_many_arguments)]
    fn run_step(
        &self,
        pipeline: &'p Pipeline,
        step: &'p Step,
        name: &str,
        mut f: Flight,
        next: &mut Vec<Flight>,
        out: &mut Outcome<'p>,
        state: &mut dyn State,
    ) {
        match step {
            Step::Validate { schema } => {
                f.msg.set_meta("schema", Value::String(schema.clone()));
                match self.check(&f.msg, schema, name) {
                    Ok(()) => {
                        f.clean = true;
                        next.push(f);
                    }
                    Err(error) => out.failed.push(Failure {
                        message: f.msg,
                        error,
                    }),
                }
            }
            Step::Map { mapping } => {
                let Some(m) = self.project.mappings.get(mapping) else {
                    out.failed.push(fail(
                        f.msg,
                        "mapping-error",
                        name,
                        format!("mapping `{mapping}` is not loaded"),
                    ));
                    return;
                };
                match m.apply(&self.project.rhai, f.msg.body()) {
                    Ok(body) => {
                        f.msg.set_body(body);
                        f.msg.set_meta("schema", Value::String(m.to.clone()));
                        match self.check(&f.msg, &m.to, name) {
                            Ok(()) => {
                                f.clean = true;
                                next.push(f);
                            }
                            Err(error) => out.failed.push(Failure {
                                message: f.msg,
                                error,
                            }),
                        }
                    }
                    Err(e) => out.failed.push(fail(f.msg, "mapping-error", name, e)),
                }
            }
            Step::Filter { condition } => match self.eval(condition, &f.msg) {
                Ok(v) if truthy(&v) => next.push(f),
                Ok(_) => out.dropped.push(Dropped {
                    message: f.msg,
                    step: name.to_string(),
                    reason: format!("filter `{}` is false", condition.as_str()),
                }),
                Err(e) => out.failed.push(fail(f.msg, "expression-error", name, e)),
            },
            Step::Switch {
                mode,
                cases,
                default,
            } => self.run_switch(
                pipeline,
                *mode,
                cases,
                default.as_deref(),
                name,
                f,
                next,
                out,
                state,
            ),
            Step::Split { path, schema } => {
                let items = match self.eval(path, &f.msg) {
                    Ok(Value::Array(items)) => items,
                    Ok(other) => {
                        let e = format!(
                            "`{}` gave {}, not an array",
                            path.as_str(),
                            json_type(&other)
                        );
                        out.failed.push(fail(f.msg, "not-an-array", name, e));
                        return;
                    }
                    Err(e) => {
                        out.failed.push(fail(f.msg, "expression-error", name, e));
                        return;
                    }
                };
                if items.is_empty() {
                    out.dropped.push(Dropped {
                        message: f.msg,
                        step: name.to_string(),
                        reason: "split found no elements".into(),
                    });
                    return;
                }
                for item in items {
                    let mut child = f.msg.child(item, (self.ids)());
                    child.set_meta("schema", schema.clone().map_or(Value::Null, Value::String));
                    match schema {
                        Some(s) => match self.check(&child, s, name) {
                            Ok(()) => next.push(Flight {
                                msg: child,
                                clean: true,
                            }),
                            Err(error) => out.failed.push(Failure {
                                message: child,
                                error,
                            }),
                        },
                        None => next.push(Flight {
                            msg: child,
                            clean: false,
                        }),
                    }
                }
            }
            Step::Batch { count, schema, .. } => {
                let buffer = format!(
                    "{}/{}",
                    pipeline.name,
                    name.split(' ').next().unwrap_or(name)
                );
                if let Some(full) = state.batch_push(&buffer, f.msg, *count)
                    && let Some(b) = self.make_batch(full, schema.as_deref(), name, out)
                {
                    next.push(b);
                }
            }
            Step::Dedupe { key, ttl } => match self.eval(key, &f.msg) {
                Ok(Value::Null) => out.failed.push(fail(
                    f.msg,
                    "missing-key",
                    name,
                    format!("dedupe key `{}` is null", key.as_str()),
                )),
                Ok(v) => {
                    let k = match &v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    if state.seen(&pipeline.name, &k, *ttl) {
                        out.dropped.push(Dropped {
                            message: f.msg,
                            step: name.to_string(),
                            reason: format!("duplicate of `{k}`"),
                        });
                    } else {
                        next.push(f);
                    }
                }
                Err(e) => out.failed.push(fail(f.msg, "expression-error", name, e)),
            },
            Step::Metadata { set, copy, remove } => {
                for (k, e) in set {
                    match self.eval(e, &f.msg) {
                        Ok(v) => f.msg.set_meta(k, v),
                        Err(err) => {
                            out.failed.push(fail(
                                f.msg,
                                "expression-error",
                                name,
                                format!("`{k}`: {err}"),
                            ));
                            return;
                        }
                    }
                }
                for (to, from) in copy {
                    let v = lookup_meta(f.msg.meta(), from)
                        .cloned()
                        .unwrap_or(Value::Null);
                    f.msg.set_meta(to, v);
                }
                for k in remove {
                    f.msg.remove_meta(k);
                }
                next.push(f);
            }
            Step::Script { script, produces } => {
                match run_rhai(&self.project.rhai, script.ast(), None, &f.msg, None) {
                    Ok(body) => self.after_script(f, body, produces.as_deref(), name, next, out),
                    Err(e) => out.failed.push(fail(f.msg, "script-error", name, e)),
                }
            }
            Step::Plugin {
                module,
                function,
                with,
                produces,
            } => {
                let Some(plugin) = self.project.plugins.get(module) else {
                    out.failed.push(fail(
                        f.msg,
                        "plugin-error",
                        name,
                        format!("plugin `{module}` is not loaded"),
                    ));
                    return;
                };
                let settings = if plugin.script.has_fn(function, 2) {
                    Some(with.clone().unwrap_or(Value::Null))
                } else {
                    None
                };
                match run_rhai(
                    &self.project.rhai,
                    plugin.script.ast(),
                    Some(function),
                    &f.msg,
                    settings,
                ) {
                    Ok(body) => self.after_script(f, body, produces.as_deref(), name, next, out),
                    Err(e) => out.failed.push(fail(f.msg, "plugin-error", name, e)),
                }
            }
            Step::Reserve {
                sku,
                qty,
                location,
                on_short,
            } => {
                let skus = match self.eval(sku, &f.msg) {
                    Ok(v) => v,
                    Err(e) => return out.failed.push(fail(f.msg, "expression-error", name, e)),
                };
                let qtys = match self.eval(qty, &f.msg) {
                    Ok(v) => v,
                    Err(e) => return out.failed.push(fail(f.msg, "expression-error", name, e)),
                };
                let loc = match location.as_ref().map(|l| self.eval(l, &f.msg)) {
                    Some(Ok(Value::String(s))) => s,
                    Some(Ok(Value::Null)) | None => "default".to_string(),
                    Some(Ok(other)) => other.to_string(),
                    Some(Err(e)) => {
                        return out.failed.push(fail(f.msg, "expression-error", name, e));
                    }
                };
                let (skus, qtys) = (as_list(skus), as_list(qtys));
                if skus.len() != qtys.len() {
                    let e = format!("{} SKUs but {} quantities", skus.len(), qtys.len());
                    return out.failed.push(fail(f.msg, "expression-error", name, e));
                }
                let mut lines = Vec::with_capacity(skus.len());
                for (s, q) in skus.iter().zip(&qtys) {
                    let (Some(s), Some(q)) = (s.as_str(), as_qty(q)) else {
                        let e = format!(
                            "line {s} × {q}: a SKU must be a string and a quantity a whole number"
                        );
                        return out.failed.push(fail(f.msg, "expression-error", name, e));
                    };
                    lines.push((s.to_string(), q));
                }
                match state.reserve(&loc, &lines, *on_short == OnShort::Backorder) {
                    Reservation::Reserved => next.push(f),
                    Reservation::Short(short) => {
                        let detail: Vec<Value> = short
                            .iter()
                            .map(|(s, want, have)| serde_json::json!({"sku": s, "wanted": want, "available": have}))
                            .collect();
                        match on_short {
                            OnShort::Backorder => {
                                f.msg.set_meta("backordered", Value::Array(detail));
                                next.push(f);
                            }
                            OnShort::Reject => {
                                let list = short
                                    .iter()
                                    .map(|(s, w, h)| format!("{s} (wanted {w}, available {h})"))
                                    .collect::<Vec<_>>()
                                    .join(", ");
                                out.failed.push(fail(
                                    f.msg,
                                    "out-of-stock",
                                    name,
                                    format!("short at `{loc}`: {list}"),
                                ));
                            }
                        }
                    }
                }
            }
        }
    }

    fn after_script(
        &self,
        mut f: Flight,
        body: Value,
        produces: Option<&str>,
        name: &str,
        next: &mut Vec<Flight>,
        out: &mut Outcome<'p>,
    ) {
        f.msg.set_body(body);
        f.clean = false;
        if let Some(schema) = produces {
            f.msg.set_meta("schema", Value::String(schema.to_string()));
            if let Err(error) = self.check(&f.msg, schema, name) {
                out.failed.push(Failure {
                    message: f.msg,
                    error,
                });
                return;
            }
            f.clean = true;
        }
        next.push(f);
    }

    #[allow(clippy::too_many_arguments)]
    fn run_switch(
        &self,
        pipeline: &'p Pipeline,
        mode: SwitchMode,
        cases: &'p [SwitchCaseDef],
        default: Option<&'p SwitchCaseDef>,
        name: &str,
        f: Flight,
        next: &mut Vec<Flight>,
        out: &mut Outcome<'p>,
        state: &mut dyn State,
    ) {
        let mut matched = Vec::new();
        for (ci, case) in cases.iter().enumerate() {
            let Some(when) = &case.when else { continue };
            match self.eval(when, &f.msg) {
                Ok(v) if truthy(&v) => {
                    matched.push((ci, case));
                    if mode == SwitchMode::First {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    out.failed.push(fail(
                        f.msg,
                        "expression-error",
                        &format!("{name} case {ci} when"),
                        e,
                    ));
                    return;
                }
            }
        }
        let taken: Vec<(String, &SwitchCaseDef)> = if matched.is_empty() {
            match default {
                Some(d) => vec![(format!("{name} default: "), d)],
                None => {
                    next.push(f);
                    return;
                }
            }
        } else {
            matched
                .into_iter()
                .map(|(ci, c)| {
                    (
                        format!(
                            "{name} case {}: ",
                            c.name.clone().unwrap_or_else(|| ci.to_string())
                        ),
                        c,
                    )
                })
                .collect()
        };
        let mut copies = Vec::with_capacity(taken.len());
        let last = taken.len().saturating_sub(1);
        let mut original = Some(f);
        for (i, _) in taken.iter().enumerate() {
            let flight = if i == last {
                original.take()
            } else {
                original.as_ref().map(|o| Flight {
                    msg: o.msg.clone(),
                    clean: o.clean,
                })
            };
            if let Some(fl) = flight {
                copies.push(fl);
            }
        }
        for ((prefix, case), mut flight) in taken.into_iter().zip(copies) {
            if let Some(route) = &case.name {
                flight.msg.set_meta("route", Value::String(route.clone()));
            }
            let mut sub = Outcome::default();
            let continuing = self.run_steps(
                pipeline,
                &case.steps,
                &prefix,
                0,
                vec![flight],
                &mut sub,
                state,
            );
            if case.outputs.is_empty() {
                next.extend(continuing);
            } else {
                self.deliver(&case.outputs, continuing, case.name.as_deref(), &mut sub);
            }
            out.absorb(sub);
        }
    }

    fn make_batch(
        &self,
        messages: Vec<Message>,
        schema: Option<&str>,
        name: &str,
        out: &mut Outcome<'p>,
    ) -> Option<Flight> {
        let first = messages.first()?.clone();
        let bodies: Vec<Value> = messages.into_iter().map(|mut m| m.take_body()).collect();
        let mut batch = first.child(Value::Array(bodies), (self.ids)());
        batch.set_meta(
            "schema",
            schema.map_or(Value::Null, |s| Value::String(s.to_string())),
        );
        match schema {
            Some(s) => match self.check(&batch, s, name) {
                Ok(()) => Some(Flight {
                    msg: batch,
                    clean: true,
                }),
                Err(error) => {
                    out.failed.push(Failure {
                        message: batch,
                        error,
                    });
                    None
                }
            },
            None => Some(Flight {
                msg: batch,
                clean: false,
            }),
        }
    }
}

fn fail(message: Message, code: &'static str, step: &str, text: impl Into<String>) -> Failure {
    let message_id = message.id().to_string();
    Failure {
        message,
        error: StepError {
            code,
            step: step.to_string(),
            message: text.into(),
            violations: Vec::new(),
            message_id,
        },
    }
}

fn step_kind(s: &Step) -> &'static str {
    match s {
        Step::Validate { .. } => "validate",
        Step::Map { .. } => "map",
        Step::Filter { .. } => "filter",
        Step::Switch { .. } => "switch",
        Step::Split { .. } => "split",
        Step::Batch { .. } => "batch",
        Step::Dedupe { .. } => "dedupe",
        Step::Metadata { .. } => "metadata",
        Step::Script { .. } => "script",
        Step::Plugin { .. } => "plugin",
        Step::Reserve { .. } => "reserve",
    }
}

/// JMESPath truthiness: false, null, and empty strings, arrays and objects are false.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn as_list(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// `headers.x-event-id` → meta["headers"]["x-event-id"].
fn lookup_meta<'a>(meta: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = meta.get(path) {
        return Some(v);
    }
    let (head, rest) = path.split_once('.')?;
    let mut cur = meta.get(head)?;
    for seg in rest.split('.') {
        cur = cur.get(seg).or_else(|| cur.get(seg.to_ascii_lowercase()))?;
    }
    Some(cur)
}

/// Runs a Rhai script (or one of its functions) with `body` and `meta` in scope; the value is
/// the new body.
fn run_rhai(
    engine: &rhai::Engine,
    ast: &rhai::AST,
    function: Option<&str>,
    msg: &Message,
    settings: Option<Value>,
) -> Result<Value, String> {
    let body = rhai::serde::to_dynamic(msg.body()).map_err(|e| e.to_string())?;
    let meta = rhai::serde::to_dynamic(msg.meta()).map_err(|e| e.to_string())?;
    let mut scope = rhai::Scope::new();
    let result: rhai::Dynamic = match function {
        None => {
            scope.push_dynamic("body", body);
            scope.push_dynamic("meta", meta);
            engine
                .eval_ast_with_scope(&mut scope, ast)
                .map_err(|e| e.to_string())?
        }
        Some(f) => match settings {
            Some(s) => {
                let s = rhai::serde::to_dynamic(&s).map_err(|e| e.to_string())?;
                engine
                    .call_fn(&mut scope, ast, f, (body, s))
                    .map_err(|e| e.to_string())?
            }
            None => engine
                .call_fn(&mut scope, ast, f, (body,))
                .map_err(|e| e.to_string())?,
        },
    };
    rhai::serde::from_dynamic::<Value>(&result).map_err(|e| e.to_string())
}

/// A shared handle to a loaded project for engines on several threads.
pub type SharedProject = Arc<Project>;
