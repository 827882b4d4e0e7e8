//! `webhook-retry`: N distinct webhook events delivered the way a platform (Shopify) delivers
//! them: each event carries its own event id in a header (`--id-header`, e.g. `X-Event-Id`) and
//! is re-sent with the SAME id until the receiver answers 2xx — after a refused or reset
//! connection (the receiver is being killed and restarted), a timeout, a 5xx, a 408 or a 429
//! (`Retry-After` honoured, capped at `--max-retry-after`). Any other 4xx is final (counted as
//! rejected). Made for the crash harness (`benches/crash/crash.sh`): the receiver is killed with
//! SIGKILL at random points while this runs, and the harness then counts what came out.
//!
//! C workers, each with its own keep-alive HTTP/1.1 connection, take the next event (optionally
//! released at R events/s) and deliver it before taking another one. A retry waits `Retry-After`
//! (for a 503 or 429 that sends one) or an exponential backoff from `--retry-min-ms` to
//! `--retry-max-ms`. Past `--deadline` seconds from the start, undelivered events are given up.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;

use crate::payload::{Payload, PayloadArgs};
use crate::stats::{ms, quantile, rate, report, secs};

#[derive(clap::Args, Debug)]
pub struct WebhookArgs {
    /// Where to POST.
    #[arg(long)]
    url: String,
    /// Number of distinct events.
    #[arg(short, long)]
    n: u64,
    /// Events released per second (0: as fast as the connections allow).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Connections (one request in flight on each).
    #[arg(short, long, default_value_t = 16)]
    connections: usize,
    /// Header that carries the event id (the same on every retry of an event).
    #[arg(long, default_value = "X-Event-Id")]
    id_header: String,
    /// Extra request header `Name: value` (repeatable).
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// Longest wait honoured from a `Retry-After`, in seconds.
    #[arg(long, default_value_t = 1.0)]
    max_retry_after: f64,
    /// First backoff after a transport error or a 5xx without `Retry-After`, in ms.
    #[arg(long, default_value_t = 50)]
    retry_min_ms: u64,
    /// Longest backoff, in ms (the backoff doubles from `--retry-min-ms` up to this).
    #[arg(long, default_value_t = 1000)]
    retry_max_ms: u64,
    /// Request timeout in seconds (a timeout is retried).
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Give up the events not delivered this many seconds after the start.
    #[arg(long, default_value_t = 600.0)]
    deadline: f64,
    /// Write the ids of the events answered 2xx, one a line.
    #[arg(long)]
    accepted_out: Option<std::path::PathBuf>,
    /// Write the ids of the events that needed more than one attempt, one a line.
    #[arg(long)]
    retried_out: Option<std::path::PathBuf>,
    /// Write the ids of the events given up or rejected, one a line.
    #[arg(long)]
    failed_out: Option<std::path::PathBuf>,
    #[command(flatten)]
    payload: PayloadArgs,
}

/// Why an attempt is retried.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Cause {
    /// The connection could not be made (refused: the server is down).
    Connect,
    /// The request timed out.
    Timeout,
    /// Any other transport error: reset, closed before the response, incomplete response.
    Reset,
    /// 503 Service Unavailable.
    Status503,
    /// Another retryable status: other 5xx, 408, 429.
    OtherStatus,
}

impl Cause {
    fn name(self) -> &'static str {
        match self {
            Cause::Connect => "connect_refused",
            Cause::Timeout => "timeout",
            Cause::Reset => "reset_or_closed",
            Cause::Status503 => "status_503",
            Cause::OtherStatus => "status_other_retryable",
        }
    }
}

#[derive(Default)]
struct Tally {
    accepted: Vec<String>,
    /// Events that needed more than one attempt.
    retried: Vec<String>,
    gave_up: Vec<String>,
    rejected: Vec<String>,
    attempts: u64,
    /// Retried attempts by cause.
    causes: BTreeMap<Cause, u64>,
    first_error: BTreeMap<Cause, String>,
    /// Final non-retryable statuses.
    rejected_status: BTreeMap<u16, u64>,
    /// 2xx statuses.
    ok_status: BTreeMap<u16, u64>,
    /// Longest time from the first attempt of an event to its 2xx.
    delivery: Vec<Duration>,
    max_attempts: u32,
}

pub async fn webhook(a: WebhookArgs) -> anyhow::Result<bool> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let payload = Arc::new(Payload::new(&a.payload)?);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::CONTENT_TYPE,
        reqwest::header::HeaderValue::from_static("application/json"),
    );
    for h in &a.headers {
        let (k, v) = h
            .split_once(':')
            .with_context(|| format!("a header is `Name: value`, not `{h}`"))?;
        headers.insert(
            reqwest::header::HeaderName::from_bytes(k.trim().as_bytes())?,
            reqwest::header::HeaderValue::from_str(v.trim())?,
        );
    }
    let id_header = reqwest::header::HeaderName::from_bytes(a.id_header.as_bytes())
        .with_context(|| format!("`{}` is not a header name", a.id_header))?;
    let conns = a.connections.max(1);
    let (tx, rx) = tokio::sync::mpsc::channel::<u64>(conns * 4);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(a.deadline.max(0.0));
    let min_backoff = Duration::from_millis(a.retry_min_ms.max(1));
    let max_backoff = Duration::from_millis(a.retry_max_ms.max(a.retry_min_ms.max(1)));
    let max_wait = a.max_retry_after.max(0.0);
    let mut workers = Vec::new();
    for w in 0..conns {
        let client = reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs_f64(a.timeout))
            .connect_timeout(Duration::from_secs_f64(a.timeout.min(5.0)))
            .default_headers(headers.clone())
            .build()
            .context("cannot build the HTTP client")?;
        let (rx, payload, url, id_header) = (
            rx.clone(),
            payload.clone(),
            a.url.clone(),
            id_header.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut t = Tally::default();
            // A cheap per-worker jitter source (xorshift), so that 16 workers that lost their
            // connections together do not all come back in the same millisecond.
            let mut seed: u64 = 0x9E37_79B9_7F4A_7C15 ^ ((w as u64 + 1) << 17);
            let mut jitter = move |d: Duration| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                // 75%..125% of d
                d.mul_f64(0.75 + (seed % 1000) as f64 / 2000.0)
            };
            loop {
                let job = { rx.lock().await.recv().await };
                let Some(i) = job else { break };
                let id = payload.id(i);
                let body = payload.body(i);
                let first = Instant::now();
                let mut attempt: u32 = 0;
                let mut backoff = min_backoff;
                let outcome = loop {
                    if attempt > 0 && Instant::now() >= deadline {
                        break None;
                    }
                    attempt += 1;
                    t.attempts += 1;
                    let req = client
                        .post(&url)
                        .header(&id_header, id.as_str())
                        .body(body.clone());
                    let (cause, retry_after) = match req.send().await {
                        Ok(resp) => {
                            let status = resp.status().as_u16();
                            let retry_after = resp
                                .headers()
                                .get(reqwest::header::RETRY_AFTER)
                                .and_then(|v| v.to_str().ok())
                                .and_then(|v| v.trim().parse::<f64>().ok());
                            // Read the body: a reset while reading it is a transport error, but
                            // the status was already sent, so the event was accepted.
                            let _ = resp.bytes().await;
                            if (200..300).contains(&status) {
                                *t.ok_status.entry(status).or_default() += 1;
                                break Some(Ok(()));
                            }
                            let cause = match status {
                                503 => Cause::Status503,
                                408 | 429 | 500..=599 => Cause::OtherStatus,
                                _ => {
                                    *t.rejected_status.entry(status).or_default() += 1;
                                    break Some(Err(()));
                                }
                            };
                            t.first_error
                                .entry(cause)
                                .or_insert_with(|| format!("HTTP {status}"));
                            (cause, retry_after)
                        }
                        Err(e) => {
                            let cause = if e.is_timeout() {
                                Cause::Timeout
                            } else if e.is_connect() {
                                Cause::Connect
                            } else {
                                Cause::Reset
                            };
                            t.first_error
                                .entry(cause)
                                .or_insert_with(|| format!("{e:#}"));
                            (cause, None)
                        }
                    };
                    *t.causes.entry(cause).or_default() += 1;
                    let wait = match retry_after {
                        Some(s) => Duration::from_secs_f64(s.clamp(0.0, max_wait)),
                        None => {
                            let d = jitter(backoff);
                            backoff = (backoff * 2).min(max_backoff);
                            d
                        }
                    };
                    let wake = (Instant::now() + wait).min(deadline.max(Instant::now()));
                    tokio::time::sleep_until(wake.into()).await;
                };
                t.max_attempts = t.max_attempts.max(attempt);
                if attempt > 1 {
                    t.retried.push(id.clone());
                }
                match outcome {
                    Some(Ok(())) => {
                        t.delivery.push(first.elapsed());
                        t.accepted.push(id);
                    }
                    Some(Err(())) => t.rejected.push(id),
                    None => t.gave_up.push(id),
                }
            }
            t
        }));
    }
    let n = a.n;
    let per = if a.rate > 0.0 { 1.0 / a.rate } else { 0.0 };
    for i in 0..n {
        if per > 0.0 {
            let due = start + Duration::from_secs_f64(i as f64 * per);
            tokio::time::sleep_until(due.into()).await;
        }
        if tx.send(i).await.is_err() {
            break;
        }
    }
    drop(tx);
    let mut all = Tally::default();
    for w in workers {
        let t = w.await.context("a worker panicked")?;
        all.accepted.extend(t.accepted);
        all.retried.extend(t.retried);
        all.gave_up.extend(t.gave_up);
        all.rejected.extend(t.rejected);
        all.attempts += t.attempts;
        for (k, v) in t.causes {
            *all.causes.entry(k).or_default() += v;
        }
        for (k, v) in t.first_error {
            all.first_error.entry(k).or_insert(v);
        }
        for (k, v) in t.rejected_status {
            *all.rejected_status.entry(k).or_default() += v;
        }
        for (k, v) in t.ok_status {
            *all.ok_status.entry(k).or_default() += v;
        }
        all.delivery.extend(t.delivery);
        all.max_attempts = all.max_attempts.max(t.max_attempts);
    }
    let elapsed = start.elapsed();
    all.delivery.sort_unstable();
    for (path, ids) in [
        (&a.accepted_out, &all.accepted),
        (&a.retried_out, &all.retried),
        (&a.failed_out, &{
            let mut v = all.gave_up.clone();
            v.extend(all.rejected.iter().cloned());
            v
        }),
    ] {
        if let Some(path) = path {
            write_ids(path, ids)?;
        }
    }
    let accepted = all.accepted.len() as u64;
    let retries: u64 = all.causes.values().sum();
    let d = &all.delivery;
    report(
        "webhook-retry",
        &json!({
            "events": n, "accepted": accepted,
            "retried_events": all.retried.len(), "retries": retries, "attempts": all.attempts,
            "max_attempts": all.max_attempts,
            "retry_causes": all.causes.iter().map(|(k, v)| (k.name().to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "first_error": all.first_error.iter().map(|(k, v)| (k.name().to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "ok_status": all.ok_status.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "rejected": all.rejected.len(),
            "rejected_status": all.rejected_status.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "gave_up": all.gave_up.len(),
            "elapsed_s": secs(elapsed), "rate": rate(accepted, elapsed),
            "delivery_p50_ms": ms(quantile(d, 0.5)), "delivery_p99_ms": ms(quantile(d, 0.99)),
            "delivery_max_ms": ms(quantile(d, 1.0)),
            "id_prefix": payload.prefix,
        }),
    );
    Ok(accepted == n)
}

fn write_ids(path: &std::path::Path, ids: &[String]) -> anyhow::Result<()> {
    let mut text = ids.join("\n");
    if !ids.is_empty() {
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
