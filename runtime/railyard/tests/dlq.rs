//! `railyard dlq list|show|drop` on dead letters written by a real `railyard run`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{http, launch, stop_gracefully, wait_until};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn dlq(data: &Path, args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_railyard"))
        .arg("dlq")
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .unwrap();
    let o = Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
    o
}

fn ids(out: &Out) -> Vec<u64> {
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_u64().unwrap())
        .collect()
}

/// A project with `pipelines` (name, YAML) beside its data directory.
fn project(pipelines: &[(&str, String)]) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, data) = (tmp.path().join("project"), tmp.path().join("data"));
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    for (name, yaml) in pipelines {
        std::fs::write(dir.join(format!("pipelines/{name}.yaml")), yaml).unwrap();
    }
    (tmp, dir, data)
}

#[test]
fn dead_letters_are_listed_shown_filtered_and_dropped() {
    let erp = scripted_erp(Default::default(), Default::default());
    let (_tmp, dir, data) = project(&[
        (
            "orders",
            format!(
                "pipeline: orders\ninput:\n  http: {{ path: /orders }}\noutput:\n  http: {{ url: \"http://127.0.0.1:{erp}/erp/orders\" }}\n"
            ),
        ),
        (
            "stock",
            "pipeline: stock\ninput:\n  http: { path: /stock }\nsteps:\n  - script: { rhai: \"if body.qty < 0 { throw `negative quantity` } body\" }\noutput:\n  stdout: {}\n".to_string(),
        ),
    ]);
    let server = launch(&dir, &["--data", data.to_str().unwrap(), "--no-watch"], &[]);
    let post = |path: &str, body: &str| {
        let (status, resp) = http(
            server.port,
            "POST",
            path,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        );
        assert_eq!(status, 202, "{resp}");
    };
    post("/orders", r#"{"order_number": "1042"}"#);
    post("/orders", r#"{"order_number": "1043"}"#);
    post("/stock", r#"{"sku": "A", "qty": -2}"#);
    post("/stock", r#"{"sku": "B", "qty": 5}"#);
    let store = data.join("railyard.db");
    wait_until("three dead letters", 30, || {
        railyard_store::Store::open_unlocked(&store)
            .and_then(|s| {
                s.find_dead_letters(&railyard_store::DeadLetterQuery {
                    limit: 10,
                    ..Default::default()
                })
            })
            .is_ok_and(|d| d.len() == 3)
    });
    // The commands work beside the running server.
    let all = dlq(&data, &["list", "--format", "json"]);
    assert_eq!(all.code, 0, "{}", all.stderr);
    assert_eq!(ids(&all).len(), 3, "{}", all.stdout);

    // The same search on the admin API of the running server.
    let get = |path: &str| {
        let (status, resp) = http(server.port, "GET", path, &[], b"");
        let body = resp
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_string();
        (
            status,
            serde_json::from_str::<serde_json::Value>(&body).unwrap_or_default(),
        )
    };
    let (status, found) = get("/admin/dead-letters?pipeline=orders&code=output-error");
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["count"], 2, "{found}");
    let first = found["dead_letters"][0]["id"].as_u64().unwrap();
    let (status, one) = get(&format!("/admin/dead-letters/{first}"));
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["pipeline"], "orders");
    assert!(
        one["error"]["message"].as_str().unwrap().contains("422"),
        "{one}"
    );
    assert_eq!(get("/admin/dead-letters/999999").0, 404);
    assert_eq!(get("/admin/dead-letters/x").0, 400);
    let (status, bad) = get("/admin/dead-letters?where=a%20%3D%3D%3D");
    assert_eq!(status, 400, "{bad}");
    assert!(
        bad["error"].as_str().unwrap().contains("invalid JMESPath"),
        "{bad}"
    );
    assert_eq!(get("/admin/dead-letters?colour=red").0, 400);
    // A state-changing admin request must say it is JSON (no cross-site form can).
    let (status, resp) = http(
        server.port,
        "POST",
        "/admin/dead-letters/replay",
        &[("Content-Type", "text/plain")],
        format!("{{\"ids\": [{first}]}}").as_bytes(),
    );
    assert_eq!(status, 415, "{resp}");
    let (status, resp) = http(
        server.port,
        "POST",
        "/admin/dead-letters/replay",
        &[("Content-Type", "application/json")],
        b"{\"ids\": [1], \"colour\": \"red\"}",
    );
    assert_eq!(status, 400, "unknown fields are refused: {resp}");
    // Admin endpoints: not for others (see admin_surface.rs for every way in).
    let (status, _) = http(
        server.port,
        "GET",
        "/admin/dead-letters",
        &[("X-Forwarded-For", "203.0.113.9")],
        b"",
    );
    assert_eq!(status, 401);

    // Held dead letters on /metrics (per pipeline and code) and on the detailed /health.
    let (_, metrics) = http(server.port, "GET", "/metrics", &[], b"");
    assert_eq!(
        common::metric(
            &metrics,
            "railyard_dead_letters{pipeline=\"orders\",code=\"output-error\"}"
        ),
        Some(2.0),
        "{metrics}"
    );
    let (_, health) = get("/health");
    assert_eq!(
        health["dead_letters"],
        serde_json::json!({"orders": 2, "stock": 1}),
        "{health}"
    );
    stop_gracefully(server);

    let human = dlq(&data, &["list"]);
    assert_eq!(human.code, 0);
    assert_eq!(human.stdout.lines().count(), 3, "{}", human.stdout);
    assert!(
        human.stdout.contains("orders") && human.stdout.contains("422"),
        "{}",
        human.stdout
    );

    let orders = dlq(&data, &["list", "--pipeline", "orders", "--format", "json"]);
    assert_eq!(ids(&orders).len(), 2, "{}", orders.stdout);
    let code = dlq(
        &data,
        &["list", "--code", "output-error", "--format", "json"],
    );
    assert_eq!(ids(&code), ids(&orders), "{}", code.stdout);
    let one = dlq(
        &data,
        &[
            "list",
            "--where",
            "original.body.order_number == '1043'",
            "--format",
            "json",
        ],
    );
    let one_ids = ids(&one);
    assert_eq!(one_ids.len(), 1, "{}", one.stdout);
    let recent = dlq(&data, &["list", "--since", "1h", "--format", "json"]);
    assert_eq!(ids(&recent).len(), 3);
    let old = dlq(&data, &["list", "--until", "1h", "--format", "json"]);
    assert_eq!(ids(&old).len(), 0);

    let id = one_ids[0].to_string();
    let shown = dlq(&data, &["show", &id]);
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    for part in [
        "pipeline  orders",
        "customer number is required",
        "\"order_number\": \"1043\"",
    ] {
        assert!(shown.stdout.contains(part), "{part}: {}", shown.stdout);
    }

    let plan = dlq(&data, &["drop", "--pipeline", "orders", "--dry-run"]);
    assert!(plan.stdout.starts_with("would drop 2"), "{}", plan.stdout);
    assert_eq!(ids(&dlq(&data, &["list", "--format", "json"])).len(), 3);
    let dropped = dlq(&data, &["drop", &id]);
    assert!(dropped.stdout.contains("dropped 1"), "{}", dropped.stdout);
    let left = ids(&dlq(&data, &["list", "--format", "json"]));
    assert_eq!(left.len(), 2);
    assert!(!left.contains(&one_ids[0]));
}

#[test]
fn dlq_mistakes_get_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let none = dlq(&data, &["list"]);
    assert_eq!(none.code, 2);
    assert!(none.stderr.contains("no store at"), "{}", none.stderr);
    assert!(!data.exists(), "looking does not create a store");

    railyard_store::Store::open_unlocked(&data.join("railyard.db")).unwrap();
    for (args, says) in [
        (&["show", "7"][..], "no dead letter 7"),
        (
            &["list", "--where", "a ==="][..],
            "--where `a ===`: invalid JMESPath",
        ),
        (&["list", "--since", "yesterday"][..], "--since `yesterday`"),
        (&["drop"][..], "say which dead letters"),
        (&["drop", "3", "--all"][..], "not both"),
    ] {
        let out = dlq(&data, args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
    }
}

/// An ERP whose answer the test sets: 422 with its reason for every order (`mode` 0, the
/// default), 200 except for order 1043 (1), 503 for every order (2). It records each order it
/// accepted, with the message id Railyard sent.
fn scripted_erp(
    mode: std::sync::Arc<std::sync::atomic::AtomicU8>,
    accepted: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let Some((head, body)) = common::read_request(&mut s) else {
                continue;
            };
            let order: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let number = order["order_number"].as_str().unwrap_or("").to_string();
            let id = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("x-railyard-message-id")
                        .then(|| v.trim().to_string())
                })
                .unwrap_or_default();
            let status = match mode.load(std::sync::atomic::Ordering::SeqCst) {
                0 => "422 Unprocessable Entity",
                1 if number == "1043" => "422 Unprocessable Entity",
                1 => "200 OK",
                _ => "503 Service Unavailable",
            };
            if status.starts_with("200") {
                accepted.lock().unwrap().push((number, id));
            }
            let body = if status.starts_with("422") {
                r#"{"error": "customer number is required"}"#
            } else {
                "{}"
            };
            let _ = s.write_all(
                format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    port
}

#[test]
fn a_replay_delivers_what_was_fixed_and_keeps_the_rest() {
    use std::sync::atomic::Ordering::SeqCst;
    let mode = std::sync::Arc::new(std::sync::atomic::AtomicU8::new(0));
    let accepted = std::sync::Arc::default();
    let erp = scripted_erp(mode.clone(), std::sync::Arc::clone(&accepted));
    // Deduplicated by event id: a replay is not stopped by its own key.
    let (_tmp, dir, data) = project(&[(
        "orders",
        format!(
            "pipeline: orders\ninput:\n  http: {{ path: /orders }}\n  dedupe_key: headers.\"x-event-id\"\nsteps:\n  - dedupe: {{ key: meta.dedupe_key, ttl: 72h }}\noutput:\n  http: {{ url: \"http://127.0.0.1:{erp}/erp/orders\" }}\n"
        ),
    )]);
    let server = launch(&dir, &["--data", data.to_str().unwrap(), "--no-watch"], &[]);
    let url = format!("http://127.0.0.1:{}", server.port);
    let mut sent = std::collections::BTreeMap::new();
    for n in ["1042", "1043", "1044"] {
        let (status, resp) = http(
            server.port,
            "POST",
            "/orders",
            &[("Content-Type", "application/json"), ("X-Event-Id", n)],
            format!("{{\"order_number\": \"{n}\"}}").as_bytes(),
        );
        assert_eq!(status, 202, "{resp}");
        let id = resp
            .split("\"id\":\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        sent.insert(n.to_string(), id.to_string());
    }
    let replay = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_railyard"))
            .args(["dlq", "replay", "--url", &url])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let letters = || ids(&dlq(&data, &["list", "--format", "json"]));
    wait_until("three dead letters", 30, || letters().len() == 3);

    let (code, out, err) = replay(&["--pipeline", "orders", "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("would replay 3"), "{out}");
    assert!(out.contains("[output-error] 3"), "{out}");
    assert_eq!(letters().len(), 3, "a dry run replays nothing");

    // The ERP is fixed, except for order 1043.
    mode.store(1, SeqCst);
    let (code, out, err) = replay(&["--pipeline", "orders"]);
    assert_eq!(code, 1, "one is dead-lettered again: {out}{err}");
    assert!(
        out.contains("replayed 3: 2 delivered, 1 dead-lettered again, 0 left"),
        "{out}"
    );
    let got = accepted.lock().unwrap().clone();
    assert_eq!(
        got,
        vec![
            ("1042".to_string(), sent["1042"].clone()),
            ("1044".to_string(), sent["1044"].clone()),
        ],
        "each fixed order once, with its message id"
    );
    let left = dlq(&data, &["list", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&left.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v[0]["original"]["body"]["order_number"], "1043");
    assert_eq!(v[0]["original"]["meta"]["replay"], 1, "{v}");
    assert_eq!(v[0]["original"]["meta"]["id"], sent["1043"].as_str());
    let (_, metrics) = http(server.port, "GET", "/metrics", &[], b"");
    assert_eq!(
        common::metric(
            &metrics,
            "railyard_dead_letters{pipeline=\"orders\",code=\"output-error\"}"
        ),
        Some(1.0),
        "the gauge follows the replay: {metrics}"
    );
    for (outcome, n) in [("delivered", 2.0), ("dead_lettered_again", 1.0)] {
        assert_eq!(
            common::metric(
                &metrics,
                &format!("railyard_replays_total{{pipeline=\"orders\",outcome=\"{outcome}\"}}")
            ),
            Some(n),
            "{metrics}"
        );
    }

    // The ERP is down: the dead letter stays as it was.
    mode.store(2, SeqCst);
    let before = letters();
    let (code, out, _) = replay(&[&before[0].to_string()]);
    assert_eq!(code, 1);
    assert!(out.contains("1 left"), "{out}");
    assert_eq!(letters(), before);

    // Mistakes are named.
    let (code, _, err) = replay(&[]);
    assert_eq!(code, 2);
    assert!(err.contains("say which dead letters"), "{err}");
    let (code, _, err) = replay(&["--where", "a ==="]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid JMESPath"), "{err}");
    stop_gracefully(server);
    let (code, _, err) = replay(&["1"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot reach"), "{err}");
}
