//! The delivery core with the real binary: each reproduction of the delivery-core issue as a
//! regression test. A crash after a dedupe step loses nothing; a copy of a message that is
//! still in flight is not answered "duplicate"; a file record honours `on_error.retry`;
//! values over a client's limits and header control characters are dead-lettered at once,
//! not retried forever; a dead letter keeps the input as received; one process per data
//! directory.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;
use common::{Server, http, launch, rabbitmq, stop_gracefully, wait_until};

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

/// One request a peer saw.
#[derive(Clone, Debug)]
struct Request {
    head: String,
    body: Value,
}

/// What the peer does with the `n`th request (0-based): answer `status` after `delay`, or
/// hang (`None`) until the client goes away.
type Script = Arc<dyn Fn(usize) -> Option<(u16, Duration)> + Send + Sync>;

/// An HTTP peer (an ERP) scripted per request.
struct Peer {
    port: u16,
    seen: Arc<Mutex<Vec<Request>>>,
}

impl Peer {
    fn start(script: Script) -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen: Arc<Mutex<Vec<Request>>> = Arc::default();
        let count = Arc::new(AtomicU64::new(0));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                let (log, script, count) = (log.clone(), script.clone(), count.clone());
                std::thread::spawn(move || {
                    let Some((head, body)) = common::read_request(&mut s) else {
                        return;
                    };
                    let n = count.fetch_add(1, Ordering::SeqCst) as usize;
                    let body = serde_json::from_str(&body).unwrap_or(Value::Null);
                    log.lock().unwrap().push(Request { head, body });
                    match script(n) {
                        Some((status, delay)) => {
                            std::thread::sleep(delay);
                            let _ = s.write_all(
                                format!("HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}")
                                    .as_bytes(),
                            );
                        }
                        None => {
                            let mut sink = [0u8; 64];
                            while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
                        }
                    }
                });
            }
        });
        Peer { port, seen }
    }

    fn answering(status: u16) -> Peer {
        Peer::start(Arc::new(move |_| Some((status, Duration::ZERO))))
    }

    fn seen(&self) -> Vec<Request> {
        self.seen.lock().unwrap().clone()
    }
}

/// A project of one pipeline `name` (YAML `pipeline`) in a temp dir; returns (tmp, dir, data).
fn project(name: &str, pipeline: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, data) = (tmp.path().join("project"), tmp.path().join("data"));
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    std::fs::write(dir.join(format!("pipelines/{name}.yaml")), pipeline).unwrap();
    (tmp, dir, data)
}

fn start(dir: &Path, data: &Path, env: &[(&str, String)]) -> Server {
    launch(dir, &["--data", data.to_str().unwrap(), "--no-watch"], env)
}

fn dead_letters(data: &Path, pipeline: &str) -> Vec<railyard_store::DeadLetter> {
    railyard_store::Store::open_unlocked(&data.join("railyard.db"))
        .unwrap()
        .dead_letters(Some(pipeline), 100)
        .unwrap()
        .into_iter()
        .map(|(_, d)| d)
        .collect()
}

fn post(port: u16, path: &str, headers: &[(&str, &str)], body: &Value) -> (u16, String) {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    http(port, "POST", path, &all, body.to_string().as_bytes())
}

fn kill(mut server: Server) {
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

const DEDUPE_TO_ERP: &str = "pipeline: orders\ninput:\n  http: { path: /orders }\n  dedupe_key: headers.\"x-event-id\"\nsteps:\n  - dedupe: { key: meta.dedupe_key, ttl: 72h }\noutput:\n  http: { url: \"http://127.0.0.1:PORT/orders\", timeout: 5m }\n";

/// The crash window of the issue: the dedupe key was written when the step ran, the process
/// died before the output confirmed, and after the restart the platform's retry was dropped
/// as a duplicate of itself. Now the key is pending until the output confirms, and a restart
/// deletes what was pending.
#[test]
fn a_crash_after_the_dedupe_step_loses_nothing() {
    // The first request hangs (the process is killed meanwhile); later ones are answered.
    let erp = Peer::start(Arc::new(|n| (n > 0).then_some((201, Duration::ZERO))));
    let (_tmp, dir, data) = project(
        "orders",
        &DEDUPE_TO_ERP.replace("PORT", &erp.port.to_string()),
    );
    let server = start(&dir, &data, &[]);
    let port = server.port;
    let event = json!({"order": 1042});
    let sender = std::thread::spawn(move || {
        common::try_http(
            port,
            "POST",
            "/orders",
            &[
                ("content-type", "application/json"),
                ("x-event-id", "evt-1"),
            ],
            event.to_string().as_bytes(),
        )
    });
    wait_until("the ERP has the request", 30, || erp.seen().len() == 1);
    kill(server);
    let answer = sender.join().unwrap();
    assert!(
        !matches!(answer, Ok((202, _))),
        "the sender must not have been told 202: {answer:?}"
    );
    // The platform retries the same event against the restarted runtime.
    let server = start(&dir, &data, &[]);
    let (status, body) = post(
        server.port,
        "/orders",
        &[("x-event-id", "evt-1")],
        &json!({"order": 1042}),
    );
    assert_eq!(status, 202, "{body}");
    wait_until("the ERP got the order again", 30, || erp.seen().len() == 2);
    // And a third copy, now that it was delivered, is a duplicate.
    let (status, _) = post(
        server.port,
        "/orders",
        &[("x-event-id", "evt-1")],
        &json!({"order": 1042}),
    );
    assert_eq!(status, 202);
    std::thread::sleep(Duration::from_millis(300));
    stop_gracefully(server);
    assert_eq!(
        erp.seen().len(),
        2,
        "delivered once after the crash, then deduplicated"
    );
    assert_eq!(erp.seen()[1].body, json!({"order": 1042}));
}

/// A platform that retries while the first copy is still in flight must not be told 202
/// "duplicate": if the first copy then fails, the event would be gone.
#[test]
fn a_copy_of_a_message_in_flight_is_not_answered_duplicate() {
    // The first request is answered 503 after a second; later ones 201.
    let erp = Peer::start(Arc::new(|n| {
        Some(if n == 0 {
            (503, Duration::from_millis(1_500))
        } else {
            (201, Duration::ZERO)
        })
    }));
    let (_tmp, dir, data) = project(
        "orders",
        &DEDUPE_TO_ERP.replace("PORT", &erp.port.to_string()),
    );
    let server = start(&dir, &data, &[]);
    let port = server.port;
    let first = std::thread::spawn(move || {
        post(
            port,
            "/orders",
            &[("x-event-id", "evt-7")],
            &json!({"n": 7}),
        )
    });
    wait_until("the ERP has the first copy", 30, || erp.seen().len() == 1);
    let (status, body) = post(
        port,
        "/orders",
        &[("x-event-id", "evt-7")],
        &json!({"n": 7}),
    );
    assert_eq!(
        status, 503,
        "the copy in flight is not a duplicate yet: {body}"
    );
    assert!(body.contains("in flight"), "{body}");
    let (status, body) = first.join().unwrap();
    assert_eq!(status, 503, "the ERP failed the first copy: {body}");
    // The platform's next retry goes through: the failed copy's key was released.
    let (status, body) = post(
        port,
        "/orders",
        &[("x-event-id", "evt-7")],
        &json!({"n": 7}),
    );
    assert_eq!(status, 202, "{body}");
    stop_gracefully(server);
    let seen = erp.seen();
    assert_eq!(seen.len(), 2);
    // Both copies of the event carry one message id (derived from the dedupe key), so an ERP
    // with idempotency keys drops a repeat.
    let ids: Vec<_> = seen
        .iter()
        .map(|r| common::header(&r.head, "x-railyard-message-id").unwrap())
        .collect();
    assert_eq!(ids[0], ids[1]);
    assert!(ids[0].starts_with("k-"), "{ids:?}");
    assert!(body.contains(&ids[0]), "the 202 names it too: {body}");
}

/// `on_error.retry` holds for a file record: tried `attempts` times, then dead-lettered with
/// its file progress, and the file is done (not retried every half second forever).
#[test]
fn a_file_record_is_dead_lettered_after_its_attempts() {
    let erp = Peer::answering(503);
    let (_tmp, dir, data) = project(
        "sales",
        &format!(
            "pipeline: sales\ninput:\n  file: {{ dir: inbox, format: jsonl }}\noutput:\n  http: {{ url: \"http://127.0.0.1:{}/sales\" }}\non_error:\n  retry: {{ attempts: 2, backoff: fixed, initial: 50ms }}\n",
            erp.port
        ),
    );
    std::fs::create_dir_all(dir.join("inbox")).unwrap();
    std::fs::write(dir.join("inbox/sales.jsonl"), "{\"n\": 1}\n{\"n\": 2}\n").unwrap();
    std::thread::sleep(Duration::from_millis(1_100));
    let server = start(&dir, &data, &[]);
    let done = dir.join("inbox/done/sales.jsonl");
    wait_until("the file is done", 30, || done.exists());
    stop_gracefully(server);
    let seen: Vec<i64> = erp
        .seen()
        .iter()
        .map(|r| r.body["n"].as_i64().unwrap())
        .collect();
    assert_eq!(seen, [1, 1, 2, 2], "two attempts per record");
    let letters = dead_letters(&data, "sales");
    assert_eq!(letters.len(), 2, "{letters:#?}");
    assert!(letters.iter().all(|l| l.attempts == 2), "{letters:#?}");
    assert_eq!(letters[0].error["code"], "retries-exhausted");
    assert_eq!(letters[0].message["body"], json!({"n": 1}));
    assert_eq!(letters[0].message["meta"]["headers"]["line"], json!(1));
}

/// A templated header value with CR/LF can never be sent: dead-lettered at once (the webhook
/// gets its 202, the ERP nothing), not answered 503 forever.
#[test]
fn a_header_value_with_a_line_break_is_dead_lettered_at_once() {
    let erp = Peer::answering(201);
    let (_tmp, dir, data) = project(
        "orders",
        &format!(
            "pipeline: orders\ninput:\n  http: {{ path: /orders }}\noutput:\n  http:\n    url: \"http://127.0.0.1:{}/orders\"\n    headers: {{ x-ref: \"{{{{ body.ref }}}}\" }}\n",
            erp.port
        ),
    );
    let server = start(&dir, &data, &[]);
    let (status, body) = post(
        server.port,
        "/orders",
        &[],
        &json!({"ref": "A-1\r\nX-Injected: yes"}),
    );
    assert_eq!(status, 202, "{body}");
    // A clean one still goes out with its header.
    let (status, _) = post(server.port, "/orders", &[], &json!({"ref": "A-2"}));
    assert_eq!(status, 202);
    stop_gracefully(server);
    let seen = erp.seen();
    assert_eq!(seen.len(), 1, "{seen:#?}");
    assert_eq!(
        common::header(&seen[0].head, "x-ref").as_deref(),
        Some("A-2")
    );
    assert!(!seen[0].head.to_ascii_lowercase().contains("x-injected"));
    let letters = dead_letters(&data, "orders");
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].error["code"], "output-error");
    let text = letters[0].error["message"].as_str().unwrap();
    assert!(text.contains("x-ref"), "{text}");
}

/// A NUL byte in a templated file path is permanent too.
#[test]
fn a_nul_byte_in_a_file_path_is_dead_lettered_at_once() {
    let (_tmp, dir, data) = project(
        "audit",
        "pipeline: audit\ninput:\n  http: { path: /audit }\noutput:\n  file: { path: \"out/{{ body.store }}.jsonl\" }\n",
    );
    let server = start(&dir, &data, &[]);
    let (status, body) = post(server.port, "/audit", &[], &json!({"store": "s1\u{0}x"}));
    assert_eq!(status, 202, "{body}");
    let (status, _) = post(server.port, "/audit", &[], &json!({"store": "s2"}));
    assert_eq!(status, 202);
    stop_gracefully(server);
    assert!(dir.join("out/s2.jsonl").exists());
    let letters = dead_letters(&data, "audit");
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0].error["message"]
            .as_str()
            .unwrap()
            .contains("NUL"),
        "{:?}",
        letters[0].error
    );
}

/// A dead letter keeps the input as it was received beside the body at the failing step (a
/// split here: the failing message is one line of the order).
#[test]
fn a_dead_letter_keeps_the_input_as_received() {
    let erp = Peer::answering(422);
    let (_tmp, dir, data) = project(
        "lines",
        &format!(
            "pipeline: lines\ninput:\n  http: {{ path: /orders }}\nsteps:\n  - split: {{ path: body.lines }}\noutput:\n  http: {{ url: \"http://127.0.0.1:{}/lines\" }}\n",
            erp.port
        ),
    );
    let server = start(&dir, &data, &[]);
    let order = json!({"order": "A-9", "customer": "c-1", "lines": [{"sku": "S-1"}]});
    let (status, body) = post(server.port, "/orders", &[], &order);
    assert_eq!(status, 202, "{body}");
    stop_gracefully(server);
    let letters = dead_letters(&data, "lines");
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].message["body"], json!({"sku": "S-1"}));
    let original = letters[0].original.as_ref().expect("the original is kept");
    assert_eq!(original["body"], order);
    assert_eq!(
        original["meta"]["id"],
        letters[0].message["meta"]["causation_id"]
    );
}

/// Two `railyard run` on one data directory: the second is refused and says why.
#[test]
fn a_second_run_on_the_same_data_directory_is_refused() {
    let (_tmp, dir, data) = project(
        "audit",
        "pipeline: audit\ninput:\n  http: { path: /audit }\noutput:\n  stdout: {}\n",
    );
    let first = start(&dir, &data, &[]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_railyard"))
        .args([
            "run",
            dir.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--no-watch",
            "--listen",
            &format!("127.0.0.1:{}", common::free_port()),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another `railyard run`"), "{err}");
    assert!(
        err.contains(&format!("pid {}", first.child.id())),
        "names the holder: {err}"
    );
    // The first one still serves.
    assert_eq!(http(first.port, "GET", "/ready", &[], b"").0, 200);
    stop_gracefully(first);
}

/// With topics on RabbitMQ, an `X-Correlation-Id` over AMQP's 255-byte limit panicked in the
/// client and the order was lost behind a dedupe key. Now it is dead-lettered with the
/// reason, and the runtime keeps serving.
#[test]
fn a_correlation_id_over_the_amqp_limit_is_dead_lettered() {
    let Some(url) = rabbitmq() else { return };
    let (_tmp, dir, data) = project(
        "intake",
        "pipeline: intake\ninput:\n  http: { path: /orders }\n  dedupe_key: headers.\"x-event-id\"\nsteps:\n  - dedupe: { key: meta.dedupe_key, ttl: 72h }\noutput:\n  topic: test.delivery-core.orders\n",
    );
    let server = start(&dir, &data, &[("RAILYARD_AMQP_URL", url)]);
    let long = "c".repeat(300);
    let (status, body) = post(
        server.port,
        "/orders",
        &[("x-event-id", "evt-long"), ("x-correlation-id", &long)],
        &json!({"n": 1}),
    );
    assert_eq!(status, 202, "{body}");
    let (status, body) = post(
        server.port,
        "/orders",
        &[("x-event-id", "evt-short"), ("x-correlation-id", "c-1")],
        &json!({"n": 2}),
    );
    assert_eq!(status, 202, "still serving: {body}");
    stop_gracefully(server);
    let letters = dead_letters(&data, "intake");
    assert_eq!(letters.len(), 1, "{letters:#?}");
    let text = letters[0].error["message"].as_str().unwrap();
    assert!(
        text.contains("correlation id") && text.contains("255"),
        "{text}"
    );
    assert_eq!(letters[0].message["body"], json!({"n": 1}));
}

/// Two pipelines of one consumer group on two topics over RabbitMQ: each gets its own topic's
/// messages only (they shared one queue, and half the messages went to the wrong pipeline).
#[test]
fn one_group_on_two_broker_topics_gets_each_topic_in_its_pipeline() {
    let Some(url) = rabbitmq() else { return };
    let tag = format!("dc{}", std::process::id());
    let tmp = tempfile::tempdir().unwrap();
    let (dir, data) = (tmp.path().join("project"), tmp.path().join("data"));
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    let write = |name: &str, yaml: String| {
        std::fs::write(dir.join(format!("pipelines/{name}.yaml")), yaml).unwrap();
    };
    write(
        "in",
        format!(
            "pipeline: in\ninput:\n  http: {{ path: /in }}\noutput:\n  topic: \"{tag}.{{{{ body.kind }}}}\"\n"
        ),
    );
    for kind in ["sales", "adjustments"] {
        write(
            kind,
            format!(
                "pipeline: {kind}\ninput:\n  topic: {{ name: {tag}.{kind}, group: {tag} }}\noutput:\n  file: {{ path: out/{kind}.jsonl }}\n"
            ),
        );
    }
    let server = start(&dir, &data, &[("RAILYARD_AMQP_URL", url.clone())]);
    for n in 0..20 {
        let kind = if n % 2 == 0 { "sales" } else { "adjustments" };
        let (status, body) = post(server.port, "/in", &[], &json!({"n": n, "kind": kind}));
        assert_eq!(status, 202, "{body}");
    }
    let lines = |kind: &str| -> Vec<Value> {
        std::fs::read_to_string(dir.join(format!("out/{kind}.jsonl")))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    wait_until("both pipelines wrote their ten", 30, || {
        lines("sales").len() + lines("adjustments").len() >= 20
    });
    stop_gracefully(server);
    for kind in ["sales", "adjustments"] {
        let got = lines(kind);
        assert_eq!(got.len(), 10, "{kind}: {got:?}");
        assert!(got.iter().all(|m| m["kind"] == kind), "{kind}: {got:?}");
        common::delete_queue(
            &url,
            &railyard_connectors::amqp::topic_queue(&format!("{tag}.{kind}"), &tag),
        );
    }
    assert!(dead_letters(&data, "sales").is_empty());
}

/// A file-drop writer that pauses longer than the settle time at a line boundary: the part
/// written so far is processed and moved to done/, the writer appends the rest to the file it
/// has open (now in done/). Before, those records were lost silently; now the file is moved
/// back and read again (records repeat, none is lost).
#[test]
fn a_file_writer_that_pauses_loses_no_record() {
    let (_tmp, dir, data) = project(
        "sales",
        "pipeline: sales\ninput:\n  file: { dir: inbox, format: jsonl }\noutput:\n  file: { path: out/sales.jsonl }\n",
    );
    std::fs::create_dir_all(dir.join("inbox")).unwrap();
    let server = start(&dir, &data, &[]);
    let mut writer = std::fs::File::create(dir.join("inbox/sales.jsonl")).unwrap();
    for n in 0..5 {
        writeln!(writer, "{{\"n\": {n}}}").unwrap();
    }
    writer.flush().unwrap();
    let done = dir.join("inbox/done/sales.jsonl");
    wait_until("the first part is processed", 30, || done.exists());
    // The writer resumes.
    for n in 5..10 {
        writeln!(writer, "{{\"n\": {n}}}").unwrap();
    }
    writer.flush().unwrap();
    drop(writer);
    let got = || -> std::collections::BTreeSet<i64> {
        std::fs::read_to_string(dir.join("out/sales.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["n"]
                    .as_i64()
                    .unwrap()
            })
            .collect()
    };
    wait_until("every record is delivered", 60, || got().len() == 10);
    stop_gracefully(server);
    assert_eq!(got(), (0..10).collect());
}

/// A sender that hangs up while its message is being delivered: the message still finishes
/// (its output confirmed, its dedupe key committed), so the sender's retry is answered 202 as
/// a duplicate, not 503 "in flight" until a restart.
#[test]
fn a_sender_that_hangs_up_mid_request_does_not_leave_its_key_in_flight() {
    let erp = Peer::start(Arc::new(|_| Some((201, Duration::from_millis(1_500)))));
    let (_tmp, dir, data) = project(
        "orders",
        &DEDUPE_TO_ERP.replace("PORT", &erp.port.to_string()),
    );
    let server = start(&dir, &data, &[]);
    {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        let body = json!({"n": 9}).to_string();
        write!(
            s,
            "POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Event-Id: evt-9\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        wait_until("the ERP has the request", 30, || erp.seen().len() == 1);
        // The sender gives up and closes the connection while the ERP is still answering.
    }
    std::thread::sleep(Duration::from_millis(2_000));
    let (status, body) = post(
        server.port,
        "/orders",
        &[("x-event-id", "evt-9")],
        &json!({"n": 9}),
    );
    assert_eq!(status, 202, "the first copy finished: {body}");
    stop_gracefully(server);
    assert_eq!(
        erp.seen().len(),
        1,
        "delivered once; the retry was a duplicate"
    );
}

/// A message tried again does not write its file line twice: the file output wrote, the ERP
/// output after it failed, the platform re-sent the event; the retry finds its line (an
/// output mark) and only the ERP call is repeated. The same mark covers a crash between the
/// write and the commit (`benches/crash`).
#[test]
fn a_retry_does_not_append_the_line_it_already_wrote() {
    let erp = Peer::start(Arc::new(|n| {
        Some((if n == 0 { 503 } else { 201 }, Duration::ZERO))
    }));
    let (_tmp, dir, data) = project(
        "orders",
        &format!(
            "pipeline: orders\ninput:\n  http: {{ path: /orders }}\n  dedupe_key: headers.\"x-event-id\"\nsteps:\n  - dedupe: {{ key: meta.dedupe_key, ttl: 72h }}\noutput:\n  - file: {{ path: out/orders.jsonl }}\n  - http: {{ url: \"http://127.0.0.1:{}/orders\" }}\n",
            erp.port
        ),
    );
    let server = start(&dir, &data, &[]);
    let order = json!({"id": 1042, "total": "19.99"});
    let (status, body) = post(server.port, "/orders", &[("x-event-id", "ev-1")], &order);
    assert_eq!(
        status, 503,
        "the ERP failed: the sender is asked to retry ({body})"
    );
    let (status, body) = post(server.port, "/orders", &[("x-event-id", "ev-1")], &order);
    assert_eq!(status, 202, "{body}");
    // A later event is written as usual, after the first.
    let (status, _) = post(
        server.port,
        "/orders",
        &[("x-event-id", "ev-2")],
        &json!({"id": 1043}),
    );
    assert_eq!(status, 202);
    stop_gracefully(server);
    assert_eq!(
        erp.seen().len(),
        3,
        "the ERP saw both attempts and the second event"
    );
    let lines = std::fs::read_to_string(dir.join("out/orders.jsonl")).unwrap();
    assert_eq!(
        lines, "{\"id\":1042,\"total\":\"19.99\"}\n{\"id\":1043}\n",
        "each event once"
    );
    // Settled messages leave no marks behind.
    let store = railyard_store::Store::open_unlocked(&data.join("railyard.db")).unwrap();
    assert_eq!(store.purge_output_marks(i64::MAX).unwrap(), 0);
}

/// Message content cannot move a file output to another directory.
#[test]
fn a_templated_file_path_cannot_leave_its_directory() {
    let (tmp, dir, data) = project(
        "audit",
        "pipeline: audit\ninput:\n  http: { path: /audit }\noutput:\n  file: { path: \"out/{{ body.store }}.jsonl\" }\n",
    );
    let server = start(&dir, &data, &[]);
    for store in ["../../pwned", "..", "a/b", "/etc/x", "s\\t"] {
        let (status, body) = post(server.port, "/audit", &[], &json!({ "store": store }));
        assert_eq!(status, 202, "{store}: {body}");
    }
    let (status, _) = post(server.port, "/audit", &[], &json!({"store": "s2"}));
    assert_eq!(status, 202);
    stop_gracefully(server);
    assert!(dir.join("out/s2.jsonl").exists());
    assert!(!tmp.path().join("pwned.jsonl").exists());
    let letters = dead_letters(&data, "audit");
    assert_eq!(letters.len(), 5, "{letters:#?}");
    for l in &letters {
        let text = l.error["message"].as_str().unwrap();
        assert!(text.contains("would change the directory"), "{text}");
    }
    let written: Vec<_> = walkdir(&dir.join("out"));
    assert_eq!(written, vec!["s2.jsonl".to_string()]);
}

/// Values that pass one by one cannot join into a `..` above the output root: the component
/// holding them is checked once rendered (and the whole path against the root after that).
#[test]
fn an_empty_value_cannot_make_a_parent_directory() {
    let (tmp, dir, data) = project(
        "audit",
        "pipeline: audit\ninput:\n  http: { path: /audit }\noutput:\n  file: { path: \".{{ body.a }}./{{ body.b }}.jsonl\" }\n",
    );
    let server = start(&dir, &data, &[]);
    let (status, body) = post(server.port, "/audit", &[], &json!({"a": "", "b": "up"}));
    assert_eq!(status, 202, "{body}");
    let (status, _) = post(server.port, "/audit", &[], &json!({"a": "x", "b": "in"}));
    assert_eq!(status, 202);
    stop_gracefully(server);
    assert!(dir.join(".x./in.jsonl").exists());
    assert!(!tmp.path().join("up.jsonl").exists());
    let letters = dead_letters(&data, "audit");
    assert_eq!(letters.len(), 1, "{letters:#?}");
    let text = letters[0].error["message"].as_str().unwrap();
    assert!(text.contains("would change the directory"), "{text}");
}

/// `format: json` writes one whole file per message, replaced (not appended) on a repeat.
#[test]
fn a_json_file_output_writes_one_file_per_message() {
    let (_tmp, dir, data) = project(
        "orders",
        "pipeline: orders\ninput:\n  http: { path: /orders }\noutput:\n  file: { path: \"out/{{ body.id }}.json\", format: json }\n",
    );
    let server = start(&dir, &data, &[]);
    for body in [
        json!({"id": 1, "v": 1}),
        json!({"id": 2}),
        json!({"id": 1, "v": 2}),
    ] {
        let (status, text) = post(server.port, "/orders", &[], &body);
        assert_eq!(status, 202, "{text}");
    }
    stop_gracefully(server);
    let one: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out/1.json")).unwrap()).unwrap();
    assert_eq!(one, json!({"id": 1, "v": 2}));
    assert_eq!(walkdir(&dir.join("out")), vec!["1.json", "2.json"]);
}

/// The file names under `dir`, sorted.
fn walkdir(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Message content in an HTTP output's URL is data: percent-encoded for its place, so a
/// value cannot reach another endpoint of the peer (the hardening issue's reproduction:
/// `../../admin/delete?all=1#` sent the request, with its credentials, elsewhere).
#[test]
fn a_templated_url_value_cannot_change_the_endpoint() {
    let erp = Peer::answering(200);
    let (_tmp, dir, data) = project(
        "orders",
        &format!(
            "pipeline: orders\ninput:\n  http: {{ path: /orders }}\noutput:\n  http: {{ url: \"http://127.0.0.1:{}/orders/{{{{ body.ref }}}}?store={{{{ body.store }}}}\", headers: {{ authorization: Bearer t0k }} }}\n",
            erp.port
        ),
    );
    let server = start(&dir, &data, &[]);
    for body in [
        json!({"ref": "../../admin/delete?all=1#", "store": "s 1&x=y"}),
        json!({"ref": "..", "store": "s1"}),
        json!({"ref": "A-1042", "store": "Zürich"}),
    ] {
        let (status, text) = post(server.port, "/orders", &[], &body);
        assert_eq!(status, 202, "{text}");
    }
    stop_gracefully(server);
    let paths: Vec<String> = erp
        .seen()
        .iter()
        .map(|r| r.head.split(' ').nth(1).unwrap().to_string())
        .collect();
    assert_eq!(
        paths,
        vec![
            "/orders/..%2F..%2Fadmin%2Fdelete%3Fall%3D1%23?store=s%201%26x%3Dy",
            "/orders/A-1042?store=Z%C3%BCrich",
        ]
    );
    let letters = dead_letters(&data, "orders");
    assert_eq!(letters.len(), 1, "a `..` segment is refused: {letters:#?}");
    let text = letters[0].error["message"].as_str().unwrap();
    assert!(text.contains("would change the path"), "{text}");
}

/// A failing ERP's URL (with a password and an API key in it) reaches neither the webhook
/// caller nor the log; the caller gets the message id and "send it again".
#[test]
fn a_webhook_caller_never_sees_the_downstream_url_and_the_log_shows_no_secret() {
    let erp = Peer::answering(503);
    let (tmp, dir, data) = project(
        "orders",
        &format!(
            "pipeline: orders\ninput:\n  http: {{ path: /orders }}\noutput:\n  http: {{ url: \"http://bc:s3cret-pw@127.0.0.1:{}/erp/orders?apikey=k3y-value\" }}\n",
            erp.port
        ),
    );
    let log = tmp.path().join("run.log");
    let server = common::launch_logged(
        &dir,
        &["--data", data.to_str().unwrap(), "--no-watch"],
        &[],
        &log,
    );
    let (status, body) = post(server.port, "/orders", &[], &json!({"id": 1}));
    assert_eq!(status, 503, "{body}");
    for secret in [
        "s3cret-pw",
        "k3y-value",
        "/erp/orders",
        &erp.port.to_string(),
    ] {
        assert!(!body.contains(secret), "the caller sees `{secret}`: {body}");
    }
    assert!(body.contains("send it again"), "{body}");
    stop_gracefully(server);
    assert_eq!(erp.seen().len(), 1);
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains("/erp/orders?…"),
        "the log names the endpoint: {log}"
    );
    for secret in ["s3cret-pw", "k3y-value"] {
        assert!(!log.contains(secret), "the log shows `{secret}`: {log}");
    }
}

/// A tmpfs mount of `size` at `at`, unmounted on drop.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, size: &str) -> Option<Mount> {
        std::fs::create_dir_all(at).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Mount(at.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// A full disk under the data directory: `/ready` answers 503 with the reason and webhooks
/// answer 503 (nothing is accepted that could not be kept); once there is room again, both
/// recover by themselves.
#[test]
fn a_full_data_disk_makes_ready_and_webhooks_answer_503_until_there_is_room() {
    let (tmp, dir, _) = project(
        "orders",
        "pipeline: orders\ninput:\n  http: { path: /orders }\n  dedupe_key: headers.\"x-event-id\"\nsteps:\n  - dedupe: { key: meta.dedupe_key, ttl: 72h }\noutput:\n  file: { path: out/orders.jsonl }\n",
    );
    let data = tmp.path().join("data");
    let Some(_mount) = Mount::tmpfs(&data, "8m") else {
        assert!(
            std::env::var("RAILYARD_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "a tmpfs could not be mounted (this test needs root) and RAILYARD_REQUIRE_SERVICES=1"
        );
        eprintln!("SKIPPED: a tmpfs could not be mounted (needs root)");
        return;
    };
    let server = start(&dir, &data, &[]);
    let (status, _) = post(
        server.port,
        "/orders",
        &[("x-event-id", "e1")],
        &json!({"n": 1}),
    );
    assert_eq!(status, 202);
    // Fill the disk.
    let filler = data.join("filler");
    {
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }
    let ready = || http(server.port, "GET", "/ready", &[], b"");
    wait_until("/ready answers 503 on a full disk", 30, || ready().0 == 503);
    let (_, body) = ready();
    assert!(body.to_ascii_lowercase().contains("store"), "{body}");
    let (status, body) = post(
        server.port,
        "/orders",
        &[("x-event-id", "e2")],
        &json!({"n": 2}),
    );
    assert_eq!(status, 503, "{body}");
    std::fs::remove_file(&filler).unwrap();
    wait_until("/ready recovers once there is room", 30, || {
        ready().0 == 200
    });
    let (status, body) = post(
        server.port,
        "/orders",
        &[("x-event-id", "e2")],
        &json!({"n": 2}),
    );
    assert_eq!(status, 202, "{body}");
    stop_gracefully(server);
    let lines = std::fs::read_to_string(dir.join("out/orders.jsonl")).unwrap();
    assert_eq!(lines, "{\"n\":1}\n{\"n\":2}\n");
}

/// Messages an earlier version left in a consumer group's single queue `railyard.<group>`
/// are moved, at start, into the queues of their topics and reach the right pipelines; the
/// old queue is deleted once empty.
#[test]
fn messages_in_an_old_group_queue_move_to_their_topic_queues() {
    let Some(url) = rabbitmq() else { return };
    let tag = format!("mig{}", std::process::id());
    let old = format!("railyard.{tag}");
    // What the earlier version did: one queue per group, bound for each topic.
    common::with_channel(&url, async |ch| {
        use lapin::options::*;
        use lapin::types::FieldTable;
        ch.exchange_declare(
            railyard_connectors::amqp::TOPICS_EXCHANGE.into(),
            lapin::ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
        ch.queue_declare(
            old.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        for kind in ["sales", "adjustments"] {
            let topic = format!("{tag}.{kind}");
            ch.queue_bind(
                old.as_str().into(),
                railyard_connectors::amqp::TOPICS_EXCHANGE.into(),
                topic.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        }
        for n in 0..6 {
            let kind = if n % 2 == 0 { "sales" } else { "adjustments" };
            let envelope =
                json!({"body": {"n": n, "kind": kind}, "meta": {"id": format!("old-{n}")}});
            ch.basic_publish(
                railyard_connectors::amqp::TOPICS_EXCHANGE.into(),
                format!("{tag}.{kind}").as_str().into(),
                BasicPublishOptions::default(),
                envelope.to_string().as_bytes(),
                lapin::BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        }
    });
    assert_eq!(common::queue_depth(&url, &old), 6);
    let tmp = tempfile::tempdir().unwrap();
    let (dir, data) = (tmp.path().join("project"), tmp.path().join("data"));
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    for kind in ["sales", "adjustments"] {
        std::fs::write(
            dir.join(format!("pipelines/{kind}.yaml")),
            format!(
                "pipeline: {kind}\ninput:\n  topic: {{ name: {tag}.{kind}, group: {tag} }}\noutput:\n  file: {{ path: out/{kind}.jsonl }}\n"
            ),
        )
        .unwrap();
    }
    let server = start(&dir, &data, &[("RAILYARD_AMQP_URL", url.clone())]);
    let lines = |kind: &str| -> Vec<Value> {
        std::fs::read_to_string(dir.join(format!("out/{kind}.jsonl")))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    wait_until("both pipelines wrote their three", 30, || {
        lines("sales").len() + lines("adjustments").len() >= 6
    });
    stop_gracefully(server);
    for kind in ["sales", "adjustments"] {
        let got = lines(kind);
        assert_eq!(got.len(), 3, "{kind}: {got:?}");
        assert!(got.iter().all(|m| m["kind"] == kind), "{kind}: {got:?}");
        common::delete_queue(
            &url,
            &railyard_connectors::amqp::topic_queue(&format!("{tag}.{kind}"), &tag),
        );
    }
    // The old queue is gone: a passive declare fails.
    let gone = common::with_channel(&url, async |ch| {
        ch.queue_declare(
            old.as_str().into(),
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await
        .is_err()
    });
    if !gone {
        common::delete_queue(&url, &old);
    }
    assert!(gone, "the emptied old queue `{old}` was deleted");
}

/// Inbound credentials stop at the webhook: the API key and an `Authorization` header are
/// checked, then kept out of the message (here its dead letter, message and original);
/// `keep_headers` keeps a named one.
#[test]
fn credential_headers_are_not_kept_in_the_message() {
    let erp = Peer::answering(400);
    let (_tmp, dir, data) = project(
        "intake",
        &format!(
            "pipeline: intake\ninput:\n  http:\n    path: /in\n    api_key: {{ keys: [k-123] }}\n    keep_headers: [cookie]\noutput:\n  http: {{ url: \"http://127.0.0.1:{}/x\" }}\n",
            erp.port
        ),
    );
    let server = start(&dir, &data, &[]);
    let (status, body) = post(
        server.port,
        "/in",
        &[
            ("x-api-key", "k-123"),
            ("authorization", "Bearer s3cret-token"),
            ("cookie", "session=kept"),
            ("x-shop", "s1"),
        ],
        &json!({"n": 1}),
    );
    assert_eq!(status, 202, "{body}");
    stop_gracefully(server);
    let letters = dead_letters(&data, "intake");
    assert_eq!(letters.len(), 1, "{letters:#?}");
    let headers = &letters[0].message["meta"]["headers"];
    assert_eq!(headers["x-shop"], "s1", "{headers}");
    assert_eq!(
        headers["cookie"], "session=kept",
        "kept by keep_headers: {headers}"
    );
    let text = format!("{:?}", letters[0]);
    for secret in ["k-123", "s3cret-token"] {
        assert!(!text.contains(secret), "`{secret}` was stored: {text}");
    }
}
