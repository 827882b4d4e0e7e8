//! The webhook input: the hand-off the HTTP connector calls for each accepted request (runs
//! the message and answers 202 once its unit of work is settled), and the 503 answer when it
//! could not be handed off.

use super::*;

/// The answer to a webhook whose message could not be handed off: 503 with a `Retry-After`
/// from the pipeline's policy (the platform's retry is the next attempt; its attempt number
/// is not known here, so the first retry's delay), at least one second. The caller learns
/// the message id and that it should retry, never the downstream error: that names hosts,
/// paths and answers of the systems behind Railyard. The log has it.
pub(crate) fn webhook_unavailable(live: &Live, pipeline: &str, failed: Failed) -> Unavailable {
    let e = failed.error;
    let id = failed.original.id();
    tracing::warn!(pipeline = %pipeline, message_id = %id, class = e.class.as_str(), error = %e, "A webhook was answered 503: its message could not be handed off.");
    let wait = live
        .project
        .pipelines
        .get(pipeline)
        .map(|p| match driver::verdict(p, 1, Some(&e)) {
            Verdict::Retry(d) | Verdict::Hold(d) => d,
            Verdict::Ack | Verdict::DeadLetter => railyard_core::delivery::HOLD_DELAY,
        })
        .unwrap_or(railyard_core::delivery::HOLD_DELAY);
    let why = match e.class {
        // The sender's own copy: telling it so reveals nothing behind Railyard.
        _ if failed.in_flight => "another copy of it is in flight",
        ErrorClass::Held => "a destination is unavailable",
        ErrorClass::Transient | ErrorClass::Permanent => "a destination did not accept it yet",
    };
    Unavailable {
        retry_after_secs: wait.as_secs().max(1),
        reason: format!("message {id} was not accepted: {why}; send it again"),
    }
}

/// What the HTTP connector calls with each accepted request: the message's id once it is
/// settled (202), or why not (503 with `Retry-After`). While the store cannot be written,
/// every request is answered 503 at once.
pub(crate) fn webhook_handoff(rt: &Arc<Runtime>) -> Handoff {
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
            // On its own task: a sender that hangs up mid-request drops this future, and the
            // message must still finish (outputs confirmed, its unit of work settled) rather
            // than stop halfway with its dedupe key pending.
            let pipeline = inbound.pipeline;
            let (rt2, live2, name) = (rt.clone(), live.clone(), pipeline.clone());
            let ran = tokio::spawn(async move {
                run_message(&rt2, &live2, &name, input, Unit::default()).await
            })
            .await;
            match ran {
                Ok(result) => {
                    result.map_err(|failed| webhook_unavailable(&live, &pipeline, failed))
                }
                Err(e) => Err(Unavailable {
                    retry_after_secs: 1,
                    reason: format!("the message's task failed: {e}"),
                }),
            }
        })
    })
}
