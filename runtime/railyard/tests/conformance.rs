#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

//! One conformance suite that every connector of `railyard run` passes (in the manner of
//! Benthos' `integration.StreamTests`: one table of connectors, one function per property), as an operator runs it: the real binary on a free port,
//! its own data dir, `--no-watch`, SIGTERM for a graceful stop.
//!
//! The suite is data. [`CASES`] is the table of connectors: each [`Case`] says how a tiny
//! project puts the connector under test between a sender and a collector (its [`Entry`], its
//! [`Exit`] and the [`Topology`] between them), and lists, with the reason, every property it
//! adapts, cannot have, or fails because of a known runtime bug. Each property is one function
//! ([`open_close`], [`metadata`], [`batch`], [`sequential`], [`parallel`], [`ack_nack`],
//! [`reconnect`], [`shutdown_drains`]) that runs over every case through the same [`Harness`]:
//! write the project, start, send messages with a key, a message id and a correlation id,
//! collect what arrived (key, id, correlation id, body), stop, and assert exact sets.
//!
//! `cargo test -p railyard --test conformance -- --nocapture matrix` prints the matrix.
//! Cases needing RabbitMQ (127.0.0.1:5672) are skipped with a printed reason when it is not
//! reachable, and fail instead when `RAILYARD_REQUIRE_SERVICES=1`.

mod common;
use common::{Server, free_port, try_http};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

/// Messages per volume property (batch, sequential, parallel, ack/nack, reconnect, shutdown).
const N: u64 = 1000;
/// Concurrent senders in the parallel property (and the shutdown burst).
const SENDERS: usize = 8;
/// `count` of the batch step in the batch property.
const BATCH: usize = 10;
/// How long a property waits for what it sent to arrive.
const WAIT: Duration = Duration::from_secs(120);
/// The local RabbitMQ.
const BROKER: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// What `railyard run` logs when an output failed and the delivery will come again.
const RETRIED: &str = "Output failed; the delivery will be retried";
/// ... and when the destination is unreachable and the delivery is held until it is back.
const HELD: &str = "Destination unreachable; the delivery is held";

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

/// The conformance properties.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Prop {
    OpenClose,
    Metadata,
    Batch,
    Sequential,
    Parallel,
    AckNack,
    Reconnect,
    ShutdownDrains,
}

impl Prop {
    const ALL: [Prop; 8] = [
        Prop::OpenClose,
        Prop::Metadata,
        Prop::Batch,
        Prop::Sequential,
        Prop::Parallel,
        Prop::AckNack,
        Prop::Reconnect,
        Prop::ShutdownDrains,
    ];

    fn name(self) -> &'static str {
        match self {
            Prop::OpenClose => "open_close",
            Prop::Metadata => "metadata",
            Prop::Batch => "batch",
            Prop::Sequential => "sequential",
            Prop::Parallel => "parallel",
            Prop::AckNack => "ack_nack",
            Prop::Reconnect => "reconnect",
            Prop::ShutdownDrains => "shutdown_drains",
        }
    }

    fn check(self, h: &mut Harness) {
        match self {
            Prop::OpenClose => open_close(h),
            Prop::Metadata => metadata(h),
            Prop::Batch => batch(h),
            Prop::Sequential => sequential(h),
            Prop::Parallel => parallel(h),
            Prop::AckNack => ack_nack(h),
            Prop::Reconnect => reconnect(h),
            Prop::ShutdownDrains => shutdown_drains(h),
        }
    }
}

/// How the suite hands messages to the project.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    /// POST /in with `X-Correlation-Id`; the 202 carries the message id.
    Http,
    /// Publish to a queue with `message_id` and `correlation_id` properties, confirms awaited.
    Amqp,
    /// JSON-lines and CSV files dropped into `inbox/` (written as `.part`, then renamed).
    FileDrop,
    /// Nothing to send: the schedule emits its configured body.
    Schedule,
}

/// Where the suite collects what arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exit {
    /// `stdout: { with_meta: true }`: one envelope per line.
    Stdout,
    /// `file:` output; a script step before it copies the metadata into the body.
    FileOut,
    /// `http:` output to a test HTTP server that records every request.
    HttpPeer,
    /// `amqp:` output to a queue the suite drains.
    AmqpOut,
}

/// The pipelines between the entry and the exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Topology {
    /// `in`: entry → exit.
    Direct,
    /// `in`: entry → topic; `out`: topic (own group) → exit.
    Topic,
    /// `in`: entry → `pipeline: out`; `out`: `pipeline: {}` → exit.
    Pipeline,
    /// `in`: entry → topic; `out`: topic → the output under test (the way `order-to-erp`
    /// feeds the ERP): a failing output is redelivered by the topic.
    TopicThenOutput,
}

/// What the case needs of RabbitMQ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Broker {
    None,
    /// Queues on the local broker.
    Queues,
    /// Topics carried by the broker (`RAILYARD_AMQP_URL`).
    Topics,
}

/// How the reconnect property takes the connection away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Break {
    None,
    /// The broker closes every connection railyard holds (`rabbitmqctl close_connection`).
    BrokerConnections,
    /// The HTTP peer stops (connections refused) and comes back on the same port.
    PeerDown,
    /// The drop directory disappears (an unmounted share) and comes back.
    DropDirGone,
}

/// Why a property does not run as written for a case.
#[derive(Clone, Copy, Debug)]
enum Note {
    /// It runs, adapted as described.
    Adapted(&'static str),
    /// It cannot apply; the reason is printed.
    NotApplicable(&'static str),
    /// It fails because of a runtime bug; the test passes while the bug reproduces and fails
    /// once it is fixed, so the note gets removed. (None today: the last one, a file record
    /// redelivered under a new id, was fixed in ddcd635.)
    #[allow(dead_code)]
    KnownBug(&'static str),
}

struct Case {
    name: &'static str,
    /// The connector under test and the project around it.
    under_test: &'static str,
    entry: Entry,
    exit: Exit,
    topology: Topology,
    broker: Broker,
    /// One-at-a-time sends arrive in the order sent.
    ordered: bool,
    reconnect: Break,
    notes: &'static [(Prop, Note)],
}

impl Case {
    fn note(&self, p: Prop) -> Option<Note> {
        self.notes.iter().find(|(q, _)| *q == p).map(|(_, n)| *n)
    }
}

const NO_CONNECTION: &str = "the embedded store is in the process: there is no connection to lose (a restart is the shutdown property)";

const HTTP_INPUT: Case = Case {
    name: "http-input",
    under_test: "HTTP webhook input: POST /in → stdout",
    entry: Entry::Http,
    exit: Exit::Stdout,
    topology: Topology::Direct,
    broker: Broker::None,
    ordered: true,
    reconnect: Break::None,
    notes: &[
        (
            Prop::AckNack,
            Note::Adapted(
                "a webhook is redelivered by its sender: the failing downstream (HTTP peer) makes railyard answer 503 + Retry-After and the sender retries; a retry is a new request with a new id, so the id check is 'the id in the 202 is the id delivered'",
            ),
        ),
        (
            Prop::Reconnect,
            Note::NotApplicable(
                "the webhook input is the server: every request is its own connection (a restarted server is the shutdown property)",
            ),
        ),
    ],
};

const TOPIC: Case = Case {
    name: "topic",
    under_test: "embedded-store topic: topic output → topic input (own consumer group) → stdout",
    entry: Entry::Http,
    exit: Exit::Stdout,
    topology: Topology::Topic,
    broker: Broker::None,
    ordered: true,
    reconnect: Break::None,
    notes: &[(Prop::Reconnect, Note::NotApplicable(NO_CONNECTION))],
};

const PIPELINE: Case = Case {
    name: "pipeline",
    under_test: "`pipeline:` output → `pipeline: {}` input → stdout",
    entry: Entry::Http,
    exit: Exit::Stdout,
    topology: Topology::Pipeline,
    broker: Broker::None,
    ordered: true,
    reconnect: Break::None,
    notes: &[(Prop::Reconnect, Note::NotApplicable(NO_CONNECTION))],
};

const FILE_DROP: Case = Case {
    name: "file-drop",
    under_test: "file-drop input (JSON lines and CSV in inbox/) → stdout",
    entry: Entry::FileDrop,
    exit: Exit::Stdout,
    topology: Topology::Direct,
    broker: Broker::None,
    ordered: true,
    reconnect: Break::DropDirGone,
    notes: &[
        (
            Prop::Metadata,
            Note::Adapted(
                "a dropped file carries no correlation id: a record's id is file-<content key>-<line> and is its own correlation id; file name and line travel in meta.headers and meta.source",
            ),
        ),
        (
            Prop::Sequential,
            Note::Adapted("1000 records in one JSON-lines file, arriving in file order"),
        ),
        (
            Prop::Parallel,
            Note::Adapted("10 files of 100 records (5 JSON lines, 5 CSV) written at the same time"),
        ),
        (
            Prop::Reconnect,
            Note::Adapted(
                "the drop directory disappears (an unmounted share) and comes back; files dropped after that are picked up",
            ),
        ),
    ],
};

const FILE_OUTPUT: Case = Case {
    name: "file-output",
    under_test: "file output (appended JSON lines, fsynced), fed by a topic",
    entry: Entry::Http,
    exit: Exit::FileOut,
    topology: Topology::TopicThenOutput,
    broker: Broker::None,
    ordered: true,
    reconnect: Break::None,
    notes: &[
        (
            Prop::Metadata,
            Note::Adapted(
                "the file output writes bodies only: a script step before it copies meta (id, correlation id, source, attempt) into the body",
            ),
        ),
        (
            Prop::AckNack,
            Note::Adapted(
                "the failing downstream is the file system: one target path (out/part-7.jsonl, every 20th message) is a directory until the test removes it",
            ),
        ),
        (
            Prop::Reconnect,
            Note::NotApplicable(
                "a local file has no connection; a path that cannot be written is the ack/nack property",
            ),
        ),
    ],
};

const HTTP_OUTPUT: Case = Case {
    name: "http-output",
    under_test: "HTTP output to a test HTTP server, fed by a topic",
    entry: Entry::Http,
    exit: Exit::HttpPeer,
    topology: Topology::TopicThenOutput,
    broker: Broker::None,
    ordered: true,
    reconnect: Break::PeerDown,
    notes: &[],
};

const AMQP_INPUT: Case = Case {
    name: "amqp-input",
    under_test: "AMQP queue input (RabbitMQ, prefetch 16) → stdout",
    entry: Entry::Amqp,
    exit: Exit::Stdout,
    topology: Topology::Direct,
    broker: Broker::Queues,
    ordered: false,
    reconnect: Break::BrokerConnections,
    notes: &[(
        Prop::Sequential,
        Note::Adapted(
            "published one at a time with confirms; deliveries are handled concurrently up to the prefetch, so the arrival order is not checked",
        ),
    )],
};

const AMQP_OUTPUT: Case = Case {
    name: "amqp-output",
    under_test: "AMQP output (RabbitMQ default exchange → a queue the test drains), fed by a topic",
    entry: Entry::Http,
    exit: Exit::AmqpOut,
    topology: Topology::TopicThenOutput,
    broker: Broker::Queues,
    ordered: true,
    reconnect: Break::BrokerConnections,
    notes: &[(
        Prop::AckNack,
        Note::Adapted(
            "the failing downstream is the broker: the queue has x-max-length 20 with x-overflow reject-publish, so publishes are nacked until the test drains it",
        ),
    )],
};

const AMQP_TOPICS: Case = Case {
    name: "amqp-topics",
    under_test: "topics over RabbitMQ (RAILYARD_AMQP_URL): topic output → railyard.topics → queue railyard.<topic>.<group> → stdout",
    entry: Entry::Http,
    exit: Exit::Stdout,
    topology: Topology::Topic,
    broker: Broker::Topics,
    ordered: false,
    reconnect: Break::BrokerConnections,
    notes: &[(
        Prop::Sequential,
        Note::Adapted(
            "deliveries are handled concurrently up to the prefetch (32), so the arrival order is not checked",
        ),
    )],
};

const NOTHING_TO_SEND: &str =
    "a schedule emits its configured body on its own clock: there is nothing to send";

const SCHEDULE: Case = Case {
    name: "schedule",
    under_test: "schedule input (every 200ms) → stdout",
    entry: Entry::Schedule,
    exit: Exit::Stdout,
    topology: Topology::Direct,
    broker: Broker::None,
    ordered: true,
    reconnect: Break::None,
    notes: &[
        (
            Prop::Metadata,
            Note::Adapted(
                "no sender ids: every tick has its own id, its id as correlation id, source schedule:in and the configured body",
            ),
        ),
        (
            Prop::ShutdownDrains,
            Note::Adapted(
                "nothing is queued: SIGTERM between ticks exits 0 with no torn output line, and ticks resume after a restart",
            ),
        ),
        (Prop::Batch, Note::NotApplicable(NOTHING_TO_SEND)),
        (Prop::Sequential, Note::NotApplicable(NOTHING_TO_SEND)),
        (Prop::Parallel, Note::NotApplicable(NOTHING_TO_SEND)),
        (
            Prop::AckNack,
            Note::NotApplicable(
                "a failed tick is not redelivered by design: the next tick polls again (run/mod.rs `scheduled`)",
            ),
        ),
        (
            Prop::Reconnect,
            Note::NotApplicable("a schedule has no connection"),
        ),
    ],
};

macro_rules! cases {
    ($($module:ident => $case:ident),* $(,)?) => {
        /// Every connector case, in the order of the matrix.
        static CASES: &[&Case] = &[$(&$case),*];
        $(
            mod $module {
                use super::{$case, Prop, run};
                #[test]
                fn open_close() { run(&$case, Prop::OpenClose) }
                #[test]
                fn metadata() { run(&$case, Prop::Metadata) }
                #[test]
                fn batch() { run(&$case, Prop::Batch) }
                #[test]
                fn sequential() { run(&$case, Prop::Sequential) }
                #[test]
                fn parallel() { run(&$case, Prop::Parallel) }
                #[test]
                fn ack_nack() { run(&$case, Prop::AckNack) }
                #[test]
                fn reconnect() { run(&$case, Prop::Reconnect) }
                #[test]
                fn shutdown_drains() { run(&$case, Prop::ShutdownDrains) }
            }
        )*
    };
}

cases! {
    http_input => HTTP_INPUT,
    topic => TOPIC,
    pipeline => PIPELINE,
    file_drop => FILE_DROP,
    file_output => FILE_OUTPUT,
    http_output => HTTP_OUTPUT,
    amqp_input => AMQP_INPUT,
    amqp_output => AMQP_OUTPUT,
    amqp_topics => AMQP_TOPICS,
    schedule => SCHEDULE,
}

/// Runs one property over one case, honouring the table's notes.
fn run(case: &'static Case, prop: Prop) {
    let label = format!("{} × {}", case.name, prop.name());
    let note = case.note(prop);
    if let Some(Note::NotApplicable(why)) = note {
        println!("{label}: n/a — {why}");
        return;
    }
    let started = Instant::now();
    let Some(mut h) = Harness::new(case, prop) else {
        return;
    };
    if let Some(Note::KnownBug(why)) = note {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| prop.check(&mut h)));
        drop(h);
        match outcome {
            Err(_) => println!("{label}: known bug reproduced — {why}"),
            Ok(()) => panic!(
                "{label} passes now: the known bug ({why}) is gone; remove its note from the table"
            ),
        }
        return;
    }
    prop.check(&mut h);
    println!("{label}: pass in {:.1} s", started.elapsed().as_secs_f64());
}

/// Prints the matrix and checks the table is complete and consistent.
#[test]
fn matrix() {
    let mut names = BTreeSet::new();
    let mut text = format!("{:<13}", "");
    for p in Prop::ALL {
        text.push_str(&format!("{:<17}", p.name()));
    }
    text.push('\n');
    for case in CASES {
        assert!(names.insert(case.name), "two cases named {}", case.name);
        text.push_str(&format!("{:<13}", case.name));
        for p in Prop::ALL {
            let cell = match case.note(p) {
                None => "runs",
                Some(Note::Adapted(_)) => "runs (adapted)",
                Some(Note::NotApplicable(_)) => "n/a",
                Some(Note::KnownBug(_)) => "KNOWN BUG",
            };
            text.push_str(&format!("{cell:<17}"));
        }
        text.push('\n');
        let listed: Vec<Prop> = case.notes.iter().map(|(p, _)| *p).collect();
        for (i, p) in listed.iter().enumerate() {
            assert!(
                !listed[..i].contains(p),
                "{}: two notes for {}",
                case.name,
                p.name()
            );
        }
        // A case without a way to break its connection must say why reconnect cannot apply.
        let reconnect_na = matches!(case.note(Prop::Reconnect), Some(Note::NotApplicable(_)));
        assert_eq!(
            case.reconnect == Break::None,
            reconnect_na,
            "{}: reconnect is n/a exactly when the case has no way to break a connection",
            case.name
        );
    }
    text.push('\n');
    for case in CASES {
        text.push_str(&format!("{}: {}\n", case.name, case.under_test));
        for (p, note) in case.notes {
            let (kind, why) = match note {
                Note::Adapted(w) => ("adapted", w),
                Note::NotApplicable(w) => ("n/a", w),
                Note::KnownBug(w) => ("known bug", w),
            };
            assert!(
                !why.trim().is_empty(),
                "{} {}: no reason",
                case.name,
                p.name()
            );
            text.push_str(&format!("  {} {kind}: {why}\n", p.name()));
        }
    }
    println!("{text}");
}

// ---------------------------------------------------------------------------------------------
// The properties
// ---------------------------------------------------------------------------------------------

/// Starts, serves every pipeline, carries one message, stops on SIGTERM (exit 0, the port and
/// the broker consumer released); starts again on the same data: nothing is delivered twice
/// and the next message flows.
fn open_close(h: &mut Harness) {
    h.start();
    h.assert_health();
    if h.case.entry == Entry::Schedule {
        let first = h.wait_count(2).len();
        h.stop();
        h.assert_closed();
        h.start();
        h.assert_health();
        h.wait_count(first + 2);
        h.stop();
        let got = h.collect();
        assert_unique_ids(h, &got);
        return;
    }
    let first = h.send(&h.msgs(0..1), Mode::Sequential);
    h.wait_for(&keys(&first));
    h.stop();
    h.assert_closed();
    h.start();
    h.assert_health();
    let second = h.send(&h.msgs(1..2), Mode::Sequential);
    h.wait_for(&keys(&second));
    h.stop();
    let sent = [first, second].concat();
    let got = h.collect();
    h.check_delivered(&sent, &got, |_| false);
    h.check_ids(&sent, &got);
    assert_unique_ids(h, &got);
    assert_eq!(
        h.left(),
        0,
        "{}: something is left after a graceful stop",
        h.name()
    );
}

/// The message id the sender got (or gave) arrives, so does the correlation id (or the
/// message's own id when there is none), the source, the attempt, and the body unchanged.
fn metadata(h: &mut Harness) {
    h.start();
    if h.case.entry == Entry::Schedule {
        let got = h.wait_count(3);
        h.stop();
        assert_unique_ids(h, &got);
        for d in &got {
            assert_eq!(d.bodies, vec![json!({"k": 0, "text": "tick"})]);
            assert_eq!(d.source.as_deref(), Some("schedule:in"), "{d:?}");
            assert_eq!(d.corr, d.id, "a tick correlates with itself: {d:?}");
            assert_eq!(d.attempt, Some(1), "{d:?}");
            assert_eq!(d.causation, None, "{d:?}");
        }
        return;
    }
    let mut msgs = h.msgs(0..6);
    if h.case.entry != Entry::FileDrop {
        // A sender that sends no correlation id: the message correlates with itself.
        msgs[5].corr = None;
    }
    let sent = h.send(&msgs, Mode::Sequential);
    h.wait_for(&keys(&sent));
    h.stop();
    let got = h.collect();
    h.check_delivered(&sent, &got, |_| false);
    h.check_ids(&sent, &got);
    assert_unique_ids(h, &got);
    let by_key: HashMap<u64, &Sent> = sent.iter().map(|s| (s.k, s)).collect();
    for d in &got {
        let s = by_key[&key(&d.bodies[0])];
        if let Some(source) = &d.source {
            assert_eq!(
                source,
                &h.expected_source(s),
                "{}: source of {d:?}",
                h.name()
            );
        }
        if let Some(attempt) = d.attempt {
            assert_eq!(
                attempt,
                1,
                "{}: first delivery is attempt 1: {d:?}",
                h.name()
            );
        }
        if let Some((file, line)) = &s.file {
            assert_eq!(d.headers["file"], json!(file), "{d:?}");
            assert_eq!(d.headers["line"], json!(line), "{d:?}");
        }
        if h.case.entry == Entry::Http && d.headers.is_object() {
            assert_eq!(
                d.headers.get("x-correlation-id").and_then(Value::as_str),
                s.corr.as_deref(),
                "{}: the request headers travel: {d:?}",
                h.name()
            );
        }
    }
}

/// A batch step next to the connector: every message in exactly one batch of at most
/// [`BATCH`], full batches by count, each batch correlated with its first message.
fn batch(h: &mut Harness) {
    h.start();
    let sent = h.send(&h.msgs(0..N), Mode::Sequential);
    h.wait_for(&keys(&sent));
    h.stop();
    let got = h.collect();
    h.check_delivered(&sent, &got, |_| false);
    h.check_ids(&sent, &got);
    assert_unique_ids(h, &got);
    for d in &got {
        assert!(
            d.batched && (1..=BATCH).contains(&d.bodies.len()),
            "{}: not a batch of 1..={BATCH}: {} bodies, batched {}",
            h.name(),
            d.bodies.len(),
            d.batched
        );
    }
    let full = got.iter().filter(|d| d.bodies.len() == BATCH).count();
    assert!(
        full * BATCH * 10 >= sent.len() * 9,
        "{}: only {full} of {} batches are full",
        h.name(),
        got.len()
    );
    assert_eq!(
        h.left(),
        0,
        "{}: something is left after a graceful stop",
        h.name()
    );
}

/// [`N`] messages one at a time: each exactly once, in order where the connector orders.
fn sequential(h: &mut Harness) {
    h.start();
    let sent = h.send(&h.msgs(0..N), Mode::Sequential);
    h.wait_for(&keys(&sent));
    h.stop();
    let got = h.collect();
    h.check_delivered(&sent, &got, |_| false);
    h.check_ids(&sent, &got);
    assert_unique_ids(h, &got);
    if h.case.ordered {
        let arrived: Vec<u64> = got.iter().flat_map(|d| d.bodies.iter().map(key)).collect();
        let order: Vec<u64> = sent.iter().map(|s| s.k).collect();
        if arrived != order {
            let at = arrived.iter().zip(&order).position(|(a, b)| a != b);
            panic!(
                "{}: arrival order differs from the send order, first at position {at:?}",
                h.name()
            );
        }
    }
    assert_eq!(
        h.left(),
        0,
        "{}: something is left after a graceful stop",
        h.name()
    );
}

/// [`N`] messages from [`SENDERS`] senders at once: each exactly once.
fn parallel(h: &mut Harness) {
    h.start();
    let sent = h.send(&h.msgs(0..N), Mode::Parallel);
    h.wait_for(&keys(&sent));
    h.stop();
    let got = h.collect();
    h.check_delivered(&sent, &got, |_| false);
    h.check_ids(&sent, &got);
    assert_unique_ids(h, &got);
    assert_eq!(
        h.left(),
        0,
        "{}: something is left after a graceful stop",
        h.name()
    );
}

/// The downstream fails for some messages (503/429 with Retry-After from the HTTP peer, an
/// unwritable path, a broker that nacks): they are redelivered, not lost, with the same id.
fn ack_nack(h: &mut Harness) {
    let msgs = h.msgs(0..N);
    let sent = match h.exit {
        Exit::FileOut => {
            // Until the test removes it, the target of every twentieth message is a directory.
            let blocked = h.dir.path().join("out/part-7.jsonl");
            std::fs::create_dir_all(&blocked).unwrap();
            h.start();
            let sent = h.send(&msgs, Mode::Parallel);
            let others: BTreeSet<u64> = sent.iter().map(|s| s.k).filter(|k| k % 20 != 7).collect();
            let got = h.wait_for(&others);
            h.wait_log(&[RETRIED], 3);
            let early: Vec<u64> = got
                .iter()
                .flat_map(|d| d.bodies.iter().map(key))
                .filter(|k| k % 20 == 7)
                .collect();
            assert!(
                early.is_empty(),
                "{}: written to a blocked path? {early:?}",
                h.name()
            );
            std::fs::remove_dir(&blocked).unwrap();
            sent
        }
        Exit::AmqpOut => {
            h.start();
            let sent = h.send(&msgs, Mode::Parallel);
            // Nobody drains yet: the queue fills to its limit and the broker nacks the rest.
            h.wait_log(&[RETRIED], 3);
            assert_eq!(
                h.rabbit().depth(&h.q_out),
                20,
                "{}: the queue is at its limit",
                h.name()
            );
            sent
        }
        _ => {
            h.start();
            h.send(&msgs, Mode::Parallel)
        }
    };
    h.wait_for(&keys(&sent));
    h.stop();
    let got = h.collect();
    h.check_delivered(&sent, &got, |_| true);
    // The downstream really failed: each scripted failure happened once and was redelivered.
    if let Some(peer) = &h.peer {
        let hits = peer.hits();
        let scripted: BTreeSet<u64> = sent
            .iter()
            .map(|s| s.k)
            .filter(|k| fail_rule(*k).is_some())
            .collect();
        let failed: Vec<&Hit> = hits.iter().filter(|x| x.status >= 300).collect();
        let failed_keys: BTreeSet<u64> = failed.iter().filter_map(|x| try_key(&x.body)).collect();
        assert_eq!(
            failed.len(),
            scripted.len(),
            "{}: the peer failed each scripted message once",
            h.name()
        );
        assert_eq!(failed_keys, scripted, "{}", h.name());
        for f in &failed {
            let k = try_key(&f.body).unwrap();
            let ok: Vec<&Hit> = hits
                .iter()
                .filter(|x| x.status < 300 && try_key(&x.body) == Some(k))
                .collect();
            assert!(!ok.is_empty(), "{}: {k} was never redelivered", h.name());
            if !h.sender_redelivers() {
                for x in ok {
                    assert_eq!(
                        x.id,
                        f.id,
                        "{}: message {k} failed as {} and was redelivered as {}: a redelivery keeps its id",
                        h.name(),
                        f.id,
                        x.id
                    );
                }
            }
        }
    }
    h.check_ids(&sent, &got);
    if !h.sender_redelivers() {
        assert_redeliveries_keep_ids(h, &got);
    }
    assert_eq!(
        h.dead_letters(),
        0,
        "{}: nothing was dead-lettered",
        h.name()
    );
    assert_eq!(
        h.left(),
        0,
        "{}: something is left after a graceful stop",
        h.name()
    );
}

/// The connection goes away while messages flow and comes back: nothing is lost, a message
/// that was in flight may come twice, with the same id.
fn reconnect(h: &mut Harness) {
    if h.case.reconnect == Break::BrokerConnections && rabbitmqctl().is_none() {
        skip_or_fail("rabbitmqctl is not installed: cannot make the broker close connections");
        return;
    }
    h.start();
    let first = h.send(&h.msgs(0..N / 2), Mode::Sequential);
    h.wait_for(&keys(&first));
    let second_msgs = h.msgs(N / 2..N);
    let second = match h.case.reconnect {
        Break::BrokerConnections => {
            let closed = h.close_broker_connections();
            let second = h.send(&second_msgs, Mode::Sequential);
            h.wait_for(&keys(&second));
            let now = broker_ports(h.pid());
            assert!(
                !now.is_empty() && now.is_disjoint(&closed),
                "{}: railyard did not open new broker connections (closed {closed:?}, now {now:?})",
                h.name()
            );
            if h.case.entry == Entry::Amqp || h.case.broker == Broker::Topics {
                h.wait_log(&["AMQP consumer lost its broker; reconnecting."], 1);
            }
            second
        }
        Break::PeerDown => {
            h.peer.as_mut().unwrap().down();
            let second = h.send(&second_msgs, Mode::Sequential);
            h.wait_log(&[RETRIED, HELD], 1);
            std::thread::sleep(Duration::from_millis(1_000));
            h.peer.as_mut().unwrap().up();
            second
        }
        Break::DropDirGone => {
            let inbox = h.dir.path().join("inbox");
            std::fs::remove_dir_all(&inbox).unwrap();
            h.wait_log(&["cannot list the drop directory"], 1);
            std::fs::create_dir_all(&inbox).unwrap();
            h.send(&second_msgs, Mode::Sequential)
        }
        Break::None => unreachable!("reconnect is n/a for {}", h.name()),
    };
    h.wait_for(&keys(&second));
    h.stop();
    let sent = [first, second].concat();
    let got = h.collect();
    h.check_delivered(&sent, &got, |_| true);
    h.check_ids(&sent, &got);
    assert_redeliveries_keep_ids(h, &got);
    assert_eq!(
        h.dead_letters(),
        0,
        "{}: nothing was dead-lettered",
        h.name()
    );
    assert_eq!(
        h.left(),
        0,
        "{}: something is left after a graceful stop",
        h.name()
    );
}

/// SIGTERM in the middle of a burst: exit 0, what was acknowledged is either delivered once or
/// still queued (never both, never neither); after a restart on the same data everything
/// arrives exactly once (at least once for a request the stop cut without an answer), and the
/// queue or topic is empty after the final graceful stop.
fn shutdown_drains(h: &mut Harness) {
    if h.case.entry == Entry::Schedule {
        h.start();
        let before = h.wait_count(3).len();
        h.stop();
        let out = std::fs::read_to_string(h.stdout_log(h.runs)).unwrap();
        assert!(out.ends_with('\n'), "a torn last line: {out:?}");
        h.start();
        h.wait_count(before + 2);
        h.stop();
        assert_unique_ids(h, &h.collect());
        return;
    }
    let msgs = h.msgs(0..N);
    let sent = match h.case.entry {
        Entry::Http => {
            h.start();
            let burst = Burst::start(h.port, msgs);
            let deadline = Instant::now() + WAIT;
            while burst.accepted() < N as usize / 3 {
                assert!(Instant::now() < deadline, "{}: the burst stalled", h.name());
                std::thread::sleep(Duration::from_millis(5));
            }
            h.stop();
            let accepted = burst.settled_accepted();
            let got = h.collect();
            let delivered = keys_of(&got);
            h.check_once_so_far(&got);
            let left = h.left();
            println!(
                "{}: SIGTERM after {} accepted: {} delivered, {left} still queued",
                h.name(),
                accepted.len(),
                delivered.len()
            );
            assert!(
                delivered.is_subset(&accepted),
                "{}: delivered without a 202: {:?}",
                h.name(),
                delivered.difference(&accepted).take(10).collect::<Vec<_>>()
            );
            assert_eq!(
                delivered.len() as u64 + left,
                accepted.len() as u64,
                "{}: every accepted message is delivered or still queued after the stop",
                h.name()
            );
            h.start();
            let sent = burst.join();
            h.wait_for(&keys(&sent));
            sent
        }
        Entry::Amqp | Entry::FileDrop => {
            let sent = if h.case.entry == Entry::Amqp {
                h.send(&msgs, Mode::Parallel)
            } else {
                msgs.chunks(N as usize / 5)
                    .flat_map(|c| h.send(c, Mode::Sequential))
                    .collect()
            };
            h.start();
            h.wait_count(N as usize / 3);
            h.stop();
            let got = h.collect();
            h.check_once_so_far(&got);
            let delivered = keys_of(&got).len() as u64;
            println!("{}: SIGTERM after {delivered} of {N} delivered", h.name());
            if h.case.entry == Entry::Amqp {
                assert_eq!(
                    delivered + h.left(),
                    N,
                    "{}: every message is delivered or back in the queue after the stop",
                    h.name()
                );
            }
            h.start();
            h.wait_for(&keys(&sent));
            sent
        }
        Entry::Schedule => unreachable!(),
    };
    h.stop();
    let got = h.collect();
    h.check_delivered(&sent, &got, |s| s.ambiguous);
    h.check_ids(&sent, &got);
    assert_eq!(
        h.dead_letters(),
        0,
        "{}: nothing was dead-lettered",
        h.name()
    );
    assert_eq!(
        h.left(),
        0,
        "{}: something is left after a graceful stop",
        h.name()
    );
}

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

/// A message the suite sends: a key, ids, and a body that exercises JSON (unicode, escapes,
/// nesting, numbers).
#[derive(Clone, Debug)]
struct Msg {
    k: u64,
    /// The message id, where the entry lets the sender give one (AMQP).
    id: String,
    corr: Option<String>,
    body: Value,
}

/// What the sender knows after a message was accepted.
#[derive(Clone, Debug)]
struct Sent {
    k: u64,
    /// The id the entry gave back (HTTP 202) or was given (AMQP `message_id`).
    id: Option<String>,
    corr: Option<String>,
    /// The body as it must arrive.
    body: Value,
    /// A previous attempt got no answer (cut by a stop): it may have been processed, so this
    /// key may arrive twice.
    ambiguous: bool,
    /// File name and line, for dropped files.
    file: Option<(String, u64)>,
}

fn keys(sent: &[Sent]) -> BTreeSet<u64> {
    sent.iter().map(|s| s.k).collect()
}

/// What arrived at the exit: one delivery (a batch carries several bodies).
#[derive(Clone, Debug)]
struct Delivery {
    id: Option<String>,
    corr: Option<String>,
    causation: Option<String>,
    source: Option<String>,
    attempt: Option<u64>,
    headers: Value,
    bodies: Vec<Value>,
    batched: bool,
}

impl Delivery {
    fn new(id: Option<String>, corr: Option<String>, body: Value) -> Delivery {
        let (bodies, batched) = match body {
            Value::Array(items) => (items, true),
            other => (vec![other], false),
        };
        Delivery {
            id,
            corr,
            causation: None,
            source: None,
            attempt: None,
            headers: Value::Null,
            bodies,
            batched,
        }
    }

    /// From a `{body, meta}` envelope (stdout with meta, or the file output's observed body).
    fn from_envelope(v: Value) -> Delivery {
        let meta = v.get("meta").cloned().unwrap_or(Value::Null);
        let s = |name: &str| meta.get(name).and_then(Value::as_str).map(str::to_string);
        let mut d = Delivery::new(s("id"), s("correlation_id"), v["body"].clone());
        d.causation = s("causation_id");
        d.source = s("source");
        d.attempt = meta.get("attempt").and_then(Value::as_u64);
        d.headers = meta.get("headers").cloned().unwrap_or(Value::Null);
        d
    }
}

fn try_key(body: &Value) -> Option<u64> {
    match body.get("k")? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn key(body: &Value) -> u64 {
    try_key(body).unwrap_or_else(|| panic!("a delivered body without a key: {body}"))
}

fn keys_of(got: &[Delivery]) -> BTreeSet<u64> {
    got.iter().flat_map(|d| d.bodies.iter().map(key)).collect()
}

fn assert_unique_ids(h: &Harness, got: &[Delivery]) {
    let mut ids = BTreeSet::new();
    for d in got {
        let id = d.id.clone().unwrap_or_default();
        assert!(
            !id.is_empty(),
            "{}: a delivery without an id: {d:?}",
            h.name()
        );
        assert!(
            ids.insert(id.clone()),
            "{}: two deliveries with id {id}",
            h.name()
        );
    }
}

/// A key that arrived more than once arrived under one id, at least once as a redelivery
/// where the exit shows the attempt.
fn assert_redeliveries_keep_ids(h: &Harness, got: &[Delivery]) {
    let mut by_key: BTreeMap<u64, Vec<&Delivery>> = BTreeMap::new();
    for d in got.iter().filter(|d| !d.batched) {
        by_key.entry(key(&d.bodies[0])).or_default().push(d);
    }
    for (k, ds) in by_key.into_iter().filter(|(_, ds)| ds.len() > 1) {
        let ids: BTreeSet<_> = ds.iter().map(|d| d.id.clone()).collect();
        assert_eq!(
            ids.len(),
            1,
            "{}: message {k} arrived {} times under different ids {ids:?}",
            h.name(),
            ds.len()
        );
        if ds.iter().all(|d| d.attempt.is_some()) {
            assert!(
                ds.iter().any(|d| d.attempt.unwrap_or(0) > 1),
                "{}: message {k} arrived {} times, none of them marked as a redelivery",
                h.name(),
                ds.len()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    Plain,
    /// A batch step next to the connector under test.
    Batch,
    /// The downstream fails now and then.
    Flaky,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Sequential,
    Parallel,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// What [`Harness::tail`] has read of each output file, and the deliveries parsed from it.
#[derive(Default)]
struct Tail {
    read: HashMap<PathBuf, usize>,
    got: Vec<Delivery>,
}

/// One case × property: the project, the process, the peer and the broker queues.
struct Harness {
    /// First field: the process is killed before anything else goes.
    server: Option<Server>,
    case: &'static Case,
    prop: Prop,
    variant: Variant,
    /// The exit in force (a flaky variant of an input case collects from the HTTP peer).
    exit: Exit,
    tag: String,
    topic: String,
    group: String,
    q_in: String,
    q_out: String,
    /// Kept across restarts: senders retry the same address, as a real platform does.
    port: u16,
    peer: Option<Peer>,
    rabbit: Option<Rabbit>,
    runs: usize,
    pipelines: Vec<String>,
    drained: Mutex<Vec<Delivery>>,
    tail: Mutex<Tail>,
    files: AtomicUsize,
    /// Last field: removed after everything else.
    dir: tempfile::TempDir,
}

impl Harness {
    fn new(case: &'static Case, prop: Prop) -> Option<Harness> {
        let rabbit = match case.broker {
            Broker::None => None,
            Broker::Queues | Broker::Topics => Some(Rabbit::connect()?),
        };
        let variant = match prop {
            Prop::Batch => Variant::Batch,
            Prop::AckNack => Variant::Flaky,
            _ => Variant::Plain,
        };
        let exit = if variant == Variant::Flaky && case.topology != Topology::TopicThenOutput {
            Exit::HttpPeer
        } else {
            case.exit
        };
        let tag = format!(
            "cf-{}-{}-{}-{}",
            case.name,
            prop.name().replace('_', "-"),
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let peer = (exit == Exit::HttpPeer).then(|| Peer::start(variant == Variant::Flaky));
        let mut h = Harness {
            server: None,
            case,
            prop,
            variant,
            exit,
            topic: format!("conf.{tag}"),
            group: tag.clone(),
            q_in: format!("{tag}.in"),
            q_out: format!("{tag}.out"),
            tag,
            port: free_port(),
            peer,
            rabbit,
            runs: 0,
            pipelines: Vec::new(),
            drained: Mutex::new(Vec::new()),
            tail: Mutex::new(Tail::default()),
            files: AtomicUsize::new(0),
            dir: tempfile::tempdir().unwrap(),
        };
        if let Some(r) = &h.rabbit {
            if case.entry == Entry::Amqp {
                r.declare(&h.q_in, lapin::types::FieldTable::default());
            }
            if exit == Exit::AmqpOut {
                let mut args = lapin::types::FieldTable::default();
                if variant == Variant::Flaky {
                    args.insert("x-max-length".into(), lapin::types::AMQPValue::LongInt(20));
                    args.insert(
                        "x-overflow".into(),
                        lapin::types::AMQPValue::LongString("reject-publish".into()),
                    );
                }
                r.declare(&h.q_out, args);
            }
            if case.broker == Broker::Topics {
                r.track(&railyard_connectors::amqp::topic_queue(&h.topic, &h.group));
            }
        }
        h.write_project();
        Some(h)
    }

    fn name(&self) -> String {
        format!("{} × {}", self.case.name, self.prop.name())
    }

    fn rabbit(&self) -> &Rabbit {
        self.rabbit.as_ref().expect("this case has a broker")
    }

    // --- the project -----------------------------------------------------------------------

    fn write_project(&mut self) {
        let d = self.dir.path();
        std::fs::create_dir_all(d.join("pipelines")).unwrap();
        std::fs::create_dir_all(d.join("schemas/conf")).unwrap();
        for (name, schema) in [
            ("item@1", SCHEMA_ITEM),
            ("items@1", SCHEMA_ITEMS),
            ("row@1", SCHEMA_ROW),
            ("observed@1", SCHEMA_OBSERVED),
        ] {
            std::fs::write(d.join(format!("schemas/conf/{name}.json")), schema).unwrap();
        }
        for (name, yaml) in self.pipeline_files() {
            std::fs::write(d.join(format!("pipelines/{name}.yaml")), yaml).unwrap();
            self.pipelines.push(name);
        }
    }

    /// The entry's input pipelines: (name, input connector, schema).
    fn inputs(&self) -> Vec<(String, String, &'static str)> {
        let item = "conf.item@1";
        match self.case.entry {
            Entry::Http => vec![("in".into(), "http: { path: /in }".into(), item)],
            Entry::Amqp => vec![(
                "in".into(),
                format!(
                    "amqp: {{ url: \"{BROKER}\", queue: \"{}\", prefetch: 16 }}",
                    self.q_in
                ),
                item,
            )],
            Entry::FileDrop => vec![
                (
                    "in".into(),
                    "file: { dir: inbox, pattern: \"*.jsonl\", format: jsonl }".into(),
                    item,
                ),
                (
                    "in-csv".into(),
                    "file: { dir: inbox, pattern: \"*.csv\", format: csv }".into(),
                    "conf.row@1",
                ),
            ],
            Entry::Schedule => vec![(
                "in".into(),
                "schedule: { every: 200ms, body: { k: 0, text: tick } }".into(),
                item,
            )],
        }
    }

    /// The exit: steps it needs before it, and the output connector.
    fn exit_yaml(&self) -> (Vec<String>, String) {
        match self.exit {
            Exit::Stdout => (vec![], "stdout: { with_meta: true }".into()),
            Exit::HttpPeer => (
                vec![],
                format!(
                    "http: {{ url: \"http://127.0.0.1:{}/ingest\", timeout: 10s }}",
                    self.peer.as_ref().unwrap().port
                ),
            ),
            Exit::AmqpOut => (
                vec![],
                format!(
                    "amqp: {{ url: \"{BROKER}\", exchange: \"\", routing_key: \"{}\" }}",
                    self.q_out
                ),
            ),
            Exit::FileOut => {
                let flaky = self.variant == Variant::Flaky;
                let part = if flaky { "body.k % 20" } else { "0" };
                let path = if flaky {
                    "out/part-{{ body.part }}.jsonl"
                } else {
                    "out/observed.jsonl"
                };
                let script = format!(
                    "script:\n      produces: conf.observed@1\n      rhai: |\n        #{{ body: body, part: {part}, meta: #{{ id: meta.id, correlation_id: meta.correlation_id, causation_id: meta.causation_id, source: meta.source, attempt: meta.attempt, headers: meta.headers }} }}"
                );
                (vec![script], format!("file: {{ path: \"{path}\" }}"))
            }
        }
    }

    fn pipeline_files(&self) -> Vec<(String, String)> {
        let batched = self.variant == Variant::Batch;
        // Where the batch is published (topic, pipeline), the output declares its schema, so
        // the batch step produces it.
        let batch_step = match self.case.topology {
            Topology::Topic | Topology::Pipeline => {
                format!("batch: {{ count: {BATCH}, window: 1s, schema: conf.items@1 }}")
            }
            Topology::Direct | Topology::TopicThenOutput => {
                format!("batch: {{ count: {BATCH}, window: 1s }}")
            }
        };
        let (exit_steps, exit_output) = self.exit_yaml();
        let carried = if batched {
            "conf.items@1"
        } else {
            "conf.item@1"
        };
        let inputs = self.inputs();
        match self.case.topology {
            Topology::Direct => inputs
                .into_iter()
                .map(|(name, input, schema)| {
                    let mut steps = Vec::new();
                    if batched {
                        steps.push(batch_step.clone());
                    }
                    steps.extend(exit_steps.iter().cloned());
                    let yaml = pipeline(&name, &input, schema, &steps, &exit_output, None);
                    (name, yaml)
                })
                .collect(),
            Topology::Topic | Topology::Pipeline => {
                let (_, input, schema) = &inputs[0];
                let (to, from) = if self.case.topology == Topology::Topic {
                    (
                        format!("topic: {}", self.topic),
                        format!("topic: {{ name: {}, group: {} }}", self.topic, self.group),
                    )
                } else {
                    ("pipeline: out".to_string(), "pipeline: {}".to_string())
                };
                let steps: Vec<String> = if batched { vec![batch_step] } else { vec![] };
                vec![
                    (
                        "in".into(),
                        pipeline("in", input, schema, &steps, &to, Some(carried)),
                    ),
                    (
                        "out".into(),
                        pipeline("out", &from, carried, &exit_steps, &exit_output, None),
                    ),
                ]
            }
            Topology::TopicThenOutput => {
                let (_, input, schema) = &inputs[0];
                let mut steps = Vec::new();
                if batched {
                    steps.push(batch_step);
                }
                steps.extend(exit_steps);
                vec![
                    (
                        "in".into(),
                        pipeline(
                            "in",
                            input,
                            schema,
                            &[],
                            &format!("topic: {}", self.topic),
                            Some("conf.item@1"),
                        ),
                    ),
                    (
                        "out".into(),
                        pipeline(
                            "out",
                            &format!("topic: {{ name: {}, group: {} }}", self.topic, self.group),
                            "conf.item@1",
                            &steps,
                            &exit_output,
                            None,
                        ),
                    ),
                ]
            }
        }
    }

    // --- the process -----------------------------------------------------------------------

    fn stdout_log(&self, run: usize) -> PathBuf {
        self.dir.path().join(format!("logs/stdout-{run}.log"))
    }

    fn stderr_log(&self, run: usize) -> PathBuf {
        self.dir.path().join(format!("logs/stderr-{run}.log"))
    }

    /// Every run's stderr.
    fn stderr(&self) -> String {
        (1..=self.runs)
            .map(|r| std::fs::read_to_string(self.stderr_log(r)).unwrap_or_default())
            .collect()
    }

    fn stderr_tail(&self) -> String {
        let all = self.stderr();
        let start = all.len().saturating_sub(6_000);
        let start = (start..all.len())
            .find(|i| all.is_char_boundary(*i))
            .unwrap_or(all.len());
        all[start..].to_string()
    }

    /// `railyard run DIR --listen 127.0.0.1:PORT --data DIR/data --no-watch`, stdout and
    /// stderr to this run's logs; returns once `/ready` answers 200.
    fn start(&mut self) {
        assert!(self.server.is_none(), "already running");
        self.runs += 1;
        std::fs::create_dir_all(self.dir.path().join("logs")).unwrap();
        let out = std::fs::File::create(self.stdout_log(self.runs)).unwrap();
        let err = std::fs::File::create(self.stderr_log(self.runs)).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_railyard"));
        for var in [
            "RUST_LOG",
            "RAILYARD_AMQP_URL",
            "RAILYARD_LOG_FORMAT",
            "RAILYARD_LISTEN",
            "RAILYARD_DATA",
        ] {
            cmd.env_remove(var);
        }
        cmd.arg("run")
            .arg(self.dir.path())
            .args(["--listen", &format!("127.0.0.1:{}", self.port), "--data"])
            .arg(self.dir.path().join("data"))
            .arg("--no-watch")
            .arg("--output-root")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        if self.case.broker == Broker::Topics {
            cmd.env("RAILYARD_AMQP_URL", BROKER);
        }
        let mut server = Server {
            child: cmd.spawn().expect("spawn railyard run"),
            port: self.port,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!(
                    "{}: railyard run exited ({status}) before it was ready:\n{}",
                    self.name(),
                    self.stderr_tail()
                );
            }
            if matches!(try_http(self.port, "GET", "/ready", &[], b""), Ok((200, _))) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{}: not ready within 60 s:\n{}",
                self.name(),
                self.stderr_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.server = Some(server);
    }

    fn pid(&self) -> u32 {
        self.server.as_ref().expect("running").child.id()
    }

    /// SIGTERM; exit 0 within 60 s, with the last words of a graceful stop.
    fn stop(&mut self) {
        let mut server = self.server.take().expect("running");
        let pid = server.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = server.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "{}: still running 60 s after SIGTERM:\n{}",
                self.name(),
                self.stderr_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let err = std::fs::read_to_string(self.stderr_log(self.runs)).unwrap_or_default();
        assert!(
            status.success() && err.contains("railyard: stopped"),
            "{}: SIGTERM ended in {status}:\n{}",
            self.name(),
            self.stderr_tail()
        );
    }

    fn assert_health(&self) {
        let (status, resp) = try_http(self.port, "GET", "/health", &[], b"").unwrap();
        assert_eq!(status, 200, "{resp}");
        let health = response_json(&resp);
        let running: BTreeSet<String> = health["running"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        let want: BTreeSet<String> = self.pipelines.iter().cloned().collect();
        assert_eq!(
            running,
            want,
            "{}: every pipeline runs: {health}",
            self.name()
        );
        assert_eq!(health["not_started"], json!({}), "{}", self.name());
    }

    /// After a stop: the port refuses connections, the broker consumer is gone, the dropped
    /// files are done.
    fn assert_closed(&self) {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err(),
            "{}: the port still accepts connections after the stop",
            self.name()
        );
        if let Some(queue) = self.consumed_queue() {
            assert_eq!(
                self.rabbit().consumers(&queue),
                0,
                "{}: the consumer of {queue} is still attached after the stop",
                self.name()
            );
        }
        if self.case.entry == Entry::FileDrop {
            assert_eq!(
                self.left(),
                0,
                "{}: a dropped file was not finished",
                self.name()
            );
        }
    }

    /// The broker queue railyard consumes, if any.
    fn consumed_queue(&self) -> Option<String> {
        if self.case.entry == Entry::Amqp {
            Some(self.q_in.clone())
        } else if self.case.broker == Broker::Topics {
            Some(railyard_connectors::amqp::topic_queue(
                &self.topic,
                &self.group,
            ))
        } else {
            None
        }
    }

    /// Waits until the logs say one of `needles`, `times` times in all.
    fn wait_log(&self, needles: &[&str], times: usize) {
        let deadline = Instant::now() + WAIT;
        loop {
            let log = self.stderr();
            if needles
                .iter()
                .map(|n| log.matches(n).count())
                .sum::<usize>()
                >= times
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: never logged {times}× {needles:?}:\n{}",
                self.name(),
                self.stderr_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Asks the broker to close every connection the running process holds.
    fn close_broker_connections(&self) -> BTreeSet<u16> {
        let ports = broker_ports(self.pid());
        assert!(
            !ports.is_empty(),
            "{}: no broker connection to close",
            self.name()
        );
        let ctl = rabbitmqctl().unwrap();
        // `close_connection` takes the broker's connection pid: look them up by client port.
        let out = Command::new(&ctl)
            .args(["-q", "list_connections", "pid", "peer_port"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "rabbitmqctl list_connections: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listing = String::from_utf8_lossy(&out.stdout).into_owned();
        let pids: Vec<&str> = listing
            .lines()
            .filter_map(|l| {
                let (pid, port) = l.split_once('\t')?;
                let port: u16 = port.trim().parse().ok()?;
                ports.contains(&port).then_some(pid.trim())
            })
            .collect();
        assert_eq!(
            pids.len(),
            ports.len(),
            "{}: the broker does not list every connection of {ports:?}:\n{listing}",
            self.name()
        );
        for pid in pids {
            let out = Command::new(&ctl)
                .args([
                    "-q",
                    "close_connection",
                    pid,
                    "railyard conformance: reconnect",
                ])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "rabbitmqctl close_connection: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        ports
    }

    // --- sending ---------------------------------------------------------------------------

    fn msgs(&self, keys: Range<u64>) -> Vec<Msg> {
        keys.map(|k| Msg {
            k,
            id: format!("msg-{}-{k}", self.tag),
            corr: Some(format!("corr-{}-{k}", self.tag)),
            body: json!({
                "k": k,
                "text": format!("order #{k} — café, 東京 \"quoted\"\tand\na second line"),
                "tags": ["retail", k % 7],
                "nested": { "deep": [1, { "x": null, "price": 14.42 }] }
            }),
        })
        .collect()
    }

    /// Sends `msgs` through the entry and returns what the sender learned, in send order
    /// (sequential) or any order (parallel).
    fn send(&self, msgs: &[Msg], mode: Mode) -> Vec<Sent> {
        match self.case.entry {
            Entry::Http => {
                let deadline = Instant::now() + WAIT;
                match mode {
                    Mode::Sequential => msgs
                        .iter()
                        .map(|m| post_until_accepted(self.port, m, deadline))
                        .collect(),
                    Mode::Parallel => {
                        let port = self.port;
                        std::thread::scope(|s| {
                            let lanes: Vec<_> = (0..SENDERS)
                                .map(|t| {
                                    s.spawn(move || {
                                        msgs.iter()
                                            .skip(t)
                                            .step_by(SENDERS)
                                            .map(|m| post_until_accepted(port, m, deadline))
                                            .collect::<Vec<_>>()
                                    })
                                })
                                .collect();
                            lanes.into_iter().flat_map(|l| l.join().unwrap()).collect()
                        })
                    }
                }
            }
            Entry::Amqp => self.rabbit().publish(
                &self.q_in,
                msgs,
                if mode == Mode::Parallel { SENDERS } else { 1 },
            ),
            Entry::FileDrop => {
                let inbox = self.dir.path().join("inbox");
                match mode {
                    Mode::Sequential => {
                        let n = self.files.fetch_add(1, Ordering::Relaxed);
                        drop_file(&inbox, &format!("drop-{n}.jsonl"), msgs)
                    }
                    Mode::Parallel => {
                        let chunks: Vec<(String, &[Msg])> = msgs
                            .chunks(msgs.len().div_ceil(10))
                            .enumerate()
                            .map(|(i, c)| {
                                let n = self.files.fetch_add(1, Ordering::Relaxed);
                                let ext = if i % 2 == 0 { "jsonl" } else { "csv" };
                                (format!("drop-{n}.{ext}"), c)
                            })
                            .collect();
                        let inbox = &inbox;
                        std::thread::scope(|s| {
                            let writers: Vec<_> = chunks
                                .iter()
                                .map(|(name, c)| s.spawn(move || drop_file(inbox, name, c)))
                                .collect();
                            writers
                                .into_iter()
                                .flat_map(|w| w.join().unwrap())
                                .collect()
                        })
                    }
                }
            }
            Entry::Schedule => panic!("a schedule is not sent to"),
        }
    }

    // --- collecting ------------------------------------------------------------------------

    /// Everything that arrived at the exit so far, in arrival order.
    fn collect(&self) -> Vec<Delivery> {
        match self.exit {
            Exit::Stdout => self.tail((1..=self.runs).map(|r| self.stdout_log(r)).collect()),
            Exit::FileOut => {
                let dir = self.dir.path().join("out");
                let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                    .map(|rd| {
                        rd.filter_map(Result::ok)
                            .map(|e| e.path())
                            .filter(|p| p.is_file())
                            .collect()
                    })
                    .unwrap_or_default();
                files.sort();
                self.tail(files)
            }
            Exit::HttpPeer => self
                .peer
                .as_ref()
                .unwrap()
                .hits()
                .into_iter()
                .filter(|x| (200..300).contains(&x.status))
                .map(|x| Delivery::new(Some(x.id), Some(x.corr), x.body))
                .collect(),
            Exit::AmqpOut => {
                let mut drained = self.drained.lock().unwrap();
                drained.extend(self.rabbit().drain(&self.q_out));
                drained.clone()
            }
        }
    }

    /// The envelopes in `files` (JSON lines, appended to), parsing only what was added since
    /// the last call: polling stays cheap while a thousand messages arrive.
    fn tail(&self, files: Vec<PathBuf>) -> Vec<Delivery> {
        let mut tail = self.tail.lock().unwrap();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            let from = tail.read.get(&file).copied().unwrap_or(0);
            // Only complete lines: the last one may still be being written.
            let end = text.rfind('\n').map_or(0, |i| i + 1);
            if end <= from {
                continue;
            }
            for line in text[from..end].lines().filter(|l| !l.trim().is_empty()) {
                let v: Value = serde_json::from_str(line).unwrap_or_else(|e| {
                    panic!("{}: not a JSON line ({e}): {line}", file.display())
                });
                tail.got.push(Delivery::from_envelope(v));
            }
            tail.read.insert(file, end);
        }
        tail.got.clone()
    }

    /// Waits until every key arrived at least once; returns what arrived.
    fn wait_for(&self, want: &BTreeSet<u64>) -> Vec<Delivery> {
        let deadline = Instant::now() + WAIT;
        loop {
            let got = self.collect();
            let have = keys_of(&got);
            let missing: Vec<u64> = want.difference(&have).copied().collect();
            if missing.is_empty() {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{}: {} of {} never arrived (first {:?}; {} dead letters):\n{}",
                self.name(),
                missing.len(),
                want.len(),
                &missing[..missing.len().min(10)],
                self.dead_letters(),
                self.stderr_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until at least `n` messages arrived.
    fn wait_count(&self, n: usize) -> Vec<Delivery> {
        let deadline = Instant::now() + WAIT;
        loop {
            let got = self.collect();
            if got.iter().map(|d| d.bodies.len()).sum::<usize>() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{}: fewer than {n} arrived:\n{}",
                self.name(),
                self.stderr_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What is still waiting in the queue or topic that feeds the exit (or in the inbox).
    fn left(&self) -> u64 {
        match (self.case.topology, self.case.broker, self.case.entry) {
            (Topology::Topic | Topology::TopicThenOutput, Broker::Topics, _) => {
                self.rabbit().depth(&railyard_connectors::amqp::topic_queue(
                    &self.topic,
                    &self.group,
                ))
            }
            (Topology::Topic | Topology::TopicThenOutput, _, _) => {
                self.store().depth(&self.topic, &self.group).unwrap()
            }
            (Topology::Pipeline, _, _) => self.store().depth("pipeline:out", "out").unwrap(),
            (Topology::Direct, _, Entry::Amqp) => self.rabbit().depth(&self.q_in),
            (Topology::Direct, _, Entry::FileDrop) => {
                std::fs::read_dir(self.dir.path().join("inbox"))
                    .map(|rd| {
                        rd.filter_map(Result::ok)
                            .filter(|e| e.path().is_file())
                            .count() as u64
                    })
                    .unwrap_or(0)
            }
            (Topology::Direct, _, _) => 0,
        }
    }

    fn store(&self) -> railyard_store::Store {
        railyard_store::Store::open_unlocked(&self.dir.path().join("data/railyard.db")).unwrap()
    }

    fn dead_letters(&self) -> usize {
        self.store().dead_letters(None, 1_000).unwrap().len()
    }

    /// Webhook redeliveries are the sender's: a retried request is a new message.
    fn sender_redelivers(&self) -> bool {
        self.case.entry == Entry::Http && self.case.topology == Topology::Direct
    }

    // --- checking --------------------------------------------------------------------------

    /// Every sent key arrived (exactly once unless `may_repeat`), with the body as sent, and
    /// nothing else arrived.
    fn check_delivered(&self, sent: &[Sent], got: &[Delivery], may_repeat: impl Fn(&Sent) -> bool) {
        let want: HashMap<u64, &Sent> = sent.iter().map(|s| (s.k, s)).collect();
        assert_eq!(want.len(), sent.len(), "a key was sent twice");
        let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
        for d in got {
            for body in &d.bodies {
                let k = key(body);
                let s = want
                    .get(&k)
                    .unwrap_or_else(|| panic!("{}: {k} arrived but was never sent", self.name()));
                assert_eq!(
                    body,
                    &s.body,
                    "{}: the body of {k} changed on the way",
                    self.name()
                );
                *seen.entry(k).or_default() += 1;
            }
        }
        let mut missing: Vec<u64> = want
            .keys()
            .filter(|k| !seen.contains_key(k))
            .copied()
            .collect();
        missing.sort_unstable();
        assert!(
            missing.is_empty(),
            "{}: {} of {} lost (first {:?})",
            self.name(),
            missing.len(),
            sent.len(),
            &missing[..missing.len().min(10)]
        );
        let repeated: Vec<(u64, usize)> = seen
            .iter()
            .filter(|(k, n)| **n > 1 && !may_repeat(want[*k]))
            .map(|(k, n)| (*k, *n))
            .collect();
        assert!(
            repeated.is_empty(),
            "{}: {} delivered more than once (key, times; first {:?})",
            self.name(),
            repeated.len(),
            &repeated[..repeated.len().min(10)]
        );
    }

    /// Nothing arrived twice so far (after a stop in the middle of a burst).
    fn check_once_so_far(&self, got: &[Delivery]) {
        let mut seen = BTreeSet::new();
        for d in got {
            for b in &d.bodies {
                assert!(
                    seen.insert(key(b)),
                    "{}: {} arrived twice around the stop",
                    self.name(),
                    key(b)
                );
            }
        }
    }

    /// The id the exit must show for a sent message: the id the sender got or gave, as the
    /// topology derives it (`<id>~<group>` off a topic).
    fn expected_id(&self, s: &Sent) -> Option<String> {
        let id = s.id.as_ref()?;
        Some(match self.case.topology {
            Topology::Direct => id.clone(),
            Topology::Topic | Topology::TopicThenOutput => format!("{id}~{}", self.group),
            Topology::Pipeline => format!("{id}~out"),
        })
    }

    fn expected_source(&self, s: &Sent) -> String {
        match self.case.topology {
            Topology::Topic | Topology::TopicThenOutput => format!("topic:{}", self.topic),
            Topology::Pipeline => "topic:pipeline:out".to_string(),
            Topology::Direct => match self.case.entry {
                Entry::Http => "http:in".to_string(),
                Entry::Amqp => format!("amqp:{}", self.q_in),
                Entry::FileDrop => {
                    let (file, line) = s.file.as_ref().unwrap();
                    format!("file:{file}:{line}")
                }
                Entry::Schedule => "schedule:in".to_string(),
            },
        }
    }

    /// Ids and correlation ids end to end: a single message arrives with the id derived from
    /// the sender's, correlated by the sender's correlation id (or the originating message's
    /// id); a batch is correlated with its first message.
    fn check_ids(&self, sent: &[Sent], got: &[Delivery]) {
        let want: HashMap<u64, &Sent> = sent.iter().map(|s| (s.k, s)).collect();
        for d in got {
            let id = d.id.as_deref().unwrap_or_default();
            assert!(
                !id.is_empty(),
                "{}: a delivery without an id: {d:?}",
                self.name()
            );
            let first = want[&key(&d.bodies[0])];
            let corr = first.corr.clone().or_else(|| first.id.clone());
            if d.batched {
                match corr {
                    Some(c) => assert_eq!(
                        d.corr.as_deref(),
                        Some(c.as_str()),
                        "{}: a batch is correlated with its first message: {d:?}",
                        self.name()
                    ),
                    None if self.case.topology == Topology::Direct && d.causation.is_some() => {
                        assert_eq!(d.corr, d.causation, "{}: {d:?}", self.name())
                    }
                    None => assert!(d.corr.is_some(), "{}: {d:?}", self.name()),
                }
                continue;
            }
            if let Some(expected) = self.expected_id(first) {
                assert_eq!(
                    id,
                    expected,
                    "{}: message {} arrived with another id than the sender's",
                    self.name(),
                    first.k
                );
            }
            let expected_corr = corr.unwrap_or_else(|| id.to_string());
            assert_eq!(
                d.corr.as_deref(),
                Some(expected_corr.as_str()),
                "{}: the correlation id of {} was lost: {d:?}",
                self.name(),
                first.k
            );
        }
    }
}

fn pipeline(
    name: &str,
    input: &str,
    schema: &str,
    steps: &[String],
    output: &str,
    output_schema: Option<&str>,
) -> String {
    let mut y = format!("pipeline: {name}\nversion: 1\ninput:\n  {input}\n  schema: {schema}\n");
    if !steps.is_empty() {
        y.push_str("steps:\n");
        for s in steps {
            y.push_str(&format!("  - {s}\n"));
        }
    }
    y.push_str(&format!("output:\n  {output}\n"));
    if let Some(s) = output_schema {
        y.push_str(&format!("  schema: {s}\n"));
    }
    // Generous retries: a redelivery must never run out of attempts in these tests.
    y.push_str(
        "on_error:\n  retry: { attempts: 1000, backoff: fixed, initial: 200ms }\n  dead_letter: store\n",
    );
    y
}

const SCHEMA_ITEM: &str = r#"{
  "type": "object",
  "required": ["k", "text"],
  "properties": {
    "k": { "type": "integer", "minimum": 0 },
    "text": { "type": "string" },
    "tags": { "type": "array" },
    "nested": { "type": "object" }
  },
  "additionalProperties": false
}
"#;

const SCHEMA_ITEMS: &str = r#"{
  "type": "array",
  "minItems": 1,
  "maxItems": 10,
  "items": { "$ref": "conf.item@1" }
}
"#;

const SCHEMA_ROW: &str = r#"{
  "type": "object",
  "required": ["k", "text"],
  "properties": {
    "k": { "type": "string", "pattern": "^[0-9]+$" },
    "text": { "type": "string" }
  },
  "additionalProperties": false
}
"#;

const SCHEMA_OBSERVED: &str = r#"{
  "type": "object",
  "required": ["body", "meta"],
  "properties": {
    "meta": { "type": "object", "required": ["id", "correlation_id"] }
  }
}
"#;

/// Writes a file into the drop directory the way an SFTP job does (`.part`, then renamed),
/// with a modification time old enough to count as settled: `.csv` files are CSV with a
/// header row, others JSON lines.
fn drop_file(inbox: &Path, name: &str, msgs: &[Msg]) -> Vec<Sent> {
    std::fs::create_dir_all(inbox).unwrap();
    let csv = name.ends_with(".csv");
    let mut text = String::new();
    let mut sent = Vec::new();
    if csv {
        text.push_str("k,text\n");
    }
    for (i, m) in msgs.iter().enumerate() {
        let (line, body) = if csv {
            let t = format!("row {}, café", m.k);
            text.push_str(&format!("{},\"{t}\"\n", m.k));
            (i as u64 + 2, json!({"k": m.k.to_string(), "text": t}))
        } else {
            text.push_str(&serde_json::to_string(&m.body).unwrap());
            text.push('\n');
            (i as u64 + 1, m.body.clone())
        };
        sent.push(Sent {
            k: m.k,
            id: None,
            corr: None,
            body,
            ambiguous: false,
            file: Some((name.to_string(), line)),
        });
    }
    // A record's id is the file's content and the record's line (run/mod.rs `drain_files`):
    // the same after a failed hand-off, a restart, or a re-sent copy of the file.
    let content = railyard_connectors::file::content_key(text.as_bytes());
    for s in &mut sent {
        let line = s.file.as_ref().map_or(0, |(_, l)| *l);
        s.id = Some(format!("file-{}-{line}", &content[..16]));
    }
    let part = inbox.join(format!("{name}.part"));
    std::fs::write(&part, text).unwrap();
    let file = std::fs::File::options().write(true).open(&part).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(5))
        .unwrap();
    drop(file);
    std::fs::rename(&part, inbox.join(name)).unwrap();
    sent
}

// ---------------------------------------------------------------------------------------------
// HTTP sender
// ---------------------------------------------------------------------------------------------

fn response_json(resp: &str) -> Value {
    let body = resp.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or(Value::Null)
}

fn response_header(resp: &str, name: &str) -> Option<String> {
    let head = resp.split_once("\r\n\r\n").map_or(resp, |(h, _)| h);
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// POSTs one message until it is accepted, as a webhook platform does: a 503 is retried after
/// its `Retry-After` (capped at 2 s to keep the suite short), a refused connection (the server
/// is restarting) after 50 ms.
fn post_until_accepted(port: u16, m: &Msg, deadline: Instant) -> Sent {
    let body = serde_json::to_vec(&m.body).unwrap();
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(c) = &m.corr {
        headers.push(("X-Correlation-Id", c.as_str()));
    }
    let mut ambiguous = false;
    loop {
        match try_http(port, "POST", "/in", &headers, &body) {
            Ok((202, resp)) => {
                let id = response_json(&resp)["id"]
                    .as_str()
                    .unwrap_or_else(|| panic!("a 202 without the message id: {resp}"))
                    .to_string();
                assert_eq!(
                    response_header(&resp, "x-railyard-message-id").as_deref(),
                    Some(id.as_str()),
                    "{resp}"
                );
                return Sent {
                    k: m.k,
                    id: Some(id),
                    corr: m.corr.clone(),
                    body: m.body.clone(),
                    ambiguous,
                    file: None,
                };
            }
            Ok((503, resp)) => {
                let after: u64 = response_header(&resp, "retry-after")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("a 503 without Retry-After: {resp}"));
                std::thread::sleep(Duration::from_secs(after).min(Duration::from_secs(2)));
            }
            // The connection closed without an answer: the stop cut it.
            Ok((0, _)) => {
                ambiguous = true;
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok((status, resp)) => panic!("message {}: unexpected {status}:\n{resp}", m.k),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(_) => {
                ambiguous = true;
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        assert!(
            Instant::now() < deadline,
            "message {} was never accepted",
            m.k
        );
    }
}

/// [`SENDERS`] webhook senders in the background, each retrying until accepted (through a
/// stop and a restart).
struct Burst {
    sent: Arc<Mutex<Vec<Sent>>>,
    lanes: Vec<std::thread::JoinHandle<()>>,
}

impl Burst {
    fn start(port: u16, msgs: Vec<Msg>) -> Burst {
        let sent: Arc<Mutex<Vec<Sent>>> = Arc::default();
        let msgs = Arc::new(msgs);
        let deadline = Instant::now() + WAIT;
        let lanes = (0..SENDERS)
            .map(|t| {
                let (sent, msgs) = (sent.clone(), msgs.clone());
                std::thread::spawn(move || {
                    for m in msgs.iter().skip(t).step_by(SENDERS) {
                        let s = post_until_accepted(port, m, deadline);
                        sent.lock().unwrap().push(s);
                    }
                })
            })
            .collect();
        Burst { sent, lanes }
    }

    fn accepted(&self) -> usize {
        self.sent.lock().unwrap().len()
    }

    /// The keys accepted by a server that has exited, once the answers in flight were read.
    fn settled_accepted(&self) -> BTreeSet<u64> {
        let mut last = usize::MAX;
        loop {
            std::thread::sleep(Duration::from_millis(300));
            let now = self.accepted();
            if now == last {
                return self.sent.lock().unwrap().iter().map(|s| s.k).collect();
            }
            last = now;
        }
    }

    fn join(self) -> Vec<Sent> {
        for l in self.lanes {
            l.join().unwrap();
        }
        std::mem::take(&mut *self.sent.lock().unwrap())
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP peer
// ---------------------------------------------------------------------------------------------

/// A request the peer got, and its answer.
#[derive(Clone, Debug)]
struct Hit {
    id: String,
    corr: String,
    body: Value,
    status: u16,
}

#[derive(Default)]
struct PeerState {
    hits: Vec<Hit>,
    failed: BTreeSet<u64>,
    flaky: bool,
}

/// The scripted failures of a flaky peer, on the first attempt of a key: a 503 and a 429,
/// both with `Retry-After: 1`, as an ERP under load answers.
fn fail_rule(k: u64) -> Option<u16> {
    match k % 100 {
        7 => Some(503),
        57 => Some(429),
        _ => None,
    }
}

/// A test HTTP server standing in for an ERP: records every request (message id, correlation
/// id, body) and answers 201, or the scripted failure when flaky. It can go down (its
/// listener and connections close) and come back on the same port.
struct Peer {
    port: u16,
    state: Arc<Mutex<PeerState>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    rt: tokio::runtime::Runtime,
}

impl Peer {
    fn start(flaky: bool) -> Peer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut peer = Peer {
            port,
            state: Arc::new(Mutex::new(PeerState {
                flaky,
                ..PeerState::default()
            })),
            stop: None,
            task: None,
            rt,
        };
        peer.serve(listener);
        peer
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = axum::Router::new()
            .fallback(peer_answer)
            .with_state(self.state.clone());
        self.task = Some(self.rt.spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        }));
        self.stop = Some(tx);
    }

    /// Stops listening and closes every connection.
    fn down(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = self
                .rt
                .block_on(async { tokio::time::timeout(Duration::from_secs(10), task).await });
        }
    }

    fn up(&mut self) {
        let listener = self
            .rt
            .block_on(tokio::net::TcpListener::bind(("127.0.0.1", self.port)))
            .unwrap();
        self.serve(listener);
    }

    fn hits(&self) -> Vec<Hit> {
        self.state.lock().unwrap().hits.clone()
    }
}

async fn peer_answer(
    axum::extract::State(state): axum::extract::State<Arc<Mutex<PeerState>>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let status = {
        let mut s = state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let scripted = if s.flaky {
            try_key(&value).and_then(|k| fail_rule(k).map(|code| (k, code)))
        } else {
            None
        };
        let status = match scripted {
            Some((k, code)) if s.failed.insert(k) => code,
            _ => 201,
        };
        s.hits.push(Hit {
            id: header("x-railyard-message-id"),
            corr: header("x-correlation-id"),
            body: value,
            status,
        });
        status
    };
    let code = axum::http::StatusCode::from_u16(status)
        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    if status == 201 {
        (code, "{}").into_response()
    } else {
        (code, [("retry-after", "1")], "{\"error\":\"busy\"}").into_response()
    }
}

// ---------------------------------------------------------------------------------------------
// RabbitMQ
// ---------------------------------------------------------------------------------------------

fn skip_or_fail(reason: &str) {
    if std::env::var("RAILYARD_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("{reason} and RAILYARD_REQUIRE_SERVICES=1");
    }
    println!("skipped: {reason}");
}

fn rabbitmqctl() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([
            PathBuf::from("/usr/sbin"),
            PathBuf::from("/usr/lib/rabbitmq/bin"),
        ])
        .map(|d| d.join("rabbitmqctl"))
        .find(|p| p.is_file())
}

/// Local ports of the process's established TCP connections to the broker (port 5672), from
/// `/proc`: the names RabbitMQ gives them are `127.0.0.1:<port> -> 127.0.0.1:5672`.
fn broker_ports(pid: u32) -> BTreeSet<u16> {
    let inodes: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter_map(|l| {
                    let l = l.to_string_lossy().into_owned();
                    l.strip_prefix("socket:[")?
                        .strip_suffix(']')
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    let mut ports = BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 10 || cols[3] != "01" || !cols[2].ends_with(":1628") {
                continue;
            }
            if inodes.contains(cols[9])
                && let Some(port) = cols[1]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
            {
                ports.insert(port);
            }
        }
    }
    ports
}

/// The suite's own connection to the local broker: declares, publishes (confirms awaited),
/// drains and inspects queues, and deletes the queues of the test when dropped.
struct Rabbit {
    queues: Mutex<Vec<String>>,
    conn: lapin::Connection,
    rt: tokio::runtime::Runtime,
}

/// How long a broker operation of the harness may take: a broker that stops answering fails
/// the test with a reason instead of hanging the suite (seen once: `rabbitmqctl list_queues`
/// hung too, and only a restart of the node helped).
const BROKER_PATIENCE: Duration = Duration::from_secs(120);

impl Rabbit {
    /// Runs `work` on the harness's runtime, failing the test if the broker does not answer.
    fn wait<T>(&self, what: &str, work: impl std::future::Future<Output = T>) -> T {
        wait_on(&self.rt, what, work)
    }

    fn connect() -> Option<Rabbit> {
        if std::net::TcpStream::connect(("127.0.0.1", 5672)).is_err() {
            skip_or_fail("RabbitMQ is not reachable on 127.0.0.1:5672");
            return None;
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let conn = wait_on(
            &rt,
            "connect",
            lapin::Connection::connect(BROKER, lapin::ConnectionProperties::default()),
        )
        .expect("connect to RabbitMQ");
        Some(Rabbit {
            queues: Mutex::new(Vec::new()),
            conn,
            rt,
        })
    }

    fn channel(&self) -> lapin::Channel {
        self.wait("open a channel", self.conn.create_channel())
            .unwrap()
    }

    fn track(&self, queue: &str) {
        self.queues.lock().unwrap().push(queue.to_string());
    }

    fn declare(&self, queue: &str, args: lapin::types::FieldTable) {
        let ch = self.channel();
        self.wait(
            "declare a queue",
            ch.queue_declare(
                queue.into(),
                lapin::options::QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                args,
            ),
        )
        .unwrap();
        self.track(queue);
        let _ = self.wait("close a channel", ch.close(200, "ok".into()));
    }

    fn inspect(&self, queue: &str) -> lapin::Queue {
        let ch = self.channel();
        let q = self
            .wait(
                "inspect a queue",
                ch.queue_declare(
                    queue.into(),
                    lapin::options::QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    lapin::types::FieldTable::default(),
                ),
            )
            .unwrap_or_else(|e| panic!("queue {queue}: {e}"));
        let _ = self.wait("close a channel", ch.close(200, "ok".into()));
        q
    }

    /// Ready messages (unacked ones count once their consumer is gone).
    fn depth(&self, queue: &str) -> u64 {
        u64::from(self.inspect(queue).message_count())
    }

    fn consumers(&self, queue: &str) -> u32 {
        self.inspect(queue).consumer_count()
    }

    /// Publishes `msgs` to `queue` over `lanes` channels at once, each awaiting its confirms.
    fn publish(&self, queue: &str, msgs: &[Msg], lanes: usize) -> Vec<Sent> {
        self.wait("publish", async {
            let mut tasks = Vec::new();
            for t in 0..lanes {
                let ch = self.conn.create_channel().await.unwrap();
                ch.confirm_select(lapin::options::ConfirmSelectOptions::default())
                    .await
                    .unwrap();
                let mine: Vec<Msg> = msgs.iter().skip(t).step_by(lanes).cloned().collect();
                let queue = queue.to_string();
                tasks.push(tokio::spawn(async move {
                    let mut sent = Vec::new();
                    for m in mine {
                        let mut props = lapin::BasicProperties::default()
                            .with_content_type("application/json".into())
                            .with_delivery_mode(2)
                            .with_message_id(m.id.as_str().into());
                        if let Some(c) = &m.corr {
                            props = props.with_correlation_id(c.as_str().into());
                        }
                        let confirm = ch
                            .basic_publish(
                                "".into(),
                                queue.as_str().into(),
                                lapin::options::BasicPublishOptions::default(),
                                &serde_json::to_vec(&m.body).unwrap(),
                                props,
                            )
                            .await
                            .unwrap()
                            .await
                            .unwrap();
                        assert!(
                            matches!(confirm, lapin::Confirmation::Ack(_)),
                            "the broker refused message {}",
                            m.k
                        );
                        sent.push(Sent {
                            k: m.k,
                            id: Some(m.id.clone()),
                            corr: m.corr.clone(),
                            body: m.body.clone(),
                            ambiguous: false,
                            file: None,
                        });
                    }
                    let _ = ch.close(200, "ok".into()).await;
                    sent
                }));
            }
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.unwrap());
            }
            all
        })
    }

    /// Takes every ready message off `queue`.
    fn drain(&self, queue: &str) -> Vec<Delivery> {
        let ch = self.channel();
        let mut out = Vec::new();
        self.wait("drain a queue", async {
            while let Some(m) = ch
                .basic_get(
                    queue.into(),
                    lapin::options::BasicGetOptions { no_ack: true },
                )
                .await
                .unwrap()
            {
                let p = &m.delivery.properties;
                let body = serde_json::from_slice(&m.delivery.data).unwrap_or(Value::Null);
                out.push(Delivery::new(
                    p.message_id().as_ref().map(|s| s.to_string()),
                    p.correlation_id().as_ref().map(|s| s.to_string()),
                    body,
                ));
            }
            let _ = ch.close(200, "ok".into()).await;
        });
        out
    }
}

impl Drop for Rabbit {
    fn drop(&mut self) {
        let queues = std::mem::take(&mut *self.queues.lock().unwrap());
        // Best effort, bounded: a drop must not panic, nor hang on a broker that is gone.
        let _ = wait_on_quietly(&self.rt, async {
            if let Ok(ch) = self.conn.create_channel().await {
                for q in queues {
                    let _ = ch
                        .queue_delete(
                            q.as_str().into(),
                            lapin::options::QueueDeleteOptions::default(),
                        )
                        .await;
                }
            }
            let _ = self.conn.close(200, "ok".into()).await;
        });
    }
}

/// Runs `work` on `rt` within [`BROKER_PATIENCE`]; `None` when the broker did not answer. The
/// timer is made inside the runtime (it needs its clock).
fn wait_on_quietly<T>(
    rt: &tokio::runtime::Runtime,
    work: impl std::future::Future<Output = T>,
) -> Option<T> {
    rt.block_on(async { tokio::time::timeout(BROKER_PATIENCE, work).await })
        .ok()
}

/// Runs `work` on `rt` within [`BROKER_PATIENCE`], or fails the test naming `what`.
fn wait_on<T>(
    rt: &tokio::runtime::Runtime,
    what: &str,
    work: impl std::future::Future<Output = T>,
) -> T {
    wait_on_quietly(rt, work).unwrap_or_else(|| {
        panic!(
            "RabbitMQ did not answer within {}s ({what}); is the node healthy? (`rabbitmqctl list_queues`)",
            BROKER_PATIENCE.as_secs()
        )
    })
}
