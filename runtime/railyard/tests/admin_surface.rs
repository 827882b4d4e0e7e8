//! The admin surface is not public by default: `/metrics` and the detailed `/health` need the
//! admin token, the admin listener, or (with neither configured) a request from this machine;
//! `/ready` and a minimal `/health` stay open; nothing over HTTP shows source lines.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{free_port, http, launch, launch_on, try_http_at, wait_until};
use std::net::IpAddr;
use std::path::Path;

fn project() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("pipelines")).unwrap();
    std::fs::write(
        tmp.path().join("pipelines/intake.yaml"),
        "pipeline: intake\ninput:\n  http: { path: /in }\noutput:\n  file: { path: out.jsonl }\n",
    )
    .unwrap();
    tmp
}

fn data(dir: &Path) -> String {
    dir.join("data").to_str().unwrap().to_string()
}

fn body(resp: &str) -> serde_json::Value {
    let text = resp.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
}

fn has_header(resp: &str, name: &str) -> bool {
    let head = resp.split("\r\n\r\n").next().unwrap_or_default();
    head.lines().any(|l| {
        l.split_once(':')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case(name))
    })
}

/// A detailed `/health` names the pipelines; a minimal one says only its status.
fn detailed(health: &serde_json::Value) -> bool {
    health["pipelines"]["intake"].is_object() && health["reload"].is_object()
}

fn minimal(health: &serde_json::Value) -> bool {
    health == &serde_json::json!({ "status": "ok" })
}

fn post(port: u16) -> u16 {
    http(
        port,
        "POST",
        "/in",
        &[("Content-Type", "application/json")],
        b"{\"n\": 1}",
    )
    .0
}

#[test]
fn with_a_token_the_admin_endpoints_need_it_and_the_rest_does_not() {
    let tmp = project();
    let dir = tmp.path();
    let token = "adm-7f3c1e-not-guessable";
    let server = launch(
        dir,
        &["--data", &data(dir)],
        &[("RAILYARD_ADMIN_TOKEN", token.to_string())],
    );
    let port = server.port;
    let bearer = format!("Bearer {token}");

    // Even from this machine: a token configured is a token required.
    let (status, resp) = http(port, "GET", "/metrics", &[], b"");
    assert_eq!(status, 401, "{resp}");
    assert!(has_header(&resp, "www-authenticate"), "{resp}");
    assert!(!resp.contains("railyard_"), "{resp}");
    for wrong in [
        "Bearer adm-7f3c1e-not-guessabl",
        "Bearer adm-7f3c1e-not-guessable-x",
        "Basic YWRtOnNlY3JldA==",
        token,
    ] {
        let (status, resp) = http(port, "GET", "/metrics", &[("Authorization", wrong)], b"");
        assert_eq!(status, 401, "{wrong}: {resp}");
    }
    let (status, resp) = http(port, "GET", "/metrics", &[("Authorization", &bearer)], b"");
    assert_eq!(status, 200, "{resp}");
    assert!(resp.contains("railyard_config_valid"), "{resp}");

    let (status, resp) = http(port, "GET", "/health", &[], b"");
    assert_eq!(status, 200, "{resp}");
    assert!(minimal(&body(&resp)), "{resp}");
    let (_, resp) = http(port, "GET", "/health", &[("authorization", &bearer)], b"");
    assert!(detailed(&body(&resp)), "{resp}");

    // Probes and webhooks need no admin token.
    assert_eq!(http(port, "GET", "/ready", &[], b"").0, 200);
    assert_eq!(post(port), 202);
}

/// This machine's address on a network interface (not loopback), if it has one: a request
/// to it comes from that address, as a request from another host would.
fn own_address() -> Option<IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    // No packet is sent: connecting a UDP socket only picks the route and the source address.
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[test]
fn without_a_token_only_this_machine_sees_the_admin_endpoints() {
    let Some(ip) = own_address() else {
        eprintln!("skipped: this machine has no address besides loopback to connect from");
        return;
    };
    let tmp = project();
    let dir = tmp.path();
    let server = launch_on("0.0.0.0", dir, &["--data", &data(dir)], &[]);
    let port = server.port;
    let at = |path: &str, headers: &[(&str, &str)]| {
        try_http_at(ip, port, "GET", path, headers, b"").unwrap()
    };

    // From the network: probes and webhooks, nothing more.
    let (status, resp) = at("/metrics", &[]);
    assert_eq!(status, 401, "{resp}");
    assert!(resp.contains("RAILYARD_ADMIN_TOKEN"), "says how: {resp}");
    assert!(!resp.contains("railyard_"), "{resp}");
    let (status, resp) = at("/health", &[]);
    assert_eq!(status, 200, "{resp}");
    assert!(minimal(&body(&resp)), "{resp}");
    assert_eq!(at("/ready", &[]).0, 200);
    let (status, resp) = try_http_at(
        ip,
        port,
        "POST",
        "/in",
        &[("Content-Type", "application/json")],
        b"{\"n\": 2}",
    )
    .unwrap();
    assert_eq!(status, 202, "{resp}");

    // From this machine: everything.
    let (status, resp) = http(port, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200, "{resp}");
    assert!(resp.contains("railyard_config_valid"), "{resp}");
    assert!(detailed(&body(&http(port, "GET", "/health", &[], b"").1)));

    // From this machine through a proxy: the proxy's client is elsewhere.
    for forwarded in ["x-forwarded-for", "forwarded", "x-real-ip"] {
        let (status, resp) = http(port, "GET", "/metrics", &[(forwarded, "203.0.113.9")], b"");
        assert_eq!(status, 401, "{forwarded}: {resp}");
        let (_, resp) = http(port, "GET", "/health", &[(forwarded, "203.0.113.9")], b"");
        assert!(minimal(&body(&resp)), "{forwarded}: {resp}");
    }
}

#[test]
fn an_admin_listener_takes_the_admin_endpoints_off_the_webhook_listener() {
    let tmp = project();
    let dir = tmp.path();
    let admin = free_port();
    let server = launch(
        dir,
        &[
            "--data",
            &data(dir),
            "--admin-listen",
            &format!("127.0.0.1:{admin}"),
        ],
        &[],
    );
    let port = server.port;

    let (status, resp) = http(port, "GET", "/metrics", &[], b"");
    assert_eq!(status, 401, "{resp}");
    assert!(resp.contains("--admin-listen"), "says where: {resp}");
    assert!(minimal(&body(&http(port, "GET", "/health", &[], b"").1)));
    assert_eq!(post(port), 202);

    let (status, resp) = http(admin, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200, "{resp}");
    assert!(resp.contains("railyard_config_valid"), "{resp}");
    assert!(detailed(&body(&http(admin, "GET", "/health", &[], b"").1)));
    // Only the admin endpoints: no webhook is taken there.
    let (status, _) = http(
        admin,
        "POST",
        "/in",
        &[("Content-Type", "application/json")],
        b"{\"n\": 3}",
    );
    assert_eq!(status, 404);
}

#[test]
fn a_rejected_reload_is_reported_without_source_lines() {
    let tmp = project();
    let dir = tmp.path();
    let server = launch(dir, &["--data", &data(dir)], &[]);
    let port = server.port;
    let secret = "hunter2-fallback-secret";
    std::fs::write(
        dir.join("pipelines/intake.yaml"),
        format!(
            "pipeline: intake\ninput:\n  http: {{ path: /in }}\noutput:\n  file: {{ path: out.jsonl }}\ninptu: {{ token: \"{secret}\" }}\n# password: {secret}\n"
        ),
    )
    .unwrap();
    let health = || body(&http(port, "GET", "/health", &[], b"").1);
    wait_until("the bad edit is refused", 30, || {
        health()["reload"]["failed"].as_u64() == Some(1)
    });
    let h = health();
    let shown = h["reload"]["diagnostics"].to_string();
    assert!(!shown.contains(secret), "{shown}");
    let first = &h["reload"]["diagnostics"][0];
    assert_eq!(first["file"], "pipelines/intake.yaml", "{shown}");
    assert_eq!(first["line"], 6, "{shown}");
    assert!(
        first["message"]
            .as_str()
            .is_some_and(|m| m.contains("inptu")),
        "{shown}"
    );
    assert_eq!(post(port), 202, "the running version keeps serving");
}
