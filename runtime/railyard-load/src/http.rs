//! `http-post`: N distinct JSON messages at a fixed rate over C keep-alive connections.
//!
//! A dispatcher releases message `i` at `start + i / rate` into a queue; C workers, each with
//! its own HTTP/1.1 connection, take the next message and POST it until it is accepted (2xx),
//! waiting `Retry-After` after a 503 and a short pause after a transport error. The message
//! latency is measured from the message's scheduled time, so a server that falls behind shows
//! up in it (no coordinated omission); the request latency is one round trip.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;

use crate::payload::{Payload, PayloadArgs};
use crate::stats::{ms, quantile, rate, report, secs};

#[derive(clap::Args, Debug)]
pub struct PostArgs {
    /// Where to POST.
    #[arg(long)]
    url: String,
    /// Number of distinct messages.
    #[arg(short, long)]
    n: u64,
    /// Messages per second (0: as fast as the connections allow).
    #[arg(long, default_value_t = 500.0)]
    rate: f64,
    /// Connections (one request in flight on each).
    #[arg(short, long, default_value_t = 16)]
    connections: usize,
    /// Extra request header `Name: value` (repeatable).
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// Send the message id in this header too (e.g. an idempotency key).
    #[arg(long)]
    id_header: Option<String>,
    /// Attempts per message before giving up (503s and transport errors are retried).
    #[arg(long, default_value_t = 30)]
    attempts: u32,
    /// Longest wait honoured from a `Retry-After`, in seconds.
    #[arg(long, default_value_t = 5.0)]
    max_retry_after: f64,
    /// Request timeout in seconds.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Write the ids of accepted messages to this file, one a line.
    #[arg(long)]
    accepted_out: Option<std::path::PathBuf>,
    /// Write the ids of every message sent (accepted or not) to this file.
    #[arg(long)]
    sent_out: Option<std::path::PathBuf>,
    /// Write one CSV line per request: `sent_ms,latency_ms,status` (ms since the start; status 0
    /// for a transport error), to see when latency spikes happened.
    #[arg(long)]
    latency_out: Option<std::path::PathBuf>,
    #[command(flatten)]
    payload: PayloadArgs,
}

#[derive(Default)]
struct Tally {
    accepted: Vec<String>,
    gave_up: Vec<String>,
    status_503: u64,
    other: BTreeMap<u16, u64>,
    transport_errors: u64,
    first_error: Option<String>,
    request_latency: Vec<Duration>,
    message_latency: Vec<Duration>,
    /// (sent since start, latency, status) per request.
    requests: Vec<(Duration, Duration, u16)>,
}

struct Job {
    i: u64,
    due: Instant,
}

pub async fn post(a: PostArgs) -> anyhow::Result<bool> {
    // reqwest is built with `rustls-no-provider`; plain http needs no TLS, but the client
    // builder wants a provider installed.
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
    let id_header = match &a.id_header {
        Some(h) => Some(reqwest::header::HeaderName::from_bytes(h.as_bytes())?),
        None => None,
    };
    let conns = a.connections.max(1);
    let (tx, rx) = tokio::sync::mpsc::channel::<Job>(conns * 4);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let start = Instant::now() + Duration::from_millis(50);
    let start_unix_ms = crate::stats::unix_ms(std::time::SystemTime::now()) + 50;
    let mut workers = Vec::new();
    for _ in 0..conns {
        let client = reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs_f64(a.timeout))
            .default_headers(headers.clone())
            .build()
            .context("cannot build the HTTP client")?;
        let (rx, payload, url, id_header) = (
            rx.clone(),
            payload.clone(),
            a.url.clone(),
            id_header.clone(),
        );
        let (attempts, max_wait) = (a.attempts.max(1), a.max_retry_after);
        workers.push(tokio::spawn(async move {
            let mut t = Tally::default();
            loop {
                let job = { rx.lock().await.recv().await };
                let Some(job) = job else { break };
                let id = payload.id(job.i);
                let body = payload.body(job.i);
                let mut done = false;
                for _ in 0..attempts {
                    let mut req = client.post(&url).body(body.clone());
                    if let Some(h) = &id_header {
                        req = req.header(h, id.as_str());
                    }
                    let sent = Instant::now();
                    let since = sent.saturating_duration_since(start);
                    let wait = match req.send().await {
                        Ok(resp) => {
                            let status = resp.status().as_u16();
                            let retry_after = resp
                                .headers()
                                .get(reqwest::header::RETRY_AFTER)
                                .and_then(|v| v.to_str().ok())
                                .and_then(|v| v.trim().parse::<f64>().ok());
                            let _ = resp.bytes().await;
                            t.request_latency.push(sent.elapsed());
                            t.requests.push((since, sent.elapsed(), status));
                            if (200..300).contains(&status) {
                                t.message_latency.push(job.due.elapsed());
                                t.accepted.push(id.clone());
                                done = true;
                                break;
                            }
                            if status == 503 {
                                t.status_503 += 1;
                                Duration::from_secs_f64(
                                    retry_after.unwrap_or(1.0).clamp(0.0, max_wait),
                                )
                            } else {
                                *t.other.entry(status).or_default() += 1;
                                break;
                            }
                        }
                        Err(e) => {
                            t.requests.push((since, sent.elapsed(), 0));
                            t.transport_errors += 1;
                            t.first_error.get_or_insert_with(|| format!("{e:#}"));
                            Duration::from_millis(200)
                        }
                    };
                    tokio::time::sleep(wait).await;
                }
                if !done {
                    t.gave_up.push(id);
                }
            }
            t
        }));
    }
    let n = a.n;
    let per = if a.rate > 0.0 { 1.0 / a.rate } else { 0.0 };
    let mut max_lag = Duration::ZERO;
    for i in 0..n {
        let due = start + Duration::from_secs_f64(i as f64 * per);
        if per > 0.0 {
            tokio::time::sleep_until(due.into()).await;
        }
        max_lag = max_lag.max(Instant::now().saturating_duration_since(due));
        if tx.send(Job { i, due }).await.is_err() {
            break;
        }
    }
    drop(tx);
    let dispatched = start.elapsed();
    let mut all = Tally::default();
    for w in workers {
        let t = w.await.context("a worker panicked")?;
        all.accepted.extend(t.accepted);
        all.gave_up.extend(t.gave_up);
        all.status_503 += t.status_503;
        for (k, v) in t.other {
            *all.other.entry(k).or_default() += v;
        }
        all.transport_errors += t.transport_errors;
        if all.first_error.is_none() {
            all.first_error = t.first_error;
        }
        all.request_latency.extend(t.request_latency);
        all.message_latency.extend(t.message_latency);
        all.requests.extend(t.requests);
    }
    let elapsed = start.elapsed();
    all.request_latency.sort_unstable();
    all.message_latency.sort_unstable();
    if let Some(path) = &a.accepted_out {
        write_ids(path, &all.accepted)?;
    }
    if let Some(path) = &a.latency_out {
        all.requests.sort_unstable();
        let mut text = String::from("sent_ms,latency_ms,status\n");
        for (at, lat, status) in &all.requests {
            text.push_str(&format!("{},{},{status}\n", ms(*at), ms(*lat)));
        }
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &a.sent_out {
        let ids: Vec<String> = (0..n).map(|i| payload.id(i)).collect();
        write_ids(path, &ids)?;
    }
    let accepted = all.accepted.len() as u64;
    let (rq, mq) = (&all.request_latency, &all.message_latency);
    report(
        "http-post",
        &json!({
            "sent": n, "accepted": accepted, "gave_up": all.gave_up.len(),
            "status_503": all.status_503,
            "other_status": all.other.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "transport_errors": all.transport_errors, "first_error": all.first_error,
            "target_rate": a.rate, "dispatch_s": secs(dispatched),
            "elapsed_s": secs(elapsed), "rate": rate(accepted, elapsed),
            "max_dispatch_lag_ms": ms(max_lag),
            "request_p50_ms": ms(quantile(rq, 0.5)), "request_p99_ms": ms(quantile(rq, 0.99)),
            "request_max_ms": ms(quantile(rq, 1.0)),
            "message_p50_ms": ms(quantile(mq, 0.5)), "message_p99_ms": ms(quantile(mq, 0.99)),
            "message_max_ms": ms(quantile(mq, 1.0)),
            "id_prefix": payload.prefix, "start_unix_ms": start_unix_ms,
        }),
    );
    Ok(accepted == n)
}

fn write_ids(path: &std::path::Path, ids: &[String]) -> anyhow::Result<()> {
    let mut text = ids.join("\n");
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
