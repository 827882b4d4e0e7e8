//! `${env:…}` values in secret positions never reach a log line, a dead letter or a rendered
//! diagnostic, whatever quotes them (here: an ERP that echoes the credential it refused).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{http, stop_gracefully};
use std::io::Write;
use std::net::TcpListener;
use std::process::Command;

const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.erp-session-7731";
const PASSWORD: &str = "bc-pw-48151623";

/// An ERP that refuses every request with 401 and quotes the credentials it was sent
/// (`Authorization`, `X-Erp-Token`), as some do in their error body.
fn echoing_erp() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let Some((head, _)) = common::read_request(&mut s) else {
                continue;
            };
            let auth = head
                .lines()
                .filter_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    (k.eq_ignore_ascii_case("authorization")
                        || k.eq_ignore_ascii_case("x-erp-token"))
                    .then(|| v.trim())
                })
                .collect::<Vec<_>>()
                .join(" and ");
            let body = format!("{{\"error\": \"invalid credentials: {auth}\"}}");
            let _ = s.write_all(
                format!(
                    "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    port
}

#[test]
fn env_secrets_are_redacted_from_logs_and_dead_letters() {
    let erp = echoing_erp();
    let tmp = tempfile::tempdir().unwrap();
    let (dir, data) = (tmp.path().join("project"), tmp.path().join("data"));
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    std::fs::write(
        dir.join("pipelines/orders.yaml"),
        "pipeline: orders\ninput:\n  http: { path: /orders }\noutput:\n  http:\n    url: \"${env:ERP_URL}/orders\"\n    headers:\n      X-Erp-Token: \"${env:ERP_TOKEN}\"\n",
    )
    .unwrap();
    let log = tmp.path().join("run.log");
    let server = common::launch_logged(
        &dir,
        &["--data", data.to_str().unwrap(), "--no-watch"],
        &[
            ("ERP_TOKEN", TOKEN.to_string()),
            ("ERP_URL", format!("http://bc:{PASSWORD}@127.0.0.1:{erp}")),
            ("RUST_LOG", "debug".to_string()),
        ],
        &log,
    );
    let (status, body) = http(
        server.port,
        "POST",
        "/orders",
        &[("Content-Type", "application/json")],
        b"{\"id\": 1}",
    );
    assert_eq!(status, 202, "{body}");
    common::wait_until("the refusal is dead-lettered", 30, || {
        dead_letters(&data).len() == 1
    });
    stop_gracefully(server);

    let letter = &dead_letters(&data)[0];
    let error = letter.error.to_string();
    assert!(
        error.contains("401") && error.contains("invalid credentials"),
        "the ERP's answer is kept: {error}"
    );
    // Both credentials were quoted back: the token, and the URL's password as HTTP Basic.
    assert_eq!(error.matches("[redacted]").count(), 2, "{error}");
    assert!(
        !error.contains(TOKEN) && !error.contains("erp-session"),
        "{error}"
    );
    assert!(!error.contains("YmM6YmMtcHct"), "{error}");

    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains("invalid credentials"),
        "the log has the error: {log}"
    );
    for secret in [TOKEN, PASSWORD] {
        assert!(!log.contains(secret), "the log shows `{secret}`: {log}");
    }
}

fn dead_letters(data: &std::path::Path) -> Vec<railyard_store::DeadLetter> {
    railyard_store::Store::open_unlocked(&data.join("railyard.db"))
        .ok()
        .and_then(|s| s.dead_letters(Some("orders"), 10).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|(_, d)| d)
        .collect()
}

#[test]
fn validate_does_not_show_env_secrets_in_its_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    // The secret lands where a number is expected: the message quotes the value.
    std::fs::write(
        dir.join("pipelines/orders.yaml"),
        "pipeline: orders\ninput:\n  http:\n    path: /orders\n    max_body: \"${env:WEBHOOK_SECRET}\"\n    verify:\n      hmac_sha256: { header: X-Sig, secret: \"${env:WEBHOOK_SECRET}\" }\noutput:\n  stdout: {}\n",
    )
    .unwrap();
    let secret = "whsec-0d9f8e7a6b5c";
    let out = Command::new(env!("CARGO_BIN_EXE_railyard"))
        .args(["validate", dir.to_str().unwrap()])
        .env("WEBHOOK_SECRET", secret)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("max_body") || shown.contains("invalid"),
        "{shown}"
    );
    assert!(!shown.contains(secret), "{shown}");
}
