//! Prometheus metrics for `railyard run`, recorded through the `metrics` facade and rendered
//! by `metrics-exporter-prometheus` on the admin server's `/metrics` (no listener of its own).
//!
//! Every name lives here, so the set an operator scrapes is one page of code:
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `railyard_messages_total` | pipeline, outcome | `in`; `delivered` (every output confirmed); `dropped` (by a step); `failed` (in a step); `dead_lettered`; `retried` (an output failed, the message goes back to its source); `held` (a destination is unreachable) |
//! | `railyard_message_duration_seconds` | pipeline | one message: steps and every output confirmed |
//! | `railyard_step_messages_total` | pipeline, step, outcome | `in`, `out`, `failed`, `dropped` per step |
//! | `railyard_step_duration_seconds` | pipeline, step | one step over the messages that reached it |
//! | `railyard_output_total` | pipeline, output, result | `ok`, `retry`, `held`, `rejected` |
//! | `railyard_output_duration_seconds` | pipeline, output | one send, until confirmed or failed |
//! | `railyard_reloads_total` | outcome | `ok`, `failed` |
//! | `railyard_config_valid` | | 1 when the last change compiled, 0 while an invalid one is refused |
//! | `railyard_pipeline_version` | pipeline | the version new messages take |
//! | `railyard_broker_connected` | worker | 1 while that AMQP consumer is connected |

use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use railyard_core::engine::StepCounts;

/// Latency buckets, in seconds: sub-millisecond steps up to a slow ERP.
const BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// Installs the process-wide recorder. Histograms ending in `_seconds` get [`BUCKETS`].
pub fn install() -> Result<PrometheusHandle, String> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_string()), BUCKETS)
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| e.to_string())
}

pub fn messages(pipeline: &str, outcome: &'static str, n: u64) {
    if n > 0 {
        counter!("railyard_messages_total", "pipeline" => pipeline.to_string(), "outcome" => outcome)
            .increment(n);
    }
}

pub fn message_duration(pipeline: &str, took: Duration) {
    histogram!("railyard_message_duration_seconds", "pipeline" => pipeline.to_string())
        .record(took);
}

pub fn step(pipeline: &str, step: &str, counts: StepCounts, took: Duration) {
    let labels = |outcome: &'static str| {
        [
            ("pipeline", pipeline.to_string()),
            ("step", step.to_string()),
            ("outcome", outcome.to_string()),
        ]
    };
    for (outcome, n) in [
        ("in", counts.input),
        ("out", counts.output),
        ("failed", counts.failed),
        ("dropped", counts.dropped),
    ] {
        if n > 0 {
            counter!("railyard_step_messages_total", &labels(outcome)).increment(n as u64);
        }
    }
    histogram!(
        "railyard_step_duration_seconds",
        "pipeline" => pipeline.to_string(),
        "step" => step.to_string()
    )
    .record(took);
}

/// How one output send ended.
#[derive(Clone, Copy, Debug)]
pub enum Sent {
    Ok,
    /// Transient: the message is retried.
    Retry,
    /// The destination is unreachable: the message is held.
    Held,
    /// Permanent: the message is dead-lettered.
    Rejected,
}

pub fn output(pipeline: &str, output: &str, result: Sent, took: Duration) {
    let result = match result {
        Sent::Ok => "ok",
        Sent::Retry => "retry",
        Sent::Held => "held",
        Sent::Rejected => "rejected",
    };
    counter!(
        "railyard_output_total",
        "pipeline" => pipeline.to_string(),
        "output" => output.to_string(),
        "result" => result
    )
    .increment(1);
    histogram!(
        "railyard_output_duration_seconds",
        "pipeline" => pipeline.to_string(),
        "output" => output.to_string()
    )
    .record(took);
}

/// A reload (not the initial load) succeeded or was refused.
pub fn reload(ok: bool) {
    counter!("railyard_reloads_total", "outcome" => if ok { "ok" } else { "failed" }).increment(1);
    config_valid(ok);
}

pub fn config_valid(ok: bool) {
    gauge!("railyard_config_valid").set(if ok { 1.0 } else { 0.0 });
}

pub fn pipeline_version(pipeline: &str, version: u32) {
    gauge!("railyard_pipeline_version", "pipeline" => pipeline.to_string()).set(f64::from(version));
}

pub fn broker(worker: &str, connected: bool) {
    gauge!("railyard_broker_connected", "worker" => worker.to_string()).set(if connected {
        1.0
    } else {
        0.0
    });
}

/// Dead letters held, per pipeline and error code (a gauge: a replay or a drop lowers it).
/// A label set seen before and now gone is set to 0 rather than left at its last value.
pub fn dead_letters(counts: &[(String, String, u64)]) {
    static SEEN: std::sync::Mutex<std::collections::BTreeSet<(String, String)>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut seen = SEEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let now: std::collections::BTreeSet<(String, String)> = counts
        .iter()
        .map(|(p, c, _)| (p.clone(), c.clone()))
        .collect();
    for (p, c) in seen.difference(&now) {
        gauge!("railyard_dead_letters", "pipeline" => p.clone(), "code" => c.clone()).set(0.0);
    }
    for (p, c, n) in counts {
        gauge!("railyard_dead_letters", "pipeline" => p.clone(), "code" => c.clone())
            .set(*n as f64);
    }
    seen.extend(now);
}

/// Each embedded topic subscription's backlog: deliveries not yet acked, and how long ago the
/// oldest of them was received (0 with none waiting; a message without `received_at` counts
/// as just received).
pub fn backlog(rows: &[railyard_store::Backlog], now_ms: i64) {
    for b in rows {
        let labels = [("topic", b.topic.clone()), ("group", b.group.clone())];
        gauge!("railyard_topic_backlog", &labels).set(b.depth as f64);
        let age = b
            .oldest_received_at
            .as_deref()
            .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0.0, |t| {
                ((now_ms - t.as_millis() as i64).max(0) as f64) / 1000.0
            });
        gauge!("railyard_topic_oldest_age_seconds", &labels).set(if b.depth == 0 {
            0.0
        } else {
            age
        });
    }
}

/// One dead letter replayed: `delivered`, `dead_lettered_again` or `left` (a transient failure;
/// it stays where it was).
pub fn replay(pipeline: &str, outcome: &'static str) {
    counter!("railyard_replays_total", "pipeline" => pipeline.to_string(), "outcome" => outcome)
        .increment(1);
}
