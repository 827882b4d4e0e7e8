//! `railyard run` as an operator runs it: a real process on a real port with the embedded
//! store, a signed webhook from the Shopify fixture, a topic consumer writing a file, the
//! admin endpoints, a refusal, and a graceful stop on SIGTERM.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;
use common::{
    Server, free_port, http, launch, reference_copy as reference_project, root, stop_gracefully,
};
use common::{delete_queue, queue_depth, rabbitmq};

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn start(dir: &Path) -> Server {
    start_with_env(dir, &[])
}

fn shopify_request() -> (Vec<(String, String)>, Vec<u8>) {
    let body =
        std::fs::read(root().join("tests/fixtures/shopify/orders_create.body.json")).unwrap();
    let headers: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root().join("tests/fixtures/shopify/orders_create.headers.json")).unwrap(),
    )
    .unwrap();
    let h = headers
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| !k.starts_with('_') && !k.eq_ignore_ascii_case("content-length"))
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    (h, body)
}

#[test]
fn a_signed_webhook_flows_through_topics_to_a_file_and_the_server_stops_cleanly() {
    let tmp = reference_project();
    // The defaults: the store and the file outputs in DIR/data.
    let mut server = start_with_env(tmp.path(), &[("RAILYARD_OUTPUT_ROOT", String::new())]);
    let port = server.port;

    let (status, health) = http(port, "GET", "/health", &[], b"");
    assert_eq!(status, 200);
    assert!(health.contains("shopify-order-intake"), "{health}");
    assert!(
        health.contains("\"order-to-erp\"")
            && health.contains("\"pos-sales-file-drop\"")
            && health.contains("\"not_started\":{}"),
        "every reference pipeline runs: {health}"
    );

    let (headers, body) = shopify_request();
    let hdrs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, resp) = http(port, "POST", "/webhooks/shopify/orders", &hdrs, &body);
    assert_eq!(status, 202, "{resp}");
    assert!(resp.contains("x-railyard-message-id"), "{resp}");

    // The same bytes with a wrong signature are refused.
    let mut bad = hdrs.clone();
    for h in bad.iter_mut() {
        if h.0.eq_ignore_ascii_case("x-shopify-hmac-sha256") {
            h.1 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        }
    }
    assert_eq!(
        http(port, "POST", "/webhooks/shopify/orders", &bad, &body).0,
        401
    );

    // The reference `order-audit` pipeline consumes orders.accepted and appends the canonical
    // order to a daily file under audit/ in the output root, by default the data directory.
    let audit_dir = tmp.path().join("data/audit");
    let audit_file = || -> Option<PathBuf> {
        std::fs::read_dir(&audit_dir)
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .next()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let line = loop {
        if let Some(path) = audit_file()
            && let Ok(text) = std::fs::read_to_string(&path)
            && let Some(l) = text.lines().next()
        {
            break l.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "the topic consumer never wrote the audit file"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // The audit line is an envelope: the order with its trace.
    let audit: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(audit["body"]["order_id"], "shopify:6104523881562");
    assert_eq!(audit["pipeline"], "order-audit", "{audit}");
    for key in ["id", "correlation_id", "received_at", "pipeline_revision"] {
        assert!(
            audit[key].as_str().is_some_and(|v| !v.is_empty()),
            "{key}: {audit}"
        );
    }

    // A redelivered webhook (same event id) is deduplicated: no second audit line.
    assert_eq!(
        http(port, "POST", "/webhooks/shopify/orders", &hdrs, &body).0,
        202
    );
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(
        std::fs::read_to_string(audit_file().unwrap())
            .unwrap()
            .lines()
            .count(),
        1
    );

    let (_, metrics) = http(port, "GET", "/metrics", &[], b"");
    assert!(
        metrics.contains(
            "railyard_messages_total{pipeline=\"shopify-order-intake\",outcome=\"delivered\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "railyard_messages_total{pipeline=\"shopify-order-intake\",outcome=\"dropped\"} 1"
        ),
        "{metrics}"
    );

    // SIGTERM: graceful stop, exit 0.
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "railyard run did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status:?}");
    let mut err = String::new();
    server
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains("railyard: stopped"), "{err}");

    // What order-to-erp (not started: no HTTP output yet) will consume is waiting, durably.
    let store = railyard_store::Store::open_unlocked(&tmp.path().join("data/railyard.db")).unwrap();
    assert_eq!(store.depth("orders.accepted", "erp").unwrap(), 1);
}

#[test]
fn an_invalid_project_does_not_start() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("pipelines")).unwrap();
    std::fs::write(
        tmp.path().join("pipelines/p.yaml"),
        "pipeline: p\ninput: { stdin: {} }\noutput: { stdot: {} }\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_railyard"))
        .args([
            "run",
            tmp.path().to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown key `stdot`") && err.contains("nothing started"),
        "{err}"
    );
}

/// A stand-in for Business Central: answers the scripted statuses in order (then 201), with
/// `Retry-After` on 429/503, and records every request it got.
struct FakeErp {
    port: u16,
    seen: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
}

fn fake_erp(script: Vec<u16>) -> FakeErp {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>> = Default::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        let mut script = script.into_iter();
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let (head, body) = common::read_request(&mut s).unwrap_or_default();
            let id = common::header(&head, "x-railyard-message-id").unwrap_or_default();
            log.lock().unwrap().push((id, body));
            let status = script.next().unwrap_or(201);
            let extra = if status == 429 || status == 503 {
                "Retry-After: 1\r\n"
            } else {
                ""
            };
            let reply = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: 2\r\n{extra}Connection: close\r\n\r\n{{}}"
            );
            let _ = s.write_all(reply.as_bytes());
        }
    });
    FakeErp { port, seen }
}

fn start_with_env(dir: &Path, env: &[(&str, String)]) -> Server {
    launch(dir, &[], env)
}

/// `railyard_messages_total` of `pipeline` and `outcome` on a `/metrics` page.
fn messages_total(metrics: &str, pipeline: &str, outcome: &str) -> Option<f64> {
    common::metric(
        metrics,
        &format!("railyard_messages_total{{pipeline=\"{pipeline}\",outcome=\"{outcome}\"}}"),
    )
}

#[test]
fn the_erp_output_retries_503_and_429_then_posts_exactly_the_mapped_order() {
    let erp = fake_erp(vec![503, 429]);
    let tmp = reference_project();
    let server = start_with_env(
        tmp.path(),
        &[("BC_BASE_URL", format!("http://127.0.0.1:{}", erp.port))],
    );
    let (headers, body) = shopify_request();
    let hdrs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        http(
            server.port,
            "POST",
            "/webhooks/shopify/orders",
            &hdrs,
            &body
        )
        .0,
        202
    );

    // 503 → wait ≥ 1 s (Retry-After) → 429 → wait ≥ 1 s → 201.
    let deadline = Instant::now() + Duration::from_secs(60);
    while erp.seen.lock().unwrap().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "the ERP output did not retry: {:?}",
            erp.seen.lock().unwrap().len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let seen = erp.seen.lock().unwrap().clone();
    assert_eq!(
        seen.len(),
        3,
        "exactly three attempts, no extra post after the 201"
    );
    assert!(
        seen.iter()
            .all(|(id, _)| !id.is_empty() && *id == seen[0].0),
        "one message id across retries: {seen:?}"
    );
    let posted: serde_json::Value = serde_json::from_str(&seen[2].1).unwrap();
    let expected: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root().join("tests/fixtures/erp/bc_sales_order.shopify_1042.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        posted, expected,
        "the BC deep-insert body is the mapping's output"
    );
    let metrics = http(server.port, "GET", "/metrics", &[], b"").1;
    let count = |outcome: &str| messages_total(&metrics, "order-to-erp", outcome);
    assert_eq!(count("retried"), Some(2.0), "{metrics}");
    assert_eq!(
        count("delivered"),
        Some(1.0),
        "delivered once, after the 201: {metrics}"
    );
    drop(server);
    let store = railyard_store::Store::open_unlocked(&tmp.path().join("data/railyard.db")).unwrap();
    assert_eq!(
        store.depth("orders.accepted", "erp").unwrap(),
        0,
        "acked after the 201"
    );
    assert!(store.dead_letters(None, 10).unwrap().is_empty());
}

#[test]
fn a_rejected_order_is_dead_lettered_not_retried() {
    let erp = fake_erp(vec![400]);
    let tmp = reference_project();
    let server = start_with_env(
        tmp.path(),
        &[("BC_BASE_URL", format!("http://127.0.0.1:{}", erp.port))],
    );
    let (headers, body) = shopify_request();
    let hdrs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        http(
            server.port,
            "POST",
            "/webhooks/shopify/orders",
            &hdrs,
            &body
        )
        .0,
        202
    );
    let store_path = tmp.path().join("data/railyard.db");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let store = railyard_store::Store::open_unlocked(&store_path).unwrap();
        let dead = store.dead_letters(Some("order-to-erp"), 10).unwrap();
        if let Some((_, dl)) = dead.first() {
            assert_eq!(dl.error["code"], "output-error");
            assert!(
                dl.error["message"]
                    .as_str()
                    .unwrap()
                    .contains("answered 400"),
                "{}",
                dl.error
            );
            assert_eq!(dl.message["body"]["externalDocumentNumber"], "SHOP-1042");
            assert_eq!(dl.step, "output http");
            break;
        }
        assert!(Instant::now() < deadline, "the 400 was never dead-lettered");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(erp.seen.lock().unwrap().len(), 1, "a 400 is not retried");
    let metrics = http(server.port, "GET", "/metrics", &[], b"").1;
    let count = |outcome: &str| messages_total(&metrics, "order-to-erp", outcome);
    assert_eq!(count("dead_lettered"), Some(1.0), "{metrics}");
    assert_eq!(count("delivered"), None, "never delivered: {metrics}");
}

#[test]
fn a_schedule_emits_its_body_on_every_tick() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("pipelines")).unwrap();
    std::fs::write(
        tmp.path().join("pipelines/poll.yaml"),
        "pipeline: poll\ninput:\n  schedule: { every: 200ms, body: { since: PT15M } }\noutput:\n  file: { path: ticks.jsonl }\n",
    )
    .unwrap();
    let server = start(tmp.path());
    let ticks = tmp.path().join("ticks.jsonl");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = std::fs::read_to_string(&ticks)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if n >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "only {n} ticks");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(server);
    let text = std::fs::read_to_string(&ticks).unwrap();
    assert!(text.lines().all(|l| l == r#"{"since":"PT15M"}"#), "{text}");
}

#[test]
fn a_retried_delivery_is_not_dropped_as_a_duplicate_of_itself() {
    // Regression: the dedupe key was recorded on the first attempt; when the output then
    // failed, the retry was dropped as a duplicate and the message was lost.
    let erp = fake_erp(vec![503]);
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("pipelines")).unwrap();
    std::fs::write(
        tmp.path().join("pipelines/in.yaml"),
        "pipeline: in\ninput:\n  http: { path: /in }\noutput:\n  topic: work\n",
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("pipelines/out.yaml"),
        format!(
            "pipeline: out\ninput:\n  topic: work\nsteps:\n  - dedupe: {{ key: body.id, ttl: 1h }}\noutput:\n  http: {{ url: \"http://127.0.0.1:{}/orders\" }}\non_error:\n  retry: {{ attempts: 5, initial: 100ms }}\n",
            erp.port
        ),
    )
    .unwrap();
    let server = start(tmp.path());
    let (status, _) = http(
        server.port,
        "POST",
        "/in",
        &[("Content-Type", "application/json")],
        br#"{"id": 7}"#,
    );
    assert_eq!(status, 202);
    let deadline = Instant::now() + Duration::from_secs(30);
    while erp.seen.lock().unwrap().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the retry never reached the ERP: the message was lost"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A true duplicate (a second message with the same id) is still dropped.
    assert_eq!(
        http(
            server.port,
            "POST",
            "/in",
            &[("Content-Type", "application/json")],
            br#"{"id": 7}"#
        )
        .0,
        202
    );
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        erp.seen.lock().unwrap().len(),
        2,
        "503 then 201, and the duplicate dropped"
    );
}

#[test]
fn a_dropped_pos_file_is_processed_once_and_moved_to_done() {
    let tmp = reference_project();
    let inbox = tmp.path().join("data/inbox/pos");
    std::fs::create_dir_all(&inbox).unwrap();
    let csv = std::fs::read(
        root().join("runtime/railyard-connectors/tests/data/pos/store_sales_lines.csv"),
    )
    .unwrap();
    std::fs::write(inbox.join("store_sales_lines_S014_2025-03-14.csv"), &csv).unwrap();
    let server = start(tmp.path());
    let done = inbox.join("done/store_sales_lines_S014_2025-03-14.csv");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done.exists() {
        assert!(Instant::now() < deadline, "the file never reached done/");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The micro-batch (window 5s) is emitted by the flusher.
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        let (_, m) = http(server.port, "GET", "/metrics", &[], b"");
        if m.contains(
            "railyard_messages_total{pipeline=\"store-sales-to-inventory\",outcome=\"delivered\"}",
        ) {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "no batch reached store-sales-to-inventory: {m}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        metrics.contains("pipeline=\"pos-sales-file-drop\",outcome=\"dropped\""),
        "the void row is dropped: {metrics}"
    );

    // The SFTP job re-sends the same file: recognised by content, nothing posted again.
    let before = metrics
        .lines()
        .find(|l| l.contains("pos-sales-file-drop") && l.contains("delivered"))
        .map(str::to_string);
    std::fs::write(inbox.join("store_sales_lines_S014_2025-03-14.csv"), &csv).unwrap();
    let again = inbox.join("done/store_sales_lines_S014_2025-03-14-1.csv");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !again.exists() {
        assert!(
            Instant::now() < deadline,
            "the re-sent file never reached done/"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(6));
    let (_, metrics) = http(server.port, "GET", "/metrics", &[], b"");
    let after = metrics
        .lines()
        .find(|l| l.contains("pos-sales-file-drop") && l.contains("delivered"))
        .map(str::to_string);
    assert_eq!(before, after, "a re-sent file posts nothing");
}

fn wait_for_reload(port: u16, reloads: u64, failed: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, health) = http(port, "GET", "/health", &[], b"");
        let body = health
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_string();
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&body)
            && v["reload"]["reloads"].as_u64().unwrap_or(0) >= reloads
            && v["reload"]["failed"].as_u64().unwrap_or(0) >= failed
        {
            return body;
        }
        assert!(Instant::now() < deadline, "no reload seen: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn hot_reload_swaps_valid_changes_and_keeps_serving_through_invalid_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    let pipeline = |v: u32| {
        format!(
            "pipeline: intake\nversion: {v}\ninput:\n  http: {{ path: /in }}\nsteps:\n  - script: {{ rhai: \"#{{ id: body.id, v: {v} }}\" }}\noutput:\n  file: {{ path: out.jsonl }}\n"
        )
    };
    std::fs::write(dir.join("pipelines/intake.yaml"), pipeline(1)).unwrap();
    let server = start(dir);
    let post = |path: &str, id: u32| {
        http(
            server.port,
            "POST",
            path,
            &[("Content-Type", "application/json")],
            format!("{{\"id\": {id}}}").as_bytes(),
        )
        .0
    };
    assert_eq!(post("/in", 1), 202);

    // A valid edit: new messages run on version 2.
    std::fs::write(dir.join("pipelines/intake.yaml"), pipeline(2)).unwrap();
    wait_for_reload(server.port, 1, 0);
    assert_eq!(post("/in", 2), 202);

    // An invalid edit: reported on /health, version 2 keeps serving.
    std::fs::write(
        dir.join("pipelines/intake.yaml"),
        "pipeline: intake\ninptu: {}\n",
    )
    .unwrap();
    let health = wait_for_reload(server.port, 1, 1);
    assert!(
        health.contains("\"ok\":false") && health.contains("unknown key `inptu`"),
        "{health}"
    );
    assert_eq!(post("/in", 3), 202);

    // A new pipeline starts; restoring the first one is a valid reload again.
    std::fs::write(dir.join("pipelines/intake.yaml"), pipeline(2)).unwrap();
    std::fs::write(
        dir.join("pipelines/second.yaml"),
        "pipeline: second\ninput:\n  http: { path: /second }\noutput:\n  file: { path: second.jsonl }\n",
    )
    .unwrap();
    wait_for_reload(server.port, 2, 1);
    assert_eq!(post("/second", 4), 202);

    // A deleted pipeline stops: its route is gone.
    std::fs::remove_file(dir.join("pipelines/second.yaml")).unwrap();
    wait_for_reload(server.port, 3, 1);
    assert_eq!(post("/second", 5), 404);
    drop(server);

    assert_eq!(
        common::jsonl(&dir.join("out.jsonl")),
        vec![
            serde_json::json!({"id": 1, "v": 1}),
            serde_json::json!({"id": 2, "v": 2}),
            serde_json::json!({"id": 3, "v": 2}),
        ],
        "every message once, on the version in force when it arrived"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("second.jsonl"))
            .unwrap()
            .lines()
            .count(),
        1
    );
}

#[test]
fn a_file_resumes_after_the_last_record_handed_off_before_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    std::fs::create_dir_all(dir.join("inbox")).unwrap();
    std::fs::write(
        dir.join("pipelines/lines.yaml"),
        "pipeline: lines\ninput:\n  file: { dir: inbox, format: jsonl }\noutput:\n  file: { path: out.jsonl }\n",
    )
    .unwrap();
    let content = (1..=6)
        .map(|i| format!("{{\"n\": {i}}}\n"))
        .collect::<String>();
    // A previous run handed off the first 4 records, then crashed before moving the file.
    let store = railyard_store::Store::open_unlocked(&dir.join("data/railyard.db")).unwrap();
    let key = railyard_connectors::file::content_key(content.as_bytes());
    store
        .set_file_progress(
            "lines",
            &key,
            railyard_store::FileProgress {
                handed_off: 4,
                complete: false,
            },
            0,
        )
        .unwrap();
    drop(store);
    std::fs::write(dir.join("inbox/batch.jsonl"), &content).unwrap();
    // Let the file settle (the connector skips files modified in the last second).
    std::thread::sleep(Duration::from_millis(1_100));
    let server = start(dir);
    let done = dir.join("inbox/done/batch.jsonl");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done.exists() {
        assert!(Instant::now() < deadline, "the file never reached done/");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(server);
    let out = std::fs::read_to_string(dir.join("out.jsonl")).unwrap();
    assert_eq!(
        out, "{\"n\":5}\n{\"n\":6}\n",
        "only the records after the crash point, once each"
    );
}

#[test]
fn messages_cross_rabbitmq_with_confirms_and_acks() {
    let Some(url) = rabbitmq() else { return };
    let queue = format!("railyard.test.{}", std::process::id());
    assert_eq!(queue_depth(&url, &queue), 0, "a fresh queue");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    std::fs::write(
        dir.join("pipelines/a.yaml"),
        format!("pipeline: a\ninput:\n  http: {{ path: /a }}\noutput:\n  amqp: {{ exchange: \"\", routing_key: \"{queue}\" }}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("pipelines/b.yaml"),
        format!("pipeline: b\ninput:\n  amqp: {{ queue: \"{queue}\", prefetch: 8 }}\noutput:\n  file: {{ path: out.jsonl }}\n"),
    )
    .unwrap();
    let server = start(dir);
    for i in 0..20 {
        let (status, resp) = http(
            server.port,
            "POST",
            "/a",
            &[
                ("Content-Type", "application/json"),
                ("X-Correlation-Id", "corr-1"),
            ],
            format!("{{\"n\": {i}}}").as_bytes(),
        );
        assert_eq!(status, 202, "{resp}");
    }
    let out = dir.join("out.jsonl");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = std::fs::read_to_string(&out)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if n >= 20 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {n} of 20 crossed the broker"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    stop_gracefully(server);
    let mut got: Vec<i64> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["n"]
                .as_i64()
                .unwrap()
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        (0..20).collect::<Vec<i64>>(),
        "each message exactly once"
    );
    assert_eq!(queue_depth(&url, &queue), 0, "every delivery was acked");
    delete_queue(&url, &queue);
}

/// A passive declare: true only if the queue already exists on the broker.
fn queue_exists(url: &str, queue: &str) -> bool {
    common::with_channel(url, async |ch| {
        ch.queue_declare(
            queue.into(),
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await
        .is_ok()
    })
}

fn start_on(dir: &Path, data: &Path, env: &[(&str, String)]) -> Server {
    launch(dir, &["--data", data.to_str().unwrap(), "--no-watch"], env)
}

#[test]
fn with_a_broker_two_processes_share_a_topic_as_competing_consumers() {
    let Some(url) = rabbitmq() else { return };
    let tag = format!("t{}", std::process::id());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    std::fs::write(
        dir.join("pipelines/in.yaml"),
        format!("pipeline: in\ninput:\n  http: {{ path: /in }}\noutput:\n  topic: work.{tag}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("pipelines/out.yaml"),
        format!("pipeline: out\ninput:\n  topic: {{ name: work.{tag}, group: {tag} }}\noutput:\n  file: {{ path: out.jsonl }}\n"),
    )
    .unwrap();
    let env = [("RAILYARD_AMQP_URL", url.clone())];
    let a = start_on(dir, &dir.join("data-a"), &env);
    let b = start_on(dir, &dir.join("data-b"), &env);
    for i in 0..40 {
        let port = if i % 2 == 0 { a.port } else { b.port };
        let (status, resp) = http(
            port,
            "POST",
            "/in",
            &[("Content-Type", "application/json")],
            format!("{{\"n\": {i}}}").as_bytes(),
        );
        assert_eq!(status, 202, "{resp}");
    }
    let out = dir.join("out.jsonl");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&out)
        .map(|t| t.lines().count())
        .unwrap_or(0)
        < 40
    {
        assert!(
            Instant::now() < deadline,
            "not all messages crossed the broker"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    stop_gracefully(a);
    stop_gracefully(b);
    let mut got: Vec<i64> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["n"]
                .as_i64()
                .unwrap()
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        (0..40).collect::<Vec<i64>>(),
        "each message exactly once across both processes"
    );
    let queue = railyard_connectors::amqp::topic_queue(&format!("work.{tag}"), &tag);
    assert!(
        queue_exists(&url, &queue),
        "the group's queue on the broker carried the topic"
    );
    assert_eq!(queue_depth(&url, &queue), 0, "every delivery was acked");
    delete_queue(&url, &queue);
    // Nothing went through the embedded store.
    let store = railyard_store::Store::open_unlocked(&dir.join("data-a/railyard.db")).unwrap();
    assert_eq!(store.depth(&format!("work.{tag}"), &tag).unwrap(), 0);
}

#[test]
fn ready_is_false_while_a_broker_is_unreachable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    // Port 1 on localhost: nothing listens, the consumer keeps reconnecting with backoff.
    std::fs::write(
        dir.join("pipelines/q.yaml"),
        "pipeline: q\ninput:\n  amqp: { url: \"amqp://guest:guest@127.0.0.1:1/%2f\", queue: orders }\noutput:\n  stdout: {}\n",
    )
    .unwrap();
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_railyard"))
        .args([
            "run",
            dir.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let server = Server { child, port };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(TcpStream::connect(("127.0.0.1", port)).is_ok()
        && http(port, "GET", "/health", &[], b"").0 == 200)
    {
        assert!(Instant::now() < deadline, "railyard run did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let (status, body) = http(server.port, "GET", "/ready", &[], b"");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("brokers_down") && body.contains("amqp q orders"),
        "{body}"
    );
    assert!(
        !body.contains("guest:guest"),
        "/ready is unauthenticated: it must not show the broker's credentials: {body}"
    );
}
