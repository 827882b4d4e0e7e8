//! At-least-once across a crash, and reload by diff, with the real process: a runtime killed
//! between receiving a message and its output confirming gets that message again; a mapping
//! edit rebuilds exactly the pipelines that use it, and `/metrics` shows what happened.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;
use common::{
    Server, delete_queue as delete, http, launch, metric, queue_depth as ready, rabbitmq,
    stop_gracefully, wait_until, with_channel,
};

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the ERP saw: message id header, body, and whether it was answered.
#[derive(Clone, Debug)]
struct Seen {
    id: String,
    body: serde_json::Value,
    answered: bool,
}

/// An ERP that answers 201 after `delay_ms`, or, while `hang` is set, reads the request and
/// never answers: a peer that went slow, as ERPs do under month-end load. Every connection has
/// its thread.
struct SlowErp {
    port: u16,
    hang: Arc<AtomicBool>,
    delay_ms: Arc<std::sync::atomic::AtomicU64>,
    /// The status it answers with (201 unless set).
    status: Arc<std::sync::atomic::AtomicU16>,
    /// When set, decides instead of `hang` and `status`: given the body's `n` and how many
    /// requests with that `n` came before, the status to answer with, or `None` to hang.
    script: Arc<Mutex<Option<Script>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

type Script = Box<dyn Fn(i64, usize) -> Option<u16> + Send>;

impl SlowErp {
    fn start() -> SlowErp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hang = Arc::new(AtomicBool::new(true));
        let delay_ms = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let status = Arc::new(std::sync::atomic::AtomicU16::new(201));
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let script: Arc<Mutex<Option<Script>>> = Arc::default();
        let (h, d, st, log) = (hang.clone(), delay_ms.clone(), status.clone(), seen.clone());
        let sc = script.clone();
        let status2 = status;
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                let (h, d, st, log) = (h.clone(), d.clone(), st.clone(), log.clone());
                let sc = sc.clone();
                std::thread::spawn(move || {
                    let Some((head, body)) = common::read_request(&mut s) else {
                        return;
                    };
                    let id = common::header(&head, "x-railyard-message-id").unwrap_or_default();
                    let body: serde_json::Value =
                        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
                    let scripted = sc.lock().unwrap().as_ref().map(|f| {
                        let n = body["n"].as_i64().unwrap_or(-1);
                        let before = log
                            .lock()
                            .unwrap()
                            .iter()
                            .filter(|s| s.body["n"].as_i64() == Some(n))
                            .count();
                        f(n, before)
                    });
                    let answered = match scripted {
                        Some(answer) => answer.is_some(),
                        None => !h.load(Ordering::SeqCst),
                    };
                    if answered {
                        std::thread::sleep(Duration::from_millis(d.load(Ordering::SeqCst)));
                    }
                    log.lock().unwrap().push(Seen { id, body, answered });
                    if answered {
                        let code = scripted
                            .flatten()
                            .unwrap_or_else(|| st.load(Ordering::SeqCst));
                        let _ = s.write_all(
                            format!("HTTP/1.1 {code} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}")
                                .as_bytes(),
                        );
                    } else {
                        // Hold the connection open, unanswered, until the client goes away.
                        let mut sink = [0u8; 64];
                        while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
                    }
                });
            }
        });
        SlowErp {
            port,
            hang,
            delay_ms,
            status: status2,
            script,
            seen,
        }
    }

    /// An ERP that answers every request with `status` (no hanging).
    fn answering(status: u16) -> SlowErp {
        let erp = SlowErp::start();
        erp.hang.store(false, Ordering::SeqCst);
        erp.status.store(status, Ordering::SeqCst);
        erp
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// A project with one pipeline, `to-erp`: AMQP `queue` (with `prefetch`) → POST to the ERP on
/// `port`, then `extra` YAML (e.g. an `on_error`). Returns the temp dir, the project and its
/// data dir.
fn to_erp_project(
    queue: &str,
    prefetch: u16,
    port: u16,
    extra: &str,
) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, data) = (tmp.path().join("project"), tmp.path().join("data"));
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    std::fs::write(
        dir.join("pipelines/to-erp.yaml"),
        format!(
            "pipeline: to-erp\ninput:\n  amqp: {{ queue: \"{queue}\", prefetch: {prefetch} }}\noutput:\n  http: {{ url: \"http://127.0.0.1:{port}/orders\", timeout: 5m }}\n{extra}"
        ),
    )
    .unwrap();
    (tmp, dir, data)
}

fn kill(mut server: Server) {
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

#[test]
fn a_runtime_killed_between_receive_and_output_gets_the_message_again() {
    let Some(url) = rabbitmq() else { return };
    let queue = format!("railyard.test.kill.{}", std::process::id());
    let _ = ready(&url, &queue);
    let erp = SlowErp::start();
    let tmp = tempfile::tempdir().unwrap();
    let (dir, data) = (tmp.path().join("project"), tmp.path().join("data"));
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    std::fs::write(
        dir.join("pipelines/intake.yaml"),
        format!(
            "pipeline: intake\ninput:\n  http: {{ path: /orders }}\noutput:\n  amqp: {{ exchange: \"\", routing_key: \"{queue}\" }}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("pipelines/to-erp.yaml"),
        format!(
            "pipeline: to-erp\ninput:\n  amqp: {{ queue: \"{queue}\", prefetch: 8 }}\noutput:\n  http:\n    url: http://127.0.0.1:{}/orders\n    timeout: 5m\n",
            erp.port
        ),
    )
    .unwrap();
    let args = ["--data", data.to_str().unwrap(), "--no-watch"];
    let server = launch(&dir, &args, &[]);
    let mut ids = Vec::new();
    for n in 0..3 {
        let (status, resp) = http(
            server.port,
            "POST",
            "/orders",
            &[("Content-Type", "application/json")],
            format!("{{\"n\": {n}}}").as_bytes(),
        );
        assert_eq!(status, 202, "{resp}");
        let body = resp.split("\r\n\r\n").nth(1).unwrap();
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    // All three were received from the queue and are at the ERP, unanswered.
    wait_until("the ERP holds all three", 30, || erp.seen().len() == 3);
    assert_eq!(
        ready(&url, &queue),
        0,
        "in flight: none is ready in the queue"
    );
    kill(server);
    // The broker gives back what the dead consumer never acked.
    wait_until("the unacked messages are back in the queue", 30, || {
        ready(&url, &queue) == 3
    });

    erp.hang.store(false, Ordering::SeqCst);
    let server = launch(&dir, &args, &[]);
    wait_until("the ERP answered all three", 30, || {
        erp.seen().iter().filter(|s| s.answered).count() >= 3
    });
    stop_gracefully(server);
    assert_eq!(ready(&url, &queue), 0, "every delivery was acked this time");
    delete(&url, &queue);

    let seen = erp.seen();
    let answered: Vec<&Seen> = seen.iter().filter(|s| s.answered).collect();
    assert_eq!(answered.len(), 3, "{seen:#?}");
    let mut ns: Vec<i64> = answered
        .iter()
        .map(|s| s.body["n"].as_i64().unwrap())
        .collect();
    ns.sort();
    assert_eq!(
        ns,
        [0, 1, 2],
        "each message once after the restart: {seen:#?}"
    );
    // A redelivered message keeps its id, so the ERP can tell it is the same order.
    let first: std::collections::BTreeSet<&str> = seen
        .iter()
        .filter(|s| !s.answered)
        .map(|s| s.id.as_str())
        .collect();
    let second: std::collections::BTreeSet<&str> = answered.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(first, second, "the same ids both times: {seen:#?}");
    let sent: std::collections::BTreeSet<&str> = ids.iter().map(String::as_str).collect();
    assert_eq!(first, sent, "the ids the webhook answered with: {seen:#?}");
}

/// GET a path and return its body.
fn get(port: u16, path: &str) -> String {
    let (_, resp) = http(port, "GET", path, &[], b"");
    resp.split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

fn health(port: u16) -> serde_json::Value {
    serde_json::from_str(&get(port, "/health")).unwrap()
}

#[test]
fn a_mapping_edit_rebuilds_exactly_the_pipelines_that_use_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for d in ["pipelines", "mappings", "schemas/test"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::write(
        dir.join("schemas/test/in@1.json"),
        r#"{"type": "object", "required": ["n"]}"#,
    )
    .unwrap();
    std::fs::write(dir.join("schemas/test/out@1.json"), r#"{"type": "object"}"#).unwrap();
    let mapping = |name: &str, tag: &str| {
        format!(
            "mapping: {name}\nfrom: test.in@1\nto: test.out@1\njmespath: \"{{n: n, tag: '{tag}'}}\"\n"
        )
    };
    std::fs::write(dir.join("mappings/m-a.yaml"), mapping("m-a", "a1")).unwrap();
    std::fs::write(dir.join("mappings/m-b.yaml"), mapping("m-b", "b1")).unwrap();
    for (p, m) in [("a", "m-a"), ("b", "m-b")] {
        std::fs::write(
            dir.join(format!("pipelines/{p}.yaml")),
            format!(
                "pipeline: {p}\ninput:\n  http: {{ path: /{p} }}\n  schema: test.in@1\nsteps:\n  - map: {m}\noutput:\n  file: {{ path: {p}.jsonl }}\n"
            ),
        )
        .unwrap();
    }
    let server = launch(dir, &["--data", dir.join("data").to_str().unwrap()], &[]);
    let port = server.port;
    let before = health(port);
    let post = |p: &str, n: i64| {
        let (status, resp) = http(
            port,
            "POST",
            &format!("/{p}"),
            &[("Content-Type", "application/json")],
            format!("{{\"n\": {n}}}").as_bytes(),
        );
        assert_eq!(status, 202, "{resp}");
    };
    post("a", 1);
    post("b", 1);

    std::fs::write(dir.join("mappings/m-a.yaml"), mapping("m-a", "a2")).unwrap();
    wait_until("the edit is reloaded", 30, || {
        health(port)["reload"]["reloads"].as_u64() == Some(1)
    });
    let after = health(port);
    assert_eq!(
        after["reload"]["rebuilt"],
        serde_json::json!(["a"]),
        "{after}"
    );
    let rev = |h: &serde_json::Value, p: &str| h["pipelines"][p]["revision"].clone();
    assert_ne!(rev(&before, "a"), rev(&after, "a"));
    assert_eq!(rev(&before, "b"), rev(&after, "b"));
    post("a", 2);
    post("b", 2);

    // An invalid edit: refused, shown in the metrics, the old version keeps serving.
    std::fs::write(
        dir.join("mappings/m-b.yaml"),
        "mapping: m-b\nfrom: test.in@1\nto: test.out@1\njmespath: \"{n: n,\"\n",
    )
    .unwrap();
    wait_until("the bad edit is refused", 30, || {
        health(port)["reload"]["failed"].as_u64() == Some(1)
    });
    post("b", 3);
    let metrics = get(port, "/metrics");
    assert_eq!(
        metric(&metrics, "railyard_config_valid"),
        Some(0.0),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "railyard_reloads_total{outcome=\"failed\"}"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "railyard_reloads_total{outcome=\"ok\"}"),
        Some(1.0),
        "the mapping edit, like /health's count: {metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            "railyard_messages_total{pipeline=\"b\",outcome=\"in\"}"
        ),
        Some(3.0),
        "{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            "railyard_step_messages_total{pipeline=\"a\",step=\"steps[0] map\",outcome=\"out\"}"
        ),
        Some(2.0),
        "{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            "railyard_message_duration_seconds_count{pipeline=\"a\"}"
        ),
        Some(2.0),
        "a latency histogram per pipeline: {metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            "railyard_output_duration_seconds_bucket{pipeline=\"b\",output=\"outputs[0] file\",le=\"+Inf\"}"
        ),
        Some(3.0),
        "{metrics}"
    );
    stop_gracefully(server);

    let lines = |p: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(dir.join(format!("{p}.jsonl")))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    assert_eq!(
        lines("a"),
        [
            serde_json::json!({"n": 1, "tag": "a1"}),
            serde_json::json!({"n": 2, "tag": "a2"})
        ]
    );
    assert_eq!(
        lines("b"),
        [
            serde_json::json!({"n": 1, "tag": "b1"}),
            serde_json::json!({"n": 2, "tag": "b1"}),
            serde_json::json!({"n": 3, "tag": "b1"})
        ],
        "b kept its version through both edits"
    );
}

/// Publishes one JSON body per element to `queue` (default exchange), each with its message id,
/// and waits for every publisher confirm.
fn publish(url: &str, queue: &str, bodies: &[(String, serde_json::Value)]) {
    with_channel(url, async |ch| {
        ch.confirm_select(lapin::options::ConfirmSelectOptions::default())
            .await
            .unwrap();
        let mut confirms = Vec::new();
        for (id, body) in bodies {
            let props = lapin::BasicProperties::default()
                .with_message_id(id.as_str().into())
                .with_delivery_mode(2);
            confirms.push(
                ch.basic_publish(
                    "".into(),
                    queue.into(),
                    lapin::options::BasicPublishOptions::default(),
                    &serde_json::to_vec(body).unwrap(),
                    props,
                )
                .await
                .unwrap(),
            );
        }
        for c in confirms {
            assert!(c.await.unwrap().is_ack());
        }
    })
}

#[test]
fn reloads_under_load_lose_and_duplicate_nothing() {
    let Some(url) = rabbitmq() else { return };
    let queue = format!("railyard.test.reload.{}", std::process::id());
    let _ = ready(&url, &queue);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for d in ["pipelines", "mappings", "schemas/test"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::write(
        dir.join("schemas/test/in@1.json"),
        r#"{"type": "object", "required": ["n"]}"#,
    )
    .unwrap();
    std::fs::write(dir.join("schemas/test/out@1.json"), r#"{"type": "object"}"#).unwrap();
    let mapping = |round: usize| {
        format!(
            "mapping: tag\nfrom: test.in@1\nto: test.out@1\njmespath: \"{{n: n, round: `{round}`}}\"\n"
        )
    };
    std::fs::write(dir.join("mappings/tag.yaml"), mapping(0)).unwrap();
    std::fs::write(
        dir.join("pipelines/p.yaml"),
        format!(
            "pipeline: p\ninput:\n  amqp: {{ queue: \"{queue}\", prefetch: 16 }}\n  schema: test.in@1\nsteps:\n  - map: tag\noutput:\n  file: {{ path: out.jsonl }}\n"
        ),
    )
    .unwrap();
    let server = launch(dir, &["--data", dir.join("data").to_str().unwrap()], &[]);
    let (rounds, per_round) = (6, 150);
    for round in 0..rounds {
        let bodies: Vec<(String, serde_json::Value)> = (0..per_round)
            .map(|i| {
                let n = round * per_round + i;
                (format!("m-{n}"), serde_json::json!({ "n": n }))
            })
            .collect();
        publish(&url, &queue, &bodies);
        let reloads = || {
            health(server.port)["reload"]["reloads"]
                .as_u64()
                .unwrap_or(0)
        };
        let before = reloads();
        // The next version arrives while this round's messages are still being consumed.
        std::fs::write(dir.join("mappings/tag.yaml"), mapping(round + 1)).unwrap();
        wait_until("the reload", 30, || reloads() > before);
    }
    let out = dir.join("out.jsonl");
    let total = rounds * per_round;
    let count = || {
        std::fs::read_to_string(&out)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    wait_until("every message is written", 60, || count() >= total);
    stop_gracefully(server);
    assert_eq!(ready(&url, &queue), 0, "every delivery was acked");
    delete(&url, &queue);

    let mut seen = vec![0u32; total];
    let mut versions = std::collections::BTreeSet::new();
    for line in std::fs::read_to_string(&out).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        seen[v["n"].as_u64().unwrap() as usize] += 1;
        versions.insert(v["round"].as_u64().unwrap());
    }
    let wrong: Vec<(usize, u32)> = seen
        .iter()
        .enumerate()
        .filter(|(_, c)| **c != 1)
        .map(|(n, c)| (n, *c))
        .collect();
    assert!(
        wrong.is_empty(),
        "(n, times written) not exactly once: {wrong:?}"
    );
    assert!(
        versions.len() >= 3,
        "the mapping versions took effect under load: {versions:?}"
    );
}

#[test]
fn a_partly_filled_batch_survives_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, data) = (tmp.path().join("project"), tmp.path().join("data"));
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    std::fs::write(
        dir.join("pipelines/sales.yaml"),
        "pipeline: sales\ninput:\n  http: { path: /sales }\nsteps:\n  - batch: { count: 3 }\noutput:\n  file: { path: batches.jsonl }\n",
    )
    .unwrap();
    let args = ["--data", data.to_str().unwrap(), "--no-watch"];
    let post = |port: u16, n: i64| {
        let (status, resp) = http(
            port,
            "POST",
            "/sales",
            &[("Content-Type", "application/json")],
            format!("{{\"n\": {n}}}").as_bytes(),
        );
        assert_eq!(status, 202, "{resp}");
    };
    let server = launch(&dir, &args, &[]);
    post(server.port, 1);
    post(server.port, 2);
    // Both were acknowledged (202) while their batch was still filling.
    kill(server);
    let server = launch(&dir, &args, &[]);
    post(server.port, 3);
    stop_gracefully(server);
    let batches: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("batches.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        batches,
        [serde_json::json!([{"n": 1}, {"n": 2}, {"n": 3}])],
        "the two buffered before the crash and the one after, in one batch"
    );
}

#[test]
fn a_graceful_stop_finishes_what_is_in_flight_and_leaves_the_rest_queued() {
    let Some(url) = rabbitmq() else { return };
    let queue = format!("railyard.test.drain.{}", std::process::id());
    let _ = ready(&url, &queue);
    let erp = SlowErp::answering(201);
    erp.delay_ms.store(1_500, Ordering::SeqCst);
    let (_tmp, dir, data) = to_erp_project(&queue, 4, erp.port, "");
    let args = ["--data", data.to_str().unwrap(), "--no-watch"];
    let server = launch(&dir, &args, &[]);
    let bodies: Vec<(String, serde_json::Value)> = (0..10)
        .map(|n| (format!("d-{n}"), serde_json::json!({ "n": n })))
        .collect();
    publish(&url, &queue, &bodies);
    // Four (the prefetch) are at the slow ERP when the stop comes.
    let in_flight = || ready(&url, &queue);
    wait_until("four deliveries are in flight", 30, || in_flight() == 6);
    stop_gracefully(server);
    let answered_before: Vec<String> = erp
        .seen()
        .iter()
        .filter(|s| s.answered)
        .map(|s| s.id.clone())
        .collect();
    assert_eq!(
        answered_before.len(),
        4,
        "the four in flight finished before the process exited: {:?}",
        erp.seen()
    );
    assert_eq!(
        ready(&url, &queue),
        6,
        "the rest wait in the queue, unprocessed"
    );

    erp.delay_ms.store(0, Ordering::SeqCst);
    let server = launch(&dir, &args, &[]);
    wait_until("the rest are delivered", 30, || erp.seen().len() >= 10);
    stop_gracefully(server);
    assert_eq!(ready(&url, &queue), 0);
    delete(&url, &queue);
    let mut ns: Vec<i64> = erp
        .seen()
        .iter()
        .map(|s| s.body["n"].as_i64().unwrap())
        .collect();
    ns.sort();
    assert_eq!(
        ns,
        (0..10).collect::<Vec<i64>>(),
        "each exactly once: the four finished at the stop were acked, not redelivered"
    );
}

#[test]
fn a_file_record_posted_again_after_a_crash_keeps_its_message_id() {
    let erp = SlowErp::answering(201);
    let tmp = tempfile::tempdir().unwrap();
    let (dir, data) = (tmp.path().join("project"), tmp.path().join("data"));
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    std::fs::create_dir_all(dir.join("inbox")).unwrap();
    std::fs::write(
        dir.join("pipelines/sales.yaml"),
        format!(
            "pipeline: sales\ninput:\n  file: {{ dir: inbox, format: jsonl }}\noutput:\n  http: {{ url: \"http://127.0.0.1:{}/sales\" }}\n",
            erp.port
        ),
    )
    .unwrap();
    let content = "{\"n\": 1}\n{\"n\": 2}\n{\"n\": 3}\n";
    let args = ["--data", data.to_str().unwrap(), "--no-watch"];
    let run_file = || {
        std::fs::write(dir.join("inbox/sales.jsonl"), content).unwrap();
        // The connector takes files that were not modified for a second.
        std::thread::sleep(Duration::from_millis(1_100));
        let server = launch(&dir, &args, &[]);
        let done = dir.join("inbox/done/sales.jsonl");
        wait_until("the file is done", 30, || done.exists());
        stop_gracefully(server);
        std::fs::remove_file(done).unwrap();
    };
    run_file();
    let first = erp.seen();
    assert_eq!(first.len(), 3, "{first:#?}");
    // The crash: record 2 was handed off, but its progress row never written.
    let store = railyard_store::Store::open_unlocked(&data.join("railyard.db")).unwrap();
    let key = railyard_connectors::file::content_key(content.as_bytes());
    let crashed = railyard_store::FileProgress {
        handed_off: 1,
        complete: false,
    };
    store.set_file_progress("sales", &key, crashed, 0).unwrap();
    drop(store);
    run_file();
    let all = erp.seen();
    let again = &all[3..];
    assert_eq!(
        again
            .iter()
            .map(|s| s.body["n"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [2, 3],
        "{all:#?}"
    );
    assert_eq!(again[0].id, first[1].id, "record 2 is the same message");
    assert_eq!(again[1].id, first[2].id, "record 3 too");
    assert_ne!(first[0].id, first[1].id);
}

#[test]
fn an_amqp_message_is_retried_with_a_count_then_dead_lettered() {
    let Some(url) = rabbitmq() else { return };
    let queue = format!("railyard.test.retry.{}", std::process::id());
    let _ = ready(&url, &queue);
    let erp = SlowErp::answering(503);
    let retry = "on_error:\n  retry: { attempts: 3, backoff: fixed, initial: 50ms }\n";
    let (_tmp, dir, data) = to_erp_project(&queue, 16, erp.port, retry);
    let server = launch(&dir, &["--data", data.to_str().unwrap(), "--no-watch"], &[]);
    publish(
        &url,
        &queue,
        &[("poison-1".to_string(), serde_json::json!({"n": 1}))],
    );
    let store_path = data.join("railyard.db");
    let dead = || {
        railyard_store::Store::open_unlocked(&store_path)
            .unwrap()
            .dead_letters(Some("to-erp"), 10)
            .unwrap()
    };
    wait_until("the message is dead-lettered", 30, || !dead().is_empty());
    stop_gracefully(server);
    assert_eq!(ready(&url, &queue), 0, "nothing left to redeliver");
    delete(&url, &queue);
    let seen = erp.seen();
    assert_eq!(seen.len(), 3, "three attempts, no more: {seen:#?}");
    assert!(seen.iter().all(|s| s.id == "poison-1"), "{seen:#?}");
    let letters = dead();
    assert_eq!(letters.len(), 1);
    let (_, letter) = &letters[0];
    assert_eq!(letter.attempts, 3);
    assert_eq!(letter.message["body"], serde_json::json!({"n": 1}));
    assert_eq!(
        letter.error["code"], "retries-exhausted",
        "{:?}",
        letter.error
    );
}

#[test]
fn moving_a_schedule_within_its_file_does_not_restart_it_and_changing_it_does() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    let pipeline = |every: &str, preamble: &str| {
        format!(
            "pipeline: poll\n{preamble}input:\n  schedule: {{ every: {every} }}\noutput:\n  file: {{ path: ticks.jsonl }}\n"
        )
    };
    let file = dir.join("pipelines/poll.yaml");
    std::fs::write(&file, pipeline("1h", "")).unwrap();
    let server = launch(dir, &["--data", dir.join("data").to_str().unwrap()], &[]);
    let port = server.port;
    // Same schedule, every span shifted by a description.
    std::fs::write(
        &file,
        pipeline("1h", "description: polls the marketplace\n"),
    )
    .unwrap();
    wait_until("the cosmetic edit is reloaded", 30, || {
        health(port)["reload"]["reloads"].as_u64() == Some(1)
    });
    std::fs::write(
        &file,
        pipeline("2h", "description: polls the marketplace\n"),
    )
    .unwrap();
    wait_until("the real edit is reloaded", 30, || {
        health(port)["reload"]["reloads"].as_u64() == Some(2)
    });
    let mut server = server;
    let mut stderr = server.child.stderr.take().unwrap();
    stop_gracefully(server);
    let mut log = String::new();
    stderr.read_to_string(&mut log).unwrap();
    let restarts = log
        .lines()
        .filter(|l| l.contains("Stopped a worker no longer in the configuration"))
        .collect::<Vec<_>>();
    assert_eq!(
        restarts.len(),
        1,
        "only the interval change restarts it:\n{log}"
    );
    assert!(
        restarts[0].contains("2h") || restarts[0].contains("3600"),
        "{}",
        restarts[0]
    );
}

/// Acks are coalesced (one `multiple` ack for the deliveries below the oldest one in hand):
/// a delivery still at the ERP must not be acked along with the faster ones after it. The
/// first of 20 hangs at the ERP while the other 19 are answered and acked; the runtime is
/// killed; the broker gives back exactly that one, and it is delivered after the restart.
#[test]
fn a_slow_delivery_is_not_acked_with_the_faster_ones_after_it() {
    let Some(url) = rabbitmq() else { return };
    let queue = format!("railyard.test.floor.{}", std::process::id());
    let _ = ready(&url, &queue);
    let erp = SlowErp::answering(201);
    *erp.script.lock().unwrap() = Some(Box::new(|n, _| (n != 0).then_some(201)));
    let (_tmp, dir, data) = to_erp_project(&queue, 32, erp.port, "");
    let args = ["--data", data.to_str().unwrap(), "--no-watch"];
    let server = launch(&dir, &args, &[]);
    let bodies: Vec<(String, serde_json::Value)> = (0..20)
        .map(|n| (format!("f-{n}"), serde_json::json!({ "n": n })))
        .collect();
    publish(&url, &queue, &bodies);
    let answered = |erp: &SlowErp| erp.seen().iter().filter(|s| s.answered).count();
    wait_until("19 answered and the first held", 30, || {
        answered(&erp) == 19 && erp.seen().len() == 20
    });
    // Give the acks of the 19 time to reach the broker.
    std::thread::sleep(Duration::from_millis(500));
    kill(server);
    wait_until("the held delivery is back in the queue", 30, || {
        ready(&url, &queue) >= 1
    });
    assert_eq!(
        ready(&url, &queue),
        1,
        "only the unanswered delivery comes back; the 19 answered were acked"
    );

    *erp.script.lock().unwrap() = None;
    let server = launch(&dir, &args, &[]);
    wait_until("the first is answered after the restart", 30, || {
        answered(&erp) == 20
    });
    stop_gracefully(server);
    assert_eq!(ready(&url, &queue), 0);
    delete(&url, &queue);
    let mut ns: Vec<i64> = erp
        .seen()
        .iter()
        .filter(|s| s.answered)
        .map(|s| s.body["n"].as_i64().unwrap())
        .collect();
    ns.sort();
    assert_eq!(
        ns,
        (0..20).collect::<Vec<i64>>(),
        "each answered exactly once"
    );
}

/// Retries (a confirmed copy, then an ack of the original on its own) interleave with the
/// coalesced acks of the deliveries around them. If a `multiple` ack ever covered a tag acked
/// on its own after it, the broker would close the channel (unknown delivery tag) and
/// everything in hand would be redelivered: duplicates at the ERP.
#[test]
fn retries_interleaved_with_coalesced_acks_deliver_each_message_once() {
    let Some(url) = rabbitmq() else { return };
    let queue = format!("railyard.test.coalesce.{}", std::process::id());
    let _ = ready(&url, &queue);
    let erp = SlowErp::answering(201);
    // Every 7th message fails its first attempt.
    *erp.script.lock().unwrap() = Some(Box::new(|n, before| {
        Some(if n % 7 == 0 && before == 0 { 503 } else { 201 })
    }));
    let retry = "on_error:\n  retry: { attempts: 3, backoff: fixed, initial: 10ms }\n";
    let (tmp, dir, data) = to_erp_project(&queue, 32, erp.port, retry);
    let log = tmp.path().join("railyard.log");
    let server = common::launch_logged(
        &dir,
        &["--data", data.to_str().unwrap(), "--no-watch"],
        &[],
        &log,
    );
    let total = 300;
    let bodies: Vec<(String, serde_json::Value)> = (0..total)
        .map(|n| (format!("c-{n}"), serde_json::json!({ "n": n })))
        .collect();
    publish(&url, &queue, &bodies);
    let failed_first = (0..total).filter(|n| n % 7 == 0).count();
    wait_until("every message answered 201", 60, || {
        erp.seen().len() >= total as usize + failed_first
    });
    // Anything duplicated would arrive a little later.
    std::thread::sleep(Duration::from_millis(500));
    stop_gracefully(server);
    assert_eq!(ready(&url, &queue), 0, "every delivery was acked");
    delete(&url, &queue);
    let seen = erp.seen();
    let mut per_n = vec![0usize; total as usize];
    for s in &seen {
        per_n[s.body["n"].as_u64().unwrap() as usize] += 1;
    }
    let wrong: Vec<(usize, usize)> = per_n
        .iter()
        .enumerate()
        .filter(|(n, c)| **c != if n % 7 == 0 { 2 } else { 1 })
        .map(|(n, c)| (n, *c))
        .collect();
    assert!(
        wrong.is_empty(),
        "(n, requests): every 7th twice (503, then 201), the rest once: {wrong:?}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains("lost its broker"),
        "the consumer's channel never broke:\n{text}"
    );
}

/// A delivery waiting out its retry backoff (ten minutes here) does not hold up a stop: it
/// settles at once, back in the queue with its next attempt, and nothing is lost.
#[test]
fn a_stop_does_not_wait_out_a_retry_backoff() {
    let Some(url) = rabbitmq() else { return };
    let queue = format!("railyard.test.backoff.{}", std::process::id());
    let _ = ready(&url, &queue);
    let erp = SlowErp::answering(503);
    let retry = "on_error:\n  retry: { attempts: 5, backoff: fixed, initial: 10m }\n";
    let (_tmp, dir, data) = to_erp_project(&queue, 4, erp.port, retry);
    let server = launch(&dir, &["--data", data.to_str().unwrap(), "--no-watch"], &[]);
    publish(
        &url,
        &queue,
        &[("slow-1".to_string(), serde_json::json!({"n": 1}))],
    );
    wait_until("the first attempt failed", 30, || erp.seen().len() == 1);
    // stop_gracefully fails unless the process exits within 30 s.
    stop_gracefully(server);
    let back = with_channel(&url, async |ch| {
        ch.basic_get(
            queue.as_str().into(),
            lapin::options::BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap()
    });
    delete(&url, &queue);
    let back = back.expect("the message is back in the queue");
    assert_eq!(
        back.properties.message_id().as_ref().map(|s| s.as_str()),
        Some("slow-1")
    );
    let attempt = back
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get("x-railyard-attempt").cloned());
    assert_eq!(
        attempt,
        Some(lapin::types::AMQPValue::LongUInt(2)),
        "it comes back as the second attempt"
    );
    assert_eq!(erp.seen().len(), 1, "not retried early");
}
