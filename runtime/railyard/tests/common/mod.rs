//! Helpers shared by the binary's integration tests.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used, clippy::panic)]

pub mod broker;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The repository root, which is the reference project.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A copy of the reference project's content (no data/, no code) in a temp dir.
pub fn reference_copy() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    for d in [
        "schemas",
        "mappings",
        "pipelines",
        "plugins",
        "tests/fixtures",
    ] {
        if root().join(d).is_dir() {
            copy_dir(&root().join(d), &tmp.path().join(d));
        }
    }
    tmp
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A minimal HTTP/1.1 client: returns (status, headers+body text).
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    try_http(port, method, path, headers, body).expect("HTTP request")
}

/// [`http`], with connection and read errors (30 s timeout) as values.
pub fn try_http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    try_http_at([127, 0, 0, 1].into(), port, method, path, headers, body)
}

/// [`try_http`] to `ip` rather than loopback (a peer that is not this machine's loopback).
pub fn try_http_at(
    ip: std::net::IpAddr,
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect((ip, port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, resp))
}

/// A `railyard run` process, killed on drop.
pub struct Server {
    pub child: Child,
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `railyard run DIR` with extra arguments and environment, and waits until it is ready.
/// Its stdout and stderr are piped (a test may read them after the process stopped).
pub fn launch(dir: &Path, extra: &[&str], env: &[(&str, String)]) -> Server {
    launch_with("127.0.0.1", dir, extra, env, Stdio::piped(), Stdio::piped())
}

/// [`launch`], listening on `host` (`0.0.0.0`: every address of the machine).
pub fn launch_on(host: &str, dir: &Path, extra: &[&str], env: &[(&str, String)]) -> Server {
    launch_with(host, dir, extra, env, Stdio::piped(), Stdio::piped())
}

/// [`launch`], with stdout and stderr appended to `log` (a long test logs more than a pipe
/// holds).
pub fn launch_logged(dir: &Path, extra: &[&str], env: &[(&str, String)], log: &Path) -> Server {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open the log");
    let file2 = file.try_clone().expect("clone the log");
    launch_with("127.0.0.1", dir, extra, env, file.into(), file2.into())
}

fn launch_with(
    host: &str,
    dir: &Path,
    extra: &[&str],
    env: &[(&str, String)],
    stdout: Stdio,
    stderr: Stdio,
) -> Server {
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_railyard"));
    cmd.env_remove("RUST_LOG")
        .args([
            "run",
            dir.to_str().unwrap(),
            "--listen",
            &format!("{host}:{port}"),
        ])
        .args(extra)
        .stdout(stdout)
        .stderr(stderr);
    // File outputs land in the project directory the tests read, unless a test says otherwise
    // (an empty value removes a variable: `("RAILYARD_OUTPUT_ROOT", "")` runs with the default,
    // the data directory).
    cmd.env("RAILYARD_OUTPUT_ROOT", dir);
    for (k, v) in env {
        if v.is_empty() {
            cmd.env_remove(k);
        } else {
            cmd.env(k, v);
        }
    }
    let server = Server {
        child: cmd.spawn().expect("spawn"),
        port,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut server = server;
    while !(TcpStream::connect(("127.0.0.1", port)).is_ok()
        && http(port, "GET", "/ready", &[], b"").0 == 200)
    {
        if let Some(status) = server.child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(e) = server.child.stderr.as_mut() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("railyard run exited ({status}) before it was ready:\n{err}");
        }
        assert!(
            Instant::now() < deadline,
            "railyard run did not become ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

/// Sends SIGTERM (a graceful stop) to `server`, without waiting.
pub fn terminate(server: &Server) {
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
}

/// SIGTERM, then wait for the exit: in-flight deliveries finish and are acked.
pub fn stop_gracefully(mut server: Server) {
    terminate(&server);
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "railyard run did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// RabbitMQ on this machine, or a skip (a failure when `RAILYARD_REQUIRE_SERVICES=1`).
pub fn rabbitmq() -> Option<String> {
    let url = "amqp://guest:guest@127.0.0.1:5672/%2f".to_string();
    if TcpStream::connect(("127.0.0.1", 5672)).is_ok() {
        return Some(url);
    }
    if std::env::var("RAILYARD_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("RabbitMQ is not reachable on 127.0.0.1:5672 and RAILYARD_REQUIRE_SERVICES=1");
    }
    eprintln!("skipped: RabbitMQ is not reachable on 127.0.0.1:5672");
    None
}

/// Runs `f` with a channel to the broker at `url`.
pub fn with_channel<T>(url: &str, f: impl AsyncFnOnce(&lapin::Channel) -> T) -> T {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        let out = f(&ch).await;
        let _ = conn.close(200, "done".into()).await;
        out
    })
}

/// Ready messages in `queue` (declared durable if missing).
pub fn queue_depth(url: &str, queue: &str) -> u32 {
    with_channel(url, async |ch| {
        ch.queue_declare(
            queue.into(),
            lapin::options::QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await
        .unwrap()
        .message_count()
    })
}

pub fn delete_queue(url: &str, queue: &str) {
    with_channel(url, async |ch| {
        ch.queue_delete(queue.into(), lapin::options::QueueDeleteOptions::default())
            .await
            .unwrap();
    })
}

/// Reads one HTTP/1.1 request: head, and body by Content-Length.
pub fn read_request(s: &mut TcpStream) -> Option<(String, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = s.read(&mut chunk).ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .and_then(|v| v.trim().parse::<usize>().ok())
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk).ok().filter(|n| *n > 0)?;
                buf.extend_from_slice(&chunk[..n]);
            }
            return Some((head, String::from_utf8_lossy(&buf[end + 4..]).to_string()));
        }
    }
}

/// The value of header `name` (lowercase) in a request head from [`read_request`].
pub fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// The value of the first line of a Prometheus text page starting with `line_prefix` (a
/// metric name with its labels).
pub fn metric(metrics: &str, line_prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Polls `done` every 100 ms; fails the test after `secs` seconds, naming `what`.
/// The JSON values of a JSON-lines file, one a line.
pub fn jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn wait_until(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
