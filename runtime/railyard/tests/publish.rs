//! `railyard publish`: one message onto a topic or into a pipeline of a running server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{launch, stop_gracefully, wait_until};
use std::io::{Read, Write};
use std::process::{Command, Stdio};

fn publish(url: &str, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_railyard"))
        .args(["publish", "--url", url])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_message_goes_onto_a_topic_or_into_a_pipeline() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, data) = (tmp.path().join("project"), tmp.path().join("data"));
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    std::fs::write(
        dir.join("pipelines/audit.yaml"),
        "pipeline: audit\ninput:\n  topic: { name: orders.accepted, group: audit }\noutput:\n  stdout: { with_meta: true }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("pipelines/intake.yaml"),
        "pipeline: intake\ninput:\n  http: { path: /in }\noutput:\n  file: { path: out/intake.jsonl }\n",
    )
    .unwrap();
    // An ERP that cannot be reached: what is published for it waits on its topic.
    std::fs::write(
        dir.join("pipelines/erp.yaml"),
        "pipeline: erp\ninput:\n  topic: { name: orders.erp, group: erp }\noutput:\n  http: { url: \"http://127.0.0.1:1/orders\" }\n",
    )
    .unwrap();
    let order = tmp.path().join("order.json");
    std::fs::write(&order, r#"{"order_id": "shopify:1042", "total": "19.99"}"#).unwrap();
    let mut server = launch(&dir, &["--data", data.to_str().unwrap(), "--no-watch"], &[]);
    let url = format!("http://127.0.0.1:{}", server.port);
    let mut stdout = server.child.stdout.take().unwrap();

    let (code, out, err) = publish(
        &url,
        &[
            "orders.accepted",
            order.to_str().unwrap(),
            "--correlation-id",
            "c-77",
            "--header",
            "X-Shop: s1",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("published ")
            && out.contains("to topic `orders.accepted` (consumed by audit)"),
        "{out}"
    );

    let (code, out, err) = publish(&url, &["pipeline:intake"], Some(r#"{"n": 1}"#));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("pipeline `intake` took "), "{out}");
    let written = dir.join("out/intake.jsonl");
    wait_until("the pipeline wrote it", 30, || {
        std::fs::read_to_string(&written).is_ok_and(|t| t == "{\"n\":1}\n")
    });

    // The backlog of each subscription on /metrics: the waiting order, none for audit.
    let (code, _, err) = publish(&url, &["orders.erp", order.to_str().unwrap()], None);
    assert_eq!(code, 0, "{err}");
    let gauge = |name: &str, topic: &str, group: &str| {
        let (_, metrics) = common::http(server.port, "GET", "/metrics", &[], b"");
        common::metric(
            &metrics,
            &format!("{name}{{topic=\"{topic}\",group=\"{group}\"}}"),
        )
    };
    wait_until("the backlog shows the waiting order", 30, || {
        gauge("railyard_topic_backlog", "orders.erp", "erp") == Some(1.0)
    });
    assert!(
        gauge("railyard_topic_oldest_age_seconds", "orders.erp", "erp").is_some_and(|a| a >= 0.0)
    );
    wait_until("audit has consumed everything", 30, || {
        gauge("railyard_topic_backlog", "orders.accepted", "audit") == Some(0.0)
    });
    assert_eq!(
        gauge(
            "railyard_topic_oldest_age_seconds",
            "orders.accepted",
            "audit"
        ),
        Some(0.0)
    );

    // Mistakes are named; nothing is published.
    for (args, stdin, says) in [
        (
            &["nobody.listens"][..],
            Some("{}"),
            "no pipeline consumes topic `nobody.listens`",
        ),
        (
            &["pipeline:nope"][..],
            Some("{}"),
            "no pipeline `nope` is loaded",
        ),
        (
            &["orders.accepted"][..],
            Some(r#"{"a": 1, "a": 2}"#),
            "has the key `a` twice",
        ),
        (
            &["orders.accepted", "--header", "no colon"][..],
            Some("{}"),
            "--header `no colon`",
        ),
    ] {
        let (code, _, err) = publish(&url, args, stdin);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    stop_gracefully(server);

    let mut printed = String::new();
    stdout.read_to_string(&mut printed).unwrap();
    let line = printed
        .lines()
        .find(|l| l.contains("shopify:1042"))
        .unwrap_or_else(|| panic!("the audit pipeline printed nothing: {printed}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["body"]["total"], "19.99", "{v}");
    assert_eq!(v["meta"]["correlation_id"], "c-77", "{v}");
    assert_eq!(v["meta"]["headers"]["x-shop"], "s1", "{v}");
    // Stamped as every input stamps it (the reference audit names its file by this date).
    assert!(
        v["meta"]["received_at"]
            .as_str()
            .is_some_and(|t| t.starts_with("20") && t.contains('T')),
        "{v}"
    );
    assert_eq!(
        printed
            .lines()
            .filter(|l| l.contains("shopify:1042"))
            .count(),
        1,
        "published once: {printed}"
    );

    let (code, _, err) = publish(&url, &["orders.accepted"], Some("{}"));
    assert_eq!(code, 2);
    assert!(err.contains("cannot reach"), "{err}");
}
