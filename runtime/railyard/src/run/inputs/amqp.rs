//! The AMQP queue input: each delivery run and settled by the verdict (ack, a retry copy
//! with its attempt count, requeue while held, dead letter).

use super::*;

/// Consumes a RabbitMQ queue: each delivery is handed to the pipeline and acked once its
/// outputs confirmed (or it was dead-lettered); when they fail it goes back to the queue after
/// a backoff, to be redelivered.
pub(crate) async fn amqp_input(
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

/// Hands one AMQP delivery to `pipeline` and says how to settle it. After a transient output
/// failure it waits the pipeline's backoff, then asks for a retry (a copy with the next attempt
/// number) or, after the last attempt, dead-letters the message; while a destination broker is
/// down the delivery is requeued without spending an attempt. A stop cuts the backoff short:
/// the delivery settles at once (a retry copy, or back to the queue), so a stop never waits
/// for a backoff of minutes.
pub(crate) async fn amqp_delivery(
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
    let (how, wait) = match run_message(&rt, &live, &pipeline, input, Unit::default()).await {
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
                    match rt.write_dead_letter(entry).await {
                        Ok(()) => (Settle::Ack, None),
                        Err(_) => (Settle::Requeue, Some(railyard_core::delivery::HOLD_DELAY)),
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
