//! The reproductions of the hardening issue, run against the real binary:
//!
//! - **Exact JSON.** `eval`, `map` and `test` payloads and fixtures, and AMQP deliveries, go
//!   through the same intake as webhooks: a duplicate key or an integer beyond 64 bits is
//!   refused (a delivery is dead-lettered with the reason), a BOM is dropped.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

struct Out {
    code: i32,
    /// stdout and stderr.
    text: String,
}

fn railyard(dir: &Path, args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_railyard"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("run railyard");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("panicked"), "{text}");
    Out {
        code: out.status.code().unwrap_or(-1),
        text,
    }
}

/// A temporary project holding `files`.
struct Setup {
    _tmp: tempfile::TempDir,
    project: PathBuf,
}

fn setup(files: &[(&str, &str)]) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("project");
    for (path, text) in files {
        let p = project.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
    }
    Setup { _tmp: tmp, project }
}

// ---------------------------------------------------------------------------------------------
// Exact JSON at the command line

#[test]
fn command_line_payloads_are_exact_or_refused() {
    let s = setup(&[]);
    let dir = &s.project;
    std::fs::create_dir_all(dir).unwrap();
    for (name, body, says) in [
        (
            "dup.json",
            r#"{"amount":1,"amount":1000}"#,
            "has the key `amount` twice",
        ),
        (
            "big.json",
            "{\"order_id\":\n 18446744073709551617}",
            "has the integer 18446744073709551617",
        ),
    ] {
        std::fs::write(dir.join(name), body).unwrap();
        let out = railyard(dir, &["eval", "--jmespath", "@", name]);
        assert_eq!(out.code, 2, "{}", out.text);
        assert!(
            out.text.contains(&format!("`{name}` {says}")),
            "{}",
            out.text
        );
    }
    std::fs::write(
        dir.join("bom.json"),
        b"\xEF\xBB\xBF{\"id\": 18446744073709551615}",
    )
    .unwrap();
    let out = railyard(dir, &["eval", "--jmespath", "id", "bom.json"]);
    assert_eq!(out.code, 0, "{}", out.text);
    assert_eq!(out.text.trim(), "18446744073709551615");
}

/// Publishes raw bytes to `queue` on the default exchange, each with its message id, and
/// waits for the broker's confirms.
fn publish_raw(url: &str, queue: &str, bodies: &[(&str, &[u8])]) {
    common::with_channel(url, async |ch| {
        ch.confirm_select(lapin::options::ConfirmSelectOptions::default())
            .await
            .unwrap();
        for (id, body) in bodies {
            let props = lapin::BasicProperties::default()
                .with_message_id((*id).into())
                .with_delivery_mode(2);
            let confirm = ch
                .basic_publish(
                    "".into(),
                    queue.into(),
                    lapin::options::BasicPublishOptions::default(),
                    body,
                    props,
                )
                .await
                .unwrap();
            assert!(confirm.await.unwrap().is_ack());
        }
    })
}

/// An AMQP delivery whose JSON cannot be taken as written is dead-lettered at once with the
/// reason (never run with a guessed value, never retried); a body that is not JSON at all is
/// still carried as a string, as before.
#[test]
fn amqp_bodies_are_exact_or_dead_lettered() {
    let Some(broker) = common::broker::private_broker() else {
        return;
    };
    let url = broker.url();
    let queue = "railyard.test.exact-json";
    let s = setup(&[(
        "pipelines/in.yaml",
        &format!(
            "pipeline: in\ninput:\n  amqp: {{ url: \"{url}\", queue: \"{queue}\" }}\noutput:\n  file: {{ path: out.jsonl }}\n"
        ),
    )]);
    let data = s.project.join("data");
    let server = common::launch(
        &s.project,
        &["--data", data.to_str().unwrap(), "--no-watch"],
        &[],
    );
    publish_raw(
        &url,
        queue,
        &[
            ("dup", br#"{"amount":1,"amount":1000}"#),
            ("big", br#"{"order_id":18446744073709551617}"#),
            ("ok", b"\xEF\xBB\xBF{\"amount\":1}"),
            ("text", b"not json"),
        ],
    );
    let out = s.project.join("out.jsonl");
    let dead = || {
        railyard_store::Store::open_unlocked(&data.join("railyard.db"))
            .unwrap()
            .dead_letters(Some("in"), 10)
            .unwrap()
    };
    common::wait_until("two delivered and two dead-lettered", 30, || {
        std::fs::read_to_string(&out).is_ok_and(|t| t.lines().count() == 2) && dead().len() == 2
    });
    common::stop_gracefully(server);
    assert_eq!(
        common::jsonl(&out),
        [serde_json::json!({"amount": 1}), Value::from("not json")]
    );
    let mut letters: Vec<(String, String, Value)> = dead()
        .into_iter()
        .map(|(_, l)| {
            assert_eq!(l.step, "input");
            assert_eq!(l.error["code"], "invalid-payload", "{:?}", l.error);
            (
                l.message["meta"]["id"].as_str().unwrap().to_string(),
                l.error["message"].as_str().unwrap().to_string(),
                l.message["body"].clone(),
            )
        })
        .collect();
    letters.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(letters[0].0, "big");
    assert!(
        letters[0]
            .1
            .contains("has the integer 18446744073709551617"),
        "{letters:?}"
    );
    assert_eq!(letters[0].2, r#"{"order_id":18446744073709551617}"#);
    assert_eq!(letters[1].0, "dup");
    assert!(
        letters[1].1.contains("has the key `amount` twice"),
        "{letters:?}"
    );
    assert_eq!(letters[1].2, r#"{"amount":1,"amount":1000}"#);
}

/// `railyard test` reads fixtures through the same intake: a fixture with a duplicate key
/// fails its test, naming the key, instead of testing a guessed value.
#[test]
fn a_fixture_with_a_duplicate_key_fails_its_test() {
    let s = setup(&[
        (
            "pipelines/audit.yaml",
            "pipeline: audit\ninput: { stdin: {} }\noutput: { stdout: {} }\ntests:\n  - name: dup\n    input: tests/fixtures/dup.json\n    expect:\n      output: { body: { amount: 1000 } }\n",
        ),
        ("tests/fixtures/dup.json", r#"{"amount":1,"amount":1000}"#),
    ]);
    let out = railyard(&s.project, &["test", "."]);
    assert_eq!(out.code, 1, "{}", out.text);
    assert!(
        out.text
            .contains("fixture `tests/fixtures/dup.json` has the key `amount` twice"),
        "{}",
        out.text
    );
}
