//! AMQP commands: publish, drain, the baseline forwarder, queue admin.

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions, QueuePurgeOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use railyard_connectors::amqp;
use serde_json::json;

use crate::payload::{Payload, PayloadArgs, dotted, get};
use crate::stats::{rate, report, secs, seq_of, unix_ms};

const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

#[derive(clap::Args, Clone, Debug)]
pub struct Broker {
    /// Broker URL.
    #[arg(long, env = "RAILYARD_AMQP_URL", default_value = DEFAULT_URL)]
    pub url: String,
}

/// Connects, or fails after 10 s: lapin has no timeout of its own, and a connection the broker
/// drops during the handshake has been seen to leave `connect` pending for good.
async fn connect(url: &str) -> anyhow::Result<Connection> {
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        Connection::connect(url, ConnectionProperties::default()),
    )
    .await
    .map_err(|_| anyhow::anyhow!("no answer from the broker within 10 s"))
    .and_then(|c| c.map_err(anyhow::Error::from))
    .with_context(|| format!("cannot connect to {url}"))
}

async fn declare(channel: &Channel, queue: &str) -> anyhow::Result<u32> {
    let q = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .with_context(|| format!("cannot declare the queue `{queue}`"))?;
    Ok(q.message_count())
}

async fn close(conn: &Connection) {
    let _ = conn.close(200, "railyard-load done".into()).await;
}

/// Resolves on SIGINT or SIGTERM.
async fn interrupted() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

// ---------------------------------------------------------------------------------------------

#[derive(clap::Args, Debug)]
pub struct PublishArgs {
    #[command(flatten)]
    broker: Broker,
    /// Publish to this queue through the default exchange (declared durable first).
    #[arg(long, conflicts_with = "exchange")]
    queue: Option<String>,
    /// Publish to this exchange (must exist) with `--routing-key`.
    #[arg(long)]
    exchange: Option<String>,
    #[arg(long, default_value = "")]
    routing_key: String,
    /// Number of messages.
    #[arg(short, long)]
    n: u64,
    /// Messages per second (0: as fast as the confirms allow).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Unconfirmed publishes in flight at most.
    #[arg(long, default_value_t = 1000)]
    inflight: usize,
    /// Publish transient messages (delivery mode 1) instead of persistent ones.
    #[arg(long)]
    transient: bool,
    #[command(flatten)]
    payload: PayloadArgs,
}

pub async fn publish(a: PublishArgs) -> anyhow::Result<bool> {
    let payload = Payload::new(&a.payload)?;
    let conn = connect(&a.broker.url).await?;
    let ch = conn.create_channel().await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    let (exchange, key) = match (&a.queue, &a.exchange) {
        (Some(q), _) => {
            declare(&ch, q).await?;
            (String::new(), q.clone())
        }
        (None, Some(x)) => (x.clone(), a.routing_key.clone()),
        (None, None) => bail!("give --queue or --exchange"),
    };
    let started = Instant::now();
    let mut inflight = FuturesUnordered::new();
    let (mut acked, mut nacked, mut failed) = (0u64, 0u64, 0u64);
    let mut tally = |r: anyhow::Result<bool>| match r {
        Ok(true) => acked += 1,
        Ok(false) => nacked += 1,
        Err(e) => {
            if failed == 0 {
                eprintln!("publish failed: {e:#}");
            }
            failed += 1;
        }
    };
    for i in 0..a.n {
        if a.rate > 0.0 {
            let at = started + Duration::from_secs_f64(i as f64 / a.rate);
            // Confirms keep arriving while we wait for the next slot.
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(at.into()) => break,
                    Some(r) = inflight.next(), if !inflight.is_empty() => tally(r),
                }
            }
        }
        while inflight.len() >= a.inflight.max(1) {
            if let Some(r) = inflight.next().await {
                tally(r);
            }
        }
        let id = payload.id(i);
        let body = payload.body(i);
        let props = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(if a.transient { 1 } else { 2 })
            .with_message_id(id.into());
        let (ch, exchange, key) = (ch.clone(), exchange.clone(), key.clone());
        inflight.push(async move {
            let confirm = ch
                .basic_publish(
                    exchange.as_str().into(),
                    key.as_str().into(),
                    BasicPublishOptions::default(),
                    &body,
                    props,
                )
                .await?;
            Ok(!matches!(confirm.await?, Confirmation::Nack(_)))
        });
    }
    while let Some(r) = inflight.next().await {
        tally(r);
    }
    let elapsed = started.elapsed();
    close(&conn).await;
    report(
        "amqp-publish",
        &json!({
            "published": a.n, "confirmed": acked, "nacked": nacked, "failed": failed,
            "elapsed_s": secs(elapsed), "rate": rate(acked, elapsed),
            "id_prefix": payload.prefix,
        }),
    );
    Ok(acked == a.n)
}

// ---------------------------------------------------------------------------------------------

#[derive(clap::Args, Debug)]
pub struct DrainArgs {
    #[command(flatten)]
    broker: Broker,
    /// Queue to consume (declared durable if absent).
    #[arg(long)]
    queue: String,
    /// Stop once this many distinct ids were seen.
    #[arg(short, long)]
    n: u64,
    /// Take the id from this dotted path of the JSON body instead of the `message_id` property.
    #[arg(long)]
    id_field: Option<String>,
    /// Count only ids with this prefix (others are reported as `foreign`), and list missing
    /// sequence numbers `<prefix><seq>` for seq in start..start+n.
    #[arg(long)]
    id_prefix: Option<String>,
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Give up after this many seconds in all.
    #[arg(long, default_value_t = 600.0)]
    timeout: f64,
    /// Give up when no new id arrived for this many seconds (after the first one).
    #[arg(long, default_value_t = 30.0)]
    idle: f64,
    /// Ack each delivery (prefetch 1000, acks batched with `multiple`) instead of consuming in
    /// no-ack mode.
    #[arg(long)]
    ack: bool,
    /// Write the ids seen (first sighting order) to this file.
    #[arg(long)]
    ids_out: Option<std::path::PathBuf>,
    /// Print the first body received to stderr (to see what the pipeline produced).
    #[arg(long)]
    show_first: bool,
}

pub async fn drain(a: DrainArgs) -> anyhow::Result<bool> {
    let conn = connect(&a.broker.url).await?;
    let ch = conn.create_channel().await?;
    declare(&ch, &a.queue).await?;
    if a.ack {
        ch.basic_qos(1000, BasicQosOptions::default()).await?;
    }
    let mut consumer = ch
        .basic_consume(
            a.queue.as_str().into(),
            "railyard-load-drain".into(),
            BasicConsumeOptions {
                no_ack: !a.ack,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    eprintln!(
        "amqp-drain: consuming `{}`, waiting for {} ids",
        a.queue, a.n
    );
    let id_field = a.id_field.as_deref().map(dotted);
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(a.timeout);
    let idle = Duration::from_secs_f64(a.idle);
    let mut seen: HashSet<String> = HashSet::with_capacity(a.n as usize);
    let mut order: Vec<String> = Vec::new();
    let (mut received, mut duplicates, mut foreign, mut no_id) = (0u64, 0u64, 0u64, 0u64);
    let mut first: Option<(Instant, SystemTime)> = None;
    let mut last: Option<(Instant, SystemTime)> = None;
    let mut unacked = 0u32;
    let mut tail: Option<lapin::message::Delivery> = None;
    let mut why = "complete";
    while (seen.len() as u64) < a.n {
        let wait_until = match last {
            Some((t, _)) => deadline.min(t + idle),
            None => deadline,
        };
        let next = tokio::select! {
            d = consumer.next() => d,
            _ = tokio::time::sleep_until(wait_until.into()) => {
                why = if Instant::now() >= deadline { "timeout" } else { "idle" };
                break;
            }
            _ = interrupted() => { why = "interrupted"; break; }
        };
        let delivery = match next {
            Some(Ok(d)) => d,
            Some(Err(e)) => return Err(e).context("the consumer failed"),
            None => bail!("the consumer was cancelled"),
        };
        received += 1;
        if a.show_first && received == 1 {
            eprintln!(
                "amqp-drain: first body: {}",
                String::from_utf8_lossy(&delivery.data)
            );
        }
        let id = match &id_field {
            Some(p) => serde_json::from_slice(&delivery.data)
                .ok()
                .and_then(|v| get(&v, p)),
            None => delivery
                .properties
                .message_id()
                .as_ref()
                .map(|s| s.to_string()),
        };
        if a.ack {
            unacked += 1;
            if unacked >= 100 {
                delivery.ack(BasicAckOptions { multiple: true }).await?;
                unacked = 0;
                tail = None;
            } else {
                tail = Some(delivery);
            }
        }
        let Some(id) = id else {
            no_id += 1;
            continue;
        };
        if a.id_prefix
            .as_ref()
            .is_some_and(|p| !id.starts_with(p.as_str()))
        {
            foreign += 1;
            continue;
        }
        if seen.contains(&id) {
            duplicates += 1;
            continue;
        }
        let now = (Instant::now(), SystemTime::now());
        first.get_or_insert(now);
        last = Some(now);
        if a.ids_out.is_some() {
            order.push(id.clone());
        }
        seen.insert(id);
    }
    if let Some(d) = tail {
        d.ack(BasicAckOptions { multiple: true }).await?;
    }
    close(&conn).await;
    if let Some(path) = &a.ids_out {
        let mut text = order.join("\n");
        text.push('\n');
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let distinct = seen.len() as u64;
    let missing = a.n.saturating_sub(distinct);
    let mut missing_sample = Vec::new();
    if let Some(prefix) = &a.id_prefix
        && missing > 0
    {
        let got: HashSet<u64> = seen.iter().filter_map(|id| seq_of(id, prefix)).collect();
        missing_sample = (a.start..a.start + a.n)
            .filter(|s| !got.contains(s))
            .take(10)
            .collect();
    }
    let span = match (first, last) {
        (Some((f, _)), Some((l, _))) => l - f,
        _ => Duration::ZERO,
    };
    report(
        "amqp-drain",
        &json!({
            "queue": a.queue, "expected": a.n, "distinct": distinct, "received": received,
            "duplicates": duplicates, "missing": missing, "foreign": foreign, "no_id": no_id,
            "stopped": why,
            "first_unix_ms": first.map(|(_, s)| unix_ms(s)),
            "last_unix_ms": last.map(|(_, s)| unix_ms(s)),
            "first_to_last_s": secs(span),
            "rate": rate(distinct.saturating_sub(1), span),
            "missing_sample": missing_sample,
        }),
    );
    Ok(missing == 0 && duplicates == 0)
}

// ---------------------------------------------------------------------------------------------

#[derive(clap::Args, Debug)]
pub struct ForwardArgs {
    #[command(flatten)]
    broker: Broker,
    /// Source queue (declared durable if absent).
    #[arg(long)]
    from: String,
    /// Destination queue (declared durable if absent), published through the default exchange.
    #[arg(long)]
    to: String,
    /// Prefetch: unacknowledged deliveries, and so publishes awaiting their confirm, in flight.
    #[arg(long, default_value_t = 64)]
    prefetch: u16,
    /// Stop after forwarding this many (0: run until SIGINT/SIGTERM).
    #[arg(short, long, default_value_t = 0)]
    n: u64,
    /// Consume and publish on two connections, as `railyard run` does (RabbitMQ's advice:
    /// flow control on a publishing connection must not stall the consumer's acks), instead
    /// of two channels of one connection.
    #[arg(long)]
    separate_connections: bool,
    /// Coalesce acks as `railyard run` does (`railyard_connectors::amqp::Acks`): the deliveries
    /// that finished together are acked with one `multiple` ack up to the oldest still in hand,
    /// the rest one by one. Without it, each delivery is acked on its own.
    #[arg(long)]
    coalesce_acks: bool,
}

/// Consume → publish with confirms → ack the source once its copy is confirmed. Properties
/// (message id, persistence) and the body are passed through untouched.
pub async fn forward(a: ForwardArgs) -> anyhow::Result<bool> {
    let conn = connect(&a.broker.url).await?;
    let out_conn = if a.separate_connections {
        Some(connect(&a.broker.url).await?)
    } else {
        None
    };
    let cin = conn.create_channel().await?;
    let cout = out_conn.as_ref().unwrap_or(&conn).create_channel().await?;
    cout.confirm_select(ConfirmSelectOptions::default()).await?;
    declare(&cout, &a.to).await?;
    declare(&cin, &a.from).await?;
    cin.basic_qos(a.prefetch, BasicQosOptions::default())
        .await?;
    let mut consumer = cin
        .basic_consume(
            a.from.as_str().into(),
            "railyard-load-forward".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    eprintln!(
        "forward: `{}` -> `{}`, prefetch {}",
        a.from, a.to, a.prefetch
    );
    let limit = usize::from(a.prefetch.max(1));
    let mut inflight = FuturesUnordered::new();
    let mut acking = FuturesUnordered::new();
    let mut acks = amqp::Acks::default();
    let (mut taken, mut forwarded, mut nacked) = (0u64, 0u64, 0u64);
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    let stop = interrupted();
    tokio::pin!(stop);
    let mut stopping = false;
    loop {
        if a.n > 0 && forwarded + nacked >= a.n {
            break;
        }
        if stopping && inflight.is_empty() {
            break;
        }
        tokio::select! {
            next = consumer.next(), if !stopping && inflight.len() < limit && (a.n == 0 || taken < a.n) => {
                let delivery = match next {
                    Some(Ok(d)) => d,
                    Some(Err(e)) => return Err(e).context("the consumer failed"),
                    None => bail!("the consumer was cancelled"),
                };
                first.get_or_insert_with(Instant::now);
                taken += 1;
                let (cout, to) = (cout.clone(), a.to.clone());
                let coalesce = a.coalesce_acks;
                acks.taken(delivery.delivery_tag);
                inflight.push(async move {
                    let confirm = cout
                        .basic_publish(
                            "".into(),
                            to.as_str().into(),
                            BasicPublishOptions::default(),
                            &delivery.data,
                            delivery.properties.clone(),
                        )
                        .await?;
                    let ok = !matches!(confirm.await?, Confirmation::Nack(_));
                    if ok && coalesce {
                        return anyhow::Ok((delivery.delivery_tag, true, true));
                    }
                    if ok {
                        delivery.ack(BasicAckOptions::default()).await?;
                    } else {
                        delivery
                            .nack(BasicNackOptions { requeue: true, ..Default::default() })
                            .await?;
                    }
                    anyhow::Ok((delivery.delivery_tag, ok, false))
                });
            }
            Some(r) = inflight.next(), if !inflight.is_empty() => {
                let mut finished = vec![r?];
                while let Some(r) = amqp::ready(&mut inflight).await {
                    finished.push(r?);
                }
                for (tag, ok, to_ack) in finished {
                    if ok { forwarded += 1 } else { nacked += 1 }
                    acks.done(tag, to_ack);
                }
                acks.send(&cin, &mut acking).await.map_err(anyhow::Error::msg)?;
                last = Instant::now();
            }
            Some(acked) = acking.next(), if !acking.is_empty() => acked.map_err(anyhow::Error::msg)?,
            _ = &mut stop, if !stopping => stopping = true,
        }
    }
    while let Some(acked) = acking.next().await {
        acked.map_err(anyhow::Error::msg)?;
    }
    drop(acking);
    let span = first.map(|f| last - f).unwrap_or_default();
    let _ = cin.close(200, "railyard-load forward done".into()).await;
    close(&conn).await;
    report(
        "forward",
        &json!({
            "from": a.from, "to": a.to, "prefetch": a.prefetch,
            "forwarded": forwarded, "nacked": nacked,
            "first_to_last_s": secs(span), "rate": rate(forwarded, span),
        }),
    );
    Ok(nacked == 0)
}

// ---------------------------------------------------------------------------------------------

#[derive(clap::Args, Debug)]
pub struct QueueArgs {
    #[command(flatten)]
    broker: Broker,
    #[arg(value_enum)]
    action: QueueAction,
    /// Queues to act on.
    #[arg(required = true)]
    queues: Vec<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum QueueAction {
    /// Declare durable (if absent) and print the depth.
    Declare,
    /// Remove every ready message.
    Purge,
    /// Delete the queue (absent queues are fine).
    Delete,
    /// Print the number of ready messages (declares the queue durable if absent).
    Count,
}

pub async fn queue(a: QueueArgs) -> anyhow::Result<bool> {
    let conn = connect(&a.broker.url).await?;
    let mut counts = serde_json::Map::new();
    for q in &a.queues {
        // A failed operation closes the channel: one channel per queue.
        let ch = conn.create_channel().await?;
        let n = match a.action {
            QueueAction::Declare | QueueAction::Count => declare(&ch, q).await?,
            QueueAction::Purge => {
                declare(&ch, q).await?;
                ch.queue_purge(q.as_str().into(), QueuePurgeOptions::default())
                    .await?
            }
            QueueAction::Delete => ch
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await
                .unwrap_or(0),
        };
        counts.insert(q.clone(), n.into());
    }
    close(&conn).await;
    report("amqp-queue", &serde_json::Value::Object(counts));
    Ok(true)
}
