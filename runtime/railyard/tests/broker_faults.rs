#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

//! `railyard run` across a RabbitMQ restart: a private node (never the shared broker) is
//! stopped or killed while messages flow, then started again on the same port and mnesia
//! dir. Nothing may be lost: every webhook the runtime answered 202 reaches the output file;
//! while the broker is away, webhooks get 503 + `Retry-After` and `/ready` is 503.

mod common;
use common::broker::{PrivateBroker, private_broker};
use common::{Server, http, launch_logged, stop_gracefully, try_http};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Messages sent per test, one id each.
const N: usize = 200;
/// Sent before the broker goes away.
const BEFORE_OUTAGE: usize = 40;

/// How the broker goes away.
#[derive(Clone, Copy, Debug)]
enum Outage {
    /// `rabbitmqctl stop`: connections are closed by the broker.
    Stop,
    /// SIGKILL: no goodbye, unflushed state is whatever the disk holds.
    Crash,
}

/// What the webhook sender saw.
#[derive(Clone, Debug, Default)]
struct Sent {
    /// Messages accepted (202), in id order.
    accepted: usize,
    /// 503 answers (each retried).
    unavailable: usize,
    /// 503 answers without a `Retry-After` header.
    no_retry_after: usize,
    /// Anything else that was not a 202: transport errors, unexpected statuses.
    errors: Vec<String>,
    /// When the first 202 after a 503 came.
    accepted_again_at: Option<Instant>,
    /// Since when the current request has been waiting for its answer.
    waiting_since: Option<Instant>,
}

/// Posts `{"id": i}` for every i in 0..N, one at a time, retrying 503s (after the
/// `Retry-After` the server asked for, capped at 500 ms to keep the test short) until 202.
/// Progress is shared, for the waits and their failure messages.
fn send_all(port: u16, path: &'static str, sent: Arc<Mutex<Sent>>) -> std::thread::JoinHandle<()> {
    let update = move |f: &mut dyn FnMut(&mut Sent)| f(&mut sent.lock().unwrap());
    std::thread::spawn(move || {
        let give_up = Instant::now() + Duration::from_secs(180);
        for id in 0..N {
            loop {
                assert!(Instant::now() < give_up, "message {id} was never accepted");
                let body = format!("{{\"id\": {id}}}");
                update(&mut |s| s.waiting_since = Some(Instant::now()));
                let answer = try_http(
                    port,
                    "POST",
                    path,
                    &[("Content-Type", "application/json")],
                    body.as_bytes(),
                );
                update(&mut |s| s.waiting_since = None);
                let wait = match answer {
                    Ok((202, _)) => {
                        update(&mut |s| {
                            if s.unavailable > 0 && s.accepted_again_at.is_none() {
                                s.accepted_again_at = Some(Instant::now());
                            }
                            s.accepted = id + 1;
                        });
                        break;
                    }
                    Ok((503, resp)) => {
                        let after =
                            header(&resp, "retry-after").and_then(|v| v.parse::<u64>().ok());
                        update(&mut |s| {
                            s.unavailable += 1;
                            s.no_retry_after += usize::from(after.is_none());
                        });
                        Duration::from_secs(after.unwrap_or(1)).min(Duration::from_millis(500))
                    }
                    Ok((status, resp)) => {
                        update(&mut |s| s.errors.push(format!("message {id}: {status}: {resp}")));
                        Duration::from_millis(200)
                    }
                    Err(e) => {
                        update(&mut |s| s.errors.push(format!("message {id}: {e}")));
                        Duration::from_millis(200)
                    }
                };
                std::thread::sleep(wait);
            }
            std::thread::sleep(Duration::from_millis(15));
        }
    })
}

fn header<'a>(resp: &'a str, name: &str) -> Option<&'a str> {
    let head = resp.split("\r\n\r\n").next()?;
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn ready(port: u16) -> (u16, String) {
    let (status, resp) = http(port, "GET", "/ready", &[], b"");
    (
        status,
        resp.split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_string(),
    )
}

fn wait_for(
    what: &str,
    limit: Duration,
    mut done: impl FnMut() -> bool,
    context: impl Fn() -> String,
) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < limit,
            "{what} within {limit:?}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    start.elapsed()
}

/// How many lines of the output file carry each id.
fn counts(out: &Path) -> BTreeMap<usize, usize> {
    let mut counts = BTreeMap::new();
    for line in std::fs::read_to_string(out).unwrap_or_default().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        *counts
            .entry(v["id"].as_u64().unwrap() as usize)
            .or_default() += 1;
    }
    counts
}

fn tail(path: &Path, bytes: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut from = text.len().saturating_sub(bytes);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    text[from..].to_string()
}

/// Sends N webhooks to `path` on `server`; after BEFORE_OUTAGE of them took the broker away
/// (`outage`), checks the outage is visible (503s, `/ready` 503), starts the node again, and
/// waits until every id reached `out`. Returns the line count per id and prints the timings.
fn across_an_outage(
    broker: &mut PrivateBroker,
    server: &Server,
    path: &'static str,
    out: &Path,
    log: &Path,
    outage: Outage,
) -> (BTreeMap<usize, usize>, Sent) {
    let port = server.port;
    let node_log = broker.log_path();
    let progress = Arc::new(Mutex::new(Sent::default()));
    let sent = || progress.lock().unwrap().clone();
    let logs = || {
        let s = sent();
        format!(
            "--- sender: {} accepted, {} answers 503, waiting for an answer for {:?}, errors: {:?}\n\
             --- railyard log (tail) ---\n{}\n--- node log (tail) ---\n{}",
            s.accepted,
            s.unavailable,
            s.waiting_since.map(|t| t.elapsed()),
            s.errors,
            tail(log, 6_000),
            tail(&node_log, 4_000)
        )
    };
    // What railyard declared (it is ready, so its consumer is bound), before any traffic.
    let topology_before = broker.topology();
    let sender = send_all(port, path, progress.clone());
    wait_for(
        "the first messages are accepted",
        Duration::from_secs(60),
        || sent().accepted >= BEFORE_OUTAGE,
        logs,
    );

    let down_at = Instant::now();
    match outage {
        Outage::Stop => broker.stop().unwrap(),
        Outage::Crash => broker.kill(),
    }
    eprintln!(
        "{outage:?}: node {} down after {:.1?}, {} of {N} messages accepted",
        broker.node(),
        down_at.elapsed(),
        sent().accepted
    );
    let mut down_body = String::new();
    let not_ready = wait_for(
        "/ready reports 503 while the broker is down",
        Duration::from_secs(30),
        || {
            let (status, body) = ready(port);
            down_body = body;
            status == 503
        },
        logs,
    );
    eprintln!("/ready 503 {not_ready:.1?} after the node went down: {down_body}");
    assert!(down_body.contains("brokers_down"), "{down_body}");
    // Keep the broker away long enough for the sender to be turned away a few times.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        ready(port).0,
        503,
        "/ready stays 503 while the broker is down"
    );

    let boot = Instant::now();
    broker
        .start_again()
        .unwrap_or_else(|e| panic!("the node did not come back: {e}"));
    let back = Instant::now();
    let accepted_when_back = sent().accepted;
    // Before railyard's consumer is back (it retries with backoff): what the node recovered.
    let topology_recovered = broker.topology();
    eprintln!(
        "{outage:?}: node back after {:.1?} of boot ({:.1?} of outage); {accepted_when_back} of \
         {N} accepted so far; it recovered:\n{topology_recovered}",
        back - boot,
        back - down_at
    );
    wait_for(
        "/ready is 200 again after the broker came back",
        Duration::from_secs(90),
        || ready(port).0 == 200,
        logs,
    );
    let ready_after = back.elapsed();
    wait_for(
        "every webhook is accepted",
        Duration::from_secs(90),
        || sender.is_finished(),
        logs,
    );
    let all_accepted_after = back.elapsed();
    sender.join().unwrap();
    wait_for(
        "every id reaches the output file",
        Duration::from_secs(90),
        || counts(out).len() == N,
        || {
            let c = counts(out);
            let missing: Vec<usize> = (0..N).filter(|i| !c.contains_key(i)).collect();
            format!(
                "missing ids: {missing:?}\n--- before the outage ---\n{topology_before}\n--- \
                 recovered ---\n{topology_recovered}\n--- now ---\n{}\n{}",
                broker.topology(),
                logs()
            )
        },
    );
    let all_delivered_after = back.elapsed();
    let sent = sent();
    let accepted_again_after = sent
        .accepted_again_at
        .map(|at| at.saturating_duration_since(back));
    eprintln!(
        "{outage:?}: recovery after the node came back: /ready 200 in {ready_after:.1?}, first \
         webhook accepted in {accepted_again_after:.1?}, all {N} accepted in \
         {all_accepted_after:.1?}, all {N} delivered in {all_delivered_after:.1?}; {} answers \
         503, {} other errors",
        sent.unavailable,
        sent.errors.len()
    );
    (counts(out), sent)
}

/// The checks both tests share: nothing missing, duplicates bounded, the outage was visible.
fn assert_nothing_lost(counts: &BTreeMap<usize, usize>, sent: &Sent, dup_bound: usize, log: &Path) {
    let missing: Vec<usize> = (0..N).filter(|i| !counts.contains_key(i)).collect();
    let duplicates: BTreeMap<usize, usize> = counts
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, n)| (*id, n - 1))
        .collect();
    let extra: usize = duplicates.values().sum();
    eprintln!(
        "delivered {} ids, {extra} duplicate lines: {duplicates:?}",
        counts.len()
    );
    assert!(
        missing.is_empty(),
        "lost messages {missing:?}\n{}",
        tail(log, 6_000)
    );
    assert_eq!(counts.len(), N, "only the ids that were sent");
    assert!(
        extra <= dup_bound,
        "{extra} duplicates (more than the {dup_bound} at-least-once allows around one restart): {duplicates:?}"
    );
    assert!(
        sent.unavailable >= 1,
        "webhooks were answered 503 while the broker was down: {sent:?}"
    );
    assert_eq!(sent.no_retry_after, 0, "every 503 carries Retry-After");
    assert!(sent.errors.is_empty(), "only 202 and 503 answers: {sent:?}");
}

fn project(files: &[(&str, String)]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("pipelines")).unwrap();
    for (name, text) in files {
        std::fs::write(tmp.path().join("pipelines").join(name), text).unwrap();
    }
    let log = tmp.path().join("railyard.log");
    (tmp, log)
}

#[test]
fn a_broker_restart_mid_stream_loses_nothing() {
    let Some(mut broker) = private_broker() else {
        return;
    };
    let prefetch = 16;
    let (tmp, log) = project(&[
        (
            "a.yaml",
            "pipeline: a\ninput:\n  http: { path: /a }\noutput:\n  amqp: { url: \"${env:FAULTS_AMQP_URL}\", exchange: \"\", routing_key: faults }\n".to_string(),
        ),
        (
            "b.yaml",
            format!(
                "pipeline: b\ninput:\n  amqp: {{ url: \"{}\", queue: faults, prefetch: {prefetch} }}\noutput:\n  file: {{ path: out.jsonl }}\n",
                broker.url()
            ),
        ),
    ]);
    let dir = tmp.path();
    // Ready means pipeline b declared its queue: nothing a publishes is unroutable.
    let server = launch_logged(
        dir,
        &["--no-watch"],
        &[("FAULTS_AMQP_URL", broker.url())],
        &log,
    );
    let (counts, sent) = across_an_outage(
        &mut broker,
        &server,
        "/a",
        &dir.join("out.jsonl"),
        &log,
        Outage::Stop,
    );
    stop_gracefully(server);
    // Redeliveries of what b wrote but could not ack, plus the one publish in flight whose
    // confirm was lost (the sender posts one at a time).
    assert_nothing_lost(&counts, &sent, prefetch + 1, &log);
    assert_eq!(
        broker.queue_depth("faults").unwrap(),
        0,
        "every delivery was acked"
    );
}

#[test]
fn topics_over_a_restarting_broker_lose_nothing() {
    let Some(mut broker) = private_broker() else {
        return;
    };
    let (tmp, log) = project(&[
        (
            "in.yaml",
            "pipeline: in\ninput:\n  http: { path: /in }\noutput:\n  topic: faults.work\n".to_string(),
        ),
        (
            "out.yaml",
            "pipeline: out\ninput:\n  topic: { name: faults.work, group: faults }\noutput:\n  file: { path: out.jsonl }\n".to_string(),
        ),
    ]);
    let dir = tmp.path();
    let server = launch_logged(
        dir,
        &["--no-watch"],
        &[("RAILYARD_AMQP_URL", broker.url())],
        &log,
    );
    let (counts, sent) = across_an_outage(
        &mut broker,
        &server,
        "/in",
        &dir.join("out.jsonl"),
        &log,
        Outage::Crash,
    );
    stop_gracefully(server);
    // The topic consumer's prefetch is 32.
    assert_nothing_lost(&counts, &sent, 32 + 1, &log);
    assert_eq!(
        broker
            .queue_depth(&railyard_connectors::amqp::topic_queue(
                "faults.work",
                "faults"
            ))
            .unwrap(),
        0,
        "every delivery was acked"
    );
    // Nothing went through the embedded store.
    let store = railyard_store::Store::open_unlocked(&dir.join("data/railyard.db")).unwrap();
    assert_eq!(store.depth("faults.work", "faults").unwrap(), 0);
}
