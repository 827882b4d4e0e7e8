//! Topic inputs: over the embedded store (`consume`: lease, run, commit the unit of work
//! with the ack, or carry out the verdict) and over RabbitMQ (`amqp_topic_input`).

use super::*;

/// Consumes one topic for one pipeline: lease, process, emit, ack. A delivery whose outputs
/// fail is not acked; its lease expires and it comes back.
pub(crate) async fn consume(
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
        let (t2, g2) = (topic.clone(), group.clone());
        let leased = rt
            .db
            .run(move |s| s.lease(&t2, &g2, 32, LEASE_MS, outputs::now_ms()))
            .await
            .map_err(|e| e.to_string());
        let handled = match leased {
            Ok(leased) => {
                let n = leased.len();
                let live = rt.live();
                for delivery in leased {
                    let msg = topic_message(
                        &rt,
                        delivery.message.clone(),
                        &topic,
                        &group,
                        format!("{topic}#{}", delivery.seq),
                        delivery.attempt,
                    );
                    let unit = Unit {
                        ack: Some(delivery.clone()),
                        ..Unit::default()
                    };
                    let ran = run_message(&rt, &live, &pipeline, Input::Message(msg), unit).await;
                    if let (Err(failed), Some(p)) = (ran, live.project.pipelines.get(&pipeline)) {
                        let (rt2, p2) = (rt.clone(), p.clone());
                        let _ = tokio::task::spawn_blocking(move || {
                            settle_delivery(&rt2, &p2, &delivery, failed)
                        })
                        .await;
                    }
                }
                Ok(n)
            }
            Err(e) => Err(e),
        };
        let idle = match handled {
            Ok(n) => n == 0,
            Err(e) => {
                if let Some(suppressed) = errors.admit(Instant::now()) {
                    tracing::error!(topic = %topic, error = %e, repeated = suppressed, "Store unavailable; consumer waits.");
                }
                true
            }
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
pub(crate) fn settle_delivery(
    rt: &Runtime,
    p: &Pipeline,
    delivery: &railyard_store::Leased,
    failed: Failed,
) {
    let Failed {
        error: e,
        original: mut msg,
        in_flight: _,
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

/// Consumes a topic carried by RabbitMQ (`RAILYARD_AMQP_URL`): the queue `railyard.<topic>.<group>`
/// bound to the topics exchange, holding envelopes published by `railyard run`.
pub(crate) async fn amqp_topic_input(
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
        let (rt, pipeline, stopping) = (rt.clone(), pipeline.clone(), stopping.clone());
        async move {
            let raw = match delivery_body(&data) {
                Ok(raw) => raw,
                Err(e) => {
                    let origin = Origin {
                        id: props.message_id,
                        correlation_id: props.correlation_id,
                        source: format!("topic:{topic}"),
                        ..Origin::default()
                    };
                    return refuse_delivery(&rt, &pipeline, &data, origin, e, stopping).await;
                }
            };
            let input = move |rt: &Runtime| {
                let fallback = props.message_id.unwrap_or_else(|| rt.next_id());
                Input::Message(topic_message(rt, raw, &topic, &group, fallback, attempt))
            };
            amqp_delivery(rt, pipeline, attempt, stopping, input).await
        }
    })
    .await;
}

/// A message consumed from a topic (embedded store or broker). A published envelope becomes
/// its child, with the id `<published id>~<group>` so a redelivery keeps it (peers can use it
/// as an idempotency key); anything else (published by another system) is taken as a body
/// with `fallback_id`.
pub(crate) fn topic_message(
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
