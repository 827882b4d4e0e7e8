//! `railyard dlq list|show|drop` on dead letters written by a real `railyard run`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{http, launch, stop_gracefully, wait_until};
use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

/// An ERP that refuses every order with 422 and says why.
fn refusing_erp() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            if common::read_request(&mut s).is_none() {
                continue;
            }
            let body = r#"{"error": "customer number is required"}"#;
            let _ = s.write_all(
                format!(
                    "HTTP/1.1 422 Unprocessable Entity\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    port
}

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

#[test]
fn dead_letters_are_listed_shown_filtered_and_dropped() {
    let erp = refusing_erp();
    let tmp = tempfile::tempdir().unwrap();
    let (dir, data) = (tmp.path().join("project"), tmp.path().join("data"));
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    std::fs::write(
        dir.join("pipelines/orders.yaml"),
        format!(
            "pipeline: orders\ninput:\n  http: {{ path: /orders }}\noutput:\n  http: {{ url: \"http://127.0.0.1:{erp}/erp/orders\" }}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("pipelines/stock.yaml"),
        "pipeline: stock\ninput:\n  http: { path: /stock }\nsteps:\n  - script: { rhai: \"if body.qty < 0 { throw `negative quantity` } body\" }\noutput:\n  stdout: {}\n",
    )
    .unwrap();
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
    // Admin endpoints: not for others (see admin_surface.rs for every way in).
    let (status, _) = http(
        server.port,
        "GET",
        "/admin/dead-letters",
        &[("X-Forwarded-For", "203.0.113.9")],
        b"",
    );
    assert_eq!(status, 401);
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
