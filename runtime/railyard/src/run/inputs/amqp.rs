//! The AMQP queue input: each delivery run and settled by the verdict (ack, a retry copy
//! with its attempt count, requeue while held, dead letter).

use super::*;
use railyard_core::json::{PayloadError, parse_payload};

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
        let (rt, pipeline, stopping) = (rt.clone(), pipeline.clone(), stopping.clone());
        let origin = Origin {
            id: props.message_id,
            correlation_id: props.correlation_id,
            source: format!("amqp:{queue}"),
            ..Origin::default()
        };
        async move {
            let body = match delivery_body(&data) {
                Ok(body) => body,
                Err(e) => return refuse_delivery(&rt, &pipeline, &data, origin, e, stopping).await,
            };
            let input = move |_: &Runtime| Input::Payload { body, origin };
            amqp_delivery(rt, pipeline, attempt, stopping, input).await
        }
    })
    .await;
}

/// The body of a delivery (AMQP queue or broker topic), through the one JSON intake
/// ([`railyard_core::json::parse_payload`]): JSON as written; a body that is not JSON at
/// all is carried as a string, as before (a text payload); JSON that cannot be taken as
/// written — a duplicate key, an integer beyond 64 bits — is `Err`, for
/// [`refuse_delivery`], never run with a guess.
pub(crate) fn delivery_body(data: &[u8]) -> Result<Value, PayloadError> {
    match parse_payload(data) {
        Ok(body) => Ok(body),
        Err(e) if e.is_syntax() => Ok(Value::String(String::from_utf8_lossy(data).into_owned())),
        Err(e) => Err(e),
    }
}

/// Dead-letters a delivery whose JSON body was refused (step `input`, code
/// `invalid-payload`, the reason naming the key or the integer; the body kept as text) and
/// acks it: a retry would be refused the same way. Requeued while the dead letter cannot be
/// written.
pub(crate) async fn refuse_delivery(
    rt: &Arc<Runtime>,
    pipeline: &str,
    data: &[u8],
    origin: Origin,
    error: PayloadError,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Settle {
    let live = rt.live();
    let Some(p) = live.project.pipelines.get(pipeline) else {
        tokio::time::sleep(Duration::from_secs(1)).await;
        return Settle::Requeue;
    };
    tracing::warn!(pipeline = %pipeline, error = %error, "Refused a delivery whose JSON is ambiguous; dead-lettering it.");
    let text = Value::String(String::from_utf8_lossy(data).into_owned());
    let msg = Message::new(text, origin, &|| rt.next_id());
    let reason = json!({
        "code": "invalid-payload",
        "class": ErrorClass::Permanent.as_str(),
        "message": format!("body {error}"),
    });
    match rt
        .write_dead_letter(dead_letter_entry(p, &msg, None, "input", reason))
        .await
    {
        Ok(()) => Settle::Ack,
        Err(_) => {
            tokio::select! {
                _ = tokio::time::sleep(railyard_core::delivery::HOLD_DELAY) => {}
                _ = stop.wait_for(|stopping| *stopping) => {}
            }
            Settle::Requeue
        }
    }
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
