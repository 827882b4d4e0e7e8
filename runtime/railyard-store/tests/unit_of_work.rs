//! The store's part of the delivery core: one process per file (a lock), what a crashed
//! holder left in flight is reclaimed at the next open, dedupe keys are pending until their
//! message settles, and a message's state effects settle with its acknowledgement in one
//! transaction. Plus a damaged file is refused, and a state machine checks lease/ack/nack.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;
use railyard_store::{
    FileMark, FileProgress, KeyClaim, OutputMark, OutputSlot, Store, StoreError, Unit,
};
use serde_json::json;

fn path_in(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join("data/railyard.db")
}

#[test]
fn a_second_holder_of_one_file_is_refused_with_the_first_ones_pid() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir);
    let first = Store::open(&path).unwrap();
    match Store::open(&path) {
        Err(e @ StoreError::Locked { .. }) => {
            let StoreError::Locked { pid, .. } = &e else {
                unreachable!()
            };
            assert_eq!(*pid, Some(std::process::id()));
            let text = e.to_string();
            assert!(text.contains("one process per data directory"), "{text}");
            assert!(
                text.contains(&format!("pid {}", std::process::id())),
                "{text}"
            );
        }
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("two stores hold one file"),
    }
    // A tool may still look in.
    let peek = Store::open_unlocked(&path).unwrap();
    assert_eq!(peek.depth("t", "g").unwrap(), 0);
    drop(first);
    Store::open(&path).expect("the lock went with the first store");
}

const CHILD_DB: &str = "RAILYARD_UNIT_TEST_CHILD_DB";

/// The child half of `a_crashed_holder_leaves_nothing_in_flight`: leaves a leased delivery,
/// a pending key, a committed key and a claimed batch, then aborts.
#[test]
#[ignore = "run by a_crashed_holder_leaves_nothing_in_flight in a child process"]
fn unit_child() {
    let Ok(path) = std::env::var(CHILD_DB) else {
        return;
    };
    let s = Store::open(Path::new(&path)).unwrap();
    s.subscribe("t", "g").unwrap();
    s.publish("t", &json!("in flight")).unwrap();
    s.publish("t", &json!("waiting")).unwrap();
    assert_eq!(s.lease("t", "g", 1, 60_000, 0).unwrap().len(), 1);
    assert_eq!(
        s.claim_key("p", "done", 60_000, 0).unwrap(),
        KeyClaim::Claimed
    );
    let unit = Unit {
        keys: vec![("p".into(), "done".into())],
        ..Unit::default()
    };
    assert!(s.commit_unit(&unit).unwrap());
    assert_eq!(
        s.claim_key("p", "in-flight", 60_000, 0).unwrap(),
        KeyClaim::Claimed
    );
    s.batch_add("p/steps[0]", "m1", &json!(1), None, 0, 60_000)
        .unwrap();
    assert_eq!(s.batch_claim_all("p/", 0, 60_000).unwrap().len(), 1);
    std::process::abort();
}

#[test]
fn a_crashed_holder_leaves_nothing_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir);
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "unit_child", "--ignored", "--test-threads", "1"])
        .env(CHILD_DB, &path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child must have aborted");
    // The dead child's OS lock is gone: this open proves it, and reclaims.
    let s = Store::open(&path).unwrap();
    let r = s.reclaimed();
    assert_eq!((r.deliveries, r.batches, r.keys), (1, 1, 1), "{r:?}");
    // The leased delivery is ready now (its lease ran until 60 000), its attempt counted.
    let got = s.lease("t", "g", 10, 1_000, 1).unwrap();
    let seen: Vec<_> = got.iter().map(|d| (d.message.clone(), d.attempt)).collect();
    assert_eq!(seen, [(json!("in flight"), 2), (json!("waiting"), 1)]);
    // The pending key is gone (its message never confirmed); the committed one stays.
    assert_eq!(
        s.claim_key("p", "in-flight", 60_000, 1).unwrap(),
        KeyClaim::Claimed
    );
    assert_eq!(
        s.claim_key("p", "done", 60_000, 1).unwrap(),
        KeyClaim::Committed
    );
    // The claimed batch waits in its buffer again.
    let again = s.batch_claim_all("p/", 1, 60_000).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].messages, [json!(1)]);
    // Reopening after a clean stop reclaims only what that holder left.
    drop(s);
    assert_eq!(Store::open(&path).unwrap().reclaimed().batches, 1);
}

#[test]
fn a_key_is_pending_while_its_message_is_in_flight() {
    let s = Store::open_in_memory().unwrap();
    assert_eq!(s.claim_key("p", "k", 1_000, 0).unwrap(), KeyClaim::Claimed);
    assert_eq!(s.claim_key("p", "k", 1_000, 1).unwrap(), KeyClaim::Pending);
    assert!(s.claim_key("p", "k", 1_000, 1).unwrap().is_duplicate());
    assert_eq!(
        s.claim_key("other", "k", 1_000, 1).unwrap(),
        KeyClaim::Claimed,
        "keys are per pipeline"
    );
    // The message failed and will be retried: its key goes, the retry is no duplicate.
    let unit = Unit {
        keys: vec![("p".into(), "k".into())],
        ..Unit::default()
    };
    s.release_unit(&unit, 0, true).unwrap();
    assert_eq!(s.claim_key("p", "k", 1_000, 2).unwrap(), KeyClaim::Claimed);
    assert!(s.commit_unit(&unit).unwrap());
    assert_eq!(
        s.claim_key("p", "k", 1_000, 3).unwrap(),
        KeyClaim::Committed
    );
    // A release after the commit does not delete a committed key.
    s.release_unit(&unit, 0, true).unwrap();
    assert_eq!(
        s.claim_key("p", "k", 1_000, 4).unwrap(),
        KeyClaim::Committed
    );
    // It expires 1000 after its claim at 2.
    assert_eq!(
        s.claim_key("p", "k", 1_000, 1_002).unwrap(),
        KeyClaim::Claimed
    );
}

#[test]
fn a_unit_commits_its_keys_batches_and_file_progress_with_the_ack() {
    let s = Store::open_in_memory().unwrap();
    s.subscribe("t", "g").unwrap();
    s.publish("t", &json!("m")).unwrap();
    let d = s.lease("t", "g", 1, 1_000, 0).unwrap().remove(0);
    assert_eq!(s.claim_key("p", "k", 60_000, 0).unwrap(), KeyClaim::Claimed);
    s.batch_add("p/steps[0]", "m", &json!(1), None, 0, 60_000)
        .unwrap();
    let claim = s.batch_claim_all("p/", 0, 60_000).unwrap().remove(0);
    let slot = OutputSlot {
        pipeline: "p".into(),
        origin: "m".into(),
        item: 0,
        output: 1,
    };
    let mark = OutputMark {
        path: "out.jsonl".into(),
        offset: 0,
        len: 3,
        digest: vec![9],
    };
    s.set_output_mark(&slot, &mark, 0).unwrap();
    // The message replays an earlier dead letter of its own.
    let replayed = s.dead_letter(&dead_letter("p")).unwrap();
    let unit = Unit {
        keys: vec![("p".into(), "k".into())],
        batch_claims: vec![claim.token],
        file: Some(FileMark {
            pipeline: "p".into(),
            key: "file-key".into(),
            progress: FileProgress {
                handed_off: 7,
                complete: false,
            },
            now_ms: 5,
        }),
        dead_letters: vec![dead_letter("p")],
        ack: Some(d.clone()),
        marks: Some(("p".into(), "m".into())),
        replaces: Some(replayed),
    };
    // Released (a replay that failed transiently): the replayed dead letter stays.
    let retry = Unit {
        replaces: Some(replayed),
        ..Unit::default()
    };
    s.release_unit(&retry, 0, false).unwrap();
    assert_eq!(s.dead_letters(Some("p"), 10).unwrap()[0].0, replayed);
    assert!(s.commit_unit(&unit).unwrap());
    assert_eq!(s.output_mark(&slot).unwrap(), None);
    assert_eq!(s.depth("t", "g").unwrap(), 0);
    assert_eq!(
        s.claim_key("p", "k", 60_000, 1).unwrap(),
        KeyClaim::Committed
    );
    assert_eq!(s.batch_depth("p/steps[0]").unwrap(), 0);
    // The replayed dead letter went; the unit's own is the only one.
    let letters = s.dead_letters(Some("p"), 10).unwrap();
    assert_eq!(letters.len(), 1);
    assert_ne!(letters[0].0, replayed);
    assert_eq!(
        s.file_progress("p", "file-key").unwrap(),
        Some(FileProgress {
            handed_off: 7,
            complete: false
        })
    );
}

#[test]
fn a_unit_whose_lease_was_taken_over_changes_nothing() {
    let s = Store::open_in_memory().unwrap();
    s.subscribe("t", "g").unwrap();
    s.publish("t", &json!("m")).unwrap();
    let old = s.lease("t", "g", 1, 1_000, 0).unwrap().remove(0);
    assert_eq!(s.claim_key("p", "k", 60_000, 0).unwrap(), KeyClaim::Claimed);
    // The lease expired and another consumer took the delivery.
    let new = s.lease("t", "g", 1, 1_000, 2_000).unwrap().remove(0);
    let unit = Unit {
        keys: vec![("p".into(), "k".into())],
        ack: Some(old),
        ..Unit::default()
    };
    assert!(!s.commit_unit(&unit).unwrap());
    assert_eq!(
        s.depth("t", "g").unwrap(),
        1,
        "the new holder's delivery stays"
    );
    assert_eq!(
        s.claim_key("p", "k", 60_000, 1).unwrap(),
        KeyClaim::Pending,
        "the key was not committed"
    );
    assert!(s.ack(&new).unwrap());
}

#[test]
fn a_released_unit_requeues_its_delivery_counting_the_attempt_or_not() {
    let s = Store::open_in_memory().unwrap();
    s.subscribe("t", "g").unwrap();
    s.publish("t", &json!("m")).unwrap();
    let d = s.lease("t", "g", 1, 60_000, 0).unwrap().remove(0);
    assert_eq!(d.attempt, 1);
    let unit = Unit {
        ack: Some(d),
        ..Unit::default()
    };
    s.release_unit(&unit, 500, true).unwrap();
    assert!(s.lease("t", "g", 1, 60_000, 499).unwrap().is_empty());
    let d = s.lease("t", "g", 1, 60_000, 500).unwrap().remove(0);
    assert_eq!(d.attempt, 2, "a retry counts");
    let unit = Unit {
        ack: Some(d),
        ..Unit::default()
    };
    s.release_unit(&unit, 600, false).unwrap();
    let d = s.lease("t", "g", 1, 60_000, 600).unwrap().remove(0);
    assert_eq!(d.attempt, 2, "a hold does not count");
}

fn dead_letter(pipeline: &str) -> railyard_store::DeadLetter {
    railyard_store::DeadLetter {
        pipeline: pipeline.into(),
        pipeline_version: 1,
        step: "output".into(),
        error: json!({"code": "retries-exhausted"}),
        message: json!({"body": 1}),
        original: None,
        attempts: 3,
        at_ms: 1,
    }
}

#[test]
fn a_dead_letter_keeps_the_original_input() {
    let s = Store::open_in_memory().unwrap();
    let entry = railyard_store::DeadLetter {
        pipeline: "p".into(),
        pipeline_version: 1,
        step: "steps[0] map".into(),
        error: json!({"code": "mapping-error"}),
        message: json!({"body": {"after": true}}),
        original: Some(json!({"body": {"raw": "as received"}, "meta": {"id": "m-1"}})),
        attempts: 1,
        at_ms: 1,
    };
    let id = s.dead_letter(&entry).unwrap();
    assert_eq!(s.dead_letters(None, 10).unwrap(), [(id, entry.clone())]);
    assert_eq!(s.take_dead_letter(id).unwrap(), Some(entry));
}

#[test]
fn a_file_that_is_not_a_database_is_refused_as_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, vec![0x5a; 8192]).unwrap();
    match Store::open(&path) {
        Err(e) => {
            assert!(e.is_corrupt(), "{e:?}");
            assert!(e.to_string().contains("is damaged"), "{e}");
        }
        Ok(_) => panic!("opened garbage"),
    }
}

#[test]
fn overwritten_pages_are_found_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir);
    {
        let s = Store::open(&path).unwrap();
        s.subscribe("t", "g").unwrap();
        for i in 0..2_000 {
            s.publish("t", &json!({"n": i, "pad": "x".repeat(200)}))
                .unwrap();
        }
    }
    // Closed cleanly: everything is checkpointed into the main file. Overwrite two pages in
    // the middle (page size 4096) with garbage.
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 40 * 4096, "{}", bytes.len());
    for page in [20, 21] {
        for b in &mut bytes[page * 4096..(page + 1) * 4096] {
            *b = 0xa5;
        }
    }
    std::fs::write(&path, &bytes).unwrap();
    // The previous holder stopped cleanly: `open` skips the check (it reads the whole file),
    // and the runtime checks in the background with `check_file`.
    let store = Store::open(&path).unwrap();
    assert_eq!(store.checked_at_open(), None);
    match railyard_store::check_file(&path) {
        Err(e) => assert!(e.is_corrupt(), "{e:?}"),
        Ok(()) => panic!("the background check missed the damage"),
    }
    drop(store);
    // A holder that did not stop cleanly (killed: its lock file holds only its pid) makes
    // the next `open` check before anything is written.
    std::fs::write(path.with_extension("db.lock"), "4242").unwrap();
    match Store::open(&path) {
        Err(e) => assert!(e.is_corrupt(), "{e:?}"),
        Ok(_) => panic!("a damaged store opened after an unclean stop"),
    }
}

#[test]
fn the_integrity_check_runs_at_open_only_after_an_unclean_stop() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_in(&dir);
    let lock = path.with_extension("db.lock");
    drop(Store::open(&path).unwrap());
    assert!(
        std::fs::read_to_string(&lock)
            .unwrap()
            .ends_with(" stopped"),
        "a dropped store marks its lock file"
    );
    let s = Store::open(&path).unwrap();
    assert_eq!(s.checked_at_open(), None, "clean stop: no check");
    assert!(
        !std::fs::read_to_string(&lock).unwrap().contains("stopped"),
        "a running holder's lock file holds only its pid"
    );
    drop(s);
    std::fs::write(&lock, "4242").unwrap();
    let s = Store::open(&path).unwrap();
    assert!(s.checked_at_open().is_some(), "unclean stop: checked");
}

#[test]
fn a_writable_store_passes_the_readiness_write() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&path_in(&dir)).unwrap();
    s.check_writable(1).unwrap();
    s.check_writable(2).unwrap();
}

// ---------------------------------------------------------------------------------------------
// A state machine: random lease/ack/nack/release/crash sequences against a model. Whatever
// happens, every published message is acked exactly once or still waits; a stale lease's ack
// changes nothing.

#[derive(Clone, Debug)]
enum Op {
    Publish,
    Lease(usize),
    Ack(usize),
    Nack(usize),
    Release(usize),
    /// Time passes (leases may expire).
    Tick(i64),
    /// The holder crashes: reopen the file (reclaims leases).
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Publish),
        3 => (1usize..4).prop_map(Op::Lease),
        3 => (0usize..8).prop_map(Op::Ack),
        1 => (0usize..8).prop_map(Op::Nack),
        1 => (0usize..8).prop_map(Op::Release),
        1 => (1i64..3_000).prop_map(Op::Tick),
        1 => Just(Op::Crash),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn lease_ack_nack_release_never_lose_or_double_ack(ops in prop::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let path = path_in(&dir);
        let mut s = Store::open(&path).unwrap();
        s.subscribe("t", "g").unwrap();
        let mut now = 0i64;
        let mut published = 0u64;
        // Model: seq -> acked?
        let mut acked: BTreeMap<u64, bool> = BTreeMap::new();
        let mut held: Vec<railyard_store::Leased> = Vec::new();
        for op in ops {
            match op {
                Op::Publish => {
                    let seq = s.publish("t", &json!(published)).unwrap();
                    published += 1;
                    acked.insert(seq, false);
                }
                Op::Lease(n) => {
                    for d in s.lease("t", "g", n, 1_000, now).unwrap() {
                        prop_assert!(!acked[&d.seq], "an acked message was leased again");
                        held.push(d);
                    }
                }
                Op::Ack(i) if !held.is_empty() => {
                    let d = held.remove(i % held.len());
                    let was = acked[&d.seq];
                    let ok = s.ack(&d).unwrap();
                    prop_assert!(!(ok && was), "acked twice");
                    if ok {
                        acked.insert(d.seq, true);
                    }
                }
                Op::Nack(i) if !held.is_empty() => {
                    let d = held.remove(i % held.len());
                    s.nack(&d, now + 10).unwrap();
                }
                Op::Release(i) if !held.is_empty() => {
                    let d = held.remove(i % held.len());
                    let unit = Unit { ack: Some(d), ..Unit::default() };
                    s.release_unit(&unit, now, false).unwrap();
                }
                Op::Tick(ms) => now += ms,
                Op::Crash => {
                    drop(s);
                    s = Store::open(&path).unwrap();
                    // Old leases are stale now: acking them must change nothing.
                }
                _ => {}
            }
        }
        // Drain: everything not acked is still there and comes out.
        let waiting = acked.values().filter(|a| !**a).count() as u64;
        prop_assert_eq!(s.depth("t", "g").unwrap(), waiting);
        now += 10_000;
        let mut left = 0u64;
        loop {
            let got = s.lease("t", "g", 16, 1_000, now).unwrap();
            if got.is_empty() { break; }
            for d in got {
                prop_assert!(!acked[&d.seq]);
                prop_assert!(s.ack(&d).unwrap());
                acked.insert(d.seq, true);
                left += 1;
            }
        }
        prop_assert_eq!(left, waiting);
        prop_assert!(acked.values().all(|a| *a));
    }
}
