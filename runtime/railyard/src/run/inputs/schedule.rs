//! The schedule input: a message at every tick, retried per the pipeline's policy within the
//! tick, dead-lettered after the last attempt.

use super::*;

/// Emits the schedule's body at every tick. A tick whose outputs fail is logged, not queued:
/// a schedule polls, and the next tick polls again.
pub(crate) async fn scheduled(
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
        let origin = Origin {
            source: format!("schedule:{pipeline}"),
            ..Origin::default()
        };
        match scheduled_tick(&rt, &pipeline, schedule.body(), origin).await {
            Ok(id) => tracing::debug!(pipeline = %pipeline, message_id = %id, "Schedule tick."),
            Err(e) => {
                tracing::warn!(pipeline = %pipeline, error = %e, "Schedule tick failed; the next tick polls again.")
            }
        }
        next = schedule.next_after(at);
    }
    tracing::warn!(pipeline = %pipeline, "Schedule has no further ticks.");
}

/// One schedule tick: retried per the pipeline's `on_error.retry` (a tick is not queued
/// anywhere), dead-lettered after its last attempt.
pub(crate) async fn scheduled_tick(
    rt: &Arc<Runtime>,
    pipeline: &str,
    body: Value,
    origin: Origin,
) -> Result<String, String> {
    let live = rt.live();
    let Some(p) = live.project.pipelines.get(pipeline) else {
        return Err("pipeline not loaded".to_string());
    };
    let mut attempt = 1u32;
    loop {
        let input = Input::Payload {
            body: body.clone(),
            origin: origin.clone(),
        };
        let failed = match run_message(rt, &live, pipeline, input, Unit::default()).await {
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
                rt.write_dead_letter(entry).await.map_err(|e| e.message)?;
                return Err(format!("dead-lettered after {attempt} attempts: {e}"));
            }
        };
        tracing::warn!(pipeline = %p.name, error = %e, attempt, retry_in_ms = millis(wait), "Schedule tick failed; retrying.");
        if !pause(rt, wait).await {
            return Err(format!("stopped while retrying: {e}"));
        }
    }
}
