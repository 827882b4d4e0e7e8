//! What a webhook sender can take from `railyard run`: connections, time and memory
//! (SECURITY.md, "Webhook senders ↔ server resources"). Every test runs the real binary and
//! talks to it over real sockets, often sending requests on purpose only in part.
//!
//! Waits for a configured timeout have generous bounds (the machine is shared); none is a
//! performance threshold.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, launch, wait_until};

const KEYED: &str = "pipeline: keyed\ninput:\n  http:\n    path: /hooks/keyed\n    max_body: 4MiB\n    api_key: { header: X-Api-Key, keys: [k-one] }\noutput:\n  stdout: {}\n";
const OPEN: &str = "pipeline: open\ninput:\n  http:\n    path: /hooks/open\n    max_body: 4MiB\noutput:\n  stdout: {}\n";

fn project() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("pipelines")).unwrap();
    std::fs::write(tmp.path().join("pipelines/keyed.yaml"), KEYED).unwrap();
    std::fs::write(tmp.path().join("pipelines/open.yaml"), OPEN).unwrap();
    tmp
}

fn start(dir: &Path, flags: &[&str]) -> Server {
    let mut args = vec!["--no-watch"];
    args.extend_from_slice(flags);
    launch(dir, &args, &[])
}

fn connect(server: &Server) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

/// A request head for `path` declaring `len` body bytes.
fn head(method: &str, path: &str, len: usize, extra: &[(&str, &str)]) -> String {
    let mut h = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n"
    );
    for (k, v) in extra {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str("\r\n");
    h
}

/// One response off `s` (head, then a body by Content-Length): status and the whole text.
fn response(s: &mut TcpStream) -> std::io::Result<(u16, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&buf[..end]).to_string();
            let len = common::header(&text, "content-length")
                .and_then(|l| l.parse::<usize>().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk)?;
                if n == 0 {
                    return Err(ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let status = text
                .split(' ')
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            return Ok((status, String::from_utf8_lossy(&buf).to_string()));
        }
    }
}

/// A whole request on a new connection.
fn post(server: &Server, path: &str, extra: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut s = connect(server);
    s.write_all(head("POST", path, body.len(), extra).as_bytes())
        .unwrap();
    s.write_all(body.as_bytes()).unwrap();
    response(&mut s).unwrap()
}

/// Whether the server closed `s` (end of stream or reset) within `within`; false if it was
/// still open then. Bytes it sends first (a 408) are skipped.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut chunk = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut chunk) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn an_unknown_api_key_is_refused_before_the_body_is_read() {
    let tmp = project();
    let server = start(tmp.path(), &[]);
    for key in [Some("k-wrong"), None] {
        // Four megabytes declared, not one byte sent: the answer comes from the headers.
        let mut s = connect(&server);
        let extra: Vec<(&str, &str)> = key.map(|k| ("X-Api-Key", k)).into_iter().collect();
        s.write_all(head("POST", "/hooks/keyed", 4_000_000, &extra).as_bytes())
            .unwrap();
        let (status, text) = response(&mut s).expect("an answer without sending the body");
        assert_eq!(status, 401, "{text}");
        assert!(text.contains("API key"), "{text}");
        assert!(
            text.to_ascii_lowercase().contains("connection: close"),
            "{text}"
        );
    }
    // The right key still gets its body read and handed off.
    let (status, text) = post(&server, "/hooks/keyed", &[("X-Api-Key", "k-one")], "{}");
    assert_eq!(status, 202, "{text}");
}

#[test]
fn unauthenticated_reads_over_the_cap_are_503_with_retry_after_and_recover() {
    let tmp = project();
    let server = start(tmp.path(), &["--max-unauthenticated-reads", "1"]);
    // A holds the only permit: its body is half sent.
    let body = r#"{"sender":"a"}"#;
    let mut a = connect(&server);
    a.write_all(head("POST", "/hooks/open", body.len(), &[]).as_bytes())
        .unwrap();
    a.write_all(&body.as_bytes()[..5]).unwrap();
    let mut busy = String::new();
    wait_until("a second open-route request is answered 503", 20, || {
        let (status, text) = post(&server, "/hooks/open", &[], "{}");
        busy = text;
        status == 503
    });
    let retry = common::header(&busy, "retry-after").expect("Retry-After");
    assert!(retry.parse::<u64>().is_ok_and(|s| s >= 1), "{busy}");
    // An authenticated sender does not need a permit.
    let (status, text) = post(&server, "/hooks/keyed", &[("X-Api-Key", "k-one")], "{}");
    assert_eq!(status, 202, "{text}");
    // A finishes: its request is served, and the permit is free again.
    a.write_all(&body.as_bytes()[5..]).unwrap();
    let (status, text) = response(&mut a).unwrap();
    assert_eq!(status, 202, "{text}");
    let (status, text) = post(&server, "/hooks/open", &[], "{}");
    assert_eq!(status, 202, "{text}");
}

#[test]
fn a_slow_body_gets_408_and_its_permit_back() {
    let tmp = project();
    let server = start(
        tmp.path(),
        &["--max-unauthenticated-reads", "1", "--body-timeout", "1s"],
    );
    for (path, extra) in [
        ("/hooks/open", vec![]),
        ("/hooks/keyed", vec![("X-Api-Key", "k-one")]),
    ] {
        let mut s = connect(&server);
        s.write_all(head("POST", path, 100, &extra).as_bytes())
            .unwrap();
        s.write_all(b"{\"slow\":").unwrap();
        let (status, text) = response(&mut s).expect("a 408 before the client's 30 s");
        assert_eq!(status, 408, "{path}: {text}");
        assert!(text.contains("not received within 1s"), "{text}");
    }
    // The open route's permit came back: the next unauthenticated read is served.
    let (status, text) = post(&server, "/hooks/open", &[], "{}");
    assert_eq!(status, 202, "{text}");
}

#[test]
fn a_half_sent_request_is_closed_after_the_header_timeout() {
    let tmp = project();
    let server = start(tmp.path(), &["--header-timeout", "1s"]);
    let started = Instant::now();
    let mut half = connect(&server);
    half.write_all(b"POST /hooks/open HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")
        .unwrap();
    let mut silent = connect(&server);
    // A keep-alive connection idle after its response is closed too.
    let mut idle = connect(&server);
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    assert_eq!(response(&mut idle).unwrap().0, 200);
    for (what, s) in [
        ("half-sent headers", &mut half),
        ("nothing sent", &mut silent),
        ("idle keep-alive", &mut idle),
    ] {
        assert!(
            closed_within(s, Duration::from_secs(20)),
            "{what}: still open 20 s after a 1 s header timeout"
        );
    }
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "closed before the header timeout ({:?})",
        started.elapsed()
    );
    // The server still serves whoever sends a whole request.
    let (status, text) = post(&server, "/hooks/open", &[], "{}");
    assert_eq!(status, 202, "{text}");
}

#[test]
fn connections_beyond_the_cap_wait_until_one_closes() {
    let tmp = project();
    let server = start(
        tmp.path(),
        &["--max-connections", "2", "--header-timeout", "60s"],
    );
    // Two keep-alive connections, each served once (so both are accepted), then idle.
    let mut held: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = connect(&server);
            s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                .unwrap();
            assert_eq!(response(&mut s).unwrap().0, 200);
            s
        })
        .collect();
    // The third connects (the kernel's backlog completes the handshake) but is not served.
    let mut third = connect(&server);
    third
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut first = [0u8; 1];
    match third.read(&mut first) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("the third connection was served over a cap of 2: {other:?}"),
    }
    // One closes: the third is accepted and served.
    drop(held.remove(0));
    third
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let (status, text) = response(&mut third).expect("served once a connection closed");
    assert_eq!(status, 200, "{text}");
    // The one still held is still served.
    held[0]
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    assert_eq!(response(&mut held[0]).unwrap().0, 200);
}

#[test]
fn a_graceful_stop_answers_the_request_being_read() {
    let tmp = project();
    let server = start(tmp.path(), &[]);
    let body = r#"{"sent":"across the stop"}"#;
    let mut s = connect(&server);
    s.write_all(
        head(
            "POST",
            "/hooks/keyed",
            body.len(),
            &[("X-Api-Key", "k-one")],
        )
        .as_bytes(),
    )
    .unwrap();
    s.write_all(&body.as_bytes()[..4]).unwrap();
    // Wait until the server has the request (it would answer /ready otherwise)...
    std::thread::sleep(Duration::from_millis(300));
    common::terminate(&server);
    // ...no new connection is served once it stops...
    let mut server = server;
    wait_until("the listener is closed", 20, || {
        common::try_http(server.port, "GET", "/health", &[], b"").is_err()
    });
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the process exited with a request in flight"
    );
    // ...and the request in flight is finished and answered before the process exits.
    s.write_all(&body.as_bytes()[4..]).unwrap();
    let (status, text) = response(&mut s).unwrap();
    assert_eq!(status, 202, "{text}");
    wait_until("the process exits", 30, || {
        server.child.try_wait().unwrap().is_some()
    });
}

type Case = (
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
    &'static str,
);

#[test]
fn zero_or_malformed_limits_are_refused_with_a_clear_message() {
    let tmp = project();
    // Flags, environment, what stderr says.
    let cases: [Case; 4] = [
        (&["--max-connections", "0"], &[], "--max-connections"),
        (&["--max-unauthenticated-reads", "0"], &[], "at least 1"),
        (&["--header-timeout", "10"], &[], "a duration like `10s`"),
        (&[], &[("RAILYARD_BODY_TIMEOUT", "0s")], "longer than 0"),
    ];
    for (flags, env, says) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_railyard"))
            .arg("run")
            .arg(tmp.path())
            .args(["--listen", "127.0.0.1:0", "--no-watch"])
            .args(flags)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?} {env:?}: {stderr}");
        assert!(stderr.contains(says), "{flags:?} {env:?}: {stderr}");
    }
}
