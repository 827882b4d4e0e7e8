//! A private RabbitMQ node for broker-fault tests (restart, crash, outage), so the shared
//! broker on 127.0.0.1:5672 is never touched.
//!
//! The node runs in the foreground as a child of the test (in its own process group), with
//! everything in a temp dir: node name, AMQP and distribution ports, mnesia, logs, config,
//! enabled plugins (none: no management plugin, it boots in a few seconds), and a `HOME` with
//! its own Erlang cookie, which `rabbitmqctl -n <node>` uses too.
//!
//! Why not `/usr/sbin/rabbitmq-server -detached`: on Debian that is
//! `rabbitmq-script-wrapper`, which, run as root, re-runs the real script as the `rabbitmq`
//! user through `su`. `su` resets `HOME` (so the node gets `/var/lib/rabbitmq`'s cookie, not
//! ours), the `rabbitmq` user cannot write in a root-owned 0700 temp dir (the node fails with
//! `failed_to_create_feature_flags_file_directory`), and `-detached` throws the output away, so
//! there is no node and no log. The real scripts live in `/usr/lib/rabbitmq/bin` and run as
//! whoever calls them.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A node boots in 5–20 s; a loaded CI machine may need more.
const BOOT_TIMEOUT: Duration = Duration::from_secs(90);
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

static NEXT: AtomicU32 = AtomicU32::new(0);

pub struct PrivateBroker {
    node: String,
    port: u16,
    dist_port: u16,
    server: PathBuf,
    ctl: PathBuf,
    child: Option<Child>,
    rt: tokio::runtime::Runtime,
    /// Last field: removed after `Drop` killed the node.
    dir: tempfile::TempDir,
}

/// A private node, or `None` with a printed reason; a panic instead when
/// `RAILYARD_REQUIRE_SERVICES=1`.
pub fn private_broker() -> Option<PrivateBroker> {
    match PrivateBroker::start() {
        Ok(b) => Some(b),
        Err(e) => {
            if std::env::var("RAILYARD_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("cannot boot a private RabbitMQ node and RAILYARD_REQUIRE_SERVICES=1: {e}");
            }
            eprintln!("skipped: cannot boot a private RabbitMQ node: {e}");
            None
        }
    }
}

/// The real script behind Debian's `su` wrapper, else the one on `PATH`.
fn find(name: &str) -> Option<PathBuf> {
    let debian = Path::new("/usr/lib/rabbitmq/bin").join(name);
    if debian.is_file() {
        return Some(debian);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn free_ports() -> Result<(u16, u16), String> {
    let bind = || std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string());
    // Both held at once, so they differ.
    let (a, b) = (bind()?, bind()?);
    let port = |l: &std::net::TcpListener| l.local_addr().map(|a| a.port());
    Ok((
        port(&a).map_err(|e| e.to_string())?,
        port(&b).map_err(|e| e.to_string())?,
    ))
}

impl PrivateBroker {
    /// Boots a fresh node and returns once it accepts AMQP connections.
    pub fn start() -> Result<PrivateBroker, String> {
        let server = find("rabbitmq-server").ok_or("rabbitmq-server is not installed")?;
        let ctl = find("rabbitmqctl").ok_or("rabbitmqctl is not installed")?;
        let dir = tempfile::Builder::new()
            .prefix("railyard-rabbitmq-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let node = format!(
            "railyard-{}-{}@localhost",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let (port, dist_port) = free_ports()?;
        let io = |what: &str, e: std::io::Error| format!("{what}: {e}");
        for d in ["home", "mnesia", "log"] {
            std::fs::create_dir_all(dir.path().join(d)).map_err(|e| io(d, e))?;
        }
        // The cookie must be readable by its owner only, or Erlang refuses it.
        let cookie = dir.path().join("home/.erlang.cookie");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        std::fs::write(&cookie, format!("RAILYARD{}X{nanos}", std::process::id()))
            .map_err(|e| io("cookie", e))?;
        std::fs::set_permissions(&cookie, std::fs::Permissions::from_mode(0o400))
            .map_err(|e| io("cookie", e))?;
        std::fs::write(
            dir.path().join("rabbitmq.conf"),
            format!(
                "listeners.tcp.local = 127.0.0.1:{port}\n\
                 # A nearly full disk must not block publishers in a test.\n\
                 disk_free_limit.absolute = 1MB\n"
            ),
        )
        .map_err(|e| io("rabbitmq.conf", e))?;
        std::fs::write(dir.path().join("enabled_plugins"), "[].\n")
            .map_err(|e| io("enabled_plugins", e))?;
        // Instead of /etc/rabbitmq/rabbitmq-env.conf (the shared node's NODENAME and flags).
        std::fs::write(dir.path().join("rabbitmq-env.conf"), "")
            .map_err(|e| io("rabbitmq-env.conf", e))?;
        let rt = tokio::runtime::Runtime::new().map_err(|e| io("tokio", e))?;
        let mut broker = PrivateBroker {
            node,
            port,
            dist_port,
            server,
            ctl,
            child: None,
            rt,
            dir,
        };
        broker.boot()?;
        Ok(broker)
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The node's own output (its logs go to stdout).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("node.log")
    }

    fn env(&self, cmd: &mut Command) {
        let p = |rel: &str| self.dir.path().join(rel);
        cmd.current_dir(self.dir.path())
            .env("HOME", p("home"))
            .env("RABBITMQ_CONF_ENV_FILE", p("rabbitmq-env.conf"))
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", p("mnesia"))
            .env("RABBITMQ_LOG_BASE", p("log"))
            .env("RABBITMQ_LOGS", "-")
            .env("RABBITMQ_CONFIG_FILE", p("rabbitmq.conf"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", p("advanced.config"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", p("enabled_plugins"))
            .env("RABBITMQ_PID_FILE", p("node.pid"))
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env("ERL_CRASH_DUMP", p("erl_crash.dump"));
    }

    fn boot(&mut self) -> Result<(), String> {
        if self.child.is_some() {
            return Err("the node is already running".to_string());
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| format!("node log: {e}"))?;
        let log2 = log.try_clone().map_err(|e| format!("node log: {e}"))?;
        let mut cmd = Command::new(&self.server);
        self.env(&mut cmd);
        // Its own process group: `kill` reaches the script, beam and its helpers at once.
        cmd.stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.server.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + BOOT_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!(
                    "{} exited with {status} before accepting connections; its output ends with:\n{}",
                    self.server.display(),
                    self.log_tail()
                ));
            }
            if self.accepts_amqp() {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(format!(
                    "node {} did not accept AMQP connections on port {} within {BOOT_TIMEOUT:?}; its output ends with:\n{}",
                    self.node,
                    self.port,
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// An AMQP connection opens (not just the TCP port).
    pub fn accepts_amqp(&self) -> bool {
        if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            return false;
        }
        let url = self.url();
        self.rt.block_on(async {
            let connect = lapin::Connection::connect(&url, lapin::ConnectionProperties::default());
            match tokio::time::timeout(Duration::from_secs(5), connect).await {
                Ok(Ok(conn)) => {
                    let _ = conn.close(200, "ok".into()).await;
                    true
                }
                _ => false,
            }
        })
    }

    /// The last lines of the node's output.
    pub fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(self.log_path()) {
            let len = f.metadata().map_or(0, |m| m.len());
            let _ = f.seek(SeekFrom::Start(len.saturating_sub(4_000)));
            let mut bytes = Vec::new();
            let _ = f.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    }

    /// A clean stop, as an operator does it: `rabbitmqctl -n <node> stop` (SIGTERM to the node
    /// if that fails), then waits for the process to exit.
    pub fn stop(&mut self) -> Result<(), String> {
        let Some(mut child) = self.child.take() else {
            return Err("the node is not running".to_string());
        };
        let mut cmd = Command::new(&self.ctl);
        self.env(&mut cmd);
        let ctl = cmd
            .args(["-n", &self.node, "stop"])
            .stdin(Stdio::null())
            .output();
        let ctl_ok = matches!(&ctl, Ok(out) if out.status.success());
        if !ctl_ok {
            eprintln!("rabbitmqctl stop failed ({ctl:?}); sending SIGTERM to the node");
            signal_group(child.id(), "TERM");
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return Ok(());
            }
            if Instant::now() > deadline {
                signal_group(child.id(), "KILL");
                let _ = child.wait();
                return Err(format!(
                    "node {} did not stop within {STOP_TIMEOUT:?}; killed",
                    self.node
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A crash: SIGKILL to the node's whole process group, no shutdown at all.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal_group(child.id(), "KILL");
            let _ = child.wait();
        }
    }

    /// Boots the node again with the same name, ports and mnesia dir: durable queues and
    /// persistent messages are still there.
    pub fn start_again(&mut self) -> Result<(), String> {
        self.boot()
    }

    /// `rabbitmqctl -n <node> -q ARGS`: its output, or why it failed.
    pub fn ctl(&self, args: &[&str]) -> String {
        let mut cmd = Command::new(&self.ctl);
        self.env(&mut cmd);
        match cmd
            .args(["-n", &self.node, "-q"])
            .args(args)
            .stdin(Stdio::null())
            .output()
        {
            Ok(out) => format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => format!("cannot run rabbitmqctl: {e}"),
        }
    }

    /// Queues (ready, unacked, consumers) and bindings, for a failure message.
    pub fn topology(&self) -> String {
        format!(
            "queues (name, ready, unacked, consumers):\n{}bindings (source, destination, key):\n{}",
            self.ctl(&[
                "list_queues",
                "name",
                "messages_ready",
                "messages_unacknowledged",
                "consumers"
            ]),
            self.ctl(&[
                "list_bindings",
                "source_name",
                "destination_name",
                "routing_key"
            ])
        )
    }

    /// Messages ready in a queue (declares it durable if absent).
    pub fn queue_depth(&self, queue: &str) -> Result<u32, String> {
        let url = self.url();
        self.rt.block_on(async {
            let conn = lapin::Connection::connect(&url, lapin::ConnectionProperties::default())
                .await
                .map_err(|e| e.to_string())?;
            let ch = conn.create_channel().await.map_err(|e| e.to_string())?;
            let q = ch
                .queue_declare(
                    queue.into(),
                    lapin::options::QueueDeclareOptions {
                        durable: true,
                        ..Default::default()
                    },
                    lapin::types::FieldTable::default(),
                )
                .await
                .map_err(|e| e.to_string())?;
            let _ = conn.close(200, "ok".into()).await;
            Ok(q.message_count())
        })
    }
}

/// `kill -<signal> -- -<pgid>`: the child leads its own process group.
fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        self.kill();
    }
}
